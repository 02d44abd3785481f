//! The built `vmstorm` binary: help, errors as one line with a location and a non-zero exit
//! (never a panic), `--json` fields, runs with verification, import, compare.

use std::path::PathBuf;
use std::process::{Command, Output};

fn vmstorm(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vmstorm")).args(args).output().expect("run vmstorm")
}

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("vmstorm-cli-test-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d.join(name)
}

/// Asserts a failure: non-zero exit, no panic, exactly one stderr line starting with
/// `vmstorm: error: ` and containing `needle`.
fn assert_one_line_error(out: &Output, needle: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "succeeded: {err}");
    assert_ne!(out.status.code(), Some(101), "panicked: {err}");
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(err.lines().count(), 1, "not one line: {err}");
    assert!(err.starts_with("vmstorm: error: "), "{err}");
    assert!(err.contains(needle), "expected {needle:?} in {err}");
}

#[test]
fn help_works_and_explains_flags() {
    let out = vmstorm(&["--help"]);
    assert!(out.status.success());
    let s = String::from_utf8_lossy(&out.stdout);
    for w in ["run", "replay", "import", "record", "compare"] {
        assert!(s.contains(w), "{w} missing from help");
    }
    let out = vmstorm(&["run", "--help"]);
    let s = String::from_utf8_lossy(&out.stdout);
    for w in [
        "--alloc",
        "--paging",
        "--fork",
        "--zero",
        "--mem",
        "--seed",
        "--scale",
        "--shards",
        "--verify",
        "--json",
        "--duration",
        "page_fault1",
    ] {
        assert!(s.contains(w), "{w} missing from run --help");
    }
    assert!(vmstorm(&["replay", "--help"]).status.success());
    assert!(vmstorm(&["compare", "--help"]).status.success());
}

#[test]
fn bad_flags_are_one_line_errors() {
    assert_one_line_error(&vmstorm(&["run", "fork", "--alloc", "slab"]), "slab");
    assert_one_line_error(&vmstorm(&["run", "forks"]), "forks");
    assert_one_line_error(&vmstorm(&["run", "fork", "--mem", "12X"]), "12X");
    assert_one_line_error(&vmstorm(&["frobnicate"]), "frobnicate");
    assert_one_line_error(&vmstorm(&["replay", "/nonexistent/trace.vmtrace"]), "/nonexistent/trace.vmtrace");
}

#[test]
fn arena_too_small_is_a_clear_error() {
    let out = vmstorm(&["run", "fault", "--mem", "64K", "--scale", "2"]);
    assert_one_line_error(&out, "vmstorm: error:");
    let out = vmstorm(&["run", "shell", "--mem", "2M", "--scale", "20"]);
    assert_one_line_error(&out, "mem");
}

