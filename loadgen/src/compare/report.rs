//! The comparison report: a terminal table, `REPORT.md` with tables and charts, and
//! `results.json` with every cell's full `--json` object.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::{charts, Cell};
use crate::metrics::{human, ns};

/// Facts about how the comparison was run, written at the top of the report.
#[derive(Clone, Debug, Default)]
pub struct ReportMeta {
    /// The command line that produced it.
    pub command: String,
    /// Seed of every storm.
    pub seed: u64,
    /// Arena size of every server (bytes).
    pub mem_bytes: u64,
    /// Whether this was the quick matrix.
    pub quick: bool,
    /// Wall seconds of the whole comparison.
    pub elapsed: f64,
    /// CPU model and core count, when known.
    pub machine: String,
    /// Timing rounds per cell.
    pub rounds: u32,
}

fn unique(it: impl Iterator<Item = String>) -> Vec<String> {
    let mut v: Vec<String> = Vec::new();
    for s in it {
        if !v.contains(&s) {
            v.push(s);
        }
    }
    v
}

/// Workloads and strategies in the order they were run.
pub fn axes(cells: &[Cell]) -> (Vec<String>, Vec<String>) {
    (unique(cells.iter().map(|c| c.workload.clone())), unique(cells.iter().map(|c| c.strategy.clone())))
}

fn find<'a>(cells: &'a [Cell], w: &str, s: &str) -> Option<&'a Cell> {
    cells.iter().find(|c| c.workload == w && c.strategy == s)
}

/// The fastest cell of workload `w`, by median throughput.
fn fastest<'a>(cells: &'a [Cell], w: &str, strategies: &[String]) -> Option<&'a Cell> {
    strategies
        .iter()
        .filter_map(|s| find(cells, w, s))
        .max_by(|a, b| a.ops_per_sec().total_cmp(&b.ops_per_sec()))
}

/// How a cell ranks in its row: `*` the fastest, `=` a tie with it (their rounds' ranges
/// overlap: the difference is within the spread), blank otherwise.
fn mark(c: &Cell, best: Option<&Cell>, strategies: usize) -> &'static str {
    match best {
        _ if strategies < 2 => " ",
        Some(b) if std::ptr::eq(b, c) => "*",
        Some(b) if c.ties(b) => "=",
        _ => " ",
    }
}

/// How the default strategy stands in one row: against the fastest cell, and against the
/// fastest of its own page-table format (an i386 space is a different machine, not a
/// setting one picks for speed).
#[derive(Clone, Copy, Debug)]
pub struct Standing<'a> {
    /// The default strategy's cell of the row.
    pub default: &'a Cell,
    /// The fastest cell of the row (by median).
    pub best: &'a Cell,
    /// The fastest cell of the row whose page-table format is the default's.
    pub best_same_format: &'a Cell,
}

/// Within this fraction of the fastest median, the default counts as level with it.
pub const LEVEL: f64 = 0.05;

impl Standing<'_> {
    /// `fastest`, `-3 % (within 5 %)`, `-12 % (tie: inside the spread)` or `-30 %`: the
    /// default's median against `best`'s.
    pub fn verdict(default: &Cell, best: &Cell) -> String {
        if std::ptr::eq(default, best) {
            return "fastest".into();
        }
        let ratio = default.ops_per_sec() / best.ops_per_sec();
        let pct = (ratio - 1.0) * 100.0;
        if ratio >= 1.0 - LEVEL {
            format!("{pct:+.0} % (within {:.0} %)", LEVEL * 100.0)
        } else if default.ties(best) {
            format!("{pct:+.0} % (tie: inside the spread)")
        } else {
            format!("{pct:+.0} %")
        }
    }
}

/// The default strategy's standing in every row that has a cell of it (none when the
/// comparison left the default out).
pub fn standings(cells: &[Cell]) -> Vec<(String, Standing<'_>)> {
    let default = crate::strategy::Strategy::default();
    let label = default.label();
    let (workloads, strategies) = axes(cells);
    let same: Vec<String> = strategies
        .iter()
        .filter(|s| {
            s.ends_with(&format!("/{}", default.paging.name()))
                || s.contains(&format!("/{}/", default.paging.name()))
        })
        .cloned()
        .collect();
    workloads
        .iter()
        .filter_map(|w| {
            let d = find(cells, w, &label)?;
            let best = fastest(cells, w, &strategies)?;
            let best_same_format = fastest(cells, w, &same)?;
            Some((w.clone(), Standing { default: d, best, best_same_format }))
        })
        .collect()
}

