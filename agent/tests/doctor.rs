//! `eid-agent doctor` against real faults: each failure mode it claims to detect is injected for
//! real (pcscd unreachable, expired or foreign certificates, CA missing from NSS databases, the
//! port held by something else, broken configuration and browser policy, a stale autostart
//! entry), and the JSON must name the check, its status and a remedy; then the fault is repaired
//! and the same check must turn ok.
//!
//! Each test runs the real binary in its own temporary HOME, configuration directory and
//! `--root` (the system paths), so nothing of the machine is read or changed except pcscd,
//! which is only pointed away from (`PCSCLITE_CSOCK_NAME`), never stopped: other tests use it.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use eid_tests::agent::{Agent, AgentOptions};
use eid_tests::cli::run_bounded;
use serde_json::Value;
use time::OffsetDateTime;

const AGENT: &str = env!("CARGO_BIN_EXE_eid-agent");

/// A temporary HOME, configuration directory and system root.
struct Env {
    dir: PathBuf,
    home: PathBuf,
    config: PathBuf,
    root: PathBuf,
    /// `PCSCLITE_CSOCK_NAME` for doctor (default: a socket that does not exist, so tests that
    /// are not about PC/SC neither depend on nor touch the machine's readers).
    pcsc_socket: Option<PathBuf>,
}

impl Env {
    fn new(name: &str) -> Env {
        let dir =
            std::env::temp_dir().join(format!("eid-doctor-test-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let home = dir.join("home");
        let config = dir.join("config");
        let root = dir.join("root");
        for d in [&home, &config, &root] {
            std::fs::create_dir_all(d).unwrap();
        }
        Env {
            pcsc_socket: Some(dir.join("no-pcscd.comm")),
            dir,
            home,
            config,
            root,
        }
    }

    fn tls(&self) -> PathBuf {
        self.config.join("tls")
    }

    /// The TLS material as `eid-agent run` would create it at `now`.
    fn make_tls(&self, now: OffsetDateTime) -> eid_installer::tls::LocalTls {
        eid_installer::tls::ensure(&self.tls(), now).unwrap()
    }

    /// `eid-agent doctor --json` with `extra` arguments: (exit code, report).
    fn doctor(&self, extra: &[&str]) -> (i32, Value) {
        let out = run_bounded(self.command(true, extra), "", Duration::from_secs(60));
        let code = out.status.code().expect("doctor exited normally");
        let value = eid_tests::cli::json(&out);
        assert!(
            matches!(code, 0 | 1),
            "doctor exit {code}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            value["ok"].as_bool(),
            Some(code == 0),
            "exit code {code} and \"ok\" disagree: {value:#}"
        );
        (code, value)
    }

    fn command(&self, json: bool, extra: &[&str]) -> Command {
        let mut command = Command::new(AGENT);
        command.arg("doctor");
        if json {
            command.arg("--json");
        }
        command
            .arg("--config-dir")
            .arg(&self.config)
            .arg("--root")
            .arg(&self.root)
            .args(extra)
            .env("HOME", &self.home)
            .env("XDG_CONFIG_HOME", self.home.join(".config"))
            .env_remove("EID_AGENT_CONFIG_DIR")
            .env_remove("EID_AGENT_POLICY");
        match &self.pcsc_socket {
            Some(socket) => command.env("PCSCLITE_CSOCK_NAME", socket),
            None => command.env_remove("PCSCLITE_CSOCK_NAME"),
        };
        command
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// The checks with this id.
fn checks<'a>(report: &'a Value, id: &str) -> Vec<&'a Value> {
    report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter(|c| c["id"] == id)
        .collect()
}

/// The one check with this id.
fn check<'a>(report: &'a Value, id: &str) -> &'a Value {
    let found = checks(report, id);
    assert_eq!(found.len(), 1, "one {id} check expected in {report:#}");
    found[0]
}

fn status(check: &Value) -> &str {
    check["status"].as_str().unwrap_or("?")
}

