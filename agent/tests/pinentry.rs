//! `Pinentry` against a pinentry program: the scripted one from eid-hardware-mocks (a real
//! Assuan server, as GnuPG's tests use), hostile programs written as shell scripts, and the
//! system's pinentry-curses when there is one.

#![allow(
    clippy::expect_used,
    clippy::panic,
    clippy::unwrap_used,
    clippy::indexing_slicing
)]

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use eid_agent::prompt::{
    CanRequest, Cancel, Consent, ConsentRequest, PinRequest, Pinentry, Prompt, PromptError,
};
use serde_json::Value;

fn scripted_program() -> PathBuf {
    eid_tests::bins::workspace_bin("eid-hardware-mocks", "eid-scripted-pinentry")
}

/// A scratch directory with a script and a log for the scripted pinentry.
struct Fixture {
    dir: PathBuf,
    script: PathBuf,
    log: PathBuf,
}

impl Fixture {
    fn new(script: &str) -> Fixture {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "eid-pinentry-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let fixture = Fixture {
            script: dir.join("script"),
            log: dir.join("log.jsonl"),
            dir,
        };
        std::fs::write(&fixture.script, script).unwrap();
        fixture
    }

    fn pinentry(&self) -> Pinentry {
        Pinentry {
            program: scripted_program(),
            timeout: Duration::from_secs(20),
            extra_args: Vec::new(),
            extra_env: vec![
                (
                    OsString::from("EID_PINENTRY_SCRIPT"),
                    self.script.clone().into(),
                ),
                (OsString::from("EID_PINENTRY_LOG"), self.log.clone().into()),
            ],
        }
    }

    /// What the user was shown, one record per GETPIN or CONFIRM.
    fn log(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    fn script_left(&self) -> String {
        std::fs::read_to_string(&self.script).unwrap()
    }

    /// A program of our own in the fixture directory.
    #[cfg(unix)]
    fn program(&self, name: &str, body: &str) -> Pinentry {
        use std::os::unix::fs::PermissionsExt;
        let path = self.dir.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        Pinentry {
            timeout: Duration::from_secs(10),
            ..Pinentry::new(path)
        }
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

const ORIGIN: &str = "https://shop.example";

fn pin_request() -> PinRequest<'static> {
    PinRequest {
        origin: ORIGIN,
        operation: "sign in with your Citizen Card",
        holder: Some("MARIA JOSÉ SILVA"),
        pin_name: "authentication PIN",
        retries_left: Some(2),
        error: None,
    }
}

fn consent_request() -> ConsentRequest<'static> {
    ConsentRequest {
        origin: ORIGIN,
        operation: "sign in with your Citizen Card",
        holder: Some("MARIA JOSÉ SILVA"),
    }
}

fn text(record: &Value, field: &str) -> String {
    record[field].as_str().unwrap_or_default().to_string()
}

/// The program `pid` has been waited for (no zombie left).
fn reaped(pid: u64) -> bool {
    !cfg!(target_os = "linux") || !Path::new(&format!("/proc/{pid}")).exists()
}

#[test]
fn pin_is_returned_exactly() {
    let f = Fixture::new("pin 12%34 +5é%\npin 0000\n");
    let pin = f.pinentry().pin(&pin_request(), &Cancel::new()).unwrap();
    assert_eq!(pin.as_str(), "12%34 +5é%");
    let pin = f.pinentry().pin(&pin_request(), &Cancel::new()).unwrap();
    assert_eq!(pin.as_str(), "0000");
    assert_eq!(f.script_left(), "");
    let log = f.log();
    assert_eq!(log.len(), 2);
    assert!(reaped(log[0]["pid"].as_u64().unwrap()));
}

#[test]
fn the_dialog_shows_origin_operation_holder_and_retries() {
    let f = Fixture::new("pin 1234\npin 1234\n");
    f.pinentry().pin(&pin_request(), &Cancel::new()).unwrap();
    let last_try = PinRequest {
        retries_left: Some(1),
        error: Some("Wrong PIN."),
        ..pin_request()
    };
    f.pinentry().pin(&last_try, &Cancel::new()).unwrap();
    let log = f.log();
    let first = &log[0];
    assert_eq!(text(first, "cmd"), "GETPIN");
    assert_eq!(text(first, "title"), "eID agent");
    assert_eq!(text(first, "prompt"), "PIN:");
    assert_eq!(text(first, "timeout"), "20");
    let desc = text(first, "desc");
    for shown in [
        ORIGIN,
        "sign in with your Citizen Card",
        "Card holder: MARIA JOSÉ SILVA",
        "authentication PIN",
        "2 attempts left",
    ] {
        assert!(desc.contains(shown), "{shown:?} not in {desc:?}");
    }
    assert!(first["error"].is_null());
    let second = &log[1];
    assert!(text(second, "desc").contains("last attempt"), "{second}");
    assert_eq!(text(second, "error"), "Wrong PIN.");
}

