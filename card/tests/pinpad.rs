//! PC/SC part 10 pinpad support: feature lists as readers return them, the PIN_VERIFY_STRUCTURE
//! byte for byte, and the reader's answers.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use eid_card::pinpad::{
    FeatureList, GET_FEATURE_REQUEST, MAX_FEATURE_LIST, PinEncoding, PinpadError, VerifyAnswer,
    VerifyPinDirect, feature, pcsclite_ctl_code, verify_pin_direct_with, windows_ctl_code,
};
use eid_card::{Error, PinpadFeatures};
use eid_protocols::{LengthForm, Status, commands};
use proptest::prelude::*;
use zeroize::Zeroizing;

fn h(s: &str) -> Vec<u8> {
    hex::decode(s.replace(' ', "")).unwrap()
}

#[test]
fn control_codes() {
    // SCARD_CTL_CODE(3400): pcsc-lite adds 0x42000000; Windows uses CTL_CODE(0x31, 3400, 0, 0).
    assert_eq!(pcsclite_ctl_code(3400), 0x4200_0000 + 3400);
    assert_eq!(pcsclite_ctl_code(3400), 0x4200_0D48);
    assert_eq!(windows_ctl_code(3400), 0x0031_3520);
    #[cfg(not(windows))]
    assert_eq!(GET_FEATURE_REQUEST, 0x4200_0D48);
    #[cfg(windows)]
    assert_eq!(GET_FEATURE_REQUEST, 0x0031_3520);
}

#[test]
fn feature_list_of_a_ccid_pinpad_reader() {
    // What libccid returns for a class 2 reader: codes SCARD_CTL_CODE(0x330000 + tag).
    let list = FeatureList::parse(&h(
        "06 04 42330006  07 04 42330007  0A 04 4233000A  12 04 42330012",
    ))
    .unwrap();
    assert_eq!(list.get(feature::VERIFY_PIN_DIRECT), Some(0x4233_0006));
    assert_eq!(list.get(feature::MODIFY_PIN_DIRECT), Some(0x4233_0007));
    assert_eq!(list.get(feature::IFD_PIN_PROPERTIES), Some(0x4233_000A));
    assert_eq!(list.get(feature::GET_TLV_PROPERTIES), Some(0x4233_0012));
    assert_eq!(list.get(feature::VERIFY_PIN_START), None);
    assert_eq!(list.entries().len(), 4);
    assert_eq!(
        list.pinpad_features(),
        PinpadFeatures {
            verify_pin_direct: Some(0x4233_0006),
            modify_pin_direct: Some(0x4233_0007),
        }
    );
}

#[test]
fn feature_list_of_a_windows_driver_and_of_a_plain_reader() {
    let list = FeatureList::parse(&h("06 04 00312030 07 04 00312034")).unwrap();
    assert_eq!(list.pinpad_features().verify_pin_direct, Some(0x0031_2030));
    assert!(list.pinpad_features().has_pinpad());
    // A reader without a keypad may list other features, or none.
    let list = FeatureList::parse(&h("12 04 42330012")).unwrap();
    assert!(!list.pinpad_features().has_pinpad());
    assert_eq!(FeatureList::parse(&[]).unwrap(), FeatureList::default());
}

#[test]
fn malformed_feature_lists_are_refused() {
    for (bytes, expected) in [
        ("06", PinpadError::Truncated(0)),
        ("06 04 423300", PinpadError::Truncated(0)),
        ("06 04 42330006 07", PinpadError::Truncated(6)),
        ("06 04 42330006 07 04 4233", PinpadError::Truncated(6)),
        ("06 02 4233", PinpadError::BadLength { tag: 0x06, len: 2 }),
        (
            "06 05 4233000600",
            PinpadError::BadLength { tag: 0x06, len: 5 },
        ),
        ("06 00", PinpadError::BadLength { tag: 0x06, len: 0 }),
        (
            "06 04 42330006 06 04 42330016",
            PinpadError::Duplicate(0x06),
        ),
        ("00 04 42330006", PinpadError::ZeroTag),
    ] {
        assert_eq!(FeatureList::parse(&h(bytes)), Err(expected), "{bytes}");
    }
    let long: Vec<u8> = (0..=MAX_FEATURE_LIST / 6)
        .flat_map(|i| [i as u8 + 1, 4, 0x42, 0x33, 0, i as u8])
        .collect();
    assert_eq!(FeatureList::parse(&long), Err(PinpadError::TooLong));
    assert_eq!(
        Error::from(PinpadError::ZeroTag).code(),
        "protocol-violation"
    );
}

