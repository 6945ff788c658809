//! The instance identity document: the JSON that AWS signs, parsed once into checked types.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::Error;
use crate::ids::{AccountId, InstanceId, Region};

/// An instance identity document, as AWS emits it (all 15 fields of `version` `2017-09-30`).
///
/// It is only ever parsed from content bytes whose signature was verified (see
/// [`VerifiedDocument`](crate::VerifiedDocument)), or explicitly through
/// [`dangerous::parse_unverified_document`](crate::dangerous::parse_unverified_document).
/// Unknown keys are tolerated (AWS may add fields); a known key given twice is an error.
#[non_exhaustive]
#[derive(Clone, Debug, Eq, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IdentityDocument {
    /// The AWS account that owns the instance.
    pub account_id: AccountId,
    /// CPU architecture, e.g. `x86_64` or `arm64`.
    pub architecture: String,
    /// Availability zone, e.g. `us-west-2b`.
    pub availability_zone: String,
    /// Billing product codes, or `null`.
    #[serde(default)]
    pub billing_products: Option<Vec<String>>,
    /// DevPay product codes (deprecated by AWS), or `null`.
    #[serde(default)]
    pub devpay_product_codes: Option<Vec<String>>,
    /// Marketplace product codes, or `null`; absent in `version` `2010-08-31` documents.
    #[serde(default)]
    pub marketplace_product_codes: Option<Vec<String>>,
    /// The AMI the instance was launched from.
    pub image_id: String,
    /// The instance id.
    pub instance_id: InstanceId,
    /// The instance type, e.g. `t3.micro`.
    pub instance_type: String,
    /// Kernel id for paravirtual instances, usually `null`.
    #[serde(default)]
    pub kernel_id: Option<String>,
    /// When the instance was last launched or started (not changed by a reboot).
    #[serde(with = "aws_time")]
    pub pending_time: DateTime<Utc>,
    /// The primary private IPv4 address.
    pub private_ip: String,
    /// Ramdisk id for paravirtual instances, usually `null`.
    #[serde(default)]
    pub ramdisk_id: Option<String>,
    /// The region the instance runs in.
    pub region: Region,
    /// The document schema version, e.g. `2017-09-30`.
    pub version: String,
}

impl IdentityDocument {
    /// Parses document JSON. Used by the crate only on verified bytes.
    pub(crate) fn from_json(content: &[u8]) -> Result<Self, Error> {
        serde_json::from_str(utf8(content)?).map_err(|e| Error::InvalidDocument {
            reason: json_reason(&e),
        })
    }

    /// Reads only the `region` of document JSON **before** its signature is verified: a
    /// `/signature` document names the region whose key must verify it. The same JSON rules as
    /// [`IdentityDocument::from_json`] apply to the field (a repeated `region` is an error), so
    /// the region read here is the one the verified document has.
    pub(crate) fn unverified_region(content: &[u8]) -> Result<Region, Error> {
        #[derive(Deserialize)]
        struct RegionOnly {
            region: Region,
        }
        serde_json::from_str::<RegionOnly>(utf8(content)?)
            .map(|doc| doc.region)
            .map_err(|e| Error::InvalidDocument {
                reason: json_reason(&e),
            })
    }

    /// The host id Teleport gives an EC2 node: `<accountId>-<instanceId>`.
    ///
    /// ```
    /// # let doc = ec2_iid::dangerous::parse_unverified_document(
    /// #     include_bytes!("../../tests/data/gen/document.json")).unwrap();
    /// assert_eq!(doc.host_id(), format!("{}-{}", doc.account_id, doc.instance_id));
    /// ```
    #[must_use]
    pub fn host_id(&self) -> String {
        format!("{}-{}", self.account_id, self.instance_id)
    }
}

/// The document as text. Checked once for the whole document, which is faster than serde_json
/// checking every string it reads from bytes; JSON is UTF-8 (RFC 8259) either way.
fn utf8(content: &[u8]) -> Result<&str, Error> {
    core::str::from_utf8(content).map_err(|e| Error::InvalidDocument {
        reason: format!("not UTF-8 (byte {})", e.valid_up_to()),
    })
}

/// serde_json's message, without the input it sometimes quotes back.
fn json_reason(e: &serde_json::Error) -> String {
    let msg = e.to_string();
    // serde_json appends " at line L column C"; keep it, it locates without echoing.
    msg.chars().take(200).collect()
}

/// `pendingTime`: RFC 3339 in UTC with a `Z` suffix, as AWS writes it.
mod aws_time {
    use super::{DateTime, Deserialize, Deserializer, Serializer, Utc};

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let text = <&str>::deserialize(d)?;
        super::parse_utc(text).ok_or_else(|| {
            serde::de::Error::custom("pendingTime is not an RFC 3339 UTC time ending in `Z`")
        })
    }

    pub(super) fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&t.format("%Y-%m-%dT%H:%M:%SZ"))
    }
}

