//! PIN entry on the reader's own keypad: PC/SC part 10 ("IFDs with Secure PIN Entry
//! Capabilities", v2.02), `FEATURE_VERIFY_PIN_DIRECT`.
//!
//! With a pinpad reader the PIN never reaches the computer: the host sends the reader a
//! `PIN_VERIFY_STRUCTURE` (how to format the PIN, and the VERIFY APDU with room for it) through
//! `SCardControl`, the reader asks the user, builds the APDU, sends it to the card and returns the
//! card's status word (or its own: `6400` timeout, `6401` cancelled on the keypad).
//!
//! Sans-IO: [`FeatureList::parse`] reads the answer to `CM_IOCTL_GET_FEATURE_REQUEST`,
//! [`VerifyPinDirect::encode`] builds the structure, [`VerifyAnswer::parse`] reads the answer.
//! [`verify_pin_direct_with`] runs the exchange through any `SCardControl`-like function (the
//! transport's hook).
//!
//! Every multi-byte field of the structure is little-endian (as CCID and the PC/SC reference
//! headers lay it out); the control codes in the feature list are big-endian (part 10 §2.2).

use eid_protocols::Status;
use eid_protocols::apdu::Header;

use crate::Error;
use crate::transport::{PinpadFeatures, Transport};

/// `SCARD_CTL_CODE(code)` as pcsc-lite (Linux, BSD) and macOS number control codes.
pub const fn pcsclite_ctl_code(code: u32) -> u32 {
    0x4200_0000 + code
}

/// `SCARD_CTL_CODE(code)` on Windows: `CTL_CODE(FILE_DEVICE_SMARTCARD, code, METHOD_BUFFERED,
/// FILE_ANY_ACCESS)`.
pub const fn windows_ctl_code(code: u32) -> u32 {
    (0x31 << 16) | (code << 2)
}

/// `SCARD_CTL_CODE(code)` on this platform.
pub const fn ctl_code(code: u32) -> u32 {
    if cfg!(windows) {
        windows_ctl_code(code)
    } else {
        pcsclite_ctl_code(code)
    }
}

/// `CM_IOCTL_GET_FEATURE_REQUEST` = `SCARD_CTL_CODE(3400)`: the reader's list of features.
pub const GET_FEATURE_REQUEST: u32 = ctl_code(3400);

/// Feature tags of the list (PC/SC part 10 §2.3).
pub mod feature {
    pub const VERIFY_PIN_START: u8 = 0x01;
    pub const VERIFY_PIN_FINISH: u8 = 0x02;
    pub const MODIFY_PIN_START: u8 = 0x03;
    pub const MODIFY_PIN_FINISH: u8 = 0x04;
    pub const GET_KEY_PRESSED: u8 = 0x05;
    pub const VERIFY_PIN_DIRECT: u8 = 0x06;
    pub const MODIFY_PIN_DIRECT: u8 = 0x07;
    pub const MCT_READER_DIRECT: u8 = 0x08;
    pub const MCT_UNIVERSAL: u8 = 0x09;
    pub const IFD_PIN_PROPERTIES: u8 = 0x0A;
    pub const ABORT: u8 = 0x0B;
    pub const SET_SPE_MESSAGE: u8 = 0x0C;
    pub const VERIFY_PIN_DIRECT_APP_ID: u8 = 0x0D;
    pub const MODIFY_PIN_DIRECT_APP_ID: u8 = 0x0E;
    pub const WRITE_DISPLAY: u8 = 0x0F;
    pub const GET_KEY: u8 = 0x10;
    pub const IFD_DISPLAY_PROPERTIES: u8 = 0x11;
    pub const GET_TLV_PROPERTIES: u8 = 0x12;
    pub const CCID_ESC_COMMAND: u8 = 0x13;
    pub const EXECUTE_PACE: u8 = 0x20;
}

