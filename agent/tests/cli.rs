//! The `eid-agent` binary as a user runs it.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use eid_hardware_mocks::profiles::iso7816_test::{self as test_card, Variant};
use eid_hardware_mocks::vpcd::VpcdCard;
use eid_tests::{Slot, cli, pcscd_available, wait_for_card};

const AGENT: &str = env!("CARGO_BIN_EXE_eid-agent");

/// Runs the agent to completion, failing the test if it takes more than 10 s (a hang).
fn run_bounded(command: Command) -> Output {
    cli::run_bounded(command, "", Duration::from_secs(10))
}

#[test]
fn pcscd_not_running_is_a_typed_error_not_a_hang() {
    for sub in ["readers", "monitor"] {
        // pcsc-lite clients look for the daemon where PCSCLITE_CSOCK_NAME says: nobody is there.
        let mut cmd = Command::new(AGENT);
        cmd.args([sub, "--json"])
            .env("PCSCLITE_CSOCK_NAME", "/nonexistent/pcscd.comm");
        let out = run_bounded(cmd);
        assert_eq!(out.status.code(), Some(2), "{sub}: {out:?}");
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(json["error"]["code"], "pcscd-not-running", "{sub}");
        assert!(json["error"]["remedy"].as_str().unwrap().contains("pcscd"));

        let mut cmd = Command::new(AGENT);
        cmd.arg(sub)
            .env("PCSCLITE_CSOCK_NAME", "/nonexistent/pcscd.comm");
        let out = run_bounded(cmd);
        let text = String::from_utf8_lossy(&out.stderr);
        assert!(
            text.contains("the smart card service (pcscd) is not running"),
            "{text}"
        );
        assert!(text.contains("what to do:"), "{text}");
    }
}

#[test]
fn readers_lists_the_virtual_readers_and_recognises_the_card() {
    if !pcscd_available() {
        return;
    }
    let (slot, context) = Slot::acquire_empty();
    let card = test_card::card(Variant::Full).unwrap();
    let atr = eid_card::hex(card.atr());
    let _handle = VpcdCard::attach(slot.addr(), card).unwrap();
    wait_for_card(&context, &slot.reader_name(), true);

    let mut cmd = Command::new(AGENT);
    cmd.args(["readers", "--json"]);
    let out = run_bounded(cmd);
    assert!(out.status.success(), "{out:?}");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let readers = json["readers"].as_array().unwrap();
    let ours = readers
        .iter()
        .find(|r| r["name"] == slot.reader_name())
        .expect("our reader is listed");
    assert_eq!(ours["card_present"], true);
    assert_eq!(ours["atr"], atr.as_str());
    assert_eq!(ours["card"]["kind"]["id"], "iso7816-test");
}

/// Reads JSON lines from a running `eid-agent monitor --json` until `want` matches one.
fn expect_line(
    lines: &mpsc::Receiver<serde_json::Value>,
    want: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = lines
            .recv_timeout(left)
            .expect("monitor printed the expected event in time");
        if want(&line) {
            return line;
        }
    }
}

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn monitor_prints_insert_and_remove_as_they_happen() {
    if !pcscd_available() {
        return;
    }
    let (slot, _context) = Slot::acquire_empty();
    let reader = slot.reader_name();

    let mut child = Killed(
        Command::new(AGENT)
            .args(["monitor", "--json"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let stdout = child.0.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str(&line)
                && tx.send(v).is_err()
            {
                return;
            }
        }
    });
    expect_line(&rx, |v| {
        v["event"] == "reader-added" && v["reader"] == reader.as_str()
    });

    let card = test_card::card(Variant::Full).unwrap();
    let atr = eid_card::hex(card.atr());
    let mut handle = VpcdCard::attach(slot.addr(), card).unwrap();
    let inserted = expect_line(&rx, |v| {
        v["event"] == "card-inserted" && v["reader"] == reader.as_str()
    });
    assert_eq!(inserted["atr"], atr.as_str());
    handle.remove();
    expect_line(&rx, |v| {
        v["event"] == "card-removed" && v["reader"] == reader.as_str()
    });
}

#[test]
fn readers_reports_a_card_held_by_another_application_as_busy() {
    if !pcscd_available() {
        return;
    }
    let (slot, context) = Slot::acquire_empty();
    let _card = VpcdCard::attach(slot.addr(), test_card::card(Variant::Full).unwrap()).unwrap();
    wait_for_card(&context, &slot.reader_name(), true);
    let name = std::ffi::CString::new(slot.reader_name()).unwrap();
    let other = pcsc::Context::establish(pcsc::Scope::User).unwrap();
    let _held = other
        .connect(&name, pcsc::ShareMode::Exclusive, pcsc::Protocols::ANY)
        .unwrap();

    let mut cmd = Command::new(AGENT);
    cmd.args(["readers", "--json"]);
    let out = run_bounded(cmd);
    // The listing still works; the busy card is reported with its code and remedy.
    assert!(out.status.success(), "{out:?}");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let ours = json["readers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == slot.reader_name())
        .expect("our reader is listed")
        .clone();
    assert_eq!(ours["card_present"], true);
    assert!(ours["card"].is_null());
    assert_eq!(ours["card_error"]["code"], "card-busy");
    assert!(
        ours["card_error"]["remedy"]
            .as_str()
            .unwrap()
            .contains("other program")
    );
}

/// `run` with bad settings stops before listening, with the code and the setting named: a
/// non-loopback address, an unknown key in agent.toml, a policy entry that is not an origin.
#[test]
fn run_refuses_bad_configuration_before_listening() {
    let dir = std::env::temp_dir().join(format!("eid-agent-run-config-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let policy = dir.join("policy.toml");
    std::fs::write(&policy, "allow = []\ndeny = []\n").unwrap();
    let run = |extra: &[&str]| {
        let mut command = Command::new(AGENT);
        command
            .args(["run", "--json", "--port", "0", "--config-dir"])
            .arg(&dir)
            .arg("--policy")
            .arg(&policy)
            .args(extra);
        let out = run_bounded(command);
        assert_eq!(out.status.code(), Some(2), "{out:?}");
        cli::json(&out)
    };
    let remote = run(&["--listen", "192.0.2.1"]);
    assert_eq!(remote["error"]["code"], "config-invalid", "{remote}");
    assert!(
        remote["error"]["message"]
            .as_str()
            .unwrap()
            .contains("loopback")
    );

    std::fs::write(dir.join("agent.toml"), "port = 24180\npin_tries = 99\n").unwrap();
    let unknown = run(&[]);
    assert_eq!(unknown["error"]["code"], "config-invalid", "{unknown}");
    assert!(
        unknown["error"]["message"]
            .as_str()
            .unwrap()
            .contains("pin_tries")
    );
    std::fs::remove_file(dir.join("agent.toml")).unwrap();

    std::fs::write(&policy, "allow = [\"https://desk.example/path\"]\n").unwrap();
    let bad_policy = run(&[]);
    assert_eq!(
        bad_policy["error"]["code"], "config-invalid",
        "{bad_policy}"
    );
    assert!(
        bad_policy["error"]["message"]
            .as_str()
            .unwrap()
            .contains("desk.example")
    );
    // Nothing was created for a run that never started.
    assert!(!dir.join("tls").exists());
    let _ = std::fs::remove_dir_all(&dir);
}
