//! The message log and history in SQLite: [`MessageLog`] and [`History`] for one file (or `:memory:`).
//!
//! * **Writer.** One thread owns the write connection. It takes every command waiting in its channel as one
//!   batch, runs them in one transaction (group commit), and only after `COMMIT` hands the outcomes, in seq
//!   order, to the `deliver` callback. A seq is never reused (the highest one is kept in `meta`, so even
//!   pruning everything cannot lower it). Retention deletes in bounded steps between batches.
//! * **Readers.** History reads run on a small pool of read-only connections via `spawn_blocking`, so a long
//!   replay never blocks chat. WAL mode lets them read while the writer writes.
//! * **Idempotence.** A message with a client `id` that repeats one of the same sender's last
//!   [`DEDUPE_WINDOW`] messages is not stored again; the outcome carries the original seq and ts.
//! * `:memory:` keeps history in RAM only; writer and readers then share one connection.
//!
//! * **Checkpoints** run on a thread of their own ([`super::checkpoint`]).
//! * **Schema** versions are numbered migrations ([`super::schema`]); the queries are in [`super::queries`].
//!
//! Durability: WAL with `synchronous=NORMAL`. A committed (hence acknowledged) message survives the server
//! process being killed; an operating-system crash or power cut may lose the last moments of traffic.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use natter_proto::frame::Message;
use natter_proto::time;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use tokio::sync::mpsc;

use super::checkpoint::{
    Checkpointer, CommitClock, HEAVY_BATCH, WAL_SIZE_LIMIT, WAL_WRITER_CHECKPOINT_HEAVY,
    WAL_WRITER_CHECKPOINT_LIGHT,
};
use super::files;
use super::queries::{
    account, add_key, block, claim, expire, find_duplicate, forget, missed, oldest_seq, page,
    rooms_of, set_password, snapshot,
};
use super::schema::migrate;
use super::{
    DbPath, History, MessageLog, Outcome, Read, Retention, Scope, StoreError, Stored, WriteCmd,
};

/// How many of a sender's most recent messages a repeated client `id` is checked against.
pub const DEDUPE_WINDOW: u64 = 1000;

/// Most commands committed in one transaction.
const MAX_BATCH: usize = 1024;

/// Read connections kept open for reuse.
const READER_POOL: usize = 8;

/// The connection the writer uses: its own, or (for `:memory:`) the one shared with readers.
enum WriteConn {
    Own(Connection),
    Shared(Arc<Mutex<Connection>>),
}

/// Read access, cheap to clone.
#[derive(Clone)]
pub struct Store {
    shared: Arc<Shared>,
}

struct Shared {
    path: DbPath,
    /// For files: idle read-only connections. Unused for `:memory:`.
    pool: Mutex<Vec<Connection>>,
    /// At most [`READER_POOL`] reads at once. Without it a join storm (thousands of `hello`s, each a few
    /// reads) started a blocking thread and opened a connection — with its own page cache — per read,
    /// and the memory stayed with the allocator long after the storm.
    readers: tokio::sync::Semaphore,
    /// For `:memory:`: the one connection.
    memory: Option<Arc<Mutex<Connection>>>,
}

/// The writer half, run on its own thread by [`Writer::run`].
pub struct Writer<T> {
    conn: WriteConn,
    rx: mpsc::UnboundedReceiver<WriteCmd<T>>,
    last_seq: u64,
    retention: Retention,
    last_prune: Instant,
}

/// An opened SQLite log, in its concrete parts (the server takes them as [`super::Opened`]).
pub struct Opened<T> {
    pub store: Store,
    pub writer: Writer<T>,
    pub commands: mpsc::UnboundedSender<WriteCmd<T>>,
    /// Highest seq ever assigned.
    pub last_seq: u64,
    /// The accounts, as the hub keeps them.
    pub snapshot: super::Snapshot,
}

pub(super) fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    Ok(())
}

