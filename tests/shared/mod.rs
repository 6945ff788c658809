//! Access to the real AWS samples in `../shared/aws-samples` (never copied into this repo).
//!
//! When the folder is missing, tests fail if `CI=true` and otherwise skip with a notice.

#![allow(
    dead_code,
    unreachable_pub,
    clippy::expect_used,
    clippy::panic,
    reason = "test helper shared by several test crates; each uses a part"
)]

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

/// The samples folder, relative to the crate root.
pub fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/aws-samples")
}

/// All samples, or `None` (after a notice) when the folder is missing outside CI.
pub fn samples() -> Option<Vec<Sample>> {
    let index = dir().join("index.json");
    match std::fs::read(&index) {
        Ok(bytes) => Some(serde_json::from_slice(&bytes).expect("index.json parses")),
        Err(e) => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI=true but the AWS samples are missing at {}: {e}",
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

/// Samples of one kind (`rsa2048`, `pkcs7`, `signature`).
pub fn samples_of(kind: &str) -> Vec<Sample> {
    samples()
        .unwrap_or_default()
        .into_iter()
        .filter(|s| s.kind == kind)
        .collect()
}

pub fn read(name: &str) -> Vec<u8> {
    let path = dir().join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}
