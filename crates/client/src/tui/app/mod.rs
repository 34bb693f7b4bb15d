//! The TUI's state: plain data with one entry point, [`App::update`]. No terminal, no socket; the one
//! thing it reads from outside is the clock (the time of a local note, the next reconnect's deadline), so
//! tests assert on everything but those stamps.
//!
//! `update` takes an [`Event`] (a key, a paste, a scroll, something from the chat session) and returns the
//! [`Effect`]s the runner should carry out (send a message, ring the bell, quit). Drawing is `ui.rs`.
//! `conv.rs` holds the conversations, `input.rs` what the user does, `incoming.rs` what the session says.

use std::cell::Cell;
use std::time::{Duration, Instant};

use crossterm::event::KeyEvent;
use natter_proto::{ClientFrame, LOBBY};

use crate::chat::ChatEvent;
use crate::editor::LineBuffer;

mod conv;
mod incoming;
mod input;

pub use conv::{Conv, ConvKey, Entry, EntryKind, SendState, SCROLLBACK};

/// The connection as the status bar shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Conn {
    Connected,
    Reconnecting { until: Instant },
    Offline(String),
}

/// How timestamps are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Stamps {
    /// `[HH:MM:SS]`, with a day separator when the date changes.
    #[default]
    Short,
    /// `[YYYY-MM-DD HH:MM:SS]`, the lab's format.
    Full,
}

/// Display options from the command line.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub stamps: Stamps,
    /// Ring the terminal bell when you are mentioned.
    pub bell: bool,
}

/// What the runner should do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Send a room message; report the session's id with [`App::bind`].
    Say {
        local: u64,
        room: String,
        text: String,
    },
    /// Send a private message; report the id with [`App::bind`].
    Whisper {
        local: u64,
        to: String,
        text: String,
    },
    Send(ClientFrame),
    /// Share a file with a room (or privately, `to`).
    Upload {
        path: std::path::PathBuf,
        room: Option<String>,
        to: Option<String>,
    },
    /// Download shared file N.
    Download(u64),
    /// Stop every transfer.
    Cancel,
    Bell,
    Quit,
}

/// Everything `update` reacts to.
#[derive(Debug, Clone)]
pub enum Event {
    Key(KeyEvent),
    Paste(String),
    ScrollUp,
    ScrollDown,
    Chat(ChatEvent),
    /// Time passed (the reconnect countdown).
    Tick,
}

/// `/password` asks twice, without showing what is typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Secret {
    New,
    Again(String),
}

pub struct App {
    pub me: String,
    pub server: String,
    pub convs: Vec<Conv>,
    pub current: usize,
    pub input: LineBuffer,
    /// Rows scrolled up from the newest (0: follow live messages).
    pub scroll: usize,
    pub show_members: bool,
    pub conn: Conn,
    /// A multi-line paste waiting for confirmation.
    pub paste: Option<String>,
    /// `/password` in progress: the input is a password, shown as nothing.
    pub secret: Option<Secret>,
    /// The previous line was `/forget-me`: a second one confirms it.
    forget_armed: bool,
    pub options: Options,
    /// Set when the session is over; `farewell` says why.
    pub quit: bool,
    pub farewell: Option<String>,
    /// Rows of the message pane at the last draw (for PgUp/PgDn).
    pub page: Cell<usize>,
    /// `/who` was asked: show the next member list as a line too.
    asked_who: bool,
    /// The room a `/join` asked for: its `joined` makes it current. The server putting us back in our
    /// rooms after a reconnect must not move the user's conversation.
    joining: Option<String>,
    /// Ctrl-C was pressed with messages still sending: the next one quits anyway.
    quit_armed: bool,
    /// The last Tab completion, so Tab again cycles through the other candidates.
    completion: Option<Completion>,
    /// `/history` was asked: an empty answer is said, not silent.
    asked_history: bool,
    next_local: u64,
    /// The transfers in progress, one line each (set by the runner).
    pub transfers: Vec<String>,
    /// The newest file whose line was on screen at the last draw: what Enter on an empty line fetches.
    pub file_in_view: Cell<Option<u64>>,
}

