//! The one DER writer of the virtual cards (ITU-T X.690 §8 basic encoding with the §10 and §11
//! distinguished-encoding restrictions).
//!
//! Mock-side only: it writes what the card files, CMS signatures and test PKIs need (SEQUENCE,
//! SET OF, INTEGER, OBJECT IDENTIFIER, OCTET STRING, BIT STRING, BOOLEAN, NULL, strings, UTCTime, context
//! tags, and the multi-byte application tags of ICAO 9303 and ISO/IEC 7816 such as `5F1F` or
//! `7F61`). Parsing lives in `eid_protocols` and is not duplicated here.
//!
//! Every function returns one complete encoding (tag, length, value) and is total: lengths are
//! written in the definite form for any size. Composite writers take their parts as anything
//! that is `AsRef<[u8]>`, so both `&[&a, &b]` and a `Vec<Vec<u8>>` work.

use thiserror::Error;

/// A dotted object identifier that is not well formed (the caller's bug).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("malformed object identifier {0:?}")]
pub struct OidError(pub String);

/// The length octets for a value of `len` bytes: the short form below 128, otherwise the long
/// form with the minimum number of length octets (X.690 §8.1.3.3-§8.1.3.5, §10.1).
pub fn length(len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + size_of::<usize>());
    push_length(&mut out, len);
    out
}

fn push_length(out: &mut Vec<u8>, len: usize) {
    match u8::try_from(len) {
        Ok(short) if short < 0x80 => out.push(short),
        _ => {
            let bytes = len.to_be_bytes();
            let significant = bytes
                .iter()
                .position(|&b| b != 0)
                .and_then(|first| bytes.get(first..))
                .unwrap_or_default();
            // At most size_of::<usize>() (8) octets: the count fits in the low seven bits.
            out.push(0x80 | significant.len() as u8);
            out.extend_from_slice(significant);
        }
    }
}

/// One data object: `tag`, the length of `value`, `value`.
///
/// `tag` is the complete identifier octets (X.690 §8.1.2): one byte such as `[0x30]`, or the
/// high-tag-number form of ISO/IEC 7816-4 and ICAO 9303 such as `[0x5F, 0x1F]` or `[0x7F, 0x61]`.
/// The bytes are written as given.
pub fn tlv(tag: &[u8], value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(
        tag.len()
            .saturating_add(1 + size_of::<usize>())
            .saturating_add(value.len()),
    );
    out.extend_from_slice(tag);
    push_length(&mut out, value.len());
    out.extend_from_slice(value);
    out
}

/// A constructed data object whose value is the concatenation of `parts`, in the order given.
pub fn constructed(tag: &[u8], parts: &[impl AsRef<[u8]>]) -> Vec<u8> {
    let value: Vec<u8> = parts
        .iter()
        .flat_map(|part| part.as_ref().iter().copied())
        .collect();
    tlv(tag, &value)
}

/// SEQUENCE / SEQUENCE OF (`30`, X.690 §8.9-§8.10): the parts in the order given.
pub fn sequence(parts: &[impl AsRef<[u8]>]) -> Vec<u8> {
    constructed(&[0x30], parts)
}

/// SET OF (`31`, X.690 §8.12) with its elements in ascending order of their encodings, as DER
/// requires (X.690 §11.6).
///
/// §11.6 compares the encodings as octet strings with the shorter one padded at its end with
/// zero octets; the lexicographic order of byte slices used here agrees with that except between
/// two encodings that compare equal under the padding, where either order satisfies §11.6.
pub fn set_of(elements: &[impl AsRef<[u8]>]) -> Vec<u8> {
    let mut sorted: Vec<&[u8]> = elements.iter().map(AsRef::as_ref).collect();
    sorted.sort_unstable();
    constructed(&[0x31], &sorted)
}

/// `[number]` EXPLICIT: a constructed context-specific tag (class bits `10`, constructed bit set)
/// around one complete encoding (X.690 §8.14). Tag numbers from 31 up use the high-tag-number
/// form (X.690 §8.1.2.4).
pub fn explicit(number: u32, inner: &[u8]) -> Vec<u8> {
    let mut tag = Vec::with_capacity(6);
    match u8::try_from(number) {
        Ok(low) if low < 0x1F => tag.push(0xA0 | low),
        _ => {
            tag.push(0xBF);
            push_base128(&mut tag, u64::from(number));
        }
    }
    tlv(&tag, inner)
}

