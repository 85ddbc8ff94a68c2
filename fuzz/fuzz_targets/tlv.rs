//! The BER-TLV reader (`tlv::iter`, `Tlv::children`, `Tlv::child`, `parse_single`, `find_path`)
//! on arbitrary bytes. Every constructed object is descended into, iteratively, as a caller using
//! `.children()` would (a primitive value's bytes are reached by the fuzzer flipping bit 6 of its
//! tag, so they are not re-parsed as well).
//!
//! Invariants for every object the reader yields:
//!
//! * `raw()` is a slice *of the input* (same memory), at the position where the iterator stood
//!   after skipping `00`/`FF` padding, and `value()` is the tail of `raw()`.
//! * `raw() == tag bytes ++ length field ++ value`: the tag field is 1 to 3 bytes whose big-endian
//!   number is `tag()`, multi-byte exactly when the first byte's low five bits are `1F`; the length
//!   field is `0x00..=0x7F`, or `0x81..=0x84` followed by that many bytes, and decodes to
//!   `value().len()`.
//! * `ber_tag()` accepts every tag the reader produced, with the same bytes and constructed bit.
//! * `tlv::encode(tag, value)` succeeds, parses back to the same tag and value, and equals `raw()`
//!   exactly when the input used the minimal length encoding.
//! * A level is consumed without gaps: between objects (and after the last) only padding; the
//!   iterator yields at most one error and then stops.
//! * `parse_single` succeeds exactly when the level holds one object and no error.
//! * `find`/`child`/`find_path` agree with the iteration.
#![no_main]

use eid_protocols::tlv::{self, Tlv};
use libfuzzer_sys::fuzz_target;

/// Offset of `part` inside `whole`, asserting that it is a sub-slice of the same memory.
fn offset_in(whole: &[u8], part: &[u8]) -> usize {
    let start = whole.as_ptr() as usize;
    let p = part.as_ptr() as usize;
    assert!(p >= start && p + part.len() <= start + whole.len(), "slice is not inside its input");
    p - start
}

fn is_padding(b: u8) -> bool {
    b == 0x00 || b == 0xFF
}

fn check_object(level: &[u8], obj: &Tlv<'_>) {
    let raw = obj.raw();
    let value = obj.value();
    let off = offset_in(level, raw);
    assert_eq!(&level[off..off + raw.len()], raw);
    let voff = offset_in(raw, value);
    assert_eq!(voff + value.len(), raw.len(), "value is not the tail of raw");

    // Tag field.
    let tag_len = obj.tag_len();
    assert!((1..=3).contains(&tag_len), "tag of {tag_len} bytes");
    assert!(tag_len < voff, "no room for a length field");
    let tag_bytes = &raw[..tag_len];
    assert!(!is_padding(tag_bytes[0]), "padding byte read as a tag");
    assert_eq!(tag_len > 1, tag_bytes[0] & 0x1F == 0x1F);
    for (i, b) in tag_bytes.iter().enumerate().skip(1) {
        let last = i == tag_len - 1;
        assert_eq!(b & 0x80 == 0, last, "tag continuation bit wrong in {tag_bytes:02X?}");
    }
    let number = tag_bytes.iter().fold(0u32, |acc, &b| acc << 8 | u32::from(b));
    assert_eq!(obj.tag(), number);
    assert_eq!(obj.is_constructed(), tag_bytes[0] & 0x20 != 0);

    let ber = match obj.ber_tag() {
        Ok(t) => t,
        Err(e) => panic!("reader produced tag {:X} that ber_tag rejects: {e}", obj.tag()),
    };
    assert_eq!(ber.to_bytes(), tag_bytes);
    assert_eq!(ber.is_constructed(), obj.is_constructed());

    // Length field.
    let len_field = &raw[tag_len..voff];
    let (&l0, rest) = len_field.split_first().expect("length field present");
    let decoded = match l0 {
        0x00..=0x7F => {
            assert!(rest.is_empty());
            usize::from(l0)
        }
        0x81..=0x84 => {
            assert_eq!(rest.len(), usize::from(l0 & 0x7F));
            rest.iter().fold(0usize, |acc, &b| acc << 8 | usize::from(b))
        }
        _ => panic!("length byte {l0:02X} accepted"),
    };
    assert_eq!(decoded, value.len());
    let minimal_len_bytes = match value.len() {
        0..=0x7F => 1,
        0x80..=0xFF => 2,
        0x100..=0xFFFF => 3,
        _ => 4,
    };

    // Encoding what we read.
    let encoded = match tlv::encode(obj.tag(), value) {
        Ok(e) => e,
        Err(e) => panic!("cannot re-encode {obj:?}: {e}"),
    };
    let back = tlv::parse_single(&encoded).expect("encode output parses");
    assert_eq!((back.tag(), back.value()), (obj.tag(), value));
    assert_eq!(encoded == raw, len_field.len() == minimal_len_bytes);

    let _ = format!("{obj:?}");
}

