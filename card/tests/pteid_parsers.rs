//! The Citizen Card file parsers on hostile bytes: whatever a card (or something posing as one)
//! returns for the ID file, the CC2 national-data files, the address file or a certificate file
//! is either parsed or a typed `MalformedCardData` error, never a panic.

#![allow(clippy::unwrap_used)]

use eid_card::Error;
use eid_card::pteid::address::AddressFile;
use eid_card::pteid::{CardCertificate, CertKind, Identity};
use proptest::prelude::*;

fn typed(result: Result<impl std::fmt::Debug, Error>) -> bool {
    matches!(result, Ok(_) | Err(Error::MalformedCardData { .. }))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_files_are_parsed_or_refused_typed(bytes in proptest::collection::vec(any::<u8>(), 0..2200)) {
        prop_assert!(typed(Identity::parse_cc1(&bytes)));
        prop_assert!(typed(Identity::parse_cc2(&bytes, &bytes, &bytes)));
        prop_assert!(typed(AddressFile::parse(&bytes)));
        prop_assert!(typed(CardCertificate::parse(CertKind::Authentication, &bytes)));
    }

    /// The CC2 files are TLV: random values under the right outer tags get past the first
    /// check and exercise the inner parsing.
    #[test]
    fn random_values_under_the_cc2_tags_are_refused_typed(
        id in proptest::collection::vec(any::<u8>(), 0..300),
        mrz in proptest::collection::vec(any::<u8>(), 0..120),
        photo in proptest::collection::vec(any::<u8>(), 0..200),
    ) {
        let wrap = |tag: u8, v: &[u8]| {
            let mut out = vec![tag, 0x82, (v.len() >> 8) as u8, v.len() as u8];
            out.extend_from_slice(v);
            out
        };
        prop_assert!(typed(Identity::parse_cc2(&wrap(0x6D, &id), &wrap(0x61, &mrz), &wrap(0x75, &photo))));
    }
}

#[test]
fn empty_and_zero_files_are_malformed() {
    for bytes in [&[][..], &[0u8; 16][..], &[0xFFu8; 40][..]] {
        assert!(matches!(
            Identity::parse_cc1(bytes),
            Err(Error::MalformedCardData { .. })
        ));
        assert!(matches!(
            Identity::parse_cc2(bytes, bytes, bytes),
            Err(Error::MalformedCardData { .. })
        ));
        assert!(matches!(
            CardCertificate::parse(CertKind::Root, bytes),
            Err(Error::MalformedCardData { .. })
        ));
    }
}
