//! Terminal side against chip side for every cipher suite: secure messaging (3DES, AES-128/192/
//! 256; short, extended and odd-INS commands; tampering and desynchronisation), PACE on every
//! supported curve and cipher with MRZ and CAN (wrong passwords, PACE-CAM), chip
//! authentication (3DES and AES variants) and active authentication (RSA and ECDSA).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use eid_protocols::aa::{self, AaError, AaHash, AaKey};
use eid_protocols::ca::{CaChip, CaProtocol, CaTerminal};
use eid_protocols::kdf::SessionKeys;
use eid_protocols::pace::{
    PaceChip, PaceChipConfig, PaceConfig, PaceError, PacePassword, PaceProtocol, PaceTerminal,
    SUPPORTED_PARAMETER_IDS, curve,
};
use eid_protocols::sm::{
    ChipChannel, Cipher, OsRandom, RandomSource, SecureChannel, SmError, mac, pad,
};
use eid_protocols::{Command, LengthForm, Response, Status};
use openssl::ec::{EcGroup, EcKey};
use openssl::nid::Nid;
use openssl::rsa::Rsa;

const CIPHERS: [Cipher; 4] = [Cipher::Tdes, Cipher::Aes128, Cipher::Aes192, Cipher::Aes256];

fn random(n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n];
    OsRandom.fill(&mut v).unwrap();
    v
}

fn keys(cipher: Cipher, seed: &[u8]) -> SessionKeys {
    SessionKeys::derive(cipher, seed).unwrap()
}

fn pair(cipher: Cipher) -> (SecureChannel, ChipChannel, Vec<u8>) {
    let seed = random(32);
    let ssc = random(cipher.block_len());
    (
        SecureChannel::new(keys(cipher, &seed), &ssc).unwrap(),
        ChipChannel::new(keys(cipher, &seed), &ssc).unwrap(),
        seed,
    )
}

/// Sends `cmd` through both ends; the chip answers `answer`. Returns what the terminal reads.
fn exchange(
    t: &mut SecureChannel,
    c: &mut ChipChannel,
    cmd: &Command,
    answer: &Response,
) -> Response {
    let wrapped = t.wrap(cmd).unwrap();
    let form = if wrapped.needs_extended() {
        LengthForm::Extended
    } else {
        LengthForm::Short
    };
    // Through the wire encoding and back, as a card would see it.
    let (on_card, _) = Command::parse(&wrapped.encode(form).unwrap()).unwrap();
    let plain = c.unwrap_command(&on_card).unwrap();
    assert_eq!(plain.header(), cmd.header());
    assert_eq!(plain.data(), cmd.data());
    assert_eq!(plain.ne(), cmd.ne());
    let protected = c.wrap_response(answer).unwrap();
    let back = Response::parse(&protected.to_bytes()).unwrap();
    t.unwrap(&back).unwrap()
}

#[test]
fn every_suite_round_trips_every_command_case() {
    for cipher in CIPHERS {
        let (mut t, mut c, _) = pair(cipher);
        let cases = [
            Command::new(0x00, 0x20, 0x00, 0x81),
            Command::new(0x00, 0xB0, 0x00, 0x00).with_ne(4),
            Command::new(0x00, 0xA4, 0x02, 0x0C).with_data(vec![0x01, 0x1E]),
            Command::new(0x00, 0xA4, 0x04, 0x00)
                .with_data(vec![0xA0; 7])
                .with_ne(256),
            // Extended: big data and Ne beyond 256.
            Command::new(0x00, 0xD6, 0x00, 0x00).with_data(random(1000)),
            Command::new(0x00, 0xB0, 0x00, 0x00).with_ne(4000),
            Command::new(0x00, 0xB0, 0x00, 0x00).with_ne(65_536),
            // Odd INS: DO85.
            Command::new(0x00, 0xB1, 0x00, 0x00)
                .with_data(vec![0x54, 0x02, 0x80, 0x00])
                .with_ne(300),
            // Block-aligned data (a whole padding block is added).
            Command::new(0x00, 0xD6, 0x00, 0x00).with_data(random(32)),
        ];
        for cmd in &cases {
            for answer in [
                Response::status_only(Status::Success),
                Response::new(random(17), Status::Success),
                Response::new(random(3000), Status::EndOfFile),
                Response::status_only(Status::FileNotFound),
            ] {
                let got = exchange(&mut t, &mut c, cmd, &answer);
                assert_eq!(got, answer, "{cipher:?} {cmd:?}");
            }
        }
        assert_eq!(t.ssc(), c.ssc());
    }
}

