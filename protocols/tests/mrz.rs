//! MRZ parsing and check digits against the specimen MRZs of ICAO 9303 parts 4, 5, 6 and the
//! worked BAC example of ICAO 9303-11 Appendix D.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use eid_protocols::mrz::{Mrz, MrzError, MrzFormat, Sex, check_char, check_digit, mrz_information};
use proptest::prelude::*;
use time::macros::date;

const TODAY: time::Date = date!(2026 - 01 - 01);

#[test]
fn check_digit_examples_of_9303_3() {
    // ICAO 9303-3 §4.9 worked examples: date 520727 -> 3, document number AB2134<<< -> 5.
    assert_eq!(check_digit(b"520727"), 3);
    assert_eq!(check_digit(b"AB2134<<<"), 5);
    assert_eq!(check_digit(b"L898902C<"), 3);
    assert_eq!(check_char(b"AB2134<<<"), '5');
}

#[test]
fn mrz_information_matches_appendix_d() {
    let info = mrz_information("L898902C", "690806", "940623").unwrap();
    assert_eq!(info.as_str(), "L898902C<369080619406236");
    let pace = mrz_information("T22000129", "640812", "101031").unwrap();
    assert_eq!(pace.as_str(), "T22000129364081251010318");
}

#[test]
fn mrz_information_rejects_bad_fields() {
    assert!(matches!(
        mrz_information("", "690806", "940623"),
        Err(MrzError::Field { .. })
    ));
    assert!(mrz_information("L898902C", "69080", "940623").is_err());
    assert!(mrz_information("L89-902C", "690806", "940623").is_err());
    assert!(mrz_information("L898902C", "690806", "9406AB").is_err());
}

#[test]
fn td3_specimen_of_9303_4() {
    let mrz = Mrz::parse_at(
        "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<\n\
         L898902C36UTO7408122F1204159ZE184226B<<<<<10",
        TODAY,
    )
    .unwrap();
    assert_eq!(mrz.format, MrzFormat::Td3);
    assert_eq!(mrz.document_code, "P");
    assert_eq!(mrz.issuing_state, "UTO");
    assert_eq!(mrz.primary_identifier, "ERIKSSON");
    assert_eq!(mrz.secondary_identifier, "ANNA MARIA");
    assert_eq!(mrz.document_number, "L898902C3");
    assert_eq!(mrz.nationality, "UTO");
    assert_eq!(mrz.birth_date.date, Some(date!(1974 - 08 - 12)));
    assert_eq!(mrz.sex, Sex::Female);
    assert_eq!(mrz.expiry_date.date, Some(date!(2012 - 04 - 15)));
    assert_eq!(mrz.optional_data, "ZE184226B");
    assert!(mrz.checks.all_valid(), "{:?}", mrz.checks);
    assert_eq!(mrz.checks.optional_data.unwrap().found, '1');
    assert_eq!(
        mrz.mrz_information().unwrap().as_str(),
        "L898902C3674081221204159"
    );
}

#[test]
fn td3_without_separators_is_read_like_dg1() {
    let s =
        "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<L898902C36UTO7408122F1204159ZE184226B<<<<<10";
    let mrz = Mrz::parse_at(s, TODAY).unwrap();
    assert_eq!(mrz.lines.len(), 2);
    assert!(mrz.checks.all_valid());
}

#[test]
fn td1_specimen_of_9303_5() {
    let mrz = Mrz::parse_at(
        "I<UTOD231458907<<<<<<<<<<<<<<<\n\
         7408122F1204159UTO<<<<<<<<<<<6\n\
         ERIKSSON<<ANNA<MARIA<<<<<<<<<<",
        TODAY,
    )
    .unwrap();
    assert_eq!(mrz.format, MrzFormat::Td1);
    assert_eq!(mrz.document_code, "I");
    assert_eq!(mrz.document_number, "D23145890");
    assert_eq!(mrz.birth_date.date, Some(date!(1974 - 08 - 12)));
    assert_eq!(mrz.expiry_date.date, Some(date!(2012 - 04 - 15)));
    assert_eq!(mrz.nationality, "UTO");
    assert_eq!(mrz.primary_identifier, "ERIKSSON");
    assert_eq!(mrz.secondary_identifier, "ANNA MARIA");
    assert_eq!(mrz.optional_data, "");
    assert_eq!(mrz.optional_data_2.as_deref(), Some(""));
    assert!(mrz.checks.all_valid(), "{:?}", mrz.checks);
}

