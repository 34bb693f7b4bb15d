//! natter-server: the chat server as a library.
//!
//! [`run`] takes already-bound listeners, a [`Config`] and any shutdown future, so the binary passes
//! Ctrl-C/SIGTERM while tests bind `127.0.0.1:0` and pass a trigger they control.
//!
//! Modules: [`transport`] (what a connection runs over), [`session`] (one connection: reader + writer
//! tasks), [`frontend`] (native JSON, plain text: lines in, frames out), [`hub`] (users, rooms, delivery),
//! [`outbox`] (bounded per-connection queue), [`store`] (the message log that assigns seq, and history).
//! ARCHITECTURE.md has the concurrency rules.

pub mod cluster;
pub mod files;
pub mod frontend;
pub mod hub;
pub mod lab;
pub mod metrics;
pub mod moderation;
pub mod outbox;
pub mod passwords;
pub mod proxy;
pub mod session;
pub mod store;
pub mod testing;
pub mod tls;
pub mod transport;
pub mod web;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::hub::{AppendToken, Hub, HubConfig};
use crate::store::{DbPath, Retention, StoreError};

pub use crate::store::default_db_path;

/// Server settings. `Default` gives the documented defaults (docs/OPERATIONS.md).
#[derive(Debug, Clone)]
pub struct Config {
    /// Largest frame in bytes, excluding the newline (`--max-frame`).
    pub max_frame: usize,
    /// The language of the plain-text front end's texts until a user's `/lang` (the greeting included).
    pub lang: natter_i18n::Lang,
    /// Largest message text in bytes (`--max-text`).
    pub max_text: usize,
    /// Largest number of bytes queued for one client before it is cut off as `too_slow` (`--max-outbox`).
    pub max_outbox: usize,
    /// How long shutdown waits for connections to flush their `bye`.
    pub shutdown_grace: Duration,
    /// Listen backlog for sockets bound by [`bind`].
    pub backlog: u32,
    /// Where history is kept (`--db`).
    pub db: DbPath,
    /// How many recent messages per room (and of private messages) a `hello` or `join` replays (`--replay`).
    pub replay: usize,
    /// History retention (`--history-days`, `--history-max`).
    pub retention: Retention,
    /// Most messages waiting for the store's writer at once, server-wide (backpressure on senders).
    pub max_pending_appends: usize,
    /// Frames a connection may send at once before flood control paces it (`--flood-burst`).
    pub flood_burst: u32,
    /// Frames per second a connection may send after its burst (`--flood-rate`; 0 turns flood control off).
    pub flood_rate: f64,
    /// Bytes of received frames a connection may have waiting for its flood budget; more is `excess_flood`.
    pub max_recvq: usize,
    /// Silence after which a native connection is closed (`--idle-timeout`; zero turns it off). It is
    /// pinged after half of it, so a live client's `pong` keeps it open.
    pub idle_timeout: Duration,
    /// Time a connection has to register (`--hello-timeout`).
    pub hello_timeout: Duration,
    /// Frames a connection may send before a successful `hello`.
    pub max_frames_before_hello: usize,
    /// Connections accepted at once (`--max-clients`).
    pub max_clients: usize,
    /// Connections accepted at once from one IP address (`--max-per-ip`).
    pub max_per_ip: usize,
    /// Rooms one user may be in at once, the lobby included (`--max-rooms`).
    pub max_rooms: usize,
    /// Rooms with more members than this announce no joins and leaves and send joiners only the member
    /// count (`--announce-limit`); `who` lists everyone.
    pub announce_limit: usize,
    /// The certificate of the chat port's TLS (`None`: plain text only; a TLS handshake is closed).
    pub tls: Option<tls::Tls>,
    /// Refuse plain text from other machines (`--require-tls`): only TLS, or anything from this machine.
    pub require_tls: bool,
    /// Owned names unused this long are released, with their data (`--name-expiry-days`); `None`: never.
    pub name_expiry: Option<Duration>,
    /// Shared files: where, how big, for how long.
    pub files: files::FilesConfig,
    /// The IRC front end's server name and MOTD.
    pub irc: frontend::irc::IrcConfig,
    /// The fewest characters a password may have (`--password-min-chars`).
    pub password_min_chars: usize,
    /// Proxies whose PROXY protocol headers (TCP) and `X-Forwarded-For` (web) name the client a connection
    /// is counted as (`--trusted-proxy`): per-address limits, bans and throttles then apply to the client.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// Cluster mode (`--cluster`): the message log is a NATS JetStream stream shared with other nodes.
    pub cluster: Option<cluster::ClusterConfig>,
    /// Whether the web listener serves `/metrics` (`--metrics web`, the default; not with `--metrics ADDR`
    /// or `off`).
    pub metrics_on_web: bool,
    /// Tests only: a loopback address treated as another machine's (passwords from it are refused as
    /// they would be from the LAN).
    #[doc(hidden)]
    pub remote_loopback: Option<std::net::IpAddr>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            max_frame: natter_proto::DEFAULT_MAX_FRAME,
            lang: natter_i18n::Lang::En,
            max_text: natter_proto::text::DEFAULT_MAX_TEXT,
            max_outbox: 1024 * 1024,
            shutdown_grace: Duration::from_millis(1500),
            backlog: 1024,
            db: DbPath::Memory,
            replay: 50,
            retention: Retention::default(),
            max_pending_appends: 65_536,
            flood_burst: 5,
            flood_rate: 3.0,
            max_recvq: 128 * 1024,
            idle_timeout: Duration::from_secs(120),
            hello_timeout: Duration::from_secs(30),
            max_frames_before_hello: 20,
            max_clients: 15_000,
            max_per_ip: 500,
            max_rooms: 100,
            announce_limit: 100,
            remote_loopback: None,
            name_expiry: Some(Duration::from_secs(180 * 24 * 60 * 60)),
            tls: None,
            require_tls: false,
            files: files::FilesConfig::default(),
            irc: Default::default(),
            password_min_chars: passwords::MIN_CHARS,
            metrics_on_web: true,
            cluster: None,
            trusted_proxies: Vec::new(),
        }
    }
}

