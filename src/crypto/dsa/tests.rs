//! DSA and RSA-SHA1 verification: known answers, bit flips, the `dsa` crate as a second
//! opinion, strict signature and key encodings.

use dsa::pkcs8::DecodePrivateKey as _;
use dsa::signature::DigestSigner as _;
use sha1::Digest as _;

use super::*;
use crate::test_utils::spki;

const CA_PEM: &[u8] = include_bytes!("../../../tests/data/testca/testca-dsa.pem");
const CA_KEY: &str = include_str!("../../../tests/data/testca/testca-dsa.key");

/// Made once with `openssl dgst -sha1 -sign testca-dsa.key` over [`KAT_MESSAGE`]: an
/// independent implementation's signature (its `s` has a leading zero byte).
const KAT_SIGNATURE: &str = "302d0214641a3ffe3b76a5695ce0099bcdf42cc54acc0509021500c24588441f\
                             6a303350dbd678c6d050bdb8d3094a";
const KAT_MESSAGE: &[u8] = b"ec2-iid DSA known answer";

fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

fn ca_key() -> DsaVerifyingKey {
    DsaVerifyingKey::from_spki_der(&spki(CA_PEM)).unwrap()
}

fn sha1(message: &[u8]) -> [u8; 20] {
    Sha1::digest(message).into()
}

#[test]
fn openssl_signature_verifies() {
    let key = ca_key();
    assert_eq!(key.q_len, 20);
    let signature = hex(KAT_SIGNATURE);
    assert_eq!(
        key.verify_sha1_digest(&sha1(KAT_MESSAGE), &signature),
        Ok(())
    );
    assert_eq!(
        key.verify_sha1_digest(&sha1(b"ec2-iid DSA known answes"), &signature),
        Err(Error::InvalidSignature)
    );
}

#[test]
fn own_signatures_verify_and_any_bit_flip_fails() {
    let key = ca_key();
    let signing = dsa::SigningKey::from_pkcs8_pem(CA_KEY).unwrap();
    let digest = sha1(b"document");
    let signature: dsa::Signature = signing.sign_digest(|d: &mut Sha1| {
        d.update(b"document");
    });
    let der = der::Encode::to_der(&signature).unwrap();
    assert_eq!(key.verify_sha1_digest(&digest, &der), Ok(()));
    for i in 0..der.len() {
        for bit in [0x01, 0x80] {
            let mut flipped = der.clone();
            flipped[i] ^= bit;
            assert_eq!(
                key.verify_sha1_digest(&digest, &flipped),
                Err(Error::InvalidSignature),
                "byte {i} bit {bit:#x}"
            );
        }
    }
    let mut other = digest;
    other[19] ^= 1;
    assert_eq!(
        key.verify_sha1_digest(&other, &der),
        Err(Error::InvalidSignature)
    );
}

/// The `dsa` crate's verdict on the same digest and signature.
fn dsa_crate_accepts(signing: &dsa::SigningKey, digest: &[u8; 20], der: &[u8]) -> bool {
    use dsa::signature::hazmat::PrehashVerifier as _;
    let Ok(signature) = <dsa::Signature as der::Decode>::from_der(der) else {
        return false;
    };
    signing
        .verifying_key()
        .verify_prehash(digest, &signature)
        .is_ok()
}

/// `r` and `s` of a DER signature, as big-endian magnitudes.
fn r_and_s(der: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let (r, s) = parse_dss_signature(der, 32).unwrap();
    (r.to_vec(), s.to_vec())
}

/// A DER signature of `r` and `s` (magnitudes): minimal, with a sign byte when needed.
fn dss_der(r: &[u8], s: &[u8]) -> Vec<u8> {
    let integer = |bytes: &[u8]| {
        let bytes = match bytes.iter().position(|&b| b != 0) {
            Some(first) => &bytes[first..],
            None => &[0][..],
        };
        let mut content = Vec::new();
        if bytes[0] & 0x80 != 0 {
            content.push(0);
        }
        content.extend_from_slice(bytes);
        der_tlv(TAG_INTEGER, &content)
    };
    der_tlv(TAG_SEQUENCE, &[integer(r), integer(s)].concat())
}

