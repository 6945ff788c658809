//! `ec2-iid serve`: the join server. `POST /join` with an instance's `/rsa2048` text verifies
//! it (AWS's certificates and any `--cert`), applies the token's allow rules and TTL, asks EC2
//! about the instance (`DescribeInstances`, paced and batched, assuming the rule's role with its
//! external id) and lets each instance launch join once (`--registry`). Answers:
//!
//! * 200 `{"host_id": "<account>-<instance>", "matched_rule": N}`: joined;
//! * 400 `malformed`: not a signed identity document; 413 `too_large`: over
//!   `ec2_iid::MAX_BLOB_LEN`; 408 `body_timeout`: not received within `--body-read-timeout`;
//! * 403 KIND (the `ErrorKind`, e.g. `no_rule_matched`, `stale`, `already_joined`): refused;
//! * 503 with `Retry-After` (`lookup_unavailable`, `registry_unavailable`, `timeout`, and
//!   `overloaded` past `--max-inflight-joins`): may pass later;
//! * 500 (`lookup_failed`, `registry_failed`): the server's own configuration.
//!
//! With `--ca-cert`, a body `{"document", "csr"}` also gets a certificate for the CSR's key
//! (`issue`): 200 adds `grant`, `spiffe_id`, `serial`, `not_after`, `certificate` and `bundle`;
//! a refused CSR is 400 with its kind (`csr_malformed`, `csr_weak_key`, ...), a CSR without
//! `--ca-cert` 400 `issuance_disabled`. `GET /bundle` serves the CA certificates to trust.
//!
//! `GET /metrics` (Prometheus text) and `GET /healthz` (`ok`) are for the operator.
//!
//! The parts: `app` (the routes and the join's answers), `failure` (every refusal's
//! answer), `bounded` (`--timeout`), `lookup`, `registry`, `metrics`, `enrolled` (the enrolled
//! hosts' gauge, counted in the background every `--enrolled-hosts-refresh`); at the edge,
//! `listener` (the serving loop: accept, HTTP/1 per
//! connection, graceful shutdown on SIGTERM/SIGINT within `--shutdown-grace`), `connections`
//! (`--max-connections`, the idle and header-read timeouts), `body_deadline`
//! (`--body-read-timeout`), `overload` (`--max-inflight-joins`) and `tls` (`--tls-cert`,
//! reloaded on SIGHUP). Plain HTTP is served on loopback only, unless `--insecure-http`.

mod app;
mod args;
mod body_deadline;
mod bounded;
mod connections;
mod enrolled;
mod failure;
mod issue;
mod listener;
mod lookup;
mod metrics;
mod overload;
pub(crate) mod registry;
mod renew;
mod tls;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use aws_config::{BehaviorVersion, SdkConfig};
use clap::ArgMatches;
use ec2_iid::{Format, TrustStore, Verifier};
use ec2_iid_aws::Ec2Lookup;

pub(crate) use self::args::ServeArgs;
use self::args::ServeOptions;
pub(crate) use self::args::{RegistrySpec, parse_secs};
use self::lookup::Lookup;
use self::registry::Registry;
use crate::setup::{read_file, read_verifier};

/// Exit codes of `serve`.
pub(crate) const EXIT_CODES: &str = "Exit codes: 2 usage or setup error (flags, files, the \
registry, the listen address, the TLS files), 1 the server failed after it started; it runs \
until SIGTERM or Ctrl-C (exit 0 once the requests in flight are answered, within \
--shutdown-grace).";

