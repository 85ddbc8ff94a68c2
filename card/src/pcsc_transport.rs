//! PC/SC: the system's smart card stack (pcsc-lite's pcscd on Linux), through the `pcsc` crate.
//!
//! [`PcscContext`] lists readers and connects; [`PcscTransport`] is one connection to one card and
//! implements [`Transport`]. Its [`Transport::transaction`] is `SCardBeginTransaction` /
//! `SCardEndTransaction`, so a multi-APDU operation is never interleaved with another
//! application's APDUs. PC/SC return codes become [`Error`] in one place (`From<pcsc::Error>`).
//!
//! The `pcsc` calls block: run them on a thread of their own (or `spawn_blocking`).

use std::ffi::{CStr, CString};
use std::time::Duration;

use pcsc::{Attribute, Card, Context, Disposition, Protocols, Scope, ShareMode};

use crate::Error;
use crate::transport::{Interface, PinpadFeatures, ReaderCapabilities, Transport};

/// The largest answer to a control code accepted (feature lists, pinpad status words).
const CONTROL_ANSWER_MAX: usize = 1024;
/// pcsc-lite's largest extended APDU buffer (4 + 3 + 65 536 + 2 + 3).
const PCSC_MAX_EXTENDED: usize = pcsc::MAX_BUFFER_SIZE_EXTENDED;

/// A reader as PC/SC reports it.
#[derive(Clone, PartialEq, Eq, Debug, serde::Serialize)]
pub struct ReaderInfo {
    pub name: String,
    /// A card is in the reader (powered or not).
    pub card_present: bool,
    /// Another application holds the card exclusively.
    pub exclusive: bool,
    /// The card's ATR, empty when there is no card.
    #[serde(serialize_with = "crate::hex_serde::upper")]
    pub atr: Vec<u8>,
}

/// A PC/SC context: the connection to pcscd.
#[derive(Clone)]
pub struct PcscContext {
    context: Context,
}

impl std::fmt::Debug for PcscContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PcscContext")
    }
}

impl PcscContext {
    /// Connects to the PC/SC service. [`Error::PcscdNotRunning`] when pcscd is not there.
    pub fn establish() -> Result<Self, Error> {
        let context = Context::establish(Scope::User)?;
        Ok(PcscContext { context })
    }

    /// The `pcsc` context underneath (the monitor shares it).
    pub fn raw(&self) -> &Context {
        &self.context
    }

    /// Reader names, in PC/SC's order. An empty list is not an error here.
    pub fn reader_names(&self) -> Result<Vec<String>, Error> {
        match self.context.list_readers_owned() {
            Ok(names) => Ok(names
                .iter()
                .map(|n| n.to_string_lossy().into_owned())
                .collect()),
            Err(pcsc::Error::NoReadersAvailable) => Ok(Vec::new()),
            Err(e) => Err(e.into()),
        }
    }

