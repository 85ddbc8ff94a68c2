//! A [`Transport`] that speaks secure messaging (ICAO Doc 9303-11 §9.8, ISO/IEC 7816-4 §10): every
//! command handed to it is protected before it reaches the card and every answer is verified and
//! decrypted before it leaves, so a card application written for plain APDUs (the session layer,
//! the Citizen Card application) runs unchanged over a PACE, BAC or Chip Authentication channel.
//!
//! - The cryptography is the sans-IO channel of `eid_protocols::sm` behind the small
//!   [`SmChannel`] trait; this module only moves bytes and keeps the rules:
//! - a response that does not verify (wrong MAC, missing objects, bad padding) or an SM error the
//!   card reports (6987 / 6988) is [`Error::SecureMessaging`] and closes the channel: every later
//!   command fails with [`Error::SecureChannelClosed`] without reaching the card, since the send
//!   sequence counters can no longer be trusted to agree;
//! - a reconnect (card reset) closes it too, the card having forgotten the keys;
//! - [`SecureTransport::replace_channel`] installs new keys (after Chip Authentication,
//!   ICAO 9303-11 §6.2.3.2: new KSenc / KSmac, SSC = 0);
//! - [`Transport::capabilities`] reports what fits once the SM overhead is paid: 223 bytes of
//!   plain response data in a short AES response (231 with 3DES), or the reader's extended buffer
//!   less the overhead when the chip accepts extended length;
//! - transactions pass through to the transport underneath.

use eid_protocols::apdu::{SHORT_MAX_NC, SHORT_MAX_NE};
use eid_protocols::sm::{SecureChannel, SmError};
use eid_protocols::{Command, LengthForm, Response};
use zeroize::Zeroizing;

use crate::{Error, ReaderCapabilities, Transport};

/// Why secure messaging failed. Whose fault: the card's (or someone between us and the card).
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SmFailure {
    /// The response's cryptographic checksum (DO 8E) did not verify.
    #[error("the card's answer failed its MAC check")]
    BadMac,
    /// The response lacks a mandatory data object (DO 99 or DO 8E), or they are malformed.
    #[error("the card's answer is not a valid secure-messaging response")]
    MalformedResponse,
    /// The decrypted response data has no valid ISO/IEC 9797-1 method 2 padding.
    #[error("the card's encrypted answer has invalid padding")]
    BadPadding,
    /// The card reported a secure-messaging error (6987: SM objects missing, 6988: SM objects
    /// incorrect) and has closed its side of the channel.
    #[error("the card rejected our secure messaging (status {0:04X})")]
    RejectedByCard(u16),
    /// The card answered without secure messaging (its status word is not authenticated).
    #[error("the card answered without secure messaging (status {0:04X})")]
    Unprotected(u16),
    /// A cryptographic primitive failed (OpenSSL).
    #[error("a cryptographic operation failed")]
    Crypto,
    /// The command cannot be protected (proprietary class, or too long for the length form).
    #[error("the command cannot be protected")]
    Unprotectable,
}

impl From<&SmError> for SmFailure {
    fn from(e: &SmError) -> Self {
        match e {
            SmError::MacMismatch => SmFailure::BadMac,
            SmError::BadPadding | SmError::BadPaddingIndicator(_) => SmFailure::BadPadding,
            SmError::ChipRejected(sw) => SmFailure::RejectedByCard(sw.to_u16()),
            SmError::Unprotected(sw) => SmFailure::Unprotected(sw.to_u16()),
            SmError::Crypto(_) | SmError::BadSsc(_) => SmFailure::Crypto,
            SmError::Apdu(_) | SmError::UnsupportedClass(_) => SmFailure::Unprotectable,
            _ => SmFailure::MalformedResponse,
        }
    }
}

/// The terminal channel of `eid_protocols::sm` (3DES or AES, ICAO 9303-11 §9.8.6).
impl SmChannel for SecureChannel {
    fn protect(
        &mut self,
        command: &Command,
        form: LengthForm,
    ) -> Result<Zeroizing<Vec<u8>>, SmFailure> {
        let protected = self
            .wrap_in(command, form)
            .map_err(|e| SmFailure::from(&e))?;
        protected.encode(form).map_err(|_| SmFailure::Unprotectable)
    }

