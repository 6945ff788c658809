//! `ec2-iid explain`: the same checks as `verify`, one line per stage, so that an operator sees
//! which one refused the document and why.
//!
//! The exit code is `verify`'s, from the same decision ([`verify::verdict`]); the stage lines
//! re-run the checks one by one with the core's public functions to say where it failed.

use core::fmt;
use std::process::ExitCode;

use chrono::SecondsFormat;
use ec2_iid::dangerous::{UnverifiedSignedData, detect_cms_format, parse_signed_data};
use ec2_iid::ids::SerialNumber;
use ec2_iid::internal::short_duration;
use ec2_iid::token::DEFAULT_MAX_FUTURE_SKEW;
use ec2_iid::{
    AllowRule, Error, Format, IdentityDocument, TrustStore, VerifiedDocument, Verifier, check_ttl,
    lookup_bound_checks, verify_input,
};
use serde_json::Value;
use x509_parser::prelude::FromDer as _;
use x509_parser::x509::X509Name;

use crate::setup::Setup;
use crate::verify::{self, Rejection};

/// A stage's outcome.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
enum Status {
    Pass,
    Fail,
    Skip,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Pass => "PASS",
            Self::Fail => "FAIL",
            Self::Skip => "SKIP",
        })
    }
}

/// The report's lines, in stage order.
#[derive(Debug, Default)]
struct Report {
    lines: Vec<(Status, String, String)>,
}

impl Report {
    fn line(&mut self, status: Status, stage: impl Into<String>, detail: impl Into<String>) {
        self.lines.push((status, stage.into(), detail.into()));
    }

    fn check(&mut self, ok: bool, stage: impl Into<String>, detail: impl Into<String>) -> bool {
        let status = if ok { Status::Pass } else { Status::Fail };
        self.line(status, stage, detail);
        ok
    }

    /// Prints the lines, with the hint after the first failure.
    fn print(&self, hint: Option<&str>) {
        let mut hint = hint;
        for (status, stage, detail) in &self.lines {
            crate::out(format_args!("{status} {stage:<12} {detail}"));
            if *status == Status::Fail
                && let Some(text) = hint.take()
            {
                crate::out(format_args!("     hint: {text}"));
            }
        }
    }
}

/// Prints the report and exits as `verify` would.
pub(crate) fn run(setup: &Setup) -> ExitCode {
    let mut report = Report::default();
    token_stage(&mut report, setup);
    if let Some(verified) = signature_stages(&mut report, setup) {
        document_stage(&mut report, verified.document());
        rules_stage(&mut report, setup, &verified);
        ttl_stage(&mut report, setup, verified.document());
        facts_stage(&mut report, setup);
    }
    let (hint, code) = match verify::verdict(setup) {
        Ok(accepted) => {
            let host_id = accepted
                .get("host_id")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            report.line(
                Status::Pass,
                "verdict",
                format!("accepted: host id {host_id}"),
            );
            (None, ExitCode::SUCCESS)
        }
        Err(e) => {
            let rejection = Rejection::new(&e, setup);
            let detail = format!("rejected ({}): {}", rejection.kind, rejection.message);
            report.line(Status::Fail, "verdict", detail);
            (rejection.hint, ExitCode::from(1))
        }
    };
    report.print(hint.as_deref());
    code
}

fn token_stage(report: &mut Report, setup: &Setup) {
    let Some(verifier) = &setup.verifier else {
        report.line(Status::Skip, "token", "no --token: no allow rules apply");
        return;
    };
    let rules = verifier.rules().len();
    let ttl = short_duration(verifier.ttl());
    match verifier.expires() {
        None => report.line(
            Status::Pass,
            "token",
            format!("{rules} allow rule(s), TTL {ttl}"),
        ),
        Some(expires) => {
            let ok = setup.now < expires;
            let state = if ok { "expires" } else { "expired" };
            let detail = format!("{rules} allow rule(s), TTL {ttl}; {state} {expires}");
            report.check(ok, "token", detail);
        }
    }
}

