//! The folio fixtures (`tests/fixtures/folio`): real programs recorded with perf whose
//! anonymous fault counts change with the host's folio size. Each capture imports, its
//! recorded fault count equals what `perf script` printed when it was made, and the importer
//! keeps one [`TouchFault`] per touch that agrees with the touch and with the program's own
//! mappings.

use std::io::Read;
use std::path::{Path, PathBuf};

use vmstorm_loadgen::op::{MapKind, Op, Place};
use vmstorm_loadgen::trace::perf::predict::{predict_range, predict_range_sampled, predict_with_pages};
use vmstorm_loadgen::trace::perf::{AreaKind, PerfReport, TouchFault};
use vmstorm_loadgen::trace::{load_bytes, Format, ImportOptions, Loaded};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/folio")
}

/// The program names of the manifest, in order.
fn programs() -> Vec<String> {
    let text = std::fs::read_to_string(dir().join("programs.tsv")).unwrap();
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| l.split('\t').next().unwrap().to_string())
        .collect()
}

fn load(name: &str) -> (Loaded, PerfReport) {
    let gz = std::fs::read(dir().join(format!("{name}.perf.data.gz"))).unwrap();
    let mut bytes = Vec::new();
    flate2::read::GzDecoder::new(&gz[..]).read_to_end(&mut bytes).unwrap();
    let l = load_bytes(&bytes, &format!("{name}.perf.data"), &ImportOptions::default())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(l.format, Format::Perf, "{name}");
    let report = l.perf.clone().expect("a perf capture has a perf report");
    (l, report)
}

#[test]
fn the_manifest_lists_every_capture() {
    let names = programs();
    assert_eq!(names, ["sortpipe", "awkarray", "bigheap", "bufs", "pyalloc"]);
    for n in &names {
        assert!(dir().join(format!("{n}.perf.data.gz")).exists(), "{n}");
        assert!(dir().join(format!("{n}.faults")).exists(), "{n}");
    }
}

#[test]
fn captures_import_whole_with_one_fact_per_touch() {
    for name in programs() {
        let (l, report) = load(&name);
        let want: u64 =
            std::fs::read_to_string(dir().join(format!("{name}.faults"))).unwrap().trim().parse().unwrap();
        let rec = l.trace.header.recorded.expect("perf traces carry recorded faults");
        assert_eq!(rec.faults, want, "{name}");
        assert_eq!(rec.lost, 0, "{name}");
        assert_eq!(
            report.placed.unplaced + report.placed.clipped + report.placed.refused,
            0,
            "{name}: every fault placed"
        );
        let touches: Vec<(Place, bool)> = l
            .trace
            .ops
            .iter()
            .filter_map(|op| match *op {
                Op::Touch { place, write, .. } => Some((place, write)),
                _ => None,
            })
            .collect();
        assert_eq!(touches.len() as u64, want, "{name}: one touch per fault");
        assert_eq!(report.touch_faults.len(), touches.len(), "{name}: one fact per touch");
        for (k, ((place, write), f)) in touches.iter().zip(&report.touch_faults).enumerate() {
            // The fact and the touch describe the same fault.
            match (place, f.kind) {
                (Place::Map(..), AreaKind::Map(_))
                | (Place::Heap(_), AreaKind::Heap)
                | (Place::Stack(_), AreaKind::Stack)
                | (Place::Text(_), AreaKind::Text)
                | (Place::Data(_), AreaKind::Data | AreaKind::Bss) => {}
                other => panic!("{name}: touch {k} is {other:?}"),
            }
            if f.kind != AreaKind::Text {
                assert_eq!(*write, f.write(), "{name}: touch {k}");
            }
            // The window holds the page and stays inside its 2 MiB block.
            assert!(f.window.0 <= f.page && f.page < f.window.1, "{name}: touch {k} {f:?}");
            assert_eq!(f.window.0 / 512, (f.window.1 - 1) / 512, "{name}: touch {k} {f:?}");
        }
    }
}

/// Pages of a fault's window that lie in the same 2 MiB block, for the buffers of `bufs.c`.
fn window_pages(f: &TouchFault) -> u64 {
    f.window.1 - f.window.0
}

