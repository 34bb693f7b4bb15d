//! The plain-text front end, so `nc` and `telnet` work.
//!
//! A connection whose first line does not start with `{` is plain text. Its lines are translated into the
//! same [`ClientFrame`]s a native client sends, and the frames it receives are rendered as the lab's
//! `[YYYY-MM-DD HH:MM:SS] name: text` lines (server local time). The hub cannot tell the difference.
//!
//! Everything else it says comes from the catalogue, in the server's `--lang` until the user's `/lang`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use natter_i18n::{tl, Lang};
use natter_proto::command::{self, Command};
use natter_proto::frame::{error_text, ByeReason, Message};
use natter_proto::{ClientFrame, ErrorCode, LeftReason, RoomName, ServerFrame};

use super::{FrontEnd, Input, Render};
use crate::outbox::Outgoing;

/// People typing in `nc` or `telnet`. Like natter's own clients, a plain-text user has a *current room*:
/// the lobby at first, then the room of their latest `/join` (and the lobby again when they leave the
/// current room). Typed lines go there.
///
/// Signing in: the first line is the name. For a name someone owns, the server's refusal asks for its
/// password, and the next line is taken as that (or, if empty, the name is asked for again).
pub struct Plain {
    room: RoomName,
    shared: Arc<Shared>,
    /// `/forget-me` was typed once: the next one does it.
    forget_armed: bool,
}

/// What the translating half and the rendering half share: the connection's language (the server's
/// until `/lang`), and the sign-in in progress.
#[derive(Default)]
struct Shared {
    lang: AtomicUsize,
    login: std::sync::Mutex<Login>,
}

#[derive(Default)]
struct Login {
    /// The name of the latest `hello`.
    trying: Option<String>,
    /// The next line is the password of this name (the server said it is owned, or the password was
    /// wrong).
    password_for: Option<String>,
}

impl Shared {
    fn lang(&self) -> Lang {
        Lang::from_index(self.lang.load(Ordering::Relaxed))
    }

    fn set_lang(&self, lang: Lang) {
        self.lang.store(lang.index(), Ordering::Relaxed);
    }

    fn login(&self) -> std::sync::MutexGuard<'_, Login> {
        self.login.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Plain {
    /// A plain-text connection spoken to in `lang`.
    pub fn new(lang: Lang) -> Self {
        let shared = Shared::default();
        shared.set_lang(lang);
        Self {
            room: RoomName::lobby(),
            shared: Arc::new(shared),
            forget_armed: false,
        }
    }
}

/// The plain-text renderer. It learns the user's name from `welcome`, so the user's own private
/// messages in a replay read `you → bob`, as they did when sent.
struct PlainRender {
    me: Option<String>,
    shared: Arc<Shared>,
}

impl FrontEnd for Plain {
    fn translate(&mut self, line: &[u8], registered: bool) -> Input {
        self.translate_line(line, registered)
    }

    fn renderer(&self) -> Box<dyn Render> {
        Box::new(PlainRender {
            me: None,
            shared: self.shared.clone(),
        })
    }

    fn name(&self) -> &'static str {
        "plain"
    }

    fn pinged_when_idle(&self) -> bool {
        false
    }
}

impl Render for PlainRender {
    fn render(&mut self, item: &Outgoing, out: &mut Vec<u8>) {
        if let Outgoing::Frame {
            frame: ServerFrame::Welcome { name, .. },
            ..
        } = item
        {
            self.me = Some(name.clone());
        }
        if let Outgoing::Frame {
            frame: ServerFrame::Error { code, .. },
            ..
        } = item
        {
            // A name someone owns, or a wrong password: the next line is the password.
            let mut login = self.shared.login();
            if matches!(code, ErrorCode::NameOwned | ErrorCode::BadPassword) {
                login.password_for = login.trying.clone();
            }
        }
        render(item, self.me.as_deref(), self.shared.lang(), out)
    }
}

