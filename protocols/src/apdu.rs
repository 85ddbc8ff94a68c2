//! Command and response APDUs, ISO/IEC 7816-4:2005 §5.1 (and ISO/IEC 7816-3 §12.1.3 for the
//! decoding of the four cases).
//!
//! A [`Command`] holds Nc data bytes and an optional Ne; the length form (short or extended) is
//! chosen when it is encoded, by whoever knows what the card and the reader accept (the session
//! layer in `eid-card`). Command data is kept in a zeroizing buffer because it may be a PIN, and
//! neither `Debug` nor `Display` ever prints it.

use std::fmt;

use thiserror::Error;
use zeroize::Zeroizing;

use crate::status::Status;

/// Largest Nc in a short APDU.
pub const SHORT_MAX_NC: usize = 255;
/// Largest Ne in a short APDU (Le = 00).
pub const SHORT_MAX_NE: usize = 256;
/// Largest Nc in an extended APDU.
pub const EXTENDED_MAX_NC: usize = 65_535;
/// Largest Ne in an extended APDU (Le = 0000).
pub const EXTENDED_MAX_NE: usize = 65_536;
/// Largest response APDU: Ne of an extended command plus SW1-SW2.
pub const MAX_RESPONSE_LEN: usize = EXTENDED_MAX_NE + 2;

/// Length fields of one byte (short) or three/two bytes (extended), ISO/IEC 7816-4 §5.1.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum LengthForm {
    /// Lc and Le of one byte: Nc ≤ 255, Ne ≤ 256.
    Short,
    /// Lc of three bytes and Le of two (or three): Nc ≤ 65 535, Ne ≤ 65 536.
    Extended,
}

/// The four command cases, ISO/IEC 7816-3 §12.1.2.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Case {
    /// No data, no response data expected.
    One,
    /// No data, response data expected.
    Two,
    /// Data, no response data expected.
    Three,
    /// Data and response data expected.
    Four,
}

/// What went wrong encoding or decoding an APDU. Whose fault: the caller's for encoding errors
/// (a bug), the peer's for decoding errors (a card, a reader or a terminal sent bad bytes).
#[derive(Clone, PartialEq, Eq, Debug, Error)]
#[non_exhaustive]
pub enum ApduError {
    /// The data field does not fit the chosen length form.
    #[error("command data of {nc} bytes does not fit a {form:?} APDU")]
    DataTooLong { nc: usize, form: LengthForm },
    /// The expected response length does not fit the chosen length form.
    #[error("expected length {ne} does not fit a {form:?} APDU")]
    ExpectedLengthTooLong { ne: usize, form: LengthForm },
    /// A command APDU shorter than its four-byte header.
    #[error("command APDU of {0} bytes is shorter than its header")]
    CommandTooShort(usize),
    /// The length fields of a command APDU do not match its size (ISO/IEC 7816-3 §12.1.3).
    #[error("command APDU of {0} bytes has inconsistent length fields")]
    InconsistentLength(usize),
    /// A response APDU without its two status bytes.
    #[error("response APDU of {0} bytes has no status word")]
    ResponseTooShort(usize),
    /// A response APDU longer than any command can ask for.
    #[error("response APDU of {0} bytes is longer than the 65 538 bytes any command allows")]
    ResponseTooLong(usize),
}

/// The four header bytes of a command.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Header {
    pub cla: u8,
    pub ins: u8,
    pub p1: u8,
    pub p2: u8,
}

impl fmt::Debug for Header {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:02X} {:02X} {:02X} {:02X}",
            self.cla, self.ins, self.p1, self.p2
        )
    }
}

/// A command APDU. Build one with the constructors in [`crate::commands`] or [`Command::new`].
///
/// Not `Clone`: a command may carry a PIN, and every copy would be one more place to wipe.
pub struct Command {
    header: Header,
    data: Zeroizing<Vec<u8>>,
    ne: Option<usize>,
    sensitive: bool,
}

impl Command {
    /// A case 1 command (header only).
    pub fn new(cla: u8, ins: u8, p1: u8, p2: u8) -> Self {
        Command {
            header: Header { cla, ins, p1, p2 },
            data: Zeroizing::new(Vec::new()),
            ne: None,
            sensitive: false,
        }
    }

