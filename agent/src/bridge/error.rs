//! The bridge's errors as websites see them: an HTTP status and a stable code with a remedy.
//!
//! Every failure of the bridge becomes an [`ApiError`] here, in one place: card errors through
//! [`From<eid_card::Error>`], prompt outcomes through [`From<PromptError>`]. The codes are the
//! contract of `docs/bridge-openapi.json` (a test checks that each code in [`CODES`] is documented
//! there); never rename one.

use http::StatusCode;
use serde::Serialize;

use crate::prompt::PromptError;

/// An error answer: `{"error": {...}}` with the given HTTP status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiError {
    #[serde(skip)]
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub remedy: String,
    pub retryable: bool,
    /// `wrong-pin`: tries left before the PIN blocks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retries_left: Option<u8>,
    /// `rate-limited`: when the next PIN operation from this origin is allowed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after_seconds: Option<u64>,
}

/// Every code the bridge can answer, with its HTTP status and remedy: the table the API document
/// lists. Kept in one place so the documentation test can check them all.
pub const CODES: &[(&str, u16, &str)] = &[
    (
        "host-not-allowed",
        421,
        "Call the agent as https://127.0.0.1:<port>, https://localhost:<port> or https://[::1]:<port>.",
    ),
    (
        "origin-missing",
        403,
        "Call the agent from a web page (fetch sends the Origin header); other programs cannot use card operations.",
    ),
    (
        "origin-invalid",
        403,
        "Serve the page from an https origin (scheme://host[:port]); opaque (null) origins cannot use the card.",
    ),
    (
        "origin-insecure",
        403,
        "Serve the page over https; plain http is accepted only for loopback pages when the agent runs in development mode.",
    ),
    (
        "origin-denied",
        403,
        "This site is on the administrator's deny list; ask the administrator.",
    ),
    (
        "origin-not-allowed",
        403,
        "This agent runs in kiosk mode and serves only its desk's pages; call it from the desk page the administrator configured.",
    ),
    (
        "session-ended",
        409,
        "The card's session has ended (idle timeout, or an old session id); remove the card and insert it again, then use the new session.",
    ),
    (
        "reader-not-found",
        404,
        "There is no reader of that name; use a reader name from /v1/status.",
    ),
    (
        "unsupported-media-type",
        415,
        "Send the body as JSON with Content-Type: application/json.",
    ),
    ("body-too-large", 413, "Send a smaller request body."),
    (
        "bad-request",
        400,
        "Fix the request as the message says (see the API document).",
    ),
    (
        "nonce-invalid",
        400,
        "Use a challenge nonce of at least 32 random bytes, base64-encoded (44 characters or more).",
    ),
    ("not-found", 404, "Use an endpoint of the API document."),
    (
        "method-not-allowed",
        405,
        "Use the method the API document gives for this endpoint.",
    ),
    (
        "consent-required",
        403,
        "Ask for a card operation first; the user allows the site in the agent's dialog.",
    ),
    (
        "consent-denied",
        403,
        "The user did not allow this site to use the card. Ask again only if the user wants to.",
    ),
    (
        "user-cancelled",
        400,
        "The user closed the agent's dialog. Offer to try again.",
    ),
    (
        "prompt-unavailable",
        503,
        "The agent cannot show its dialogs: install a pinentry program (e.g. pinentry-gnome3) or run the agent in a desktop session.",
    ),
    (
        "prompt-timeout",
        408,
        "The user did not answer the agent's dialog in time. Offer to try again.",
    ),
    (
        "wrong-pin",
        403,
        "The PIN was wrong; retriesLeft says how many tries remain. Let the user try again only if they choose to.",
    ),
    (
        "invalid-pin-format",
        400,
        "The PIN typed was not 4 to 8 digits; no try was spent. Offer to try again.",
    ),
    (
        "pin-blocked",
        403,
        "The PIN is blocked. The citizen unblocks it with the PUK (eid-agent card pin unblock) or at a service desk.",
    ),
    (
        "rate-limited",
        429,
        "Too many PIN operations from this site; wait retryAfterSeconds before asking again.",
    ),
    (
        "queue-full",
        503,
        "The card is busy with other requests; try again in a moment.",
    ),
    (
        "queue-timeout",
        503,
        "The card was busy for too long with other requests; try again.",
    ),
    (
        "operation-timeout",
        504,
        "The operation took too long (card or user); try again.",
    ),
    ("no-reader", 409, "Connect a smart card reader."),
    ("no-card", 409, "Insert the card in the reader, chip first."),
    (
        "card-removed",
        409,
        "The card was removed during the operation; put it back and try again.",
    ),
    (
        "card-busy",
        409,
        "Another program is using the card; close it and try again.",
    ),
    (
        "unsupported-card",
        409,
        "Insert a supported card (Portuguese Citizen Card, or an ICAO eMRTD for eMRTD reads).",
    ),
    (
        "reader-removed",
        409,
        "The reader was disconnected; reconnect it and try again.",
    ),
    (
        "pcscd-not-running",
        503,
        "Start the smart card service (pcscd) and try again.",
    ),
    (
        "access-denied",
        403,
        "The CAN or MRZ data does not open this document; check what was typed.",
    ),
    (
        "certificate-mismatch",
        409,
        "The card in the reader is not the one whose certificate was given; read the certificate again.",
    ),
    (
        "not-supported",
        409,
        "This card does not support the operation or the algorithm asked for.",
    ),
    (
        "card-error",
        502,
        "The card answered in an unexpected way; remove and insert it, then try again.",
    ),
    (
        "internal",
        500,
        "An error in the agent; see its log and report it.",
    ),
];

