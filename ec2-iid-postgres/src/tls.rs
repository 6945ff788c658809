//! The connection settings' TLS part: `sslmode` and `sslrootcert` as libpq names them, which
//! tokio-postgres's own parser does not know (`verify-full`, `sslrootcert`), taken out of the
//! settings string before the rest is parsed, and the rustls connector they ask for.

use core::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, aws_lc_rs};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres::config::Host;
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::error::PostgresRegistryError;

/// How the registry's connections use TLS (`sslmode`).
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub(crate) enum SslMode {
    /// No TLS.
    Disable,
    /// TLS, the server's certificate not checked: stops passive eavesdroppers only.
    Require,
    /// TLS, the certificate chained to the trusted roots and issued for the host name.
    VerifyFull,
}

/// The roots `verify-full` trusts (`sslrootcert`).
#[derive(Clone, Debug, Eq, PartialEq)]
pub(crate) enum Roots {
    /// The system's trusted roots (`sslrootcert=system`, or no `sslrootcert`).
    System,
    /// The certificates of a PEM file.
    File(PathBuf),
}

/// Parsed connection settings: tokio-postgres's part, and the TLS part it does not know.
pub(crate) struct Settings {
    /// Everything but `sslmode` and `sslrootcert` (its `ssl_mode` set from [`Self::mode`]).
    pub(crate) config: tokio_postgres::Config,
    pub(crate) mode: SslMode,
    pub(crate) roots: Roots,
}

/// The TLS connector of a pool.
#[derive(Clone)]
pub(crate) enum Tls {
    None,
    Rustls(MakeRustlsConnect),
}

/// Not the root store: only which kind.
impl fmt::Debug for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::None => "None",
            Self::Rustls(_) => "Rustls",
        })
    }
}

/// A setting this crate refuses, with what to write instead. Never holds the settings string
/// (it may hold a password), only the values of `sslmode` and `sslrootcert`.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SettingsError {
    #[error(
        "sslmode {0:?} is not supported: use sslmode=disable, sslmode=require or sslmode=verify-full"
    )]
    SslMode(String),
    #[error(
        "sslrootcert with sslmode={0}: the certificate would not be checked against it; use \
         sslmode=verify-full"
    )]
    RootsNotChecked(&'static str),
    #[error("sslrootcert {path:?}: cannot read it")]
    ReadRoots {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("sslrootcert {path:?}: {reason}")]
    BadRoots { path: PathBuf, reason: String },
    #[error(
        "sslmode=verify-full without sslrootcert: no system root certificate found; give \
         sslrootcert=FILE (the PEM file of the CA that signed the server's certificate)"
    )]
    NoSystemRoots,
    #[error("rustls refuses the TLS settings")]
    Rustls(#[source] rustls::Error),
}

impl From<SettingsError> for PostgresRegistryError {
    fn from(err: SettingsError) -> Self {
        Self::config(err)
    }
}

/// At most this many characters of a refused value are shown.
const MAX_SHOWN: usize = 64;

impl Settings {
    /// Parses `settings` (key=value or a `postgres://`/`postgresql://` URL).
    ///
    /// Without `sslmode`, the mode is `disable` when every host is a loopback address
    /// (127.0.0.0/8, ::1, `localhost`) or a Unix socket and no `sslrootcert` is given, else
    /// `verify-full`.
    pub(crate) fn parse(settings: &str) -> Result<Self, PostgresRegistryError> {
        let Extracted {
            rest,
            sslmode,
            sslrootcert,
        } = extract(settings);
        let mut config: tokio_postgres::Config =
            rest.parse().map_err(PostgresRegistryError::config)?;
        let mode = match sslmode.as_deref() {
            Some("disable") => SslMode::Disable,
            Some("require") => SslMode::Require,
            Some("verify-full") => SslMode::VerifyFull,
            Some(other) => {
                return Err(SettingsError::SslMode(other.chars().take(MAX_SHOWN).collect()).into());
            }
            None if sslrootcert.is_none() && all_local(&config) => SslMode::Disable,
            None => SslMode::VerifyFull,
        };
        let roots = match (mode, sslrootcert) {
            (SslMode::VerifyFull, None) => Roots::System,
            (SslMode::VerifyFull, Some(path)) if path == "system" => Roots::System,
            (SslMode::VerifyFull, Some(path)) => Roots::File(PathBuf::from(path)),
            (SslMode::Disable, None) | (SslMode::Require, None) => Roots::System,
            (SslMode::Disable, Some(_)) => {
                return Err(SettingsError::RootsNotChecked("disable").into());
            }
            (SslMode::Require, Some(_)) => {
                return Err(SettingsError::RootsNotChecked("require").into());
            }
        };
        config.ssl_mode(match mode {
            SslMode::Disable => tokio_postgres::config::SslMode::Disable,
            SslMode::Require | SslMode::VerifyFull => tokio_postgres::config::SslMode::Require,
        });
        Ok(Self {
            config,
            mode,
            roots,
        })
    }

