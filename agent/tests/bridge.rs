//! The bridge over real TLS, as websites reach it: the `eid-agent run` binary, its own local CA,
//! a virtual Citizen Card behind the real pcscd (vpcd), and the scripted pinentry program in
//! the role of the user. Each test names what it proves.
//!
//! The tests of this file share the two vpcd slots and the agent sees every reader: they run
//! one at a time (`serial()`).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use eid_protocols::webeid::TokenValidator;
use eid_tests::PcscRig;
use eid_tests::agent::{Agent, AgentOptions};
use eid_tests::https::{Request, Response};
use serde_json::json;

const AGENT: &str = env!("CARGO_BIN_EXE_eid-agent");
const RP: &str = "https://rp.example";
const OTHER: &str = "https://other.example";
const NONCE: &str = "c7mD6hB9L3Zxq2o4yWm0n8pVt1sR5uEaKbJdFgHiQwE=";

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Fields drop in order: the agent stops, then the card leaves the reader, and only then may
/// the next test (waiting on the lock) put its card in: an agent never sees two test cards.
struct Setup {
    agent: Agent,
    rig: PcscRig,
    root_pem: Vec<u8>,
    _guard: MutexGuard<'static, ()>,
}

/// A virtual card (CC2 unless `cc1`) behind pcscd and an agent; `None` without pcscd.
fn setup(cc1: bool, options: AgentOptions) -> Option<Setup> {
    let guard = serial();
    let card = if cc1 {
        eid_hardware_mocks::pteid::cc1::cc1_default()
    } else {
        eid_hardware_mocks::pteid::cc2::cc2_default()
    }
    .unwrap();
    // The relying party trusts the issuing CA of authentication certificates (and its root),
    // as Web eID deployments configure theirs.
    let mut root_pem = card.pki.root.to_pem().unwrap();
    root_pem.extend(card.pki.auth_sub_ca.to_pem().unwrap());
    let rig = PcscRig::new(card.card)?;
    let agent = Agent::start(AGENT.as_ref(), &options);
    wait_for_card(&agent);
    Some(Setup {
        _guard: guard,
        rig,
        root_pem,
        agent,
    })
}

fn allow_rp() -> AgentOptions {
    AgentOptions {
        allow: vec![RP.into()],
        deny: vec!["https://denied.example".into()],
        agent_toml: "pin_rate_burst = 100\npin_rate_period_secs = 1\n".into(),
        ..AgentOptions::default()
    }
}

