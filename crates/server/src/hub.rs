//! The hub: who is online, which rooms exist and who is in them — and the delivery of stored messages.
//!
//! The hub knows users by name and reaches them only through their [`Outbox`]; it never learns which
//! front end (native JSON, plain text, later IRC or WebSocket) a user came from.
//!
//! A message takes this path (a [`Hub::signal`], which is never stored, is the one exception): the session
//! asks the hub to [`Hub::prepare`] it (validation, membership);
//! the session hands it to the store's writer; after the commit the writer calls [`Hub::deliver`], which —
//! in seq order — pushes it to every recipient and acks the sender. So every outbox receives messages in
//! seq order, and nothing is delivered or acknowledged before it is stored.
//!
//! Locks, always taken in this order and never across `.await`:
//! 1. `registry` — names online and the rooms each is in (hello, join, leave, whispers), the owned names,
//!    blocks, bans and admins;
//! 2. `rooms` — a read/write lock on the room table: written only to create or drop a room;
//! 3. one lock per room — its member list;
//! 4. one lock per outbox.
//!
//! `rules` (every room's owner, operators, bans, mutes, topic) is a leaf: taken after any of these, and
//! nothing is locked while it is held.
//!
//! A room message is fanned out under the room table's *read* lock and that room's own lock, so messages
//! to different rooms, and requests that touch no room, do not wait for each other; no global lock is on
//! the fan-out path. The *watermark* (the highest seq delivered) is advanced under the same lock as the
//! push, which gives the replay rule: a session that holds its outbox, then enters a room (under that
//! room's lock), then reads the watermark W, finds every later message of the room in its held outbox and
//! every earlier one in the store — so it replays up to W from the store and drops held messages ≤ W.
//!
//! Membership is remembered per name in the store, not here: the hub holds the rooms of users *online*
//! only, so its memory follows who is connected, not every name ever used. A `hello` reserves the name
//! ([`Hub::reserve`]), asks the store's writer for the rooms the name had joined ([`Hub::remembered_rooms`],
//! queued behind any join or leave of the name's previous session, so never stale), and then takes its
//! seats ([`Hub::seat`]); a resume can then replay every room the user is in.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

use natter_proto::frame::{ErrorArgs, RoomInfo};
use natter_proto::{time, ErrorCode, LeftReason, Name, RoomName, ServerFrame, VERSION};
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit};

use crate::moderation::{Action, RoomRules};
use crate::outbox::{Outbox, Outgoing};
use crate::store::{Account, NewMessage, Outcome, Snapshot, WriteCmd};

/// An online user's name as they spell it (`name` as given otherwise).
fn user_name(registry: &Registry, name: &Name) -> String {
    registry
        .users
        .get_key_value(name.key())
        .map_or_else(|| name.to_string(), |(n, _)| n.to_string())
}

/// Client tags a message may carry: names starting with `+` (IRCv3's client-only tags), at most
/// [`natter_proto::frame::MAX_TAGS`] bytes as IRC counts them, no control characters.
pub fn check_tags(tags: &natter_proto::frame::Tags) -> Answer {
    let size: usize = tags.iter().map(|(k, v)| k.len() + v.len() + 2).sum();
    let bad_name = tags.keys().any(|k| {
        k.len() < 2
            || !k.starts_with('+')
            || !k[1..]
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '/' | '.'))
    });
    let bad_value = tags
        .values()
        .any(|v| v.chars().any(natter_proto::text::is_forbidden));
    if size > natter_proto::frame::MAX_TAGS || bad_name || bad_value {
        let args =
            natter_proto::error_args!(reason = "fields", kind = "\"tags\"", detail = "client tags");
        return refuse(ErrorCode::BadFrame, args);
    }
    Ok(())
}

/// The longest parting word (of a `leave`, `exit`, kick or ban) shown to a room, in bytes.
pub const MAX_PARTING: usize = 300;

/// A parting word as rooms see it: control characters replaced, cut to [`MAX_PARTING`] bytes between
/// characters; `None` when nothing is left.
fn parting(text: &str) -> Option<String> {
    let text = natter_proto::text::neutralise(text.trim());
    let mut end = text.len().min(MAX_PARTING);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    (end > 0).then(|| text[..end].to_owned())
}

/// Limits the hub enforces on requests.
#[derive(Debug, Clone, Copy)]
pub struct HubConfig {
    /// Largest message text in bytes.
    pub max_text: usize,
    /// Most rooms one user may be in (the lobby counts).
    pub max_rooms: usize,
    /// Rooms with more members than this do not announce joins and leaves one by one, and a joiner gets
    /// the member count instead of the list (`who` still lists everyone). Without it, seating n users in
    /// one room costs n² notices and n full lists.
    pub announce_limit: usize,
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
    /// Told the outcome (the seq, or that it was not stored) — for a transfer connection, which has no
    /// outbox of its own to be acked in.
    pub stored: Option<oneshot::Sender<Result<u64, ()>>>,
}

/// A room's online members: the key is the member's name (as spelled, compared folded), the value where
/// to reach them. (Nothing else: at thousands of members every byte of an entry counts.)
type Members = HashMap<Name, Seats>;

/// Where to reach one online user: the outbox of each of their sessions. A guest has one; the owner of a
/// name may be signed in from several clients at once, and each gets everything. One session, the common
/// case, costs one pointer more than a bare outbox.
#[derive(Clone)]
// Boxed: a thin pointer keeps every member entry at 16 bytes; a bare Vec would make each 24.
#[allow(clippy::box_collection)]
enum Seats {
    One(Arc<Outbox>),
    Many(Box<Vec<Arc<Outbox>>>),
}

impl Seats {
    fn iter(&self) -> std::slice::Iter<'_, Arc<Outbox>> {
        match self {
            Seats::One(o) => std::slice::from_ref(o).iter(),
            Seats::Many(v) => v.iter(),
        }
    }

    fn add(&mut self, outbox: Arc<Outbox>) {
        if self.iter().any(|o| Arc::ptr_eq(o, &outbox)) {
            return;
        }
        *self = match std::mem::replace(self, Seats::Many(Box::default())) {
            Seats::One(first) => Seats::Many(Box::new(vec![first, outbox])),
            Seats::Many(mut v) => {
                v.push(outbox);
                Seats::Many(v)
            }
        };
    }

    /// Removes one session; `true` when none is left (the caller drops the entry).
    fn remove(&mut self, outbox: &Arc<Outbox>) -> bool {
        match self {
            Seats::One(o) => Arc::ptr_eq(o, outbox),
            Seats::Many(v) => {
                v.retain(|o| !Arc::ptr_eq(o, outbox));
                match v.len() {
                    0 => true,
                    1 => {
                        *self = Seats::One(v[0].clone());
                        false
                    }
                    _ => false,
                }
            }
        }
    }

    /// Queues `item` for every session but `except`.
    /// Returns how many sessions it was queued for.
    fn push_except(&self, item: &Arc<Outgoing>, except: Option<&Arc<Outbox>>) -> u64 {
        let mut pushed = 0;
        for o in self.iter() {
            if !except.is_some_and(|e| Arc::ptr_eq(e, o)) {
                o.push(item.clone());
                pushed += 1;
            }
        }
        pushed
    }
}

struct Room {
    name: RoomName,
    /// Online members (a name hashes and compares by its folded key).
    members: Mutex<Members>,
}

struct User {
    /// One per session.
    seats: Seats,
    /// The rooms the user is in, in the order joined (the lobby first when in it).
    rooms: Vec<RoomName>,
    /// Proved they own the name: several sessions are allowed, private messages are kept for them.
    owner: bool,
    /// A session has taken the user's seats in their rooms (later sessions join those).
    seated: bool,
}

#[derive(Default)]
struct Registry {
    /// Who is online: nothing is kept here for a name that is not.
    users: HashMap<Name, User>,
    /// Every owned name (online or not), by folded name: whispers to them are kept while they are away.
    owned: HashMap<String, Name>,
    /// Counts changes to `owned` made here (claims, forgets): a snapshot read before the latest one is
    /// stale and is not loaded (it would forget a claim the store has by now).
    owned_changes: u64,
    /// Who looks like whom ([`natter_proto::name::look_alike_key`]): every online and every owned name.
    /// A name that looks like one of these but is not it is taken.
    look_alikes: HashMap<u64, Name>,
    /// (owner, sender) pairs: the owner refuses the sender's whispers (folded names).
    blocks: std::collections::HashSet<(String, String)>,
    /// Names nobody may use, server-wide (folded).
    banned_names: std::collections::HashSet<String>,
    /// Server admins (folded names).
    admins: std::collections::HashSet<String>,
}

impl Registry {
    /// Takes the accounts from the store: at start, and again now and then (`natter admin`). Only the
    /// owned names that changed have their look-alike keys computed or dropped: a reload holds the
    /// registry for a moment whatever the number of users.
    fn load(&mut self, snapshot: Snapshot) {
        let owned: HashMap<String, Name> = snapshot
            .owned
            .into_iter()
            .map(|n| (n.key().to_owned(), n))
            .collect();
        let released: Vec<Name> = self
            .owned
            .iter()
            .filter(|(key, _)| !owned.contains_key(*key) && !self.users.contains_key(key.as_str()))
            .map(|(_, name)| name.clone())
            .collect();
        for name in released {
            self.look_alikes
                .remove(&natter_proto::name::look_alike_key(name.as_str()));
        }
        let new: Vec<Name> = owned
            .iter()
            .filter(|(key, _)| !self.owned.contains_key(*key))
            .map(|(_, name)| name.clone())
            .collect();
        for name in &new {
            self.add_look_alike(name);
        }
        self.owned = owned;
        self.blocks = snapshot.blocks.into_iter().collect();
        self.banned_names = snapshot.banned_names.into_iter().collect();
        self.admins = snapshot.admins.into_iter().collect();
    }