/// Declares the settings SIGHUP changes on a running server: their `serve` keys ([`LIVE_KEYS`]) and
/// [`Config::take_live`], which copies exactly those.
macro_rules! live_settings {
    ($($key:literal => $($field:ident).+),* $(,)?) => {
        /// The `natter serve` keys a reload (SIGHUP) changes on a running server; the others wait for a
        /// restart (docs/OPERATIONS.md).
        pub const LIVE_KEYS: &[&str] = &[$($key),*];

        impl Config {
            /// Takes `new`'s live settings, leaving every other one as it is. Returns what changed, one
            /// `key: old → new` each.
            pub fn take_live(&mut self, new: &Config) -> Vec<String> {
                let mut changed = Vec::new();
                $(
                    if self.$($field).+ != new.$($field).+ {
                        changed.push(format!(
                            "{}: {} → {}",
                            $key,
                            shown(&self.$($field).+),
                            shown(&new.$($field).+)
                        ));
                        self.$($field).+ = new.$($field).+.clone();
                    }
                )*
                changed
            }
        }
    };
}

live_settings! {
    "max-clients" => max_clients,
    "max-per-ip" => max_per_ip,
    "max-rooms" => max_rooms,
    "announce-limit" => announce_limit,
    "max-outbox" => max_outbox,
    "flood-burst" => flood_burst,
    "flood-rate" => flood_rate,
    "max-recvq" => max_recvq,
    "idle-timeout" => idle_timeout,
    "hello-timeout" => hello_timeout,
    "replay" => replay,
    "password-min-chars" => password_min_chars,
    "name-expiry-days" => name_expiry,
    "lang" => lang,
    "irc-motd" => irc.motd,
    "trusted-proxy" => trusted_proxies,
}

