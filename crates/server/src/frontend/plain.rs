//! The plain-text front end, so `nc` and `telnet` work.
//!
//! A connection whose first line does not start with `{` is plain text. Its lines are translated into the
//! same [`ClientFrame`]s a native client sends, and the frames it receives are rendered as the lab's
//! `[YYYY-MM-DD HH:MM:SS] name: text` lines (server local time). The hub cannot tell the difference.

use natter_proto::command::{self, Command, HELP};
use natter_proto::frame::{ByeReason, Message};
use natter_proto::{ClientFrame, ErrorCode, LeftReason, RoomName, ServerFrame};

use super::{FrontEnd, Input, Render};
use crate::outbox::Outgoing;

/// People typing in `nc` or `telnet`. Like natter's own clients, a plain-text user has a *current room*:
/// the lobby at first, then the room of their latest `/join` (and the lobby again when they leave the
/// current room). Typed lines go there.
pub struct Plain {
    room: RoomName,
}

impl Default for Plain {
    fn default() -> Self {
        Self {
            room: RoomName::lobby(),
        }
    }
}

/// The plain-text renderer. It learns the user's name from `welcome`, so the user's own private
/// messages in a replay read `you → bob`, as they did when sent.
#[derive(Default)]
struct PlainRender {
    me: Option<String>,
}

impl FrontEnd for Plain {
    fn translate(&mut self, line: &[u8], registered: bool) -> Input {
        self.translate_line(line, registered)
    }

    fn renderer(&self) -> Box<dyn Render> {
        Box::new(PlainRender::default())
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
        render(item, self.me.as_deref(), out)
    }
}

impl Plain {
    /// Translates one line. Before registration the line is the name the user wants.
    fn translate_line(&mut self, line: &[u8], registered: bool) -> Input {
        let Ok(line) = std::str::from_utf8(line) else {
            return Input::Notice("! lines must be UTF-8 text".into());
        };
        if !registered {
            let name = line.trim();
            return match name {
                "" => Input::Nothing,
                "exit" | "/quit" => Input::Frame(ClientFrame::Exit),
                _ => Input::Frame(ClientFrame::Hello {
                    name: name.to_owned(),
                    version: natter_proto::VERSION,
                    resume_after: None,
                    lobby: true,
                }),
            };
        }
        let frame = match command::parse(line) {
            Command::Nothing => return Input::Nothing,
            Command::Say(text) => ClientFrame::Say {
                text,
                room: Some(self.room.to_string()),
                id: None,
            },
            Command::Msg { text, .. } if text.is_empty() => {
                return Input::Notice("usage: /msg NAME TEXT".into())
            }
            Command::Msg { to, text } => ClientFrame::Whisper { to, text, id: None },
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
                }
            }
            Command::Who(room) => ClientFrame::Who { room },
            Command::Rooms => ClientFrame::Rooms,
            Command::History => ClientFrame::History {
                room: Some(self.room.to_string()),
                before: None,
                limit: None,
            },
            Command::Clear => return Input::Notice("* /clear is for natter's own clients".into()),
            Command::Quit => ClientFrame::Exit,
            Command::Help => {
                let mut help = format!(
                "* Type a line to say it in #{} (your current room; /join changes it). Commands:",
                self.room
            );
                for (cmd, what) in HELP {
                    help.push_str(&format!("\n*   {cmd:<16} {what}"));
                }
                return Input::Notice(help);
            }
            Command::Usage(usage) => return Input::Notice(format!("usage: {usage}")),
            Command::Unknown(cmd) => {
                return Input::Notice(format!("! unknown command {cmd}; /help lists them"))
            }
        };
        Input::Frame(frame)
    }
}

