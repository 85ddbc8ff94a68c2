//! The enrolment service as citizens and desk operators use it: headless Chromium (driven over
//! the DevTools protocol) on the service's pages, the pages calling the real `eid-agent run`
//! through `web/eid-bridge.js`, the agent talking to virtual cards behind the real pcscd (vpcd)
//! and asking the scripted pinentry (the user) for the PIN, the one-time codes read from the
//! service's development outbox, and the stored bindings read with `eid-enrolment bindings list`.
//!
//! Every step is saved as a PNG under `target/test-artifacts/enrolment/<test>/`.
//!
//! Skips without pcscd + vpcd or without Chromium (unless `EID_REQUIRE_PCSCD=1` /
//! `EID_REQUIRE_BROWSER=1`). The tests share the vpcd slots and the agent sees every reader:
//! they run one at a time.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use eid_hardware_mocks::emrtd::profile::{self, Profile};
use eid_hardware_mocks::pteid::{cc1, cc2};
use eid_tests::Rig as _;
use eid_tests::browser::browser_available;
use eid_tests::cdp::Page;
use eid_tests::enrolment::pages::{self, do_click, text, type_in};
use eid_tests::enrolment::{
    Shots, Stack, StackOptions, binding_field, wait_for_agent_card, write_card_trust, write_csca,
    write_unrelated_root,
};
use serde_json::Value;

/// The virtual Citizen Cards' authentication PIN (hardware-mocks/assets/citizen-default.json).
const CARD_PIN: &str = "1111";
/// The default citizen's civil identification number and certificate serialNumber.
const CIVIL_ID: &str = "99000123";
/// The CAN printed on the `emrtd-pace` document and its faulty variants.
const PASSPORT_CAN: &str = "123456";
/// The mobile-key PIN the citizens choose (not a run, not all the same digit).
const MOBILE_PIN: &str = "4826";
const OPERATOR: &str = "desk";
const OPERATOR_PASSWORD: &str = "correct horse battery staple";

/// A page step or a bridge call (the card signs, the chip is read) may take this long.
const CARD_STEP: Duration = Duration::from_secs(120);
/// A plain request to the service.
const STEP: Duration = Duration::from_secs(30);

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// A Citizen Card stack (CC1 or CC2) trusting the card's PKI; `None` (skip) without Chromium or
/// pcscd.
fn citizen_stack(cc1: bool, options: StackOptions) -> Option<Stack> {
    if !browser_available() {
        return None;
    }
    let card = if cc1 {
        cc1::cc1_default()
    } else {
        cc2::cc2_default()
    }
    .unwrap();
    let pki = card.pki;
    Stack::start(card.card, &options, |dir| {
        (vec![write_card_trust(dir, &pki, "card-trust.pem")], vec![])
    })
}

/// A passport stack (`profile`) trusting the eMRTD CSCA, with the desk operator added.
fn passport_stack(profile: Profile) -> Option<Stack> {
    if !browser_available() {
        return None;
    }
    let card = profile::card(profile).unwrap();
    let stack = Stack::start(card, &StackOptions::default(), |dir| {
        // The service needs Citizen Card anchors too; the desk flow does not use them.
        (
            vec![write_unrelated_root(dir, "card-trust.pem")],
            vec![write_csca(dir)],
        )
    })?;
    stack.service.add_operator(OPERATOR, OPERATOR_PASSWORD);
    Some(stack)
}

/// What the page shows: the visible step, the error line, and whether it is busy.
fn state(page: &mut Page) -> Value {
    page.eval(
        "(() => { const e = document.getElementById('error');
           return { step: document.querySelector('section[data-step]:not([hidden])')?.dataset.step ?? null,
                    busy: document.querySelector('main')?.getAttribute('aria-busy') ?? null,
                    page: document.querySelector('main')?.dataset.page ?? null,
                    error: e && !e.hidden ? { code: e.dataset.code ?? null, text: e.textContent.trim(),
                      retriesLeft: e.dataset.retriesLeft ?? null, attemptsLeft: e.dataset.attemptsLeft ?? null } : null }; })()",
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

