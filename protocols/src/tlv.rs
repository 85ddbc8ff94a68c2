//! BER-TLV data objects, ISO/IEC 7816-4:2005 §5.2.2.
//!
//! Parsing is done here, one level at a time, borrowing from the input: [`iter`] yields the data
//! objects of one level and the caller descends into a constructed value explicitly. Nothing is
//! recursive and nothing is copied, so hostile input (deep nesting, huge lengths, thousands of
//! siblings) costs at most one pass over its bytes and cannot exhaust the stack. `iso7816-tlv`
//! (whose own parser recurses on nesting and re-measures a constructed value's children at every
//! push) supplies the tag type and tag encoding for what we build.
//!
//! As §5.2.2.1 allows, `00` and `FF` bytes before, between and after data objects are padding
//! and are skipped (CC1 pads its SOD file with zeros this way).

use iso7816_tlv::ber::Tag;
use thiserror::Error;

/// Why a byte string is not valid BER-TLV. Whose fault: whoever produced the bytes (card, file or
/// network); offsets are from the start of the slice given to the parser.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Error)]
#[non_exhaustive]
pub enum TlvError {
    #[error("TLV truncated at offset {0}")]
    Truncated(usize),
    #[error("TLV tag at offset {0} is longer than three bytes")]
    TagTooLong(usize),
    #[error("TLV length at offset {0} is indefinite, which ISO 7816 does not allow")]
    IndefiniteLength(usize),
    #[error("TLV length at offset {0} is encoded on more than four bytes")]
    LengthTooLong(usize),
    #[error("TLV value at offset {offset} claims {len} bytes, only {available} remain")]
    ValueOverrun {
        offset: usize,
        len: usize,
        available: usize,
    },
    #[error("tag {0:X} is not a valid BER-TLV tag")]
    InvalidTag(u32),
    #[error("value of {0} bytes is too long for a TLV length field")]
    ValueTooLong(usize),
}

/// One data object, borrowed from its input.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Tlv<'a> {
    tag: u32,
    tag_len: usize,
    value: &'a [u8],
    raw: &'a [u8],
}

impl<'a> Tlv<'a> {
    /// The tag as a number, its bytes big-endian: `0x5F1F`, `0x7F49`, `0x80`.
    pub fn tag(&self) -> u32 {
        self.tag
    }
    /// The tag as `iso7816-tlv` models it (class, constructed bit, encoding).
    pub fn ber_tag(&self) -> Result<Tag, TlvError> {
        Tag::try_from(self.tag).map_err(|_| TlvError::InvalidTag(self.tag))
    }
    /// Bit 6 of the first tag byte: the value is itself a sequence of data objects.
    pub fn is_constructed(&self) -> bool {
        let first = self.raw.first().copied().unwrap_or(0);
        first & 0x20 != 0
    }
    /// The value field.
    pub fn value(&self) -> &'a [u8] {
        self.value
    }
    /// The whole data object: tag, length and value, as it was in the input.
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }
    /// The data objects one level down (meaningful for constructed objects).
    pub fn children(&self) -> Iter<'a> {
        iter(self.value)
    }
    /// The first child with `tag`, one level down.
    pub fn child(&self, tag: u32) -> Result<Option<Tlv<'a>>, TlvError> {
        find(self.value, tag)
    }
    /// Number of bytes of the tag field.
    pub fn tag_len(&self) -> usize {
        self.tag_len
    }
}

impl std::fmt::Debug for Tlv<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tlv({:X}, len={})", self.tag, self.value.len())
    }
}

/// Iterator over the data objects of one level. Yields at most one error, then stops.
#[derive(Clone, Debug)]
pub struct Iter<'a> {
    input: &'a [u8],
    pos: usize,
    failed: bool,
}

/// The data objects at the top level of `input`.
pub fn iter(input: &[u8]) -> Iter<'_> {
    Iter {
        input,
        pos: 0,
        failed: false,
    }
}

impl<'a> Iterator for Iter<'a> {
    type Item = Result<Tlv<'a>, TlvError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        // Skip inter-object padding.
        while let Some(&b) = self.input.get(self.pos) {
            if b == 0x00 || b == 0xFF {
                self.pos += 1;
            } else {
                break;
            }
        }
        if self.pos >= self.input.len() {
            return None;
        }
        let result = read_one(self.input, self.pos);
        match &result {
            Ok(tlv) => self.pos += tlv.raw.len(),
            Err(_) => self.failed = true,
        }
        Some(result)
    }
}

