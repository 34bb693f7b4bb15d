//! The slash commands a person types, shared by the server's plain-text front end and the line client.
//!
//! Parsing is pure: a line in, a [`Command`] out. What each command does is up to the caller.

/// One typed line, understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Ordinary text, to be said in the current room.
    Say(String),
    /// `/msg NAME TEXT` — a private message. `text` is empty for `/msg NAME` alone.
    Msg { to: String, text: String },
    /// `/join ROOM`
    Join(String),
    /// `/leave [ROOM]` — the current room when none is given.
    Leave(Option<String>),
    /// `/who [ROOM]`
    Who(Option<String>),
    /// `/rooms`
    Rooms,
    /// `/history` — older messages of the current conversation.
    History,
    /// `/clear` — clear the screen or the conversation's window (clients only).
    Clear,
    /// `/help`
    Help,
    /// `/lang [LANG]` — the language natter speaks to you (`None`: show how to use it).
    Lang(Option<String>),
    /// `/forget-me` — forget my name's account and private history.
    ForgetMe,
    /// A room operator's command, for the current room: `/kick NAME [REASON]`, `/topic TEXT`, …
    /// (`action` as the `moderate` frame takes it).
    Moderate {
        action: &'static str,
        name: Option<String>,
        text: Option<String>,
        minutes: Option<u32>,
        on: Option<bool>,
    },
    /// `/block NAME`, `/unblock NAME`.
    Block { name: String, on: bool },
    /// `/password [NEW]` — set your name's password. natter's clients ask for it without echoing (so
    /// `None`); in `nc` it follows the command.
    Password(Option<String>),
    /// `/send PATH` — share a file with the current conversation (natter's clients; the path is the
    /// rest of the line, spaces and all).
    Send(String),
    /// `/get N` — download shared file N.
    Get(u64),
    /// `/cancel` — stop the transfers in progress.
    Cancel,
    /// `/quit`, or the lab's bare `exit`.
    Quit,
    /// A known command used wrongly: the catalogue id of the usage line to show.
    Usage(&'static str),
    /// `/something` that is not a command.
    Unknown(String),
    /// An empty or blank line: nothing to do.
    Nothing,
}

/// Every command for `/help`: the catalogue ids of its usage and of what it does.
pub const HELP: &[(&str, &str)] = &[
    ("usage-msg", "help-msg"),
    ("usage-join", "help-join"),
    ("usage-leave", "help-leave"),
    ("usage-who", "help-who"),
    ("usage-rooms", "help-rooms"),
    ("usage-history", "help-history"),
    ("usage-lang", "help-lang"),
    ("usage-password", "help-password"),
    ("usage-block", "help-block"),
    ("usage-forget-me", "help-forget-me"),
    ("usage-moderate", "help-moderate"),
    ("usage-help", "help-help"),
    ("help-quit-keys", "help-quit"),
    ("help-slash-keys", "help-slash"),
];

/// `/help` as lines in `lang`: [`HELP`] then `extra` (a client's own keys), each usage padded to one
/// column by display width, so the descriptions line up in Chinese too.
pub fn help_lines(lang: natter_i18n::Lang, extra: &[(&str, &str)]) -> Vec<String> {
    use unicode_width::UnicodeWidthStr;
    let rows: Vec<(String, String)> = HELP
        .iter()
        .chain(extra)
        .map(|(usage, what)| {
            (
                natter_i18n::text(lang, usage, &[]),
                natter_i18n::text(lang, what, &[]),
            )
        })
        .collect();
    let column = rows.iter().map(|(u, _)| u.width()).max().unwrap_or(0) + 2;
    rows.into_iter()
        .map(|(usage, what)| {
            let pad = " ".repeat(column - usage.width());
            format!("{usage}{pad}{what}")
        })
        .collect()
}

