//! Citizen Card PINs (cards.md §A5): authentication 0x81, signature 0x82, address 0x83.
//! ISO/IEC 7816-4:2005 §7.5.6 VERIFY, §7.5.7 CHANGE REFERENCE DATA, §7.5.10 RESET RETRY COUNTER.
//!
//! PINs are 4 to 8 ASCII digits padded with `FF` to 8 bytes; PUKs likewise. They live only in
//! [`Zeroizing`] buffers, are validated before any APDU, and are never retried by this code:
//! every wrong try is the user's.

use eid_protocols::{Command, Status, commands};
use serde::Serialize;
use zeroize::Zeroizing;

use super::PteidCard;
use crate::Error;

/// Which PIN.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PinRef {
    /// Authentication PIN, reference 0x81.
    Auth,
    /// Signature PIN, reference 0x82.
    Sign,
    /// Address PIN, reference 0x83 (CC1 address file).
    Address,
}

impl PinRef {
    pub const ALL: [PinRef; 3] = [PinRef::Auth, PinRef::Sign, PinRef::Address];

    /// The card's reference byte.
    pub fn reference(self) -> u8 {
        match self {
            PinRef::Auth => 0x81,
            PinRef::Sign => 0x82,
            PinRef::Address => 0x83,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            PinRef::Auth => "auth",
            PinRef::Sign => "sign",
            PinRef::Address => "address",
        }
    }

    /// Parses `auth`, `sign`/`signature`, `address`.
    pub fn from_name(name: &str) -> Option<PinRef> {
        match name {
            "auth" | "authentication" => Some(PinRef::Auth),
            "sign" | "signature" => Some(PinRef::Sign),
            "address" => Some(PinRef::Address),
            _ => None,
        }
    }
}

/// The verification state of a PIN, asked with VERIFY without data (no try is spent).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum PinStatus {
    /// Verified in this session (9000).
    Verified,
    /// Not verified; this many tries left (63Cx).
    NotVerified { tries_left: u8 },
    /// Blocked (6983, 6984 or 63C0).
    Blocked,
}

/// A PIN as typed: 4 to 8 digits, stored padded to the card's 8-byte block.
pub struct Pin(Zeroizing<Vec<u8>>);

/// A PUK as typed: 4 to 8 digits (the card's PUKs have 8), padded to 8 bytes.
pub struct Puk(Zeroizing<Vec<u8>>);

impl std::fmt::Debug for Pin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pin(***)")
    }
}
impl std::fmt::Debug for Puk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Puk(***)")
    }
}

/// The card's PIN block: the digits, then `FF` up to 8 bytes.
const BLOCK: usize = 8;

fn block(digits: &str, what: &'static str) -> Result<Zeroizing<Vec<u8>>, Error> {
    let bytes = digits.as_bytes();
    if !(4..=BLOCK).contains(&bytes.len()) {
        return Err(Error::InvalidPinFormat(what));
    }
    if !bytes.iter().all(u8::is_ascii_digit) {
        return Err(Error::InvalidPinFormat(what));
    }
    let mut out = Zeroizing::new(Vec::with_capacity(BLOCK));
    out.extend_from_slice(bytes);
    out.resize(BLOCK, 0xFF);
    Ok(out)
}

impl Pin {
    /// Validates and pads; the input stays the caller's to zeroize.
    pub fn new(digits: &str) -> Result<Pin, Error> {
        block(digits, "a PIN has 4 to 8 digits").map(Pin)
    }
    fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl Puk {
    /// Citizen Card PUKs have exactly 8 digits (cards.md §A5): anything else is refused here,
    /// before it can cost one of the PUK's tries.
    pub fn new(digits: &str) -> Result<Puk, Error> {
        const WHAT: &str = "a PUK has 8 digits";
        if digits.len() != BLOCK {
            return Err(Error::InvalidPinFormat(WHAT));
        }
        block(digits, WHAT).map(Puk)
    }
    fn bytes(&self) -> &[u8] {
        &self.0
    }
}

/// Two blocks in one zeroizing buffer, allocated once.
fn concat(a: &[u8], b: &[u8]) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(a.len().saturating_add(b.len())));
    out.extend_from_slice(a);
    out.extend_from_slice(b);
    out
}

/// What a PIN command's status word means (cards.md §A5).
fn pin_result(status: Status, command: &Command) -> Result<(), Error> {
    match status {
        Status::Success => Ok(()),
        Status::RemainingRetries(0) => Err(Error::PinBlocked),
        Status::RemainingRetries(n) => Err(Error::WrongPin { retries_left: n }),
        Status::AuthenticationBlocked | Status::ReferenceDataNotUsable => Err(Error::PinBlocked),
        status => Err(Error::Status {
            command: command.header(),
            status,
        }),
    }
}

