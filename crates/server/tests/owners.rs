//! Owned names (issue 12): a name belongs to whoever first proved a key for it; only its owner gets its
//! private messages; an owner may be signed in several times; whispers wait for an owner who is away.

mod common;

use common::{Client, Connect, TestServer};
use serde_json::{json, Value};

async fn owner(server: &TestServer, name: &str, seed: u8) -> Client {
    let mut c = server.connect().await;
    c.hello_owned(name, seed).await;
    c
}

fn texts(frames: &[Value]) -> Vec<String> {
    let mut out = Vec::new();
    for f in frames {
        match f["type"].as_str() {
            Some("message") => out.push(f["text"].as_str().unwrap().to_owned()),
            Some("history") => {
                for m in f["messages"].as_array().unwrap() {
                    out.push(m["text"].as_str().unwrap().to_owned());
                }
            }
            _ => {}
        }
    }
    out
}

/// The reproduction: alice whispers bob a password; bob goes away; a third connection says
/// `hello` as bob. It is refused (`name_owned`), with or without a key of its own, and sees no byte of
/// the whisper; bob himself gets back in and finds it.
#[tokio::test]
async fn an_impostor_is_refused_and_never_sees_a_private_byte() {
    let server = TestServer::start().await;
    let mut alice = owner(&server, "alice", 1).await;
    let bob = owner(&server, "bob", 2).await;
    drop(bob);
    alice.sync().await; // bob's departure
    alice
        .send(json!({"type":"whisper","to":"bob","text":"my password is hunter2","id":"w"}))
        .await;
    assert!(alice.expect("ack").await["seq"].as_u64().is_some());

    let mut guest = server.connect().await;
    guest
        .send(json!({"type":"hello","name":"BOB","version":1}))
        .await;
    let refused = guest.expect("error").await;
    assert_eq!(refused["code"], "name_owned", "{refused}");
    let mut other_key = server.connect().await;
    other_key
        .prove_hello(json!({"type":"hello","name":"bob","version":1}), "bob", 9)
        .await;
    let refused = other_key.expect("error").await;
    assert_eq!(refused["code"], "name_owned", "{refused}");
    for c in [&mut guest, &mut other_key] {
        let rest = c.sync().await;
        assert!(!format!("{rest:?}").contains("hunter2"), "{rest:?}");
    }

    let mut bob = server.connect().await;
    bob.prove_hello(json!({"type":"hello","name":"bob","version":1}), "bob", 2)
        .await;
    let frames = bob.sync().await;
    assert_eq!(frames[0]["owner"], true);
    assert!(
        texts(&frames).contains(&"my password is hunter2".to_owned()),
        "{frames:?}"
    );
}

/// A `prove` that does not sign the challenge, or comes without one, is `bad_proof`; nothing registers.
#[tokio::test]
async fn a_wrong_proof_is_refused() {
    let server = TestServer::start().await;
    let mut c = server.connect().await;
    c.send(json!({"type":"prove","signature":"AAAA"})).await;
    assert_eq!(c.expect("error").await["code"], "bad_proof");
    let key = natter_proto::auth::SigningKey::from_bytes(&[4; 32]);
    c.send(json!({"type":"hello","name":"dave","version":1,"key":natter_proto::auth::public_key(&key)}))
        .await;
    let nonce = c.expect("challenge").await["nonce"]
        .as_str()
        .unwrap()
        .to_owned();
    // Signed for another name.
    let signature = natter_proto::auth::sign(&key, &nonce, "eve");
    c.send(json!({"type":"prove","signature":signature})).await;
    assert_eq!(c.expect("error").await["code"], "bad_proof");
    c.send(json!({"type":"say","text":"hi"})).await;
    assert_eq!(c.expect("error").await["code"], "not_registered");
}

