//! CMS SignedData (PKCS#7) as AWS writes it: BER in, an unverified view out. No crypto, no JSON.

use core::ops::Range;

use chrono::{DateTime, Utc};

use crate::cms::ber::{
    self, CONSTRUCTED, Element, Reader, TAG_NULL, TAG_SEQUENCE, TAG_SET, malformed,
};
use crate::cms::oids;
use crate::cms::signer_info::{AlgorithmSpans, SignedAttributes, SignerParts, algorithm};
use crate::error::{Error, Malformed};
use crate::input::b64;

/// Largest blob accepted by [`parse_signed_data`], in bytes of input (text or binary).
///
/// Real AWS blobs are about 1.5 KiB of base64; 64 KiB leaves room for embedded certificates
/// while bounding the work and memory an untrusted request can cause.
pub const MAX_BLOB_LEN: usize = 64 * 1024;

/// Most SignerInfos counted before giving up (AWS always sends exactly one).
const MAX_SIGNERS: usize = 8;

const ARMOUR_BEGIN: &[u8] = b"-----BEGIN PKCS7-----";
const ARMOUR_END: &[u8] = b"-----END PKCS7-----";

/// A parsed, **unverified** CMS SignedData: what the blob claims, before any signature check.
///
/// Obtained from [`parse_signed_data`]; [`verify_input`](crate::verify_input) parses and verifies
/// in one step. Nothing here is trustworthy on its own.
#[derive(Clone, Debug)]
pub struct UnverifiedSignedData {
    der: Vec<u8>,
    content: Content,
    econtent_type: Range<usize>,
    issuer: Range<usize>,
    serial: Range<usize>,
    digest_algorithm: AlgorithmSpans,
    signature_algorithm: AlgorithmSpans,
    signed_attrs: Option<Range<usize>>,
    attributes: SignedAttributes,
    signature: Range<usize>,
}

/// An AlgorithmIdentifier as found in the blob: OID and raw parameters.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub struct AlgorithmIdentifier<'a> {
    /// The OID's content bytes (DER, without tag and length).
    pub oid: &'a [u8],
    /// The complete parameters element (tag, length, value), if present.
    pub parameters: Option<&'a [u8]>,
}

impl AlgorithmIdentifier<'_> {
    /// The OID in dotted form, e.g. `2.16.840.1.101.3.4.2.1`.
    #[must_use]
    pub fn oid_string(&self) -> String {
        ber::oid_to_string(self.oid)
    }

    /// Whether the parameters are absent or NULL, as RFC 5754 allows for SHA-2 and RFC 8017 for
    /// RSA.
    pub(crate) fn has_null_or_no_parameters(&self) -> bool {
        matches!(self.parameters, None | Some([TAG_NULL, 0]))
    }
}

/// The encapsulated content: where it lies in the decoded bytes when its OCTET STRING holds it
/// in one piece (AWS's case: one segment), or joined from its BER segments.
#[derive(Clone, Debug)]
enum Content {
    InPlace(Range<usize>),
    Joined(Vec<u8>),
}

impl Content {
    /// Reads an OCTET STRING, primitive or constructed, without copying a single segment.
    fn parse(element: &Element<'_>) -> Result<Self, Error> {
        let single = match element.tag {
            ber::TAG_OCTET_STRING => Some(*element),
            t if t == ber::TAG_OCTET_STRING | CONSTRUCTED => {
                let mut segments = element.children()?;
                match segments.next_element() {
                    Ok(only) if only.tag == ber::TAG_OCTET_STRING && segments.is_empty() => {
                        Some(only)
                    }
                    _ => None,
                }
            }
            _ => None,
        };
        if let Some(segment) = single {
            return Ok(Self::InPlace(segment.value_span()));
        }
        // Several segments, nested ones, or an error to report: the general reader.
        let mut joined = Vec::new();
        ber::octet_string_into(element, &mut joined)?;
        Ok(Self::Joined(joined))
    }
}