/// A setting's value for the log, cut short (a MOTD is many lines).
fn shown(value: &dyn std::fmt::Debug) -> String {
    let text = format!("{value:?}");
    match text.char_indices().nth(40) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text,
    }
}

/// Binds a listening socket with an explicit backlog (tokio's `TcpListener::bind` uses 128).
///
/// An IPv6 socket is IPv6-only, so `0.0.0.0:5500` and `[::]:5500` can be listened on side by side (on
/// Linux a `[::]` socket otherwise takes the IPv4 port too, and the second bind fails).
pub fn bind(addr: SocketAddr, backlog: u32) -> io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(i32::try_from(backlog).unwrap_or(i32::MAX))?;
    TcpListener::from_std(socket.into())
}

/// Why the server could not run.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("the history store stopped working; the server shut down (see the log above)")]
    StoreFailed,
    #[error(transparent)]
    Cluster(#[from] cluster::ClusterError),
}

/// Runs the server on `listeners` until `shutdown` completes, then says `bye` to every client, lets the
/// store's writer finish what it holds, and returns once both are done (bounded by `config.shutdown_grace`
/// for the clients).
pub async fn run(
    listeners: Vec<TcpListener>,
    config: Config,
    shutdown: impl Future,
) -> Result<(), ServerError> {
    run_with_web(listeners, Vec::new(), config, shutdown).await
}

/// [`run`], also serving the browser client ([`web`]) on `web` listeners.
pub async fn run_with_web(
    listeners: Vec<TcpListener>,
    web: Vec<TcpListener>,
    config: Config,
    shutdown: impl Future,
) -> Result<(), ServerError> {
    let listeners = Listeners {
        chat: listeners,
        web,
        ..Listeners::default()
    };
    run_all(listeners, config, shutdown).await
}

/// Every listener a server has, by what it serves.
#[derive(Default)]
pub struct Listeners {
    /// The chat port: natter's clients, plain text, file transfers (`--listen`).
    pub chat: Vec<TcpListener>,
    /// The browser client (`--web`).
    pub web: Vec<TcpListener>,
    /// IRC clients (`--irc`, `--irc-tls`).
    pub irc: Vec<TcpListener>,
    /// The lab's own client (`--lab`).
    pub lab: Vec<TcpListener>,
    /// `/metrics` and `/healthz` alone (`--metrics ADDR`).
    pub metrics: Vec<TcpListener>,
}

/// [`run`] on every kind of listener.
pub async fn run_all(
    listeners: Listeners,
    config: Config,
    shutdown: impl Future,
) -> Result<(), ServerError> {
    let (_keep, reloads) = tokio::sync::mpsc::channel(1);
    run_reloadable(listeners, config, shutdown, reloads).await
}

