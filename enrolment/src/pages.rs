//! The pages and their scripts, embedded in the binary (`include_str!` of `web/enrolment` and
//! the bridge client `web/eid-bridge.js`), and the security headers every answer carries.
//!
//! Embedding means the binary serves exactly the files it was built with: no path from a
//! request ever reaches the file system.

use http::HeaderValue;
use http::header::{self, HeaderMap};

/// One embedded file.
#[derive(Debug, Clone, Copy)]
pub struct Asset {
    pub body: &'static str,
    pub content_type: &'static str,
}

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

macro_rules! web {
    ($path:literal) => {
        include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../web/", $path))
    };
}

/// The page at `path` (`/`, `/enrol`, `/login`, `/desk`, `/dev/outbox`); the outbox page only
/// with a development outbox.
pub fn page(path: &str, dev_outbox: bool) -> Option<Asset> {
    let body = match path {
        "/" | "/index.html" => web!("enrolment/index.html"),
        "/enrol" => web!("enrolment/enrol.html"),
        "/login" => web!("enrolment/login.html"),
        "/desk" => web!("enrolment/desk.html"),
        "/dev/outbox" if dev_outbox => web!("enrolment/outbox.html"),
        _ => return None,
    };
    Some(Asset {
        body,
        content_type: HTML,
    })
}

/// `/static/<name>`: the page scripts, the style sheet and the bridge client.
pub fn static_file(name: &str) -> Option<Asset> {
    let (body, content_type) = match name {
        "common.js" => (web!("enrolment/common.js"), JS),
        "enrol.js" => (web!("enrolment/enrol.js"), JS),
        "login.js" => (web!("enrolment/login.js"), JS),
        "desk.js" => (web!("enrolment/desk.js"), JS),
        "outbox.js" => (web!("enrolment/outbox.js"), JS),
        "style.css" => (web!("enrolment/style.css"), CSS),
        "eid-bridge.js" => (web!("eid-bridge.js"), JS),
        _ => return None,
    };
    Some(Asset { body, content_type })
}

/// The Content-Security-Policy: nothing but this origin's own scripts and styles (no inline
/// code, so an injected `<script>` does not run), fetches to this origin and the bridge only,
/// no framing (clickjacking of the PIN and code steps), no base or form redirection.
pub fn content_security_policy(bridge_origin: &str) -> String {
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         connect-src 'self' {bridge_origin}; form-action 'self'; frame-ancestors 'none'; \
         base-uri 'none'"
    )
}

/// Adds the security headers of every answer (pages and API alike).
pub fn add_security_headers(headers: &mut HeaderMap, csp: &HeaderValue) {
    headers.insert(header::CONTENT_SECURITY_POLICY, csp.clone());
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        header::STRICT_TRANSPORT_SECURITY,
        HeaderValue::from_static("max-age=31536000"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        http::HeaderName::from_static("cross-origin-opener-policy"),
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(
        http::HeaderName::from_static("cross-origin-resource-policy"),
        HeaderValue::from_static("same-origin"),
    );
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_contract_file_is_embedded() {
        for p in ["/", "/enrol", "/login", "/desk"] {
            assert!(page(p, false).is_some(), "{p}");
        }
        assert!(page("/dev/outbox", false).is_none());
        assert!(page("/dev/outbox", true).is_some());
        for f in [
            "common.js",
            "enrol.js",
            "login.js",
            "desk.js",
            "outbox.js",
            "style.css",
            "eid-bridge.js",
        ] {
            assert!(static_file(f).is_some(), "{f}");
        }
        assert!(static_file("../Cargo.toml").is_none());
    }

    #[test]
    fn csp_names_the_bridge() {
        let csp = content_security_policy("https://127.0.0.1:24180");
        assert!(csp.contains("connect-src 'self' https://127.0.0.1:24180;"));
        assert!(csp.contains("frame-ancestors 'none'"));
        assert!(!csp.contains("unsafe-inline"));
    }
}
