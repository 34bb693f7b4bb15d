//! History in SQLite: replay on hello and join, paging, resume, idempotent sends, restarts, retention.
//! Real SQLite files in temp dirs, real sockets.

mod common;

use common::{Client, Connect, TestServer};
use natter_server::store::{DbPath, Retention};
use natter_server::Config;
use serde_json::{json, Value};

fn file_config(dir: &tempfile::TempDir) -> Config {
    Config {
        db: DbPath::File(dir.path().join("history.db")),
        ..natter_server::testing::config()
    }
}

fn texts(frames: &[Value]) -> Vec<String> {
    frames
        .iter()
        .map(|m| m["text"].as_str().unwrap().to_owned())
        .collect()
}

/// Sends hello (optionally resuming) and returns every frame up to a ping barrier.
async fn hello_frames(c: &mut Client, name: &str, resume_after: Option<u64>) -> Vec<Value> {
    let mut hello = json!({"type":"hello","name":name,"version":1});
    if let Some(seq) = resume_after {
        hello["resume_after"] = json!(seq);
    }
    c.send(hello).await;
    c.sync().await
}

/// [`hello_frames`] as the owner of `name` (the key of `seed`).
async fn owned_hello_frames(c: &mut Client, name: &str, seed: u8) -> Vec<Value> {
    c.prove_hello(json!({"type":"hello","name":name,"version":1}), name, seed)
        .await;
    c.sync().await
}

#[tokio::test]
async fn history_and_seq_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(file_config(&dir)).await;
    let mut alice = server.join("alice").await;
    let mut last = 0;
    for i in 0..5 {
        last = alice
            .say(&format!("before restart {i} 你好"), &i.to_string())
            .await["seq"]
            .as_u64()
            .unwrap();
    }
    drop(alice);
    server.shutdown().await;

    let server = TestServer::start_with(file_config(&dir)).await;
    let mut bob = server.connect().await;
    let frames = hello_frames(&mut bob, "bob", None).await;
    assert_eq!(
        frames[0]["last_seq"], last,
        "welcome reports the last seq from before the restart"
    );
    let lobby = frames
        .iter()
        .find(|f| f["type"] == "history" && f["room"] == "lobby")
        .unwrap();
    let replayed = lobby["messages"].as_array().unwrap();
    assert_eq!(
        texts(replayed),
        (0..5)
            .map(|i| format!("before restart {i} 你好"))
            .collect::<Vec<_>>()
    );
    assert_eq!(replayed[4]["seq"], last);
    let ack = bob.say("after restart", "b1").await;
    assert_eq!(
        ack["seq"].as_u64().unwrap(),
        last + 1,
        "seq continues above the highest stored"
    );
}

#[tokio::test]
async fn hello_replays_recent_room_and_private_messages_up_to_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(Config {
        replay: 3,
        ..file_config(&dir)
    })
    .await;
    // Owners: only a proven owner gets private history (issue 12).
    let mut alice = server.connect().await;
    alice.hello_owned("alice", 1).await;
    let mut bob = server.connect().await;
    bob.hello_owned("bob", 2).await;
    alice.sync().await;
    for i in 0..5 {
        alice.say(&format!("m{i}"), &format!("a{i}")).await;
    }
    alice
        .send(json!({"type":"whisper","to":"bob","text":"secret","id":"w"}))
        .await;
    alice.expect("ack").await;
    bob.sync().await;
    bob.send(json!({"type":"exit"})).await;
    bob.expect("bye").await;

    let mut bob = server.connect().await;
    let frames = owned_hello_frames(&mut bob, "bob", 2).await;
    let lobby = frames
        .iter()
        .find(|f| f["type"] == "history" && f["room"] == "lobby")
        .unwrap();
    let lobby_texts = texts(lobby["messages"].as_array().unwrap());
    assert_eq!(
        lobby_texts,
        ["m2", "m3", "m4"],
        "the last 3 (--replay 3), oldest first"
    );
    let private = frames
        .iter()
        .find(|f| f["type"] == "history" && f.get("room").is_none())
        .unwrap();
    let pm = &private["messages"][0];
    assert_eq!(
        (pm["from"].as_str(), pm["to"].as_str(), pm["text"].as_str()),
        (Some("alice"), Some("bob"), Some("secret"))
    );
    // The sender sees her own private messages in her replay too.
    alice.sync().await;
    alice.send(json!({"type":"exit"})).await;
    alice.expect("bye").await;
    let mut alice = server.connect().await;
    let frames = owned_hello_frames(&mut alice, "alice", 1).await;
    let private = frames
        .iter()
        .find(|f| f["type"] == "history" && f.get("room").is_none())
        .unwrap();
    assert_eq!(private["messages"][0]["text"], "secret");
}