#[test]
fn do97_and_le_follow_the_length_form() {
    let (mut t, _, _) = pair(Cipher::Aes128);
    let short = t.wrap(&Command::new(0, 0xB0, 0, 0).with_ne(256)).unwrap();
    assert!(!short.needs_extended());
    let bytes = short.encode(LengthForm::Short).unwrap();
    assert_eq!(&bytes[5..8], &[0x97, 0x01, 0x00]);
    assert_eq!(*bytes.last().unwrap(), 0x00);
    let ext = t
        .wrap(&Command::new(0, 0xB0, 0, 0).with_ne(65_536))
        .unwrap();
    assert!(ext.needs_extended());
    let bytes = ext.encode(LengthForm::Extended).unwrap();
    assert_eq!(&bytes[7..11], &[0x97, 0x02, 0x00, 0x00]);
    assert_eq!(&bytes[bytes.len() - 2..], &[0x00, 0x00]);
    // Odd INS carries DO85, even INS DO87 with the 01 indicator.
    let odd = t
        .wrap(
            &Command::new(0, 0xB1, 0, 0)
                .with_data(vec![0x54, 0x01, 0x00])
                .with_ne(10),
        )
        .unwrap();
    assert_eq!(odd.data()[0], 0x85);
    let even = t
        .wrap(&Command::new(0, 0xD6, 0, 0).with_data(vec![1]))
        .unwrap();
    assert_eq!(&even.data()[..3], &[0x87, 0x11, 0x01]);
    assert_eq!(even.cla(), 0x0C);
}

#[test]
fn tampered_response_mac_or_data_is_detected_and_closes_the_channel() {
    for cipher in CIPHERS {
        for target in ["mac", "data", "status"] {
            let (mut t, mut c, _) = pair(cipher);
            let wrapped = t.wrap(&Command::new(0, 0xB0, 0, 0).with_ne(8)).unwrap();
            c.unwrap_command(&wrapped).unwrap();
            let answer = c
                .wrap_response(&Response::new(random(8), Status::Success))
                .unwrap();
            let mut data = answer.data().to_vec();
            let n = data.len();
            match target {
                "mac" => data[n - 1] ^= 0x80,
                "data" => data[5] ^= 0x01,
                _ => data[n - 11] ^= 0x01, // SW2 inside DO99
            }
            let err = t.unwrap(&Response::new(data, Status::Success)).unwrap_err();
            assert!(
                matches!(err, SmError::MacMismatch),
                "{cipher:?} {target}: {err}"
            );
            assert!(t.is_closed());
            assert!(matches!(
                t.wrap(&Command::new(0, 0xB0, 0, 0).with_ne(1)),
                Err(SmError::Closed)
            ));
        }
    }
}

#[test]
fn ssc_desynchronisation_is_detected() {
    for cipher in CIPHERS {
        let (mut t, mut c, _) = pair(cipher);
        let cmd = Command::new(0, 0xB0, 0, 0).with_ne(4);
        // The chip answers twice (a replayed or skipped exchange); the terminal sees the second.
        let w = t.wrap(&cmd).unwrap();
        c.unwrap_command(&w).unwrap();
        let _first = c
            .wrap_response(&Response::new(vec![1; 4], Status::Success))
            .unwrap();
        let second = c
            .wrap_response(&Response::new(vec![1; 4], Status::Success))
            .unwrap();
        assert!(matches!(t.unwrap(&second), Err(SmError::MacMismatch)));
        // Replaying an old command to the chip fails too.
        let (mut t, mut c, _) = pair(cipher);
        let w1 = t.wrap(&cmd).unwrap();
        c.unwrap_command(&w1).unwrap();
        let err = c.unwrap_command(&w1).unwrap_err();
        assert!(matches!(err, SmError::MacMismatch));
        assert_eq!(err.status(), Status::SmObjectsIncorrect);
    }
}

