//! The certificate profile: what an issued certificate says, decided at setup.

use core::time::Duration;
use std::net::Ipv4Addr;

use ec2_iid::JoinOutcome;

use crate::error::{ConfigError, IssueError, bounded};

/// The default SPIFFE ID path: `spiffe://<trust domain>/ec2/<account>/<region>/<instance id>`.
pub const DEFAULT_ID_TEMPLATE: &str = "/ec2/{account}/{region}/{instance_id}";
/// The default certificate lifetime: one hour.
pub const DEFAULT_TTL: Duration = Duration::from_secs(3600);
/// The shortest lifetime a profile accepts.
pub const MIN_TTL: Duration = Duration::from_secs(60);
/// The longest lifetime a profile accepts: renewal, not long-lived certificates, keeps a host's
/// identity current.
pub const MAX_TTL: Duration = Duration::from_secs(24 * 3600);

/// The longest SPIFFE ID (SPIFFE's limit, in bytes).
const MAX_SPIFFE_ID_LEN: usize = 2048;

/// What every certificate issued says besides the key: its SPIFFE ID, DNS name, key purposes
/// and lifetime. Built once at setup by [`Profile::builder`]; checked there, so a bad template
/// or TTL is found before any instance asks.
///
/// ```
/// use std::time::Duration;
/// let profile = ec2_iid_ca::Profile::builder("example.org")
///     .id_template("/nodes/{account}/{host_id}")
///     .dns_san(true)
///     .ttl(Duration::from_secs(2 * 3600))
///     .build()?;
/// assert_eq!(profile.trust_domain(), "example.org");
/// assert!(ec2_iid_ca::Profile::builder("Example.org").build().is_err(), "uppercase");
/// # Ok::<(), ec2_iid_ca::ConfigError>(())
/// ```
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct Profile {
    trust_domain: String,
    template: String,
    pieces: Vec<Piece>,
    dns_san: bool,
    server_auth: bool,
    ttl: Duration,
}

/// Builds a [`Profile`]; defaults: [`DEFAULT_ID_TEMPLATE`], no DNS SAN, clientAuth only,
/// [`DEFAULT_TTL`].
#[derive(Clone, Debug)]
pub struct ProfileBuilder {
    trust_domain: String,
    template: String,
    dns_san: bool,
    server_auth: bool,
    ttl: Duration,
}

#[derive(Clone, Copy, Debug, Eq, PartialEq)]
enum Field {
    Account,
    HostId,
    InstanceId,
    Region,
    Rule,
}

#[derive(Clone, Debug, Eq, PartialEq)]
enum Piece {
    Literal(String),
    Field(Field),
}

const FIELDS: [(&str, Field); 5] = [
    ("account", Field::Account),
    ("host_id", Field::HostId),
    ("instance_id", Field::InstanceId),
    ("region", Field::Region),
    ("rule", Field::Rule),
];

impl Profile {
    /// A builder for the trust domain `trust_domain` (e.g. `example.org`).
    #[must_use]
    pub fn builder(trust_domain: &str) -> ProfileBuilder {
        ProfileBuilder {
            trust_domain: trust_domain.to_owned(),
            template: DEFAULT_ID_TEMPLATE.to_owned(),
            dns_san: false,
            server_auth: false,
            ttl: DEFAULT_TTL,
        }
    }

    /// The SPIFFE trust domain.
    #[must_use]
    pub fn trust_domain(&self) -> &str {
        &self.trust_domain
    }

    /// The SPIFFE ID path template.
    #[must_use]
    pub fn id_template(&self) -> &str {
        &self.template
    }

    /// Whether certificates carry the instance's private DNS name.
    #[must_use]
    pub fn dns_san(&self) -> bool {
        self.dns_san
    }

    /// Whether certificates may authenticate servers (EKU serverAuth) as well as clients.
    #[must_use]
    pub fn server_auth(&self) -> bool {
        self.server_auth
    }

