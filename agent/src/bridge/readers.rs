//! What the bridge knows of readers and cards, kept up to date by the reader monitor (one
//! thread blocked in `SCardGetStatusChange`, no polling), and the event stream websites see.
//!
//! `/v1/status` answers from this cache: it never touches PC/SC, so it is fast and never waits
//! behind a card operation.

use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use eid_card::monitor::{Canceller, Event};
use serde::Serialize;
use tokio::sync::{broadcast, watch};

use crate::service::{self, Notice, Options};

/// A recognised card, as websites see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CardView {
    pub id: &'static str,
    pub name: &'static str,
}

/// One reader.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReaderView {
    pub name: String,
    pub card_present: bool,
    pub card: Option<CardView>,
}

/// One event of `/v1/events`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeEvent {
    /// The SSE event name: `reader-added`, `reader-removed`, `card-inserted`, `card-removed`.
    pub name: &'static str,
    pub data: serde_json::Value,
}

/// The shared reader table and event channel.
#[derive(Debug)]
pub struct Readers {
    table: RwLock<Vec<ReaderView>>,
    events: broadcast::Sender<BridgeEvent>,
    service_up: RwLock<bool>,
    canceller: Mutex<Option<Canceller>>,
    stopping: Mutex<bool>,
    /// Bumped after every change of the table or of `service_up` (the tray follows it).
    changed: watch::Sender<u64>,
}

impl Readers {
    pub fn new() -> Arc<Readers> {
        let (events, _) = broadcast::channel(64);
        Arc::new(Readers {
            table: RwLock::new(Vec::new()),
            events,
            service_up: RwLock::new(false),
            canceller: Mutex::new(None),
            stopping: Mutex::new(false),
            changed: watch::Sender::new(0),
        })
    }

    /// A receiver told of every later change of [`Readers::snapshot`] or
    /// [`Readers::service_up`] (the value is a change counter; read the state itself).
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    fn touch(&self) {
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// A copy of the reader table; empty while pcscd is down.
    pub fn snapshot(&self) -> Vec<ReaderView> {
        if !self.service_up() {
            return Vec::new();
        }
        self.table.read().map(|t| t.clone()).unwrap_or_default()
    }

    /// Whether pcscd answered the monitor.
    pub fn service_up(&self) -> bool {
        self.service_up.read().map(|up| *up).unwrap_or(false)
    }

    /// A receiver of every later event.
    pub fn subscribe(&self) -> broadcast::Receiver<BridgeEvent> {
        self.events.subscribe()
    }

    /// The reader names whose card was recognised as one of `ids`, then the other readers
    /// holding a card: the order in which card operations try them.
    pub fn candidates(&self, ids: &[&str]) -> Vec<String> {
        let table = self.snapshot();
        let mut first: Vec<String> = table
            .iter()
            .filter(|r| r.card.as_ref().is_some_and(|c| ids.contains(&c.id)))
            .map(|r| r.name.clone())
            .collect();
        let rest: Vec<String> = table
            .iter()
            .filter(|r| r.card_present && !first.contains(&r.name))
            .map(|r| r.name.clone())
            .collect();
        first.extend(rest);
        first
    }

    fn apply(&self, notice: &Notice) {
        let Ok(mut table) = self.table.write() else {
            return;
        };
        let event = match notice {
            Notice::Event(Event::ReaderAdded { reader }) => {
                if !table.iter().any(|r| &r.name == reader) {
                    table.push(ReaderView {
                        name: reader.clone(),
                        card_present: false,
                        card: None,
                    });
                }
                Some(("reader-added", serde_json::json!({ "reader": reader })))
            }
            Notice::Event(Event::ReaderRemoved { reader }) => {
                table.retain(|r| &r.name != reader);
                Some(("reader-removed", serde_json::json!({ "reader": reader })))
            }
            Notice::Event(Event::CardInserted { reader, .. }) => {
                if let Some(r) = table.iter_mut().find(|r| &r.name == reader) {
                    r.card_present = true;
                    r.card = None;
                }
                // Announced once recognised (or not): see below.
                None
            }
            Notice::Event(Event::CardRemoved { reader }) => {
                if let Some(r) = table.iter_mut().find(|r| &r.name == reader) {
                    r.card_present = false;
                    r.card = None;
                }
                Some(("card-removed", serde_json::json!({ "reader": reader })))
            }
            Notice::CardRecognised {
                reader,
                card_id,
                card_name,
            } => {
                let card = CardView {
                    id: card_id,
                    name: card_name,
                };
                if let Some(r) = table.iter_mut().find(|r| &r.name == reader) {
                    r.card = Some(card.clone());
                }
                Some((
                    "card-inserted",
                    serde_json::json!({ "reader": reader, "card": card }),
                ))
            }
            Notice::CardNotRecognised { reader, .. } => Some((
                "card-inserted",
                serde_json::json!({ "reader": reader, "card": null }),
            )),
            // The table is kept: once pcscd is back, the monitor reports what changed since
            // (status hides the table while the service is down).
            Notice::ServiceLost => {
                tracing::warn!("the smart card service (pcscd) stopped; waiting for it");
                if let Ok(mut up) = self.service_up.write() {
                    *up = false;
                }
                None
            }
            Notice::ServiceBack => {
                tracing::info!("the smart card service is back");
                if let Ok(mut up) = self.service_up.write() {
                    *up = true;
                }
                None
            }
        };
        drop(table);
        self.touch();
        if let Some((name, data)) = event {
            tracing::info!(event = name, %data, "reader event");
            // No subscriber is not an error.
            let _ = self.events.send(BridgeEvent { name, data });
        }
    }

    /// Starts the monitor thread. It follows pcscd going away and coming back, and retries
    /// every `retry` when pcscd is not running at all.
    pub fn start_monitor(self: &Arc<Self>, retry: Duration) -> std::io::Result<()> {
        let me = Arc::clone(self);
        std::thread::Builder::new()
            .name("reader-monitor".into())
            .spawn(move || {
                loop {
                    if me.is_stopping() {
                        return;
                    }
                    let options = Options {
                        identify_cards: true,
                        service_retry: retry,
                    };
                    let ready_target = Arc::clone(&me);
                    let notify_target = Arc::clone(&me);
                    let result = service::run(
                        options,
                        move |canceller| {
                            if let Ok(mut c) = ready_target.canceller.lock() {
                                *c = Some(canceller);
                            }
                            if let Ok(mut up) = ready_target.service_up.write() {
                                *up = true;
                            }
                            ready_target.touch();
                            // The monitor may have been asked to stop before it was ready.
                            if ready_target.is_stopping() {
                                ready_target.stop();
                            }
                        },
                        move |notice| notify_target.apply(&notice),
                    );
                    if let Ok(mut up) = me.service_up.write() {
                        *up = false;
                    }
                    me.touch();
                    match result {
                        Ok(()) => return,
                        Err(e) => {
                            tracing::warn!(error = %e, "reader monitor stopped; retrying");
                            if let Ok(mut table) = me.table.write() {
                                table.clear();
                            }
                            std::thread::sleep(retry);
                        }
                    }
                }
            })
            .map(|_| ())
    }

    fn is_stopping(&self) -> bool {
        self.stopping.lock().map(|s| *s).unwrap_or(true)
    }

    /// Stops the monitor thread.
    pub fn stop(&self) {
        if let Ok(mut s) = self.stopping.lock() {
            *s = true;
        }
        if let Ok(c) = self.canceller.lock()
            && let Some(c) = c.as_ref()
        {
            let _ = c.cancel();
        }
    }
}