/// [`run_all`], taking new settings from `reloads` (SIGHUP): the live ones ([`LIVE_KEYS`]) apply at once
/// — to new connections, and the flood settings and idle timeout to connections already open.
pub async fn run_reloadable(
    listeners: Listeners,
    config: Config,
    shutdown: impl Future,
    mut reloads: tokio::sync::mpsc::Receiver<Config>,
) -> Result<(), ServerError> {
    let Listeners {
        chat,
        web,
        irc,
        lab,
        metrics,
    } = listeners;
    let (cluster, presence, shared_files) = match &config.cluster {
        Some(c) => {
            let cluster = cluster::Cluster::connect(c).await?;
            let presence = cluster::Presence::open(&cluster).await?;
            let files = match config.files.dir {
                Some(_) => Some(cluster::SharedFiles::open(&cluster, config.files.days).await?),
                None => None,
            };
            (Some(cluster), Some(presence), files)
        }
        None => (None, None, None),
    };
    let check = cluster.clone();
    let core = Core::start_with(config, cluster, presence)?;
    if let Some(cluster) = check {
        let (_, _, applied) = core.shared.hub.counts();
        cluster.check_read_model(applied).await?;
    }
    if let (Some(files), Some(shared)) = (&core.shared.files, shared_files) {
        files.share_through(shared);
    }
    let token = CancellationToken::new();
    let tracker = TaskTracker::new();
    // One set of limits for the whole server: `--max-clients` counts every listener's connections.
    let limits = Arc::new(Limits::default());
    tracker.spawn(housekeeping(core.shared.clone(), token.clone()));
    let chat = chat.into_iter().map(|l| (l, session::Kind::Chat));
    let irc = irc.into_iter().map(|l| (l, session::Kind::Irc));
    let lab = lab.into_iter().map(|l| (l, session::Kind::Lab));
    for (listener, kind) in chat.chain(irc).chain(lab) {
        tracker.spawn(accept_loop(
            listener,
            kind,
            core.shared.clone(),
            limits.clone(),
            token.clone(),
            tracker.clone(),
        ));
    }
    for listener in metrics {
        tracker.spawn(web::serve_metrics(
            listener,
            core.shared.clone(),
            token.clone(),
        ));
    }
    for listener in web {
        tracker.spawn(web::serve(
            listener,
            core.shared.clone(),
            limits.clone(),
            token.clone(),
            tracker.clone(),
        ));
    }
    let mut shutdown = std::pin::pin!(shutdown);
    let store_failed = loop {
        tokio::select! {
            _ = &mut shutdown => break false,
            _ = core.store_down.cancelled() => {
                // Nothing can be stored, so nothing can be sent: stop rather than accept people who cannot
                // talk.
                tracing::error!("the history store's writer stopped unexpectedly; shutting down");
                break true;
            }
            Some(new) = reloads.recv() => core.shared.reload(&new),
        }
    };
    tracing::info!("shutting down");
    token.cancel();
    tracker.close();
    let grace = core.shared.config().shutdown_grace + Duration::from_millis(200);
    if tokio::time::timeout(grace, tracker.wait()).await.is_err() {
        tracing::warn!("some connections did not close in time");
    }
    core.stop().await;
    if store_failed {
        return Err(ServerError::StoreFailed);
    }
    Ok(())
}

/// What every connection runs against: the message log with its writer thread, and the hub it delivers
/// to. [`run`] starts one; so do tests that serve a connection by hand.
pub(crate) struct Core {
    pub(crate) shared: Arc<session::Shared>,
    /// Cancelled when the writer's thread ends, however it ends: before [`Core::stop`] that means it died.
    store_down: CancellationToken,
    writer: std::thread::JoinHandle<()>,
}

impl Core {
    /// Opens the message log and starts its writer thread, delivering through a new hub.
    #[cfg(test)]
    pub(crate) fn start(config: Config) -> Result<Self, ServerError> {
        Self::start_with(config, None, None)
    }

