//! The card queue: every card operation of every website runs here, one at a time, on one
//! thread that owns the PC/SC connection. Each job carries its origin (shown in every dialog,
//! bound into every token), a [`Cancel`] that fires when the HTTP client goes away or the
//! request times out, and the time it was queued (a job that waited longer than the queue
//! timeout is answered `queue-timeout` without touching the card).
//!
//! Order inside a job: find the card, ask consent (with the holder's name), ask the PIN (with
//! the tries left), then verify and use the key inside one PC/SC transaction, and finally reset
//! the card so that no PIN stays verified for the next caller.
//!
//! Sessions (`super::readers`): a job is bound to the session of the card it will use when it
//! is queued (always in kiosk mode; when the request names a reader or session otherwise), or
//! adopts the session of the reader it picks. Its [`Cancel`] is registered with that session,
//! so pulling the card cancels it, queued or running (dialogs close); a job whose session ended
//! answers the session's end, never data, even if the card answered before the end was seen.
//! In kiosk mode the worker also ends idle sessions (and resets those cards) between jobs, and
//! only the desk's origins pass `consent`, without a dialog and without remembering anything.

use std::collections::HashMap;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use eid_card::emrtd::{self, AccessKey, ReadOptions};
use eid_card::pcsc_transport::PcscContext;
use eid_card::pteid::{CertKind, HashAlg, Pin, PinRef, PteidCard};
use eid_card::{Error, Transport};
use eid_protocols::pa::CscaStore;
use eid_protocols::webeid;
use serde_json::{Value, json};
use tokio::sync::{oneshot, watch};

use super::error::ApiError;
use super::readers::{Binding, Readers, Registration, Target};
use crate::config::{AdminPolicy, parse_origin};
use crate::consent::{Decision, SiteStore, decide};
use crate::prompt::{CanRequest, Cancel, Consent, ConsentRequest, PinRequest, Prompt, PromptError};
use crate::workflows::{self, PinAsk};

/// One card operation, as parsed from a request.
pub enum Operation {
    Certificate(CertKind),
    Authenticate {
        nonce: String,
    },
    Sign {
        certificate: Vec<u8>,
        hash: HashAlg,
        digest: Vec<u8>,
    },
    Identity {
        fields: Option<Vec<String>>,
        photo: bool,
        address: bool,
    },
    Emrtd {
        /// `None`: asked in the agent's dialog.
        key: Option<AccessKey>,
        data_groups: Vec<u8>,
        nonce: String,
    },
}

impl std::fmt::Debug for Operation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // No nonce, hash, CAN or MRZ: only what the operation is.
        f.write_str(self.describe())
    }
}

impl Operation {
    /// What the dialogs say the site wants.
    pub fn describe(&self) -> &'static str {
        match self {
            Operation::Certificate(CertKind::Signature) => "read your signing certificate",
            Operation::Certificate(_) => "read your authentication certificate",
            Operation::Authenticate { .. } => "identify you with your Citizen Card",
            Operation::Sign { .. } => "make a qualified electronic signature",
            Operation::Identity { address: true, .. } => "read your identity and address",
            Operation::Identity { .. } => "read your identity data",
            Operation::Emrtd { .. } => "read the travel document's chip",
        }
    }

    /// Whether it counts against the origin's rate limit of secret-guessing operations: those
    /// that ask for a PIN, and eMRTD reads with a CAN or MRZ from the page (each wrong one is a
    /// guess the page could repeat).
    pub fn rate_limited(&self) -> bool {
        self.needs_pin() || matches!(self, Operation::Emrtd { key: Some(_), .. })
    }

    /// The PIN it needs, if any.
    pub fn pin(&self) -> Option<PinRef> {
        match self {
            Operation::Authenticate { .. } => Some(PinRef::Auth),
            Operation::Sign { .. } => Some(PinRef::Sign),
            Operation::Identity { address: true, .. } => Some(PinRef::Address),
            _ => None,
        }
    }

    /// Whether it asks for a PIN (the card is reset afterwards).
    pub fn needs_pin(&self) -> bool {
        self.pin().is_some()
    }

    /// The card kinds (`eid_card::detect` ids) it is for, best first.
    pub fn card_kinds(&self) -> &'static [&'static str] {
        match self {
            Operation::Emrtd { .. } => &["emrtd", "pteid-cc2-contactless"],
            _ => &["pteid-cc1", "pteid-cc2"],
        }
    }

    /// Its name in the audit log.
    pub fn audit_name(&self) -> &'static str {
        match self {
            Operation::Certificate(_) => "certificate",
            Operation::Authenticate { .. } => "authenticate",
            Operation::Sign { .. } => "sign",
            Operation::Identity { .. } => "identity",
            Operation::Emrtd { .. } => "emrtd-read",
        }
    }
}

