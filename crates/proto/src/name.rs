//! User and room names.
//!
//! A name is 1–32 characters: Unicode letters and digits plus `_`, `-` and `.`. `张三` is a fine name.
//! Names are NFC-normalised when they are made, so two spellings of the same visible name are one name,
//! and two names are "the same" when their lower-case forms are equal ([`Name::key`]).
//! This module is the only place that decides what "same name" means.

use std::fmt;
use std::hash::{Hash, Hasher};

use unicode_normalization::UnicodeNormalization;

/// Longest allowed name, in characters (not bytes).
pub const MAX_NAME_CHARS: usize = 32;

/// Why a string is not a valid name.
/// It reads as the `invalid_name` error's English text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameError {
    Empty,
    /// More than [`MAX_NAME_CHARS`].
    TooLong,
    BadChar(char),
    /// Letters of scripts that are not normally written together (UTS #39: less than "highly
    /// restrictive"), as in a Cyrillic `а` among Latin letters.
    MixedScripts,
}

impl std::fmt::Display for NameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let code = crate::ErrorCode::InvalidName;
        let text = crate::frame::error_text(natter_i18n::Lang::En, code, &self.args(), "");
        f.write_str(&text)
    }
}

impl std::error::Error for NameError {}

impl NameError {
    /// The placeholders of the `invalid_name` and `invalid_room` texts (`reason`, `max`, `char`).
    pub fn args(&self) -> crate::frame::ErrorArgs {
        match self {
            NameError::Empty => crate::error_args!(reason = "empty"),
            NameError::TooLong => crate::error_args!(reason = "too_long", max = MAX_NAME_CHARS),
            NameError::BadChar(c) => {
                crate::error_args!(reason = "bad_char", char = format!("{c:?}"))
            }
            NameError::MixedScripts => crate::error_args!(reason = "mixed_scripts"),
        }
    }
}

/// Checks the characters of a name and returns its NFC form.
fn validate(raw: &str) -> Result<String, NameError> {
    let nfc: String = raw.nfc().collect();
    let count = nfc.chars().count();
    if count == 0 {
        return Err(NameError::Empty);
    }
    if count > MAX_NAME_CHARS {
        return Err(NameError::TooLong);
    }
    if let Some(bad) = nfc
        .chars()
        .find(|c| !(c.is_alphanumeric() || matches!(c, '_' | '-' | '.')))
    {
        return Err(NameError::BadChar(bad));
    }
    if !scripts_go_together(&nfc) {
        return Err(NameError::MixedScripts);
    }
    Ok(nfc)
}

/// Whether a name's letters are of one script, or of scripts written together (Latin with Han, kana or
/// Hangul) — UTS #39's "highly restrictive" level. Characters UTS #39 does not recommend for identifiers
/// (fullwidth letters, for one) count as mixing, since they exist to look like others.
fn scripts_go_together(name: &str) -> bool {
    use unicode_security::{RestrictionLevel, RestrictionLevelDetection};
    // '_', '-' and '.' are natter's own separators, not letters: they take no part in the decision.
    let letters: String = name.chars().filter(|c| c.is_alphanumeric()).collect();
    letters.as_str().detect_restriction_level() <= RestrictionLevel::HighlyRestrictive
}

/// A fingerprint of what a name *looks like* as written: names a reader could take for each other
/// (`alice`, `aIice` with a capital I, `ａｌｉｃｅ`, `аlice` with a Cyrillic а) share it. As Ergo does it:
/// width is folded (NFKC), then the UTS #39 confusable skeleton is taken, then case is folded. (Names that
/// differ only in case are the same name anyway: see [`fold`].) Servers refuse a name whose look-alike is
/// in use or owned.
pub fn look_alike_key(name: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    look_alike_skeleton(name).hash(&mut hasher);
    hasher.finish()
}

/// What [`look_alike_key`] fingerprints, in full: the same for names a reader could take for each
/// other, and stable across builds (a cluster's nodes compare it).
pub fn look_alike_skeleton(name: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    let width_folded: String = name.nfkc().collect();
    let skeleton: String = unicode_security::skeleton(&width_folded).collect();
    skeleton.to_lowercase()
}

/// What "the same name" means: two names (or room names) are the same when their folded forms are equal.
/// [`Name`] and [`RoomName`] use it for equality and hashing; clients use it to compare names they hold
/// as plain strings.
pub fn fold(s: &str) -> String {
    s.to_lowercase()
}