    fn unprotect(&mut self, response: &Response) -> Result<Response, SmFailure> {
        self.unwrap(response).map_err(|e| SmFailure::from(&e))
    }

    fn block_size(&self) -> usize {
        self.cipher().block_len()
    }
}

/// What [`SecureTransport`] needs from a secure-messaging session (ICAO 9303-11 §9.8): protect a
/// command, verify and decrypt a response, and the cipher's block size for the overhead.
///
/// Implemented for the channel of `eid_protocols::sm`; tests may implement it with anything.
pub trait SmChannel: Send {
    /// Protects one (plain) command for the wire in the given length form: CLA with bits 3-4
    /// set, DO 87/85 (encrypted data), DO 97 (Le), DO 8E (MAC), Le 00 / 0000.
    fn protect(
        &mut self,
        command: &Command,
        form: LengthForm,
    ) -> Result<Zeroizing<Vec<u8>>, SmFailure>;

    /// Verifies and decrypts one protected response (data || SW1 SW2 as received).
    fn unprotect(&mut self, response: &Response) -> Result<Response, SmFailure>;

    /// The cipher block size (8 for 3DES, 16 for AES): encrypted data is padded to it.
    fn block_size(&self) -> usize;
}

/// Why the channel is closed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub enum ClosedReason {
    /// An earlier answer failed verification (see [`SmFailure`]).
    Failed(SmFailure),
    /// The card was reset or reconnected: it no longer holds the session keys.
    Reconnected,
    /// A transport failure (card removed, reader gone) happened mid-exchange.
    TransportFailed,
}

impl std::fmt::Display for ClosedReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClosedReason::Failed(e) => write!(f, "after a failure: {e}"),
            ClosedReason::Reconnected => f.write_str("the card was reset"),
            ClosedReason::TransportFailed => f.write_str("the connection to the card failed"),
        }
    }
}

/// Secure-messaging state shared by a [`SecureTransport`] and its transaction handles.
struct ChannelState {
    channel: Box<dyn SmChannel>,
    closed: Option<ClosedReason>,
    /// Whether the chip accepts extended-length APDUs (the caller knows: ATR, EF.ATR/INFO).
    chip_extended: bool,
    /// Protected APDUs exchanged so far (for benchmarks and diagnostics).
    apdus: u64,
}

/// How many GET RESPONSE rounds the wire may need before it is a protocol violation.
const MAX_GET_RESPONSE_ROUNDS: usize = 300;

/// Fixed secure-messaging overhead in a response around `p` bytes of padded cryptogram:
/// DO 87 tag, length field and padding-indicator byte; DO 99 (4); DO 8E (10); SW (2).
fn response_overhead(p: usize) -> usize {
    1 + der_len_len(p + 1) + 1 + 4 + 10 + 2
}

/// Overhead in a command around `p` bytes of padded cryptogram: DO 87, DO 97 (3 or 4), DO 8E.
fn command_overhead(p: usize, extended: bool) -> usize {
    let do87 = if p == 0 {
        0
    } else {
        1 + der_len_len(p + 1) + 1
    };
    do87 + if extended { 4 } else { 3 } + 10
}

/// Bytes of a DER length field for a value of `n` bytes.
fn der_len_len(n: usize) -> usize {
    match n {
        0..=0x7F => 1,
        0x80..=0xFF => 2,
        _ => 3,
    }
}

/// The largest plain length whose padded cryptogram, with `overhead(p)`, fits in `room`.
fn max_plain(room: usize, block: usize, overhead: impl Fn(usize) -> usize) -> usize {
    let block = block.max(1);
    let mut p = room / block * block;
    while p >= block {
        if p + overhead(p) <= room {
            // Padding always adds at least one byte.
            return p - 1;
        }
        p -= block;
    }
    0
}

impl ChannelState {
    fn ensure_open(&self) -> Result<(), Error> {
        match self.closed {
            Some(reason) => Err(Error::SecureChannelClosed(reason)),
            None => Ok(()),
        }
    }

    fn fail(&mut self, failure: SmFailure) -> Error {
        self.closed = Some(ClosedReason::Failed(failure));
        tracing::warn!(%failure, "secure messaging failed; channel closed");
        Error::SecureMessaging(failure)
    }

    fn wire_extended(&self, inner: &ReaderCapabilities) -> bool {
        self.chip_extended && inner.allows_extended()
    }

