//! Issue 17, cluster mode: natter nodes sharing one NATS JetStream stream (a real `nats-server` with
//! JetStream, on loopback, in a temporary directory).

mod common;

use std::time::{Duration, Instant};

use common::{Client, Connect, TestServer};
use natter_server::cluster::ClusterConfig;
use natter_server::store::DbPath;
use natter_server::testing::Nats;
use natter_server::Config;
use serde_json::{json, Value};

/// A node of the cluster at `nats`, with its own history file in `dir`.
async fn node(nats: &Nats, dir: &std::path::Path, name: &str) -> TestServer {
    TestServer::start_with(Config {
        db: DbPath::File(dir.join(format!("{name}.db"))),
        cluster: Some(ClusterConfig {
            urls: vec![nats.url.clone()],
            stream: "natter".into(),
        }),
        ..natter_server::testing::config()
    })
    .await
}

/// Two nodes, `a` and `b`, on one NATS server (keep the server and the directory for the test's length).
async fn two_nodes() -> (Nats, tempfile::TempDir, TestServer, TestServer) {
    let nats = Nats::start();
    let dir = tempfile::tempdir().unwrap();
    let a = node(&nats, dir.path(), "a").await;
    let b = node(&nats, dir.path(), "b").await;
    (nats, dir, a, b)
}

/// The next `message` frame (skipping presence).
async fn message(c: &mut Client) -> Value {
    loop {
        let f = c.recv().await;
        if f["type"] == "message" {
            return f;
        }
    }
}

/// Two nodes on one NATS server: users on either exchange room messages with the same seqs;
/// an ack comes after the stream has the message; a resend through the other node is stored once; both
/// nodes serve the same history.
#[tokio::test]
async fn two_nodes_share_rooms_seqs_and_history() {
    let (nats, _dir, a, b) = two_nodes().await;
    let mut alice = a.join("alice").await;
    let mut bob = b.join("bob").await;

    let ack = alice.say("hello from a", "1").await;
    let seq = ack["seq"].as_u64().unwrap();
    let got = message(&mut bob).await;
    assert_eq!(
        (
            got["seq"].as_u64(),
            got["text"].as_str(),
            got["from"].as_str()
        ),
        (Some(seq), Some("hello from a"), Some("alice"))
    );
    let ack = bob.say("hello from b", "1").await;
    let seq_b = ack["seq"].as_u64().unwrap();
    assert!(seq_b > seq);
    let got = message(&mut alice).await;
    assert_eq!(got["seq"].as_u64(), Some(seq_b));

    // A whisper to someone on the other node, and the answer back; nobody else gets it.
    bob.send(json!({"type":"whisper","to":"alice","text":"psst","id":"2"}))
        .await;
    let got = message(&mut alice).await;
    assert_eq!(
        (
            got["text"].as_str(),
            got["from"].as_str(),
            got["to"].as_str()
        ),
        (Some("psst"), Some("bob"), Some("alice"))
    );
    alice
        .send(json!({"type":"whisper","to":"bob","text":"yes?","id":"3"}))
        .await;
    assert_eq!(answer(&mut alice).await["id"], "3");
    let got = message(&mut bob).await;
    assert_eq!(
        (got["text"].as_str(), got["to"].as_str()),
        (Some("yes?"), Some("bob"))
    );
    // To nobody, anywhere: refused as on one node.
    alice
        .send(json!({"type":"whisper","to":"nobody","text":"?","id":"4"}))
        .await;
    let refused = answer(&mut alice).await;
    assert_eq!(
        (refused["code"].as_str(), refused["id"].as_str()),
        (Some("no_such_user"), Some("4"))
    );

    // alice's resend of "1" through node b (her connection to a was lost before the ack): the same seq,
    // and nobody gets it twice. (Her name is free on b once she has left a.)
    alice.send(json!({"type":"exit"})).await;
    while alice.recv_line().await.is_some() {}
    let mut again = join_when_free(&b, "alice").await;
    let ack = again.say("hello from a", "1").await;
    assert_eq!(ack["seq"].as_u64(), Some(seq), "{ack}");
    let pending = bob.sync().await;
    assert!(
        pending.iter().all(|f| f["type"] != "message"),
        "{pending:?}"
    );

    // The same history on both nodes.
    let mut watcher = a.join("watcher").await;
    // `natter cluster status`: the stream, both nodes, the names online (alice again, bob, watcher).
    let status = natter_server::cluster::status(&ClusterConfig {
        urls: vec![nats.url.clone()],
        stream: "natter".into(),
    })
    .await
    .unwrap();
    assert_eq!(status.nodes.len(), 2, "{status:?}");
    assert_eq!(status.names, 3, "{status:?}");
    assert!(status.last_seq >= seq_b, "{status:?}");
    let on_a = lobby_history(&mut watcher).await;
    let on_b = lobby_history(&mut bob).await;
    assert_eq!(on_a, on_b);
    assert!(on_a.contains(&(seq, "hello from a".to_owned())), "{on_a:?}");
    assert!(
        on_a.contains(&(seq_b, "hello from b".to_owned())),
        "{on_a:?}"
    );
    a.shutdown().await;
    b.shutdown().await;
}

