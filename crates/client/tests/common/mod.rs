//! Test helpers for the client library: a real server on 127.0.0.1:0, and a TCP proxy between clients and
//! server that a test can pause or cut — the "Wi-Fi drops" of the tests.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

pub use natter_server::testing::TestServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// A TCP proxy to `upstream`. Every connection through it can be cut, or have its server→client
/// direction paused (the client then looks like one that stopped reading).
pub struct Proxy {
    pub addr: SocketAddr,
    state: Arc<State>,
}

struct State {
    upstream: SocketAddr,
    /// Receive buffer for the proxy's upstream sockets; small values make a paused client back up fast.
    upstream_rcvbuf: Option<u32>,
    /// Cancelled to cut every current connection; replaced by a fresh token after each cut.
    cut: Mutex<CancellationToken>,
    /// While true, nothing flows from the server to clients.
    paused: watch::Sender<bool>,
}

impl Proxy {
    pub async fn start(upstream: SocketAddr, upstream_rcvbuf: Option<u32>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State {
            upstream,
            upstream_rcvbuf,
            cut: Mutex::new(CancellationToken::new()),
            paused: watch::channel(false).0,
        });
        let st = state.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let st = st.clone();
                tokio::spawn(async move { st.serve(client).await });
            }
        });
        Self { addr, state }
    }

    /// Cuts every current connection. Each direction forwards half of whatever it is carrying at that
    /// moment and then closes, so frames are cut in the middle too.
    pub fn cut(&self) {
        let mut cut = self.state.cut.lock().unwrap();
        cut.cancel();
        *cut = CancellationToken::new();
    }

    pub fn pause(&self, paused: bool) {
        self.state.paused.send_replace(paused);
    }
}

impl State {
    async fn serve(self: Arc<Self>, client: TcpStream) {
        let socket = TcpSocket::new_v4().unwrap();
        if let Some(size) = self.upstream_rcvbuf {
            socket.set_recv_buffer_size(size).unwrap();
        }
        let Ok(server) = socket.connect(self.upstream).await else {
            return;
        };
        // A child token: cutting the proxy cuts this connection, and this connection ending cuts only itself.
        let cut = self.cut.lock().unwrap().child_token();
        let (cr, cw) = client.into_split();
        let (sr, sw) = server.into_split();
        let up = tokio::spawn(pump(cr, sw, cut.clone(), None));
        let down = tokio::spawn(pump(sr, cw, cut.clone(), Some(self.paused.subscribe())));
        let _ = tokio::join!(up, down);
    }
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    cut: CancellationToken,
    mut paused: Option<watch::Receiver<bool>>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        if let Some(p) = &mut paused {
            tokio::select! {
                _ = p.wait_for(|paused| !paused) => {}
                _ = cut.cancelled() => break,
            }
        }
        let n = tokio::select! {
            n = from.read(&mut buf) => match n { Ok(0) | Err(_) => break, Ok(n) => n },
            _ = cut.cancelled() => break,
        };
        if cut.is_cancelled() {
            let _ = to.write_all(&buf[..n / 2]).await;
            break;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    cut.cancel(); // one direction ending ends the other
}