/// Guests keep working as before for names nobody owns — but get no private history: not by replay,
/// not by `history`, not by resume (what was whispered to the name before is not theirs to read).
#[tokio::test]
async fn guests_get_private_messages_only_while_connected() {
    let server = TestServer::start().await;
    let mut alice = owner(&server, "alice", 1).await;
    let mut carol = server.join("carol").await;
    alice.sync().await;
    alice
        .send(json!({"type":"whisper","to":"carol","text":"live secret","id":"1"}))
        .await;
    alice.expect("ack").await;
    assert_eq!(carol.expect("message").await["text"], "live secret");
    let last = carol.sync().await;
    assert!(last.is_empty(), "{last:?}");
    drop(carol);
    alice.sync().await;

    let mut again = server.connect().await;
    again
        .send(json!({"type":"hello","name":"carol","version":1,"resume_after":0}))
        .await;
    let frames = again.sync().await;
    assert!(
        !texts(&frames).contains(&"live secret".to_owned()),
        "{frames:?}"
    );
    again.send(json!({"type":"history"})).await;
    let page = again.expect("history").await;
    assert_eq!(page["messages"], json!([]));
    // Whispering to a guest who is away is refused, as it always was.
    alice.sync().await;
    alice
        .send(json!({"type":"whisper","to":"nobody","text":"x","id":"2"}))
        .await;
    assert_eq!(alice.expect("error").await["code"], "no_such_user");
}

/// A whisper to an owner who is away is stored and delivered when they are back — all of it, in pages,
/// not only the last `--replay` — and only once.
#[tokio::test]
async fn whispers_wait_for_an_owner_who_is_away() {
    let server = TestServer::start_with(natter_server::Config {
        replay: 3,
        ..natter_server::testing::config()
    })
    .await;
    let bob = owner(&server, "bob", 2).await;
    drop(bob);
    let mut alice = owner(&server, "alice", 1).await;
    for i in 0..600 {
        alice
            .send(json!({"type":"whisper","to":"bob","text":format!("while away {i}"),"id":i.to_string()}))
            .await;
    }
    let acks = alice.sync().await;
    assert_eq!(
        acks.iter().filter(|f| f["type"] == "ack").count(),
        600,
        "{:?}",
        &acks[..3]
    );

    let mut bob = server.connect().await;
    bob.prove_hello(json!({"type":"hello","name":"bob","version":1}), "bob", 2)
        .await;
    let frames = bob.sync().await;
    let got = texts(&frames);
    let want: Vec<String> = (0..600).map(|i| format!("while away {i}")).collect();
    assert_eq!(got, want, "every one, in order, once");
    // Marked new: each page says after which seq its messages came while bob was away.
    for page in frames
        .iter()
        .filter(|f| f["type"] == "history" && f.get("room").is_none())
    {
        let after = page["new_after"].as_u64().expect("new_after");
        for m in page["messages"].as_array().unwrap() {
            assert!(m["seq"].as_u64().unwrap() > after, "{m}");
        }
    }
    drop(bob);
    alice.sync().await;

    let mut bob = server.connect().await;
    bob.prove_hello(json!({"type":"hello","name":"bob","version":1}), "bob", 2)
        .await;
    let frames = bob.sync().await;
    assert_eq!(
        texts(&frames),
        ["while away 597", "while away 598", "while away 599"],
        "the next time only the recent conversation"
    );
}

