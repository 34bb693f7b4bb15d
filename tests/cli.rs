//! The `natter` binary itself: `serve` and `join` as a user or a script runs them.

use std::io::Write;
use std::net::SocketAddr;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

mod support;

use support::{natter, Raw};

/// A `natter serve` process on a free loopback port.
struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Server {
    fn start() -> Self {
        Self::start_on("127.0.0.1:0", ":memory:")
    }

    fn start_on(listen: &str, db: &str) -> Self {
        let mut cmd = natter();
        cmd.args(["serve", "--listen", listen, "--db", db]);
        let (child, addr) = support::spawn_server(cmd);
        Self { child, addr }
    }

    fn terminate(&mut self) -> std::process::ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "server did not exit after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `natter join ARGS` with stdin, stdout and stderr piped.
fn spawn_join(args: &[&str]) -> Child {
    spawn_join_with(natter(), args)
}

/// [`spawn_join`] from `cmd` (a [`natter`] with more environment).
fn spawn_join_with(mut cmd: Command, args: &[&str]) -> Child {
    cmd.arg("join")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Runs `natter join` from `cmd` with `stdin` piped in, to its end.
fn join_with(cmd: Command, args: &[&str], stdin: &str) -> Output {
    let mut child = spawn_join_with(cmd, args);
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// Runs `natter join` with `stdin` piped in.
fn join(args: &[&str], stdin: &str) -> Output {
    join_in("C.UTF-8", args, stdin)
}

/// Runs `natter join` with `stdin` piped in, under `LANG=lang`.
fn join_in(lang: &str, args: &[&str], stdin: &str) -> Output {
    let mut cmd = natter();
    cmd.env("LANG", lang);
    join_with(cmd, args, stdin)
}

/// The one line a failing `natter join` printed on stderr (besides the notice of a server's certificate
/// trusted for the first time, which a script gets there too).
fn stderr_line(out: &Output) -> String {
    let err: String = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| !l.starts_with("natter: first connection to"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(
        err.lines().count(),
        1,
        "exactly one line on stderr: {err:?}"
    );
    assert!(err.starts_with("natter: "), "{err:?}");
    err
}

#[tokio::test]
async fn a_script_can_pipe_messages_through_join() {
    let server = Server::start();
    let addr = server.addr.to_string();
    let mut watcher = Raw::join(server.addr, "watcher").await;

    let out = tokio::task::spawn_blocking(move || {
        join(&["--server", &addr, "--name", "bot"], "hello 世界\n/quit\n")
    })
    .await
    .unwrap();
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.contains("] bot: hello 世界"),
        "own message shown once acked: {stdout}"
    );

    let m = watcher.next_of("message").await;
    assert_eq!(
        (m["from"].as_str(), m["text"].as_str()),
        (Some("bot"), Some("hello 世界"))
    );
    let l = watcher.next_of("left").await;
    assert_eq!(
        (l["name"].as_str(), l["reason"].as_str()),
        (Some("bot"), Some("exit"))
    );
}

#[tokio::test]
async fn join_prints_what_others_say_and_takes_the_name_from_the_first_line() {
    let server = Server::start();
    let addr = server.addr.to_string();
    let mut alice = Raw::join(server.addr, "alice").await;

    // The script keeps stdin open until alice has spoken, then quits.
    let mut child = spawn_join(&["--server", &addr]);
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all("李四\n".as_bytes()).unwrap();
    stdin.flush().unwrap();
    let j = alice.next_of("joined").await;
    assert_eq!(j["name"], "李四");
    alice
        .send(json!({"type":"say","text":"欢迎 李四","id":"1"}))
        .await;
    alice.next_of("ack").await;
    alice
        .send(json!({"type":"whisper","to":"李四","text":"just you","id":"2"}))
        .await;
    alice.next_of("ack").await;
    // Barrier: once li's reply arrives, li has certainly read both of alice's messages.
    stdin.write_all(b"got it\n").unwrap();
    stdin.flush().unwrap();
    let reply = alice.next_of("message").await;
    assert_eq!(reply["text"], "got it");
    drop(stdin); // EOF quits like Ctrl-D
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("] alice: 欢迎 李四"), "{stdout}");
    assert!(stdout.contains("] alice → you: just you"), "{stdout}");
    assert_eq!(alice.next_of("left").await["reason"], "exit");
}

#[tokio::test]
async fn join_fails_clearly_when_the_name_is_rejected() {
    let server = Server::start();
    let _taken = Raw::join(server.addr, "Taken").await;
    let addr = server.addr.to_string();
    let out =
        tokio::task::spawn_blocking(move || join(&["--server", &addr, "--name", "taken"], "hi\n"))
            .await
            .unwrap();
    assert!(!out.status.success());
    assert!(stderr_line(&out).contains("taken"));

    let addr = server.addr.to_string();
    let out =
        tokio::task::spawn_blocking(move || join(&["--server", &addr, "--name", "has space"], ""))
            .await
            .unwrap();
    assert!(!out.status.success());
    stderr_line(&out);
}

#[test]
fn join_fails_clearly_when_nobody_listens() {
    // Bind then drop a listener to get a port that refuses connections.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = join(
        &["--server", &format!("127.0.0.1:{port}"), "--name", "x"],
        "",
    );
    assert!(!out.status.success());
    assert!(stderr_line(&out).contains("cannot connect"));
}

/// Issue 18: the line client speaks the locale's language — connection, help, goodbye and errors — and
/// `--lang` overrides it; names and message text stay as they are.
#[tokio::test]
async fn the_line_client_speaks_the_locales_language() {
    let server = Server::start();
    let addr = server.addr.to_string();
    let script = "/help\nhello 世界\n/quit\n";
    let run = |lang: &'static str, extra: &'static [&'static str]| {
        let addr = addr.clone();
        tokio::task::spawn_blocking(move || {
            let mut args = vec!["--server", addr.as_str(), "--name", "bot"];
            args.extend_from_slice(extra);
            let out = join_in(lang, &args, script);
            assert!(out.status.success(), "{out:?}");
            String::from_utf8(out.stdout).unwrap()
        })
    };
    let chinese = run("zh_CN.UTF-8", &[]).await.unwrap();
    for said in [
        "* 已连接到 ",
        "名字是 bot",
        "/msg 名字 内容",
        "发送私聊消息",
        "] bot: hello 世界",
        "* 再见",
    ] {
        assert!(chinese.contains(said), "{said:?} missing from:\n{chinese}");
    }
    assert!(!chinese.contains("send a private message"), "{chinese}");
    let english = run("C", &[]).await.unwrap();
    for said in [
        "* connected to ",
        "as bot",
        "/msg NAME TEXT",
        "send a private message",
        "* bye",
    ] {
        assert!(english.contains(said), "{said:?} missing from:\n{english}");
    }
    let overridden = run("zh_CN.UTF-8", &["--lang", "en"]).await.unwrap();
    assert!(
        overridden.contains("send a private message"),
        "{overridden}"
    );

    // Errors too: nobody listening, in Chinese.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = join_in(
        "zh_CN.UTF-8",
        &["--server", &format!("127.0.0.1:{port}"), "--name", "x"],
        "",
    );
    assert!(!out.status.success());
    assert!(stderr_line(&out).contains("无法连接到"), "{out:?}");
}

