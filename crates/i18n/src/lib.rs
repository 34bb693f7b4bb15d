//! Every word natter says to a person, in English and Simplified Chinese.
//!
//! The texts live in Project Fluent catalogues, one file per language under `locales/` (see
//! docs/TRANSLATING.md), compiled into the binary. Code never spells a sentence out; it names a message and
//! hands over the pieces (names, counts, rooms) as arguments:
//!
//! ```
//! use natter_i18n::{tl, Lang};

//! assert_eq!(tl!(Lang::En, "error-no_such_user", name = "bob"), "nobody called bob is here");
//! assert_eq!(tl!(Lang::ZhCn, "error-no_such_user", name = "bob"), "这里没有叫 bob 的人");
//! ```
//!
//! A client speaks one language for its whole run ([`set_lang`], read back by [`t!`]); the server speaks a
//! language per connection and passes it explicitly ([`tl!`]).

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::LazyLock;

use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource, FluentValue};

/// A language natter speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Lang {
    #[default]
    En,
    /// Simplified Chinese.
    ZhCn,
}

/// The catalogues, in the order of [`Lang::ALL`].
const SOURCES: [&str; 2] = [
    include_str!("../locales/en/natter.ftl"),
    include_str!("../locales/zh-CN/natter.ftl"),
];

impl Lang {
    /// Every language, English (the fallback) first.
    pub const ALL: [Lang; 2] = [Lang::En, Lang::ZhCn];

    /// The BCP 47 tag, as `--lang` and `/lang` take it.
    pub fn tag(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::ZhCn => "zh-CN",
        }
    }

    /// Understands a language tag (`zh-CN`, `zh`, `en-GB`) or a POSIX locale (`zh_CN.UTF-8`, `C`).
    /// Chinese in any region maps to the one Chinese catalogue there is; `C`, `POSIX` and English map to
    /// English. Anything else is `None`.
    pub fn parse(tag: &str) -> Option<Lang> {
        // Drop the encoding and modifier of a POSIX locale: zh_CN.UTF-8@pinyin → zh_CN.
        let base = tag.split(['.', '@']).next().unwrap_or("").trim();
        let language = base.split(['_', '-']).next().unwrap_or("");
        match language.to_ascii_lowercase().as_str() {
            "zh" => Some(Lang::ZhCn),
            "en" | "c" | "posix" => Some(Lang::En),
            _ => None,
        }
    }

    /// The language of a POSIX environment: the first of `LC_ALL`, `LC_MESSAGES` and `LANG` that is set and
    /// not empty decides (as for every other program); a language natter does not have means English.
    pub fn from_locale(
        lc_all: Option<&str>,
        lc_messages: Option<&str>,
        lang: Option<&str>,
    ) -> Lang {
        [lc_all, lc_messages, lang]
            .into_iter()
            .flatten()
            .find(|v| !v.is_empty())
            .and_then(Lang::parse)
            .unwrap_or(Lang::En)
    }

    /// [`Lang::from_locale`] of this process's environment.
    pub fn from_env() -> Lang {
        let var = |k| std::env::var(k).ok();
        Lang::from_locale(
            var("LC_ALL").as_deref(),
            var("LC_MESSAGES").as_deref(),
            var("LANG").as_deref(),
        )
    }

    /// The position in [`Lang::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// The language at `index` in [`Lang::ALL`] (English for anything else).
    pub fn from_index(index: usize) -> Lang {
        Lang::ALL.get(index).copied().unwrap_or_default()
    }
}

impl std::fmt::Display for Lang {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.tag())
    }
}

impl std::str::FromStr for Lang {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Lang::parse(s).ok_or_else(|| format!("unknown language {s:?} (natter speaks en and zh-CN)"))
    }
}

/// A value for a placeholder: text, or a number (which plural rules can select on).
#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    Text(String),
    Number(f64),
}

impl From<&str> for Arg {
    fn from(s: &str) -> Self {
        Arg::Text(s.to_owned())
    }
}

impl From<String> for Arg {
    fn from(s: String) -> Self {
        Arg::Text(s)
    }
}

impl From<&String> for Arg {
    fn from(s: &String) -> Self {
        Arg::Text(s.clone())
    }
}

macro_rules! number_arg {
    ($($t:ty),*) => {$(
        impl From<$t> for Arg {
            fn from(n: $t) -> Self {
                Arg::Number(n as f64)
            }
        }
    )*};
}
number_arg!(usize, u64, u32, u16, i64, i32, f64);

