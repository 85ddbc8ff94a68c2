//! The HTTP API of `eid-enrolment serve`, driven over HTTPS against the real binary, with real
//! tokens from virtual Citizen Cards (CC1 RSA, CC2 ECC) and real eMRTD reads from virtual
//! passports, all in-process behind the card crate.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use eid_card::emrtd::{AccessKey, ReadOptions};
use eid_card::pteid::{CertKind, HashAlg, KeyRef, Pin, PinRef, PteidCard, RsaPadding};
use eid_enrolment::store::Store;
use eid_hardware_mocks::emrtd::Profile;
use eid_protocols::webeid::{
    AccessInfo, AccessMethod, AuthToken, EmrtdResult, JwsAlgorithm, digest_to_sign,
    emrtd_aa_challenge,
};
use eid_tests::enrolment::{error_code, write_card_trust, write_unrelated_root};
use eid_tests::https::{HttpsClient, Request, Response};
use eid_tests::{InProcessRig, Rig as _, vpcd_like};
use serde_json::{Value, json};

static NEXT: AtomicU32 = AtomicU32::new(0);

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "eid-enrolment-api-{}-{tag}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_eid-enrolment"))
}

/// The Citizen Card test PKI's authentication chain (root and auth sub-CA), as one PEM file.
fn card_trust(dir: &Path) -> Vec<PathBuf> {
    let built = eid_hardware_mocks::pteid::cc2::cc2_default().unwrap();
    vec![write_card_trust(dir, &built.pki, "cc-trust.pem")]
}

/// A running service with its own data folder.
struct Service {
    child: Child,
    dir: PathBuf,
    origin: String,
    client: HttpsClient,
    database: String,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- service log ---\n{}", self.stderr.lock().unwrap());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

impl Service {
    fn start(tag: &str, extra: &[&str], trust: Option<Vec<PathBuf>>) -> Service {
        let dir = temp_dir(tag);
        let trust = trust.unwrap_or_else(|| card_trust(&dir));
        let csca = dir.join("csca-material");
        eid_hardware_mocks::emrtd::trust()
            .unwrap()
            .export(&csca)
            .unwrap();
        let port_file = dir.join("port");
        let database = format!("sqlite:{}", dir.join("enrolment.sqlite").display());
        let mut cmd = Command::new(bin());
        cmd.arg("serve")
            .args(["--listen", "127.0.0.1:0"])
            .arg("--data-dir")
            .arg(dir.join("data"))
            .args(["--database", &database])
            .arg("--outbox")
            .arg(dir.join("outbox.jsonl"))
            .arg("--csca")
            .arg(csca.join("csca"))
            .arg("--port-file")
            .arg(&port_file)
            .arg("--fast-pin-hash")
            .args(extra)
            .env("EID_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for t in &trust {
            cmd.arg("--card-trust").arg(t);
        }
        let mut child = cmd.spawn().unwrap();
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        {
            let pipe = child.stderr.take().unwrap();
            let log = std::sync::Arc::clone(&stderr);
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    let mut l = log.lock().unwrap();
                    l.push_str(&line);
                    l.push('\n');
                }
            });
        }
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        stdout.read_line(&mut first).unwrap();
        assert!(
            first.starts_with("eid-enrolment: listening on https://localhost:"),
            "first line {first:?}; log:\n{}",
            stderr.lock().unwrap()
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        let port: u16 = loop {
            if let Ok(text) = std::fs::read_to_string(&port_file)
                && let Ok(p) = text.trim().parse()
            {
                break p;
            }
            assert!(Instant::now() < deadline, "no port file");
            std::thread::sleep(Duration::from_millis(50));
        };
        let origin = format!("https://localhost:{port}");
        assert!(first.contains(&format!("(origin {origin})")), "{first}");
        let ca = std::fs::read_to_string(dir.join("data/tls/cert.pem")).unwrap();
        let client = HttpsClient::new(
            format!("127.0.0.1:{port}").parse().unwrap(),
            &ca,
            "localhost",
        );
        Service {
            child,
            dir,
            origin,
            client,
            database,
            stderr,
        }
    }

    fn log(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    fn store<T>(&self, f: impl AsyncFnOnce(Store) -> T) -> T {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let store = Store::open(&self.database).await.unwrap();
            f(store).await
        })
    }

    fn bindings(&self) -> Vec<eid_enrolment::store::Binding> {
        self.store(async |s| s.list_bindings().await.unwrap())
    }

    /// A browser-like client: keeps the session cookie, sends this origin.
    fn browser(&self) -> Browser<'_> {
        Browser {
            service: self,
            cookie: None,
        }
    }

    /// The newest code sent to `contact` (dev outbox API).
    fn last_code(&self, contact: &str) -> String {
        let r = self
            .client
            .send(&Request::get("/api/dev/outbox").host("localhost"))
            .unwrap();
        assert_eq!(r.status, 200, "{}", r.text());
        let entries = r.json();
        entries
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["to"] == contact)
            .unwrap_or_else(|| panic!("no code for {contact}: {entries}"))["code"]
            .as_str()
            .unwrap()
            .to_owned()
    }
}

