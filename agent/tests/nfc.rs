//! NFC readers in the agent, end to end: the real `eid-agent` binary, the real libnfc
//! (pn532_uart driver) and the emulated PN532 on a pseudo-terminal holding a virtual eMRTD.
//!
//! Every test runs on a machine without pcscd as far as the agent can tell:
//! `PCSCLITE_CSOCK_NAME` points at a socket that does not exist (as agent/tests/doctor.rs does),
//! so what is shown is that NFC needs no pcscd. The machine's pcscd and its readers are never
//! touched, and each test has its own emulated reader: they need no lock.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use eid_hardware_mocks::emrtd::profile::{self, Profile};
use eid_hardware_mocks::emrtd::trust::trust;
use eid_hardware_mocks::pn532::{Pn532Emulator, Pn532Handle, Pn532Options};
use eid_protocols::pa::CscaStore;
use eid_protocols::webeid::{EmrtdResult, EmrtdValidator};
use eid_tests::agent::{Agent, AgentOptions, KioskOptions};
use eid_tests::cli;
use eid_tests::https::{EventStream, Request};
use serde_json::{Value, json};

const AGENT: &str = env!("CARGO_BIN_EXE_eid-agent");
const RP: &str = "https://rp.example";
const OTHER: &str = "https://other.example";
const DESK: &str = "https://desk.example";
const NONCE: &str = "c7mD6hB9L3Zxq2o4yWm0n8pVt1sR5uEaKbJdFgHiQwE=";
const NO_HANG: Duration = Duration::from_secs(60);

/// A socket path where no pcscd listens.
fn no_pcscd(name: &str) -> String {
    std::env::temp_dir()
        .join(format!(
            "eid-nfc-test-{}-{name}-no-pcscd",
            std::process::id()
        ))
        .display()
        .to_string()
}

fn emulator(p: Profile) -> Pn532Handle {
    Pn532Emulator::spawn(Some(profile::card(p).unwrap()), Pn532Options::default())
        .expect("emulated PN532")
}

fn reader_name(emulator: &Pn532Handle) -> String {
    format!("NFC {}", emulator.connstring())
}

/// A configuration directory whose agent.toml says `toml`.
fn config_dir(name: &str, toml: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("eid-nfc-test-{}-{name}-config", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("agent.toml"), toml).unwrap();
    dir
}

fn readers_command(name: &str, config: &PathBuf, json: bool) -> Command {
    let mut command = Command::new(AGENT);
    command.arg("readers");
    if json {
        command.arg("--json");
    }
    command
        .arg("--config-dir")
        .arg(config)
        .env("PCSCLITE_CSOCK_NAME", no_pcscd(name))
        .env_remove("EID_NFC_DEVICES")
        .env("EID_LOG", "warn");
    command
}

fn nfc_devices_toml(emulator: &Pn532Handle) -> String {
    format!("nfc_devices = [{:?}]\n", emulator.connstring())
}

/// `eid-agent readers` on a machine without pcscd: the NFC reader of agent.toml's
/// `nfc_devices` is listed with its card, recognised through the real libnfc, and pcscd's
/// absence is a note, not the command's failure.
#[test]
fn readers_lists_the_configured_nfc_reader_without_pcscd() {
    let emulator = emulator(Profile::Pace);
    let config = config_dir("readers-config", &nfc_devices_toml(&emulator));
    let out = cli::run_bounded(
        readers_command("readers-config", &config, true),
        "",
        NO_HANG,
    );
    assert!(
        out.status.success(),
        "{:?}: {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let json = cli::json(&out);
    let readers = json["readers"].as_array().unwrap();
    assert_eq!(readers.len(), 1, "{json}");
    let reader = &readers[0];
    assert_eq!(reader["name"], reader_name(&emulator).as_str());
    assert_eq!(reader["transport"], "nfc");
    assert_eq!(reader["card_present"], true, "{reader}");
    assert_eq!(reader["card"]["kind"]["id"], "emrtd", "{reader}");
    assert!(emulator.apdu_count() > 0, "the card was talked to");
    let notes = json["notes"].as_array().unwrap();
    assert_eq!(notes.len(), 1, "{json}");
    assert_eq!(notes[0]["code"], "pcscd-not-running", "{json}");

    // In words: the listing on stdout, pcscd's problem once on stderr.
    let out = cli::run_bounded(
        readers_command("readers-config", &config, false),
        "",
        NO_HANG,
    );
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stdout.contains(&reader_name(&emulator)), "{stdout}");
    assert_eq!(
        stderr.matches("note: PC/SC readers not listed").count(),
        1,
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&config);
}

