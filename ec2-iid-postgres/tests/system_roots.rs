//! `sslmode=verify-full` without `sslrootcert` trusts the system's roots; where there are none,
//! setting up is an error that says what to give instead. A test binary of its own: it points
//! `SSL_CERT_FILE` (which rustls-native-certs reads) at an empty file.
#![cfg(test)] // clippy.toml says why

use ec2_iid_postgres::{PostgresJoinRegistry, PostgresRegistryError};

#[test]
#[allow(
    unsafe_code,
    reason = "set_var: the only test of this binary, so no other thread reads the environment"
)]
fn verify_full_without_system_roots_asks_for_sslrootcert() {
    let empty = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("no-roots.pem");
    std::fs::write(&empty, "").unwrap();
    // SAFETY: no other thread runs in this test binary's process now (one test).
    unsafe {
        std::env::set_var("SSL_CERT_FILE", &empty);
        std::env::remove_var("SSL_CERT_DIR");
    }
    for settings in [
        "host=db.example user=joins",
        "host=db.example sslmode=verify-full sslrootcert=system",
    ] {
        match PostgresJoinRegistry::from_config(settings) {
            Err(err @ PostgresRegistryError::InvalidConfig { .. }) => assert_eq!(
                core::error::Error::source(&err).unwrap().to_string(),
                "sslmode=verify-full without sslrootcert: no system root certificate found; give \
                 sslrootcert=FILE (the PEM file of the CA that signed the server's certificate)"
            ),
            other => panic!("{settings}: {other:?}"),
        }
    }
    // A loopback host needs no roots (no TLS by default).
    assert!(PostgresJoinRegistry::from_config("host=127.0.0.1").is_ok());
}
