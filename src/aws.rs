//! AWS's published certificates for instance identity signatures, embedded in the crate.
//!
//! These are public facts: AWS lists them per region on its "Verify the instance identity
//! document" pages. The PEM files under `src/certs/` were checked byte for byte against AWS's
//! documentation and the projects that regenerate from it (see `src/certs/README.md`).
//! [`TrustStore::aws`](crate::TrustStore::aws) trusts all of them.

use crate::document::Partition;

/// One embedded AWS certificate and the region it is published for.
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
    /// let cn = ec2_iid::aws::RSA2048.iter().find(|c| c.region == "cn-north-1").unwrap();
    /// assert_eq!(cn.partition(), ec2_iid::Partition::AwsCn);
    /// ```
    #[must_use]
    pub fn partition(&self) -> Partition {
        self.region
            .parse::<crate::Region>()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_region_once() {
        assert_eq!(RSA2048.len(), 39);
        let mut regions: Vec<_> = RSA2048.iter().map(|c| c.region).collect();
        regions.dedup();
        assert_eq!(regions.len(), 39);
        for cert in RSA2048 {
            assert!(
                cert.region.parse::<crate::Region>().is_ok(),
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
}
