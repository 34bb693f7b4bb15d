//! Shared files over real sockets: offers, transfer connections, resume, verification, permissions,
//! quotas (PROTOCOL.md §7).

mod common;

use std::net::SocketAddr;

use common::{Client, Connect, TestServer, WAIT};
use natter_server::Config;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

const CHUNK: usize = natter_server::files::transfer::CHUNK;

fn config(dir: &tempfile::TempDir) -> Config {
    let mut config = natter_server::testing::config();
    config.files.dir = Some(dir.path().join("files"));
    config.files.reserve = 0;
    config
}

fn sha(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Content that differs at every position, so a shifted or repeated chunk cannot pass for the original.
fn content(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[1] ^ seed)
        .collect()
}

/// Offers `bytes` as `name` to `room` (or privately `to`) and returns the answer.
async fn offer(c: &mut Client, name: &str, bytes: &[u8], target: Value) -> Value {
    let mut frame =
        json!({"type":"offer","name":name,"size":bytes.len(),"sha256":sha(bytes),"id":"f"});
    for (k, v) in target.as_object().unwrap() {
        frame[k] = v.clone();
    }
    c.send(frame).await;
    // The answer carries the offer's id; anything before it (an earlier share's message) is not it.
    loop {
        let answer = c.recv().await;
        if answer["id"] == "f" && answer["type"] != "ack" {
            return answer;
        }
    }
}

/// A transfer connection: the request line, then its first answer line.
async fn transfer(addr: SocketAddr, request: Value) -> (BufReader<TcpStream>, Value) {
    let stream = TcpStream::connect(addr).await.unwrap();
    let mut stream = BufReader::new(stream);
    let mut line = serde_json::to_vec(&request).unwrap();
    line.push(b'\n');
    stream.get_mut().write_all(&line).await.unwrap();
    let head = read_line(&mut stream).await;
    (stream, head)
}

async fn read_line(stream: &mut BufReader<TcpStream>) -> Value {
    let mut line = String::new();
    tokio::time::timeout(WAIT, stream.read_line(&mut line))
        .await
        .expect("an answer in time")
        .unwrap();
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON: {line:?}: {e}"))
}

/// Sends `bytes` from where the server says it is; returns the server's last line.
async fn upload(addr: SocketAddr, token: &str, bytes: &[u8]) -> Value {
    let (mut stream, head) = transfer(addr, json!({"type":"upload","token":token})).await;
    assert_eq!(head["type"], "upload_at", "{head}");
    let offset = head["offset"].as_u64().unwrap() as usize;
    stream.get_mut().write_all(&bytes[offset..]).await.unwrap();
    read_line(&mut stream).await
}

/// Sends `bytes[..cut]` (from where the server is), then closes, and waits for the server to close too:
/// everything sent has been handled.
async fn upload_part(addr: SocketAddr, token: &str, bytes: &[u8], cut: usize) -> u64 {
    let (mut stream, head) = transfer(addr, json!({"type":"upload","token":token})).await;
    let offset = head["offset"].as_u64().unwrap() as usize;
    stream
        .get_mut()
        .write_all(&bytes[offset..cut.max(offset)])
        .await
        .unwrap();
    stream.get_mut().shutdown().await.unwrap();
    let mut rest = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut rest))
        .await
        .expect("the server closes")
        .unwrap();
    assert!(rest.is_empty(), "{}", String::from_utf8_lossy(&rest));
    offset as u64
}

/// Downloads from `offset`: the `sending` line and the bytes after it.
async fn download(addr: SocketAddr, token: &str, offset: u64) -> (Value, Vec<u8>) {
    let (mut stream, head) = transfer(
        addr,
        json!({"type":"download","token":token,"offset":offset}),
    )
    .await;
    let mut bytes = Vec::new();
    tokio::time::timeout(WAIT * 3, stream.read_to_end(&mut bytes))
        .await
        .expect("the whole file in time")
        .unwrap();
    (head, bytes)
}