/// Adds `delta` to a big-endian magnitude (wrapping at its width).
fn add(bytes: &[u8], delta: u8) -> Vec<u8> {
    let mut out = bytes.to_vec();
    let mut carry = delta;
    for b in out.iter_mut().rev() {
        let (sum, overflow) = b.overflowing_add(carry);
        *b = sum;
        carry = u8::from(overflow);
    }
    out
}

/// This key and the `dsa` crate agree on own signatures over many digests and on near
/// misses of each: `r` or `s` off by one, swapped, `q - 1`, the digest changed.
#[test]
fn agrees_with_the_dsa_crate() {
    let key = ca_key();
    let signing = dsa::SigningKey::from_pkcs8_pem(CA_KEY).unwrap();
    let q = signing
        .verifying_key()
        .components()
        .q()
        .to_be_bytes_trimmed_vartime();
    let q_minus_1 = {
        let mut q = q.to_vec();
        *q.last_mut().unwrap() -= 1; // q is odd
        q
    };
    let mut accepted = 0;
    for n in 0_u32..40 {
        let message = n.to_be_bytes();
        let digest = sha1(&message);
        let signature: dsa::Signature = signing.sign_digest(|d: &mut Sha1| {
            d.update(message);
        });
        let der = der::Encode::to_der(&signature).unwrap();
        let (r, s) = r_and_s(&der);
        let mut other = digest;
        other[0] ^= 0x80;
        let cases = [
            (digest, der.clone()),
            (other, der.clone()),
            (digest, dss_der(&add(&r, 1), &s)),
            (digest, dss_der(&r, &add(&s, 1))),
            (digest, dss_der(&s, &r)),
            (digest, dss_der(&q_minus_1, &s)),
            (digest, dss_der(&r, &q_minus_1)),
        ];
        for (digest, der) in &cases {
            let ours = key.verify_sha1_digest(digest, der).is_ok();
            assert_eq!(
                ours,
                dsa_crate_accepts(&signing, digest, der),
                "{n}: {der:02x?}"
            );
            accepted += usize::from(ours);
        }
    }
    assert_eq!(accepted, 40, "each own signature, and nothing else");
}

#[test]
fn signature_encoding_is_strict() {
    let key = ca_key();
    let digest = sha1(KAT_MESSAGE);
    let good = hex(KAT_SIGNATURE);
    let r = &good[4..24];
    let s = &good[27..];
    let int = |v: &[u8]| [&[TAG_INTEGER, u8::try_from(v.len()).unwrap()], v].concat();
    let seq = |parts: &[Vec<u8>]| {
        let body = parts.concat();
        [vec![TAG_SEQUENCE, u8::try_from(body.len()).unwrap()], body].concat()
    };
    assert_eq!(seq(&[int(r), int(&[&[0], s].concat())]), good);
    let ca_spki = spki(CA_PEM);
    let (_, q_bytes, _, _) = dsa_spki_parts(&ca_spki).unwrap();
    let bad: Vec<(&str, Vec<u8>)> = vec![
        ("empty", vec![]),
        ("trailing byte", [good.clone(), vec![0]].concat()),
        ("long-form length", {
            let mut v = vec![TAG_SEQUENCE, 0x81, good[1]];
            v.extend_from_slice(&good[2..]);
            v
        }),
        (
            "length too long",
            [&[TAG_SEQUENCE, good[1] + 1], &good[2..]].concat(),
        ),
        ("SET instead of SEQUENCE", [&[0x31], &good[1..]].concat()),
        ("s without its sign byte (negative)", seq(&[int(r), int(s)])),
        (
            "non-minimal r",
            seq(&[int(&[&[0], r].concat()), int(&[&[0], s].concat())]),
        ),
        ("r = 0", seq(&[int(&[0]), int(&[&[0], s].concat())])),
        ("empty r", seq(&[int(&[]), int(&[&[0], s].concat())])),
        (
            "r = q",
            seq(&[int(&[&[0], q_bytes].concat()), int(&[&[0], s].concat())]),
        ),
        (
            "r longer than q",
            seq(&[int(&[&[1], r].concat()), int(&[&[0], s].concat())]),
        ),
        (
            "three integers",
            seq(&[int(r), int(&[&[0], s].concat()), int(&[1])]),
        ),
        ("one integer", seq(&[int(r)])),
        (
            "OCTET STRING instead of INTEGER",
            seq(&[[&[0x04, 20], r].concat(), int(s)]),
        ),
    ];
    for (what, signature) in bad {
        assert_eq!(
            key.verify_sha1_digest(&digest, &signature),
            Err(Error::InvalidSignature),
            "{what}"
        );
    }
}

