//! The service desk in kiosk mode (issue 9), end to end: headless Chromium on the enrolment
//! service's desk page, the page calling the real `eid-agent run --kiosk` (a policy whose
//! `[kiosk]` table names the desk and the service's origin) through `web/eid-bridge.js`, virtual
//! passports behind the real pcscd (vpcd), and the stored bindings read with
//! `eid-enrolment bindings list`.
//!
//! What it shows: the desk enrolment flow runs in kiosk mode (no consent dialog, the result bound
//! to the document's card session); when a citizen's document leaves the reader the agent ends
//! its session, the page gets `session-ended` and resets the citizen part (the verified identity
//! and the face photo leave the DOM, the service's desk session forgets the identity) while the
//! operator stays signed in; the old session reads nothing of the next document; the next
//! citizen enrols on the same page; a document left idle past the agent's timeout is cleared the
//! same way, with its own reason. Checks are on the DOM's text and attributes, the service's
//! API and stored bindings, and the agent's API: no screenshot comparison (the PNGs under
//! `target/test-artifacts/enrolment/<test>/` are for people).
//!
//! Skips without pcscd + vpcd or without Chromium (unless `EID_REQUIRE_PCSCD=1` /
//! `EID_REQUIRE_BROWSER=1`). The tests share the vpcd slots and each agent sees every reader:
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
use eid_hardware_mocks::vpcd::VpcdCard;
use eid_tests::browser::browser_available;
use eid_tests::cdp::Page;
use eid_tests::enrolment::pages::{self, do_click, text, type_in};
use eid_tests::enrolment::{
    Shots, Stack, StackOptions, binding_field, wait_for_agent_card, write_csca,
    write_unrelated_root,
};
use eid_tests::https::Request;
use serde_json::{Value, json};

/// The desk's name in the agent's kiosk policy (and its audit log).
const DESK: &str = "loja-teste-01";
const OPERATOR: &str = "desk";
const OPERATOR_PASSWORD: &str = "correct horse battery staple";
/// The mobile-key PIN the citizens choose.
const MOBILE_PIN: &str = "4826";
/// A well-formed challenge nonce (32 bytes, base64) for direct calls to the agent.
const NONCE: &str = "mUyzGkUmuNNaWjkgOp8WK6aXbCbzGvDPDBfbmC2vJ7Y=";

/// A chip read (PACE, passive and active authentication) may take this long in a debug build.
const CARD_STEP: Duration = Duration::from_secs(120);
/// A plain request to the service, or the page reacting to an event.
const STEP: Duration = Duration::from_secs(30);

/// The first citizen: `emrtd-pace` (SILVA JOAO PEDRO, IDP000017, CAN 123456).
const FIRST: Profile = Profile::Pace;
/// The second citizen: `emrtd-bac` (ERIKSSON ANNA MARIA, L898902C3, BAC with the MRZ data).
const SECOND: Profile = Profile::Bac;

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// The passport stack with the agent in kiosk mode for the service's origin, and an operator.
/// `None` (skip) without Chromium or pcscd.
fn kiosk_stack(idle_timeout_secs: Option<u64>) -> Option<Stack> {
    if !browser_available() {
        return None;
    }
    let card = profile::card(FIRST).unwrap();
    let options = StackOptions {
        kiosk_desk: Some(DESK.into()),
        kiosk_idle_timeout_secs: idle_timeout_secs,
        ..StackOptions::default()
    };
    let stack = Stack::start(card, &options, |dir| {
        // The service needs Citizen Card anchors too; the desk flow does not use them.
        (
            vec![write_unrelated_root(dir, "card-trust.pem")],
            vec![write_csca(dir)],
        )
    })?;
    stack.service.add_operator(OPERATOR, OPERATOR_PASSWORD);
    Some(stack)
}

/// What the page shows: step, busy, error line, notice, the agent problem line, operator.
fn state(page: &mut Page) -> Value {
    page.eval(
        "(() => { const shown = (id) => { const e = document.getElementById(id);
                    return e && !e.hidden ? { code: e.dataset.code ?? null, text: e.textContent.trim() } : null; };
           return { step: document.querySelector('section[data-step]:not([hidden])')?.dataset.step ?? null,
                    busy: document.querySelector('main')?.getAttribute('aria-busy') ?? null,
                    error: shown('error'), notice: shown('notice'), agentProblem: shown('agent-problem'),
                    operator: document.getElementById('operator-bar').hidden ? null
                      : document.getElementById('operator-name').textContent }; })()",
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