#[tokio::test]
async fn history_pages_backwards_and_caps_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(file_config(&dir)).await;
    let mut alice = server.join("alice").await;
    let mut seqs = Vec::new();
    for i in 0..600 {
        seqs.push(
            alice.say(&format!("n{i}"), &format!("p{i}")).await["seq"]
                .as_u64()
                .unwrap(),
        );
    }
    alice
        .send(json!({"type":"history","room":"lobby","before":seqs[100],"limit":10}))
        .await;
    let page = alice.expect("history").await;
    assert_eq!(page["room"], "lobby");
    assert_eq!(
        texts(page["messages"].as_array().unwrap()),
        (90..100).map(|i| format!("n{i}")).collect::<Vec<_>>()
    );

    alice
        .send(json!({"type":"history","room":"lobby","limit":100000}))
        .await;
    let page = alice.expect("history").await;
    let messages = page["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 500, "limit is capped at 500");
    assert_eq!(messages.last().unwrap()["seq"], *seqs.last().unwrap());

    alice
        .send(json!({"type":"history","room":"elsewhere"}))
        .await;
    assert_eq!(alice.expect("error").await["code"], "not_in_room");
}

#[tokio::test]
async fn a_joiner_sees_every_message_exactly_once_across_replay_and_live() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(Config {
        replay: 1000,
        ..file_config(&dir)
    })
    .await;
    let mut talker = server.join("talker").await;
    talker.send(json!({"type":"join","room":"busy"})).await;
    talker.sync().await;
    // The talker floods #busy while the joiner joins in the middle.
    let flood = tokio::spawn(async move {
        let mut seqs = Vec::new();
        for i in 0..400 {
            talker
                .send(
                    json!({"type":"say","room":"busy","text":format!("t{i}"),"id":format!("t{i}")}),
                )
                .await;
        }
        while seqs.len() < 400 {
            let f = talker.recv().await;
            if f["type"] == "ack" {
                seqs.push(f["seq"].as_u64().unwrap());
            }
        }
        (talker, seqs)
    });
    let mut joiner = server.join("joiner").await;
    joiner.send(json!({"type":"join","room":"busy"})).await;
    let (mut talker, sent) = flood.await.unwrap();
    talker.sync().await;
    // Everything the talker sent has been delivered; collect what the joiner saw.
    let mut seen = Vec::new();
    let mut replay_done = false;
    for f in joiner.sync().await {
        match f["type"].as_str().unwrap() {
            "history" => {
                assert!(!replay_done, "one replay");
                replay_done = true;
                assert!(seen.is_empty(), "the replay comes before any live message");
                seen.extend(
                    f["messages"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|m| m["seq"].as_u64().unwrap()),
                );
            }
            "message" => seen.push(f["seq"].as_u64().unwrap()),
            _ => {}
        }
    }
    assert!(replay_done);
    assert_eq!(
        seen, sent,
        "every message once, in seq order, none both replayed and live"
    );
}

