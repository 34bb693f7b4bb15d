//! Real IRC clients against a real `natter serve --irc` (issue 15): irssi in tmux and WeeChat headless
//! join `#lobby`, exchange Chinese and English with a natter client and a plain-text (nc) one, send a
//! private message and quit. Their screens and logs are read back; waiting on another program's output
//! is polled, bounded by [`WAIT`].

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

mod support;

const WAIT: Duration = Duration::from_secs(30);

/// `natter serve` with an IRC listener; returns the process, the chat address and the IRC address.
fn serve() -> (Child, SocketAddr, SocketAddr) {
    let mut child = support::natter()
        .args(["serve", "--db", ":memory:", "--listen", "127.0.0.1:0"])
        .args(["--web", "none", "--irc", "127.0.0.1:0", "--flood-rate", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let (mut chat, mut irc) = (None, None);
    while chat.is_none() || irc.is_none() {
        let mut line = String::new();
        assert!(out.read_line(&mut line).unwrap() > 0, "server ended early");
        if let Some(rest) = line.strip_prefix("natter: listening on ") {
            chat = rest.split_whitespace().next().map(|a| a.parse().unwrap());
        }
        if let Some(rest) = line.trim().strip_prefix("natter: IRC clients at ") {
            irc = Some(rest.parse().unwrap());
        }
    }
    std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
    (child, chat.unwrap(), irc.unwrap())
}

/// Polls `check` until it holds, failing after [`WAIT`] with `what` and the last `shown`.
fn wait_for(what: &str, mut check: impl FnMut() -> (bool, String)) {
    let start = Instant::now();
    loop {
        let (ok, shown) = check();
        if ok {
            return;
        }
        assert!(
            start.elapsed() < WAIT,
            "waited {WAIT:?} for {what}; saw:\n{shown}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A natter client (JSON lines) that collects what it receives.
struct Native {
    stream: TcpStream,
    seen: Vec<Value>,
    buf: Vec<u8>,
}

impl Native {
    fn hello(addr: SocketAddr, name: &str) -> Self {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        writeln!(stream, r#"{{"type":"hello","name":"{name}","version":1}}"#).unwrap();
        Self {
            stream,
            seen: Vec::new(),
            buf: Vec::new(),
        }
    }

    fn send(&mut self, frame: Value) {
        writeln!(self.stream, "{frame}").unwrap();
    }

    /// Reads what has arrived.
    fn poll(&mut self) {
        let mut chunk = [0u8; 4096];
        while let Ok(n) = self.stream.read(&mut chunk) {
            if n == 0 {
                break;
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
        while let Some(end) = self.buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.buf.drain(..=end).collect();
            if let Ok(v) = serde_json::from_slice(&line) {
                self.seen.push(v);
            }
        }
    }

    /// Waits for a frame for which `matches` holds.
    fn wait(&mut self, what: &str, matches: impl Fn(&Value) -> bool) -> Value {
        let mut found = None;
        wait_for(what, || {
            self.poll();
            found = self.seen.iter().find(|f| matches(f)).cloned();
            (found.is_some(), format!("{:#?}", self.seen))
        });
        found.unwrap()
    }
}

fn message_from(from: &'static str, text: &'static str) -> impl Fn(&Value) -> bool {
    move |f| f["type"] == "message" && f["from"] == from && f["text"] == text
}

fn tmux(socket: &str, args: &[&str]) -> String {
    let out = Command::new("tmux")
        .args(["-L", socket])
        .args(args)
        .env("LANG", "C.UTF-8")
        .output()
        .expect("tmux runs (./test installs it)");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

#[test]
fn irssi_talks_with_natter_and_plain_text_users() {
    let (mut server, chat, irc) = serve();
    let mut alice = Native::hello(chat, "alice");
    let home = tempfile::tempdir().unwrap();
    let logs = home.path().join("logs");
    std::fs::write(
        home.path().join("config"),
        format!(
            r#"settings = {{
  core = {{ real_name = "Irssi Tester"; user_name = "irssi"; nick = "irssi"; }};
  "fe-common/core" = {{ autolog = "yes"; autolog_path = "{}/$0.log"; }};
  "irc/core" = {{ cmd_queue_speed = "0msec"; cmds_max_at_once = "100"; }};
}};
"#,
            logs.display()
        ),
    )
    .unwrap();
    let socket = format!("natter-irssi-{}", std::process::id());
    let command = format!(
        "irssi --home={} -c {} -p {} -n irssi",
        home.path().display(),
        irc.ip(),
        irc.port()
    );
    tmux(
        &socket,
        &["new-session", "-d", "-x", "160", "-y", "40", &command],
    );
    let screen = || tmux(&socket, &["capture-pane", "-p"]);
    wait_for("irssi to be welcomed", || {
        let s = screen();
        (s.contains("Welcome to natter, irssi"), s)
    });
    tmux(&socket, &["send-keys", "/join #lobby", "Enter"]);
    let lobby = logs.join("#lobby.log");
    wait_for("irssi in #lobby", || {
        let log = read(&lobby);
        (log.contains("has joined #lobby"), log)
    });
    tmux(&socket, &["send-keys", "-l", "hello 你好 from irssi"]);
    tmux(&socket, &["send-keys", "Enter"]);
    alice.wait(
        "irssi's message",
        message_from("irssi", "hello 你好 from irssi"),
    );
    alice.send(serde_json::json!({"type":"say","text":"hi irssi, 中文也行"}));
    // irssi's window shows #lobby now (its log is written later).
    wait_for("alice's message in irssi", || {
        let s = screen();
        (s.contains("alice> hi irssi, 中文也行"), s)
    });
    // A plain-text user, as with nc.
    let mut nc = TcpStream::connect(chat).unwrap();
    nc.write_all("carol\n普通文本 plain text\n".as_bytes())
        .unwrap();
    wait_for("the nc user's message in irssi", || {
        let s = screen();
        (s.contains("carol> 普通文本 plain text"), s)
    });
    tmux(&socket, &["send-keys", "-l", "/msg alice 悄悄话 psst"]);
    tmux(&socket, &["send-keys", "Enter"]);
    let m = alice.wait("irssi's private message", |f| {
        f["type"] == "message" && f["from"] == "irssi" && f["to"] == "alice"
    });
    assert_eq!(m["text"], "悄悄话 psst");
    tmux(&socket, &["send-keys", "-l", "/quit see you"]);
    tmux(&socket, &["send-keys", "Enter"]);
    let left = alice.wait("irssi to quit", |f| {
        f["type"] == "left" && f["name"] == "irssi"
    });
    assert_eq!(
        (left["reason"].as_str(), left["text"].as_str()),
        (Some("exit"), Some("see you"))
    );
    tmux(&socket, &["kill-server"]);
    let _ = server.kill();
    let _ = server.wait();
}

#[test]
fn weechat_talks_with_natter_users() {
    let (mut server, chat, irc) = serve();
    let mut alice = Native::hello(chat, "alice");
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    let setup = format!(
        "/set fifo.file.enabled on; /set logger.file.path {}; /set logger.file.flush_delay 0; \
         /server add natter {}/{} -notls; /set irc.server.natter.nicks wee; \
         /set irc.server.natter.autojoin \"#lobby\"; /connect natter",
        logs.display(),
        irc.ip(),
        irc.port()
    );
    let mut weechat = Command::new("weechat-headless")
        .arg("--dir")
        .arg(dir.path())
        .args(["-r", &setup])
        .env("LANG", "C.UTF-8")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("weechat-headless runs (./test installs it)");
    let lobby = logs.join("irc.natter.#lobby.weechatlog");
    wait_for("WeeChat in #lobby", || {
        let log = read(&lobby);
        (log.contains("has joined #lobby"), log)
    });
    let fifo = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("weechat_fifo"))
        })
        .expect("WeeChat's FIFO");
    let command = |text: &str| {
        let mut f = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
        writeln!(f, "{text}").unwrap();
    };
    command("irc.natter.#lobby *hello 你好 from weechat");
    alice.wait(
        "WeeChat's message",
        message_from("wee", "hello 你好 from weechat"),
    );
    alice.send(serde_json::json!({"type":"say","text":"hi WeeChat, 中文"}));
    wait_for("alice's message in WeeChat", || {
        let log = read(&lobby);
        (log.contains("alice\thi WeeChat, 中文"), log)
    });
    command("irc.server.natter */msg alice private 私聊");
    let m = alice.wait("WeeChat's private message", |f| {
        f["type"] == "message" && f["from"] == "wee" && f["to"] == "alice"
    });
    assert_eq!(m["text"], "private 私聊");
    command("irc.server.natter */quit bye all");
    let left = alice.wait("WeeChat to quit", |f| {
        f["type"] == "left" && f["name"] == "wee"
    });
    assert_eq!(left["text"], "bye all");
    let _ = weechat.kill();
    let _ = weechat.wait();
    let _ = server.kill();
    let _ = server.wait();
}

/// `--irc-tls`: OpenSSL's own client completes the handshake on the TLS port and registers; the plain
/// IRC port takes a TLS handshake too.
#[test]
fn irc_over_tls() {
    let mut child = support::natter()
        .args([
            "serve",
            "--db",
            ":memory:",
            "--listen",
            "127.0.0.1:0",
            "--web",
            "none",
        ])
        .args(["--irc", "127.0.0.1:0", "--irc-tls", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let (mut plain, mut tls) = (None, None);
    while plain.is_none() || tls.is_none() {
        let mut line = String::new();
        assert!(out.read_line(&mut line).unwrap() > 0, "server ended early");
        let line = line.trim();
        if let Some(addr) = line.strip_prefix("natter: IRC clients over TLS at ") {
            tls = Some(addr.to_owned());
        } else if let Some(addr) = line.strip_prefix("natter: IRC clients at ") {
            plain = Some(addr.to_owned());
        }
    }
    std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
    for (i, addr) in [tls.unwrap(), plain.unwrap()].into_iter().enumerate() {
        let mut openssl = Command::new("openssl")
            .args(["s_client", "-quiet", "-connect", &addr])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("openssl runs (./test installs it)");
        let mut stdin = openssl.stdin.take().unwrap();
        write!(stdin, "NICK tls{i}\r\nUSER t 0 * :T\r\nQUIT :done\r\n").unwrap();
        let out = openssl.wait_with_output().unwrap();
        drop(stdin);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains(&format!(" 001 tls{i} ")), "{text}");
        assert!(text.contains("ERROR :"), "{text}");
    }
    let _ = child.kill();
    let _ = child.wait();
}