proptest! {
    #[test]
    fn feature_list_parser_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        if let Ok(list) = FeatureList::parse(&bytes) {
            let encoded: Vec<u8> = list
                .entries()
                .iter()
                .flat_map(|&(tag, code)| {
                    let mut e = vec![tag, 4];
                    e.extend_from_slice(&code.to_be_bytes());
                    e
                })
                .collect();
            prop_assert_eq!(encoded, bytes);
        }
    }

    #[test]
    fn answer_parser_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..8)) {
        let parsed = VerifyAnswer::parse(&bytes);
        prop_assert_eq!(parsed.is_ok(), bytes.len() == 2);
    }
}

/// The Citizen Card's authentication PIN (reference 81), field by field.
const CC_AUTH_STRUCTURE: &str = concat!(
    "1E",               // bTimerOut: 30 s for the first key
    "1E",               // bTimerOut2: 30 s after each key
    "82",               // bmFormatString: units bytes, PIN at offset 0, left-justified, ASCII
    "08",               // bmPINBlockString: no PIN length field, 8-byte block
    "00",               // bmPINLengthFormat: no PIN length in the APDU
    "0804",             // wPINMaxExtraDigit 0x0408, little-endian: 4 to 8 digits
    "02",               // bEntryValidationCondition: validation key pressed
    "01",               // bNumberMessage: one message
    "0904",             // wLangId 0x0409 (English, US), little-endian
    "00",               // bMsgIndex
    "000000",           // bTeoPrologue
    "0D000000",         // ulDataLength: 13, little-endian
    "0020008108",       // VERIFY, P2 = 81, Lc = 8
    "FFFFFFFFFFFFFFFF"  // the PIN block, FF-padded
);

#[test]
fn citizen_card_verify_structure_byte_for_byte() {
    let structure = VerifyPinDirect::citizen_card(0x81).encode().unwrap();
    assert_eq!(hex::encode_upper(&structure), CC_AUTH_STRUCTURE);
    assert_eq!(structure.len(), 19 + 13);
    let sign = VerifyPinDirect::citizen_card(0x82).encode().unwrap();
    assert_eq!(sign[22], 0x82);
    assert_eq!(sign.len(), structure.len());
}

/// What a reader does with the structure: the typed digits go into the block at the position
/// bmFormatString gives, within the limits of wPINMaxExtraDigit.
fn reader_builds_apdu(structure: &[u8], typed: &str) -> Result<Vec<u8>, &'static str> {
    let format = structure[2];
    assert_eq!(format & 0x80, 0x80, "position in bytes");
    assert_eq!(format & 0x03, 0x02, "ASCII");
    assert_eq!(format & 0x04, 0x00, "left-justified");
    let position = usize::from((format >> 3) & 0x0F);
    let block_len = usize::from(structure[3] & 0x0F);
    let (max, min) = (usize::from(structure[5]), usize::from(structure[6]));
    if typed.len() < min || typed.len() > max {
        return Err("6403");
    }
    let data_len = u32::from_le_bytes(structure[15..19].try_into().unwrap()) as usize;
    let mut apdu = structure[19..].to_vec();
    assert_eq!(apdu.len(), data_len);
    assert_eq!(usize::from(apdu[4]), block_len);
    apdu[5 + position..5 + position + typed.len()].copy_from_slice(typed.as_bytes());
    Ok(apdu)
}

#[test]
fn the_reader_sends_the_same_apdu_as_a_typed_pin() {
    let structure = VerifyPinDirect::citizen_card(0x81).encode().unwrap();
    for typed in ["1234", "12345", "12345678"] {
        let mut block = Zeroizing::new(typed.as_bytes().to_vec());
        block.resize(8, 0xFF);
        let typed_apdu = commands::verify(0x81, block)
            .encode(LengthForm::Short)
            .unwrap();
        assert_eq!(
            reader_builds_apdu(&structure, typed).unwrap(),
            typed_apdu.to_vec(),
            "{typed}"
        );
    }
    assert_eq!(reader_builds_apdu(&structure, "123"), Err("6403"));
    assert_eq!(reader_builds_apdu(&structure, "123456789"), Err("6403"));
}

