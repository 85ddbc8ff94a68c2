//! The enrolment service's parsers of hostile input: every API request body (by path), the
//! contact a citizen types, the mobile-key PIN rule, and the session cookie header. None may
//! panic; an accepted contact is canonical (parsing its canonical form gives it back) and its
//! masked form never shows the whole contact.
#![no_main]

use eid_enrolment::api::parse_body;
use eid_enrolment::delivery::Contact;
use eid_enrolment::secrets::check_new_pin;
use eid_enrolment::session::token_from;
use libfuzzer_sys::fuzz_target;

const PATHS: [&str; 14] = [
    "enrol/start",
    "enrol/nonce",
    "enrol/card",
    "enrol/mobile-key",
    "enrol/resend",
    "enrol/confirm",
    "login/start",
    "login/confirm",
    "desk/login",
    "desk/logout",
    "desk/nonce",
    "desk/document",
    "desk/next",
    "unknown",
];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let path = PATHS[usize::from(selector) % PATHS.len()];
    let _ = parse_body(path, rest);

    let text = String::from_utf8_lossy(rest);
    if let Ok(contact) = Contact::parse(&text) {
        let again = Contact::parse(contact.as_str()).expect("a canonical contact parses");
        assert_eq!(again.as_str(), contact.as_str(), "canonical form is stable");
        assert_ne!(contact.masked(), contact.as_str(), "masked form hides the contact");
    }
    let _ = check_new_pin(&text);

    if let Ok(value) = http::HeaderValue::from_bytes(rest) {
        let mut headers = http::HeaderMap::new();
        headers.insert(http::header::COOKIE, value);
        let _ = token_from(&headers);
    }
});
