//! Issue 17, as people run it: `natter serve --cluster` nodes (real processes) on one NATS JetStream,
//! and `natter join --server A,B` failing over when its node is killed.

use std::io::Write;
use std::process::{Command, Stdio};

use natter_server::testing::Nats;

mod support;

use support::{natter, Raw, Served};

/// A `natter serve --cluster` node with its own data directory (history, certificate) in `dir`.
fn node(nats: &Nats, dir: &std::path::Path, name: &str) -> Served {
    let mut cmd = natter();
    cmd.env("NATTER_DATA_DIR", dir.join(name)).args([
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
        // The tests' clients send bursts.
        "--flood-rate",
        "0",
    ]);
    Served::start(cmd)
}

/// Nodes `a` and `b` of the cluster at `nats`.
fn two_nodes(nats: &Nats, dir: &std::path::Path) -> (Served, Served) {
    (node(nats, dir, "a"), node(nats, dir, "b"))
}

/// Asserts no message is pending for `c` (none came twice): up to the `pong` of a ping.
async fn nothing_twice(c: &mut Raw) {
    c.send(serde_json::json!({"type":"ping","id":"end"})).await;
    loop {
        let f = c.recv().await;
        assert_ne!(f["type"], "message", "twice: {f}");
        if f["type"] == "pong" {
            break;
        }
    }
}

