//! The Citizen Card CC2 over its contactless interface (`pteid-cc2-contactless`): PACE with the
//! CAN (`eid_card::emrtd::open_contactless_cc2`), then the unchanged Citizen Card application
//! (`eid_card::pteid`) over secure messaging: identity, photo, certificates, SOD, PIN status and
//! verification, signatures verified with OpenSSL against the card's certificates. Both tiers:
//! in-process, and behind the real pcscd through vpcd.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::{Duration, Instant};

use eid_card::emrtd::{AccessKey, open_contactless_cc2};
use eid_card::pteid::{
    CertKind, Generation, HashAlg, KeyRef, Pin, PinRef, PinStatus, PteidCard, RsaPadding,
};
use eid_card::secure::SecureTransport;
use eid_card::{Error, Reborrow, Transport};
use eid_hardware_mocks::emrtd::cc2;
use eid_hardware_mocks::pteid::{CardPki, Identity};
use eid_protocols::pa::{Check, CscaStore};
use eid_tests::{InProcessRig, PcscRig, Rig, vpcd_like};

/// Runs `scenario` on a fresh contactless CC2 in each tier (pcscd skips without pcscd).
macro_rules! both_tiers {
    ($name:ident) => {
        mod $name {
            use super::*;
            #[test]
            fn in_process() {
                let built = cc2::cc2_contactless_default().expect("contactless CC2");
                let mut rig = InProcessRig::new(built.card, vpcd_like());
                super::$name(&mut rig, &built.pki);
            }
            #[test]
            fn through_pcscd() {
                let built = cc2::cc2_contactless_default().expect("contactless CC2");
                if let Some(mut rig) = PcscRig::new(built.card) {
                    super::$name(&mut rig, &built.pki);
                }
            }
        }
    };
}

fn can() -> AccessKey {
    AccessKey::can(&Identity::default().can).unwrap()
}

fn pin(s: &str) -> Pin {
    Pin::new(s).unwrap()
}

/// PACE with the CAN over a connection.
fn open(t: &mut dyn Transport) -> SecureTransport<Reborrow<'_>> {
    open_contactless_cc2(Reborrow(t), &can()).unwrap_or_else(|e| panic!("PACE: {e:?}"))
}

fn verify_with_openssl(cert: &openssl::x509::X509, hash: HashAlg, data: &[u8], sig: &[u8]) -> bool {
    let key = cert.public_key().unwrap();
    let mut v = openssl::sign::Verifier::new(hash.message_digest(), &key).unwrap();
    v.update(data).unwrap();
    v.verify(sig).unwrap()
}

