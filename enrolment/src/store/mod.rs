//! Persistent state of the enrolment service: sessions, challenge nonces, one-time codes,
//! bindings (identity <-> mobile key), desk operators and the audit trail.
//!
//! One [`Store`] over `sqlx::AnyPool` serves SQLite (embedded, the default: a file created on
//! first use, WAL journal, foreign keys on, busy timeout) and PostgreSQL (`postgres://...`).
//! The schema lives in `enrolment/migrations` and is applied by `sqlx::migrate!` on open; the
//! SQL is portable: `$1..$N` placeholders (SQLite reads `$N` as the N-th argument), `TEXT` and
//! `BIGINT` columns only, ids are random hex chosen here, times are Unix seconds given by the
//! caller (`now`), so tests control the clock.
//!
//! The security-relevant operations are single SQL statements whose `WHERE` clause carries
//! the precondition, with `rows_affected` / `RETURNING` telling whether this caller won:
//! - a nonce is consumed by `UPDATE nonces SET used = 1 WHERE nonce = $1 AND used = 0 AND
//!   session AND purpose AND not expired`: two concurrent requests with the same token cannot
//!   both pass;
//! - a one-time-code attempt is *reserved* before the code is compared (`UPDATE codes SET
//!   attempts = attempts + 1 WHERE ... AND attempts < max RETURNING attempts`), so concurrent
//!   guesses never get more than `max_attempts` comparisons, and a right code is consumed by
//!   `UPDATE ... SET state = 'used' WHERE state = 'active'`: single use;
//! - a wrong PIN or code on login increments the binding's failure counter and suspends it at
//!   the limit in the same statement.
//!
//! Nothing secret is stored in clear: sessions are keyed by the SHA-256 of the cookie, codes
//! by their HMAC under a key kept outside the database ([`CodeKey`]), PINs and operator
//! passwords are argon2id PHC strings made by the caller ([`crate::secrets::PinHasher`]).

mod bindings;
mod codes;

use std::str::FromStr as _;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Serialize;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row as _};
use thiserror::Error;

pub use bindings::{Binding, BindingConflict, FailureOutcome, NewBinding};
pub use codes::{CodePolicy, CodeRejected, IssuedCode};

pub use crate::delivery::{Contact, Purpose};
pub use crate::secrets::CodeKey;
use crate::secrets::{SecretError, new_id, random_bytes};

/// The schema migrations (enrolment/migrations), embedded at build time.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// How long a used or expired nonce is remembered after its expiry, so that a late replay is
/// reported as "reused" or "expired" rather than "unknown".
pub const NONCE_GRACE_SECS: i64 = 3600;
/// How long a one-time code row is kept after creation: the per-contact hourly limit counts
/// them.
pub const CODE_HISTORY_SECS: i64 = 3600;
/// Bytes of randomness in a challenge nonce (44 base64 characters).
pub const NONCE_BYTES: usize = 32;

/// Errors of the store: the database, the migrations, or data that does not decode. Refusals
/// that a citizen causes (wrong code, reused nonce, contact taken) are not errors: they are
/// the inner `Err` of the `Result<Result<_, Refusal>, StoreError>` the operations return.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database URL is not one this store accepts.
    #[error("unsupported database URL (use sqlite:PATH, sqlite::memory: or postgres://...): {0}")]
    Url(String),
    /// The database refused or failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// Applying the schema migrations failed.
    #[error("database migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A stored JSON column does not decode, or a value does not encode.
    #[error("stored JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// No randomness for an id, nonce or code.
    #[error(transparent)]
    Secret(#[from] SecretError),
    /// The session does not exist or has expired (for [`Store::save_session`]).
    #[error("the session has expired or does not exist")]
    SessionGone,
    /// The row the operation names does not exist (binding id...).
    #[error("no such {0}")]
    NotFound(&'static str),
    /// A stored value is out of its range (a negative counter...): the database was edited.
    #[error("inconsistent stored data: {0}")]
    Corrupt(String),
}

/// A session as stored.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SessionRow {
    /// SHA-256 hex of the cookie token.
    pub token_hash: String,
    /// "citizen", "login", "desk"... (the server's vocabulary).
    pub kind: String,
    /// The server's session data.
    pub data: serde_json::Value,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds of the last save.
    pub updated_at: i64,
    /// Unix seconds after which the session is gone.
    pub expires_at: i64,
}

