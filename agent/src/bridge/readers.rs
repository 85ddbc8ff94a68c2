//! What the bridge knows of readers and cards, kept up to date by the reader monitor (one
//! thread blocked in `SCardGetStatusChange`, no polling), and the event stream websites see.
//!
//! `/v1/status` answers from this cache: it never touches PC/SC, so it is fast and never waits
//! behind a card operation.
//!
//! # Sessions
//! Every card presence in a reader is a session: it starts when the card is inserted, with an id
//! of 128 random bits (hex), and ends when the card is removed, the reader goes away, the idle
//! timeout of kiosk mode passes, or the agent stops; it never starts again for the same
//! presence (after an idle timeout the card must be re-inserted). A card operation is bound to
//! one session ([`Readers::bind`], or [`Readers::adopt`] when the worker picks the reader
//! itself) and registers its [`Cancel`] there: ending the session cancels the operation, running
//! or queued, and closes its dialogs; its answer is then the session's end ([`EndReason::error`])
//! and never data of the card. The table keeps nothing read from a card but its kind (`card`):
//! no name, no number, no certificate.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use eid_card::monitor::{Canceller, Event};
use eid_card::{Interface, ReaderCapabilities};
use serde::Serialize;
use tokio::sync::{broadcast, watch};

use super::error::ApiError;
use crate::prompt::Cancel;
use crate::service::{self, Notice, Options};

/// Why a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    CardRemoved,
    IdleTimeout,
    ReaderRemoved,
    AgentStopping,
}

impl EndReason {
    /// The `reason` of the `session-ended` event.
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::CardRemoved => "card-removed",
            EndReason::IdleTimeout => "idle-timeout",
            EndReason::ReaderRemoved => "reader-removed",
            EndReason::AgentStopping => "agent-stopping",
        }
    }

    /// What an operation bound to the ended session answers.
    pub fn error(self) -> ApiError {
        match self {
            EndReason::CardRemoved => ApiError::new(
                "card-removed",
                "the card was removed; its session has ended",
            ),
            EndReason::ReaderRemoved => ApiError::new(
                "reader-removed",
                "the reader was disconnected; the card's session has ended",
            ),
            EndReason::IdleTimeout => ApiError::new(
                "session-ended",
                "the card's session ended after a time without operations",
            ),
            EndReason::AgentStopping => ApiError::new(
                "session-ended",
                "the agent is stopping; the session has ended",
            ),
        }
    }
}

/// How a request names its card: by reader, by session, both or neither.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Target {
    pub reader: Option<String>,
    pub session: Option<String>,
}

/// The session a job is bound to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    pub reader: String,
    pub session: String,
}

/// A job's [`Cancel`] registered with a session; unregistered when dropped.
#[derive(Debug)]
pub struct Registration {
    readers: Arc<Readers>,
    session: String,
    key: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Ok(mut book) = self.readers.book.lock()
            && let Some(live) = book.live.get_mut(&self.session)
        {
            live.jobs.retain(|(k, _)| *k != self.key);
            live.last_used = Instant::now();
        }
    }
}

/// Sessions ended lately, remembered so that a stale id gets its reason (bounded).
const ENDED_KEPT: usize = 256;

#[derive(Debug)]
struct Live {
    reader: String,
    last_used: Instant,
    jobs: Vec<(u64, Cancel)>,
}

#[derive(Debug, Default)]
struct Book {
    /// Session id -> its state.
    live: HashMap<String, Live>,
    ended: VecDeque<(String, EndReason)>,
    next_key: u64,
}

/// 128 random bits, hex; `None` without randomness (the card then gets no session, and no
/// operation can be bound to it: a guessable id would be worse).
fn new_session_id() -> Option<String> {
    let mut bytes = [0u8; 16];
    match openssl::rand::rand_bytes(&mut bytes) {
        Ok(()) => Some(hex::encode(bytes)),
        Err(e) => {
            tracing::error!(error = %e, "no random bytes for a session id");
            None
        }
    }
}

fn transport_of(reader: &str) -> &'static str {
    if reader.starts_with("NFC ") {
        "nfc"
    } else {
        "pcsc"
    }
}

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
    /// The current card presence's session; `None` without a card, or once the session ended
    /// (idle timeout) while the card stayed in.
    pub session: Option<String>,
    /// `contact` or `contactless`.
    pub interface: &'static str,
    /// `pcsc` or `nfc`.
    pub transport: &'static str,
    /// Whether PINs are entered on the reader's keypad (PC/SC part 10).
    pub pinpad: bool,
}

