//! Every real `rsa2048` sample behaves as `../shared/aws-samples/index.json` says.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a test failure"
)]

mod shared;

use ec2_iid::{Error, TrustStore, parse_document, verify_signature};

#[test]
fn rsa2048_samples_behave_as_indexed() {
    let trust = TrustStore::aws();
    let samples = shared::samples_of("rsa2048");
    let mut checked = 0;
    for sample in &samples {
        for blob in [sample.blob(), sample.file("rsa2048.der")] {
            let result = parse_document(&blob).and_then(|signed| verify_signature(signed, &trust));
            match sample.expect.as_str() {
                "accept" => {
                    let verified = result.unwrap_or_else(|e| panic!("{}: {e}", sample.id));
                    let doc = verified.document();
                    assert_eq!(doc.account_id.as_str(), sample.account_id, "{}", sample.id);
                    assert_eq!(
                        doc.instance_id.as_str(),
                        sample.instance_id,
                        "{}",
                        sample.id
                    );
                    assert_eq!(doc.region.as_str(), sample.region, "{}", sample.id);
                    assert_eq!(doc.pending_time, sample.pending_time, "{}", sample.id);
                    let signer = verified.signer();
                    assert_eq!(Some(&signer.serial), sample.signer_serial_hex.as_ref());
                    assert_eq!(signer.region.as_str(), sample.region);
                    assert_eq!(signer.signing_time, sample.signing_time, "{}", sample.id);
                    assert_eq!(
                        verified.content(),
                        sample.file("document.json"),
                        "{}",
                        sample.id
                    );
                }
                "reject" => {
                    let err = result.expect_err(&sample.id);
                    let expected = if sample.note.contains("digest") {
                        Error::DigestMismatch
                    } else {
                        Error::InvalidSignature
                    };
                    assert_eq!(err, expected, "{}: {}", sample.id, sample.note);
                }
                other => panic!("{}: unexpected expectation {other}", sample.id),
            }
            checked += 1;
        }
    }
    if shared::samples().is_some() {
        assert!(checked >= 10, "only {checked} rsa2048 checks ran");
    }
}
