//! `verify`: check an instance identity document from the command line.
//!
//! ```text
//! cargo run --release --example verify -- [--now RFC3339] [--ttl DURATION]
//!     [--format pkcs7|rsa2048|signature] [--allow-legacy-dsa] [--allow-legacy-rsa1024]
//!     [--document FILE] [--cert PEM --cert-region REGION]... [--token FILE] [--facts FILE] [FILE|-]
//! ```
//!
//! FILE is the `/rsa2048` or `/pkcs7` text (or BER); without `--format` the CMS format is
//! detected. With `--document FILE` (the `/document` bytes, exactly as served), FILE is the
//! `/signature` text and the format is `signature`. `/pkcs7` needs `--allow-legacy-dsa`
//! (DSA-1024 with SHA-1), `/signature` needs `--allow-legacy-rsa1024` (RSA-1024). `--cert` trusts a certificate for the `--format` given (default
//! `rsa2048`; `signature` with `--document`).
//!
//! Freshness: with `--token`, the token's `aws_iid_ttl` applies (and its `metadata.expires`);
//! without one, `--now` or `--ttl` apply a TTL (`--ttl`, default 5 minutes) to `pendingTime`.
//! With neither, only the signature is checked. `--facts FILE` (the instance's
//! `DescribeInstances` facts as JSON) runs the instance check; the output says whether it ran
//! (`"instance_checked"`).
//!
//! Exit codes: 0 accepted (one JSON object on stdout), 1 rejected (the reason on stderr),
//! 2 usage or setup error (bad flag, unreadable file, invalid token). `--help` prints the usage
//! on stdout and exits 0.

use std::io::Read as _;
use std::process::ExitCode;

use core::time::Duration;

use chrono::{DateTime, Utc};
use ec2_iid::{
    DEFAULT_MAX_FUTURE_SKEW, DEFAULT_TTL, Format, InstanceFacts, Region, SignedInput,
    TokenResource, TokenSpec, TrustStore, Verifier, VerifierBuilder, VerifyOptions, check_ttl,
    parse_go_duration, verify_input,
};

const USAGE: &str = "usage: verify [--now RFC3339] [--ttl DURATION] \
[--format pkcs7|rsa2048|signature] [--allow-legacy-dsa] [--allow-legacy-rsa1024] [--document FILE] \
[--cert PEM --cert-region REGION]... [--token FILE] [--facts FILE] [FILE|-]";

/// Parsed command line.
#[derive(Debug, Default)]
struct Args {
    help: bool,
    now: Option<DateTime<Utc>>,
    ttl: Option<Duration>,
    format: Option<Format>,
    allow_legacy_dsa: bool,
    allow_legacy_rsa1024: bool,
    document: Option<String>,
    certs: Vec<(String, Vec<Region>)>,
    token: Option<String>,
    facts: Option<String>,
    input: Option<String>,
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(message) => return usage(&message),
    };
    if args.help {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    match run(&args) {
        Ok(output) => {
            println!("{output}");
            ExitCode::SUCCESS
        }
        Err(Failure::Rejected(message)) => {
            eprintln!("rejected: {message}");
            ExitCode::from(1)
        }
        Err(Failure::Usage(message)) => usage(&message),
    }
}

fn usage(message: &str) -> ExitCode {
    eprintln!("error: {message}\n{USAGE}");
    ExitCode::from(2)
}

enum Failure {
    Rejected(String),
    Usage(String),
}

impl From<ec2_iid::Error> for Failure {
    fn from(e: ec2_iid::Error) -> Self {
        Self::Rejected(e.to_string())
    }
}