/// Why a nonce is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum NonceRejected {
    /// Never issued here, or forgotten (purged).
    #[error("this challenge was not issued by this service")]
    Unknown,
    /// Issued, but its lifetime is over.
    #[error("this challenge has expired")]
    Expired,
    /// Already used once.
    #[error("this challenge was already used")]
    Reused,
    /// Issued to another session: the token was made in someone else's browser session.
    #[error("this challenge was issued to another session")]
    OtherSession,
    /// Issued for another step (e.g. a desk nonce presented to the card step).
    #[error("this challenge was issued for another purpose")]
    OtherPurpose,
}

impl NonceRejected {
    /// API error code: `nonce-unknown`, `nonce-expired` or `nonce-reused` (a nonce of another
    /// session or purpose was not issued *for this request*: `nonce-unknown`).
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unknown | Self::OtherSession | Self::OtherPurpose => "nonce-unknown",
            Self::Expired => "nonce-expired",
            Self::Reused => "nonce-reused",
        }
    }
}

/// One audit event.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EventRow {
    /// Random id.
    pub id: String,
    /// Order of writing (ties of `time` broken by it).
    pub seq: i64,
    /// Unix seconds.
    pub time: i64,
    /// "enrolled", "login", "suspended", "refused"...
    pub kind: String,
    /// The binding concerned, if any.
    pub binding_id: Option<String>,
    /// Details (never secrets).
    pub detail: serde_json::Value,
}

/// The enrolment service's database. Cheap to clone (a pool handle).
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    backend: &'static str,
}

/// The `sqlite:` URL of a database file at `path`, percent-encoding the characters that would
/// otherwise end the path in a URL (`%`, `?`, `#`). Use it to build `--database` defaults from a
/// data directory.
pub fn sqlite_url(path: &std::path::Path) -> String {
    let mut url = String::from("sqlite:");
    for c in path.to_string_lossy().chars() {
        match c {
            '%' => url.push_str("%25"),
            '?' => url.push_str("%3F"),
            '#' => url.push_str("%23"),
            c => url.push(c),
        }
    }
    url
}

/// Decodes `%XX` escapes (as sqlx does for SQLite file names); invalid escapes stay as they are.
fn percent_decode_lossy(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b, hex) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn sqlite_path_and_query(url: &str) -> Option<(&str, Option<&str>)> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    Some(match rest.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (rest, None),
    })
}

