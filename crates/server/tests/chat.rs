//! Protocol v1 end to end: real server on 127.0.0.1:0, raw JSON clients.

mod common;

use common::{Connect, TestServer};
use serde_json::json;

#[tokio::test]
async fn broadcast_reaches_everyone_else_and_the_sender_gets_an_ack() {
    let server = TestServer::start().await;
    let mut alice = server.join("alice").await;
    let mut bob = server.join("bob").await;
    let mut carol = server.join("carol").await;
    alice.sync().await;
    bob.sync().await;

    let ack = alice.say("hello everyone", "7").await;
    let seq = ack["seq"].as_u64().unwrap();
    assert!(ack["ts"].as_str().unwrap().ends_with('Z'));
    for other in [&mut bob, &mut carol] {
        let m = other.expect("message").await;
        assert_eq!(m["seq"], seq, "the ack carries the message's seq");
        assert_eq!(m["from"], "alice");
        assert_eq!(m["room"], "lobby");
        assert_eq!(m["text"], "hello everyone");
        assert_eq!(m["ts"], ack["ts"]);
        assert!(m.get("to").is_none());
    }
    alice.expect_nothing().await; // no echo of one's own message

    let ack2 = bob.say("second", "b1").await;
    assert!(ack2["seq"].as_u64().unwrap() > seq, "seq increases");
}

