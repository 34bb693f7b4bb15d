//! A chat session that survives the network.
//!
//! [`Chat`] registers once, then keeps the conversation going across dropped connections and server
//! restarts: it reconnects with exponential backoff, says `hello` with `resume_after` = the last seq it
//! saw, and resends every message not yet acknowledged with its original `id` (the server recognises the
//! id and acks the original instead of delivering it twice). It reports each message once, in seq order,
//! and each of your sends exactly once: [`ChatEvent::Sent`] when the server has stored it, or
//! [`ChatEvent::Refused`] when it never will be.
//!
//! The UI never sees the socket: it calls [`Chat::send`] / [`Chat::say`] and reads [`Chat::next`].

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use natter_proto::auth::{self, SigningKey};
use natter_proto::text::neutralise;
use natter_proto::{ClientFrame, ErrorCode, ServerFrame};
use tokio::sync::{mpsc, oneshot};

use crate::net::{Connection, NetEvent};
use crate::ClientError;

/// How reconnecting paces itself.
#[derive(Debug, Clone)]
pub struct Backoff {
    /// First wait after a connection is lost.
    pub initial: Duration,
    /// Longest wait between attempts.
    pub max: Duration,
    /// Give up after this many failed attempts in a row (`None`: never).
    pub attempts: Option<u32>,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(250),
            max: Duration::from_secs(8),
            attempts: None,
        }
    }
}

impl Backoff {
    fn delay(&self, attempt: u32) -> Duration {
        let factor = 1u32 << attempt.saturating_sub(1).min(10);
        (self.initial * factor).min(self.max)
    }
}

/// Options for [`Chat::connect`].
#[derive(Debug, Clone)]
pub struct ChatOptions {
    /// `host:port`.
    pub server: String,
    pub name: String,
    pub backoff: Backoff,
    /// Ping when the server has been silent this long; give the connection up after twice as long.
    pub keepalive: Duration,
    /// How long connecting, and then the answer to `hello`, may take before the attempt counts as failed
    /// (a server that accepts and never answers must not hang the client).
    pub answer_timeout: Duration,
    /// The key that owns the name ([`crate::identity`]); `None`: a guest.
    pub key: Option<Arc<SigningKey>>,
    /// The name's password, for signing in from a device whose key is not (yet) the name's: sent with
    /// the first `hello` (the key is then added to the name's keys; later `hello`s prove the key).
    pub password: Option<String>,
    /// TLS, and how the server's certificate is trusted.
    pub tls: crate::tls::TlsOptions,
}

impl ChatOptions {
    pub fn new(server: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            server: server.into(),
            name: name.into(),
            backoff: Backoff::default(),
            keepalive: Duration::from_secs(30),
            answer_timeout: Duration::from_secs(10),
            key: None,
            password: None,
            tls: crate::tls::TlsOptions::default(),
        }
    }
}

/// One of your messages: a room message (`room` set) or a private one (`to` set).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    pub id: String,
    pub room: Option<String>,
    pub to: Option<String>,
    pub text: String,
}

impl Outgoing {
    fn frame(&self) -> ClientFrame {
        match &self.to {
            Some(to) => ClientFrame::Whisper {
                tags: Default::default(),
                notice: false,
                to: to.clone(),
                text: self.text.clone(),
                id: Some(self.id.clone()),
            },
            None => ClientFrame::Say {
                tags: Default::default(),
                notice: false,
                text: self.text.clone(),
                room: self.room.clone(),
                id: Some(self.id.clone()),
            },
        }
    }
}

/// Why a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Closed {
    /// You quit and the server confirmed (or did not answer within a second).
    Exit,
    /// Reconnecting failed `attempts` times in a row, or the server refused the name for good.
    GaveUp(String),
}

/// What the session reports, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum ChatEvent {
    /// Connected again after a loss (`Chat::connect` covers the first time); missed messages follow.
    Reconnected { rooms: Vec<String> },
    /// A frame for the UI: messages (each once, in seq order), presence, lists, history, errors, …
    Frame(ServerFrame),
    /// The server stored one of your messages.
    Sent {
        message: Outgoing,
        seq: u64,
        ts: String,
    },
    /// The server refused one of your messages; it was not sent.
    Refused {
        message: Outgoing,
        code: ErrorCode,
        /// What the refusal means, in the client's language.
        reason: String,
    },
    /// The connection was lost; the next attempt is in `delay`. Your unsent messages wait.
    Reconnecting { delay: Duration, attempt: u32 },
    /// The session is over. `unsent` were never confirmed by the server.
    Closed { why: Closed, unsent: Vec<Outgoing> },
}

