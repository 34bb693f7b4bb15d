//! Replays: what a session sends from history — on `hello` (the recent messages of each room and of private
//! messages, or with `resume_after` everything missed), on `join`, and on `history` requests.
//!
//! Replays are read while the outbox is *held* (rule 5 in ARCHITECTURE.md) and queued with
//! [`Outbox::push_paced`](crate::outbox::Outbox::push_paced), which waits for the client to read rather
//! than overflowing its outbox.

use natter_proto::auth;
use natter_proto::auth::VerifyingKey;
use natter_proto::frame::Message;
use natter_proto::{ErrorCode, Name, RoomName, ServerFrame};
use rand_core::{OsRng, RngCore};

use crate::hub::room_args;

use super::Session;
use crate::store::{Account, Scope, StoreError};

/// Most messages a resume replays per history read.
const RESUME_CHUNK: usize = 500;

/// Largest `limit` a history page may ask for.
pub const MAX_HISTORY_PAGE: usize = 500;

/// A `hello` with a key, waiting for the `prove` that answers its challenge.
pub(super) struct PendingHello {
    name: String,
    key: VerifyingKey,
    nonce: String,
    resume_after: Option<u64>,
    lobby: bool,
}

/// What a proven `hello` brings to registration.
struct Proven {
    key: [u8; 32],
    /// The name's account; `None`: nobody owned the name yet, and the key claims it once the name is
    /// reserved.
    account: Option<Account>,
}

impl Session {
    /// `hello`: with a key, answer with a challenge (registration waits for `prove`); without one, register
    /// as a guest — unless the name is owned.
    pub(super) async fn hello(
        &mut self,
        name: &str,
        version: u32,
        resume_after: Option<u64>,
        lobby: bool,
        key: Option<String>,
    ) {
        if version != natter_proto::VERSION {
            let args =
                natter_proto::error_args!(supported = natter_proto::VERSION, version = version);
            self.error(ErrorCode::UnsupportedVersion, args, None);
            return;
        }
        let Some(key) = key else {
            return self.register(name, resume_after, lobby, None).await;
        };
        let Some(key) = auth::parse_key(&key) else {
            return self.error(ErrorCode::BadProof, natter_proto::error_args!(), None);
        };
        let mut nonce = [0u8; auth::NONCE_BYTES];
        OsRng.fill_bytes(&mut nonce);
        let nonce = auth::encode(&nonce);
        self.outbox.send(ServerFrame::Challenge {
            nonce: nonce.clone(),
        });
        self.pending = Some(Box::new(PendingHello {
            name: name.to_owned(),
            key,
            nonce,
            resume_after,
            lobby,
        }));
    }

    /// `prove`: the signature of the pending challenge. A key bound to the name, or a name nobody owns
    /// (which this key then claims), registers the session as the name's owner.
    pub(super) async fn prove(&mut self, signature: &str) {
        let Some(p) = self.pending.take() else {
            return self.error(ErrorCode::BadProof, natter_proto::error_args!(), None);
        };
        if !auth::verify(&p.key, &p.nonce, &p.name, signature) {
            return self.error(ErrorCode::BadProof, natter_proto::error_args!(), None);
        }
        let name = match Name::new(&p.name) {
            Ok(name) => name,
            Err(e) => return self.error(ErrorCode::InvalidName, e.args(), None),
        };
        let key = p.key.to_bytes();
        let proven = match self.shared.hub.account(&name).await {
            Ok(Some(account)) if account.keys.contains(&key) => Proven {
                key,
                account: Some(account),
            },
            Ok(Some(account)) => {
                let args = natter_proto::error_args!(name = account.name.to_string());
                return self.error(ErrorCode::NameOwned, args, None);
            }
            Ok(None) => Proven { key, account: None },
            Err(e) => {
                tracing::error!("{}: cannot look up {name}: {e}", self.peer);
                return self.error(
                    ErrorCode::ServerError,
                    natter_proto::error_args!(what = "rooms"),
                    None,
                );
            }
        };
        self.register(&p.name, p.resume_after, p.lobby, Some(proven))
            .await;
    }