fn text(check: &Value, field: &str) -> String {
    check[field].as_str().unwrap_or_default().to_owned()
}

/// Asserts `id` failed with a remedy containing `remedy_has`; returns the check.
fn assert_failed<'a>(report: &'a Value, id: &str, remedy_has: &str) -> &'a Value {
    let c = check(report, id);
    assert_eq!(status(c), "failed", "{id}: {c:#}");
    assert!(
        text(c, "remedy").contains(remedy_has),
        "{id}: remedy should contain {remedy_has:?}: {c:#}"
    );
    c
}

/// A port nothing listens on right now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn days(n: i64) -> time::Duration {
    time::Duration::days(n)
}

fn certutil_present() -> bool {
    let present = Command::new("certutil").arg("-H").output().is_ok();
    if !present {
        let required = std::env::var_os("EID_REQUIRE_BROWSER").is_some_and(|v| v == "1")
            || std::env::var_os("CI").is_some_and(|v| v == "true");
        assert!(!required, "certutil is missing (apt install libnss3-tools)");
        eprintln!("SKIPPED: certutil is missing (apt install libnss3-tools)");
    }
    present
}

fn certutil(args: &[&str]) {
    let out = Command::new("certutil").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "certutil {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn new_nssdb(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    certutil(&[
        "-N",
        "-d",
        &format!("sql:{}", dir.display()),
        "--empty-password",
    ]);
}

/// Every file under `dir` with its content, to show doctor changed nothing.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((p.clone(), std::fs::read(&p).unwrap_or_default()));
            }
        }
    }
    out.sort();
    out
}

// ---- pcscd ----

#[test]
fn pcscd_unreachable_is_a_failure_with_the_command_that_starts_it() {
    let mut env = Env::new("pcscd");
    env.make_tls(OffsetDateTime::now_utc());

    // No socket at all: what a stopped pcscd leaves.
    let (code, report) = env.doctor(&[]);
    assert_eq!(code, 1);
    let c = assert_failed(&report, "pcscd", "pcscd");
    assert!(text(c, "summary").contains("not running"), "{c:#}");
    assert_eq!(status(check(&report, "readers")), "skipped");
    assert_eq!(status(check(&report, "cards")), "skipped");

    // A socket file nobody listens on (pcscd killed, its socket left behind): the file system
    // looks fine, only asking pcscd shows it is gone.
    let stale = env.dir.join("stale.comm");
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
    assert!(stale.exists());
    env.pcsc_socket = Some(stale);
    let (code, report) = env.doctor(&[]);
    assert_eq!(code, 1);
    let c = assert_failed(&report, "pcscd", "pcscd");
    assert!(text(c, "summary").contains("does not answer"), "{c:#}");

    // The machine's pcscd: ok.
    if eid_tests::pcscd_available() {
        env.pcsc_socket = None;
        let (_, report) = env.doctor(&[]);
        assert_eq!(status(check(&report, "pcscd")), "ok", "{report:#}");
        assert_eq!(status(check(&report, "readers")), "ok", "{report:#}");
    }
}

#[test]
fn hung_pcscd_and_fifos_in_place_of_files_do_not_hang_doctor() {
    let mut env = Env::new("hang");
    // A "pcscd" that accepts connections and never answers.
    let socket = env.dir.join("hung.comm");
    let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    let held = std::thread::spawn(move || {
        let mut open = Vec::new();
        for stream in listener.incoming().flatten() {
            open.push(stream);
            if open.len() > 8 {
                break;
            }
        }
    });
    env.pcsc_socket = Some(socket);
    // FIFOs where the configuration and the CA should be: opening one waits for a writer.
    std::fs::create_dir_all(env.tls()).unwrap();
    for fifo in [env.config.join("agent.toml"), env.tls().join("ca.pem")] {
        let out = Command::new("mkfifo").arg(&fifo).output().unwrap();
        assert!(out.status.success(), "mkfifo {}", fifo.display());
    }
    let started = std::time::Instant::now();
    let (code, report) = env.doctor(&["--timeout-secs", "2"]);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(code, 1);
    let c = assert_failed(&report, "pcscd", "pcscd");
    assert!(text(c, "summary").contains("within 2 s"), "{c:#}");
    assert_eq!(status(check(&report, "config")), "failed", "{report:#}");
    assert_eq!(
        status(check(&report, "leaf-certificate")),
        "failed",
        "{report:#}"
    );
    drop(held);
}

