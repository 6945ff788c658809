//! `ec2-iid registry`: the enrollment records of a shared registry (`--registry` as `serve`
//! takes it): `list`, `show HOST_ID`, `evict HOST_ID`, `purge --older-than DURATION`.

use core::time::Duration;
use std::process::ExitCode;

use aws_config::BehaviorVersion;
use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use ec2_iid::token::parse_go_duration;
use ec2_iid::{Enrollment, EnrollmentRegistry as _, MAX_LIST_LIMIT};
use serde_json::{Value, json};

use crate::serve::registry::{Registry, RegistryError};
use crate::serve::{RegistrySpec, parse_secs};

/// Exit codes of `registry`.
pub(crate) const EXIT_CODES: &str = "Exit codes: 0 done, 1 `show` or `evict` of a host with no \
record, 2 usage or setup error (flags, the registry unreachable or failing).";

/// The flags of `registry`.
#[derive(Debug, clap::Args)]
pub(crate) struct RegistryArgs {
    /// The registry `serve --registry` uses: postgres:URL or dynamodb:TABLE (memory is one
    /// process's own, so there is nothing to read here).
    #[arg(long, global = true, value_name = "postgres:URL|dynamodb:TABLE",
          value_parser = RegistrySpec::parse)]
    registry: Option<RegistrySpec>,

    /// Send DynamoDB calls to URL instead of AWS's regional endpoint (an emulator such as
    /// moto).
    #[arg(long, global = true, value_name = "URL")]
    endpoint_url: Option<String>,

    /// The time each registry call may take, in whole seconds.
    #[arg(long, global = true, value_name = "SECS", default_value = "10",
          value_parser = parse_secs)]
    timeout: Duration,

    #[command(subcommand)]
    command: RegistryCommand,
}

