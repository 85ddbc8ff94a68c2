//! [`NfcTransport`]: one connection to the card activated in an NFC reader's field.
//!
//! Each APDU locks the reader's device for one InDataExchange (libnfc's
//! `initiator_transceive_bytes`, bounded by [`super::EXCHANGE_TIMEOUT`]); between APDUs the
//! monitor may check the card's presence (an ISO-DEP R(NAK), which leaves the card's state
//! alone), except inside a transaction, where it stays away altogether.
//!
//! There is no PC/SC sharing to arbitrate: the agent is the device's only user (see the module
//! above), so a transaction is only the "operation in progress" mark, and a reset is the RF
//! field switched off and on, which powers the card down as pulling it out would.

use std::sync::atomic::Ordering;
use std::time::Duration;

use nfc1::{Property, Timeout};

use super::{
    DeviceState, EXCHANGE_TIMEOUT, NfcReader, NfcTarget, PN53X_MAX_COMMAND, is_target_loss,
};
use crate::Error;
use crate::transport::{ReaderCapabilities, Transport};

/// How long the field stays off for a reset (ISO/IEC 14443-3 asks at least 5 ms).
const FIELD_RESET: Duration = Duration::from_millis(10);
/// The receive buffer handed to libnfc: its frame size (it refuses to write past it).
const RECEIVE_BUFFER: usize = super::PN53X_FRAME_MAX;

/// A connection to the card in an NFC reader ([`NfcReader::connect`]).
pub struct NfcTransport {
    reader: NfcReader,
    target: NfcTarget,
    caps: ReaderCapabilities,
}

impl std::fmt::Debug for NfcTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NfcTransport")
            .field("reader", &self.reader.name())
            .field("kind", &self.target.kind)
            .finish()
    }
}

impl NfcTransport {
    pub(super) fn new(reader: NfcReader, target: NfcTarget) -> Self {
        let caps = reader.capabilities();
        NfcTransport {
            reader,
            target,
            caps,
        }
    }

    /// The reader this connection goes through.
    pub fn reader(&self) -> &NfcReader {
        &self.reader
    }

    /// The card as it was activated.
    pub fn target(&self) -> &NfcTarget {
        &self.target
    }

    /// Ends the connection. The card stays activated (another connection may follow).
    pub fn disconnect(self) -> Result<(), Error> {
        Ok(())
    }

    fn exchange(&mut self, command: &[u8]) -> Result<Vec<u8>, Error> {
        if command.len() > PN53X_MAX_COMMAND {
            return Err(Error::CommandTooLong {
                nc: command.len().saturating_sub(5),
            });
        }
        let mut state = self.reader.lock();
        if state.generation != self.target.generation || state.target.is_none() {
            // The monitor or another connection found the card gone (or replaced) meanwhile.
            return Err(Error::CardRemoved);
        }
        let device = state.device.as_mut().ok_or(Error::ReaderRemoved)?;
        let result = device.initiator_transceive_bytes(
            command,
            RECEIVE_BUFFER,
            Timeout::Duration(EXCHANGE_TIMEOUT),
        );
        match result {
            Ok(response) if response.len() >= 2 => Ok(response),
            // No status word: the card's fault, unless it is leaving the field.
            Ok(_) => match self.still_there(&mut state)? {
                true => Err(Error::ProtocolViolation("an answer without a status word")),
                false => Err(Error::CardRemoved),
            },
            Err(nfc1::Error::BufferOverflow) => Err(Error::ProtocolViolation(
                "the card answered more than the reader can carry",
            )),
            Err(e) if is_target_loss(e) => match self.still_there(&mut state)? {
                // The card is there but the exchange failed: it did not answer in time or
                // answered against ISO-DEP.
                true => Err(Error::CardUnresponsive),
                false => Err(Error::CardRemoved),
            },
            Err(e) => Err(self.reader.fail(&mut state, e)),
        }
    }

    /// libnfc's presence check after a failed exchange. `false` (and the card forgotten) when
    /// it is gone; reader failures are errors.
    fn still_there(&self, state: &mut DeviceState) -> Result<bool, Error> {
        let device = state.device.as_mut().ok_or(Error::ReaderRemoved)?;
        match device.initiator_target_is_present_any() {
            Ok(()) => Ok(true),
            Err(e) if is_target_loss(e) => {
                tracing::debug!(reader = %self.reader.name(), "card left the field");
                state.target = None;
                state.generation += 1;
                Ok(false)
            }
            Err(e) => Err(self.reader.fail(state, e)),
        }
    }

    /// Activates the card again, after switching the field off and on when `reset`.
    ///
    /// A reset the agent makes (no PIN stays verified after an operation, a kiosk session that
    /// idled out) is not the card leaving: if a card answers at once it keeps the activation's
    /// generation, so the monitor reports no removal and insertion (which would start a new
    /// kiosk session, or end the one whose operation just reset the card). Only a card that is
    /// gone after the reset is a removal.
    fn reactivate(&mut self, reset: bool) -> Result<(), Error> {
        let mut state = self.reader.lock();
        let kept =
            (reset && state.generation == self.target.generation).then_some(self.target.generation);
        if reset {
            let device = state.device.as_mut().ok_or(Error::ReaderRemoved)?;
            let field = device
                .set_property_bool(Property::ActivateField, false)
                .and_then(|()| {
                    std::thread::sleep(FIELD_RESET);
                    device.set_property_bool(Property::ActivateField, true)
                });
            if let Err(e) = field {
                return Err(self.reader.fail(&mut state, e));
            }
            state.target = None;
            state.generation += 1;
        }
        match self.reader.poll_locked(&mut state)? {
            Some(mut target) => {
                if let Some(generation) = kept {
                    state.generation = generation;
                    target.generation = generation;
                    if let Some(selected) = state.target.as_mut() {
                        selected.info.generation = generation;
                    }
                }
                self.target = target;
                Ok(())
            }
            None => Err(Error::CardRemoved),
        }
    }
}

impl Transport for NfcTransport {
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, Error> {
        self.exchange(command)
    }

    fn atr(&self) -> &[u8] {
        &self.target.atr
    }

    fn reader_name(&self) -> &str {
        self.reader.name()
    }

    fn capabilities(&self) -> ReaderCapabilities {
        self.caps
    }

    fn transaction(&mut self) -> Result<Box<dyn Transport + '_>, Error> {
        self.reader.shared.busy.fetch_add(1, Ordering::SeqCst);
        Ok(Box::new(Operation(self)))
    }

    /// Without `reset`: the same card if it is still in the field (or the card now there).
    /// With `reset`: the field goes off and on and the card is activated afresh.
    fn reconnect(&mut self, reset: bool) -> Result<(), Error> {
        self.reactivate(reset)
    }
}

/// An operation in progress ([`Transport::transaction`]): the monitor does not probe the card
/// until it is dropped.
struct Operation<'a>(&'a mut NfcTransport);

impl Drop for Operation<'_> {
    fn drop(&mut self) {
        self.0.reader.shared.busy.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Transport for Operation<'_> {
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, Error> {
        self.0.exchange(command)
    }
    fn atr(&self) -> &[u8] {
        self.0.atr()
    }
    fn reader_name(&self) -> &str {
        self.0.reader_name()
    }
    fn capabilities(&self) -> ReaderCapabilities {
        self.0.caps
    }
    fn transaction(&mut self) -> Result<Box<dyn Transport + '_>, Error> {
        Ok(Box::new(crate::Reborrow(self)))
    }
    fn reconnect(&mut self, reset: bool) -> Result<(), Error> {
        self.0.reactivate(reset)
    }
}
