//! The session layer: everything between "send this command" and the bytes on the wire that every
//! card application would otherwise write again.
//!
//! - Length form: extended Lc/Le when both the reader and the card allow it, short otherwise.
//! - Command chaining (ISO/IEC 7816-4:2005 §5.1.1.1, CLA bit 5) when the data does not fit one
//!   APDU and the card announced chaining.
//! - `61xx`: GET RESPONSE until the card has given everything (§5.1.3).
//! - `6Cxx`: the same command again with the exact Le the card asked for.
//! - Reading a whole transparent EF with the fewest READ BINARY commands the card allows
//!   (extended Le where possible; odd INS B1 for offsets beyond 32 767).
//!
//! The session never interprets a status word beyond these mechanics: what 6982 means after a
//! VERIFY is the card application's business. APDUs are logged (tracing, debug level) as header,
//! lengths and status word only, never their data.

use eid_protocols::apdu::{
    Command, EXTENDED_MAX_NE, LengthForm, Response, SHORT_MAX_NC, SHORT_MAX_NE,
};
use eid_protocols::atr::Atr;
use eid_protocols::commands::{self, FileReturn, Select};
use eid_protocols::fci::FileControl;
use eid_protocols::{Status, tlv};

use crate::{Error, Transport};

/// How many GET RESPONSE rounds a card may ask for before we call it a protocol violation.
const MAX_GET_RESPONSE_ROUNDS: usize = 1024;
/// The largest response (after GET RESPONSE accumulation) one command may produce.
const MAX_ACCUMULATED_RESPONSE: usize = 1 << 20;
/// The largest file [`Session::read_binary`] reads into memory (a passport face image is
/// around 20 to 100 KB; nothing on an ID card comes near this).
pub const MAX_FILE_SIZE: usize = 4 << 20;

/// Which APDU length forms the session may use.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum LengthPolicy {
    /// Extended when the reader carries it and the card announces it, short otherwise.
    #[default]
    Auto,
    /// Short APDUs only, whatever the card and reader say.
    ShortOnly,
    /// Extended whenever the reader carries it, even if the card does not announce it (for card
    /// applications that know their card supports it).
    PreferExtended,
}

/// What the session decided it can use, for logs and diagnostics.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct LinkParameters {
    pub extended_length: bool,
    pub command_chaining: bool,
    /// Largest Nc in one APDU.
    pub max_nc: usize,
    /// Largest Ne in one APDU.
    pub max_ne: usize,
}

/// An APDU session over a borrowed transport.
pub struct Session<'t> {
    transport: &'t mut dyn Transport,
    link: LinkParameters,
}

impl std::fmt::Debug for Session<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("reader", &self.transport.reader_name())
            .field("link", &self.link)
            .finish()
    }
}

impl<'t> Session<'t> {
    /// A session with [`LengthPolicy::Auto`].
    pub fn new(transport: &'t mut dyn Transport) -> Self {
        Self::with_policy(transport, LengthPolicy::Auto)
    }

    pub fn with_policy(transport: &'t mut dyn Transport, policy: LengthPolicy) -> Self {
        let link = negotiate(&*transport, policy);
        tracing::debug!(reader = transport.reader_name(), ?link, "session");
        Session { transport, link }
    }

    /// What this session will use on the wire.
    pub fn link(&self) -> LinkParameters {
        self.link
    }

    /// The transport underneath, for card applications that must reach it (reconnect after a
    /// reset, pinpad control).
    pub fn transport(&mut self) -> &mut dyn Transport {
        &mut *self.transport
    }

