//! Engine tests, run against the `iso7816-test` profiles.

use eid_protocols::atr::Atr;
use eid_protocols::fci::FileControl;
use openssl::bn::BigNum;
use openssl::ec::EcKey;
use openssl::ecdsa::EcdsaSig;
use openssl::pkey::PKey;
use openssl::sha::sha256;
use proptest::prelude::*;

use super::*;
use crate::profiles::iso7816_test::{self as profile, Variant, test_file};

fn card(variant: Variant) -> VirtualCard {
    profile::card(variant).unwrap()
}

/// Sends an APDU given in hex (spaces allowed); returns data and SW.
fn send(card: &mut VirtualCard, apdu: &str) -> (Vec<u8>, u16) {
    send_bytes(card, &hex::decode(apdu.replace(' ', "")).unwrap())
}

fn send_bytes(card: &mut VirtualCard, apdu: &[u8]) -> (Vec<u8>, u16) {
    let mut response = card.process(apdu);
    assert!(response.len() >= 2, "response without status word");
    let sw = response.split_off(response.len() - 2);
    (response, u16::from_be_bytes([sw[0], sw[1]]))
}

fn sw(card: &mut VirtualCard, apdu: &str) -> u16 {
    send(card, apdu).1
}

const SELECT_APP: &str = "00A4040C09F04549442D54455354";
const PIN_OK: &str = "0020008108 31323334FFFFFFFF";
const PIN_BAD: &str = "0020008108 31313131FFFFFFFF";

fn select_ef(card: &mut VirtualCard, fid: u16) {
    assert_eq!(sw(card, &format!("00A4080C04 5000{fid:04X}")), 0x9000);
}

// ---- ATR ----

#[test]
fn atrs_announce_what_the_card_does() {
    let full = Atr::parse(&profile::atr(Variant::Full)).unwrap();
    assert_eq!(full.protocols, vec![1]);
    assert_eq!(full.tck_valid, Some(true));
    let caps = full.card_capabilities().unwrap();
    assert!(caps.command_chaining && caps.extended_length);

    let short = Atr::parse(&profile::atr(Variant::ShortOnly)).unwrap();
    assert_eq!(short.tck_valid, Some(true));
    let caps = short.card_capabilities().unwrap();
    assert!(caps.command_chaining && !caps.extended_length);

    let t0 = Atr::parse(&profile::atr(Variant::T0)).unwrap();
    assert_eq!((t0.protocols.as_slice(), t0.tck_valid), (&[0u8][..], None));
    assert!(!t0.card_capabilities().unwrap().extended_length);
    assert_eq!(card(Variant::T0).atr(), profile::atr(Variant::T0));
}

// ---- SELECT ----

