//! One connection: one task (this module's [`serve`]) that reads and writes.
//!
//! * Reading: it decodes frames, picks the front end from the first line ([`crate::frontend::pick`]), and
//!   carries out each request with the hub and the message log.
//! * Writing: the connection's [`Wire`] ([`writer`]) owns the write half and drains the connection's
//!   [`Outbox`] — rendered by the front end, as few writes as the socket takes — as one more branch of
//!   the same `select!` (also while a request is being handled: a replay waits for the client to drain).
//!   One task instead of a reader and a writer is about 0.4 KiB less per idle connection.
//! * The end: the outbox is closed, the wire sends what is left and FIN, the connection lingers; a failed
//!   write, an overflowed outbox or the server's shutdown ends the loop at once.
//!
//! Ordering: a connection's requests are handled one at a time, in order. `say`/`whisper` are pipelined
//! through the store's writer (so a fast sender's messages share group commits); before any other request
//! the reader waits for the last one's ack, so replies — `pong` included — never overtake earlier acks.
//! Replays ([`replay`]) are read while the outbox is *held*: live traffic waits behind the replay, so a
//! message is never both replayed and delivered live, nor delivered live before the replay.
//!
//! The session is generic over its [`Transport`]; [`serve`] takes an accepted TCP connection, sniffs its
//! first byte ([`crate::transport::sniff`]) and runs [`serve_stream`].

mod flood;
mod replay;
mod writer;

use writer::Wire;

pub use flood::Bucket;
pub use replay::MAX_HISTORY_PAGE;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use natter_proto::frame::ByeReason;
use natter_proto::{ClientFrame, ErrorCode, FrameCodec, FrameError, LeftReason, Name, ServerFrame};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::{oneshot, Semaphore};
use tokio_util::codec::FramedRead;
use tokio_util::sync::CancellationToken;

use crate::frontend::{self, FrontEnd, Input, Picked};
use crate::hub::{AppendToken, Hub, Refusal, Registration};
use crate::outbox::{Outbox, Outgoing};
use crate::store::History;
use crate::transport::{Sniffed, Transport};
use crate::Config;

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

/// What every session shares.
pub struct Shared {
    pub hub: Arc<Hub>,
    pub history: Arc<dyn History>,
    /// The settings: swapped whole when SIGHUP reloads the live ones ([`Shared::reload`]).
    pub settings: std::sync::RwLock<Arc<Config>>,
    /// How many times the settings were reloaded: a session compares it to notice a change cheaply.
    pub reloads: std::sync::atomic::AtomicU64,
    /// Messages waiting for the store's writer, server-wide.
    pub appends: Arc<Semaphore>,
    /// Password hashing and the throttling of wrong guesses.
    pub passwords: crate::passwords::Passwords,
    /// When the server started, and its open connections by front end, for `status`.
    pub started: Instant,
    pub connections: std::sync::Mutex<std::collections::BTreeMap<&'static str, usize>>,
    /// Shared files (`None`: this server keeps none).
    pub files: Option<Arc<crate::files::Files>>,
    /// What IRC users said about themselves (username, real name, away).
    pub irc: frontend::irc::Directory,
    /// Cluster mode: names online anywhere in the cluster.
    pub presence: Option<Arc<crate::cluster::Presence>>,
}

/// Which listener a connection came in on: its first line picks the front end (the chat port), or the
/// listener does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The chat port: native JSON, plain text, a file transfer (or TLS first).
    Chat,
    /// `--irc`: IRC (or TLS first).
    Irc,
    /// `--lab`: the lab's own client, bridged to a session by [`crate::lab`].
    Lab,
}

impl Shared {
    /// Takes `new`'s live settings ([`crate::LIVE_KEYS`]) and logs each change.
    pub fn reload(&self, new: &Config) {
        let mut config = Config::clone(&self.config());
        let changed = config.take_live(new);
        if changed.is_empty() {
            tracing::info!(
                event = "reloaded",
                "reloaded the settings: no live setting changed"
            );
            return;
        }
        self.hub.set_limits(crate::hub::HubConfig {
            max_text: config.max_text,
            max_rooms: config.max_rooms,
            announce_limit: config.announce_limit,
        });
        *self.settings.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(config);
        self.reloads
            .fetch_add(1, std::sync::atomic::Ordering::Release);
        for change in &changed {
            tracing::info!(event = "reloaded", "changed {change}");
        }
        tracing::info!(
            event = "reloaded",
            "reloaded the settings: {} changed",
            changed.len()
        );
    }