/// Markers around the default-against-fastest table in `REPORT.md` (and in the README,
/// which `compare --publish` fills from the report).
pub const SUMMARY_BEGIN: &str = "<!-- compare-summary:begin -->";
/// See [`SUMMARY_BEGIN`].
pub const SUMMARY_END: &str = "<!-- compare-summary:end -->";

/// The default-against-fastest table in Markdown, between [`SUMMARY_BEGIN`] and
/// [`SUMMARY_END`] (empty when the comparison has no cell of the default).
pub fn summary_markdown(cells: &[Cell], meta: &ReportMeta) -> String {
    let rows = standings(cells);
    let Some((_, first)) = rows.first() else {
        return String::new();
    };
    let default = &first.default.strategy;
    let fmt = crate::strategy::Strategy::default().paging.name();
    let mut md = String::new();
    let _ = writeln!(md, "{SUMMARY_BEGIN}");
    let _ = writeln!(
        md,
        "| workload | default: {default} | fastest | default vs fastest | fastest {fmt} | default vs fastest {fmt} |"
    );
    let _ = writeln!(md, "|---|---:|---|---|---|---|");
    for (w, st) in &rows {
        let _ = writeln!(
            md,
            "| `{w}` | {} | {} {} | {} | {} {} | {} |",
            rate(st.default),
            st.best.strategy,
            rate(st.best),
            Standing::verdict(st.default, st.best),
            st.best_same_format.strategy,
            rate(st.best_same_format),
            Standing::verdict(st.default, st.best_same_format),
        );
    }
    let _ = writeln!(
        md,
        "\nMedian ops/s of {} rounds per cell `±` half their range (`{}`, {} cells). \"within 5 %\": the \
         default's median is at least 95 % of the fastest; \"tie\": further behind, but the two \
         cells' rounds overlap, so the difference is inside the spread.",
        meta.rounds.max(1),
        meta.command,
        cells.len()
    );
    let _ = writeln!(md, "{SUMMARY_END}");
    md
}

/// `text` with the part between [`SUMMARY_BEGIN`] and [`SUMMARY_END`] (markers included)
/// replaced by `summary` (which carries its own markers).
///
/// # Errors
/// When `text` lacks either marker, or has them out of order.
pub fn splice_summary(text: &str, summary: &str) -> Result<String, String> {
    let (Some(b), Some(e)) = (text.find(SUMMARY_BEGIN), text.find(SUMMARY_END)) else {
        return Err(format!("no {SUMMARY_BEGIN} ... {SUMMARY_END} section"));
    };
    if e < b {
        return Err(format!("{SUMMARY_END} comes before {SUMMARY_BEGIN}"));
    }
    let end = e + SUMMARY_END.len();
    let end = if text[end..].starts_with('\n') { end + 1 } else { end };
    Ok(format!("{}{summary}{}", &text[..b], &text[end..]))
}

/// The summary section of a written `REPORT.md` (markers included), if it has one.
pub fn summary_of(report: &str) -> Option<&str> {
    let b = report.find(SUMMARY_BEGIN)?;
    let e = report[b..].find(SUMMARY_END)? + b + SUMMARY_END.len();
    let e = if report[e..].starts_with('\n') { e + 1 } else { e };
    Some(&report[b..e])
}

/// `median ±spread%` of a cell.
fn rate(c: &Cell) -> String {
    if c.rounds.len() > 1 {
        format!("{} ±{:.0}%", human(c.ops_per_sec()), c.spread() * 100.0)
    } else {
        human(c.ops_per_sec())
    }
}

/// The strategy label, `(default)` added to the default strategy's.
fn heading(s: &str) -> String {
    if s == crate::strategy::Strategy::default().label() {
        format!("{s} (default)")
    } else {
        s.to_string()
    }
}