/// INTEGER (`02`) from a non-negative number (X.690 §8.3).
pub fn integer(value: u64) -> Vec<u8> {
    unsigned_integer(&value.to_be_bytes())
}

/// INTEGER (`02`) from the big-endian magnitude of a non-negative number: leading zero octets
/// dropped and one `00` put in front when the top bit is set, so the two's-complement content is
/// minimal and positive (X.690 §8.3.2-§8.3.3). An empty magnitude is zero.
pub fn unsigned_integer(magnitude: &[u8]) -> Vec<u8> {
    let trimmed = magnitude
        .iter()
        .position(|&b| b != 0)
        .and_then(|first| magnitude.get(first..))
        .unwrap_or_default();
    let mut content = Vec::with_capacity(trimmed.len().saturating_add(1));
    if trimmed.first().is_none_or(|&b| b & 0x80 != 0) {
        content.push(0);
    }
    content.extend_from_slice(trimmed);
    tlv(&[0x02], &content)
}

/// OBJECT IDENTIFIER (`06`) from its arcs (X.690 §8.19): the first two arcs joined as
/// `40 * first + second`, every subidentifier in base 128 with the minimum number of octets.
///
/// The arcs must form an object identifier (at least two arcs, the first 0, 1 or 2, the second
/// below 40 under 0 and 1; X.690 §8.19.4). The identifiers written by this crate are constants
/// that do (a test checks them); [`oid_dotted`] checks text. For anything else the encoding
/// stays total but is not a valid identifier.
pub fn oid(arcs: &[u64]) -> Vec<u8> {
    let (first, second, rest) = match arcs {
        [first, second, rest @ ..] => (*first, *second, rest),
        [first] => (*first, 0, &[][..]),
        [] => (0, 0, &[][..]),
    };
    let mut content = Vec::with_capacity(arcs.len().saturating_mul(2));
    push_base128(
        &mut content,
        first.saturating_mul(40).saturating_add(second),
    );
    for &arc in rest {
        push_base128(&mut content, arc);
    }
    tlv(&[0x06], &content)
}

/// OBJECT IDENTIFIER (`06`) from dotted notation such as `"2.23.136.1.1.1"`, checked as
/// [`oid`] requires.
pub fn oid_dotted(dotted: &str) -> Result<Vec<u8>, OidError> {
    let bad = || OidError(dotted.to_owned());
    let arcs = dotted
        .split('.')
        .map(|arc| {
            if arc.is_empty() || !arc.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            arc.parse::<u64>().map_err(|_| bad())
        })
        .collect::<Result<Vec<u64>, _>>()?;
    if !is_valid_oid(&arcs) {
        return Err(bad());
    }
    Ok(oid(&arcs))
}

/// Whether `arcs` form an object identifier X.690 §8.19.4 can encode.
pub fn is_valid_oid(arcs: &[u64]) -> bool {
    match arcs {
        [0 | 1, second, ..] => *second < 40,
        [2, second, ..] => second.checked_add(80).is_some(),
        _ => false,
    }
}

/// A subidentifier in base 128, most significant group first, bit 8 set on all but the last
/// octet, no leading `80` octets (X.690 §8.19.2).
fn push_base128(out: &mut Vec<u8>, value: u64) {
    // 64 bits need at most ten 7-bit groups.
    let mut groups = [0u8; 10];
    let mut count = 0;
    let mut rest = value;
    for slot in groups.iter_mut() {
        *slot = (rest & 0x7F) as u8;
        count += 1;
        rest >>= 7;
        if rest == 0 {
            break;
        }
    }
    let used = groups.get(..count).unwrap_or_default();
    for (i, group) in used.iter().enumerate().rev() {
        out.push(if i == 0 { *group } else { group | 0x80 });
    }
}

/// OCTET STRING (`04`, X.690 §8.7), primitive as DER requires (§10.2).
pub fn octet_string(bytes: &[u8]) -> Vec<u8> {
    tlv(&[0x04], bytes)
}

/// BIT STRING (`03`, X.690 §8.6): the count of unused bits in the last octet, then the octets.
/// The unused bits are cleared as DER requires (§11.2.1); with no octets the count is 0
/// (§8.6.2.3). Counts above 7 are taken modulo 8.
pub fn bit_string(unused_bits: u8, bytes: &[u8]) -> Vec<u8> {
    let unused = if bytes.is_empty() { 0 } else { unused_bits & 7 };
    let mut content = Vec::with_capacity(bytes.len().saturating_add(1));
    content.push(unused);
    content.extend_from_slice(bytes);
    if let Some(last) = content.last_mut().filter(|_| unused > 0) {
        *last &= 0xFF << unused;
    }
    tlv(&[0x03], &content)
}

