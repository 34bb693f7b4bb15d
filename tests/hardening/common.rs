//! Helpers for the hardening tests: the server binary, raw clients, the probe, /proc readings.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

pub use crate::support::NATTER;

/// These tests measure a server's memory and CPU: they run one at a time.
pub async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    SERIAL.lock().await
}

/// The longest any expected frame may take (a bound on waiting, never a sleep).
pub const WAIT: Duration = Duration::from_secs(15);

/// A `natter serve` process.
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    pub pid: u32,
}

impl Server {
    pub fn start(args: &[&str]) -> Self {
        Self::spawn(crate::support::natter(), ":memory:", args)
    }

    pub fn start_db(db: &str, args: &[&str]) -> Self {
        Self::spawn(crate::support::natter(), db, args)
    }

    /// Runs the server with at most `files` open file descriptors.
    pub fn start_with_fd_limit(files: u32, args: &[&str]) -> Self {
        let mut sh = Command::new("sh");
        sh.args([
            "-c",
            &format!("ulimit -n {files} && exec \"$0\" \"$@\""),
            NATTER,
        ]);
        Self::spawn(sh, ":memory:", args)
    }

    fn spawn(mut cmd: Command, db: &str, args: &[&str]) -> Self {
        cmd.arg("serve")
            .args(["--listen", "127.0.0.1:0", "--db", db])
            .args(args);
        let (child, addr) = crate::support::spawn_server(cmd);
        let pid = child.id();
        Self { child, addr, pid }
    }

    fn proc_file(&self, name: &str) -> String {
        std::fs::read_to_string(format!("/proc/{}/{name}", self.pid)).unwrap()
    }

    /// Resident memory in KiB.
    pub fn rss_kb(&self) -> u64 {
        let status = self.proc_file("status");
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    /// CPU time used so far, in clock ticks.
    fn cpu_ticks(&self) -> u64 {
        let stat = self.proc_file("stat");
        let after = &stat[stat.rfind(')').unwrap() + 2..];
        let fields: Vec<&str> = after.split_whitespace().collect();
        fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
    }

    pub fn fd_count(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid))
            .unwrap()
            .count()
    }

    /// Asserts the server is (nearly) idle: under 20% of a core over half a second.
    pub fn assert_idle(&self) {
        let before = self.cpu_ticks();
        std::thread::sleep(Duration::from_millis(500));
        let used = self.cpu_ticks() - before;
        assert!(
            used <= 10,
            "server busy after the fault: {used} ticks in 0.5 s"
        );
    }

    /// SIGTERM, then wait for the exit.
    pub fn terminate(&mut self) -> ExitStatus {
        signal(self.child.id(), "TERM");
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "server did not exit");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

