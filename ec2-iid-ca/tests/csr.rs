//! The CSR check: accepted keys, every refusal, the requester digest.
#![cfg(test)]

mod common;

use common::{csr_pem, der, ec_key, openssl_csr, pem, rsa_key};
use ec2_iid_ca::{Csr, CsrError, KeyPolicy, KeyType, MAX_CSR_LEN};
use openssl::nid::Nid;

fn sha256(bytes: &[u8]) -> [u8; 32] {
    openssl::sha::sha256(bytes)
}

#[test]
fn accepts_p256_p384_ed25519_pem_and_der() {
    for (alg, key_type) in [
        (&rcgen::PKCS_ECDSA_P256_SHA256, KeyType::EcdsaP256),
        (&rcgen::PKCS_ECDSA_P384_SHA384, KeyType::EcdsaP384),
        (&rcgen::PKCS_ED25519, KeyType::Ed25519),
    ] {
        let (text, _) = csr_pem(alg);
        let csr = Csr::from_pem(&text).unwrap();
        assert_eq!(csr.key_type(), key_type);
        assert_eq!(Csr::from_der(&der(&text)).unwrap(), csr);
        // Blank space around the block is fine.
        assert_eq!(Csr::from_pem(&format!("\n  {text}\n\n")).unwrap(), csr);
    }
}

#[test]
fn requester_is_sha256_of_the_spki_and_differs_between_keys() {
    let (a, key_a) = csr_pem(&rcgen::PKCS_ECDSA_P256_SHA256);
    let (b, _) = csr_pem(&rcgen::PKCS_ECDSA_P256_SHA256);
    let csr_a = Csr::from_pem(&a).unwrap();
    let spki = rcgen::PublicKeyData::subject_public_key_info(&key_a);
    assert_eq!(csr_a.public_key_der(), spki);
    assert_eq!(csr_a.requester(), sha256(&spki));
    // The same key, another request (another subject): the same requester.
    let again = rcgen::CertificateParams::default()
        .serialize_request(&key_a)
        .unwrap()
        .pem()
        .unwrap();
    assert_eq!(
        Csr::from_pem(&again).unwrap().requester(),
        csr_a.requester()
    );
    assert_ne!(Csr::from_pem(&b).unwrap().requester(), csr_a.requester());
}

#[test]
fn rsa_only_when_allowed_and_at_least_2048_bits() {
    let rsa2048 = openssl_csr(&rsa_key(2048));
    let err = Csr::from_pem(&rsa2048).unwrap_err();
    assert!(
        matches!(err, CsrError::UnsupportedKey { ref key, .. } if key == "RSA"),
        "{err:?}"
    );
    assert_eq!(err.kind(), "csr_unsupported_key");
    assert!(err.to_string().contains("issuer allows it"), "{err}");
    let csr = Csr::from_pem_with(&rsa2048, KeyPolicy::AllowRsa).unwrap();
    assert_eq!(csr.key_type(), KeyType::Rsa { bits: 2048 });

    let rsa1024 = openssl_csr(&rsa_key(1024));
    let err = Csr::from_pem_with(&rsa1024, KeyPolicy::AllowRsa).unwrap_err();
    assert_eq!(err, CsrError::WeakKey { bits: 1024 });
    assert_eq!(err.kind(), "csr_weak_key");
    assert!(err.to_string().contains("2048"), "{err}");
}

#[test]
fn other_curves_are_refused() {
    for (nid, name) in [(Nid::SECP521R1, "P-521"), (Nid::SECP256K1, "secp256k1")] {
        let err = Csr::from_pem(&openssl_csr(&ec_key(nid))).unwrap_err();
        assert_eq!(err.kind(), "csr_unsupported_key");
        assert!(err.to_string().contains(name), "{err}");
        assert!(err.to_string().contains("P-256"), "says what to use: {err}");
    }
}