impl Store {
    /// Opens (creating if needed) the database and loads what the server needs to start.
    pub fn open<T>(path: DbPath, retention: Retention) -> Result<Opened<T>, StoreError> {
        let open_err = |source| StoreError::Open {
            path: path.to_string(),
            source,
        };
        let (write, memory) = match &path {
            DbPath::File(p) => {
                if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(|source| StoreError::Dir {
                        path: p.display().to_string(),
                        source,
                    })?;
                }
                let conn = Connection::open(p).map_err(open_err)?;
                configure(&conn).map_err(open_err)?;
                (WriteConn::Own(conn), None)
            }
            DbPath::Memory => {
                let conn = Arc::new(Mutex::new(Connection::open_in_memory().map_err(open_err)?));
                (WriteConn::Shared(conn.clone()), Some(conn))
            }
        };
        let mut writer = Writer {
            conn: write,
            rx: mpsc::unbounded_channel().1,
            last_seq: 0,
            retention,
            last_prune: Instant::now(),
        };
        let max_bytes = writer.retention.max_bytes;
        writer
            .with_conn(|conn| Ok(migrate(conn)))
            .map_err(open_err)??;
        let last_seq = writer
            .with_conn(|conn| {
                if let Some(bytes) = max_bytes {
                    let page: u64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
                    let pages = (bytes / page.max(1)).max(1);
                    conn.query_row(&format!("PRAGMA max_page_count = {pages}"), [], |_| Ok(()))?;
                }
                let max: Option<u64> =
                    conn.query_row("SELECT MAX(seq) FROM messages", [], |r| r.get(0))?;
                let meta: Option<u64> = conn
                    .query_row("SELECT value FROM meta WHERE key = 'last_seq'", [], |r| {
                        r.get(0)
                    })
                    .optional()?;
                Ok(max.unwrap_or(0).max(meta.unwrap_or(0)))
            })
            .map_err(open_err)?;
        writer.last_seq = last_seq;
        let snapshot = writer.with_conn(|conn| snapshot(conn)).map_err(open_err)?;
        let _ = writer.prune();
        let (tx, rx) = mpsc::unbounded_channel();
        writer.rx = rx;
        Ok(Opened {
            store: Store {
                shared: Arc::new(Shared {
                    path,
                    pool: Mutex::new(Vec::new()),
                    readers: tokio::sync::Semaphore::new(READER_POOL),
                    memory,
                }),
            },
            writer,
            commands: tx,
            last_seq,
            snapshot,
        })
    }

    /// Runs a read on a pooled connection, off the async threads.
    async fn read<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<R> + Send + 'static,
    {
        let _turn = self
            .shared
            .readers
            .acquire()
            .await
            .map_err(|_| StoreError::Stopped)?;
        let shared = self.shared.clone();
        tokio::task::spawn_blocking(move || shared.with_reader(f))
            .await
            .map_err(|_| StoreError::Stopped)?
    }
}

impl History for Store {
    fn page(&self, scope: Scope, before: u64, limit: usize) -> Read<'_, Vec<Message>> {
        Box::pin(self.read(move |conn| page(conn, &scope, before, limit)))
    }

    fn range(
        &self,
        scope: Scope,
        after: u64,
        before: u64,
        limit: usize,
        newest: bool,
    ) -> Read<'_, Vec<Message>> {
        Box::pin(
            self.read(move |conn| {
                super::queries::range(conn, &scope, after, before, limit, newest)
            }),
        )
    }

    fn seq_at(&self, ms: i64) -> Read<'_, u64> {
        Box::pin(self.read(move |conn| super::queries::seq_at(conn, ms)))
    }

    fn conversations(
        &self,
        me: String,
        rooms: Vec<String>,
        span: (i64, i64),
        private_since: u64,
        limit: usize,
    ) -> Read<'_, Vec<super::Conversation>> {
        Box::pin(self.read(move |conn| {
            super::queries::conversations(conn, &me, &rooms, span, (private_since, limit))
        }))
    }

    fn missed(
        &self,
        me: String,
        rooms: Vec<String>,
        private: bool,
        after: u64,
        upto: u64,
        limit: usize,
    ) -> Read<'_, Vec<Message>> {
        Box::pin(self.read(move |conn| missed(conn, &me, &rooms, private, after, upto, limit)))
    }

    fn oldest_seq(&self) -> Read<'_, Option<u64>> {
        Box::pin(self.read(oldest_seq))
    }

    fn snapshot(&self) -> Read<'_, super::Snapshot> {
        Box::pin(self.read(snapshot))
    }

    fn file(&self, id: u64) -> Read<'_, Option<super::FileRow>> {
        Box::pin(self.read(move |conn| files::file(conn, id)))
    }

    fn file_usage(&self, uploader: String) -> Read<'_, (u64, u64)> {
        Box::pin(self.read(move |conn| files::usage(conn, &uploader)))
    }

    fn shared_upload(&self, upload_key: String, since_ms: i64) -> Read<'_, Option<u64>> {
        Box::pin(self.read(move |conn| files::shared_upload(conn, &upload_key, since_ms)))
    }

    fn blobs(&self) -> Read<'_, Vec<String>> {
        Box::pin(self.read(files::blobs))
    }
}

impl<T: Send> MessageLog<T> for Writer<T> {
    fn run(self: Box<Self>, deliver: &mut dyn FnMut(Vec<Outcome<T>>)) {
        Writer::run(*self, deliver)
    }
}

impl Shared {
    fn with_reader<R>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<R>,
    ) -> Result<R, StoreError> {
        if let Some(memory) = &self.memory {
            let conn = memory.lock().unwrap_or_else(|e| e.into_inner());
            return Ok(f(&conn)?);
        }
        let DbPath::File(path) = &self.path else {
            return Err(StoreError::Stopped);
        };
        let pooled = self.pool.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let conn = match pooled {
            Some(c) => c,
            None => open_reader(path)?,
        };
        let result = f(&conn);
        let mut pool = self.pool.lock().unwrap_or_else(|e| e.into_inner());
        if pool.len() < READER_POOL {
            pool.push(conn);
        }
        Ok(result?)
    }
}

fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI,
    )?;
    conn.busy_timeout(Duration::from_secs(5))?;
    Ok(conn)
}

impl<T> Writer<T> {
    fn with_conn<R>(
        &mut self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<R>,
    ) -> rusqlite::Result<R> {
        match &mut self.conn {
            WriteConn::Own(conn) => f(conn),
            WriteConn::Shared(shared) => {
                let mut conn = shared.lock().unwrap_or_else(|e| e.into_inner());
                f(&mut conn)
            }
        }
    }

