//! The PN532 host-link frames (UM0701-02 §6.2.1), parsed from a byte stream and built.
//!
//! ```text
//! normal:    00 00 FF LEN LCS TFI PD0 .. PDn DCS 00        LEN + LCS = 0 (mod 256)
//! extended:  00 00 FF FF FF LENM LENL LCS TFI PD0 .. DCS 00  LENM + LENL + LCS = 0
//! ACK:       00 00 FF 00 FF 00
//! NACK:      00 00 FF FF 00 00
//! error:     00 00 FF 01 FF 7F 81 00    (application-level / syntax error, PN532 to host)
//! ```
//!
//! LEN counts TFI and the data; TFI is D4 from host to PN532 and D5 back; TFI + data + DCS
//! sum to 0 (mod 256). The first data byte is the command code (the answer's is code + 1).
//!
//! The parser is what the emulated chip runs on the bytes it receives. It looks for the start
//! code `00 FF` and skips anything before it: the preamble, the postamble of the previous frame
//! and the HSU wake-up bytes (`55 55 00 00 ...`) are all noise to it. A frame with a wrong length
//! checksum, a wrong data checksum, a TFI other than D4, no command code or a length beyond what
//! the chip buffers is returned as a [`FrameError`]: the chip does not acknowledge it (the host
//! times out), and the parser resynchronises on the next start code after the rejected header
//! (after the whole frame when only its data checksum or TFI was wrong).
//!
//! Nothing here panics on any input (`fuzz/fuzz_targets/pn532_frame.rs`).

use thiserror::Error;

/// Host to PN532.
pub const TFI_HOST: u8 = 0xD4;
/// PN532 to host.
pub const TFI_CHIP: u8 = 0xD5;
/// The ACK frame (both directions).
pub const ACK: [u8; 6] = [0x00, 0x00, 0xFF, 0x00, 0xFF, 0x00];
/// The NACK frame (host to PN532: "send the last answer again").
pub const NACK: [u8; 6] = [0x00, 0x00, 0xFF, 0xFF, 0x00, 0x00];
/// The syntax error frame (PN532 to host: the command was not understood).
pub const ERROR_FRAME: [u8; 8] = [0x00, 0x00, 0xFF, 0x01, 0xFF, 0x7F, 0x81, 0x00];
/// The most data bytes (command code and parameters) one frame carries: what libnfc sends at
/// most (`PN53x_EXTENDED_FRAME__DATA_MAX_LEN`), 262 bytes of InDataExchange data plus the
/// command code and the target number.
pub const MAX_DATA: usize = 264;
/// Data bytes above which a normal frame cannot be used (LEN = TFI + data <= 255).
const NORMAL_MAX_DATA: usize = 254;

/// One frame from the host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostFrame {
    /// `00 00 FF 00 FF 00`: aborts the command being processed.
    Ack,
    /// `00 00 FF FF 00 00`: asks for the last answer again.
    Nack,
    /// An information frame: the command code and its parameters (TFI stripped).
    Command(Vec<u8>),
}

/// A frame the chip rejects (not acknowledged).
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum FrameError {
    #[error("length checksum mismatch (LEN {len:#06x}, LCS {lcs:#04x})")]
    LengthChecksum { len: u16, lcs: u8 },
    #[error("frame of {len} bytes is longer than the chip's buffer ({max} bytes)")]
    TooLong { len: usize, max: usize },
    #[error("frame without TFI or command code (LEN {len})")]
    TooShort { len: usize },
    #[error("data checksum mismatch")]
    DataChecksum,
    #[error("frame identifier {tfi:#04x} is not the host's D4")]
    WrongTfi { tfi: u8 },
}

/// Incremental parser of the host's byte stream.
#[derive(Debug, Default)]
pub struct FrameParser {
    buf: Vec<u8>,
}

impl FrameParser {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes held that are part of a frame not complete yet (0 when idle).
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    /// Forgets a partial frame (the host went away, or stopped in the middle of a frame).
    pub fn clear(&mut self) {
        self.buf.clear();
    }

