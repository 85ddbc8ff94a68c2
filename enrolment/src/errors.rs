//! The API's errors: one type, one place where every code gets its HTTP status and the plain
//! message a citizen reads.
//!
//! A message never repeats what the client sent (no PIN, code, contact or token echoed back)
//! and never carries internal details: those go to the log (without secrets), the answer says
//! what happened and what to do. Codes are stable; the pages and the tests match on them.

use http::StatusCode;
use serde::Serialize;
use warp::Reply;

/// The error code of an answer, stored in the response's extensions so that the request log
/// can name it without parsing the body.
#[derive(Clone, Debug)]
pub struct ErrorCode(pub &'static str);

/// A refused request.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub attempts_left: Option<u32>,
    pub retry_after_secs: Option<u64>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Body<'a> {
    error: Inner<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Inner<'a> {
    code: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    attempts_left: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    retry_after_seconds: Option<u64>,
}

impl ApiError {
    /// An error with the status and plain message of `code` (see [`plain_message`]).
    pub fn new(code: &'static str) -> Self {
        Self {
            status: status_of(code),
            code,
            message: plain_message(code).to_owned(),
            attempts_left: None,
            retry_after_secs: None,
        }
    }

    /// Adds the attempts left before the code or the mobile key is spent.
    pub fn with_attempts_left(mut self, n: u32) -> Self {
        self.attempts_left = Some(n);
        self
    }

    /// Adds when the client may try again.
    pub fn with_retry_after(mut self, secs: u64) -> Self {
        self.retry_after_secs = Some(secs);
        self
    }

    /// An internal failure (database, randomness): logged with its cause, answered plainly.
    pub fn internal(context: &str, cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(context, error = %cause, "internal error");
        Self::new("internal")
    }

    /// The JSON answer, with the code in the response extensions for the request log.
    pub fn into_response(self) -> warp::reply::Response {
        let body = Body {
            error: Inner {
                code: self.code,
                message: &self.message,
                attempts_left: self.attempts_left,
                retry_after_seconds: self.retry_after_secs,
            },
        };
        let mut response =
            warp::reply::with_status(warp::reply::json(&body), self.status).into_response();
        if let Some(secs) = self.retry_after_secs
            && let Ok(v) = http::HeaderValue::from_str(&secs.to_string())
        {
            response.headers_mut().insert(http::header::RETRY_AFTER, v);
        }
        response.extensions_mut().insert(ErrorCode(self.code));
        response
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.code, self.status.as_u16())
    }
}

/// The HTTP status of each code.
pub fn status_of(code: &str) -> StatusCode {
    match code {
        "no-session" | "login-failed" | "operator-login-failed" | "operator-required" => {
            StatusCode::UNAUTHORIZED
        }
        "origin-refused" => StatusCode::FORBIDDEN,
        "no-identity" | "contact-taken" | "no-pending-key" => StatusCode::CONFLICT,
        "suspended" => StatusCode::LOCKED,
        "code-rate-limited" => StatusCode::TOO_MANY_REQUESTS,
        "delivery-failed" => StatusCode::BAD_GATEWAY,
        "content-type" => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "too-large" => StatusCode::PAYLOAD_TOO_LARGE,
        "not-found" => StatusCode::NOT_FOUND,
        "method-not-allowed" => StatusCode::METHOD_NOT_ALLOWED,
        "certificate-untrusted" | "document-untrusted" | "document-revoked" => {
            StatusCode::FORBIDDEN
        }
        "internal" | "validator-config" => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::BAD_REQUEST,
    }
}