#[test]
fn serve_fails_clearly_when_the_port_is_taken() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap().to_string();
    let out = natter()
        .args(["serve", "--listen", &addr, "--db", ":memory:"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(stderr_line(&out).contains("cannot listen"));
}

#[tokio::test]
async fn sigterm_says_bye_to_clients_and_exits_zero() {
    let mut server = Server::start();
    let mut a = Raw::join(server.addr, "a").await;
    let mut b = Raw::join(server.addr, "b").await;
    a.send(json!({"type":"ping","id":"sync"})).await;
    a.next_of("pong").await;
    let started = Instant::now();
    let status = tokio::task::spawn_blocking(move || {
        let status = server.terminate();
        drop(server);
        status
    })
    .await
    .unwrap();
    assert!(status.success(), "{status:?}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
    for c in [&mut a, &mut b] {
        assert_eq!(c.next_of("bye").await["reason"], "shutdown");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_reconnects_after_a_server_crash_and_sends_what_was_typed_meanwhile() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("h.db").to_string_lossy().into_owned();
    let mut server = Server::start_on("127.0.0.1:0", &db);
    let addr = server.addr;
    let mut watcher = Raw::join(addr, "watcher").await;

    let mut child = spawn_join(&["--server", &addr.to_string(), "--name", "bot"]);
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"before the crash\n").unwrap();
    stdin.flush().unwrap();
    assert_eq!(watcher.next_of("message").await["text"], "before the crash");

    // kill -9, then type while the server is down.
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    stdin
        .write_all("while it was down 掉线\n".as_bytes())
        .unwrap();
    stdin.flush().unwrap();

    let _server = Server::start_on(&addr.to_string(), &db);
    let mut watcher = Raw::join(addr, "watcher2").await;
    // bot reconnects by itself and its pending message arrives, once.
    let m = watcher.next_of("message").await;
    assert_eq!(
        (m["from"].as_str(), m["text"].as_str()),
        (Some("bot"), Some("while it was down 掉线"))
    );
    stdin.write_all(b"/quit\n").unwrap();
    drop(stdin);
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("reconnecting"), "{stdout}");
    assert!(stdout.contains("* reconnected"), "{stdout}");
    assert_eq!(
        stdout.matches("] bot: while it was down 掉线").count(),
        1,
        "{stdout}"
    );
    assert_eq!(
        stdout.matches("] bot: before the crash").count(),
        1,
        "{stdout}"
    );
}

#[tokio::test]
async fn a_script_sending_many_lines_waits_for_all_of_them_under_flood_control() {
    // Default server flags: flood control paces this script (burst 5, then 3 per second).
    let server = Server::start();
    let addr = server.addr.to_string();
    let mut watcher = Raw::join(server.addr, "watcher").await;
    let script: String = (0..10).map(|i| format!("line {i}\n")).collect::<String>() + "/quit\n";
    let out = tokio::task::spawn_blocking(move || {
        join(&["--server", &addr, "--name", "typist"], &script)
    })
    .await
    .unwrap();
    assert!(out.status.success(), "{out:?}");
    for i in 0..10 {
        assert_eq!(
            watcher.next_of("message").await["text"],
            format!("line {i}")
        );
    }
}

/// `bench conns --procs N` spreads the idle clients over N generator processes (one process cannot hold
/// more sockets than its open-file limit) and adds up what they registered.
#[test]
fn bench_conns_spreads_clients_over_generator_processes() {
    let server = Server::start();
    let out = natter()
        .args(["bench", "conns", "--server", &server.addr.to_string()])
        .args(["--clients", "90", "--procs", "3", "--batch", "10", "--json"])
        .args(["--server-pid", &server.child.id().to_string()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_line(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["clients"], 90, "{report}");
    assert_eq!(report["procs"], 3);
    assert!(report["rss_per_connection_bytes"].is_u64());
    // Every child held its share until the parent had measured, then let go: the server is empty again.
    let mut probe = std::net::TcpStream::connect(server.addr).unwrap();
    probe
        .write_all(
            b"{\"type\":\"hello\",\"name\":\"probe\",\"lobby\":false}\n{\"type\":\"rooms\"}\n",
        )
        .unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(probe));
    let rooms = lines
        .by_ref()
        .map(|l| serde_json::from_str::<Value>(&l.unwrap()).unwrap())
        .find(|f| f["type"] == "rooms")
        .unwrap();
    let members: u64 = rooms["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["members"].as_u64().unwrap())
        .sum();
    assert!(members < 90, "the generators' clients are gone: {rooms}");
}

/// A fake server that answers every connection's first line with `answer`, then reads until closed.
async fn hostile_server(answer: &'static str) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (r, mut w) = stream.into_split();
                let mut lines = tokio::io::BufReader::new(r).lines();
                if let Ok(Some(_hello)) = lines.next_line().await {
                    let _ = w.write_all(answer.as_bytes()).await;
                }
                while let Ok(Some(_)) = lines.next_line().await {}
            });
        }
    });
    addr
}

