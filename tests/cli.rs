//! The `verify` example's contract: flags, exit codes (0 accepted, 1 rejected, 2 usage), JSON.
//!
//! The contract it shares with `ec2-iid verify` is tested in `verify_contract/`; here are the
//! example's own usage text and the real samples.
#![cfg(test)] // clippy.toml says why

mod shared;
mod verify_contract;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use verify_contract::{json, run, run_in_root};

/// Builds the example once (it is not always built before integration tests) and returns it.
fn verify_bin() -> &'static PathBuf {
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

/// The workspace root, where the example runs.
fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The example takes the verify flags directly.
const VERIFY: &[&str] = &[];

/// Runs the example with `args`, `stdin` on standard input.
fn command(args: &[&str], stdin: Option<&[u8]>) -> Output {
    run_in_root(verify_bin(), args, stdin)
}

/// The example reports a rejection on stderr only (exit 1, stdout empty); it prints no kind.
fn refused(output: &Output, _kind: &str) {
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.stdout.is_empty());
    assert!(!output.stderr.is_empty());
}

#[test]
fn help_goes_to_stdout_and_exits_0() {
    for flag in ["--help", "-h"] {
        let out = run(&[flag], None);
        assert_eq!(out.status.code(), Some(0));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.starts_with("usage: verify"), "{stdout}");
        assert!(stdout.contains("--ttl DURATION"), "{stdout}");
        assert!(out.stderr.is_empty());
    }
}

#[test]
fn seed_token_rejects_a_real_sample_from_another_account() {
    for sample in shared::samples_of("rsa2048")
        .iter()
        .filter(|s| s.expect == "accept")
    {
        let path = shared::dir().join(format!("{}.rsa2048.b64", sample.id));
        let now = sample.now.to_rfc3339();
        let out = run(
            &[
                "--now",
                &now,
                "--token",
                "tests/data/tokens/ec2-token.yaml",
                path.to_str().unwrap(),
            ],
            None,
        );
        assert_eq!(out.status.code(), Some(1), "{}", sample.id);
        assert!(String::from_utf8_lossy(&out.stderr).contains("matched none of the allow rules"));
        // And accepted without a token: the signature alone is AWS's.
        let out = run(&["--now", &now, path.to_str().unwrap()], None);
        assert_eq!(
            json(&out)["document"]["accountId"],
            sample.account_id.as_str()
        );
    }
}

#[test]
fn real_pkcs7_and_signature_samples() {
    for sample in shared::samples_of("pkcs7")
        .iter()
        .filter(|s| s.expect == "accept")
    {
        let path = shared::dir().join(format!("{}.pkcs7.b64", sample.id));
        let now = sample.now.to_rfc3339();
        let path = path.to_str().unwrap();
        assert_eq!(run(&["--now", &now, path], None).status.code(), Some(1));
        let value = json(&run(&["--now", &now, "--allow-legacy-dsa", path], None));
        assert_eq!(value["signer"]["format"], "pkcs7", "{}", sample.id);
        assert_eq!(value["document"]["accountId"], sample.account_id.as_str());
    }
    for sample in shared::samples_of("signature") {
        let document = shared::dir().join(format!("{}.document.json", sample.id));
        let signature = shared::dir().join(format!("{}.signature.b64", sample.id));
        let args = [
            "--document",
            document.to_str().unwrap(),
            signature.to_str().unwrap(),
        ];
        // Refused without the opt-in, whatever the sample.
        assert_eq!(run(&args, None).status.code(), Some(1), "{}", sample.id);
        let out = run(&[&["--allow-legacy-rsa1024"][..], &args].concat(), None);
        let expected = if sample.expect == "accept" { 0 } else { 1 };
        assert_eq!(out.status.code(), Some(expected), "{}", sample.id);
    }
}