fn parse_args(mut argv: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut args = Args::default();
    let mut pending_cert: Option<String> = None;
    while let Some(arg) = argv.next() {
        let mut value = |flag: &str| argv.next().ok_or_else(|| format!("{flag} needs a value"));
        match arg.as_str() {
            "--now" => {
                let text = value("--now")?;
                let now = DateTime::parse_from_rfc3339(&text)
                    .map_err(|e| format!("--now {text:?}: {e}"))?;
                args.now = Some(now.with_timezone(&Utc));
            }
            "--ttl" => {
                let text = value("--ttl")?;
                args.ttl = Some(parse_go_duration(&text).map_err(|e| format!("--ttl: {e}"))?);
            }
            "--format" => {
                let format = value("--format")?;
                let format = format
                    .parse()
                    .map_err(|_| format!("unsupported --format {format:?}"))?;
                args.format = Some(format);
            }
            "--allow-legacy-dsa" => args.allow_legacy_dsa = true,
            "--allow-legacy-rsa1024" => args.allow_legacy_rsa1024 = true,
            "--document" => args.document = Some(value("--document")?),
            "--cert" => {
                if pending_cert.is_some() {
                    return Err("--cert must be followed by --cert-region".into());
                }
                pending_cert = Some(value("--cert")?);
            }
            "--cert-region" => {
                let cert = pending_cert
                    .take()
                    .ok_or("--cert-region must follow --cert")?;
                let regions = value("--cert-region")?
                    .split(',')
                    .map(|r| r.parse().map_err(|_| format!("invalid region {r:?}")))
                    .collect::<Result<Vec<Region>, String>>()?;
                args.certs.push((cert, regions));
            }
            "--token" => args.token = Some(value("--token")?),
            "--facts" => args.facts = Some(value("--facts")?),
            "-h" | "--help" => {
                args.help = true;
                return Ok(args);
            }
            flag if flag.starts_with("--") => return Err(format!("unknown flag {flag}")),
            file => {
                if args.input.replace(file.to_owned()).is_some() {
                    return Err("only one input file".into());
                }
            }
        }
    }
    if pending_cert.is_some() {
        return Err("--cert needs --cert-region".into());
    }
    if args.facts.is_some() && args.token.is_none() {
        return Err("--facts needs --token (the matched rule decides the bounds)".into());
    }
    if args.ttl.is_some() && args.token.is_some() {
        return Err("--ttl and --token both set the TTL: set aws_iid_ttl in the token".into());
    }
    match (args.format, args.document.is_some()) {
        (Some(Format::Signature), false) => {
            return Err("--format signature needs --document".into());
        }
        (Some(format), true) if format != Format::Signature => {
            return Err(format!(
                "--document is for --format signature, not {format}"
            ));
        }
        _ => {}
    }
    Ok(args)
}

impl Args {
    /// The format `--cert` adds to: `--format`, else `signature` with `--document`, else
    /// `rsa2048`.
    fn cert_format(&self) -> Format {
        match (self.format, &self.document) {
            (Some(format), _) => format,
            (None, Some(_)) => Format::Signature,
            (None, None) => Format::Rsa2048,
        }
    }
}