    /// Sets the command data (Nc = `data.len()`). Nc is checked against the length form when the
    /// command is encoded.
    #[must_use]
    pub fn with_data(mut self, data: impl Into<Vec<u8>>) -> Self {
        self.data = Zeroizing::new(data.into());
        self
    }

    /// Sets the command data from a buffer that is already zeroizing (PINs and keys).
    #[must_use]
    pub fn with_secret_data(mut self, data: Zeroizing<Vec<u8>>) -> Self {
        self.data = data;
        self.sensitive = true;
        self
    }

    /// Sets Ne, the maximum number of response bytes expected. 0 means "no response data" (no Le
    /// field); values above 65 536 are clamped to 65 536.
    #[must_use]
    pub fn with_ne(mut self, ne: usize) -> Self {
        self.ne = (ne > 0).then_some(ne.min(EXTENDED_MAX_NE));
        self
    }

    /// Marks the data field as secret: it will never be logged, even when APDU tracing is on.
    #[must_use]
    pub fn sensitive(mut self) -> Self {
        self.sensitive = true;
        self
    }

    pub fn header(&self) -> Header {
        self.header
    }
    pub fn cla(&self) -> u8 {
        self.header.cla
    }
    pub fn ins(&self) -> u8 {
        self.header.ins
    }
    pub fn p1(&self) -> u8 {
        self.header.p1
    }
    pub fn p2(&self) -> u8 {
        self.header.p2
    }
    /// The data field. Callers that copy it out are responsible for wiping their copy.
    pub fn data(&self) -> &[u8] {
        &self.data
    }
    /// Nc, the number of data bytes.
    pub fn nc(&self) -> usize {
        self.data.len()
    }
    /// Ne, the maximum number of response data bytes expected, if any.
    pub fn ne(&self) -> Option<usize> {
        self.ne
    }
    /// Whether the data field carries a secret (PIN, PUK, key).
    pub fn is_sensitive(&self) -> bool {
        self.sensitive
    }

    pub fn case(&self) -> Case {
        match (self.data.is_empty(), self.ne.is_some()) {
            (true, false) => Case::One,
            (true, true) => Case::Two,
            (false, false) => Case::Three,
            (false, true) => Case::Four,
        }
    }

    /// Whether this command can only be sent in extended form (Nc > 255 or Ne > 256).
    pub fn needs_extended(&self) -> bool {
        self.nc() > SHORT_MAX_NC || self.ne.is_some_and(|ne| ne > SHORT_MAX_NE)
    }

    /// Encodes the command in the given length form.
    pub fn encode(&self, form: LengthForm) -> Result<Zeroizing<Vec<u8>>, ApduError> {
        self.encode_with(form, self.header.cla, &self.data, self.ne)
    }

    /// Encodes one part of a chain: this command's INS, P1, P2 with another CLA, data and Ne.
    /// Used by the session layer for command chaining (CLA bit 5) and by 6Cxx re-issue.
    pub fn encode_with(
        &self,
        form: LengthForm,
        cla: u8,
        data: &[u8],
        ne: Option<usize>,
    ) -> Result<Zeroizing<Vec<u8>>, ApduError> {
        let nc = data.len();
        let (max_nc, max_ne) = match form {
            LengthForm::Short => (SHORT_MAX_NC, SHORT_MAX_NE),
            LengthForm::Extended => (EXTENDED_MAX_NC, EXTENDED_MAX_NE),
        };
        if nc > max_nc {
            return Err(ApduError::DataTooLong { nc, form });
        }
        if let Some(ne) = ne.filter(|&ne| ne > max_ne || ne == 0) {
            return Err(ApduError::ExpectedLengthTooLong { ne, form });
        }
        // Sized up front: a reallocation would leave a copy of a PIN behind in freed memory.
        let mut out = Zeroizing::new(Vec::with_capacity(4 + 3 + nc + 3));
        out.extend_from_slice(&[cla, self.header.ins, self.header.p1, self.header.p2]);
        match form {
            LengthForm::Short => {
                if nc > 0 {
                    out.push(nc as u8);
                    out.extend_from_slice(data);
                }
                if let Some(ne) = ne {
                    // Ne = 256 is encoded as 00.
                    out.push((ne % 256) as u8);
                }
            }
            LengthForm::Extended => {
                if nc > 0 {
                    out.push(0);
                    out.extend_from_slice(&(nc as u16).to_be_bytes());
                    out.extend_from_slice(data);
                }
                if let Some(ne) = ne {
                    if nc == 0 {
                        out.push(0);
                    }
                    // Ne = 65 536 is encoded as 0000.
                    out.extend_from_slice(&((ne % 65_536) as u16).to_be_bytes());
                }
            }
        }
        Ok(out)
    }

