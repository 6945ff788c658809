//! Helpers for the unit tests of several modules.

/// The DER SubjectPublicKeyInfo of the first certificate in `pem`.
pub(crate) fn spki(pem: impl AsRef<[u8]>) -> Vec<u8> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(pem.as_ref()).unwrap();
    pem.parse_x509().unwrap().public_key().raw.to_vec()
}
