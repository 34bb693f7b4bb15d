use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use fluent_syntax::ast::{Entry, Expression, InlineExpression, Pattern, PatternElement};

use super::*;

/// Message id → the placeholders its text uses, for one catalogue. Fails on a syntax error or an id
/// defined twice.
fn messages(lang: Lang) -> BTreeMap<String, BTreeSet<String>> {
    let resource = fluent_syntax::parser::parse(source(lang))
        .unwrap_or_else(|(_, errors)| panic!("{lang}: the catalogue does not parse: {errors:?}"));
    let mut out = BTreeMap::new();
    for entry in resource.body {
        if let Entry::Message(m) = entry {
            let mut vars = BTreeSet::new();
            if let Some(p) = &m.value {
                pattern_vars(p, &mut vars);
            }
            assert!(
                out.insert(m.id.name.to_owned(), vars).is_none(),
                "{lang}: {} defined twice",
                m.id.name
            );
        }
    }
    out
}

fn pattern_vars(p: &Pattern<&str>, vars: &mut BTreeSet<String>) {
    for element in &p.elements {
        if let PatternElement::Placeable { expression } = element {
            expression_vars(expression, vars);
        }
    }
}

fn expression_vars(e: &Expression<&str>, vars: &mut BTreeSet<String>) {
    match e {
        Expression::Select { selector, variants } => {
            inline_vars(selector, vars);
            for v in variants {
                pattern_vars(&v.value, vars);
            }
        }
        Expression::Inline(i) => inline_vars(i, vars),
    }
}

fn inline_vars(i: &InlineExpression<&str>, vars: &mut BTreeSet<String>) {
    match i {
        InlineExpression::VariableReference { id } => {
            vars.insert(id.name.to_owned());
        }
        InlineExpression::Placeable { expression } => expression_vars(expression, vars),
        InlineExpression::FunctionReference { arguments, .. } => {
            for a in &arguments.positional {
                inline_vars(a, vars);
            }
        }
        _ => {}
    }
}

#[test]
fn every_catalogue_has_every_message_with_the_same_placeholders() {
    let english = messages(Lang::En);
    assert!(english.len() > 50, "the English catalogue is nearly empty");
    for lang in &Lang::ALL[1..] {
        let other = messages(*lang);
        let missing: Vec<_> = english.keys().filter(|k| !other.contains_key(*k)).collect();
        let extra: Vec<_> = other.keys().filter(|k| !english.contains_key(*k)).collect();
        assert!(missing.is_empty(), "{lang} lacks {missing:?}");
        assert!(
            extra.is_empty(),
            "{lang} has messages English lacks: {extra:?}"
        );
        for (id, vars) in &english {
            assert_eq!(
                &other[id], vars,
                "{lang}: {id} uses other placeholders than English"
            );
        }
    }
}

