//! Asking the user: consent for a website and PINs, through one interface.
//!
//! Websites never see a PIN. When a site asks the bridge for something that needs the card, the
//! agent asks the user itself, through a [`Prompt`]: first whether this site may use the card
//! ([`Prompt::consent`]), then for the PIN ([`Prompt::pin`]). The implementation is [`Pinentry`]:
//! GnuPG's pinentry programs (pinentry-gnome3, -qt, -gtk-2, -curses on Linux, pinentry-mac,
//! Gpg4win's pinentry on Windows) spoken to over their Assuan protocol. Tests drive the same code
//! with a scripted pinentry program, as GnuPG's own tests do; there is no test-only path.
//!
//! The API is blocking: the bridge calls it from a worker thread. A [`Cancel`] given with each
//! call ends the prompt from another thread (the HTTP client went away, the agent stops): the
//! pinentry window goes away at once and the call returns [`PromptError::Aborted`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use zeroize::Zeroizing;

pub mod assuan;
pub mod pinentry;

pub use pinentry::{PASSED_ENV, PASSED_ENV_PREFIX, Pinentry};

/// Cancels a prompt or a queued job from another thread (the HTTP client went away, the agent
/// stops). Clones share one state: cancelling any clone cancels them all. Cancelling is final.
#[derive(Clone, Default, Debug)]
pub struct Cancel(Arc<CancelState>);

#[derive(Default, Debug)]
struct CancelState {
    cancelled: Mutex<bool>,
    changed: Condvar,
}

/// Why [`Cancel::wait_until`] returned.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Wake {
    Cancelled,
    Deadline,
    /// The `stop` flag was set (and [`Cancel::wake_waiters`] called).
    Stopped,
}

impl Cancel {
    pub fn new() -> Cancel {
        Cancel::default()
    }

    /// Cancels: every waiter wakes, every prompt using this token (or a clone) ends.
    pub fn cancel(&self) {
        *self.lock() = true;
        self.0.changed.notify_all();
    }

    pub fn is_cancelled(&self) -> bool {
        *self.lock()
    }

    /// Blocks until cancelled (returns `true`) or until `timeout` has passed (returns `false`).
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        let deadline = Instant::now().checked_add(timeout);
        let never = AtomicBool::new(false);
        self.wait_until(deadline, &never) == Wake::Cancelled
    }

    /// Blocks until cancelled, until `deadline` (`None`: no deadline), or until `stop` is set
    /// by a thread that then calls [`Cancel::wake_waiters`]. Cancellation wins ties.
    pub(crate) fn wait_until(&self, deadline: Option<Instant>, stop: &AtomicBool) -> Wake {
        let mut cancelled = self.lock();
        loop {
            if *cancelled {
                return Wake::Cancelled;
            }
            if stop.load(Ordering::SeqCst) {
                return Wake::Stopped;
            }
            match deadline {
                None => {
                    cancelled = self
                        .0
                        .changed
                        .wait(cancelled)
                        .unwrap_or_else(PoisonError::into_inner);
                }
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        return Wake::Deadline;
                    }
                    cancelled = self
                        .0
                        .changed
                        .wait_timeout(cancelled, deadline - now)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0;
                }
            }
        }
    }

    /// Wakes every waiter without cancelling, so they look at their `stop` flags again. Set
    /// the flag before calling: the lock taken here orders it before the waiters' next check.
    pub(crate) fn wake_waiters(&self) {
        drop(self.lock());
        self.0.changed.notify_all();
    }

    fn lock(&self) -> MutexGuard<'_, bool> {
        self.0
            .cancelled
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// Whether a website may use the card.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ConsentRequest<'a> {
    /// The site's origin as the browser reported it (`https://example.org`).
    pub origin: &'a str,
    /// What the site asks for, as the user should read it (agent wording, never the site's):
    /// "sign in with your Citizen Card", "read your authentication certificate".
    pub operation: &'a str,
    /// The card holder's name, when the card has been read already.
    pub holder: Option<&'a str>,
}

/// The user's answer to a [`ConsentRequest`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Consent {
    /// This request only.
    Once,
    /// This request, and this site from now on (the caller records it).
    Always,
    Deny,
}

/// A PIN for the card.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct PinRequest<'a> {
    pub origin: &'a str,
    pub operation: &'a str,
    pub holder: Option<&'a str>,
    /// Which PIN, as the user knows it: "authentication PIN", "signature PIN".
    pub pin_name: &'a str,
    /// Attempts left before the PIN is blocked, when the card says.
    pub retries_left: Option<u8>,
    /// Why the user is asked again ("Wrong PIN."), shown highlighted.
    pub error: Option<&'a str>,
}

/// The card access number (CAN) printed on a document, for PACE.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct CanRequest<'a> {
    pub origin: &'a str,
    pub operation: &'a str,
    /// Why the user is asked again ("Wrong CAN."), shown highlighted.
    pub error: Option<&'a str>,
}

/// How a prompt can fail. The user denying consent is not an error: it is [`Consent::Deny`].
#[derive(thiserror::Error, Clone, PartialEq, Eq, Debug)]
pub enum PromptError {
    /// The user cancelled the PIN dialog.
    #[error("the user cancelled")]
    Cancelled,
    /// The user did not answer in time.
    #[error("the user did not answer in time")]
    Timeout,
    /// The [`Cancel`] given with the request fired (the client went away, the agent stops).
    #[error("the request was withdrawn")]
    Aborted,
    /// No dialog could be shown (no pinentry program, no display, a broken program).
    #[error("cannot ask the user: {0}")]
    Unavailable(String),
}

impl PromptError {
    /// A stable identifier for logs and JSON.
    pub fn code(&self) -> &'static str {
        match self {
            PromptError::Cancelled => "cancelled",
            PromptError::Timeout => "timeout",
            PromptError::Aborted => "aborted",
            PromptError::Unavailable(_) => "prompt-unavailable",
        }
    }
}

/// Asks the user. Blocking; every method returns early with [`PromptError::Aborted`] when
/// `cancel` fires.
pub trait Prompt: Send + Sync + std::fmt::Debug {
    /// May `req.origin` do `req.operation` with the card?
    fn consent(&self, req: &ConsentRequest<'_>, cancel: &Cancel) -> Result<Consent, PromptError>;

    /// The PIN, as typed (the caller checks its format).
    fn pin(&self, req: &PinRequest<'_>, cancel: &Cancel) -> Result<Zeroizing<String>, PromptError>;

    /// The CAN of a document, as typed (the caller checks its format).
    fn can(&self, req: &CanRequest<'_>, cancel: &Cancel) -> Result<Zeroizing<String>, PromptError> {
        let _ = (req, cancel);
        Err(PromptError::Unavailable(
            "this prompt cannot ask for a card access number".into(),
        ))
    }
}
