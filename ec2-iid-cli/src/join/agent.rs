//! `ec2-iid agent`: keeps the instance's certificate in `--out-dir` valid. It joins (a fresh
//! identity document, a new key) only when the directory holds no valid certificate, then
//! renews over mutual TLS (`POST /renew`, a new key each time, no document) at two thirds of
//! each certificate's lifetime, retrying failed renewals with jittered backoff until the
//! certificate expires. A refused renewal (the host was evicted) ends the agent: only a new
//! launch's document can enroll the host again.

use core::time::Duration;
use std::path::Path;
use std::process::ExitCode;
use std::time::SystemTime;

use chrono::{DateTime, Utc};
use ec2_iid::token::parse_go_duration;
use ec2_iid_aws::join::{JoinError, printable};
use x509_parser::prelude::FromDer as _;

use super::credentials::{self, CERT_FILE, KEY_FILE};
use super::{JoinArgs, client_builder};
use crate::out;

/// The flags of `agent`: those of `join` (`--out-dir` required) and the renewal schedule.
#[derive(Clone, Debug, clap::Args)]
pub(crate) struct AgentArgs {
    #[command(flatten)]
    join: JoinArgs,

    /// Wait this long before each renewal instead of until two thirds of the certificate's
    /// lifetime (tests; production keeps the default).
    #[arg(long, value_name = "DURATION", value_parser = parse_go_duration, hide = true)]
    renew_after: Option<Duration>,
}

/// The certificate in the directory: its key and chain (PEM) and validity.
struct Held {
    key_pem: Vec<u8>,
    chain_pem: Vec<u8>,
    not_before: DateTime<Utc>,
    not_after: DateTime<Utc>,
}

/// Runs until SIGTERM or Ctrl-C (exit 0), or a refusal (exit 1) or failure (exit 3) it cannot
/// recover from; `Err` is a usage error (exit 2).
///
/// # Errors
/// The usage error to print (as `join`'s), or no `--out-dir`.
pub(crate) fn run(args: AgentArgs) -> Result<ExitCode, String> {
    let dir = args
        .join
        .out_dir
        .clone()
        .ok_or("agent needs --out-dir DIR: where the key and certificates are kept")?;
    credentials::check_dir(&dir)?;
    // Checks the flags once, before the first wait.
    client_builder(&args.join)?
        .build()
        .map_err(|e| e.to_string())?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    Ok(runtime.block_on(async {
        let stopped = stop_signal();
        tokio::pin!(stopped);
        tokio::select! {
            code = keep_valid(&args, &dir) => code,
            () = &mut stopped => ExitCode::SUCCESS,
        }
    }))
}

/// The agent's loop; returns only when it cannot go on.
async fn keep_valid(args: &AgentArgs, dir: &Path) -> ExitCode {
    let mut backoff = Duration::from_secs(1);
    loop {
        let now = DateTime::<Utc>::from(SystemTime::now());
        let held = match read_held(dir) {
            Ok(held) => held.filter(|held| held.not_after > now),
            Err(e) => {
                eprintln!("error: {}", printable(&e));
                return ExitCode::from(3);
            }
        };
        let Some(held) = held else {
            // No valid certificate: join with a fresh document.
            match super::join_once(&args.join, dir).await {
                ExitCode::SUCCESS => continue,
                failed => return failed,
            }
        };
        sleep_until(renew_at(&held, args.renew_after, now)).await;
        match renew(args, dir, &held).await {
            Ok(()) => backoff = Duration::from_secs(1),
            Err(Renewal::Refused(kind)) => {
                eprintln!(
                    "refused: renewal {}: only a new launch's document can join this host again",
                    printable(&kind)
                );
                return ExitCode::FAILURE;
            }
            Err(Renewal::Failed(e)) => {
                // Retry until the certificate expires; then the loop joins.
                let left = held.not_after.signed_duration_since(Utc::now());
                let wait = backoff.min(left.to_std().unwrap_or_default() / 4);
                eprintln!("renewal failed: {}; retrying in {wait:?}", printable(&e));
                tokio::time::sleep(jittered(wait)).await;
                backoff = (backoff * 2).min(Duration::from_secs(60));
            }
        }
    }
}

/// Why a renewal did not succeed.
enum Renewal {
    /// The server refused it (its kind): retrying does not help.
    Refused(String),
    /// Anything else: retry.
    Failed(String),
}

