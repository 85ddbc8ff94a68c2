//! `eid-agent`: the command line of the eID desktop agent.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use eid_agent::report::ErrorReport;
use eid_agent::service::{self, Notice, Options};
use eid_card::detect::Detector;
use eid_card::monitor::Event;
use eid_card::pcsc_transport::PcscContext;

#[derive(Parser, Debug)]
#[command(
    name = "eid-agent",
    version,
    about = "eID card agent: readers, cards and the localhost bridge"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// List readers, whether a card is present, its ATR and what card it is.
    Readers {
        /// One JSON document on stdout.
        #[arg(long)]
        json: bool,
        /// The configuration directory whose agent.toml names NFC devices (`nfc_devices`).
        /// Default: $EID_AGENT_CONFIG_DIR, else ~/.config/eid-agent.
        #[arg(long, value_name = "DIR")]
        config_dir: Option<std::path::PathBuf>,
    },
    /// Print reader and card events as they happen (the current state first).
    Monitor {
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// Run the agent: watch readers and serve the localhost HTTPS bridge, until interrupted.
    Run(eid_agent::cli_run::RunArgs),
    /// Sites allowed to use the card: list them, revoke them.
    Sites(eid_agent::cli_sites::SitesArgs),
    /// Portuguese Citizen Card: identity, photo, certificates, PINs, signatures.
    Card(eid_agent::cli_card::CardArgs),
    /// ICAO 9303 eMRTD (passport, ID card): read with PACE or BAC and verify.
    Emrtd(eid_agent::cli_emrtd::EmrtdArgs),
    /// Install the agent for this user (or, with --system, the machine): local CA and its
    /// trust in the browsers, autostart, browser policies. Idempotent.
    Install(eid_agent::cli_install::InstallArgs),
    /// Undo everything `install` did (same scope).
    Uninstall(eid_agent::cli_install::UninstallArgs),
    /// Check pcscd, readers, cards, the port, the certificates and their trust, the browser
    /// policy and the configuration; print each failure with its remedy.
    Doctor(eid_agent::doctor::DoctorArgs),
    /// The kiosk's audit log: verify its hash chain (edits, deletions, reordering).
    Audit(eid_agent::cli_audit::AuditArgs),
    /// Write the manual pages generated from this command line (packaging).
    #[command(hide = true)]
    Man {
        /// Directory to write eid-agent.1 and one page per subcommand into.
        #[arg(long, default_value = ".")]
        out: std::path::PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    eid_agent::logging::init(matches!(cli.command, Command::Run(_)));
    let (result, json) = match cli.command {
        Command::Readers { json, config_dir } => (readers(json, config_dir.as_deref()), json),
        Command::Monitor { json } => (watch(json, false), json),
        Command::Run(args) => {
            let json = args.json;
            return match eid_agent::cli_run::run(args) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    let remedy = e.remedy().unwrap_or_else(|| run_remedy(e.code()));
                    eid_agent::report::print_other(e.code(), &e.to_string(), remedy, json);
                    ExitCode::from(2)
                }
            };
        }
        Command::Sites(args) => return eid_agent::cli_sites::main(args),
        Command::Install(args) => return eid_agent::cli_install::install(args),
        Command::Uninstall(args) => return eid_agent::cli_install::uninstall(args),
        Command::Doctor(args) => return eid_agent::doctor::main(args),
        Command::Audit(args) => return eid_agent::cli_audit::main(args),
        Command::Man { out } => return man_pages(&out),
        Command::Card(args) => {
            let json = args.json;
            (eid_agent::cli_card::run(args), json)
        }
        Command::Emrtd(args) => {
            let json = args.json();
            (eid_agent::cli_emrtd::run(args), json)
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            ErrorReport::new(&e).print(json);
            ExitCode::from(2)
        }
    }
}

/// Writes `eid-agent.1` and `eid-agent-<sub>.1` for every visible subcommand.
fn man_pages(out: &std::path::Path) -> ExitCode {
    use clap::CommandFactory;
    let write = || -> std::io::Result<()> {
        std::fs::create_dir_all(out)?;
        let command = Cli::command();
        let mut page = Vec::new();
        clap_mangen::Man::new(command.clone()).render(&mut page)?;
        std::fs::write(out.join("eid-agent.1"), page)?;
        for sub in command.get_subcommands().filter(|c| !c.is_hide_set()) {
            let name = format!("eid-agent-{}", sub.get_name());
            let mut page = Vec::new();
            clap_mangen::Man::new(sub.clone().name(name.clone())).render(&mut page)?;
            std::fs::write(out.join(format!("{name}.1")), page)?;
        }
        Ok(())
    };
    match write() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!(
                "error: cannot write the manual pages into {}: {e}",
                out.display()
            );
            ExitCode::from(2)
        }
    }
}

