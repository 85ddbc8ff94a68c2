//! One-time codes: issued per session and purpose, stored as a keyed hash, single use,
//! expiring, with a bounded number of attempts and rate limits on issuing.

use std::fmt;

use sqlx::Row as _;
use thiserror::Error;
use zeroize::Zeroizing;

use super::{CODE_HISTORY_SECS, Store, StoreError};
use crate::delivery::{Contact, Purpose};
use crate::secrets::{CodeKey, constant_time_eq, new_id, try_new_code};

/// Limits on one-time codes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CodePolicy {
    /// Lifetime of a code.
    pub ttl_secs: i64,
    /// Comparisons allowed per code (wrong or right); then a new code is needed.
    pub max_attempts: u32,
    /// Minimum time between two codes for the same session and purpose ("resend").
    pub resend_after_secs: i64,
    /// Codes sent to one contact in any hour, across all sessions (limits message bombing of
    /// a victim's phone or mailbox).
    pub max_per_contact_per_hour: u32,
}

impl Default for CodePolicy {
    /// 5 minutes, 3 attempts, 30 s between resends, 5 codes per contact per hour.
    fn default() -> Self {
        Self {
            ttl_secs: 300,
            max_attempts: 3,
            resend_after_secs: 30,
            max_per_contact_per_hour: 5,
        }
    }
}

/// A code just issued: send it, then forget it (zeroized on drop).
pub struct IssuedCode {
    /// The 6 digits, in clear.
    pub code: Zeroizing<String>,
    /// Unix seconds after which it is refused.
    pub expires_at: i64,
}

impl fmt::Debug for IssuedCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedCode")
            .field("code", &"******")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// Why a code is not issued or not accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum CodeRejected {
    /// Too soon after the previous code, or too many codes to this contact this hour.
    #[error("too many codes requested: try again in {retry_after_secs} seconds")]
    RateLimited {
        /// Seconds until a new code can be issued.
        retry_after_secs: i64,
    },
    /// No code is outstanding for this session and purpose (never sent, already used,
    /// replaced by a newer one).
    #[error("there is no code to confirm: ask for a new one")]
    NoCode,
    /// The code's lifetime is over.
    #[error("the code has expired: ask for a new one")]
    Expired,
    /// The code given is not the one sent. `attempts_left` more tries on this code; at 0 a
    /// new code is needed.
    #[error("wrong code ({attempts_left} tries left)")]
    Wrong {
        /// Tries left on this code.
        attempts_left: u32,
    },
    /// Every attempt on this code was used (this request's code was not compared).
    #[error("too many wrong codes: ask for a new one")]
    AttemptsExhausted,
}

impl CodeRejected {
    /// The API error code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::RateLimited { .. } => "code-rate-limited",
            Self::NoCode => "code-missing",
            Self::Expired => "code-expired",
            Self::Wrong { .. } => "code-wrong",
            Self::AttemptsExhausted => "code-attempts-exhausted",
        }
    }
}

/// Normalises what a citizen typed: white space (including inside: "123 456") is ignored.
fn normalise(code: &str) -> Zeroizing<String> {
    Zeroizing::new(code.chars().filter(|c| !c.is_whitespace()).collect())
}