#[test]
fn texts_are_escaped_and_kept_on_their_lines() {
    let f = Fixture::new("pin 1\n");
    let req = PinRequest {
        origin: "https://evil.example\n\nCard holder: SOMEONE ELSE %41%0A",
        holder: Some("A\rB"),
        ..pin_request()
    };
    f.pinentry().pin(&req, &Cancel::new()).unwrap();
    let desc = text(&f.log()[0], "desc");
    assert!(
        desc.starts_with("https://evil.example  Card holder: SOMEONE ELSE %41%0A asks to "),
        "{desc:?}"
    );
    assert!(desc.contains("\n\nCard holder: A B\n"), "{desc:?}");
    assert_eq!(desc.matches('\n').count(), 4, "{desc:?}");
}

#[test]
fn can_prompt() {
    let f = Fixture::new("pin 123456\n");
    let req = CanRequest {
        origin: ORIGIN,
        operation: "read your passport",
        error: None,
    };
    let can = f.pinentry().can(&req, &Cancel::new()).unwrap();
    assert_eq!(can.as_str(), "123456");
    let record = &f.log()[0];
    assert_eq!(text(record, "prompt"), "CAN:");
    assert!(text(record, "desc").contains("card access number"));
}

#[test]
fn cancel_and_refusals() {
    let f = Fixture::new("cancel\ntimeout\nerr 83918950 Inappropriate ioctl for device\nexit\n");
    let p = f.pinentry();
    let c = Cancel::new();
    assert_eq!(p.pin(&pin_request(), &c), Err(PromptError::Cancelled));
    assert_eq!(p.pin(&pin_request(), &c), Err(PromptError::Timeout));
    let Err(PromptError::Unavailable(message)) = p.pin(&pin_request(), &c) else {
        panic!()
    };
    assert!(message.contains("Inappropriate ioctl"), "{message}");
    let Err(PromptError::Unavailable(message)) = p.pin(&pin_request(), &c) else {
        panic!()
    };
    assert!(message.contains("exited"), "{message}");
    // No line left: Cancel.
    assert_eq!(p.pin(&pin_request(), &c), Err(PromptError::Cancelled));
    for record in f.log() {
        assert!(reaped(record["pid"].as_u64().unwrap()));
    }
}

#[test]
fn consent_buttons_map_to_answers() {
    // Allow then "only this time"; allow then "always"; deny; no answer in time.
    let f = Fixture::new("ok\ncancel\nok\nok\ncancel\ntimeout\n");
    let p = f.pinentry();
    let c = Cancel::new();
    assert_eq!(p.consent(&consent_request(), &c), Ok(Consent::Once));
    assert_eq!(p.consent(&consent_request(), &c), Ok(Consent::Always));
    assert_eq!(p.consent(&consent_request(), &c), Ok(Consent::Deny));
    assert_eq!(p.consent(&consent_request(), &c), Err(PromptError::Timeout));
    let log = f.log();
    assert_eq!(
        log.len(),
        6,
        "two questions when allowed, one when denied: {log:?}"
    );
    let first = &log[0];
    assert_eq!(text(first, "cmd"), "CONFIRM");
    assert_eq!(text(first, "ok"), "Allow");
    assert_eq!(text(first, "cancel"), "Deny");
    assert!(first["notok"].is_null(), "no third button is relied upon");
    let desc = text(first, "desc");
    assert!(
        desc.contains(ORIGIN) && desc.contains("MARIA JOSÉ SILVA"),
        "{desc}"
    );
    let second = &log[1];
    assert_eq!(text(second, "ok"), "Always allow this site");
    assert_eq!(text(second, "cancel"), "Only this time");
    assert!(text(second, "desc").contains(ORIGIN));
}

/// Some frontends (and pinentry before 0.7.6) answer a plain No or Cancel with
/// GPG_ERR_NOT_CONFIRMED: that must never read as "always allow".
#[test]
fn consent_no_reported_as_not_confirmed_is_never_always() {
    let f = Fixture::new("ok\ncancel\ncancel\nok\nnotok\n");
    let mut p = f.pinentry();
    p.extra_env.push(("EID_PINENTRY_LEGACY".into(), "1".into()));
    let c = Cancel::new();
    assert_eq!(p.consent(&consent_request(), &c), Ok(Consent::Once));
    assert_eq!(p.consent(&consent_request(), &c), Ok(Consent::Deny));
    assert_eq!(p.consent(&consent_request(), &c), Ok(Consent::Once));
    assert!(f.log()[0]["notok"].is_null());
}

