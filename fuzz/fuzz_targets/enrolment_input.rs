//! The enrolment service's parsers of hostile input: every API request body (by path), the
//! contact a citizen types, the mobile-key PIN rule, and the session cookie header. None may
//! panic; an accepted contact is canonical (parsing its canonical form gives it back) and its
//! masked form shows only what it should.
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
        // The masked form shows at most the local part's first character (e-mail) or the last
        // three digits (phone). An address such as `a***@x.pt` is its own mask, so the check is
        // on what is shown, not on the masked text differing.
        let masked = contact.masked();
        match contact.as_str().split_once('@') {
            Some((local, domain)) => {
                let first: String = local.chars().take(1).collect();
                assert_eq!(masked, format!("{first}***@{domain}"), "e-mail mask");
            }
            None => {
                let shown = masked.chars().filter(char::is_ascii_digit).count();
                let digits = contact.as_str().chars().filter(char::is_ascii_digit).count();
                assert!(shown < digits, "phone mask shows every digit: {masked}");
            }
        }
    }
    let _ = check_new_pin(&text);

    if let Ok(value) = http::HeaderValue::from_bytes(rest) {
        let mut headers = http::HeaderMap::new();
        headers.insert(http::header::COOKIE, value);
        let _ = token_from(&headers);
    }
});