#[test]
fn malformed_traces_name_file_and_line_or_offset() {
    let text = scratch("bad.vmtrace");
    std::fs::write(
        &text,
        "# vmtrace v1 page=4096\nexec     p1 text=4 data=1 bss=1 stack=4\nmmap p1 m1 pages=zz rw- private\n",
    )
    .unwrap();
    assert_one_line_error(&vmstorm(&["replay", text.to_str().unwrap()]), "bad.vmtrace:3:");

    let inconsistent = scratch("inconsistent.vmtrace");
    std::fs::write(
        &inconsistent,
        "# vmtrace v1 page=4096\nexec     p1 text=4 data=1 bss=1 stack=4\nexit     p2\n",
    )
    .unwrap();
    assert_one_line_error(&vmstorm(&["replay", inconsistent.to_str().unwrap()]), "inconsistent.vmtrace:3:");

    // A binary trace cut in the middle.
    let good = scratch("good.vmtb");
    let out =
        vmstorm(&["run", "fork", "--scale", "3", "--save-trace", good.to_str().unwrap(), "--mem", "64M"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let bytes = std::fs::read(&good).unwrap();
    let cut = scratch("cut.vmtb");
    std::fs::write(&cut, &bytes[..bytes.len() * 2 / 3]).unwrap();
    assert_one_line_error(&vmstorm(&["replay", cut.to_str().unwrap()]), "byte");

    // Garbage.
    let garbage = scratch("garbage.bin");
    let g: Vec<u8> = (0..4096u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
    std::fs::write(&garbage, g).unwrap();
    assert_one_line_error(&vmstorm(&["replay", garbage.to_str().unwrap()]), "garbage.bin");

    // A truncated strace log (last line cut).
    let log = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/forkloop.strace"))
        .unwrap();
    let trunc = scratch("trunc.strace");
    std::fs::write(&trunc, &log[..log.len() - 7]).unwrap();
    assert_one_line_error(&vmstorm(&["replay", trunc.to_str().unwrap()]), "trunc.strace");
    assert_one_line_error(&vmstorm(&["replay", text.to_str().unwrap(), "--touch-fraction", "2"]), "fraction");
}

#[test]
fn run_with_verify_writes_the_json_fields() {
    let json = scratch("run.json");
    let out = vmstorm(&[
        "run",
        "cow",
        "--scale",
        "20",
        "--mem",
        "64M",
        "--verify",
        "--json",
        json.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("storm cow") && stdout.contains("verify:"), "{stdout}");
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    for k in [
        "storm",
        "alloc",
        "paging",
        "fork",
        "zero",
        "shards",
        "ops",
        "seconds",
        "ops_per_sec",
        "faults",
        "cow_copies",
        "frames_peak",
        "pt_pages_peak",
        "latency_ns",
        "per_op",
        "verify",
    ] {
        assert!(v.get(k).is_some(), "{k} missing in {v}");
    }
    for k in ["p50", "p99", "max"] {
        assert!(v["latency_ns"][k].is_u64(), "latency_ns.{k}");
    }
    assert!(v["per_op"]["fork"]["count"].as_u64().unwrap() >= 20);
    assert!(v["per_op"]["touch"]["ns_p50"].is_u64());
    assert_eq!(v["verify"]["ok"], true);
    assert!(v["verify"]["checked"].as_u64().unwrap() > 0);
    // Verification time is reported apart from the run's seconds.
    assert!(v["verify"]["seconds"].is_f64(), "{v}");
    assert!(stdout.contains("not timed"), "{stdout}");
    assert!(v["cow_copies"].as_u64().unwrap() > 0);
    assert_eq!(v["storm"], "cow");
}

#[test]
fn replay_import_and_shards() {
    let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/pipeline.strace");
    let out_trace = scratch("pipeline.vmtrace");
    let out = vmstorm(&["import", fixture, "-o", out_trace.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let json = scratch("replay.json");
    let out = vmstorm(&[
        "replay",
        out_trace.to_str().unwrap(),
        "--paging",
        "i386",
        "--verify",
        "--mem",
        "256M",
        "--json",
        json.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(v["trace"], "pipeline.vmtrace");
    assert_eq!(v["paging"], "i386");

    let json = scratch("shards.json");
    let out = vmstorm(&[
        "run",
        "fault",
        "--scale",
        "4",
        "--shards",
        "2",
        "--mem",
        "64M",
        "--json",
        json.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(v["shards"], 2);
    assert_eq!(v["per_shard"].as_array().map(|a| a.len()), Some(2));
    assert!(v["speedup_vs_one_shard"].as_f64().unwrap() > 0.0);
}

#[test]
fn run_all_strategies_and_soak() {
    let out = vmstorm(&["run", "brk", "--scale", "50", "--alloc", "all", "--paging", "all", "--mem", "32M"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let s = String::from_utf8_lossy(&out.stdout);
    assert!(s.contains("holelist/i386") && s.contains("fastest"), "{s}");
    let out = vmstorm(&["run", "mixed", "--duration", "1s", "--verify", "--mem", "256M"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("all passed"));
}

#[test]
fn compare_writes_a_report() {
    let dir = scratch("compare");
    let out = vmstorm(&[
        "compare",
        "--storms",
        "fork,fault,make",
        "--alloc",
        "bitset",
        "--paging",
        "all",
        "--quick",
        "--verify",
        "--mem",
        "256M",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let md = std::fs::read_to_string(dir.join("REPORT.md")).unwrap();
    assert!(md.contains("| `make` |") && md.contains("bitset/i386") && md.contains("ok ("), "{md}");
    for f in ["throughput.svg", "latency-fork.svg", "latency-make.svg", "results.json"] {
        assert!(dir.join(f).exists(), "{f}");
    }
    assert_one_line_error(
        &vmstorm(&["compare", "--storms", "nosuch", "--out", dir.to_str().unwrap()]),
        "nosuch",
    );
}

#[test]
fn flags_that_duration_cannot_honour_are_refused() {
    let out = vmstorm(&["run", "mixed", "--duration", "1s", "--scale", "5", "--mem", "64M"]);
    assert_one_line_error(&out, "--scale");
    let t = scratch("soak.vmtrace");
    let out =
        vmstorm(&["run", "mixed", "--duration", "1s", "--save-trace", t.to_str().unwrap(), "--mem", "64M"]);
    assert_one_line_error(&out, "--save-trace");
    assert!(!t.exists());
}

#[test]
fn run_saves_the_storm_it_played() {
    let t = scratch("fork.vmtrace");
    let out = vmstorm(&["run", "fork", "--scale", "5", "--mem", "32M", "--save-trace", t.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = std::fs::read_to_string(&t).unwrap();
    assert!(text.starts_with("# vmtrace v1") && text.contains("fork "), "{text}");
}

#[test]
fn memory_the_host_does_not_have_is_refused_at_start_up() {
    let out = vmstorm(&["run", "fork", "--scale", "5", "--mem", "32G", "--shards", "256"]);
    assert_one_line_error(&out, "--mem 32.0 GiB × --shards 256 needs 8.0 TiB but the host has");
    let out = vmstorm(&["run", "fork", "--scale", "100000000000000", "--mem", "32M"]);
    assert_one_line_error(&out, "--scale 100000000000000 of the fork storm");
}

#[test]
fn more_shards_than_cores_warn() {
    let out = vmstorm(&["run", "brk", "--scale", "5", "--shards", "256", "--mem", "8M", "--no-warmup"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("vmstorm: warning: --shards 256 exceeds the"), "{err}");
}

#[test]
fn folio_axis_reports_its_accounting_and_says_when_it_cannot_predict() {
    // A fault storm at 64 KiB folios: every fault maps a folio, the bloat is counted.
    let json = scratch("folio.json");
    let out = vmstorm(&[
        "run",
        "fault",
        "--scale",
        "2",
        "--mem",
        "64M",
        "--folio",
        "64k",
        "--json",
        json.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("folio=64k") && stdout.contains("folio 64k: "), "{stdout}");
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(v["folio"], "64k");
    let f = &v["folio_figures"];
    let (faults, folio_faults) = (v["faults"].as_u64().unwrap(), f["folio_faults"].as_u64().unwrap());
    assert!(folio_faults > 0 && folio_faults <= faults, "{v}");
    assert_eq!(f["folio_pages"].as_u64().unwrap(), 16 * folio_faults);
    assert_eq!(f["bytes_zeroed"].as_u64().unwrap(), 4096 * f["frames_zeroed"].as_u64().unwrap());
    assert!(f["pages_touched"].as_u64().unwrap() >= faults);
    assert!(f["ns_per_fault"].as_f64().unwrap() > 0.0, "{f}");
    // A storm is not a capture: no prediction and no note.
    assert!(v.get("predicted_host_faults").is_none() && v.get("host_prediction").is_none());
    // An strace log records no page faults: the replay says so instead of predicting.
    let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/forkloop.strace");
    let json = scratch("folio-strace.json");
    let out =
        vmstorm(&["replay", fixture, "--folio", "16k", "--mem", "64M", "--json", json.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("predicted host faults: none (an strace log records no page faults"), "{stdout}");
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert!(v.get("predicted_host_faults").is_none(), "{v}");
    assert!(v["host_prediction"].as_str().unwrap().contains("strace"), "{v}");
    // An unknown size is refused with the accepted ones.
    let out = vmstorm(&["run", "fault", "--folio", "8k"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--folio"));
}

#[test]
fn huge_axis_expands_reports_its_figures_and_says_when_it_cannot_predict() {
    // `--huge all` runs the fault storm twice: without and with huge pages.
    let json = scratch("huge.json");
    let out = vmstorm(&[
        "run",
        "fault",
        "--scale",
        "2",
        "--mem",
        "64M",
        "--huge",
        "all",
        "--json",
        json.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("huge=never") && stdout.contains("huge=always"), "{stdout}");
    assert!(stdout.contains("huge always: ") && stdout.contains("+huge"), "{stdout}");
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let reports = v.as_array().unwrap();
    assert_eq!(reports.len(), 2, "{v}");
    assert_eq!((reports[0]["huge"].as_str(), reports[1]["huge"].as_str()), (Some("never"), Some("always")));
    for k in ["huge_faults", "huge_pages", "huge_zero_maps", "fallbacks", "splits"] {
        assert!(
            reports[0]["huge_figures"].get(k).is_some() && reports[1]["huge_figures"].get(k).is_some(),
            "{k}"
        );
    }
    assert_eq!(reports[0]["huge_figures"]["huge_faults"], 0);
    // The storm's regions hold whole 4 MiB blocks of the default i386 tables: the faults
    // into them map huge pages, 1,024 pages each, zeroed whole.
    let (h, f) = (&reports[1]["huge_figures"], &reports[1]["folio_figures"]);
    let huge_faults = h["huge_faults"].as_u64().unwrap();
    assert!(huge_faults > 0, "{h}");
    assert_eq!(h["huge_pages"].as_u64().unwrap(), 1024 * huge_faults);
    assert!(f["frames_zeroed"].as_u64().unwrap() >= 1024 * huge_faults, "{f}");
    assert!(reports[1]["faults"].as_u64() < reports[0]["faults"].as_u64(), "{v}");
    // The mixed storm reads regions that take the huge zero page, which the server keeps
    // after every process has exited: the leak check allows for it, and only for it.
    let json = scratch("huge-mixed.json");
    let out = vmstorm(&[
        "run",
        "mixed",
        "--mem",
        "64M",
        "--huge",
        "always",
        "--verify",
        "--json",
        json.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert!(v["huge_figures"]["huge_zero_maps"].as_u64().unwrap() > 0, "{v}");
    assert_eq!(v["verify"]["ok"], true);
    // An strace log records no page faults: no prediction and no range, with the reason.
    let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/forkloop.strace");
    let json = scratch("huge-strace.json");
    let out =
        vmstorm(&["replay", fixture, "--huge", "always", "--mem", "64M", "--json", json.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("predicted host faults: none (an strace log records no page faults"), "{stdout}");
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert!(
        v.get("predicted_host_faults").is_none() && v.get("predicted_host_faults_range").is_none(),
        "{v}"
    );
    assert!(v["host_prediction"].as_str().unwrap().contains("strace"), "{v}");
    // `madvise` is Linux's but not a policy here.
    let out = vmstorm(&["run", "fault", "--huge", "madvise"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--huge"));
}

#[test]
fn compare_huge_all_sets_both_policies_side_by_side() {
    let dir = scratch("compare-huge");
    let out = vmstorm(&[
        "compare",
        "--storms",
        "fault",
        "--alloc",
        "buddy",
        "--paging",
        "x86-64",
        "--hot",
        "on",
        "--huge",
        "all",
        "--mem",
        "64M",
        "--rounds",
        "1",
        "--quick",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let md = std::fs::read_to_string(dir.join("REPORT.md")).unwrap();
    assert!(md.contains("hot+buddy/x86-64+huge") && md.contains("## Large folios"), "{md}");
    assert!(md.contains("| huge faults | huge zero | splits |"), "{md}");
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).unwrap()).unwrap();
    assert!(results.to_string().contains("\"huge_figures\""), "{results}");
}
