//! CSRs and renewal certificates into `ec2-iid-ca` (see `ec2_iid_fuzz::ca::check_ca`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ec2_iid_fuzz::ca::check_ca(data));
