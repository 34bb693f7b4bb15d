//! What the user does: keys, completion, typed lines and commands — each turned into effects.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use natter_i18n::t;
use natter_proto::command::{self, Command};
use natter_proto::{ClientFrame, LOBBY};

use super::{App, Completion, ConvKey, Effect, Entry, EntryKind, Secret, SendState};
use crate::display;
use crate::editor::{self, Action};

impl App {
    pub(super) fn key(&mut self, key: KeyEvent) -> Vec<Effect> {
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
        if key.code != KeyCode::Tab {
            self.completion = None;
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
            Action::Submit(line) if self.secret.is_some() => {
                self.input.forget_last();
                self.secret_typed(line)
            }
            Action::Interrupt if self.secret.is_some() => {
                self.secret = None;
                self.input = Default::default();
                Vec::new()
            }
            Action::Submit(line) => {
                self.quit_armed = false;
                self.typed(&line)
            }
            Action::Interrupt => {
                let sending = self.sending();
                if sending.is_empty() || self.quit_armed {
                    return vec![Effect::Quit];
                }
                let list: Vec<String> = sending.iter().map(|t| format!("“{t}”")).collect();
                let note = t!("still-sending", list = list.join(", "));
                self.quit_armed = true;
                self.note(EntryKind::Info(note));
                Vec::new()
            }
            Action::Eof => vec![Effect::Quit],
            Action::Edited => Vec::new(),
        }
    }

    /// Tab: completes a command at the start of the line, otherwise a member's name.
    pub(super) fn complete(&mut self) {
        // Tab again, right after a completion and with nothing typed since: the next candidate.
        if let Some(c) = self.completion.as_mut() {
            let end = c.start + c.candidates[c.index].chars().count();
            if self.input.cursor() == end {
                c.index = (c.index + 1) % c.candidates.len();
                let next = c.candidates[c.index].clone();
                let (start, end) = (c.start, end);
                self.replace_word(start, end, &next);
                return;
            }
        }
        let text = self.input.text();
        let chars: Vec<char> = text.chars().collect();
        let cursor = self.input.cursor();
        let before: String = chars[..cursor].iter().collect();
        if let Some(typed) = before.strip_prefix("/send ") {
            // A path: everything after `/send`, spaces included.
            let start = "/send ".chars().count();
            let candidates = crate::transfer::complete_path(typed);
            if let Some(first) = candidates.first().cloned() {
                self.replace_word(start, cursor, &first);
                self.completion = Some(Completion {
                    start,
                    candidates,
                    index: 0,
                });
            }
            return;
        }
        let start = chars[..cursor]
            .iter()
            .rposition(|c| c.is_whitespace())
            .map_or(0, |i| i + 1);
        let word: String = chars[start..cursor].iter().collect();
        if word.is_empty() {
            return;
        }
        let lower = natter_proto::name::fold(&word);
        let candidates: Vec<String> = if start == 0 && word.starts_with('/') {
            const COMMANDS: &[&str] = &[
                "/msg",
                "/join",
                "/leave",
                "/who",
                "/rooms",
                "/history",
                "/clear",
                "/lang",
                "/password",
                "/send",
                "/get",
                "/cancel",
                "/help",
                "/quit",
            ];
            COMMANDS
                .iter()
                .filter(|c| c.starts_with(&lower))
                .map(|c| format!("{c} "))
                .collect()
        } else {
            let mut names: Vec<&String> = self.current().members.iter().collect();
            names.sort_by_key(|n| natter_proto::name::fold(n));
            names
                .into_iter()
                .filter(|n| natter_proto::name::fold(n).starts_with(&lower) && **n != self.me)
                .map(|n| {
                    if start == 0 {
                        format!("{n}: ")
                    } else {
                        format!("{n} ")
                    }
                })
                .collect()
        };
        let Some(first) = candidates.first().cloned() else {
            return;
        };
        self.replace_word(start, cursor, &first);
        self.completion = Some(Completion {
            start,
            candidates,
            index: 0,
        });
    }

    /// Replaces the characters `start..end` (ending at the cursor) with `with`.
    fn replace_word(&mut self, start: usize, end: usize, with: &str) {
        for _ in start..end {
            self.input.backspace();
        }
        self.input.insert_str(with);
    }

