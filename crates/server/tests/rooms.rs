//! Rooms have owners (issue 12): the creator of a room — an owner of their name — moderates it, and
//! every action is stored in the room's history like a message, so everyone sees who did what.

mod common;

use common::{Client, Connect, TestServer};
use serde_json::{json, Value};

async fn owner(server: &TestServer, name: &str, seed: u8) -> Client {
    let mut c = server.connect().await;
    c.hello_owned(name, seed).await;
    c
}

/// Joins `room`, consuming joined, users, topic (if any) and the replay; returns the frames.
async fn join(c: &mut Client, room: &str) -> Vec<Value> {
    c.send(json!({"type":"join","room":room})).await;
    c.sync().await
}

async fn moderate(c: &mut Client, room: &str, action: Value) {
    let mut frame = json!({"type":"moderate","room":room});
    for (k, v) in action.as_object().unwrap() {
        frame[k] = v.clone();
    }
    c.send(frame).await;
}

/// [`moderate`], then waits for the action's ack: by then its event has reached every member (acks
/// follow the fan-out). Returns what came before the ack (the event, for one).
async fn moderated(c: &mut Client, room: &str, action: Value) -> Vec<Value> {
    moderate(c, room, action).await;
    let mut before = Vec::new();
    loop {
        let f = c.recv().await;
        match f["type"].as_str() {
            Some("ack") => return before,
            Some("error") => panic!("refused: {f}"),
            _ => before.push(f),
        }
    }
}

/// The room events among `frames`, as `kind name`.
fn events(frames: &[Value]) -> Vec<String> {
    frames
        .iter()
        .filter(|f| f["type"] == "message" && f.get("event").is_some())
        .map(|f| {
            let e = &f["event"];
            format!(
                "{} {}",
                e["kind"].as_str().unwrap(),
                e["name"].as_str().unwrap_or("-")
            )
        })
        .collect()
}

/// Kick and ban: a second user sees the member leave with the reason; the banned one cannot come back;
/// a non-operator is refused; the room's owner is never kicked.
#[tokio::test]
async fn operators_kick_and_ban_and_others_cannot() {
    let server = TestServer::start().await;
    let mut alice = owner(&server, "alice", 1).await;
    let mut bob = owner(&server, "bob", 2).await;
    let mut carol = server.join("carol").await;
    join(&mut alice, "rust").await; // alice creates #rust: hers
    join(&mut bob, "rust").await;
    join(&mut carol, "rust").await;
    alice.sync().await;
    bob.sync().await;

    moderate(&mut bob, "rust", json!({"action":"kick","name":"carol"})).await;
    let refused = bob.expect("error").await;
    assert_eq!(
        (refused["code"].as_str(), refused["args"]["what"].as_str()),
        (Some("forbidden"), Some("kick"))
    );
    moderated(
        &mut alice,
        "rust",
        json!({"action":"kick","name":"carol","text":"spam"}),
    )
    .await;
    let left = carol.expect("left").await;
    assert_eq!(
        (left["name"].as_str(), left["reason"].as_str()),
        (Some("carol"), Some("kicked"))
    );
    let seen = bob.sync().await;
    assert!(
        seen.iter()
            .any(|f| f["type"] == "left" && f["reason"] == "kicked"),
        "{seen:?}"
    );
    assert_eq!(events(&seen), ["kick carol"]);
    let kick = seen.iter().find(|f| f.get("event").is_some()).unwrap();
    assert_eq!(
        (kick["from"].as_str(), kick["event"]["text"].as_str()),
        (Some("alice"), Some("spam"))
    );
    assert_eq!(
        kick["text"], "kicked carol (spam)",
        "English words for older clients"
    );
    // Kicked, not banned: carol may come back.
    let back = join(&mut carol, "rust").await;
    assert_eq!(back[0]["type"], "joined", "{back:?}");

    moderated(&mut alice, "rust", json!({"action":"ban","name":"carol"})).await;
    carol.expect("left").await;
    let again = join(&mut carol, "rust").await;
    assert_eq!(again[0]["code"], "banned", "{again:?}");
    // An operator cannot touch the owner.
    moderated(&mut alice, "rust", json!({"action":"op","name":"bob"})).await;
    bob.sync().await;
    moderate(&mut bob, "rust", json!({"action":"kick","name":"alice"})).await;
    assert_eq!(bob.expect("error").await["code"], "forbidden");
    // The history keeps who did what, for anyone who joins later.
    let mut dave = server.join("dave").await;
    let history = join(&mut dave, "rust").await;
    let replayed: Vec<String> = history
        .iter()
        .filter(|f| f["type"] == "history")
        .flat_map(|f| f["messages"].as_array().unwrap().clone())
        .filter(|m| m.get("event").is_some())
        .map(|m| {
            format!(
                "{} {}",
                m["event"]["kind"].as_str().unwrap(),
                m["event"]["name"].as_str().unwrap_or("-")
            )
        })
        .collect();
    assert_eq!(replayed, ["kick carol", "ban carol", "op bob"]);
    let users = history.iter().find(|f| f["type"] == "users").unwrap();
    assert_eq!(users["ops"], json!(["alice", "bob"]));
}

