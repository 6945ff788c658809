//! Shared harness code for the `ec2-iid` fuzz targets: the verifiers, the fixed clock, and the
//! properties each target checks beyond "does not panic".
//!
//! Every `check_*` function takes untrusted bytes and panics only when a property is violated;
//! libFuzzer reports such a panic as a crash.

use std::sync::OnceLock;

use base64::Engine as _;
use chrono::{DateTime, TimeZone as _, Utc};
use ec2_iid::{
    AllowRule, ConfigError, Error, Format, InstanceFacts, InstanceState, MAX_BLOB_LEN, PendingJoin,
    SignedInput, TokenResource, TokenSpec, TrustStore, VerifiedDocument, Verifier, check_ttl,
    match_allow_rules, parse_signed_data, verify_signature,
};

pub mod ca;
pub mod structured;

/// The generated fixture every accepting test-CA path starts from (`tests/data/gen/`).
pub const FIXTURE_DER: &[u8] = include_bytes!("../../tests/data/gen/rsa2048.der");
/// The content signed in every generated fixture.
pub const DOCUMENT_JSON: &[u8] = include_bytes!("../../tests/data/gen/document.json");
/// The RSA test CA (NOT an AWS key).
pub const TEST_CA_PEM: &[u8] = include_bytes!("../../tests/data/testca/testca.pem");
/// The DSA test CA for `/pkcs7` (NOT an AWS key).
pub const DSA_TEST_CA_PEM: &[u8] = include_bytes!("../../tests/data/testca/testca-dsa.pem");
/// The RSA test CA's serial, as the crate prints it.
pub const TEST_CA_SERIAL: &str = "E1D2C3B4A5968778";
/// The DSA test CA's serial.
pub const DSA_TEST_CA_SERIAL: &str = "D5A1C3B4A5968779";

/// EMSA-PKCS1-v1_5 for SHA-256 (RFC 8017 §9.2): `00 01 FF..FF 00 || DigestInfo || digest`,
/// `k` bytes, for the RSA targets to sign or corrupt. `k` must be at least 62.
pub fn sha256_encoded_message(k: usize, digest: &[u8; 32]) -> Vec<u8> {
    /// DER of `DigestInfo` for SHA-256 without the digest (RFC 8017 §9.2, note 1).
    const DIGEST_INFO_PREFIX: [u8; 19] = [
        0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01,
        0x05, 0x00, 0x04, 0x20,
    ];
    let mut em = vec![0xff; k];
    em[0] = 0x00;
    em[1] = 0x01;
    let t = k - 32 - DIGEST_INFO_PREFIX.len();
    em[t - 1] = 0x00;
    em[t..k - 32].copy_from_slice(&DIGEST_INFO_PREFIX);
    em[k - 32..].copy_from_slice(digest);
    em
}

/// The fixed clock: the fixtures' `pendingTime` + 1 minute, 2026-11-01T12:01:00Z.
pub fn now() -> DateTime<Utc> {
    static NOW: OnceLock<DateTime<Utc>> = OnceLock::new();
    *NOW.get_or_init(|| {
        Utc.with_ymd_and_hms(2026, 11, 1, 12, 1, 0)
            .single()
            .expect("valid time")
    })
}

/// A store that trusts only the test CAs, for `us-east-1`: the RSA one for all three formats
/// (`/pkcs7` as China signs it), the DSA one for `/pkcs7`.
pub fn test_ca_store() -> &'static TrustStore {
    static STORE: OnceLock<TrustStore> = OnceLock::new();
    STORE.get_or_init(|| {
        let region = || ["us-east-1".parse().expect("region")];
        let mut store = TrustStore::empty();
        for format in [Format::Rsa2048, Format::Pkcs7, Format::Signature] {
            store
                .add_pem(format, TEST_CA_PEM, region())
                .expect("RSA test CA");
        }
        store
            .add_pem(Format::Pkcs7, DSA_TEST_CA_PEM, region())
            .expect("DSA test CA");
        store
    })
}

