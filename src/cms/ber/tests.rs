//! The BER reader: length forms, strict encodings, error offsets, the depth bound and the
//! record of indefinite lengths.

use super::*;

fn err(input: &[u8]) -> Malformed {
    match Reader::new(input).next_element() {
        Err(BerError { reason, .. }) => reason,
        other => panic!("expected a BER error, got {other:?}"),
    }
}

#[test]
fn definite_and_indefinite() {
    let mut r = Reader::new(&[0x30, 0x03, 0x02, 0x01, 0x05]);
    let seq = r.next_element().unwrap();
    assert!(r.is_empty());
    let mut kids = seq.children().unwrap();
    assert_eq!(
        small_integer(&kids.next_element().unwrap()).unwrap(),
        Some(5)
    );
    assert!(kids.is_empty());

    let indef = [0x30, 0x80, 0x02, 0x01, 0x07, 0x00, 0x00, 0xff];
    let mut r = Reader::new(&indef);
    let seq = r.next_element().unwrap();
    assert!(seq.indefinite);
    assert_eq!(seq.value, &[0x02, 0x01, 0x07]);
    assert_eq!(seq.raw.len(), 7);
    assert_eq!(r.remaining(), 1);
}

#[test]
fn long_form_lengths() {
    let mut input = vec![0x04, 0x82, 0x01, 0x00];
    input.extend(std::iter::repeat_n(0xAB, 256));
    let e = Reader::new(&input).next_element().unwrap();
    assert_eq!(e.value.len(), 256);
    assert_eq!(e.value_offset(), 4);
}

#[test]
fn bad_encodings() {
    assert_eq!(err(&[]), Malformed::Truncated);
    assert_eq!(err(&[0x30]), Malformed::Truncated);
    assert_eq!(
        err(&[0x04, 0x80, 0x00, 0x00]),
        Malformed::BadIndefiniteLength
    );
    assert_eq!(err(&[0x04, 0x85, 1, 1, 1, 1, 1]), Malformed::BadLength);
    assert_eq!(err(&[0x04, 0xff]), Malformed::BadLength);
    // A length claiming 4 GiB on a tiny input.
    assert_eq!(
        err(&[0x04, 0x84, 0xff, 0xff, 0xff, 0xff, 0]),
        Malformed::BadLength
    );
    assert_eq!(err(&[0x04, 0x82, 0x01]), Malformed::Truncated);
    assert_eq!(err(&[0x30, 0x80, 0x02, 0x01, 0x07]), Malformed::Truncated);
    assert_eq!(
        err(&[0x30, 0x80, 0x00, 0x01, 0x00]),
        Malformed::InvalidValue("end-of-contents")
    );
    assert_eq!(
        err(&[0x1f, 0x01, 0x00]),
        Malformed::InvalidValue("high tag number")
    );
}

#[test]
fn errors_name_where_they_are() {
    let at = |input: &[u8]| match Reader::new(input).next_element() {
        Err(e) => (e.offset, e.reason),
        Ok(e) => panic!("expected an error, got {e:?}"),
    };
    assert_eq!(
        at(&[0x30, 0x80, 0x02, 0x01, 0x07]),
        (5, Malformed::Truncated)
    );
    assert_eq!(
        at(&[0x30, 0x80, 0x30, 0x80, 0x02, 0x01, 0x07]),
        (7, Malformed::Truncated)
    );
    assert_eq!(
        at(&[0x30, 0x80, 0x02, 0x01, 0x07, 0x00, 0x01]),
        (5, Malformed::InvalidValue("end-of-contents"))
    );
    assert_eq!(
        at(&[0x30, 0x80, 0x02, 0x01, 0x07, 0x04, 0x05, 0x00]),
        (5, Malformed::BadLength)
    );
    let primitive = Reader::new(&[0x04, 0x01, 0x30]).next_element().unwrap();
    assert_eq!(
        primitive.children().map(|_| ()),
        Err(ber_error(0, Malformed::InvalidValue("primitive encoding")))
    );
    let constructed = Reader::new(&[0x24, 0x00]).next_element().unwrap();
    assert!(constructed.children().unwrap().is_empty());
}

#[test]
fn deep_nesting_is_bounded() {
    let mut deep = Vec::new();
    for _ in 0..10_000 {
        deep.extend([0x30, 0x80]);
    }
    assert_eq!(err(&deep), Malformed::NestingTooDeep);
    // Depths 0 to MAX_DEPTH are accepted, one level more is not.
    let nested = |levels: usize| {
        let mut input = [0x30, 0x80].repeat(levels);
        input.extend([0x00, 0x00].repeat(levels));
        input
    };
    assert!(Reader::new(&nested(MAX_DEPTH + 1)).next_element().is_ok());
    assert_eq!(err(&nested(MAX_DEPTH + 2)), Malformed::NestingTooDeep);
}

/// Every element's offset and lengths, depth first.
fn walk(mut r: Reader<'_>, out: &mut Vec<(usize, usize, usize)>) -> Result<(), BerError> {
    while !r.is_empty() {
        let e = r.next_element()?;
        out.push((e.offset, e.raw.len(), e.value.len()));
        if e.tag & CONSTRUCTED != 0 {
            walk(e.children()?, out)?;
        }
    }
    Ok(())
}

#[test]
fn recorded_lengths_change_nothing_but_the_work() {
    // 20 nested indefinite SEQUENCEs, each starting with an INTEGER: more than the record
    // holds.
    let mut nested = Vec::new();
    for _ in 0..20 {
        nested.extend([0x30, 0x80, 0x02, 0x01, 0x01]);
    }
    nested.extend([0x00, 0x00].repeat(20));
    let truncated = &nested[..nested.len() - 1];
    let siblings = [0x30, 0x80, 0x30, 0x80, 0, 0, 0x30, 0x80, 0, 0, 0, 0];
    let bad_eoc = [0x30, 0x80, 0x30, 0x80, 0, 1, 0, 0];
    for input in [&nested[..], truncated, &siblings, &bad_eoc] {
        let lengths = IndefiniteLengths::default();
        let (mut plain, mut recorded) = (Vec::new(), Vec::new());
        assert_eq!(
            walk(Reader::new(input), &mut plain),
            walk(Reader::with_lengths(input, &lengths), &mut recorded),
            "{input:02x?}"
        );
        assert_eq!(plain, recorded, "{input:02x?}");
    }
    let lengths = IndefiniteLengths::default();
    walk(Reader::with_lengths(&siblings, &lengths), &mut Vec::new()).unwrap();
    assert_eq!(lengths.count.get(), 3, "one record per indefinite element");
    let lengths = IndefiniteLengths::default();
    walk(Reader::with_lengths(&nested, &lengths), &mut Vec::new()).unwrap();
    assert_eq!(lengths.count.get(), 16, "a full record stops growing");
}
