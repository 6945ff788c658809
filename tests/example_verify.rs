//! The `verify` example does what its doc says: accepts a real `/rsa2048` sample of the
//! allowed account with AWS's certificates, and rejects (exit 1, kind and reason on stderr)
//! what the library rejects. The command-line contract is `ec2-iid verify`'s
//! (ec2-iid-cli/tests/verify_contract).
#![cfg(test)] // clippy.toml says why

mod shared;

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::OnceLock;

/// Builds the example once (it is not always built before integration tests) and returns it.
fn example() -> &'static PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let status = Command::new(env!("CARGO"))
            .args(["build", "--quiet", "--example", "verify"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .unwrap();
        assert!(status.success());
        // target/<profile>/deps/<this test> -> target/<profile>/examples/verify
        let exe = std::env::current_exe().unwrap();
        let profile_dir = exe.parent().unwrap().parent().unwrap();
        profile_dir
            .join("examples")
            .join(format!("verify{}", std::env::consts::EXE_SUFFIX))
    })
}

fn run(args: &[&str]) -> Output {
    Command::new(example())
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn accepts_a_real_sample_of_the_allowed_account_only() {
    let samples = shared::samples_of("rsa2048");
    let accepted: Vec<_> = samples.iter().filter(|s| s.expect == "accept").collect();
    assert!(!accepted.is_empty() || shared::samples().is_none());
    for sample in accepted {
        let path = shared::dir().join(format!("{}.rsa2048.b64", sample.id));
        let (path, now) = (path.to_str().unwrap(), sample.now.to_rfc3339());

        let out = run(&[path, &sample.account_id, &now]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let stdout = text(&out.stdout);
        assert!(
            stdout.starts_with(&format!(
                "accepted: {} in {}",
                sample.instance_id, sample.region
            )),
            "{stdout}"
        );
        let host_id = format!("host id {}-{}", sample.account_id, sample.instance_id);
        assert!(stdout.contains(&host_id), "{stdout}");

        let out = run(&[path, "111111111111", &now]);
        assert_eq!(out.status.code(), Some(1), "{}", sample.id);
        assert!(out.stdout.is_empty());
        let stderr = text(&out.stderr);
        assert!(
            stderr.starts_with("rejected (no_rule_matched): "),
            "{stderr}"
        );
        assert!(stderr.contains("\nhint: "), "{stderr}");
    }
}

#[test]
fn rejects_the_test_ca_fixture_and_bad_usage() {
    // Signed by the crate's test CA, which AWS's certificates do not include.
    let args = [
        "tests/data/gen/rsa2048.b64",
        "123456789012",
        "2026-11-01T12:01:00Z",
    ];
    let out = run(&args);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).starts_with("rejected (untrusted_signer): "));

    let out = run(&args[..2]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).starts_with("usage: verify FILE ACCOUNT NOW"));
}