/// `Verifier` over the embedded AWS certificates, `/pkcs7` and `/signature` allowed. Its one rule is bound to
/// the fixtures' account (every rule names one), so real samples of other accounts end at the
/// rules; the TTL is a century, so that real (old) samples get past the TTL too.
pub fn aws_verifier() -> &'static Verifier {
    static VERIFIER: OnceLock<Verifier> = OnceLock::new();
    VERIFIER.get_or_init(|| {
        Verifier::builder(TrustStore::aws())
            .allow(AllowRule::role(
                "arn:aws:iam::123456789012:role/fuzz".parse().expect("role"),
            ))
            .ttl(core::time::Duration::from_secs(100 * 365 * 24 * 3600))
            .allow_legacy_dsa_sha1(true)
            .allow_legacy_rsa1024(true)
            .build()
            .expect("AWS verifier")
    })
}

/// `Verifier` that trusts the test CAs for `us-east-1` (`/pkcs7` and `/signature` allowed): the fixtures' account
/// and region, the default TTL.
pub fn test_ca_verifier() -> &'static Verifier {
    static VERIFIER: OnceLock<Verifier> = OnceLock::new();
    VERIFIER.get_or_init(|| {
        let rule = AllowRule::account("123456789012".parse().expect("account"))
            .with_regions(["us-east-1".parse().expect("region")]);
        Verifier::builder(test_ca_store().clone())
            .allow(rule)
            .allow_legacy_dsa_sha1(true)
            .allow_legacy_rsa1024(true)
            .build()
            .expect("test CA verifier")
    })
}

/// The fixture, verified once with the test CA.
pub fn fixture_verified() -> &'static VerifiedDocument {
    static VERIFIED: OnceLock<VerifiedDocument> = OnceLock::new();
    VERIFIED.get_or_init(|| {
        let signed = parse_signed_data(FIXTURE_DER).expect("fixture parses");
        verify_signature(signed, test_ca_store()).expect("fixture verifies")
    })
}

/// `parse_signed_data`: no panic; text decodes exactly as the `base64` crate decodes it; on
/// success every accessor is consistent, and the base64 text of an accepted binary blob parses
/// to the same thing.
pub fn check_parse(data: &[u8]) {
    check_text_decoding(data);
    let Ok(signed) = parse_signed_data(data) else {
        return;
    };
    assert!(!signed.content_type().is_empty());
    assert!(!signed.signer_serial().is_empty());
    assert_eq!(signed.signer_issuer().first(), Some(&0x30));
    if let Some(attrs) = signed.signed_attributes() {
        assert_eq!(attrs.first(), Some(&0xA0));
    }
    let _ = signed.digest_algorithm().oid_string();
    let _ = signed.signature_algorithm().oid_string();
    let _ = signed.content_type_attribute();
    let _ = signed.message_digest();
    let _ = signed.signing_time();
    let _ = signed.algorithm_protection();
    if data.first() == Some(&0x30) && data.len() <= MAX_BLOB_LEN / 4 * 3 {
        let text = base64::engine::general_purpose::STANDARD.encode(data);
        let again = parse_signed_data(text.as_bytes()).expect("base64 of an accepted blob parses");
        assert_eq!(again.content(), signed.content());
        assert_eq!(again.signed_attributes(), signed.signed_attributes());
        assert_eq!(again.signature(), signed.signature());
        assert_eq!(again.signer_serial(), signed.signer_serial());
    }
}

