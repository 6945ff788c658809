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
    // Definite lengths: depths 0 to MAX_DEPTH are accepted, one level more is not.
    let definite = |levels: usize| {
        let mut input = vec![0x05, 0x00];
        for _ in 0..levels {
            let mut outer = vec![0x30, u8::try_from(input.len()).unwrap()];
            outer.extend(input);
            input = outer;
        }
        input
    };
    let read_all = |input: &[u8]| walk(Reader::new(input), &mut Vec::new());
    assert!(read_all(&definite(MAX_DEPTH)).is_ok());
    assert_eq!(
        read_all(&definite(MAX_DEPTH + 1)),
        Err(ber_error(2 * (MAX_DEPTH + 1), Malformed::NestingTooDeep))
    );
}

#[test]
fn indefinite_nesting_is_bounded() {
    let mut deep = Vec::new();
    for _ in 0..10_000 {
        deep.extend([0x30, 0x80]);
    }
    assert_eq!(err(&deep), Malformed::IndefiniteNestingTooDeep);
    // MAX_INDEFINITE_DEPTH levels are accepted, one level more is not; the error names the
    // first header past the bound.
    let nested = |levels: usize| {
        let mut input = [0x30, 0x80].repeat(levels);
        input.extend([0x00, 0x00].repeat(levels));
        input
    };
    assert!(
        Reader::new(&nested(MAX_INDEFINITE_DEPTH))
            .next_element()
            .is_ok()
    );
    assert_eq!(
        Reader::new(&nested(MAX_INDEFINITE_DEPTH + 1))
            .next_element()
            .unwrap_err(),
        ber_error(
            2 * MAX_INDEFINITE_DEPTH,
            Malformed::IndefiniteNestingTooDeep
        )
    );
    // Definite levels in between do not count, and reading down counts like measuring.
    let mut mixed = vec![0x30, 0x80, 0x30, 0x04, 0x30, 0x80, 0, 0, 0, 0];
    let state = ParseState::default();
    walk(Reader::bounded(&mixed, &state), &mut Vec::new()).unwrap();
    mixed.splice(0..0, [0x30, 0x80].repeat(MAX_INDEFINITE_DEPTH - 1));
    mixed.extend([0, 0].repeat(MAX_INDEFINITE_DEPTH - 1));
    assert_eq!(
        walk(Reader::new(&mixed), &mut Vec::new()),
        Err(ber_error(
            2 * MAX_INDEFINITE_DEPTH + 2,
            Malformed::IndefiniteNestingTooDeep
        ))
    );
}

#[test]
fn every_header_is_paid_from_the_budget() {
    // MAX_ELEMENTS NULLs in a definite SEQUENCE: the SEQUENCE's header is one too many.
    let nulls = [0x05, 0x00].repeat(MAX_ELEMENTS);
    let len = u16::try_from(nulls.len()).unwrap().to_be_bytes();
    let input = [&[0x30, 0x82][..], &len, &nulls].concat();
    let state = ParseState::default();
    assert_eq!(
        walk(Reader::bounded(&input, &state), &mut Vec::new()),
        Err(ber_error(input.len() - 2, Malformed::TooManyElements))
    );
    let input = [&[0x30, 0x82][..], &len[..], &nulls[2..]].concat();
    let input = [
        &input[..2],
        &(u16::try_from(input.len() - 4).unwrap().to_be_bytes()),
        &input[4..],
    ]
    .concat();
    let state = ParseState::default();
    walk(Reader::bounded(&input, &state), &mut Vec::new()).unwrap();
    assert_eq!(state.spent(), MAX_ELEMENTS);
    // Measuring an indefinite length pays for the children's headers too, and a record
    // spares the second walk: SEQUENCE { 3 NULLs } costs 4 read, 3 more measured.
    let input = [0x30, 0x80, 0x05, 0x00, 0x05, 0x00, 0x05, 0x00, 0x00, 0x00];
    let state = ParseState::default();
    walk(Reader::bounded(&input, &state), &mut Vec::new()).unwrap();
    assert_eq!(state.spent(), 7);
    // Without a state (trusted inputs) nothing is counted.
    walk(
        Reader::new(&[0x05, 0x00].repeat(MAX_ELEMENTS + 1)),
        &mut Vec::new(),
    )
    .unwrap();
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

/// An indefinite SEQUENCE around `chains` chains of `levels` nested indefinite SEQUENCEs,
/// each level starting with an INTEGER.
fn chains(chains: usize, levels: usize) -> Vec<u8> {
    let mut chain = Vec::new();
    for _ in 0..levels {
        chain.extend([0x30, 0x80, 0x02, 0x01, 0x01]);
    }
    chain.extend([0x00, 0x00].repeat(levels));
    [&[0x30, 0x80][..], &chain.repeat(chains), &[0, 0]].concat()
}

#[test]
fn recorded_lengths_change_nothing_but_the_work() {
    // 25 indefinite SEQUENCEs, more than the record holds.
    let nested = chains(3, 8);
    let truncated = &nested[..nested.len() - 1];
    let siblings = [0x30, 0x80, 0x30, 0x80, 0, 0, 0x30, 0x80, 0, 0, 0, 0];
    let bad_eoc = [0x30, 0x80, 0x30, 0x80, 0, 1, 0, 0];
    for input in [&nested[..], truncated, &siblings, &bad_eoc] {
        let state = ParseState::default();
        let (mut plain, mut recorded) = (Vec::new(), Vec::new());
        assert_eq!(
            walk(Reader::new(input), &mut plain),
            walk(Reader::bounded(input, &state), &mut recorded),
            "{input:02x?}"
        );
        assert_eq!(plain, recorded, "{input:02x?}");
    }
    let state = ParseState::default();
    walk(Reader::bounded(&siblings, &state), &mut Vec::new()).unwrap();
    assert_eq!(state.count.get(), 3, "one record per indefinite element");
    let state = ParseState::default();
    walk(Reader::bounded(&nested, &state), &mut Vec::new()).unwrap();
    assert_eq!(state.count.get(), 16, "a full record stops growing");
    // The full record keeps the shallowest elements, the outer one first among them.
    assert_eq!(state.get(0), Some(nested.len() - 4));
    let depths: Vec<u8> = state.entries.iter().map(|e| e.get().2).collect();
    assert!(depths.iter().all(|&d| d <= 5), "{depths:?}");
}