#[tokio::test]
async fn welcome_reports_name_rooms_and_last_seq() {
    let server = TestServer::start().await;
    let mut alice = server.join("alice").await;
    alice.say("one", "1").await;
    let ack = alice.say("two", "2").await;
    let mut bob = server.connect().await;
    bob.send(json!({"type":"hello","name":"bob","version":1}))
        .await;
    let w = bob.expect("welcome").await;
    assert_eq!(
        w,
        json!({"type":"welcome","name":"bob","version":1,"rooms":["lobby"],"last_seq":ack["seq"]})
    );
    let joined = bob.expect("joined").await;
    assert_eq!(
        (joined["room"].as_str(), joined["name"].as_str()),
        (Some("lobby"), Some("bob"))
    );
    let users = bob.expect("users").await;
    assert_eq!(users["names"], json!(["alice", "bob"]));
    let history = bob.expect("history").await;
    assert_eq!(history["room"], "lobby");
    let texts: Vec<_> = history["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].clone())
        .collect();
    assert_eq!(
        texts,
        [json!("one"), json!("two")],
        "the lobby's recent messages, oldest first"
    );
    assert_eq!(
        bob.expect("history").await,
        json!({"type":"history","messages":[]})
    );
    let j = alice.expect("joined").await;
    assert_eq!(j["name"], "bob");
}

#[tokio::test]
async fn chinese_emoji_and_multiline_text_arrive_byte_exact() {
    let server = TestServer::start().await;
    let mut zhang = server.join("张三").await;
    let mut li = server.join("李四").await;
    zhang.sync().await;
    let texts = [
        "你好，世界！",
        "emoji 🎉👍🏽🇨🇳 and 家族 👨‍👩‍👧",
        "line one\nline two\n\tindented 第三行",
        "quotes \" and \\ backslash and {\"json\":1}",
        &"长".repeat(2000), // 6000 bytes, well past the lab's 256-byte buffer
    ];
    for (i, text) in texts.iter().enumerate() {
        zhang.say(text, &i.to_string()).await;
        let m = li.expect("message").await;
        assert_eq!(m["text"].as_str().unwrap().as_bytes(), text.as_bytes());
        assert_eq!(m["from"], "张三");
    }
}

#[tokio::test]
async fn whisper_reaches_only_its_target() {
    let server = TestServer::start().await;
    let mut alice = server.join("alice").await;
    let mut bob = server.join("Bob").await;
    let mut carol = server.join("carol").await;
    alice.sync().await;
    bob.sync().await;

    alice
        .send(json!({"type":"whisper","to":"bob","text":"psst 秘密","id":"w1"}))
        .await;
    let ack = alice.expect("ack").await;
    assert_eq!(ack["id"], "w1");
    let m = bob.expect("message").await;
    assert_eq!(m["seq"], ack["seq"]);
    assert_eq!(m["from"], "alice");
    assert_eq!(m["to"], "Bob", "the target's name as registered");
    assert_eq!(m["text"], "psst 秘密");
    assert!(m.get("room").is_none(), "private messages have no room");
    carol.expect_nothing().await;
    alice.expect_nothing().await;

    alice
        .send(json!({"type":"whisper","to":"nobody","text":"hi","id":"w2"}))
        .await;
    let e = alice.expect("error").await;
    assert_eq!(
        (e["code"].as_str(), e["id"].as_str()),
        (Some("no_such_user"), Some("w2"))
    );
}

#[tokio::test]
async fn join_leave_who_and_rooms() {
    let server = TestServer::start().await;
    let mut alice = server.join("alice").await;
    let mut bob = server.join("bob").await;
    alice.sync().await;

    bob.send(json!({"type":"join","room":"rust"})).await;
    let j = bob.expect("joined").await;
    assert_eq!(
        (j["room"].as_str(), j["name"].as_str()),
        (Some("rust"), Some("bob"))
    );
    assert_eq!(bob.expect("users").await["names"], json!(["bob"]));
    assert_eq!(
        bob.expect("history").await,
        json!({"type":"history","room":"rust","messages":[]})
    );
    alice.expect_nothing().await; // not in #rust

    alice.send(json!({"type":"join","room":"#Rust"})).await; // same room: case and '#' ignored
    assert_eq!(alice.expect("joined").await["room"], "rust");
    assert_eq!(
        alice.expect("users").await["names"],
        json!(["alice", "bob"])
    );
    assert_eq!(alice.expect("history").await["room"], "rust");
    assert_eq!(bob.expect("joined").await["name"], "alice");

    alice.send(json!({"type":"who","room":"rust"})).await;
    assert_eq!(
        alice.expect("users").await,
        // bob brought the room to life: a guest's room has its creator as operator while it lives.
        json!({"type":"users","room":"rust","names":["alice","bob"],"ops":["bob"]})
    );
    alice.send(json!({"type":"who"})).await;
    assert_eq!(alice.expect("users").await["room"], "lobby");
    alice.send(json!({"type":"rooms"})).await;
    assert_eq!(
        alice.expect("rooms").await["rooms"],
        json!([{"name":"lobby","members":2},{"name":"rust","members":2}])
    );

    alice
        .send(json!({"type":"say","room":"rust","text":"in rust","id":"r"}))
        .await;
    alice.expect("ack").await;
    assert_eq!(bob.expect("message").await["room"], "rust");

    bob.send(json!({"type":"leave","room":"rust"})).await;
    for c in [&mut bob, &mut alice] {
        let l = c.expect("left").await;
        assert_eq!(
            (l["room"].as_str(), l["name"].as_str(), l["reason"].as_str()),
            (Some("rust"), Some("bob"), Some("leave"))
        );
    }
    bob.send(json!({"type":"say","room":"rust","text":"still here?","id":"x"}))
        .await;
    let e = bob.expect("error").await;
    assert_eq!(
        (e["code"].as_str(), e["id"].as_str()),
        (Some("not_in_room"), Some("x"))
    );
    alice.expect_nothing().await;

    alice.send(json!({"type":"leave","room":"rust"})).await;
    alice.expect("left").await;
    alice.send(json!({"type":"rooms"})).await;
    assert_eq!(
        alice.expect("rooms").await["rooms"],
        json!([{"name":"lobby","members":2}]),
        "empty rooms vanish"
    );
}

#[tokio::test]
async fn names_are_unique_ignoring_case_and_a_rejected_hello_can_be_retried() {
    let server = TestServer::start().await;
    let _alice = server.join("Alice").await;
    let mut c = server.connect().await;
    for (name, code) in [
        ("alice", "name_taken"),
        ("ALICE", "name_taken"),
        ("a b", "invalid_name"),
        ("", "invalid_name"),
        (&"x".repeat(33), "invalid_name"),
        ("evil\u{1b}[2J", "invalid_name"),
    ] {
        c.send(json!({"type":"hello","name":name,"version":1}))
            .await;
        let e = c.expect("error").await;
        assert_eq!(e["code"], code, "{name:?}");
        assert!(!e["message"].as_str().unwrap().is_empty());
    }
    let w = c.hello("王小明").await;
    assert_eq!(w["name"], "王小明");
}

#[tokio::test]
async fn every_error_code_leaves_the_connection_usable_and_reaches_nobody_else() {
    let server = TestServer::start_with(natter_server::Config {
        max_frame: 1024,
        ..natter_server::testing::config()
    })
    .await;
    let mut bob = server.join("bob").await;
    let mut c = server.connect().await;

    // Before hello.
    c.send(json!({"type":"say","text":"too early","id":"e1"}))
        .await;
    let e = c.expect("error").await;
    assert_eq!(
        (e["code"].as_str(), e["id"].as_str()),
        (Some("not_registered"), Some("e1"))
    );
    c.send(json!({"type":"hello","name":"bob"})).await;
    assert_eq!(c.expect("error").await["code"], "name_taken");
    c.send(json!({"type":"hello","name":"no spaces"})).await;
    assert_eq!(c.expect("error").await["code"], "invalid_name");
    c.send(json!({"type":"hello","name":"eve","version":99}))
        .await;
    assert_eq!(c.expect("error").await["code"], "unsupported_version");
    c.hello("eve").await;
    bob.sync().await;

    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"{not json\n".to_vec(), "bad_frame"),
        (b"[1,2,3]\n".to_vec(), "bad_frame"),
        (b"{\"text\":\"no type\"}\n".to_vec(), "bad_frame"),
        (b"{\"type\":\"say\"}\n".to_vec(), "bad_frame"),
        (
            b"{\"type\":\"say\",\"text\":\"\xff\xfe\"}\n".to_vec(),
            "bad_frame",
        ),
        (
            format!("{{\"type\":\"say\",\"text\":\"{}\"}}\n", "x".repeat(5000)).into_bytes(),
            "frame_too_large",
        ),
        (b"{\"type\":\"dance\"}\n".to_vec(), "unknown_type"),
        (
            b"{\"type\":\"hello\",\"name\":\"eve2\"}\n".to_vec(),
            "already_registered",
        ),
        (
            b"{\"type\":\"whisper\",\"to\":\"ghost\",\"text\":\"boo\"}\n".to_vec(),
            "no_such_user",
        ),
        (
            b"{\"type\":\"say\",\"room\":\"elsewhere\",\"text\":\"hi\"}\n".to_vec(),
            "not_in_room",
        ),
        (
            b"{\"type\":\"join\",\"room\":\"bad room\"}\n".to_vec(),
            "invalid_room",
        ),
        (
            b"{\"type\":\"say\",\"text\":\"\"}\n".to_vec(),
            "invalid_text",
        ),
        (
            b"{\"type\":\"say\",\"text\":\"\\u001b[2Jgotcha\"}\n".to_vec(),
            "invalid_text",
        ),
    ];
    for (raw, code) in cases {
        c.send_raw(&raw).await;
        let e = c.expect("error").await;
        assert_eq!(
            e["code"],
            code,
            "for {}",
            String::from_utf8_lossy(&raw[..raw.len().min(60)])
        );
        // Still usable: a real message goes through right after.
        let ack = c
            .say("still here", &format!("ok-{code}-{}", raw.len()))
            .await;
        assert!(ack["seq"].as_u64().unwrap() > 0);
        let m = bob.expect("message").await;
        assert_eq!(m["text"], "still here", "bob sees only good messages");
    }
    bob.expect_nothing().await;
}