/// The crate's own base64 decoder against the `base64` crate's `STANDARD` engine: text (not
/// binary, not armoured) that the reference refuses after removing whitespace is refused as
/// base64, and text it decodes parses exactly as the decoded bytes do.
fn check_text_decoding(data: &[u8]) {
    if data.first() == Some(&0x30)
        || data.len() > MAX_BLOB_LEN
        || data.trim_ascii_start().starts_with(b"-----BEGIN")
    {
        return;
    }
    let compact: Vec<u8> = data
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    if compact.is_empty() {
        return;
    }
    let ours = parse_signed_data(data);
    match base64::engine::general_purpose::STANDARD.decode(&compact) {
        Err(_) => assert!(
            matches!(ours, Err(Error::Base64)),
            "text the reference refuses: {ours:?}"
        ),
        Ok(der) if der.first() == Some(&0x30) => {
            let reference = parse_signed_data(&der);
            match (&ours, &reference) {
                (Ok(a), Ok(b)) => {
                    assert_eq!(a.content(), b.content());
                    assert_eq!(a.signature(), b.signature());
                    assert_eq!(a.signed_attributes(), b.signed_attributes());
                }
                (Err(a), Err(b)) => assert_eq!(a, b),
                _ => panic!("decoding differs: {ours:?} vs {reference:?}"),
            }
        }
        // Decoded bytes that are not a SEQUENCE cannot be SignedData.
        Ok(_) => assert!(matches!(ours, Err(Error::Malformed { .. })), "{ours:?}"),
    }
}

/// `Verifier::verify` with the AWS store and with the test CA store at the fixed clock; for
/// input with a NUL byte, also `/signature` with the bytes before it as the document and
/// those after it as the signature text.
///
/// Properties: a CMS blob is only accepted if it parses, and then with exactly the parsed
/// content; a `/signature` pair only with exactly its document bytes; the signer's region is
/// the document's; the signed JSON parses the same way unverified; with the test CAs, the only
/// acceptable content is `document.json` (nobody else has the keys); a blob that does not
/// parse is rejected with the parse error.
pub fn check_verify(data: &[u8]) {
    let parsed = parse_signed_data(data);
    let pair = data.iter().position(|&b| b == 0).map(|nul| {
        let (document, rest) = data.split_at(nul);
        (document, rest.get(1..).unwrap_or_default())
    });
    for (verifier, test_ca) in [(aws_verifier(), false), (test_ca_verifier(), true)] {
        match verifier.verify(data, now()) {
            Ok(join) => {
                let signed = parsed
                    .as_ref()
                    .expect("verify accepted a blob that parse_signed_data rejects");
                assert_eq!(join.verified().content(), signed.content());
                check_join(&join, test_ca);
            }
            Err(e) => {
                if let Err(parse_error) = &parsed {
                    assert_eq!(&e, parse_error);
                }
            }
        }
        if let Some((document, signature)) = pair {
            let input = SignedInput::Signature {
                document,
                signature,
            };
            if let Ok(join) = verifier.verify_input(input, now()) {
                assert_eq!(join.verified().content(), document);
                assert_eq!(join.verified().signer().format, Format::Signature);
                check_join(&join, test_ca);
            }
        }
    }
}

fn check_join(join: &PendingJoin<'_>, test_ca: bool) {
    let verified = join.verified();
    let doc = join.document();
    assert_eq!(verified.signer().region, doc.region);
    assert_eq!(join.rule().aws_account(), &doc.account_id);
    let mut facts = InstanceFacts::new(doc.instance_id.as_str(), InstanceState::Running);
    facts.owner_id = Some(doc.account_id.to_string());
    let outcome = join
        .check_facts(Some(&facts))
        .expect("a running instance of the account");
    assert_eq!(
        outcome.host_id(),
        format!("{}-{}", doc.account_id, doc.instance_id)
    );
    let unverified = ec2_iid::dangerous::parse_unverified_document(verified.content())
        .expect("verified content parses");
    assert_eq!(&unverified, doc);
    if test_ca {
        assert_eq!(verified.content(), DOCUMENT_JSON);
        let serial = verified.signer().serial.to_string();
        assert!(serial == TEST_CA_SERIAL || serial == DSA_TEST_CA_SERIAL);
    }
}

