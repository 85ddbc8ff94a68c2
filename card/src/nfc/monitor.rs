//! [`NfcMonitor`]: card arrival and removal on one NFC reader, by polling.
//!
//! libnfc has no event to wait on, so a thread of its own polls the reader every `period` and
//! reports what changed as the PC/SC monitor does ([`Event`]): the reader first, then a card
//! inserted (with its synthesised ATR) or removed, and the reader removed when the device goes
//! away (the thread then ends). A card taken away and brought back between two polls is reported
//! as removed then inserted (each activation has its own generation).
//!
//! Polling never disturbs an operation: it skips its turn while a transaction is open on the
//! reader or while another thread holds the device, and otherwise only checks presence (an
//! ISO-DEP R(NAK)) of a card already activated.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use super::NfcReader;
use crate::Error;
use crate::monitor::Event;

/// How often the stop flag is looked at while sleeping.
const STOP_CHECK: Duration = Duration::from_millis(20);

/// A polling thread on one NFC reader; stopped (and joined) by [`NfcMonitor::stop`] or drop.
pub struct NfcMonitor {
    reader: String,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for NfcMonitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NfcMonitor")
            .field("reader", &self.reader)
            .finish()
    }
}

impl NfcMonitor {
    /// Starts polling `reader` every `period`; `on_event` is called on the polling thread for
    /// every change, starting with [`Event::ReaderAdded`].
    pub fn spawn(
        reader: NfcReader,
        period: Duration,
        mut on_event: impl FnMut(Event) + Send + 'static,
    ) -> Result<NfcMonitor, Error> {
        let stop = Arc::new(AtomicBool::new(false));
        let name = reader.name().to_owned();
        let thread = std::thread::Builder::new()
            .name(format!("nfc-monitor {name}"))
            .spawn({
                let stop = Arc::clone(&stop);
                move || run(&reader, period, &stop, &mut on_event)
            })
            .map_err(|e| Error::ReaderFault(format!("cannot start the NFC monitor: {e}")))?;
        Ok(NfcMonitor {
            reader: name,
            stop,
            thread: Some(thread),
        })
    }

    /// The reader watched.
    pub fn reader(&self) -> &str {
        &self.reader
    }

    /// Whether the thread has ended (the reader was removed, or the monitor stopped).
    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(JoinHandle::is_finished)
    }

    /// Stops the thread and waits for it (at most one poll: libnfc's calls are bounded).
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!(reader = %self.reader, "the NFC monitor thread panicked");
        }
    }
}

impl Drop for NfcMonitor {
    fn drop(&mut self) {
        self.stop();
    }
}

fn run(reader: &NfcReader, period: Duration, stop: &AtomicBool, on_event: &mut dyn FnMut(Event)) {
    let name = reader.name().to_owned();
    on_event(Event::ReaderAdded {
        reader: name.clone(),
    });
    // The generation of the card we last reported inserted.
    let mut present: Option<u64> = None;
    let mut last_error: Option<&'static str> = None;
    while !stop.load(Ordering::SeqCst) {
        let polled = if reader.is_busy() {
            None
        } else {
            reader.try_poll()
        };
        match polled {
            // Busy: the operation in progress finds out about removal itself.
            None => {}
            Some(Ok(Some(target))) => {
                last_error = None;
                if present != Some(target.generation) {
                    if present.is_some() {
                        on_event(Event::CardRemoved {
                            reader: name.clone(),
                        });
                    }
                    present = Some(target.generation);
                    on_event(Event::CardInserted {
                        reader: name.clone(),
                        atr: target.atr,
                    });
                }
            }
            Some(Ok(None)) => {
                last_error = None;
                if present.take().is_some() {
                    on_event(Event::CardRemoved {
                        reader: name.clone(),
                    });
                }
            }
            Some(Err(Error::ReaderRemoved)) => {
                if present.take().is_some() {
                    on_event(Event::CardRemoved {
                        reader: name.clone(),
                    });
                }
                on_event(Event::ReaderRemoved { reader: name });
                return;
            }
            // A silent or noisy reader: said once, then tried again every period.
            Some(Err(e)) if last_error != Some(e.code()) => {
                tracing::warn!(reader = %name, error = %e, "NFC reader poll failed");
                last_error = Some(e.code());
            }
            Some(Err(_)) => {}
        }
        let mut slept = Duration::ZERO;
        while slept < period && !stop.load(Ordering::SeqCst) {
            std::thread::sleep(STOP_CHECK.min(period));
            slept += STOP_CHECK.min(period);
        }
    }
}
