//! `eid-enrolment`: the reference enrolment service (see the crate README).

fn main() -> std::process::ExitCode {
    eid_enrolment::cli::main()
}