/// Parses an RFC 3339 time that is explicitly UTC (`Z`), rejecting other offsets and leap
/// seconds.
///
/// A second of `60` is refused: AWS smears leap seconds (Amazon Time Sync), so its times never
/// carry one, and chrono would accept `:60` in any minute and keep it as an extra second that
/// does not compare or print like the time written.
pub(crate) fn parse_utc(text: &str) -> Option<DateTime<Utc>> {
    // AWS writes `2026-02-16T00:38:27Z`; RFC 3339's other spellings are not AWS's.
    if !text.ends_with('Z') || text.as_bytes().get(10) != Some(&b'T') {
        return None;
    }
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
        .filter(|t| chrono::Timelike::nanosecond(t) < 1_000_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = r#"{
  "accountId" : "278576220453",
  "architecture" : "x86_64",
  "availabilityZone" : "us-west-2a",
  "billingProducts" : null,
  "devpayProductCodes" : null,
  "marketplaceProductCodes" : null,
  "imageId" : "ami-0fa9e1f64142cde17",
  "instanceId" : "i-078517ca8a70a1dde",
  "instanceType" : "t2.medium",
  "kernelId" : null,
  "pendingTime" : "2021-09-03T21:25:44Z",
  "privateIp" : "10.0.0.209",
  "ramdiskId" : null,
  "region" : "us-west-2",
  "version" : "2017-09-30"
}"#;

    fn parse(text: &str) -> Result<IdentityDocument, Error> {
        IdentityDocument::from_json(text.as_bytes())
    }

    fn invalid(result: Result<IdentityDocument, Error>) -> String {
        match result {
            Err(Error::InvalidDocument { reason }) => reason,
            other => panic!("expected InvalidDocument, got {other:?}"),
        }
    }

    #[test]
    fn parses_every_field() {
        let doc = parse(DOC).unwrap();
        assert_eq!(doc.account_id.as_str(), "278576220453");
        assert_eq!(doc.instance_id.as_str(), "i-078517ca8a70a1dde");
        assert_eq!(doc.region.as_str(), "us-west-2");
        assert_eq!(doc.pending_time.to_rfc3339(), "2021-09-03T21:25:44+00:00");
        assert_eq!(doc.host_id(), "278576220453-i-078517ca8a70a1dde");
        assert_eq!(doc.image_id, "ami-0fa9e1f64142cde17");
        assert_eq!(doc.billing_products, None);
        assert_eq!(doc.version, "2017-09-30");
    }

    #[test]
    fn serializes_with_aws_names_and_time_format() {
        let doc = parse(DOC).unwrap();
        let again: serde_json::Value = serde_json::to_value(&doc).unwrap();
        let original: serde_json::Value = serde_json::from_str(DOC).unwrap();
        assert_eq!(again, original);
    }

    #[test]
    fn old_version_without_marketplace_codes() {
        let old = DOC.replace("  \"marketplaceProductCodes\" : null,\n", "");
        assert!(!old.contains("marketplace"));
        assert_eq!(parse(&old).unwrap().marketplace_product_codes, None);
    }

    #[test]
    fn duplicate_key_is_rejected() {
        let dup = DOC.replace(
            "\"region\" : \"us-west-2\",",
            "\"region\" : \"us-west-2\", \"region\" : \"us-east-1\",",
        );
        assert!(invalid(parse(&dup)).contains("duplicate field"));
    }

    #[test]
    fn unknown_key_is_tolerated() {
        let extra = DOC.replace("{", "{ \"futureField\" : [1, {\"a\": 2}],");
        assert_eq!(parse(&extra).unwrap(), parse(DOC).unwrap());
    }

    #[test]
    fn wrong_types_and_values_are_rejected() {
        let number = invalid(parse(&DOC.replace("\"278576220453\"", "278576220453")));
        assert!(number.contains("expected a string"), "{number}");
        invalid(parse(&DOC.replace("278576220453", "2785762204531")));
        invalid(parse(
            &DOC.replace("i-078517ca8a70a1dde", "x-078517ca8a70a1dde"),
        ));
        invalid(parse(&DOC.replace("\"us-west-2\",", "\"US WEST\",")));
        invalid(parse(&DOC.replace("\"t2.medium\"", "null")));
        invalid(parse("[]"));
        invalid(parse(""));
    }

    #[test]
    fn non_utf8_is_rejected_with_its_position() {
        let mut bytes = DOC.as_bytes().to_vec();
        let at = DOC.find("t2.medium").unwrap();
        bytes[at] = 0xff;
        let reason = invalid(IdentityDocument::from_json(&bytes));
        assert_eq!(reason, format!("not UTF-8 (byte {at})"));
        assert!(IdentityDocument::unverified_region(&bytes).is_err());
        // Escapes are decoded before an identifier is checked.
        let escaped_region = DOC.replace("\"us-west-2\",", "\"\\u0075s-west-2\",");
        assert_ne!(escaped_region, DOC);
        assert_eq!(parse(&escaped_region).unwrap().region.as_str(), "us-west-2");
        // Escaped non-ASCII text is valid JSON and stays accepted.
        let escaped = DOC.replace("t2.medium", "t2.\\u00e9");
        assert_eq!(parse(&escaped).unwrap().instance_type, "t2.\u{e9}");
    }

    #[test]
    fn pending_time_must_be_utc_rfc3339() {
        for bad in [
            "2021-09-03T23:25:44+02:00",
            "2021-09-03T21:25:44",
            "2021-13-03T21:25:44Z",
            "1631-09-03 21:25:44Z",
            "+275760-09-13T00:00:00Z",
            // Leap seconds: one that never was (found by the `document` fuzz target) and the
            // last real one.
            "2022-03-27T02:35:60Z",
            "2016-12-31T23:59:60Z",
        ] {
            let text = DOC.replace("2021-09-03T21:25:44Z", bad);
            assert!(invalid(parse(&text)).contains("pendingTime"), "{bad}");
        }
        assert!(parse_utc("2021-09-03T21:25:44.5Z").is_some());
    }
}
