//! Property tests of the bridge's request parsers (the fuzz target `bridge_request` runs the
//! same invariants under libFuzzer): whatever the headers and bodies, nothing panics, and what
//! is accepted is what the rules say.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use eid_agent::bridge::policy::{Caller, check_host, check_origin, preflight};
use eid_agent::bridge::routes::{
    AuthenticateRequest, CertificateRequest, EmrtdRequest, IdentityRequest, SignRequest, parse_json,
};
use http::{HeaderMap, HeaderValue};
use proptest::prelude::*;

fn with(name: &'static str, value: &[u8]) -> Option<HeaderMap> {
    let mut map = HeaderMap::new();
    map.insert(name, HeaderValue::from_bytes(value).ok()?);
    Some(map)
}

proptest! {
    #[test]
    fn host_check_accepts_only_the_three_loopback_names(value in proptest::collection::vec(any::<u8>(), 0..80), port in any::<u16>()) {
        if let Some(map) = with("host", &value)
            && check_host(&map, None, port).is_ok()
        {
            let text = String::from_utf8(value).unwrap().to_ascii_lowercase();
            let allowed = [
                format!("127.0.0.1:{port}"),
                format!("localhost:{port}"),
                format!("[::1]:{port}"),
            ];
            prop_assert!(allowed.contains(&text), "{}", text);
        }
    }

    #[test]
    fn origins_accepted_are_canonical_and_https(value in "((https?|HTTPS|ftp)://)?[a-zA-Z0-9.:_-]{0,30}(\\[::1\\])?(:[0-9]{1,6})?(/[a-z]{0,3})?") {
        if let Some(map) = with("origin", value.as_bytes()) {
            match check_origin(&map, false) {
                Ok(Caller::Page(origin)) => {
                    prop_assert_eq!(&origin, &value);
                    prop_assert!(origin.starts_with("https://"));
                    let answer = preflight(
                        &{
                            let mut m = map.clone();
                            m.insert("access-control-request-method", HeaderValue::from_static("POST"));
                            m
                        },
                        &origin,
                    ).unwrap();
                    prop_assert!(answer.contains(&("access-control-allow-origin", origin.clone())));
                }
                Ok(Caller::Local) => prop_assert!(false, "an Origin header is never Local"),
                Err(e) => prop_assert!(e.code.starts_with("origin-")),
            }
        }
    }

    #[test]
    fn request_bodies_never_panic(body in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = parse_json::<AuthenticateRequest>(&body);
        let _ = parse_json::<CertificateRequest>(&body);
        let _ = parse_json::<SignRequest>(&body);
        let _ = parse_json::<IdentityRequest>(&body);
        let _ = parse_json::<EmrtdRequest>(&body);
    }

    #[test]
    fn json_shaped_bodies_never_panic(
        nonce in ".{0,80}",
        fields in proptest::collection::vec(".{0,10}", 0..5),
        groups in proptest::collection::vec(any::<i64>(), 0..5),
    ) {
        let bodies = [
            serde_json::json!({ "challengeNonce": nonce }),
            serde_json::json!({ "type": nonce }),
            serde_json::json!({ "fields": fields, "photo": true }),
            serde_json::json!({ "can": nonce, "dataGroups": groups, "challengeNonce": nonce }),
            serde_json::json!({ "certificate": nonce, "hash": nonce, "hashFunction": nonce }),
        ];
        for body in bodies {
            let bytes = serde_json::to_vec(&body).unwrap();
            let _ = parse_json::<AuthenticateRequest>(&bytes);
            let _ = parse_json::<CertificateRequest>(&bytes);
            let _ = parse_json::<SignRequest>(&bytes);
            let _ = parse_json::<IdentityRequest>(&bytes);
            let _ = parse_json::<EmrtdRequest>(&bytes);
        }
    }
}

#[test]
fn unknown_fields_are_refused_with_bad_request() {
    let e = parse_json::<AuthenticateRequest>(br#"{"challengeNonce":"x","origin":"https://evil"}"#)
        .unwrap_err();
    assert_eq!(e.code, "bad-request");
    assert!(e.message.contains("origin"), "{}", e.message);
}