    /// Largest plain Ne whose protected answer fits what the wire carries.
    fn max_plain_ne(&self, inner: &ReaderCapabilities) -> usize {
        let block = self.channel.block_size();
        if self.wire_extended(inner) {
            let room = inner.max_response_len.min(65_536 + 2);
            max_plain(room, block, response_overhead)
        } else {
            // A short answer, and no more than the reader carries back (a PN53x: 263 bytes).
            let room = (SHORT_MAX_NE + 2).min(inner.max_response_len);
            max_plain(room, block, response_overhead)
        }
    }

    /// Largest plain Nc whose protected command fits one APDU.
    fn max_plain_nc(&self, inner: &ReaderCapabilities) -> usize {
        let block = self.channel.block_size();
        if self.wire_extended(inner) {
            // Header (4) + Lc (3) + Le (2) around the protected data.
            let room = inner.max_command_len.saturating_sub(9).min(65_535);
            max_plain(room, block, |p| command_overhead(p, true))
        } else {
            // Header (4) + Lc (1) + Le (1) around the protected data.
            let room = SHORT_MAX_NC.min(inner.max_command_len.saturating_sub(6));
            max_plain(room, block, |p| command_overhead(p, false))
        }
    }

    fn capabilities(&self, inner: ReaderCapabilities) -> ReaderCapabilities {
        let nc = self.max_plain_nc(&inner);
        let ne = self.max_plain_ne(&inner);
        ReaderCapabilities {
            // A plain extended header is 4 + 3 + Nc + 2; a short one 4 + 1 + Nc + 1.
            max_command_len: if self.wire_extended(&inner) {
                nc + 9
            } else {
                nc + 6
            },
            max_response_len: ne + 2,
            ..inner
        }
    }

    /// One plain command through the channel.
    fn transmit(&mut self, inner: &mut dyn Transport, apdu: &[u8]) -> Result<Vec<u8>, Error> {
        self.ensure_open()?;
        let caps = inner.capabilities();
        let (command, _) = Command::parse(apdu).map_err(|_| {
            Error::ProtocolViolation("a malformed command APDU was handed to secure messaging")
        })?;
        let block = self.channel.block_size();
        let short_ne = max_plain(
            (SHORT_MAX_NE + 2).min(caps.max_response_len),
            block,
            response_overhead,
        );
        let short_nc = max_plain(
            SHORT_MAX_NC.min(caps.max_command_len.saturating_sub(6)),
            block,
            |p| command_overhead(p, false),
        );
        // An answer that cannot fit a short protected response (an RSA-2048 Active
        // Authentication signature: 256 bytes) needs extended length on the wire, which ICAO
        // 9303-11 §9.8.5 requires of chips with such keys: used when the reader carries it,
        // even if the chip did not announce it.
        let escalate = !self.wire_extended(&caps)
            && caps.allows_extended()
            && command.ne().is_some_and(|ne| ne > short_ne);
        let extended = self.wire_extended(&caps) || escalate;
        let (max_ne, max_nc) = if escalate {
            let room = caps.max_response_len.min(65_536 + 2);
            (max_plain(room, block, response_overhead), short_nc)
        } else {
            (self.max_plain_ne(&caps), self.max_plain_nc(&caps))
        };
        if command.nc() > max_nc {
            return Err(Error::CommandTooLong { nc: command.nc() });
        }
        // Ask for no more than a protected answer can carry: the caller sees a shorter answer
        // (READ BINARY readers continue at the next offset), never an unreadable one.
        let command = match command.ne() {
            Some(ne) if ne > max_ne => {
                let header = command.header();
                let clamped = Command::new(header.cla, header.ins, header.p1, header.p2);
                let clamped = if command.nc() == 0 {
                    clamped
                } else {
                    clamped.with_secret_data(Zeroizing::new(command.data().to_vec()))
                };
                clamped.with_ne(max_ne)
            }
            _ => command,
        };
        let form = if extended
            && (command.nc() > short_nc || command.ne().is_some_and(|ne| ne > short_ne))
        {
            LengthForm::Extended
        } else {
            LengthForm::Short
        };
        let wire = self.channel.protect(&command, form).map_err(|e| {
            // Nothing was sent: the counters still agree, but a refused protection means a bug
            // or an exhausted counter; either way stop here.
            self.fail(e)
        })?;
        self.apdus = self.apdus.saturating_add(1);
        let raw = match exchange_collecting(inner, &wire) {
            Ok(raw) => raw,
            Err(e) => {
                self.closed = Some(ClosedReason::TransportFailed);
                return Err(e);
            }
        };
        // An answer too short to carry a status word is as unverifiable as a bad MAC: the
        // chip has moved its counter on, so the channel is over.
        let response =
            Response::from_vec(raw).map_err(|_| self.fail(SmFailure::MalformedResponse))?;
        let sw = response.status().to_u16();
        if response.data().is_empty() && (sw == 0x6987 || sw == 0x6988) {
            return Err(self.fail(SmFailure::RejectedByCard(sw)));
        }
        match self.channel.unprotect(&response) {
            Ok(plain) => Ok(plain.to_bytes()),
            Err(e) => Err(self.fail(e)),
        }
    }
}