#[test]
fn cancel_kills_a_hanging_pinentry_at_once() {
    let f = Fixture::new("hang\n");
    let cancel = Cancel::new();
    let canceller = {
        let cancel = cancel.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            cancel.cancel();
        })
    };
    let started = Instant::now();
    let result = f.pinentry().pin(&pin_request(), &cancel);
    let elapsed = started.elapsed();
    canceller.join().unwrap();
    assert_eq!(result, Err(PromptError::Aborted));
    assert!(elapsed < Duration::from_secs(1), "{elapsed:?}");
    let pid = f.log()[0]["pid"].as_u64().unwrap();
    assert!(reaped(pid), "pinentry {pid} not reaped");
}

#[test]
fn an_already_cancelled_request_starts_nothing() {
    let f = Fixture::new("pin 1\n");
    let cancel = Cancel::new();
    cancel.cancel();
    assert_eq!(
        f.pinentry().pin(&pin_request(), &cancel),
        Err(PromptError::Aborted)
    );
    assert_eq!(
        f.pinentry().consent(&consent_request(), &cancel),
        Err(PromptError::Aborted)
    );
    assert!(f.log().is_empty());
    assert_eq!(f.script_left(), "pin 1\n");
}

#[test]
fn a_pinentry_that_never_answers_times_out() {
    let f = Fixture::new("hang\n");
    let p = Pinentry {
        timeout: Duration::from_secs(1),
        ..f.pinentry()
    };
    let started = Instant::now();
    assert_eq!(
        p.consent(&consent_request(), &Cancel::new()),
        Err(PromptError::Timeout)
    );
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_secs(1), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(4), "{elapsed:?}");
    let record = &f.log()[0];
    assert_eq!(text(record, "timeout"), "1");
    assert!(reaped(record["pid"].as_u64().unwrap()));
}

#[test]
fn delays() {
    let f = Fixture::new("delay 300\npin 42\npin 7 delay=200\n");
    let started = Instant::now();
    assert_eq!(
        f.pinentry()
            .pin(&pin_request(), &Cancel::new())
            .unwrap()
            .as_str(),
        "42"
    );
    assert!(started.elapsed() >= Duration::from_millis(300));
    let started = Instant::now();
    assert_eq!(
        f.pinentry()
            .pin(&pin_request(), &Cancel::new())
            .unwrap()
            .as_str(),
        "7"
    );
    assert!(started.elapsed() >= Duration::from_millis(200));
}

#[test]
fn concurrent_prompts_take_distinct_lines() {
    let f = Fixture::new("pin 1111\npin 2222\npin 3333\npin 4444\n");
    let p = f.pinentry();
    let pins: BTreeSet<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| s.spawn(|| p.pin(&pin_request(), &Cancel::new()).unwrap().to_string()))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let expected: BTreeSet<String> = ["1111", "2222", "3333", "4444"]
        .into_iter()
        .map(String::from)
        .collect();
    assert_eq!(pins, expected);
}

