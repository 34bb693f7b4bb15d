//! The highest sustained rate: raise the offered load step by step (×1.4) until p99 latency passes a bound
//! or anything is lost; the last step that passed is the result.

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

pub async fn maxrate(
    base: &FanoutOptions,
    p99_bound_us: u64,
    max_steps: usize,
) -> Result<MaxRateReport, BenchError> {
    let mut steps = Vec::new();
    let mut sustained = None;
    let mut opts = base.clone();
    for _ in 0..max_steps {
        let report = fanout(&opts).await?;
        let ok =
            report.lost == 0 && report.duplicates == 0 && report.latency.p99_us <= p99_bound_us;
        eprintln!(
            "  offered {:>9.0} msg/s -> {:>10.0} deliveries/s, p99 {:>7} us, lost {} {}",
            report.offered,
            report.deliveries_per_sec,
            report.latency.p99_us,
            report.lost,
            if ok { "ok" } else { "past the knee" }
        );
        steps.push(report.clone());
        if !ok {
            break;
        }
        sustained = Some(report);
        opts.rate *= 1.4;
    }
    Ok(MaxRateReport {
        steps,
        sustained,
        p99_bound_us,
    })
}
