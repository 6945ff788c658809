//! A SignedData-shaped BER blob described field by field, for the `structured` target.
//!
//! The all-zero description (what `arbitrary` builds from an empty input) is the generated
//! fixture's content, signed attributes and signature re-wrapped in definite lengths: a blob
//! the test CA verifier accepts. Every field can then be swapped for a hostile choice, so the
//! fuzzer explores the parser and the verification steps past the first structural check, and
//! can also find re-encodings of the signed parts that still verify (which must then yield the
//! fixture's document and nothing else).

use std::sync::OnceLock;

use arbitrary::Arbitrary;
use base64::Engine as _;
use sha2::{Digest as _, Sha256};

/// The parts of the generated fixture that a valid blob needs.
#[derive(Debug)]
pub struct Parts {
    content: Vec<u8>,
    signed_attrs: Vec<u8>,
    signature: Vec<u8>,
    issuer: Vec<u8>,
    serial: Vec<u8>,
    signing_time: Vec<u8>,
}

/// The fixture's parts, taken from `rsa2048.der` by the crate's own parser once.
pub fn parts() -> &'static Parts {
    static PARTS: OnceLock<Parts> = OnceLock::new();
    PARTS.get_or_init(|| {
        let signed =
            ec2_iid::dangerous::parse_signed_data(crate::FIXTURE_DER).expect("fixture parses");
        Parts {
            content: signed.content().to_vec(),
            signed_attrs: signed.signed_attributes().expect("signed attrs").to_vec(),
            signature: signed.signature().to_vec(),
            issuer: signed.signer_issuer().to_vec(),
            serial: signed.signer_serial().to_vec(),
            signing_time: b"261101120005Z".to_vec(),
        }
    })
}

const SIGNED_DATA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02];
const DATA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01];
const SHA256: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01];
const SHA1: &[u8] = &[0x2b, 0x0e, 0x03, 0x02, 0x1a];
const RSA_ENCRYPTION: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
const SHA256_WITH_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b];
const DSA_WITH_SHA1: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x38, 0x04, 0x03];
const CONTENT_TYPE: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x03];
const MESSAGE_DIGEST: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x04];
const SIGNING_TIME: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x05];
const ALGORITHM_PROTECTION: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x34];

/// A whole blob.
#[derive(Arbitrary, Debug)]
pub struct Blob {
    /// Indefinite lengths for ContentInfo, `[0]`, SignedData, EncapsulatedContentInfo,
    /// `[0] eContent`.
    indefinite: [bool; 5],
    outer_type: Oid,
    version: Int,
    /// Written instead of the single sha256 entry when not empty.
    digest_algorithms: Vec<Alg>,
    econtent_type: Oid,
    econtent: EContent,
    certificates: Option<Vec<u8>>,
    crls: Option<Vec<u8>>,
    signer: Signer,
    extra_signers: Vec<Signer>,
    omit_signer: bool,
    trailing: Vec<u8>,
    form: Form,
}

/// An OID: the one the field should have, a known other one, or raw content bytes.
#[derive(Arbitrary, Debug)]
enum Oid {
    Expected,
    SignedData,
    Data,
    Sha256,
    Sha1,
    RsaEncryption,
    Sha256WithRsa,
    DsaWithSha1,
    Raw(Vec<u8>),
}

impl Oid {
    fn tlv(&self, expected: &[u8]) -> Vec<u8> {
        tlv(0x06, self.content(expected))
    }

    fn content<'a>(&'a self, expected: &'a [u8]) -> &'a [u8] {
        match self {
            Self::Expected => expected,
            Self::SignedData => SIGNED_DATA,
            Self::Data => DATA,
            Self::Sha256 => SHA256,
            Self::Sha1 => SHA1,
            Self::RsaEncryption => RSA_ENCRYPTION,
            Self::Sha256WithRsa => SHA256_WITH_RSA,
            Self::DsaWithSha1 => DSA_WITH_SHA1,
            Self::Raw(bytes) => bytes,
        }
    }
}

/// An INTEGER: the expected value, another small one, or raw content bytes.
#[derive(Arbitrary, Debug)]
enum Int {
    Expected,
    Small(u8),
    Raw(Vec<u8>),
}

