//! The three formats in which IMDS serves a signed identity document.

use core::fmt;
use core::str::FromStr;

use crate::ids::InvalidIdentifier;

/// Which IMDS signature a certificate verifies (and which format a blob is in).
///
/// AWS signs the same document three ways with three different sets of keys; a certificate is
/// only ever trusted for the format it was published for.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, Eq, Hash, Ord, PartialEq, PartialOrd)]
pub enum Format {
    /// `/latest/dynamic/instance-identity/rsa2048`: CMS SignedData, SHA-256 + RSA-2048.
    Rsa2048,
    /// `/latest/dynamic/instance-identity/pkcs7`: CMS SignedData, SHA-1 + DSA-1024 (RSA-2048 in
    /// China). Refused unless the caller opts in, see
    /// [`VerifyOptions::allow_legacy_dsa_sha1`](crate::VerifyOptions::allow_legacy_dsa_sha1).
    Pkcs7,
    /// `/latest/dynamic/instance-identity/signature` over the `/document` bytes: a bare
    /// RSASSA-PKCS1-v1_5 SHA-256 signature, RSA-1024. The key is chosen by the document's region.
    /// Refused unless the caller opts in, see
    /// [`VerifyOptions::allow_legacy_rsa1024`](crate::VerifyOptions::allow_legacy_rsa1024).
    Signature,
}

impl Format {
    /// Every format, in declaration order.
    pub const ALL: [Self; 3] = [Self::Rsa2048, Self::Pkcs7, Self::Signature];

    /// The IMDS path suffix, e.g. `rsa2048`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rsa2048 => "rsa2048",
            Self::Pkcs7 => "pkcs7",
            Self::Signature => "signature",
        }
    }

    /// Smallest RSA modulus accepted for the format, in bits: 2048, except 1024 for
    /// `/signature`, whose keys AWS never upgraded.
    pub(crate) fn min_rsa_modulus_bits(self) -> u32 {
        match self {
            Self::Rsa2048 | Self::Pkcs7 => 2048,
            Self::Signature => 1024,
        }
    }
}

impl serde::Serialize for Format {
    /// As [`Format::as_str`]: `rsa2048`, `pkcs7` or `signature`.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Format {
    type Err = InvalidIdentifier;

    /// Parses the IMDS path suffix: `rsa2048`, `pkcs7` or `signature`.
    fn from_str(s: &str) -> Result<Self, InvalidIdentifier> {
        Self::ALL
            .into_iter()
            .find(|format| format.as_str() == s)
            .ok_or(InvalidIdentifier { what: "format" })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_parse_and_print() {
        for format in Format::ALL {
            assert_eq!(format.as_str().parse::<Format>(), Ok(format));
            assert_eq!(format.to_string(), format.as_str());
        }
        assert_eq!(
            "dsa2048".parse::<Format>(),
            Err(InvalidIdentifier { what: "format" })
        );
    }
}
