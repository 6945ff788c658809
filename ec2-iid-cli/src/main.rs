//! `ec2-iid`: verify AWS EC2 instance identity documents from the command line.
//!
//! Subcommands: `verify` (JSON verdict), `explain` (one line per check), `certs list` and
//! `certs check`. Exit codes: 0 accepted, 1 rejected, 2 usage or setup error. With the `join`
//! feature, `join` (on an instance: send the IMDS document to a join server; exit 0 joined,
//! 1 refused, 2 usage, 3 IMDS failed or the server could not be reached) and `agent`; with
//! `serve`, `serve` (the join server) and `registry` (the enrollment records of a shared
//! registry; its `postgres:` and `dynamodb:` kinds with the `postgres` and `dynamodb`
//! features). `aws` turns every one on. See the crate's README for an example session.
// The layout of `serve`'s join future (axum handler, lookup, registry, timeout, spans) nests
// deeper than the default limit of 128 queries when clippy computes it.
#![recursion_limit = "256"]

mod args;
mod certs;
mod explain;
mod hint;
#[cfg(feature = "join")]
mod join;
#[cfg(feature = "serve")]
mod registry;
#[cfg(feature = "serve")]
mod serve;
mod setup;
mod verify;

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{ArgMatches, CommandFactory as _, FromArgMatches as _, Parser, Subcommand};

use crate::args::{Options, VerifyArgs};
use crate::setup::Setup;

const EXIT_CODES: &str = "Exit codes: 0 accepted, 1 rejected, 2 usage or setup error.";

/// Verify AWS EC2 instance identity documents (/rsa2048, /pkcs7, /signature) offline.
#[derive(Debug, Parser)]
#[command(name = "ec2-iid", version, after_help = EXIT_CODES, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Verify a document: one JSON object on stdout, accepted (exit 0) or rejected (exit 1).
    #[command(after_help = EXIT_CODES)]
    Verify(VerifyArgs),
    /// Run the same checks as `verify` and report each stage on its own line.
    #[command(after_help = EXIT_CODES)]
    Explain(VerifyArgs),
    /// The AWS certificates the crate trusts.
    #[command(subcommand)]
    Certs(CertsCommand),
    /// On an instance: fetch the identity document from IMDS and send it to a join server
    /// (POST URL/join), retrying 503 answers and connection errors until --deadline.
    #[cfg(feature = "join")]
    #[command(after_help = join::EXIT_CODES)]
    Join(join::JoinArgs),
    /// On an instance: keep a certificate in --out-dir valid. Joins (POST URL/join with a new
    /// key's CSR) when it holds none, then renews over mutual TLS (POST URL/renew, a new key
    /// each time) at two thirds of each certificate's lifetime; runs until SIGTERM or Ctrl-C.
    #[cfg(feature = "join")]
    #[command(after_help = join::EXIT_CODES)]
    Agent(join::agent::AgentArgs),
    /// Not built: this binary was built without the `join` feature.
    #[cfg(not(feature = "join"))]
    #[command(hide = true, disable_help_flag = true)]
    Agent {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
        args: Vec<std::ffi::OsString>,
    },
    /// Not built: this binary was built without the `join` feature.
    #[cfg(not(feature = "join"))]
    #[command(hide = true, disable_help_flag = true)]
    Join {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
        args: Vec<std::ffi::OsString>,
    },
    /// The join server: POST /join verifies an instance's identity document, checks the
    /// instance with DescribeInstances and lets each launch join once (with --ca-cert, a join
    /// with a CSR gets a certificate; GET /bundle); GET /metrics and GET /healthz for the
    /// operator.
    #[cfg(feature = "serve")]
    #[command(after_help = serve::EXIT_CODES)]
    // Boxed: its flags make it far larger than the other variants.
    Serve(Box<serve::ServeArgs>),
    /// Not built: this binary was built without the `serve` feature.
    #[cfg(not(feature = "serve"))]
    #[command(hide = true, disable_help_flag = true)]
    Serve {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
        args: Vec<std::ffi::OsString>,
    },
    /// The enrollment records of a shared join registry (--registry postgres:URL or
    /// dynamodb:TABLE): list, show, evict and purge hosts.
    #[cfg(feature = "serve")]
    #[command(after_help = registry::EXIT_CODES)]
    Registry(registry::RegistryArgs),
    /// Not built: this binary was built without the `serve` feature.
    #[cfg(not(feature = "serve"))]
    #[command(hide = true, disable_help_flag = true)]
    Registry {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
        args: Vec<std::ffi::OsString>,
    },
}

