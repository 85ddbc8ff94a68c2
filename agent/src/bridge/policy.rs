//! Who may talk to the bridge: the Host check (DNS rebinding), the Origin check (only what the
//! browser enforces is trusted), exact-origin CORS, the preflight, and the per-origin rate limit
//! of PIN operations. Pure functions over headers, so they are tested and fuzzed without a
//! server.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use http::HeaderMap;

use super::error::ApiError;
use crate::config::parse_origin;
use eid_protocols::webeid::OriginError;

/// The longest Origin or Host header considered.
const MAX_HEADER: usize = 255;

/// The page that sent a request, after the checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// A web page with an acceptable origin (canonical serialisation, exactly as the browser
    /// sent it: this string is what authentication tokens are bound to).
    Page(String),
    /// No Origin header: a local program (curl, the doctor), not a web page. It may read the
    /// status; card operations need a page.
    Local,
}

impl Caller {
    /// The origin, or `origin-missing` for card operations.
    pub fn origin(&self) -> Result<&str, ApiError> {
        match self {
            Caller::Page(origin) => Ok(origin),
            Caller::Local => Err(ApiError::new(
                "origin-missing",
                "card operations are only for web pages (no Origin header)",
            )),
        }
    }
}

/// `Host` must name the loopback interface with our port: a page on a DNS name that its owner
/// re-points to 127.0.0.1 (DNS rebinding) sends its own name here and is refused. HTTP/2
/// carries the name as the `:authority` pseudo-header (`authority`, from the request URI)
/// instead of, or besides, `Host`; when both are present they must agree.
pub fn check_host(headers: &HeaderMap, authority: Option<&str>, port: u16) -> Result<(), ApiError> {
    let refuse = |why: &str| ApiError::new("host-not-allowed", why.to_owned());
    let mut values = headers.get_all(http::header::HOST).iter();
    let host = values.next();
    if values.next().is_some() {
        return Err(refuse("more than one Host header"));
    }
    let host = host
        .map(|h| {
            h.to_str()
                .map_err(|_| refuse("the Host header is not text"))
        })
        .transpose()?;
    let name = match (host, authority) {
        (Some(h), Some(a)) if !h.eq_ignore_ascii_case(a) => {
            return Err(refuse("Host and :authority differ"));
        }
        (Some(h), _) => h,
        (None, Some(a)) => a,
        (None, None) => return Err(refuse("no Host header")),
    };
    if name.len() > MAX_HEADER {
        return Err(refuse("the Host header is too long"));
    }
    let name = name.to_ascii_lowercase();
    let allowed = [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        format!("[::1]:{port}"),
    ];
    if allowed.contains(&name) {
        Ok(())
    } else {
        Err(refuse(&format!(
            "Host {name:?} is not the agent's loopback address"
        )))
    }
}

/// Classifies the request's Origin header. `dev_mode` also accepts http pages on loopback.
/// The administrator's deny list is applied by the caller (it needs the policy).
pub fn check_origin(headers: &HeaderMap, dev_mode: bool) -> Result<Caller, ApiError> {
    let mut values = headers.get_all(http::header::ORIGIN).iter();
    let Some(value) = values.next() else {
        return Ok(Caller::Local);
    };
    let invalid = |why: String| ApiError::new("origin-invalid", why);
    if values.next().is_some() {
        return Err(invalid("more than one Origin header".into()));
    }
    let raw = value
        .to_str()
        .map_err(|_| invalid("the Origin header is not text".into()))?;
    if raw.len() > MAX_HEADER {
        return Err(invalid("the Origin header is too long".into()));
    }
    if raw == "null" {
        return Err(invalid("opaque origin (null)".into()));
    }
    let insecure =
        |what: &str| ApiError::new("origin-insecure", format!("{what} is not an https origin"));
    let origin = match parse_origin(raw) {
        Ok(origin) => origin,
        Err(OriginError::Scheme(scheme)) if scheme == "http" => return Err(insecure(raw)),
        Err(e) => return Err(invalid(format!("Origin {raw:?}: {e}"))),
    };
    let canonical = origin.to_string();
    // Browsers send the canonical form; anything else did not come from one, and tokens must
    // be bound to one unambiguous string.
    if canonical != raw {
        return Err(invalid(format!(
            "Origin {raw:?} is not in canonical form ({canonical:?})"
        )));
    }
    // The parser admits http for loopback hosts only; the agent only in development mode.
    if !canonical.starts_with("https://") && !dev_mode {
        return Err(insecure(&canonical));
    }
    Ok(Caller::Page(canonical))
}

