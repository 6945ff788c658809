//! The Montgomery RSA backend and the `rsa` crate agree on every (digest, signature) pair.
//!
//! Input: a mode byte, then 32 bytes of digest, then the rest, checked against the test CA's
//! key.
//! * Even mode byte: the rest is the signature bytes (any length); a valid signature appears
//!   when the fuzzer finds the committed one in the corpus.
//! * Odd mode byte: the rest is a list of `(position, xor)` byte pairs applied to the valid
//!   encoded message `00 01 FF..FF 00 || DigestInfo || digest`, which is then signed with the
//!   test CA's private key. Random signatures almost never decode to anything near a valid
//!   encoding; these do, so every byte of the backends' encoding check is reached with
//!   near-miss values. The unmodified encoding must be accepted by both.
#![no_main]

use core::convert::Infallible;
use ec2_iid::internal::RsaVerifyingKey;
use ec2_iid::internal::{self, Backend};
use rsa::pkcs8::DecodePrivateKey as _;
use rsa::traits::PublicKeyParts as _;
use rsa::{BoxedUint, PrivateKey};
use std::sync::OnceLock;

struct Keys {
    montgomery: RsaVerifyingKey,
    rsa_crate: RsaVerifyingKey,
    private: PrivateKey,
}

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let pem = include_bytes!("../../tests/data/testca/testca.pem");
        let (_, pem) = x509_parser::pem::parse_x509_pem(pem).expect("test CA PEM");
        let cert = pem.parse_x509().expect("test CA certificate");
        let spki = cert.public_key().raw;
        let key = |backend| internal::from_public_key_der_with_backend(spki, backend).expect("key");
        Keys {
            montgomery: key(Backend::Montgomery),
            rsa_crate: key(Backend::RsaCrate),
            private: PrivateKey::from_pkcs8_pem(include_str!("../../tests/data/testca/testca.key"))
                .expect("test CA private key"),
        }
    })
}

/// RSASP1 (`em^d mod n`, with the key's CRT parameters) as a `k`-byte signature, or `None`
/// when `em` is not below `n`.
fn sign_raw(private: &PrivateKey, em: &[u8]) -> Option<Vec<u8>> {
    let m = BoxedUint::from_be_slice(em, private.n_params().bits_precision()).ok()?;
    let no_blinding: Option<&mut dyn rsa::rand_core::TryCryptoRng<Error = Infallible>> = None;
    let s = rsa::hazmat::rsa_decrypt(no_blinding, private, &m).ok()?;
    let bytes = s.to_be_bytes();
    Some(bytes[bytes.len() - em.len()..].to_vec())
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let Some((digest, rest)) = rest.split_first_chunk::<32>() else {
        return;
    };
    let keys = keys();
    let verdicts = |signature: &[u8]| {
        let montgomery = keys
            .montgomery
            .verify_sha256_digest(digest, signature)
            .is_ok();
        let rsa_crate = keys
            .rsa_crate
            .verify_sha256_digest(digest, signature)
            .is_ok();
        assert_eq!(montgomery, rsa_crate, "backends disagree");
        montgomery
    };
    if mode & 1 == 0 {
        verdicts(rest);
        return;
    }
    let k = keys.montgomery.modulus_len();
    let mut em = ec2_iid_fuzz::sha256_encoded_message(k, digest);
    let valid = em.clone();
    for pair in rest.chunks_exact(2).take(16) {
        let position = usize::from(pair[0]) % k;
        em[position] ^= pair[1];
    }
    let Some(signature) = sign_raw(&keys.private, &em) else {
        return;
    };
    let accepted = verdicts(&signature);
    assert_eq!(accepted, em == valid, "accepted a different encoding");
});
