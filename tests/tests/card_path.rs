//! The APDU path end to end, written once and run in both tiers: in-process behind the transport
//! trait, and behind the real pcscd through vpcd.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use eid_card::session::{LengthPolicy, Session};
use eid_card::{Error, Transport};
use eid_hardware_mocks::engine::VirtualCard;
use eid_hardware_mocks::profiles::iso7816_test::{self as test_card, Variant};
use eid_protocols::Status;
use eid_protocols::commands::{self, FileReturn, Select};
use eid_tests::{InProcessRig, PcscRig, Rig, vpcd_like};
use openssl::bn::BigNum;
use openssl::ecdsa::EcdsaSig;
use openssl::pkey::PKey;
use openssl::sha::sha256;

/// Runs a scenario on an in-process card and on the same kind of card behind pcscd.
macro_rules! both_tiers {
    ($(#[$doc:meta])* $name:ident, $variant:expr) => {
        mod $name {
            use super::*;
            #[test]
            fn in_process() {
                let mut rig = InProcessRig::new(card($variant), vpcd_like());
                super::$name(&mut rig);
            }
            #[test]
            fn through_pcscd() {
                if let Some(mut rig) = PcscRig::new(card($variant)) {
                    super::$name(&mut rig);
                }
            }
        }
    };
}

fn card(variant: Variant) -> VirtualCard {
    test_card::card(variant).expect("virtual card")
}

fn path(fid: u16) -> [u16; 2] {
    [test_card::APP_FID, fid]
}

/// Reads `fid` and checks it byte for byte; returns how many APDUs the card saw.
fn read_and_check(
    rig: &mut dyn Rig,
    transport: &mut dyn Transport,
    policy: LengthPolicy,
    fid: u16,
) -> u64 {
    let before = rig.apdu_count();
    let data = Session::with_policy(transport, policy)
        .read_file(&path(fid))
        .expect("read file");
    let expected = test_card::test_file(fid).expect("known file");
    assert_eq!(
        data.len(),
        expected.len(),
        "{} {fid:04X}: length",
        rig.tier()
    );
    assert!(
        data == expected,
        "{} {fid:04X}: content differs",
        rig.tier()
    );
    rig.apdu_count() - before
}

fn large_files_with_extended_apdus(rig: &mut dyn Rig) {
    let mut t = rig.connect().unwrap();
    assert!(
        Session::new(&mut *t).link().extended_length,
        "{}: extended length not negotiated",
        rig.tier()
    );
    // SELECT + one READ BINARY for 20 000 bytes.
    assert_eq!(
        read_and_check(rig, &mut *t, LengthPolicy::Auto, test_card::EF_MEDIUM),
        2
    );
    // 70 000 bytes: the first extended read stops at the 64 KiB a reader carries, the rest comes
    // with READ BINARY (B1) beyond offset 32 767.
    let n = read_and_check(rig, &mut *t, LengthPolicy::Auto, test_card::EF_LARGE);
    assert!(n <= 3, "{}: {n} APDUs for 70 000 bytes", rig.tier());
}
both_tiers!(large_files_with_extended_apdus, Variant::Full);

fn large_files_with_short_apdus(rig: &mut dyn Rig) {
    let mut t = rig.connect().unwrap();
    // The same card, with the session restricted to short APDUs: 256 bytes a read.
    let n = read_and_check(rig, &mut *t, LengthPolicy::ShortOnly, test_card::EF_MEDIUM);
    assert_eq!(n, 1 + 20_000u64.div_ceil(256), "{}", rig.tier());
    read_and_check(rig, &mut *t, LengthPolicy::ShortOnly, test_card::EF_LARGE);
}
both_tiers!(large_files_with_short_apdus, Variant::Full);

fn card_without_extended_length_gets_short_apdus(rig: &mut dyn Rig) {
    let mut t = rig.connect().unwrap();
    assert!(
        !Session::new(&mut *t).link().extended_length,
        "{}",
        rig.tier()
    );
    read_and_check(rig, &mut *t, LengthPolicy::Auto, test_card::EF_MEDIUM);
    read_and_check(rig, &mut *t, LengthPolicy::Auto, test_card::EF_LARGE);
    // Forcing extended on it is refused by the card (6700), as a real short-only card does.
    let err = Session::with_policy(&mut *t, LengthPolicy::PreferExtended)
        .read_file(&path(test_card::EF_MEDIUM))
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Status {
                status: Status::WrongLength,
                ..
            }
        ),
        "{}: {err:?}",
        rig.tier()
    );
}
both_tiers!(
    card_without_extended_length_gets_short_apdus,
    Variant::ShortOnly
);