struct Job {
    origin: String,
    operation: Operation,
    cancel: Cancel,
    queued: Instant,
    reply: oneshot::Sender<Result<Value, ApiError>>,
    /// The session the job is bound to, or why it could not be bound (answered after consent,
    /// so a site not yet allowed learns nothing of the readers).
    binding: Result<Option<Binding>, ApiError>,
    /// Keeps the job's `cancel` registered with its session while the job lives.
    _registration: Option<Registration>,
}

/// What the worker thread needs.
#[derive(Debug)]
pub struct WorkerEnv {
    pub prompt: Arc<dyn Prompt>,
    pub sites: Arc<SiteStore>,
    pub policy: AdminPolicy,
    pub readers: Arc<Readers>,
    pub queue_timeout: Duration,
    /// CSCA store for the agent's own passive authentication of eMRTDs (servers re-verify).
    pub csca: Option<CscaStore>,
    /// Trust anchors for the Citizen Card SOD signer.
    pub citizen_card_anchors: Option<CscaStore>,
    /// Sites the user denied lately (see [`DENIAL_HOLDS`]).
    pub denials: Mutex<HashMap<String, Instant>>,
    /// Kiosk mode (`crate::kiosk`): desk origins only, no consent, sessions that idle out.
    pub kiosk: Option<crate::kiosk::Kiosk>,
    /// Kiosk mode: every operation's outcome goes here before its answer leaves.
    pub audit: Option<Arc<crate::audit::AuditLog>>,
    /// The NFC readers the bridge opened (`super::nfc`); the worker reaches them through
    /// `super::connect`.
    pub(crate) nfc: Arc<super::nfc::NfcReaders>,
}

/// What the card worker is doing, for whoever shows it (the tray icon): nothing, a card
/// operation, or a dialog waiting for the user (which is also "running").
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Activity {
    /// A job is being executed.
    pub running: bool,
    /// A consent, PIN or CAN dialog is open and waits for the user.
    pub dialog: bool,
    /// The code of the last failure that was the agent's or the machine's (not the citizen's
    /// or the page's), until an operation succeeds: the kiosk tray shows it in words.
    pub last_error: Option<&'static str>,
}

/// The failures that are the agent's or the machine's to fix (see [`Activity::last_error`]).
const AGENT_PROBLEMS: &[&str] = &[
    "pcscd-not-running",
    "no-reader",
    "reader-removed",
    "prompt-unavailable",
    "card-busy",
    "internal",
];

/// The worker's prompt, wrapped so that [`Activity::dialog`] is true while a dialog is open.
/// The dialogs themselves are unchanged: this only observes them.
#[derive(Debug)]
struct ObservedPrompt {
    inner: Arc<dyn Prompt>,
    activity: Arc<watch::Sender<Activity>>,
}

/// Marks a dialog open for its lifetime (also when the dialog fails or panics).
struct DialogOpen<'a>(&'a watch::Sender<Activity>);

impl<'a> DialogOpen<'a> {
    fn new(activity: &'a watch::Sender<Activity>) -> Self {
        activity.send_modify(|a| a.dialog = true);
        DialogOpen(activity)
    }
}

impl Drop for DialogOpen<'_> {
    fn drop(&mut self) {
        self.0.send_modify(|a| a.dialog = false);
    }
}

impl Prompt for ObservedPrompt {
    fn consent(&self, req: &ConsentRequest<'_>, cancel: &Cancel) -> Result<Consent, PromptError> {
        let _open = DialogOpen::new(&self.activity);
        self.inner.consent(req, cancel)
    }

    fn pin(
        &self,
        req: &PinRequest<'_>,
        cancel: &Cancel,
    ) -> Result<zeroize::Zeroizing<String>, PromptError> {
        let _open = DialogOpen::new(&self.activity);
        self.inner.pin(req, cancel)
    }

    fn can(
        &self,
        req: &CanRequest<'_>,
        cancel: &Cancel,
    ) -> Result<zeroize::Zeroizing<String>, PromptError> {
        let _open = DialogOpen::new(&self.activity);
        self.inner.can(req, cancel)
    }
}

/// The sending side of the queue.
#[derive(Debug)]
pub struct CardQueue {
    sender: Mutex<Option<SyncSender<Job>>>,
    wait_limit: Duration,
    /// Requests of each origin queued or running: one site cannot fill the queue.
    per_origin: Arc<Mutex<HashMap<String, usize>>>,
    /// What the worker is doing (see [`CardQueue::activity`]).
    activity: watch::Receiver<Activity>,
    /// The reader table, for binding jobs to sessions.
    readers: Arc<Readers>,
    /// Kiosk mode: every job is bound when queued.
    kiosk: bool,
}