/// Joins `node` as `name` once the cluster has freed the name (its last user left another node: the
/// release is on its way), within 5 seconds.
async fn join_when_free(node: &TestServer, name: &str) -> Client {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut c = Client::connect(node.addr).await;
        c.send(json!({"type":"hello","name":name,"version":1}))
            .await;
        let f = c.recv().await;
        if f["type"] == "welcome" {
            c.sync().await;
            return c;
        }
        assert_eq!(f["code"], "name_taken", "{f}");
        assert!(Instant::now() < deadline, "{name} was not freed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The lobby's history as (seq, text).
async fn lobby_history(c: &mut Client) -> Vec<(u64, String)> {
    c.send(json!({"type":"history","room":"lobby","limit":100}))
        .await;
    loop {
        let f = c.recv().await;
        if f["type"] == "history" {
            return f["messages"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| {
                    (
                        m["seq"].as_u64().unwrap(),
                        m["text"].as_str().unwrap().to_owned(),
                    )
                })
                .collect();
        }
    }
}

/// A node whose NATS cannot be reached does not start: it says so.
#[tokio::test]
async fn a_node_without_nats_says_so() {
    let port = natter_server::testing::free_port();
    let listener = natter_server::bind("127.0.0.1:0".parse().unwrap(), 16).unwrap();
    let result = natter_server::run_all(
        natter_server::Listeners {
            chat: vec![listener],
            ..Default::default()
        },
        Config {
            cluster: Some(ClusterConfig {
                urls: vec![format!("nats://127.0.0.1:{port}")],
                stream: "natter".into(),
            }),
            ..natter_server::testing::config()
        },
        std::future::pending::<()>(),
    )
    .await;
    let said = result.expect_err("no NATS, no server").to_string();
    assert!(
        said.contains("cannot reach NATS at nats://127.0.0.1:"),
        "{said}"
    );
}

/// A node whose database is ahead of the stream — the NATS servers' data was lost, or the node is pointed
/// at another cluster's stream — does not start: following the stream from there would take new
/// messages for ones it has, and drop them. It says so, and what to do.
#[tokio::test]
async fn a_node_ahead_of_its_stream_does_not_start() {
    let dir = tempfile::tempdir().unwrap();
    {
        let nats = Nats::start();
        let a = node(&nats, dir.path(), "a").await;
        let mut alice = a.join("alice").await;
        alice.say("one", "1").await;
        alice.say("two", "2").await;
        a.shutdown().await;
    }
    let empty = Nats::start();
    let listener = natter_server::bind("127.0.0.1:0".parse().unwrap(), 16).unwrap();
    let result = natter_server::run_all(
        natter_server::Listeners {
            chat: vec![listener],
            ..Default::default()
        },
        Config {
            db: DbPath::File(dir.path().join("a.db")),
            cluster: Some(ClusterConfig {
                urls: vec![empty.url.clone()],
                stream: "natter".into(),
            }),
            ..natter_server::testing::config()
        },
        std::future::pending::<()>(),
    )
    .await;
    let said = result
        .expect_err("a database ahead of the stream")
        .to_string();
    assert!(
        said.contains("but the stream natter ends at seq 0")
            && said.contains("start the node on an empty --db"),
        "{said}"
    );
}

/// A node cut off from NATS refuses sends with `server_error` instead of acking what it cannot store,
/// and recovers by itself when NATS is back: the next send is acked and reaches the other node.
#[tokio::test]
async fn a_node_cut_off_from_nats_refuses_sends_and_recovers() {
    let mut nats = Nats::start();
    let dir = tempfile::tempdir().unwrap();
    let a = node(&nats, dir.path(), "a").await;
    let b = node(&nats, dir.path(), "b").await;
    let mut alice = a.join("alice").await;
    let mut bob = b.join("bob").await;
    let first = alice.say("before", "1").await["seq"].as_u64().unwrap();
    assert_eq!(message(&mut bob).await["seq"].as_u64(), Some(first));

    nats.kill();
    alice
        .send(json!({"type":"say","text":"during","id":"2"}))
        .await;
    let refused = answer(&mut alice).await;
    assert_eq!(
        (
            refused["type"].as_str(),
            refused["code"].as_str(),
            refused["id"].as_str()
        ),
        (Some("error"), Some("server_error"), Some("2")),
        "{refused}"
    );

    nats.restart();
    // The client's retry of the refused message, once NATS is back (the node reconnects by itself).
    let seq = say_keeping(&mut alice, &mut Got::default(), "during", "2").await;
    assert!(seq > first);
    let got = message(&mut bob).await;
    assert_eq!(
        (got["seq"].as_u64(), got["text"].as_str()),
        (Some(seq), Some("during"))
    );
    let pending = bob.sync().await;
    assert!(
        pending.iter().all(|f| f["type"] != "message"),
        "delivered once: {pending:?}"
    );
    a.shutdown().await;
    b.shutdown().await;
}

/// A name online on one node cannot be taken on another: two nodes racing to register the same name,
/// 100 times — exactly one wins each time; and once its user leaves, the name is free everywhere.
#[tokio::test]
async fn two_nodes_racing_for_a_name_one_wins_every_time() {
    let (_nats, _dir, a, b) = two_nodes().await;
    for i in 0..100 {
        let name = format!("racer{i}");
        let (mut on_a, mut on_b) = (Client::connect(a.addr).await, Client::connect(b.addr).await);
        let hello = json!({"type":"hello","name":name,"version":1});
        tokio::join!(on_a.send(hello.clone()), on_b.send(hello));
        let (x, y) = tokio::join!(on_a.recv(), on_b.recv());
        let won = [&x, &y].iter().filter(|f| f["type"] == "welcome").count();
        let lost: Vec<&Value> = [&x, &y]
            .into_iter()
            .filter(|f| f["type"] == "error")
            .collect();
        assert_eq!(won, 1, "round {i}: {x} / {y}");
        assert_eq!(lost.len(), 1, "round {i}: {x} / {y}");
        assert_eq!(lost[0]["code"], "name_taken", "round {i}");
    }
    // Released when its user leaves: the name can be taken on the other node.
    let mut one = a.join("leaving").await;
    let mut other = Client::connect(b.addr).await;
    other
        .send(json!({"type":"hello","name":"leaving","version":1}))
        .await;
    assert_eq!(other.recv().await["code"], "name_taken");
    one.send(json!({"type":"exit"})).await;
    while one.recv_line().await.is_some() {}
    join_when_free(&b, "leaving").await;
    a.shutdown().await;
    b.shutdown().await;
}

/// The answer to a `say`: its ack or an error (skipping anything else). While the stream elects a new
/// leader it may take seconds.
async fn answer(c: &mut Client) -> Value {
    loop {
        let line = c.recv_line_within(Duration::from_secs(30)).await;
        let f: Value = serde_json::from_str(&line.expect("the connection open")).unwrap();
        if f["type"] == "ack" || f["type"] == "error" {
            return f;
        }
    }
}

/// A TCP relay between a node and its NATS server that can lose what the server sends (as a connection
/// that dies with bytes in flight does) and cut its connections (the node's NATS client reconnects
/// through it).
struct Tap {
    url: String,
    /// While set, what the server sends is kept here instead of passed on.
    lost: std::sync::Arc<std::sync::Mutex<Option<Vec<u8>>>>,
    cut: tokio::sync::watch::Sender<u64>,
}

impl Tap {
    async fn start(upstream: &str) -> Self {
        let upstream = upstream.trim_start_matches("nats://").to_owned();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("nats://{}", listener.local_addr().unwrap());
        let lost = std::sync::Arc::new(std::sync::Mutex::new(None::<Vec<u8>>));
        let (cut, cuts) = tokio::sync::watch::channel(0u64);
        let relay_lost = lost.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = tokio::net::TcpStream::connect(&upstream).await else {
                    continue; // the NATS server is down: so is the connection through the tap
                };
                let (lost, mut cuts) = (relay_lost.clone(), cuts.clone());
                cuts.borrow_and_update(); // cut only by the cuts to come
                tokio::spawn(async move {
                    use tokio::io::{AsyncReadExt, AsyncWriteExt};
                    let (mut from_client, mut to_client) = client.into_split();
                    let (mut from_server, mut to_server) = server.into_split();
                    let up = tokio::io::copy(&mut from_client, &mut to_server);
                    let down = async {
                        let mut buf = vec![0u8; 16 * 1024];
                        loop {
                            let n = from_server.read(&mut buf).await?;
                            if n == 0 {
                                return Ok::<_, std::io::Error>(());
                            }
                            let kept = match lost.lock().unwrap().as_mut() {
                                Some(lost) => {
                                    lost.extend_from_slice(&buf[..n]);
                                    true
                                }
                                None => false,
                            };
                            if !kept {
                                to_client.write_all(&buf[..n]).await?;
                            }
                        }
                    };
                    tokio::select! {
                        _ = up => {}
                        _ = down => {}
                        _ = cuts.changed() => {}
                    }
                });
            }
        });
        Self { url, lost, cut }
    }

    /// From now on, what the server sends is lost.
    fn lose(&self) {
        *self.lost.lock().unwrap() = Some(Vec::new());
    }

    /// Whether what was lost so far contains `text`.
    fn lost(&self, text: &str) -> bool {
        let lost = self.lost.lock().unwrap();
        lost.as_ref()
            .is_some_and(|l| l.windows(text.len()).any(|w| w == text.as_bytes()))
    }

    /// Closes every connection through the tap and passes everything on again.
    fn cut(&self) {
        *self.lost.lock().unwrap() = None;
        self.cut.send_modify(|n| *n += 1);
    }
}

