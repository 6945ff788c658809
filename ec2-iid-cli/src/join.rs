//! `ec2-iid join`: fetch this instance's identity document from IMDS and send it to a join
//! server (`ec2_iid_aws::join`), retrying 503 answers and connection errors until the deadline.
//! Everything printed that came from the server goes through `ec2_iid_aws::join::printable`.
//!
//! With `--out-dir`, the instance asks for a certificate: a P-256 key is made here (it never
//! leaves the instance), its CSR goes with the document, and the key, the certificate and the
//! CA bundle are written to the directory ([`credentials`]).

pub(crate) mod agent;
mod credentials;

use core::time::Duration;
use std::path::Path;
use std::process::ExitCode;

use ec2_iid::Format;
use ec2_iid::token::parse_go_duration;
use ec2_iid_aws::imds::ImdsFetcher;
use ec2_iid_aws::join::{
    DEFAULT_MAX_ATTEMPTS, JoinClient, JoinClientBuilder, JoinConfigError, JoinError, printable,
};

use crate::out;

/// Exit codes of `join`.
pub(crate) const EXIT_CODES: &str = "Exit codes: 0 joined, 1 refused (400, 403, 413), 2 usage \
error, 3 IMDS failed, the server could not be reached in time, or (--out-dir) the certificate \
could not be written.";

/// The flags of `join`.
#[derive(Clone, Debug, clap::Args)]
pub(crate) struct JoinArgs {
    /// The join server's base URL, e.g. https://join.internal:8443: the document is posted
    /// to URL/join.
    #[arg(long, value_name = "URL")]
    server: String,

    /// Also trust the CA certificates of this PEM file for an https:// server (default: the
    /// system's root certificates only).
    #[arg(long, value_name = "PEM")]
    ca_cert: Option<std::path::PathBuf>,

    /// The document fetched and sent: the /rsa2048 or the /pkcs7 text (signature is not
    /// supported: the server takes one text).
    #[arg(long, value_name = "rsa2048|pkcs7", default_value = "rsa2048", value_parser = parse_format)]
    format: Format,

    /// The time the join may take, the IMDS fetch and the retries included, a Go duration
    /// such as 30s or 2m.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_go_duration)]
    deadline: Duration,

    /// The IMDS endpoint (default: AWS_EC2_METADATA_SERVICE_ENDPOINT, else
    /// http://169.254.169.254).
    #[arg(long, value_name = "URL")]
    imds_endpoint: Option<String>,

    /// The most requests to the server (retries included), for a long --deadline.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_ATTEMPTS,
          value_parser = clap::value_parser!(u32).range(1..))]
    max_attempts: u32,

    /// Send the document over plain http:// to another host than this one: anyone on the
    /// path can read it and join with it first. Without it, http:// is refused except to
    /// localhost, 127.0.0.0/8 and ::1.
    #[arg(long)]
    insecure_http: bool,

    /// Ask for a certificate (the server needs --ca-cert): make a P-256 key here, send its CSR
    /// with the document, and write key.pem (mode 0600), cert.pem (the certificate, then the
    /// intermediate CAs) and bundle.pem (the CA certificates to trust) into DIR, each
    /// replaced atomically. DIR must exist.
    #[arg(long, value_name = "DIR")]
    out_dir: Option<std::path::PathBuf>,
}

