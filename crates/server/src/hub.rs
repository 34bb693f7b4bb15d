//! The hub: who is online, which rooms exist, who is in them — and the fan-out of messages.
//!
//! The hub knows users by name and reaches them only through their [`Outbox`]; it never learns which
//! front end (native JSON, plain text, later IRC or WebSocket) a user came from.
//!
//! Concurrency rule: all state sits behind one `std::sync::Mutex`, taken for the length of one request
//! and never across `.await`. Assigning a seq and pushing the message into every member's outbox happen
//! under that lock, so every outbox receives messages in seq order — which is what makes "resume after
//! seq N" meaningful later. Replies to the requester are pushed under the same lock, so a client's acks and
//! the messages around them keep their order too. A push never blocks (see `outbox.rs`).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use natter_proto::frame::{Message, RoomInfo};
use natter_proto::{time, ErrorCode, LeftReason, Name, RoomName, ServerFrame, VERSION};

use crate::log::{MessageLog, Record};
use crate::outbox::{Outbox, Outgoing};

/// Limits the hub enforces on requests.
#[derive(Debug, Clone)]
pub struct HubConfig {
    /// Largest message text in bytes.
    pub max_text: usize,
}

struct Member {
    name: Name,
    outbox: Arc<Outbox>,
}

struct Room {
    name: RoomName,
    /// Keyed by the member's folded name.
    members: HashMap<String, Member>,
}

struct User {
    name: Name,
    outbox: Arc<Outbox>,
    /// Rooms this user is in, by folded room name.
    rooms: Vec<String>,
}

struct State {
    users: HashMap<String, User>,
    /// Ordered so `rooms` lists them alphabetically.
    rooms: BTreeMap<String, Room>,
    log: Box<dyn MessageLog>,
}

/// Shared by every session of a server.
pub struct Hub {
    state: Mutex<State>,
    config: HubConfig,
}

/// Why a request was refused: sent to the requester as an `error` frame.
pub struct Refusal(ErrorCode, String);

type Answer<T = ()> = Result<T, Refusal>;

fn refuse<T>(code: ErrorCode, message: impl Into<String>) -> Answer<T> {
    Err(Refusal(code, message.into()))
}

impl Hub {
    pub fn new(config: HubConfig, log: Box<dyn MessageLog>) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(State {
                users: HashMap::new(),
                rooms: BTreeMap::new(),
                log,
            }),
            config,
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sends an error to `outbox` if `answer` is a refusal.
    fn reply(outbox: &Outbox, answer: Answer, id: Option<String>) -> bool {
        match answer {
            Ok(()) => true,
            Err(Refusal(code, message)) => {
                outbox.send(ServerFrame::error(code, message, id));
                false
            }
        }
    }

    /// `hello`: takes the name, sends `welcome`, joins the lobby. Returns the name on success.
    pub fn register(&self, raw: &str, outbox: &Arc<Outbox>) -> Option<Name> {
        let mut state = self.lock();
        let result = (|| {
            let name =
                Name::new(raw).map_err(|e| Refusal(ErrorCode::InvalidName, e.to_string()))?;
            if state.users.contains_key(name.key()) {
                return refuse(ErrorCode::NameTaken, format!("the name {name} is taken"));
            }
            Ok(name)
        })();
        let name = match result {
            Ok(name) => name,
            Err(refusal) => {
                Self::reply(outbox, Err(refusal), None);
                return None;
            }
        };
        let lobby = RoomName::lobby();
        state.users.insert(
            name.key().to_owned(),
            User {
                name: name.clone(),
                outbox: outbox.clone(),
                rooms: Vec::new(),
            },
        );
        outbox.send(ServerFrame::Welcome {
            name: name.to_string(),
            version: VERSION,
            rooms: vec![lobby.to_string()],
            last_seq: state.log.last_seq(),
        });
        state.join(&name, lobby);
        Some(name)
    }

    /// Removes a user everywhere and tells the rooms they were in (unless the server is shutting down).
    pub fn unregister(&self, me: &Name, reason: Option<LeftReason>) {
        let mut state = self.lock();
        let Some(user) = state.users.remove(me.key()) else {
            return;
        };
        let ts = time::now_wire();
        for key in user.rooms {
            let Some(room) = state.rooms.get_mut(&key) else {
                continue;
            };
            room.members.remove(me.key());
            if let Some(reason) = reason {
                room.broadcast(Outgoing::new(ServerFrame::Left {
                    room: room.name.to_string(),
                    name: me.to_string(),
                    ts: ts.clone(),
                    reason,
                }));
            }
            state.drop_if_empty(&key);
        }
    }