#[test]
fn select_every_way() {
    let mut c = card(Variant::Full);
    // MF by FID, with FCI; and with no data at all.
    let (fci, s) = send(&mut c, "00A40000023F0000");
    assert_eq!(s, 0x9000);
    assert_eq!(fci[0], 0x6F);
    let fc = FileControl::parse(&fci).unwrap();
    assert_eq!((fc.fid, fc.is_df()), (Some(0x3F00), true));
    assert_eq!(sw(&mut c, "00A4000C"), 0x9000);
    // EF.DIR in the MF by FID.
    let (fci, _) = send(&mut c, "00A4000002 2F00 00");
    assert_eq!(FileControl::parse(&fci).unwrap().size, Some(23));
    // Child DF, then a DF where an EF is expected and vice versa.
    assert_eq!(sw(&mut c, "00A4010C02 5000"), 0x9000);
    assert_eq!(sw(&mut c, "00A4010C02 0101"), 0x6A82);
    let (fcp, s) = send(&mut c, "00A4020402 0101 00");
    assert_eq!(s, 0x9000);
    assert_eq!(fcp[0], 0x62);
    let fc = FileControl::parse(&fcp).unwrap();
    assert_eq!(
        (fc.size, fc.fid, fc.sfi, fc.is_df()),
        (Some(100), Some(0x0101), Some(1), false)
    );
    assert_eq!(sw(&mut c, "00A4020C02 5000"), 0x6A82);
    // Parent of the current DF (5000) is the MF.
    assert_eq!(sw(&mut c, "00A4030C"), 0x9000);
    assert_eq!(c.core().current_df(), c.core().fs().mf());
    assert_eq!(sw(&mut c, "00A4030C"), 0x6A82);
    // By DF name: full, right-truncated, unknown.
    let (fcp, s) = send(&mut c, "00A4040409 F04549442D54455354 00");
    assert_eq!(s, 0x9000);
    let fc = FileControl::parse(&fcp).unwrap();
    assert_eq!(
        (fc.df_name.as_deref(), fc.fid),
        (Some(profile::AID), Some(0x5000))
    );
    assert_eq!(sw(&mut c, "00A4040C04 F0454944"), 0x9000);
    assert_eq!(sw(&mut c, "00A4040C04 A0000000"), 0x6A82);
    // Path from the MF, with and without 3F00; path from the current DF.
    assert_eq!(sw(&mut c, "00A4080C04 50000104"), 0x9000);
    assert_eq!(sw(&mut c, "00A4080C06 3F0050000105"), 0x9000);
    assert_eq!(sw(&mut c, "00A4080C04 50009999"), 0x6A82);
    assert_eq!(sw(&mut c, "00A4080C03 500001"), 0x6700);
    assert_eq!(sw(&mut c, "00A4090C02 0102"), 0x9000);
    assert_eq!(sw(&mut c, "00A4090C02 5000"), 0x6A82);
    // P1 = 00 finds the current DF and a sibling of the current EF.
    assert_eq!(sw(&mut c, "00A4000C02 5000"), 0x9000);
    assert_eq!(sw(&mut c, "00A4000C02 0103"), 0x9000);
    // Bad parameters.
    assert_eq!(sw(&mut c, "00A4000802 3F00"), 0x6A86);
    assert_eq!(sw(&mut c, "00A4050C02 3F00"), 0x6A86);
    assert_eq!(sw(&mut c, "00A4000C03 3F0000"), 0x6700);
}

#[test]
fn failed_select_keeps_the_selection() {
    let mut c = card(Variant::Full);
    select_ef(&mut c, 0x0101);
    assert_eq!(sw(&mut c, "00A4020C02 9999"), 0x6A82);
    let (data, s) = send(&mut c, "00B0000004");
    assert_eq!(
        (data.as_slice(), s),
        (&test_file(0x0101).unwrap()[..4], 0x9000)
    );
}

// ---- READ BINARY ----

#[test]
fn read_binary_short_and_extended() {
    let mut c = card(Variant::Full);
    let expected = test_file(0x0102).unwrap();
    select_ef(&mut c, 0x0102);
    let (data, s) = send(&mut c, "00B0000000");
    assert_eq!((data.as_slice(), s), (&expected[..256], 0x9000));
    let (data, s) = send(&mut c, "00B00100 001000");
    assert_eq!((data.as_slice(), s), (&expected[256..256 + 0x1000], 0x9000));
    // All of it with Le = 0000 (65 536): fewer bytes remain, so 6282.
    let (data, s) = send(&mut c, "00B00000 000000");
    assert_eq!((data, s), (expected, 0x6282));
}

#[test]
fn read_binary_end_of_file() {
    let mut c = card(Variant::Full);
    let expected = test_file(0x0101).unwrap();
    select_ef(&mut c, 0x0101);
    let (data, s) = send(&mut c, "00B0005020");
    assert_eq!((data.as_slice(), s), (&expected[0x50..], 0x6282));
    assert_eq!(send(&mut c, "00B0006301"), (vec![expected[99]], 0x9000));
    assert_eq!(send(&mut c, "00B0006401"), (vec![], 0x6B00));
    assert_eq!(sw(&mut c, "00B07FFF01"), 0x6B00);
    // No Le, or data: wrong length.
    assert_eq!(sw(&mut c, "00B00000"), 0x6700);
    assert_eq!(sw(&mut c, "00B0000001FF"), 0x6700);
}

#[test]
fn read_binary_needs_a_current_ef() {
    let mut c = card(Variant::Full);
    assert_eq!(sw(&mut c, "00B0000010"), 0x6986);
    assert_eq!(sw(&mut c, SELECT_APP), 0x9000);
    assert_eq!(sw(&mut c, "00B0000010"), 0x6986);
    select_ef(&mut c, 0x0101);
    assert_eq!(sw(&mut c, "00B0000010"), 0x9000);
    c.reset();
    assert_eq!(sw(&mut c, "00B0000010"), 0x6986);
}

