//! The SignerInfo of a SignedData: signer identity, algorithms, signed attributes and
//! signature, located as spans into the decoded bytes. Nothing here is trusted yet.

use core::ops::Range;

use chrono::{DateTime, NaiveDate, Utc};

use crate::cms::ber::{
    self, CONSTRUCTED, Element, TAG_GENERALIZED_TIME, TAG_OID, TAG_SEQUENCE, TAG_SET, TAG_UTC_TIME,
    malformed,
};
use crate::cms::oids;
use crate::error::{Error, Malformed};

#[derive(Clone, Debug)]
pub(super) struct AlgorithmSpans {
    pub(super) oid: Range<usize>,
    pub(super) parameters: Option<Range<usize>>,
}

#[derive(Clone, Debug, Default)]
pub(super) struct SignedAttributes {
    pub(super) content_type: Option<Range<usize>>,
    pub(super) message_digest: Option<Range<usize>>,
    pub(super) signing_time: Option<DateTime<Utc>>,
    pub(super) algorithm_protection: Option<(AlgorithmSpans, Option<AlgorithmSpans>)>,
}

/// The SignerInfo's fields, as spans into the decoded bytes.
pub(super) struct SignerParts {
    pub(super) issuer: Range<usize>,
    pub(super) serial: Range<usize>,
    pub(super) digest_algorithm: AlgorithmSpans,
    pub(super) signed_attrs: Option<Range<usize>>,
    pub(super) attributes: SignedAttributes,
    pub(super) signature_algorithm: AlgorithmSpans,
    pub(super) signature: Range<usize>,
}

impl SignerParts {
    pub(super) fn parse(signer: &Element<'_>) -> Result<Self, Error> {
        let signer = signer.expect_tag(TAG_SEQUENCE)?;
        let mut si = signer.children()?;
        let version = si.next_element()?;
        if ber::small_integer(&version)? != Some(1) {
            // Version 3 identifies the signer by key identifier, which AWS never uses.
            return Err(malformed(
                version.offset,
                Malformed::InvalidValue("SignerInfo version"),
            ));
        }
        let mut sid = si.expect(TAG_SEQUENCE)?.children()?;
        let issuer = sid.expect(TAG_SEQUENCE)?;
        let serial = sid.next_element()?;
        ber::integer(&serial)?;
        sid.finish()?;
        let digest_algorithm = algorithm(&si.next_element()?)?;
        let signed = si.optional(CONSTRUCTED | 0xA0)?;
        let (signed_attrs, attributes) = match signed {
            Some(element) => {
                let element = element.expect_definite()?;
                (Some(element.raw_span()), parse_attributes(&element)?)
            }
            None => (None, SignedAttributes::default()),
        };
        let signature_algorithm = algorithm(&si.next_element()?)?;
        let signature = si.expect(ber::TAG_OCTET_STRING)?;
        si.optional(CONSTRUCTED | 0xA1)?;
        si.finish()?;
        Ok(Self {
            issuer: issuer.raw_span(),
            serial: serial.value_span(),
            digest_algorithm,
            signed_attrs,
            attributes,
            signature_algorithm,
            signature: signature.value_span(),
        })
    }
}

/// Reads the attributes AWS signs; other attributes are allowed but must not repeat either.
fn parse_attributes(signed: &Element<'_>) -> Result<SignedAttributes, Error> {
    let mut attrs = SignedAttributes::default();
    let mut others: Vec<&[u8]> = Vec::new();
    let mut reader = signed.children()?;
    while !reader.is_empty() {
        let (oid, value) = attribute(&reader.expect(TAG_SEQUENCE)?)?;
        if !attrs.record(oid, &value)? {
            others.push(oid);
        }
    }
    // Sorting finds repeats in O(n log n): a 64 KiB blob can hold thousands of tiny
    // attributes, and a linear search per attribute made parsing it quadratic.
    others.sort_unstable();
    match others.windows(2).find_map(|pair| match pair {
        [a, b] if a == b => Some(*a),
        _ => None,
    }) {
        Some(oid) => Err(Error::DuplicateAttribute {
            oid: ber::oid_to_string(oid),
        }),
        None => Ok(attrs),
    }
}

/// An Attribute's type and its single value (AWS's attributes, and CMS's, have exactly one).
fn attribute<'a>(attr: &Element<'a>) -> Result<(&'a [u8], Element<'a>), Error> {
    let mut attr = attr.children()?;
    let oid = ber::oid(&attr.expect(TAG_OID)?)?;
    let values = attr.expect(TAG_SET)?;
    attr.finish()?;
    let mut values_reader = values.children()?;
    let value = values_reader.next_element()?;
    if !values_reader.is_empty() {
        return Err(malformed(
            values.offset,
            Malformed::InvalidValue("attribute value count"),
        ));
    }
    Ok((oid, value))
}

impl SignedAttributes {
    /// Records a known attribute (refusing a second one); `false` for any other type.
    fn record(&mut self, oid: &[u8], value: &Element<'_>) -> Result<bool, Error> {
        match oid {
            oids::CONTENT_TYPE => once(&mut self.content_type, oid, || {
                Ok(ber::oid_element(value)?.value_span())
            })?,
            oids::MESSAGE_DIGEST => once(&mut self.message_digest, oid, || {
                Ok(value.expect_tag(ber::TAG_OCTET_STRING)?.value_span())
            })?,
            oids::SIGNING_TIME => once(&mut self.signing_time, oid, || parse_time(value))?,
            oids::ALGORITHM_PROTECTION => once(&mut self.algorithm_protection, oid, || {
                parse_algorithm_protection(value)
            })?,
            _ => return Ok(false),
        }
        Ok(true)
    }
}