/// `fetch`es file `id` as `c` and downloads it whole.
async fn fetch(addr: SocketAddr, c: &mut Client, id: u64) -> Vec<u8> {
    c.send(json!({"type":"fetch","file":id,"id":"g"})).await;
    // Presence and messages may come first; the answer carries the id.
    let ready = loop {
        let frame = c.recv().await;
        if frame["id"] == "g" {
            break frame;
        }
    };
    assert_eq!(ready["type"], "download_ready", "{ready}");
    assert_eq!(ready["id"], "g");
    assert_eq!(ready["file"]["id"], id);
    let (head, bytes) = download(addr, ready["token"].as_str().unwrap(), 0).await;
    assert_eq!(head["type"], "sending", "{head}");
    assert_eq!(head["sha256"], ready["file"]["sha256"]);
    bytes
}

/// Shares `bytes` from `alice` with the lobby and returns the file's id, checking the message everyone
/// (the sender too) gets.
async fn share(
    server: &TestServer,
    alice: &mut Client,
    bob: &mut Client,
    name: &str,
    bytes: &[u8],
) -> u64 {
    let ready = offer(alice, name, bytes, json!({})).await;
    assert_eq!(ready["type"], "upload_ready", "{ready}");
    assert_eq!(ready["offset"], 0);
    let done = upload(server.addr, ready["token"].as_str().unwrap(), bytes).await;
    assert_eq!(done["type"], "uploaded", "{done}");
    let id = done["file"].as_u64().unwrap();
    for c in [&mut *alice, &mut *bob] {
        let m = c.expect("message").await;
        assert_eq!(m["seq"], id);
        assert_eq!(m["from"], "alice");
        assert_eq!(m["room"], "lobby");
        assert_eq!(m["file"]["id"], id);
        assert_eq!(m["file"]["size"], bytes.len());
        assert_eq!(m["file"]["sha256"], sha(bytes));
        assert!(
            m["text"]
                .as_str()
                .unwrap()
                .ends_with(&format!("— /get {id}")),
            "{m}"
        );
    }
    assert_eq!(alice.expect("ack").await["seq"], id);
    id
}

#[tokio::test]
async fn files_round_trip_byte_exact_at_every_awkward_size() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(config(&dir)).await;
    let mut alice = server.join("alice").await;
    let mut bob = server.join("bob").await;
    alice.expect("joined").await;
    for (i, len) in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 7, 100 << 20]
        .into_iter()
        .enumerate()
    {
        let bytes = content(len, i as u8);
        let id = share(
            &server,
            &mut alice,
            &mut bob,
            &format!("f{len}.bin"),
            &bytes,
        )
        .await;
        let got = fetch(server.addr, &mut bob, id).await;
        assert!(got == bytes, "{len} bytes came back different");
    }
    // A Chinese name survives, and a hostile one is made safe before anyone sees it.
    let id = share(&server, &mut alice, &mut bob, "报告 2026.pdf", b"%PDF").await;
    bob.send(json!({"type":"fetch","file":id})).await;
    let ready = bob.expect("download_ready").await;
    assert_eq!(ready["file"]["name"], "报告 2026.pdf");
    assert_eq!(ready["file"]["mime"], "application/pdf");
    let bytes = b"#!/bin/sh".to_vec();
    let ready = offer(&mut alice, "../../.bashrc", &bytes, json!({})).await;
    assert_eq!(
        upload(server.addr, ready["token"].as_str().unwrap(), &bytes).await["type"],
        "uploaded"
    );
    for c in [&mut alice, &mut bob] {
        assert_eq!(c.expect("message").await["file"]["name"], "bashrc");
    }
    alice.expect("ack").await;
    server.shutdown().await;
}