/// `natter join --plain` as a real client process, stdin held open.
pub fn natter_join(addr: SocketAddr, name: &str, extra: &[&str]) -> Child {
    crate::support::natter()
        .args([
            "join",
            "--plain",
            "--server",
            &addr.to_string(),
            "--name",
            name,
        ])
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// A raw JSON client that sees exactly what the server sends — except the server's idle `ping`s, which a
/// background task answers at once, as every natter client does, whether or not the test is reading.
pub struct Raw {
    frames: tokio::sync::mpsc::UnboundedReceiver<Value>,
    write: std::sync::Arc<tokio::sync::Mutex<tokio::net::tcp::OwnedWriteHalf>>,
    /// The reader task; aborted on drop so dropping a `Raw` closes its socket.
    reader: tokio::task::AbortHandle,
}

impl Drop for Raw {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl Raw {
    pub async fn connect(addr: SocketAddr) -> Self {
        Self::from(TcpStream::connect(addr).await.unwrap())
    }

    /// Connects from another loopback address (127.0.0.0/8 is all ours).
    pub async fn connect_from(ip: &str, addr: SocketAddr) -> Self {
        let socket = TcpSocket::new_v4().unwrap();
        socket.bind(format!("{ip}:0").parse().unwrap()).unwrap();
        Self::from(socket.connect(addr).await.unwrap())
    }

    fn from(stream: TcpStream) -> Self {
        let (r, w) = stream.into_split();
        let write = std::sync::Arc::new(tokio::sync::Mutex::new(w));
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let pong = write.clone();
        let reader = tokio::spawn(async move {
            let mut lines = tokio::io::BufReader::new(r).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let f: Value =
                    serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line:?}: {e}"));
                if f["type"] == "ping" {
                    let answer = format!("{}\n", json!({"type":"pong","id":f["id"]}));
                    let _ = pong.lock().await.write_all(answer.as_bytes()).await;
                    continue;
                }
                if tx.send(f).is_err() {
                    return;
                }
            }
        });
        Self {
            frames: rx,
            write,
            reader: reader.abort_handle(),
        }
    }

    pub async fn join(addr: SocketAddr, name: &str) -> Self {
        let mut c = Self::connect(addr).await;
        c.hello(name).await;
        c
    }

    /// Registers and reads up to the end of the replay (the private-messages history frame).
    pub async fn hello(&mut self, name: &str) {
        self.send(json!({"type":"hello","name":name})).await;
        loop {
            let f = self.next_frame().await.expect("registered");
            assert_ne!(f["type"], "error", "{f}");
            if f["type"] == "history" && f.get("room").is_none() {
                return;
            }
        }
    }

    pub async fn send(&mut self, v: Value) {
        self.send_raw(format!("{v}\n").as_bytes()).await;
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.write.lock().await.write_all(bytes).await.unwrap();
    }

    pub async fn try_send_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.write.lock().await.write_all(bytes).await
    }

    /// The next frame; `None` when the server closed the connection.
    pub async fn next_frame(&mut self) -> Option<Value> {
        tokio::time::timeout(WAIT, self.frames.recv())
            .await
            .expect("timed out waiting for a frame")
    }

    pub async fn next_of(&mut self, ty: &str) -> Value {
        loop {
            let f = self
                .next_frame()
                .await
                .unwrap_or_else(|| panic!("closed while waiting for {ty}"));
            if f["type"] == ty {
                return f;
            }
        }
    }
}

/// A well-behaved pair in the lobby: `talker` speaks, `listener` checks that every message arrives, in
/// seq order, each within [`WAIT`].
pub struct Probe {
    pub talker: Raw,
    listener: Raw,
    last_seq: u64,
    sent: u64,
    texts: Vec<String>,
    presence: Vec<Value>,
}

impl Probe {
    pub async fn new(addr: SocketAddr) -> Self {
        let talker = Raw::join(addr, "probe-talker").await;
        let listener = Raw::join(addr, "probe-listener").await;
        Self {
            talker,
            listener,
            last_seq: 0,
            sent: 0,
            texts: Vec::new(),
            presence: Vec::new(),
        }
    }

    fn note(&mut self, f: Value) -> Option<Value> {
        match f["type"].as_str() {
            Some("message") => {
                let seq = f["seq"].as_u64().unwrap();
                assert!(
                    seq > self.last_seq,
                    "probe saw seq {seq} after {}",
                    self.last_seq
                );
                self.last_seq = seq;
                self.texts.push(f["text"].as_str().unwrap().to_owned());
                Some(f)
            }
            Some("joined" | "left") => {
                self.presence.push(f);
                None
            }
            _ => None,
        }
    }

    /// Sends `n` messages and checks the listener receives all of them, in order.
    pub async fn check(&mut self, n: u64) {
        for _ in 0..n {
            self.sent += 1;
            let text = format!("probe {}", self.sent);
            self.talker
                .send(json!({"type":"say","text":text,"id":format!("p{}", self.sent)}))
                .await;
            self.talker.next_of("ack").await;
            loop {
                let f = self
                    .listener
                    .next_frame()
                    .await
                    .expect("probe listener connected");
                if let Some(m) = self.note(f) {
                    if m["text"] == text.as_str() {
                        break;
                    }
                }
            }
        }
    }