/// Reads the one data object starting at `start` (no padding skipped). Shared with the strict
/// DER reader of `lds::der`, which has the same tag and definite-length rules.
pub(crate) fn read_one(input: &[u8], start: usize) -> Result<Tlv<'_>, TlvError> {
    let byte = |i: usize| input.get(i).copied().ok_or(TlvError::Truncated(i));
    let mut pos = start;
    let first = byte(pos)?;
    let mut tag = u32::from(first);
    pos += 1;
    if first & 0x1F == 0x1F {
        loop {
            let b = byte(pos)?;
            if pos - start >= 3 {
                return Err(TlvError::TagTooLong(start));
            }
            tag = tag << 8 | u32::from(b);
            pos += 1;
            if b & 0x80 == 0 {
                break;
            }
        }
    }
    let tag_len = pos - start;
    let length_at = pos;
    let l0 = byte(pos)?;
    pos += 1;
    let len = match l0 {
        0x00..=0x7F => usize::from(l0),
        0x80 => return Err(TlvError::IndefiniteLength(length_at)),
        0x81..=0x84 => {
            let n = usize::from(l0 & 0x7F);
            let mut len = 0usize;
            for _ in 0..n {
                len = len << 8 | usize::from(byte(pos)?);
                pos += 1;
            }
            len
        }
        _ => return Err(TlvError::LengthTooLong(length_at)),
    };
    let available = input.len() - pos;
    if len > available {
        return Err(TlvError::ValueOverrun {
            offset: start,
            len,
            available,
        });
    }
    let end = pos + len;
    Ok(Tlv {
        tag,
        tag_len,
        value: input.get(pos..end).unwrap_or_default(),
        raw: input.get(start..end).unwrap_or_default(),
    })
}

/// Parses exactly one data object that spans the whole input (trailing padding allowed).
pub fn parse_single(input: &[u8]) -> Result<Tlv<'_>, TlvError> {
    let mut it = iter(input);
    let first = it.next().ok_or(TlvError::Truncated(0))??;
    match it.next() {
        None => Ok(first),
        Some(Err(e)) => Err(e),
        Some(Ok(extra)) => Err(TlvError::ValueOverrun {
            offset: first.raw.len(),
            len: extra.raw.len(),
            available: 0,
        }),
    }
}

/// The first data object with `tag` at the top level of `input`. Stops at the first malformed
/// object: an error before the tag is found is returned as an error.
pub fn find(input: &[u8], tag: u32) -> Result<Option<Tlv<'_>>, TlvError> {
    for tlv in iter(input) {
        let tlv = tlv?;
        if tlv.tag == tag {
            return Ok(Some(tlv));
        }
    }
    Ok(None)
}

/// Descends through `path`, one tag per level: `find_path(dg1, &[0x61, 0x5F1F])`.
pub fn find_path<'a>(input: &'a [u8], path: &[u32]) -> Result<Option<Tlv<'a>>, TlvError> {
    let mut level = input;
    let mut found = None;
    for &tag in path {
        match find(level, tag)? {
            Some(tlv) => {
                level = tlv.value;
                found = Some(tlv);
            }
            None => return Ok(None),
        }
    }
    Ok(found)
}

