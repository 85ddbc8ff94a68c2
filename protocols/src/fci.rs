//! File control information returned by SELECT, ISO/IEC 7816-4:2005 §5.3.3 (tables 12 and 13).
//!
//! Cards answer with an FCP template (`62`), an FCI template (`6F`, sometimes wrapping a `62`), or
//! an FMD template (`64`). [`FileControl::parse`] accepts all three and extracts what the session
//! layer and the card applications need: how many bytes to read, and what was selected.

use thiserror::Error;

use crate::tlv::{self, TlvError};

/// What the card said about a selected file.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct FileControl {
    /// Tag 80: number of data bytes in a transparent EF.
    pub size: Option<usize>,
    /// Tag 81: number of bytes the file occupies, structural information included.
    pub allocated: Option<usize>,
    /// Tag 82: the file descriptor byte.
    pub descriptor: Option<u8>,
    /// Tag 83: the file identifier.
    pub fid: Option<u16>,
    /// Tag 84: the DF name (application identifier).
    pub df_name: Option<Vec<u8>>,
    /// Tag 88: the short EF identifier.
    pub sfi: Option<u8>,
    /// Tag 8A: the life cycle status byte.
    pub life_cycle: Option<u8>,
}

/// Why a SELECT response is not usable file control information. Whose fault: the card's.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Error)]
#[non_exhaustive]
pub enum FciError {
    #[error("file control information is not BER-TLV: {0}")]
    Tlv(#[from] TlvError),
    #[error("file control information has template tag {0:X}, not 62, 64 or 6F")]
    NotATemplate(u32),
    #[error("file control data object {0:X} has a malformed value")]
    BadValue(u32),
}

impl FileControl {
    /// Parses an FCP, FCI or FMD template.
    pub fn parse(bytes: &[u8]) -> Result<FileControl, FciError> {
        let template = tlv::parse_single(bytes)?;
        if !matches!(template.tag(), 0x62 | 0x64 | 0x6F) {
            return Err(FciError::NotATemplate(template.tag()));
        }
        let mut fc = FileControl::default();
        fc.absorb(template.value(), true)?;
        Ok(fc)
    }

    /// The number of bytes READ BINARY can return: tag 80, else tag 81.
    pub fn readable_size(&self) -> Option<usize> {
        self.size.or(self.allocated)
    }

    /// Whether the descriptor byte says "DF" (ISO/IEC 7816-4:2005 table 14: `x x 1 1 1 0 0 0`).
    pub fn is_df(&self) -> bool {
        self.descriptor.is_some_and(|d| d & 0x3F == 0x38)
    }

    fn absorb(&mut self, level: &[u8], may_descend: bool) -> Result<(), FciError> {
        for obj in tlv::iter(level) {
            let obj = obj?;
            let v = obj.value();
            match obj.tag() {
                // An FCI may wrap an FCP template; read it, one level only.
                0x62 if may_descend => self.absorb(v, false)?,
                0x80 => self.size = Some(be_uint(0x80, v)?),
                0x81 => self.allocated = Some(be_uint(0x81, v)?),
                0x82 => self.descriptor = Some(*v.first().ok_or(FciError::BadValue(0x82))?),
                0x83 => {
                    let fid: [u8; 2] = v.try_into().map_err(|_| FciError::BadValue(0x83))?;
                    self.fid = Some(u16::from_be_bytes(fid));
                }
                0x84 if v.len() <= 16 => self.df_name = Some(v.to_vec()),
                0x84 => return Err(FciError::BadValue(0x84)),
                // 88 may be empty (no SFI); its value holds the SFI in bits 8-4.
                0x88 => self.sfi = v.first().map(|b| b >> 3),
                0x8A => self.life_cycle = v.first().copied(),
                _ => {}
            }
        }
        Ok(())
    }
}

fn be_uint(tag: u32, v: &[u8]) -> Result<usize, FciError> {
    if v.is_empty() || v.len() > 4 {
        return Err(FciError::BadValue(tag));
    }
    Ok(v.iter().fold(0usize, |acc, &b| acc << 8 | usize::from(b)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_fcp_and_fci_forms() {
        let fcp = hex::decode("620E8002012C8201018302EF02880110").unwrap();
        let fc = FileControl::parse(&fcp).unwrap();
        assert_eq!(fc.size, Some(300));
        assert_eq!(fc.fid, Some(0xEF02));
        assert_eq!(fc.descriptor, Some(0x01));
        assert_eq!(fc.sfi, Some(2));
        assert!(!fc.is_df());

        // CC1 style: 6F with 81 (allocated) instead of 80.
        let fci = hex::decode("6F0B8102138C8201018302EF02").unwrap();
        assert_eq!(
            FileControl::parse(&fci).unwrap().readable_size(),
            Some(0x138C)
        );

        // 6F wrapping 62, with a DF name.
        let df = hex::decode("6F11620F8201388407604632FF0000028A0105").unwrap();
        let fc = FileControl::parse(&df).unwrap();
        assert!(fc.is_df());
        assert_eq!(
            fc.df_name.as_deref(),
            Some(&[0x60, 0x46, 0x32, 0xFF, 0, 0, 2][..])
        );
        assert_eq!(fc.life_cycle, Some(5));
    }

    #[test]
    fn rejects_what_is_not_file_control() {
        assert_eq!(
            FileControl::parse(&[0x70, 0x00]).unwrap_err(),
            FciError::NotATemplate(0x70)
        );
        assert_eq!(
            FileControl::parse(&[0x62, 0x02, 0x80, 0x00]).unwrap_err(),
            FciError::BadValue(0x80)
        );
        assert_eq!(
            FileControl::parse(&[0x62, 0x03, 0x83, 0x01, 0x00]).unwrap_err(),
            FciError::BadValue(0x83)
        );
        assert!(FileControl::parse(&[0x62, 0x05, 0x80]).is_err());
    }

    proptest! {
        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = FileControl::parse(&bytes);
        }
    }
}
