//! Checkpoints: copying SQLite's write-ahead log back into the database file, on a thread of its own.
//!
//! A checkpoint's fsyncs can stall the writer's own writes for milliseconds, so the checkpointer copies
//! the log when the writer has been quiet for a second, or every 1,500 commits of a steady trickle; under
//! heavy load (batches of several commands) the writer's own small checkpoints (SQLite's automatic ones,
//! every 1,000 pages) measured better and bound the log.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rusqlite::Connection;

use super::sqlite::configure;

/// How often the checkpointer looks at the log.
const CHECKPOINT_POLL: Duration = Duration::from_millis(250);

/// A quiet moment: no commit for this long. Checkpoints prefer one, because a checkpoint's fsyncs can stall
/// the writer's own writes to the log for milliseconds (ext4 commits its journal as a whole).
const CHECKPOINT_QUIET: Duration = Duration::from_secs(1);

/// At a steady trickle (no quiet moment, yet at most [`CHECKPOINT_TRICKLE`] commits per poll) the
/// checkpointer copies the log after this many commits — a few times a minute at chat rates, before the
/// writer's own light-load threshold. A one-message commit writes about four 4 KiB pages.
const CHECKPOINT_COMMITS: u64 = 1500;

/// Commits per poll above which traffic is heavy: then the writer's own checkpoints, small and in line,
/// measured better than a concurrent checkpoint competing with every commit.
const CHECKPOINT_TRICKLE: u64 = 100;

/// The writer's own (SQLite automatic) checkpoint threshold, in WAL pages, under light load: rarely
/// reached, because the checkpointer copies the log first; it bounds the log if the checkpointer lags.
pub(super) const WAL_WRITER_CHECKPOINT_LIGHT: i64 = 8192;

/// The same under heavy load (SQLite's default): frequent small checkpoints in line with the commits.
pub(super) const WAL_WRITER_CHECKPOINT_HEAVY: i64 = 1000;

/// Commands in one batch from which the writer counts the load as heavy.
pub(super) const HEAVY_BATCH: usize = 4;

/// The log file is cut back to this size when it restarts.
pub(super) const WAL_SIZE_LIMIT: i64 = 32 << 20;

/// What the writer tells the checkpointer: how many commits so far, and when the last one was.
pub(super) struct CommitClock {
    commits: std::sync::atomic::AtomicU64,
    /// Milliseconds since `epoch` at the last commit.
    last_ms: std::sync::atomic::AtomicU64,
    epoch: Instant,
}

impl CommitClock {
    pub(super) fn new() -> Self {
        Self {
            commits: Default::default(),
            last_ms: Default::default(),
            epoch: Instant::now(),
        }
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    pub(super) fn committed(&self) {
        use std::sync::atomic::Ordering::Relaxed;
        self.last_ms.store(self.now_ms(), Relaxed);
        self.commits.fetch_add(1, Relaxed);
    }
}

/// Copies the WAL back into the database file on a thread of its own, in quiet moments (or after many
/// commits), so commits — and the acks and deliveries waiting on them — do not pause for its fsyncs.
pub(super) struct Checkpointer {
    stop: std::sync::mpsc::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl Checkpointer {
    pub(super) fn start(path: &str, clock: Arc<CommitClock>) -> Option<Self> {
        use std::sync::atomic::Ordering::Relaxed;
        let conn = Connection::open(path).ok()?;
        configure(&conn).ok()?;
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("natter-checkpoint".into())
            .spawn(move || {
                let (mut done, mut polled) = (0, 0);
                while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                    stopped.recv_timeout(CHECKPOINT_POLL)
                {
                    let commits = clock.commits.load(Relaxed);
                    let quiet = clock.now_ms().saturating_sub(clock.last_ms.load(Relaxed))
                        >= CHECKPOINT_QUIET.as_millis() as u64;
                    let trickle = commits - polled <= CHECKPOINT_TRICKLE
                        && commits - done >= CHECKPOINT_COMMITS;
                    polled = commits;
                    if commits == done || !(quiet || trickle) {
                        continue;
                    }
                    done = commits;
                    let result = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
                    if let Err(e) = result {
                        tracing::warn!("history checkpoint failed: {e}");
                    }
                }
                // A last one on the way out, so the next start finds a short log.
                let _ = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
            })
            .ok()?;
        Some(Self { stop, thread })
    }

    pub(super) fn stop(self) {
        drop(self.stop);
        let _ = self.thread.join();
    }
}