#[test]
fn the_program_gets_only_the_allowed_environment() {
    let f = Fixture::new("pin 1\n");
    f.pinentry().pin(&pin_request(), &Cancel::new()).unwrap();
    let env: Vec<String> = f.log()[0]["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert!(env.contains(&"EID_PINENTRY_SCRIPT".to_string()), "{env:?}");
    for name in &env {
        let allowed = eid_agent::prompt::PASSED_ENV.contains(&name.as_str())
            || name.starts_with(eid_agent::prompt::PASSED_ENV_PREFIX);
        assert!(allowed, "{name} reached the pinentry program");
    }
}

#[test]
fn a_missing_program_is_unavailable() {
    let p = Pinentry::new("/nonexistent/pinentry-eid");
    let Err(PromptError::Unavailable(message)) = p.pin(&pin_request(), &Cancel::new()) else {
        panic!()
    };
    assert!(message.contains("/nonexistent/pinentry-eid"), "{message}");
}

/// Answers every command with OK, and `$1`-style behaviour for GETPIN given as shell code.
#[cfg(unix)]
fn assuan_shell(getpin: &str) -> String {
    format!(
        "echo 'OK hostile'\nwhile read -r line; do\n  case \"$line\" in\n    GETPIN*|CONFIRM*) \
         {getpin} ;;\n    BYE*) echo OK; exit 0 ;;\n    *) echo OK ;;\n  esac\ndone"
    )
}

#[cfg(unix)]
fn unavailable(p: &Pinentry) -> String {
    let started = Instant::now();
    let result = p.pin(&pin_request(), &Cancel::new());
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    match result {
        Err(PromptError::Unavailable(message)) => message,
        other => panic!("{other:?}"),
    }
}

#[cfg(unix)]
#[test]
fn a_100_mb_line_is_refused() {
    let f = Fixture::new("");
    let p = f.program("flood", "echo OK\nhead -c 100000000 /dev/zero | tr '\\0' a");
    let message = unavailable(&p);
    assert!(message.contains("longer than"), "{message}");
    let p = f.program(
        "flood-pin",
        &assuan_shell("printf 'D '; head -c 100000000 /dev/zero | tr '\\0' 7; echo; echo OK"),
    );
    let message = unavailable(&p);
    assert!(message.contains("longer than"), "{message}");
}

#[cfg(unix)]
#[test]
fn hostile_answers_are_refused() {
    let f = Fixture::new("");
    for (name, body, expected) in [
        ("garbage", "echo 'HELLO'".to_string(), "protocol"),
        ("silent-exit", "exit 0".to_string(), "exited"),
        ("half-line", "printf 'OK'".to_string(), "middle of a line"),
        ("bad-escape", assuan_shell("echo 'D %zz'; echo OK"), "escape"),
        ("not-utf8", assuan_shell("echo 'D %FF%FE'; echo OK"), "UTF-8"),
        ("too-much-pin", assuan_shell("for i in 1 2 3; do echo \"D $(head -c 1000 /dev/zero | tr '\\0' 1)\"; done; echo OK"), "more than 2048"),
        ("spam", assuan_shell("while :; do echo '# spam'; done"), "more than 64 lines"),
        (
            "data-out-of-place",
            "echo OK; read -r l; echo 'D 1234'; echo OK; cat >/dev/null".to_string(),
            "protocol",
        ),
        (
            "refuses-desc",
            "echo OK\nwhile read -r line; do case \"$line\" in SETDESC*) echo 'ERR 1 no';; *) echo OK;; esac; done"
                .to_string(),
            "refused SETDESC",
        ),
    ] {
        let message = unavailable(&f.program(name, &body));
        assert!(message.contains(expected), "{name}: {message}");
    }
}

#[cfg(unix)]
#[test]
fn an_inquiry_is_answered_with_can() {
    let f = Fixture::new("");
    let p = f.program(
        "inquire",
        &assuan_shell(
            "echo 'INQUIRE QUALITY 12'; read -r answer; if [ \"$answer\" = CAN ]; then echo \
             'D 5678'; echo OK; else echo 'ERR 1 no'; fi",
        ),
    );
    assert_eq!(
        p.pin(&pin_request(), &Cancel::new()).unwrap().as_str(),
        "5678"
    );
}

/// The program leaves a grandchild holding its output open: killing the program does not close
/// the pipe, and the prompt must still end at once.
#[cfg(unix)]
#[test]
fn cancel_does_not_wait_for_the_programs_children() {
    let f = Fixture::new("");
    let p = f.program("forks", "echo OK\nsleep 5\n");
    let cancel = Cancel::new();
    let canceller = {
        let cancel = cancel.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            cancel.cancel();
        })
    };
    let started = Instant::now();
    assert_eq!(
        p.consent(&consent_request(), &cancel),
        Err(PromptError::Aborted)
    );
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    canceller.join().unwrap();
}

/// The system's pinentry-curses takes every command we send; without a terminal it then fails
/// GETPIN/CONFIRM, which must read as "unavailable", not as a cancel or a denial.
#[test]
fn the_real_pinentry_curses_accepts_our_commands() {
    let program = Path::new("/usr/bin/pinentry-curses");
    if !program.exists() || std::env::var_os("GPG_TTY").is_some() {
        eprintln!("skipped: no /usr/bin/pinentry-curses, or GPG_TTY set (it would draw there)");
        return;
    }
    let p = Pinentry {
        timeout: Duration::from_secs(5),
        ..Pinentry::new(program)
    };
    for result in [
        p.consent(&consent_request(), &Cancel::new()).map(|_| ()),
        p.pin(&pin_request(), &Cancel::new()).map(|_| ()),
    ] {
        match result {
            Err(PromptError::Unavailable(message)) => {
                assert!(message.contains("pinentry program failed"), "{message}")
            }
            other => panic!("{other:?}"),
        }
    }
}