/// Parses a signed blob from `/latest/dynamic/instance-identity/rsa2048` (or `/pkcs7`).
///
/// Accepts the base64 text IMDS serves (any line breaks, `\n` or `\r\n`, optional trailing
/// newline), the same inside `-----BEGIN PKCS7-----` armour, and raw BER/DER bytes. Indefinite
/// lengths and constructed OCTET STRINGs are decoded as BER allows. Nothing is verified:
/// [`verify_input`](crate::verify_input) parses and verifies in one step.
///
/// ```
/// let blob = include_bytes!("../../tests/data/gen/rsa2048.b64");
/// let signed = ec2_iid::dangerous::parse_signed_data(blob)?;
/// assert!(signed.content().starts_with(b"{"));
/// assert_eq!(signed.digest_algorithm().oid_string(), "2.16.840.1.101.3.4.2.1");
/// # Ok::<(), ec2_iid::Error>(())
/// ```
///
/// # Errors
/// [`Error::InputTooLarge`] over [`MAX_BLOB_LEN`], [`Error::Base64`], [`Error::Malformed`] for
/// a structure that is not SignedData, [`Error::TrailingData`], [`Error::UnexpectedContentType`]
/// when the outer content type is not signedData, [`Error::MissingContent`] for a detached
/// signature, [`Error::SignerCount`] unless there is exactly one SignerInfo, and
/// [`Error::DuplicateAttribute`] for a repeated signed attribute.
pub fn parse_signed_data(blob: &[u8]) -> Result<UnverifiedSignedData, Error> {
    let der = decode_blob(blob)?;
    UnverifiedSignedData::parse(der)
}

/// Turns base64 text, armoured text or raw BER into BER bytes.
fn decode_blob(blob: &[u8]) -> Result<Vec<u8>, Error> {
    if blob.len() > MAX_BLOB_LEN {
        return Err(Error::InputTooLarge {
            len: blob.len(),
            max: MAX_BLOB_LEN,
        });
    }
    if blob.first() == Some(&TAG_SEQUENCE) {
        return Ok(blob.to_vec());
    }
    let mut text = blob.trim_ascii();
    if let Some(rest) = text.strip_prefix(ARMOUR_BEGIN) {
        text = rest
            .strip_suffix(ARMOUR_END)
            .ok_or(Error::Base64)?
            .trim_ascii();
    }
    if text.is_empty() {
        return Err(malformed(0, Malformed::Empty));
    }
    b64::decode_lines(text)
        .or_else(|| b64::decode_ignoring_whitespace(text))
        .ok_or(Error::Base64)
}

impl UnverifiedSignedData {
    fn parse(der: Vec<u8>) -> Result<Self, Error> {
        let state = ber::ParseState::default();
        let mut outer = Reader::bounded(&der, &state);
        let mut sd = signed_data(&mut outer)?.children()?;
        let version = sd.next_element()?;
        if !matches!(ber::small_integer(&version)?, Some(1..=5)) {
            return Err(malformed(
                version.offset,
                Malformed::InvalidValue("version"),
            ));
        }
        let mut digest_algorithms = sd.expect(TAG_SET)?.children()?;
        while !digest_algorithms.is_empty() {
            algorithm(&digest_algorithms.next_element()?)?;
        }
        let (econtent_type, content) = encapsulated_content(&sd.expect(TAG_SEQUENCE)?)?;
        // Certificates and CRLs are never trusted: the signer comes from the trust store.
        sd.optional(CONSTRUCTED | 0xA0)?;
        sd.optional(CONSTRUCTED | 0xA1)?;
        let signer_infos = sd.expect(TAG_SET)?;
        sd.finish()?;
        let parts = SignerParts::parse(&only_signer(&signer_infos)?)?;
        Ok(Self {
            der,
            content,
            econtent_type,
            issuer: parts.issuer,
            serial: parts.serial,
            digest_algorithm: parts.digest_algorithm,
            signature_algorithm: parts.signature_algorithm,
            signed_attrs: parts.signed_attrs,
            attributes: parts.attributes,
            signature: parts.signature,
        })
    }

    /// The encapsulated content: the document JSON, with BER segments joined.
    #[must_use]
    pub fn content(&self) -> &[u8] {
        match &self.content {
            Content::InPlace(range) => self.bytes(range),
            Content::Joined(joined) => joined,
        }
    }

    /// The encapsulated content type OID (content bytes); `id-data` for AWS.
    #[must_use]
    pub fn content_type(&self) -> &[u8] {
        self.bytes(&self.econtent_type)
    }

    /// The signer's issuer Name, as encoded (DER SEQUENCE).
    #[must_use]
    pub fn signer_issuer(&self) -> &[u8] {
        self.bytes(&self.issuer)
    }

    /// The signer's serial number: the INTEGER's content bytes as encoded.
    #[must_use]
    pub fn signer_serial(&self) -> &[u8] {
        self.bytes(&self.serial)
    }

