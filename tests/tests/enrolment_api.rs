//! The enrolment service's checks on what reaches it, with real evidence: tokens and eMRTD
//! results made by the real `eid-agent run` (over HTTPS, with the `Origin` a browser would
//! send) from virtual cards behind the real pcscd (vpcd), posted to the real
//! `eid-enrolment serve` as its pages post them. Each refusal leaves nothing stored: no binding,
//! and no identity in the session (the next step answers `no-identity`).
//!
//! Skips without pcscd + vpcd (unless `EID_REQUIRE_PCSCD=1`). Tests run one at a time (the
//! agent sees every reader).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use eid_hardware_mocks::emrtd::profile::{self, Profile};
use eid_hardware_mocks::pteid::cc2;
use eid_tests::enrolment::{
    ApiSession, EnrolmentOptions, OTHER_HOST, Stack, StackOptions, error_code, write_card_trust,
    write_csca, write_unrelated_root,
};
use eid_tests::https::Request;
use serde_json::{Value, json};

const CARD_PIN: &str = "1111";

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// A CC2 stack; `untrusted`: the service trusts an unrelated root instead of the card's PKI.
fn stack(untrusted: bool, options: StackOptions) -> Option<Stack> {
    let card = cc2::cc2_default().unwrap();
    let pki = card.pki;
    Stack::start(card.card, &options, |dir| {
        let trust = if untrusted {
            write_unrelated_root(dir, "unrelated-root.pem")
        } else {
            write_card_trust(dir, &pki, "card-trust.pem")
        };
        (vec![trust], vec![])
    })
}

/// A citizen session with a nonce from the service.
fn session_with_nonce(stack: &Stack) -> (ApiSession, String) {
    let mut api = stack.service.api();
    let started = api.post("/api/enrol/start", &json!({}));
    assert_eq!(started.status, 200, "{}", started.text());
    assert!(
        api.cookie.is_some(),
        "no session cookie: {:?}",
        started.headers
    );
    let nonce = api.post("/api/enrol/nonce", &json!({}));
    assert_eq!(nonce.status, 200, "{}", nonce.text());
    let nonce = nonce.json()["nonce"].as_str().unwrap().to_owned();
    (api, nonce)
}

/// A token over `nonce` from the agent for `origin`, the card PIN given in its dialog.
fn token(stack: &Stack, origin: &str, nonce: &str) -> Value {
    stack.agent.answer(&[&format!("pin {CARD_PIN}")]);
    stack.mint_token(origin, nonce)
}

/// The refusal leaves nothing: no identity in the session, no binding.
fn assert_nothing_stored(stack: &Stack, api: &mut ApiSession) {
    let next = api.post(
        "/api/enrol/mobile-key",
        &json!({ "contact": "+351912345678", "pin": "4826", "pinRepeat": "4826" }),
    );
    assert_eq!(next.status, 409, "{}", next.text());
    assert_eq!(error_code(&next), "no-identity");
    assert!(stack.service.bindings().is_empty(), "nothing stored");
    assert!(
        stack.service.outbox_entries().is_empty(),
        "no code was sent"
    );
}

/// The refusal's error object, after checking status class and code.
fn refused(response: &eid_tests::https::Response, code: &str) -> Value {
    assert!(
        (400..500).contains(&response.status),
        "{} {}",
        response.status,
        response.text()
    );
    assert_eq!(error_code(response), code, "{}", response.text());
    let error = response.json()["error"].clone();
    assert!(
        error["message"].as_str().is_some_and(|m| m.len() > 10),
        "a message in plain words: {error}"
    );
    error
}

#[test]
fn a_valid_token_is_accepted_once_and_its_replay_is_refused() {
    let _guard = serial();
    let Some(stack) = stack(false, StackOptions::default()) else {
        return;
    };
    let (mut api, nonce) = session_with_nonce(&stack);
    let token = token(&stack, &stack.service.origin, &nonce);
    let body = json!({ "token": token, "nonce": nonce });
    let ok = api.post("/api/enrol/card", &body);
    assert_eq!(ok.status, 200, "{}\n{}", ok.text(), stack.diagnostics());
    let identity = &ok.json()["identity"];
    assert_eq!(identity["kind"], "citizen-card", "{identity}");
    assert_eq!(identity["documentNumber"], "99000123", "{identity}");
    assert_eq!(identity["name"], "MARTA INÊS SEQUEIRA TESTE", "{identity}");

    // The same token again, in the same session and in another one.
    let again = api.post("/api/enrol/card", &body);
    refused(&again, "nonce-reused");
    let mut other = stack.service.api();
    assert_eq!(other.post("/api/enrol/start", &json!({})).status, 200);
    let replayed = other.post("/api/enrol/card", &body);
    assert!((400..500).contains(&replayed.status), "{}", replayed.text());
    assert!(
        error_code(&replayed).starts_with("nonce-"),
        "{}",
        replayed.text()
    );
    assert_nothing_stored(&stack, &mut other);
}

