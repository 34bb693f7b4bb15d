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

use crate::hub::{room_args, Who};

use super::Session;
use crate::store::{Account, Scope, StoreError};

/// Most messages a resume replays per history read.
const RESUME_CHUNK: usize = 500;

/// Largest `limit` a history page may ask for.
pub const MAX_HISTORY_PAGE: usize = 500;

/// What a `hello` asks for, kept while its challenge is out.
pub(super) struct Hello {
    pub name: String,
    pub resume_after: Option<u64>,
    pub lobby: bool,
    /// `false`: do not enter the rooms remembered for the name.
    pub rooms: bool,
    pub password: Option<String>,
}

/// A `hello` with a key, waiting for the `prove` that answers its challenge.
pub(super) struct PendingHello {
    hello: Hello,
    key: VerifyingKey,
    nonce: String,
}

/// How a `hello` that proved itself gets its name.
enum Proven {
    /// The name's owner (by key or password).
    Owner(Account),
    /// Nobody owns the name: this key, or this password (its hash), claims it once the name is
    /// reserved.
    ClaimByKey([u8; 32]),
    ClaimByPassword(String),
}

impl Session {
    /// `hello`: with a key, answer with a challenge (registration waits for `prove`); with a password,
    /// sign in as the name's owner; with neither, register as a guest — unless the name is owned.
    pub(super) async fn hello(&mut self, hello: Hello, version: u32, key: Option<String>) {
        if version != natter_proto::VERSION {
            let args =
                natter_proto::error_args!(supported = natter_proto::VERSION, version = version);
            self.error(ErrorCode::UnsupportedVersion, args, None);
            return;
        }
        if hello.password.is_some() && !self.passwords_may_cross() {
            return self.error(ErrorCode::Insecure, natter_proto::error_args!(), None);
        }
        match (key, &hello.password) {
            (None, None) => self.register(hello, None).await,
            (None, Some(_)) => self.password_login(hello, None).await,
            (Some(key), _) => {
                let Some(key) = auth::parse_key(&key) else {
                    return self.error(ErrorCode::BadProof, natter_proto::error_args!(), None);
                };
                let mut nonce = [0u8; auth::NONCE_BYTES];
                OsRng.fill_bytes(&mut nonce);
                let nonce = auth::encode(&nonce);
                self.outbox.send(ServerFrame::Challenge {
                    nonce: nonce.clone(),
                });
                self.pending = Some(Box::new(super::Aside::Prove(PendingHello {
                    hello,
                    key,
                    nonce,
                })));
            }
        }
    }

    /// Whether a password may be read from this connection: TLS, or from this machine.
    fn passwords_may_cross(&self) -> bool {
        self.secure || super::is_this_machine(&self.peer, &self.shared.config())
    }

    /// `prove`: the signature of the pending challenge. A key bound to the name, a name nobody owns
    /// (which this key then claims), or the name's password sent with the `hello` (which adds this key to
    /// the name's keys) registers the session as the name's owner.
    pub(super) async fn prove(&mut self, signature: &str) {
        let Some(super::Aside::Prove(PendingHello { hello, key, nonce })) =
            self.pending.take().map(|p| *p)
        else {
            return self.error(ErrorCode::BadProof, natter_proto::error_args!(), None);
        };
        if !auth::verify(&key, &nonce, &hello.name, signature) {
            return self.error(ErrorCode::BadProof, natter_proto::error_args!(), None);
        }
        let name = match Name::new(&hello.name) {
            Ok(name) => name,
            Err(e) => return self.error(ErrorCode::InvalidName, e.args(), None),
        };
        let key = key.to_bytes();
        match self.shared.hub.account(&name).await {
            Ok(Some(account)) if account.keys.contains(&key) => {
                self.register(hello, Some(Proven::Owner(account))).await
            }
            Ok(Some(_)) if hello.password.is_some() => self.password_login(hello, Some(key)).await,
            Ok(Some(account)) => {
                let args = natter_proto::error_args!(name = account.name.to_string());
                self.error(ErrorCode::NameOwned, args, None)
            }
            Ok(None) => self.register(hello, Some(Proven::ClaimByKey(key))).await,
            Err(e) => {
                tracing::error!("{}: cannot look up {name}: {e}", self.peer);
                let args = natter_proto::error_args!(what = "rooms");
                self.error(ErrorCode::ServerError, args, None)
            }
        }
    }

