//! The strace importer on arbitrary text, lenient and strict: a trace whose ops are
//! consistent (the importer promises it), that round-trips through both formats and takes
//! synthesized touches; or an error at a line of the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vmstorm_fuzz::{check_error, check_round_trips, line_count, NAME};
use vmstorm_loadgen::trace::{import_strace, synthesize_touches, validate, ImportOptions, TouchOptions};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    // Small clamps so that fuzzed sizes stay cheap; the first byte picks strictness.
    let strict = data.first().is_some_and(|b| b & 1 == 1);
    let options = ImportOptions {
        reserve_clamp_pages: 64,
        map_clamp_pages: 256,
        strict,
        read_elf: false,
        allow_lost: false,
        skip_undecoded: false,
    };
    match import_strace(&text, NAME, &options) {
        Ok((t, report)) => {
            assert_eq!(report.ops, t.ops.len(), "report counts other ops than the trace has");
            if let Err(e) = validate(&t) {
                panic!("importer emitted inconsistent ops: op {}: {}", e.index, e.message);
            }
            check_round_trips(&t);
            let touched = synthesize_touches(&t, &TouchOptions { fraction: 0.5, seed: 7, fork_writes: 2 })
                .unwrap_or_else(|e| panic!("touch synthesis refused a valid trace: {e}"));
            check_round_trips(&touched);
            if let Err(e) = validate(&touched) {
                panic!("synthesized touches are inconsistent: op {}: {}", e.index, e.message);
            }
        }
        Err(e) => check_error(&e, text.len(), line_count(&text)),
    }
});
