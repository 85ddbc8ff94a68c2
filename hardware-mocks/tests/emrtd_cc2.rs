//! `pteid-cc2-contactless`: PACE with the CAN, then the Citizen Card CC2 behind secure
//! messaging (national data with its SOD and Active Authentication, eID certificates and
//! ECDSA signing), over raw APDUs with the terminal protocols of `eid_protocols`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use eid_hardware_mocks::VirtualCard;
use eid_hardware_mocks::emrtd::cc2::{self, PACE_PARAMETER_ID, PACE_PROTOCOL};
use eid_hardware_mocks::emrtd::terminal::{self, TerminalError};
use eid_hardware_mocks::pteid::{self, CC2_EID_AID, CC2_NATIONAL_DATA_AID, Identity};
use eid_protocols::aa::{self, AaHash};
use eid_protocols::commands::{self, FileReturn, Select};
use eid_protocols::fci::FileControl;
use eid_protocols::lds::{Dg1, Dg2, Dg15, SecurityInfos};
use eid_protocols::pa::Sod;
use eid_protocols::pace::{PaceConfig, PaceError, PacePassword};
use eid_protocols::sm::{OsRandom, SecureChannel, SmError};
use eid_protocols::{Command, LengthForm, Response, Status};
use openssl::hash::{MessageDigest, hash};
use openssl::x509::X509;

fn send(card: &mut VirtualCard, cmd: &Command) -> Response {
    terminal::send(card, cmd).unwrap()
}

fn send_sm(card: &mut VirtualCard, sm: &mut SecureChannel, cmd: &Command) -> Response {
    terminal::send_sm(card, sm, cmd, Some(LengthForm::Short)).unwrap()
}

fn pace(card: &mut VirtualCard, password: &PacePassword) -> Result<SecureChannel, PaceError> {
    let config = PaceConfig {
        protocol: PACE_PROTOCOL,
        parameter_id: PACE_PARAMETER_ID,
        send_parameter_id: false,
    };
    match terminal::pace(card, config, password) {
        Ok(outcome) => Ok(outcome.channel),
        Err(TerminalError::Pace(e)) => Err(e),
        Err(TerminalError::MseRefused(sw)) => Err(PaceError::Rejected(Status::from(sw))),
        Err(e) => panic!("{e}"),
    }
}

fn select_aid(aid: &[u8]) -> Command {
    commands::select(Select::DfName(aid), FileReturn::None)
}

/// SELECT with FCI, then READ BINARY in 223-byte pieces, all under SM.
fn read_sm(card: &mut VirtualCard, sm: &mut SecureChannel, select: &Command) -> Vec<u8> {
    let r = send_sm(card, sm, select);
    assert_eq!(r.status(), Status::Success);
    let size = FileControl::parse(r.data()).unwrap().size.unwrap();
    let mut out = Vec::new();
    while out.len() < size {
        let n = (size - out.len()).min(223);
        let offset = u16::try_from(out.len()).unwrap();
        let r = send_sm(card, sm, &commands::read_binary(offset, n).unwrap());
        assert_eq!(r.status(), Status::Success);
        out.extend_from_slice(r.data());
    }
    out
}

fn card() -> VirtualCard {
    cc2::cc2_contactless_default().unwrap().card
}

fn can() -> PacePassword {
    PacePassword::can(&Identity::default().can)
}

#[test]
fn atr_card_access_and_applications_locked_before_pace() {
    let mut card = card();
    assert_eq!(
        hex::encode_upper(card.atr()),
        "3B8F800180318065B085050011120FFF8290008B"
    );
    assert_eq!(
        sw(&mut card, &select_aid(CC2_EID_AID)),
        Status::SecurityStatusNotSatisfied
    );
    assert_eq!(
        sw(&mut card, &select_aid(CC2_NATIONAL_DATA_AID)),
        Status::SecurityStatusNotSatisfied
    );
    let r = send(&mut card, &commands::read_binary_sfi(0x1C, 0, 256).unwrap());
    // Shorter than Le: 6282 with the whole file.
    assert_eq!(r.status(), Status::EndOfFile);
    assert_eq!(r.data(), cc2::card_access());
    let infos = SecurityInfos::parse_card_access(r.data()).unwrap();
    assert_eq!(infos.pace().count(), 1);
    // Nothing else before PACE.
    let verify = Command::new(0x00, 0x20, 0x00, 0x81);
    assert_eq!(sw(&mut card, &verify), Status::SecurityStatusNotSatisfied);
}