enum Cmd {
    Frame(ClientFrame),
    Message(Outgoing),
    /// A request whose answer (the server frame carrying its `id`) goes to `reply`, not to the UI.
    Request {
        id: String,
        frame: ClientFrame,
        reply: oneshot::Sender<ServerFrame>,
    },
    Quit(oneshot::Sender<()>),
}

/// Makes requests on a chat session and gets their answers back directly — what file transfers use to
/// `offer` and `fetch` while the UI goes on reading events. Cheap to clone.
#[derive(Clone)]
pub struct Requester {
    cmds: mpsc::Sender<Cmd>,
    next: Arc<std::sync::atomic::AtomicU64>,
    /// Where transfer connections go, and how they are trusted: as the chat's own connection.
    pub server: String,
    pub tls: crate::tls::TlsOptions,
}

impl Requester {
    /// Sends `frame` with a fresh `id` (set by `with_id`) and waits for the frame that answers it. Made
    /// again after a reconnect if the connection was lost first; `None` once the session is over.
    pub async fn request(
        &self,
        with_id: impl FnOnce(String) -> ClientFrame,
    ) -> Option<ServerFrame> {
        let n = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let id = format!("rq{}-{n}", std::process::id());
        let (reply, answer) = oneshot::channel();
        let cmd = Cmd::Request {
            frame: with_id(id.clone()),
            id,
            reply,
        };
        self.cmds.send(cmd).await.ok()?;
        answer.await.ok()
    }
}

/// A registered chat session. Dropping it quits.
pub struct Chat {
    cmds: mpsc::Sender<Cmd>,
    events: mpsc::Receiver<ChatEvent>,
    /// The welcome: your name as registered, rooms, and the seq the server was at.
    pub name: String,
    pub rooms: Vec<String>,
    pub last_seq: u64,
    /// How the server's certificate was trusted (a first use is for the user to hear about).
    pub trust: crate::tls::Trust,
    ids: IdSource,
    /// Messages given after the session had already ended: reported as unsent with `Closed`.
    too_late: Vec<Outgoing>,
    server: String,
    tls: crate::tls::TlsOptions,
}

/// Ids unique across runs of the client, so a restarted client never collides with its earlier ids
/// inside the server's deduplication window.
struct IdSource {
    prefix: String,
    next: u64,
}

impl IdSource {
    fn new() -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        Self {
            prefix: format!("{:x}{:x}", nanos as u64, std::process::id()),
            next: 0,
        }
    }

    fn next(&mut self) -> String {
        self.next += 1;
        format!("{}-{}", self.prefix, self.next)
    }
}

/// The outcome of one `hello`.
enum Hello {
    Welcome {
        name: String,
        rooms: Vec<String>,
        last_seq: u64,
    },
    Refused {
        code: ErrorCode,
        message: String,
    },
    Lost,
    /// The server answered in something other than natter's protocol.
    Foreign,
}

