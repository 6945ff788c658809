//! AWS's published certificates for instance identity signatures, embedded in the crate.
//!
//! These are public facts: AWS lists them per region on its "Verify the instance identity
//! document" pages. The PEM files under `src/trust/certs/` were checked byte for byte against AWS's
//! documentation and the projects that regenerate from it (see `src/trust/certs/README.md`).
//! [`TrustStore::aws`](crate::TrustStore::aws) trusts all of them, each list for its format:
//! [`RSA2048`], [`PKCS7`] and [`SIGNATURE`].

use crate::ids::Partition;

/// One embedded AWS certificate and a region it is published for.
///
/// A certificate AWS publishes for several regions (e.g. `/pkcs7`'s global DSA certificate)
/// has one entry per region.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub struct AwsCertificate {
    /// The region AWS publishes the certificate for, e.g. `us-east-1`.
    pub region: &'static str,
    /// The certificate, PEM.
    pub pem: &'static str,
}

impl AwsCertificate {
    const fn new(region: &'static str, pem: &'static str) -> Self {
        Self { region, pem }
    }

    /// The partition of the certificate's region.
    ///
    /// ```
    /// let cn = ec2_iid::trust::aws::RSA2048.iter().find(|c| c.region == "cn-north-1").unwrap();
    /// assert_eq!(cn.partition(), ec2_iid::ids::Partition::AwsCn);
    /// ```
    #[must_use]
    pub fn partition(&self) -> Partition {
        self.region
            .parse::<crate::ids::Region>()
            .map_or(Partition::Aws, |r| r.partition())
    }
}

