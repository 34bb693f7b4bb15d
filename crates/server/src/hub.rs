//! The hub: who is online, which rooms exist and who is in them — and the delivery of stored messages.
//!
//! The hub knows users by name and reaches them only through their [`Outbox`]; it never learns which
//! front end (native JSON, plain text, later IRC or WebSocket) a user came from.
//!
//! A message takes this path: the session asks the hub to [`Hub::prepare`] it (validation, membership);
//! the session hands it to the store's writer; after the commit the writer calls [`Hub::deliver`], which —
//! under the hub lock, in seq order — pushes it to every recipient and acks the sender. So every outbox
//! receives messages in seq order, and nothing is delivered or acknowledged before it is stored.
//!
//! Concurrency rule: all state sits behind one `std::sync::Mutex`, taken for the length of one request or one
//! delivered batch and never across `.await`. Every push into any outbox happens under it, which is what
//! lets a session *hold* its outbox during a replay (see `session.rs`) without missing anything.
//!
//! Membership is remembered per name (in the store) while presence is not: a user who reconnects is put
//! back in the rooms they had joined, so a resume can replay every room they are in.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use natter_proto::frame::RoomInfo;
use natter_proto::{time, ErrorCode, LeftReason, Name, RoomName, ServerFrame, VERSION};
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit};

use crate::outbox::{Outbox, Outgoing};
use crate::store::{NewMessage, Outcome, WriteCmd};

/// Limits the hub enforces on requests.
#[derive(Debug, Clone)]
pub struct HubConfig {
    /// Largest message text in bytes.
    pub max_text: usize,
}

/// Travels with a message through the store's writer and comes back with its outcome.
pub struct AppendToken {
    /// Where the ack (or error) goes.
    pub outbox: Arc<Outbox>,
    /// The sender's `id`, echoed in the ack.
    pub id: Option<String>,
    /// Fired once the ack or error has been queued, so the session can keep replies in order.
    pub done: oneshot::Sender<()>,
    /// Bounds how many messages can wait for the writer at once; released on delivery.
    pub permit: OwnedSemaphorePermit,
}

struct Member {
    name: Name,
    outbox: Arc<Outbox>,
}

struct Room {
    name: RoomName,
    /// Online members, keyed by folded name.
    members: HashMap<String, Member>,
}

struct User {
    name: Name,
    outbox: Arc<Outbox>,
}

struct State {
    users: HashMap<String, User>,
    /// Rooms with someone online, ordered so `rooms` lists them alphabetically.
    rooms: BTreeMap<String, Room>,
    /// Rooms each name has joined (online or not), in the order joined.
    memberships: HashMap<String, Vec<RoomName>>,
    /// The highest seq delivered: everything at or below it is in the store *and* in the outboxes.
    watermark: u64,
}

/// Shared by every session of a server.
pub struct Hub {
    state: Mutex<State>,
    config: HubConfig,
    writer: mpsc::UnboundedSender<WriteCmd<AppendToken>>,
}

/// A successful `hello`.
pub struct Registered {
    pub name: Name,
    /// The rooms the user is now in (lobby first).
    pub rooms: Vec<RoomName>,
    /// Replay up to here; later messages arrive live (the outbox is held until the replay is queued).
    pub watermark: u64,
}

/// Why a request was refused: becomes an `error` frame for the requester.
pub struct Refusal(pub ErrorCode, pub String);

impl Refusal {
    pub fn frame(self, id: Option<String>) -> ServerFrame {
        ServerFrame::error(self.0, self.1, id)
    }
}

type Answer<T = ()> = Result<T, Refusal>;

fn refuse<T>(code: ErrorCode, message: impl Into<String>) -> Answer<T> {
    Err(Refusal(code, message.into()))
}

fn parse_room(raw: &str) -> Answer<RoomName> {
    RoomName::parse_lenient(raw).map_err(|e| {
        Refusal(
            ErrorCode::InvalidRoom,
            format!("bad room name {raw:?}: {e}"),
        )
    })
}