struct Browser<'a> {
    service: &'a Service,
    cookie: Option<String>,
}

impl Browser<'_> {
    fn post(&mut self, path: &str, body: Value) -> Response {
        let mut req = Request::post(path).origin(&self.service.origin).json(&body);
        if let Some(c) = &self.cookie {
            req = req.header("Cookie", c);
        }
        let r = self.service.client.send(&req).unwrap();
        if let Some(set) = r.header("set-cookie") {
            let pair = set.split(';').next().unwrap().to_owned();
            assert!(set.contains("Secure") && set.contains("HttpOnly"));
            assert!(set.contains("SameSite=Strict") && set.contains("Path=/"));
            self.cookie = Some(pair).filter(|p| !p.ends_with('='));
        }
        r
    }

    fn ok(&mut self, path: &str, body: Value) -> Value {
        let r = self.post(path, body);
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        r.json()
    }

    fn nonce(&mut self, path: &str) -> String {
        self.ok(path, json!({}))["nonce"]
            .as_str()
            .unwrap()
            .to_owned()
    }
}

fn expect_error(r: &Response, status: u16, code: &str) -> Value {
    assert_eq!(
        (r.status, error_code(r).as_str()),
        (status, code),
        "{}",
        r.text()
    );
    let v = r.json();
    let message = v["error"]["message"].as_str().unwrap();
    assert!(message.len() > 20, "plain message for {code}: {message}");
    v
}

/// A virtual Citizen Card in an in-process reader.
struct Card {
    rig: InProcessRig,
}

impl Card {
    fn cc1() -> Card {
        let built = eid_hardware_mocks::pteid::cc1::cc1_default().unwrap();
        Card {
            rig: InProcessRig::new(built.card, vpcd_like()),
        }
    }
    fn cc2() -> Card {
        let built = eid_hardware_mocks::pteid::cc2::cc2_default().unwrap();
        Card {
            rig: InProcessRig::new(built.card, vpcd_like()),
        }
    }
    fn with_identity(civil_id: &str, cc1: bool) -> Card {
        let mut options = eid_hardware_mocks::pteid::PteidOptions::default();
        options.identity.civilian_id = civil_id.to_owned();
        options.rsa_bits = 2048;
        let built = if cc1 {
            eid_hardware_mocks::pteid::cc1::cc1(&options).unwrap()
        } else {
            eid_hardware_mocks::pteid::cc2::cc2(&options).unwrap()
        };
        Card {
            rig: InProcessRig::new(built.card, vpcd_like()),
        }
    }

    /// A Web eID token as the agent makes it: PIN 1111, the auth key signs
    /// hash(hash(origin) || hash(nonce)).
    fn token(&mut self, origin: &str, nonce: &str) -> Value {
        let mut t = self.rig.connect().unwrap();
        let mut card = PteidCard::open(&mut *t).unwrap();
        let cert = card
            .read_certificate(CertKind::Authentication)
            .unwrap()
            .unwrap();
        let x509 = openssl::x509::X509::from_der(&cert.der).unwrap();
        let alg = JwsAlgorithm::for_key(&x509.public_key().unwrap()).unwrap();
        let hash = match alg {
            JwsAlgorithm::Es384 | JwsAlgorithm::Rs384 | JwsAlgorithm::Ps384 => HashAlg::Sha384,
            JwsAlgorithm::Es512 | JwsAlgorithm::Rs512 | JwsAlgorithm::Ps512 => HashAlg::Sha512,
            _ => HashAlg::Sha256,
        };
        card.verify_pin(PinRef::Auth, &Pin::new("1111").unwrap())
            .unwrap();
        let signature = card
            .sign(
                KeyRef::Auth,
                hash,
                &digest_to_sign(alg, origin, nonce),
                RsaPadding::Pkcs1v15,
            )
            .unwrap();
        serde_json::to_value(AuthToken::new(alg, &cert.der, &signature.raw, "test")).unwrap()
    }
}