/// Waits until the page is idle on `step`; fails at once when it shows an error instead.
fn wait_step(page: &mut Page, stack: &Stack, step: &str, limit: Duration) {
    pages::wait_step(page, stack, step, limit, state);
}

/// The agent's `/v1/status` as the desk page sees it (its origin: sessions are shown).
fn agent_status(stack: &Stack) -> Value {
    let response = stack
        .agent
        .client()
        .send(&Request::get("/v1/status").origin(&stack.service.origin))
        .unwrap_or_else(|e| panic!("GET /v1/status: {e}"));
    assert_eq!(response.status, 200, "{}", response.text());
    response.json()
}

/// The session of the card in the stack's reader, once the agent has one (30 s at most).
fn current_session(stack: &Stack) -> String {
    let reader = stack.rig.reader_name();
    let deadline = std::time::Instant::now() + STEP;
    loop {
        let status = agent_status(stack);
        let session = status["readers"]
            .as_array()
            .and_then(|rs| rs.iter().find(|r| r["name"] == reader.as_str()))
            .and_then(|r| r["session"].as_str())
            .map(str::to_owned);
        if let Some(session) = session {
            assert_eq!(session.len(), 32, "128 random bits in hex: {status}");
            return session;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no session for {reader}: {status}\n{}",
            stack.diagnostics()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Takes the document off the reader (vpcd closes the slot) and waits until pcscd sees it gone.
fn remove_document(stack: &mut Stack) {
    use eid_tests::Rig as _;
    stack.rig.remove();
}

/// Places another document on the same reader: the slot's virtual card is replaced.
fn place_document(stack: &mut Stack, profile: Profile) {
    let addr = stack.rig.vpcd().addr();
    let handle =
        VpcdCard::attach(addr, profile::card(profile).unwrap()).expect("vpcd takes the card");
    // The old handle (its card already removed) is dropped here.
    *stack.rig.vpcd() = handle;
    eid_tests::wait_for_card(stack.rig.context(), &stack.rig.reader_name(), true);
    wait_for_agent_card(&stack.agent);
}

/// The operator signs in on `/desk`.
fn operator_signs_in(page: &mut Page, stack: &Stack) {
    page.navigate(&stack.service.url("/desk"))
        .unwrap_or_else(|e| panic!("{e}\n{}", stack.diagnostics()));
    wait_step(page, stack, "operator-login", STEP);
    type_in(page, "#operator", OPERATOR);
    type_in(page, "#password", OPERATOR_PASSWORD);
    do_click(page, "#btn-operator-login");
    wait_step(page, stack, "document", STEP);
}

/// Reads the document on the reader with its CAN, or its MRZ data when it has no CAN; the
/// verified identity and photo are shown.
fn read_document(page: &mut Page, stack: &Stack, profile: Profile) {
    let document = profile.document();
    if let Some(can) = document.can {
        type_in(page, "#can", can);
    } else {
        type_in(page, "#mrz-document-number", document.document_number);
        type_in(page, "#mrz-birth", document.date_of_birth);
        type_in(page, "#mrz-expiry", document.date_of_expiry);
    }
    do_click(page, "#btn-read-document");
    wait_step(page, stack, "mobile-key", CARD_STEP);
    let name = text(page, "#identity-name");
    let given = document.given_names.split(' ').next().unwrap();
    assert!(
        name.contains(document.surname) && name.contains(given),
        "{name:?}"
    );
    assert_eq!(text(page, "#identity-number"), document.document_number);
    let photo = page
        .eval(
            "(() => { const p = document.getElementById('identity-photo');
                return !p.hidden && p.complete && p.naturalWidth > 0 && p.src.startsWith('data:image/png;base64,'); })()",
        )
        .unwrap();
    assert_eq!(photo, true, "the face photo from the chip is shown");
}

/// The citizen registers the mobile key and confirms it with the code from the outbox.
///
/// The operator's session spans citizens: the service detaches the previous citizen's code when
/// the desk moves on (`/api/desk/next`), so the next citizen's code is sent at once, not held
/// back by the previous one's resend interval.
fn register(page: &mut Page, stack: &Stack, contact: &str) {
    type_in(page, "#contact", contact);
    type_in(page, "#pin", MOBILE_PIN);
    type_in(page, "#pin-repeat", MOBILE_PIN);
    let seen = stack.service.outbox_entries().len();
    do_click(page, "#btn-register");
    let settled = "(() => { const m = document.querySelector('main');
        if (!m || m.getAttribute('aria-busy') !== 'false') return null;
        const e = document.getElementById('error');
        if (e && !e.hidden) return e.dataset.code ?? 'error';
        return document.querySelector('section[data-step]:not([hidden])')?.dataset.step === 'confirm' ? 'ok' : null; })()";
    let outcome = page
        .wait_for(settled, STEP)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", state(page), stack.diagnostics()));
    assert_eq!(outcome, "ok", "{}\n{}", state(page), stack.diagnostics());
    let code = stack.service.wait_code(seen, "enrolment");
    type_in(page, "#code", &code);
    do_click(page, "#btn-confirm");
    wait_step(page, stack, "done", STEP);
}

