//! The `ec2-iid` binary's contract: subcommands, flags, exit codes (0 accepted, 1 rejected,
//! 2 usage), the JSON of `verify`, the lines of `explain`, `certs list` and `certs check`.
//!
//! The `verify` tests are the `verify` example's (tests/cli.rs of the core), on the same
//! committed fixtures, run from the workspace root.
#![cfg(test)] // clippy.toml says why

use std::collections::BTreeSet;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// Runs `ec2-iid ARGS` in the workspace root, with `stdin` on standard input.
fn ec2_iid(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_ec2-iid"))
        .args(args)
        .current_dir(root)
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

/// `ec2-iid verify ARGS`.
fn run(args: &[&str], stdin: Option<&[u8]>) -> Output {
    ec2_iid(&[&["verify"], args].concat(), stdin)
}

const TEST_CA: [&str; 4] = [
    "--cert",
    "tests/data/testca/testca.pem",
    "--cert-region",
    "us-east-1",
];
const NOW: [&str; 2] = ["--now", "2026-11-01T12:01:00Z"];
const BLOB: &str = "tests/data/gen/rsa2048.b64";

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The one-line JSON object on stdout of an accepted document.
fn json(output: &Output) -> serde_json::Value {
    assert_eq!(output.status.code(), Some(0), "{}", stderr(output));
    one_json_line(output)
}

fn one_json_line(output: &Output) -> serde_json::Value {
    let text = stdout(output);
    assert_eq!(
        text.lines().count(),
        1,
        "one JSON object on one line: {text}"
    );
    serde_json::from_str(&text).unwrap()
}

/// The rejection: exit 1, `rejected: ..` on stderr, `{"error", "kind", "hint"}` on stdout.
fn rejection(output: &Output) -> serde_json::Value {
    assert_eq!(output.status.code(), Some(1), "{}", stderr(output));
    let value = one_json_line(output);
    let error = value["error"].as_str().unwrap();
    assert!(stderr(output).contains(&format!("rejected: {error}")));
    assert!(value["kind"].is_string(), "{value}");
    assert!(value.get("hint").is_some(), "{value}");
    value
}

fn write_temp(name: &str, contents: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ec2-iid-cli-bin-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path
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
        let blob = std::fs::read(format!("../tests/data/gen/{file}")).unwrap();
        let out = run(&[&NOW[..], &TEST_CA[..], &["-"]].concat(), Some(&blob));
        assert_eq!(
            json(&out)["document"]["instanceId"],
            "i-0123456789abcdef0",
            "{file}"
        );
    }
}

#[test]
fn rejections_exit_1_with_a_json_reason() {
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
        assert_eq!(rejection(&out)["kind"], kind, "{file}");
    }
    // Without the test CA, the fixture's signer is unknown.
    let out = run(&[&NOW[..], &[BLOB]].concat(), None);
    let value = rejection(&out);
    assert_eq!(value["kind"], "untrusted_signer");
    assert!(
        value["error"]
            .as_str()
            .unwrap()
            .contains("E1D2C3B4A5968778")
    );
    assert!(stderr(&out).contains("E1D2C3B4A5968778"));
    let out = run(&[], Some(b"garbage!"));
    assert_eq!(rejection(&out)["kind"], "malformed");
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
    assert_eq!(rejection(&out)["kind"], "stale");
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
    assert_eq!(rejection(&out)["kind"], "instance_rejected");
    assert!(stderr(&out).contains("stopped"));
}