/// Waits until the agent's reader table shows a recognised card.
fn wait_for_card(agent: &Agent) {
    let client = agent.client();
    let deadline = Instant::now() + Duration::from_secs(20);
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

fn post(path: &str, origin: &str, body: serde_json::Value) -> Request {
    Request::post(path).origin(origin).json(&body)
}

/// `POST /v1/authenticate` from `origin` with the test nonce.
fn authenticate(client: &eid_tests::https::HttpsClient, origin: &str) -> Response {
    client
        .send(&post(
            "/v1/authenticate",
            origin,
            json!({ "challengeNonce": NONCE }),
        ))
        .unwrap()
}

/// Waits (bounded) until the agent has opened its first dialog.
fn wait_for_dialog(agent: &Agent) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while agent.prompts().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn code(response: &Response) -> String {
    response
        .error_code()
        .unwrap_or_else(|| panic!("no error code: {} {}", response.status, response.text()))
}

fn validator(setup: &Setup, origin: &str) -> TokenValidator {
    TokenValidator::new(origin)
        .unwrap()
        .with_trust_anchors(&setup.root_pem)
        .unwrap()
}

macro_rules! setup_or_skip {
    ($cc1:expr, $options:expr) => {
        match setup($cc1, $options) {
            Some(s) => s,
            None => {
                eprintln!("skipped: pcscd with vpcd is not running");
                return;
            }
        }
    };
}

#[test]
fn allowed_origin_authenticates_and_the_token_validates() {
    for cc1 in [false, true] {
        // Everything logged, down to each APDU.
        let options = AgentOptions {
            // (TLS and HTTP internals stay at info: rustls dumps certificates in hex.)
            log_filter: Some("trace,rustls=info,hyper=info,h2=info,warp=info".into()),
            ..allow_rp()
        };
        let s = setup_or_skip!(cc1, options);
        s.agent.answer(&["pin 1111"]);
        let client = s.agent.client();
        let response = authenticate(&client, RP);
        assert_eq!(
            response.status,
            200,
            "{}\n{}",
            response.text(),
            s.agent.log()
        );
        assert_eq!(response.header("access-control-allow-origin"), Some(RP));
        let token = response.body.clone();
        let value = response.json();
        assert_eq!(value["format"], "web-eid:1.0");
        assert_eq!(value["algorithm"], if cc1 { "RS256" } else { "ES256" });

        let validated = validator(&s, RP).validate(&token, NONCE).unwrap();
        assert!(
            validated
                .subject
                .serial_number
                .as_deref()
                .unwrap_or("")
                .starts_with("PNOPT-"),
            "{validated:?}"
        );

        // The same token fails for another origin, another nonce, another trust anchor, and
        // with one signature byte changed.
        let other_origin = validator(&s, OTHER).validate(&token, NONCE);
        assert!(other_origin.is_err(), "token accepted for another origin");
        let other_nonce =
            validator(&s, RP).validate(&token, "AAAAc7mD6hB9L3Zxq2o4yWm0n8pVt1sR5uEaKbJdFgHi");
        assert!(other_nonce.is_err(), "token accepted for another nonce");
        let stranger = stranger_root_pem();
        let untrusted = TokenValidator::new(RP)
            .unwrap()
            .with_trust_anchors(&stranger)
            .unwrap()
            .validate(&token, NONCE);
        assert!(untrusted.is_err(), "token accepted under a foreign anchor");
        let mut signature = B64.decode(value["signature"].as_str().unwrap()).unwrap();
        signature[5] ^= 0x01;
        let mut tampered = value.clone();
        tampered["signature"] = json!(B64.encode(&signature));
        let tampered = serde_json::to_vec(&tampered).unwrap();
        assert!(validator(&s, RP).validate(&tampered, NONCE).is_err());

        // The dialog showed the origin, the holder and the tries left; the PIN went nowhere else.
        let prompts = s.agent.prompts();
        assert_eq!(prompts.len(), 1, "{prompts:?}");
        let desc = prompts[0]["desc"].as_str().unwrap();
        assert!(desc.contains(RP), "{desc}");
        assert!(desc.contains('3'), "tries left shown: {desc}");
        let log = s.agent.log();
        assert!(log.contains("apdu"), "trace logs APDUs");
        assert!(!contains_number(&log, "1111"), "PIN in the log");
        for block in ["31313131FFFFFFFF", "31313131ffffffff", "31 31 31 31 FF"] {
            assert!(!log.contains(block), "PIN block in the log ({block})");
        }
    }
}

#[test]
fn refused_requests_get_their_documented_codes_and_no_cors() {
    let s = setup_or_skip!(false, allow_rp());
    let client = s.agent.client();
    let nonce = json!({ "challengeNonce": NONCE });
    let cases: Vec<(&str, Request, u16, &str)> = vec![
        (
            "no Origin",
            Request::post("/v1/authenticate").json(&nonce),
            403,
            "origin-missing",
        ),
        (
            "Host evil.example (DNS rebinding)",
            post("/v1/authenticate", RP, nonce.clone()).host("evil.example"),
            421,
            "host-not-allowed",
        ),
        (
            "Host with another port",
            post("/v1/authenticate", RP, nonce.clone()).host("127.0.0.1:1"),
            421,
            "host-not-allowed",
        ),
        (
            "http origin",
            post("/v1/authenticate", "http://rp.example", nonce.clone()),
            403,
            "origin-insecure",
        ),
        (
            "http loopback origin without --dev",
            post("/v1/authenticate", "http://localhost:8080", nonce.clone()),
            403,
            "origin-insecure",
        ),
        (
            "opaque origin",
            post("/v1/authenticate", "null", nonce.clone()),
            403,
            "origin-invalid",
        ),
        (
            "origin on the deny list",
            post("/v1/authenticate", "https://denied.example", nonce.clone()),
            403,
            "origin-denied",
        ),
        (
            "cross-site text/plain POST (no preflight)",
            Request::post("/v1/authenticate")
                .origin(OTHER)
                .body(nonce.to_string(), "text/plain"),
            415,
            "unsupported-media-type",
        ),
        (
            "form POST",
            Request::post("/v1/authenticate")
                .origin(RP)
                .body("challengeNonce=x", "application/x-www-form-urlencoded"),
            415,
            "unsupported-media-type",
        ),
        (
            "malformed JSON",
            Request::post("/v1/authenticate")
                .origin(RP)
                .body("{\"challengeNonce\": ", "application/json"),
            400,
            "bad-request",
        ),
        (
            "unknown field",
            post(
                "/v1/authenticate",
                RP,
                json!({ "challengeNonce": NONCE, "pin": "1111" }),
            ),
            400,
            "bad-request",
        ),
        (
            "short nonce",
            post(
                "/v1/authenticate",
                RP,
                json!({ "challengeNonce": "c2hvcnQ=" }),
            ),
            400,
            "nonce-invalid",
        ),
        (
            "43-character nonce",
            post(
                "/v1/authenticate",
                RP,
                json!({ "challengeNonce": &NONCE[..43] }),
            ),
            400,
            "nonce-invalid",
        ),
        (
            "unknown endpoint",
            Request::get("/v1/nothing").origin(RP),
            404,
            "not-found",
        ),
    ];
    for (what, request, status, expected) in cases {
        let response = client.send(&request).unwrap();
        assert_eq!(response.status, status, "{what}: {}", response.text());
        assert_eq!(code(&response), expected, "{what}");
        let body = response.json();
        assert!(
            !body["error"]["remedy"].as_str().unwrap_or("").is_empty(),
            "{what}: no remedy"
        );
        let cors = response.header_all("access-control-allow-origin");
        assert!(!cors.contains(&"*"), "{what}: CORS *");
        let origin_ok = matches!(
            expected,
            "unsupported-media-type"
                | "body-too-large"
                | "bad-request"
                | "nonce-invalid"
                | "not-found"
        );
        if origin_ok {
            let origin = request_origin(what);
            assert_eq!(
                cors,
                vec![origin],
                "{what}: CORS must echo exactly the page's origin"
            );
        } else {
            assert!(
                cors.is_empty(),
                "{what}: a refused origin got CORS headers {cors:?}"
            );
        }
    }
    // An oversized body is refused from its Content-Length, before the agent reads it: send
    // the headers and only the body's start, as a slow client would.
    let mut conn = client.connect();
    let head = format!(
        "POST /v1/authenticate HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nOrigin: {RP}\r\nContent-Type: application/json\r\nContent-Length: 70000\r\n\r\n{{\"challengeNonce\": \"",
        s.agent.port
    );
    conn.write_raw(head.as_bytes()).unwrap();
    let response = conn.read_response().unwrap();
    assert_eq!(response.status, 413, "{}", response.text());
    assert_eq!(code(&response), "body-too-large");
    assert_eq!(response.header("access-control-allow-origin"), Some(RP));
    // None of these reached the card or a dialog.
    assert!(s.agent.prompts().is_empty(), "{:?}", s.agent.prompts());
}

fn request_origin(what: &str) -> &'static str {
    if what.starts_with("cross-site") {
        OTHER
    } else {
        RP
    }
}