/// Waits until the page is idle on `step`; fails at once when it shows an error instead.
fn wait_step(page: &mut Page, stack: &Stack, step: &str, limit: Duration) {
    pages::wait_step(page, stack, step, limit, state);
}

/// Waits until the page is idle with its error line shown; returns the error (code, text,
/// retriesLeft, attemptsLeft) after checking the code is `code`.
fn wait_error(page: &mut Page, stack: &Stack, code: &str, limit: Duration) -> Value {
    let predicate = "(() => { const m = document.querySelector('main');
        const e = document.getElementById('error');
        return m && m.getAttribute('aria-busy') === 'false' && e && !e.hidden; })()";
    if let Err(e) = page.wait_for(predicate, limit) {
        panic!(
            "no error {code} shown: {}\n{e}\n{}",
            state(page),
            stack.diagnostics()
        );
    }
    let shown = state(page);
    assert_eq!(
        shown["error"]["code"],
        code,
        "{shown}\n{}",
        stack.diagnostics()
    );
    assert!(
        shown["error"]["text"]
            .as_str()
            .is_some_and(|t| t.len() > 10),
        "a message in plain words: {shown}"
    );
    shown["error"].clone()
}

/// Opens `path` on the service and waits until the page is ready on `step`.
fn open(page: &mut Page, stack: &Stack, path: &str, step: &str) {
    page.navigate(&stack.service.url(path))
        .unwrap_or_else(|e| panic!("{e}\n{}", stack.diagnostics()));
    wait_step(page, stack, step, STEP);
}

/// The page said nothing about a Content-Security-Policy violation or an uncaught exception.
fn assert_clean_console(page: &mut Page) {
    let _ = page.pump_events();
    let bad: Vec<&String> = page
        .console()
        .iter()
        .filter(|l| l.contains("Content Security Policy") || l.starts_with("exception:"))
        .collect();
    assert!(bad.is_empty(), "page problems: {bad:?}");
}

/// From `/enrol` to the `mobile-key` step: the session, the card read (no dialog: the agent's
/// administrator allows the service), and the card's signature over the service's nonce with
/// the PIN typed in the agent's dialog.
fn enrol_until_mobile_key(page: &mut Page, stack: &Stack, shots: &mut Shots) {
    open(page, stack, "/enrol", "read-card");
    shots.take(page, "enrol-start");
    do_click(page, "#btn-read-card");
    wait_step(page, stack, "authenticate", CARD_STEP);
    assert_eq!(text(page, "#card-holder"), "MARTA INÊS SEQUEIRA TESTE");
    shots.take(page, "card-read");
    stack.agent.answer(&[&format!("pin {CARD_PIN}")]);
    do_click(page, "#btn-authenticate");
    wait_step(page, stack, "mobile-key", CARD_STEP);
    // The identity the service took from the verified certificate.
    assert_eq!(text(page, "#identity-name"), "MARTA INÊS SEQUEIRA TESTE");
    assert_eq!(text(page, "#identity-number"), CIVIL_ID);
    shots.take(page, "authenticated");
}

/// The `mobile-key` and `confirm` steps: contact and PIN, then the code from the outbox.
fn register_mobile_key(
    page: &mut Page,
    stack: &Stack,
    shots: &mut Shots,
    contact: &str,
    email: bool,
) {
    if email {
        do_click(page, "#contact-kind-email");
    }
    type_in(page, "#contact", contact);
    type_in(page, "#pin", MOBILE_PIN);
    type_in(page, "#pin-repeat", MOBILE_PIN);
    shots.take(page, "mobile-key-filled");
    let seen = stack.service.outbox_entries().len();
    do_click(page, "#btn-register");
    wait_step(page, stack, "confirm", STEP);
    let sent_to = text(page, "#code-sent-to");
    assert!(!sent_to.is_empty() && sent_to.contains('*'), "{sent_to:?}");
    shots.take(page, "code-sent");
    let code = stack.service.wait_code(seen, "enrolment");
    type_in(page, "#code", &code);
    do_click(page, "#btn-confirm");
    wait_step(page, stack, "done", STEP);
    assert!(!text(page, "#done-name").is_empty());
    assert_eq!(text(page, "#done-contact"), sent_to);
    shots.take(page, "enrolled");
}

