//! `eid-agent emrtd ...`: eMRTD commands (ICAO 9303 passports and ID cards, and the eMRTD side
//! of the Citizen Card).
//!
//! Everything card-shaped goes through `eid_card::emrtd`; this module parses arguments, shows a
//! progress bar on stderr while files are read (not with `--json`, nor when stderr is not a
//! terminal) and prints each check's result. Exit codes: 0 success, 2 failure.

use std::io::IsTerminal;
use std::path::PathBuf;

use clap::{Args, Subcommand};
use eid_card::Error;
use eid_card::emrtd::{self, AccessKey, EmrtdReport, PassiveAuth, Progress, ReadOptions};
use eid_card::pcsc_transport::PcscContext;
use eid_protocols::pa::Check;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// `eid-agent emrtd`.
#[derive(Args, Debug)]
pub struct EmrtdArgs {
    #[command(subcommand)]
    pub command: EmrtdCommand,
}

impl EmrtdArgs {
    /// Whether output is JSON (for the error report).
    pub fn json(&self) -> bool {
        match &self.command {
            EmrtdCommand::Read(a) => a.json,
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum EmrtdCommand {
    /// Read the document: access (PACE or BAC), data groups, chip, active and passive
    /// authentication.
    Read(ReadArgs),
}

/// `eid-agent emrtd read`.
#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("key").required(true).args(["can", "mrz"])))]
pub struct ReadArgs {
    /// The card access number printed on the document.
    #[arg(long, value_name = "N")]
    pub can: Option<String>,
    /// "<document number> <birth YYMMDD> <expiry YYMMDD>" from the machine-readable zone.
    #[arg(long, value_name = "DOC BIRTH EXPIRY")]
    pub mrz: Option<String>,
    /// A folder of CSCA certificates and CRLs (PEM or DER) and master lists.
    #[arg(long, value_name = "DIR")]
    pub csca: Option<PathBuf>,
    /// A CSCA master list (CMS).
    #[arg(long, value_name = "FILE")]
    pub master_list: Option<PathBuf>,
    /// The Active Authentication challenge: 8 bytes as 16 hex digits.
    #[arg(long, value_name = "HEX", value_parser = parse_challenge)]
    pub challenge: Option<[u8; 8]>,
    /// One JSON document on stdout.
    #[arg(long)]
    pub json: bool,
    /// Write the face image (DG2) as PNG.
    #[arg(long, value_name = "FILE")]
    pub photo: Option<PathBuf>,
    /// The reader to use (default: the first reader with a card).
    #[arg(long, value_name = "NAME")]
    pub reader: Option<String>,
}

fn parse_challenge(s: &str) -> Result<[u8; 8], String> {
    let bytes = hex::decode(s.trim()).map_err(|e| format!("not hex: {e}"))?;
    bytes
        .try_into()
        .map_err(|_| "the challenge must be exactly 8 bytes (16 hex digits)".to_owned())
}

/// Runs an `emrtd` subcommand.
pub fn run(args: EmrtdArgs) -> Result<(), Error> {
    match args.command {
        EmrtdCommand::Read(a) => read(a),
    }
}

/// Prints a usage-type problem (bad access data, unreadable trust store) and exits with 2.
fn usage_error(json: bool, code: &str, message: String) -> ! {
    if json {
        println!(
            "{}",
            serde_json::json!({ "error": { "code": code, "message": message, "retryable": false } })
        );
    } else {
        eprintln!("error: {message}");
    }
    std::process::exit(2)
}

fn read(args: ReadArgs) -> Result<(), Error> {
    let key = match (&args.can, &args.mrz) {
        (Some(can), _) => AccessKey::can(can),
        (None, Some(mrz)) => AccessKey::parse_mrz(mrz),
        (None, None) => usage_error(args.json, "usage", "give --can or --mrz".into()),
    }
    .unwrap_or_else(|e| usage_error(args.json, "invalid-access-key", e.to_string()));

    let store = if args.csca.is_some() || args.master_list.is_some() {
        Some(
            emrtd::trust::load(args.csca.as_deref(), args.master_list.as_deref())
                .unwrap_or_else(|e| usage_error(args.json, "trust-store", e.to_string())),
        )
    } else {
        None
    };

    let context = PcscContext::establish()?;
    let mut transport = match &args.reader {
        Some(name) => context.connect(name)?,
        None => context.connect_first_card()?,
    };

    let bar = if args.json || !std::io::stderr().is_terminal() {
        ProgressBar::hidden()
    } else {
        let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
        if let Ok(style) =
            ProgressStyle::with_template("{msg:>14} [{bar:30}] {bytes}/{total_bytes} {elapsed}")
        {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message("access");
        bar
    };
    let progress_bar = bar.clone();
    let options = ReadOptions {
        csca: store.as_ref(),
        challenge: args.challenge,
        progress: Some(Box::new(move |p: &Progress| {
            progress_bar.set_message(p.file.name);
            progress_bar.set_length(p.total.unwrap_or(p.read) as u64);
            progress_bar.set_position(p.read as u64);
        })),
    };
    let result = emrtd::read_document(&mut transport, &key, options);
    bar.finish_and_clear();
    let report = result?;

    if let Some(path) = &args.photo {
        match &report.photo {
            Some(photo) => {
                if let Err(e) = std::fs::write(path, &photo.png) {
                    usage_error(
                        args.json,
                        "photo-write",
                        format!("cannot write {}: {e}", path.display()),
                    );
                }
            }
            None => eprintln!("note: the document has no readable face image"),
        }
    }

    if args.json {
        println!("{}", serde_json::json!({ "emrtd": report }));
    } else {
        print_text(&report);
    }
    Ok(())
}

fn check_text(check: &Check) -> String {
    match check {
        Check::Passed => "passed".into(),
        Check::Failed { reason } => format!("FAILED ({reason})"),
        Check::NotPerformed { reason } => format!("not performed ({reason})"),
    }
}

fn print_text(report: &EmrtdReport) {
    let method = match &report.access.method {
        emrtd::AccessMethod::Pace {
            oid,
            parameter_id,
            password,
            ..
        } => format!(
            "PACE ({oid}, domain parameters {}, {password})",
            parameter_id.map_or("?".into(), |p| p.to_string())
        ),
        emrtd::AccessMethod::Bac => "BAC".into(),
    };
    println!(
        "access:                  {method}: {}",
        check_text(&report.access.check)
    );
    if let Some(why) = &report.access.pace_fallback_reason {
        println!("  (PACE not used: {why})");
    }
    println!(
        "chip authentication:     {}",
        check_text(&report.chip_authentication)
    );
    println!(
        "active authentication:   {}",
        check_text(&report.active_authentication)
    );
    match &report.passive_authentication {
        PassiveAuth::Report(pa) => {
            println!("passive authentication:");
            println!("  signature:             {}", check_text(&pa.signature));
            println!(
                "  certificate chain:     {}",
                check_text(&pa.certificate_chain)
            );
            println!("  revocation:            {}", check_text(&pa.revocation));
            for dg in &pa.data_groups {
                println!(
                    "  DG{:<2} hash:             {}",
                    dg.data_group,
                    check_text(&dg.check)
                );
            }
        }
        PassiveAuth::Failed { reason } => println!("passive authentication:  FAILED ({reason})"),
    }
    if let Some(dg1) = &report.dg1 {
        let m = &dg1.mrz;
        println!(
            "document:                {} {} {}",
            m.document_code, m.issuing_state, m.document_number
        );
        println!(
            "name:                    {}, {}",
            m.primary_identifier, m.secondary_identifier
        );
        println!("nationality:             {}", m.nationality);
        println!("date of birth:           {}", m.birth_date.raw);
        println!("date of expiry:          {}", m.expiry_date.raw);
        if !m.checks.all_valid() {
            println!("  warning: an MRZ check digit does not match");
        }
    }
    if let Some(dg11) = &report.dg11
        && let Some(name) = &dg11.full_name
    {
        println!("full name (DG11):        {name}");
    }
    if let Some(photo) = &report.photo {
        println!(
            "photo:                   {:?} {}x{}",
            photo.image_type, photo.width, photo.height
        );
    }
    for e in &report.parse_errors {
        println!("warning: {e}");
    }
}