/// `dangerous::parse_unverified_document`: only `InvalidDocument` errors; an accepted document
/// serializes to JSON that parses back to the same document (`pendingTime` is written in whole
/// seconds, as AWS does).
pub fn check_document(data: &[u8]) {
    match ec2_iid::dangerous::parse_unverified_document(data) {
        Ok(doc) => {
            let json = serde_json::to_vec(&doc).expect("serialize document");
            let again = ec2_iid::dangerous::parse_unverified_document(&json)
                .expect("a serialized document parses");
            let mut expected = doc.clone();
            expected.pending_time = whole_seconds(doc.pending_time);
            assert_eq!(again, expected);
            let _ = doc.host_id();
            let _ = doc.region.partition();
        }
        Err(Error::InvalidDocument { reason }) => assert!(reason.chars().count() <= 200),
        Err(other) => panic!("unexpected error {other:?}"),
    }
}

fn whole_seconds(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(t.timestamp(), 0).expect("in range")
}

/// Token specs and resources from JSON and YAML (`serde_norway`): validation is idempotent and
/// survives a JSON round trip; a valid spec builds a verifier; `match_allow_rules` on the
/// verified fixture returns the first rule that matches field by field, and the verifier
/// accepts the fixture exactly when a rule matches and the TTL holds.
pub fn check_token(data: &[u8]) {
    if let Ok(text) = core::str::from_utf8(data) {
        check_go_duration(text);
    }
    if let Ok(spec) = serde_json::from_slice::<TokenSpec>(data) {
        check_spec(&spec);
    }
    if let Ok(spec) = serde_norway::from_slice::<TokenSpec>(data) {
        check_spec(&spec);
    }
    let resources = [
        serde_json::from_slice::<TokenResource>(data).ok(),
        serde_norway::from_slice::<TokenResource>(data).ok(),
    ];
    for resource in resources.into_iter().flatten() {
        match resource.validate() {
            Ok(valid) => assert_eq!(resource.spec.validate(), Ok(valid)),
            Err(e) => assert!(!e.to_string().is_empty()),
        }
        check_spec(&resource.spec);
    }
}

/// `parse_go_duration` never panics or wraps: an accepted duration fits Go's i64 nanoseconds,
/// and each `<number><unit>` term adds to the total (a sum of the terms parses to their sum).
fn check_go_duration(text: &str) {
    const GO_MAX: core::time::Duration = core::time::Duration::new(9_223_372_036, 854_775_807);
    let Ok(parsed) = ec2_iid::parse_go_duration(text) else {
        return;
    };
    assert!(parsed <= GO_MAX, "{text:?} parsed beyond Go's range");
    if let Ok(twice) = ec2_iid::parse_go_duration(&format!("{text}{text}")) {
        assert_eq!(Some(twice), parsed.checked_mul(2), "{text:?} twice");
    } else if text != "0" && !text.starts_with(['+', '-']) {
        assert!(parsed.checked_mul(2).is_none_or(|d| d > GO_MAX), "{text:?} twice refused");
    }
}