#[tokio::test]
async fn resume_replays_exactly_what_was_missed_then_continues_live() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(file_config(&dir)).await;
    let mut alice = server.join("alice").await;
    let mut bob = server.join("bob").await;
    bob.send(json!({"type":"join","room":"rust"})).await;
    alice.send(json!({"type":"join","room":"rust"})).await;
    alice.sync().await;
    alice.say("seen by bob", "s0").await;
    let last_seen = bob
        .sync()
        .await
        .iter()
        .filter_map(|f| f["seq"].as_u64())
        .max()
        .unwrap();
    drop(bob); // Wi-Fi drops

    let mut missed = Vec::new();
    for i in 0..3 {
        missed.push(
            alice.say(&format!("lobby {i}"), &format!("l{i}")).await["seq"]
                .as_u64()
                .unwrap(),
        );
        alice
            .send(
                json!({"type":"say","room":"rust","text":format!("rust {i}"),"id":format!("r{i}")}),
            )
            .await;
        let ack = loop {
            let f = alice.recv().await;
            if f["type"] == "ack" {
                break f;
            }
        };
        missed.push(ack["seq"].as_u64().unwrap());
    }
    alice
        .send(json!({"type":"whisper","to":"carol","text":"not for bob","id":"x"}))
        .await;
    alice.expect("error").await; // carol is not here: nothing stored
    let mut carol = server.join("carol").await;
    carol.say("hi all", "c0").await; // from someone bob has never met
    alice.sync().await;

    let mut bob = server.connect().await;
    let frames = hello_frames(&mut bob, "bob", Some(last_seen)).await;
    assert_eq!(frames[0]["type"], "welcome");
    assert_eq!(
        frames[0]["rooms"],
        json!(["lobby", "rust"]),
        "bob is put back in his rooms"
    );
    assert!(
        !frames.iter().any(|f| f["type"] == "history"),
        "a resume replays messages, not history pages"
    );
    let replayed: Vec<&Value> = frames.iter().filter(|f| f["type"] == "message").collect();
    let seqs: Vec<u64> = replayed
        .iter()
        .map(|m| m["seq"].as_u64().unwrap())
        .collect();
    let carol_seq = replayed.last().unwrap()["seq"].as_u64().unwrap();
    let mut expected = missed.clone();
    expected.push(carol_seq);
    assert_eq!(seqs, expected, "every missed message, in seq order, once");
    assert_eq!(replayed.last().unwrap()["text"], "hi all");

    // Then live, with nothing repeated.
    alice.sync().await;
    alice.say("live again", "l9").await;
    let m = bob.expect("message").await;
    assert_eq!(m["text"], "live again");
    bob.expect_nothing().await;
}

#[tokio::test]
async fn resume_beyond_retained_history_reports_a_gap() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(file_config(&dir)).await;
    let mut alice = server.join("alice").await;
    for i in 0..20 {
        alice.say(&format!("old {i}"), &format!("o{i}")).await;
    }
    server.shutdown().await;
    // Restart keeping only the newest 5 messages.
    let server = TestServer::start_with(Config {
        retention: Retention {
            days: None,
            max_messages: Some(5),
            ..Default::default()
        },
        ..file_config(&dir)
    })
    .await;
    let mut bob = server.connect().await;
    let frames = hello_frames(&mut bob, "bob", Some(3)).await;
    let gap = frames
        .iter()
        .find(|f| f["type"] == "error")
        .expect("a history_gap error");
    assert_eq!(gap["code"], "history_gap");
    assert_eq!(gap["oldest"], 16);
    let replayed: Vec<u64> = frames
        .iter()
        .filter(|f| f["type"] == "message")
        .map(|m| m["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(
        replayed,
        (16..=20).collect::<Vec<_>>(),
        "what is left is still replayed"
    );
}

#[tokio::test]
async fn a_resent_id_is_acked_again_but_delivered_once() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(file_config(&dir)).await;
    let mut alice = server.join("alice").await;
    let mut bob = server.join("bob").await;
    alice.sync().await;
    let first = alice.say("only once", "same-id").await;
    let again = alice.say("only once", "same-id").await;
    assert_eq!(first, again, "the original ack, seq and ts");
    alice
        .send(json!({"type":"whisper","to":"bob","text":"pm once","id":"pm-id"}))
        .await;
    let w1 = alice.expect("ack").await;
    alice
        .send(json!({"type":"whisper","to":"bob","text":"pm once","id":"pm-id"}))
        .await;
    assert_eq!(alice.expect("ack").await, w1);
    let got = bob.sync().await;
    assert_eq!(texts(&got), ["only once", "pm once"]);

    // Also across a restart of the server.
    drop((alice, bob));
    server.shutdown().await;
    let server = TestServer::start_with(file_config(&dir)).await;
    let mut alice = server.join("alice").await;
    assert_eq!(alice.say("only once", "same-id").await, first);
    // Ids are per sender: bob may use the same one.
    let mut bob = server.join("bob").await;
    assert_ne!(bob.say("mine", "same-id").await["seq"], first["seq"]);
}