// ---- the leaf certificate ----

#[test]
fn expired_leaf_fails_near_expiry_warns_and_renewal_repairs_it() {
    let env = Env::new("leaf");
    let now = OffsetDateTime::now_utc();
    // Issued 400 days ago: the 397-day leaf expired 3 days ago (the CA is still valid).
    env.make_tls(now - days(400));
    let before = snapshot(&env.dir);
    let (code, report) = env.doctor(&[]);
    assert_eq!(code, 1);
    let c = assert_failed(&report, "leaf-certificate", "eid-agent install");
    assert!(text(c, "summary").contains("expired"), "{c:#}");
    assert!(
        text(c, "remedy").contains(&env.config.display().to_string()),
        "the remedy names the configuration directory in use: {c:#}"
    );
    assert_eq!(
        before,
        snapshot(&env.dir),
        "doctor must not renew or write anything"
    );

    // 17 days left: a warning, with the same remedy.
    std::fs::remove_dir_all(env.tls()).unwrap();
    env.make_tls(now - days(380));
    let (_, report) = env.doctor(&[]);
    let c = check(&report, "leaf-certificate");
    assert_eq!(status(c), "warning", "{c:#}");
    assert!(text(c, "summary").contains("expires in"), "{c:#}");
    assert!(text(c, "remedy").contains("eid-agent install"), "{c:#}");

    // What the remedy does (ensure renews the leaf with the kept CA key): ok.
    env.make_tls(now);
    let (_, report) = env.doctor(&[]);
    let c = check(&report, "leaf-certificate");
    assert_eq!(status(c), "ok", "{c:#}");
    assert!(text(c, "summary").contains("days left"), "{c:#}");
}

#[test]
fn leaf_of_another_ca_or_with_another_key_fails() {
    let env = Env::new("chain");
    let now = OffsetDateTime::now_utc();
    env.make_tls(now);
    let tls = env.tls();

    // Another CA in ca.pem (e.g. a restored backup): the leaf does not chain to it.
    let other = env.dir.join("other-tls");
    eid_installer::tls::ensure(&other, now).unwrap();
    let ours = std::fs::read(tls.join("ca.pem")).unwrap();
    std::fs::copy(other.join("ca.pem"), tls.join("ca.pem")).unwrap();
    let (_, report) = env.doctor(&[]);
    assert_failed(&report, "leaf-certificate", "eid-agent install");
    std::fs::write(tls.join("ca.pem"), ours).unwrap();

    // Another key.
    let key = std::fs::read(tls.join("localhost-key.pem")).unwrap();
    std::fs::copy(
        other.join("localhost-key.pem"),
        tls.join("localhost-key.pem"),
    )
    .unwrap();
    let (_, report) = env.doctor(&[]);
    let c = assert_failed(&report, "leaf-certificate", "eid-agent install");
    assert!(text(c, "summary").contains("not the key"), "{c:#}");
    std::fs::write(tls.join("localhost-key.pem"), key).unwrap();

    // Garbage in place of the leaf: a failure, not a crash.
    std::fs::write(
        tls.join("localhost.pem"),
        b"-----BEGIN CERTIFICATE-----\n%%%\n",
    )
    .unwrap();
    let (_, report) = env.doctor(&[]);
    assert_failed(&report, "leaf-certificate", "eid-agent install");

    // No TLS material at all: nothing to trust yet.
    std::fs::remove_dir_all(&tls).unwrap();
    let (_, report) = env.doctor(&[]);
    let c = assert_failed(&report, "leaf-certificate", "eid-agent install");
    assert!(text(c, "summary").contains("no local certificate"), "{c:#}");
    assert_eq!(
        status(&checks(&report, "ca-trust-nss")[0].clone()),
        "skipped"
    );
    assert!(!tls.exists(), "doctor must not create the TLS directory");
}