#[tokio::test]
async fn oversized_frame_split_across_writes_is_skipped_to_its_newline() {
    let server = TestServer::start_with(natter_server::Config {
        max_frame: 100,
        ..natter_server::testing::config()
    })
    .await;
    let mut a = server.join("a").await;
    let mut b = server.join("b").await;
    a.sync().await;
    a.send_raw(b"{\"type\":\"say\",\"text\":\"").await;
    for _ in 0..50 {
        a.send_raw(&[b'x'; 1000]).await;
    }
    a.send_raw(b"\"}\n{\"type\":\"say\",\"text\":\"after\",\"id\":\"1\"}\n")
        .await;
    assert_eq!(a.expect("error").await["code"], "frame_too_large");
    a.expect("ack").await;
    assert_eq!(b.expect("message").await["text"], "after");
    b.expect_nothing().await;
}

#[tokio::test]
async fn glued_and_split_frames_work() {
    let server = TestServer::start().await;
    let mut a = server.join("a").await;
    let mut b = server.join("b").await;
    a.sync().await;
    // Two frames in one write, then one frame byte by byte, then CRLF.
    a.send_raw(b"{\"type\":\"say\",\"text\":\"one\",\"id\":\"1\"}\n{\"type\":\"say\",\"text\":\"two\",\"id\":\"2\"}\n").await;
    for byte in "{\"type\":\"say\",\"text\":\"三\",\"id\":\"3\"}\r\n".as_bytes() {
        a.send_raw(&[*byte]).await;
    }
    for want in ["one", "two", "三"] {
        assert_eq!(b.expect("message").await["text"], want);
    }
}