    /// Registers (as the proven owner, or a guest), then replays — the recent history of each room and,
    /// for an owner, of private messages with everything that came while they were away; or with
    /// `resume_after` every message missed since — and only then lets live traffic through.
    async fn register(
        &mut self,
        name: &str,
        resume_after: Option<u64>,
        lobby: bool,
        mut proven: Option<Proven>,
    ) {
        let hub = self.shared.hub.clone();
        let registration = match hub.reserve(name, &self.outbox, proven.is_some()) {
            Ok(r) => r,
            Err(refusal) => {
                self.outbox.send(refusal.frame(None));
                return;
            }
        };
        let me = registration.name().clone();
        self.me = Some(registration);
        if let Some(p) = proven.as_mut().filter(|p| p.account.is_none()) {
            match hub.claim(&me, p.key).await {
                Ok(Some(account)) => {
                    tracing::info!("{}: {me} is now owned", self.peer);
                    p.account = Some(account);
                }
                claimed => {
                    // Someone else claimed it a moment ago (or the store is gone).
                    self.leave(None);
                    self.outbox.release(0, None);
                    let (code, args) = match claimed {
                        Ok(_) => (
                            ErrorCode::NameOwned,
                            natter_proto::error_args!(name = me.to_string()),
                        ),
                        Err(_) => (
                            ErrorCode::ServerError,
                            natter_proto::error_args!(what = "rooms"),
                        ),
                    };
                    return self.error(code, args, None);
                }
            }
        }
        let remembered = match hub.remembered_rooms(&me).await {
            Ok(rooms) => rooms,
            Err(e) => {
                tracing::error!("{}: cannot register {me}: {e}", self.peer);
                self.leave(None);
                self.outbox.release(0, None);
                self.error(
                    ErrorCode::ServerError,
                    natter_proto::error_args!(what = "rooms"),
                    None,
                );
                return;
            }
        };
        let since = proven
            .as_ref()
            .and_then(|p| p.account.as_ref())
            .map(|a| a.since);
        if let (Some(since), Some(registration)) = (since, self.me.as_mut()) {
            registration.set_since(since);
        }
        let registered = hub.seat(&me, &self.outbox, remembered, lobby);
        let owner = proven.is_some();
        tracing::info!(
            "{} is now {me}{}",
            self.peer,
            if owner { " (owner)" } else { " (guest)" }
        );
        match resume_after {
            Some(after) => {
                self.resume(&me, &registered.rooms, since, after, registered.watermark)
                    .await
            }
            None => {
                for room in &registered.rooms {
                    let tail = self
                        .tail(Scope::Room(room.key().to_owned()), registered.watermark)
                        .await;
                    self.replay_history(Some(room.to_string()), tail).await;
                }
                // A guest's name may have been someone else's before: no private history for guests
                // (the frame still comes, empty, so the replay ends as it always has).
                match proven.as_ref().and_then(|p| p.account.as_ref()) {
                    Some(account) => {
                        self.private_replay(&me, account, registered.watermark)
                            .await
                    }
                    None => self.replay_history(None, Ok(Vec::new())).await,
                }
            }
        }
        self.outbox.release(registered.watermark, None);
    }

    /// An owner's private messages: everything that arrived since their sessions were last sent it
    /// (`pm_seen`), in pages, then the recent conversation (the last `--replay`), all as `history` frames
    /// without `room`, oldest first — never anything from before they owned the name (`since`).
    async fn private_replay(&self, me: &Name, account: &Account, watermark: u64) {
        let since = account.since;
        let tail = self
            .tail(Scope::Private(me.key().to_owned()), watermark)
            .await
            .map(|mut messages| {
                messages.retain(|m| m.seq > since);
                messages
            });
        let tail_start = match &tail {
            Ok(messages) => messages.first().map_or(watermark + 1, |m| m.seq),
            Err(_) => watermark + 1,
        };
        let mut cursor = account.pm_seen.max(since);
        while cursor + 1 < tail_start {
            let page = self
                .shared
                .history
                .missed(
                    me.key().to_owned(),
                    Vec::new(),
                    true,
                    cursor,
                    tail_start - 1,
                    RESUME_CHUNK,
                )
                .await;
            let Ok(page) = page else { break };
            let Some(last) = page.last().map(|m| m.seq) else {
                break;
            };
            cursor = last;
            self.replay_history(None, Ok(page)).await;
        }
        self.replay_history(None, tail).await;
    }

    /// After a `join` that put us in `room`: its recent history up to `watermark`, then the held live
    /// traffic of the room (what the replay covered is dropped from it).
    pub(super) async fn joined(&self, room: &RoomName, watermark: u64) {
        let tail = self
            .tail(Scope::Room(room.key().to_owned()), watermark)
            .await;
        self.replay_history(Some(room.to_string()), tail).await;
        self.outbox.release(watermark, Some(&room.to_string()));
    }