#[test]
fn a_token_made_for_another_origin_is_refused() {
    let _guard = serial();
    let options = StackOptions {
        also_allow_hosts: vec![OTHER_HOST.to_owned()],
        ..StackOptions::default()
    };
    let Some(stack) = stack(false, options) else {
        return;
    };
    let (mut api, nonce) = session_with_nonce(&stack);
    // The other site got the citizen to sign the service's nonce (relayed to it).
    let other_origin = format!("https://{OTHER_HOST}:{}", stack.service.port);
    let token = token(&stack, &other_origin, &nonce);
    let response = api.post(
        "/api/enrol/card",
        &json!({ "token": token, "nonce": nonce }),
    );
    let error = refused(&response, "signature-invalid");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("not made for this site"),
        "{error}"
    );
    assert_nothing_stored(&stack, &mut api);
}

#[test]
fn a_card_from_an_untrusted_issuer_is_refused() {
    let _guard = serial();
    let Some(stack) = stack(true, StackOptions::default()) else {
        return;
    };
    let (mut api, nonce) = session_with_nonce(&stack);
    let token = token(&stack, &stack.service.origin, &nonce);
    let response = api.post(
        "/api/enrol/card",
        &json!({ "token": token, "nonce": nonce }),
    );
    refused(&response, "certificate-untrusted");
    assert_nothing_stored(&stack, &mut api);
}

#[test]
fn an_expired_nonce_is_refused() {
    let _guard = serial();
    let options = StackOptions {
        service: EnrolmentOptions {
            nonce_ttl_secs: Some(1),
            ..EnrolmentOptions::default()
        },
        ..StackOptions::default()
    };
    let Some(stack) = stack(false, options) else {
        return;
    };
    let (mut api, nonce) = session_with_nonce(&stack);
    let token = token(&stack, &stack.service.origin, &nonce);
    std::thread::sleep(Duration::from_millis(2500));
    let response = api.post(
        "/api/enrol/card",
        &json!({ "token": token, "nonce": nonce }),
    );
    refused(&response, "nonce-expired");
    assert_nothing_stored(&stack, &mut api);
}

/// The service's own eMRTD checks, whatever the page asks for: a desk session posts what the
/// agent read with DG11 included, and the tampered DG11 is refused.
#[test]
fn desk_document_with_a_tampered_data_group_is_refused() {
    let _guard = serial();
    let card = profile::card(Profile::BadDgHash).unwrap();
    let Some(stack) = Stack::start(card, &StackOptions::default(), |dir| {
        (
            vec![write_unrelated_root(dir, "card-trust.pem")],
            vec![write_csca(dir)],
        )
    }) else {
        return;
    };
    stack.service.add_operator("desk", "desk password 1");
    let mut api = stack.service.api();
    let login = api.post(
        "/api/desk/login",
        &json!({ "operator": "desk", "password": "desk password 1" }),
    );
    assert_eq!(login.status, 200, "{}", login.text());
    let nonce = api.post("/api/desk/nonce", &json!({}));
    assert_eq!(nonce.status, 200, "{}", nonce.text());
    let nonce = nonce.json()["nonce"].as_str().unwrap().to_owned();
    let read = stack
        .agent
        .client()
        .send(
            &Request::post("/v1/emrtd/read")
                .origin(&stack.service.origin)
                .json(
                    &json!({ "can": "123456", "dataGroups": [1, 2, 11], "challengeNonce": nonce }),
                ),
        )
        .unwrap();
    assert_eq!(read.status, 200, "{}\n{}", read.text(), stack.diagnostics());
    let response = api.post(
        "/api/desk/document",
        &json!({ "result": read.json(), "nonce": nonce }),
    );
    let error = refused(&response, "data-group-hash");
    assert!(
        error["message"].as_str().unwrap().contains("altered"),
        "{error}"
    );
    assert!(stack.service.bindings().is_empty(), "nothing stored");
}