#[tokio::test]
async fn exit_is_confirmed_with_bye_then_closed_and_others_see_left() {
    let server = TestServer::start().await;
    let mut alice = server.join("alice").await;
    let mut bob = server.join("bob").await;
    alice.sync().await;
    alice.send(json!({"type":"exit"})).await;
    assert_eq!(
        alice.expect("bye").await,
        json!({"type":"bye","reason":"exit"})
    );
    alice.expect_closed().await;
    let l = bob.expect("left").await;
    assert_eq!(
        (l["name"].as_str(), l["room"].as_str(), l["reason"].as_str()),
        (Some("alice"), Some("lobby"), Some("exit"))
    );
    assert!(l["ts"].is_string());

    // The name is free again.
    server.join("alice").await;
}

#[tokio::test]
async fn an_abrupt_close_produces_left_with_reason_disconnect() {
    let server = TestServer::start().await;
    let alice = server.join("alice").await;
    let mut bob = server.join("bob").await;
    bob.send(json!({"type":"join","room":"rust"})).await;
    bob.sync().await;
    drop(alice);
    let l = bob.expect("left").await;
    assert_eq!(
        (l["name"].as_str(), l["reason"].as_str()),
        (Some("alice"), Some("disconnect"))
    );
    bob.expect_nothing().await;
}

#[tokio::test]
async fn exit_and_ping_work_before_hello() {
    let server = TestServer::start().await;
    let mut c = server.connect().await;
    c.send(json!({"type":"ping","id":"p"})).await;
    assert_eq!(c.expect("pong").await, json!({"type":"pong","id":"p"}));
    c.send(json!({"type":"exit"})).await;
    c.expect("bye").await;
    c.expect_closed().await;
}

#[tokio::test]
async fn shutdown_says_bye_to_everyone_and_returns() {
    let server = TestServer::start().await;
    let mut clients = Vec::new();
    for i in 0..10 {
        clients.push(server.join(&format!("u{i}")).await);
    }
    for c in &mut clients {
        c.sync().await;
    }
    let started = std::time::Instant::now();
    server.shutdown().await;
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
    for c in &mut clients {
        assert_eq!(
            c.expect("bye").await,
            json!({"type":"bye","reason":"shutdown"})
        );
        c.expect_closed().await;
    }
}

#[tokio::test]
async fn a_client_that_stops_reading_is_cut_off_as_too_slow_without_slowing_others() {
    let server = TestServer::start_with(natter_server::Config {
        max_outbox: 64 * 1024,
        ..natter_server::testing::config()
    })
    .await;
    let mut alice = server.join("alice").await;
    let mut bob = server.join("bob").await;
    let mut slow = common::Client::connect_small_window(server.addr).await;
    slow.hello("slow").await;
    alice.sync().await;
    bob.sync().await;
    // `slow` never reads again. Kernel buffers absorb some first, so keep talking until it is cut.
    let text = "x".repeat(8000);
    let mut cut = false;
    let mut sent = 0;
    for i in 0..2000 {
        alice
            .send(json!({"type":"say","text":text,"id":i.to_string()}))
            .await;
        sent += 1;
        loop {
            let f = alice.recv().await;
            match f["type"].as_str() {
                Some("ack") => break,
                Some("left") => {
                    assert_eq!(
                        (f["name"].as_str(), f["reason"].as_str()),
                        (Some("slow"), Some("too_slow"))
                    );
                    cut = true;
                }
                _ => panic!("unexpected {f}"),
            }
        }
        if cut {
            break;
        }
    }
    assert!(cut, "the slow reader was never cut off");
    // bob kept up throughout: every message reached him, and he saw slow leave.
    let mut messages = 0;
    let mut saw_left = false;
    for f in bob.sync().await {
        match f["type"].as_str() {
            Some("message") => messages += 1,
            Some("left") => saw_left = f["reason"] == "too_slow",
            _ => panic!("unexpected {f}"),
        }
    }
    assert_eq!(messages, sent);
    assert!(saw_left);
    // slow's connection is closed: its complete lines are messages or the too_slow notice; a frame the
    // cut interrupted may trail unterminated (a client's codec discards it).
    let all = slow.read_to_end().await;
    for line in all.split(|&b| b == b'\n').filter(|l| l.ends_with(b"}")) {
        let f: serde_json::Value = serde_json::from_slice(line).unwrap();
        assert!(f["type"] == "message" || f["code"] == "too_slow", "{f}");
    }
}