impl ReaderView {
    fn new(name: &str) -> ReaderView {
        let transport = transport_of(name);
        ReaderView {
            name: name.to_owned(),
            card_present: false,
            card: None,
            session: None,
            interface: if transport == "nfc" {
                "contactless"
            } else {
                "contact"
            },
            transport,
            pinpad: false,
        }
    }
}

/// One event of `/v1/events`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeEvent {
    /// The SSE event name: `reader-added`, `reader-removed`, `card-inserted`, `card-removed`.
    pub name: &'static str,
    pub data: serde_json::Value,
}

/// The `card-inserted` event of reader view `r`, after applying what the recognising
/// connection learned of the reader (none when the card was not recognised).
fn inserted(
    r: &mut ReaderView,
    capabilities: Option<&ReaderCapabilities>,
) -> (&'static str, serde_json::Value) {
    if let Some(capabilities) = capabilities {
        r.pinpad = capabilities.pinpad.has_pinpad();
        if capabilities.interface == Interface::Contactless {
            r.interface = "contactless";
        }
    }
    (
        "card-inserted",
        serde_json::json!({
            "reader": r.name,
            "card": r.card,
            "session": r.session,
            "interface": r.interface,
            "transport": r.transport,
            "pinpad": r.pinpad,
        }),
    )
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
    /// The sessions (see the module documentation). Lock order: `table`, then `book`.
    book: Mutex<Book>,
    /// Kiosk mode: session starts and ends go to the audit log.
    audit: std::sync::OnceLock<Arc<crate::audit::AuditLog>>,
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
            book: Mutex::new(Book::default()),
            audit: std::sync::OnceLock::new(),
        })
    }

    /// Records session starts and ends in `audit` from now on (kiosk mode; set once).
    pub fn set_audit(&self, audit: Arc<crate::audit::AuditLog>) {
        let _ = self.audit.set(audit);
    }

    /// A receiver told of every later change of [`Readers::snapshot`] or
    /// [`Readers::service_up`] (the value is a change counter; read the state itself).
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    fn touch(&self) {
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// A copy of the reader table. While pcscd is down only the NFC readers (libnfc needs no
    /// pcscd; the PC/SC entries are stale until the monitor reports again).
    pub fn snapshot(&self) -> Vec<ReaderView> {
        let up = self.service_up();
        self.table
            .read()
            .map(|t| {
                t.iter()
                    .filter(|r| up || r.transport == "nfc")
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
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

    /// Applies one notice of the reader monitor (PC/SC here, NFC readers through
    /// `bridge::nfc`) to the table and the sessions, and sends the events it causes.
    pub(crate) fn apply(&self, notice: &Notice) {
        let Ok(mut table) = self.table.write() else {
            return;
        };
        let mut events: Vec<(&'static str, serde_json::Value)> = Vec::new();
        match notice {
            Notice::Event(Event::ReaderAdded { reader }) => {
                if !table.iter().any(|r| &r.name == reader) {
                    table.push(ReaderView::new(reader));
                }
                events.push(("reader-added", serde_json::json!({ "reader": reader })));
            }
            Notice::Event(Event::ReaderRemoved { reader }) => {
                if let Some(r) = table.iter_mut().find(|r| &r.name == reader) {
                    events.extend(self.end_in(r, EndReason::ReaderRemoved));
                }
                table.retain(|r| &r.name != reader);
                events.push(("reader-removed", serde_json::json!({ "reader": reader })));
            }
            Notice::Event(Event::CardInserted { reader, .. }) => {
                if let Some(r) = table.iter_mut().find(|r| &r.name == reader) {
                    // A presence the monitor did not see end (it cannot happen with PC/SC's
                    // event counter, but a session must never span two cards).
                    events.extend(self.end_in(r, EndReason::CardRemoved));
                    r.card_present = true;
                    r.card = None;
                    r.session = self.start_session(reader);
                }
                // Announced once recognised (or not): see below.
            }
            Notice::Event(Event::CardRemoved { reader }) => {
                if let Some(r) = table.iter_mut().find(|r| &r.name == reader) {
                    events.extend(self.end_in(r, EndReason::CardRemoved));
                    r.card_present = false;
                    r.card = None;
                }
                events.push(("card-removed", serde_json::json!({ "reader": reader })));
            }
            Notice::CardRecognised {
                reader,
                card_id,
                card_name,
                capabilities,
            } => {
                let card = CardView {
                    id: card_id,
                    name: card_name,
                };
                if let Some(r) = table.iter_mut().find(|r| &r.name == reader) {
                    r.card = Some(card);
                    if matches!(*card_id, "emrtd" | "pteid-cc2-contactless") {
                        r.interface = "contactless";
                    }
                    events.push(inserted(r, Some(capabilities)));
                }
            }
            Notice::CardNotRecognised { reader, .. } => {
                if let Some(r) = table.iter_mut().find(|r| &r.name == reader) {
                    events.push(inserted(r, None));
                }
            }
            // The table is kept: once pcscd is back, the monitor reports what changed since
            // (status hides the table while the service is down).
            Notice::ServiceLost => {
                tracing::warn!("the smart card service (pcscd) stopped; waiting for it");
                if let Ok(mut up) = self.service_up.write() {
                    *up = false;
                }
            }
            Notice::ServiceBack => {
                tracing::info!("the smart card service is back");
                if let Ok(mut up) = self.service_up.write() {
                    *up = true;
                }
            }
        }
        drop(table);
        self.touch();
        self.send(events);
    }

    fn send(&self, events: Vec<(&'static str, serde_json::Value)>) {
        for (name, data) in events {
            self.audit_event(name, &data);
            // Reader names and card kinds only; the session id stays out of the log.
            let reader = data.get("reader").and_then(|r| r.as_str()).unwrap_or("");
            tracing::info!(event = name, reader, "reader event");
            // No subscriber is not an error.
            let _ = self.events.send(BridgeEvent { name, data });
        }
    }

    /// Session starts (a card announced with its session) and ends, to the audit log.
    fn audit_event(&self, name: &str, data: &serde_json::Value) {
        let Some(audit) = self.audit.get() else {
            return;
        };
        let field = |key: &str| data.get(key).and_then(|v| v.as_str());
        let (operation, result) = match name {
            "card-inserted" if field("session").is_some() => ("session-start", "ok"),
            "session-ended" => ("session-end", field("reason").unwrap_or("?")),
            _ => return,
        };
        let event = crate::audit::AuditEvent {
            origin: None,
            reader: field("reader"),
            session: field("session"),
            operation,
            result,
            document: None,
        };
        if let Err(e) = audit.record(event) {
            tracing::error!(code = e.code(), error = %e, "audit log not written");
        }
    }

    /// A new session for a card just inserted in `reader`.
    fn start_session(&self, reader: &str) -> Option<String> {
        let mut book = self.book.lock().ok()?;
        let id = new_session_id()?;
        // 128 random bits do not repeat; if they ever did, no session is reopened.
        if book.live.contains_key(&id) || book.ended.iter().any(|(e, _)| e == &id) {
            tracing::error!("session id repeated; the card gets no session");
            return None;
        }
        book.live.insert(
            id.clone(),
            Live {
                reader: reader.to_owned(),
                last_used: Instant::now(),
                jobs: Vec::new(),
            },
        );
        tracing::info!(reader, "session started");
        Some(id)
    }

    /// Ends the session of reader view `r`, if any: its jobs are cancelled, and the
    /// `session-ended` event is returned for sending.
    fn end_in(
        &self,
        r: &mut ReaderView,
        reason: EndReason,
    ) -> Option<(&'static str, serde_json::Value)> {
        let id = r.session.take()?;
        let mut book = self.book.lock().ok()?;
        if let Some(live) = book.live.remove(&id) {
            for (_, cancel) in &live.jobs {
                cancel.cancel();
            }
            tracing::info!(reader = %r.name, reason = reason.as_str(), jobs = live.jobs.len(), "session ended");
        }
        book.ended.push_back((id.clone(), reason));
        while book.ended.len() > ENDED_KEPT {
            book.ended.pop_front();
        }
        Some((
            "session-ended",
            serde_json::json!({ "reader": r.name, "session": id, "reason": reason.as_str() }),
        ))
    }

    /// Why session `id` is not live: its end reason, or `None` while it is live. An id never
    /// handed out (or long forgotten) counts as ended.
    pub fn ended(&self, id: &str) -> Option<EndReason> {
        let Ok(book) = self.book.lock() else {
            return Some(EndReason::AgentStopping);
        };
        if book.live.contains_key(id) {
            return None;
        }
        Some(
            book.ended
                .iter()
                .find(|(e, _)| e == id)
                .map(|(_, reason)| *reason)
                .unwrap_or(EndReason::IdleTimeout),
        )
    }

    /// The error for session `id` when it is no longer live; `Ok` while it is.
    pub fn check(&self, id: &str) -> Result<(), ApiError> {
        match self.ended(id) {
            None => Ok(()),
            Some(reason) if self.is_known(id) => Err(reason.error()),
            Some(_) => Err(ApiError::new(
                "session-ended",
                "no such session (it ended, or never existed)",
            )),
        }
    }

    fn is_known(&self, id: &str) -> bool {
        self.book
            .lock()
            .map(|b| b.live.contains_key(id) || b.ended.iter().any(|(e, _)| e == id))
            .unwrap_or(false)
    }

    /// Binds a job to a session: the one `target` names, else (when `choose`) the best reader
    /// for a card of kind `ids` (a pinpad reader first when `pin`). `Ok(None)`: nothing named
    /// and `choose` is false, or no card to choose from (the worker decides when it runs).
    pub fn bind(
        &self,
        target: &Target,
        ids: &[&str],
        pin: bool,
        choose: bool,
    ) -> Result<Option<Binding>, ApiError> {
        let table = self.snapshot();
        match (&target.reader, &target.session) {
            (Some(reader), session) => {
                let Some(r) = table.iter().find(|r| &r.name == reader) else {
                    return Err(ApiError::new(
                        "reader-not-found",
                        "there is no reader of that name (see /v1/status)",
                    ));
                };
                if let Some(session) = session {
                    self.check(session)?;
                    if r.session.as_ref() != Some(session) {
                        return Err(ApiError::new(
                            "session-ended",
                            "that session is not the current one of that reader",
                        ));
                    }
                }
                match &r.session {
                    Some(id) => Ok(Some(Binding {
                        reader: r.name.clone(),
                        session: id.clone(),
                    })),
                    None if r.card_present => Err(EndReason::IdleTimeout.error()),
                    None => Err(eid_card::Error::NoCard(r.name.clone()).into()),
                }
            }
            (None, Some(session)) => {
                self.check(session)?;
                table
                    .iter()
                    .find(|r| r.session.as_ref() == Some(session))
                    .map(|r| {
                        Some(Binding {
                            reader: r.name.clone(),
                            session: session.clone(),
                        })
                    })
                    .ok_or_else(|| EndReason::CardRemoved.error())
            }
            (None, None) if !choose => Ok(None),
            (None, None) => {
                let with_session: Vec<&ReaderView> =
                    table.iter().filter(|r| r.session.is_some()).collect();
                let rank = |r: &ReaderView| {
                    let kind = r.card.as_ref().is_some_and(|c| ids.contains(&c.id));
                    // Lower is better: the right kind of card, then (PIN operations) a keypad.
                    (u8::from(!kind), u8::from(!(pin && r.pinpad)))
                };
                let best = with_session.iter().min_by_key(|r| rank(r));
                match best {
                    Some(r) => Ok(r.session.as_ref().map(|id| Binding {
                        reader: r.name.clone(),
                        session: id.clone(),
                    })),
                    None if table.is_empty() => Err(eid_card::Error::NoReader.into()),
                    None if table.iter().any(|r| r.card_present) => {
                        Err(EndReason::IdleTimeout.error())
                    }
                    None => Err(eid_card::Error::NoCard(
                        table.first().map(|r| r.name.clone()).unwrap_or_default(),
                    )
                    .into()),
                }
            }
        }
    }

    /// Registers `cancel` with live session `id`: ending the session cancels it. `Err` when the
    /// session has already ended.
    pub fn register(self: &Arc<Self>, id: &str, cancel: &Cancel) -> Result<Registration, ApiError> {
        let mut book = self
            .book
            .lock()
            .map_err(|_| ApiError::internal("sessions poisoned"))?;
        let key = book.next_key;
        book.next_key = book.next_key.wrapping_add(1);
        match book.live.get_mut(id) {
            Some(live) => {
                live.jobs.push((key, cancel.clone()));
                live.last_used = Instant::now();
            }
            None => {
                drop(book);
                self.check(id)?;
                return Err(EndReason::IdleTimeout.error());
            }
        }
        Ok(Registration {
            readers: Arc::clone(self),
            session: id.to_owned(),
            key,
        })
    }

    /// The current session of `reader` with `cancel` registered there (the worker chose the
    /// reader itself); `None` when the reader has no live session.
    pub fn adopt(
        self: &Arc<Self>,
        reader: &str,
        cancel: &Cancel,
    ) -> Option<(String, Registration)> {
        let id = self
            .snapshot()
            .into_iter()
            .find(|r| r.name == reader)
            .and_then(|r| r.session)?;
        let registration = self.register(&id, cancel).ok()?;
        Some((id, registration))
    }

    /// Ends, with `idle-timeout`, every session without an operation for `timeout` and none
    /// running or queued; returns their readers (the caller resets those cards).
    pub fn expire_idle(&self, timeout: Duration) -> Vec<String> {
        let now = Instant::now();
        let expired: Vec<String> = match self.book.lock() {
            Ok(book) => book
                .live
                .values()
                .filter(|l| l.jobs.is_empty() && now.duration_since(l.last_used) >= timeout)
                .map(|l| l.reader.clone())
                .collect(),
            Err(_) => return Vec::new(),
        };
        if expired.is_empty() {
            return expired;
        }
        let mut events = Vec::new();
        if let Ok(mut table) = self.table.write() {
            for r in table.iter_mut().filter(|r| expired.contains(&r.name)) {
                events.extend(self.end_in(r, EndReason::IdleTimeout));
            }
        }
        self.touch();
        self.send(events);
        expired
    }

    /// Ends every session (the agent stops).
    pub fn end_all(&self, reason: EndReason) {
        let mut events = Vec::new();
        if let Ok(mut table) = self.table.write() {
            for r in table.iter_mut() {
                events.extend(self.end_in(r, reason));
            }
        }
        self.touch();
        self.send(events);
    }

    /// Marks session `id` used now (an operation started or ended).
    pub fn used(&self, id: &str) {
        if let Ok(mut book) = self.book.lock()
            && let Some(live) = book.live.get_mut(id)
        {
            live.last_used = Instant::now();
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
                            me.forget_pcsc_readers();
                            std::thread::sleep(retry);
                        }
                    }
                }
            })
            .map(|_| ())
    }

    /// The PC/SC monitor failed: its readers leave the table (their sessions end with
    /// `reader-removed`) until it reports them again. NFC readers have monitors of their own
    /// (`super::nfc`), which report only changes: they stay, sessions and all.
    fn forget_pcsc_readers(&self) {
        let mut events = Vec::new();
        if let Ok(mut table) = self.table.write() {
            for r in table.iter_mut().filter(|r| r.transport != "nfc") {
                events.extend(self.end_in(r, EndReason::ReaderRemoved));
            }
            table.retain(|r| r.transport == "nfc");
        }
        self.touch();
        self.send(events);
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    /// A reader table with `names`, each holding a recognised Citizen Card; the readers whose
    /// name starts with "Keypad" have a PIN pad (as their recognising connection reports it).
    fn table(names: &[&str]) -> Arc<Readers> {
        let readers = Readers::new();
        readers.apply(&Notice::ServiceBack);
        for name in names {
            let reader = (*name).to_owned();
            readers.apply(&Notice::Event(Event::ReaderAdded {
                reader: reader.clone(),
            }));
            readers.apply(&Notice::Event(Event::CardInserted {
                reader: reader.clone(),
                atr: vec![0x3B],
            }));
            let mut capabilities = ReaderCapabilities::SHORT_ONLY;
            if reader.starts_with("Keypad") {
                capabilities.pinpad.verify_pin_direct = Some(0x4234_0006);
            }
            readers.apply(&Notice::CardRecognised {
                reader,
                card_id: "pteid-cc2",
                card_name: "Citizen Card",
                capabilities,
            });
        }
        readers
    }

    fn session_of(readers: &Readers, name: &str) -> String {
        readers
            .snapshot()
            .into_iter()
            .find(|r| r.name == name)
            .and_then(|r| r.session)
            .unwrap()
    }

    #[test]
    fn pin_operations_prefer_a_pinpad_reader_unless_one_is_named() {
        let readers = table(&["Contact 00", "Keypad 01"]);
        let shown: Vec<bool> = readers.snapshot().iter().map(|r| r.pinpad).collect();
        assert_eq!(shown, [false, true]);
        let ids = ["pteid-cc1", "pteid-cc2"];
        let none = Target::default();
        let pin = readers.bind(&none, &ids, true, true).unwrap().unwrap();
        assert_eq!(pin.reader, "Keypad 01");
        let no_pin = readers.bind(&none, &ids, false, true).unwrap().unwrap();
        assert_eq!(no_pin.reader, "Contact 00");
        let named = Target {
            reader: Some("Contact 00".into()),
            session: None,
        };
        let chosen = readers.bind(&named, &ids, true, true).unwrap().unwrap();
        assert_eq!(chosen.reader, "Contact 00");
        // Outside kiosk mode nothing is chosen in advance.
        assert_eq!(readers.bind(&none, &ids, true, false).unwrap(), None);
    }

    #[test]
    fn removal_cancels_the_sessions_jobs_and_old_ids_get_the_reason() {
        let readers = table(&["R0"]);
        let id = session_of(&readers, "R0");
        assert_eq!(id.len(), 32);
        let cancel = Cancel::new();
        let registration = readers.register(&id, &cancel).unwrap();
        let mut events = readers.subscribe();
        readers.apply(&Notice::Event(Event::CardRemoved {
            reader: "R0".into(),
        }));
        assert!(cancel.is_cancelled());
        assert_eq!(readers.check(&id).unwrap_err().code, "card-removed");
        let first = events.try_recv().unwrap();
        assert_eq!(first.name, "session-ended");
        assert_eq!(first.data["reason"], "card-removed");
        assert_eq!(events.try_recv().unwrap().name, "card-removed");
        drop(registration);
        // A new card, a new session; the old id is refused for it.
        readers.apply(&Notice::Event(Event::CardInserted {
            reader: "R0".into(),
            atr: vec![0x3B],
        }));
        let new = session_of(&readers, "R0");
        assert_ne!(new, id);
        let old = Target {
            reader: Some("R0".into()),
            session: Some(id.clone()),
        };
        assert_eq!(
            readers.bind(&old, &[], false, true).unwrap_err().code,
            "card-removed"
        );
        let unknown = "0".repeat(32);
        assert_eq!(readers.check(&unknown).unwrap_err().code, "session-ended");
    }

    #[test]
    fn idle_sessions_end_but_not_while_a_job_holds_them() {
        let readers = table(&["R0"]);
        let id = session_of(&readers, "R0");
        let cancel = Cancel::new();
        let registration = readers.register(&id, &cancel).unwrap();
        assert!(readers.expire_idle(Duration::ZERO).is_empty());
        drop(registration);
        assert_eq!(readers.expire_idle(Duration::ZERO), vec!["R0".to_owned()]);
        assert_eq!(readers.check(&id).unwrap_err().code, "session-ended");
        // The card stays in, without a session, until it is re-inserted.
        let view = readers.snapshot().remove(0);
        assert!(view.card_present && view.session.is_none());
        let e = readers
            .bind(&Target::default(), &["pteid-cc2"], false, true)
            .unwrap_err();
        assert_eq!(e.code, "session-ended");
    }

    #[test]
    fn nfc_readers_outlive_pcscd_and_a_failed_pcsc_monitor() {
        let nfc = "NFC pn532_uart:/dev/pts/9";
        let readers = table(&["Virtual PCD 00 00", nfc]);
        let nfc_session = session_of(&readers, nfc);
        let pcsc_session = session_of(&readers, "Virtual PCD 00 00");
        // pcscd stops: the PC/SC entries are hidden, the NFC reader stays usable.
        readers.apply(&Notice::ServiceLost);
        let names: Vec<String> = readers.snapshot().into_iter().map(|r| r.name).collect();
        assert_eq!(names, [nfc]);
        assert_eq!(readers.candidates(&["pteid-cc2"]), [nfc]);
        readers.apply(&Notice::ServiceBack);
        // The PC/SC monitor fails: only its readers are forgotten, their sessions ended.
        let mut events = readers.subscribe();
        readers.forget_pcsc_readers();
        let view: Vec<ReaderView> = readers.snapshot();
        assert_eq!(view.len(), 1);
        assert_eq!(view[0].name, nfc);
        assert_eq!(view[0].transport, "nfc");
        assert_eq!(view[0].interface, "contactless");
        assert_eq!(view[0].session.as_deref(), Some(nfc_session.as_str()));
        assert!(readers.check(&nfc_session).is_ok());
        assert_eq!(
            readers.check(&pcsc_session).unwrap_err().code,
            "reader-removed"
        );
        let ended = events.try_recv().unwrap();
        assert_eq!(ended.name, "session-ended");
        assert_eq!(ended.data["reader"], "Virtual PCD 00 00");
        assert!(events.try_recv().is_err(), "nothing said of the NFC reader");
    }
}
