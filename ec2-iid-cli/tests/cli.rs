//! The `ec2-iid` binary's contract: subcommands, flags, exit codes (0 accepted, 1 rejected,
//! 2 usage), the JSON of `verify`, the lines of `explain`, `certs list` and `certs check`.
//!
//! The `verify` contract (flags, exit codes, JSON) is in `verify_contract/`.
#![cfg(test)] // clippy.toml says why

mod verify_contract;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Output;

use verify_contract::{
    BLOB, DSA_CA, NOW, TEST_CA, one_json_line, run, run_in_root, stderr, stdout, with_token,
    write_temp,
};

/// The workspace root, where `ec2-iid` runs.
fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap()
}

/// `ec2-iid verify` takes the verify flags.
const VERIFY: &[&str] = &["verify"];

/// Runs `ec2-iid ARGS` in the workspace root, with `stdin` on standard input.
fn command(args: &[&str], stdin: Option<&[u8]>) -> Output {
    run_in_root(env!("CARGO_BIN_EXE_ec2-iid"), args, stdin)
}

/// A rejection of this kind, as [`rejection`] reads it.
fn refused(output: &Output, kind: &str) {
    assert_eq!(rejection(output)["kind"], kind);
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
    // /signature without the opt-in.
    let args = [
        &NOW[..],
        &["--document", "tests/data/gen/document.json"],
        &TEST_CA[..],
        &["tests/data/gen/signature.b64"],
    ]
    .concat();
    let rsa1024 = hint(&args, None);
    assert!(
        rsa1024.contains("rsa2048") && rsa1024.contains("--allow-legacy-rsa1024"),
        "{rsa1024}"
    );
    // Too old, and ahead of the clock.
    let args = [&at("2026-11-01T12:07:12Z")[..], &TEST_CA[..], &[BLOB]].concat();
    assert!(hint(&args, None).starts_with("pendingTime is 7m12s old; aws_iid_ttl is 5m0s"));
    let args = [&at("2026-11-01T11:57:00Z")[..], &TEST_CA[..], &[BLOB]].concat();
    let future = hint(&args, None);
    assert!(
        future.contains("3m0s ahead") && future.contains("clock"),
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
    let out = with_token(&["explain"], "explain-rule.json", token, &[]);
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

/// A key given twice is a setup error naming where, in YAML and JSON, for `verify` and
/// `explain`: no copy silently wins (here the second would admit the document).
#[test]
fn duplicate_token_fields_are_setup_errors() {
    let expires = "kind: token\nversion: v2\nmetadata:\n  name: t\n  \
                   expires: \"2000-01-01T00:00:00Z\"\n  expires: \"2999-01-01T00:00:00Z\"\n\
                   spec:\n  allow:\n    - aws_account: \"123456789012\"\n";
    let spec = r#"{"kind": "token", "version": "v2", "metadata": {"name": "t"},
        "spec": {"allow": [{"aws_account": "111111111111"}]},
        "spec": {"allow": [{"aws_account": "123456789012"}]}}"#;
    for (name, token, field) in [
        ("dup-expires.yaml", expires, "metadata.expires"),
        ("dup-spec.json", spec, "spec"),
    ] {
        for subcommand in ["verify", "explain"] {
            let out = with_token(&[subcommand], name, token, &[]);
            assert_eq!(out.status.code(), Some(2), "{name}: {}", stderr(&out));
            assert!(
                stderr(&out).contains(&format!("duplicate field {field}: write each field once")),
                "{name}: {}",
                stderr(&out)
            );
        }
    }
}

#[test]
fn explain_shows_the_partition_and_the_rule_whose_bounds_hold() {
    let token = r#"{"allow": [{"aws_role": "arn:aws-cn:iam::123456789012:role/join"},
        {"aws_account": "123456789012", "aws_vpc_ids": ["vpc-11111111"]},
        {"aws_account": "123456789012"}]}"#;
    let facts = write_temp(
        "explain-facts.json",
        r#"{"instance_id": "i-0123456789abcdef0", "state": "running",
            "owner_id": "123456789012", "vpc_id": "vpc-22222222"}"#,
    );
    let extra = ["--facts", facts.to_str().unwrap()];
    let out = with_token(&["explain"], "explain-partition.json", token, &extra);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let text = stdout(&out);
    let partition = text
        .lines()
        .find(|l| l.contains("partition"))
        .unwrap_or_else(|| panic!("{text}"));
    assert_eq!(
        partition,
        "FAIL rule[0]      partition: expected aws-cn, actual aws"
    );
    assert!(text.contains("PASS rules        rule 1 matches"), "{text}");
    assert!(text.contains("rule 2's bounds hold"), "{text}");
}