    /// Runs until [`WriteCmd::Stop`] or until every sender is gone. Call on a thread of its own.
    pub fn run(mut self, mut deliver: impl FnMut(Vec<Outcome<T>>)) {
        let clock = Arc::new(CommitClock::new());
        let checkpointer = match &self.conn {
            WriteConn::Own(conn) => conn
                .path()
                .and_then(|path| Checkpointer::start(path, clock.clone())),
            WriteConn::Shared(_) => None,
        };
        if checkpointer.is_some() {
            // Checkpoints (and their fsyncs) happen on the checkpointer's thread from now on, not in the
            // middle of a commit that people are waiting for — except under heavy load (see above).
            let _ = self.with_conn(|c| c.pragma_update(None, "journal_size_limit", WAL_SIZE_LIMIT));
        }
        self.serve(&mut deliver, &clock, checkpointer.is_some());
        if let Some(c) = checkpointer {
            c.stop();
        }
    }

    fn serve(
        &mut self,
        deliver: &mut impl FnMut(Vec<Outcome<T>>),
        clock: &CommitClock,
        checkpointed: bool,
    ) {
        let mut stop = false;
        let mut heavy = None;
        // Retention work left over: done one chunk at a time whenever nothing is waiting to be committed.
        let mut pruning = false;
        while !stop {
            let first = if pruning {
                match self.rx.try_recv() {
                    Ok(cmd) => cmd,
                    Err(mpsc::error::TryRecvError::Empty) => {
                        pruning = self.prune_step().unwrap_or(false);
                        continue;
                    }
                    Err(mpsc::error::TryRecvError::Disconnected) => return,
                }
            } else {
                match self.rx.blocking_recv() {
                    Some(cmd) => cmd,
                    None => return,
                }
            };
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match self.rx.try_recv() {
                    Ok(cmd) => batch.push(cmd),
                    Err(_) => break,
                }
            }
            if let Some(i) = batch.iter().position(|c| matches!(c, WriteCmd::Stop)) {
                // Stop is sent after the last session ended, so nothing follows it.
                batch.truncate(i);
                stop = true;
            }
            let now_heavy = batch.len() >= HEAVY_BATCH;
            if checkpointed && heavy != Some(now_heavy) {
                heavy = Some(now_heavy);
                let pages = if now_heavy {
                    WAL_WRITER_CHECKPOINT_HEAVY
                } else {
                    WAL_WRITER_CHECKPOINT_LIGHT
                };
                let _ = self.with_conn(|c| c.pragma_update(None, "wal_autocheckpoint", pages));
            }
            let started = std::time::Instant::now();
            let outcomes = self.commit(batch);
            if let Some(m) = crate::metrics::counting() {
                m.commit_seconds.observe(started.elapsed().as_secs_f64());
            }
            clock.committed();
            if !outcomes.is_empty() {
                deliver(outcomes);
            }
            if pruning || self.last_prune.elapsed() > Duration::from_secs(60) {
                pruning = self.prune_step().unwrap_or(false);
            }
        }
    }

    /// Stores one batch in one transaction.
    fn commit(&mut self, batch: Vec<WriteCmd<T>>) -> Vec<Outcome<T>> {
        let first_seq = self.last_seq;
        let now = Timestamp::now()
            .round(jiff::Unit::Millisecond)
            .unwrap_or_else(|_| Timestamp::now());
        let ts = time::wire(now);
        let ts_ms = now.as_millisecond();
        let result = self.with_conn(|conn| {
            let tx = conn.transaction()?;
            let mut seq = first_seq;
            let mut stored = Vec::new();
            for cmd in &batch {
                match cmd {
                    WriteCmd::Append(m, _) => {
                        if let Some(dup) = find_duplicate(&tx, m)? {
                            stored.push(dup);
                            continue;
                        }
                        seq += 1;
                        if let Some(f) = &m.file {
                            files::share(&tx, m, f, seq, ts_ms)?;
                        }
                        let (text, file) = as_stored(m, seq);
                        insert_row(&tx, m, seq, &ts, ts_ms, &text, file.as_deref())?;
                        stored.push(Stored {
                            seq,
                            ts: ts.clone(),
                            duplicate: false,
                        });
                    }
                    WriteCmd::Replicated {
                        message: m,
                        seq: at,
                        ts_ms: at_ms,
                        tokens,
                    } => {
                        let ts = time::wire_ms(*at_ms);
                        let first = if *at <= seq {
                            // Already applied (the stream is read again from a little before after a
                            // restart): answered as a resend, not delivered again.
                            Stored {
                                seq: *at,
                                ts,
                                duplicate: true,
                            }
                        } else {
                            seq = *at;
                            // The same rule on every node, over the same history: a resend the stream's
                            // duplicate window no longer caught is still not stored twice.
                            match find_duplicate(&tx, m)? {
                                Some(dup) => dup,
                                None => {
                                    if let Some(f) = &m.file {
                                        files::record(&tx, m, f, *at, *at_ms)?;
                                    }
                                    let (text, file) = as_stored(m, *at);
                                    insert_row(&tx, m, *at, &ts, *at_ms, &text, file.as_deref())?;
                                    Stored {
                                        seq: *at,
                                        ts,
                                        duplicate: false,
                                    }
                                }
                            }
                        };
                        // One outcome per waiting sender (at least one, to deliver): the first as
                        // stored, the rest as resends.
                        for i in 0..tokens.len().max(1) {
                            stored.push(Stored {
                                duplicate: first.duplicate || i > 0,
                                ..first.clone()
                            });
                        }
                    }
                    WriteCmd::Join { name, room } => {
                        tx.prepare_cached(
                            "INSERT OR IGNORE INTO memberships (name_key, room_key, room) VALUES (?1, ?2, ?3)",
                        )?
                        .execute(params![name, room.key(), room.as_str()])?;
                    }
                    WriteCmd::Leave { name, room } => {
                        tx.prepare_cached("DELETE FROM memberships WHERE name_key = ?1 AND room_key = ?2")?
                            .execute(params![name, room])?;
                    }
                    WriteCmd::Seen { name, seq } => {
                        tx.prepare_cached(
                            "UPDATE accounts SET pm_seen = MAX(pm_seen, ?2), last_seen_ms = ?3 WHERE name_key = ?1",
                        )?
                        .execute(params![name, seq, ts_ms])?;
                    }
                    WriteCmd::AddKey { name, key } => add_key(&tx, name, key, ts_ms)?,
                    WriteCmd::Block { name, blocked, on } => block(&tx, name, blocked, *on)?,
                    WriteCmd::Rules { room, rules } => {
                        tx.prepare_cached(
                            "INSERT OR REPLACE INTO room_rules (room_key, rules) VALUES (?1, ?2)",
                        )?
                        .execute(params![room, rules])?;
                    }
                    WriteCmd::UsedOnce { name } => {
                        tx.prepare_cached(
                            "UPDATE accounts SET password = NULL, password_once = 0
                             WHERE name_key = ?1 AND password_once = 1",
                        )?
                        .execute(params![name])?;
                    }
                    WriteCmd::Position(at) => seq = seq.max(*at),
                    WriteCmd::Rooms { .. }
                    | WriteCmd::Account { .. }
                    | WriteCmd::Claim { .. }
                    | WriteCmd::SetPassword { .. }
                    | WriteCmd::Forget { .. }
                    | WriteCmd::Expire { .. }
                    | WriteCmd::ExpireFiles { .. }
                    | WriteCmd::Settled { .. }
                    | WriteCmd::Admin(_)
                    | WriteCmd::Stop => {}
                }
            }
            if seq != first_seq {
                tx.prepare_cached(
                    "INSERT INTO meta (key, value) VALUES ('last_seq', ?1)
                     ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                )?
                .execute(params![seq])?;
            }
            tx.commit()?;
            Ok((seq, stored))
        });
        // The highest seq stored so far, this batch's included.
        let committed = result.as_ref().map_or(self.last_seq, |(seq, _)| *seq);
        let mut appends = Vec::new();
        let mut settled = Vec::new();
        for cmd in batch {
            match cmd {
                WriteCmd::Append(m, token) => appends.push((m, Some(token))),
                WriteCmd::Replicated {
                    message, tokens, ..
                } => {
                    if tokens.is_empty() {
                        appends.push((message, None));
                    } else {
                        for token in tokens {
                            appends.push((message.clone(), Some(token)));
                        }
                    }
                }
                WriteCmd::Settled {
                    message,
                    token,
                    result,
                } => settled.push(Outcome {
                    message,
                    token: Some(token),
                    result,
                }),
                // Answered after the commit, so the answer includes this batch's joins and leaves.
                WriteCmd::Rooms { name, reply } => {
                    let rooms = self.with_conn(|conn| rooms_of(conn, &name));
                    match rooms {
                        Ok(rooms) => {
                            let _ = reply.send(rooms);
                        }
                        Err(e) => tracing::error!("history store: reading rooms failed: {e}"),
                    }
                }
                WriteCmd::Account { name, reply } => {
                    match self.with_conn(|conn| account(conn, &name)) {
                        Ok(found) => {
                            let _ = reply.send(found);
                        }
                        Err(e) => tracing::error!("history store: reading an account failed: {e}"),
                    }
                }
                WriteCmd::Forget { name, reply } => {
                    match self.with_conn(|conn| forget(conn, &name)) {
                        Ok(existed) => {
                            let _ = reply.send(existed);
                        }
                        Err(e) => tracing::error!("history store: forgetting a name failed: {e}"),
                    }
                }
                WriteCmd::Expire {
                    before_ms,
                    keep,
                    reply,
                } => match self.with_conn(|conn| expire(conn, before_ms, &keep)) {
                    Ok(gone) => {
                        let _ = reply.send(gone);
                    }
                    Err(e) => tracing::error!("history store: expiring names failed: {e}"),
                },
                WriteCmd::SetPassword {
                    name,
                    hash,
                    claim,
                    since,
                    reply,
                } => {
                    let since = since.unwrap_or(committed);
                    let set = self
                        .with_conn(|conn| set_password(conn, &name, &hash, claim, ts_ms, since));
                    match set {
                        Ok(account) => {
                            let _ = reply.send(account);
                        }
                        Err(e) => tracing::error!("history store: setting a password failed: {e}"),
                    }
                }
                WriteCmd::ExpireFiles {
                    before_ms,
                    objects,
                    reply,
                } => match self.with_conn(|conn| files::expire(conn, before_ms, &objects)) {
                    Ok(n) => {
                        let _ = reply.send(n);
                    }
                    Err(e) => tracing::error!("history store: expiring files failed: {e}"),
                },
                WriteCmd::Admin(change) => {
                    if let Err(e) = self.with_conn(|conn| change.apply(conn)) {
                        tracing::error!("history store: an admin's change failed: {e}");
                    }
                }
                WriteCmd::Claim {
                    name,
                    key,
                    since,
                    reply,
                } => {
                    let since = since.unwrap_or(committed);
                    match self.with_conn(|conn| claim(conn, &name, &key, ts_ms, since)) {
                        Ok(bound) => {
                            let _ = reply.send(bound);
                        }
                        Err(e) => tracing::error!("history store: claiming a name failed: {e}"),
                    }
                }
                _ => {}
            }
        }
        let appends = appends.into_iter();
        let mut outcomes: Vec<Outcome<T>> = match result {
            Ok((seq, stored)) => {
                self.last_seq = seq;
                appends
                    .zip(stored)
                    .map(|((message, token), s)| Outcome {
                        message,
                        token,
                        result: Ok(s),
                    })
                    .collect()
            }
            Err(e) => {
                // Nothing of the batch was stored (or seen): its seqs are free to use again.
                tracing::error!("history store: commit failed: {e}");
                appends
                    .map(|(message, token)| Outcome {
                        message,
                        token,
                        result: Err(e.to_string()),
                    })
                    .collect()
            }
        };
        outcomes.append(&mut settled);
        outcomes
    }

    /// Applies the retention limits completely (at start-up, before anyone waits for a commit).
    fn prune(&mut self) -> rusqlite::Result<()> {
        while self.prune_step()? {}
        Ok(())
    }

    /// Deletes at most [`PRUNE_CHUNK`] rows beyond the retention limits; returns whether more remain.
    /// The writer runs one step between batches, so a commit waits for one chunk at most.
    fn prune_step(&mut self) -> rusqlite::Result<bool> {
        self.last_prune = Instant::now();
        let Retention {
            days, max_messages, ..
        } = self.retention.clone();
        let last_seq = self.last_seq;
        let chunk = PRUNE_CHUNK as i64;
        let deleted = self.with_conn(|conn| {
            let mut deleted = 0;
            if let Some(days) = days {
                let cutoff = Timestamp::now().as_millisecond() - i64::from(days) * 86_400_000;
                deleted += conn
                    .prepare_cached(PRUNE_BY_AGE)?
                    .execute(params![cutoff, chunk])?;
            }
            if let Some(max) = max_messages {
                let keep_from = i64::try_from(last_seq.saturating_sub(max)).unwrap_or(i64::MAX);
                deleted += conn
                    .prepare_cached(PRUNE_BY_COUNT)?
                    .execute(params![keep_from, chunk])?;
            }
            Ok(deleted)
        })?;
        if deleted > 0 {
            tracing::info!("history retention removed {deleted} old messages");
        }
        Ok(deleted >= PRUNE_CHUNK)
    }
}