/// `natter join --name NAME` with `stdin`, against a fake server answering `answer` (see above).
async fn join_fake(answer: &'static str, name: &str, stdin: &str) -> Output {
    let addr = hostile_server(answer).await.to_string();
    let (name, stdin) = (name.to_owned(), stdin.to_owned());
    tokio::task::spawn_blocking(move || {
        join(&["--server", &addr, "--name", &name, "--no-tls"], &stdin)
    })
    .await
    .unwrap()
}

/// Defect 6 of issue 10: nothing a server says reaches the terminal raw — not a refusal's reason (printed
/// on stderr), not the name in its welcome.
#[tokio::test]
async fn a_hostile_server_cannot_drive_the_terminal() {
    let out = join_fake(
        "{\"type\":\"error\",\"code\":\"name_taken\",\"message\":\"\\u001b[2J\\u001b]0;owned\\u0007 taken\"}\n",
        "alice",
        "hi\n",
    )
    .await;
    assert!(!out.status.success());
    let err = stderr_line(&out);
    assert!(err.contains("taken"), "{err:?}");
    assert!(!err.contains('\u{1b}') && !err.contains('\u{7}'), "{err:?}");

    let out = join_fake(
        "{\"type\":\"welcome\",\"name\":\"\\u001b[31mevil\",\"version\":1,\"rooms\":[\"lobby\"],\"last_seq\":0}\n",
        "alice",
        "/quit\n",
    )
    .await;
    let all = [out.stdout, out.stderr].concat();
    assert!(!all.contains(&0x1b), "{:?}", String::from_utf8_lossy(&all));
}

/// `natter join` as a script whose stdin is written step by step, its stdout read line by line.
struct Script {
    child: Child,
    lines: std::sync::mpsc::Receiver<String>,
}

impl Script {
    fn start(args: &[&str]) -> Self {
        let mut child = spawn_join(args);
        let out = std::io::BufReader::new(child.stdout.take().unwrap());
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in out.lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        Self { child, lines }
    }

    fn type_line(&mut self, line: &str) {
        let stdin = self.child.stdin.as_mut().unwrap();
        stdin.write_all(format!("{line}\n").as_bytes()).unwrap();
        stdin.flush().unwrap();
    }

    /// Waits (at most 10 s) for a printed line containing `text`.
    fn wait_for(&mut self, text: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(text) => return,
                Ok(_) => {}
                Err(_) => panic!("no line with {text:?} within 10 s"),
            }
        }
    }

    fn finish(mut self) -> std::process::ExitStatus {
        drop(self.child.stdin.take());
        self.child.wait().unwrap()
    }
}

/// Issue 11, bugs 1, 3 and 8: the server putting you back in your rooms does not change where your lines
/// go (a script's lines go to the lobby), and `/join` of a room you are in makes it current again.
#[tokio::test]
async fn lines_go_to_the_room_the_user_chose() {
    let server = Server::start();
    let addr = server.addr.to_string();
    let mut watcher = Raw::join(server.addr, "watcher").await;
    let first = {
        let addr = addr.clone();
        tokio::task::spawn_blocking(move || {
            join(
                &["--server", &addr, "--name", "张三"],
                "/join newroom\n/quit\n",
            )
        })
    };
    assert!(first.await.unwrap().status.success());
    let mut script = {
        let addr = addr.clone();
        tokio::task::spawn_blocking(move || {
            let mut s = Script::start(&["--server", &addr, "--name", "张三"]);
            // Back in #newroom too: wait until that has been shown, then type.
            s.wait_for("you joined #newroom");
            s.type_line("race");
            s
        })
        .await
        .unwrap()
    };
    let m = watcher.next_of("message").await;
    assert_eq!(
        (m["text"].as_str(), m["room"].as_str()),
        (Some("race"), Some("lobby"))
    );
    let script = tokio::task::spawn_blocking(move || {
        script.type_line("/join zzz");
        script.wait_for("you joined #zzz");
        script.type_line("/join lobby");
        script.type_line("back in the lobby");
        script.type_line("/quit");
        script.finish()
    });
    let m = watcher.next_of("message").await;
    assert_eq!(
        (m["text"].as_str(), m["room"].as_str()),
        (Some("back in the lobby"), Some("lobby"))
    );
    assert!(script.await.unwrap().success());
}

