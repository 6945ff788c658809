//! The trust store: embedded AWS certificates, merging, key policy and conflicts.

use super::*;
use crate::error::Error;
use crate::test_utils::spki;

const TEST_CA: &[u8] = include_bytes!("../../tests/data/testca/testca.pem");
const TEST_CA_DSA: &[u8] = include_bytes!("../../tests/data/testca/testca-dsa.pem");

fn region(r: &str) -> Region {
    r.parse().unwrap()
}

fn key_of<'a>(store: &'a TrustStore, format: Format, serial: &str) -> &'a TrustedKey {
    store
        .keys()
        .find(|k| {
            k.format() == format
                && k.certificates()
                    .iter()
                    .any(|c| c.serial().to_string() == serial)
        })
        .unwrap_or_else(|| panic!("no {format} key with a certificate {serial}"))
}

#[test]
fn aws_store_has_every_region() {
    let store = TrustStore::aws();
    let count = |format| store.keys().filter(|k| k.format() == format).count();
    assert_eq!(count(Format::Rsa2048), 39);
    assert_eq!(count(Format::Pkcs7), 17);
    assert_eq!(count(Format::Signature), 21);
    assert_eq!(store.len(), 77);
    // Distinct certificates: 39 rsa2048; 17 pkcs7 (one global DSA, 15 regional, China's
    // shared one); 48 signature (67 region entries, several certificates shared).
    assert_eq!(store.certificates().count(), 39 + 17 + 48);
    for key in store.keys() {
        assert!(
            key.material().is_ok(),
            "{} key of {:?}",
            key.format(),
            key.regions()
        );
    }

    let cert = store
        .certificates()
        .find(|c| c.regions() == [region("us-west-2")] && c.format() == Format::Rsa2048)
        .unwrap();
    assert_eq!(cert.serial().to_string(), "B64BDE5AD00924CC");
    assert!(cert.not_before() < cert.not_after());
    let found = store.find_signer(
        Format::Rsa2048,
        &cert.issuer,
        &[0, 0xB6, 0x4B, 0xDE, 0x5A, 0xD0, 0x09, 0x24, 0xCC],
    );
    assert!(found.is_some_and(|(k, _)| k.covers(&region("us-west-2"))));
    assert!(
        store
            .find(Format::Rsa2048, b"other issuer", cert.serial().as_bytes())
            .is_none()
    );
    // Serials are per format: the rsa2048 certificate is not a pkcs7 signer.
    assert!(
        store
            .find(Format::Pkcs7, &cert.issuer, cert.serial().as_bytes())
            .is_none()
    );
}

#[test]
fn aws_pkcs7_keys_unite_regions() {
    let store = TrustStore::aws();
    // The global DSA certificate: one key, one certificate, 19 regions incl. GovCloud.
    let dsa = key_of(&store, Format::Pkcs7, "96BA48D9E55E1A67");
    assert_eq!(dsa.certificates().len(), 1);
    assert_eq!(dsa.regions().len(), 19);
    assert!(dsa.covers(&region("us-gov-west-1")));
    assert!(dsa.covers(&region("us-east-1")));
    assert!(!dsa.covers(&region("af-south-1")));
    assert!(matches!(dsa.material(), Ok(KeyMaterial::Dsa(_))));
    // China's /pkcs7 certificate is RSA-2048, one certificate for both regions.
    let cn = key_of(&store, Format::Pkcs7, "F7C99D70D405644F");
    assert_eq!(
        cn.regions(),
        [region("cn-north-1"), region("cn-northwest-1")]
    );
    assert!(matches!(
        cn.material(),
        Ok(KeyMaterial::Rsa { sha1: Some(_), .. })
    ));
}

