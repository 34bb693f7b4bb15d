//! What one receiver saw: loss, duplicates and order per sender, and latency.

use std::collections::HashMap;

use hdrhistogram::Histogram;

/// Payloads are `b|SENDER|SEQ|NANOS` — NANOS is when the message was *scheduled* to be sent (relative to
/// the run's start), so a late send counts as latency: coordinated omission is corrected by construction.
pub fn payload(sender: usize, seq: u64, scheduled_ns: u64) -> String {
    format!("b|{sender}|{seq}|{scheduled_ns}")
}

pub fn parse(payload: &str) -> Option<(usize, u64, u64)> {
    let mut parts = payload.split('|');
    if parts.next()? != "b" {
        return None;
    }
    Some((
        parts.next()?.parse().ok()?,
        parts.next()?.parse().ok()?,
        parts.next()?.parse().ok()?,
    ))
}

pub struct Receiver {
    /// Next expected seq per sender.
    next: HashMap<usize, u64>,
    pub received: u64,
    pub duplicates: u64,
    pub out_of_order: u64,
    /// Latency in microseconds.
    pub latency: Histogram<u64>,
}

impl Default for Receiver {
    fn default() -> Self {
        Self {
            next: HashMap::new(),
            received: 0,
            duplicates: 0,
            out_of_order: 0,
            latency: Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds"),
        }
    }
}

impl Receiver {
    pub fn record(&mut self, sender: usize, seq: u64, latency_us: u64) {
        let next = self.next.entry(sender).or_insert(0);
        if seq < *next {
            self.duplicates += 1;
            return;
        }
        if seq > *next {
            self.out_of_order += 1; // a gap: lost, or overtaken (counted as lost if it never comes)
        }
        *next = seq + 1;
        self.received += 1;
        let _ = self.latency.record(latency_us.clamp(1, 600_000_000));
    }

    pub fn merge(&mut self, other: &Receiver) {
        self.received += other.received;
        self.duplicates += other.duplicates;
        self.out_of_order += other.out_of_order;
        let _ = self.latency.add(&other.latency);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_duplicates_and_gaps() {
        let mut r = Receiver::default();
        for (seq, _) in [(0, ()), (1, ()), (1, ()), (3, ())] {
            r.record(7, seq, 100);
        }
        assert_eq!((r.received, r.duplicates, r.out_of_order), (3, 1, 1));
        assert_eq!(parse(&payload(3, 9, 12345)), Some((3, 9, 12345)));
    }
}
