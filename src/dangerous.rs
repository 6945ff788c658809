//! Operations that skip verification. Never base a trust decision on their results.
//!
//! They serve diagnostics (what did a rejected request claim, which format does a blob look
//! like) and an instance computing its own host id; [`verify_input`](crate::verify_input) and
//! [`Verifier`](crate::Verifier) are the paths that decide.

pub use crate::cms::signed_data::{AlgorithmIdentifier, UnverifiedSignedData, parse_signed_data};
pub use crate::signature::verify_input::detect_cms_format;

use crate::error::Error;
use crate::signature::document::IdentityDocument;

/// Parses document JSON **without any signature check**, e.g. to log what a rejected request
/// claimed, or on the instance itself to compute its own host id.
///
/// ```
/// let doc = ec2_iid::dangerous::parse_unverified_document(
///     include_bytes!("../tests/data/gen/document.json"))?;
/// assert_eq!(doc.host_id(), "123456789012-i-0123456789abcdef0");
/// # Ok::<(), ec2_iid::Error>(())
/// ```
///
/// # Errors
/// [`Error::InvalidDocument`] when the JSON is not an identity document.
pub fn parse_unverified_document(json: &[u8]) -> Result<IdentityDocument, Error> {
    IdentityDocument::from_json(json)
}
