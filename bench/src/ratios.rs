//! The ratio table of `results/RATIOS.md`: every row of DESIGN §6 with our best strategy,
//! the best peer crate and the host kernel from one Criterion run
//! (`target/criterion/<group>/<id>/new/estimates.json`), instruction counts per operation
//! from the committed callgrind baseline (`results/iai/baseline.tsv`), the target, the
//! ratio and whether the target is met.
//!
//! Benchmark ids follow one convention: in each group ours start with `ours-`, the peers
//! with `peer-`, and the host kernel's are in the `linux` group.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

/// Median time per iteration (ns) of every Criterion benchmark, keyed `group/id`.
pub type Times = BTreeMap<String, f64>;
/// Instructions (`ir` column: glibc string functions left out) keyed `group/function.id`.
pub type Counts = BTreeMap<String, u64>;

/// Reads every `<group>/<id>/new/estimates.json` under a Criterion output directory.
pub fn read_criterion(dir: &Path) -> Times {
    let mut out = Times::new();
    let Ok(groups) = std::fs::read_dir(dir) else { return out };
    for g in groups.flatten() {
        let Ok(ids) = std::fs::read_dir(g.path()) else { continue };
        for id in ids.flatten() {
            let est = id.path().join("new").join("estimates.json");
            let Ok(text) = std::fs::read_to_string(&est) else { continue };
            let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) else { continue };
            if let Some(ns) = v["median"]["point_estimate"].as_f64() {
                let key = format!("{}/{}", g.file_name().to_string_lossy(), id.file_name().to_string_lossy());
                out.insert(key, ns);
            }
        }
    }
    out
}

/// Reads the `bench` and `ir` columns of a callgrind TSV (missing file: empty).
pub fn read_counts(path: &Path) -> Counts {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with("bench\t"))
        .filter_map(|l| {
            let mut cols = l.split('\t');
            let bench = cols.next()?;
            let ir = cols.next()?.parse().ok()?;
            Some((bench.to_string(), ir))
        })
        .collect()
}

/// Where one figure comes from: the fastest benchmark of `group` whose id starts with
/// `prefix`, divided by `per_iter` operations per iteration.
#[derive(Clone, Copy, Debug)]
pub struct Pick {
    /// Criterion group.
    pub group: &'static str,
    /// Id prefix (`ours-`, `peer-`, or a full id).
    pub prefix: &'static str,
    /// Operations per iteration.
    pub per_iter: f64,
}

/// An instruction count per operation: `(bench - harness) / ops`.
#[derive(Clone, Copy, Debug)]
pub struct IrPick {
    /// Candidate benches (`group/function.id`); the lowest count is ours.
    pub benches: &'static [&'static str],
    /// The harness bench to subtract, if any.
    pub harness: Option<&'static str>,
    /// Operations per bench run.
    pub ops: f64,
}

/// One row of DESIGN §6.
#[derive(Clone, Debug)]
pub struct Row {
    /// The operation, as DESIGN §6 names it.
    pub operation: &'static str,
    /// Our candidates.
    pub ours: Option<Pick>,
    /// The peers' candidates.
    pub peer: Option<Pick>,
    /// The host kernel's figure.
    pub linux: Option<Pick>,
    /// Target time per operation, ns.
    pub target_ns: Option<f64>,
    /// Our instruction count per operation.
    pub ir: Option<IrPick>,
    /// Target instructions per operation.
    pub target_ir: Option<f64>,
    /// A speed-up row instead of a time: (one, many, target): met when one ÷ many ≥ target.
    pub speedup: Option<(Pick, Pick, f64)>,
    /// What is compared when a part is missing by design.
    pub note: &'static str,
}

const fn pick(group: &'static str, prefix: &'static str, per_iter: f64) -> Option<Pick> {
    Some(Pick { group, prefix, per_iter })
}