/// Says `hello` as `name` — with `key`, as the name's owner: the server's challenge is signed — and waits
/// for the answer.
async fn hello(
    conn: &mut Connection,
    name: &str,
    key: Option<&SigningKey>,
    password: Option<&str>,
    resume_after: Option<u64>,
) -> Hello {
    let frame = ClientFrame::Hello {
        name: name.to_owned(),
        version: natter_proto::VERSION,
        resume_after,
        lobby: true,
        rooms: true,
        key: key.map(auth::public_key),
        password: password.map(str::to_owned),
    };
    if conn.send(frame).await.is_err() {
        return Hello::Lost;
    }
    loop {
        match conn.next().await {
            NetEvent::Frame(ServerFrame::Challenge { nonce }) => {
                let Some(key) = key else { continue };
                let signature = auth::sign(key, &nonce, name);
                if conn.send(ClientFrame::Prove { signature }).await.is_err() {
                    return Hello::Lost;
                }
            }
            NetEvent::Frame(ServerFrame::Welcome {
                name,
                rooms,
                last_seq,
                ..
            }) => {
                // What the server says is shown to the user: nothing in it may drive the terminal.
                return Hello::Welcome {
                    name: neutralise(&name).into_owned(),
                    rooms: rooms.iter().map(|r| neutralise(r).into_owned()).collect(),
                    last_seq,
                };
            }
            NetEvent::Frame(ServerFrame::Error {
                code,
                message,
                args,
                ..
            }) if matches!(
                code,
                ErrorCode::InvalidName
                    | ErrorCode::NameTaken
                    | ErrorCode::NameOwned
                    | ErrorCode::BadProof
                    | ErrorCode::UnsupportedVersion
            ) =>
            {
                // In the user's language; neutralised on the way.
                let message = crate::display::error(code, &args, &message);
                return Hello::Refused { code, message };
            }
            NetEvent::Frame(_) => {}
            // Not natter's protocol: whatever answers there is something else.
            NetEvent::Unreadable(_) => return Hello::Foreign,
            NetEvent::Closed => return Hello::Lost,
        }
    }
}

impl Chat {
    /// Connects and registers. A refused name is an error here (ask for another and call again); after
    /// this returns, connection trouble is handled inside and reported as events.
    pub async fn connect(options: ChatOptions) -> Result<Chat, ClientError> {
        let no_answer = || ClientError::NoAnswer {
            addr: options.server.clone(),
            secs: options.answer_timeout.as_secs_f64(),
        };
        let (mut conn, trust) = tokio::time::timeout(
            options.answer_timeout,
            Connection::connect(&options.server, &options.tls),
        )
        .await
        .map_err(|_| no_answer())??;
        let answer = tokio::time::timeout(
            options.answer_timeout,
            hello(
                &mut conn,
                &options.name,
                options.key.as_deref(),
                options.password.as_deref(),
                None,
            ),
        );
        let (name, rooms, last_seq) = match answer.await.map_err(|_| no_answer())? {
            Hello::Welcome {
                name,
                rooms,
                last_seq,
            } => (name, rooms, last_seq),
            Hello::Refused {
                code: ErrorCode::NameOwned | ErrorCode::BadPassword,
                message,
            } => return Err(ClientError::NameOwned(message)),
            Hello::Refused { message, .. } => return Err(ClientError::NameRejected(message)),
            Hello::Lost => return Err(ClientError::ConnectionLost),
            Hello::Foreign => {
                return Err(ClientError::NotNatter {
                    addr: options.server.clone(),
                })
            }
        };
        let (cmd_tx, cmd_rx) = mpsc::channel(256);
        let (ev_tx, ev_rx) = mpsc::channel(1024);
        let (server, tls) = (options.server.clone(), options.tls.clone());
        let task = Task {
            requests: Vec::new(),
            options: ChatOptions {
                name: name.clone(),
                ..options
            },
            cmds: cmd_rx,
            events: ev_tx,
            last_seq,
            outbox: VecDeque::new(),
            queued: Vec::new(),
        };
        tokio::spawn(task.run(conn));
        Ok(Chat {
            cmds: cmd_tx,
            events: ev_rx,
            name,
            rooms,
            last_seq,
            trust,
            ids: IdSource::new(),
            too_late: Vec::new(),
            server,
            tls,
        })
    }

    /// Sends a message to a room; returns its id. It is reported as `Sent` or `Refused` later.
    pub async fn say(&mut self, room: &str, text: &str) -> String {
        self.message(Some(room.to_owned()), None, text).await
    }

    /// Sends a private message; returns its id.
    pub async fn whisper(&mut self, to: &str, text: &str) -> String {
        self.message(None, Some(to.to_owned()), text).await
    }

    async fn message(&mut self, room: Option<String>, to: Option<String>, text: &str) -> String {
        let id = self.ids.next();
        let message = Outgoing {
            id: id.clone(),
            room,
            to,
            text: text.to_owned(),
        };
        if let Err(mpsc::error::SendError(Cmd::Message(message))) =
            self.cmds.send(Cmd::Message(message)).await
        {
            self.too_late.push(message);
        }
        id
    }

