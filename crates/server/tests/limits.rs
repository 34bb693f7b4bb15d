//! Limits that hold under pressure (issue 10's defects 2, 3, 4 and 9): blank-line floods, long resumes
//! beside live traffic, limits shared by every listener, and readers that never wait for ever.

mod common;

use std::time::Duration;

use common::{Client, Connect, TestServer};
use natter_server::Config;
use serde_json::{json, Value};

fn config() -> Config {
    natter_server::testing::config()
}

/// Stores more history than every socket buffer between the server and a client that does not read
/// can hold (the kernel lets a send buffer grow to 4 MiB here), so that client's replay must wait.
const BACKLOG: usize = 1200;

async fn backlog(sender: &mut Client) {
    let text = "z".repeat(7000);
    // In rounds of 100, so the sender's acks never pile up past a small outbox.
    for round in 0..BACKLOG / 100 {
        let mut frames = Vec::new();
        for i in 0..100 {
            let frame = json!({"type":"say","text":text,"id":format!("backlog-{round}-{i}")});
            frames.extend_from_slice(&serde_json::to_vec(&frame).unwrap());
            frames.push(b'\n');
        }
        sender.send_raw(&frames).await;
        let mut acks = 0;
        while acks < 100 {
            if sender.recv().await["type"] == "ack" {
                acks += 1;
            }
        }
    }
}

/// alice leaves, bob stores a [`backlog`], and alice comes back resuming with a small receive window and
/// without reading: her replay is more than the server can hand the kernel. Returns (bob, alice).
async fn resume_behind_a_backlog(server: &TestServer) -> (Client, Client) {
    let mut alice = server.join("alice").await;
    let last = alice.say("before", "0").await["seq"].as_u64().unwrap();
    drop(alice);
    let mut bob = server.join("bob").await;
    backlog(&mut bob).await;
    let mut alice = Client::connect_small_window(server.addr).await;
    alice
        .send(json!({"type":"hello","name":"alice","version":1,"resume_after":last}))
        .await;
    (bob, alice)
}

/// Defect 2: blank lines are keep-alives. They used to be queued for a flood token each (at 0 bytes
/// against `--max-recvq`), so a stream of newlines grew the receive queue without bound and held back
/// every request behind it.
#[tokio::test]
async fn blank_lines_cost_no_flood_tokens_and_tiny_frames_count_against_the_queue() {
    let server = TestServer::start_with(Config {
        flood_burst: 1,
        flood_rate: 2.0,
        max_recvq: 8 * 1024,
        ..config()
    })
    .await;
    let mut alice = server.join("alice").await;
    alice.send_raw(&b"\n".repeat(200_000)).await;
    // Answered at the flood rate, not after 200,000 tokens (and not cut: the newlines queue nothing).
    alice.expect_nothing().await;

    // Tiny frames are counted with what their queue entry costs: 2,000 two-byte frames are far more
    // than 8 KiB of queue.
    let mut flooder = server.join("flooder").await;
    flooder.send_raw(&b"{}\n".repeat(2_000)).await;
    let mut cut = false;
    while let Some(line) = flooder.recv_line().await {
        let f: Value = serde_json::from_str(&line).unwrap();
        if f["type"] == "error" && f["code"] == "excess_flood" {
            cut = true;
        }
    }
    assert!(cut, "the flooder of tiny frames was cut with excess_flood");
    server.shutdown().await;
}

/// Defect 3: a resume with more backlog than the outbox holds, while live traffic arrives, gets
/// everything — the replay used to fill the whole outbox and the next live message cut the client as
/// `too_slow`.
#[tokio::test]
async fn a_resume_longer_than_the_outbox_survives_live_traffic() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(Config {
        max_outbox: 64 * 1024,
        db: natter_server::store::DbPath::File(dir.path().join("h.db")),
        ..config()
    })
    .await;
    // alice comes back with a small receive window and does not read while bob keeps talking: her
    // replay stops at the outbox's bound, and bob's live lines (25 KiB in all) wait behind it.
    let (mut bob, mut alice) = resume_behind_a_backlog(&server).await;
    let text = "x".repeat(500);
    for i in 0..50 {
        bob.say(&format!("live {i} {text}"), &format!("l{i}")).await;
    }
    let mut seen = Vec::new();
    while seen.len() < BACKLOG + 50 {
        let f = alice.recv().await;
        assert_ne!(f["code"], "too_slow", "cut during the resume");
        if f["type"] == "message" {
            seen.push(f["seq"].as_u64().unwrap());
        }
    }
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "in seq order");
    alice.expect_nothing().await;
    server.shutdown().await;
}

/// Defect 4: `--max-clients` counts every listener's connections together.
#[tokio::test]
async fn connection_limits_are_shared_by_every_listener() {
    let bind = |addr: &str| natter_server::bind(addr.parse().unwrap(), 128).unwrap();
    let (first, second) = (bind("127.0.0.1:0"), bind("127.0.0.1:0"));
    let second_addr = second.local_addr().unwrap();
    let server = TestServer::start_on(
        vec![first, second],
        Config {
            max_clients: 1,
            ..config()
        },
    );
    let mut one = server.join("one").await;
    let mut two = Client::connect(second_addr).await;
    let refusal = two.recv().await;
    assert_eq!(refusal["code"], "server_full", "{refusal}");
    one.expect_nothing().await;
    server.shutdown().await;
}