/// `/login` with the mobile key alone: contact + PIN, then the code from the outbox.
fn login(page: &mut Page, stack: &Stack, shots: &mut Shots, contact: &str, expect_name: &str) {
    open(page, stack, "/login", "credentials");
    shots.take(page, "login-start");
    type_in(page, "#contact", contact);
    type_in(page, "#pin", MOBILE_PIN);
    let seen = stack.service.outbox_entries().len();
    do_click(page, "#btn-login");
    wait_step(page, stack, "code", STEP);
    assert!(text(page, "#code-sent-to").contains('*'));
    shots.take(page, "login-code-sent");
    let code = stack.service.wait_code(seen, "login");
    type_in(page, "#code", &code);
    do_click(page, "#btn-confirm");
    wait_step(page, stack, "done", STEP);
    assert_eq!(text(page, "#welcome-name"), expect_name);
    shots.take(page, "logged-in");
}

/// The only stored binding.
fn only_binding(stack: &Stack) -> Value {
    let bindings = stack.service.bindings();
    assert_eq!(bindings.len(), 1, "{bindings:?}");
    bindings.into_iter().next().unwrap()
}

fn citizen_flow(test: &str, cc1: bool, contact: &str, canonical: &str, email: bool) {
    let _guard = serial();
    let Some(stack) = citizen_stack(cc1, StackOptions::default()) else {
        return;
    };
    let mut shots = Shots::new(test);
    let mut page = stack.browser();

    enrol_until_mobile_key(&mut page, &stack, &mut shots);
    assert!(stack.service.bindings().is_empty(), "nothing stored yet");
    register_mobile_key(&mut page, &stack, &mut shots, contact, email);

    // The binding: the identity from the certificate, the contact, no PIN in the listing.
    let binding = only_binding(&stack);
    assert_eq!(
        binding_field(&binding, "identity_key"),
        &format!("pt-cc:PNOPT-{CIVIL_ID}"),
        "{binding}"
    );
    assert_eq!(binding_field(&binding, "identity_kind"), "citizen-card");
    assert_eq!(
        binding_field(&binding, "display_name"),
        "MARTA INÊS SEQUEIRA TESTE"
    );
    assert_eq!(binding_field(&binding, "contact"), canonical, "{binding}");
    assert_eq!(binding_field(&binding, "status"), "active");
    assert!(
        binding_field(&binding, "enrolled_by").is_null(),
        "{binding}"
    );
    assert!(binding_field(&binding, "pin_hash").is_null(), "{binding}");
    assert!(!binding.to_string().contains(MOBILE_PIN), "{binding}");

    // One dialog in all: the card PIN, for the service's origin (allowed: no consent dialog).
    let prompts = stack.agent.prompts();
    assert_eq!(prompts.len(), 1, "{prompts:?}");
    assert!(
        prompts[0]["desc"]
            .as_str()
            .unwrap_or_default()
            .contains(&stack.service.origin),
        "{prompts:?}"
    );

    login(
        &mut page,
        &stack,
        &mut shots,
        contact,
        "MARTA INÊS SEQUEIRA TESTE",
    );
    let binding = only_binding(&stack);
    assert!(
        !binding_field(&binding, "last_login_at").is_null(),
        "{binding}"
    );
    assert_clean_console(&mut page);
}

#[test]
fn citizen_enrols_with_cc1_and_logs_in_with_the_mobile_key() {
    citizen_flow("citizen_cc1", true, "912 345 678", "+351912345678", false);
}

