//! What the chat session reports: messages, presence, replies, connection changes — each shown in the
//! right conversation.

use std::time::Instant;

use natter_i18n::t;
use natter_proto::frame::{ByeReason, Message};
use natter_proto::{LeftReason, ServerFrame};

use super::{mentions, App, Conn, ConvKey, Effect, Entry, EntryKind, SendState};
use crate::chat::{ChatEvent, Closed};
use crate::display;

impl App {
    /// Files a message from the server into its conversation. Returns effects (the bell on a mention).
    pub(super) fn message(&mut self, m: Message, live: bool) -> Vec<Effect> {
        let own = m.from == self.me;
        let key = match (&m.room, &m.to) {
            (Some(room), _) => ConvKey::Room(room.clone()),
            (None, Some(to)) if own => ConvKey::Private(to.clone()),
            _ => ConvKey::Private(m.from.clone()),
        };
        let mention = !own && m.event.is_none() && mentions(&m.text, &self.me);
        let i = self.conv_index(&key);
        let kind = match &m.event {
            _ if m.file.is_some() => EntryKind::File {
                from: m.from,
                info: *m.file.unwrap_or_else(|| unreachable!("checked")),
            },
            // A room event: who did what, as a notice; a new topic goes above the conversation.
            Some(event) => {
                if event.kind == "topic" {
                    self.convs[i].topic = event.text.clone().filter(|t| !t.is_empty());
                }
                let what = natter_proto::text::describe_event(natter_i18n::lang(), event);
                EntryKind::Info(format!("* {} {what}", m.from))
            }
            None => EntryKind::Message {
                from: m.from,
                text: m.text,
                own,
                state: SendState::Sent,
                mention,
            },
        };
        let entry = Entry {
            seq: Some(m.seq),
            ts: natter_proto::time::parse(&m.ts),
            kind,
            local: None,
            id: None,
        };
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

    pub(super) fn chat(&mut self, event: ChatEvent) -> Vec<Effect> {
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
                self.note(EntryKind::Info(t!("reconnected-caught-up")));
            }
            ChatEvent::Closed { why, unsent } => {
                self.quit = true;
                self.conn = Conn::Offline(match &why {
                    Closed::Exit => t!("status-left"),
                    Closed::GaveUp(reason) => reason.clone(),
                });
                let mut words = Vec::new();
                if let Closed::GaveUp(reason) = why {
                    words.push(t!("gave-up", reason = reason));
                }
                for m in unsent {
                    words.push(t!("not-sent-unconfirmed", text = m.text));
                }
                if !words.is_empty() {
                    self.farewell = Some(words.join("\n"));
                }
            }
        }
        Vec::new()
    }

    pub(super) fn frame(&mut self, frame: ServerFrame) -> Vec<Effect> {
        match frame {
            // The answers of a transfer's requests go to the transfer, not here.
            ServerFrame::UploadReady { .. }
            | ServerFrame::DownloadReady { .. }
            | ServerFrame::UploadAt { .. }
            | ServerFrame::Uploaded { .. }
            | ServerFrame::Sending { .. } => {}
            ServerFrame::Message(m) => return self.message(*m, true),
            ServerFrame::History {
                messages,
                room,
                new_after,
                ..
            } => {
                if std::mem::take(&mut self.asked_history) && messages.is_empty() {
                    self.note(EntryKind::Info(display::no_earlier(room.as_deref())));
                }
                for m in messages {
                    // What came while you were away counts as unread, as if it arrived now.
                    let new = new_after.is_some_and(|after| m.seq > after) && m.from != self.me;
                    self.message(m, new);
                }
            }
            ServerFrame::Joined { room, name, ts } => {
                let i = self.conv_index(&ConvKey::Room(room.clone()));
                if name == self.me {
                    let key = ConvKey::Room(room.clone());
                    if self
                        .joining
                        .take_if(|j| key.is(&ConvKey::Room(j.clone())))
                        .is_none()
                    {
                        // The server putting us back in a room (start-up, reconnect) is no news.
                        return Vec::new();
                    }
                    self.switch(i);
                } else if !self.convs[i].members.contains(&name) {
                    self.convs[i].members.push(name.clone());
                }
                // Someone whose connection dropped and who is back: one line, not a leave and a join.
                let r#where = format!(" {}", display::room_tag(&room));
                if let Some(e) = self.convs[i].entries.iter_mut().rev().take(50).find(|e| {
                    matches!(&e.kind, EntryKind::Presence { dropped: Some(d), .. } if *d == name)
                }) {
                    let text = t!("presence-reconnected", name = &name, r#where = r#where);
                    e.kind = EntryKind::Presence {
                        text: format!("↻ {text}"),
                        dropped: None,
                    };
                    return Vec::new();
                }
                let text = t!("presence-joined", name = &name, r#where = r#where);
                self.convs[i].push(Entry::at(
                    EntryKind::Presence {
                        text: format!("→ {text}"),
                        dropped: None,
                    },
                    &ts,
                ));
            }
            ServerFrame::Left {
                room,
                name,
                reason,
                ts,
                ..
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
                let dropped = !matches!(reason, LeftReason::Exit | LeftReason::Leave);
                let text = display::left_text(&room, &name, reason);
                self.convs[i].push(Entry::at(
                    EntryKind::Presence {
                        text: format!("← {text}"),
                        dropped: dropped.then_some(name),
                    },
                    &ts,
                ));
            }
            ServerFrame::Topic { room, topic, .. } => {
                let key = ConvKey::Room(room);
                if let Some(c) = self.convs.iter_mut().find(|c| c.key.is(&key)) {
                    c.topic = topic;
                }
            }
            ServerFrame::Users {
                room,
                names,
                count,
                ops,
            } => {
                if let Some(count) = count {
                    self.note(EntryKind::Info(display::member_count_text(&room, count)));
                }
                if std::mem::take(&mut self.asked_who) {
                    self.note(EntryKind::Info(display::users_text(&room, &names)));
                }
                let key = ConvKey::Room(room);
                if let Some(c) = self.convs.iter_mut().find(|c| c.key.is(&key)) {
                    c.ops = ops;
                    c.members = names;
                }
            }
            ServerFrame::Rooms { rooms } => {
                self.note(EntryKind::Info(display::rooms_text(&rooms)));
            }
            ServerFrame::Error {
                code,
                message,
                args,
                ..
            } => self.note(EntryKind::Error(display::error(code, &args, &message))),
            ServerFrame::Bye {
                reason: ByeReason::Shutdown,
            } => self.note(EntryKind::Info(t!("server-shutting-down"))),
            ServerFrame::PasswordSet => self.note(EntryKind::Info(t!("password-set"))),
            ServerFrame::Forgotten => self.note(EntryKind::Info(t!("forgotten"))),
            ServerFrame::Blocked { name, on } => self.note(EntryKind::Info(match on {
                true => t!("blocked-on", name = name),
                false => t!("blocked-off", name = name),
            })),
            ServerFrame::Welcome { .. }
            | ServerFrame::Challenge { .. }
            | ServerFrame::Status { .. }
            | ServerFrame::Ping { .. }
            | ServerFrame::Ack { .. }
            | ServerFrame::Pong { .. }
            | ServerFrame::Signal(_)
            | ServerFrame::Conversations { .. }
            | ServerFrame::Bye { .. } => {}
        }
        Vec::new()
    }
}