    /// The settings now.
    pub fn config(&self) -> Arc<Config> {
        self.settings
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Counts a connection in (`+1`) or out (`-1`) under its front end.
    fn count(&self, front: &'static str, delta: isize) {
        let mut counts = self.connections.lock().unwrap_or_else(|e| e.into_inner());
        let n = counts.entry(front).or_default();
        *n = n.saturating_add_signed(delta);
    }

    /// The `status` answer.
    pub(crate) fn status(&self) -> ServerFrame {
        let connections = self
            .connections
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(k, n)| (k.to_string(), *n))
            .collect();
        let db_bytes = match &self.config().db {
            crate::store::DbPath::File(path) => {
                let size = |p: std::path::PathBuf| std::fs::metadata(p).map_or(0, |m| m.len());
                let wal = std::path::PathBuf::from(format!("{}-wal", path.display()));
                Some(size(path.clone()) + size(wal))
            }
            crate::store::DbPath::Memory => None,
        };
        let (users, rooms, last_seq) = self.hub.counts();
        ServerFrame::Status {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            uptime_s: self.started.elapsed().as_secs(),
            connections,
            users,
            rooms,
            last_seq,
            db_bytes,
            last_error: crate::metrics::last_error(),
        }
    }
}

/// What a session holds aside between frames. (Boxed whole in the session, so the variants' sizes do
/// not matter to an idle connection.)
#[allow(clippy::large_enum_variant)]
enum Aside {
    /// A `hello` with a key, waiting for its `prove`.
    Prove(replay::PendingHello),
    /// The connection's first line asked for a file transfer: it is handed to [`crate::files::transfer`].
    Transfer(natter_proto::file::DataRequest),
}

struct Session {
    shared: Arc<Shared>,
    outbox: Arc<Outbox>,
    peer: SocketAddr,
    /// Picked by the first line (in [`Session::pick`]).
    front: Option<Box<dyn FrontEnd>>,
    /// Set once `hello` succeeded; dropping it unregisters the user (whatever ends the session).
    me: Option<Registration>,
    /// Whether it ever registered (for the metrics: a connection that never did ends `unregistered`).
    registered: bool,
    /// Fires when this connection's latest `say`/`whisper` has been acked (or refused).
    last_append: Option<oneshot::Receiver<()>>,
    /// A `hello` with a key waiting for its `prove`, or the transfer a connection's first line asked for.
    /// (One boxed field for both: every idle connection carries it.)
    pending: Option<Box<Aside>>,
    /// The connection is TLS: passwords may cross it.
    secure: bool,
    kind: Kind,
}

/// Serves one accepted TCP connection until it ends. `admission` holds its place in the connection limits.
/// (Not an `async fn` of its own: a wrapper future would keep a second copy of every argument for the
/// connection's whole life.)
pub fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
    admission: crate::Admission,
    kind: Kind,
) -> impl std::future::Future<Output = ()> + Send {
    tracing::info!("connection from {peer}");
    serve_stream(
        stream,
        peer,
        shared,
        shutdown,
        Instant::now(),
        (false, kind),
        admission,
    )
}

/// The TLS handshake, then the session over it — all on the heap, so that the plain-text connections'
/// future (most of what an idle connection costs) is not sized for TLS's.
#[allow(clippy::too_many_arguments)]
fn serve_tls(
    stream: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
    accepted: Instant,
    kind: Kind,
    admission: impl Send + 'static,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
    Box::pin(async move {
        let Some(tls) = shared.config().tls.clone() else {
            tracing::info!("{peer}: TLS handshake, but TLS is off; closing");
            return;
        };
        let deadline = accepted + shared.config().hello_timeout;
        let handshake = tokio::time::timeout_at(deadline.into(), tls.acceptor.accept(stream));
        match handshake.await {
            Ok(Ok(secure)) => {
                let stream = crate::transport::Stream(secure);
                serve_stream(
                    stream,
                    peer,
                    shared,
                    shutdown,
                    accepted,
                    (true, kind),
                    admission,
                )
                .await
            }
            Ok(Err(e)) => tracing::info!("{peer}: TLS handshake failed: {e}"),
            Err(_) => tracing::info!("{peer}: TLS handshake timed out"),
        }
    })
}

/// Whether `peer` is this machine (a loopback address, unless a test says otherwise).
pub(crate) fn is_this_machine(peer: &SocketAddr, config: &Config) -> bool {
    peer.ip().is_loopback() && Some(peer.ip()) != config.remote_loopback
}