/// Encodes one data object: `tag`'s bytes, a minimal definite length, `value`.
pub fn encode(tag: u32, value: &[u8]) -> Result<Vec<u8>, TlvError> {
    let ber = Tag::try_from(tag).map_err(|_| TlvError::InvalidTag(tag))?;
    let tag_bytes = ber.to_bytes();
    let len = value.len();
    let mut out = Vec::with_capacity(tag_bytes.len() + 5 + len);
    out.extend_from_slice(tag_bytes);
    match len {
        0..=0x7F => out.push(len as u8),
        0x80..=0xFF => out.extend_from_slice(&[0x81, len as u8]),
        0x100..=0xFFFF => {
            out.push(0x82);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        0x1_0000..=0xFF_FFFF => {
            out.push(0x83);
            out.extend_from_slice(&(len as u32).to_be_bytes()[1..]);
        }
        _ => return Err(TlvError::ValueTooLong(len)),
    }
    out.extend_from_slice(value);
    Ok(out)
}

/// Encodes a constructed data object from already encoded children.
pub fn encode_constructed<'a>(
    tag: u32,
    children: impl IntoIterator<Item = &'a [u8]>,
) -> Result<Vec<u8>, TlvError> {
    let value: Vec<u8> = children.into_iter().flatten().copied().collect();
    encode(tag, &value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reads_one_level_and_descends() {
        // DG1-like: 61 { 5F1F <mrz> }.
        let dg1 = hex::decode("610A5F1F07414243444546479000").unwrap();
        let outer = iter(&dg1).next().unwrap().unwrap();
        assert_eq!(outer.tag(), 0x61);
        assert!(outer.is_constructed());
        let mrz = outer.child(0x5F1F).unwrap().unwrap();
        assert_eq!(mrz.value(), b"ABCDEFG");
        assert_eq!(mrz.tag_len(), 2);
        assert_eq!(
            find_path(&dg1, &[0x61, 0x5F1F]).unwrap().unwrap().value(),
            b"ABCDEFG"
        );
        assert!(find_path(&dg1, &[0x61, 0x5F20]).unwrap().is_none());
    }

    #[test]
    fn long_lengths_and_padding() {
        let mut data = vec![0x00, 0xFF];
        data.extend(encode(0x53, &[7u8; 300]).unwrap());
        data.extend([0, 0, 0]);
        let tlv = parse_single(&data).unwrap();
        assert_eq!(&tlv.raw()[..4], &[0x53, 0x82, 0x01, 0x2C]);
        assert_eq!(tlv.value().len(), 300);
    }

    #[test]
    fn malformed_input_is_an_error() {
        assert_eq!(parse_single(&[0x5F]).unwrap_err(), TlvError::Truncated(1));
        assert_eq!(
            parse_single(&[0x5F, 0x9F, 0x9F, 0x01, 0x00]).unwrap_err(),
            TlvError::TagTooLong(0)
        );
        assert_eq!(
            parse_single(&[0x61, 0x80, 0x00, 0x00]).unwrap_err(),
            TlvError::IndefiniteLength(1)
        );
        assert_eq!(
            parse_single(&[0x04, 0x85, 1, 1, 1, 1, 1]).unwrap_err(),
            TlvError::LengthTooLong(1)
        );
        assert_eq!(
            parse_single(&[0x04, 0x82, 0xFF, 0xFF, 1]).unwrap_err(),
            TlvError::ValueOverrun {
                offset: 0,
                len: 0xFFFF,
                available: 1
            }
        );
        assert!(parse_single(&[]).is_err());
        assert!(parse_single(&[0x80, 0x01, 0x01, 0x81, 0x00]).is_err());
    }

    #[test]
    fn deep_nesting_does_not_recurse() {
        // 30 000 levels of 61 nesting would blow a recursive parser's stack.
        let mut data = Vec::new();
        for i in 0..30_000u32 {
            let remaining = (30_000 - i - 1) as usize * 4;
            data.extend([0x61, 0x82]);
            data.extend(&(remaining as u16).to_be_bytes());
        }
        let mut level = data.as_slice();
        let mut depth = 0;
        while let Some(Ok(tlv)) = iter(level).next() {
            level = tlv.value();
            depth += 1;
        }
        assert!(depth > 0);
    }

    #[test]
    fn encode_uses_iso7816_tag_rules() {
        assert_eq!(
            encode(0x5F1F, b"AB").unwrap(),
            vec![0x5F, 0x1F, 0x02, b'A', b'B']
        );
        assert!(encode(0x1F, b"").is_err());
        let c = encode_constructed(0x7C, [&encode(0x80, &[1]).unwrap()[..]]).unwrap();
        assert_eq!(c, vec![0x7C, 0x03, 0x80, 0x01, 0x01]);
    }

    proptest! {
        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            for tlv in iter(&bytes) {
                match tlv {
                    Ok(t) => { let _ = t.children().count(); let _ = t.ber_tag(); }
                    Err(_) => break,
                }
            }
            let _ = parse_single(&bytes);
            let _ = find_path(&bytes, &[0x61, 0x5F1F]);
        }

        #[test]
        fn encode_then_parse_round_trips(value in proptest::collection::vec(any::<u8>(), 0..70_000usize)) {
            let bytes = encode(0x5F2E, &value).unwrap();
            let tlv = parse_single(&bytes).unwrap();
            prop_assert_eq!(tlv.tag(), 0x5F2E);
            prop_assert_eq!(tlv.value(), &value[..]);
        }
    }
}