    /// The SignerInfo's digest algorithm.
    #[must_use]
    pub fn digest_algorithm(&self) -> AlgorithmIdentifier<'_> {
        self.algorithm(&self.digest_algorithm)
    }

    /// The SignerInfo's signature algorithm.
    #[must_use]
    pub fn signature_algorithm(&self) -> AlgorithmIdentifier<'_> {
        self.algorithm(&self.signature_algorithm)
    }

    /// The signed attributes exactly as transmitted, starting with their `[0]` tag byte `0xA0`.
    /// The signature covers these bytes with that byte replaced by `0x31` (SET).
    #[must_use]
    pub fn signed_attributes(&self) -> Option<&[u8]> {
        self.signed_attrs.as_ref().map(|r| self.bytes(r))
    }

    /// The `contentType` signed attribute's OID (content bytes), if present.
    #[must_use]
    pub fn content_type_attribute(&self) -> Option<&[u8]> {
        self.attributes.content_type.as_ref().map(|r| self.bytes(r))
    }

    /// The `messageDigest` signed attribute, if present.
    #[must_use]
    pub fn message_digest(&self) -> Option<&[u8]> {
        self.attributes
            .message_digest
            .as_ref()
            .map(|r| self.bytes(r))
    }

    /// The `signingTime` signed attribute, if present.
    #[must_use]
    pub fn signing_time(&self) -> Option<DateTime<Utc>> {
        self.attributes.signing_time
    }

    /// The CMSAlgorithmProtection attribute (RFC 6211), if present: digest algorithm and
    /// signature algorithm (the latter optional in the attribute).
    #[must_use]
    pub fn algorithm_protection(
        &self,
    ) -> Option<(AlgorithmIdentifier<'_>, Option<AlgorithmIdentifier<'_>>)> {
        self.attributes
            .algorithm_protection
            .as_ref()
            .map(|(d, s)| (self.algorithm(d), s.as_ref().map(|s| self.algorithm(s))))
    }

    /// The signature value.
    #[must_use]
    pub fn signature(&self) -> &[u8] {
        self.bytes(&self.signature)
    }

    /// The content, reusing the decoded bytes' allocation when it lies in one piece.
    pub(crate) fn into_content(self) -> Vec<u8> {
        match self.content {
            Content::InPlace(range) => {
                let mut bytes = self.der;
                if bytes.get(range.clone()).is_none() {
                    // Unreachable: the span was taken from these bytes.
                    return Vec::new();
                }
                bytes.truncate(range.end);
                bytes.drain(..range.start);
                bytes
            }
            Content::Joined(joined) => joined,
        }
    }

    fn bytes(&self, range: &Range<usize>) -> &[u8] {
        self.der.get(range.clone()).unwrap_or_default()
    }

    fn algorithm(&self, spans: &AlgorithmSpans) -> AlgorithmIdentifier<'_> {
        AlgorithmIdentifier {
            oid: self.bytes(&spans.oid),
            parameters: spans.parameters.as_ref().map(|r| self.bytes(r)),
        }
    }
}

/// The SignedData SEQUENCE inside the ContentInfo, which must be all of the input.
fn signed_data<'a>(outer: &mut Reader<'a>) -> Result<Element<'a>, Error> {
    let content_info = outer.expect(TAG_SEQUENCE)?;
    if !outer.is_empty() {
        return Err(Error::TrailingData {
            len: outer.remaining(),
        });
    }
    let mut ci = content_info.children()?;
    let content_type = ber::oid(&ci.next_element()?)?;
    if content_type != oids::SIGNED_DATA {
        return Err(Error::UnexpectedContentType {
            oid: ber::oid_to_string(content_type),
        });
    }
    let mut explicit = ci.expect(CONSTRUCTED | 0xA0)?.children()?;
    ci.finish()?;
    let signed_data = explicit.expect(TAG_SEQUENCE)?;
    explicit.finish()?;
    Ok(signed_data)
}

/// The EncapsulatedContentInfo's type and content; a detached signature has no content.
fn encapsulated_content(encap: &Element<'_>) -> Result<(Range<usize>, Content), Error> {
    let mut encap = encap.children()?;
    let econtent_type = ber::oid_element(&encap.next_element()?)?.value_span();
    let Some(explicit) = encap.optional(CONSTRUCTED | 0xA0)? else {
        return Err(Error::MissingContent);
    };
    let mut inner = explicit.children()?;
    let content = Content::parse(&inner.next_element()?)?;
    inner.finish()?;
    encap.finish()?;
    Ok((econtent_type, content))
}