impl Command {
    /// The request a room command (`/kick`, `/topic`, …) or `/block` makes, the same from every front end;
    /// `room` is the user's current room. `None` for any other command.
    pub fn room_or_block_request(self, room: &str) -> Option<crate::ClientFrame> {
        use crate::ClientFrame;
        Some(match self {
            Command::Moderate {
                action,
                name,
                text,
                minutes,
                on,
            } => ClientFrame::Moderate {
                room: room.to_owned(),
                action: action.to_owned(),
                name,
                text,
                minutes,
                on,
                id: None,
            },
            Command::Block { name, on: true } => ClientFrame::Block { name },
            Command::Block { name, on: false } => ClientFrame::Unblock { name },
            _ => return None,
        })
    }
}

fn moderate(
    action: &'static str,
    name: Option<String>,
    text: Option<String>,
    minutes: Option<u32>,
    on: Option<bool>,
) -> Command {
    Command::Moderate {
        action,
        name,
        text,
        minutes,
        on,
    }
}

/// Parses one typed line.
pub fn parse(line: &str) -> Command {
    let trimmed = line.trim_end_matches(['\r', '\n']);
    if trimmed.trim().is_empty() {
        return Command::Nothing;
    }
    if trimmed.trim() == "exit" {
        return Command::Quit;
    }
    let Some(rest) = trimmed.strip_prefix('/') else {
        return Command::Say(trimmed.to_owned());
    };
    if rest.starts_with('/') {
        return Command::Say(rest.to_owned());
    }
    let (cmd, args) = match rest.split_once(char::is_whitespace) {
        Some((c, a)) => (c, a.trim()),
        None => (rest, ""),
    };
    let one_arg =
        || (!args.is_empty()).then(|| args.split_whitespace().next().unwrap_or("").to_owned());
    match cmd.to_lowercase().as_str() {
        "msg" | "query" | "w" => match args.split_once(char::is_whitespace) {
            Some((to, text)) => Command::Msg {
                to: to.to_owned(),
                text: text.trim_start().to_owned(),
            },
            None if !args.is_empty() => Command::Msg {
                to: args.to_owned(),
                text: String::new(),
            },
            None => Command::Usage("usage-msg"),
        },
        // Room names are one word: "/join my room" must not quietly join #my.
        "join" | "j" if args.split_whitespace().nth(1).is_some() => {
            Command::Usage("usage-join-one-word")
        }
        "join" | "j" => match one_arg() {
            Some(room) => Command::Join(room),
            None => Command::Usage("usage-join"),
        },
        "leave" | "part" => Command::Leave(one_arg()),
        "who" | "names" => Command::Who(one_arg()),
        "rooms" | "list" => Command::Rooms,
        "history" => Command::History,
        "clear" => Command::Clear,
        "help" | "?" => Command::Help,
        "lang" | "language" => Command::Lang(one_arg()),
        "forget-me" => Command::ForgetMe,
        "op" | "deop" | "voice" | "devoice" | "ban" | "unban" | "unmute" | "invite" => {
            let action = match cmd.to_lowercase().as_str() {
                "op" => "op",
                "deop" => "deop",
                "voice" => "voice",
                "devoice" => "devoice",
                "ban" => "ban",
                "unban" => "unban",
                "unmute" => "unmute",
                _ => "invite",
            };
            match one_arg() {
                Some(name) => moderate(action, Some(name), None, None, None),
                None => Command::Usage("usage-moderate"),
            }
        }
        "kick" => match args.split_once(char::is_whitespace) {
            Some((name, reason)) => moderate(
                "kick",
                Some(name.into()),
                Some(reason.trim().into()),
                None,
                None,
            ),
            None if !args.is_empty() => moderate("kick", Some(args.into()), None, None, None),
            None => Command::Usage("usage-moderate"),
        },
        "mute" => {
            let mut words = args.split_whitespace();
            match (words.next(), words.next().map(str::parse::<u32>)) {
                (Some(name), None) => moderate("mute", Some(name.into()), None, None, None),
                (Some(name), Some(Ok(minutes))) => {
                    moderate("mute", Some(name.into()), None, Some(minutes), None)
                }
                _ => Command::Usage("usage-moderate"),
            }
        }
        "topic" => moderate("topic", None, Some(args.to_owned()), None, None),
        "invite-only" | "moderated" => {
            let action = if cmd.eq_ignore_ascii_case("moderated") {
                "moderated"
            } else {
                "invite_only"
            };
            match args.to_lowercase().as_str() {
                "on" => moderate(action, None, None, None, Some(true)),
                "off" => moderate(action, None, None, None, Some(false)),
                _ => Command::Usage("usage-moderate"),
            }
        }
        "block" | "unblock" => match one_arg() {
            Some(name) => Command::Block {
                name,
                on: cmd.eq_ignore_ascii_case("block"),
            },
            None => Command::Usage("usage-block"),
        },
        "password" | "passwd" => Command::Password((!args.is_empty()).then(|| args.to_owned())),
        "send" | "upload" if !args.is_empty() => Command::Send(args.to_owned()),
        "send" | "upload" => Command::Usage("usage-send"),
        "get" | "download" => match args.trim_start_matches('#').parse() {
            Ok(id) => Command::Get(id),
            Err(_) => Command::Usage("usage-get"),
        },
        "cancel" => Command::Cancel,
        "quit" | "exit" | "q" => Command::Quit,
        _ => Command::Unknown(format!("/{cmd}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use natter_i18n::Lang;

    #[test]
    fn help_lines_up_in_both_languages() {
        use unicode_width::UnicodeWidthStr;
        for lang in Lang::ALL {
            let lines = help_lines(lang, &[]);
            assert_eq!(lines.len(), HELP.len());
            // Every description starts at the same display column.
            let starts: Vec<usize> = lines
                .iter()
                .zip(HELP)
                .map(|(line, (_, what))| {
                    let what = natter_i18n::text(lang, what, &[]);
                    line[..line.len() - what.len()].width()
                })
                .collect();
            assert!(starts.windows(2).all(|w| w[0] == w[1]), "{lang}: {lines:?}");
        }
        assert!(help_lines(Lang::ZhCn, &[])[0].contains("发送私聊消息"));
    }

    #[test]
    fn parses_commands() {
        assert_eq!(parse("hello"), Command::Say("hello".into()));
        assert_eq!(parse("  "), Command::Nothing);
        assert_eq!(parse("exit"), Command::Quit);
        assert_eq!(parse("/quit"), Command::Quit);
        assert_eq!(
            parse("/send ~/My Files/报告.pdf"),
            Command::Send("~/My Files/报告.pdf".into())
        );
        assert_eq!(parse("/send"), Command::Usage("usage-send"));
        assert_eq!(parse("/get 17"), Command::Get(17));
        assert_eq!(parse("/get #17"), Command::Get(17));
        assert_eq!(parse("/get x"), Command::Usage("usage-get"));
        assert_eq!(parse("/cancel"), Command::Cancel);
        assert_eq!(
            parse("/msg 张三 你好 世界"),
            Command::Msg {
                to: "张三".into(),
                text: "你好 世界".into()
            }
        );
        assert_eq!(
            parse("/msg bob"),
            Command::Msg {
                to: "bob".into(),
                text: String::new()
            }
        );
        assert_eq!(parse("/msg"), Command::Usage("usage-msg"));
        assert_eq!(parse("/join #rust"), Command::Join("#rust".into()));
        assert!(
            matches!(
                parse("/join my room"),
                Command::Usage("usage-join-one-word")
            ),
            "issue 11, friction 12: not a silent join of #my"
        );
        assert_eq!(parse("/leave"), Command::Leave(None));
        assert_eq!(parse("/who lobby"), Command::Who(Some("lobby".into())));
        assert_eq!(parse("/rooms"), Command::Rooms);
        assert_eq!(parse("/lang zh-CN"), Command::Lang(Some("zh-CN".into())));
        assert_eq!(parse("/lang"), Command::Lang(None));
        assert_eq!(parse("/history"), Command::History);
        assert_eq!(parse("/CLEAR"), Command::Clear);
        assert_eq!(parse("//slash"), Command::Say("/slash".into()));
        assert_eq!(parse("/dance"), Command::Unknown("/dance".into()));
        assert_eq!(parse("exit now"), Command::Say("exit now".into()));
    }
}
