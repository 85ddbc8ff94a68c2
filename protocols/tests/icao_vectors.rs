//! ICAO 9303-11 worked examples reproduced byte for byte: Appendix D (BAC and 3DES secure
//! messaging) and Appendix G (PACE ECDH generic mapping, AES-128, brainpoolP256r1).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::HashMap;

use eid_protocols::bac::{BacChip, BacTerminal, bac_keys};
use eid_protocols::kdf::{COUNTER_PACE, SessionKeys, derive_key};
use eid_protocols::pace::{
    PaceChip, PaceChipConfig, PaceConfig, PacePassword, PaceProtocol, PaceTerminal,
};
use eid_protocols::sm::{ChipChannel, Cipher, CryptoError, RandomSource, SecureChannel};
use eid_protocols::{Command, LengthForm, Response};

const APPENDIX_D: &str = include_str!("../../tests/vectors/icao-9303-11-appendix-d.txt");
const APPENDIX_G: &str = include_str!("../../tests/vectors/icao-9303-11-appendix-g.txt");

struct Vectors(HashMap<String, String>);

impl Vectors {
    fn load(text: &str) -> Self {
        let map = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|l| {
                let (k, v) = l.split_once('=').expect("name = value");
                (k.trim().to_owned(), v.trim().to_owned())
            })
            .collect();
        Vectors(map)
    }
    fn text(&self, name: &str) -> &str {
        self.0.get(name).unwrap_or_else(|| panic!("vector {name}"))
    }
    fn hex(&self, name: &str) -> Vec<u8> {
        hex::decode(self.text(name)).unwrap()
    }
    fn arr<const N: usize>(&self, name: &str) -> [u8; N] {
        self.hex(name).try_into().unwrap()
    }
}

/// Hands out the given byte strings in order, each exactly once.
struct Scripted(Vec<Vec<u8>>);

impl RandomSource for Scripted {
    fn fill(&mut self, buf: &mut [u8]) -> Result<(), CryptoError> {
        let next = self.0.remove(0);
        assert_eq!(next.len(), buf.len(), "scripted randomness length");
        buf.copy_from_slice(&next);
        Ok(())
    }
}

fn enc(command: &Command, form: LengthForm) -> String {
    hex::encode_upper(&command.encode(form).unwrap()[..])
}

#[test]
fn appendix_d_bac_keys() {
    let v = Vectors::load(APPENDIX_D);
    let keys = bac_keys(v.text("mrz_information").as_bytes()).unwrap();
    assert_eq!(&keys.k_enc[..], &v.hex("kenc")[..]);
    assert_eq!(&keys.k_mac[..], &v.hex("kmac")[..]);
    // The KDF on Kseed directly.
    let kseed = v.hex("kseed");
    assert_eq!(
        &derive_key(Cipher::Tdes, &kseed, 1).unwrap()[..],
        &v.hex("kenc")[..]
    );
    let session = SessionKeys::derive(Cipher::Tdes, &v.hex("ksseed")).unwrap();
    assert_eq!(&session.k_enc[..], &v.hex("ksenc")[..]);
    assert_eq!(&session.k_mac[..], &v.hex("ksmac")[..]);
}

/// Runs the Appendix D mutual authentication on both sides and returns the two channels.
fn appendix_d_channels(v: &Vectors) -> (SecureChannel, ChipChannel) {
    let mrz = v.text("mrz_information").as_bytes();
    let mut terminal = BacTerminal::new(mrz).unwrap();
    let mut chip = BacChip::new(mrz).unwrap();
    assert_eq!(
        enc(&terminal.get_challenge(), LengthForm::Short),
        "0084000008"
    );
    chip.set_challenge(v.arr("rnd_ic"));
    let challenge = Response::new(v.hex("rnd_ic"), eid_protocols::Status::Success);
    let ea = terminal
        .external_authenticate_with(&challenge, v.arr("rnd_ifd"), &v.arr("k_ifd"))
        .unwrap();
    assert_eq!(enc(&ea, LengthForm::Short), v.text("external_authenticate"));
    let mut e_m = v.hex("e_ifd");
    e_m.extend(v.hex("m_ifd"));
    assert_eq!(ea.data(), &e_m[..]);
    let (answer, chip_channel) = chip
        .external_authenticate_with(ea.data(), &v.arr("k_ic"))
        .unwrap();
    let mut expected = v.hex("e_ic");
    expected.extend(v.hex("m_ic"));
    assert_eq!(answer, expected);
    let channel = terminal
        .finish(&Response::new(answer, eid_protocols::Status::Success))
        .unwrap();
    assert_eq!(channel.ssc(), &v.hex("ssc")[..]);
    assert_eq!(chip_channel.ssc(), &v.hex("ssc")[..]);
    (channel, chip_channel)
}

#[test]
fn appendix_d_mutual_authentication_and_secure_messaging() {
    let v = Vectors::load(APPENDIX_D);
    let (mut terminal, mut chip) = appendix_d_channels(&v);
    for (plain, protected, response, data) in [
        ("select_plain", "select_protected", "select_response", None),
        (
            "read1_plain",
            "read1_protected",
            "read1_response",
            Some("read1_data"),
        ),
        (
            "read2_plain",
            "read2_protected",
            "read2_response",
            Some("read2_data"),
        ),
    ] {
        let (cmd, _) = Command::parse(&v.hex(plain)).unwrap();
        let wrapped = terminal.wrap(&cmd).unwrap();
        assert_eq!(
            enc(&wrapped, LengthForm::Short),
            v.text(protected),
            "{plain}"
        );
        // The chip side recovers the plain command ...
        let unwrapped = chip.unwrap_command(&wrapped).unwrap();
        assert_eq!(unwrapped.header(), cmd.header());
        assert_eq!(unwrapped.data(), cmd.data());
        assert_eq!(unwrapped.ne(), cmd.ne());
        // ... and protects the answer exactly as the example does.
        let plain_answer = Response::new(
            data.map(|d| v.hex(d)).unwrap_or_default(),
            eid_protocols::Status::Success,
        );
        let chip_answer = chip.wrap_response(&plain_answer).unwrap();
        assert_eq!(hex::encode_upper(chip_answer.to_bytes()), v.text(response));
        let opened = terminal
            .unwrap(&Response::parse(&v.hex(response)).unwrap())
            .unwrap();
        assert_eq!(opened, plain_answer, "{response}");
    }
}

