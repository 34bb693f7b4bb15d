//! The client library across dropped connections: reconnect, resume, resend — nothing lost, nothing twice.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{Proxy, TestServer};
use natter_client::chat::{Backoff, Chat, ChatEvent, ChatOptions};
use natter_proto::frame::Message;
use natter_proto::ServerFrame;
use natter_server::store::DbPath;
use natter_server::Config;

/// Fast reconnects for tests.
fn options(server: std::net::SocketAddr, name: &str) -> ChatOptions {
    ChatOptions {
        backoff: Backoff {
            initial: Duration::from_millis(20),
            max: Duration::from_millis(200),
            attempts: Some(200),
        },
        ..ChatOptions::new(server.to_string(), name)
    }
}

/// What one client ended up showing: every message (its own once acknowledged) by seq.
#[derive(Default)]
struct Transcript {
    by_seq: BTreeMap<u64, (String, String)>,
    /// Seqs of others' messages in arrival order.
    arrivals: Vec<u64>,
    reconnects: usize,
}

impl Transcript {
    fn add(&mut self, seq: u64, from: &str, text: &str) {
        let previous = self.by_seq.insert(seq, (from.to_owned(), text.to_owned()));
        assert!(previous.is_none(), "seq {seq} shown twice");
    }

    /// Applies one event; returns false when the session closed.
    fn apply(&mut self, me: &str, event: ChatEvent) -> bool {
        match event {
            ChatEvent::Frame(ServerFrame::Message(m)) => {
                let Message {
                    seq, from, text, ..
                } = *m;
                self.arrivals.push(seq);
                self.add(seq, &from, &text);
            }
            ChatEvent::Sent { message, seq, .. } => self.add(seq, me, &message.text),
            ChatEvent::Refused {
                message, reason, ..
            } => panic!("{me}: {:?} refused: {reason}", message.text),
            ChatEvent::Reconnected { .. } => self.reconnects += 1,
            ChatEvent::Closed { why, unsent } => {
                panic!("{me}: closed ({why:?}) with {} unsent", unsent.len())
            }
            _ => {}
        }
        true
    }
}

/// Runs a client that sends `count` messages and reads until it has `expect_total` messages in its
/// transcript (its own included).
/// How a chatter behaves.
struct Plan {
    /// Messages to send.
    count: usize,
    /// Bytes of padding per message.
    padding: usize,
    /// Messages (everyone's) to have seen before stopping.
    expect_total: usize,
    /// Wait for each message's ack before sending the next (a person typing), rather than firing all.
    one_at_a_time: bool,
}

async fn chatter(
    server: std::net::SocketAddr,
    name: String,
    plan: Plan,
    progress: Arc<AtomicUsize>,
    everyone_here: Arc<tokio::sync::Barrier>,
) -> (String, Transcript) {
    let Plan {
        count,
        padding,
        expect_total,
        one_at_a_time,
    } = plan;
    let pad = ".".repeat(padding);
    let mut chat = Chat::connect(options(server, &name)).await.unwrap();
    // Nobody talks before everyone is registered, so every transcript can be complete from live traffic.
    everyone_here.wait().await;
    let mut t = Transcript::default();
    let mut sent = 0;
    while t.by_seq.len() < expect_total {
        if sent < count {
            chat.say("lobby", &format!("{name} says {sent} 你好{pad}"))
                .await;
            sent += 1;
            if one_at_a_time {
                let mine = t.by_seq.values().filter(|(from, _)| *from == name).count();
                while t.by_seq.values().filter(|(from, _)| *from == name).count() == mine {
                    let event = chat.next().await;
                    t.apply(&name, event);
                }
            }
            // Drain what is ready without blocking, so sending and receiving interleave.
            while let Ok(event) = tokio::time::timeout(Duration::ZERO, chat.next()).await {
                t.apply(&name, event);
            }
        } else {
            let event = chat.next().await;
            t.apply(&name, event);
        }
        progress.store(t.by_seq.len(), Ordering::Relaxed);
    }
    chat.quit().await;
    (name, t)
}

