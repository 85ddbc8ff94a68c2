//! `eid-virtual-card`: puts a virtual card into a vpcd reader of pcscd and keeps it there.
//!
//! ```text
//! eid-virtual-card iso7816-test                       # reader "Virtual PCD 00 00"
//! eid-virtual-card iso7816-test-t0 --vpcd 127.0.0.1:35964
//! eid-virtual-card --list
//! ```
//!
//! Runs until killed. If vpcd is not listening yet, or the connection drops (pcscd restarted),
//! it connects again every 200 ms. `RUST_LOG=eid_hardware_mocks=trace` logs every APDU's header
//! and status word to stderr.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use eid_hardware_mocks::profiles;
use eid_hardware_mocks::vpcd::{self, VpcdHandle};

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
        return ExitCode::SUCCESS;
    }
    let Some(profile) = args.profile else {
        eprintln!("eid-virtual-card: no profile given (see --list)");
        return ExitCode::from(2);
    };
    let card = match profiles::build(&profile) {
        Ok(card) => card,
        Err(e) => {
            eprintln!("eid-virtual-card: {e}");
            return ExitCode::from(2);
        }
    };
    run(&profile, VpcdHandle::detached(args.vpcd, card))
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
