//! `eid-agent audit` (owned by the audit helper; stub).

use std::process::ExitCode;

/// Arguments of `eid-agent audit`.
#[derive(Debug, clap::Args)]
pub struct AuditArgs {}

pub fn main(args: AuditArgs) -> ExitCode {
    let _ = args;
    ExitCode::from(2)
}