/// The rows of DESIGN §6, in its order, plus informational rows after them.
pub fn rows() -> Vec<Row> {
    let row = |operation, ours, peer, linux, target_ns| Row {
        operation,
        ours,
        peer,
        linux,
        target_ns,
        ir: None,
        target_ir: None,
        speedup: None,
        note: "",
    };
    vec![
        Row {
            ir: Some(IrPick {
                benches: &[
                    "vmstorm/bitset_fragmented.ops1000",
                    "vmstorm/buddy_fragmented.ops1000",
                    "vmstorm/holelist_fragmented.ops1000",
                ],
                harness: Some("peers/harness_fragmented.ops1000"),
                ops: 1000.0,
            }),
            target_ir: Some(30.0),
            ..row(
                "frame alloc+free, fragmented pool",
                pick("frames_fragmented", "ours-", 1.0),
                pick("frames_fragmented", "peer-", 1.0),
                None,
                Some(6.0),
            )
        },
        Row {
            ir: Some(IrPick {
                benches: &[
                    "vmstorm/bitset_contig16.ops100",
                    "vmstorm/buddy_contig16.ops100",
                    "vmstorm/holelist_contig16.ops100",
                ],
                harness: Some("peers/harness_contig16.ops100"),
                ops: 100.0,
            }),
            target_ir: Some(80.0),
            ..row(
                "contiguous 16 frames",
                pick("frames_contig16", "ours-", 1.0),
                pick("frames_contig16", "peer-", 1.0),
                None,
                Some(8.0),
            )
        },
        row(
            "contiguous 512 frames, 2 MiB-aligned",
            pick("frames_contig512", "ours-", 1.0),
            pick("frames_contig512", "peer-", 1.0),
            None,
            Some(15.0),
        ),
        row(
            "map 4 KiB page, sequential, x86-64 (amortized in map_range)",
            pick("map_seq", "ours-x86-64", 512.0),
            pick("map_seq", "peer-", 512.0),
            None,
            Some(3.0),
        ),
        Row {
            ir: Some(IrPick {
                benches: &["vmstorm/ours_x86_64_translate_random.ops1000"],
                harness: Some("peers/harness_translate_random.ops1000"),
                ops: 1000.0,
            }),
            target_ir: Some(30.0),
            ..row(
                "translate, x86-64, random, beyond L2",
                pick("translate_random", "ours-x86-64", 1.0),
                pick("translate_random", "peer-", 1.0),
                None,
                Some(6.0),
            )
        },
        Row {
            note: "ours: per-page COW through the server; peer: walk + re-map of the tables",
            ..row(
                "fork of 1,000 mapped pages",
                pick("vm_fork_1k", "ours-cow-", 1.0),
                pick("fork_tables_1k", "peer-", 1.0),
                None,
                Some(1_400.0),
            )
        },
        Row {
            note: "ours: per-page COW through the server; peer: walk + re-map of the tables",
            ..row(
                "fork of 100,000 mapped pages",
                pick("vm_fork_100k", "ours-cow-", 1.0),
                pick("fork_tables_100k", "peer-", 1.0),
                None,
                Some(100_000.0),
            )
        },
        Row {
            ir: Some(IrPick { benches: &["server/fork_pages.share_1k"], harness: None, ops: 1.0 }),
            note: "on-demand fork (`share`): leaf tables shared, not copied",
            ..row(
                "fork of 1,000 mapped pages, shared leaf tables",
                pick("vm_fork_1k", "ours-share-", 1.0),
                pick("fork_tables_1k", "peer-", 1.0),
                None,
                Some(400.0),
            )
        },
        Row {
            note: "on-demand fork (`share`): leaf tables shared, not copied",
            ..row(
                "fork of 100,000 mapped pages, shared leaf tables",
                pick("vm_fork_100k", "ours-share-", 1.0),
                pick("fork_tables_100k", "peer-", 1.0),
                None,
                Some(1_000.0),
            )
        },
        Row {
            ir: Some(IrPick { benches: &["server/fault_unshare.tables16"], harness: None, ops: 16.0 }),
            note: "end to end: copy of one full leaf table, then the page's COW copy",
            ..row(
                "first write under a shared leaf table",
                pick("vm_fault_unshare", "ours-", 1.0),
                None,
                None,
                Some(1_000.0),
            )
        },
        Row {
            ir: Some(IrPick {
                benches: &["server/fault_zero.pages64", "server/fault_zero.prezeroed_pages64"],
                harness: None,
                ops: 64.0,
            }),
            ..row(
                "demand-zero fault, end to end through the message loop",
                pick("vm_fault_zero", "ours-", 1.0),
                None,
                pick("linux", "page_fault1", 1.0),
                Some(200.0),
            )
        },
        Row {
            ir: Some(IrPick { benches: &["server/fault_cow.pages64"], harness: None, ops: 64.0 }),
            ..row(
                "COW fault with copy",
                pick("vm_fault_cow", "ours-", 1.0),
                None,
                pick("linux", "cow_fault", 1.0),
                Some(400.0),
            )
        },
        row(
            "mmap+munmap untouched (128 MiB)",
            pick("vm_mmap", "ours-", 1.0),
            None,
            pick("linux", "mmap1", 1.0),
            Some(100.0),
        ),
        row(
            "fork+exec+exit of a small image",
            pick("vm_exec", "ours-", 1.0),
            None,
            pick("linux", "fork_exec_wait", 1.0),
            Some(5_000.0),
        ),
        Row {
            ir: Some(IrPick { benches: &["server/dispatch_trivial.ops1000"], harness: None, ops: 1000.0 }),
            target_ir: Some(25.0),
            ..row(
                "dispatch + ACL + reply of a trivial call",
                pick("vm_dispatch", "ours-", 1.0),
                None,
                None,
                None,
            )
        },
        Row {
            speedup: Some((
                Pick { group: "storm_mixed", prefix: "ours-1-shard", per_iter: 1.0 },
                Pick { group: "storm_mixed", prefix: "ours-2-shards", per_iter: 1.0 },
                1.8,
            )),
            note: "mixed storm, default strategy; time per storm, 1 shard ÷ 2 shards",
            ..row("shards on 2 cores", None, None, None, None)
        },
        Row {
            note: "informational",
            ..row(
                "brk +4 KiB / −4 KiB pair",
                pick("vm_brk", "ours-", 1.0),
                None,
                pick("linux", "brk1", 1.0),
                None,
            )
        },
        Row {
            note: "informational",
            ..row(
                "fork+exit of a small process",
                pick("vm_fork_exit", "ours-", 1.0),
                None,
                pick("linux", "fork_exit_wait", 1.0),
                None,
            )
        },
    ]
}

