//! A trivial relay: the floor under any chat server's fan-out on this machine.
//!
//! Every line a client sends goes to every other client, and nothing else happens: no registration, no
//! parsing beyond finding the last newline of what was read (so only whole lines are forwarded), no
//! storage, no acks. Each connection has a reader and a writer task, and a writer sends everything queued
//! since its last wake-up in one write — the same kernel work per delivery a real server pays. A client
//! with more than [`QUEUE`] chunks waiting is dropped. Speak to
//! it with `--dialect lines` (its first line, the "name", is relayed like any other).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

type Peers = Arc<Mutex<HashMap<u64, mpsc::Sender<Bytes>>>>;

/// Chunks queued for one client before it counts as too slow and is dropped (so an overloaded relay
/// sheds clients instead of memory — as natter does with `too_slow`).
const QUEUE: usize = 4096;

/// Relays on `listener` until the process ends.
pub async fn run(listener: TcpListener) -> std::io::Result<()> {
    let peers: Peers = Arc::default();
    let mut next_id = 0u64;
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        next_id += 1;
        let id = next_id;
        let (tx, mut rx) = mpsc::channel::<Bytes>(QUEUE);
        peers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, tx);
        let (mut read, mut write) = stream.into_split();
        tokio::spawn(async move {
            let mut buf = Vec::new();
            while let Some(first) = rx.recv().await {
                buf.clear();
                buf.extend_from_slice(&first);
                while let Ok(more) = rx.try_recv() {
                    buf.extend_from_slice(&more);
                }
                if write.write_all(&buf).await.is_err() {
                    break;
                }
            }
        });
        let peers = peers.clone();
        tokio::spawn(async move {
            let mut pending = BytesMut::with_capacity(16 * 1024);
            loop {
                match read.read_buf(&mut pending).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
                let Some(end) = memchr::memrchr(b'\n', &pending) else {
                    continue;
                };
                let lines = pending.split_to(end + 1).freeze();
                peers
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .retain(|other, tx| *other == id || tx.try_send(lines.clone()).is_ok());
                if pending.capacity() < 4096 {
                    pending.reserve(16 * 1024);
                }
            }
            peers.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
        });
    }
}