/// Why a reader's feature list or pinpad answer was refused.
#[derive(thiserror::Error, Clone, PartialEq, Eq, Debug)]
pub enum PinpadError {
    #[error("feature list: entry at byte {0} is cut short")]
    Truncated(usize),
    #[error("feature list: tag {tag:#04X} has length {len}, not 4")]
    BadLength { tag: u8, len: u8 },
    #[error("feature list: tag {0:#04X} appears twice")]
    Duplicate(u8),
    #[error("feature list: tag 00 is not a feature")]
    ZeroTag,
    #[error("feature list longer than {MAX_FEATURE_LIST} bytes")]
    TooLong,
    #[error("pinpad answer of {0} bytes, expected the card's status word (2 bytes)")]
    BadAnswer(usize),
    #[error("invalid PIN verification parameters: {0}")]
    BadParameters(&'static str),
}

impl From<PinpadError> for Error {
    fn from(e: PinpadError) -> Error {
        match e {
            PinpadError::BadParameters(what) => Error::NotSupported(what),
            _ => Error::ProtocolViolation("the reader's pinpad answered against PC/SC part 10"),
        }
    }
}

/// The longest feature list accepted: every tag defined so far, with room to spare.
pub const MAX_FEATURE_LIST: usize = 6 * 64;

/// The reader's features: (tag, control code) in the reader's order, each tag once.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct FeatureList {
    entries: Vec<(u8, u32)>,
}

impl FeatureList {
    /// Parses the answer to [`GET_FEATURE_REQUEST`]: `tag (1) || length (1) = 4 || control
    /// code (4, big-endian)`, repeated. Unknown tags are kept; anything malformed is an error.
    /// An empty answer is an empty list (a reader without part 10 features).
    pub fn parse(bytes: &[u8]) -> Result<FeatureList, PinpadError> {
        if bytes.len() > MAX_FEATURE_LIST {
            return Err(PinpadError::TooLong);
        }
        let mut entries: Vec<(u8, u32)> = Vec::with_capacity(bytes.len() / 6);
        let mut rest = bytes;
        while !rest.is_empty() {
            let at = bytes.len() - rest.len();
            let Some((&[tag, len], after)) = rest.split_first_chunk::<2>() else {
                return Err(PinpadError::Truncated(at));
            };
            if len != 4 {
                return Err(PinpadError::BadLength { tag, len });
            }
            let Some((value, after)) = after.split_first_chunk::<4>() else {
                return Err(PinpadError::Truncated(at));
            };
            if tag == 0 {
                return Err(PinpadError::ZeroTag);
            }
            if entries.iter().any(|&(t, _)| t == tag) {
                return Err(PinpadError::Duplicate(tag));
            }
            entries.push((tag, u32::from_be_bytes(*value)));
            rest = after;
        }
        Ok(FeatureList { entries })
    }

    /// The control code of feature `tag`.
    pub fn get(&self, tag: u8) -> Option<u32> {
        self.entries
            .iter()
            .find(|&&(t, _)| t == tag)
            .map(|&(_, c)| c)
    }

    pub fn entries(&self) -> &[(u8, u32)] {
        &self.entries
    }

    /// The two features the transport reports in its capabilities.
    pub fn pinpad_features(&self) -> PinpadFeatures {
        PinpadFeatures {
            verify_pin_direct: self.get(feature::VERIFY_PIN_DIRECT),
            modify_pin_direct: self.get(feature::MODIFY_PIN_DIRECT),
        }
    }
}

/// How the reader writes the digits into the PIN block (`bmFormatString` bits 1-0).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum PinEncoding {
    /// One ASCII digit per byte (`'1'` = `31`), as the Citizen Card wants.
    Ascii,
    /// Two digits per byte.
    Bcd,
}

/// A `PIN_VERIFY_STRUCTURE` for `FEATURE_VERIFY_PIN_DIRECT` (PC/SC part 10 §2.5.2): a VERIFY
/// APDU whose PIN block the reader fills with the digits typed on its keypad.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct VerifyPinDirect {
    /// `bTimerOut`: seconds to wait for the first key (0: the reader's default).
    pub timeout_secs: u8,
    /// `bTimerOut2`: seconds to wait after a key (0: the reader's default).
    pub timeout_after_key_secs: u8,
    pub encoding: PinEncoding,
    /// The PIN block's size in bytes (1 to 15), pre-filled with `padding`.
    pub block_len: u8,
    pub padding: u8,
    pub min_digits: u8,
    pub max_digits: u8,
    /// `wLangId`, a USB language id for the reader's messages (0x0409: English, US).
    pub lang_id: u16,
    /// The VERIFY APDU's CLA, INS, P1, P2; Lc is the block length.
    pub header: [u8; 4],
}