/// Fills `slot` with the parsed value; a repeated attribute is refused before its value is read.
fn once<T>(
    slot: &mut Option<T>,
    oid: &[u8],
    parse: impl FnOnce() -> Result<T, Error>,
) -> Result<(), Error> {
    if slot.is_some() {
        return Err(Error::DuplicateAttribute {
            oid: ber::oid_to_string(oid),
        });
    }
    *slot = Some(parse()?);
    Ok(())
}

/// CMSAlgorithmProtection ::= SEQUENCE { digestAlgorithm, [1] signatureAlgorithm OPTIONAL,
/// [2] macAlgorithm OPTIONAL }.
fn parse_algorithm_protection(
    value: &Element<'_>,
) -> Result<(AlgorithmSpans, Option<AlgorithmSpans>), Error> {
    let mut seq = value.expect_tag(TAG_SEQUENCE)?.children()?;
    let digest = algorithm(&seq.next_element()?)?;
    let signature = match seq.optional(CONSTRUCTED | 0xA1)? {
        Some(implicit) => Some(algorithm_fields(&implicit)?),
        None => None,
    };
    seq.optional(CONSTRUCTED | 0xA2)?;
    seq.finish()?;
    Ok((digest, signature))
}

pub(super) fn algorithm(element: &Element<'_>) -> Result<AlgorithmSpans, Error> {
    algorithm_fields(&element.expect_tag(TAG_SEQUENCE)?)
}

/// The fields of an AlgorithmIdentifier, whatever the (possibly implicit) outer tag.
fn algorithm_fields(element: &Element<'_>) -> Result<AlgorithmSpans, Error> {
    let mut seq = element.children()?;
    let oid = ber::oid_element(&seq.next_element()?)?.value_span();
    let parameters = if seq.is_empty() {
        None
    } else {
        Some(seq.next_element()?.raw_span())
    };
    seq.finish()?;
    Ok(AlgorithmSpans { oid, parameters })
}

/// Parses UTCTime (`YYMMDDHHMMSSZ`, RFC 5280 century rule) or GeneralizedTime
/// (`YYYYMMDDHHMMSSZ`).
fn parse_time(element: &Element<'_>) -> Result<DateTime<Utc>, Error> {
    let invalid = || malformed(element.offset, Malformed::InvalidValue("signingTime"));
    let (year, rest) = match (element.tag, element.value) {
        (TAG_UTC_TIME, [y1, y2, rest @ ..]) if rest.len() == 11 => {
            let yy = digits(&[*y1, *y2]).ok_or_else(invalid)?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, rest)
        }
        (TAG_GENERALIZED_TIME, [y1, y2, y3, y4, rest @ ..]) if rest.len() == 11 => {
            (digits(&[*y1, *y2, *y3, *y4]).ok_or_else(invalid)?, rest)
        }
        (TAG_UTC_TIME | TAG_GENERALIZED_TIME, _) => return Err(invalid()),
        (found, _) => {
            return Err(malformed(
                element.offset,
                Malformed::UnexpectedTag {
                    expected: TAG_UTC_TIME,
                    found,
                },
            ));
        }
    };
    let [m1, m2, d1, d2, h1, h2, n1, n2, s1, s2, b'Z'] = rest else {
        return Err(invalid());
    };
    let field = |a: u8, b: u8| digits(&[a, b]).ok_or_else(invalid);
    let date = NaiveDate::from_ymd_opt(
        i32::try_from(year).map_err(|_| invalid())?,
        field(*m1, *m2)?,
        field(*d1, *d2)?,
    )
    .ok_or_else(invalid)?;
    let time = date
        .and_hms_opt(field(*h1, *h2)?, field(*n1, *n2)?, field(*s1, *s2)?)
        .ok_or_else(invalid)?;
    Ok(time.and_utc())
}

fn digits(text: &[u8]) -> Option<u32> {
    text.iter().try_fold(0u32, |acc, &b| {
        b.is_ascii_digit().then(|| acc * 10 + u32::from(b - b'0'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cms::ber::Reader;

    fn time(tag: u8, text: &str) -> Result<DateTime<Utc>, Error> {
        let mut encoded = vec![tag, u8::try_from(text.len()).unwrap()];
        encoded.extend_from_slice(text.as_bytes());
        let element = Reader::new(&encoded).next_element().unwrap();
        parse_time(&element)
    }

    #[test]
    fn times() {
        assert_eq!(
            time(TAG_UTC_TIME, "210903212649Z").unwrap().to_rfc3339(),
            "2021-09-03T21:26:49+00:00"
        );
        assert_eq!(
            time(TAG_UTC_TIME, "990101000000Z").unwrap().to_rfc3339()[..4],
            *"1999"
        );
        assert_eq!(
            time(TAG_GENERALIZED_TIME, "21950101000000Z")
                .unwrap()
                .to_rfc3339()[..4],
            *"2195"
        );
        for bad in [
            "210903212649",
            "211303212649Z",
            "2109032126490",
            "21090321264xZ",
        ] {
            assert!(time(TAG_UTC_TIME, bad).is_err(), "{bad}");
        }
        assert!(time(TAG_OID, "210903212649Z").is_err());
    }
}