#[test]
fn preflight_answers_exact_origin_and_private_network_access() {
    let s = setup_or_skip!(false, allow_rp());
    let client = s.agent.client();
    let response = client
        .send(
            &Request::options("/v1/authenticate")
                .origin(OTHER)
                .header("access-control-request-method", "POST")
                .header("access-control-request-headers", "content-type")
                .header("access-control-request-private-network", "true"),
        )
        .unwrap();
    assert_eq!(response.status, 204, "{}", response.text());
    assert_eq!(response.header("access-control-allow-origin"), Some(OTHER));
    assert_eq!(
        response.header("access-control-allow-private-network"),
        Some("true")
    );
    assert_eq!(
        response.header("access-control-allow-methods"),
        Some("GET, POST")
    );
    assert!(response.header("vary").unwrap_or("").contains("Origin"));
    // A preflight for a header the API does not use is refused.
    let refused = client
        .send(
            &Request::options("/v1/authenticate")
                .origin(OTHER)
                .header("access-control-request-method", "POST")
                .header("access-control-request-headers", "x-pin"),
        )
        .unwrap();
    assert_ne!(refused.status, 204);
    // The deny list applies to preflights too.
    let denied = client
        .send(
            &Request::options("/v1/authenticate")
                .origin("https://denied.example")
                .header("access-control-request-method", "POST"),
        )
        .unwrap();
    assert_eq!(code(&denied), "origin-denied");
    assert!(denied.header("access-control-allow-origin").is_none());
}

#[test]
fn status_shows_readers_only_to_allowed_sites_and_events_stream() {
    let mut s = setup_or_skip!(false, allow_rp());
    let client = s.agent.client();
    let stranger = client
        .send(&Request::get("/v1/status").origin(OTHER))
        .unwrap()
        .json();
    assert_eq!(stranger["origin"]["allowed"], false);
    assert!(stranger["readers"].is_null(), "{stranger}");
    assert!(stranger["smartCardService"].is_null(), "{stranger}");
    let allowed = client.send(&Request::get("/v1/status").origin(RP)).unwrap();
    assert_eq!(allowed.header("access-control-allow-origin"), Some(RP));
    let allowed = allowed.json();
    assert_eq!(allowed["origin"]["allowed"], true);
    let card = allowed["readers"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|r| r["card"].as_object().cloned())
        .unwrap();
    assert_eq!(card["id"], "pteid-cc2");

    // Events: refused to strangers, streamed to allowed sites.
    let refused = client
        .send(&Request::get("/v1/events").origin(OTHER))
        .unwrap();
    assert_eq!(code(&refused), "consent-required");
    let mut events = client
        .connect()
        .open_events(&Request::get("/v1/events").origin(RP))
        .unwrap();
    let (name, _) = events.next_event(Duration::from_secs(5)).unwrap();
    assert_eq!(name, "status");
    s.rig.vpcd().remove();
    let mut seen = Vec::new();
    while let Some((name, data)) = events.next_event(Duration::from_secs(10)) {
        seen.push(name.clone());
        if name == "card-removed" {
            assert!(data.contains("Virtual PCD"), "{data}");
            break;
        }
    }
    assert!(seen.contains(&"card-removed".to_string()), "{seen:?}");
    s.rig.vpcd().insert().unwrap();
    let mut inserted = None;
    while let Some((name, data)) = events.next_event(Duration::from_secs(10)) {
        if name == "card-inserted" {
            inserted = Some(data);
            break;
        }
    }
    let inserted: serde_json::Value =
        serde_json::from_str(&inserted.expect("card-inserted")).unwrap();
    assert_eq!(inserted["card"]["id"], "pteid-cc2");
}

