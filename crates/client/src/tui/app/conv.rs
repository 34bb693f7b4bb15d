//! Conversations: a room or a private exchange, and the entries (messages, notes) shown in each.

use std::collections::VecDeque;

use jiff::Timestamp;

/// Most entries kept per conversation; older ones are dropped so memory stays bounded.
pub const SCROLLBACK: usize = 10_000;

/// A conversation: a room, or private messages with one person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConvKey {
    Room(String),
    Private(String),
}

impl ConvKey {
    pub fn label(&self) -> String {
        match self {
            ConvKey::Room(r) => format!("#{r}"),
            ConvKey::Private(p) => format!("@{p}"),
        }
    }

    pub(super) fn is(&self, other: &ConvKey) -> bool {
        match (self, other) {
            (ConvKey::Room(a), ConvKey::Room(b)) | (ConvKey::Private(a), ConvKey::Private(b)) => {
                natter_proto::name::fold(a) == natter_proto::name::fold(b)
            }
            _ => false,
        }
    }
}

/// Where one of your messages stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendState {
    Pending,
    Sent,
    Failed(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    Message {
        from: String,
        text: String,
        own: bool,
        state: SendState,
        /// Mentions your name.
        mention: bool,
    },
    /// Joins and leaves: shown dimmed. `dropped` names someone whose connection dropped (not a leave or
    /// an exit of theirs), so their return can replace this line.
    Presence {
        text: String,
        dropped: Option<String>,
    },
    /// A shared file: `alice shared report.pdf (2.4 MiB) — /get 17`.
    File {
        from: String,
        info: natter_proto::file::FileInfo,
    },
    Info(String),
    Error(String),
}

/// One line (before wrapping) of a conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub seq: Option<u64>,
    pub ts: Option<Timestamp>,
    pub kind: EntryKind,
    /// For your own messages: the runner's handle until the session assigns an id, then the id.
    pub(super) local: Option<u64>,
    pub(super) id: Option<String>,
}

impl Entry {
    pub(super) fn new(kind: EntryKind) -> Self {
        Self {
            seq: None,
            ts: Some(Timestamp::now()),
            kind,
            local: None,
            id: None,
        }
    }

    /// Something that happened on the server at `ts` (a join or leave): it sorts among messages by time.
    pub(super) fn at(kind: EntryKind, ts: &str) -> Self {
        Self {
            ts: natter_proto::time::parse(ts).or_else(|| Some(Timestamp::now())),
            ..Self::new(kind)
        }
    }
}

#[derive(Debug, Clone)]
pub struct Conv {
    pub key: ConvKey,
    pub entries: VecDeque<Entry>,
    pub unread: usize,
    pub mention: bool,
    /// For rooms: who is in it, as the server last said.
    pub members: Vec<String>,
    /// For rooms: which members are operators (shown `@name`).
    pub ops: Vec<String>,
    /// For rooms: the topic, shown above the conversation.
    pub topic: Option<String>,
}

impl Conv {
    pub(super) fn new(key: ConvKey) -> Self {
        Self {
            key,
            entries: VecDeque::new(),
            unread: 0,
            mention: false,
            members: Vec::new(),
            ops: Vec::new(),
            topic: None,
        }
    }

    pub(super) fn push(&mut self, entry: Entry) {
        self.entries.push_back(entry);
        while self.entries.len() > SCROLLBACK {
            self.entries.pop_front();
        }
    }

    /// Adds a message from the server in seq order; false if it was already there.
    pub(super) fn insert_message(&mut self, entry: Entry) -> bool {
        let Some(seq) = entry.seq else {
            self.push(entry);
            return true;
        };
        // Fast path: newer than every message here (the usual case for live traffic). It still goes
        // before joins and leaves that happened after it — a replay arrives after the join notice it
        // precedes.
        if self
            .entries
            .iter()
            .rev()
            .find_map(|e| e.seq)
            .is_none_or(|last| last < seq)
        {
            let later = self
                .entries
                .iter()
                .rev()
                .take_while(|e| {
                    e.seq.is_none()
                        && matches!(e.kind, EntryKind::Presence { .. })
                        && e.ts.zip(entry.ts).is_some_and(|(p, m)| p > m)
                })
                .count();
            if later == 0 {
                self.push(entry);
            } else {
                let at = self.entries.len() - later;
                self.entries.insert(at, entry);
                while self.entries.len() > SCROLLBACK {
                    self.entries.pop_front();
                }
            }
            return true;
        }
        if self.entries.iter().any(|e| e.seq == Some(seq)) {
            return false;
        }
        // Usually the newest: scan from the back for the place.
        let at = self
            .entries
            .iter()
            .rposition(|e| e.seq.is_some_and(|s| s < seq))
            .map(|i| i + 1)
            .unwrap_or_else(|| {
                if self.entries.iter().any(|e| e.seq.is_some()) {
                    0
                } else {
                    self.entries.len()
                }
            });
        self.entries.insert(at, entry);
        while self.entries.len() > SCROLLBACK {
            self.entries.pop_front();
        }
        true
    }

    pub(super) fn oldest_seq(&self) -> Option<u64> {
        self.entries.iter().filter_map(|e| e.seq).min()
    }
}
