//! `--ca-cert` and `--ca-key`: certificates for instances that join with a CSR, issued by
//! `ec2-iid-ca` (the CSR check, the profile, the signing), and the body that asks for one.
//!
//! `POST /join` with a body that starts with `{` is `{"document": "...", "csr": "..."}`; any
//! other body is the document alone, answered as before.

use core::fmt;
use std::path::Path;

use chrono::{DateTime, Utc};
use ec2_iid::JoinOutcome;
use ec2_iid_ca::{
    ConfigError, Csr, CsrError, Issued, Issuer, KeyPolicy, Presented, Profile, RenewError,
};

use super::args::CaFlags;
use crate::setup::read_file;

/// The CA and the profile of the certificates `serve` issues. Built at start: a file that
/// cannot be read, a key readable by others, a CA that cannot sign or an invalid profile is a
/// setup error (exit 2).
pub(crate) struct Issuance {
    issuer: Issuer,
    profile: Profile,
    key_policy: KeyPolicy,
}

/// Never the key: only what the issuer and the profile say about themselves.
impl fmt::Debug for Issuance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Issuance")
            .field("issuer", &self.issuer)
            .field("profile", &self.profile)
            .field("key_policy", &self.key_policy)
            .finish_non_exhaustive()
    }
}

impl Issuance {
    /// Reads and checks the CA and the profile of `flags`.
    ///
    /// # Errors
    /// The setup error to print, naming the flag and what to write.
    pub(crate) fn open(flags: &CaFlags) -> Result<Self, String> {
        let mut profile = Profile::builder(&flags.trust_domain)
            .dns_san(flags.dns_san)
            .server_auth(flags.server_auth)
            .ttl(flags.ttl);
        if let Some(template) = &flags.id_template {
            profile = profile.id_template(template);
        }
        let profile = profile.build().map_err(|e| config_error(flags, &e))?;
        check_key_mode(&flags.key)?;
        let chain = text(&flags.cert, "--ca-cert")?;
        // Read only after the mode check; never printed (the CA's errors never quote it).
        let key = text(&flags.key, "--ca-key")?;
        let issuer = Issuer::from_pem(&chain, &key).map_err(|e| config_error(flags, &e))?;
        let key_policy = if flags.allow_rsa {
            KeyPolicy::AllowRsa
        } else {
            KeyPolicy::Modern
        };
        Ok(Self {
            issuer,
            profile,
            key_policy,
        })
    }

    /// Parses and verifies a join's CSR, with the key types `--allow-rsa-csr` allows.
    ///
    /// # Errors
    /// The refusal: its [`CsrError::kind`] is the answer's `error`.
    pub(crate) fn csr(&self, pem: &str) -> Result<Csr, CsrError> {
        Csr::from_pem_with(pem, self.key_policy)
    }

    /// Signs a certificate for `csr`'s key and `outcome`'s instance, with a random 128-bit
    /// serial.
    ///
    /// # Errors
    /// Why none was issued (no randomness, an expired CA, no private IP for `--dns-san`, ...),
    /// for the log.
    pub(crate) fn issue(
        &self,
        outcome: &JoinOutcome,
        csr: &Csr,
        now: DateTime<Utc>,
    ) -> Result<Issued, String> {
        self.issuer
            .issue(outcome, csr, &self.profile, now, random_serial()?)
            .map_err(|e| format!("{} ({})", e, e.kind()))
    }

    /// Checks a certificate presented for renewal (`POST /renew`): this CA's, valid at `now`,
    /// an instance's.
    ///
    /// # Errors
    /// The refusal: its [`RenewError::kind`] is the answer's `error`.
    pub(crate) fn check_presented(
        &self,
        der: &[u8],
        now: DateTime<Utc>,
    ) -> Result<Presented, RenewError> {
        self.issuer.check_presented(der, now)
    }

    /// Signs a certificate for `presented`'s identity and `csr`'s key.
    ///
    /// # Errors
    /// [`RenewError::OtherTrustDomain`] after a `--trust-domain` change;
    /// [`RenewError::Issue`] as for a join.
    pub(crate) fn renew(
        &self,
        presented: &Presented,
        csr: &Csr,
        now: DateTime<Utc>,
        serial: [u8; 16],
    ) -> Result<Issued, RenewError> {
        self.issuer
            .renew(presented, csr, &self.profile, now, serial)
    }