/// Reads a virtual eMRTD as the agent does (PACE with the CAN, AA over the origin-bound
/// challenge) and builds the `eid-emrtd:1.0` result with every data group read.
fn read_document(profile: Profile, origin: &str, nonce: &str) -> Value {
    let card = eid_hardware_mocks::emrtd::card(profile).unwrap();
    let mut rig = InProcessRig::new(card, vpcd_like());
    let mut t = rig.connect().unwrap();
    let key = AccessKey::can("123456").unwrap();
    let report = eid_card::emrtd::read_document(
        &mut *t,
        &key,
        ReadOptions {
            challenge: Some(emrtd_aa_challenge(origin, nonce)),
            ..ReadOptions::default()
        },
    )
    .unwrap();
    let mut result = EmrtdResult::new(
        "test",
        AccessInfo {
            method: AccessMethod::Pace,
            detail: "PACE with the CAN".into(),
        },
        report.raw.sod.as_deref().unwrap(),
    );
    for (n, file) in &report.raw.data_groups {
        result.add_data_group(*n, file);
    }
    if let Some(e) = &report.active_authentication_evidence {
        result.set_active_authentication(&e.challenge, &e.signature);
    }
    serde_json::to_value(result).unwrap()
}

/// Enrols `card` with `contact` and PIN 2580 through the citizen API; returns the binding JSON.
fn enrol(service: &Service, card: &mut Card, contact: &str) -> Value {
    let mut b = service.browser();
    b.ok("/api/enrol/start", json!({}));
    let nonce = b.nonce("/api/enrol/nonce");
    let token = card.token(&service.origin, &nonce);
    b.ok("/api/enrol/card", json!({"token": token, "nonce": nonce}));
    b.ok(
        "/api/enrol/mobile-key",
        json!({"contact": contact, "pin": "2580", "pinRepeat": "2580"}),
    );
    let code = service.last_code(contact);
    b.ok("/api/enrol/confirm", json!({ "code": code }))
}