#[test]
fn read_binary_by_sfi_selects_the_ef() {
    let mut c = card(Variant::Full);
    let expected = test_file(0x0101).unwrap();
    assert_eq!(sw(&mut c, SELECT_APP), 0x9000);
    let (data, s) = send(&mut c, "00B0811010");
    assert_eq!((data.as_slice(), s), (&expected[0x10..0x20], 0x9000));
    // Now the current EF.
    let (data, _) = send(&mut c, "00B0002010");
    assert_eq!(data, &expected[0x20..0x30]);
    assert_eq!(sw(&mut c, "00B0850010"), 0x6A82);
    assert_eq!(sw(&mut c, "00B0A10010"), 0x6A86);
    assert_eq!(sw(&mut c, "00B0800010"), 0x6A86);
}

#[test]
fn read_binary_odd_beyond_32k() {
    let mut c = card(Variant::Full);
    let expected = test_file(0x0103).unwrap();
    select_ef(&mut c, 0x0103);
    // Offset 40 000 (9C40), short Le 00: a 53 object of 253 bytes fills 256.
    let (data, s) = send(&mut c, "00B1000004 54029C40 00");
    assert_eq!(s, 0x9000);
    assert_eq!(&data[..3], &[0x53, 0x81, 0xFD]);
    assert_eq!(&data[3..], &expected[40_000..40_253]);
    // Extended, near the end: 10 bytes left of the 98 that would fit in Ne = 100.
    let (data, s) = send(&mut c, "00B10000 000005 5403011166 0064");
    assert_eq!(s, 0x6282);
    assert_eq!(data, [&[0x53, 0x0A][..], &expected[69_990..]].concat());
    assert_eq!(sw(&mut c, "00B1000005 5403011170 00"), 0x6B00);
    // Without the offset object.
    assert_eq!(sw(&mut c, "00B1000003 530100 00"), 0x6A80);
    // By FID in P1-P2 and by SFI in P2.
    assert_eq!(sw(&mut c, SELECT_APP), 0x9000);
    let (data, _) = send(&mut c, "00B1010203 540100 10");
    assert_eq!(
        data,
        [&[0x53, 0x0E][..], &test_file(0x0102).unwrap()[..14]].concat()
    );
    let (data, _) = send(&mut c, "00B1000103 540101 05");
    assert_eq!(
        data,
        [&[0x53, 0x03][..], &test_file(0x0101).unwrap()[1..4]].concat()
    );
}

#[test]
fn whole_large_file_with_b0_then_b1() {
    let mut c = card(Variant::Full);
    let expected = test_file(0x0103).unwrap();
    select_ef(&mut c, 0x0103);
    let mut out = Vec::new();
    while out.len() < expected.len() {
        let offset = out.len();
        let apdu = if offset <= 0x7FFF {
            let mut a = vec![0x00, 0xB0];
            a.extend((offset as u16).to_be_bytes());
            a.extend([0x00, 0x10, 0x00]);
            a
        } else {
            let mut a = vec![0x00, 0xB1, 0x00, 0x00, 0x00, 0x00, 0x05, 0x54, 0x03];
            a.extend(&(offset as u32).to_be_bytes()[1..]);
            a.extend([0x10, 0x00]);
            a
        };
        let (data, s) = send_bytes(&mut c, &apdu);
        assert!(s == 0x9000 || s == 0x6282, "{s:04X}");
        if offset <= 0x7FFF {
            out.extend(data);
        } else {
            out.extend(eid_protocols::tlv::parse_single(&data).unwrap().value());
        }
    }
    assert_eq!(out, expected);
}

#[test]
fn protected_file_needs_the_pin() {
    let mut c = card(Variant::Full);
    select_ef(&mut c, 0x0104);
    assert_eq!(sw(&mut c, "00B0000000"), 0x6982);
    assert_eq!(sw(&mut c, PIN_OK), 0x9000);
    assert_eq!(
        send(&mut c, "00B0000000"),
        (test_file(0x0104).unwrap(), 0x6282)
    );
    c.power_on();
    select_ef(&mut c, 0x0104);
    assert_eq!(sw(&mut c, "00B0000000"), 0x6982);
}

