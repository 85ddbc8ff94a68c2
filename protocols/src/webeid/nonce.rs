//! Challenge nonces: the format rules and a single-use, expiring, in-memory store.

use std::collections::HashMap;
use std::sync::Mutex;

use thiserror::Error;
use time::{Duration, OffsetDateTime};

use super::b64;

/// Shortest nonce: 32 bytes base64-encoded (the Web eID application refuses shorter ones).
pub const NONCE_MIN_LEN: usize = 44;
/// Longest nonce accepted here (the Web eID application itself stops at 128).
pub const NONCE_MAX_LEN: usize = 512;
/// Entropy required: the decoded nonce has at least this many bytes.
pub const NONCE_MIN_BYTES: usize = 32;
/// Bytes of randomness in an issued nonce.
pub const NONCE_BYTES: usize = 32;
/// How long an issued nonce stays valid unless configured otherwise (as the reference
/// validators' nonce generators).
pub const DEFAULT_NONCE_TTL: Duration = Duration::minutes(5);
/// Outstanding nonces a store keeps unless configured otherwise; past it, the oldest go.
pub const DEFAULT_NONCE_CAPACITY: usize = 65_536;

/// Why a nonce is refused.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum NonceError {
    /// Shorter than [`NONCE_MIN_LEN`] or longer than [`NONCE_MAX_LEN`] characters.
    #[error("a challenge nonce has {NONCE_MIN_LEN} to {NONCE_MAX_LEN} characters, this one {0}")]
    Length(usize),
    /// Not base64, or fewer than [`NONCE_MIN_BYTES`] bytes once decoded.
    #[error("a challenge nonce is base64 of at least {NONCE_MIN_BYTES} random bytes")]
    Encoding,
    /// Not issued by this store (or forgotten after it expired).
    #[error("unknown challenge nonce")]
    Unknown,
    /// Issued, but its lifetime is over.
    #[error("the challenge nonce has expired")]
    Expired,
    /// Already consumed once.
    #[error("the challenge nonce was already used")]
    Reused,
    /// The system random generator failed.
    #[error("no randomness for a nonce: {0}")]
    Random(String),
}

impl NonceError {
    /// A stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Length(_) | Self::Encoding => "nonce-invalid",
            Self::Unknown => "nonce-unknown",
            Self::Expired => "nonce-expired",
            Self::Reused => "nonce-reused",
            Self::Random(_) => "nonce-random",
        }
    }
}

/// Checks the form of a challenge nonce: [`NONCE_MIN_LEN`] to [`NONCE_MAX_LEN`] characters,
/// base64 (standard or URL-safe alphabet, padding optional) of at least [`NONCE_MIN_BYTES`]
/// bytes.
pub fn check_nonce(nonce: &str) -> Result<(), NonceError> {
    let chars = nonce.chars().count();
    if !(NONCE_MIN_LEN..=NONCE_MAX_LEN).contains(&chars) {
        return Err(NonceError::Length(chars));
    }
    match b64::decode(nonce) {
        Some(bytes) if bytes.len() >= NONCE_MIN_BYTES => Ok(()),
        _ => Err(NonceError::Encoding),
    }
}

#[derive(Debug)]
enum State {
    Issued,
    Consumed,
}

#[derive(Debug, Default)]
struct Entries {
    /// nonce -> (expiry, state). Consumed nonces stay until their expiry so that a replay is
    /// reported as such.
    map: HashMap<String, (OffsetDateTime, State)>,
}

impl Entries {
    fn prune(&mut self, now: OffsetDateTime) {
        self.map.retain(|_, (expiry, _)| *expiry >= now);
    }
}

/// Issued challenge nonces, each valid once for a limited time. In memory and thread-safe
/// (share it behind an `Arc`); a server with several processes needs a shared store instead.
///
/// The time is always given by the caller (sans-IO): `issue(now)`, `consume(nonce, now)`.
#[derive(Debug)]
pub struct NonceStore {
    ttl: Duration,
    capacity: usize,
    entries: Mutex<Entries>,
}

impl Default for NonceStore {
    fn default() -> Self {
        Self::new(DEFAULT_NONCE_TTL)
    }
}

impl NonceStore {
    /// A store whose nonces live `ttl`.
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            capacity: DEFAULT_NONCE_CAPACITY,
            entries: Mutex::new(Entries::default()),
        }
    }

    /// Keeps at most `capacity` nonces (at least 1); the oldest are dropped past it.
    pub fn with_capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity.max(1);
        self
    }

    /// The lifetime of an issued nonce.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        // A panic while holding the lock leaves a consistent map: keep using it.
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Issues a fresh nonce: [`NONCE_BYTES`] random bytes, base64 (44 characters), valid from
    /// `now` for the store's lifetime.
    pub fn issue(&self, now: OffsetDateTime) -> Result<String, NonceError> {
        let mut bytes = [0u8; NONCE_BYTES];
        openssl::rand::rand_bytes(&mut bytes).map_err(|e| NonceError::Random(e.to_string()))?;
        let nonce = b64::encode(&bytes);
        let mut entries = self.lock();
        entries.prune(now);
        while entries.map.len() >= self.capacity {
            let oldest = entries
                .map
                .iter()
                .min_by_key(|(_, (expiry, _))| *expiry)
                .map(|(k, _)| k.clone());
            match oldest {
                Some(k) => entries.map.remove(&k),
                None => break,
            };
        }
        // A lifetime past the calendar's end means "never expires" rather than a panic.
        let expiry = now.checked_add(self.ttl).unwrap_or(OffsetDateTime::new_utc(
            time::Date::MAX,
            time::Time::MIDNIGHT,
        ));
        entries.map.insert(nonce.clone(), (expiry, State::Issued));
        Ok(nonce)
    }

    /// Consumes `nonce` at `now`: succeeds once for a nonce this store issued and that has not
    /// expired. Whatever the outcome, the nonce cannot be used afterwards.
    pub fn consume(&self, nonce: &str, now: OffsetDateTime) -> Result<(), NonceError> {
        let mut entries = self.lock();
        let result = match entries.map.get_mut(nonce) {
            None => Err(NonceError::Unknown),
            Some((_, State::Consumed)) => Err(NonceError::Reused),
            Some((expiry, _)) if now > *expiry => Err(NonceError::Expired),
            Some((_, state)) => {
                *state = State::Consumed;
                Ok(())
            }
        };
        if result == Err(NonceError::Expired) {
            entries.map.remove(nonce);
        }
        entries.prune(now);
        result
    }

    /// Nonces currently remembered (issued or consumed, not yet expired at the last call).
    pub fn len(&self) -> usize {
        self.lock().map.len()
    }

    /// Whether the store remembers no nonce.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
