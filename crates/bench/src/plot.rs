//! Plots of a comparison run (`bench/compare.sh` JSON lines): for each max-rate scenario, delivered/s and
//! p99 latency against offered load, one line per server.

use std::collections::BTreeMap;
use std::path::Path;

use plotters::prelude::*;
use plotters::style::FontStyle;
use serde_json::Value;

/// Where the font for labels is read from (Debian's fonts-dejavu-core).
pub const FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";

/// One server's ramp: (offered msg/s, deliveries/s, p99 µs) per step.
type Ramp = Vec<(f64, f64, f64)>;

/// Reads compare.sh's JSON lines into scenario → server → ramp.
pub fn read(json_lines: &str) -> BTreeMap<String, BTreeMap<String, Ramp>> {
    let mut out: BTreeMap<String, BTreeMap<String, Ramp>> = BTreeMap::new();
    for line in json_lines.lines() {
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let (Some(server), Some(scenario), Some(steps)) = (
            v["server"].as_str(),
            v["scenario"].as_str(),
            v["steps"].as_array(),
        ) else {
            continue;
        };
        let mut ramp: Ramp = steps
            .iter()
            .filter_map(|s| {
                Some((
                    s["offered"].as_f64()?,
                    s["deliveries_per_sec"].as_f64()?,
                    s["latency"]["p99_us"].as_f64()?,
                ))
            })
            .collect();
        // Refinement steps come after the ramp: draw by offered load.
        ramp.sort_by(|a, b| a.0.total_cmp(&b.0));
        out.entry(scenario.to_owned())
            .or_default()
            .insert(server.to_owned(), ramp);
    }
    out
}

const COLOURS: [RGBColor; 5] = [
    RGBColor(200, 30, 30),
    RGBColor(30, 90, 200),
    RGBColor(30, 150, 60),
    RGBColor(160, 90, 0),
    RGBColor(120, 40, 160),
];

/// Draws one PNG: a row per scenario, throughput on the left, p99 (log scale) on the right.
pub fn draw(data: &BTreeMap<String, BTreeMap<String, Ramp>>, out: &Path) -> Result<(), String> {
    let font = std::fs::read(FONT).map_err(|e| {
        format!("cannot read the font {FONT}: {e} (apt-get install fonts-dejavu-core)")
    })?;
    plotters::style::register_font(
        "sans-serif",
        FontStyle::Normal,
        Box::leak(font.into_boxed_slice()),
    )
    .map_err(|_| "bad font file".to_owned())?;
    let rows = data.len().max(1);
    let root = BitMapBackend::new(out, (1400, 420 * rows as u32)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let areas = root.split_evenly((rows, 2));
    for (i, (scenario, servers)) in data.iter().enumerate() {
        let max_x = servers.values().flatten().map(|s| s.0).fold(1.0, f64::max) * 1.05;
        let max_y = servers.values().flatten().map(|s| s.1).fold(1.0, f64::max) / 1e6 * 1.1;
        let mut tput = ChartBuilder::on(&areas[2 * i])
            .caption(
                format!("{scenario}: delivered vs offered"),
                ("sans-serif", 20),
            )
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..max_x, 0.0..max_y)
            .map_err(|e| e.to_string())?;
        tput.configure_mesh()
            .x_desc("offered messages/s")
            .y_desc("million deliveries/s")
            .draw()
            .map_err(|e| e.to_string())?;
        let mut p99 = ChartBuilder::on(&areas[2 * i + 1])
            .caption(
                format!("{scenario}: p99 latency vs offered"),
                ("sans-serif", 20),
            )
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..max_x, (0.1f64..10_000.0).log_scale())
            .map_err(|e| e.to_string())?;
        p99.configure_mesh()
            .x_desc("offered messages/s")
            .y_desc("p99 ms (log)")
            .draw()
            .map_err(|e| e.to_string())?;
        for (j, (server, ramp)) in servers.iter().enumerate() {
            let colour = COLOURS[j % COLOURS.len()];
            tput.draw_series(LineSeries::new(
                ramp.iter().map(|s| (s.0, s.1 / 1e6)),
                colour.stroke_width(2),
            ))
            .map_err(|e| e.to_string())?
            .label(server.as_str())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 16, y)], colour.stroke_width(2))
            });
            p99.draw_series(LineSeries::new(
                ramp.iter().map(|s| (s.0, (s.2 / 1000.0).max(0.1))),
                colour.stroke_width(2),
            ))
            .map_err(|e| e.to_string())?;
        }
        tput.configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| e.to_string())?;
    }
    root.present().map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"{"server":"natter","scenario":"maxrate C=100 S=10","steps":[{"offered":5000.0,"deliveries_per_sec":495000.0,"latency":{"p99_us":4000}},{"offered":7000.0,"deliveries_per_sec":693000.0,"latency":{"p99_us":5000}}]}
{"server":"ngircd","scenario":"maxrate C=100 S=10","steps":[{"offered":5000.0,"deliveries_per_sec":494000.0,"latency":{"p99_us":20000}}]}
{"server":"natter","scenario":"latency 200 msg/s into 100","latency":{"p99_us":900}}
not json"#;

    #[test]
    fn reads_ramps_per_scenario_and_server() {
        let data = read(SAMPLE);
        assert_eq!(data.len(), 1, "only max-rate scenarios have ramps");
        let c100 = &data["maxrate C=100 S=10"];
        assert_eq!(
            c100["natter"],
            vec![(5000.0, 495000.0, 4000.0), (7000.0, 693000.0, 5000.0)]
        );
        assert_eq!(c100["ngircd"].len(), 1);
    }

    #[test]
    fn draws_a_png() {
        let dir = std::env::temp_dir().join(format!("natter-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("plot.png");
        draw(&read(SAMPLE), &out).unwrap();
        let png = std::fs::read(&out).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
