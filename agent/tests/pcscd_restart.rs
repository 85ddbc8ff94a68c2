//! `eid-agent monitor` through a pcscd restart: it tells the user the service went away, waits
//! for it, says when it is back, and goes on reporting cards. Runs only with
//! `EID_TEST_RESTART_PCSCD=1` (it restarts the machine's pcscd; see `eid_tests::restart`).

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use eid_hardware_mocks::profiles::iso7816_test::{self as test_card, Variant};
use eid_hardware_mocks::vpcd::VpcdCard;
use eid_tests::{Slot, pcscd_available, restart};

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn expect_line(
    lines: &mpsc::Receiver<serde_json::Value>,
    what: &str,
    want: impl Fn(&serde_json::Value) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = lines
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("eid-agent monitor never printed {what}"));
        if want(&line) {
            return;
        }
    }
}

#[test]
fn monitor_survives_a_pcscd_restart() {
    if !restart::allowed() || !pcscd_available() {
        return;
    }
    let (slot, _context) = Slot::acquire_empty();
    let reader = slot.reader_name();
    let mut child = Killed(
        Command::new(env!("CARGO_BIN_EXE_eid-agent"))
            .args(["monitor", "--json"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let stdout = child.0.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str(&line)
                && tx.send(v).is_err()
            {
                return;
            }
        }
    });
    expect_line(&rx, "the reader", |v| {
        v["event"] == "reader-added" && v["reader"] == reader.as_str()
    });

    let _restart = restart::RestartOnDrop;
    restart::stop_pcscd();
    expect_line(&rx, "service-lost", |v| v["kind"] == "service-lost");
    restart::start_pcscd();
    expect_line(&rx, "service-back", |v| v["kind"] == "service-back");

    // Still watching: a card inserted now is reported.
    let mut card = VpcdCard::attach(slot.addr(), test_card::card(Variant::Full).unwrap()).unwrap();
    expect_line(&rx, "card-inserted", |v| {
        v["event"] == "card-inserted" && v["reader"] == reader.as_str()
    });
    card.remove();
    expect_line(&rx, "card-removed", |v| {
        v["event"] == "card-removed" && v["reader"] == reader.as_str()
    });
    // The process is still alive: it did not exit on the outage.
    assert!(
        child.0.try_wait().unwrap().is_none(),
        "eid-agent monitor exited"
    );
}