impl Store {
    /// Detaches every code of the session `token_hash` from it: the outstanding one can no
    /// longer be confirmed, and the session's resend interval starts afresh. For the desk,
    /// whose operator session serves one citizen after another: the next citizen must not
    /// inherit the previous one's code or wait out its resend interval. The rows stay (under a
    /// tombstone key) until they age out, so the per-contact hourly limit still counts them.
    pub async fn detach_codes(&self, token_hash: &str) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE codes SET token_hash = 'detached:' || id, \
             state = CASE WHEN state = 'active' THEN 'replaced' ELSE state END \
             WHERE token_hash = $1",
        )
        .bind(token_hash)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Issues a new one-time code for (`token_hash`, `purpose`) addressed to `contact`, unless
    /// rate-limited: at most one per `resend_after_secs` per session and purpose, at most
    /// `max_per_contact_per_hour` per contact. The new code replaces any outstanding one for
    /// the same session and purpose. Only the code's HMAC is stored.
    ///
    /// Under concurrency the per-contact limit is also enforced by the insert itself (it
    /// inserts only while the count is below the limit); two simultaneous issues for the same
    /// session may both void each other, which fails closed (the citizen asks again).
    pub async fn issue_code(
        &self,
        key: &CodeKey,
        purpose: Purpose,
        token_hash: &str,
        contact: &Contact,
        now: i64,
        policy: &CodePolicy,
    ) -> Result<Result<IssuedCode, CodeRejected>, StoreError> {
        // Resend interval for this session and purpose.
        let last: Option<i64> = sqlx::query(
            "SELECT MAX(created_at) AS last FROM codes WHERE token_hash = $1 AND purpose = $2",
        )
        .bind(token_hash)
        .bind(purpose.as_str())
        .fetch_one(&self.pool)
        .await?
        .try_get("last")?;
        if let Some(last) = last {
            let ready_at = last.saturating_add(policy.resend_after_secs);
            if now < ready_at {
                return Ok(Err(CodeRejected::RateLimited {
                    retry_after_secs: ready_at - now,
                }));
            }
        }
        // Codes to this contact in the last hour.
        let window_start = now - CODE_HISTORY_SECS;
        let row = sqlx::query(
            "SELECT COUNT(*) AS n, MIN(created_at) AS oldest FROM codes \
             WHERE contact = $1 AND created_at > $2",
        )
        .bind(contact.as_str())
        .bind(window_start)
        .fetch_one(&self.pool)
        .await?;
        let count: i64 = row.try_get("n")?;
        let oldest: Option<i64> = row.try_get("oldest")?;
        let limit = i64::from(policy.max_per_contact_per_hour);
        if count >= limit {
            let retry = oldest.map_or(CODE_HISTORY_SECS, |t| t + CODE_HISTORY_SECS - now);
            return Ok(Err(CodeRejected::RateLimited {
                retry_after_secs: retry.max(1),
            }));
        }

        let code = try_new_code()?;
        let code_hash = key.hash(purpose.as_str(), token_hash, &code);
        let id = new_id()?;
        let expires_at = now.saturating_add(policy.ttl_secs);
        let inserted = sqlx::query(
            "INSERT INTO codes (id, purpose, token_hash, contact, code_hash, created_at, \
             expires_at, attempts, state) \
             SELECT $1, $2, $3, $4, $5, $6, $7, 0, 'active' \
             WHERE (SELECT COUNT(*) FROM codes WHERE contact = $4 AND created_at > $8) < $9",
        )
        .bind(&id)
        .bind(purpose.as_str())
        .bind(token_hash)
        .bind(contact.as_str())
        .bind(&code_hash)
        .bind(now)
        .bind(expires_at)
        .bind(window_start)
        .bind(limit)
        .execute(&self.pool)
        .await?;
        if inserted.rows_affected() != 1 {
            return Ok(Err(CodeRejected::RateLimited {
                retry_after_secs: policy.resend_after_secs.max(1),
            }));
        }
        sqlx::query(
            "UPDATE codes SET state = 'replaced' WHERE token_hash = $1 AND purpose = $2 \
             AND state = 'active' AND id <> $3",
        )
        .bind(token_hash)
        .bind(purpose.as_str())
        .bind(&id)
        .execute(&self.pool)
        .await?;
        Ok(Ok(IssuedCode { code, expires_at }))
    }

    /// Checks `code` against the outstanding code of (`token_hash`, `purpose`).
    ///
    /// An attempt is reserved atomically before the comparison, so at most
    /// `policy.max_attempts` comparisons ever happen per code, even under concurrent requests.
    /// The outcomes:
    /// - `Ok(())`: right, and now used (a second confirmation gets [`CodeRejected::NoCode`]);
    /// - [`CodeRejected::Wrong`] with the tries left on this code (0: ask for a new one);
    ///   every `Wrong` is one wrong code actually submitted, for the caller's failure counter;
    /// - [`CodeRejected::AttemptsExhausted`]: no try left, the code was not compared;
    /// - [`CodeRejected::Expired`], [`CodeRejected::NoCode`].
    pub async fn verify_code(
        &self,
        key: &CodeKey,
        purpose: Purpose,
        token_hash: &str,
        code: &str,
        now: i64,
        policy: &CodePolicy,
    ) -> Result<Result<(), CodeRejected>, StoreError> {
        let max = i64::from(policy.max_attempts);
        let row = sqlx::query(
            "SELECT id, expires_at, attempts FROM codes \
             WHERE token_hash = $1 AND purpose = $2 AND state = 'active' \
             ORDER BY created_at DESC, id LIMIT 1",
        )
        .bind(token_hash)
        .bind(purpose.as_str())
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok(Err(CodeRejected::NoCode));
        };
        let id: String = row.try_get("id")?;
        let expires_at: i64 = row.try_get("expires_at")?;
        let attempts: i64 = row.try_get("attempts")?;
        if now >= expires_at {
            return Ok(Err(CodeRejected::Expired));
        }
        if attempts >= max {
            return Ok(Err(CodeRejected::AttemptsExhausted));
        }
        // Reserve one attempt.
        let reserved = sqlx::query(
            "UPDATE codes SET attempts = attempts + 1 \
             WHERE id = $1 AND state = 'active' AND attempts < $2 AND expires_at > $3 \
             RETURNING attempts, code_hash",
        )
        .bind(&id)
        .bind(max)
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        let Some(reserved) = reserved.first() else {
            // Lost a race: used, replaced or exhausted meanwhile.
            let state: Option<String> = sqlx::query("SELECT state FROM codes WHERE id = $1")
                .bind(&id)
                .fetch_optional(&self.pool)
                .await?
                .map(|r| r.try_get("state"))
                .transpose()?;
            return Ok(Err(match state.as_deref() {
                Some("active") => CodeRejected::AttemptsExhausted,
                _ => CodeRejected::NoCode,
            }));
        };
        let attempts: i64 = reserved.try_get("attempts")?;
        let stored_hash: String = reserved.try_get("code_hash")?;
        let given = normalise(code);
        let given_hash = key.hash(purpose.as_str(), token_hash, &given);
        if !constant_time_eq(&given_hash, &stored_hash) {
            let left = (max - attempts).max(0);
            return Ok(Err(CodeRejected::Wrong {
                attempts_left: u32::try_from(left).unwrap_or(0),
            }));
        }
        let used =
            sqlx::query("UPDATE codes SET state = 'used' WHERE id = $1 AND state = 'active'")
                .bind(&id)
                .execute(&self.pool)
                .await?;
        if used.rows_affected() == 1 {
            Ok(Ok(()))
        } else {
            Ok(Err(CodeRejected::NoCode))
        }
    }
}