// ---- UPDATE BINARY ----

#[test]
fn update_binary() {
    let mut c = card(Variant::Full);
    select_ef(&mut c, 0x0105);
    assert_eq!(sw(&mut c, "00D603FC04 01020304"), 0x9000);
    assert_eq!(send(&mut c, "00B003FC00"), (vec![1, 2, 3, 4], 0x6282));
    assert_eq!(sw(&mut c, "00D603FC05 0102030405"), 0x6A84);
    assert_eq!(sw(&mut c, "00D6040001 00"), 0x6B00);
    assert_eq!(sw(&mut c, "00D60000"), 0x6700);
    assert_eq!(c.file(&[0x5000, 0x0105]).unwrap()[0x3FC..], [1, 2, 3, 4]);
    select_ef(&mut c, 0x0101);
    assert_eq!(sw(&mut c, "00D6000001 00"), 0x6982);
    assert_eq!(sw(&mut c, "00D6810001 00"), 0x6982);
}

// ---- PINs ----

#[test]
fn pin_retries_block_and_unblock() {
    let mut c = card(Variant::Full);
    assert_eq!(sw(&mut c, "00200081"), 0x63C3);
    assert_eq!(sw(&mut c, PIN_BAD), 0x63C2);
    assert_eq!(sw(&mut c, PIN_OK), 0x9000);
    assert_eq!(sw(&mut c, "00200081"), 0x9000);
    // Drop the verified state.
    assert_eq!(sw(&mut c, "0020FF81"), 0x9000);
    assert_eq!(sw(&mut c, "00200081"), 0x63C3);
    // Counters survive a reset.
    assert_eq!(sw(&mut c, PIN_BAD), 0x63C2);
    c.reset();
    assert_eq!(sw(&mut c, "00200081"), 0x63C2);
    assert_eq!(sw(&mut c, PIN_BAD), 0x63C1);
    assert_eq!(sw(&mut c, PIN_BAD), 0x63C0);
    assert!(c.pin(0x81).unwrap().is_blocked());
    assert_eq!(sw(&mut c, PIN_OK), 0x6983);
    assert_eq!(sw(&mut c, "00200081"), 0x6983);
    // Wrong PUK, then the PUK with a new PIN.
    assert_eq!(
        sw(&mut c, "002C008110 3131313131313131 35363738FFFFFFFF"),
        0x63C9
    );
    assert_eq!(
        sw(&mut c, "002C008110 3132333435363738 35363738FFFFFFFF"),
        0x9000
    );
    assert_eq!(sw(&mut c, "00200081"), 0x63C3);
    assert_eq!(sw(&mut c, PIN_OK), 0x63C2);
    assert_eq!(sw(&mut c, "0020008108 35363738FFFFFFFF"), 0x9000);
    assert_eq!(c.pin(0x81).unwrap().puk_tries_left(), Some(10));
    // Block again and unblock without changing the PIN.
    for _ in 0..3 {
        sw(&mut c, PIN_BAD);
    }
    assert_eq!(sw(&mut c, "002C018108 3132333435363738"), 0x9000);
    assert_eq!(sw(&mut c, "0020008108 35363738FFFFFFFF"), 0x9000);
}

#[test]
fn pin_malformed_and_unknown() {
    let mut c = card(Variant::Full);
    assert_eq!(sw(&mut c, "0020008204 31323334"), 0x6A88);
    assert_eq!(sw(&mut c, "0020008104 31323334"), 0x6700);
    assert_eq!(sw(&mut c, "0020018108 31323334FFFFFFFF"), 0x6A86);
    assert_eq!(sw(&mut c, "002C008108 3132333435363738"), 0x6700);
    assert_eq!(sw(&mut c, "002C028100"), 0x6A86);
    // Nothing was counted.
    assert_eq!(c.pin(0x81).unwrap().tries_left(), 3);
}

