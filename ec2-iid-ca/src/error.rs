//! What can go wrong: a refused CSR ([`CsrError`]), a setup mistake ([`ConfigError`]), a
//! certificate that could not be issued ([`IssueError`]) or renewed ([`RenewError`]). Each has a machine-readable
//! [`kind`](CsrError::kind) and a message saying what to change; none carries key material,
//! and text taken from a request is bounded and escaped.

/// Why a certificate signing request was refused. A client error: fix the CSR and retry.
#[non_exhaustive]
#[derive(Clone, Debug, Eq, PartialEq, thiserror::Error)]
pub enum CsrError {
    /// The signature over the request does not verify with the request's own key.
    #[error(
        "CSR signature does not verify with its own public key: send the CSR exactly as the key \
         holder signed it"
    )]
    BadSignature,
    /// Not one well-formed PKCS#10 request (PEM `CERTIFICATE REQUEST` or DER).
    #[error("CSR is malformed ({reason}): send one PEM `CERTIFICATE REQUEST` (PKCS#10)")]
    Malformed {
        /// What is wrong, without the input.
        reason: String,
    },
    /// The input is longer than [`MAX_CSR_LEN`](crate::MAX_CSR_LEN).
    #[error("CSR is {len} bytes, more than the {max} accepted: send one CSR for one key")]
    TooLarge {
        /// The input's length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The request is signed with an algorithm this crate does not accept for its key.
    #[error(
        "CSR signature algorithm {oid} is not accepted: sign with ECDSA SHA-256/384, Ed25519, or \
         RSA PKCS#1 v1.5 SHA-256/384/512"
    )]
    UnsupportedAlgorithm {
        /// The signature algorithm's OID (dotted).
        oid: String,
    },
    /// The key type is not accepted (another curve, or RSA without
    /// [`KeyPolicy::AllowRsa`](crate::KeyPolicy::AllowRsa)).
    #[error("CSR key {key} is not accepted: use an ECDSA P-256 or P-384 or an Ed25519 key{note}")]
    UnsupportedKey {
        /// The key's type (e.g. `EC secp521r1`, `RSA`), from its OIDs.
        key: String,
        /// Empty, or why RSA was refused (the issuer's [`KeyPolicy`](crate::KeyPolicy)).
        note: &'static str,
    },
    /// An RSA key shorter than 2048 bits (or longer than 8192).
    #[error(
        "CSR key is RSA-{bits}: use an RSA key of 2048 to 8192 bits, or better ECDSA P-256 or \
         Ed25519"
    )]
    WeakKey {
        /// The modulus length.
        bits: usize,
    },
}

impl CsrError {
    /// The machine-readable class: `csr_bad_signature`, `csr_malformed`, `csr_too_large`,
    /// `csr_unsupported_algorithm`, `csr_unsupported_key` or `csr_weak_key`.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::BadSignature => "csr_bad_signature",
            Self::Malformed { .. } => "csr_malformed",
            Self::TooLarge { .. } => "csr_too_large",
            Self::UnsupportedAlgorithm { .. } => "csr_unsupported_algorithm",
            Self::UnsupportedKey { .. } => "csr_unsupported_key",
            Self::WeakKey { .. } => "csr_weak_key",
        }
    }
}