/// Certificates for `/latest/dynamic/instance-identity/rsa2048` (SHA-256, RSA-2048): one per
/// region, each region with its own key. 39 regions, including the six Teleport lacks
/// (ap-east-2, ap-southeast-5/6/7, mx-central-1, eusc-de-east-1).
pub const RSA2048: &[AwsCertificate] = &[
    AwsCertificate::new("af-south-1", include_str!("certs/rsa2048/af-south-1.pem")),
    AwsCertificate::new("ap-east-1", include_str!("certs/rsa2048/ap-east-1.pem")),
    AwsCertificate::new("ap-east-2", include_str!("certs/rsa2048/ap-east-2.pem")),
    AwsCertificate::new(
        "ap-northeast-1",
        include_str!("certs/rsa2048/ap-northeast-1.pem"),
    ),
    AwsCertificate::new(
        "ap-northeast-2",
        include_str!("certs/rsa2048/ap-northeast-2.pem"),
    ),
    AwsCertificate::new(
        "ap-northeast-3",
        include_str!("certs/rsa2048/ap-northeast-3.pem"),
    ),
    AwsCertificate::new("ap-south-1", include_str!("certs/rsa2048/ap-south-1.pem")),
    AwsCertificate::new("ap-south-2", include_str!("certs/rsa2048/ap-south-2.pem")),
    AwsCertificate::new(
        "ap-southeast-1",
        include_str!("certs/rsa2048/ap-southeast-1.pem"),
    ),
    AwsCertificate::new(
        "ap-southeast-2",
        include_str!("certs/rsa2048/ap-southeast-2.pem"),
    ),
    AwsCertificate::new(
        "ap-southeast-3",
        include_str!("certs/rsa2048/ap-southeast-3.pem"),
    ),
    AwsCertificate::new(
        "ap-southeast-4",
        include_str!("certs/rsa2048/ap-southeast-4.pem"),
    ),
    AwsCertificate::new(
        "ap-southeast-5",
        include_str!("certs/rsa2048/ap-southeast-5.pem"),
    ),
    AwsCertificate::new(
        "ap-southeast-6",
        include_str!("certs/rsa2048/ap-southeast-6.pem"),
    ),
    AwsCertificate::new(
        "ap-southeast-7",
        include_str!("certs/rsa2048/ap-southeast-7.pem"),
    ),
    AwsCertificate::new(
        "ca-central-1",
        include_str!("certs/rsa2048/ca-central-1.pem"),
    ),
    AwsCertificate::new("ca-west-1", include_str!("certs/rsa2048/ca-west-1.pem")),
    AwsCertificate::new("cn-north-1", include_str!("certs/rsa2048/cn-north-1.pem")),
    AwsCertificate::new(
        "cn-northwest-1",
        include_str!("certs/rsa2048/cn-northwest-1.pem"),
    ),
    AwsCertificate::new(
        "eu-central-1",
        include_str!("certs/rsa2048/eu-central-1.pem"),
    ),
    AwsCertificate::new(
        "eu-central-2",
        include_str!("certs/rsa2048/eu-central-2.pem"),
    ),
    AwsCertificate::new("eu-north-1", include_str!("certs/rsa2048/eu-north-1.pem")),
    AwsCertificate::new("eu-south-1", include_str!("certs/rsa2048/eu-south-1.pem")),
    AwsCertificate::new("eu-south-2", include_str!("certs/rsa2048/eu-south-2.pem")),
    AwsCertificate::new("eu-west-1", include_str!("certs/rsa2048/eu-west-1.pem")),
    AwsCertificate::new("eu-west-2", include_str!("certs/rsa2048/eu-west-2.pem")),
    AwsCertificate::new("eu-west-3", include_str!("certs/rsa2048/eu-west-3.pem")),
    AwsCertificate::new(
        "eusc-de-east-1",
        include_str!("certs/rsa2048/eusc-de-east-1.pem"),
    ),
    AwsCertificate::new(
        "il-central-1",
        include_str!("certs/rsa2048/il-central-1.pem"),
    ),
    AwsCertificate::new(
        "me-central-1",
        include_str!("certs/rsa2048/me-central-1.pem"),
    ),
    AwsCertificate::new("me-south-1", include_str!("certs/rsa2048/me-south-1.pem")),
    AwsCertificate::new(
        "mx-central-1",
        include_str!("certs/rsa2048/mx-central-1.pem"),
    ),
    AwsCertificate::new("sa-east-1", include_str!("certs/rsa2048/sa-east-1.pem")),
    AwsCertificate::new("us-east-1", include_str!("certs/rsa2048/us-east-1.pem")),
    AwsCertificate::new("us-east-2", include_str!("certs/rsa2048/us-east-2.pem")),
    AwsCertificate::new(
        "us-gov-east-1",
        include_str!("certs/rsa2048/us-gov-east-1.pem"),
    ),
    AwsCertificate::new(
        "us-gov-west-1",
        include_str!("certs/rsa2048/us-gov-west-1.pem"),
    ),
    AwsCertificate::new("us-west-1", include_str!("certs/rsa2048/us-west-1.pem")),
    AwsCertificate::new("us-west-2", include_str!("certs/rsa2048/us-west-2.pem")),
];

/// The 2012 DSA certificate (serial 96BA48D9E55E1A67) AWS lists for `/pkcs7` in every region
/// launched before 2019, GovCloud included.
const DSA_GLOBAL: &str = include_str!("certs/pkcs7/dsa-global.pem");
/// The single `/signature` certificate (`CN=ec2.amazonaws.com`, serial A9CBE1410330DFC5) AWS
/// used until 2024 for the regions launched before 2019 (not China, not GovCloud); expired
/// 2024-06-05. Its key is the one the 2024 per-region certificates of those regions carry.
const SIGNATURE_GLOBAL_2014: &str = include_str!("certs/signature/global-2014-expired.pem");
/// China's `/signature` certificate of 2013 (expired 2023); same key as the 2023 ones.
const SIGNATURE_CN_2013: &str = include_str!("certs/signature/cn-2013-expired.pem");
/// GovCloud's `/signature` certificate of 2021 (expired 2024); same key as the 2024 ones.
const SIGNATURE_US_GOV_2021: &str = include_str!("certs/signature/us-gov-2021-expired.pem");