/// BOOLEAN (`01`, X.690 §8.2): DER writes TRUE as `FF` (§11.1).
pub fn boolean(value: bool) -> Vec<u8> {
    vec![0x01, 0x01, if value { 0xFF } else { 0x00 }]
}

/// NULL (`05 00`, X.690 §8.8).
pub fn null() -> Vec<u8> {
    vec![0x05, 0x00]
}

/// PrintableString (`13`). The caller passes PrintableString characters (X.680 §41.4: letters,
/// digits, space and `'()+,-./:=?`); they are not checked here.
pub fn printable_string(s: &str) -> Vec<u8> {
    tlv(&[0x13], s.as_bytes())
}

/// UTF8String (`0C`).
pub fn utf8_string(s: &str) -> Vec<u8> {
    tlv(&[0x0C], s.as_bytes())
}

/// UTCTime (`17`) `YYMMDDHHMMSSZ` in UTC with seconds, as DER requires (X.690 §11.8). The year
/// is written modulo 100, so the time must lie in 1950-2049 (RFC 5280 §4.1.2.5.1).
pub fn utc_time(at: time::OffsetDateTime) -> Vec<u8> {
    let at = at.to_offset(time::UtcOffset::UTC);
    let text = format!(
        "{:02}{:02}{:02}{:02}{:02}{:02}Z",
        at.year().rem_euclid(100),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    );
    tlv(&[0x17], text.as_bytes())
}

/// AlgorithmIdentifier with absent parameters (RFC 5280 §4.1.1.2; ECDSA, RFC 5758 §3.2).
pub fn algorithm(arcs: &[u64]) -> Vec<u8> {
    sequence(&[oid(arcs)])
}

