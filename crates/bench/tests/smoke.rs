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
