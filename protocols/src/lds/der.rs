//! A small, strict DER reader (ITU-T X.690 §8, §10) for the ASN.1 structures of ICAO 9303 and
//! CMS: one level at a time, borrowing from the input, definite lengths only, no recursion.
//!
//! BER input (indefinite lengths) is normalised to DER by OpenSSL before it reaches this reader
//! (see `pa`), so everything here may insist on definite lengths.

use thiserror::Error;

/// Why bytes are not the DER expected. Whose fault: whoever produced the bytes.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DerError {
    #[error("DER truncated at offset {0}")]
    Truncated(usize),
    #[error("DER length at offset {0} is indefinite or longer than four bytes")]
    BadLength(usize),
    #[error("DER tag at offset {0} is longer than three bytes")]
    TagTooLong(usize),
    #[error("expected {expected}, found tag {found:#X}")]
    Unexpected { expected: &'static str, found: u32 },
    #[error("{0} is missing")]
    Missing(&'static str),
    #[error("{0} is malformed")]
    Malformed(&'static str),
}

pub(crate) const INTEGER: u32 = 0x02;
pub(crate) const OCTET_STRING: u32 = 0x04;
pub(crate) const OID: u32 = 0x06;
pub(crate) const PRINTABLE_STRING: u32 = 0x13;
pub(crate) const SEQUENCE: u32 = 0x30;
pub(crate) const SET: u32 = 0x31;

/// One DER element: its tag (bytes big-endian), value and whole encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Element<'a> {
    pub(crate) tag: u32,
    pub(crate) value: &'a [u8],
    pub(crate) raw: &'a [u8],
}

impl<'a> Element<'a> {
    /// The elements inside this (constructed) element.
    pub(crate) fn reader(&self) -> Reader<'a> {
        Reader::new(self.value)
    }
    pub(crate) fn expect(self, tag: u32, what: &'static str) -> Result<Self, DerError> {
        if self.tag == tag {
            Ok(self)
        } else {
            Err(DerError::Unexpected {
                expected: what,
                found: self.tag,
            })
        }
    }
}

/// Reads the elements of one level in order.
#[derive(Clone, Debug)]
pub(crate) struct Reader<'a> {
    input: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(input: &'a [u8]) -> Self {
        Self { input, pos: 0 }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.pos >= self.input.len()
    }

    /// The tag of the next element without consuming it.
    pub(crate) fn peek_tag(&self) -> Option<u32> {
        read_element(self.input, self.pos).ok().map(|e| e.tag)
    }

    /// The next element, or `None` at the end.
    pub(crate) fn next_element(&mut self) -> Result<Option<Element<'a>>, DerError> {
        if self.is_empty() {
            return Ok(None);
        }
        let e = read_element(self.input, self.pos)?;
        self.pos += e.raw.len();
        Ok(Some(e))
    }

    /// The next element, which must exist.
    pub(crate) fn element(&mut self, what: &'static str) -> Result<Element<'a>, DerError> {
        self.next_element()?.ok_or(DerError::Missing(what))
    }

    /// The next element, which must have `tag`.
    pub(crate) fn expect(&mut self, tag: u32, what: &'static str) -> Result<Element<'a>, DerError> {
        self.element(what)?.expect(tag, what)
    }

    /// The next element if it has `tag`.
    pub(crate) fn optional(&mut self, tag: u32) -> Result<Option<Element<'a>>, DerError> {
        if self.peek_tag() == Some(tag) {
            self.next_element()
        } else {
            Ok(None)
        }
    }
}

/// One element at `start`, decoded by the crate's bounded TLV reader (tags of up to three
/// bytes, definite lengths of up to four bytes), its errors said in DER terms.
fn read_element(input: &[u8], start: usize) -> Result<Element<'_>, DerError> {
    use crate::tlv::{TlvError, read_one};
    let tlv = read_one(input, start).map_err(|e| match e {
        TlvError::TagTooLong(at) => DerError::TagTooLong(at),
        TlvError::IndefiniteLength(at) | TlvError::LengthTooLong(at) => DerError::BadLength(at),
        TlvError::Truncated(_) | TlvError::ValueOverrun { .. } => DerError::Truncated(input.len()),
        TlvError::InvalidTag(_) | TlvError::ValueTooLong(_) => DerError::Malformed("element"),
    })?;
    Ok(Element {
        tag: tlv.tag(),
        value: tlv.value(),
        raw: tlv.raw(),
    })
}

