//! `ec2-iid serve`: the join server. `POST /join` with an instance's `/rsa2048` text verifies
//! it (AWS's certificates and any `--cert`), applies the token's allow rules and TTL, asks EC2
//! about the instance (`DescribeInstances`, paced and batched, assuming the rule's role with its
//! external id) and lets each instance launch join once (`--registry`). Answers:
//!
//! * 200 `{"host_id": "<account>-<instance>", "matched_rule": N}`: joined;
//! * 400 `malformed`: not a signed identity document; 413 `too_large`: over
//!   `ec2_iid::MAX_BLOB_LEN`;
//! * 403 KIND (the `ErrorKind`, e.g. `no_rule_matched`, `stale`, `already_joined`): refused;
//! * 503 with `Retry-After` (`lookup_unavailable`, `registry_unavailable`, `timeout`): may
//!   pass later;
//! * 500 (`lookup_failed`, `registry_failed`): the server's own configuration.
//!
//! `GET /metrics` (Prometheus text) and `GET /healthz` (`ok`) are for the operator.

mod app;
mod args;
mod bounded;
mod lookup;
mod metrics;
mod registry;

use std::process::ExitCode;
use std::sync::Arc;

use aws_config::{BehaviorVersion, SdkConfig};
use clap::ArgMatches;
use ec2_iid::{Format, TrustStore, Verifier};
use ec2_iid_aws::Ec2Lookup;

pub(crate) use self::args::ServeArgs;
use self::args::ServeOptions;
use self::lookup::Lookup;
use self::registry::Registry;
use crate::setup::{read_file, read_verifier};

/// Exit codes of `serve`.
pub(crate) const EXIT_CODES: &str = "Exit codes: 2 usage or setup error (flags, files, the \
registry, the listen address), 1 the server failed after it started; it runs until \
interrupted (Ctrl-C: exit 0).";

/// Runs the server until Ctrl-C; `Err` is a usage or setup error (exit 2).
///
/// # Errors
/// The error to print: invalid flags or files, an unusable registry or listen address.
pub(crate) fn run(args: ServeArgs, matches: &ArgMatches) -> Result<ExitCode, String> {
    let options = ServeOptions::new(args, matches)?;
    let verifier = read_verifier_with_certs(&options)?;
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    runtime.block_on(serve(options, verifier))
}

/// The trust store (AWS's certificates plus `--cert`) and the token's verifier.
fn read_verifier_with_certs(options: &ServeOptions) -> Result<Verifier, String> {
    let mut trust = TrustStore::aws();
    for (path, regions) in &options.certs {
        let pem = read_file(path)?;
        trust
            .add_pem(Format::Rsa2048, &pem, regions.iter().cloned())
            .map_err(|e| format!("--cert {}: {e}", path.display()))?;
    }
    read_verifier(&options.token, trust, false)
}

async fn serve(options: ServeOptions, verifier: Verifier) -> Result<ExitCode, String> {
    let config = aws_config::load_defaults(BehaviorVersion::latest()).await;
    // --endpoint-url sends the registry's DynamoDB calls to the same emulator as EC2's.
    let registry_config = match &options.endpoint_url {
        Some(url) => config.to_builder().endpoint_url(url).build(),
        None => config.clone(),
    };
    let registry = Registry::open(&options.registry, &registry_config).await?;
    let app = Arc::new(app::App {
        verifier,
        lookup: Lookup::new(ec2_lookup(&options, &config)?, &options.pacing)?,
        registry,
        metrics: metrics::Metrics::default(),
        timeout: options.timeout,
    });
    let listener = tokio::net::TcpListener::bind(&options.listen)
        .await
        .map_err(|e| format!("--listen {}: {e}", options.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    crate::out(format_args!("listening on {addr}"));
    let shutdown = async {
        // Without a signal handler the server runs until killed.
        if tokio::signal::ctrl_c().await.is_err() {
            core::future::pending::<()>().await;
        }
    };
    match axum::serve(listener, app::router(app))
        .with_graceful_shutdown(shutdown)
        .await
    {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) => {
            tracing::error!("server failed: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// The EC2 lookup of the flags: `--timeout` per AWS call, `--endpoint-url`, `--external-id`.
fn ec2_lookup(options: &ServeOptions, config: &SdkConfig) -> Result<Ec2Lookup, String> {
    let mut builder = Ec2Lookup::builder(config).timeout(options.timeout);
    if let Some(url) = &options.endpoint_url {
        builder = builder.endpoint_url(url);
    }
    for external in &options.external_ids {
        builder = builder.external_id(external.role_arn.clone(), &external.id);
    }
    builder
        .build()
        .map_err(|e| format!("--external-id or --timeout: {e}"))
}

/// An error and its sources, `: `-separated, for the log.
fn error_chain(e: &(dyn core::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
