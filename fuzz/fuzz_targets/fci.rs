//! `FileControl::parse` on arbitrary bytes (a SELECT response body).
//!
//! Invariants when the input parses: it is one BER-TLV object (trailing padding allowed) with
//! tag 62, 64 or 6F; every field that was filled in comes from a data object with that tag, at the
//! top level of the template or one level down inside a `62` nested in it, whose value decodes to
//! the field; the DF name is at most 16 bytes; the SFI fits five bits; `readable_size` is
//! `size` or else `allocated`; `is_df` looks at the descriptor only.
#![no_main]

use eid_protocols::fci::FileControl;
use eid_protocols::tlv::{self, Tlv};
use libfuzzer_sys::fuzz_target;

fn be(v: &[u8]) -> usize {
    v.iter().fold(0usize, |acc, &b| acc << 8 | usize::from(b))
}

/// The data objects a FileControl may have been filled from: the template's children, and the
/// children of any 62 among them.
fn candidates<'a>(template: &Tlv<'a>) -> Vec<Tlv<'a>> {
    let mut out = Vec::new();
    for obj in template.children().map_while(Result::ok) {
        if obj.tag() == 0x62 {
            out.extend(obj.children().map_while(Result::ok));
        }
        out.push(obj);
    }
    out
}

fuzz_target!(|input: &[u8]| {
    let Ok(fc) = FileControl::parse(input) else {
        return;
    };
    let template = match tlv::parse_single(input) {
        Ok(t) => t,
        Err(e) => panic!("FileControl parsed input that is not one TLV: {e}"),
    };
    assert!(matches!(template.tag(), 0x62 | 0x64 | 0x6F), "template tag {:X}", template.tag());
    let objs = candidates(&template);
    let any = |tag: u32, ok: &dyn Fn(&[u8]) -> bool| objs.iter().any(|o| o.tag() == tag && ok(o.value()));

    if let Some(size) = fc.size {
        assert!(any(0x80, &|v| (1..=4).contains(&v.len()) && be(v) == size), "size {size}");
        assert!(size <= 0xFFFF_FFFF);
    }
    if let Some(allocated) = fc.allocated {
        assert!(any(0x81, &|v| (1..=4).contains(&v.len()) && be(v) == allocated));
    }
    if let Some(d) = fc.descriptor {
        assert!(any(0x82, &|v| v.first() == Some(&d)));
    }
    if let Some(fid) = fc.fid {
        assert!(any(0x83, &|v| v == fid.to_be_bytes()));
    }
    if let Some(name) = &fc.df_name {
        assert!(name.len() <= 16, "DF name of {} bytes", name.len());
        assert!(any(0x84, &|v| v == name.as_slice()));
    }
    if let Some(sfi) = fc.sfi {
        assert!(sfi <= 0x1F);
        assert!(any(0x88, &|v| v.first().map(|b| b >> 3) == Some(sfi)));
    }
    if let Some(lcs) = fc.life_cycle {
        assert!(any(0x8A, &|v| v.first() == Some(&lcs)));
    }
    assert_eq!(fc.readable_size(), fc.size.or(fc.allocated));
    assert_eq!(fc.is_df(), fc.descriptor.is_some_and(|d| d & 0x3F == 0x38));
    let _ = format!("{fc:?}");
    assert_eq!(FileControl::parse(input).as_ref(), Ok(&fc), "parse is not deterministic");
});
