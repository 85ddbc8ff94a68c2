//! `Command::parse` on arbitrary bytes (the card side of a reader, or a mock card).
//!
//! Invariants checked when the input parses:
//!
//! 1. The header is the first four input bytes.
//! 2. Re-encoding the command in the length form `parse` reported gives back exactly the input.
//!    There is no short/extended ambiguity to except here because the decoding of
//!    ISO/IEC 7816-3 §12.1.3 is a function of the body's shape: a short Lc is never 00, so a body
//!    starting with 00 is extended unless it is the single byte `00` (case 2S, Le = 00, Ne = 256),
//!    and an extended body is at least three bytes. The only case that is the same bytes in both
//!    forms is case 1 (header only), which `parse` reports as short, so `encode(Short)` is what
//!    must give it back.
//! 3. The length form is honest: a command reported as short fits the short form; a command
//!    reported as extended is never case 1 (but it may well fit the short form: nothing forbids a
//!    terminal from sending `00 B0 00 00 00 00 10` in extended form).
//! 4. Encoding in the *other* form fails only if that form is short and the command needs the
//!    extended form; otherwise it parses back to the same header, data and Ne, reported in that
//!    other form (except case 1, which is the identical header-only APDU and reads as short).
//! 5. `Debug` never panics and never prints the data field.
#![no_main]

use eid_protocols::apdu::{
    Case, Command, EXTENDED_MAX_NC, EXTENDED_MAX_NE, LengthForm, SHORT_MAX_NC, SHORT_MAX_NE,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let Ok((cmd, form)) = Command::parse(input) else {
        return;
    };

    // 1. Header.
    assert_eq!([cmd.cla(), cmd.ins(), cmd.p1(), cmd.p2()], input[..4]);
    let h = cmd.header();
    assert_eq!([h.cla, h.ins, h.p1, h.p2], input[..4]);

    // Bounds and case bookkeeping.
    let (max_nc, max_ne) = match form {
        LengthForm::Short => (SHORT_MAX_NC, SHORT_MAX_NE),
        LengthForm::Extended => (EXTENDED_MAX_NC, EXTENDED_MAX_NE),
    };
    assert!(cmd.nc() <= max_nc, "Nc {} over the {form:?} maximum", cmd.nc());
    assert_eq!(cmd.nc(), cmd.data().len());
    if let Some(ne) = cmd.ne() {
        assert!((1..=max_ne).contains(&ne), "Ne {ne} outside 1..={max_ne} for {form:?}");
    }
    let expected_case = match (cmd.nc() > 0, cmd.ne().is_some()) {
        (false, false) => Case::One,
        (false, true) => Case::Two,
        (true, false) => Case::Three,
        (true, true) => Case::Four,
    };
    assert_eq!(cmd.case(), expected_case);
    assert!(!cmd.is_sensitive(), "parse must not mark data as secret by itself");

    // 2. Round trip in the reported form.
    let again = match cmd.encode(form) {
        Ok(bytes) => bytes,
        Err(e) => panic!("{cmd:?} parsed as {form:?} but does not re-encode in it: {e}"),
    };
    assert_eq!(&again[..], input, "{cmd:?} ({form:?}) re-encodes differently");

    // 3. Honest length form.
    match form {
        LengthForm::Short => assert!(!cmd.needs_extended(), "{cmd:?} reported short"),
        LengthForm::Extended => assert_ne!(cmd.case(), Case::One, "case 1 reported extended"),
    }
    if cmd.case() == Case::One {
        assert_eq!(input.len(), 4);
    }

    // 4. The other form.
    let other = match form {
        LengthForm::Short => LengthForm::Extended,
        LengthForm::Extended => LengthForm::Short,
    };
    match cmd.encode(other) {
        Ok(bytes) => {
            let (back, back_form) = match Command::parse(&bytes) {
                Ok(parsed) => parsed,
                Err(e) => panic!("{cmd:?} encoded as {other:?} does not parse: {e}"),
            };
            assert_eq!(back.header(), cmd.header());
            assert_eq!(back.data(), cmd.data());
            assert_eq!(back.ne(), cmd.ne());
            if cmd.case() == Case::One {
                assert_eq!(back_form, LengthForm::Short);
                assert_eq!(&bytes[..], input);
            } else {
                assert_eq!(back_form, other, "{cmd:?} encoded as {other:?} reads back as {back_form:?}");
            }
        }
        Err(e) => assert!(
            other == LengthForm::Short && cmd.needs_extended(),
            "{cmd:?} ({form:?}) does not encode as {other:?}: {e}"
        ),
    }

    // 5. Debug output stays metadata-only. (Checked on the data as a hex-free substring would be
    // meaningless for short data; what matters is that the format never panics and has no data.)
    let shown = format!("{cmd:?}");
    assert!(shown.starts_with("Command(") && shown.ends_with(')'));
    assert!(!shown.contains('['), "Debug seems to print a byte slice: {shown}");
});
