//! Everything `verify` and `explain` read before checking a document: files, the trust store,
//! the token's verifier, the instance facts. Any failure here is a setup error (exit 2).

use std::io::Read as _;
use std::path::Path;

use chrono::{DateTime, Utc};
use ec2_iid::{
    Format, InstanceFacts, SignedInput, TokenResource, TokenSpec, TrustStore, Verifier,
    VerifierBuilder, VerifyOptions,
};

use crate::args::Options;

/// The checked flags with the files they name read and parsed.
#[derive(Debug)]
pub(crate) struct Setup {
    pub(crate) options: Options,
    pub(crate) trust: TrustStore,
    /// The input: the CMS blob, or the /signature text with `--document`.
    pub(crate) blob: Vec<u8>,
    /// The `--document` bytes.
    pub(crate) document: Option<Vec<u8>>,
    /// The token's verifier, with `--token`.
    pub(crate) verifier: Option<Verifier>,
    /// The `--facts`.
    pub(crate) facts: Option<InstanceFacts>,
    /// `--now`, else this machine's clock.
    pub(crate) now: DateTime<Utc>,
}

impl Setup {
    /// Reads what the options name.
    ///
    /// # Errors
    /// The setup error to print (unreadable file, unusable certificate, invalid token or facts).
    pub(crate) fn new(options: Options) -> Result<Self, String> {
        let mut trust = TrustStore::aws();
        for (path, regions) in &options.certs {
            let pem = read_file(path)?;
            trust
                .add_pem(options.cert_format(), &pem, regions.iter().cloned())
                .map_err(|e| format!("--cert {}: {e}", path.display()))?;
        }
        let blob = read_input(options.input.as_deref())?;
        let document = options.document.as_deref().map(read_file).transpose()?;
        let verifier = match &options.token {
            Some(path) => Some(read_verifier_with(
                path,
                trust.clone(),
                legacy_options(&options),
            )?),
            None => None,
        };
        let facts = options.facts.as_deref().map(read_facts).transpose()?;
        let now = options
            .now
            .unwrap_or_else(|| DateTime::<Utc>::from(std::time::SystemTime::now()));
        Ok(Self {
            options,
            trust,
            blob,
            document,
            verifier,
            facts,
            now,
        })
    }

    /// The input as the core takes it.
    pub(crate) fn input(&self) -> SignedInput<'_> {
        match (&self.document, self.options.format) {
            (Some(document), _) => SignedInput::Signature {
                document,
                signature: &self.blob,
            },
            (None, Some(Format::Pkcs7)) => SignedInput::Pkcs7(&self.blob),
            (None, Some(Format::Rsa2048)) => SignedInput::Rsa2048(&self.blob),
            (None, _) => SignedInput::Cms(&self.blob),
        }
    }

    /// The signature options the flags ask for.
    pub(crate) fn verify_options(&self) -> VerifyOptions {
        legacy_options(&self.options)
    }
}

/// The legacy formats `--allow-legacy-dsa` and `--allow-legacy-rsa1024` accept.
fn legacy_options(options: &Options) -> VerifyOptions {
    VerifyOptions::default()
        .allow_legacy_dsa_sha1(options.allow_legacy_dsa)
        .allow_legacy_rsa1024(options.allow_legacy_rsa1024)
}

/// [`read_verifier_with`] for `serve`, which takes CMS blobs only: of the legacy formats,
/// only `/pkcs7` can reach it.
///
/// # Errors
/// As [`read_verifier_with`].
#[cfg(feature = "serve")]
pub(crate) fn read_verifier(
    path: &Path,
    trust: TrustStore,
    allow_legacy_dsa: bool,
) -> Result<Verifier, String> {
    let legacy = VerifyOptions::default().allow_legacy_dsa_sha1(allow_legacy_dsa);
    read_verifier_with(path, trust, legacy)
}

/// A token resource (`kind: token`, with its expiry) or a bare spec, in YAML or JSON, for a
/// verifier accepting the legacy formats `legacy` allows.
///
/// # Errors
/// The setup error to print: unreadable file, invalid token.
fn read_verifier_with(
    path: &Path,
    trust: TrustStore,
    legacy: VerifyOptions,
) -> Result<Verifier, String> {
    let bytes = read_file(path)?;
    let bad = |e: &dyn std::fmt::Display| format!("--token {}: {e}", path.display());
    // The top level only tells a resource from a bare spec; the token's own reader then
    // refuses a key given twice anywhere, naming where (YAML's `Value` would name no path).
    let top: serde_json::Value = serde_norway::from_slice(&bytes).map_err(|e| bad(&e))?;
    let builder = Verifier::builder(trust)
        .allow_legacy_dsa_sha1(legacy.legacy_dsa_sha1_allowed())
        .allow_legacy_rsa1024(legacy.legacy_rsa1024_allowed());
    let builder: VerifierBuilder = if top.get("spec").is_some() {
        let resource: TokenResource = serde_norway::from_slice(&bytes).map_err(|e| bad(&e))?;
        builder.token(&resource)
    } else {
        let spec: TokenSpec = serde_norway::from_slice(&bytes).map_err(|e| bad(&e))?;
        builder.token_spec(&spec)
    };
    builder.build().map_err(|e| bad(&e))
}

fn read_facts(path: &Path) -> Result<InstanceFacts, String> {
    serde_json::from_slice(&read_file(path)?)
        .map_err(|e| format!("--facts {}: {e}", path.display()))
}

fn read_input(path: Option<&Path>) -> Result<Vec<u8>, String> {
    match path {
        Some(path) if path != Path::new("-") => read_file(path),
        _ => {
            let limit = u64::try_from(ec2_iid::MAX_BLOB_LEN).unwrap_or(u64::MAX);
            let mut blob = Vec::new();
            std::io::stdin()
                .take(limit.saturating_add(1))
                .read_to_end(&mut blob)
                .map_err(|e| format!("stdin: {e}"))?;
            Ok(blob)
        }
    }
}

/// Reads a file named on the command line.
///
/// # Errors
/// The path and the I/O error.
pub(crate) fn read_file(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
}