    /// Sends `text` to the current conversation, showing it as pending until acknowledged.
    pub(super) fn send_text(&mut self, text: String) -> Vec<Effect> {
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

    /// A line typed while `/password` asks: the new password, then the same again.
    fn secret_typed(&mut self, line: String) -> Vec<Effect> {
        match self.secret.take() {
            Some(Secret::New) if line.is_empty() => Vec::new(),
            Some(Secret::New) => {
                self.secret = Some(Secret::Again(line));
                Vec::new()
            }
            Some(Secret::Again(first)) if first == line => {
                vec![Effect::Send(ClientFrame::SetPassword { password: line })]
            }
            _ => {
                self.note(EntryKind::Error(t!("password-mismatch")));
                Vec::new()
            }
        }
    }

    /// Acts on a submitted line.
    pub(super) fn typed(&mut self, line: &str) -> Vec<Effect> {
        // `/forget-me` counts only right after another `/forget-me` (the first one warns).
        let armed = std::mem::take(&mut self.forget_armed);
        match command::parse(line) {
            Command::ForgetMe if !armed => {
                self.forget_armed = true;
                self.note(EntryKind::Error(t!("forget-me-confirm")));
                return Vec::new();
            }
            Command::ForgetMe => return vec![Effect::Send(ClientFrame::ForgetMe)],
            cmd @ Command::Block { .. } => {
                return cmd
                    .room_or_block_request("")
                    .map(Effect::Send)
                    .into_iter()
                    .collect()
            }
            _ => {}
        }
        let room_or_lobby = |app: &App| match &app.current().key {
            ConvKey::Room(r) => r.clone(),
            ConvKey::Private(_) => LOBBY.to_owned(),
        };
        match command::parse(line) {
            // Enter on an empty line: the file whose line is on screen (the newest one shown).
            Command::Nothing => match self.file_in_view.get() {
                Some(id) if line.is_empty() => vec![Effect::Download(id)],
                _ => Vec::new(),
            },
            Command::Send(path) => {
                let (room, to) = match self.current().key.clone() {
                    ConvKey::Room(room) => (Some(room), None),
                    ConvKey::Private(to) => (None, Some(to)),
                };
                vec![Effect::Upload {
                    path: crate::transfer::expand_home(&path),
                    room,
                    to,
                }]
            }
            Command::Get(id) => vec![Effect::Download(id)],
            Command::Cancel => vec![Effect::Cancel],
            Command::Clear => {
                let i = self.current;
                self.convs[i].entries.clear();
                self.scroll = 0;
                Vec::new()
            }
            Command::History => {
                self.asked_history = true;
                let before = self.current().oldest_seq();
                let room = match &self.current().key {
                    ConvKey::Room(r) => Some(r.clone()),
                    ConvKey::Private(_) => None,
                };
                vec![Effect::Send(ClientFrame::history_page(
                    room,
                    before,
                    Some(50),
                ))]
            }
            Command::Quit => vec![Effect::Quit],
            Command::ForgetMe | Command::Block { .. } => unreachable!("handled above"),
            cmd @ Command::Moderate { .. } => cmd
                .room_or_block_request(&room_or_lobby(self))
                .map(Effect::Send)
                .into_iter()
                .collect(),
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
                } else {
                    self.joining = Some(room.clone());
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
                    text: None,
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
                let keys = [
                    ("usage-clear", "help-clear"),
                    ("help-switch-keys", "help-switch"),
                    ("help-scroll-keys", "help-scroll"),
                    ("usage-f2", "help-members"),
                    ("usage-tab", "help-complete"),
                    ("usage-send", "help-send"),
                    ("usage-get", "help-get"),
                    ("usage-cancel", "help-cancel"),
                ];
                for line in display::help(&keys) {
                    self.note(EntryKind::Info(line));
                }
                Vec::new()
            }
            Command::Password(Some(password)) => {
                vec![Effect::Send(ClientFrame::SetPassword { password })]
            }
            Command::Password(None) => {
                self.secret = Some(Secret::New);
                Vec::new()
            }
            Command::Lang(tag) => {
                match crate::switch_lang(tag.as_deref()) {
                    Ok(said) => self.note(EntryKind::Info(said)),
                    Err(said) => self.note(EntryKind::Error(said)),
                }
                Vec::new()
            }
            Command::Usage(usage) => {
                self.note(EntryKind::Error(t!("usage", usage = t!(usage))));
                Vec::new()
            }
            Command::Unknown(cmd) => {
                self.note(EntryKind::Error(t!("unknown-command", command = cmd)));
                Vec::new()
            }
        }
    }
}