    /// `say`: a message to a room the sender is in. The sender gets an `ack`, everyone else the message.
    pub fn say(&self, me: &Name, room: Option<&str>, text: &str, id: Option<String>) {
        let mut state = self.lock();
        let outbox = state.outbox(me);
        let answer = (|| {
            self.check_text(text)?;
            let room = parse_room(room.unwrap_or(natter_proto::LOBBY))?;
            let Some(r) = state
                .rooms
                .get(room.key())
                .filter(|r| r.members.contains_key(me.key()))
            else {
                return refuse(
                    ErrorCode::NotInRoom,
                    format!("you are not in #{room}; /join it first"),
                );
            };
            let room_display = r.name.to_string();
            let logged = state.append(Record {
                room: Some(&room_display),
                from: me.as_str(),
                to: None,
                text,
            })?;
            tracing::info!(
                target: "natter::chat",
                "[{}] Received message from {} in #{}: {}",
                time::local_display(logged.ts),
                me,
                room_display,
                text
            );
            let ts = time::wire(logged.ts);
            let msg = Outgoing::new(ServerFrame::Message(Message {
                seq: logged.seq,
                ts: ts.clone(),
                room: Some(room_display),
                from: me.to_string(),
                to: None,
                text: text.to_owned(),
            }));
            let r = &state.rooms[room.key()];
            for (key, member) in &r.members {
                if key != me.key() {
                    member.outbox.push(msg.clone());
                }
            }
            outbox.send(ServerFrame::Ack {
                id: id.clone(),
                seq: logged.seq,
                ts,
            });
            Ok(())
        })();
        Self::reply(&outbox, answer, id);
    }

    /// `whisper`: a private message to one user. The sender gets an `ack`; only the target sees it.
    pub fn whisper(&self, me: &Name, to: &str, text: &str, id: Option<String>) {
        let mut state = self.lock();
        let outbox = state.outbox(me);
        let answer = (|| {
            self.check_text(text)?;
            let target = Name::new(to).ok().and_then(|n| state.users.get(n.key()));
            let Some(target) = target else {
                return refuse(
                    ErrorCode::NoSuchUser,
                    format!("nobody called {to:?} is here"),
                );
            };
            let (target_name, target_outbox) = (target.name.clone(), target.outbox.clone());
            let logged = state.append(Record {
                room: None,
                from: me.as_str(),
                to: Some(target_name.as_str()),
                text,
            })?;
            tracing::info!(
                target: "natter::chat",
                "[{}] Received private message from {} to {}: {}",
                time::local_display(logged.ts),
                me,
                target_name,
                text
            );
            let ts = time::wire(logged.ts);
            if target_name != *me {
                target_outbox.push(Outgoing::new(ServerFrame::Message(Message {
                    seq: logged.seq,
                    ts: ts.clone(),
                    room: None,
                    from: me.to_string(),
                    to: Some(target_name.to_string()),
                    text: text.to_owned(),
                })));
            }
            outbox.send(ServerFrame::Ack {
                id: id.clone(),
                seq: logged.seq,
                ts,
            });
            Ok(())
        })();
        Self::reply(&outbox, answer, id);
    }

    /// `join`: enter a room, creating it if needed. Members (the joiner included) get `joined`; the joiner
    /// then gets `users`. Joining a room you are already in just sends `users`.
    pub fn join(&self, me: &Name, room: &str) {
        let mut state = self.lock();
        let outbox = state.outbox(me);
        let answer = parse_room(room).map(|room| state.join(me, room));
        Self::reply(&outbox, answer, None);
    }