/// Certificates for `/latest/dynamic/instance-identity/pkcs7` (CMS SignedData, DSA-1024 with
/// SHA-1; RSA-2048 in China), one entry per region and certificate: 36 regions.
///
/// `dsa-global.pem` serves the 19 regions launched before 2019, GovCloud included; the opt-in
/// regions have their own DSA keys; China's entry is an RSA-2048 certificate. AWS publishes no
/// `/pkcs7` certificate for ap-east-2, ap-southeast-6 and eusc-de-east-1. The RSA-1024 "EC2 AMI
/// Authority" certificate older documentation listed for GovCloud is not included: it expired in
/// 2021, AWS now lists the DSA certificate there, and `/pkcs7` keys must be DSA or RSA of at
/// least 2048 bits.
///
/// Verifying this format needs an explicit opt-in:
/// [`VerifyOptions::allow_legacy_dsa_sha1`](crate::VerifyOptions::allow_legacy_dsa_sha1).
pub const PKCS7: &[AwsCertificate] = &[
    AwsCertificate::new("af-south-1", include_str!("certs/pkcs7/dsa-af-south-1.pem")),
    AwsCertificate::new("ap-east-1", include_str!("certs/pkcs7/dsa-ap-east-1.pem")),
    AwsCertificate::new("ap-northeast-1", DSA_GLOBAL),
    AwsCertificate::new("ap-northeast-2", DSA_GLOBAL),
    AwsCertificate::new("ap-northeast-3", DSA_GLOBAL),
    AwsCertificate::new("ap-south-1", DSA_GLOBAL),
    AwsCertificate::new("ap-south-2", include_str!("certs/pkcs7/dsa-ap-south-2.pem")),
    AwsCertificate::new("ap-southeast-1", DSA_GLOBAL),
    AwsCertificate::new("ap-southeast-2", DSA_GLOBAL),
    AwsCertificate::new(
        "ap-southeast-3",
        include_str!("certs/pkcs7/dsa-ap-southeast-3.pem"),
    ),
    AwsCertificate::new(
        "ap-southeast-4",
        include_str!("certs/pkcs7/dsa-ap-southeast-4.pem"),
    ),
    AwsCertificate::new(
        "ap-southeast-5",
        include_str!("certs/pkcs7/dsa-ap-southeast-5.pem"),
    ),
    AwsCertificate::new(
        "ap-southeast-7",
        include_str!("certs/pkcs7/dsa-ap-southeast-7.pem"),
    ),
    AwsCertificate::new("ca-central-1", DSA_GLOBAL),
    AwsCertificate::new("ca-west-1", include_str!("certs/pkcs7/dsa-ca-west-1.pem")),
    AwsCertificate::new("cn-north-1", include_str!("certs/pkcs7/rsa-cn-north-1.pem")),
    AwsCertificate::new(
        "cn-northwest-1",
        include_str!("certs/pkcs7/rsa-cn-northwest-1.pem"),
    ),
    AwsCertificate::new("eu-central-1", DSA_GLOBAL),
    AwsCertificate::new(
        "eu-central-2",
        include_str!("certs/pkcs7/dsa-eu-central-2.pem"),
    ),
    AwsCertificate::new("eu-north-1", DSA_GLOBAL),
    AwsCertificate::new("eu-south-1", include_str!("certs/pkcs7/dsa-eu-south-1.pem")),
    AwsCertificate::new("eu-south-2", include_str!("certs/pkcs7/dsa-eu-south-2.pem")),
    AwsCertificate::new("eu-west-1", DSA_GLOBAL),
    AwsCertificate::new("eu-west-2", DSA_GLOBAL),
    AwsCertificate::new("eu-west-3", DSA_GLOBAL),
    AwsCertificate::new(
        "il-central-1",
        include_str!("certs/pkcs7/dsa-il-central-1.pem"),
    ),
    AwsCertificate::new(
        "me-central-1",
        include_str!("certs/pkcs7/dsa-me-central-1.pem"),
    ),
    AwsCertificate::new("me-south-1", include_str!("certs/pkcs7/dsa-me-south-1.pem")),
    AwsCertificate::new(
        "mx-central-1",
        include_str!("certs/pkcs7/dsa-mx-central-1.pem"),
    ),
    AwsCertificate::new("sa-east-1", DSA_GLOBAL),
    AwsCertificate::new("us-east-1", DSA_GLOBAL),
    AwsCertificate::new("us-east-2", DSA_GLOBAL),
    AwsCertificate::new("us-gov-east-1", DSA_GLOBAL),
    AwsCertificate::new("us-gov-west-1", DSA_GLOBAL),
    AwsCertificate::new("us-west-1", DSA_GLOBAL),
    AwsCertificate::new("us-west-2", DSA_GLOBAL),
];

