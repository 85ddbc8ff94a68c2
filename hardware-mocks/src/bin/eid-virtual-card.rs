//! `eid-virtual-card`: puts a virtual card into a vpcd reader of pcscd and keeps it there.
//!
//! ```text
//! eid-virtual-card iso7816-test                       # reader "Virtual PCD 00 00"
//! eid-virtual-card iso7816-test-t0 --vpcd 127.0.0.1:35964
//! eid-virtual-card --list
//! eid-virtual-card pteid-cc1 --identity citizen.json --export-pki /tmp/pki
//! eid-virtual-card emrtd-pace --pn532                 # in the field of an emulated PN532
//! ```
//!
//! `--identity` (Citizen Card profiles) takes the citizen from a JSON file shaped like
//! `hardware-mocks/assets/citizen-default.json`; `--export-pki DIR` writes the test PKI (root,
//! sub-CAs, document signer, the citizen's certificates) as PEM files before attaching.
//!
//! `--pn532` puts the card in the field of an emulated PN532 reader on a pseudo-terminal instead
//! of vpcd, and prints libnfc's connection string (`pn532_uart:/dev/pts/N`): point libnfc at it
//! with `LIBNFC_DEVICE=pn532_uart:/dev/pts/N nfc-list`, or `EID_NFC_DEVICES` for the agent.
//!
//! Runs until killed. If vpcd is not listening yet, or the connection drops (pcscd restarted),
//! it connects again every 200 ms. `RUST_LOG=eid_hardware_mocks=trace` logs every APDU's header
//! and status word to stderr.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use eid_hardware_mocks::pn532::{Pn532Emulator, Pn532Options, TargetKind};
use eid_hardware_mocks::vpcd::{self, VpcdHandle};
use eid_hardware_mocks::{VirtualCard, profiles, pteid};

const RETRY: Duration = Duration::from_millis(200);

/// Emulate a smart card in a vpcd (vsmartcard) reader of pcscd.
#[derive(Parser, Debug)]
#[command(name = "eid-virtual-card", version)]
struct Args {
    /// The card profile to emulate (see --list).
    #[arg(required_unless_present = "list")]
    profile: Option<String>,

    /// Where vpcd listens: 127.0.0.1:35963 is reader "Virtual PCD 00 00", :35964 "00 01".
    #[arg(long, value_name = "ADDR", default_value_t = vpcd::SLOT0)]
    vpcd: SocketAddr,

    /// Citizen Card profiles: the citizen, from a JSON file.
    #[arg(long, value_name = "FILE")]
    identity: Option<PathBuf>,

    /// Citizen Card profiles: write the test PKI (PEM) into DIR.
    #[arg(long, value_name = "DIR")]
    export_pki: Option<PathBuf>,

    /// Put the card in the field of an emulated PN532 NFC reader (libnfc's pn532_uart driver)
    /// on a pseudo-terminal instead of vpcd; prints the libnfc connection string.
    #[arg(long)]
    pn532: bool,

    /// With --pn532: present the card as ISO/IEC 14443 type B instead of type A.
    #[arg(long, requires = "pn532")]
    type_b: bool,

    /// List the card profiles and exit.
    #[arg(long, conflicts_with = "profile")]
    list: bool,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    if args.list {
        for name in profiles::names() {
            println!("{name}");
        }
        println!("\neMRTD document data (trust material: <profile> --export-pki DIR):");
        for emrtd in eid_hardware_mocks::emrtd::Profile::ALL {
            println!("  {}", eid_hardware_mocks::emrtd::describe(emrtd));
        }
        println!("  {}", eid_hardware_mocks::emrtd::cc2::describe());
        return ExitCode::SUCCESS;
    }
    let Some(profile) = args.profile.clone() else {
        eprintln!("eid-virtual-card: no profile given (see --list)");
        return ExitCode::from(2);
    };
    if profile == eid_hardware_mocks::emrtd::cc2::PROFILE {
        return cc2_contactless_main(&args);
    }
    if let Some(emrtd) = eid_hardware_mocks::emrtd::Profile::from_name(&profile) {
        return emrtd_main(emrtd, &args);
    }
    let card = if profile.starts_with("pteid-") {
        match pteid_card(&profile, &args) {
            Ok(card) => card,
            Err(e) => {
                eprintln!("eid-virtual-card: {e}");
                return ExitCode::from(2);
            }
        }
    } else {
        if args.identity.is_some() || args.export_pki.is_some() {
            eprintln!("eid-virtual-card: --identity and --export-pki are for pteid-* profiles");
            return ExitCode::from(2);
        }
        match profiles::build(&profile) {
            Ok(card) => card,
            Err(e) => {
                eprintln!("eid-virtual-card: {e}");
                return ExitCode::from(2);
            }
        }
    };
    serve(&args, &profile, card)
}