    /// A `hello` with the name's password (and, if `key`, the key to add to the name's keys). A name
    /// nobody owns is claimed with the password. Wrong guesses are throttled (see [`crate::passwords`]).
    async fn password_login(&mut self, mut hello: Hello, key: Option<[u8; 32]>) {
        let name = match Name::new(&hello.name) {
            Ok(name) => name,
            Err(e) => return self.error(ErrorCode::InvalidName, e.args(), None),
        };
        let password = hello.password.take().unwrap_or_default();
        let passwords = &self.shared.passwords;
        let ip = self.peer.ip();
        if let Err(wait) = passwords.check(name.key(), ip, std::time::Instant::now()) {
            let args =
                natter_proto::error_args!(what = "passwords", try_again_in = wait.as_secs().max(1));
            return self.error(ErrorCode::TryAgainLater, args, None);
        }
        let account = match self.shared.hub.account(&name).await {
            Ok(account) => account,
            Err(_) => {
                let args = natter_proto::error_args!(what = "rooms");
                return self.error(ErrorCode::ServerError, args, None);
            }
        };
        let Some(account) = account else {
            if self.refused_as_weak(&password) {
                return;
            }
            let Some(hash) = passwords.hash(password).await else {
                let args = natter_proto::error_args!(what = "other");
                return self.error(ErrorCode::ServerError, args, None);
            };
            return self
                .register(hello, Some(Proven::ClaimByPassword(hash)))
                .await;
        };
        let right = match account.password.clone() {
            Some(hash) => passwords.verify(password, hash).await,
            None => false,
        };
        if !right {
            let wait = passwords.failed(name.key(), ip, std::time::Instant::now());
            tracing::info!("{}: wrong password for {name}", self.peer);
            let args = natter_proto::error_args!(try_again_in = wait.as_secs());
            return self.error(ErrorCode::BadPassword, args, None);
        }
        passwords.succeeded(name.key(), ip);
        if account.password_once {
            self.shared.hub.used_once(&name);
        }
        if let Some(key) = key {
            self.shared.hub.add_key(&name, key);
        }
        self.register(hello, Some(Proven::Owner(account))).await;
    }

    /// `set_password`: set or change the password of your name. A guest whose name nobody owns comes to
    /// own it (with the password as its only proof until a key is added).
    pub(super) async fn set_password(&mut self, password: String) {
        let Some(me) = self.me.as_ref().map(|r| r.name().clone()) else {
            let args = natter_proto::error_args!();
            return self.error(ErrorCode::NotRegistered, args, None);
        };
        if !self.passwords_may_cross() {
            return self.error(ErrorCode::Insecure, natter_proto::error_args!(), None);
        }
        if self.refused_as_weak(&password) {
            return;
        }
        let Some(hash) = self.shared.passwords.hash(password).await else {
            let args = natter_proto::error_args!(what = "other");
            return self.error(ErrorCode::ServerError, args, None);
        };
        let owner = self.owned_since().is_some();
        match self.shared.hub.set_password(&me, hash, !owner).await {
            Ok(Some(account)) => {
                if !owner {
                    if let Some(registration) = self.me.as_mut() {
                        self.shared.hub.promote(registration, &account);
                    }
                }
                tracing::info!("{}: {me} set a password", self.peer);
                self.outbox.send(ServerFrame::PasswordSet);
            }
            Ok(None) => {
                let args = natter_proto::error_args!(name = me.to_string());
                self.error(ErrorCode::NameOwned, args, None)
            }
            Err(_) => {
                let args = natter_proto::error_args!(what = "other");
                self.error(ErrorCode::ServerError, args, None)
            }
        }
    }

