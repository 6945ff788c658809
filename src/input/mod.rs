//! The pipeline's input: what an instance sends, in one of IMDS's three formats, and the
//! base64 text decoding shared by them. Nothing here is trusted or verified yet.

pub(crate) mod b64;
mod format;

pub use format::Format;

/// A signed identity document as fetched from IMDS, in one of its three formats.
///
/// ```
/// use ec2_iid::SignedInput;
///
/// let blob = include_bytes!("../../tests/data/gen/rsa2048.b64");
/// let document = include_bytes!("../../tests/data/gen/document.json");
/// let signature = include_bytes!("../../tests/data/gen/signature.b64");
/// for input in [
///     SignedInput::Cms(blob),
///     SignedInput::Rsa2048(blob),
///     SignedInput::Signature { document, signature },
/// ] {
///     println!("{input:?}: {:?}", input.format());
/// }
/// ```
#[non_exhaustive]
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum SignedInput<'a> {
    /// A CMS blob of either format (`/rsa2048` or `/pkcs7`), told apart by
    /// [`detect_cms_format`](crate::dangerous::detect_cms_format). Text or binary, as
    /// [`parse_signed_data`](crate::dangerous::parse_signed_data) accepts.
    Cms(&'a [u8]),
    /// `/latest/dynamic/instance-identity/pkcs7`: refused unless
    /// [`VerifyOptions::allow_legacy_dsa_sha1`](crate::VerifyOptions::allow_legacy_dsa_sha1) is set.
    Pkcs7(&'a [u8]),
    /// `/latest/dynamic/instance-identity/rsa2048`.
    Rsa2048(&'a [u8]),
    /// `/latest/dynamic/instance-identity/document` and `/signature`: refused unless
    /// [`VerifyOptions::allow_legacy_rsa1024`](crate::VerifyOptions::allow_legacy_rsa1024) is set.
    Signature {
        /// The document bytes exactly as served (no trailing newline added or removed): the
        /// signature covers these bytes, and the identity is parsed from them.
        document: &'a [u8],
        /// The base64 text of the signature, as served (line breaks allowed).
        signature: &'a [u8],
    },
}

impl SignedInput<'_> {
    /// The format, or `None` for [`SignedInput::Cms`] (known after parsing).
    #[must_use]
    pub fn format(&self) -> Option<Format> {
        match self {
            Self::Cms(_) => None,
            Self::Pkcs7(_) => Some(Format::Pkcs7),
            Self::Rsa2048(_) => Some(Format::Rsa2048),
            Self::Signature { .. } => Some(Format::Signature),
        }
    }
}