impl Int {
    fn tlv(&self, expected: u8) -> Vec<u8> {
        match self {
            Self::Expected => tlv(0x02, &[expected]),
            Self::Small(v) => tlv(0x02, &[*v]),
            Self::Raw(bytes) => tlv(0x02, bytes),
        }
    }
}

/// An AlgorithmIdentifier.
#[derive(Arbitrary, Debug)]
struct Alg {
    oid: Oid,
    params: Params,
}

#[derive(Arbitrary, Debug)]
enum Params {
    Null,
    Absent,
    Raw(Vec<u8>),
}

impl Alg {
    fn tlv_tagged(&self, tag: u8, expected: &[u8]) -> Vec<u8> {
        let mut body = self.oid.tlv(expected);
        match &self.params {
            Params::Null => body.extend_from_slice(&[0x05, 0x00]),
            Params::Absent => {}
            Params::Raw(bytes) => body.extend_from_slice(bytes),
        }
        tlv(tag, &body)
    }

    fn tlv(&self, expected: &[u8]) -> Vec<u8> {
        self.tlv_tagged(0x30, expected)
    }
}

#[derive(Arbitrary, Debug)]
enum Content {
    Fixture,
    Flipped { at: u16, xor: u8 },
    Raw(Vec<u8>),
}

/// `[0] eContent`: the content, possibly cut into chunks and nested constructed OCTET STRINGs.
#[derive(Arbitrary, Debug)]
struct EContent {
    omit: bool,
    content: Content,
    /// Chunk lengths for a constructed OCTET STRING; the rest goes in a last chunk.
    chunks: Vec<u8>,
    primitive: bool,
    indefinite_octets: bool,
    /// Extra levels of constructed OCTET STRING around the chunks.
    nesting: u8,
}

impl EContent {
    fn content(&self, parts: &Parts) -> Vec<u8> {
        match &self.content {
            Content::Fixture => parts.content.clone(),
            Content::Flipped { at, xor } => {
                let mut content = parts.content.clone();
                let len = content.len();
                if let Some(byte) = content.get_mut(usize::from(*at) % len) {
                    *byte ^= xor;
                }
                content
            }
            Content::Raw(bytes) => bytes.clone(),
        }
    }

    fn octets(&self, content: &[u8]) -> Vec<u8> {
        if self.primitive {
            return tlv(0x04, content);
        }
        let mut rest = content;
        let mut chunks = Vec::new();
        for &len in &self.chunks {
            let (chunk, tail) = rest.split_at(usize::from(len).min(rest.len()));
            chunks.push(tlv(0x04, chunk));
            rest = tail;
        }
        if !rest.is_empty() || chunks.is_empty() {
            chunks.push(tlv(0x04, rest));
        }
        let mut out = wrap(0x24, self.indefinite_octets, &chunks.concat());
        for _ in 0..self.nesting % 4 {
            out = wrap(0x24, self.indefinite_octets, &out);
        }
        out
    }
}

/// One SignerInfo.
#[derive(Arbitrary, Debug)]
struct Signer {
    version: Int,
    issuer: Bytes,
    serial: Serial,
    digest: Alg,
    attrs: Attrs,
    signature_algorithm: Alg,
    signature: Signature,
    unsigned_attrs: Option<Vec<u8>>,
}