    /// Decodes a command APDU (card side), ISO/IEC 7816-3 §12.1.3. Returns the command and the
    /// length form it was sent in (case 1 counts as short).
    pub fn parse(bytes: &[u8]) -> Result<(Command, LengthForm), ApduError> {
        let len = bytes.len();
        let (head, body) = match bytes.split_first_chunk::<4>() {
            Some((head, body)) => (head, body),
            None => return Err(ApduError::CommandTooShort(len)),
        };
        let [cla, ins, p1, p2] = *head;
        let command = Command::new(cla, ins, p1, p2);
        let inconsistent = ApduError::InconsistentLength(len);
        let (data, ne, form): (&[u8], Option<usize>, LengthForm) = match body {
            [] => (&[], None, LengthForm::Short),
            [le] => (&[], Some(short_ne(*le)), LengthForm::Short),
            [0, lc1, lc2, rest @ ..] => {
                let n = usize::from(u16::from_be_bytes([*lc1, *lc2]));
                match rest {
                    // Case 2E: 00 Le1 Le2.
                    [] => (&[], Some(extended_ne(n)), LengthForm::Extended),
                    _ if n == 0 => return Err(inconsistent),
                    // Case 3E: 00 Lc1 Lc2 data.
                    data if data.len() == n => (data, None, LengthForm::Extended),
                    // Case 4E: 00 Lc1 Lc2 data Le1 Le2.
                    data => match data.split_last_chunk::<2>() {
                        Some((data, le)) if data.len() == n => {
                            let ne = usize::from(u16::from_be_bytes(*le));
                            (data, Some(extended_ne(ne)), LengthForm::Extended)
                        }
                        _ => return Err(inconsistent),
                    },
                }
            }
            [lc, rest @ ..] if *lc != 0 => {
                let n = usize::from(*lc);
                match rest.len() {
                    // Case 3S.
                    l if l == n => (rest, None, LengthForm::Short),
                    // Case 4S.
                    l if l == n + 1 => {
                        let (data, le) = rest.split_at(n);
                        (data, le.first().map(|&le| short_ne(le)), LengthForm::Short)
                    }
                    _ => return Err(inconsistent),
                }
            }
            _ => return Err(inconsistent),
        };
        let command = command.with_data(data.to_vec());
        Ok((Command { ne, ..command }, form))
    }
}

fn short_ne(le: u8) -> usize {
    if le == 0 {
        SHORT_MAX_NE
    } else {
        usize::from(le)
    }
}

fn extended_ne(le: usize) -> usize {
    if le == 0 { EXTENDED_MAX_NE } else { le }
}

/// Shows header, Nc and Ne; never the data.
impl fmt::Debug for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Command({:?}", self.header)?;
        if !self.data.is_empty() {
            write!(f, " Nc={}", self.data.len())?;
            if self.sensitive {
                f.write_str(" <secret>")?;
            }
        }
        if let Some(ne) = self.ne {
            write!(f, " Ne={ne}")?;
        }
        f.write_str(")")
    }
}

/// A response APDU: data and status word.
#[derive(Clone, PartialEq, Eq)]
pub struct Response {
    data: Vec<u8>,
    status: Status,
}

impl Response {
    pub fn new(data: Vec<u8>, status: Status) -> Self {
        Response { data, status }
    }

    /// A bare status word, no data.
    pub fn status_only(status: Status) -> Self {
        Response {
            data: Vec::new(),
            status,
        }
    }

    /// Decodes `data || SW1 || SW2`. Fails on fewer than two bytes and on more than 65 538.
    pub fn parse(bytes: &[u8]) -> Result<Response, ApduError> {
        if bytes.len() > MAX_RESPONSE_LEN {
            return Err(ApduError::ResponseTooLong(bytes.len()));
        }
        match bytes.split_last_chunk::<2>() {
            Some((data, sw)) => Ok(Response {
                data: data.to_vec(),
                status: Status::from(*sw),
            }),
            None => Err(ApduError::ResponseTooShort(bytes.len())),
        }
    }

