//! The flags of `serve` and the values clap cannot parse alone: the registry, external ids,
//! certificates paired with their regions.

use core::fmt;
use core::time::Duration;
use std::path::PathBuf;

use clap::ArgMatches;
use ec2_iid::ids::{Region, RoleArn};

use super::listener::Limits;
use crate::args::{RegionList, check_cert_order, parse_regions};

/// The flags of `serve`.
#[derive(Clone, Debug, clap::Args)]
pub(crate) struct ServeArgs {
    /// The join token (a `kind: token` resource or a bare spec, YAML or JSON): its allow
    /// rules, aws_iid_ttl and expiry decide who joins.
    #[arg(long, value_name = "FILE")]
    token: PathBuf,

    /// Trust this PEM certificate for /rsa2048 documents as well as AWS's. Each --cert is
    /// followed by its --cert-region.
    #[arg(long, value_name = "PEM", action = clap::ArgAction::Append)]
    cert: Vec<PathBuf>,

    /// The comma-separated regions the preceding --cert is trusted for.
    #[arg(long, value_name = "REGION[,REGION..]", action = clap::ArgAction::Append,
          value_parser = parse_regions)]
    cert_region: Vec<RegionList>,

    /// Send EC2, STS and DynamoDB calls to URL instead of AWS's regional endpoints (an emulator such as
    /// moto).
    #[arg(long, value_name = "URL")]
    endpoint_url: Option<String>,

    /// The time the instance lookup may take, and then the registry claim, each on its own
    /// (also each AWS call's limit), in whole seconds; past it the answer is 503 with
    /// Retry-After. PostgreSQL gets 80% of it for a claim (statement_timeout, lock_timeout and
    /// the pool's waits), so that it gives up first and a 503 means the claim did not commit.
    #[arg(long, value_name = "SECS", default_value = "10", value_parser = parse_secs)]
    timeout: Duration,

    /// The address to listen on; port 0 picks a free one (printed as `listening on ADDR`).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    listen: String,

    /// Where joins are remembered, so that each instance launch joins once: memory (this
    /// process only), postgres:URL (shared by replicas; a postgresql:// URL or key=value
    /// settings, with sslmode=disable|require|verify-full and sslrootcert=FILE; the default
    /// is verify-full, or disable when every host is loopback or a Unix socket) or
    /// dynamodb:TABLE.
    #[arg(long, value_name = "memory|postgres:URL|dynamodb:TABLE", default_value = "memory",
          value_parser = RegistrySpec::parse)]
    registry: RegistrySpec,

    /// Deprecated, without effect: DescribeInstances calls are paced by --describe-rate and
    /// batched while they wait. 0 still means one call per join (each paced).
    #[arg(long, value_name = "MS")]
    batch_window_ms: Option<u64>,

    /// Send ID as the ExternalId when assuming ROLE_ARN (a rule's aws_role), as the role's
    /// trust policy requires. Repeatable, one per role.
    #[arg(long, value_name = "ROLE_ARN=ID", action = clap::ArgAction::Append,
          value_parser = parse_external_id)]
    external_id: Vec<ExternalId>,

    /// Serve HTTPS with this PEM certificate chain (leaf first); reloaded with --tls-key on
    /// SIGHUP, without dropping connections. Needs --tls-key.
    #[arg(long, value_name = "PEM")]
    tls_cert: Option<PathBuf>,

    /// The PEM private key of --tls-cert; readable by its owner only (chmod 600).
    #[arg(long, value_name = "PEM")]
    tls_key: Option<PathBuf>,

    /// Serve plain HTTP on a non-loopback address (documents readable on the path): without
    /// TLS, serve listens on loopback only unless this is given.
    #[arg(long)]
    insecure_http: bool,

    /// The time a client may take to send a request's headers (the first request's from the
    /// connection's start, a later one's from its first byte), and the TLS handshake, in whole
    /// seconds; then the connection is closed.
    #[arg(long, value_name = "SECS", default_value = "10", value_parser = parse_secs)]
    header_read_timeout: Duration,

    /// The time a client may take to send a whole request body, in whole seconds; then the
    /// request fails (400) and the connection is closed.
    #[arg(long, value_name = "SECS", default_value = "10", value_parser = parse_secs)]
    body_read_timeout: Duration,

    /// Close a keep-alive connection with no request in flight after this many whole seconds.
    #[arg(long, value_name = "SECS", default_value = "30", value_parser = parse_secs)]
    idle_timeout: Duration,

    /// The most connections open at once; at the cap a new connection replaces the one idle
    /// the longest, or is closed at once if none is idle. Keep it below the file limit.
    #[arg(long, value_name = "N", default_value = "512", value_parser = parse_count)]
    max_connections: usize,

    /// The most POST /join answered at once; past it, 503 `overloaded` with Retry-After.
    #[arg(long, value_name = "N", default_value = "256", value_parser = parse_count)]
    max_inflight_joins: usize,

    /// On SIGTERM or Ctrl-C, stop accepting and give requests in flight this many whole
    /// seconds to finish before closing their connections; then exit 0.
    #[arg(long, value_name = "SECS", default_value = "10", value_parser = parse_secs)]
    shutdown_grace: Duration,

    /// DescribeInstances calls per second per account, region and role (EC2 refills its bucket
    /// at about 20 per second); queries wait for a call while none is free, and the waiting
    /// ones share it (up to 200 ids). Divided by --describe-replicas.
    #[arg(long, value_name = "CALLS", default_value = "20", value_parser = parse_rate)]
    describe_rate: f64,

    /// DescribeInstances calls that may go out at once after a quiet spell (EC2's bucket holds
    /// about 100). Divided by --describe-replicas (rounded down, at least 1).
    #[arg(long, value_name = "CALLS", default_value_t = 100,
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    describe_burst: u32,

    /// The number of `serve` replicas calling EC2 with the same account: each takes 1/N of
    /// --describe-rate and --describe-burst, so that together they stay within EC2's bucket.
    #[arg(long, value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    describe_replicas: u32,

    /// Issue certificates to instances that join with a CSR, signed by this CA: PEM
    /// certificates, the signing CA first, then each issuer in turn (the last one is what
    /// relying parties trust, served at GET /bundle). Needs --ca-key and --trust-domain.
    #[arg(long, value_name = "PEM")]
    ca_cert: Option<PathBuf>,

    /// The unencrypted PEM private key of --ca-cert (PKCS#8 `PRIVATE KEY`, or SEC1/PKCS#1);
    /// readable by its owner only (chmod 600), else serve refuses to start.
    #[arg(long, value_name = "PEM")]
    ca_key: Option<PathBuf>,

    /// The SPIFFE trust domain of the issued certificates' URI SAN, e.g. example.org.
    #[arg(long, value_name = "NAME")]
    trust_domain: Option<String>,

    /// The SPIFFE ID path after spiffe://<trust domain>, with {account}, {region},
    /// {instance_id}, {host_id} and {rule}; default /ec2/{account}/{region}/{instance_id}.
    #[arg(long, value_name = "TEMPLATE")]
    id_template: Option<String>,

    /// Also put the instance's private DNS name (from privateIp, e.g.
    /// ip-10-0-0-10.ec2.internal) in the certificates as a DNS SAN.
    #[arg(long)]
    dns_san: bool,

    /// Let the certificates authenticate servers too (EKU serverAuth), not only clients.
    #[arg(long)]
    server_auth: bool,

    /// The issued certificates' lifetime, a Go duration from 1m to 24h (e.g. 90s, 30m, 1h).
    #[arg(long, value_name = "DURATION", default_value = "1h",
          value_parser = ec2_iid::token::parse_go_duration)]
    cert_ttl: Duration,

    /// Accept RSA keys (2048 to 8192 bits) in CSRs, besides ECDSA P-256/P-384 and Ed25519.
    #[arg(long)]
    allow_rsa_csr: bool,

    /// On POST /renew, also ask EC2 (DescribeInstances, paced and batched like joins, with the
    /// joining rule's role) that the instance still runs in its account; else 403
    /// instance_rejected. Default: no EC2 call on renewal.
    #[arg(long)]
    renew_check_instance: bool,

    /// For rules with aws_organization_id: read the organization's accounts and OUs from AWS
    /// Organizations through this role (in the management account), refreshed every 10
    /// minutes.
    #[arg(
        long,
        value_name = "ROLE_ARN",
        conflicts_with = "organization_accounts"
    )]
    organizations_role: Option<RoleArn>,

    /// For rules with aws_organization_id: read the organization's accounts from this JSON
    /// file instead of AWS Organizations: {"organization_id": "o-…", "accounts":
    /// {"111122223333": ["ou-…", "r-…"]}} (each account's OUs from its own up to the root).
    #[arg(long, value_name = "FILE")]
    organization_accounts: Option<PathBuf>,

    /// How often to count the hosts enrolled and not evicted for the ec2_iid_enrolled_hosts
    /// gauge of /metrics, in whole seconds (each count within that time, one at a time); 0
    /// never counts. A count reads every record: on DynamoDB, a scan of the whole table.
    #[arg(long, value_name = "SECS", default_value = "60", value_parser = parse_refresh)]
    enrolled_hosts_refresh: Duration,
}