/// Sends one wire APDU; a `61xx` answer (T=0 readers) is completed with plain GET RESPONSE,
/// which ISO/IEC 7816-4 §10 leaves unprotected.
fn exchange_collecting(inner: &mut dyn Transport, wire: &[u8]) -> Result<Vec<u8>, Error> {
    let mut raw = inner.transmit(wire)?;
    let mut rounds = 0;
    loop {
        let Some((data, [0x61, remaining])) = raw.split_last_chunk::<2>().map(|(d, s)| (d, *s))
        else {
            return Ok(raw);
        };
        rounds += 1;
        if rounds > MAX_GET_RESPONSE_ROUNDS {
            return Err(Error::ProtocolViolation("endless GET RESPONSE"));
        }
        let mut collected = data.to_vec();
        let get = [0x00, 0xC0, 0x00, 0x00, remaining];
        let more = inner.transmit(&get)?;
        collected.extend_from_slice(&more);
        raw = collected;
    }
}

/// A transport whose every APDU goes through a secure-messaging channel.
///
/// `T` is the transport underneath: an owned transport, or [`crate::Reborrow`] over a borrowed
/// one.
pub struct SecureTransport<T: Transport> {
    inner: T,
    state: ChannelState,
}

impl<T: Transport> std::fmt::Debug for SecureTransport<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the keys or counters.
        f.debug_struct("SecureTransport")
            .field("reader", &self.inner.reader_name())
            .field("closed", &self.state.closed)
            .field("chip_extended", &self.state.chip_extended)
            .finish_non_exhaustive()
    }
}

impl<T: Transport> SecureTransport<T> {
    /// Wraps `inner` with an established channel (after PACE or BAC). `chip_extended`: whether
    /// the chip accepts extended-length APDUs (then large answers come in one protected APDU).
    pub fn new(inner: T, channel: Box<dyn SmChannel>, chip_extended: bool) -> Self {
        SecureTransport {
            inner,
            state: ChannelState {
                channel,
                closed: None,
                chip_extended,
                apdus: 0,
            },
        }
    }

    /// Installs new session keys (after Chip Authentication, ICAO 9303-11 §6.2). Refused on a
    /// closed channel: keys agreed over a broken channel are not to be trusted.
    pub fn replace_channel(&mut self, channel: Box<dyn SmChannel>) -> Result<(), Error> {
        self.state.ensure_open()?;
        self.state.channel = channel;
        Ok(())
    }

    /// Whether the channel can still carry commands.
    pub fn is_open(&self) -> bool {
        self.state.closed.is_none()
    }

    /// Why the channel is closed, if it is.
    pub fn closed_reason(&self) -> Option<ClosedReason> {
        self.state.closed
    }

    /// Whether protected APDUs may use extended length.
    pub fn chip_extended(&self) -> bool {
        self.state.chip_extended
    }

    /// Protected APDUs exchanged so far.
    pub fn apdu_count(&self) -> u64 {
        self.state.apdus
    }

    /// The transport underneath (for plain APDUs, which the chip would take as the end of
    /// secure messaging: use with care).
    pub fn inner_mut(&mut self) -> &mut T {
        &mut self.inner
    }

    /// Gives the transport underneath back.
    pub fn into_inner(self) -> T {
        self.inner
    }
}

