//! The bridge's request parsers on arbitrary input: the Host, Origin and preflight checks on
//! headers built from the bytes (one `name: value` per line), and every API v1 request body.
//!
//! Invariants: nothing panics; a Host accepted is one of the three loopback names with the
//! port; an Origin accepted as a page is its own canonical form and https unless development
//! mode; a preflight answer echoes exactly that origin.
#![no_main]

use eid_agent::bridge::policy::{Caller, check_host, check_origin, preflight};
use eid_agent::bridge::routes::{
    AuthenticateRequest, CertificateRequest, EmrtdRequest, IdentityRequest, SignRequest, Targeted,
    parse_json,
};
use http::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;

fn headers(data: &[u8]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for line in data.split(|b| *b == b'\n').take(32) {
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        let (name, value) = line.split_at(colon);
        let value = value.get(1..).unwrap_or_default();
        let value = value.strip_prefix(b" ").unwrap_or(value);
        if let (Ok(name), Ok(value)) =
            (HeaderName::from_bytes(name), HeaderValue::from_bytes(value))
        {
            map.append(name, value);
        }
    }
    map
}

fuzz_target!(|data: &[u8]| {
    let map = headers(data);
    let authority = std::str::from_utf8(data)
        .ok()
        .and_then(|s| s.lines().next());
    for auth in [None, authority] {
        if check_host(&map, auth, 24180).is_ok() {
            let host = map
                .get("host")
                .and_then(|h| h.to_str().ok())
                .or(auth)
                .unwrap()
                .to_ascii_lowercase();
            assert!(
                ["127.0.0.1:24180", "localhost:24180", "[::1]:24180"].contains(&host.as_str()),
                "{host}"
            );
        }
    }
    for dev in [false, true] {
        if let Ok(Caller::Page(origin)) = check_origin(&map, dev) {
            let sent = map.get("origin").unwrap().to_str().unwrap();
            assert_eq!(sent, origin);
            assert!(dev || origin.starts_with("https://"));
            if let Ok(answer) = preflight(&map, &origin) {
                assert!(answer.contains(&("access-control-allow-origin", origin.clone())));
            }
        }
    }
    let _ = parse_json::<AuthenticateRequest>(data);
    let _ = parse_json::<SignRequest>(data);
    let _ = parse_json::<IdentityRequest>(data);
    let _ = parse_json::<EmrtdRequest>(data);
    // The card a request names (`reader`, `session`): an accepted session id is 32 hex digits.
    if let Ok(request) = parse_json::<CertificateRequest>(data)
        && let Ok(target) = request.target()
    {
        assert!(target.session.is_none_or(|s| {
            s.len() == 32
                && s.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        }));
    }
});