    /// Every reader with its card state, without connecting to any card.
    pub fn readers(&self) -> Result<Vec<ReaderInfo>, Error> {
        let names = match self.context.list_readers_owned() {
            Ok(names) => names,
            Err(pcsc::Error::NoReadersAvailable) => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        let mut states: Vec<pcsc::ReaderState> = names
            .into_iter()
            .map(|n| pcsc::ReaderState::new(n, pcsc::State::UNAWARE))
            .collect();
        if states.is_empty() {
            return Ok(Vec::new());
        }
        self.context
            .get_status_change(std::time::Duration::ZERO, &mut states)?;
        Ok(states
            .iter()
            .filter(|s| {
                !s.event_state()
                    .intersects(pcsc::State::UNKNOWN | pcsc::State::IGNORE)
            })
            .map(|s| {
                let present = s.event_state().contains(pcsc::State::PRESENT);
                ReaderInfo {
                    name: s.name().to_string_lossy().into_owned(),
                    card_present: present,
                    exclusive: s.event_state().contains(pcsc::State::EXCLUSIVE),
                    atr: if present {
                        s.atr().to_vec()
                    } else {
                        Vec::new()
                    },
                }
            })
            .collect())
    }

    /// Connects to the card in `reader` (shared mode, T=0 or T=1).
    pub fn connect(&self, reader: &str) -> Result<PcscTransport, Error> {
        let name = CString::new(reader).map_err(|_| Error::ReaderNotFound(reader.to_owned()))?;
        let card = match self
            .context
            .connect(&name, ShareMode::Shared, Protocols::ANY)
        {
            Ok(card) => card,
            Err(pcsc::Error::NoSmartcard | pcsc::Error::RemovedCard) => {
                return Err(Error::NoCard(reader.to_owned()));
            }
            Err(pcsc::Error::UnknownReader | pcsc::Error::ReaderUnavailable) => {
                return Err(Error::ReaderNotFound(reader.to_owned()));
            }
            Err(e) => return Err(e.into()),
        };
        PcscTransport::new(card, self.context.clone(), reader.to_owned())
    }

    /// Connects to the first reader that holds a card.
    pub fn connect_first_card(&self) -> Result<PcscTransport, Error> {
        let readers = self.readers()?;
        if readers.is_empty() {
            return Err(Error::NoReader);
        }
        let reader = readers.iter().find(|r| r.card_present).ok_or_else(|| {
            Error::NoCard(readers.first().map(|r| r.name.clone()).unwrap_or_default())
        })?;
        self.connect(&reader.name)
    }
}

/// One connection to one card through PC/SC.
pub struct PcscTransport {
    card: Card,
    context: Context,
    reader: String,
    atr: Vec<u8>,
    caps: ReaderCapabilities,
    /// Reused receive buffer, sized for the largest extended response.
    buffer: Vec<u8>,
}

impl std::fmt::Debug for PcscTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PcscTransport")
            .field("reader", &self.reader)
            .field("caps", &self.caps)
            .finish()
    }
}

impl PcscTransport {
    fn new(card: Card, context: Context, reader: String) -> Result<Self, Error> {
        let atr = card
            .get_attribute_owned(Attribute::AtrString)
            .or_else(|_| card.status2_owned().map(|s| s.atr().to_vec()))?;
        let caps = query_capabilities(&card, &reader);
        tracing::debug!(reader, atr = %crate::hex(&atr), ?caps, "connected");
        Ok(PcscTransport {
            card,
            context,
            reader,
            atr,
            caps,
            buffer: vec![0; PCSC_MAX_EXTENDED],
        })
    }

    /// The `pcsc` card handle, for control codes (pinpad) and attributes.
    pub fn card(&self) -> &Card {
        &self.card
    }

    /// Releases the card, leaving it as it is (other applications keep their state).
    pub fn disconnect(self) -> Result<(), Error> {
        self.card
            .disconnect(Disposition::LeaveCard)
            .map_err(|(_, e)| Error::from(e))
    }
}

fn transmit_on(link: Link<'_>, buffer: &mut [u8], command: &[u8]) -> Result<Vec<u8>, Error> {
    let response = link
        .card
        .transmit(command, buffer)
        .map(<[u8]>::to_vec)
        .map_err(connected_error)?;
    if response.len() < 2 {
        // No status word. Some drivers (vpcd among them) report a card pulled out during the
        // exchange this way rather than with SCARD_W_REMOVED_CARD, before pcscd itself has
        // noticed. Find out whether the card is going away before blaming it for a malformed
        // answer.
        link.card_still_there()?;
    }
    Ok(response)
}

/// A PC/SC error on a connection or wait that was working. There, "no service" means pcscd went
/// away under us (stopped or restarted), not that it was never running; and pcsc-lite answers a
/// call that was in flight when the daemon died with "internal communications error" (its socket
/// to pcscd broke).
pub(crate) fn connected_error(e: pcsc::Error) -> Error {
    match e {
        pcsc::Error::NoService | pcsc::Error::CommError | pcsc::Error::ServiceStopped => {
            Error::PcscdStopped
        }
        e => e.into(),
    }
}

