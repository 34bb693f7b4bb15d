//! The load generator against a real natter server: its counts must be exact on a healthy server.

use std::time::Duration;

use natter_bench::{fanout, Dialect, FanoutOptions};
use natter_server::testing::TestServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fanout_counts_every_delivery_exactly() {
    let server = TestServer::start().await;
    let report = fanout(&FanoutOptions {
        server: server.addr.to_string(),
        dialect: Dialect::Native,
        clients: 8,
        senders: 3,
        rate: 100.0,
        duration: Duration::from_millis(500),
        room: "bench".into(),
        room_size: None,
        connect_batch: 4,
        server_pid: None,
    })
    .await
    .unwrap();
    assert_eq!(report.sent, 150);
    assert_eq!(report.expected, 150 * 7);
    assert_eq!(report.delivered, report.expected);
    assert_eq!(
        (report.lost, report.duplicates, report.out_of_order),
        (0, 0, 0)
    );
    assert_eq!(report.cut, 0, "nobody was disconnected");
    assert!(report.latency.max_us > 0);
}

/// Against a cluster's two nodes, in rooms of 4: the clients are spread over both nodes (every room has
/// members on each), and the counts are still exact — every message reaches every other member of its
/// sender's room once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fanout_spreads_over_a_clusters_nodes_and_rooms() {
    let nats = natter_server::testing::Nats::start();
    let dir = tempfile::tempdir().unwrap();
    let node = |name: &str| natter_server::Config {
        db: natter_server::store::DbPath::File(dir.path().join(format!("{name}.db"))),
        cluster: Some(natter_server::cluster::ClusterConfig {
            urls: vec![nats.url.clone()],
            stream: "natter".into(),
        }),
        ..natter_server::testing::config()
    };
    let a = TestServer::start_with(node("a")).await;
    let b = TestServer::start_with(node("b")).await;
    let opts = FanoutOptions {
        server: format!("{},{}", a.addr, b.addr),
        dialect: Dialect::Native,
        clients: 12,
        senders: 3,
        rate: 50.0,
        duration: Duration::from_millis(400),
        room: "r".into(),
        room_size: Some(4),
        connect_batch: 4,
        server_pid: None,
    };
    assert_eq!(opts.rooms(), 3);
    assert_eq!(
        (opts.room_of(0), opts.room_of(4)),
        ("r0".into(), "r1".into())
    );
    let report = fanout(&opts).await.unwrap();
    assert_eq!(report.sent, 60);
    assert_eq!(report.expected, 60 * 3, "each sender's room has 3 others");
    assert_eq!(report.delivered, report.expected);
    assert_eq!(
        (report.lost, report.duplicates, report.out_of_order),
        (0, 0, 0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_scenario_connects_everyone() {
    let server = TestServer::start().await;
    let opts = natter_bench::conns::ConnsOptions {
        server: server.addr.to_string(),
        dialect: Dialect::Native,
        clients: 150,
        batch: 25,
        server_pid: Some(std::process::id()),
        procs: 1,
        prefix: String::new(),
        progress: false,
        lobby: true,
        settle: 0.0,
    };
    let report = natter_bench::conns::conns(&opts, std::path::Path::new("unused"))
        .await
        .unwrap();
    assert_eq!(report.clients, 150);
    assert!(report.server_rss_after_kib.is_some());
}

/// The trivial relay passes every line to every other client, whole and in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_trivial_relay_delivers_every_line_to_everyone_else() {
    let listener = natter_server::bind("127.0.0.1:0".parse().unwrap(), 128).unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(natter_bench::relay::run(listener));
    let report = fanout(&FanoutOptions {
        server: addr.to_string(),
        dialect: Dialect::Lines,
        clients: 6,
        senders: 2,
        rate: 100.0,
        duration: Duration::from_millis(500),
        room: "bench".into(),
        room_size: None,
        connect_batch: 6,
        server_pid: None,
    })
    .await
    .unwrap();
    assert_eq!(report.sent, 100);
    assert_eq!(report.delivered, report.expected);
    assert_eq!(
        (report.lost, report.duplicates, report.out_of_order),
        (0, 0, 0)
    );
}