// ---- CA trust ----

#[test]
fn ca_missing_from_nss_databases_fails_per_database_until_certutil_adds_it() {
    if !certutil_present() {
        return;
    }
    let env = Env::new("nss");
    env.make_tls(OffsetDateTime::now_utc());
    let chromium = env.home.join(".pki/nssdb");
    let firefox = env.home.join(".mozilla/firefox/abc.default-release");
    new_nssdb(&chromium);
    new_nssdb(&firefox);
    let ca = env.tls().join("ca.pem");
    let ca = ca.to_str().unwrap();

    let by_db = |report: &Value, db: &Path| -> Value {
        checks(report, "ca-trust-nss")
            .into_iter()
            .find(|c| text(c, "detail").contains(&db.display().to_string()))
            .unwrap_or_else(|| panic!("no ca-trust-nss check names {}: {report:#}", db.display()))
            .clone()
    };

    let (code, report) = env.doctor(&[]);
    assert_eq!(code, 1);
    assert_eq!(checks(&report, "ca-trust-nss").len(), 2, "{report:#}");
    for db in [&chromium, &firefox] {
        let c = by_db(&report, db);
        assert_eq!(status(&c), "failed", "{c:#}");
        let remedy = text(&c, "remedy");
        assert!(remedy.contains("eid-agent install"), "{c:#}");
        assert!(
            remedy.contains(&format!("certutil -d sql:{}", db.display())),
            "{c:#}"
        );
    }

    // Present but not trusted for websites: still a failure.
    let chromium_sql = format!("sql:{}", chromium.display());
    certutil(&[
        "-A",
        "-d",
        &chromium_sql,
        "-t",
        ",,",
        "-n",
        "eID Agent local CA (test)",
        "-i",
        ca,
    ]);
    let (_, report) = env.doctor(&[]);
    let c = by_db(&report, &chromium);
    assert_eq!(status(&c), "failed", "{c:#}");
    assert!(text(&c, "summary").contains("not trusted"), "{c:#}");

    // Trusted in Chromium's database: that check is ok, Firefox's still fails.
    certutil(&[
        "-M",
        "-d",
        &chromium_sql,
        "-t",
        "C,,",
        "-n",
        "eID Agent local CA (test)",
    ]);
    let (code, report) = env.doctor(&[]);
    assert_eq!(code, 1);
    assert_eq!(status(&by_db(&report, &chromium)), "ok", "{report:#}");
    assert_eq!(status(&by_db(&report, &firefox)), "failed", "{report:#}");

    // The remedy's own command, run as printed, repairs Firefox's database.
    let remedy = text(&by_db(&report, &firefox), "remedy");
    let command = remedy
        .split("(or: ")
        .nth(1)
        .and_then(|s| s.strip_suffix(')'))
        .unwrap_or_else(|| panic!("no certutil command in {remedy:?}"));
    let out = Command::new("sh").arg("-c").arg(command).output().unwrap();
    assert!(
        out.status.success(),
        "{command}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (_, report) = env.doctor(&[]);
    for db in [&chromium, &firefox] {
        assert_eq!(status(&by_db(&report, db)), "ok", "{report:#}");
    }

    // A CA of an earlier installation (the current one regenerated): reported as such.
    std::fs::remove_dir_all(env.tls()).unwrap();
    env.make_tls(OffsetDateTime::now_utc());
    let (_, report) = env.doctor(&[]);
    let c = by_db(&report, &firefox);
    assert_eq!(status(&c), "failed", "{c:#}");
    assert!(text(&c, "summary").contains("older"), "{c:#}");
}

#[test]
fn system_installation_is_checked_and_a_ca_missing_from_the_system_store_fails() {
    let env = Env::new("system");
    // The real machine installation, hermetic under --root.
    let out = run_bounded(
        {
            let mut c = Command::new(AGENT);
            c.args([
                "install",
                "--system",
                "--json",
                "--allow-origin",
                "https://desk.example",
            ])
            .arg("--root")
            .arg(&env.root)
            .env("HOME", &env.home);
            c
        },
        "",
        Duration::from_secs(120),
    );
    assert!(
        out.status.success(),
        "install --system: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let (_, report) = env.doctor(&[]);
    let leaf = check(&report, "leaf-certificate");
    assert_eq!(status(leaf), "ok", "{report:#}");
    assert!(text(leaf, "detail").contains("(system)"), "{leaf:#}");
    assert_eq!(
        status(check(&report, "ca-trust-system")),
        "ok",
        "{report:#}"
    );
    let lna = check(&report, "lna-policy");
    assert_eq!(status(lna), "ok", "{report:#}");
    assert!(
        text(lna, "summary").contains("https://desk.example"),
        "{lna:#}"
    );
    assert!(
        text(check(&report, "config"), "summary").contains("1 allowed"),
        "{report:#}"
    );
    assert_eq!(status(check(&report, "autostart")), "ok", "{report:#}");

    // A user's Chromium database without the machine CA: Chromium still trusts it through the
    // managed policy's CACertificates, so a warning, not a failure...
    new_nssdb(&env.home.join(".pki/nssdb"));
    let (_, report) = env.doctor(&[]);
    let nss = check(&report, "ca-trust-nss");
    assert_eq!(status(nss), "warning", "{report:#}");
    assert!(text(nss, "summary").contains("CACertificates"), "{nss:#}");
    // ...and a failure once the policy no longer carries it.
    let policy = env
        .root
        .join("etc/chromium/policies/managed/eid-agent.json");
    let chrome = env
        .root
        .join("etc/opt/chrome/policies/managed/eid-agent.json");
    let saved = std::fs::read(&policy).unwrap();
    let saved_chrome = std::fs::read(&chrome).unwrap();
    for file in [&policy, &chrome] {
        std::fs::write(
            file,
            "{\"LocalNetworkAccessAllowedForUrls\": [\"https://desk.example\"]}\n",
        )
        .unwrap();
    }
    let (_, report) = env.doctor(&[]);
    assert_eq!(
        status(check(&report, "ca-trust-nss")),
        "failed",
        "{report:#}"
    );
    std::fs::write(&policy, saved).unwrap();
    std::fs::write(&chrome, saved_chrome).unwrap();
    std::fs::remove_dir_all(env.home.join(".pki")).unwrap();

    // The CA taken out of the system store.
    let store = env
        .root
        .join("usr/local/share/ca-certificates/eid-agent-local-ca.crt");
    std::fs::remove_file(&store).unwrap();
    let (_, report) = env.doctor(&[]);
    assert_failed(
        &report,
        "ca-trust-system",
        "sudo eid-agent install --system",
    );

    // The user's own CA wins over the machine's (as for eid-agent run).
    env.make_tls(OffsetDateTime::now_utc());
    let (_, report) = env.doctor(&[]);
    assert!(
        text(check(&report, "leaf-certificate"), "detail").contains("(user)"),
        "{report:#}"
    );
    assert_eq!(
        status(check(&report, "ca-trust-system")),
        "skipped",
        "{report:#}"
    );
}

// ---- the port ----

#[test]
fn port_held_by_another_program_fails_and_names_how_to_find_it() {
    let env = Env::new("port");
    env.make_tls(OffsetDateTime::now_utc());

    // Free.
    let port = free_port().to_string();
    let (_, report) = env.doctor(&["--port", &port]);
    let c = check(&report, "port");
    assert_eq!(status(c), "ok", "{c:#}");
    assert!(text(c, "summary").contains("free"), "{c:#}");

    // A plain TCP server that answers something else.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            use std::io::Write;
            let mut stream = stream;
            let _ = stream.write_all(b"SSH-2.0-OpenSSH_9.2\r\n");
        }
    });
    let (code, report) = env.doctor(&["--port", &port.to_string()]);
    assert_eq!(code, 1);
    let c = assert_failed(&report, "port", &format!("ss -ltnp 'sport = :{port}'"));
    assert!(text(c, "summary").contains("another program"), "{c:#}");

    // A server that accepts and never says anything: bounded by the timeout, not a hang.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port().to_string();
    let started = std::time::Instant::now();
    let (_, report) = env.doctor(&["--port", &port, "--timeout-secs", "2"]);
    assert_failed(&report, "port", "ss -ltnp");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
    drop(silent);

    // An HTTPS server that is not the agent, with a certificate of another CA.
    let other = env.dir.join("other-tls");
    let material = eid_installer::tls::ensure(&other, OffsetDateTime::now_utc()).unwrap();
    let port = https_server(material, "{\"hello\":\"world\"}");
    let (_, report) = env.doctor(&["--port", &port.to_string()]);
    let c = assert_failed(&report, "port", &format!("sport = :{port}"));
    assert!(text(c, "summary").contains("another program"), "{c:#}");

    // An HTTPS server with OUR certificate that is not the agent either.
    let port = https_server(env.make_tls(OffsetDateTime::now_utc()), "{\"api\":\"v2\"}");
    let (_, report) = env.doctor(&["--port", &port.to_string()]);
    assert_failed(&report, "port", &format!("sport = :{port}"));
}

