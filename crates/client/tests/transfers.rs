//! File transfers through the client library across dropped connections: cut at random points (both
//! the chat connection and the transfer's), they resume by themselves and arrive whole, verified.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Proxy, TestServer};
use natter_client::chat::{Backoff, Chat, ChatOptions};
use natter_client::transfer::{self, Dest};
use proptest::strategy::{Strategy, ValueTree};

fn options(server: std::net::SocketAddr, name: &str) -> ChatOptions {
    let mut options = ChatOptions {
        backoff: Backoff {
            initial: Duration::from_millis(20),
            max: Duration::from_millis(200),
            attempts: Some(200),
        },
        ..ChatOptions::new(server.to_string(), name)
    };
    options.tls.off = true;
    options
}

/// Cuts every connection through `proxy` each time progress passes the next of `points` (bytes), so
/// cuts land at chosen places; and counts the times a transfer started over from nothing after a cut
/// (which resuming never does).
fn cutter(
    points: Vec<u64>,
    proxy: Arc<Proxy>,
    restarts: Arc<AtomicU64>,
) -> impl Fn(u64, u64) + Send + Sync {
    let next = AtomicU64::new(0);
    let points = Mutex::new(points);
    move |done, _total| {
        let points = points.lock().unwrap();
        let i = next.load(Ordering::SeqCst) as usize;
        if i > 0 && done == 0 {
            restarts.fetch_add(1, Ordering::SeqCst);
        }
        if i < points.len() && done >= points[i] {
            next.store(i as u64 + 1, Ordering::SeqCst);
            proxy.cut();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfers_cut_at_random_points_resume_and_arrive_whole() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = natter_server::testing::config();
    config.files.dir = Some(dir.path().join("files"));
    config.files.reserve = 0;
    let server = TestServer::start_with(config).await;
    let up = Arc::new(Proxy::start(server.addr, None).await);
    let down = Arc::new(Proxy::start(server.addr, None).await);

    let size = 6 << 20;
    let bytes: Vec<u8> = (0..size)
        .map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let path = dir.path().join("photo.jpg");
    std::fs::write(&path, &bytes).unwrap();
    // Three cut points for each direction, drawn by proptest.
    let mut runner = proptest::test_runner::TestRunner::default();
    let mut points = |_| {
        let mut p = proptest::collection::vec(1..size as u64, 3)
            .new_tree(&mut runner)
            .unwrap()
            .current();
        p.sort();
        p
    };
    let (up_cuts, down_cuts) = (points(0), points(1));

    let restarts = Arc::new(AtomicU64::new(0));
    let alice = Chat::connect(options(up.addr, "alice")).await.unwrap();
    let bob = Chat::connect(options(down.addr, "bob")).await.unwrap();
    let shared = transfer::send(
        &alice.requester(),
        &path,
        Some("lobby".into()),
        None,
        &cutter(up_cuts.clone(), up.clone(), restarts.clone()),
    )
    .await
    .unwrap_or_else(|e| panic!("upload with cuts at {up_cuts:?}: {e}"));
    assert_eq!(
        (shared.name.as_str(), shared.size),
        ("photo.jpg", size as u64)
    );

    let downloads = dir.path().join("downloads");
    let got = transfer::get(
        &bob.requester(),
        shared.id,
        &Dest::Dir(downloads.clone()),
        &cutter(down_cuts.clone(), down.clone(), restarts.clone()),
    )
    .await
    .unwrap_or_else(|e| panic!("download with cuts at {down_cuts:?}: {e}"));
    assert_eq!(got.path, downloads.join("photo.jpg"));
    assert!(
        std::fs::read(&got.path).unwrap() == bytes,
        "the file changed on the way"
    );
    assert_eq!(
        restarts.load(Ordering::SeqCst),
        0,
        "a transfer started over after a cut"
    );
    // A damaged partial download is caught by the check, not kept.
    let part = downloads.join(format!(
        ".natter-{}-{}.part",
        shared.id,
        &got.info.sha256[..16]
    ));
    let mut damaged = bytes.clone();
    damaged[100] ^= 1;
    std::fs::write(&part, &damaged).unwrap();
    let error = transfer::get(
        &bob.requester(),
        shared.id,
        &Dest::Dir(downloads.clone()),
        &|_, _| {},
    )
    .await
    .unwrap_err();
    assert!(
        matches!(error, transfer::TransferError::Corrupt(_)),
        "{error:?}"
    );
    assert!(!part.exists());
    server.shutdown().await;
}
