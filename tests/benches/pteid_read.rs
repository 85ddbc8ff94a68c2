//! Reading a whole Citizen Card (CC1) through the real pcscd + vpcd: `eid_card::pteid` against
//! OpenSC 0.23's `pkcs15-tool` on the same virtual card.
//!
//! - ours: open the card, read the identity (ID file with the photo), convert the photo to PNG,
//!   read and parse the five certificates. APDUs counted by the virtual card.
//! - OpenSC: `pkcs15-tool --list-certificates`, then `--read-certificate ID` for each
//!   certificate it lists (one process each, as a user would run them). It reads only the
//!   certificates (and its PKCS#15 structures), not the identity or photo.
//!
//! Printed: APDUs and median wall time over `EID_BENCH_ROUNDS` rounds (default 5), and the
//! ratios. No timing is asserted: these machines are noisy.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::process::Command;
use std::time::Instant;

use eid_card::pteid::{Generation, PteidCard};
use eid_hardware_mocks::pteid as mock;
use eid_tests::{PcscRig, Rig, bench};

fn main() {
    let rounds = bench::rounds(5);
    // The default CC1 (RSA-3072, as cards issued since 2015); OpenSC 0.23 reads it too.
    let built = mock::cc1::cc1_default().expect("card");
    let Some(mut rig) = PcscRig::new(built.card) else {
        eprintln!("pteid_read: pcscd with vpcd is not available; nothing measured");
        return;
    };
    let reader = rig.reader_name();

    // Ours.
    let mut ours_times = Vec::new();
    let mut ours_apdus = 0;
    for _ in 0..rounds {
        let start_count = rig.apdu_count();
        let start = Instant::now();
        let mut t = rig.connect().expect("connect");
        let mut card = PteidCard::open(&mut *t).expect("open");
        assert_eq!(card.generation(), Generation::Cc1);
        let identity = card.read_identity().expect("identity");
        let png = identity.photo.to_png().expect("png");
        let certs = card.read_certificates().expect("certificates");
        drop(t);
        ours_times.push(start.elapsed());
        ours_apdus = rig.apdu_count() - start_count;
        assert!(png.len() > 8 && certs.len() == 5);
    }

    // OpenSC.
    let mut opensc_times = Vec::new();
    let mut opensc_apdus = 0;
    let mut opensc_certs = 0;
    for _ in 0..rounds {
        let start_count = rig.apdu_count();
        let start = Instant::now();
        let list = Command::new("pkcs15-tool")
            .args(["--reader", &reader, "--list-certificates"])
            .output();
        let Ok(list) = list else {
            eprintln!("pteid_read: pkcs15-tool is not installed (apt install opensc); ours only");
            break;
        };
        let text = String::from_utf8_lossy(&list.stdout).into_owned();
        if !list.status.success() {
            eprintln!(
                "pteid_read: pkcs15-tool failed: {}",
                String::from_utf8_lossy(&list.stderr)
            );
            break;
        }
        let ids: Vec<String> = text
            .lines()
            .filter_map(|l| l.trim().strip_prefix("ID"))
            .filter_map(|rest| rest.split(':').nth(1))
            .map(|id| id.trim().to_owned())
            .collect();
        for id in &ids {
            let out = Command::new("pkcs15-tool")
                .args(["--reader", &reader, "--read-certificate", id])
                .output()
                .expect("pkcs15-tool");
            assert!(out.status.success(), "read-certificate {id}");
        }
        opensc_times.push(start.elapsed());
        opensc_apdus = rig.apdu_count() - start_count;
        opensc_certs = ids.len();
    }

    let ours = bench::median(&ours_times);
    println!("pteid_read: CC1 through pcscd + vpcd, {rounds} rounds (medians)");
    println!(
        "  ours   (identity + photo + PNG + 5 certificates): {ours_apdus:>5} APDUs  {:>9.2?}",
        ours
    );
    if opensc_times.is_empty() {
        println!("  OpenSC: not measured");
        return;
    }
    let theirs = bench::median(&opensc_times);
    println!(
        "  OpenSC (list + read {opensc_certs} certificates):        {opensc_apdus:>5} APDUs  {:>9.2?}",
        theirs
    );
    println!(
        "  ratio ours/OpenSC: APDUs {:.2}, time {:.2} (ours also reads the 15 500-byte ID file)",
        ours_apdus as f64 / opensc_apdus.max(1) as f64,
        ours.as_secs_f64() / theirs.as_secs_f64().max(f64::EPSILON)
    );
}
