//! Idle connections: C registered clients spread over rooms of 100; how much server memory each costs.

use std::time::Instant;

use serde::Serialize;

use crate::dialect::Dialect;
use crate::BenchError;

#[derive(Debug, Clone, Serialize)]
pub struct ConnsReport {
    pub dialect: Dialect,
    pub clients: usize,
    pub connect_seconds: f64,
    pub server_rss_before_kib: Option<u64>,
    pub server_rss_after_kib: Option<u64>,
    /// (after − before) / clients.
    pub rss_per_connection_bytes: Option<u64>,
}

pub async fn conns(
    server: &str,
    dialect: Dialect,
    clients: usize,
    batch: usize,
    server_pid: Option<u32>,
) -> Result<ConnsReport, BenchError> {
    let before = server_pid.and_then(crate::rss_kib);
    let started = Instant::now();
    let mut held = Vec::with_capacity(clients);
    let bar = crate::progress(clients, "connecting");
    for chunk in (0..clients).collect::<Vec<_>>().chunks(batch.max(1)) {
        let joins = chunk.iter().map(|i| async move {
            dialect
                .connect(server, &format!("c{i}"), &format!("r{}", i / 100))
                .await
        });
        for c in futures::future::join_all(joins).await {
            held.push(c?);
            bar.inc(1);
        }
    }
    bar.finish_and_clear();
    let connect_seconds = started.elapsed().as_secs_f64();
    let after = server_pid.and_then(crate::rss_kib);
    let per = before
        .zip(after)
        .map(|(b, a)| a.saturating_sub(b) * 1024 / clients.max(1) as u64);
    drop(held);
    Ok(ConnsReport {
        dialect,
        clients,
        connect_seconds,
        server_rss_before_kib: before,
        server_rss_after_kib: after,
        rss_per_connection_bytes: per,
    })
}