/// Issue 11, bug 2: a script whose message the server refused exits non-zero, with one line on stderr
/// saying so (the transcript on stdout still shows the refused line).
#[tokio::test]
async fn a_script_fails_when_a_message_was_refused() {
    let server = Server::start();
    let addr = server.addr.to_string();
    let script = format!("{}\nfine\n/quit\n", "x".repeat(10_000));
    let out =
        tokio::task::spawn_blocking(move || join(&["--server", &addr, "--name", "t"], &script))
            .await
            .unwrap();
    assert!(!out.status.success(), "{out:?}");
    let err = stderr_line(&out);
    assert!(err.contains("refused 1 message"), "{err:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("! not sent ("), "{stdout}");
    assert!(
        stdout.contains("] t: fine"),
        "the rest was still sent: {stdout}"
    );
}

/// Issue 11, bug 5: a server that accepts and never answers does not hang the client: it gives up after
/// `--timeout` with one clear line.
#[tokio::test]
async fn a_server_that_never_answers_is_given_up_on() {
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = silent.local_addr().unwrap().to_string();
    let _held = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = silent.accept().await {
            held.push(stream); // accepted, never answered
        }
    });
    let out = tokio::task::spawn_blocking(move || {
        let mut child = spawn_join(&["--server", &addr, "--name", "x", "--timeout", "1"]);
        child.stdin.take().unwrap().write_all(b"hi\n").unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("still waiting for the silent server after 10 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap();
    assert!(!out.status.success());
    let err = stderr_line(&out);
    assert!(err.contains("did not answer within 1 s"), "{err:?}");
}

/// Issue 11, friction 14: a history file that cannot be opened stops the server before it announces
/// anything; the LAN hint names the port actually used.
#[test]
fn serve_checks_its_history_file_before_announcing_and_hints_the_real_port() {
    let out = natter()
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--db",
            "/proc/natter-cannot/h.db",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        out.stdout.is_empty(),
        "announced anyway: {:?}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(stderr_line(&out).contains("h.db"));

    let mut cmd = natter();
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--db", ":memory:"]);
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let port = line
        .split_whitespace()
        .nth(3)
        .unwrap()
        .rsplit(':')
        .next()
        .unwrap()
        .to_owned();
    assert!(
        line.contains(&format!("--listen 0.0.0.0:{port} opens")),
        "{line}"
    );
}

/// Issue 11, friction 13: errors say what to do — nothing listening, a port that is not natter, a stray
/// word instead of `--name`; and a host without a port means natter's port.
#[tokio::test]
async fn connection_errors_say_what_to_do() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = closed.local_addr().unwrap().to_string();
    drop(closed);
    let out = {
        let addr = addr.clone();
        tokio::task::spawn_blocking(move || join(&["--server", &addr, "--name", "x"], ""))
            .await
            .unwrap()
    };
    assert!(stderr_line(&out).contains("is `natter serve` running"));

    let out = join_fake("SSH-2.0-OpenSSH_9.2\r\n", "x", "").await;
    assert!(stderr_line(&out).contains("not as a natter server"));

    let out = tokio::task::spawn_blocking(|| join(&["bob"], ""))
        .await
        .unwrap();
    assert!(!out.status.success());
    assert!(stderr_line(&out).contains("--name bob"));
}

/// Issue 11, friction 15: a script's lines print as the server confirms them — not all at the end — and
/// a confirmed exit says so.
#[tokio::test]
async fn a_script_prints_each_line_as_it_is_confirmed() {
    let mut server_cmd = natter();
    // Default flood control: 5 at once, then 3 a second — twelve lines take about 2.5 s to be stored.
    server_cmd.args(["serve", "--listen", "127.0.0.1:0", "--db", ":memory:"]);
    let (child, addr) = support::spawn_server(server_cmd);
    let server = Server { child, addr };
    let mut watcher = Raw::join(server.addr, "watcher").await;
    let addr = server.addr.to_string();
    let script = tokio::task::spawn_blocking(move || {
        let mut s = Script::start(&["--server", &addr, "--name", "scr"]);
        for i in 1..=12 {
            s.type_line(&format!("line {i}"));
        }
        s.type_line("/quit");
        s.wait_for("scr: line 1");
        s
    })
    .await
    .unwrap();
    // When the script showed its first line, the last had not reached anyone yet.
    let mut seen = Vec::new();
    while let Ok(f) = tokio::time::timeout(Duration::ZERO, watcher.recv()).await {
        seen.push(f["text"].as_str().unwrap_or("").to_owned());
    }
    assert!(!seen.contains(&"line 12".to_owned()), "{seen:?}");
    let status = tokio::task::spawn_blocking(move || {
        let mut script = script;
        script.wait_for("scr: line 12");
        script.wait_for("* bye");
        script.finish()
    })
    .await
    .unwrap();
    assert!(status.success());
}

/// Issue 11, friction 16: a script whose lines were never confirmed names them on stderr, then fails.
#[tokio::test]
async fn a_script_names_its_unconfirmed_lines_on_stderr() {
    let out = join_fake(
        "{\"type\":\"welcome\",\"name\":\"t\",\"version\":1,\"rooms\":[\"lobby\"],\"last_seq\":0}\n",
        "t",
        "never acked\n/quit\n",
    )
    .await;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(
        lines,
        [
            "natter: not sent (the server never confirmed it): never acked",
            "natter: 1 message was not confirmed by the server"
        ],
        "{err}"
    );
}

/// Issue 11, bug 10: line mode has the commands README promises — `/history` shows the current room's
/// recent messages (and says so when there are none).
#[tokio::test]
async fn line_mode_has_history() {
    let server = Server::start();
    let mut alice = Raw::join(server.addr, "alice").await;
    alice
        .send(json!({"type":"say","text":"earlier words","id":"1"}))
        .await;
    alice.next_of("ack").await;
    let addr = server.addr.to_string();
    let out = tokio::task::spawn_blocking(move || {
        join(
            &["--server", &addr, "--name", "h"],
            "/join empty\n/history\n/join lobby\n/history\n/quit\n",
        )
    })
    .await
    .unwrap();
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("* no earlier messages in #empty"),
        "{stdout}"
    );
    // Once from the hello's replay, once from /history.
    assert_eq!(
        stdout.matches("] alice: earlier words").count(),
        2,
        "{stdout}"
    );
}

/// Runs `natter join` with `stdin`, its key kept in `data` (`None`: the tests' shared data directory).
fn join_with_data(data: Option<&std::path::Path>, args: &[&str], stdin: &str) -> Output {
    let mut cmd = natter();
    if let Some(data) = data {
        cmd.env("NATTER_DATA_DIR", data);
    }
    join_with(cmd, args, stdin)
}

/// Issue 12's reproduction with the real binaries: bob's natter client owns his name (its key in his
/// data directory); alice whispers him a password while he is away; someone else's natter — another data
/// directory — asking for the name is refused with a clear line and sees nothing; bob, from his own data
/// directory, gets in without typing anything and finds the whisper.
#[tokio::test]
async fn a_name_belongs_to_the_client_that_first_used_it() {
    let server = Server::start();
    let addr = server.addr.to_string();
    let bobs = tempfile::tempdir().unwrap();
    let mallorys = tempfile::tempdir().unwrap();
    let (bob_dir, mallory_dir) = (bobs.path().to_owned(), mallorys.path().to_owned());
    let run = |dir: std::path::PathBuf, stdin: &'static str| {
        let addr = addr.clone();
        tokio::task::spawn_blocking(move || {
            join_with_data(Some(&dir), &["--server", &addr, "--name", "bob"], stdin)
        })
    };
    let first = run(bob_dir.clone(), "/quit\n").await.unwrap();
    assert!(first.status.success(), "{first:?}");
    let key = std::fs::metadata(bob_dir.join("identity.key")).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(key.permissions().mode() & 0o777, 0o600);
    }

    let mut alice = Raw::join(server.addr, "alice").await;
    alice
        .send(json!({"type":"whisper","to":"bob","text":"my password is hunter2","id":"1"}))
        .await;
    alice.next_of("ack").await;

    let impostor = run(mallory_dir, "/quit\n").await.unwrap();
    assert!(!impostor.status.success(), "{impostor:?}");
    let said = String::from_utf8_lossy(&impostor.stderr).into_owned();
    assert!(said.contains("bob belongs to someone"), "{said}");
    assert!(!String::from_utf8_lossy(&impostor.stdout).contains("hunter2"));
    assert!(!said.contains("hunter2"));

    let back = run(bob_dir, "/quit\n").await.unwrap();
    assert!(back.status.success(), "{back:?}");
    let stdout = String::from_utf8(back.stdout).unwrap();
    assert!(
        stdout.contains("alice → you: my password is hunter2"),
        "{stdout}"
    );
    assert!(
        stdout.contains("* 1 private message came while you were away:"),
        "{stdout}"
    );
}

