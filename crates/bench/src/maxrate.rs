//! The highest sustained rate: raise the offered load step by step (×1.4) until p99 latency passes a bound
//! or anything is lost, then narrow the gap between the last step that passed and the first that failed;
//! the best step that passed is the result.

use serde::Serialize;

use crate::fanout::{fanout, FanoutOptions, FanoutReport};
use crate::BenchError;

#[derive(Debug, Clone, Serialize)]
pub struct MaxRateReport {
    pub steps: Vec<FanoutReport>,
    /// The best step that kept p99 under the bound with nothing lost.
    pub sustained: Option<FanoutReport>,
    pub p99_bound_us: u64,
}

/// Ramps ×1.4 until a step fails, then halves the gap (geometrically) `refine` times between the last
/// step that passed and the first that failed: a ×1.4 ramp alone could not tell 1.39× from 1.5×.
pub async fn maxrate(
    base: &FanoutOptions,
    p99_bound_us: u64,
    max_steps: usize,
    refine: usize,
) -> Result<MaxRateReport, BenchError> {
    let mut steps = Vec::new();
    let mut sustained: Option<FanoutReport> = None;
    let mut opts = base.clone();
    let mut search = Search::new(base.rate, max_steps, refine);
    while let Some(rate) = search.next_rate() {
        opts.rate = rate;
        let report = step(&opts, p99_bound_us).await?;
        steps.push(report.clone());
        let ok = passed(&report, p99_bound_us);
        if ok && sustained.as_ref().is_none_or(|s| s.rate_per_sender < rate) {
            sustained = Some(report);
        }
        search.record(ok);
    }
    Ok(MaxRateReport {
        steps,
        sustained,
        p99_bound_us,
    })
}

/// Which rate to try next: a ×1.4 ramp, then bisection (geometric) between the best pass and the first
/// failure.
struct Search {
    rate: f64,
    ramp_left: usize,
    refine_left: usize,
    /// Best rate that passed, first rate that failed.
    lo: Option<f64>,
    hi: Option<f64>,
    done: bool,
}

impl Search {
    fn new(start: f64, max_steps: usize, refine: usize) -> Self {
        Self {
            rate: start,
            ramp_left: max_steps,
            refine_left: refine,
            lo: None,
            hi: None,
            done: max_steps == 0,
        }
    }

    fn next_rate(&self) -> Option<f64> {
        (!self.done).then_some(self.rate)
    }

    fn record(&mut self, passed: bool) {
        let refining = self.hi.is_some();
        if passed {
            self.lo = Some(self.rate);
        } else {
            self.hi = Some(self.rate);
        }
        if refining {
            self.refine_left -= 1;
        } else {
            self.ramp_left -= 1;
        }
        match (self.lo, self.hi) {
            // Still ramping.
            (_, None) if self.ramp_left > 0 => self.rate *= 1.4,
            (Some(lo), Some(hi)) if self.refine_left > 0 => self.rate = (lo * hi).sqrt(),
            _ => self.done = true,
        }
    }
}

fn passed(report: &FanoutReport, p99_bound_us: u64) -> bool {
    report.lost == 0
        && report.duplicates == 0
        && report.cut == 0
        && report.latency.p99_us <= p99_bound_us
}

async fn step(opts: &FanoutOptions, p99_bound_us: u64) -> Result<FanoutReport, BenchError> {
    let report = fanout(opts).await?;
    eprintln!(
        "  offered {:>9.0} msg/s -> {:>10.0} deliveries/s, p99 {:>7} us, lost {}, cut {} {}",
        report.offered,
        report.deliveries_per_sec,
        report.latency.p99_us,
        report.lost,
        report.cut,
        if passed(&report, p99_bound_us) {
            "ok"
        } else {
            "past the knee"
        }
    );
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the search against a server whose knee is at `knee` msg/s.
    fn run(start: f64, knee: f64, steps: usize, refine: usize) -> (Vec<f64>, Option<f64>) {
        let mut search = Search::new(start, steps, refine);
        let (mut tried, mut best) = (Vec::new(), None::<f64>);
        while let Some(rate) = search.next_rate() {
            tried.push(rate.round());
            let ok = rate <= knee;
            if ok && best.is_none_or(|b| b < rate) {
                best = Some(rate);
            }
            search.record(ok);
        }
        (tried, best.map(f64::round))
    }

    #[test]
    fn ramps_then_narrows_down_to_the_knee() {
        let (tried, best) = run(1000.0, 2500.0, 15, 2);
        // 1000, 1400, 1960 pass; 2744 fails; then √(1960·2744) ≈ 2319 passes, √(2319·2744) ≈ 2523 fails.
        assert_eq!(tried, [1000.0, 1400.0, 1960.0, 2744.0, 2319.0, 2523.0]);
        assert_eq!(best, Some(2319.0));
    }

    #[test]
    fn no_refinement_without_a_pass_or_a_failure() {
        assert_eq!(run(1000.0, 10.0, 15, 2), (vec![1000.0], None));
        let (tried, best) = run(1000.0, 1e9, 3, 2);
        assert_eq!((tried.len(), best), (3, Some(1960.0)));
    }
}
