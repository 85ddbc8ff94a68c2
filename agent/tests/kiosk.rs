//! Kiosk mode (issue 9) as a desk meets it: the real `eid-agent run --kiosk`, its own policy
//! file with a `[kiosk]` table, virtual Citizen Cards behind the real pcscd (vpcd), and the
//! scripted pinentry in the role of whoever sits at the desk.
//!
//! Every test holds both vpcd slots ([`Slot::acquire_pair`]) for its whole life: the agent sees
//! every reader, so no other test's card may appear in it (and a test that wants the page to
//! choose the reader needs both anyway). Waits are bounded loops on real effects (the agent's
//! reader table, its event stream, pcscd's view of the slot), never sleeps that decide.

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
use eid_card::pcsc_transport::PcscContext;
use eid_hardware_mocks::engine::VirtualCard;
use eid_hardware_mocks::pteid::{Identity, PteidCard, PteidOptions};
use eid_hardware_mocks::vpcd::{VpcdCard, VpcdHandle};
use eid_tests::agent::{Agent, AgentOptions, KioskOptions};
use eid_tests::https::{EventStream, HttpsClient, Request, Response};
use eid_tests::{Slot, pcscd_available, wait_for_card};
use serde_json::{Value, json};

const AGENT: &str = env!("CARGO_BIN_EXE_eid-agent");
const DESK: &str = "https://desk.example";
const OTHER: &str = "https://other.example";
const NONCE: &str = "c7mD6hB9L3Zxq2o4yWm0n8pVt1sR5uEaKbJdFgHiQwE=";

static SERIAL: Mutex<()> = Mutex::new(());

/// A citizen: the card and what must never leak once the card has gone.
struct Citizen {
    /// The card, until it goes into a reader.
    card: Option<VirtualCard>,
    auth_b64: String,
    sign_b64: String,
    given: &'static str,
    surname: &'static str,
    civilian_id: &'static str,
    document_number: &'static str,
}

impl Citizen {
    fn new(
        given: &'static str,
        surname: &'static str,
        civilian_id: &'static str,
        document_number: &'static str,
        serial: &str,
    ) -> Citizen {
        let identity = Identity {
            given_name: given.into(),
            surname: surname.into(),
            civilian_id: civilian_id.into(),
            document_number: document_number.into(),
            card_serial: serial.into(),
            ..Identity::default()
        };
        let built: PteidCard = eid_hardware_mocks::pteid::cc2::cc2(&PteidOptions {
            identity,
            ..PteidOptions::default()
        })
        .unwrap();
        Citizen {
            auth_b64: B64.encode(built.pki.auth_cert.to_der().unwrap()),
            sign_b64: B64.encode(built.pki.sign_cert.to_der().unwrap()),
            card: Some(built.card),
            given,
            surname,
            civilian_id,
            document_number,
        }
    }

    fn first() -> Citizen {
        Citizen::new(
            "ANABELA",
            "PRIMEIRA CIDADA",
            "91111111",
            "91111111 1 ZZ1",
            "1111111111111111",
        )
    }

    fn second() -> Citizen {
        Citizen::new(
            "BERNARDO",
            "SEGUNDO CIDADAO",
            "92222222",
            "92222222 2 ZZ2",
            "2222222222222222",
        )
    }

    /// The citizen's authentication certificate, base64 DER, as the bridge returns it.
    fn auth_certificate_b64(&self) -> String {
        self.auth_b64.clone()
    }

    fn signing_certificate_b64(&self) -> String {
        self.sign_b64.clone()
    }

    /// Whether `text` carries anything of this citizen.
    fn found_in(&self, text: &str) -> Option<&'static str> {
        let auth = self.auth_certificate_b64();
        let sign = self.signing_certificate_b64();
        [
            self.given,
            self.surname,
            self.civilian_id,
            self.document_number,
        ]
        .into_iter()
        .find(|needle| text.contains(needle))
        .or_else(|| {
            text.contains(&auth[..60])
                .then_some("authentication certificate")
        })
        .or_else(|| text.contains(&sign[..60]).then_some("signing certificate"))
    }
}

