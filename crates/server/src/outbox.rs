//! A connection's bounded outbox: everyone else pushes, only the connection's own task (its wire) drains.
//!
//! The bound is in bytes (encoded size), not frames, because that is what costs memory. A push that would
//! exceed it does not block and does not grow the queue: the outbox flips to *overflowed*, drops what it
//! held, and wakes the writer, which tells the client `too_slow` and ends the connection (IRC's
//! "SendQ exceeded"). The slow reader hurts only itself.
//!
//! Locking: one short `std::sync::Mutex` per outbox, never held across `.await`. The hub may push while it
//! holds its own lock (hub lock → outbox lock); the writer takes only this lock, so there is no cycle.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use natter_proto::ServerFrame;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// One item of an outbox.
#[derive(Debug)]
pub enum Outgoing {
    /// A server frame encoded once. The same `Arc` goes to every recipient of a broadcast; native
    /// connections write `json`, other front ends render `frame` their own way — and may keep what they
    /// rendered in `cache`, so a broadcast is rendered once per front end, not once per recipient.
    Frame {
        frame: ServerFrame,
        json: Bytes,
        cache: std::sync::OnceLock<Box<dyn std::any::Any + Send + Sync>>,
    },
    /// Human text that only a text front end shows (the plain-text mode's `/help`, usage hints).
    Notice(String),
    /// Bytes written as they are, whatever the front end (the answer to an HTTP request on the chat port).
    Raw(Bytes),
}

impl Outgoing {
    pub fn new(frame: ServerFrame) -> Arc<Self> {
        let json = frame.encode();
        Arc::new(Outgoing::Frame {
            frame,
            json,
            cache: std::sync::OnceLock::new(),
        })
    }

    /// Whether this is a message at or below `watermark` in `room` (any scope when `room` is `None`).
    fn replayed(&self, watermark: u64, room: Option<&str>) -> bool {
        match self {
            Outgoing::Frame {
                frame: ServerFrame::Message(m),
                ..
            } => m.seq <= watermark && room.is_none_or(|r| m.room.as_deref() == Some(r)),
            _ => false,
        }
    }

    /// Bytes this item costs in an outbox.
    pub fn cost(&self) -> usize {
        match self {
            Outgoing::Frame { json, .. } => json.len(),
            Outgoing::Notice(text) => text.len(),
            Outgoing::Raw(bytes) => bytes.len(),
        }
    }
}

/// What the writer should do next.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    /// Write the frames moved into the batch.
    Write,
    /// The outbox overflowed: tell the client `too_slow` and close.
    Overflowed,
    /// Closed and fully drained: flush and close the socket.
    Closed,
}

#[derive(Debug, Default)]
struct Inner {
    queue: VecDeque<Arc<Outgoing>>,
    /// Encoded bytes currently queued.
    bytes: usize,
    /// While a replay is being read, live traffic waits here so it cannot overtake the replay.
    held: Option<VecDeque<Arc<Outgoing>>>,
    held_bytes: usize,
    /// No more pushes are accepted; the writer ends once the queue is empty.
    closed: bool,
    /// A push went over the limit; everything queued was dropped.
    overflowed: bool,
}

#[derive(Debug)]
pub struct Outbox {
    inner: Mutex<Inner>,
    notify: Notify,
    /// Woken whenever the writer takes the queue, for [`Outbox::push_paced`].
    space: Notify,
    /// Maximum queued bytes.
    limit: usize,
    /// Cancelled when the connection must end: on overflow (so a connection stuck in a write to a peer
    /// that stopped reading notices at once), or — for an outbox made [`Outbox::with_parent`] — when the
    /// parent (the server's shutdown) is.
    ended: CancellationToken,
}

impl Outbox {
    pub fn new(limit: usize) -> Arc<Self> {
        Self::with_token(limit, CancellationToken::new())
    }

    /// An outbox whose end token is a child of `parent` (the server's shutdown): cancelled with it too.
    pub fn with_parent(limit: usize, parent: &CancellationToken) -> Arc<Self> {
        Self::with_token(limit, parent.child_token())
    }