    /// The connector for [`Self::mode`]: none, rustls without certificate checks, or rustls
    /// with the roots.
    pub(crate) fn tls(&self) -> Result<Tls, SettingsError> {
        let provider = Arc::new(aws_lc_rs::default_provider());
        let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(SettingsError::Rustls)?;
        let config = match self.mode {
            SslMode::Disable => return Ok(Tls::None),
            SslMode::Require => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
                .with_no_client_auth(),
            SslMode::VerifyFull => builder
                .with_root_certificates(self.roots.load()?)
                .with_no_client_auth(),
        };
        Ok(Tls::Rustls(MakeRustlsConnect::new(config)))
    }
}

impl Roots {
    fn load(&self) -> Result<RootCertStore, SettingsError> {
        let mut store = RootCertStore::empty();
        match self {
            Self::System => {
                let found = rustls_native_certs::load_native_certs();
                let (added, _ignored) = store.add_parsable_certificates(found.certs);
                if added == 0 {
                    return Err(SettingsError::NoSystemRoots);
                }
            }
            Self::File(path) => {
                let pem = std::fs::read(path).map_err(|source| SettingsError::ReadRoots {
                    path: path.clone(),
                    source,
                })?;
                let bad = |reason: String| SettingsError::BadRoots {
                    path: path.clone(),
                    reason,
                };
                for cert in CertificateDer::pem_slice_iter(&pem) {
                    let cert = cert.map_err(|e| bad(format!("not PEM: {e}")))?;
                    store
                        .add(cert)
                        .map_err(|e| bad(format!("not a CA certificate: {e}")))?;
                }
                if store.is_empty() {
                    return Err(bad("no PEM certificate in it".into()));
                }
            }
        }
        Ok(store)
    }
}

/// Whether every host connected to is a Unix socket or on this machine: a loopback address or
/// `localhost`. Vacuously true without a host (tokio-postgres
/// then refuses to connect).
fn all_local(config: &tokio_postgres::Config) -> bool {
    let host_local = |host: &Host| match host {
        Host::Tcp(name) => {
            let name = name.trim_start_matches('[').trim_end_matches(']');
            name.eq_ignore_ascii_case("localhost")
                || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
        }
        #[cfg(unix)]
        Host::Unix(_) => true,
    };
    // tokio-postgres connects to the `hostaddr`s when there are any, else to the hosts.
    let hostaddrs = config.get_hostaddrs();
    if hostaddrs.is_empty() {
        config.get_hosts().iter().all(host_local)
    } else {
        hostaddrs.iter().all(IpAddr::is_loopback)
    }
}

/// `sslmode=require`: any certificate is accepted (as libpq does without a root certificate),
/// but the handshake's signatures are still checked, so the session is with the holder of the
/// key of the certificate the server sent. An active attacker on the path can send their own.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The settings without `sslmode` and `sslrootcert`, and their values (the last of each, as
/// libpq takes).
#[derive(Debug, Eq, PartialEq)]
struct Extracted {
    rest: String,
    sslmode: Option<String>,
    sslrootcert: Option<String>,
}

/// Takes `sslmode` and `sslrootcert` out of `settings`, in the URL form (query parameters,
/// percent-decoded) or the key=value form (values plain or single-quoted, with backslash
/// escapes), read the way tokio-postgres reads the rest. Settings that do not read are
/// returned whole, for tokio-postgres's parser to refuse with its own message.
fn extract(settings: &str) -> Extracted {
    let whole = || Extracted {
        rest: settings.to_owned(),
        sslmode: None,
        sslrootcert: None,
    };
    let url = ["postgres://", "postgresql://"]
        .iter()
        .find_map(|prefix| settings.strip_prefix(prefix).map(|_| prefix.len()));
    match url {
        Some(start) => extract_url(settings, start),
        None => extract_key_values(settings),
    }
    .unwrap_or_else(whole)
}

