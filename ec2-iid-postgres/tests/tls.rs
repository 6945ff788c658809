//! `sslmode` against a real PostgreSQL with `ssl=on`, a server certificate from a test CA made
//! here (rcgen), and TCP connections without TLS refused by its `pg_hba.conf`.
#![cfg(test)] // clippy.toml says why

use core::error::Error;
use std::path::{Path, PathBuf};

use ec2_iid::JoinRegistry as _;
use ec2_iid_postgres::{Operation, PostgresJoinRegistry, PostgresRegistryError};
use ec2_iid_test_support::postgres;
use ec2_iid_test_support::postgres::{PgServer, ServerTls};
use ec2_iid_test_support::registries::claim;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};

/// A CA's certificate (PEM) and the issuer that signs with it.
fn ca(name: &str) -> (String, Issuer<'static, KeyPair>) {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.distinguished_name.push(DnType::CommonName, name);
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), Issuer::new(params, key))
}

/// The TLS cluster with a certificate for `localhost` and 127.0.0.1 signed by a test CA; the
/// CA's PEM file and another CA's, in a scratch directory.
struct Setup {
    pg: PgServer,
    ca: PathBuf,
    wrong_ca: PathBuf,
}

fn setup() -> Option<Setup> {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("postgres-tls");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (ca_pem, issuer) = ca("ec2-iid-postgres test CA");
    let (wrong_pem, _) = ca("ec2-iid-postgres other CA");
    let server_key = KeyPair::generate().unwrap();
    let mut params =
        CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    let server_cert = params.signed_by(&server_key, &issuer).unwrap();
    let pg = postgres::own_tls_server(ServerTls {
        cert_pem: server_cert.pem(),
        key_pem: server_key.serialize_pem(),
    })?;
    let ca = dir.join("ca.pem");
    let wrong_ca = dir.join("wrong-ca.pem");
    std::fs::write(&ca, ca_pem).unwrap();
    std::fs::write(&wrong_ca, wrong_pem).unwrap();
    Some(Setup { pg, ca, wrong_ca })
}

/// An error and its sources, `: `-separated.
fn chain(err: &(dyn Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Migrates, claims a host once (won) and again (a replay, refused) through `settings`, and
/// checks that the connection is encrypted.
async fn claims_work(settings: &str, table: &str) {
    let registry = PostgresJoinRegistry::from_config(settings)
        .unwrap()
        .with_table(table)
        .unwrap();
    registry.migrate().await.unwrap();
    assert!(registry.claim(&claim("h", 0, 1)).await.unwrap(), "{table}");
    assert!(!registry.claim(&claim("h", 0, 2)).await.unwrap(), "{table}");
    let client = registry.pool().get().await.unwrap();
    let ssl: bool = client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(ssl, "{table}: the connection is TLS");
}

/// The error of a claim through `settings`.
async fn claim_error(settings: &str) -> PostgresRegistryError {
    let registry = PostgresJoinRegistry::from_config(settings).unwrap();
    registry.claim(&claim("h", 0, 1)).await.unwrap_err()
}

#[tokio::test]
async fn sslmode_against_a_server_that_requires_tls() {
    let Some(Setup { pg, ca, wrong_ca }) = setup() else {
        return;
    };
    let port = pg.port;
    let base = format!("host=127.0.0.1 port={port} user=postgres dbname=postgres");

    // verify-full with the CA: the key=value form, then the URL form (by name, the path
    // percent-encoded).
    claims_work(
        &format!("{base} sslmode=verify-full sslrootcert={}", ca.display()),
        "verify_full",
    )
    .await;
    let encoded: String = ca.display().to_string().replace('/', "%2F");
    claims_work(
        &format!(
            "postgresql://postgres@localhost:{port}/postgres?sslmode=verify-full&sslrootcert={encoded}"
        ),
        "verify_full_url",
    )
    .await;
    // sslrootcert alone means verify-full, even on loopback.
    claims_work(
        &format!("{base} sslrootcert='{}'", ca.display()),
        "rootcert_only",
    )
    .await;
    // require: TLS, whatever the certificate.
    claims_work(&format!("{base} sslmode=require"), "require").await;

    // Another CA: the certificate is refused, a configuration error (not transient).
    let err = claim_error(&format!(
        "{base} sslmode=verify-full sslrootcert={}",
        wrong_ca.display()
    ))
    .await;
    assert!(
        matches!(
            err,
            PostgresRegistryError::Tls {
                operation: Operation::Claim,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(!err.is_transient());
    let message = chain(&err);
    assert!(
        message.starts_with("claim: TLS handshake with the database failed: "),
        "{message}"
    );
    assert!(message.contains("UnknownIssuer"), "{message}");

    // The right CA, but the certificate is not for the name connected to.
    let err = claim_error(&format!(
        "host=db.example hostaddr=127.0.0.1 port={port} user=postgres sslmode=verify-full \
         sslrootcert={}",
        ca.display()
    ))
    .await;
    assert!(matches!(err, PostgresRegistryError::Tls { .. }), "{err:?}");
    assert!(
        chain(&err).contains("certificate not valid for name \"db.example\""),
        "{}",
        chain(&err)
    );

    // Without TLS (asked for, or the loopback default), the server refuses the login: SQLSTATE
    // 28000, a configuration to fix, not an outage to wait out.
    for settings in [format!("{base} sslmode=disable"), base.clone()] {
        let err = claim_error(&settings).await;
        assert!(
            matches!(&err, PostgresRegistryError::Database { code: Some(code), .. } if code == "28000"),
            "{err:?}"
        );
        assert!(!err.is_transient());
        let message = chain(&err);
        assert!(
            message.contains("no pg_hba.conf entry") && message.contains("no encryption"),
            "{message}"
        );
    }
}

#[tokio::test]
async fn require_against_a_server_without_tls_is_an_error() {
    // The shared plain cluster: it has no certificate, so it answers the TLS request with "no".
    let Some(pg) = postgres::server() else { return };
    let err = claim_error(&format!(
        "host=127.0.0.1 port={} user=postgres sslmode=require",
        pg.port
    ))
    .await;
    assert!(matches!(err, PostgresRegistryError::Pool { .. }), "{err:?}");
    assert!(
        chain(&err).contains("server does not support TLS"),
        "{}",
        chain(&err)
    );
}
