//! `natter serve --config FILE`: every `serve` flag as a TOML key of the same name (`max-clients = 5000`,
//! a repeatable flag as a list: `listen = ["0.0.0.0:5500"]`). A flag on the command line beats a
//! `NATTER_…` environment variable, which beats the file, which beats the default. Unknown keys and bad
//! values are refused at start, naming the file and line.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::parser::ValueSource;
use clap::{ArgAction, ArgMatches, Command};

/// Flags that are not settings (and so have no key).
pub const NOT_KEYS: &[&str] = &["help", "version", "config"];

/// The default config file, if there is one: `natter.toml` in the platform's config directory
/// (`~/.config/natter/natter.toml` on Linux).
pub fn default_path() -> Option<std::path::PathBuf> {
    directories::ProjectDirs::from("", "", "natter")
        .map(|d| d.config_dir().join("natter.toml"))
        .filter(|p| p.exists())
}

/// The line of `key = …` in `text`, for messages.
fn line_of(text: &str, key: &str) -> usize {
    text.lines()
        .position(|l| {
            let l = l.trim_start();
            l.strip_prefix(key)
                .is_some_and(|rest| rest.trim_start().starts_with('='))
        })
        .map_or(0, |i| i + 1)
}

/// The `serve` flags `path` stands for, leaving out those the command line or environment set
/// (`matches`: the `serve` subcommand's). `serve`: the `serve` subcommand's definition.
pub fn file_args(
    path: &Path,
    serve: &Command,
    matches: &ArgMatches,
) -> Result<Vec<OsString>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the config file {}: {e}", path.display()))?;
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| format!("{}: {}", path.display(), e.to_string().trim()))?;
    let mut args = Vec::new();
    for (key, value) in &table {
        let at = || format!("{}:{}", path.display(), line_of(&text, key));
        let arg = serve
            .get_arguments()
            .filter(|a| !NOT_KEYS.contains(&a.get_id().as_str()) && !a.is_hide_set())
            .find(|a| a.get_long() == Some(key.as_str()));
        let Some(arg) = arg else {
            return Err(format!("{}: unknown key `{key}`; the keys are the flags of `natter serve --help` (see `natter config example`)", at()));
        };
        let id = arg.get_id().as_str();
        if matches!(
            matches.value_source(id),
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        ) {
            continue; // the command line and the environment win
        }
        let flag = format!("--{key}");
        let scalar = |v: &toml::Value| -> Result<String, String> {
            match v {
                toml::Value::String(s) => Ok(s.clone()),
                toml::Value::Integer(i) => Ok(i.to_string()),
                toml::Value::Float(f) => Ok(f.to_string()),
                toml::Value::Boolean(b) => Ok(b.to_string()),
                other => Err(format!("{}: `{key}` cannot be {}", at(), other.type_str())),
            }
        };
        match (arg.get_action(), value) {
            (ArgAction::SetTrue, toml::Value::Boolean(true)) => args.push(flag.into()),
            (ArgAction::SetTrue, toml::Value::Boolean(false)) => {}
            (ArgAction::SetTrue, _) => return Err(format!("{}: `{key}` is true or false", at())),
            (ArgAction::Append, toml::Value::Array(items)) => {
                for item in items {
                    args.push(format!("{flag}={}", scalar(item)?).into());
                }
            }
            (_, v) => args.push(format!("{flag}={}", scalar(v)?).into()),
        }
    }
    Ok(args)
}

/// What to say when the settings with a config file's are refused: the file, and the line of the key
/// whose value was bad when it is the file's, with clap's reason and what is allowed, on one line.
pub fn refusal(path: &Path, e: &clap::Error) -> String {
    use clap::error::{ContextKind, ContextValue};
    let rendered = e.to_string();
    let said: Vec<&str> = rendered
        .lines()
        .map(|l| l.trim().trim_start_matches("error: "))
        .filter(|l| !l.is_empty() && !l.starts_with("For more information"))
        .map(|l| l.trim_start_matches("tip: "))
        .collect::<Vec<_>>();
    let said = said.join("; ");
    let key = match e.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(arg)) => arg
            .trim_start_matches("--")
            .split([' ', '='])
            .next()
            .map(str::to_owned),
        _ => None,
    };
    let line = key.and_then(|key| {
        let text = std::fs::read_to_string(path).ok()?;
        Some(line_of(&text, &key)).filter(|&l| l > 0)
    });
    match line {
        Some(line) => format!("{}:{line}: {said}", path.display()),
        None => format!("{}: {said}", path.display()),
    }
}