    /// The next complete frame, or rejected frame, in the stream; `None` until more bytes come.
    pub fn next_frame(&mut self) -> Option<Result<HostFrame, FrameError>> {
        loop {
            // Skip to the start code.
            let start = match self.buf.windows(2).position(|w| w == [0x00, 0xFF]) {
                Some(at) => at,
                None => {
                    // Keep a trailing 00: it may be the first half of the start code.
                    let keep = usize::from(self.buf.last() == Some(&0x00));
                    let drop = self.buf.len().saturating_sub(keep);
                    self.buf.drain(..drop);
                    return None;
                }
            };
            self.buf.drain(..start);
            let (outcome, consumed) = parse_at_start(&self.buf)?;
            let consumed = consumed.clamp(1, self.buf.len());
            self.buf.drain(..consumed);
            match outcome {
                Some(result) => return Some(result),
                None => continue,
            }
        }
    }
}

/// Parses a frame at the start of `buf` (which begins with `00 FF`). `None`: more bytes needed.
/// Otherwise the outcome (`None` inside: nothing to report, skip) and how many bytes to drop.
#[allow(clippy::type_complexity)]
fn parse_at_start(buf: &[u8]) -> Option<(Option<Result<HostFrame, FrameError>>, usize)> {
    let a = *buf.get(2)?;
    let b = *buf.get(3)?;
    let (len, header) = match (a, b) {
        (0x00, 0xFF) => return Some((Some(Ok(HostFrame::Ack)), 4)),
        (0xFF, 0x00) => return Some((Some(Ok(HostFrame::Nack)), 4)),
        (0xFF, 0xFF) => {
            let lenm = *buf.get(4)?;
            let lenl = *buf.get(5)?;
            let lcs = *buf.get(6)?;
            if lenm.wrapping_add(lenl).wrapping_add(lcs) != 0 {
                let len = u16::from_be_bytes([lenm, lenl]);
                // Resynchronise after the start code: the length is not trustworthy.
                return Some((Some(Err(FrameError::LengthChecksum { len, lcs })), 2));
            }
            (usize::from(u16::from_be_bytes([lenm, lenl])), 7)
        }
        (len, lcs) => {
            if len.wrapping_add(lcs) != 0 {
                return Some((
                    Some(Err(FrameError::LengthChecksum {
                        len: u16::from(len),
                        lcs,
                    })),
                    2,
                ));
            }
            (usize::from(len), 4)
        }
    };
    if len > MAX_DATA + 1 {
        return Some((
            Some(Err(FrameError::TooLong {
                len,
                max: MAX_DATA + 1,
            })),
            header,
        ));
    }
    if len < 2 {
        return Some((Some(Err(FrameError::TooShort { len })), header));
    }
    // TFI + data + DCS.
    let body = buf.get(header..header + len + 1)?;
    let total = header + len + 1;
    let (payload, dcs) = body.split_at(len);
    let sum = payload
        .iter()
        .chain(dcs)
        .fold(0u8, |acc, &byte| acc.wrapping_add(byte));
    if sum != 0 {
        return Some((Some(Err(FrameError::DataChecksum)), total));
    }
    let (&tfi, data) = payload.split_first()?;
    if tfi != TFI_HOST {
        return Some((Some(Err(FrameError::WrongTfi { tfi })), total));
    }
    Some((Some(Ok(HostFrame::Command(data.to_vec()))), total))
}

/// Builds an information frame with TFI `tfi` around `data` (command code and parameters):
/// normal when it fits, extended otherwise. `None` if `data` is longer than an extended frame
/// can say (65 534 bytes).
pub fn encode(tfi: u8, data: &[u8]) -> Option<Vec<u8>> {
    let len = data.len().checked_add(1)?;
    let len16 = u16::try_from(len).ok().filter(|&l| l < u16::MAX)?;
    let mut frame = Vec::with_capacity(len + 10);
    frame.extend_from_slice(&[0x00, 0x00, 0xFF]);
    if data.len() <= NORMAL_MAX_DATA {
        let len8 = len16.to_be_bytes()[1];
        frame.extend_from_slice(&[len8, len8.wrapping_neg()]);
    } else {
        let [lenm, lenl] = len16.to_be_bytes();
        frame.extend_from_slice(&[
            0xFF,
            0xFF,
            lenm,
            lenl,
            lenm.wrapping_add(lenl).wrapping_neg(),
        ]);
    }
    frame.push(tfi);
    frame.extend_from_slice(data);
    let sum = data.iter().fold(tfi, |acc, &byte| acc.wrapping_add(byte));
    frame.push(sum.wrapping_neg());
    frame.push(0x00);
    Some(frame)
}

