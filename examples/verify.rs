//! Verifies an `/rsa2048` instance identity document with AWS's published certificates and
//! an allow rule for one account, and prints the outcome:
//!
//! ```text
//! cargo run --example verify -- FILE ACCOUNT NOW
//! ```
//!
//! NOW (RFC 3339) is the clock the 5-minute TTL is checked against: the crate never reads one.
//! Exit 0 accepted, 1 rejected (or an unreadable file or argument), 2 usage. `ec2-iid verify`
//! is the full command-line tool.

use std::process::ExitCode;

use chrono::{DateTime, Utc};
use ec2_iid::{AllowRule, TrustStore, Verifier};

fn main() -> Result<ExitCode, Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [file, account, now] = args.as_slice() else {
        eprintln!("usage: verify FILE ACCOUNT NOW");
        return Ok(ExitCode::from(2));
    };

    // At startup: what to trust and whom to admit. Mistakes are refused here.
    let verifier = Verifier::builder(TrustStore::aws())
        .allow(AllowRule::account(account.parse()?))
        .build()?;

    // Per request: the text the instance sent, and your clock.
    let blob = std::fs::read(file)?;
    let now: DateTime<Utc> = now.parse()?;
    match verifier.verify(&blob, now) {
        Ok(pending) => {
            let document = pending.document();
            let signer = pending.verified().signer();
            println!(
                "accepted: {} in {} (account {}), signed by certificate {} ({})",
                document.instance_id.as_str(),
                document.region,
                document.account_id,
                signer.serial,
                signer.format,
            );
            // Next: `pending.check_instance(&lookup)` asks EC2 whether the instance runs;
            // only its outcome carries the host id that may join.
            println!(
                "next: the instance check, then host id {}",
                document.host_id()
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("rejected ({}): {e}", e.kind());
            if let Some(hint) = e.hint() {
                eprintln!("hint: {hint}");
            }
            Ok(ExitCode::from(1))
        }
    }
}