#[test]
fn port_held_by_the_agent_is_ours_and_by_another_users_agent_is_not() {
    let agent = Agent::start(AGENT.as_ref(), &AgentOptions::default());
    let port = agent.port.to_string();

    // Doctor with the agent's configuration: the agent's CA verifies it.
    let mut env = Env::new("ours");
    env.config = agent.dir.join("config");
    let (_, report) = env.doctor(&["--port", &port]);
    let c = check(&report, "port");
    assert_eq!(status(c), "ok", "{c:#}\n{}", agent.log());
    let summary = text(c, "summary");
    assert!(summary.contains("ours"), "{c:#}");
    assert!(summary.contains(env!("CARGO_PKG_VERSION")), "{c:#}");

    // Another user (another CA) sees an eID agent it cannot trust on the port.
    let other = Env::new("theirs");
    other.make_tls(OffsetDateTime::now_utc());
    let (code, report) = other.doctor(&["--port", &port]);
    assert_eq!(code, 1);
    let c = assert_failed(&report, "port", &format!("sport = :{port}"));
    assert!(text(c, "summary").contains("eID agent"), "{c:#}");
}

/// A one-request-per-connection HTTPS server answering `body` with 200, on a free port.
fn https_server(material: eid_installer::tls::LocalTls, body: &'static str) -> u16 {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(material.cert_chain_der(), material.key_der())
        .unwrap();
    let config = Arc::new(config);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let config = Arc::clone(&config);
            std::thread::spawn(move || {
                use std::io::{Read, Write};
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                let conn = rustls::ServerConnection::new(config).unwrap();
                let mut tls = rustls::StreamOwned::new(conn, stream);
                let mut buf = [0u8; 4096];
                let mut got = Vec::new();
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                    body.len()
                );
                let _ = tls.write_all(answer.as_bytes());
                tls.conn.send_close_notify();
                let _ = tls.flush();
            });
        }
    });
    port
}

