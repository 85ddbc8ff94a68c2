//! The Citizen Card application (`eid_card::pteid`) against the virtual CC1 and CC2 of
//! `eid_hardware_mocks::pteid`, in-process and through the real pcscd + vpcd: identity, photo,
//! certificates, SOD, PINs, signatures, and card removal in the middle of an operation.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use eid_card::pteid::{
    CertKind, Generation, HashAlg, KeyRef, Pin, PinRef, PinStatus, PteidCard, Puk, RsaPadding,
};
use eid_card::{Error, Transport};
use eid_hardware_mocks::inprocess::{VirtualReader, VirtualReaderControl};
use eid_hardware_mocks::pteid::{self as mock, CardPki, PteidOptions, SodFault};
use eid_protocols::pa::{Check, CscaStore};
use eid_tests::{PcscRig, Rig, vpcd_like};

/// A virtual Citizen Card in one of the two tiers, with access to its PIN counters.
enum Tier {
    InProcess(VirtualReaderControl),
    Pcsc(PcscRig),
}

impl Tier {
    fn name(&self) -> &'static str {
        match self {
            Tier::InProcess(_) => "in-process",
            Tier::Pcsc(_) => "pcscd+vpcd",
        }
    }
    fn connect(&mut self) -> Box<dyn Transport> {
        match self {
            Tier::InProcess(c) => Box::new(c.connect().unwrap()),
            Tier::Pcsc(r) => r.connect().unwrap(),
        }
    }
    fn tries_left(&mut self, pin: u8) -> u8 {
        match self {
            Tier::InProcess(c) => c
                .with_card(|card| card.pin(pin).unwrap().tries_left())
                .unwrap(),
            Tier::Pcsc(r) => r
                .vpcd()
                .with_card(|card| card.pin(pin).unwrap().tries_left()),
        }
    }
    fn remove_after_apdus(&mut self, n: u64) {
        match self {
            Tier::InProcess(c) => c.remove_after_apdus(n),
            Tier::Pcsc(r) => r.remove_after_apdus(n),
        }
    }
    fn reinsert(&mut self) {
        match self {
            Tier::InProcess(c) => assert!(c.reinsert()),
            Tier::Pcsc(r) => {
                // The card is gone from the socket; put it back and wait for pcscd.
                let ctx = eid_card::pcsc_transport::PcscContext::establish().unwrap();
                eid_tests::wait_for_card(&ctx, &r.reader_name(), false);
                r.insert();
            }
        }
    }
}

fn build(generation: Generation, fault: SodFault) -> mock::PteidCard {
    let options = PteidOptions {
        sod_fault: fault,
        ..PteidOptions::default()
    };
    match generation {
        Generation::Cc1 => mock::cc1::cc1(&options).unwrap(),
        Generation::Cc2 => mock::cc2::cc2(&options).unwrap(),
    }
}

/// Runs `scenario` on a fresh card in each tier (the pcscd tier skips without pcscd).
fn both_tiers(
    generation: Generation,
    fault: SodFault,
    scenario: impl Fn(&mut Tier, &CardPki, Generation),
) {
    let built = build(generation, fault);
    let (_t, control) =
        VirtualReader::new("In-process virtual reader", built.card, vpcd_like()).split();
    let mut tier = Tier::InProcess(control);
    scenario(&mut tier, &built.pki, generation);

    let built = build(generation, fault);
    if let Some(rig) = PcscRig::new(built.card) {
        let mut tier = Tier::Pcsc(rig);
        scenario(&mut tier, &built.pki, generation);
    }
}

fn anchors(pki: &CardPki) -> CscaStore {
    let mut store = CscaStore::new();
    store.add_certificates(&pki.root.to_der().unwrap()).unwrap();
    store
}

fn now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

fn pin(s: &str) -> Pin {
    Pin::new(s).unwrap()
}

