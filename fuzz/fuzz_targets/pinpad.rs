//! `pinpad::FeatureList::parse` and `pinpad::VerifyAnswer::parse` on arbitrary bytes (what a
//! reader answers to `CM_IOCTL_GET_FEATURE_REQUEST` and to `FEATURE_VERIFY_PIN_DIRECT`).
//!
//! Invariants: a feature list parses only when it is a whole number of 6-byte entries
//! `tag (≠ 0) || 04 || code (big-endian)`, at most `MAX_FEATURE_LIST` bytes, each tag once; the
//! entries re-encode to the input, and `get` and `pinpad_features` agree with them. An answer
//! parses exactly when it has two bytes, and maps to a card-layer result without panicking.
#![no_main]

use eid_card::pinpad::{FeatureList, MAX_FEATURE_LIST, VerifyAnswer, VerifyPinDirect, feature};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    if let Ok(list) = FeatureList::parse(input) {
        assert!(input.len() <= MAX_FEATURE_LIST);
        assert_eq!(input.len() % 6, 0);
        assert_eq!(list.entries().len(), input.len() / 6);
        let mut encoded = Vec::with_capacity(input.len());
        for (i, &(tag, code)) in list.entries().iter().enumerate() {
            assert_ne!(tag, 0);
            assert!(
                list.entries()[..i].iter().all(|&(t, _)| t != tag),
                "tag {tag:#04X} twice"
            );
            assert_eq!(list.get(tag), Some(code));
            encoded.push(tag);
            encoded.push(4);
            encoded.extend_from_slice(&code.to_be_bytes());
        }
        assert_eq!(encoded, input, "entries do not re-encode to the input");
        let features = list.pinpad_features();
        assert_eq!(
            features.verify_pin_direct,
            list.get(feature::VERIFY_PIN_DIRECT)
        );
        assert_eq!(
            features.modify_pin_direct,
            list.get(feature::MODIFY_PIN_DIRECT)
        );
    }

    let answer = VerifyAnswer::parse(input);
    assert_eq!(answer.is_ok(), input.len() == 2);
    if let Ok(answer) = answer {
        let header = VerifyPinDirect::citizen_card(0x81).apdu_header();
        let result = answer.into_result(header);
        assert_eq!(result.is_ok(), input == [0x90, 0x00]);
    }
});