#[derive(Debug, Subcommand)]
enum CertsCommand {
    /// List every embedded AWS certificate: format, regions, subject, serial, validity,
    /// SHA-256 of the DER.
    List {
        /// Print a JSON array, one object per certificate.
        #[arg(long)]
        json: bool,
    },
    /// Say for each certificate in the files whether the store has it (present), does not
    /// (new), or has another key under its issuer and serial (conflicting: exit 1).
    Check {
        /// PEM files, each with one or more certificates.
        #[arg(required = true, value_name = "FILE.pem")]
        files: Vec<PathBuf>,
        /// Print a JSON array, one object per certificate.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    let matches = match Cli::command().try_get_matches() {
        Ok(matches) => matches,
        Err(e) => return clap_exit(&e),
    };
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => return clap_exit(&e),
    };
    match cli.command {
        Command::Verify(args) => with_setup("verify", args, &matches, verify::run),
        Command::Explain(args) => with_setup("explain", args, &matches, explain::run),
        Command::Certs(CertsCommand::List { json }) => certs::list(json),
        Command::Certs(CertsCommand::Check { files, json }) => certs::check(&files, json),
        #[cfg(feature = "join")]
        Command::Join(args) => {
            join::run(args).unwrap_or_else(|message| usage_error("join", &message))
        }
        #[cfg(feature = "join")]
        Command::Agent(args) => {
            join::agent::run(args).unwrap_or_else(|message| usage_error("agent", &message))
        }
        #[cfg(feature = "serve")]
        Command::Serve(args) => {
            let sub_matches = matches.subcommand_matches("serve").unwrap_or(&matches);
            serve::run(*args, sub_matches).unwrap_or_else(|message| usage_error("serve", &message))
        }
        #[cfg(feature = "serve")]
        Command::Registry(args) => {
            registry::run(args).unwrap_or_else(|message| usage_error("registry", &message))
        }
        #[cfg(not(feature = "serve"))]
        Command::Registry { .. } => not_built("registry", "serve"),
        #[cfg(not(feature = "join"))]
        Command::Join { .. } => not_built("join", "join"),
        #[cfg(not(feature = "join"))]
        Command::Agent { .. } => not_built("agent", "join"),
        #[cfg(not(feature = "serve"))]
        Command::Serve { .. } => not_built("serve", "serve"),
    }
}

/// A subcommand whose feature is off (`join`, `agent` without `join`; `serve`, `registry`
/// without `serve`): the message, exit 2.
#[cfg(not(all(feature = "join", feature = "serve")))]
fn not_built(name: &str, feature: &str) -> ExitCode {
    eprintln!("error: {}", built_without(feature, &format!("`{name}`")));
    ExitCode::from(2)
}

/// What to say when `what` needs `feature` and this binary was built without it.
#[cfg_attr(
    all(
        feature = "postgres",
        feature = "dynamodb",
        feature = "join",
        not(test)
    ),
    expect(dead_code, reason = "every feature is on: nothing is missing")
)]
pub(crate) fn built_without(feature: &str, what: &str) -> String {
    format!(
        "this ec2-iid was built without the `{feature}` feature, which {what} needs: cargo \
         install ec2-iid-cli --features {feature} (or --features aws, for every subcommand)"
    )
}

/// Checks the flags, reads what they name, then runs the subcommand.
fn with_setup(
    name: &str,
    args: VerifyArgs,
    matches: &ArgMatches,
    run: fn(&Setup) -> ExitCode,
) -> ExitCode {
    let sub_matches = matches.subcommand_matches(name).unwrap_or(matches);
    match Options::new(args, sub_matches).and_then(Setup::new) {
        Ok(setup) => run(&setup),
        Err(message) => usage_error(name, &message),
    }
}

/// Prints clap's message (help and version on stdout) and exits with clap's code: 0 for
/// `--help` and `--version`, 2 for usage errors.
fn clap_exit(e: &clap::Error) -> ExitCode {
    let _ = e.print();
    ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2))
}

/// A usage or setup error: the message and the subcommand's usage on stderr, exit 2.
fn usage_error(name: &str, message: &str) -> ExitCode {
    let mut command = Cli::command();
    command.build();
    let usage = command
        .find_subcommand_mut(name)
        .map(|sub| sub.render_usage().to_string())
        .unwrap_or_default();
    eprintln!("error: {message}\n\n{usage}\n\nFor more information, try '--help'.");
    ExitCode::from(2)
}

/// Prints a line on stdout; a closed pipe (`ec2-iid certs list | head`) is not an error.
pub(crate) fn out(line: impl core::fmt::Display) {
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_missing_feature_is_named_with_the_command_to_build_it() {
        assert_eq!(
            super::built_without("postgres", "--registry postgres:URL"),
            "this ec2-iid was built without the `postgres` feature, which --registry \
             postgres:URL needs: cargo install ec2-iid-cli --features postgres (or --features \
             aws, for every subcommand)"
        );
    }
}
