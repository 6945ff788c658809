//! `ec2-iid certs`: the certificates the crate trusts (`list`), and whether a PEM file adds to
//! them (`check`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use ec2_iid::ids::SerialNumber;
use ec2_iid::trust::TrustedCertificate;
use ec2_iid::trust::aws::AwsCertificate;
use ec2_iid::{Format, TrustStore};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use x509_parser::certificate::X509Certificate;
use x509_parser::pem::Pem;
use x509_parser::prelude::FromDer as _;

use crate::setup::read_file;

/// `certs list`: one line (or JSON object) per embedded certificate.
pub(crate) fn list(json: bool) -> ExitCode {
    let store = TrustStore::aws();
    let mut entries = Vec::new();
    for (format, certs) in [
        (Format::Rsa2048, ec2_iid::trust::aws::RSA2048),
        (Format::Pkcs7, ec2_iid::trust::aws::PKCS7),
        (Format::Signature, ec2_iid::trust::aws::SIGNATURE),
    ] {
        for pem in distinct_pems(certs) {
            match entry(&store, format, pem) {
                Ok(entry) => entries.push(entry),
                Err(e) => {
                    eprintln!("error: embedded {format} certificate: {e}");
                    return ExitCode::from(2);
                }
            }
        }
    }
    if json {
        crate::out(Value::Array(entries));
    } else {
        for entry in &entries {
            crate::out(text_line(entry));
        }
    }
    ExitCode::SUCCESS
}

/// Each embedded PEM once, in list order (a certificate published for several regions has one
/// entry per region).
fn distinct_pems(certs: &[AwsCertificate]) -> Vec<&'static str> {
    let mut pems: Vec<&'static str> = Vec::new();
    for cert in certs {
        if !pems.contains(&cert.pem) {
            pems.push(cert.pem);
        }
    }
    pems
}

/// A certificate as `certs list --json` shows it; its regions and dates as the store has them.
fn entry(store: &TrustStore, format: Format, pem: &str) -> Result<Value, String> {
    let der = pem_der(pem.as_bytes())?
        .into_iter()
        .next()
        .ok_or("no certificate in the PEM")?;
    let cert = x509(&der)?;
    let trusted = store
        .find(format, cert.issuer().as_raw(), cert.raw_serial())
        .ok_or("not in TrustStore::aws()")?;
    Ok(json!({
        "format": format.as_str(),
        "regions": trusted.regions().iter().map(|r| r.as_str()).collect::<Vec<_>>(),
        "subject": cert.subject().to_string(),
        "issuer": cert.issuer().to_string(),
        "serial": trusted.serial().to_string(),
        "not_before": trusted.not_before().to_rfc3339(),
        "not_after": trusted.not_after().to_rfc3339(),
        "sha256": sha256_hex(&der),
    }))
}

/// The `regions` list of a certificate's JSON entry.
fn regions_of(entry: &Value) -> Vec<&str> {
    entry
        .get("regions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect()
}

fn text_line(entry: &Value) -> String {
    let field = |name: &str| entry[name].as_str().unwrap_or_default().to_owned();
    let regions = regions_of(entry);
    format!(
        "{:<9} {}  serial {}  not after {}  sha256 {}  {}",
        field("format"),
        regions.join(","),
        field("serial"),
        field("not_after"),
        field("sha256"),
        field("subject"),
    )
}

/// Where a certificate stands against the store.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
enum Standing {
    /// Same issuer, serial and key as a trusted certificate.
    Present,
    /// No trusted certificate has its issuer and serial.
    New,
    /// A trusted certificate has its issuer and serial, with another key.
    Conflicting,
}

impl Standing {
    fn as_str(self) -> &'static str {
        match self {
            Self::Present => "present",
            Self::New => "new",
            Self::Conflicting => "conflicting",
        }
    }
}