#[test]
fn consent_is_asked_once_remembered_only_when_chosen_and_denial_is_reported() {
    let s = setup_or_skip!(false, allow_rp());
    let client = s.agent.client();
    let certificate = json!({ "type": "authentication" });
    // 1. The user denies a site; for a while that site gets no new dialog (a page cannot wear
    //    the user down with one dialog after another).
    const THIRD: &str = "https://third.example";
    s.agent.answer(&["cancel", "ok", "ok"]);
    // (The two "ok" would allow the site if the agent asked again.)
    for _ in 0..2 {
        let denied = client
            .send(&post("/v1/certificate", THIRD, certificate.clone()))
            .unwrap();
        assert_eq!(code(&denied), "consent-denied", "{}", denied.text());
    }
    assert_eq!(
        s.agent.prompts().len(),
        1,
        "asked again right after a denial"
    );
    // 2. Allowed, "only this time": the next request asks again; then "always allow".
    s.agent.answer(&["ok", "cancel", "ok", "ok"]);
    let once = client
        .send(&post("/v1/certificate", OTHER, certificate.clone()))
        .unwrap();
    assert_eq!(once.status, 200, "{}", once.text());
    // 3. "Always allow this site": remembered, so the third request asks nothing.
    let always = client
        .send(&post("/v1/certificate", OTHER, certificate.clone()))
        .unwrap();
    assert_eq!(always.status, 200, "{}", always.text());
    let third = client
        .send(&post("/v1/certificate", OTHER, certificate.clone()))
        .unwrap();
    assert_eq!(third.status, 200, "{}", third.text());
    let prompts = s.agent.prompts();
    // Deny (1 question), once (2), always (2), then nothing for the remembered site.
    assert_eq!(prompts.len(), 5, "{prompts:?}");
    for (i, p) in prompts.iter().enumerate() {
        assert_eq!(p["cmd"], "CONFIRM");
        let site = if i == 0 { THIRD } else { OTHER };
        assert!(p["desc"].as_str().unwrap().contains(site), "{p}");
    }
    let cert = B64
        .decode(third.json()["certificate"].as_str().unwrap())
        .unwrap();
    assert!(openssl::x509::X509::from_der(&cert).is_ok());
    assert!(third.json()["supportedSignatureAlgorithms"][0]["cryptoAlgorithm"] == "ECC");
    // The remembered site is listed by `eid-agent sites list` and can be revoked.
    let config_dir = s.agent.dir.join("config");
    let list = std::process::Command::new(AGENT)
        .args(["sites", "list", "--json", "--config-dir"])
        .arg(&config_dir)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&list.stdout).contains(OTHER),
        "{list:?}"
    );
    let revoke = std::process::Command::new(AGENT)
        .args(["sites", "revoke", OTHER, "--config-dir"])
        .arg(&config_dir)
        .output()
        .unwrap();
    assert!(revoke.status.success(), "{revoke:?}");
    s.agent.answer(&["cancel"]);
    let after = client
        .send(&post("/v1/certificate", OTHER, certificate))
        .unwrap();
    assert_eq!(code(&after), "consent-denied", "revoked site asked again");
}

#[test]
fn wrong_pin_reports_retries_left_and_is_not_retried() {
    let s = setup_or_skip!(false, allow_rp());
    let client = s.agent.client();
    s.agent.answer(&["pin 9999"]);
    let wrong = authenticate(&client, RP);
    assert_eq!(code(&wrong), "wrong-pin", "{}", wrong.text());
    assert_eq!(wrong.json()["error"]["retriesLeft"], 2);
    assert_eq!(
        s.agent.prompts().len(),
        1,
        "the agent asked again by itself"
    );
    // The next dialog says 2 tries are left; the right PIN then works and resets the counter.
    s.agent.answer(&["pin 1111"]);
    let ok = authenticate(&client, RP);
    assert_eq!(ok.status, 200, "{}", ok.text());
    let prompts = s.agent.prompts();
    assert!(
        prompts[1]["desc"].as_str().unwrap().contains('2'),
        "{prompts:?}"
    );
}