    /// Opens the message log and starts its writer thread, delivering through a new hub — in cluster mode when `cluster` is given: the stream in front of the store.
    pub(crate) fn start_with(
        config: Config,
        cluster: Option<cluster::Cluster>,
        presence: Option<Arc<cluster::Presence>>,
    ) -> Result<Self, ServerError> {
        let opened = store::open::<AppendToken>(config.db.clone(), config.retention.clone())?;
        let (opened, changes) = match &cluster {
            Some(cluster) => {
                let (opened, changes) = cluster.front(opened);
                (opened, Some(changes))
            }
            None => (opened, None),
        };
        let hub = Hub::new(
            HubConfig {
                max_text: config.max_text,
                max_rooms: config.max_rooms,
                announce_limit: config.announce_limit,
            },
            opened.commands,
            opened.last_seq,
            opened.snapshot,
        );
        if let Some(presence) = &presence {
            // Who is in which room, cluster-wide: this node's users' moves out, the others' in.
            let out = presence.clone();
            hub.on_move(Box::new(move |name, room, left| {
                out.moved(name, room, left)
            }));
            let into = Arc::downgrade(&hub);
            presence.watch_rooms(Box::new(move |moved| {
                if let Some(hub) = into.upgrade() {
                    hub.remote_move(moved);
                }
            }));
        }
        if let Some(changes) = changes {
            // The cluster's changes, in stream order, for what the hub keeps in memory.
            let hub = Arc::downgrade(&hub);
            changes.connect(Box::new(move |change| {
                if let Some(hub) = hub.upgrade() {
                    hub.replicated(change);
                }
            }));
        }
        let store_down = CancellationToken::new();
        let writer = {
            let hub = hub.clone();
            let log = opened.log;
            let down = store_down.clone().drop_guard();
            std::thread::Builder::new()
                .name("natter-store".into())
                .spawn(move || {
                    let _down = down;
                    log.run(&mut |outcomes| hub.deliver(outcomes))
                })?
        };
        let files = files::Files::open(config.files.clone()).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!(
                    "cannot use the files directory {}: {e}",
                    config
                        .files
                        .dir
                        .as_deref()
                        .unwrap_or(std::path::Path::new(""))
                        .display()
                ),
            )
        })?;
        let shared = Arc::new(session::Shared {
            files,
            hub,
            history: opened.history,
            appends: Arc::new(tokio::sync::Semaphore::new(config.max_pending_appends)),
            passwords: passwords::Passwords::default(),
            started: std::time::Instant::now(),
            connections: Default::default(),
            irc: Default::default(),
            presence,
            settings: std::sync::RwLock::new(Arc::new(config)),
            reloads: Default::default(),
        });
        Ok(Self {
            shared,
            store_down,
            writer,
        })
    }

    /// Lets the writer commit what it holds and stop (after the last session ended). Bounded: a writer
    /// stuck in a long commit must not keep the process from exiting.
    pub(crate) async fn stop(self) {
        self.shared.hub.stop_writer();
        let writer = self.writer;
        let joined = tokio::task::spawn_blocking(move || writer.join());
        match tokio::time::timeout(STORE_STOP_GRACE, joined).await {
            Ok(Ok(Ok(()))) => {}
            Ok(_) => tracing::error!("the history store's writer failed"),
            Err(_) => tracing::warn!("the history store's writer did not stop in time"),
        }
    }
}

/// How long shutdown waits for the store's writer to commit what it holds and stop.
const STORE_STOP_GRACE: Duration = Duration::from_secs(10);

/// Counts connections, in total and per address, for `--max-clients` and `--max-per-ip`.
#[derive(Default)]
pub struct Limits {
    total: std::sync::atomic::AtomicUsize,
    per_ip: std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, usize>>,
}

/// One admitted connection's place in the [`Limits`]; given back on drop.
pub struct Admission {
    limits: Arc<Limits>,
    ip: std::net::IpAddr,
}

impl Limits {
    /// Admits a connection from `ip`, or says which limit it hit.
    fn admit(
        self: &Arc<Self>,
        ip: std::net::IpAddr,
        config: &Config,
    ) -> Result<Admission, natter_proto::ErrorCode> {
        use std::sync::atomic::Ordering;
        if self.total.fetch_add(1, Ordering::SeqCst) >= config.max_clients {
            self.total.fetch_sub(1, Ordering::SeqCst);
            return Err(natter_proto::ErrorCode::ServerFull);
        }
        let mut per_ip = self.per_ip.lock().unwrap_or_else(|e| e.into_inner());
        let count = per_ip.entry(ip).or_default();
        if *count >= config.max_per_ip {
            drop(per_ip);
            self.total.fetch_sub(1, Ordering::SeqCst);
            return Err(natter_proto::ErrorCode::TooManyConnections);
        }
        *count += 1;
        Ok(Admission {
            limits: self.clone(),
            ip,
        })
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        self.limits
            .total
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        let mut per_ip = self.limits.per_ip.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = per_ip.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                per_ip.remove(&self.ip);
            }
        }
    }
}