/// One renewal: a new key, the current certificate presented; the new files written.
async fn renew(args: &AgentArgs, dir: &Path, held: &Held) -> Result<(), Renewal> {
    let key = credentials::Key::generate().map_err(Renewal::Failed)?;
    let client = client_builder(&args.join)
        .map_err(Renewal::Failed)?
        .client_certificate(&held.chain_pem, &held.key_pem)
        .csr(key.csr_pem())
        .build()
        .map_err(|e| Renewal::Failed(e.to_string()))?;
    let renewed = client.renew().await.map_err(|e| match e {
        JoinError::Refused { kind, .. } => Renewal::Refused(kind),
        e => Renewal::Failed(e.to_string()),
    })?;
    credentials::write(dir, &key, &renewed).map_err(Renewal::Failed)?;
    out(printable(&credentials::summary(&renewed)));
    Ok(())
}

/// When to renew `held`: two thirds into its lifetime, or `renew_after` from `now`.
fn renew_at(held: &Held, renew_after: Option<Duration>, now: DateTime<Utc>) -> DateTime<Utc> {
    match renew_after.and_then(|d| chrono::TimeDelta::from_std(d).ok()) {
        Some(after) => now + after,
        None => {
            let lifetime = held.not_after.signed_duration_since(held.not_before);
            held.not_before + lifetime * 2 / 3
        }
    }
}

async fn sleep_until(at: DateTime<Utc>) {
    let wait = at
        .signed_duration_since(Utc::now())
        .to_std()
        .unwrap_or_default();
    tokio::time::sleep(wait).await;
}

/// `wait` plus or minus up to a quarter, so that a fleet renewing together spreads out.
fn jittered(wait: Duration) -> Duration {
    let mut byte = [0; 1];
    let _ = getrandom::fill(&mut byte);
    let quarter = wait / 4;
    wait - quarter + quarter * 2 * u32::from(byte[0]) / 255
}

/// The key and certificate in `dir`, if both are there; `Err` if they are there but unusable.
fn read_held(dir: &Path) -> Result<Option<Held>, String> {
    let read = |name: &str| match std::fs::read(dir.join(name)) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("{}: {e}", dir.join(name).display())),
    };
    let (Some(key_pem), Some(chain_pem)) = (read(KEY_FILE)?, read(CERT_FILE)?) else {
        return Ok(None);
    };
    let unusable = |why: &str| format!("{}: {why}", dir.join(CERT_FILE).display());
    let (_, pem) = x509_parser::pem::parse_x509_pem(&chain_pem)
        .map_err(|_| unusable("not a PEM certificate"))?;
    let (_, cert) = x509_parser::certificate::X509Certificate::from_der(&pem.contents)
        .map_err(|_| unusable("not an X.509 certificate"))?;
    let time = |t: x509_parser::time::ASN1Time| {
        DateTime::from_timestamp(t.timestamp(), 0).ok_or_else(|| unusable("validity out of range"))
    };
    Ok(Some(Held {
        not_before: time(cert.validity().not_before)?,
        not_after: time(cert.validity().not_after)?,
        key_pem,
        chain_pem,
    }))
}

/// Resolves on SIGTERM or SIGINT.
async fn stop_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return core::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(lifetime_secs: i64) -> Held {
        let not_before = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        Held {
            key_pem: Vec::new(),
            chain_pem: Vec::new(),
            not_before,
            not_after: not_before + chrono::TimeDelta::seconds(lifetime_secs),
        }
    }

    #[test]
    fn renews_at_two_thirds_of_the_lifetime_unless_told() {
        let h = held(3600);
        let now = h.not_before + chrono::TimeDelta::seconds(60);
        assert_eq!(
            renew_at(&h, None, now),
            h.not_before + chrono::TimeDelta::seconds(2400)
        );
        assert_eq!(
            renew_at(&h, Some(Duration::from_secs(5)), now),
            now + chrono::TimeDelta::seconds(5)
        );
    }

    #[test]
    fn jitter_stays_within_a_quarter() {
        for _ in 0..100 {
            let j = jittered(Duration::from_secs(8));
            assert!(
                j >= Duration::from_secs(6) && j <= Duration::from_secs(10),
                "{j:?}"
            );
        }
    }
}
