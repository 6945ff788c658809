//! A SignedData described field by field (`arbitrary`), built into BER and verified as in
//! the `verify` target.
//!
//! With `EC2_IID_FUZZ_DUMP=<dir>` each built blob is also written to `<dir>`, so that a
//! structured corpus can be replayed in the `verify` target to compare coverage.
#![no_main]

use ec2_iid_fuzz::structured::Blob;

libfuzzer_sys::fuzz_target!(|blob: Blob| {
    let bytes = blob.build();
    ec2_iid_fuzz::dump(&bytes);
    ec2_iid_fuzz::check_verify(&bytes);
});
