//! Issue 16, running natter for real: settings reloaded on SIGHUP, `NATTER_…` variables, metrics on a
//! listener of their own.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

mod support;

use support::{natter, Raw, Served};

/// A GET over plain HTTP/1.1: the status line and the body.
async fn http_get(addr: SocketAddr, path: &str) -> (String, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_string(&mut answer))
        .await
        .expect("answered in time")
        .unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    (
        head.lines().next().unwrap_or("").to_owned(),
        body.to_owned(),
    )
}

/// SIGHUP reads the config file again: a live setting (`max-clients`) changes at once and is logged
/// with its old and new value; a setting that needs a restart (`max-text`) is logged as such and does
/// not change; the flood settings change for a connection that is already open.
#[tokio::test]
async fn sighup_reloads_the_live_settings() {
    let home = tempfile::tempdir().unwrap();
    let file = home.path().join("natter.toml");
    let base = "listen = [\"127.0.0.1:0\"]\ndb = \":memory:\"\nweb = \"none\"\nirc = \"none\"\n";
    std::fs::write(&file, format!("{base}max-clients = 50\nflood-rate = 0\n")).unwrap();
    let mut cmd = natter();
    cmd.env("NATTER_DATA_DIR", home.path())
        .args(["serve", "--config", file.to_str().unwrap()]);
    let mut server = Served::start(cmd);
    let addr = server.addr("natter: listening on");
    let mut alice = Raw::join(addr, "alice").await;

    std::fs::write(
        &file,
        format!(
            "{base}max-clients = 1\nmax-text = 10\nflood-rate = 0.01\nflood-burst = 1\nmax-recvq = 600\n"
        ),
    )
    .unwrap();
    server.signal("HUP");
    let log = server.log_until("reloaded the settings").join("");
    assert!(log.contains("changed max-clients: 50 → 1"), "{log}");
    assert!(log.contains("changed flood-rate: 0.0 → 0.01"), "{log}");
    assert!(
        log.contains("max-text changed; it takes effect when the server restarts"),
        "{log}"
    );

    // alice is the one client there may be now.
    let mut bob = Raw::connect(addr).await;
    let refused = bob.recv().await;
    assert_eq!(refused["code"], "server_full", "{refused}");
    // max-text waits for a restart: a long text is still taken.
    alice
        .send(json!({"type":"say","text":"longer than ten bytes","id":"1"}))
        .await;
    assert_eq!(alice.next_of("ack").await["id"], "1");
    // alice's open connection is paced now (one frame, then one per 100 s): what she sends piles up
    // until it is more than max-recvq.
    for i in 0..20 {
        let text = format!("{i}: {}", "x".repeat(60));
        alice
            .send(json!({"type":"say","text":text,"id":format!("f{i}")}))
            .await;
    }
    assert_eq!(alice.next_of("error").await["code"], "excess_flood");

    // Reloaded again: room for more.
    std::fs::write(&file, format!("{base}max-clients = 50\n")).unwrap();
    server.signal("HUP");
    let log = server.log_until("reloaded the settings").join("");
    assert!(log.contains("changed max-clients: 1 → 50"), "{log}");

    // A file that no longer parses changes nothing, and says why.
    std::fs::write(&file, "max-clients = \"many\"\n").unwrap();
    server.signal("HUP");
    let log = server.log_until("cannot reload them").join("");
    assert!(log.contains("invalid value 'many'"), "{log}");
    // ... which `natter status` shows as the server's last error.
    let status = natter()
        .args(["status", "--server", &addr.to_string()])
        .output()
        .unwrap();
    let status = String::from_utf8_lossy(&status.stdout);
    assert!(
        status.contains("last error: keeping the settings as they are: cannot reload them:"),
        "{status}"
    );
}