/// Kills a node as a power cut would (SIGKILL).
fn kill(node: &mut Served) {
    let killed = Command::new("kill")
        .args(["-KILL", &node.child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let _ = node.child.wait();
}

/// SIGKILL the node a client is on: `natter join --server A,B` reconnects to B by itself and resumes
/// there — what was said meanwhile reaches it once, what it typed meanwhile is sent once — and a user on
/// B notices nothing but the messages. The nodes keep their data in directories of their own, yet
/// present the cluster's one certificate: the client trusted A's on first use (over TLS) and trusts B
/// as the same server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_fails_over_to_another_node_and_resumes_exactly_once() {
    let nats = Nats::start();
    let dir = tempfile::tempdir().unwrap();
    let (mut a, b) = two_nodes(&nats, dir.path());
    let (a_addr, b_addr) = (
        a.addr("natter: listening on"),
        b.addr("natter: listening on"),
    );
    let fingerprint = |node: &Served| {
        node.announced
            .iter()
            .flat_map(|line| line.split_whitespace())
            .find(|w| w.starts_with("SHA256:"))
            .expect("TLS on")
            .to_owned()
    };
    assert_eq!(fingerprint(&a), fingerprint(&b), "one identity");
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
    kill(&mut a);
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
    nothing_twice(&mut bob).await;
}

/// SIGKILL a node in the middle of a burst of sends: nothing it acked is lost, and when the sender resends
/// everything it has no ack for — and, to be sure, everything else too — through another node, each
/// message is stored once: every id reaches the other node's user exactly once, in seq order, with the
/// seq its first ack said.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_mid_burst_loses_no_acked_message_and_resends_are_not_doubled() {
    const BURST: usize = 200;
    let nats = Nats::start();
    let dir = tempfile::tempdir().unwrap();
    let (mut a, b) = two_nodes(&nats, dir.path());
    let (a_addr, b_addr) = (
        a.addr("natter: listening on"),
        b.addr("natter: listening on"),
    );
    let mut bob = Raw::join(b_addr, "bob").await;
    let mut alice = Raw::join(a_addr, "alice").await;
    for i in 0..BURST {
        alice
            .send(serde_json::json!({"type":"say","text":format!("m{i}"),"id":i.to_string()}))
            .await;
    }
    // Some acks come back, then the node dies with the rest of the burst in flight.
    let mut acked = std::collections::BTreeMap::new();
    while acked.len() < BURST / 4 {
        let f = alice.next_of("ack").await;
        acked.insert(
            f["id"].as_str().unwrap().to_owned(),
            f["seq"].as_u64().unwrap(),
        );
    }
    kill(&mut a);

    // alice again, through b, once the cluster has let go of her name; she resends every id.
    let deadline = std::time::Instant::now() + natter_server::cluster::NAME_TTL * 3;
    let mut again = loop {
        let mut c = Raw::connect(b_addr).await;
        c.send(serde_json::json!({"type":"hello","name":"alice","version":1}))
            .await;
        let f = c.recv_within(natter_server::cluster::NAME_TTL * 3).await;
        if f["type"] == "welcome" {
            break c;
        }
        assert_eq!(f["code"], "name_taken", "{f}");
        assert!(
            std::time::Instant::now() < deadline,
            "alice's name was never freed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    for i in 0..BURST {
        again
            .send(serde_json::json!({"type":"say","text":format!("m{i}"),"id":i.to_string()}))
            .await;
    }
    let mut resent = std::collections::BTreeMap::new();
    while resent.len() < BURST {
        let f = again.next_of("ack").await;
        resent.insert(
            f["id"].as_str().unwrap().to_owned(),
            f["seq"].as_u64().unwrap(),
        );
    }
    for (id, seq) in &acked {
        assert_eq!(resent.get(id), Some(seq), "id {id}: acked at {seq} first");
    }

    // bob has every message once, in seq order.
    let mut got: Vec<(u64, String)> = Vec::new();
    while got.len() < BURST {
        let m = bob.next_of("message").await;
        got.push((
            m["seq"].as_u64().unwrap(),
            m["text"].as_str().unwrap().to_owned(),
        ));
    }
    assert!(got.windows(2).all(|w| w[0].0 < w[1].0), "in seq order");
    let texts: std::collections::BTreeSet<&str> = got.iter().map(|(_, t)| t.as_str()).collect();
    assert_eq!(texts.len(), BURST, "each once");
    for (seq, text) in &got {
        let id = text.trim_start_matches('m');
        assert_eq!(resent.get(id), Some(seq), "{text}");
    }
    nothing_twice(&mut bob).await;
}

/// `natter admin --cluster`: an admin's change goes to the cluster's stream and every node applies it —
/// a name banned through it is refused on both nodes at once, and unbanned the same way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn natter_admin_reaches_every_node_of_a_cluster() {
    let nats = Nats::start();
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = two_nodes(&nats, dir.path());
    let (a_addr, b_addr) = (
        a.addr("natter: listening on"),
        b.addr("natter: listening on"),
    );
    let admin = |args: &[&str]| {
        let out = natter()
            .args(["admin", "--cluster", &nats.url])
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let mut alice = Raw::join(a_addr, "alice").await;
    let mut bob = Raw::join(b_addr, "bob").await;
    // After each change, a message through the stream: a node that has it has the change too.
    let barrier = |id: &'static str| (serde_json::json!({"type":"say","text":id,"id":id}), id);
    let hello = |name: &str| serde_json::json!({"type":"hello","name":name});

    assert!(admin(&["ban", "Mallory"]).contains("sent to the cluster"));
    let (say, id) = barrier("after-ban");
    alice.send(say).await;
    alice.next_of("ack").await;
    assert_eq!(bob.next_of("message").await["text"], id);
    for addr in [a_addr, b_addr] {
        let mut mallory = Raw::connect(addr).await;
        mallory.send(hello("mallory")).await;
        let f = mallory.recv().await;
        assert_eq!(f["code"], "banned", "{addr}: {f}");
    }

    admin(&["unban", "mallory"]);
    let (say, id) = barrier("after-unban");
    bob.send(say).await;
    bob.next_of("ack").await;
    assert_eq!(alice.next_of("message").await["text"], id);
    let mut mallory = Raw::connect(a_addr).await;
    mallory.send(hello("mallory")).await;
    assert_eq!(mallory.recv().await["type"], "welcome");
    let refused = natter()
        .args(["admin", "--cluster", &nats.url, "expire", "--days", "1"])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("release unused names themselves"),
        "{refused:?}"
    );
}
