//! `join --out-dir`: the instance's key and CSR, and the files the certificate is written to.
//!
//! The key is an ECDSA P-256 key made on the instance (rcgen on aws-lc-rs); only its CSR is
//! sent. `key.pem`, `cert.pem` and `bundle.pem` are each written to a temporary file in the
//! directory (the key's created with mode 0600, so it is never readable by others, not even
//! briefly), flushed to disk, then renamed over the old ones, and the directory is flushed:
//! a crash leaves the old files or the new ones, never a torn file.

use core::fmt;
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use ec2_iid_aws::join::Joined;

/// The private key file's name in `--out-dir`.
pub(crate) const KEY_FILE: &str = "key.pem";
/// The certificate chain's file name in `--out-dir`.
pub(crate) const CERT_FILE: &str = "cert.pem";
/// The CA bundle's file name in `--out-dir`.
pub(crate) const BUNDLE_FILE: &str = "bundle.pem";

/// The instance's new key (PKCS#8 PEM) and its CSR.
pub(crate) struct Key {
    key_pem: String,
    csr_pem: String,
}

/// Never the key.
impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key")
            .field("csr_pem", &self.csr_pem)
            .finish_non_exhaustive()
    }
}

impl Key {
    /// A new P-256 key and a CSR signed with it (its subject is empty: the server decides).
    ///
    /// # Errors
    /// The key or the CSR could not be made (no randomness).
    pub(crate) fn generate() -> Result<Self, String> {
        let failed = |e: rcgen::Error| format!("cannot make a key and its CSR: {e}");
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(failed)?;
        let mut params = rcgen::CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        let csr_pem = params
            .serialize_request(&key)
            .and_then(|csr| csr.pem())
            .map_err(failed)?;
        Ok(Self {
            key_pem: key.serialize_pem(),
            csr_pem,
        })
    }

    /// The CSR, PEM: what is sent.
    pub(crate) fn csr_pem(&self) -> &str {
        &self.csr_pem
    }
}

/// `--out-dir` must be an existing directory: checked before anything is fetched or sent.
///
/// # Errors
/// The usage error to print.
pub(crate) fn check_dir(dir: &Path) -> Result<(), String> {
    match std::fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(format!("--out-dir {}: not a directory", dir.display())),
        Err(e) => Err(format!(
            "--out-dir {}: {e} (create it first, e.g. mkdir -m 700)",
            dir.display()
        )),
    }
}

/// Writes the key, the certificate chain and the bundle of `joined` into `dir`, atomically.
///
/// # Errors
/// The answer has no certificate or bundle, or a file could not be written (the temporary
/// files are removed; the old files stay).
pub(crate) fn write(dir: &Path, key: &Key, joined: &Joined) -> Result<(), String> {
    let missing = |what| {
        format!(
            "the server answered 200 without {what}: is it `ec2-iid serve` with --ca-cert? \
             nothing was written"
        )
    };
    let cert = joined
        .certificate_pem()
        .ok_or_else(|| missing("a certificate"))?;
    let bundle = joined.bundle_pem().ok_or_else(|| missing("a CA bundle"))?;
    let files = [
        (KEY_FILE, key.key_pem.as_str(), 0o600),
        (CERT_FILE, cert, 0o644),
        (BUNDLE_FILE, bundle, 0o644),
    ];
    let mut written: Vec<(PathBuf, PathBuf)> = Vec::new();
    for (name, contents, mode) in files {
        let temp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
        let result = write_synced(&temp, contents, mode);
        written.push((temp, dir.join(name)));
        if let Err(e) = result {
            remove_all(&written);
            return Err(e);
        }
    }
    for (temp, path) in &written {
        std::fs::rename(temp, path).map_err(|e| {
            remove_all(&written);
            format!("{}: {e}", path.display())
        })?;
    }
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| format!("{}: {e}", dir.display()))
}

/// A new file at `path` with `mode` from its creation, holding `contents`, flushed to disk.
fn write_synced(path: &Path, contents: &str, mode: u32) -> Result<(), String> {
    // A leftover of a run that died with this process id.
    let _ = std::fs::remove_file(path);
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    file.write_all(contents.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| format!("{}: {e}", path.display()))
}

fn remove_all(written: &[(PathBuf, PathBuf)]) {
    for (temp, _) in written {
        let _ = std::fs::remove_file(temp);
    }
}

/// What `join --out-dir` prints: the identity granted, one JSON line (the server's values;
/// the caller passes it through `printable`).
pub(crate) fn summary(joined: &Joined) -> String {
    serde_json::json!({
        "host_id": joined.host_id(),
        "spiffe_id": joined.spiffe_id(),
        "serial": joined.serial(),
        "not_after": joined.not_after().map(|t| t.to_rfc3339()),
        "grant": joined.grant(),
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_csr_of_a_new_p256_key_each_time() {
        let a = Key::generate().unwrap();
        let b = Key::generate().unwrap();
        assert!(
            a.csr_pem()
                .starts_with("-----BEGIN CERTIFICATE REQUEST-----")
        );
        assert!(a.key_pem.starts_with("-----BEGIN PRIVATE KEY-----"));
        assert_ne!(a.key_pem, b.key_pem);
        let csr = ec2_iid_ca::Csr::from_pem(a.csr_pem()).unwrap();
        assert_eq!(csr.key_type(), ec2_iid_ca::KeyType::EcdsaP256);
        assert!(!format!("{a:?}").contains("PRIVATE"), "{a:?}");
    }

    #[test]
    fn out_dir_must_be_a_directory() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
        assert!(check_dir(dir).is_ok());
        let err = check_dir(&dir.join("Cargo.toml")).unwrap_err();
        assert!(err.contains("not a directory"), "{err}");
        let err = check_dir(&dir.join("no-such-dir")).unwrap_err();
        assert!(err.contains("create it first"), "{err}");
    }
}