    /// A handle for requests answered directly (file transfers).
    pub fn requester(&self) -> Requester {
        Requester {
            cmds: self.cmds.clone(),
            next: Arc::new(std::sync::atomic::AtomicU64::new(1)),
            server: self.server.clone(),
            tls: self.tls.clone(),
        }
    }

    /// Sends any other request (join, leave, who, rooms, history, ping). Queued while reconnecting.
    pub async fn send(&self, frame: ClientFrame) {
        let _ = self.cmds.send(Cmd::Frame(frame)).await;
    }

    /// The next event. After `Closed`, always `Closed`.
    pub async fn next(&mut self) -> ChatEvent {
        let event = self.events.recv().await.unwrap_or(ChatEvent::Closed {
            why: Closed::Exit,
            unsent: Vec::new(),
        });
        self.account(event)
    }

    /// A message sent after the session ended is never lost silently: it joins the `unsent` list.
    fn account(&mut self, event: ChatEvent) -> ChatEvent {
        match event {
            ChatEvent::Closed { why, mut unsent } => {
                unsent.append(&mut self.too_late);
                ChatEvent::Closed { why, unsent }
            }
            other => other,
        }
    }

    /// The next event if one is waiting, without waiting: lets a UI take a whole burst before redrawing.
    pub fn try_next(&mut self) -> Option<ChatEvent> {
        let event = self.events.try_recv().ok()?;
        Some(self.account(event))
    }

    /// Says `exit` (waiting up to a second for `bye`) and ends the session. The `Closed` event, with any
    /// unconfirmed messages, is still delivered through [`Chat::next`].
    pub async fn quit(&self) {
        self.quit_later().await
    }

    /// [`Chat::quit`] as a future that does not borrow the chat, so its events can be shown meanwhile.
    pub fn quit_later(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let cmds = self.cmds.clone();
        async move {
            let (tx, rx) = oneshot::channel();
            if cmds.send(Cmd::Quit(tx)).await.is_ok() {
                let _ = rx.await;
            }
        }
    }
}

struct Task {
    options: ChatOptions,
    cmds: mpsc::Receiver<Cmd>,
    events: mpsc::Sender<ChatEvent>,
    /// The highest seq seen: messages at or below it are duplicates; a resume starts after it.
    last_seq: u64,
    /// Sent but not yet acknowledged, oldest first.
    outbox: VecDeque<Outgoing>,
    /// Other requests made while disconnected.
    queued: Vec<ClientFrame>,
    /// Requests waiting for their answer (sent again after a reconnect).
    requests: Vec<(String, ClientFrame, oneshot::Sender<ServerFrame>)>,
}

/// How a connected phase ended.
enum Phase {
    Lost,
    Done,
}

impl Task {
    async fn run(mut self, first: Connection) {
        let mut conn = first;
        loop {
            if let Phase::Done = self.connected(&mut conn).await {
                return;
            }
            match self.reconnect().await {
                Some(c) => conn = c,
                None => return,
            }
        }
    }

    async fn emit(&self, event: ChatEvent) -> bool {
        self.events.send(event).await.is_ok()
    }

