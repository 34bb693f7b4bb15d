//! `kill -9` of the real server binary in the middle of a flood loses no acknowledged message, and seq
//! carries on above everything stored after the restart.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::Child;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader as AsyncBufReader};
use tokio::net::TcpStream;

mod support;

use support::natter;

fn start(db: &std::path::Path) -> (Child, SocketAddr) {
    let mut cmd = natter();
    cmd.args([
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--flood-rate",
        "0",
        "--db",
    ])
    .arg(db);
    support::spawn_server(cmd)
}

/// Registers and returns the connection, past the replay.
async fn hello(
    addr: SocketAddr,
    name: &str,
    resume_after: Option<u64>,
) -> (
    AsyncBufReader<tokio::net::tcp::OwnedReadHalf>,
    tokio::net::tcp::OwnedWriteHalf,
) {
    let (r, mut w) = TcpStream::connect(addr).await.unwrap().into_split();
    let mut hello = json!({"type":"hello","name":name});
    if let Some(s) = resume_after {
        hello["resume_after"] = json!(s);
    }
    w.write_all(format!("{hello}\n").as_bytes()).await.unwrap();
    (AsyncBufReader::new(r), w)
}

async fn next(r: &mut AsyncBufReader<tokio::net::tcp::OwnedReadHalf>) -> Option<Value> {
    let mut line = String::new();
    match tokio::time::timeout(Duration::from_secs(10), r.read_line(&mut line)).await {
        Ok(Ok(n)) if n > 0 && line.ends_with('\n') => Some(serde_json::from_str(&line).unwrap()),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_flood_loses_no_acknowledged_message() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("natter.db");
    let (mut server, addr) = start(&db);

    let acked_total = Arc::new(AtomicUsize::new(0));
    let mut flooders = Vec::new();
    for f in 0..4 {
        let acked_total = acked_total.clone();
        flooders.push(tokio::spawn(async move {
            let name = format!("flood{f}");
            let (mut r, mut w) = hello(addr, &name, None).await;
            let mut acked: HashMap<u64, String> = HashMap::new();
            let mut texts: HashMap<String, String> = HashMap::new();
            let mut n = 0u64;
            'outer: loop {
                // Pipeline a burst, then read until its acks are in (or the server is gone).
                let mut burst = String::new();
                for _ in 0..20 {
                    let id = format!("{name}-{n}");
                    let text = format!("{name} message {n} 消息");
                    texts.insert(id.clone(), text.clone());
                    burst.push_str(&format!("{}\n", json!({"type":"say","text":text,"id":id})));
                    n += 1;
                }
                if w.write_all(burst.as_bytes()).await.is_err() {
                    break;
                }
                let mut pending = 20;
                while pending > 0 {
                    let Some(f) = next(&mut r).await else {
                        break 'outer;
                    };
                    if f["type"] == "ack" {
                        let id = f["id"].as_str().unwrap();
                        acked.insert(f["seq"].as_u64().unwrap(), texts[id].clone());
                        acked_total.fetch_add(1, Ordering::Relaxed);
                        pending -= 1;
                    }
                }
            }
            acked
        }));
    }
    // Let the flood run, then kill the server without warning.
    while acked_total.load(Ordering::Relaxed) < 3000 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.kill().unwrap(); // SIGKILL
    server.wait().unwrap();
    let mut acked: HashMap<u64, String> = HashMap::new();
    for f in flooders {
        acked.extend(f.await.unwrap());
    }
    assert!(acked.len() >= 3000);

    // Restart on the same database and read everything back.
    let (mut server, addr) = start(&db);
    let (mut r, mut w) = hello(addr, "auditor", Some(0)).await;
    w.write_all(b"{\"type\":\"ping\",\"id\":\"end\"}\n")
        .await
        .unwrap();
    let mut stored: HashMap<u64, String> = HashMap::new();
    let mut last_seq = 0;
    loop {
        let f = next(&mut r).await.expect("server answers");
        match f["type"].as_str() {
            Some("welcome") => last_seq = f["last_seq"].as_u64().unwrap(),
            Some("message") => {
                let seq = f["seq"].as_u64().unwrap();
                assert!(
                    stored
                        .insert(seq, f["text"].as_str().unwrap().to_owned())
                        .is_none(),
                    "seq {seq} twice"
                );
            }
            Some("pong") => break,
            _ => {}
        }
    }
    for (seq, text) in &acked {
        assert_eq!(
            stored.get(seq),
            Some(text),
            "acknowledged message {seq} was lost"
        );
    }
    let max_acked = *acked.keys().max().unwrap();
    assert!(last_seq >= max_acked);
    w.write_all(b"{\"type\":\"say\",\"text\":\"after the crash\",\"id\":\"x\"}\n")
        .await
        .unwrap();
    let ack = loop {
        let f = next(&mut r).await.unwrap();
        if f["type"] == "ack" {
            break f;
        }
    };
    assert!(
        ack["seq"].as_u64().unwrap() > last_seq,
        "a seq is never reused"
    );
    server.kill().unwrap();
    server.wait().unwrap();
}