/// The headers of a CORS preflight answer for an accepted `origin`, or an error when the
/// preflight asks for something the API does not use.
pub fn preflight(
    headers: &HeaderMap,
    origin: &str,
) -> Result<Vec<(&'static str, String)>, ApiError> {
    let method = headers
        .get("access-control-request-method")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if method != "GET" && method != "POST" {
        return Err(ApiError::new(
            "method-not-allowed",
            format!("preflight for method {method:?}: the API uses GET and POST"),
        ));
    }
    if let Some(asked) = headers
        .get("access-control-request-headers")
        .and_then(|v| v.to_str().ok())
    {
        for name in asked.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            if !name.eq_ignore_ascii_case("content-type") {
                return Err(ApiError::bad_request(format!(
                    "preflight for header {name:?}: only content-type is accepted"
                )));
            }
        }
    }
    let mut out = vec![
        ("access-control-allow-origin", origin.to_owned()),
        ("access-control-allow-methods", "GET, POST".to_owned()),
        ("access-control-allow-headers", "content-type".to_owned()),
        ("access-control-max-age", "600".to_owned()),
    ];
    // Private Network Access (Chromium): a public page calling loopback asks first.
    if headers
        .get("access-control-request-private-network")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"true"))
    {
        out.push(("access-control-allow-private-network", "true".to_owned()));
    }
    Ok(out)
}

