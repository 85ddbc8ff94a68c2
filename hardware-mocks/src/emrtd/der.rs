//! A small DER writer (ITU-T X.690 §10) for the files the virtual chips carry.
//!
//! Mock-side only: it writes what the profiles need (SEQUENCE, SET OF, INTEGER, OBJECT
//! IDENTIFIER, OCTET STRING, strings, context tags, and the multi-byte application tags of the
//! LDS such as `5F1F` or `7F61`). Parsing lives in `eid_protocols` and is not duplicated here.
//! Every function is total: lengths are written in definite form for any size.

/// The length octets of a value of `n` bytes (X.690 §8.1.3: short form below 128, long form
/// with the minimum number of octets above).
pub fn length(n: usize) -> Vec<u8> {
    if n < 0x80 {
        return vec![n as u8];
    }
    let bytes = n.to_be_bytes();
    let skip = bytes.iter().take_while(|&&b| b == 0).count();
    let significant = bytes.get(skip..).unwrap_or_default();
    let mut out = Vec::with_capacity(significant.len() + 1);
    out.push(0x80 | significant.len() as u8);
    out.extend_from_slice(significant);
    out
}

/// One data object: `tag` (its full encoding, one to three bytes), length, `value`.
pub fn tlv(tag: &[u8], value: &[u8]) -> Vec<u8> {
    let len = length(value.len());
    let mut out = Vec::with_capacity(tag.len() + len.len() + value.len());
    out.extend_from_slice(tag);
    out.extend_from_slice(&len);
    out.extend_from_slice(value);
    out
}

/// A constructed data object whose value is the concatenation of `parts`.
pub fn constructed(tag: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    tlv(tag, &parts.concat())
}

/// SEQUENCE (`30`).
pub fn sequence(parts: &[&[u8]]) -> Vec<u8> {
    constructed(&[0x30], parts)
}

/// SET OF (`31`), its elements sorted by their encodings as DER requires (X.690 §11.6).
pub fn set_of(parts: &[&[u8]]) -> Vec<u8> {
    let mut sorted: Vec<&[u8]> = parts.to_vec();
    sorted.sort();
    constructed(&[0x31], &sorted)
}

/// INTEGER (`02`) from a non-negative number.
pub fn integer(n: u64) -> Vec<u8> {
    unsigned_integer(&n.to_be_bytes())
}

/// INTEGER (`02`) from the big-endian magnitude of a non-negative number: leading zeros
/// trimmed, a zero byte added when the top bit is set (X.690 §8.3.2).
pub fn unsigned_integer(magnitude: &[u8]) -> Vec<u8> {
    let skip = magnitude.iter().take_while(|&&b| b == 0).count();
    let trimmed = magnitude.get(skip..).unwrap_or_default();
    let mut value = Vec::with_capacity(trimmed.len() + 1);
    match trimmed.first() {
        None => value.push(0),
        Some(&b) if b & 0x80 != 0 => value.push(0),
        Some(_) => {}
    }
    value.extend_from_slice(trimmed);
    tlv(&[0x02], &value)
}

/// OBJECT IDENTIFIER (`06`) from its arcs (X.690 §8.19). The first arc must be 0, 1 or 2 and
/// the second below 40 for arcs 0 and 1; the OIDs this crate writes are constants that do.
pub fn oid(arcs: &[u64]) -> Vec<u8> {
    let (first, second) = match arcs {
        [a, b, ..] => (*a, *b),
        [a] => (*a, 0),
        [] => (0, 0),
    };
    let mut value = Vec::with_capacity(arcs.len() * 2);
    push_base128(&mut value, first.saturating_mul(40).saturating_add(second));
    for &arc in arcs.iter().skip(2) {
        push_base128(&mut value, arc);
    }
    tlv(&[0x06], &value)
}

fn push_base128(out: &mut Vec<u8>, n: u64) {
    let mut groups = [0u8; 10];
    let mut count = 0;
    let mut rest = n;
    loop {
        if let Some(slot) = groups.get_mut(count) {
            *slot = (rest & 0x7F) as u8;
        }
        count += 1;
        rest >>= 7;
        if rest == 0 || count == groups.len() {
            break;
        }
    }
    for i in (0..count).rev() {
        let group = groups.get(i).copied().unwrap_or(0);
        out.push(if i == 0 { group } else { group | 0x80 });
    }
}

/// OCTET STRING (`04`).
pub fn octet_string(bytes: &[u8]) -> Vec<u8> {
    tlv(&[0x04], bytes)
}

/// NULL (`05 00`).
pub fn null() -> Vec<u8> {
    vec![0x05, 0x00]
}

/// PrintableString (`13`).
pub fn printable_string(s: &str) -> Vec<u8> {
    tlv(&[0x13], s.as_bytes())
}

/// UTF8String (`0C`).
pub fn utf8_string(s: &str) -> Vec<u8> {
    tlv(&[0x0C], s.as_bytes())
}

/// `[n]` EXPLICIT, constructed context-specific tag (n < 31) around one encoding.
pub fn explicit(n: u8, inner: &[u8]) -> Vec<u8> {
    tlv(&[0xA0 | (n & 0x1F)], inner)
}

/// AlgorithmIdentifier with absent parameters (RFC 5280 §4.1.1.2).
pub fn algorithm(arcs: &[u64]) -> Vec<u8> {
    sequence(&[&oid(arcs)])
}

/// AlgorithmIdentifier with NULL parameters (RSA and the hash functions in some encoders).
pub fn algorithm_null(arcs: &[u64]) -> Vec<u8> {
    sequence(&[&oid(arcs), &null()])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_use_the_minimum_number_of_octets() {
        assert_eq!(length(0), [0]);
        assert_eq!(length(127), [127]);
        assert_eq!(length(128), [0x81, 0x80]);
        assert_eq!(length(256), [0x82, 0x01, 0x00]);
        assert_eq!(length(70_000), [0x83, 0x01, 0x11, 0x70]);
    }

    #[test]
    fn oids_encode_as_in_x690() {
        // id-PACE-ECDH-GM-AES-CBC-CMAC-128, from the ICAO 9303-11 Appendix G EF.CardAccess.
        assert_eq!(
            oid(&[0, 4, 0, 127, 0, 7, 2, 2, 4, 2, 2]),
            [
                0x06, 0x0A, 0x04, 0x00, 0x7F, 0x00, 0x07, 0x02, 0x02, 0x04, 0x02, 0x02
            ]
        );
        // sha256: 2.16.840.1.101.3.4.2.1
        assert_eq!(
            oid(&[2, 16, 840, 1, 101, 3, 4, 2, 1]),
            [
                0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01
            ]
        );
    }

    #[test]
    fn integers_are_minimal_and_positive() {
        assert_eq!(integer(0), [0x02, 0x01, 0x00]);
        assert_eq!(integer(2), [0x02, 0x01, 0x02]);
        assert_eq!(integer(128), [0x02, 0x02, 0x00, 0x80]);
        assert_eq!(unsigned_integer(&[0, 0, 0xFF]), [0x02, 0x02, 0x00, 0xFF]);
    }

    #[test]
    fn appendix_g_card_access_is_reproduced() {
        let info = sequence(&[
            &oid(&[0, 4, 0, 127, 0, 7, 2, 2, 4, 2, 2]),
            &integer(2),
            &integer(13),
        ]);
        assert_eq!(
            hex::encode_upper(set_of(&[&info])),
            "31143012060A04007F0007020204020202010202010D"
        );
    }
}