/// Defect 4: IPv4 and IPv6 wildcards on the same port, as docs/OPERATIONS.md shows (nothing connects).
#[tokio::test]
async fn ipv4_and_ipv6_wildcards_share_a_port() {
    let v4 = natter_server::bind("0.0.0.0:0".parse().unwrap(), 16).unwrap();
    let port = v4.local_addr().unwrap().port();
    let v6 = natter_server::bind(format!("[::]:{port}").parse().unwrap(), 16);
    assert!(v6.is_ok(), "[::]:{port} beside 0.0.0.0:{port}: {v6:?}");
}

/// Defect 9: a reader waiting for a client to drain its replay gives up after the idle timeout (the
/// client is cut as too slow and its name freed) instead of waiting for ever.
#[tokio::test]
async fn a_client_that_stops_reading_its_replay_is_cut_after_the_idle_timeout() {
    let server = TestServer::start_with(Config {
        max_outbox: 16 * 1024,
        idle_timeout: Duration::from_secs(1),
        ..config()
    })
    .await;
    let (mut bob, alice) = resume_behind_a_backlog(&server).await;
    let deadline = tokio::time::Instant::now() + common::WAIT;
    loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "alice was never cut"
        );
        let f = bob.recv().await;
        if f["type"] == "ping" {
            bob.send(json!({"type":"pong","id":f["id"]})).await; // bob is idle too, but alive
        }
        if f["type"] == "left" && f["name"] == "alice" {
            assert_eq!(f["reason"], "too_slow", "{f}");
            break;
        }
    }
    drop(alice);
    server.shutdown().await;
}

/// Defect 9: shutdown reaches a reader that is waiting in a replay, so the connection is closed rather
/// than left open after the server has stopped.
#[tokio::test]
async fn shutdown_closes_a_connection_stuck_in_its_replay() {
    let server = TestServer::start_with(Config {
        max_outbox: 16 * 1024,
        idle_timeout: Duration::ZERO,
        ..config()
    })
    .await;
    let (mut bob, mut alice) = resume_behind_a_backlog(&server).await;
    // Wait until alice's session is registered (bob hears her), then stop the server.
    loop {
        let f = bob.recv().await;
        if f["type"] == "joined" && f["name"] == "alice" {
            break;
        }
    }
    server.shutdown().await;
    // The socket closes with the replay unfinished (what the kernel buffered still arrives): the session
    // ended instead of waiting for alice to read the whole backlog.
    let rest = alice.read_to_end().await;
    let messages = rest
        .split(|b| *b == b'\n')
        .filter(|l| l.starts_with(br#"{"type":"message""#))
        .count();
    assert!(
        messages < BACKLOG,
        "the whole replay ({messages} messages) was still sent after shutdown"
    );
}

/// `--trusted-proxy` on the chat port: a connection from the proxy starts with a PROXY protocol header
/// (v1 or v2) and counts as the client it names — per-address limits hold per client, and a client
/// from another machine is treated as one (`--require-tls`); without the header it is closed. From
/// anyone else a header is not believed (it is just a bad first line).
#[tokio::test]
async fn a_trusted_proxy_names_the_client_with_the_proxy_protocol() {
    let server = TestServer::start_with(Config {
        max_per_ip: 1,
        trusted_proxies: vec!["127.0.0.1".parse().unwrap()],
        ..config()
    })
    .await;
    let v1 = |client: &str| format!("PROXY TCP4 {client} 127.0.0.1 40000 5500\r\n").into_bytes();
    let v2 = |client: &str| {
        let client: std::net::SocketAddr = format!("{client}:40000").parse().unwrap();
        let server: std::net::SocketAddr = "127.0.0.1:5500".parse().unwrap();
        ppp::v2::Builder::with_addresses(
            ppp::v2::Version::Two | ppp::v2::Command::Proxy,
            ppp::v2::Protocol::Stream,
            (client, server),
        )
        .build()
        .unwrap()
    };
    let through = |header: Vec<u8>| async move {
        let mut c = Client::connect(server.addr).await;
        c.send_raw(&header).await;
        c
    };
    let mut one = through(v1("127.0.0.5")).await;
    one.hello("one").await;
    let mut two = through(v2("127.0.0.6")).await;
    two.hello("two").await;
    // The same client again: over its own limit, while the proxy's address has three connections.
    let mut again = through(v2("127.0.0.5")).await;
    assert_eq!(again.recv().await["code"], "too_many_connections");
    // No header from the proxy: closed.
    let mut bare = Client::connect(server.addr).await;
    bare.send(json!({"type":"hello","name":"bare","version":1}))
        .await;
    bare.expect_closed().await;
    let seen = one.sync().await;
    assert!(
        seen.iter()
            .all(|f| f["type"] == "joined" && f["name"] == "two"),
        "{seen:?}"
    );
    two.expect_nothing().await;
    server.shutdown().await;

    // A client from another machine, through the proxy, is one: plain text is refused with --require-tls.
    let server = TestServer::start_with(Config {
        require_tls: true,
        trusted_proxies: vec!["127.0.0.1".parse().unwrap()],
        ..config()
    })
    .await;
    let mut remote = Client::connect(server.addr).await;
    remote.send_raw(&v1("203.0.113.7")).await;
    remote
        .send(json!({"type":"hello","name":"far","version":1}))
        .await;
    assert_eq!(remote.recv().await["code"], "tls_required");
    server.shutdown().await;

    // Not trusted: the header is a bad first line like any other, and the connection stays 127.0.0.1.
    let server = TestServer::start_with(config()).await;
    let mut c = Client::connect(server.addr).await;
    c.send_raw(&v1("203.0.113.7")).await;
    let answer = c.recv_line().await.unwrap_or_default();
    assert!(!answer.contains("welcome"), "{answer}");
    server.shutdown().await;
}
