//! The whole path as a citizen's browser takes it: headless Chromium opens a relying party's
//! page (`https://rp.example.test:PORT`, served by [`PageServer`]), the page calls the real
//! `eid-agent run` through `web/eid-bridge.js`, the agent talks to a virtual CC2 behind the real
//! pcscd (vpcd) and asks the scripted pinentry (the user) for consent and the PIN, the page
//! posts the outcome to its server, and the server validates the token with
//! `eid_protocols::webeid::TokenValidator`.
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
use std::time::{Duration, Instant};

use eid_protocols::webeid::TokenValidator;
use eid_tests::agent::{Agent, AgentOptions};
use eid_tests::browser::{Browser, BrowserOptions, PageServer, browser_available, spki_pin_of_pem};
use eid_tests::https::Request;
use eid_tests::{PcscRig, Rig as _};

const AGENT: &str = env!("CARGO_BIN_EXE_eid-agent");
const RP_HOST: &str = "rp.example.test";
const OTHER_HOST: &str = "other.example.test";
/// The virtual CC2's authentication PIN.
const AUTH_PIN: &str = "1111";

static SERIAL: Mutex<()> = Mutex::new(());

struct Setup {
    agent: Agent,
    pages: PageServer,
    /// The card issuer's root and authentication sub-CA (the relying party's trust anchors:
    /// the token carries the user's certificate only).
    anchors_pem: Vec<u8>,
    /// The card's authentication certificate, to compare the validated subject with.
    auth_cert: openssl::x509::X509,
    rig: PcscRig,
    _guard: MutexGuard<'static, ()>,
}

/// A CC2 behind pcscd, the page server, and an agent whose administrator allows `allowed`
/// (hosts of the page server); `None` (skip) without pcscd or Chromium.
fn setup(allowed: &[&str]) -> Option<Setup> {
    let guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !browser_available() {
        return None;
    }
    let card = eid_hardware_mocks::pteid::cc2::cc2_default().unwrap();
    let mut anchors_pem = card.pki.root.to_pem().unwrap();
    anchors_pem.extend(card.pki.auth_sub_ca.to_pem().unwrap());
    let auth_cert = card.pki.auth_cert.clone();
    let Some(rig) = PcscRig::new(card.card) else {
        eprintln!("SKIPPED: pcscd with vpcd is not running");
        return None;
    };
    let pages = PageServer::start(&[RP_HOST, OTHER_HOST]);
    let options = AgentOptions {
        allow: allowed.iter().map(|h| pages.origin(h)).collect(),
        ..AgentOptions::default()
    };
    let agent = Agent::start(AGENT.as_ref(), &options);
    wait_for_card(&agent);
    Some(Setup {
        agent,
        pages,
        anchors_pem,
        auth_cert,
        rig,
        _guard: guard,
    })
}