/// The fastest matching benchmark: `(id, ns per operation)`.
pub fn best(times: &Times, p: Pick) -> Option<(String, f64)> {
    let head = format!("{}/", p.group);
    times
        .iter()
        .filter_map(|(k, &ns)| {
            let id = k.strip_prefix(&head)?;
            id.starts_with(p.prefix).then(|| (id.to_string(), ns / p.per_iter))
        })
        .min_by(|a, b| a.1.total_cmp(&b.1))
}

/// Our lowest instruction count per operation, net of the harness.
pub fn best_ir(counts: &Counts, p: IrPick) -> Option<f64> {
    let harness = match p.harness {
        Some(h) => *counts.get(h)? as f64,
        None => 0.0,
    };
    p.benches
        .iter()
        .filter_map(|b| counts.get(*b))
        .map(|&ir| (ir as f64 - harness) / p.ops)
        .min_by(f64::total_cmp)
}

/// A time for a table cell.
pub fn fmt_ns(ns: f64) -> String {
    if ns >= 1_000_000.0 {
        format!("{:.2} ms", ns / 1_000_000.0)
    } else if ns >= 1_000.0 {
        format!("{:.2} µs", ns / 1_000.0)
    } else {
        format!("{ns:.1} ns")
    }
}

/// The Markdown table (and its preamble).
pub fn render(times: &Times, counts: &Counts, header: &str) -> String {
    let mut s = String::new();
    s.push_str(header);
    s.push_str(
        "\n| operation | ours (best strategy) | best peer | Linux | target | ours ÷ target | peer ÷ ours | Linux ÷ ours | Ir/op (target) | met |\n",
    );
    s.push_str("|---|---|---|---|---|---|---|---|---|---|\n");
    for r in rows() {
        if let Some((one, many, target)) = r.speedup {
            let (a, b) = (best(times, one), best(times, many));
            let (cell, met) = match (a, b) {
                (Some((_, a)), Some((_, b))) if b > 0.0 => {
                    let x = a / b;
                    (
                        format!("{x:.2}× ({} → {})", fmt_ns(a), fmt_ns(b)),
                        if x >= target { "**yes**" } else { "no" },
                    )
                }
                _ => ("—".to_string(), "not measured"),
            };
            let _ = writeln!(
                s,
                "| {} | {cell} | — | — | ≥ {target}× | — | — | — | — | {met}{} |",
                r.operation,
                note(r.note)
            );
            continue;
        }
        let ours = r.ours.and_then(|p| best(times, p));
        let peer = r.peer.and_then(|p| best(times, p));
        let linux = r.linux.and_then(|p| best(times, p));
        let ir = r.ir.and_then(|p| best_ir(counts, p));
        let cell = |v: &Option<(String, f64)>| match v {
            Some((id, ns)) => {
                format!("{} ({})", fmt_ns(*ns), id.trim_start_matches("ours-").trim_start_matches("peer-"))
            }
            None => "—".to_string(),
        };
        let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) if b > 0.0 => format!("{:.2}×", a / b),
            _ => "—".to_string(),
        };
        let ours_ns = ours.as_ref().map(|o| o.1);
        let time_met = match (ours_ns, r.target_ns) {
            (Some(o), Some(t)) => Some(o <= t),
            _ => None,
        };
        let ir_met = match (ir, r.target_ir) {
            (Some(i), Some(t)) => Some(i <= t),
            _ => None,
        };
        let met = match (time_met, ir_met) {
            (None, None) if ours.is_none() => format!("not measured{}", note(r.note)),
            (None, None) => format!("no target{}", note(r.note).replace(" (informational)", "")),
            (t, i) => {
                let ok = t.unwrap_or(true) && i.unwrap_or(true);
                format!("{}{}", if ok { "**yes**" } else { "no" }, note(r.note))
            }
        };
        let target = r.target_ns.map(fmt_ns).unwrap_or_else(|| "—".into());
        let ir_cell = match (ir, r.target_ir) {
            (Some(i), Some(t)) => format!("{i:.1} (≤ {t})"),
            (None, Some(t)) => format!("— (≤ {t})"),
            (Some(i), None) => format!("{i:.1}"),
            (None, None) => "—".into(),
        };
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.operation,
            cell(&ours),
            cell(&peer),
            linux.as_ref().map(|l| fmt_ns(l.1)).unwrap_or_else(|| "—".into()),
            target,
            ratio(ours_ns, r.target_ns),
            ratio(peer.as_ref().map(|p| p.1), ours_ns),
            ratio(linux.as_ref().map(|l| l.1), ours_ns),
            ir_cell,
            met
        );
    }
    s
}