fn t0_card_needs_get_response_and_exact_le(rig: &mut dyn Rig) {
    let mut t = rig.connect().unwrap();
    let mut s = Session::new(&mut *t);
    // SELECT with FCI is a case 4 command: a T=0 card answers 61xx and holds the FCI back.
    let fc = s
        .select(
            Select::PathFromMf(&path(test_card::EF_MEDIUM)),
            FileReturn::Fci,
        )
        .unwrap()
        .expect("FCI");
    assert_eq!(fc.readable_size(), Some(20_000));
    // Without the size, the last READ BINARY asks for too much and the card answers 6Cxx.
    let data = s.read_binary(None).unwrap();
    assert!(
        data == test_card::test_file(test_card::EF_MEDIUM).unwrap(),
        "{}",
        rig.tier()
    );
}
both_tiers!(t0_card_needs_get_response_and_exact_le, Variant::T0);

fn long_commands_are_chained_or_extended(rig: &mut dyn Rig) {
    let mut t = rig.connect().unwrap();
    let content: Vec<u8> = (0..1024u32).map(|i| (i * 13 % 256) as u8).collect();
    for (policy, apdus) in [
        (LengthPolicy::ShortOnly, 1 + 5),
        (LengthPolicy::Auto, 1 + 1),
    ] {
        let mut s = Session::with_policy(&mut *t, policy);
        let before = rig.apdu_count();
        s.select(
            Select::PathFromMf(&path(test_card::EF_WRITABLE)),
            FileReturn::None,
        )
        .unwrap();
        let r = s
            .transmit(&commands::update_binary(0, &content).unwrap())
            .unwrap();
        assert_eq!(r.status(), Status::Success, "{} {policy:?}", rig.tier());
        // Short: 255 + 255 + 255 + 255 + 4 bytes in a chain of five.
        assert_eq!(
            rig.apdu_count() - before,
            apdus,
            "{} {policy:?}",
            rig.tier()
        );
        let back = Session::with_policy(&mut *t, policy)
            .read_file(&path(test_card::EF_WRITABLE))
            .unwrap();
        assert_eq!(back, content);
    }
}
both_tiers!(long_commands_are_chained_or_extended, Variant::Full);

fn pin_retries_and_a_real_signature(rig: &mut dyn Rig) {
    let mut t = rig.connect().unwrap();
    let mut s = Session::new(&mut *t);
    s.select(Select::DfName(test_card::AID), FileReturn::None)
        .unwrap();
    let spki = s.read_file(&path(test_card::EF_PUBLIC_KEY)).unwrap();
    let digest = sha256(b"a document to sign");
    // Not verified yet: the card refuses to sign.
    let refused = s
        .transmit(&commands::pso_compute_digital_signature(&digest, 64))
        .unwrap();
    assert_eq!(refused.status(), Status::SecurityStatusNotSatisfied);
    // A wrong PIN costs one try and says how many are left; asking the status costs none.
    let wrong = s
        .transmit(&commands::verify(test_card::PIN_REF, pin_block(b"9999")))
        .unwrap();
    assert_eq!(
        wrong.status(),
        Status::RemainingRetries(test_card::PIN_TRIES - 1)
    );
    let status = s
        .transmit(&commands::verify_status(test_card::PIN_REF))
        .unwrap();
    assert_eq!(
        status.status(),
        Status::RemainingRetries(test_card::PIN_TRIES - 1)
    );
    let right = s
        .transmit(&commands::verify(
            test_card::PIN_REF,
            pin_block(test_card::PIN),
        ))
        .unwrap();
    assert_eq!(right.status(), Status::Success);
    let sig = s
        .transmit_ok(&commands::pso_compute_digital_signature(&digest, 64))
        .unwrap();
    assert_eq!(sig.len(), 64, "raw r||s");
    let (r, sv) = sig.split_at(32);
    let sig = EcdsaSig::from_private_components(
        BigNum::from_slice(r).unwrap(),
        BigNum::from_slice(sv).unwrap(),
    )
    .unwrap();
    let key = PKey::public_key_from_der(&spki).unwrap().ec_key().unwrap();
    assert!(
        sig.verify(&digest, &key).unwrap(),
        "{}: signature does not verify",
        rig.tier()
    );
    let other = sha256(b"another document");
    assert!(!sig.verify(&other, &key).unwrap());
}
both_tiers!(pin_retries_and_a_real_signature, Variant::Full);

