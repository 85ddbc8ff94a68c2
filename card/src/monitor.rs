//! Reader and card hot-plug, from PC/SC's blocking status-change wait.
//!
//! [`Monitor::wait`] blocks in `SCardGetStatusChange` on every reader plus the PnP pseudo-reader
//! `\\?PnP?\Notification` until something changes, then reports what changed as [`Event`]s. There
//! is no polling: an idle agent sleeps in pcscd's wait. [`Canceller::cancel`] (from any thread)
//! wakes the wait with [`Error::Cancelled`] so the agent can shut down promptly.
//!
//! A card removed and re-inserted between two waits is still reported as removed then inserted:
//! pcsc-lite counts card events in the upper 16 bits of the reader's event state.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use pcsc::{Context, ReaderState, State};

use crate::Error;
use crate::pcsc_transport::{PcscContext, connected_error, pnp_notification};

/// What changed.
#[derive(Clone, PartialEq, Eq, Debug, serde::Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum Event {
    ReaderAdded {
        reader: String,
    },
    ReaderRemoved {
        reader: String,
    },
    CardInserted {
        reader: String,
        #[serde(serialize_with = "crate::hex_serde::upper")]
        atr: Vec<u8>,
    },
    CardRemoved {
        reader: String,
    },
}

/// What a monitor shares with its cancellers.
struct Shared {
    /// The PC/SC context the monitor currently waits on (replaced when pcscd comes back).
    context: Mutex<Context>,
    cancelled: AtomicBool,
    /// The monitor is in, or about to enter, `SCardGetStatusChange`.
    waiting: AtomicBool,
}

/// Stops a [`Monitor`] from another thread: a blocked [`Monitor::wait`] returns
/// [`Error::Cancelled`], and so does every later `wait` or [`Monitor::reestablish`]. It keeps
/// working across pcscd restarts (it follows the monitor's current context).
#[derive(Clone)]
pub struct Canceller(Arc<Shared>);

impl std::fmt::Debug for Canceller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Canceller")
    }
}

impl Canceller {
    /// How long `cancel` keeps knocking while the monitor is between its flag check and the
    /// blocking call (`SCardCancel` only interrupts a wait already in progress).
    const KNOCK: Duration = Duration::from_millis(10);
    const KNOCKS: usize = 100;

    pub fn cancel(&self) -> Result<(), Error> {
        self.0.cancelled.store(true, Ordering::SeqCst);
        for _ in 0..Self::KNOCKS {
            if !self.0.waiting.load(Ordering::SeqCst) {
                return Ok(());
            }
            let context = self
                .0
                .context
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone();
            match context.cancel() {
                Ok(()) => {}
                // pcscd is gone: there is no wait to interrupt; the flag stops the monitor.
                Err(
                    pcsc::Error::NoService | pcsc::Error::InvalidHandle | pcsc::Error::CommError,
                ) => {
                    return Ok(());
                }
                Err(e) => return Err(e.into()),
            }
            std::thread::sleep(Self::KNOCK);
        }
        Ok(())
    }
}

/// What the monitor last knew of one reader.
#[derive(Clone, Debug)]
struct Known {
    present: bool,
    count: u32,
}

/// Watches every reader for card insertion and removal, and the reader list for hot-plug.
pub struct Monitor {
    context: Context,
    shared: Arc<Shared>,
    known: BTreeMap<String, Known>,
    /// The reader states handed to `SCardGetStatusChange`: the PnP pseudo-reader, then readers.
    states: Vec<ReaderState>,
}

impl std::fmt::Debug for Monitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Monitor")
            .field("readers", &self.known.keys())
            .finish()
    }
}

impl Monitor {
    /// Starts watching. [`Monitor::initial_events`] tells what is there now.
    pub fn new(context: &PcscContext) -> Result<Self, Error> {
        let mut states = vec![ReaderState::new(
            pnp_notification().to_owned(),
            State::UNAWARE,
        )];
        for name in context.reader_names()? {
            let c_name = CString::new(name.as_str()).map_err(|_| Error::ReaderNotFound(name))?;
            states.push(ReaderState::new(c_name, State::UNAWARE));
        }
        Ok(Monitor {
            context: context.raw().clone(),
            shared: Arc::new(Shared {
                context: Mutex::new(context.raw().clone()),
                cancelled: AtomicBool::new(false),
                waiting: AtomicBool::new(false),
            }),
            known: BTreeMap::new(),
            states,
        })
    }

