//! The flags `verify` and `explain` share, and the checks clap cannot express: `--cert` and
//! `--cert-region` come in ordered pairs, and some flags exclude or need others.

use core::time::Duration;
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use clap::ArgMatches;
use ec2_iid::Format;
use ec2_iid::ids::Region;
use ec2_iid::token::parse_go_duration;

/// The flags of `verify` and `explain`.
#[derive(Clone, Debug, clap::Args)]
pub(crate) struct VerifyArgs {
    /// The clock to check against, RFC 3339 (default: this machine's clock). Without --token,
    /// setting it applies the TTL to pendingTime.
    #[arg(long, value_name = "RFC3339", value_parser = parse_now)]
    now: Option<DateTime<Utc>>,

    /// TTL applied to pendingTime without --token, a Go duration such as 5m or 1h30m
    /// (default 5m when --now is set). With --token, the token's aws_iid_ttl applies.
    #[arg(long, value_name = "DURATION", value_parser = parse_ttl)]
    ttl: Option<Duration>,

    /// The input's format (default: detected from the CMS blob; signature with --document).
    #[arg(long, value_name = "pkcs7|rsa2048|signature", value_parser = parse_format)]
    format: Option<Format>,

    /// Accept /pkcs7 (DSA-1024 with SHA-1, refused by default).
    #[arg(long)]
    allow_legacy_dsa: bool,

    /// Accept /signature (RSA-1024, refused by default).
    #[arg(long)]
    allow_legacy_rsa1024: bool,

    /// The /document bytes, exactly as served: FILE is then the /signature text.
    #[arg(long, value_name = "FILE")]
    document: Option<PathBuf>,

    /// Trust this PEM certificate as well, for --format (default rsa2048; signature with
    /// --document). Each --cert is followed by its --cert-region.
    #[arg(long, value_name = "PEM", action = clap::ArgAction::Append)]
    cert: Vec<PathBuf>,

    /// The comma-separated regions the preceding --cert is trusted for.
    #[arg(long, value_name = "REGION", action = clap::ArgAction::Append, value_parser = parse_regions)]
    cert_region: Vec<RegionList>,

    /// A join token (a `kind: token` resource or a bare spec, YAML or JSON): its allow rules,
    /// aws_iid_ttl and expiry apply.
    #[arg(long, value_name = "FILE")]
    token: Option<PathBuf>,

    /// The instance's DescribeInstances facts as JSON: runs the instance check (needs --token).
    #[arg(long, value_name = "FILE")]
    facts: Option<PathBuf>,

    /// The /rsa2048 or /pkcs7 text (or BER), or the /signature text with --document; `-` or
    /// nothing reads standard input.
    #[arg(value_name = "FILE|-")]
    input: Option<PathBuf>,
}

/// The regions one `--cert-region` names.
#[derive(Clone, Debug)]
pub(crate) struct RegionList(pub(crate) Vec<Region>);

/// The flags once checked: what the verification needs, certificates paired with their
/// regions.
#[derive(Clone, Debug)]
pub(crate) struct Options {
    pub(crate) now: Option<DateTime<Utc>>,
    pub(crate) ttl: Option<Duration>,
    pub(crate) format: Option<Format>,
    pub(crate) allow_legacy_dsa: bool,
    pub(crate) allow_legacy_rsa1024: bool,
    pub(crate) document: Option<PathBuf>,
    pub(crate) certs: Vec<(PathBuf, Vec<Region>)>,
    pub(crate) token: Option<PathBuf>,
    pub(crate) facts: Option<PathBuf>,
    pub(crate) input: Option<PathBuf>,
}

impl Options {
    /// Checks the flags clap parsed; `matches` are the subcommand's (for the order of
    /// `--cert` and `--cert-region`).
    ///
    /// # Errors
    /// The usage error to print, as the `verify` example words it.
    pub(crate) fn new(args: VerifyArgs, matches: &ArgMatches) -> Result<Self, String> {
        check_cert_order(matches)?;
        let regions = args.cert_region.into_iter().map(|list| list.0);
        let certs = args.cert.into_iter().zip(regions).collect();
        let options = Self {
            now: args.now,
            ttl: args.ttl,
            format: args.format,
            allow_legacy_dsa: args.allow_legacy_dsa,
            allow_legacy_rsa1024: args.allow_legacy_rsa1024,
            document: args.document,
            certs,
            token: args.token,
            facts: args.facts,
            input: args.input,
        };
        options.check_combinations()?;
        Ok(options)
    }

    fn check_combinations(&self) -> Result<(), String> {
        if self.facts.is_some() && self.token.is_none() {
            return Err("--facts needs --token (the matched rule decides the bounds)".into());
        }
        if self.ttl.is_some() && self.token.is_some() {
            return Err("--ttl and --token both set the TTL: set aws_iid_ttl in the token".into());
        }
        match (self.format, self.document.is_some()) {
            (Some(Format::Signature), false) => Err("--format signature needs --document".into()),
            (Some(format), true) if format != Format::Signature => Err(format!(
                "--document is for --format signature, not {format}"
            )),
            _ => Ok(()),
        }
    }

    /// The format `--cert` adds to: `--format`, else `signature` with `--document`, else
    /// `rsa2048`.
    pub(crate) fn cert_format(&self) -> Format {
        match (self.format, &self.document) {
            (Some(format), _) => format,
            (None, Some(_)) => Format::Signature,
            (None, None) => Format::Rsa2048,
        }
    }

    /// Whether freshness is checked without a token: `--now` or `--ttl` given.
    pub(crate) fn ttl_without_token(&self) -> Option<Duration> {
        (self.now.is_some() || self.ttl.is_some())
            .then(|| self.ttl.unwrap_or(ec2_iid::token::DEFAULT_TTL))
    }
}

/// Each `--cert` must be followed by one `--cert-region` before the next `--cert` (also for
/// `serve`).
pub(crate) fn check_cert_order(matches: &ArgMatches) -> Result<(), String> {
    let indices = |id: &str, is_cert: bool| {
        matches
            .indices_of(id)
            .into_iter()
            .flatten()
            .map(move |index| (index, is_cert))
    };
    let mut flags: Vec<(usize, bool)> = indices("cert", true)
        .chain(indices("cert_region", false))
        .collect();
    flags.sort_unstable();
    let mut pending = false;
    for (_, is_cert) in flags {
        match (is_cert, pending) {
            (true, true) => return Err("--cert must be followed by --cert-region".into()),
            (false, false) => return Err("--cert-region must follow --cert".into()),
            _ => pending = is_cert,
        }
    }
    if pending {
        return Err("--cert needs --cert-region".into());
    }
    Ok(())
}

fn parse_now(text: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(text)
        .map(|now| now.with_timezone(&Utc))
        .map_err(|e| format!("{text:?}: {e}"))
}

fn parse_ttl(text: &str) -> Result<Duration, String> {
    parse_go_duration(text)
}

fn parse_format(text: &str) -> Result<Format, String> {
    text.parse()
        .map_err(|_| format!("unsupported --format {text:?}: pkcs7, rsa2048 or signature"))
}

pub(crate) fn parse_regions(text: &str) -> Result<RegionList, String> {
    text.split(',')
        .map(|r| r.parse().map_err(|_| format!("invalid region {r:?}")))
        .collect::<Result<Vec<Region>, String>>()
        .map(RegionList)
}