impl App {
    pub fn new(me: &str, server: &str, rooms: &[String], options: Options) -> Self {
        let mut convs: Vec<Conv> = rooms
            .iter()
            .map(|r| Conv::new(ConvKey::Room(r.clone())))
            .collect();
        if convs.is_empty() {
            convs.push(Conv::new(ConvKey::Room(LOBBY.to_owned())));
        }
        Self {
            me: me.to_owned(),
            server: server.to_owned(),
            convs,
            current: 0,
            input: LineBuffer::default(),
            scroll: 0,
            show_members: true,
            conn: Conn::Connected,
            paste: None,
            secret: None,
            forget_armed: false,
            options,
            quit: false,
            farewell: None,
            page: Cell::new(10),
            asked_who: false,
            joining: None,
            quit_armed: false,
            completion: None,
            asked_history: false,
            next_local: 0,
            transfers: Vec::new(),
            file_in_view: Cell::new(None),
        }
    }

    pub fn current(&self) -> &Conv {
        &self.convs[self.current]
    }

    /// Closes conversation `i`. There is always one to show: closing the last leaves an empty #lobby
    /// (where `/join lobby` gets you back in), never nothing — the screen and `current` rely on it.
    fn close(&mut self, i: usize) {
        if i < self.convs.len() {
            self.convs.remove(i);
        }
        if self.convs.is_empty() {
            self.convs.push(Conv::new(ConvKey::Room(LOBBY.to_owned())));
        }
        let current = if i < self.current {
            self.current - 1
        } else {
            self.current
        };
        self.switch(current.min(self.convs.len() - 1));
    }

    fn conv_index(&mut self, key: &ConvKey) -> usize {
        match self.convs.iter().position(|c| c.key.is(key)) {
            Some(i) => i,
            None => {
                self.convs.push(Conv::new(key.clone()));
                self.convs.len() - 1
            }
        }
    }

    fn switch(&mut self, index: usize) {
        if index < self.convs.len() {
            self.current = index;
            self.scroll = 0;
            let c = &mut self.convs[index];
            c.unread = 0;
            c.mention = false;
        }
    }

    /// How a transfer ended, as a line in the current conversation.
    pub fn transferred(&mut self, name: &str, event: &crate::transfer::Event) {
        let (line, failed) = crate::transfer::describe(name, event);
        self.note(match failed {
            true => EntryKind::Error(line),
            false => EntryKind::Info(line),
        });
    }

    /// Adds a line to the current conversation.
    /// An information line in the current conversation (from outside the app: the first-use notice).
    pub fn notice(&mut self, text: String) {
        self.note(EntryKind::Info(text));
    }

    fn note(&mut self, kind: EntryKind) {
        let i = self.current;
        self.convs[i].push(Entry::new(kind));
    }

    /// The one entry point: applies an event, returns what the runner must do.
    pub fn update(&mut self, event: Event) -> Vec<Effect> {
        match event {
            Event::Key(key) => self.key(key),
            Event::Paste(text) => {
                let text = text.replace("\r\n", "\n").replace('\r', "\n");
                if text.contains('\n') {
                    self.paste = Some(text.trim_end_matches('\n').to_owned());
                } else {
                    self.input.insert_str(&text);
                }
                Vec::new()
            }
            Event::ScrollUp => {
                self.scroll += 3;
                Vec::new()
            }
            Event::ScrollDown => {
                self.scroll = self.scroll.saturating_sub(3);
                Vec::new()
            }
            Event::Chat(event) => self.chat(event),
            Event::Tick => Vec::new(),
        }
    }

    /// Tells the app which session id its message `local` got.
    pub fn bind(&mut self, local: u64, id: String) {
        for conv in &mut self.convs {
            if let Some(e) = conv.entries.iter_mut().find(|e| e.local == Some(local)) {
                e.id = Some(id);
                return;
            }
        }
    }