impl<T: Transport> Transport for SecureTransport<T> {
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, Error> {
        self.state.transmit(&mut self.inner, command)
    }
    fn atr(&self) -> &[u8] {
        self.inner.atr()
    }
    fn reader_name(&self) -> &str {
        self.inner.reader_name()
    }
    fn capabilities(&self) -> ReaderCapabilities {
        self.state.capabilities(self.inner.capabilities())
    }
    fn transaction(&mut self) -> Result<Box<dyn Transport + '_>, Error> {
        let inner = self.inner.transaction()?;
        Ok(Box::new(SecureTransaction {
            inner,
            state: &mut self.state,
        }))
    }
    fn reconnect(&mut self, reset: bool) -> Result<(), Error> {
        self.state.closed = Some(ClosedReason::Reconnected);
        self.inner.reconnect(reset)
    }
}

/// A transaction on a [`SecureTransport`]: the same channel over the inner transaction.
struct SecureTransaction<'a> {
    inner: Box<dyn Transport + 'a>,
    state: &'a mut ChannelState,
}

impl Transport for SecureTransaction<'_> {
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, Error> {
        self.state.transmit(&mut *self.inner, command)
    }
    fn atr(&self) -> &[u8] {
        self.inner.atr()
    }
    fn reader_name(&self) -> &str {
        self.inner.reader_name()
    }
    fn capabilities(&self) -> ReaderCapabilities {
        self.state.capabilities(self.inner.capabilities())
    }
    fn transaction(&mut self) -> Result<Box<dyn Transport + '_>, Error> {
        Ok(Box::new(SecureTransaction {
            inner: Box::new(crate::Reborrow(&mut *self.inner)),
            state: &mut *self.state,
        }))
    }
    fn reconnect(&mut self, reset: bool) -> Result<(), Error> {
        self.state.closed = Some(ClosedReason::Reconnected);
        self.inner.reconnect(reset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::Session;
    use eid_protocols::Status;
    use eid_protocols::kdf::SessionKeys;
    use eid_protocols::sm::{ChipChannel, Cipher};

    fn keys(cipher: Cipher) -> SessionKeys {
        let n = cipher.key_len();
        SessionKeys {
            cipher,
            k_enc: Zeroizing::new(vec![0x11; n]),
            k_mac: Zeroizing::new(vec![0x22; n]),
        }
    }

    /// A chip holding one transparent file behind secure messaging.
    struct Chip {
        channel: ChipChannel,
        file: Vec<u8>,
        caps: ReaderCapabilities,
        tamper_next: bool,
        seen: usize,
        largest_response: usize,
    }

    impl Chip {
        fn new(cipher: Cipher, caps: ReaderCapabilities) -> Self {
            let ssc = vec![0u8; cipher.block_len()];
            Chip {
                channel: ChipChannel::new(keys(cipher), &ssc).unwrap(),
                file: (0..3000u32).map(|i| (i * 7) as u8).collect(),
                caps,
                tamper_next: false,
                seen: 0,
                largest_response: 0,
            }
        }
    }

    impl Transport for Chip {
        fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, Error> {
            self.seen += 1;
            let (command, _) = Command::parse(apdu).unwrap();
            let plain = match self.channel.unwrap_command(&command) {
                Ok(c) => c,
                Err(e) => return Ok(Response::status_only(e.status()).to_bytes()),
            };
            assert_eq!(plain.ins(), 0xB0, "only READ BINARY here");
            let offset = usize::from(u16::from_be_bytes([plain.p1(), plain.p2()]));
            let ne = plain.ne().unwrap();
            let data = self.file.get(offset..).unwrap_or(&[]);
            let data = &data[..data.len().min(ne)];
            let response = Response::new(data.to_vec(), Status::Success);
            let mut out = self.channel.wrap_response(&response).unwrap().to_bytes();
            if self.tamper_next {
                let n = out.len();
                out[n - 3] ^= 1;
                self.tamper_next = false;
            }
            self.largest_response = self.largest_response.max(out.len());
            Ok(out)
        }
        fn atr(&self) -> &[u8] {
            &[0x3B, 0x00]
        }
        fn reader_name(&self) -> &str {
            "chip"
        }
        fn capabilities(&self) -> ReaderCapabilities {
            self.caps
        }
        fn transaction(&mut self) -> Result<Box<dyn Transport + '_>, Error> {
            Ok(Box::new(crate::Reborrow(self)))
        }
        fn reconnect(&mut self, _reset: bool) -> Result<(), Error> {
            Ok(())
        }
    }

    fn secure(chip: Chip, cipher: Cipher, extended: bool) -> SecureTransport<Chip> {
        let ssc = vec![0u8; cipher.block_len()];
        let channel = SecureChannel::new(keys(cipher), &ssc).unwrap();
        SecureTransport::new(chip, Box::new(channel), extended)
    }

    #[test]
    fn short_apdus_carry_223_bytes_under_aes_and_231_under_3des() {
        for (cipher, expected) in [(Cipher::Aes128, 223), (Cipher::Tdes, 231)] {
            let chip = Chip::new(cipher, ReaderCapabilities::SHORT_ONLY);
            let mut t = secure(chip, cipher, false);
            assert_eq!(t.capabilities().max_response_len, expected + 2);
            let data = Session::new(&mut t).read_binary(Some(1000)).unwrap();
            assert_eq!(data, t.inner_mut().file[..1000]);
            // 1000 bytes in chunks of `expected`.
            assert_eq!(t.inner_mut().seen, 1000usize.div_ceil(expected));
            assert!(t.inner_mut().largest_response <= 258);
        }
    }

    #[test]
    fn protected_answers_fit_a_reader_smaller_than_a_short_apdu() {
        // A reader that carries back less than 258 bytes: every protected answer fits it.
        let mut caps = ReaderCapabilities::SHORT_ONLY;
        caps.max_response_len = 130;
        let chip = Chip::new(Cipher::Aes128, caps);
        let mut t = secure(chip, Cipher::Aes128, false);
        assert!(t.capabilities().max_response_len <= 130);
        let data = Session::new(&mut t).read_binary(Some(600)).unwrap();
        assert_eq!(data, t.inner_mut().file[..600]);
        assert!(t.inner_mut().largest_response <= 130);
    }

    #[test]
    fn extended_chip_reads_a_large_file_in_one_protected_apdu() {
        let chip = Chip::new(Cipher::Aes256, ReaderCapabilities::extended(65_544));
        let mut t = secure(chip, Cipher::Aes256, true);
        let caps = t.capabilities();
        assert!(caps.allows_extended());
        let mut s = Session::with_policy(&mut t, crate::session::LengthPolicy::PreferExtended);
        let data = s.read_binary(Some(3000)).unwrap();
        assert_eq!(data.len(), 3000);
        assert_eq!(t.inner_mut().seen, 1);
        assert_eq!(t.apdu_count(), 1);
    }

    #[test]
    fn an_answer_too_large_for_short_sm_goes_extended_when_the_reader_allows() {
        // The chip did not announce extended length; a 256-byte answer (an RSA-2048 Active
        // Authentication signature) cannot fit a short 3DES protected response.
        let chip = Chip::new(Cipher::Tdes, ReaderCapabilities::extended(65_544));
        let mut t = secure(chip, Cipher::Tdes, false);
        assert_eq!(t.capabilities().max_response_len, 233, "reads stay short");
        let answer = t.transmit(&[0x00, 0xB0, 0x00, 0x00, 0x00]).unwrap();
        assert_eq!(answer.len(), 258);
        assert_eq!(answer[..256], t.inner_mut().file[..256]);
        assert!(t.inner_mut().largest_response > 258);
        // Over a short-only reader the same command is clamped instead (no extended APDU).
        let chip = Chip::new(Cipher::Tdes, ReaderCapabilities::SHORT_ONLY);
        let mut t = secure(chip, Cipher::Tdes, false);
        let answer = t.transmit(&[0x00, 0xB0, 0x00, 0x00, 0x00]).unwrap();
        assert_eq!(answer.len(), 231 + 2);
    }

    #[test]
    fn a_bad_mac_closes_the_channel_for_good() {
        let chip = Chip::new(Cipher::Aes128, ReaderCapabilities::SHORT_ONLY);
        let mut t = secure(chip, Cipher::Aes128, false);
        let read = [0x00, 0xB0, 0x00, 0x00, 0x10];
        assert_eq!(t.transmit(&read).unwrap().len(), 0x12);
        t.inner_mut().tamper_next = true;
        let err = t.transmit(&read).unwrap_err();
        assert!(
            matches!(err, Error::SecureMessaging(SmFailure::BadMac)),
            "{err:?}"
        );
        assert!(!t.is_open());
        let seen = t.inner_mut().seen;
        let err = t.transmit(&read).unwrap_err();
        assert!(matches!(err, Error::SecureChannelClosed(_)), "{err:?}");
        assert_eq!(
            t.inner_mut().seen,
            seen,
            "nothing reaches the card any more"
        );
        // New keys over a broken channel are refused too.
        let channel = SecureChannel::new(keys(Cipher::Aes128), &[0; 16]).unwrap();
        assert!(t.replace_channel(Box::new(channel)).is_err());
    }

    #[test]
    fn transactions_share_the_channel_and_reconnect_closes_it() {
        let chip = Chip::new(Cipher::Aes128, ReaderCapabilities::SHORT_ONLY);
        let mut t = secure(chip, Cipher::Aes128, false);
        let read = [0x00, 0xB0, 0x00, 0x00, 0x08];
        {
            let mut tx = t.transaction().unwrap();
            assert_eq!(tx.transmit(&read).unwrap().len(), 10);
            assert_eq!(tx.capabilities().max_response_len, 225);
        }
        // The counters moved on inside the transaction: the next command still verifies.
        assert_eq!(t.transmit(&read).unwrap().len(), 10);
        t.reconnect(true).unwrap();
        assert!(matches!(
            t.transmit(&read),
            Err(Error::SecureChannelClosed(ClosedReason::Reconnected))
        ));
    }

    #[test]
    fn an_answer_without_a_status_word_closes_the_channel() {
        // The chip counted a response the terminal never verified: the counters no longer
        // agree, so nothing more may go out under these keys.
        struct Mute(usize);
        impl Transport for Mute {
            fn transmit(&mut self, _: &[u8]) -> Result<Vec<u8>, Error> {
                self.0 += 1;
                Ok(vec![0x90])
            }
            fn atr(&self) -> &[u8] {
                &[0x3B, 0x00]
            }
            fn reader_name(&self) -> &str {
                "mute"
            }
            fn capabilities(&self) -> ReaderCapabilities {
                ReaderCapabilities::SHORT_ONLY
            }
            fn transaction(&mut self) -> Result<Box<dyn Transport + '_>, Error> {
                Ok(Box::new(crate::Reborrow(self)))
            }
            fn reconnect(&mut self, _: bool) -> Result<(), Error> {
                Ok(())
            }
        }
        let channel = SecureChannel::new(keys(Cipher::Aes128), &[0; 16]).unwrap();
        let mut t = SecureTransport::new(Mute(0), Box::new(channel), false);
        let read = [0x00, 0xB0, 0x00, 0x00, 0x08];
        assert!(t.transmit(&read).is_err());
        assert!(!t.is_open());
        let err = t.transmit(&read).unwrap_err();
        assert!(matches!(err, Error::SecureChannelClosed(_)), "{err:?}");
        assert_eq!(t.inner_mut().0, 1, "nothing more reaches the card");
    }

    #[test]
    fn an_unprotected_answer_is_refused() {
        struct Plain;
        impl Transport for Plain {
            fn transmit(&mut self, _: &[u8]) -> Result<Vec<u8>, Error> {
                Ok(vec![0x6A, 0x82])
            }
            fn atr(&self) -> &[u8] {
                &[0x3B, 0x00]
            }
            fn reader_name(&self) -> &str {
                "plain"
            }
            fn capabilities(&self) -> ReaderCapabilities {
                ReaderCapabilities::SHORT_ONLY
            }
            fn transaction(&mut self) -> Result<Box<dyn Transport + '_>, Error> {
                Ok(Box::new(crate::Reborrow(self)))
            }
            fn reconnect(&mut self, _: bool) -> Result<(), Error> {
                Ok(())
            }
        }
        let channel = SecureChannel::new(keys(Cipher::Aes128), &[0; 16]).unwrap();
        let mut t = SecureTransport::new(Plain, Box::new(channel), false);
        let err = t.transmit(&[0x00, 0xB0, 0x00, 0x00, 0x08]).unwrap_err();
        assert!(
            matches!(err, Error::SecureMessaging(SmFailure::Unprotected(0x6A82))),
            "{err:?}"
        );
    }
}
