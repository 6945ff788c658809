//! The test CA of ec2-iid-ca (`ec2-iid-ca/tests/data/ca`: a P-384 intermediate under a P-256
//! root) installed for `serve --ca-cert`, and the instances' keys and CSRs.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

/// A file of the test CA.
pub(crate) fn ca_data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../ec2-iid-ca/tests/data/ca")
        .join(name)
}

/// Copies the test CA's chain and key into `dir`, the key with `key_mode`; their paths.
pub(crate) fn install_ca(dir: &Path, key_mode: u32) -> (String, String) {
    let chain = dir.join("ca-chain.pem");
    let key = dir.join("ca.key");
    std::fs::copy(ca_data("intermediate-chain.pem"), &chain).unwrap();
    std::fs::copy(ca_data("intermediate.key"), &key).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(key_mode)).unwrap();
    let text = |p: PathBuf| p.to_str().unwrap().to_owned();
    (text(chain), text(key))
}

/// The test CA installed in `dir` (key mode 600), as the serve flags naming it, with the trust
/// domain `example.org`.
pub(crate) fn ca_flags(dir: &Path) -> [String; 6] {
    let (chain, key) = install_ca(dir, 0o600);
    [
        "--ca-cert".into(),
        chain,
        "--ca-key".into(),
        key,
        "--trust-domain".into(),
        "example.org".into(),
    ]
}

/// The CSR of `key`, PEM, asking for the name `asked.example`, which the server must ignore.
pub(crate) fn csr_of(key: &rcgen::KeyPair) -> String {
    rcgen::CertificateParams::new(vec!["asked.example".to_owned()])
        .unwrap()
        .serialize_request(key)
        .unwrap()
        .pem()
        .unwrap()
}

/// A new P-256 key's CSR and the key, PEM.
pub(crate) fn new_csr() -> (String, String) {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    (csr_of(&key), key.serialize_pem())
}
