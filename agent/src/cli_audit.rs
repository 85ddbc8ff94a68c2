//! `eid-agent audit`: check the kiosk's audit log, and print it.
//!
//! `verify` recomputes the whole chain with the key (see [`crate::audit::verify`]) and exits 0
//! when it is intact, 1 when it was tampered with (printing the first break: file, line and
//! kind), 2 when it cannot run (no log, no key, a key others can read). `show` prints the
//! lines as they are (they hold metadata only: no document number, name or PIN), without
//! checking them.
//!
//! The directory and key file default to the administrator's policy (`[kiosk]` `audit_dir`,
//! `audit_key_file`), then to the documented defaults.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::audit::{self, AuditError, Entry, Report};
use crate::config::{self, AdminPolicy};

/// Arguments of `eid-agent audit`.
#[derive(Debug, clap::Args)]
pub struct AuditArgs {
    #[command(subcommand)]
    command: AuditCommand,
}

#[derive(Debug, clap::Subcommand)]
enum AuditCommand {
    /// Verify the hash chain: exit 0 intact, 1 tampered (the first break is printed: file,
    /// line and kind), 2 cannot run.
    Verify {
        #[command(flatten)]
        place: Place,
        /// One JSON document on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Print the log's lines (operations, results, document types; no personal data),
    /// without verifying them.
    Show {
        #[command(flatten)]
        place: Place,
        /// The lines as they are (JSON lines).
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, clap::Args)]
struct Place {
    /// The log directory. Default: `audit_dir` of the policy's [kiosk] table, else
    /// /var/lib/eid-agent/audit.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// The audit key file. Default: `audit_key_file` of the policy's [kiosk] table, else
    /// /etc/eid-agent/audit.key.
    #[arg(long, value_name = "FILE")]
    key: Option<PathBuf>,
    /// The administrator's policy file. Default: $EID_AGENT_POLICY, else
    /// /etc/eid-agent/policy.toml.
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
}

impl Place {
    /// The directory and key file: flags, else the policy, else the defaults.
    fn resolve(&self) -> Result<(PathBuf, PathBuf), config::ConfigError> {
        if let (Some(dir), Some(key)) = (&self.dir, &self.key) {
            return Ok((dir.clone(), key.clone()));
        }
        let env = std::env::var_os(config::ENV_POLICY).filter(|v| !v.is_empty());
        let (path, required) = match (&self.policy, env) {
            (Some(p), _) => (p.clone(), true),
            (None, Some(p)) => (PathBuf::from(p), true),
            (None, None) => (PathBuf::from(config::DEFAULT_POLICY_FILE), false),
        };
        let kiosk = AdminPolicy::load(&path, required)?.kiosk;
        let dir = self.dir.clone().unwrap_or_else(|| {
            kiosk.as_ref().map_or_else(
                || PathBuf::from(config::DEFAULT_AUDIT_DIR),
                |k| k.audit_dir.clone(),
            )
        });
        let key = self.key.clone().unwrap_or_else(|| {
            kiosk.as_ref().map_or_else(
                || PathBuf::from(config::DEFAULT_AUDIT_KEY_FILE),
                |k| k.audit_key_file.clone(),
            )
        });
        Ok((dir, key))
    }
}

pub fn main(args: AuditArgs) -> ExitCode {
    match args.command {
        AuditCommand::Verify { place, json } => verify(&place, json),
        AuditCommand::Show { place, json } => show(&place, json),
    }
}

fn cannot_run(code: &str, message: &str, remedy: &str, json: bool) -> ExitCode {
    crate::report::print_other(code, message, remedy, json);
    ExitCode::from(2)
}

fn audit_error(e: &AuditError, json: bool) -> ExitCode {
    cannot_run(e.code(), &e.to_string(), e.remedy(), json)
}

fn verify(place: &Place, json: bool) -> ExitCode {
    let (dir, key) = match place.resolve() {
        Ok(found) => found,
        Err(e) => return cannot_run(e.code(), &e.to_string(), e.remedy(), json),
    };
    let report = match audit::verify_dir(&dir, &key) {
        Ok(report) => report,
        Err(e) => return audit_error(&e, json),
    };
    print_report(&dir, &report, json);
    if report.intact {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn print_report(dir: &Path, report: &Report, json: bool) {
    if json {
        if let Ok(text) = serde_json::to_string(report) {
            println!("{text}");
        }
        return;
    }
    let range = match (report.first_seq, report.last_seq) {
        (Some(first), Some(last)) => format!(", lines {first} to {last}"),
        _ => String::new(),
    };
    match &report.first_break {
        None => println!(
            "audit log {}: intact: {} entries in {} file(s){range}",
            dir.display(),
            report.entries,
            report.files
        ),
        Some(b) => {
            println!(
                "audit log {}: TAMPERED: {} at {} line {}: {}",
                dir.display(),
                b.kind.as_str(),
                b.file,
                b.line,
                b.detail
            );
            println!(
                "  {} entries verified before the break{range}",
                report.entries
            );
            println!(
                "  what to do: keep the directory as evidence; move it aside to let the agent start a new log"
            );
        }
    }
}

fn show(place: &Place, json: bool) -> ExitCode {
    let dir = match &place.dir {
        Some(dir) => dir.clone(),
        None => match place.resolve() {
            Ok((dir, _)) => dir,
            Err(e) => return cannot_run(e.code(), &e.to_string(), e.remedy(), json),
        },
    };
    let files = match audit::log_files(&dir) {
        Ok(files) if files.is_empty() => return audit_error(&AuditError::NoLog { dir }, json),
        Ok(files) => files,
        Err(e) => return audit_error(&e, json),
    };
    // Written with `writeln!`, not `println!`: a closed pipe (`| head`) ends the listing
    // quietly instead of panicking.
    let mut out = std::io::stdout().lock();
    for (_, name) in files {
        let path = dir.join(&name);
        let file = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(source) => return audit_error(&AuditError::Io { path, source }, json),
        };
        let reader = std::io::BufReader::new(file);
        for (n, line) in reader.split(b'\n').enumerate() {
            let line = match line {
                Ok(l) => l,
                Err(source) => return audit_error(&AuditError::Io { path, source }, json),
            };
            let written = match Entry::parse_line(&line) {
                Ok(entry) if json => match entry.line() {
                    Ok(text) => writeln!(out, "{text}"),
                    Err(_) => Ok(()),
                },
                Ok(entry) => writeln!(out, "{}", describe(&entry)),
                Err(_) => {
                    eprintln!("{name} line {}: not an audit line (skipped)", n + 1);
                    Ok(())
                }
            };
            if written.is_err() {
                return ExitCode::SUCCESS;
            }
        }
    }
    ExitCode::SUCCESS
}

fn describe(e: &Entry) -> String {
    let mut text = format!(
        "{:>6} {} {} {} -> {}",
        e.seq, e.time, e.desk, e.operation, e.result
    );
    for (label, value) in [
        ("origin", &e.origin),
        ("reader", &e.reader),
        ("session", &e.session),
        ("document", &e.document_type),
    ] {
        if let Some(v) = value {
            text.push_str(&format!(" {label}={v:?}"));
        }
    }
    if let Some(h) = &e.document_hash {
        text.push_str(&format!(" documentHash={}", h.get(..16).unwrap_or(h)));
    }
    text
}