#[derive(Debug, clap::Subcommand)]
enum RegistryCommand {
    /// One line per enrolled host, by host id: host id, rule, first joined, last renewed,
    /// certificate serial, not after, evicted.
    List {
        /// Print a JSON array, one object per host.
        #[arg(long)]
        json: bool,
        /// Print at most N hosts (default: all).
        #[arg(long, value_name = "N")]
        limit: Option<usize>,
    },
    /// A host's enrollment record (exit 1 if there is none).
    Show {
        /// `<accountId>-<instanceId>`.
        host_id: String,
        /// Print a JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Refuse the host's renewals from now on; it may join again only with a newer launch's
    /// document (exit 1 if there is no record).
    Evict {
        /// `<accountId>-<instanceId>`.
        host_id: String,
    },
    /// Delete the enrollment records not renewed (nor joined) for DURATION, evicted or not,
    /// and the expired join claims.
    Purge {
        /// A Go duration such as 720h or 30m.
        #[arg(long, value_name = "DURATION", value_parser = parse_go_duration)]
        older_than: Duration,
    },
}

/// Runs `registry`; `Err` is a usage or setup error (exit 2).
///
/// # Errors
/// The error to print: no or an unusable `--registry`, a registry that failed.
pub(crate) fn run(args: RegistryArgs) -> Result<ExitCode, String> {
    let spec = match args.registry {
        None => return Err("--registry postgres:URL or dynamodb:TABLE is required".into()),
        Some(RegistrySpec::Memory) => {
            return Err(
                "--registry memory: a memory registry lives inside one serve process \
                        and cannot be read from here; give postgres:URL or dynamodb:TABLE"
                    .into(),
            );
        }
        Some(spec) => spec,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    runtime.block_on(async {
        let mut config = aws_config::load_defaults(BehaviorVersion::latest()).await;
        if let Some(url) = &args.endpoint_url {
            config = config.to_builder().endpoint_url(url).build();
        }
        let registry = Registry::connect(&spec, &config, args.timeout)?;
        let now = Utc::now();
        match args.command {
            RegistryCommand::List { json, limit } => list(&registry, json, limit).await,
            RegistryCommand::Show { host_id, json } => show(&registry, &host_id, json).await,
            RegistryCommand::Evict { host_id } => evict(&registry, &host_id, now).await,
            RegistryCommand::Purge { older_than } => purge(&registry, older_than, now).await,
        }
        .map_err(|e| failed(&e))
    })
}

/// A registry that failed, with what to check.
fn failed(e: &RegistryError) -> String {
    let text = e.to_string();
    if text.contains("42P01") || text.contains("not found") {
        format!(
            "{text} (the registry's tables are made by `ec2-iid serve` with the same \
             --registry; check the settings or the table name)"
        )
    } else {
        text
    }
}

/// `list`: pages of [`MAX_LIST_LIMIT`], printed as they come.
async fn list(
    registry: &Registry,
    json: bool,
    limit: Option<usize>,
) -> Result<ExitCode, RegistryError> {
    let mut left = limit.unwrap_or(usize::MAX);
    let mut after: Option<String> = None;
    let mut first = true;
    if json {
        crate::out("[");
    }
    while left > 0 {
        let page = registry
            .list(after.as_deref(), left.min(MAX_LIST_LIMIT))
            .await?;
        for record in &page {
            if json {
                let comma = if first { "" } else { "," };
                crate::out(format_args!("{comma}{}", to_json(record)));
            } else {
                crate::out(text_line(record));
            }
            first = false;
        }
        left = left.saturating_sub(page.len());
        match page.last() {
            Some(last) if page.len() == MAX_LIST_LIMIT => after = Some(last.host_id.clone()),
            _ => break,
        }
    }
    if json {
        crate::out("]");
    }
    Ok(ExitCode::SUCCESS)
}

/// `show`.
async fn show(registry: &Registry, host_id: &str, json: bool) -> Result<ExitCode, RegistryError> {
    let Some(record) = registry.get(host_id).await? else {
        return Ok(unknown(host_id));
    };
    if json {
        crate::out(to_json(&record));
    } else {
        crate::out(text_line(&record));
        crate::out(format_args!(
            "account={} region={} instance_id={} launched={}",
            escaped(&record.account),
            escaped(&record.region),
            escaped(&record.instance_id),
            time(record.pending_time),
        ));
    }
    Ok(ExitCode::SUCCESS)
}

/// `evict`.
async fn evict(
    registry: &Registry,
    host_id: &str,
    now: DateTime<Utc>,
) -> Result<ExitCode, RegistryError> {
    if !registry.evict(host_id, now).await? {
        return Ok(unknown(host_id));
    }
    crate::out(format_args!(
        "evicted {}: its renewals are refused; it may join again only with a newer launch",
        escaped(host_id)
    ));
    Ok(ExitCode::SUCCESS)
}

/// `purge`.
async fn purge(
    registry: &Registry,
    older_than: Duration,
    now: DateTime<Utc>,
) -> Result<ExitCode, RegistryError> {
    let cutoff = TimeDelta::from_std(older_than)
        .ok()
        .and_then(|d| now.checked_sub_signed(d))
        .unwrap_or(DateTime::<Utc>::MIN_UTC);
    let records = registry.purge(cutoff).await?;
    let claims = registry.purge_expired(now).await?;
    crate::out(format_args!(
        "purged {records} enrollment records last seen before {} and {claims} expired join claims",
        time(cutoff)
    ));
    Ok(ExitCode::SUCCESS)
}

/// A host with no record: exit 1.
fn unknown(host_id: &str) -> ExitCode {
    eprintln!(
        "error: no enrollment record of host {} (list shows the enrolled hosts)",
        escaped(host_id)
    );
    ExitCode::from(1)
}

/// `list`'s and `show`'s line.
fn text_line(record: &Enrollment) -> String {
    format!(
        "{} rule={} first_joined={} last_renewed={} serial={} not_after={} evicted={}",
        escaped(&record.host_id),
        record.matched_rule,
        time(record.first_joined),
        record.last_renewed.map_or_else(|| "-".to_owned(), time),
        escaped(&record.serial),
        time(record.not_after),
        record.evicted_at.map_or_else(|| "-".to_owned(), time),
    )
}

/// A record as JSON; its texts bounded (serde_json escapes them).
fn to_json(record: &Enrollment) -> Value {
    json!({
        "host_id": bounded(&record.host_id),
        "account": bounded(&record.account),
        "region": bounded(&record.region),
        "instance_id": bounded(&record.instance_id),
        "matched_rule": record.matched_rule,
        "pending_time": time(record.pending_time),
        "first_joined": time(record.first_joined),
        "last_renewed": record.last_renewed.map(time),
        "serial": bounded(&record.serial),
        "not_after": time(record.not_after),
        "evicted_at": record.evicted_at.map(time),
    })
}

/// RFC 3339 in UTC, whole seconds unless there is a fraction.
fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// Stored text (it came from documents), at most 64 characters.
fn bounded(text: &str) -> String {
    const MAX_CHARS: usize = 64;
    let mut cut: String = text.chars().take(MAX_CHARS).collect();
    if text.chars().nth(MAX_CHARS).is_some() {
        cut.push('…');
    }
    cut
}

/// [`bounded`], control characters and spaces escaped, for a text line.
fn escaped(text: &str) -> String {
    bounded(text)
        .escape_debug()
        .to_string()
        .replace(' ', "\\u{20}")
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone as _;

    use super::*;

    #[test]
    fn lines_are_escaped_and_bounded() {
        let t = Utc.with_ymd_and_hms(2026, 11, 1, 12, 0, 0).unwrap();
        let mut record = Enrollment::joined(
            "h\u{1b}[31m x",
            "123456789012",
            "us-east-1",
            "i-0abc",
            2,
            t,
            "0a",
            t,
            t,
        );
        record.evicted_at = Some(t);
        assert_eq!(
            text_line(&record),
            "h\\u{1b}[31m\\u{20}x rule=2 first_joined=2026-11-01T12:00:00Z last_renewed=- \
             serial=0a not_after=2026-11-01T12:00:00Z evicted=2026-11-01T12:00:00Z"
        );
        let long = "a".repeat(100);
        assert_eq!(bounded(&long), format!("{}…", "a".repeat(64)));
        assert_eq!(bounded(&long[..64]), "a".repeat(64));
        assert_eq!(to_json(&record)["last_renewed"], Value::Null);
        assert_eq!(to_json(&record)["matched_rule"], 2);
    }
}
