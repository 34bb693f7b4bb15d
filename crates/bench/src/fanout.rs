//! The fan-out scenario: C clients in one room (or in rooms of N), S senders at R messages per second
//! each, the clients spread over one server or several (the nodes of a cluster).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
use tokio::sync::watch;

use crate::dialect::{Conn, Dialect};
use crate::stats::{self, Receiver};
use crate::BenchError;

#[derive(Debug, Clone)]
pub struct FanoutOptions {
    /// One server, or several comma-separated (a cluster's nodes): the clients are spread evenly, and
    /// every room has members on every server.
    pub server: String,
    pub dialect: Dialect,
    pub clients: usize,
    pub senders: usize,
    /// Messages per second, per sender.
    pub rate: f64,
    pub duration: Duration,
    /// The room everyone is in (without `#`); with `room_size`, the rooms' common prefix.
    pub room: String,
    /// Rooms of this many clients instead of one room (client `i` is in room `i mod rooms`, so the
    /// senders — the first clients — are spread over the rooms).
    pub room_size: Option<usize>,
    /// Connections opened at once while setting up.
    pub connect_batch: usize,
    /// The server's pid, to report its CPU use.
    pub server_pid: Option<u32>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct FanoutReport {
    pub dialect: Dialect,
    pub clients: usize,
    pub senders: usize,
    pub rate_per_sender: f64,
    /// Messages per second offered in total.
    pub offered: f64,
    pub sent: u64,
    /// sent × (clients − 1): every other member should get every message.
    pub expected: u64,
    pub delivered: u64,
    pub lost: u64,
    pub duplicates: u64,
    pub out_of_order: u64,
    /// Connections the server closed during the run (a sender or receiver cut as too slow).
    pub cut: u64,
    /// Deliveries per second over the sending period.
    pub deliveries_per_sec: f64,
    pub latency: Latency,
    /// The generator's own CPU, in cores: near 1.0 (or 2.0) means the generator, not the server, is the limit.
    pub generator_cpu: f64,
    pub server_cpu: Option<f64>,
    pub seconds: f64,
}

impl FanoutOptions {
    /// How many rooms the clients are in.
    pub fn rooms(&self) -> usize {
        self.room_size
            .map_or(1, |n| self.clients.div_ceil(n.max(1)))
            .max(1)
    }

    /// The room of client `i`.
    pub fn room_of(&self, i: usize) -> String {
        match self.room_size {
            Some(_) => format!("{}{}", self.room, i % self.rooms()),
            None => self.room.clone(),
        }
    }

    /// How many clients are in client `i`'s room.
    fn members_with(&self, i: usize) -> usize {
        let (rooms, room) = (self.rooms(), i % self.rooms());
        self.clients / rooms + usize::from(room < self.clients % rooms)
    }

