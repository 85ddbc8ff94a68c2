//! Our eMRTD terminal (`eid_card::emrtd`) against every virtual eMRTD of
//! `eid_hardware_mocks::emrtd`, written once and run in both tiers: in-process behind the
//! transport trait, and behind the real pcscd through vpcd.
//!
//! - good documents: full read, every check passes (access, chip authentication or PACE-CAM,
//!   active authentication over our challenge, passive authentication: signature, chain, each
//!   data group hash), and the data read is the chip's, byte for byte;
//! - faulty documents: exactly the faulty check fails, with the right reason, the others pass;
//! - a wrong CAN or MRZ is `Error::AccessDenied`, quickly;
//! - a card removed mid-read is `Error::CardRemoved`.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::{Duration, Instant};

use eid_card::Error;
use eid_card::emrtd::{self, AccessKey, AccessMethod, EmrtdReport, PassiveAuth, ReadOptions};
use eid_card::secure::SmFailure;
use eid_hardware_mocks::emrtd::profile::{self, Profile, chip_files};
use eid_hardware_mocks::emrtd::trust::trust;
use eid_hardware_mocks::engine::VirtualCard;
use eid_protocols::aa::{self, AaHash};
use eid_protocols::lds::Dg15;
use eid_protocols::pa::{Check, CscaStore, PassiveAuthReport};
use eid_tests::{InProcessRig, PcscRig, Rig, vpcd_like};

/// The Active Authentication challenge we give (as the bridge would, from origin and nonce).
const CHALLENGE: [u8; 8] = [0x4F, 0x52, 0x49, 0x47, 0x49, 0x4E, 0x21, 0x07];

/// Longest a refused access may take: a wrong key must fail at once, not hang.
const ACCESS_DENIED_WITHIN: Duration = Duration::from_secs(10);

/// Runs `scenario(rig, profile)` on an in-process card and on the same card behind pcscd.
macro_rules! both_tiers {
    ($name:ident, $scenario:ident, $profile:expr) => {
        mod $name {
            use super::*;
            #[test]
            fn in_process() {
                let mut rig = InProcessRig::new(card($profile), vpcd_like());
                super::$scenario(&mut rig, $profile);
            }
            #[test]
            fn through_pcscd() {
                if let Some(mut rig) = PcscRig::new(card($profile)) {
                    super::$scenario(&mut rig, $profile);
                }
            }
        }
    };
}

fn card(p: Profile) -> VirtualCard {
    profile::card(p).expect("virtual eMRTD")
}

/// The verifier's trust store: the `UTO` CSCA (not the rogue one).
fn store() -> CscaStore {
    let mut store = CscaStore::new();
    let added = store
        .add_certificates(&trust().unwrap().csca.cert_der().unwrap())
        .unwrap();
    assert_eq!(added, 1);
    store
}

fn can_key(p: Profile) -> AccessKey {
    AccessKey::can(p.document().can.expect("the profile has a CAN")).unwrap()
}

fn mrz_key(p: Profile) -> AccessKey {
    let d = p.document();
    AccessKey::mrz(d.document_number, d.date_of_birth, d.date_of_expiry).unwrap()
}

fn read(rig: &mut dyn Rig, key: &AccessKey) -> Result<EmrtdReport, Error> {
    let store = store();
    let mut t = rig.connect().unwrap();
    emrtd::read_document(
        &mut *t,
        key,
        ReadOptions {
            csca: Some(&store),
            challenge: Some(CHALLENGE),
            progress: None,
        },
    )
}

fn pa(report: &EmrtdReport) -> &PassiveAuthReport {
    match &report.passive_authentication {
        PassiveAuth::Report(r) => r,
        PassiveAuth::Failed { reason } => panic!("no passive authentication report: {reason}"),
    }
}

fn reason(check: &Check) -> &str {
    match check {
        Check::Failed { reason } => reason,
        other => panic!("expected a failed check, got {other:?}"),
    }
}