/// Certificates for `/latest/dynamic/instance-identity/signature` (RSASSA-PKCS1-v1_5 with
/// SHA-256 over the `/document` bytes, RSA-1024), one entry per region and certificate: the
/// current one, then those it superseded.
///
/// AWS re-issues these certificates without changing the key: the 2024 certificates of the 17
/// regions launched before 2019 carry the key of the 2014 global certificate, which is listed
/// for each of them; superseded opt-in region, China and GovCloud certificates carry their
/// successors' keys. A [`TrustStore`](crate::TrustStore) keeps each key once, for the union of
/// its regions.
///
/// Verifying this format needs an explicit opt-in:
/// [`VerifyOptions::allow_legacy_rsa1024`](crate::VerifyOptions::allow_legacy_rsa1024).
pub const SIGNATURE: &[AwsCertificate] = &[
    AwsCertificate::new("af-south-1", include_str!("certs/signature/af-south-1.pem")),
    AwsCertificate::new("ap-east-1", include_str!("certs/signature/ap-east-1.pem")),
    AwsCertificate::new("ap-east-2", include_str!("certs/signature/ap-east-2.pem")),
    AwsCertificate::new(
        "ap-northeast-1",
        include_str!("certs/signature/ap-northeast-1.pem"),
    ),
    AwsCertificate::new("ap-northeast-1", SIGNATURE_GLOBAL_2014),
    AwsCertificate::new(
        "ap-northeast-2",
        include_str!("certs/signature/ap-northeast-2.pem"),
    ),
    AwsCertificate::new("ap-northeast-2", SIGNATURE_GLOBAL_2014),
    AwsCertificate::new(
        "ap-northeast-3",
        include_str!("certs/signature/ap-northeast-3.pem"),
    ),
    AwsCertificate::new("ap-northeast-3", SIGNATURE_GLOBAL_2014),
    AwsCertificate::new("ap-south-1", include_str!("certs/signature/ap-south-1.pem")),
    AwsCertificate::new("ap-south-1", SIGNATURE_GLOBAL_2014),
    AwsCertificate::new("ap-south-2", include_str!("certs/signature/ap-south-2.pem")),
    AwsCertificate::new(
        "ap-south-2",
        include_str!("certs/signature/ap-south-2.superseded-notBefore20210420.pem"),
    ),
    AwsCertificate::new(
        "ap-southeast-1",
        include_str!("certs/signature/ap-southeast-1.pem"),
    ),
    AwsCertificate::new("ap-southeast-1", SIGNATURE_GLOBAL_2014),
    AwsCertificate::new(
        "ap-southeast-2",
        include_str!("certs/signature/ap-southeast-2.pem"),
    ),
    AwsCertificate::new("ap-southeast-2", SIGNATURE_GLOBAL_2014),
    AwsCertificate::new(
        "ap-southeast-3",
        include_str!("certs/signature/ap-southeast-3.pem"),
    ),
    AwsCertificate::new(
        "ap-southeast-3",
        include_str!("certs/signature/ap-southeast-3.superseded-notBefore20210106.pem"),
    ),
    AwsCertificate::new(
        "ap-southeast-4",
        include_str!("certs/signature/ap-southeast-4.pem"),
    ),
    AwsCertificate::new(
        "ap-southeast-4",
        include_str!("certs/signature/ap-southeast-4.superseded-notBefore20210414.pem"),
    ),
    AwsCertificate::new(
        "ap-southeast-5",
        include_str!("certs/signature/ap-southeast-5.pem"),
    ),
    AwsCertificate::new(
        "ap-southeast-6",
        include_str!("certs/signature/ap-southeast-6.pem"),
    ),
    AwsCertificate::new(
        "ap-southeast-7",
        include_str!("certs/signature/ap-southeast-7.pem"),
    ),
    AwsCertificate::new(
        "ca-central-1",
        include_str!("certs/signature/ca-central-1.pem"),
    ),
    AwsCertificate::new("ca-central-1", SIGNATURE_GLOBAL_2014),
    AwsCertificate::new("ca-west-1", include_str!("certs/signature/ca-west-1.pem")),
    AwsCertificate::new(
        "ca-west-1",
        include_str!("certs/signature/ca-west-1.superseded-notBefore20221018.pem"),
    ),
    AwsCertificate::new("cn-north-1", include_str!("certs/signature/cn-north-1.pem")),
    AwsCertificate::new("cn-north-1", SIGNATURE_CN_2013),
    AwsCertificate::new(
        "cn-northwest-1",
        include_str!("certs/signature/cn-northwest-1.pem"),
    ),
    AwsCertificate::new("cn-northwest-1", SIGNATURE_CN_2013),
    AwsCertificate::new(
        "eu-central-1",
        include_str!("certs/signature/eu-central-1.pem"),
    ),
    AwsCertificate::new("eu-central-1", SIGNATURE_GLOBAL_2014),
    AwsCertificate::new(
        "eu-central-2",
        include_str!("certs/signature/eu-central-2.pem"),
    ),
    AwsCertificate::new(
        "eu-central-2",
        include_str!("certs/signature/eu-central-2.superseded-notBefore20210414.pem"),
    ),
    AwsCertificate::new("eu-north-1", include_str!("certs/signature/eu-north-1.pem")),
    AwsCertificate::new("eu-north-1", SIGNATURE_GLOBAL_2014),
    AwsCertificate::new("eu-south-1", include_str!("certs/signature/eu-south-1.pem")),
    AwsCertificate::new("eu-south-2", include_str!("certs/signature/eu-south-2.pem")),
    AwsCertificate::new(
        "eu-south-2",
        include_str!("certs/signature/eu-south-2.superseded-notBefore20210420.pem"),
    ),
    AwsCertificate::new("eu-west-1", include_str!("certs/signature/eu-west-1.pem")),
    AwsCertificate::new("eu-west-1", SIGNATURE_GLOBAL_2014),
    AwsCertificate::new("eu-west-2", include_str!("certs/signature/eu-west-2.pem")),
    AwsCertificate::new("eu-west-2", SIGNATURE_GLOBAL_2014),
    AwsCertificate::new("eu-west-3", include_str!("certs/signature/eu-west-3.pem")),
    AwsCertificate::new("eu-west-3", SIGNATURE_GLOBAL_2014),
    AwsCertificate::new(
        "eusc-de-east-1",
        include_str!("certs/signature/eusc-de-east-1.pem"),
    ),
    AwsCertificate::new(
        "il-central-1",
        include_str!("certs/signature/il-central-1.pem"),
    ),
    AwsCertificate::new(
        "il-central-1",
        include_str!("certs/signature/il-central-1.superseded-notBefore20211111.pem"),
    ),
    AwsCertificate::new(
        "me-central-1",
        include_str!("certs/signature/me-central-1.pem"),
    ),
    AwsCertificate::new("me-south-1", include_str!("certs/signature/me-south-1.pem")),
    AwsCertificate::new(
        "mx-central-1",
        include_str!("certs/signature/mx-central-1.pem"),
    ),
    AwsCertificate::new("sa-east-1", include_str!("certs/signature/sa-east-1.pem")),
    AwsCertificate::new("sa-east-1", SIGNATURE_GLOBAL_2014),
    AwsCertificate::new("us-east-1", include_str!("certs/signature/us-east-1.pem")),
    AwsCertificate::new("us-east-1", SIGNATURE_GLOBAL_2014),
    AwsCertificate::new("us-east-2", include_str!("certs/signature/us-east-2.pem")),
    AwsCertificate::new("us-east-2", SIGNATURE_GLOBAL_2014),
    AwsCertificate::new(
        "us-gov-east-1",
        include_str!("certs/signature/us-gov-east-1.pem"),
    ),
    AwsCertificate::new("us-gov-east-1", SIGNATURE_US_GOV_2021),
    AwsCertificate::new(
        "us-gov-west-1",
        include_str!("certs/signature/us-gov-west-1.pem"),
    ),
    AwsCertificate::new("us-gov-west-1", SIGNATURE_US_GOV_2021),
    AwsCertificate::new("us-west-1", include_str!("certs/signature/us-west-1.pem")),
    AwsCertificate::new("us-west-1", SIGNATURE_GLOBAL_2014),
    AwsCertificate::new("us-west-2", include_str!("certs/signature/us-west-2.pem")),
    AwsCertificate::new("us-west-2", SIGNATURE_GLOBAL_2014),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_utils::spki;

    #[test]
    fn every_region_once() {
        assert_eq!(RSA2048.len(), 39);
        let mut regions: Vec<_> = RSA2048.iter().map(|c| c.region).collect();
        regions.dedup();
        assert_eq!(regions.len(), 39);
        for cert in RSA2048.iter().chain(PKCS7).chain(SIGNATURE) {
            assert!(
                cert.region.parse::<crate::ids::Region>().is_ok(),
                "{}",
                cert.region
            );
            assert!(cert.pem.starts_with("-----BEGIN CERTIFICATE-----"));
        }
        let partitions: Vec<_> = RSA2048.iter().map(AwsCertificate::partition).collect();
        assert_eq!(
            partitions
                .iter()
                .filter(|p| **p == Partition::AwsCn)
                .count(),
            2
        );
        assert_eq!(
            partitions
                .iter()
                .filter(|p| **p == Partition::AwsUsGov)
                .count(),
            2
        );
        assert_eq!(
            partitions
                .iter()
                .filter(|p| **p == Partition::AwsEusc)
                .count(),
            1
        );
    }

    #[test]
    fn pkcs7_regions() {
        assert_eq!(PKCS7.len(), 36);
        let mut regions: Vec<_> = PKCS7.iter().map(|c| c.region).collect();
        regions.dedup();
        assert_eq!(regions.len(), 36, "one pkcs7 certificate per region");
        let global: Vec<_> = PKCS7
            .iter()
            .filter(|c| c.pem == DSA_GLOBAL)
            .map(|c| c.region)
            .collect();
        assert_eq!(global.len(), 19);
        assert!(global.contains(&"us-gov-west-1") && global.contains(&"us-east-1"));
        // Every region with an RSA-2048 certificate but three has a pkcs7 one.
        let missing: Vec<_> = RSA2048
            .iter()
            .map(|c| c.region)
            .filter(|r| !PKCS7.iter().any(|c| c.region == *r))
            .collect();
        assert_eq!(missing, ["ap-east-2", "ap-southeast-6", "eusc-de-east-1"]);
    }

    #[test]
    fn signature_certificates_of_a_region_share_its_key() {
        assert_eq!(SIGNATURE.len(), 67);
        let global_key = spki(SIGNATURE_GLOBAL_2014);
        for region in RSA2048.iter().map(|c| c.region) {
            let certs: Vec<_> = SIGNATURE.iter().filter(|c| c.region == region).collect();
            assert!(!certs.is_empty(), "{region}");
            // The first entry is the current certificate; the others carry its key.
            let current = spki(certs[0].pem);
            for cert in &certs {
                assert_eq!(spki(cert.pem), current, "{region}");
            }
            // The 2014 global certificate is listed exactly for the regions with its key.
            assert_eq!(
                certs.iter().any(|c| c.pem == SIGNATURE_GLOBAL_2014),
                current == global_key,
                "{region}"
            );
        }
        assert_eq!(
            SIGNATURE
                .iter()
                .filter(|c| c.pem == SIGNATURE_GLOBAL_2014)
                .count(),
            17
        );
    }
}
