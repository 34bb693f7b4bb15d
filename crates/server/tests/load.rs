//! Many clients at once: nothing lost, nothing duplicated, per-sender order kept, seq increasing.

mod common;

use std::collections::{HashMap, HashSet};

use common::{Connect, TestServer};
use serde_json::json;

const CLIENTS: usize = 50;
const MESSAGES: usize = 100;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_clients_a_hundred_messages_each() {
    let server = TestServer::start().await;
    let mut clients = Vec::new();
    for i in 0..CLIENTS {
        clients.push(server.join(&format!("user{i}")).await);
    }
    // Everyone has seen everyone join before the flood starts.
    for c in &mut clients {
        c.sync().await;
    }

    let mut tasks = Vec::new();
    for (i, mut c) in clients.into_iter().enumerate() {
        tasks.push(tokio::spawn(async move {
            let me = format!("user{i}");
            for n in 0..MESSAGES {
                c.send(json!({"type":"say","text":format!("{me} #{n}"),"id":n.to_string()}))
                    .await;
            }
            // Read until we have every other client's messages and all our acks.
            let mut acks = 0;
            let mut from: HashMap<String, Vec<usize>> = HashMap::new();
            let mut seqs = Vec::new();
            // Per entry of `seqs`: an ack (true) or a message (false).
            let mut kinds = Vec::new();
            let mut received = 0;
            while acks < MESSAGES || received < (CLIENTS - 1) * MESSAGES {
                let f = c.recv().await;
                match f["type"].as_str().unwrap() {
                    "ack" => {
                        assert_eq!(f["id"], acks.to_string(), "acks come in send order");
                        acks += 1;
                        seqs.push(f["seq"].as_u64().unwrap());
                        kinds.push(true);
                    }
                    "message" => {
                        let sender = f["from"].as_str().unwrap().to_owned();
                        assert_ne!(sender, me, "no echo");
                        let text = f["text"].as_str().unwrap();
                        let (who, n) = text.split_once(" #").unwrap();
                        assert_eq!(who, sender);
                        from.entry(sender).or_default().push(n.parse().unwrap());
                        seqs.push(f["seq"].as_u64().unwrap());
                        kinds.push(false);
                        received += 1;
                    }
                    other => panic!("unexpected {other}: {f}"),
                }
            }
            assert_eq!(from.len(), CLIENTS - 1);
            for (sender, ns) in &from {
                assert_eq!(
                    ns,
                    &(0..MESSAGES).collect::<Vec<_>>(),
                    "from {sender}: lost, duplicated or reordered"
                );
            }
            // Messages arrive in seq order. An ack comes once every recipient has its message, so it may
            // follow others' messages stored in the same commit (higher seqs) — but never precede a message
            // with a lower seq.
            let messages: Vec<u64> = seqs
                .iter()
                .zip(&kinds)
                .filter(|(_, ack)| !**ack)
                .map(|(s, _)| *s)
                .collect();
            assert!(
                messages.windows(2).all(|w| w[0] < w[1]),
                "{me} saw message seqs go backwards"
            );
            for (i, (ack_seq, _)) in seqs
                .iter()
                .zip(&kinds)
                .enumerate()
                .filter(|(_, (_, ack))| **ack)
            {
                assert!(
                    seqs[i + 1..]
                        .iter()
                        .zip(&kinds[i + 1..])
                        .all(|(s, ack)| *ack || s > ack_seq),
                    "{me}: ack {ack_seq} came before a message with a lower seq"
                );
            }
            (seqs, c)
        }));
    }
    let mut all = HashSet::new();
    let mut clients = Vec::new();
    for t in tasks {
        let (seqs, c) = t.await.unwrap();
        all.extend(seqs);
        clients.push(c);
    }
    // Nothing extra arrives once the flood is over (clients stay connected until here).
    for c in &mut clients {
        c.expect_nothing().await;
    }
    assert_eq!(
        all.len(),
        CLIENTS * MESSAGES,
        "every message has its own seq"
    );
}