/// Selectors are lookup bounds: with `--facts`, explain prints each one's expected and actual
/// values, the instance's tag values escaped and cut.
#[test]
fn explain_shows_expected_and_actual_selectors() {
    let token = r#"{"allow": [{"aws_account": "123456789012",
        "aws_tags": {"env": ["prod"], "team": ["web"]},
        "aws_security_group_ids": ["sg-0abc1234"],
        "aws_iam_role_arns": ["arn:aws:iam::123456789012:role/web"],
        "aws_organization_id": "o-a1b2c3d4e5",
        "aws_organizational_unit_ids": ["ou-a1b2-c3d4e5f6"]},
        {"aws_account": "123456789012"}]}"#;
    let long = "x".repeat(100);
    let facts = write_temp(
        "explain-selectors-facts.json",
        &format!(
            r#"{{"instance_id": "i-0123456789abcdef0", "state": "running",
            "owner_id": "123456789012", "tags": {{"env": "dev\u001b[31m{long}", "team": "web"}},
            "security_group_ids": ["sg-0abc1234"],
            "organization": {{"organization_id": "o-a1b2c3d4e5",
                "parent_ids": ["ou-a1b2-00000000", "r-a1b2"]}}}}"#
        ),
    );
    let extra = ["--facts", facts.to_str().unwrap()];
    let out = with_token(&["explain"], "explain-selectors-token.json", token, &extra);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let text = stdout(&out);
    let line = |field: &str| {
        text.lines()
            .find(|l| l.contains(&format!(" {field}: ")))
            .unwrap_or_else(|| panic!("{field}: {text}"))
            .to_owned()
    };
    assert_eq!(
        line("aws_security_group_ids"),
        "PASS rule[0]      aws_security_group_ids: expected sg-0abc1234, actual sg-0abc1234"
    );
    let tags = line("aws_tags");
    assert!(
        tags.starts_with(
            "FAIL rule[0]      aws_tags: expected env=prod, team=web, actual env=dev\\u{1b}[31mxxx"
        ),
        "{tags}"
    );
    assert!(tags.ends_with("x…, team=web"), "{tags}");
    assert!(!text.contains('\u{1b}'), "{text}");
    assert_eq!(
        line("aws_iam_role_arns"),
        "FAIL rule[0]      aws_iam_role_arns: expected arn:aws:iam::123456789012:role/web, \
         actual not in --facts"
    );
    assert_eq!(
        line("aws_organization_id"),
        "PASS rule[0]      aws_organization_id: expected o-a1b2c3d4e5, actual o-a1b2c3d4e5"
    );
    assert_eq!(
        line("aws_organizational_unit_ids"),
        "FAIL rule[0]      aws_organizational_unit_ids: expected ou-a1b2-c3d4e5f6, \
         actual ou-a1b2-00000000/r-a1b2"
    );
    assert!(text.contains("rule 1's bounds hold"), "{text}");
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
    let out = command(&args, None);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    let ttl = text
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some("ttl"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(ttl.starts_with("FAIL"), "{ttl}");
    assert!(ttl.contains("pendingTime is 7m12s old; TTL 5m0s"), "{ttl}");
}

#[test]
fn explain_exits_as_verify_does() {
    let accepted = [&["explain"][..], &NOW[..], &TEST_CA[..], &[BLOB]].concat();
    let out = command(&accepted, None);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let text = stdout(&out);
    assert!(text.lines().all(|l| !l.starts_with("FAIL")), "{text}");
    assert!(text.contains("PASS verdict"), "{text}");
    // --format rsa2048 on a /pkcs7 blob: the hint follows the first failure.
    let out = command(
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
        command(&["explain", "--bogus"], None).status.code(),
        Some(2)
    );
}