/// Parses exactly one element spanning all of `input`.
pub(crate) fn single<'a>(input: &'a [u8], what: &'static str) -> Result<Element<'a>, DerError> {
    let mut r = Reader::new(input);
    let e = r.element(what)?;
    if !r.is_empty() {
        return Err(DerError::Malformed(what));
    }
    Ok(e)
}

/// The dotted form of an OBJECT IDENTIFIER's content octets (X.690 §8.19); `None` when malformed.
pub(crate) fn oid_to_string(content: &[u8]) -> Option<String> {
    use std::fmt::Write;
    if content.is_empty() || content.len() > 64 {
        return None;
    }
    let mut out = String::new();
    let mut value: u64 = 0;
    let mut first = true;
    let mut in_arc = false;
    for &b in content {
        if !in_arc && b == 0x80 {
            return None; // non-minimal encoding
        }
        value = value.checked_mul(128)?.checked_add(u64::from(b & 0x7F))?;
        in_arc = b & 0x80 != 0;
        if !in_arc {
            if first {
                let (a, b) = match value {
                    0..=39 => (0, value),
                    40..=79 => (1, value - 40),
                    _ => (2, value - 80),
                };
                let _ = write!(out, "{a}.{b}");
                first = false;
            } else {
                let _ = write!(out, ".{value}");
            }
            value = 0;
        }
    }
    if in_arc { None } else { Some(out) }
}

/// Reads an OBJECT IDENTIFIER element as a dotted string.
pub(crate) fn oid(e: Element<'_>, what: &'static str) -> Result<String, DerError> {
    oid_to_string(e.expect(OID, what)?.value).ok_or(DerError::Malformed(what))
}

/// Reads a small non-negative INTEGER (up to `u64`).
pub(crate) fn small_uint(e: Element<'_>, what: &'static str) -> Result<u64, DerError> {
    let v = e.expect(INTEGER, what)?.value;
    let v = match v {
        [0, rest @ ..] if !rest.is_empty() => rest,
        _ => v,
    };
    if v.is_empty() || v.len() > 8 || v.first().is_some_and(|b| b & 0x80 != 0) {
        return Err(DerError::Malformed(what));
    }
    Ok(v.iter().fold(0u64, |acc, &b| acc << 8 | u64::from(b)))
}

/// Encodes a definite DER length (for re-tagging signed attributes).
pub(crate) fn encode_len(len: usize, out: &mut Vec<u8>) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|&&b| b == 0).count();
        let significant = bytes.get(skip..).unwrap_or_default();
        out.push(0x80 | significant.len() as u8);
        out.extend_from_slice(significant);
    }
}

/// Encodes one element with a single-byte tag.
pub(crate) fn encode(tag: u8, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len() + 6);
    out.push(tag);
    encode_len(value.len(), &mut out);
    out.extend_from_slice(value);
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn oids_decode() {
        assert_eq!(
            oid_to_string(&[0x67, 0x81, 0x08, 0x01, 0x01, 0x01]).unwrap(),
            "2.23.136.1.1.1"
        );
        assert_eq!(
            oid_to_string(&[0x04, 0x00, 0x7F, 0x00, 0x07, 0x02, 0x02, 0x04, 0x02, 0x02]).unwrap(),
            "0.4.0.127.0.7.2.2.4.2.2"
        );
        assert!(oid_to_string(&[0x2A, 0x86]).is_none());
        assert!(oid_to_string(&[]).is_none());
    }

    #[test]
    fn reads_nested_and_rejects_overruns() {
        let seq = [0x30, 0x06, 0x02, 0x01, 0x05, 0x04, 0x01, 0xAA];
        let e = single(&seq, "seq").unwrap();
        let mut r = e.reader();
        assert_eq!(small_uint(r.element("i").unwrap(), "i").unwrap(), 5);
        assert_eq!(r.expect(OCTET_STRING, "o").unwrap().value, &[0xAA]);
        assert!(r.next_element().unwrap().is_none());
        assert!(single(&[0x30, 0x80, 0, 0], "x").is_err());
        assert!(single(&[0x30, 0x84, 0xFF, 0xFF, 0xFF, 0xFF], "x").is_err());
        let mut long = vec![0x04, 0x82, 0x01, 0x00];
        long.extend([0u8; 256]);
        assert_eq!(encode(0x04, &[0u8; 256]), long);
    }
}