/// `certs check`: each certificate in the files against `TrustStore::aws()`. Exit 0 unless a
/// certificate conflicts (1) or a file has none or cannot be read (2).
pub(crate) fn check(files: &[PathBuf], json: bool) -> ExitCode {
    let store = TrustStore::aws();
    let mut results = Vec::new();
    for path in files {
        match check_file(&store, path) {
            Ok(mut found) => results.append(&mut found),
            Err(e) => {
                eprintln!("error: {}: {e}", path.display());
                return ExitCode::from(2);
            }
        }
    }
    if json {
        crate::out(Value::Array(
            results.iter().map(|(_, v)| v.clone()).collect(),
        ));
    } else {
        for (_, result) in &results {
            crate::out(check_line(result));
        }
    }
    let conflict = results.iter().any(|(s, _)| *s == Standing::Conflicting);
    if conflict {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn check_file(store: &TrustStore, path: &Path) -> Result<Vec<(Standing, Value)>, String> {
    let ders = pem_der(&read_file(path)?)?;
    if ders.is_empty() {
        return Err("no CERTIFICATE block".into());
    }
    ders.iter()
        .map(|der| {
            let cert = x509(der)?;
            let (standing, trusted) = standing(store, &cert);
            let value = json!({
                "file": path.display().to_string(),
                "subject": cert.subject().to_string(),
                "serial": SerialNumber::from_be_bytes(cert.raw_serial()).to_string(),
                "sha256": sha256_hex(der),
                "status": standing.as_str(),
                "trusted_as": trusted.map(|t| json!({
                    "format": t.format().as_str(),
                    "regions": t.regions().iter().map(|r| r.as_str()).collect::<Vec<_>>(),
                })),
            });
            Ok((standing, value))
        })
        .collect()
}

/// The certificate's standing, and the trusted certificate with its issuer and serial.
fn standing<'s>(
    store: &'s TrustStore,
    cert: &X509Certificate<'_>,
) -> (Standing, Option<&'s TrustedCertificate>) {
    let spki = cert.public_key().raw;
    for format in Format::ALL {
        let Some(trusted) = store.find(format, cert.issuer().as_raw(), cert.raw_serial()) else {
            continue;
        };
        let same_key = store.keys().any(|key| {
            key.subject_public_key_info() == spki
                && key.certificates().iter().any(|c| core::ptr::eq(c, trusted))
        });
        let standing = if same_key {
            Standing::Present
        } else {
            Standing::Conflicting
        };
        return (standing, Some(trusted));
    }
    (Standing::New, None)
}

fn check_line(result: &Value) -> String {
    let field = |name: &str| result[name].as_str().unwrap_or_default().to_owned();
    let trusted = result.get("trusted_as").unwrap_or(&Value::Null);
    let format = trusted
        .get("format")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let regions = regions_of(trusted);
    let what = match result.get("status").and_then(Value::as_str) {
        Some("present") => format!("already in the store ({format}: {})", regions.join(",")),
        Some("conflicting") => format!(
            "conflicting: the store's {format} certificate with this issuer and serial has another key"
        ),
        _ => "new (not in the store)".to_owned(),
    };
    format!(
        "{}: {}, serial {}: {what}",
        field("file"),
        field("subject"),
        field("serial")
    )
}

/// The DER of each CERTIFICATE block.
fn pem_der(text: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let mut ders = Vec::new();
    for pem in Pem::iter_from_buffer(text) {
        let pem = pem.map_err(|e| format!("invalid PEM: {e}"))?;
        if pem.label == "CERTIFICATE" {
            ders.push(pem.contents);
        }
    }
    Ok(ders)
}

fn x509(der: &[u8]) -> Result<X509Certificate<'_>, String> {
    X509Certificate::from_der(der)
        .map(|(_, cert)| cert)
        .map_err(|e| format!("not an X.509 certificate: {e}"))
}

fn sha256_hex(der: &[u8]) -> String {
    Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