/// `explain` refuses `/signature` (RSA-1024) as `verify` does, on the signature line with the
/// flag to pass, and accepts it with `--allow-legacy-rsa1024`.
#[test]
fn explain_needs_the_rsa1024_opt_in_for_signature() {
    let args = [
        &["explain"][..],
        &NOW[..],
        &["--document", "tests/data/gen/document.json"],
        &TEST_CA[..],
        &["tests/data/gen/signature.b64"],
    ]
    .concat();
    let out = command(&args, None);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    let first = lines.iter().position(|l| l.starts_with("FAIL")).unwrap();
    assert!(
        lines[first].contains("signature")
            && lines[first].contains("RSA-1024")
            && lines[first + 1].contains("--allow-legacy-rsa1024"),
        "{text}"
    );
    let out = command(&[&args[..], &["--allow-legacy-rsa1024"]].concat(), None);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let text = stdout(&out);
    assert!(text.contains("verified with the signature key"), "{text}");
}

#[test]
fn certs_list_json_has_every_rsa2048_region() {
    let out = command(&["certs", "list", "--json"], None);
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
    let embedded: BTreeSet<String> = ec2_iid::trust::aws::RSA2048
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
    let out = command(&["certs", "list"], None);
    assert_eq!(stdout(&out).lines().count(), list.len());
}

#[test]
fn certs_check_tells_new_from_present() {
    let out = command(&["certs", "check", "tests/data/testca/testca.pem"], None);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains(": new"), "{}", stdout(&out));
    let us_east_1 = ec2_iid::trust::aws::RSA2048
        .iter()
        .find(|c| c.region == "us-east-1")
        .unwrap();
    let pem = write_temp("aws-rsa2048-us-east-1.pem", us_east_1.pem);
    let out = command(&["certs", "check", pem.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("already in the store (rsa2048: us-east-1)"),
        "{text}"
    );
    let out = command(&["certs", "check", "--json", pem.to_str().unwrap()], None);
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(value[0]["status"], "present");
    assert_eq!(value[0]["trusted_as"]["format"], "rsa2048");
    // A file without a certificate, or none at all, is a usage error.
    let out = command(&["certs", "check", "tests/data/gen/document.json"], None);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(command(&["certs", "check"], None).status.code(), Some(2));
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
        let out = command(args, None);
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        assert!(stdout(&out).contains("Usage: ec2-iid"), "{args:?}");
        assert!(out.stderr.is_empty(), "{args:?}");
    }
    let out = command(&["verify", "--help"], None);
    assert!(stdout(&out).contains("--ttl <DURATION>"));
    assert!(stdout(&out).contains("Exit codes: 0 accepted, 1 rejected, 2 usage"));
    let out = command(&["--version"], None);
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
        let out = command(args, None);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
        assert!(stderr(&out).contains("Usage: ec2-iid"), "{args:?}");
    }
}

/// Without the `join` feature, `join` exists only to say so (exit 2).
#[cfg(not(feature = "join"))]
#[test]
fn join_needs_the_join_feature() {
    let output = command(&["join", "--server", "http://127.0.0.1:1"], None);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains(
        "built without the `join` feature, which `join` needs: cargo install ec2-iid-cli \
         --features join"
    ));
    assert_eq!(stdout(&output), "");
}

/// Without the `serve` feature, `serve` exists only to say so (exit 2).
#[cfg(not(feature = "serve"))]
#[test]
fn serve_needs_the_serve_feature() {
    let output = command(&["serve", "--token", "token.yaml"], None);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("built without the `serve` feature, which `serve` needs"));
    assert_eq!(stdout(&output), "");
}

/// With `serve` but without `postgres`, a PostgreSQL registry says which feature it needs
/// (exit 2), before anything is read or listened on.
#[cfg(all(feature = "serve", not(feature = "postgres")))]
#[test]
fn a_postgres_registry_needs_the_postgres_feature() {
    let output = command(
        &["registry", "--registry", "postgres:host=db", "list"],
        None,
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output)
            .contains("built without the `postgres` feature, which --registry postgres:URL needs")
    );
    assert_eq!(stdout(&output), "");
}