impl VerifyPinDirect {
    /// The Portuguese Citizen Card: `00 20 00 <pin_ref>`, 4 to 8 ASCII digits padded with `FF` to
    /// 8 bytes (as `pteid::pin` sends a typed PIN).
    pub fn citizen_card(pin_ref: u8) -> VerifyPinDirect {
        VerifyPinDirect {
            timeout_secs: 30,
            timeout_after_key_secs: 30,
            encoding: PinEncoding::Ascii,
            block_len: 8,
            padding: 0xFF,
            min_digits: 4,
            max_digits: 8,
            lang_id: 0x0409,
            header: [0x00, 0x20, 0x00, pin_ref],
        }
    }

    /// The APDU sent inside the structure (the card sees it with the digits in place).
    pub fn apdu_header(&self) -> Header {
        let [cla, ins, p1, p2] = self.header;
        Header { cla, ins, p1, p2 }
    }

    /// The structure's bytes:
    ///
    /// | bytes | field | value |
    /// |---|---|---|
    /// | 0 | bTimerOut | `timeout_secs` |
    /// | 1 | bTimerOut2 | `timeout_after_key_secs` |
    /// | 2 | bmFormatString | `80` (units: bytes) \| position 0 << 3 \| left-justified \| encoding (`02` ASCII, `01` BCD) |
    /// | 3 | bmPINBlockString | no length field (`0` << 4) \| `block_len` |
    /// | 4 | bmPINLengthFormat | `00` (no PIN length in the APDU) |
    /// | 5-6 | wPINMaxExtraDigit | max digits, min digits (little-endian `min << 8 \| max`) |
    /// | 7 | bEntryValidationCondition | `02`: the validation key |
    /// | 8 | bNumberMessage | `01`: one message ("Enter PIN") |
    /// | 9-10 | wLangId | little-endian |
    /// | 11 | bMsgIndex | `00` |
    /// | 12-14 | bTeoPrologue | `00 00 00` |
    /// | 15-18 | ulDataLength | APDU length, little-endian |
    /// | 19- | abData | CLA INS P1 P2 Lc, then `block_len` padding bytes |
    pub fn encode(&self) -> Result<Vec<u8>, PinpadError> {
        if !(1..=15).contains(&self.block_len) {
            return Err(PinpadError::BadParameters(
                "the PIN block has 1 to 15 bytes",
            ));
        }
        let capacity = match self.encoding {
            PinEncoding::Ascii => self.block_len,
            PinEncoding::Bcd => self.block_len.saturating_mul(2),
        };
        if self.min_digits == 0 || self.min_digits > self.max_digits {
            return Err(PinpadError::BadParameters(
                "the minimum PIN length is 1 to the maximum",
            ));
        }
        if self.max_digits > capacity {
            return Err(PinpadError::BadParameters(
                "the PIN block cannot hold the longest PIN",
            ));
        }
        let format = 0x80
            | match self.encoding {
                PinEncoding::Ascii => 0x02,
                PinEncoding::Bcd => 0x01,
            };
        let apdu_len = 5 + usize::from(self.block_len);
        let mut out = Vec::with_capacity(19 + apdu_len);
        out.extend_from_slice(&[
            self.timeout_secs,
            self.timeout_after_key_secs,
            format,
            self.block_len,
            0x00,
            self.max_digits,
            self.min_digits,
            0x02,
            0x01,
        ]);
        out.extend_from_slice(&self.lang_id.to_le_bytes());
        out.extend_from_slice(&[0x00, 0x00, 0x00, 0x00]);
        out.extend_from_slice(&(apdu_len as u32).to_le_bytes());
        out.extend_from_slice(&self.header);
        out.push(self.block_len);
        out.resize(out.len() + usize::from(self.block_len), self.padding);
        Ok(out)
    }
}