/// The one SignerInfo; counting stops at [`MAX_SIGNERS`] so a blob of tiny SignerInfos is not
/// walked to its end.
fn only_signer<'a>(signer_infos: &Element<'a>) -> Result<Element<'a>, Error> {
    let mut infos = signer_infos.children()?;
    let mut signer = None;
    let mut count = 0usize;
    while !infos.is_empty() && count < MAX_SIGNERS {
        let info = infos.next_element()?;
        count += 1;
        signer.get_or_insert(info);
    }
    match (signer, count) {
        (Some(signer), 1) => Ok(signer),
        _ => Err(Error::SignerCount { count }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_in_one_piece_is_not_copied() {
        let parse = |der: &[u8]| {
            let element = Reader::new(der).next_element().unwrap();
            Content::parse(&element)
        };
        let joined = |c: Result<Content, Error>| match c {
            Ok(Content::Joined(bytes)) => bytes,
            other => panic!("expected joined content, got {other:?}"),
        };
        assert!(matches!(parse(&[0x04, 0x02, b'{', b'}']), Ok(Content::InPlace(r)) if r == (2..4)));
        let one_segment = [0x24, 0x80, 0x04, 0x02, b'{', b'}', 0, 0];
        assert!(matches!(parse(&one_segment), Ok(Content::InPlace(r)) if r == (4..6)));
        let two = [0x24, 0x80, 0x04, 0x01, b'{', 0x04, 0x01, b'}', 0, 0];
        assert_eq!(joined(parse(&two)), b"{}");
        let nested = [0x24, 0x06, 0x24, 0x04, 0x04, 0x02, b'{', b'}'];
        assert_eq!(joined(parse(&nested)), b"{}");
        assert_eq!(joined(parse(&[0x24, 0x00])), b"");
        let unexpected = |found| Error::Malformed {
            offset: 0,
            reason: Malformed::UnexpectedTag {
                expected: ber::TAG_OCTET_STRING,
                found,
            },
        };
        assert!(parse(&[0x24, 0x03, 0x02, 0x01, 0x00]).is_err());
        assert_eq!(parse(&[0x0c, 0x01, b'x']).unwrap_err(), unexpected(0x0c));
        // A SEQUENCE around one OCTET STRING is not an OCTET STRING.
        assert_eq!(
            parse(&[0x30, 0x03, 0x04, 0x01, b'x']).unwrap_err(),
            unexpected(0x30)
        );
    }

    #[test]
    fn decode_blob_forms() {
        assert_eq!(decode_blob(b"MAA=").unwrap(), vec![0x30, 0]);
        assert_eq!(decode_blob(b"MA\r\nA=\r\n").unwrap(), vec![0x30, 0]);
        assert_eq!(
            decode_blob(b"-----BEGIN PKCS7-----\nMAA=\n-----END PKCS7-----\n").unwrap(),
            vec![0x30, 0]
        );
        assert_eq!(decode_blob(&[0x30, 0]).unwrap(), vec![0x30, 0]);
        // IMDS's layout and any other wrapping decode alike (the decoder has its own tests).
        assert_eq!(decode_blob(b"QUJD\r\nREVG\nQUJD").unwrap(), b"ABCDEFABC");
        assert_eq!(decode_blob(b"QUJ\n DREVG\n").unwrap(), b"ABCDEF");
        assert_eq!(decode_blob(b"QQ==\nQUJD"), Err(Error::Base64));
        assert_eq!(
            decode_blob(b"-----BEGIN PKCS7-----\nMAA=\n"),
            Err(Error::Base64)
        );
        assert_eq!(decode_blob(b"MA*="), Err(Error::Base64));
        assert_eq!(
            decode_blob(b"MAB="),
            Err(Error::Base64),
            "non-canonical trailing bits"
        );
        assert_eq!(
            decode_blob(b" \n"),
            Err(Error::Malformed {
                offset: 0,
                reason: Malformed::Empty
            })
        );
        let big = vec![b'A'; MAX_BLOB_LEN + 1];
        assert_eq!(
            decode_blob(&big),
            Err(Error::InputTooLarge {
                len: MAX_BLOB_LEN + 1,
                max: MAX_BLOB_LEN
            })
        );
    }
}