    /// Like [`Response::parse`], reusing the buffer.
    pub fn from_vec(mut bytes: Vec<u8>) -> Result<Response, ApduError> {
        if bytes.len() > MAX_RESPONSE_LEN {
            return Err(ApduError::ResponseTooLong(bytes.len()));
        }
        let len = bytes.len();
        match bytes.split_last_chunk::<2>() {
            Some((_, sw)) => {
                let status = Status::from(*sw);
                bytes.truncate(len - 2);
                Ok(Response {
                    data: bytes,
                    status,
                })
            }
            None => Err(ApduError::ResponseTooShort(len)),
        }
    }

    pub fn data(&self) -> &[u8] {
        &self.data
    }
    pub fn into_data(self) -> Vec<u8> {
        self.data
    }
    pub fn status(&self) -> Status {
        self.status
    }
    pub fn is_success(&self) -> bool {
        self.status.is_success()
    }

    /// Encodes `data || SW1 || SW2` (card side).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.data.len() + 2);
        out.extend_from_slice(&self.data);
        out.extend_from_slice(&self.status.to_bytes());
        out
    }
}

/// Shows the data length and the status word; never the data.
impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Response(len={} SW={:04X})",
            self.data.len(),
            self.status.to_u16()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn hex(bytes: &[u8]) -> String {
        hex::encode_upper(bytes)
    }

    #[test]
    fn encodes_all_four_cases_short() {
        let c1 = Command::new(0x00, 0x20, 0x00, 0x81);
        assert_eq!(c1.case(), Case::One);
        assert_eq!(hex(&c1.encode(LengthForm::Short).unwrap()), "00200081");
        let c2 = Command::new(0x00, 0xB0, 0x00, 0x00).with_ne(256);
        assert_eq!(hex(&c2.encode(LengthForm::Short).unwrap()), "00B0000000");
        let c3 = Command::new(0x00, 0xA4, 0x02, 0x0C).with_data(vec![0x01, 0x1E]);
        assert_eq!(
            hex(&c3.encode(LengthForm::Short).unwrap()),
            "00A4020C02011E"
        );
        let c4 = Command::new(0x00, 0xA4, 0x04, 0x00)
            .with_data(vec![0xA0])
            .with_ne(0x10);
        assert_eq!(
            hex(&c4.encode(LengthForm::Short).unwrap()),
            "00A4040001A010"
        );
    }

    #[test]
    fn encodes_all_four_cases_extended() {
        let c2 = Command::new(0x00, 0xB0, 0x00, 0x00).with_ne(65_536);
        assert_eq!(
            hex(&c2.encode(LengthForm::Extended).unwrap()),
            "00B00000000000"
        );
        let c2b = Command::new(0x00, 0xB0, 0x00, 0x00).with_ne(0x1234);
        assert_eq!(
            hex(&c2b.encode(LengthForm::Extended).unwrap()),
            "00B00000001234"
        );
        let c3 = Command::new(0x00, 0xD6, 0x00, 0x00).with_data(vec![0xAA; 300]);
        let e3 = c3.encode(LengthForm::Extended).unwrap();
        assert_eq!(hex(&e3[..7]), "00D6000000012C");
        assert_eq!(e3.len(), 7 + 300);
        let c4 = Command::new(0x00, 0x2A, 0x9E, 0x9A)
            .with_data(vec![1, 2])
            .with_ne(512);
        assert_eq!(
            hex(&c4.encode(LengthForm::Extended).unwrap()),
            "002A9E9A00000201020200"
        );
    }

    #[test]
    fn short_form_refuses_what_does_not_fit() {
        let too_much_data = Command::new(0, 0xD6, 0, 0).with_data(vec![0; 256]);
        assert_eq!(
            too_much_data.encode(LengthForm::Short).unwrap_err(),
            ApduError::DataTooLong {
                nc: 256,
                form: LengthForm::Short
            }
        );
        let too_much_ne = Command::new(0, 0xB0, 0, 0).with_ne(257);
        assert!(too_much_ne.needs_extended());
        assert!(too_much_ne.encode(LengthForm::Short).is_err());
        let fits = Command::new(0, 0xB0, 0, 0).with_ne(256);
        assert!(!fits.needs_extended());
    }

    #[test]
    fn parse_recognises_every_case() {
        let (c, f) = Command::parse(&hex::decode("00A4020C02011E").unwrap()).unwrap();
        assert_eq!(
            (c.case(), f, c.data(), c.ne()),
            (Case::Three, LengthForm::Short, &[1u8, 0x1E][..], None)
        );
        let (c, f) = Command::parse(&hex::decode("00B0000000").unwrap()).unwrap();
        assert_eq!(
            (c.case(), f, c.ne()),
            (Case::Two, LengthForm::Short, Some(256))
        );
        let (c, f) = Command::parse(&hex::decode("00B00000000000").unwrap()).unwrap();
        assert_eq!(
            (c.case(), f, c.ne()),
            (Case::Two, LengthForm::Extended, Some(65_536))
        );
        let (c, f) = Command::parse(&hex::decode("002A9E9A00000201020200").unwrap()).unwrap();
        assert_eq!(
            (c.case(), f, c.data(), c.ne()),
            (Case::Four, LengthForm::Extended, &[1u8, 2][..], Some(512))
        );
        let (c, _) = Command::parse(&[0, 0x20, 0, 0x81]).unwrap();
        assert_eq!(c.case(), Case::One);
    }

    #[test]
    fn parse_rejects_inconsistent_lengths() {
        for bad in [
            "00A4",
            "00A4020C03011E",
            "00A4020C02011E0000",
            "00B0000000000002AA",
            "00D600000000",
        ] {
            assert!(Command::parse(&hex::decode(bad).unwrap()).is_err(), "{bad}");
        }
    }

    #[test]
    fn response_parse_rejects_empty_one_byte_and_oversized() {
        assert_eq!(
            Response::parse(&[]).unwrap_err(),
            ApduError::ResponseTooShort(0)
        );
        assert_eq!(
            Response::parse(&[0x90]).unwrap_err(),
            ApduError::ResponseTooShort(1)
        );
        let huge = vec![0u8; MAX_RESPONSE_LEN + 1];
        assert_eq!(
            Response::parse(&huge).unwrap_err(),
            ApduError::ResponseTooLong(huge.len())
        );
        assert!(Response::from_vec(huge).is_err());
        let r = Response::parse(&[1, 2, 0x90, 0x00]).unwrap();
        assert_eq!((r.data(), r.status()), (&[1u8, 2][..], Status::Success));
    }

    #[test]
    fn debug_never_shows_data() {
        let pin = Command::new(0, 0x20, 0, 0x81)
            .with_data(b"1234\xFF\xFF\xFF\xFF".to_vec())
            .sensitive();
        let shown = format!("{pin:?}");
        assert_eq!(shown, "Command(00 20 00 81 Nc=8 <secret>)");
        let r = Response::new(b"secret".to_vec(), Status::Success);
        assert_eq!(format!("{r:?}"), "Response(len=6 SW=9000)");
    }

    proptest! {
        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = Command::parse(&bytes);
            let _ = Response::parse(&bytes);
        }

        #[test]
        fn encode_then_parse_round_trips(
            cla in any::<u8>(), ins in any::<u8>(), p1 in any::<u8>(), p2 in any::<u8>(),
            data in proptest::collection::vec(any::<u8>(), 0..400),
            ne in 0usize..70_000,
            extended in any::<bool>(),
        ) {
            let cmd = Command::new(cla, ins, p1, p2).with_data(data.clone()).with_ne(ne);
            let form = if extended { LengthForm::Extended } else { LengthForm::Short };
            match cmd.encode(form) {
                Ok(bytes) => {
                    let (back, back_form) = Command::parse(&bytes).unwrap();
                    prop_assert_eq!(back.header(), cmd.header());
                    prop_assert_eq!(back.data(), &data[..]);
                    prop_assert_eq!(back.ne(), cmd.ne());
                    if cmd.case() != Case::One {
                        prop_assert_eq!(back_form, form);
                    }
                }
                Err(_) => prop_assert!(form == LengthForm::Short && cmd.needs_extended()),
            }
        }
    }
}