macro_rules! name_type {
    ($(#[$doc:meta])* $ty:ident) => {
        $(#[$doc])*
        ///
        /// Cloning shares the text: a name is stored once however many tables hold it.
        #[derive(Clone)]
        pub struct $ty {
            /// As the user spelled it (after NFC): what others see.
            display: std::sync::Arc<str>,
            /// Lower-cased: what equality, hashing and lookups use.
            key: std::sync::Arc<str>,
        }

        impl $ty {
            /// Validates and normalises `raw`.
            pub fn new(raw: &str) -> Result<Self, NameError> {
                let display = validate(raw)?;
                let key = fold(&display);
                let display: std::sync::Arc<str> = display.into();
                // Most names are written as they fold: then both are one allocation.
                let key = if key == *display {
                    display.clone()
                } else {
                    key.into()
                };
                Ok(Self { display, key })
            }

            /// The name as it is displayed.
            pub fn as_str(&self) -> &str {
                &self.display
            }

            /// The case-folded form: equal keys mean the same name.
            pub fn key(&self) -> &str {
                &self.key
            }
        }

        impl PartialEq for $ty {
            fn eq(&self, other: &Self) -> bool {
                self.key == other.key
            }
        }
        impl Eq for $ty {}
        /// Tables keyed by a name can be searched with its key.
        impl std::borrow::Borrow<str> for $ty {
            fn borrow(&self) -> &str {
                &self.key
            }
        }
        impl Hash for $ty {
            fn hash<H: Hasher>(&self, state: &mut H) {
                self.key.hash(state)
            }
        }
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.display)
            }
        }
        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&self.display, f)
            }
        }
    };
}

name_type!(
    /// A user's name (nickname).
    Name
);
name_type!(
    /// A room's name, without any leading `#`.
    RoomName
);

impl RoomName {
    /// Like [`RoomName::new`] but accepts the IRC habit of a leading `#`.
    pub fn parse_lenient(raw: &str) -> Result<Self, NameError> {
        Self::new(raw.strip_prefix('#').unwrap_or(raw))
    }

    /// The lobby, which every user joins on `hello`.
    pub fn lobby() -> Self {
        Self::new(crate::LOBBY).expect("lobby is a valid room name")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_latin_cjk_and_punctuation() {
        for ok in ["alice", "张三", "a_b-c.d", "Ünïcödé", "x", &"n".repeat(32)] {
            assert!(Name::new(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn rejects_bad_names() {
        assert_eq!(Name::new(""), Err(NameError::Empty));
        assert_eq!(Name::new(&"n".repeat(33)), Err(NameError::TooLong));
        assert_eq!(Name::new("a b"), Err(NameError::BadChar(' ')));
        assert_eq!(Name::new("a\u{1b}"), Err(NameError::BadChar('\u{1b}')));
        assert_eq!(Name::new("a:b"), Err(NameError::BadChar(':')));
    }

    /// Issue 12: scripts that are not written together are refused; Chinese, Zoë, Greek alone, Latin with
    /// Han or kana are fine.
    #[test]
    fn mixed_script_names_are_refused() {
        for ok in [
            "张三",
            "Zoë",
            "bob_2",
            "张三bob",
            "さくらSakura",
            "Ελένη",
            "Иван",
            "김민준",
        ] {
            assert!(Name::new(ok).is_ok(), "{ok}: {:?}", Name::new(ok));
        }
        for bad in ["\u{430}lice", "p\u{430}ypal", "\u{3b1}lpha-a"] {
            assert_eq!(Name::new(bad), Err(NameError::MixedScripts), "{bad}");
        }
    }

    /// Issue 12: look-alikes share a key — case, full width, Cyrillic letters that look Latin.
    #[test]
    fn look_alikes_share_a_key() {
        let alice = look_alike_key("alice");
        assert_eq!(look_alike_key("aIice"), alice, "a capital I for the l");
        assert_eq!(look_alike_key("a1ice"), alice, "a one for the l");
        assert_eq!(
            look_alike_key("\u{ff41}\u{ff4c}\u{ff49}\u{ff43}\u{ff45}"),
            alice,
            "fullwidth"
        );
        assert_eq!(look_alike_key("\u{430}lice"), alice, "Cyrillic а");
        assert_eq!(
            look_alike_key("\u{ff42}\u{ff4f}\u{ff42}"),
            look_alike_key("bob")
        );
        assert_ne!(look_alike_key("alice"), look_alike_key("alicia"));
        assert_ne!(look_alike_key("张三"), look_alike_key("张四"));
    }

    #[test]
    fn counts_characters_not_bytes() {
        // 32 CJK characters are 96 bytes but a valid name.
        assert!(Name::new(&"张".repeat(32)).is_ok());
        assert_eq!(Name::new(&"张".repeat(33)), Err(NameError::TooLong));
    }

    #[test]
    fn same_name_ignores_case_and_normalisation() {
        assert_eq!(Name::new("Alice").unwrap(), Name::new("aLICE").unwrap());
        // "é" precomposed vs "e" + combining acute accent.
        let a = Name::new("caf\u{e9}").unwrap();
        let b = Name::new("cafe\u{301}").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.as_str(), b.as_str());
        assert_eq!(Name::new("Alice").unwrap().as_str(), "Alice");
    }

    #[test]
    fn room_names_accept_a_leading_hash() {
        assert_eq!(RoomName::parse_lenient("#Rust").unwrap().as_str(), "Rust");
        assert_eq!(
            RoomName::parse_lenient("#rust").unwrap(),
            RoomName::new("RUST").unwrap()
        );
        assert!(RoomName::new("#rust").is_err());
    }
}
