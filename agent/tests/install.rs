//! `eid-agent install` / `uninstall`, end to end with the real binary.
//!
//! - In a temporary HOME (HOME and XDG_* inside it): install, run the agent, and a headless
//!   Debian Chromium with that HOME and no certificate flag loads the bridge's status over https
//!   (127.0.0.1 and localhost); uninstall, then nothing of ours is left (the tree is compared
//!   with the one before install, `certutil -L` of every database has no entry of ours), and the
//!   same load fails with a certificate error. With `--autostart systemd` and `--autostart xdg`.
//! - Idempotency: a second install reports no change and changes no file (contents, modes,
//!   mtimes), a Firefox-like profile gets the CA and loses it again.
//! - The system scope, hermetic under `--root`: files, modes, policies' JSON, the admin policy's
//!   marker/refusal/`--force`, and uninstall restoring the exact previous tree.
//!
//! certutil and Chromium are required when `EID_REQUIRE_BROWSER=1` or `CI=true`; otherwise a
//! test without them prints why and skips.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use eid_installer::trust::NICKNAME_PREFIX;
use eid_tests::browser::{BrowserOptions, TempDir};
use eid_tests::cdp::Page;
use rustls_pki_types::pem::PemObject;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_eid-agent");

fn required() -> bool {
    std::env::var("EID_REQUIRE_BROWSER").is_ok_and(|v| v == "1")
        || std::env::var("CI").is_ok_and(|v| v == "true")
}

/// True when certutil runs; otherwise skips (or fails when required).
fn certutil_present() -> bool {
    if eid_installer::trust::certutil_available() {
        return true;
    }
    assert!(
        !required(),
        "certutil is required (apt install libnss3-tools)"
    );
    eprintln!("SKIPPED: certutil not found (apt install libnss3-tools)");
    false
}

/// A temporary HOME with the XDG variables inside it.
struct Home {
    dir: TempDir,
}

