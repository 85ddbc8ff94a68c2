//! The `eid-enrolment` command line: configuration errors are found before listening and said
//! plainly; `operator add`, `bindings list`, `outbox`; a clean stop on SIGTERM.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use eid_tests::cli::run_bounded;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_eid-enrolment"))
}

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("eid-enrolment-cli-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn run(cmd: Command, stdin: &str) -> Output {
    run_bounded(cmd, stdin, Duration::from_secs(60))
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn card_root(dir: &Path) -> PathBuf {
    let built = eid_hardware_mocks::pteid::cc2::cc2_default().unwrap();
    let path = dir.join("root.pem");
    std::fs::write(&path, built.pki.root.to_pem().unwrap()).unwrap();
    path
}

fn serve(dir: &Path, extra: &[&str]) -> Command {
    let mut c = bin();
    c.arg("serve")
        .args(["--listen", "127.0.0.1:0", "--fast-pin-hash"])
        .arg("--data-dir")
        .arg(dir.join("data"))
        .args(extra);
    c
}

#[test]
fn configuration_errors_are_reported_before_listening() {
    let dir = temp_dir("config");
    let root = card_root(&dir);
    let outbox = dir.join("outbox.jsonl");
    let root_s = root.to_str().unwrap();
    let outbox_s = outbox.to_str().unwrap();
    for (args, expected) in [
        (vec!["--outbox", outbox_s], "--card-trust is required"),
        (
            vec![
                "--outbox",
                outbox_s,
                "--card-trust",
                "/nonexistent/root.pem",
            ],
            "/nonexistent/root.pem",
        ),
        (
            vec![
                "--outbox",
                outbox_s,
                "--card-trust",
                root_s,
                "--origin",
                "http://enrol.example",
            ],
            "--origin",
        ),
        (
            vec![
                "--outbox",
                outbox_s,
                "--card-trust",
                root_s,
                "--origin",
                "https://enrol.example/path",
            ],
            "--origin",
        ),
        (
            vec!["--card-trust", root_s],
            "no way to deliver one-time codes",
        ),
        (
            vec![
                "--outbox",
                outbox_s,
                "--card-trust",
                root_s,
                "--csca",
                "/nonexistent/csca",
            ],
            "--csca",
        ),
        (
            vec![
                "--outbox",
                outbox_s,
                "--card-trust",
                root_s,
                "--bridge-url",
                "https://127.0.0.1:24180/v1/",
            ],
            "--bridge-url",
        ),
    ] {
        let out = run(serve(&dir, &args), "");
        assert!(!out.status.success(), "{args:?} started");
        assert!(
            stderr(&out).contains(expected),
            "{args:?}: {}",
            stderr(&out)
        );
        assert!(out.stdout.is_empty(), "{args:?} printed a listening line");
    }
    // The development outbox shows the codes to whoever loads its page: loopback only.
    let mut c = bin();
    c.arg("serve")
        .args([
            "--listen",
            "0.0.0.0:0",
            "--fast-pin-hash",
            "--outbox",
            outbox_s,
        ])
        .args(["--card-trust", root_s])
        .arg("--data-dir")
        .arg(dir.join("data"));
    let out = run(c, "");
    assert!(!out.status.success(), "--outbox on 0.0.0.0 started");
    assert!(
        stderr(&out).contains("loopback address"),
        "{}",
        stderr(&out)
    );
    // A text file as the trust anchors.
    let junk = dir.join("junk.pem");
    std::fs::write(&junk, "not a certificate").unwrap();
    let out = run(
        serve(
            &dir,
            &["--outbox", outbox_s, "--card-trust", junk.to_str().unwrap()],
        ),
        "",
    );
    assert!(!out.status.success());
    assert!(stderr(&out).contains("junk.pem"), "{}", stderr(&out));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn operators_bindings_and_outbox_commands() {
    let dir = temp_dir("commands");
    let db = format!("sqlite:{}", dir.join("e.sqlite").display());
    // A short password is refused; the password is never an argument.
    let mut c = bin();
    c.args([
        "operator",
        "add",
        "alice",
        "--password-stdin",
        "--database",
        &db,
    ]);
    let out = run(c, "short\n");
    assert!(!out.status.success());
    assert!(stderr(&out).contains("at least"), "{}", stderr(&out));
    let mut c = bin();
    c.args(["operator", "add", "alice", "--database", &db]);
    let out = run(c, "");
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--password-stdin"));
    let mut c = bin();
    c.args([
        "operator",
        "add",
        "al ice",
        "--password-stdin",
        "--database",
        &db,
    ]);
    assert!(!run(c, "long enough password\n").status.success());
    let mut c = bin();
    c.args([
        "operator",
        "add",
        "alice",
        "--password-stdin",
        "--database",
        &db,
    ]);
    let out = run(c, "long enough password\n");
    assert!(out.status.success(), "{}", stderr(&out));

    let mut c = bin();
    c.args(["bindings", "list", "--json", "--database", &db]);
    let out = run(c, "");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(eid_tests::cli::json(&out), serde_json::json!([]));
    let mut c = bin();
    c.args(["bindings", "list", "--database", &db]);
    let out = run(c, "");
    assert!(String::from_utf8_lossy(&out.stdout).contains("no bindings"));

    let mut c = bin();
    c.args(["outbox", "--file"]).arg(dir.join("none.jsonl"));
    let out = run(c, "");
    assert!(out.status.success(), "{}", stderr(&out));
    let _ = std::fs::remove_dir_all(&dir);
}

#[cfg(unix)]
#[test]
fn sigterm_stops_the_service_cleanly() {
    let dir = temp_dir("sigterm");
    let root = card_root(&dir);
    let port_file = dir.join("port");
    let mut cmd = serve(
        &dir,
        &[
            "--card-trust",
            root.to_str().unwrap(),
            "--outbox",
            dir.join("o.jsonl").to_str().unwrap(),
            "--port-file",
            port_file.to_str().unwrap(),
        ],
    );
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port: u16 = std::fs::read_to_string(&port_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(
        line.trim(),
        format!(
            "eid-enrolment: listening on https://localhost:{port}/ (origin https://localhost:{port})"
        )
    );
    assert!(dir.join("data/tls/cert.pem").exists());
    assert!(dir.join("data/enrolment.sqlite").exists());
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            assert!(s.success(), "exit status {s}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "still running");
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = std::fs::remove_dir_all(&dir);
}