    fn with_token(limit: usize, ended: CancellationToken) -> Arc<Self> {
        Arc::new(Self {
            inner: Mutex::new(Inner::default()),
            notify: Notify::new(),
            space: Notify::new(),
            limit,
            ended,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic elsewhere while holding this lock leaves plain data behind; keep going.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a frame. Returns false if the outbox is (or just became) unusable.
    pub fn push(&self, item: Arc<Outgoing>) -> bool {
        self.push_all([&item], false)
    }

    /// Queues a reply to this connection's own request ahead of any held traffic (`welcome` and `users`
    /// during a `hello` or `join`, which come before the replay).
    pub fn reply(&self, frame: ServerFrame) -> bool {
        self.push_ahead(Outgoing::new(frame))
    }

    /// Like [`Outbox::reply`] for an item shared with others.
    pub fn push_ahead(&self, item: Arc<Outgoing>) -> bool {
        self.push_all([&item], true)
    }

    /// Queues several items under one lock, with at most one wake-up of the writer: a delivered batch's
    /// messages for one room reach each member this way. Returns false if the outbox is (or became) unusable.
    pub fn push_many<'a>(&self, items: impl IntoIterator<Item = &'a Arc<Outgoing>>) -> bool {
        self.push_all(items, false)
    }

    /// Every push goes through here: into the held queue during a hold (unless `ahead`), else into the
    /// queue; over the limit, the outbox overflows instead.
    fn push_all<'a>(
        &self,
        items: impl IntoIterator<Item = &'a Arc<Outgoing>>,
        ahead: bool,
    ) -> bool {
        let mut inner = self.lock();
        if inner.closed || inner.overflowed {
            return false;
        }
        let was_empty = inner.queue.is_empty();
        for item in items {
            let len = item.cost();
            if inner.bytes + inner.held_bytes + len > self.limit {
                self.overflow(inner);
                return false;
            }
            match (&mut inner.held, ahead) {
                (Some(held), false) => {
                    held.push_back(item.clone());
                    inner.held_bytes += len;
                }
                _ => {
                    inner.bytes += len;
                    inner.queue.push_back(item.clone());
                }
            }
        }
        let wake = was_empty && !inner.queue.is_empty();
        drop(inner);
        if wake {
            self.notify.notify_one();
        }
        true
    }

    /// Flips to overflowed: drops everything queued and wakes the writer, which ends the connection.
    fn overflow(&self, mut inner: MutexGuard<'_, Inner>) {
        if let Some(m) = crate::metrics::counting() {
            m.overflows.inc();
        }
        inner.overflowed = true;
        inner.queue.clear();
        inner.held = None;
        inner.bytes = 0;
        inner.held_bytes = 0;
        drop(inner);
        self.ended.cancel();
        self.notify.notify_one();
    }

    /// Appends to the queue (the lock is released here) and wakes the writer if it may be idle.
    fn enqueue(&self, mut inner: MutexGuard<'_, Inner>, item: Arc<Outgoing>) {
        let was_empty = inner.queue.is_empty();
        inner.bytes += item.cost();
        inner.queue.push_back(item);
        drop(inner);
        if was_empty {
            self.notify.notify_one();
        }
    }

    /// From now on, hold live pushes back until [`Outbox::release`]; replies pushed with
    /// [`Outbox::push_paced`] go out meanwhile.
    pub fn hold(&self) {
        let mut inner = self.lock();
        if inner.held.is_none() {
            inner.held = Some(VecDeque::new());
        }
    }

    /// Lets the held traffic follow what was pushed during the hold — except messages at or below
    /// `watermark` (of `room`, or of any scope when `room` is `None`): the replay that ends at the watermark
    /// already covered them.
    pub fn release(&self, watermark: u64, room: Option<&str>) {
        let mut inner = self.lock();
        if let Some(mut held) = inner.held.take() {
            held.retain(|item| !item.replayed(watermark, room));
            let held_bytes: usize = held.iter().map(|item| item.cost()).sum();
            let was_empty = inner.queue.is_empty();
            inner.bytes += held_bytes;
            inner.held_bytes = 0;
            inner.queue.extend(held);
            drop(inner);
            if was_empty {
                self.notify.notify_one();
            }
        }
    }

    /// Queues a frame ahead of any held traffic, waiting while the queue is over *half* the limit instead
    /// of overflowing: for long replays, which go out at the pace the client reads them. The other half is
    /// room for the live traffic held behind the replay — a replay that filled the whole outbox made the
    /// next held push overflow and cut a resuming client as `too_slow`.
    ///
    /// A client that makes no room for `stall` is cut as if the outbox had overflowed (`too_slow`): a
    /// replay does not wait for ever on someone who stopped reading.
    pub async fn push_paced(&self, frame: ServerFrame, stall: Option<Duration>) -> bool {
        let item = Outgoing::new(frame);
        let len = item.cost();
        loop {
            let space = self.space.notified();
            tokio::pin!(space);
            space.as_mut().enable();
            {
                let inner = self.lock();
                if inner.closed || inner.overflowed {
                    return false;
                }
                if inner.queue.is_empty() || inner.bytes + inner.held_bytes + len <= self.limit / 2
                {
                    self.enqueue(inner, item);
                    return true;
                }
            }
            match stall {
                Some(stall) => {
                    if tokio::time::timeout(stall, space).await.is_err() {
                        self.overflow(self.lock());
                        return false;
                    }
                }
                None => space.await,
            }
        }
    }

    /// Shorthand for pushing a frame addressed to this connection only.
    pub fn send(&self, frame: ServerFrame) -> bool {
        self.push(Outgoing::new(frame))
    }

    /// Queues a last frame regardless of the limit (`bye`, a final error), then closes.
    pub fn push_last(&self, frame: ServerFrame) {
        self.push_last_item(Outgoing::new(frame));
    }

    /// Like [`Outbox::push_last`] for any item. Held traffic is dropped: the connection is ending.
    pub fn push_last_item(&self, item: Arc<Outgoing>) {
        let mut inner = self.lock();
        if !inner.closed && !inner.overflowed {
            inner.held = None;
            inner.bytes += item.cost();
            inner.queue.push_back(item);
        }
        inner.closed = true;
        drop(inner);
        self.notify.notify_one();
        self.space.notify_waiters();
    }

    /// Accepts no more frames; the writer drains what is queued and ends.
    pub fn close(&self) {
        self.lock().closed = true;
        self.notify.notify_one();
        self.space.notify_waiters();
    }

    pub fn is_overflowed(&self) -> bool {
        self.lock().overflowed
    }

    /// Cancelled when the connection must end (overflow, or its parent: the server's shutdown).
    pub fn ended(&self) -> &CancellationToken {
        &self.ended
    }

    /// Waits for work and moves every queued frame into `batch` (so one wake-up becomes one write).
    pub async fn next(&self, batch: &mut Vec<Arc<Outgoing>>) -> Next {
        loop {
            {
                let mut inner = self.lock();
                if inner.overflowed {
                    return Next::Overflowed;
                }
                if !inner.queue.is_empty() {
                    batch.extend(inner.queue.drain(..));
                    inner.bytes = 0;
                    if inner.queue.capacity() > 64 {
                        inner.queue = VecDeque::new(); // a burst is over: give its memory back
                    }
                    drop(inner);
                    self.space.notify_waiters();
                    return Next::Write;
                }
                if inner.closed {
                    return Next::Closed;
                }
            }
            // notify_one stores a permit when nobody waits, so a push between the check and here is not lost.
            self.notify.notified().await;
        }
    }
}

#[cfg(test)]
impl Outbox {
    /// The frames queued (not held) right now, for tests.
    pub(crate) fn queued_frames(&self) -> Vec<ServerFrame> {
        self.lock()
            .queue
            .iter()
            .filter_map(|item| match &**item {
                Outgoing::Frame { frame, .. } => Some(frame.clone()),
                _ => None,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use natter_proto::frame::ServerFrame;

    fn pong() -> ServerFrame {
        ServerFrame::Pong {
            id: Some("x".into()),
        }
    }

    #[tokio::test]
    async fn drains_everything_in_one_batch() {
        let ob = Outbox::new(1 << 20);
        assert!(ob.send(pong()));
        assert!(ob.send(pong()));
        let mut batch = Vec::new();
        assert_eq!(ob.next(&mut batch).await, Next::Write);
        assert_eq!(batch.len(), 2);
        ob.close();
        assert_eq!(ob.next(&mut batch).await, Next::Closed);
    }

    #[tokio::test]
    async fn overflow_drops_and_reports() {
        let one = Outgoing::new(pong()).cost();
        let ob = Outbox::new(one * 2);
        assert!(ob.send(pong()));
        assert!(ob.send(pong()));
        assert!(!ob.send(pong()));
        assert!(ob.is_overflowed());
        assert!(!ob.send(pong()), "no pushes after overflow");
        let mut batch = Vec::new();
        assert_eq!(ob.next(&mut batch).await, Next::Overflowed);
        assert!(batch.is_empty());
    }

    #[tokio::test]
    async fn held_traffic_follows_the_replay() {
        let ob = Outbox::new(1 << 20);
        ob.hold();
        assert!(ob.send(ServerFrame::Pong {
            id: Some("live".into())
        }));
        assert!(
            ob.push_paced(
                ServerFrame::Pong {
                    id: Some("replay".into())
                },
                None
            )
            .await
        );
        ob.release(0, None);
        let mut batch = Vec::new();
        ob.next(&mut batch).await;
        let ids: Vec<_> = batch
            .iter()
            .map(|o| match &**o {
                Outgoing::Frame {
                    frame: ServerFrame::Pong { id },
                    ..
                } => id.clone().unwrap(),
                _ => unreachable!(),
            })
            .collect();
        assert_eq!(ids, ["replay", "live"]);
    }

    fn message(seq: u64, room: &str) -> Arc<Outgoing> {
        Outgoing::new(ServerFrame::Message(Box::new(
            natter_proto::frame::Message {
                tags: Default::default(),
                notice: false,
                seq,
                ts: "t".into(),
                room: Some(room.into()),
                from: "x".into(),
                to: None,
                text: format!("{room}{seq}"),
                event: None,
                file: None,
            },
        )))
    }

    #[tokio::test]
    async fn release_drops_only_what_the_replay_covered() {
        let ob = Outbox::new(1 << 20);
        ob.hold();
        for item in [
            message(4, "a"),
            message(5, "b"),
            message(6, "a"),
            message(7, "a"),
        ] {
            assert!(ob.push(item));
        }
        assert!(ob.reply(pong()), "replies go ahead of held traffic");
        // The replay of #a went up to seq 6: #a's 4 and 6 were in it; #b's 5 was not.
        ob.release(6, Some("a"));
        let mut batch = Vec::new();
        ob.next(&mut batch).await;
        let seqs: Vec<_> = batch
            .iter()
            .map(|o| match &**o {
                Outgoing::Frame {
                    frame: ServerFrame::Message(m),
                    ..
                } => m.seq,
                _ => 0,
            })
            .collect();
        assert_eq!(seqs, [0, 5, 7]);
        // A hello's replay covers every scope.
        ob.hold();
        assert!(ob.push(message(8, "a")) && ob.push(message(9, "b")) && ob.push(message(10, "b")));
        ob.release(9, None);
        batch.clear();
        ob.next(&mut batch).await;
        assert_eq!(batch.len(), 1);
    }

    #[tokio::test]
    async fn push_many_queues_in_order_held_or_not_and_overflows_like_push() {
        let ob = Outbox::new(1 << 20);
        let items = [message(1, "a"), message(2, "a"), message(3, "a")];
        assert!(ob.push_many(&items[..2]));
        ob.hold();
        assert!(ob.push_many(&items[2..]));
        let mut batch = Vec::new();
        ob.next(&mut batch).await;
        assert_eq!(batch.len(), 2, "the third waits behind the hold");
        ob.release(0, None);
        batch.clear();
        ob.next(&mut batch).await;
        assert_eq!(batch.len(), 1);

        let small = Outbox::new(items[0].cost() * 2);
        assert!(!small.push_many(&items), "three do not fit in two");
        assert!(small.is_overflowed());
        assert_eq!(small.next(&mut batch).await, Next::Overflowed);
    }

    #[tokio::test]
    async fn paced_pushes_wait_for_the_writer() {
        let one = Outgoing::new(pong()).cost();
        let ob = Outbox::new(one * 2);
        assert!(ob.push_paced(pong(), None).await);
        let ob2 = ob.clone();
        let second = tokio::spawn(async move { ob2.push_paced(pong(), None).await });
        tokio::task::yield_now().await;
        assert!(!second.is_finished(), "waits while the queue is full");
        let mut batch = Vec::new();
        ob.next(&mut batch).await;
        assert!(second.await.unwrap());
        assert!(!ob.is_overflowed());
    }

    /// Defect 3 of issue 10: a long replay leaves room for the live traffic held behind it.
    #[tokio::test]
    async fn a_paced_replay_leaves_room_for_held_live_traffic() {
        let one = Outgoing::new(pong()).cost();
        let ob = Outbox::new(one * 4);
        ob.hold();
        assert!(ob.push_paced(pong(), None).await);
        assert!(ob.push_paced(pong(), None).await);
        let ob2 = ob.clone();
        let third = tokio::spawn(async move { ob2.push_paced(pong(), None).await });
        tokio::task::yield_now().await;
        assert!(!third.is_finished(), "the replay waits at half the limit");
        assert!(ob.send(pong()) && ob.send(pong()), "live pushes still fit");
        assert!(!ob.is_overflowed());
        let mut batch = Vec::new();
        ob.next(&mut batch).await;
        assert!(third.await.unwrap());
    }

    #[tokio::test]
    async fn last_frame_goes_out_then_closes() {
        let ob = Outbox::new(1);
        ob.push_last(ServerFrame::Bye {
            reason: natter_proto::frame::ByeReason::Exit,
        });
        assert!(!ob.send(pong()));
        let mut batch = Vec::new();
        assert_eq!(ob.next(&mut batch).await, Next::Write);
        assert_eq!(batch.len(), 1);
        assert_eq!(ob.next(&mut batch).await, Next::Closed);
    }
}
