//! The real `natter join` binary in a pseudo-terminal: the full-screen client against a real server.
//! Types Chinese, sees it arrive at a raw client, receives a message, quits with exit code 0, and leaves
//! the terminal as it found it.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command};
use std::time::Duration;

use expectrl::{Expect, Session};
use serde_json::{json, Value};

mod support;

use support::natter;

struct Server(Child, SocketAddr);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn server() -> Server {
    let mut cmd = natter();
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--db", ":memory:"]);
    let (child, addr) = support::spawn_server(cmd);
    Server(child, addr)
}

/// `natter join ARGS` in a pseudo-terminal of `cols` x `rows`, expecting within 10 s.
fn tui(args: &[&str], cols: u16, rows: u16) -> expectrl::session::OsSession {
    let mut cmd = natter();
    cmd.arg("join").args(args);
    cmd.env("TERM", "xterm-256color");
    let mut tui = Session::spawn(cmd).unwrap();
    tui.get_process_mut().set_window_size(cols, rows).unwrap();
    tui.set_expect_timeout(Some(Duration::from_secs(10)));
    tui
}

/// A blocking raw JSON client.
struct Raw {
    lines: BufReader<TcpStream>,
    write: TcpStream,
}

impl Raw {
    fn join(addr: SocketAddr, name: &str) -> Self {
        let stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut raw = Self {
            lines: BufReader::new(stream.try_clone().unwrap()),
            write: stream,
        };
        raw.send(json!({"type":"hello","name":name}));
        raw.next_of("welcome");
        raw
    }

    fn send(&mut self, v: Value) {
        self.write.write_all(format!("{v}\n").as_bytes()).unwrap();
    }

    fn next_of(&mut self, ty: &str) -> Value {
        loop {
            let mut line = String::new();
            assert!(
                self.lines.read_line(&mut line).unwrap() > 0,
                "closed while waiting for {ty}"
            );
            let f: Value = serde_json::from_str(&line).unwrap();
            if f["type"] == ty {
                return f;
            }
        }
    }
}

#[test]
fn the_full_screen_client_chats_in_chinese_and_restores_the_terminal() {
    let server = server();
    let mut watcher = Raw::join(server.1, "watcher");

    let mut tui = tui(
        &["--server", &server.1.to_string(), "--name", "张三"],
        100,
        30,
    );

    // The full screen is up: alternate screen entered, status bar drawn.
    tui.expect("\x1b[?1049h").unwrap();
    tui.expect("connected").unwrap();
    while watcher.next_of("joined")["name"] != "张三" {}

    // Typed Chinese arrives at the other client, byte-exact.
    tui.send("你好，世界").unwrap();
    tui.send("\r").unwrap();
    let m = watcher.next_of("message");
    assert_eq!(
        (m["from"].as_str(), m["text"].as_str()),
        (Some("张三"), Some("你好，世界"))
    );

    // A message from the other client appears on screen.
    watcher.send(json!({"type":"say","text":"greetings_from_watcher","id":"w1"}));
    // (ratatui only redraws changed cells, so spaces between words may be skipped: match one word.)
    tui.expect("greetings_from_watcher").unwrap();

    // Quit: exit code 0, and the terminal is put back (alternate screen left, mouse and paste off).
    tui.send("/quit\r").unwrap();
    tui.expect("\x1b[?1049l").unwrap();
    let left = watcher.next_of("left");
    assert_eq!(
        (left["name"].as_str(), left["reason"].as_str()),
        (Some("张三"), Some("exit"))
    );
    let status = tui.get_process().wait().unwrap();
    assert_eq!(
        status,
        expectrl::process::unix::WaitStatus::Exited(tui.get_process().pid(), 0)
    );
}

#[test]
fn ctrl_c_also_quits_cleanly() {
    let server = server();
    let mut tui = tui(
        &["--server", &server.1.to_string(), "--name", "bob"],
        80,
        24,
    );
    tui.expect("connected").unwrap();
    tui.send("\x03").unwrap(); // Ctrl-C
    tui.expect("\x1b[?1049l").unwrap();
    let status = tui.get_process().wait().unwrap();
    assert_eq!(
        status,
        expectrl::process::unix::WaitStatus::Exited(tui.get_process().pid(), 0)
    );
}