/// Waits until the page went back to "place the document" because the citizen's session ended,
/// then checks that nothing of `profile`'s citizen is left in the page.
fn assert_reset(page: &mut Page, stack: &Stack, profile: Profile, words: &str) {
    let predicate = "(() => { const n = document.getElementById('notice');
        const step = document.querySelector('section[data-step]:not([hidden])')?.dataset.step;
        return step === 'document' && n && !n.hidden && n.textContent.includes('cleared'); })()";
    if let Err(e) = page.wait_for(predicate, STEP) {
        panic!(
            "the page did not reset: {}\n{e}\n{}",
            state(page),
            stack.diagnostics()
        );
    }
    let shown = state(page);
    assert_eq!(
        shown["operator"], OPERATOR,
        "the operator stays signed in: {shown}"
    );
    assert_eq!(shown["error"], Value::Null, "{shown}");
    let notice = shown["notice"]["text"].as_str().unwrap();
    assert!(
        notice.contains(words),
        "the reason in plain words: {notice:?}"
    );

    let document = profile.document();
    let left = page
        .eval(
            "(() => ({
                fields: ['identity-name', 'identity-number', 'identity-country', 'identity-nationality',
                         'identity-birth', 'code-sent-to', 'done-name', 'done-contact']
                  .map((id) => document.getElementById(id).textContent).join(''),
                inputs: ['can', 'mrz-document-number', 'mrz-birth', 'mrz-expiry', 'contact', 'pin', 'pin-repeat', 'code']
                  .map((id) => document.getElementById(id).value).join(''),
                photoHidden: document.getElementById('identity-photo').hidden,
                photoSrc: document.getElementById('identity-photo').getAttribute('src'),
                html: document.body.innerHTML,
              }))()",
        )
        .unwrap();
    assert_eq!(left["fields"], "", "identity fields emptied: {left}");
    assert_eq!(left["inputs"], "", "inputs emptied: {left}");
    assert_eq!(left["photoHidden"], true, "{left}");
    assert_eq!(
        left["photoSrc"],
        Value::Null,
        "the photo's data is gone: {left}"
    );
    let html = left["html"].as_str().unwrap();
    for needle in [document.surname, document.document_number, "data:image/png"] {
        assert!(!html.contains(needle), "{needle} is still in the page");
    }

    // The service's desk session forgot the identity: registering a key now is refused.
    let refused = page
        .eval(
            "fetch('/api/enrol/mobile-key', { method: 'POST', credentials: 'same-origin',
                headers: { 'Content-Type': 'application/json' },
                body: JSON.stringify({ contact: '+351910000000', pin: '4826', pinRepeat: '4826' }) })
              .then(async (r) => ({ status: r.status, body: await r.json() }))",
        )
        .unwrap();
    assert_eq!(
        refused["body"]["error"]["code"], "no-identity",
        "the service still holds the citizen: {refused}"
    );
}