/// The throughput table (median ops/s of the rounds ± half their range, and p50 latency)
/// for the terminal.
pub fn terminal_table(cells: &[Cell]) -> String {
    let (workloads, strategies) = axes(cells);
    let wcol = workloads.iter().map(|w| w.len()).max().unwrap_or(8).max(8);
    let scol = strategies.iter().map(|s| heading(s).len()).max().unwrap_or(10).max(24);
    let mut out = String::new();
    let _ = write!(out, "{:<wcol$}", "ops/s (p50)");
    for s in &strategies {
        let _ = write!(out, "  {:>scol$}", heading(s));
    }
    out.push('\n');
    for w in &workloads {
        let _ = write!(out, "{w:<wcol$}");
        let best = fastest(cells, w, &strategies);
        for s in &strategies {
            let text = match find(cells, w, s) {
                Some(c) => format!(
                    "{}{} ({})",
                    mark(c, best, strategies.len()),
                    rate(c),
                    ns(c.report.latency_ns.p50)
                ),
                None => "-".to_string(),
            };
            let _ = write!(out, "  {text:>scol$}");
        }
        out.push('\n');
    }
    out.push_str(
        "* fastest in its row (median of the rounds); = a tie with it (the rounds' ranges overlap)\n",
    );
    let rows = standings(cells);
    if let Some((_, first)) = rows.first() {
        let _ = writeln!(out, "default {} against the fastest of each row:", first.default.strategy);
        for (w, st) in &rows {
            let _ = write!(out, "  {w:<wcol$} {}", Standing::verdict(st.default, st.best));
            if !std::ptr::eq(st.default, st.best) {
                let _ = write!(out, " of {}", st.best.strategy);
            }
            if !std::ptr::eq(st.best, st.best_same_format) {
                let _ = write!(out, "; {}", Standing::verdict(st.default, st.best_same_format));
                if !std::ptr::eq(st.default, st.best_same_format) {
                    let _ = write!(out, " of {}", st.best_same_format.strategy);
                }
                let _ = write!(out, " in its format");
            }
            out.push('\n');
        }
    }
    out
}

fn md_row(cols: &[String]) -> String {
    format!("| {} |\n", cols.join(" | "))
}

fn md_header(first: &str, strategies: &[String]) -> String {
    let mut cols = vec![first.to_string()];
    cols.extend(strategies.iter().map(|s| heading(s)));
    let mut s = md_row(&cols);
    let mut sep = vec!["---".to_string()];
    sep.extend(strategies.iter().map(|_| "---:".to_string()));
    s.push_str(&md_row(&sep));
    s
}