/// Every `serve` flag is also a `NATTER_…` variable: a variable beats the config file, a flag beats the
/// variable.
#[tokio::test]
async fn an_environment_variable_beats_the_file_and_a_flag_beats_the_variable() {
    let home = tempfile::tempdir().unwrap();
    let file = home.path().join("natter.toml");
    std::fs::write(
        &file,
        "listen = [\"127.0.0.1:0\"]\ndb = \":memory:\"\nweb = \"none\"\nirc = \"none\"\nmax-text = 20\n",
    )
    .unwrap();
    // What a 15-byte text gets: an ack, or an error's code.
    let fifteen = |env: Option<&str>, flags: &[&str]| {
        let mut cmd = natter();
        cmd.env("NATTER_DATA_DIR", home.path())
            .args(["serve", "--config", file.to_str().unwrap()])
            .args(flags);
        if let Some(limit) = env {
            cmd.env("NATTER_MAX_TEXT", limit);
        }
        let server = Served::start(cmd);
        let addr = server.addr("natter: listening on");
        async move {
            let mut raw = Raw::join(addr, "env").await;
            raw.send(json!({"type":"say","text":"fifteen bytes..","id":"1"}))
                .await;
            let answer = loop {
                let f = raw.recv().await;
                if f["type"] == "ack" || f["type"] == "error" {
                    break f;
                }
            };
            drop(server);
            answer["code"].as_str().unwrap_or("ack").to_owned()
        }
    };
    assert_eq!(fifteen(None, &[]).await, "ack", "the file's 20");
    assert_eq!(
        fifteen(Some("12"), &[]).await,
        "invalid_text",
        "the variable beats the file"
    );
    assert_eq!(
        fifteen(Some("12"), &["--max-text", "20"]).await,
        "ack",
        "the flag beats the variable"
    );
    let help = natter().args(["serve", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("[env: NATTER_MAX_CLIENTS="), "{help}");
}

/// `--metrics ADDR` serves `/metrics` and `/healthz` on a listener of their own (and no longer on the
/// web listener); `--metrics off` counts nothing and serves nothing.
#[tokio::test]
async fn metrics_on_a_listener_of_their_own_or_off() {
    let home = tempfile::tempdir().unwrap();
    let start = |metrics: &str| {
        let mut cmd = natter();
        cmd.env("NATTER_DATA_DIR", home.path()).args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--db",
            ":memory:",
            "--irc",
            "none",
            "--web",
            "127.0.0.1:0",
            "--metrics",
            metrics,
        ]);
        Served::start(cmd)
    };
    let server = start("127.0.0.1:0");
    let (chat, web, metrics) = (
        server.addr("natter: listening on"),
        server.addr("natter: browser client at"),
        server.addr("natter: metrics at"),
    );
    let mut alice = Raw::join(chat, "alice").await;
    alice
        .send(json!({"type":"say","text":"one","id":"1"}))
        .await;
    alice.next_of("ack").await;
    let (status, body) = http_get(metrics, "/metrics").await;
    assert!(status.contains("200"), "{status}");
    assert!(body.contains("natter_messages_stored_total 1"), "{body}");
    assert!(body.contains("natter_connections{front_end=\"native\"} 1"));
    let (status, body) = http_get(metrics, "/healthz").await;
    assert!(status.contains("200") && body == "ok\n", "{status} {body}");
    let (status, _) = http_get(web, "/metrics").await;
    assert!(status.contains("404"), "{status}");
    drop(server);

    let server = start("off");
    let web = server.addr("natter: browser client at");
    let (status, _) = http_get(web, "/metrics").await;
    assert!(status.contains("404"), "{status}");
    let out = natter()
        .args(["serve", "--metrics", "nowhere"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not an address"),
        "{out:?}"
    );
}

/// Under systemd (JOURNAL_STREAM set) every log line starts with its syslog priority, which journald
/// takes as the entry's level — `<6>` info, `<4>` a warning (a refusal), `<3>` an error (a reload that
/// failed) — and carries no time of its own (the journal stamps it).
#[tokio::test]
async fn under_the_journal_each_line_carries_its_level() {
    let home = tempfile::tempdir().unwrap();
    let file = home.path().join("natter.toml");
    let base = "listen = [\"127.0.0.1:0\"]\ndb = \":memory:\"\nweb = \"none\"\nirc = \"none\"\n";
    std::fs::write(&file, format!("{base}max-clients = 1\n")).unwrap();
    let mut cmd = natter();
    cmd.env("NATTER_DATA_DIR", home.path())
        .env("JOURNAL_STREAM", "8:12345")
        .args(["serve", "--config", file.to_str().unwrap()]);
    let mut server = Served::start(cmd);
    let addr = server.addr("natter: listening on");
    let _alice = Raw::join(addr, "alice").await;
    let mut bob = Raw::connect(addr).await;
    assert_eq!(bob.recv().await["code"], "server_full");
    std::fs::write(&file, "max-clients = \"many\"\n").unwrap();
    server.signal("HUP");
    let log = server.log_until("cannot reload them");
    assert!(
        log.iter()
            .all(|l| l.starts_with(['<']) && !l[3..].starts_with("20")),
        "{log:#?}"
    );
    let level = |needle: &str| {
        log.iter()
            .find(|l| l.contains(needle))
            .map(|l| l[..3].to_owned())
            .unwrap_or_else(|| panic!("no {needle:?} in {log:#?}"))
    };
    assert_eq!(level("alice"), "<6>");
    assert_eq!(level("server_full"), "<4>");
    assert_eq!(level("cannot reload them"), "<3>");
}
