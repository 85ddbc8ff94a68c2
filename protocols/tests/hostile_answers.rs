//! The terminal side of the secure channel fed hostile answers: random bytes where the chip's
//! answer should be, at every step of secure messaging, BAC, PACE, Chip Authentication and
//! Active Authentication. Each must be a typed error (never a panic, never an accepted
//! channel), and a secure-messaging channel that saw one must stay closed.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use eid_protocols::aa::{self, AaHash};
use eid_protocols::bac::BacTerminal;
use eid_protocols::ca::{CaProtocol, CaTerminal};
use eid_protocols::kdf::SessionKeys;
use eid_protocols::pace::{PaceConfig, PacePassword, PaceProtocol, PaceTerminal};
use eid_protocols::sm::{Cipher, OsRandom, SecureChannel, SmError};
use eid_protocols::{Command, Response, Status, commands};
use openssl::ec::{EcGroup, EcKey};
use openssl::nid::Nid;
use openssl::pkey::PKey;
use proptest::prelude::*;

fn answer(bytes: &[u8]) -> Option<Response> {
    Response::parse(bytes).ok()
}

fn pace_terminal() -> PaceTerminal {
    let config = PaceConfig {
        protocol: PaceProtocol::EcdhGm(Cipher::Aes128),
        parameter_id: 13,
        send_parameter_id: true,
    };
    PaceTerminal::new(config, &PacePassword::can("123456")).unwrap()
}

/// `7C { tag <a fresh brainpoolP256r1 point> }` with 9000: a well-formed PACE answer.
fn point_answer(tag: u8) -> Response {
    let group = EcGroup::from_curve_name(Nid::BRAINPOOL_P256R1).unwrap();
    let key = EcKey::generate(&group).unwrap();
    let mut ctx = openssl::bn::BigNumContext::new().unwrap();
    let point = key
        .public_key()
        .to_bytes(
            &group,
            openssl::ec::PointConversionForm::UNCOMPRESSED,
            &mut ctx,
        )
        .unwrap();
    let inner = [&[tag, point.len() as u8][..], &point[..]].concat();
    let data = [&[0x7C, inner.len() as u8][..], &inner[..]].concat();
    Response::new(data, Status::Success)
}