    /// The CA certificates relying parties should trust, PEM (`GET /bundle`).
    pub(crate) fn bundle_pem(&self) -> &str {
        self.issuer.bundle_pem()
    }
}

/// 16 random bytes for a certificate's serial.
///
/// # Errors
/// The system has no randomness to give (for the log).
pub(crate) fn random_serial() -> Result<[u8; 16], String> {
    let mut serial = [0; 16];
    getrandom::fill(&mut serial).map_err(|e| format!("no randomness for a serial: {e}"))?;
    Ok(serial)
}

/// A CA or profile error, prefixed with the flag it is about.
fn config_error(flags: &CaFlags, e: &ConfigError) -> String {
    let flag = match e.kind() {
        "ca_key" | "ca_key_mismatch" => format!("--ca-key {}", flags.key.display()),
        "id_template" => "--id-template".to_owned(),
        "trust_domain" => "--trust-domain".to_owned(),
        "cert_ttl" => "--cert-ttl".to_owned(),
        _ => format!("--ca-cert {}", flags.cert.display()),
    };
    format!("{flag}: {e}")
}

/// A file's text; `flag` names it in the error.
fn text(path: &Path, flag: &str) -> Result<String, String> {
    String::from_utf8(read_file(path).map_err(|e| format!("{flag} {e}"))?)
        .map_err(|_| format!("{flag} {}: not PEM text", path.display()))
}

/// A CA key readable by group or others is refused: anyone on the host could issue
/// certificates.
fn check_key_mode(key: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(key)
        .map_err(|e| format!("--ca-key {}: {e}", key.display()))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(format!(
            "--ca-key {path}: readable by group or others (mode {mode:o}): chmod 600 {path}",
            path = key.display(),
            mode = mode & 0o777,
        ));
    }
    Ok(())
}

/// A join's body, when it is JSON: the document and the CSR.
#[derive(Debug)]
pub(crate) struct CsrJoin {
    pub(crate) document: String,
    pub(crate) csr: String,
}

/// `None` for a body that is the document alone (it does not start with `{`, after
/// whitespace); else the JSON request, or why it is malformed (bounded, for the log).
pub(crate) fn parse_request(body: &[u8]) -> Option<Result<CsrJoin, String>> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace())?;
    if *first != b'{' {
        return None;
    }
    Some(parse_json(body))
}

fn parse_json(body: &[u8]) -> Result<CsrJoin, String> {
    let [document, csr] = string_fields(body, ["document", "csr"])?;
    Ok(CsrJoin { document, csr })
}

/// The string fields `names` of a JSON object, which must have those and no others; else why
/// not (bounded, for the log).
pub(crate) fn string_fields<const N: usize>(
    body: &[u8],
    names: [&str; N],
) -> Result<[String; N], String> {
    let fields: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(body).map_err(|e| format!("not a JSON object: {e}"))?;
    if let Some(unknown) = fields.keys().find(|k| !names.contains(&k.as_str())) {
        let name: String = unknown.chars().take(64).collect();
        return Err(format!("unknown field {name:?}: send {names:?} only"));
    }
    let mut values = names.map(|_| String::new());
    for (name, value) in names.iter().zip(&mut values) {
        *value = match fields.get(*name) {
            Some(serde_json::Value::String(text)) => text.clone(),
            Some(_) => return Err(format!("{name:?} is not a string")),
            None => return Err(format!("missing field {name:?}")),
        };
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies() {
        assert!(parse_request(b"MIIB...").is_none(), "a document");
        assert!(parse_request(b"").is_none());
        let ok = parse_request(b" \n{\"document\": \"d\", \"csr\": \"c\"}")
            .unwrap()
            .unwrap();
        assert_eq!((ok.document.as_str(), ok.csr.as_str()), ("d", "c"));
        for (bad, says) in [
            (&b"{"[..], "not a JSON object"),
            (b"{\"document\": \"d\"}", "missing field \"csr\""),
            (b"{\"csr\": \"c\"}", "missing field \"document\""),
            (b"{\"document\": 1, \"csr\": \"c\"}", "not a string"),
            (
                b"{\"document\": \"d\", \"csr\": \"c\", \"x\": 1}",
                "unknown field \"x\"",
            ),
            (b"{}[]", "not a JSON object"),
        ] {
            let err = parse_request(bad).unwrap().unwrap_err();
            assert!(err.contains(says), "{err}");
        }
    }
}
