//! The folio fixtures (`tests/fixtures/folio`): real programs recorded with perf whose
//! anonymous fault counts change with the host's folio size. Each capture imports, its
//! recorded fault count equals what `perf script` printed when it was made, and the importer
//! keeps one [`TouchFault`] per touch that agrees with the touch and with the program's own
//! mappings.

use std::io::Read;
use std::path::{Path, PathBuf};

use vmstorm_loadgen::op::{MapKind, Op, Place};
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

/// A page's state in the reference model below.
#[derive(Clone, Copy, PartialEq, Eq)]
enum PageState {
    /// Mapped writable: a later access takes no fault.
    Writable,
    /// Mapped read-only (the zero page, a file page, or shared after a fork): a write faults.
    ReadOnly,
    /// Part of a 2 MiB range mapped to the huge zero page: a write takes one fault for it all.
    HugeZero,
}

/// Page faults the host would take for a capture's faults with anonymous folios of `pages`
/// pages (1 = 4 KiB only; 512 = PMD THP only), by the rules of `docs/large-folios.md` §9:
/// recorded faults replayed in order against a per-process model of which pages are mapped,
/// a missing-page anonymous write taking a whole aligned block when the facts say the block
/// lies in the area and the model says it is empty (for 2 MiB: and no page table exists yet
/// for it). It checks that the facts carry what a prediction needs; the placement of each
/// mapping is the recorded one.
fn reference_model(name: &str, pages: u64) -> u64 {
    use std::collections::{HashMap, HashSet};
    use vmstorm_loadgen::op::{MapId, Pid};
    let (l, report) = load(name);
    let mut state: HashMap<Pid, HashMap<u64, PageState>> = HashMap::new();
    let mut tables: HashMap<Pid, HashSet<u64>> = HashMap::new();
    let mut base: HashMap<(Pid, MapId), u64> = HashMap::new();
    let mut facts = report.touch_faults.iter();
    let mut faults = 0;
    for op in &l.trace.ops {
        match *op {
            Op::Fork { parent, child, .. } => {
                let p = state.entry(parent).or_default();
                p.values_mut().for_each(|s| {
                    if *s == PageState::Writable {
                        *s = PageState::ReadOnly
                    }
                });
                let copy = p.clone();
                state.insert(child, copy);
                let t = tables.entry(parent).or_default().clone();
                tables.insert(child, t);
                let inherited: Vec<_> =
                    base.iter().filter(|((q, _), _)| *q == parent).map(|((_, id), b)| (*id, *b)).collect();
                base.extend(inherited.into_iter().map(|(id, b)| ((child, id), b)));
            }
            Op::Exec { pid, .. } => {
                state.insert(pid, HashMap::new());
                tables.insert(pid, HashSet::new());
            }
            Op::Munmap { pid, id, offset, pages: n } | Op::Discard { pid, id, offset, pages: n } => {
                if let Some(&b) = base.get(&(pid, id)) {
                    let m = state.entry(pid).or_default();
                    (b + offset..b + offset + n).for_each(|p| {
                        m.remove(&p);
                    });
                }
            }
            Op::Touch { pid, place, .. } => {
                let f = facts.next().expect("one fact per touch");
                if let Place::Map(id, off) = place {
                    base.insert((pid, id), f.page - off);
                }
                let m = state.entry(pid).or_default();
                let t = tables.entry(pid).or_default();
                let block = f.page & !(pages - 1);
                let cur = m.get(&f.page).copied();
                if pages == 512 {
                    let pmd = f.page / 512;
                    if cur == Some(PageState::HugeZero) {
                        if f.write() {
                            faults += 1;
                            (block..block + 512).for_each(|p| {
                                m.insert(p, PageState::Writable);
                            });
                        }
                        continue;
                    }
                    let whole = f.anon_private() && !f.no_huge && f.window == (block, block + 512);
                    if cur.is_none() && !f.present() && whole && !t.contains(&pmd) {
                        faults += 1;
                        let s = if f.write() { PageState::Writable } else { PageState::HugeZero };
                        (block..block + 512).for_each(|p| {
                            m.insert(p, s);
                        });
                        continue;
                    }
                    if cur.is_none() {
                        t.insert(pmd);
                    }
                }
                match (cur, f.present(), f.write()) {
                    (Some(PageState::Writable), _, _) => {}
                    (Some(_), _, false) => {}
                    (Some(_), _, true) | (None, true, _) => {
                        faults += 1;
                        m.insert(f.page, PageState::Writable);
                    }
                    (None, false, false) => {
                        faults += 1;
                        m.insert(f.page, PageState::ReadOnly);
                    }
                    (None, false, true) => {
                        faults += 1;
                        let empty = (block..block + pages).all(|p| !m.contains_key(&p));
                        if pages > 1 && pages < 512 && f.folio_candidate(pages) && empty {
                            (block..block + pages).for_each(|p| {
                                m.insert(p, PageState::Writable);
                            });
                        } else {
                            m.insert(f.page, PageState::Writable);
                        }
                    }
                }
            }
            _ => {}
        }
    }
    faults
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
            // The target for a prediction; this model was seen within 3.5 %.
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