#[test]
fn sha1_signature_is_refused() {
    let key = ec_key(Nid::X9_62_PRIME256V1);
    let mut req = openssl::x509::X509ReqBuilder::new().unwrap();
    req.set_pubkey(&key).unwrap();
    req.sign(&key, openssl::hash::MessageDigest::sha1())
        .unwrap();
    let text = String::from_utf8(req.build().to_pem().unwrap()).unwrap();
    let err = Csr::from_pem(&text).unwrap_err();
    assert_eq!(
        err,
        CsrError::UnsupportedAlgorithm {
            oid: "1.2.840.10045.4.1".to_owned()
        }
    );
    assert_eq!(err.kind(), "csr_unsupported_algorithm");
}

#[test]
fn tampered_signature_and_tampered_request_are_refused() {
    let (text, _) = csr_pem(&rcgen::PKCS_ED25519);
    let good = der(&text);
    // Ed25519: the signature is the last 64 bytes.
    let mut bad_sig = good.clone();
    *bad_sig.last_mut().unwrap() ^= 1;
    assert_eq!(Csr::from_der(&bad_sig).unwrap_err(), CsrError::BadSignature);
    assert_eq!(
        Csr::from_pem(&pem("CERTIFICATE REQUEST", &bad_sig))
            .unwrap_err()
            .kind(),
        "csr_bad_signature"
    );
    // A changed subject ("admin" → "bdmin") under the original signature.
    let at = good.windows(5).position(|w| w == b"admin").unwrap();
    let mut bad_body = good.clone();
    bad_body[at] = b'b';
    assert_eq!(
        Csr::from_der(&bad_body).unwrap_err(),
        CsrError::BadSignature
    );
}

#[test]
fn malformed_input_is_refused() {
    let (text, _) = csr_pem(&rcgen::PKCS_ECDSA_P256_SHA256);
    let good = der(&text);
    let malformed = |r: Result<Csr, CsrError>| {
        let err = r.unwrap_err();
        assert_eq!(err.kind(), "csr_malformed", "{err:?}");
        assert!(err.to_string().contains("CERTIFICATE REQUEST"), "{err}");
        err
    };
    malformed(Csr::from_pem("garbage"));
    malformed(Csr::from_pem(""));
    malformed(Csr::from_der(b"garbage"));
    malformed(Csr::from_der(&good[..good.len() - 1]));
    let mut trailing = good.clone();
    trailing.push(0);
    let err = malformed(Csr::from_der(&trailing));
    assert!(err.to_string().contains("1 bytes after"), "{err}");
    // Text after the block, two blocks, another label, bad base64.
    malformed(Csr::from_pem(&format!("{text}trailing")));
    malformed(Csr::from_pem(&format!("{text}{text}")));
    malformed(Csr::from_pem(&pem("CERTIFICATE", &good)));
    malformed(Csr::from_pem(
        "-----BEGIN CERTIFICATE REQUEST-----\n!!!!\n-----END CERTIFICATE REQUEST-----",
    ));
    // A certificate's DER is not a request.
    let ca = common::root();
    malformed(Csr::from_der(&ca.der));
    // "NEW CERTIFICATE REQUEST" (older OpenSSL's label) is accepted.
    Csr::from_pem(&pem("NEW CERTIFICATE REQUEST", &good)).unwrap();
}

#[test]
fn oversized_input_is_refused_before_parsing() {
    let big = "A".repeat(MAX_CSR_LEN + 1);
    let err = Csr::from_pem(&big).unwrap_err();
    assert_eq!(
        err,
        CsrError::TooLarge {
            len: MAX_CSR_LEN + 1,
            max: MAX_CSR_LEN
        }
    );
    assert_eq!(err.kind(), "csr_too_large");
    assert_eq!(
        Csr::from_der(big.as_bytes()).unwrap_err().kind(),
        "csr_too_large"
    );
}

#[test]
fn error_messages_do_not_echo_input() {
    let err = Csr::from_pem("-----BEGIN SECRET-----\nc2VjcmV0\n-----END SECRET-----").unwrap_err();
    assert!(!err.to_string().contains("c2VjcmV0"), "{err}");
}
