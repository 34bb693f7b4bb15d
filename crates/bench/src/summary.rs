//! The table at the top of a comparison: for each scenario and server, the median of the repeated runs,
//! every run beside it, and natter's ratio to the best other server (natter variants such as `natter-mem`,
//! history in RAM, are not "other servers").

use std::collections::BTreeMap;
use std::fmt::Write;

use serde_json::Value;

/// One figure per run: sustained deliveries/s for `maxrate`, p99 µs for `latency`, bytes per connection
/// for `conns`.
fn figure(v: &Value) -> Option<f64> {
    if v.get("steps").is_some() {
        return Some(v["sustained"]["deliveries_per_sec"].as_f64().unwrap_or(0.0));
    }
    if let Some(p99) = v["latency"]["p99_us"].as_f64() {
        return Some(p99);
    }
    v["rss_per_connection_bytes"].as_f64()
}

fn median(xs: &mut [f64]) -> f64 {
    xs.sort_by(f64::total_cmp);
    match xs.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => xs[n / 2],
        n => (xs[n / 2 - 1] + xs[n / 2]) / 2.0,
    }
}

fn show(scenario: &str, x: f64) -> String {
    if scenario.starts_with("maxrate") {
        format!("{:.2} M/s", x / 1e6)
    } else if scenario.starts_with("latency") {
        format!("{:.2} ms", x / 1000.0)
    } else {
        format!("{:.1} KiB", x / 1024.0)
    }
}

/// A Markdown table from compare.sh's JSON lines.
pub fn table(json_lines: &str) -> String {
    let mut runs: BTreeMap<String, BTreeMap<String, Vec<f64>>> = BTreeMap::new();
    for line in json_lines.lines() {
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let (Some(server), Some(scenario), Some(x)) =
            (v["server"].as_str(), v["scenario"].as_str(), figure(&v))
        else {
            continue;
        };
        runs.entry(scenario.to_owned())
            .or_default()
            .entry(server.to_owned())
            .or_default()
            .push(x);
    }
    let mut out = String::from(
        "| scenario | server | median | runs | natter ÷ best other |\n|---|---|---|---|---|\n",
    );
    for (scenario, servers) in &runs {
        let medians: BTreeMap<&str, f64> = servers
            .iter()
            .map(|(s, xs)| (s.as_str(), median(&mut xs.clone())))
            .collect();
        // Higher is better for throughput; lower for latency and memory.
        let higher = scenario.starts_with("maxrate");
        let best_other = medians
            .iter()
            .filter(|(s, _)| !s.starts_with("natter"))
            .map(|(_, x)| *x)
            .filter(|x| x.is_finite() && *x > 0.0)
            .reduce(|a, b| if higher == (a > b) { a } else { b });
        for (server, xs) in servers {
            let m = medians[server.as_str()];
            let all: Vec<String> = xs.iter().map(|x| show(scenario, *x)).collect();
            let ratio = match (server.as_str(), best_other) {
                ("natter", Some(b)) => format!("{:.2}×", m / b),
                _ => String::new(),
            };
            let _ = writeln!(
                out,
                "| {scenario} | {server} | {} | {} | {ratio} |",
                show(scenario, m),
                all.join(", ")
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_and_ratio_to_the_best_other_server() {
        let lines = [
            r#"{"server":"natter","scenario":"maxrate C=100","steps":[],"sustained":{"deliveries_per_sec":6e6}}"#,
            r#"{"server":"natter","scenario":"maxrate C=100","steps":[],"sustained":{"deliveries_per_sec":8e6}}"#,
            r#"{"server":"natter","scenario":"maxrate C=100","steps":[],"sustained":{"deliveries_per_sec":7e6}}"#,
            r#"{"server":"ngircd","scenario":"maxrate C=100","steps":[],"sustained":{"deliveries_per_sec":3.5e6}}"#,
            r#"{"server":"inspircd","scenario":"maxrate C=100","steps":[],"sustained":null}"#,
            r#"{"server":"natter","scenario":"latency","latency":{"p99_us":900}}"#,
            r#"{"server":"ngircd","scenario":"latency","latency":{"p99_us":1800}}"#,
            r#"{"server":"natter-mem","scenario":"latency","latency":{"p99_us":700}}"#,
        ]
        .join("\n");
        let t = table(&lines);
        assert!(
            t.contains(
                "| maxrate C=100 | natter | 7.00 M/s | 6.00 M/s, 8.00 M/s, 7.00 M/s | 2.00× |"
            ),
            "{t}"
        );
        assert!(
            t.contains("| latency | natter | 0.90 ms | 0.90 ms | 0.50× |"),
            "{t}"
        );
        assert!(t.contains("| maxrate C=100 | inspircd | 0.00 M/s |"), "{t}");
    }
}
