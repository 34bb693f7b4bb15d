//! The message log: the one place that assigns `seq`, and the history read from it.
//!
//! Two seams, so another log (a JetStream stream in cluster mode, whose stream sequence becomes `seq`) can
//! stand where SQLite stands without the rest of the server changing:
//!
//! * [`MessageLog`] — the write side. It takes every queued [`WriteCmd`] as a batch, appends it (one
//!   commit), and only then hands the outcomes, in seq order, to a `deliver` callback — the hub, which fans
//!   messages out and acks them. **Append → seq → fan out**: nothing is seen or acknowledged before it is
//!   stored, and a seq is never reused. A repeated client `id` within the sender's recent messages is not
//!   stored again; its outcome carries the original seq (idempotent resends).
//! * [`History`] — the read side: pages of a room or of a user's private messages, everything a resuming
//!   user missed, and where history starts. Reads never wait for the writer.
//!
//! Only [`sqlite`] knows SQLite; nothing outside this module sees a `rusqlite` type.

pub mod admin;
pub mod backup;
mod checkpoint;
pub mod files;
mod queries;
mod schema;
pub mod sqlite;

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;

use natter_proto::frame::Message;
use natter_proto::{Name, RoomName};
use tokio::sync::mpsc;

pub use schema::SCHEMA_VERSION;
pub use sqlite::DEDUPE_WINDOW;

/// Where history lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbPath {
    File(PathBuf),
    /// Nothing on disk: history lasts as long as the process.
    Memory,
}

impl DbPath {
    /// `:memory:` or a file path.
    pub fn parse(s: &str) -> Self {
        if s == ":memory:" {
            DbPath::Memory
        } else {
            DbPath::File(PathBuf::from(s))
        }
    }
}

impl std::fmt::Display for DbPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DbPath::File(p) => write!(f, "{}", p.display()),
            DbPath::Memory => f.write_str(":memory:"),
        }
    }
}

/// History retention: rows beyond either limit are deleted (at start-up, then at most once a minute).
#[derive(Debug, Clone, Default)]
pub struct Retention {
    pub days: Option<u32>,
    pub max_messages: Option<u64>,
    /// The database file may not grow past this many bytes; sends then fail (`server_error`) until
    /// retention frees space.
    pub max_bytes: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the history database {path}: {source}")]
    Open {
        path: String,
        #[source]
        source: rusqlite::Error,
    },
    #[error("cannot create the directory for {path}: {source}")]
    Dir {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("history database error: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("the history store has stopped")]
    Stopped,
    #[error("the history database has schema version {found}, newer than this natter knows ({known}); use a newer natter")]
    TooNew { found: u32, known: u32 },
}

/// A message to be stored.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub room: Option<RoomName>,
    pub from: Name,
    pub to: Option<Name>,
    pub text: String,
    /// The sender's `id`, for idempotent resends.
    pub client_id: Option<String>,
    /// A room event (the text is then its English wording).
    pub event: Option<Box<natter_proto::frame::RoomEvent>>,
    /// A shared file (the text is then made from it, with the seq as its id).
    pub file: Option<Box<NewFile>>,
    /// Sent as a notice.
    pub notice: bool,
    /// Client tags.
    pub tags: natter_proto::frame::Tags,
}

/// A completed, verified upload to share: the writer moves its bytes into the content store and records
/// the share in the same transaction as its message.
#[derive(Debug, Clone)]
pub struct NewFile {
    pub name: String,
    pub size: u64,
    pub mime: String,
    pub sha256: String,
    /// Names the upload (uploader, conversation, content): a retry finds the share.
    pub upload_key: String,
    /// Where the uploaded bytes are now, and where the content store keeps them.
    pub partial: PathBuf,
    pub object: PathBuf,
}

impl NewFile {
    /// Where the writer puts the bytes of an upload whose content the store has already (to be deleted
    /// by the upload's task, outside the writer).
    pub fn duplicate(&self) -> PathBuf {
        self.partial.with_extension("duplicate")
    }