#[test]
fn citizen_enrols_with_cc2_and_logs_in_with_the_mobile_key() {
    citizen_flow(
        "citizen_cc2",
        false,
        "Marta.Teste@Example.ORG",
        "Marta.Teste@example.org",
        true,
    );
}

/// Desk: the operator logs in and reads the passport (CAN); the page says what is wrong.
fn desk_read(page: &mut Page, stack: &Stack, shots: &mut Shots) {
    open(page, stack, "/desk", "operator-login");
    shots.take(page, "desk-start");
    type_in(page, "#operator", OPERATOR);
    type_in(page, "#password", OPERATOR_PASSWORD);
    do_click(page, "#btn-operator-login");
    wait_step(page, stack, "document", STEP);
    type_in(page, "#can", PASSPORT_CAN);
    shots.take(page, "document-can");
    do_click(page, "#btn-read-document");
}

#[test]
fn desk_operator_enrols_a_passport_holder() {
    let _guard = serial();
    let Some(stack) = passport_stack(Profile::Pace) else {
        return;
    };
    let mut shots = Shots::new("desk_passport");
    let mut page = stack.browser();

    // A wrong operator password first.
    open(&mut page, &stack, "/desk", "operator-login");
    type_in(&mut page, "#operator", OPERATOR);
    type_in(&mut page, "#password", "wrong password");
    do_click(&mut page, "#btn-operator-login");
    wait_error(&mut page, &stack, "operator-login-failed", STEP);
    shots.take(&mut page, "operator-refused");

    desk_read(&mut page, &stack, &mut shots);
    wait_step(&mut page, &stack, "mobile-key", CARD_STEP);
    // The identity from the verified DG1 of `emrtd-pace`.
    let name = text(&mut page, "#identity-name");
    assert!(name.contains("SILVA") && name.contains("JOAO"), "{name:?}");
    assert_eq!(text(&mut page, "#identity-number"), "IDP000017");
    assert_eq!(text(&mut page, "#identity-nationality"), "UTO");
    // The validation library writes the MRZ date as a full date (the contract said YYMMDD).
    let birth = text(&mut page, "#identity-birth");
    assert!(
        ["1988-02-14", "880214"].contains(&birth.as_str()),
        "{birth:?}"
    );
    shots.take(&mut page, "document-read");
    assert!(stack.service.bindings().is_empty());

    register_mobile_key(&mut page, &stack, &mut shots, "+351 913 000 017", false);
    let binding = only_binding(&stack);
    assert_eq!(
        binding_field(&binding, "identity_key"),
        "passport:UTO:IDP000017",
        "{binding}"
    );
    assert_eq!(binding_field(&binding, "identity_kind"), "passport");
    assert_eq!(binding_field(&binding, "enrolled_by"), OPERATOR);
    assert_eq!(binding_field(&binding, "contact"), "+351913000017");

    // The next citizen: the operator stays logged in.
    do_click(&mut page, "#btn-next-citizen");
    wait_step(&mut page, &stack, "document", STEP);
    shots.take(&mut page, "next-citizen");

    // The passport holder logs in with the mobile key alone.
    login(&mut page, &stack, &mut shots, "+351913000017", &name);
    assert_clean_console(&mut page);
}

/// A faulty passport is refused with `code` and a message containing `words`; nothing stored.
fn desk_refuses(test: &str, profile: Profile, code: &str, words: &str) {
    let _guard = serial();
    let Some(stack) = passport_stack(profile) else {
        return;
    };
    let mut shots = Shots::new(test);
    let mut page = stack.browser();
    desk_read(&mut page, &stack, &mut shots);
    let error = wait_error(&mut page, &stack, code, CARD_STEP);
    let message = error["text"].as_str().unwrap().to_lowercase();
    assert!(message.contains(words), "{error}");
    assert_eq!(
        state(&mut page)["step"],
        "document",
        "stays on the document"
    );
    shots.take(&mut page, "refused");
    assert!(stack.service.bindings().is_empty(), "nothing stored");
}

