//! `Response::parse` and `Response::from_vec` on arbitrary bytes (what a card or reader returns).
//!
//! Invariants: parsing succeeds exactly for 2..=65 538 bytes; when it does, the data is the input
//! minus its last two bytes, the status word round-trips (`Status::from(sw).to_bytes() == sw`),
//! `to_bytes()` gives back the input, and `from_vec` (the buffer-reusing variant) agrees.
#![no_main]

use eid_protocols::apdu::{ApduError, MAX_RESPONSE_LEN, Response};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let parsed = Response::parse(input);
    let from_vec = Response::from_vec(input.to_vec());
    assert_eq!(parsed, from_vec, "parse and from_vec disagree");

    match parsed {
        Ok(r) => {
            assert!((2..=MAX_RESPONSE_LEN).contains(&input.len()));
            let (data, sw) = input.split_at(input.len() - 2);
            assert_eq!(r.data(), data);
            assert_eq!(r.status().to_bytes(), sw);
            assert_eq!(r.status().to_u16(), u16::from_be_bytes([sw[0], sw[1]]));
            assert_eq!(r.is_success(), sw == [0x90, 0x00]);
            assert_eq!(r.to_bytes(), input, "to_bytes does not give the input back");
            let shown = format!("{r:?}");
            assert!(shown.starts_with("Response(len="), "{shown}");
            let _ = r.status().to_string();
            let _ = r.status().is_warning();
            assert_eq!(r.into_data(), data);
        }
        Err(ApduError::ResponseTooShort(n)) => assert!(n == input.len() && n < 2),
        Err(ApduError::ResponseTooLong(n)) => assert!(n == input.len() && n > MAX_RESPONSE_LEN),
        Err(e) => panic!("unexpected response error {e:?}"),
    }
});
