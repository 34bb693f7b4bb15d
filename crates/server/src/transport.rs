//! Transports: the byte streams a session runs over.
//!
//! A session is generic over a [`Transport`] — anything that reads and writes bytes and splits into a read
//! half (for the reader task) and a write half (for the writer task). A plain TCP connection splits without
//! a lock; any other stream ([`Stream`]: TLS, a WebSocket adapter) splits through tokio's.
//!
//! What runs over an accepted TCP connection is decided by its first bytes, in two steps: here the first
//! byte picks the transport ([`sniff`]: 0x16 opens a TLS handshake), then the session's first line picks
//! the front end (`frontend::pick`). Nothing is ever sent before the client's first bytes could arrive,
//! so sniffing never races a greeting.

use std::time::Instant;

use natter_i18n::{tl, Lang};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

/// A byte stream a session can run over.
pub trait Transport: Send + 'static {
    type Read: AsyncRead + Send + Unpin + 'static;
    type Write: AsyncWrite + Send + Sync + Unpin + 'static;

    fn split(self) -> (Self::Read, Self::Write);

    /// What the first bytes say, waiting at most until `deadline`. A stream that cannot look ahead (one
    /// that is already TLS or WebSocket) is what it is: [`Sniffed::Clear`].
    fn sniff(
        &self,
        _deadline: Instant,
        _lang: Lang,
        _shutdown: &CancellationToken,
    ) -> impl std::future::Future<Output = Sniffed> + Send {
        std::future::ready(Sniffed::Clear)
    }

    /// The TCP connection underneath, for a TLS handshake (`None` for a stream that is no bare TCP).
    fn into_tcp(self) -> Option<TcpStream>
    where
        Self: Sized,
    {
        None
    }

    /// Writes one last line if the socket takes it at once (a refusal before closing).
    fn refuse(&self, _line: &[u8]) {}
}

impl Transport for TcpStream {
    type Read = tokio::net::tcp::OwnedReadHalf;
    type Write = tokio::net::tcp::OwnedWriteHalf;

    fn split(self) -> (Self::Read, Self::Write) {
        self.into_split()
    }

    fn sniff(
        &self,
        deadline: Instant,
        lang: Lang,
        shutdown: &CancellationToken,
    ) -> impl std::future::Future<Output = Sniffed> + Send {
        sniff(self, deadline, lang, shutdown)
    }

    fn into_tcp(self) -> Option<TcpStream> {
        Some(self)
    }

    fn refuse(&self, line: &[u8]) {
        // The socket's buffer is empty: this never blocks.
        let _ = self.try_write(line);
    }
}

/// Any other stream, split through tokio's lock.
pub struct Stream<S>(pub S);

impl<S: AsyncRead + AsyncWrite + Send + Sync + 'static> Transport for Stream<S> {
    type Read = tokio::io::ReadHalf<S>;
    type Write = tokio::io::WriteHalf<S>;

    fn split(self) -> (Self::Read, Self::Write) {
        tokio::io::split(self.0)
    }
}

/// What the first byte of a connection says.
#[derive(Debug, PartialEq, Eq)]
pub enum Sniffed {
    /// Text (JSON lines, plain text, HTTP) — or nothing yet by the deadline, which the session then
    /// answers with `registration_timeout`.
    Clear,
    /// A TLS handshake (a ClientHello record starts with 0x16).
    Tls,
    /// The peer closed (or the connection failed) before saying anything, or the server is stopping.
    Gone,
}

/// How long a connection may stay silent before it is told what to type. Programs (natter's clients, a
/// TLS handshake) speak first and at once, so they never see it; a person behind `nc` does.
pub const GREETING_DELAY: std::time::Duration = std::time::Duration::from_secs(1);

/// What a silent connection is told after [`GREETING_DELAY`], in the server's language.
pub fn greeting(lang: Lang) -> String {
    format!("* {}\r\n", tl!(lang, "plain-greeting"))
}

/// Waits for the first byte (without consuming it) until `deadline`. A connection still silent after
/// [`GREETING_DELAY`] gets [`greeting`] once — only then, so nothing is ever sent before a client's first
/// bytes could have arrived.
pub async fn sniff(
    stream: &TcpStream,
    deadline: Instant,
    lang: Lang,
    shutdown: &CancellationToken,
) -> Sniffed {
    let greet_at = (Instant::now() + GREETING_DELAY).min(deadline);
    let mut greeted = false;
    loop {
        let mut first = [0u8; 1];
        let wake = if greeted { deadline } else { greet_at };
        tokio::select! {
            _ = shutdown.cancelled() => return Sniffed::Gone,
            _ = tokio::time::sleep_until(wake.into()) => {
                if greeted || wake >= deadline {
                    return Sniffed::Clear;
                }
                greeted = true;
                // The socket's buffer is empty: this never blocks.
                let _ = stream.try_write(greeting(lang).as_bytes());
            }
            peeked = stream.peek(&mut first) => return match peeked {
                Ok(1..) if first[0] == 0x16 => Sniffed::Tls,
                Ok(1..) => Sniffed::Clear,
                _ => Sniffed::Gone,
            }
        }
    }
}