/// A config file's `data-dir` and `db`, for `natter backup`, `restore` and `admin`.
pub fn data_place(path: &Path) -> Result<(Option<PathBuf>, Option<PathBuf>), String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the config file {}: {e}", path.display()))?;
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| format!("{}: {}", path.display(), e.to_string().trim()))?;
    let key = |name: &str| match table.get(name) {
        None => Ok(None),
        Some(toml::Value::String(s)) => Ok(Some(PathBuf::from(s))),
        Some(_) => Err(format!(
            "{}:{}: `{name}` is a path, in quotes",
            path.display(),
            line_of(&text, name)
        )),
    };
    Ok((key("data-dir")?, key("db")?))
}

/// `natter config reference`: every key as a Markdown table — its default, whether a reload (SIGHUP)
/// changes it on a running server (`live`) or it waits for a restart, and its help — for
/// docs/OPERATIONS.md, which a test keeps equal to it.
pub fn reference(serve: &Command, live: &[&str]) -> String {
    let mut out = String::from("| key | default | takes effect | what |\n|---|---|---|---|\n");
    for arg in keys(serve) {
        let long = arg.get_long().unwrap_or_default();
        let defaults: Vec<String> = arg
            .get_default_values()
            .iter()
            .map(|v| v.to_string_lossy().into_owned())
            .collect();
        let default = match (arg.get_action(), defaults.is_empty()) {
            (ArgAction::SetTrue, _) => "`false`".to_owned(),
            (_, true) => "—".to_owned(),
            (_, false) => format!("`{}`", defaults.join(", ")),
        };
        let when = if live.contains(&long) {
            "on reload"
        } else {
            "at restart"
        };
        let help = arg
            .get_help()
            .map(|h| h.to_string().replace('\n', " ").replace('|', "\\|"))
            .unwrap_or_default();
        out.push_str(&format!("| `{long}` | {default} | {when} | {help} |\n"));
    }
    out
}

/// The `serve` arguments that are keys of the config file.
fn keys(serve: &Command) -> impl Iterator<Item = &clap::Arg> {
    serve.get_arguments().filter(|a| {
        a.get_long().is_some() && !a.is_hide_set() && !NOT_KEYS.contains(&a.get_id().as_str())
    })
}

/// `natter config example`: every key with its help and default, commented out.
pub fn example(serve: &Command) -> String {
    let mut out = String::from(
        "# natter's configuration: every `natter serve` flag is a key of the same name. Uncomment to change.\n\
         # A flag on the command line beats a NATTER_… environment variable, which beats this file.\n",
    );
    for arg in keys(serve) {
        let long = arg.get_long().unwrap_or_default();
        out.push('\n');
        if let Some(help) = arg.get_help() {
            for line in help.to_string().lines() {
                out.push_str(&format!("# {line}\n"));
            }
        }
        let quote = |v: &str| match v.parse::<f64>() {
            Ok(_) => v.to_owned(),
            Err(_) => format!("{v:?}"),
        };
        let defaults: Vec<String> = arg
            .get_default_values()
            .iter()
            .map(|v| quote(&v.to_string_lossy()))
            .collect();
        let value = match arg.get_action() {
            ArgAction::SetTrue => "false".to_owned(),
            ArgAction::Append => format!("[{}]", defaults.join(", ")),
            _ if defaults.is_empty() => {
                let name = arg
                    .get_value_names()
                    .and_then(|n| n.first().map(|n| n.to_string()))
                    .unwrap_or_else(|| "VALUE".into());
                out.push_str(&format!("# (not set) {long} = {}\n", quote(&name)));
                continue;
            }
            _ => defaults.join(", "),
        };
        out.push_str(&format!("# {long} = {value}\n"));
    }
    out
}