/// Joins; `Err` is a usage error (exit 2).
///
/// # Errors
/// The usage error to print: an invalid `--server` (or an `http://` one off this host without
/// `--insecure-http`), `--imds-endpoint`, `--ca-cert` or `--out-dir` (not a directory).
pub(crate) fn run(args: JoinArgs) -> Result<ExitCode, String> {
    if let Some(dir) = &args.out_dir {
        credentials::check_dir(dir)?;
    }
    let client = build(client_builder(&args)?, &args)?;
    if client.is_insecure_http() {
        eprintln!(
            "warning: --insecure-http: the identity document goes to {} in plain HTTP, readable \
             by anyone on the path, who can join with it first",
            client.url()
        );
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    match &args.out_dir {
        Some(dir) => Ok(runtime.block_on(join_once(&args, dir))),
        None => Ok(match runtime.block_on(client.join()) {
            Ok(joined) => {
                out(printable(joined.body()));
                ExitCode::SUCCESS
            }
            Err(e) => failed(e),
        }),
    }
}

/// A client builder with `args`' server, CA, IMDS, format, deadline and attempts.
///
/// # Errors
/// The usage error to print: an invalid `--imds-endpoint`, or `--ca-cert` unreadable.
pub(crate) fn client_builder(args: &JoinArgs) -> Result<JoinClientBuilder, String> {
    let fetcher = match &args.imds_endpoint {
        Some(url) => ImdsFetcher::builder()
            .endpoint(url)
            .build()
            .map_err(|e| format!("--imds-endpoint: {e}"))?,
        None => ImdsFetcher::new(),
    };
    let mut builder = JoinClient::builder(&args.server);
    if let Some(path) = &args.ca_cert {
        let pem = std::fs::read(path).map_err(|e| format!("--ca-cert {}: {e}", path.display()))?;
        builder = builder.ca_certificates_pem(&pem);
    }
    Ok(builder
        .fetcher(fetcher)
        .format(args.format)
        .deadline(args.deadline)
        .max_attempts(args.max_attempts)
        .allow_insecure_http(args.insecure_http))
}

/// `builder` built, its errors as the flags' usage errors.
fn build(builder: JoinClientBuilder, args: &JoinArgs) -> Result<JoinClient, String> {
    builder.build().map_err(|e| match e {
        JoinConfigError::InvalidCaCertificates => format!("--ca-cert: {e}"),
        JoinConfigError::InsecureHttp { .. } => format!(
            "--server {:?}: plain http:// to another host than this one lets anyone on the \
             path read the identity document and join with it first: use https://, or pass \
             --insecure-http to send it anyway",
            args.server
        ),
        e => format!("--server: {e}"),
    })
}

/// Joins with a new key and writes it, the certificate and the bundle into `dir`; one key
/// per call, so every retry sends the same CSR and the server sees the same requester.
pub(crate) async fn join_once(args: &JoinArgs, dir: &Path) -> ExitCode {
    let prepared = credentials::Key::generate().and_then(|key| {
        let client = build(client_builder(args)?.csr(key.csr_pem()), args)?;
        Ok((key, client))
    });
    let (key, client) = match prepared {
        Ok(prepared) => prepared,
        Err(e) => {
            eprintln!("error: {}", printable(&e));
            return ExitCode::from(2);
        }
    };
    match client.join().await {
        Ok(joined) => match credentials::write(dir, &key, &joined) {
            Ok(()) => {
                out(printable(&credentials::summary(&joined)));
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {}", printable(&e));
                ExitCode::from(3)
            }
        },
        Err(e) => failed(e),
    }
}

/// A join that failed: 1 refused, 2 a setting, 3 anything else; the refusal's JSON printed.
fn failed(e: JoinError) -> ExitCode {
    match e {
        JoinError::Refused { kind, body, .. } => {
            if serde_json::from_str::<serde_json::Value>(&body).is_ok() {
                out(printable(&body));
            }
            eprintln!("refused: {}", printable(&kind));
            ExitCode::FAILURE
        }
        JoinError::Config(e) => {
            eprintln!("error: {}", printable(&e.to_string()));
            ExitCode::from(2)
        }
        e => {
            eprintln!("error: {}", printable(&e.to_string()));
            ExitCode::from(3)
        }
    }
}

fn parse_format(text: &str) -> Result<Format, String> {
    match text {
        "rsa2048" => Ok(Format::Rsa2048),
        "pkcs7" => Ok(Format::Pkcs7),
        "signature" => Err(
            "join sends one text: --format rsa2048 or pkcs7 (the join server \
                            does not take the /document and /signature pair)"
                .into(),
        ),
        _ => Err(format!("unsupported --format {text:?}: rsa2048 or pkcs7")),
    }
}
