//! One way for the card worker to reach a card in any reader: PC/SC readers through pcscd, NFC
//! readers (names starting `NFC `) through the bridge's opened libnfc devices. What follows the
//! connection (sessions, card applications, secure messaging) only sees [`Transport`].

use eid_card::nfc::{NfcTransport, is_nfc_reader_name};
use eid_card::pcsc_transport::{PcscContext, PcscTransport, ReaderInfo};
use eid_card::{Error, ReaderCapabilities, Transport};

use super::nfc::NfcReaders;

/// A connection to a card, whichever stack carries it.
#[derive(Debug)]
pub(crate) enum CardConnection {
    Pcsc(PcscTransport),
    Nfc(NfcTransport),
}

impl CardConnection {
    /// Releases the card, leaving it as it is.
    pub(crate) fn disconnect(self) -> Result<(), Error> {
        match self {
            CardConnection::Pcsc(t) => t.disconnect(),
            CardConnection::Nfc(t) => t.disconnect(),
        }
    }

    fn inner(&mut self) -> &mut dyn Transport {
        match self {
            CardConnection::Pcsc(t) => t,
            CardConnection::Nfc(t) => t,
        }
    }

    fn inner_ref(&self) -> &dyn Transport {
        match self {
            CardConnection::Pcsc(t) => t,
            CardConnection::Nfc(t) => t,
        }
    }
}

impl Transport for CardConnection {
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, Error> {
        self.inner().transmit(command)
    }
    fn atr(&self) -> &[u8] {
        self.inner_ref().atr()
    }
    fn reader_name(&self) -> &str {
        self.inner_ref().reader_name()
    }
    fn capabilities(&self) -> ReaderCapabilities {
        self.inner_ref().capabilities()
    }
    fn transaction(&mut self) -> Result<Box<dyn Transport + '_>, Error> {
        self.inner().transaction()
    }
    fn reconnect(&mut self, reset: bool) -> Result<(), Error> {
        self.inner().reconnect(reset)
    }
    fn control(&mut self, code: u32, input: &[u8]) -> Result<Vec<u8>, Error> {
        self.inner().control(code, input)
    }
}

/// Connects to the card in `reader`: an NFC reader the bridge opened, or a PC/SC reader.
/// `context` is `None` when pcscd cannot be reached: NFC readers still work (an NFC-only
/// machine needs no pcscd), PC/SC readers are `pcscd-not-running`.
pub(crate) fn connect(
    context: Option<&PcscContext>,
    nfc: &NfcReaders,
    reader: &str,
) -> Result<CardConnection, Error> {
    if is_nfc_reader_name(reader) {
        let nfc_reader = nfc
            .get(reader)
            .ok_or_else(|| Error::ReaderNotFound(reader.to_owned()))?;
        return nfc_reader.connect().map(CardConnection::Nfc);
    }
    context
        .ok_or(Error::PcscdNotRunning)?
        .connect(reader)
        .map(CardConnection::Pcsc)
}

/// Every reader with its card state: PC/SC's, then the NFC readers'. Without pcscd (no
/// `context`, or it fails) the NFC readers alone, if there are any; else PC/SC's error.
pub(crate) fn readers(
    context: Option<&PcscContext>,
    nfc: &NfcReaders,
) -> Result<Vec<ReaderInfo>, Error> {
    let nfc_readers = nfc.readers();
    let pcsc = match context {
        Some(context) => context.readers(),
        None => Err(Error::PcscdNotRunning),
    };
    match pcsc {
        Ok(mut all) => {
            all.extend(nfc_readers);
            Ok(all)
        }
        Err(e) if !nfc_readers.is_empty() => {
            tracing::debug!(error = %e, "PC/SC readers not listed; NFC readers only");
            Ok(nfc_readers)
        }
        Err(e) => Err(e),
    }
}