/// Detects peers that vanished without a FIN (power cut, cable pulled) at the TCP level.
fn keepalive(stream: &tokio::net::TcpStream) {
    let params = socket2::TcpKeepalive::new()
        .with_time(Duration::from_secs(60))
        .with_interval(Duration::from_secs(10))
        .with_retries(3);
    let _ = socket2::SockRef::from(stream).set_tcp_keepalive(&params);
}

/// Now and then: reads the accounts again (so `natter admin` takes effect on a running server) and
/// releases the owned names unused for `--name-expiry-days`.
async fn housekeeping(shared: Arc<session::Shared>, token: CancellationToken) {
    let mut ticks = 0u64;
    loop {
        if let Some(expiry) = shared
            .config()
            .name_expiry
            .filter(|_| ticks.is_multiple_of(120))
        {
            let before = jiff::Timestamp::now().as_millisecond()
                - i64::try_from(expiry.as_millis()).unwrap_or(i64::MAX);
            match shared.hub.expire(before).await {
                Ok(0) => {}
                Ok(n) => tracing::info!("released {n} owned names unused for {expiry:?}"),
                Err(_) => return,
            }
        }
        let changes = shared.hub.owned_changes();
        match shared.history.snapshot().await {
            Ok(snapshot) => {
                shared.hub.load_unless_changed(snapshot, Some(changes));
            }
            Err(e) => tracing::warn!("cannot read the accounts again: {e}"),
        }
        // Files: at start-up (with a sweep of stray bytes), then hourly.
        if let Some(files) = shared.files.as_ref().filter(|_| ticks.is_multiple_of(120)) {
            files
                .tidy(&shared.hub, shared.history.as_ref(), ticks == 0)
                .await;
        }
        ticks += 1;
        tokio::select! {
            _ = token.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(30)) => {}
        }
    }
}

/// A refused connection's one line, in its listener's language: an `error` frame, or IRC's `ERROR`
/// (the lab's client reads any bytes, so it gets the text).
fn refusal(
    kind: session::Kind,
    frame: natter_proto::ServerFrame,
    lang: natter_i18n::Lang,
) -> bytes::Bytes {
    let natter_proto::ServerFrame::Error {
        code,
        ref args,
        ref message,
        ..
    } = frame
    else {
        return frame.encode();
    };
    let text = natter_proto::frame::error_text(lang, code, args, message);
    match kind {
        session::Kind::Chat => frame.encode(),
        session::Kind::Irc => bytes::Bytes::from(format!("ERROR :{text}\r\n")),
        session::Kind::Lab => bytes::Bytes::from(format!("Server: {text}")),
    }
}