/// Runs `SUBCOMMAND` on the README's fixture with a token of these contents.
fn with_token(subcommand: &str, name: &str, token: &str, extra: &[&str]) -> Output {
    let path = write_temp(name, token);
    let args = [
        &[subcommand][..],
        &NOW[..],
        &TEST_CA[..],
        extra,
        &["--token", path.to_str().unwrap(), BLOB],
    ];
    ec2_iid(&args.concat(), None)
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
        let out = with_token("verify", &format!("bad-{index}.json"), token, &[]);
        assert_eq!(out.status.code(), Some(2), "{token}: {}", stderr(&out));
        assert!(stderr(&out).contains(message), "{token}: {}", stderr(&out));
    }
    // A role-only rule admits only the role's account.
    let out = with_token(
        "verify",
        "role-only.json",
        r#"{"allow": [{"aws_role": "arn:aws:iam::999999999999:role/x"}]}"#,
        &[],
    );
    assert_eq!(rejection(&out)["kind"], "no_rule_matched");
    assert!(stderr(&out).contains("rule 0: aws_account"));
    // An expired token admits no one.
    let expired = r#"{"kind": "token", "version": "v2",
        "metadata": {"name": "t", "expires": "2026-11-01T12:00:00Z"},
        "spec": {"allow": [{"aws_account": "123456789012"}]}}"#;
    let out = with_token("verify", "expired.json", expired, &[]);
    assert_eq!(rejection(&out)["kind"], "token_expired");
    assert!(stderr(&out).contains("token expired"));
    // --ttl and a token's aws_iid_ttl would compete.
    let ok = r#"{"allow": [{"aws_account": "123456789012"}]}"#;
    let out = with_token("verify", "ttl.json", ok, &["--ttl", "1h"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let out = with_token("verify", "ok.json", ok, &[]);
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn now_without_a_token_applies_the_default_ttl() {
    let at = |now: &str, extra: &[&str]| {
        let args = [&["--now", now][..], &TEST_CA[..], extra, &[BLOB]];
        run(&args.concat(), None)
    };
    let far = at("2099-01-01T00:00:00Z", &[]);
    assert_eq!(rejection(&far)["kind"], "stale");
    assert!(stderr(&far).contains("older than the TTL of 300s"));
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
        assert_eq!(rejection(&out)["kind"], "refused_algorithm");
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
    assert_eq!(rejection(&out)["kind"], "bad_signature");
    // The signature text from stdin.
    let text = std::fs::read(Path::new("..").join(signature)).unwrap();
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

/// The hint of a rejection, from `verify` with these arguments.
fn hint(args: &[&str], stdin: Option<&[u8]>) -> String {
    let out = run(args, stdin);
    let value = rejection(&out);
    let hint = value["hint"].as_str().unwrap_or_default().to_owned();
    assert!(
        stderr(&out).contains(&format!("hint: {hint}")),
        "{}",
        stderr(&out)
    );
    hint
}

#[test]
fn hints_name_the_operator_mistake() {
    // The blob as a JSON string, e.g. copied from a log or an API response.
    let blob = std::fs::read_to_string("../tests/data/gen/rsa2048.b64").unwrap();
    let quoted = serde_json::to_string(&blob.replace('\n', "")).unwrap();
    let args = [&NOW[..], &TEST_CA[..], &["-"]].concat();
    assert!(hint(&args, Some(quoted.as_bytes())).contains("strip the surrounding quotes"));
    // The /document JSON where the signature belongs.
    let args = [&NOW[..], &TEST_CA[..], &["tests/data/gen/document.json"]].concat();
    assert_eq!(
        hint(&args, None),
        "this is the /document JSON; pass the /rsa2048 or /signature text, or use --document"
    );
    // --format rsa2048 on a /pkcs7 blob.
    let args = [
        &NOW[..],
        &["--format", "rsa2048", "tests/data/gen/pkcs7.b64"],
    ]
    .concat();
    assert_eq!(
        hint(&args, None),
        "the blob is /pkcs7: use --format pkcs7 --allow-legacy-dsa, or fetch /rsa2048"
    );
    // --format pkcs7 on an /rsa2048 blob (whose signer is unknown: --cert would trust the test
    // CA for pkcs7, where an RSA key over SHA-256 is China's /pkcs7).
    let args = [&NOW[..], &["--format", "pkcs7", "--allow-legacy-dsa", BLOB]].concat();
    assert!(hint(&args, None).contains("the blob is /rsa2048"));
}

/// The core's hints through the CLI: each names what to change.
#[test]
fn hints_say_what_to_change() {
    fn at(now: &str) -> [&str; 2] {
        ["--now", now]
    }
    // A serial the test CA never issued: a new certificate? add it.
    let args = [
        &NOW[..],
        &TEST_CA[..],
        &["tests/data/gen/tampered-serial.b64"],
    ]
    .concat();
    let serial = hint(&args, None);
    assert!(
        serial.contains("a new AWS region or certificate"),
        "{serial}"
    );
    assert!(
        serial.contains("--cert PEM --cert-region REGION"),
        "{serial}"
    );
    // The test CA's serial under an edited issuer: altered, adding certificates will not help.
    let der = std::fs::read("../tests/data/gen/rsa2048.der").unwrap();
    let position = der.windows(7).position(|w| w == b"Seattle").unwrap();
    let mut tampered = der.clone();
    tampered[position + 6] = b'x';
    let args = [&NOW[..], &TEST_CA[..], &["-"]].concat();
    let issuer = hint(&args, Some(&tampered));
    assert!(
        issuer.contains("altered") && !issuer.contains("--cert"),
        "{issuer}"
    );
    // /pkcs7 without the opt-in.
    let args = [
        &NOW[..],
        &DSA_CA[..],
        &["--format", "pkcs7", "tests/data/gen/pkcs7.b64"],
    ]
    .concat();
    let legacy = hint(&args, None);
    assert!(
        legacy.contains("rsa2048") && legacy.contains("--allow-legacy-dsa"),
        "{legacy}"
    );
    // Too old, and ahead of the clock.
    let args = [&at("2026-11-01T12:07:12Z")[..], &TEST_CA[..], &[BLOB]].concat();
    assert!(hint(&args, None).starts_with("pendingTime is 7m12s old; aws_iid_ttl is 5m"));
    let args = [&at("2026-11-01T11:57:00Z")[..], &TEST_CA[..], &[BLOB]].concat();
    let future = hint(&args, None);
    assert!(
        future.contains("3m ahead") && future.contains("clock"),
        "{future}"
    );
    // No rule matches: the field, what the rule wants and what the document has.
    let token = write_temp(
        "hint-rules.json",
        r#"{"allow": [{"aws_account": "111111111111"}, {"aws_account": "123456789012", "aws_instance_types": ["m5.large"]}]}"#,
    );
    let args = [
        &NOW[..],
        &TEST_CA[..],
        &["--token", token.to_str().unwrap(), BLOB],
    ]
    .concat();
    let rules = hint(&args, None);
    assert!(
        rules.contains("rule 0: aws_account is 123456789012, not 111111111111"),
        "{rules}"
    );
    assert!(
        rules.contains("rule 1: aws_instance_types is t3.micro, not m5.large"),
        "{rules}"
    );
    // A stopped instance.
    let facts = write_temp(
        "hint-stopped.json",
        r#"{"instance_id": "i-0123456789abcdef0", "state": "stopped", "owner_id": "123456789012"}"#,
    );
    let token = write_temp(
        "hint-ok.json",
        r#"{"allow": [{"aws_account": "123456789012"}]}"#,
    );
    let args = [
        &NOW[..],
        &TEST_CA[..],
        &[
            "--token",
            token.to_str().unwrap(),
            "--facts",
            facts.to_str().unwrap(),
            BLOB,
        ],
    ]
    .concat();
    let stopped = hint(&args, None);
    assert!(
        stopped.contains("stopped") && stopped.contains("running"),
        "{stopped}"
    );
}

#[test]
fn explain_names_the_failing_rule_field() {
    let token = r#"{"allow": [{"aws_account": "111111111111", "aws_regions": ["us-east-1"]}]}"#;
    let out = with_token("explain", "explain-rule.json", token, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = stdout(&out);
    let line = text
        .lines()
        .find(|l| l.contains("aws_account"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(line.starts_with("FAIL"), "{line}");
    assert!(line.contains("expected 111111111111"), "{line}");
    assert!(line.contains("actual 123456789012"), "{line}");
    let region = text.lines().find(|l| l.contains("aws_regions")).unwrap();
    assert!(region.starts_with("PASS"), "{region}");
    assert!(text.lines().any(|l| l.starts_with("FAIL rules")), "{text}");
    for stage in [
        "decode",
        "structure",
        "signer",
        "signature",
        "region",
        "document",
    ] {
        let pass = format!("PASS {stage} ");
        assert!(
            text.lines().any(|l| l.starts_with(&pass)),
            "{stage}: {text}"
        );
    }
    assert!(
        text.lines().last().unwrap().starts_with("FAIL verdict"),
        "{text}"
    );
}

#[test]
fn explain_shows_age_and_ttl_of_an_expired_document() {
    let args = [
        "explain",
        "--now",
        "2026-11-01T12:07:12Z",
        "--cert",
        "tests/data/testca/testca.pem",
        "--cert-region",
        "us-east-1",
        BLOB,
    ];
    let out = ec2_iid(&args, None);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    let ttl = text
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some("ttl"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(ttl.starts_with("FAIL"), "{ttl}");
    assert!(ttl.contains("pendingTime is 7m12s old; TTL 5m"), "{ttl}");
}

#[test]
fn explain_exits_as_verify_does() {
    let accepted = [&["explain"][..], &NOW[..], &TEST_CA[..], &[BLOB]].concat();
    let out = ec2_iid(&accepted, None);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let text = stdout(&out);
    assert!(text.lines().all(|l| !l.starts_with("FAIL")), "{text}");
    assert!(text.contains("PASS verdict"), "{text}");
    // --format rsa2048 on a /pkcs7 blob: the hint follows the first failure.
    let out = ec2_iid(
        &["explain", "--format", "rsa2048", "tests/data/gen/pkcs7.b64"],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    let first = lines.iter().position(|l| l.starts_with("FAIL")).unwrap();
    assert!(
        lines[first + 1].contains("hint: the blob is /pkcs7"),
        "{text}"
    );
    assert_eq!(
        ec2_iid(&["explain", "--bogus"], None).status.code(),
        Some(2)
    );
}

#[test]
fn certs_list_json_has_every_rsa2048_region() {
    let out = ec2_iid(&["certs", "list", "--json"], None);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let list: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let regions = |format: &str| {
        list.iter()
            .filter(|c| c["format"] == format)
            .flat_map(|c| c["regions"].as_array().unwrap().clone())
            .map(|r| r.as_str().unwrap().to_owned())
            .collect::<BTreeSet<_>>()
    };
    let rsa2048 = regions("rsa2048");
    assert_eq!(rsa2048.len(), 39, "{rsa2048:?}");
    let embedded: BTreeSet<String> = ec2_iid::aws::RSA2048
        .iter()
        .map(|c| c.region.to_owned())
        .collect();
    assert_eq!(rsa2048, embedded);
    for cert in &list {
        assert_eq!(cert["sha256"].as_str().unwrap().len(), 64, "{cert}");
        assert!(cert["serial"].as_str().is_some_and(|s| !s.is_empty()));
        assert!(cert["subject"].as_str().unwrap().contains("O="), "{cert}");
        assert!(cert["not_after"].is_string());
    }
    // The text listing: one line per certificate.
    let out = ec2_iid(&["certs", "list"], None);
    assert_eq!(stdout(&out).lines().count(), list.len());
}

#[test]
fn certs_check_tells_new_from_present() {
    let out = ec2_iid(&["certs", "check", "tests/data/testca/testca.pem"], None);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains(": new"), "{}", stdout(&out));
    let us_east_1 = ec2_iid::aws::RSA2048
        .iter()
        .find(|c| c.region == "us-east-1")
        .unwrap();
    let pem = write_temp("aws-rsa2048-us-east-1.pem", us_east_1.pem);
    let out = ec2_iid(&["certs", "check", pem.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("already in the store (rsa2048: us-east-1)"),
        "{text}"
    );
    let out = ec2_iid(&["certs", "check", "--json", pem.to_str().unwrap()], None);
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(value[0]["status"], "present");
    assert_eq!(value[0]["trusted_as"]["format"], "rsa2048");
    // A file without a certificate, or none at all, is a usage error.
    let out = ec2_iid(&["certs", "check", "tests/data/gen/document.json"], None);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(ec2_iid(&["certs", "check"], None).status.code(), Some(2));
}

#[test]
fn help_and_version_go_to_stdout_and_exit_0() {
    for args in [
        &["--help"][..],
        &["-h"],
        &["verify", "--help"],
        &["verify", "-h"],
        &["explain", "--help"],
        &["certs", "--help"],
        &["help", "verify"],
    ] {
        let out = ec2_iid(args, None);
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        assert!(stdout(&out).contains("Usage: ec2-iid"), "{args:?}");
        assert!(out.stderr.is_empty(), "{args:?}");
    }
    let out = ec2_iid(&["verify", "--help"], None);
    assert!(stdout(&out).contains("--ttl <DURATION>"));
    assert!(stdout(&out).contains("Exit codes: 0 accepted, 1 rejected, 2 usage"));
    let out = ec2_iid(&["--version"], None);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        stdout(&out).trim(),
        format!("ec2-iid {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn unknown_flags_and_subcommands_exit_2_with_the_usage() {
    for args in [
        &["--bogus"][..],
        &["verify", "--bogus"],
        &["frobnicate"],
        &[],
    ] {
        let out = ec2_iid(args, None);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
        assert!(stderr(&out).contains("Usage: ec2-iid"), "{args:?}");
    }
}

/// Without the `aws` feature, `join` exists only to say so (exit 2).
#[cfg(not(feature = "aws"))]
#[test]
fn join_needs_the_aws_feature() {
    let output = ec2_iid(&["join", "--server", "http://127.0.0.1:1"], None);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("built without the `aws` feature"));
    assert_eq!(stdout(&output), "");
}

/// Without the `aws` feature, `serve` exists only to say so (exit 2).
#[cfg(not(feature = "aws"))]
#[test]
fn serve_needs_the_aws_feature() {
    let output = ec2_iid(&["serve", "--token", "token.yaml"], None);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("built without the `aws` feature, which `serve` needs"));
    assert_eq!(stdout(&output), "");
}
