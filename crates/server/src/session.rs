//! One connection: a reader task (this module's [`serve`]) and a writer task it spawns.
//!
//! * The reader owns the read half: it decodes frames, decides the front end (native JSON or plain text)
//!   from the first line, and turns each request into a hub call. It never writes the socket.
//! * The writer owns the write half: it drains the connection's [`Outbox`] — everything queued since its
//!   last wake-up goes out in one write — and is the only code that writes this socket.
//! * They end together: the reader closes the outbox (the writer flushes and sends FIN); a failed write or
//!   an overflowed outbox cancels `conn` (the reader stops and unregisters).

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use futures::StreamExt;
use natter_proto::frame::ByeReason;
use natter_proto::{ClientFrame, ErrorCode, FrameCodec, FrameError, LeftReason, Name, ServerFrame};
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpStream;
use tokio_util::codec::FramedRead;
use tokio_util::sync::CancellationToken;

use crate::hub::Hub;
use crate::outbox::{Next, Outbox, Outgoing};
use crate::plain::{self, Input};
use crate::Config;

/// Which front end a connection speaks, decided by its first line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// One JSON object per line (PROTOCOL.md).
    Native,
    /// Human lines for `nc` / `telnet`.
    Plain,
}

/// Whether the reader should keep going.
#[derive(PartialEq, Eq)]
enum Flow {
    Continue,
    Exit,
}

struct Session {
    hub: Arc<Hub>,
    outbox: Arc<Outbox>,
    peer: SocketAddr,
    /// Set once `hello` succeeded.
    name: Option<Name>,
    /// Set by the first line; read by the writer when it renders.
    mode: Arc<OnceLock<Mode>>,
}

/// Serves one accepted connection until it ends.
pub async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    hub: Arc<Hub>,
    config: Arc<Config>,
    shutdown: CancellationToken,
) {
    tracing::info!("connection from {peer}");
    let (read, write) = stream.into_split();
    let outbox = Outbox::new(config.max_outbox);
    let conn = CancellationToken::new();
    let mode = Arc::new(OnceLock::new());
    let writer = tokio::spawn(write_loop(
        write,
        outbox.clone(),
        mode.clone(),
        conn.clone(),
    ));

    let mut session = Session {
        hub,
        outbox,
        peer,
        name: None,
        mode,
    };
    let mut frames = FramedRead::new(read, FrameCodec::new(config.max_frame));
    let reason = loop {
        tokio::select! {
            _ = conn.cancelled() => {
                break if session.outbox.is_overflowed() { LeftReason::TooSlow } else { LeftReason::Disconnect };
            }
            _ = shutdown.cancelled() => {
                session.leave(None);
                session.outbox.push_last(ServerFrame::Bye { reason: ByeReason::Shutdown });
                break LeftReason::Other;
            }
            item = frames.next() => match item {
                None | Some(Err(_)) => break LeftReason::Disconnect,
                Some(Ok(Err(FrameError::TooLarge { limit }))) => {
                    session.mode.get_or_init(|| Mode::Native);
                    session.error(ErrorCode::FrameTooLarge, format!("frame longer than {limit} bytes; skipped"), None);
                }
                Some(Ok(Ok(line))) => {
                    if session.line(&line) == Flow::Exit {
                        break LeftReason::Exit;
                    }
                }
            }
        }
    };
    session.leave(Some(reason));
    session.outbox.close();
    let abort = writer.abort_handle();
    if tokio::time::timeout(config.shutdown_grace, writer)
        .await
        .is_err()
    {
        tracing::debug!("{peer}: writer did not finish in time; dropping the connection");
        abort.abort();
    }
}