    async fn wait_presence(&mut self, ty: &str, name: &str) -> Value {
        loop {
            if let Some(i) = self
                .presence
                .iter()
                .position(|f| f["type"] == ty && f["name"] == name)
            {
                return self.presence.remove(i);
            }
            let f = self
                .listener
                .next_frame()
                .await
                .expect("probe listener connected");
            self.note(f);
        }
    }

    pub async fn wait_joined(&mut self, name: &str) -> Value {
        self.wait_presence("joined", name).await
    }

    pub async fn wait_left(&mut self, name: &str) -> Value {
        self.wait_presence("left", name).await
    }

    pub fn saw_left(&self, name: &str, reason: &str) -> bool {
        self.presence
            .iter()
            .any(|f| f["type"] == "left" && f["name"] == name && f["reason"] == reason)
    }

    pub fn seen_texts(&self) -> &[String] {
        &self.texts
    }
}

/// Every stored message, read back through a resume from seq 0.
pub async fn all_messages(addr: SocketAddr) -> HashMap<u64, String> {
    let mut c = Raw::connect(addr).await;
    c.send(json!({"type":"hello","name":"auditor","resume_after":0}))
        .await;
    c.send(json!({"type":"ping","id":"end"})).await;
    let mut all = HashMap::new();
    loop {
        let f = c.next_frame().await.expect("auditor connected");
        match f["type"].as_str() {
            Some("message") => {
                all.insert(
                    f["seq"].as_u64().unwrap(),
                    f["text"].as_str().unwrap().to_owned(),
                );
            }
            Some("pong") => return all,
            _ => {}
        }
    }
}

/// A separate process holding `n` connections to the server (this test binary, re-run as a helper).
pub struct Helper {
    child: Child,
    out: BufReader<std::process::ChildStdout>,
}

pub fn connection_helper(addr: SocketAddr, n: usize) -> Helper {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "helper_hold_connections",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("NATTER_HELPER_ADDR", addr.to_string())
        .env("NATTER_HELPER_N", n.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let out = BufReader::new(child.stdout.take().unwrap());
    Helper { child, out }
}

impl Helper {
    pub fn wait_ready(&mut self) {
        let mut line = String::new();
        loop {
            line.clear();
            assert!(
                self.out.read_line(&mut line).unwrap() > 0,
                "helper exited early"
            );
            if line.trim().ends_with("ready") {
                return;
            }
        }
    }

    /// Closes every connection (by letting the helper exit).
    pub fn finish(mut self) {
        drop(self.child.stdin.take());
        assert!(self.child.wait().unwrap().success());
    }
}

/// The helper's body: open the connections, say "ready", hold them until stdin closes.
pub async fn run_connection_helper() {
    let (Ok(addr), Ok(n)) = (
        std::env::var("NATTER_HELPER_ADDR"),
        std::env::var("NATTER_HELPER_N"),
    ) else {
        return; // run by hand without the test above: nothing to do
    };
    let addr: SocketAddr = addr.parse().unwrap();
    let n: usize = n.parse().unwrap();
    let mut held = Vec::with_capacity(n);
    // A few at a time, as a crowd arriving would; every one is in the server's hands before "ready".
    for chunk in 0..n.div_ceil(200) {
        let batch = (chunk * 200..((chunk + 1) * 200).min(n)).map(|_| TcpStream::connect(addr));
        for c in futures::future::join_all(batch).await {
            let mut c = c.unwrap();
            c.write_all(b"{\"type\":\"ping\"}\n").await.unwrap();
            held.push(c);
        }
    }
    // Each connection has been answered: the server has accepted and served all of them.
    for c in &mut held {
        let mut buf = [0u8; 64];
        let _ = tokio::io::AsyncReadExt::read(c, &mut buf).await.unwrap();
    }
    println!("ready");
    let mut stdin = String::new();
    let _ = std::io::stdin().read_line(&mut stdin);
    drop(held);
}