    /// The file as the message with `seq` shows it.
    pub fn info(&self, seq: u64) -> natter_proto::file::FileInfo {
        natter_proto::file::FileInfo {
            id: seq,
            name: self.name.clone(),
            size: self.size,
            mime: self.mime.clone(),
            sha256: self.sha256.clone(),
            expired: false,
        }
    }
}

/// A shared file as the store knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRow {
    pub info: natter_proto::file::FileInfo,
    /// Folded names: who shared it, and the room or the person it was shared with.
    pub uploader_key: String,
    pub room: Option<String>,
    pub recipient_key: Option<String>,
    pub created_ms: i64,
}

/// What the store did with a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub seq: u64,
    pub ts: String,
    /// True if this repeated an earlier message's client `id`: nothing new was stored or should be delivered.
    pub duplicate: bool,
}

impl NewMessage {
    pub fn to_message(&self, stored: &Stored) -> Message {
        Message {
            tags: self.tags.clone(),
            notice: self.notice,
            seq: stored.seq,
            ts: stored.ts.clone(),
            room: self.room.as_ref().map(|r| r.to_string()),
            from: self.from.to_string(),
            to: self.to.as_ref().map(|n| n.to_string()),
            text: match &self.file {
                Some(f) => natter_proto::file::fallback_text(&f.name, f.size, stored.seq),
                None => self.text.clone(),
            },
            event: self.event.clone(),
            file: self.file.as_ref().map(|f| Box::new(f.info(stored.seq))),
        }
    }
}

/// A command for the writer. `T` travels with an append and comes back with its outcome.
pub enum WriteCmd<T> {
    Append(NewMessage, T),
    /// Remember that `name` is in `room` (rooms are rejoined on the next `hello`).
    Join {
        name: String,
        room: RoomName,
    },
    Leave {
        name: String,
        room: String,
    },
    /// The rooms `name` has joined, answered after every command queued before it is committed.
    Rooms {
        name: String,
        reply: tokio::sync::oneshot::Sender<Vec<RoomName>>,
    },
    /// The account of `name` (a folded name), if it is owned — answered after the commands before it.
    Account {
        name: String,
        reply: tokio::sync::oneshot::Sender<Option<Account>>,
    },
    /// Binds `key` to `name` if nobody owns the name yet. Answers with the account if `key` is bound to
    /// it now (also when it already was), `None` when someone else owns the name.
    Claim {
        name: Name,
        key: [u8; 32],
        /// The last seq before the claim; `None`: the log's last seq when it is committed (cluster mode
        /// passes the claim's own place in the stream, so every node records the same).
        since: Option<u64>,
        reply: tokio::sync::oneshot::Sender<Option<Account>>,
    },
    /// The owner `name` has been sent their private messages up to `seq`.
    Seen {
        name: String,
        seq: u64,
    },
    /// Sets `name`'s password hash. With `claim`, a name nobody owns becomes owned by whoever knows the
    /// password; without, only an owned name's is changed. Answers with the account afterwards (`None`:
    /// claim of an owned name, or change of a free one).
    SetPassword {
        name: Name,
        hash: String,
        claim: bool,
        /// As [`WriteCmd::Claim`]'s.
        since: Option<u64>,
        reply: tokio::sync::oneshot::Sender<Option<Account>>,
    },
    /// Adds a key to an owned name's keys (its owner signed in by password from a new device).
    AddKey {
        name: String,
        key: [u8; 32],
    },
    /// Stores a room's rules (JSON of the hub's `RoomRules`), as they are after a change.
    Rules {
        room: String,
        rules: String,
    },
    /// Clears a one-time password after its use.
    UsedOnce {
        name: String,
    },
    /// Forgets an owned name and everything private of it (`/forget-me`): whether it was owned.
    Forget {
        name: String,
        reply: tokio::sync::oneshot::Sender<bool>,
    },
    /// Forgets the owned names unused since `before_ms`, but those in `keep`; answers with them.
    Expire {
        before_ms: i64,
        keep: Vec<String>,
        reply: tokio::sync::oneshot::Sender<Vec<String>>,
    },
    /// `name` refuses (or with `on` false, accepts again) whispers from `blocked`.
    Block {
        name: String,
        blocked: String,
        on: bool,
    },