/// AlgorithmIdentifier with NULL parameters (rsaEncryption, RFC 8017 Appendix A; the hash
/// functions as many encoders write them).
pub fn algorithm_null(arcs: &[u64]) -> Vec<u8> {
    sequence(&[oid(arcs), null()])
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn lengths_use_the_minimum_number_of_octets_at_each_boundary() {
        assert_eq!(length(0), [0x00]);
        assert_eq!(length(127), [0x7F]);
        assert_eq!(length(128), [0x81, 0x80]);
        assert_eq!(length(255), [0x81, 0xFF]);
        assert_eq!(length(256), [0x82, 0x01, 0x00]);
        assert_eq!(length(65_535), [0x82, 0xFF, 0xFF]);
        assert_eq!(length(65_536), [0x83, 0x01, 0x00, 0x00]);
        assert_eq!(length(70_000), [0x83, 0x01, 0x11, 0x70]);
    }

    #[test]
    fn tlv_writes_the_tag_bytes_length_and_value() {
        assert_eq!(tlv(&[0x04], &[]), [0x04, 0x00]);
        assert_eq!(tlv(&[0x5F, 0x1F], b"AB"), [0x5F, 0x1F, 0x02, b'A', b'B']);
        let long = tlv(&[0x7F, 0x61], &[0xAA; 300]);
        assert_eq!(long[..5], [0x7F, 0x61, 0x82, 0x01, 0x2C]);
        assert_eq!(long.len(), 5 + 300);
        let at_128 = octet_string(&[0; 128]);
        assert_eq!(at_128[..3], [0x04, 0x81, 0x80]);
        assert_eq!(at_128.len(), 131);
        let at_65535 = octet_string(&vec![0; 65_535]);
        assert_eq!(at_65535[..4], [0x04, 0x82, 0xFF, 0xFF]);
        assert_eq!(at_65535.len(), 4 + 65_535);
    }

    #[test]
    fn integers_are_minimal_and_positive() {
        assert_eq!(integer(0), [0x02, 0x01, 0x00]);
        assert_eq!(integer(2), [0x02, 0x01, 0x02]);
        assert_eq!(integer(127), [0x02, 0x01, 0x7F]);
        assert_eq!(integer(128), [0x02, 0x02, 0x00, 0x80]);
        assert_eq!(integer(255), [0x02, 0x02, 0x00, 0xFF]);
        assert_eq!(integer(256), [0x02, 0x02, 0x01, 0x00]);
        assert_eq!(integer(0x8000), [0x02, 0x03, 0x00, 0x80, 0x00]);
        assert_eq!(
            integer(u64::MAX),
            [
                0x02, 0x09, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF
            ]
        );
        assert_eq!(unsigned_integer(&[]), [0x02, 0x01, 0x00]);
        assert_eq!(unsigned_integer(&[0, 0, 0]), [0x02, 0x01, 0x00]);
        assert_eq!(unsigned_integer(&[0, 0, 0xFF]), [0x02, 0x02, 0x00, 0xFF]);
        assert_eq!(unsigned_integer(&[0, 0x7F, 0x01]), [0x02, 0x02, 0x7F, 0x01]);
        assert_eq!(
            unsigned_integer(&[0x81, 0, 0, 0, 0, 0, 0, 0, 0, 1]),
            [0x02, 0x0B, 0x00, 0x81, 0, 0, 0, 0, 0, 0, 0, 0, 1]
        );
    }

    #[test]
    fn oids_encode_as_in_x690() {
        // id-icao-mrtd-security-ldsSecurityObject: 136 needs two octets (81 08).
        assert_eq!(
            oid(&[2, 23, 136, 1, 1, 1]),
            [0x06, 0x06, 0x67, 0x81, 0x08, 0x01, 0x01, 0x01]
        );
        // prime256v1 / secp256r1: 840 = 86 48, 10045 = CE 3D.
        assert_eq!(
            oid(&[1, 2, 840, 10045, 3, 1, 7]),
            [0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07]
        );
        // id-signedData, RFC 5652: 113549 = 86 F7 0D.
        assert_eq!(
            oid(&[1, 2, 840, 113_549, 1, 7, 2]),
            [
                0x06, 0x09, 0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x07, 0x02
            ]
        );
        // id-PACE-ECDH-GM-AES-CBC-CMAC-128 (ICAO 9303-11 Appendix G EF.CardAccess).
        assert_eq!(
            oid(&[0, 4, 0, 127, 0, 7, 2, 2, 4, 2, 2]),
            [
                0x06, 0x0A, 0x04, 0x00, 0x7F, 0x00, 0x07, 0x02, 0x02, 0x04, 0x02, 0x02
            ]
        );
        // Under arc 2 the second arc may exceed 39: 2.999.3 is 88 37 03 (X.690 §8.19.5 example).
        assert_eq!(oid(&[2, 999, 3]), [0x06, 0x03, 0x88, 0x37, 0x03]);
        // The largest arc: ten base-128 octets.
        assert_eq!(
            oid(&[1, 2, u64::MAX]),
            [
                0x06, 0x0B, 0x2A, 0x81, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F
            ]
        );
    }

    #[test]
    fn dotted_oids_are_checked_and_match_the_arcs() {
        assert_eq!(
            oid_dotted("2.23.136.1.1.1").unwrap(),
            oid(&[2, 23, 136, 1, 1, 1])
        );
        assert_eq!(
            oid_dotted("1.2.840.10045.3.1.7").unwrap(),
            oid(&[1, 2, 840, 10045, 3, 1, 7])
        );
        for bad in [
            "",
            "1",
            "3.1",
            "1.40",
            "0.40",
            "1.x",
            "1..2",
            "1.2.",
            "+1.2",
            "1.-2",
            " 1.2",
            "1.2.18446744073709551616",
        ] {
            assert_eq!(oid_dotted(bad), Err(OidError(bad.to_owned())), "{bad:?}");
        }
        assert!(oid_dotted("2.40").is_ok());
    }

    #[test]
    fn every_oid_constant_of_the_crate_is_valid() {
        use crate::emrtd::lds::oid as c;
        let all: [&[u64]; 13] = [
            &c::PK_ECDH,
            &c::CA_ECDH_3DES,
            &c::CA_ECDH_AES_128,
            &c::CA_ECDH_AES_256,
            &c::PACE_ECDH_GM_AES_128,
            &c::PACE_ECDH_GM_AES_256,
            &c::PACE_ECDH_CAM_AES_256,
            &c::SECURITY_OBJECT,
            &c::AA_PROTOCOL,
            &c::LDS_SECURITY_OBJECT,
            &c::CSCA_MASTER_LIST,
            &c::SHA256,
            &c::ECDSA_WITH_SHA256,
        ];
        for arcs in all {
            assert!(is_valid_oid(arcs), "{arcs:?}");
        }
        assert!(!is_valid_oid(&[1]));
        assert!(!is_valid_oid(&[3, 1]));
        assert!(!is_valid_oid(&[1, 40]));
    }

    #[test]
    fn set_of_sorts_its_elements_by_encoding() {
        let one = integer(1);
        let big = integer(256);
        let text = utf8_string("a");
        // 02 01 01 < 02 02 01 00 < 0C 01 61, whatever the input order.
        let expected = [
            0x31, 0x0A, 0x02, 0x01, 0x01, 0x02, 0x02, 0x01, 0x00, 0x0C, 0x01, 0x61,
        ];
        assert_eq!(set_of(&[&text, &big, &one]), expected);
        assert_eq!(set_of(&[&one, &big, &text]), expected);
        // A prefix sorts first (equal under §11.6 zero padding only if the rest were zeros).
        assert_eq!(
            set_of(&[vec![0x04, 0x01, 0x00, 0x05], vec![0x04, 0x01, 0x00]]),
            [0x31, 0x07, 0x04, 0x01, 0x00, 0x04, 0x01, 0x00, 0x05]
        );
        assert_eq!(set_of(&[] as &[&[u8]]), [0x31, 0x00]);
        // sequence keeps the given order.
        assert_eq!(
            sequence(&[&text, &one]),
            [0x30, 0x06, 0x0C, 0x01, 0x61, 0x02, 0x01, 0x01]
        );
    }

    #[test]
    fn explicit_tags_use_the_high_form_from_31() {
        assert_eq!(explicit(0, &null()), [0xA0, 0x02, 0x05, 0x00]);
        assert_eq!(explicit(30, &null()), [0xBE, 0x02, 0x05, 0x00]);
        assert_eq!(explicit(31, &null()), [0xBF, 0x1F, 0x02, 0x05, 0x00]);
        assert_eq!(explicit(200, &null()), [0xBF, 0x81, 0x48, 0x02, 0x05, 0x00]);
    }

    #[test]
    fn strings_bit_strings_and_times() {
        assert_eq!(
            printable_string("0107"),
            [0x13, 0x04, b'0', b'1', b'0', b'7']
        );
        assert_eq!(utf8_string("é"), [0x0C, 0x02, 0xC3, 0xA9]);
        assert_eq!(octet_string(&[]), [0x04, 0x00]);
        assert_eq!(null(), [0x05, 0x00]);
        assert_eq!(boolean(true), [0x01, 0x01, 0xFF]);
        assert_eq!(boolean(false), [0x01, 0x01, 0x00]);
        assert_eq!(bit_string(0, &[]), [0x03, 0x01, 0x00]);
        assert_eq!(bit_string(5, &[]), [0x03, 0x01, 0x00]);
        // keyUsage digitalSignature | nonRepudiation (bits 0 and 1): 03 02 06 C0.
        assert_eq!(bit_string(6, &[0xC0]), [0x03, 0x02, 0x06, 0xC0]);
        assert_eq!(bit_string(6, &[0xFF]), [0x03, 0x02, 0x06, 0xC0]);
        let at = time::macros::datetime!(2024-02-29 23:59:07 UTC);
        assert_eq!(utc_time(at), *b"\x17\x0D240229235907Z");
        let offset = time::macros::datetime!(2050-01-01 00:30:00 +01:00);
        assert_eq!(utc_time(offset), *b"\x17\x0D491231233000Z");
    }

    #[test]
    fn known_encodings_byte_for_byte() {
        // sha256 AlgorithmIdentifier with NULL parameters, as in PKCS #1 DigestInfo.
        assert_eq!(
            hex::encode_upper(algorithm_null(&[2, 16, 840, 1, 101, 3, 4, 2, 1])),
            "300D06096086480165030402010500"
        );
        // ecdsa-with-SHA256 without parameters (RFC 5758 §3.2).
        assert_eq!(
            hex::encode_upper(algorithm(&[1, 2, 840, 10045, 4, 3, 2])),
            "300A06082A8648CE3D040302"
        );
        // ICAO 9303-11 Appendix G.1 EF.CardAccess: one PACEInfo, version 2, parameter id 13.
        let info = sequence(&[
            oid(&[0, 4, 0, 127, 0, 7, 2, 2, 4, 2, 2]),
            integer(2),
            integer(13),
        ]);
        assert_eq!(
            hex::encode_upper(set_of(&[&info])),
            "31143012060A04007F0007020204020202010202010D"
        );
        assert_eq!(
            hex::encode_upper(constructed(&[0x7F, 0x61], &[integer(1)])),
            "7F6103020101"
        );
    }
}