/// Requests one origin may have waiting or running at once.
pub const PER_ORIGIN_LIMIT: usize = 4;

/// Counts a request of an origin while it lives.
struct OriginSlot {
    counts: Arc<Mutex<HashMap<String, usize>>>,
    origin: String,
}

impl Drop for OriginSlot {
    fn drop(&mut self) {
        if let Ok(mut counts) = self.counts.lock()
            && let Some(n) = counts.get_mut(&self.origin)
        {
            *n = n.saturating_sub(1);
            if *n == 0 {
                counts.remove(&self.origin);
            }
        }
    }
}

/// Fires the job's [`Cancel`] when the request's future is dropped (client gone) or ends.
struct CancelOnDrop(Cancel);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

impl CardQueue {
    /// Starts the worker thread. `wait_limit` bounds how long a request waits for its answer
    /// (queue wait plus operation, dialogs included).
    pub fn start(
        mut env: WorkerEnv,
        capacity: usize,
        wait_limit: Duration,
    ) -> std::io::Result<Self> {
        let (sender, receiver) = std::sync::mpsc::sync_channel(capacity.max(1));
        let (activity, activity_receiver) = watch::channel(Activity::default());
        let activity = Arc::new(activity);
        env.prompt = Arc::new(ObservedPrompt {
            inner: Arc::clone(&env.prompt),
            activity: Arc::clone(&activity),
        });
        let readers = Arc::clone(&env.readers);
        let kiosk = env.kiosk.is_some();
        std::thread::Builder::new()
            .name("card-worker".into())
            .spawn(move || worker(env, receiver, &activity))?;
        Ok(CardQueue {
            sender: Mutex::new(Some(sender)),
            wait_limit,
            per_origin: Arc::new(Mutex::new(HashMap::new())),
            activity: activity_receiver,
            readers,
            kiosk,
        })
    }

    /// A receiver of what the worker is doing: busy with a job, a dialog waiting for the user.
    /// Watching it never delays the worker (it only publishes).
    pub fn activity(&self) -> watch::Receiver<Activity> {
        self.activity.clone()
    }

    /// Stops taking jobs; the worker ends after the current one.
    pub fn close(&self) {
        if let Ok(mut s) = self.sender.lock() {
            s.take();
        }
    }

    /// Queues `operation` for `origin` on the card `target` names (see [`Readers::bind`]) and
    /// waits for its outcome. Dropping the returned future (the client disconnected) cancels the
    /// job: skipped if not started, dialogs closed if open.
    pub async fn run(
        &self,
        origin: &str,
        operation: Operation,
        target: &Target,
    ) -> Result<Value, ApiError> {
        let _slot = {
            let mut counts = self
                .per_origin
                .lock()
                .map_err(|_| ApiError::internal("queue poisoned"))?;
            let n = counts.entry(origin.to_owned()).or_insert(0);
            if *n >= PER_ORIGIN_LIMIT {
                return Err(ApiError::new(
                    "queue-full",
                    format!("{origin} already has {PER_ORIGIN_LIMIT} card operations waiting"),
                ));
            }
            *n += 1;
            OriginSlot {
                counts: Arc::clone(&self.per_origin),
                origin: origin.to_owned(),
            }
        };
        let cancel = Cancel::default();
        let guard = CancelOnDrop(cancel.clone());
        let (reply, answer) = oneshot::channel();
        let binding = self.readers.bind(
            target,
            operation.card_kinds(),
            operation.needs_pin(),
            self.kiosk,
        );
        let registration = match &binding {
            // Ended between binding and registering: answered by the worker.
            Ok(Some(b)) => self.readers.register(&b.session, &cancel).ok(),
            _ => None,
        };
        let job = Job {
            origin: origin.to_owned(),
            operation,
            cancel,
            queued: Instant::now(),
            reply,
            binding,
            _registration: registration,
        };
        {
            let sender = self
                .sender
                .lock()
                .map_err(|_| ApiError::internal("queue poisoned"))?;
            let sender = sender
                .as_ref()
                .ok_or_else(|| ApiError::new("queue-full", "the agent is stopping"))?;
            sender.try_send(job).map_err(|e| match e {
                TrySendError::Full(_) => {
                    ApiError::new("queue-full", "too many card operations are waiting")
                }
                TrySendError::Disconnected(_) => ApiError::internal("the card worker stopped"),
            })?;
        }
        let outcome = match tokio::time::timeout(self.wait_limit, answer).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(ApiError::internal("the card worker dropped the request")),
            Err(_) => Err(ApiError::new(
                "operation-timeout",
                format!("no answer within {} s", self.wait_limit.as_secs()),
            )),
        };
        drop(guard);
        outcome
    }
}