#[test]
fn plain_answers_are_errors_not_data() {
    let (mut t, _, _) = pair(Cipher::Tdes);
    t.wrap(&Command::new(0, 0xB0, 0, 0).with_ne(4)).unwrap();
    assert!(matches!(
        t.unwrap(&Response::status_only(Status::SmObjectsIncorrect)),
        Err(SmError::ChipRejected(Status::SmObjectsIncorrect))
    ));
    let (mut t, _, _) = pair(Cipher::Aes128);
    assert!(matches!(
        t.unwrap(&Response::status_only(Status::SmObjectsMissing)),
        Err(SmError::ChipRejected(Status::SmObjectsMissing))
    ));
    let (mut t, _, _) = pair(Cipher::Aes128);
    assert!(matches!(
        t.unwrap(&Response::status_only(Status::Success)),
        Err(SmError::Unprotected(Status::Success))
    ));
    // Plain data that happens to look like anything is refused.
    let (mut t, _, _) = pair(Cipher::Aes128);
    assert!(
        t.unwrap(&Response::new(vec![0x60, 0x14], Status::Success))
            .is_err()
    );
}

#[test]
fn response_without_do99_is_refused_even_with_a_valid_mac() {
    let seed = random(16);
    let ssc = [0u8; 8];
    let k = keys(Cipher::Tdes, &seed);
    let mut t = SecureChannel::new(keys(Cipher::Tdes, &seed), &ssc).unwrap();
    // SSC is 1 for the response to no command (the terminal increments once on unwrap).
    let do87 = [0x87, 0x09, 0x01, 1, 2, 3, 4, 5, 6, 7, 8];
    let mut input = vec![0, 0, 0, 0, 0, 0, 0, 1];
    input.extend_from_slice(&do87);
    let m = mac(Cipher::Tdes, &k.k_mac, &pad(&input, 8)).unwrap();
    let mut data = do87.to_vec();
    data.extend([0x8E, 0x08]);
    data.extend(m);
    assert!(matches!(
        t.unwrap(&Response::new(data, Status::Success)),
        Err(SmError::MissingObject(0x99))
    ));
}

#[test]
fn chip_rejects_bad_commands_with_the_right_status() {
    let (mut t, mut c, _) = pair(Cipher::Aes256);
    let w = t.wrap(&Command::new(0, 0xB0, 0, 0).with_ne(4)).unwrap();
    let mut data = w.data().to_vec();
    let n = data.len();
    data[n - 1] ^= 1;
    let forged = Command::new(w.cla(), w.ins(), w.p1(), w.p2())
        .with_data(data)
        .with_ne(256);
    let err = c.unwrap_command(&forged).unwrap_err();
    assert_eq!(err.status(), Status::SmObjectsIncorrect);
    let (_, mut c, _) = pair(Cipher::Aes256);
    let no_mac = Command::new(0x0C, 0xB0, 0, 0)
        .with_data(vec![0x97, 0x01, 0x04])
        .with_ne(256);
    assert_eq!(
        c.unwrap_command(&no_mac).unwrap_err().status(),
        Status::SmObjectsMissing
    );
    let (_, mut c, _) = pair(Cipher::Aes256);
    let plain = Command::new(0x00, 0xB0, 0, 0).with_ne(4);
    assert_eq!(
        c.unwrap_command(&plain).unwrap_err().status(),
        Status::SmObjectsMissing
    );
}

// ---- PACE ----

fn ok(data: Vec<u8>) -> Response {
    Response::new(data, Status::Success)
}

fn cam_key(parameter_id: u8) -> EcKey<openssl::pkey::Private> {
    EcKey::generate(&EcGroup::from_curve_name(curve(parameter_id).unwrap()).unwrap()).unwrap()
}

/// Runs PACE terminal against chip. Returns the terminal's outcome or error.
fn run_pace(
    protocol: PaceProtocol,
    parameter_id: u8,
    terminal_pw: &PacePassword,
    chip_pw: &PacePassword,
    cam: Option<EcKey<openssl::pkey::Private>>,
) -> Result<(eid_protocols::pace::PaceOutcome, ChipChannel), PaceError> {
    let config = PaceConfig {
        protocol,
        parameter_id,
        send_parameter_id: true,
    };
    let mut t = PaceTerminal::new(config, terminal_pw)?;
    let mut c = PaceChip::new(
        PaceChipConfig {
            protocol,
            parameter_id,
            cam_key: cam,
        },
        chip_pw,
    )?;
    let rng = &mut OsRandom;
    c.mse_set_at(t.mse_set_at().data())?;
    let ga1 = t.general_authenticate_nonce();
    assert_eq!(ga1.cla(), 0x10);
    let r = c.general_authenticate(ga1.data(), rng)?;
    let ga2 = t.process_nonce(&ok(r), rng)?;
    let r = c.general_authenticate(ga2.data(), rng)?;
    let ga3 = t.process_mapping(&ok(r), rng)?;
    assert_eq!(ga3.cla(), 0x10);
    let r = c.general_authenticate(ga3.data(), rng)?;
    let ga4 = t.process_key_agreement(&ok(r))?;
    assert_eq!(ga4.cla(), 0x00);
    let r = match c.general_authenticate(ga4.data(), rng) {
        Ok(data) => ok(data),
        // The chip refuses the terminal's token: what a real chip answers.
        Err(e) => Response::status_only(e.status()),
    };
    let outcome = t.finish(&r)?;
    Ok((outcome, c.finish()?))
}

