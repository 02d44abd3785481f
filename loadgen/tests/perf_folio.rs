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
