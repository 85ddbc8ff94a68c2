//! `Atr::parse` and `Atr::card_capabilities` on arbitrary bytes (what a reader reports).
//!
//! Invariants when the input parses: 2..=33 bytes starting with 3B or 3F; at least one protocol,
//! each a four-bit value, none repeated; exactly K = T0 & 0F historical bytes, which sit at the end
//! of the ATR, just before TCK when there is one; T=15 (global interface bytes) is never listed as
//! a protocol; TCK is present (`tck_valid` is `Some`) whenever a protocol other than T=0 is listed
//! (also when only T=15 asks for it), and is valid exactly when T0..TCK XOR to zero;
//! card capabilities are only found behind category indicator 00 or 80.
#![no_main]

use eid_protocols::atr::Atr;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let Ok(atr) = Atr::parse(input) else {
        return;
    };
    assert!((2..=33).contains(&input.len()), "ATR of {} bytes accepted", input.len());
    assert!(matches!(input[0], 0x3B | 0x3F));

    assert!(!atr.protocols.is_empty());
    for (i, t) in atr.protocols.iter().enumerate() {
        assert!(*t < 15, "T={t} listed as a protocol");
        assert!(!atr.protocols[..i].contains(t), "protocol T={t} listed twice");
    }

    let k = usize::from(input[1] & 0x0F);
    assert_eq!(atr.historical.len(), k);
    if atr.protocols.iter().any(|&t| t != 0) {
        assert!(atr.tck_valid.is_some(), "TCK missing with T != 0 offered");
    }
    let end = if atr.tck_valid.is_some() { input.len() - 1 } else { input.len() };
    assert!(end >= 2 + k);
    assert_eq!(atr.historical, input[end - k..end], "historical bytes not at the end");
    if let Some(valid) = atr.tck_valid {
        let xor = input[1..].iter().fold(0u8, |acc, b| acc ^ b);
        assert_eq!(valid, xor == 0);
    }

    if atr.card_capabilities().is_some() {
        assert!(matches!(atr.historical.first(), Some(0x00 | 0x80)));
    }
    let _ = format!("{atr:?}");
});