#[test]
fn user_cancel_gives_the_cancel_code() {
    let s = setup_or_skip!(false, allow_rp());
    s.agent.answer(&["cancel"]);
    let response = authenticate(&s.agent.client(), RP);
    assert_eq!(code(&response), "user-cancelled", "{}", response.text());
    assert_eq!(response.header("access-control-allow-origin"), Some(RP));
}

#[test]
fn card_removed_during_authenticate_gives_card_removed_and_costs_no_pin_try() {
    let mut s = setup_or_skip!(false, allow_rp());
    s.agent.answer(&["pin 1111 delay=1500"]);
    let client = s.agent.client();
    let request = std::thread::spawn(move || authenticate(&client, RP));
    // Pull the card while the PIN dialog is open.
    wait_for_dialog(&s.agent);
    s.rig.vpcd().remove();
    let response = request.join().unwrap();
    assert_eq!(code(&response), "card-removed", "{}", response.text());
    // Back in the reader, the card still has 3 tries: the PIN never reached it.
    s.rig.vpcd().insert().unwrap();
    wait_for_card(&s.agent);
    s.agent.answer(&["pin 1111"]);
    let again = authenticate(&s.agent.client(), RP);
    assert_eq!(again.status, 200, "{}", again.text());
    let prompts = s.agent.prompts();
    assert!(
        prompts.last().unwrap()["desc"]
            .as_str()
            .unwrap()
            .contains('3'),
        "{prompts:?}"
    );
}

#[test]
fn twenty_concurrent_requests_from_two_origins_are_serialized() {
    let mut options = allow_rp();
    options.allow.push(OTHER.into());
    let s = setup_or_skip!(false, options);
    // Each dialog stays open 150 ms: overlapping operations would open dialogs closer together.
    let answers: Vec<&str> = std::iter::repeat_n("pin 1111 delay=150", 20).collect();
    s.agent.answer(&answers);
    let mut threads = Vec::new();
    for i in 0..20 {
        let client = s.agent.client();
        let origin = if i % 2 == 0 { RP } else { OTHER };
        threads.push(std::thread::spawn(move || {
            let response = authenticate(&client, origin);
            (origin, response)
        }));
    }
    let mut ok = 0;
    for t in threads {
        let (origin, response) = t.join().unwrap();
        if response.status == 200 {
            validator(&s, origin)
                .validate(&response.body, NONCE)
                .unwrap();
            ok += 1;
        } else {
            let c = code(&response);
            assert!(
                ["queue-full", "queue-timeout", "rate-limited"].contains(&c.as_str()),
                "unclean failure {c}: {}",
                response.text()
            );
        }
    }
    assert!(ok >= 2, "only {ok} succeeded");
    // The dialogs never overlapped: one card operation at a time, so each dialog opened at
    // least the 150 ms the previous one stayed open after it.
    let mut starts: Vec<u64> = s
        .agent
        .prompts()
        .iter()
        .map(|p| p["start_ms"].as_u64().unwrap())
        .collect();
    assert_eq!(starts.len(), ok, "one dialog per successful request");
    starts.sort_unstable();
    for pair in starts.windows(2) {
        assert!(pair[1] - pair[0] >= 150, "dialogs overlapped: {pair:?}");
    }
}

#[test]
fn a_client_that_disconnects_cancels_its_queued_work() {
    let s = setup_or_skip!(false, allow_rp());
    s.agent.answer(&["pin 1111 delay=1500", "pin 1111"]);
    let client = s.agent.client();
    let first = {
        let client = client.clone();
        std::thread::spawn(move || authenticate(&client, RP))
    };
    wait_for_dialog(&s.agent);
    // A second request, queued behind the first; its client goes away at once.
    let mut conn = client.connect();
    let body = json!({ "challengeNonce": NONCE }).to_string();
    let raw = format!(
        "POST /v1/authenticate HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nOrigin: {RP}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        s.agent.port,
        body.len()
    );
    conn.write_raw(raw.as_bytes()).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    drop(conn);
    assert_eq!(first.join().unwrap().status, 200);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        s.agent.prompts().len(),
        1,
        "the abandoned request still asked for a PIN: {:?}",
        s.agent.prompts()
    );
}