/// `--enrolled-hosts-refresh`: whole seconds up to a day; 0 turns the count off.
fn parse_refresh(text: &str) -> Result<Duration, String> {
    match text.parse::<u64>() {
        Ok(secs) if secs <= 86_400 => Ok(Duration::from_secs(secs)),
        _ => Err("whole seconds from 0 (never) to 86400 expected".into()),
    }
}

/// `--ca-cert`, `--ca-key` and the certificate profile's flags, given together.
#[derive(Clone, Debug)]
pub(crate) struct CaFlags {
    pub(crate) cert: PathBuf,
    pub(crate) key: PathBuf,
    pub(crate) trust_domain: String,
    pub(crate) id_template: Option<String>,
    pub(crate) dns_san: bool,
    pub(crate) server_auth: bool,
    pub(crate) ttl: Duration,
    pub(crate) allow_rsa: bool,
}

impl CaFlags {
    /// The CA flags, or none; a profile flag without a CA, or half a CA, is a usage error.
    fn new(args: &ServeArgs, matches: &ArgMatches) -> Result<Option<Self>, String> {
        let (cert, key) = match (&args.ca_cert, &args.ca_key) {
            (Some(cert), Some(key)) => (cert.clone(), key.clone()),
            (Some(_), None) => {
                return Err("--ca-cert needs --ca-key (the CA's PEM private key)".into());
            }
            (None, Some(_)) => {
                return Err("--ca-key needs --ca-cert (the CA's PEM certificate chain)".into());
            }
            (None, None) => {
                let profile_flags = [
                    "trust_domain",
                    "id_template",
                    "dns_san",
                    "server_auth",
                    "cert_ttl",
                    "allow_rsa_csr",
                ];
                let given = profile_flags.into_iter().find(|id| {
                    matches.value_source(id) == Some(clap::parser::ValueSource::CommandLine)
                });
                return match given {
                    Some(id) => Err(format!(
                        "--{} is about issued certificates: give --ca-cert and --ca-key too, or \
                         leave it out",
                        id.replace('_', "-")
                    )),
                    None => Ok(None),
                };
            }
        };
        let trust_domain = args.trust_domain.clone().ok_or(
            "--ca-cert needs --trust-domain (the SPIFFE trust domain of the certificates, e.g. \
             --trust-domain example.org)",
        )?;
        Ok(Some(Self {
            cert,
            key,
            trust_domain,
            id_template: args.id_template.clone(),
            dns_san: args.dns_san,
            server_auth: args.server_auth,
            ttl: args.cert_ttl,
            allow_rsa: args.allow_rsa_csr,
        }))
    }
}

