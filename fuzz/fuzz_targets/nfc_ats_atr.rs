//! `eid_card::nfc::atr::from_ats` on arbitrary bytes (an ATS as a card sends it over the air,
//! without its length byte), and `from_atqb` on arbitrary ATQB fields.
//!
//! Invariants: never a panic; when it builds an ATR, our own ATR parser accepts it with a valid
//! TCK, T=1 offered, and its historical bytes are the ATS's (at most 15, cut as CCID readers
//! do); the type B ATR always carries the 8 bytes of PC/SC part 3.
#![no_main]

use eid_card::nfc::atr::{MAX_HISTORICAL, ats_historical_bytes, from_atqb, from_ats};
use eid_protocols::atr::Atr;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    match from_ats(input) {
        Ok(atr) => {
            let historical = ats_historical_bytes(input).expect("same verdict");
            let parsed = Atr::parse(&atr).expect("a synthesised ATR parses");
            assert_eq!(parsed.tck_valid, Some(true));
            assert!(parsed.protocols.contains(&1));
            let kept = &historical[..historical.len().min(MAX_HISTORICAL)];
            assert_eq!(parsed.historical, kept);
        }
        Err(_) => assert!(ats_historical_bytes(input).is_err()),
    }
    if let Some(fields) = input.get(..8) {
        let atr = from_atqb(
            [fields[0], fields[1], fields[2], fields[3]],
            [fields[4], fields[5], fields[6]],
            fields[7],
        );
        let parsed = Atr::parse(&atr).expect("a type B ATR parses");
        assert_eq!(parsed.historical.len(), 8);
        assert_eq!(parsed.tck_valid, Some(true));
    }
});