fn note(n: &str) -> String {
    if n.is_empty() {
        String::new()
    } else {
        format!(" ({n})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn times() -> Times {
        [
            ("frames_fragmented/ours-bitset", 5.0),
            ("frames_fragmented/ours-holelist", 60_000.0),
            ("frames_fragmented/peer-frame-alloc", 35.0),
            ("frames_fragmented/peer-bitmap-allocator", 30.0),
            ("map_seq/ours-x86-64", 1024.0),
            ("map_seq/ours-i386", 512.0),
            ("linux/page_fault1", 2263.0),
            ("vm_fault_zero/ours-bitset-x86-64", 300.0),
            ("storm_mixed/ours-1-shard", 1_000_000.0),
            ("storm_mixed/ours-2-shards", 540_000.0),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    #[test]
    fn best_takes_the_fastest_matching_id_per_operation() {
        let t = times();
        assert_eq!(
            best(&t, Pick { group: "frames_fragmented", prefix: "ours-", per_iter: 1.0 }).unwrap().1,
            5.0
        );
        let peer = best(&t, Pick { group: "frames_fragmented", prefix: "peer-", per_iter: 1.0 }).unwrap();
        assert_eq!(peer, ("peer-bitmap-allocator".to_string(), 30.0));
        // i386 is faster but the row asks for x86-64; 1024 ns per 512 pages.
        assert_eq!(
            best(&t, Pick { group: "map_seq", prefix: "ours-x86-64", per_iter: 512.0 }).unwrap().1,
            2.0
        );
        assert!(best(&t, Pick { group: "nope", prefix: "", per_iter: 1.0 }).is_none());
    }

    #[test]
    fn ir_is_net_of_the_harness_per_operation() {
        let c: Counts = [("a/x.ops", 31_000u64), ("a/y.ops", 50_000), ("h/h.ops", 6_000)]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        let p =
            IrPick { benches: &["a/x.ops", "a/y.ops", "a/missing"], harness: Some("h/h.ops"), ops: 1000.0 };
        assert_eq!(best_ir(&c, p), Some(25.0));
        assert_eq!(best_ir(&c, IrPick { harness: Some("h/none"), ..p }), None);
    }

    #[test]
    fn table_has_every_design_row_and_judges_targets() {
        let out = render(&times(), &Counts::new(), "# head\n");
        assert!(out.starts_with("# head\n"));
        assert_eq!(
            out.lines().filter(|l| l.starts_with("| ") && !l.starts_with("| operation")).count(),
            rows().len()
        );
        let frag = out.lines().find(|l| l.contains("fragmented pool")).unwrap();
        assert!(
            frag.contains("5.0 ns (bitset)") && frag.contains("6.00×") && frag.contains("**yes**"),
            "{frag}"
        );
        let fault = out.lines().find(|l| l.contains("demand-zero")).unwrap();
        assert!(fault.contains("7.54×") && fault.contains("| no"), "{fault}");
        let shards = out.lines().find(|l| l.contains("shards on 2 cores")).unwrap();
        assert!(shards.contains("1.85×") && shards.contains("**yes**"), "{shards}");
        let shared = out.lines().find(|l| l.contains("shared leaf")).unwrap();
        assert!(shared.contains("not measured"), "{shared}");
    }
}