/// The URL form: tokio-postgres takes the credentials up to the first `@`, then the host up to
/// `/` or `?`, and the parameters after the next `?`, `&`-separated.
fn extract_url(settings: &str, start: usize) -> Option<Extracted> {
    let after_prefix = settings.get(start..)?;
    let after_credentials = after_prefix.find('@').map_or(start, |at| start + at + 1);
    let query = settings.get(after_credentials..)?.find('?')? + after_credentials;
    let (head, params) = (settings.get(..query)?, settings.get(query + 1..)?);
    let mut kept = Vec::new();
    let (mut sslmode, mut sslrootcert) = (None, None);
    for param in params.split('&') {
        let (key, value) = param.split_once('=')?;
        let key = percent_decode(key)?;
        match key.as_str() {
            "sslmode" => sslmode = Some(percent_decode(value)?),
            "sslrootcert" => sslrootcert = Some(percent_decode(value)?),
            _ => kept.push(param),
        }
    }
    let rest = if kept.is_empty() {
        head.to_owned()
    } else {
        format!("{head}?{}", kept.join("&"))
    };
    Some(Extracted {
        rest,
        sslmode,
        sslrootcert,
    })
}

/// `%XX` decoded, as UTF-8; `None` if it is not.
fn percent_decode(text: &str) -> Option<String> {
    let mut bytes = Vec::with_capacity(text.len());
    let mut rest = text.as_bytes();
    while let Some((&byte, tail)) = rest.split_first() {
        match (byte, tail) {
            (b'%', [high, low, after @ ..]) => {
                let hex = |d: u8| char::from(d).to_digit(16);
                match (hex(*high), hex(*low)) {
                    (Some(h), Some(l)) => {
                        bytes.push(u8::try_from(h * 16 + l).ok()?);
                        rest = after;
                    }
                    // As percent-encoding does: a `%` not followed by two hex digits is kept.
                    _ => {
                        bytes.push(byte);
                        rest = tail;
                    }
                }
            }
            _ => {
                bytes.push(byte);
                rest = tail;
            }
        }
    }
    String::from_utf8(bytes).ok()
}