#[test]
fn change_reference_data() {
    let mut c = card(Variant::Full);
    // New PIN not digits: refused before the old one is checked.
    assert_eq!(
        sw(&mut c, "0024008110 31313131FFFFFFFF 3132FFFFFFFFFFFF"),
        0x6A80
    );
    assert_eq!(c.pin(0x81).unwrap().tries_left(), 3);
    assert_eq!(
        sw(&mut c, "0024008110 31313131FFFFFFFF 3939393939FFFFFF"),
        0x63C2
    );
    assert_eq!(
        sw(&mut c, "0024008110 31323334FFFFFFFF 3939393939FFFFFF"),
        0x9000
    );
    assert_eq!(sw(&mut c, "00200081"), 0x9000);
    assert_eq!(sw(&mut c, PIN_OK), 0x63C2);
    assert_eq!(sw(&mut c, "0020008108 3939393939FFFFFF"), 0x9000);
    // P1 = 01: only the new value, after VERIFY.
    assert_eq!(sw(&mut c, "0024018108 31323334FFFFFFFF"), 0x9000);
    c.reset();
    assert_eq!(sw(&mut c, "0024018108 31323334FFFFFFFF"), 0x6982);
    assert_eq!(sw(&mut c, PIN_OK), 0x9000);
}

// ---- Chaining ----

#[test]
fn command_chaining() {
    for variant in [Variant::Full, Variant::ShortOnly, Variant::T0] {
        let mut c = card(variant);
        select_ef(&mut c, 0x0105);
        let part1: Vec<u8> = (0..200u8).collect();
        let part2: Vec<u8> = (0..100u8).map(|b| b ^ 0x55).collect();
        let mut first = vec![0x10, 0xD6, 0x00, 0x10, 200];
        first.extend(&part1);
        let mut last = vec![0x00, 0xD6, 0x00, 0x10, 100];
        last.extend(&part2);
        assert_eq!(send_bytes(&mut c, &first).1, 0x9000);
        assert_eq!(send_bytes(&mut c, &last).1, 0x9000);
        let written = &c.file(&[0x5000, 0x0105]).unwrap()[0x10..0x10 + 300];
        assert_eq!(written, [part1.clone(), part2].concat());
        // A chain broken by another command.
        assert_eq!(send_bytes(&mut c, &first).1, 0x9000);
        assert_eq!(sw(&mut c, "00B0000010"), 0x6883);
        // The broken chain is gone: the next command works.
        assert_eq!(sw(&mut c, "00B0000010"), 0x9000);
    }
}

#[test]
fn chained_signature_and_verify() {
    let mut c = card(Variant::Full);
    assert_eq!(sw(&mut c, "1020008104 31323334"), 0x9000);
    assert_eq!(sw(&mut c, "0020008104 FFFFFFFF"), 0x9000);
    let hash = sha256(b"chained");
    let mut first = vec![0x10, 0x2A, 0x9E, 0x9A, 16];
    first.extend(&hash[..16]);
    let mut last = vec![0x00, 0x2A, 0x9E, 0x9A, 16];
    last.extend(&hash[16..]);
    last.push(0x00);
    assert_eq!(send_bytes(&mut c, &first).1, 0x9000);
    let (sig, s) = send_bytes(&mut c, &last);
    assert_eq!((sig.len(), s), (64, 0x9000));
}

// ---- Length forms and T=0 ----

#[test]
fn short_profile_refuses_extended_apdus() {
    let mut c = card(Variant::ShortOnly);
    select_ef(&mut c, 0x0102);
    assert_eq!(sw(&mut c, "00B00000 000100"), 0x6700);
    assert_eq!(sw(&mut c, "00A4080C 000004 50000101"), 0x6700);
    let (data, s) = send(&mut c, "00B0000000");
    assert_eq!((data.len(), s), (256, 0x9000));
}