#[test]
fn citizen_enrolment_then_login_with_the_mobile_key_alone() {
    let service = Service::start("citizen", &["--max-failures", "3"], None);

    // Pages and their headers.
    let page = service
        .client
        .send(&Request::get("/enrol").host("localhost"))
        .unwrap();
    assert_eq!(page.status, 200);
    let csp = page.header("content-security-policy").unwrap();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(
        csp.contains("connect-src 'self' https://127.0.0.1:24180"),
        "{csp}"
    );
    assert_eq!(page.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(page.header("referrer-policy"), Some("no-referrer"));
    assert!(page.header("strict-transport-security").is_some());
    let js = service
        .client
        .send(&Request::get("/static/eid-bridge.js").host("localhost"))
        .unwrap();
    assert_eq!(js.status, 200);
    assert!(
        js.header("content-type")
            .unwrap()
            .starts_with("text/javascript")
    );
    let config = service
        .client
        .send(&Request::get("/api/config").host("localhost"))
        .unwrap()
        .json();
    assert_eq!(config["origin"], service.origin.as_str());
    assert_eq!(config["devOutbox"], true);

    let mut card = Card::cc2();
    let mut b = service.browser();
    // No session yet.
    expect_error(&b.post("/api/enrol/nonce", json!({})), 401, "no-session");
    b.ok("/api/enrol/start", json!({}));
    assert!(
        b.cookie
            .as_deref()
            .unwrap()
            .starts_with("__Host-eid-enrolment=")
    );
    // The mobile key needs an identity first.
    expect_error(
        &b.post(
            "/api/enrol/mobile-key",
            json!({"contact": "+351912000001", "pin": "2580", "pinRepeat": "2580"}),
        ),
        409,
        "no-identity",
    );
    let nonce = b.nonce("/api/enrol/nonce");
    let token = card.token(&service.origin, &nonce);
    let identity =
        b.ok("/api/enrol/card", json!({"token": token, "nonce": nonce}))["identity"].clone();
    assert_eq!(identity["kind"], "citizen-card");
    assert_eq!(identity["documentNumber"], "99000123");
    assert_eq!(identity["country"], "PT");
    assert_eq!(identity["name"], "MARTA INÊS SEQUEIRA TESTE");

    // The same token and nonce again: replay.
    let r = b.post("/api/enrol/card", json!({"token": token, "nonce": nonce}));
    expect_error(&r, 400, "nonce-reused");

    // A token signed for another site, on a nonce of ours.
    let nonce = b.nonce("/api/enrol/nonce");
    let evil = card.token("https://evil.example", &nonce);
    let r = b.post("/api/enrol/card", json!({"token": evil, "nonce": nonce}));
    let v = expect_error(&r, 400, "signature-invalid");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not made for this site")
    );
    // A nonce this service never issued.
    let r = b.post(
        "/api/enrol/card",
        json!({"token": token, "nonce": "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWY="}),
    );
    expect_error(&r, 400, "nonce-unknown");
    // The identity verified first is still there; PIN rules.
    for (pin, repeat, code) in [
        ("12", "12", "pin-format"),
        ("12a4", "12a4", "pin-format"),
        ("1234", "1234", "pin-weak"),
        ("7777", "7777", "pin-weak"),
        ("2580", "2581", "pin-mismatch"),
    ] {
        let r = b.post(
            "/api/enrol/mobile-key",
            json!({"contact": "+351912000001", "pin": pin, "pinRepeat": repeat}),
        );
        expect_error(&r, 400, code);
        assert!(!r.text().contains(pin), "the PIN is not echoed");
    }
    expect_error(
        &b.post(
            "/api/enrol/mobile-key",
            json!({"contact": "not a contact", "pin": "2580", "pinRepeat": "2580"}),
        ),
        400,
        "contact-invalid",
    );
    // Unknown fields are refused.
    expect_error(
        &b.post(
            "/api/enrol/mobile-key",
            json!({"contact": "+351912000001", "pin": "2580", "pinRepeat": "2580", "name": "x"}),
        ),
        400,
        "bad-request",
    );
    let sent = b.ok(
        "/api/enrol/mobile-key",
        json!({"contact": "912 000 001", "pin": "2580", "pinRepeat": "2580"}),
    );
    assert_eq!(sent["expiresInSeconds"], 300);
    let masked = sent["codeSentTo"].as_str().unwrap();
    assert!(!masked.contains("912000001"), "{masked}");
    let code = service.last_code("+351912000001");
    // A wrong code: attempts left.
    let wrong = if code == "000000" { "000001" } else { "000000" };
    let v = expect_error(
        &b.post("/api/enrol/confirm", json!({ "code": wrong })),
        400,
        "code-wrong",
    );
    assert_eq!(v["error"]["attemptsLeft"], 2);
    assert!(
        service.bindings().is_empty(),
        "nothing stored before the code"
    );
    let done = b.ok("/api/enrol/confirm", json!({ "code": code }));
    assert_eq!(done["binding"]["kind"], "citizen-card");
    assert_eq!(done["binding"]["status"], "active");
    assert_eq!(done["binding"]["name"], "MARTA INÊS SEQUEIRA TESTE");
    let bindings = service.bindings();
    assert_eq!(bindings.len(), 1);
    assert_eq!(bindings[0].identity_key, "pt-cc:PNOPT-99000123");
    assert_eq!(bindings[0].contact, "+351912000001");
    assert!(bindings[0].pin_hash.starts_with("$argon2id$"));
    assert!(bindings[0].enrolled_by.is_none());
    // The code is single use and the identity spent.
    expect_error(
        &b.post("/api/enrol/confirm", json!({ "code": code })),
        409,
        "no-identity",
    );

    // Another citizen (CC1) cannot take the same contact.
    let mut other = Card::with_identity("99000456", true);
    let mut o = service.browser();
    o.ok("/api/enrol/start", json!({}));
    let nonce = o.nonce("/api/enrol/nonce");
    let token = other.token(&service.origin, &nonce);
    let id = o.ok("/api/enrol/card", json!({"token": token, "nonce": nonce}));
    assert_eq!(id["identity"]["documentNumber"], "99000456");
    expect_error(
        &o.post(
            "/api/enrol/mobile-key",
            json!({"contact": "+351912000001", "pin": "2580", "pinRepeat": "2580"}),
        ),
        409,
        "contact-taken",
    );
    assert_eq!(service.bindings().len(), 1);

    // Login with the mobile key alone.
    let mut l = service.browser();
    let r = l.post(
        "/api/login/start",
        json!({"contact": "+351912000001", "pin": "9999"}),
    );
    let v = expect_error(&r, 401, "login-failed");
    assert_eq!(v["error"]["attemptsLeft"], 2);
    let r = l.post(
        "/api/login/start",
        json!({"contact": "+351919999999", "pin": "2580"}),
    );
    let v = expect_error(&r, 401, "login-failed");
    assert!(v["error"].get("attemptsLeft").is_none(), "unknown contact");
    let sent = l.ok(
        "/api/login/start",
        json!({"contact": "+351912000001", "pin": "2580"}),
    );
    assert!(sent["codeSentTo"].is_string());
    let code = service.last_code("+351912000001");
    let welcome = l.ok("/api/login/confirm", json!({ "code": code }));
    assert_eq!(welcome["name"], "MARTA INÊS SEQUEIRA TESTE");
    assert_eq!(welcome["identityKind"], "citizen-card");
    let b = &service.bindings()[0];
    assert!(b.last_login_at.is_some());
    assert_eq!(b.failures, 0, "a successful login resets the failures");

    // Wrong PINs up to the limit: suspended, and the right PIN no longer works.
    let mut l = service.browser();
    for left in [2, 1] {
        let r = l.post(
            "/api/login/start",
            json!({"contact": "+351912000001", "pin": "0000"}),
        );
        assert_eq!(
            expect_error(&r, 401, "login-failed")["error"]["attemptsLeft"],
            left
        );
    }
    expect_error(
        &l.post(
            "/api/login/start",
            json!({"contact": "+351912000001", "pin": "0000"}),
        ),
        423,
        "suspended",
    );
    expect_error(
        &l.post(
            "/api/login/start",
            json!({"contact": "+351912000001", "pin": "2580"}),
        ),
        423,
        "suspended",
    );
    assert_eq!(service.bindings()[0].status, "suspended");

    // Re-enrolment with the card recovers the key.
    enrol(&service, &mut card, "+351912000001");
    assert_eq!(service.bindings()[0].status, "active");

    // One log line per request, naming the error code.
    let log = service.log();
    assert!(log.contains("code=nonce-reused"), "{log}");
    assert!(log.contains("status=409 code=contact-taken"), "{log}");
}

