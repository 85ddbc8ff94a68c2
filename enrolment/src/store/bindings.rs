//! Bindings: a verified identity (Citizen Card or passport) tied to a mobile key (a contact
//! for one-time codes plus a PIN hash), with the failure counter that suspends the key.

use serde::Serialize;
use sqlx::Row as _;
use sqlx::any::AnyRow;
use thiserror::Error;

use super::{Store, StoreError, is_unique_violation};
use crate::delivery::Contact;
use crate::secrets::new_id;

/// A binding to create, or to replace for the same identity (re-enrolment).
#[derive(Clone, Debug)]
pub struct NewBinding {
    /// Stable identity key: `"pt-cc:PNOPT-12345678"`, `"passport:UTO:IDP000017"`.
    pub identity_key: String,
    /// `"citizen-card"` or `"passport"`.
    pub identity_kind: String,
    /// Name to greet the citizen with.
    pub display_name: String,
    /// The verified identity fields (from the certificate or DG1), as JSON.
    pub identity: serde_json::Value,
    /// Where one-time codes go.
    pub contact: Contact,
    /// argon2id PHC string of the mobile-key PIN.
    pub pin_hash: String,
    /// The desk operator who enrolled the citizen (attended flow), if any.
    pub enrolled_by: Option<String>,
    /// SHA-256 hex of the evidence: the authentication certificate or the SOD.
    pub evidence_sha256: String,
}

/// A stored binding. Serialises without the PIN hash.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Binding {
    /// Random id.
    pub id: String,
    /// See [`NewBinding::identity_key`].
    pub identity_key: String,
    /// `"citizen-card"` or `"passport"`.
    pub identity_kind: String,
    /// Name to greet the citizen with.
    pub display_name: String,
    /// Verified identity fields.
    pub identity: serde_json::Value,
    /// Canonical contact.
    pub contact: String,
    /// `"phone"` or `"email"`.
    pub contact_kind: String,
    /// argon2id PHC string (never serialised).
    #[serde(skip)]
    pub pin_hash: String,
    /// `"active"` or `"suspended"`.
    pub status: String,
    /// Consecutive wrong PINs or codes at login.
    pub failures: u32,
    /// Desk operator, for attended enrolments.
    pub enrolled_by: Option<String>,
    /// SHA-256 hex of the certificate or SOD.
    pub evidence_sha256: String,
    /// Unix seconds of the first enrolment.
    pub created_at: i64,
    /// Unix seconds of the last change.
    pub updated_at: i64,
    /// Unix seconds of the last successful login.
    pub last_login_at: Option<i64>,
}

impl Binding {
    /// Whether the mobile key is usable (not suspended).
    pub fn is_active(&self) -> bool {
        self.status == "active"
    }
}

/// Why a binding is not stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum BindingConflict {
    /// The contact is already the mobile key of another identity.
    #[error("this phone number or e-mail address is already used by another person's mobile key")]
    ContactTaken,
}

impl BindingConflict {
    /// `"contact-taken"`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::ContactTaken => "contact-taken",
        }
    }
}

/// The result of a wrong PIN or code at login.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct FailureOutcome {
    /// Failures left before suspension (0 when suspended).
    pub attempts_left: u32,
    /// Whether the key is now suspended.
    pub suspended: bool,
}

const BINDING_COLUMNS: &str = "id, identity_key, identity_kind, display_name, identity, \
    contact, contact_kind, pin_hash, status, failures, enrolled_by, evidence_sha256, \
    created_at, updated_at, last_login_at";

fn binding_from_row(row: &AnyRow) -> Result<Binding, StoreError> {
    let failures: i64 = row.try_get("failures")?;
    Ok(Binding {
        id: row.try_get("id")?,
        identity_key: row.try_get("identity_key")?,
        identity_kind: row.try_get("identity_kind")?,
        display_name: row.try_get("display_name")?,
        identity: serde_json::from_str(&row.try_get::<String, _>("identity")?)?,
        contact: row.try_get("contact")?,
        contact_kind: row.try_get("contact_kind")?,
        pin_hash: row.try_get("pin_hash")?,
        status: row.try_get("status")?,
        failures: u32::try_from(failures)
            .map_err(|_| StoreError::Corrupt(format!("binding failures = {failures}")))?,
        enrolled_by: row.try_get("enrolled_by")?,
        evidence_sha256: row.try_get("evidence_sha256")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        last_login_at: row.try_get("last_login_at")?,
    })
}