#[test]
fn integers_must_be_positive_and_minimal() {
    assert_eq!(der_uint(&[0x01]), Some(&[0x01][..]));
    assert_eq!(der_uint(&[0x00, 0x80]), Some(&[0x80][..]));
    assert_eq!(der_uint(&[0x00]), None, "zero");
    assert_eq!(der_uint(&[]), None);
    assert_eq!(der_uint(&[0x80]), None, "negative");
    assert_eq!(der_uint(&[0x00, 0x01]), None, "not minimal");
}

#[test]
fn bad_public_keys() {
    let good = spki(CA_PEM);
    let err = |der: &[u8]| match DsaVerifyingKey::from_spki_der(der) {
        Err(ConfigError::BadCertificate { reason }) => reason,
        other => panic!("{other:?}"),
    };
    assert_eq!(err(&[0x30, 0x00]), "not a DER DSA public key");
    assert_eq!(err(&good[..good.len() - 1]), "not a DER DSA public key");
    assert_eq!(
        err(&[good.clone(), vec![0]].concat()),
        "not a DER DSA public key"
    );
    let rsa = spki(include_bytes!("../../../tests/data/testca/testca.pem"));
    assert_eq!(err(&rsa), "not a DER DSA public key");
    // y = 1 is not in the subgroup (and below 2).
    let (p, q, g, y) = dsa_spki_parts(&good).unwrap();
    let rebuilt = |y: &[u8]| dsa_spki(p, q, g, y);
    assert_eq!(rebuilt(y), good, "the test rebuilds the SPKI faithfully");
    assert!(DsaVerifyingKey::from_spki_der(&rebuilt(y)).is_ok());
    assert_eq!(err(&rebuilt(&[1])), "invalid DSA public value");
    assert_eq!(err(&rebuilt(&[2])), "invalid DSA public value");
    assert_eq!(err(&rebuilt(p)), "invalid DSA public value", "y = p");
    assert_eq!(
        err(&rebuilt(&[p, &[0]].concat())),
        "DSA value larger than p"
    );
}

/// A DSA SubjectPublicKeyInfo with these magnitudes (a sign byte is added where needed).
fn dsa_spki(p: &[u8], q: &[u8], g: &[u8], y: &[u8]) -> Vec<u8> {
    let int = |v: &[u8]| {
        let v = if v[0] & 0x80 != 0 {
            [&[0], v].concat()
        } else {
            v.to_vec()
        };
        der_tlv(TAG_INTEGER, &v)
    };
    let params = der_tlv(TAG_SEQUENCE, &[int(p), int(q), int(g)].concat());
    let oid = der_tlv(0x06, oids::ID_DSA);
    let algorithm = der_tlv(TAG_SEQUENCE, &[oid, params].concat());
    let bits = der_tlv(TAG_BIT_STRING, &[&[0], &int(y)[..]].concat());
    der_tlv(TAG_SEQUENCE, &[algorithm, bits].concat())
}