/// Rows one retention step deletes at most (a few milliseconds of the writer's time).
const PRUNE_CHUNK: usize = 1000;

/// One chunk of messages older than `?1` (ms), found through `messages_ts`.
const PRUNE_BY_AGE: &str =
    "DELETE FROM messages WHERE seq IN (SELECT seq FROM messages WHERE ts_ms < ?1 LIMIT ?2)";

/// One chunk of messages with seq at or below `?1`, oldest first.
const PRUNE_BY_COUNT: &str =
    "DELETE FROM messages WHERE seq IN (SELECT seq FROM messages WHERE seq <= ?1 ORDER BY seq LIMIT ?2)";

/// A message's row: `text` and `file` (the shared file's info as JSON) already made.
/// The text and file (JSON) a message is stored with at `seq`: a shared file's message reads as its
/// fallback text (for clients that do not show files).
fn as_stored(m: &super::NewMessage, seq: u64) -> (String, Option<String>) {
    match &m.file {
        Some(f) => {
            let info = f.info(seq);
            let text = natter_proto::file::fallback_text(&info.name, info.size, seq);
            (text, serde_json::to_string(&info).ok())
        }
        None => (m.text.clone(), None),
    }
}

fn insert_row(
    tx: &rusqlite::Transaction<'_>,
    m: &super::NewMessage,
    seq: u64,
    ts: &str,
    ts_ms: i64,
    text: &str,
    file: Option<&str>,
) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO messages (seq, ts, ts_ms, room_key, room, sender_key, sender,
                               recipient_key, recipient, client_id, text, event, file,
                               notice, tags)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
    )?
    .execute(params![
        seq,
        ts,
        ts_ms,
        m.room.as_ref().map(|r| r.key()),
        m.room.as_ref().map(|r| r.as_str()),
        m.from.key(),
        m.from.as_str(),
        m.to.as_ref().map(|n| n.key()),
        m.to.as_ref().map(|n| n.as_str()),
        m.client_id,
        text,
        m.event.as_ref().and_then(|e| serde_json::to_string(e).ok()),
        file,
        m.notice,
        (!m.tags.is_empty())
            .then(|| serde_json::to_string(&m.tags).ok())
            .flatten(),
    ])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::queries::{missed_sql, range_sql};
    use crate::store::NewMessage;
    use natter_proto::{Name, RoomName};

    fn msg(
        room: Option<&str>,
        from: &str,
        to: Option<&str>,
        text: &str,
        id: Option<&str>,
    ) -> NewMessage {
        NewMessage {
            tags: Default::default(),
            notice: false,
            room: room.map(|r| RoomName::new(r).unwrap()),
            from: Name::new(from).unwrap(),
            to: to.map(|n| Name::new(n).unwrap()),
            text: text.into(),
            client_id: id.map(Into::into),
            event: None,
            file: None,
        }
    }

    fn append_all(writer: &mut Writer<u32>, msgs: Vec<NewMessage>) -> Vec<Stored> {
        let batch = msgs
            .into_iter()
            .enumerate()
            .map(|(i, m)| WriteCmd::Append(m, i as u32))
            .collect();
        writer
            .commit(batch)
            .into_iter()
            .map(|o| o.result.unwrap())
            .collect()
    }

    /// Issue 13: a blob is deleted by reference, decided in the transaction that expires its last live
    /// share — never while a share still uses it; the same content shared twice is stored once; an
    /// expired file's message stays in history, marked expired.
    #[test]
    fn a_blob_lives_while_any_share_of_it_lives() {
        let dir = tempfile::tempdir().unwrap();
        let objects = dir.path().join("objects");
        let mut opened =
            Store::open::<u32>(DbPath::File(dir.path().join("h.db")), Retention::default())
                .unwrap();
        let sha = "ab".repeat(32);
        let share = |n: u32| {
            let partial = dir.path().join(format!("partial-{n}"));
            std::fs::write(&partial, b"same bytes").unwrap();
            let mut m = msg(Some("lobby"), "a", None, "", None);
            m.file = Some(Box::new(crate::store::NewFile {
                name: format!("copy{n}.txt"),
                size: 10,
                mime: "text/plain".into(),
                sha256: sha.clone(),
                upload_key: format!("u{n}"),
                partial,
                object: super::files::object_path(&objects, &sha),
            }));
            m
        };
        let stored = append_all(&mut opened.writer, vec![share(1), share(2)]);
        let object = super::files::object_path(&objects, &sha);
        assert_eq!(std::fs::read(&object).unwrap(), b"same bytes");
        assert!(!dir.path().join("partial-1").exists() && !dir.path().join("partial-2").exists());
        let count = |conn: &Connection, sql: &str| -> i64 {
            conn.query_row(sql, [], |r| r.get(0)).unwrap()
        };
        // The first share is old, the second new: expiring the old keeps the blob.
        opened
            .writer
            .with_conn(|conn| {
                conn.execute(
                    "UPDATE files SET created_ms = 0 WHERE seq = ?1",
                    params![stored[0].seq],
                )
            })
            .unwrap();
        let expired = opened
            .writer
            .with_conn(|conn| super::files::expire(conn, 1, &objects))
            .unwrap();
        assert_eq!(expired, 1);
        assert!(object.exists(), "deleted while a share still uses it");
        opened
            .writer
            .with_conn(|conn| {
                assert_eq!(count(conn, "SELECT COUNT(*) FROM blobs"), 1);
                Ok(())
            })
            .unwrap();
        // Expiring the last share deletes the blob's row and its bytes.
        let now = Timestamp::now().as_millisecond() + 1;
        let expired = opened
            .writer
            .with_conn(|conn| super::files::expire(conn, now, &objects))
            .unwrap();
        assert_eq!(expired, 1);
        assert!(!object.exists());
        opened
            .writer
            .with_conn(|conn| {
                assert_eq!(count(conn, "SELECT COUNT(*) FROM blobs"), 0);
                assert_eq!(
                    count(conn, "SELECT COUNT(*) FROM files WHERE expired = 1"),
                    2
                );
                let history = page(conn, &Scope::Room("lobby".into()), u64::MAX, 10)?;
                assert_eq!(history.len(), 2);
                assert!(history
                    .iter()
                    .all(|m| m.file.as_ref().is_some_and(|f| f.expired)));
                Ok(())
            })
            .unwrap();
    }

    #[test]
    fn seqs_increase_and_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = DbPath::File(dir.path().join("h.db"));
        let mut opened = Store::open::<u32>(path.clone(), Retention::default()).unwrap();
        let stored = append_all(
            &mut opened.writer,
            vec![
                msg(Some("lobby"), "a", None, "1", None),
                msg(Some("lobby"), "a", None, "2", None),
            ],
        );
        assert_eq!(stored.iter().map(|s| s.seq).collect::<Vec<_>>(), vec![1, 2]);
        drop(opened);
        let mut opened = Store::open::<u32>(
            path,
            Retention {
                days: None,
                max_messages: Some(0),
                ..Default::default()
            },
        )
        .unwrap();
        // Retention removed every row, yet seq continues above the highest ever assigned.
        assert_eq!(opened.last_seq, 2);
        let stored = append_all(
            &mut opened.writer,
            vec![msg(Some("lobby"), "a", None, "3", None)],
        );
        assert_eq!(stored[0].seq, 3);
    }

    /// Checkpoints run on the checkpointer's thread once the writer is quiet: the database file itself
    /// (not only the log) holds the messages while the writer is still running.
    #[test]
    fn the_log_is_copied_into_the_database_in_a_quiet_moment() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("h.db");
        let opened = Store::open::<u32>(DbPath::File(file.clone()), Retention::default()).unwrap();
        let size = || std::fs::metadata(&file).unwrap().len();
        let empty = size();
        let commands = opened.commands.clone();
        let writer = std::thread::spawn(move || opened.writer.run(|_| {}));
        for i in 0..200u32 {
            let text = format!("message {i} {}", "x".repeat(200));
            let m = msg(Some("lobby"), "a", None, &text, None);
            commands.send(WriteCmd::Append(m, i)).unwrap();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while size() < empty + 40_000 {
            assert!(
                Instant::now() < deadline,
                "no checkpoint while the writer was quiet"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        commands.send(WriteCmd::Stop).unwrap();
        writer.join().unwrap();
    }

    #[test]
    fn retention_by_age_and_by_count() {
        let mut opened = Store::open::<u32>(DbPath::Memory, Retention::default()).unwrap();
        append_all(
            &mut opened.writer,
            (0..10)
                .map(|i| msg(Some("lobby"), "a", None, &i.to_string(), None))
                .collect(),
        );
        // Age the first four messages by 10 days.
        let old = Timestamp::now().as_millisecond() - 10 * 86_400_000;
        opened
            .writer
            .with_conn(|c| {
                c.execute(
                    "UPDATE messages SET ts_ms = ?1 WHERE seq <= 4",
                    params![old],
                )
            })
            .unwrap();
        opened.writer.retention = Retention {
            days: Some(7),
            max_messages: None,
            ..Default::default()
        };
        opened.writer.prune().unwrap();
        let count = |w: &mut Writer<u32>| {
            w.with_conn(|c| {
                c.query_row("SELECT COUNT(*), MIN(seq) FROM messages", [], |r| {
                    Ok((r.get::<_, u64>(0)?, r.get::<_, u64>(1)?))
                })
            })
            .unwrap()
        };
        assert_eq!(count(&mut opened.writer), (6, 5));
        opened.writer.retention = Retention {
            days: None,
            max_messages: Some(3),
            ..Default::default()
        };
        opened.writer.prune().unwrap();
        assert_eq!(count(&mut opened.writer), (3, 8));
    }

    #[test]
    fn a_full_disk_fails_the_batch_and_the_store_recovers() {
        let dir = tempfile::tempdir().unwrap();
        let mut opened = Store::open::<u32>(
            DbPath::File(dir.path().join("full.db")),
            Retention::default(),
        )
        .unwrap();
        append_all(
            &mut opened.writer,
            vec![msg(Some("lobby"), "a", None, "fits", None)],
        );
        // Cap the file at its current size: the next big batch cannot be written.
        let pages: u64 = opened
            .writer
            .with_conn(|c| c.query_row("PRAGMA page_count", [], |r| r.get(0)))
            .unwrap();
        opened
            .writer
            .with_conn(|c| c.query_row(&format!("PRAGMA max_page_count = {pages}"), [], |_| Ok(())))
            .unwrap();
        let big = "x".repeat(8000);
        let batch = (0..50)
            .map(|i| WriteCmd::Append(msg(Some("lobby"), "a", None, &big, None), i))
            .collect();
        let outcomes = opened.writer.commit(batch);
        assert!(
            outcomes.iter().all(|o| o.result.is_err()),
            "every message of the failed batch reports the failure"
        );
        // Space returns: the next message is stored, with the seq the failed batch did not use.
        opened
            .writer
            .with_conn(|c| c.query_row("PRAGMA max_page_count = 1000000", [], |_| Ok(())))
            .unwrap();
        let stored = append_all(
            &mut opened.writer,
            vec![msg(Some("lobby"), "a", None, "again", None)],
        );
        assert_eq!(stored[0].seq, 2);
    }

    #[test]
    fn repeated_client_ids_are_not_stored_twice() {
        let mut opened = Store::open::<u32>(DbPath::Memory, Retention::default()).unwrap();
        let first = append_all(
            &mut opened.writer,
            vec![msg(Some("lobby"), "a", None, "x", Some("7"))],
        );
        let again = append_all(
            &mut opened.writer,
            vec![
                msg(Some("lobby"), "A", None, "x", Some("7")),
                msg(Some("lobby"), "b", None, "y", Some("7")),
            ],
        );
        assert_eq!(
            again[0],
            Stored {
                duplicate: true,
                ..first[0].clone()
            }
        );
        assert!(!again[1].duplicate, "ids are per sender");
        assert_eq!(again[1].seq, 2);
    }

    /// The query plan of `sql` with `params`, one line per step.
    fn plan(conn: &Connection, sql: &str, params: &[rusqlite::types::Value]) -> String {
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let rows = stmt
            .query_map(rusqlite::params_from_iter(params), |r| {
                r.get::<_, String>(3)
            })
            .unwrap();
        rows.map(Result::unwrap).collect::<Vec<_>>().join("\n")
    }

    /// Defect 8 of issue 10: history reads walk index ranges in seq order — no temporary B-tree (which
    /// sorts every match, for each 500-row chunk of a resume) and no scan of the whole table.
    #[test]
    fn history_reads_use_index_ranges_without_sorting() {
        let opened = Store::open::<u32>(DbPath::Memory, Retention::default()).unwrap();
        let conn = opened.store.shared.memory.as_ref().unwrap().lock().unwrap();
        let rooms = ["lobby", "rust", "go"];
        // The statements `missed` and `page` prepare, checked through SQLite's own planner.
        let missed_sql = missed_sql(rooms.len(), true);
        let mut values: Vec<rusqlite::types::Value> = vec![
            0i64.into(),
            100i64.into(),
            "a".to_owned().into(),
            500i64.into(),
        ];
        values.extend(rooms.iter().map(|r| r.to_string().into()));
        let private_sql = range_sql(&Scope::Private("a".into()), true);
        let between_sql = range_sql(&Scope::Between("a".into(), "b".into()), false);
        let private_values: Vec<rusqlite::types::Value> = vec![
            "a".to_owned().into(),
            0i64.into(),
            100i64.into(),
            50i64.into(),
        ];
        let mut between_values = private_values.clone();
        between_values.push("b".to_owned().into());
        for (what, plan) in [
            ("missed", plan(&conn, &missed_sql, &values)),
            ("private page", plan(&conn, &private_sql, &private_values)),
            ("conversation", plan(&conn, &between_sql, &between_values)),
        ] {
            assert!(!plan.contains("TEMP B-TREE"), "{what} sorts:\n{plan}");
            assert!(
                !plan.contains("SCAN messages"),
                "{what} scans the table:\n{plan}"
            );
            assert!(plan.contains("USING INDEX"), "{what}:\n{plan}");
        }
    }

    /// Defect 8: retention removes old rows in bounded chunks (by index), so commits wait for one chunk
    /// at most, never for the whole prune.
    #[test]
    fn retention_deletes_in_bounded_chunks_by_index() {
        let mut opened = Store::open::<u32>(DbPath::Memory, Retention::default()).unwrap();
        let n = PRUNE_CHUNK * 2 + 10;
        append_all(
            &mut opened.writer,
            (0..n)
                .map(|i| msg(Some("lobby"), "a", None, &i.to_string(), None))
                .collect(),
        );
        let old = Timestamp::now().as_millisecond() - 10 * 86_400_000;
        opened
            .writer
            .with_conn(|c| c.execute("UPDATE messages SET ts_ms = ?1", params![old]))
            .unwrap();
        opened.writer.retention.days = Some(7);
        let count = |w: &mut Writer<u32>| {
            w.with_conn(|c| {
                c.query_row("SELECT COUNT(*) FROM messages", [], |r| {
                    r.get::<_, usize>(0)
                })
            })
            .unwrap()
        };
        assert!(
            opened.writer.prune_step().unwrap(),
            "more to do after one chunk"
        );
        assert_eq!(count(&mut opened.writer), n - PRUNE_CHUNK);
        assert!(opened.writer.prune_step().unwrap());
        assert!(!opened.writer.prune_step().unwrap(), "done");
        assert_eq!(count(&mut opened.writer), 0);
        let plan = opened
            .writer
            .with_conn(|c| Ok(plan(c, PRUNE_BY_AGE, &[0i64.into(), 10i64.into()])))
            .unwrap();
        assert!(plan.contains("messages_ts"), "{plan}");
    }

    #[test]
    fn reads_pages_and_missed_messages() {
        let opened = Store::open::<u32>(DbPath::Memory, Retention::default()).unwrap();
        let mut writer = opened.writer;
        append_all(
            &mut writer,
            vec![
                msg(Some("lobby"), "a", None, "1", None),
                msg(Some("rust"), "b", None, "2", None),
                msg(None, "b", Some("a"), "3", None),
                msg(None, "c", Some("b"), "4", None),
                msg(Some("lobby"), "b", None, "5", None),
            ],
        );
        let conn = opened.store.shared.memory.as_ref().unwrap().lock().unwrap();
        let texts = |ms: Vec<Message>| ms.into_iter().map(|m| m.text).collect::<Vec<_>>();
        assert_eq!(
            texts(page(&conn, &Scope::Room("lobby".into()), 99, 10).unwrap()),
            ["1", "5"]
        );
        assert_eq!(
            texts(page(&conn, &Scope::Room("lobby".into()), 5, 10).unwrap()),
            ["1"]
        );
        assert_eq!(
            texts(page(&conn, &Scope::Private("b".into()), 99, 10).unwrap()),
            ["3", "4"]
        );
        assert_eq!(
            texts(missed(&conn, "a", &["lobby".into()], true, 0, 5, 100).unwrap()),
            ["3", "5"]
        );
        assert_eq!(
            texts(
                missed(
                    &conn,
                    "a",
                    &["lobby".into(), "rust".into()],
                    true,
                    1,
                    4,
                    100
                )
                .unwrap()
            ),
            ["2", "3"]
        );
        assert_eq!(oldest_seq(&conn).unwrap(), Some(1));
    }
}
