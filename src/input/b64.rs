//! Strict standard base64 (RFC 4648 §4) for the texts IMDS serves, decoded without copies.
//!
//! Every verification starts by decoding about 1.5 KiB of text, so this sits on the hot path.
//! Four lookup tables hold each symbol's 6 bits already shifted into place, so a group of four
//! symbols becomes three bytes with four loads, three ORs and one validity test (invalid
//! symbols set bit 31 in every table). Lines are decoded where they lie in the text, straight
//! into one output buffer: no joined copy of the text.
//!
//! Canonical input only, as the `base64` crate's `STANDARD` engine requires: padding is
//! mandatory and ends the text, and the bits a padded group leaves unused must be zero.

/// Marks a symbol outside the alphabet in every table.
const INVALID: u32 = 1 << 31;

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// The table for the symbol at position `index` (0..4) of a group: each symbol's value
/// shifted to where it lands in the group's 24 bits, [`INVALID`] for every other byte.
#[expect(
    clippy::as_conversions,
    clippy::indexing_slicing,
    reason = "const evaluation: `From` is not const, and an out-of-range index fails the build"
)]
const fn table(index: u32) -> [u32; 256] {
    let mut t = [INVALID; 256];
    let mut value: u32 = 0;
    while value < 64 {
        t[ALPHABET[value as usize] as usize] = value << (18 - 6 * index);
        value += 1;
    }
    t
}

static TABLES: [[u32; 256]; 4] = [table(0), table(1), table(2), table(3)];

/// The 24 bits of four symbols, or a value with [`INVALID`] set.
fn group_bits([a, b, c, d]: [u8; 4]) -> u32 {
    let [t0, t1, t2, t3] = &TABLES;
    // A `u8` always indexes a 256-entry table; the fallback is never taken.
    let bits = |t: &[u32; 256], s: u8| t.get(usize::from(s)).copied().unwrap_or(INVALID);
    bits(t0, a) | bits(t1, b) | bits(t2, c) | bits(t3, d)
}

/// Writes the bytes of `text`, a whole number of groups where only the last may be padded,
/// to the start of `dst` (at least 3 bytes per group) and returns how many it wrote. `None`
/// if any symbol is invalid or the padding is not canonical.
fn decode_groups(text: &[u8], dst: &mut [u8]) -> Option<usize> {
    if !text.len().is_multiple_of(4) {
        return None;
    }
    let (body, last) = text.split_at(text.len().saturating_sub(4));
    let mut invalid = 0u32;
    // Two groups per step: their 48 bits go out as one 8-byte store whose last two bytes a
    // later store overwrites. There is always room: the last group's 3 bytes follow the body's.
    let (pairs, rest) = body.as_chunks::<8>();
    let mut written = 0;
    for &[a, b, c, d, e, f, g, h] in pairs {
        let high = group_bits([a, b, c, d]);
        let low = group_bits([e, f, g, h]);
        invalid |= high | low;
        let bytes = (u64::from(high) << 40 | u64::from(low) << 16).to_be_bytes();
        dst.get_mut(written..written + 8)?.copy_from_slice(&bytes);
        written += 6;
    }
    if let Ok(&group) = <&[u8; 4]>::try_from(rest) {
        let bits = group_bits(group);
        invalid |= bits;
        dst.get_mut(written..written + 3)?
            .copy_from_slice(bits.to_be_bytes().get(1..)?);
        written += 3;
    }
    if invalid & INVALID != 0 {
        return None;
    }
    Some(written + decode_last_group(last, dst.get_mut(written..)?)?)
}

/// The final group: `xxxx`, `xxx=` or `xx==`, with the unused bits of a padded group zero.
fn decode_last_group(group: &[u8], dst: &mut [u8]) -> Option<usize> {
    let (symbols, kept) = match *group {
        [] => return Some(0),
        [a, b, b'=', b'='] => ([a, b, b'A', b'A'], 1),
        [a, b, c, b'='] => ([a, b, c, b'A'], 2),
        [a, b, c, d] => ([a, b, c, d], 3),
        _ => return None,
    };
    let bits = group_bits(symbols);
    let bytes = bits.to_be_bytes();
    let (used, unused) = bytes.get(1..)?.split_at(kept);
    if bits & INVALID != 0 || unused.iter().any(|&b| b != 0) {
        return None;
    }
    dst.get_mut(..kept)?.copy_from_slice(used);
    Some(kept)
}

/// Decodes text laid out as IMDS serves it: lines of one width that is a multiple of 4,
/// each ended by the first line's terminator (`\n` or `\r\n`) except possibly the last, with
/// padding only at the very end. `None` for any other layout or invalid text.
///
/// Lines are found by stride rather than by scanning for line breaks; a stray break inside
/// a "line" is an invalid symbol, and the caller falls back to [`decode_ignoring_whitespace`].
pub(crate) fn decode_lines(text: &[u8]) -> Option<Vec<u8>> {
    let line_len = text.iter().position(|&b| b == b'\n').unwrap_or(text.len());
    let crlf = line_len > 0 && text.get(line_len - 1) == Some(&b'\r');
    let width = if crlf { line_len - 1 } else { line_len };
    if width == 0 || width % 4 != 0 {
        return None;
    }
    let terminator: &[u8] = if crlf { b"\r\n" } else { b"\n" };
    let mut out = vec![0; text.len() / 4 * 3];
    let mut written = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let (line, next) = if rest.len() > width {
            let (line, tail) = rest.split_at(width);
            (line, tail.strip_prefix(terminator)?)
        } else {
            (rest, &[][..])
        };
        // Padding may only end the text.
        if !next.is_empty() && line.ends_with(b"=") {
            return None;
        }
        written += decode_groups(line, out.get_mut(written..)?)?;
        rest = next;
    }
    out.truncate(written);
    Some(out)
}

