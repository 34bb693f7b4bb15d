//! Who is in which room on the other nodes, so a room's member list (`users`, `who`) and its
//! `joined`/`left` announcements are the cluster's, not one node's.
//!
//! Each node publishes, for each of its users, the rooms they are in now, on `STREAM-names.in.<name>`
//! (the names stream keeps the last message of each subject for `NAME_TTL`): at once when they enter or
//! leave a room, in order, and again with every renewal of their name. Each node mirrors the other
//! nodes' users from an ordered consumer (the last message of every subject, then every new one), tells
//! its hub each difference as a [`RemoteMove`], and forgets a user not heard of for `NAME_TTL` — their
//! node died — who then leaves their rooms as disconnected.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream;
use futures::StreamExt;
use serde::{Deserialize, Serialize};

use natter_proto::frame::LeftReason;
use natter_proto::{Name, RoomName};

use super::{Presence, NAME_TTL};

/// One user's rooms, as their node publishes them.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(super) struct InRooms {
    pub node: String,
    /// As they spell it.
    pub name: String,
    /// As spelled.
    pub rooms: Vec<String>,
    /// Why they left the room they left last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<LeftReason>,
}

/// A user of another node entered (`left: None`) or left a room.
#[derive(Debug, Clone)]
pub struct RemoteMove {
    pub name: Name,
    pub room: RoomName,
    pub left: Option<LeftReason>,
}

/// Hands the hub what changed.
pub type MoveSink = Box<dyn Fn(RemoteMove) + Send + Sync>;

impl Presence {
    /// A user of this node entered `room` (`left: None`) or left it: the cluster is told at once.
    pub fn moved(&self, name: &Name, room: &RoomName, left: Option<LeftReason>) {
        let subject = self.rooms_subject_of(name.key());
        let entry = {
            let mut rooms = self.rooms();
            let entry = rooms.entry(subject.clone()).or_insert_with(|| InRooms {
                node: self.node.clone(),
                name: name.as_str().to_owned(),
                ..InRooms::default()
            });
            entry
                .rooms
                .retain(|r| natter_proto::name::fold(r) != room.key());
            match left {
                None => entry.rooms.push(room.as_str().to_owned()),
                Some(reason) => entry.reason = Some(reason),
            }
            let entry = entry.clone();
            if entry.rooms.is_empty() {
                // In no room: nothing more to renew (the last word ages out with the name).
                rooms.remove(&subject);
            }
            entry
        };
        self.send_rooms(subject, &entry);
    }

    /// Publishes every user's rooms again (with the renewal of their names).
    pub(super) fn renew_rooms(&self) {
        let all: Vec<(String, InRooms)> = self
            .rooms()
            .iter()
            .map(|(s, e)| (s.clone(), e.clone()))
            .collect();
        for (subject, entry) in all {
            self.send_rooms(subject, &entry);
        }
    }

    fn send_rooms(&self, subject: String, entry: &InRooms) {
        if let Ok(payload) = serde_json::to_vec(entry) {
            let _ = self.rooms_out.send((subject, payload));
        }
    }

    pub(super) fn rooms_subject_of(&self, name: &str) -> String {
        format!(
            "{}.in.{}",
            self.stream,
            natter_proto::file::hex(name.as_bytes())
        )
    }

    fn rooms(&self) -> std::sync::MutexGuard<'_, HashMap<String, InRooms>> {
        self.rooms.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts mirroring the other nodes' users' rooms into `sink`.
    pub fn watch_rooms(self: &Arc<Self>, sink: MoveSink) {
        tokio::spawn(mirror(Arc::downgrade(self), sink));
    }
}

/// Publishes the rooms messages in the order they were made (one connection: in order).
pub(super) async fn publish_rooms(
    js: jetstream::Context,
    mut out: tokio::sync::mpsc::UnboundedReceiver<(String, Vec<u8>)>,
) {
    while let Some((subject, payload)) = out.recv().await {
        if let Err(e) = js.publish(subject, payload.into()).await {
            tracing::debug!("cannot tell the cluster who is in which room: {e}");
        }
    }
}

/// The other nodes' users: their rooms, and when they were last heard of.
#[derive(Default)]
struct Mirror {
    users: HashMap<String, (InRooms, Instant)>,
}

impl Mirror {
    /// Takes what a node said about a user (on `subject`); returns the moves it makes.
    fn heard(&mut self, subject: &str, said: InRooms, me: &str) -> Vec<RemoteMove> {
        if said.node == me {
            // Ours (perhaps a user who failed over to this node): this node's hub knows them.
            self.users.remove(subject);
            return Vec::new();
        }
        let before = self
            .users
            .remove(subject)
            .map(|(r, _)| r.rooms)
            .unwrap_or_default();
        let moves = diff(&said, &before);
        if !said.rooms.is_empty() {
            self.users
                .insert(subject.to_owned(), (said, Instant::now()));
        }
        moves
    }

