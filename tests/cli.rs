//! The `verify` example's contract: flags, exit codes (0 accepted, 1 rejected, 2 usage), JSON.
#![cfg(test)] // clippy.toml says why

mod shared;

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

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

fn run(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(verify_bin())
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or_default()).unwrap();
    drop(input);
    child.wait_with_output().unwrap()
}

const TEST_CA: [&str; 4] = [
    "--cert",
    "tests/data/testca/testca.pem",
    "--cert-region",
    "us-east-1",
];
const NOW: [&str; 2] = ["--now", "2026-11-01T12:01:00Z"];

fn json(output: &Output) -> serde_json::Value {
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout.clone()).unwrap();
    assert_eq!(text.lines().count(), 1, "one JSON object on one line");
    serde_json::from_str(&text).unwrap()
}

#[test]
fn readme_command_accepts_the_fixture() {
    let out = run(
        &[&NOW[..], &TEST_CA[..], &["tests/data/gen/rsa2048.b64"]].concat(),
        None,
    );
    let value = json(&out);
    assert_eq!(value["document"]["accountId"], "123456789012");
    assert_eq!(value["document"]["pendingTime"], "2026-11-01T12:00:00Z");
    assert_eq!(value["signer"]["region"], "us-east-1");
    assert_eq!(value["signer"]["serial"], "E1D2C3B4A5968778");
    assert_eq!(value["host_id"], "123456789012-i-0123456789abcdef0");
}

#[test]
fn stdin_and_other_encodings() {
    for file in ["rsa2048.der", "rsa2048.pem", "rsa2048-crlf.b64"] {
        let blob = std::fs::read(format!("tests/data/gen/{file}")).unwrap();
        let out = run(&[&NOW[..], &TEST_CA[..], &["-"]].concat(), Some(&blob));
        assert_eq!(
            json(&out)["document"]["instanceId"],
            "i-0123456789abcdef0",
            "{file}"
        );
    }
}

#[test]
fn rejections_exit_1() {
    for file in [
        "tampered-content.b64",
        "tampered-signature.b64",
        "truncated.der",
        "trailing.der",
    ] {
        let out = run(
            &[&NOW[..], &TEST_CA[..], &[&format!("tests/data/gen/{file}")]].concat(),
            None,
        );
        assert_eq!(out.status.code(), Some(1), "{file}");
        assert!(out.stdout.is_empty());
        assert!(!out.stderr.is_empty());
    }
    // Without the test CA, the fixture's signer is unknown.
    let out = run(&[&NOW[..], &["tests/data/gen/rsa2048.b64"]].concat(), None);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("E1D2C3B4A5968778"));
    let out = run(&[], Some(b"garbage!"));
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &["--bogus"][..],
        &["--now"],
        &["--now", "yesterday"],
        &["--cert", "tests/data/testca/testca.pem"],
        &["--cert-region", "us-east-1"],
        &["--format", "dsa2048"],
        &["a", "b"],
        &["/nonexistent/blob"],
        &[
            "--cert",
            "/nonexistent.pem",
            "--cert-region",
            "us-east-1",
            "tests/data/gen/rsa2048.b64",
        ],
        &[
            "--cert",
            "tests/data/testca/testca.pem",
            "--cert-region",
            "Mars",
        ],
        &["--facts", "x.json", "tests/data/gen/rsa2048.b64"],
        &["--token", "/nonexistent.yaml", "tests/data/gen/rsa2048.b64"],
    ] {
        let out = run(args, None);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
}

