//! Sessions: a random token in the `__Host-eid-enrolment` cookie; the database keeps only its
//! SHA-256, so a copy of the database does not hand out live sessions.
//!
//! The `__Host-` prefix makes browsers refuse the cookie unless it is Secure, has Path=/ and no
//! Domain: no other host (a sibling subdomain) can plant or overwrite it. SameSite=Strict keeps
//! it off cross-site requests, and every POST is also checked for the exact Origin.
//!
//! What a session knows (its JSON data): its kind, the verified identity once the card or
//! document passed, the chosen contact and the PIN's hash while the code is pending, the login
//! in progress, the desk operator.

use http::HeaderMap;
use serde::{Deserialize, Serialize};

use crate::identity::VerifiedIdentity;

/// The cookie's name.
pub const COOKIE: &str = "__Host-eid-enrolment";

/// Longest cookie value taken (ours are 43 characters).
const MAX_TOKEN_LEN: usize = 128;

/// A session's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Self-service enrolment with the Citizen Card.
    Citizen,
    /// Login with the mobile key.
    Login,
    /// An operator's desk (attended enrolment with a passport).
    Desk,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Citizen => "citizen",
            Kind::Login => "login",
            Kind::Desk => "desk",
        }
    }
}

/// The mobile key chosen, waiting for its code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingKey {
    /// Canonical contact.
    pub contact: String,
    /// Argon2id PHC string of the PIN (never the PIN).
    pub pin_hash: String,
}

/// A login whose PIN was right, waiting for its code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingLogin {
    pub binding_id: String,
    pub contact: String,
}

/// The session's data, stored as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionData {
    pub kind: Kind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<VerifiedIdentity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_key: Option<PendingKey>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_login: Option<PendingLogin>,
    /// The binding logged in with this session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logged_in: Option<String>,
}

impl SessionData {
    pub fn new(kind: Kind) -> Self {
        Self {
            kind,
            operator: None,
            identity: None,
            pending_key: None,
            pending_login: None,
            logged_in: None,
        }
    }
}

/// The session token of the request's cookie, if any (the first well-formed one).
pub fn token_from(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, value)| {
            *name == COOKIE
                && !value.is_empty()
                && value.len() <= MAX_TOKEN_LEN
                && value
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        .map(|(_, value)| value.to_owned())
}

/// The Set-Cookie value for a new session token.
pub fn set_cookie(token: &str, max_age_secs: u32) -> String {
    format!("{COOKIE}={token}; Secure; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age_secs}")
}

/// The Set-Cookie value that removes the cookie.
pub fn clear_cookie() -> String {
    format!("{COOKIE}=; Secure; HttpOnly; SameSite=Strict; Path=/; Max-Age=0")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_parsing() {
        let mut h = HeaderMap::new();
        h.insert(
            http::header::COOKIE,
            "a=b; __Host-eid-enrolment=abc_DEF-1; c=d".parse().unwrap(),
        );
        assert_eq!(token_from(&h).as_deref(), Some("abc_DEF-1"));
        h.insert(
            http::header::COOKIE,
            "__Host-eid-enrolment=bad value".parse().unwrap(),
        );
        assert_eq!(token_from(&h), None);
        assert!(set_cookie("t", 60).contains("HttpOnly; SameSite=Strict; Path=/"));
    }

    #[test]
    fn data_round_trips() {
        let d = SessionData::new(Kind::Desk);
        let v = serde_json::to_value(&d).unwrap();
        assert_eq!(v["kind"], "desk");
        assert_eq!(serde_json::from_value::<SessionData>(v).unwrap(), d);
    }
}
