//! A virtual card behind an [`eid_card::Transport`], in the same process: no pcscd needed.
//!
//! [`VirtualReader::new`] gives a transport (what the code under test uses) and a control handle
//! (what the test uses to pull the card out, put it back, or have another application reset it).
//! The transport behaves as a PC/SC connection does:
//!
//! - once the card has been removed, every `transmit` fails with [`Error::CardRemoved`], even
//!   after the card is back, until [`Transport::reconnect`] (which fails with [`Error::NoCard`]
//!   while the reader is empty);
//! - after [`VirtualReaderControl::reset_card`] (another application reset the card), every
//!   `transmit` fails with [`Error::CardReset`] until `reconnect`;
//! - `reconnect(true)` resets the card (selection and PIN state are lost, retry counters kept);
//! - commands longer than the reader's `max_command_len` fail with [`Error::CommandTooLong`] and
//!   answers longer than `max_response_len` with a PC/SC "insufficient buffer" error.
//!
//! Transactions are not exclusive (there is nobody else to exclude): `transaction()` forwards.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use eid_card::{Error, ReaderCapabilities, Reborrow, Transport};

use crate::engine::VirtualCard;

/// SCARD_E_INSUFFICIENT_BUFFER.
const SCARD_E_INSUFFICIENT_BUFFER: u32 = 0x8010_0008;

/// A virtual reader with a card in it, split into the transport and its control handle.
#[derive(Debug)]
pub struct VirtualReader {
    pub transport: VirtualTransport,
    pub control: VirtualReaderControl,
}

impl VirtualReader {
    /// A reader called `name`, with these capabilities, and `card` inserted and powered.
    pub fn new(name: impl Into<String>, card: VirtualCard, caps: ReaderCapabilities) -> Self {
        let mut card = card;
        card.power_on();
        let control = VirtualReaderControl {
            name: name.into(),
            caps,
            slot: Arc::new(Mutex::new(Slot {
                card: Some(card),
                removed: None,
                removals: 0,
                resets: 0,
                remove_after: None,
            })),
        };
        let transport = control.transport_unchecked();
        VirtualReader { transport, control }
    }

    /// The transport and the control handle.
    pub fn split(self) -> (VirtualTransport, VirtualReaderControl) {
        (self.transport, self.control)
    }
}

/// What the reader holds, shared by its transports and control handles.
#[derive(Debug)]
struct Slot {
    card: Option<VirtualCard>,
    /// The last card taken out, for [`VirtualReaderControl::reinsert`].
    removed: Option<VirtualCard>,
    /// Bumped at every removal: connections made before it are dead.
    removals: u64,
    /// Bumped at every reset: connections made before it must reconnect.
    resets: u64,
    /// APDUs still answered before the card disappears.
    remove_after: Option<u64>,
}

impl Slot {
    fn remove(&mut self) {
        if let Some(card) = self.card.take() {
            self.removed = Some(card);
            self.removals = self.removals.wrapping_add(1);
        }
        self.remove_after = None;
    }

    fn insert(&mut self, mut card: VirtualCard) {
        self.remove();
        card.power_on();
        self.card = Some(card);
    }
}

fn lock(slot: &Mutex<Slot>) -> MutexGuard<'_, Slot> {
    slot.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The test's side of a [`VirtualReader`]: cheap to clone, usable from any thread.
#[derive(Clone, Debug)]
pub struct VirtualReaderControl {
    name: String,
    caps: ReaderCapabilities,
    slot: Arc<Mutex<Slot>>,
}

impl VirtualReaderControl {
    fn transport_unchecked(&self) -> VirtualTransport {
        let slot = lock(&self.slot);
        VirtualTransport {
            name: self.name.clone(),
            caps: self.caps,
            slot: Arc::clone(&self.slot),
            removals: slot.removals,
            resets: slot.resets,
            atr: slot
                .card
                .as_ref()
                .map(|c| c.atr().to_vec())
                .unwrap_or_default(),
        }
    }

    /// Another connection to the reader (a second application, or a fresh connection after a
    /// removal). Fails with [`Error::NoCard`] when the reader is empty.
    pub fn connect(&self) -> Result<VirtualTransport, Error> {
        if !self.is_present() {
            return Err(Error::NoCard(self.name.clone()));
        }
        Ok(self.transport_unchecked())
    }

    /// Takes the card out. The card is kept for [`VirtualReaderControl::reinsert`].
    pub fn remove(&self) {
        lock(&self.slot).remove();
    }

