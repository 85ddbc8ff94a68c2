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
        Command::Readers { json } => (readers(json), json),
        Command::Monitor { json } => (watch(json, false), json),
        Command::Run(args) => {
            let json = args.json;
            return match eid_agent::cli_run::run(args) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    let remedy = e.remedy().unwrap_or_else(|| run_remedy(e.code()));
                    report_other(e.code(), &e.to_string(), remedy, json);
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

fn readers(json: bool) -> Result<(), eid_card::Error> {
    let context = PcscContext::establish()?;
    let detector = Detector::with_known_cards();
    let mut reports = eid_agent::readers::list(&context, &detector)?;
    // NFC readers after the PC/SC ones; libnfc trouble does not hide the PC/SC readers.
    match eid_agent::readers::list_nfc(&detector, &eid_card::nfc::devices_from_env()) {
        Ok(nfc) => reports.extend(nfc),
        Err(e) => tracing::warn!(error = %e, "NFC readers not listed"),
    }
    if json {
        println!("{}", serde_json::json!({ "readers": reports }));
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

/// Prints an error that is not a card error, in the same shape as card errors.
fn report_other(code: &str, message: &str, remedy: &str, json: bool) {
    if json {
        let value =
            serde_json::json!({ "error": { "code": code, "message": message, "remedy": remedy } });
        println!("{value}");
    } else {
        eprintln!("error: {message}\n  what to do: {remedy}\n  code: {code}");
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