fn write_temp(name: &str, contents: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ec2-iid-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

#[test]
fn token_and_facts() {
    let token = write_temp(
        "token.json",
        r#"{"allow": [{"aws_account": "111111111111"}, {"aws_account": "123456789012"}], "aws_iid_ttl": "5m"}"#,
    );
    let token = token.to_str().unwrap();
    let blob = "tests/data/gen/rsa2048.b64";
    let out = run(
        &[&NOW[..], &TEST_CA[..], &["--token", token, blob]].concat(),
        None,
    );
    let value = json(&out);
    assert_eq!(value["matched_rule"], 1);
    assert_eq!(value["host_id"], "123456789012-i-0123456789abcdef0");
    assert_eq!(value["instance_checked"], false);

    // Six minutes after pendingTime with a 5m TTL.
    let late = ["--now", "2026-11-01T12:06:00Z"];
    let out = run(
        &[&late[..], &TEST_CA[..], &["--token", token, blob]].concat(),
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("older than the TTL"));

    let facts = |state: &str| {
        write_temp(
            &format!("facts-{state}.json"),
            &format!(
                r#"{{"instance_id": "i-0123456789abcdef0", "state": "{state}", "owner_id": "123456789012"}}"#
            ),
        )
    };
    let running = facts("running");
    let args = [
        &NOW[..],
        &TEST_CA[..],
        &["--token", token, "--facts", running.to_str().unwrap(), blob],
    ];
    let checked = json(&run(&args.concat(), None));
    assert_eq!(checked["matched_rule"], 1);
    assert_eq!(checked["instance_checked"], true);
    assert_eq!(checked["host_id"], "123456789012-i-0123456789abcdef0");
    let stopped = facts("stopped");
    let args = [
        &NOW[..],
        &TEST_CA[..],
        &["--token", token, "--facts", stopped.to_str().unwrap(), blob],
    ];
    let out = run(&args.concat(), None);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("stopped"));
}

/// Runs the README's fixture with a token of these contents; the exit code and stderr.
fn with_token(name: &str, token: &str, extra: &[&str]) -> (Option<i32>, String) {
    let path = write_temp(name, token);
    let args = [
        &NOW[..],
        &TEST_CA[..],
        extra,
        &[
            "--token",
            path.to_str().unwrap(),
            "tests/data/gen/rsa2048.b64",
        ],
    ];
    let out = run(&args.concat(), None);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Each misconfiguration of issue 13 is a setup error (exit 2) that says what to change, or a
/// refusal (exit 1): never an admission.
#[test]
fn misconfigurations_never_admit() {
    let setup_errors = [
        (
            r#"{"allow": [{"aws_account": "123456789012", "aws_region": ["us-west-2"]}]}"#,
            "unknown field spec.allow[0].aws_region: did you mean aws_regions?",
        ),
        (
            r#"{"allow": [{"aws_account": "123456789012"}], "aws_iid_ttl": 300}"#,
            "spec.aws_iid_ttl is 300ns, under one second",
        ),
        (
            r#"{"allow": [{"aws_account": "123456789012", "aws_regions": ["us-east1"]}]}"#,
            "spec.allow[0].aws_regions[0]: \"us-east1\" is not a valid region",
        ),
        (
            r#"{"allow": [{"aws_role": "not-an-arn"}]}"#,
            "spec.allow[0].aws_role: \"not-an-arn\" is not a valid IAM role ARN",
        ),
        (
            r#"{"allow": [{"aws_account": "123456789012", "aws_role": "arn:aws:iam::999999999999:role/x"}]}"#,
            "is in account 999999999999, not in the rule's aws_account 123456789012",
        ),
        (
            r#"{"allow": [{"aws_account": "123456789012", "aws_regions": ["xx-nowhere-1"]}]}"#,
            "no trusted certificate for region xx-nowhere-1",
        ),
        (
            r#"{"allow": [{"aws_regions": ["us-east-1"]}]}"#,
            "sets neither aws_account nor aws_role",
        ),
    ];
    for (index, (token, message)) in setup_errors.into_iter().enumerate() {
        let (code, stderr) = with_token(&format!("bad-{index}.json"), token, &[]);
        assert_eq!(code, Some(2), "{token}: {stderr}");
        assert!(stderr.contains(message), "{token}: {stderr}");
    }
    // A role-only rule admits only the role's account.
    let (code, stderr) = with_token(
        "role-only.json",
        r#"{"allow": [{"aws_role": "arn:aws:iam::999999999999:role/x"}]}"#,
        &[],
    );
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("rule 0: aws_account"), "{stderr}");
    // An expired token admits no one.
    let expired = r#"{"kind": "token", "version": "v2",
        "metadata": {"name": "t", "expires": "2026-11-01T12:00:00Z"},
        "spec": {"allow": [{"aws_account": "123456789012"}]}}"#;
    let (code, stderr) = with_token("expired.json", expired, &[]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("token expired"), "{stderr}");
    // --ttl and a token's aws_iid_ttl would compete.
    let ok = r#"{"allow": [{"aws_account": "123456789012"}]}"#;
    let (code, stderr) = with_token("ttl.json", ok, &["--ttl", "1h"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert_eq!(with_token("ok.json", ok, &[]).0, Some(0));
}

#[test]
fn now_without_a_token_applies_the_default_ttl() {
    let blob = "tests/data/gen/rsa2048.b64";
    let at = |now: &str, extra: &[&str]| {
        let args = [&["--now", now][..], &TEST_CA[..], extra, &[blob]];
        run(&args.concat(), None)
    };
    let far = at("2099-01-01T00:00:00Z", &[]);
    assert_eq!(far.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&far.stderr).contains("older than the TTL of 300s"));
    assert_eq!(at("2026-11-01T12:05:00Z", &[]).status.code(), Some(0));
    assert_eq!(at("2026-11-01T12:06:00Z", &[]).status.code(), Some(1));
    assert_eq!(
        at("2026-11-01T12:30:00Z", &["--ttl", "1h"]).status.code(),
        Some(0)
    );
    assert_eq!(
        at("2026-11-01T12:30:00Z", &["--ttl", "5"]).status.code(),
        Some(2)
    );
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

const DSA_CA: [&str; 4] = [
    "--cert",
    "tests/data/testca/testca-dsa.pem",
    "--cert-region",
    "us-east-1",
];

#[test]
fn pkcs7_needs_the_legacy_opt_in() {
    let blob = "tests/data/gen/pkcs7.b64";
    for format in [&["--format", "pkcs7"][..], &[]] {
        let args = [&NOW[..], format, &DSA_CA[..], &[blob]].concat();
        // --cert without --format adds to rsa2048, where a DSA key is a usage error.
        if format.is_empty() {
            assert_eq!(run(&args, None).status.code(), Some(2));
            continue;
        }
        let out = run(&args, None);
        assert_eq!(out.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&out.stderr).contains("allow_legacy_dsa_sha1"));
        let args = [&args[..], &["--allow-legacy-dsa"]].concat();
        let value = json(&run(&args, None));
        assert_eq!(value["signer"]["format"], "pkcs7");
        assert_eq!(value["signer"]["serial"], "D5A1C3B4A5968779");
        assert_eq!(value["host_id"], "123456789012-i-0123456789abcdef0");
    }
    // The CMS format is detected without --format: an /rsa2048 blob still works.
    let value = json(&run(
        &[
            &NOW[..],
            &TEST_CA[..],
            &["--allow-legacy-dsa", "tests/data/gen/rsa2048.b64"],
        ]
        .concat(),
        None,
    ));
    assert_eq!(value["signer"]["format"], "rsa2048");
}