/// `natter serve` with its own data directory (so its own TLS certificate) on `listen`; returns the server
/// and the certificate fingerprint it announced.
fn serve_in(dir: &std::path::Path, listen: &str) -> (Server, String) {
    serve_in_with(dir, listen, &[])
}

/// [`serve_in`] with more `natter serve` flags.
fn serve_in_with(dir: &std::path::Path, listen: &str, extra: &[&str]) -> (Server, String) {
    let mut cmd = natter();
    // The database too is in `dir` (natter.db): `natter admin` works on it.
    cmd.env("NATTER_DATA_DIR", dir)
        .args(["serve", "--listen", listen])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = cmd.spawn().unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut lines = Vec::new();
    for _ in 0..3 {
        let mut line = String::new();
        std::io::BufRead::read_line(&mut out, &mut line).unwrap();
        lines.push(line);
    }
    std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
    let addr = lines[0].split_whitespace().nth(3).unwrap().parse().unwrap();
    let fingerprint = lines[1]
        .split_whitespace()
        .find(|w| w.starts_with("SHA256:"))
        .unwrap_or_else(|| panic!("no fingerprint in {lines:?}"))
        .to_owned();
    (Server { child, addr }, fingerprint)
}

/// Issue 12: TLS with trust on first use. The first connection is told the certificate's fingerprint —
/// the one the server announced — and remembers it; the next connects quietly; a server with another
/// certificate at the same address is refused loudly, naming both fingerprints and what to do; a pinned
/// fingerprint connects without any first-use notice, and a wrong pin is refused.
#[tokio::test]
async fn tls_trusts_on_first_use_and_refuses_a_changed_certificate() {
    let (first_home, second_home, client) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let (server, fingerprint) = serve_in(first_home.path(), "127.0.0.1:0");
    let addr = server.addr.to_string();
    let run = |args: Vec<String>| {
        let dir = client.path().to_owned();
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            join_with_data(Some(&dir), &args, "/quit\n")
        })
    };
    let args = |extra: &[&str]| -> Vec<String> {
        ["--server", &addr, "--name", "tofu"]
            .iter()
            .chain(extra)
            .map(|s| s.to_string())
            .collect()
    };
    let first = run(args(&[])).await.unwrap();
    assert!(first.status.success(), "{first:?}");
    let said = String::from_utf8_lossy(&first.stderr).into_owned();
    assert!(
        said.contains(&format!(
            "first connection to {addr} over TLS: its certificate is {fingerprint}"
        )),
        "{said}"
    );
    let known = std::fs::read_to_string(client.path().join("known_servers")).unwrap();
    assert_eq!(known.trim(), format!("{addr} {fingerprint}"));
    let again = run(args(&[])).await.unwrap();
    assert!(again.status.success());
    assert!(!String::from_utf8_lossy(&again.stderr).contains("first connection"));

    // Another server — another certificate — at the same address.
    drop(server);
    let (impostor, other) = serve_in(second_home.path(), &addr);
    assert_ne!(other, fingerprint);
    let refused = run(args(&[])).await.unwrap();
    assert!(!refused.status.success());
    let said = stderr_line(&refused);
    for part in [
        fingerprint.as_str(),
        other.as_str(),
        "known_servers",
        "--fingerprint",
    ] {
        assert!(said.contains(part), "{part} missing from {said}");
    }
    // Pinned out of band: connects, no notice; a wrong pin is refused.
    let pinned = run(args(&["--fingerprint", &other])).await.unwrap();
    assert!(pinned.status.success(), "{pinned:?}");
    assert!(!String::from_utf8_lossy(&pinned.stderr).contains("first connection"));
    let wrong = run(args(&["--fingerprint", &fingerprint])).await.unwrap();
    assert!(!wrong.status.success());
    assert!(stderr_line(&wrong).contains("not the pinned"), "{wrong:?}");
    drop(impostor);
}