/// How often, in kiosk mode, the worker looks for sessions past the idle timeout while no job
/// comes (the timeout is whole seconds: a session ends at most this much late).
const IDLE_TICK: Duration = Duration::from_millis(250);

fn worker(env: WorkerEnv, jobs: Receiver<Job>, activity: &watch::Sender<Activity>) {
    let mut context: Option<PcscContext> = None;
    loop {
        let job = match &env.kiosk {
            Some(kiosk) => {
                for reader in env.readers.expire_idle(kiosk.idle_timeout) {
                    reset_card(&env, &mut context, &reader);
                }
                match jobs.recv_timeout(IDLE_TICK) {
                    Ok(job) => job,
                    Err(RecvTimeoutError::Timeout) => continue,
                    Err(RecvTimeoutError::Disconnected) => break,
                }
            }
            None => match jobs.recv() {
                Ok(job) => job,
                Err(_) => break,
            },
        };
        if job.cancel.is_cancelled() {
            // Cancelled by its session's end: the page still waits for the answer.
            if let Ok(Some(binding)) = &job.binding
                && let Err(e) = env.readers.check(&binding.session)
            {
                let _ = job.reply.send(Err(e));
                continue;
            }
            tracing::info!(origin = %job.origin, "request gone before its turn; skipped");
            continue;
        }
        if job.queued.elapsed() > env.queue_timeout {
            let _ = job.reply.send(Err(ApiError::new(
                "queue-timeout",
                "the card was busy with other requests for too long",
            )));
            continue;
        }
        let started = Instant::now();
        activity.send_modify(|a| a.running = true);
        let mut used: Option<Used> = None;
        let mut result = execute(&env, &mut context, &job, &mut used);
        activity.send_modify(|a| a.running = false);
        // The session the job used must still be live when the answer leaves: a card pulled
        // during (or right after) the operation yields its end, never its data.
        if let Some(Used { session, .. }) = &used {
            env.readers.used(session);
            if let Err(e) = env.readers.check(session) {
                result = Err(e);
            }
        }
        if let Some(audit) = &env.audit
            && let Err(e) = record(audit, &job, used.as_ref(), &result)
        {
            // An operation the desk cannot account for is not answered with data.
            tracing::error!(code = e.code(), error = %e, "audit log not written");
            result = Err(ApiError::internal(format!(
                "the audit log cannot be written ({}); {}",
                e.code(),
                e.remedy()
            )));
        }
        if env.kiosk.is_some()
            && let (Ok(Value::Object(map)), Some(used)) = (&mut result, &used)
        {
            map.insert("session".into(), Value::String(used.session.clone()));
        }
        match &result {
            Ok(_) => activity.send_modify(|a| a.last_error = None),
            Err(e) if AGENT_PROBLEMS.contains(&e.code) => {
                activity.send_modify(|a| a.last_error = Some(e.code));
            }
            Err(_) => {}
        }
        match &result {
            Ok(_) => {
                tracing::info!(origin = %job.origin, operation = job.operation.describe(), ms = started.elapsed().as_millis() as u64, "card operation done")
            }
            Err(e) => {
                tracing::info!(origin = %job.origin, operation = job.operation.describe(), code = e.code, ms = started.elapsed().as_millis() as u64, "card operation failed")
            }
        }
        // A failed job may leave a context pcscd no longer knows (it restarted, or died):
        // the next job establishes a fresh one, which costs under a millisecond.
        if result.is_err() {
            context = None;
        }
        let _ = job.reply.send(result);
    }
}

/// The session and reader a job used.
struct Used {
    session: String,
    reader: String,
}

/// The job's line in the audit log: its origin, reader, session, outcome and (on success) the
/// document it was about, which the log only keeps as a keyed hash.
fn record(
    audit: &crate::audit::AuditLog,
    job: &Job,
    used: Option<&Used>,
    result: &Result<Value, ApiError>,
) -> Result<(), crate::audit::AuditError> {
    let operation = job.operation.audit_name();
    let document = match (&job.operation, result) {
        (Operation::Sign { certificate, .. }, Ok(_)) => {
            crate::audit::document_of_certificate(certificate)
        }
        (_, Ok(value)) => crate::audit::document_of(operation, value),
        _ => None,
    };
    let bound = job.binding.as_ref().ok().and_then(Option::as_ref);
    audit.record(crate::audit::AuditEvent {
        origin: Some(&job.origin),
        reader: used
            .map(|u| u.reader.as_str())
            .or(bound.map(|b| b.reader.as_str())),
        session: used
            .map(|u| u.session.as_str())
            .or(bound.map(|b| b.session.as_str())),
        operation,
        result: match result {
            Ok(_) => "ok",
            Err(e) => e.code,
        },
        document: document
            .as_ref()
            .map(|(kind, number)| crate::audit::Document { kind, number }),
    })
}