impl Home {
    fn new(name: &str) -> Home {
        Home {
            dir: TempDir::new(name),
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn env(&self) -> Vec<(String, String)> {
        let h = self.path().display().to_string();
        vec![
            ("HOME".into(), h.clone()),
            ("XDG_CONFIG_HOME".into(), format!("{h}/.config")),
            ("XDG_DATA_HOME".into(), format!("{h}/.local/share")),
            ("XDG_STATE_HOME".into(), format!("{h}/.local/state")),
            ("XDG_CACHE_HOME".into(), format!("{h}/.cache")),
        ]
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .envs(self.env())
            .env_remove("EID_AGENT_CONFIG_DIR")
            .env_remove("EID_AGENT_POLICY")
            // No user manager or desktop session of the real user is reachable from the test.
            .env_remove("XDG_RUNTIME_DIR")
            .env_remove("DBUS_SESSION_BUS_ADDRESS")
            .stdin(Stdio::null());
        cmd
    }

    fn run(&self, args: &[&str]) -> (Output, Value) {
        let out = self.command(args).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let json = serde_json::from_str(&text).unwrap_or_else(|e| {
            panic!(
                "eid-agent {args:?}: not JSON ({e}):\n{text}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
        (out, json)
    }

    fn firefox_profile(&self) -> PathBuf {
        let p = self.path().join(".mozilla/firefox/abc.default-release");
        fs::create_dir_all(&p).unwrap();
        let st = Command::new("certutil")
            .args(["-N", "--empty-password", "-d"])
            .arg(format!("sql:{}", p.display()))
            .status()
            .unwrap();
        assert!(st.success());
        p
    }

    fn ca_der(&self) -> Vec<u8> {
        let pem = fs::read(self.path().join(".config/eid-agent/tls/ca.pem")).unwrap();
        openssl::x509::X509::from_pem(&pem)
            .unwrap()
            .to_der()
            .unwrap()
    }
}

fn statuses(report: &Value) -> Vec<(String, String)> {
    report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["step"].as_str().unwrap().to_owned(),
                s["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn assert_no_failure(out: &Output, report: &Value) {
    assert!(
        out.status.success() && !statuses(report).iter().any(|(_, s)| s == "failed"),
        "{report:#}"
    );
}

/// One entry of a tree snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    kind: &'static str,
    mode: u32,
    content: Vec<u8>,
    mtime_ns: i128,
}

/// Every path under `root` (relative), with its type, mode, content (file) or target (symlink)
/// and mtime.
fn snapshot(root: &Path) -> BTreeMap<PathBuf, Entry> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Entry>) {
        let mut entries: Vec<_> = fs::read_dir(dir).unwrap().flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let path = e.path();
            let meta = fs::symlink_metadata(&path).unwrap();
            let rel = path.strip_prefix(root).unwrap().to_path_buf();
            let mtime_ns = i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec());
            let mode = meta.permissions().mode() & 0o7777;
            let (kind, content) = if meta.file_type().is_symlink() {
                (
                    "symlink",
                    fs::read_link(&path)
                        .unwrap()
                        .into_os_string()
                        .into_encoded_bytes(),
                )
            } else if meta.is_dir() {
                ("dir", Vec::new())
            } else {
                ("file", fs::read(&path).unwrap())
            };
            out.insert(
                rel,
                Entry {
                    kind,
                    mode,
                    content,
                    mtime_ns,
                },
            );
            if meta.is_dir() {
                walk(root, &path, out);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

/// Differences of two snapshots, ignoring mtimes of directories (and of everything when
/// `mtimes` is false), and paths under `ignore`.
fn diff(
    a: &BTreeMap<PathBuf, Entry>,
    b: &BTreeMap<PathBuf, Entry>,
    mtimes: bool,
    ignore: &[&str],
) -> Vec<String> {
    let skip = |p: &Path| ignore.iter().any(|i| p.starts_with(i));
    let mut out = Vec::new();
    for (p, ea) in a.iter().filter(|(p, _)| !skip(p)) {
        match b.get(p) {
            None => out.push(format!("gone: {}", p.display())),
            Some(eb) => {
                // The bytes of an NSS database that existed before are SQLite's business: an
                // entry added and deleted leaves other bytes; its listing is compared instead.
                let nss = p
                    .file_name()
                    .is_some_and(|n| n == "cert9.db" || n == "key4.db");
                if ea.kind != eb.kind || ea.mode != eb.mode || (ea.content != eb.content && !nss) {
                    out.push(format!(
                        "changed: {} ({} {:o} -> {} {:o})",
                        p.display(),
                        ea.kind,
                        ea.mode,
                        eb.kind,
                        eb.mode
                    ));
                } else if mtimes && ea.kind != "dir" && ea.mtime_ns != eb.mtime_ns {
                    out.push(format!("touched: {}", p.display()));
                }
            }
        }
    }
    for p in b.keys().filter(|p| !skip(p)) {
        if !a.contains_key(p) {
            out.push(format!("new: {}", p.display()));
        }
    }
    out
}

/// `certutil -L` of a database: (nickname, trust) lines of ours.
fn ours_in(db: &Path) -> Vec<String> {
    let out = Command::new("certutil")
        .args(["-L", "-d"])
        .arg(format!("sql:{}", db.display()))
        .output()
        .unwrap();
    assert!(out.status.success(), "certutil -L {}", db.display());
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with(NICKNAME_PREFIX))
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

/// The whole `certutil -L` listing of a database.
fn listing(db: &Path) -> String {
    let out = Command::new("certutil")
        .args(["-L", "-d"])
        .arg(format!("sql:{}", db.display()))
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The DER of the certificate under `nickname` in `db`.
fn der_in(db: &Path, nickname: &str) -> Vec<u8> {
    let out = Command::new("certutil")
        .args(["-L", "-n", nickname, "-r", "-d"])
        .arg(format!("sql:{}", db.display()))
        .output()
        .unwrap();
    assert!(out.status.success());
    out.stdout
}

/// Every NSS database under `home` (a directory with cert9.db).
fn all_nss_dbs(home: &Path) -> Vec<PathBuf> {
    snapshot(home)
        .keys()
        .filter(|p| p.file_name().is_some_and(|n| n == "cert9.db"))
        .map(|p| home.join(p.parent().unwrap()))
        .collect()
}

/// A running `eid-agent run --port 0` with the temporary HOME; killed on drop.
struct RunningAgent {
    child: Child,
    port: u16,
    _dir: TempDir,
}

impl RunningAgent {
    fn start(home: &Home) -> RunningAgent {
        RunningAgent::start_with(home, &[])
    }

    /// `eid-agent run` in `home`, with `extra` arguments.
    fn start_with(home: &Home, extra: &[&std::ffi::OsStr]) -> RunningAgent {
        let dir = TempDir::new("eid-install-run");
        let port_file = dir.path().join("port");
        let log = fs::File::create(dir.path().join("log")).unwrap();
        let child = home
            .command(&["run", "--port", "0", "--port-file"])
            .arg(&port_file)
            .args(extra)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut agent = RunningAgent {
            child,
            port: 0,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(port) = fs::read_to_string(&port_file)
                .ok()
                .and_then(|p| p.trim().parse().ok())
            {
                agent.port = port;
                return agent;
            }
            if let Ok(Some(status)) = agent.child.try_wait() {
                panic!(
                    "eid-agent run exited ({status}): {}",
                    fs::read_to_string(agent._dir.path().join("log")).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("eid-agent run did not write its port");
    }

    fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for RunningAgent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Opens `url` in a Chromium whose HOME is `home`, with no certificate flag: the page's JSON,
/// or the navigation error.
fn load(home: &Home, url: &str) -> Result<Value, String> {
    let mut options = BrowserOptions::default();
    for (k, v) in home.env() {
        options = options.env(&k, &v);
    }
    let mut page = Page::launch(&options).map_err(|e| format!("launch: {e}"))?;
    page.set_timeout(Duration::from_secs(30));
    page.navigate(url).map_err(|e| e.message)?;
    let text = page
        .eval("document.body.innerText")
        .map_err(|e| e.to_string())?;
    let text = text.as_str().unwrap_or_default().to_owned();
    serde_json::from_str(&text).map_err(|e| format!("not JSON ({e}): {text}"))
}

/// The issue's headline: install, Chromium trusts the bridge without flags, uninstall leaves
/// nothing of ours, and then Chromium refuses the (new) certificate.
fn install_browse_uninstall(autostart: &str) {
    if !certutil_present() || !eid_tests::browser::browser_available() {
        return;
    }
    let home = Home::new(&format!("eid-install-{autostart}"));
    // A lived-in home: these exist, and Chromium and the agent write into them.
    for d in [".config", ".cache", ".local/state"] {
        fs::create_dir_all(home.path().join(d)).unwrap();
    }
    let firefox = home.firefox_profile();
    let firefox_before = listing(&firefox);
    let before = snapshot(home.path());

    let (out, report) = home.run(&["install", "--json", "--autostart", autostart]);
    assert_no_failure(&out, &report);
    assert_eq!(report["scope"], "user");
    let ca = home.ca_der();
    for db in [home.path().join(".pki/nssdb"), firefox.clone()] {
        let ours = ours_in(&db);
        assert_eq!(ours.len(), 1, "{}: {ours:?}", db.display());
        assert!(ours[0].ends_with("C,,"), "{ours:?}");
        let nickname = ours[0].trim_end_matches("C,,").trim_end();
        assert_eq!(
            der_in(&db, nickname),
            ca,
            "{} holds another CA",
            db.display()
        );
    }
    let cfg = home.path().join(".config");
    let (unit, link, desktop) = (
        cfg.join("systemd/user/eid-agent.service"),
        cfg.join("systemd/user/default.target.wants/eid-agent.service"),
        cfg.join("autostart/eid-agent.desktop"),
    );
    if autostart == "systemd" {
        let text = fs::read_to_string(&unit).unwrap();
        assert!(text.contains(&format!("\nExecStart={BIN} run\n")), "{text}");
        assert_eq!(fs::read_link(&link).unwrap(), unit);
        assert!(!desktop.exists());
    } else {
        let text = fs::read_to_string(&desktop).unwrap();
        assert!(text.contains(&format!("\nExec={BIN} run\n")), "{text}");
        assert!(!unit.exists() && fs::symlink_metadata(&link).is_err());
    }

    let agent = RunningAgent::start(&home);
    for host in ["127.0.0.1", "localhost"] {
        let url = format!("https://{host}:{}/v1/status", agent.port);
        let status = load(&home, &url).unwrap_or_else(|e| panic!("{url}: {e}"));
        assert_eq!(status["api"], "v1", "{status}");
        assert!(status["readers"].is_array(), "{status}");
    }
    agent.stop();

    let (out, report) = home.run(&["uninstall", "--json"]);
    assert_no_failure(&out, &report);
    let after = snapshot(home.path());
    // What Chromium and the running agent wrote themselves is not install's.
    let changes = diff(
        &before,
        &after,
        false,
        &[".config/chromium", ".cache", ".local/state/eid-agent"],
    );
    assert!(changes.is_empty(), "left behind or changed: {changes:#?}");
    for db in all_nss_dbs(home.path()) {
        assert!(ours_in(&db).is_empty(), "{} still has our CA", db.display());
    }
    assert_eq!(listing(&firefox), firefox_before);

    // Negative control: an agent on another configuration directory makes a new CA that it does
    // not register (only the user's own agent does); Chromium refuses it.
    let other = home.path().join("other-config");
    let agent = RunningAgent::start_with(&home, &["--config-dir".as_ref(), other.as_os_str()]);
    let url = format!("https://127.0.0.1:{}/v1/status", agent.port);
    let err = load(&home, &url).expect_err("an untrusted certificate was accepted");
    assert!(
        err.contains("ERR_CERT"),
        "{url}: not a certificate error: {err}"
    );
    agent.stop();

    // The user's own agent (default configuration directory), started after uninstall, makes a
    // new CA and registers it with the user's NSS databases by itself: Chromium trusts it with no
    // `eid-agent install` (what a user who installed the package gets at first login).
    let agent = RunningAgent::start(&home);
    let url = format!("https://127.0.0.1:{}/v1/status", agent.port);
    let status = load(&home, &url).expect("the agent's own new CA is trusted");
    assert_eq!(status["api"], "v1", "{status}");
    let new_ca = fs::read_to_string(home.path().join(".config/eid-agent/tls/ca.pem")).unwrap();
    let new_ca_der = rustls_pki_types::CertificateDer::from_pem_slice(new_ca.as_bytes()).unwrap();
    let nickname = eid_installer::trust::nickname_for(&new_ca_der);
    for db in all_nss_dbs(home.path()) {
        assert_eq!(
            ours_in(&db),
            vec![format!("{nickname} C,,")],
            "{}",
            db.display()
        );
    }
    agent.stop();
}

#[test]
fn install_then_chromium_trusts_the_bridge_systemd() {
    install_browse_uninstall("systemd");
}

#[test]
fn install_then_chromium_trusts_the_bridge_xdg() {
    install_browse_uninstall("xdg");
}

#[test]
fn second_install_changes_nothing_and_uninstall_restores_the_tree() {
    if !certutil_present() {
        return;
    }
    let home = Home::new("eid-install-idem");
    let firefox = home.firefox_profile();
    let firefox_before = listing(&firefox);
    let before = snapshot(home.path());

    let (out, first) = home.run(&["install", "--json", "--autostart", "xdg"]);
    assert_no_failure(&out, &first);
    assert!(
        statuses(&first).iter().any(|(_, s)| s == "done"),
        "{first:#}"
    );
    assert!(
        home.path().join(".pki/nssdb/cert9.db").is_file(),
        "~/.pki/nssdb was not created"
    );
    assert_eq!(ours_in(&firefox).len(), 1);
    let installed = snapshot(home.path());

    let (out, second) = home.run(&["install", "--json", "--autostart", "xdg"]);
    assert_no_failure(&out, &second);
    let changed: Vec<_> = statuses(&second)
        .into_iter()
        .filter(|(_, s)| s == "done")
        .collect();
    assert!(changed.is_empty(), "second install changed {changed:?}");
    let again = snapshot(home.path());
    let changes = diff(&installed, &again, true, &[]);
    assert!(changes.is_empty(), "second install touched {changes:#?}");
    // Human output says so too.
    let text = home
        .command(&["install", "--autostart", "xdg"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&text.stdout).contains("nothing to do"));

    let (out, report) = home.run(&["uninstall", "--json"]);
    assert_no_failure(&out, &report);
    let changes = diff(&before, &snapshot(home.path()), false, &[]);
    assert!(changes.is_empty(), "uninstall left {changes:#?}");
    assert!(ours_in(&firefox).is_empty());
    assert_eq!(listing(&firefox), firefox_before);

    // Uninstall again, and uninstall without a manifest after a fresh install: still clean.
    let (out, report) = home.run(&["uninstall", "--json"]);
    assert_no_failure(&out, &report);
    let (out, report) = home.run(&["install", "--json", "--autostart", "systemd"]);
    assert_no_failure(&out, &report);
    fs::remove_file(home.path().join(".config/eid-agent/install-manifest.json")).unwrap();
    let (out, report) = home.run(&["uninstall", "--json"]);
    assert_no_failure(&out, &report);
    for db in all_nss_dbs(home.path()) {
        assert!(ours_in(&db).is_empty(), "{} still has our CA", db.display());
    }
    let left = snapshot(home.path());
    for p in [
        ".config/systemd/user/eid-agent.service",
        ".config/systemd/user/default.target.wants/eid-agent.service",
    ] {
        assert!(
            !left.contains_key(Path::new(p)),
            "{p} left without manifest"
        );
    }
}

#[test]
fn user_scope_refuses_system_options() {
    let home = Home::new("eid-install-opts");
    let (out, report) = home.run(&["install", "--json", "--allow-origin", "https://a.example"]);
    assert_eq!(out.status.code(), Some(2), "{report:#}");
    assert_eq!(report["steps"][0]["status"], "failed");
    let (out, _) = home.run(&[
        "install",
        "--json",
        "--system",
        "--root",
        "/nonexistent-eid",
        "--allow-origin",
        "https://a.example/path",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        snapshot(home.path()).is_empty(),
        "a refused install wrote files"
    );
}

#[test]
fn system_scope_under_root() {
    let root = TempDir::new("eid-install-root");
    let r = root.path();
    // What the machine had before: an administrator's own policy and another managed policy.
    fs::create_dir_all(r.join("etc/eid-agent")).unwrap();
    let admin_before = "allow = [\"https://mine.example\"]\n";
    fs::write(r.join("etc/eid-agent/policy.toml"), admin_before).unwrap();
    fs::create_dir_all(r.join("etc/chromium/policies/managed")).unwrap();
    fs::write(
        r.join("etc/chromium/policies/managed/admin.json"),
        "{\"HomepageLocation\": \"https://intranet\"}\n",
    )
    .unwrap();
    let before = snapshot(r);
    let home = Home::new("eid-install-root-home");
    let root_arg = r.display().to_string();
    let base = [
        "install",
        "--json",
        "--system",
        "--root",
        root_arg.as_str(),
        "--autostart",
        "systemd",
    ];
    fn with<'a>(base: &[&'a str], extra: &[&'a str]) -> Vec<&'a str> {
        base.iter().chain(extra).copied().collect()
    }

    // The administrator's file is not ours: refused without --force, everything else done.
    let (out, report) = home.run(&with(
        &base,
        &[
            "--allow-origin",
            "https://Desk.Example:443",
            "--member",
            "alice",
        ],
    ));
    assert_eq!(out.status.code(), Some(2), "{report:#}");
    let st = statuses(&report);
    assert!(
        st.contains(&("admin-policy".into(), "failed".into())),
        "{st:?}"
    );
    assert!(st.contains(&("group".into(), "skipped".into())), "{st:?}");
    let group = &report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step"] == "group")
        .unwrap()["detail"];
    assert!(
        group
            .as_str()
            .unwrap()
            .contains("groupadd --system eid-agent")
            && group
                .as_str()
                .unwrap()
                .contains("gpasswd -a alice eid-agent"),
        "{group}"
    );
    assert_eq!(
        fs::read_to_string(r.join("etc/eid-agent/policy.toml")).unwrap(),
        admin_before
    );

    let (out, report) = home.run(&with(
        &base,
        &["--allow-origin", "https://Desk.Example:443", "--force"],
    ));
    assert_no_failure(&out, &report);

    // TLS: CA, leaf, key; the CA key was never kept.
    let tls = r.join("etc/eid-agent/tls");
    let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&tls), 0o755);
    assert_eq!(mode(&tls.join("ca.pem")), 0o644);
    assert_eq!(mode(&tls.join("localhost.pem")), 0o644);
    assert_eq!(mode(&tls.join("localhost-key.pem")), 0o640);
    assert!(
        !tls.join("ca-key.pem").exists(),
        "the machine CA key was kept"
    );
    let material = eid_installer::tls::load_system(&tls, time::OffsetDateTime::now_utc()).unwrap();
    let ca = material.ca_der().unwrap().to_vec();
    assert_eq!(
        fs::read_to_string(r.join("usr/local/share/ca-certificates/eid-agent-local-ca.crt"))
            .unwrap(),
        material.ca_pem
    );
    assert!(eid_installer::trust::system_store_has(r, &ca));

    // Browser policies: exactly our keys, the canonical origin, the CA.
    for dir in [
        "etc/chromium/policies/managed",
        "etc/opt/chrome/policies/managed",
    ] {
        let p = r.join(dir).join("eid-agent.json");
        assert_eq!(mode(&p), 0o644);
        let v: Value = serde_json::from_str(&fs::read_to_string(&p).unwrap()).unwrap();
        let keys: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys, ["CACertificates", "LocalNetworkAccessAllowedForUrls"]);
        assert_eq!(
            v["LocalNetworkAccessAllowedForUrls"],
            serde_json::json!(["https://desk.example"])
        );
        let b64 = v["CACertificates"][0].as_str().unwrap();
        assert_eq!(openssl::base64::decode_block(b64).unwrap(), ca);
    }
    let lna: Vec<_> = eid_installer::browser_policy::read_lna_policies(r)
        .into_iter()
        .map(|p| p.unwrap())
        .collect();
    assert_eq!(lna.len(), 3, "{lna:?}");

    // The admin policy: our marker, the allowlist the agent's parser reads.
    let admin = r.join("etc/eid-agent/policy.toml");
    let text = fs::read_to_string(&admin).unwrap();
    assert_eq!(
        text.lines().next(),
        Some(eid_installer::install::ADMIN_POLICY_MARKER)
    );
    let policy = eid_agent::config::AdminPolicy::load(&admin, true).unwrap();
    assert_eq!(
        policy
            .allow
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        ["https://desk.example"]
    );

    // Autostart for every user.
    let unit = r.join("etc/systemd/user/eid-agent.service");
    assert!(
        fs::read_to_string(&unit)
            .unwrap()
            .contains(&format!("\nExecStart={BIN} run\n"))
    );
    assert_eq!(
        fs::read_link(r.join("etc/systemd/user/default.target.wants/eid-agent.service")).unwrap(),
        Path::new("/etc/systemd/user/eid-agent.service")
    );
    let manifest = r.join("var/lib/eid-agent/install-manifest.json");
    assert_eq!(mode(&manifest), 0o600);

    // Again, without --allow-origin: nothing changes, the allowlist stays.
    let installed = snapshot(r);
    let (out, report) = home.run(&base);
    assert_no_failure(&out, &report);
    let done: Vec<_> = statuses(&report)
        .into_iter()
        .filter(|(_, s)| s == "done")
        .collect();
    assert!(done.is_empty(), "{done:?}");
    let changes = diff(&installed, &snapshot(r), true, &[]);
    assert!(changes.is_empty(), "{changes:#?}");

    // Uninstall: the exact previous tree, the administrator's file back.
    let (out, report) = home.run(&[
        "uninstall",
        "--json",
        "--system",
        "--root",
        root_arg.as_str(),
    ]);
    assert_no_failure(&out, &report);
    let changes = diff(&before, &snapshot(r), false, &[]);
    assert!(changes.is_empty(), "uninstall --system left {changes:#?}");

    // The XDG variant for machines without systemd.
    let (out, report) = home.run(&[
        "install",
        "--json",
        "--system",
        "--root",
        root_arg.as_str(),
        "--autostart",
        "xdg",
    ]);
    assert_no_failure(&out, &report);
    let desktop = fs::read_to_string(r.join("etc/xdg/autostart/eid-agent.desktop")).unwrap();
    assert!(desktop.contains(&format!("\nExec={BIN} run\n")));
    assert!(!r.join("etc/systemd").exists());
    let (out, report) = home.run(&["uninstall", "--json", "--system", "--root", &root_arg]);
    assert_no_failure(&out, &report);
    let changes = diff(&before, &snapshot(r), false, &[]);
    assert!(
        changes.is_empty(),
        "uninstall --system (xdg) left {changes:#?}"
    );
}

#[test]
fn system_scope_leaves_the_packages_autostart_alone() {
    // The Debian package ships the user unit and enables it for every user: `install --system`
    // must neither write a second one nor remove the package's at uninstall.
    let root = TempDir::new("eid-install-packaged");
    let r = root.path();
    let unit = r.join("usr/lib/systemd/user/eid-agent.service");
    fs::create_dir_all(unit.parent().unwrap()).unwrap();
    fs::write(&unit, "[Service]\nExecStart=/usr/bin/eid-agent run\n").unwrap();
    let home = Home::new("eid-install-packaged-home");
    let root_arg = r.display().to_string();
    let (out, report) = home.run(&[
        "install",
        "--json",
        "--system",
        "--root",
        root_arg.as_str(),
        "--autostart",
        "systemd",
    ]);
    assert_no_failure(&out, &report);
    let autostart: Vec<_> = statuses(&report)
        .into_iter()
        .filter(|(step, _)| step == "autostart")
        .collect();
    assert_eq!(
        autostart,
        vec![("autostart".to_owned(), "skipped".to_owned())],
        "{report:#}"
    );
    assert!(!r.join("etc/systemd/user/eid-agent.service").exists());
    assert!(!r.join("etc/systemd/user/default.target.wants").exists());
    assert!(!r.join("etc/xdg/autostart/eid-agent.desktop").exists());
    let (out, report) = home.run(&[
        "uninstall",
        "--json",
        "--system",
        "--root",
        root_arg.as_str(),
    ]);
    assert_no_failure(&out, &report);
    assert!(unit.is_file(), "uninstall removed the package's unit");
}