/// What every read of a (good or faulty) profile shows: access as the profile offers it, the
/// chip's files byte for byte, the data parsed.
fn assert_read_as_documented(tier: &str, p: Profile, report: &EmrtdReport, password: &str) {
    let name = p.name();
    assert!(report.access.check.is_passed(), "{tier} {name}");
    assert_eq!(report.access.pace_fallback_reason, None, "{tier} {name}");
    match (p.access(), &report.access.method) {
        (profile::Access::Bac, AccessMethod::Bac) => {}
        (
            profile::Access::PaceGm { .. },
            AccessMethod::Pace {
                oid, password: pw, ..
            },
        ) => {
            assert_eq!(
                oid, "0.4.0.127.0.7.2.2.4.2.2",
                "{tier} {name}: PACE-GM AES-128"
            );
            assert_eq!(*pw, password);
        }
        (
            profile::Access::PaceCam { .. },
            AccessMethod::Pace {
                oid, password: pw, ..
            },
        ) => {
            assert_eq!(
                oid, "0.4.0.127.0.7.2.2.4.6.4",
                "{tier} {name}: PACE-CAM AES-256"
            );
            assert_eq!(*pw, password);
        }
        (expected, got) => panic!("{tier} {name}: expected {expected:?}, got {got:?}"),
    }
    let files = chip_files(p).unwrap();
    assert_eq!(report.raw.com.as_deref(), Some(files.com.as_slice()));
    assert_eq!(report.raw.sod.as_deref(), Some(files.sod.as_slice()));
    let read: Vec<(u8, &[u8])> = report
        .raw
        .data_groups
        .iter()
        .map(|(n, f)| (*n, f.as_slice()))
        .collect();
    let on_chip: Vec<(u8, &[u8])> = {
        let mut v: Vec<(u8, &[u8])> = files
            .data_groups
            .iter()
            .map(|(n, f)| (*n, f.as_slice()))
            .collect();
        v.sort_by_key(|(n, _)| *n);
        v
    };
    assert!(read == on_chip, "{tier} {name}: data groups differ");
    assert!(
        report.parse_errors.is_empty(),
        "{tier} {name}: {:?}",
        report.parse_errors
    );

    let doc = p.document();
    let dg1 = report.dg1.as_ref().expect("DG1");
    assert_eq!(dg1.mrz.document_number, doc.document_number);
    assert_eq!(dg1.mrz.primary_identifier, doc.surname);
    assert!(dg1.mrz.checks.all_valid());
    let photo = report.photo.as_ref().expect("DG2 face");
    assert_eq!((photo.width, photo.height), (300, 400));
    assert!(photo.png.starts_with(b"\x89PNG\r\n\x1a\n"), "{tier} {name}");
    let dg11 = report.dg11.as_ref().expect("DG11");
    assert_eq!(dg11.place_of_birth.as_deref(), Some(doc.place_of_birth));
    assert!(report.dg12.is_some());
    assert!(report.protected_apdus > 0);
}

/// Active Authentication: our challenge was used, and the signature verifies with DG15 again,
/// outside the card code (as a server would).
fn assert_aa_evidence(report: &EmrtdReport, genuine: bool) {
    let evidence = report
        .active_authentication_evidence
        .as_ref()
        .expect("AA evidence");
    assert_eq!(evidence.challenge, CHALLENGE);
    let dg15 = Dg15::parse(&report.raw.data_groups[&15]).unwrap();
    let ec_hash = dg15.public_key.ec_key().is_ok().then_some(AaHash::Sha256);
    let verdict = aa::verify(
        &dg15.subject_public_key_info,
        &CHALLENGE,
        &evidence.signature,
        ec_hash,
    );
    assert_eq!(verdict.is_ok(), genuine, "{verdict:?}");
}

