//! Web eID token and eMRTD result parsing and validation (`eid_protocols::webeid`) on arbitrary
//! bytes, with one fixed validator (origin, a trust anchor whose private key was thrown away,
//! a fixed time). Invariants: nothing panics; no input validates (forging a signature is the
//! only way); every refusal has a code; a token that parses re-serializes to JSON that parses
//! to the same token.
#![no_main]

use std::sync::OnceLock;

use eid_protocols::pa::CscaStore;
use eid_protocols::webeid::{
    AuthToken, EmrtdResult, EmrtdValidator, Origin, TokenValidator, check_nonce,
};
use libfuzzer_sys::fuzz_target;

/// A self-signed P-256 CA (keyCertSign only) made for this target; its key no longer exists.
const ANCHOR: &str = "\
-----BEGIN CERTIFICATE-----
MIIBrzCCAVSgAwIBAgIBATAKBggqhkjOPQQDAjAtMQswCQYDVQQGEwJVVDEeMBwG
A1UEAwwVZWlkLWFnZW50IGZ1enogYW5jaG9yMCAXDTI2MTEyMTEwMjIyOFoYDzIw
NTEwNzEzMTAyMjI4WjAtMQswCQYDVQQGEwJVVDEeMBwGA1UEAwwVZWlkLWFnZW50
IGZ1enogYW5jaG9yMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEvmP8gR2+SRBN
8vfJc565OgPxDv6AQhiV9WCG4dFinwygd1AUhHBwR5cKMv1Zf1okOo/SSeI09gfR
xVlzGjqJV6NjMGEwHQYDVR0OBBYEFIHW92EuNe1xPRldBAnqa9lqODFlMB8GA1Ud
IwQYMBaAFIHW92EuNe1xPRldBAnqa9lqODFlMA8GA1UdEwEB/wQFMAMBAf8wDgYD
VR0PAQH/BAQDAgEGMAoGCCqGSM49BAMCA0kAMEYCIQDPW0A1qH01eD+5kRr9QgdC
4fdbwaxRtaQFaRxc8tj5PwIhAMS9aaX7Q5JOKoqT5fHxCjmvme0l4U74L7vhWUqk
Cj3u
-----END CERTIFICATE-----
";

const NONCE: &str = "12345678123456781234567812345678912356789123";

fn validators() -> &'static (TokenValidator, EmrtdValidator) {
    static V: OnceLock<(TokenValidator, EmrtdValidator)> = OnceLock::new();
    V.get_or_init(|| {
        let at = time::macros::datetime!(2030-01-01 0:00 UTC);
        let token = TokenValidator::new("https://example.org")
            .and_then(|v| v.with_trust_anchors(ANCHOR.as_bytes()))
            .expect("fixed validator")
            .at(at);
        let mut csca = CscaStore::new();
        csca.add_certificates(ANCHOR.as_bytes()).expect("anchor");
        let emrtd = EmrtdValidator::new(csca, "https://example.org").expect("fixed validator");
        (token, emrtd)
    })
}

fuzz_target!(|input: &[u8]| {
    let (token_validator, emrtd_validator) = validators();
    match token_validator.validate(input, NONCE) {
        Ok(v) => panic!("an arbitrary token validated: {v:?}"),
        Err(e) => assert!(!e.code().is_empty()),
    }
    if let Ok(token) = AuthToken::parse(input) {
        let again = AuthToken::parse(token.to_json().as_bytes());
        // Re-serialized JSON may be shorter than the minimum token size; otherwise equal.
        if let Ok(again) = again {
            assert_eq!(again, token);
        }
    }
    if let Ok(result) = EmrtdResult::parse(input) {
        let at = time::macros::datetime!(2030-01-01 0:00 UTC);
        assert!(emrtd_validator.validate(&result, NONCE, at).is_err());
        // Own JSON parses back (unless it outgrew the size limit) to the same result.
        if let Ok(again) = EmrtdResult::parse(result.to_json().as_bytes()) {
            assert_eq!(again, result);
        }
    }
    let text = String::from_utf8_lossy(input);
    if let Ok(origin) = Origin::parse(&text) {
        assert_eq!(Origin::parse(origin.as_str()).as_ref(), Ok(&origin));
    }
    let _ = check_nonce(&text);
});