    /// Marks the files shared before `before_ms` expired; deletes the blobs no live share needs any more
    /// (rows in the same transaction, then their bytes); answers with how many files expired.
    ExpireFiles {
        before_ms: i64,
        objects: PathBuf,
        reply: tokio::sync::oneshot::Sender<usize>,
    },

    /// Cluster mode: a message the stream stored at `seq` at `ts_ms`, handed over in stream order.
    /// `tokens`: the senders on this node waiting for it — the first sent it, any other sent the same
    /// id again before it came back (they are answered as resends).
    Replicated {
        message: NewMessage,
        seq: u64,
        ts_ms: i64,
        tokens: Vec<T>,
    },
    /// Cluster mode: an append answered without delivery — a resend the stream recognised (with the
    /// first copy's seq), or one the stream did not take (an error).
    Settled {
        message: NewMessage,
        token: T,
        result: Result<Stored, String>,
    },

    /// Cluster mode: one of `natter admin`'s changes, from the stream.
    Admin(admin::AdminChange),

    /// Cluster mode: the stream has been read up to `seq` (a change at `seq` was just handed over), so
    /// a restart reads on from after it.
    Position(u64),

    /// Finish what is queued and stop.
    Stop,
}

/// An owned name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// The name as its owner spelled it.
    pub name: Name,
    /// The public keys that prove it (Ed25519).
    pub keys: Vec<[u8; 32]>,
    /// The last seq before the name was claimed: private messages up to here were a guest's.
    pub since: u64,
    /// The highest seq of their private messages already sent to one of their sessions.
    pub pm_seen: u64,
    /// The argon2id hash of their password, if they set one.
    pub password: Option<String>,
    /// The password is an admin's one-time code: the first sign-in with it clears it.
    pub password_once: bool,
}

/// The result of one append, handed to `deliver` after the batch's commit. `token`: the sender's, when
/// the sender is connected here (in cluster mode, a message another node appended has none).
pub struct Outcome<T> {
    pub message: NewMessage,
    pub token: Option<T>,
    pub result: Result<Stored, String>,
}

/// Whose messages a history read covers.
#[derive(Debug, Clone)]
pub enum Scope {
    /// A room, by folded name.
    Room(String),
    /// The private messages to or from a user, by folded name.
    Private(String),
    /// The private messages between two users (folded names: the asker, the other).
    Between(String, String),
}

/// One conversation's latest activity (see [`History::conversations`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conversation {
    /// A room's display name, or `None` for a private conversation with `with`.
    pub room: Option<String>,
    pub with: Option<String>,
    pub latest_ms: i64,
}