#[tokio::test]
async fn an_upload_cut_anywhere_resumes_and_a_retry_is_not_shared_twice() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(config(&dir)).await;
    // Cut points drawn by proptest (two per upload, twelve uploads): a random sample each run.
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::default());
    let bytes = content(2 * CHUNK + 300, 7);
    let mut alice = server.join("alice").await;
    // Cut points (two cuts per upload), and a room per case so each upload is a new one.
    let strategy = (0..bytes.len(), 0..bytes.len());
    let cases: Vec<_> = (0..12)
        .map(|_| strategy.new_tree(&mut runner).unwrap().current())
        .collect();
    for (i, (a, b)) in cases.into_iter().enumerate() {
        let (first, second) = (a.min(b), a.max(b));
        let room = format!("r{i}");
        alice.send(json!({"type":"join","room":room})).await;
        alice.sync().await;
        let ready = offer(&mut alice, "big.bin", &bytes, json!({"room":room})).await;
        let token = ready["token"].as_str().unwrap().to_owned();
        assert_eq!(upload_part(server.addr, &token, &bytes, first).await, 0);
        // The same upload offered again (as after a reconnect) says how far it got.
        let again = offer(&mut alice, "big.bin", &bytes, json!({"room":room})).await;
        assert_eq!(again["offset"], first, "cut at {first}");
        let token = again["token"].as_str().unwrap().to_owned();
        assert_eq!(
            upload_part(server.addr, &token, &bytes, second).await,
            first as u64
        );
        let done = upload(server.addr, &token, &bytes).await;
        assert_eq!(done["type"], "uploaded", "{done}");
        let id = done["file"].as_u64().unwrap();
        let m = alice.expect("message").await;
        assert_eq!(m["file"]["id"], id);
        alice.expect("ack").await;
        // Downloads resume too: from any offset, the rest.
        alice.send(json!({"type":"fetch","file":id})).await;
        let ready = alice.expect("download_ready").await;
        let (head, tail) =
            download(server.addr, ready["token"].as_str().unwrap(), first as u64).await;
        assert_eq!(head["offset"], first);
        assert!(tail == bytes[first..], "download from {first}");
        // A retry of the completed upload gets the same file, not a second share.
        let retry = offer(&mut alice, "big.bin", &bytes, json!({"room":room})).await;
        assert_eq!(retry["file"], id, "{retry}");
        assert_eq!(retry["offset"], bytes.len());
    }
    alice.expect_nothing().await;
    // One content, twelve shares: stored once.
    let objects: Vec<_> = walk(&dir.path().join("files/objects"));
    assert_eq!(objects.len(), 1, "{objects:?}");
    assert!(walk_flat(&dir.path().join("files/partial")).is_empty());
    server.shutdown().await;
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    walk_flat(dir)
        .into_iter()
        .flat_map(|sub| walk_flat(&sub))
        .collect()
}

fn walk_flat(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default()
}

/// An upload belongs to its uploader: someone else offering the same content (same hash, same size)
/// starts their own from nothing, and cannot send into the first one's.
#[tokio::test]
async fn knowing_a_files_hash_grants_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(config(&dir)).await;
    let mut alice = server.join("alice").await;
    let mut mallory = server.join("mallory").await;
    let bytes = content(3 * CHUNK, 4);
    let ready = offer(&mut alice, "secret.bin", &bytes, json!({})).await;
    let token = ready["token"].as_str().unwrap().to_owned();
    upload_part(server.addr, &token, &bytes, 2 * CHUNK).await;
    let theirs = offer(&mut mallory, "secret.bin", &bytes, json!({})).await;
    assert_eq!(theirs["offset"], 0, "{theirs}");
    assert_ne!(theirs["token"], ready["token"]);
    // alice's upload is untouched by mallory's — and keeps its bytes under another name too.
    let again = offer(&mut alice, "secret.bin", &bytes, json!({})).await;
    assert_eq!(again["offset"], 2 * CHUNK);
    let renamed = offer(&mut alice, "renamed.bin", &bytes, json!({})).await;
    assert_eq!(renamed["offset"], 2 * CHUNK);
    let done = upload(server.addr, renamed["token"].as_str().unwrap(), &bytes).await;
    assert_eq!(done["type"], "uploaded", "{done}");
    let m = alice.expect("message").await;
    assert_eq!(m["file"]["name"], "renamed.bin");
    server.shutdown().await;
}