/// Every check of a good document passes.
fn assert_all_checks_pass(tier: &str, p: Profile, report: &EmrtdReport) {
    let name = p.name();
    match p.access() {
        profile::Access::Bac => assert!(
            matches!(report.chip_authentication, Check::NotPerformed { .. }),
            "{tier} {name}: a BAC passport has no DG14: {:?}",
            report.chip_authentication
        ),
        profile::Access::PaceGm { .. } => {
            assert!(
                report.chip_authentication.is_passed(),
                "{tier} {name}: {:?}",
                report.chip_authentication
            );
        }
        profile::Access::PaceCam { .. } => {
            assert!(
                report.chip_authentication.is_passed(),
                "{tier} {name}: {:?}",
                report.chip_authentication
            );
            assert!(
                matches!(
                    report.access.method,
                    AccessMethod::Pace {
                        chip_authenticated: true,
                        ..
                    }
                ),
                "{tier} {name}: PACE-CAM not confirmed"
            );
        }
    }
    if p.has_active_authentication() {
        assert!(
            report.active_authentication.is_passed(),
            "{tier} {name}: {:?}",
            report.active_authentication
        );
        assert_aa_evidence(report, true);
    } else {
        assert!(matches!(
            report.active_authentication,
            Check::NotPerformed { .. }
        ));
        assert!(report.active_authentication_evidence.is_none());
    }
    let pa = pa(report);
    assert!(
        pa.signature.is_passed(),
        "{tier} {name}: {:?}",
        pa.signature
    );
    assert!(
        pa.certificate_chain.is_passed(),
        "{tier} {name}: {:?}",
        pa.certificate_chain
    );
    let mut checked: Vec<u8> = pa.data_groups.iter().map(|d| d.data_group).collect();
    checked.sort_unstable();
    let mut listed = p.data_groups().to_vec();
    listed.sort_unstable();
    assert_eq!(
        checked, listed,
        "{tier} {name}: every data group hash checked"
    );
    for dg in &pa.data_groups {
        assert!(
            dg.check.is_passed(),
            "{tier} {name}: DG{} {:?}",
            dg.data_group,
            dg.check
        );
    }
    assert!(report.passive_authentication.is_valid());
}

fn full_read_with_mrz(rig: &mut dyn Rig, p: Profile) {
    let report =
        read(rig, &mrz_key(p)).unwrap_or_else(|e| panic!("{} {}: {e:?}", rig.tier(), p.name()));
    assert_read_as_documented(rig.tier(), p, &report, "mrz");
    assert_all_checks_pass(rig.tier(), p, &report);
}
both_tiers!(bac_full_read, full_read_with_mrz, Profile::Bac);
both_tiers!(pace_full_read_mrz, full_read_with_mrz, Profile::Pace);
both_tiers!(pace_cam_full_read_mrz, full_read_with_mrz, Profile::PaceCam);

fn full_read_with_can(rig: &mut dyn Rig, p: Profile) {
    let report =
        read(rig, &can_key(p)).unwrap_or_else(|e| panic!("{} {}: {e:?}", rig.tier(), p.name()));
    assert_read_as_documented(rig.tier(), p, &report, "can");
    assert_all_checks_pass(rig.tier(), p, &report);
}
both_tiers!(pace_full_read_can, full_read_with_can, Profile::Pace);
both_tiers!(pace_cam_full_read_can, full_read_with_can, Profile::PaceCam);

/// Two reads on one connection: the first leaves LDS1 current with a secure-messaging session;
/// the second's plain SELECT MF ends that session (ICAO 9303-11 §9.8.3) and access starts over.
fn two_reads_on_one_connection(rig: &mut dyn Rig, p: Profile) {
    let store = store();
    let mut t = rig.connect().unwrap();
    for round in 0..2 {
        let report = emrtd::read_document(
            &mut *t,
            &can_key(p),
            ReadOptions {
                csca: Some(&store),
                challenge: Some(CHALLENGE),
                progress: None,
            },
        )
        .unwrap_or_else(|e| panic!("{} {} read {round}: {e:?}", rig.tier(), p.name()));
        assert_all_checks_pass(rig.tier(), p, &report);
    }
}
both_tiers!(pace_two_reads, two_reads_on_one_connection, Profile::Pace);

/// Without a CSCA store nothing can be trusted: the chain is not performed, and PACE-CAM is not
/// confirmed (EF.CardSecurity cannot be authenticated), yet the read completes.
fn read_without_trust_store(rig: &mut dyn Rig, p: Profile) {
    let mut t = rig.connect().unwrap();
    let report = emrtd::read_document(&mut *t, &can_key(p), ReadOptions::default()).unwrap();
    let pa = pa(&report);
    assert!(pa.signature.is_passed());
    assert!(
        matches!(pa.certificate_chain, Check::NotPerformed { .. }),
        "{:?}",
        pa.certificate_chain
    );
    assert!(!report.passive_authentication.is_valid());
    assert!(
        matches!(&report.chip_authentication, Check::NotPerformed { reason } if reason.contains("CSCA")),
        "{:?}",
        report.chip_authentication
    );
    assert!(matches!(
        report.access.method,
        AccessMethod::Pace {
            chip_authenticated: false,
            ..
        }
    ));
}
both_tiers!(
    pace_cam_without_trust_store,
    read_without_trust_store,
    Profile::PaceCam
);