/// Serves `card` through vpcd, or in the field of an emulated PN532 with `--pn532`.
fn serve(args: &Args, profile: &str, card: VirtualCard) -> ExitCode {
    if args.pn532 {
        run_pn532(args, profile, card)
    } else {
        run(profile, VpcdHandle::detached(args.vpcd, card))
    }
}

/// The card in an emulated PN532's field until killed.
fn run_pn532(args: &Args, profile: &str, card: VirtualCard) -> ExitCode {
    let options = Pn532Options {
        kind: if args.type_b {
            TargetKind::TypeB
        } else {
            TargetKind::TypeA
        },
        ..Pn532Options::default()
    };
    match Pn532Emulator::spawn(Some(card), options) {
        Ok(handle) => {
            println!("{profile} in the field of an emulated PN532");
            println!("{}", handle.connstring());
            loop {
                std::thread::sleep(Duration::from_secs(3600));
            }
        }
        Err(e) => {
            eprintln!("eid-virtual-card: cannot open a pseudo-terminal for the PN532: {e}");
            ExitCode::from(1)
        }
    }
}

/// A Citizen Card profile with the options of the command line.
fn pteid_card(
    profile: &str,
    args: &Args,
) -> Result<eid_hardware_mocks::VirtualCard, pteid::PteidError> {
    let mut options = pteid::PteidOptions::default();
    if let Some(path) = &args.identity {
        options.identity = pteid::Identity::from_file(path)?;
    }
    let built = pteid::by_profile(profile, &options)?;
    if let Some(dir) = &args.export_pki {
        built.pki.export_pem(dir)?;
        println!("exported the test PKI to {}", dir.display());
    }
    Ok(built.card)
}

/// Keeps the card attached forever.
fn run(profile: &str, mut handle: VpcdHandle) -> ExitCode {
    let addr = handle.addr();
    // Whether the current outage was reported already.
    let mut reported = false;
    let mut was_attached = false;
    loop {
        if handle.is_attached() {
            was_attached = true;
        } else {
            if was_attached {
                eprintln!("eid-virtual-card: connection to vpcd at {addr} lost; reconnecting");
                was_attached = false;
                reported = true;
            }
            match handle.insert() {
                Ok(()) => {
                    println!("attached {profile} to vpcd at {addr}");
                    reported = false;
                    was_attached = true;
                }
                Err(e) if !reported => {
                    eprintln!(
                        "eid-virtual-card: vpcd at {addr} not reachable ({e}); retrying every \
                         {} ms",
                        RETRY.as_millis()
                    );
                    reported = true;
                }
                Err(_) => {}
            }
        }
        std::thread::sleep(RETRY);
    }
}

/// An eMRTD profile: optionally export the verifier's trust material (CSCA folder, master list,
/// CRL), then emulate the chip.
fn emrtd_main(profile: eid_hardware_mocks::emrtd::Profile, args: &Args) -> ExitCode {
    if args.identity.is_some() {
        eprintln!("eid-virtual-card: --identity is for pteid-* profiles");
        return ExitCode::from(2);
    }
    if let Some(dir) = &args.export_pki {
        let exported = eid_hardware_mocks::emrtd::trust()
            .map_err(|e| e.to_string())
            .and_then(|t| t.export(dir).map_err(|e| e.to_string()));
        match exported {
            Ok(paths) => {
                for path in paths {
                    println!("exported {}", path.display());
                }
            }
            Err(e) => {
                eprintln!("eid-virtual-card: exporting the eMRTD trust material failed: {e}");
                return ExitCode::from(1);
            }
        }
    }
    match eid_hardware_mocks::emrtd::card(profile) {
        Ok(card) => serve(args, profile.name(), card),
        Err(e) => {
            eprintln!("eid-virtual-card: {e}");
            ExitCode::from(2)
        }
    }
}

/// `pteid-cc2-contactless`: the CC2 behind PACE; `--identity` and `--export-pki` as for pteid-*.
fn cc2_contactless_main(args: &Args) -> ExitCode {
    let built = (|| -> Result<pteid::PteidCard, Box<dyn std::error::Error>> {
        let mut options = pteid::PteidOptions::default();
        if let Some(path) = &args.identity {
            options.identity = pteid::Identity::from_file(path)?;
        }
        let built = eid_hardware_mocks::emrtd::cc2::cc2_contactless(&options)?;
        if let Some(dir) = &args.export_pki {
            built.pki.export_pem(dir)?;
            println!("exported the test PKI to {}", dir.display());
        }
        Ok(built)
    })();
    match built {
        Ok(built) => serve(args, eid_hardware_mocks::emrtd::cc2::PROFILE, built.card),
        Err(e) => {
            eprintln!("eid-virtual-card: {e}");
            ExitCode::from(2)
        }
    }
}
