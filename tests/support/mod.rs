//! Shared by the tests that run the real `natter` binary.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, ChildStderr, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

pub const NATTER: &str = env!("CARGO_BIN_EXE_natter");

/// `natter`, speaking English whatever the locale of the machine running the tests (a test that wants
/// another language sets `LANG` or `--lang` itself), with its data directory (the client's key) in a
/// temporary directory of this test process — never the real one of whoever runs the tests.
#[allow(dead_code)] // not every test binary that includes this module runs natter itself
pub fn natter() -> std::process::Command {
    static DATA: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    let data = DATA.get_or_init(|| tempfile::tempdir().expect("a temporary directory"));
    let mut cmd = std::process::Command::new(NATTER);
    cmd.env_remove("LC_ALL")
        .env_remove("LC_MESSAGES")
        .env("LANG", "C.UTF-8")
        .env("NATTER_DATA_DIR", data.path());
    cmd
}

/// Spawns `cmd` — a `natter serve … --listen HOST:PORT` command line — and returns the process and the
/// address it announced ("natter: listening on ADDR (…)"). The rest of its stdout keeps being drained, so
/// the server never writes into a closed pipe.
#[allow(dead_code)] // not every test binary that includes this module spawns a server this way
pub fn spawn_server(mut cmd: Command) -> (Child, SocketAddr) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
    let addr = line
        .split_whitespace()
        .nth(3)
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .parse()
        .unwrap();
    (child, addr)
}

#[allow(dead_code)] // not every test binary that includes this module speaks the protocol itself
/// A raw JSON client.
pub struct Raw {
    lines: tokio::io::Lines<tokio::io::BufReader<tokio::net::tcp::OwnedReadHalf>>,
    write: tokio::net::tcp::OwnedWriteHalf,
}

#[allow(dead_code)]
impl Raw {
    /// Connected, nothing said yet.
    pub async fn connect(addr: SocketAddr) -> Self {
        Self::from_stream(tokio::net::TcpStream::connect(addr).await.unwrap())
    }

    pub fn from_stream(stream: tokio::net::TcpStream) -> Self {
        let (r, w) = stream.into_split();
        Self {
            lines: tokio::io::BufReader::new(r).lines(),
            write: w,
        }
    }

    pub async fn join(addr: SocketAddr, name: &str) -> Self {
        let mut raw = Self::connect(addr).await;
        raw.send(json!({"type":"hello","name":name})).await;
        assert_eq!(raw.recv().await["type"], "welcome");
        raw.next_of("users").await; // after our own joined
        raw
    }

    pub async fn send(&mut self, v: Value) {
        self.write
            .write_all(format!("{v}\n").as_bytes())
            .await
            .unwrap();
    }

    pub async fn recv(&mut self) -> Value {
        self.recv_within(Duration::from_secs(10)).await
    }

    /// The next frame, waiting at most `limit`.
    pub async fn recv_within(&mut self, limit: Duration) -> Value {
        let line = tokio::time::timeout(limit, self.lines.next_line())
            .await
            .expect("timed out")
            .unwrap()
            .expect("closed");
        serde_json::from_str(&line).unwrap()
    }

    /// The next frame of the given type, skipping others.
    pub async fn next_of(&mut self, ty: &str) -> Value {
        loop {
            let f = self.recv().await;
            if f["type"] == ty {
                return f;
            }
        }
    }
}

/// A `natter serve` with its announcements read and its log (stderr) kept for the test to read.
#[allow(dead_code)] // not every test binary that includes this module reads a server's log
pub struct Served {
    pub child: Child,
    /// The announcement lines (stdout) up to "natter: history …".
    pub announced: Vec<String>,
    log: BufReader<ChildStderr>,
}

#[allow(dead_code)]
impl Served {
    pub fn start(mut cmd: Command) -> Self {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut announced = Vec::new();
        loop {
            let mut line = String::new();
            assert!(
                out.read_line(&mut line).unwrap() > 0,
                "natter serve ended: {announced:?}"
            );
            let last = line.starts_with("natter: history");
            announced.push(line.trim_end().to_owned());
            if last {
                break;
            }
        }
        std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
        let log = BufReader::new(child.stderr.take().unwrap());
        Self {
            child,
            announced,
            log,
        }
    }

    /// The address announced on the line starting with `prefix`.
    pub fn addr(&self, prefix: &str) -> SocketAddr {
        let line = self
            .announced
            .iter()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix:?} in {:?}", self.announced));
        line.split_whitespace()
            .find_map(|w| {
                w.trim_start_matches("http://")
                    .trim_end_matches(['/', ','])
                    .split('/')
                    .next()?
                    .parse()
                    .ok()
            })
            .unwrap_or_else(|| panic!("no address in {line:?}"))
    }

    pub fn signal(&self, name: &str) {
        let sent = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
    }

    /// The log's lines up to and including the first that contains `until`.
    pub fn log_until(&mut self, until: &str) -> Vec<String> {
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            assert!(
                self.log.read_line(&mut line).unwrap() > 0,
                "the log ended before {until:?}: {lines:#?}"
            );
            let found = line.contains(until);
            lines.push(line);
            if found {
                return lines;
            }
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