/// The faulty documents: the one faulty check fails, with its reason; the others pass.
fn faulty_document(rig: &mut dyn Rig, p: Profile) {
    let tier = rig.tier();
    let name = p.name();
    let report = read(rig, &can_key(p)).unwrap_or_else(|e| panic!("{tier} {name}: {e:?}"));
    assert_read_as_documented(tier, p, &report, "can");
    assert!(!report.passive_authentication.is_valid() || p == Profile::Clone);
    let pa = pa(&report);
    let others_pass = |skip_dg: Option<u8>| {
        for dg in &pa.data_groups {
            if Some(dg.data_group) != skip_dg {
                assert!(
                    dg.check.is_passed(),
                    "{tier} {name}: DG{} {:?}",
                    dg.data_group,
                    dg.check
                );
            }
        }
    };
    // The chip holds its keys in every faulty profile; CA and AA count only while EF.SOD
    // vouches for DG14 and DG15, though.
    let sod_vouches = matches!(p, Profile::BadDgHash | Profile::Clone);
    if sod_vouches {
        assert!(report.chip_authentication.is_passed(), "{tier} {name}");
    } else {
        let why = reason(&report.chip_authentication);
        assert!(
            why.contains("DG14 is not authenticated"),
            "{tier} {name}: {why}"
        );
        let why = reason(&report.active_authentication);
        assert!(
            why.contains("DG15 is not authenticated"),
            "{tier} {name}: {why}"
        );
        assert_aa_evidence(&report, true);
    }
    match p {
        Profile::BadDgHash => {
            let dg11 = pa.data_group(11).unwrap();
            assert!(reason(dg11).contains("hash"), "{tier} {name}: {dg11:?}");
            others_pass(Some(11));
            assert!(pa.signature.is_passed() && pa.certificate_chain.is_passed());
            assert!(report.active_authentication.is_passed());
        }
        Profile::BadDsSignature => {
            assert!(
                reason(&pa.signature).contains("signature"),
                "{tier} {name}: {:?}",
                pa.signature
            );
            // The DS certificate itself is genuine.
            assert!(
                pa.certificate_chain.is_passed(),
                "{:?}",
                pa.certificate_chain
            );
            others_pass(None);
        }
        Profile::UntrustedCsca => {
            let why = reason(&pa.certificate_chain);
            assert!(!why.is_empty(), "{tier} {name}");
            assert!(
                pa.signature.is_passed(),
                "{tier} {name}: signature made by the rogue DS verifies"
            );
            others_pass(None);
        }
        Profile::Clone => {
            // The files are genuine: passive authentication passes...
            assert!(report.passive_authentication.is_valid(), "{tier} {name}");
            // ...but the chip does not hold the DG15 key.
            let why = reason(&report.active_authentication);
            assert!(!why.is_empty());
            assert_aa_evidence(&report, false);
        }
        other => panic!("{other:?} is not a faulty profile read to the end"),
    }
}
both_tiers!(bad_dg_hash, faulty_document, Profile::BadDgHash);
both_tiers!(bad_ds_signature, faulty_document, Profile::BadDsSignature);
both_tiers!(untrusted_csca, faulty_document, Profile::UntrustedCsca);
both_tiers!(clone_chip, faulty_document, Profile::Clone);

/// A chip whose answers fail their MAC: the read stops at the first protected answer with the
/// typed secure-messaging error, and nothing is reported as read.
fn bad_mac(rig: &mut dyn Rig, p: Profile) {
    let err = read(rig, &can_key(p)).unwrap_err();
    assert!(
        matches!(err, Error::SecureMessaging(SmFailure::BadMac)),
        "{}: {err:?}",
        rig.tier()
    );
    assert_eq!(err.code(), "secure-messaging-failed");
}
both_tiers!(bad_mac_detected, bad_mac, Profile::BadMac);

fn assert_denied_quickly(rig: &mut dyn Rig, key: &AccessKey) {
    let started = Instant::now();
    let err = read(rig, key).unwrap_err();
    let took = started.elapsed();
    assert!(
        matches!(err, Error::AccessDenied),
        "{}: {err:?}",
        rig.tier()
    );
    assert_eq!(err.code(), "access-denied");
    assert!(took < ACCESS_DENIED_WITHIN, "{}: took {took:?}", rig.tier());
}

