//! The agent's long-running loop over reader events. The bridge (next issue) subscribes to the
//! same events; today they are logged and printed.

use std::time::Duration;

use eid_card::detect::Detector;
use eid_card::monitor::{Canceller, Event, Monitor};
use eid_card::pcsc_transport::PcscContext;
use eid_card::{Error, ReaderCapabilities};

use crate::readers::identify;

/// What the loop tells its observer.
#[derive(Debug, serde::Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Notice {
    Event(Event),
    /// A card was recognised after insertion.
    CardRecognised {
        reader: String,
        card_id: &'static str,
        card_name: &'static str,
        /// What the reader carries (keypad, interface), learned on the recognising connection.
        capabilities: ReaderCapabilities,
    },
    /// A card was inserted but could not be recognised.
    CardNotRecognised {
        reader: String,
        code: &'static str,
        message: String,
    },
    /// pcscd went away; the loop waits for it.
    ServiceLost,
    /// pcscd is back.
    ServiceBack,
}

/// Options of the loop.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Recognise each card inserted (connects to it; off for a pure event monitor).
    pub identify_cards: bool,
    /// How often to look for pcscd while it is down.
    pub service_retry: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            identify_cards: true,
            service_retry: Duration::from_millis(500),
        }
    }
}

/// Runs until cancelled (returns `Ok`) or until an error the loop cannot get past.
/// `ready` receives a canceller as soon as the monitor is set up.
pub fn run(
    options: Options,
    ready: impl FnOnce(Canceller),
    mut notify: impl FnMut(Notice),
) -> Result<(), Error> {
    let context = PcscContext::establish()?;
    let detector = Detector::with_known_cards();
    let mut monitor = Monitor::new(&context)?;
    let mut context = context;
    ready(monitor.canceller());
    let mut pending = monitor.initial_events()?;
    loop {
        for event in pending.drain(..) {
            let inserted = match &event {
                Event::CardInserted { reader, .. } => Some(reader.clone()),
                _ => None,
            };
            notify(Notice::Event(event));
            if let (Some(reader), true) = (inserted, options.identify_cards) {
                match identify(&context, &detector, &reader) {
                    Ok((found, capabilities)) => notify(Notice::CardRecognised {
                        reader,
                        card_id: found.kind.id,
                        card_name: found.kind.name,
                        capabilities,
                    }),
                    Err(e) => notify(Notice::CardNotRecognised {
                        reader,
                        code: e.code(),
                        message: e.to_string(),
                    }),
                }
            }
        }
        match monitor.wait(None) {
            Ok(events) => pending = events,
            Err(Error::Cancelled) => return Ok(()),
            Err(Error::PcscdStopped) => {
                notify(Notice::ServiceLost);
                // Waits as long as it takes, one attempt per `service_retry`; the canceller
                // ends this wait too.
                loop {
                    match monitor.reestablish(options.service_retry, 1) {
                        Ok(events) => {
                            pending = events;
                            break;
                        }
                        Err(Error::PcscdNotRunning) => continue,
                        Err(Error::Cancelled) => return Ok(()),
                        Err(e) => return Err(e),
                    }
                }
                context = PcscContext::establish()?;
                notify(Notice::ServiceBack);
            }
            Err(e) => return Err(e),
        }
    }
}