/// An owner signed in twice gets everything in both sessions — room messages, whispers, and what they
/// said themselves from the other session; the room sees one member, one join, one leave.
#[tokio::test]
async fn an_owner_signed_in_twice_gets_everything_in_both() {
    let server = TestServer::start().await;
    let mut alice = owner(&server, "alice", 1).await;
    let mut phone = owner(&server, "bob", 2).await;
    alice.sync().await;
    let mut laptop = server.connect().await;
    let welcome = laptop.hello_owned("bob", 2).await;
    assert_eq!(welcome["rooms"], json!(["lobby"]));
    assert!(alice.sync().await.is_empty(), "no second join for bob");
    phone.sync().await;
    alice.send(json!({"type":"who"})).await;
    assert_eq!(
        alice.expect("users").await["names"],
        json!(["alice", "bob"])
    );

    alice.say("hello room", "1").await;
    alice
        .send(json!({"type":"whisper","to":"bob","text":"psst","id":"2"}))
        .await;
    alice.expect("ack").await;
    for c in [&mut phone, &mut laptop] {
        let frames = c.sync().await;
        assert_eq!(texts(&frames), ["hello room", "psst"], "{frames:?}");
    }
    // What the phone says reaches the laptop (and alice); the phone itself gets the ack.
    phone.say("from the phone", "p1").await;
    assert!(texts(&phone.sync().await).is_empty());
    assert_eq!(texts(&laptop.sync().await), ["from the phone"]);
    assert_eq!(texts(&alice.sync().await), ["from the phone"]);
    drop(phone);
    assert!(alice.sync().await.is_empty(), "bob is still here");
    laptop.send(json!({"type":"exit"})).await;
    laptop.expect("bye").await;
    let left = alice.expect("left").await;
    assert_eq!(left["name"], "bob");
}

/// Two connections racing to claim one free name: exactly one owns it.
#[tokio::test]
async fn racing_claims_leave_one_owner() {
    let server = TestServer::start().await;
    let mut a = server.connect().await;
    let mut b = server.connect().await;
    a.prove_hello(json!({"type":"hello","name":"zoë","version":1}), "zoë", 5)
        .await;
    b.prove_hello(json!({"type":"hello","name":"zoë","version":1}), "zoë", 6)
        .await;
    let first = [a.recv().await, b.recv().await];
    let welcomes = first.iter().filter(|f| f["type"] == "welcome").count();
    assert_eq!(welcomes, 1, "{first:?}");
    let refused: Vec<&Value> = first.iter().filter(|f| f["type"] == "error").collect();
    assert!(
        ["name_owned", "name_taken"].contains(&refused[0]["code"].as_str().unwrap()),
        "{refused:?}"
    );
}

/// Look-alikes (UTS #39): a name that reads like one in use or owned is taken; letters of scripts not
/// written together are refused; Chinese names and Zoë are fine.
#[tokio::test]
async fn look_alike_names_cannot_pose_as_others() {
    let server = TestServer::start().await;
    let alice = owner(&server, "alice", 1).await;
    drop(alice); // away, but owned
    let _guest = server.join("paul1").await;
    let refused = |name: &'static str| {
        let addr = server.addr;
        async move {
            let mut c = Client::connect(addr).await;
            c.send(json!({"type":"hello","name":name,"version":1}))
                .await;
            let e = c.expect("error").await;
            (
                e["code"].as_str().unwrap().to_owned(),
                e["args"]["reason"].clone(),
            )
        }
    };
    // Cyrillic а among Latin letters: mixed scripts.
    assert_eq!(
        refused("\u{430}lice").await,
        ("invalid_name".to_owned(), json!("mixed_scripts"))
    );
    // Fullwidth letters are made to look like others.
    assert_eq!(
        refused("\u{ff41}\u{ff4c}\u{ff49}\u{ff43}\u{ff45}").await.0,
        "invalid_name"
    );
    // Reads like the owned alice, or like paul1 who is online.
    assert_eq!(refused("aIice").await.0, "name_taken");
    assert_eq!(refused("pauI1").await.0, "name_taken");
    for fine in ["张三", "Zoë", "paula"] {
        let mut c = server.connect().await;
        c.hello(fine).await;
    }
}

