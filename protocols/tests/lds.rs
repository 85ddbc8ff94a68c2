//! LDS files (ICAO 9303-10): EF.COM, DG1, DG2, DG11, DG12, DG14/EF.CardAccess, DG15.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use common::*;
use eid_protocols::lds::{
    DataGroup, Dg1, Dg2, Dg11, Dg12, Dg15, EfCom, ImageType, LdsError, Oid, SecurityInfo,
    SecurityInfos,
};
use eid_protocols::mrz::MrzFormat;
use eid_protocols::pa::HashAlgorithm;
use proptest::prelude::*;

#[test]
fn data_group_numbers_tags_and_files() {
    assert_eq!(DataGroup::DG1.tag(), 0x61);
    assert_eq!(DataGroup::DG2.tag(), 0x75);
    assert_eq!(DataGroup::DG15.tag(), 0x6F);
    assert_eq!(DataGroup::new(16).unwrap().tag(), 0x70);
    assert_eq!(DataGroup::DG14.fid(), 0x010E);
    assert_eq!(DataGroup::DG11.sfi(), 0x0B);
    assert_eq!(DataGroup::from_tag(0x75), Some(DataGroup::DG2));
    assert_eq!(DataGroup::from_fid(0x010F), Some(DataGroup::DG15));
    assert_eq!(DataGroup::from_fid(0x011E), None);
    assert_eq!(DataGroup::new(0), None);
    assert_eq!(DataGroup::new(17), None);
    assert_eq!(DataGroup::all().count(), 16);
    for dg in DataGroup::all() {
        assert_eq!(DataGroup::from_tag(u32::from(dg.tag())), Some(dg));
        assert_eq!(DataGroup::from_fid(dg.fid()), Some(dg));
    }
    assert_eq!(DataGroup::DG12.to_string(), "DG12");
}

#[test]
fn ef_com_of_appendix_d() {
    // ICAO 9303-11 Appendix D.4: the decrypted EF.COM read in two parts.
    let ef_com = hex::decode("60145F0104303130365F36063034303030305C026175").unwrap();
    let com = EfCom::parse(&ef_com).unwrap();
    assert_eq!(com.lds_version, "0106");
    assert_eq!(com.unicode_version, "040000");
    assert_eq!(com.data_groups, vec![DataGroup::DG1, DataGroup::DG2]);
    assert!(com.unknown_tags.is_empty());
    assert!(matches!(
        EfCom::parse(&hex::decode("61035C0161").unwrap()),
        Err(LdsError::WrongTag { expected: 0x60, .. })
    ));
    assert!(matches!(
        EfCom::parse(&hex::decode("60055F010130").unwrap()),
        Err(LdsError::Tlv(_))
    ));
}

#[test]
fn dg1_holds_the_mrz() {
    let dg1 = Dg1::parse(&dg1()).unwrap();
    assert_eq!(dg1.mrz.format, MrzFormat::Td3);
    assert_eq!(dg1.mrz.document_number, "L898902C3");
    assert!(dg1.mrz.checks.all_valid());
    assert!(Dg1::parse(&tlv(0x61, &[])).is_err());
    assert!(Dg1::parse(&tlv(0x61, &tlv_2(0x5F1F, b"P<UTO"))).is_err());
}

fn facial_record(image: &[u8], data_type: u8, w: u16, h: u16, feature_points: u16) -> Vec<u8> {
    let block_len = 20 + 8 * u32::from(feature_points) + 12 + image.len() as u32;
    let mut r = b"FAC\x00010\x00".to_vec();
    r.extend((14 + block_len).to_be_bytes());
    r.extend(1u16.to_be_bytes());
    r.extend(block_len.to_be_bytes());
    r.extend(feature_points.to_be_bytes());
    r.extend([1, 2, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]); // gender .. pose uncertainty
    r.extend(vec![0u8; 8 * usize::from(feature_points)]);
    r.extend([1, data_type]);
    r.extend(w.to_be_bytes());
    r.extend(h.to_be_bytes());
    r.extend([1, 2, 0, 0, 0, 0]);
    r.extend_from_slice(image);
    r
}

fn dg2(records: &[Vec<u8>], tag: u16) -> Vec<u8> {
    let mut inner = tlv(0x02, &[records.len() as u8]);
    for rec in records {
        let header = tlv(0xA1, &tlv(0x80, &[1, 1]));
        let bdb = tlv_2(tag, rec);
        inner.extend(tlv_2(0x7F60, &[header, bdb].concat()));
    }
    tlv(0x75, &tlv_2(0x7F61, &inner))
}