/// Walks one level; returns its objects, checking gaps, padding and the single-error rule.
fn walk_level<'a>(level: &'a [u8]) -> (Vec<Tlv<'a>>, bool) {
    let mut objects = Vec::new();
    let mut it = tlv::iter(level);
    let mut pos = 0usize;
    let mut failed = false;
    for item in it.by_ref() {
        match item {
            Ok(obj) => {
                check_object(level, &obj);
                let off = offset_in(level, obj.raw());
                assert!(off >= pos, "objects overlap or go backwards");
                assert!(level[pos..off].iter().all(|&b| is_padding(b)), "non-padding skipped");
                pos = off + obj.raw().len();
                objects.push(obj);
            }
            Err(_) => {
                failed = true;
                break;
            }
        }
    }
    if failed {
        assert!(it.next().is_none(), "iterator goes on after an error");
    } else {
        assert!(level[pos..].iter().all(|&b| is_padding(b)), "trailing bytes left unread");
    }
    (objects, failed)
}

fuzz_target!(|input: &[u8]| {
    // Iterative descent through every constructed value; each level strictly shrinks, so this
    // terminates, and the total work is bounded by input length times nesting depth.
    let mut pending: Vec<&[u8]> = vec![input];
    while let Some(level) = pending.pop() {
        let (objects, failed) = walk_level(level);

        // parse_single agrees with the iteration.
        match tlv::parse_single(level) {
            Ok(single) => {
                assert!(!failed && objects.len() == 1, "parse_single accepted {} objects", objects.len());
                assert_eq!(single, objects[0]);
            }
            Err(_) => assert!(failed || objects.len() != 1),
        }

        // find agrees with the iteration: the first object with each tag, unless an error came
        // first. (A handful of objects only: all of them would make a wide level quadratic.)
        for obj in objects.iter().take(4).chain(objects.last()) {
            let found = tlv::find(level, obj.tag()).expect("no error before an object that was read");
            let first = objects.iter().find(|o| o.tag() == obj.tag()).copied();
            assert_eq!(found, first);
        }

        for obj in objects {
            assert!(obj.value().len() < level.len());
            if !obj.is_constructed() || obj.value().is_empty() {
                continue;
            }
            // Callers descend into constructed objects with children() (= iter(value)) and
            // child() (= find(value)); the fuzzer reaches any primitive value's bytes by flipping
            // the constructed bit, so primitive values are not re-parsed here.
            let first_kid = obj.children().next();
            assert_eq!(first_kid, tlv::iter(obj.value()).next());
            if let Some(Ok(first_kid)) = first_kid {
                assert_eq!(obj.child(first_kid.tag()), Ok(Some(first_kid)));
            }
            pending.push(obj.value());
        }
    }

    // find_path along the chain of first objects finds the object at the end of the chain.
    let mut path = Vec::new();
    let mut level = input;
    let mut last = None;
    while path.len() < 4 {
        match tlv::iter(level).next() {
            Some(Ok(obj)) => {
                path.push(obj.tag());
                level = obj.value();
                last = Some(obj);
            }
            _ => break,
        }
    }
    if let Some(last) = last {
        let found = tlv::find_path(input, &path).expect("find_path along first objects");
        let found = found.expect("find_path finds the chain of first objects");
        assert_eq!(found.raw().as_ptr(), last.raw().as_ptr());
        assert_eq!(found, last);
    }
    // The paths the card applications use (DG1 MRZ, DG2/DG11-like nesting, FCI).
    for p in [&[0x61, 0x5F1F][..], &[0x7F61, 0x7F60, 0x5F2E], &[0x6F, 0x62, 0x80], &[]] {
        if let Ok(Some(found)) = tlv::find_path(input, p) {
            assert_eq!(Some(&found.tag()), p.last());
            offset_in(input, found.raw());
        }
    }
    assert_eq!(tlv::find_path(input, &[]), Ok(None));
});