/// A history read in progress.
pub type Read<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// The read side of the message log.
pub trait History: Send + Sync + 'static {
    /// Up to `limit` messages of `scope` with seq < `before`, oldest first.
    fn page(&self, scope: Scope, before: u64, limit: usize) -> Read<'_, Vec<Message>>;

    /// Up to `limit` messages of `scope` with `after < seq < before` — the newest of them when `newest`,
    /// else the oldest — oldest first.
    fn range(
        &self,
        scope: Scope,
        after: u64,
        before: u64,
        limit: usize,
        newest: bool,
    ) -> Read<'_, Vec<Message>>;

    /// The seq of the first message stored at or after `ms` (milliseconds since the epoch), or one more
    /// than the last if none was: a time as a position in the log.
    fn seq_at(&self, ms: i64) -> Read<'_, u64>;

    /// `me`'s conversations whose latest message was stored strictly within `span` (after, before; ms): each of
    /// `rooms` (folded names) that has one, and each person they exchanged private messages with, with
    /// the time (ms) of the latest such message (private ones only after seq `private_since`) — in order
    /// of that time, at most `limit`.
    fn conversations(
        &self,
        me: String,
        rooms: Vec<String>,
        span: (i64, i64),
        private_since: u64,
        limit: usize,
    ) -> Read<'_, Vec<Conversation>>;

    /// Messages with `after < seq <= upto` that `me` (a folded name) may see and did not send — in
    /// `rooms` (folded names) or, if `private`, addressed to them — oldest first, at most `limit`.
    #[allow(clippy::too_many_arguments)]
    fn missed(
        &self,
        me: String,
        rooms: Vec<String>,
        private: bool,
        after: u64,
        upto: u64,
        limit: usize,
    ) -> Read<'_, Vec<Message>>;

    /// The oldest seq still stored, if any.
    fn oldest_seq(&self) -> Read<'_, Option<u64>>;

    /// The accounts as the hub keeps them in memory (owned names, blocks, bans, admins, room rules) — read
    /// beside the writer, not by it.
    fn snapshot(&self) -> Read<'_, Snapshot>;

    /// The shared file with this id (its message's seq).
    fn file(&self, id: u64) -> Read<'_, Option<FileRow>>;

    /// Bytes of live files shared by `uploader` (a folded name), and bytes in the content store in all.
    fn file_usage(&self, uploader: String) -> Read<'_, (u64, u64)>;

    /// The id of a file shared by the upload `upload_key` at or after `since_ms`, if any (a retry).
    fn shared_upload(&self, upload_key: String, since_ms: i64) -> Read<'_, Option<u64>>;

    /// The SHA-256 of every blob the content store should hold.
    fn blobs(&self) -> Read<'_, Vec<String>>;
}

/// The write side of the message log, run on a thread of its own.
pub trait MessageLog<T>: Send {
    /// Runs until [`WriteCmd::Stop`] or until every sender of commands is gone: appends each batch and
    /// then hands its outcomes, in seq order, to `deliver`.
    fn run(self: Box<Self>, deliver: &mut dyn FnMut(Vec<Outcome<T>>));
}

/// An opened message log: everything the server needs to start.
pub struct Opened<T> {
    pub history: Arc<dyn History>,
    pub log: Box<dyn MessageLog<T>>,
    /// Where sessions (through the hub) send their commands.
    pub commands: mpsc::UnboundedSender<WriteCmd<T>>,
    /// Highest seq ever assigned.
    pub last_seq: u64,
    /// The accounts, as the hub keeps them.
    pub snapshot: Snapshot,
}

pub use queries::Snapshot;

/// Checks that the history at `path` can be opened (creating and migrating it as needed), so a server can
/// refuse to start before it announces anything.
pub fn check(path: &DbPath) -> Result<(), StoreError> {
    match path {
        DbPath::Memory => Ok(()),
        DbPath::File(_) => open::<()>(path.clone(), Retention::default()).map(drop),
    }
}

/// Opens the SQLite log at `path` (creating and migrating it as needed).
pub fn open<T: Send + 'static>(
    path: DbPath,
    retention: Retention,
) -> Result<Opened<T>, StoreError> {
    let opened = sqlite::Store::open::<T>(path, retention)?;
    Ok(Opened {
        history: Arc::new(opened.store),
        log: Box::new(opened.writer),
        commands: opened.commands,
        last_seq: opened.last_seq,
        snapshot: opened.snapshot,
    })
}

/// The platform's data directory for natter's default database (`~/.local/share/natter/natter.db` on Linux).
pub fn default_db_path() -> Option<PathBuf> {
    directories::ProjectDirs::from("", "", "natter").map(|d| d.data_dir().join("natter.db"))
}