impl ApiError {
    /// An error with the documented status and remedy of `code` and a specific message.
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        let (status, remedy) = CODES
            .iter()
            .find(|(c, _, _)| *c == code)
            .map(|(_, status, remedy)| {
                (
                    StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                    (*remedy).to_owned(),
                )
            })
            .unwrap_or((
                StatusCode::INTERNAL_SERVER_ERROR,
                "See the agent's log.".to_owned(),
            ));
        let retryable = matches!(
            code,
            "queue-full"
                | "queue-timeout"
                | "operation-timeout"
                | "card-removed"
                | "card-busy"
                | "no-card"
                | "user-cancelled"
                | "invalid-pin-format"
                | "prompt-timeout"
                | "rate-limited"
                | "pcscd-not-running"
        );
        ApiError {
            status,
            code,
            message: message.into(),
            remedy,
            retryable,
            retries_left: None,
            retry_after_seconds: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new("bad-request", message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        ApiError::new("internal", message)
    }

    /// The JSON body.
    pub fn body(&self) -> serde_json::Value {
        serde_json::json!({ "error": self })
    }

    /// The complete HTTP response.
    pub fn into_response(self) -> warp::reply::Response {
        use warp::Reply;
        let mut response =
            warp::reply::with_status(warp::reply::json(&self.body()), self.status).into_response();
        if let Some(seconds) = self.retry_after_seconds
            && let Ok(value) = http::HeaderValue::from_str(&seconds.to_string())
        {
            response
                .headers_mut()
                .insert(http::header::RETRY_AFTER, value);
        }
        response
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for ApiError {}

/// Card errors, in one place (style.md §3). The card crate's own message goes along; its remedy
/// is the bridge's, written for a website.
impl From<eid_card::Error> for ApiError {
    fn from(error: eid_card::Error) -> Self {
        use eid_card::Error as E;
        let message = error.to_string();
        match error {
            E::PcscdNotRunning | E::PcscdStopped => ApiError::new("pcscd-not-running", message),
            E::NoReader | E::ReaderNotFound(_) => ApiError::new("no-reader", message),
            E::ReaderRemoved => ApiError::new("reader-removed", message),
            E::NoCard(_) => ApiError::new("no-card", message),
            E::CardRemoved | E::CardReset => ApiError::new("card-removed", message),
            E::CardBusy => ApiError::new("card-busy", message),
            E::UnsupportedCard { .. } => ApiError::new("unsupported-card", message),
            E::Cancelled => ApiError::new("user-cancelled", message),
            E::Timeout => ApiError::new("operation-timeout", message),
            E::WrongPin { retries_left } => {
                let mut e = ApiError::new("wrong-pin", message);
                e.retries_left = Some(retries_left);
                e
            }
            E::PinBlocked => ApiError::new("pin-blocked", message),
            E::InvalidPinFormat(_) => ApiError::new("invalid-pin-format", message),
            E::AccessDenied => ApiError::new("access-denied", message),
            // No access protocol this agent can run with what it was given (e.g. a contactless
            // Citizen Card without its CAN).
            E::NotSupported(_) | E::AccessFailed(_) => ApiError::new("not-supported", message),
            _ => ApiError::new("card-error", message),
        }
    }
}

impl From<PromptError> for ApiError {
    fn from(error: PromptError) -> Self {
        match error {
            PromptError::Cancelled => ApiError::new("user-cancelled", "the user closed the dialog"),
            PromptError::Timeout => ApiError::new(
                "prompt-timeout",
                "the user did not answer the dialog in time",
            ),
            PromptError::Aborted => ApiError::new(
                "operation-timeout",
                "the request ended (client gone or timeout) while the dialog was open",
            ),
            PromptError::Unavailable(why) => ApiError::new("prompt-unavailable", why),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_is_unique_and_has_a_remedy() {
        for (i, (code, status, remedy)) in CODES.iter().enumerate() {
            assert!(!remedy.is_empty(), "{code}");
            assert!(StatusCode::from_u16(*status).is_ok(), "{code}");
            assert!(
                CODES.iter().skip(i + 1).all(|(other, _, _)| other != code),
                "{code} twice"
            );
        }
    }

    #[test]
    fn wrong_pin_carries_retries_left() {
        let e = ApiError::from(eid_card::Error::WrongPin { retries_left: 2 });
        assert_eq!(e.code, "wrong-pin");
        assert_eq!(e.body()["error"]["retriesLeft"], 2);
    }
}
