//! PACE and secure messaging cost, terminal and chip side in one process (no I/O): the compute
//! time of a whole PACE-ECDH-GM handshake per curve, and the wrap + unwrap overhead of secure
//! messaging per APDU per cipher. Prints the median of `EID_BENCH_ROUNDS` rounds (default 5).
//! Nothing is asserted about time.
//!
//! `cargo bench -p eid-protocols --bench pace`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::time::{Duration, Instant};

use eid_protocols::kdf::SessionKeys;
use eid_protocols::pace::{
    PaceChip, PaceChipConfig, PaceConfig, PacePassword, PaceProtocol, PaceTerminal,
    SUPPORTED_PARAMETER_IDS,
};
use eid_protocols::sm::{ChipChannel, Cipher, OsRandom, SecureChannel};
use eid_protocols::{Command, Response, Status};

fn rounds() -> usize {
    std::env::var("EID_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(5)
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn handshake(parameter_id: u8, cipher: Cipher) {
    let protocol = PaceProtocol::EcdhGm(cipher);
    let pw = PacePassword::can("123456");
    let mut t = PaceTerminal::new(
        PaceConfig {
            protocol,
            parameter_id,
            send_parameter_id: true,
        },
        &pw,
    )
    .unwrap();
    let mut c = PaceChip::new(
        PaceChipConfig {
            protocol,
            parameter_id,
            cam_key: None,
        },
        &pw,
    )
    .unwrap();
    let rng = &mut OsRandom;
    let ok = |d| Response::new(d, Status::Success);
    c.mse_set_at(t.mse_set_at().data()).unwrap();
    let r = c
        .general_authenticate(t.general_authenticate_nonce().data(), rng)
        .unwrap();
    let cmd = t.process_nonce(&ok(r), rng).unwrap();
    let r = c.general_authenticate(cmd.data(), rng).unwrap();
    let cmd = t.process_mapping(&ok(r), rng).unwrap();
    let r = c.general_authenticate(cmd.data(), rng).unwrap();
    let cmd = t.process_key_agreement(&ok(r)).unwrap();
    let r = c.general_authenticate(cmd.data(), rng).unwrap();
    let outcome = t.finish(&ok(r)).unwrap();
    std::hint::black_box((outcome, c.finish().unwrap()));
}

fn main() {
    let n = rounds();
    println!("PACE-ECDH-GM-AES-128 handshake, terminal + chip compute, median of {n}:");
    for &id in &SUPPORTED_PARAMETER_IDS {
        let samples = (0..n)
            .map(|_| {
                let start = Instant::now();
                handshake(id, Cipher::Aes128);
                start.elapsed()
            })
            .collect();
        let name = match id {
            12 => "NIST P-256",
            13 => "brainpoolP256r1",
            14 => "brainpoolP320r1",
            15 => "NIST P-384",
            16 => "brainpoolP384r1",
            17 => "brainpoolP512r1",
            18 => "NIST P-521",
            _ => "?",
        };
        println!(
            "  parameter id {id:>2} ({name:<15}): {:>8.2} ms",
            median(samples).as_secs_f64() * 1e3
        );
    }

    println!("Secure messaging wrap + chip unwrap + chip wrap + unwrap per APDU, median of {n}:");
    let cmd = Command::new(0x00, 0xB0, 0x00, 0x00).with_ne(223);
    let answer = Response::new(vec![0x5A; 223], Status::Success);
    for cipher in [Cipher::Tdes, Cipher::Aes128, Cipher::Aes192, Cipher::Aes256] {
        let keys = || SessionKeys::derive(cipher, b"bench shared secret").unwrap();
        let ssc = vec![0u8; cipher.block_len()];
        let mut t = SecureChannel::new(keys(), &ssc).unwrap();
        let mut c = ChipChannel::new(keys(), &ssc).unwrap();
        const PER_ROUND: u32 = 100;
        let samples = (0..n)
            .map(|_| {
                let start = Instant::now();
                for _ in 0..PER_ROUND {
                    let w = t.wrap(&cmd).unwrap();
                    c.unwrap_command(&w).unwrap();
                    let r = c.wrap_response(&answer).unwrap();
                    std::hint::black_box(t.unwrap(&r).unwrap());
                }
                start.elapsed() / PER_ROUND
            })
            .collect();
        println!(
            "  {cipher:?}: {:>8.1} µs per READ BINARY of 223 bytes",
            median(samples).as_secs_f64() * 1e6
        );
    }
}