/// An owner sets a password; from another device (another key) the password gets them in and adds that
/// device's key, which alone suffices the next time.
#[tokio::test]
async fn an_owner_sets_a_password_and_signs_in_with_it_from_another_device() {
    let server = TestServer::start().await;
    let mut bob = owner(&server, "bob", 2).await;
    bob.send(json!({"type":"set_password","password":"short"}))
        .await;
    let weak = bob.expect("error").await;
    assert_eq!(
        (weak["code"].as_str(), weak["args"]["min"].as_u64()),
        (Some("weak_password"), Some(8))
    );
    bob.send(json!({"type":"set_password","password":"correct horse 马"}))
        .await;
    bob.expect("password_set").await;

    let mut laptop = server.connect().await;
    laptop
        .prove_hello(
            json!({"type":"hello","name":"bob","version":1,"password":"correct horse 马"}),
            "bob",
            7,
        )
        .await;
    let welcome = laptop.finish_hello().await;
    assert_eq!(welcome["owner"], true);
    drop(laptop);
    let mut laptop = server.connect().await;
    laptop.hello_owned("bob", 7).await; // its key is bob's now
                                        // Without a key, the password alone.
    let mut nc_like = server.connect().await;
    nc_like
        .send(json!({"type":"hello","name":"bob","version":1,"password":"correct horse 马"}))
        .await;
    assert_eq!(nc_like.finish_hello().await["owner"], true);
}

/// Wrong guesses back off per (name, address) and per address: from one address the 4th wrong guess
/// makes the next wait, and a guess while waiting is not even checked; the owner from another address
/// gets in at once.
#[tokio::test]
async fn wrong_passwords_are_throttled_while_the_owner_gets_in() {
    let server = TestServer::start().await;
    let mut bob = owner(&server, "bob", 2).await;
    bob.send(json!({"type":"set_password","password":"the right one"}))
        .await;
    bob.expect("password_set").await;
    drop(bob);
    let mut guesser = Client::connect_from(server.addr, "127.0.0.2").await;
    let mut waits = Vec::new();
    for i in 0..4 {
        guesser
            .send(json!({"type":"hello","name":"bob","version":1,"password":format!("guess number {i}")}))
            .await;
        let e = guesser.expect("error").await;
        assert_eq!(e["code"], "bad_password", "{e}");
        waits.push(e["args"]["try_again_in"].as_u64().unwrap());
    }
    assert_eq!(waits, [0, 0, 0, 1]);
    guesser
        .send(json!({"type":"hello","name":"bob","version":1,"password":"the right one"}))
        .await;
    let e = guesser.expect("error").await;
    assert_eq!(
        e["code"], "try_again_later",
        "even the right one waits: {e}"
    );

    let mut owner_elsewhere = Client::connect_from(server.addr, "127.0.0.3").await;
    owner_elsewhere
        .send(json!({"type":"hello","name":"bob","version":1,"password":"the right one"}))
        .await;
    assert_eq!(owner_elsewhere.finish_hello().await["owner"], true);
}

/// A password is never read from another machine over plain TCP: `hello` and `set_password` with one
/// are refused (`insecure`) before anything is checked. (127.0.0.4 plays the other machine.)
#[tokio::test]
async fn passwords_never_cross_from_another_machine_in_clear() {
    let server = TestServer::start_with(natter_server::Config {
        remote_loopback: Some("127.0.0.4".parse().unwrap()),
        ..natter_server::testing::config()
    })
    .await;
    let mut remote = Client::connect_from(server.addr, "127.0.0.4").await;
    remote
        .send(json!({"type":"hello","name":"carol","version":1,"password":"a fine password"}))
        .await;
    assert_eq!(remote.expect("error").await["code"], "insecure");
    remote.hello("carol").await;
    remote
        .send(json!({"type":"set_password","password":"a fine password"}))
        .await;
    assert_eq!(remote.expect("error").await["code"], "insecure");
    let mut local = Client::connect_from(server.addr, "127.0.0.5").await;
    local.hello("dave").await;
    local
        .send(json!({"type":"set_password","password":"a fine password"}))
        .await;
    local.expect("password_set").await;
}

