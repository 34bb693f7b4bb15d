//! The TUI's state: plain data with one entry point, [`App::update`]. No terminal, no socket; the one
//! thing it reads from outside is the clock (the time of a local note, the next reconnect's deadline), so
//! tests assert on everything but those stamps.
//!
//! `update` takes an [`Event`] (a key, a paste, a scroll, something from the chat session) and returns the
//! [`Effect`]s the runner should carry out (send a message, ring the bell, quit). Drawing is `ui.rs`.

use std::cell::Cell;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use jiff::Timestamp;
use natter_proto::command::{self, Command, HELP};
use natter_proto::frame::{ByeReason, Message};
use natter_proto::{ClientFrame, LeftReason, ServerFrame, LOBBY};

use crate::chat::{ChatEvent, Closed};
use crate::editor::{self, Action, LineBuffer};

/// Most entries kept per conversation; older ones are dropped so memory stays bounded.
pub const SCROLLBACK: usize = 10_000;

/// A conversation: a room, or private messages with one person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConvKey {
    Room(String),
    Private(String),
}

impl ConvKey {
    pub fn label(&self) -> String {
        match self {
            ConvKey::Room(r) => format!("#{r}"),
            ConvKey::Private(p) => format!("@{p}"),
        }
    }

    fn is(&self, other: &ConvKey) -> bool {
        match (self, other) {
            (ConvKey::Room(a), ConvKey::Room(b)) | (ConvKey::Private(a), ConvKey::Private(b)) => {
                natter_proto::name::fold(a) == natter_proto::name::fold(b)
            }
            _ => false,
        }
    }
}

/// Where one of your messages stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendState {
    Pending,
    Sent,
    Failed(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    Message {
        from: String,
        text: String,
        own: bool,
        state: SendState,
        /// Mentions your name.
        mention: bool,
    },
    /// Joins and leaves: shown dimmed.
    Presence(String),
    Info(String),
    Error(String),
}

/// One line (before wrapping) of a conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub seq: Option<u64>,
    pub ts: Option<Timestamp>,
    pub kind: EntryKind,
    /// For your own messages: the runner's handle until the session assigns an id, then the id.
    local: Option<u64>,
    id: Option<String>,
}

