//! SVG charts of a comparison (plotters, SVG backend only): throughput per strategy per
//! workload as grouped bars relative to the first strategy, and per workload the latency
//! distribution of every strategy as percentile curves on log axes.

use std::path::Path;

use plotters::prelude::*;

use super::Cell;

/// Colours for strategies, in order (colour-blind friendly, Tableau 10).
const PALETTE: [RGBColor; 10] = [
    RGBColor(78, 121, 167),
    RGBColor(242, 142, 43),
    RGBColor(225, 87, 89),
    RGBColor(118, 183, 178),
    RGBColor(89, 161, 79),
    RGBColor(237, 201, 72),
    RGBColor(176, 122, 161),
    RGBColor(255, 157, 167),
    RGBColor(156, 117, 95),
    RGBColor(186, 176, 172),
];

/// The colour of series `i`: the palette first, then hues spread by the golden angle at two
/// lightness levels, so that no two of a comparison's series (up to 36 strategies) share
/// one.
pub(crate) fn colour(i: usize) -> RGBColor {
    if let Some(&c) = PALETTE.get(i) {
        return c;
    }
    let k = (i - PALETTE.len()) as f64;
    let hue = (k * 0.618_033_988_75 + 0.05).fract();
    let light = if (i - PALETTE.len()).is_multiple_of(2) { 0.38 } else { 0.62 };
    let (r, g, b) = hsl_rgb(hue, 0.7, light);
    RGBColor(r, g, b)
}

/// HSL (each in 0..1) to 8-bit RGB.
fn hsl_rgb(h: f64, s: f64, l: f64) -> (u8, u8, u8) {
    let c = (1.0 - (2.0 * l - 1.0).abs()) * s;
    let hp = h * 6.0;
    let x = c * (1.0 - (hp % 2.0 - 1.0).abs());
    let (r, g, b) = match hp as u32 {
        0 => (c, x, 0.0),
        1 => (x, c, 0.0),
        2 => (0.0, c, x),
        3 => (0.0, x, c),
        4 => (x, 0.0, c),
        _ => (c, 0.0, x),
    };
    let m = l - c / 2.0;
    let to = |v: f64| ((v + m) * 255.0).round().clamp(0.0, 255.0) as u8;
    (to(r), to(g), to(b))
}

type ChartResult = Result<(), Box<dyn std::error::Error>>;

/// Grouped bars: one group per workload, one bar per strategy, height = throughput as a
/// fraction of the fastest strategy on that workload (1.0 = the fastest; higher is better).
pub fn throughput(cells: &[Cell], workloads: &[String], strategies: &[String], path: &Path) -> ChartResult {
    let fastest =
        |w: &str| cells.iter().filter(|c| c.workload == w).map(Cell::ops_per_sec).fold(0.0, f64::max);
    let relative = |c: &Cell| {
        let base = fastest(&c.workload);
        (base > 0.0).then(|| c.ops_per_sec() / base)
    };
    let caption = "Throughput as a fraction of the fastest strategy per workload (higher is better)";
    bars(cells, workloads, strategies, path, (caption, "ops/s / fastest"), &relative, true)
}

