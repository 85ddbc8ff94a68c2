//! Web eID authentication: the token the agent answers with, and the library a relying party
//! (the web site's back end) uses to validate it.
//!
//! # The Web eID authentication token (`web-eid:1.0`)
//!
//! The format is the one of the Web eID project (system architecture document, "Web eID
//! authentication token specification"), checked as its reference validators
//! (`web-eid-authtoken-validation-java`, `-dotnet`) check it:
//!
//! ```json
//! { "unverifiedCertificate": "<base64 DER>", "algorithm": "ES384",
//!   "signature": "<base64>", "format": "web-eid:1.0",
//!   "appVersion": "https://web-eid.eu/web-eid-app/releases/2.5.0+0" }
//! ```
//!
//! - `algorithm` is one of the JWS names of RFC 7518 §3.3-3.5: `ES256/384/512` (ECDSA, the
//!   signature is the raw `r || s`), `RS256/384/512` (RSASSA-PKCS1-v1_5), `PS256/384/512`
//!   (RSASSA-PSS, MGF1 with the same hash, salt as long as the hash).
//! - The card signs `hash(hash(origin) || hash(nonce))` ([`digest_to_sign`]), i.e. a JWS-style
//!   signature over [`signed_data`] `= hash(origin) || hash(nonce)`, where `hash` is the hash of
//!   the algorithm. Hashing each field first separates them (`example.com` + `.eu1234` differs
//!   from `example.com.eu` + `1234`).
//! - `format` must start with `web-eid:1` (minor versions are backwards compatible); unknown
//!   fields are ignored, as the reference validators do (Jackson `ignoreUnknown`, Json.NET).
//! - The token text is 100 to 10 000 characters long ([`token::TOKEN_MIN_LEN`]).
//!
//! [`JwsAlgorithm::for_key`] picks the algorithm the Web eID application (libelectronic-id)
//! uses for a card key: EC keys by their size (256 -> ES256, 384 -> ES384, 512/521 -> ES512),
//! RSA keys RS256 (the Finnish card, which needs PSS, is the exception the application makes
//! per card; [`JwsAlgorithm::Ps256`] exists for it).
//!
//! # Challenge nonces
//!
//! [`check_nonce`]: at least 44 characters (32 bytes of entropy base64-encoded), at most 512,
//! base64 (standard or URL-safe alphabet, padding optional) of at least 32 bytes. The Web eID
//! application itself refuses nonces longer than 128 characters; [`NonceStore::issue`] makes
//! 44-character ones. The store keeps each nonce for its lifetime (5 minutes unless configured)
//! and lets it be consumed once.
//!
//! Keep the nonce you issued in the user's server-side session and validate against *that*
//! one, never against a nonce the request carries: the store is global, so a nonce taken from
//! the request would let an attacker's own token and nonce be replayed into a victim's session
//! (login CSRF). The endpoint that issues nonces should be rate-limited per client: the store
//! holds a bounded number of pending nonces and evicts the oldest when full.
//!
//! # Validation (relying party)
//!
//! [`TokenValidator`] checks, in this order: the token's size, JSON and `format`; the algorithm
//! name; the certificate (DER, parsed by both OpenSSL and x509-parser); that the algorithm fits
//! the key (EC curve size, RSA of at least 2048 bits); the certificate's purpose (keyUsage
//! present with digitalSignature, and clientAuth when an extendedKeyUsage lists usages, as the
//! Java validator's "subject certificate purpose" check); its policies (required ones when
//! configured, and none of the disallowed ones: by default the Estonian Mobile-ID policies, as
//! the reference validators); its validity at "now"; its chain to a trust anchor (anchors may be
//! intermediate CAs, as Java's PKIX trust anchors); and last the signature over the expected
//! origin and the nonce. Revocation (OCSP) is not checked here: that needs the network, which
//! this sans-IO crate never touches.
//!
//! [`TokenValidator::validate_with_store`] consumes the nonce from a [`NonceStore`] *before*
//! anything else, so a failed attempt burns the nonce too.
//!
//! # eMRTD results
//!
//! For passports and ID cards read over ICAO 9303 (BAC or PACE), the agent answers with an
//! [`EmrtdResult`] (`format` `eid-emrtd:1.0`): the raw EF.SOD and data group files as read, the
//! optional EF.CardSecurity, and the Active Authentication answer. [`EmrtdValidator`] redoes
//! passive authentication (SOD signature, Document Signer chained to the relying party's CSCA
//! store, every data group's hash; DG1 required) and verifies Active Authentication again with
//! the DG15 key (itself hash-checked against the SOD) over the challenge derived from the
//! origin and the nonce:
//!
//! `challenge = SHA-256("eid-agent emrtd-aa v1" || 0x00 || origin || 0x00 || nonce)[0..8]`
//!
//! ([`emrtd_aa_challenge`]; our own derivation, not part of any standard: it binds the chip's
//! signature to this site and this nonce, as the Web eID signature does). The identity is taken
//! only from the verified DG1; the `document` and `checks` the agent sends are informative.
//!
//! Chip Authentication (and PACE-CAM) cannot be re-verified by a server: it proves the chip to
//! the terminal through the secure messaging keys of that session, which leaves no transferable
//! evidence. A server relies on Active Authentication for clone detection; documents without
//! DG15 are refused unless [`EmrtdValidator::require_active_authentication`] is turned off.

mod b64;
pub mod emrtd;
pub mod nonce;
pub mod origin;
pub mod token;
pub mod validator;

pub use emrtd::{
    AccessInfo, AccessMethod, ActiveAuthenticationAnswer, AgentCheck, AgentChecks, DocumentFields,
    EMRTD_FORMAT, EmrtdError, EmrtdResult, EmrtdValidator, ValidatedDocument, emrtd_aa_challenge,
};
pub use nonce::{DEFAULT_NONCE_TTL, NonceError, NonceStore, check_nonce};
pub use origin::{Origin, OriginError};
pub use token::{AuthToken, JwsAlgorithm, TOKEN_FORMAT, digest_to_sign, signed_data};
pub use validator::{SubjectFields, TokenError, TokenValidator, ValidatedToken};

/// Base64 as the Web eID application writes it (standard alphabet, with padding).
pub fn base64_encode(bytes: &[u8]) -> String {
    b64::encode(bytes)
}

/// Base64 as the validators read it: standard or URL-safe alphabet, padding optional.
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    b64::decode(text)
}