/// How `DescribeInstances` calls are paced (`--describe-*`, `--batch-window-ms`).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct DescribePacing {
    /// This replica's calls per second.
    pub(crate) rate: f64,
    /// This replica's burst.
    pub(crate) burst: u32,
    /// `--batch-window-ms`, deprecated: `Some(0)` sends one id per call.
    pub(crate) batch_window_ms: Option<u64>,
}

impl DescribePacing {
    fn new(args: &ServeArgs) -> Self {
        let replicas = args.describe_replicas.max(1);
        Self {
            rate: args.describe_rate / f64::from(replicas),
            burst: (args.describe_burst / replicas).max(1),
            batch_window_ms: args.batch_window_ms,
        }
    }
}

/// `--describe-rate`: calls per second, above 0 and at most 10000 (fractions allowed).
fn parse_rate(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(rate) if rate > 0.0 && rate <= 10_000.0 => Ok(rate),
        _ => Err("calls per second above 0 and at most 10000 expected (e.g. 20 or 2.5)".into()),
    }
}

/// Where joins are remembered (`--registry`).
#[derive(Clone, Eq, PartialEq)]
pub(crate) enum RegistrySpec {
    /// In this process.
    Memory,
    /// A PostgreSQL database: tokio-postgres connection settings.
    Postgres(String),
    /// A DynamoDB table.
    DynamoDb(String),
}