#[tokio::test]
async fn text_hygiene_and_normalised_names() {
    let server = TestServer::start_with(natter_server::Config {
        max_text: 100,
        ..natter_server::testing::config()
    })
    .await;
    let mut a = server.join("café").await; // precomposed é
    let mut b = server.join("b").await;
    a.sync().await;
    for (text, why) in [
        ("c1 \u{9b}31m control", "C1 control"),
        ("bell \u{7}", "C0 control"),
        ("carriage\rreturn", "CR"),
        ("del \u{7f}", "DEL"),
        (&*"x".repeat(101), "over --max-text"),
    ] {
        a.send(json!({"type":"say","text":text,"id":why})).await;
        let e = a.expect("error").await;
        assert_eq!(
            (e["code"].as_str(), e["id"].as_str()),
            (Some("invalid_text"), Some(why))
        );
    }
    a.say(&"y".repeat(100), "fits").await; // exactly at the limit
    assert_eq!(
        b.expect("message").await["text"].as_str().unwrap().len(),
        100
    );
    b.expect_nothing().await;

    // The same visible name, spelled with a combining accent, is the same name.
    let mut c = server.connect().await;
    c.send(json!({"type":"hello","name":"cafe\u{301}"})).await;
    assert_eq!(c.expect("error").await["code"], "name_taken");
    c.send(json!({"type":"hello","name":"CAFÉ"})).await;
    assert_eq!(c.expect("error").await["code"], "name_taken");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_connections_racing_for_one_name_exactly_one_wins_every_time() {
    let server = TestServer::start().await;
    for round in 0..100 {
        let name = format!("racer{round}");
        let mut clients = Vec::new();
        for _ in 0..10 {
            clients.push(server.connect().await);
        }
        // Everyone sends hello as close to simultaneously as the runtime allows.
        let hellos = clients.into_iter().map(|mut c| {
            let name = name.clone();
            tokio::spawn(async move {
                c.send(json!({"type":"hello","name":name})).await;
                let first = c.recv().await;
                (first["type"] == "welcome", first["code"] == "name_taken", c)
            })
        });
        let results: Vec<_> = futures::future::join_all(hellos)
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
        let winners = results.iter().filter(|r| r.0).count();
        let taken = results.iter().filter(|r| r.1).count();
        assert_eq!((winners, taken), (1, 9), "round {round}");
    }
}

#[tokio::test]
async fn hello_with_lobby_false_stays_out_of_the_lobby_but_gets_its_rooms_back() {
    let server = TestServer::start().await;
    let mut alice = server.join("alice").await;
    let mut bob = server.connect().await;
    bob.send(json!({"type":"hello","name":"bob","lobby":false}))
        .await;
    let w = bob.expect("welcome").await;
    assert_eq!(w["rooms"], json!([]));
    assert_eq!(
        bob.expect("history").await,
        json!({"type":"history","messages":[]}),
        "only the private replay"
    );
    alice.expect_nothing().await; // no `joined` in the lobby
    alice.send(json!({"type":"who"})).await;
    assert_eq!(alice.expect("users").await["names"], json!(["alice"]));
    alice.say("lobby only", "1").await;
    bob.expect_nothing().await;
    bob.send(json!({"type":"say","text":"x","id":"b1"})).await;
    assert_eq!(bob.expect("error").await["code"], "not_in_room");

    // Rooms joined before come back on the next hello, still without the lobby.
    bob.send(json!({"type":"join","room":"quiet"})).await;
    bob.sync().await;
    bob.send(json!({"type":"exit"})).await;
    bob.expect("bye").await;
    let mut bob = server.connect().await;
    bob.send(json!({"type":"hello","name":"bob","lobby":false}))
        .await;
    assert_eq!(bob.expect("welcome").await["rooms"], json!(["quiet"]));
    // And a plain hello puts the lobby back first.
    bob.sync().await;
    bob.send(json!({"type":"exit"})).await;
    bob.expect("bye").await;
    let mut bob = server.connect().await;
    bob.send(json!({"type":"hello","name":"bob"})).await;
    assert_eq!(
        bob.expect("welcome").await["rooms"],
        json!(["lobby", "quiet"])
    );
}