#[test]
fn kiosk_desk_enrols_two_citizens_and_forgets_each_when_the_document_leaves() {
    let _guard = serial();
    let Some(mut stack) = kiosk_stack(None) else {
        return;
    };
    let mut shots = Shots::new("kiosk_desk");
    let mut page = stack.browser();

    // The agent is in kiosk mode for this desk, and the document on the reader is a session.
    let status = agent_status(&stack);
    assert_eq!(status["kiosk"]["desk"], DESK, "{status}");
    let first_session = current_session(&stack);

    // First citizen, end to end: no consent dialog (the desk's origin is pre-approved).
    operator_signs_in(&mut page, &stack);
    shots.take(&mut page, "operator-signed-in");
    read_document(&mut page, &stack, FIRST);
    shots.take(&mut page, "first-read");
    register(&mut page, &stack, "+351 913 000 017");
    shots.take(&mut page, "first-enrolled");
    let bindings = stack.service.bindings();
    assert_eq!(bindings.len(), 1, "{bindings:?}");
    assert_eq!(
        binding_field(&bindings[0], "identity_key"),
        "passport:UTO:IDP000017"
    );
    assert_eq!(binding_field(&bindings[0], "enrolled_by"), OPERATOR);
    assert!(stack.agent.prompts().is_empty(), "no dialog in kiosk mode");

    // The document leaves the reader: the page resets by itself (no click), operator signed in.
    remove_document(&mut stack);
    assert_reset(&mut page, &stack, FIRST, "taken off the reader");
    shots.take(&mut page, "first-removed");

    // The second citizen's document on the same reader: a new session; the first one reads
    // nothing of it.
    place_document(&mut stack, SECOND);
    let second_session = current_session(&stack);
    let second = SECOND.document();
    assert_ne!(second_session, first_session);
    let stale = stack
        .agent
        .client()
        .send(
            &Request::post("/v1/emrtd/read")
                .origin(&stack.service.origin)
                .json(&json!({
                    "mrz": format!("{} {} {}", second.document_number, second.date_of_birth, second.date_of_expiry),
                    "challengeNonce": NONCE,
                    "session": first_session,
                })),
        )
        .unwrap();
    assert_eq!(stale.status, 409, "{}", stale.text());
    let code = stale.error_code().unwrap_or_default();
    assert!(
        ["card-removed", "session-ended"].contains(&code.as_str()),
        "{}",
        stale.text()
    );

    // Read, then the document is lifted before the key is registered: the photo and identity
    // shown leave the page at once.
    read_document(&mut page, &stack, SECOND);
    shots.take(&mut page, "second-read");
    remove_document(&mut stack);
    assert_reset(&mut page, &stack, SECOND, "taken off the reader");
    shots.take(&mut page, "second-removed");

    // Back on the reader: read again and enrol.
    place_document(&mut stack, SECOND);
    read_document(&mut page, &stack, SECOND);
    register(&mut page, &stack, "anna.eriksson@example.org");
    shots.take(&mut page, "second-enrolled");
    let bindings = stack.service.bindings();
    assert_eq!(bindings.len(), 2, "{bindings:?}");
    let key = format!("passport:UTO:{}", second.document_number);
    let second = bindings
        .iter()
        .find(|b| binding_field(b, "identity_key") == key.as_str())
        .unwrap_or_else(|| panic!("no binding for the second citizen: {bindings:?}"));
    assert_eq!(
        binding_field(second, "contact"),
        "anna.eriksson@example.org"
    );
    assert_eq!(binding_field(second, "enrolled_by"), OPERATOR);
    assert!(stack.agent.prompts().is_empty(), "no dialog in kiosk mode");

    // The page had no CSP violation, no uncaught exception, no agent problem.
    let _ = page.pump_events();
    let bad: Vec<&String> = page
        .console()
        .iter()
        .filter(|l| l.contains("Content Security Policy") || l.starts_with("exception:"))
        .collect();
    assert!(bad.is_empty(), "page problems: {bad:?}");
    assert_eq!(state(&mut page)["agentProblem"], Value::Null);
}

#[test]
fn kiosk_desk_clears_a_citizen_left_idle_past_the_agents_timeout() {
    // Long enough for the read to start after the document is placed, even on a slow machine.
    const IDLE_SECS: u64 = 10;
    let _guard = serial();
    let Some(mut stack) = kiosk_stack(Some(IDLE_SECS)) else {
        return;
    };
    let mut shots = Shots::new("kiosk_desk_idle");
    let mut page = stack.browser();
    operator_signs_in(&mut page, &stack);
    // A fresh presence, so the idle time counts from now.
    remove_document(&mut stack);
    place_document(&mut stack, FIRST);
    read_document(&mut page, &stack, FIRST);
    shots.take(&mut page, "read");

    // Nobody touches anything: the agent ends the session after its idle timeout, and the page
    // clears the citizen and says why.
    assert_reset(&mut page, &stack, FIRST, "too long");
    shots.take(&mut page, "idle-cleared");
    assert!(stack.service.bindings().is_empty(), "nothing stored");
}
