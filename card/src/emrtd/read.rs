//! Reading the LDS elementary files with the fewest APDUs (ICAO Doc 9303-10 §3.7, ISO/IEC 7816-4
//! §11.2.3):
//!
//! - the first READ BINARY addresses the file by its short file identifier (P1 = 80 | SFI), which
//!   selects it without a SELECT command, and asks for as much as one (protected) answer can
//!   carry; the file's own BER-TLV header then gives its total size;
//! - the rest comes in as few further READ BINARY commands as the answer size allows: even INS
//!   B0 with a 15-bit offset up to 32 767, odd INS B1 with an offset data object (DO 54) beyond;
//! - a chip that refuses SFI addressing, or has not given the file its short identifier (6A82
//!   to the SFI read), gets SELECT EF (P2 = 0C) and offset reads instead;
//! - a file the chip does not have (6A82 to the SELECT) is `None`.

use eid_protocols::apdu::{EXTENDED_MAX_NE, SHORT_MAX_NE};
use eid_protocols::commands::{self, FileReturn, Select};
use eid_protocols::{Command, Status, lds, tlv};

use crate::session::{LengthPolicy, MAX_FILE_SIZE, Session};
use crate::{Error, Transport};

/// An LDS file: its file identifier and short file identifier (ICAO 9303-10 §4.6, §4.7).
#[derive(Clone, Copy, PartialEq, Eq, Debug, serde::Serialize)]
pub struct LdsFile {
    /// Name for humans and progress bars (`EF.COM`, `DG2`...).
    pub name: &'static str,
    pub fid: u16,
    pub sfi: u8,
}

impl LdsFile {
    /// EF.CardAccess under the MF (ICAO 9303-10 §3.11.3).
    pub const CARD_ACCESS: LdsFile = LdsFile {
        name: "EF.CardAccess",
        fid: lds::EF_CARD_ACCESS_FID,
        sfi: lds::EF_CARD_ACCESS_SFI,
    };
    /// EF.CardSecurity under the MF (ICAO 9303-10 §3.11.4): read under secure messaging after
    /// PACE-CAM.
    pub const CARD_SECURITY: LdsFile = LdsFile {
        name: "EF.CardSecurity",
        fid: lds::EF_CARD_SECURITY_FID,
        sfi: 0x1D,
    };
    /// EF.COM in the LDS1 application.
    pub const COM: LdsFile = LdsFile {
        name: "EF.COM",
        fid: lds::EF_COM_FID,
        sfi: lds::EF_COM_SFI,
    };
    /// EF.SOD in the LDS1 application.
    pub const SOD: LdsFile = LdsFile {
        name: "EF.SOD",
        fid: lds::EF_SOD_FID,
        sfi: lds::EF_SOD_SFI,
    };

    /// Data group `n` (1 to 16): FID 01nn, SFI nn.
    pub fn data_group(n: u8) -> Option<LdsFile> {
        const NAMES: [&str; 16] = [
            "DG1", "DG2", "DG3", "DG4", "DG5", "DG6", "DG7", "DG8", "DG9", "DG10", "DG11", "DG12",
            "DG13", "DG14", "DG15", "DG16",
        ];
        let dg = lds::DataGroup::new(n)?;
        let name = NAMES.get(usize::from(dg.number()).checked_sub(1)?)?;
        Some(LdsFile {
            name,
            fid: dg.fid(),
            sfi: dg.sfi(),
        })
    }
}

/// How far a file read has come, for a progress bar.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Progress {
    pub file: LdsFile,
    /// Bytes read so far.
    pub read: usize,
    /// The file's size once its header has been read.
    pub total: Option<usize>,
}

/// A progress callback; called after every READ BINARY.
pub type ProgressFn<'a> = dyn FnMut(&Progress) + Send + 'a;

/// The largest plain Ne one READ BINARY may ask for over `transport`.
fn max_read(transport: &dyn Transport) -> usize {
    let caps = transport.capabilities();
    caps.max_response_len
        .saturating_sub(2)
        .clamp(1, EXTENDED_MAX_NE)
}

/// Total size of a BER-TLV object from its first bytes (tag and length), if they are there.
fn tlv_total_len(head: &[u8]) -> Result<Option<usize>, Error> {
    let bad = || Error::ProtocolViolation("an LDS file does not start with a BER-TLV header");
    let first = *head.first().ok_or_else(bad)?;
    let mut pos = 1usize;
    if first & 0x1F == 0x1F {
        // Multi-byte tag: continuation bytes have bit 8 set; at most three bytes follow.
        loop {
            let Some(&b) = head.get(pos) else {
                return Ok(None);
            };
            pos += 1;
            if b & 0x80 == 0 {
                break;
            }
            if pos > 4 {
                return Err(bad());
            }
        }
    }
    let Some(&l) = head.get(pos) else {
        return Ok(None);
    };
    pos += 1;
    let len = match l {
        0..=0x7F => usize::from(l),
        0x81..=0x84 => {
            let n = usize::from(l & 0x7F);
            let Some(bytes) = head.get(pos..pos + n) else {
                return Ok(None);
            };
            pos += n;
            bytes
                .iter()
                .fold(0usize, |acc, &b| acc << 8 | usize::from(b))
        }
        _ => return Err(bad()),
    };
    let total = pos.checked_add(len).ok_or_else(bad)?;
    if total > MAX_FILE_SIZE {
        return Err(Error::FileTooLarge {
            limit: MAX_FILE_SIZE,
        });
    }
    Ok(Some(total))
}