fn file_db(dir: &tempfile::TempDir) -> Config {
    Config {
        db: DbPath::File(dir.path().join("h.db")),
        ..natter_server::testing::config()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_connections_leave_every_transcript_complete_identical_and_ordered() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(file_db(&dir)).await;
    let proxy = Proxy::start(server.addr, None).await;
    const EACH: usize = 150;
    const CLIENTS: usize = 4;
    let total = EACH * CLIENTS;
    let barrier = Arc::new(tokio::sync::Barrier::new(CLIENTS));
    let progress: Vec<Arc<AtomicUsize>> = (0..CLIENTS)
        .map(|_| Arc::new(AtomicUsize::new(0)))
        .collect();

    // Everyone is registered before anyone talks, so every transcript can be complete.
    let mut tasks = Vec::new();
    for (i, p) in progress.iter().enumerate() {
        // Three clients go through the flaky proxy, one connects directly.
        let via = if i < 3 { proxy.addr } else { server.addr };
        let plan = Plan {
            count: EACH,
            padding: 0,
            expect_total: total,
            one_at_a_time: false,
        };
        tasks.push(tokio::spawn(chatter(
            via,
            format!("user{i}"),
            plan,
            p.clone(),
            barrier.clone(),
        )));
    }
    // Cut every proxied connection, mid-frame where possible, as the conversation progresses.
    let watched = progress[3].clone();
    for step in 1..=6 {
        let target = step * total / 8;
        while watched.load(Ordering::Relaxed) < target {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        proxy.cut();
    }
    let mut transcripts = Vec::new();
    for t in tasks {
        transcripts.push(
            tokio::time::timeout(Duration::from_secs(60), t)
                .await
                .expect("finished")
                .unwrap(),
        );
    }
    let (first_name, first) = &transcripts[0];
    assert_eq!(first.by_seq.len(), total);
    let senders: HashSet<_> = first
        .by_seq
        .values()
        .map(|(from, _)| from.clone())
        .collect();
    assert_eq!(senders.len(), CLIENTS);
    for (name, t) in &transcripts {
        assert_eq!(t.by_seq, first.by_seq, "{name} and {first_name} disagree");
        assert!(
            t.arrivals.windows(2).all(|w| w[0] < w[1]),
            "{name} got messages out of seq order"
        );
    }
    assert!(
        transcripts[..3].iter().all(|(_, t)| t.reconnects > 0),
        "the proxied clients really reconnected"
    );
    assert_eq!(transcripts[3].1.reconnects, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_that_stalls_is_cut_reconnects_and_still_gets_everything() {
    let dir = tempfile::tempdir().unwrap();
    // Default limits (1 MiB outbox): the talkers, who read, are never cut; the stalled reader is.
    let server = TestServer::start_with(file_db(&dir)).await;
    // The slow client's proxy has a tiny upstream window and stops forwarding to it.
    let proxy = Proxy::start(server.addr, Some(4096)).await;
    const TALKERS: usize = 20;
    const EACH: usize = 80;
    let total = TALKERS * EACH;

    let mut slow = Chat::connect(options(proxy.addr, "slow")).await.unwrap();
    proxy.pause(true);

    let mut talkers = Vec::new();
    let barrier = Arc::new(tokio::sync::Barrier::new(TALKERS));
    let progress: Vec<Arc<AtomicUsize>> = (0..TALKERS)
        .map(|_| Arc::new(AtomicUsize::new(0)))
        .collect();
    for (i, p) in progress.iter().enumerate() {
        // 6 KiB messages: enough traffic to fill the kernel's buffers towards the stalled reader.
        let plan = Plan {
            count: EACH,
            padding: 6000,
            expect_total: total,
            one_at_a_time: true,
        };
        talkers.push(tokio::spawn(chatter(
            server.addr,
            format!("talker{i}"),
            plan,
            p.clone(),
            barrier.clone(),
        )));
    }
    let mut results = Vec::new();
    for t in talkers {
        match tokio::time::timeout(Duration::from_secs(15), t).await {
            Ok(r) => results.push(r.unwrap()),
            Err(_) => {
                let counts: Vec<usize> =
                    progress.iter().map(|p| p.load(Ordering::Relaxed)).collect();
                panic!("talkers stuck; messages each has of {total}: {counts:?}");
            }
        }
    }
    for (name, t) in &results {
        assert_eq!(t.by_seq.len(), total, "{name} got everything");
        assert_eq!(
            t.reconnects, 0,
            "{name} was never cut off: the slow reader hurt nobody else"
        );
    }

    // The slow reader wakes up: it was cut off meanwhile, reconnects, and resumes.
    proxy.pause(false);
    let mut t = Transcript::default();
    let mut saw_reconnect = false;
    while t.by_seq.len() < total {
        let event = tokio::time::timeout(Duration::from_secs(30), slow.next())
            .await
            .expect("slow catches up");
        if matches!(event, ChatEvent::Reconnected { .. }) {
            saw_reconnect = true;
        }
        t.apply("slow", event);
    }
    assert!(saw_reconnect, "the server cut the stalled reader off");
    assert_eq!(
        t.by_seq, results[0].1.by_seq,
        "the slow reader ends with the complete sequence"
    );
    assert!(t.arrivals.windows(2).all(|w| w[0] < w[1]));
}

#[tokio::test]
async fn a_send_that_can_never_be_delivered_is_reported_not_lost() {
    let server = TestServer::start_with(natter_server::testing::config()).await;
    let addr = server.addr;
    let mut chat = Chat::connect(ChatOptions {
        backoff: Backoff {
            initial: Duration::from_millis(10),
            max: Duration::from_millis(20),
            attempts: Some(3),
        },
        ..ChatOptions::new(addr.to_string(), "alice")
    })
    .await
    .unwrap();
    // Refused by the server: reported as such, with the reason.
    let id = chat.say("lobby", "bad \u{1b}[2J text").await;
    loop {
        match chat.next().await {
            ChatEvent::Refused { message, code, .. } => {
                assert_eq!(message.id, id);
                assert_eq!(code, natter_proto::ErrorCode::InvalidText);
                break;
            }
            ChatEvent::Frame(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    // The server goes away for good: the message waits, then is reported unsent when we give up.
    server.shutdown().await;
    let id = chat.say("lobby", "into the void").await;
    loop {
        match chat.next().await {
            ChatEvent::Closed { why, unsent } => {
                assert!(matches!(why, natter_client::chat::Closed::GaveUp(_)));
                assert_eq!(unsent.len(), 1);
                assert_eq!(
                    (unsent[0].id.as_str(), unsent[0].text.as_str()),
                    (id.as_str(), "into the void")
                );
                break;
            }
            ChatEvent::Frame(_) | ChatEvent::Reconnecting { .. } => {}
            other => panic!("unexpected {other:?}"),
        }
    }
}
