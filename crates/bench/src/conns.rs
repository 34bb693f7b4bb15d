//! Idle connections: C registered clients spread over rooms of 100; how much server memory each costs.
//!
//! One process can hold only as many sockets as its open-file limit allows (20,000 here), so `procs > 1`
//! splits the clients over that many child processes — this same binary, run as `bench conns --child` —
//! and measures the server once every child reports that its share is connected. A child prints one JSON
//! line ([`ChildReport`]) when its clients are registered, then holds them until its stdin closes.

use std::process::Stdio;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::dialect::Dialect;
use crate::BenchError;

#[derive(Debug, Clone, Serialize)]
pub struct ConnsReport {
    pub dialect: Dialect,
    pub clients: usize,
    /// Generator processes the clients were spread over.
    pub procs: usize,
    pub connect_seconds: f64,
    /// Whether natter clients were in the lobby too.
    pub lobby: bool,
    pub server_rss_before_kib: Option<u64>,
    pub server_rss_after_kib: Option<u64>,
    /// (after − before) / clients.
    pub rss_per_connection_bytes: Option<u64>,
}

/// What a child process reports once its share is connected.
#[derive(Debug, Serialize, Deserialize)]
pub struct ChildReport {
    pub connected: usize,
    pub seconds: f64,
}

#[derive(Debug, Clone)]
pub struct ConnsOptions {
    pub server: String,
    pub dialect: Dialect,
    pub clients: usize,
    /// Connections opened at once (per process).
    pub batch: usize,
    pub server_pid: Option<u32>,
    /// Generator processes; 1 = this one.
    pub procs: usize,
    /// Names are `{prefix}c{i}`, so several generators can share a server.
    pub prefix: String,
    /// Show a progress bar (not in child processes, whose bars would overwrite each other).
    pub progress: bool,
    /// natter clients say a plain `hello` and so are in the lobby too (natter's default configuration).
    pub lobby: bool,
    /// Seconds to wait after the last client registered before reading the server's memory, so the join
    /// storm's traffic has been written out.
    pub settle: f64,
}

/// Connects `clients` registered clients from this process, client `i` in room `r{i/100}`. Only the
/// sockets are kept: an idle client should cost the generator little, too.
pub async fn connect_idle(opts: &ConnsOptions) -> Result<Vec<TcpStream>, BenchError> {
    let mut held = Vec::with_capacity(opts.clients);
    let bar = crate::progress(opts.clients, "connecting");
    if !opts.progress {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let indices: Vec<usize> = (0..opts.clients).collect();
    for chunk in indices.chunks(opts.batch.max(1)) {
        let joins = chunk.iter().map(|i| async move {
            opts.dialect
                .connect_as(
                    &opts.server,
                    &format!("{}c{i}", opts.prefix),
                    &format!("{}r{}", opts.prefix, i / 100),
                    opts.lobby,
                )
                .await
        });
        for c in futures::future::join_all(joins).await {
            let c = c?;
            let stream = c
                .read
                .into_inner()
                .reunite(c.write)
                .map_err(|e| BenchError::Register(e.to_string()))?;
            held.push(stream);
            bar.inc(1);
        }
    }
    bar.finish_and_clear();
    Ok(held)
}

/// Runs the scenario; with `procs > 1`, `exe` (this binary) is started that many times as a child.
pub async fn conns(opts: &ConnsOptions, exe: &std::path::Path) -> Result<ConnsReport, BenchError> {
    let before = opts.server_pid.and_then(crate::rss_kib);
    let started = Instant::now();
    let connected;
    let mut held = Vec::new();
    let mut children = Vec::new();
    if opts.procs <= 1 {
        held = connect_idle(opts).await?;
        connected = held.len();
    } else {
        let mut total = 0;
        for k in 0..opts.procs {
            let share = opts.clients / opts.procs + usize::from(k < opts.clients % opts.procs);
            let mut child = tokio::process::Command::new(exe)
                .args(["bench", "conns", "--child", "--server", &opts.server])
                .args(["--clients", &share.to_string()])
                .args(["--batch", &opts.batch.to_string()])
                .args(["--prefix", &format!("{}p{k}", opts.prefix)])
                .args(["--dialect", opts.dialect.as_str()])
                .args(opts.lobby.then_some("--lobby"))
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .kill_on_drop(true)
                .spawn()?;
            let stdout = child.stdout.take().expect("piped");
            children.push((child, BufReader::new(stdout)));
        }
        for (child, out) in &mut children {
            let mut line = String::new();
            out.read_line(&mut line).await?;
            let report: ChildReport = serde_json::from_str(&line).map_err(|_| {
                let status = child.try_wait().ok().flatten();
                BenchError::Register(format!("a generator process failed ({status:?})"))
            })?;
            total += report.connected;
        }
        connected = total;
    }
    let connect_seconds = started.elapsed().as_secs_f64();
    tokio::time::sleep(std::time::Duration::from_secs_f64(opts.settle.max(0.0))).await;
    let after = opts.server_pid.and_then(crate::rss_kib);
    let per = before
        .zip(after)
        .map(|(b, a)| a.saturating_sub(b) * 1024 / connected.max(1) as u64);
    drop(held);
    for (mut child, _) in children {
        // Closing its stdin tells a child to let go of its clients.
        if let Some(mut stdin) = child.stdin.take() {
            let _ = stdin.shutdown().await;
        }
        let _ = child.wait().await;
    }
    Ok(ConnsReport {
        dialect: opts.dialect,
        clients: connected,
        procs: opts.procs.max(1),
        connect_seconds,
        lobby: opts.lobby,
        server_rss_before_kib: before,
        server_rss_after_kib: after,
        rss_per_connection_bytes: per,
    })
}

/// The child's side: connect, report, hold until stdin closes.
pub async fn child(opts: &ConnsOptions) -> Result<(), BenchError> {
    let started = Instant::now();
    let held = connect_idle(opts).await?;
    let report = ChildReport {
        connected: held.len(),
        seconds: started.elapsed().as_secs_f64(),
    };
    println!("{}", serde_json::to_string(&report).unwrap_or_default());
    let mut stdin = BufReader::new(tokio::io::stdin());
    let mut line = String::new();
    while stdin.read_line(&mut line).await.unwrap_or(0) > 0 {
        line.clear();
    }
    drop(held);
    Ok(())
}