    /// Forgets the users not heard of for `NAME_TTL`: they leave their rooms, disconnected.
    fn sweep(&mut self) -> Vec<RemoteMove> {
        let stale: Vec<String> = self
            .users
            .iter()
            .filter(|(_, (_, at))| at.elapsed() > NAME_TTL)
            .map(|(s, _)| s.clone())
            .collect();
        let mut moves = Vec::new();
        for subject in stale {
            if let Some((mut said, _)) = self.users.remove(&subject) {
                let before = std::mem::take(&mut said.rooms);
                said.reason = Some(LeftReason::Disconnect);
                moves.extend(diff(&said, &before));
            }
        }
        moves
    }
}

/// The moves from `before` to what `said` says.
fn diff(said: &InRooms, before: &[String]) -> Vec<RemoteMove> {
    let Ok(name) = Name::new(&said.name) else {
        return Vec::new();
    };
    let fold = natter_proto::name::fold;
    let has = |rooms: &[String], room: &str| rooms.iter().any(|r| fold(r) == fold(room));
    let mut moves = Vec::new();
    for room in before.iter().filter(|r| !has(&said.rooms, r)) {
        if let Ok(room) = RoomName::parse_lenient(room) {
            moves.push(RemoteMove {
                name: name.clone(),
                room,
                left: Some(said.reason.unwrap_or(LeftReason::Leave)),
            });
        }
    }
    for room in said.rooms.iter().filter(|r| !has(before, r)) {
        if let Ok(room) = RoomName::parse_lenient(room) {
            moves.push(RemoteMove {
                name: name.clone(),
                room,
                left: None,
            });
        }
    }
    moves
}

/// Follows the other nodes' rooms messages for as long as the node runs.
async fn mirror(presence: std::sync::Weak<Presence>, sink: MoveSink) {
    let mut mirror = Mirror::default();
    let mut sweep = tokio::time::interval(Duration::from_secs(1));
    loop {
        let Some(p) = presence.upgrade() else { return };
        let (js, client, node) = (p.js.clone(), p.client.clone(), p.node.clone());
        let (stream, filter) = (p.stream.clone(), format!("{}.in.>", p.stream));
        drop(p);
        let consumer = async {
            js.get_stream(&stream)
                .await
                .map_err(|e| e.to_string())?
                .create_consumer(jetstream::consumer::push::OrderedConfig {
                    deliver_subject: client.new_inbox(),
                    filter_subject: filter.clone(),
                    deliver_policy: jetstream::consumer::DeliverPolicy::LastPerSubject,
                    ..Default::default()
                })
                .await
                .map_err(|e| e.to_string())?
                .messages()
                .await
                .map_err(|e| e.to_string())
        };
        let mut messages = match consumer.await {
            Ok(m) => m,
            Err(e) => {
                tracing::debug!("cannot follow who is in which room on other nodes: {e}");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        loop {
            tokio::select! {
                message = messages.next() => {
                    let Some(Ok(message)) = message else { break };
                    if let Ok(said) = serde_json::from_slice::<InRooms>(&message.payload) {
                        mirror.heard(message.subject.as_str(), said, &node).into_iter().for_each(&sink);
                    }
                }
                _ = sweep.tick() => {
                    if presence.strong_count() == 0 {
                        return;
                    }
                    mirror.sweep().into_iter().for_each(&sink);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn said(node: &str, rooms: &[&str], reason: Option<LeftReason>) -> InRooms {
        InRooms {
            node: node.into(),
            name: "Ann".into(),
            rooms: rooms.iter().map(|r| r.to_string()).collect(),
            reason,
        }
    }

    fn moves(m: Vec<RemoteMove>) -> Vec<(String, Option<LeftReason>)> {
        m.into_iter()
            .map(|m| (m.room.as_str().to_owned(), m.left))
            .collect()
    }

    #[test]
    fn what_another_node_says_becomes_joins_and_leaves() {
        let mut mirror = Mirror::default();
        let heard = mirror.heard("s", said("b", &["lobby", "Rust"], None), "a");
        assert_eq!(
            moves(heard),
            [("lobby".into(), None), ("Rust".into(), None)]
        );
        // A renewal changes nothing; leaving one room is one move, with its reason.
        assert!(mirror
            .heard("s", said("b", &["lobby", "rust"], None), "a")
            .is_empty());
        let heard = mirror.heard("s", said("b", &["lobby"], Some(LeftReason::Kicked)), "a");
        assert_eq!(moves(heard), [("rust".into(), Some(LeftReason::Kicked))]);
        // This node's own users are not mirrored.
        assert!(mirror
            .heard("t", said("a", &["lobby"], None), "a")
            .is_empty());
        assert!(mirror.sweep().is_empty(), "heard of just now");
        mirror.users.get_mut("s").unwrap().1 -= NAME_TTL * 2;
        assert_eq!(
            moves(mirror.sweep()),
            [("lobby".into(), Some(LeftReason::Disconnect))]
        );
        assert!(mirror.users.is_empty());
    }
}