/// Serves one connection over any transport until it ends. `accepted` starts the hello deadline; `via`:
/// whether the stream is TLS already, and which listener it came from; `_hold` is kept until the end (a
/// place in the connection limits).
///
/// Memory: this future is most of what an idle connection costs, so what only happens at its start
/// (sniffing) or end (flushing, lingering) is kept out of the long-lived state where it can be.
#[allow(clippy::too_many_arguments)]
pub async fn serve_stream<T: Transport>(
    stream: T,
    peer: SocketAddr,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
    accepted: Instant,
    via: (bool, Kind),
    _hold: impl Send + 'static,
) {
    let (secure, kind) = via;
    let config = shared.config().clone();
    if !secure {
        // Boxed: its timer and peek live on the heap only until the first byte.
        let sniffed =
            Box::pin(stream.sniff(accepted + config.hello_timeout, config.lang, &shutdown)).await;
        match sniffed {
            Sniffed::Clear if config.require_tls && !is_this_machine(&peer, &config) => {
                tracing::info!(event = "refused", reason = "tls_required", peer = %peer, "{peer}: plain text from another machine (--require-tls); closing");
                crate::metrics::refused("tls_required");
                let refusal = ServerFrame::error(ErrorCode::TlsRequired, Default::default(), None);
                stream.refuse(&refusal.encode());
                return;
            }
            Sniffed::Clear => {}
            Sniffed::Tls => {
                if let Some(tcp) = stream.into_tcp() {
                    serve_tls(tcp, peer, shared, shutdown, accepted, kind, _hold).await;
                }
                return;
            }
            Sniffed::Gone => return,
        }
    }
    let (read, write) = stream.split();
    // The connection's token: cancelled when the server shuts down (its parent), when the writer stops, or
    // when the outbox overflows — one thing for the reader to wait on.
    let outbox = Outbox::with_parent(config.max_outbox, &shutdown);
    let conn = outbox.ended().clone();
    let mut wire = Wire::new(write);
    let mut session = Session {
        shared,
        outbox,
        peer,
        front: None,
        me: None,
        registered: false,
        last_append: None,
        pending: None,
        secure,
        kind,
    };
    // Start small: most connections are idle most of the time, and the buffer grows when needed.
    let mut frames =
        FramedRead::with_capacity(read, FrameCodec::new(config.max_frame), READ_BUFFER);
    session.fix_front(&mut wire);
    let reason = session
        .run(&mut frames, &mut wire, &config, &conn, &shutdown, accepted)
        .await;
    if let Some(Aside::Transfer(request)) = session.pending.take().map(|p| *p) {
        // A transfer connection: the raw bytes after its first line are the file's.
        let shared = session.shared.clone();
        shared.count("files", 1);
        let parts = frames.into_parts();
        // Boxed: a chat connection's future must not be sized for a transfer's.
        Box::pin(crate::files::transfer::serve(
            request,
            parts.read_buf,
            parts.io,
            wire.into_inner(),
            shared.clone(),
            shutdown,
        ))
        .await;
        shared.count("files", -1);
        return;
    }
    let counted = session
        .front
        .as_ref()
        .map(|f| (f.name(), session.shared.clone()));
    // Boxed: the ending's timers live on the heap for the moment they are needed.
    Box::pin(session.finish(reason, frames, wire, &config)).await;
    if let Some((front, shared)) = counted {
        shared.count(front, -1);
    }
}

/// What a received frame costs while it waits in the receive queue: its bytes and the queue entry
/// itself, so even tiny frames count against `--max-recvq`.
fn queued_cost(item: &Result<Bytes, FrameError>) -> usize {
    std::mem::size_of::<Result<Bytes, FrameError>>() + item.as_ref().map_or(0, |b| b.len())
}

/// The read buffer of a quiet connection: a chat line or two. It grows for bursts and long frames and
/// shrinks back when the connection is idle again.
const READ_BUFFER: usize = 64;

/// A read buffer grown beyond this by a burst is replaced by a [`READ_BUFFER`] one once it is empty.
const READ_BUFFER_KEPT: usize = 4096;

/// How long a closing connection waits for the peer to close its side.
const LINGER: Duration = Duration::from_millis(500);

impl Session {
    /// Ends the connection: unregisters, lets the writer send what was said last (`bye`, an error) and
    /// FIN, then lingers.
    async fn finish<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(
        mut self,
        reason: Option<LeftReason>,
        mut frames: FramedRead<R, FrameCodec>,
        mut wire: Wire<W>,
        config: &Config,
    ) {
        if !self.registered {
            crate::metrics::disconnected("unregistered");
        }
        self.leave(reason);
        self.outbox.close();
        // Send what was said last (`bye`, an error) and FIN — or give up on a peer that does not read.
        let flushed = tokio::time::timeout(config.shutdown_grace, async {
            while !wire.is_done() {
                wire.step(&self.outbox).await;
            }
        });
        if flushed.await.is_err() || self.outbox.is_overflowed() {
            tracing::debug!(
                "{}: last frames not sent in time; dropping the connection",
                self.peer
            );
            return;
        }
        // Lingering close: the last frames (`bye`, an error) are sent and our FIN is out. Closing now,
        // with the peer's latest bytes unread, would make the kernel answer with a reset — which can
        // destroy those last frames before the peer reads them. So read and discard until the peer
        // closes too.
        let drain = async { while let Some(Ok(_)) = frames.next().await {} };
        let _ = tokio::time::timeout(LINGER, drain).await;
    }