/// A wrong CAN and a wrong MRZ are refused with `AccessDenied`; the right key still opens the
/// chip afterwards (a new connection, as the user would retry).
fn wrong_keys(rig: &mut dyn Rig, p: Profile) {
    let d = p.document();
    if d.can.is_some() {
        assert_denied_quickly(rig, &AccessKey::can("000000").unwrap());
    } else {
        // A BAC-only passport cannot be opened with a CAN at all: a clear, different error.
        let err = read(rig, &AccessKey::can("123456").unwrap()).unwrap_err();
        assert!(
            matches!(&err, Error::AccessFailed(why) if why.contains("MRZ")),
            "{}: {err:?}",
            rig.tier()
        );
    }
    // Wrong date of birth (valid check digits: the chip, not our parser, refuses it).
    let wrong = AccessKey::mrz(d.document_number, "010101", d.date_of_expiry).unwrap();
    assert_denied_quickly(rig, &wrong);
    let report = read(rig, &mrz_key(p)).unwrap();
    assert!(report.access.check.is_passed());
}
both_tiers!(bac_wrong_keys, wrong_keys, Profile::Bac);
both_tiers!(pace_wrong_keys, wrong_keys, Profile::Pace);
both_tiers!(pace_cam_wrong_keys, wrong_keys, Profile::PaceCam);

/// The card disappears in the middle of the read (after access, during the data groups).
fn removed_mid_read(rig: &mut dyn Rig, p: Profile) {
    let key = if p.document().can.is_some() {
        can_key(p)
    } else {
        mrz_key(p)
    };
    // How many APDUs a full read takes, then pull the card half-way through the next one.
    let before = rig.apdu_count();
    read(rig, &key).unwrap();
    let full = rig.apdu_count() - before;
    assert!(full > 8, "{}: {full} APDUs", rig.tier());
    let store = store();
    let mut t = rig.connect().unwrap();
    rig.remove_after_apdus(full / 2);
    let started = Instant::now();
    let err = emrtd::read_document(
        &mut *t,
        &key,
        ReadOptions {
            csca: Some(&store),
            challenge: Some(CHALLENGE),
            progress: None,
        },
    )
    .unwrap_err();
    assert!(matches!(err, Error::CardRemoved), "{}: {err:?}", rig.tier());
    assert!(err.is_retryable());
    assert!(started.elapsed() < ACCESS_DENIED_WITHIN);
}
both_tiers!(bac_removed_mid_read, removed_mid_read, Profile::Bac);
both_tiers!(pace_removed_mid_read, removed_mid_read, Profile::Pace);

/// Progress is reported for every file, ending at each file's full size.
#[test]
fn progress_reports_every_file_to_its_end() {
    use std::sync::{Arc, Mutex};
    let p = Profile::Pace;
    let mut rig = InProcessRig::new(card(p), vpcd_like());
    let mut t = rig.connect().unwrap();
    type Seen = Vec<(String, usize, Option<usize>)>;
    let seen: Arc<Mutex<Seen>> = Arc::default();
    let sink = Arc::clone(&seen);
    let report = emrtd::read_document(
        &mut *t,
        &can_key(p),
        ReadOptions {
            csca: None,
            challenge: None,
            progress: Some(Box::new(move |pr: &emrtd::Progress| {
                sink.lock()
                    .unwrap()
                    .push((pr.file.name.to_owned(), pr.read, pr.total));
            })),
        },
    )
    .unwrap();
    let seen = seen.lock().unwrap();
    let dg2 = report.raw.data_groups[&2].len();
    let last_dg2 = seen.iter().rev().find(|(n, ..)| n == "DG2").unwrap();
    assert_eq!((last_dg2.1, last_dg2.2), (dg2, Some(dg2)));
    for name in ["EF.COM", "EF.SOD", "DG1", "DG11", "DG12", "DG14", "DG15"] {
        assert!(seen.iter().any(|(n, ..)| n == name), "{name}");
    }
    // A random challenge when none is given, still verified; without a CSCA store the DG15
    // key is not authenticated, so AA is not reported as passed.
    assert!(
        matches!(&report.active_authentication, Check::NotPerformed { reason } if reason.contains("DG15")),
        "{:?}",
        report.active_authentication
    );
    assert!(report.active_authentication_evidence.is_some());
}

