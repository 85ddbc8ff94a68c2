//! The virtual eMRTDs: files encoded by `hardware_mocks::emrtd` read back with the terminal-side
//! parsers (`eid_protocols::lds`, `eid_protocols::pa`), and the chips driven over raw APDUs with
//! the terminal protocols (`eid_protocols::{bac, pace, ca, aa, sm}`).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use eid_hardware_mocks::emrtd::profile::{
    self, Access, DOC_BAC, DOC_PACE, DOC_PACE_CAM, FACE_JP2, FACE_JPEG, Profile, chip_files,
};
use eid_hardware_mocks::emrtd::trust::trust;
use eid_protocols::lds::{
    Dg1, Dg2, Dg11, Dg12, Dg15, EfCom, ImageType, SecurityInfo, SecurityInfos,
};
use eid_protocols::pa::{CscaStore, SignedData, Sod};
use time::OffsetDateTime;

/// A verifier's store loaded from the exported-style trust material: master list and CRL.
fn store() -> CscaStore {
    let t = trust().unwrap();
    let mut store = CscaStore::new();
    let (added, skipped) = store
        .add_master_list(&t.master_list, OffsetDateTime::now_utc())
        .unwrap();
    assert_eq!((added, skipped), (1, 0));
    store.add_crl(&t.crl).unwrap();
    store
}

fn files_of(p: Profile) -> Vec<(u8, &'static [u8])> {
    chip_files(p)
        .unwrap()
        .data_groups
        .iter()
        .map(|(n, f)| (*n, f.as_slice()))
        .collect()
}

#[test]
fn every_profile_has_its_documented_data_groups_and_parseable_files() {
    for p in Profile::ALL {
        let files = chip_files(p).unwrap();
        let com = EfCom::parse(&files.com).unwrap();
        assert_eq!(com.lds_version, "0107", "{}", p.name());
        let listed: Vec<u8> = com.data_groups.iter().map(|d| d.number()).collect();
        assert_eq!(listed, p.data_groups(), "{}", p.name());

        let doc = p.document();
        let dg1 = Dg1::parse(files.data_group(1).unwrap()).unwrap();
        assert!(dg1.mrz.checks.all_valid(), "{}", p.name());
        assert_eq!(dg1.mrz.document_number, doc.document_number);
        assert_eq!(
            dg1.mrz.mrz_information().unwrap().as_str(),
            doc.mrz_information().unwrap().as_str()
        );

        let dg2 = Dg2::parse(files.data_group(2).unwrap()).unwrap();
        let face = &dg2.faces[0];
        match face.image_type {
            ImageType::Jpeg => assert_eq!(face.data, FACE_JPEG),
            ImageType::Jpeg2000 => assert_eq!(face.data, FACE_JP2),
            other => panic!("{other:?}"),
        }
        assert_eq!((face.width, face.height), (300, 400));

        let dg11 = Dg11::parse(files.data_group(11).unwrap()).unwrap();
        assert_eq!(
            dg11.full_date_of_birth.as_deref(),
            Some(doc.full_date_of_birth)
        );
        let dg12 = Dg12::parse(files.data_group(12).unwrap()).unwrap();
        assert_eq!(dg12.date_of_issue.as_deref(), Some(doc.date_of_issue));

        if let Some(dg15) = files.data_group(15) {
            let dg15 = Dg15::parse(dg15).unwrap();
            let keys = profile::chip_keys(p).unwrap();
            assert!(keys.aa_public.unwrap().public_eq(&dg15.public_key));
        }
        match p.access() {
            Access::Bac => assert!(files.card_access.is_none()),
            Access::PaceGm { .. } | Access::PaceCam { .. } => {
                let infos =
                    SecurityInfos::parse_card_access(files.card_access.as_ref().unwrap()).unwrap();
                assert_eq!(infos.pace().count(), 1, "{}", p.name());
            }
        }
        if let Some(dg14) = files.data_group(14) {
            let infos = SecurityInfos::parse_dg14(dg14).unwrap();
            assert!(
                infos
                    .iter()
                    .any(|i| matches!(i, SecurityInfo::ChipAuthenticationPublicKey { .. }))
            );
            assert!(
                infos
                    .iter()
                    .any(|i| matches!(i, SecurityInfo::ChipAuthentication { .. }))
            );
        }
    }
}

#[test]
fn documented_data_matches_profiles() {
    assert_eq!(Profile::Bac.document(), &DOC_BAC);
    assert_eq!(Profile::PaceCam.document(), &DOC_PACE_CAM);
    assert_eq!(Profile::Clone.document(), &DOC_PACE);
    assert_eq!(DOC_PACE.can, Some("123456"));
    for p in Profile::ALL {
        assert_eq!(Profile::from_name(p.name()), Some(p));
    }
}

