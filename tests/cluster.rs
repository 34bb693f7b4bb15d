//! Issue 17, as people run it: `natter serve --cluster` nodes (real processes) on one NATS JetStream,
//! and `natter join --server A,B` failing over when its node is killed.

use std::io::Write;
use std::process::{Command, Stdio};

use natter_server::testing::Nats;

mod support;

use support::{natter, Raw, Served};

/// A `natter serve --cluster` node with its own history file in `dir`.
fn node(nats: &Nats, dir: &std::path::Path, name: &str) -> Served {
    let mut cmd = natter();
    cmd.env("NATTER_DATA_DIR", dir).args([
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--web",
        "none",
        "--irc",
        "none",
        "--db",
        dir.join(format!("{name}.db")).to_str().unwrap(),
        "--cluster",
        &nats.url,
    ]);
    Served::start(cmd)
}

/// SIGKILL the node a client is on: `natter join --server A,B` reconnects to B by itself and resumes
/// there — what was said meanwhile reaches it once, what it typed meanwhile is sent once — and a user on
/// B notices nothing but the messages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_fails_over_to_another_node_and_resumes_exactly_once() {
    let nats = Nats::start();
    let dir = tempfile::tempdir().unwrap();
    let mut a = node(&nats, dir.path(), "a");
    let b = node(&nats, dir.path(), "b");
    let (a_addr, b_addr) = (
        a.addr("natter: listening on"),
        b.addr("natter: listening on"),
    );
    let mut bob = Raw::join(b_addr, "bob").await;
    let status = natter()
        .args(["cluster", "status", "--cluster", &nats.url])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&status.stdout);
    assert!(status.status.success(), "{status:?}");
    assert!(
        said.contains("stream natter: ") && said.contains("nodes: 2"),
        "{said}"
    );
    assert!(said.contains("names online: 1"), "{said}");

    let mut alice = natter()
        .args([
            "join",
            "--name",
            "alice",
            "--server",
            &format!("{a_addr},{b_addr}"),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut typing = alice.stdin.take().unwrap();
    typing.write_all(b"on a\n").unwrap();
    typing.flush().unwrap();
    let m = bob.next_of("message").await;
    assert_eq!(
        (m["from"].as_str(), m["text"].as_str()),
        (Some("alice"), Some("on a"))
    );

    // Node a dies; bob talks meanwhile, and alice types.
    let killed = Command::new("kill")
        .args(["-KILL", &a.child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let _ = a.child.wait();
    bob.send(serde_json::json!({"type":"say","text":"while a was down","id":"b1"}))
        .await;
    bob.next_of("ack").await;
    typing
        .write_all("typed meanwhile 掉线\n".as_bytes())
        .unwrap();
    typing.flush().unwrap();

    // alice's name is still a's until a's last heartbeat is NAME_TTL old (a died without leaving): her
    // client retries until b lets her in.
    let limit = natter_server::cluster::NAME_TTL * 3;
    let m = loop {
        let f = bob.recv_within(limit).await;
        if f["type"] == "message" {
            break f;
        }
    };
    assert_eq!(
        (m["from"].as_str(), m["text"].as_str()),
        (Some("alice"), Some("typed meanwhile 掉线"))
    );
    typing.write_all(b"/quit\n").unwrap();
    drop(typing);
    let out = tokio::task::spawn_blocking(move || alice.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("* reconnected"), "{stdout}");
    assert_eq!(
        stdout.matches("] bob: while a was down").count(),
        1,
        "{stdout}"
    );
    // Nothing reached bob twice.
    bob.send(serde_json::json!({"type":"ping","id":"end"}))
        .await;
    loop {
        let f = bob.recv().await;
        assert_ne!(f["type"], "message", "twice: {f}");
        if f["type"] == "pong" {
            break;
        }
    }
}