#[test]
fn aws_signature_certificates_share_one_key() {
    let store = TrustStore::aws();
    // /signature: 17 regional 2024 certificates and the 2014 global one share a key.
    let global = key_of(&store, Format::Signature, "A9CBE1410330DFC5");
    assert_eq!(global.certificates().len(), 18);
    assert_eq!(global.regions().len(), 17);
    for r in [
        "us-east-1",
        "us-west-2",
        "eu-west-2",
        "ap-northeast-3",
        "sa-east-1",
    ] {
        let keys: Vec<_> = store
            .keys_for_region(Format::Signature, &region(r))
            .collect();
        assert_eq!(keys.len(), 1, "{r}");
        assert_eq!(
            keys[0].subject_public_key_info(),
            global.subject_public_key_info()
        );
    }
    // The current certificate is named for the region, not the expired global one.
    let named = global.certificate_for(&region("us-east-1")).unwrap();
    assert_eq!(
        named.serial().to_string(),
        "135CB634828253E460E2EBB8BB7DA4A06F501182"
    );
    // Key validity spans the expired 2014 certificate and the 2024 ones.
    assert_eq!(
        global.not_before().to_rfc3339(),
        "2014-06-05T14:28:02+00:00"
    );
    assert_eq!(global.not_after().to_rfc3339(), "2029-04-28T17:34:01+00:00");
}

#[test]
fn aws_superseded_certificates_count_once_and_every_region_has_a_key() {
    let store = TrustStore::aws();
    // Superseded certificates with the same key count once.
    for (r, certs) in [
        ("ap-south-2", 2),
        ("il-central-1", 2),
        ("cn-north-1", 2),
        ("us-gov-west-1", 3),
        ("ap-east-2", 1),
    ] {
        let keys: Vec<_> = store
            .keys_for_region(Format::Signature, &region(r))
            .collect();
        assert_eq!(keys.len(), 1, "{r}");
        assert_eq!(keys[0].certificates().len(), certs, "{r}");
    }
    for format in Format::ALL {
        for key in store.keys().filter(|k| k.format() == format) {
            assert!(!key.regions().is_empty());
            for r in key.regions() {
                assert!(store.keys_for_region(format, r).count() >= 1);
            }
        }
    }
    // No pkcs7 certificate is published for these regions.
    for r in ["ap-east-2", "ap-southeast-6", "eusc-de-east-1"] {
        assert_eq!(
            store.keys_for_region(Format::Pkcs7, &region(r)).count(),
            0,
            "{r}"
        );
    }
}

#[test]
fn adding_the_same_certificate_merges_regions() {
    let mut store = TrustStore::empty();
    store
        .add_pem(Format::Rsa2048, TEST_CA, [region("us-east-1")])
        .unwrap();
    store
        .add_pem(
            Format::Rsa2048,
            TEST_CA,
            [region("eu-west-1"), region("us-east-1")],
        )
        .unwrap();
    assert_eq!(store.len(), 1);
    let cert = store.certificates().next().unwrap();
    assert_eq!(cert.regions(), [region("us-east-1"), region("eu-west-1")]);
    assert_eq!(cert.serial().to_string(), "E1D2C3B4A5968778");
    let key = store.keys().next().unwrap();
    assert_eq!(key.regions(), [region("us-east-1"), region("eu-west-1")]);
    assert_eq!(
        store
            .keys_for_region(Format::Rsa2048, &region("eu-west-1"))
            .count(),
        1
    );
    assert_eq!(
        store
            .keys_for_region(Format::Signature, &region("eu-west-1"))
            .count(),
        0
    );
}

#[test]
fn with_rsa_backend_prepares_every_rsa_key() {
    use crate::crypto::backend::Backend;
    let aws = TrustStore::aws();
    let store = aws.clone().with_rsa_backend(Backend::RsaCrate).unwrap();
    assert_eq!(store.len(), aws.len());
    let (mut rsa, mut dsa) = (0, 0);
    for key in store.keys() {
        match key.material().unwrap() {
            KeyMaterial::Rsa { key, .. } => {
                assert_eq!(key.backend(), Backend::RsaCrate);
                rsa += 1;
            }
            KeyMaterial::Dsa(_) => dsa += 1,
        }
    }
    // 39 `/rsa2048`, 21 `/signature` and China's `/pkcs7` key; 16 DSA `/pkcs7` keys.
    assert_eq!((rsa, dsa), (61, 16));
}