/// A delivery the stream sent a node that never arrived (its NATS connection died with it in flight)
/// is noticed by the node's follower from the stream's heartbeats, which name the last delivery sent,
/// and read again — even when nothing more is said after it (before, the node waited for the next
/// message to notice the gap, and a sender on that node waited for its ack as long).
#[tokio::test]
async fn a_delivery_lost_on_the_way_to_a_node_is_read_again() {
    let nats = Nats::start();
    let dir = tempfile::tempdir().unwrap();
    let tap = Tap::start(&nats.url).await;
    let a = TestServer::start_with(Config {
        db: DbPath::File(dir.path().join("a.db")),
        cluster: Some(ClusterConfig {
            urls: vec![tap.url.clone()],
            stream: "natter".into(),
        }),
        ..natter_server::testing::config()
    })
    .await;
    let b = node(&nats, dir.path(), "b").await;
    let mut alice = a.join("alice").await;
    let mut bob = b.join("bob").await;
    let seq = bob.say("through the tap", "1").await["seq"]
        .as_u64()
        .unwrap();
    assert_eq!(message(&mut alice).await["seq"].as_u64(), Some(seq));

    tap.lose();
    let seq = bob.say("lost on the way", "2").await["seq"]
        .as_u64()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !tap.lost("lost on the way") {
        assert!(
            Instant::now() < deadline,
            "the stream never sent it to node a"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tap.cut();
    // Nothing more is said: node a must find out by itself.
    let got = message(&mut alice).await;
    assert_eq!(
        (got["seq"].as_u64(), got["text"].as_str()),
        (Some(seq), Some("lost on the way"))
    );
    a.shutdown().await;
    b.shutdown().await;
}

/// Signs `name` in on a node of a NATS cluster that has just started: patiently, since its servers may
/// still be electing the streams' leaders (a node waits for the names stream's first heartbeat, but a
/// sign-in also needs the message stream), which takes longer on a loaded machine.
async fn join_settling(node: &TestServer, name: &str) -> Client {
    let mut c = Client::connect(node.addr).await;
    c.send(json!({"type":"hello","name":name,"version":1}))
        .await;
    let welcome = c.recv_line_within(Duration::from_secs(60)).await.unwrap();
    assert!(welcome.contains("welcome"), "{welcome}");
    c.sync().await;
    c
}

/// Three NATS servers, the stream replicated on all three, two natter nodes: SIGKILL one NATS server in
/// the middle of a steady conversation — publishing goes on (a send that failed meanwhile is retried with
/// its id), every acked message reaches the other node's user exactly once and in seq order; the server
/// comes back and the conversation goes on.
#[tokio::test]
async fn losing_one_nats_server_of_three_loses_no_acked_message() {
    let mut nats = natter_server::testing::NatsCluster::start();
    let dir = tempfile::tempdir().unwrap();
    let node = |name: &str| {
        let config = Config {
            db: DbPath::File(dir.path().join(format!("{name}.db"))),
            cluster: Some(ClusterConfig {
                urls: nats.urls(),
                stream: "natter".into(),
            }),
            ..natter_server::testing::config()
        };
        TestServer::start_with(config)
    };
    let a = node("a").await;
    let b = node("b").await;
    let mut alice = join_settling(&a, "alice").await;
    let mut bob = join_settling(&b, "bob").await;
    let mut acked = Vec::new();
    for i in 0..60 {
        if i == 20 {
            nats.kill(0);
        }
        if i == 40 {
            nats.restart(0);
        }
        let text = format!("m{i}");
        acked.push((
            say_keeping(&mut alice, &mut Got::default(), &text, &i.to_string()).await,
            text,
        ));
    }
    let mut got = Vec::new();
    while got.len() < acked.len() {
        let m = message(&mut bob).await;
        got.push((
            m["seq"].as_u64().unwrap(),
            m["text"].as_str().unwrap().to_owned(),
        ));
    }
    assert_eq!(got, acked, "every acked message, once, in seq order");
    let pending = bob.sync().await;
    assert!(
        pending.iter().all(|f| f["type"] != "message"),
        "{pending:?}"
    );
    // The restarted server catches up: both other replicas of the stream are current again, and the
    // stream holds every message.
    let config = ClusterConfig {
        urls: nats.urls(),
        stream: "natter".into(),
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let status = natter_server::cluster::status(&config).await.unwrap();
        let current = status.replicas.iter().filter(|(_, c, _)| *c).count();
        if status.replicas.len() == 2 && current == 2 {
            assert!(status.last_seq >= acked.last().unwrap().0, "{status:?}");
            break;
        }
        assert!(Instant::now() < deadline, "not caught up: {status:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    a.shutdown().await;
    b.shutdown().await;
}

/// Owned names are the cluster's: a name claimed on one node is owned on every node (a guest, or
/// another key, is refused on the other node and sees no private byte); whispers wait for its owner
/// whichever node they were sent through; the owner comes back through the other node, proves the
/// name there as on the first, and finds the whisper and the rooms they had joined.
#[tokio::test]
async fn owned_names_and_memberships_are_the_clusters() {
    let (_nats, _dir, a, b) = two_nodes().await;
    let mut alice = b.join("alice").await;

    let mut bob = a.connect().await;
    bob.hello_owned("bob", 2).await;
    bob.send(json!({"type":"join","room":"rust"})).await;
    bob.sync().await;
    bob.say("claimed", "1").await;
    // Node b has read the stream up to bob's message: his claim and join came before it.
    assert_eq!(message(&mut alice).await["text"], "claimed");
    drop(bob);

    // Once bob is offline (the cluster has freed his name), a guest taking it on node b is refused.
    let deadline = Instant::now() + Duration::from_secs(5);
    let refused = loop {
        let mut guest = b.connect().await;
        guest
            .send(json!({"type":"hello","name":"BOB","version":1}))
            .await;
        let f = guest.recv().await;
        if f["code"] != "name_taken" {
            break f;
        }
        assert!(Instant::now() < deadline, "bob was not freed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(refused["code"], "name_owned", "{refused}");

    alice
        .send(json!({"type":"whisper","to":"bob","text":"my password is hunter2","id":"w"}))
        .await;
    let ack = answer(&mut alice).await;
    assert_eq!(
        ack["type"], "ack",
        "a whisper to an owner who is away waits: {ack}"
    );

    let mut other_key = b.connect().await;
    other_key
        .prove_hello(json!({"type":"hello","name":"bob","version":1}), "bob", 9)
        .await;
    let refused = other_key.expect("error").await;
    assert_eq!(refused["code"], "name_owned", "{refused}");
    let rest = other_key.sync().await;
    assert!(!format!("{rest:?}").contains("hunter2"), "{rest:?}");

    let mut bob = b.connect().await;
    bob.prove_hello(json!({"type":"hello","name":"bob","version":1}), "bob", 2)
        .await;
    let frames = bob.sync().await;
    assert_eq!(frames[0]["type"], "welcome", "{frames:?}");
    assert_eq!(frames[0]["owner"], true, "{frames:?}");
    let rooms = frames[0]["rooms"].to_string();
    assert!(rooms.contains("rust"), "bob's rooms came with him: {rooms}");
    let whispers: Vec<_> = frames
        .iter()
        .filter(|f| f["type"] == "history" && f.get("room").is_none())
        .flat_map(|f| f["messages"].as_array().unwrap().clone())
        .map(|m| m["text"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(whispers, ["my password is hunter2"], "{frames:?}");
    a.shutdown().await;
    b.shutdown().await;
}

/// `who` for `room`, asked until the names are `want` (another node's moves reach this one through
/// the cluster, within moments), for at most 5 seconds.
async fn who_until(c: &mut Client, room: &str, want: &[&str]) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        c.send(json!({"type":"who","room":room})).await;
        let users = loop {
            let f = c.recv().await;
            if f["type"] == "users" {
                break f;
            }
        };
        if users["names"] == json!(want) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "who {room}: {users}, not {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The next `joined` or `left` frame for `room` (skipping anything else).
async fn presence_in(c: &mut Client, room: &str) -> Value {
    loop {
        let f = c.recv().await;
        if (f["type"] == "joined" || f["type"] == "left") && f["room"] == room {
            return f;
        }
    }
}

/// A room's members are the cluster's: a joiner on one node is told of members on the other, `who`
/// lists everyone, and entries and departures on one node are announced on the other, with their
/// reason.
#[tokio::test]
async fn a_rooms_members_are_the_same_on_every_node() {
    let (_nats, _dir, a, b) = two_nodes().await;
    let mut alice = a.join("alice").await;
    alice.send(json!({"type":"join","room":"rust"})).await;
    alice.sync().await;
    let mut bob = b.join("bob").await;
    who_until(&mut bob, "rust", &["alice"]).await;
    bob.send(json!({"type":"join","room":"rust"})).await;
    let users = loop {
        let f = bob.recv().await;
        if f["type"] == "users" {
            break f;
        }
    };
    assert_eq!(users["names"], json!(["alice", "bob"]), "{users}");
    let joined = presence_in(&mut alice, "rust").await;
    assert_eq!(
        (joined["type"].as_str(), joined["name"].as_str()),
        (Some("joined"), Some("bob"))
    );
    assert_eq!(joined["room"], "rust");

    let mut carol = a.join("carol").await;
    carol.send(json!({"type":"join","room":"rust"})).await;
    carol.sync().await;
    let f = presence_in(&mut bob, "rust").await;
    assert_eq!(
        (f["type"].as_str(), f["name"].as_str()),
        (Some("joined"), Some("carol"))
    );
    who_until(&mut bob, "rust", &["alice", "bob", "carol"]).await;
    carol
        .send(json!({"type":"leave","room":"rust","text":"bye"}))
        .await;
    let f = presence_in(&mut bob, "rust").await;
    assert_eq!(
        (f["type"].as_str(), f["name"].as_str(), f["reason"].as_str()),
        (Some("left"), Some("carol"), Some("leave"))
    );
    drop(alice);
    let f = presence_in(&mut bob, "rust").await;
    assert_eq!(
        (f["type"].as_str(), f["name"].as_str(), f["reason"].as_str()),
        (Some("left"), Some("alice"), Some("disconnect"))
    );
    who_until(&mut bob, "rust", &["bob"]).await;
    a.shutdown().await;
    b.shutdown().await;
}

/// Look-alikes are checked across nodes: while `alice` is signed in on one node, `ALICE` (the same name),
/// `aIice` (a capital I) and `a1ice` (a digit one) are taken on the other; a whisper to a look-alike does
/// not reach her.
#[tokio::test]
async fn a_look_alike_of_a_name_on_another_node_is_taken() {
    let (_nats, _dir, a, b) = two_nodes().await;
    let mut alice = a.join("alice").await;
    for look_alike in ["ALICE", "aIice", "a1ice"] {
        let mut c = b.connect().await;
        c.send(json!({"type":"hello","name":look_alike,"version":1}))
            .await;
        let f = c.recv().await;
        assert_eq!(f["code"], "name_taken", "{look_alike}: {f}");
    }
    let mut bob = b.join("bob").await;
    bob.send(json!({"type":"whisper","to":"aIice","text":"hi","id":"w"}))
        .await;
    let f = answer(&mut bob).await;
    assert_eq!(f["code"], "no_such_user", "{f}");
    bob.send(json!({"type":"whisper","to":"alice","text":"hi","id":"x"}))
        .await;
    assert_eq!(answer(&mut bob).await["type"], "ack");
    assert_eq!(message(&mut alice).await["text"], "hi");
    a.shutdown().await;
    b.shutdown().await;
}

/// Moderation crosses nodes: an operator on one node bans a member who is on the other; that member
/// gets the event and leaves the room (reason `banned`), everyone sees them go, the membership is gone
/// on both nodes, and they cannot come back through their own node either.
#[tokio::test]
async fn a_ban_on_one_node_takes_the_member_out_on_another() {
    let (_nats, _dir, a, b) = two_nodes().await;
    let mut alice = a.join("alice").await;
    alice.send(json!({"type":"join","room":"rust"})).await;
    alice.sync().await; // alice made the room: its operator
    let mut bob = b.join("bob").await;
    who_until(&mut bob, "rust", &["alice"]).await;
    bob.send(json!({"type":"join","room":"rust"})).await;
    bob.sync().await;
    who_until(&mut alice, "rust", &["alice", "bob"]).await;

    alice
        .send(json!({"type":"moderate","room":"rust","action":"ban","name":"bob","text":"spam"}))
        .await;
    // alice's ack and bob's departure (which comes from his node) may reach her in either order.
    let (mut acked, mut seen) = (false, None);
    while !acked || seen.is_none() {
        let f = alice.recv().await;
        match f["type"].as_str() {
            Some("ack") => acked = true,
            Some("error") => panic!("refused: {f}"),
            Some("left") if f["room"] == "rust" => seen = Some(f),
            _ => {}
        }
    }
    let seen = seen.unwrap();
    assert_eq!(
        (seen["name"].as_str(), seen["reason"].as_str()),
        (Some("bob"), Some("banned"))
    );
    let event = message(&mut bob).await;
    assert_eq!(event["event"]["kind"], "ban", "{event}");
    let left = presence_in(&mut bob, "rust").await;
    assert_eq!(
        (
            left["type"].as_str(),
            left["name"].as_str(),
            left["reason"].as_str()
        ),
        (Some("left"), Some("bob"), Some("banned")),
        "{left}"
    );
    assert_eq!(left["text"], "spam");
    who_until(&mut alice, "rust", &["alice"]).await;
    bob.send(json!({"type":"join","room":"rust"})).await;
    let refused = loop {
        let f = bob.recv().await;
        if f["type"] == "error" {
            break f;
        }
    };
    assert_eq!(refused["code"], "banned", "{refused}");
    a.shutdown().await;
    b.shutdown().await;
}

/// What a client of the harness has been sent: every room message, by seq (live or replayed).
#[derive(Default)]
struct Got(std::collections::BTreeMap<u64, Vec<String>>);

impl Got {
    fn take(&mut self, f: &Value) {
        let mut add = |m: &Value| {
            if let (Some(seq), Some(text)) = (m["seq"].as_u64(), m["text"].as_str()) {
                self.0.entry(seq).or_default().push(text.to_owned());
            }
        };
        match f["type"].as_str() {
            Some("message") => add(f),
            Some("history") if f["room"] == "lobby" => {
                f["messages"].as_array().unwrap().iter().for_each(add)
            }
            _ => {}
        }
    }

    fn last(&self) -> u64 {
        self.0.keys().next_back().copied().unwrap_or(0)
    }
}

/// How long a send may wait for its answer through faults: a follower that lost its NATS server or a
/// delivery notices within seconds and reads again, and a stream's leader election takes seconds more.
const ANSWER: Duration = Duration::from_secs(30);

/// Says `text` with `id` until it is acked — a `server_error` is resent with the same id, as natter's
/// client resends what was refused — keeping every message that arrives meanwhile; returns the seq.
/// Every send is answered (an ack or an error) within [`ANSWER`]: a node never leaves one unanswered.
async fn say_keeping(c: &mut Client, got: &mut Got, text: &str, id: &str) -> u64 {
    // A stream whose leader died refuses sends for several seconds (its servers elect another).
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        c.send(json!({"type":"say","text":text,"id":id})).await;
        let sent = Instant::now();
        loop {
            let line = tokio::time::timeout(
                ANSWER.saturating_sub(sent.elapsed()),
                c.recv_line_within(ANSWER),
            )
            .await
            .unwrap_or_else(|_| panic!("{id}: neither an ack nor an error within {ANSWER:?}"));
            let f: Value = serde_json::from_str(&line.expect("the connection open")).unwrap();
            got.take(&f);
            match f["type"].as_str() {
                Some("ack") if f["id"] == id => {
                    if sent.elapsed() > Duration::from_secs(2) {
                        eprintln!("{id} acked after {:?}", sent.elapsed());
                    }
                    return f["seq"].as_u64().unwrap();
                }
                Some("error") if f["id"] == id => {
                    assert_eq!(f["code"], "server_error", "{f}");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    break;
                }
                _ => {}
            }
        }
    }
    panic!("{id} was not acked within a minute");
}

/// The harness: 3 NATS servers (the stream on all three) and 3 nodes, a client on each taking
/// turns to send, with ids. Faults on the way: a NATS server killed, later restarted; a node stopped,
/// its client moving to another node and resuming from the last seq it had. At the end every client has
/// every acked message exactly once, at its seq, and nothing else (no gap, no extra).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_on_three_nats_servers_lose_nothing_through_faults() {
    const ROUNDS: usize = 90;
    // What the nodes log, shown if this fails.
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter("natter_server=debug,async_nats=info")
        .try_init();
    let mut nats = natter_server::testing::NatsCluster::start();
    let dir = tempfile::tempdir().unwrap();
    let urls = nats.urls();
    let node = |name: &str| {
        TestServer::start_with(Config {
            db: DbPath::File(dir.path().join(format!("{name}.db"))),
            cluster: Some(ClusterConfig {
                urls: urls.clone(),
                stream: "natter".into(),
            }),
            ..natter_server::testing::config()
        })
    };
    let nodes = [node("a").await, node("b").await, node("c").await];
    let names = ["alice", "bob", "carol"];
    let mut clients = Vec::new();
    for (node, name) in nodes.iter().zip(names) {
        clients.push(join_settling(node, name).await);
    }
    let mut got: [Got; 3] = Default::default();
    let mut acked = std::collections::BTreeMap::new();
    let [a, b, c] = nodes;
    let mut c = Some(c);
    for i in 0..ROUNDS {
        match i {
            20 => nats.kill(1),
            40 => nats.restart(1),
            60 => {
                // Carol's node stops; she comes back through bob's node, resuming after what she had.
                c.take().unwrap().shutdown().await;
                let resume = got[2].last();
                let deadline = Instant::now() + Duration::from_secs(15);
                clients[2] = loop {
                    let mut carol = Client::connect(b.addr).await;
                    carol
                        .send(json!({"type":"hello","name":"carol","version":1,"resume_after":resume}))
                        .await;
                    let f = carol.recv().await;
                    if f["type"] == "welcome" {
                        break carol;
                    }
                    assert_eq!(f["code"], "name_taken", "{f}");
                    assert!(Instant::now() < deadline, "carol was not freed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                };
            }
            _ => {}
        }
        let who = i % 3;
        let text = format!("{} {i}", names[who]);
        let seq = say_keeping(&mut clients[who], &mut got[who], &text, &i.to_string()).await;
        assert!(acked.insert(seq, text).is_none(), "one seq, one message");
    }
    // Everyone gets everything (their own messages came back as acks): wait until they have it all.
    for (who, client) in clients.iter_mut().enumerate() {
        let want: std::collections::BTreeMap<u64, Vec<String>> = acked
            .iter()
            .filter(|(_, t)| !t.starts_with(names[who]))
            .map(|(s, t)| (*s, vec![t.clone()]))
            .collect();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let mine: std::collections::BTreeMap<u64, Vec<String>> = got[who]
                .0
                .iter()
                .filter(|(_, t)| !t[0].starts_with(names[who]))
                .map(|(s, t)| (*s, t.clone()))
                .collect();
            if mine.len() >= want.len() {
                assert_eq!(
                    mine, want,
                    "{}: every acked message once, nothing else",
                    names[who]
                );
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{} has {} of {}",
                names[who],
                mine.len(),
                want.len()
            );
            let line = client.recv_line_within(Duration::from_secs(20)).await;
            got[who].take(&serde_json::from_str(&line.expect("open")).unwrap());
        }
    }
    a.shutdown().await;
    b.shutdown().await;
}
