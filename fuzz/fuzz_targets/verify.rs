//! Bytes into `Verifier::verify`, with the AWS store and with the test CA, at a fixed clock.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ec2_iid_fuzz::check_verify(data));
