//! How server frames read as lines of text in the line client. Pure functions, unit-tested.
//!
//! Everything from the network passes through [`natter_proto::text::neutralise`] before it is printed,
//! so no control character or escape sequence reaches the terminal.

use natter_proto::frame::{Message, RoomInfo};
use natter_proto::text::{neutralise, room_prefix};
use natter_proto::{time, LeftReason, LOBBY};

fn body(text: &str) -> String {
    natter_proto::text::body(text, "\n")
}

/// `[YYYY-MM-DD HH:MM:SS] bob: text`, `[…] bob → you: text`, `[…] #rust bob: text`, or for a private
/// message `me` sent (replayed) `[…] you → bob: text`.
pub fn message(m: &Message, me: &str) -> String {
    natter_proto::text::message_line(m, Some(me), "\n")
}

/// Your own message, once the server acknowledged it.
pub fn own(ts: &str, me: &str, room: Option<&str>, to: Option<&str>, text: &str) -> String {
    let when = time::local_display_wire(ts);
    match (room, to) {
        (_, Some(to)) => format!("[{when}] you → {}: {}", neutralise(to), body(text)),
        (room, None) => format!(
            "[{when}] {}{}: {}",
            room_prefix(room.unwrap_or(LOBBY)),
            neutralise(me),
            body(text)
        ),
    }
}

pub fn joined(room: &str, name: &str, me: &str) -> String {
    if name == me {
        format!("* you joined #{}", neutralise(room))
    } else {
        format!("* {} joined #{}", neutralise(name), neutralise(room))
    }
}

pub fn left(room: &str, name: &str, reason: LeftReason) -> String {
    let why = match reason {
        LeftReason::Exit | LeftReason::Leave => String::new(),
        other => format!(" ({})", other.as_str()),
    };
    format!("* {} left #{}{why}", neutralise(name), neutralise(room))
}

pub fn users(room: &str, names: &[String]) -> String {
    let names: Vec<_> = names.iter().map(|n| neutralise(n).into_owned()).collect();
    format!("* in #{}: {}", neutralise(room), names.join(", "))
}

/// A room too big to list on every join.
pub fn member_count(room: &str, count: usize) -> String {
    let room = neutralise(room);
    format!("* #{room} has {count} members; /who {room} lists them")
}

pub fn rooms(rooms: &[RoomInfo]) -> String {
    let list: Vec<_> = rooms
        .iter()
        .map(|r| format!("#{} ({})", neutralise(&r.name), r.members))
        .collect();
    format!("* rooms: {}", list.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(room: Option<&str>, to: Option<&str>, text: &str) -> Message {
        Message {
            seq: 1,
            ts: "2026-11-25T16:38:57.123Z".into(),
            room: room.map(Into::into),
            from: "bob".into(),
            to: to.map(Into::into),
            text: text.into(),
        }
    }

    fn after_stamp(line: &str) -> &str {
        assert!(line.starts_with('[') && &line[20..22] == "] ", "{line}");
        &line[22..]
    }

    #[test]
    fn lines_read_like_the_lab() {
        assert_eq!(
            after_stamp(&message(&msg(Some("lobby"), None, "hi 你好"), "me")),
            "bob: hi 你好"
        );
        assert_eq!(
            after_stamp(&message(&msg(Some("rust"), None, "hi"), "me")),
            "#rust bob: hi"
        );
        assert_eq!(
            after_stamp(&message(&msg(None, Some("me"), "psst"), "me")),
            "bob → you: psst"
        );
        // Issue 11, bug 9: your own private message in a replay reads as it did when you sent it.
        assert_eq!(
            after_stamp(&message(&msg(None, Some("alice"), "hi alice"), "BOB")),
            "you → alice: hi alice"
        );
        assert_eq!(
            after_stamp(&own(
                "2026-11-25T16:38:57.123Z",
                "me",
                None,
                Some("bob"),
                "x"
            )),
            "you → bob: x"
        );
        assert_eq!(
            left("lobby", "bob", LeftReason::Disconnect),
            "* bob left #lobby (disconnect)"
        );
        assert_eq!(joined("lobby", "bob", "me"), "* bob joined #lobby");
    }

    #[test]
    fn escapes_never_reach_the_terminal() {
        let line = message(
            &msg(Some("lobby"), None, "\u{1b}]0;pwned\u{7}two\nlines"),
            "me",
        );
        assert!(!line.contains('\u{1b}') && !line.contains('\u{7}'));
        assert!(line.ends_with("two\n    lines"));
    }
}
