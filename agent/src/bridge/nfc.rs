//! NFC readers in the bridge: each device libnfc finds (or `EID_NFC_DEVICES` names) is opened
//! once, at start, and kept for the agent's lifetime; an [`NfcMonitor`] polls it and feeds the
//! reader table through the same notices as the PC/SC monitor (reader added, card inserted and
//! recognised, card removed, reader removed), and the card worker connects through the same
//! [`NfcReader`] ([`super::connect`]). One opened device per reader, shared behind its mutex:
//! the agent never opens a device twice, and the serial lock keeps other processes off it.
//!
//! Devices pcscd serves are never opened here (`eid_card::nfc::is_pcsc_owned`): PC/SC wins.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use eid_card::detect::Detector;
use eid_card::monitor::Event;
use eid_card::nfc::{NfcContext, NfcMonitor, NfcReader};
use eid_card::pcsc_transport::ReaderInfo;
use eid_card::{Session, Transport as _};

use super::readers::Readers;
use crate::service::Notice;

/// How often each NFC reader is polled for a card.
const POLL_PERIOD: Duration = Duration::from_millis(300);

/// The card state the monitor last reported, per reader name.
type Presence = Arc<Mutex<BTreeMap<String, Option<Vec<u8>>>>>;

/// The NFC readers the bridge opened.
#[derive(Default)]
pub(crate) struct NfcReaders {
    readers: Mutex<BTreeMap<String, NfcReader>>,
    monitors: Mutex<Vec<NfcMonitor>>,
    presence: Presence,
}

impl std::fmt::Debug for NfcReaders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<String> = self
            .readers
            .lock()
            .map(|r| r.keys().cloned().collect())
            .unwrap_or_default();
        f.debug_struct("NfcReaders")
            .field("readers", &names)
            .finish()
    }
}

impl NfcReaders {
    /// No NFC reader (tests, or libnfc unavailable).
    pub(crate) fn none() -> Arc<NfcReaders> {
        Arc::new(NfcReaders::default())
    }

    /// Opens every NFC device (libnfc's scan and `extra`) and starts polling each, feeding
    /// `table`. A device that cannot be opened is logged and skipped: NFC never stops the bridge.
    pub(crate) fn start(table: &Arc<Readers>, extra: &[String]) -> Arc<NfcReaders> {
        let nfc = NfcReaders::none();
        let mut context = match NfcContext::new() {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "libnfc unavailable: no NFC readers");
                return nfc;
            }
        };
        let devices = match context.list(extra) {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, "NFC devices not listed");
                return nfc;
            }
        };
        for device in devices {
            match context.open(&device.connstring) {
                Ok(reader) => nfc.watch(table, reader),
                Err(e) => {
                    tracing::warn!(reader = %device.name, error = %e, "NFC reader not opened");
                }
            }
        }
        nfc
    }

    fn watch(&self, table: &Arc<Readers>, reader: NfcReader) {
        let name = reader.name().to_owned();
        let table = Arc::clone(table);
        let presence = Arc::clone(&self.presence);
        let identify_with = reader.clone();
        let detector = Detector::with_known_cards();
        let monitor = NfcMonitor::spawn(reader.clone(), POLL_PERIOD, move |event| {
            record(&presence, &event);
            let inserted = match &event {
                Event::CardInserted { reader, .. } => Some(reader.clone()),
                _ => None,
            };
            table.apply(&Notice::Event(event));
            if let Some(reader) = inserted {
                table.apply(&identify(&identify_with, &detector, reader));
            }
        });
        match monitor {
            Ok(monitor) => {
                tracing::info!(reader = %name, model = %reader.model(), "NFC reader watched");
                if let Ok(mut readers) = self.readers.lock() {
                    readers.insert(name, reader);
                }
                if let Ok(mut monitors) = self.monitors.lock() {
                    monitors.push(monitor);
                }
            }
            Err(e) => tracing::warn!(reader = %name, error = %e, "NFC reader not watched"),
        }
    }

    /// The opened reader of that name.
    pub(crate) fn get(&self, name: &str) -> Option<NfcReader> {
        self.readers.lock().ok()?.get(name).cloned()
    }

    /// The NFC readers as PC/SC lists its readers (card state as the monitor last saw it).
    pub(crate) fn readers(&self) -> Vec<ReaderInfo> {
        let presence = self.presence.lock().unwrap_or_else(PoisonError::into_inner);
        presence
            .iter()
            .map(|(name, atr)| ReaderInfo {
                name: name.clone(),
                card_present: atr.is_some(),
                exclusive: false,
                atr: atr.clone().unwrap_or_default(),
            })
            .collect()
    }

    /// Stops every monitor (each within one poll).
    pub(crate) fn stop(&self) {
        let monitors =
            std::mem::take(&mut *self.monitors.lock().unwrap_or_else(PoisonError::into_inner));
        drop(monitors);
    }
}

fn record(presence: &Presence, event: &Event) {
    let mut presence = presence.lock().unwrap_or_else(PoisonError::into_inner);
    match event {
        Event::ReaderAdded { reader } => {
            presence.entry(reader.clone()).or_insert(None);
        }
        Event::ReaderRemoved { reader } => {
            presence.remove(reader);
        }
        Event::CardInserted { reader, atr } => {
            presence.insert(reader.clone(), Some(atr.clone()));
        }
        Event::CardRemoved { reader } => {
            presence.insert(reader.clone(), None);
        }
    }
}

/// Recognises the card just activated, as the PC/SC monitor does for its readers.
fn identify(reader: &NfcReader, detector: &Detector, name: String) -> Notice {
    let found = reader.connect().and_then(|mut transport| {
        let capabilities = transport.capabilities();
        let mut session = Session::new(&mut transport);
        Ok((detector.detect(&mut session)?, capabilities))
    });
    match found {
        Ok((found, capabilities)) => Notice::CardRecognised {
            reader: name,
            card_id: found.kind.id,
            card_name: found.kind.name,
            capabilities,
        },
        Err(e) => Notice::CardNotRecognised {
            reader: name,
            code: e.code(),
            message: e.to_string(),
        },
    }
}