    fn add_look_alike(&mut self, name: &Name) {
        self.look_alikes.insert(
            natter_proto::name::look_alike_key(name.as_str()),
            name.clone(),
        );
    }

    /// The name (another one) that `name` would be taken for, if any.
    fn looks_like(&self, name: &Name) -> Option<&Name> {
        self.look_alikes
            .get(&natter_proto::name::look_alike_key(name.as_str()))
            .filter(|other| *other != name)
    }
}

/// Rooms with someone online (and the lobby), ordered so `rooms` lists them alphabetically.
type Rooms = BTreeMap<String, Arc<Room>>;

/// Shared by every session of a server.
pub struct Hub {
    registry: Mutex<Registry>,
    /// Every room's rules (owner, operators, bans, mutes, topic), by folded name — rooms with nobody online
    /// too. A leaf lock: taken last, and nothing is locked while holding it.
    rules: RwLock<HashMap<String, RoomRules>>,
    /// Addresses refused at the door, server-wide.
    banned_addresses: RwLock<std::collections::HashSet<std::net::IpAddr>>,
    rooms: RwLock<Rooms>,
    /// The highest seq delivered: everything at or below it is in the store *and* in the outboxes.
    /// Advanced under the lock of what it was delivered to (see the module notes).
    watermark: AtomicU64,
    /// Swapped when SIGHUP reloads the settings.
    config: RwLock<HubConfig>,
    writer: mpsc::UnboundedSender<WriteCmd<AppendToken>>,
    /// Cluster mode: who is in each room on the other nodes (room key → folded name → name). A leaf lock.
    remote: RwLock<HashMap<String, BTreeMap<String, Name>>>,
    /// Cluster mode: told each time a user of this node enters a room or leaves one.
    on_move: std::sync::OnceLock<MoveListener>,
    /// Tests stop the hub at chosen points (between a push and what must happen under the same lock).
    #[cfg(test)]
    probe: Mutex<Option<ProbeFn>>,
}

#[cfg(test)]
type ProbeFn = Arc<dyn Fn(Probe) + Send + Sync>;

/// Hears that a user entered a room (`None`) or left it (why).
pub type MoveListener = Box<dyn Fn(&Name, &RoomName, Option<LeftReason>) + Send + Sync>;

/// A message text that makes the store's writer thread panic in `deliver` (tests only).
#[cfg(test)]
pub(crate) const CRASH_THE_WRITER: &str = "please crash the store writer";

/// Points inside the hub where a test may look at (or race against) it; a no-op outside tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Probe {
    /// A run of room messages has been pushed to the members; the watermark has not moved yet.
    RunPushed,
    /// A `left` has been pushed to a room's remaining members.
    LeftPushed,
}

/// A name held by one connection. Dropping it unregisters the user — announced as a disconnect unless
/// [`Registration::leave`] said otherwise — so even a session that panics leaves no ghost online.
pub struct Registration {
    hub: Arc<Hub>,
    name: Name,
    /// This session's outbox (an owner may have several sessions).
    outbox: Arc<Outbox>,
    owner: bool,
    /// For an owner: the last seq before they owned the name (see [`Account::since`]).
    since: u64,
    reason: Option<LeftReason>,
    /// The parting word of an `exit` that had one.
    farewell: Option<String>,
}

impl Registration {
    pub fn name(&self) -> &Name {
        &self.name
    }

    /// For a session that proved it owns the name, the last seq before the name was owned: private
    /// messages after it are the owner's. `None` for a guest, who gets no private history at all.
    pub fn owned_since(&self) -> Option<u64> {
        self.owner.then_some(self.since)
    }

    /// Where this user's private history starts: for an owner, when they came to own the name; for a
    /// guest, when they signed in (what came before may have been another guest's under the name).
    pub fn private_since(&self) -> u64 {
        self.since
    }

    /// The name's account was forgotten: this session goes on as a guest.
    pub(crate) fn demote(&mut self) {
        self.owner = false;
    }

    pub(crate) fn set_since(&mut self, since: u64) {
        self.since = since;
    }

    /// Unregisters now, telling the user's rooms `reason` (`None`: quietly).
    pub fn leave(mut self, reason: Option<LeftReason>) {
        self.reason = reason;
    }

    /// The parting word the user's rooms see when they leave (an `exit` with `text`).
    pub fn farewell(&mut self, text: Option<&str>) {
        self.farewell = text.and_then(parting);
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let farewell = self.farewell.take();
        self.hub
            .unregister(&self.name, &self.outbox, self.reason, farewell);
    }
}

/// Who a `hello` is, as far as the name goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Who {
    /// No proof: any free name nobody is using.
    Guest,
    /// A proof for a name nobody owns yet, about to claim it: only if nobody is using it.
    Claiming,
    /// Proven against the name's account: joins the owner's other sessions, if any.
    Owner,
}

/// The store's writer is gone: nothing can be stored or looked up.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the history store has stopped")]
pub struct StoreStopped;

/// A seated `hello`.
pub struct Registered {
    /// The rooms the user is now in (lobby first).
    pub rooms: Vec<RoomName>,
    /// Replay up to here; later messages arrive live (the outbox is held until the replay is queued).
    pub watermark: u64,
}

/// Why a request was refused: becomes an `error` frame for the requester.
pub struct Refusal(pub ErrorCode, pub ErrorArgs);

impl Refusal {
    pub fn frame(self, id: Option<String>) -> ServerFrame {
        ServerFrame::error(self.0, self.1, id)
    }
}

type Answer<T = ()> = Result<T, Refusal>;

fn refuse<T>(code: ErrorCode, args: ErrorArgs) -> Answer<T> {
    Err(Refusal(code, args))
}

/// The args of `invalid_room`: the name as typed and what is wrong with it.
pub fn room_args(raw: &str, e: &natter_proto::NameError) -> ErrorArgs {
    let mut args = e.args();
    args.insert("room".into(), format!("{raw:?}").into());
    args
}

fn parse_room(raw: &str) -> Answer<RoomName> {
    RoomName::parse_lenient(raw).map_err(|e| Refusal(ErrorCode::InvalidRoom, room_args(raw, &e)))
}

impl Hub {
    pub fn new(
        config: HubConfig,
        writer: mpsc::UnboundedSender<WriteCmd<AppendToken>>,
        last_seq: u64,
        snapshot: Snapshot,
    ) -> Arc<Self> {
        let rules = snapshot
            .room_rules
            .iter()
            .filter_map(|(room, json)| Some((room.clone(), serde_json::from_str(json).ok()?)))
            .collect();
        let hub = Arc::new(Self {
            registry: Mutex::new(Registry::default()),
            rules: RwLock::new(rules),
            banned_addresses: RwLock::default(),
            rooms: RwLock::new(Rooms::new()),
            watermark: AtomicU64::new(last_seq),
            config: RwLock::new(config),
            writer,
            remote: RwLock::default(),
            on_move: std::sync::OnceLock::new(),
            #[cfg(test)]
            probe: Mutex::new(None),
        });
        hub.load(snapshot);
        hub
    }

    #[cfg_attr(not(test), allow(unused_variables))]
    #[inline]
    fn probe(&self, at: Probe) {
        #[cfg(test)]
        {
            let probe = self.probe.lock().unwrap().clone();
            if let Some(probe) = probe {
                probe(at);
            }
        }
    }