#[test]
fn one_certificate_in_several_formats_is_several_keys() {
    let mut store = TrustStore::empty();
    for format in Format::ALL {
        store
            .add_pem(format, TEST_CA, [region("us-east-1")])
            .unwrap();
    }
    assert_eq!(store.len(), 3);
    let spki = spki(TEST_CA);
    for key in store.keys() {
        assert_eq!(key.subject_public_key_info(), spki);
    }
    for format in Format::ALL {
        assert!(store.has_format(format));
        assert!(!TrustStore::empty().has_format(format));
        let mut one = TrustStore::empty();
        one.add_pem(format, TEST_CA, [region("us-east-1")]).unwrap();
        for other in Format::ALL {
            assert_eq!(one.has_format(other), other == format);
        }
        assert_eq!(
            store.keys_for_region(format, &region("us-east-1")).count(),
            1
        );
    }
}

#[test]
fn key_policy_per_format() {
    let rsa1024 = aws::SIGNATURE[0].pem.as_bytes();
    let mut store = TrustStore::empty();
    let err = |r: Result<&mut TrustStore, ConfigError>| match r {
        Err(ConfigError::BadCertificate { reason }) => reason,
        other => panic!("{other:?}"),
    };
    let too_small = "RSA key too small for the format (rsa2048 and pkcs7 need 2048 bits)";
    assert_eq!(
        err(store.add_pem(Format::Rsa2048, rsa1024, [region("af-south-1")])),
        too_small
    );
    assert_eq!(
        err(store.add_pem(Format::Pkcs7, rsa1024, [region("af-south-1")])),
        too_small
    );
    store
        .add_pem(Format::Signature, rsa1024, [region("af-south-1")])
        .unwrap();
    for format in [Format::Rsa2048, Format::Signature] {
        assert_eq!(
            err(store.add_pem(format, TEST_CA_DSA, [region("us-east-1")])),
            "DSA keys are only trusted for the pkcs7 format"
        );
    }
    store
        .add_pem(Format::Pkcs7, TEST_CA_DSA, [region("us-east-1")])
        .unwrap();
    store
        .add_pem(Format::Pkcs7, TEST_CA, [region("us-east-1")])
        .unwrap();
    assert_eq!(store.len(), 3);
}

#[test]
fn an_embedded_key_that_fails_its_first_use_is_unusable() {
    // Embedded keys are parsed on first use; one that does not parse (none does: see
    // `aws_store_has_every_region`) must yield an error, not panic or pass. The signature
    // stage returns this error (`key.material()?`), so the document is refused.
    let mut store = TrustStore::empty();
    store
        .add_pem_with(
            Format::Rsa2048,
            TEST_CA,
            [region("us-east-1")],
            Parse::Lazily,
        )
        .unwrap();
    store.index.corrupt_first_spki();
    let key = store.keys().next().unwrap();
    assert_eq!(
        key.material().map(|_| ()),
        Err(Error::UnusableTrustedKey {
            reason: "not a DER SubjectPublicKeyInfo"
        })
    );
}

#[test]
fn bad_certificates() {
    let mut store = TrustStore::empty();
    let err = |r: Result<&mut TrustStore, ConfigError>| match r {
        Err(ConfigError::BadCertificate { reason }) => reason,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        err(store.add_pem(Format::Rsa2048, b"hello", [region("us-east-1")])),
        "no CERTIFICATE in PEM text"
    );
    assert_eq!(
        err(store.add_der(Format::Rsa2048, b"\x30\x00", [region("us-east-1")])),
        "not a DER X.509 certificate"
    );
    assert_eq!(
        err(store.add_pem(Format::Rsa2048, TEST_CA, [])),
        "a certificate must be trusted for at least one region"
    );
    assert!(store.is_empty());
}

#[test]
fn conflicting_certificate_with_same_serial() {
    let aws_pem = aws::RSA2048[0].pem.as_bytes();
    let mut store = TrustStore::empty();
    store
        .add_pem(Format::Rsa2048, aws_pem, [region("us-east-1")])
        .unwrap();
    // Another key under the same issuer and serial must not be merged silently.
    store.index.corrupt_first_spki();
    let serial = store.certificates().next().unwrap().serial().clone();
    let again = store.add_pem(Format::Rsa2048, aws_pem, [region("us-east-1")]);
    assert_eq!(
        again.map(|_| ()),
        Err(ConfigError::ConflictingCertificate { serial })
    );
}