    /// The last `replay` messages of a scope at or below the watermark.
    async fn tail(&self, scope: Scope, watermark: u64) -> Result<Vec<Message>, StoreError> {
        let limit = self.shared.config.replay;
        if limit == 0 {
            return Ok(Vec::new());
        }
        self.shared
            .history
            .page(scope, watermark.saturating_add(1), limit)
            .await
    }

    async fn replay_history(
        &self,
        room: Option<String>,
        messages: Result<Vec<Message>, StoreError>,
    ) {
        let frame = match messages {
            Ok(messages) => ServerFrame::History { room, messages },
            Err(e) => {
                tracing::error!("history read failed: {e}");
                ServerFrame::error(
                    ErrorCode::ServerError,
                    natter_proto::error_args!(what = "history"),
                    None,
                )
            }
        };
        self.outbox.push_paced(frame, self.stall()).await;
    }

    /// Replays, in seq order, every message after `after` (up to the watermark) that `me` may see: in
    /// their rooms and, for an owner (`since`: when they came to own the name), their private messages.
    async fn resume(
        &self,
        me: &Name,
        rooms: &[RoomName],
        since: Option<u64>,
        after: u64,
        watermark: u64,
    ) {
        let history = &self.shared.history;
        match history.oldest_seq().await {
            Ok(oldest) => {
                let oldest = oldest.unwrap_or(watermark + 1);
                if after.saturating_add(1) < oldest && after < watermark {
                    self.outbox
                        .push_paced(ServerFrame::history_gap(oldest, after), self.stall())
                        .await;
                }
            }
            Err(e) => tracing::error!("history read failed: {e}"),
        }
        let keys: Vec<String> = rooms.iter().map(|r| r.key().to_owned()).collect();
        let mut cursor = after;
        while cursor < watermark {
            let chunk = history
                .missed(
                    me.key().to_owned(),
                    keys.clone(),
                    since.is_some(),
                    cursor,
                    watermark,
                    RESUME_CHUNK,
                )
                .await;
            let chunk = match chunk {
                Ok(chunk) => chunk,
                Err(e) => {
                    tracing::error!("resume read failed: {e}");
                    self.outbox
                        .push_paced(
                            ServerFrame::error(
                                ErrorCode::ServerError,
                                natter_proto::error_args!(what = "history"),
                                None,
                            ),
                            self.stall(),
                        )
                        .await;
                    return;
                }
            };
            let full = chunk.len() == RESUME_CHUNK;
            for message in chunk {
                cursor = message.seq;
                if message.room.is_none() && since.is_some_and(|since| message.seq <= since) {
                    continue; // a guest's, from before the name was owned
                }
                if !self
                    .outbox
                    .push_paced(ServerFrame::Message(message), self.stall())
                    .await
                {
                    return;
                }
            }
            if !full {
                break;
            }
        }
    }

    /// `history`: one page of older messages from a room you are in, or of your private messages.
    pub(super) async fn history_page(
        &self,
        me: &Name,
        room: Option<String>,
        before: Option<u64>,
        limit: Option<usize>,
    ) {
        let scope = match &room {
            Some(raw) => match RoomName::parse_lenient(raw) {
                Ok(room) if self.shared.hub.is_member(me, &room) => {
                    Scope::Room(room.key().to_owned())
                }
                Ok(room) => {
                    return self.error(
                        ErrorCode::NotInRoom,
                        natter_proto::error_args!(room = format!("#{room}")),
                        None,
                    )
                }
                Err(e) => return self.error(ErrorCode::InvalidRoom, room_args(raw, &e), None),
            },
            // A guest's name may have been someone else's before: their private history is not theirs.
            None if self.owned_since().is_none() => {
                let empty = ServerFrame::History {
                    room: None,
                    messages: Vec::new(),
                };
                self.outbox.send(empty);
                return;
            }
            None => Scope::Private(me.key().to_owned()),
        };
        let before = before.unwrap_or(u64::MAX);
        let limit = limit
            .unwrap_or(self.shared.config.replay.max(1))
            .min(MAX_HISTORY_PAGE);
        let since = match scope {
            Scope::Private(_) => self.owned_since().unwrap_or(u64::MAX),
            Scope::Room(_) => 0,
        };
        let page = self.shared.history.page(scope, before, limit).await;
        let page = page.map(|mut messages| {
            messages.retain(|m| m.seq > since);
            messages
        });
        self.replay_history(room, page).await;
    }

    /// For an owner, when they came to own their name; `None` for a guest.
    fn owned_since(&self) -> Option<u64> {
        self.me.as_ref().and_then(|r| r.owned_since())
    }
}
