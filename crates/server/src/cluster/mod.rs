//! Cluster mode (`natter serve --cluster nats://…`): several natter nodes share one message log, a NATS
//! JetStream stream, whose sequence is natter's `seq`.
//!
//! The stream stands where SQLite's `seq` counter stands (the seam of [`crate::store`]); each node keeps its
//! SQLite database as a *read model*: every message of the stream, applied in stream order, at the
//! stream's seq and time. So history, replays and resumes are served locally, and every node's history is
//! the same prefix of the stream.
//!
//! **Appending** (the publisher task): a `say` or `whisper` reaching the log is published to
//! `STREAM.msg` with `Nats-Msg-Id` = the sender's folded name and the client's `id` (ids are unique per
//! sender only), so a retry through any node within the stream's duplicate window is stored once. Its
//! sender waits under that id. **Delivering** (the follower task): each node reads the stream once,
//! with an ordered consumer from its read model's last seq, and hands every message, in seq order, to
//! its store's writer as [`WriteCmd::Replicated`], with the senders waiting for it on this node. The
//! writer stores it and the hub fans it out to this node's users and only then acks its sender.
//!
//! So an ack means: the message is in the stream (JetStream acknowledged it, stored on a quorum of the
//! NATS cluster — a consumer never sees a message before that), it is in this node's history, and every
//! recipient connected to *this* node has it queued. Recipients on other nodes get it when their node's
//! follower reads it (PROTOCOL.md, *Cluster mode*).
//!
//! **Changes** — memberships, accounts (claims, passwords, keys, `/forget-me`), room rules, blocks —
//! travel the same stream on `STREAM.state` and are applied by every node in stream order ([`Change`]),
//! so accounts are the cluster's and any node serves anyone. Names online are cluster-wide
//! ([`Presence`]), and so whispers reach users on any node, and so are the rooms each user is in
//! ([`RemoteMove`]). Shared files' bytes are in an object store ([`SharedFiles`]); the nodes present one
//! certificate ([`shared_certificate`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use natter_proto::frame::{RoomEvent, Tags};
use natter_proto::{Name, RoomName};

use crate::store::{NewMessage, Opened, Stored, WriteCmd};

mod changes;
mod files;
mod identity;
mod members;
pub use changes::Change;
use changes::Outstanding;
pub use files::SharedFiles;
pub use identity::shared_certificate;
pub use members::{MoveSink, RemoteMove};

/// How a node finds its cluster (`--cluster`, `--cluster-stream`).
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// NATS servers, e.g. `nats://127.0.0.1:4222` (any of them; the client learns the others).
    pub urls: Vec<String>,
    /// The stream (its subjects are `NAME.>`).
    pub stream: String,
}

/// Why cluster mode could not start.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("--cluster {0}: not a NATS address (use e.g. nats://127.0.0.1:4222)")]
    Address(String),
    #[error("cannot reach NATS at {urls}: {source}")]
    Connect {
        urls: String,
        #[source]
        source: async_nats::ConnectError,
    },
    #[error("NATS at {urls} answered, but JetStream did not (is nats-server running with -js?): {detail}")]
    JetStream { urls: String, detail: String },
    #[error("this node's database has the history up to seq {applied}, but the stream {stream} ends at seq {last}: the database belongs to another stream, or the stream was reset; start the node on an empty --db (it rebuilds from the stream) or give it its own --cluster-stream")]
    Ahead {
        stream: String,
        applied: u64,
        last: u64,
    },
}

/// How long the stream remembers `Nats-Msg-Id`s: a resend within it is stored once, whichever node it
/// goes through (beyond it, the read model's own rule — the sender's last messages — still holds).
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(600);

/// A node's connection to its cluster.
#[derive(Clone)]
pub struct Cluster {
    client: async_nats::Client,
    js: jetstream::Context,
    stream: String,
    urls: String,
    /// The last seq this node's follower handed to its read model.
    applied: Arc<std::sync::atomic::AtomicU64>,
}

impl Cluster {
    /// Connects to NATS and makes sure the stream exists ([`Cluster::replicas`] times). Fails at once
    /// when NATS cannot be reached.
    pub async fn connect(config: &ClusterConfig) -> Result<Self, ClusterError> {
        let cluster = Self::dial(config).await?;
        let stream_config = jetstream::stream::Config {
            name: cluster.stream.clone(),
            subjects: vec![format!("{}.>", cluster.stream)],
            num_replicas: cluster.replicas(),
            duplicate_window: DUPLICATE_WINDOW,
            storage: jetstream::stream::StorageType::File,
            ..Default::default()
        };
        ready(&cluster.urls, || {
            cluster.js.get_or_create_stream(stream_config.clone())
        })
        .await?;
        Ok(cluster)
    }

    /// Refuses a read model that is ahead of the stream (`applied`: its last seq): following the stream
    /// from there would take new messages for ones already applied, and lose them.
    pub async fn check_read_model(&self, applied: u64) -> Result<(), ClusterError> {
        let info = ready(&self.urls, || async {
            let mut stream = self
                .js
                .get_stream(&self.stream)
                .await
                .map_err(|e| e.to_string())?;
            stream
                .info()
                .await
                .map(|i| i.state.last_sequence)
                .map_err(|e| e.to_string())
        })
        .await?;
        match info < applied {
            true => Err(ClusterError::Ahead {
                stream: self.stream.clone(),
                applied,
                last: info,
            }),
            false => Ok(()),
        }
    }