/// Decodes text with ASCII whitespace anywhere (any wrapping, or none). `None` if the text
/// without whitespace is not canonical base64.
pub(crate) fn decode_ignoring_whitespace(text: &[u8]) -> Option<Vec<u8>> {
    let compact: Vec<u8> = text
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    let mut out = vec![0; compact.len() / 4 * 3];
    let written = decode_groups(&compact, &mut out)?;
    out.truncate(written);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(text: &[u8]) -> Option<Vec<u8>> {
        decode_ignoring_whitespace(text)
    }

    #[test]
    fn rfc4648_vectors() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(
                decode(encoded.as_bytes()).as_deref(),
                Some(plain.as_bytes())
            );
        }
        assert_eq!(decode(b"+/+/").unwrap(), [0xfb, 0xff, 0xbf]);
    }

    #[test]
    fn non_canonical_text_is_refused() {
        for bad in [
            &b"Zg"[..],     // padding missing
            b"Zg=",         // padding short
            b"Zh==",        // unused bits set
            b"Zm9=",        // unused bits set
            b"Zg==Zm9v",    // data after padding
            b"Z===",        // too much padding
            b"====",        // padding alone
            b"Zm9v-_8=",    // URL-safe alphabet
            b"Zm9\x00",     // control byte
            b"Zm9\xc3\xa9", // non-ASCII
        ] {
            assert_eq!(decode(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn lines_are_decoded_in_place() {
        assert_eq!(decode_lines(b"QUJD\nREVG").unwrap(), b"ABCDEF");
        assert_eq!(decode_lines(b"QUJD\r\nREVG\r\nQQ==").unwrap(), b"ABCDEFA");
        assert_eq!(decode_lines(b"QUJD\nREVG\n").unwrap(), b"ABCDEF");
        assert_eq!(decode_lines(b"QUJDREVG\nQUJD").unwrap(), b"ABCDEFABC");
        assert_eq!(decode_lines(b"QQ==\nQUJD"), None, "padding inside");
        assert_eq!(
            decode_lines(b"QUJ\nDREVG"),
            None,
            "width not a multiple of 4"
        );
        assert_eq!(decode_lines(b"QUJD\nRE\nVG"), None, "short line inside");
        assert_eq!(decode_lines(b"QUJD\r\nREVG\nQUJD"), None, "mixed line ends");
        assert_eq!(decode_lines(b"QUJD\n\nREVG"), None, "empty line");
        assert_eq!(
            decode_lines(b"QUJD\nQQ==").unwrap(),
            b"ABCA",
            "padding at the end"
        );
        let long = b"QUJD\n".repeat(1100);
        assert_eq!(
            decode_lines(long.trim_ascii()).unwrap(),
            b"ABC".repeat(1100)
        );
        assert_eq!(decode(b"QUJ\nDREVG").unwrap(), b"ABCDEF");
        assert_eq!(decode(b" Q U J D \t\r\n").unwrap(), b"ABC");
    }

    /// Agrees with the `base64` crate's `STANDARD` engine (whitespace removed) on encodings
    /// of random bytes and on random corruptions of them: same bytes or both refuse.
    #[test]
    fn agrees_with_the_base64_crate() {
        use base64::Engine as _;
        let reference = |text: &[u8]| {
            let compact: Vec<u8> = text
                .iter()
                .copied()
                .filter(|b| !b.is_ascii_whitespace())
                .collect();
            base64::engine::general_purpose::STANDARD
                .decode(compact)
                .ok()
        };
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let noise = b"A/+=\n\r \x00\xff-_Zz09";
        let (mut accepted, mut refused) = (0, 0);
        for round in 0..20_000u64 {
            let len = usize::try_from(next() % 200).unwrap();
            let plain: Vec<u8> = (0..len).map(|_| next().to_le_bytes()[0]).collect();
            let encoded = base64::engine::general_purpose::STANDARD.encode(&plain);
            let mut text: Vec<u8> = encoded
                .as_bytes()
                .chunks(if round % 3 == 0 { 76 } else { 64 })
                .collect::<Vec<_>>()
                .join(&b"\n"[..]);
            if round % 2 == 1 && !text.is_empty() {
                for _ in 0..=next() % 3 {
                    let at = usize::try_from(next()).unwrap() % text.len();
                    let with = noise[usize::try_from(next()).unwrap() % noise.len()];
                    text[at] = with;
                }
            }
            let ours = decode_lines(&text).or_else(|| decode_ignoring_whitespace(&text));
            assert_eq!(
                ours,
                reference(&text),
                "{:?}",
                String::from_utf8_lossy(&text)
            );
            if ours.is_some() {
                accepted += 1;
            } else {
                refused += 1;
            }
        }
        // Both outcomes were exercised many times.
        assert!(accepted > 10_000 && refused > 3_000, "{accepted} {refused}");
    }
}
