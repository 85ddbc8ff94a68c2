//! Answer-to-reset, ISO/IEC 7816-3:2006 §8.2, and the historical bytes of ISO/IEC 7816-4:2005
//! §8.1.1 (compact-TLV, card capabilities in table 87).
//!
//! Card detection matches ATRs by pattern; the session layer reads the card capabilities
//! (command chaining, extended Lc/Le) from the historical bytes when the card announces them.

use thiserror::Error;

/// A parsed ATR.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Atr {
    /// Transmission protocols offered by the TDi bytes (`T=0` if none is named).
    pub protocols: Vec<u8>,
    /// The historical bytes T1..TK.
    pub historical: Vec<u8>,
    /// Whether the check byte TCK was present and correct; `None` when only T=0 is offered and
    /// TCK must be absent.
    pub tck_valid: Option<bool>,
}

/// Why bytes are not an ATR. Whose fault: the card's or the reader's.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Error)]
#[non_exhaustive]
pub enum AtrError {
    #[error("ATR is empty")]
    Empty,
    #[error("ATR starts with {0:02X}, not 3B (direct) or 3F (inverse convention)")]
    BadInitialCharacter(u8),
    #[error("ATR is truncated: {0} bytes")]
    Truncated(usize),
    #[error("ATR of {0} bytes is longer than the 33 bytes ISO/IEC 7816-3 allows")]
    TooLong(usize),
    #[error("ATR has {0} bytes after its check byte")]
    TrailingBytes(usize),
}

/// What the card says it can do with APDUs: the third software function table of the card
/// capabilities data object (ISO/IEC 7816-4:2005 §8.1.1.2.7, table 88).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct CardCapabilities {
    /// b8: command chaining.
    pub command_chaining: bool,
    /// b7: extended Lc and Le fields.
    pub extended_length: bool,
}

impl Atr {
    /// Parses an ATR.
    pub fn parse(bytes: &[u8]) -> Result<Atr, AtrError> {
        let truncated = AtrError::Truncated(bytes.len());
        let (&ts, rest) = bytes.split_first().ok_or(AtrError::Empty)?;
        if ts != 0x3B && ts != 0x3F {
            return Err(AtrError::BadInitialCharacter(ts));
        }
        if bytes.len() > 33 {
            return Err(AtrError::TooLong(bytes.len()));
        }
        let (&t0, mut rest) = rest.split_first().ok_or(truncated)?;
        let k = usize::from(t0 & 0x0F);
        let mut presence = t0 >> 4;
        let mut protocols = Vec::new();
        let mut indicated = Vec::new();
        loop {
            // TAi, TBi, TCi are skipped; only TDi matters here.
            let skip = usize::from((presence & 0x7).count_ones() as u8);
            rest = rest.get(skip..).ok_or(truncated)?;
            if presence & 0x8 == 0 {
                break;
            }
            let (&td, after) = rest.split_first().ok_or(truncated)?;
            rest = after;
            let t = td & 0x0F;
            indicated.push(t);
            // T=15 announces global interface bytes, not a transmission protocol.
            if t != 15 && !protocols.contains(&t) {
                protocols.push(t);
            }
            presence = td >> 4;
        }
        let historical = rest.get(..k).ok_or(truncated)?.to_vec();
        rest = rest.get(k..).ok_or(truncated)?;
        if protocols.is_empty() {
            protocols.push(0);
        }
        // ISO/IEC 7816-3 §8.2.5: TCK is absent only when T=0 alone is indicated.
        let needs_tck = indicated.iter().any(|&t| t != 0);
        let tck_valid = if needs_tck {
            let (_, after) = rest.split_first().ok_or(truncated)?;
            rest = after;
            // XOR of T0 through TCK is zero.
            let covered = bytes.get(1..bytes.len() - rest.len()).unwrap_or_default();
            Some(covered.iter().fold(0u8, |acc, b| acc ^ b) == 0)
        } else {
            None
        };
        if !rest.is_empty() {
            return Err(AtrError::TrailingBytes(rest.len()));
        }
        Ok(Atr {
            protocols,
            historical,
            tck_valid,
        })
    }

    /// The card capabilities announced in the historical bytes, if any (category indicator 00 or
    /// 80 followed by compact-TLV with a tag 7 object of three bytes).
    pub fn card_capabilities(&self) -> Option<CardCapabilities> {
        let (&category, mut body) = self.historical.split_first()?;
        match category {
            0x80 => {}
            // Category 00: the last three bytes are a status indicator, not compact-TLV.
            0x00 => body = body.get(..body.len().checked_sub(3)?)?,
            _ => return None,
        }
        while let Some((&tl, after)) = body.split_first() {
            let (tag, len) = (tl >> 4, usize::from(tl & 0x0F));
            let value = after.get(..len)?;
            if tag == 0x7 {
                let third = *value.get(2)?;
                return Some(CardCapabilities {
                    command_chaining: third & 0x80 != 0,
                    extended_length: third & 0x40 != 0,
                });
            }
            body = after.get(len..)?;
        }
        None
    }
}