#[test]
fn desk_refuses_a_cloned_chip() {
    desk_refuses("desk_clone", Profile::Clone, "aa-invalid", "copy");
}

#[test]
fn desk_refuses_a_tampered_data_group() {
    desk_refuses(
        "desk_bad_dg_hash",
        Profile::BadDgHash,
        "data-group-hash",
        "altered",
    );
}

#[test]
fn wrong_card_pin_shows_the_tries_left_and_the_right_pin_then_works() {
    let _guard = serial();
    let Some(stack) = citizen_stack(false, StackOptions::default()) else {
        return;
    };
    let mut shots = Shots::new("wrong_card_pin");
    let mut page = stack.browser();
    open(&mut page, &stack, "/enrol", "read-card");
    do_click(&mut page, "#btn-read-card");
    wait_step(&mut page, &stack, "authenticate", CARD_STEP);

    stack.agent.answer(&["pin 9999"]);
    do_click(&mut page, "#btn-authenticate");
    let error = wait_error(&mut page, &stack, "wrong-pin", CARD_STEP);
    assert_eq!(error["retriesLeft"], "2", "{error}");
    assert!(
        error["text"]
            .as_str()
            .unwrap()
            .contains("Wrong PIN. 2 tries left."),
        "{error}"
    );
    assert_eq!(state(&mut page)["step"], "authenticate");
    shots.take(&mut page, "wrong-pin");
    assert!(stack.service.bindings().is_empty(), "nothing stored");

    stack.agent.answer(&[&format!("pin {CARD_PIN}")]);
    do_click(&mut page, "#btn-authenticate");
    wait_step(&mut page, &stack, "mobile-key", CARD_STEP);
    assert_eq!(
        state(&mut page)["error"],
        Value::Null,
        "the error line is cleared"
    );
    shots.take(&mut page, "right-pin");
    assert_eq!(stack.agent.prompts().len(), 2);
    assert!(stack.service.bindings().is_empty(), "nothing stored yet");
}

#[test]
fn card_removed_during_authentication_is_reported_and_nothing_is_stored() {
    let _guard = serial();
    let Some(mut stack) = citizen_stack(false, StackOptions::default()) else {
        return;
    };
    let mut shots = Shots::new("card_removed");
    let mut page = stack.browser();
    open(&mut page, &stack, "/enrol", "read-card");
    do_click(&mut page, "#btn-read-card");
    wait_step(&mut page, &stack, "authenticate", CARD_STEP);

    // The card leaves the reader in the middle of the authentication (after its first APDU).
    stack.agent.answer(&[&format!("pin {CARD_PIN}")]);
    stack.rig.remove_after_apdus(1);
    do_click(&mut page, "#btn-authenticate");
    wait_error(&mut page, &stack, "card-removed", CARD_STEP);
    assert_eq!(state(&mut page)["step"], "authenticate");
    shots.take(&mut page, "card-removed");
    assert!(stack.service.bindings().is_empty(), "nothing stored");

    // Back in the reader, the same step works.
    stack.rig.remove();
    stack.rig.insert();
    wait_for_agent_card(&stack.agent);
    stack.agent.answer(&[&format!("pin {CARD_PIN}")]);
    do_click(&mut page, "#btn-authenticate");
    wait_step(&mut page, &stack, "mobile-key", CARD_STEP);
    shots.take(&mut page, "card-back");
    assert!(stack.service.bindings().is_empty(), "nothing stored yet");
}

