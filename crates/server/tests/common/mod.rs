//! Shared helpers for server integration tests: a real server on 127.0.0.1:0 and a raw JSON-lines client
//! that sees exactly the bytes on the wire.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

/// How long any single expected frame may take before the test fails (a bound, not a sleep).
pub const WAIT: Duration = Duration::from_secs(10);

pub use natter_server::testing::TestServer;

/// Test-only conveniences on the shared test server.
pub trait Connect {
    async fn connect(&self) -> Client;
    /// Connects and registers as `name`, consuming welcome, joined, users and the replay.
    async fn join(&self, name: &str) -> Client;
}

impl Connect for TestServer {
    async fn connect(&self) -> Client {
        Client::connect(self.addr).await
    }

    async fn join(&self, name: &str) -> Client {
        let mut c = self.connect().await;
        c.hello(name).await;
        c
    }
}

pub struct Client {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    pings: u64,
}

impl Client {
    pub async fn connect(addr: SocketAddr) -> Self {
        Self::from_stream(TcpStream::connect(addr).await.unwrap())
    }

    /// Connects from the loopback address `source` (all of 127.0.0.0/8 is this machine).
    pub async fn connect_from(addr: SocketAddr, source: &str) -> Self {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
        Self::from_stream(socket.connect(addr).await.unwrap())
    }

    /// Connects with a tiny receive buffer (no autotuning), so a client that stops reading backs up
    /// into the server after kilobytes instead of tens of megabytes.
    pub async fn connect_small_window(addr: SocketAddr) -> Self {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        Self::from_stream(socket.connect(addr).await.unwrap())
    }

    pub fn from_stream(stream: TcpStream) -> Self {
        let (r, w) = stream.into_split();
        Self {
            reader: BufReader::new(r),
            writer: w,
            pings: 0,
        }
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).await.unwrap();
    }

    pub async fn send(&mut self, frame: Value) {
        let mut line = serde_json::to_vec(&frame).unwrap();
        line.push(b'\n');
        self.send_raw(&line).await;
    }

    /// The next raw line (without its newline), or None at EOF.
    pub async fn recv_line(&mut self) -> Option<String> {
        self.recv_line_within(WAIT).await
    }

    /// [`Client::recv_line`], waiting at most `limit`.
    pub async fn recv_line_within(&mut self, limit: std::time::Duration) -> Option<String> {
        let mut line = String::new();
        let n = tokio::time::timeout(limit, self.reader.read_line(&mut line))
            .await
            .expect("timed out waiting for a line")
            .unwrap_or(0);
        if n == 0 {
            return None;
        }
        assert!(line.ends_with('\n'), "unterminated line {line:?}");
        line.pop();
        if line.ends_with('\r') {
            line.pop();
        }
        Some(line)
    }

    /// The next frame, parsed.
    pub async fn recv(&mut self) -> Value {
        let line = self
            .recv_line()
            .await
            .expect("connection closed while waiting for a frame");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON: {line:?}: {e}"))
    }

    /// The next frame, which must have the given type.
    pub async fn expect(&mut self, ty: &str) -> Value {
        let f = self.recv().await;
        assert_eq!(f["type"], ty, "expected a {ty} frame, got {f}");
        f
    }

    /// Sends `ping` and returns every frame that arrived before the matching `pong`: a barrier that
    /// proves the server has processed everything sent before it.
    pub async fn sync(&mut self) -> Vec<Value> {
        self.pings += 1;
        let id = format!("sync-{}", self.pings);
        self.send(json!({"type":"ping","id":id})).await;
        let mut before = Vec::new();
        loop {
            let f = self.recv().await;
            if f["type"] == "pong" && f["id"] == id.as_str() {
                return before;
            }
            before.push(f);
        }
    }

    /// Asserts nothing is pending for this client.
    pub async fn expect_nothing(&mut self) {
        let pending = self.sync().await;
        assert!(pending.is_empty(), "unexpected frames: {pending:?}");
    }

    /// Registers, consuming welcome, then joined + users for each room, then the replay (one history frame
    /// per room and one for private messages).
    pub async fn hello(&mut self, name: &str) -> Value {
        self.send(json!({"type":"hello","name":name,"version":1}))
            .await;
        self.finish_hello().await
    }

    /// Registers as the owner of `name` with the key made from `seed` (claiming the name if nobody owns
    /// it), consuming what [`Client::hello`] consumes. Panics if the server refuses.
    pub async fn hello_owned(&mut self, name: &str, seed: u8) -> Value {
        self.prove_hello(json!({"type":"hello","name":name,"version":1}), name, seed)
            .await;
        let welcome = self.finish_hello().await;
        assert_eq!(welcome["owner"], true, "{welcome}");
        welcome
    }

    /// Sends `hello` (with the key of `seed` added), answers the challenge, and returns the first frame
    /// after the proof (`welcome` on success, else an `error`) without consuming it further.
    pub async fn prove_hello(&mut self, mut hello: Value, name: &str, seed: u8) {
        let key = natter_proto::auth::SigningKey::from_bytes(&[seed; 32]);
        hello["key"] = json!(natter_proto::auth::public_key(&key));
        self.send(hello).await;
        let challenge = self.expect("challenge").await;
        let nonce = challenge["nonce"].as_str().unwrap();
        let signature = natter_proto::auth::sign(&key, nonce, name);
        self.send(json!({"type":"prove","signature":signature}))
            .await;
    }

    pub async fn finish_hello(&mut self) -> Value {
        let welcome = self.expect("welcome").await;
        let rooms = welcome["rooms"].as_array().unwrap().len();
        for _ in 0..rooms {
            let joined = self.expect("joined").await;
            assert_eq!(joined["name"], welcome["name"]);
            self.expect("users").await;
        }
        for _ in 0..rooms {
            assert!(self.expect("history").await["room"].is_string());
        }
        let private = self.expect("history").await;
        assert!(private.get("room").is_none());
        welcome
    }

    /// Reads everything until the server closes the connection.
    pub async fn read_to_end(&mut self) -> Vec<u8> {
        use tokio::io::AsyncReadExt;
        let mut all = Vec::new();
        tokio::time::timeout(WAIT, self.reader.read_to_end(&mut all))
            .await
            .expect("timed out waiting for close")
            .unwrap();
        all
    }

    /// Asserts the server closes the connection next.
    pub async fn expect_closed(&mut self) {
        if let Some(line) = self.recv_line().await {
            panic!("expected the connection to close, got {line:?}");
        }
    }

    /// Says `text` in the lobby and returns the ack. Presence frames (`joined`/`left`) arriving
    /// meanwhile are skipped; anything else fails the test.
    pub async fn say(&mut self, text: &str, id: &str) -> Value {
        self.send(json!({"type":"say","text":text,"id":id})).await;
        loop {
            let f = self.recv().await;
            match f["type"].as_str() {
                Some("joined" | "left") => continue,
                Some("ack") => {
                    assert_eq!(f["id"], id);
                    return f;
                }
                _ => panic!("expected an ack, got {f}"),
            }
        }
    }
}