#[test]
fn good_profiles_pass_passive_authentication() {
    let store = store();
    for p in [
        Profile::Bac,
        Profile::Pace,
        Profile::PaceCam,
        Profile::Clone,
        Profile::BadMac,
    ] {
        let sod = Sod::parse(&chip_files(p).unwrap().sod).unwrap();
        let report = sod.verify(Some(&store), OffsetDateTime::now_utc(), &files_of(p));
        assert!(report.is_valid(), "{}: {report:?}", p.name());
        assert!(report.revocation.is_passed(), "{}: {report:?}", p.name());
        assert_eq!(report.data_groups.len(), p.data_groups().len());
    }
}

#[test]
fn bad_dg_hash_fails_only_dg11() {
    let p = Profile::BadDgHash;
    let sod = Sod::parse(&chip_files(p).unwrap().sod).unwrap();
    let report = sod.verify(Some(&store()), OffsetDateTime::now_utc(), &files_of(p));
    assert!(!report.is_valid());
    assert!(report.signature.is_passed() && report.certificate_chain.is_passed());
    for n in p.data_groups() {
        assert_eq!(
            report.data_group(*n).unwrap().is_failed(),
            *n == 11,
            "DG{n}"
        );
    }
}

#[test]
fn bad_ds_signature_fails_the_signature_check() {
    let p = Profile::BadDsSignature;
    let sod = Sod::parse(&chip_files(p).unwrap().sod).unwrap();
    let report = sod.verify(Some(&store()), OffsetDateTime::now_utc(), &files_of(p));
    assert!(report.signature.is_failed(), "{report:?}");
    assert!(!report.is_valid());
    assert!(report.data_groups.iter().all(|d| d.check.is_passed()));
}

#[test]
fn untrusted_csca_fails_the_chain_check() {
    let p = Profile::UntrustedCsca;
    let sod = Sod::parse(&chip_files(p).unwrap().sod).unwrap();
    let report = sod.verify(Some(&store()), OffsetDateTime::now_utc(), &files_of(p));
    assert!(report.signature.is_passed(), "{report:?}");
    assert!(report.certificate_chain.is_failed(), "{report:?}");
    assert!(!report.is_valid());
}

#[test]
fn card_security_is_signed_and_holds_the_cam_key() {
    let files = chip_files(Profile::PaceCam).unwrap();
    let sd = SignedData::parse(files.card_security.as_ref().unwrap()).unwrap();
    assert_eq!(sd.content_type.dotted(), "0.4.0.127.0.7.3.2.1");
    let signer = sd.verify_signature().unwrap();
    let check = store().verify_chain(&signer, &[], OffsetDateTime::now_utc());
    assert!(check.is_passed(), "{check:?}");
    let infos = SecurityInfos::parse(&sd.content).unwrap();
    let key = infos
        .iter()
        .find_map(|i| match i {
            SecurityInfo::ChipAuthenticationPublicKey {
                subject_public_key_info,
                ..
            } => Some(subject_public_key_info.clone()),
            _ => None,
        })
        .unwrap();
    let cam = profile::chip_keys(Profile::PaceCam)
        .unwrap()
        .chip_authentication
        .unwrap();
    assert_eq!(key, cam.public_key_to_der().unwrap());
}