#[test]
fn t0_get_response_and_wrong_le() {
    let mut c = card(Variant::T0);
    assert_eq!(sw(&mut c, "00C0000010"), 0x6985);
    assert_eq!(sw(&mut c, "00B00000 000100"), 0x6700);
    // Case 4: 61xx, then GET RESPONSE.
    let (none, s) = send(&mut c, "00A4080404 50000101 00");
    assert!(none.is_empty());
    assert_eq!(s & 0xFF00, 0x6100);
    let len = s & 0xFF;
    let (first, s) = send(&mut c, "00C0000005");
    assert_eq!(s, 0x6100 | (len - 5));
    let (rest, s) = send(&mut c, &format!("00C00000{:02X}", len - 5));
    assert_eq!(s, 0x9000);
    let fc = FileControl::parse(&[first, rest].concat()).unwrap();
    assert_eq!(fc.size, Some(100));
    assert_eq!(sw(&mut c, "00C0000010"), 0x6985);
    // READ BINARY beyond the end: 6Cxx with what is left.
    assert_eq!(sw(&mut c, "00B0000000"), 0x6C64);
    assert_eq!(
        send(&mut c, "00B0000064"),
        (test_file(0x0101).unwrap(), 0x9000)
    );
    assert_eq!(sw(&mut c, "00B0006010"), 0x6C04);
    assert_eq!(sw(&mut c, "00B0006400"), 0x6B00);
    // A pending answer is dropped by any other command.
    assert_eq!(sw(&mut c, "00A4080004 50000101 00") & 0xFF00, 0x6100);
    assert_eq!(sw(&mut c, "00B0000001"), 0x9000);
    assert_eq!(sw(&mut c, "00C0000010"), 0x6985);
    // B1 is case 4 too; its warning comes back with the data.
    assert_eq!(sw(&mut c, "00B1000003 540160 FF"), 0x6106);
    assert_eq!(send(&mut c, "00C0000006").1, 0x6282);
    // A signature needs GET RESPONSE.
    assert_eq!(sw(&mut c, PIN_OK), 0x9000);
    let hash = sha256(b"t0");
    let mut pso = vec![0x00, 0x2A, 0x9E, 0x9A, 32];
    pso.extend(hash);
    pso.push(0);
    assert_eq!(send_bytes(&mut c, &pso).1, 0x6140);
    let (sig, s) = send(&mut c, "00C0000040");
    assert_eq!((sig.len(), s), (64, 0x9000));
    // Case 2 answers come directly.
    let (challenge, s) = send(&mut c, "0084000008");
    assert_eq!((challenge.len(), s), (8, 0x9000));
}

#[test]
fn answers_longer_than_le_get_6cxx() {
    let mut c = card(Variant::Full);
    let (_, s) = send(&mut c, "00A4080404 50000101 04");
    assert_eq!(s & 0xFF00, 0x6C00);
    let (fcp, s) = send(&mut c, &format!("00A4080404 50000101 {:02X}", s & 0xFF));
    assert_eq!(s, 0x9000);
    assert!(FileControl::parse(&fcp).is_ok());
}

// ---- Signatures and challenges ----

#[test]
fn signature_verifies_with_the_public_key_file() {
    let mut c = card(Variant::Full);
    select_ef(&mut c, 0x0106);
    let (spki, s) = send(&mut c, "00B0000000");
    assert_eq!(s, 0x6282);
    let public = PKey::public_key_from_der(&spki).unwrap();
    let public: EcKey<_> = public.ec_key().unwrap();

    let hash = sha256(b"hello, card");
    let mut pso = vec![0x00, 0x2A, 0x9E, 0x9A, 32];
    pso.extend(hash);
    pso.push(0x00);
    assert_eq!(send_bytes(&mut c, &pso).1, 0x6982);
    assert_eq!(sw(&mut c, PIN_OK), 0x9000);
    let (sig, s) = send_bytes(&mut c, &pso);
    assert_eq!((sig.len(), s), (64, 0x9000));
    let r = BigNum::from_slice(&sig[..32]).unwrap();
    let s = BigNum::from_slice(&sig[32..]).unwrap();
    let sig = EcdsaSig::from_private_components(r, s).unwrap();
    assert!(sig.verify(&hash, &public).unwrap());
    assert!(!sig.verify(&sha256(b"something else"), &public).unwrap());

    // MSE SET picks a key by reference; an unknown one is refused.
    assert_eq!(sw(&mut c, "002241B606 800154 840102"), 0x6A88);
    assert_eq!(sw(&mut c, "002241B606 800154 840101"), 0x9000);
    assert_eq!(send_bytes(&mut c, &pso).1, 0x9000);
    assert_eq!(sw(&mut c, "002A9E9A00"), 0x6700);
    assert_eq!(sw(&mut c, "002A90A000"), 0x6A86);
}

#[test]
fn keys_differ_per_card() {
    let a = card(Variant::Full);
    let b = card(Variant::Full);
    assert_ne!(a.file(&[0x5000, 0x0106]), b.file(&[0x5000, 0x0106]));
}