#[test]
fn sign_checks_the_certificate_and_returns_a_verifiable_signature() {
    let s = setup_or_skip!(false, allow_rp());
    let client = s.agent.client();
    let certificate = client
        .send(&post("/v1/certificate", RP, json!({ "type": "signing" })))
        .unwrap()
        .json()["certificate"]
        .as_str()
        .unwrap()
        .to_owned();
    let digest = openssl::sha::sha256(b"the document");
    s.agent.answer(&["pin 2222"]);
    let response = client
        .send(&post(
            "/v1/sign",
            RP,
            json!({ "certificate": certificate, "hash": B64.encode(digest), "hashFunction": "SHA-256" }),
        ))
        .unwrap();
    assert_eq!(response.status, 200, "{}", response.text());
    let value = response.json();
    assert_eq!(value["signatureAlgorithm"]["cryptoAlgorithm"], "ECC");
    let raw = B64.decode(value["signature"].as_str().unwrap()).unwrap();
    assert_eq!(raw.len(), 64);
    let x509 = openssl::x509::X509::from_der(&B64.decode(&certificate).unwrap()).unwrap();
    let key = x509.public_key().unwrap().ec_key().unwrap();
    let r = openssl::bn::BigNum::from_slice(&raw[..32]).unwrap();
    let sv = openssl::bn::BigNum::from_slice(&raw[32..]).unwrap();
    let sig = openssl::ecdsa::EcdsaSig::from_private_components(r, sv).unwrap();
    assert!(
        sig.verify(&digest, &key).unwrap(),
        "signature does not verify"
    );
    // Another certificate: refused before any PIN dialog.
    let other_cert = B64.encode(s.root_pem.clone());
    let mismatch = client
        .send(&post(
            "/v1/sign",
            RP,
            json!({ "certificate": other_cert, "hash": B64.encode(digest), "hashFunction": "SHA-256" }),
        ))
        .unwrap();
    assert_eq!(code(&mismatch), "certificate-mismatch");
    // SHA-1 is refused.
    let sha1 = client
        .send(&post(
            "/v1/sign",
            RP,
            json!({ "certificate": certificate, "hash": B64.encode([0u8; 20]), "hashFunction": "SHA-1" }),
        ))
        .unwrap();
    assert_eq!(code(&sha1), "bad-request");
    assert_eq!(s.agent.prompts().len(), 1);
}

#[test]
fn identity_returns_chosen_fields_photo_and_sod_result() {
    let s = setup_or_skip!(true, allow_rp());
    let response = s
        .agent
        .client()
        .send(&post(
            "/v1/identity",
            RP,
            json!({ "fields": ["surname", "givenNames", "civilianId"], "photo": true }),
        ))
        .unwrap();
    assert_eq!(response.status, 200, "{}", response.text());
    let value = response.json();
    let identity = value["identity"].as_object().unwrap();
    assert_eq!(identity.len(), 3, "{identity:?}");
    assert!(!identity["surname"].as_str().unwrap().is_empty());
    let png = B64.decode(value["photo"].as_str().unwrap()).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    assert_eq!(value["sod"]["integrity"]["result"], "passed", "{value}");
    assert!(value["address"].is_null());
    // Address: asks the address PIN.
    s.agent.answer(&["pin 3333"]);
    let with_address = s
        .agent
        .client()
        .send(&post(
            "/v1/identity",
            RP,
            json!({ "fields": ["surname"], "address": true }),
        ))
        .unwrap();
    assert_eq!(with_address.status, 200, "{}", with_address.text());
    assert!(with_address.json()["address"].is_object());
    assert!(
        s.agent.prompts()[0]["desc"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("address")
    );
}

#[test]
fn openapi_document_is_served_and_sigterm_stops_the_agent() {
    let s = setup_or_skip!(false, allow_rp());
    let response = s
        .agent
        .client()
        .send(&Request::get("/v1/openapi.json"))
        .unwrap();
    assert_eq!(response.status, 200);
    let served = response.json();
    let file: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../docs/bridge-openapi.json"
        ))
        .unwrap(),
    )
    .unwrap();
    assert_eq!(served, file);
    let Setup { agent, .. } = s;
    let status = agent
        .terminate(Duration::from_secs(10))
        .expect("stopped in time");
    assert!(status.success(), "{status}");
}

/// A CA that signed nothing of the card's.
fn stranger_root_pem() -> Vec<u8> {
    use eid_hardware_mocks::pki::{KeySpec, generate_key, self_signed_ca};
    let key = generate_key(KeySpec::Ec(eid_hardware_mocks::pki::Curve::P256)).unwrap();
    self_signed_ca(&[("CN", "Stranger root")], key, 365)
        .unwrap()
        .cert
        .to_pem()
        .unwrap()
}

/// A virtual eMRTD behind pcscd and an agent allowing `RP`; `None` without pcscd.
fn setup_emrtd(profile: eid_hardware_mocks::emrtd::profile::Profile) -> Option<Setup> {
    let guard = serial();
    let card = eid_hardware_mocks::emrtd::build(profile.name())
        .unwrap()
        .unwrap();
    let rig = PcscRig::new(card)?;
    let agent = Agent::start(AGENT.as_ref(), &allow_rp());
    wait_for_card(&agent);
    Some(Setup {
        agent,
        rig,
        root_pem: Vec::new(),
        _guard: guard,
    })
}

fn csca_store() -> eid_protocols::pa::CscaStore {
    let mut store = eid_protocols::pa::CscaStore::new();
    let trust = eid_hardware_mocks::emrtd::trust::trust().unwrap();
    store
        .add_certificates(&trust.csca.cert_der().unwrap())
        .unwrap();
    store
}

