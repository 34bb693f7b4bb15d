//! The message log: the one place that assigns `seq`.
//!
//! The hub calls [`MessageLog::append`] for every chat message *before* fanning it out (append → seq →
//! fan out), so whatever sits behind this trait is the source of truth for ordering. Today that is
//! [`MemoryLog`], a counter; the history issue puts SQLite here, and a cluster mode can put a JetStream
//! stream (whose stream sequence becomes `seq`) behind the same interface.

use jiff::Timestamp;

/// A message about to be logged. Exactly one of `room` and `to` is set.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    pub room: Option<&'a str>,
    pub from: &'a str,
    pub to: Option<&'a str>,
    pub text: &'a str,
}

/// What the log assigned to a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Logged {
    pub seq: u64,
    pub ts: Timestamp,
}

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("message log unavailable: {0}")]
    Unavailable(String),
}

/// Assigns sequence numbers (and, in later implementations, stores messages).
pub trait MessageLog: Send + 'static {
    /// Stores a record and returns its seq and server timestamp. Seqs strictly increase.
    fn append(&mut self, record: Record<'_>) -> Result<Logged, LogError>;
    /// The highest seq assigned so far (0 when none).
    fn last_seq(&self) -> u64;
}

/// Keeps nothing but the counter.
#[derive(Debug, Default)]
pub struct MemoryLog {
    last: u64,
}

impl MessageLog for MemoryLog {
    fn append(&mut self, _record: Record<'_>) -> Result<Logged, LogError> {
        self.last += 1;
        // Millisecond precision: the wire carries milliseconds, so the stored value should too.
        let ts = Timestamp::now()
            .round(jiff::Unit::Millisecond)
            .unwrap_or_else(|_| Timestamp::now());
        Ok(Logged { seq: self.last, ts })
    }

    fn last_seq(&self) -> u64 {
        self.last
    }
}