// ---- configuration, browser policy, autostart ----

#[test]
fn invalid_configuration_and_policy_fail_naming_the_key() {
    let env = Env::new("config");
    env.make_tls(OffsetDateTime::now_utc());
    std::fs::write(
        env.config.join("agent.toml"),
        "port = 24180\nbogus_key = 1\n",
    )
    .unwrap();
    let (code, report) = env.doctor(&[]);
    assert_eq!(code, 1);
    let c = assert_failed(&report, "config", "key");
    assert!(text(c, "detail").contains("bogus_key"), "{c:#}");
    assert!(text(c, "summary").contains("config-invalid"), "{c:#}");

    std::fs::write(env.config.join("agent.toml"), "port = 24180\n").unwrap();
    let policy = env.dir.join("policy.toml");
    std::fs::write(&policy, "allow = [\"https://desk.example/path\"]\n").unwrap();
    let (_, report) = env.doctor(&["--policy", policy.to_str().unwrap()]);
    let c = assert_failed(&report, "config", "scheme://host");
    assert!(text(c, "summary").contains("policy-invalid"), "{c:#}");

    std::fs::write(&policy, "allow = [\"https://desk.example\"]\n").unwrap();
    let (_, report) = env.doctor(&["--policy", policy.to_str().unwrap()]);
    let c = check(&report, "config");
    assert_eq!(status(c), "ok", "{c:#}");
    assert!(text(c, "summary").contains("1 allowed"), "{c:#}");
}