/// Both slots, both empty, and a PC/SC context to watch them. `None` without pcscd.
struct Desk {
    slots: (Slot, Slot),
    context: PcscContext,
    _guard: MutexGuard<'static, ()>,
}

impl Desk {
    fn new() -> Option<Desk> {
        let guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        if !pcscd_available() {
            return None;
        }
        let slots = Slot::acquire_pair();
        let context = PcscContext::establish().unwrap();
        wait_for_card(&context, &slots.0.reader_name(), false);
        wait_for_card(&context, &slots.1.reader_name(), false);
        Some(Desk {
            slots,
            context,
            _guard: guard,
        })
    }

    fn reader(&self, i: u8) -> String {
        if i == 0 {
            self.slots.0.reader_name()
        } else {
            self.slots.1.reader_name()
        }
    }

    /// Puts the citizen's card in slot `i` and waits until pcscd has powered it.
    fn insert(&self, i: u8, citizen: &mut Citizen) -> VpcdHandle {
        let addr = if i == 0 {
            self.slots.0.addr()
        } else {
            self.slots.1.addr()
        };
        let card = citizen
            .card
            .take()
            .expect("the card is not in a reader yet");
        let handle = VpcdCard::attach(addr, card).unwrap();
        wait_for_card(&self.context, &self.reader(i), true);
        handle
    }

    /// The desk at the start of most tests: `citizen`'s card in slot 0 and the kiosk agent
    /// (`options`) running with a session for it. Returns the card, the agent and the session.
    fn open(&self, citizen: &mut Citizen, options: &AgentOptions) -> (VpcdHandle, Agent, String) {
        let card = self.insert(0, citizen);
        let agent = Agent::start(AGENT.as_ref(), options);
        let session = wait_for_session(&agent, &self.reader(0), None);
        (card, agent, session)
    }

    /// Pulls the card of `handle` out of slot `i` and waits until pcscd has seen it go.
    fn remove(&self, i: u8, handle: &mut VpcdHandle) {
        handle.remove();
        wait_for_card(&self.context, &self.reader(i), false);
    }
}

macro_rules! desk_or_skip {
    () => {
        match Desk::new() {
            Some(d) => d,
            None => {
                eprintln!("skipped: pcscd with vpcd is not running");
                return;
            }
        }
    };
}

fn kiosk(idle_timeout_secs: Option<u64>) -> AgentOptions {
    AgentOptions {
        // The other site is even on the administrator's allow list: kiosk mode still refuses it.
        allow: vec![OTHER.into()],
        agent_toml: "pin_rate_burst = 100\npin_rate_period_secs = 1\n".into(),
        kiosk: Some(KioskOptions {
            desk: "loja-teste-01".into(),
            origins: vec![DESK.into()],
            idle_timeout_secs,
            ..KioskOptions::default()
        }),
        ..AgentOptions::default()
    }
}

fn post(path: &str, origin: &str, body: Value) -> Request {
    Request::post(path).origin(origin).json(&body)
}

fn status(client: &HttpsClient) -> Value {
    client
        .send(&Request::get("/v1/status").origin(DESK))
        .unwrap()
        .json()
}

/// Waits until the agent shows a live session for a recognised card in `reader`, other than
/// `not`; returns its id.
fn wait_for_session(agent: &Agent, reader: &str, not: Option<&str>) -> String {
    let client = agent.client();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let status = status(&client);
        let session = status["readers"].as_array().and_then(|rs| {
            rs.iter()
                .find(|r| r["name"] == reader && !r["card"].is_null())
                .and_then(|r| r["session"].as_str().map(str::to_owned))
        });
        if let Some(s) = session
            && Some(s.as_str()) != not
        {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "no session in {reader}: {status}\n{}",
            agent.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The next event named `name` (others are collected into `seen`), within 20 s.
fn next_named(events: &mut EventStream, name: &str, seen: &mut Vec<(String, Value)>) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Some((event, data)) = events.next_event(Duration::from_secs(1)) {
            let data: Value = serde_json::from_str(&data).unwrap_or(Value::Null);
            seen.push((event.clone(), data.clone()));
            if event == name {
                return data;
            }
        }
    }
    panic!("no {name} event; seen {seen:?}");
}

