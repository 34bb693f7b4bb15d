//! What the server counts for Prometheus (`/metrics`), and how it is rendered.
//!
//! Counters are process-wide (one server per process; tests that start several read differences): the
//! store's writer thread, the hub's fan-out, the outboxes and the sessions all count into them without
//! being handed anything. Each count is one relaxed atomic add, made once per batch where a batch exists
//! (a commit's stored messages, a fan-out's deliveries, a socket write's bytes), never per recipient.
//! `natter serve --metrics off` turns counting off altogether, so the bench can compare (README,
//! "Performance").
//!
//! Gauges (connections, users, rooms, sizes, the process's memory, CPU and descriptors) are read when the
//! endpoint is scraped, so they cost nothing in between.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock};

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use natter_proto::ServerFrame;

use crate::session::Shared;

/// A label set with one label, e.g. `reason="too_slow"`.
type Label = [(&'static str, &'static str); 1];

/// Everything counted between scrapes.
pub struct Metrics {
    /// Messages stored (each one seq).
    pub stored: Counter,
    /// Messages queued to connections (one per recipient session).
    pub deliveries: Counter,
    /// Bytes read from clients' connections.
    pub bytes_in: Counter,
    /// Bytes written to clients' connections.
    pub bytes_out: Counter,
    /// Outboxes that overflowed (their clients were cut off as `too_slow`).
    pub overflows: Counter,
    /// Errors logged.
    errors: Counter,
    /// Connections that ended, by why.
    disconnects: Family<Label, Counter>,
    /// Connections refused before they were served, by why.
    refusals: Family<Label, Counter>,
    /// How long the store took to commit a batch, in seconds.
    pub commit_seconds: Histogram,
    /// Messages a replay (a hello's or a join's recent history) sent.
    pub replay_messages: Histogram,
}

static COUNTING: AtomicBool = AtomicBool::new(true);

static METRICS: LazyLock<Metrics> = LazyLock::new(|| Metrics {
    stored: Counter::default(),
    deliveries: Counter::default(),
    bytes_in: Counter::default(),
    bytes_out: Counter::default(),
    overflows: Counter::default(),
    errors: Counter::default(),
    disconnects: Family::default(),
    refusals: Family::default(),
    // 50 µs … ~3 s.
    commit_seconds: Histogram::new(exponential_buckets(0.000_05, 3.0, 11)),
    // 1 … 1024 messages.
    replay_messages: Histogram::new(exponential_buckets(1.0, 4.0, 6)),
});

/// The counters, unless counting is off (`--metrics off`).
pub fn counting() -> Option<&'static Metrics> {
    COUNTING
        .load(Ordering::Relaxed)
        .then(|| LazyLock::force(&METRICS))
}

/// Turns counting on or off for the whole process.
pub fn set_counting(on: bool) {
    COUNTING.store(on, Ordering::Relaxed);
}

/// The last error logged, for `status`.
static LAST_ERROR: std::sync::Mutex<Option<natter_proto::frame::LastError>> =
    std::sync::Mutex::new(None);

/// Remembers an error the server logged (the binary's log layer calls this for every `ERROR` event), for
/// `status` and `natter_errors_total`.
pub fn error_logged(text: String) {
    if let Some(m) = counting() {
        m.errors.inc();
    }
    let at = natter_proto::time::now_wire();
    *LAST_ERROR.lock().unwrap_or_else(|e| e.into_inner()) =
        Some(natter_proto::frame::LastError { at, text });
}

