//! MRZ parsing (`eid_protocols::mrz`) on arbitrary text. Invariants: nothing panics; a parsed
//! MRZ re-parses from its own lines to the same value; computed check digits are digits; the
//! MRZ information built from a parsed MRZ carries the document number's computed check digit.
#![no_main]

use eid_protocols::mrz::{Mrz, check_digit, mrz_information};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    assert!(check_digit(input) < 10);
    let text = String::from_utf8_lossy(input);
    let today = time::macros::date!(2026 - 01 - 01);
    let Ok(mrz) = Mrz::parse_at(&text, today) else {
        let _ = mrz_information(&text, "000000", "000000");
        return;
    };
    let again = Mrz::parse_at(&mrz.lines.join("\n"), today).expect("own lines parse");
    assert_eq!(again, mrz);
    assert!(mrz.checks.composite.computed.is_ascii_digit());
    if let Ok(info) = mrz.mrz_information() {
        if mrz.document_number.len() <= 9 && !mrz.document_number.is_empty() {
            assert_eq!(
                info.as_bytes().get(9).copied(),
                Some(mrz.checks.document_number.computed as u8)
            );
        }
    }
});