impl RegistrySpec {
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        match text.split_once(':') {
            None if text == "memory" => Ok(Self::Memory),
            Some(("postgres", url)) if !url.is_empty() => Ok(Self::Postgres(url.to_owned())),
            Some(("dynamodb", table)) if !table.is_empty() => Ok(Self::DynamoDb(table.to_owned())),
            Some((kind @ ("postgres" | "dynamodb"), _)) => {
                Err(format!("{kind}: needs a value after the colon"))
            }
            None if text == "postgres" || text == "dynamodb" => {
                Err(format!("{text}: needs a value after a colon"))
            }
            _ => Err("memory, postgres:URL or dynamodb:TABLE expected".into()),
        }
    }
}

/// Without the PostgreSQL settings, which may hold a password.
impl fmt::Debug for RegistrySpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Memory => f.write_str("Memory"),
            Self::Postgres(_) => f.write_str("Postgres(..)"),
            Self::DynamoDb(table) => f.debug_tuple("DynamoDb").field(table).finish(),
        }
    }
}

/// One `--external-id ROLE_ARN=ID`.
#[derive(Clone, Debug, Eq, PartialEq)]
pub(crate) struct ExternalId {
    pub(crate) role_arn: RoleArn,
    pub(crate) id: String,
}

fn parse_external_id(text: &str) -> Result<ExternalId, String> {
    let (role, id) = text
        .split_once('=')
        .ok_or("ROLE_ARN=ID expected (an IAM role ARN, `=`, the external id)")?;
    let role_arn = role
        .parse()
        .map_err(|_| format!("{role:?} is not an IAM role ARN"))?;
    if id.is_empty() {
        return Err(format!("no external id after {role}="));
    }
    Ok(ExternalId {
        role_arn,
        id: id.to_owned(),
    })
}

pub(crate) fn parse_secs(text: &str) -> Result<Duration, String> {
    match text.parse::<u64>() {
        Ok(0) => Err("must be at least 1 second".into()),
        Ok(secs) => Ok(Duration::from_secs(secs)),
        Err(_) => Err("whole seconds expected".into()),
    }
}

fn parse_count(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(count) => Ok(count),
        Err(_) => Err("a whole number expected".into()),
    }
}

/// `--tls-cert` and `--tls-key`, given together.
#[derive(Clone, Debug)]
pub(crate) struct TlsFiles {
    pub(crate) cert: PathBuf,
    pub(crate) key: PathBuf,
}