#[test]
fn signature_with_document() {
    let document = ["--document", "tests/data/gen/document.json"];
    let signature = "tests/data/gen/signature.b64";
    // --document implies --format signature, for the certificate too.
    for format in [&["--format", "signature"][..], &[]] {
        let args = [&NOW[..], format, &document[..], &TEST_CA[..], &[signature]].concat();
        let value = json(&run(&args, None));
        assert_eq!(value["signer"]["format"], "signature");
        assert_eq!(value["signer"]["signing_time"], serde_json::Value::Null);
        assert_eq!(value["host_id"], "123456789012-i-0123456789abcdef0");
    }
    // Without the test CA, AWS's us-east-1 key does not verify it.
    let out = run(&[&NOW[..], &document[..], &[signature]].concat(), None);
    assert_eq!(out.status.code(), Some(1));
    // The signature text from stdin.
    let text = std::fs::read(signature).unwrap();
    let out = run(
        &[&NOW[..], &document[..], &TEST_CA[..], &["-"]].concat(),
        Some(&text),
    );
    assert_eq!(json(&out)["signer"]["format"], "signature");
    for args in [
        &["--format", "signature", signature][..],
        &[
            "--format",
            "rsa2048",
            "--document",
            "tests/data/gen/document.json",
            signature,
        ],
        &[
            "--format",
            "pkcs7",
            "--document",
            "tests/data/gen/document.json",
            signature,
        ],
        &["--document", "/nonexistent.json", signature],
        &["--document"],
    ] {
        assert_eq!(run(args, None).status.code(), Some(2), "{args:?}");
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
        let out = run(
            &[
                "--document",
                document.to_str().unwrap(),
                signature.to_str().unwrap(),
            ],
            None,
        );
        let expected = if sample.expect == "accept" { 0 } else { 1 };
        assert_eq!(out.status.code(), Some(expected), "{}", sample.id);
    }
}
