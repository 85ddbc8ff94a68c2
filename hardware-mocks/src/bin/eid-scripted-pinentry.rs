//! `eid-scripted-pinentry`: a pinentry program for tests, like the scripted pinentries of
//! GnuPG's test suite. It speaks the pinentry Assuan protocol on stdin/stdout, as pinentry-gnome3
//! or pinentry-curses do, and answers from a script instead of a user.
//!
//! Environment:
//! - `EID_PINENTRY_SCRIPT`: a file with one action per line, taken by GETPIN and CONFIRM from
//!   the top, across program runs (the file is rewritten under a lock, so concurrent prompts
//!   take distinct lines). Blank lines and lines starting with `#` are skipped. Actions:
//!   - `pin <text>`: GETPIN answers `<text>` (everything after `pin `, kept as is);
//!     `pin <text> delay=<ms>` answers after `<ms>` milliseconds;
//!   - `ok` / `notok` / `cancel`: CONFIRM answers OK / the third button (`GPG_ERR_NOT_CONFIRMED`)
//!     / Cancel (`GPG_ERR_CANCELED`); `cancel` also cancels GETPIN;
//!   - `timeout`: the pinentry's own timeout passed (`GPG_ERR_TIMEOUT`);
//!   - `err <code> <text>`: answers `ERR <code> <text>`;
//!   - `delay <ms>`: waits, then acts on the next line (taken together with this one);
//!   - `hang`: never answers (the client has to kill the program);
//!   - `exit`: exits without answering.
//!
//!   No script, or no line left: Cancel.
//! - `EID_PINENTRY_LOG`: a file where each GETPIN and CONFIRM is appended as one JSON line:
//!   `{"cmd","title","desc","prompt","error","ok","notok","cancel","timeout","action","pid",
//!   "start_ms","env"}` (`start_ms`: when the dialog opened, Unix milliseconds)
//!   (the texts as the user would see them, unescaped; `env`: the names of the variables the
//!   program got), so tests can check what the user was shown.
//! - `EID_PINENTRY_LEGACY=1`: behave like a pinentry older than 0.7.6: no SETNOTOK, and Cancel
//!   answers `GPG_ERR_NOT_CONFIRMED`.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// libgpg-error values with the pinentry error source (5 << 24).
const ERR_TIMEOUT: u32 = (5 << 24) | 62;
const ERR_CANCELED: u32 = (5 << 24) | 99;
const ERR_NOT_CONFIRMED: u32 = (5 << 24) | 114;
const ERR_UNKNOWN_COMMAND: u32 = (5 << 24) | 275;
const ERR_LINE_TOO_LONG: u32 = (5 << 24) | 263;

const MAX_LINE: u64 = 1002;

fn main() {
    let stdin = std::io::stdin();
    let mut input = BufReader::new(stdin.lock());
    let mut out = std::io::stdout().lock();
    let mut state = State {
        legacy: std::env::var("EID_PINENTRY_LEGACY").is_ok_and(|v| v == "1"),
        ..State::default()
    };
    if reply(&mut out, "OK Pleased to meet you").is_err() {
        return;
    }
    let mut line = Vec::new();
    loop {
        line.clear();
        match (&mut input).take(MAX_LINE + 1).read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        if line.last() != Some(&b'\n') {
            let _ = reply(&mut out, &format!("ERR {ERR_LINE_TOO_LONG} Line too long"));
            return;
        }
        line.pop();
        let text = String::from_utf8_lossy(&line).into_owned();
        let (verb, arg) = text.split_once(' ').unwrap_or((&text, ""));
        let answer = state.command(&verb.to_ascii_uppercase(), arg);
        let written = match answer {
            Answer::Lines(lines) => lines.iter().try_for_each(|l| reply(&mut out, l)),
            Answer::Bye => {
                let _ = reply(&mut out, "OK closing connection");
                return;
            }
            Answer::Exit => return,
        };
        if written.is_err() {
            return;
        }
    }
}

fn reply(out: &mut impl Write, line: &str) -> std::io::Result<()> {
    out.write_all(line.as_bytes())?;
    out.write_all(b"\n")?;
    out.flush()
}

enum Answer {
    Lines(Vec<String>),
    Bye,
    Exit,
}

fn ok() -> Answer {
    Answer::Lines(vec!["OK".into()])
}

fn err(code: u32, text: &str) -> Answer {
    Answer::Lines(vec![format!("ERR {code} {text} <Pinentry>")])
}

#[derive(Default)]
struct State {
    legacy: bool,
    texts: BTreeMap<&'static str, String>,
}

impl State {
    fn command(&mut self, verb: &str, arg: &str) -> Answer {
        let field = match verb {
            "SETTITLE" => Some("title"),
            "SETDESC" => Some("desc"),
            "SETPROMPT" => Some("prompt"),
            "SETERROR" => Some("error"),
            "SETOK" => Some("ok"),
            "SETCANCEL" => Some("cancel"),
            "SETNOTOK" if !self.legacy => Some("notok"),
            "SETTIMEOUT" => Some("timeout"),
            _ => None,
        };
        if let Some(field) = field {
            self.texts.insert(field, unescape(arg));
            return ok();
        }
        match verb {
            "OPTION" | "SETKEYINFO" | "SETREPEAT" | "SETQUALITYBAR" | "RESET" | "NOP" => ok(),
            "GETINFO" => match arg {
                "version" => Answer::Lines(vec!["D 1.2.1".into(), "OK".into()]),
                "flavor" => Answer::Lines(vec!["D scripted".into(), "OK".into()]),
                "pid" => Answer::Lines(vec![format!("D {}", std::process::id()), "OK".into()]),
                _ => err(ERR_UNKNOWN_COMMAND, "Unknown IPC command"),
            },
            "GETPIN" | "CONFIRM" => {
                let action = take_action();
                log(verb, &self.texts, &action);
                // SETERROR shows once.
                self.texts.remove("error");
                self.act(verb, &action)
            }
            "MESSAGE" => ok(),
            "BYE" => Answer::Bye,
            _ => err(ERR_UNKNOWN_COMMAND, "Unknown IPC command"),
        }
    }