    /// Registers (as the proven owner, or a guest), then replays — the recent history of each room and,
    /// for an owner, of private messages with everything that came while they were away; or with
    /// `resume_after` every message missed since — and only then lets live traffic through.
    async fn register(&mut self, hello: Hello, proven: Option<Proven>) {
        let Hello {
            name,
            resume_after,
            lobby,
            rooms,
            ..
        } = hello;
        let hub = self.shared.hub.clone();
        let who = match &proven {
            None => Who::Guest,
            Some(Proven::Owner(_)) => Who::Owner,
            Some(_) => Who::Claiming,
        };
        // Cluster mode: the name must be free on every node, not only here.
        // (A name that is not one is refused by the hub, below.)
        let valid = natter_proto::Name::new(&name).ok();
        let presence = self.shared.presence.clone().zip(valid);
        if let Some((presence, valid)) = &presence {
            if let Err(refusal) = hub.check_banned(valid) {
                self.outbox.send(refusal.frame(None));
                return;
            }
            match presence.claim(valid).await {
                Ok(true) => {}
                Ok(false) => {
                    let args = natter_proto::error_args!(name = name.to_string());
                    return self.error(ErrorCode::NameTaken, args, None);
                }
                Err(e) => {
                    tracing::warn!("{}: cannot check {name} in the cluster: {e}", self.peer);
                    let args = natter_proto::error_args!(what = "other");
                    return self.error(ErrorCode::ServerError, args, None);
                }
            }
        }
        let registration = match hub.reserve(&name, &self.outbox, who) {
            Ok(r) => r,
            Err(refusal) => {
                if let Some((presence, valid)) = &presence {
                    presence.release(valid);
                }
                self.outbox.send(refusal.frame(None));
                return;
            }
        };
        let me = registration.name().clone();
        self.me = Some(registration);
        self.registered = true;
        if matches!(
            proven,
            Some(Proven::ClaimByKey(_) | Proven::ClaimByPassword(_))
        ) {
            let now = std::time::Instant::now();
            if let Err(wait) = self.shared.passwords.claim(self.peer.ip(), now) {
                self.leave(None);
                self.outbox.release(0, None);
                let args = natter_proto::error_args!(
                    what = "claims",
                    try_again_in = wait.as_secs().max(1)
                );
                return self.error(ErrorCode::TryAgainLater, args, None);
            }
        }
        let claimed = match proven {
            None => None,
            Some(Proven::Owner(account)) => Some(Ok(Some(account))),
            Some(Proven::ClaimByKey(key)) => Some(hub.claim(&me, key).await),
            Some(Proven::ClaimByPassword(hash)) => Some(hub.set_password(&me, hash, true).await),
        };
        let account = match claimed {
            None => None,
            Some(Ok(Some(account))) => Some(account),
            Some(claimed) => {
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
        };
        let remembered = match hub.remembered_rooms(&me).await {
            Ok(remembered) if rooms => remembered,
            Ok(_) => Vec::new(),
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
        let since = account.as_ref().map(|a| a.since);
        if let (Some(since), Some(registration)) = (since, self.me.as_mut()) {
            registration.set_since(since);
        }
        let registered = hub.seat(&me, &self.outbox, remembered, lobby);
        let owner = account.is_some();
        if let (false, Some(registration)) = (owner, self.me.as_mut()) {
            registration.set_since(registered.watermark);
        }
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
                match &account {
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
        let seen = account.pm_seen.max(since);
        let mut cursor = seen;
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
            self.replay_history_new(None, Ok(page), Some(seen)).await;
        }
        self.replay_history_new(None, tail, Some(seen)).await;
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
        let limit = self.shared.config().replay;
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
        self.replay_history_new(room, messages, None).await
    }

    /// [`Session::replay_history`], marking what is newer than `new_after` as new.
    async fn replay_history_new(
        &self,
        room: Option<String>,
        messages: Result<Vec<Message>, StoreError>,
        new_after: Option<u64>,
    ) {
        if let (Some(m), Ok(messages)) = (crate::metrics::counting(), &messages) {
            m.replay_messages.observe(messages.len() as f64);
        }
        let frame = history_frame(messages, room, new_after, (None, None));
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
                    .push_paced(ServerFrame::Message(Box::new(message)), self.stall())
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

    /// `history`: a page of a room you are in, of your private messages, or of those with one person.
    pub(super) async fn history_page(&self, me: &Name, ask: natter_proto::ClientFrame) {
        let natter_proto::ClientFrame::History {
            room,
            before,
            limit,
            after,
            with,
            newest,
            id,
            after_ts,
            before_ts,
        } = ask
        else {
            return;
        };
        let scope = match (&room, &with) {
            (Some(raw), _) => match RoomName::parse_lenient(raw) {
                Ok(room) if self.shared.hub.is_member(me, &room) => {
                    Scope::Room(room.key().to_owned())
                }
                Ok(room) => {
                    return self.error(
                        ErrorCode::NotInRoom,
                        natter_proto::error_args!(room = format!("#{room}")),
                        id,
                    )
                }
                Err(e) => return self.error(ErrorCode::InvalidRoom, room_args(raw, &e), id),
            },
            (None, Some(other)) => match Name::new(other) {
                Ok(other) => Scope::Between(me.key().to_owned(), other.key().to_owned()),
                Err(e) => return self.error(ErrorCode::InvalidName, e.args(), id),
            },
            (None, None) => Scope::Private(me.key().to_owned()),
        };
        let limit = limit
            .unwrap_or(self.shared.config().replay.max(1))
            .min(MAX_HISTORY_PAGE);
        // Private history starts when the name became this user's (an owner) or when they signed in (a
        // guest: what came before may have been another guest's).
        let since = match scope {
            Scope::Room(_) => 0,
            _ => self.me.as_ref().map_or(u64::MAX, |r| r.private_since()),
        };
        // Times are positions in the log: the first message at or after a time.
        let ms = |ts: &Option<String>| {
            ts.as_deref()
                .and_then(natter_proto::time::parse)
                .map(|t| t.as_millisecond())
        };
        let mut after = after;
        let mut before = before;
        for (ts, is_after) in [(ms(&after_ts), true), (ms(&before_ts), false)] {
            let Some(ms) = ts else { continue };
            let at = self
                .shared
                .history
                .seq_at(if is_after { ms + 1 } else { ms });
            let Ok(seq) = at.await else { continue };
            if is_after {
                after = Some(after.unwrap_or(0).max(seq.saturating_sub(1)));
            } else {
                before = Some(before.unwrap_or(u64::MAX).min(seq));
            }
        }
        let newest = newest.unwrap_or(before.is_some() || after.is_none());
        let after = after.unwrap_or(0).max(since);
        let before = before.unwrap_or(u64::MAX);
        let page = self
            .shared
            .history
            .range(scope, after, before, limit, newest)
            .await;
        let frame = history_frame(page, room, None, (with, id));
        self.outbox.push_paced(frame, self.stall()).await;
    }

    /// `conversations`: the user's rooms and private conversations with activity between two times.
    pub(super) async fn conversations(&self, me: &Name, ask: natter_proto::ClientFrame) {
        let natter_proto::ClientFrame::Conversations {
            after_ts,
            before_ts,
            limit,
            id,
        } = ask
        else {
            return;
        };
        let ms = |ts: Option<String>, default: i64| {
            ts.as_deref()
                .and_then(natter_proto::time::parse)
                .map_or(default, |t| t.as_millisecond())
        };
        let span = (ms(after_ts, i64::MIN), ms(before_ts, i64::MAX));
        let rooms = self
            .shared
            .hub
            .user(me.as_str())
            .map(|u| u.1)
            .unwrap_or_default();
        let rooms = rooms.iter().map(|r| r.key().to_owned()).collect();
        let since = self.me.as_ref().map_or(u64::MAX, |r| r.private_since());
        let limit = limit.unwrap_or(50).min(MAX_HISTORY_PAGE);
        let found = self
            .shared
            .history
            .conversations(me.key().to_owned(), rooms, span, since, limit)
            .await;
        let frame = match found {
            Ok(found) => ServerFrame::Conversations {
                conversations: found
                    .into_iter()
                    .map(|c| natter_proto::frame::ConversationInfo {
                        room: c.room,
                        with: c.with,
                        ts: natter_proto::time::wire_ms(c.latest_ms),
                    })
                    .collect(),
                id,
            },
            Err(e) => {
                tracing::error!("history read failed: {e}");
                let args = natter_proto::error_args!(what = "history");
                ServerFrame::error(ErrorCode::ServerError, args, id)
            }
        };
        self.outbox.send(frame);
    }

    /// Whether a new password is too short or too long for this server — if so, the user is told.
    fn refused_as_weak(&self, password: &str) -> bool {
        let min = self.shared.config().password_min_chars;
        match crate::passwords::acceptable(password, min) {
            Ok(()) => false,
            Err(weak) => {
                self.error(ErrorCode::WeakPassword, weak_args(weak, min), None);
                true
            }
        }
    }

    /// For an owner, when they came to own their name; `None` for a guest.
    fn owned_since(&self) -> Option<u64> {
        self.me.as_ref().and_then(|r| r.owned_since())
    }
}

/// A `history` frame of what a read found, or the `server_error` that says it failed. `(with, id)`: as
/// the request gave them.
fn history_frame(
    messages: Result<Vec<Message>, StoreError>,
    room: Option<String>,
    new_after: Option<u64>,
    (with, id): (Option<String>, Option<String>),
) -> ServerFrame {
    match messages {
        Ok(messages) => ServerFrame::History {
            room,
            messages,
            new_after,
            with,
            id,
        },
        Err(e) => {
            tracing::error!("history read failed: {e}");
            let args = natter_proto::error_args!(what = "history");
            ServerFrame::error(ErrorCode::ServerError, args, id)
        }
    }
}

/// The args of `weak_password`.
fn weak_args(weak: crate::passwords::Weak, min: usize) -> natter_proto::frame::ErrorArgs {
    use crate::passwords::{Weak, MAX_BYTES};
    match weak {
        Weak::TooShort => natter_proto::error_args!(reason = "too_short", min = min),
        Weak::TooLong => natter_proto::error_args!(reason = "too_long", max = MAX_BYTES),
    }
}
