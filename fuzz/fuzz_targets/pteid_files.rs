//! The Citizen Card file parsers of `eid_card::pteid` on arbitrary bytes: the CC1 ID file (fixed
//! layout), the CC2 national-data files (DG13 tagged layout, MRZ file, photo record), the CC1
//! address file and the certificate files. Invariant: nothing panics, whatever the card sends.
#![no_main]

use eid_card::pteid::address::AddressFile;
use eid_card::pteid::{CardCertificate, CertKind, Identity};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let _ = Identity::parse_cc1(input);
    // Split the input in three so each CC2 file gets its own hostile bytes.
    let third = input.len() / 3;
    let (id, rest) = input.split_at(third);
    let (mrz, photo) = rest.split_at(third);
    let _ = Identity::parse_cc2(id, mrz, photo);
    let _ = Identity::parse_cc2(input, input, input);
    let _ = AddressFile::parse(input);
    let _ = CardCertificate::parse(CertKind::Authentication, input);
});
