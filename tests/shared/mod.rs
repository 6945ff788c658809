//! The one reader of `../shared` (never copied into this repo): the real AWS samples in
//! `../shared/aws-samples` and the published certificates in `../shared/aws-certs`. Used by
//! the test crates (`mod shared;`) and the benches (`#[path]`).
//!
//! When a folder is missing, tests fail if `CI=true` and otherwise skip with a notice.

#![allow(
    dead_code,
    unreachable_pub,
    clippy::expect_used,
    clippy::panic,
    reason = "test helper shared by several test crates; each uses a part"
)]

use std::collections::HashMap;
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use serde::Deserialize;

/// One entry of `index.json`.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Sample {
    pub id: String,
    pub kind: String,
    pub expect: String,
    pub region: String,
    pub account_id: String,
    pub instance_id: String,
    pub pending_time: DateTime<Utc>,
    #[serde(default)]
    pub signing_time: Option<DateTime<Utc>>,
    #[serde(default, rename = "signer_serial_hex")]
    pub signer_serial_hex: Option<String>,
    #[serde(default)]
    pub fakecert: Option<String>,
    /// For `/signature` samples: the sample whose document these are (or a note).
    #[serde(default)]
    pub doc_from: Option<String>,
    /// The certificate files the sample verifies with (in `aws-samples` for fake ones, else
    /// in `aws-certs`).
    #[serde(default)]
    pub verified_with: Vec<String>,
    #[serde(default)]
    pub note: String,
    #[serde(rename = "now_for_tests")]
    pub now: DateTime<Utc>,
}

impl Sample {
    /// The bytes of this sample's file with the given suffix, e.g. `rsa2048.b64`.
    pub fn file(&self, suffix: &str) -> Vec<u8> {
        read(&format!("{}.{suffix}", self.id))
    }

    /// The sample's text as IMDS serves it (`.b64`).
    pub fn blob(&self) -> Vec<u8> {
        self.file(&format!("{}.b64", self.kind))
    }
}

/// The certificates of one region in `aws-certs/index.json`: a file name per format.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct RegionCerts {
    #[serde(default)]
    pub rsa2048: Option<String>,
    #[serde(default)]
    pub pkcs7: Option<String>,
    #[serde(default)]
    pub signature: Option<String>,
}

/// `aws-certs/index.json`: the certificates of each region.
#[derive(Clone, Debug, Deserialize)]
pub struct CertIndex(HashMap<String, RegionCerts>);

impl CertIndex {
    /// The certificate file of `region` for `kind` (`rsa2048`, `pkcs7`, `signature`).
    pub fn file(&self, region: &str, kind: &str) -> Option<&str> {
        let certs = self.0.get(region)?;
        match kind {
            "rsa2048" => certs.rsa2048.as_deref(),
            "pkcs7" => certs.pkcs7.as_deref(),
            "signature" => certs.signature.as_deref(),
            _ => None,
        }
    }
}

/// `../shared/<name>`, relative to the crate root.
fn shared(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shared")
        .join(name)
}

/// The samples folder, relative to the crate root.
pub fn dir() -> PathBuf {
    shared("aws-samples")
}

/// The certificates folder, relative to the crate root.
pub fn certs_dir() -> PathBuf {
    shared("aws-certs")
}

/// The `index.json` of `dir`, or `None` (after a notice) when it is missing outside CI.
fn index<T: serde::de::DeserializeOwned>(dir: PathBuf) -> Option<T> {
    let index = dir.join("index.json");
    match std::fs::read(&index) {
        Ok(bytes) => Some(
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|e| panic!("{} parses: {e}", index.display())),
        ),
        Err(e) => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI=true but {} is missing: {e}",
                index.display()
            );
            eprintln!(
                "notice: skipping real-sample tests, {} is missing",
                index.display()
            );
            None
        }
    }
}

/// All samples, or `None` (after a notice) when the folder is missing outside CI.
pub fn samples() -> Option<Vec<Sample>> {
    index(dir())
}

/// The certificate index, or `None` (after a notice) when the folder is missing outside CI.
pub fn cert_index() -> Option<CertIndex> {
    index(certs_dir())
}

/// Samples of one kind (`rsa2048`, `pkcs7`, `signature`).
pub fn samples_of(kind: &str) -> Vec<Sample> {
    samples()
        .unwrap_or_default()
        .into_iter()
        .filter(|s| s.kind == kind)
        .collect()
}

/// The sample with this id, if the samples are present (`None` after a notice otherwise).
pub fn sample(id: &str) -> Option<Sample> {
    let sample = samples()?.into_iter().find(|s| s.id == id);
    Some(sample.unwrap_or_else(|| panic!("no sample {id} in index.json")))
}

/// A file of the samples folder.
pub fn read(name: &str) -> Vec<u8> {
    let path = dir().join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A certificate file named by `verified_with` or the certificate index: a fake certificate in
/// the samples folder, else a published one in the certificates folder.
pub fn cert(name: &str) -> Vec<u8> {
    let fake = dir().join(name);
    let path = if fake.is_file() {
        fake
    } else {
        certs_dir().join(name)
    };
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}
