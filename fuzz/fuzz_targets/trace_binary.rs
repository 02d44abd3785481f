//! The binary trace decoder on arbitrary bytes, as given and with the magic and checksum
//! repaired (so mutations reach the body): a trace that round-trips through both formats,
//! or an error at a byte offset inside the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vmstorm_fuzz::{check_error, check_round_trips, with_valid_checksum, NAME};
use vmstorm_loadgen::trace::{decode_binary, load_bytes, ImportOptions};

fn one(bytes: &[u8]) {
    match decode_binary(bytes, NAME) {
        Ok(t) => check_round_trips(&t),
        Err(e) => check_error(&e, bytes.len(), 1),
    }
}

fuzz_target!(|data: &[u8]| {
    one(data);
    let repaired = with_valid_checksum(data);
    one(&repaired);
    // The loader adds validation with per-op offsets.
    let lines = repaired.iter().filter(|&&b| b == b'\n').count() + 1;
    match load_bytes(&repaired, NAME, &ImportOptions::default()) {
        Ok(loaded) => check_round_trips(&loaded.trace),
        Err(e) => check_error(&e, repaired.len(), lines),
    }
});
