//! What message text may contain, and how to make untrusted text safe to print.
//!
//! The server rejects text that is empty, too long, or carries control characters other than newline and
//! tab (which covers ANSI escape sequences: they start with ESC). Clients additionally pass everything they
//! print through [`neutralise`], so even a hostile or buggy server cannot repaint a user's terminal.

use std::borrow::Cow;

use natter_i18n::{tl, Lang};

use crate::frame::{Message, RoomEvent};

/// Default largest message text, in bytes.
pub const DEFAULT_MAX_TEXT: usize = 8 * 1024;

/// Why a text was refused. It reads as the `invalid_text` error's English text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TextError {
    Empty,
    /// Longer than this many bytes.
    TooLong(usize),
    /// This control character.
    Control(u32),
}

impl std::fmt::Display for TextError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let code = crate::ErrorCode::InvalidText;
        f.write_str(&crate::frame::error_text(Lang::En, code, &self.args(), ""))
    }
}

impl std::error::Error for TextError {}

impl TextError {
    /// The placeholders of the `invalid_text` text (`reason`, `max`, `char`).
    pub fn args(&self) -> crate::frame::ErrorArgs {
        match self {
            TextError::Empty => crate::error_args!(reason = "empty"),
            TextError::TooLong(max) => crate::error_args!(reason = "too_long", max = *max),
            TextError::Control(c) => {
                crate::error_args!(reason = "control", char = format!("U+{c:04X}"))
            }
        }
    }
}

/// Control characters a message may not carry: C0 except `\n` and `\t`, DEL, and C1.
pub fn is_forbidden(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t') || c == '\u{7f}'
}

/// Checks a message text against the rules above.
pub fn validate(text: &str, max_bytes: usize) -> Result<(), TextError> {
    if text.trim().is_empty() {
        return Err(TextError::Empty);
    }
    if text.len() > max_bytes {
        return Err(TextError::TooLong(max_bytes));
    }
    if let Some(c) = text.chars().find(|&c| is_forbidden(c)) {
        return Err(TextError::Control(c as u32));
    }
    Ok(())
}

/// Replaces every forbidden control character with U+FFFD so the text can be printed safely.
pub fn neutralise(text: &str) -> Cow<'_, str> {
    if text.chars().any(is_forbidden) {
        Cow::Owned(
            text.chars()
                .map(|c| if is_forbidden(c) { '\u{fffd}' } else { c })
                .collect(),
        )
    } else {
        Cow::Borrowed(text)
    }
}

/// `#room ` for rooms other than the lobby (so lobby chat reads exactly like the lab's), else nothing.
pub fn room_prefix(room: &str) -> String {
    if room.eq_ignore_ascii_case(crate::LOBBY) {
        String::new()
    } else {
        format!("#{} ", neutralise(room))
    }
}

/// A room event in words, without who did it ("kicked bob (spam)", "set the topic: …"), in `lang`. Text
/// from the network is neutralised.
pub fn describe_event(lang: Lang, event: &RoomEvent) -> String {
    let name = neutralise(event.name.as_deref().unwrap_or_default()).into_owned();
    let text = neutralise(event.text.as_deref().unwrap_or_default()).into_owned();
    let on = tl!(
        lang,
        if event.on.unwrap_or(false) {
            "on"
        } else {
            "off"
        }
    );
    let kind = match event.kind.as_str() {
        "kick" if !text.is_empty() => "kick_why",
        kind => kind,
    };
    tl!(
        lang,
        "room-event",
        kind = neutralise(kind).into_owned(),
        name = name,
        text = text,
        minutes = event.minutes.unwrap_or(0),
        on = on
    )
}

/// Neutralised text whose continuation lines are indented (after `newline`), so a multi-line message
/// cannot pass for several messages.
pub fn body(text: &str, newline: &str) -> String {
    neutralise(text).replace('\n', &format!("{newline}    "))
}