/// Writes `REPORT.md`, `results.json` and the SVG charts into `dir`; returns the files.
pub fn write(dir: &Path, cells: &[Cell], meta: &ReportMeta) -> Result<Vec<PathBuf>, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: cannot create: {e}", dir.display()))?;
    let (workloads, strategies) = axes(cells);
    let mut files = Vec::new();

    let chart_err = |p: &Path, e: Box<dyn std::error::Error>| format!("{}: cannot draw: {e}", p.display());
    let tp = dir.join("throughput.svg");
    charts::throughput(cells, &workloads, &strategies, &tp).map_err(|e| chart_err(&tp, e))?;
    files.push(tp);
    let mut latency_files = Vec::new();
    for w in &workloads {
        let row: Vec<&Cell> = strategies.iter().filter_map(|s| find(cells, w, s)).collect();
        let name = format!("latency-{}.svg", file_safe(w));
        let p = dir.join(&name);
        charts::latency(&row, w, &p).map_err(|e| chart_err(&p, e))?;
        latency_files.push((w.clone(), name));
        files.push(p);
    }

    let mut md = String::new();
    let _ = writeln!(md, "# vmstorm strategy comparison\n");
    let _ = writeln!(
        md,
        "Produced by `{}` in {:.1} s{}. Every storm uses seed {}; every server has a {} MiB arena.\n",
        meta.command,
        meta.elapsed,
        if meta.machine.is_empty() { String::new() } else { format!(" on {}", meta.machine) },
        meta.seed,
        meta.mem_bytes >> 20
    );
    let _ = writeln!(
        md,
        "How the numbers were taken: each cell (workload × strategy) is timed in {} rounds. A \
         round boots its own server over an arena advised to use transparent huge pages (a kernel \
         reaches RAM through a direct map of large pages; a host that refuses gets 4 KiB pages), \
         plays the workload once untimed, and has the server hand out and write every free frame \
         of the arena (the host's first touch of an arena page is a Linux page fault, which \
         would otherwise be charged to whichever allocator reaches new frames first); then it \
         plays the workload again, timed, pass after pass until at least {} ms of timed play \
         have passed. Time is the server thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`), so time \
         spent descheduled while other work had the cores is not counted; the round's \
         throughput is all its ops over all its time. Rounds of all cells are interleaved (round \
         1 of every cell, then round 2, ...), so a burst of other load on the machine lands on \
         every strategy alike. A cell's figure is the median of its rounds, `±` half their \
         range; a strategy whose range overlaps the fastest one's is a tie (`=`): the difference \
         is smaller than the spread. Cells are measured one at a time, never side by side; the \
         traces are generated in parallel beforehand. Latency is per op (a storm's touch op is \
         one page, a trace's may cover several), from the median round, measured with the \
         monotonic clock around each op, so it includes about 20–40 ns of timer overhead. \
         `faults` are `VM_PAGEFAULT`s the server handled, `cow` the frames copied on write, \
         `peak frames` and `peak PT` the most frames (and page-table frames) in use at once. \
         `hot+` strategies put a LIFO list of the 256 most recently freed frames in front of the \
         allocator (the default strategy has one); the others hand out what the allocator \
         finds.\n",
        meta.rounds.max(1),
        if meta.quick { 15 } else { 50 }
    );
    let _ = writeln!(md, "## Throughput (median ops/s ± half the range of the rounds, higher is better)\n");
    md.push_str(&md_header("workload", &strategies));
    for w in &workloads {
        let best = fastest(cells, w, &strategies);
        let mut cols = vec![format!("`{w}`")];
        for s in &strategies {
            cols.push(match find(cells, w, s) {
                Some(c) => match mark(c, best, strategies.len()) {
                    "*" => format!("**{}**", rate(c)),
                    "=" => format!("= {}", rate(c)),
                    _ => rate(c),
                },
                None => "–".into(),
            });
        }
        md.push_str(&md_row(&cols));
    }
    let _ = writeln!(
        md,
        "\nBold: fastest in its row; `=`: a tie with it (ranges overlap).\n\n![throughput](throughput.svg)\n"
    );
    let summary = summary_markdown(cells, meta);
    if !summary.is_empty() {
        let _ = writeln!(md, "## The default strategy against the fastest\n");
        md.push_str(&summary);
        md.push('\n');
    }

    let _ = writeln!(md, "## Latency per op (p50 / p99 / max)\n");
    md.push_str(&md_header("workload", &strategies));
    for w in &workloads {
        let mut cols = vec![format!("`{w}`")];
        for s in &strategies {
            cols.push(match find(cells, w, s) {
                Some(c) => {
                    let l = c.report.latency_ns;
                    format!("{} / {} / {}", ns(l.p50), ns(l.p99), ns(l.max))
                }
                None => "–".into(),
            });
        }
        md.push_str(&md_row(&cols));
    }
    md.push('\n');
    for (w, f) in &latency_files {
        let _ = writeln!(md, "![{w} latency]({f})\n");
    }

    let _ = writeln!(md, "## Memory-manager work per cell\n");
    let _ = writeln!(md, "| workload | strategy | ops | faults | cow | peak frames | peak PT | verify |");
    let _ = writeln!(md, "|---|---|---:|---:|---:|---:|---:|---|");
    for w in &workloads {
        for s in &strategies {
            if let Some(c) = find(cells, w, s) {
                let r = &c.report;
                let v = match r.verify {
                    Some(v) if v.ok => format!("ok ({} checks)", v.checked),
                    Some(v) => format!("FAILED ({} checks)", v.checked),
                    None => "off".into(),
                };
                let _ = writeln!(
                    md,
                    "| `{w}` | {s} | {} | {} | {} | {} | {} | {v} |",
                    r.ops, r.faults, r.cow_copies, r.frames_peak, r.pt_pages_peak
                );
            }
        }
    }
    if cells.iter().any(|c| c.report.folio != "4k" || c.report.huge != "never") {
        let (fp, bp) = (dir.join("folio-faults.svg"), dir.join("folio-bloat.svg"));
        charts::folio(cells, &workloads, &strategies, &fp, &bp).map_err(|e| chart_err(&fp, e))?;
        files.push(fp);
        files.push(bp);
        let _ = writeln!(md, "\n## Large folios\n");
        let _ = writeln!(
            md,
            "A `+<size>` strategy maps a whole naturally aligned folio of that size on a demand-zero \
             write fault when the block lies inside a private anonymous region and none of its pages \
             is present, else 4 KiB; a `+huge` strategy first maps a whole page-directory block              (2 MiB in x86-64 tables, 4 MiB in i386's) when it fits in the region and no leaf table              exists for it (`huge faults`; `huge zero`: read faults mapping the huge zero page;              `splits`: huge entries split into leaf tables). `zeroed`: frames the demand-zero faults allocated and zeroed; \
             `never touched`: folio pages the workload never touched (the bloat), and their share of \
             the frames zeroed; `fallbacks`: folio faults that found no aligned free run; ns per \
             fault and per 4 KiB page touched are the touch ops' time over each (median round).\n"
        );
        let _ = writeln!(
            md,
            "| workload | strategy | faults | folio faults | huge faults | huge zero | splits | fallbacks | pages touched | zeroed | never touched | ns/fault | ns/page |"
        );
        let _ = writeln!(md, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        for w in &workloads {
            for s in &strategies {
                if let Some(c) = find(cells, w, s) {
                    let (r, f, h) = (&c.report, &c.report.folio_figures, &c.report.huge_figures);
                    let _ = writeln!(
                        md,
                        "| `{w}` | {s} | {} | {} | {} | {} | {} | {} | {} | {} | {} ({:.1} %) | {:.0} | {:.0} |",
                        r.faults,
                        f.folio_faults,
                        h.huge_faults,
                        h.huge_zero_maps,
                        h.splits,
                        f.fallbacks + h.fallbacks,
                        f.pages_touched,
                        f.frames_zeroed,
                        f.untouched_folio_pages,
                        f.bloat() * 100.0,
                        f.ns_per_fault,
                        f.ns_per_page_touched
                    );
                }
            }
        }
        let _ = writeln!(
            md,
            "\n![faults per folio size](folio-faults.svg)\n\n![bloat per folio size](folio-bloat.svg)"
        );
    }
    let _ = writeln!(md, "\n## Per op kind (count, p50)\n");
    for w in &workloads {
        let _ = writeln!(md, "<details><summary><code>{w}</code></summary>\n");
        md.push_str(&md_header("op", &strategies));
        let mut kinds: Vec<String> = Vec::new();
        for s in &strategies {
            if let Some(c) = find(cells, w, s) {
                for k in c.report.per_op.keys() {
                    if !kinds.contains(k) {
                        kinds.push(k.clone());
                    }
                }
            }
        }
        for k in &kinds {
            let mut cols = vec![k.clone()];
            for s in &strategies {
                cols.push(
                    find(cells, w, s)
                        .and_then(|c| c.report.per_op.get(k))
                        .map(|p| format!("{} × {}", p.count, ns(p.ns_p50)))
                        .unwrap_or_else(|| "–".into()),
                );
            }
            md.push_str(&md_row(&cols));
        }
        let _ = writeln!(md, "\n</details>\n");
    }
    let _ = writeln!(md, "Raw figures of every cell: [`results.json`](results.json).");

    let report = dir.join("REPORT.md");
    std::fs::write(&report, md).map_err(|e| format!("{}: cannot write: {e}", report.display()))?;
    files.insert(0, report);
    let json = dir.join("results.json");
    let all: Vec<&crate::metrics::RunReport> = cells.iter().map(|c| &c.report).collect();
    let text = serde_json::to_string_pretty(&all).unwrap_or_default();
    std::fs::write(&json, text).map_err(|e| format!("{}: cannot write: {e}", json.display()))?;
    files.push(json);
    Ok(files)
}

fn file_safe(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect()
}