/// `eid-agent readers`: PC/SC readers, then NFC readers (agent.toml `nfc_devices`, then
/// `EID_NFC_DEVICES`, then libnfc's scan). NFC needs no pcscd: without it the NFC readers are
/// still listed and pcscd's problem is said once, as a note; only when there is no reader at
/// all is it the command's error (exit 2), as before.
fn readers(json: bool, config_dir: Option<&std::path::Path>) -> Result<(), eid_card::Error> {
    let detector = Detector::with_known_cards();
    let mut notes: Vec<ErrorReport> = Vec::new();
    let (mut reports, pcsc_error) =
        match PcscContext::establish().and_then(|c| eid_agent::readers::list(&c, &detector)) {
            Ok(reports) => (reports, None),
            Err(e) => (Vec::new(), Some(e)),
        };
    let devices = match eid_agent::config::nfc_devices(config_dir) {
        Ok(devices) => devices,
        Err(e) => {
            // The listing still helps; `eid-agent doctor` and `run` insist on a valid file.
            if !json {
                eprintln!(
                    "note: agent.toml not used: {e}\n  what to do: {}",
                    e.remedy()
                );
            }
            eid_card::nfc::devices_from_env()
        }
    };
    // NFC readers after the PC/SC ones; libnfc trouble does not hide the PC/SC readers.
    match eid_agent::readers::list_nfc(&detector, &devices) {
        Ok(nfc) => reports.extend(nfc),
        Err(e) => tracing::warn!(error = %e, "NFC readers not listed"),
    }
    if let Some(e) = pcsc_error {
        if reports.is_empty() {
            return Err(e);
        }
        let note = ErrorReport::new(&e);
        if !json {
            eprintln!(
                "note: PC/SC readers not listed: {}\n  what to do: {}\n  code: {}",
                note.message, note.remedy, note.code
            );
        }
        notes.push(note);
    }
    if json {
        println!(
            "{}",
            serde_json::json!({ "readers": reports, "notes": notes })
        );
    } else {
        eid_agent::readers::print_text(&reports);
    }
    Ok(())
}

fn run_remedy(code: &str) -> &'static str {
    match code {
        "port-in-use" => "Stop the other agent, or choose another port with --port.",
        "config-invalid" => "Fix the configuration file named in the message.",
        "tls-material" => {
            "Delete the agent's tls folder to have it re-created, or run eid-agent install."
        }
        _ => "See the message; run with EID_LOG=debug for details.",
    }
}

fn watch(json: bool, identify_cards: bool) -> Result<(), eid_card::Error> {
    let options = Options {
        identify_cards,
        ..Options::default()
    };
    service::run(
        options,
        |_canceller| {},
        |notice| print_notice(&notice, json),
    )
}

fn print_notice(notice: &Notice, json: bool) {
    if json {
        let line = match notice {
            Notice::Event(event) => serde_json::to_string(event),
            other => serde_json::to_string(other),
        };
        if let Ok(line) = line {
            println!("{line}");
        }
        return;
    }
    match notice {
        Notice::Event(Event::ReaderAdded { reader }) => println!("reader added: {reader}"),
        Notice::Event(Event::ReaderRemoved { reader }) => println!("reader removed: {reader}"),
        Notice::Event(Event::CardInserted { reader, atr }) => {
            println!("card inserted: {reader} (ATR {})", eid_card::hex(atr));
        }
        Notice::Event(Event::CardRemoved { reader }) => println!("card removed: {reader}"),
        Notice::CardRecognised {
            reader,
            card_name,
            card_id,
            ..
        } => {
            println!("card recognised: {reader}: {card_name} ({card_id})");
        }
        Notice::CardNotRecognised {
            reader,
            message,
            code,
        } => {
            println!("card not recognised: {reader}: {message} [{code}]");
        }
        Notice::ServiceLost => println!("smart card service stopped; waiting for it to come back"),
        Notice::ServiceBack => println!("smart card service is back"),
    }
    use std::io::Write;
    let _ = std::io::stdout().flush();
}