/// A token bucket per origin for PIN operations: `burst` at once, then one per `period`.
#[derive(Debug)]
pub struct PinRateLimit {
    burst: u32,
    period: Duration,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl PinRateLimit {
    pub fn new(burst: u32, period: Duration) -> Self {
        PinRateLimit {
            burst: burst.max(1),
            period: period.max(Duration::from_millis(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `origin` at `now`, or says how long to wait.
    pub fn take(&self, origin: &str, now: Instant) -> Result<(), ApiError> {
        let mut buckets = self
            .buckets
            .lock()
            .map_err(|_| ApiError::internal("rate limiter poisoned"))?;
        // Bounded memory: forget full buckets when many origins have been seen.
        if buckets.len() > 1024 {
            let (burst, period) = (f64::from(self.burst), self.period);
            buckets.retain(|_, (tokens, at)| {
                *tokens + now.saturating_duration_since(*at).as_secs_f64() / period.as_secs_f64()
                    < burst
            });
        }
        let burst = f64::from(self.burst);
        let entry = buckets.entry(origin.to_owned()).or_insert((burst, now));
        let refill =
            now.saturating_duration_since(entry.1).as_secs_f64() / self.period.as_secs_f64();
        let tokens = (entry.0 + refill).min(burst);
        if tokens >= 1.0 {
            *entry = (tokens - 1.0, now);
            Ok(())
        } else {
            *entry = (tokens, now);
            let wait = ((1.0 - tokens) * self.period.as_secs_f64()).ceil();
            let mut e = ApiError::new(
                "rate-limited",
                format!("too many PIN operations from {origin}"),
            );
            e.retry_after_seconds = Some(wait.max(1.0) as u64);
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn host_must_be_loopback_with_our_port() {
        for ok in [
            "127.0.0.1:24180",
            "localhost:24180",
            "LOCALHOST:24180",
            "[::1]:24180",
        ] {
            assert!(
                check_host(&headers(&[("host", ok)]), None, 24180).is_ok(),
                "{ok}"
            );
        }
        for bad in [
            "evil.example",
            "evil.example:24180",
            "127.0.0.1",
            "127.0.0.1:24181",
            "localhost.evil.example:24180",
            "127.0.0.2:24180",
        ] {
            let e = check_host(&headers(&[("host", bad)]), None, 24180).unwrap_err();
            assert_eq!(e.code, "host-not-allowed", "{bad}");
        }
        assert!(check_host(&HeaderMap::new(), None, 24180).is_err());
        let two = headers(&[("host", "127.0.0.1:24180"), ("host", "evil.example")]);
        assert!(check_host(&two, None, 24180).is_err());
        // HTTP/2: the authority alone, or both agreeing.
        assert!(check_host(&HeaderMap::new(), Some("127.0.0.1:24180"), 24180).is_ok());
        assert!(check_host(&HeaderMap::new(), Some("evil.example:24180"), 24180).is_err());
        let h = headers(&[("host", "127.0.0.1:24180")]);
        assert!(check_host(&h, Some("127.0.0.1:24180"), 24180).is_ok());
        assert!(check_host(&h, Some("evil.example"), 24180).is_err());
    }

    #[test]
    fn origins_are_classified() {
        let page = check_origin(&headers(&[("origin", "https://rp.example")]), false).unwrap();
        assert_eq!(page, Caller::Page("https://rp.example".into()));
        assert_eq!(
            check_origin(&HeaderMap::new(), false).unwrap(),
            Caller::Local
        );
        let code = |o: &str, dev| {
            check_origin(&headers(&[("origin", o)]), dev)
                .unwrap_err()
                .code
        };
        assert_eq!(code("null", false), "origin-invalid");
        assert_eq!(code("https://rp.example/path", false), "origin-invalid");
        assert_eq!(code("HTTPS://RP.EXAMPLE", false), "origin-invalid");
        assert_eq!(code("http://rp.example", false), "origin-insecure");
        assert_eq!(code("http://rp.example", true), "origin-insecure");
        assert_eq!(code("http://localhost:8080", false), "origin-insecure");
        assert!(check_origin(&headers(&[("origin", "http://localhost:8080")]), true).is_ok());
    }

    #[test]
    fn preflight_echoes_exact_origin_and_answers_private_network() {
        let h = headers(&[
            ("access-control-request-method", "POST"),
            ("access-control-request-headers", "content-type"),
            ("access-control-request-private-network", "true"),
        ]);
        let out = preflight(&h, "https://rp.example").unwrap();
        assert!(out.contains(&("access-control-allow-origin", "https://rp.example".into())));
        assert!(out.contains(&("access-control-allow-private-network", "true".into())));
        let h = headers(&[("access-control-request-method", "DELETE")]);
        assert!(preflight(&h, "https://rp.example").is_err());
        let h = headers(&[
            ("access-control-request-method", "POST"),
            ("access-control-request-headers", "x-pin"),
        ]);
        assert!(preflight(&h, "https://rp.example").is_err());
    }

    #[test]
    fn pin_rate_limit_refills_per_origin() {
        let limit = PinRateLimit::new(2, Duration::from_secs(60));
        let t0 = Instant::now();
        assert!(limit.take("https://a.example", t0).is_ok());
        assert!(limit.take("https://a.example", t0).is_ok());
        let e = limit.take("https://a.example", t0).unwrap_err();
        assert_eq!(e.code, "rate-limited");
        assert!(e.retry_after_seconds.unwrap() >= 59);
        assert!(
            limit.take("https://b.example", t0).is_ok(),
            "other origins unaffected"
        );
        assert!(
            limit
                .take("https://a.example", t0 + Duration::from_secs(61))
                .is_ok()
        );
    }
}
