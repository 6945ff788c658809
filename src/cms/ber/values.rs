//! The values CMS reads from BER elements: OCTET STRINGs (joined from segments), INTEGERs and
//! OBJECT IDENTIFIERs, each checked for a well-formed encoding.

use super::{BerError, CONSTRUCTED, Element, TAG_INTEGER, TAG_OCTET_STRING, TAG_OID, ber_error};
use crate::error::Malformed;

/// The concatenated content of an OCTET STRING, primitive or constructed (BER segments).
///
/// Appends to `out`; segments may themselves be constructed.
pub(crate) fn octet_string_into(element: &Element<'_>, out: &mut Vec<u8>) -> Result<(), BerError> {
    match element.tag {
        TAG_OCTET_STRING => {
            out.extend_from_slice(element.value);
            Ok(())
        }
        t if t == TAG_OCTET_STRING | CONSTRUCTED => {
            let mut segments = element.children()?;
            while !segments.is_empty() {
                let segment = segments.next_element()?;
                if segment.tag & !CONSTRUCTED != TAG_OCTET_STRING {
                    return Err(ber_error(
                        segment.offset,
                        Malformed::UnexpectedTag {
                            expected: TAG_OCTET_STRING,
                            found: segment.tag,
                        },
                    ));
                }
                octet_string_into(&segment, out)?;
            }
            Ok(())
        }
        found => Err(ber_error(
            element.offset,
            Malformed::UnexpectedTag {
                expected: TAG_OCTET_STRING,
                found,
            },
        )),
    }
}

/// A primitive INTEGER's content bytes, checked to be non-empty.
pub(crate) fn integer<'a>(element: &Element<'a>) -> Result<&'a [u8], BerError> {
    let element = element.expect_tag(TAG_INTEGER)?;
    if element.value.is_empty() {
        return Err(ber_error(
            element.offset,
            Malformed::InvalidValue("INTEGER"),
        ));
    }
    Ok(element.value)
}

/// A small non-negative INTEGER (versions), or `None` if it does not fit a `u8`.
pub(crate) fn small_integer(element: &Element<'_>) -> Result<Option<u8>, BerError> {
    Ok(match integer(element)? {
        [v] if *v < 0x80 => Some(*v),
        _ => None,
    })
}

/// An OBJECT IDENTIFIER's content bytes, checked for a well-formed encoding.
pub(crate) fn oid<'a>(element: &Element<'a>) -> Result<&'a [u8], BerError> {
    let element = element.expect_tag(TAG_OID)?;
    let bytes = element.value;
    let well_formed = !bytes.is_empty()
        && bytes.last().is_some_and(|b| b & 0x80 == 0)
        && bytes.len() <= 64
        // No arc starts with a padding 0x80 byte.
        && bytes
            .iter()
            .enumerate()
            .all(|(i, &b)| b != 0x80 || (i > 0 && bytes.get(i - 1).is_some_and(|p| p & 0x80 != 0)));
    if well_formed {
        Ok(bytes)
    } else {
        Err(ber_error(
            element.offset,
            Malformed::InvalidValue("OBJECT IDENTIFIER"),
        ))
    }
}

/// An OBJECT IDENTIFIER element, checked like [`oid`].
pub(crate) fn oid_element<'a>(element: &Element<'a>) -> Result<Element<'a>, BerError> {
    oid(element)?;
    Ok(*element)
}

/// Renders OID content bytes in dotted form for error messages.
pub(crate) fn oid_to_string(bytes: &[u8]) -> String {
    der::asn1::ObjectIdentifier::from_bytes(bytes)
        .map(|oid| oid.to_string())
        .unwrap_or_else(|_| String::from("(invalid OID)"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cms::ber::Reader;

    #[test]
    fn constructed_octet_string_is_concatenated() {
        let input = [
            0x24, 0x80, 0x04, 0x02, b'a', b'b', 0x04, 0x01, b'c', 0x00, 0x00,
        ];
        let e = Reader::new(&input).next_element().unwrap();
        let mut out = Vec::new();
        octet_string_into(&e, &mut out).unwrap();
        assert_eq!(out, b"abc");
        let wrong = [0x24, 0x03, 0x02, 0x01, 0x00];
        let e = Reader::new(&wrong).next_element().unwrap();
        assert!(octet_string_into(&e, &mut out).is_err());
    }

    #[test]
    fn oids() {
        let e = Reader::new(&[0x06, 0x03, 0x2a, 0x86, 0x48])
            .next_element()
            .unwrap();
        assert_eq!(oid(&e).unwrap(), &[0x2a, 0x86, 0x48]);
        assert_eq!(oid_to_string(&[0x2a, 0x86, 0x48]), "1.2.840");
        for bad in [
            &[0x06, 0x00][..],
            &[0x06, 0x01, 0x86],
            &[0x06, 0x02, 0x80, 0x01],
        ] {
            let e = Reader::new(bad).next_element().unwrap();
            assert!(oid(&e).is_err(), "{bad:?}");
        }
    }
}