#[test]
fn unparsable_lna_policy_fails_and_origins_missing_from_it_warn() {
    let env = Env::new("lna");
    env.make_tls(OffsetDateTime::now_utc());
    let managed = env.root.join("etc/chromium/policies/managed");
    std::fs::create_dir_all(&managed).unwrap();
    let admin = env.root.join("etc/eid-agent");
    std::fs::create_dir_all(&admin).unwrap();

    // No policy and no admin allowlist: nothing to complain about.
    let (_, report) = env.doctor(&[]);
    assert_eq!(status(check(&report, "lna-policy")), "ok", "{report:#}");

    // A file Chromium cannot parse.
    let file = managed.join("eid-agent.json");
    std::fs::write(
        &file,
        "{\"LocalNetworkAccessAllowedForUrls\": [\"https://desk.example\"",
    )
    .unwrap();
    let (code, report) = env.doctor(&[]);
    assert_eq!(code, 1);
    let c = assert_failed(&report, "lna-policy", "sudo eid-agent install --system");
    assert!(
        text(c, "detail").contains(&file.display().to_string()),
        "{c:#}"
    );

    // A valid file, and an administrator policy (under --root) allowing one more origin.
    std::fs::write(
        &file,
        "{\"LocalNetworkAccessAllowedForUrls\": [\"https://desk.example\"]}",
    )
    .unwrap();
    std::fs::write(
        admin.join("policy.toml"),
        "allow = [\"https://desk.example\", \"https://other.example\"]\n",
    )
    .unwrap();
    let (_, report) = env.doctor(&[]);
    let c = check(&report, "lna-policy");
    assert_eq!(status(c), "warning", "{c:#}");
    assert!(
        text(c, "summary").contains("https://other.example"),
        "{c:#}"
    );
    assert!(
        !text(c, "summary").contains("https://desk.example"),
        "{c:#}"
    );
    assert!(
        text(c, "remedy").contains("--allow-origin https://other.example"),
        "{c:#}"
    );

    // Chrome's directory counts too: the origins are the union of both.
    let chrome = env.root.join("etc/opt/chrome/policies/managed");
    std::fs::create_dir_all(&chrome).unwrap();
    std::fs::write(
        chrome.join("other-vendor.json"),
        "{\"LocalNetworkAccessAllowedForUrls\": [\"https://OTHER.example:443\"], \"HomepageLocation\": \"x\"}",
    )
    .unwrap();
    let (_, report) = env.doctor(&[]);
    let c = check(&report, "lna-policy");
    assert_eq!(status(c), "ok", "{c:#}");
    assert!(
        text(c, "summary").contains("https://other.example"),
        "{c:#}"
    );
}