#[test]
fn dg2_finds_jpeg_and_jpeg2000_images() {
    let jpeg = [0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3, 0xFF, 0xD9];
    let jp2 = [
        0, 0, 0, 0x0C, 0x6A, 0x50, 0x20, 0x20, 0x0D, 0x0A, 0x87, 0x0A, 9, 9,
    ];
    let file = dg2(
        &[
            facial_record(&jpeg, 0, 480, 640, 2),
            facial_record(&jp2, 1, 240, 320, 0),
        ],
        0x5F2E,
    );
    let dg = Dg2::parse(&file).unwrap();
    assert_eq!(dg.faces.len(), 2);
    assert_eq!(dg.faces[0].image_type, ImageType::Jpeg);
    assert_eq!(dg.faces[0].data, jpeg);
    assert_eq!((dg.faces[0].width, dg.faces[0].height), (480, 640));
    assert_eq!(dg.faces[1].image_type, ImageType::Jpeg2000);
    assert_eq!(dg.faces[1].data, jp2);
    // The constructed biometric data block tag 7F2E is read the same way.
    let dg = Dg2::parse(&dg2(&[facial_record(&jpeg, 0, 1, 1, 0)], 0x7F2E)).unwrap();
    assert_eq!(dg.faces[0].data, jpeg);
    // An unknown encoding is reported as such.
    let dg = Dg2::parse(&dg2(&[facial_record(&[1, 2, 3], 7, 1, 1, 0)], 0x5F2E)).unwrap();
    assert_eq!(dg.faces[0].image_type, ImageType::Other(7));
}

#[test]
fn dg2_rejects_inconsistent_records() {
    let mut rec = facial_record(&[0xFF, 0xD8, 0, 0], 0, 1, 1, 0);
    rec[14..18].copy_from_slice(&9999u32.to_be_bytes()); // block longer than the record
    assert!(Dg2::parse(&dg2(&[rec], 0x5F2E)).is_err());
    let mut rec = facial_record(&[0xFF, 0xD8], 0, 1, 1, 0);
    rec[0] = b'X';
    assert!(Dg2::parse(&dg2(&[rec], 0x5F2E)).is_err());
    assert!(Dg2::parse(&tlv(0x75, &tlv_2(0x7F61, &tlv(0x02, &[0])))).is_err());
}

#[test]
fn dg11_personal_details() {
    let body = [
        tlv(0x5C, &[0x5F, 0x0E, 0x5F, 0x2B, 0x5F, 0x11, 0x5F, 0x42]),
        tlv_2(0x5F0E, b"ERIKSSON<<ANNA<MARIA"),
        tlv(
            0xA0,
            &[
                tlv(0x02, &[2]),
                tlv_2(0x5F0F, b"SMITH<<ANNA"),
                tlv_2(0x5F0F, b"JONES<<ANNA"),
            ]
            .concat(),
        ),
        tlv_2(0x5F10, b"123456789"),
        tlv_2(0x5F2B, &[0x19, 0x74, 0x08, 0x12]),
        tlv_2(0x5F11, b"ZENITH,UTO"),
        tlv_2(0x5F42, b"123 MAPLE RD<ANYTOWN<UTO"),
        tlv_2(0x5F12, b"1-555-555-1212"),
        tlv_2(0x5F13, b"TRAVEL AGENT"),
        tlv_2(0x5F14, b"DR"),
        tlv_2(0x5F15, b"SUMMARY"),
        tlv_2(0x5F16, &[0xFF, 0xD8]),
        tlv_2(0x5F17, b"Z1234567"),
        tlv_2(0x5F18, b"NONE"),
    ]
    .concat();
    let dg = Dg11::parse(&tlv(0x6B, &body)).unwrap();
    assert_eq!(dg.tags, vec![0x5F0E, 0x5F2B, 0x5F11, 0x5F42]);
    assert_eq!(dg.full_name.as_deref(), Some("ERIKSSON<<ANNA<MARIA"));
    assert_eq!(dg.other_names, vec!["SMITH<<ANNA", "JONES<<ANNA"]);
    assert_eq!(dg.personal_number.as_deref(), Some("123456789"));
    assert_eq!(dg.full_date_of_birth.as_deref(), Some("19740812"));
    assert_eq!(dg.place_of_birth.as_deref(), Some("ZENITH,UTO"));
    assert_eq!(dg.address.as_deref(), Some("123 MAPLE RD<ANYTOWN<UTO"));
    assert_eq!(dg.telephone.as_deref(), Some("1-555-555-1212"));
    assert_eq!(dg.profession.as_deref(), Some("TRAVEL AGENT"));
    assert_eq!(dg.title.as_deref(), Some("DR"));
    assert_eq!(dg.personal_summary.as_deref(), Some("SUMMARY"));
    assert_eq!(dg.proof_of_citizenship.as_deref(), Some(&[0xFF, 0xD8][..]));
    assert_eq!(dg.other_travel_documents.as_deref(), Some("Z1234567"));
    assert_eq!(dg.custody_information.as_deref(), Some("NONE"));
    // ASCII date form.
    let dg = Dg11::parse(&tlv(0x6B, &tlv_2(0x5F2B, b"19740812"))).unwrap();
    assert_eq!(dg.full_date_of_birth.as_deref(), Some("19740812"));
    assert!(Dg11::parse(&tlv(0x6C, &[])).is_err());
}

