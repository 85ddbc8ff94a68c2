//! The kiosk's audit log as an auditor meets it: a scripted day written by the agent's audit
//! module (with rotation), then the real `eid-agent audit verify` binary on it, intact and after
//! each kind of tampering, each on a fresh copy of the day's files.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use eid_agent::audit::{AuditEvent, AuditLog, Document, document_of};
use eid_tests::cli;
use serde_json::{Value, json};

const AGENT: &str = env!("CARGO_BIN_EXE_eid-agent");

/// Personal data of the day's citizens: none of it may appear in the log directory.
const SECRETS: [&str; 4] = ["123456789ZZ1", "12345678 9 ZZ1", "L898902C3", "ERIKSSON"];

struct Tmp(PathBuf);

impl Tmp {
    fn new(name: &str) -> Tmp {
        let path = std::env::temp_dir().join(format!("eid-audit-it-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).unwrap();
        Tmp(path)
    }
}

impl Drop for Tmp {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn run(args: &[&str]) -> Output {
    let mut cmd = Command::new(AGENT);
    cmd.args(args).env_remove("EID_AGENT_POLICY");
    cli::run_bounded(cmd, "", Duration::from_secs(20))
}

fn verify(dir: &Path, key: &Path) -> (Option<i32>, Value) {
    let out = run(&[
        "audit",
        "verify",
        "--dir",
        dir.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
        "--json",
    ]);
    let json = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    (out.status.code(), json)
}

/// A desk's day: two Citizen Card citizens, a passport, a refused origin, errors, an idle
/// timeout. Rotation every ~1.5 KiB, so the day spans several files.
fn scripted_day(dir: &Path, key: &Path) -> usize {
    let log = AuditLog::open(dir, key, "loja-lisboa-03", 1500).unwrap();
    let desk = Some("https://desk.example");
    let contact = Some("Virtual PCD 00 00");
    let nfc = Some("Virtual PCD 00 01");
    let s1 = Some("0123456789abcdef0123456789abcdef");
    let s2 = Some("fedcba9876543210fedcba9876543210");
    let s3 = Some("00000000000000001111111111111111");
    let identity = json!({ "identity": { "documentNumber": "12345678 9 ZZ1", "surname": "ERIKSSON" }, "photo": null });
    let passport = json!({ "document": { "documentCode": "P", "documentNumber": "L898902C3", "surname": "ERIKSSON" } });
    let doc1 = document_of("identity", &identity).unwrap();
    let doc3 = document_of("emrtd-read", &passport).unwrap();
    let cc = Some(Document {
        kind: &doc1.0,
        number: &doc1.1,
    });
    let pp = Some(Document {
        kind: &doc3.0,
        number: &doc3.1,
    });
    let e = |origin, reader, session, operation, result, document| AuditEvent {
        origin,
        reader,
        session,
        operation,
        result,
        document,
    };
    let day = [
        e(None, None, None, "agent-start", "ok", None),
        e(None, contact, s1, "session-start", "ok", None),
        e(desk, contact, s1, "identity", "ok", cc),
        e(desk, contact, s1, "certificate", "ok", cc),
        e(desk, contact, s1, "authenticate", "pin-wrong", cc),
        e(desk, contact, s1, "authenticate", "ok", cc),
        e(desk, contact, s1, "sign", "ok", cc),
        e(None, contact, s1, "session-end", "card-removed", None),
        e(
            Some("https://evil.example"),
            None,
            None,
            "origin-refused",
            "origin-not-allowed",
            None,
        ),
        e(None, nfc, s2, "session-start", "ok", None),
        e(desk, nfc, s2, "emrtd-read", "ok", pp),
        e(None, nfc, s2, "session-end", "card-removed", None),
        e(None, contact, s3, "session-start", "ok", None),
        e(desk, contact, s3, "identity", "card-removed", None),
        e(None, contact, s3, "session-end", "idle-timeout", None),
        e(None, None, None, "agent-stop", "ok", None),
    ];
    for event in day {
        log.record(event).unwrap();
    }
    day.len()
}

fn copy_dir(from: &Path, to: &Path) {
    let _ = fs::remove_dir_all(to);
    fs::create_dir_all(to).unwrap();
    fs::set_permissions(to, fs::Permissions::from_mode(0o700)).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

fn lines(path: &Path) -> Vec<String> {
    fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn write_lines(path: &Path, lines: &[String]) {
    fs::write(
        path,
        lines.iter().map(|l| format!("{l}\n")).collect::<String>(),
    )
    .unwrap();
}

fn log_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    files.sort();
    files
}

#[test]
fn a_scripted_day_verifies_and_every_tampering_is_named() {
    let tmp = Tmp::new("day");
    let day = tmp.0.join("day");
    let key = tmp.0.join("audit.key");
    let n = scripted_day(&day, &key);

    // The key file and the log as the agent left them.
    assert_eq!(fs::read(&key).unwrap().len(), 32);
    assert_eq!(
        fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(
        fs::metadata(&day).unwrap().permissions().mode() & 0o777,
        0o700
    );
    let files = log_files(&day);
    assert!(files.len() >= 3, "expected rotation: {files:?}");

    // Intact.
    let (code, report) = verify(&day, &key);
    assert_eq!(code, Some(0), "{report}");
    assert_eq!(report["intact"], true);
    assert_eq!(report["entries"], n as u64);
    assert_eq!(report["files"], files.len() as u64);
    assert_eq!(report["firstSeq"], 1);
    assert_eq!(report["lastSeq"], n as u64);
    let text = run(&[
        "audit",
        "verify",
        "--dir",
        day.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
    ]);
    assert_eq!(text.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&text.stdout).contains(&format!("intact: {n} entries")),
        "{text:?}"
    );

    // The entries, as `audit show` prints them.
    let out = run(&["audit", "show", "--dir", day.to_str().unwrap(), "--json"]);
    assert_eq!(out.status.code(), Some(0));
    let shown: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(shown.len(), n);
    let ops: Vec<(&str, &str)> = shown
        .iter()
        .map(|e| {
            (
                e["operation"].as_str().unwrap(),
                e["result"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(ops[0], ("agent-start", "ok"));
    assert_eq!(ops[4], ("authenticate", "pin-wrong"));
    assert_eq!(ops[8], ("origin-refused", "origin-not-allowed"));
    assert_eq!(ops[14], ("session-end", "idle-timeout"));
    for (i, e) in shown.iter().enumerate() {
        assert_eq!(e["seq"], i as u64 + 1);
        assert_eq!(e["desk"], "loja-lisboa-03");
        assert!(e["time"].as_str().unwrap().ends_with('Z'));
    }
    assert_eq!(shown[2]["documentType"], "citizen-card");
    assert_eq!(shown[10]["documentType"], "passport");
    // The same card gives the same pseudonym; another document another one.
    assert_eq!(shown[2]["documentHash"], shown[6]["documentHash"]);
    assert_ne!(shown[2]["documentHash"], shown[10]["documentHash"]);
    assert_eq!(shown[2]["documentHash"].as_str().unwrap().len(), 64);
    assert!(shown[13]["documentHash"].is_null());

    // No personal data anywhere in the directory.
    for entry in fs::read_dir(&day).unwrap() {
        let bytes = fs::read(entry.unwrap().path()).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        for secret in SECRETS {
            assert!(!text.contains(secret), "{secret} in the audit log");
        }
    }

    let first = files[0].file_name().unwrap().to_str().unwrap().to_owned();
    let last_name = files
        .last()
        .unwrap()
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let case = |name: &str, tamper: &dyn Fn(&Path), key: &Path| -> Value {
        let dir = tmp.0.join(name);
        copy_dir(&day, &dir);
        tamper(&dir);
        let (code, report) = verify(&dir, key);
        assert_eq!(code, Some(1), "{name}: {report}");
        assert_eq!(report["intact"], false, "{name}");
        report["break"].clone()
    };

    // A field edited (the result of line 3).
    let b = case(
        "edited",
        &|dir| {
            let path = dir.join(&first);
            let mut l = lines(&path);
            l[2] = l[2].replacen(r#""result":"ok""#, r#""result":"no""#, 1);
            write_lines(&path, &l);
        },
        &key,
    );
    assert_eq!(
        (b["kind"].as_str(), b["line"].as_u64()),
        (Some("edited"), Some(3)),
        "{b}"
    );
    assert_eq!(b["file"], first.as_str());

    // A line deleted.
    let b = case(
        "deleted",
        &|dir| {
            let path = dir.join(&first);
            let mut l = lines(&path);
            l.remove(1);
            write_lines(&path, &l);
        },
        &key,
    );
    assert_eq!(
        (b["kind"].as_str(), b["line"].as_u64()),
        (Some("deleted"), Some(2)),
        "{b}"
    );

    // Two lines swapped.
    let b = case(
        "swapped",
        &|dir| {
            let path = dir.join(&first);
            let mut l = lines(&path);
            l.swap(1, 2);
            write_lines(&path, &l);
        },
        &key,
    );
    assert_eq!(
        (b["kind"].as_str(), b["line"].as_u64()),
        (Some("reordered"), Some(2)),
        "{b}"
    );

    // A rotated file deleted: the first, then one in the middle.
    let b = case(
        "first-file",
        &|dir| fs::remove_file(dir.join(&first)).unwrap(),
        &key,
    );
    assert_eq!(
        (b["kind"].as_str(), b["file"].as_str()),
        (Some("missing-file"), Some(first.as_str())),
        "{b}"
    );
    let second = files[1].file_name().unwrap().to_str().unwrap().to_owned();
    let b = case(
        "middle-file",
        &|dir| fs::remove_file(dir.join(&second)).unwrap(),
        &key,
    );
    assert_eq!(
        (b["kind"].as_str(), b["file"].as_str()),
        (Some("missing-file"), Some(second.as_str())),
        "{b}"
    );
    let b = case(
        "newest-file",
        &|dir| fs::remove_file(dir.join(&last_name)).unwrap(),
        &key,
    );
    assert_eq!(
        (b["kind"].as_str(), b["file"].as_str()),
        (Some("missing-file"), Some(last_name.as_str())),
        "{b}"
    );

    // The tail truncated: the last two lines cut, and a line cut in its middle.
    let b = case(
        "truncated",
        &|dir| {
            let path = dir.join(&last_name);
            let mut l = lines(&path);
            let keep = l.len().saturating_sub(2);
            l.truncate(keep);
            write_lines(&path, &l);
        },
        &key,
    );
    assert_eq!(b["kind"], "truncated", "{b}");
    let b = case(
        "cut",
        &|dir| {
            let path = dir.join(&last_name);
            let bytes = fs::read(&path).unwrap();
            fs::write(&path, &bytes[..bytes.len() - 20]).unwrap();
        },
        &key,
    );
    assert_eq!(b["kind"], "truncated", "{b}");
    assert_eq!(b["file"], last_name.as_str());

    // A line appended by hand, in the agent's format, chained to the last line.
    let b = case(
        "appended",
        &|dir| {
            let path = dir.join(&last_name);
            let mut l = lines(&path);
            let mut forged: Value = serde_json::from_str(l.last().unwrap()).unwrap();
            forged["prev"] = forged["mac"].clone();
            forged["seq"] = json!(n + 1);
            forged["operation"] = json!("identity");
            forged["mac"] = json!("ab".repeat(32));
            l.push(serde_json::to_string(&forged).unwrap());
            write_lines(&path, &l);
        },
        &key,
    );
    assert_eq!(b["kind"], "foreign-line", "{b}");
    assert_eq!(b["file"], last_name.as_str());

    // The key swapped for another one.
    let other = tmp.0.join("other.key");
    fs::write(&other, [0x42u8; 32]).unwrap();
    fs::set_permissions(&other, fs::Permissions::from_mode(0o600)).unwrap();
    let b = case("key", &|_| {}, &other);
    assert_eq!(
        (b["kind"].as_str(), b["line"].as_u64()),
        (Some("wrong-key"), Some(1)),
        "{b}"
    );

    // The untouched day still verifies (the copies were independent).
    assert_eq!(verify(&day, &key).0, Some(0));
}

#[test]
fn cannot_run_is_exit_2_with_a_remedy_and_the_policy_gives_the_defaults() {
    let tmp = Tmp::new("cannot");
    let dir = tmp.0.join("log");
    let key = tmp.0.join("audit.key");
    scripted_day(&dir, &key);

    // No log there.
    let (code, json) = verify(&tmp.0.join("nothing"), &key);
    assert_eq!(code, Some(2), "{json}");
    // A key others can read: refused, the log not even opened.
    fs::set_permissions(&key, fs::Permissions::from_mode(0o644)).unwrap();
    let (code, json) = verify(&dir, &key);
    assert_eq!(code, Some(2));
    assert_eq!(json["error"]["code"], "audit-key-permissions");
    assert!(
        json["error"]["remedy"]
            .as_str()
            .unwrap()
            .contains("chmod 600")
    );
    fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).unwrap();
    // Missing key file.
    let (code, json) = verify(&dir, &tmp.0.join("missing.key"));
    assert_eq!(code, Some(2));
    assert_eq!(json["error"]["code"], "audit-key-missing");

    // Directory and key from the policy's [kiosk] table.
    let policy = tmp.0.join("policy.toml");
    fs::write(
        &policy,
        format!(
            "[kiosk]\ndesk = \"loja-lisboa-03\"\norigins = [\"https://desk.example\"]\naudit_dir = {:?}\naudit_key_file = {:?}\n",
            dir.to_str().unwrap(),
            key.to_str().unwrap()
        ),
    )
    .unwrap();
    let out = run(&[
        "audit",
        "verify",
        "--policy",
        policy.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["intact"], true);
}

/// Kiosk mode end to end: the real agent (`run --kiosk`), two virtual cards behind the real
/// pcscd (a Citizen Card in the contact slot, an eMRTD in the other), a desk page's day of
/// requests, a refused origin, and SIGTERM at closing time. The log the agent wrote must verify
/// with the real `audit verify`, hold the day's operations in order with their results and
/// document types, and nowhere in its directory the citizens' names or document numbers.
#[test]
fn a_kiosk_day_through_the_real_agent_is_audited() {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD as B64;
    use eid_card::pcsc_transport::PcscContext;
    use eid_hardware_mocks::emrtd::profile::Profile;
    use eid_hardware_mocks::pteid::{Identity, PteidOptions};
    use eid_hardware_mocks::vpcd::VpcdCard;
    use eid_tests::agent::{Agent, AgentOptions, KioskOptions};
    use eid_tests::https::Request;
    use eid_tests::{Slot, pcscd_available, wait_for_card};
    use std::time::Instant;

    const DESK: &str = "https://desk.example";
    const OTHER: &str = "https://other.example";
    const NONCE: &str = "c7mD6hB9L3Zxq2o4yWm0n8pVt1sR5uEaKbJdFgHiQwE=";
    if !pcscd_available() {
        eprintln!("skipped: pcscd with vpcd is not running");
        return;
    }
    let (contact, contactless) = Slot::acquire_pair();
    let context = PcscContext::establish().unwrap();
    wait_for_card(&context, &contact.reader_name(), false);
    wait_for_card(&context, &contactless.reader_name(), false);

    let identity = Identity {
        given_name: "AURORA".into(),
        surname: "AUDITADA TESTE".into(),
        civilian_id: "93333333".into(),
        document_number: "93333333 3 ZZ3".into(),
        card_serial: "3333333333333333".into(),
        ..Identity::default()
    };
    let citizen = eid_hardware_mocks::pteid::cc2::cc2(&PteidOptions {
        identity,
        ..PteidOptions::default()
    })
    .unwrap();
    let sign_certificate = B64.encode(citizen.pki.sign_cert.to_der().unwrap());
    let auth_certificate = B64.encode(citizen.pki.auth_cert.to_der().unwrap());
    let passport = Profile::Pace.document();
    // The profile's document is an identity card (`ID`) or a passport (`P<`).
    let document_kind = if passport.document_code.starts_with('P') {
        "passport"
    } else {
        "id-card"
    };
    let secrets = [
        "AURORA",
        "AUDITADA",
        "93333333",
        passport.document_number,
        passport.surname,
        &auth_certificate[..60],
        &sign_certificate[..60],
    ];

    let agent = Agent::start(
        AGENT.as_ref(),
        &AgentOptions {
            agent_toml: "pin_rate_burst = 100\npin_rate_period_secs = 1\n".into(),
            kiosk: Some(KioskOptions {
                desk: "loja-auditoria-01".into(),
                origins: vec![DESK.into()],
                // Small files: the day rotates.
                extra_toml: "audit_max_bytes = 4096\n".into(),
                ..KioskOptions::default()
            }),
            ..AgentOptions::default()
        },
    );
    let client = agent.client();
    let session_in = |reader: &str| -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let status = client
                .send(&Request::get("/v1/status").origin(DESK))
                .unwrap()
                .json();
            let session = status["readers"].as_array().and_then(|rs| {
                rs.iter()
                    .find(|r| r["name"] == reader && !r["card"].is_null())
                    .and_then(|r| r["session"].as_str().map(str::to_owned))
            });
            if let Some(s) = session {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "no session in {reader}: {status}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let post = |origin: &str, path: &str, body: Value| {
        client
            .send(&Request::post(path).origin(origin).json(&body))
            .unwrap()
    };

    // The first citizen, at the contact reader.
    let mut card = VpcdCard::attach(contact.addr(), citizen.card).unwrap();
    wait_for_card(&context, &contact.reader_name(), true);
    let s1 = session_in(&contact.reader_name());
    let r = post(DESK, "/v1/certificate", json!({ "type": "authentication" }));
    assert_eq!(r.status, 200, "{}", r.text());
    let r = post(DESK, "/v1/identity", json!({}));
    assert_eq!(r.status, 200, "{}", r.text());
    agent.answer(&["pin 1111"]);
    let r = post(DESK, "/v1/authenticate", json!({ "challengeNonce": NONCE }));
    assert_eq!(r.status, 200, "{}", r.text());
    agent.answer(&["pin 9999"]);
    let r = post(DESK, "/v1/authenticate", json!({ "challengeNonce": NONCE }));
    assert_eq!(r.error_code().as_deref(), Some("wrong-pin"), "{}", r.text());
    agent.answer(&["pin 2222"]);
    let r = post(
        DESK,
        "/v1/sign",
        json!({ "certificate": sign_certificate, "hash": B64.encode([7u8; 32]), "hashFunction": "SHA-256" }),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    // Another site, even while a card is in.
    let r = post(
        OTHER,
        "/v1/certificate",
        json!({ "type": "authentication" }),
    );
    assert_eq!(r.error_code().as_deref(), Some("origin-not-allowed"));
    card.remove();
    wait_for_card(&context, &contact.reader_name(), false);

    // A travel document (eMRTD) at the other reader.
    let chip = eid_hardware_mocks::emrtd::build(Profile::Pace.name())
        .unwrap()
        .unwrap();
    let mut chip = VpcdCard::attach(contactless.addr(), chip).unwrap();
    wait_for_card(&context, &contactless.reader_name(), true);
    let s2 = session_in(&contactless.reader_name());
    let r = post(
        DESK,
        "/v1/emrtd/read",
        json!({ "can": passport.can.unwrap(), "challengeNonce": NONCE, "reader": contactless.reader_name() }),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    chip.remove();
    wait_for_card(&context, &contactless.reader_name(), false);

    // Closing time: SIGTERM, and the agent's last line.
    let dir = agent.audit_dir();
    let key = agent.audit_key();
    let pid = agent.pid().unwrap();
    Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    let show = || -> Vec<Value> {
        let out = run(&["audit", "show", "--dir", dir.to_str().unwrap(), "--json"]);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    let entries = loop {
        let entries = show();
        if entries
            .last()
            .is_some_and(|e| e["operation"] == "agent-stop")
        {
            break entries;
        }
        assert!(
            Instant::now() < deadline,
            "no agent-stop line: {entries:#?}\n{}",
            agent.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    };

    // The log verifies, across files.
    let (code, report) = verify(&dir, &key);
    assert_eq!(code, Some(0), "{report}");
    assert!(report["files"].as_u64().unwrap() >= 2, "{report}");
    assert_eq!(report["entries"], entries.len() as u64);

    // The day, in order (lines this test does not know, e.g. a reader added, are skipped).
    let expected: [(&str, &str, Option<&str>, Option<&str>); 11] = [
        ("agent-start", "ok", None, None),
        ("session-start", "ok", None, Some(&s1)),
        ("certificate", "ok", Some("citizen-card"), Some(&s1)),
        ("identity", "ok", Some("citizen-card"), Some(&s1)),
        ("authenticate", "ok", Some("citizen-card"), Some(&s1)),
        ("authenticate", "wrong-pin", None, Some(&s1)),
        ("sign", "ok", Some("citizen-card"), Some(&s1)),
        ("session-end", "card-removed", None, Some(&s1)),
        ("session-start", "ok", None, Some(&s2)),
        ("emrtd-read", "ok", Some(document_kind), Some(&s2)),
        ("session-end", "card-removed", None, Some(&s2)),
    ];
    let mut at = 0;
    let mut found = Vec::new();
    for e in &entries {
        assert_eq!(e["desk"], "loja-auditoria-01");
        if let Some((op, result, kind, session)) = expected.get(at)
            && e["operation"] == *op
            && e["result"] == *result
        {
            if kind.is_some() {
                assert_eq!(e["documentType"].as_str(), *kind, "{e}");
                assert_eq!(e["documentHash"].as_str().map(str::len), Some(64), "{e}");
            }
            assert_eq!(e["session"].as_str(), *session, "{e}");
            if *op != "agent-start" && *op != "session-start" && *op != "session-end" {
                assert_eq!(e["origin"], DESK, "{e}");
            }
            found.push(e.clone());
            at += 1;
        }
    }
    assert_eq!(
        at,
        expected.len(),
        "missing {:?} in {entries:#?}",
        expected.get(at)
    );
    // The refused origin is there too.
    assert!(
        entries
            .iter()
            .any(|e| e["origin"] == OTHER && e["result"] == "origin-not-allowed"),
        "{entries:#?}"
    );
    assert_eq!(entries.last().unwrap()["operation"], "agent-stop");
    // The hashes are of the right numbers (checked with the key): the identity's document
    // number, the passport's DG1 number.
    let keys = eid_agent::audit::keys::load(&key, false).unwrap();
    assert_eq!(
        found[3]["documentHash"],
        keys.document_hash("93333333 3 ZZ3").unwrap()
    );
    assert_eq!(
        found[9]["documentHash"],
        keys.document_hash(passport.document_number).unwrap()
    );
    // One card, one pseudonym for its certificate operations.
    assert_eq!(found[2]["documentHash"], found[4]["documentHash"]);
    assert_eq!(found[2]["documentHash"], found[6]["documentHash"]);

    // Nothing of the citizens anywhere in the log directory.
    for file in fs::read_dir(&dir).unwrap() {
        let path = file.unwrap().path();
        let text = String::from_utf8_lossy(&fs::read(&path).unwrap()).into_owned();
        for secret in secrets {
            assert!(!text.contains(secret), "{secret} in {}", path.display());
        }
    }
}