fn sw(card: &mut VirtualCard, cmd: &Command) -> Status {
    send(card, cmd).status()
}

#[test]
fn pace_accepts_the_can_only() {
    let mut card = card();
    let err = pace(&mut card, &PacePassword::can("000000")).err().unwrap();
    assert!(matches!(err, PaceError::Rejected(_)), "{err:?}");
    let mrz = PacePassword::mrz(b"990001234ZY5<8907031F3104106").unwrap();
    let err = pace(&mut card, &mrz).err().unwrap();
    assert!(matches!(err, PaceError::Rejected(_)), "{err:?}");
    pace(&mut card, &can()).unwrap();
}

#[test]
fn national_data_passes_sod_hashes_and_active_authentication_under_sm() {
    let built = cc2::cc2_contactless_default().unwrap();
    let root = built.pki.root.clone();
    let mut card = built.card;
    let mut sm = pace(&mut card, &can()).unwrap();
    let r = send_sm(&mut card, &mut sm, &select_aid(CC2_NATIONAL_DATA_AID));
    assert_eq!(r.status(), Status::Success);
    let mut files = Vec::new();
    for (n, fid) in [
        (1u8, 0x0101u16),
        (2, 0x0102),
        (13, 0x010D),
        (14, 0x010E),
        (15, 0x010F),
    ] {
        let file = read_sm(
            &mut card,
            &mut sm,
            &commands::select(Select::ChildEf(fid), FileReturn::Fci),
        );
        files.push((n, file));
    }
    let sod = read_sm(
        &mut card,
        &mut sm,
        &commands::select(Select::ChildEf(0x011D), FileReturn::Fci),
    );
    let sod = Sod::parse(&sod).unwrap();
    assert!(sod.verify_signature().is_passed());
    let signer = sod.signed_data.verify_signature().unwrap();
    // The document signer is issued by the Citizen Card root.
    assert!(signer.verify(&root.public_key().unwrap()).unwrap());
    for (n, file) in &files {
        assert!(sod.check_data_group(*n, file).is_passed(), "DG{n}");
    }
    let dg1 = Dg1::parse(&files[0].1).unwrap();
    assert!(dg1.mrz.checks.all_valid());
    let dg2 = Dg2::parse(&files[1].1).unwrap();
    assert_eq!(dg2.faces[0].data, pteid::PHOTO_JP2);

    // Active Authentication with the DG15 key, hash from DG14.
    let dg15 = Dg15::parse(&files[4].1).unwrap();
    let hash_alg = SecurityInfos::parse_dg14(&files[3].1)
        .unwrap()
        .active_authentication_hash()
        .map(|_| AaHash::Sha256);
    let rnd = aa::challenge(&mut OsRandom).unwrap();
    let r = send_sm(&mut card, &mut sm, &aa::internal_authenticate(&rnd));
    assert_eq!(r.status(), Status::Success);
    aa::verify(&dg15.subject_public_key_info, &rnd, r.data(), hash_alg).unwrap();
}

#[test]
fn eid_certificate_and_ecdsa_signature_under_sm() {
    let built = cc2::cc2_contactless_default().unwrap();
    let auth_key = built.pki.auth_cert.public_key().unwrap();
    let mut card = built.card;
    let mut sm = pace(&mut card, &can()).unwrap();
    let r = send_sm(&mut card, &mut sm, &select_aid(CC2_EID_AID));
    assert_eq!(r.status(), Status::Success);
    let cert = read_sm(
        &mut card,
        &mut sm,
        &commands::select(Select::PathFromMf(&[0x5F00, 0xEF02]), FileReturn::Fci),
    );
    let len = usize::from(u16::from_be_bytes([cert[2], cert[3]])) + 4;
    let cert = X509::from_der(&cert[..len]).unwrap();
    assert!(cert.public_key().unwrap().public_eq(&auth_key));

    let mut pin = b"1111".to_vec();
    pin.resize(8, 0xFF);
    let verify = Command::new(0x00, 0x20, 0x00, pteid::PIN_AUTH).with_data(pin);
    assert_eq!(
        send_sm(&mut card, &mut sm, &verify).status(),
        Status::Success
    );
    let mse = Command::new(0x00, 0x22, 0x41, 0xB6).with_data(vec![
        0x80,
        0x01,
        0x44,
        0x84,
        0x01,
        pteid::cc2::AUTH_KEY_REF,
    ]);
    assert_eq!(send_sm(&mut card, &mut sm, &mse).status(), Status::Success);
    let digest = hash(MessageDigest::sha256(), b"contactless").unwrap();
    let mut data = vec![0x90, 0x20];
    data.extend_from_slice(&digest);
    let pso_hash = Command::new(0x00, 0x2A, 0x90, 0xA0).with_data(data);
    assert_eq!(
        send_sm(&mut card, &mut sm, &pso_hash).status(),
        Status::Success
    );
    let cds = Command::new(0x00, 0x2A, 0x9E, 0x9A).with_ne(256);
    let r = send_sm(&mut card, &mut sm, &cds);
    assert_eq!(r.status(), Status::Success);
    let sig = r.data();
    assert_eq!(sig.len(), 64);
    let esig = openssl::ecdsa::EcdsaSig::from_private_components(
        openssl::bn::BigNum::from_slice(&sig[..32]).unwrap(),
        openssl::bn::BigNum::from_slice(&sig[32..]).unwrap(),
    )
    .unwrap();
    assert!(esig.verify(&digest, &auth_key.ec_key().unwrap()).unwrap());
}