/// Resets the card in `reader` (its session ended while it stayed in): no PIN stays verified,
/// no application stays selected. Best effort: a card that went meanwhile needs no reset.
fn reset_card(env: &WorkerEnv, context: &mut Option<PcscContext>, reader: &str) {
    // An NFC reader's card is reset without pcscd (an NFC-only desk has none).
    let context = pcsc(context).ok();
    match super::connect::connect(context, &env.nfc, reader) {
        Ok(mut transport) => {
            if let Err(e) = transport.reconnect(true) {
                tracing::warn!(reader, error = %e, "could not reset the card after its session");
            }
            let _ = transport.disconnect();
        }
        Err(e) => tracing::debug!(reader, error = %e, "no card to reset"),
    }
}

fn pcsc(context: &mut Option<PcscContext>) -> Result<&PcscContext, ApiError> {
    if context.is_none() {
        *context = Some(PcscContext::establish()?);
    }
    context
        .as_ref()
        .ok_or_else(|| ApiError::internal("no PC/SC context"))
}

fn aborted() -> ApiError {
    ApiError::new(
        "operation-timeout",
        "the request ended (client gone or timeout) before the card was used",
    )
}

/// Readers holding a card, those recognised as one of `ids` first.
fn readers_with_cards(
    env: &WorkerEnv,
    context: Option<&PcscContext>,
    ids: &[&str],
) -> Result<Vec<String>, ApiError> {
    let present = super::connect::readers(context, &env.nfc)?;
    if present.is_empty() {
        return Err(Error::NoReader.into());
    }
    let mut order = env.readers.candidates(ids);
    order.retain(|name| present.iter().any(|r| &r.name == name && r.card_present));
    for r in &present {
        if r.card_present && !order.contains(&r.name) {
            order.push(r.name.clone());
        }
    }
    if order.is_empty() {
        let first = present.first().map(|r| r.name.clone()).unwrap_or_default();
        return Err(Error::NoCard(first).into());
    }
    Ok(order)
}

/// The readers the job may use: its bound one, or every reader holding a card (those with a
/// card of `ids` first, keypad readers first for PIN operations).
fn readers_for(
    env: &WorkerEnv,
    context: Option<&PcscContext>,
    job: &Job,
    ids: &[&str],
) -> Result<Vec<String>, ApiError> {
    match &job.binding {
        Ok(Some(binding)) => {
            env.readers.check(&binding.session)?;
            Ok(vec![binding.reader.clone()])
        }
        Ok(None) => {
            let mut order = readers_with_cards(env, context, ids)?;
            // A PIN goes to a keypad when one of the readers has it (stable: otherwise the
            // order stays the card kind's).
            if job.operation.needs_pin() {
                let pinpads: Vec<String> = env
                    .readers
                    .snapshot()
                    .into_iter()
                    .filter(|r| r.pinpad)
                    .map(|r| r.name)
                    .collect();
                order.sort_by_key(|name| !pinpads.contains(name));
            }
            Ok(order)
        }
        Err(e) => Err(e.clone()),
    }
}

/// The session a job uses on `reader`: its binding's, checked live; else the reader's current
/// session, adopted (so its removal cancels the job). `used` records it for the answer.
fn enter_session(
    env: &WorkerEnv,
    job: &Job,
    reader: &str,
    used: &mut Option<Used>,
) -> Result<Option<Registration>, ApiError> {
    match &job.binding {
        Ok(Some(binding)) => {
            env.readers.check(&binding.session)?;
            *used = Some(Used {
                session: binding.session.clone(),
                reader: binding.reader.clone(),
            });
            Ok(None)
        }
        _ => match env.readers.adopt(reader, &job.cancel) {
            Some((session, registration)) => {
                *used = Some(Used {
                    session,
                    reader: reader.to_owned(),
                });
                Ok(Some(registration))
            }
            None => {
                *used = None;
                Ok(None)
            }
        },
    }
}