#[test]
fn wrong_codes_are_counted_and_repeated_login_failures_suspend_the_mobile_key() {
    let _guard = serial();
    let options = StackOptions {
        service: eid_tests::enrolment::EnrolmentOptions {
            max_failures: Some(3),
            ..Default::default()
        },
        ..StackOptions::default()
    };
    let Some(stack) = citizen_stack(false, options) else {
        return;
    };
    let mut shots = Shots::new("wrong_code_and_suspension");
    let mut page = stack.browser();
    let contact = "+351912000111";

    // Enrolment: a wrong one-time code (attempts left shown, nothing stored), then the right one.
    enrol_until_mobile_key(&mut page, &stack, &mut shots);
    type_in(&mut page, "#contact", contact);
    type_in(&mut page, "#pin", MOBILE_PIN);
    type_in(&mut page, "#pin-repeat", MOBILE_PIN);
    let seen = stack.service.outbox_entries().len();
    do_click(&mut page, "#btn-register");
    wait_step(&mut page, &stack, "confirm", STEP);
    let code = stack.service.wait_code(seen, "enrolment");
    let wrong = if code == "000000" { "000001" } else { "000000" };
    type_in(&mut page, "#code", wrong);
    do_click(&mut page, "#btn-confirm");
    let error = wait_error(&mut page, &stack, "code-wrong", STEP);
    assert_eq!(error["attemptsLeft"], "2", "{error}");
    assert_eq!(state(&mut page)["step"], "confirm");
    shots.take(&mut page, "enrol-wrong-code");
    assert!(stack.service.bindings().is_empty(), "nothing stored");
    type_in(&mut page, "#code", &code);
    do_click(&mut page, "#btn-confirm");
    wait_step(&mut page, &stack, "done", STEP);
    assert_eq!(only_binding(&stack)["status"], "active");

    // Login: the right PIN, a wrong code (one of the 3 failures before suspension).
    open(&mut page, &stack, "/login", "credentials");
    type_in(&mut page, "#contact", contact);
    type_in(&mut page, "#pin", MOBILE_PIN);
    let seen = stack.service.outbox_entries().len();
    do_click(&mut page, "#btn-login");
    wait_step(&mut page, &stack, "code", STEP);
    let code = stack.service.wait_code(seen, "login");
    let wrong = if code == "000000" { "000001" } else { "000000" };
    type_in(&mut page, "#code", wrong);
    do_click(&mut page, "#btn-confirm");
    let error = wait_error(&mut page, &stack, "code-wrong", STEP);
    assert_eq!(error["attemptsLeft"], "2", "{error}");
    shots.take(&mut page, "login-wrong-code");

    // A wrong PIN: one failure left.
    open(&mut page, &stack, "/login", "credentials");
    type_in(&mut page, "#contact", contact);
    type_in(&mut page, "#pin", "9071");
    do_click(&mut page, "#btn-login");
    let error = wait_error(&mut page, &stack, "login-failed", STEP);
    assert_eq!(error["attemptsLeft"], "1", "{error}");
    shots.take(&mut page, "login-wrong-pin");

    // The third failure reaches the limit.
    type_in(&mut page, "#contact", contact);
    type_in(&mut page, "#pin", "9072");
    do_click(&mut page, "#btn-login");
    page.wait_for(
        "document.querySelector('main').getAttribute('aria-busy') === 'false' && !document.getElementById('error').hidden",
        STEP,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let third = state(&mut page);
    assert!(
        ["suspended", "login-failed"].contains(&third["error"]["code"].as_str().unwrap_or("")),
        "{third}"
    );

    // Now even the right PIN is refused: the key is suspended (re-enrolment recovers it).
    type_in(&mut page, "#contact", contact);
    type_in(&mut page, "#pin", MOBILE_PIN);
    let seen = stack.service.outbox_entries().len();
    do_click(&mut page, "#btn-login");
    wait_error(&mut page, &stack, "suspended", STEP);
    shots.take(&mut page, "suspended");
    assert_eq!(
        stack.service.outbox_entries().len(),
        seen,
        "no code sent to a suspended key"
    );
    let binding = only_binding(&stack);
    assert_eq!(binding_field(&binding, "status"), "suspended", "{binding}");
    assert_clean_console(&mut page);
}
