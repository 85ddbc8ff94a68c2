//! A full eMRTD read (access, EF.COM, EF.SOD, every data group, chip, active and passive
//! authentication, as `eid_card::emrtd::read_document` does it) over two paths to the same
//! virtual document:
//!
//! - NFC: the real libnfc 1.8 `pn532_uart` driver and an emulated PN532 on a pseudo-terminal
//!   (short APDUs only: the PN53x frame carries 262 bytes);
//! - PC/SC: the real pcscd and vpcd (extended APDUs when the chip offers them).
//!
//! Printed per profile: the APDUs the card processed for one read on each path, the median wall
//! time over `EID_BENCH_ROUNDS` rounds (default 5), and the NFC/PC/SC ratios. Each round starts
//! from a reset card (RF field off and on; SCardReconnect with reset), not part of the time.
//! No timing is asserted: these machines are noisy. Without pcscd only the NFC column is
//! measured.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::{Duration, Instant};

use eid_card::Transport;
use eid_card::emrtd::{self, AccessKey, ReadOptions};
use eid_card::nfc::NfcContext;
use eid_hardware_mocks::emrtd::profile::{self, Profile};
use eid_hardware_mocks::emrtd::trust::trust;
use eid_hardware_mocks::pn532::{Pn532Emulator, Pn532Options};
use eid_protocols::pa::CscaStore;
use eid_tests::{PcscRig, Rig, bench};

fn key(p: Profile) -> AccessKey {
    let d = p.document();
    match d.can {
        Some(can) => AccessKey::can(can).unwrap(),
        None => AccessKey::mrz(d.document_number, d.date_of_birth, d.date_of_expiry).unwrap(),
    }
}

/// One path's figures: APDUs per read, median read time.
struct Measured {
    apdus: u64,
    read: Duration,
}

/// `rounds` full reads on `t`, with `count` the card's APDU counter.
fn reads(
    t: &mut dyn Transport,
    count: &dyn Fn() -> u64,
    p: Profile,
    rounds: usize,
    store: &CscaStore,
) -> Measured {
    let key = key(p);
    let mut times = Vec::with_capacity(rounds);
    let mut apdus = 0;
    for _ in 0..rounds {
        t.reconnect(true).expect("reset");
        let before = count();
        let start = Instant::now();
        let report = emrtd::read_document(
            t,
            &key,
            ReadOptions {
                csca: Some(store),
                challenge: Some([7; 8]),
                progress: None,
            },
        )
        .expect("read");
        times.push(start.elapsed());
        assert!(report.passive_authentication.is_valid(), "{}", p.name());
        assert!(!report.chip_authentication.is_failed());
        assert!(!report.active_authentication.is_failed());
        apdus = count() - before;
    }
    Measured {
        apdus,
        read: bench::median(&times),
    }
}

fn over_nfc(p: Profile, rounds: usize, store: &CscaStore) -> Measured {
    let card = profile::card(p).expect("virtual eMRTD");
    let emulator = Pn532Emulator::spawn(Some(card), Pn532Options::default()).expect("PN532");
    let mut context = NfcContext::new().expect("libnfc");
    let reader = context
        .open(&emulator.connstring())
        .expect("libnfc opens it");
    let mut t = reader.connect().expect("card in the field");
    let measured = reads(&mut t, &|| emulator.apdu_count(), p, rounds, store);
    drop(t);
    drop(reader);
    measured
}

fn over_pcsc(p: Profile, rounds: usize, store: &CscaStore) -> Option<Measured> {
    let mut rig = PcscRig::new(profile::card(p).expect("virtual eMRTD"))?;
    let mut t = rig.connect().expect("connect");
    let counter = || rig.apdu_count();
    Some(reads(&mut *t, &counter, p, rounds, store))
}

fn main() {
    let rounds = bench::rounds(5);
    let mut store = CscaStore::new();
    store
        .add_certificates(&trust().unwrap().csca.cert_der().unwrap())
        .unwrap();

    println!(
        "nfc_read: full eMRTD read, emulated PN532 through libnfc vs pcscd + vpcd, {rounds} rounds \
         (medians)"
    );
    println!(
        "  {:<16} {:>10} {:>11} {:>7} {:>12} {:>12} {:>7}",
        "profile", "NFC APDUs", "PC/SC APDUs", "ratio", "NFC read", "PC/SC read", "ratio"
    );
    for p in [Profile::Pace, Profile::PaceCam] {
        let nfc = over_nfc(p, rounds, &store);
        match over_pcsc(p, rounds, &store) {
            Some(pcsc) => println!(
                "  {:<16} {:>10} {:>11} {:>7.2} {:>12.2?} {:>12.2?} {:>7.2}",
                p.name(),
                nfc.apdus,
                pcsc.apdus,
                nfc.apdus as f64 / pcsc.apdus.max(1) as f64,
                nfc.read,
                pcsc.read,
                nfc.read.as_secs_f64() / pcsc.read.as_secs_f64().max(f64::EPSILON)
            ),
            None => println!(
                "  {:<16} {:>10} {:>11} {:>7} {:>12.2?} {:>12} {:>7}",
                p.name(),
                nfc.apdus,
                "-",
                "-",
                nfc.read,
                "(no pcscd)",
                "-"
            ),
        }
    }
    println!(
        "  (NFC: short APDUs, READ BINARY chunks <= 223 bytes under AES SM; PC/SC: extended \
         length when the chip announces it)"
    );
}