/// Runs the server until SIGTERM or Ctrl-C; `Err` is a usage or setup error (exit 2).
///
/// # Errors
/// The error to print: invalid flags or files, an unusable registry or listen address.
pub(crate) fn run(args: ServeArgs, matches: &ArgMatches) -> Result<ExitCode, String> {
    let options = ServeOptions::new(args, matches)?;
    let verifier = read_verifier_with_certs(&options)?;
    let tls = options
        .tls
        .as_ref()
        .map(|files| tls::CertReloader::new(files).map(Arc::new))
        .transpose()?;
    let issuance = options.ca.as_ref().map(issue::Issuance::open).transpose()?;
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    runtime.block_on(serve(options, verifier, tls, issuance))
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

async fn serve(
    options: ServeOptions,
    verifier: Verifier,
    tls: Option<Arc<tls::CertReloader>>,
    issuance: Option<issue::Issuance>,
) -> Result<ExitCode, String> {
    let config = aws_config::load_defaults(BehaviorVersion::latest()).await;
    // --endpoint-url sends the registry's DynamoDB calls to the same emulator as EC2's.
    let registry_config = match &options.endpoint_url {
        Some(url) => config.to_builder().endpoint_url(url).build(),
        None => config.clone(),
    };
    let registry = Registry::open(&options.registry, &registry_config, options.timeout).await?;
    // With a CA, clients may present its certificates (mutual TLS), for `POST /renew`.
    let client_roots = issuance.as_ref().map(|i| i.bundle_pem().to_owned());
    let app = Arc::new(app::App {
        verifier,
        lookup: Lookup::new(ec2_lookup(&options, &config)?, &options.pacing)?,
        registry,
        metrics: metrics::Metrics::default(),
        timeout: options.timeout,
        issuance,
        renew_check_instance: options.renew_check_instance,
    });
    if let Some(every) = options.enrolled_hosts_refresh {
        tokio::spawn(enrolled::refresh(Arc::clone(&app), every));
    }
    let listener = tokio::net::TcpListener::bind(&options.listen)
        .await
        .map_err(|e| format!("--listen {}: {e}", options.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    check_plain_http(addr, tls.is_some(), options.insecure_http)?;
    let listener_metrics = Arc::clone(&app.metrics.listener);
    let acceptor = match &tls {
        Some(reloader) => {
            tokio::spawn(tls::reload_on_sighup(
                Arc::clone(reloader),
                Arc::clone(&listener_metrics),
            ));
            Some(reloader.acceptor(client_roots.as_deref())?)
        }
        None => None,
    };
    let shutdown = listener::shutdown_signal();
    crate::out(format_args!("listening on {addr}"));
    let router = app::router(app, options.limits.max_inflight_joins);
    listener::serve(
        listener,
        router,
        acceptor,
        options.limits,
        listener_metrics,
        shutdown,
    )
    .await;
    Ok(ExitCode::SUCCESS)
}

/// Plain HTTP only on loopback, unless `--insecure-http` (then a warning): a document sent
/// in clear can be read, and raced to the server, by anyone on the path.
fn check_plain_http(addr: SocketAddr, tls: bool, insecure_http: bool) -> Result<(), String> {
    if tls || addr.ip().is_loopback() {
        return Ok(());
    }
    if !insecure_http {
        return Err(format!(
            "--listen {addr}: not a loopback address and no TLS: give --tls-cert and --tls-key, \
             or --insecure-http to serve plain HTTP anyway"
        ));
    }
    tracing::warn!(
        "--insecure-http: serving plain HTTP on {addr}; identity documents cross the network \
         readable by anyone on the path"
    );
    Ok(())
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
    if let Some(role) = &options.organizations_role {
        builder = builder.organizations_role(role.clone());
    }
    if let Some(path) = &options.organization_accounts {
        let text = std::fs::read(path)
            .map_err(|e| format!("--organization-accounts {}: {e}", path.display()))?;
        let directory = ec2_iid_aws::OrganizationDirectory::from_json(&text)
            .map_err(|e| format!("--organization-accounts {}: {e}", path.display()))?;
        builder = builder.organization_directory(directory);
    }
    builder
        .build()
        .map_err(|e| format!("--external-id or --timeout: {e}"))
}

/// An error and its sources, `: `-separated, for the log.
pub(crate) fn error_chain(e: &(dyn core::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