impl Store {
    /// Stores the binding of `new.identity_key` to its mobile key.
    ///
    /// For an identity already bound, this is a re-enrolment: contact, PIN hash, name,
    /// identity, evidence and operator are replaced, the status becomes active and the failure
    /// counter 0 (this is how a suspended key is recovered: by proving the identity again); the
    /// id and creation time stay. A contact bound to another identity is refused with
    /// [`BindingConflict::ContactTaken`] (also when two enrolments race for one contact: the
    /// unique constraint decides).
    pub async fn upsert_binding(
        &self,
        new: &NewBinding,
        now: i64,
    ) -> Result<Result<Binding, BindingConflict>, StoreError> {
        let owner: Option<String> =
            sqlx::query("SELECT identity_key FROM bindings WHERE contact = $1")
                .bind(new.contact.as_str())
                .fetch_optional(&self.pool)
                .await?
                .map(|r| r.try_get("identity_key"))
                .transpose()?;
        if owner.is_some_and(|owner| owner != new.identity_key) {
            return Ok(Err(BindingConflict::ContactTaken));
        }
        let result = sqlx::query(
            "INSERT INTO bindings (id, identity_key, identity_kind, display_name, identity, \
             contact, contact_kind, pin_hash, status, failures, enrolled_by, evidence_sha256, \
             created_at, updated_at, last_login_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'active', 0, $9, $10, $11, $11, NULL) \
             ON CONFLICT (identity_key) DO UPDATE SET \
             identity_kind = excluded.identity_kind, display_name = excluded.display_name, \
             identity = excluded.identity, contact = excluded.contact, \
             contact_kind = excluded.contact_kind, pin_hash = excluded.pin_hash, \
             status = 'active', failures = 0, enrolled_by = excluded.enrolled_by, \
             evidence_sha256 = excluded.evidence_sha256, updated_at = excluded.updated_at",
        )
        .bind(new_id()?)
        .bind(&new.identity_key)
        .bind(&new.identity_kind)
        .bind(&new.display_name)
        .bind(serde_json::to_string(&new.identity)?)
        .bind(new.contact.as_str())
        .bind(new.contact.kind())
        .bind(&new.pin_hash)
        .bind(new.enrolled_by.as_deref())
        .bind(&new.evidence_sha256)
        .bind(now)
        .execute(&self.pool)
        .await;
        match result {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => return Ok(Err(BindingConflict::ContactTaken)),
            Err(e) => return Err(e.into()),
        }
        match self.binding_by_identity(&new.identity_key).await? {
            Some(binding) => Ok(Ok(binding)),
            None => Err(StoreError::NotFound("binding")),
        }
    }

    /// The binding whose contact is `contact` (canonical form, see
    /// [`Contact::as_str`]).
    pub async fn binding_by_contact(&self, contact: &str) -> Result<Option<Binding>, StoreError> {
        let sql = format!("SELECT {BINDING_COLUMNS} FROM bindings WHERE contact = $1");
        let row = sqlx::query(&sql)
            .bind(contact)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(binding_from_row).transpose()
    }

    /// The binding of `identity_key`.
    pub async fn binding_by_identity(
        &self,
        identity_key: &str,
    ) -> Result<Option<Binding>, StoreError> {
        let sql = format!("SELECT {BINDING_COLUMNS} FROM bindings WHERE identity_key = $1");
        let row = sqlx::query(&sql)
            .bind(identity_key)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(binding_from_row).transpose()
    }

    /// The binding with this id.
    pub async fn binding_by_id(&self, id: &str) -> Result<Option<Binding>, StoreError> {
        let sql = format!("SELECT {BINDING_COLUMNS} FROM bindings WHERE id = $1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(binding_from_row).transpose()
    }

    /// Every binding, oldest first.
    pub async fn list_bindings(&self) -> Result<Vec<Binding>, StoreError> {
        let sql = format!("SELECT {BINDING_COLUMNS} FROM bindings ORDER BY created_at, id");
        let rows = sqlx::query(&sql).fetch_all(&self.pool).await?;
        rows.iter().map(binding_from_row).collect()
    }

    /// Records a wrong PIN or wrong code at login: failures + 1, and status `suspended` once
    /// failures reach `limit` (at least 1), in one statement (concurrent failures all count).
    /// [`StoreError::NotFound`] for an unknown id.
    pub async fn record_failure(
        &self,
        binding_id: &str,
        now: i64,
        limit: u32,
    ) -> Result<FailureOutcome, StoreError> {
        let limit = i64::from(limit.max(1));
        let rows = sqlx::query(
            "UPDATE bindings SET failures = failures + 1, updated_at = $2, \
             status = CASE WHEN failures + 1 >= $3 THEN 'suspended' ELSE status END \
             WHERE id = $1 RETURNING failures, status",
        )
        .bind(binding_id)
        .bind(now)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let Some(row) = rows.first() else {
            return Err(StoreError::NotFound("binding"));
        };
        let failures: i64 = row.try_get("failures")?;
        let status: String = row.try_get("status")?;
        let suspended = status == "suspended";
        let left = if suspended {
            0
        } else {
            (limit - failures).max(0)
        };
        Ok(FailureOutcome {
            attempts_left: u32::try_from(left).unwrap_or(0),
            suspended,
        })
    }

    /// Records a successful login (right PIN and code): the failure counter goes back to 0 in
    /// the same update. It does not lift a suspension: only re-enrolment
    /// ([`Store::upsert_binding`]) does.
    pub async fn record_login(&self, binding_id: &str, now: i64) -> Result<(), StoreError> {
        let done = sqlx::query(
            "UPDATE bindings SET failures = 0, last_login_at = $2, updated_at = $2 WHERE id = $1",
        )
        .bind(binding_id)
        .bind(now)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 1 {
            Ok(())
        } else {
            Err(StoreError::NotFound("binding"))
        }
    }
}
