//! What the store keeps besides messages — memberships, accounts, room rules, blocks — as the stream
//! carries it: one [`Change`] per message on `STREAM.state`, between the chat messages on `STREAM.msg`.
//!
//! Every node applies each change to its read model (and its hub, [`crate::hub::Hub::replicated`]) in
//! stream order, so every node decides the same: of two nodes claiming one name at once, the claim the
//! stream holds first wins everywhere, and each claimer is answered only when its claim comes back from
//! the stream, with what the read model made of it. A command that asks (the rooms a name had joined, an
//! account) waits until this node's earlier changes have come back, so it sees them as on one node.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use serde::{Deserialize, Serialize};
use tokio::sync::{oneshot, Notify};

use natter_proto::{Name, RoomName};

use crate::store::{Account, WriteCmd};

/// One change to what every node's store keeps, as it is kept in the stream (JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum Change {
    /// Folded name; the room as spelled.
    Join {
        name: String,
        room: String,
    },
    /// Folded names.
    Leave {
        name: String,
        room: String,
    },
    Seen {
        name: String,
        seq: u64,
    },
    /// The name as spelled.
    Claim {
        name: String,
        key: [u8; 32],
    },
    SetPassword {
        name: String,
        hash: String,
        claim: bool,
    },
    AddKey {
        name: String,
        key: [u8; 32],
    },
    /// The room's rules as they are after the change (JSON of the hub's `RoomRules`).
    Rules {
        room: String,
        rules: String,
    },
    UsedOnce {
        name: String,
    },
    Forget {
        name: String,
    },
    Block {
        name: String,
        blocked: String,
        on: bool,
    },
    Expire {
        before_ms: i64,
        keep: Vec<String>,
    },
    /// One of `natter admin`'s ([`crate::cluster::publish_admin`]).
    Admin(crate::store::admin::AdminChange),
}

/// Where the answer to a change goes, on the node that made it.
pub(super) enum Reply {
    Account(oneshot::Sender<Option<Account>>),
    Forgotten(oneshot::Sender<bool>),
    Expired(oneshot::Sender<Vec<String>>),
}

impl Change {
    /// The change `cmd` makes and where its answer goes; `Err(cmd)` when it changes nothing shared.
    pub(super) fn of<T>(cmd: WriteCmd<T>) -> Result<(Self, Option<Reply>), Box<WriteCmd<T>>> {
        Ok(match cmd {
            WriteCmd::Join { name, room } => (
                Change::Join {
                    name,
                    room: room.as_str().to_owned(),
                },
                None,
            ),
            WriteCmd::Leave { name, room } => (Change::Leave { name, room }, None),
            WriteCmd::Seen { name, seq } => (Change::Seen { name, seq }, None),
            WriteCmd::Claim {
                name, key, reply, ..
            } => (
                Change::Claim {
                    name: name.as_str().to_owned(),
                    key,
                },
                Some(Reply::Account(reply)),
            ),
            WriteCmd::SetPassword {
                name,
                hash,
                claim,
                reply,
                ..
            } => (
                Change::SetPassword {
                    name: name.as_str().to_owned(),
                    hash,
                    claim,
                },
                Some(Reply::Account(reply)),
            ),
            WriteCmd::AddKey { name, key } => (Change::AddKey { name, key }, None),
            WriteCmd::Rules { room, rules } => (Change::Rules { room, rules }, None),
            WriteCmd::UsedOnce { name } => (Change::UsedOnce { name }, None),
            WriteCmd::Forget { name, reply } => {
                (Change::Forget { name }, Some(Reply::Forgotten(reply)))
            }
            WriteCmd::Block { name, blocked, on } => (Change::Block { name, blocked, on }, None),
            WriteCmd::Expire {
                before_ms,
                keep,
                reply,
            } => (
                Change::Expire { before_ms, keep },
                Some(Reply::Expired(reply)),
            ),
            WriteCmd::Admin(change) => (Change::Admin(change), None),
            other => return Err(Box::new(other)),
        })
    }

    /// The command that applies this change, which the stream holds at `seq`, answering `reply` when
    /// this node made it. `None` for a change that names no valid name or room (not natter's).
    pub(super) fn command<T>(self, seq: u64, reply: Option<Reply>) -> Option<WriteCmd<T>> {
        let name = |raw: &str| Name::new(raw).ok();
        Some(match self {
            Change::Join { name, room } => WriteCmd::Join {
                name,
                room: RoomName::parse_lenient(&room).ok()?,
            },
            Change::Leave { name, room } => WriteCmd::Leave { name, room },
            Change::Seen { name, seq } => WriteCmd::Seen { name, seq },
            Change::Claim { name: raw, key } => WriteCmd::Claim {
                name: name(&raw)?,
                key,
                since: Some(seq),
                reply: account_reply(reply),
            },
            Change::SetPassword {
                name: raw,
                hash,
                claim,
            } => WriteCmd::SetPassword {
                name: name(&raw)?,
                hash,
                claim,
                since: Some(seq),
                reply: account_reply(reply),
            },
            Change::AddKey { name, key } => WriteCmd::AddKey { name, key },
            Change::Rules { room, rules } => WriteCmd::Rules { room, rules },
            Change::UsedOnce { name } => WriteCmd::UsedOnce { name },
            Change::Forget { name } => WriteCmd::Forget {
                name,
                reply: match reply {
                    Some(Reply::Forgotten(r)) => r,
                    _ => oneshot::channel().0,
                },
            },
            Change::Block { name, blocked, on } => WriteCmd::Block { name, blocked, on },
            Change::Expire { before_ms, keep } => WriteCmd::Expire {
                before_ms,
                keep,
                reply: match reply {
                    Some(Reply::Expired(r)) => r,
                    _ => oneshot::channel().0,
                },
            },
            Change::Admin(change) => WriteCmd::Admin(change),
        })
    }
}

