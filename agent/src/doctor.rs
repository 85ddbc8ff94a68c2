//! `eid-agent doctor`. PLACEHOLDER: owned by the doctor helper.

use std::process::ExitCode;

/// Options of `eid-agent doctor`.
#[derive(clap::Args, Debug)]
pub struct DoctorArgs {}

pub fn main(_args: DoctorArgs) -> ExitCode {
    eprintln!("doctor: not implemented yet");
    ExitCode::from(2)
}