#[tokio::test]
async fn a_wrong_sha256_is_refused_and_its_bytes_discarded() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(config(&dir)).await;
    let mut alice = server.join("alice").await;
    let bytes = content(1000, 1);
    let mut frame =
        json!({"type":"offer","name":"x.bin","size":1000,"sha256":sha(b"something else")});
    alice.send(frame.clone()).await;
    let ready = alice.expect("upload_ready").await;
    let answer = upload(server.addr, ready["token"].as_str().unwrap(), &bytes).await;
    assert_eq!(answer["code"], "bad_checksum", "{answer}");
    // Nothing was shared, and the next attempt starts from nothing.
    alice.expect_nothing().await;
    alice.send(frame.clone()).await;
    assert_eq!(alice.expect("upload_ready").await["offset"], 0);
    // A malformed hash is refused at once.
    frame["sha256"] = json!("ABC");
    frame["id"] = json!("bad");
    alice.send(frame).await;
    let error = alice.expect("error").await;
    assert_eq!(
        (&error["code"], &error["id"]),
        (&json!("bad_frame"), &json!("bad"))
    );
    // A token nobody issued opens nothing.
    let (_, head) = transfer(server.addr, json!({"type":"upload","token":"guess"})).await;
    assert_eq!(head["code"], "unknown_transfer");
    let (_, head) = transfer(server.addr, json!({"type":"download","token":"guess"})).await;
    assert_eq!(head["code"], "unknown_transfer");
    server.shutdown().await;
}

#[tokio::test]
async fn only_members_and_the_two_of_a_private_conversation_may_download() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(config(&dir)).await;
    let mut alice = server.join("alice").await;
    let mut bob = server.join("bob").await;
    let mut carol = server.join("carol").await;
    alice.send(json!({"type":"join","room":"secret"})).await;
    alice.sync().await;
    let bytes = b"the plan".to_vec();
    let ready = offer(&mut alice, "plan.txt", &bytes, json!({"room":"secret"})).await;
    let secret = upload(server.addr, ready["token"].as_str().unwrap(), &bytes).await["file"]
        .as_u64()
        .unwrap();
    let ready = offer(&mut alice, "note.txt", &bytes, json!({"to":"bob"})).await;
    let private = upload(server.addr, ready["token"].as_str().unwrap(), &bytes).await["file"]
        .as_u64()
        .unwrap();
    alice.sync().await;
    bob.sync().await;
    carol.sync().await;
    // Not a member: refused, and the file's bytes are not on offer to a guessed token either.
    bob.send(json!({"type":"fetch","file":secret,"id":"1"}))
        .await;
    let error = bob.expect("error").await;
    assert_eq!(error["code"], "forbidden");
    assert_eq!(error["args"]["what"], "file");
    assert_eq!(error["id"], "1");
    // A member now: allowed.
    bob.send(json!({"type":"join","room":"secret"})).await;
    bob.sync().await;
    assert_eq!(fetch(server.addr, &mut bob, secret).await, bytes);
    // The private file: bob (its recipient) and alice yes, carol no.
    assert_eq!(fetch(server.addr, &mut bob, private).await, bytes);
    assert_eq!(fetch(server.addr, &mut alice, private).await, bytes);
    carol.send(json!({"type":"fetch","file":private})).await;
    assert_eq!(carol.expect("error").await["args"]["what"], "private_file");
    carol.send(json!({"type":"fetch","file":9999})).await;
    assert_eq!(carol.expect("error").await["code"], "no_such_file");
    // Offering into a room you are not in is refused like a message would be.
    let ready = offer(&mut carol, "x", b"x", json!({"room":"secret"})).await;
    assert_eq!(ready["code"], "not_in_room", "{ready}");
    server.shutdown().await;
}