/// The key=value form, read as tokio-postgres's parser does: whitespace, a keyword (up to
/// whitespace or `=`), whitespace, `=`, whitespace, then a value: `'...'` or up to whitespace,
/// `\` escaping the next character in both.
fn extract_key_values(settings: &str) -> Option<Extracted> {
    let mut rest = String::with_capacity(settings.len());
    let (mut sslmode, mut sslrootcert) = (None, None);
    let mut chars = settings.char_indices().peekable();
    let mut kept_until = 0;
    loop {
        while chars.next_if(|(_, c)| c.is_whitespace()).is_some() {}
        let Some(&(start, _)) = chars.peek() else {
            break;
        };
        while chars
            .next_if(|(_, c)| !c.is_whitespace() && *c != '=')
            .is_some()
        {}
        let key_end = chars.peek().map_or(settings.len(), |&(i, _)| i);
        let key = settings.get(start..key_end)?;
        if key.is_empty() {
            return None;
        }
        while chars.next_if(|(_, c)| c.is_whitespace()).is_some() {}
        chars.next_if(|&(_, c)| c == '=')?;
        while chars.next_if(|(_, c)| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if chars.next_if(|&(_, c)| c == '\'').is_some() {
            loop {
                match chars.next()? {
                    (_, '\'') => break,
                    (_, '\\') => value.push(chars.next()?.1),
                    (_, c) => value.push(c),
                }
            }
        } else {
            while let Some((_, c)) = chars.next_if(|(_, c)| !c.is_whitespace()) {
                if c == '\\' {
                    // tokio-postgres drops a trailing backslash.
                    if let Some((_, escaped)) = chars.next() {
                        value.push(escaped);
                    }
                } else {
                    value.push(c);
                }
            }
            if value.is_empty() {
                return None;
            }
        }
        let end = chars.peek().map_or(settings.len(), |&(i, _)| i);
        let slot = match key {
            "sslmode" => &mut sslmode,
            "sslrootcert" => &mut sslrootcert,
            _ => continue,
        };
        *slot = Some(value);
        rest.push_str(settings.get(kept_until..start)?);
        kept_until = end;
    }
    rest.push_str(settings.get(kept_until..)?);
    Some(Extracted {
        rest,
        sslmode,
        sslrootcert,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn extracted(rest: &str, sslmode: Option<&str>, sslrootcert: Option<&str>) -> Extracted {
        Extracted {
            rest: rest.to_owned(),
            sslmode: sslmode.map(str::to_owned),
            sslrootcert: sslrootcert.map(str::to_owned),
        }
    }

    #[test]
    fn key_value_form() {
        assert_eq!(
            extract("host=db sslmode=verify-full user=u sslrootcert=/etc/ca.pem"),
            extracted("host=db  user=u ", Some("verify-full"), Some("/etc/ca.pem"))
        );
        assert_eq!(
            extract("sslmode = require\thost=db"),
            extracted("\thost=db", Some("require"), None)
        );
        // Quoted, with spaces and escapes; the last of a repeated key wins (as libpq's).
        assert_eq!(
            extract(
                r"sslrootcert='/my certs/it\'s.pem' sslmode=disable password='a b' sslmode=verify-full"
            ),
            extracted(
                "  password='a b' ",
                Some("verify-full"),
                Some("/my certs/it's.pem")
            )
        );
        assert_eq!(
            extract(r"password=x\ sslmode=disable host=db"),
            extracted(r"password=x\ sslmode=disable host=db", None, None),
            "an escaped space is part of the password"
        );
        assert_eq!(
            extract("password='sslmode=disable' host=db"),
            extracted("password='sslmode=disable' host=db", None, None)
        );
        assert_eq!(extract("host=db"), extracted("host=db", None, None));
        assert_eq!(extract(""), extracted("", None, None));
        // What tokio-postgres refuses is left for it to refuse.
        for bad in ["host", "host=", "sslmode='verify-full", "=x"] {
            assert_eq!(extract(bad), extracted(bad, None, None), "{bad:?}");
        }
    }

    #[test]
    fn url_form() {
        assert_eq!(
            extract(
                "postgresql://u:pw@db:5432/joins?sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem"
            ),
            extracted(
                "postgresql://u:pw@db:5432/joins",
                Some("verify-full"),
                Some("/etc/ca.pem")
            )
        );
        assert_eq!(
            extract("postgres://db/joins?connect_timeout=5&sslmode=require&application_name=x"),
            extracted(
                "postgres://db/joins?connect_timeout=5&application_name=x",
                Some("require"),
                None
            )
        );
        // A `?` in the password is not the query: tokio-postgres reads up to the first `@`.
        assert_eq!(
            extract("postgresql://u:p?sslmode=disable@db/joins"),
            extracted("postgresql://u:p?sslmode=disable@db/joins", None, None)
        );
        assert_eq!(
            extract("postgresql://db/joins?ssl%6dode=verify-full"),
            extracted("postgresql://db/joins", Some("verify-full"), None),
            "keys are percent-decoded"
        );
        assert_eq!(
            extract("postgresql://db/joins"),
            extracted("postgresql://db/joins", None, None)
        );
        for bad in [
            "postgresql://db/joins?sslmode",
            "postgresql://db/joins?sslmode=%FF",
        ] {
            assert_eq!(extract(bad), extracted(bad, None, None), "{bad:?}");
        }
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%20b%2F").as_deref(), Some("a b/"));
        assert_eq!(percent_decode("100%").as_deref(), Some("100%"));
        assert_eq!(percent_decode("%zz").as_deref(), Some("%zz"));
        assert_eq!(percent_decode("%C3%A9").as_deref(), Some("é"));
        assert_eq!(percent_decode("%FF"), None);
    }

    fn mode_of(settings: &str) -> SslMode {
        Settings::parse(settings).unwrap().mode
    }

    #[test]
    fn default_mode_is_disable_only_on_this_machine() {
        for local in [
            "host=127.0.0.1",
            "host=127.8.9.10",
            "host=localhost,LOCALHOST",
            "host=::1",
            "host=/var/run/postgresql",
            "host=localhost,/tmp",
            "host=db hostaddr=127.0.0.1",
            "postgresql://[::1]:5432/joins",
            "postgresql://localhost/joins",
            "postgresql://%2Fvar%2Frun%2Fpostgresql/joins",
            "user=u",
        ] {
            assert_eq!(mode_of(local), SslMode::Disable, "{local}");
        }
        for remote in [
            "host=db",
            "host=localhost,db",
            "host=10.0.0.1",
            "host=localhost hostaddr=10.0.0.1",
            "host=localhost,localhost hostaddr=127.0.0.1,10.0.0.1",
            "postgresql://db.example.com/joins",
            "host=127.0.0.1 sslrootcert=/ca.pem",
        ] {
            assert_eq!(mode_of(remote), SslMode::VerifyFull, "{remote}");
        }
        assert_eq!(mode_of("host=db sslmode=disable"), SslMode::Disable);
        assert_eq!(mode_of("host=127.0.0.1 sslmode=require"), SslMode::Require);
        assert_eq!(
            mode_of("postgresql://127.0.0.1/x?sslmode=verify-full"),
            SslMode::VerifyFull
        );
    }

    #[test]
    fn tokio_postgres_sees_the_mode() {
        use tokio_postgres::config::SslMode as Pg;
        let mode = |s: &str| Settings::parse(s).unwrap().config.get_ssl_mode();
        assert_eq!(mode("host=db sslmode=disable"), Pg::Disable);
        assert_eq!(mode("host=db sslmode=require"), Pg::Require);
        assert_eq!(mode("host=db"), Pg::Require);
        assert_eq!(mode("host=localhost"), Pg::Disable);
    }

    #[test]
    fn roots() {
        let roots = |s: &str| Settings::parse(s).unwrap().roots;
        assert_eq!(roots("host=db"), Roots::System);
        assert_eq!(roots("host=db sslrootcert=system"), Roots::System);
        assert_eq!(
            roots("host=db sslrootcert=/ca.pem"),
            Roots::File("/ca.pem".into())
        );
    }

    /// The message of a refused setting, and that it is `InvalidConfig`.
    fn refusal(settings: &str) -> String {
        match Settings::parse(settings) {
            Err(PostgresRegistryError::InvalidConfig { source }) => source.to_string(),
            Err(other) => panic!("{settings}: {other:?}"),
            Ok(_) => panic!("{settings}: accepted"),
        }
    }

    #[test]
    fn refused_sslmodes_name_the_accepted_ones() {
        for mode in ["prefer", "allow", "verify-ca", "VERIFY-FULL", "x"] {
            assert_eq!(
                refusal(&format!("host=db password=secret sslmode={mode}")),
                format!(
                    "sslmode \"{mode}\" is not supported: use sslmode=disable, sslmode=require \
                     or sslmode=verify-full"
                )
            );
        }
        let long = refusal(&format!("host=db sslmode={}", "y".repeat(1000)));
        assert!(long.len() < 200, "{long}");
        assert_eq!(
            refusal("host=db sslmode=require sslrootcert=/ca.pem"),
            "sslrootcert with sslmode=require: the certificate would not be checked against \
             it; use sslmode=verify-full"
        );
        assert!(refusal("host=db sslmode=disable sslrootcert=/ca.pem").contains("sslmode=disable"));
        // tokio-postgres's refusals name the key, never the value.
        let message = refusal("host=db password=hunter2 port=x");
        assert!(!message.contains("hunter2"), "{message}");
    }

    #[test]
    fn debug_never_shows_the_password() {
        for settings in [
            "host=127.0.0.1 user=u password=hunter2",
            "postgresql://u:hunter2@127.0.0.1/joins",
            "host=db password=hunter2 sslmode=require",
        ] {
            let registry = crate::PostgresJoinRegistry::from_config(settings).unwrap();
            let debug = format!("{registry:?}");
            assert!(!debug.contains("hunter2"), "{debug}");
        }
    }

    #[test]
    fn root_files() {
        let dir = std::env::temp_dir().join(format!("ec2-iid-postgres-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let settings = |file: &str| {
            Settings::parse(&format!(
                "host=db sslmode=verify-full sslrootcert={}",
                dir.join(file).display()
            ))
            .unwrap()
        };
        let message = |file: &str| settings(file).tls().unwrap_err().to_string();
        assert!(
            message("missing.pem").ends_with("missing.pem\": cannot read it"),
            "{}",
            message("missing.pem")
        );
        std::fs::write(dir.join("empty.pem"), "not pem\n").unwrap();
        assert!(message("empty.pem").ends_with(": no PEM certificate in it"));
        std::fs::write(
            dir.join("garbage.pem"),
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        assert!(
            message("garbage.pem").contains(": not a CA certificate: "),
            "{}",
            message("garbage.pem")
        );
        let _ = std::fs::remove_dir_all(&dir);
        // `require` needs no roots, `disable` no connector.
        assert!(matches!(
            Settings::parse("host=db sslmode=require").unwrap().tls(),
            Ok(Tls::Rustls(_))
        ));
        assert!(matches!(
            Settings::parse("host=db sslmode=disable").unwrap().tls(),
            Ok(Tls::None)
        ));
    }
}
