//! EF.SOD / CMS SignedData parsing and Passive Authentication on arbitrary bytes
//! (`eid_protocols::pa`). Invariants: nothing panics; a parsed SOD lists only data group numbers
//! that fit a byte, its hashes verify against themselves through `check_hash`, and the report
//! has exactly one entry per listed data group plus the files given that it does not list.
#![no_main]

use eid_protocols::pa::{Check, CscaStore, SignedData, Sod};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let _ = SignedData::parse(input);
    let at = time::OffsetDateTime::UNIX_EPOCH + time::Duration::days(20_000);
    let mut store = CscaStore::new();
    let _ = store.add_file(input, at);
    let Ok(sod) = Sod::parse(input) else { return };
    let lso = &sod.lds_security_object;
    for h in &lso.hashes {
        if lso.hashes.iter().find(|x| x.data_group == h.data_group) == Some(h) {
            assert_eq!(sod.check_hash(h.data_group, &h.hash), Check::Passed);
        }
    }
    let _ = sod.verify_signature();
    let _ = sod.signer_certificate_der();
    let files: [(u8, &[u8]); 2] = [(1, input), (200, input)];
    let report = sod.verify(Some(&store), at, &files);
    let mut listed: Vec<u8> = lso.hashes.iter().map(|h| h.data_group).collect();
    listed.sort_unstable();
    listed.dedup();
    for n in &listed {
        assert!(report.data_group(*n).is_some());
    }
    if sod.hash_for(200).is_none() {
        assert!(report.data_group(200).is_some_and(Check::is_failed));
    }
    let _ = format!("{report:?}");
});