fn card_removed_mid_read_then_reinserted(rig: &mut dyn Rig) {
    let mut t = rig.connect().unwrap();
    // Short APDUs: reading 20 000 bytes takes 80 of them; the card goes away at the fifth.
    rig.remove_after_apdus(4);
    let err = Session::with_policy(&mut *t, LengthPolicy::ShortOnly)
        .read_file(&path(test_card::EF_MEDIUM))
        .unwrap_err();
    assert!(matches!(err, Error::CardRemoved), "{}: {err:?}", rig.tier());
    assert!(err.is_retryable());
    // The old connection stays dead, as in PC/SC.
    let again = Session::new(&mut *t)
        .read_file(&path(test_card::EF_SMALL))
        .unwrap_err();
    assert!(
        matches!(again, Error::CardRemoved | Error::NoCard(_)),
        "{}: {again:?}",
        rig.tier()
    );
    drop(t);
    rig.insert();
    let mut t = rig.connect().unwrap();
    read_and_check(rig, &mut *t, LengthPolicy::ShortOnly, test_card::EF_MEDIUM);
}
both_tiers!(card_removed_mid_read_then_reinserted, Variant::Full);

fn no_card_is_a_typed_error(rig: &mut dyn Rig) {
    rig.remove();
    let err = rig.connect().err().expect("no card, no connection");
    assert!(matches!(err, Error::NoCard(_)), "{}: {err:?}", rig.tier());
    assert_eq!(err.code(), "no-card");
    rig.insert();
    assert!(rig.connect().is_ok());
}
both_tiers!(no_card_is_a_typed_error, Variant::Full);

fn card_reset_by_another_application(rig: &mut dyn Rig) {
    let mut t = rig.connect().unwrap();
    Session::new(&mut *t)
        .select(Select::DfName(test_card::AID), FileReturn::None)
        .unwrap();
    rig.reset_by_other_application();
    let err = Session::new(&mut *t)
        .select(Select::ChildEf(test_card::EF_SMALL), FileReturn::None)
        .unwrap_err();
    assert!(matches!(err, Error::CardReset), "{}: {err:?}", rig.tier());
    // Acknowledge the reset; the selection is gone, so start from the MF again.
    t.reconnect(false).unwrap();
    read_and_check(rig, &mut *t, LengthPolicy::Auto, test_card::EF_SMALL);
}
both_tiers!(card_reset_by_another_application, Variant::Full);

fn reset_inside_a_transaction_clears_card_state_and_keeps_the_connection(rig: &mut dyn Rig) {
    let mut t = rig.connect().unwrap();
    let mut s = Session::new(&mut *t);
    s.select(Select::DfName(test_card::AID), FileReturn::None)
        .unwrap();
    let ok = s
        .transmit(&commands::verify(
            test_card::PIN_REF,
            pin_block(test_card::PIN),
        ))
        .unwrap();
    assert_eq!(ok.status(), Status::Success);
    s.in_transaction(|s| {
        s.transport().reconnect(true)?;
        // The reset forgot the verification (no try spent asking) ...
        let status = s.transmit(&commands::verify_status(test_card::PIN_REF))?;
        assert_eq!(
            status.status(),
            Status::RemainingRetries(test_card::PIN_TRIES)
        );
        // ... and the same handle goes on working.
        let data = s.read_file(&path(test_card::EF_SMALL))?;
        assert_eq!(data, test_card::test_file(test_card::EF_SMALL).unwrap());
        Ok(())
    })
    .unwrap();
    assert_eq!(
        t.atr(),
        &test_card::atr(Variant::Full)[..],
        "{}",
        rig.tier()
    );
}
both_tiers!(
    reset_inside_a_transaction_clears_card_state_and_keeps_the_connection,
    Variant::Full
);

fn detection_recognises_the_test_card(rig: &mut dyn Rig) {
    let mut t = rig.connect().unwrap();
    let found = eid_card::detect::Detector::with_known_cards()
        .detect(&mut Session::new(&mut *t))
        .unwrap();
    assert_eq!(found.kind, eid_card::detect::TEST_CARD);
    // An empty registry knows nothing.
    let err = eid_card::detect::Detector::new()
        .detect(&mut Session::new(&mut *t))
        .unwrap_err();
    assert!(matches!(err, Error::UnsupportedCard { .. }));
}
both_tiers!(detection_recognises_the_test_card, Variant::Full);

/// ASCII digits padded with FF to eight bytes, as the test card's PIN objects expect.
fn pin_block(pin: &[u8]) -> zeroize::Zeroizing<Vec<u8>> {
    let mut block = zeroize::Zeroizing::new(vec![0xFF; 8]);
    block[..pin.len()].copy_from_slice(pin);
    block
}