/// decode, structure, signer, signature and region; the verified document if all pass.
fn signature_stages(report: &mut Report, setup: &Setup) -> Option<VerifiedDocument> {
    let len = setup.blob.len();
    let format = match &setup.document {
        Some(document) => {
            let detail = format!(
                "{len} bytes of /signature text, {} bytes of document",
                document.len()
            );
            report.line(Status::Pass, "decode", detail);
            report.line(
                Status::Skip,
                "structure",
                "/signature is a bare signature, no CMS",
            );
            signature_signer_stage(report, &setup.trust, document)?;
            Format::Signature
        }
        None => cms_stages(report, setup)?,
    };
    let result = verify_input(setup.input(), &setup.trust, &setup.verify_options());
    match result {
        Ok(verified) => {
            let signer = verified.signer();
            let detail = format!(
                "verified with the {format} key of certificate {}",
                signer.serial
            );
            report.line(Status::Pass, "signature", detail);
            let detail = format!(
                "document region {} is covered by the certificate",
                signer.region
            );
            report.line(Status::Pass, "region", detail);
            Some(verified)
        }
        Err(e @ Error::RegionMismatch { .. }) => {
            report.line(Status::Pass, "signature", "verified");
            report.line(Status::Fail, "region", e.to_string());
            None
        }
        Err(e @ Error::InvalidDocument { .. }) => {
            report.line(Status::Pass, "signature", "verified");
            report.line(Status::Fail, "document", e.to_string());
            None
        }
        Err(e) => {
            report.line(Status::Fail, "signature", e.to_string());
            None
        }
    }
}

/// decode, structure and signer for a CMS blob; the format its checks use.
fn cms_stages(report: &mut Report, setup: &Setup) -> Option<Format> {
    let len = setup.blob.len();
    let encoding = if setup.blob.first() == Some(&0x30) {
        "binary"
    } else {
        "text"
    };
    let signed = match parse_signed_data(&setup.blob) {
        Ok(signed) => signed,
        Err(e) => {
            let stage = if e == Error::Base64 {
                "decode"
            } else {
                "structure"
            };
            if stage == "structure" {
                report.line(Status::Pass, "decode", format!("{len} bytes of {encoding}"));
            }
            report.line(Status::Fail, stage, e.to_string());
            return None;
        }
    };
    let detected = detect_cms_format(&signed, &setup.trust);
    let format = setup.options.format.unwrap_or(detected);
    let how = match setup.options.format {
        None => "detected".to_owned(),
        Some(given) if given == detected => "--format, as detected".to_owned(),
        Some(_) => format!("--format; the blob looks like {detected}"),
    };
    let detail = format!("{len} bytes of {encoding}, format {format} ({how})");
    report.check(format == detected, "decode", detail);
    report.line(Status::Pass, "structure", structure(&signed));
    cms_signer_stage(report, &setup.trust, &signed, format).then_some(format)
}

fn structure(signed: &UnverifiedSignedData) -> String {
    let signing_time = signed
        .signing_time()
        .map_or_else(|| "none".to_owned(), |t| t.to_rfc3339());
    format!(
        "SignedData: {} bytes of content, digest {}, signature {}, signingTime {signing_time}",
        signed.content().len(),
        algorithm_name(&signed.digest_algorithm().oid_string()),
        algorithm_name(&signed.signature_algorithm().oid_string()),
    )
}

fn algorithm_name(oid: &str) -> String {
    let name = match oid {
        "2.16.840.1.101.3.4.2.1" => "sha256",
        "1.3.14.3.2.26" => "sha1",
        "1.2.840.113549.1.1.1" => "rsaEncryption",
        "1.2.840.113549.1.1.5" => "sha1WithRSAEncryption",
        "1.2.840.113549.1.1.11" => "sha256WithRSAEncryption",
        "1.2.840.10040.4.1" => "id-dsa",
        "1.2.840.10040.4.3" => "dsaWithSHA1",
        _ => return oid.to_owned(),
    };
    format!("{name} ({oid})")
}