impl Hub {
    pub fn new(
        config: HubConfig,
        writer: mpsc::UnboundedSender<WriteCmd<AppendToken>>,
        last_seq: u64,
        memberships: HashMap<String, Vec<RoomName>>,
    ) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(State {
                users: HashMap::new(),
                rooms: BTreeMap::new(),
                memberships,
                watermark: last_seq,
            }),
            config,
            writer,
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `hello`: takes the name, sends `welcome`, and puts the user back in their rooms (the lobby at least),
    /// each with `joined` to its members and `users` to the user. On success the outbox is left *held*.
    pub fn register(&self, raw: &str, outbox: &Arc<Outbox>) -> Answer<Registered> {
        let name = Name::new(raw).map_err(|e| Refusal(ErrorCode::InvalidName, e.to_string()))?;
        let mut state = self.lock();
        if state.users.contains_key(name.key()) {
            return refuse(ErrorCode::NameTaken, format!("the name {name} is taken"));
        }
        state.users.insert(
            name.key().to_owned(),
            User {
                name: name.clone(),
                outbox: outbox.clone(),
            },
        );
        let lobby = RoomName::lobby();
        let mut rooms = state
            .memberships
            .get(name.key())
            .cloned()
            .unwrap_or_default();
        rooms.retain(|r| *r != lobby);
        rooms.insert(0, lobby);
        state
            .memberships
            .insert(name.key().to_owned(), rooms.clone());
        outbox.send(ServerFrame::Welcome {
            name: name.to_string(),
            version: VERSION,
            rooms: rooms.iter().map(ToString::to_string).collect(),
            last_seq: state.watermark,
        });
        for room in &rooms {
            self.enter(&mut state, &name, room.clone());
        }
        outbox.hold();
        Ok(Registered {
            name,
            rooms,
            watermark: state.watermark,
        })
    }

    /// Removes a user's presence and tells the rooms they were in (unless the server is shutting down).
    /// Their memberships are kept for their return.
    pub fn unregister(&self, me: &Name, reason: Option<LeftReason>) {
        let mut state = self.lock();
        if state.users.remove(me.key()).is_none() {
            return;
        }
        let ts = time::now_wire();
        let rooms = state.memberships.get(me.key()).cloned().unwrap_or_default();
        for room in rooms {
            let Some(r) = state.rooms.get_mut(room.key()) else {
                continue;
            };
            r.members.remove(me.key());
            if let Some(reason) = reason {
                r.broadcast(Outgoing::new(ServerFrame::Left {
                    room: r.name.to_string(),
                    name: me.to_string(),
                    ts: ts.clone(),
                    reason,
                }));
            }
            state.drop_if_empty(room.key());
        }
    }

    /// Validates a `say` (room set) or `whisper` (`to` set) and builds the message to store.
    pub fn prepare(
        &self,
        me: &Name,
        room: Option<&str>,
        to: Option<&str>,
        text: &str,
        client_id: Option<String>,
    ) -> Answer<NewMessage> {
        natter_proto::text::validate(text, self.config.max_text)
            .map_err(|e| Refusal(ErrorCode::InvalidText, e.to_string()))?;
        let state = self.lock();
        let (room, to) = match to {
            Some(to) => {
                let target = Name::new(to).ok().and_then(|n| state.users.get(n.key()));
                let Some(target) = target else {
                    return refuse(
                        ErrorCode::NoSuchUser,
                        format!("nobody called {to:?} is here"),
                    );
                };
                (None, Some(target.name.clone()))
            }
            None => {
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
                (Some(r.name.clone()), None)
            }
        };
        Ok(NewMessage {
            room,
            from: me.clone(),
            to,
            text: text.to_owned(),
            client_id,
        })
    }

    /// Hands a prepared message to the store's writer.
    pub fn submit(&self, message: NewMessage, token: AppendToken) -> Result<(), AppendToken> {
        self.writer
            .send(WriteCmd::Append(message, token))
            .map_err(|e| match e.0 {
                WriteCmd::Append(_, token) => token,
                _ => unreachable!("we sent an append"),
            })
    }

    /// Called by the store's writer after each commit, with the batch's outcomes in seq order.
    pub fn deliver(&self, outcomes: Vec<Outcome<AppendToken>>) {
        let mut state = self.lock();
        for Outcome {
            message,
            token,
            result,
        } in outcomes
        {
            match result {
                Ok(stored) => {
                    if !stored.duplicate {
                        tracing::info!(
                            target: "natter::chat",
                            "[{}] Received message from {} {}: {}",
                            time::local_display_wire(&stored.ts),
                            message.from,
                            match (&message.room, &message.to) {
                                (Some(room), _) => format!("in #{room}"),
                                (None, Some(to)) => format!("to {to}"),
                                (None, None) => String::new(),
                            },
                            message.text
                        );
                        state.fan_out(&message, &stored);
                        state.watermark = state.watermark.max(stored.seq);
                    }
                    token.outbox.send(ServerFrame::Ack {
                        id: token.id,
                        seq: stored.seq,
                        ts: stored.ts,
                    });
                }
                Err(e) => {
                    token.outbox.send(ServerFrame::error(
                        ErrorCode::ServerError,
                        format!("the server could not store your message ({e}); it was not sent"),
                        token.id,
                    ));
                }
            }
            let _ = token.done.send(());
        }
    }