#[tokio::test]
async fn limits_refuse_uploads_and_chat_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(&dir);
    config.files.max_file = 1000;
    config.files.user_quota = Some(1500);
    config.files.total = Some(2500);
    let server = TestServer::start_with(config).await;
    let mut alice = server.join("alice").await;
    let mut bob = server.join("bob").await;
    alice.expect("joined").await;
    let error = offer(&mut alice, "big", &content(1001, 0), json!({})).await;
    assert_eq!(error["code"], "file_too_big", "{error}");
    assert_eq!(error["args"]["bytes"], 1000);
    // 900 bytes shared, 500 more in progress: a third upload would pass alice's 1500.
    let first = content(900, 1);
    share(&server, &mut alice, &mut bob, "a", &first).await;
    let pending = offer(&mut alice, "b", &content(500, 2), json!({})).await;
    assert_eq!(pending["type"], "upload_ready");
    let error = offer(&mut alice, "c", &content(200, 3), json!({})).await;
    assert_eq!(
        (&error["code"], &error["args"]["what"]),
        (&json!("quota_exceeded"), &json!("user"))
    );
    // bob has his own quota, but the server's 2500 hold 900 + 500 + 1000 at most.
    let ready = offer(&mut bob, "d", &content(1000, 4), json!({})).await;
    assert_eq!(ready["type"], "upload_ready", "{ready}");
    let error = offer(&mut bob, "e", &content(200, 5), json!({})).await;
    assert_eq!(
        (&error["code"], &error["args"]["what"]),
        (&json!("quota_exceeded"), &json!("server"))
    );
    // The chat is unharmed.
    bob.send(json!({"type":"say","text":"still here","id":"s"}))
        .await;
    assert_eq!(bob.expect("ack").await["id"], "s");
    assert_eq!(alice.expect("message").await["text"], "still here");
    server.shutdown().await;

    // A disk without room (here: a reserve larger than any disk) refuses every upload.
    let dir = tempfile::tempdir().unwrap();
    let mut config = self::config(&dir);
    config.files.reserve = u64::MAX / 2;
    let server = TestServer::start_with(config).await;
    let mut alice = server.join("alice").await;
    let error = offer(&mut alice, "f", b"tiny", json!({})).await;
    assert_eq!(error["code"], "storage_full", "{error}");
    alice
        .send(json!({"type":"say","text":"fine","id":"s"}))
        .await;
    assert_eq!(alice.expect("ack").await["id"], "s");
    server.shutdown().await;

    // A server without a files directory says so.
    let server = TestServer::start().await;
    let mut alice = server.join("alice").await;
    let error = offer(&mut alice, "f", b"tiny", json!({})).await;
    assert_eq!(error["code"], "files_off", "{error}");
    server.shutdown().await;
}

#[tokio::test]
async fn file_messages_are_history_and_plain_text_users_read_how_to_fetch_them() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(config(&dir)).await;
    let mut alice = server.join("alice").await;
    let mut bob = server.join("bob").await;
    alice.expect("joined").await;
    let id = share(
        &server,
        &mut alice,
        &mut bob,
        "report.pdf",
        &content(2_516_582, 3),
    )
    .await;
    // Replayed to a newcomer like any message.
    let mut carol = server.connect().await;
    carol
        .send(json!({"type":"hello","name":"carol","version":1}))
        .await;
    carol.expect("welcome").await;
    carol.expect("joined").await;
    carol.expect("users").await;
    let history = carol.expect("history").await;
    let m = &history["messages"][0];
    assert_eq!(m["file"]["id"], id);
    assert_eq!(
        m["text"],
        format!("shared report.pdf (2.4 MiB) — /get {id}")
    );
    // nc users see the line with how to fetch it.
    let mut nc = server.connect().await;
    nc.send_raw(b"dave\r\n").await;
    let mut seen = String::new();
    while !seen.contains("natter get") {
        seen = nc.recv_line().await.expect("the replay");
    }
    assert!(
        seen.ends_with(&format!(
            "alice shared report.pdf (2.4 MiB) — natter get {id}"
        )),
        "{seen}"
    );
    server.shutdown().await;
}