/// The last error logged, if any.
pub fn last_error() -> Option<natter_proto::frame::LastError> {
    LAST_ERROR.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// Counts a connection that ended (`reason`: a `left` reason, or `unregistered`).
pub fn disconnected(reason: &'static str) {
    if let Some(m) = counting() {
        m.disconnects.get_or_create(&[("reason", reason)]).inc();
    }
}

/// Counts a connection refused (`reason`: the error code it was told).
pub fn refused(reason: &'static str) {
    if let Some(m) = counting() {
        m.refusals.get_or_create(&[("reason", reason)]).inc();
    }
}

/// The Prometheus text format of everything: the counters, and gauges read now. `None` when counting
/// is off.
pub async fn render(shared: &Arc<Shared>) -> Option<String> {
    let m = counting()?;
    let mut registry = Registry::with_prefix("natter");
    registry.register("messages_stored", "Messages stored", m.stored.clone());
    registry.register(
        "deliveries",
        "Messages queued to connections (one per recipient session)",
        m.deliveries.clone(),
    );
    registry.register(
        "received_bytes",
        "Bytes read from clients",
        m.bytes_in.clone(),
    );
    registry.register(
        "sent_bytes",
        "Bytes written to clients",
        m.bytes_out.clone(),
    );
    registry.register(
        "outbox_overflows",
        "Outboxes that overflowed (clients cut off as too slow)",
        m.overflows.clone(),
    );
    registry.register(
        "errors",
        "Errors logged (natter status shows the last one)",
        m.errors.clone(),
    );
    registry.register(
        "disconnects",
        "Connections that ended, by reason (exit, disconnect, too_slow, timeout, excess_flood, unregistered)",
        m.disconnects.clone(),
    );
    registry.register(
        "refusals",
        "Connections refused, by reason (server_full, too_many_connections, banned, tls_required)",
        m.refusals.clone(),
    );
    registry.register(
        "store_commit_seconds",
        "Time the store took to commit a batch of messages",
        m.commit_seconds.clone(),
    );
    registry.register(
        "replay_messages",
        "Messages sent by one replay (recent history on hello or join)",
        m.replay_messages.clone(),
    );
    gauges(&mut registry, shared).await;
    let mut text = String::new();
    encode(&mut text, &registry).ok()?;
    Some(text)
}

/// What `natter status` says, the file store's size, and the process's resources.
async fn gauges(registry: &mut Registry, shared: &Arc<Shared>) {
    let gauge = |registry: &mut Registry, name: &str, help: &str, value: i64| {
        let g: Gauge = Gauge::default();
        g.set(value);
        registry.register(name, help, g);
    };
    if let ServerFrame::Status {
        uptime_s,
        connections,
        users,
        rooms,
        last_seq,
        db_bytes,
        ..
    } = shared.status()
    {
        let by_front: Family<Vec<(String, String)>, Gauge> = Family::default();
        for (front, n) in &connections {
            by_front
                .get_or_create(&vec![("front_end".to_owned(), front.clone())])
                .set(*n as i64);
        }
        registry.register("connections", "Open connections, by front end", by_front);
        gauge(registry, "users", "Names signed in", users as i64);
        gauge(
            registry,
            "rooms",
            "Rooms with someone in them",
            rooms as i64,
        );
        gauge(
            registry,
            "last_seq",
            "The highest seq assigned: messages stored so far",
            last_seq as i64,
        );
        gauge(
            registry,
            "uptime_seconds",
            "Seconds since the server started",
            uptime_s as i64,
        );
        if let Some(bytes) = db_bytes {
            gauge(
                registry,
                "database_bytes",
                "The history database on disk",
                bytes as i64,
            );
        }
    }
    gauge(
        registry,
        "registered_users",
        "Owned names (accounts)",
        shared.hub.owned_count() as i64,
    );
    if let Ok((_, stored)) = shared.history.file_usage(String::new()).await {
        gauge(
            registry,
            "file_store_bytes",
            "Bytes in the shared files' content store",
            stored as i64,
        );
    }
    let process = Process::read();
    if let Some(bytes) = process.rss_bytes {
        gauge(
            registry,
            "process_resident_memory_bytes",
            "Resident memory",
            bytes,
        );
    }
    if let Some(fds) = process.open_fds {
        gauge(registry, "process_open_fds", "Open file descriptors", fds);
    }
    if let Some(secs) = process.cpu_seconds {
        let c: Counter<f64, std::sync::atomic::AtomicU64> = Counter::default();
        c.inc_by(secs);
        registry.register("process_cpu_seconds", "CPU time used (user and system)", c);
    }
}

/// The process's resources, from `/proc` (Linux; `None` elsewhere).
struct Process {
    rss_bytes: Option<i64>,
    open_fds: Option<i64>,
    cpu_seconds: Option<f64>,
}

impl Process {
    fn read() -> Self {
        let rss_bytes = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmRSS:"))?
                    .split_whitespace()
                    .nth(1)?
                    .parse::<i64>()
                    .ok()
            })
            .map(|kib| kib * 1024);
        let open_fds = std::fs::read_dir("/proc/self/fd")
            .ok()
            .map(|d| d.count() as i64);
        // utime and stime, the 14th and 15th fields, after the command name in parentheses; in clock
        // ticks, which Linux fixes at 100 a second for user space.
        let cpu_seconds = std::fs::read_to_string("/proc/self/stat")
            .ok()
            .and_then(|s| {
                let rest = &s[s.rfind(')')? + 1..];
                let fields: Vec<&str> = rest.split_whitespace().collect();
                let ticks =
                    fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
                Some(ticks as f64 / 100.0)
            });
        Self {
            rss_bytes,
            open_fds,
            cpu_seconds,
        }
    }
}