fn execute(
    env: &WorkerEnv,
    context: &mut Option<PcscContext>,
    job: &Job,
    used: &mut Option<Used>,
) -> Result<Value, ApiError> {
    // Consent first: a site the user has not allowed learns nothing of the readers and cards
    // (not even whether a card is present) before the user says yes.
    consent(env, job)?;
    if job.cancel.is_cancelled() {
        return Err(aborted());
    }
    // Without pcscd the NFC readers still work: its absence is only an error when no NFC
    // reader can serve the job (`super::connect`).
    let context = pcsc(context).ok();
    match &job.operation {
        Operation::Emrtd {
            key,
            data_groups,
            nonce,
        } => read_emrtd(env, context, job, key, data_groups, nonce, used),
        _ => {
            let readers = readers_for(env, context, job, &["pteid-cc1", "pteid-cc2"])?;
            let mut last = ApiError::from(Error::UnsupportedCard { atr: String::new() });
            for reader in readers {
                let mut transport = match super::connect::connect(context, &env.nfc, &reader) {
                    Ok(t) => t,
                    Err(e @ (Error::NoCard(_) | Error::CardRemoved)) => {
                        last = e.into();
                        continue;
                    }
                    Err(e) => return Err(e.into()),
                };
                // After connecting: a removal the monitor saw before the connection shows here.
                let _registration = match enter_session(env, job, &reader, used) {
                    Ok(r) => r,
                    Err(e) => {
                        let _ = transport.disconnect();
                        return Err(e);
                    }
                };
                match citizen_card(env, &mut transport, job) {
                    Err(e) if e.code == "unsupported-card" => {
                        let _ = transport.disconnect();
                        last = e;
                    }
                    outcome => {
                        // No PIN stays verified for whoever uses the card next.
                        if job.operation.needs_pin() {
                            let _ = transport.reconnect(true);
                        }
                        let _ = transport.disconnect();
                        return outcome;
                    }
                }
            }
            Err(last)
        }
    }
}

/// How long a "Deny" holds for a site before it may ask again: a page cannot wear the user
/// down with one dialog after another.
const DENIAL_HOLDS: Duration = Duration::from_secs(60);

/// Asks the user (unless the administrator or a remembered choice decides) whether `origin`
/// may do `operation`.
fn consent(env: &WorkerEnv, job: &Job) -> Result<(), ApiError> {
    let denied = || {
        ApiError::new(
            "consent-denied",
            format!("the user did not allow {} to use the card", job.origin),
        )
    };
    // Kiosk: the desk's pages are pre-approved; nobody at the desk answers for any other site
    // (the server refuses them before routing; this is the second lock).
    if let Some(kiosk) = &env.kiosk {
        return if kiosk.serves(&job.origin) {
            Ok(())
        } else {
            Err(ApiError::new(
                "origin-not-allowed",
                format!("{} is not one of this desk's pages", job.origin),
            ))
        };
    }
    let origin =
        parse_origin(&job.origin).map_err(|e| ApiError::new("origin-invalid", e.to_string()))?;
    match decide(&env.policy, &env.sites, &origin) {
        Decision::Denied(_) => Err(ApiError::new(
            "origin-denied",
            format!("{} is on the administrator's deny list", job.origin),
        )),
        Decision::Allowed(_) => Ok(()),
        Decision::Ask => {
            let mut denials = env
                .denials
                .lock()
                .map_err(|_| ApiError::internal("denials poisoned"))?;
            denials.retain(|_, at| at.elapsed() < DENIAL_HOLDS);
            if denials.contains_key(&job.origin) {
                return Err(denied());
            }
            let answer = env.prompt.consent(
                &ConsentRequest {
                    origin: &job.origin,
                    operation: job.operation.describe(),
                    holder: None,
                },
                &job.cancel,
            )?;
            match answer {
                Consent::Once => Ok(()),
                Consent::Always => {
                    if let Err(e) = env.sites.remember(&origin, time::OffsetDateTime::now_utc()) {
                        tracing::warn!(error = %e, "could not remember the site");
                    }
                    Ok(())
                }
                Consent::Deny => {
                    denials.insert(job.origin.clone(), Instant::now());
                    Err(denied())
                }
            }
        }
    }
}

/// The PIN a job asked for before its transaction, with whose card it is.
struct Asked {
    /// The authentication certificate read before the dialog: the card must be the same one
    /// when the transaction starts.
    auth_certificate: Vec<u8>,
    holder: Option<String>,
    /// `None` when the operation needs no PIN, or the reader's keypad will take it.
    pin: Option<Pin>,
}