/// The lab's line for a message, in the viewer's local time: `[YYYY-MM-DD HH:MM:SS] bob: text`,
/// `[…] #rust bob: text`, `[…] bob → you: text`, or — a private message the viewer `me` sent, as replays
/// show them — `[…] you → bob: text`, exactly as it read when it was sent ("you" in `lang`). Used by every
/// text front end.
///
/// A shared file reads `[…] alice shared report.pdf (2.4 MiB) — /get 17`, with `get` the way the viewer
/// fetches it (`/get` in natter's clients, `natter get` for a person behind `nc`).
pub fn message_line(lang: Lang, m: &Message, me: Option<&str>, newline: &str, get: &str) -> String {
    let when = crate::time::local_display_wire(&m.ts);
    let from = neutralise(&m.from);
    // Folded only for private messages: text front ends render every room message through here.
    let mine = || me.is_some_and(|me| crate::name::fold(me) == crate::name::fold(&m.from));
    if let Some(file) = &m.file {
        let shared = describe_file(lang, file, get);
        return match (&m.room, &m.to) {
            (Some(room), _) => format!("[{when}] {}{from} {shared}", room_prefix(room)),
            (None, Some(to)) if mine() => {
                format!(
                    "[{when}] {} → {}: {shared}",
                    tl!(lang, "you"),
                    neutralise(to)
                )
            }
            (None, _) => format!("[{when}] {from} → {}: {shared}", tl!(lang, "you")),
        };
    }
    match (&m.room, &m.to) {
        (Some(room), _) if m.event.is_some() => format!(
            "[{when}] {}* {from} {}",
            room_prefix(room),
            m.event
                .as_ref()
                .map(|e| describe_event(lang, e))
                .unwrap_or_default()
        ),
        (Some(room), _) => format!(
            "[{when}] {}{from}: {}",
            room_prefix(room),
            body(&m.text, newline)
        ),
        (None, Some(to)) if mine() => format!(
            "[{when}] {} → {}: {}",
            tl!(lang, "you"),
            neutralise(to),
            body(&m.text, newline)
        ),
        (None, _) => format!(
            "[{when}] {from} → {}: {}",
            tl!(lang, "you"),
            body(&m.text, newline)
        ),
    }
}

/// `shared report.pdf (2.4 MiB) — /get 17` (or `— expired`), in `lang`.
pub fn describe_file(lang: Lang, file: &crate::file::FileInfo, get: &str) -> String {
    let name = neutralise(&file.name);
    let size = crate::file::human_size(file.size);
    if file.expired {
        tl!(
            lang,
            "file-shared-expired",
            file = name.as_ref(),
            size = size
        )
    } else {
        tl!(
            lang,
            "file-shared",
            file = name.as_ref(),
            size = size,
            get = get,
            id = file.id.to_string()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_text() {
        for t in [
            "hi",
            "你好，世界",
            "emoji 🎉👍🏽",
            "two\nlines",
            "tab\there",
            "é e\u{301}",
        ] {
            assert_eq!(validate(t, 100), Ok(()), "{t:?}");
        }
    }

    #[test]
    fn rejects_empty_long_and_control() {
        assert_eq!(validate("", 100), Err(TextError::Empty));
        assert_eq!(validate(" \n ", 100), Err(TextError::Empty));
        assert_eq!(
            validate(&"x".repeat(101), 100),
            Err(TextError::TooLong(100))
        );
        assert_eq!(validate("\u{1b}[2J", 100), Err(TextError::Control(0x1b)));
        assert_eq!(validate("a\rb", 100), Err(TextError::Control(0x0d)));
        assert_eq!(validate("a\u{9b}b", 100), Err(TextError::Control(0x9b)));
        assert_eq!(validate("a\u{7f}", 100), Err(TextError::Control(0x7f)));
    }

    #[test]
    fn neutralise_replaces_only_forbidden() {
        assert_eq!(neutralise("\u{1b}[31mred\n"), "\u{fffd}[31mred\n");
        assert!(matches!(neutralise("fine 好"), Cow::Borrowed(_)));
    }
}