/// The signer the blob names, and whether the store trusts it for `format`.
fn cms_signer_stage(
    report: &mut Report,
    trust: &TrustStore,
    signed: &UnverifiedSignedData,
    format: Format,
) -> bool {
    let issuer = X509Name::from_der(signed.signer_issuer()).map_or_else(
        |_| "(unparsable issuer)".to_owned(),
        |(_, name)| name.to_string(),
    );
    let serial = SerialNumber::from_be_bytes(signed.signer_serial());
    let who = format!("issuer {issuer}, serial {serial}");
    let found = trust.find(format, signed.signer_issuer(), signed.signer_serial());
    if let Some(cert) = found {
        let regions = join(cert.regions());
        report.check(
            true,
            "signer",
            format!("{who}: trusted for {format} in {regions}"),
        )
    } else {
        let other = Format::ALL
            .into_iter()
            .filter(|&f| {
                trust
                    .find(f, signed.signer_issuer(), signed.signer_serial())
                    .is_some()
            })
            .map(Format::as_str)
            .collect::<Vec<_>>();
        let also = match other.as_slice() {
            [] => String::new(),
            formats => format!(" (trusted for {} only)", formats.join(", ")),
        };
        report.check(
            false,
            "signer",
            format!("{who}: no trusted {format} certificate{also}"),
        )
    }
}

/// `/signature` keys are chosen by the document's region, read before verification.
fn signature_signer_stage(report: &mut Report, trust: &TrustStore, document: &[u8]) -> Option<()> {
    let region = match ec2_iid::dangerous::parse_unverified_document(document) {
        Ok(document) => document.region,
        Err(e) => {
            report.line(Status::Fail, "signer", format!("document unreadable: {e}"));
            return None;
        }
    };
    let keys = trust.keys_for_region(Format::Signature, &region).count();
    let detail = format!("{keys} signature key(s) trusted for the document's region {region}");
    report.check(keys > 0, "signer", detail).then_some(())
}

fn document_stage(report: &mut Report, document: &IdentityDocument) {
    let detail = format!(
        "account {}, instance {}, region {}, pendingTime {}",
        document.account_id,
        document.instance_id,
        document.region,
        document
            .pending_time
            .to_rfc3339_opts(SecondsFormat::Secs, true),
    );
    report.line(Status::Pass, "document", detail);
}

fn rules_stage(report: &mut Report, setup: &Setup, verified: &VerifiedDocument) {
    let Some(verifier) = &setup.verifier else {
        report.line(Status::Skip, "rules", "no --token");
        return;
    };
    let matched = verifier
        .rules()
        .iter()
        .enumerate()
        .find(|&(index, rule)| rule_lines(report, index, rule, verified.document()));
    match matched {
        Some((index, _)) => report.line(Status::Pass, "rules", format!("rule {index} matches")),
        None => report.line(Status::Fail, "rules", "no allow rule matches"),
    }
}

/// One line per field the rule sets; whether all match.
fn rule_lines(report: &mut Report, index: usize, rule: &AllowRule, doc: &IdentityDocument) -> bool {
    let fields = [
        (
            "aws_account",
            vec![rule.aws_account().to_string()],
            doc.account_id.to_string(),
        ),
        // A rule with a role admits only documents of the role's partition.
        (
            "partition",
            rule.aws_role()
                .map(|role| role.partition().to_string())
                .into_iter()
                .collect(),
            doc.region.partition().to_string(),
        ),
        (
            "aws_regions",
            strings(rule.aws_regions()),
            doc.region.to_string(),
        ),
        (
            "aws_image_ids",
            strings(rule.aws_image_ids()),
            doc.image_id.clone(),
        ),
        (
            "aws_instance_types",
            strings(rule.aws_instance_types()),
            doc.instance_type.clone(),
        ),
        (
            "aws_availability_zones",
            strings(rule.aws_availability_zones()),
            doc.availability_zone.clone(),
        ),
    ];
    let mut all = true;
    for (field, expected, actual) in fields.into_iter().filter(|(_, e, _)| !e.is_empty()) {
        let ok = expected.contains(&actual);
        let wanted = match expected.as_slice() {
            [one] => one.clone(),
            many => format!("one of {}", many.join(", ")),
        };
        let detail = format!("{field}: expected {wanted}, actual {actual}");
        all &= report.check(ok, format!("rule[{index}]"), detail);
    }
    if rule.has_lookup_bounds() {
        let detail = "VPC, subnet, instance-profile, security-group, tag, instance-role and \
                      organization bounds are checked with --facts";
        report.line(Status::Skip, format!("rule[{index}]"), detail);
    }
    all
}