/// What a transmit needs to tell a removed card from a malformed answer.
#[derive(Clone, Copy)]
struct Link<'a> {
    card: &'a Card,
    context: &'a Context,
    reader: &'a str,
}

impl Link<'_> {
    /// How long to give the reader driver to report a removal after an answer without status.
    const REMOVAL_GRACE: Duration = Duration::from_millis(1500);

    /// `Ok` if the card is still present, [`Error::CardRemoved`] if it is gone or goes within
    /// [`Link::REMOVAL_GRACE`] (a blocking status-change wait, not a poll).
    fn card_still_there(&self) -> Result<(), Error> {
        let present = |s: pcsc::State| s.contains(pcsc::State::PRESENT);
        let Ok(name) = CString::new(self.reader) else {
            return Ok(());
        };
        let mut states = [pcsc::ReaderState::new(name, pcsc::State::UNAWARE)];
        self.context
            .get_status_change(Duration::ZERO, &mut states)?;
        if !present(states[0].event_state()) {
            return Err(Error::CardRemoved);
        }
        states[0].sync_current_state();
        match self
            .context
            .get_status_change(Self::REMOVAL_GRACE, &mut states)
        {
            Ok(()) if !present(states[0].event_state()) => Err(Error::CardRemoved),
            Ok(()) | Err(pcsc::Error::Timeout) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

impl Transport for PcscTransport {
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, Error> {
        let link = Link {
            card: &self.card,
            context: &self.context,
            reader: &self.reader,
        };
        transmit_on(link, &mut self.buffer, command)
    }

    fn atr(&self) -> &[u8] {
        &self.atr
    }

    fn reader_name(&self) -> &str {
        &self.reader
    }

    fn capabilities(&self) -> ReaderCapabilities {
        self.caps
    }

    fn transaction(&mut self) -> Result<Box<dyn Transport + '_>, Error> {
        let PcscTransport {
            card,
            context,
            reader,
            atr,
            caps,
            buffer,
        } = self;
        let transaction = card.transaction().map_err(connected_error)?;
        Ok(Box::new(PcscTransaction {
            transaction,
            context,
            reader,
            atr,
            caps: *caps,
            buffer,
        }))
    }

    fn reconnect(&mut self, reset: bool) -> Result<(), Error> {
        self.card
            .reconnect(ShareMode::Shared, Protocols::ANY, disposition(reset))
            .map_err(connected_error)?;
        self.atr = current_atr(&self.card)?;
        Ok(())
    }

    fn control(&mut self, code: u32, input: &[u8]) -> Result<Vec<u8>, Error> {
        control_on(&self.card, code, input)
    }
}

/// `SCardControl` on a connection that was working.
fn control_on(card: &Card, code: u32, input: &[u8]) -> Result<Vec<u8>, Error> {
    let mut answer = [0u8; CONTROL_ANSWER_MAX];
    card.control(code.into(), input, &mut answer)
        .map(<[u8]>::to_vec)
        .map_err(connected_error)
}

/// `SCardReconnect`'s initialization: reset the card, or acknowledge a reset and leave it.
fn disposition(reset: bool) -> Disposition {
    if reset {
        Disposition::ResetCard
    } else {
        Disposition::LeaveCard
    }
}

/// The ATR as PC/SC reports it now (it may change after a reset).
fn current_atr(card: &Card) -> Result<Vec<u8>, Error> {
    Ok(card
        .status2_owned()
        .map_err(connected_error)?
        .atr()
        .to_vec())
}

/// A transport inside `SCardBeginTransaction`; the transaction ends (leaving the card as it is)
/// when this is dropped.
struct PcscTransaction<'a> {
    transaction: pcsc::Transaction<'a>,
    context: &'a Context,
    reader: &'a str,
    /// The connection's ATR, refreshed when the card is reconnected inside the transaction.
    atr: &'a mut Vec<u8>,
    caps: ReaderCapabilities,
    buffer: &'a mut Vec<u8>,
}

