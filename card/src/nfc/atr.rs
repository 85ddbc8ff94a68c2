//! The ATR a PC/SC reader would show for a contactless card, synthesised from what the NFC reader
//! saw during activation (PC/SC part 3 §3.1.3.2.3 "ATR for contactless smart cards").
//!
//! Contactless cards have no answer-to-reset. PC/SC readers make one up from the ATS (type A)
//! or the ATQB (type B), and card detection matches on it (`crate::detect`). Building the same
//! bytes here means a card is recognised the same way whether it sits on a CCID reader behind
//! pcscd or on a PN532 behind libnfc:
//!
//! ```text
//! 3B 8n 80 01 T1..Tn TCK
//! |  |  |  |  |      '- XOR of every byte from T0 (8n) to the last historical byte
//! |  |  |  |  '- historical bytes: the ATS's (type A), or ATQB application data (4 bytes),
//! |  |  |  |     protocol info (3 bytes) and MBLI (1 byte) for type B
//! |  |  |  '- TD2: T=1, nothing follows
//! |  |  '- TD1: T=0 (a convention of part 3), TD2 follows
//! |  '- T0: TD1 follows, n historical bytes
//! '- TS: direct convention
//! ```
//!
//! The ATS comes from the card over the air: it is hostile input. [`from_ats`] checks its
//! format byte against its length and never panics (fuzz target `nfc_ats_atr`).

use thiserror::Error;

/// Most historical bytes an ATR can announce (T0's low nibble).
pub const MAX_HISTORICAL: usize = 15;

/// Why an ATS could not be turned into an ATR.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Error)]
pub enum AtsError {
    /// Nothing after the length byte: not even a format byte.
    #[error("the ATS is empty")]
    Empty,
    /// The format byte announces interface bytes (TA, TB, TC) the ATS does not have.
    #[error("the ATS announces {announced} interface bytes but carries {present}")]
    Truncated { announced: usize, present: usize },
    /// ISO/IEC 14443-4 §5.2.2: bit 8 of the format byte is 0.
    #[error("the ATS format byte has its reserved bit set")]
    ReservedBit,
}

/// The historical bytes of an ATS given without its length byte (as libnfc keeps it: format
/// byte T0, then TA, TB, TC as T0 announces them, then the historical bytes).
pub fn ats_historical_bytes(ats: &[u8]) -> Result<&[u8], AtsError> {
    let (&t0, rest) = ats.split_first().ok_or(AtsError::Empty)?;
    if t0 & 0x80 != 0 {
        return Err(AtsError::ReservedBit);
    }
    let announced = [0x10u8, 0x20, 0x40]
        .iter()
        .filter(|&&bit| t0 & bit != 0)
        .count();
    rest.get(announced..).ok_or(AtsError::Truncated {
        announced,
        present: rest.len(),
    })
}

/// PC/SC part 3 ATR for a type A card from its ATS (without the length byte). More than
/// [`MAX_HISTORICAL`] historical bytes are cut to 15, as CCID readers do: an ATR cannot carry more.
pub fn from_ats(ats: &[u8]) -> Result<Vec<u8>, AtsError> {
    let historical = ats_historical_bytes(ats)?;
    Ok(with_historical(historical))
}

/// PC/SC part 3 ATR for a type B card from its ATQB fields: application data (4 bytes),
/// protocol info (3 bytes), and the MBLI the card answered to ATTRIB (high nibble of the last
/// byte; 0 when the reader does not tell, as libnfc does not).
pub fn from_atqb(application_data: [u8; 4], protocol_info: [u8; 3], mbli: u8) -> Vec<u8> {
    let mut historical = [0u8; 8];
    historical[..4].copy_from_slice(&application_data);
    historical[4..7].copy_from_slice(&protocol_info);
    historical[7] = (mbli & 0x0F) << 4;
    with_historical(&historical)
}

/// `3B 8n 80 01 <historical> TCK`.
fn with_historical(historical: &[u8]) -> Vec<u8> {
    let historical = historical.get(..MAX_HISTORICAL).unwrap_or(historical);
    // Fits a nibble: at most 15.
    let n = u8::try_from(historical.len()).unwrap_or(MAX_HISTORICAL as u8) & 0x0F;
    let mut atr = Vec::with_capacity(5 + historical.len());
    atr.extend_from_slice(&[0x3B, 0x80 | n, 0x80, 0x01]);
    atr.extend_from_slice(historical);
    let tck = atr.iter().skip(1).fold(0u8, |acc, b| acc ^ b);
    atr.push(tck);
    atr
}

#[cfg(test)]
mod tests {
    use super::*;
    use eid_protocols::atr::Atr;

    #[test]
    fn type_a_atr_is_what_a_ccid_reader_shows() {
        // ATS of a typical passport chip: T0=78 (TA TB TC, FSCI 8), TA=77 TB=B1 TC=02, then
        // "80 31 80 66 B1 84 0C 01 6E 01 83 00 90 00" style historical bytes.
        let ats = [
            0x78, 0x77, 0xB1, 0x02, 0x80, 0x31, 0x80, 0x66, 0xB1, 0x84, 0x0C, 0x01, 0x6E, 0x01,
            0x83, 0x00, 0x90, 0x00,
        ];
        let atr = from_ats(&ats).unwrap();
        assert_eq!(&atr[..4], &[0x3B, 0x8E, 0x80, 0x01]);
        assert_eq!(&atr[4..18], &ats[4..]);
        let tck = atr[1..atr.len() - 1].iter().fold(0, |a, b| a ^ b);
        assert_eq!(*atr.last().unwrap(), tck);
        // Our own ATR parser accepts it (TCK checked) and finds the same historical bytes.
        let parsed = Atr::parse(&atr).unwrap();
        assert_eq!(parsed.historical, &ats[4..]);
        assert_eq!(parsed.tck_valid, Some(true));
    }

    #[test]
    fn format_byte_must_match_the_length() {
        assert_eq!(from_ats(&[]), Err(AtsError::Empty));
        assert_eq!(
            from_ats(&[0x70, 0x77]),
            Err(AtsError::Truncated {
                announced: 3,
                present: 1
            })
        );
        assert_eq!(from_ats(&[0x80]), Err(AtsError::ReservedBit));
        // No interface bytes, no historical bytes: 3B 80 80 01 01.
        assert_eq!(
            from_ats(&[0x00]).unwrap(),
            vec![0x3B, 0x80, 0x80, 0x01, 0x01]
        );
    }

    #[test]
    fn more_than_fifteen_historical_bytes_are_cut() {
        let mut ats = vec![0x00];
        ats.extend(0..20u8);
        let atr = from_ats(&ats).unwrap();
        assert_eq!(atr[1], 0x8F);
        assert_eq!(atr.len(), 4 + 15 + 1);
    }

    #[test]
    fn type_b_atr_carries_the_atqb() {
        let atr = from_atqb([1, 2, 3, 4], [0x80, 0x81, 0x71], 0x3);
        assert_eq!(
            atr[..12],
            [0x3B, 0x88, 0x80, 0x01, 1, 2, 3, 4, 0x80, 0x81, 0x71, 0x30]
        );
        assert_eq!(Atr::parse(&atr).unwrap().tck_valid, Some(true));
    }
}