fn code(response: &Response) -> String {
    response
        .error_code()
        .unwrap_or_else(|| panic!("no error code: {} {}", response.status, response.text()))
}

/// One request to every card endpoint, with `extra` fields merged into each body.
fn every_operation(citizen_for_sign: &Citizen, extra: &Value) -> Vec<(&'static str, Value)> {
    let digest = B64.encode([7u8; 32]);
    let mut bodies = vec![
        ("/v1/certificate", json!({ "type": "authentication" })),
        ("/v1/certificate", json!({ "type": "signing" })),
        ("/v1/identity", json!({ "photo": true })),
        ("/v1/authenticate", json!({ "challengeNonce": NONCE })),
        (
            "/v1/sign",
            json!({
                "certificate": citizen_for_sign.signing_certificate_b64(),
                "hash": digest,
                "hashFunction": "SHA-256",
            }),
        ),
        (
            "/v1/emrtd/read",
            json!({ "challengeNonce": NONCE, "can": "123456" }),
        ),
    ];
    for (_, body) in &mut bodies {
        if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
            for (k, v) in extra {
                body.insert(k.clone(), v.clone());
            }
        }
    }
    bodies
}

#[test]
fn refuses_to_start_without_the_kiosk_config() {
    let dir = std::env::temp_dir().join(format!("eid-kiosk-refuse-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let cases = [
        (
            "no [kiosk] section",
            "allow = []\n",
            true,
            "[kiosk] section",
        ),
        (
            "no desk",
            "[kiosk]\norigins = [\"https://desk.example\"]\n",
            true,
            "desk",
        ),
        ("no origin", "[kiosk]\ndesk = \"d1\"\n", true, "origin"),
        // enabled = true in the policy starts kiosk mode without --kiosk, and is checked too.
        (
            "enabled without origins",
            "[kiosk]\nenabled = true\ndesk = \"d1\"\n",
            false,
            "origin",
        ),
    ];
    for (what, policy, flag, words) in cases {
        let policy_file = dir.join("policy.toml");
        std::fs::write(&policy_file, policy).unwrap();
        let config_dir = dir.join(format!("config-{}", what.replace(' ', "-")));
        let mut command = std::process::Command::new(AGENT);
        command
            .args(["run", "--port", "0", "--listen", "127.0.0.1", "--no-tray"])
            .arg("--config-dir")
            .arg(&config_dir)
            .arg("--policy")
            .arg(&policy_file)
            .env("XDG_STATE_HOME", dir.join("state"));
        if flag {
            command.arg("--kiosk");
        }
        let out = eid_tests::cli::run_bounded(command, "", Duration::from_secs(30));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{what}: {stderr}");
        assert!(stderr.contains("code: kiosk-config"), "{what}: {stderr}");
        assert!(stderr.contains(words), "{what}: {stderr}");
        assert!(
            stderr.contains("what to do: Ask the administrator"),
            "{what}: {stderr}"
        );
        // Refused before anything was created: no TLS material, nothing listening.
        assert!(!config_dir.join("tls").exists(), "{what}: started half-way");
    }
    // The same in JSON, for scripts.
    std::fs::write(dir.join("policy.toml"), "").unwrap();
    let mut command = std::process::Command::new(AGENT);
    command
        .args(["run", "--kiosk", "--json", "--port", "0", "--no-tray"])
        .arg("--config-dir")
        .arg(dir.join("config-json"))
        .arg("--policy")
        .arg(dir.join("policy.toml"));
    let out = eid_tests::cli::run_bounded(command, "", Duration::from_secs(30));
    assert_eq!(out.status.code(), Some(2));
    let value = eid_tests::cli::json(&out);
    assert_eq!(value["error"]["code"], "kiosk-config", "{value}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn two_citizens_in_a_row_nothing_of_the_first_after_removal() {
    let desk = desk_or_skip!();
    let mut first = Citizen::first();
    let mut second = Citizen::second();
    let reader = desk.reader(0);
    let (mut card, agent, session_a) = desk.open(&mut first, &kiosk(None));
    let client = agent.client();
    assert_eq!(session_a.len(), 32, "128 bits in hex: {session_a}");
    let mut events = client
        .connect()
        .open_events(&Request::get("/v1/events").origin(DESK))
        .unwrap();
    let (name, data) = events.next_event(Duration::from_secs(10)).unwrap();
    assert_eq!(name, "status");
    assert!(data.contains(&session_a), "{data}");

    // The first citizen is served: identity, certificate, authentication (PIN), each naming
    // its session.
    let identity = client
        .send(&post(
            "/v1/identity",
            DESK,
            json!({ "fields": ["givenNames", "surname", "civilianId"] }),
        ))
        .unwrap();
    assert_eq!(identity.status, 200, "{}\n{}", identity.text(), agent.log());
    let identity = identity.json();
    assert_eq!(identity["session"], session_a.as_str());
    assert_eq!(identity["identity"]["civilianId"], first.civilian_id);
    let certificate = client
        .send(&post(
            "/v1/certificate",
            DESK,
            json!({ "type": "authentication", "session": session_a }),
        ))
        .unwrap();
    assert_eq!(certificate.status, 200, "{}", certificate.text());
    assert_eq!(
        certificate.json()["certificate"],
        first.auth_certificate_b64()
    );
    agent.answer(&["pin 1111"]);
    let token = client
        .send(&post(
            "/v1/authenticate",
            DESK,
            json!({ "challengeNonce": NONCE, "reader": reader }),
        ))
        .unwrap();
    assert_eq!(token.status, 200, "{}", token.text());
    assert_eq!(token.json()["session"], session_a.as_str());

    // The first citizen takes the card: the page hears that the session ended.
    desk.remove(0, &mut card);
    drop(card);
    let mut seen = Vec::new();
    let ended = next_named(&mut events, "session-ended", &mut seen);
    assert_eq!(ended["session"], session_a.as_str(), "{ended}");
    assert_eq!(ended["reason"], "card-removed");
    assert_eq!(ended["reader"], reader.as_str());

    // Nothing of the first citizen through any endpoint, with or without the old session.
    let mut answers = Vec::new();
    for extra in [
        json!({}),
        json!({ "session": session_a }),
        json!({ "reader": reader }),
        json!({ "reader": reader, "session": session_a }),
    ] {
        for (path, body) in every_operation(&first, &extra) {
            agent.answer(&["pin 1111", "ok", "123456"]);
            let response = client.send(&post(path, DESK, body.clone())).unwrap();
            assert_ne!(response.status, 200, "{path} {body}: {}", response.text());
            answers.push(response.text());
        }
    }
    answers.push(status(&client).to_string());
    answers.push(client.send(&Request::get("/v1/status")).unwrap().text());
    for answer in &answers {
        assert_eq!(first.found_in(answer), None, "{answer}");
    }

    // The second citizen: a new session, their own data; the old session id refused.
    let mut card = desk.insert(0, &mut second);
    let session_b = wait_for_session(&agent, &reader, Some(&session_a));
    assert_ne!(session_a, session_b);
    let inserted = next_named(&mut events, "card-inserted", &mut seen);
    assert_eq!(inserted["session"], session_b.as_str(), "{inserted}");
    assert_eq!(inserted["card"]["id"], "pteid-cc2");
    assert_eq!(inserted["interface"], "contact");
    assert_eq!(inserted["transport"], "pcsc");
    assert_eq!(inserted["pinpad"], false);
    let mut answers = Vec::new();
    for (path, body) in every_operation(&second, &json!({ "session": session_a })) {
        agent.answer(&["pin 1111", "ok", "123456"]);
        let response = client.send(&post(path, DESK, body.clone())).unwrap();
        assert_eq!(
            code(&response),
            "card-removed",
            "{path} with the old session: {}",
            response.text()
        );
        answers.push(response.text());
    }
    for answer in &answers {
        assert_eq!(second.found_in(answer), None, "{answer}");
        assert_eq!(first.found_in(answer), None, "{answer}");
    }
    let identity = client
        .send(&post(
            "/v1/identity",
            DESK,
            json!({ "fields": ["givenNames", "civilianId"], "session": session_b }),
        ))
        .unwrap();
    assert_eq!(identity.status, 200, "{}", identity.text());
    let identity = identity.json();
    assert_eq!(identity["identity"]["civilianId"], second.civilian_id);
    assert_eq!(identity["session"], session_b.as_str());
    let certificate = client
        .send(&post("/v1/certificate", DESK, json!({ "type": "signing" })))
        .unwrap();
    assert_eq!(
        certificate.json()["certificate"],
        second.signing_certificate_b64()
    );
    agent.answer(&["pin 2222"]);
    let digest = B64.encode([7u8; 32]);
    let signature = client
        .send(&post(
            "/v1/sign",
            DESK,
            json!({
                "certificate": second.signing_certificate_b64(),
                "hash": digest,
                "hashFunction": "SHA-256",
                "session": session_b,
            }),
        ))
        .unwrap();
    assert_eq!(signature.status, 200, "{}", signature.text());
    let status_now = status(&client).to_string();
    assert_eq!(first.found_in(&status_now), None, "{status_now}");

    // Nothing remembered and nothing of a citizen on disk or in the log; no consent dialog.
    assert!(
        !agent.dir.join("config").join("sites.json").exists(),
        "sites.json written in kiosk mode"
    );
    let log = agent.log();
    for citizen in [&first, &second] {
        assert_eq!(citizen.found_in(&log), None, "citizen data in the log");
    }
    assert!(!log.contains(&session_a), "session id in the log");
    let disk = files_under(&agent.dir);
    for (path, bytes) in &disk {
        // The scripted pinentry's record of what the screen showed is not the agent's disk.
        if path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("pinentry"))
        {
            continue;
        }
        let text = String::from_utf8_lossy(bytes);
        for citizen in [&first, &second] {
            assert_eq!(citizen.found_in(&text), None, "{}", path.display());
        }
    }
    assert!(
        agent.prompts().iter().all(|p| p["cmd"] != "CONFIRM"),
        "a consent dialog in kiosk mode: {:?}",
        agent.prompts()
    );
    desk.remove(0, &mut card);

    // Every operation and both sessions are in the audit log, whose chain verifies.
    let verify = std::process::Command::new(AGENT)
        .args(["audit", "verify", "--json", "--dir"])
        .arg(agent.audit_dir())
        .arg("--key")
        .arg(agent.audit_key())
        .output()
        .unwrap();
    assert_eq!(verify.status.code(), Some(0), "{verify:?}");
    let audit: String = files_under(&agent.audit_dir())
        .iter()
        .map(|(_, bytes)| String::from_utf8_lossy(bytes).into_owned())
        .collect();
    for needle in [&session_a, &session_b] {
        assert!(
            audit.contains(needle.as_str()),
            "session {needle} not audited"
        );
    }
    for operation in [
        "session-start",
        "session-end",
        "identity",
        "authenticate",
        "sign",
    ] {
        assert!(
            audit.contains(&format!("\"{operation}\"")),
            "{operation} not audited"
        );
    }
}

/// Every file under `dir` with its bytes.
fn files_under(dir: &std::path::Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(bytes) = std::fs::read(&path) {
                out.push((path, bytes));
            }
        }
    }
    out
}