    /// How long a replay waits for the client to make room before it is cut as `too_slow`: the idle
    /// timeout (a client that reads nothing for that long is gone either way); none when that is off.
    fn stall(&self) -> Option<Duration> {
        let idle = self.shared.config().idle_timeout;
        (!idle.is_zero()).then_some(idle)
    }

    /// A listener that fixes the front end (IRC) sets it up before anything is read, so that even a
    /// connection that never says a word is answered in its language (a registration timeout).
    fn fix_front<W: AsyncWrite + Unpin>(&mut self, wire: &mut Wire<W>) {
        if self.kind == Kind::Irc {
            let front = Box::new(frontend::irc::Irc::new(self.shared.clone()));
            self.shared.count(front.name(), 1);
            wire.set_renderer(front.renderer());
            self.front = Some(front);
        }
    }

    /// Picks the front end from the connection's first item, and tells the wire how to render. `Some`:
    /// that item is answered here (an HTTP request on the chat port).
    fn pick<W: AsyncWrite + Unpin>(
        &mut self,
        item: &Result<Bytes, FrameError>,
        wire: &mut Wire<W>,
    ) -> Option<Flow> {
        if self.front.is_some() {
            return None;
        }
        if let Some(request) = item
            .as_ref()
            .ok()
            .and_then(|line| natter_proto::file::DataRequest::parse(line))
        {
            self.pending = Some(Box::new(Aside::Transfer(request)));
            return Some(Flow::Close);
        }
        let front: Box<dyn FrontEnd> = match item {
            // An oversized first line picks nothing: JSON is the protocol's own voice.
            Err(FrameError::TooLarge { .. }) => Box::new(frontend::native::Native),
            Ok(line) => match frontend::pick(line, self.shared.config().lang) {
                Picked::FrontEnd(front) => front,
                Picked::Http => {
                    tracing::info!(
                        "{}: HTTP request on the chat port; answering and closing",
                        self.peer
                    );
                    self.outbox
                        .push_last_item(Arc::new(Outgoing::Raw(Bytes::from(
                            frontend::http_answer(self.shared.config().lang),
                        ))));
                    return Some(Flow::Close);
                }
            },
        };
        self.shared.count(front.name(), 1);
        wire.set_renderer(front.renderer());
        self.front = Some(front);
        None
    }