/// Before the transaction: which card, whose, and the PIN typed in the dialog. The card is not
/// held while the user types (other programs keep working, and Windows ends transactions idle
/// for 5 s); the transaction that follows checks it is still the same card.
fn ask_before(
    env: &WorkerEnv,
    transport: &mut super::connect::CardConnection,
    job: &Job,
) -> Result<Asked, ApiError> {
    let mut card = PteidCard::open(transport)?;
    let auth_certificate = workflows::certificate(&mut card, CertKind::Authentication)?;
    let holder = workflows::holder_name(&auth_certificate);
    // A document prepared for another signing certificate is refused before any dialog.
    if let Operation::Sign { certificate, .. } = &job.operation {
        let signing = workflows::certificate(&mut card, CertKind::Signature)?;
        if &signing.der != certificate {
            return Err(certificate_mismatch());
        }
    }
    let pin = match job.operation.pin() {
        Some(pin) if !card.reader_has_pinpad() => {
            let retries_left = workflows::tries_left(&mut card, pin)?;
            Some(dialog(
                env,
                job,
                holder.as_deref(),
                &PinAsk { pin, retries_left },
            )?)
        }
        _ => None,
    };
    Ok(Asked {
        auth_certificate: auth_certificate.der,
        holder,
        pin,
    })
}

fn certificate_mismatch() -> ApiError {
    ApiError::new(
        "certificate-mismatch",
        "the card's signing certificate is not the one given",
    )
}

/// The agent's PIN dialog for `job`.
fn dialog(
    env: &WorkerEnv,
    job: &Job,
    holder: Option<&str>,
    asked: &PinAsk,
) -> Result<Pin, ApiError> {
    let typed = env.prompt.pin(
        &PinRequest {
            origin: &job.origin,
            operation: job.operation.describe(),
            holder,
            pin_name: asked.pin_name(),
            retries_left: asked.retries_left,
            error: None,
        },
        &job.cancel,
    )?;
    if job.cancel.is_cancelled() {
        return Err(aborted());
    }
    Ok(Pin::new(&typed)?)
}

fn citizen_card(
    env: &WorkerEnv,
    transport: &mut super::connect::CardConnection,
    job: &Job,
) -> Result<Value, ApiError> {
    // Only operations with a PIN dialog need the step before the transaction.
    let asked = if job.operation.needs_pin() {
        Some(ask_before(env, transport, job)?)
    } else {
        None
    };
    let mut tx = transport.transaction()?;
    let outcome = citizen_card_in(env, &mut *tx, job, asked);
    // No PIN stays verified for whoever uses the card next: reset it before the transaction
    // ends, so no other program can slip in between (the caller resets again after the
    // transaction if this fails).
    if job.operation.needs_pin()
        && let Err(e) = tx.reconnect(true)
    {
        tracing::warn!(error = %e, "could not reset the card inside the transaction");
    }
    outcome
}