/// A profile or CA that cannot be used: found at setup, before any request.
#[non_exhaustive]
#[derive(Clone, Debug, Eq, PartialEq, thiserror::Error)]
pub enum ConfigError {
    /// The CA certificate is not a CA (no `basicConstraints CA:TRUE`, or a key usage without
    /// `keyCertSign`).
    #[error(
        "CA certificate {subject:?} {reason}: use a CA certificate (basicConstraints CA:TRUE, keyUsage keyCertSign)"
    )]
    CaCertNotCa {
        /// The certificate's subject.
        subject: String,
        /// What it lacks.
        reason: &'static str,
    },
    /// The CA chain PEM holds no certificate, or one that does not parse.
    #[error("CA chain is invalid ({reason}): give PEM `CERTIFICATE` blocks, the signing CA first")]
    CaChain {
        /// What is wrong.
        reason: String,
    },
    /// The chain's certificates are not in order: each must be issued by the next.
    #[error(
        "CA chain certificate {index} is not issued by certificate {next}: give the signing CA \
         first, then each issuer in turn up to the root"
    )]
    CaChainOrder {
        /// The certificate (0 = the signing CA).
        index: usize,
        /// The one after it.
        next: usize,
    },
    /// The CA key does not parse or is of an unsupported type. Never names the key's content.
    #[error(
        "CA key is invalid ({reason}): give one unencrypted PEM `PRIVATE KEY`, `EC PRIVATE KEY` \
         or `RSA PRIVATE KEY` (ECDSA P-256/P-384, Ed25519 or RSA)"
    )]
    CaKey {
        /// What is wrong.
        reason: &'static str,
    },
    /// The CA key is not the key of the CA certificate.
    #[error(
        "CA key does not match the CA certificate {subject:?}: give the key the first certificate \
         of the chain was issued for"
    )]
    CaKeyMismatch {
        /// The certificate's subject.
        subject: String,
    },
    /// The SPIFFE ID template is not usable.
    #[error("SPIFFE ID template {template:?} is invalid: {reason}")]
    Template {
        /// The template, bounded and escaped.
        template: String,
        /// What is wrong and what to write.
        reason: String,
    },
    /// The trust domain breaks SPIFFE's rules.
    #[error(
        "trust domain {trust_domain:?} is invalid: write 1 to 255 lowercase letters, digits, `.`, \
         `-` or `_` (e.g. `example.org`)"
    )]
    TrustDomain {
        /// The trust domain, bounded and escaped.
        trust_domain: String,
    },
    /// The certificate lifetime is out of range.
    #[error("certificate TTL {ttl:?} is out of range: give at least 1 minute and at most 24 hours")]
    Ttl {
        /// The TTL given.
        ttl: core::time::Duration,
    },
}

impl ConfigError {
    /// The machine-readable class: `ca_cert_not_ca`, `ca_chain`, `ca_chain_order`, `ca_key`,
    /// `ca_key_mismatch`, `id_template`, `trust_domain` or `cert_ttl`.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::CaCertNotCa { .. } => "ca_cert_not_ca",
            Self::CaChain { .. } => "ca_chain",
            Self::CaChainOrder { .. } => "ca_chain_order",
            Self::CaKey { .. } => "ca_key",
            Self::CaKeyMismatch { .. } => "ca_key_mismatch",
            Self::Template { .. } => "id_template",
            Self::TrustDomain { .. } => "trust_domain",
            Self::Ttl { .. } => "cert_ttl",
        }
    }
}

/// Why [`Issuer::issue`](crate::Issuer::issue) made no certificate. The CSR and the profile
/// were already checked: these are the CA's or the document's state, not the client's.
#[non_exhaustive]
#[derive(Clone, Debug, Eq, PartialEq, thiserror::Error)]
pub enum IssueError {
    /// The signing CA certificate has expired (its notAfter is not after `now`).
    #[error("CA certificate expired at {not_after}: renew the CA certificate and restart")]
    CaExpired {
        /// The CA certificate's notAfter.
        not_after: chrono::DateTime<chrono::Utc>,
    },
    /// `--dns-san` is on but the document's `privateIp` is not an IPv4 address.
    #[error(
        "no private DNS name: the document's privateIp {private_ip:?} is not an IPv4 address; \
         turn the DNS SAN off for such instances"
    )]
    NoPrivateIp {
        /// The document's `privateIp`, bounded and escaped.
        private_ip: String,
    },
    /// Signing failed, or the rendered names were refused by the certificate encoder.
    #[error("signing failed: {reason}")]
    Sign {
        /// The encoder's or signer's reason (never key material).
        reason: String,
    },
    /// The SPIFFE ID rendered for this instance is not a valid SPIFFE ID.
    #[error("SPIFFE ID {spiffe_id:?} is invalid ({reason}): change the ID template")]
    SpiffeId {
        /// The rendered ID, bounded and escaped.
        spiffe_id: String,
        /// What is wrong.
        reason: &'static str,
    },
}