    /// The reader's loop. Returns how the user left (`None`: quietly, or never registered).
    async fn run<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(
        &mut self,
        frames: &mut FramedRead<R, FrameCodec>,
        wire: &mut Wire<W>,
        config: &Config,
        conn: &CancellationToken,
        shutdown: &CancellationToken,
        accepted: Instant,
    ) -> Option<LeftReason> {
        let hello_deadline = accepted + config.hello_timeout;

        let mut recvq: VecDeque<Result<Bytes, FrameError>> = VecDeque::new();
        let mut recvq_bytes = 0usize;
        let mut eof = false;
        let mut bucket = Bucket::new(config.flood_burst, config.flood_rate, Instant::now());
        let mut before_hello = 0usize;
        let mut last_heard = Instant::now();
        let mut pinged = false;
        let mut idle = config.idle_timeout;
        let mut max_recvq = config.max_recvq;
        let shared = self.shared.clone();
        let reloads = &shared.reloads;
        let mut reloaded = reloads.load(std::sync::atomic::Ordering::Acquire);
        loop {
            let now = Instant::now();
            if reloads.load(std::sync::atomic::Ordering::Acquire) != reloaded {
                // SIGHUP changed the settings: an open connection takes the new flood settings (with a
                // fresh burst) and idle timeout too.
                let config = shared.config();
                reloaded = reloads.load(std::sync::atomic::Ordering::Acquire);
                bucket = Bucket::new(config.flood_burst, config.flood_rate, now);
                idle = config.idle_timeout;
                max_recvq = config.max_recvq;
            }
            // Before `hello` lines are not paced (an IRC client sends CAP, NICK, USER, CAP END… at once);
            // they are counted instead (`max_frames_before_hello`).
            let turn = if self.me.is_none() {
                now
            } else {
                bucket.ready_at(now)
            };
            if !recvq.is_empty() && turn <= now {
                // The next queued frame's turn has come (always, without flood control): handle it.
                if self.me.is_some() {
                    bucket.take(now);
                }
                let Some(item) = recvq.pop_front() else {
                    continue;
                };
                recvq_bytes -= queued_cost(&item);
                if self.me.is_none() {
                    before_hello += 1;
                }
                let flow = if before_hello > config.max_frames_before_hello {
                    Flow::Flood
                } else if let Some(flow) = self.pick(&item, wire) {
                    flow
                } else {
                    // Boxed: the request handlers are large futures; kept out of this loop, an idle
                    // connection stays small. A handler can wait — for the client to drain a replay, for
                    // room at the store's writer — so it is raced against the end of the server and of
                    // the connection: no reader is left waiting for something that will not come.
                    // The wire keeps writing meanwhile: a replay waits for the client to drain.
                    let outbox = self.outbox.clone();
                    let handling = Box::pin(self.handle(item));
                    tokio::select! {
                        biased;
                        _ = conn.cancelled() => if shutdown.is_cancelled() { Flow::Shutdown } else { Flow::Ended },
                        flow = handling => flow,
                        _ = wire.step(&outbox) => Flow::Ended,
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
                            natter_proto::error_args!(what = "before_hello"),
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
                && self.front.as_ref().is_some_and(|f| f.pinged_when_idle());
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
                _ = conn.cancelled() => {
                    if !shutdown.is_cancelled() {
                        return Some(self.ended_reason());
                    }
                    self.shut_down().await;
                    return None;
                }
                // The connection's writing, in the same task: it completes only when the writing ends.
                _ = wire.step(&self.outbox) => return Some(self.ended_reason()),
                _ = tokio::time::sleep_until(wake.unwrap_or(now).into()), if wake.is_some() => {
                    let now = Instant::now();
                    if hello_at.is_some_and(|t| t <= now) {
                        self.registration_timeout();
                        return None;
                    }
                    if idle_at.is_some_and(|t| t <= now) {
                        if pinged {
                            tracing::info!("{}: silent for {idle:?}; closing", self.peer);
                            self.outbox.push_last(ServerFrame::error(ErrorCode::IdleTimeout, natter_proto::error_args!(), None));
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
                        if let (Some(m), Ok(line)) = (crate::metrics::counting(), &item) {
                            m.bytes_in.inc_by(line.len() as u64 + 1);
                        }
                        last_heard = Instant::now();
                        pinged = false;
                        if item.as_ref().is_ok_and(|line| line.iter().all(u8::is_ascii_whitespace)) {
                            // A blank line is a keep-alive: heard, not queued (so it costs no flood token
                            // and no memory; queued, a stream of newlines grew the queue without bound).
                            continue;
                        }
                        recvq_bytes += queued_cost(&item);
                        recvq.push_back(item);
                        if recvq_bytes > max_recvq {
                            tracing::info!("{}: flooding; closing", self.peer);
                            self.outbox.push_last(ServerFrame::error(ErrorCode::ExcessFlood, natter_proto::error_args!(), None));
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
                self.settle().await;
                self.error(
                    ErrorCode::FrameTooLarge,
                    natter_proto::error_args!(max = limit),
                    None,
                );
                Flow::Continue
            }
            Ok(line) => self.line(&line).await,
        }
    }

    fn registration_timeout(&self) {
        self.outbox.push_last(ServerFrame::error(
            ErrorCode::RegistrationTimeout,
            natter_proto::error_args!(),
            None,
        ));
    }

    /// Handles one complete (never blank: those are not queued) line through the front end.
    async fn line(&mut self, line: &[u8]) -> Flow {
        // `run` picks the front end before any item is handled.
        let Some(front) = self.front.as_mut() else {
            return Flow::Continue;
        };
        match front.translate(line, self.me.is_some()) {
            Input::Frame(frame) => self.dispatch(frame).await,
            Input::Both(text, frames) => {
                self.settle().await;
                self.outbox.push(Arc::new(Outgoing::Notice(text)));
                self.frames(frames).await
            }
            Input::Frames(frames) => self.frames(frames).await,
            Input::Wrapped(open, frames, close) => {
                self.settle().await;
                self.outbox.push(Arc::new(Outgoing::Notice(open)));
                let flow = self.frames(frames).await;
                self.settle().await;
                self.outbox.push(Arc::new(Outgoing::Notice(close)));
                flow
            }
            Input::Invalid(bad) => {
                self.settle().await;
                self.outbox.send(bad.frame());
                Flow::Continue
            }
            Input::Notice(text) => {
                self.settle().await;
                self.outbox.push(Arc::new(Outgoing::Notice(text)));
                Flow::Continue
            }
            Input::Nothing => Flow::Continue,
        }
    }

    /// Carries out several requests in order, stopping at one that ends the connection.
    async fn frames(&mut self, frames: Vec<ClientFrame>) -> Flow {
        for frame in frames {
            let flow = Box::pin(self.dispatch(frame)).await;
            if flow != Flow::Continue {
                return flow;
            }
        }
        Flow::Continue
    }

    fn error(&self, code: ErrorCode, args: natter_proto::frame::ErrorArgs, id: Option<String>) {
        self.outbox.send(ServerFrame::error(code, args, id));
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
    ///
    /// Memory: this future lives inside every connection's, sized by its largest branch, so the rare
    /// and deep ones (signing in, passwords, forgetting) are boxed: an idle connection does not pay for
    /// them.
    async fn dispatch(&mut self, frame: ClientFrame) -> Flow {
        let me = match (self.me.as_ref().map(|r| r.name().clone()), frame) {
            (
                Some(me),
                ClientFrame::Say {
                    text,
                    room,
                    id,
                    notice,
                    tags,
                },
            ) => {
                self.append(&me, (room.as_deref(), None), &text, id, (notice, tags))
                    .await;
                return Flow::Continue;
            }
            (
                Some(me),
                ClientFrame::Whisper {
                    to,
                    text,
                    id,
                    notice,
                    tags,
                },
            ) => {
                self.append(&me, (None, Some(&to)), &text, id, (notice, tags))
                    .await;
                return Flow::Continue;
            }
            (
                Some(me),
                ClientFrame::Moderate {
                    room,
                    action,
                    name,
                    text,
                    minutes,
                    on,
                    id,
                },
            ) => {
                let parsed =
                    crate::moderation::Action::parse(&action, text.as_deref(), minutes, on);
                let message = match parsed {
                    Some(action) => self.shared.hub.moderate(
                        &me,
                        &room,
                        &action,
                        name.as_deref(),
                        text.as_deref(),
                        id.clone(),
                    ),
                    None => Err(crate::hub::Refusal(
                        ErrorCode::BadFrame,
                        natter_proto::error_args!(
                            reason = "fields",
                            kind = "\"moderate\"",
                            detail = format!("no action {action:?} with these fields")
                        ),
                    )),
                };
                match message {
                    Ok(message) => self.submit(message, id).await,
                    Err(refusal) => {
                        self.settle().await;
                        self.outbox.send(refusal.frame(id));
                    }
                }
                return Flow::Continue;
            }
            (name, frame) => {
                self.settle().await;
                match (name, frame) {
                    (_, ClientFrame::Status) => {
                        self.outbox.send(self.shared.status());
                        return Flow::Continue;
                    }
                    (_, ClientFrame::Ping { id }) => {
                        self.outbox.send(ServerFrame::Pong { id });
                        return Flow::Continue;
                    }
                    // The answer to our idle ping: hearing it was the point.
                    (_, ClientFrame::Pong { .. }) => return Flow::Continue,
                    (_, ClientFrame::Exit { text }) => {
                        if let Some(me) = self.me.as_mut() {
                            me.farewell(text.as_deref());
                        }
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
                            rooms,
                            key,
                            password,
                        },
                    ) => {
                        let hello = replay::Hello {
                            name,
                            resume_after,
                            lobby,
                            rooms,
                            password,
                        };
                        Box::pin(self.hello(hello, version, key)).await;
                        return Flow::Continue;
                    }
                    (_, ClientFrame::SetPassword { password }) => {
                        Box::pin(self.set_password(password)).await;
                        return Flow::Continue;
                    }
                    (None, ClientFrame::Prove { signature }) => {
                        Box::pin(self.prove(&signature)).await;
                        return Flow::Continue;
                    }
                    (Some(_), ClientFrame::Prove { .. }) => {
                        self.error(ErrorCode::BadProof, natter_proto::error_args!(), None);
                        return Flow::Continue;
                    }
                    (Some(me), ClientFrame::Hello { .. }) => {
                        self.error(
                            ErrorCode::AlreadyRegistered,
                            natter_proto::error_args!(name = me.to_string()),
                            None,
                        );
                        return Flow::Continue;
                    }
                    (None, frame) => {
                        self.error(
                            ErrorCode::NotRegistered,
                            natter_proto::error_args!(),
                            frame_id(&frame),
                        );
                        return Flow::Continue;
                    }
                    (Some(me), frame) => (me, frame),
                }
            }
        };
        let hub = self.shared.hub.clone();
        let owner = self.me.as_ref().is_some_and(|r| r.owned_since().is_some());
        match me {
            (
                _,
                ClientFrame::ForgetMe | ClientFrame::Block { .. } | ClientFrame::Unblock { .. },
            ) if !owner => {
                self.error(
                    ErrorCode::Forbidden,
                    natter_proto::error_args!(what = "block"),
                    None,
                );
            }
            (me, ClientFrame::ForgetMe) => match Box::pin(hub.forget(&me)).await {
                Ok(_) => {
                    if let Some(registration) = self.me.as_mut() {
                        registration.demote();
                    }
                    tracing::info!("{}: {me} was forgotten", self.peer);
                    self.outbox.send(ServerFrame::Forgotten);
                }
                Err(_) => self.error(
                    ErrorCode::ServerError,
                    natter_proto::error_args!(what = "other"),
                    None,
                ),
            },
            (me, ClientFrame::Block { name } | ClientFrame::Unblock { name })
                if name.is_empty() =>
            {
                let _ = me;
                self.error(
                    ErrorCode::InvalidName,
                    natter_proto::NameError::Empty.args(),
                    None,
                );
            }
            (me, frame @ (ClientFrame::Block { .. } | ClientFrame::Unblock { .. })) => {
                let (name, on) = match frame {
                    ClientFrame::Block { name } => (name, true),
                    ClientFrame::Unblock { name } => (name, false),
                    _ => unreachable!("matched above"),
                };
                match hub.block(&me, &name, on) {
                    Ok(()) => {
                        self.outbox.send(ServerFrame::Blocked { name, on });
                    }
                    Err(refusal) => {
                        self.outbox.send(refusal.frame(None));
                    }
                }
            }
            (me, ClientFrame::Join { room }) => match hub.join(&me, &self.outbox, &room) {
                Ok(Some((room, watermark))) => self.joined(&room, watermark).await,
                Ok(None) => {}
                Err(refusal) => {
                    self.outbox.send(refusal.frame(None));
                }
            },
            (
                me,
                ClientFrame::Offer {
                    name,
                    size,
                    sha256,
                    room,
                    to,
                    id,
                },
            ) => {
                let offer = crate::files::Offer {
                    name,
                    size,
                    sha256,
                    room,
                    to,
                    id: id.clone(),
                };
                let answer = match &self.shared.files {
                    Some(files) => {
                        Box::pin(files.offer(
                            &hub,
                            self.shared.history.as_ref(),
                            &me,
                            offer,
                            &self.outbox,
                        ))
                        .await
                    }
                    None => Err(crate::hub::Refusal(
                        ErrorCode::FilesOff,
                        natter_proto::error_args!(),
                    )),
                };
                self.outbox
                    .send(answer.unwrap_or_else(|refusal| refusal.frame(id)));
            }
            (me, ClientFrame::Fetch { file, id }) => {
                let answer = match &self.shared.files {
                    Some(files) => {
                        Box::pin(files.fetch(&hub, self.shared.history.as_ref(), &me, file)).await
                    }
                    None => Err(crate::hub::Refusal(
                        ErrorCode::FilesOff,
                        natter_proto::error_args!(),
                    )),
                };
                let answer = match answer {
                    Ok(ServerFrame::DownloadReady { token, file, .. }) => {
                        ServerFrame::DownloadReady { id, token, file }
                    }
                    Ok(other) => other,
                    Err(refusal) => refusal.frame(id),
                };
                self.outbox.send(answer);
            }
            (me, ClientFrame::Leave { room, text }) => {
                if let Err(refusal) = hub.leave(&me, &room, text.as_deref()) {
                    self.outbox.send(refusal.frame(None));
                }
            }
            (me, ClientFrame::Signal { room, to, tags, id }) => {
                let to_whom = (room.as_deref(), to.as_deref());
                let answer = hub.signal(&me, &self.outbox, to_whom, tags, id.clone());
                self.outbox
                    .send(answer.unwrap_or_else(|refusal| refusal.frame(id)));
            }
            (me, ask @ ClientFrame::Conversations { .. }) => {
                Box::pin(self.conversations(&me, ask)).await
            }
            (_, ClientFrame::Who { room }) => self.send(hub.who(room.as_deref())),
            (_, ClientFrame::Rooms) => {
                self.outbox.send(hub.rooms_frame());
            }
            (me, ask @ ClientFrame::History { .. }) => self.history_page(&me, ask).await,
            (_, ClientFrame::Say { .. } | ClientFrame::Whisper { .. }) => {
                unreachable!("handled above")
            }
            (
                _,
                ClientFrame::Hello { .. }
                | ClientFrame::Prove { .. }
                | ClientFrame::SetPassword { .. }
                | ClientFrame::Moderate { .. }
                | ClientFrame::Status
                | ClientFrame::Ping { .. }
                | ClientFrame::Pong { .. }
                | ClientFrame::Exit { .. },
            ) => unreachable!("handled above"),
        }
        Flow::Continue
    }

    /// `say` / `whisper`: validate, then hand to the store's writer; the hub acks after the commit.
    async fn append(
        &mut self,
        me: &Name,
        (room, to): (Option<&str>, Option<&str>),
        text: &str,
        id: Option<String>,
        (notice, tags): (bool, natter_proto::frame::Tags),
    ) {
        let mut prepared = match crate::hub::check_tags(&tags) {
            Ok(()) => self.shared.hub.prepare(me, room, to, text, id.clone()),
            Err(refusal) => Err(refusal),
        };
        // Cluster mode: a whisper to someone signed in on another node goes through the stream to them.
        if let (Err(crate::hub::Refusal(ErrorCode::NoSuchUser, _)), Some(presence), Some(to)) = (
            &prepared,
            &self.shared.presence,
            to.and_then(|t| Name::new(t).ok()),
        ) {
            if presence.online(&to).await {
                prepared = self.shared.hub.prepare_remote(me, to, text, id.clone());
            }
        }
        let message = match prepared {
            Ok(m) => crate::store::NewMessage { notice, tags, ..m },
            Err(refusal) => {
                self.settle().await;
                self.outbox.send(refusal.frame(id));
                return;
            }
        };
        self.submit(message, id).await;
    }

    /// Hands a prepared message (or room event) to the store's writer; the hub acks after the commit.
    async fn submit(&mut self, message: crate::store::NewMessage, id: Option<String>) {
        let Ok(permit) = self.shared.appends.clone().acquire_owned().await else {
            return;
        };
        let (done, done_rx) = oneshot::channel();
        let token = AppendToken {
            outbox: self.outbox.clone(),
            id,
            done,
            permit,
            stored: None,
        };
        match self.shared.hub.submit(message, token) {
            Ok(()) => self.last_append = Some(done_rx),
            Err(token) => {
                self.outbox.send(ServerFrame::error(
                    ErrorCode::ServerError,
                    natter_proto::error_args!(what = "full"),
                    token.id,
                ));
            }
        }
    }

    /// Unregisters (once). `None` means quietly: no `left` announcements (server shutdown).
    fn leave(&mut self, reason: Option<LeftReason>) {
        if let Some(me) = self.me.take() {
            if let Some(presence) = &self.shared.presence {
                presence.release(me.name());
            }
            crate::metrics::disconnected(reason.map_or("shutdown", LeftReason::as_str));
            let how = reason.map_or("quietly", LeftReason::as_str);
            tracing::info!(
                event = "left",
                reason = how,
                peer = %self.peer,
                "{} ({}) left: {how}",
                me.name(),
                self.peer
            );
            me.leave(reason);
        }
    }
}

fn frame_id(frame: &ClientFrame) -> Option<String> {
    match frame {
        ClientFrame::Say { id, .. }
        | ClientFrame::Whisper { id, .. }
        | ClientFrame::Offer { id, .. }
        | ClientFrame::Fetch { id, .. }
        | ClientFrame::Signal { id, .. }
        | ClientFrame::Conversations { id, .. }
        | ClientFrame::Ping { id } => id.clone(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

    use super::*;
    use crate::transport::Stream;

    /// The session runs over any byte stream (here an in-memory pipe, as TLS or WebSocket will be):
    /// nothing in it is tied to TCP.
    #[tokio::test]
    async fn a_session_runs_over_any_byte_stream() {
        let core = crate::Core::start(crate::testing::config()).unwrap();
        let (client, server) = tokio::io::duplex(4096);
        let shutdown = CancellationToken::new();
        let session = tokio::spawn(serve_stream(
            Stream(server),
            "127.0.0.1:1".parse().unwrap(),
            core.shared.clone(),
            shutdown.clone(),
            Instant::now(),
            (false, Kind::Chat),
            (),
        ));
        let (read, mut write) = tokio::io::split(client);
        let mut lines = BufReader::new(read).lines();
        write
            .write_all(b"{\"type\":\"hello\",\"name\":\"pipe\",\"version\":1}\n{\"type\":\"say\",\"text\":\"hi\",\"id\":\"1\"}\n")
            .await
            .unwrap();
        let mut seen = Vec::new();
        while let Some(line) = lines.next_line().await.unwrap() {
            let ack = line.contains(r#""type":"ack""#);
            seen.push(line);
            if ack {
                break;
            }
        }
        assert!(seen[0].contains(r#""type":"welcome""#), "{seen:?}");
        shutdown.cancel();
        session.await.unwrap();
        core.stop().await;
    }
}
