//! A full eMRTD read through the real pcscd + vpcd, per good virtual document (`emrtd-bac`,
//! `emrtd-pace`, `emrtd-pace-cam`): access (BAC or PACE), EF.COM, EF.SOD, every data group, chip
//! authentication (CA or PACE-CAM with EF.CardSecurity), active authentication and passive
//! authentication against the `UTO` CSCA, exactly as `eid_card::emrtd::read_document` does it.
//!
//! Printed per profile: APDUs the card processed for one read, how many of them were protected,
//! the median wall time over `EID_BENCH_ROUNDS` rounds (default 5), and the secure-messaging
//! cost per APDU: the median time of a protected 16-byte READ BINARY (wrapped by us, unwrapped and
//! re-wrapped by the chip, verified by us) against a plain 16-byte READ BINARY sent with the raw
//! `pcsc` crate on the same connection (as tests/benches/apdu_overhead.rs measures raw APDUs).
//! The LDS files cannot be read without secure messaging, so the plain APDU reads EF.CardAccess
//! in the MF (on the BAC passport, which has none, it is answered 6A82: still one round trip).
//! No timing is asserted: these machines are noisy.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::{Duration, Instant};

use eid_card::Transport;
use eid_card::emrtd::{self, AccessKey, Emrtd, ReadOptions};
use eid_hardware_mocks::emrtd::profile::{self, Profile};
use eid_hardware_mocks::emrtd::trust::trust;
use eid_protocols::pa::CscaStore;
use eid_tests::{PcscRig, Rig, bench};

/// APDUs per sample of the per-APDU comparison.
const PER_APDU_COUNT: usize = 50;

fn key(p: Profile) -> AccessKey {
    let d = p.document();
    match d.can {
        Some(can) => AccessKey::can(can).unwrap(),
        None => AccessKey::mrz(d.document_number, d.date_of_birth, d.date_of_expiry).unwrap(),
    }
}

struct Row {
    profile: &'static str,
    access: String,
    apdus: u64,
    protected: u64,
    read: Duration,
    protected_apdu: Duration,
    plain_apdu: Duration,
}

fn measure(p: Profile, rounds: usize, store: &CscaStore) -> Option<Row> {
    let mut rig = PcscRig::new(profile::card(p).expect("virtual eMRTD"))?;
    let key = key(p);

    // Full reads.
    let mut times = Vec::with_capacity(rounds);
    let mut apdus = 0;
    let mut protected = 0;
    let mut access = String::new();
    for _ in 0..rounds {
        let mut t = rig.connect().expect("connect");
        // A fresh card for every round (the previous read left it in a secure-messaging
        // session): the reset is not part of the measured read.
        t.reconnect(true).expect("reset");
        let before = rig.apdu_count();
        let start = Instant::now();
        let report = emrtd::read_document(
            &mut *t,
            &key,
            ReadOptions {
                csca: Some(store),
                challenge: Some([7; 8]),
                progress: None,
            },
        )
        .expect("read");
        let elapsed = start.elapsed();
        assert!(
            report.passive_authentication.is_valid(),
            "{}: {:?}",
            p.name(),
            report.passive_authentication
        );
        assert!(!report.chip_authentication.is_failed());
        assert!(!report.active_authentication.is_failed());
        apdus = rig.apdu_count() - before;
        protected = report.protected_apdus;
        access = match &report.access.method {
            emrtd::AccessMethod::Bac => "BAC 3DES".into(),
            emrtd::AccessMethod::Pace {
                chip_authenticated, ..
            } => {
                if *chip_authenticated {
                    "PACE-CAM AES-256".into()
                } else {
                    "PACE-GM AES-128 + CA".into()
                }
            }
        };
        times.push(elapsed);
    }

    // Per-APDU: protected against plain, on one PC/SC connection.
    let mut pcsc = rig.connect_pcsc().expect("connect");
    let plain_read = [0x00, 0xB0, 0x9C, 0x00, 0x10]; // EF.CardAccess by SFI, 16 bytes
    let protected_read = [0x00, 0xB0, 0x9E, 0x00, 0x10]; // EF.COM by SFI, 16 bytes
    let mut buf = vec![0u8; pcsc::MAX_BUFFER_SIZE_EXTENDED];
    let mut plain_times = Vec::with_capacity(rounds);
    let mut protected_times = Vec::with_capacity(rounds);
    for _ in 0..rounds.max(3) {
        pcsc.reconnect(true).expect("reset");
        {
            let card = pcsc.card();
            let start = Instant::now();
            for _ in 0..PER_APDU_COUNT {
                let r = card.transmit(&plain_read, &mut buf).expect("raw transmit");
                assert!(r.len() >= 2);
            }
            plain_times.push(start.elapsed() / PER_APDU_COUNT as u32);
        }
        pcsc.reconnect(true).expect("reset");
        let mut opened = Emrtd::open(&mut pcsc, &key).expect("open");
        let sm = opened.transport();
        let start = Instant::now();
        for _ in 0..PER_APDU_COUNT {
            let r = sm.transmit(&protected_read).expect("protected transmit");
            assert_eq!(r.len(), 18, "16 bytes and 9000");
        }
        protected_times.push(start.elapsed() / PER_APDU_COUNT as u32);
    }

    Some(Row {
        profile: p.name(),
        access,
        apdus,
        protected,
        read: bench::median(&times),
        protected_apdu: bench::median(&protected_times),
        plain_apdu: bench::median(&plain_times),
    })
}

fn main() {
    let rounds = bench::rounds(5);
    let mut store = CscaStore::new();
    store
        .add_certificates(&trust().unwrap().csca.cert_der().unwrap())
        .unwrap();

    let mut rows = Vec::new();
    for p in [Profile::Bac, Profile::Pace, Profile::PaceCam] {
        match measure(p, rounds, &store) {
            Some(row) => rows.push(row),
            None => {
                eprintln!("emrtd_read: pcscd with vpcd is not available; nothing measured");
                return;
            }
        }
    }

    println!("emrtd_read: full eMRTD read through pcscd + vpcd, {rounds} rounds (medians)");
    println!(
        "  {:<16} {:<22} {:>6} {:>10} {:>10} {:>13} {:>13} {:>13}",
        "profile", "access", "APDUs", "protected", "read", "SM APDU", "plain APDU", "SM overhead"
    );
    for r in &rows {
        let overhead = r.protected_apdu.saturating_sub(r.plain_apdu);
        println!(
            "  {:<16} {:<22} {:>6} {:>10} {:>10.2?} {:>13.1?} {:>13.1?} {:>13.1?}",
            r.profile,
            r.access,
            r.apdus,
            r.protected,
            r.read,
            r.protected_apdu,
            r.plain_apdu,
            overhead
        );
    }
    println!(
        "  (SM APDU: protected 16-byte READ BINARY, ours + chip; plain APDU: raw pcsc 16-byte READ \
         BINARY; SM overhead = difference per APDU)"
    );
}