fn citizen_card_in(
    env: &WorkerEnv,
    tx: &mut dyn Transport,
    job: &Job,
    asked: Option<Asked>,
) -> Result<Value, ApiError> {
    let mut card = PteidCard::open(tx)?;
    let auth_certificate = workflows::certificate(&mut card, CertKind::Authentication)?;
    let (holder, mut typed) = match asked {
        Some(asked) => {
            if auth_certificate.der != asked.auth_certificate {
                return Err(ApiError::new(
                    "card-removed",
                    "another card was put in the reader while the dialog was open",
                ));
            }
            (asked.holder, asked.pin)
        }
        None => (workflows::holder_name(&auth_certificate), None),
    };
    // The PIN typed before the transaction; the dialog only if the keypad turned out unusable.
    let mut ask = |pin_ask: &PinAsk| -> Result<Pin, ApiError> {
        match typed.take() {
            Some(pin) => Ok(pin),
            None => dialog(env, job, holder.as_deref(), pin_ask),
        }
    };
    match &job.operation {
        Operation::Certificate(kind) => {
            let certificate = if *kind == CertKind::Authentication {
                auth_certificate
            } else {
                workflows::certificate(&mut card, *kind)?
            };
            Ok(json!({
                "certificate": B64.encode(&certificate.der),
                "supportedSignatureAlgorithms": workflows::supported_algorithms(&certificate),
            }))
        }
        Operation::Authenticate { nonce } => {
            let token = workflows::authenticate(
                &mut card,
                &auth_certificate,
                &job.origin,
                nonce,
                &mut ask,
            )?;
            serde_json::to_value(token).map_err(|e| ApiError::internal(e.to_string()))
        }
        Operation::Sign {
            certificate,
            hash,
            digest,
        } => {
            let signing = workflows::certificate(&mut card, CertKind::Signature)?;
            if &signing.der != certificate {
                return Err(certificate_mismatch());
            }
            let signature = workflows::sign_hash(&mut card, &signing, *hash, digest, &mut ask)?;
            serde_json::to_value(signature).map_err(|e| ApiError::internal(e.to_string()))
        }
        Operation::Identity {
            fields,
            photo,
            address,
        } => {
            let identity = card.read_identity()?;
            let mut value = camel_case_keys(
                serde_json::to_value(&identity).map_err(|e| ApiError::internal(e.to_string()))?,
            );
            if let (Some(fields), Some(map)) = (fields, value.as_object_mut()) {
                if let Some(unknown) = fields.iter().find(|f| !map.contains_key(f.as_str())) {
                    return Err(ApiError::bad_request(format!(
                        "no identity field {unknown:?}"
                    )));
                }
                map.retain(|k, _| fields.iter().any(|f| f == k));
            }
            let photo = if *photo {
                Some(B64.encode(identity.photo.to_png()?))
            } else {
                None
            };
            let address_file = if *address {
                workflows::verify_pin(&mut card, PinRef::Address, &mut ask)?;
                Some(card.read_address()?)
            } else {
                None
            };
            let sod = card.verify_sod(
                &identity,
                address_file.as_ref(),
                env.citizen_card_anchors.as_ref(),
                time::OffsetDateTime::now_utc(),
            )?;
            let address = match &address_file {
                Some(a) => camel_case_keys(
                    serde_json::to_value(&a.address)
                        .map_err(|e| ApiError::internal(e.to_string()))?,
                ),
                None => Value::Null,
            };
            Ok(json!({
                "identity": value,
                "photo": photo,
                "address": address,
                "sod": { "integrity": sod.integrity, "chain": sod.certificate_chain },
            }))
        }
        Operation::Emrtd { .. } => Err(ApiError::internal("eMRTD job on the Citizen Card path")),
    }
}

fn read_emrtd(
    env: &WorkerEnv,
    context: Option<&PcscContext>,
    job: &Job,
    key: &Option<AccessKey>,
    data_groups: &[u8],
    nonce: &str,
    used: &mut Option<Used>,
) -> Result<Value, ApiError> {
    let asked;
    let key = match key {
        Some(key) => key,
        None => {
            let can = env.prompt.can(
                &CanRequest {
                    origin: &job.origin,
                    operation: job.operation.describe(),
                    error: None,
                },
                &job.cancel,
            )?;
            asked = AccessKey::can(&can).map_err(|e| ApiError::bad_request(e.to_string()))?;
            &asked
        }
    };
    let challenge = webeid::emrtd_aa_challenge(&job.origin, nonce);
    let readers = readers_for(env, context, job, &["emrtd", "pteid-cc2-contactless"])?;
    let mut last: Option<ApiError> = None;
    for reader in readers {
        let mut transport = match super::connect::connect(context, &env.nfc, &reader) {
            Ok(t) => t,
            Err(e) => {
                last = Some(e.into());
                continue;
            }
        };
        let _registration = match enter_session(env, job, &reader, used) {
            Ok(r) => r,
            Err(e) => {
                let _ = transport.disconnect();
                return Err(e);
            }
        };
        let options = ReadOptions {
            csca: env.csca.as_ref(),
            challenge: Some(challenge),
            progress: None,
        };
        let outcome = emrtd::read_document(&mut transport, key, options);
        let _ = transport.disconnect();
        match outcome {
            Ok(report) => {
                let result = super::emrtd_result::build(&report, data_groups);
                return serde_json::to_value(result).map_err(|e| ApiError::internal(e.to_string()));
            }
            // Not an eMRTD (no LDS1 application): try the next reader.
            Err(e @ (Error::UnsupportedCard { .. } | Error::NotSupported(_))) => {
                last = Some(e.into());
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(last.unwrap_or_else(|| Error::NoCard(String::new()).into()))
}

/// The card crate names fields in snake_case (as the CLI prints them); the web API, like every
/// other name in it, uses camelCase: `given_names` -> `givenNames`.
fn camel_case_keys(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(key, v)| (camel_case(&key), camel_case_keys(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(camel_case_keys).collect()),
        other => other,
    }
}

fn camel_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = false;
    for c in name.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_keys_become_camel_case_at_every_depth() {
        let v = json!({ "given_names": "A", "card_public_key": { "public_key_object": "00" }, "mrz": ["x_y"] });
        assert_eq!(
            camel_case_keys(v),
            json!({ "givenNames": "A", "cardPublicKey": { "publicKeyObject": "00" }, "mrz": ["x_y"] })
        );
    }
}