/// Issue 12: the chat port completes a TLS handshake with OpenSSL's own client, and natter's protocol
/// works through it — the same port that still speaks plain text to `nc` (every other test here).
#[tokio::test]
async fn openssl_s_client_speaks_natter_over_tls() {
    let home = tempfile::tempdir().unwrap();
    let (server, _) = serve_in(home.path(), "127.0.0.1:0");
    let addr = server.addr.to_string();
    let out = tokio::task::spawn_blocking(move || {
        let mut child = Command::new("openssl")
            .args(["s_client", "-quiet", "-connect", &addr])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("openssl is installed (.ci/run installs it)");
        let mut stdin = child.stdin.take().unwrap();
        stdin
            .write_all(
                b"{\"type\":\"hello\",\"name\":\"ossl\",\"version\":1}\n{\"type\":\"exit\"}\n",
            )
            .unwrap();
        // s_client ends when the server closes after `bye`.
        let out = child.wait_with_output().unwrap();
        drop(stdin);
        out
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(r#""type":"welcome""#), "{out:?}");
    assert!(stdout.contains(r#""type":"bye""#), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("TLSv1.3") || stderr.contains("verify"),
        "{stderr}"
    );
}

/// `natter admin` against a server's data directory.
fn admin(dir: &std::path::Path, args: &[&str]) -> Output {
    natter()
        .env("NATTER_DATA_DIR", dir)
        .arg("admin")
        .args(args)
        .output()
        .unwrap()
}

/// Issue 12: the `natter admin` round trip, on the database of a server that stops and starts again — list
/// the owned names, reset a lost password to a one-time code (good once), make an admin, release a name
/// (anyone may use it, nothing of its owner's is left), ban a name and an address; and names unused for
/// 180 days released, with the clock moved by `--now`.
#[tokio::test]
async fn natter_admin_looks_after_the_accounts() {
    let home = tempfile::tempdir().unwrap();
    let bobs = tempfile::tempdir().unwrap();
    let (server, _) = serve_in(home.path(), "127.0.0.1:0");
    let addr = server.addr.to_string();
    let join_as = |name: &'static str| {
        let (addr, dir) = (addr.clone(), bobs.path().to_owned());
        tokio::task::spawn_blocking(move || {
            join_with_data(Some(&dir), &["--server", &addr, "--name", name], "/quit\n")
        })
    };
    assert!(join_as("bob").await.unwrap().status.success());
    assert!(join_as("dora").await.unwrap().status.success());
    let listed = String::from_utf8(admin(home.path(), &["list"]).stdout).unwrap();
    assert!(listed.starts_with("bob\tsince "), "{listed}");
    assert!(listed.contains("\n") && listed.contains("dora"), "{listed}");

    // A lost key: a one-time code gets bob in once (from a device without his key).
    let code = admin(home.path(), &["reset-password", "bob"]);
    let code = String::from_utf8(code.stdout).unwrap().trim().to_owned();
    assert!(code.len() >= 12, "{code:?}");
    let mut raw = Raw::connect(server.addr).await;
    raw.send(json!({"type":"hello","name":"bob","version":1,"password":code}))
        .await;
    assert_eq!(raw.recv().await["type"], "welcome");
    let mut again = Raw::connect(server.addr).await;
    again
        .send(json!({"type":"hello","name":"bob","version":1,"password":code}))
        .await;
    assert_eq!(
        again.recv().await["code"],
        "bad_password",
        "the code is spent"
    );
    drop((raw, again));

    assert!(admin(home.path(), &["grant-admin", "bob"]).status.success());
    assert!(String::from_utf8(admin(home.path(), &["list"]).stdout)
        .unwrap()
        .contains(", admin"));
    let not_owned = admin(home.path(), &["release", "nobody"]);
    assert!(!not_owned.status.success());
    assert!(String::from_utf8_lossy(&not_owned.stderr).contains("nobody is not an owned name"));

    // Release and bans take effect on the server's next start (a running one reads them within 30 s).
    assert!(admin(home.path(), &["release", "bob"]).status.success());
    assert!(admin(home.path(), &["ban", "mallory"]).status.success());
    assert!(admin(home.path(), &["ban-address", "127.0.0.9"])
        .status
        .success());
    drop(server);
    let (server, _) = serve_in(home.path(), &addr);
    let mut guest = Raw::connect(server.addr).await;
    guest
        .send(json!({"type":"hello","name":"bob","version":1}))
        .await;
    assert_eq!(
        guest.recv().await["type"],
        "welcome",
        "bob is anyone's again"
    );
    let mut mallory = Raw::connect(server.addr).await;
    mallory
        .send(json!({"type":"hello","name":"Mallory","version":1}))
        .await;
    let banned = mallory.recv().await;
    assert_eq!(
        (banned["code"].as_str(), banned["args"]["what"].as_str()),
        (Some("banned"), Some("name"))
    );
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.9:0".parse().unwrap()).unwrap();
    let mut from_banned = Raw::from_stream(socket.connect(server.addr).await.unwrap());
    let banned = from_banned.recv().await;
    assert_eq!(banned["args"]["what"], "address", "{banned}");
    drop(server);

    // Expiry, with the clock moved: dora signed out just now, so in 181 days she is released.
    let soon = admin(
        home.path(),
        &["expire", "--now", &jiff::Timestamp::now().to_string()],
    );
    assert_eq!(String::from_utf8(soon.stdout).unwrap(), "");
    let later = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(181 * 24);
    let expired = admin(home.path(), &["expire", "--now", &later.to_string()]);
    assert_eq!(
        String::from_utf8(expired.stdout).unwrap(),
        "released dora\n"
    );
}

/// Every (seq, text) of a history database, in order.
fn history_rows(db: &std::path::Path) -> Vec<(u64, String)> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut stmt = conn
        .prepare("SELECT seq, text FROM messages ORDER BY seq")
        .unwrap();
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    rows
}

/// Issue 16 (backups): `natter backup` copies a running server's history while it is being written —
/// the copy is consistent (every seq from 1 to its last, no gap) — and its keys; `natter restore` puts a
/// backup into a new data directory, where a server starts with the identical history and certificate.
#[tokio::test]
async fn backup_under_load_and_restore_to_an_identical_history() {
    let home = tempfile::tempdir().unwrap();
    // Flood control off: the writer sends as fast as it can.
    let (server, fingerprint) = serve_in_with(home.path(), "127.0.0.1:0", &["--flood-rate", "0"]);
    let mut writer = Raw::join(server.addr, "writer").await;
    let (started, writing) = tokio::sync::oneshot::channel();
    let mut started = Some(started);
    let load = tokio::spawn(async move {
        let mut acks = 0;
        for batch in 0..3 {
            for i in 0..1000 {
                let text = format!("line {}", batch * 1000 + i);
                writer
                    .send(json!({"type":"say","text":text,"id":format!("w{batch}-{i}")}))
                    .await;
            }
            if batch == 0 {
                while acks < 1000 {
                    acks += usize::from(writer.recv().await["type"] == "ack");
                }
                // The backup starts now, with 2,000 more on their way.
                if let Some(started) = started.take() {
                    let _ = started.send(());
                }
            }
        }
        while acks < 3000 {
            acks += usize::from(writer.recv().await["type"] == "ack");
        }
        writer
    });
    writing.await.unwrap();
    let first = home.path().join("backup-during");
    let during = {
        let (home, first) = (home.path().to_owned(), first.clone());
        tokio::task::spawn_blocking(move || {
            natter()
                .env("NATTER_DATA_DIR", &home)
                .args(["backup".as_ref(), first.as_os_str()])
                .output()
                .unwrap()
        })
        .await
        .unwrap()
    };
    assert!(during.status.success(), "{during:?}");
    let rows = history_rows(&first.join("natter.db"));
    let seqs: Vec<u64> = rows.iter().map(|(seq, _)| *seq).collect();
    assert!(seqs.len() >= 1000, "{}", seqs.len());
    assert_eq!(
        seqs,
        (1..=seqs.len() as u64).collect::<Vec<_>>(),
        "no gap in a backup taken under load"
    );
    let mut writer = load.await.unwrap();
    writer.send(json!({"type":"exit"})).await;
    drop(server);

    let second = home.path().join("backup-after");
    let out = natter()
        .env("NATTER_DATA_DIR", home.path())
        .args(["backup".as_ref(), second.as_os_str()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(second.join("tls-key.pem"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "the key stays private in the backup");
    }
    let elsewhere = tempfile::tempdir().unwrap();
    let restored = natter()
        .env("NATTER_DATA_DIR", elsewhere.path())
        .args(["restore".as_ref(), second.as_os_str()])
        .output()
        .unwrap();
    assert!(restored.status.success(), "{restored:?}");
    let again = natter()
        .env("NATTER_DATA_DIR", elsewhere.path())
        .args(["restore".as_ref(), second.as_os_str()])
        .output()
        .unwrap();
    assert!(
        !again.status.success(),
        "never over an existing database without --force"
    );
    let original = history_rows(&home.path().join("natter.db"));
    assert_eq!(original.len(), 3000);
    assert_eq!(history_rows(&elsewhere.path().join("natter.db")), original);
    let (restored_server, restored_fingerprint) = serve_in(elsewhere.path(), "127.0.0.1:0");
    assert_eq!(restored_fingerprint, fingerprint, "the same certificate");
    let mut reader = Raw::connect(restored_server.addr).await;
    reader
        .send(json!({"type":"hello","name":"reader","version":1}))
        .await;
    assert_eq!(reader.recv().await["last_seq"], 3000);
}

/// Issue 16 (config file): `natter serve --config FILE` takes every flag as a key; a flag beats the file;
/// an unknown key or a bad value is refused at start naming the file (and line); `natter config
/// example`, uncommented, is a valid config (`natter config check`).
#[tokio::test]
async fn the_config_file_sets_what_flags_do_not() {
    let home = tempfile::tempdir().unwrap();
    let file = home.path().join("natter.toml");
    std::fs::write(
        &file,
        "# a comment\nlisten = [\"127.0.0.1:0\"]\nmax-text = 10\nlang = \"zh-CN\"\nflood-rate = 0\n",
    )
    .unwrap();
    let file_arg = file.to_str().unwrap().to_owned();
    let start = |extra: &[&str]| {
        let mut cmd = natter();
        cmd.env("NATTER_DATA_DIR", home.path())
            .args(["serve", "--config", &file_arg, "--db", ":memory:"])
            .args(extra);
        let (child, addr) = support::spawn_server(cmd);
        Server { child, addr }
    };
    let say_twenty = |addr: SocketAddr| async move {
        let mut raw = Raw::join(addr, "conf").await;
        raw.send(json!({"type":"say","text":"twenty characters..","id":"1"}))
            .await;
        loop {
            let f = raw.recv().await;
            if f["type"] == "ack" || f["type"] == "error" {
                return f;
            }
        }
    };
    let server = start(&[]);
    let refused = say_twenty(server.addr).await;
    assert_eq!(
        refused["code"], "invalid_text",
        "max-text from the file: {refused}"
    );
    // The file's language greets a silent nc user.
    let mut nc = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let mut greeting = vec![0u8; 200];
    let n = tokio::time::timeout(
        Duration::from_secs(5),
        tokio::io::AsyncReadExt::read(&mut nc, &mut greeting),
    )
    .await
    .unwrap()
    .unwrap();
    assert!(String::from_utf8_lossy(&greeting[..n]).contains("这是一个 natter 聊天服务器"));
    drop(server);
    let server = start(&["--max-text", "100"]);
    assert_eq!(
        say_twenty(server.addr).await["type"],
        "ack",
        "the flag beats the file"
    );
    drop(server);

    std::fs::write(&file, "listen = [\"127.0.0.1:0\"]\n\nbogus = 1\n").unwrap();
    let out = natter()
        .env("NATTER_DATA_DIR", home.path())
        .args(["serve", "--config", &file_arg])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let said = stderr_line(&out);
    assert!(
        said.contains(&format!("{file_arg}:3: unknown key `bogus`")),
        "{said}"
    );
    std::fs::write(&file, "max-clients = \"many\"\n").unwrap();
    let out = natter()
        .args(["config", "check", &file_arg])
        .output()
        .unwrap();
    assert!(!out.status.success());
    // The file and the line of the bad value, why, and what is allowed.
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&format!(
            "{file_arg}:1: invalid value 'many' for '--max-clients <N>'"
        )),
        "{out:?}"
    );
    std::fs::write(&file, "# logs\nlog-format = \"xml\"\n").unwrap();
    let out = natter()
        .args(["config", "check", &file_arg])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains(&format!("{file_arg}:2: invalid value 'xml'"))
            && said.contains("[possible values: text, json]"),
        "{said}"
    );

    let example = natter().args(["config", "example"]).output().unwrap();
    let example = String::from_utf8(example.stdout).unwrap();
    let uncommented: String = example
        .lines()
        .map(|l| match l.strip_prefix("# ") {
            Some(rest)
                if rest
                    .split(" = ")
                    .next()
                    .is_some_and(|k| k.chars().all(|c| c.is_ascii_lowercase() || c == '-'))
                    && rest.contains(" = ") =>
            {
                format!("{rest}\n")
            }
            _ => format!("{l}\n"),
        })
        .collect();
    assert!(uncommented.contains("\nmax-clients = "), "{uncommented}");
    std::fs::write(&file, uncommented).unwrap();
    let out = natter()
        .args(["config", "check", &file_arg])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
}

/// Issue 16 (status at a glance): `natter status` asks a running server on its chat port — connections
/// by front end, who is signed in, rooms, messages, database size — for a person, or as JSON.
#[tokio::test]
async fn natter_status_reports_a_running_server() {
    let home = tempfile::tempdir().unwrap();
    let (server, _) = serve_in(home.path(), "127.0.0.1:0");
    let mut alice = Raw::join(server.addr, "alice").await;
    alice
        .send(json!({"type":"say","text":"one","id":"1"}))
        .await;
    alice.next_of("ack").await;
    let mut nc = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut nc, b"carol\n")
        .await
        .unwrap();
    let mut welcome = vec![0u8; 100];
    let _ = tokio::io::AsyncReadExt::read(&mut nc, &mut welcome)
        .await
        .unwrap();
    let addr = server.addr.to_string();
    let out = tokio::task::spawn_blocking({
        let addr = addr.clone();
        move || {
            natter()
                .args(["status", "--server", &addr, "--json"])
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    assert!(out.status.success(), "{out:?}");
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    // alice, carol in nc, and the asker itself.
    assert_eq!(
        status["connections"],
        json!({"native": 2, "plain": 1}),
        "{status}"
    );
    assert_eq!(
        (status["users"].as_u64(), status["last_seq"].as_u64()),
        (Some(2), Some(1))
    );
    assert!(status["db_bytes"].as_u64().unwrap() > 0);
    let out = tokio::task::spawn_blocking(move || {
        natter()
            .args(["status", "--server", &addr])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("connections: 3 (2 native, 1 plain; this one included)"),
        "{text}"
    );
    assert!(
        text.contains("signed in: 2; rooms: 1; messages stored: 1"),
        "{text}"
    );
    assert!(text.contains("last error: none"), "{text}");
}

/// Issue 16 (logs): `--log-format json` writes one JSON object per line, with stable fields to filter a
/// departure or a refusal on — and no message text without `-v`.
#[tokio::test]
async fn json_logs_have_fields_to_filter_on() {
    let home = tempfile::tempdir().unwrap();
    let mut child = natter()
        .env("NATTER_DATA_DIR", home.path())
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--db",
            ":memory:",
            "--log-format",
            "json",
            "--max-per-ip",
            "1",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut out, &mut line).unwrap();
    let addr: SocketAddr = line.split_whitespace().nth(3).unwrap().parse().unwrap();
    let mut raw = Raw::join(addr, "logged").await;
    raw.send(json!({"type":"say","text":"a secret line","id":"1"}))
        .await;
    raw.next_of("ack").await;
    // A second connection from the same address is over --max-per-ip 1: refused.
    let mut second = Raw::connect(addr).await;
    assert_eq!(second.recv().await["code"], "too_many_connections");
    raw.send(json!({"type":"exit"})).await;
    raw.next_of("bye").await;
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let output = child.wait_with_output().unwrap();
    let logs: Vec<Value> = String::from_utf8_lossy(&output.stderr)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect();
    assert!(
        logs.iter()
            .any(|l| l["event"] == "left" && l["reason"] == "exit"),
        "{logs:?}"
    );
    assert!(
        logs.iter()
            .any(|l| l["event"] == "refused" && l["reason"] == "too_many_connections"),
        "{logs:?}"
    );
    assert!(
        !format!("{logs:?}").contains("a secret line"),
        "message text is not logged"
    );
}

/// Issue 16 (package pieces): man pages for natter and every subcommand, and shell completions, from
/// the same definitions as `--help`.
#[test]
fn man_pages_and_completions_come_from_the_command_line_definitions() {
    let dir = tempfile::tempdir().unwrap();
    let out = natter().arg("man").arg(dir.path()).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let serve = std::fs::read_to_string(dir.path().join("natter-serve.1")).unwrap();
    assert!(
        serve.contains("\\-\\-require\\-tls") || serve.contains("require-tls"),
        "{serve}"
    );
    assert!(dir.path().join("natter-join.1").exists() && dir.path().join("natter.1").exists());
    for shell in ["bash", "zsh", "fish"] {
        let out = natter().args(["completions", shell]).output().unwrap();
        assert!(out.status.success(), "{shell}: {out:?}");
        let script = String::from_utf8(out.stdout).unwrap();
        assert!(
            script.contains("serve") && script.contains("fingerprint"),
            "{shell}"
        );
    }
}
