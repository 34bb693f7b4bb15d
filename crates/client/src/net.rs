//! The network side of a client: one task reads frames, one writes them. The rest of the client talks to
//! them through channels — [`Connection::send`] and [`Connection::next`] — and never sees the socket.

use futures::StreamExt;
use natter_proto::{ClientFrame, FrameCodec, ServerFrame};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_util::codec::FramedRead;

use crate::tls::{Refused, TlsOptions, Trust};
use crate::ClientError;

/// `host` alone means natter's usual port: `192.168.1.20` is `192.168.1.20:5500`.
pub fn with_port(addr: &str) -> String {
    let bare_v6 = addr.starts_with('[') && addr.ends_with(']');
    if bare_v6 || !addr.contains(':') {
        format!("{addr}:{DEFAULT_PORT}")
    } else {
        addr.to_owned()
    }
}

/// The port `natter serve` listens on by default (the lab's).
pub const DEFAULT_PORT: u16 = 5500;

/// Largest frame a client accepts from the server. Generous: history pages are big frames.
pub const CLIENT_MAX_FRAME: usize = 16 * 1024 * 1024;

/// What the network task reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetEvent {
    Frame(ServerFrame),
    /// The server sent something this client cannot read; it is skipped.
    Unreadable(String),
    /// The connection closed (after `bye`, or unexpectedly).
    Closed,
}

/// A live connection to a natter server.
pub struct Connection {
    /// Unbounded on purpose: whoever sends must never block on a socket the server is not reading at the
    /// moment, or it would stop reading the server in turn and both ends would wait for each other. What
    /// is queued here is bounded by what the user typed (the chat session's outbox).
    outgoing: mpsc::UnboundedSender<ClientFrame>,
    incoming: mpsc::Receiver<NetEvent>,
}

/// A byte stream to the server: TCP, or TLS over it.
pub trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static> Io for T {}

impl Connection {
    /// Connects to `addr` (`host:port`) — over TLS unless `tls.off` — and starts the reader and writer
    /// tasks. A server on this machine that does not speak TLS at all is spoken to in plain text.
    pub async fn connect(addr: &str, tls: &TlsOptions) -> Result<(Self, Trust), ClientError> {
        let (stream, trust) = open(addr, tls).await?;
        Ok((Self::from_stream(stream), trust))
    }
}

/// Opens a byte stream as [`Connection::connect`] does (file transfers use it bare). `servers` is one
/// server or several, comma-separated (the nodes of a cluster: `a:5500,b:5500,c:5500`), and a name may
/// stand for several addresses: they are tried in order until one answers. A server that answers with
/// another certificate than before stops the search (that is not a node being down).
pub async fn open(servers: &str, tls: &TlsOptions) -> Result<(Box<dyn Io>, Trust), ClientError> {
    let mut unreachable = None;
    let all: Vec<&str> = servers
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    for server in &all {
        let tls = TlsOptions {
            same_server: all
                .iter()
                .filter(|s| *s != server)
                .map(|s| s.to_string())
                .collect(),
            ..tls.clone()
        };
        match open_one(server, &tls).await {
            Err(e @ ClientError::Connect { .. }) => unreachable = Some(e),
            done => return done,
        }
    }
    Err(unreachable.unwrap_or_else(|| ClientError::Connect {
        addr: servers.to_owned(),
        source: std::io::ErrorKind::InvalidInput.into(),
    }))
}

/// How long one address may take to accept a connection before the next is tried.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// A TCP connection to one of `addr`'s addresses (a name may have several), the first that answers.
async fn tcp_to(addr: &str) -> Result<TcpStream, ClientError> {
    let failed = |source| ClientError::Connect {
        addr: addr.to_owned(),
        source,
    };
    let mut last = None;
    for resolved in tokio::net::lookup_host(addr).await.map_err(failed)? {
        match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(resolved)).await {
            Ok(Ok(stream)) => {
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
            Ok(Err(e)) => last = Some(e),
            Err(_) => last = Some(std::io::ErrorKind::TimedOut.into()),
        }
    }
    Err(failed(
        last.unwrap_or_else(|| std::io::ErrorKind::NotFound.into()),
    ))
}

/// [`open`] for one server.
async fn open_one(addr: &str, tls: &TlsOptions) -> Result<(Box<dyn Io>, Trust), ClientError> {
    {
        let addr = with_port(addr);
        let tcp = || tcp_to(&addr);
        if tls.off {
            return Ok((Box::new(tcp().await?), Trust::Plain));
        }
        match crate::tls::handshake(tcp().await?, &addr, tls).await {
            Ok((stream, trust)) => Ok((Box::new(stream), trust)),
            Err(Refused::Failed(_)) if crate::tls::is_local(&addr) => {
                // An older natter, or one with TLS off: on this machine, plain text is as private.
                Ok((Box::new(tcp().await?), Trust::Plain))
            }
            Err(Refused::Failed(why)) => Err(ClientError::Tls { addr, why }),
            Err(Refused::Changed { old, new }) => Err(ClientError::CertChanged {
                addr,
                old,
                new,
                file: tls
                    .known_servers
                    .as_ref()
                    .map(|f| f.display().to_string())
                    .unwrap_or_default(),
            }),
            Err(Refused::NotPinned { pinned, got }) => {
                Err(ClientError::NotPinned { addr, pinned, got })
            }
        }
    }
}

impl Connection {
    pub fn from_stream<S>(stream: S) -> Self
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + 'static,
    {
        let (read, mut write) = tokio::io::split(stream);
        let (out_tx, mut out_rx) = mpsc::unbounded_channel::<ClientFrame>();
        let (in_tx, in_rx) = mpsc::channel::<NetEvent>(1024);

        tokio::spawn(async move {
            while let Some(frame) = out_rx.recv().await {
                if write.write_all(&frame.encode()).await.is_err() {
                    break;
                }
            }
            let _ = write.shutdown().await;
        });

        tokio::spawn(async move {
            let mut frames = FramedRead::new(read, FrameCodec::new(CLIENT_MAX_FRAME));
            while let Some(Ok(item)) = frames.next().await {
                let event = match item {
                    Ok(line) => match serde_json::from_slice::<ServerFrame>(&line) {
                        Ok(frame) => NetEvent::Frame(frame),
                        Err(e) => NetEvent::Unreadable(e.to_string()),
                    },
                    Err(e) => NetEvent::Unreadable(e.to_string()),
                };
                if in_tx.send(event).await.is_err() {
                    return; // nobody is listening any more
                }
            }
            let _ = in_tx.send(NetEvent::Closed).await;
        });

        Self {
            outgoing: out_tx,
            incoming: in_rx,
        }
    }

    /// Queues a frame for the server. Fails only if the connection is gone.
    pub async fn send(&self, frame: ClientFrame) -> Result<(), ClientError> {
        self.outgoing
            .send(frame)
            .map_err(|_| ClientError::ConnectionLost)
    }

    /// The next event; `Closed` once the connection is gone (and forever after).
    pub async fn next(&mut self) -> NetEvent {
        self.incoming.recv().await.unwrap_or(NetEvent::Closed)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_host_alone_means_natters_port() {
        assert_eq!(super::with_port("192.168.1.20"), "192.168.1.20:5500");
        assert_eq!(super::with_port("localhost:6000"), "localhost:6000");
        assert_eq!(super::with_port("[::1]"), "[::1]:5500");
        assert_eq!(super::with_port("[::1]:7"), "[::1]:7");
    }
}
