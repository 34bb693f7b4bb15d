//! One connection: a reader task (this module's [`serve`]) and a writer task it spawns.
//!
//! * The reader owns the read half: it decodes frames, decides the front end (native JSON or plain text)
//!   from the first line, and carries out each request with the hub and the store. It never writes the
//!   socket.
//! * The writer owns the write half: it drains the connection's [`Outbox`] — everything queued since its
//!   last wake-up goes out in one write — and is the only code that writes this socket.
//! * They end together: the reader closes the outbox (the writer flushes and sends FIN); a failed write or
//!   an overflowed outbox cancels `conn` (the reader stops and unregisters).
//!
//! Ordering: a connection's requests are handled one at a time, in order. `say`/`whisper` are pipelined
//! through the store's writer (so a fast sender's messages share group commits); before any other request
//! the reader waits for the last one's ack, so replies — `pong` included — never overtake earlier acks.
//! Replays (`hello`, `join`) are read while the outbox is *held*: live traffic waits behind the replay, so a
//! message is never both replayed and delivered live, nor delivered live before the replay.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use natter_proto::frame::{ByeReason, Message};
use natter_proto::{
    ClientFrame, ErrorCode, FrameCodec, FrameError, LeftReason, Name, RoomName, ServerFrame,
};
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{oneshot, Semaphore};
use tokio_util::codec::FramedRead;
use tokio_util::sync::CancellationToken;

use crate::hub::{AppendToken, Hub, Refusal, Registration};
use crate::outbox::{Mode, Next, Outbox, Outgoing};
use crate::plain::{self, Input};
use crate::store::{self, Scope, Store};
use crate::Config;

/// Most messages a resume replays per store read.
const RESUME_CHUNK: usize = 500;

/// Largest `limit` a history page may ask for.
pub const MAX_HISTORY_PAGE: usize = 500;

/// Whether the reader should keep going.
#[derive(PartialEq, Eq)]
enum Flow {
    Continue,
    /// `exit`: say `bye` (already queued) and close.
    Exit,
    /// Close without ceremony (e.g. after answering an HTTP request).
    Close,
    /// Too much before `hello`: disconnect as a flood.
    Flood,
    /// The server is shutting down (noticed while a request was being handled).
    Shutdown,
    /// The connection ended under us (noticed while a request was being handled).
    Ended,
}

/// The answer to an HTTP request sent to the chat port.
const HTTP_ANSWER: &str = "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n\
This is a natter chat server, not a web server: connect with `natter join` or `nc HOST PORT`.\n";