#[tokio::test]
async fn memory_mode_keeps_history_while_running() {
    let server = TestServer::start().await; // --db :memory:
    let mut alice = server.join("alice").await;
    alice.say("remember me", "1").await;
    let mut bob = server.connect().await;
    let frames = hello_frames(&mut bob, "bob", None).await;
    let lobby = frames
        .iter()
        .find(|f| f["type"] == "history" && f["room"] == "lobby")
        .unwrap();
    assert_eq!(
        texts(lobby["messages"].as_array().unwrap()),
        ["remember me"]
    );
}

#[tokio::test]
async fn a_full_history_store_fails_sends_clearly_and_the_server_stays_up() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(Config {
        retention: Retention {
            max_bytes: Some(160 * 1024),
            ..Default::default()
        },
        ..file_config(&dir)
    })
    .await;
    let mut alice = server.join("alice").await;
    let mut bob = server.join("bob").await;
    alice.sync().await;
    let text = "满".repeat(2700); // about 8 KB
    let mut acked = 0;
    let refusal = loop {
        alice
            .send(json!({"type":"say","text":text,"id":format!("f{acked}")}))
            .await;
        let f = alice.recv().await;
        match f["type"].as_str() {
            Some("ack") => acked += 1,
            Some("error") => break f,
            _ => panic!("unexpected {f}"),
        }
        assert!(acked < 100, "the store never filled up");
    };
    assert_eq!(refusal["code"], "server_error");
    assert_eq!(
        refusal["id"],
        format!("f{acked}"),
        "the error names the message that was not stored"
    );
    // Exactly the acknowledged messages reached bob; the refused one did not.
    let got = bob.sync().await;
    assert_eq!(got.iter().filter(|f| f["type"] == "message").count(), acked);
    // The server is up: small things still work, and a later send gets a clear answer too.
    alice.send(json!({"type":"who"})).await;
    alice.expect("users").await;
    alice
        .send(json!({"type":"say","text":text,"id":"again"}))
        .await;
    assert_eq!(alice.expect("error").await["code"], "server_error");
}