#[test]
fn pace_every_curve_and_cipher_with_mrz_and_can() {
    let mrz = b"L898902C<369080619406236";
    let mut runs = 0;
    for &id in &SUPPORTED_PARAMETER_IDS {
        for cipher in CIPHERS {
            let protocol = PaceProtocol::EcdhGm(cipher);
            // Alternate passwords to keep the run short but cover both on every curve.
            let (tp, cp) = if runs % 2 == 0 {
                (
                    PacePassword::mrz(mrz).unwrap(),
                    PacePassword::mrz(mrz).unwrap(),
                )
            } else {
                (PacePassword::can("123456"), PacePassword::can("123456"))
            };
            let (outcome, mut chip) = run_pace(protocol, id, &tp, &cp, None)
                .unwrap_or_else(|e| panic!("{protocol:?} id {id}: {e}"));
            assert!(outcome.chip_authentication.is_none());
            let mut t = outcome.channel;
            assert_eq!(t.cipher(), cipher);
            let answer = Response::new(random(40), Status::Success);
            let cmd = Command::new(0, 0xB0, 0, 0).with_ne(40);
            assert_eq!(exchange(&mut t, &mut chip, &cmd, &answer), answer);
            runs += 1;
        }
    }
    assert_eq!(runs, 28);
}

#[test]
fn pace_wrong_password_fails_cleanly() {
    for (tp, cp) in [
        (PacePassword::can("123456"), PacePassword::can("654321")),
        (
            PacePassword::mrz(b"L898902C<369080619406236").unwrap(),
            PacePassword::mrz(b"L898902C<369080619406237").unwrap(),
        ),
    ] {
        let err = run_pace(PaceProtocol::EcdhGm(Cipher::Aes128), 13, &tp, &cp, None).unwrap_err();
        // The chip refuses T_IFD with 6300; the terminal reports it.
        assert!(
            matches!(err, PaceError::Rejected(Status::VerificationFailed)),
            "{err}"
        );
    }
}

#[test]
fn pace_terminal_checks_the_chip_token_and_points() {
    let pw = || PacePassword::can("500540");
    let config = PaceConfig {
        protocol: PaceProtocol::EcdhGm(Cipher::Aes256),
        parameter_id: 12,
        send_parameter_id: false,
    };
    let chip_config = PaceChipConfig {
        protocol: config.protocol,
        parameter_id: 12,
        cam_key: None,
    };
    let rng = &mut OsRandom;
    // A tampered T_IC.
    let mut t = PaceTerminal::new(config, &pw()).unwrap();
    let mut c = PaceChip::new(chip_config.clone(), &pw()).unwrap();
    c.mse_set_at(t.mse_set_at().data()).unwrap();
    let r = c
        .general_authenticate(t.general_authenticate_nonce().data(), rng)
        .unwrap();
    let ga2 = t.process_nonce(&ok(r), rng).unwrap();
    let r = c.general_authenticate(ga2.data(), rng).unwrap();
    let ga3 = t.process_mapping(&ok(r), rng).unwrap();
    let r = c.general_authenticate(ga3.data(), rng).unwrap();
    let ga4 = t.process_key_agreement(&ok(r)).unwrap();
    let mut r = c.general_authenticate(ga4.data(), rng).unwrap();
    let n = r.len();
    r[n - 1] ^= 1;
    assert!(matches!(t.finish(&ok(r)), Err(PaceError::TokenMismatch)));

    // An off-curve mapping key, and the terminal's own key echoed back.
    let mut t = PaceTerminal::new(config, &pw()).unwrap();
    let mut c = PaceChip::new(chip_config, &pw()).unwrap();
    c.mse_set_at(t.mse_set_at().data()).unwrap();
    let r = c
        .general_authenticate(t.general_authenticate_nonce().data(), rng)
        .unwrap();
    t.process_nonce(&ok(r), rng).unwrap();
    let mut bad = vec![0x7C, 0x43, 0x82, 0x41, 0x04];
    bad.extend([0x11; 64]);
    assert!(matches!(
        t.process_mapping(&ok(bad), rng),
        Err(PaceError::InvalidPoint)
    ));

    let mut t = PaceTerminal::new(config, &pw()).unwrap();
    let mut c = PaceChip::new(
        PaceChipConfig {
            protocol: config.protocol,
            parameter_id: 12,
            cam_key: None,
        },
        &pw(),
    )
    .unwrap();
    c.mse_set_at(t.mse_set_at().data()).unwrap();
    let r = c
        .general_authenticate(t.general_authenticate_nonce().data(), rng)
        .unwrap();
    let ga2 = t.process_nonce(&ok(r), rng).unwrap();
    let r = c.general_authenticate(ga2.data(), rng).unwrap();
    let ga3 = t.process_mapping(&ok(r), rng).unwrap();
    // Echo PK_DH_IFD back as if it were the chip's key.
    let echoed = {
        let inner = &ga3.data()[2..];
        let mut v = vec![0x7C, inner.len() as u8, 0x84];
        v.extend_from_slice(&inner[1..]);
        v
    };
    assert!(matches!(
        t.process_key_agreement(&ok(echoed)),
        Err(PaceError::IdenticalKeys)
    ));
}

