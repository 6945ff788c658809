//! Crafted blobs that cost the parser the most per byte, each within `MAX_BLOB_LEN` (64 KiB)
//! of binary BER. The core crate's `tests/hostile.rs` checks that the committed copies in
//! `tests/data/hostile/` (base64 of the binary blob) match [`hostile_blobs`] and how each is
//! refused or accepted; `benches/verify.rs` times them as `verify/hostile_worst`.
//!
//! Each starts from the default fixture (`BlobSpec::aws_like`, signed by the test CA), whose
//! ContentInfo, `[0]`, SignedData, encapContentInfo, `[0]` and eContent OCTET STRING have
//! indefinite lengths, and fills the rest of the 64 KiB with the costliest shape found.

use crate::fixtures::{BlobSpec, document, indefinite, position, tag, test_ca, tlv};

/// `MAX_BLOB_LEN` of the crate (the limit on the input, text or binary).
const MAX_BLOB_LEN: usize = 64 * 1024;

/// The default fixture, binary.
fn fixture() -> Vec<u8> {
    BlobSpec::aws_like(&document()).build(&test_ca())
}

/// The fixture with its eContent OCTET STRING (`24 80 04 .. <content> 00 00`) replaced by
/// `econtent`, built by `fill(room)` where `room` is what is left of `MAX_BLOB_LEN`.
fn with_econtent(fill: impl Fn(usize) -> Vec<u8>) -> Vec<u8> {
    let der = fixture();
    let start = position(
        &der,
        &[tag::CTX0, 0x80, tag::OCTET_STRING_CONSTRUCTED, 0x80],
    ) + 2;
    let content = document();
    let end = position(&der, &content) + content.len() + 2;
    let room = MAX_BLOB_LEN - (der.len() - (end - start));
    let blob = [&der[..start], &fill(room), &der[end..]].concat();
    assert!(blob.len() <= MAX_BLOB_LEN, "{}", blob.len());
    blob
}

/// `count` empty primitive OCTET STRINGs (`04 00`): the most headers per byte.
fn empty_segments(count: usize) -> Vec<u8> {
    [tag::OCTET_STRING, 0x00].repeat(count)
}

/// The blob: 64 KiB of eContent made of 16 small indefinite segments (filling a
/// 16-entry record of measured lengths) and then 14 indefinite levels nested in one another
/// around empty segments. Without a bound every uncached level walks everything below it again.
fn nested_indefinite() -> Vec<u8> {
    nested_after_cache_fill(14)
}

/// A signed fixture whose (never signed, never used) certificates field is 64 KiB of nested
/// indefinite chains: eight levels of SEQUENCE around an INTEGER, repeated. Each chain's
/// records push out the SignedData's own, so every ancestor walks the field again.
fn certificate_chains() -> Vec<u8> {
    let der = fixture();
    // The certificates field goes between encapContentInfo and signerInfos, whose SET is the
    // only definite-length SET right after the encapContentInfo's end-of-contents octets.
    let content = document();
    let encap_end = position(&der, &content) + content.len() + 2 + 2 + 2;
    let room = MAX_BLOB_LEN - der.len() - 4;
    let mut chain = tlv(tag::INTEGER, &[1]);
    for _ in 0..8 {
        chain = indefinite(tag::SEQUENCE, &[&chain]);
    }
    let chains = chain.repeat(room / chain.len());
    let certificates = indefinite(tag::CTX0, &[&chains]);
    let blob = [&der[..encap_end], &certificates, &der[encap_end..]].concat();
    assert!(blob.len() <= MAX_BLOB_LEN, "{}", blob.len());
    blob
}

/// As deep as the bounds allow: 16 small indefinite segments (filling the record of lengths)
/// and then 4 nested indefinite levels (the six around the content make 10, the most accepted)
/// around empty segments.
fn nested_within_bounds() -> Vec<u8> {
    nested_after_cache_fill(4)
}

/// 64 KiB of eContent: 16 small indefinite segments, then `levels` indefinite levels nested
/// in one another around empty segments.
fn nested_after_cache_fill(levels: usize) -> Vec<u8> {
    with_econtent(|room| {
        let cache_fill = indefinite(tag::OCTET_STRING_CONSTRUCTED, &[&[tag::OCTET_STRING, 0]]);
        let fixed = 4 + 16 * cache_fill.len() + 4 * levels;
        let mut chain = empty_segments((room - fixed) / 2);
        for _ in 0..levels {
            chain = indefinite(tag::OCTET_STRING_CONSTRUCTED, &[&chain]);
        }
        let parts: Vec<&[u8]> = std::iter::repeat_n(cache_fill.as_slice(), 16)
            .chain([chain.as_slice()])
            .collect();
        indefinite(tag::OCTET_STRING_CONSTRUCTED, &parts)
    })
}

/// Within every depth bound: one indefinite eContent OCTET STRING of empty segments, as many
/// as 64 KiB holds. Only a count of elements bounds the headers read.
fn flat_segments() -> Vec<u8> {
    with_econtent(|room| {
        indefinite(
            tag::OCTET_STRING_CONSTRUCTED,
            &[&empty_segments((room - 4) / 2)],
        )
    })
}

/// The same segments with a definite length: nothing is measured ahead, the segments are read
/// one by one while the content is joined.
fn flat_definite_segments() -> Vec<u8> {
    with_econtent(|room| {
        tlv(
            tag::OCTET_STRING_CONSTRUCTED,
            &empty_segments((room - 4) / 2),
        )
    })
}

/// A signed fixture with a definite-length certificates field of 64 KiB of junk: skipped in one
/// step, so the blob verifies. The costliest blob that is accepted.
fn definite_certificates() -> Vec<u8> {
    let der = fixture();
    let content = document();
    let encap_end = position(&der, &content) + content.len() + 2 + 2 + 2;
    let room = MAX_BLOB_LEN - der.len() - 4;
    let certificates = tlv(tag::CTX0, &vec![0xff; room]);
    let blob = [&der[..encap_end], &certificates, &der[encap_end..]].concat();
    assert!(blob.len() <= MAX_BLOB_LEN, "{}", blob.len());
    blob
}

/// Every crafted blob, by its fixture name in `tests/data/hostile/` (without `.b64`).
pub fn hostile_blobs() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("nested-indefinite", nested_indefinite()),
        ("nested-within-bounds", nested_within_bounds()),
        ("certificate-chains", certificate_chains()),
        ("flat-segments", flat_segments()),
        ("flat-definite-segments", flat_definite_segments()),
        ("definite-certificates", definite_certificates()),
    ]
}
