//! Terminal-side secure messaging unwrap (`SecureChannel::unwrap`, ICAO 9303-11 §9.8) on arbitrary
//! response bytes, with fixed keys.
//!
//! The first input byte picks the cipher (low two bits) and the mode (bit 2):
//! - raw: the rest is a response APDU from a hostile chip; unwrap must return a value or an error,
//!   never panic, and after an error the channel must stay closed;
//! - round trip: the rest is plain answer data; the chip side protects it and the terminal must
//!   get exactly it back.
//!
//! The 3DES raw mode uses the ICAO 9303-11 Appendix D session keys with the SSC just before the
//! first READ BINARY answer, so the seed (that answer) passes the MAC and reaches decryption.
#![no_main]

use eid_protocols::kdf::SessionKeys;
use eid_protocols::sm::{ChipChannel, Cipher, SecureChannel, SmError};
use eid_protocols::{Response, Status};
use libfuzzer_sys::fuzz_target;

const KS_ENC: [u8; 16] = [
    0x97, 0x9E, 0xC1, 0x3B, 0x1C, 0xBF, 0xE9, 0xDC, 0xD0, 0x1A, 0xB0, 0xFE, 0xD3, 0x07, 0xEA, 0xE5,
];
const KS_MAC: [u8; 16] = [
    0xF1, 0xCB, 0x1F, 0x1F, 0xB5, 0xAD, 0xF2, 0x08, 0x80, 0x6B, 0x89, 0xDC, 0x57, 0x9D, 0xC1, 0xF8,
];
const SSC_3DES: [u8; 8] = [0x88, 0x70, 0x22, 0x12, 0x0C, 0x06, 0xC2, 0x29];

fn keys(cipher: Cipher) -> SessionKeys {
    match cipher {
        Cipher::Tdes => SessionKeys {
            cipher,
            k_enc: KS_ENC.to_vec().into(),
            k_mac: KS_MAC.to_vec().into(),
        },
        _ => SessionKeys::derive(cipher, b"eid fuzz shared secret").expect("kdf"),
    }
}

fn ssc(cipher: Cipher) -> Vec<u8> {
    match cipher {
        Cipher::Tdes => SSC_3DES.to_vec(),
        _ => vec![0; 16],
    }
}

fuzz_target!(|input: &[u8]| {
    let Some((&selector, rest)) = input.split_first() else {
        return;
    };
    let cipher = match selector & 3 {
        0 => Cipher::Tdes,
        1 => Cipher::Aes128,
        2 => Cipher::Aes192,
        _ => Cipher::Aes256,
    };
    let mut terminal = SecureChannel::new(keys(cipher), &ssc(cipher)).expect("channel");
    if selector & 4 == 0 {
        let Ok(response) = Response::parse(rest) else {
            return;
        };
        match terminal.unwrap(&response) {
            Ok(plain) => {
                assert!(!terminal.is_closed());
                let _ = format!("{plain:?}");
            }
            Err(_) => {
                assert!(terminal.is_closed());
                assert!(matches!(terminal.unwrap(&response), Err(SmError::Closed)));
            }
        }
    } else {
        let data = rest.get(..rest.len().min(4096)).unwrap_or_default();
        let mut chip = ChipChannel::new(keys(cipher), &ssc(cipher)).expect("channel");
        let plain = Response::new(data.to_vec(), Status::Success);
        let protected = chip.wrap_response(&plain).expect("wrap");
        let back = Response::parse(&protected.to_bytes()).expect("parse");
        assert_eq!(terminal.unwrap(&back).expect("unwrap"), plain);
    }
});