    /// The certificate lifetime.
    #[must_use]
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// The SPIFFE ID a joined instance gets: `spiffe://<trust domain>` and the template with
    /// the outcome's values.
    ///
    /// # Errors
    ///
    /// [`IssueError::SpiffeId`] if the result is not a valid SPIFFE ID (the values come from a
    /// verified document and the template was checked, so this does not happen in practice).
    pub fn spiffe_id(&self, outcome: &JoinOutcome) -> Result<String, IssueError> {
        let doc = outcome.document();
        let rule = outcome.matched_rule().to_string();
        let path = self.render(|field| match field {
            Field::Account => doc.account_id.as_str(),
            Field::HostId => outcome.host_id(),
            Field::InstanceId => doc.instance_id.as_str(),
            Field::Region => doc.region.as_str(),
            Field::Rule => &rule,
        });
        let id = format!("spiffe://{}{path}", self.trust_domain);
        if let Err(reason) = check_path(&path) {
            return Err(IssueError::SpiffeId {
                spiffe_id: bounded(&id),
                reason,
            });
        }
        if id.len() > MAX_SPIFFE_ID_LEN {
            return Err(IssueError::SpiffeId {
                spiffe_id: bounded(&id),
                reason: "longer than 2048 bytes",
            });
        }
        Ok(id)
    }

    fn render<'a>(&self, value: impl Fn(Field) -> &'a str) -> String {
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Literal(text) => out.push_str(text),
                Piece::Field(field) => out.push_str(value(*field)),
            }
        }
        out
    }
}

/// The instance's private DNS name as EC2 names it from `privateIp`: `ip-a-b-c-d.ec2.internal`
/// in us-east-1, `ip-a-b-c-d.<region>.compute.internal` elsewhere (step-ca's AWS provisioner
/// does the same).
///
/// # Errors
///
/// [`IssueError::NoPrivateIp`] if the document's `privateIp` is not an IPv4 address.
pub fn private_dns_name(outcome: &JoinOutcome) -> Result<String, IssueError> {
    let doc = outcome.document();
    let ip: Ipv4Addr = doc
        .private_ip
        .parse()
        .map_err(|_| IssueError::NoPrivateIp {
            private_ip: bounded(&doc.private_ip),
        })?;
    let [a, b, c, d] = ip.octets();
    let region = doc.region.as_str();
    Ok(if region == "us-east-1" {
        format!("ip-{a}-{b}-{c}-{d}.ec2.internal")
    } else {
        format!("ip-{a}-{b}-{c}-{d}.{region}.compute.internal")
    })
}

impl ProfileBuilder {
    /// The SPIFFE ID path, with `{account}`, `{region}`, `{instance_id}`, `{host_id}` and
    /// `{rule}` (the matched allow rule's index), like SPIRE's `agent_path_template`. Default
    /// [`DEFAULT_ID_TEMPLATE`].
    #[must_use]
    pub fn id_template(mut self, template: impl Into<String>) -> Self {
        self.template = template.into();
        self
    }

    /// Adds the instance's private DNS name ([`private_dns_name`]) as a DNS SAN. Default off.
    #[must_use]
    pub fn dns_san(mut self, on: bool) -> Self {
        self.dns_san = on;
        self
    }

    /// Adds EKU serverAuth to clientAuth. Default off.
    #[must_use]
    pub fn server_auth(mut self, on: bool) -> Self {
        self.server_auth = on;
        self
    }