    /// The present state as events: every reader as added, every card as inserted.
    pub fn initial_events(&mut self) -> Result<Vec<Event>, Error> {
        self.context
            .get_status_change(Duration::ZERO, &mut self.states)
            .or_else(ignore_timeout)?;
        let mut events = Vec::new();
        for state in self.states.iter_mut().skip(1) {
            events.extend(announce(&mut self.known, state));
        }
        if let Some(pnp) = self.states.first_mut() {
            pnp.sync_current_state();
        }
        Ok(events)
    }

    /// A handle that can wake [`Monitor::wait`] from another thread.
    pub fn canceller(&self) -> Canceller {
        Canceller(Arc::clone(&self.shared))
    }

    fn is_cancelled(&self) -> bool {
        self.shared.cancelled.load(Ordering::SeqCst)
    }

    /// Blocks until a reader or card changes (or `timeout` passes: [`Error::Timeout`], or the
    /// wait is cancelled: [`Error::Cancelled`]), and returns what changed. May return an empty
    /// list when pcscd woke us for a change that is not an event here.
    ///
    /// [`Error::PcscdStopped`] means pcscd went away: call [`Monitor::reestablish`] to wait for it.
    pub fn wait(&mut self, timeout: Option<Duration>) -> Result<Vec<Event>, Error> {
        self.shared.waiting.store(true, Ordering::SeqCst);
        if self.is_cancelled() {
            self.shared.waiting.store(false, Ordering::SeqCst);
            return Err(Error::Cancelled);
        }
        let result = self.context.get_status_change(timeout, &mut self.states);
        self.shared.waiting.store(false, Ordering::SeqCst);
        match result {
            Ok(()) => {}
            // A context pcscd no longer knows (it restarted) is as good as a stopped service.
            Err(pcsc::Error::InvalidHandle) => return Err(Error::PcscdStopped),
            Err(e) => return Err(connected_error(e)),
        }
        let pnp_changed = self
            .states
            .first()
            .is_some_and(|s| s.event_state().contains(State::CHANGED));
        let mut events = self.diff(true);
        let reader_gone = self.states.iter().skip(1).any(|s| {
            s.event_state()
                .intersects(State::UNKNOWN | State::UNAVAILABLE)
        });
        if let Some(pnp) = self.states.first_mut() {
            pnp.sync_current_state();
        }
        if pnp_changed || reader_gone {
            events.extend(self.rebuild_states()?);
        }
        Ok(events)
    }

    /// Compares what pcscd just reported for each reader with what we knew, records it, and
    /// returns the card events. With `only_changed`, readers pcscd did not flag are skipped.
    fn diff(&mut self, only_changed: bool) -> Vec<Event> {
        let mut events = Vec::new();
        for state in self.states.iter_mut().skip(1) {
            let es = state.event_state();
            if only_changed && !es.contains(State::CHANGED) {
                continue;
            }
            if es.intersects(State::UNKNOWN | State::UNAVAILABLE) {
                // The reader went away; the reader-list rebuild reports it.
                continue;
            }
            let reader = state.name().to_string_lossy().into_owned();
            let present = es.contains(State::PRESENT);
            let count = state.event_count();
            let before = self.known.get(&reader).cloned().unwrap_or(Known {
                present: false,
                count,
            });
            if before.present && (!present || count != before.count) {
                events.push(Event::CardRemoved {
                    reader: reader.clone(),
                });
            }
            if present && (!before.present || count != before.count) {
                events.push(Event::CardInserted {
                    reader: reader.clone(),
                    atr: state.atr().to_vec(),
                });
            }
            self.known.insert(reader, Known { present, count });
            state.sync_current_state();
        }
        events
    }