#[test]
fn get_challenge() {
    let mut c = card(Variant::Full);
    let (a, s) = send(&mut c, "0084000008");
    assert_eq!((a.len(), s), (8, 0x9000));
    let (b, _) = send(&mut c, "0084000008");
    assert_ne!(a, b);
    let (long, s) = send(&mut c, "00840000 000400");
    assert_eq!((long.len(), s), (1024, 0x9000));
    assert_eq!(sw(&mut c, "00840000"), 0x6700);
    assert_eq!(sw(&mut c, "0084010008"), 0x6A86);
}

// ---- Malformed input ----

#[test]
fn malformed_apdus_get_status_words() {
    let mut c = card(Variant::Full);
    for (apdu, expected) in [
        ("", 0x6700),
        ("00", 0x6700),
        ("00A4", 0x6700),
        ("00A400", 0x6700),
        ("00A4000C05 3F00", 0x6700),
        // Case 2 with no data: the MF.
        ("00A4000C 00", 0x9000),
        ("00A4000C 0000", 0x6700),
        ("00EE0000", 0x6D00),
        ("80A4000C023F00", 0x6E00),
        ("FFA4000C023F00", 0x6E00),
        ("20A4000C023F00", 0x6E00),
        ("01A4000C023F00", 0x6881),
        ("40A4000C023F00", 0x6881),
        ("0CA4000C023F00", 0x6882),
        ("00C0000000", 0x6985),
    ] {
        assert_eq!(sw(&mut c, apdu), expected, "{apdu}");
    }
    assert_eq!(c.apdu_count(), 15);
}

#[test]
fn applet_sees_commands_first() {
    #[derive(Debug, Default)]
    struct Echo {
        resets: usize,
    }
    impl Applet for Echo {
        fn process(&mut self, core: &mut CardCore, command: &Command) -> Option<Response> {
            match command.ins() {
                // A proprietary GET DATA answering the current DF's FID.
                0xCA => {
                    let fid = core.fs().fid(core.current_df()).unwrap_or(0);
                    Some(Response::new(fid.to_be_bytes().to_vec(), Status::Success))
                }
                _ => None,
            }
        }
        fn wrap_response(&mut self, _: &mut CardCore, response: Response) -> Response {
            response
        }
        fn reset(&mut self) {
            self.resets += 1;
        }
    }
    let mut c = CardBuilder::new(atr_t1(&[]), Df::mf().df(Df::new(0x1234)))
        .applet(Echo::default())
        .build();
    assert_eq!(send(&mut c, "00CA000002"), (vec![0x3F, 0x00], 0x9000));
    assert_eq!(sw(&mut c, "00A4010C02 1234"), 0x9000);
    assert_eq!(send(&mut c, "00CA000002"), (vec![0x12, 0x34], 0x9000));
    c.reset();
    assert!(format!("{c:?}").contains("resets: 1"));
}

proptest! {
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let mut c = card(Variant::Full);
        let response = c.process(&bytes);
        prop_assert!(response.len() >= 2);
    }

    #[test]
    fn random_commands_never_panic(
        commands in proptest::collection::vec(
            (
                prop_oneof![Just(0x00u8), Just(0x10), Just(0x0C), Just(0x80), any::<u8>()],
                prop_oneof![
                    Just(0xA4u8), Just(0xB0), Just(0xB1), Just(0xD6), Just(0x20), Just(0x24),
                    Just(0x2C), Just(0x84), Just(0x22), Just(0x2A), Just(0xC0), any::<u8>()
                ],
                any::<u8>(),
                any::<u8>(),
                proptest::collection::vec(any::<u8>(), 0..300),
                0usize..70_000,
                any::<bool>(),
            ),
            1..20,
        ),
        variant in prop_oneof![Just(Variant::Full), Just(Variant::ShortOnly), Just(Variant::T0)],
    ) {
        let mut c = card(variant);
        for (cla, ins, p1, p2, data, ne, extended) in commands {
            let form = if extended { LengthForm::Extended } else { LengthForm::Short };
            let command = Command::new(cla, ins, p1, p2).with_data(data).with_ne(ne);
            if let Ok(apdu) = command.encode(form) {
                let response = c.process(&apdu);
                prop_assert!(response.len() >= 2);
                prop_assert!(response.len() <= 65_538);
            }
        }
    }
}
