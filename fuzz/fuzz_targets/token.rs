//! JSON or YAML bytes into `TokenSpec` / `TokenResource`, validation and rule matching.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ec2_iid_fuzz::check_token(data));