/// Parameters of up to 3072/256 bits reach the `dsa` crate's checks; longer ones are
/// refused before any big-integer work.
#[test]
fn parameter_size_caps() {
    let good = spki(CA_PEM);
    let (p, q, g, y) = dsa_spki_parts(&good).unwrap();
    let reason = |der: &[u8]| match DsaVerifyingKey::from_spki_der(der) {
        Err(ConfigError::BadCertificate { reason }) => reason,
        other => panic!("{other:?}"),
    };
    let too_large = "DSA parameters larger than 3072/256 bits";
    let checked_by_dsa = "unsupported or invalid DSA domain parameters";
    let long = |len: usize| [vec![0x7f], vec![0xff; len - 1]].concat();
    assert_eq!(reason(&dsa_spki(&long(MAX_P_LEN), q, g, y)), checked_by_dsa);
    assert_eq!(reason(&dsa_spki(&long(MAX_P_LEN + 1), q, g, y)), too_large);
    assert_eq!(reason(&dsa_spki(p, &long(MAX_Q_LEN), g, y)), checked_by_dsa);
    assert_eq!(reason(&dsa_spki(p, &long(MAX_Q_LEN + 1), g, y)), too_large);
}

/// About one DSA signature in 128 has an `r` or `s` shorter than `q` once its leading zero
/// bytes are dropped; those are valid and must verify.
#[test]
fn short_r_and_s_verify() {
    let key = ca_key();
    let signing = dsa::SigningKey::from_pkcs8_pem(CA_KEY).unwrap();
    let (mut short_r, mut short_s) = (false, false);
    for i in 0..4000_u32 {
        let message = i.to_be_bytes();
        let signature: dsa::Signature = signing.sign_digest(|d: &mut Sha1| {
            d.update(message);
        });
        let der = der::Encode::to_der(&signature).unwrap();
        let (r, s) = parse_dss_signature(&der, key.q_len).unwrap();
        if r.len() < key.q_len || s.len() < key.q_len {
            assert_eq!(key.verify_sha1_digest(&sha1(&message), &der), Ok(()));
            short_r |= r.len() < key.q_len;
            short_s |= s.len() < key.q_len;
        }
        if short_r && short_s {
            return;
        }
    }
    panic!("no signature with a short r and one with a short s in 4000 tries");
}

fn der_tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    match u8::try_from(content.len()) {
        Ok(len) if len < 0x80 => out.push(len),
        Ok(len) => out.extend([0x81, len]),
        Err(_) => {
            out.push(0x82);
            out.extend(u16::try_from(content.len()).unwrap().to_be_bytes());
        }
    }
    out.extend_from_slice(content);
    out
}

#[test]
fn rsa_sha1_signatures() {
    let key = RsaSha1Key::from_public_key_der(&spki(include_bytes!(
        "../../../tests/data/testca/testca.pem"
    )))
    .unwrap();
    let private =
        rsa::PrivateKey::from_pkcs8_pem(include_str!("../../../tests/data/testca/testca.key"))
            .unwrap();
    let digest = sha1(b"document");
    let signature = private.sign(Pkcs1v15Sign::new::<Sha1>(), &digest).unwrap();
    assert_eq!(key.verify_sha1_digest(&digest, &signature), Ok(()));
    let sha256_signature = private
        .sign(
            Pkcs1v15Sign::new::<sha2::Sha256>(),
            &sha2::Sha256::digest(b"document"),
        )
        .unwrap();
    assert_eq!(
        key.verify_sha1_digest(&digest, &sha256_signature),
        Err(Error::InvalidSignature)
    );
    assert_eq!(
        key.verify_sha1_digest(&sha1(b"x"), &[0u8; 256]),
        Err(Error::InvalidSignature)
    );
    assert!(matches!(
        RsaSha1Key::from_public_key_der(&spki(CA_PEM)),
        Err(ConfigError::BadCertificate { .. })
    ));
}
