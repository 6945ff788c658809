//! Stage 1, the signed blob: base64 text (or binary) → CMS `SignedData`, read as BER with
//! indefinite lengths, as AWS produces it. Input: untrusted bytes. Output:
//! [`UnverifiedSignedData`](crate::dangerous::UnverifiedSignedData), whose content, signed attributes,
//! signer identity (issuer and serial) and signature are located but trusted for nothing.
//!
//! The subset read (RFC 5652; any other shape is refused here). Values marked *later* are
//! only located here and checked by the signature stage, against the signer's key:
//!
//! ```text
//! ContentInfo ::= SEQUENCE {
//!   contentType  OBJECT IDENTIFIER (id-signedData),
//!   content [0] EXPLICIT SignedData }
//! SignedData ::= SEQUENCE {
//!   version           INTEGER (1 to 5; AWS writes 1),
//!   digestAlgorithms  SET OF AlgorithmIdentifier (each well-formed; the SignerInfo's is used),
//!   encapContentInfo  SEQUENCE {
//!     eContentType  OBJECT IDENTIFIER (id-data, later),
//!     eContent [0] EXPLICIT OCTET STRING (required: primitive, or constructed of primitives) },
//!   certificates [0] IMPLICIT ... OPTIONAL (skipped: the signer is found in the trust store),
//!   crls         [1] IMPLICIT ... OPTIONAL (skipped),
//!   signerInfos  SET OF SignerInfo (exactly one) }
//! SignerInfo ::= SEQUENCE {
//!   version             INTEGER (1),
//!   sid                 IssuerAndSerialNumber,
//!   digestAlgorithm     AlgorithmIdentifier (SHA-256, SHA-1 for /pkcs7: later),
//!   signedAttrs [0]     IMPLICIT SET OF Attribute OPTIONAL (definite length; contentType,
//!                       messageDigest, signingTime and CMSAlgorithmProtection read, other
//!                       attributes allowed; none repeated; required later),
//!   signatureAlgorithm  AlgorithmIdentifier (rsaEncryption, sha256WithRSAEncryption,
//!                       dsaWithSHA1 for /pkcs7: later),
//!   signature           OCTET STRING,
//!   unsignedAttrs [1]   IMPLICIT ... OPTIONAL (ignored) }
//! ```

pub(crate) mod ber;
pub(crate) mod oids;
pub(crate) mod signed_data;
mod signer_info;