fn run(args: &Args) -> Result<String, Failure> {
    let mut trust = TrustStore::aws();
    for (path, regions) in &args.certs {
        let pem = read_file(path)?;
        trust
            .add_pem(args.cert_format(), &pem, regions.iter().cloned())
            .map_err(|e| Failure::Usage(format!("--cert {path}: {e}")))?;
    }
    let blob = read_input(args.input.as_deref())?;
    let document = args.document.as_deref().map(read_file).transpose()?;
    let input = match (&document, args.format) {
        (Some(document), _) => SignedInput::Signature {
            document,
            signature: &blob,
        },
        (None, Some(Format::Pkcs7)) => SignedInput::Pkcs7(&blob),
        (None, Some(Format::Rsa2048)) => SignedInput::Rsa2048(&blob),
        (None, _) => SignedInput::Cms(&blob),
    };
    let options = VerifyOptions::default()
        .allow_legacy_dsa_sha1(args.allow_legacy_dsa)
        .allow_legacy_rsa1024(args.allow_legacy_rsa1024);
    let now = args
        .now
        .unwrap_or_else(|| DateTime::<Utc>::from(std::time::SystemTime::now()));

    let Some(token_path) = &args.token else {
        let verified = verify_input(input, &trust, &options)?;
        if args.now.is_some() || args.ttl.is_some() {
            let ttl = args.ttl.unwrap_or(DEFAULT_TTL);
            check_ttl(
                verified.document().pending_time,
                ttl,
                DEFAULT_MAX_FUTURE_SKEW,
                now,
            )?;
        }
        let host_id = verified.document().host_id();
        return Ok(report(
            verified.content(),
            verified.signer(),
            &host_id,
            None,
        ));
    };
    let builder = Verifier::builder(trust)
        .allow_legacy_dsa_sha1(args.allow_legacy_dsa)
        .allow_legacy_rsa1024(args.allow_legacy_rsa1024);
    let verifier = read_token(token_path, builder)?
        .build()
        .map_err(|e| Failure::Usage(format!("--token {token_path}: {e}")))?;
    let pending = verifier.verify_input(input, now)?;
    let (host_id, matched_rule, instance_checked) = match &args.facts {
        Some(facts_path) => {
            let facts: InstanceFacts = serde_json::from_slice(&read_file(facts_path)?)
                .map_err(|e| Failure::Usage(format!("--facts {facts_path}: {e}")))?;
            // The rule that admits the instance: a later one if the first's bounds fail.
            let outcome = pending.check_facts(Some(&facts))?;
            (outcome.host_id().to_owned(), outcome.matched_rule(), true)
        }
        // What the host id would be: only the instance check grants it.
        None => (pending.document().host_id(), pending.matched_rule(), false),
    };
    let verified = pending.verified();
    Ok(report(
        verified.content(),
        verified.signer(),
        &host_id,
        Some((matched_rule, instance_checked)),
    ))
}

fn report(
    content: &[u8],
    signer: &ec2_iid::Signer,
    host_id: &str,
    policy: Option<(usize, bool)>,
) -> String {
    // The document exactly as AWS wrote it (field names, pendingTime text).
    let document: serde_json::Value = serde_json::from_slice(content).unwrap_or_default();
    let mut output = serde_json::json!({
        "document": document,
        "signer": {
            "format": signer.format.as_str(),
            "region": signer.region.as_str(),
            "serial": signer.serial,
            "signing_time": signer.signing_time.map(|t| t.to_rfc3339()),
        },
        "host_id": host_id,
    });
    if let (Some((index, instance_checked)), Some(object)) = (policy, output.as_object_mut()) {
        object.insert("matched_rule".into(), index.into());
        object.insert("instance_checked".into(), instance_checked.into());
    }
    output.to_string()
}

/// A token resource (`kind: token`, with its expiry) or a bare spec, in YAML or JSON.
fn read_token(path: &str, builder: VerifierBuilder) -> Result<VerifierBuilder, Failure> {
    let bytes = read_file(path)?;
    let bad = |e: &dyn std::fmt::Display| Failure::Usage(format!("--token {path}: {e}"));
    // The top level only tells a resource from a bare spec; the token's own reader then
    // refuses a key given twice anywhere, naming where (YAML's `Value` would name no path).
    let top: serde_json::Value = serde_norway::from_slice(&bytes).map_err(|e| bad(&e))?;
    if top.get("spec").is_some() {
        let resource: TokenResource = serde_norway::from_slice(&bytes).map_err(|e| bad(&e))?;
        Ok(builder.token(&resource))
    } else {
        let spec: TokenSpec = serde_norway::from_slice(&bytes).map_err(|e| bad(&e))?;
        Ok(builder.token_spec(&spec))
    }
}

fn read_input(path: Option<&str>) -> Result<Vec<u8>, Failure> {
    match path {
        None | Some("-") => {
            let mut blob = Vec::new();
            std::io::stdin()
                .take(u64::try_from(ec2_iid::MAX_BLOB_LEN).unwrap_or(u64::MAX) + 1)
                .read_to_end(&mut blob)
                .map_err(|e| Failure::Usage(format!("stdin: {e}")))?;
            Ok(blob)
        }
        Some(path) => read_file(path),
    }
}

fn read_file(path: &str) -> Result<Vec<u8>, Failure> {
    std::fs::read(path).map_err(|e| Failure::Usage(format!("{path}: {e}")))
}