#[test]
fn post_checks_origin_content_type_and_size() {
    let service = Service::start("checks", &[], None);
    let c = &service.client;
    // No Origin.
    let r = c
        .send(&Request::post("/api/enrol/start").json(&json!({})))
        .unwrap();
    expect_error(&r, 403, "origin-refused");
    // Another origin.
    let r = c
        .send(
            &Request::post("/api/enrol/start")
                .origin("https://evil.example")
                .json(&json!({})),
        )
        .unwrap();
    expect_error(&r, 403, "origin-refused");
    assert!(r.header("set-cookie").is_none());
    // text/plain (what a cross-site form can send without a preflight).
    let r = c
        .send(
            &Request::post("/api/enrol/start")
                .origin(&service.origin)
                .body("{}", "text/plain"),
        )
        .unwrap();
    expect_error(&r, 415, "content-type");
    // Too large.
    // Too large: refused on the declared length, before the body is read.
    let mut conn = c.connect();
    conn.write_raw(
        format!(
            "POST /api/login/start HTTP/1.1\r\nHost: localhost\r\nOrigin: {}\r\n\
             Content-Type: application/json\r\nContent-Length: 70000\r\n\r\n",
            service.origin
        )
        .as_bytes(),
    )
    .unwrap();
    let r = conn.read_response().unwrap();
    expect_error(&r, 413, "too-large");
    // Not JSON.
    let r = c
        .send(
            &Request::post("/api/enrol/start")
                .origin(&service.origin)
                .body("{", "application/json"),
        )
        .unwrap();
    expect_error(&r, 400, "bad-request");
    // A field the step does not take (a page cannot slip in an identity or a flag).
    let r = c
        .send(
            &Request::post("/api/enrol/mobile-key")
                .origin(&service.origin)
                .json(&json!({
                    "contact": "+351912345678", "pin": "4826", "pinRepeat": "4826",
                    "identity": {"name": "Someone Else"}
                })),
        )
        .unwrap();
    expect_error(&r, 400, "bad-request");
    // Unknown route, and the outbox page exists with --outbox.
    let r = c.send(&Request::get("/nope").host("localhost")).unwrap();
    assert_eq!(r.status, 404);
    let r = c
        .send(&Request::get("/dev/outbox").host("localhost"))
        .unwrap();
    assert_eq!(r.status, 200);
    // The desk needs an operator.
    let mut b = service.browser();
    expect_error(
        &b.post("/api/desk/nonce", json!({})),
        401,
        "operator-required",
    );
    expect_error(
        &b.post(
            "/api/desk/login",
            json!({"operator": "nobody", "password": "whatever-password"}),
        ),
        401,
        "operator-login-failed",
    );
    assert!(service.bindings().is_empty());
}