    // A panic elsewhere while holding one of these locks leaves plain data behind; keep going.
    fn registry(&self) -> MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Read on every room message (is the sender silenced?), written only by moderation and room
    /// creation: a read/write lock keeps messages to different rooms from queueing on it.
    fn rules(&self) -> RwLockReadGuard<'_, HashMap<String, RoomRules>> {
        self.rules.read().unwrap_or_else(|e| e.into_inner())
    }

    fn rules_mut(&self) -> RwLockWriteGuard<'_, HashMap<String, RoomRules>> {
        self.rules.write().unwrap_or_else(|e| e.into_inner())
    }

    fn rooms(&self) -> RwLockReadGuard<'_, Rooms> {
        self.rooms.read().unwrap_or_else(|e| e.into_inner())
    }

    fn rooms_mut(&self) -> RwLockWriteGuard<'_, Rooms> {
        self.rooms.write().unwrap_or_else(|e| e.into_inner())
    }

    fn watermark(&self) -> u64 {
        self.watermark.load(Ordering::Acquire)
    }

    /// `hello`, first step: takes the name for this connection and puts its outbox on hold (live traffic
    /// waits behind the replay to come). The user is online, in no room yet. Dropping the returned
    /// [`Registration`] unregisters the user, so a session that ends in any way — a panic included —
    /// leaves no one behind.
    ///
    /// `who`: a proven owner's sessions add up (an owner's name is never taken by another of their
    /// sessions); a session about to claim a free name, like a guest, gets it only if nobody is using it.
    /// A guest cannot use an owned name.
    pub fn reserve(
        self: &Arc<Self>,
        raw: &str,
        outbox: &Arc<Outbox>,
        who: Who,
    ) -> Answer<Registration> {
        let owner = who != Who::Guest;
        let name = Name::new(raw).map_err(|e| Refusal(ErrorCode::InvalidName, e.args()))?;
        let mut registry = self.registry();
        Self::unbanned(&registry, &name)?;
        if !owner && registry.owned.contains_key(name.key()) {
            return refuse(
                ErrorCode::NameOwned,
                natter_proto::error_args!(name = name.to_string()),
            );
        }
        if registry.looks_like(&name).is_some() {
            return refuse(
                ErrorCode::NameTaken,
                natter_proto::error_args!(name = name.to_string()),
            );
        }
        match registry.users.get_mut(name.key()) {
            Some(user) if who == Who::Owner && user.owner => user.seats.add(outbox.clone()),
            Some(_) => {
                return refuse(
                    ErrorCode::NameTaken,
                    natter_proto::error_args!(name = name.to_string()),
                )
            }
            None => {
                registry.add_look_alike(&name);
                registry.users.insert(
                    name.clone(),
                    User {
                        seats: Seats::One(outbox.clone()),
                        rooms: Vec::new(),
                        owner,
                        seated: false,
                    },
                );
            }
        }
        outbox.hold();
        Ok(Registration {
            hub: self.clone(),
            name,
            outbox: outbox.clone(),
            owner,
            since: 0,
            reason: Some(LeftReason::Disconnect),
            farewell: None,
        })
    }

    /// `banned` if nobody may use `name` on this server (cluster mode asks before it claims the name
    /// cluster-wide, so a banned name is told so, not that it is taken).
    pub fn check_banned(&self, name: &Name) -> Answer {
        Self::unbanned(&self.registry(), name)
    }

    fn unbanned(registry: &Registry, name: &Name) -> Answer {
        if registry.banned_names.contains(name.key()) {
            return refuse(
                ErrorCode::Banned,
                natter_proto::error_args!(what = "name", name = name.to_string()),
            );
        }
        Ok(())
    }

    /// Takes the accounts as read from the store (owned names, blocks, bans, admins): at start, and again
    /// now and then, so changes made with `natter admin` take effect on a running server. (Room rules are
    /// the server's own and read at start only.)
    pub fn load(&self, snapshot: Snapshot) {
        self.load_unless_changed(snapshot, None);
    }

    /// How many changes to the owned names this hub has made: pass it to [`Hub::load_unless_changed`]
    /// with a snapshot read after asking.
    pub fn owned_changes(&self) -> u64 {
        self.registry().owned_changes
    }

    /// [`Hub::load`], unless the owned names changed here since `changes` was read (the snapshot may
    /// predate that change; the next one will not). Returns whether it loaded.
    pub fn load_unless_changed(&self, snapshot: Snapshot, changes: Option<u64>) -> bool {
        let mut registry = self.registry();
        if changes.is_some_and(|c| c != registry.owned_changes) {
            return false;
        }
        *self
            .banned_addresses
            .write()
            .unwrap_or_else(|e| e.into_inner()) =
            snapshot.banned_addresses.iter().copied().collect();
        registry.load(snapshot);
        true
    }

    /// Names signed in, rooms with someone in them, and the highest seq delivered.
    pub fn counts(&self) -> (usize, usize, u64) {
        let users = self.registry().users.len();
        (users, self.rooms().len(), self.watermark())
    }

    /// The limits now.
    fn limits(&self) -> HubConfig {
        *self.config.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Changes the limits (SIGHUP's reload): joins and leaves from now on follow them.
    pub fn set_limits(&self, limits: HubConfig) {
        *self.config.write().unwrap_or_else(|e| e.into_inner()) = limits;
    }

    /// Owned names (accounts).
    pub fn owned_count(&self) -> usize {
        self.registry().owned.len()
    }

    /// Whether connections from `ip` are refused.
    pub fn is_banned_address(&self, ip: std::net::IpAddr) -> bool {
        self.banned_addresses
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&ip)
    }

    /// Forgets the owned names unused since `before_ms` (but not those online now). Returns how many; the
    /// caller reloads the accounts.
    pub async fn expire(&self, before_ms: i64) -> Result<usize, StoreStopped> {
        let keep = {
            let registry = self.registry();
            registry
                .users
                .iter()
                .filter(|(_, u)| u.owner)
                .map(|(n, _)| n.key().to_owned())
                .collect()
        };
        let gone = self
            .ask(|reply| WriteCmd::Expire {
                before_ms,
                keep,
                reply,
            })
            .await?;
        Ok(gone.len())
    }

    /// `/forget-me`: forgets `me`'s account and everything private of it; the name is free again.
    pub async fn forget(&self, me: &Name) -> Result<bool, StoreStopped> {
        let forgotten = self
            .ask(|reply| WriteCmd::Forget {
                name: me.key().to_owned(),
                reply,
            })
            .await?;
        if forgotten {
            let mut registry = self.registry();
            registry.owned.remove(me.key());
            registry.owned_changes += 1;
            registry
                .blocks
                .retain(|(a, b)| a != me.key() && b != me.key());
            if let Some(user) = registry.users.get_mut(me.key()) {
                user.owner = false;
            }
        }
        Ok(forgotten)
    }

    /// `/block NAME` (`on`) or `/unblock NAME`: `me` refuses, or accepts again, whispers from `name`.
    pub fn block(&self, me: &Name, name: &str, on: bool) -> Answer {
        let name = Name::new(name).map_err(|e| Refusal(ErrorCode::InvalidName, e.args()))?;
        let pair = (me.key().to_owned(), name.key().to_owned());
        let mut registry = self.registry();
        match on {
            true => registry.blocks.insert(pair),
            false => registry.blocks.remove(&pair),
        };
        let _ = self.writer.send(WriteCmd::Block {
            name: me.key().to_owned(),
            blocked: name.key().to_owned(),
            on,
        });
        Ok(())
    }

    /// Whether anyone owns `name` (a folded name).
    pub fn is_owned(&self, key: &str) -> bool {
        self.registry().owned.contains_key(key)
    }

    /// The account of `name` from the store, if it is owned.
    pub async fn account(&self, name: &Name) -> Result<Option<Account>, StoreStopped> {
        self.ask(|reply| WriteCmd::Account {
            name: name.key().to_owned(),
            reply,
        })
        .await
    }

    /// An admin's one-time password has been used: it is cleared.
    pub fn used_once(&self, name: &Name) {
        let _ = self.writer.send(WriteCmd::UsedOnce {
            name: name.key().to_owned(),
        });
    }

    /// Adds `key` to an owned name's keys.
    pub fn add_key(&self, name: &Name, key: [u8; 32]) {
        let _ = self.writer.send(WriteCmd::AddKey {
            name: name.key().to_owned(),
            key,
        });
    }

    /// Sets `name`'s password hash: an owner's, or with `claim` a free name's (which it then owns). The
    /// account afterwards, `None` if that was not possible.
    pub async fn set_password(
        &self,
        name: &Name,
        hash: String,
        claim: bool,
    ) -> Result<Option<Account>, StoreStopped> {
        let account = self
            .ask(|reply| WriteCmd::SetPassword {
                name: name.clone(),
                hash,
                claim,
                since: None,
                reply,
            })
            .await?;
        if account.is_some() {
            self.mark_owned(name);
        }
        Ok(account)
    }

    /// Cluster mode: a change every node applies, in stream order (this node's own too, so what the hub
    /// keeps ends as the stream has it): owned names, blocks and room rules. Memberships, keys and
    /// passwords live in the store only; expired names come with the next reload of the accounts.
    pub fn replicated(&self, change: &crate::cluster::Change) {
        use crate::cluster::Change;
        match change {
            Change::Claim { name, .. }
            | Change::SetPassword {
                name, claim: true, ..
            } => {
                if let Ok(name) = Name::new(name) {
                    if !self.is_owned(name.key()) {
                        self.mark_owned(&name);
                    }
                }
            }
            Change::Forget { name } => {
                let mut registry = self.registry();
                let Some(owned) = registry.owned.remove(name) else {
                    return;
                };
                registry.owned_changes += 1;
                registry.blocks.retain(|(a, b)| a != name && b != name);
                match registry.users.get_mut(name.as_str()) {
                    Some(user) => user.owner = false,
                    None => {
                        registry
                            .look_alikes
                            .remove(&natter_proto::name::look_alike_key(owned.as_str()));
                    }
                }
            }
            Change::Block { name, blocked, on } => {
                let pair = (name.clone(), blocked.clone());
                let mut registry = self.registry();
                match on {
                    true => registry.blocks.insert(pair),
                    false => registry.blocks.remove(&pair),
                };
            }
            Change::Rules { room, rules } => {
                if let Ok(rules) = serde_json::from_str::<RoomRules>(rules) {
                    self.rules_mut().insert(room.clone(), rules);
                }
            }
            Change::Admin(change) => self.admin_change(change),
            _ => {}
        }
    }

    /// An admin's change from the cluster: bans and admins take effect at once (a release as a
    /// `/forget-me`).
    fn admin_change(&self, change: &crate::store::admin::AdminChange) {
        use crate::store::admin::AdminChange;
        let fold = natter_proto::name::fold;
        match change {
            AdminChange::Release { name } => {
                self.replicated(&crate::cluster::Change::Forget { name: fold(name) })
            }
            AdminChange::OncePassword { .. } => {}
            AdminChange::SetAdmin { name, on } => {
                let mut registry = self.registry();
                match on {
                    true => registry.admins.insert(fold(name)),
                    false => registry.admins.remove(&fold(name)),
                };
            }
            AdminChange::BanName { name, on } => {
                let mut registry = self.registry();
                match on {
                    true => registry.banned_names.insert(fold(name)),
                    false => registry.banned_names.remove(&fold(name)),
                };
            }
            AdminChange::BanAddress { address, on } => {
                let mut banned = self
                    .banned_addresses
                    .write()
                    .unwrap_or_else(|e| e.into_inner());
                match on {
                    true => banned.insert(*address),
                    false => banned.remove(address),
                };
            }
        }
    }

    fn mark_owned(&self, name: &Name) {
        let mut registry = self.registry();
        registry.add_look_alike(name);
        registry.owned.insert(name.key().to_owned(), name.clone());
        registry.owned_changes += 1;
    }

    /// A guest's session that has just come to own its name (by setting a password) is its owner from now
    /// on.
    pub fn promote(&self, registration: &mut Registration, account: &Account) {
        registration.owner = true;
        registration.since = account.since;
        if let Some(user) = self.registry().users.get_mut(registration.name.key()) {
            user.owner = true;
        }
    }

    /// Makes `key` the proof of `name` if nobody owns it; the account if `key` proves it now.
    pub async fn claim(&self, name: &Name, key: [u8; 32]) -> Result<Option<Account>, StoreStopped> {
        let bound = self
            .ask(|reply| WriteCmd::Claim {
                name: name.clone(),
                key,
                since: None,
                reply,
            })
            .await?;
        if bound.is_some() {
            self.mark_owned(name);
        }
        Ok(bound)
    }

    /// Sends the store's writer a command that answers, and waits for the answer (it comes after every
    /// command queued before it is committed).
    async fn ask<R>(
        &self,
        command: impl FnOnce(oneshot::Sender<R>) -> WriteCmd<AppendToken>,
    ) -> Result<R, StoreStopped> {
        let (reply, answer) = oneshot::channel();
        self.writer.send(command(reply)).map_err(|_| StoreStopped)?;
        answer.await.map_err(|_| StoreStopped)
    }

    /// Expires the files shared before `before_ms` (and the blobs only they used), on the store's writer.
    pub async fn expire_files(
        &self,
        before_ms: i64,
        objects: std::path::PathBuf,
    ) -> Result<usize, StoreStopped> {
        self.ask(|reply| WriteCmd::ExpireFiles {
            before_ms,
            objects,
            reply,
        })
        .await
    }

    /// The rooms `name` had joined, from the store. The request is queued behind every join and leave
    /// sent before it, so a name's earlier session cannot make the answer stale.
    pub async fn remembered_rooms(&self, name: &Name) -> Result<Vec<RoomName>, StoreStopped> {
        self.ask(|reply| WriteCmd::Rooms {
            name: name.key().to_owned(),
            reply,
        })
        .await
    }

    /// `hello`, second step: sends `welcome` and puts the user in their rooms (the lobby too, unless
    /// `lobby` is false), each with `joined` to its members and `users` to the user. The outbox stays
    /// held: release it with the returned watermark once the replay is queued.
    ///
    /// Another session of an owner already seated joins that user's rooms instead (announced to nobody but
    /// itself: the user was there already).
    pub fn seat(
        &self,
        me: &Name,
        outbox: &Arc<Outbox>,
        remembered: Vec<RoomName>,
        lobby: bool,
    ) -> Registered {
        let mut registry = self.registry();
        let Some(user) = registry
            .users
            .get_mut(me.key())
            .filter(|u| u.seats.iter().any(|o| Arc::ptr_eq(o, outbox)))
        else {
            // Unregistered meanwhile (the session is ending): nothing to seat.
            return Registered {
                rooms: Vec::new(),
                watermark: self.watermark(),
            };
        };
        let owner = user.owner;
        let welcome = |rooms: &[RoomName]| ServerFrame::Welcome {
            name: me.to_string(),
            version: VERSION,
            rooms: rooms.iter().map(ToString::to_string).collect(),
            last_seq: self.watermark(),
            owner,
        };
        if user.seated {
            let rooms = user.rooms.clone();
            outbox.reply(welcome(&rooms));
            for room in &rooms {
                self.take_seat(me, outbox, room);
            }
            return Registered {
                rooms,
                watermark: self.watermark(),
            };
        }
        let mut rooms = remembered;
        let home = RoomName::lobby();
        rooms.retain(|r| *r != home);
        if lobby {
            rooms.insert(0, home);
        }
        user.rooms = rooms.clone();
        user.seated = true;
        let seats = user.seats.clone();
        outbox.reply(welcome(&rooms));
        for room in &rooms {
            self.enter(me, &seats, outbox, room.clone());
        }
        Registered {
            rooms,
            watermark: self.watermark(),
        }
    }

    /// Another session of a user already in `room` takes its seat there: it gets `joined` and `users`,
    /// nobody else hears of it. Called with the registry locked.
    fn take_seat(&self, me: &Name, outbox: &Arc<Outbox>, room: &RoomName) {
        let table = self.rooms();
        let Some(r) = table.get(room.key()) else {
            return;
        };
        let mut members = r.members();
        if let Some(seats) = members.get_mut(me.key()) {
            seats.add(outbox.clone());
        }
        outbox.push_ahead(Outgoing::new(ServerFrame::Joined {
            room: r.name.to_string(),
            name: me.to_string(),
            ts: time::now_wire(),
        }));
        outbox.reply(self.users_on_join(&r.name, &members));
        if let Some(topic) = self.topic_frame(&r.name) {
            outbox.reply(topic);
        }
    }

    /// Ends one session. The user's last session removes their presence and tells the rooms they were in
    /// (unless `reason` is `None`: quietly, as at shutdown); their memberships stay in the store for their
    /// return. Called by [`Registration`].
    fn unregister(
        &self,
        me: &Name,
        outbox: &Arc<Outbox>,
        reason: Option<LeftReason>,
        farewell: Option<String>,
    ) {
        let mut registry = self.registry();
        let Some(user) = registry.users.get_mut(me.key()) else {
            return;
        };
        if user.owner {
            // Every private message up to here has been queued for one of their sessions.
            let _ = self.writer.send(WriteCmd::Seen {
                name: me.key().to_owned(),
                seq: self.watermark(),
            });
        }
        if !user.seats.remove(outbox) {
            for room in &user.rooms {
                if let Some(r) = self.rooms().get(room.key()) {
                    if let Some(seats) = r.members().get_mut(me.key()) {
                        seats.remove(outbox);
                    }
                }
            }
            return;
        }
        let Some(user) = registry.users.remove(me.key()) else {
            return;
        };
        if !registry.owned.contains_key(me.key()) {
            registry
                .look_alikes
                .remove(&natter_proto::name::look_alike_key(me.as_str()));
        }
        let ts = time::now_wire();
        for room in user.rooms {
            let frame = reason.map(|reason| ServerFrame::Left {
                room: room.to_string(),
                name: me.to_string(),
                ts: ts.clone(),
                reason,
                text: farewell.clone(),
            });
            self.exit(me, &room, frame);
        }
    }

    /// Cluster mode: a whisper to `to`, who is signed in on another node (the cluster's presence says
    /// so); only its text is checked here.
    pub fn prepare_remote(
        &self,
        me: &Name,
        to: Name,
        text: &str,
        client_id: Option<String>,
    ) -> Answer<NewMessage> {
        natter_proto::text::validate(text, self.limits().max_text)
            .map_err(|e| Refusal(ErrorCode::InvalidText, e.args()))?;
        Ok(NewMessage {
            tags: Default::default(),
            notice: false,
            room: None,
            from: me.clone(),
            to: Some(to),
            text: text.to_owned(),
            client_id,
            event: None,
            file: None,
        })
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
        natter_proto::text::validate(text, self.limits().max_text)
            .map_err(|e| Refusal(ErrorCode::InvalidText, e.args()))?;
        let (room, to) = match to {
            Some(to) => {
                let registry = self.registry();
                // Someone online, or an owner who is away: theirs is kept until they are back.
                let target = Name::new(to).ok().and_then(|n| {
                    registry
                        .users
                        .get_key_value(n.key())
                        .map(|(name, _)| name)
                        .or_else(|| registry.owned.get(n.key()))
                });
                if let Some(target) = target.filter(|t| {
                    registry
                        .blocks
                        .contains(&(t.key().to_owned(), me.key().to_owned()))
                }) {
                    return refuse(
                        ErrorCode::Blocked,
                        natter_proto::error_args!(name = target.to_string()),
                    );
                }
                let Some(target) = target else {
                    return refuse(
                        ErrorCode::NoSuchUser,
                        natter_proto::error_args!(name = format!("{to:?}")),
                    );
                };
                (None, Some(target.clone()))
            }
            None => {
                let room = parse_room(room.unwrap_or(natter_proto::LOBBY))?;
                // The registry (for admins, who are never silenced) only when the rules would silence:
                // an ordinary message takes no global lock.
                let silenced = self
                    .rules()
                    .get(room.key())
                    .and_then(|r| r.silenced(me.key(), false, time::now_ms()));
                let silenced = silenced.filter(|_| !self.registry().admins.contains(me.key()));
                if let Some(until) = silenced {
                    let args = match until {
                        Some(until) => natter_proto::error_args!(
                            room = format!("#{room}"),
                            until = time::local_display_wire(&time::wire_ms(until))
                        ),
                        None => {
                            natter_proto::error_args!(room = format!("#{room}"), until = "none")
                        }
                    };
                    return refuse(ErrorCode::Muted, args);
                }
                let rooms = self.rooms();
                let Some(r) = rooms
                    .get(room.key())
                    .filter(|r| r.members().contains_key(me.key()))
                else {
                    return refuse(
                        ErrorCode::NotInRoom,
                        natter_proto::error_args!(room = format!("#{room}")),
                    );
                };
                (Some(r.name.clone()), None)
            }
        };
        Ok(NewMessage {
            tags: Default::default(),
            notice: false,
            room,
            from: me.clone(),
            to,
            text: text.to_owned(),
            client_id,
            event: None,
            file: None,
        })
    }

    /// `signal`: a message without text that is not stored (typing, reactions; IRC's TAGMSG), relayed at
    /// once under the same rules as a message — to the room's members or to `to`, who must be online —
    /// and returned for the sender (`sender` is not sent it again). Nothing orders it among messages.
    pub fn signal(
        &self,
        me: &Name,
        sender: &Arc<Outbox>,
        (room, to): (Option<&str>, Option<&str>),
        tags: natter_proto::frame::Tags,
        id: Option<String>,
    ) -> Answer<ServerFrame> {
        check_tags(&tags)?;
        if tags.is_empty() {
            let args = natter_proto::error_args!(
                reason = "fields",
                kind = "\"signal\"",
                detail = "no tags"
            );
            return refuse(ErrorCode::BadFrame, args);
        }
        // The rules of a message: membership, mutes, blocks.
        let prepared = self.prepare(me, room, to, "-", None)?;
        let signal = natter_proto::frame::Signal {
            sid: format!("s{:x}", rand_core::RngCore::next_u64(&mut rand_core::OsRng)),
            ts: time::now_wire(),
            from: me.to_string(),
            room: prepared.room.as_ref().map(ToString::to_string),
            to: prepared.to.as_ref().map(ToString::to_string),
            tags,
            id: None,
        };
        let item = Outgoing::new(ServerFrame::Signal(Box::new(signal.clone())));
        match (&prepared.room, &prepared.to) {
            (Some(room), _) => {
                if let Some(r) = self.rooms().get(room.key()) {
                    for seats in r.members().values() {
                        seats.push_except(&item, Some(sender));
                    }
                }
            }
            (None, Some(to)) => {
                let registry = self.registry();
                let Some(user) = registry.users.get(to.key()) else {
                    let args = natter_proto::error_args!(name = format!("{to:?}"));
                    return refuse(ErrorCode::NoSuchUser, args);
                };
                user.seats.push_except(&item, Some(sender));
            }
            (None, None) => {}
        }
        Ok(ServerFrame::Signal(Box::new(natter_proto::frame::Signal {
            id,
            ..signal
        })))
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
    ///
    /// Consecutive messages to the same room form a *run*, pushed to each member under one lock with one
    /// wake-up (at high rates a commit carries dozens of messages); the run's acks follow it. Every outbox
    /// still receives messages in seq order, and an ack never overtakes a message with a lower seq.
    pub fn deliver(&self, outcomes: Vec<Outcome<AppendToken>>) {
        let mut run = Run::default();
        let mut stored_now = 0;
        // Cluster mode: kicks and bans made on other nodes, carried out here after the delivery.
        let mut removals = Vec::new();
        for Outcome {
            message,
            token,
            result,
        } in outcomes
        {
            #[cfg(test)]
            if message.text == CRASH_THE_WRITER {
                panic!("the store's writer dies, as a test asked");
            }
            match result {
                Ok(stored) if !stored.duplicate => {
                    stored_now += 1;
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
                    if token.is_none() {
                        removals.extend(removal(&message));
                    }
                    let item =
                        Outgoing::new(ServerFrame::Message(Box::new(message.to_message(&stored))));
                    let sender = token.map(|token| {
                        let ack = ack(&token, &stored);
                        (token, ack)
                    });
                    match &message.room {
                        Some(room) => {
                            if run.room.as_ref() != Some(room) {
                                self.flush(&mut run);
                                run.room = Some(room.clone());
                            }
                            run.last_seq = stored.seq;
                            run.entries.push(RunEntry {
                                // A room event or a shared file reaches its author too: they see
                                // what they did (and the file's id).
                                event: message.event.is_some() || message.file.is_some(),
                                item,
                                sender,
                            });
                        }
                        None => {
                            self.flush(&mut run);
                            // A shared file reaches every session of its author, the sending one too.
                            let except = sender
                                .as_ref()
                                .filter(|_| message.file.is_none())
                                .map(|(token, _)| &token.outbox);
                            self.whisper(&message, item, stored.seq, except);
                            if let Some((token, ack)) = sender {
                                answer(token, ack);
                            }
                        }
                    }
                }
                Ok(stored) => {
                    // A resend of a stored message: acked again (with its first seq), not delivered again.
                    self.flush(&mut run);
                    if let Some(token) = token {
                        let ack = ack(&token, &stored);
                        answer(token, ack);
                    }
                }
                Err(e) => {
                    self.flush(&mut run);
                    // The details are for the log; the sender learns what it means for them.
                    tracing::error!("message from {} not stored: {e}", message.from);
                    if let Some(token) = token {
                        let error = ServerFrame::error(
                            ErrorCode::ServerError,
                            natter_proto::error_args!(what = "store"),
                            token.id.clone(),
                        );
                        answer(token, error);
                    }
                }
            }
        }
        self.flush(&mut run);
        if let Some(m) = crate::metrics::counting() {
            m.stored.inc_by(stored_now);
        }
        for (target, room, reason, text) in removals {
            let mut registry = self.registry();
            self.take_out(&mut registry, &target, &room, &room, reason, text);
        }
    }

    /// Pushes a run of room messages to the room's members (each but its own), advances the watermark under
    /// the room's lock, and only then acks the run's senders: when a sender has its ack, every recipient
    /// has the message queued. (So a sender's ack may follow messages of others stored in the same commit,
    /// with higher seqs; it never precedes a message with a lower seq.)
    fn flush(&self, run: &mut Run) {
        let Some(room) = run.room.take() else {
            return;
        };
        {
            let rooms = self.rooms();
            match rooms.get(room.key()) {
                Some(r) => {
                    let members = r.members();
                    let mut delivered = 0u64;
                    // Everyone but the sending session: a sender's other sessions see what it said.
                    for outbox in members.values().flat_map(Seats::iter) {
                        outbox.push_many(
                            run.entries
                                .iter()
                                // A room event reaches its author too: they see what they did.
                                .filter(|e| {
                                    e.event
                                        || !e
                                            .sender
                                            .as_ref()
                                            .is_some_and(|(t, _)| Arc::ptr_eq(&t.outbox, outbox))
                                })
                                .map(|e| &e.item)
                                .inspect(|_| delivered += 1),
                        );
                    }
                    if let Some(m) = crate::metrics::counting() {
                        m.deliveries.inc_by(delivered);
                    }
                    self.probe(Probe::RunPushed);
                    // Still under the room's lock (rule 5): a joiner entering after the push reads a
                    // watermark that covers the run, so the run reaches it by replay.
                    self.advance(run.last_seq, &members);
                }
                // A room nobody is online in: the table's read lock keeps anyone from creating it meanwhile.
                None => self.advance(run.last_seq, &rooms),
            }
        }
        for e in run.entries.drain(..) {
            if let Some((token, ack)) = e.sender {
                answer(token, ack);
            }
        }
    }

    /// Delivers a whisper to every session of its target and to the sender's other sessions (never to
    /// the session that sent it, which gets the ack). A target who is away finds it on their return.
    fn whisper(
        &self,
        message: &NewMessage,
        item: Arc<Outgoing>,
        seq: u64,
        sender: Option<&Arc<Outbox>>,
    ) {
        let registry = self.registry();
        let mut delivered = 0;
        // (A whisper from another node was not checked against this node's blocks: checked here.)
        if let Some(user) = message
            .to
            .as_ref()
            .filter(|to| {
                !registry
                    .blocks
                    .contains(&(to.key().to_owned(), message.from.key().to_owned()))
            })
            .and_then(|to| registry.users.get(to.key()))
        {
            delivered += user.seats.push_except(&item, sender);
        }
        if message.to.as_ref() != Some(&message.from) {
            if let Some(user) = registry.users.get(message.from.key()) {
                delivered += user.seats.push_except(&item, sender);
            }
        }
        if let Some(m) = crate::metrics::counting() {
            m.deliveries.inc_by(delivered);
        }
        self.advance(seq, &registry);
    }

    /// Moves the watermark up to `seq`. `_under` is the guard of the lock the delivery was made under: the
    /// signature makes rule 5 (advance under the same lock as the push) hard to break by accident.
    fn advance<G>(&self, seq: u64, _under: &G) {
        self.watermark.fetch_max(seq, Ordering::AcqRel);
    }

    /// `join`: enter a room, creating it if needed. Members get `joined`; the joiner gets `joined` and
    /// `users`. Returns the room and the replay watermark if the user was not in it before — then the
    /// outbox is left held for the replay. Joining a room you are in just sends `users`.
    ///
    /// `outbox` is the joining session's; the user's other sessions are put in the room too (they get
    /// `joined` and `users`, not the replay).
    pub fn join(
        &self,
        me: &Name,
        outbox: &Arc<Outbox>,
        room: &str,
    ) -> Answer<Option<(RoomName, u64)>> {
        let room = parse_room(room)?;
        let mut registry = self.registry();
        let Some(user) = registry.users.get_mut(me.key()) else {
            return Ok(None);
        };
        if user.rooms.contains(&room) {
            if let Some(r) = self.rooms().get(room.key()) {
                outbox.send(self.users_on_join(&r.name, &r.members()));
            }
            return Ok(None);
        }
        let admin = registry.admins.contains(me.key());
        // New: nobody is in it — here, nor (cluster mode) on another node.
        let new = self.rooms().get(room.key()).is_none()
            && !self
                .remote
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .contains_key(room.key());
        {
            let mut rules = self.rules_mut();
            if let Some(code) = rules
                .get(room.key())
                .and_then(|r| r.keeps_out(me.key(), admin))
            {
                let args = natter_proto::error_args!(what = "room", room = format!("#{room}"));
                return refuse(code, args);
            }
            // A room nobody has yet: whoever creates it owns it — if they own their name. A guest who
            // creates a room (or brings an ownerless room back to life) is its operator while it
            // lives, as on IRC; a room nobody owns starts each life with its creator as its only
            // operator. The lobby is the admins'.
            if new && room.key() != natter_proto::LOBBY {
                let owns_name = registry.users.get(me.key()).is_some_and(|u| u.owner);
                let changed = match rules.get_mut(room.key()) {
                    None if owns_name => Some(RoomRules {
                        owner: Some(me.key().to_owned()),
                        ..RoomRules::default()
                    }),
                    None => Some(RoomRules {
                        ops: [me.key().to_owned()].into(),
                        ..RoomRules::default()
                    }),
                    Some(r) if r.owner.is_none() => {
                        r.ops = [me.key().to_owned()].into();
                        Some(r.clone())
                    }
                    Some(_) => None,
                };
                if let Some(fresh) = changed {
                    let _ = self.writer.send(WriteCmd::Rules {
                        room: room.key().to_owned(),
                        rules: serde_json::to_string(&fresh).unwrap_or_default(),
                    });
                    rules.insert(room.key().to_owned(), fresh);
                }
            }
        }
        let Some(user) = registry.users.get_mut(me.key()) else {
            return Ok(None);
        };
        if user.rooms.len() >= self.limits().max_rooms {
            return refuse(
                ErrorCode::TooManyRooms,
                natter_proto::error_args!(count = user.rooms.len()),
            );
        }
        user.rooms.push(room.clone());
        let _ = self.writer.send(WriteCmd::Join {
            name: me.key().to_owned(),
            room: room.clone(),
        });
        outbox.hold();
        let seats = user.seats.clone();
        let display = self.enter(me, &seats, outbox, room);
        Ok(Some((display, self.watermark())))
    }

    /// Puts an online user (every session in `seats`) into a room's member list and announces it; the
    /// session `joiner` gets its `joined` ahead of held traffic. Returns the room's display name. Called
    /// with the registry locked.
    fn enter(&self, me: &Name, seats: &Seats, joiner: &Arc<Outbox>, room: RoomName) -> RoomName {
        let existing = self.rooms().get(room.key()).cloned();
        let mut table;
        let r = match &existing {
            Some(r) => r,
            None => {
                table = self.rooms_mut();
                table
                    .entry(room.key().to_owned())
                    .or_insert_with(|| Arc::new(Room::new(room)))
            }
        };
        let mut members = r.members();
        let joined = Outgoing::new(ServerFrame::Joined {
            room: r.name.to_string(),
            name: me.to_string(),
            ts: time::now_wire(),
        });
        let quiet = members.len() + 1 > self.limits().announce_limit;
        if !quiet {
            for member in members.values() {
                member.push_except(&joined, None);
            }
        }
        members.insert(me.clone(), seats.clone());
        if let Some(moved) = self.on_move.get() {
            moved(me, &r.name, None);
        }
        let users = Outgoing::new(self.users_on_join(&r.name, &members));
        for outbox in seats.iter() {
            if Arc::ptr_eq(outbox, joiner) {
                outbox.push_ahead(joined.clone());
                outbox.reply(self.users_on_join(&r.name, &members));
                if let Some(topic) = self.topic_frame(&r.name) {
                    outbox.reply(topic);
                }
            } else {
                outbox.push(joined.clone());
                outbox.push(users.clone());
            }
        }
        r.name.clone()
    }

    /// The `users` a joiner gets: the list, or in a room over the announce limit just the count.
    fn users_on_join(&self, room: &RoomName, members: &Members) -> ServerFrame {
        let count = members.len() + self.remote_count(room.key(), members);
        if count > self.limits().announce_limit {
            ServerFrame::Users {
                room: room.to_string(),
                names: Vec::new(),
                count: Some(count),
                ops: Vec::new(),
            }
        } else {
            self.with_ops(self.with_remote(Room::users_frame_of(room, members)))
        }
    }

    /// Cluster mode: starts telling `listener` when a user of this node enters or leaves a room.
    pub fn on_move(&self, listener: MoveListener) {
        let _ = self.on_move.set(listener);
    }

    /// Cluster mode: a user of another node entered or left a room. The room's members here hear of it
    /// as of anyone's (below the announce limit), and its member lists include them.
    pub fn remote_move(&self, m: crate::cluster::RemoteMove) {
        let key = m.room.key();
        {
            let mut remote = self.remote.write().unwrap_or_else(|e| e.into_inner());
            match m.left {
                None => {
                    remote
                        .entry(key.to_owned())
                        .or_default()
                        .insert(m.name.key().to_owned(), m.name.clone());
                }
                Some(_) => {
                    if let Some(names) = remote.get_mut(key) {
                        names.remove(m.name.key());
                        if names.is_empty() {
                            remote.remove(key);
                        }
                    }
                }
            }
        }
        let table = self.rooms();
        let Some(r) = table.get(key) else { return };
        let members = r.members();
        if members.contains_key(m.name.key())
            || members.len() + self.remote_count(key, &members) > self.limits().announce_limit
        {
            return;
        }
        let (room, name, ts) = (r.name.to_string(), m.name.to_string(), time::now_wire());
        let frame = match m.left {
            None => ServerFrame::Joined { room, name, ts },
            Some(reason) => ServerFrame::Left {
                room,
                name,
                ts,
                reason,
                text: None,
            },
        };
        let item = Outgoing::new(frame);
        for member in members.values() {
            member.push_except(&item, None);
        }
    }

    /// How many of a room's members are on other nodes (and not also here).
    fn remote_count(&self, room: &str, here: &Members) -> usize {
        let remote = self.remote.read().unwrap_or_else(|e| e.into_inner());
        remote.get(room).map_or(0, |names| {
            names
                .keys()
                .filter(|n| !here.contains_key(n.as_str()))
                .count()
        })
    }

    /// A `users` frame with the room's members on other nodes added (in order).
    fn with_remote(&self, mut frame: ServerFrame) -> ServerFrame {
        if let ServerFrame::Users { room, names, .. } = &mut frame {
            let remote = self.remote.read().unwrap_or_else(|e| e.into_inner());
            if let Some(others) = remote.get(&natter_proto::name::fold(room)) {
                for name in others.values() {
                    if !names
                        .iter()
                        .any(|n| natter_proto::name::fold(n) == name.key())
                    {
                        names.push(name.to_string());
                    }
                }
                names.sort_by_key(|n| natter_proto::name::fold(n));
            }
        }
        frame
    }

    /// A `users` frame with the room's operators marked (its owner among them).
    fn with_ops(&self, mut frame: ServerFrame) -> ServerFrame {
        if let ServerFrame::Users {
            room, names, ops, ..
        } = &mut frame
        {
            if let Some(rules) = self.rules().get(&natter_proto::name::fold(room)) {
                *ops = names
                    .iter()
                    .filter(|n| rules.is_op(&natter_proto::name::fold(n), false))
                    .cloned()
                    .collect();
            }
        }
        frame
    }

    /// The room's topic and settings, if it has any, for a joiner (and a front end's topic query).
    pub fn topic_frame(&self, room: &RoomName) -> Option<ServerFrame> {
        let rules = self.rules();
        let r = rules.get(room.key())?;
        (r.topic.is_some() || r.invite_only || r.moderated).then(|| ServerFrame::Topic {
            room: room.to_string(),
            topic: r.topic.clone(),
            set_by: r.topic.as_ref().and(r.topic_by.clone()),
            set_at: r.topic.as_ref().and(r.topic_at).map(time::wire_ms),
            invite_only: r.invite_only,
            moderated: r.moderated,
        })
    }

    /// A room operator's action: checked, applied to the room's rules (kept by the store), carried out
    /// (a kicked or banned member leaves the room) — and returned as the event to store and fan out like
    /// a message, so the room's history shows who did what.
    pub fn moderate(
        &self,
        me: &Name,
        room: &str,
        action: &Action,
        target: Option<&str>,
        reason: Option<&str>,
        client_id: Option<String>,
    ) -> Answer<NewMessage> {
        let room = parse_room(room)?;
        let mut registry = self.registry();
        let admin = registry.admins.contains(me.key());
        let display = self.room_of_member(me, &room)?;
        let target = match (action.needs_name(), target) {
            (false, _) => None,
            (true, None) => {
                return refuse(
                    ErrorCode::InvalidName,
                    natter_proto::NameError::Empty.args(),
                )
            }
            (true, Some(raw)) => {
                Some(Name::new(raw).map_err(|e| Refusal(ErrorCode::InvalidName, e.args()))?)
            }
        };
        if let Action::Topic(topic) = action {
            if topic.len() > crate::moderation::MAX_TOPIC {
                let args =
                    natter_proto::text::TextError::TooLong(crate::moderation::MAX_TOPIC).args();
                return refuse(ErrorCode::InvalidText, args);
            }
            if let Err(e) = natter_proto::text::validate(topic, crate::moderation::MAX_TOPIC) {
                if !topic.is_empty() {
                    return refuse(ErrorCode::InvalidText, e.args());
                }
            }
        }
        let forbidden = || {
            refuse(
                ErrorCode::Forbidden,
                natter_proto::error_args!(what = action.kind()),
            )
        };
        let json = {
            let mut all = self.rules_mut();
            let rules = all.entry(room.key().to_owned()).or_default();
            let lobby = room.key() == natter_proto::LOBBY;
            if !(admin || (!lobby && rules.is_op(me.key(), false))) {
                return forbidden();
            }
            // Nobody moderates the room's owner or a server admin (but themselves).
            if let Some(t) = target.as_ref().filter(|t| *t != me) {
                if rules.owner.as_deref() == Some(t.key()) || registry.admins.contains(t.key()) {
                    return forbidden();
                }
            }
            rules.apply(action, target.as_ref().map(|t| t.key()), time::now_ms());
            if let Action::Topic(topic) = action {
                rules.topic_by = (!topic.is_empty()).then(|| me.to_string());
                rules.topic_at = (!topic.is_empty()).then(time::now_ms);
            }
            serde_json::to_string(rules).unwrap_or_default()
        };
        let _ = self.writer.send(WriteCmd::Rules {
            room: room.key().to_owned(),
            rules: json,
        });
        if let (Some(t), Action::Kick | Action::Ban) = (&target, action) {
            let reason_text = reason.and_then(parting);
            let reason = match action {
                Action::Ban => LeftReason::Banned,
                _ => LeftReason::Kicked,
            };
            self.take_out(&mut registry, t, &room, &display, reason, reason_text);
        }
        let (event, text) =
            crate::moderation::event(action, target.as_ref().map(|t| t.as_str()), reason);
        Ok(NewMessage {
            tags: Default::default(),
            notice: false,
            room: Some(display),
            from: me.clone(),
            to: None,
            text,
            client_id,
            event: Some(Box::new(event)),
            file: None,
        })
    }

    /// A kicked or banned member `t` of this node leaves `room` (shown as `display`): every member, them
    /// included, gets `left` with the reason, and the membership is forgotten. Called with the registry
    /// locked; nothing happens to someone not here or not in the room.
    fn take_out(
        &self,
        registry: &mut Registry,
        t: &Name,
        room: &RoomName,
        display: &RoomName,
        reason: LeftReason,
        text: Option<String>,
    ) {
        let Some(user) = registry.users.get_mut(t.key()) else {
            return;
        };
        if !user.rooms.contains(room) {
            return;
        }
        user.rooms.retain(|r| r != room);
        let seats = user.seats.clone();
        let frame = ServerFrame::Left {
            room: display.to_string(),
            name: user_name(registry, t),
            ts: time::now_wire(),
            reason,
            text,
        };
        if let Some(left) = self.exit(t, room, Some(frame)) {
            seats.push_except(&left, None);
        }
        let _ = self.writer.send(WriteCmd::Leave {
            name: t.key().to_owned(),
            room: room.key().to_owned(),
        });
    }

    /// Takes a user out of a room's member list, tells the others (when `frame` is given) and drops the
    /// room if that left it empty. Called with the registry locked. Returns the announcement.
    ///
    /// The announcement goes out under the table's *read* lock and the room's lock (rule 3: a departure
    /// does not stall fan-out elsewhere); the write lock is taken only to drop a room that became empty.
    fn exit(
        &self,
        me: &Name,
        room: &RoomName,
        frame: Option<ServerFrame>,
    ) -> Option<Arc<Outgoing>> {
        let (item, empty) = {
            let table = self.rooms();
            let r = table.get(room.key())?;
            let mut members = r.members();
            let quiet = members.len() > self.limits().announce_limit;
            members.remove(me.key());
            if let Some(moved) = self.on_move.get() {
                let reason = match &frame {
                    Some(ServerFrame::Left { reason, .. }) => *reason,
                    _ => LeftReason::Disconnect,
                };
                moved(me, &r.name, Some(reason));
            }
            let item = frame.map(Outgoing::new);
            if let Some(item) = item.as_ref().filter(|_| !quiet) {
                for member in members.values() {
                    member.push_except(item, None);
                }
                self.probe(Probe::LeftPushed);
            }
            (item, members.is_empty())
        };
        if empty && room.key() != natter_proto::LOBBY {
            // Entries and exits are serialised by the registry lock (held by every caller), so nobody can
            // have entered meanwhile; checking again costs nothing and keeps this true without it.
            let mut table = self.rooms_mut();
            if table
                .get(room.key())
                .is_some_and(|r| r.members().is_empty())
            {
                table.remove(room.key());
            }
        }
        item
    }

    /// `leave`: members (the leaver included) get `left` with reason `leave` (and the parting `text`);
    /// the membership is forgotten.
    pub fn leave(&self, me: &Name, room: &str, text: Option<&str>) -> Answer {
        let room = parse_room(room)?;
        let mut registry = self.registry();
        let Some(seats) = registry.users.get(me.key()).map(|u| u.seats.clone()) else {
            return Ok(());
        };
        let display = self.room_of_member(me, &room)?;
        let frame = ServerFrame::Left {
            room: display.to_string(),
            name: me.to_string(),
            ts: time::now_wire(),
            reason: LeftReason::Leave,
            text: text.and_then(parting),
        };
        if let Some(left) = self.exit(me, &room, Some(frame)) {
            seats.push_except(&left, None);
        }
        if let Some(user) = registry.users.get_mut(me.key()) {
            user.rooms.retain(|r| *r != room);
        }
        let _ = self.writer.send(WriteCmd::Leave {
            name: me.key().to_owned(),
            room: room.key().to_owned(),
        });
        Ok(())
    }

    /// The display name of `room` if `me` is in it; `not_in_room` if not.
    fn room_of_member(&self, me: &Name, room: &RoomName) -> Answer<RoomName> {
        self.rooms()
            .get(room.key())
            .filter(|r| r.members().contains_key(me.key()))
            .map(|r| r.name.clone())
            .ok_or_else(|| {
                Refusal(
                    ErrorCode::NotInRoom,
                    natter_proto::error_args!(room = format!("#{room}")),
                )
            })
    }

    /// Whether `me` is in `room` (for history paging). Only the room's own lock is taken — never the
    /// registry, which registrations hold for longer.
    pub fn is_member(&self, me: &Name, room: &RoomName) -> bool {
        self.rooms()
            .get(room.key())
            .is_some_and(|r| r.members().contains_key(me.key()))
    }

    /// `who`: the members of a room, sorted. A room nobody is in has no members.
    pub fn who(&self, room: Option<&str>) -> Answer<ServerFrame> {
        let room = parse_room(room.unwrap_or(natter_proto::LOBBY))?;
        let frame = self.rooms().get(room.key()).map(|r| r.users_frame());
        let frame = frame.unwrap_or_else(|| ServerFrame::Users {
            room: room.to_string(),
            names: Vec::new(),
            count: None,
            ops: Vec::new(),
        });
        Ok(self.with_ops(self.with_remote(frame)))
    }

    /// Who is online under `name`: their name as they spell it, their rooms, and whether they own the
    /// name. For front ends whose protocol asks about a user (IRC's WHOIS and WHO).
    pub fn user(&self, name: &str) -> Option<(Name, Vec<RoomName>, bool)> {
        let name = Name::new(name).ok()?;
        let registry = self.registry();
        let (name, user) = registry.users.get_key_value(name.key())?;
        Some((name.clone(), user.rooms.clone(), user.owner))
    }

    /// Whether a room has anyone in it (rooms exist while someone is in them).
    pub fn room_exists(&self, room: &RoomName) -> bool {
        self.rooms().contains_key(room.key())
    }

    /// Everyone online, by name as spelled (for IRC's `WHO *`).
    pub fn online(&self) -> Vec<Name> {
        self.registry().users.keys().cloned().collect()
    }

    /// `rooms`: every room with someone online, alphabetically.
    pub fn rooms_frame(&self) -> ServerFrame {
        let rooms = self
            .rooms()
            .values()
            .map(|r| RoomInfo {
                name: r.name.to_string(),
                members: r.members().len(),
            })
            .collect();
        ServerFrame::Rooms { rooms }
    }

    /// Asks the writer to finish and stop (after the last session has ended).
    pub fn stop_writer(&self) {
        let _ = self.writer.send(WriteCmd::Stop);
    }
}

/// Consecutive delivered messages to one room, waiting to be pushed together.
#[derive(Default)]
struct Run {
    room: Option<RoomName>,
    /// In seq order.
    entries: Vec<RunEntry>,
    last_seq: u64,
}

struct RunEntry {
    /// A room event (sent to its author as well).
    event: bool,
    /// The message, for the other members.
    item: Arc<Outgoing>,
    /// Its sender's token and ack, for the sender once everyone else has the message (none: another
    /// node's message, in cluster mode).
    sender: Option<(AppendToken, ServerFrame)>,
}

/// The ack of a stored message, echoing the sender's `id`.
/// Whom a room event from another node takes out of which room, and why: a kick or a ban.
fn removal(message: &NewMessage) -> Option<(Name, RoomName, LeftReason, Option<String>)> {
    let event = message.event.as_ref()?;
    let reason = match event.kind.as_str() {
        "kick" => LeftReason::Kicked,
        "ban" => LeftReason::Banned,
        _ => return None,
    };
    let target = Name::new(event.name.as_deref()?).ok()?;
    let text = event.text.as_deref().and_then(parting);
    Some((target, message.room.clone()?, reason, text))
}

fn ack(token: &AppendToken, stored: &crate::store::Stored) -> ServerFrame {
    ServerFrame::Ack {
        id: token.id.clone(),
        seq: stored.seq,
        ts: stored.ts.clone(),
    }
}

/// Queues the answer to a `say`/`whisper` and tells its session that it has been — and a transfer
/// connection waiting for the outcome (only now: everyone, its author's sessions included, has the
/// message queued before the uploader hears that it is shared).
fn answer(token: AppendToken, frame: ServerFrame) {
    if let Some(stored) = token.stored {
        let outcome = match &frame {
            ServerFrame::Ack { seq, .. } => Ok(*seq),
            _ => Err(()),
        };
        let _ = stored.send(outcome);
    }
    token.outbox.send(frame);
    let _ = token.done.send(());
}

impl Room {
    fn new(name: RoomName) -> Self {
        Self {
            name,
            members: Mutex::new(HashMap::new()),
        }
    }

    fn members(&self) -> MutexGuard<'_, Members> {
        self.members.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn users_frame(&self) -> ServerFrame {
        Self::users_frame_of(&self.name, &self.members())
    }

    fn users_frame_of(name: &RoomName, members: &Members) -> ServerFrame {
        let mut names: Vec<&Name> = members.keys().collect();
        names.sort_by(|a, b| a.key().cmp(b.key()));
        ServerFrame::Users {
            room: name.to_string(),
            names: names.into_iter().map(|n| n.to_string()).collect(),
            count: None,
            ops: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc as std_mpsc;
    use std::time::Duration;

    use tokio::sync::Semaphore;

    use super::*;
    use crate::store::Stored;

    fn hub() -> Arc<Hub> {
        let (writer, _) = mpsc::unbounded_channel();
        Hub::new(
            HubConfig {
                max_text: 1000,
                max_rooms: 3,
                announce_limit: 4,
            },
            writer,
            0,
            Snapshot::default(),
        )
    }

    /// Registers `name` (remembering no rooms) and lets its (empty) replay finish.
    fn online(hub: &Arc<Hub>, name: &str, lobby: bool) -> (Registration, Arc<Outbox>) {
        let outbox = Outbox::new(1 << 20);
        let registration = hub.reserve(name, &outbox, Who::Guest).ok().unwrap();
        let registered = hub.seat(registration.name(), &outbox, Vec::new(), lobby);
        outbox.release(registered.watermark, None);
        (registration, outbox)
    }

    fn said(from: &Name, outbox: &Arc<Outbox>, seq: u64) -> Outcome<AppendToken> {
        let permit = Arc::new(Semaphore::new(1)).try_acquire_owned().unwrap();
        Outcome {
            message: NewMessage {
                tags: Default::default(),
                notice: false,
                room: Some(RoomName::lobby()),
                from: from.clone(),
                to: None,
                text: format!("m{seq}"),
                client_id: None,
                event: None,
                file: None,
            },
            token: Some(AppendToken {
                outbox: outbox.clone(),
                id: None,
                done: oneshot::channel().0,
                permit,
                stored: None,
            }),
            result: Ok(Stored {
                seq,
                ts: "2026-01-01T00:00:00.000Z".into(),
                duplicate: false,
            }),
        }
    }

    fn set_probe(hub: &Hub, probe: impl Fn(Probe) + Send + Sync + 'static) {
        *hub.probe.lock().unwrap() = Some(Arc::new(probe));
    }

    /// Defect 1 of issue 10: a `join` racing the fan-out of a run must get the run — by replay (its
    /// watermark covers it) or live (it is in the joiner's outbox). Before the fix the watermark moved
    /// after the room's lock was dropped, so a join in between got neither.
    #[test]
    fn a_join_racing_a_delivery_gets_the_message_one_way_or_the_other() {
        let hub = hub();
        let (alice, alice_outbox) = online(&hub, "alice", true);
        let (carol, carol_outbox) = online(&hub, "carol", false);
        let (alice, carol) = (alice.name().clone(), carol.name().clone());
        let (joined_tx, joined_rx) = std_mpsc::channel();
        let racer = {
            let hub = hub.clone();
            let carol = carol.clone();
            let carol_seat = carol_outbox.clone();
            let (start_tx, start_rx) = std_mpsc::channel::<()>();
            let (start_tx, joined_rx) = (Mutex::new(start_tx), Mutex::new(joined_rx));
            set_probe(&hub, move |at| {
                if at == Probe::RunPushed {
                    let _ = start_tx.lock().unwrap().send(());
                    // Give the join every chance to get in between the push and the watermark: it
                    // can only if the room's lock is free here.
                    let _ = joined_rx
                        .lock()
                        .unwrap()
                        .recv_timeout(Duration::from_millis(300));
                }
            });
            std::thread::spawn(move || {
                start_rx.recv().unwrap();
                let joined = hub
                    .join(&carol, &carol_seat, "lobby")
                    .ok()
                    .flatten()
                    .unwrap();
                let _ = joined_tx.send(());
                joined.1
            })
        };
        hub.deliver(vec![said(&alice, &alice_outbox, 1)]);
        let watermark = racer.join().unwrap();
        *hub.probe.lock().unwrap() = None;
        carol_outbox.release(watermark, Some("lobby"));
        let live: Vec<u64> = carol_outbox
            .queued_frames()
            .into_iter()
            .filter_map(|f| match f {
                ServerFrame::Message(m) => Some(m.seq),
                _ => None,
            })
            .collect();
        assert!(
            watermark >= 1 || live.contains(&1),
            "carol gets seq 1 neither by replay (watermark {watermark}) nor live ({live:?})"
        );
    }

    /// Defect 5 of issue 10: a departure announces itself under the room table's *read* lock, so
    /// other rooms' fan-out (which takes the read lock) does not wait for it.
    #[test]
    fn a_departure_does_not_hold_the_room_table_exclusively() {
        let hub = hub();
        let (alice, _a) = online(&hub, "alice", true);
        let (_bob, _b) = online(&hub, "bob", true);
        let readable = Arc::new(Mutex::new(None));
        {
            let hub2 = hub.clone();
            let readable = readable.clone();
            set_probe(&hub, move |at| {
                if at == Probe::LeftPushed {
                    *readable.lock().unwrap() = Some(hub2.rooms.try_read().is_ok());
                }
            });
        }
        alice.leave(Some(LeftReason::Disconnect));
        *hub.probe.lock().unwrap() = None; // the probe holds the hub: let it go
        assert_eq!(
            *readable.lock().unwrap(),
            Some(true),
            "while `left` was pushed, the room table could not be read"
        );
    }

    /// History paging asks whether the user is in the room without the registry lock.
    #[test]
    fn membership_checks_do_not_wait_for_the_registry() {
        let hub = hub();
        let (alice, _a) = online(&hub, "alice", true);
        let alice = alice.name().clone();
        let (tx, rx) = std_mpsc::channel();
        let registry = hub.registry();
        let checker = {
            let hub = hub.clone();
            std::thread::spawn(move || {
                let _ = tx.send(hub.is_member(&alice, &RoomName::lobby()));
            })
        };
        let answer = rx.recv_timeout(Duration::from_secs(5));
        drop(registry);
        checker.join().unwrap();
        assert_eq!(answer, Ok(true), "is_member waited for the registry");
    }

    /// Defect 10 of issue 10: a session that panics still gives its name back and leaves its rooms.
    #[test]
    fn a_panicking_session_leaves_no_ghost_behind() {
        let hub = hub();
        let (_bob, bob_outbox) = online(&hub, "bob", true);
        let (alice, _a) = online(&hub, "alice", true);
        let session = std::thread::spawn(move || {
            let _registration = alice;
            panic!("a bug in a session");
        });
        assert!(session.join().is_err());
        assert!(
            !hub.registry().users.contains_key("alice"),
            "alice is still online"
        );
        assert!(!hub.is_member(&Name::new("alice").unwrap(), &RoomName::lobby()));
        let left = bob_outbox.queued_frames();
        assert!(
            left.iter()
                .any(|f| matches!(f, ServerFrame::Left { name, reason: LeftReason::Disconnect, .. } if name == "alice")),
            "bob was not told: {left:?}"
        );
        assert!(
            hub.reserve("alice", &Outbox::new(1024), Who::Guest).is_ok(),
            "the name is free again"
        );
    }

    /// Defect 10: nothing stays in the hub for a name that went offline (memberships live in the store).
    #[test]
    fn offline_names_cost_the_hub_nothing() {
        let hub = hub();
        for i in 0..100 {
            let (me, outbox) = online(&hub, &format!("user{i}"), true);
            hub.join(me.name(), &outbox, "rust").ok().unwrap();
            me.leave(Some(LeftReason::Exit));
        }
        assert!(hub.registry().users.is_empty());
        assert_eq!(
            hub.rooms().len(),
            1,
            "only the lobby is left: {:?}",
            hub.rooms().keys()
        );
    }

    /// Defect 10: one user cannot make the server keep unbounded rooms.
    #[test]
    fn joins_stop_at_the_room_limit() {
        let hub = hub();
        let (me, outbox) = online(&hub, "alice", true);
        assert!(hub.join(me.name(), &outbox, "one").is_ok());
        assert!(hub.join(me.name(), &outbox, "two").is_ok());
        let refused = hub.join(me.name(), &outbox, "three").err().map(|r| r.0);
        assert_eq!(refused, Some(ErrorCode::TooManyRooms));
        hub.leave(me.name(), "one", None).ok().unwrap();
        assert!(
            hub.join(me.name(), &outbox, "three").is_ok(),
            "room again after a leave"
        );
    }

    /// Big rooms (over the announce limit, 4 here) are quiet: no `joined`/`left` to the others, the count
    /// instead of the list to a joiner — while `who` stays exact.
    #[test]
    fn big_rooms_announce_no_joins_or_leaves_but_who_is_exact() {
        let hub = hub();
        let users: Vec<_> = (0..4)
            .map(|i| online(&hub, &format!("u{i}"), true))
            .collect();
        // Four in the lobby: every arrival was announced to those already there.
        let announced = |outbox: &Arc<Outbox>| {
            outbox
                .queued_frames()
                .iter()
                .filter(|f| matches!(f, ServerFrame::Joined { name, .. } if name != "u0"))
                .count()
        };
        assert_eq!(announced(&users[0].1), 3);
        let (fifth, fifth_outbox) = online(&hub, "u4", true);
        assert_eq!(
            announced(&users[0].1),
            3,
            "the fifth arrival is not announced"
        );
        let users_frame = fifth_outbox
            .queued_frames()
            .into_iter()
            .find(|f| matches!(f, ServerFrame::Users { .. }));
        assert_eq!(
            users_frame,
            Some(ServerFrame::Users {
                room: "lobby".into(),
                names: Vec::new(),
                count: Some(5),
                ops: Vec::new(),
            })
        );
        let Ok(ServerFrame::Users { names, count, .. }) = hub.who(None) else {
            panic!("who failed");
        };
        assert_eq!((names.len(), count), (5, None));
        // Leaving a room of five is quiet; leaving one of four is announced again.
        let left = |outbox: &Arc<Outbox>| {
            outbox
                .queued_frames()
                .iter()
                .filter(|f| matches!(f, ServerFrame::Left { .. }))
                .count()
        };
        fifth.leave(Some(LeftReason::Exit));
        assert_eq!(left(&users[0].1), 0);
        let mut users = users;
        users.pop().unwrap().0.leave(Some(LeftReason::Exit));
        assert_eq!(left(&users[0].1), 1);
    }
}
