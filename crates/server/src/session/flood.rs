//! Flood control for one connection.

use std::time::{Duration, Instant};

/// Flood control: a token bucket. Each frame takes a token; tokens come back at `rate` per second up to
/// `burst`. A frame that finds no token waits (it is not dropped).
#[derive(Debug, Clone)]
pub struct Bucket {
    tokens: f64,
    burst: f64,
    rate: f64,
    last: Instant,
}

impl Bucket {
    pub fn new(burst: u32, rate: f64, now: Instant) -> Self {
        let burst = f64::from(burst.max(1));
        Self {
            tokens: burst,
            burst,
            rate,
            last: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.last = now;
    }

    /// When the next frame may be handled.
    pub fn ready_at(&mut self, now: Instant) -> Instant {
        if self.rate <= 0.0 {
            return now;
        }
        self.refill(now);
        if self.tokens >= 1.0 {
            now
        } else {
            now + Duration::from_secs_f64((1.0 - self.tokens) / self.rate)
        }
    }

    /// Spends a token (call when `ready_at` has come).
    pub fn take(&mut self, now: Instant) {
        if self.rate > 0.0 {
            self.refill(now);
            self.tokens -= 1.0;
        }
    }
}
