//! The LDS file parsers of `eid_protocols::lds` (EF.COM, DG1, DG2, DG11, DG12, DG14 and
//! EF.CardAccess SecurityInfos, DG15) on arbitrary bytes. Invariants: nothing panics; DG2 images
//! are no larger than the input; EF.COM data groups map back to their tags; every OID read
//! survives a dotted round trip.
#![no_main]

use eid_protocols::lds::{
    DataGroup, Dg1, Dg2, Dg11, Dg12, Dg15, EfCom, Oid, SecurityInfos, parse_facial_record,
};
use libfuzzer_sys::fuzz_target;

fn check_infos(infos: &SecurityInfos) {
    for info in infos.iter() {
        if let Some(oid) = info.protocol() {
            let again = Oid::from_dotted(&oid.dotted()).expect("dotted form parses back");
            assert_eq!(&again, oid);
        }
        let _ = info.active_authentication_hash();
    }
}

fuzz_target!(|input: &[u8]| {
    if let Ok(com) = EfCom::parse(input) {
        for dg in &com.data_groups {
            assert_eq!(DataGroup::from_tag(u32::from(dg.tag())), Some(*dg));
        }
    }
    let _ = Dg1::parse(input);
    if let Ok(dg2) = Dg2::parse(input) {
        for face in &dg2.faces {
            assert!(face.data.len() <= input.len());
        }
    }
    if let Ok(face) = parse_facial_record(input) {
        assert!(face.data.len() <= input.len());
    }
    let _ = Dg11::parse(input);
    let _ = Dg12::parse(input);
    if let Ok(infos) = SecurityInfos::parse_card_access(input) {
        check_infos(&infos);
    }
    if let Ok(infos) = SecurityInfos::parse_dg14(input) {
        check_infos(&infos);
    }
    let _ = Dg15::parse(input);
    if let Some(oid) = Oid::from_der_content(input) {
        assert_eq!(Oid::from_dotted(&oid.dotted()).as_ref(), Some(&oid));
    }
});
