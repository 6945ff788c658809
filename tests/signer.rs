//! Which certificate signed a document and when: the trusted certificate's public view, and the
//! `signingTime` attribute against that certificate's validity, at its exact edges.
#![cfg(test)] // clippy.toml says why

use chrono::{DateTime, TimeZone as _, Utc};
use ec2_iid::dangerous::parse_signed_data;
use ec2_iid::internal::verify_signature;
use ec2_iid::{Error, Format, TrustStore, VerifiedDocument};
use ec2_iid_test_support::fixtures::{self, BlobSpec, attribute, der_oid, oid, tag, test_ca, tlv};

fn store() -> TrustStore {
    let mut store = TrustStore::empty();
    store
        .add_pem(
            Format::Rsa2048,
            test_ca().cert_pem.as_bytes(),
            ["us-east-1".parse().unwrap(), "eu-west-1".parse().unwrap()],
        )
        .unwrap();
    store
}

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
}

fn verify(spec: &BlobSpec) -> Result<VerifiedDocument, Error> {
    verify_signature(parse_signed_data(&spec.build(&test_ca()))?, &store())
}

/// The fixture with `signingTime` as UTCTime text.
fn with_utc_time(text: &str) -> BlobSpec {
    BlobSpec {
        signing_time: Some(text.into()),
        ..BlobSpec::aws_like(&fixtures::document())
    }
}

/// The fixture with `signingTime` as GeneralizedTime text (needed past 2049).
fn with_generalized_time(text: &str) -> BlobSpec {
    let time = attribute(
        &der_oid(oid::SIGNING_TIME),
        &tlv(tag::GENERALIZED_TIME, text.as_bytes()),
    );
    BlobSpec {
        signing_time: None,
        extra_attrs: vec![time],
        ..BlobSpec::aws_like(&fixtures::document())
    }
}

#[test]
fn trusted_certificate_view() {
    let store = store();
    assert_eq!(store.len(), 1);
    assert!(!store.is_empty());
    let cert = store.certificates().next().unwrap();
    assert_eq!(cert.format(), Format::Rsa2048);
    assert_eq!(cert.format().as_str(), "rsa2048");
    assert_eq!(cert.format().to_string(), "rsa2048");
    // Big-endian, without the INTEGER's leading zero byte.
    assert_eq!(
        cert.serial().as_bytes(),
        [0xE1, 0xD2, 0xC3, 0xB4, 0xA5, 0x96, 0x87, 0x78]
    );
    assert_eq!(test_ca().serial.first(), Some(&0x00));
    assert_eq!(cert.serial().to_string(), "E1D2C3B4A5968778");
    let regions: Vec<&str> = cert.regions().iter().map(|r| r.as_str()).collect();
    assert_eq!(regions, ["us-east-1", "eu-west-1"]);
    assert_eq!(cert.not_before(), utc(2010, 1, 1, 0, 0, 0));
    assert_eq!(cert.not_after(), utc(2195, 1, 1, 0, 0, 0));
    let found = store
        .find(Format::Rsa2048, &test_ca().issuer_der, &test_ca().serial)
        .unwrap();
    assert_eq!(found.serial(), cert.serial());
    assert!(TrustStore::empty().is_empty());
    assert_eq!(TrustStore::empty().len(), 0);
}

#[test]
fn signing_time_is_reported() {
    let verified = verify(&BlobSpec::aws_like(&fixtures::document())).unwrap();
    assert_eq!(
        verified.signer().signing_time,
        Some(utc(2026, 11, 1, 12, 0, 5))
    );
    let without = BlobSpec {
        signing_time: None,
        ..BlobSpec::aws_like(&fixtures::document())
    };
    assert_eq!(verify(&without).unwrap().signer().signing_time, None);
}

#[test]
fn signing_time_at_the_start_of_validity() {
    let at_start = verify(&with_utc_time("100101000000Z")).unwrap();
    assert_eq!(
        at_start.signer().signing_time,
        Some(utc(2010, 1, 1, 0, 0, 0))
    );
    assert_eq!(
        verify(&with_utc_time("091231235959Z")).unwrap_err(),
        Error::SigningTimeOutsideValidity {
            signing_time: utc(2009, 12, 31, 23, 59, 59)
        }
    );
}

#[test]
fn signing_time_at_the_end_of_validity() {
    let at_end = verify(&with_generalized_time("21950101000000Z")).unwrap();
    assert_eq!(at_end.signer().signing_time, Some(utc(2195, 1, 1, 0, 0, 0)));
    assert_eq!(
        verify(&with_generalized_time("21950101000001Z")).unwrap_err(),
        Error::SigningTimeOutsideValidity {
            signing_time: utc(2195, 1, 1, 0, 0, 1)
        }
    );
}

#[test]
fn utc_time_century_rule() {
    // RFC 5280: YY < 50 is 20YY, YY >= 50 is 19YY.
    let late = verify(&with_utc_time("491231235959Z")).unwrap();
    assert_eq!(
        late.signer().signing_time,
        Some(utc(2049, 12, 31, 23, 59, 59))
    );
    assert_eq!(
        verify(&with_utc_time("500101000000Z")).unwrap_err(),
        Error::SigningTimeOutsideValidity {
            signing_time: utc(1950, 1, 1, 0, 0, 0)
        }
    );
}