/// The message a citizen (or a desk operator) reads for each code: what happened, then what to
/// do. Unknown codes get a generic sentence rather than a technical one.
pub fn plain_message(code: &str) -> &'static str {
    match code {
        // Requests and sessions.
        "bad-request" => "The request was not understood. Please reload the page and try again.",
        "content-type" => "The request was not sent as the page sends it. Please reload the page.",
        "too-large" => "The request was too large. Please reload the page and try again.",
        "origin-refused" => {
            "This request did not come from this site's own pages, so it was refused. Open the site's address directly and try again."
        }
        "not-found" => "This page does not exist.",
        "method-not-allowed" => "This address does not accept this kind of request.",
        "no-session" => {
            "Your session has ended (it expires after a while). Please start again from the beginning."
        }
        "internal" => "Something went wrong on our side. Please try again in a moment.",
        "validator-config" => {
            "The service is not configured correctly to check this. Please tell the service's staff."
        }
        // Challenge nonces.
        "nonce-unknown" | "nonce-invalid" => {
            "This request was not started on this page (or the service restarted). Please try again."
        }
        "nonce-expired" => {
            "You took longer than allowed to complete this step, so it expired. Please try again."
        }
        "nonce-reused" => {
            "This card answer was already used once and cannot be used again. Please try again."
        }
        "nonce-random" => "Something went wrong on our side. Please try again in a moment.",
        // Citizen Card tokens.
        "token-format" | "token-algorithm" | "certificate-invalid" => {
            "The answer from your card could not be read. Please try again; if it keeps happening, update the eID agent."
        }
        "signature-invalid" => {
            "The card's signature was not made for this site (or was changed on the way), so it was refused. Please try again from this page."
        }
        "certificate-untrusted" => {
            "Your card's certificate was not issued by an authority this service trusts. Use a Portuguese Citizen Card."
        }
        "certificate-expired" => {
            "Your card's authentication certificate has expired. Renew your Citizen Card to use it."
        }
        "certificate-not-yet-valid" => {
            "Your card's authentication certificate is not valid yet. Check your computer's date, or try again later."
        }
        "certificate-purpose" | "certificate-policy" => {
            "This certificate cannot be used to identify you. Use the Citizen Card's authentication certificate."
        }
        "identity-incomplete" => {
            "Your card's certificate does not carry your civil identification number, so it cannot be used here."
        }
        // Mobile key.
        "no-identity" => {
            "First identify yourself with your card (or document), then choose your mobile key."
        }
        "contact-invalid" => {
            "That is not a phone number or e-mail address we can use. Write a mobile number (for example +351 912 345 678) or an e-mail address."
        }
        "pin-format" => "The PIN must have 4 to 6 digits, and digits only.",
        "pin-weak" => {
            "That PIN is too easy to guess (all the same digit, or digits in a row). Please choose another one."
        }
        "pin-mismatch" => "The two PINs are not the same. Please type the same PIN twice.",
        "contact-taken" => {
            "This phone number or e-mail address is already used by another person's mobile key. Use another one."
        }
        "no-pending-key" => {
            "There is no code waiting to be confirmed. Please choose your mobile key first."
        }
        "delivery-failed" => {
            "We could not send the code to this phone number or e-mail address right now. Check it, or try again in a few minutes."
        }
        // One-time codes.
        "code-rate-limited" => {
            "Too many codes were asked for. Please wait before asking for another one."
        }
        "code-missing" => "There is no valid code for this step. Please ask for a new code.",
        "code-expired" => "The code has expired. Please ask for a new code.",
        "code-wrong" => "The code is not right. Please check the message and type it again.",
        "code-attempts-exhausted" => {
            "The code was typed wrongly too many times and can no longer be used. Please ask for a new code."
        }
        // Login.
        "login-failed" => "The phone number or e-mail address, or the PIN, is not right.",
        "suspended" => {
            "This mobile key is suspended after too many wrong attempts. Enrol again with your Citizen Card (or at a service desk) to unlock it."
        }
        // Desk.
        "operator-login-failed" => "The operator name or password is not right.",
        "operator-required" => "An operator must sign in at this desk first.",
        "aa-invalid" => {
            "The chip failed active authentication: it may be a copy. The document was refused."
        }
        "aa-missing" | "aa-unavailable" => {
            "The chip did not prove it is genuine (no active authentication). The document was refused."
        }
        "aa-challenge" => {
            "The chip answered a challenge that was not this service's. Please read the document again."
        }
        "data-group-hash" => {
            "A data group was altered: the data on the chip does not match the issuer's signature. The document was refused."
        }
        "document-untrusted" => {
            "The document was not signed by a country this service trusts. The document was refused."
        }
        "document-revoked" => {
            "The document signer's certificate is revoked. The document was refused."
        }
        "sod-signature" => {
            "The issuer's signature on the chip data is not valid. The document was refused."
        }
        "sod-invalid" | "card-security-invalid" => {
            "The chip's security data could not be read. Please read the document again."
        }
        "dg1-missing" | "dg1-invalid" => {
            "The document's personal data could not be read from the chip. Please read the document again."
        }
        "result-format" => {
            "The document reading could not be understood. Please read the document again."
        }
        "document-expired" => {
            "This document has expired. An expired document cannot be used to enrol."
        }
        _ => "The request could not be completed. Please try again.",
    }
}

/// Refusals of the token library, with their stable codes.
impl From<eid_protocols::webeid::TokenError> for ApiError {
    fn from(e: eid_protocols::webeid::TokenError) -> Self {
        tracing::info!(code = e.code(), reason = %e, "Citizen Card token refused");
        Self::new(e.code())
    }
}

impl From<eid_protocols::webeid::EmrtdError> for ApiError {
    fn from(e: eid_protocols::webeid::EmrtdError) -> Self {
        tracing::info!(code = e.code(), reason = %e, "eMRTD result refused");
        Self::new(e.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_contract_code_has_its_own_message() {
        for code in [
            "nonce-unknown",
            "nonce-expired",
            "nonce-reused",
            "token-format",
            "certificate-untrusted",
            "certificate-expired",
            "certificate-purpose",
            "signature-invalid",
            "no-identity",
            "contact-invalid",
            "pin-format",
            "pin-weak",
            "pin-mismatch",
            "contact-taken",
            "code-rate-limited",
            "delivery-failed",
            "code-wrong",
            "code-expired",
            "code-attempts-exhausted",
            "code-missing",
            "login-failed",
            "suspended",
            "operator-login-failed",
            "operator-required",
            "aa-invalid",
            "aa-missing",
            "aa-challenge",
            "data-group-hash",
            "document-untrusted",
            "sod-signature",
            "sod-invalid",
            "dg1-missing",
            "dg1-invalid",
            "result-format",
            "document-expired",
            "origin-refused",
            "bad-request",
            "no-session",
        ] {
            assert_ne!(
                plain_message(code),
                plain_message("no-such-code"),
                "{code} has no message"
            );
        }
        assert!(plain_message("signature-invalid").contains("not made for this site"));
        assert!(plain_message("aa-invalid").contains("it may be a copy"));
        assert!(plain_message("data-group-hash").contains("data group was altered"));
    }

    #[test]
    fn statuses() {
        assert_eq!(status_of("code-rate-limited").as_u16(), 429);
        assert_eq!(status_of("suspended").as_u16(), 423);
        assert_eq!(status_of("contact-taken").as_u16(), 409);
        assert_eq!(status_of("origin-refused").as_u16(), 403);
        assert_eq!(status_of("content-type").as_u16(), 415);
        assert_eq!(status_of("code-wrong").as_u16(), 400);
    }
}