#[test]
fn placeholders_and_plurals_are_filled_in() {
    assert_eq!(
        tl!(Lang::En, "error-unconfirmed", count = 1),
        "1 message was not confirmed by the server"
    );
    assert_eq!(
        tl!(Lang::En, "error-unconfirmed", count = 3),
        "3 messages were not confirmed by the server"
    );
    assert_eq!(
        tl!(Lang::ZhCn, "error-unconfirmed", count = 3),
        "有 3 条消息没有得到服务器确认"
    );
    // No Unicode isolation marks around placeholders.
    let joined = tl!(Lang::En, "presence-joined", name = "bob", r#where = " #x");
    assert_eq!(joined, "bob joined #x");
    assert_eq!(
        text_checked(Lang::En, "presence-joined", &[]),
        None,
        "placeholders missing"
    );
}

#[test]
fn an_unknown_id_shows_itself_and_a_missing_translation_falls_back_to_english() {
    assert_eq!(tl!(Lang::ZhCn, "no-such-message"), "no-such-message");
    assert!(has(Lang::En, "presence-joined"));
}

#[test]
fn the_language_follows_the_posix_locale_rules() {
    assert_eq!(
        Lang::from_locale(None, None, Some("zh_CN.UTF-8")),
        Lang::ZhCn
    );
    assert_eq!(Lang::from_locale(None, None, Some("C")), Lang::En);
    assert_eq!(Lang::from_locale(None, None, None), Lang::En);
    assert_eq!(
        Lang::from_locale(Some("en_US.UTF-8"), None, Some("zh_CN.UTF-8")),
        Lang::En,
        "LC_ALL wins"
    );
    assert_eq!(
        Lang::from_locale(Some(""), Some("zh_TW.UTF-8"), Some("C")),
        Lang::ZhCn,
        "an empty LC_ALL does not count; LC_MESSAGES comes before LANG"
    );
    assert_eq!(Lang::from_locale(None, None, Some("de_DE.UTF-8")), Lang::En);
    assert_eq!("zh-CN".parse::<Lang>(), Ok(Lang::ZhCn));
    assert_eq!("zh".parse::<Lang>(), Ok(Lang::ZhCn));
    assert!("fr".parse::<Lang>().is_err());
}

#[test]
fn with_lang_overrides_this_thread_only() {
    let inside = with_lang(Lang::ZhCn, || t!("bye"));
    assert_eq!(inside, tl!(Lang::ZhCn, "bye"));
    assert_eq!(lang(), Lang::En);
}

/// Every `.rs` file of the workspace outside `target/`.
fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        let name = entry.file_name();
        if path.is_dir() && name != "target" && name != ".git" {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The string literal ids handed to `t!` and `tl!` in `code`.
fn ids_used(code: &str) -> Vec<String> {
    let mut ids = Vec::new();
    for (macro_, skip_args) in [("t!(", 0), ("tl!(", 1)] {
        for (at, _) in code.match_indices(macro_) {
            // Only the macro itself, not a longer name ending in it (`format!(`, `assert!(`).
            if code[..at]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_alphanumeric() || c == '_')
            {
                continue;
            }
            let mut rest = &code[at + macro_.len()..];
            for _ in 0..skip_args {
                let Some(comma) = rest.find(',') else { break };
                rest = &rest[comma + 1..];
            }
            let rest = rest.trim_start();
            let id = rest.strip_prefix('"').and_then(|lit| lit.split_once('"'));
            if let Some((id, _)) = id.filter(|(id, _)| {
                !id.is_empty()
                    && id
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_".contains(c))
            }) {
                ids.push(id.to_owned());
            }
        }
    }
    ids
}

#[test]
fn every_id_the_code_uses_is_in_the_catalogue() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut files = Vec::new();
    sources(&root.join("crates"), &mut files);
    sources(&root.join("src"), &mut files);
    let mut used = 0;
    for file in files {
        let code = std::fs::read_to_string(&file).unwrap();
        // Comments show the macros with made-up ids.
        let code: String = code
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .map(|l| format!("{l}\n"))
            .collect();
        for id in ids_used(&code) {
            if id == "no-such-message" {
                continue;
            }
            used += 1;
            assert!(
                has(Lang::En, &id),
                "{}: {id} is not in the catalogue",
                file.display()
            );
        }
    }
    assert!(used > 40, "only {used} catalogue ids found in the code");
}

/// String literals in `code` (outside comments, test modules, logs and panics) that read like English
/// prose: two words of letters in a row. Everything a person reads must come from the catalogue instead.
fn english_literals(code: &str) -> Vec<String> {
    let mut found = Vec::new();
    let code = code.split("#[cfg(test)]").next().unwrap_or("");
    for line in code.lines() {
        let line = line.trim_start();
        if line.starts_with("//")
            || ["tracing::", ".expect(", "unreachable!(", "panic!("]
                .iter()
                .any(|s| line.contains(s))
        {
            continue;
        }
        let mut rest = line;
        while let Some(start) = rest.find('"') {
            let after = &rest[start + 1..];
            let Some(end) = after.find('"') else { break };
            let literal = &after[..end];
            let words: Vec<&str> = literal.split(' ').collect();
            let prose = words.windows(2).any(|w| {
                w.iter()
                    .all(|w| w.len() >= 2 && w.chars().all(|c| c.is_ascii_alphabetic()))
            });
            if prose {
                found.push(literal.to_owned());
            }
            rest = &after[end + 1..];
        }
    }
    found
}

/// Issue 18: no user-facing English outside the catalogues in the clients and the plain-text front end.
#[test]
fn the_clients_and_the_plain_text_front_end_say_nothing_outside_the_catalogue() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut files = Vec::new();
    sources(&root.join("crates/client/src"), &mut files);
    sources(&root.join("crates/server/src/frontend"), &mut files);
    files.push(root.join("crates/server/src/transport.rs"));
    files.push(root.join("crates/proto/src/command.rs"));
    files.push(root.join("crates/proto/src/text.rs"));
    let mut offenders = Vec::new();
    for file in &files {
        let code = std::fs::read_to_string(file).unwrap();
        for literal in english_literals(&code) {
            offenders.push(format!("{}: {literal:?}", file.display()));
        }
    }
    assert!(
        offenders.is_empty(),
        "English outside the catalogue:\n{}",
        offenders.join("\n")
    );
    // The check itself finds what it looks for.
    assert_eq!(
        english_literals("let x = format!(\"{n} messages sending\");"),
        ["{n} messages sending"]
    );
    assert!(english_literals("let x = \"[{when}] {} → {}: {}\";").is_empty());
}