#[test]
fn emrtd_read_result_reverifies_on_the_server_with_aa_bound_to_origin_and_nonce() {
    use eid_hardware_mocks::emrtd::profile::Profile;
    use eid_protocols::webeid::{EmrtdResult, EmrtdValidator};
    let Some(setup) = setup_emrtd(Profile::Pace) else {
        eprintln!("skipped: pcscd with vpcd is not running");
        return;
    };
    let agent = &setup.agent;
    let can = Profile::Pace.document().can.unwrap();
    let response = agent
        .client()
        .send(&post(
            "/v1/emrtd/read",
            RP,
            json!({ "can": can, "dataGroups": [1, 2], "challengeNonce": NONCE }),
        ))
        .unwrap();
    assert_eq!(response.status, 200, "{}\n{}", response.text(), agent.log());
    let result = EmrtdResult::parse(&response.body).unwrap();
    assert_eq!(result.format, "eid-emrtd:1.0");
    assert!(result.data_groups.contains_key("2"), "photo DG asked for");
    assert!(result.active_authentication.is_some());
    let now = time::OffsetDateTime::now_utc();
    let validator = EmrtdValidator::new(csca_store(), RP).unwrap();
    let document = validator.validate(&result, NONCE, now).unwrap();
    assert!(document.active_authentication);
    assert!(!document.expired, "the virtual document is valid");
    assert_eq!(
        document.document.document_number,
        Profile::Pace.document().document_number
    );
    // The chip's signature is bound to this site and this nonce.
    let other_site = EmrtdValidator::new(csca_store(), OTHER).unwrap();
    assert!(other_site.validate(&result, NONCE, now).is_err());
    let other_nonce = "AAAAc7mD6hB9L3Zxq2o4yWm0n8pVt1sR5uEaKbJdFgHi";
    assert!(validator.validate(&result, other_nonce, now).is_err());
    // The CAN never reaches the log.
    assert!(!agent.log().contains(can), "CAN in the log");
    // A wrong CAN: access-denied.
    let wrong = agent
        .client()
        .send(&post(
            "/v1/emrtd/read",
            RP,
            json!({ "can": "000000", "challengeNonce": NONCE }),
        ))
        .unwrap();
    assert_eq!(code(&wrong), "access-denied", "{}", wrong.text());
    // No CAN from the page: the agent asks for it in its own dialog.
    agent.answer(&[&format!("pin {can}")]);
    let asked = agent
        .client()
        .send(&post(
            "/v1/emrtd/read",
            RP,
            json!({ "challengeNonce": NONCE }),
        ))
        .unwrap();
    assert_eq!(asked.status, 200, "{}", asked.text());
    let prompts = agent.prompts();
    assert_eq!(prompts.len(), 1, "{prompts:?}");
    assert!(
        prompts[0]["desc"].as_str().unwrap().contains(RP),
        "{prompts:?}"
    );
    let result = EmrtdResult::parse(&asked.body).unwrap();
    assert!(validator.validate(&result, NONCE, now).is_ok());
}

#[test]
fn emrtd_clone_fails_active_authentication_on_the_server() {
    use eid_hardware_mocks::emrtd::profile::Profile;
    use eid_protocols::webeid::{EmrtdResult, EmrtdValidator};
    let Some(setup) = setup_emrtd(Profile::Clone) else {
        eprintln!("skipped: pcscd with vpcd is not running");
        return;
    };
    let agent = &setup.agent;
    let d = Profile::Clone.document();
    let mrz = format!(
        "{} {} {}",
        d.document_number, d.date_of_birth, d.date_of_expiry
    );
    let response = agent
        .client()
        .send(&post(
            "/v1/emrtd/read",
            RP,
            json!({ "mrz": mrz, "challengeNonce": NONCE }),
        ))
        .unwrap();
    assert_eq!(response.status, 200, "{}", response.text());
    let result = EmrtdResult::parse(&response.body).unwrap();
    assert!(
        matches!(
            result.checks.active,
            eid_protocols::webeid::AgentCheck::Failed { .. }
        ),
        "the agent's own check: {:?}",
        result.checks.active
    );
    let validator = EmrtdValidator::new(csca_store(), RP).unwrap();
    let refused = validator.validate(&result, NONCE, time::OffsetDateTime::now_utc());
    assert!(refused.is_err(), "a cloned chip passed: {refused:?}");
}