/// Appends the text rendering of one outbox item to `out`, for the user `me` (once known).
fn render(item: &Outgoing, me: Option<&str>, out: &mut Vec<u8>) {
    let line = match item {
        Outgoing::Raw(bytes) => return out.extend_from_slice(bytes),
        Outgoing::Notice(text) => text.clone(),
        Outgoing::Frame { frame, .. } => match render_frame(frame, me) {
            Some(line) => line,
            None => return,
        },
    };
    out.extend_from_slice(line.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// ` #room` after a presence line, nothing for the lobby (the same rule as a message's room prefix).
fn room_suffix(room: &str) -> String {
    match natter_proto::text::room_prefix(room).trim_end() {
        "" => String::new(),
        tag => format!(" {tag}"),
    }
}

fn render_frame(frame: &ServerFrame, me: Option<&str>) -> Option<String> {
    Some(match frame {
        ServerFrame::Welcome { name, .. } => format!(
            "* Welcome, {name}! Type a message and press Enter. /help lists commands; exit leaves."
        ),
        ServerFrame::Message(m) => render_message(m, me),
        ServerFrame::History { messages, .. } if messages.is_empty() => return None,
        ServerFrame::History { messages, .. } => {
            let lines: Vec<String> = messages.iter().map(|m| render_message(m, me)).collect();
            lines.join("\r\n")
        }
        ServerFrame::Ack { .. } | ServerFrame::Pong { .. } | ServerFrame::Ping { .. } => {
            return None
        }
        ServerFrame::Joined { room, name, .. } => format!("* {name} joined{}", room_suffix(room)),
        ServerFrame::Left {
            room, name, reason, ..
        } => match reason {
            LeftReason::Exit | LeftReason::Leave => format!("* {name} left{}", room_suffix(room)),
            other => format!("* {name} left{} ({})", room_suffix(room), other.as_str()),
        },
        ServerFrame::Users {
            room,
            count: Some(count),
            ..
        } => format!("* #{room} has {count} members; /who {room} lists them"),
        ServerFrame::Users { room, names, .. } => format!("* In #{room}: {}", names.join(", ")),
        ServerFrame::Rooms { rooms } => {
            let list: Vec<String> = rooms
                .iter()
                .map(|r| format!("#{} ({})", r.name, r.members))
                .collect();
            format!("* Rooms: {}", list.join(", "))
        }
        ServerFrame::Error { code, message, .. } => match code {
            ErrorCode::InvalidName | ErrorCode::NameTaken => {
                format!("! {message}. Type another name:")
            }
            _ => format!("! {message}"),
        },
        ServerFrame::Bye { reason } => match reason {
            ByeReason::Shutdown => "* The server is shutting down. Bye!".into(),
            _ => "* Bye!".into(),
        },
    })
}

fn render_message(m: &Message, me: Option<&str>) -> String {
    natter_proto::text::message_line(m, me, "\r\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn translate(line: &[u8], registered: bool) -> Input {
        Plain::default().translate_line(line, registered)
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
            }
        );
        assert_eq!(frame("exit", false), ClientFrame::Exit);
    }

    #[test]
    fn later_lines_are_said_or_commands() {
        assert_eq!(
            frame("你好", true),
            ClientFrame::Say {
                text: "你好".into(),
                room: Some("lobby".into()),
                id: None
            }
        );
        assert_eq!(
            frame("/msg bob hi", true),
            ClientFrame::Whisper {
                to: "bob".into(),
                text: "hi".into(),
                id: None
            }
        );
        assert_eq!(frame("exit", true), ClientFrame::Exit);
        assert!(matches!(translate(b"/help", true), Input::Notice(_)));
    }

    /// Issue 11, bug 7: lines go to the room of the latest `/join`, back to the lobby after leaving it;
    /// `/leave` alone leaves the current room.
    #[test]
    fn lines_go_to_the_current_room() {
        let mut nc = Plain::default();
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
                room: "Rust".into()
            })
        );
        assert_eq!(say(&mut nc, "hi"), Some("lobby".into()));
    }

    #[test]
    fn renders_the_labs_format() {
        let m = Message {
            seq: 1,
            ts: "2026-11-25T16:38:57.123Z".into(),
            room: Some("lobby".into()),
            from: "bob".into(),
            to: None,
            text: "hi\u{1b}[2J".into(),
        };
        let line = render_message(&m, None);
        assert!(line.starts_with('['), "{line}");
        assert!(line.ends_with("] bob: hi\u{fffd}[2J"), "{line}");
    }
}
