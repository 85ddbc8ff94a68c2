//! `eid-agent install` and `eid-agent uninstall` (the work is done by `eid_installer::install`).
//! PLACEHOLDER: owned by the install helper.

use std::process::ExitCode;

/// Options of `eid-agent install`.
#[derive(clap::Args, Debug)]
pub struct InstallArgs {}

/// Options of `eid-agent uninstall`.
#[derive(clap::Args, Debug)]
pub struct UninstallArgs {}

pub fn install(_args: InstallArgs) -> ExitCode {
    eprintln!("install: not implemented yet");
    ExitCode::from(2)
}

pub fn uninstall(_args: UninstallArgs) -> ExitCode {
    eprintln!("uninstall: not implemented yet");
    ExitCode::from(2)
}