#[test]
fn an_untrusted_card_authority_is_refused() {
    let dir = temp_dir("untrusted-anchor");
    let root = write_unrelated_root(&dir, "unrelated-root.pem");
    let service = Service::start("untrusted", &[], Some(vec![root]));
    let mut card = Card::cc1();
    let mut b = service.browser();
    b.ok("/api/enrol/start", json!({}));
    let nonce = b.nonce("/api/enrol/nonce");
    let token = card.token(&service.origin, &nonce);
    let r = b.post("/api/enrol/card", json!({"token": token, "nonce": nonce}));
    expect_error(&r, 403, "certificate-untrusted");
    expect_error(
        &b.post(
            "/api/enrol/mobile-key",
            json!({"contact": "+351912000002", "pin": "2580", "pinRepeat": "2580"}),
        ),
        409,
        "no-identity",
    );
    assert!(service.bindings().is_empty());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_expired_nonce_is_refused() {
    let service = Service::start("expired", &["--nonce-ttl-secs", "1"], None);
    let mut card = Card::cc2();
    let mut b = service.browser();
    b.ok("/api/enrol/start", json!({}));
    let nonce = b.nonce("/api/enrol/nonce");
    let token = card.token(&service.origin, &nonce);
    std::thread::sleep(Duration::from_millis(2500));
    let r = b.post("/api/enrol/card", json!({"token": token, "nonce": nonce}));
    expect_error(&r, 400, "nonce-expired");
    assert!(service.bindings().is_empty());
}

#[test]
fn a_wrong_code_three_times_spends_it() {
    let service = Service::start("codes", &[], None);
    let mut card = Card::cc2();
    let mut b = service.browser();
    b.ok("/api/enrol/start", json!({}));
    let nonce = b.nonce("/api/enrol/nonce");
    let token = card.token(&service.origin, &nonce);
    b.ok("/api/enrol/card", json!({"token": token, "nonce": nonce}));
    b.ok(
        "/api/enrol/mobile-key",
        json!({"contact": "Marta@Example.ORG", "pin": "2580", "pinRepeat": "2580"}),
    );
    let code = service.last_code("Marta@example.org");
    let wrong = if code == "000000" { "000001" } else { "000000" };
    for left in [2, 1] {
        let r = b.post("/api/enrol/confirm", json!({ "code": wrong }));
        assert_eq!(
            expect_error(&r, 400, "code-wrong")["error"]["attemptsLeft"],
            left
        );
    }
    let r = b.post("/api/enrol/confirm", json!({ "code": wrong }));
    let c = error_code(&r);
    assert!(
        c == "code-attempts-exhausted" || c == "code-wrong",
        "{}",
        r.text()
    );
    let r = b.post("/api/enrol/confirm", json!({ "code": code }));
    assert_eq!(
        r.status,
        400,
        "the right code after the limit: {}",
        r.text()
    );
    // Asking again at once is rate-limited.
    let r = b.post("/api/enrol/resend", json!({}));
    let v = expect_error(&r, 429, "code-rate-limited");
    assert!(v["error"]["retryAfterSeconds"].as_u64().unwrap() > 0);
    assert!(service.bindings().is_empty());
}

#[test]
fn desk_enrols_a_verified_passport_and_refuses_clones_and_altered_data() {
    let service = Service::start("desk", &[], None);
    let out = eid_tests::cli::run_bounded(
        {
            let mut c = Command::new(bin());
            c.args(["operator", "add", "desk1", "--password-stdin", "--database"])
                .arg(&service.database);
            c
        },
        "operator password 1\n",
        Duration::from_secs(60),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let mut d = service.browser();
    expect_error(
        &d.post(
            "/api/desk/login",
            json!({"operator": "desk1", "password": "wrong password"}),
        ),
        401,
        "operator-login-failed",
    );
    let who = d.ok(
        "/api/desk/login",
        json!({"operator": "desk1", "password": "operator password 1"}),
    );
    assert_eq!(who["operator"], "desk1");

    // A cloned chip (AA key not the DG15 key) and a chip with an altered data group.
    for (profile, code) in [
        (Profile::Clone, "aa-invalid"),
        (Profile::BadDgHash, "data-group-hash"),
    ] {
        let nonce = d.nonce("/api/desk/nonce");
        let result = read_document(profile, &service.origin, &nonce);
        let r = d.post(
            "/api/desk/document",
            json!({"result": result, "nonce": nonce}),
        );
        let v = expect_error(&r, 400, code);
        let message = v["error"]["message"].as_str().unwrap();
        match code {
            "aa-invalid" => assert!(message.contains("it may be a copy"), "{message}"),
            _ => assert!(message.contains("data group was altered"), "{message}"),
        }
        expect_error(
            &d.post(
                "/api/enrol/mobile-key",
                json!({"contact": "+351912000003", "pin": "2580", "pinRepeat": "2580"}),
            ),
            409,
            "no-identity",
        );
    }
    // A result read with the challenge of another nonce.
    let nonce = d.nonce("/api/desk/nonce");
    let other = d.nonce("/api/desk/nonce");
    let result = read_document(Profile::Pace, &service.origin, &other);
    let r = d.post(
        "/api/desk/document",
        json!({"result": result, "nonce": nonce}),
    );
    expect_error(&r, 400, "aa-challenge");
    assert!(service.bindings().is_empty());

    // The genuine document.
    let nonce = d.nonce("/api/desk/nonce");
    let result = read_document(Profile::Pace, &service.origin, &nonce);
    let id = d.ok(
        "/api/desk/document",
        json!({"result": result, "nonce": nonce}),
    )["identity"]
        .clone();
    assert_eq!(id["kind"], "passport");
    assert_eq!(id["documentNumber"], "IDP000017");
    assert_eq!(id["country"], "UTO");
    assert_eq!(id["surname"], "SILVA");
    assert_eq!(id["givenName"], "JOAO PEDRO");
    assert_eq!(id["expired"], false);
    d.ok(
        "/api/enrol/mobile-key",
        json!({"contact": "+351912000003", "pin": "1357", "pinRepeat": "1357"}),
    );
    let code = service.last_code("+351912000003");
    let done = d.ok("/api/enrol/confirm", json!({ "code": code }));
    assert_eq!(done["binding"]["kind"], "passport");
    let bindings = service.bindings();
    assert_eq!(bindings.len(), 1);
    assert_eq!(bindings[0].identity_key, "passport:UTO:IDP000017");
    assert_eq!(bindings[0].enrolled_by.as_deref(), Some("desk1"));
    // Next citizen: the operator stays signed in, the identity is gone.
    d.ok("/api/desk/next", json!({}));
    d.nonce("/api/desk/nonce");
    d.ok("/api/desk/logout", json!({}));
    expect_error(
        &d.post("/api/desk/nonce", json!({})),
        401,
        "operator-required",
    );

    // The passport holder logs in with the mobile key.
    let mut l = service.browser();
    l.ok(
        "/api/login/start",
        json!({"contact": "+351912000003", "pin": "1357"}),
    );
    let code = service.last_code("+351912000003");
    let welcome = l.ok("/api/login/confirm", json!({ "code": code }));
    assert_eq!(welcome["identityKind"], "passport");
}
