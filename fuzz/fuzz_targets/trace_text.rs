//! The `.vmtrace` text parser on arbitrary bytes: a trace that round-trips through both
//! formats, or an error at a line of the input; then the whole loading path (format
//! detection, UTF-8 check, validation) on the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vmstorm_fuzz::{check_error, check_round_trips, line_count, NAME};
use vmstorm_loadgen::trace::{load_bytes, parse_text, ImportOptions};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    match parse_text(&text, NAME) {
        Ok(t) => check_round_trips(&t),
        Err(e) => check_error(&e, text.len(), line_count(&text)),
    }
    let lines = data.iter().filter(|&&b| b == b'\n').count() + 1;
    match load_bytes(data, NAME, &ImportOptions::default()) {
        Ok(loaded) => check_round_trips(&loaded.trace),
        Err(e) => check_error(&e, data.len(), lines),
    }
});