    /// Connects to NATS, making nothing.
    async fn dial(config: &ClusterConfig) -> Result<Self, ClusterError> {
        // For messages: without a password a URL may carry (nats://user:password@host).
        let urls = config
            .urls
            .iter()
            .map(|u| without_credentials(u))
            .collect::<Vec<_>>()
            .join(",");
        let addrs = config
            .urls
            .iter()
            .map(|u| {
                u.parse::<async_nats::ServerAddr>()
                    .map_err(|_| ClusterError::Address(without_credentials(u)))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let client = async_nats::ConnectOptions::new()
            .name("natter")
            .connection_timeout(Duration::from_secs(5))
            .connect(addrs)
            .await
            .map_err(|source| ClusterError::Connect {
                urls: urls.clone(),
                source,
            })?;
        let mut js = jetstream::new(client.clone());
        // A send the stream has not acknowledged within this is answered `server_error` (the client
        // resends it with its id).
        js.set_timeout(Duration::from_secs(3));
        Ok(Self {
            client,
            js,
            stream: config.stream.clone(),
            urls,
            applied: Default::default(),
        })
    }

    /// How many copies a stream of the cluster keeps: 3 on a NATS cluster of three or more servers, 1 on
    /// a single server.
    fn replicas(&self) -> usize {
        if self.client.server_info().connect_urls.len() >= 3 {
            3
        } else {
            1
        }
    }

    /// The subject messages are published on.
    fn subject(&self) -> String {
        format!("{}.msg", self.stream)
    }

    /// The subject changes ([`Change`]) are published on.
    fn changes_subject(&self) -> String {
        format!("{}.state", self.stream)
    }

    /// Puts the stream in front of an opened SQLite store: the hub's commands go to a publisher, which
    /// sends appends and changes to the stream and the rest on to the writer; a follower feeds the
    /// writer the stream's messages and changes from the read model's last seq on. The changes, in
    /// stream order, also come out of the returned receiver, for the hub. Call within the runtime.
    pub fn front<T: Send + 'static>(&self, mut opened: Opened<T>) -> (Opened<T>, Arc<ChangeSink>) {
        let (commands, hub) = mpsc::unbounded_channel();
        let writer = std::mem::replace(&mut opened.commands, commands);
        let ours = Ours {
            messages: Arc::new(Mutex::new(HashMap::new())),
            changes: Arc::default(),
        };
        let changed = Arc::new(ChangeSink::default());
        tokio::spawn(publish(self.clone(), hub, writer.clone(), ours.clone()));
        tokio::spawn(follow(
            self.clone(),
            opened.last_seq + 1,
            Follower {
                writer,
                ours,
                changed: changed.clone(),
            },
        ));
        (opened, changed)
    }
}

/// `url` with any `user:password@` replaced by `***@`, to be shown.
fn without_credentials(url: &str) -> String {
    let start = url.find("://").map_or(0, |i| i + 3);
    match url[start..].find('@') {
        Some(at) => format!("{}***{}", &url[..start], &url[start + at..]),
        None => url.to_owned(),
    }
}

/// Makes a stream, trying again for a while: a NATS cluster that has just started answers "JetStream
/// not ready" until its servers have elected a leader.
async fn ready<F, Fut, T, E>(urls: &str, make: F) -> Result<T, ClusterError>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
    E: std::fmt::Display,
{
    let mut tries = 0;
    loop {
        match make().await {
            Ok(made) => return Ok(made),
            Err(e) if tries >= 40 => {
                return Err(ClusterError::JetStream {
                    urls: urls.to_owned(),
                    detail: e.to_string(),
                })
            }
            Err(_) => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    }
}

/// Senders waiting for their message to come back from the stream, by `Nats-Msg-Id`.
type Waiting<T> = Arc<Mutex<HashMap<String, Vec<T>>>>;

/// What this node has published and waits to see come back from the stream.
struct Ours<T> {
    messages: Waiting<T>,
    changes: Arc<Outstanding>,
}

impl<T> Clone for Ours<T> {
    fn clone(&self) -> Self {
        Self {
            messages: self.messages.clone(),
            changes: self.changes.clone(),
        }
    }
}

/// Where the follower hands what it reads.
struct Follower<T> {
    writer: mpsc::UnboundedSender<WriteCmd<T>>,
    ours: Ours<T>,
    /// The hub, for changes.
    changed: Arc<ChangeSink>,
}

/// Where the follower hands each change for the hub, in stream order, before it reads on (so a message
/// after a change is delivered by a hub that has it). Changes read before the hub is connected wait.
#[derive(Default)]
pub struct ChangeSink(Mutex<Sink>);

enum Sink {
    Waiting(Vec<Change>),
    To(Box<dyn Fn(&Change) + Send + Sync>),
}

impl Default for Sink {
    fn default() -> Self {
        Sink::Waiting(Vec::new())
    }
}

impl ChangeSink {
    /// From now on (and first for the changes waiting), changes go to `apply`.
    pub fn connect(&self, apply: Box<dyn Fn(&Change) + Send + Sync>) {
        let mut sink = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Sink::Waiting(waiting) = &*sink {
            waiting.iter().for_each(&apply);
        }
        *sink = Sink::To(apply);
    }

    fn send(&self, change: Change) {
        match &mut *self.0.lock().unwrap_or_else(|e| e.into_inner()) {
            Sink::Waiting(waiting) => waiting.push(change),
            Sink::To(apply) => apply(&change),
        }
    }
}

/// A message as it is kept in the stream.
#[derive(Serialize, Deserialize)]
struct Entry {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    room: Option<String>,
    from: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    to: Option<String>,
    text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    event: Option<Box<RoomEvent>>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    notice: bool,
    #[serde(default, skip_serializing_if = "Tags::is_empty")]
    tags: Tags,
    /// A shared file (its bytes are in the cluster's object store, [`SharedFiles`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    file: Option<EntryFile>,
}

/// A shared file, as its message in the stream carries it.
#[derive(Serialize, Deserialize)]
struct EntryFile {
    name: String,
    size: u64,
    mime: String,
    sha256: String,
    upload_key: String,
}

impl Entry {
    fn of(m: &NewMessage) -> Self {
        Self {
            room: m.room.as_ref().map(|r| r.as_str().to_owned()),
            from: m.from.as_str().to_owned(),
            to: m.to.as_ref().map(|n| n.as_str().to_owned()),
            text: m.text.clone(),
            id: m.client_id.clone(),
            event: m.event.clone(),
            notice: m.notice,
            tags: m.tags.clone(),
            file: m.file.as_ref().map(|f| EntryFile {
                name: f.name.clone(),
                size: f.size,
                mime: f.mime.clone(),
                sha256: f.sha256.clone(),
                upload_key: f.upload_key.clone(),
            }),
        }
    }

    /// The message again (`None`: not one natter wrote).
    fn message(self) -> Option<NewMessage> {
        Some(NewMessage {
            room: match self.room {
                Some(room) => Some(RoomName::parse_lenient(&room).ok()?),
                None => None,
            },
            from: Name::new(&self.from).ok()?,
            to: match self.to {
                Some(to) => Some(Name::new(&to).ok()?),
                None => None,
            },
            text: self.text,
            client_id: self.id,
            event: self.event,
            // Where the bytes are is each node's own business (its content store, or the bucket).
            file: self.file.map(|f| {
                Box::new(crate::store::NewFile {
                    name: f.name,
                    size: f.size,
                    mime: f.mime,
                    sha256: f.sha256,
                    upload_key: f.upload_key,
                    partial: Default::default(),
                    object: Default::default(),
                })
            }),
            notice: self.notice,
            tags: self.tags,
        })
    }
}

/// The hub's commands: appends and changes to the stream (in order), questions to the writer once this
/// node's earlier changes are back, the rest to the writer.
async fn publish<T: Send + 'static>(
    cluster: Cluster,
    mut hub: mpsc::UnboundedReceiver<WriteCmd<T>>,
    writer: mpsc::UnboundedSender<WriteCmd<T>>,
    ours: Ours<T>,
) {
    let subject = cluster.subject();
    let mut unnamed = 0u64;
    let node = cluster.client.server_info().client_id;
    // Unique to this connection and moment: for what carries no client id.
    let mut fresh_id = || {
        unnamed += 1;
        format!(
            "~{node}/{}/{unnamed}",
            jiff::Timestamp::now().as_nanosecond()
        )
    };
    let waiting = ours.messages;
    while let Some(cmd) = hub.recv().await {
        let (message, token) = match cmd {
            WriteCmd::Append(message, token) => (message, token),
            WriteCmd::Stop => {
                let _ = writer.send(WriteCmd::Stop);
                return;
            }
            other => match Change::of(other) {
                Ok((change, reply)) => {
                    publish_change(&cluster, &ours.changes, change, reply, fresh_id()).await;
                    continue;
                }
                Err(question) if ours.changes.idle() => {
                    if writer.send(*question).is_err() {
                        return;
                    }
                    continue;
                }
                Err(question) => {
                    let (caught_up, writer) = (ours.changes.clone().caught_up(), writer.clone());
                    tokio::spawn(async move {
                        caught_up.await;
                        let _ = writer.send(*question);
                    });
                    continue;
                }
            },
        };
        let msg_id = match &message.client_id {
            Some(id) => format!("{}/{id}", message.from.key()),
            // Without a client id (a room event).
            None => fresh_id(),
        };
        let payload = match serde_json::to_vec(&Entry::of(&message)) {
            Ok(p) => p,
            Err(e) => {
                settle(&writer, message, token, Err(e.to_string()));
                continue;
            }
        };
        lock(&waiting)
            .entry(msg_id.clone())
            .or_default()
            .push(token);
        let acked = send(&cluster, subject.clone(), &msg_id, payload).await;
        // The ack is awaited aside, so the next message is published meanwhile (in order: one connection).
        let (writer, waiting) = (writer.clone(), waiting.clone());
        tokio::spawn(async move {
            let result = match acked.await {
                // Stored: the follower answers the sender when the message comes back in order.
                Ok(ack) if !ack.duplicate => return,
                // A resend the stream recognised: acked with the first copy's seq, not delivered.
                Ok(ack) => Ok(Stored {
                    seq: ack.sequence,
                    ts: natter_proto::time::now_wire(),
                    duplicate: true,
                }),
                Err(e) => {
                    tracing::error!("the cluster's stream did not take a message: {e}");
                    Err(e)
                }
            };
            // Unless the follower has answered it already (it saw the message), answer it here.
            let token = lock(&waiting).get_mut(&msg_id).and_then(|t| t.pop());
            if let Some(token) = token {
                settle(&writer, message, token, result);
            }
        });
    }
}

/// Publishes `payload` on `subject` under `msg_id` (in order: one connection); the returned future is
/// its acknowledgement, to be awaited aside.
async fn send(
    cluster: &Cluster,
    subject: String,
    msg_id: &str,
    payload: Vec<u8>,
) -> impl std::future::Future<Output = Result<jetstream::publish::PublishAck, String>> {
    let mut headers = async_nats::HeaderMap::new();
    headers.insert(async_nats::header::NATS_MESSAGE_ID, msg_id);
    let sent = cluster
        .js
        .publish_with_headers(subject, headers, payload.into())
        .await;
    async move {
        match sent {
            Ok(ack) => ack.await.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// Publishes `payload` on `subject` only if the subject's last message is at `last` (0: it has none):
/// `Ok(Some(seq))` when published at `seq`, `Ok(None)` when the subject has moved on (someone else's).
async fn publish_expecting(
    js: &jetstream::Context,
    subject: &str,
    payload: bytes::Bytes,
    last: u64,
) -> Result<Option<u64>, String> {
    let publish = jetstream::context::Publish::build()
        .payload(payload)
        .expected_last_subject_sequence(last);
    let ack = js
        .send_publish(subject.to_owned(), publish)
        .await
        .map_err(|e| e.to_string())?
        .await;
    match ack {
        Ok(ack) => Ok(Some(ack.sequence)),
        Err(e) if e.to_string().contains("wrong last sequence") => Ok(None),
        Err(e) => Err(e.to_string()),
    }
}

/// `natter admin --cluster`: publishes one of the admin's changes to the cluster's stream, which every
/// node applies to its store and its hub in order. Returns once the stream has it.
pub async fn publish_admin(
    config: &ClusterConfig,
    change: crate::store::admin::AdminChange,
) -> Result<(), ClusterError> {
    let cluster = Cluster::dial(config).await?;
    let failed = |detail: String| ClusterError::JetStream {
        urls: cluster.urls.clone(),
        detail,
    };
    let payload = serde_json::to_vec(&Change::Admin(change)).map_err(|e| failed(e.to_string()))?;
    let msg_id = format!("~admin/{}", jiff::Timestamp::now().as_nanosecond());
    send(&cluster, cluster.changes_subject(), &msg_id, payload)
        .await
        .await
        .map(|_| ())
        .map_err(failed)
}

/// Publishes a change; its answer (if any) waits in `outstanding` until the follower reads it back.
async fn publish_change(
    cluster: &Cluster,
    outstanding: &Arc<Outstanding>,
    change: Change,
    reply: Option<changes::Reply>,
    msg_id: String,
) {
    let payload = match serde_json::to_vec(&change) {
        Ok(p) => p,
        Err(e) => {
            tracing::error!("cannot write a change for the cluster's stream: {e}");
            return;
        }
    };
    outstanding.add(msg_id.clone(), reply);
    let acked = send(cluster, cluster.changes_subject(), &msg_id, payload).await;
    let outstanding = outstanding.clone();
    tokio::spawn(async move {
        if let Err(e) = acked.await {
            tracing::error!("the cluster's stream did not take a change: {e}");
            outstanding.give_up(&msg_id);
        }
    });
}

fn settle<T>(
    writer: &mpsc::UnboundedSender<WriteCmd<T>>,
    message: NewMessage,
    token: T,
    result: Result<Stored, String>,
) {
    let _ = writer.send(WriteCmd::Settled {
        message,
        token,
        result,
    });
}

fn lock<T>(waiting: &Waiting<T>) -> std::sync::MutexGuard<'_, HashMap<String, Vec<T>>> {
    waiting.lock().unwrap_or_else(|e| e.into_inner())
}

/// Reads the stream from `start` on, in order, for as long as the node runs, and hands each message to
/// the writer with the senders waiting for it here.
async fn follow<T: Send + 'static>(cluster: Cluster, start: u64, to: Follower<T>) {
    let mut next = start;
    loop {
        match follow_from(&cluster, next, &to).await {
            Ok(Some(seq)) => next = seq + 1,
            Ok(None) => return, // the writer is gone: the server is stopping
            Err((seq, e)) => {
                next = seq.map_or(next, |s| s + 1);
                tracing::warn!(
                    "reading the cluster's stream at {}: {e}; again shortly",
                    cluster.urls
                );
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    }
}

/// How often the stream's server says "still here" to a node's follower, telling the last delivery it
/// sent. Two missed, or a delivery it sent that never came (its connection to NATS was cut and came back
/// meanwhile), and the follower reads again from where it was.
const FOLLOW_HEARTBEAT: Duration = Duration::from_secs(1);

/// How long the follower waits for a new consumer. A consumer lives on one NATS server, and just after a
/// server died, the cluster still places about one new consumer in three on it, where it never answers
/// (seen with nats-server 2.9: for at least 30 s after a SIGKILL): the follower asks again instead of
/// waiting the client's 10 s for each such one.
const CONSUMER_ANSWER: Duration = Duration::from_secs(2);

/// One consumer from `start`, checked for order as an ordered consumer is: every delivery's consumer
/// sequence is the one after the last, and the one each heartbeat names is the last one here; otherwise
/// something was lost on the way and it starts again from the last seq handed over. (The client
/// library's own ordered consumer does the same, but notices a silent server only after 10 s.)
/// `Ok(None)` when the writer is gone, else the last seq handed over when the consumer failed.
async fn follow_from<T: Send + 'static>(
    cluster: &Cluster,
    start: u64,
    to: &Follower<T>,
) -> Result<Option<u64>, (Option<u64>, String)> {
    let (writer, waiting) = (&to.writer, &to.ours.messages);
    let changes_subject = cluster.changes_subject();
    // Listening before the consumer exists, so its first deliveries have somewhere to go.
    let inbox = cluster.client.new_inbox();
    let mut deliveries = cluster
        .client
        .subscribe(inbox.clone())
        .await
        .map_err(|e| (None, e.to_string()))?;
    let consumer = cluster.js.create_consumer_on_stream(
        jetstream::consumer::push::Config {
            deliver_subject: inbox,
            deliver_policy: jetstream::consumer::DeliverPolicy::ByStartSequence {
                start_sequence: start,
            },
            ack_policy: jetstream::consumer::AckPolicy::None,
            idle_heartbeat: FOLLOW_HEARTBEAT,
            flow_control: true,
            inactive_threshold: Duration::from_secs(60),
            ..Default::default()
        },
        &cluster.stream,
    );
    match tokio::time::timeout(CONSUMER_ANSWER, consumer).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => return Err((None, format!("making a consumer: {e}"))),
        Err(_) => return Err((None, "making a consumer: no answer".into())),
    }
    let mut last = None;
    let mut delivered = 0;
    loop {
        // Two heartbeats missed: the consumer's server is gone (or this connection to it).
        let message = match tokio::time::timeout(2 * FOLLOW_HEARTBEAT, deliveries.next()).await {
            Ok(Some(message)) => message,
            Ok(None) => return Err((last, "the consumer ended".into())),
            Err(_) => return Err((last, "the stream's heartbeats stopped".into())),
        };
        if let Some(status) = message.status {
            // A heartbeat or a flow control request (answered, or the server stops sending).
            if status != async_nats::StatusCode::IDLE_HEARTBEAT {
                return Err((last, format!("the stream said {status}")));
            }
            if let Some(reply) = message.reply {
                let _ = cluster.client.publish(reply, bytes::Bytes::new()).await;
            }
            let told = message
                .headers
                .as_ref()
                .and_then(|h| h.get(async_nats::header::NATS_LAST_CONSUMER))
                .and_then(|v| v.as_str().parse::<u64>().ok());
            if told.is_some_and(|told| told != delivered) {
                return Err((last, "a delivery went missing".into()));
            }
            continue;
        }
        let message = jetstream::Message {
            message,
            context: cluster.js.clone(),
        };
        let info = message.info().map_err(|e| (last, e.to_string()))?;
        if info.consumer_sequence != delivered + 1 {
            return Err((last, "a delivery went missing".into()));
        }
        delivered = info.consumer_sequence;
        let (seq, ts_ms) = (
            info.stream_sequence,
            (info.published.unix_timestamp_nanos() / 1_000_000) as i64,
        );
        last = Some(seq);
        cluster
            .applied
            .store(seq, std::sync::atomic::Ordering::Relaxed);
        let msg_id = message
            .headers
            .as_ref()
            .and_then(|h| h.get(async_nats::header::NATS_MESSAGE_ID))
            .map(|v| v.as_str().to_owned());
        if message.subject.as_str() == changes_subject {
            if !hand_over_change(to, seq, &message.payload, msg_id) {
                return Ok(None);
            }
            continue;
        }
        let Some(entry) = serde_json::from_slice::<Entry>(&message.payload)
            .ok()
            .and_then(Entry::message)
        else {
            tracing::warn!("the cluster's stream holds something that is not a natter message at seq {seq}; skipped");
            continue;
        };
        let tokens = msg_id
            .and_then(|id| lock(waiting).remove(&id))
            .unwrap_or_default();
        let replicated = WriteCmd::Replicated {
            message: entry,
            seq,
            ts_ms,
            tokens,
        };
        if writer.send(replicated).is_err() {
            return Ok(None);
        }
    }
}

/// Hands the change the stream holds at `seq` to the writer (answering its asker, if this node made it)
/// and to the hub. `false` when the writer is gone.
fn hand_over_change<T>(to: &Follower<T>, seq: u64, payload: &[u8], msg_id: Option<String>) -> bool {
    let ours = msg_id.and_then(|id| to.ours.changes.take(&id));
    let (number, reply) = ours.map_or((None, None), |(n, r)| (Some(n), r));
    let change = serde_json::from_slice::<Change>(payload).ok();
    let command = change.clone().and_then(|c| c.command(seq, reply));
    if command.is_none() {
        tracing::warn!(
            "the cluster's stream holds a change this node cannot apply at seq {seq}; skipped"
        );
    }
    let handed = command.is_none_or(|c| to.writer.send(c).is_ok())
        && to.writer.send(WriteCmd::Position(seq)).is_ok();
    if let Some(number) = number {
        to.ours.changes.close(number);
    }
    if let Some(change) = change {
        to.changed.send(change);
    }
    handed
}

/// Names online, cluster-wide: a JetStream stream (`STREAM-names`, one subject per name, one message per
/// subject, messages kept [`NAME_TTL`]). A node takes a name by publishing on its subject with "expected
/// last subject sequence 0" — compare-and-set: of two nodes racing, one succeeds — and keeps it by
/// publishing again every [`HEARTBEAT`], each time expecting its own last message; a node that dies stops
/// renewing, and its names are free again within [`NAME_TTL`]. (A key-value bucket is this same thing;
/// the bucket API of the client library does not speak to the nats-server 2.9 Debian ships.)
pub struct Presence {
    js: jetstream::Context,
    client: async_nats::Client,
    /// This node's users' rooms, by their subject ([`members`]), and the way out for them.
    rooms: Mutex<HashMap<String, members::InRooms>>,
    rooms_out: mpsc::UnboundedSender<(String, Vec<u8>)>,
    /// The node's follower position, for its heartbeats.
    applied: Arc<std::sync::atomic::AtomicU64>,
    /// The names stream.
    stream: String,
    /// This process, as its messages name it.
    node: String,
    /// The names this node holds: how many of its sessions use each, and the seq of its last message.
    held: Mutex<HashMap<String, Held>>,
}

/// A name this node holds, by its subject.
struct Held {
    /// How many of this node's sessions use it.
    sessions: usize,
    /// What its messages say: this node, and the name.
    says: bytes::Bytes,
    /// Its subjects (its own and its look-alikes'), each with the seq of its last message (the next
    /// renewal expects it).
    subjects: Vec<(String, u64)>,
}

/// How often a node renews the names it holds.
pub const HEARTBEAT: Duration = Duration::from_secs(3);

/// How long a name stays taken after its node's last heartbeat.
pub const NAME_TTL: Duration = Duration::from_secs(10);

impl Presence {
    /// Opens (or makes) the names stream and starts renewing this node's names.
    pub async fn open(cluster: &Cluster) -> Result<Arc<Self>, ClusterError> {
        let stream = format!("{}-names", cluster.stream);
        let config = jetstream::stream::Config {
            name: stream.clone(),
            subjects: vec![format!("{stream}.>")],
            max_messages_per_subject: 1,
            max_age: NAME_TTL,
            storage: jetstream::stream::StorageType::Memory,
            num_replicas: cluster.replicas(),
            ..Default::default()
        };
        ready(&cluster.urls, || {
            cluster.js.get_or_create_stream(config.clone())
        })
        .await?;
        let (rooms_out, out) = mpsc::unbounded_channel();
        tokio::spawn(members::publish_rooms(cluster.js.clone(), out));
        let presence = Arc::new(Self {
            js: cluster.js.clone(),
            client: cluster.client.clone(),
            rooms: Mutex::new(HashMap::new()),
            rooms_out,
            applied: cluster.applied.clone(),
            stream,
            node: format!("node-{}", jiff::Timestamp::now().as_nanosecond()),
            held: Mutex::new(HashMap::new()),
        });
        // The node's first heartbeat, acknowledged: a names stream just made (or a NATS cluster just
        // started) takes a moment to elect its leader, and the first sign-ins should not wait for it.
        let subject = format!("{}.node.{}", presence.stream, presence.node);
        let beat = serde_json::to_vec(&presence.beat()).unwrap_or_default();
        ready(&cluster.urls, || async {
            let ack = cluster
                .js
                .publish(subject.clone(), beat.clone().into())
                .await
                .map_err(|e| e.to_string())?;
            ack.await.map_err(|e| e.to_string())
        })
        .await?;
        tokio::spawn(renew(Arc::downgrade(&presence)));
        Ok(presence)
    }

    /// What this node's heartbeat says.
    fn beat(&self) -> NodeBeat {
        NodeBeat {
            node: self.node.clone(),
            users: self.held().len(),
            applied: self.applied.load(std::sync::atomic::Ordering::Relaxed),
        }
    }

    /// Takes `name` for a session of this node: `Ok(false)` when another node has it — or has a name
    /// that looks like it. Two subjects are staked: the name's own (its folded form: the same name
    /// however spelled) and what it looks like ([`natter_proto::name::look_alike_skeleton`] of the
    /// spelling, under `like.`), so `aIice` on one node keeps `alice` off every other.
    pub async fn claim(&self, name: &Name) -> Result<bool, String> {
        let subject = self.subject_of(name.key());
        if let Some(held) = self.held().get_mut(&subject) {
            held.sessions += 1;
            return Ok(true);
        }
        let says = bytes::Bytes::from(format!("{}\n{}", self.node, name.key()));
        let like = self.like_subject_of(name.as_str());
        let Some(seq) = self.stake_anew(&subject, &says).await? else {
            return Ok(false);
        };
        let Some(like_seq) = self.stake_anew(&like, &says).await? else {
            // Someone else's look-alike: the name is not taken after all.
            self.purge(vec![subject]);
            return Ok(false);
        };
        let mut held = self.held();
        match held.get_mut(&subject) {
            // Another of this node's sessions took it meanwhile: it is ours either way.
            Some(held) => held.sessions += 1,
            None => {
                held.insert(
                    subject.clone(),
                    Held {
                        sessions: 1,
                        says,
                        subjects: vec![(subject, seq), (like, like_seq)],
                    },
                );
            }
        }
        Ok(true)
    }

    /// Stakes `subject` if nobody has (`Ok(None)`: someone has). A stream that just lost its leader
    /// answers nothing for a moment: tried again, briefly.
    async fn stake_anew(&self, subject: &str, says: &bytes::Bytes) -> Result<Option<u64>, String> {
        let mut tries = 0;
        loop {
            match publish_expecting(&self.js, subject, says.clone(), 0).await {
                Err(e) if tries < 12 => {
                    tries += 1;
                    tracing::debug!("claiming a name in the cluster: {e}; trying again");
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                done => return done,
            }
        }
    }

    /// Whether `name` is signed in on some node (itself, not a look-alike).
    pub async fn online(&self, name: &Name) -> bool {
        let subject = self.subject_of(name.key());
        match self.js.get_stream(&self.stream).await {
            Ok(stream) => stream
                .get_last_raw_message_by_subject(&subject)
                .await
                .is_ok(),
            Err(_) => false,
        }
    }

    /// A session of this node no longer uses `name`: the last one frees it for the cluster.
    pub fn release(&self, name: &Name) {
        let subject = self.subject_of(name.key());
        let subjects = {
            let mut held = self.held();
            match held.get_mut(&subject) {
                Some(h) if h.sessions > 1 => {
                    h.sessions -= 1;
                    return;
                }
                Some(_) => held.remove(&subject).map(|h| h.subjects),
                None => None,
            }
        };
        if let Some(subjects) = subjects {
            self.purge(subjects.into_iter().map(|(s, _)| s).collect());
        }
    }

    /// Frees `subjects` in the cluster (aside).
    fn purge(&self, subjects: Vec<String>) {
        let (js, stream) = (self.js.clone(), self.stream.clone());
        tokio::spawn(async move {
            if let Ok(stream) = js.get_stream(&stream).await {
                for subject in subjects {
                    let _ = stream.purge().filter(subject).await;
                }
            }
        });
    }

    /// A name's own subject (by its folded form: subjects allow few characters, names are any
    /// language's).
    fn subject_of(&self, folded: &str) -> String {
        format!(
            "{}.{}",
            self.stream,
            natter_proto::file::hex(folded.as_bytes())
        )
    }

    /// The subject of what a name looks like.
    fn like_subject_of(&self, spelled: &str) -> String {
        let skeleton = natter_proto::name::look_alike_skeleton(spelled);
        format!(
            "{}.like.{}",
            self.stream,
            natter_proto::file::hex(skeleton.as_bytes())
        )
    }

    fn held(&self) -> std::sync::MutexGuard<'_, HashMap<String, Held>> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What a node says of itself every [`HEARTBEAT`] (on `STREAM-names.node.ID`), for `natter cluster
/// status`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeBeat {
    pub node: String,
    /// Names signed in on it.
    pub users: usize,
    /// The last seq its read model has.
    pub applied: u64,
}

/// Renews every name this node holds, and says the node is alive, every [`HEARTBEAT`], for as long as
/// the node runs.
/// How many renewals a node has on their way at once.
const RENEW_IN_FLIGHT: usize = 256;

async fn renew(presence: std::sync::Weak<Presence>) {
    let mut first = true;
    loop {
        if !std::mem::take(&mut first) {
            tokio::time::sleep(HEARTBEAT).await;
        }
        let Some(presence) = presence.upgrade() else {
            return;
        };
        if let Ok(payload) = serde_json::to_vec(&presence.beat()) {
            let subject = format!("{}.node.{}", presence.stream, presence.node);
            let _ = presence.js.publish(subject, payload.into()).await;
        }
        presence.renew_rooms();
        // (the name's key in `held`, which of its subjects, the subject, what it says, its last seq)
        let held: Vec<(String, usize, String, bytes::Bytes, u64)> = presence
            .held()
            .iter()
            .flat_map(|(key, h)| {
                h.subjects
                    .iter()
                    .enumerate()
                    .map(|(i, (s, seq))| (key.clone(), i, s.clone(), h.says.clone(), *seq))
            })
            .collect();
        // Many at once (one after the other, 19,000 names would take longer than their time to live).
        let presence = &presence;
        let mut renewed = futures::stream::iter(held)
            .map(|(key, i, subject, says, last)| async move {
                (
                    key,
                    i,
                    publish_expecting(&presence.js, &subject, says, last).await,
                )
            })
            .buffer_unordered(RENEW_IN_FLIGHT);
        while let Some((key, i, staked)) = renewed.next().await {
            match staked {
                Ok(Some(seq)) => {
                    let mut held = presence.held();
                    if let Some((_, last)) = held.get_mut(&key).and_then(|h| h.subjects.get_mut(i))
                    {
                        *last = seq;
                    }
                }
                Ok(None) => tracing::warn!("a name this node held was taken by another node"),
                Err(e) => tracing::warn!("cannot renew a name in the cluster: {e}"),
            }
        }
    }
}

/// A cluster at a glance (`natter cluster status`).
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub stream: String,
    pub messages: u64,
    pub first_seq: u64,
    pub last_seq: u64,
    /// The NATS server leading the stream, and the others: (name, current, how far behind).
    pub leader: Option<String>,
    pub replicas: Vec<(String, bool, Option<u64>)>,
    /// Nodes heard from within the last [`NAME_TTL`].
    pub nodes: Vec<NodeBeat>,
    /// Names online, cluster-wide.
    pub names: usize,
}

/// Asks the cluster's NATS how the cluster is doing: the stream, the nodes' heartbeats, the names.
pub async fn status(config: &ClusterConfig) -> Result<Status, ClusterError> {
    // Only asks: a mistyped stream name is an error, not a new stream.
    let cluster = Cluster::dial(config).await?;
    let failed = |e: &dyn std::fmt::Display| ClusterError::JetStream {
        urls: cluster.urls.clone(),
        detail: e.to_string(),
    };
    let mut stream = cluster
        .js
        .get_stream(&cluster.stream)
        .await
        .map_err(|e| failed(&e))?;
    let info = stream.info().await.map_err(|e| failed(&e))?.clone();
    let names_stream = format!("{}-names", cluster.stream);
    let mut names = cluster
        .js
        .get_stream(&names_stream)
        .await
        .map_err(|e| failed(&e))?;
    let held = names.info().await.map_err(|e| failed(&e))?.state.messages;
    // The last message of every subject: one per name, one per node.
    // By subject: renewals arriving while this reads deliver a subject again.
    let mut nodes = HashMap::new();
    let mut online = std::collections::HashSet::new();
    if held > 0 {
        let consumer = names
            .create_consumer(jetstream::consumer::push::Config {
                deliver_subject: cluster.client.new_inbox(),
                filter_subject: format!("{names_stream}.>"),
                deliver_policy: jetstream::consumer::DeliverPolicy::LastPerSubject,
                ack_policy: jetstream::consumer::AckPolicy::None,
                ..Default::default()
            })
            .await
            .map_err(|e| failed(&e))?;
        let mut messages = consumer.messages().await.map_err(|e| failed(&e))?;
        let node_subjects = format!("{names_stream}.node.");
        let rooms_subjects = format!("{names_stream}.in.");
        let like_subjects = format!("{names_stream}.like.");
        let read = async {
            let mut seen = 0;
            while let Some(Ok(message)) = messages.next().await {
                if message.subject.as_str().starts_with(&node_subjects) {
                    if let Ok(beat) = serde_json::from_slice::<NodeBeat>(&message.payload) {
                        nodes.insert(beat.node.clone(), beat);
                    }
                } else if !message.subject.as_str().starts_with(&rooms_subjects)
                    && !message.subject.as_str().starts_with(&like_subjects)
                {
                    online.insert(message.subject.to_string());
                }
                seen += 1;
                if message.info().map_or(true, |i| i.pending == 0) || seen >= held {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(15), read).await;
    }
    let mut nodes: Vec<NodeBeat> = nodes.into_values().collect();
    nodes.sort_by(|a, b| a.node.cmp(&b.node));
    let cluster_info = info.cluster.clone().unwrap_or_default();
    Ok(Status {
        stream: cluster.stream.clone(),
        messages: info.state.messages,
        first_seq: info.state.first_sequence,
        last_seq: info.state.last_sequence,
        leader: cluster_info.leader,
        replicas: cluster_info
            .replicas
            .into_iter()
            .map(|p| (p.name, p.current, p.lag))
            .collect(),
        nodes,
        names: online.len(),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn credentials_in_a_url_are_never_shown() {
        use super::without_credentials as shown;
        assert_eq!(
            shown("nats://u:secret@10.0.0.1:4222"),
            "nats://***@10.0.0.1:4222"
        );
        assert_eq!(shown("nats://10.0.0.1:4222"), "nats://10.0.0.1:4222");
        assert_eq!(shown("tok@host:4222"), "***@host:4222");
    }
}