fn read_everything(tier: &mut Tier, pki: &CardPki, generation: Generation) {
    let who = tier.name();
    let mut t = tier.connect();
    let mut card = PteidCard::open(&mut *t).unwrap();
    assert_eq!(card.generation(), generation, "{who}");
    let profile = mock::Identity::default();

    let id = card.read_identity().unwrap();
    assert_eq!(id.surname, profile.surname, "{who}");
    assert_eq!(id.given_names, profile.given_name);
    assert_eq!(id.civilian_id, profile.civilian_id);
    assert_eq!(id.document_number, profile.document_number);
    assert_eq!(id.issuing_entity, profile.issuing_entity);
    assert_eq!(id.document_type, profile.document_type);
    assert_eq!(id.document_version, profile.document_version);
    assert_eq!(id.local_of_request, profile.local_of_request);
    assert_eq!(id.gender, profile.gender);
    assert_eq!(id.nationality, profile.nationality);
    assert_eq!(id.height, profile.height);
    assert_eq!(id.tax_no, profile.tax_no);
    assert_eq!(id.social_security_no, profile.social_security_no);
    assert_eq!(id.health_no, profile.health_no);
    assert_eq!(id.surname_mother, profile.surname_mother);
    assert_eq!(id.given_names_mother, profile.given_name_mother);
    assert_eq!(id.surname_father, profile.surname_father);
    assert_eq!(id.given_names_father, profile.given_name_father);
    assert_eq!(id.date_of_birth.raw, profile.date_of_birth);
    assert_eq!(
        id.date_of_birth.date,
        Some(time::macros::date!(1989 - 07 - 03))
    );
    assert_eq!(id.validity_end.raw, profile.validity_end_date);
    assert!(id.validity_begin.date.is_some());
    if generation == Generation::Cc1 {
        assert_eq!(
            id.document_number_pan.as_deref(),
            Some(profile.pan.as_str())
        );
    }
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
    assert_eq!(auth.der, pki.auth_cert.to_der().unwrap());
    assert_eq!(sign.der, pki.sign_cert.to_der().unwrap());
    assert_eq!(auth.civil_id.as_deref(), Some(profile.civilian_id.as_str()));
    if generation == Generation::Cc1 {
        let root = certs.iter().find(|c| c.kind == CertKind::Root).unwrap();
        assert_eq!(root.der, pki.root.to_der().unwrap());
        assert!(matches!(
            auth.key,
            eid_card::pteid::KeyInfo::Rsa { bits: 3072 }
        ));
        assert_eq!(certs.len(), 5);
    } else {
        assert!(matches!(
            &auth.key,
            eid_card::pteid::KeyInfo::Ec { bits: 256, curve } if curve == "P-256"
        ));
    }

    // SOD: valid, and chained when the root is given.
    let sod = card.verify_sod(&id, None, None, now()).unwrap();
    assert_eq!(sod.integrity, Check::Passed, "{who}: {sod:?}");
    assert!(matches!(sod.certificate_chain, Check::NotPerformed { .. }));
    let store = anchors(pki);
    let sod = card.verify_sod(&id, None, Some(&store), now()).unwrap();
    assert!(sod.is_valid(), "{who}: {sod:?}");

    if generation == Generation::Cc1 {
        // The address needs its PIN; with it, the SOD covers it too.
        assert!(matches!(card.read_address(), Err(Error::PinNotVerified)));
        card.verify_pin(PinRef::Address, &pin(&profile.pins.address))
            .unwrap();
        let address = card.read_address().unwrap();
        let json = serde_json::to_value(&address.address).unwrap();
        assert_eq!(json["street_name"], profile.address.street_name);
        assert_eq!(json["district"], profile.address.district);
        let sod = card
            .verify_sod(&id, Some(&address), Some(&store), now())
            .unwrap();
        assert!(sod.is_valid());
        let details = sod.details.unwrap();
        for n in 1..=4 {
            assert_eq!(details.data_group(n), Some(&Check::Passed), "DG{n}");
        }
    } else {
        assert!(matches!(card.read_address(), Err(Error::NotSupported(_))));
    }
}

