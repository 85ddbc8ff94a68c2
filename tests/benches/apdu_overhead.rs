//! What our stack adds to a raw PC/SC round trip, on the same virtual card behind the real pcscd.
//!
//! Two workloads, each measured as "raw" (the `pcsc` crate's `transmit` in a loop, the APDU bytes
//! prepared in advance, only the status word checked) and "ours" (the same APDUs built with
//! `eid-protocols` and sent through `eid-card`'s session layer over the PC/SC transport):
//!
//! 1. `per-APDU`: 100 READ BINARY commands of 128 bytes (short APDUs), one at a time.
//! 2. `whole-file`: reading a 20 000-byte EF with short APDUs (79 READ BINARY), ours through
//!    `Session::read_binary`, raw through the same 79 commands.
//!
//! Both paths use the same PC/SC connection (raw calls `transmit` on the handle our transport
//! wraps), so the difference is our code alone. Raw and ours alternate within each round, and
//! which goes first alternates between rounds, so drift in the machine's load and order effects
//! hit both alike; the figures printed are medians over the rounds and the ratio of the medians. Target: ratio at most
//! 1.10. These machines are noisy: read the ratio, not the absolute times. `EID_BENCH_ROUNDS`
//! sets the number of rounds (default 31).

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::{Duration, Instant};

use eid_card::Transport;
use eid_card::session::{LengthPolicy, Session};
use eid_hardware_mocks::profiles::iso7816_test::{self as test_card, Variant};
use eid_protocols::apdu::LengthForm;
use eid_protocols::commands::{self, FileReturn, Select};
use eid_tests::{PcscRig, Rig, bench};

const PER_APDU_COUNT: u16 = 100;
const PER_APDU_LEN: usize = 128;

fn main() {
    // `cargo bench` passes `--bench`; nothing else to parse.
    let rounds = bench::rounds(31);
    let Some(rig) = PcscRig::new(test_card::card(Variant::Full).expect("card")) else {
        eprintln!("apdu_overhead: pcscd with vpcd is not available; nothing measured");
        return;
    };
    // One PC/SC connection for both paths: raw uses its handle directly, ours goes through the
    // transport and session on top of it. Two connections (or contexts) would measure pcscd's
    // scheduling between clients, not our code.
    let mut ours = rig.connect_pcsc().expect("connect");

    // Select the medium EF once; every READ BINARY below reads it.
    let select = commands::select(
        Select::PathFromMf(&[test_card::APP_FID, test_card::EF_MEDIUM]),
        FileReturn::None,
    );
    Session::new(&mut ours)
        .transmit_ok(&select)
        .expect("select");

    let per_apdu_raw: Vec<Vec<u8>> = (0..PER_APDU_COUNT)
        .map(|i| {
            let cmd = commands::read_binary(i * PER_APDU_LEN as u16, PER_APDU_LEN).unwrap();
            cmd.encode(LengthForm::Short).unwrap().to_vec()
        })
        .collect();
    let file_raw: Vec<Vec<u8>> = (0..20_000usize.div_ceil(256))
        .map(|i| {
            let offset = i * 256;
            let ne = (20_000 - offset).min(256);
            let cmd = commands::read_binary(offset as u16, ne).unwrap();
            cmd.encode(LengthForm::Short).unwrap().to_vec()
        })
        .collect();

    let mut buf = vec![0u8; pcsc::MAX_BUFFER_SIZE_EXTENDED];
    let raw_loop = |card: &pcsc::Card, apdus: &[Vec<u8>], buf: &mut [u8]| {
        for apdu in apdus {
            let r = card.transmit(apdu, buf).expect("raw transmit");
            assert_eq!(&r[r.len() - 2..], &[0x90, 0x00]);
        }
    };

    // Warm up both paths.
    raw_loop(ours.card(), &per_apdu_raw, &mut buf);
    per_apdu_ours(&mut ours);

    let mut t_raw = Vec::with_capacity(rounds);
    let mut t_ours = Vec::with_capacity(rounds);
    let mut f_raw = Vec::with_capacity(rounds);
    let mut f_ours = Vec::with_capacity(rounds);
    let apdus_before = rig.apdu_count();
    for round in 0..rounds {
        // Alternate which path goes first, so order effects cancel out.
        let raw_first = round % 2 == 0;
        for raw_turn in [raw_first, !raw_first] {
            if raw_turn {
                let start = Instant::now();
                raw_loop(ours.card(), &per_apdu_raw, &mut buf);
                t_raw.push(start.elapsed());
                let start = Instant::now();
                raw_loop(ours.card(), &file_raw, &mut buf);
                f_raw.push(start.elapsed());
            } else {
                let start = Instant::now();
                per_apdu_ours(&mut ours);
                t_ours.push(start.elapsed());
                let start = Instant::now();
                let data = Session::with_policy(&mut ours, LengthPolicy::ShortOnly)
                    .read_binary(Some(20_000))
                    .expect("read");
                f_ours.push(start.elapsed());
                assert_eq!(data.len(), 20_000);
            }
        }
    }
    let apdus = rig.apdu_count() - apdus_before;
    let expected = rounds as u64 * 2 * (u64::from(PER_APDU_COUNT) + file_raw.len() as u64);
    assert_eq!(
        apdus, expected,
        "both paths must send exactly the same APDUs"
    );

    println!("APDU overhead, same virtual card behind pcscd + vpcd ({rounds} rounds, medians)");
    report(
        "per-APDU   (100 x READ BINARY 128 B)",
        &t_raw,
        &t_ours,
        PER_APDU_COUNT as usize,
    );
    report(
        "whole-file (20 000 B, 79 short READ BINARY)",
        &f_raw,
        &f_ours,
        file_raw.len(),
    );
}

fn per_apdu_ours(transport: &mut dyn Transport) {
    let mut session = Session::with_policy(transport, LengthPolicy::ShortOnly);
    for i in 0..PER_APDU_COUNT {
        let cmd = commands::read_binary(i * PER_APDU_LEN as u16, PER_APDU_LEN).unwrap();
        let r = session.transmit(&cmd).expect("transmit");
        assert!(r.is_success());
    }
}

fn report(name: &str, raw: &[Duration], ours: &[Duration], apdus: usize) {
    let (r, o) = (bench::median(raw), bench::median(ours));
    let ratio = o.as_secs_f64() / r.as_secs_f64();
    let verdict = if ratio <= 1.10 {
        "within target (<= 1.10)"
    } else {
        "ABOVE TARGET (> 1.10)"
    };
    println!(
        "  {name}: raw {:>8.1} us/APDU, ours {:>8.1} us/APDU, ratio {ratio:.3}  {verdict}",
        r.as_secs_f64() * 1e6 / apdus as f64,
        o.as_secs_f64() * 1e6 / apdus as f64,
    );
}