fn chip_key_spki() -> Vec<u8> {
    let group = EcGroup::from_curve_name(Nid::BRAINPOOL_P256R1).unwrap();
    let key = EcKey::generate(&group).unwrap();
    PKey::from_ec_key(key).unwrap().public_key_to_der().unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Random answers under secure messaging are refused and close the channel for good.
    #[test]
    fn secure_messaging_refuses_random_answers(
        cipher in prop::sample::select(vec![Cipher::Tdes, Cipher::Aes128, Cipher::Aes256]),
        body in proptest::collection::vec(any::<u8>(), 0..300),
        sw in any::<u16>(),
    ) {
        let keys = SessionKeys::derive(cipher, b"hostile answers").unwrap();
        let mut sm = SecureChannel::new(keys, &vec![0; cipher.block_len()]).unwrap();
        let command = commands::read_binary(0, 16).unwrap();
        sm.wrap(&command).unwrap();
        let mut bytes = body;
        bytes.extend(sw.to_be_bytes());
        let response = Response::parse(&bytes).unwrap();
        prop_assert!(sm.unwrap(&response).is_err());
        prop_assert!(sm.is_closed());
        prop_assert!(matches!(sm.wrap(&command), Err(SmError::Closed)));
    }

    /// BAC: a random EXTERNAL AUTHENTICATE answer never opens a channel.
    #[test]
    fn bac_refuses_random_answers(
        challenge in proptest::collection::vec(any::<u8>(), 0..12),
        reply in proptest::collection::vec(any::<u8>(), 0..48),
    ) {
        let mut terminal = BacTerminal::new(b"L898902C<369080619406236").unwrap();
        let mut challenge = challenge;
        challenge.extend([0x90, 0x00]);
        let Some(challenge) = answer(&challenge) else { return Ok(()) };
        let Ok(_) = terminal.external_authenticate(&challenge, &mut OsRandom) else {
            return Ok(());
        };
        let mut reply = reply;
        reply.extend([0x90, 0x00]);
        prop_assert!(terminal.finish(&answer(&reply).unwrap()).is_err());
    }

    /// PACE: random answers at each GENERAL AUTHENTICATE step are errors, and the run ends.
    #[test]
    fn pace_refuses_random_answers(
        step in 0usize..3,
        body in proptest::collection::vec(any::<u8>(), 0..160),
    ) {
        let mut terminal = pace_terminal();
        let _ = terminal.general_authenticate_nonce();
        let mut bytes = body;
        bytes.extend([0x90, 0x00]);
        let hostile = answer(&bytes).unwrap();
        // A well-formed nonce (7C 12 80 10 ...) gets the terminal to the later steps.
        let nonce = Response::new(
            [&[0x7C, 0x12, 0x80, 0x10][..], &[0x5A; 16][..]].concat(),
            Status::Success,
        );
        let result = match step {
            0 => terminal.process_nonce(&hostile, &mut OsRandom).map(|_| ()),
            1 => {
                terminal.process_nonce(&nonce, &mut OsRandom).unwrap();
                terminal.process_mapping(&hostile, &mut OsRandom).map(|_| ())
            }
            _ => {
                terminal.process_nonce(&nonce, &mut OsRandom).unwrap();
                terminal.process_mapping(&point_answer(0x82), &mut OsRandom).unwrap();
                terminal.process_key_agreement(&hostile).map(|_| ())
            }
        };
        // A random body is practically never a valid encrypted nonce of the right shape, and a
        // point on the curve with negligible probability; when the nonce step does accept it (a
        // well-shaped 7C 80 object decrypts to some nonce), the next step must still hold.
        if step == 0 && result.is_ok() {
            prop_assert!(terminal.process_mapping(&hostile, &mut OsRandom).is_err());
        } else {
            prop_assert!(result.is_err());
        }
    }

    /// Chip Authentication: random answers to its commands never give new keys.
    #[test]
    fn chip_authentication_refuses_random_answers(
        body in proptest::collection::vec(any::<u8>(), 0..40),
        sw in any::<u16>(),
    ) {
        let spki = chip_key_spki();
        let terminal =
            CaTerminal::new(CaProtocol(Cipher::Aes128), None, &spki, &mut OsRandom).unwrap();
        let count = terminal.commands().unwrap().len();
        let mut bytes = body;
        bytes.extend(sw.to_be_bytes());
        let hostile = answer(&bytes).unwrap();
        let success = Response::status_only(Status::Success);
        // Every answer but the last one is 9000; the last is hostile.
        let mut answers = vec![success; count.saturating_sub(1)];
        answers.push(hostile.clone());
        let accepted = terminal.finish(&answers).is_ok();
        // Only an exact 9000 (with or without data that the chip may echo) confirms CA.
        prop_assert!(!accepted || hostile.status() == Status::Success);
    }

    /// Active Authentication: a random signature never verifies, RSA or ECDSA.
    #[test]
    fn active_authentication_refuses_random_signatures(
        signature in proptest::collection::vec(any::<u8>(), 0..300),
    ) {
        let rsa = openssl::rsa::Rsa::generate(1024).unwrap();
        let rsa_spki = PKey::from_rsa(rsa).unwrap().public_key_to_der().unwrap();
        let ec_spki = chip_key_spki();
        let challenge = [1u8; 8];
        prop_assert!(aa::verify(&rsa_spki, &challenge, &signature, None).is_err());
        prop_assert!(aa::verify(&ec_spki, &challenge, &signature, Some(AaHash::Sha256)).is_err());
        prop_assert!(aa::verify(&signature, &challenge, &signature, None).is_err());
    }
}

/// A command the channel cannot protect is an error, not a panic.
#[test]
fn an_unprotectable_command_is_an_error() {
    let keys = SessionKeys::derive(Cipher::Aes128, b"x").unwrap();
    let mut sm = SecureChannel::new(keys, &[0; 16]).unwrap();
    // 65 000 bytes fit an extended command in plain, but not once padded, encrypted and wrapped
    // in DO87, DO97 and DO8E.
    let huge = Command::new(0x00, 0xD6, 0x00, 0x00).with_data(vec![0; 65_530]);
    assert!(matches!(sm.wrap(&huge), Err(SmError::Apdu(_))));
    assert!(sm.is_closed());
}