impl PteidCard<'_> {
    /// The PIN's state without spending a try: `00 20 00 <ref>` (no data).
    pub fn pin_status(&mut self, pin: PinRef) -> Result<PinStatus, Error> {
        let command = commands::verify_status(pin.reference());
        self.select_pin_app()?;
        let status = self.session.transmit(&command)?.status();
        match status {
            Status::Success => Ok(PinStatus::Verified),
            Status::RemainingRetries(0)
            | Status::AuthenticationBlocked
            | Status::ReferenceDataNotUsable => Ok(PinStatus::Blocked),
            Status::RemainingRetries(n) => Ok(PinStatus::NotVerified { tries_left: n }),
            status => Err(Error::Status {
                command: command.header(),
                status,
            }),
        }
    }

    /// VERIFY `00 20 00 <ref> 08 <digits FF..>`. A wrong PIN is [`Error::WrongPin`] with the
    /// tries left, a blocked one [`Error::PinBlocked`]. Exactly one APDU carries the PIN.
    pub fn verify_pin(&mut self, pin: PinRef, value: &Pin) -> Result<(), Error> {
        let command = commands::verify(pin.reference(), Zeroizing::new(value.bytes().to_vec()));
        self.select_pin_app()?;
        let status = self.session.transmit(&command)?.status();
        pin_result(status, &command)
    }

    /// Whether the reader has a PIN pad this connection can use (PC/SC part 10
    /// FEATURE_VERIFY_PIN_DIRECT). Under secure messaging (the contactless CC2) the reader could
    /// not protect the VERIFY it builds, so the answer is no.
    pub fn reader_has_pinpad(&mut self) -> bool {
        self.session.transport().capabilities().pinpad.has_pinpad()
    }

    /// VERIFY with the PIN typed on the reader's keypad: the reader fills the digits into
    /// `00 20 00 <ref> 08 <digits FF..>`; the agent never sees them. Same errors as
    /// [`PteidCard::verify_pin`], plus [`Error::Timeout`] / [`Error::Cancelled`] from the
    /// reader, and [`Error::NotSupported`] (before anything reaches the card) when the
    /// connection cannot use the pinpad.
    pub fn verify_pin_on_reader(&mut self, pin: PinRef) -> Result<(), Error> {
        self.select_pin_app()?;
        let request = crate::pinpad::VerifyPinDirect::citizen_card(pin.reference());
        crate::pinpad::verify_pin_direct(self.session.transport(), &request)
    }

    /// CHANGE REFERENCE DATA `00 24 00 <ref> 10 old||new`.
    pub fn change_pin(&mut self, pin: PinRef, old: &Pin, new: &Pin) -> Result<(), Error> {
        let command =
            commands::change_reference_data(pin.reference(), concat(old.bytes(), new.bytes()));
        self.select_pin_app()?;
        let status = self.session.transmit(&command)?.status();
        pin_result(status, &command)
    }

    /// RESET RETRY COUNTER with the PUK: with a new PIN `00 2C 00 <ref> 10 PUK||new`, without
    /// one `00 2C 01 <ref> 08 PUK` (the PIN keeps its value, its counter is reset). A wrong PUK
    /// is [`Error::WrongPin`] with the PUK's tries left.
    pub fn unblock_pin(&mut self, pin: PinRef, puk: &Puk, new: Option<&Pin>) -> Result<(), Error> {
        let command = match new {
            Some(new) => {
                commands::reset_retry_counter(pin.reference(), concat(puk.bytes(), new.bytes()))
            }
            None => Command::new(0x00, 0x2C, 0x01, pin.reference())
                .with_secret_data(Zeroizing::new(puk.bytes().to_vec())),
        };
        self.select_pin_app()?;
        let status = self.session.transmit(&command)?.status();
        pin_result(status, &command)
    }

    /// Clears the PIN's verified state where the card allows it (CC2: `00 20 FF <ref> 00`,
    /// cards.md §A6). On CC1 this is a no-op.
    pub fn logout_pin(&mut self, pin: PinRef) -> Result<(), Error> {
        if self.generation != super::Generation::Cc2 {
            return Ok(());
        }
        let command = Command::new(0x00, 0x20, 0xFF, pin.reference()).with_ne(256);
        self.select_pin_app()?;
        let status = self.session.transmit(&command)?.status();
        match status {
            Status::Success | Status::RemainingRetries(_) => Ok(()),
            status => Err(Error::Status {
                command: command.header(),
                status,
            }),
        }
    }

    /// The PINs live in the IAS applet (CC1) or the eID application (CC2).
    pub(crate) fn select_pin_app(&mut self) -> Result<(), Error> {
        let app = match self.generation {
            super::Generation::Cc1 => super::App::Cc1,
            super::Generation::Cc2 => super::App::Cc2Eid,
        };
        let result = Self::select_app(&mut self.session, &mut self.selected, app);
        if result.is_err() {
            self.forget_selection();
        }
        result
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn pins_are_validated_and_padded() {
        assert_eq!(Pin::new("1234").unwrap().bytes(), b"1234\xFF\xFF\xFF\xFF");
        assert_eq!(Pin::new("12345678").unwrap().bytes(), b"12345678");
        for bad in ["", "123", "123456789", "12a4", "１２３４", "1234 "] {
            assert!(
                matches!(Pin::new(bad), Err(Error::InvalidPinFormat(_))),
                "{bad:?}"
            );
        }
        assert_eq!(format!("{:?}", Pin::new("1234").unwrap()), "Pin(***)");
    }

    #[test]
    fn puks_have_exactly_eight_digits() {
        assert_eq!(Puk::new("12345678").unwrap().bytes(), b"12345678");
        for bad in ["1234", "1234567", "123456789", "1234567a"] {
            assert!(
                matches!(Puk::new(bad), Err(Error::InvalidPinFormat(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn pin_status_words_are_typed() {
        let c = commands::verify_status(0x81);
        assert!(matches!(
            pin_result(Status::RemainingRetries(2), &c),
            Err(Error::WrongPin { retries_left: 2 })
        ));
        for s in [
            Status::RemainingRetries(0),
            Status::AuthenticationBlocked,
            Status::ReferenceDataNotUsable,
        ] {
            assert!(matches!(pin_result(s, &c), Err(Error::PinBlocked)));
        }
        assert!(pin_result(Status::Success, &c).is_ok());
        assert!(matches!(
            pin_result(Status::WrongLength, &c),
            Err(Error::Status { .. })
        ));
    }
}