    fn act(&self, verb: &str, action: &str) -> Answer {
        let mut action = action;
        // `delay <ms>` came with the line after it.
        if let Some(rest) = action.strip_prefix("delay ") {
            let (ms, next) = rest.split_once('\n').unwrap_or((rest, "cancel"));
            sleep_ms(ms);
            action = next;
        }
        let cancel = || {
            if self.legacy && verb == "CONFIRM" {
                err(ERR_NOT_CONFIRMED, "Not confirmed")
            } else {
                err(ERR_CANCELED, "Operation cancelled")
            }
        };
        let (word, rest) = action.split_once(' ').unwrap_or((action, ""));
        match (verb, word) {
            ("GETPIN", "pin") => {
                let pin = match rest.rsplit_once(" delay=") {
                    Some((pin, ms)) if ms.bytes().all(|b| b.is_ascii_digit()) => {
                        sleep_ms(ms);
                        pin
                    }
                    _ => rest,
                };
                Answer::Lines(vec![format!("D {}", escape(pin)), "OK".into()])
            }
            ("CONFIRM", "ok") => ok(),
            ("CONFIRM", "notok") if !self.legacy => err(ERR_NOT_CONFIRMED, "Not confirmed"),
            (_, "timeout") => err(ERR_TIMEOUT, "Timeout"),
            (_, "err") => {
                let (code, text) = rest.split_once(' ').unwrap_or((rest, ""));
                Answer::Lines(vec![format!("ERR {code} {text}")])
            }
            (_, "hang") => loop {
                std::thread::sleep(Duration::from_secs(3600));
            },
            (_, "exit") => Answer::Exit,
            _ => cancel(),
        }
    }
}

fn sleep_ms(ms: &str) {
    std::thread::sleep(Duration::from_millis(ms.trim().parse().unwrap_or(0)));
}

/// Takes the first action off the script (with the one after it, for `delay`).
fn take_action() -> String {
    let Some(script) = std::env::var_os("EID_PINENTRY_SCRIPT").map(PathBuf::from) else {
        return "cancel".into();
    };
    let Ok(_lock) = lock(&script) else {
        return "cancel".into();
    };
    let Ok(text) = std::fs::read_to_string(&script) else {
        return "cancel".into();
    };
    let mut lines = text.lines();
    let mut taken = Vec::new();
    for line in lines.by_ref() {
        let action = line.trim_end_matches('\r');
        if action.trim().is_empty() || action.starts_with('#') {
            continue;
        }
        taken.push(action.to_string());
        if !action.starts_with("delay ") {
            break;
        }
    }
    let rest: String = lines.map(|l| format!("{l}\n")).collect();
    if std::fs::write(&script, rest).is_err() {
        return "cancel".into();
    }
    if taken.is_empty() {
        return "cancel".into();
    }
    taken.join("\n")
}

/// An exclusive lock on `<path>.lock`, held until the file is dropped.
fn lock(path: &Path) -> std::io::Result<File> {
    let mut name = path.as_os_str().to_owned();
    name.push(".lock");
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(PathBuf::from(name))?;
    file.lock()?;
    Ok(file)
}

fn log(verb: &str, texts: &BTreeMap<&'static str, String>, action: &str) {
    let Some(path) = std::env::var_os("EID_PINENTRY_LOG").map(PathBuf::from) else {
        return;
    };
    let mut record = serde_json::Map::new();
    record.insert("cmd".into(), verb.into());
    for field in [
        "title", "desc", "prompt", "error", "ok", "notok", "cancel", "timeout",
    ] {
        let value = texts
            .get(field)
            .map_or(serde_json::Value::Null, |t| t.as_str().into());
        record.insert(field.into(), value);
    }
    record.insert("action".into(), action.into());
    record.insert("pid".into(), std::process::id().into());
    // When the dialog opened (Unix milliseconds): tests check that dialogs never overlap.
    let start_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    record.insert("start_ms".into(), start_ms.into());
    let mut env: Vec<String> = std::env::vars_os()
        .filter_map(|(k, _)| k.into_string().ok())
        .collect();
    env.sort();
    record.insert("env".into(), env.into());
    let mut line = serde_json::Value::Object(record).to_string();
    line.push('\n');
    let Ok(_lock) = lock(&path) else {
        return;
    };
    if let Ok(mut file) = OpenOptions::new().create(true).append(true).open(&path) {
        let _ = file.write_all(line.as_bytes());
    }
}

/// Assuan percent-unescaping of a command argument (`%XX`; a bad escape stays as it is).
fn unescape(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let hex = bytes
            .get(i + 1..i + 3)
            .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
            .and_then(|h| std::str::from_utf8(h).ok());
        match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
            Some(v) if b == b'%' => {
                out.push(v);
                i += 3;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Assuan escaping of data: `%`, CR, LF.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '%' => out.push_str("%25"),
            '\r' => out.push_str("%0D"),
            '\n' => out.push_str("%0A"),
            c => out.push(c),
        }
    }
    out
}
