//! The object identifiers the crate compares, as DER content bytes (no tag, no length).

/// id-signedData, 1.2.840.113549.1.7.2.
pub(crate) const SIGNED_DATA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02];
/// id-data, 1.2.840.113549.1.7.1.
pub(crate) const DATA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01];
/// id-contentType, 1.2.840.113549.1.9.3.
pub(crate) const CONTENT_TYPE: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x03];
/// id-messageDigest, 1.2.840.113549.1.9.4.
pub(crate) const MESSAGE_DIGEST: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x04];
/// id-signingTime, 1.2.840.113549.1.9.5.
pub(crate) const SIGNING_TIME: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x05];
/// id-aa-CMSAlgorithmProtection, 1.2.840.113549.1.9.52 (RFC 6211).
pub(crate) const ALGORITHM_PROTECTION: &[u8] =
    &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x34];
/// id-sha256, 2.16.840.1.101.3.4.2.1.
pub(crate) const SHA256: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01];
/// id-sha1, 1.3.14.3.2.26 (`/pkcs7` only).
pub(crate) const SHA1: &[u8] = &[0x2b, 0x0e, 0x03, 0x02, 0x1a];
/// rsaEncryption, 1.2.840.113549.1.1.1 (AWS's signature algorithm until mid-2021).
pub(crate) const RSA_ENCRYPTION: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
/// sha256WithRSAEncryption, 1.2.840.113549.1.1.11 (AWS's since 2021).
pub(crate) const SHA256_WITH_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b];
/// sha1WithRSAEncryption, 1.2.840.113549.1.1.5 (possible for China's RSA `/pkcs7`).
pub(crate) const SHA1_WITH_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x05];
/// id-dsa, 1.2.840.10040.4.1: the DSA key type, also seen as a signature algorithm.
pub(crate) const ID_DSA: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x38, 0x04, 0x01];
/// dsaWithSHA1, 1.2.840.10040.4.3 (AWS's `/pkcs7` signature algorithm).
pub(crate) const DSA_WITH_SHA1: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x38, 0x04, 0x03];

#[cfg(test)]
mod tests {
    use der::asn1::ObjectIdentifier;

    #[test]
    fn constants_match_their_dotted_names() {
        for (bytes, dotted) in [
            (super::SIGNED_DATA, "1.2.840.113549.1.7.2"),
            (super::DATA, "1.2.840.113549.1.7.1"),
            (super::CONTENT_TYPE, "1.2.840.113549.1.9.3"),
            (super::MESSAGE_DIGEST, "1.2.840.113549.1.9.4"),
            (super::SIGNING_TIME, "1.2.840.113549.1.9.5"),
            (super::ALGORITHM_PROTECTION, "1.2.840.113549.1.9.52"),
            (super::SHA256, "2.16.840.1.101.3.4.2.1"),
            (super::RSA_ENCRYPTION, "1.2.840.113549.1.1.1"),
            (super::SHA256_WITH_RSA, "1.2.840.113549.1.1.11"),
            (super::SHA1, "1.3.14.3.2.26"),
            (super::SHA1_WITH_RSA, "1.2.840.113549.1.1.5"),
            (super::ID_DSA, "1.2.840.10040.4.1"),
            (super::DSA_WITH_SHA1, "1.2.840.10040.4.3"),
        ] {
            assert_eq!(
                ObjectIdentifier::new(dotted).unwrap().as_bytes(),
                bytes,
                "{dotted}"
            );
        }
    }
}