#[test]
fn verify_structure_parameters_are_checked() {
    let base = VerifyPinDirect::citizen_card(0x81);
    for bad in [
        VerifyPinDirect {
            block_len: 0,
            ..base.clone()
        },
        VerifyPinDirect {
            block_len: 16,
            ..base.clone()
        },
        VerifyPinDirect {
            min_digits: 0,
            ..base.clone()
        },
        VerifyPinDirect {
            min_digits: 9,
            ..base.clone()
        },
        VerifyPinDirect {
            max_digits: 9,
            ..base.clone()
        },
    ] {
        assert!(
            matches!(bad.encode(), Err(PinpadError::BadParameters(_))),
            "{bad:?}"
        );
    }
    // BCD: two digits per byte.
    let bcd = VerifyPinDirect {
        encoding: PinEncoding::Bcd,
        block_len: 4,
        max_digits: 8,
        padding: 0x00,
        timeout_secs: 0,
        timeout_after_key_secs: 0,
        ..base.clone()
    };
    assert_eq!(
        hex::encode_upper(bcd.encode().unwrap()),
        "00008104000804020109040000000009000000002000810400000000"
    );
    assert!(
        VerifyPinDirect {
            max_digits: 9,
            ..bcd
        }
        .encode()
        .is_err()
    );
}

#[test]
fn reader_answers() {
    for (sw, expected) in [
        ("9000", VerifyAnswer::Verified),
        ("63C2", VerifyAnswer::WrongPin { retries_left: 2 }),
        ("63C0", VerifyAnswer::Blocked),
        ("6983", VerifyAnswer::Blocked),
        ("6984", VerifyAnswer::Blocked),
        ("6400", VerifyAnswer::Timeout),
        ("6401", VerifyAnswer::Cancelled),
        ("6403", VerifyAnswer::LengthOutOfRange),
        ("6B80", VerifyAnswer::ReaderRefused),
        ("6A80", VerifyAnswer::Other(Status::from([0x6A, 0x80]))),
    ] {
        assert_eq!(VerifyAnswer::parse(&h(sw)), Ok(expected), "{sw}");
    }
    for bad in ["", "90", "009000", "63C29000"] {
        assert_eq!(
            VerifyAnswer::parse(&h(bad)),
            Err(PinpadError::BadAnswer(bad.len() / 2))
        );
    }
}

#[test]
fn answers_map_to_the_card_layers_errors() {
    let header = VerifyPinDirect::citizen_card(0x81).apdu_header();
    let code = |a: VerifyAnswer| a.into_result(header).map_err(|e| e.code());
    assert_eq!(code(VerifyAnswer::Verified), Ok(()));
    assert!(matches!(
        VerifyAnswer::WrongPin { retries_left: 1 }.into_result(header),
        Err(Error::WrongPin { retries_left: 1 })
    ));
    assert_eq!(code(VerifyAnswer::Blocked), Err("pin-blocked"));
    assert_eq!(code(VerifyAnswer::Timeout), Err("timeout"));
    assert_eq!(code(VerifyAnswer::Cancelled), Err("cancelled"));
    assert_eq!(
        code(VerifyAnswer::LengthOutOfRange),
        Err("invalid-pin-format")
    );
    assert_eq!(code(VerifyAnswer::ReaderRefused), Err("not-supported"));
    assert_eq!(
        code(VerifyAnswer::Other(Status::from([0x6A, 0x80]))),
        Err("card-status")
    );
}

#[test]
fn verify_through_the_control_hook() {
    let features = PinpadFeatures {
        verify_pin_direct: Some(0x4233_0006),
        modify_pin_direct: None,
    };
    let request = VerifyPinDirect::citizen_card(0x81);

    let mut seen = None;
    let result = verify_pin_direct_with(features, &request, |code, input| {
        seen = Some((code, input.to_vec()));
        Ok(vec![0x63, 0xC1])
    });
    assert!(matches!(result, Err(Error::WrongPin { retries_left: 1 })));
    let (code, input) = seen.unwrap();
    assert_eq!(code, 0x4233_0006);
    assert_eq!(hex::encode_upper(input), CC_AUTH_STRUCTURE);

    assert!(verify_pin_direct_with(features, &request, |_, _| Ok(vec![0x90, 0x00])).is_ok());
    assert!(matches!(
        verify_pin_direct_with(features, &request, |_, _| Err(Error::CardRemoved)),
        Err(Error::CardRemoved)
    ));
    assert!(matches!(
        verify_pin_direct_with(features, &request, |_, _| Ok(vec![0x90])),
        Err(Error::ProtocolViolation(_))
    ));
    let mut called = false;
    let none = verify_pin_direct_with(PinpadFeatures::default(), &request, |_, _| {
        called = true;
        Ok(vec![0x90, 0x00])
    });
    assert!(matches!(none, Err(Error::NotSupported(_))));
    assert!(!called);
}