/// The answer's way back for a change this node made; one nobody waits for (another node's) otherwise.
fn account_reply(reply: Option<Reply>) -> oneshot::Sender<Option<Account>> {
    match reply {
        Some(Reply::Account(r)) => r,
        _ => oneshot::channel().0,
    }
}

/// This node's changes on their way through the stream.
#[derive(Default)]
pub(super) struct Outstanding {
    state: Mutex<State>,
    /// Told each time a change is handed over (or given up).
    settled: Notify,
}

#[derive(Default)]
struct State {
    /// Numbers given to changes so far.
    made: u64,
    /// By `Nats-Msg-Id`: the change's number and where its answer goes.
    replies: HashMap<String, (u64, Option<Reply>)>,
    /// Changes published and not yet handed to the writer (nor given up).
    open: BTreeSet<u64>,
}

impl Outstanding {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a change about to be published under `msg_id`.
    pub(super) fn add(&self, msg_id: String, reply: Option<Reply>) {
        let mut state = self.state();
        state.made += 1;
        let number = state.made;
        state.open.insert(number);
        state.replies.insert(msg_id, (number, reply));
    }

    /// The change published under `msg_id` has come back from the stream: its number and answer.
    pub(super) fn take(&self, msg_id: &str) -> Option<(u64, Option<Reply>)> {
        self.state().replies.remove(msg_id)
    }

    /// The change `number` has been handed to the writer (or given up): the asks behind it may go.
    pub(super) fn close(&self, number: u64) {
        self.state().open.remove(&number);
        self.settled.notify_waiters();
    }

    /// Gives up the change published under `msg_id` (the stream did not take it): its answer is dropped,
    /// which its asker sees as the store being unavailable.
    pub(super) fn give_up(&self, msg_id: &str) {
        if let Some((number, _)) = self.take(msg_id) {
            self.close(number);
        }
    }

    /// Waits until every change made before this call has been handed to the writer (or given up).
    pub(super) fn caught_up(self: Arc<Self>) -> impl std::future::Future<Output = ()> {
        let upto = self.state().made;
        async move {
            loop {
                let settled = self.settled.notified();
                tokio::pin!(settled);
                settled.as_mut().enable();
                if self.state().open.first().is_none_or(|&n| n > upto) {
                    return;
                }
                settled.await;
            }
        }
    }

    /// Whether nothing this node changed is on its way.
    pub(super) fn idle(&self) -> bool {
        self.state().open.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_change_goes_through_the_stream_and_back_unchanged() {
        let name = Name::new("Ann").unwrap();
        let commands: Vec<WriteCmd<()>> = vec![
            WriteCmd::Join {
                name: "ann".into(),
                room: RoomName::parse_lenient("Rust").unwrap(),
            },
            WriteCmd::Claim {
                name: name.clone(),
                key: [7; 32],
                since: None,
                reply: oneshot::channel().0,
            },
            WriteCmd::Block {
                name: "ann".into(),
                blocked: "bob".into(),
                on: true,
            },
        ];
        for cmd in commands {
            let (change, _) = Change::of(cmd).ok().unwrap();
            let json = serde_json::to_vec(&change).unwrap();
            let back: Change = serde_json::from_slice(&json).unwrap();
            assert_eq!(back, change);
            let cmd: WriteCmd<()> = back.command(9, None).unwrap();
            if let WriteCmd::Claim { since, name, .. } = cmd {
                assert_eq!(
                    since,
                    Some(9),
                    "a claim records its own place in the stream"
                );
                assert_eq!(name.as_str(), "Ann");
            }
        }
        assert!(Change::of(WriteCmd::<()>::Stop).is_err());
    }

    #[tokio::test]
    async fn an_ask_waits_for_the_changes_made_before_it() {
        let outstanding = Arc::new(Outstanding::default());
        outstanding.add("a".into(), None);
        let waiting = tokio::spawn(outstanding.clone().caught_up());
        outstanding.add("b".into(), None); // made after the ask: not waited for
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        let (number, _) = outstanding.take("a").unwrap();
        outstanding.close(number);
        waiting.await.unwrap();
        assert!(!outstanding.idle());
    }
}