    /// After [`Error::PcscdStopped`]: waits until pcscd is back (checking every `retry`, the only
    /// place that polls, and only while the service is down), then reports the difference.
    /// [`Error::PcscdNotRunning`] after `attempts`; [`Error::Cancelled`] once cancelled.
    pub fn reestablish(&mut self, retry: Duration, attempts: usize) -> Result<Vec<Event>, Error> {
        for _ in 0..attempts {
            if self.is_cancelled() {
                return Err(Error::Cancelled);
            }
            match PcscContext::establish() {
                Ok(ctx) => {
                    self.context = ctx.raw().clone();
                    *self
                        .shared
                        .context
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner) = ctx.raw().clone();
                    // Every state is stale: start from "unaware" so the next wait compares
                    // against what pcscd reports now.
                    for state in &mut self.states {
                        *state = ReaderState::new(state.name().to_owned(), State::UNAWARE);
                    }
                    let mut events = self.rebuild_states()?;
                    // Read every reader now: a new pcscd counts card events afresh, so what
                    // changed while it was down is only visible by comparing with what we knew.
                    self.context
                        .get_status_change(Duration::ZERO, &mut self.states)
                        .or_else(ignore_timeout)?;
                    events.extend(self.diff(false));
                    if let Some(pnp) = self.states.first_mut() {
                        pnp.sync_current_state();
                    }
                    return Ok(events);
                }
                Err(Error::PcscdNotRunning) => std::thread::sleep(retry),
                Err(e) => return Err(e),
            }
        }
        Err(Error::PcscdNotRunning)
    }

    /// Re-reads the reader list; returns added/removed readers (and the removal of their cards).
    fn rebuild_states(&mut self) -> Result<Vec<Event>, Error> {
        let names = match self.context.list_readers_owned() {
            Ok(names) => names,
            Err(pcsc::Error::NoReadersAvailable) => Vec::new(),
            Err(e) => return Err(e.into()),
        };
        let names: Vec<String> = names
            .iter()
            .map(|n| n.to_string_lossy().into_owned())
            .collect();
        let mut events = Vec::new();
        let gone: Vec<String> = self
            .known
            .keys()
            .filter(|k| !names.contains(k))
            .cloned()
            .collect();
        for reader in gone {
            if self.known.remove(&reader).is_some_and(|k| k.present) {
                events.push(Event::CardRemoved {
                    reader: reader.clone(),
                });
            }
            events.push(Event::ReaderRemoved { reader });
        }
        // The PnP pseudo-reader keeps the state we last acknowledged, or the wait would return at
        // once, forever.
        let pnp_current = self
            .states
            .first()
            .map(|s| s.current_state())
            .unwrap_or(State::UNAWARE);
        let mut states = vec![ReaderState::new(pnp_notification().to_owned(), pnp_current)];
        for name in &names {
            let previous = self
                .states
                .iter()
                .find(|s| s.name().to_string_lossy() == name.as_str());
            let current = previous
                .map(|s| s.current_state())
                .unwrap_or(State::UNAWARE);
            let c_name =
                CString::new(name.as_str()).map_err(|_| Error::ReaderNotFound(name.clone()))?;
            states.push(ReaderState::new(c_name, current));
        }
        let new_readers: Vec<String> = names
            .iter()
            .filter(|n| !self.known.contains_key(*n))
            .cloned()
            .collect();
        self.states = states;
        if !new_readers.is_empty() {
            // Learn the new readers' card state now, so an inserted card is reported with them.
            self.context
                .get_status_change(Duration::ZERO, &mut self.states)
                .or_else(ignore_timeout)?;
            for state in self.states.iter_mut().skip(1) {
                let reader = state.name().to_string_lossy().into_owned();
                if !new_readers.contains(&reader) {
                    continue;
                }
                events.extend(announce(&mut self.known, state));
            }
        }
        Ok(events)
    }
}

/// A reader seen for the first time: it is added, with its card if one is in it. Records what we
/// now know and acknowledges the state.
fn announce(known: &mut BTreeMap<String, Known>, state: &mut ReaderState) -> Vec<Event> {
    let reader = state.name().to_string_lossy().into_owned();
    let present = state.event_state().contains(State::PRESENT);
    let mut events = vec![Event::ReaderAdded {
        reader: reader.clone(),
    }];
    if present {
        events.push(Event::CardInserted {
            reader: reader.clone(),
            atr: state.atr().to_vec(),
        });
    }
    known.insert(
        reader,
        Known {
            present,
            count: state.event_count(),
        },
    );
    state.sync_current_state();
    events
}

fn ignore_timeout(e: pcsc::Error) -> Result<(), Error> {
    match e {
        pcsc::Error::Timeout => Ok(()),
        e => Err(e.into()),
    }
}