#[test]
fn dg12_document_details() {
    let body = [
        tlv(0x5C, &[0x5F, 0x19, 0x5F, 0x26]),
        tlv_2(0x5F19, b"UTOPIA PASSPORT OFFICE"),
        tlv_2(0x5F26, b"20020531"),
        tlv(
            0xA0,
            &[tlv(0x02, &[1]), tlv_2(0x5F1A, b"BRAUN<<LISA")].concat(),
        ),
        tlv_2(0x5F1B, b"ENDORSED"),
        tlv_2(0x5F1C, b"TAX"),
        tlv_2(0x5F1D, &[0xFF, 0xD8, 1]),
        tlv_2(0x5F1E, &[0xFF, 0xD8, 2]),
        tlv_2(0x5F55, b"20020531093000"),
        tlv_2(0x5F56, b"SN0001"),
    ]
    .concat();
    let dg = Dg12::parse(&tlv(0x6C, &body)).unwrap();
    assert_eq!(dg.tags, vec![0x5F19, 0x5F26]);
    assert_eq!(
        dg.issuing_authority.as_deref(),
        Some("UTOPIA PASSPORT OFFICE")
    );
    assert_eq!(dg.date_of_issue.as_deref(), Some("20020531"));
    assert_eq!(dg.other_persons, vec!["BRAUN<<LISA"]);
    assert_eq!(dg.endorsements.as_deref(), Some("ENDORSED"));
    assert_eq!(dg.tax_exit_requirements.as_deref(), Some("TAX"));
    assert_eq!(dg.image_front.as_deref(), Some(&[0xFF, 0xD8, 1][..]));
    assert_eq!(dg.image_rear.as_deref(), Some(&[0xFF, 0xD8, 2][..]));
    assert_eq!(dg.personalisation_time.as_deref(), Some("20020531093000"));
    assert_eq!(dg.personalisation_system_serial.as_deref(), Some("SN0001"));
}

