//! The Montgomery RSA backend and the `rsa` crate agree on every (digest, signature) pair.
//!
//! Input: 32 bytes of digest, then the signature bytes (any length), checked against the test
//! CA's key; a valid signature appears when the fuzzer finds the committed one in the corpus.
#![no_main]

use ec2_iid::crypto::{Backend, RsaVerifyingKey};
use std::sync::OnceLock;

fn keys() -> &'static (RsaVerifyingKey, RsaVerifyingKey) {
    static KEYS: OnceLock<(RsaVerifyingKey, RsaVerifyingKey)> = OnceLock::new();
    KEYS.get_or_init(|| {
        let pem = include_bytes!("../../tests/data/testca/testca.pem");
        let (_, pem) = x509_parser::pem::parse_x509_pem(pem).expect("test CA PEM");
        let cert = pem.parse_x509().expect("test CA certificate");
        let spki = cert.public_key().raw;
        (
            RsaVerifyingKey::from_public_key_der_with_backend(spki, Backend::Montgomery)
                .expect("key"),
            RsaVerifyingKey::from_public_key_der_with_backend(spki, Backend::RsaCrate)
                .expect("key"),
        )
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((digest, signature)) = data.split_first_chunk::<32>() else {
        return;
    };
    let (montgomery, rsa_crate) = keys();
    assert_eq!(
        montgomery.verify_sha256_digest(digest, signature).is_ok(),
        rsa_crate.verify_sha256_digest(digest, signature).is_ok(),
        "backends disagree"
    );
});