static BUNDLES: LazyLock<Vec<FluentBundle<FluentResource>>> = LazyLock::new(|| {
    Lang::ALL
        .iter()
        .map(|&lang| {
            let source = SOURCES[lang.index()].to_owned();
            // A broken catalogue is caught by the tests below; what parsed is still used.
            let resource = FluentResource::try_new(source).unwrap_or_else(|(partial, _)| partial);
            let id = lang.tag().parse().unwrap_or_default();
            let mut bundle = FluentBundle::new_concurrent(vec![id]);
            // Unicode isolation marks around placeholders would reach terminals and `nc` as invisible
            // characters; natter's placeholders are names and numbers, not right-to-left text.
            bundle.set_use_isolating(false);
            let _ = bundle.add_resource(resource);
            bundle
        })
        .collect()
});

/// The text of message `id` in `lang`, with `args` filled in. A message missing from a catalogue falls
/// back to English, and one missing from English shows its id (the tests make both impossible for the
/// ids natter's code uses).
pub fn text(lang: Lang, id: &str, args: &[(&str, Arg)]) -> String {
    format(lang, id, args).map_or_else(|| id.to_owned(), |(text, _)| text)
}

/// Like [`text`], but `None` when `lang` and English both lack `id` or `args` lack a placeholder the text
/// needs — for texts whose arguments come from elsewhere (an error frame's `args`).
pub fn text_checked(lang: Lang, id: &str, args: &[(&str, Arg)]) -> Option<String> {
    format(lang, id, args).and_then(|(text, complete)| complete.then_some(text))
}

/// Message `id` in `lang` (else English) with `args` filled in, and whether every placeholder had one.
fn format(lang: Lang, id: &str, args: &[(&str, Arg)]) -> Option<(String, bool)> {
    let fluent_args = fluent_args(args);
    [lang, Lang::En].into_iter().find_map(|lang| {
        let bundle = &BUNDLES[lang.index()];
        let pattern = bundle.get_message(id)?.value()?;
        let mut errors = Vec::new();
        let text = bundle.format_pattern(pattern, Some(&fluent_args), &mut errors);
        Some((text.into_owned(), errors.is_empty()))
    })
}

fn fluent_args<'a>(args: &'a [(&str, Arg)]) -> FluentArgs<'a> {
    let mut fluent_args = FluentArgs::new();
    for (name, value) in args {
        match value {
            Arg::Text(s) => fluent_args.set(*name, FluentValue::from(s.as_str())),
            Arg::Number(n) => fluent_args.set(*name, FluentValue::from(*n)),
        }
    }
    fluent_args
}

/// Whether `lang`'s catalogue has message `id`.
pub fn has(lang: Lang, id: &str) -> bool {
    BUNDLES[lang.index()].has_message(id)
}

static PROCESS_LANG: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static THREAD_LANG: Cell<Option<Lang>> = const { Cell::new(None) };
}

/// Sets the language of this process (a client's: chosen at start, changed by `/lang`).
pub fn set_lang(lang: Lang) {
    PROCESS_LANG.store(lang.index(), Ordering::Relaxed);
}

/// The language [`t!`] speaks: this thread's override ([`with_lang`]), else the process's (English unless
/// set).
pub fn lang() -> Lang {
    THREAD_LANG
        .with(Cell::get)
        .unwrap_or_else(|| Lang::from_index(PROCESS_LANG.load(Ordering::Relaxed)))
}

/// Runs `f` with [`t!`] speaking `lang` on this thread — for tests that render both languages in one
/// process.
pub fn with_lang<R>(lang: Lang, f: impl FnOnce() -> R) -> R {
    let before = THREAD_LANG.with(|l| l.replace(Some(lang)));
    let result = f();
    THREAD_LANG.with(|l| l.set(before));
    result
}

/// A message in the process's language: `t!("id")` or `t!("id", name = value, …)`.
#[macro_export]
macro_rules! t {
    ($id:expr $(, $name:ident = $value:expr)* $(,)?) => {
        $crate::text($crate::lang(), $id, &[$(($crate::arg_name(stringify!($name)), $crate::Arg::from($value))),*])
    };
}

/// A message in a given language: `tl!(lang, "id", name = value, …)`.
#[macro_export]
macro_rules! tl {
    ($lang:expr, $id:expr $(, $name:ident = $value:expr)* $(,)?) => {
        $crate::text($lang, $id, &[$(($crate::arg_name(stringify!($name)), $crate::Arg::from($value))),*])
    };
}

/// A placeholder's name from the macros: `r#where` names `$where`.
#[doc(hidden)]
pub fn arg_name(ident: &'static str) -> &'static str {
    ident.strip_prefix("r#").unwrap_or(ident)
}

/// The catalogues' own source, for checks and for front ends that ship it (the browser page).
pub fn source(lang: Lang) -> &'static str {
    SOURCES[lang.index()]
}

#[cfg(test)]
mod tests;
