//! The transport trait: one APDU in, one response out, over whatever carries it (a PC/SC reader,
//! an NFC reader, an in-process virtual card). A transport never knows what card it talks to; the
//! session layer and the card applications never know what carries their APDUs.

use crate::Error;

/// Where the card sits.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Interface {
    Contact,
    Contactless,
    #[default]
    Unknown,
}

/// PIN entry on the reader itself (PC/SC part 10 features), with the control codes to use.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, serde::Serialize)]
pub struct PinpadFeatures {
    /// FEATURE_VERIFY_PIN_DIRECT control code.
    pub verify_pin_direct: Option<u32>,
    /// FEATURE_MODIFY_PIN_DIRECT control code.
    pub modify_pin_direct: Option<u32>,
}

impl PinpadFeatures {
    pub fn has_pinpad(&self) -> bool {
        self.verify_pin_direct.is_some()
    }
}

/// What the reader can carry. The session layer combines this with what the card says it
/// supports (ATR historical bytes, or the card application's knowledge).
#[derive(Clone, Copy, PartialEq, Eq, Debug, serde::Serialize)]
pub struct ReaderCapabilities {
    /// Largest command APDU (header and length fields included) the reader passes on.
    pub max_command_len: usize,
    /// Largest response APDU (data and SW1-SW2) the reader passes back.
    pub max_response_len: usize,
    pub pinpad: PinpadFeatures,
    pub interface: Interface,
}

impl ReaderCapabilities {
    /// A reader limited to short APDUs (4 + 1 + 255 + 1 bytes out, 256 + 2 back).
    pub const SHORT_ONLY: ReaderCapabilities = ReaderCapabilities {
        max_command_len: 261,
        max_response_len: 258,
        pinpad: PinpadFeatures {
            verify_pin_direct: None,
            modify_pin_direct: None,
        },
        interface: Interface::Unknown,
    };

    /// A reader that carries extended APDUs of up to `max_len` bytes each way.
    pub const fn extended(max_len: usize) -> ReaderCapabilities {
        ReaderCapabilities {
            max_command_len: max_len,
            max_response_len: max_len,
            pinpad: PinpadFeatures {
                verify_pin_direct: None,
                modify_pin_direct: None,
            },
            interface: Interface::Unknown,
        }
    }

    /// Whether the reader carries anything larger than a short APDU.
    pub fn allows_extended(&self) -> bool {
        self.max_command_len > 261 || self.max_response_len > 258
    }
}

/// One connection to one card.
///
/// Implementations map their failures onto [`Error`]: card removed, card reset by another
/// application, reader removed, service stopped are typed, never strings.
pub trait Transport: Send {
    /// Sends one command APDU, returns the response APDU (data || SW1 SW2) as received.
    /// No GET RESPONSE, no chaining: that is the session layer's job.
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, Error>;

    /// The card's answer-to-reset as last seen.
    fn atr(&self) -> &[u8];

    /// The reader's name as the user sees it.
    fn reader_name(&self) -> &str;

    fn capabilities(&self) -> ReaderCapabilities;

    /// Starts an exclusive transaction: until the returned handle is dropped, no other
    /// application can send APDUs to the card in between ours (PC/SC `SCardBeginTransaction`).
    /// Multi-APDU operations (reading a file, verify-then-sign, secure messaging) run inside one.
    /// Calling it on a transaction handle returns a handle to the same transaction.
    fn transaction(&mut self) -> Result<Box<dyn Transport + '_>, Error>;

    /// Re-establishes the connection after [`Error::CardReset`] (or to reset the card when
    /// `reset` is true). Everything the card held for us (selection, PIN state, SM keys) is gone.
    fn reconnect(&mut self, reset: bool) -> Result<(), Error>;

    /// Sends a control code to the reader (`SCardControl`): PC/SC part 10 feature requests and
    /// PIN entry on the reader's keypad ([`crate::pinpad`]). Transports without a reader to
    /// talk to answer [`Error::NotSupported`].
    fn control(&mut self, code: u32, input: &[u8]) -> Result<Vec<u8>, Error> {
        let _ = (code, input);
        Err(Error::NotSupported("reader control codes"))
    }
}

/// A transaction handle for transports without a transaction concept of their own (in-process
/// cards, or a transport already inside a transaction): it forwards everything.
pub struct Reborrow<'a>(pub &'a mut dyn Transport);

impl std::fmt::Debug for Reborrow<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Reborrow({})", self.0.reader_name())
    }
}

impl Transport for Reborrow<'_> {
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, Error> {
        self.0.transmit(command)
    }
    fn atr(&self) -> &[u8] {
        self.0.atr()
    }
    fn reader_name(&self) -> &str {
        self.0.reader_name()
    }
    fn capabilities(&self) -> ReaderCapabilities {
        self.0.capabilities()
    }
    fn transaction(&mut self) -> Result<Box<dyn Transport + '_>, Error> {
        Ok(Box::new(Reborrow(&mut *self.0)))
    }
    fn reconnect(&mut self, reset: bool) -> Result<(), Error> {
        self.0.reconnect(reset)
    }
    fn control(&mut self, code: u32, input: &[u8]) -> Result<Vec<u8>, Error> {
        self.0.control(code, input)
    }
}