/// `openssl dgst -sha256 -verify <public key of cert> -signature <sig> <data>` succeeds.
fn openssl_cli_verifies(cert: &openssl::x509::X509, data: &[u8], der_signature: &[u8]) {
    let dir = std::env::temp_dir().join(format!(
        "cc2-contactless-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let key = dir.join("auth.pub.pem");
    let sig = dir.join("sig.der");
    let msg = dir.join("data");
    std::fs::write(
        &key,
        cert.public_key().unwrap().public_key_to_pem().unwrap(),
    )
    .unwrap();
    std::fs::write(&sig, der_signature).unwrap();
    std::fs::write(&msg, data).unwrap();
    let out = std::process::Command::new("openssl")
        .args(["dgst", "-sha256", "-verify"])
        .arg(&key)
        .arg("-signature")
        .arg(&sig)
        .arg(&msg)
        .output()
        .expect("the openssl command");
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("Verified OK"),
        "openssl: {} {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn identity_certificates_and_sod(rig: &mut dyn Rig, pki: &CardPki) {
    let who = rig.tier();
    let profile = Identity::default();
    let mut t = rig.connect().unwrap();
    let mut sm = open(&mut *t);
    {
        let mut card = PteidCard::open(&mut sm).unwrap();
        assert_eq!(card.generation(), Generation::Cc2, "{who}");

        let id = card.read_identity().unwrap();
        assert_eq!(id.surname, profile.surname, "{who}");
        assert_eq!(id.given_names, profile.given_name);
        assert_eq!(id.civilian_id, profile.civilian_id);
        assert_eq!(id.document_number, profile.document_number);
        assert_eq!(id.nationality, profile.nationality);
        assert_eq!(id.tax_no, profile.tax_no);
        assert_eq!(id.date_of_birth.raw, profile.date_of_birth);
        assert_eq!(id.validity_end.raw, profile.validity_end_date);
        assert_eq!(id.mrz.len(), 3, "{:?}", id.mrz);
        let png = id.photo.to_png().unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");

        let certs = card.read_certificates().unwrap();
        let auth = certs
            .iter()
            .find(|c| c.kind == CertKind::Authentication)
            .unwrap();
        let sign = certs
            .iter()
            .find(|c| c.kind == CertKind::Signature)
            .unwrap();
        assert_eq!(auth.der, pki.auth_cert.to_der().unwrap(), "{who}");
        assert_eq!(sign.der, pki.sign_cert.to_der().unwrap(), "{who}");
        assert_eq!(auth.civil_id.as_deref(), Some(profile.civilian_id.as_str()));

        let mut store = CscaStore::new();
        store.add_certificates(&pki.root.to_der().unwrap()).unwrap();
        let sod = card
            .verify_sod(&id, None, Some(&store), time::OffsetDateTime::now_utc())
            .unwrap();
        assert!(sod.is_valid(), "{who}: {sod:?}");
        assert_eq!(sod.integrity, Check::Passed);
    }
    // Every APDU went under secure messaging, and the channel is still good.
    assert!(sm.is_open(), "{who}");
    assert!(sm.apdu_count() > 10, "{who}: {}", sm.apdu_count());
}
both_tiers!(identity_certificates_and_sod);

fn pins_and_signatures(rig: &mut dyn Rig, pki: &CardPki) {
    let who = rig.tier();
    let profile = Identity::default();
    let mut t = rig.connect().unwrap();
    let mut sm = open(&mut *t);
    let mut card = PteidCard::open(&mut sm).unwrap();
    // PIN status without spending a try, then a wrong PIN (one try), then the right one.
    assert_eq!(
        card.pin_status(PinRef::Auth).unwrap(),
        PinStatus::NotVerified { tries_left: 3 },
        "{who}"
    );
    let err = card.verify_pin(PinRef::Auth, &pin("9999")).unwrap_err();
    assert!(
        matches!(err, Error::WrongPin { retries_left: 2 }),
        "{who}: {err:?}"
    );
    card.verify_pin(PinRef::Auth, &pin(&profile.pins.auth))
        .unwrap();
    assert_eq!(card.pin_status(PinRef::Auth).unwrap(), PinStatus::Verified);

    // An authentication signature (as a TLS client would ask), verified with OpenSSL against
    // the authentication certificate.
    let challenge = b"TLS 1.3, client CertificateVerify content";
    for hash in [HashAlg::Sha256, HashAlg::Sha384] {
        // On the CC2 the application logs the PIN out after every signature.
        if card.pin_status(PinRef::Auth).unwrap() != PinStatus::Verified {
            card.verify_pin(PinRef::Auth, &pin(&profile.pins.auth))
                .unwrap();
        }
        let digest = openssl::hash::hash(hash.message_digest(), challenge).unwrap();
        let sig = card
            .sign(KeyRef::Auth, hash, &digest, RsaPadding::Pkcs1v15)
            .unwrap();
        assert_eq!(sig.raw.len(), 64, "{who}: P-256 r || s");
        let der = sig.der.as_ref().unwrap();
        assert!(
            verify_with_openssl(&pki.auth_cert, hash, challenge, der),
            "{who} {hash:?}"
        );
        assert!(!verify_with_openssl(&pki.sign_cert, hash, challenge, der));
    }

    // The same with the openssl command line, as a relying party would check it.
    if card.pin_status(PinRef::Auth).unwrap() != PinStatus::Verified {
        card.verify_pin(PinRef::Auth, &pin(&profile.pins.auth))
            .unwrap();
    }
    let digest = openssl::hash::hash(HashAlg::Sha256.message_digest(), challenge).unwrap();
    let sig = card
        .sign(KeyRef::Auth, HashAlg::Sha256, &digest, RsaPadding::Pkcs1v15)
        .unwrap();
    openssl_cli_verifies(&pki.auth_cert, challenge, sig.der.as_ref().unwrap());

    // A qualified signature: its own PIN, every time.
    card.verify_pin(PinRef::Sign, &pin(&profile.pins.sign))
        .unwrap();
    let document = b"contract";
    let digest = openssl::hash::hash(HashAlg::Sha256.message_digest(), document).unwrap();
    let sig = card
        .sign(KeyRef::Sign, HashAlg::Sha256, &digest, RsaPadding::Pkcs1v15)
        .unwrap();
    assert!(verify_with_openssl(
        &pki.sign_cert,
        HashAlg::Sha256,
        document,
        sig.der.as_ref().unwrap()
    ));
}
both_tiers!(pins_and_signatures);

fn wrong_can_is_refused(rig: &mut dyn Rig, _pki: &CardPki) {
    let who = rig.tier();
    let started = Instant::now();
    let mut t = rig.connect().unwrap();
    let err =
        open_contactless_cc2(Reborrow(&mut *t), &AccessKey::can("000000").unwrap()).unwrap_err();
    assert!(matches!(err, Error::AccessDenied), "{who}: {err:?}");
    assert_eq!(err.code(), "access-denied");
    assert!(started.elapsed() < Duration::from_secs(10), "{who}");

    // MRZ data is not how a Citizen Card opens: a clear error, nothing sent.
    let mut t = rig.connect().unwrap();
    let err = open_contactless_cc2(
        Reborrow(&mut *t),
        &AccessKey::parse_mrz("L898902C 690806 940623").unwrap(),
    )
    .unwrap_err();
    assert!(
        matches!(&err, Error::AccessFailed(why) if why.contains("CAN")),
        "{who}: {err:?}"
    );

    // Without PACE the applications stay closed (6982), as on the real card.
    let mut t = rig.connect().unwrap();
    let err = PteidCard::with_generation(&mut *t, Generation::Cc2)
        .read_identity()
        .unwrap_err();
    assert!(
        matches!(&err, Error::AccessFailed(why) if why.contains("PACE")),
        "{who}: {err:?}"
    );

    // The right CAN still opens it afterwards.
    let mut t = rig.connect().unwrap();
    let mut sm = open(&mut *t);
    let mut card = PteidCard::open(&mut sm).unwrap();
    assert_eq!(
        card.read_identity().unwrap().civilian_id,
        Identity::default().civilian_id
    );
}
both_tiers!(wrong_can_is_refused);

fn removed_mid_read(rig: &mut dyn Rig, _pki: &CardPki) {
    let who = rig.tier();
    let mut t = rig.connect().unwrap();
    let mut sm = open(&mut *t);
    let mut card = PteidCard::open(&mut sm).unwrap();
    rig.remove_after_apdus(3);
    let err = card.read_identity().unwrap_err();
    assert!(matches!(err, Error::CardRemoved), "{who}: {err:?}");
}
both_tiers!(removed_mid_read);

/// The contactless CC2 is named by its ATR (as pcscd reports it), without probing its
/// applications, which answer 6982 before PACE.
fn detected_by_its_atr(rig: &mut dyn Rig, _pki: &CardPki) {
    use eid_card::detect::{Detector, Evidence};
    let mut t = rig.connect().unwrap();
    let found = Detector::with_known_cards()
        .detect(&mut eid_card::Session::new(&mut *t))
        .unwrap();
    assert_eq!(found.kind, eid_card::pteid::CC2, "{}", rig.tier());
    assert_eq!(found.evidence, Evidence::Atr);
}
both_tiers!(detected_by_its_atr);