/// An ATR pattern with a mask, as card detection tables write them: a byte matches when
/// `atr[i] & mask[i] == pattern[i] & mask[i]`; lengths must be equal.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct AtrPattern {
    pattern: Vec<u8>,
    mask: Vec<u8>,
}

impl AtrPattern {
    /// An exact ATR.
    pub fn exact(atr: &[u8]) -> Self {
        AtrPattern {
            pattern: atr.to_vec(),
            mask: vec![0xFF; atr.len()],
        }
    }

    /// A pattern and its mask; `None` if their lengths differ.
    pub fn masked(pattern: &[u8], mask: &[u8]) -> Option<Self> {
        (pattern.len() == mask.len()).then(|| AtrPattern {
            pattern: pattern.to_vec(),
            mask: mask.to_vec(),
        })
    }

    pub fn matches(&self, atr: &[u8]) -> bool {
        atr.len() == self.pattern.len()
            && atr
                .iter()
                .zip(self.pattern.iter().zip(&self.mask))
                .all(|(a, (p, m))| a & m == p & m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_the_cc2_contact_atr() {
        let atr =
            hex::decode("3BFF9600008131FE4380318065B0850500111 20FFF829000E1".replace(' ', ""))
                .unwrap();
        let parsed = Atr::parse(&atr).unwrap();
        assert_eq!(parsed.protocols, vec![1]);
        assert_eq!(parsed.tck_valid, Some(true));
        assert_eq!(
            hex::encode_upper(&parsed.historical),
            "80318065B08505001112 0FFF829000".replace(' ', "")
        );
        assert_eq!(parsed.card_capabilities(), None);
    }

    #[test]
    fn parses_a_t0_atr_without_tck() {
        let atr = hex::decode("3B7D95000080318065B08311C0A983009000").unwrap();
        let parsed = Atr::parse(&atr).unwrap();
        assert_eq!(parsed.protocols, vec![0]);
        assert_eq!(parsed.tck_valid, None);
        assert_eq!(parsed.historical.len(), 13);
    }

    #[test]
    fn reads_card_capabilities() {
        // T0 = 86 (TD1, six historical bytes), TD1 = 01 (T=1), 80 73 00 21 C0 00 ... then TCK.
        let mut atr = vec![0x3B, 0x86, 0x01, 0x80, 0x73, 0x00, 0x21, 0xC0, 0x00];
        let tck = atr[1..].iter().fold(0u8, |a, b| a ^ b);
        atr.push(tck);
        let parsed = Atr::parse(&atr).unwrap();
        assert_eq!(parsed.tck_valid, Some(true));
        let caps = parsed.card_capabilities().unwrap();
        assert!(caps.command_chaining && caps.extended_length);
    }

    #[test]
    fn t15_is_not_a_protocol_but_requires_tck() {
        // TD1 = 80 (TD2 follows, T=0), TD2 = 1F (TA3 follows, T=15), TA3 = 03, then TCK.
        let mut atr = vec![0x3B, 0x80, 0x80, 0x1F, 0x03];
        let tck = atr[1..].iter().fold(0u8, |a, b| a ^ b);
        atr.push(tck);
        let parsed = Atr::parse(&atr).unwrap();
        assert_eq!(parsed.protocols, vec![0]);
        assert_eq!(parsed.tck_valid, Some(true));
    }

    #[test]
    fn rejects_malformed_atrs() {
        assert_eq!(Atr::parse(&[]).unwrap_err(), AtrError::Empty);
        assert_eq!(
            Atr::parse(&[0x3C, 0x00]).unwrap_err(),
            AtrError::BadInitialCharacter(0x3C)
        );
        assert!(matches!(
            Atr::parse(&[0x3B, 0x85, 0x01]).unwrap_err(),
            AtrError::Truncated(_)
        ));
        assert_eq!(
            Atr::parse(&[0x3B, 0x00, 0x00]).unwrap_err(),
            AtrError::TrailingBytes(1)
        );
    }

    #[test]
    fn masked_patterns() {
        let p = AtrPattern::masked(&[0x3B, 0x65, 0x00], &[0xFF, 0xFF, 0x00]).unwrap();
        assert!(p.matches(&[0x3B, 0x65, 0x42]));
        assert!(!p.matches(&[0x3B, 0x66, 0x42]));
        assert!(!p.matches(&[0x3B, 0x65]));
        assert!(AtrPattern::masked(&[1], &[1, 2]).is_none());
    }

    proptest! {
        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
            if let Ok(atr) = Atr::parse(&bytes) {
                let _ = atr.card_capabilities();
            }
        }
    }
}