    /// `leave`: members (the leaver included) get `left` with reason `leave`.
    pub fn leave(&self, me: &Name, room: &str) {
        let mut state = self.lock();
        let outbox = state.outbox(me);
        let answer = (|| {
            let room = parse_room(room)?;
            let Some(r) = state
                .rooms
                .get_mut(room.key())
                .filter(|r| r.members.contains_key(me.key()))
            else {
                return refuse(ErrorCode::NotInRoom, format!("you are not in #{room}"));
            };
            r.broadcast(Outgoing::new(ServerFrame::Left {
                room: r.name.to_string(),
                name: me.to_string(),
                ts: time::now_wire(),
                reason: LeftReason::Leave,
            }));
            r.members.remove(me.key());
            if let Some(user) = state.users.get_mut(me.key()) {
                user.rooms.retain(|k| k != room.key());
            }
            state.drop_if_empty(room.key());
            Ok(())
        })();
        Self::reply(&outbox, answer, None);
    }

    /// `who`: the members of a room, sorted. A room that does not exist has no members.
    pub fn who(&self, me: &Name, room: Option<&str>) {
        let state = self.lock();
        let outbox = state.outbox(me);
        let answer = parse_room(room.unwrap_or(natter_proto::LOBBY)).map(|room| {
            let frame = match state.rooms.get(room.key()) {
                Some(r) => r.users_frame(),
                None => ServerFrame::Users {
                    room: room.to_string(),
                    names: Vec::new(),
                },
            };
            outbox.send(frame);
        });
        Self::reply(&outbox, answer, None);
    }

    /// `rooms`: every room with its member count, alphabetically.
    pub fn rooms(&self, me: &Name) {
        let state = self.lock();
        let rooms = state
            .rooms
            .values()
            .map(|r| RoomInfo {
                name: r.name.to_string(),
                members: r.members.len(),
            })
            .collect();
        state.outbox(me).send(ServerFrame::Rooms { rooms });
    }

    /// Number of registered users (for tests and logs).
    pub fn user_count(&self) -> usize {
        self.lock().users.len()
    }

    fn check_text(&self, text: &str) -> Answer {
        natter_proto::text::validate(text, self.config.max_text)
            .map_err(|e| Refusal(ErrorCode::InvalidText, e.to_string()))
    }
}

fn parse_room(raw: &str) -> Answer<RoomName> {
    RoomName::parse_lenient(raw).map_err(|e| {
        Refusal(
            ErrorCode::InvalidRoom,
            format!("bad room name {raw:?}: {e}"),
        )
    })
}

impl State {
    /// The outbox of a registered user. Sessions only call the hub for their own, registered name.
    fn outbox(&self, me: &Name) -> Arc<Outbox> {
        match self.users.get(me.key()) {
            Some(u) => u.outbox.clone(),
            // Unreachable in practice; a closed outbox swallows the reply harmlessly.
            None => {
                let dead = Outbox::new(0);
                dead.close();
                dead
            }
        }
    }

    fn append(&mut self, record: Record<'_>) -> Answer<crate::log::Logged> {
        self.log.append(record).map_err(|e| {
            tracing::error!("{e}");
            Refusal(
                ErrorCode::ServerError,
                "the server could not store your message; try again".into(),
            )
        })
    }

    fn join(&mut self, me: &Name, room: RoomName) {
        let Some(user) = self.users.get_mut(me.key()) else {
            return;
        };
        let outbox = user.outbox.clone();
        let key = room.key().to_owned();
        let r = self.rooms.entry(key.clone()).or_insert_with(|| Room {
            name: room,
            members: HashMap::new(),
        });
        if !r.members.contains_key(me.key()) {
            user.rooms.push(key);
            r.members.insert(
                me.key().to_owned(),
                Member {
                    name: me.clone(),
                    outbox: outbox.clone(),
                },
            );
            r.broadcast(Outgoing::new(ServerFrame::Joined {
                room: r.name.to_string(),
                name: me.to_string(),
                ts: time::now_wire(),
            }));
        }
        outbox.send(r.users_frame());
    }

    fn drop_if_empty(&mut self, key: &str) {
        if key != natter_proto::LOBBY && self.rooms.get(key).is_some_and(|r| r.members.is_empty()) {
            self.rooms.remove(key);
        }
    }
}

impl Room {
    fn broadcast(&self, item: Arc<Outgoing>) {
        for member in self.members.values() {
            member.outbox.push(item.clone());
        }
    }

    fn users_frame(&self) -> ServerFrame {
        let mut names: Vec<&Name> = self.members.values().map(|m| &m.name).collect();
        names.sort_by(|a, b| a.key().cmp(b.key()));
        ServerFrame::Users {
            room: self.name.to_string(),
            names: names.into_iter().map(|n| n.to_string()).collect(),
        }
    }
}