/// Mute and moderated rooms: a muted member's messages are refused until the mute ends or is lifted; in a
/// moderated room only voiced members (and operators) speak.
#[tokio::test]
async fn mutes_and_moderated_rooms_keep_people_quiet() {
    let server = TestServer::start().await;
    let mut alice = owner(&server, "alice", 1).await;
    let mut bob = server.join("bob").await;
    join(&mut alice, "talk").await;
    join(&mut bob, "talk").await;
    alice.sync().await;
    moderated(
        &mut alice,
        "talk",
        json!({"action":"mute","name":"bob","minutes":5}),
    )
    .await;
    bob.sync().await;
    bob.send(json!({"type":"say","room":"talk","text":"hello?","id":"1"}))
        .await;
    let muted = bob.expect("error").await;
    assert_eq!(
        (muted["code"].as_str(), muted["id"].as_str()),
        (Some("muted"), Some("1"))
    );
    moderated(&mut alice, "talk", json!({"action":"unmute","name":"bob"})).await;
    bob.sync().await;
    bob.send(json!({"type":"say","room":"talk","text":"thanks","id":"2"}))
        .await;
    bob.expect("ack").await;

    moderated(&mut alice, "talk", json!({"action":"moderated","on":true})).await;
    bob.sync().await;
    bob.send(json!({"type":"say","room":"talk","text":"may I?","id":"3"}))
        .await;
    let quiet = bob.expect("error").await;
    assert_eq!(
        (quiet["code"].as_str(), quiet["args"]["until"].as_str()),
        (Some("muted"), Some("none"))
    );
    moderated(&mut alice, "talk", json!({"action":"voice","name":"bob"})).await;
    bob.sync().await;
    bob.send(json!({"type":"say","room":"talk","text":"now I may","id":"4"}))
        .await;
    bob.expect("ack").await;
    assert!(alice.sync().await.iter().any(|f| f["text"] == "now I may"));
}

/// Topic and invite-only: the topic reaches the room as an event and every joiner as a `topic` frame;
/// an invite-only room keeps out whoever is not invited.
#[tokio::test]
async fn topics_and_invite_only_rooms() {
    let server = TestServer::start().await;
    let mut alice = owner(&server, "alice", 1).await;
    let mut bob = server.join("bob").await;
    join(&mut alice, "club").await;
    let mut own = moderated(
        &mut alice,
        "club",
        json!({"action":"topic","text":"members only 会员"}),
    )
    .await;
    own.extend(
        moderated(
            &mut alice,
            "club",
            json!({"action":"invite_only","on":true}),
        )
        .await,
    );
    assert_eq!(
        events(&own),
        ["topic -", "invite_only -"],
        "the author sees their own events"
    );
    let refused = join(&mut bob, "club").await;
    assert_eq!(refused[0]["code"], "invite_only", "{refused:?}");
    moderated(&mut alice, "club", json!({"action":"invite","name":"bob"})).await;
    let frames = join(&mut bob, "club").await;
    let topic = frames
        .iter()
        .find(|f| f["type"] == "topic")
        .expect("a topic frame");
    assert_eq!(
        (topic["topic"].as_str(), topic["invite_only"].as_bool()),
        (Some("members only 会员"), Some(true))
    );
    // Only operators set the topic.
    moderate(
        &mut bob,
        "club",
        json!({"action":"topic","text":"mine now"}),
    )
    .await;
    assert_eq!(bob.expect("error").await["code"], "forbidden");
    // A room a guest creates has no owner; its creator is its operator while it lives (as on IRC),
    // and nobody else is.
    join(&mut bob, "guests").await;
    moderated(&mut bob, "guests", json!({"action":"topic","text":"x"})).await;
    let mut carol = server.join("carol").await;
    join(&mut carol, "guests").await;
    moderate(&mut carol, "guests", json!({"action":"topic","text":"y"})).await;
    assert_eq!(carol.expect("error").await["code"], "forbidden");
    // Once it is empty, whoever brings it back is its operator — the last one's are gone.
    for c in [&mut bob, &mut carol] {
        c.send(json!({"type":"leave","room":"guests"})).await;
        c.sync().await;
    }
    join(&mut carol, "guests").await;
    moderated(&mut carol, "guests", json!({"action":"topic","text":"z"})).await;
    join(&mut bob, "guests").await;
    moderate(&mut bob, "guests", json!({"action":"topic","text":"w"})).await;
    assert_eq!(bob.expect("error").await["code"], "forbidden");
}
