//! The contract of `ec2-iid verify`, on the committed fixtures, run from the workspace root:
//! flags, exit codes (0 accepted, 1 rejected, 2 usage) and the JSON of an accepted document.
//!
//! The including test crate (`cli.rs`) provides, beside this module:
//! * `command(args, stdin)`: runs `ec2-iid` ([`run_in_root`]);
//! * `VERIFY`: the subcommand before the verify flags;
//! * `refused(output, kind)`: asserts a rejection (exit 1) of this kind;
//! * `root()`: the workspace root, for reading fixtures.

use std::ffi::OsStr;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use super::{VERIFY, command, refused, root};

pub(crate) const TEST_CA: [&str; 4] = [
    "--cert",
    "tests/data/testca/testca.pem",
    "--cert-region",
    "us-east-1",
];
pub(crate) const DSA_CA: [&str; 4] = [
    "--cert",
    "tests/data/testca/testca-dsa.pem",
    "--cert-region",
    "us-east-1",
];
pub(crate) const NOW: [&str; 2] = ["--now", "2026-11-01T12:01:00Z"];
pub(crate) const BLOB: &str = "tests/data/gen/rsa2048.b64";

/// Runs `program ARGS` in the workspace root, with `stdin` on standard input.
pub(crate) fn run_in_root(
    program: impl AsRef<OsStr>,
    args: &[&str],
    stdin: Option<&[u8]>,
) -> Output {
    let mut child = Command::new(program)
        .args(args)
        .current_dir(root())
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

/// `verify ARGS`, with `stdin` on standard input.
pub(crate) fn run(args: &[&str], stdin: Option<&[u8]>) -> Output {
    command(&[VERIFY, args].concat(), stdin)
}

pub(crate) fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

pub(crate) fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The one-line JSON object on stdout of an accepted document.
pub(crate) fn json(output: &Output) -> serde_json::Value {
    assert_eq!(output.status.code(), Some(0), "{}", stderr(output));
    one_json_line(output)
}

pub(crate) fn one_json_line(output: &Output) -> serde_json::Value {
    let text = stdout(output);
    assert_eq!(
        text.lines().count(),
        1,
        "one JSON object on one line: {text}"
    );
    serde_json::from_str(&text).unwrap()
}

/// Writes `contents` to `name` in a folder of this test process.
pub(crate) fn write_temp(name: &str, contents: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "{}-{}-{}",
        env!("CARGO_PKG_NAME"),
        env!("CARGO_CRATE_NAME"),
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

/// Runs `SUBCOMMAND` (`VERIFY` for verify) on the README's fixture with a token of these
/// contents.
pub(crate) fn with_token(subcommand: &[&str], name: &str, token: &str, extra: &[&str]) -> Output {
    let path = write_temp(name, token);
    let args = [
        subcommand,
        &NOW[..],
        &TEST_CA[..],
        extra,
        &["--token", path.to_str().unwrap(), BLOB],
    ];
    command(&args.concat(), None)
}

#[test]
fn readme_command_accepts_the_fixture() {
    let out = run(&[&NOW[..], &TEST_CA[..], &[BLOB]].concat(), None);
    let value = json(&out);
    assert_eq!(value["document"]["accountId"], "123456789012");
    assert_eq!(value["document"]["pendingTime"], "2026-11-01T12:00:00Z");
    assert_eq!(value["signer"]["region"], "us-east-1");
    assert_eq!(value["signer"]["serial"], "E1D2C3B4A5968778");
    assert_eq!(value["host_id"], "123456789012-i-0123456789abcdef0");
    assert!(value.get("matched_rule").is_none());
}

#[test]
fn stdin_and_other_encodings() {
    for file in ["rsa2048.der", "rsa2048.pem", "rsa2048-crlf.b64"] {
        let blob = std::fs::read(root().join("tests/data/gen").join(file)).unwrap();
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
    for (file, kind) in [
        ("tampered-content.b64", "bad_signature"),
        ("tampered-signature.b64", "bad_signature"),
        ("truncated.der", "malformed"),
        ("trailing.der", "malformed"),
    ] {
        let out = run(
            &[&NOW[..], &TEST_CA[..], &[&format!("tests/data/gen/{file}")]].concat(),
            None,
        );
        refused(&out, kind);
    }
    // Without the test CA, the fixture's signer is unknown.
    let out = run(&[&NOW[..], &[BLOB]].concat(), None);
    refused(&out, "untrusted_signer");
    assert!(stderr(&out).contains("E1D2C3B4A5968778"));
    let out = run(&[], Some(b"garbage!"));
    refused(&out, "malformed");
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &["--bogus"][..],
        &["--now"],
        &["--now", "yesterday"],
        &["--cert", "tests/data/testca/testca.pem"],
        &["--cert-region", "us-east-1"],
        &[
            "--cert",
            "tests/data/testca/testca.pem",
            "--cert",
            "tests/data/testca/testca.pem",
            "--cert-region",
            "us-east-1",
        ],
        &["--format", "dsa2048"],
        &["a", "b"],
        &["/nonexistent/blob"],
        &[
            "--cert",
            "/nonexistent.pem",
            "--cert-region",
            "us-east-1",
            BLOB,
        ],
        &[
            "--cert",
            "tests/data/testca/testca.pem",
            "--cert-region",
            "Mars",
        ],
        &["--facts", "x.json", BLOB],
        &["--token", "/nonexistent.yaml", BLOB],
    ] {
        let out = run(args, None);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
        assert!(stderr(&out).starts_with("error: "), "{args:?}");
    }
}

#[test]
fn cert_regions_pair_with_the_cert_before_them() {
    // Other flags may come between a --cert and its --cert-region.
    let args = [
        "--cert",
        "tests/data/testca/testca.pem",
        "--now",
        "2026-11-01T12:01:00Z",
        "--cert-region",
        "eu-west-1,us-east-1",
        BLOB,
    ];
    assert_eq!(json(&run(&args, None))["signer"]["region"], "us-east-1");
}

#[test]
fn token_and_facts() {
    let token = write_temp(
        "token.json",
        r#"{"allow": [{"aws_account": "111111111111"}, {"aws_account": "123456789012"}], "aws_iid_ttl": "5m"}"#,
    );
    let token = token.to_str().unwrap();
    let out = run(
        &[&NOW[..], &TEST_CA[..], &["--token", token, BLOB]].concat(),
        None,
    );
    let value = json(&out);
    assert_eq!(value["matched_rule"], 1);
    assert_eq!(value["host_id"], "123456789012-i-0123456789abcdef0");
    assert_eq!(value["instance_checked"], false);

    // Six minutes after pendingTime with a 5m TTL.
    let late = ["--now", "2026-11-01T12:06:00Z"];
    let out = run(
        &[&late[..], &TEST_CA[..], &["--token", token, BLOB]].concat(),
        None,
    );
    refused(&out, "stale");
    assert!(stderr(&out).contains("older than the TTL"));

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
        &["--token", token, "--facts", running.to_str().unwrap(), BLOB],
    ];
    let checked = json(&run(&args.concat(), None));
    assert_eq!(checked["matched_rule"], 1);
    assert_eq!(checked["instance_checked"], true);
    assert_eq!(checked["host_id"], "123456789012-i-0123456789abcdef0");
    let stopped = facts("stopped");
    let args = [
        &NOW[..],
        &TEST_CA[..],
        &["--token", token, "--facts", stopped.to_str().unwrap(), BLOB],
    ];
    let out = run(&args.concat(), None);
    refused(&out, "instance_rejected");
    assert!(stderr(&out).contains("stopped"));
}

/// A rule of another partition's role is no match, and the rule that admits the instance is
/// the first whose bounds hold too: `matched_rule` names it.
#[test]
fn partition_and_first_match_decide_matched_rule() {
    let token = write_temp(
        "token-partition.json",
        r#"{"allow": [{"aws_role": "arn:aws-cn:iam::123456789012:role/join"},
                      {"aws_account": "123456789012", "aws_vpc_ids": ["vpc-11111111"]},
                      {"aws_account": "123456789012"}]}"#,
    );
    let token = token.to_str().unwrap();
    let args = [&NOW[..], &TEST_CA[..], &["--token", token, BLOB]].concat();
    assert_eq!(json(&run(&args, None))["matched_rule"], 1);
    for (vpc, rule) in [("vpc-11111111", 1), ("vpc-22222222", 2)] {
        let facts = write_temp(
            &format!("facts-{vpc}.json"),
            &format!(
                r#"{{"instance_id": "i-0123456789abcdef0", "state": "running",
                    "owner_id": "123456789012", "vpc_id": "{vpc}"}}"#
            ),
        );
        let args = [
            &NOW[..],
            &TEST_CA[..],
            &["--token", token, "--facts", facts.to_str().unwrap(), BLOB],
        ];
        let checked = json(&run(&args.concat(), None));
        assert_eq!(checked["matched_rule"], rule, "{vpc}");
        assert_eq!(checked["instance_checked"], true);
    }
    // A role and regions of different partitions: a setup error naming both.
    let mixed = write_temp(
        "token-mixed.json",
        r#"{"allow": [{"aws_role": "arn:aws-cn:iam::123456789012:role/join",
                       "aws_regions": ["us-east-1"]}]}"#,
    );
    let args = [
        &NOW[..],
        &TEST_CA[..],
        &["--token", mixed.to_str().unwrap(), BLOB],
    ];
    let out = run(&args.concat(), None);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let message = stderr(&out);
    assert!(
        message.contains("region us-east-1 is in partition aws, but aws_role"),
        "{message}"
    );
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
        (
            r#"{"allow": [{"aws_account": "111111111111", "aws_account": "123456789012"}]}"#,
            "duplicate field spec.allow[0].aws_account: write each field once",
        ),
    ];
    for (index, (token, message)) in setup_errors.into_iter().enumerate() {
        let out = with_token(VERIFY, &format!("bad-{index}.json"), token, &[]);
        assert_eq!(out.status.code(), Some(2), "{token}: {}", stderr(&out));
        assert!(stderr(&out).contains(message), "{token}: {}", stderr(&out));
    }
    // A role-only rule admits only the role's account.
    let out = with_token(
        VERIFY,
        "role-only.json",
        r#"{"allow": [{"aws_role": "arn:aws:iam::999999999999:role/x"}]}"#,
        &[],
    );
    refused(&out, "no_rule_matched");
    assert!(stderr(&out).contains("rule 0: aws_account"));
    // An expired token admits no one.
    let expired = r#"{"kind": "token", "version": "v2",
        "metadata": {"name": "t", "expires": "2026-11-01T12:00:00Z"},
        "spec": {"allow": [{"aws_account": "123456789012"}]}}"#;
    let out = with_token(VERIFY, "expired.json", expired, &[]);
    refused(&out, "token_expired");
    assert!(stderr(&out).contains("token expired"));
    // --ttl and a token's aws_iid_ttl would compete.
    let ok = r#"{"allow": [{"aws_account": "123456789012"}]}"#;
    let out = with_token(VERIFY, "ttl.json", ok, &["--ttl", "1h"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let out = with_token(VERIFY, "ok.json", ok, &[]);
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn now_without_a_token_applies_the_default_ttl() {
    let at = |now: &str, extra: &[&str]| {
        let args = [&["--now", now][..], &TEST_CA[..], extra, &[BLOB]];
        run(&args.concat(), None)
    };
    let far = at("2099-01-01T00:00:00Z", &[]);
    refused(&far, "stale");
    assert!(stderr(&far).contains("older than the TTL of 5m0s"));
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
        refused(&out, "refused_algorithm");
        assert!(stderr(&out).contains("allow_legacy_dsa_sha1"));
        let args = [&args[..], &["--allow-legacy-dsa"]].concat();
        let value = json(&run(&args, None));
        assert_eq!(value["signer"]["format"], "pkcs7");
        assert_eq!(value["signer"]["serial"], "D5A1C3B4A5968779");
        assert_eq!(value["host_id"], "123456789012-i-0123456789abcdef0");
    }
    // The CMS format is detected without --format: an /rsa2048 blob still works.
    let value = json(&run(
        &[&NOW[..], &TEST_CA[..], &["--allow-legacy-dsa", BLOB]].concat(),
        None,
    ));
    assert_eq!(value["signer"]["format"], "rsa2048");
}

#[test]
fn signature_with_document() {
    let document = [
        "--document",
        "tests/data/gen/document.json",
        "--allow-legacy-rsa1024",
    ];
    let signature = "tests/data/gen/signature.b64";
    // --document implies --format signature, for the certificate too.
    for format in [&["--format", "signature"][..], &[]] {
        let args = [&NOW[..], format, &document[..], &TEST_CA[..], &[signature]].concat();
        // RSA-1024: refused without the opt-in (whose flag the reason names).
        let strict: Vec<&str> = args
            .iter()
            .copied()
            .filter(|a| *a != "--allow-legacy-rsa1024")
            .collect();
        let out = run(&strict, None);
        refused(&out, "refused_algorithm");
        assert!(stderr(&out).contains("allow_legacy_rsa1024"));
        let value = json(&run(&args, None));
        assert_eq!(value["signer"]["format"], "signature");
        assert_eq!(value["signer"]["signing_time"], serde_json::Value::Null);
        assert_eq!(value["host_id"], "123456789012-i-0123456789abcdef0");
    }
    // Without the test CA, AWS's us-east-1 key does not verify it.
    let out = run(&[&NOW[..], &document[..], &[signature]].concat(), None);
    refused(&out, "bad_signature");
    // The signature text from stdin.
    let text = std::fs::read(root().join(signature)).unwrap();
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