    /// Puts a card in (taking out the one there, if any); it is powered on.
    pub fn insert(&self, card: VirtualCard) {
        lock(&self.slot).insert(card);
    }

    /// Puts the last removed card back (power-cycled: its PIN counters and files are as they
    /// were). Returns false if there was none to put back or a card is already in.
    pub fn reinsert(&self) -> bool {
        let mut slot = lock(&self.slot);
        if slot.card.is_some() {
            return false;
        }
        match slot.removed.take() {
            Some(card) => {
                slot.insert(card);
                true
            }
            None => false,
        }
    }

    /// The card disappears when the (n+1)-th APDU from now arrives: `n` more are answered, the
    /// next one fails with [`Error::CardRemoved`].
    pub fn remove_after_apdus(&self, n: u64) {
        lock(&self.slot).remove_after = Some(n);
    }

    /// Another application resets the card: our connections get [`Error::CardReset`] until they
    /// reconnect.
    pub fn reset_card(&self) {
        let mut slot = lock(&self.slot);
        if let Some(card) = slot.card.as_mut() {
            card.reset();
            slot.resets = slot.resets.wrapping_add(1);
        }
    }

    pub fn is_present(&self) -> bool {
        lock(&self.slot).card.is_some()
    }

    /// APDUs the card (in the reader or last removed) has processed.
    pub fn apdu_count(&self) -> u64 {
        self.with_card(|c| c.apdu_count()).unwrap_or(0)
    }

    /// Runs `f` on the card (in the reader, else the last removed one).
    pub fn with_card<R>(&self, f: impl FnOnce(&mut VirtualCard) -> R) -> Option<R> {
        let mut slot = lock(&self.slot);
        let slot = &mut *slot;
        slot.card.as_mut().or(slot.removed.as_mut()).map(f)
    }

    pub fn reader_name(&self) -> &str {
        &self.name
    }
}

/// The code-under-test's side of a [`VirtualReader`]: an [`eid_card::Transport`].
#[derive(Debug)]
pub struct VirtualTransport {
    name: String,
    caps: ReaderCapabilities,
    slot: Arc<Mutex<Slot>>,
    removals: u64,
    resets: u64,
    atr: Vec<u8>,
}

impl Transport for VirtualTransport {
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, Error> {
        let mut slot = lock(&self.slot);
        if slot.removals != self.removals || slot.card.is_none() {
            return Err(Error::CardRemoved);
        }
        if slot.resets != self.resets {
            return Err(Error::CardReset);
        }
        if command.len() > self.caps.max_command_len {
            return Err(Error::CommandTooLong {
                nc: command.len().saturating_sub(4),
            });
        }
        match slot.remove_after {
            Some(0) => {
                slot.remove();
                return Err(Error::CardRemoved);
            }
            Some(n) => slot.remove_after = Some(n - 1),
            None => {}
        }
        let card = slot.card.as_mut().ok_or(Error::CardRemoved)?;
        let response = card.process(command);
        if response.len() > self.caps.max_response_len {
            return Err(Error::Pcsc {
                code: SCARD_E_INSUFFICIENT_BUFFER,
                message: "response longer than the reader's buffer".to_owned(),
            });
        }
        Ok(response)
    }

    fn atr(&self) -> &[u8] {
        &self.atr
    }

    fn reader_name(&self) -> &str {
        &self.name
    }

    fn capabilities(&self) -> ReaderCapabilities {
        self.caps
    }