impl Entry {
    fn new(kind: EntryKind) -> Self {
        Self {
            seq: None,
            ts: Some(Timestamp::now()),
            kind,
            local: None,
            id: None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Conv {
    pub key: ConvKey,
    pub entries: VecDeque<Entry>,
    pub unread: usize,
    pub mention: bool,
    /// For rooms: who is in it, as the server last said.
    pub members: Vec<String>,
}

impl Conv {
    fn new(key: ConvKey) -> Self {
        Self {
            key,
            entries: VecDeque::new(),
            unread: 0,
            mention: false,
            members: Vec::new(),
        }
    }

    fn push(&mut self, entry: Entry) {
        self.entries.push_back(entry);
        while self.entries.len() > SCROLLBACK {
            self.entries.pop_front();
        }
    }

    /// Adds a message from the server in seq order; false if it was already there.
    fn insert_message(&mut self, entry: Entry) -> bool {
        let Some(seq) = entry.seq else {
            self.push(entry);
            return true;
        };
        // Fast path: newer than everything here (the usual case for live traffic).
        if self
            .entries
            .iter()
            .rev()
            .find_map(|e| e.seq)
            .is_none_or(|last| last < seq)
        {
            self.push(entry);
            return true;
        }
        if self.entries.iter().any(|e| e.seq == Some(seq)) {
            return false;
        }
        // Usually the newest: scan from the back for the place.
        let at = self
            .entries
            .iter()
            .rposition(|e| e.seq.is_some_and(|s| s < seq))
            .map(|i| i + 1)
            .unwrap_or_else(|| {
                if self.entries.iter().any(|e| e.seq.is_some()) {
                    0
                } else {
                    self.entries.len()
                }
            });
        self.entries.insert(at, entry);
        while self.entries.len() > SCROLLBACK {
            self.entries.pop_front();
        }
        true
    }

    fn oldest_seq(&self) -> Option<u64> {
        self.entries.iter().filter_map(|e| e.seq).min()
    }
}

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
    pub options: Options,
    /// Set when the session is over; `farewell` says why.
    pub quit: bool,
    pub farewell: Option<String>,
    /// Rows of the message pane at the last draw (for PgUp/PgDn).
    pub page: Cell<usize>,
    /// `/who` was asked: show the next member list as a line too.
    asked_who: bool,
    next_local: u64,
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
            options,
            quit: false,
            farewell: None,
            page: Cell::new(10),
            asked_who: false,
            next_local: 0,
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

    /// Adds a line to the current conversation.
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

    fn key(&mut self, key: KeyEvent) -> Vec<Effect> {
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        let alt = key.modifiers.contains(KeyModifiers::ALT);
        if let Some(paste) = self.paste.take() {
            return match key.code {
                KeyCode::Enter => self.send_text(paste),
                KeyCode::Esc => Vec::new(),
                _ => {
                    self.paste = Some(paste);
                    Vec::new()
                }
            };
        }
        match key.code {
            KeyCode::Char(c @ '1'..='9') if alt => {
                self.switch(c as usize - '1' as usize);
                return Vec::new();
            }
            KeyCode::Char('n') if ctrl => {
                self.switch((self.current + 1) % self.convs.len());
                return Vec::new();
            }
            KeyCode::Char('p') if ctrl => {
                self.switch((self.current + self.convs.len() - 1) % self.convs.len());
                return Vec::new();
            }
            KeyCode::PageUp => {
                self.scroll += self.page.get().saturating_sub(1).max(1);
                return Vec::new();
            }
            KeyCode::PageDown => {
                self.scroll = self
                    .scroll
                    .saturating_sub(self.page.get().saturating_sub(1).max(1));
                return Vec::new();
            }
            KeyCode::End if self.input.cursor() == self.input.text().chars().count() => {
                self.scroll = 0;
                return Vec::new();
            }
            KeyCode::F(2) => {
                self.show_members = !self.show_members;
                return Vec::new();
            }
            KeyCode::Tab => {
                self.complete();
                return Vec::new();
            }
            _ => {}
        }
        match editor::apply(&mut self.input, &crossterm::event::Event::Key(key)) {
            Action::Submit(line) => self.typed(&line),
            Action::Eof | Action::Interrupt => vec![Effect::Quit],
            Action::Edited => Vec::new(),
        }
    }

    /// Tab: completes a command at the start of the line, otherwise a member's name.
    fn complete(&mut self) {
        let text = self.input.text();
        let chars: Vec<char> = text.chars().collect();
        let cursor = self.input.cursor();
        let start = chars[..cursor]
            .iter()
            .rposition(|c| c.is_whitespace())
            .map_or(0, |i| i + 1);
        let word: String = chars[start..cursor].iter().collect();
        if word.is_empty() {
            return;
        }
        let lower = word.to_lowercase();
        let candidate = if start == 0 && word.starts_with('/') {
            const COMMANDS: &[&str] = &[
                "/msg", "/join", "/leave", "/who", "/rooms", "/history", "/clear", "/help", "/quit",
            ];
            COMMANDS
                .iter()
                .find(|c| c.starts_with(&lower))
                .map(|c| format!("{c} "))
        } else {
            let mut names: Vec<&String> = self.current().members.iter().collect();
            names.sort_by_key(|n| n.to_lowercase());
            names
                .into_iter()
                .find(|n| n.to_lowercase().starts_with(&lower) && **n != self.me)
                .map(|n| {
                    if start == 0 {
                        format!("{n}: ")
                    } else {
                        format!("{n} ")
                    }
                })
        };
        if let Some(full) = candidate {
            for _ in start..cursor {
                self.input.backspace();
            }
            self.input.insert_str(&full);
        }
    }

    /// Sends `text` to the current conversation, showing it as pending until acknowledged.
    fn send_text(&mut self, text: String) -> Vec<Effect> {
        self.next_local += 1;
        let local = self.next_local;
        let effect = match self.current().key.clone() {
            ConvKey::Room(room) => Effect::Say {
                local,
                room,
                text: text.clone(),
            },
            ConvKey::Private(to) => Effect::Whisper {
                local,
                to,
                text: text.clone(),
            },
        };
        let mut entry = Entry::new(EntryKind::Message {
            from: self.me.clone(),
            text,
            own: true,
            state: SendState::Pending,
            mention: false,
        });
        entry.local = Some(local);
        let i = self.current;
        self.convs[i].push(entry);
        self.scroll = 0;
        vec![effect]
    }

    /// Acts on a submitted line.
    fn typed(&mut self, line: &str) -> Vec<Effect> {
        let room_or_lobby = |app: &App| match &app.current().key {
            ConvKey::Room(r) => r.clone(),
            ConvKey::Private(_) => LOBBY.to_owned(),
        };
        match command::parse(line) {
            Command::Nothing => Vec::new(),
            Command::Clear => {
                let i = self.current;
                self.convs[i].entries.clear();
                self.scroll = 0;
                Vec::new()
            }
            Command::History => {
                let before = self.current().oldest_seq();
                let room = match &self.current().key {
                    ConvKey::Room(r) => Some(r.clone()),
                    ConvKey::Private(_) => None,
                };
                vec![Effect::Send(ClientFrame::History {
                    room,
                    before,
                    limit: Some(50),
                })]
            }
            Command::Quit => vec![Effect::Quit],
            Command::Say(text) => self.send_text(text),
            Command::Msg { to, text } => {
                let i = self.conv_index(&ConvKey::Private(to));
                self.switch(i);
                if text.is_empty() {
                    Vec::new()
                } else {
                    self.send_text(text)
                }
            }
            Command::Join(room) => {
                let room = room.trim_start_matches('#').to_owned();
                if let Some(i) = self
                    .convs
                    .iter()
                    .position(|c| c.key.is(&ConvKey::Room(room.clone())))
                {
                    self.switch(i);
                }
                vec![Effect::Send(ClientFrame::Join { room })]
            }
            Command::Leave(room) => match (room, self.current().key.clone()) {
                (None, ConvKey::Private(_)) => {
                    // Closing a private conversation is local.
                    self.close(self.current);
                    Vec::new()
                }
                (room, _) => vec![Effect::Send(ClientFrame::Leave {
                    room: room.unwrap_or_else(|| room_or_lobby(self)),
                })],
            },
            Command::Who(room) => {
                self.asked_who = true;
                vec![Effect::Send(ClientFrame::Who {
                    room: Some(room.unwrap_or_else(|| room_or_lobby(self))),
                })]
            }
            Command::Rooms => vec![Effect::Send(ClientFrame::Rooms)],
            Command::Help => {
                for (cmd, what) in HELP {
                    self.note(EntryKind::Info(format!("{cmd:<16} {what}")));
                }
                for (cmd, what) in [
                    ("/clear", "clear this conversation's window"),
                    ("Alt-1..9 Ctrl-N/P", "switch conversation"),
                    ("PgUp/PgDn, wheel", "scroll; End follows live messages"),
                    ("F2", "show or hide the member list"),
                    ("Tab", "complete a name or command"),
                ] {
                    self.note(EntryKind::Info(format!("{cmd:<16} {what}")));
                }
                Vec::new()
            }
            Command::Usage(usage) => {
                self.note(EntryKind::Error(format!("usage: {usage}")));
                Vec::new()
            }
            Command::Unknown(cmd) => {
                self.note(EntryKind::Error(format!(
                    "unknown command {cmd}; /help lists them"
                )));
                Vec::new()
            }
        }
    }

    /// Files a message from the server into its conversation. Returns effects (the bell on a mention).
    fn message(&mut self, m: Message, live: bool) -> Vec<Effect> {
        let own = m.from == self.me;
        let key = match (&m.room, &m.to) {
            (Some(room), _) => ConvKey::Room(room.clone()),
            (None, Some(to)) if own => ConvKey::Private(to.clone()),
            _ => ConvKey::Private(m.from.clone()),
        };
        let mention = !own && mentions(&m.text, &self.me);
        let entry = Entry {
            seq: Some(m.seq),
            ts: natter_proto::time::parse(&m.ts),
            kind: EntryKind::Message {
                from: m.from,
                text: m.text,
                own,
                state: SendState::Sent,
                mention,
            },
            local: None,
            id: None,
        };
        let i = self.conv_index(&key);
        if !self.convs[i].insert_message(entry) || !live {
            return Vec::new();
        }
        if i != self.current {
            self.convs[i].unread += 1;
            self.convs[i].mention |= mention;
        }
        if mention && self.options.bell {
            vec![Effect::Bell]
        } else {
            Vec::new()
        }
    }

    fn chat(&mut self, event: ChatEvent) -> Vec<Effect> {
        match event {
            ChatEvent::Frame(frame) => return self.frame(frame),
            ChatEvent::Sent { message, seq, ts } => {
                for conv in &mut self.convs {
                    if let Some(e) = conv
                        .entries
                        .iter_mut()
                        .find(|e| e.id.as_deref() == Some(message.id.as_str()))
                    {
                        e.seq = Some(seq);
                        e.ts = natter_proto::time::parse(&ts);
                        if let EntryKind::Message { state, .. } = &mut e.kind {
                            *state = SendState::Sent;
                        }
                    }
                }
            }
            ChatEvent::Refused {
                message, reason, ..
            } => {
                for conv in &mut self.convs {
                    if let Some(e) = conv
                        .entries
                        .iter_mut()
                        .find(|e| e.id.as_deref() == Some(message.id.as_str()))
                    {
                        if let EntryKind::Message { state, .. } = &mut e.kind {
                            *state = SendState::Failed(reason.clone());
                        }
                    }
                }
            }
            ChatEvent::Reconnecting { delay, .. } => {
                self.conn = Conn::Reconnecting {
                    until: Instant::now() + delay,
                };
            }
            ChatEvent::Reconnected { .. } => {
                self.conn = Conn::Connected;
                self.note(EntryKind::Info(
                    "reconnected; caught up on what you missed".into(),
                ));
            }
            ChatEvent::Closed { why, unsent } => {
                self.quit = true;
                self.conn = Conn::Offline(match &why {
                    Closed::Exit => "left".into(),
                    Closed::GaveUp(reason) => reason.clone(),
                });
                let mut words = Vec::new();
                if let Closed::GaveUp(reason) = why {
                    words.push(format!("gave up: {reason}"));
                }
                for m in unsent {
                    words.push(format!(
                        "not sent (the server never confirmed it): {}",
                        m.text
                    ));
                }
                if !words.is_empty() {
                    self.farewell = Some(words.join("\n"));
                }
            }
        }
        Vec::new()
    }

    fn frame(&mut self, frame: ServerFrame) -> Vec<Effect> {
        match frame {
            ServerFrame::Message(m) => return self.message(m, true),
            ServerFrame::History { messages, .. } => {
                for m in messages {
                    self.message(m, false);
                }
            }
            ServerFrame::Joined { room, name, .. } => {
                let i = self.conv_index(&ConvKey::Room(room.clone()));
                if name == self.me {
                    self.switch(i);
                } else if !self.convs[i].members.contains(&name) {
                    self.convs[i].members.push(name.clone());
                }
                self.convs[i].push(Entry::new(EntryKind::Presence(format!(
                    "→ {name} joined #{room}"
                ))));
            }
            ServerFrame::Left {
                room, name, reason, ..
            } => {
                let Some(i) = self
                    .convs
                    .iter()
                    .position(|c| c.key.is(&ConvKey::Room(room.clone())))
                else {
                    return Vec::new();
                };
                if name == self.me && reason == LeftReason::Leave {
                    self.close(i);
                    return Vec::new();
                }
                self.convs[i].members.retain(|m| *m != name);
                let why = match reason {
                    LeftReason::Exit | LeftReason::Leave => String::new(),
                    other => format!(" ({})", other.as_str()),
                };
                self.convs[i].push(Entry::new(EntryKind::Presence(format!(
                    "← {name} left #{room}{why}"
                ))));
            }
            ServerFrame::Users { room, names, count } => {
                if let Some(count) = count {
                    self.note(EntryKind::Info(format!(
                        "#{room} has {count} members; /who lists them"
                    )));
                }
                if std::mem::take(&mut self.asked_who) {
                    self.note(EntryKind::Info(format!("in #{room}: {}", names.join(", "))));
                }
                let key = ConvKey::Room(room);
                if let Some(c) = self.convs.iter_mut().find(|c| c.key.is(&key)) {
                    c.members = names;
                }
            }
            ServerFrame::Rooms { rooms } => {
                let list: Vec<String> = rooms
                    .iter()
                    .map(|r| format!("#{} ({})", r.name, r.members))
                    .collect();
                self.note(EntryKind::Info(format!("rooms: {}", list.join(", "))));
            }
            ServerFrame::Error { message, .. } => self.note(EntryKind::Error(message)),
            ServerFrame::Bye {
                reason: ByeReason::Shutdown,
            } => self.note(EntryKind::Info("the server is shutting down".into())),
            ServerFrame::Welcome { .. }
            | ServerFrame::Ping { .. }
            | ServerFrame::Ack { .. }
            | ServerFrame::Pong { .. }
            | ServerFrame::Bye { .. } => {}
        }
        Vec::new()
    }

    /// Seconds until the next reconnect attempt, for the status bar.
    pub fn reconnect_in(&self, now: Instant) -> Option<Duration> {
        match self.conn {
            Conn::Reconnecting { until } => Some(until.saturating_duration_since(now)),
            _ => None,
        }
    }
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
        Event::Chat(ChatEvent::Frame(ServerFrame::Message(Message {
            seq,
            ts: "2026-11-25T16:38:57.123Z".into(),
            room: room.map(Into::into),
            from: from.into(),
            to: to.map(Into::into),
            text: text.into(),
        })))
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
                    seq: 8,
                    ts: "2026-11-25T16:38:57Z".into(),
                    room: Some("lobby".into()),
                    from: "a".into(),
                    to: None,
                    text: "eight".into(),
                },
                Message {
                    seq: 10,
                    ts: "2026-11-25T16:38:57Z".into(),
                    room: Some("lobby".into()),
                    from: "bob".into(),
                    to: None,
                    text: "ten".into(),
                },
            ],
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