    /// The texts of your messages the server has not confirmed yet, oldest first.
    pub fn sending(&self) -> Vec<&str> {
        self.convs
            .iter()
            .flat_map(|c| &c.entries)
            .filter_map(|e| match &e.kind {
                EntryKind::Message {
                    text,
                    state: SendState::Pending,
                    ..
                } => Some(text.as_str()),
                _ => None,
            })
            .collect()
    }

    /// Seconds until the next reconnect attempt, for the status bar.
    pub fn reconnect_in(&self, now: Instant) -> Option<Duration> {
        match self.conn {
            Conn::Reconnecting { until } => Some(until.saturating_duration_since(now)),
            _ => None,
        }
    }
}

/// A Tab completion in progress: the candidates for the word that started at `start` (a char index),
/// and which one is in the input now.
struct Completion {
    start: usize,
    candidates: Vec<String>,
    index: usize,
}

/// Whether `text` mentions `name` (case-insensitive, not inside a longer word).
pub fn mentions(text: &str, name: &str) -> bool {
    let text = natter_proto::name::fold(text);
    let name = natter_proto::name::fold(name);
    if name.is_empty() {
        return false;
    }
    let word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() && c.is_ascii());
    text.match_indices(&name).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + name.len()..].chars().next();
        !word(before) && !word(after)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::Outgoing;
    use crossterm::event::{KeyCode, KeyModifiers};
    use natter_proto::frame::Message;
    use natter_proto::{LeftReason, ServerFrame};

    fn app() -> App {
        App::new(
            "张三",
            "127.0.0.1:5500",
            &["lobby".into()],
            Options::default(),
        )
    }

    fn key(code: KeyCode) -> Event {
        Event::Key(KeyEvent::new(code, KeyModifiers::NONE))
    }

    fn type_str(app: &mut App, s: &str) -> Vec<Effect> {
        let mut effects = Vec::new();
        for c in s.chars() {
            effects.extend(app.update(key(KeyCode::Char(c))));
        }
        effects
    }

    fn msg(seq: u64, room: Option<&str>, from: &str, to: Option<&str>, text: &str) -> Event {
        Event::Chat(ChatEvent::Frame(ServerFrame::Message(Box::new(Message {
            tags: Default::default(),
            notice: false,
            seq,
            ts: "2026-11-25T16:38:57.123Z".into(),
            room: room.map(Into::into),
            from: from.into(),
            to: to.map(Into::into),
            text: text.into(),
            event: None,
            file: None,
        }))))
    }

    /// Defect 7 of issue 10: leave #lobby, then close the last private conversation — the app keeps a
    /// conversation to show (it used to be left with none and panicked on the next draw).
    #[test]
    fn closing_the_last_conversation_leaves_one_to_show() {
        let mut a = app();
        a.update(msg(1, None, "bob", Some("张三"), "hi"));
        a.update(Event::Chat(ChatEvent::Frame(ServerFrame::Left {
            room: "lobby".into(),
            name: "张三".into(),
            ts: "2026-11-25T16:38:57.123Z".into(),
            reason: LeftReason::Leave,
            text: None,
        })));
        assert_eq!(a.convs.len(), 1);
        assert_eq!(a.current().key, ConvKey::Private("bob".into()));
        type_str(&mut a, "/leave");
        assert_eq!(a.update(key(KeyCode::Enter)), vec![]);
        assert_eq!(a.convs.len(), 1);
        assert_eq!(a.current().key, ConvKey::Room("lobby".into()));
        let mut terminal =
            ratatui::Terminal::new(ratatui::backend::TestBackend::new(60, 12)).unwrap();
        terminal.draw(|f| f.render_widget(&a, f.area())).unwrap();
    }

    /// Issue 11, bug 1: a reconnect puts us back in every room (each with `joined`), and the current
    /// conversation — a room or a private one — stays where the user was; a `/join` still switches.
    #[test]
    fn a_reconnect_keeps_the_current_conversation() {
        let joined = |room: &str| {
            Event::Chat(ChatEvent::Frame(ServerFrame::Joined {
                room: room.into(),
                name: "张三".into(),
                ts: "2026-11-25T16:38:57.123Z".into(),
            }))
        };
        let mut a = app();
        a.update(joined("rust"));
        type_str(&mut a, "meant for lobby");
        a.update(Event::Chat(ChatEvent::Reconnected {
            rooms: vec!["lobby".into(), "rust".into()],
        }));
        a.update(joined("lobby"));
        a.update(joined("rust"));
        assert_eq!(a.current().key, ConvKey::Room("lobby".into()));
        assert_eq!(
            a.update(key(KeyCode::Enter)),
            vec![Effect::Say {
                local: 1,
                room: "lobby".into(),
                text: "meant for lobby".into()
            }]
        );
        a.update(msg(1, None, "bob", Some("张三"), "hi"));
        let bob = a
            .convs
            .iter()
            .position(|c| c.key == ConvKey::Private("bob".into()))
            .unwrap();
        a.switch(bob);
        a.update(joined("rust"));
        assert_eq!(a.current().key, ConvKey::Private("bob".into()));
        type_str(&mut a, "/join go");
        a.update(key(KeyCode::Enter));
        a.update(joined("go"));
        assert_eq!(a.current().key, ConvKey::Room("go".into()));
    }

    /// Issue 11, friction 16: Ctrl-C with a message still sending shows it and asks once; a second
    /// Ctrl-C quits. With nothing pending, Ctrl-C quits at once.
    #[test]
    fn ctrl_c_with_a_message_still_sending_asks_once() {
        let ctrl_c = || Event::Key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL));
        let mut a = app();
        type_str(&mut a, "still on its way");
        a.update(key(KeyCode::Enter));
        assert_eq!(a.update(ctrl_c()), vec![]);
        let note = a.current().entries.back().unwrap();
        assert!(
            matches!(&note.kind, EntryKind::Info(t) if t.contains("still on its way") && t.contains("Ctrl-C again")),
            "{:?}",
            note.kind
        );
        assert_eq!(a.update(ctrl_c()), vec![Effect::Quit]);
        assert_eq!(app().update(ctrl_c()), vec![Effect::Quit]);
    }

    #[test]
    fn typing_and_enter_sends_and_shows_pending_until_acked() {
        let mut a = app();
        type_str(&mut a, "你好");
        let effects = a.update(key(KeyCode::Enter));
        assert_eq!(
            effects,
            vec![Effect::Say {
                local: 1,
                room: "lobby".into(),
                text: "你好".into()
            }]
        );
        let last = a.current().entries.back().unwrap();
        assert!(matches!(
            &last.kind,
            EntryKind::Message {
                state: SendState::Pending,
                own: true,
                ..
            }
        ));
        a.bind(1, "id-1".into());
        a.update(Event::Chat(ChatEvent::Sent {
            message: Outgoing {
                id: "id-1".into(),
                room: Some("lobby".into()),
                to: None,
                text: "你好".into(),
            },
            seq: 7,
            ts: "2026-11-25T16:38:57.123Z".into(),
        }));
        let last = a.current().entries.back().unwrap();
        assert_eq!(last.seq, Some(7));
        assert!(matches!(
            &last.kind,
            EntryKind::Message {
                state: SendState::Sent,
                ..
            }
        ));
    }

    #[test]
    fn refused_messages_are_marked_failed() {
        let mut a = app();
        type_str(&mut a, "x");
        a.update(key(KeyCode::Enter));
        a.bind(1, "id".into());
        a.update(Event::Chat(ChatEvent::Refused {
            message: Outgoing {
                id: "id".into(),
                room: None,
                to: None,
                text: "x".into(),
            },
            code: natter_proto::ErrorCode::InvalidText,
            reason: "nope".into(),
        }));
        assert!(
            matches!(&a.current().entries.back().unwrap().kind, EntryKind::Message { state: SendState::Failed(r), .. } if r == "nope")
        );
    }

    #[test]
    fn messages_elsewhere_count_as_unread_and_mentions_are_marked() {
        let mut a = app();
        type_str(&mut a, "/join rust");
        a.update(key(KeyCode::Enter));
        a.update(Event::Chat(ChatEvent::Frame(ServerFrame::Joined {
            room: "rust".into(),
            name: "张三".into(),
            ts: String::new(),
        })));
        assert_eq!(
            a.current().key,
            ConvKey::Room("rust".into()),
            "joining switches to the room"
        );
        a.update(msg(1, Some("lobby"), "bob", None, "hi all"));
        a.update(msg(2, Some("lobby"), "bob", None, "张三 are you there?"));
        let lobby = &a.convs[0];
        assert_eq!((lobby.unread, lobby.mention), (2, true));
        a.update(Event::Key(KeyEvent::new(
            KeyCode::Char('1'),
            KeyModifiers::ALT,
        )));
        assert_eq!(a.current, 0);
        assert_eq!((a.convs[0].unread, a.convs[0].mention), (0, false));
    }

    #[test]
    fn private_messages_get_their_own_conversation() {
        let mut a = app();
        a.update(msg(5, None, "bob", Some("张三"), "psst"));
        assert_eq!(a.convs[1].key, ConvKey::Private("bob".into()));
        assert_eq!(a.convs[1].unread, 1);
        let effects = a.update(Event::Key(KeyEvent::new(
            KeyCode::Char('n'),
            KeyModifiers::CONTROL,
        )));
        assert!(effects.is_empty());
        type_str(&mut a, "back");
        let effects = a.update(key(KeyCode::Enter));
        assert_eq!(
            effects,
            vec![Effect::Whisper {
                local: 1,
                to: "bob".into(),
                text: "back".into()
            }]
        );
    }

    #[test]
    fn msg_command_opens_the_conversation() {
        let mut a = app();
        type_str(&mut a, "/msg 李四 你好");
        let effects = a.update(key(KeyCode::Enter));
        assert_eq!(a.current().key, ConvKey::Private("李四".into()));
        assert_eq!(
            effects,
            vec![Effect::Whisper {
                local: 1,
                to: "李四".into(),
                text: "你好".into()
            }]
        );
    }

    #[test]
    fn history_and_live_merge_in_seq_order_without_duplicates() {
        let mut a = app();
        a.update(msg(10, Some("lobby"), "bob", None, "ten"));
        a.update(Event::Chat(ChatEvent::Frame(ServerFrame::History {
            room: Some("lobby".into()),
            messages: vec![
                Message {
                    tags: Default::default(),
                    notice: false,
                    seq: 8,
                    ts: "2026-11-25T16:38:57Z".into(),
                    room: Some("lobby".into()),
                    from: "a".into(),
                    to: None,
                    text: "eight".into(),
                    event: None,
                    file: None,
                },
                Message {
                    tags: Default::default(),
                    notice: false,
                    seq: 10,
                    ts: "2026-11-25T16:38:57Z".into(),
                    room: Some("lobby".into()),
                    from: "bob".into(),
                    to: None,
                    text: "ten".into(),
                    event: None,
                    file: None,
                },
            ],
            new_after: None,
            with: None,
            id: None,
        })));
        let seqs: Vec<_> = a.current().entries.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, vec![Some(8), Some(10)]);
        assert_eq!(a.current().unread, 0);
    }

    #[test]
    fn a_multi_line_paste_needs_confirmation() {
        let mut a = app();
        assert!(a
            .update(Event::Paste("line one\r\nline two\n".into()))
            .is_empty());
        assert_eq!(a.paste.as_deref(), Some("line one\nline two"));
        let effects = a.update(key(KeyCode::Enter));
        assert_eq!(
            effects,
            vec![Effect::Say {
                local: 1,
                room: "lobby".into(),
                text: "line one\nline two".into()
            }]
        );
        a.update(Event::Paste("a\nb".into()));
        assert!(a.update(key(KeyCode::Esc)).is_empty());
        assert!(a.paste.is_none());
    }

    #[test]
    fn tab_completes_names_and_commands() {
        let mut a = app();
        a.convs[0].members = vec!["李四".into(), "alice".into(), "张三".into()];
        type_str(&mut a, "李");
        a.update(key(KeyCode::Tab));
        assert_eq!(a.input.text(), "李四: ");
        let mut a = app();
        type_str(&mut a, "/jo");
        a.update(key(KeyCode::Tab));
        assert_eq!(a.input.text(), "/join ");
    }

    /// Issue 11, friction 11: the replay a join brings sits above the join notice, not below it; and
    /// the server putting us back in our rooms on a reconnect adds no "joined" lines.
    #[test]
    fn a_joins_replay_sits_above_the_join_notice_and_reconnects_are_quiet() {
        let mut a = app();
        let joined = |who: &str, ts: &str| {
            Event::Chat(ChatEvent::Frame(ServerFrame::Joined {
                room: "rust".into(),
                name: who.into(),
                ts: ts.into(),
            }))
        };
        type_str(&mut a, "/join rust");
        a.update(key(KeyCode::Enter));
        a.update(joined("张三", "2026-11-25T16:40:00.000Z"));
        let old = |seq: u64, text: &str| Message {
            tags: Default::default(),
            notice: false,
            seq,
            ts: format!("2026-11-25T16:3{seq}:00.000Z"),
            room: Some("rust".into()),
            from: "bob".into(),
            to: None,
            text: text.into(),
            event: None,
            file: None,
        };
        a.update(Event::Chat(ChatEvent::Frame(ServerFrame::History {
            room: Some("rust".into()),
            messages: vec![old(1, "first"), old(2, "second")],
            new_after: None,
            with: None,
            id: None,
        })));
        let mut live = old(3, "live");
        live.ts = "2026-11-25T16:41:00.000Z".into();
        a.update(Event::Chat(ChatEvent::Frame(ServerFrame::Message(
            Box::new(live),
        ))));
        let shown: Vec<String> = a
            .current()
            .entries
            .iter()
            .map(|e| match &e.kind {
                EntryKind::Message { text, .. } => text.clone(),
                EntryKind::Presence { text: t, .. } | EntryKind::Info(t) | EntryKind::Error(t) => {
                    t.clone()
                }
                EntryKind::File { info, .. } => info.name.clone(),
            })
            .collect();
        assert_eq!(shown, ["first", "second", "→ 张三 joined #rust", "live"]);
        let before = a.current().entries.len();
        a.update(Event::Chat(ChatEvent::Reconnected {
            rooms: vec!["lobby".into(), "rust".into()],
        }));
        a.update(joined("张三", "2026-11-25T16:50:00.000Z"));
        let presence = a
            .current()
            .entries
            .iter()
            .skip(before)
            .filter(|e| matches!(e.kind, EntryKind::Presence { .. }))
            .count();
        assert_eq!(presence, 0, "a reconnect is not a join");
    }

    /// Issue 11, friction 11: someone whose connection dropped and who came back shows as one line.
    #[test]
    fn a_reconnect_of_someone_else_is_one_line() {
        let mut a = app();
        let presence = |a: &App| -> Vec<String> {
            a.current()
                .entries
                .iter()
                .filter_map(|e| match &e.kind {
                    EntryKind::Presence { text, .. } => Some(text.clone()),
                    _ => None,
                })
                .collect()
        };
        a.update(Event::Chat(ChatEvent::Frame(ServerFrame::Left {
            room: "lobby".into(),
            name: "bob".into(),
            ts: "2026-11-25T16:40:00.000Z".into(),
            reason: LeftReason::Disconnect,
            text: None,
        })));
        a.update(Event::Chat(ChatEvent::Frame(ServerFrame::Joined {
            room: "lobby".into(),
            name: "bob".into(),
            ts: "2026-11-25T16:40:02.000Z".into(),
        })));
        assert_eq!(presence(&a), ["↻ bob reconnected to #lobby"]);
        a.update(Event::Chat(ChatEvent::Frame(ServerFrame::Joined {
            room: "lobby".into(),
            name: "carol".into(),
            ts: "2026-11-25T16:40:03.000Z".into(),
        })));
        assert_eq!(presence(&a).len(), 2, "a first join is still a join");
    }

    /// Issue 12: private messages that came while you were away arrive as unread, with the mark on
    /// their conversation; the rest of the replay does not.
    #[test]
    fn what_came_while_away_is_unread() {
        let mut a = app();
        let pm = |seq: u64, text: &str| Message {
            tags: Default::default(),
            notice: false,
            seq,
            ts: "2026-11-25T16:40:00.000Z".into(),
            room: None,
            from: "bob".into(),
            to: Some("张三".into()),
            text: text.into(),
            event: None,
            file: None,
        };
        a.update(Event::Chat(ChatEvent::Frame(ServerFrame::History {
            room: None,
            messages: vec![pm(3, "seen before"), pm(7, "new 1"), pm(9, "new 2")],
            new_after: Some(5),
            with: None,
            id: None,
        })));
        let bob = a
            .convs
            .iter()
            .find(|c| c.key.is(&ConvKey::Private("bob".into())))
            .unwrap();
        assert_eq!(bob.unread, 2);
    }

    /// Issue 11, friction 12: `/history` with nothing older says so.
    #[test]
    fn an_empty_history_answer_is_said() {
        let mut a = app();
        type_str(&mut a, "/history");
        a.update(key(KeyCode::Enter));
        a.update(Event::Chat(ChatEvent::Frame(ServerFrame::History {
            room: Some("lobby".into()),
            messages: Vec::new(),
            new_after: None,
            with: None,
            id: None,
        })));
        assert!(matches!(
            &a.current().entries.back().unwrap().kind,
            EntryKind::Info(t) if t == "no earlier messages in #lobby"
        ));
    }

    /// Issue 11, friction 12: Tab again cycles through the other candidates; typing ends the cycle.
    #[test]
    fn tab_again_cycles_through_the_candidates() {
        let mut a = app();
        a.convs[0].members = vec!["bob".into(), "Bea".into(), "alice".into(), "bill".into()];
        type_str(&mut a, "hi b");
        let mut seen = Vec::new();
        for _ in 0..4 {
            a.update(key(KeyCode::Tab));
            seen.push(a.input.text());
        }
        assert_eq!(seen, ["hi Bea ", "hi bill ", "hi bob ", "hi Bea "]);
        type_str(&mut a, "and ");
        a.update(key(KeyCode::Tab));
        assert_eq!(
            a.input.text(),
            "hi Bea and ",
            "nothing to complete after a space"
        );
        let mut a = app();
        type_str(&mut a, "/h");
        a.update(key(KeyCode::Tab));
        a.update(key(KeyCode::Tab));
        assert_eq!(a.input.text(), "/help ");
    }

    #[test]
    fn scrollback_is_bounded() {
        let mut a = app();
        for i in 0..(SCROLLBACK as u64 + 50) {
            a.update(msg(i + 1, Some("lobby"), "bob", None, "x"));
        }
        assert_eq!(a.current().entries.len(), SCROLLBACK);
        assert_eq!(a.current().entries.front().unwrap().seq, Some(51));
    }

    #[test]
    fn ctrl_c_and_exit_quit() {
        let mut a = app();
        assert_eq!(
            a.update(Event::Key(KeyEvent::new(
                KeyCode::Char('c'),
                KeyModifiers::CONTROL
            ))),
            vec![Effect::Quit]
        );
        type_str(&mut a, "exit");
        assert_eq!(a.update(key(KeyCode::Enter)), vec![Effect::Quit]);
    }

    #[test]
    fn mention_detection() {
        assert!(mentions("hey Bob!", "bob"));
        assert!(mentions("张三你好", "张三"));
        assert!(!mentions("bobby", "bob"));
    }
}