/// The chip's answer frame to command `code`: TFI D5, code + 1, then `data`.
pub fn answer(code: u8, data: &[u8]) -> Option<Vec<u8>> {
    let mut body = Vec::with_capacity(data.len() + 1);
    body.push(code.wrapping_add(1));
    body.extend_from_slice(data);
    encode(TFI_CHIP, &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(bytes: &[u8]) -> Vec<Result<HostFrame, FrameError>> {
        let mut parser = FrameParser::new();
        parser.push(bytes);
        std::iter::from_fn(|| parser.next_frame()).collect()
    }

    /// libnfc's SAMConfiguration(normal) frame after its HSU wake-up preamble.
    #[test]
    fn wake_up_preamble_then_command() {
        let mut bytes = vec![0x55, 0x55];
        bytes.extend_from_slice(&[0; 14]);
        bytes.extend_from_slice(&[0x00, 0x00, 0xFF, 0x03, 0xFD, 0xD4, 0x14, 0x01, 0x17, 0x00]);
        assert_eq!(
            parse_all(&bytes),
            [Ok(HostFrame::Command(vec![0x14, 0x01]))]
        );
    }

    #[test]
    fn byte_by_byte() {
        let frame = encode(TFI_HOST, &[0x02]).unwrap();
        assert_eq!(
            frame,
            [0x00, 0x00, 0xFF, 0x02, 0xFE, 0xD4, 0x02, 0x2A, 0x00]
        );
        let mut parser = FrameParser::new();
        for (i, byte) in frame.iter().enumerate() {
            parser.push(&[*byte]);
            let got = parser.next_frame();
            if i == 7 {
                assert_eq!(got, Some(Ok(HostFrame::Command(vec![0x02]))));
            } else {
                assert_eq!(got, None, "byte {i}");
            }
        }
    }

    #[test]
    fn ack_nack_and_extended() {
        let data: Vec<u8> = (0..=255u8).chain(0..8).collect();
        let mut bytes = ACK.to_vec();
        bytes.extend_from_slice(&NACK);
        let extended = encode(TFI_HOST, &data).unwrap();
        assert_eq!(&extended[3..8], &[0xFF, 0xFF, 0x01, 0x09, 0xF6]);
        bytes.extend_from_slice(&extended);
        assert_eq!(
            parse_all(&bytes),
            [
                Ok(HostFrame::Ack),
                Ok(HostFrame::Nack),
                Ok(HostFrame::Command(data))
            ]
        );
    }

    #[test]
    fn rejects_and_resynchronises() {
        let good = encode(TFI_HOST, &[0x02]).unwrap();
        let mut bad_lcs = good.clone();
        bad_lcs[4] ^= 1;
        let mut bad_dcs = good.clone();
        bad_dcs[7] ^= 1;
        let wrong_tfi = encode(TFI_CHIP, &[0x03]).unwrap();
        let too_long = [0x00, 0x00, 0xFF, 0xFF, 0xFF, 0x01, 0x0A, 0xF5];
        let mut bytes = Vec::new();
        for part in [&bad_lcs[..], &bad_dcs, &wrong_tfi, &too_long, &good] {
            bytes.extend_from_slice(part);
        }
        let got = parse_all(&bytes);
        assert!(matches!(got[0], Err(FrameError::LengthChecksum { .. })));
        assert_eq!(got[1], Err(FrameError::DataChecksum));
        assert_eq!(got[2], Err(FrameError::WrongTfi { tfi: TFI_CHIP }));
        assert!(matches!(got[3], Err(FrameError::TooLong { len: 266, .. })));
        assert_eq!(got.last(), Some(&Ok(HostFrame::Command(vec![0x02]))));
    }

    #[test]
    fn answers_and_error_frame_shape() {
        assert_eq!(
            answer(0x02, &[0x32, 0x01, 0x06, 0x07]).unwrap(),
            [
                0x00, 0x00, 0xFF, 0x06, 0xFA, 0xD5, 0x03, 0x32, 0x01, 0x06, 0x07, 0xE8, 0x00
            ]
        );
        // The error frame is an ordinary frame of LEN 1 carrying TFI 7F.
        assert_eq!(encode(0x7F, &[]).unwrap(), ERROR_FRAME);
    }

    #[test]
    fn truncated_frame_waits() {
        let frame = encode(TFI_HOST, &[0x4A, 0x01, 0x00]).unwrap();
        let mut parser = FrameParser::new();
        parser.push(&frame[..frame.len() - 3]);
        assert_eq!(parser.next_frame(), None);
        assert!(parser.pending() > 0);
        parser.clear();
        assert_eq!(parser.pending(), 0);
    }
}