fn check_spec(spec: &TokenSpec) {
    let built = Verifier::builder(test_ca_store().clone())
        .token_spec(spec)
        .build();
    let valid = match spec.validate() {
        Ok(valid) => valid,
        Err(e) => {
            assert_eq!(built.err(), Some(e));
            return;
        }
    };
    assert_eq!(
        valid.validate().as_ref(),
        Ok(&valid),
        "validate is idempotent"
    );
    assert_eq!(valid.join_method, "ec2");
    assert!(!valid.allow.is_empty());
    assert!(!valid.aws_iid_ttl.get().is_zero());

    let json = serde_json::to_string(&valid).expect("serialize spec");
    let again: TokenSpec = serde_json::from_str(&json).expect("a serialized spec parses");
    assert_eq!(again.validate().as_ref(), Ok(&valid), "JSON round trip");

    let verified = fixture_verified();
    let doc = verified.document();
    let matched = match match_allow_rules(verified, &valid.allow) {
        Ok((index, rule)) => {
            assert_eq!(valid.allow.get(index), Some(rule));
            assert_eq!(rule.aws_account(), &doc.account_id);
            assert!(listed(rule.aws_regions(), doc.region.as_str()));
            assert!(listed(rule.aws_image_ids(), &doc.image_id));
            assert!(listed(rule.aws_instance_types(), &doc.instance_type));
            assert!(listed(
                rule.aws_availability_zones(),
                &doc.availability_zone
            ));
            let earlier = valid.allow.get(..index).unwrap_or_default();
            assert!(
                match_allow_rules(verified, earlier).is_err(),
                "first match wins"
            );
            true
        }
        Err(Error::NoMatchingRule { mismatches, .. }) => {
            assert_eq!(mismatches.len(), valid.allow.len());
            for (index, mismatch) in mismatches.iter().enumerate() {
                assert_eq!(mismatch.rule, index);
            }
            false
        }
        Err(other) => panic!("unexpected error {other:?}"),
    };

    // A valid spec builds, unless it names a region the test CA store does not cover.
    let verifier = match built {
        Ok(verifier) => verifier,
        Err(ConfigError::UncoveredRegion { region, .. }) => {
            assert!(
                valid
                    .allow
                    .iter()
                    .any(|r| r.aws_regions().contains(&region))
            );
            return;
        }
        Err(other) => panic!("a valid spec fails to build: {other:?}"),
    };
    let fresh = check_ttl(
        doc.pending_time,
        valid.aws_iid_ttl.get(),
        ec2_iid::DEFAULT_MAX_FUTURE_SKEW,
        now(),
    )
    .is_ok();
    assert_eq!(
        verifier.verify(FIXTURE_DER, now()).is_ok(),
        matched && fresh
    );
}

/// An unset rule list allows anything; a set one must name `value`.
fn listed<T: AsRef<str>>(list: &[T], value: &str) -> bool {
    list.is_empty() || list.iter().any(|entry| entry.as_ref() == value)
}

/// Writes `bytes` to the directory named by `EC2_IID_FUZZ_DUMP`, if set (file name: SHA-256).
pub fn dump(bytes: &[u8]) {
    static DIR: OnceLock<Option<std::path::PathBuf>> = OnceLock::new();
    let dir = DIR.get_or_init(|| std::env::var_os("EC2_IID_FUZZ_DUMP").map(Into::into));
    if let Some(dir) = dir {
        use sha2::Digest as _;
        let name: String = sha2::Sha256::digest(bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        std::fs::write(dir.join(name), bytes).expect("write dump file");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/data/gen/");

    #[test]
    fn go_duration_properties_hold_on_edge_cases() {
        for text in [
            "5m", "1.5h", ".5s", "1.000000001s", "2562047h", "1281023h", "1281024h", "0", "+5m",
            "1h30m", "9.99999999999999999999h", "µs", "1µs", "300ms", "5", "",
        ] {
            check_go_duration(text);
        }
    }

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(format!("{GEN}{name}")).expect("fixture")
    }

    #[test]
    fn the_test_ca_verifier_accepts_every_format_of_the_fixture() {
        for name in [
            "rsa2048.b64",
            "pkcs7.b64",
            "pkcs7-rsa.b64",
            "pkcs7-rsa-sha1.b64",
        ] {
            let join = test_ca_verifier().verify(&fixture(name), now());
            assert!(join.is_ok(), "{name}: {join:?}");
            check_verify(&fixture(name));
        }
        let pair = [DOCUMENT_JSON, b"\0", &fixture("signature.b64")].concat();
        let input = SignedInput::Signature {
            document: DOCUMENT_JSON,
            signature: &fixture("signature.b64"),
        };
        assert!(test_ca_verifier().verify_input(input, now()).is_ok());
        check_verify(&pair);
    }

    #[test]
    fn token_and_document_seeds_hold_their_properties() {
        for entry in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/corpus/token"))
            .expect("token corpus")
        {
            check_token(&std::fs::read(entry.expect("entry").path()).expect("seed"));
        }
        check_document(DOCUMENT_JSON);
        check_parse(FIXTURE_DER);
    }
}
