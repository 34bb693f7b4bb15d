//! What one receiver saw: loss, duplicates and order per sender, and latency.

use hdrhistogram::Histogram;

/// Payloads are `b|SENDER|SEQ|NANOS` — NANOS is when the message was *scheduled* to be sent (relative to
/// the run's start), so a late send counts as latency: coordinated omission is corrected by construction.
pub fn payload(sender: usize, seq: u64, scheduled_ns: u64) -> String {
    format!("b|{sender}|{seq}|{scheduled_ns}")
}

/// Parses a payload by hand: this runs once per delivered line, millions of times a second.
pub fn parse(payload: &[u8]) -> Option<(usize, u64, u64)> {
    let rest = payload.strip_prefix(b"b|")?;
    let (sender, rest) = number(rest)?;
    let (seq, rest) = number(rest.strip_prefix(b"|")?)?;
    let (ns, rest) = number(rest.strip_prefix(b"|")?)?;
    rest.is_empty()
        .then_some((usize::try_from(sender).ok()?, seq, ns))
}

/// A decimal number at the start of `bytes`, and what follows it.
fn number(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let digits = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || digits > 19 {
        return None;
    }
    let value = bytes[..digits]
        .iter()
        .fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
    Some((value, &bytes[digits..]))
}

pub struct Receiver {
    /// Next expected seq per sender (senders are numbered from 0, so a vector is the map).
    next: Vec<u64>,
    pub received: u64,
    pub duplicates: u64,
    pub out_of_order: u64,
    /// Latency in microseconds.
    pub latency: Histogram<u64>,
}

impl Default for Receiver {
    fn default() -> Self {
        Self {
            next: Vec::new(),
            received: 0,
            duplicates: 0,
            out_of_order: 0,
            // Two significant digits (1% steps) up to 10 minutes: small enough that a thousand
            // receivers' histograms stay in cache (three digits made recording the generator's top cost).
            latency: Histogram::new_with_bounds(1, 600_000_000, 2).expect("valid histogram bounds"),
        }
    }
}

impl Receiver {
    pub fn record(&mut self, sender: usize, seq: u64, latency_us: u64) {
        if sender >= self.next.len() {
            self.next.resize(sender + 1, 0);
        }
        let next = &mut self.next[sender];
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
        assert_eq!(parse(payload(3, 9, 12345).as_bytes()), Some((3, 9, 12345)));
        assert_eq!(parse(b"b|3|9|"), None);
        assert_eq!(parse(b"b|3|9|12x"), None);
        assert_eq!(parse(b"x|3|9|1"), None);
    }
}