/// Waits until the agent's reader table shows a recognised card.
fn wait_for_card(agent: &Agent) {
    let client = agent.client();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = client.send(&Request::get("/v1/status")).unwrap().json();
        let ready = status["readers"]
            .as_array()
            .is_some_and(|rs| rs.iter().any(|r| !r["card"].is_null()));
        if ready {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no card seen: {status}\n{}",
            agent.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Opens the test page on `host` doing `action` against the agent; the browser trusts the
/// agent's leaf and the page server's certificate by their SPKI pins only.
fn open_page(s: &Setup, host: &str, action: &str) -> Browser {
    let leaf = std::fs::read_to_string(s.agent.dir.join("config/tls/localhost.pem"))
        .expect("the agent's leaf certificate");
    let url = s.pages.url(
        host,
        &format!(
            "/?action={action}&bridge=https://127.0.0.1:{}",
            s.agent.port
        ),
    );
    let options = BrowserOptions::default()
        .pin(spki_pin_of_pem(&leaf))
        .pin(s.pages.spki_pin())
        .map_host(RP_HOST, "127.0.0.1")
        .map_host(OTHER_HOST, "127.0.0.1");
    Browser::open(&url, &options).expect("Chromium was found a moment ago")
}

fn common_name(cert: &openssl::x509::X509) -> String {
    let entry = cert
        .subject_name()
        .entries_by_nid(openssl::nid::Nid::COMMONNAME)
        .next()
        .unwrap();
    // A UTF8String in this test PKI: its bytes are the text.
    String::from_utf8(entry.data().as_slice().to_vec()).unwrap()
}

#[test]
fn chromium_page_authenticates_through_eid_bridge_js_and_the_server_validates_the_token() {
    let Some(s) = setup(&[RP_HOST]) else { return };
    s.agent.answer(&[&format!("pin {AUTH_PIN}")]);
    let mut browser = open_page(&s, RP_HOST, "authenticate");
    let result = s
        .pages
        .expect_result(&mut browser, Duration::from_secs(120));
    let body = &result.body;
    assert_eq!(
        body["ok"],
        true,
        "{body}\nagent log:\n{}\nbrowser log:\n{}",
        s.agent.log(),
        browser.log_tail(40)
    );
    let rp_origin = s.pages.origin(RP_HOST);
    assert_eq!(
        result.origin.as_deref(),
        Some(rp_origin.as_str()),
        "posted from the page"
    );

    // The relying party's side: the nonce it issued, spent once, and the token validated for
    // its own origin against the card issuer's CAs.
    let nonce = body["nonce"].as_str().unwrap();
    let token = serde_json::to_vec(&body["result"]).unwrap();
    let validator = TokenValidator::new(&rp_origin)
        .unwrap()
        .with_trust_anchors(&s.anchors_pem)
        .unwrap();
    let user = validator
        .validate_with_store(&token, nonce, s.pages.nonces())
        .unwrap_or_else(|e| panic!("{} ({e}): {body}", e.code()));
    assert_eq!(
        user.subject.common_name.as_deref(),
        Some(common_name(&s.auth_cert).as_str())
    );
    assert!(
        user.subject
            .serial_number
            .as_deref()
            .unwrap_or("")
            .starts_with("PNOPT-"),
        "{user:?}"
    );
    assert_eq!(user.certificate, s.auth_cert.to_der().unwrap());
    // Single use: the same token and nonce do not log in twice.
    let again = validator.validate_with_store(&token, nonce, s.pages.nonces());
    assert_eq!(again.map(|_| ()).unwrap_err().code(), "nonce-reused");
    // Bound to the origin: another site cannot replay it.
    let elsewhere = TokenValidator::new(&s.pages.origin(OTHER_HOST))
        .unwrap()
        .with_trust_anchors(&s.anchors_pem)
        .unwrap()
        .validate(&token, nonce);
    assert!(elsewhere.is_err(), "token accepted for another origin");

    // The user saw one PIN dialog naming the page's origin (allowed by the administrator:
    // no consent dialog), and the PIN appears nowhere in the agent's log.
    let prompts = s.agent.prompts();
    assert_eq!(prompts.len(), 1, "{prompts:?}");
    assert!(
        prompts[0]["desc"].as_str().unwrap().contains(&rp_origin),
        "{prompts:?}"
    );
    assert!(!s.agent.log().contains(AUTH_PIN), "PIN in the agent's log");
}

#[test]
fn chromium_page_from_a_site_the_user_refuses_gets_user_cancelled_error() {
    let Some(s) = setup(&[RP_HOST]) else { return };
    // The consent dialog: the user presses Cancel (deny).
    s.agent.answer(&["cancel"]);
    let mut browser = open_page(&s, OTHER_HOST, "authenticate");
    let result = s
        .pages
        .expect_result(&mut browser, Duration::from_secs(120));
    let body = &result.body;
    assert_eq!(body["ok"], false, "{body}");
    assert_eq!(
        body["error"]["name"],
        "UserCancelledError",
        "{body}\n{}",
        s.agent.log()
    );
    assert_eq!(body["error"]["code"], "consent-denied", "{body}");
    assert_eq!(body["error"]["status"], 403, "{body}");

    // One dialog, the consent question for the other site; no PIN was asked.
    let prompts = s.agent.prompts();
    assert_eq!(prompts.len(), 1, "{prompts:?}");
    assert_eq!(prompts[0]["cmd"], "CONFIRM", "{prompts:?}");
    let other_origin = s.pages.origin(OTHER_HOST);
    assert!(
        prompts[0]["desc"].as_str().unwrap().contains(&other_origin),
        "{prompts:?}"
    );
}

/// The next event the events page posted whose type is `kind` (earlier others are skipped).
fn next_event(s: &Setup, browser: &mut Browser, kind: &str) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let result = s.pages.expect_result(browser, Duration::from_secs(30));
        assert_eq!(result.body["ok"], true, "{}", result.body);
        if result.body["event"]["type"] == kind {
            return result.body["event"]["data"].clone();
        }
    }
    panic!("no {kind} event\n{}", browser.log_tail(40));
}

#[test]
fn chromium_page_follows_card_events_through_fetch_streaming() {
    let Some(mut s) = setup(&[RP_HOST]) else {
        return;
    };
    let reader = s.rig.reader_name();
    let mut browser = open_page(&s, RP_HOST, "events");

    // First the status, with the card (the site is allowed, so it sees the readers).
    let status = next_event(&s, &mut browser, "status");
    assert_eq!(status["origin"]["allowed"], true, "{status}");
    let ours = status["readers"]
        .as_array()
        .and_then(|rs| rs.iter().find(|r| r["name"] == reader.as_str()))
        .unwrap_or_else(|| panic!("{reader} missing: {status}"));
    assert_eq!(ours["card"]["id"], "pteid-cc2", "{status}");

    // Then what happens to the card, as it happens, over the same stream.
    s.rig.remove();
    let removed = next_event(&s, &mut browser, "card-removed");
    assert_eq!(removed["reader"], reader.as_str(), "{removed}");
    s.rig.insert();
    let inserted = next_event(&s, &mut browser, "card-inserted");
    assert_eq!(inserted["reader"], reader.as_str(), "{inserted}");
    assert_eq!(inserted["card"]["id"], "pteid-cc2", "{inserted}");
    assert!(s.agent.prompts().is_empty(), "events need no dialog");
}