/// A PACE-CAM chip whose EF.CardSecurity (validly signed by the genuine Document Signer) names
/// another chip key than the one the chip proves in PACE: chip authentication fails, it is not
/// silently reported as passed.
fn pace_cam_with_a_foreign_card_security_key() -> VirtualCard {
    use eid_hardware_mocks::emrtd::chip::EmrtdApplet;
    use eid_hardware_mocks::emrtd::lds::{self, oid, param_id};
    use eid_hardware_mocks::pki::{self, Curve, KeySpec};
    let p = Profile::PaceCam;
    let mut files = chip_files(p).unwrap().clone();
    let foreign = pki::generate_key(KeySpec::Ec(Curve::BrainpoolP384r1)).unwrap();
    let infos = lds::security_infos(&[
        lds::pace_info(&oid::PACE_ECDH_CAM_AES_256, param_id::BRAINPOOL_P384R1),
        lds::ca_info(&oid::CA_ECDH_AES_256, None),
        lds::ca_public_key_info(&foreign.public_key_to_der().unwrap(), None),
    ]);
    let ds = &trust().unwrap().document_signer;
    files.card_security = Some(
        pki::cms_sign(
            pki::OID_SECURITY_OBJECT,
            &infos,
            &ds.cert,
            &ds.key,
            openssl::hash::MessageDigest::sha256(),
        )
        .unwrap(),
    );
    VirtualCard::builder(profile::atr(), profile::file_system(&files))
        .applet(EmrtdApplet::new(profile::chip_config(p).unwrap()))
        .build()
}

fn foreign_cam_key_fails_chip_authentication(rig: &mut dyn Rig) {
    let p = Profile::PaceCam;
    let report = read(rig, &can_key(p)).unwrap();
    let why = reason(&report.chip_authentication);
    assert!(
        why.contains("does not match the key in EF.CardSecurity"),
        "{}: {why}",
        rig.tier()
    );
    assert!(matches!(
        report.access.method,
        AccessMethod::Pace {
            chip_authenticated: false,
            ..
        }
    ));
    // The LDS files themselves are genuine.
    assert!(report.passive_authentication.is_valid());
}

mod foreign_cam_key {
    use super::*;
    #[test]
    fn in_process() {
        let mut rig = InProcessRig::new(pace_cam_with_a_foreign_card_security_key(), vpcd_like());
        foreign_cam_key_fails_chip_authentication(&mut rig);
    }
    #[test]
    fn through_pcscd() {
        if let Some(mut rig) = PcscRig::new(pace_cam_with_a_foreign_card_security_key()) {
            foreign_cam_key_fails_chip_authentication(&mut rig);
        }
    }
}

// ---- security review: keys trusted only through PA, no silent BAC downgrade ----

/// A Pace profile card whose chip holds a key of the attacker's and whose DG14 names it: the
/// chip passes the CA exchange, but EF.SOD does not vouch for that DG14.
fn pace_with_a_forged_dg14() -> VirtualCard {
    use eid_hardware_mocks::emrtd::chip::EmrtdApplet;
    use eid_hardware_mocks::emrtd::lds::{self, oid, param_id};
    let p = Profile::Pace;
    let mut files = chip_files(p).unwrap().clone();
    let mut config = profile::chip_config(p).unwrap();
    let ca = config
        .ca
        .as_mut()
        .expect("the Pace profile has chip authentication");
    let forged = openssl::ec::EcKey::generate(ca.key.group()).unwrap();
    let spki = openssl::pkey::PKey::from_ec_key(forged.clone())
        .unwrap()
        .public_key_to_der()
        .unwrap();
    ca.key = forged;
    let dg14 = lds::dg14(&[
        lds::pace_info(&oid::PACE_ECDH_GM_AES_128, param_id::BRAINPOOL_P256R1),
        lds::ca_info(&oid::CA_ECDH_AES_128, None),
        lds::ca_public_key_info(&spki, None),
    ]);
    for (n, file) in files.data_groups.iter_mut() {
        if *n == 14 {
            *file = dg14.clone();
        }
    }
    VirtualCard::builder(profile::atr(), profile::file_system(&files))
        .applet(EmrtdApplet::new(config))
        .build()
}

