//! See vidkeep::fuzzing::range and FUZZING.md.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vidkeep::fuzzing::range(data));