/// The hub fans out per room (no global lock) and a joiner replays up to a watermark, dropping held
/// messages the replay covered. This races three floods in three rooms against someone joining them one
/// after another: for every room they must see each message exactly once, in order — including the
/// live messages of rooms they were already in while a later join's replay was being read.
#[tokio::test]
async fn joins_racing_floods_in_several_rooms_lose_and_duplicate_nothing() {
    const ROOMS: [&str; 3] = ["r1", "r2", "r3"];
    const MIN_EACH: usize = 200;
    const BURST: usize = 10;
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(Config {
        replay: 1000,
        ..file_config(&dir)
    })
    .await;
    let mut talkers = Vec::new();
    for room in ROOMS {
        let mut t = server.join(&format!("t{room}")).await;
        t.send(json!({"type":"join","room":room})).await;
        t.sync().await;
        talkers.push(t);
    }
    let mut joiner = server.join("joiner").await;
    // Each talker floods its room in bursts until the joiner has joined all three, so every join and
    // its replay happen while messages stream into every room.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let floods: Vec<_> = talkers
        .into_iter()
        .zip(ROOMS)
        .map(|(mut t, room)| {
            let stop = stop.clone();
            tokio::spawn(async move {
                let mut seqs = Vec::new();
                while seqs.len() < MIN_EACH || !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    for i in 0..BURST {
                        let n = seqs.len() + i;
                        let frame = json!({"type":"say","room":room,"text":format!("{room}-{n}"),"id":n.to_string()});
                        t.send(frame).await;
                    }
                    let mut acked = 0;
                    while acked < BURST {
                        let f = t.recv().await;
                        if f["type"] == "ack" {
                            seqs.push(f["seq"].as_u64().unwrap());
                            acked += 1;
                        }
                    }
                }
                (t, seqs)
            })
        })
        .collect();
    let mut seen: std::collections::HashMap<String, Vec<u64>> = Default::default();
    let record = |f: &Value, seen: &mut std::collections::HashMap<String, Vec<u64>>| match f["type"]
        .as_str()
        .unwrap()
    {
        "history" => {
            for m in f["messages"].as_array().unwrap() {
                let room = m["room"].as_str().unwrap().to_owned();
                seen.entry(room)
                    .or_default()
                    .push(m["seq"].as_u64().unwrap());
            }
        }
        "message" => {
            let room = f["room"].as_str().unwrap().to_owned();
            seen.entry(room)
                .or_default()
                .push(f["seq"].as_u64().unwrap());
        }
        _ => {}
    };
    for room in ROOMS {
        joiner.send(json!({"type":"join","room":room})).await;
        for f in joiner.sync().await {
            record(&f, &mut seen);
        }
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut sent = Vec::new();
    for flood in floods {
        let (mut t, seqs) = flood.await.unwrap();
        t.sync().await;
        sent.push(seqs);
    }
    for f in joiner.sync().await {
        record(&f, &mut seen);
    }
    for (room, seqs) in ROOMS.iter().zip(sent) {
        assert_eq!(
            seen.get(*room).map(Vec::as_slice).unwrap_or_default(),
            seqs,
            "#{room}: every message once, in seq order"
        );
    }
}

/// A database written by the release before schema migrations (tests/fixtures/schema-v0.db: alice and
/// 张三 in #lobby and #rust, six messages, one whisper) opens, is migrated, and keeps everything: rooms,
/// history, private messages, and seqs that continue where they stopped.
#[tokio::test]
async fn a_database_from_the_previous_release_is_migrated_and_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.db");
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/schema-v0.db"),
        &path,
    )
    .unwrap();
    let server = TestServer::start_with(file_config(&dir)).await;
    let mut alice = server.connect().await;
    let frames = hello_frames(&mut alice, "alice", None).await;
    assert_eq!(frames[0]["rooms"], json!(["lobby", "rust"]));
    assert_eq!(frames[0]["last_seq"], 6);
    let history = |room: Option<&str>| {
        let f = frames
            .iter()
            .find(|f| f["type"] == "history" && f.get("room").and_then(Value::as_str) == room)
            .unwrap_or_else(|| panic!("no history for {room:?}: {frames:?}"));
        texts(f["messages"].as_array().unwrap())
    };
    assert_eq!(
        history(Some("lobby")),
        ["hello lobby 0", "hello lobby 1", "hello lobby 2"]
    );
    assert_eq!(history(Some("rust")), ["in rust", "你好 rust"]);
    // Names were nobody's before accounts existed: the whisper stays stored but is shown to no one — not
    // to a guest, and not to whoever claims the name now (issue 12).
    assert_eq!(history(None), Vec::<String>::new());
    assert_eq!(alice.say("after the upgrade", "u1").await["seq"], 7);
    drop(alice);
    let mut claimer = server.connect().await;
    let frames = owned_hello_frames(&mut claimer, "张三", 3).await;
    let private = frames
        .iter()
        .find(|f| f["type"] == "history" && f.get("room").is_none())
        .unwrap();
    assert_eq!(private["messages"], json!([]), "{frames:?}");
    drop(claimer);
    server.shutdown().await;

    let conn = rusqlite::Connection::open(&path).unwrap();
    let version: u32 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, natter_server::store::SCHEMA_VERSION);
}

/// A database from a newer natter is refused with a clear error rather than misread.
#[tokio::test]
async fn a_database_from_a_newer_natter_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.db");
    rusqlite::Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", 999)
        .unwrap();
    let err = natter_server::store::open::<()>(DbPath::File(path), Retention::default())
        .err()
        .expect("refused");
    assert!(err.to_string().contains("newer"), "{err}");
}