#[test]
fn appendix_g_pace_ecdh_gm_brainpool_p256() {
    let v = Vectors::load(APPENDIX_G);
    let mrz = v.text("mrz_information").as_bytes();
    // K = SHA-1(MRZ_information), Kπ = KDF(K, 3).
    let password = PacePassword::mrz(mrz).unwrap();
    assert_eq!(password.key_material(), &v.hex("k_password")[..]);
    assert_eq!(
        &derive_key(Cipher::Aes128, &v.hex("k_password"), COUNTER_PACE).unwrap()[..],
        &v.hex("k_pi")[..]
    );
    let protocol = PaceProtocol::from_oid_bytes(&v.hex("oid")).unwrap();
    assert_eq!(protocol, PaceProtocol::EcdhGm(Cipher::Aes128));
    let config = PaceConfig {
        protocol,
        parameter_id: v.hex("parameter_id")[0],
        send_parameter_id: false,
    };
    let mut terminal = PaceTerminal::new(config, &password).unwrap();
    let mut chip = PaceChip::new(
        PaceChipConfig {
            protocol,
            parameter_id: config.parameter_id,
            cam_key: None,
        },
        &PacePassword::mrz(mrz).unwrap(),
    )
    .unwrap();

    let mse = terminal.mse_set_at();
    assert_eq!(enc(&mse, LengthForm::Short), v.text("mse_set_at"));
    chip.mse_set_at(mse.data()).unwrap();

    let ga1 = terminal.general_authenticate_nonce();
    assert_eq!(enc(&ga1, LengthForm::Short), v.text("ga1_command"));
    let mut chip_rng = Scripted(vec![v.hex("s"), v.hex("sk_map_ic"), v.hex("sk_dh_ic")]);
    let r1 = chip
        .general_authenticate(ga1.data(), &mut chip_rng)
        .unwrap();
    assert_eq!(r1, [&[0x7C, 0x12, 0x80, 0x10][..], &v.hex("z")].concat());

    let mut term_rng = Scripted(vec![v.hex("sk_map_ifd"), v.hex("sk_dh_ifd")]);
    let ga2 = terminal.process_nonce(&ok(r1), &mut term_rng).unwrap();
    assert_eq!(terminal.nonce().unwrap(), &v.hex("s")[..]);
    let r2 = chip
        .general_authenticate(ga2.data(), &mut chip_rng)
        .unwrap();
    let ga3 = terminal.process_mapping(&ok(r2), &mut term_rng).unwrap();
    assert_eq!(
        terminal.mapped_generator().unwrap(),
        v.hex("mapped_generator")
    );
    let r3 = chip
        .general_authenticate(ga3.data(), &mut chip_rng)
        .unwrap();
    assert_eq!(
        r3,
        [&[0x7C, 0x43, 0x84, 0x41][..], &v.hex("pk_dh_ic")].concat()
    );
    let ga4 = terminal.process_key_agreement(&ok(r3)).unwrap();
    assert_eq!(
        terminal.shared_secret().unwrap(),
        &v.hex("shared_secret")[..]
    );
    assert_eq!(enc(&ga4, LengthForm::Short), v.text("ga4_command"));
    let r4 = chip
        .general_authenticate(ga4.data(), &mut chip_rng)
        .unwrap();
    let r4 = ok(r4);
    assert_eq!(hex::encode_upper(r4.to_bytes()), v.text("ga4_response"));
    let keys = terminal.session_keys().unwrap();
    assert_eq!(&keys.k_enc[..], &v.hex("ks_enc")[..]);
    assert_eq!(&keys.k_mac[..], &v.hex("ks_mac")[..]);
    let outcome = terminal.finish(&r4).unwrap();
    let chip_channel = chip.finish().unwrap();
    assert_eq!(outcome.channel.ssc(), &[0u8; 16][..]);
    assert_eq!(chip_channel.ssc(), &[0u8; 16][..]);
    assert!(outcome.chip_authentication.is_none());
    assert!(chip_rng.0.is_empty() && term_rng.0.is_empty());
}

fn ok(data: Vec<u8>) -> Response {
    Response::new(data, eid_protocols::Status::Success)
}

/// The first READ BINARY answer of Appendix D verifies on its own from the SSC just before it
/// (the fixed state of the `sm_response` fuzz target and its seed).
#[test]
fn appendix_d_read_binary_answer_from_mid_session_ssc() {
    let v = Vectors::load(APPENDIX_D);
    let keys = SessionKeys::derive(Cipher::Tdes, &v.hex("ksseed")).unwrap();
    let mut ssc = v.hex("ssc");
    ssc[7] += 3;
    let mut t = SecureChannel::new(keys, &ssc).unwrap();
    let r = t
        .unwrap(&Response::parse(&v.hex("read1_response")).unwrap())
        .unwrap();
    assert_eq!(r.data(), &v.hex("read1_data")[..]);
}