impl Transport for PcscTransaction<'_> {
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, Error> {
        let link = Link {
            card: &self.transaction,
            context: self.context,
            reader: self.reader,
        };
        transmit_on(link, self.buffer, command)
    }
    fn atr(&self) -> &[u8] {
        self.atr.as_slice()
    }
    fn reader_name(&self) -> &str {
        self.reader
    }
    fn capabilities(&self) -> ReaderCapabilities {
        self.caps
    }
    fn transaction(&mut self) -> Result<Box<dyn Transport + '_>, Error> {
        Ok(Box::new(crate::Reborrow(self)))
    }
    fn reconnect(&mut self, reset: bool) -> Result<(), Error> {
        // SCardReconnect on the transaction's handle; the transaction stays ours.
        self.transaction
            .reconnect(ShareMode::Shared, Protocols::ANY, disposition(reset))
            .map_err(connected_error)?;
        *self.atr = current_atr(&self.transaction)?;
        Ok(())
    }
    fn control(&mut self, code: u32, input: &[u8]) -> Result<Vec<u8>, Error> {
        control_on(&self.transaction, code, input)
    }
}

/// Reader capabilities from what PC/SC exposes: the pinpad features (part 10), the maximum
/// message size (`SCARD_ATTR_MAXINPUT`, CCID's dwMaxCCIDMessageLength), and whether the card sits
/// on a contactless interface.
fn query_capabilities(card: &Card, reader: &str) -> ReaderCapabilities {
    let pinpad = pinpad_features(card);
    let max_input = card
        .get_attribute_owned(Attribute::Maxinput)
        .ok()
        .and_then(|v| v.first_chunk::<4>().map(|b| u32::from_le_bytes(*b)))
        .map(|v| v as usize);
    let protocol_t1 = card
        .status2_owned()
        .is_ok_and(|s| s.protocol2() == Some(pcsc::Protocol::T1));
    // A reader that reports no size but speaks T=1 to the card can carry extended APDUs in
    // pcsc-lite (CCID TPDU readers chain the blocks; vpcd carries up to 64 KiB). T=0 cannot.
    let max_len = match max_input {
        Some(n) if n > 0 => n.min(PCSC_MAX_EXTENDED),
        _ if protocol_t1 => PCSC_MAX_EXTENDED,
        _ => 261,
    };
    let interface = if reader.to_ascii_lowercase().contains("contactless")
        || reader.to_ascii_uppercase().contains("PICC")
    {
        Interface::Contactless
    } else {
        Interface::Unknown
    };
    let mut caps = if max_len > 261 {
        ReaderCapabilities::extended(max_len)
    } else {
        ReaderCapabilities::SHORT_ONLY
    };
    caps.pinpad = pinpad;
    caps.interface = interface;
    caps
}

/// PC/SC part 10 §2.2: the reader's feature list ([`crate::pinpad::FeatureList`]). A reader
/// without the control code, or with a malformed list, has no pinpad as far as we are concerned.
fn pinpad_features(card: &Card) -> PinpadFeatures {
    let mut buf = [0u8; crate::pinpad::MAX_FEATURE_LIST];
    let Ok(list) = card.control(crate::pinpad::GET_FEATURE_REQUEST.into(), &[], &mut buf) else {
        return PinpadFeatures::default();
    };
    match crate::pinpad::FeatureList::parse(list) {
        Ok(list) => list.pinpad_features(),
        Err(e) => {
            tracing::warn!(error = %e, "ignoring the reader's malformed PC/SC part 10 feature list");
            PinpadFeatures::default()
        }
    }
}

/// The PnP notification pseudo-reader name.
pub(crate) fn pnp_notification() -> &'static CStr {
    pcsc::PNP_NOTIFICATION()
}