/// HTTP/2 (Chromium's choice over TLS) carries the host as `:authority`: checked the same way.
#[test]
fn http2_requests_pass_the_same_host_and_origin_checks() {
    let s = setup_or_skip!(false, allow_rp());
    let ca = s.agent.dir.join("config/tls/ca.pem");
    let url = format!("https://127.0.0.1:{}/v1/status", s.agent.port);
    let curl = |extra: &[&str]| {
        let out = std::process::Command::new("curl")
            .args(["-s", "--http2", "--cacert"])
            .arg(&ca)
            .args(["-w", "\n%{http_version} %{http_code}"])
            .args(extra)
            .arg(&url)
            .output()
            .expect("curl (scripts/setup.sh installs it)");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let ok = curl(&["-H", &format!("Origin: {RP}")]);
    assert!(ok.ends_with("2 200"), "{ok}");
    assert!(ok.contains("\"allowed\":true"), "{ok}");
    let rebinding = curl(&["-H", "Host: evil.example", "-H", &format!("Origin: {RP}")]);
    assert!(rebinding.ends_with("2 421"), "{rebinding}");
    assert!(rebinding.contains("host-not-allowed"), "{rebinding}");
}

/// pcscd stops under a running agent: card operations end in `pcscd-not-running`, the status
/// says the service is down, and once pcscd is back the same agent works again. Restarts the
/// machine's pcscd, so only with `EID_TEST_RESTART_PCSCD=1` (scripts/test.sh).
#[test]
fn pcscd_restart_gives_a_typed_error_and_the_agent_recovers() {
    if !eid_tests::restart::allowed() {
        return;
    }
    let mut s = setup_or_skip!(false, allow_rp());
    let client = s.agent.client();
    let certificate = json!({ "type": "authentication" });
    let _restart = eid_tests::restart::RestartOnDrop;
    eid_tests::restart::stop_pcscd();
    let down = client
        .send(&post("/v1/certificate", RP, certificate.clone()))
        .unwrap();
    assert_eq!(code(&down), "pcscd-not-running", "{}", down.text());
    assert_eq!(down.status, 503);
    let deadline = Instant::now() + Duration::from_secs(10);
    while client.send(&Request::get("/v1/status")).unwrap().json()["smartCardService"] != false {
        assert!(
            Instant::now() < deadline,
            "status still says the service runs"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    eid_tests::restart::start_pcscd();
    s.rig.after_pcscd_restart();
    wait_for_card(&s.agent);
    let up = client
        .send(&post("/v1/certificate", RP, certificate))
        .unwrap();
    assert_eq!(up.status, 200, "{}\n{}", up.text(), s.agent.log());
}

/// A Citizen Card on a contactless reader keeps its applications behind PACE-CAN, which the
/// bridge does not run for it yet: a clear `not-supported`, not a card error.
#[test]
fn contactless_citizen_card_is_reported_as_not_supported() {
    let guard = serial();
    let card = eid_hardware_mocks::emrtd::cc2::cc2_contactless_default().unwrap();
    let Some(rig) = PcscRig::new(card.card) else {
        eprintln!("skipped: pcscd with vpcd is not running");
        return;
    };
    let agent = Agent::start(AGENT.as_ref(), &allow_rp());
    wait_for_card(&agent);
    let s = Setup {
        agent,
        rig,
        root_pem: Vec::new(),
        _guard: guard,
    };
    let response = s
        .agent
        .client()
        .send(&post(
            "/v1/certificate",
            RP,
            json!({ "type": "authentication" }),
        ))
        .unwrap();
    assert_eq!(code(&response), "not-supported", "{}", response.text());
    assert!(
        response.text().contains("contact reader"),
        "{}",
        response.text()
    );
}

/// While the user types the PIN, the agent holds no PC/SC transaction: another program can use
/// the card meanwhile (and the transaction that follows checks it is still the same card).
#[test]
fn the_card_is_not_held_while_the_pin_dialog_is_open() {
    let s = setup_or_skip!(false, allow_rp());
    s.agent.answer(&["pin 1111 delay=3000"]);
    let client = s.agent.client();
    let request = std::thread::spawn(move || authenticate(&client, RP));
    wait_for_dialog(&s.agent);
    let started = Instant::now();
    let mut other = s.rig.connect_pcsc().unwrap();
    {
        let mut tx = eid_card::Transport::transaction(&mut other).unwrap();
        let answer = tx
            .transmit(&[0x00, 0xA4, 0x00, 0x0C, 0x02, 0x3F, 0x00])
            .unwrap();
        assert!(answer.len() >= 2);
    }
    let waited = started.elapsed();
    assert!(
        waited < Duration::from_millis(1500),
        "another program waited {waited:?} for the card while the dialog was open"
    );
    let response = request.join().unwrap();
    assert_eq!(response.status, 200, "{}", response.text());
}

/// Whether `text` holds `number` as a whole number (not inside a longer one, such as a
/// timestamp's digits).
fn contains_number(text: &str, number: &str) -> bool {
    text.match_indices(number).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + number.len()..].chars().next();
        !before.is_some_and(|c| c.is_ascii_digit()) && !after.is_some_and(|c| c.is_ascii_digit())
    })
}