    /// Runs `f` inside one PC/SC transaction, with the same link parameters.
    pub fn in_transaction<R>(
        &mut self,
        f: impl FnOnce(&mut Session<'_>) -> Result<R, Error>,
    ) -> Result<R, Error> {
        let link = self.link;
        let mut tx = self.transport.transaction()?;
        let mut inner = Session {
            transport: &mut *tx,
            link,
        };
        f(&mut inner)
    }

    /// Sends one command and returns the card's complete answer: chaining, GET RESPONSE and
    /// 6Cxx are handled here. The status word is returned as the card gave it; nothing is
    /// treated as an error except transport failures and protocol violations.
    pub fn transmit(&mut self, command: &Command) -> Result<Response, Error> {
        let form = self.form_for(command);
        let ne = command.ne().map(|ne| ne.min(self.link.max_ne));
        let data = command.data();

        // Command chaining: all but the last part with CLA bit 5 set; each must answer 9000.
        let max_nc = self.link.max_nc;
        if data.len() > max_nc {
            if !self.link.command_chaining || command.cla() & 0x10 != 0 {
                return Err(Error::CommandTooLong { nc: data.len() });
            }
            let mut parts = data.chunks(max_nc).peekable();
            while let Some(part) = parts.next() {
                if parts.peek().is_some() {
                    let apdu = command.encode_with(form, command.cla() | 0x10, part, None)?;
                    let response = self.exchange(command, &apdu)?;
                    if !response.is_success() {
                        return Ok(response);
                    }
                } else {
                    return self.transmit_one(command, form, command.cla(), part, ne);
                }
            }
        }
        self.transmit_one(command, form, command.cla(), data, ne)
    }

    /// Like [`Session::transmit`], but any status other than 9000 becomes [`Error::Status`].
    pub fn transmit_ok(&mut self, command: &Command) -> Result<Vec<u8>, Error> {
        let response = self.transmit(command)?;
        if response.is_success() {
            Ok(response.into_data())
        } else {
            Err(Error::Status {
                command: command.header(),
                status: response.status(),
            })
        }
    }

    fn transmit_one(
        &mut self,
        command: &Command,
        form: LengthForm,
        cla: u8,
        data: &[u8],
        ne: Option<usize>,
    ) -> Result<Response, Error> {
        let apdu = command.encode_with(form, cla, data, ne)?;
        let mut response = self.exchange(command, &apdu)?;

        // 6Cxx: the card wants the exact Le; ask once more with it.
        if let Status::WrongLe(exact) = response.status() {
            let exact = if exact == 0 {
                SHORT_MAX_NE
            } else {
                usize::from(exact)
            };
            let apdu = command.encode_with(form, cla, data, Some(exact))?;
            response = self.exchange(command, &apdu)?;
            if matches!(response.status(), Status::WrongLe(_)) {
                return Err(Error::ProtocolViolation(
                    "card asked for a different Le twice",
                ));
            }
        }

        // 61xx: collect the rest with GET RESPONSE.
        if let Status::MoreAvailable(mut remaining) = response.status() {
            let mut data = response.into_data();
            let mut rounds = 0;
            loop {
                rounds += 1;
                if rounds > MAX_GET_RESPONSE_ROUNDS || data.len() > MAX_ACCUMULATED_RESPONSE {
                    return Err(Error::ProtocolViolation("endless GET RESPONSE"));
                }
                let want = if remaining == 0 {
                    SHORT_MAX_NE
                } else {
                    usize::from(remaining)
                };
                let get = commands::get_response(want);
                let apdu = get.encode(LengthForm::Short)?;
                let more = self.exchange(&get, &apdu)?;
                let status = more.status();
                data.extend_from_slice(more.data());
                match status {
                    Status::MoreAvailable(n) => remaining = n,
                    _ => {
                        response = Response::new(data, status);
                        break;
                    }
                }
            }
        }
        Ok(response)
    }

    /// One APDU on the wire, logged without its data.
    fn exchange(&mut self, command: &Command, apdu: &[u8]) -> Result<Response, Error> {
        let raw = self.transport.transmit(apdu);
        let response = match raw {
            Ok(bytes) => Response::from_vec(bytes).inspect_err(|e| {
                tracing::debug!(header = ?command.header(), len = apdu.len(), error = %e, "apdu");
            })?,
            Err(e) => {
                tracing::debug!(header = ?command.header(), len = apdu.len(), error = %e, "apdu");
                return Err(e);
            }
        };
        tracing::trace!(
            header = ?command.header(),
            len = apdu.len(),
            resp_len = response.data().len(),
            sw = format_args!("{:04X}", response.status().to_u16()),
            "apdu"
        );
        Ok(response)
    }

    fn form_for(&self, command: &Command) -> LengthForm {
        let wants_extended =
            command.nc() > SHORT_MAX_NC || command.ne().is_some_and(|ne| ne > SHORT_MAX_NE);
        if wants_extended && self.link.extended_length {
            LengthForm::Extended
        } else {
            LengthForm::Short
        }
    }

    /// SELECT, returning the file control information when asked for and given.
    ///
    /// 9000 with FCI → `Some`, 9000 without → `None`; any other status is [`Error::Status`].
    pub fn select(
        &mut self,
        target: Select<'_>,
        ret: FileReturn,
    ) -> Result<Option<FileControl>, Error> {
        let command = commands::select(target, ret);
        let data = self.transmit_ok(&command)?;
        if data.is_empty() || ret == FileReturn::None {
            return Ok(None);
        }
        FileControl::parse(&data).map(Some).map_err(|_| {
            Error::ProtocolViolation("SELECT answered malformed file control information")
        })
    }

    /// Selects an EF by path from the MF (asking for its FCP, to learn its size) and reads it.
    pub fn read_file(&mut self, path: &[u16]) -> Result<Vec<u8>, Error> {
        self.in_transaction(|s| {
            let fc = s.select(Select::PathFromMf(path), FileReturn::Fcp)?;
            s.read_binary(fc.and_then(|fc| fc.readable_size()))
        })
    }

    /// Reads the current transparent EF from offset 0. `size` is what the FCI said, if known;
    /// without it the file is read until the card signals its end.
    ///
    /// End of file is recognised as the card may signal it: fewer bytes than asked (with 9000 or
    /// 6282), or 6B00 for an offset at the end.
    pub fn read_binary(&mut self, size: Option<usize>) -> Result<Vec<u8>, Error> {
        if size.is_some_and(|s| s > MAX_FILE_SIZE) {
            return Err(Error::FileTooLarge {
                limit: MAX_FILE_SIZE,
            });
        }
        let mut out = Vec::with_capacity(size.unwrap_or(0));
        loop {
            let offset = out.len();
            let remaining = size.map(|s| s.saturating_sub(offset));
            if remaining == Some(0) {
                break;
            }
            let mut chunk = remaining.unwrap_or(usize::MAX).min(self.link.max_ne);
            let offset16 = u16::try_from(offset).ok().filter(|&o| o <= 0x7FFF);
            let (command, odd) = match offset16.and_then(|o| commands::read_binary(o, chunk)) {
                Some(c) => (c, false),
                None => {
                    let offset = u32::try_from(offset).map_err(|_| Error::FileTooLarge {
                        limit: MAX_FILE_SIZE,
                    })?;
                    // Ne counts the whole response data field, the 53 header included.
                    chunk = chunk.min(self.link.max_ne.saturating_sub(4)).max(1);
                    (
                        commands::read_binary_odd(offset, chunk + der_header_len(chunk)),
                        true,
                    )
                }
            };
            let response = self.transmit(&command)?;
            let status = response.status();
            let data = if odd {
                match tlv::parse_single(response.data()) {
                    Ok(obj) if obj.tag() == 0x53 => obj.value().to_vec(),
                    _ if response.data().is_empty() => Vec::new(),
                    _ => {
                        return Err(Error::ProtocolViolation(
                            "READ BINARY (B1) answer is not a 53 object",
                        ));
                    }
                }
            } else {
                response.into_data()
            };
            match status {
                Status::Success | Status::EndOfFile => {}
                // Offset at the end of a file of unknown size.
                Status::WrongP1P2 if size.is_none() && offset > 0 => break,
                status => {
                    return Err(Error::Status {
                        command: command.header(),
                        status,
                    });
                }
            }
            if data.len() > chunk {
                return Err(Error::ProtocolViolation(
                    "READ BINARY returned more than asked",
                ));
            }
            let short = data.len() < chunk;
            out.extend_from_slice(&data);
            if out.len() > MAX_FILE_SIZE {
                return Err(Error::FileTooLarge {
                    limit: MAX_FILE_SIZE,
                });
            }
            if data.is_empty() || status == Status::EndOfFile || (short && size.is_none()) {
                break;
            }
        }
        if let Some(size) = size.filter(|&s| s != out.len()) {
            tracing::debug!(
                expected = size,
                got = out.len(),
                "file shorter than its FCI says"
            );
            return Err(Error::ProtocolViolation("file shorter than its FCI says"));
        }
        Ok(out)
    }
}

/// Length of a DO 53 header (tag and definite length) around `n` value bytes.
fn der_header_len(n: usize) -> usize {
    match n {
        0..=0x7F => 2,
        0x80..=0xFF => 3,
        _ => 4,
    }
}

/// Decides the link parameters from the reader's capabilities, the card's ATR and the policy.
fn negotiate(transport: &dyn Transport, policy: LengthPolicy) -> LinkParameters {
    let caps = transport.capabilities();
    let card = Atr::parse(transport.atr())
        .ok()
        .and_then(|atr| atr.card_capabilities());
    let card_extended = card.is_some_and(|c| c.extended_length);
    let extended = caps.allows_extended()
        && match policy {
            LengthPolicy::Auto => card_extended,
            LengthPolicy::ShortOnly => false,
            LengthPolicy::PreferExtended => true,
        };
    // Without an ATR statement, assume chaining is available: cards that lack it answer 6884
    // or 6883, which reaches the caller as a status word.
    let chaining = card.is_none_or(|c| c.command_chaining);
    if extended {
        LinkParameters {
            extended_length: true,
            command_chaining: chaining,
            // Header (4) + Lc (3) + Le (2).
            max_nc: caps.max_command_len.saturating_sub(9).clamp(1, 65_535),
            max_ne: caps
                .max_response_len
                .saturating_sub(2)
                .clamp(1, EXTENDED_MAX_NE),
        }
    } else {
        LinkParameters {
            extended_length: false,
            command_chaining: chaining,
            max_nc: SHORT_MAX_NC,
            // Also bounded by what the transport can carry back (data + SW1-SW2): a
            // secure-messaging transport reports a smaller buffer, e.g. 223 bytes of data.
            max_ne: SHORT_MAX_NE
                .min(caps.max_response_len.saturating_sub(2))
                .max(1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ReaderCapabilities, Reborrow};
    use std::collections::VecDeque;

    /// An expected command and its canned answer.
    type Step = (Vec<u8>, Result<Vec<u8>, fn() -> Error>);

    /// A transport that expects exact command bytes and answers with canned responses.
    struct Script {
        atr: Vec<u8>,
        caps: ReaderCapabilities,
        steps: VecDeque<Step>,
    }

    impl Script {
        fn new(atr: &str, caps: ReaderCapabilities) -> Self {
            Script {
                atr: hex::decode(atr).unwrap(),
                caps,
                steps: VecDeque::new(),
            }
        }
        fn expect(mut self, command: &str, response: &str) -> Self {
            self.steps.push_back((
                hex::decode(command).unwrap(),
                Ok(hex::decode(response).unwrap()),
            ));
            self
        }
        fn expect_err(mut self, command: &str, error: fn() -> Error) -> Self {
            self.steps
                .push_back((hex::decode(command).unwrap(), Err(error)));
            self
        }
        fn done(&self) {
            assert!(self.steps.is_empty(), "unsent: {:?}", self.steps.len());
        }
    }

    impl Transport for Script {
        fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, Error> {
            let (expected, response) = self.steps.pop_front().expect("unexpected APDU");
            assert_eq!(hex::encode_upper(command), hex::encode_upper(expected));
            response.map_err(|f| f())
        }
        fn atr(&self) -> &[u8] {
            &self.atr
        }
        fn reader_name(&self) -> &str {
            "script"
        }
        fn capabilities(&self) -> ReaderCapabilities {
            self.caps
        }
        fn transaction(&mut self) -> Result<Box<dyn Transport + '_>, Error> {
            Ok(Box::new(Reborrow(self)))
        }
        fn reconnect(&mut self, _reset: bool) -> Result<(), Error> {
            Ok(())
        }
    }

    /// T=0, no historical capabilities.
    const ATR_T0: &str = "3B00";
    /// T=1 with card capabilities: chaining and extended length.
    const CAPS_EXTENDED: &str = "3B860180730021C000";
    /// T=1 with card capabilities: chaining only.
    const CAPS_CHAINING: &str = "3B8601807300218000";

    fn atr_with_tck(body: &str) -> String {
        let bytes = hex::decode(body).unwrap();
        let tck = bytes[1..].iter().fold(0u8, |a, b| a ^ b);
        format!("{body}{tck:02X}")
    }

    #[test]
    fn get_response_collects_everything_the_card_holds() {
        let mut t = Script::new(ATR_T0, ReaderCapabilities::SHORT_ONLY)
            .expect("00CA9F7F00", "0102036103")
            .expect("00C0000003", "0405069000");
        let mut s = Session::new(&mut t);
        let r = s.transmit(&commands::get_data(0x9F7F, 256)).unwrap();
        assert_eq!(r.data(), &[1, 2, 3, 4, 5, 6]);
        assert_eq!(r.status(), Status::Success);
        t.done();
    }

    #[test]
    fn wrong_le_is_reissued_once_with_the_exact_length() {
        let mut t = Script::new(ATR_T0, ReaderCapabilities::SHORT_ONLY)
            .expect("00CA9F7F00", "6C2D")
            .expect("00CA9F7F2D", &format!("{}9000", "AB".repeat(0x2D)));
        let mut s = Session::new(&mut t);
        let r = s.transmit(&commands::get_data(0x9F7F, 256)).unwrap();
        assert_eq!(r.data().len(), 0x2D);
        t.done();

        let mut t = Script::new(ATR_T0, ReaderCapabilities::SHORT_ONLY)
            .expect("00CA9F7F00", "6C2D")
            .expect("00CA9F7F2D", "6C2E");
        let err = Session::new(&mut t)
            .transmit(&commands::get_data(0x9F7F, 256))
            .unwrap_err();
        assert!(matches!(err, Error::ProtocolViolation(_)), "{err:?}");
    }

    #[test]
    fn endless_get_response_is_a_protocol_violation() {
        struct Endless;
        impl Transport for Endless {
            fn transmit(&mut self, _: &[u8]) -> Result<Vec<u8>, Error> {
                Ok(vec![0xAA, 0x61, 0x01])
            }
            fn atr(&self) -> &[u8] {
                &[0x3B, 0x00]
            }
            fn reader_name(&self) -> &str {
                "endless"
            }
            fn capabilities(&self) -> ReaderCapabilities {
                ReaderCapabilities::SHORT_ONLY
            }
            fn transaction(&mut self) -> Result<Box<dyn Transport + '_>, Error> {
                Ok(Box::new(Reborrow(self)))
            }
            fn reconnect(&mut self, _: bool) -> Result<(), Error> {
                Ok(())
            }
        }
        let err = Session::new(&mut Endless)
            .transmit(&commands::get_challenge(8))
            .unwrap_err();
        assert!(matches!(err, Error::ProtocolViolation(_)));
    }

    #[test]
    fn long_data_is_chained_when_extended_is_not_available() {
        let data = vec![0x5A; 300];
        let first = format!("10D60000FF{}", "5A".repeat(255));
        let last = format!("00D600002D{}", "5A".repeat(45));
        let mut t = Script::new(
            &atr_with_tck(CAPS_CHAINING),
            ReaderCapabilities::extended(65_544),
        )
        .expect(&first, "9000")
        .expect(&last, "9000");
        let mut s = Session::new(&mut t);
        assert!(!s.link().extended_length && s.link().command_chaining);
        let r = s
            .transmit(&commands::update_binary(0, &data).unwrap())
            .unwrap();
        assert!(r.is_success());
        t.done();
    }

    #[test]
    fn chaining_stops_at_the_first_refusal() {
        let first = format!("10D60000FF{}", "00".repeat(255));
        let mut t = Script::new(&atr_with_tck(CAPS_CHAINING), ReaderCapabilities::SHORT_ONLY)
            .expect(&first, "6884");
        let r = Session::new(&mut t)
            .transmit(&commands::update_binary(0, &[0; 300]).unwrap())
            .unwrap();
        assert_eq!(r.status(), Status::ChainingNotSupported);
        t.done();
    }

    #[test]
    fn extended_length_is_used_when_card_and_reader_allow() {
        let atr = atr_with_tck(CAPS_EXTENDED);
        let data = vec![1u8; 300];
        let expected = format!("00D6000000012C{}", "01".repeat(300));
        let mut t =
            Script::new(&atr, ReaderCapabilities::extended(65_544)).expect(&expected, "9000");
        let mut s = Session::new(&mut t);
        assert!(s.link().extended_length);
        s.transmit(&commands::update_binary(0, &data).unwrap())
            .unwrap();
        t.done();

        // The same card behind a short-only reader: chaining instead.
        let mut t = Script::new(&atr, ReaderCapabilities::SHORT_ONLY);
        assert!(!Session::new(&mut t).link().extended_length);
        // And the same card with a short-only policy.
        let mut t = Script::new(&atr, ReaderCapabilities::extended(65_544));
        assert!(
            !Session::with_policy(&mut t, LengthPolicy::ShortOnly)
                .link()
                .extended_length
        );
    }

    #[test]
    fn read_binary_with_fci_size_uses_one_extended_read() {
        let atr = atr_with_tck(CAPS_EXTENDED);
        let body = "42".repeat(1000);
        let mut t = Script::new(&atr, ReaderCapabilities::extended(65_544))
            .expect("00B000000003E8", &format!("{body}9000"));
        let data = Session::new(&mut t).read_binary(Some(1000)).unwrap();
        assert_eq!(data.len(), 1000);
        t.done();
    }

    #[test]
    fn read_binary_short_chunks_and_eof_signals() {
        // Unknown size, short APDUs: 256 + 256 + 10 with 6282.
        let mut t = Script::new(ATR_T0, ReaderCapabilities::SHORT_ONLY)
            .expect("00B0000000", &format!("{}9000", "11".repeat(256)))
            .expect("00B0010000", &format!("{}9000", "22".repeat(256)))
            .expect("00B0020000", &format!("{}6282", "33".repeat(10)));
        let data = Session::new(&mut t).read_binary(None).unwrap();
        assert_eq!(data.len(), 522);
        t.done();

        // Unknown size, exact multiple of 256: the card says 6B00 at the end.
        let mut t = Script::new(ATR_T0, ReaderCapabilities::SHORT_ONLY)
            .expect("00B0000000", &format!("{}9000", "11".repeat(256)))
            .expect("00B0010000", "6B00");
        assert_eq!(Session::new(&mut t).read_binary(None).unwrap().len(), 256);
        t.done();

        // Known size: the last read asks for exactly what is left.
        let mut t = Script::new(ATR_T0, ReaderCapabilities::SHORT_ONLY)
            .expect("00B0000000", &format!("{}9000", "11".repeat(256)))
            .expect("00B0010004", "111111119000");
        assert_eq!(
            Session::new(&mut t).read_binary(Some(260)).unwrap().len(),
            260
        );
        t.done();
    }

    #[test]
    fn read_binary_rejects_a_card_that_lies() {
        // More than asked.
        let mut t = Script::new(ATR_T0, ReaderCapabilities::SHORT_ONLY)
            .expect("00B0000004", "01020304059000");
        let err = Session::new(&mut t).read_binary(Some(4)).unwrap_err();
        assert!(matches!(err, Error::ProtocolViolation(_)));
        // Shorter than its FCI.
        let mut t =
            Script::new(ATR_T0, ReaderCapabilities::SHORT_ONLY).expect("00B0000008", "01026282");
        let err = Session::new(&mut t).read_binary(Some(8)).unwrap_err();
        assert!(matches!(err, Error::ProtocolViolation(_)));
        // Declared size beyond the limit: nothing is sent.
        let mut t = Script::new(ATR_T0, ReaderCapabilities::SHORT_ONLY);
        assert!(matches!(
            Session::new(&mut t).read_binary(Some(MAX_FILE_SIZE + 1)),
            Err(Error::FileTooLarge { .. })
        ));
    }

    #[test]
    fn read_binary_switches_to_odd_ins_past_32767() {
        let atr = atr_with_tck(CAPS_EXTENDED);
        let first = "AB".repeat(0x8000);
        let mut t = Script::new(&atr, ReaderCapabilities::extended(0x8000 + 2))
            .expect("00B00000008000", &format!("{first}9000"))
            // Offset 8000 in DO 54; Ne = 10 bytes of content + the 53 0A header = 0C.
            .expect(
                "00B1000004540280000C",
                &format!("530A{}9000", "CD".repeat(10)),
            );
        let data = Session::new(&mut t).read_binary(Some(0x8000 + 10)).unwrap();
        assert_eq!(data.len(), 0x8000 + 10);
        assert_eq!(&data[0x8000..], &[0xCD; 10]);
        t.done();
    }

    #[test]
    fn malformed_and_failed_responses_are_typed_errors() {
        // Empty, one byte, and one byte more than any command can be answered with.
        let oversized = "00".repeat(eid_protocols::apdu::MAX_RESPONSE_LEN + 1);
        for bad in ["", "90", oversized.as_str()] {
            let mut t =
                Script::new(ATR_T0, ReaderCapabilities::SHORT_ONLY).expect("0084000008", bad);
            let err = Session::new(&mut t)
                .transmit(&commands::get_challenge(8))
                .unwrap_err();
            assert!(
                matches!(err, Error::MalformedResponse(_)),
                "{} bytes: {err:?}",
                bad.len() / 2
            );
        }
        let mut t = Script::new(ATR_T0, ReaderCapabilities::SHORT_ONLY)
            .expect_err("0084000008", || Error::CardRemoved);
        let err = Session::new(&mut t)
            .transmit(&commands::get_challenge(8))
            .unwrap_err();
        assert!(matches!(err, Error::CardRemoved));
        assert!(err.is_retryable());
        assert_eq!(err.code(), "card-removed");
    }

    #[test]
    fn transmit_ok_turns_status_into_error() {
        let mut t =
            Script::new(ATR_T0, ReaderCapabilities::SHORT_ONLY).expect("00A4000C023F00", "6A82");
        let err = Session::new(&mut t)
            .select(Select::MasterFile, FileReturn::None)
            .unwrap_err();
        assert!(matches!(
            err,
            Error::Status {
                status: Status::FileNotFound,
                ..
            }
        ));
    }
}