    /// The certificate lifetime, from [`MIN_TTL`] to [`MAX_TTL`]. Default [`DEFAULT_TTL`].
    #[must_use]
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// Checks and builds the profile.
    ///
    /// # Errors
    ///
    /// [`ConfigError::TrustDomain`], [`ConfigError::Template`] or [`ConfigError::Ttl`].
    pub fn build(self) -> Result<Profile, ConfigError> {
        check_trust_domain(&self.trust_domain)?;
        if !(MIN_TTL..=MAX_TTL).contains(&self.ttl) {
            return Err(ConfigError::Ttl { ttl: self.ttl });
        }
        let pieces = parse_template(&self.template).map_err(|reason| ConfigError::Template {
            template: bounded(&self.template),
            reason,
        })?;
        let profile = Profile {
            trust_domain: self.trust_domain,
            template: self.template,
            pieces,
            dns_san: self.dns_san,
            server_auth: self.server_auth,
            ttl: self.ttl,
        };
        // The values are never empty and only [a-z0-9-]: a path valid with these samples is
        // valid for every instance.
        let sample = profile.render(|field| match field {
            Field::Account => "123456789012",
            Field::HostId => "123456789012-i-0123456789abcdef0",
            Field::InstanceId => "i-0123456789abcdef0",
            Field::Region => "us-east-1",
            Field::Rule => "0",
        });
        check_path(&sample).map_err(|reason| ConfigError::Template {
            template: bounded(&profile.template),
            reason: format!(
                "{reason}; write a path of segments of letters, digits, `.`, `-`, `_` and \
                 placeholders, e.g. {DEFAULT_ID_TEMPLATE}"
            ),
        })?;
        if sample.len() > 1024 {
            return Err(ConfigError::Template {
                template: bounded(&profile.template),
                reason: "longer than 1024 bytes: write a shorter path".to_owned(),
            });
        }
        Ok(profile)
    }
}

fn check_trust_domain(td: &str) -> Result<(), ConfigError> {
    let ok = !td.is_empty()
        && td.len() <= 255
        && td
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(ConfigError::TrustDomain {
            trust_domain: bounded(td),
        })
    }
}

fn parse_template(template: &str) -> Result<Vec<Piece>, String> {
    if template.starts_with("spiffe://") {
        return Err(format!(
            "write only the path (the trust domain is set on its own), e.g. {DEFAULT_ID_TEMPLATE}"
        ));
    }
    if !template.starts_with('/') {
        return Err(format!(
            "the path must start with `/`, e.g. {DEFAULT_ID_TEMPLATE}"
        ));
    }
    let mut pieces = Vec::new();
    let mut rest = template;
    while !rest.is_empty() {
        let open = rest.find('{');
        let close = rest.find('}');
        match (open, close) {
            (None, None) => {
                pieces.push(Piece::Literal(rest.to_owned()));
                rest = "";
            }
            (Some(o), Some(c)) if o < c => {
                let (literal, after) = rest.split_at(o);
                if !literal.is_empty() {
                    pieces.push(Piece::Literal(literal.to_owned()));
                }
                let inner = after.get(1..c - o).unwrap_or_default();
                if inner.contains('{') {
                    return Err("unbalanced braces: `{` inside a placeholder".to_owned());
                }
                let field = FIELDS
                    .iter()
                    .find(|(name, _)| *name == inner)
                    .map(|(_, field)| *field)
                    .ok_or_else(|| {
                        format!(
                            "unknown placeholder {{{}}}: use {{account}}, {{region}}, \
                             {{instance_id}}, {{host_id}} or {{rule}}",
                            bounded(inner).escape_debug()
                        )
                    })?;
                pieces.push(Piece::Field(field));
                rest = after.get(c - o + 1..).unwrap_or_default();
            }
            _ => {
                return Err(
                    "unbalanced braces: write each placeholder as {name}, e.g. {account}"
                        .to_owned(),
                );
            }
        }
    }
    Ok(pieces)
}

/// SPIFFE's path rules: `/`-separated, non-empty segments of `[A-Za-z0-9._-]`, none `.` or
/// `..`, no trailing `/`.
fn check_path(path: &str) -> Result<(), &'static str> {
    let Some(segments) = path.strip_prefix('/') else {
        return Err("the path does not start with `/`");
    };
    for segment in segments.split('/') {
        if segment.is_empty() {
            return Err("the path has an empty segment (`//` or a trailing `/`)");
        }
        if segment == "." || segment == ".." {
            return Err("the path has a `.` or `..` segment");
        }
        if !segment
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        {
            return Err("the path has a character other than letters, digits, `.`, `-`, `_`");
        }
    }
    Ok(())
}