#[test]
fn td1_long_document_number_overflows_into_optional_data() {
    // ICAO 9303-5 §4.2.2 note j: the number D23145890734 does not fit in nine positions; '<' at
    // position 15, then the last three characters and the check digit in the optional data.
    let mrz = Mrz::parse_at(
        "I<UTOD23145890<7349<<<<<<<<<<<\n\
         3407127M9507122UTO<<<<<<<<<<<2\n\
         STEVENSON<<PETER<JOHN<<<<<<<<<",
        TODAY,
    )
    .unwrap();
    assert_eq!(mrz.document_number, "D23145890734");
    assert_eq!(mrz.checks.document_number.found, '9');
    assert!(mrz.checks.all_valid(), "{:?}", mrz.checks);
    assert_eq!(mrz.optional_data, "");
    assert_eq!(mrz.sex, Sex::Male);
    assert_eq!(mrz.birth_date.date, Some(date!(1934 - 07 - 12)));
    assert_eq!(mrz.expiry_date.date, Some(date!(1995 - 07 - 12)));
    assert_eq!(mrz.secondary_identifier, "PETER JOHN");
}

#[test]
fn td2_specimen_of_9303_6() {
    let mrz = Mrz::parse_at(
        "I<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<\n\
         D231458907UTO7408122F1204159<<<<<<<6",
        TODAY,
    )
    .unwrap();
    assert_eq!(mrz.format, MrzFormat::Td2);
    assert_eq!(mrz.document_number, "D23145890");
    assert_eq!(mrz.primary_identifier, "ERIKSSON");
    assert!(mrz.checks.all_valid(), "{:?}", mrz.checks);
}

#[test]
fn a_wrong_digit_is_reported_not_hidden() {
    // Birth date check digit 2 changed to 3: the field check and the composite fail.
    let mrz = Mrz::parse_at(
        "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<\n\
         L898902C36UTO7408123F1204159ZE184226B<<<<<10",
        TODAY,
    )
    .unwrap();
    assert!(!mrz.checks.birth_date.is_valid());
    assert_eq!(mrz.checks.birth_date.computed, '2');
    assert!(!mrz.checks.composite.is_valid());
    assert!(mrz.checks.document_number.is_valid());
    assert!(!mrz.checks.all_valid());
}

#[test]
fn century_rule_birth_past_expiry_future() {
    let mrz = Mrz::parse_at(
        "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<\n\
         L898902C36UTO2501019F3504159ZE184226B<<<<<<0",
        TODAY,
    )
    .unwrap();
    assert_eq!(mrz.birth_date.date, Some(date!(2025 - 01 - 01)));
    assert_eq!(mrz.expiry_date.date, Some(date!(2035 - 04 - 15)));
    let later = Mrz::parse_at(&mrz.lines.join("\n"), date!(2024 - 06 - 01)).unwrap();
    assert_eq!(later.birth_date.date, Some(date!(1925 - 01 - 01)));
}

#[test]
fn unknown_date_parts_are_kept_raw() {
    let mrz = Mrz::parse_at(
        "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<\n\
         L898902C36UTO74<<<<0F1204159ZE184226B<<<<<10",
        TODAY,
    )
    .unwrap();
    assert_eq!(mrz.birth_date.raw, "74<<<<");
    assert_eq!(mrz.birth_date.date, None);
}

#[test]
fn malformed_input_is_an_error() {
    assert_eq!(Mrz::parse_at("P<UTO", TODAY), Err(MrzError::Length(5)));
    assert!(matches!(
        Mrz::parse_at(&"p".repeat(88), TODAY),
        Err(MrzError::Character { position: 0, .. })
    ));
    assert!(Mrz::parse_at(&"<".repeat(1000), TODAY).is_err());
}

proptest! {
    #[test]
    fn parse_never_panics(s in "[A-Z0-9<\n]{0,100}") {
        let _ = Mrz::parse_at(&s, TODAY);
    }

    #[test]
    fn any_88_chars_parse_as_td3(s in "[A-Z0-9<]{88}") {
        let mrz = Mrz::parse_at(&s, TODAY).unwrap();
        prop_assert_eq!(mrz.format, MrzFormat::Td3);
    }

    #[test]
    fn arbitrary_unicode_never_panics(s in "\\PC{0,120}") {
        let _ = Mrz::parse_at(&s, TODAY);
    }
}
