//! See vidkeep::fuzzing::spec and FUZZING.md.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vidkeep::fuzzing::spec(data));