#[test]
fn a_plain_command_after_pace_ends_the_session() {
    let mut card = card();
    let mut sm = pace(&mut card, &can()).unwrap();
    // A plain SELECT of the eID app: refused, and the session is gone.
    assert_eq!(
        sw(&mut card, &select_aid(CC2_EID_AID)),
        Status::SecurityStatusNotSatisfied
    );
    let wrapped = sm
        .wrap_in(&select_aid(CC2_EID_AID), LengthForm::Short)
        .unwrap();
    let err = sm.unwrap(&send(&mut card, &wrapped)).unwrap_err();
    assert!(
        matches!(err, SmError::ChipRejected(_) | SmError::Unprotected(_)),
        "{err:?}"
    );
}

/// Active Authentication needs PACE first: a chip does not sign challenges in plain for anyone
/// in radio range.
#[test]
fn active_authentication_refused_before_pace() {
    let mut card = card();
    let rnd = [7u8; 8];
    assert_eq!(
        sw(&mut card, &aa::internal_authenticate(&rnd)),
        Status::SecurityStatusNotSatisfied
    );
}

/// A PIN verified in one PACE session is not verified in the next: ending secure messaging
/// ends the security state reached under it.
#[test]
fn a_new_pace_session_does_not_inherit_a_verified_pin() {
    let mut card = card();
    let mut pin = b"1111".to_vec();
    pin.resize(8, 0xFF);
    let verify = Command::new(0x00, 0x20, 0x00, pteid::PIN_AUTH).with_data(pin);
    let status = Command::new(0x00, 0x20, 0x00, pteid::PIN_AUTH);
    let mut sm = pace(&mut card, &can()).unwrap();
    assert_eq!(
        send_sm(&mut card, &mut sm, &select_aid(CC2_EID_AID)).status(),
        Status::Success
    );
    assert_eq!(
        send_sm(&mut card, &mut sm, &verify).status(),
        Status::Success
    );
    assert_eq!(
        send_sm(&mut card, &mut sm, &status).status(),
        Status::Success
    );
    // A plain command ends the session; a new PACE (the CAN is printed on the card) starts
    // with the PIN not verified.
    assert_eq!(
        sw(&mut card, &select_aid(CC2_EID_AID)),
        Status::SecurityStatusNotSatisfied
    );
    let mut sm = pace(&mut card, &can()).unwrap();
    assert_eq!(
        send_sm(&mut card, &mut sm, &select_aid(CC2_EID_AID)).status(),
        Status::Success
    );
    assert_eq!(
        send_sm(&mut card, &mut sm, &status).status(),
        Status::RemainingRetries(3)
    );
    // Also when the session ends on a new MSE:Set AT (PACE again without a plain command).
    assert_eq!(
        send_sm(&mut card, &mut sm, &verify).status(),
        Status::Success
    );
    let mut sm = pace(&mut card, &can()).unwrap();
    assert_eq!(
        send_sm(&mut card, &mut sm, &select_aid(CC2_EID_AID)).status(),
        Status::Success
    );
    assert_eq!(
        send_sm(&mut card, &mut sm, &status).status(),
        Status::RemainingRetries(3)
    );
}