#[test]
fn bufs_facts_show_the_kernel_rules_its_buffers_exercise() {
    let (_, report) = load("bufs");
    let facts = &report.touch_faults;
    // The 1 MiB MAP_STACK buffer: 256 missing-page writes, none a folio candidate.
    let stack: Vec<&TouchFault> = facts.iter().filter(|f| f.no_huge).collect();
    assert_eq!(stack.len(), 256);
    assert!(stack.iter().all(|f| f.write() && !f.present() && !f.folio_candidate(4)));
    // The 4 MiB buffer is a multiple of 2 MiB, so the kernel aligned it: some anonymous
    // write faults sit in a window that is a whole 2 MiB block of one mapping.
    let whole = facts.iter().filter(|f| f.folio_candidate(512)).count();
    assert!(whole >= 1024, "{whole} faults in whole 2 MiB blocks");
    assert!(facts.iter().any(|f| window_pages(f) == 512));
    // The 1 MiB buffer read before it was written: reads of missing pages (zero page), then
    // writes to present pages (copy of the zero page); neither can take a folio.
    let reads = facts.iter().filter(|f| f.anon_private() && !f.write() && !f.present()).count();
    let zero_copies = facts.iter().filter(|f| f.anon_private() && f.write() && f.present()).count();
    assert!(reads >= 256, "{reads} reads of missing anonymous pages");
    assert!(
        zero_copies >= 256 + 64,
        "{zero_copies} writes to present anonymous pages (zero page, and the child's COW)"
    );
    // File-backed faults (libc, the program's data) are never candidates.
    assert!(facts.iter().any(|f| f.kind == AreaKind::Map(MapKind::File)));
    assert!(facts.iter().filter(|f| f.kind == AreaKind::Map(MapKind::File)).all(|f| !f.folio_candidate(4)));
}

/// Page faults the host would take for a capture's faults with anonymous folios of `pages`
/// pages (1 = 4 KiB only; 512 = PMD THP only): the prediction `vmstorm replay --folio`
/// reports ([`predict_with_pages`], rules in `docs/large-folios.md` §9), at the recorded
/// placement of each mapping.
fn reference_model(name: &str, pages: u64) -> u64 {
    let (l, report) = load(name);
    predict_with_pages(&l.trace.ops, &report.touch_faults, pages).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The measured medians of `results/folio/host-faults.tsv` (`bench/mthp-host.sh`), by
/// program and size.
fn measured() -> Option<std::collections::HashMap<(String, String), u64>> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../results/folio/host-faults.tsv");
    let text = std::fs::read_to_string(p).ok()?;
    let mut out = std::collections::HashMap::new();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split('\t').collect();
        out.insert((f[0].to_string(), f[1].to_string()), f[3].parse().ok()?);
    }
    Some(out)
}

#[test]
fn the_facts_suffice_to_predict_the_host_at_16k_and_64k() {
    let Some(host) = measured() else {
        eprintln!("results/folio/host-faults.tsv not found: run bench/mthp-host.sh");
        return;
    };
    for name in programs() {
        for (size, pages) in [("4k", 1), ("16k", 4), ("64k", 16)] {
            let want = host[&(name.clone(), size.to_string())] as f64;
            let got = reference_model(&name, pages) as f64;
            let err = (got - want) / want;
            // The target for a prediction; this model was seen within 3.2 %.
            assert!(
                err.abs() <= 0.15,
                "{name} at {size}: model {got}, host median {want} ({:+.1} %)",
                err * 100.0
            );
        }
    }
}

#[test]
fn the_2mib_model_follows_the_recorded_placement() {
    // At 2 MiB the count depends on where each large mapping landed in the recorded run: no
    // tolerance against another run's median is asserted, only the rules (see
    // docs/large-folios.md §7). bufs: its 4 MiB buffer is 2 MiB-aligned whatever the
    // placement, so the model must save at least those 1024 - 2 faults over 4 KiB.
    assert!(reference_model("bufs", 1) - reference_model("bufs", 512) >= 1022);
    // awkarray grows its heap in small steps: no whole 2 MiB block is in the heap when it
    // faults, so nothing is saved.
    assert_eq!(reference_model("awkarray", 512), reference_model("awkarray", 1));
}