    /// Runs one connection until it is lost or the session ends.
    async fn connected(&mut self, conn: &mut Connection) -> Phase {
        let mut last_heard = Instant::now();
        let mut pinged = false;
        let mut tick = tokio::time::interval(self.options.keepalive / 2);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                cmd = self.cmds.recv() => match cmd {
                    Some(Cmd::Message(m)) => {
                        let frame = m.frame();
                        self.outbox.push_back(m);
                        if conn.send(frame).await.is_err() {
                            return Phase::Lost;
                        }
                    }
                    Some(Cmd::Frame(frame)) => {
                        if conn.send(frame).await.is_err() {
                            return Phase::Lost;
                        }
                    }
                    Some(Cmd::Request { id, frame, reply }) => {
                        let sent = conn.send(frame.clone()).await;
                        self.requests.push((id, frame, reply));
                        if sent.is_err() {
                            return Phase::Lost;
                        }
                    }
                    Some(Cmd::Quit(done)) => {
                        self.quit(conn).await;
                        let _ = done.send(());
                        return Phase::Done;
                    }
                    None => {
                        self.quit(conn).await;
                        return Phase::Done;
                    }
                },
                event = conn.next() => match event {
                    NetEvent::Frame(ServerFrame::Ping { id }) => {
                        last_heard = Instant::now();
                        if conn.send(ClientFrame::Pong { id }).await.is_err() {
                            return Phase::Lost;
                        }
                    }
                    NetEvent::Frame(frame) => {
                        last_heard = Instant::now();
                        pinged = false;
                        match self.received(frame).await {
                            Some(phase) => return phase,
                            None => continue,
                        }
                    }
                    NetEvent::Unreadable(_) => {}
                    NetEvent::Closed => return Phase::Lost,
                },
                _ = tick.tick() => {
                    let silent = last_heard.elapsed();
                    if silent >= self.options.keepalive * 2 {
                        return Phase::Lost; // half-open: the server vanished without a FIN
                    }
                    if silent >= self.options.keepalive && !pinged {
                        pinged = true;
                        let ping = ClientFrame::Ping { id: Some("keepalive".into()) };
                        if conn.send(ping).await.is_err() {
                            return Phase::Lost;
                        }
                    }
                }
            }
        }
    }

    /// Handles one frame. `Some` ends the connected phase.
    async fn received(&mut self, frame: ServerFrame) -> Option<Phase> {
        let answers = match &frame {
            ServerFrame::UploadReady { id: Some(id), .. }
            | ServerFrame::DownloadReady { id: Some(id), .. }
            | ServerFrame::Error { id: Some(id), .. } => Some(id.clone()),
            _ => None,
        };
        if let Some(i) = answers.and_then(|id| self.requests.iter().position(|(r, ..)| *r == id)) {
            let (_, _, reply) = self.requests.swap_remove(i);
            let _ = reply.send(frame);
            return None;
        }
        let event = match frame {
            ServerFrame::Message(m) => {
                if m.seq <= self.last_seq {
                    return None; // already seen (a resume overlapping live traffic)
                }
                self.last_seq = m.seq;
                ChatEvent::Frame(ServerFrame::Message(m))
            }
            ServerFrame::Ack { id, seq, ts } => {
                self.last_seq = self.last_seq.max(seq);
                let Some(message) = id.and_then(|id| self.take_pending(&id)) else {
                    return None; // the ack of a resend whose first ack we already had
                };
                ChatEvent::Sent { message, seq, ts }
            }
            ServerFrame::Error {
                code,
                message: reason,
                args,
                id: Some(id),
                ..
            } if self.outbox.iter().any(|m| m.id == id) => {
                let message = self.take_pending(&id).expect("checked just above");
                ChatEvent::Refused {
                    message,
                    code,
                    reason: crate::display::error(code, &args, &reason),
                }
            }
            ServerFrame::Pong { id: Some(id) } if id == "keepalive" => return None,
            ServerFrame::Bye { .. } => {
                // Unasked-for: the server is going away. Come back when it does.
                let _ = self.emit(ChatEvent::Frame(frame)).await;
                return Some(Phase::Lost);
            }
            other => ChatEvent::Frame(other),
        };
        if self.emit(event).await {
            None
        } else {
            Some(Phase::Done)
        }
    }

    /// Removes and returns the unacknowledged message with this id, if any.
    fn take_pending(&mut self, id: &str) -> Option<Outgoing> {
        let i = self.outbox.iter().position(|m| m.id == id)?;
        self.outbox.remove(i)
    }

    async fn quit(&mut self, conn: &mut Connection) {
        // The server answers `exit` after everything sent before it, so `bye` also means "all acked".
        // Wait a second for it — longer while messages are unconfirmed (flood control may be pacing them).
        let wait = if self.outbox.is_empty() {
            Duration::from_secs(1)
        } else {
            Duration::from_secs(1) + Duration::from_millis(500) * self.outbox.len().min(120) as u32
        };
        if conn.send(ClientFrame::Exit { text: None }).await.is_ok() {
            let _ = tokio::time::timeout(wait, async {
                loop {
                    match conn.next().await {
                        NetEvent::Frame(ServerFrame::Bye { .. }) | NetEvent::Closed => return,
                        NetEvent::Frame(frame) => {
                            let _ = self.received(frame).await;
                        }
                        NetEvent::Unreadable(_) => {}
                    }
                }
            })
            .await;
        }
        let unsent = self.outbox.drain(..).collect();
        let _ = self
            .emit(ChatEvent::Closed {
                why: Closed::Exit,
                unsent,
            })
            .await;
    }

    /// Waits, retries, resumes. `None` when the session ended meanwhile.
    async fn reconnect(&mut self) -> Option<Connection> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            if self
                .options
                .backoff
                .attempts
                .is_some_and(|max| attempt > max)
            {
                let unsent = self.outbox.drain(..).collect();
                let why = Closed::GaveUp(natter_i18n::t!(
                    "gave-up-unreachable",
                    server = &self.options.server,
                    attempts = attempt - 1
                ));
                let _ = self.emit(ChatEvent::Closed { why, unsent }).await;
                return None;
            }
            let delay = self.options.backoff.delay(attempt);
            if !self.emit(ChatEvent::Reconnecting { delay, attempt }).await {
                return None;
            }
            // Keep taking commands while we wait: messages join the outbox, other requests are queued.
            let sleep = tokio::time::sleep(delay);
            tokio::pin!(sleep);
            loop {
                tokio::select! {
                    _ = &mut sleep => break,
                    cmd = self.cmds.recv() => match cmd {
                        Some(Cmd::Message(m)) => self.outbox.push_back(m),
                        Some(Cmd::Frame(f)) => self.queued.push(f),
                        Some(Cmd::Request { id, frame, reply }) => self.requests.push((id, frame, reply)),
                        Some(Cmd::Quit(done)) => {
                            let unsent = self.outbox.drain(..).collect();
                            let _ = self.emit(ChatEvent::Closed { why: Closed::Exit, unsent }).await;
                            let _ = done.send(());
                            return None;
                        }
                        None => return None,
                    }
                }
            }
            let limit = self.options.answer_timeout;
            let connected = tokio::time::timeout(
                limit,
                Connection::connect(&self.options.server, &self.options.tls),
            )
            .await;
            let mut conn = match connected {
                Ok(Ok((conn, _))) => conn,
                // Another certificate than before is not a network hiccup: stop, and say why.
                Ok(Err(e @ (ClientError::CertChanged { .. } | ClientError::NotPinned { .. }))) => {
                    let unsent = self.outbox.drain(..).collect();
                    let why = Closed::GaveUp(e.to_string());
                    let _ = self.emit(ChatEvent::Closed { why, unsent }).await;
                    return None;
                }
                _ => continue,
            };
            let answer = tokio::time::timeout(
                limit,
                hello(
                    &mut conn,
                    &self.options.name,
                    self.options.key.as_deref(),
                    // With a key, the first `hello` made it one of the name's keys: no password again.
                    match self.options.key {
                        Some(_) => None,
                        None => self.options.password.as_deref(),
                    },
                    Some(self.last_seq),
                ),
            );
            match answer.await.unwrap_or(Hello::Lost) {
                Hello::Welcome { rooms, .. } => {
                    if !self.emit(ChatEvent::Reconnected { rooms }).await {
                        return None;
                    }
                    // Same ids: whatever the server already stored is acked, not delivered again.
                    for m in &self.outbox {
                        if conn.send(m.frame()).await.is_err() {
                            break;
                        }
                    }
                    for f in std::mem::take(&mut self.queued) {
                        let _ = conn.send(f).await;
                    }
                    // Unanswered requests: asked again (an answer lost with the connection).
                    self.requests.retain(|(.., reply)| !reply.is_closed());
                    for (_, f, _) in &self.requests {
                        let _ = conn.send(f.clone()).await;
                    }
                    return Some(conn);
                }
                // Our old connection may not be gone from the server yet: try again shortly.
                Hello::Refused {
                    code: ErrorCode::NameTaken,
                    ..
                }
                | Hello::Lost
                | Hello::Foreign => continue,
                Hello::Refused { message, .. } => {
                    let unsent = self.outbox.drain(..).collect();
                    let _ = self
                        .emit(ChatEvent::Closed {
                            why: Closed::GaveUp(message),
                            unsent,
                        })
                        .await;
                    return None;
                }
            }
        }
    }
}