fn strings<T: fmt::Display>(values: &[T]) -> Vec<String> {
    values.iter().map(ToString::to_string).collect()
}

fn ttl_stage(report: &mut Report, setup: &Setup, document: &IdentityDocument) {
    let ttl = match &setup.verifier {
        Some(verifier) => Some(verifier.ttl()),
        None => setup.options.ttl_without_token(),
    };
    let age = setup.now.signed_duration_since(document.pending_time);
    let age_text = match age.to_std() {
        Ok(age) => format!("pendingTime is {} old", short_duration(age)),
        Err(_) => format!(
            "pendingTime is {} in the future",
            short_duration((-age).to_std().unwrap_or_default())
        ),
    };
    let Some(ttl) = ttl else {
        let detail = format!("{age_text} (this clock); no --now, --ttl or --token: not checked");
        report.line(Status::Skip, "ttl", detail);
        return;
    };
    let result = check_ttl(
        document.pending_time,
        ttl,
        DEFAULT_MAX_FUTURE_SKEW,
        setup.now,
    );
    let limit = match result {
        Err(Error::PendingTimeInFuture { .. }) => {
            format!("allowed skew {}", short_duration(DEFAULT_MAX_FUTURE_SKEW))
        }
        _ => format!("TTL {}", short_duration(ttl)),
    };
    report.check(result.is_ok(), "ttl", format!("{age_text}; {limit}"));
}

fn facts_stage(report: &mut Report, setup: &Setup) {
    let (Some(facts), Some(verifier)) = (&setup.facts, &setup.verifier) else {
        report.line(
            Status::Skip,
            "facts",
            "no --facts: the instance was not checked",
        );
        return;
    };
    let result = instance_check(verifier, setup, facts);
    if let Some((first, result)) = &result {
        // The first candidate's bounds (where a refusal comes from), and the admitting rule's.
        let mut shown = vec![*first];
        if let Ok(admitting) = result
            && admitting != first
        {
            shown.push(*admitting);
        }
        for index in shown {
            let Some(rule) = verifier.rules().get(index) else {
                continue;
            };
            for check in lookup_bound_checks(rule, facts) {
                let actual = check.actual.as_deref().unwrap_or("not in --facts");
                let detail = format!(
                    "{}: expected {}, actual {actual}",
                    check.field, check.expected
                );
                report.check(check.holds, format!("rule[{index}]"), detail);
            }
        }
    }
    match result.map(|(_, result)| result) {
        None => report.line(Status::Skip, "facts", "an earlier stage failed"),
        Some(Ok(rule)) => {
            let detail = format!(
                "instance {} is {}: rule {rule}'s bounds hold",
                facts.instance_id,
                facts.state.as_str()
            );
            report.line(Status::Pass, "facts", detail);
        }
        Some(Err(e)) => report.line(Status::Fail, "facts", e.to_string()),
    }
}

/// The instance check, if the document got that far: the first matching rule, and the rule
/// that admits the instance (that one, or a later one if its bounds fail) or why none does.
fn instance_check(
    verifier: &Verifier,
    setup: &Setup,
    facts: &ec2_iid::InstanceFacts,
) -> Option<(usize, Result<usize, Error>)> {
    let pending = verifier.verify_input(setup.input(), setup.now).ok()?;
    Some((
        pending.matched_rule(),
        pending
            .check_facts(Some(facts))
            .map(|outcome| outcome.matched_rule()),
    ))
}

fn join<T: fmt::Display>(values: &[T]) -> String {
    strings(values).join(", ")
}
