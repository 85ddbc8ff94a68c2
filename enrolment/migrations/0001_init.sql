-- Enrolment service schema, version 1.
--
-- Portable SQL: the same file runs on SQLite and PostgreSQL through sqlx's Any driver.
-- Only TEXT and BIGINT columns (no BLOB, no autoincrement, no date types): times are Unix
-- seconds, identifiers are random hex chosen by the application, JSON is stored as TEXT.
-- Secrets are never stored in clear: sessions and one-time codes are keyed by hashes, PINs
-- and operator passwords are argon2id PHC strings.

-- Browser sessions. The key is the SHA-256 (hex) of the cookie token, never the token.
CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    data TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX sessions_expires_at ON sessions (expires_at);

-- Challenge nonces, single use (used 0 -> 1 in one UPDATE), bound to a session and a purpose.
CREATE TABLE nonces (
    nonce TEXT PRIMARY KEY,
    purpose TEXT NOT NULL,
    token_hash TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX nonces_expires_at ON nonces (expires_at);

-- One-time codes: only a keyed hash (HMAC-SHA256) is kept. state: active | used | replaced.
-- Rows stay for an hour after creation so that the per-contact rate limit can count them.
CREATE TABLE codes (
    id TEXT PRIMARY KEY,
    purpose TEXT NOT NULL,
    token_hash TEXT NOT NULL,
    contact TEXT NOT NULL,
    code_hash TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    state TEXT NOT NULL
);
CREATE INDEX codes_session ON codes (token_hash, purpose, state);
CREATE INDEX codes_contact ON codes (contact, created_at);
CREATE INDEX codes_created_at ON codes (created_at);

-- Identity (Citizen Card or passport) <-> mobile key (contact + PIN hash).
-- One binding per identity and one identity per contact.
CREATE TABLE bindings (
    id TEXT PRIMARY KEY,
    identity_key TEXT NOT NULL,
    identity_kind TEXT NOT NULL,
    display_name TEXT NOT NULL,
    identity TEXT NOT NULL,
    contact TEXT NOT NULL,
    contact_kind TEXT NOT NULL,
    pin_hash TEXT NOT NULL,
    status TEXT NOT NULL,
    failures BIGINT NOT NULL DEFAULT 0,
    enrolled_by TEXT,
    evidence_sha256 TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    last_login_at BIGINT,
    CONSTRAINT bindings_identity_key_unique UNIQUE (identity_key),
    CONSTRAINT bindings_contact_unique UNIQUE (contact)
);

-- Desk operators (attended enrolment), password as an argon2id PHC string.
CREATE TABLE operators (
    name TEXT PRIMARY KEY,
    password_phc TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- Audit trail. seq orders events written in the same second; no secrets in detail.
CREATE TABLE events (
    id TEXT PRIMARY KEY,
    seq BIGINT NOT NULL,
    time BIGINT NOT NULL,
    kind TEXT NOT NULL,
    binding_id TEXT,
    detail TEXT NOT NULL
);
CREATE INDEX events_seq ON events (seq);
CREATE INDEX events_binding ON events (binding_id);