/// The host's 2M runs (`results/folio/host-runs.tsv`) and its 4k runs' least and most, by
/// program.
fn measured_runs(name: &str, size: &str) -> Option<Vec<u64>> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../results/folio/host-runs.tsv");
    let text = std::fs::read_to_string(p).ok()?;
    let runs: Vec<u64> = text
        .lines()
        .skip(1)
        .map(|l| l.split('\t').collect::<Vec<_>>())
        .filter(|f| f.len() == 4 && f[0] == name && f[1] == size)
        .filter_map(|f| f[3].parse().ok())
        .collect();
    (!runs.is_empty()).then_some(runs)
}

#[test]
fn the_2mib_range_holds_the_recorded_placement_and_the_hosts_runs() {
    for name in programs() {
        let (l, report) = load(&name);
        let (ops, facts) = (&l.trace.ops, &report.touch_faults);
        let at = predict_with_pages(ops, facts, 512).unwrap();
        // Every 8th shift (4 KiB each) keeps the test quick in a debug build; the range it
        // finds lies inside the full one (`folio_predictions` computes that).
        let (lo, hi) = predict_range_sampled(ops, facts, 8).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(lo <= at && at <= hi, "{name}: {at} outside {lo}..={hi}");
        // No placement takes more faults than 4 KiB pages everywhere.
        assert!(hi <= predict_with_pages(ops, facts, 1).unwrap(), "{name}");
        let (Some(runs), Some(base)) = (measured_runs(&name, "2M"), measured_runs(&name, "4k")) else {
            eprintln!("results/folio/host-runs.tsv not found: run bench/mthp-host.sh");
            return;
        };
        // The host's counts vary from run to run by a few faults where no placement can
        // matter (its 4k runs); every 2M run lies in the range widened by that much.
        let p4 = predict_with_pages(ops, facts, 1).unwrap() as i64;
        let below = (*base.iter().min().unwrap() as i64 - p4).min(0);
        let above = (*base.iter().max().unwrap() as i64 - p4).max(0);
        let (wlo, whi) = (lo as i64 + below, hi as i64 + above);
        let mut sorted = runs.clone();
        sorted.sort_unstable();
        let median = sorted[sorted.len() / 2] as i64;
        assert!((wlo..=whi).contains(&median), "{name}: host median {median} outside {wlo}..={whi}");
        let outside = runs.iter().filter(|&&v| !(wlo..=whi).contains(&(v as i64))).count();
        // awkarray's 21 runs at 2M spread two faults further than its 7 runs at 4k.
        assert!(
            outside <= 2,
            "{name}: {outside} of {} host runs outside {wlo}..={whi}: {runs:?}",
            runs.len()
        );
    }
}

