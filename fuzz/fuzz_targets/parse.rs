//! Bytes (text or binary) into `parse_signed_data`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ec2_iid_fuzz::check_parse(data));