/// `EID_NFC_DEVICES` adds to agent.toml; without any NFC reader, no pcscd is the error it was.
#[test]
fn readers_takes_the_environment_too_and_fails_without_any_reader() {
    let emulator = emulator(Profile::Bac);
    let config = config_dir("readers-env", "");
    let mut command = readers_command("readers-env", &config, true);
    command.env("EID_NFC_DEVICES", emulator.connstring());
    let out = cli::run_bounded(command, "", NO_HANG);
    assert!(out.status.success(), "{out:?}");
    let json = cli::json(&out);
    assert_eq!(json["readers"][0]["name"], reader_name(&emulator).as_str());
    assert_eq!(json["readers"][0]["transport"], "nfc");

    let out = cli::run_bounded(readers_command("readers-env", &config, true), "", NO_HANG);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert_eq!(cli::json(&out)["error"]["code"], "pcscd-not-running");

    // A connection string that is not one is refused by the agent (`run` reads the same file).
    let bad = config_dir("readers-bad", "nfc_devices = [\"/dev/ttyUSB0\"]\n");
    let mut run = Command::new(AGENT);
    run.args(["run", "--port", "0", "--no-tray", "--config-dir"])
        .arg(&bad)
        .env("PCSCLITE_CSOCK_NAME", no_pcscd("readers-bad"));
    let out = cli::run_bounded(run, "", NO_HANG);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("nfc_devices") && stderr.contains("/dev/ttyUSB0"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&config);
    let _ = std::fs::remove_dir_all(&bad);
}

fn store() -> CscaStore {
    let mut store = CscaStore::new();
    store
        .add_certificates(&trust().unwrap().csca.cert_der().unwrap())
        .unwrap();
    store
}