/// Issue 11, bug 5: Ctrl-C works while the client is still connecting — here to a server that accepts
/// and never answers — and the terminal is left as it was (raw mode off).
#[test]
fn ctrl_c_works_while_connecting() {
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap();
    let addr = addr.to_string();
    let mut tui = tui(
        &["--server", &addr, "--name", "bob", "--timeout", "60"],
        80,
        24,
    );
    let (_held, _) = silent.accept().unwrap(); // connected, never answered
    tui.send("\x03").unwrap(); // Ctrl-C
    let pid = tui.get_process().pid();
    let (done, status) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(tui.get_process().wait().unwrap());
    });
    let Ok(status) = status.recv_timeout(Duration::from_secs(10)) else {
        let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        panic!("Ctrl-C did not end the client within 10 s");
    };
    assert_eq!(status, expectrl::process::unix::WaitStatus::Exited(pid, 0));
}

/// Issue 11, bug 6: SIGTERM (and SIGHUP, SIGINT) put the terminal back — main screen, raw mode off —
/// instead of killing the client with the terminal still full-screen.
#[test]
fn sigterm_restores_the_terminal() {
    let server = server();
    let mut tui = tui(
        &["--server", &server.1.to_string(), "--name", "carol"],
        80,
        24,
    );
    tui.expect("connected").unwrap();
    let pid = tui.get_process().pid();
    assert!(Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap()
        .success());
    tui.expect("\x1b[?1049l").unwrap(); // left the alternate screen
    let status = tui.get_process().wait().unwrap();
    assert_eq!(status, expectrl::process::unix::WaitStatus::Exited(pid, 0));
}

/// Issue 11, bug 4: a long unbracketed burst of typing (3,000 characters, as `tmux send-keys -l` or a
/// terminal without bracketed paste delivers it), then Enter: the line is sent without waiting for
/// another key.
#[test]
fn a_long_burst_of_typing_then_enter_is_handled_at_once() {
    let server = server();
    let mut watcher = Raw::join(server.1, "watcher");
    let mut tui = tui(
        &["--server", &server.1.to_string(), "--name", "dan"],
        100,
        30,
    );
    tui.expect("connected").unwrap();
    while watcher.next_of("joined")["name"] != "dan" {}
    let burst = "abcdefghij".repeat(300);
    tui.send(&burst).unwrap();
    tui.send("xyz\r").unwrap();
    // Keep reading the client's screen output meanwhile (a terminal always does; an unread one would
    // stall the client's drawing), and wait for the message at the watcher — no further key is typed.
    watcher
        .write
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut line = String::new();
    let text = loop {
        assert!(
            std::time::Instant::now() < deadline,
            "the burst's line was not sent within 10 s"
        );
        let mut screen = [0u8; 65536];
        while matches!(tui.try_read(&mut screen), Ok(n) if n > 0) {}
        if watcher.lines.read_line(&mut line).is_ok_and(|n| n > 0) {
            let f: Value = serde_json::from_str(&line).unwrap();
            line.clear();
            if f["type"] == "message" {
                break f["text"].as_str().unwrap().to_owned();
            }
        }
    };
    assert_eq!(text.len(), 3003);
    tui.send("/quit\r").unwrap();
    tui.expect("\x1b[?1049l").unwrap();
}

/// Issue 12: on a device whose key is not the name's, `natter join` asks for the name's password without
/// showing it, gets in, and from then on this device's key suffices. The password was set from the
/// owner's first device by a script (`/password NEW` on stdin).
#[test]
fn a_second_device_signs_in_with_the_password_it_never_shows() {
    let server = server();
    let addr = server.1.to_string();
    let first = tempfile::tempdir().unwrap();
    let second = tempfile::tempdir().unwrap();
    let mut owner = natter();
    owner
        .env("NATTER_DATA_DIR", first.path())
        .args(["join", "--server", &addr, "--name", "bob"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped());
    let mut child = owner.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"/password swordfish-42\n/quit\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("your password is set"),
        "{out:?}"
    );

    let line_mode = |data: &std::path::Path| {
        let mut cmd = natter();
        cmd.env("NATTER_DATA_DIR", data)
            .env("TERM", "xterm-256color")
            .args(["join", "--plain", "--server", &addr, "--name", "bob"]);
        let mut s = Session::spawn(cmd).unwrap();
        s.set_expect_timeout(Some(Duration::from_secs(10)));
        s
    };
    let mut second_device = line_mode(second.path());
    second_device.expect("Password of bob").unwrap();
    second_device.send("swordfish-42\r").unwrap();
    let seen = second_device.expect("connected to").unwrap();
    assert!(
        !String::from_utf8_lossy(seen.before()).contains("swordfish"),
        "the password was shown"
    );
    second_device.send("/quit\r").unwrap();
    second_device.expect("bye").unwrap();

    // This device's key is bob's now: no question asked.
    let mut again = line_mode(second.path());
    let seen = again.expect("connected to").unwrap();
    assert!(!String::from_utf8_lossy(seen.before()).contains("Password"));
    again.send("/quit\r").unwrap();
    again.expect("bye").unwrap();
}