impl Session {
    /// Handles one complete line.
    fn line(&mut self, line: &[u8]) -> Flow {
        if line.iter().all(u8::is_ascii_whitespace) {
            return Flow::Continue; // blank lines are keep-alives, not errors
        }
        let mode = *self.mode.get_or_init(|| {
            if line.trim_ascii_start().first() == Some(&b'{') {
                Mode::Native
            } else {
                Mode::Plain
            }
        });
        match mode {
            Mode::Native => match ClientFrame::parse(line) {
                Ok(frame) => self.dispatch(frame),
                Err(bad) => {
                    self.error(bad.code, bad.message, bad.id);
                    Flow::Continue
                }
            },
            Mode::Plain => match plain::translate(line, self.name.is_some()) {
                Input::Frame(frame) => self.dispatch(frame),
                Input::Notice(text) => {
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

    /// Carries out one request. The table of what needs registration is the match below.
    fn dispatch(&mut self, frame: ClientFrame) -> Flow {
        let me = match (&self.name, frame) {
            // Allowed at any time.
            (_, ClientFrame::Ping { id }) => {
                self.outbox.send(ServerFrame::Pong { id });
                return Flow::Continue;
            }
            (_, ClientFrame::Exit) => {
                self.leave(Some(LeftReason::Exit));
                self.outbox.push_last(ServerFrame::Bye {
                    reason: ByeReason::Exit,
                });
                return Flow::Exit;
            }
            (None, ClientFrame::Hello { name, version }) => {
                if version != natter_proto::VERSION {
                    let msg = format!(
                        "this server speaks protocol version {}",
                        natter_proto::VERSION
                    );
                    self.error(ErrorCode::UnsupportedVersion, msg, None);
                } else if let Some(name) = self.hub.register(&name, &self.outbox) {
                    tracing::info!("{} is now {name}", self.peer);
                    self.name = Some(name);
                }
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
            (Some(me), frame) => (me.clone(), frame),
        };
        let hub = &self.hub;
        match me {
            (me, ClientFrame::Say { text, room, id }) => hub.say(&me, room.as_deref(), &text, id),
            (me, ClientFrame::Whisper { to, text, id }) => hub.whisper(&me, &to, &text, id),
            (me, ClientFrame::Join { room }) => hub.join(&me, &room),
            (me, ClientFrame::Leave { room }) => hub.leave(&me, &room),
            (me, ClientFrame::Who { room }) => hub.who(&me, room.as_deref()),
            (me, ClientFrame::Rooms) => hub.rooms(&me),
            (_, ClientFrame::Hello { .. } | ClientFrame::Ping { .. } | ClientFrame::Exit) => {
                unreachable!("handled above")
            }
        }
        Flow::Continue
    }

    /// Unregisters (once). `None` means quietly: no `left` announcements (server shutdown).
    fn leave(&mut self, reason: Option<LeftReason>) {
        if let Some(name) = self.name.take() {
            let how = reason.map_or("shutdown", LeftReason::as_str);
            tracing::info!("{name} ({}) left: {how}", self.peer);
            self.hub
                .unregister(&name, reason.filter(|r| *r != LeftReason::Other));
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
async fn write_loop(
    mut write: OwnedWriteHalf,
    outbox: Arc<Outbox>,
    mode: Arc<OnceLock<Mode>>,
    conn: CancellationToken,
) {
    let mut batch = Vec::new();
    let mut buf = Vec::with_capacity(16 * 1024);
    loop {
        match outbox.next(&mut batch).await {
            Next::Write => {
                buf.clear();
                let mode = mode.get().copied();
                for item in batch.drain(..) {
                    render(mode, &item, &mut buf);
                }
                tokio::select! {
                    written = write.write_all(&buf) => if written.is_err() { break },
                    // The peer stopped reading and the outbox filled up meanwhile: give up on it now.
                    _ = outbox.overflowed() => break,
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
                render(mode.get().copied(), &Outgoing::new(frame), &mut last);
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
    conn.cancel();
}

/// Appends one outbox item as this connection's front end shows it.
fn render(mode: Option<Mode>, item: &Arc<Outgoing>, buf: &mut Vec<u8>) {
    match (mode, &**item) {
        (Some(Mode::Plain), _) => plain::render(item, buf),
        (_, Outgoing::Frame { json, .. }) => buf.extend_from_slice(json),
        (_, Outgoing::Notice(_)) => {} // notices exist only for text front ends
    }
}