#[test]
fn exported_trust_material_loads_into_a_store() {
    let dir = std::env::temp_dir().join(format!("emrtd-pki-{}", std::process::id()));
    let written = trust().unwrap().export(&dir).unwrap();
    assert_eq!(written.len(), 3);
    let mut store = CscaStore::new();
    for path in &written {
        store
            .add_file(&std::fs::read(path).unwrap(), OffsetDateTime::now_utc())
            .unwrap();
    }
    let sod = Sod::parse(&chip_files(Profile::Pace).unwrap().sod).unwrap();
    let report = sod.verify(
        Some(&store),
        OffsetDateTime::now_utc(),
        &files_of(Profile::Pace),
    );
    assert!(report.is_valid(), "{report:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

// ---- The chips over raw APDUs ----

use eid_hardware_mocks::VirtualCard;
use eid_hardware_mocks::emrtd::terminal::{self, TerminalError};
use eid_protocols::aa::{self as aa_proto, AaHash};
use eid_protocols::bac::BacTerminal;
use eid_protocols::ca::{CaProtocol, CaTerminal};
use eid_protocols::commands::{self, FileReturn, Select};
use eid_protocols::fci::FileControl;
use eid_protocols::pace::{PaceConfig, PaceError, PaceOutcome, PacePassword, PaceProtocol};
use eid_protocols::sm::{Cipher, OsRandom, SecureChannel, SmError};
use eid_protocols::{Command, Response, Status};
use openssl::bn::BigNumContext;
use openssl::ec::PointConversionForm;
use openssl::pkey::PKey;

fn send(card: &mut VirtualCard, cmd: &Command) -> Response {
    terminal::send(card, cmd).unwrap()
}

fn send_sm(
    card: &mut VirtualCard,
    sm: &mut SecureChannel,
    cmd: &Command,
) -> Result<Response, SmError> {
    match terminal::send_sm(card, sm, cmd, None) {
        Err(TerminalError::Sm(e)) => Err(e),
        other => Ok(other.unwrap()),
    }
}

fn bac(card: &mut VirtualCard, mrz_information: &str) -> SecureChannel {
    terminal::bac(card, mrz_information.as_bytes()).unwrap()
}

fn pace(
    card: &mut VirtualCard,
    protocol: PaceProtocol,
    parameter_id: u8,
    password: &PacePassword,
) -> Result<PaceOutcome, PaceError> {
    let config = PaceConfig {
        protocol,
        parameter_id,
        send_parameter_id: true,
    };
    match terminal::pace(card, config, password) {
        Err(TerminalError::Pace(e)) => Err(e),
        other => Ok(other.unwrap()),
    }
}

fn select_lds(card: &mut VirtualCard, sm: &mut SecureChannel) {
    let r = send_sm(
        card,
        sm,
        &commands::select(Select::DfName(&profile::LDS1_AID), FileReturn::None),
    )
    .unwrap();
    assert_eq!(r.status(), Status::Success);
}

/// SELECT (FCI for the size), then one extended-length READ BINARY, all under SM.
fn read_file(card: &mut VirtualCard, sm: &mut SecureChannel, fid: u16) -> Vec<u8> {
    let r = send_sm(
        card,
        sm,
        &commands::select(Select::ChildEf(fid), FileReturn::Fci),
    )
    .unwrap();
    assert_eq!(r.status(), Status::Success, "select {fid:04X}");
    let size = FileControl::parse(r.data()).unwrap().size.unwrap();
    let r = send_sm(card, sm, &commands::read_binary(0, size).unwrap()).unwrap();
    assert_eq!(r.status(), Status::Success, "read {fid:04X}");
    assert_eq!(r.data().len(), size);
    r.into_data()
}

/// Reads EF.COM, EF.SOD and every data group EF.COM lists, and checks them byte for byte.
fn read_everything(p: Profile, card: &mut VirtualCard, sm: &mut SecureChannel) {
    let files = chip_files(p).unwrap();
    select_lds(card, sm);
    let com = read_file(card, sm, profile::EF_COM.0);
    assert_eq!(com, files.com);
    let sod = read_file(card, sm, profile::EF_SOD.0);
    assert_eq!(sod, files.sod);
    let listed = EfCom::parse(&com).unwrap().data_groups;
    let mut read = Vec::new();
    for dg in listed {
        let bytes = read_file(card, sm, dg.fid());
        assert_eq!(Some(bytes.as_slice()), files.data_group(dg.number()));
        read.push((dg.number(), bytes));
    }
    let refs: Vec<(u8, &[u8])> = read.iter().map(|(n, b)| (*n, b.as_slice())).collect();
    let report = Sod::parse(&sod)
        .unwrap()
        .verify(Some(&store()), OffsetDateTime::now_utc(), &refs);
    assert!(report.is_valid(), "{}: {report:?}", p.name());
}

/// Active Authentication with a fresh challenge against the DG15 key.
fn active_authentication(
    card: &mut VirtualCard,
    sm: &mut SecureChannel,
    p: Profile,
) -> Result<(), aa_proto::AaError> {
    let files = chip_files(p).unwrap();
    let dg15 = Dg15::parse(files.data_group(15).unwrap()).unwrap();
    let ec_hash = files.data_group(14).and_then(|dg14| {
        SecurityInfos::parse_dg14(dg14)
            .unwrap()
            .iter()
            .find_map(|i| match i {
                SecurityInfo::ActiveAuthentication {
                    signature_algorithm,
                    ..
                } => AaHash::from_signature_oid(&signature_algorithm.dotted()),
                _ => None,
            })
    });
    let rnd = aa_proto::challenge(&mut OsRandom).unwrap();
    let r = send_sm(card, sm, &aa_proto::internal_authenticate(&rnd)).unwrap();
    assert_eq!(r.status(), Status::Success);
    aa_proto::verify(&dg15.subject_public_key_info, &rnd, r.data(), ec_hash)
}

/// Chip Authentication with the DG14 key; returns the new channel.
fn chip_authentication(
    card: &mut VirtualCard,
    sm: &mut SecureChannel,
    p: Profile,
) -> SecureChannel {
    let infos = SecurityInfos::parse_dg14(chip_files(p).unwrap().data_group(14).unwrap()).unwrap();
    let protocol = infos
        .iter()
        .find_map(|i| match i {
            SecurityInfo::ChipAuthentication { protocol, .. } => {
                CaProtocol::from_dotted(&protocol.dotted())
            }
            _ => None,
        })
        .unwrap();
    let key = infos
        .iter()
        .find_map(|i| match i {
            SecurityInfo::ChipAuthenticationPublicKey {
                subject_public_key_info,
                ..
            } => Some(subject_public_key_info.clone()),
            _ => None,
        })
        .unwrap();
    let t = CaTerminal::new(protocol, None, &key, &mut OsRandom).unwrap();
    let answers: Vec<Response> = t
        .commands()
        .unwrap()
        .iter()
        .map(|c| send_sm(card, sm, c).unwrap())
        .collect();
    t.finish(&answers).unwrap()
}

fn mrz_of(p: Profile) -> String {
    p.document().mrz_information().unwrap().to_string()
}

fn pace_password_can(p: Profile) -> PacePassword {
    PacePassword::can(p.document().can.unwrap())
}

#[test]
fn lds_application_refuses_plain_reads_before_access_control() {
    for p in Profile::ALL {
        let mut card = profile::card(p).unwrap();
        let r = send(
            &mut card,
            &commands::select(Select::DfName(&profile::LDS1_AID), FileReturn::None),
        );
        assert_eq!(r.status(), Status::Success, "{}", p.name());
        let r = send(&mut card, &commands::read_binary_sfi(0x1E, 0, 256).unwrap());
        assert_eq!(
            r.status(),
            Status::SecurityStatusNotSatisfied,
            "{}",
            p.name()
        );
    }
}

#[test]
fn emrtd_bac_reads_everything_and_passes_rsa_active_authentication() {
    let p = Profile::Bac;
    let mut card = profile::card(p).unwrap();
    // No EF.CardAccess: a terminal falls back to BAC.
    let r = send(&mut card, &commands::read_binary_sfi(0x1C, 0, 256).unwrap());
    assert_eq!(r.status(), Status::FileNotFound);
    let mut sm = bac(&mut card, &mrz_of(p));
    assert_eq!(sm.cipher(), Cipher::Tdes);
    read_everything(p, &mut card, &mut sm);
    active_authentication(&mut card, &mut sm, p).unwrap();
}

#[test]
fn emrtd_bac_rejects_a_wrong_mrz() {
    let mut card = profile::card(Profile::Bac).unwrap();
    let mut t = BacTerminal::new(DOC_PACE.mrz_information().unwrap().as_bytes()).unwrap();
    let r = send(&mut card, &t.get_challenge());
    let c = t.external_authenticate(&r, &mut OsRandom).unwrap();
    let r = send(&mut card, &c);
    assert!(t.finish(&r).is_err());
}

fn card_access_pace(p: Profile) -> (PaceProtocol, u8) {
    let files = chip_files(p).unwrap();
    let infos = SecurityInfos::parse_card_access(files.card_access.as_ref().unwrap()).unwrap();
    infos
        .pace()
        .find_map(|i| match i {
            SecurityInfo::Pace {
                protocol,
                parameter_id,
                ..
            } => Some((
                PaceProtocol::from_dotted(&protocol.dotted()).unwrap(),
                u8::try_from(parameter_id.unwrap()).unwrap(),
            )),
            _ => None,
        })
        .unwrap()
}

#[test]
fn emrtd_pace_with_mrz_and_can_then_ca_and_ecdsa_active_authentication() {
    let p = Profile::Pace;
    let (protocol, param) = card_access_pace(p);
    assert_eq!(protocol, PaceProtocol::EcdhGm(Cipher::Aes128));
    assert_eq!(param, 13);
    let mut card = profile::card(p).unwrap();

    let mrz = PacePassword::mrz(mrz_of(p).as_bytes()).unwrap();
    let mut sm = pace(&mut card, protocol, param, &mrz).unwrap().channel;
    read_everything(p, &mut card, &mut sm);

    let mut sm = pace(&mut card, protocol, param, &pace_password_can(p))
        .unwrap()
        .channel;
    let mut sm = chip_authentication(&mut card, &mut sm, p);
    read_everything(p, &mut card, &mut sm);
    active_authentication(&mut card, &mut sm, p).unwrap();
}

#[test]
fn emrtd_pace_rejects_a_wrong_can() {
    let p = Profile::Pace;
    let (protocol, param) = card_access_pace(p);
    let mut card = profile::card(p).unwrap();
    let err = pace(&mut card, protocol, param, &PacePassword::can("000000"))
        .err()
        .unwrap();
    assert!(matches!(err, PaceError::Rejected(_)), "{err:?}");
}

#[test]
fn emrtd_pace_cam_authenticates_the_chip_with_the_card_security_key() {
    let p = Profile::PaceCam;
    let (protocol, param) = card_access_pace(p);
    assert_eq!(protocol, PaceProtocol::EcdhCam(Cipher::Aes256));
    assert_eq!(param, 16);
    let mut card = profile::card(p).unwrap();
    // EF.CardSecurity is readable in the MF before PACE.
    let r = send(
        &mut card,
        &commands::select(Select::ChildEf(profile::EF_CARD_SECURITY), FileReturn::Fci),
    );
    let size = FileControl::parse(r.data()).unwrap().size.unwrap();
    let r = send(&mut card, &commands::read_binary(0, size).unwrap());
    let card_security = r.into_data();
    assert_eq!(
        &card_security,
        chip_files(p).unwrap().card_security.as_ref().unwrap()
    );

    let out = pace(&mut card, protocol, param, &pace_password_can(p)).unwrap();
    let sd = SignedData::parse(&card_security).unwrap();
    sd.verify_signature().unwrap();
    let spki = SecurityInfos::parse(&sd.content)
        .unwrap()
        .iter()
        .find_map(|i| match i {
            SecurityInfo::ChipAuthenticationPublicKey {
                subject_public_key_info,
                ..
            } => Some(subject_public_key_info.clone()),
            _ => None,
        })
        .unwrap();
    let ec = PKey::public_key_from_der(&spki).unwrap().ec_key().unwrap();
    let point = ec
        .public_key()
        .to_bytes(
            ec.group(),
            PointConversionForm::UNCOMPRESSED,
            &mut BigNumContext::new().unwrap(),
        )
        .unwrap();
    let evidence = out.chip_authentication.as_ref().unwrap();
    evidence.verify(&point).unwrap();
    // Another key does not match.
    let other = profile::chip_keys(Profile::Pace)
        .unwrap()
        .chip_authentication
        .unwrap()
        .ec_key()
        .unwrap();
    let other_point = other
        .public_key()
        .to_bytes(
            other.group(),
            PointConversionForm::UNCOMPRESSED,
            &mut BigNumContext::new().unwrap(),
        )
        .unwrap();
    assert!(evidence.verify(&other_point).is_err());
    let mut sm = out.channel;
    read_everything(p, &mut card, &mut sm);
}

#[test]
fn emrtd_clone_fails_active_authentication() {
    let p = Profile::Clone;
    let (protocol, param) = card_access_pace(p);
    let mut card = profile::card(p).unwrap();
    let mut sm = pace(&mut card, protocol, param, &pace_password_can(p))
        .unwrap()
        .channel;
    // Passive authentication still passes: the files are genuine.
    read_everything(p, &mut card, &mut sm);
    assert!(active_authentication(&mut card, &mut sm, p).is_err());
}

#[test]
fn emrtd_bad_mac_fails_secure_messaging_after_pace() {
    let p = Profile::BadMac;
    let (protocol, param) = card_access_pace(p);
    let mut card = profile::card(p).unwrap();
    let mut sm = pace(&mut card, protocol, param, &pace_password_can(p))
        .unwrap()
        .channel;
    let err = send_sm(
        &mut card,
        &mut sm,
        &commands::select(Select::DfName(&profile::LDS1_AID), FileReturn::None),
    )
    .unwrap_err();
    assert!(matches!(err, SmError::MacMismatch), "{err:?}");
}

#[test]
fn faulty_passive_authentication_profiles_still_open_a_session() {
    for p in [
        Profile::BadDgHash,
        Profile::BadDsSignature,
        Profile::UntrustedCsca,
    ] {
        let (protocol, param) = card_access_pace(p);
        let mut card = profile::card(p).unwrap();
        let mut sm = pace(&mut card, protocol, param, &pace_password_can(p))
            .unwrap()
            .channel;
        select_lds(&mut card, &mut sm);
        let dg11 = read_file(&mut card, &mut sm, 0x010B);
        assert_eq!(Some(dg11.as_slice()), chip_files(p).unwrap().data_group(11));
    }
}