impl IssueError {
    /// The machine-readable class: `ca_expired`, `no_private_ip`, `sign_failed` or
    /// `invalid_spiffe_id`.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::CaExpired { .. } => "ca_expired",
            Self::NoPrivateIp { .. } => "no_private_ip",
            Self::Sign { .. } => "sign_failed",
            Self::SpiffeId { .. } => "invalid_spiffe_id",
        }
    }
}

/// Why a certificate presented for renewal ([`Issuer::check_presented`](crate::Issuer::check_presented),
/// [`Issuer::renew`](crate::Issuer::renew)) gets no new one. The client must join again with a
/// fresh identity document, or (for [`RenewError::Issue`]) the CA's operator must act.
#[non_exhaustive]
#[derive(Clone, Debug, Eq, PartialEq, thiserror::Error)]
pub enum RenewError {
    /// Not one well-formed X.509 certificate (DER).
    #[error(
        "presented certificate is malformed ({reason}): present the certificate this CA issued"
    )]
    Malformed {
        /// What is wrong, without the input.
        reason: String,
    },
    /// The input is longer than [`MAX_CERT_LEN`](crate::MAX_CERT_LEN).
    #[error("presented certificate is {len} bytes, more than the {max} accepted")]
    TooLarge {
        /// The input's length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The certificate names another issuer than this CA.
    #[error(
        "presented certificate was issued by {issuer:?}, not by this CA: join again to get one \
         from this CA"
    )]
    NotIssuedHere {
        /// The certificate's issuer, bounded and escaped.
        issuer: String,
    },
    /// The certificate names this CA but its signature does not verify with the CA's key.
    #[error("presented certificate's signature does not verify with this CA's key")]
    BadSignature,
    /// The certificate has expired: renew before notAfter, or join again.
    #[error("presented certificate expired at {not_after}: join again with a fresh document")]
    Expired {
        /// Its notAfter.
        not_after: chrono::DateTime<chrono::Utc>,
    },
    /// The certificate is not valid yet (a clock far behind, or a forged date).
    #[error("presented certificate is not valid before {not_before}: check the server's clock")]
    NotYetValid {
        /// Its notBefore.
        not_before: chrono::DateTime<chrono::Utc>,
    },
    /// The certificate is not a joined instance's: a CA, or no single CN and SPIFFE ID.
    #[error("presented certificate is not an instance certificate of this CA: {reason}")]
    NotAnInstance {
        /// What it lacks.
        reason: &'static str,
    },
    /// The certificate's SPIFFE ID is outside the profile's trust domain (the trust domain
    /// was changed since it was issued).
    #[error(
        "presented certificate's SPIFFE ID {spiffe_id:?} is outside the trust domain \
         {trust_domain:?}: join again to get an ID in it"
    )]
    OtherTrustDomain {
        /// The certificate's SPIFFE ID, bounded and escaped.
        spiffe_id: String,
        /// The profile's trust domain.
        trust_domain: String,
    },
    /// The new certificate could not be issued.
    #[error(transparent)]
    Issue(#[from] IssueError),
}

impl RenewError {
    /// The machine-readable class: `cert_malformed`, `cert_too_large`, `cert_not_issued_here`,
    /// `cert_bad_signature`, `cert_expired`, `cert_not_yet_valid`, `cert_not_instance`,
    /// `cert_other_trust_domain`, or the [`IssueError`]'s kind.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Malformed { .. } => "cert_malformed",
            Self::TooLarge { .. } => "cert_too_large",
            Self::NotIssuedHere { .. } => "cert_not_issued_here",
            Self::BadSignature => "cert_bad_signature",
            Self::Expired { .. } => "cert_expired",
            Self::NotYetValid { .. } => "cert_not_yet_valid",
            Self::NotAnInstance { .. } => "cert_not_instance",
            Self::OtherTrustDomain { .. } => "cert_other_trust_domain",
            Self::Issue(e) => e.kind(),
        }
    }
}

/// Text from a request or a configuration, bounded (at 128 characters) for an error message;
/// `{:?}` in the messages escapes it.
pub(crate) fn bounded(text: &str) -> String {
    const MAX: usize = 128;
    let mut out: String = text.chars().take(MAX).collect();
    if text.chars().nth(MAX).is_some() {
        out.push('…');
    }
    out
}