    /// `join`: enter a room, creating it if needed. Members (the joiner included) get `joined`; the joiner
    /// then gets `users`. Returns the room and the replay watermark if the user was not in it before —
    /// then the outbox is left held for the replay. Joining a room you are in just sends `users`.
    pub fn join(&self, me: &Name, room: &str) -> Answer<Option<(RoomName, u64)>> {
        let room = parse_room(room)?;
        let mut state = self.lock();
        let Some(outbox) = state.users.get(me.key()).map(|u| u.outbox.clone()) else {
            return Ok(None);
        };
        let list = state.memberships.entry(me.key().to_owned()).or_default();
        if list.contains(&room) {
            if let Some(r) = state.rooms.get(room.key()) {
                outbox.send(r.users_frame());
            }
            return Ok(None);
        }
        list.push(room.clone());
        let _ = self.writer.send(WriteCmd::Join {
            name: me.key().to_owned(),
            room: room.clone(),
        });
        let display = self.enter(&mut state, me, room);
        outbox.hold();
        Ok(Some((display, state.watermark)))
    }

    /// Puts an online user into a room's member list and announces it. Returns the room's display name.
    fn enter(&self, state: &mut State, me: &Name, room: RoomName) -> RoomName {
        let Some(outbox) = state.users.get(me.key()).map(|u| u.outbox.clone()) else {
            return room;
        };
        let r = state
            .rooms
            .entry(room.key().to_owned())
            .or_insert_with(|| Room {
                name: room,
                members: HashMap::new(),
            });
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
        outbox.send(r.users_frame());
        r.name.clone()
    }

    /// `leave`: members (the leaver included) get `left` with reason `leave`; the membership is forgotten.
    pub fn leave(&self, me: &Name, room: &str) -> Answer {
        let room = parse_room(room)?;
        let mut state = self.lock();
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
        if let Some(list) = state.memberships.get_mut(me.key()) {
            list.retain(|r| *r != room);
        }
        let _ = self.writer.send(WriteCmd::Leave {
            name: me.key().to_owned(),
            room: room.key().to_owned(),
        });
        state.drop_if_empty(room.key());
        Ok(())
    }

    /// Whether `me` is in `room` (for history paging).
    pub fn is_member(&self, me: &Name, room: &RoomName) -> bool {
        self.lock()
            .memberships
            .get(me.key())
            .is_some_and(|rooms| rooms.contains(room))
    }

    /// `who`: the members of a room, sorted. A room nobody is in has no members.
    pub fn who(&self, room: Option<&str>) -> Answer<ServerFrame> {
        let room = parse_room(room.unwrap_or(natter_proto::LOBBY))?;
        let state = self.lock();
        Ok(match state.rooms.get(room.key()) {
            Some(r) => r.users_frame(),
            None => ServerFrame::Users {
                room: room.to_string(),
                names: Vec::new(),
            },
        })
    }

    /// `rooms`: every room with someone online, alphabetically.
    pub fn rooms(&self) -> ServerFrame {
        let state = self.lock();
        let rooms = state
            .rooms
            .values()
            .map(|r| RoomInfo {
                name: r.name.to_string(),
                members: r.members.len(),
            })
            .collect();
        ServerFrame::Rooms { rooms }
    }

    /// Asks the writer to finish and stop (after the last session has ended).
    pub fn stop_writer(&self) {
        let _ = self.writer.send(WriteCmd::Stop);
    }
}

impl State {
    /// Pushes a stored message to its recipients: a room's other members, or a whisper's target.
    fn fan_out(&self, message: &NewMessage, stored: &crate::store::Stored) {
        let item = Outgoing::new(ServerFrame::Message(message.to_message(stored)));
        match (&message.room, &message.to) {
            (Some(room), _) => {
                if let Some(r) = self.rooms.get(room.key()) {
                    for (key, member) in &r.members {
                        if key != message.from.key() {
                            member.outbox.push(item.clone());
                        }
                    }
                }
            }
            (None, Some(to)) if *to != message.from => {
                if let Some(user) = self.users.get(to.key()) {
                    user.outbox.push(item);
                }
            }
            _ => {}
        }
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