/// Whether a first line is an HTTP request line (`GET / HTTP/1.1`).
fn is_http_request(line: &[u8]) -> bool {
    let Ok(line) = std::str::from_utf8(line) else {
        return false;
    };
    let mut parts = line.split(' ');
    let (Some(method), Some(_target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    method.len() <= 10
        && method.bytes().all(|b| b.is_ascii_uppercase())
        && version.starts_with("HTTP/")
}

/// Flood control: a token bucket. Each frame takes a token; tokens come back at `rate` per second up to
/// `burst`. A frame that finds no token waits (it is not dropped).
#[derive(Debug, Clone)]
pub struct Bucket {
    tokens: f64,
    burst: f64,
    rate: f64,
    last: Instant,
}

impl Bucket {
    pub fn new(burst: u32, rate: f64, now: Instant) -> Self {
        let burst = f64::from(burst.max(1));
        Self {
            tokens: burst,
            burst,
            rate,
            last: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.last = now;
    }

    /// When the next frame may be handled.
    pub fn ready_at(&mut self, now: Instant) -> Instant {
        if self.rate <= 0.0 {
            return now;
        }
        self.refill(now);
        if self.tokens >= 1.0 {
            now
        } else {
            now + Duration::from_secs_f64((1.0 - self.tokens) / self.rate)
        }
    }

    /// Spends a token (call when `ready_at` has come).
    pub fn take(&mut self, now: Instant) {
        if self.rate > 0.0 {
            self.refill(now);
            self.tokens -= 1.0;
        }
    }
}

/// What every session shares.
pub struct Shared {
    pub hub: Arc<Hub>,
    pub store: Store,
    pub config: Arc<Config>,
    /// Messages waiting for the store's writer, server-wide.
    pub appends: Arc<Semaphore>,
}

struct Session {
    shared: Arc<Shared>,
    outbox: Arc<Outbox>,
    peer: SocketAddr,
    /// Set once `hello` succeeded; dropping it unregisters the user (whatever ends the session).
    me: Option<Registration>,
    /// Fires when this connection's latest `say`/`whisper` has been acked (or refused).
    last_append: Option<oneshot::Receiver<()>>,
    /// How long a replay waits for the client to make room before it is cut as `too_slow` (the idle
    /// timeout: a client that reads nothing for that long is gone either way).
    stall: Option<Duration>,
}

/// Serves one accepted connection until it ends. `_admission` holds its place in the connection limits.
pub async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
    _admission: crate::Admission,
) {
    tracing::info!("connection from {peer}");
    let config = shared.config.clone();
    let (read, write) = stream.into_split();
    let outbox = Outbox::new(config.max_outbox);
    let conn = outbox.ended().clone();
    let writer = tokio::spawn(write_loop(write, outbox.clone()));

    let mut session = Session {
        shared,
        outbox,
        peer,
        me: None,
        last_append: None,
        stall: (!config.idle_timeout.is_zero()).then_some(config.idle_timeout),
    };
    // Start small: most connections are idle most of the time, and the buffer grows when needed.
    let mut frames =
        FramedRead::with_capacity(read, FrameCodec::new(config.max_frame), READ_BUFFER);
    let reason = session.run(&mut frames, &config, &conn, &shutdown).await;
    session.leave(reason);
    session.outbox.close();
    let abort = writer.abort_handle();
    if tokio::time::timeout(config.shutdown_grace, writer)
        .await
        .is_err()
    {
        tracing::debug!("{peer}: writer did not finish in time; dropping the connection");
        abort.abort();
        return;
    }
    // Lingering close: the last frames (`bye`, an error) are sent and our FIN is out. Closing now, with
    // the peer's latest bytes unread, would make the kernel answer with a reset — which can destroy
    // those last frames before the peer reads them. So read and discard until the peer closes too.
    let drain = async { while let Some(Ok(_)) = frames.next().await {} };
    let _ = tokio::time::timeout(LINGER, drain).await;
}

/// What a received frame costs while it waits in the receive queue: its bytes and the queue entry
/// itself, so even tiny frames count against `--max-recvq`.
fn queued_cost(item: &Result<Bytes, FrameError>) -> usize {
    std::mem::size_of::<Result<Bytes, FrameError>>() + item.as_ref().map_or(0, |b| b.len())
}

/// The read buffer of a quiet connection: a chat line or two. It grows for bursts and long frames and
/// shrinks back when the connection is idle again.
const READ_BUFFER: usize = 128;

/// A read buffer grown beyond this by a burst is replaced by a [`READ_BUFFER`] one once it is empty.
const READ_BUFFER_KEPT: usize = 4096;

/// How long a closing connection waits for the peer to close its side.
const LINGER: Duration = Duration::from_millis(500);

impl Session {
    /// The reader's loop. Returns how the user left (`None`: quietly, or never registered).
    async fn run(
        &mut self,
        frames: &mut FramedRead<OwnedReadHalf, FrameCodec>,
        config: &Config,
        conn: &CancellationToken,
        shutdown: &CancellationToken,
    ) -> Option<LeftReason> {
        let hello_deadline = Instant::now() + config.hello_timeout;
        // Sniff the first byte: a TLS handshake on the plain port (0x16) is closed at once.
        let mut first = [0u8; 1];
        tokio::select! {
            _ = shutdown.cancelled() => return None,
            _ = tokio::time::sleep_until(hello_deadline.into()) => {
                self.registration_timeout();
                return None;
            }
            peeked = frames.get_mut().peek(&mut first) => match peeked {
                Ok(1..) if first[0] == 0x16 => {
                    tracing::info!("{}: TLS handshake on the plain-text port; closing", self.peer);
                    return None;
                }
                Ok(1..) => {}
                _ => return None,
            }
        }

        let mut recvq: VecDeque<Result<Bytes, FrameError>> = VecDeque::new();
        let mut recvq_bytes = 0usize;
        let mut eof = false;
        let mut bucket = Bucket::new(config.flood_burst, config.flood_rate, Instant::now());
        let mut before_hello = 0usize;
        let mut last_heard = Instant::now();
        let mut pinged = false;
        let idle = config.idle_timeout;
        loop {
            let now = Instant::now();
            let turn = bucket.ready_at(now);
            if !recvq.is_empty() && turn <= now {
                // The next queued frame's turn has come (always, without flood control): handle it.
                bucket.take(now);
                let Some(item) = recvq.pop_front() else {
                    continue;
                };
                recvq_bytes -= queued_cost(&item);
                if self.me.is_none() {
                    before_hello += 1;
                }
                let flow = if before_hello > config.max_frames_before_hello {
                    Flow::Flood
                } else {
                    // Boxed: the request handlers are large futures; kept out of this loop, an idle
                    // connection stays small. A handler can wait — for the client to drain a replay, for
                    // room at the store's writer — so it is raced against the end of the server and of
                    // the connection: no reader is left waiting for something that will not come.
                    let handling = Box::pin(self.handle(item));
                    tokio::select! {
                        flow = handling => flow,
                        _ = shutdown.cancelled() => Flow::Shutdown,
                        _ = conn.cancelled() => Flow::Ended,
                    }
                };
                match flow {
                    Flow::Continue => continue,
                    Flow::Exit => return Some(LeftReason::Exit),
                    Flow::Close => return None,
                    Flow::Shutdown => {
                        self.shut_down().await;
                        return None;
                    }
                    Flow::Ended => return Some(self.ended_reason()),
                    Flow::Flood => {
                        self.outbox.push_last(ServerFrame::error(
                            ErrorCode::ExcessFlood,
                            "too many frames before hello",
                            None,
                        ));
                        return None;
                    }
                }
            }
            if eof && recvq.is_empty() {
                // Everything the peer sent before closing has been handled.
                return Some(LeftReason::Disconnect);
            }
            if recvq.is_empty() {
                // Idle again: hand back what a burst grew, so thousands of quiet connections stay small.
                if recvq.capacity() > 0 {
                    recvq = VecDeque::new();
                }
                // Only a big one: a steady sender's few-KiB buffer stays, or every chunk it sends would be
                // read in small pieces while the buffer grows back.
                let buffer = frames.read_buffer_mut();
                if buffer.is_empty() && buffer.capacity() > READ_BUFFER_KEPT {
                    *buffer = BytesMut::with_capacity(READ_BUFFER);
                }
            }
            // Ping after half the idle time; close after the whole.
            let watch_idle = !idle.is_zero()
                && self.me.is_some()
                && self.outbox.mode().get() == Some(&Mode::Native);
            let idle_at = watch_idle.then(|| last_heard + if pinged { idle } else { idle / 2 });
            let hello_at = self.me.is_none().then_some(hello_deadline);
            // Flood control holds the queue back until the next token.
            let turn_at = (!recvq.is_empty()).then_some(turn);
            // One timer for all three deadlines: a future per connection is memory per connection.
            let wake = [hello_at, idle_at, turn_at].into_iter().flatten().min();
            tokio::select! {
                // In this order: a connection that ended (say, cut as too slow during a replay) must not
                // be reported as timed out because its idle deadline passed meanwhile.
                biased;
                _ = conn.cancelled() => return Some(self.ended_reason()),
                _ = shutdown.cancelled() => {
                    self.shut_down().await;
                    return None;
                }
                _ = tokio::time::sleep_until(wake.unwrap_or(now).into()), if wake.is_some() => {
                    let now = Instant::now();
                    if hello_at.is_some_and(|t| t <= now) {
                        self.registration_timeout();
                        return None;
                    }
                    if idle_at.is_some_and(|t| t <= now) {
                        if pinged {
                            tracing::info!("{}: silent for {idle:?}; closing", self.peer);
                            self.outbox.push_last(ServerFrame::error(ErrorCode::IdleTimeout, "nothing heard from you for too long", None));
                            return Some(LeftReason::Timeout);
                        }
                        pinged = true;
                        self.outbox.send(ServerFrame::Ping { id: Some("idle".into()) });
                    }
                    // Otherwise the flood-control turn came: the loop handles the next frame.
                }
                item = frames.next(), if !eof => match item {
                    None | Some(Err(_)) => eof = true,
                    Some(Ok(item)) => {
                        last_heard = Instant::now();
                        pinged = false;
                        if item.as_ref().is_ok_and(|line| line.iter().all(u8::is_ascii_whitespace)) {
                            // A blank line is a keep-alive: heard, not queued (so it costs no flood token
                            // and no memory; queued, a stream of newlines grew the queue without bound).
                            continue;
                        }
                        recvq_bytes += queued_cost(&item);
                        recvq.push_back(item);
                        if recvq_bytes > config.max_recvq {
                            tracing::info!("{}: flooding; closing", self.peer);
                            self.outbox.mode().get_or_init(|| Mode::Native);
                            self.outbox.push_last(ServerFrame::error(ErrorCode::ExcessFlood, "you are sending too much, too fast", None));
                            return Some(LeftReason::ExcessFlood);
                        }
                    }
                },
            }
        }
    }

    /// The server is stopping: leave quietly and say `bye`.
    async fn shut_down(&mut self) {
        self.settle().await;
        self.leave(None);
        self.outbox.push_last(ServerFrame::Bye {
            reason: ByeReason::Shutdown,
        });
    }

    /// Why a connection that ended under us (writer gone, outbox overflowed) left.
    fn ended_reason(&self) -> LeftReason {
        if self.outbox.is_overflowed() {
            LeftReason::TooSlow
        } else {
            LeftReason::Disconnect
        }
    }

    /// Handles one received item: a line, or a frame that was too long.
    async fn handle(&mut self, item: Result<Bytes, FrameError>) -> Flow {
        match item {
            Err(FrameError::TooLarge { limit }) => {
                self.outbox.mode().get_or_init(|| Mode::Native);
                self.settle().await;
                self.error(
                    ErrorCode::FrameTooLarge,
                    format!("frame longer than {limit} bytes; skipped"),
                    None,
                );
                Flow::Continue
            }
            Ok(line) => self.line(&line).await,
        }
    }

    fn registration_timeout(&self) {
        self.outbox.mode().get_or_init(|| Mode::Native);
        self.outbox.push_last(ServerFrame::error(
            ErrorCode::RegistrationTimeout,
            "no hello in time",
            None,
        ));
    }

    /// Handles one complete line.
    async fn line(&mut self, line: &[u8]) -> Flow {
        if line.iter().all(u8::is_ascii_whitespace) {
            return Flow::Continue; // blank lines are keep-alives, not errors
        }
        if self.outbox.mode().get().is_none() && is_http_request(line) {
            tracing::info!(
                "{}: HTTP request on the chat port; answering and closing",
                self.peer
            );
            self.outbox
                .push_last_item(Arc::new(Outgoing::Raw(Bytes::from_static(
                    HTTP_ANSWER.as_bytes(),
                ))));
            return Flow::Close;
        }
        let mode = *self.outbox.mode().get_or_init(|| {
            if line.trim_ascii_start().first() == Some(&b'{') {
                Mode::Native
            } else {
                Mode::Plain
            }
        });
        match mode {
            Mode::Native => match ClientFrame::parse(line) {
                Ok(frame) => self.dispatch(frame).await,
                Err(bad) => {
                    self.settle().await;
                    self.error(bad.code, bad.message, bad.id);
                    Flow::Continue
                }
            },
            Mode::Plain => match plain::translate(line, self.me.is_some()) {
                Input::Frame(frame) => self.dispatch(frame).await,
                Input::Notice(text) => {
                    self.settle().await;
                    self.outbox.push(Arc::new(Outgoing::Notice(text)));
                    Flow::Continue
                }
                Input::Nothing => Flow::Continue,
            },
        }
    }

    fn error(&self, code: ErrorCode, message: impl Into<String>, id: Option<String>) {
        self.outbox.send(ServerFrame::error(code, message, id));
    }

    fn send(&self, answer: Result<ServerFrame, Refusal>) {
        self.outbox.send(answer.unwrap_or_else(|r| r.frame(None)));
    }

    /// Waits until every earlier `say`/`whisper` of this connection has its ack queued.
    async fn settle(&mut self) {
        if let Some(done) = self.last_append.take() {
            let _ = done.await;
        }
    }

    /// Carries out one request. The first match is the table of what may come before `hello`.
    async fn dispatch(&mut self, frame: ClientFrame) -> Flow {
        let me = match (self.me.as_ref().map(|r| r.name().clone()), frame) {
            (Some(me), ClientFrame::Say { text, room, id }) => {
                self.append(&me, room.as_deref(), None, &text, id).await;
                return Flow::Continue;
            }
            (Some(me), ClientFrame::Whisper { to, text, id }) => {
                self.append(&me, None, Some(&to), &text, id).await;
                return Flow::Continue;
            }
            (name, frame) => {
                self.settle().await;
                match (name, frame) {
                    (_, ClientFrame::Ping { id }) => {
                        self.outbox.send(ServerFrame::Pong { id });
                        return Flow::Continue;
                    }
                    // The answer to our idle ping: hearing it was the point.
                    (_, ClientFrame::Pong { .. }) => return Flow::Continue,
                    (_, ClientFrame::Exit) => {
                        self.leave(Some(LeftReason::Exit));
                        self.outbox.push_last(ServerFrame::Bye {
                            reason: ByeReason::Exit,
                        });
                        return Flow::Exit;
                    }
                    (
                        None,
                        ClientFrame::Hello {
                            name,
                            version,
                            resume_after,
                            lobby,
                        },
                    ) => {
                        self.hello(&name, version, resume_after, lobby).await;
                        return Flow::Continue;
                    }
                    (Some(me), ClientFrame::Hello { .. }) => {
                        self.error(
                            ErrorCode::AlreadyRegistered,
                            format!("you are already registered as {me}"),
                            None,
                        );
                        return Flow::Continue;
                    }
                    (None, frame) => {
                        self.error(
                            ErrorCode::NotRegistered,
                            "send hello first",
                            frame_id(&frame),
                        );
                        return Flow::Continue;
                    }
                    (Some(me), frame) => (me, frame),
                }
            }
        };
        let hub = self.shared.hub.clone();
        match me {
            (me, ClientFrame::Join { room }) => match hub.join(&me, &room) {
                Ok(Some((room, watermark))) => {
                    let tail = self
                        .tail(Scope::Room(room.key().to_owned()), watermark)
                        .await;
                    self.replay_history(Some(room.to_string()), tail).await;
                    self.outbox.release(watermark, Some(&room.to_string()));
                }
                Ok(None) => {}
                Err(refusal) => {
                    self.outbox.send(refusal.frame(None));
                }
            },
            (me, ClientFrame::Leave { room }) => {
                if let Err(refusal) = hub.leave(&me, &room) {
                    self.outbox.send(refusal.frame(None));
                }
            }
            (_, ClientFrame::Who { room }) => self.send(hub.who(room.as_deref())),
            (_, ClientFrame::Rooms) => {
                self.outbox.send(hub.rooms_frame());
            }
            (
                me,
                ClientFrame::History {
                    room,
                    before,
                    limit,
                },
            ) => self.history_page(&me, room, before, limit).await,
            (_, ClientFrame::Say { .. } | ClientFrame::Whisper { .. }) => {
                unreachable!("handled above")
            }
            (
                _,
                ClientFrame::Hello { .. }
                | ClientFrame::Ping { .. }
                | ClientFrame::Pong { .. }
                | ClientFrame::Exit,
            ) => unreachable!("handled above"),
        }
        Flow::Continue
    }

    /// `say` / `whisper`: validate, then hand to the store's writer; the hub acks after the commit.
    async fn append(
        &mut self,
        me: &Name,
        room: Option<&str>,
        to: Option<&str>,
        text: &str,
        id: Option<String>,
    ) {
        let message = match self.shared.hub.prepare(me, room, to, text, id.clone()) {
            Ok(m) => m,
            Err(refusal) => {
                self.settle().await;
                self.outbox.send(refusal.frame(id));
                return;
            }
        };
        let Ok(permit) = self.shared.appends.clone().acquire_owned().await else {
            return;
        };
        let (done, done_rx) = oneshot::channel();
        let token = AppendToken {
            outbox: self.outbox.clone(),
            id,
            done,
            permit,
        };
        match self.shared.hub.submit(message, token) {
            Ok(()) => self.last_append = Some(done_rx),
            Err(token) => {
                self.outbox.send(ServerFrame::error(
                    ErrorCode::ServerError,
                    "the server cannot store messages right now; it was not sent",
                    token.id,
                ));
            }
        }
    }

    /// `hello`: register, then replay — the recent history of each room and of private messages, or with
    /// `resume_after` every message missed since — and only then let live traffic through.
    async fn hello(&mut self, name: &str, version: u32, resume_after: Option<u64>, lobby: bool) {
        if version != natter_proto::VERSION {
            let msg = format!(
                "this server speaks protocol version {}",
                natter_proto::VERSION
            );
            self.error(ErrorCode::UnsupportedVersion, msg, None);
            return;
        }
        let hub = self.shared.hub.clone();
        let registration = match hub.reserve(name, &self.outbox) {
            Ok(r) => r,
            Err(refusal) => {
                self.outbox.send(refusal.frame(None));
                return;
            }
        };
        let me = registration.name().clone();
        self.me = Some(registration);
        let remembered = match hub.remembered_rooms(&me).await {
            Ok(rooms) => rooms,
            Err(e) => {
                tracing::error!("{}: cannot register {me}: {e}", self.peer);
                self.leave(None);
                self.outbox.release(0, None);
                self.error(
                    ErrorCode::ServerError,
                    "the server cannot look up your rooms right now; try again later",
                    None,
                );
                return;
            }
        };
        let registered = hub.seat(&me, remembered, lobby);
        tracing::info!("{} is now {me}", self.peer);
        match resume_after {
            Some(after) => {
                self.resume(&me, &registered.rooms, after, registered.watermark)
                    .await
            }
            None => {
                for room in &registered.rooms {
                    let tail = self
                        .tail(Scope::Room(room.key().to_owned()), registered.watermark)
                        .await;
                    self.replay_history(Some(room.to_string()), tail).await;
                }
                let tail = self
                    .tail(Scope::Private(me.key().to_owned()), registered.watermark)
                    .await;
                self.replay_history(None, tail).await;
            }
        }
        self.outbox.release(registered.watermark, None);
    }

    /// The last `replay` messages of a scope at or below the watermark.
    async fn tail(&self, scope: Scope, watermark: u64) -> Result<Vec<Message>, store::StoreError> {
        let limit = self.shared.config.replay;
        if limit == 0 {
            return Ok(Vec::new());
        }
        self.shared
            .store
            .read(move |conn| store::page(conn, &scope, watermark.saturating_add(1), limit))
            .await
    }

    async fn replay_history(
        &self,
        room: Option<String>,
        messages: Result<Vec<Message>, store::StoreError>,
    ) {
        let frame = match messages {
            Ok(messages) => ServerFrame::History { room, messages },
            Err(e) => {
                tracing::error!("history read failed: {e}");
                ServerFrame::error(ErrorCode::ServerError, "could not read history", None)
            }
        };
        self.outbox.push_paced(frame, self.stall).await;
    }

    /// Replays, in seq order, every message after `after` (up to the watermark) that `me` may see.
    async fn resume(&self, me: &Name, rooms: &[RoomName], after: u64, watermark: u64) {
        let store = &self.shared.store;
        match store.read(store::oldest_seq).await {
            Ok(oldest) => {
                let oldest = oldest.unwrap_or(watermark + 1);
                if after.saturating_add(1) < oldest && after < watermark {
                    self.outbox
                        .push_paced(
                            ServerFrame::Error {
                                code: ErrorCode::HistoryGap,
                                message: format!("history starts at seq {oldest}; messages after {after} before it are gone"),
                                id: None,
                                oldest: Some(oldest),
                            },
                            self.stall,
                        )
                        .await;
                }
            }
            Err(e) => tracing::error!("history read failed: {e}"),
        }
        let keys: Vec<String> = rooms.iter().map(|r| r.key().to_owned()).collect();
        let mut cursor = after;
        while cursor < watermark {
            let (me, keys) = (me.key().to_owned(), keys.clone());
            let chunk = store
                .read(move |conn| store::missed(conn, &me, &keys, cursor, watermark, RESUME_CHUNK))
                .await;
            let chunk = match chunk {
                Ok(chunk) => chunk,
                Err(e) => {
                    tracing::error!("resume read failed: {e}");
                    self.outbox
                        .push_paced(
                            ServerFrame::error(
                                ErrorCode::ServerError,
                                "could not read history",
                                None,
                            ),
                            self.stall,
                        )
                        .await;
                    return;
                }
            };
            let full = chunk.len() == RESUME_CHUNK;
            for message in chunk {
                cursor = message.seq;
                if !self
                    .outbox
                    .push_paced(ServerFrame::Message(message), self.stall)
                    .await
                {
                    return;
                }
            }
            if !full {
                break;
            }
        }
    }

    /// `history`: one page of older messages from a room you are in, or of your private messages.
    async fn history_page(
        &self,
        me: &Name,
        room: Option<String>,
        before: Option<u64>,
        limit: Option<usize>,
    ) {
        let scope = match &room {
            Some(raw) => match RoomName::parse_lenient(raw) {
                Ok(room) if self.shared.hub.is_member(me, &room) => {
                    Scope::Room(room.key().to_owned())
                }
                Ok(room) => {
                    return self.error(
                        ErrorCode::NotInRoom,
                        format!("you are not in #{room}"),
                        None,
                    )
                }
                Err(e) => {
                    return self.error(
                        ErrorCode::InvalidRoom,
                        format!("bad room name {raw:?}: {e}"),
                        None,
                    )
                }
            },
            None => Scope::Private(me.key().to_owned()),
        };
        let before = before.unwrap_or(u64::MAX);
        let limit = limit
            .unwrap_or(self.shared.config.replay.max(1))
            .min(MAX_HISTORY_PAGE);
        let page = self
            .shared
            .store
            .read(move |conn| store::page(conn, &scope, before, limit))
            .await;
        self.replay_history(room, page).await;
    }

    /// Unregisters (once). `None` means quietly: no `left` announcements (server shutdown).
    fn leave(&mut self, reason: Option<LeftReason>) {
        if let Some(me) = self.me.take() {
            let how = reason.map_or("quietly", LeftReason::as_str);
            tracing::info!("{} ({}) left: {how}", me.name(), self.peer);
            me.leave(reason);
        }
    }
}

fn frame_id(frame: &ClientFrame) -> Option<String> {
    match frame {
        ClientFrame::Say { id, .. }
        | ClientFrame::Whisper { id, .. }
        | ClientFrame::Ping { id } => id.clone(),
        _ => None,
    }
}

/// The writer task: drains the outbox into the socket until the outbox closes or the socket fails.
async fn write_loop(mut write: OwnedWriteHalf, outbox: Arc<Outbox>) {
    let mut batch = Vec::new();
    let mut buf = Vec::new();
    loop {
        match outbox.next(&mut batch).await {
            Next::Write => {
                buf.clear();
                let mode = outbox.mode().get().copied();
                for item in batch.drain(..) {
                    render(mode, &item, &mut buf);
                }
                tokio::select! {
                    written = write.write_all(&buf) => if written.is_err() { break },
                    // The peer stopped reading and the outbox filled up meanwhile: give up on it now.
                    _ = outbox.ended().cancelled() => break,
                }
                // Give the buffers back after every write: most connections are idle most of the time,
                // and an allocation is cheap next to the write it serves.
                if buf.capacity() > 512 {
                    buf = Vec::new();
                }
                if batch.capacity() > 8 {
                    batch = Vec::new();
                }
            }
            Next::Overflowed => {
                // Best effort: if the socket has room for one more line, say why we are hanging up.
                let frame = ServerFrame::error(
                    ErrorCode::TooSlow,
                    "you are not reading; disconnecting",
                    None,
                );
                let mut last = Vec::new();
                render(
                    outbox.mode().get().copied(),
                    &Outgoing::new(frame),
                    &mut last,
                );
                let _ = write.try_write(&last);
                break;
            }
            Next::Closed => {
                let _ = write.shutdown().await;
                break;
            }
        }
    }
    outbox.close();
    outbox.end();
}

/// Appends one outbox item as this connection's front end shows it.
fn render(mode: Option<Mode>, item: &Arc<Outgoing>, buf: &mut Vec<u8>) {
    match (mode, &**item) {
        (Some(Mode::Plain), _) => plain::render(item, buf),
        (_, Outgoing::Frame { json, .. }) => buf.extend_from_slice(json),
        (_, Outgoing::Raw(bytes)) => buf.extend_from_slice(bytes),
        (_, Outgoing::Notice(_)) => {} // notices exist only for text front ends
    }
}