#[derive(Arbitrary, Debug)]
enum Bytes {
    Expected,
    Raw(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
enum Serial {
    Expected,
    LeadingZeros(u8),
    Flipped { at: u8, xor: u8 },
    Raw(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
enum Signature {
    Expected,
    Flipped { at: u16, xor: u8 },
    Truncated(u16),
    Raw(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
enum Attrs {
    /// The fixture's signed attributes as transmitted: the signature covers exactly these.
    Fixture,
    Absent,
    Built(BuiltAttrs),
}

#[derive(Arbitrary, Debug)]
struct BuiltAttrs {
    attrs: Vec<Attr>,
    indefinite: bool,
}

#[derive(Arbitrary, Debug)]
enum Attr {
    ContentType(Oid),
    /// The right digest of the content written, or raw bytes.
    MessageDigest(Option<Vec<u8>>),
    SigningTime(Time),
    AlgorithmProtection {
        digest: Alg,
        signature: Option<Alg>,
        mac: bool,
    },
    Other {
        oid: Oid,
        values: Vec<Vec<u8>>,
    },
}

#[derive(Arbitrary, Debug)]
enum Time {
    Fixture,
    Utc([u8; 13]),
    Generalized([u8; 15]),
    Raw { tag: u8, bytes: Vec<u8> },
}

/// How the blob is handed to the crate.
#[derive(Arbitrary, Debug)]
enum Form {
    Binary,
    Base64,
    Lines,
    Pem,
}

impl Blob {
    /// The blob's bytes, in its text or binary form.
    pub fn build(&self) -> Vec<u8> {
        let parts = parts();
        let content = self.econtent.content(parts);
        let econtent = if self.econtent.omit {
            Vec::new()
        } else {
            wrap(0xA0, self.indefinite[4], &self.econtent.octets(&content))
        };
        let encap = wrap(
            0x30,
            self.indefinite[3],
            &[self.econtent_type.tlv(DATA), econtent].concat(),
        );
        let digest_algorithms = if self.digest_algorithms.is_empty() {
            tlv(0x31, &Alg::default_sha256().tlv(SHA256))
        } else {
            let algs: Vec<Vec<u8>> = self
                .digest_algorithms
                .iter()
                .map(|a| a.tlv(SHA256))
                .collect();
            tlv(0x31, &algs.concat())
        };
        let mut signers = Vec::new();
        if !self.omit_signer {
            signers.push(self.signer.build(parts, &content));
        }
        signers.extend(self.extra_signers.iter().map(|s| s.build(parts, &content)));
        let mut signed_data = [self.version.tlv(1), digest_algorithms, encap].concat();
        if let Some(certs) = &self.certificates {
            signed_data.extend(tlv(0xA0, certs));
        }
        if let Some(crls) = &self.crls {
            signed_data.extend(tlv(0xA1, crls));
        }
        signed_data.extend(tlv(0x31, &signers.concat()));
        let signed_data = wrap(0x30, self.indefinite[2], &signed_data);
        let explicit = wrap(0xA0, self.indefinite[1], &signed_data);
        let mut der = wrap(
            0x30,
            self.indefinite[0],
            &[self.outer_type.tlv(SIGNED_DATA), explicit].concat(),
        );
        der.extend_from_slice(&self.trailing);
        let b64 = || base64::engine::general_purpose::STANDARD.encode(&der);
        match self.form {
            Form::Binary => der,
            Form::Base64 => b64().into_bytes(),
            Form::Lines => lines(&b64()).into_bytes(),
            Form::Pem => format!(
                "-----BEGIN PKCS7-----\n{}\n-----END PKCS7-----\n",
                lines(&b64())
            )
            .into_bytes(),
        }
    }
}

impl Alg {
    fn default_sha256() -> Self {
        Self {
            oid: Oid::Expected,
            params: Params::Null,
        }
    }
}

impl Signer {
    fn build(&self, parts: &Parts, content: &[u8]) -> Vec<u8> {
        let issuer = match &self.issuer {
            Bytes::Expected => parts.issuer.clone(),
            Bytes::Raw(bytes) => bytes.clone(),
        };
        let serial = match &self.serial {
            Serial::Expected => parts.serial.clone(),
            Serial::LeadingZeros(n) => {
                let mut serial = vec![0; usize::from(n % 8)];
                serial.extend(parts.serial.iter().skip_while(|&&b| b == 0));
                serial
            }
            Serial::Flipped { at, xor } => {
                let mut serial = parts.serial.clone();
                let len = serial.len();
                if let Some(byte) = serial.get_mut(usize::from(*at) % len) {
                    *byte ^= xor;
                }
                serial
            }
            Serial::Raw(bytes) => bytes.clone(),
        };
        let sid = tlv(0x30, &[issuer, tlv(0x02, &serial)].concat());
        let attrs = match &self.attrs {
            Attrs::Fixture => parts.signed_attrs.clone(),
            Attrs::Absent => Vec::new(),
            Attrs::Built(built) => built.build(parts, content),
        };
        let signature = match &self.signature {
            Signature::Expected => parts.signature.clone(),
            Signature::Flipped { at, xor } => {
                let mut sig = parts.signature.clone();
                let len = sig.len();
                if let Some(byte) = sig.get_mut(usize::from(*at) % len) {
                    *byte ^= xor;
                }
                sig
            }
            Signature::Truncated(n) => parts
                .signature
                .get(..usize::from(*n) % parts.signature.len())
                .unwrap_or_default()
                .to_vec(),
            Signature::Raw(bytes) => bytes.clone(),
        };
        let mut body = [
            self.version.tlv(1),
            sid,
            self.digest.tlv(SHA256),
            attrs,
            self.signature_algorithm.tlv(SHA256_WITH_RSA),
            tlv(0x04, &signature),
        ]
        .concat();
        if let Some(unsigned) = &self.unsigned_attrs {
            body.extend(tlv(0xA1, unsigned));
        }
        tlv(0x30, &body)
    }
}

impl BuiltAttrs {
    fn build(&self, parts: &Parts, content: &[u8]) -> Vec<u8> {
        let attrs: Vec<Vec<u8>> = self
            .attrs
            .iter()
            .map(|attr| attr.build(parts, content))
            .collect();
        wrap(0xA0, self.indefinite, &attrs.concat())
    }
}

impl Attr {
    fn build(&self, parts: &Parts, content: &[u8]) -> Vec<u8> {
        let attribute = |oid: &[u8], values: &[Vec<u8>]| {
            tlv(
                0x30,
                &[tlv(0x06, oid), tlv(0x31, &values.concat())].concat(),
            )
        };
        match self {
            Self::ContentType(oid) => attribute(CONTENT_TYPE, &[oid.tlv(DATA)]),
            Self::MessageDigest(raw) => {
                let digest = raw
                    .clone()
                    .unwrap_or_else(|| Sha256::digest(content).to_vec());
                attribute(MESSAGE_DIGEST, &[tlv(0x04, &digest)])
            }
            Self::SigningTime(time) => {
                let value = match time {
                    Time::Fixture => tlv(0x17, &parts.signing_time),
                    Time::Utc(text) => tlv(0x17, text),
                    Time::Generalized(text) => tlv(0x18, text),
                    Time::Raw { tag, bytes } => tlv(*tag, bytes),
                };
                attribute(SIGNING_TIME, &[value])
            }
            Self::AlgorithmProtection {
                digest,
                signature,
                mac,
            } => {
                let mut body = digest.tlv(SHA256);
                if let Some(signature) = signature {
                    body.extend(signature.tlv_tagged(0xA1, SHA256_WITH_RSA));
                }
                if *mac {
                    body.extend(tlv(0xA2, &[0x06, 0x01, 0x2a]));
                }
                attribute(ALGORITHM_PROTECTION, &[tlv(0x30, &body)])
            }
            Self::Other { oid, values } => {
                let values: Vec<Vec<u8>> = values.iter().map(|v| tlv(0x04, v)).collect();
                attribute(oid.content(CONTENT_TYPE), &values)
            }
        }
    }
}

/// A definite-length TLV (short or long form).
fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(u8::try_from(len).unwrap_or(0));
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|&&b| b == 0).count();
        let count = bytes.len() - skip;
        out.push(0x80 | u8::try_from(count).unwrap_or(0));
        out.extend_from_slice(bytes.get(skip..).unwrap_or_default());
    }
    out.extend_from_slice(content);
    out
}

/// A constructed TLV with a definite or an indefinite length.
fn wrap(tag: u8, indefinite: bool, content: &[u8]) -> Vec<u8> {
    if indefinite {
        let mut out = vec![tag, 0x80];
        out.extend_from_slice(content);
        out.extend_from_slice(&[0, 0]);
        out
    } else {
        tlv(tag, content)
    }
}

/// Base64 text in 76-column lines, as IMDS serves it.
fn lines(b64: &str) -> String {
    b64.as_bytes()
        .chunks(76)
        .map(|line| String::from_utf8_lossy(line).into_owned())
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    #[test]
    fn empty_description_is_an_accepted_blob() {
        let blob: super::Blob =
            arbitrary::Arbitrary::arbitrary(&mut arbitrary::Unstructured::new(&[])).unwrap();
        let bytes = blob.build();
        let join = crate::test_ca_verifier()
            .verify(&bytes, crate::now())
            .unwrap();
        assert_eq!(join.verified().content(), crate::DOCUMENT_JSON);
    }
}