#[test]
fn pulling_the_card_ends_running_and_queued_operations_with_card_removed() {
    let desk = desk_or_skip!();
    let mut citizen = Citizen::first();
    let reader = desk.reader(0);
    let (mut card, agent, session) = desk.open(&mut citizen, &kiosk(None));
    let client = agent.client();
    let mut events = client
        .connect()
        .open_events(&Request::get("/v1/events").origin(DESK))
        .unwrap();

    // 1. A PIN dialog is open (it would answer after a minute), a second operation waits in
    //    the queue; the card is pulled.
    agent.answer(&["pin 1111 delay=60000", "pin 1111"]);
    let running = {
        let client = agent.client();
        std::thread::spawn(move || {
            client
                .send(&post(
                    "/v1/authenticate",
                    DESK,
                    json!({ "challengeNonce": NONCE }),
                ))
                .unwrap()
        })
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while agent.prompts().is_empty() {
        assert!(Instant::now() < deadline, "no dialog:\n{}", agent.log());
        std::thread::sleep(Duration::from_millis(20));
    }
    let queued = {
        let client = agent.client();
        let session = session.clone();
        std::thread::spawn(move || {
            client
                .send(&post(
                    "/v1/identity",
                    DESK,
                    json!({ "session": session, "photo": true }),
                ))
                .unwrap()
        })
    };
    let started = Instant::now();
    desk.remove(0, &mut card);
    let running = running.join().unwrap();
    let queued = queued.join().unwrap();
    assert_eq!(code(&running), "card-removed", "{}", running.text());
    assert_eq!(code(&queued), "card-removed", "{}", queued.text());
    assert_eq!(citizen.found_in(&queued.text()), None);
    // The dialog was closed, not waited out (it would have answered after 60 s).
    assert!(
        started.elapsed() < Duration::from_secs(50),
        "the dialog was not closed by the removal"
    );
    let mut seen = Vec::new();
    let ended = next_named(&mut events, "session-ended", &mut seen);
    assert_eq!(ended["session"], session.as_str());
    assert_eq!(ended["reason"], "card-removed");

    // 2. A long read: the card leaves in the middle of reading the photo.
    card.insert().unwrap();
    wait_for_card(&desk.context, &reader, true);
    let session = wait_for_session(&agent, &reader, Some(&session));
    card.remove_after_apdus(12);
    let read = client
        .send(&post(
            "/v1/identity",
            DESK,
            json!({ "photo": true, "session": session }),
        ))
        .unwrap();
    assert_eq!(code(&read), "card-removed", "{}", read.text());
    assert_eq!(citizen.found_in(&read.text()), None);
    let ended = next_named(&mut events, "session-ended", &mut seen);
    assert_eq!(ended["session"], session.as_str(), "{seen:?}");
    assert_eq!(ended["reason"], "card-removed");
}

#[test]
fn idle_timeout_ends_the_session_until_the_card_is_reinserted() {
    let desk = desk_or_skip!();
    let mut citizen = Citizen::first();
    let reader = desk.reader(0);
    let (mut card, agent, session) = desk.open(&mut citizen, &kiosk(Some(2)));
    let client = agent.client();
    let mut events = client
        .connect()
        .open_events(&Request::get("/v1/events").origin(DESK))
        .unwrap();
    let status_event = events.next_event(Duration::from_secs(10)).unwrap();
    assert_eq!(status_event.0, "status");
    let mut seen = Vec::new();
    let ended = next_named(&mut events, "session-ended", &mut seen);
    assert_eq!(ended["session"], session.as_str());
    assert_eq!(ended["reason"], "idle-timeout");
    // The card is still in, without a session: nothing is served until it is re-inserted.
    let now = status(&client);
    let view = now["readers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == reader.as_str())
        .unwrap()
        .clone();
    assert_eq!(view["cardPresent"], true, "{now}");
    assert!(view["session"].is_null(), "{now}");
    for extra in [json!({ "session": session }), json!({})] {
        let mut body = json!({ "fields": ["civilianId"] });
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let response = client.send(&post("/v1/identity", DESK, body)).unwrap();
        assert_eq!(code(&response), "session-ended", "{}", response.text());
        assert_eq!(citizen.found_in(&response.text()), None);
    }
    desk.remove(0, &mut card);
    card.insert().unwrap();
    wait_for_card(&desk.context, &reader, true);
    let again = wait_for_session(&agent, &reader, Some(&session));
    let response = client
        .send(&post(
            "/v1/identity",
            DESK,
            json!({ "fields": ["civilianId"], "session": again }),
        ))
        .unwrap();
    assert_eq!(response.status, 200, "{}", response.text());
}

#[test]
fn another_origin_is_refused_before_any_dialog_even_when_the_dialog_would_say_yes() {
    let desk = desk_or_skip!();
    let mut citizen = Citizen::first();
    let (mut card, agent, session) = desk.open(&mut citizen, &kiosk(None));
    let client = agent.client();
    // Whatever dialog the agent opened would be answered "yes", and "always" is remembered.
    agent.answer(&["ok", "ok", "ok", "pin 1111", "ok", "pin 1111"]);
    for (path, body) in every_operation(&citizen, &json!({ "session": session })) {
        let response = client.send(&post(path, OTHER, body)).unwrap();
        assert_eq!(response.status, 403, "{path}: {}", response.text());
        assert_eq!(code(&response), "origin-not-allowed", "{path}");
        assert!(response.header("access-control-allow-origin").is_none());
        assert_eq!(citizen.found_in(&response.text()), None);
    }
    for path in ["/v1/status", "/v1/events"] {
        let response = client.send(&Request::get(path).origin(OTHER)).unwrap();
        assert_eq!(code(&response), "origin-not-allowed", "{path}");
        assert!(!response.text().contains(&session));
    }
    let preflight = client
        .send(
            &Request::options("/v1/identity")
                .origin(OTHER)
                .header("access-control-request-method", "POST"),
        )
        .unwrap();
    assert_eq!(code(&preflight), "origin-not-allowed");
    assert!(agent.prompts().is_empty(), "{:?}", agent.prompts());
    assert!(!agent.dir.join("config").join("sites.json").exists());
    let audit: String = files_under(&agent.audit_dir())
        .iter()
        .map(|(_, bytes)| String::from_utf8_lossy(bytes).into_owned())
        .collect();
    assert!(
        audit.contains("origin-not-allowed") && audit.contains(OTHER),
        "refusals not audited"
    );
    // The desk's own page is served without a dialog.
    let ok = client
        .send(&post("/v1/certificate", DESK, json!({ "type": "signing" })))
        .unwrap();
    assert_eq!(ok.status, 200, "{}", ok.text());
    assert!(agent.prompts().is_empty(), "{:?}", agent.prompts());
    desk.remove(0, &mut card);
}

#[test]
fn with_several_readers_the_page_chooses_the_reader() {
    let desk = desk_or_skip!();
    let mut first = Citizen::first();
    let mut second = Citizen::second();
    let (r0, r1) = (desk.reader(0), desk.reader(1));
    let mut card0 = desk.insert(0, &mut first);
    let mut card1 = desk.insert(1, &mut second);
    let agent = Agent::start(AGENT.as_ref(), &kiosk(None));
    let client = agent.client();
    let s0 = wait_for_session(&agent, &r0, None);
    let s1 = wait_for_session(&agent, &r1, None);
    assert_ne!(s0, s1);
    let id_of = |body: Value| {
        let response = client.send(&post("/v1/identity", DESK, body)).unwrap();
        assert_eq!(response.status, 200, "{}", response.text());
        let value = response.json();
        (
            value["identity"]["civilianId"].as_str().unwrap().to_owned(),
            value["session"].as_str().unwrap().to_owned(),
        )
    };
    let fields = ["civilianId"];
    assert_eq!(
        id_of(json!({ "fields": fields, "reader": r1 })),
        (second.civilian_id.to_owned(), s1.clone())
    );
    assert_eq!(
        id_of(json!({ "fields": fields, "reader": r0 })),
        (first.civilian_id.to_owned(), s0.clone())
    );
    assert_eq!(
        id_of(json!({ "fields": fields, "session": s1 })),
        (second.civilian_id.to_owned(), s1.clone())
    );
    // A session with another reader's name, and a reader that does not exist, are refused.
    let mismatch = client
        .send(&post(
            "/v1/identity",
            DESK,
            json!({ "fields": fields, "reader": r0, "session": s1 }),
        ))
        .unwrap();
    assert_eq!(code(&mismatch), "session-ended", "{}", mismatch.text());
    let missing = client
        .send(&post(
            "/v1/identity",
            DESK,
            json!({ "fields": fields, "reader": "No Such Reader 00 00" }),
        ))
        .unwrap();
    assert_eq!(code(&missing), "reader-not-found", "{}", missing.text());
    let malformed = client
        .send(&post(
            "/v1/identity",
            DESK,
            json!({ "fields": fields, "session": "not-hex" }),
        ))
        .unwrap();
    assert_eq!(code(&malformed), "bad-request");
    // Pulling one card ends only its session.
    desk.remove(0, &mut card0);
    assert_eq!(
        id_of(json!({ "fields": fields, "session": s1 })),
        (second.civilian_id.to_owned(), s1.clone())
    );
    let gone = client
        .send(&post(
            "/v1/identity",
            DESK,
            json!({ "fields": fields, "session": s0 }),
        ))
        .unwrap();
    assert_eq!(code(&gone), "card-removed");
    desk.remove(1, &mut card1);
}