/// Grouped bars of a per-cell figure: one group per workload, one bar per strategy.
fn bars(
    cells: &[Cell],
    workloads: &[String],
    strategies: &[String],
    path: &Path,
    (caption, y_desc): (&str, &str),
    value: &dyn Fn(&Cell) -> Option<f64>,
    unit_line: bool,
) -> ChartResult {
    let n = strategies.len().max(1) as f64;
    let at = |w: &str, s: &str| cells.iter().find(|c| c.workload == w && c.strategy == s).and_then(value);
    let top = cells.iter().filter_map(value).fold(0.0f64, f64::max).max(1e-9) * (1.15 + 0.08 * n);
    let width = (200 + 110 * workloads.len() as u32).clamp(640, 1400);
    let root = SVGBackend::new(path, (width, 460)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(caption, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(56)
        .build_cartesian_2d(0f64..workloads.len() as f64, 0f64..top)?;
    let names = workloads.to_vec();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(workloads.len() * 2 + 1)
        .x_label_formatter(&|x| {
            let i = x.floor() as usize;
            if (x - i as f64 - 0.5).abs() < 0.01 {
                names.get(i).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .y_desc(y_desc)
        .draw()?;
    for (si, s) in strategies.iter().enumerate() {
        let c = colour(si);
        let rects: Vec<Rectangle<(f64, f64)>> = workloads
            .iter()
            .enumerate()
            .filter_map(|(wi, w)| {
                let v = at(w, s)?;
                let x0 = wi as f64 + 0.1 + 0.8 * si as f64 / n;
                let x1 = x0 + 0.8 / n * 0.9;
                Some(Rectangle::new([(x0, 0.0), (x1, v)], c.filled()))
            })
            .collect();
        chart
            .draw_series(rects)?
            .label(s.as_str())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], c.filled()));
    }
    if unit_line {
        chart
            .draw_series(LineSeries::new(vec![(0.0, 1.0), (workloads.len() as f64, 1.0)], BLACK.mix(0.4)))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .draw()?;
    root.present()?;
    Ok(())
}

/// The large-folio charts: page faults per workload as a fraction of its most (lower is
/// better), to `faults`, and the bloat (folio pages never touched, % of the frames zeroed),
/// to `bloat`; one bar per strategy (folio size).
pub fn folio(
    cells: &[Cell],
    workloads: &[String],
    strategies: &[String],
    faults: &Path,
    bloat: &Path,
) -> ChartResult {
    let most = |w: &str| cells.iter().filter(|c| c.workload == w).map(|c| c.report.faults).max().unwrap_or(0);
    bars(
        cells,
        workloads,
        strategies,
        faults,
        ("Page faults as a fraction of the most per workload (lower is better)", "faults / most"),
        &|c| {
            let m = most(&c.workload);
            (m > 0).then(|| c.report.faults as f64 / m as f64)
        },
        true,
    )?;
    bars(
        cells,
        workloads,
        strategies,
        bloat,
        ("Folio pages never touched, % of the frames zeroed (lower is better)", "bloat %"),
        &|c| Some(c.report.folio_figures.bloat() * 100.0),
        false,
    )
}

/// Width of a latency chart in pixels.
const LATENCY_WIDTH: u32 = 760;

/// Percentile curves of one workload's op latency, one line per strategy: x is the
/// percentile on a "nines" scale (50, 90, 99, 99.9, ...), y the latency on a log scale.
pub fn latency(cells: &[&Cell], workload: &str, path: &Path) -> ChartResult {
    // x = -log10(1 - q): 0.5 -> 0.30, 0.9 -> 1, 0.99 -> 2, 0.999 -> 3.
    let nines = |q: f64| -(1.0 - q).max(1e-6).log10();
    let mut lo = u64::MAX;
    let mut hi = 1u64;
    let mut xmax: f64 = 2.0;
    for c in cells {
        for &(q, v) in &c.percentiles {
            lo = lo.min(v.max(1));
            hi = hi.max(v);
            xmax = xmax.max(nines(q));
        }
    }
    if lo == u64::MAX {
        lo = 1;
    }
    let root = SVGBackend::new(path, (LATENCY_WIDTH, 440)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(format!("{workload}: op latency by percentile (lower is better)"), ("sans-serif", 20))
        .margin(12)
        // The last x label (`p99.999`) is centred on the right edge of the plot: leave it room.
        .margin_right(36)
        .x_label_area_size(36)
        .y_label_area_size(64)
        .build_cartesian_2d(0f64..xmax, ((lo as f64 / 1.5).max(1.0)..hi as f64 * 1.5).log_scale())?;
    chart
        .configure_mesh()
        .x_labels(8)
        .x_label_formatter(&|x| {
            let q = 100.0 * (1.0 - 10f64.powf(-x));
            if q < 99.0 {
                format!("p{q:.0}")
            } else {
                format!("p{}", trim(q))
            }
        })
        .y_label_formatter(&|y| crate::metrics::ns(*y as u64))
        .y_desc("latency")
        .draw()?;
    for (i, c) in cells.iter().enumerate() {
        let col = colour(i);
        let pts: Vec<(f64, f64)> = c.percentiles.iter().map(|&(q, v)| (nines(q), v.max(1) as f64)).collect();
        chart
            .draw_series(LineSeries::new(pts, col.stroke_width(2)))?
            .label(c.strategy.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], col.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .draw()?;
    root.present()?;
    Ok(())
}

fn trim(q: f64) -> String {
    let s = format!("{q:.5}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_series_of_a_full_matrix_has_its_own_colour() {
        // 3 allocators x 2 formats x 3 fork policies x 2 zeroing policies = 36 strategies.
        let all: Vec<RGBColor> = (0..36).map(colour).collect();
        for i in 0..all.len() {
            for j in 0..i {
                assert_ne!(all[i], all[j], "series {i} and {j} share a colour");
            }
        }
    }

    #[test]
    fn the_last_percentile_label_fits_in_the_chart() {
        let dir = std::env::temp_dir().join(format!("vmstorm-charts-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("lat.svg");
        use crate::metrics::{Metrics, RunReport, StrategyNames, Workload};
        let mut m = Metrics::new();
        for i in 0..200_000 {
            m.record(crate::op::OpKind::Touch, 100 + i % 1000 + if i % 50_000 == 0 { 90_000 } else { 0 });
        }
        m.seconds = 1.0;
        let names = StrategyNames {
            alloc: "bitset".into(),
            paging: "x86-64".into(),
            fork: "cow".into(),
            zero: "on-fault".into(),
            folio: "4k".into(),
            huge: "never".into(),
        };
        let r = RunReport::new(&Workload::Storm { name: "w".into(), seed: 1, scale: 1 }, &names, 1, &m);
        let mut cell = Cell::new("w".into(), "s".into(), r, &m);
        // The full range of percentiles the report plots, up to p99.999.
        cell.percentiles =
            vec![(0.5, 100), (0.9, 200), (0.99, 400), (0.999, 800), (0.9999, 1600), (0.99999, 3200)];
        latency(&[&cell], "w", &path).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        // <text x=".." ...>p99.999</text>: centred on x, about 7 px per character at this size.
        let at =
            svg.find(">\np99.999\n<").or_else(|| svg.find(">p99.999<")).expect("the p99.999 label is drawn");
        let open = svg[..at].rfind("<text").unwrap();
        let tag = &svg[open..at];
        let x: f64 = tag.split("x=\"").nth(1).unwrap().split('"').next().unwrap().parse().unwrap();
        let anchor_middle = tag.contains("text-anchor=\"middle\"");
        let right = if anchor_middle { x + 7.0 * 7.0 / 2.0 } else { x + 7.0 * 7.0 };
        assert!(right <= LATENCY_WIDTH as f64, "label ends at {right} in a {LATENCY_WIDTH} px chart: {tag}");
    }
}
