//! JSON bytes into `dangerous::parse_unverified_document`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ec2_iid_fuzz::check_document(data));
