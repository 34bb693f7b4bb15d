//! How server frames read as lines of text in the line client. Pure functions, unit-tested.
//!
//! Everything from the network passes through [`natter_proto::text::neutralise`] before it is printed,
//! so no control character or escape sequence reaches the terminal. Every word of natter's own comes from
//! the catalogue, in the client's language ([`natter_i18n::lang`]).

use natter_i18n::t;
use natter_proto::frame::{Message, RoomInfo};
use natter_proto::text::{neutralise, room_prefix};
use natter_proto::{time, LeftReason, LOBBY};

fn body(text: &str) -> String {
    natter_proto::text::body(text, "\n")
}

/// `[YYYY-MM-DD HH:MM:SS] bob: text`, `[…] bob → you: text`, `[…] #rust bob: text`, or for a private
/// message `me` sent (replayed) `[…] you → bob: text`.
pub fn message(m: &Message, me: &str) -> String {
    natter_proto::text::message_line(
        natter_i18n::lang(),
        m,
        Some(me),
        "\n",
        natter_proto::file::SLASH_GET,
    )
}

/// Your own message, once the server acknowledged it.
pub fn own(ts: &str, me: &str, room: Option<&str>, to: Option<&str>, text: &str) -> String {
    let when = time::local_display_wire(ts);
    match (room, to) {
        (_, Some(to)) => format!(
            "[{when}] {} → {}: {}",
            t!("you"),
            neutralise(to),
            body(text)
        ),
        (room, None) => format!(
            "[{when}] {}{}: {}",
            room_prefix(room.unwrap_or(LOBBY)),
            neutralise(me),
            body(text)
        ),
    }
}

/// `#room`, neutralised.
pub fn room_tag(room: &str) -> String {
    format!("#{}", neutralise(room))
}

pub fn joined(room: &str, name: &str, me: &str) -> String {
    let r#where = format!(" {}", room_tag(room));
    if name == me {
        format!("* {}", t!("presence-you-joined", r#where = r#where))
    } else {
        let name = neutralise(name);
        format!(
            "* {}",
            t!("presence-joined", name = name.as_ref(), r#where = r#where)
        )
    }
}

/// `bob left #rust`, with why when it was not their choice (in the client's language).
pub fn left_text(room: &str, name: &str, reason: LeftReason) -> String {
    let r#where = format!(" {}", room_tag(room));
    let name = neutralise(name);
    match reason {
        LeftReason::Exit | LeftReason::Leave => {
            t!("presence-left", name = name.as_ref(), r#where = r#where)
        }
        other => t!(
            "presence-left-why",
            name = name.as_ref(),
            r#where = r#where,
            why = t!("left-reason", reason = other.as_str())
        ),
    }
}

pub fn left(room: &str, name: &str, reason: LeftReason) -> String {
    format!("* {}", left_text(room, name, reason))
}

/// `in #room: a, b`, without a marker.
pub fn users_text(room: &str, names: &[String]) -> String {
    let names: Vec<_> = names.iter().map(|n| neutralise(n).into_owned()).collect();
    t!(
        "members-in",
        room = room_tag(room),
        names = names.join(", ")
    )
}

pub fn users(room: &str, names: &[String]) -> String {
    format!("* {}", users_text(room, names))
}

/// A room too big to list on every join, without a marker.
pub fn member_count_text(room: &str, count: usize) -> String {
    t!("members-count", room = room_tag(room), count = count)
}

pub fn member_count(room: &str, count: usize) -> String {
    format!("* {}", member_count_text(room, count))
}

/// `rooms: #a (3), #b (1)`, without a marker.
pub fn rooms_text(rooms: &[RoomInfo]) -> String {
    let list: Vec<_> = rooms
        .iter()
        .map(|r| format!("{} ({})", room_tag(&r.name), r.members))
        .collect();
    t!("rooms-list", list = list.join(", "))
}

pub fn rooms(rooms: &[RoomInfo]) -> String {
    format!("* {}", rooms_text(rooms))
}

/// What an error frame means, in the client's language (the server's text for a code this build does
/// not know).
pub fn error(
    code: natter_proto::ErrorCode,
    args: &natter_proto::frame::ErrorArgs,
    message: &str,
) -> String {
    natter_proto::frame::error_text(natter_i18n::lang(), code, args, message)
}

/// `no earlier messages in #room` (or in private messages).
pub fn no_earlier(room: Option<&str>) -> String {
    let r#where = room.map_or_else(|| t!("private-messages"), room_tag);
    t!("no-earlier-messages", r#where = r#where)
}

/// The `/help` lines, in the client's language; `extra` adds a client's own keys.
pub fn help(extra: &[(&str, &str)]) -> Vec<String> {
    natter_proto::command::help_lines(natter_i18n::lang(), extra)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(room: Option<&str>, to: Option<&str>, text: &str) -> Message {
        Message {
            tags: Default::default(),
            notice: false,
            seq: 1,
            ts: "2026-11-25T16:38:57.123Z".into(),
            room: room.map(Into::into),
            from: "bob".into(),
            to: to.map(Into::into),
            text: text.into(),
            event: None,
            file: None,
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
            "* bob left #lobby (connection dropped)"
        );
        assert_eq!(joined("lobby", "bob", "me"), "* bob joined #lobby");
    }

    /// Issue 12: a room event reads as who did what, in the user's language.
    #[test]
    fn room_events_read_as_who_did_what() {
        let mut m = msg(Some("rust"), None, "set the topic: 你好");
        m.event = Some(Box::new(natter_proto::frame::RoomEvent {
            kind: "topic".into(),
            name: None,
            text: Some("你好".into()),
            minutes: None,
            on: None,
        }));
        assert_eq!(
            after_stamp(&message(&m, "me")),
            "#rust * bob set the topic: 你好"
        );
        natter_i18n::with_lang(natter_i18n::Lang::ZhCn, || {
            assert_eq!(
                after_stamp(&message(&m, "me")),
                "#rust * bob 设置了话题：你好"
            );
        });
    }

    /// Issue 18: natter's own words in Chinese; names, text and the lab's timestamp unchanged.
    #[test]
    fn lines_in_chinese_keep_names_text_and_stamps() {
        use natter_i18n::{with_lang, Lang};
        with_lang(Lang::ZhCn, || {
            let line = message(&msg(None, Some("me"), "psst"), "me");
            assert_eq!(after_stamp(&line), "bob → 你: psst");
            assert_eq!(
                left("lobby", "bob", LeftReason::Timeout),
                "* bob 离开了 #lobby（超时）"
            );
            assert_eq!(joined("rust", "me", "me"), "* 你加入了 #rust");
            assert_eq!(
                member_count("big", 250),
                "* #big 有 250 位成员；/who #big 列出他们"
            );
        });
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