/// The flags once checked, certificates paired with their regions.
#[derive(Clone, Debug)]
pub(crate) struct ServeOptions {
    pub(crate) token: PathBuf,
    pub(crate) certs: Vec<(PathBuf, Vec<Region>)>,
    pub(crate) endpoint_url: Option<String>,
    pub(crate) timeout: Duration,
    pub(crate) listen: String,
    pub(crate) registry: RegistrySpec,
    pub(crate) pacing: DescribePacing,
    pub(crate) external_ids: Vec<ExternalId>,
    pub(crate) tls: Option<TlsFiles>,
    pub(crate) insecure_http: bool,
    /// `--renew-check-instance`.
    pub(crate) renew_check_instance: bool,
    pub(crate) limits: Limits,
    /// `--ca-cert` and the profile: certificates for joins with a CSR.
    pub(crate) ca: Option<CaFlags>,
    pub(crate) organizations_role: Option<RoleArn>,
    pub(crate) organization_accounts: Option<PathBuf>,
    /// `--enrolled-hosts-refresh`; `None` for 0 (never).
    pub(crate) enrolled_hosts_refresh: Option<Duration>,
}

impl ServeOptions {
    /// Checks the flags clap parsed; `matches` are the subcommand's (for the order of
    /// `--cert` and `--cert-region`).
    ///
    /// # Errors
    /// The usage error to print.
    pub(crate) fn new(args: ServeArgs, matches: &ArgMatches) -> Result<Self, String> {
        check_cert_order(matches)?;
        let ca = CaFlags::new(&args, matches)?;
        let pacing = DescribePacing::new(&args);
        let tls = match (args.tls_cert, args.tls_key) {
            (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
            (None, None) => None,
            (Some(_), None) => return Err("--tls-cert needs --tls-key (its private key)".into()),
            (None, Some(_)) => return Err("--tls-key needs --tls-cert (its certificate)".into()),
        };
        let limits = Limits {
            header_read_timeout: args.header_read_timeout,
            body_read_timeout: args.body_read_timeout,
            idle_timeout: args.idle_timeout,
            max_connections: args.max_connections,
            max_inflight_joins: args.max_inflight_joins,
            shutdown_grace: args.shutdown_grace,
        };
        let regions = args.cert_region.into_iter().map(|list| list.0);
        Ok(Self {
            token: args.token,
            certs: args.cert.into_iter().zip(regions).collect(),
            endpoint_url: args.endpoint_url,
            timeout: args.timeout,
            listen: args.listen,
            registry: args.registry,
            pacing,
            external_ids: args.external_id,
            tls,
            insecure_http: args.insecure_http,
            renew_check_instance: args.renew_check_instance,
            limits,
            ca,
            organizations_role: args.organizations_role,
            organization_accounts: args.organization_accounts,
            enrolled_hosts_refresh: Some(args.enrolled_hosts_refresh)
                .filter(|every| !every.is_zero()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_specs() {
        assert_eq!(RegistrySpec::parse("memory"), Ok(RegistrySpec::Memory));
        assert_eq!(
            RegistrySpec::parse("postgres:postgresql://u:pw@db:5432/joins"),
            Ok(RegistrySpec::Postgres(
                "postgresql://u:pw@db:5432/joins".into()
            ))
        );
        assert_eq!(
            RegistrySpec::parse("postgres:host=db user=u"),
            Ok(RegistrySpec::Postgres("host=db user=u".into()))
        );
        assert_eq!(
            RegistrySpec::parse("dynamodb:ec2-iid-joins"),
            Ok(RegistrySpec::DynamoDb("ec2-iid-joins".into()))
        );
        for bad in [
            "",
            "memory:",
            "memory:x",
            "postgres",
            "postgres:",
            "dynamodb:",
            "redis:x",
        ] {
            assert!(RegistrySpec::parse(bad).is_err(), "{bad:?}");
        }
        let debug = format!(
            "{:?}",
            RegistrySpec::Postgres("postgresql://u:secret@db/joins".into())
        );
        assert!(!debug.contains("secret"), "{debug}");
    }

    #[test]
    fn external_ids() {
        let parsed =
            parse_external_id("arn:aws:iam::210987654321:role/describe=tenant=42").unwrap();
        assert_eq!(
            parsed.role_arn.as_str(),
            "arn:aws:iam::210987654321:role/describe"
        );
        // The first `=` separates: role ARNs have none.
        assert_eq!(parsed.id, "tenant=42");
        for bad in [
            "",
            "arn:aws:iam::210987654321:role/describe",
            "arn:aws:iam::210987654321:role/describe=",
            "not-an-arn=id",
            "=id",
        ] {
            assert!(parse_external_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn describe_pacing() {
        use clap::Parser as _;

        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            serve: ServeArgs,
        }
        let parse = |extra: &[&str]| {
            let args = ["serve", "--token", "t.yaml"].iter().chain(extra);
            Cli::try_parse_from(args).map(|cli| DescribePacing::new(&cli.serve))
        };
        let defaults = parse(&[]).unwrap();
        assert_eq!(
            defaults,
            DescribePacing {
                rate: 20.0,
                burst: 100,
                batch_window_ms: None
            }
        );
        let shared = parse(&["--describe-replicas", "3", "--batch-window-ms", "0"]).unwrap();
        assert!((shared.rate - 20.0 / 3.0).abs() < 1e-9, "{shared:?}");
        assert_eq!((shared.burst, shared.batch_window_ms), (33, Some(0)));
        let small = parse(&["--describe-rate", "5", "--describe-burst", "5"]).unwrap();
        assert_eq!((small.rate, small.burst), (5.0, 5));
        // A burst smaller than the replicas still lets each make a call.
        let tiny = parse(&["--describe-burst", "2", "--describe-replicas", "4"]).unwrap();
        assert_eq!((tiny.rate, tiny.burst), (5.0, 1));
        for bad in [
            ["--describe-rate", "0"],
            ["--describe-rate", "-1"],
            ["--describe-rate", "NaN"],
            ["--describe-rate", "10001"],
            ["--describe-burst", "0"],
            ["--describe-burst", "10001"],
            ["--describe-replicas", "0"],
        ] {
            assert!(parse(&bad).is_err(), "{bad:?}");
        }
        assert_eq!(parse_rate("2.5"), Ok(2.5));
        assert!(parse_rate("inf").unwrap_err().contains("above 0"));
    }

    #[test]
    fn organization_sources() {
        use clap::Parser as _;

        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            serve: ServeArgs,
        }
        let parse = |extra: &[&str]| {
            let args = ["serve", "--token", "t.yaml"].iter().chain(extra);
            Cli::try_parse_from(args).map(|cli| cli.serve)
        };
        let role = "arn:aws:iam::111111111111:role/read-organization";
        let by_role = parse(&["--organizations-role", role]).unwrap();
        assert_eq!(
            by_role.organizations_role.as_ref().map(RoleArn::as_str),
            Some(role)
        );
        let by_file = parse(&["--organization-accounts", "accounts.json"]).unwrap();
        assert_eq!(
            by_file.organization_accounts,
            Some(PathBuf::from("accounts.json"))
        );
        assert!(parse(&["--organizations-role", "not-an-arn"]).is_err());
        let both = [
            "--organizations-role",
            role,
            "--organization-accounts",
            "a.json",
        ];
        assert!(parse(&both).is_err());
    }

    #[test]
    fn enrolled_hosts_refresh() {
        assert_eq!(parse_refresh("60"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_refresh("0"), Ok(Duration::ZERO));
        for bad in ["86401", "", "1.5", "-1", "1m"] {
            assert!(parse_refresh(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn timeouts() {
        assert_eq!(parse_secs("20"), Ok(Duration::from_secs(20)));
        for bad in ["0", "", "1.5", "-1", "10s"] {
            assert!(parse_secs(bad).is_err(), "{bad:?}");
        }
    }
}