    /// The server client `i` connects to: a room's members go round the servers.
    fn server_of(&self, i: usize) -> &str {
        let servers: Vec<&str> = self
            .server
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        match servers.len() {
            0 => &self.server,
            n => servers[(i / self.rooms()) % n],
        }
    }
}

/// Runs one fan-out measurement.
pub async fn fanout(opts: &FanoutOptions) -> Result<FanoutReport, BenchError> {
    // Set up: everyone registered and in the room before anyone sends. Names are new for every run, so
    // runs can follow each other while the server is still saying goodbye to the last one.
    static RUN: AtomicU64 = AtomicU64::new(0);
    let run = RUN.fetch_add(1, Ordering::Relaxed);
    let pid = std::process::id();
    let mut conns: Vec<Conn> = Vec::with_capacity(opts.clients);
    let bar = crate::progress(opts.clients, "connecting");
    for chunk in (0..opts.clients)
        .collect::<Vec<_>>()
        .chunks(opts.connect_batch.max(1))
    {
        let batch = chunk.iter().map(|i| async move {
            let name = format!("b{pid}x{run}x{i}");
            opts.dialect
                .connect(opts.server_of(*i), &name, &opts.room_of(*i))
                .await
        });
        for c in futures::future::join_all(batch).await {
            conns.push(c?);
            bar.inc(1);
        }
    }
    bar.finish_and_clear();
    let epoch = Instant::now();
    let (stop_tx, stop_rx) = watch::channel(false);
    let delivered = Arc::new(AtomicU64::new(0));
    let cut = Arc::new(AtomicU64::new(0));
    let mut readers = Vec::new();
    let mut writers = Vec::new();
    for (i, conn) in conns.into_iter().enumerate() {
        let Conn { read, write } = conn;
        readers.push(tokio::spawn(receive(
            read,
            opts.dialect,
            epoch,
            stop_rx.clone(),
            delivered.clone(),
            cut.clone(),
        )));
        writers.push((i, write));
    }
    let cpu0 = crate::own_cpu();
    let server_cpu0 = opts.server_pid.map(|p| crate::cpu_of(&p.to_string()));
    let started = Instant::now();
    let mut senders = Vec::new();
    let mut idle_writers = Vec::new();
    for (i, write) in writers {
        if i < opts.senders {
            senders.push((i, tokio::spawn(send(write, i, opts.clone(), epoch))));
        } else {
            idle_writers.push(write);
        }
    }
    let (mut sent, mut expected) = (0, 0);
    for (i, s) in senders {
        let (n, write) = s.await.map_err(|e| BenchError::Timeout(e.to_string()))?;
        sent += n;
        // Every other member of the sender's room should get every message.
        expected += n * (opts.members_with(i) as u64 - 1);
        match write {
            // Kept open until the run ends: closing would make the server announce a leave mid-measurement.
            Some(write) => idle_writers.push(write),
            // The server closed it (past the knee a sender that cannot keep up with its own room's
            // traffic is cut as too slow): counted, and its undelivered messages count as lost.
            None => {
                cut.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    let sending = started.elapsed();
    // Drain: wait until everything arrived, or 5 s without progress.
    let mut last = 0;
    let mut last_change = Instant::now();
    while delivered.load(Ordering::Relaxed) < expected
        && last_change.elapsed() < Duration::from_secs(5)
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let now = delivered.load(Ordering::Relaxed);
        if now != last {
            last = now;
            last_change = Instant::now();
        }
    }
    let total = started.elapsed();
    let cpu = crate::own_cpu().saturating_sub(cpu0);
    let server_cpu = opts
        .server_pid
        .zip(server_cpu0)
        .map(|(p, c0)| crate::cpu_of(&p.to_string()).saturating_sub(c0));
    let _ = stop_tx.send(true);
    let mut all = Receiver::default();
    for r in readers {
        if let Ok(r) = r.await {
            all.merge(&r);
        }
    }
    drop(idle_writers);
    let q = |p: f64| all.latency.value_at_quantile(p);
    Ok(FanoutReport {
        dialect: opts.dialect,
        clients: opts.clients,
        senders: opts.senders,
        rate_per_sender: opts.rate,
        offered: opts.rate * opts.senders as f64,
        sent,
        expected,
        delivered: all.received,
        lost: expected.saturating_sub(all.received),
        duplicates: all.duplicates,
        out_of_order: all.out_of_order,
        cut: cut.load(Ordering::Relaxed),
        deliveries_per_sec: all.received as f64 / sending.as_secs_f64().max(1e-9),
        latency: Latency {
            p50_us: q(0.5),
            p90_us: q(0.9),
            p99_us: q(0.99),
            max_us: all.latency.max(),
        },
        generator_cpu: cpu.as_secs_f64() / total.as_secs_f64(),
        server_cpu: server_cpu.map(|c| c.as_secs_f64() / total.as_secs_f64()),
        seconds: sending.as_secs_f64(),
    })
}

/// How late a send may be, due to the timer's resolution, before it counts against the server.
const TIMER_SLACK: Duration = Duration::from_millis(2);

/// One sender: every millisecond or so, writes all messages that have come due since, in one write.
async fn send(
    mut write: tokio::net::tcp::OwnedWriteHalf,
    me: usize,
    opts: FanoutOptions,
    epoch: Instant,
) -> (u64, Option<tokio::net::tcp::OwnedWriteHalf>) {
    let start = Instant::now();
    let total = (opts.rate * opts.duration.as_secs_f64()).round() as u64;
    let interval = Duration::from_secs_f64(1.0 / opts.rate.max(1e-9));
    // Stagger senders across one interval so they do not all fire together.
    let offset = interval.mul_f64(me as f64 / opts.senders.max(1) as f64);
    let mut seq = 0u64;
    let room = opts.room_of(me);
    let mut buf = Vec::with_capacity(64 * 1024);
    let mut tick = tokio::time::interval(Duration::from_millis(1).min(interval));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    while seq < total {
        tick.tick().await;
        let due = ((start.elapsed().saturating_sub(offset)).as_secs_f64() / interval.as_secs_f64())
            .floor() as u64
            + 1;
        buf.clear();
        let now = Instant::now();
        while seq < due.min(total) {
            let scheduled = start + offset + interval.mul_f64(seq as f64);
            // Latency counts from the schedule (coordinated omission corrected) — except lateness below
            // the timer's 1 ms resolution, which is the generator's own and would swamp sub-ms latencies.
            let stamp = if now.saturating_duration_since(scheduled) <= TIMER_SLACK {
                now
            } else {
                scheduled
            };
            let ns = stamp.duration_since(epoch).as_nanos() as u64;
            opts.dialect
                .encode(&room, &stats::payload(me, seq, ns), &mut buf);
            seq += 1;
        }
        if !buf.is_empty() && write.write_all(&buf).await.is_err() {
            return (seq, None);
        }
    }
    (seq, Some(write))
}

/// One receiver: counts and times every payload until told to stop. Cheap on purpose: everything that
/// arrived in one read is handled as one chunk (one clock reading, one shared-counter update), because the
/// generator must stay faster than the servers it measures.
async fn receive(
    mut read: tokio::io::BufReader<tokio::net::tcp::OwnedReadHalf>,
    dialect: Dialect,
    epoch: Instant,
    mut stop: watch::Receiver<bool>,
    delivered: Arc<AtomicU64>,
    cut: Arc<AtomicU64>,
) -> Receiver {
    let mut r = Receiver::default();
    // The start of a line whose end has not arrived yet.
    let mut carry: Vec<u8> = Vec::new();
    loop {
        let chunk = tokio::select! {
            _ = stop.changed() => return r,
            chunk = read.fill_buf() => match chunk {
                Ok([]) | Err(_) => {
                    cut.fetch_add(1, Ordering::Relaxed);
                    return r;
                }
                Ok(chunk) => chunk,
            },
        };
        let now = epoch.elapsed().as_nanos() as u64;
        let mut count = 0;
        let mut rest = chunk;
        while let Some(end) = memchr::memchr(b'\n', rest) {
            let line = if carry.is_empty() {
                &rest[..end]
            } else {
                carry.extend_from_slice(&rest[..end]);
                &carry[..]
            };
            if let Some((sender, seq, ns)) = dialect.payload(line).and_then(stats::parse) {
                r.record(sender, seq, now.saturating_sub(ns) / 1000);
                count += 1;
            }
            carry.clear();
            rest = &rest[end + 1..];
        }
        carry.extend_from_slice(rest);
        let used = chunk.len();
        read.consume(used);
        if count > 0 {
            delivered.fetch_add(count, Ordering::Relaxed);
        }
    }
}