/// `vmstorm replay CAPTURE --huge all --verify --json` under both formats: the replay
/// verifies with huge pages, `--huge always` reports the prediction at the recorded
/// placement and the range, `never` no range.
#[test]
fn replay_predicts_the_host_faults_with_huge_pages_and_verifies() {
    let name = "bufs";
    let gz = std::fs::read(dir().join(format!("{name}.perf.data.gz"))).unwrap();
    let mut bytes = Vec::new();
    flate2::read::GzDecoder::new(&gz[..]).read_to_end(&mut bytes).unwrap();
    let tmp = std::env::temp_dir().join(format!("vmstorm-huge-test-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let capture = tmp.join(format!("{name}.perf.data"));
    std::fs::write(&capture, &bytes).unwrap();
    let json = tmp.join(format!("{name}.json"));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_vmstorm"))
        .args([
            "replay",
            capture.to_str().unwrap(),
            "--huge",
            "all",
            "--paging",
            "all",
            "--verify",
            "--no-warmup",
        ])
        .args(["--json", json.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("and 2 MiB huge pages: ") && stdout.contains("over placements"), "{stdout}");
    let reports: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(reports.len(), 4, "two formats x two policies");
    let (l, report) = load(name);
    let at = predict_with_pages(&l.trace.ops, &report.touch_faults, 512).unwrap();
    let range = predict_range(&l.trace.ops, &report.touch_faults).unwrap();
    for r in &reports {
        assert_eq!(r["verify"]["ok"], true, "{r}");
        let predicted = r["predicted_host_faults"].as_u64().unwrap();
        match r["huge"].as_str().unwrap() {
            "always" => {
                assert_eq!(predicted, at);
                assert_eq!(r["predicted_host_faults_range"], serde_json::json!([range.0, range.1]));
                // The 4 MiB buffer and the others' whole blocks are huge pages in the server too.
                assert!(r["huge_figures"]["huge_faults"].as_u64().unwrap() > 0, "{r}");
            }
            _ => {
                assert_eq!(predicted, predict_with_pages(&l.trace.ops, &report.touch_faults, 1).unwrap());
                assert!(r.get("predicted_host_faults_range").is_none(), "{r}");
                assert_eq!(r["huge_figures"]["huge_faults"], 0);
            }
        }
    }
    let _ = std::fs::remove_dir_all(&tmp);
}

/// `vmstorm replay CAPTURE --folio all --verify --json`: every fixture replays verified
/// under every folio size, and the `predicted_host_faults` it reports at 16 KiB and 64 KiB
/// lie within the issue's ±15 % of the host's measured medians.
#[test]
fn replay_predicts_the_host_faults_and_verifies_under_every_folio_size() {
    let host = measured();
    let tmp = std::env::temp_dir().join(format!("vmstorm-folio-test-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    for name in programs() {
        let gz = std::fs::read(dir().join(format!("{name}.perf.data.gz"))).unwrap();
        let mut bytes = Vec::new();
        flate2::read::GzDecoder::new(&gz[..]).read_to_end(&mut bytes).unwrap();
        let capture = tmp.join(format!("{name}.perf.data"));
        std::fs::write(&capture, bytes).unwrap();
        let json = tmp.join(format!("{name}.json"));
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_vmstorm"))
            .args(["replay", capture.to_str().unwrap(), "--folio", "all", "--verify", "--no-warmup"])
            .args(["--mem", "256M", "--json", json.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(out.status.success(), "{name}: {}", String::from_utf8_lossy(&out.stderr));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains("predicted host faults with 16k anonymous folios: "), "{stdout}");
        let reports: Vec<serde_json::Value> =
            serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
        assert_eq!(reports.len(), 8, "{name}: one report per folio size");
        for r in &reports {
            let size = r["folio"].as_str().unwrap().to_string();
            assert_eq!(r["verify"]["ok"], true, "{name} at {size}");
            let predicted =
                r["predicted_host_faults"].as_u64().unwrap_or_else(|| panic!("{name} at {size}: {r}"));
            let pages = vmstorm_core::FolioSize::parse(&size).unwrap().pages();
            assert_eq!(predicted, reference_model(&name, pages), "{name} at {size}");
            // The server maps 16 KiB folios for every capture (each has runs of anonymous
            // writes), none at 4k; untouched folio pages are among the frames zeroed.
            let f = &r["folio_figures"];
            match size.as_str() {
                "4k" => assert_eq!(f["folio_faults"], 0, "{name}"),
                "16k" => assert!(f["folio_faults"].as_u64().unwrap() > 0, "{name}: {f}"),
                _ => {}
            }
            assert!(f["untouched_folio_pages"].as_u64() <= f["frames_zeroed"].as_u64(), "{name} at {size}");
            let Some(host) = &host else { continue };
            if let Some(&want) = host.get(&(name.clone(), size.clone())) {
                let err = (predicted as f64 - want as f64) / want as f64;
                if size == "16k" || size == "64k" {
                    assert!(
                        err.abs() <= 0.15,
                        "{name} at {size}: predicted {predicted}, host median {want} ({:+.1} %)",
                        err * 100.0
                    );
                }
            }
        }
    }
    let _ = std::fs::remove_dir_all(&tmp);
}