#[test]
fn pace_cam_proves_the_chip_key() {
    for &id in &[12u8, 13, 16] {
        for cipher in [Cipher::Aes128, Cipher::Aes192, Cipher::Aes256] {
            let key = cam_key(id);
            let public = {
                let mut ctx = openssl::bn::BigNumContext::new().unwrap();
                key.public_key()
                    .to_bytes(
                        key.group(),
                        openssl::ec::PointConversionForm::UNCOMPRESSED,
                        &mut ctx,
                    )
                    .unwrap()
            };
            let pw = PacePassword::can("123456");
            let (outcome, _) =
                run_pace(PaceProtocol::EcdhCam(cipher), id, &pw, &pw, Some(key)).unwrap();
            let cam = outcome.chip_authentication.expect("CAM data");
            cam.verify(&public).unwrap();
            // Another chip's key does not match.
            let other = cam_key(id);
            let mut ctx = openssl::bn::BigNumContext::new().unwrap();
            let other_pub = other
                .public_key()
                .to_bytes(
                    other.group(),
                    openssl::ec::PointConversionForm::UNCOMPRESSED,
                    &mut ctx,
                )
                .unwrap();
            assert!(matches!(cam.verify(&other_pub), Err(PaceError::CamFailed)));
        }
    }
}

// ---- Chip authentication ----

#[test]
fn chip_authentication_both_variants_switch_keys_after_9000() {
    for (protocol, nid) in [
        (CaProtocol(Cipher::Tdes), Nid::BRAINPOOL_P256R1),
        (CaProtocol(Cipher::Aes128), Nid::X9_62_PRIME256V1),
        (CaProtocol(Cipher::Aes256), Nid::BRAINPOOL_P384R1),
    ] {
        let (mut t, mut c, _) = pair(Cipher::Tdes);
        let key = EcKey::generate(&EcGroup::from_curve_name(nid).unwrap()).unwrap();
        let mut chip = CaChip::new(protocol, key, Some(vec![1]));
        let spki = chip.public_key_der().unwrap();
        let ca = CaTerminal::new(protocol, Some(&[1]), &spki, &mut OsRandom).unwrap();
        let mut answers = Vec::new();
        let mut new_chip = None;
        for cmd in ca.commands().unwrap() {
            let w = t.wrap(&cmd).unwrap();
            let plain = c.unwrap_command(&w).unwrap();
            let (answer, channel) = match (plain.ins(), plain.p2()) {
                (0x22, 0xA6) => (
                    Response::status_only(Status::Success),
                    Some(chip.mse_set_kat(plain.data()).unwrap()),
                ),
                (0x22, 0xA4) => {
                    chip.mse_set_at(plain.data()).unwrap();
                    (Response::status_only(Status::Success), None)
                }
                (0x86, _) => {
                    let (data, ch) = chip.general_authenticate(plain.data()).unwrap();
                    assert_eq!(data, vec![0x7C, 0x00]);
                    (ok(data), Some(ch))
                }
                other => panic!("unexpected {other:?}"),
            };
            // The answer goes back under the old keys.
            let protected = c.wrap_response(&answer).unwrap();
            answers.push(t.unwrap(&protected).unwrap());
            if channel.is_some() {
                new_chip = channel;
            }
        }
        let mut t2 = ca.finish(&answers).unwrap();
        let mut c2 = new_chip.unwrap();
        assert_eq!(t2.ssc(), vec![0u8; protocol.cipher().block_len()]);
        let answer = Response::new(random(10), Status::Success);
        let got = exchange(
            &mut t2,
            &mut c2,
            &Command::new(0, 0xB0, 0, 0).with_ne(10),
            &answer,
        );
        assert_eq!(got, answer);
    }
}