#[test]
fn autostart_missing_warns_and_a_stale_entry_fails() {
    let env = Env::new("autostart");
    env.make_tls(OffsetDateTime::now_utc());
    let (_, report) = env.doctor(&[]);
    let c = check(&report, "autostart");
    assert_eq!(status(c), "warning", "{c:#}");
    assert!(text(c, "remedy").contains("eid-agent install"), "{c:#}");

    let entry = env.home.join(".config/autostart/eid-agent.desktop");
    std::fs::create_dir_all(entry.parent().unwrap()).unwrap();
    std::fs::write(
        &entry,
        "[Desktop Entry]\nType=Application\nName=eID agent\nExec=/nonexistent/eid-agent run\n",
    )
    .unwrap();
    let (_, report) = env.doctor(&[]);
    let c = assert_failed(&report, "autostart", "eid-agent install");
    assert!(
        text(c, "summary").contains("/nonexistent/eid-agent"),
        "{c:#}"
    );

    std::fs::write(
        &entry,
        format!("[Desktop Entry]\nType=Application\nName=eID agent\nExec={AGENT} run\n"),
    )
    .unwrap();
    let (_, report) = env.doctor(&[]);
    assert_eq!(status(check(&report, "autostart")), "ok", "{report:#}");
}

// ---- everything green ----

#[test]
fn healthy_setup_is_green_with_the_card_reported() {
    let card = eid_hardware_mocks::pteid::cc2::cc2_default().unwrap();
    let Some(rig) = eid_tests::PcscRig::new(card.card) else {
        return;
    };
    if !certutil_present() {
        return;
    }
    let agent = Agent::start(AGENT.as_ref(), &AgentOptions::default());
    let mut env = Env::new("healthy");
    env.config = agent.dir.join("config");
    env.pcsc_socket = None;
    let chromium = env.home.join(".pki/nssdb");
    new_nssdb(&chromium);
    let ca = env.config.join("tls/ca.pem");
    certutil(&[
        "-A",
        "-d",
        &format!("sql:{}", chromium.display()),
        "-t",
        "C,,",
        "-n",
        "eID Agent local CA (test)",
        "-i",
        ca.to_str().unwrap(),
    ]);
    let entry = env.home.join(".config/autostart/eid-agent.desktop");
    std::fs::create_dir_all(entry.parent().unwrap()).unwrap();
    std::fs::write(
        &entry,
        format!("[Desktop Entry]\nType=Application\nExec={AGENT} run\n"),
    )
    .unwrap();

    let port = agent.port.to_string();
    let (code, report) = env.doctor(&["--port", &port]);
    for id in [
        "pcscd",
        "readers",
        "port",
        "leaf-certificate",
        "ca-trust-nss",
        "lna-policy",
        "config",
        "autostart",
    ] {
        assert_eq!(status(check(&report, id)), "ok", "{id}: {report:#}");
    }
    assert_eq!(status(check(&report, "ca-trust-system")), "skipped");
    assert!(
        text(check(&report, "readers"), "summary").contains(&rig.reader_name()),
        "{report:#}"
    );
    // The cards check names our card in our reader. (Another test binary may hold the other
    // vpcd slot with a card of its own; only a problem with *our* reader fails this test.)
    let cards = check(&report, "cards");
    let all = format!("{} {}", text(cards, "summary"), text(cards, "detail"));
    assert!(
        all.contains(&format!("(pteid-cc2) in {}", rig.reader_name())),
        "{cards:#}"
    );
    if status(cards) != "ok" {
        assert!(
            !text(cards, "summary").contains(&rig.reader_name()),
            "{cards:#}"
        );
    } else {
        assert_eq!(code, 0, "{report:#}");
    }

    // The text form: one line per check with its mark.
    let out = run_bounded(
        env.command(false, &["--port", &port]),
        "",
        Duration::from_secs(60),
    );
    let text_out = String::from_utf8_lossy(&out.stdout);
    assert!(!text_out.contains("PRIVATE KEY"), "{text_out}");
    for id in [
        "pcscd",
        "readers",
        "cards",
        "port",
        "leaf-certificate",
        "ca-trust-nss",
        "config",
    ] {
        assert!(
            text_out
                .lines()
                .any(|l| l.starts_with('[') && l.contains(id)),
            "no line for {id}:\n{text_out}"
        );
    }
    assert!(text_out.contains("[ ok ] port"), "{text_out}");
    drop(agent);
}