/// Reads one LDS file from the current application (or the MF for EF.CardAccess). `None` when
/// the chip does not have it.
pub fn read_lds_file(
    transport: &mut dyn Transport,
    file: LdsFile,
    progress: &mut ProgressFn<'_>,
) -> Result<Option<Vec<u8>>, Error> {
    let max = max_read(transport);
    let mut session = Session::with_policy(transport, LengthPolicy::PreferExtended);

    // First read: by SFI, as much as fits.
    let first_ne = max.min(if session.link().extended_length {
        EXTENDED_MAX_NE
    } else {
        SHORT_MAX_NE
    });
    let by_sfi = commands::read_binary_sfi(file.sfi, 0, first_ne)
        .ok_or(Error::ProtocolViolation("invalid short file identifier"))?;
    let response = session.transmit(&by_sfi)?;
    let mut data = match response.status() {
        Status::Success | Status::EndOfFile => response.into_data(),
        Status::SecurityStatusNotSatisfied => {
            return Err(Error::Status {
                command: by_sfi.header(),
                status: Status::SecurityStatusNotSatisfied,
            });
        }
        _ => {
            // No SFI addressing, no such SFI (6A82), or no large Le on the first read: SELECT
            // by file identifier, then offsets.
            match session.select(Select::Fid(file.fid), FileReturn::None) {
                Ok(_) => {}
                Err(Error::Status {
                    status: Status::FileNotFound,
                    ..
                }) => return Ok(None),
                Err(e) => return Err(e),
            }
            let head = read_at(&mut session, 0, 8)?;
            if head.is_empty() {
                return Err(Error::ProtocolViolation("an LDS file is empty"));
            }
            head
        }
    };
    if data.len() > first_ne {
        return Err(Error::ProtocolViolation(
            "READ BINARY returned more than asked",
        ));
    }
    let total = tlv_total_len(&data)?;
    progress(&Progress {
        file,
        read: data.len().min(total.unwrap_or(usize::MAX)),
        total,
    });
    // A header longer than the first answer cannot happen with Ne ≥ 8.
    let Some(total) = total else {
        return Err(Error::ProtocolViolation("an LDS file header is truncated"));
    };
    data.truncate(total);
    data.reserve_exact(total.saturating_sub(data.len()));
    while data.len() < total {
        let want = (total - data.len()).min(max);
        let chunk = read_at(&mut session, data.len(), want)?;
        if chunk.is_empty() {
            return Err(Error::ProtocolViolation(
                "an LDS file is shorter than its header says",
            ));
        }
        data.extend_from_slice(&chunk);
        progress(&Progress {
            file,
            read: data.len(),
            total: Some(total),
        });
    }
    Ok(Some(data))
}

/// One READ BINARY of up to `ne` bytes at `offset` of the current EF: B0 below 32 768, B1 with
/// DO 54 beyond (its answer's DO 53 unwrapped).
fn read_at(session: &mut Session<'_>, offset: usize, ne: usize) -> Result<Vec<u8>, Error> {
    let (command, odd): (Command, bool) = match u16::try_from(offset)
        .ok()
        .filter(|&o| o <= 0x7FFF)
        .and_then(|o| commands::read_binary(o, ne))
    {
        Some(c) => (c, false),
        None => {
            let offset = u32::try_from(offset).map_err(|_| Error::FileTooLarge {
                limit: MAX_FILE_SIZE,
            })?;
            // Ne counts the DO 53 header (up to 4 bytes) too.
            let ne = ne.saturating_add(4).min(session.link().max_ne.max(5));
            (commands::read_binary_odd(offset, ne), true)
        }
    };
    let response = session.transmit(&command)?;
    match response.status() {
        Status::Success | Status::EndOfFile => {}
        status => {
            return Err(Error::Status {
                command: command.header(),
                status,
            });
        }
    }
    let data = if odd {
        if response.data().is_empty() {
            Vec::new()
        } else {
            match tlv::parse_single(response.data()) {
                Ok(obj) if obj.tag() == 0x53 => obj.value().to_vec(),
                _ => {
                    return Err(Error::ProtocolViolation(
                        "READ BINARY (B1) answer is not a 53 object",
                    ));
                }
            }
        }
    } else {
        response.into_data()
    };
    if data.len() > ne {
        return Err(Error::ProtocolViolation(
            "READ BINARY returned more than asked",
        ));
    }
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tlv_total_length_from_headers() {
        assert_eq!(tlv_total_len(&[0x60, 0x14]).unwrap(), Some(0x16));
        assert_eq!(
            tlv_total_len(&[0x77, 0x82, 0x01, 0x00]).unwrap(),
            Some(0x104)
        );
        assert_eq!(
            tlv_total_len(&[0x75, 0x83, 0x01, 0x00, 0x00]).unwrap(),
            Some(0x10005)
        );
        assert_eq!(tlv_total_len(&[0x7F, 0x61, 0x03]).unwrap(), Some(6));
        assert_eq!(tlv_total_len(&[0x77, 0x82, 0x01]).unwrap(), None);
        assert!(tlv_total_len(&[]).is_err());
        assert!(tlv_total_len(&[0x77, 0x80]).is_err());
        assert!(matches!(
            tlv_total_len(&[0x77, 0x84, 0xFF, 0xFF, 0xFF, 0xFF]),
            Err(Error::FileTooLarge { .. })
        ));
        assert!(tlv_total_len(&[0x1F, 0x81, 0x81, 0x81, 0x81, 0x01]).is_err());
    }

    #[test]
    fn data_group_files() {
        let dg2 = LdsFile::data_group(2).unwrap();
        assert_eq!((dg2.fid, dg2.sfi, dg2.name), (0x0102, 2, "DG2"));
        assert_eq!(LdsFile::data_group(16).unwrap().fid, 0x0110);
        assert!(LdsFile::data_group(0).is_none());
        assert!(LdsFile::data_group(17).is_none());
    }
}