impl Store {
    /// Opens the database at `url` and brings its schema up to date.
    ///
    /// - `sqlite:PATH` (or `sqlite://PATH`): the file and its directory are created when
    ///   missing (`mode=rwc` is added unless the URL sets a mode); WAL journal, foreign keys,
    ///   10 s busy timeout; up to 8 connections;
    /// - `sqlite::memory:`: a private in-memory database on a single connection that is never
    ///   recycled (tests);
    /// - `postgres://...` or `postgresql://...`: up to 10 connections; the schema goes to the
    ///   first schema of the search path (`?options[search_path]=...` selects one).
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let (backend, url, pool_options) = if let Some((path, query)) = sqlite_path_and_query(url) {
            let memory = path == ":memory:" || query.is_some_and(|q| q.contains("mode=memory"));
            let mut pool = AnyPoolOptions::new();
            let url = if memory {
                pool = pool
                    .max_connections(1)
                    .min_connections(1)
                    .idle_timeout(None)
                    .max_lifetime(None);
                url.to_owned()
            } else {
                if path.is_empty() {
                    return Err(StoreError::Url("sqlite: without a path".to_owned()));
                }
                let file = percent_decode_lossy(path);
                if let Some(dir) = std::path::Path::new(&file)
                    .parent()
                    .filter(|d| !d.as_os_str().is_empty())
                {
                    std::fs::create_dir_all(dir).map_err(|e| {
                        StoreError::Url(format!("cannot create {}: {e}", dir.display()))
                    })?;
                }
                pool = pool.max_connections(8);
                match query {
                    Some(q) if q.contains("mode=") => url.to_owned(),
                    Some(q) => format!("sqlite:{path}?{q}&mode=rwc"),
                    None => format!("sqlite:{path}?mode=rwc"),
                }
            };
            let pool = pool.after_connect(move |conn, _meta| {
                Box::pin(async move {
                    sqlx::query("PRAGMA foreign_keys = ON")
                        .execute(&mut *conn)
                        .await?;
                    sqlx::query("PRAGMA busy_timeout = 10000")
                        .execute(&mut *conn)
                        .await?;
                    if !memory {
                        sqlx::query("PRAGMA journal_mode = WAL")
                            .fetch_all(&mut *conn)
                            .await?;
                        // With WAL, NORMAL is durable across application crashes and keeps the
                        // database consistent across power loss.
                        sqlx::query("PRAGMA synchronous = NORMAL")
                            .execute(&mut *conn)
                            .await?;
                    }
                    Ok(())
                })
            });
            ("sqlite", url, pool)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            (
                "postgres",
                url.to_owned(),
                AnyPoolOptions::new().max_connections(10),
            )
        } else {
            // Do not echo the URL: it may carry a password.
            let scheme = url.split(':').next().unwrap_or_default();
            return Err(StoreError::Url(format!("scheme {scheme:?}")));
        };
        let options = AnyConnectOptions::from_str(&url)?;
        let pool = pool_options
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options)
            .await?;
        MIGRATOR.run(&pool).await?;
        Ok(Store { pool, backend })
    }

    /// `"sqlite"` or `"postgres"`.
    pub fn backend(&self) -> &'static str {
        self.backend
    }

    /// The underlying pool (for tests and maintenance commands).
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Closes the pool (waits for connections to be returned).
    pub async fn close(&self) {
        self.pool.close().await;
    }

    // -----------------------------------------------------------------------------------------
    // Sessions
    // -----------------------------------------------------------------------------------------

    /// Stores a new session under `token_hash` (the SHA-256 of the cookie token).
    pub async fn create_session(
        &self,
        token_hash: &str,
        kind: &str,
        data: &serde_json::Value,
        now: i64,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO sessions (token_hash, kind, data, created_at, updated_at, expires_at) \
             VALUES ($1, $2, $3, $4, $4, $5)",
        )
        .bind(token_hash)
        .bind(kind)
        .bind(serde_json::to_string(data)?)
        .bind(now)
        .bind(expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The session, or `None` when unknown or expired (`now >= expires_at`).
    pub async fn load_session(
        &self,
        token_hash: &str,
        now: i64,
    ) -> Result<Option<SessionRow>, StoreError> {
        let row = sqlx::query(
            "SELECT token_hash, kind, data, created_at, updated_at, expires_at FROM sessions \
             WHERE token_hash = $1 AND expires_at > $2",
        )
        .bind(token_hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            Ok(SessionRow {
                token_hash: row.try_get("token_hash")?,
                kind: row.try_get("kind")?,
                data: serde_json::from_str(&row.try_get::<String, _>("data")?)?,
                created_at: row.try_get("created_at")?,
                updated_at: row.try_get("updated_at")?,
                expires_at: row.try_get("expires_at")?,
            })
        })
        .transpose()
    }

    /// Replaces the session's data. [`StoreError::SessionGone`] when it expired meanwhile (the
    /// lifetime is not extended).
    pub async fn save_session(
        &self,
        token_hash: &str,
        data: &serde_json::Value,
        now: i64,
    ) -> Result<(), StoreError> {
        let done = sqlx::query(
            "UPDATE sessions SET data = $1, updated_at = $2 \
             WHERE token_hash = $3 AND expires_at > $2",
        )
        .bind(serde_json::to_string(data)?)
        .bind(now)
        .bind(token_hash)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 1 {
            Ok(())
        } else {
            Err(StoreError::SessionGone)
        }
    }

    /// Forgets the session (logout, end of flow). Its nonces and codes become useless with it:
    /// they are bound to the token hash.
    pub async fn delete_session(&self, token_hash: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
            .bind(token_hash)
            .execute(&self.pool)
            .await?;
        sqlx::query(
            "UPDATE codes SET state = 'replaced' WHERE token_hash = $1 AND state = 'active'",
        )
        .bind(token_hash)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Deletes expired sessions, nonces expired for more than [`NONCE_GRACE_SECS`], and code
    /// rows both expired and older than [`CODE_HISTORY_SECS`]. Returns the number of rows
    /// deleted.
    pub async fn purge_expired(&self, now: i64) -> Result<u64, StoreError> {
        let sessions = sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
            .bind(now)
            .execute(&self.pool)
            .await?
            .rows_affected();
        let nonces = sqlx::query("DELETE FROM nonces WHERE expires_at <= $1")
            .bind(now - NONCE_GRACE_SECS)
            .execute(&self.pool)
            .await?
            .rows_affected();
        let codes = sqlx::query("DELETE FROM codes WHERE expires_at <= $1 AND created_at <= $2")
            .bind(now)
            .bind(now - CODE_HISTORY_SECS)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(sessions + nonces + codes)
    }

    // -----------------------------------------------------------------------------------------
    // Nonces
    // -----------------------------------------------------------------------------------------

    /// Issues a challenge nonce for `purpose` in the session `token_hash`, valid `ttl_secs`:
    /// 32 random bytes, standard base64 with padding (44 characters, accepted by
    /// `eid_protocols::webeid::check_nonce`).
    pub async fn issue_nonce(
        &self,
        purpose: &str,
        token_hash: &str,
        now: i64,
        ttl_secs: i64,
    ) -> Result<String, StoreError> {
        let mut bytes = [0u8; NONCE_BYTES];
        random_bytes(&mut bytes)?;
        let nonce = STANDARD.encode(bytes);
        sqlx::query(
            "INSERT INTO nonces (nonce, purpose, token_hash, created_at, expires_at, used) \
             VALUES ($1, $2, $3, $4, $5, 0)",
        )
        .bind(&nonce)
        .bind(purpose)
        .bind(token_hash)
        .bind(now)
        .bind(now.saturating_add(ttl_secs))
        .execute(&self.pool)
        .await?;
        Ok(nonce)
    }

    /// Consumes `nonce` for `purpose` in the session `token_hash`: succeeds for exactly one
    /// caller, and only while `now < expires_at`. A refused nonce of another session or purpose
    /// stays usable by its owner.
    pub async fn consume_nonce(
        &self,
        nonce: &str,
        purpose: &str,
        token_hash: &str,
        now: i64,
    ) -> Result<Result<(), NonceRejected>, StoreError> {
        let done = sqlx::query(
            "UPDATE nonces SET used = 1 WHERE nonce = $1 AND used = 0 AND purpose = $2 \
             AND token_hash = $3 AND expires_at > $4",
        )
        .bind(nonce)
        .bind(purpose)
        .bind(token_hash)
        .bind(now)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 1 {
            return Ok(Ok(()));
        }
        let row = sqlx::query(
            "SELECT purpose, token_hash, expires_at, used FROM nonces WHERE nonce = $1",
        )
        .bind(nonce)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok(Err(NonceRejected::Unknown));
        };
        let (stored_purpose, stored_session, expires_at, used) = (
            row.try_get::<String, _>("purpose")?,
            row.try_get::<String, _>("token_hash")?,
            row.try_get::<i64, _>("expires_at")?,
            row.try_get::<i64, _>("used")?,
        );
        Ok(Err(if stored_session != token_hash {
            NonceRejected::OtherSession
        } else if stored_purpose != purpose {
            NonceRejected::OtherPurpose
        } else if used != 0 {
            NonceRejected::Reused
        } else if now >= expires_at {
            NonceRejected::Expired
        } else {
            // Matched every condition yet the UPDATE missed: it was consumed between the two
            // statements by a concurrent request.
            NonceRejected::Reused
        }))
    }

    // -----------------------------------------------------------------------------------------
    // Desk operators
    // -----------------------------------------------------------------------------------------

    /// Adds the operator `name` with the argon2id PHC string `password_phc`, or replaces the
    /// password of an existing one.
    pub async fn add_operator(
        &self,
        name: &str,
        password_phc: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO operators (name, password_phc, created_at, updated_at) \
             VALUES ($1, $2, $3, $3) \
             ON CONFLICT (name) DO UPDATE SET password_phc = excluded.password_phc, \
             updated_at = excluded.updated_at",
        )
        .bind(name)
        .bind(password_phc)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The operator's PHC string, `None` if there is no such operator.
    pub async fn operator_password(&self, name: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT password_phc FROM operators WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get("password_phc")).transpose()?)
    }

    // -----------------------------------------------------------------------------------------
    // Audit trail
    // -----------------------------------------------------------------------------------------

    /// Appends an audit event. `detail` must not contain secrets (PINs, codes, tokens).
    pub async fn log_event(
        &self,
        kind: &str,
        binding_id: Option<&str>,
        detail: &serde_json::Value,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO events (id, seq, time, kind, binding_id, detail) \
             SELECT $1, COALESCE(MAX(seq), 0) + 1, $2, $3, $4, $5 FROM events",
        )
        .bind(new_id()?)
        .bind(now)
        .bind(kind)
        .bind(binding_id)
        .bind(serde_json::to_string(detail)?)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The latest `limit` events, newest first.
    pub async fn events(&self, limit: i64) -> Result<Vec<EventRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, seq, time, kind, binding_id, detail FROM events \
             ORDER BY seq DESC, time DESC, id LIMIT $1",
        )
        .bind(limit.max(0))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(event_from_row).collect()
    }
}

fn event_from_row(row: &AnyRow) -> Result<EventRow, StoreError> {
    Ok(EventRow {
        id: row.try_get("id")?,
        seq: row.try_get("seq")?,
        time: row.try_get("time")?,
        kind: row.try_get("kind")?,
        binding_id: row.try_get("binding_id")?,
        detail: serde_json::from_str(&row.try_get::<String, _>("detail")?)?,
    })
}

/// Whether `e` is a unique-constraint violation (SQLite or PostgreSQL).
fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}