/// `/block`: an owner refuses someone's whispers (the sender is told); `/unblock` takes them again.
/// Guests cannot block.
#[tokio::test]
async fn an_owner_blocks_and_unblocks_whispers() {
    let server = TestServer::start().await;
    let mut bob = owner(&server, "bob", 2).await;
    let mut pest = server.join("pest").await;
    let mut guest = server.join("carol").await;
    bob.sync().await;
    bob.send(json!({"type":"block","name":"PEST"})).await;
    assert_eq!(bob.expect("blocked").await["on"], true);
    pest.sync().await;
    pest.send(json!({"type":"whisper","to":"bob","text":"hey","id":"1"}))
        .await;
    let refused = pest.expect("error").await;
    assert_eq!(
        (refused["code"].as_str(), refused["id"].as_str()),
        (Some("blocked"), Some("1"))
    );
    assert!(texts(&bob.sync().await).is_empty());
    bob.send(json!({"type":"unblock","name":"pest"})).await;
    assert_eq!(bob.expect("blocked").await["on"], false);
    pest.send(json!({"type":"whisper","to":"bob","text":"hey again","id":"2"}))
        .await;
    pest.expect("ack").await;
    assert_eq!(texts(&bob.sync().await), ["hey again"]);
    guest.sync().await;
    guest.send(json!({"type":"block","name":"pest"})).await;
    assert_eq!(guest.expect("error").await["code"], "forbidden");
}

/// `/forget-me`: the account, its keys and its private history are gone; the session goes on as a guest,
/// the name is free for anyone, and nothing private of it reaches the next user.
#[tokio::test]
async fn forget_me_releases_the_name_and_its_private_history() {
    let server = TestServer::start().await;
    let mut alice = owner(&server, "alice", 1).await;
    let mut bob = owner(&server, "bob", 2).await;
    alice.sync().await;
    alice
        .send(json!({"type":"whisper","to":"bob","text":"for bob only","id":"1"}))
        .await;
    alice.expect("ack").await;
    bob.sync().await;
    bob.send(json!({"type":"forget_me"})).await;
    bob.expect("forgotten").await;
    drop(bob);
    alice.sync().await;
    // A guest may use the name now, and finds nothing of bob's.
    let mut next = server.connect().await;
    next.send(json!({"type":"hello","name":"bob","version":1}))
        .await;
    let frames = next.sync().await;
    assert_eq!(frames[0]["type"], "welcome", "{frames:?}");
    assert!(!format!("{frames:?}").contains("for bob only"));
    // The old key is no proof of anything any more: it claims the free name afresh.
    drop(next);
    alice.sync().await;
    let mut old_key = server.connect().await;
    old_key
        .prove_hello(json!({"type":"hello","name":"bob","version":1}), "bob", 2)
        .await;
    let frames = old_key.sync().await;
    assert_eq!(frames[0]["owner"], true);
    assert!(
        !format!("{frames:?}").contains("for bob only"),
        "{frames:?}"
    );
}

/// One address may come to own 30 names per 10 minutes; the 31st waits.
#[tokio::test]
async fn claiming_names_is_rate_limited_per_address() {
    let server = TestServer::start().await;
    for i in 0..30u8 {
        let mut c = Client::connect_from(server.addr, "127.0.0.7").await;
        let name = format!("claimer{i}");
        c.prove_hello(
            json!({"type":"hello","name":name,"version":1}),
            &name,
            100 + i,
        )
        .await;
        assert_eq!(c.recv().await["type"], "welcome");
    }
    let mut c = Client::connect_from(server.addr, "127.0.0.7").await;
    c.prove_hello(
        json!({"type":"hello","name":"one-more","version":1}),
        "one-more",
        200,
    )
    .await;
    let e = c.expect("error").await;
    assert_eq!(
        (e["code"].as_str(), e["args"]["what"].as_str()),
        (Some("try_again_later"), Some("claims"))
    );
    // Another address is not held up.
    let mut other = Client::connect_from(server.addr, "127.0.0.8").await;
    other.hello_owned("one-more", 200).await;
}
