//! natter-bench: a load generator that measures a chat server from the outside.
//!
//! * [`dialect`]: how to register, join, send and recognise a message — natter's JSON lines, or IRC
//!   (NICK/USER/JOIN/PRIVMSG), so the same scenarios run against ngIRCd or InspIRCd.
//! * [`fanout`]: C clients in one room, S of them sending at R messages per second each for D seconds;
//!   every receiver checks loss, duplicates and per-sender order, and records latency in an HDR histogram
//!   with coordinated-omission correction. [`maxrate`] raises R until p99 passes a bound or anything is lost.
//! * [`files`]: shared files — upload and download against a raw pipe, server memory, chat latency beside
//!   a transfer, many uploads at once.
//! * [`conns`]: C idle registered clients spread over rooms; the server's memory per connection.
//! * [`relay`]: a trivial relay (whole lines to everyone else, nothing parsed or stored), the floor that
//!   fan-out figures are compared with.
//!
//! Every payload carries its sender, its sequence number and its send time. The generator reports its own
//! CPU use, so a saturated generator (not the server) is visible in the results.

pub mod conns;
pub mod dialect;
pub mod fanout;
pub mod files;
pub mod maxrate;
pub mod plot;
pub mod relay;
mod stats;
pub mod summary;

pub use dialect::Dialect;
pub use fanout::{fanout, FanoutOptions, FanoutReport};

use std::time::Duration;

/// Why a run could not be carried out.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("registration failed: {0}")]
    Register(String),
    #[error("connection lost during the run: {0}")]
    Io(#[from] std::io::Error),
    #[error("timed out: {0}")]
    Timeout(String),
}

/// Connects to `addr`, saying where on failure.
pub(crate) async fn connect(addr: &str) -> Result<tokio::net::TcpStream, BenchError> {
    tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|source| BenchError::Connect {
            addr: addr.to_owned(),
            source,
        })
}

/// A progress bar on stderr for long setups (hidden when stderr is not a terminal).
pub(crate) fn progress(len: usize, what: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(len as u64);
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} ({elapsed})")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what.to_owned());
    bar
}

/// The generator's own CPU time so far (user + system), from /proc/self/stat.
pub fn own_cpu() -> Duration {
    cpu_of("self")
}

/// CPU time of a process (`"self"` or a pid), from /proc.
pub fn cpu_of(pid: &str) -> Duration {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return Duration::ZERO;
    };
    let Some(after) = stat.rfind(')').map(|i| &stat[i + 2..]) else {
        return Duration::ZERO;
    };
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = fields.get(11).and_then(|v| v.parse().ok()).unwrap_or(0)
        + fields.get(12).and_then(|v| v.parse().ok()).unwrap_or(0);
    Duration::from_millis(ticks * 10) // USER_HZ is 100 on Linux
}

/// Resident memory of a process in KiB, from /proc.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}