#[test]
fn chip_authentication_with_a_key_the_sod_does_not_vouch_for_fails() {
    let mut rig = InProcessRig::new(pace_with_a_forged_dg14(), vpcd_like());
    let report = read(&mut rig, &can_key(Profile::Pace)).unwrap();
    let dg14 = pa(&report).data_group(14).unwrap();
    assert!(dg14.is_failed(), "{dg14:?}");
    let why = reason(&report.chip_authentication);
    assert!(why.contains("DG14"), "{why}");
}

/// A card offering PACE and BAC, EF.CardAccess kept or stripped.
fn pace_and_bac_card(strip_card_access: bool) -> VirtualCard {
    use eid_hardware_mocks::emrtd::chip::EmrtdApplet;
    let p = Profile::Pace;
    let mut files = chip_files(p).unwrap().clone();
    if strip_card_access {
        files.card_access = None;
    }
    let mut config = profile::chip_config(p).unwrap();
    config.bac = true;
    VirtualCard::builder(profile::atr(), profile::file_system(&files))
        .applet(EmrtdApplet::new(config))
        .build()
}

/// Corrupts the chip's PACE mapping key (the answer to GENERAL AUTHENTICATE with `81`).
struct CorruptMapping(Box<dyn eid_card::Transport>);

impl eid_card::Transport for CorruptMapping {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, Error> {
        let mut answer = self.0.transmit(apdu)?;
        if apdu.starts_with(&[0x10, 0x86]) && apdu.get(7) == Some(&0x81) && answer.len() > 3 {
            let n = answer.len();
            answer[n - 3] ^= 0x01;
        }
        Ok(answer)
    }
    fn atr(&self) -> &[u8] {
        self.0.atr()
    }
    fn reader_name(&self) -> &str {
        self.0.reader_name()
    }
    fn capabilities(&self) -> eid_card::ReaderCapabilities {
        self.0.capabilities()
    }
    fn transaction(&mut self) -> Result<Box<dyn eid_card::Transport + '_>, Error> {
        Ok(Box::new(eid_card::Reborrow(self)))
    }
    fn reconnect(&mut self, reset: bool) -> Result<(), Error> {
        self.0.reconnect(reset)
    }
}

#[test]
fn a_disturbed_pace_does_not_fall_back_to_bac() {
    let mut rig = InProcessRig::new(pace_and_bac_card(false), vpcd_like());
    // Undisturbed, the card is read with PACE.
    let report = read(&mut rig, &mrz_key(Profile::Pace)).unwrap();
    assert!(matches!(report.access.method, AccessMethod::Pace { .. }));
    let mut t = CorruptMapping(rig.connect().unwrap());
    let err =
        emrtd::read_document(&mut t, &mrz_key(Profile::Pace), ReadOptions::default()).unwrap_err();
    assert!(
        matches!(&err, Error::AccessFailed(why) if why.contains("PACE")),
        "{err:?}"
    );
}

#[test]
fn a_stripped_card_access_is_reported_as_a_downgrade() {
    let mut rig = InProcessRig::new(pace_and_bac_card(true), vpcd_like());
    let report = read(&mut rig, &mrz_key(Profile::Pace)).unwrap();
    assert_eq!(report.access.method, AccessMethod::Bac);
    assert!(pa(&report).data_group(14).unwrap().is_passed());
    let why = reason(&report.access.check);
    assert!(why.contains("downgraded"), "{why}");
    assert!(report.access.pace_fallback_reason.is_some());
}

/// `Detector::with_known_cards` names a virtual eMRTD by the LDS1 AID, without access control.
fn detected_as_emrtd(rig: &mut dyn Rig, p: Profile) {
    use eid_card::detect::{Detector, Evidence};
    let mut t = rig.connect().unwrap();
    let found = Detector::with_known_cards()
        .detect(&mut eid_card::Session::new(&mut *t))
        .unwrap();
    assert_eq!(found.kind, eid_card::emrtd::EMRTD, "{} {p:?}", rig.tier());
    assert!(matches!(found.evidence, Evidence::Aid { .. }));
}
both_tiers!(bac_detected, detected_as_emrtd, Profile::Bac);
both_tiers!(pace_detected, detected_as_emrtd, Profile::Pace);
both_tiers!(pace_cam_detected, detected_as_emrtd, Profile::PaceCam);