/// What the reader answered to a `FEATURE_VERIFY_PIN_DIRECT`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum VerifyAnswer {
    /// The card said 9000.
    Verified,
    /// The card said 63Cx: wrong PIN, `x` tries left.
    WrongPin { retries_left: u8 },
    /// The card said 6983, 6984 or 63C0.
    Blocked,
    /// 6400: nobody typed in time.
    Timeout,
    /// 6401: Cancel pressed on the keypad.
    Cancelled,
    /// 6403: the PIN typed was shorter or longer than allowed (the card never saw it).
    LengthOutOfRange,
    /// 6B80: the reader refused the structure.
    ReaderRefused,
    /// Any other status word, from the card or the reader.
    Other(Status),
}

impl VerifyAnswer {
    /// Parses the reader's answer: exactly the card's (or the reader's) SW1 SW2.
    pub fn parse(answer: &[u8]) -> Result<VerifyAnswer, PinpadError> {
        let &[sw1, sw2] = answer else {
            return Err(PinpadError::BadAnswer(answer.len()));
        };
        Ok(match [sw1, sw2] {
            [0x64, 0x00] => VerifyAnswer::Timeout,
            [0x64, 0x01] => VerifyAnswer::Cancelled,
            [0x64, 0x03] => VerifyAnswer::LengthOutOfRange,
            [0x6B, 0x80] => VerifyAnswer::ReaderRefused,
            sw => match Status::from(sw) {
                Status::Success => VerifyAnswer::Verified,
                Status::RemainingRetries(0)
                | Status::AuthenticationBlocked
                | Status::ReferenceDataNotUsable => VerifyAnswer::Blocked,
                Status::RemainingRetries(n) => VerifyAnswer::WrongPin { retries_left: n },
                status => VerifyAnswer::Other(status),
            },
        })
    }

    /// As the card layer reports PIN results (what `pteid::pin` returns for a typed PIN).
    pub fn into_result(self, command: Header) -> Result<(), Error> {
        match self {
            VerifyAnswer::Verified => Ok(()),
            VerifyAnswer::WrongPin { retries_left } => Err(Error::WrongPin { retries_left }),
            VerifyAnswer::Blocked => Err(Error::PinBlocked),
            VerifyAnswer::Timeout => Err(Error::Timeout),
            VerifyAnswer::Cancelled => Err(Error::Cancelled),
            VerifyAnswer::LengthOutOfRange => Err(Error::InvalidPinFormat(
                "the PIN typed on the reader is too short or too long",
            )),
            VerifyAnswer::ReaderRefused => Err(Error::NotSupported(
                "this reader's pinpad refused the PIN verification parameters",
            )),
            VerifyAnswer::Other(status) => Err(Error::Status { command, status }),
        }
    }
}

/// Verifies a PIN on the reader's keypad. `features` are the reader's (from its capabilities);
/// `control` is `SCardControl(code, input) -> output` on the connection (the transport's hook).
/// Blocks until the user is done, the reader's timeout passes, or Cancel is pressed.
pub fn verify_pin_direct_with(
    features: PinpadFeatures,
    request: &VerifyPinDirect,
    control: impl FnOnce(u32, &[u8]) -> Result<Vec<u8>, Error>,
) -> Result<(), Error> {
    let Some(code) = features.verify_pin_direct else {
        return Err(Error::NotSupported("PIN entry on the reader"));
    };
    let structure = request.encode()?;
    let answer = control(code, &structure)?;
    VerifyAnswer::parse(&answer)?.into_result(request.apdu_header())
}

/// [`verify_pin_direct_with`] through `transport`'s reader (its capabilities and
/// [`Transport::control`]). Call it inside a transaction, after selecting the PIN's application.
pub fn verify_pin_direct(
    transport: &mut dyn Transport,
    request: &VerifyPinDirect,
) -> Result<(), Error> {
    let features = transport.capabilities().pinpad;
    verify_pin_direct_with(features, request, |code, input| {
        transport.control(code, input)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_codes() {
        assert_eq!(pcsclite_ctl_code(3400), 0x4200_0D48);
        assert_eq!(windows_ctl_code(3400), 0x0031_3520);
        if cfg!(not(windows)) {
            assert_eq!(GET_FEATURE_REQUEST, 0x4200_0D48);
        }
    }
}