    fn transaction(&mut self) -> Result<Box<dyn Transport + '_>, Error> {
        Ok(Box::new(Reborrow(self)))
    }

    fn reconnect(&mut self, reset: bool) -> Result<(), Error> {
        let mut slot = lock(&self.slot);
        let slot = &mut *slot;
        let card = slot
            .card
            .as_mut()
            .ok_or_else(|| Error::NoCard(self.name.clone()))?;
        if reset {
            card.reset();
            slot.resets = slot.resets.wrapping_add(1);
        }
        self.atr = card.atr().to_vec();
        self.removals = slot.removals;
        self.resets = slot.resets;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profiles::iso7816_test::{self, Variant};

    const SELECT_APP: &[u8] = b"\x00\xA4\x04\x0C\x09\xF0EID-TEST";

    fn reader() -> (VirtualTransport, VirtualReaderControl) {
        let card = iso7816_test::card(Variant::Full).unwrap();
        VirtualReader::new(
            "Virtual Reader 0",
            card,
            ReaderCapabilities::extended(65_546),
        )
        .split()
    }

    #[test]
    fn transmits_and_reports_the_card() {
        let (mut t, control) = reader();
        assert_eq!(t.atr(), iso7816_test::atr(Variant::Full));
        assert_eq!(t.reader_name(), "Virtual Reader 0");
        assert_eq!(t.capabilities(), ReaderCapabilities::extended(65_546));
        assert_eq!(t.transmit(SELECT_APP).unwrap(), [0x90, 0x00]);
        let mut tx = t.transaction().unwrap();
        assert_eq!(
            tx.transmit(b"\x00\xB0\x81\x00\x02").unwrap()[2..],
            [0x90, 0x00]
        );
        drop(tx);
        assert_eq!(control.apdu_count(), 2);
    }

    #[test]
    fn removal_sticks_until_reconnect() {
        let (mut t, control) = reader();
        control.remove();
        assert!(matches!(t.transmit(SELECT_APP), Err(Error::CardRemoved)));
        assert!(matches!(t.reconnect(false), Err(Error::NoCard(_))));
        assert!(control.connect().is_err());
        assert!(control.reinsert());
        assert!(!control.reinsert());
        assert!(matches!(t.transmit(SELECT_APP), Err(Error::CardRemoved)));
        t.reconnect(false).unwrap();
        assert_eq!(t.transmit(SELECT_APP).unwrap(), [0x90, 0x00]);
    }

    #[test]
    fn remove_after_apdus_fails_the_next_one() {
        let (mut t, control) = reader();
        control.remove_after_apdus(2);
        assert!(t.transmit(SELECT_APP).is_ok());
        assert!(t.transmit(SELECT_APP).is_ok());
        assert!(matches!(t.transmit(SELECT_APP), Err(Error::CardRemoved)));
        assert!(!control.is_present());
        // The PIN counter survives removal: the same card comes back.
        control.reinsert();
        t.reconnect(false).unwrap();
        assert_eq!(t.transmit(b"\x00\x20\x00\x81").unwrap(), [0x63, 0xC3]);
        assert_eq!(
            t.transmit(b"\x00\x20\x00\x81\x08\x31\x31\x31\x31\xFF\xFF\xFF\xFF")
                .unwrap(),
            [0x63, 0xC2]
        );
        control.remove();
        control.reinsert();
        t.reconnect(false).unwrap();
        assert_eq!(t.transmit(b"\x00\x20\x00\x81").unwrap(), [0x63, 0xC2]);
    }

    #[test]
    fn reset_by_another_application() {
        let (mut t, control) = reader();
        let pin = b"\x00\x20\x00\x81\x08\x31\x32\x33\x34\xFF\xFF\xFF\xFF";
        assert_eq!(t.transmit(pin).unwrap(), [0x90, 0x00]);
        control.reset_card();
        assert!(matches!(t.transmit(SELECT_APP), Err(Error::CardReset)));
        t.reconnect(false).unwrap();
        // The reset dropped the verified state.
        assert_eq!(t.transmit(b"\x00\x20\x00\x81").unwrap(), [0x63, 0xC3]);
        assert_eq!(t.transmit(pin).unwrap(), [0x90, 0x00]);
        t.reconnect(true).unwrap();
        assert_eq!(t.transmit(b"\x00\x20\x00\x81").unwrap(), [0x63, 0xC3]);
    }

    #[test]
    fn insert_another_card_and_reader_limits() {
        let card = iso7816_test::card(Variant::Full).unwrap();
        let (mut t, control) =
            VirtualReader::new("short", card, ReaderCapabilities::SHORT_ONLY).split();
        assert!(matches!(
            t.transmit(&[0u8; 300]),
            Err(Error::CommandTooLong { .. })
        ));
        // 20 000 bytes asked for with extended Le: more than the reader carries back.
        t.transmit(b"\x00\xA4\x08\x0C\x04\x50\x00\x01\x02").unwrap();
        assert!(matches!(
            t.transmit(b"\x00\xB0\x00\x00\x00\x04\x00"),
            Err(Error::Pcsc { .. })
        ));
        control.insert(iso7816_test::card(Variant::T0).unwrap());
        assert!(matches!(t.transmit(SELECT_APP), Err(Error::CardRemoved)));
        t.reconnect(false).unwrap();
        assert_eq!(t.atr(), iso7816_test::atr(Variant::T0));
        let mut second = control.connect().unwrap();
        assert_eq!(second.transmit(SELECT_APP).unwrap(), [0x90, 0x00]);
    }
}