#[test]
fn chip_authentication_refused_keeps_the_old_channel_usable() {
    let protocol = CaProtocol(Cipher::Aes128);
    let key = EcKey::generate(&EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap()).unwrap();
    let chip = CaChip::new(protocol, key, None);
    let spki = chip.public_key_der().unwrap();
    let ca = CaTerminal::new(protocol, None, &spki, &mut OsRandom).unwrap();
    let refused = [
        Response::status_only(Status::Success),
        Response::status_only(Status::IncorrectData),
    ];
    assert!(ca.finish(&refused).is_err());
    // A wrong key id is refused by the chip.
    let key = EcKey::generate(&EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap()).unwrap();
    let mut chip = CaChip::new(protocol, key, Some(vec![2]));
    let ca = CaTerminal::new(protocol, Some(&[3]), &spki, &mut OsRandom).unwrap();
    let cmds = ca.commands().unwrap();
    assert_eq!(
        chip.mse_set_at(cmds[0].data()).unwrap_err().status(),
        Status::ReferenceNotFound
    );
}

// ---- Active authentication ----

#[test]
fn active_authentication_rsa_and_ecdsa() {
    let rsa = Rsa::generate(2048).unwrap();
    let ec = EcKey::generate(&EcGroup::from_curve_name(Nid::BRAINPOOL_P256R1).unwrap()).unwrap();
    let keys = [
        AaKey::Rsa(rsa.clone(), AaHash::Sha1),
        AaKey::Rsa(rsa, AaHash::Sha256),
        AaKey::Ec(ec.clone(), AaHash::Sha256),
        AaKey::Ec(ec, AaHash::Sha384),
    ];
    for key in &keys {
        let challenge = aa::challenge(&mut OsRandom).unwrap();
        let cmd = aa::internal_authenticate(&challenge);
        assert_eq!(
            hex::encode_upper(&cmd.encode(LengthForm::Short).unwrap()[..5]),
            "0088000008"
        );
        let sig = aa::sign(key, cmd.data(), &mut OsRandom).unwrap();
        let spki = key.public_key_der().unwrap();
        aa::verify(&spki, &challenge, &sig, Some(key.hash())).unwrap();
        // Another challenge does not verify.
        let mut other = challenge;
        other[0] ^= 1;
        assert!(matches!(
            aa::verify(&spki, &other, &sig, Some(key.hash())),
            Err(AaError::BadSignature)
        ));
        // A tampered signature does not verify.
        let mut bad = sig.clone();
        bad[10] ^= 1;
        assert!(aa::verify(&spki, &challenge, &bad, Some(key.hash())).is_err());
    }
    // A wrong key (another chip) is detected.
    let other = AaKey::Rsa(Rsa::generate(2048).unwrap(), AaHash::Sha1);
    let sig = aa::sign(&keys[0], &[1; 8], &mut OsRandom).unwrap();
    assert!(matches!(
        aa::verify(&other.public_key_der().unwrap(), &[1; 8], &sig, None),
        Err(AaError::BadSignature)
    ));
    let other_ec = AaKey::Ec(
        EcKey::generate(&EcGroup::from_curve_name(Nid::BRAINPOOL_P256R1).unwrap()).unwrap(),
        AaHash::Sha256,
    );
    let sig = aa::sign(&keys[2], &[1; 8], &mut OsRandom).unwrap();
    assert!(matches!(
        aa::verify(
            &other_ec.public_key_der().unwrap(),
            &[1; 8],
            &sig,
            Some(AaHash::Sha256)
        ),
        Err(AaError::BadSignature)
    ));
    // EC without a hash is refused rather than guessed.
    assert!(matches!(
        aa::verify(&keys[2].public_key_der().unwrap(), &[1; 8], &sig, None),
        Err(AaError::UnknownHash)
    ));
}
