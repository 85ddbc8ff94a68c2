//! The JSON API the pages call (section 2 of the contract).
//!
//! Every POST passes [`check_post`] first: the exact Origin of this service (a page elsewhere
//! cannot drive a citizen's session even if a cookie leaked through), `application/json`
//! (which a cross-site form cannot send without a CORS preflight, and this service answers
//! no preflight), a bounded body, and bodies with unknown fields refused.
//!
//! Order of the security checks in each step:
//! - card: the nonce is consumed from the store (bound to this session and purpose) *before*
//!   the token is looked at, so a failed attempt spends it; then the token is validated for
//!   this origin and the configured anchors; the identity comes from the verified certificate.
//! - document: the same with the eMRTD validator (AA challenge bound to origin and nonce).
//! - mobile key: the PIN is hashed (argon2id) at once and only the hash is kept; the code is
//!   stored as a keyed hash by the store, sent once, single use, expiring, rate-limited.
//! - login: an unknown contact costs the same PIN hashing time as a known one; a wrong PIN or
//!   code counts towards suspension of the mobile key.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Buf;
use eid_protocols::lds::Dg2;
use eid_protocols::webeid::{EmrtdResult, ValidatedDocument};
use futures_util::{Stream, StreamExt};
use http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use time::OffsetDateTime;
use warp::Reply;
use zeroize::Zeroizing;

use crate::app::{App, MAX_BODY, MAX_DOCUMENT_BODY};
use crate::delivery::{CodeMessage, Contact, Purpose};
use crate::errors::ApiError;
use crate::identity::{self, VerifiedIdentity};
use crate::operators;
use crate::secrets::{self, check_new_pin};
use crate::session::{self, Kind, PendingKey, PendingLogin, SessionData};
use crate::store::{BindingConflict, CodeRejected, NewBinding, NonceRejected};

/// Nonce purposes (a nonce issued for one step cannot be spent on the other).
const NONCE_CARD: &str = "enrol-card";
const NONCE_DESK: &str = "desk-document";

/// A successful answer: JSON, and maybe a cookie to set.
#[derive(Debug)]
pub struct Answer {
    pub body: Value,
    pub cookie: Option<String>,
}

impl Answer {
    fn json(body: Value) -> Self {
        Self { body, cookie: None }
    }
    fn with_cookie(mut self, cookie: String) -> Self {
        self.cookie = Some(cookie);
        self
    }
    pub fn into_response(self) -> warp::reply::Response {
        let mut response = warp::reply::json(&self.body).into_response();
        if let Some(cookie) = self.cookie
            && let Ok(v) = http::HeaderValue::from_str(&cookie)
        {
            response.headers_mut().insert(http::header::SET_COOKIE, v);
        }
        response
    }
}

type Result<T> = std::result::Result<T, ApiError>;

fn now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

fn db(e: impl std::fmt::Display) -> ApiError {
    ApiError::internal("database", &e)
}

/// Runs argon2 off the async workers (it takes tens of milliseconds on purpose).
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal("blocking task", &e))
}

// ---------------------------------------------------------------------------------------
// Request checks

/// The checks of every POST before its body is read: Origin, then Content-Type.
pub fn check_post(app: &App, headers: &HeaderMap) -> Result<()> {
    let origin = headers
        .get(http::header::ORIGIN)
        .and_then(|v| v.to_str().ok());
    if origin != Some(app.origin.as_str()) {
        return Err(ApiError::new("origin-refused"));
    }
    let json = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if !json {
        return Err(ApiError::new("content-type"));
    }
    Ok(())
}

/// The body limit of `path`.
pub fn body_limit(path: &str) -> usize {
    if path == "desk/document" {
        MAX_DOCUMENT_BODY
    } else {
        MAX_BODY
    }
}

/// Reads a body up to `limit` bytes (a larger Content-Length is refused before reading). The
/// buffer is wiped when dropped: it may hold a PIN or a code.
pub async fn read_body<S, B>(
    headers: &HeaderMap,
    stream: S,
    limit: usize,
) -> Result<Zeroizing<Vec<u8>>>
where
    S: Stream<Item = std::result::Result<B, warp::Error>>,
    B: Buf,
{
    let declared = headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(ApiError::new("too-large"));
    }
    let mut body = Zeroizing::new(Vec::new());
    futures_util::pin_mut!(stream);
    while let Some(chunk) = stream.next().await {
        let mut chunk = chunk.map_err(|_| ApiError::new("bad-request"))?;
        if body.len().saturating_add(chunk.remaining()) > limit {
            return Err(ApiError::new("too-large"));
        }
        while chunk.has_remaining() {
            let part = chunk.chunk();
            let n = part.len();
            body.extend_from_slice(part);
            chunk.advance(n);
        }
    }
    Ok(body)
}