async fn accept_loop(
    listener: TcpListener,
    kind: session::Kind,
    shared: Arc<session::Shared>,
    limits: Arc<Limits>,
    token: CancellationToken,
    tracker: TaskTracker,
) {
    loop {
        let accepted = tokio::select! {
            _ = token.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((mut stream, peer)) => {
                let ctx = (&shared, &limits, &token, &tracker);
                if !shared.config().trusted_proxies.contains(&peer.ip()) {
                    take(stream, peer, kind, ctx);
                    continue;
                }
                // From a trusted proxy: the client it names is the connection's address.
                let ctx = (
                    shared.clone(),
                    limits.clone(),
                    token.clone(),
                    tracker.clone(),
                );
                tracker.spawn(async move {
                    let deadline = std::time::Instant::now() + ctx.0.config().hello_timeout;
                    match proxy::client_of(&mut stream, peer, deadline).await {
                        Ok(client) => take(stream, client, kind, (&ctx.0, &ctx.1, &ctx.2, &ctx.3)),
                        Err(e) => {
                            tracing::info!(event = "refused", reason = "proxy_header", peer = %peer, "{peer}: from a trusted proxy, but {e}; closing");
                            metrics::refused("proxy_header");
                        }
                    }
                });
            }
            Err(e) => {
                // EMFILE and friends: back off instead of spinning; the listener stays up.
                tracing::warn!("accept failed: {e}; pausing accepts briefly");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Admits a connection from `peer` (the client's address, behind a trusted proxy) and serves it, or
/// refuses it with one line saying why (a banned address, a limit).
fn take(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    kind: session::Kind,
    (shared, limits, token, tracker): (
        &Arc<session::Shared>,
        &Arc<Limits>,
        &CancellationToken,
        &TaskTracker,
    ),
) {
    let config = shared.config();
    if shared.hub.is_banned_address(peer.ip()) {
        let args = natter_proto::error_args!(what = "address");
        let code = natter_proto::ErrorCode::Banned;
        let frame = natter_proto::ServerFrame::error(code, args, None);
        let _ = stream.try_write(&refusal(kind, frame, config.lang));
        tracing::info!(event = "refused", reason = "banned", peer = %peer, "refused {peer}: banned");
        metrics::refused("banned");
        return;
    }
    let admission = match limits.admit(peer.ip(), &config) {
        Ok(a) => a,
        Err(code) => {
            // One line saying why, then close. The socket's buffer is empty: this never blocks.
            let frame = natter_proto::ServerFrame::error(code, Default::default(), None);
            let _ = stream.try_write(&refusal(kind, frame, config.lang));
            metrics::refused(code.as_str());
            tracing::warn!(
                event = "refused",
                reason = code.as_str(),
                peer = %peer,
                "refused {peer}: {}",
                code.as_str()
            );
            return;
        }
    };
    // Chat lines are small and latency matters: never wait for Nagle.
    let _ = stream.set_nodelay(true);
    keepalive(&stream);
    if kind == session::Kind::Lab {
        tracker.spawn(lab::serve(
            stream,
            peer,
            shared.clone(),
            token.clone(),
            admission,
        ));
        return;
    }
    tracker.spawn(session::serve(
        stream,
        peer,
        shared.clone(),
        token.clone(),
        admission,
        kind,
    ));
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    use tokio::net::TcpStream;

    use crate::testing::TestServer;
    use crate::ServerError;

    async fn hello(server: &TestServer, name: &str) -> BufReader<TcpStream> {
        let mut c = BufReader::new(TcpStream::connect(server.addr).await.unwrap());
        let line = format!("{{\"type\":\"hello\",\"name\":\"{name}\",\"version\":1}}\n");
        c.get_mut().write_all(line.as_bytes()).await.unwrap();
        c
    }

    /// Every line until the server closes the connection.
    async fn until_closed(c: &mut BufReader<TcpStream>) -> Vec<String> {
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            let read = tokio::time::timeout(Duration::from_secs(10), c.read_line(&mut line));
            match read.await.expect("closed within 10 s") {
                Ok(0) | Err(_) => return lines,
                Ok(_) => lines.push(line),
            }
        }
    }

    /// Defect 10 of issue 10: when the store's writer dies, the server says so, says `bye` to everyone,
    /// and `run` fails (the binary exits non-zero) instead of accepting people who can no longer talk.
    #[tokio::test]
    async fn a_dead_store_writer_stops_the_server_with_an_error() {
        let server = TestServer::start().await;
        let mut bob = hello(&server, "bob").await;
        let mut alice = hello(&server, "alice").await;
        let say = format!(
            "{{\"type\":\"say\",\"text\":\"{}\",\"id\":\"1\"}}\n",
            crate::hub::CRASH_THE_WRITER
        );
        alice.get_mut().write_all(say.as_bytes()).await.unwrap();
        let result = server.stopped().await;
        assert!(
            matches!(result, Err(ServerError::StoreFailed)),
            "{result:?}"
        );
        let lines = until_closed(&mut bob).await;
        assert!(
            lines.last().is_some_and(|l| l.contains(r#""type":"bye""#)),
            "bob was not told: {lines:?}"
        );
        assert!(!lines
            .iter()
            .any(|l| l.contains(crate::hub::CRASH_THE_WRITER)));
        until_closed(&mut alice).await;
    }
}
