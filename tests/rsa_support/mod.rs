//! RSA test inputs shared by `tests/rsa_differential.rs` and `benches/rsa.rs`: the committed
//! test-CA vector, and the signed attributes and signatures of the real AWS `/rsa2048`
//! samples (read by `tests/shared`, which the including crate declares as `mod shared`).

use std::path::{Path, PathBuf};

use base64::Engine as _;
use sha2::{Digest as _, Sha256};

use crate::shared::{self, CertIndex, Sample};

/// One signature to verify: a key (DER SubjectPublicKeyInfo), a SHA-256 digest, a signature.
#[derive(Clone, Debug)]
pub(crate) struct Vector {
    /// Where it comes from, for messages.
    pub(crate) name: String,
    /// The verifying key.
    pub(crate) spki: Vec<u8>,
    /// The digest of the signed bytes.
    pub(crate) digest: [u8; 32],
    /// The signature.
    pub(crate) signature: Vec<u8>,
}

/// The crate root.
pub(crate) fn crate_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Reads a file, with its path in the panic message.
pub(crate) fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// The DER inside the first PEM block of `pem` with the given label.
pub(crate) fn pem_der(pem: &[u8], label: &str) -> Vec<u8> {
    let text = std::str::from_utf8(pem).expect("PEM is ASCII");
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = text.find(&begin).expect("PEM begin line") + begin.len();
    let stop = text[start..].find(&end).expect("PEM end line") + start;
    let b64: String = text[start..stop]
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .expect("PEM base64")
}

/// The SubjectPublicKeyInfo DER of a PEM certificate.
pub(crate) fn cert_spki(pem: &[u8]) -> Vec<u8> {
    let der = pem_der(pem, "CERTIFICATE");
    let (_, cert) = x509_parser::parse_x509_certificate(&der).expect("certificate DER");
    cert.tbs_certificate.subject_pki.raw.to_vec()
}

/// SHA-256 of `data`.
pub(crate) fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// Decodes lowercase or uppercase hex.
pub(crate) fn hex(text: &str) -> Vec<u8> {
    assert!(text.len().is_multiple_of(2), "odd hex length");
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex digit"))
        .collect()
}

/// The committed signature by the test CA (`tests/data/rsa/testca-sha256.txt`), with the
/// test CA certificate's key.
pub(crate) fn testca_vector() -> Vector {
    let root = crate_root().join("tests/data");
    let text = String::from_utf8(read(&root.join("rsa/testca-sha256.txt"))).expect("UTF-8");
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
            .map(hex)
            .unwrap_or_else(|| panic!("field {name}"))
    };
    Vector {
        name: "testca-sha256".to_owned(),
        spki: cert_spki(&read(&root.join("testca/testca.pem"))),
        digest: field("digest").try_into().expect("32-byte digest"),
        signature: field("signature"),
    }
}

/// A real `/rsa2048` sample: the SHA-256 of its signed attributes (tag `A0` replaced by
/// `31`, as RFC 5652 §5.4 signs them) and the signature, with the key that should verify
/// it (accepted samples) or the key of its region (rejected ones).
pub(crate) struct Rsa2048Sample {
    /// `expect` in `aws-samples/index.json`.
    pub(crate) expect: String,
    /// The vector.
    pub(crate) vector: Vector,
}

/// The `/rsa2048` samples among `samples`, each with the first certificate it verifies with
/// or else its region's `/rsa2048` certificate in `certs`.
pub(crate) fn rsa2048_samples(samples: &[Sample], certs: &CertIndex) -> Vec<Rsa2048Sample> {
    samples
        .iter()
        .filter(|sample| sample.kind == "rsa2048")
        .map(|sample| {
            let id = &sample.id;
            let cert_file = sample
                .verified_with
                .first()
                .map(String::as_str)
                .or_else(|| certs.file(&sample.region, "rsa2048"))
                .unwrap_or_else(|| panic!("{id}: no certificate"));
            let der = sample.file("rsa2048.der");
            let (signed_attrs, signature) = signer_info_parts(&der)
                .unwrap_or_else(|| panic!("{id}: cannot find the SignerInfo"));
            Rsa2048Sample {
                expect: sample.expect.clone(),
                vector: Vector {
                    name: format!("{id} ({cert_file})"),
                    spki: cert_spki(&shared::cert(cert_file)),
                    digest: sha256(&signed_attrs),
                    signature,
                },
            }
        })
        .collect()
}

/// One BER element: its tag byte, its whole encoding and its content (without the
/// end-of-contents octets of an indefinite length).
struct Element<'a> {
    tag: u8,
    whole: &'a [u8],
    content: &'a [u8],
}

/// Reads the BER element at the start of `input` (single-byte tags only).
fn element(input: &[u8]) -> Option<Element<'_>> {
    let tag = *input.first()?;
    if tag & 0x1f == 0x1f {
        return None;
    }
    let first = *input.get(1)?;
    if first == 0x80 {
        // Indefinite length: children up to the end-of-contents octets 00 00.
        let mut pos = 2;
        loop {
            let rest = input.get(pos..)?;
            if rest.starts_with(&[0, 0]) {
                return Some(Element {
                    tag,
                    whole: input.get(..pos + 2)?,
                    content: input.get(2..pos)?,
                });
            }
            pos += element(rest)?.whole.len();
        }
    }
    let (header, len) = if first < 0x80 {
        (2, usize::from(first))
    } else {
        let n = usize::from(first & 0x7f);
        if n > 4 {
            return None;
        }
        let bytes = input.get(2..2 + n)?;
        (
            2 + n,
            bytes.iter().fold(0, |acc, &b| acc << 8 | usize::from(b)),
        )
    };
    Some(Element {
        tag,
        whole: input.get(..header + len)?,
        content: input.get(header..header + len)?,
    })
}

/// The elements inside a constructed element's content.
fn children(content: &[u8]) -> Option<Vec<Element<'_>>> {
    let mut out = Vec::new();
    let mut rest = content;
    while !rest.is_empty() {
        let e = element(rest)?;
        rest = &rest[e.whole.len()..];
        out.push(e);
    }
    Some(out)
}

/// From a BER ContentInfo(SignedData): the first SignerInfo's signed attributes, re-tagged
/// as the SET OF that is signed, and its signature.
pub(crate) fn signer_info_parts(ber: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    let content_info = element(ber)?;
    let explicit = children(content_info.content)?
        .into_iter()
        .find(|e| e.tag == 0xa0)?;
    let signed_data = children(explicit.content)?.into_iter().next()?;
    let signer_infos = children(signed_data.content)?
        .into_iter()
        .rfind(|e| e.tag == 0x31)?;
    let signer_info = children(signer_infos.content)?.into_iter().next()?;
    let parts = children(signer_info.content)?;
    let attrs = parts.iter().find(|e| e.tag == 0xa0)?;
    let signature = parts.iter().find(|e| e.tag == 0x04)?;
    let mut signed = attrs.whole.to_vec();
    *signed.first_mut()? = 0x31;
    Some((signed, signature.content.to_vec()))
}