/// Parses a JSON body (unknown fields refused by the types). The parser's message is not
/// logged: it may quote a value, and values here are PINs and codes.
fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T> {
    serde_json::from_slice(body).map_err(|e| {
        tracing::info!(
            category = ?e.classify(),
            line = e.line(),
            column = e.column(),
            "request body refused"
        );
        ApiError::new("bad-request")
    })
}

/// Parses `body` as the request of POST `/api/<path>` would be parsed, and nothing else: the
/// entry point of the `enrolment_input` fuzz target (and of property tests). Unknown paths are
/// `not-found`.
pub fn parse_body(path: &str, body: &[u8]) -> std::result::Result<(), &'static str> {
    let parsed = match path {
        "enrol/start" | "enrol/nonce" | "enrol/resend" | "desk/logout" | "desk/nonce"
        | "desk/next" => parse::<Empty>(body).map(drop),
        "enrol/card" => parse::<CardBody>(body).map(drop),
        "enrol/mobile-key" => parse::<MobileKeyBody>(body).map(drop),
        "enrol/confirm" | "login/confirm" => parse::<CodeBody>(body).map(drop),
        "login/start" => parse::<LoginBody>(body).map(drop),
        "desk/login" => parse::<DeskLoginBody>(body).map(drop),
        "desk/document" => parse::<DocumentBody>(body).and_then(|d| {
            serde_json::from_value::<EmrtdResult>(d.result)
                .map(drop)
                .map_err(|_| ApiError::new("result-format"))
        }),
        _ => return Err("not-found"),
    };
    parsed.map_err(|e| e.code)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Empty {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CardBody {
    token: Value,
    nonce: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct MobileKeyBody {
    contact: String,
    pin: Zeroizing<String>,
    pin_repeat: Zeroizing<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CodeBody {
    code: Zeroizing<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginBody {
    contact: String,
    pin: Zeroizing<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeskLoginBody {
    operator: String,
    password: Zeroizing<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DocumentBody {
    result: Value,
    nonce: String,
}

// ---------------------------------------------------------------------------------------
// Sessions

struct Session {
    token_hash: String,
    data: SessionData,
}

async fn load_session(app: &App, headers: &HeaderMap) -> Result<Option<Session>> {
    let Some(token) = session::token_from(headers) else {
        return Ok(None);
    };
    let token_hash = secrets::session_token_hash(&token);
    let Some(row) = app
        .store
        .load_session(&token_hash, now())
        .await
        .map_err(db)?
    else {
        return Ok(None);
    };
    match serde_json::from_value::<SessionData>(row.data) {
        Ok(data) => Ok(Some(Session { token_hash, data })),
        Err(e) => {
            tracing::warn!(error = %e, "unreadable session data; treated as no session");
            Ok(None)
        }
    }
}

async fn require_session(app: &App, headers: &HeaderMap) -> Result<Session> {
    load_session(app, headers)
        .await?
        .ok_or_else(|| ApiError::new("no-session"))
}

async fn save(app: &App, s: &Session) -> Result<()> {
    let data = serde_json::to_value(&s.data).map_err(|e| ApiError::internal("session", &e))?;
    app.store
        .save_session(&s.token_hash, &data, now())
        .await
        .map_err(db)
}

/// A new session of `kind` (the request's old one, if any, is deleted): the session and the
/// Set-Cookie value.
async fn new_session(
    app: &App,
    headers: &HeaderMap,
    data: SessionData,
) -> Result<(Session, String)> {
    if let Some(old) = session::token_from(headers) {
        app.store
            .delete_session(&secrets::session_token_hash(&old))
            .await
            .map_err(db)?;
    }
    let (token, token_hash) = secrets::new_session_token();
    let t = now();
    let value = serde_json::to_value(&data).map_err(|e| ApiError::internal("session", &e))?;
    app.store
        .create_session(
            &token_hash,
            data.kind.as_str(),
            &value,
            t,
            t + i64::from(app.session_ttl_secs),
        )
        .await
        .map_err(db)?;
    let cookie = session::set_cookie(&token, app.session_ttl_secs);
    Ok((Session { token_hash, data }, cookie))
}

// ---------------------------------------------------------------------------------------
// Dispatch

/// GET `/api/<path>`.
pub async fn get(app: &App, path: &str) -> Result<warp::reply::Response> {
    match path {
        "config" => Ok(warp::reply::json(&json!({
            "origin": app.origin.as_str(),
            "bridgeUrl": app.bridge_url,
            "devOutbox": app.outbox.is_some(),
        }))
        .into_response()),
        "dev/outbox" => match &app.outbox {
            Some(outbox) => Ok(warp::reply::json(&outbox.recent()).into_response()),
            None => Err(ApiError::new("not-found")),
        },
        _ => Err(ApiError::new("not-found")),
    }
}

/// POST `/api/<path>` with its (checked, read) body.
pub async fn post(app: &Arc<App>, path: &str, headers: &HeaderMap, body: &[u8]) -> Result<Answer> {
    match path {
        "enrol/start" => enrol_start(app, headers, body).await,
        "enrol/nonce" => nonce(app, headers, body, NONCE_CARD).await,
        "enrol/card" => enrol_card(app, headers, body).await,
        "enrol/mobile-key" => mobile_key(app, headers, body).await,
        "enrol/resend" => resend(app, headers, body).await,
        "enrol/confirm" => confirm(app, headers, body).await,
        "login/start" => login_start(app, headers, body).await,
        "login/confirm" => login_confirm(app, headers, body).await,
        "desk/login" => desk_login(app, headers, body).await,
        "desk/logout" => desk_logout(app, headers, body).await,
        "desk/nonce" => nonce(app, headers, body, NONCE_DESK).await,
        "desk/document" => desk_document(app, headers, body).await,
        "desk/next" => desk_next(app, headers, body).await,
        _ => Err(ApiError::new("not-found")),
    }
}

// ---------------------------------------------------------------------------------------
// Citizen enrolment

async fn enrol_start(app: &App, headers: &HeaderMap, body: &[u8]) -> Result<Answer> {
    let Empty {} = parse(body)?;
    let (_, cookie) = new_session(app, headers, SessionData::new(Kind::Citizen)).await?;
    Ok(Answer::json(json!({"ok": true})).with_cookie(cookie))
}

async fn nonce(app: &App, headers: &HeaderMap, body: &[u8], purpose: &str) -> Result<Answer> {
    let Empty {} = parse(body)?;
    let s = if purpose == NONCE_DESK {
        desk_session(app, headers).await?
    } else {
        let s = require_session(app, headers).await?;
        if s.data.kind != Kind::Citizen {
            return Err(ApiError::new("no-session"));
        }
        s
    };
    let nonce = app
        .store
        .issue_nonce(purpose, &s.token_hash, now(), app.nonce_ttl_secs)
        .await
        .map_err(db)?;
    Ok(Answer::json(json!({ "nonce": nonce })))
}

/// Spends the nonce: single use, this session, this purpose, not expired.
async fn spend_nonce(app: &App, s: &Session, nonce: &str, purpose: &str) -> Result<()> {
    match app
        .store
        .consume_nonce(nonce, purpose, &s.token_hash, now())
        .await
        .map_err(db)?
    {
        Ok(()) => Ok(()),
        Err(rejected) => {
            let code = match rejected {
                NonceRejected::Expired => "nonce-expired",
                NonceRejected::Reused => "nonce-reused",
                // A nonce of another session or step is, for this session, not one it was given.
                _ => "nonce-unknown",
            };
            tracing::info!(?rejected, "nonce refused");
            Err(ApiError::new(code))
        }
    }
}

async fn refused(app: &App, what: &str, code: &str) {
    if let Err(e) = app
        .store
        .log_event(
            "refused",
            None,
            &json!({ "step": what, "code": code }),
            now(),
        )
        .await
    {
        tracing::warn!(error = %e, "audit event not written");
    }
}

async fn enrol_card(app: &App, headers: &HeaderMap, body: &[u8]) -> Result<Answer> {
    let CardBody { token, nonce } = parse(body)?;
    let mut s = require_session(app, headers).await?;
    if s.data.kind != Kind::Citizen {
        return Err(ApiError::new("no-session"));
    }
    spend_nonce(app, &s, &nonce, NONCE_CARD).await?;
    let token_json = serde_json::to_vec(&token).map_err(|_| ApiError::new("token-format"))?;
    let verified = match app.tokens.validate(&token_json, &nonce) {
        Ok(v) => v,
        Err(e) => {
            refused(app, "card", e.code()).await;
            return Err(e.into());
        }
    };
    let identity =
        identity::from_token(&verified).map_err(|_| ApiError::new("identity-incomplete"))?;
    tracing::info!(kind = "citizen-card", "identity verified");
    let view = identity.view.clone();
    s.data.identity = Some(identity);
    s.data.pending_key = None;
    save(app, &s).await?;
    Ok(Answer::json(json!({ "identity": view })))
}

/// Sends a fresh code for `contact` (the session's previous code is invalidated by the store).
async fn send_code(app: &App, s: &Session, purpose: Purpose, contact: &Contact) -> Result<Value> {
    let t = now();
    let issued = app
        .store
        .issue_code(
            &app.code_key,
            purpose,
            &s.token_hash,
            contact,
            t,
            &app.code_policy,
        )
        .await
        .map_err(db)?;
    let issued = match issued {
        Ok(i) => i,
        Err(CodeRejected::RateLimited { retry_after_secs }) => {
            return Err(ApiError::new("code-rate-limited")
                .with_retry_after(u64::try_from(retry_after_secs).unwrap_or(0)));
        }
        Err(other) => return Err(ApiError::new(other.code())),
    };
    let expires_in = u64::try_from(issued.expires_at.saturating_sub(t)).unwrap_or(0);
    let message = CodeMessage {
        to: Contact::parse(contact.as_str()).map_err(|_| ApiError::new("contact-invalid"))?,
        code: issued.code,
        purpose,
        expires_in_secs: expires_in,
    };
    if let Err(e) = app.sender.send(&message).await {
        tracing::warn!(channel = contact.kind(), error = %e, "code delivery failed");
        return Err(ApiError::new("delivery-failed"));
    }
    tracing::info!(
        channel = contact.kind(),
        purpose = purpose.as_str(),
        "code sent"
    );
    Ok(json!({ "codeSentTo": contact.masked(), "expiresInSeconds": expires_in }))
}

fn enrolling(s: &Session) -> Result<&VerifiedIdentity> {
    if !matches!(s.data.kind, Kind::Citizen | Kind::Desk) {
        return Err(ApiError::new("no-session"));
    }
    s.data
        .identity
        .as_ref()
        .ok_or_else(|| ApiError::new("no-identity"))
}

async fn mobile_key(app: &App, headers: &HeaderMap, body: &[u8]) -> Result<Answer> {
    let MobileKeyBody {
        contact,
        pin,
        pin_repeat,
    } = parse(body)?;
    let mut s = require_session(app, headers).await?;
    let identity_key = enrolling(&s)?.identity_key.clone();
    let contact = Contact::parse(&contact).map_err(|_| ApiError::new("contact-invalid"))?;
    check_new_pin(&pin).map_err(|rule| ApiError::new(rule.code()))?;
    if *pin != *pin_repeat {
        return Err(ApiError::new("pin-mismatch"));
    }
    if let Some(existing) = app
        .store
        .binding_by_contact(contact.as_str())
        .await
        .map_err(db)?
        && existing.identity_key != identity_key
    {
        return Err(ApiError::new("contact-taken"));
    }
    let hasher = Arc::clone(&app.pin_hasher);
    let pin_hash = blocking(move || hasher.hash(&pin))
        .await?
        .map_err(|e| ApiError::internal("PIN hashing", &e))?;
    let answer = send_code(app, &s, Purpose::Enrolment, &contact).await?;
    s.data.pending_key = Some(PendingKey {
        contact: contact.as_str().to_owned(),
        pin_hash,
    });
    save(app, &s).await?;
    Ok(Answer::json(answer))
}

async fn resend(app: &App, headers: &HeaderMap, body: &[u8]) -> Result<Answer> {
    let Empty {} = parse(body)?;
    let s = require_session(app, headers).await?;
    let contact = match (&s.data.pending_key, &s.data.pending_login) {
        (Some(p), _) if enrolling(&s).is_ok() => &p.contact,
        (_, Some(p)) if s.data.kind == Kind::Login => &p.contact,
        _ => return Err(ApiError::new("no-pending-key")),
    };
    let contact = Contact::parse(contact).map_err(|_| ApiError::new("contact-invalid"))?;
    let purpose = if s.data.kind == Kind::Login {
        Purpose::Login
    } else {
        Purpose::Enrolment
    };
    Ok(Answer::json(send_code(app, &s, purpose, &contact).await?))
}

fn code_error(rejected: CodeRejected) -> ApiError {
    match rejected {
        CodeRejected::Wrong { attempts_left } => {
            ApiError::new("code-wrong").with_attempts_left(attempts_left)
        }
        CodeRejected::RateLimited { retry_after_secs } => ApiError::new("code-rate-limited")
            .with_retry_after(u64::try_from(retry_after_secs).unwrap_or(0)),
        other => ApiError::new(other.code()),
    }
}

async fn confirm(app: &App, headers: &HeaderMap, body: &[u8]) -> Result<Answer> {
    let CodeBody { code } = parse(body)?;
    let mut s = require_session(app, headers).await?;
    let identity = enrolling(&s)?.clone();
    let pending = s
        .data
        .pending_key
        .clone()
        .ok_or_else(|| ApiError::new("no-pending-key"))?;
    let t = now();
    app.store
        .verify_code(
            &app.code_key,
            Purpose::Enrolment,
            &s.token_hash,
            code.trim(),
            t,
            &app.code_policy,
        )
        .await
        .map_err(db)?
        .map_err(code_error)?;
    let contact = Contact::parse(&pending.contact).map_err(|_| ApiError::new("contact-invalid"))?;
    let masked = contact.masked();
    let new = NewBinding {
        identity_key: identity.identity_key.clone(),
        identity_kind: identity.view.kind.clone(),
        display_name: identity.view.name.clone(),
        identity: serde_json::to_value(&identity.view)
            .map_err(|e| ApiError::internal("identity", &e))?,
        contact,
        pin_hash: pending.pin_hash,
        enrolled_by: s.data.operator.clone(),
        evidence_sha256: identity.evidence_sha256.clone(),
    };
    let binding = match app.store.upsert_binding(&new, t).await.map_err(db)? {
        Ok(b) => b,
        Err(BindingConflict::ContactTaken) => return Err(ApiError::new("contact-taken")),
    };
    let detail = json!({
        "identityKind": binding.identity_kind,
        "channel": binding.contact_kind,
        "enrolledBy": binding.enrolled_by,
    });
    if let Err(e) = app
        .store
        .log_event("enrolled", Some(&binding.id), &detail, t)
        .await
    {
        tracing::warn!(error = %e, "audit event not written");
    }
    tracing::info!(kind = %binding.identity_kind, desk = binding.enrolled_by.is_some(), "mobile key enrolled");
    // The identity is spent: another key needs the card (or document) again.
    s.data.identity = None;
    s.data.pending_key = None;
    save(app, &s).await?;
    Ok(Answer::json(json!({
        "binding": {
            "name": binding.display_name,
            "contact": masked,
            "status": binding.status,
            "kind": binding.identity_kind,
        }
    })))
}

// ---------------------------------------------------------------------------------------
// Login with the mobile key

async fn suspended_event(app: &App, binding_id: &str, t: i64) {
    if let Err(e) = app
        .store
        .log_event("suspended", Some(binding_id), &json!({}), t)
        .await
    {
        tracing::warn!(error = %e, "audit event not written");
    }
}

async fn login_start(app: &App, headers: &HeaderMap, body: &[u8]) -> Result<Answer> {
    let LoginBody { contact, pin } = parse(body)?;
    let binding = match Contact::parse(&contact) {
        Ok(c) => app
            .store
            .binding_by_contact(c.as_str())
            .await
            .map_err(db)?
            .map(|b| (c, b)),
        Err(_) => None,
    };
    let hasher = Arc::clone(&app.pin_hasher);
    let Some((contact, binding)) = binding else {
        // Same work as a real check, so timing does not tell which contacts exist.
        blocking(move || hasher.burn(&pin)).await?;
        return Err(ApiError::new("login-failed"));
    };
    if binding.status != "active" {
        blocking(move || hasher.burn(&pin)).await?;
        return Err(ApiError::new("suspended"));
    }
    let phc = binding.pin_hash.clone();
    let right = blocking(move || hasher.verify(&phc, &pin)).await?;
    let t = now();
    if !right {
        let outcome = app
            .store
            .record_failure(&binding.id, t, app.max_failures)
            .await
            .map_err(db)?;
        if outcome.suspended {
            suspended_event(app, &binding.id, t).await;
            return Err(ApiError::new("suspended"));
        }
        return Err(ApiError::new("login-failed").with_attempts_left(outcome.attempts_left));
    }
    let mut data = SessionData::new(Kind::Login);
    data.pending_login = Some(PendingLogin {
        binding_id: binding.id.clone(),
        contact: contact.as_str().to_owned(),
    });
    let (s, cookie) = new_session(app, headers, data).await?;
    let answer = send_code(app, &s, Purpose::Login, &contact).await?;
    Ok(Answer::json(answer).with_cookie(cookie))
}

async fn login_confirm(app: &App, headers: &HeaderMap, body: &[u8]) -> Result<Answer> {
    let CodeBody { code } = parse(body)?;
    let mut s = require_session(app, headers).await?;
    let pending = match (&s.data.kind, &s.data.pending_login) {
        (Kind::Login, Some(p)) => p.clone(),
        _ => return Err(ApiError::new("no-session")),
    };
    let binding = app
        .store
        .binding_by_contact(&pending.contact)
        .await
        .map_err(db)?
        .filter(|b| b.id == pending.binding_id)
        .ok_or_else(|| ApiError::new("login-failed"))?;
    if binding.status != "active" {
        return Err(ApiError::new("suspended"));
    }
    let t = now();
    let verdict = app
        .store
        .verify_code(
            &app.code_key,
            Purpose::Login,
            &s.token_hash,
            code.trim(),
            t,
            &app.code_policy,
        )
        .await
        .map_err(db)?;
    match verdict {
        Ok(()) => {}
        Err(rejected @ (CodeRejected::Wrong { .. } | CodeRejected::AttemptsExhausted)) => {
            let outcome = app
                .store
                .record_failure(&binding.id, t, app.max_failures)
                .await
                .map_err(db)?;
            if outcome.suspended {
                suspended_event(app, &binding.id, t).await;
                return Err(ApiError::new("suspended"));
            }
            let code = match rejected {
                CodeRejected::Wrong { .. } => "code-wrong",
                _ => "code-attempts-exhausted",
            };
            return Err(ApiError::new(code).with_attempts_left(outcome.attempts_left));
        }
        Err(other) => return Err(code_error(other)),
    }
    app.store.record_login(&binding.id, t).await.map_err(db)?;
    if let Err(e) = app
        .store
        .log_event("login", Some(&binding.id), &json!({}), t)
        .await
    {
        tracing::warn!(error = %e, "audit event not written");
    }
    tracing::info!(kind = %binding.identity_kind, "login");
    s.data.pending_login = None;
    s.data.logged_in = Some(binding.id.clone());
    save(app, &s).await?;
    let masked = Contact::parse(&binding.contact)
        .map(|c| c.masked())
        .unwrap_or_default();
    Ok(Answer::json(json!({
        "name": binding.display_name,
        "contact": masked,
        "identityKind": binding.identity_kind,
    })))
}

// ---------------------------------------------------------------------------------------
// The desk

async fn desk_session(app: &App, headers: &HeaderMap) -> Result<Session> {
    match load_session(app, headers).await? {
        Some(s) if s.data.kind == Kind::Desk && s.data.operator.is_some() => Ok(s),
        _ => Err(ApiError::new("operator-required")),
    }
}

async fn desk_login(app: &App, headers: &HeaderMap, body: &[u8]) -> Result<Answer> {
    let DeskLoginBody { operator, password } = parse(body)?;
    let stored = if operator.is_empty() || operator.len() > 64 {
        None
    } else {
        app.store.operator_password(&operator).await.map_err(db)?
    };
    let known = stored.is_some();
    let phc = stored.unwrap_or_else(|| app.operator_decoy.clone());
    let right = blocking(move || operators::verify_password(&phc, &password)).await?;
    if !(known && right) {
        tracing::info!("desk operator login refused");
        return Err(ApiError::new("operator-login-failed"));
    }
    let mut data = SessionData::new(Kind::Desk);
    data.operator = Some(operator.clone());
    let (_, cookie) = new_session(app, headers, data).await?;
    tracing::info!(operator = %operator, "desk operator signed in");
    Ok(Answer::json(json!({ "operator": operator })).with_cookie(cookie))
}

async fn desk_logout(app: &App, headers: &HeaderMap, body: &[u8]) -> Result<Answer> {
    let Empty {} = parse(body)?;
    if let Some(token) = session::token_from(headers) {
        app.store
            .delete_session(&secrets::session_token_hash(&token))
            .await
            .map_err(db)?;
    }
    Ok(Answer::json(json!({"ok": true})).with_cookie(session::clear_cookie()))
}

async fn desk_document(app: &App, headers: &HeaderMap, body: &[u8]) -> Result<Answer> {
    let DocumentBody { result, nonce } = parse(body)?;
    let mut s = desk_session(app, headers).await?;
    spend_nonce(app, &s, &nonce, NONCE_DESK).await?;
    let validator = app
        .documents
        .as_ref()
        .ok_or_else(|| ApiError::new("validator-config"))?;
    let result: EmrtdResult = match serde_json::from_value(result) {
        Ok(r) => r,
        Err(_) => {
            refused(app, "document", "result-format").await;
            return Err(ApiError::new("result-format"));
        }
    };
    let document = match validator.validate(&result, &nonce, OffsetDateTime::now_utc()) {
        Ok(d) => d,
        Err(e) => {
            refused(app, "document", e.code()).await;
            return Err(e.into());
        }
    };
    if document.expired {
        refused(app, "document", "document-expired").await;
        return Err(ApiError::new("document-expired"));
    }
    let sod = result
        .sod_bytes()
        .map_err(|_| ApiError::new("result-format"))?;
    let identity =
        identity::from_document(&document, &sod).map_err(|_| ApiError::new("dg1-invalid"))?;
    tracing::info!(
        kind = "passport",
        aa = document.active_authentication,
        "document verified"
    );
    let view = identity.view.clone();
    s.data.identity = Some(identity);
    s.data.pending_key = None;
    save(app, &s).await?;
    let photo = verified_face_png(&result, &document)
        .await
        .map(|png| format!("data:image/png;base64,{}", B64.encode(png)));
    Ok(Answer::json(match photo {
        Some(photo) => json!({ "identity": view, "photo": photo }),
        None => json!({ "identity": view }),
    }))
}

/// The face of DG2 as PNG, for the operator to compare with the person at the desk: only when
/// DG2 was sent and verified against the SOD (so the image is the issuer's), decoded here
/// because passports store JPEG 2000, which browsers do not show. Any decoding problem means no
/// photo, not a refusal: the identity rests on DG1 and the checks above. Not stored anywhere.
async fn verified_face_png(result: &EmrtdResult, document: &ValidatedDocument) -> Option<Vec<u8>> {
    if !document.data_groups.contains(&2) {
        return None;
    }
    let dg2 = result
        .data_group_files()
        .ok()?
        .into_iter()
        .find_map(|(n, file)| (n == 2).then_some(file))?;
    let decoded = tokio::task::spawn_blocking(move || {
        let face = Dg2::parse(&dg2).ok()?.faces.into_iter().next()?;
        eid_card::image::to_png(&face.data).ok()
    })
    .await;
    match decoded {
        Ok(png) => png,
        Err(e) => {
            tracing::warn!(error = %e, "face decoding task failed");
            None
        }
    }
}

async fn desk_next(app: &App, headers: &HeaderMap, body: &[u8]) -> Result<Answer> {
    let Empty {} = parse(body)?;
    let mut s = desk_session(app, headers).await?;
    s.data.identity = None;
    s.data.pending_key = None;
    save(app, &s).await?;
    // The previous citizen's code dies with them, and the next citizen's first code is not
    // held back by the previous one's resend interval.
    app.store.detach_codes(&s.token_hash).await.map_err(db)?;
    Ok(Answer::json(json!({"ok": true})))
}

/// An error answer for a request that never reached a handler.
pub fn error_response(code: &'static str) -> warp::reply::Response {
    ApiError::new(code).into_response()
}

/// 404 for anything unknown.
pub fn not_found() -> warp::reply::Response {
    let mut r = error_response("not-found");
    *r.status_mut() = StatusCode::NOT_FOUND;
    r
}