impl Plain {
    /// Translates one line. Before registration the line is the name the user wants.
    fn translate_line(&mut self, line: &[u8], registered: bool) -> Input {
        let lang = self.shared.lang();
        let notice = |sigil: &str, text: String| Input::Notice(format!("{sigil} {text}"));
        let Ok(line) = std::str::from_utf8(line) else {
            return notice("!", tl!(lang, "plain-not-utf8"));
        };
        if !registered {
            let mut login = self.shared.login();
            let (name, password) = match login.password_for.take() {
                Some(_) if line.is_empty() => {
                    return notice("*", tl!(lang, "plain-type-your-name"));
                }
                Some(name) => (name, Some(line.to_owned())),
                None => (line.trim().to_owned(), None),
            };
            return match name.as_str() {
                "" => Input::Nothing,
                "exit" | "/quit" if password.is_none() => {
                    Input::Frame(ClientFrame::Exit { text: None })
                }
                _ => {
                    login.trying = Some(name.clone());
                    Input::Frame(ClientFrame::Hello {
                        name,
                        version: natter_proto::VERSION,
                        resume_after: None,
                        lobby: true,
                        rooms: true,
                        key: None,
                        password,
                    })
                }
            };
        }
        // `/forget-me` counts only if the line right before was `/forget-me` too.
        let armed = std::mem::take(&mut self.forget_armed);
        let frame = match command::parse(line) {
            Command::Nothing => return Input::Nothing,
            Command::Say(text) => ClientFrame::Say {
                tags: Default::default(),
                notice: false,
                text,
                room: Some(self.room.to_string()),
                id: None,
            },
            Command::Msg { text, .. } if text.is_empty() => {
                return notice("!", tl!(lang, "usage", usage = tl!(lang, "usage-msg")))
            }
            Command::Msg { to, text } => ClientFrame::Whisper {
                tags: Default::default(),
                to,
                text,
                id: None,
                notice: false,
            },
            Command::Join(room) => {
                // A name the server will refuse anyway does not become the current room.
                if let Ok(name) = RoomName::parse_lenient(&room) {
                    self.room = name;
                }
                ClientFrame::Join { room }
            }
            Command::Leave(room) => {
                let room = match room {
                    Some(raw) => {
                        RoomName::parse_lenient(&raw).unwrap_or_else(|_| self.room.clone())
                    }
                    None => self.room.clone(),
                };
                if room == self.room {
                    self.room = RoomName::lobby();
                }
                ClientFrame::Leave {
                    room: room.to_string(),
                    text: None,
                }
            }
            Command::Who(room) => ClientFrame::Who { room },
            Command::Rooms => ClientFrame::Rooms,
            Command::History => ClientFrame::history_page(Some(self.room.to_string()), None, None),
            Command::Clear => return notice("*", tl!(lang, "plain-clear")),
            Command::Quit => ClientFrame::Exit { text: None },
            Command::Password(Some(password)) => ClientFrame::SetPassword { password },
            Command::ForgetMe if !armed => {
                self.forget_armed = true;
                return notice("!", tl!(lang, "forget-me-confirm"));
            }
            Command::ForgetMe => ClientFrame::ForgetMe,
            cmd @ (Command::Moderate { .. } | Command::Block { .. }) => {
                match cmd.room_or_block_request(self.room.as_str()) {
                    Some(frame) => frame,
                    None => return Input::Nothing,
                }
            }
            Command::Password(None) => {
                return notice(
                    "!",
                    tl!(lang, "usage", usage = tl!(lang, "usage-password-nc")),
                )
            }
            Command::Help => {
                let room = format!("#{}", self.room);
                let mut help = format!("* {}", tl!(lang, "help-intro", room = room));
                for line in command::help_lines(lang, &[]) {
                    help.push_str(&format!("\r\n*   {line}"));
                }
                return Input::Notice(help);
            }
            Command::Lang(tag) => {
                let Some(tag) = tag else {
                    return notice("!", tl!(lang, "usage", usage = tl!(lang, "usage-lang")));
                };
                return match Lang::parse(&tag) {
                    Some(new) => {
                        self.shared.set_lang(new);
                        notice("*", tl!(new, "lang-switched"))
                    }
                    None => notice("!", tl!(lang, "lang-unknown", lang = tag)),
                };
            }
            // Bytes cannot travel through a person's `nc`: natter's own client can.
            Command::Send(_) | Command::Get(_) | Command::Cancel => {
                return notice("!", tl!(lang, "send-nc"))
            }
            Command::Usage(usage) => {
                return notice("!", tl!(lang, "usage", usage = tl!(lang, usage)))
            }
            Command::Unknown(cmd) => {
                return notice("!", tl!(lang, "unknown-command", command = cmd))
            }
        };
        Input::Frame(frame)
    }
}