/// Waits until `/v1/status` (as `origin`) shows `reader` with a recognised card; returns it.
fn wait_for_nfc_card(agent: &Agent, origin: &str, reader: &str) -> Value {
    let client = agent.client();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = client
            .send(&Request::get("/v1/status").origin(origin))
            .unwrap()
            .json();
        if let Some(r) = status["readers"]
            .as_array()
            .and_then(|rs| rs.iter().find(|r| r["name"] == reader))
            && !r["card"].is_null()
        {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "no card seen in {reader}: {status}\n{}",
            agent.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The next event named `name` (others are skipped), within 20 s.
fn next_named(events: &mut EventStream, name: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Some((event, data)) = events.next_event(Duration::from_secs(1))
            && event == name
        {
            return serde_json::from_str(&data).unwrap();
        }
    }
    panic!("no {name} event");
}

fn agent_without_pcscd(name: &str, emulator: &Pn532Handle, options: AgentOptions) -> Agent {
    let options = AgentOptions {
        agent_toml: format!("{}{}", options.agent_toml, nfc_devices_toml(emulator)),
        env: vec![("PCSCLITE_CSOCK_NAME".into(), no_pcscd(name))],
        ..options
    };
    Agent::start(AGENT.as_ref(), &options)
}

/// The bridge on an NFC-only machine: the reader of `nfc_devices` is in `/v1/status`
/// (transport `nfc`, interface `contactless`), an eMRTD read with the page's CAN goes through
/// libnfc and the emulated PN532 and passes the relying party's own validation, and taking the
/// card away is announced.
#[test]
fn bridge_reads_an_emrtd_over_nfc_without_pcscd() {
    let emulator = emulator(Profile::Pace);
    let name = reader_name(&emulator);
    let agent = agent_without_pcscd(
        "bridge",
        &emulator,
        AgentOptions {
            allow: vec![RP.into()],
            ..AgentOptions::default()
        },
    );
    let status = wait_for_nfc_card(&agent, RP, &name);
    assert_eq!(status["smartCardService"], false, "{status}");
    let readers = status["readers"].as_array().unwrap();
    assert_eq!(readers.len(), 1, "{status}");
    let reader = &readers[0];
    assert_eq!(reader["transport"], "nfc", "{reader}");
    assert_eq!(reader["interface"], "contactless", "{reader}");
    assert_eq!(reader["cardPresent"], true, "{reader}");
    assert_eq!(reader["card"]["id"], "emrtd", "{reader}");

    let mut events = agent
        .client()
        .connect()
        .open_events(&Request::get("/v1/events").origin(RP))
        .unwrap();
    let before = emulator.apdu_count();
    let can = Profile::Pace.document().can.unwrap();
    let response = agent
        .client()
        .send(
            &Request::post("/v1/emrtd/read")
                .origin(RP)
                .json(&json!({ "can": can, "dataGroups": [1, 2], "challengeNonce": NONCE })),
        )
        .unwrap();
    assert_eq!(response.status, 200, "{}\n{}", response.text(), agent.log());
    assert!(
        emulator.apdu_count() > before + 10,
        "the read went through the emulated PN532"
    );
    let result = EmrtdResult::parse(&response.body).unwrap();
    assert!(result.data_groups.contains_key("2"), "photo DG asked for");
    let now = time::OffsetDateTime::now_utc();
    let validator = EmrtdValidator::new(store(), RP).unwrap();
    let document = validator.validate(&result, NONCE, now).unwrap();
    assert!(document.active_authentication);
    assert_eq!(
        document.document.document_number,
        Profile::Pace.document().document_number
    );
    // Bound to this site: another one's validator refuses it.
    let other = EmrtdValidator::new(store(), OTHER).unwrap();
    assert!(other.validate(&result, NONCE, now).is_err());
    assert!(!agent.log().contains(can), "CAN in the log");

    emulator.remove();
    let removed = next_named(&mut events, "card-removed");
    assert_eq!(removed["reader"], name.as_str(), "{removed}");
    let status = agent
        .client()
        .send(&Request::get("/v1/status").origin(RP))
        .unwrap()
        .json();
    assert_eq!(status["readers"][0]["cardPresent"], false, "{status}");
    let stopped = agent.terminate(Duration::from_secs(10)).expect("stopped");
    assert!(stopped.success(), "{stopped}");
}

/// A kiosk desk with only an NFC reader: the idle timeout ends the session and resets the card
/// (its field goes off: the chip forgets the application and the PACE session it had), and
/// that reset is not mistaken for a new card: no new session starts until the card is put
/// back.
#[test]
fn kiosk_idle_timeout_resets_the_nfc_card_and_ends_its_session() {
    let emulator = emulator(Profile::Pace);
    let name = reader_name(&emulator);
    let fresh = profile::card(Profile::Pace).unwrap().core().current_df();
    let agent = agent_without_pcscd(
        "kiosk",
        &emulator,
        AgentOptions {
            kiosk: Some(KioskOptions {
                desk: "loja-nfc-01".into(),
                origins: vec![DESK.into()],
                idle_timeout_secs: Some(2),
                ..KioskOptions::default()
            }),
            ..AgentOptions::default()
        },
    );
    let status = wait_for_nfc_card(&agent, DESK, &name);
    let session = status["readers"][0]["session"].as_str().unwrap().to_owned();
    let mut events = agent
        .client()
        .connect()
        .open_events(&Request::get("/v1/events").origin(DESK))
        .unwrap();
    let can = Profile::Pace.document().can.unwrap();
    let response = agent
        .client()
        .send(
            &Request::post("/v1/emrtd/read")
                .origin(DESK)
                .json(&json!({ "can": can, "challengeNonce": NONCE })),
        )
        .unwrap();
    assert_eq!(response.status, 200, "{}\n{}", response.text(), agent.log());
    assert_eq!(response.json()["session"], session.as_str());
    // The read left the chip inside the eMRTD application.
    let selected = emulator.with_card(|c| c.core().current_df()).unwrap();
    assert_ne!(selected, fresh, "the read selected the eMRTD application");

    let ended = next_named(&mut events, "session-ended");
    assert_eq!(ended["reader"], name.as_str(), "{ended}");
    assert_eq!(ended["session"], session.as_str(), "{ended}");
    assert_eq!(ended["reason"], "idle-timeout", "{ended}");
    // Reset: the field went off and the chip is as freshly powered.
    let deadline = Instant::now() + Duration::from_secs(10);
    while emulator.with_card(|c| c.core().current_df()).unwrap() != fresh {
        assert!(
            Instant::now() < deadline,
            "the card was not reset\n{}",
            agent.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // The reset is not a new card: the card stays without a session (several polls later).
    std::thread::sleep(Duration::from_millis(1500));
    let status = agent
        .client()
        .send(&Request::get("/v1/status").origin(DESK))
        .unwrap()
        .json();
    let reader = &status["readers"][0];
    assert_eq!(reader["cardPresent"], true, "{status}");
    assert!(
        reader["session"].is_null(),
        "a session after the reset: {status}"
    );
    let refused = agent
        .client()
        .send(
            &Request::post("/v1/emrtd/read")
                .origin(DESK)
                .json(&json!({ "can": can, "challengeNonce": NONCE })),
        )
        .unwrap();
    assert_eq!(
        refused.error_code().as_deref(),
        Some("session-ended"),
        "{}",
        refused.text()
    );
    // Put back: a new session, and reads work again.
    emulator.remove();
    next_named(&mut events, "card-removed");
    assert!(emulator.reinsert());
    let inserted = next_named(&mut events, "card-inserted");
    assert_eq!(inserted["reader"], name.as_str());
    let new_session = inserted["session"].as_str().unwrap();
    assert_ne!(new_session, session);
}