#[test]
fn card_access_of_appendix_g() {
    // ICAO 9303-11 Appendix G.1: PACE ECDH-GM AES-128, brainpoolP256r1 (parameter ID 13).
    let ca = hex::decode("31143012060A04007F0007020204020202010202010D").unwrap();
    let infos = SecurityInfos::parse_card_access(&ca).unwrap();
    assert_eq!(infos.0.len(), 1);
    match &infos.0[0] {
        SecurityInfo::Pace {
            protocol,
            version,
            parameter_id,
        } => {
            assert_eq!(protocol.dotted(), "0.4.0.127.0.7.2.2.4.2.2");
            assert_eq!(
                protocol.as_bytes(),
                hex::decode("04007F00070202040202").unwrap()
            );
            assert_eq!(*version, 2);
            assert_eq!(*parameter_id, Some(13));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(infos.pace().count(), 1);
    // Trailing padding after the set is tolerated.
    let mut padded = ca.clone();
    padded.extend([0, 0, 0]);
    assert!(SecurityInfos::parse_card_access(&padded).is_ok());
}

#[test]
fn dg14_chip_and_active_authentication_infos() {
    let key = ec_key();
    let spki = key.public_key_to_der().unwrap();
    let infos = set(&[
        &seq(&[&oid("0.4.0.127.0.7.2.2.3.2.2"), &int(1), &int(7)]),
        &seq(&[&oid("0.4.0.127.0.7.2.2.1.2"), &spki, &int(7)]),
        &seq(&[&oid("2.23.136.1.1.5"), &int(1), &oid("1.2.840.10045.4.3.3")]),
        &seq(&[&oid("0.4.0.127.0.7.2.2.4.6.2"), &int(2), &int(12)]),
        &seq(&[
            &oid("0.4.0.127.0.7.2.2.4.2"),
            &alg("1.2.840.10045.2.1"),
            &int(1),
        ]),
        &seq(&[&oid("0.4.0.127.0.7.2.2.2"), &int(1)]),
        &seq(&[&oid("1.2.3.4"), &tlv(0x0C, b"x")]),
    ]);
    let dg14 = tlv(0x6E, &infos);
    let parsed = SecurityInfos::parse_dg14(&dg14).unwrap();
    assert_eq!(parsed.0.len(), 7);
    assert_eq!(
        parsed.0[0],
        SecurityInfo::ChipAuthentication {
            protocol: Oid::from_dotted("0.4.0.127.0.7.2.2.3.2.2").unwrap(),
            version: 1,
            key_id: Some(7)
        }
    );
    match &parsed.0[1] {
        SecurityInfo::ChipAuthenticationPublicKey {
            subject_public_key_info,
            key_id,
            protocol,
        } => {
            assert_eq!(subject_public_key_info, &spki);
            assert_eq!(*key_id, Some(7));
            assert_eq!(protocol.dotted(), "0.4.0.127.0.7.2.2.1.2");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        parsed.active_authentication_hash(),
        Some(HashAlgorithm::Sha384)
    );
    assert!(matches!(
        &parsed.0[3],
        SecurityInfo::Pace {
            parameter_id: Some(12),
            ..
        }
    ));
    assert!(matches!(
        &parsed.0[4],
        SecurityInfo::PaceDomainParameters {
            parameter_id: Some(1),
            ..
        }
    ));
    assert!(matches!(
        &parsed.0[5],
        SecurityInfo::TerminalAuthentication { version: 1, .. }
    ));
    match &parsed.0[6] {
        SecurityInfo::Other { protocol, der } => {
            assert_eq!(protocol.dotted(), "1.2.3.4");
            assert_eq!(der[0], 0x30);
        }
        other => panic!("{other:?}"),
    }
    let json = serde_json::to_value(&parsed).unwrap();
    assert_eq!(json[0]["type"], "chip-authentication");
    assert_eq!(json[0]["protocol"], "0.4.0.127.0.7.2.2.3.2.2");
}

#[test]
fn dg15_rsa_and_ec_keys() {
    for key in [rsa_key(), ec_key()] {
        let spki = key.public_key_to_der().unwrap();
        let dg = Dg15::parse(&tlv(0x6F, &spki)).unwrap();
        assert_eq!(dg.subject_public_key_info, spki);
        assert!(dg.public_key.public_eq(&key));
    }
    assert!(Dg15::parse(&tlv(0x6F, &seq(&[&int(1)]))).is_err());
}

#[test]
fn oids_round_trip() {
    for dotted in [
        "2.23.136.1.1.1",
        "0.4.0.127.0.7.2.2.4.2.2",
        "1.2.840.10045.4.3.2",
    ] {
        let o = Oid::from_dotted(dotted).unwrap();
        assert_eq!(o.dotted(), dotted);
        assert_eq!(Oid::from_der_content(o.as_bytes()).unwrap(), o);
    }
    assert!(Oid::from_dotted("3.1").is_none());
    assert!(Oid::from_dotted("1.40").is_none());
    assert!(Oid::from_dotted("1.2.x").is_none());
}

proptest! {
    #[test]
    fn parsers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = EfCom::parse(&bytes);
        let _ = Dg1::parse(&bytes);
        let _ = Dg2::parse(&bytes);
        let _ = Dg11::parse(&bytes);
        let _ = Dg12::parse(&bytes);
        let _ = SecurityInfos::parse_card_access(&bytes);
        let _ = SecurityInfos::parse_dg14(&bytes);
        let _ = Dg15::parse(&bytes);
        let _ = eid_protocols::lds::parse_facial_record(&bytes);
    }

    #[test]
    fn wrapped_garbage_never_panics(tag in prop::sample::select(vec![0x60u8, 0x61, 0x75, 0x6B, 0x6C, 0x6E, 0x6F, 0x31]),
                                    body in proptest::collection::vec(any::<u8>(), 0..300)) {
        let file = tlv(tag, &body);
        let _ = EfCom::parse(&file);
        let _ = Dg2::parse(&file);
        let _ = Dg11::parse(&file);
        let _ = Dg12::parse(&file);
        let _ = SecurityInfos::parse_dg14(&file);
        let _ = SecurityInfos::parse(&file);
        let _ = Dg15::parse(&file);
    }

    #[test]
    fn facial_records_with_random_fields_never_panic(image in proptest::collection::vec(any::<u8>(), 0..64),
                                                     fp in any::<u16>(), flips in proptest::collection::vec((0usize..46, any::<u8>()), 0..4)) {
        let mut rec = facial_record(&image, 0, 1, 1, fp % 4);
        for (i, v) in flips { if i < rec.len() { rec[i] ^= v; } }
        let _ = eid_protocols::lds::parse_facial_record(&rec);
    }
}