#[test]
fn cc1_identity_photo_certificates_sod() {
    both_tiers(Generation::Cc1, SodFault::None, read_everything);
}

#[test]
fn cc2_identity_photo_certificates_sod() {
    both_tiers(Generation::Cc2, SodFault::None, read_everything);
}

fn sod_is_invalid(expect: &'static str) -> impl Fn(&mut Tier, &CardPki, Generation) {
    move |tier, pki, _| {
        let mut t = tier.connect();
        let mut card = PteidCard::open(&mut *t).unwrap();
        let id = card.read_identity().unwrap();
        let sod = card
            .verify_sod(&id, None, Some(&anchors(pki)), now())
            .unwrap();
        assert!(!sod.is_valid());
        match &sod.integrity {
            Check::Failed { reason } => assert!(reason.contains(expect), "{reason}"),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn sod_with_a_wrong_hash_is_invalid_naming_the_data_group() {
    both_tiers(
        Generation::Cc1,
        SodFault::WrongHash(1),
        sod_is_invalid("data group 1"),
    );
    both_tiers(
        Generation::Cc2,
        SodFault::WrongHash(13),
        sod_is_invalid("data group 13"),
    );
}

#[test]
fn sod_with_a_bad_signature_is_invalid() {
    both_tiers(
        Generation::Cc1,
        SodFault::BadSignature,
        sod_is_invalid("signature"),
    );
    both_tiers(
        Generation::Cc2,
        SodFault::BadSignature,
        sod_is_invalid("signature"),
    );
}

fn verify_with_openssl(cert: &openssl::x509::X509, hash: HashAlg, data: &[u8], sig: &[u8]) -> bool {
    let key = cert.public_key().unwrap();
    let mut v = openssl::sign::Verifier::new(hash.message_digest(), &key).unwrap();
    v.update(data).unwrap();
    v.verify(sig).unwrap()
}

fn verify_pss_with_openssl(
    cert: &openssl::x509::X509,
    hash: HashAlg,
    data: &[u8],
    sig: &[u8],
) -> bool {
    use openssl::{rsa::Padding, sign::RsaPssSaltlen};
    let key = cert.public_key().unwrap();
    let mut v = openssl::sign::Verifier::new(hash.message_digest(), &key).unwrap();
    v.set_rsa_padding(Padding::PKCS1_PSS).unwrap();
    v.set_rsa_pss_saltlen(RsaPssSaltlen::DIGEST_LENGTH).unwrap();
    v.set_rsa_mgf1_md(hash.message_digest()).unwrap();
    v.update(data).unwrap();
    v.verify(sig).unwrap_or(false)
}

fn signatures_verify(tier: &mut Tier, pki: &CardPki, generation: Generation) {
    let profile = mock::Identity::default();
    let mut t = tier.connect();
    let mut card = PteidCard::open(&mut *t).unwrap();
    let data = b"document to sign";
    for key in [KeyRef::Auth, KeyRef::Sign] {
        let (cert, value) = match key {
            KeyRef::Auth => (&pki.auth_cert, &profile.pins.auth),
            KeyRef::Sign => (&pki.sign_cert, &profile.pins.sign),
        };
        for hash in [HashAlg::Sha256, HashAlg::Sha384, HashAlg::Sha512] {
            let digest = openssl::hash::hash(hash.message_digest(), data).unwrap();
            if card.pin_status(key.pin()).unwrap() != PinStatus::Verified {
                card.verify_pin(key.pin(), &pin(value)).unwrap();
            }
            let sig = card.sign(key, hash, &digest, RsaPadding::Pkcs1v15).unwrap();
            match generation {
                Generation::Cc1 => {
                    assert_eq!(sig.raw.len(), 384);
                    assert!(
                        verify_with_openssl(cert, hash, data, &sig.raw),
                        "{key:?} {hash:?}"
                    );
                    // RSA-PSS (algorithm reference + 3), salt as long as the hash.
                    if card.pin_status(key.pin()).unwrap() != PinStatus::Verified {
                        card.verify_pin(key.pin(), &pin(value)).unwrap();
                    }
                    let pss = card.sign(key, hash, &digest, RsaPadding::Pss).unwrap();
                    assert_eq!(pss.scheme, "rsa-pss", "{key:?} {hash:?}");
                    assert!(
                        verify_pss_with_openssl(cert, hash, data, &pss.raw),
                        "PSS {key:?} {hash:?}"
                    );
                    assert!(!verify_with_openssl(cert, hash, data, &pss.raw));
                }
                Generation::Cc2 => {
                    assert_eq!(sig.raw.len(), 64);
                    let der = sig.der.as_ref().unwrap();
                    assert!(
                        verify_with_openssl(cert, hash, data, der),
                        "{key:?} {hash:?}"
                    );
                }
            }
        }
    }
    // The wrong digest length is refused before any APDU.
    assert!(
        card.sign(
            KeyRef::Auth,
            HashAlg::Sha256,
            &[0; 20],
            RsaPadding::Pkcs1v15
        )
        .is_err()
    );
}

#[test]
fn cc1_signatures_verify_for_both_keys_and_every_hash() {
    both_tiers(Generation::Cc1, SodFault::None, signatures_verify);
}

#[test]
fn cc2_signatures_verify_for_both_keys_and_every_hash() {
    both_tiers(Generation::Cc2, SodFault::None, signatures_verify);
}

fn signing_without_pin_is_typed(tier: &mut Tier, _: &CardPki, _: Generation) {
    let mut t = tier.connect();
    let mut card = PteidCard::open(&mut *t).unwrap();
    for key in [KeyRef::Auth, KeyRef::Sign] {
        let err = card
            .sign(key, HashAlg::Sha256, &[1; 32], RsaPadding::Pkcs1v15)
            .unwrap_err();
        assert!(matches!(err, Error::PinNotVerified), "{err:?}");
    }
}

#[test]
fn signing_without_a_verified_pin_is_a_typed_error() {
    both_tiers(
        Generation::Cc1,
        SodFault::None,
        signing_without_pin_is_typed,
    );
    both_tiers(
        Generation::Cc2,
        SodFault::None,
        signing_without_pin_is_typed,
    );
}

fn wrong_pins_block_and_puk_unblocks(tier: &mut Tier, _: &CardPki, _: Generation) {
    let profile = mock::Identity::default();
    let reference = PinRef::Auth.reference();
    let mut t = tier.connect();
    let mut card = PteidCard::open(&mut *t).unwrap();
    assert_eq!(
        card.pin_status(PinRef::Auth).unwrap(),
        PinStatus::NotVerified { tries_left: 3 }
    );
    drop(t);
    assert_eq!(tier.tries_left(reference), 3, "status spends no try");
    for left in [2u8, 1] {
        let mut t = tier.connect();
        let mut card = PteidCard::open(&mut *t).unwrap();
        let err = card.verify_pin(PinRef::Auth, &pin("9999")).unwrap_err();
        assert!(
            matches!(err, Error::WrongPin { retries_left } if retries_left == left),
            "{err:?}"
        );
        drop(t);
        assert_eq!(
            tier.tries_left(reference),
            left,
            "exactly one try per wrong PIN"
        );
    }
    let mut t = tier.connect();
    let mut card = PteidCard::open(&mut *t).unwrap();
    let err = card.verify_pin(PinRef::Auth, &pin("9999")).unwrap_err();
    assert!(matches!(err, Error::PinBlocked), "{err:?}");
    assert_eq!(card.pin_status(PinRef::Auth).unwrap(), PinStatus::Blocked);
    // Even the right PIN is refused now.
    let err = card
        .verify_pin(PinRef::Auth, &pin(&profile.pins.auth))
        .unwrap_err();
    assert!(matches!(err, Error::PinBlocked), "{err:?}");
    // A wrong PUK costs a PUK try and leaves the PIN blocked.
    let err = card
        .unblock_pin(PinRef::Auth, &Puk::new("00000000").unwrap(), None)
        .unwrap_err();
    assert!(matches!(err, Error::WrongPin { .. }), "{err:?}");
    // PUK only (P1=01): counter reset, same PIN.
    card.unblock_pin(
        PinRef::Auth,
        &Puk::new(&profile.pins.auth_puk).unwrap(),
        None,
    )
    .unwrap();
    card.verify_pin(PinRef::Auth, &pin(&profile.pins.auth))
        .unwrap();
    // Block again, then PUK with a new PIN (P1=00).
    for _ in 0..3 {
        let _ = card.verify_pin(PinRef::Auth, &pin("9999"));
    }
    assert_eq!(card.pin_status(PinRef::Auth).unwrap(), PinStatus::Blocked);
    card.unblock_pin(
        PinRef::Auth,
        &Puk::new(&profile.pins.auth_puk).unwrap(),
        Some(&pin("4321")),
    )
    .unwrap();
    card.verify_pin(PinRef::Auth, &pin("4321")).unwrap();
    // Change it back.
    card.change_pin(PinRef::Auth, &pin("4321"), &pin(&profile.pins.auth))
        .unwrap();
    card.verify_pin(PinRef::Auth, &pin(&profile.pins.auth))
        .unwrap();
    assert_eq!(card.pin_status(PinRef::Auth).unwrap(), PinStatus::Verified);
}

#[test]
fn cc1_wrong_pin_counts_down_blocks_and_puk_unblocks() {
    both_tiers(
        Generation::Cc1,
        SodFault::None,
        wrong_pins_block_and_puk_unblocks,
    );
}

#[test]
fn cc2_wrong_pin_counts_down_blocks_and_puk_unblocks() {
    both_tiers(
        Generation::Cc2,
        SodFault::None,
        wrong_pins_block_and_puk_unblocks,
    );
}

fn removal_is_typed_and_costs_no_try(tier: &mut Tier, _: &CardPki, _: Generation) {
    let profile = mock::Identity::default();
    // In the middle of reading the identity.
    {
        let mut t = tier.connect();
        let mut card = PteidCard::open(&mut *t).unwrap();
        tier_remove_after(&mut card, tier, 5);
        let err = card.read_identity().unwrap_err();
        assert!(matches!(err, Error::CardRemoved), "{err:?}");
        assert!(err.is_retryable());
    }
    tier.reinsert();
    // Before the VERIFY reaches the card: no try lost.
    {
        let mut t = tier.connect();
        let mut card = PteidCard::open(&mut *t).unwrap();
        card.pin_status(PinRef::Sign).unwrap();
        tier.remove_after_apdus(0);
        let err = card.verify_pin(PinRef::Sign, &pin("9999")).unwrap_err();
        assert!(matches!(err, Error::CardRemoved), "{err:?}");
    }
    tier.reinsert();
    assert_eq!(tier.tries_left(PinRef::Sign.reference()), 3);
    // In the middle of a signature (after MSE SET): typed error, no try lost.
    {
        let mut t = tier.connect();
        let mut card = PteidCard::open(&mut *t).unwrap();
        card.verify_pin(PinRef::Sign, &pin(&profile.pins.sign))
            .unwrap();
        tier.remove_after_apdus(1);
        let err = card
            .sign(
                KeyRef::Sign,
                HashAlg::Sha256,
                &[7; 32],
                RsaPadding::Pkcs1v15,
            )
            .unwrap_err();
        assert!(matches!(err, Error::CardRemoved), "{err:?}");
    }
    tier.reinsert();
    assert_eq!(tier.tries_left(PinRef::Sign.reference()), 3);
    // After re-insertion the card works again and the PIN state is gone.
    let mut t = tier.connect();
    let mut card = PteidCard::open(&mut *t).unwrap();
    assert_eq!(
        card.pin_status(PinRef::Sign).unwrap(),
        PinStatus::NotVerified { tries_left: 3 }
    );
    card.read_identity().unwrap();
}

/// Arms the removal once the card is open (the open itself may have sent APDUs).
fn tier_remove_after(_card: &mut PteidCard<'_>, tier: &mut Tier, n: u64) {
    tier.remove_after_apdus(n);
}

#[test]
fn cc1_card_removed_mid_operation_is_typed_and_costs_no_pin_try() {
    both_tiers(
        Generation::Cc1,
        SodFault::None,
        removal_is_typed_and_costs_no_try,
    );
}

#[test]
fn cc2_card_removed_mid_operation_is_typed_and_costs_no_pin_try() {
    both_tiers(
        Generation::Cc2,
        SodFault::None,
        removal_is_typed_and_costs_no_try,
    );
}

/// What the agent's reader list does: the known-card detector names the card (by its ATR, as
/// pcscd reports it in the second tier).
fn detected_by_atr(tier: &mut Tier, _: &CardPki, generation: Generation) {
    use eid_card::detect::{Detector, Evidence};
    let mut t = tier.connect();
    let found = Detector::with_known_cards()
        .detect(&mut eid_card::Session::new(&mut *t))
        .unwrap();
    assert_eq!(found.kind, generation.kind(), "{}", tier.name());
    assert_eq!(found.evidence, Evidence::Atr);
}

#[test]
fn cc1_and_cc2_are_detected_in_both_tiers() {
    both_tiers(Generation::Cc1, SodFault::None, detected_by_atr);
    both_tiers(Generation::Cc2, SodFault::None, detected_by_atr);
}

#[test]
fn detection_by_atr_and_by_aid() {
    use eid_card::detect::{Detector, Evidence};
    for generation in [Generation::Cc1, Generation::Cc2] {
        let built = build(generation, SodFault::None);
        let (mut t, _c) = VirtualReader::new("reader", built.card, vpcd_like()).split();
        let mut session = eid_card::Session::new(&mut t);
        let found = Detector::with_known_cards().detect(&mut session).unwrap();
        assert_eq!(found.kind, generation.kind());
        assert_eq!(found.evidence, Evidence::Atr);
    }
    // By AID only: a detector with the Citizen Card rules minus their ATRs.
    for generation in [Generation::Cc1, Generation::Cc2] {
        let built = build(generation, SodFault::None);
        let (mut t, _c) = VirtualReader::new("reader", built.card, vpcd_like()).split();
        let mut d = Detector::new();
        for mut rule in eid_card::pteid::detection_rules() {
            rule.atrs.clear();
            d.register(rule);
        }
        let found = d.detect(&mut eid_card::Session::new(&mut t)).unwrap();
        assert_eq!(found.kind, generation.kind());
        assert!(matches!(found.evidence, Evidence::Aid { .. }));
    }
}

#[test]
fn reads_use_the_fewest_apdus_and_respect_a_smaller_transport() {
    // Count the APDUs of reading the CC1 identity file: 1 AID select + 1 path select with FCI +
    // ceil(15500 / 256) reads.
    let built = build(Generation::Cc1, SodFault::None);
    let (_t, control) = VirtualReader::new("r", built.card, vpcd_like()).split();
    let mut t = control.connect().unwrap();
    let mut card = PteidCard::with_generation(&mut t, Generation::Cc1);
    let before = control.apdu_count();
    card.read_identity().unwrap();
    assert_eq!(control.apdu_count() - before, 2 + 15_500u64.div_ceil(256));
    // A transport that carries at most 223 response data bytes (as under secure messaging).
    let built = build(Generation::Cc1, SodFault::None);
    let mut caps = vpcd_like();
    caps.max_response_len = 223 + 2;
    let (_t, control) = VirtualReader::new("r", built.card, caps).split();
    let mut t = control.connect().unwrap();
    let mut card = PteidCard::with_generation(&mut t, Generation::Cc1);
    assert_eq!(card.read_chunk(), 223);
    let before = control.apdu_count();
    card.read_identity().unwrap();
    assert_eq!(control.apdu_count() - before, 2 + 15_500u64.div_ceil(223));
}