/// At start-up the store tidies itself: bytes the database does not know (a crash between moving an
/// upload in and committing its share) and uploads abandoned for over a day are deleted.
#[tokio::test]
async fn stray_bytes_and_abandoned_uploads_are_cleaned_up() {
    let dir = tempfile::tempdir().unwrap();
    let files = dir.path().join("files");
    let sha = "ab".repeat(32);
    let stray = files.join("objects/ab").join(&sha);
    std::fs::create_dir_all(stray.parent().unwrap()).unwrap();
    std::fs::write(&stray, b"nobody's").unwrap();
    std::fs::create_dir_all(files.join("partial")).unwrap();
    let two_days_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(2 * 86_400);
    let old = files.join("partial/0123");
    for path in [old.clone(), old.with_extension("json")] {
        std::fs::write(&path, b"{}").unwrap();
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(two_days_ago)
            .unwrap();
    }
    let recent = files.join("partial/4567");
    std::fs::write(&recent, b"half").unwrap();
    let server = TestServer::start_with(config(&dir)).await;
    let deadline = std::time::Instant::now() + WAIT;
    while stray.exists() || old.exists() || old.with_extension("json").exists() {
        assert!(std::time::Instant::now() < deadline, "not cleaned up");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(recent.exists(), "an upload in progress was deleted");
    server.shutdown().await;
}

/// Cluster mode (issue 17): a file shared through one node is served by another — its bytes are in the
/// cluster's object store, its share in the stream — byte-exact, to members only, and again from the
/// node's own copy after the first fetch.
#[tokio::test]
async fn a_file_shared_on_one_node_is_served_by_another() {
    let nats = natter_server::testing::Nats::start();
    let dir = tempfile::tempdir().unwrap();
    let node = |name: &str| {
        let mut config = natter_server::testing::config();
        config.files.dir = Some(dir.path().join(name).join("files"));
        config.files.reserve = 0;
        config.db = natter_server::store::DbPath::File(dir.path().join(format!("{name}.db")));
        config.cluster = Some(natter_server::cluster::ClusterConfig {
            urls: vec![nats.url.clone()],
            stream: "natter".into(),
        });
        config
    };
    let a = TestServer::start_with(node("a")).await;
    let b = TestServer::start_with(node("b")).await;
    let mut alice = a.join("alice").await;
    let mut bob = b.join("bob").await;
    let bytes = content(3 * CHUNK + 17, 5);
    let ready = offer(&mut alice, "photo.jpg", &bytes, json!({})).await;
    assert_eq!(ready["type"], "upload_ready", "{ready}");
    let done = upload(a.addr, ready["token"].as_str().unwrap(), &bytes).await;
    assert_eq!(done["type"], "uploaded", "{done}");
    let id = done["file"].as_u64().unwrap();
    let m = loop {
        let m = bob.expect("message").await;
        if m["seq"] == id {
            break m;
        }
    };
    assert_eq!(m["file"]["sha256"], sha(&bytes), "{m}");
    assert_eq!(m["file"]["size"], bytes.len());
    let b_objects = dir.path().join("b/files/objects");
    assert!(
        walk(&b_objects).is_empty(),
        "node b has no copy before anyone asks"
    );
    assert_eq!(fetch(b.addr, &mut bob, id).await, bytes, "from node b");
    assert_eq!(walk(&b_objects).len(), 1, "and keeps one after");
    assert_eq!(
        fetch(b.addr, &mut bob, id).await,
        bytes,
        "from b's own copy"
    );
    assert_eq!(fetch(a.addr, &mut alice, id).await, bytes, "from node a");
    // Who may have it is decided on every node: a user of b in no room with it may not.
    let mut carol = b.connect().await;
    carol
        .send(json!({"type":"hello","name":"carol","version":1,"lobby":false}))
        .await;
    carol.sync().await;
    carol.send(json!({"type":"fetch","file":id,"id":"g"})).await;
    let refused = loop {
        let f = carol.recv().await;
        if f["id"] == "g" {
            break f;
        }
    };
    assert_eq!(refused["code"], "forbidden", "{refused}");
    a.shutdown().await;
    b.shutdown().await;
}