/// Appends the text rendering of one outbox item to `out`, for the user `me` (once known), in `lang`.
fn render(item: &Outgoing, me: Option<&str>, lang: Lang, out: &mut Vec<u8>) {
    let line = match item {
        Outgoing::Raw(bytes) => return out.extend_from_slice(bytes),
        Outgoing::Notice(text) => text.clone(),
        Outgoing::Frame { frame, .. } => match render_frame(frame, me, lang) {
            Some(line) => line,
            None => return,
        },
    };
    out.extend_from_slice(line.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// ` #room` after a presence line, nothing for the lobby (the same rule as a message's room prefix).
fn room_where(room: &str) -> String {
    match natter_proto::text::room_prefix(room).trim_end() {
        "" => String::new(),
        tag => format!(" {tag}"),
    }
}

fn render_frame(frame: &ServerFrame, me: Option<&str>, lang: Lang) -> Option<String> {
    Some(match frame {
        ServerFrame::Welcome { name, .. } => {
            format!("* {}", tl!(lang, "plain-welcome", name = name))
        }
        ServerFrame::Message(m) => render_message(m, me, lang),
        ServerFrame::History { messages, .. } if messages.is_empty() => return None,
        ServerFrame::History { messages, .. } => {
            let lines: Vec<String> = messages
                .iter()
                .map(|m| render_message(m, me, lang))
                .collect();
            lines.join("\r\n")
        }
        ServerFrame::Ack { .. }
        | ServerFrame::Pong { .. }
        | ServerFrame::Signal(_)
        | ServerFrame::Conversations { .. }
        | ServerFrame::Ping { .. }
        | ServerFrame::Challenge { .. } => return None,
        ServerFrame::PasswordSet => format!("* {}", tl!(lang, "password-set")),
        ServerFrame::Status { .. }
        | ServerFrame::UploadReady { .. }
        | ServerFrame::DownloadReady { .. }
        | ServerFrame::UploadAt { .. }
        | ServerFrame::Uploaded { .. }
        | ServerFrame::Sending { .. } => return None,
        ServerFrame::Forgotten => format!("* {}", tl!(lang, "forgotten")),
        ServerFrame::Topic { room, topic, .. } => match topic {
            Some(topic) => format!(
                "* {}",
                tl!(lang, "topic-is", room = format!("#{room}"), topic = topic)
            ),
            None => return None,
        },
        ServerFrame::Blocked { name, on: true } => {
            format!("* {}", tl!(lang, "blocked-on", name = name))
        }
        ServerFrame::Blocked { name, on: false } => {
            format!("* {}", tl!(lang, "blocked-off", name = name))
        }
        ServerFrame::Joined { room, name, .. } => format!(
            "* {}",
            tl!(
                lang,
                "presence-joined",
                name = name,
                r#where = room_where(room)
            )
        ),
        ServerFrame::Left {
            room, name, reason, ..
        } => {
            let r#where = room_where(room);
            let text = match reason {
                LeftReason::Exit | LeftReason::Leave => {
                    tl!(lang, "presence-left", name = name, r#where = r#where)
                }
                other => {
                    let why = tl!(lang, "left-reason", reason = other.as_str());
                    tl!(
                        lang,
                        "presence-left-why",
                        name = name,
                        r#where = r#where,
                        why = why
                    )
                }
            };
            format!("* {text}")
        }
        ServerFrame::Users {
            room,
            count: Some(count),
            ..
        } => format!(
            "* {}",
            tl!(
                lang,
                "members-count",
                room = format!("#{room}"),
                count = *count
            )
        ),
        ServerFrame::Users { room, names, .. } => format!(
            "* {}",
            tl!(
                lang,
                "members-in",
                room = format!("#{room}"),
                names = names.join(", ")
            )
        ),
        ServerFrame::Rooms { rooms } => {
            let list: Vec<String> = rooms
                .iter()
                .map(|r| format!("#{} ({})", r.name, r.members))
                .collect();
            format!("* {}", tl!(lang, "rooms-list", list = list.join(", ")))
        }
        ServerFrame::Error {
            code,
            message,
            args,
            ..
        } => {
            let text = error_text(lang, *code, args, message);
            match code {
                ErrorCode::InvalidName | ErrorCode::NameTaken | ErrorCode::TryAgainLater => {
                    format!("! {text}. {}", tl!(lang, "plain-type-another-name"))
                }
                ErrorCode::NameOwned | ErrorCode::BadPassword => {
                    format!("! {text}. {}", tl!(lang, "plain-type-password"))
                }
                _ => format!("! {text}"),
            }
        }
        ServerFrame::Bye { reason } => match reason {
            ByeReason::Shutdown => format!("* {}", tl!(lang, "plain-shutdown")),
            _ => format!("* {}", tl!(lang, "plain-bye")),
        },
    })
}

fn render_message(m: &Message, me: Option<&str>, lang: Lang) -> String {
    natter_proto::text::message_line(lang, m, me, "\r\n", natter_proto::file::CLI_GET)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn translate(line: &[u8], registered: bool) -> Input {
        Plain::new(Lang::En).translate_line(line, registered)
    }

    fn frame(line: &str, registered: bool) -> ClientFrame {
        match translate(line.as_bytes(), registered) {
            Input::Frame(f) => f,
            _ => panic!("no frame for {line:?}"),
        }
    }

    #[test]
    fn first_line_is_the_name() {
        assert_eq!(
            frame("alice\r", false),
            ClientFrame::Hello {
                name: "alice".into(),
                version: 1,
                resume_after: None,
                lobby: true,
                rooms: true,
                key: None,
                password: None,
            }
        );
        assert_eq!(frame("exit", false), ClientFrame::Exit { text: None });
    }

    #[test]
    fn later_lines_are_said_or_commands() {
        assert_eq!(
            frame("你好", true),
            ClientFrame::Say {
                tags: Default::default(),
                notice: false,
                text: "你好".into(),
                room: Some("lobby".into()),
                id: None
            }
        );
        assert_eq!(
            frame("/msg bob hi", true),
            ClientFrame::Whisper {
                tags: Default::default(),
                notice: false,
                to: "bob".into(),
                text: "hi".into(),
                id: None
            }
        );
        assert_eq!(frame("exit", true), ClientFrame::Exit { text: None });
        assert!(matches!(translate(b"/help", true), Input::Notice(_)));
    }

    /// Issue 11, bug 7: lines go to the room of the latest `/join`, back to the lobby after leaving it;
    /// `/leave` alone leaves the current room.
    #[test]
    fn lines_go_to_the_current_room() {
        let mut nc = Plain::new(Lang::En);
        let say = |nc: &mut Plain, line: &str| match nc.translate_line(line.as_bytes(), true) {
            Input::Frame(ClientFrame::Say { room, .. }) => room,
            other => panic!("{other:?}"),
        };
        assert_eq!(say(&mut nc, "hi"), Some("lobby".into()));
        nc.translate_line(b"/join #Rust", true);
        assert_eq!(say(&mut nc, "hi"), Some("Rust".into()));
        nc.translate_line(b"/join bad!", true);
        assert_eq!(
            say(&mut nc, "hi"),
            Some("Rust".into()),
            "a refused name changes nothing"
        );
        assert_eq!(
            nc.translate_line(b"/leave", true),
            Input::Frame(ClientFrame::Leave {
                room: "Rust".into(),
                text: None
            })
        );
        assert_eq!(say(&mut nc, "hi"), Some("lobby".into()));
    }

    #[test]
    fn renders_the_labs_format() {
        let m = Message {
            tags: Default::default(),
            notice: false,
            seq: 1,
            ts: "2026-11-25T16:38:57.123Z".into(),
            room: Some("lobby".into()),
            from: "bob".into(),
            to: None,
            text: "hi\u{1b}[2J".into(),
            event: None,
            file: None,
        };
        let line = render_message(&m, None, Lang::En);
        assert!(line.starts_with('['), "{line}");
        assert!(line.ends_with("] bob: hi\u{fffd}[2J"), "{line}");
    }
}
