//! A real browser for end-to-end tests: headless Chromium opening a page served by a small HTTPS
//! test server, the page calling the bridge with `web/eid-bridge.js` and posting what it got
//! back to the server, which hands it to the test.
//!
//! - [`PageServer`]: HTTPS (rustls, one thread per connection) with a self-signed certificate
//!   for the names it is given (`rp.example.test`, ...). Serves the files of `web/`, the test page
//!   [`TEST_PAGE`] at `/`, `GET /nonce` (a fresh nonce from its [`NonceStore`]) and
//!   `POST /result` (the page's outcome, to [`PageServer::wait_result`]).
//! - [`Browser`]: `/usr/bin/chromium --headless` with a fresh profile (temporary directory),
//!   certificate errors ignored only for the SPKI pins given (the bridge's leaf, the page
//!   server's), optional `--host-resolver-rules` so that test names resolve to 127.0.0.1, and
//!   Chromium's log (console messages included) captured to a file for failure messages. Killed
//!   (with its whole process group) on drop.
//!
//! Without Chromium, [`Browser::open`] returns `None` after printing why, so the test can skip;
//! with `EID_REQUIRE_BROWSER=1` it panics instead. `EID_CHROMIUM` names another binary;
//! `EID_BROWSER_ARGS` adds switches (whitespace-separated), e.g. `--disable-http2` to tell an
//! HTTP/2 problem from others.
//!
//! The test page reads what to do from its query string: `action` (`status`, `authenticate`,
//! `certificate`, `identity`, `emrtd`, `events`), `bridge` (the agent's base URL), and `can`.
//! `events` posts `{"ok": true, "action", "event": {"type", "data"}}` per event. Others post
//! `{"ok": true, "action", "nonce", "result"}` or `{"ok": false, "action", "nonce", "error":
//! {"name", "code", "message", "remedy", "retriesLeft", "status"}}`, both with
//! `"localNetworkPermission"` (the page's Local Network Access permission state, or null).

use std::fs;
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use eid_protocols::webeid::NonceStore;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ServerConfig, ServerConnection, StreamOwned};

use crate::https::{self, Wire};

/// The Chromium binary (`EID_CHROMIUM` overrides).
pub fn chromium_path() -> PathBuf {
    std::env::var_os("EID_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"))
}

/// Whether browser tests must run (`EID_REQUIRE_BROWSER=1`) rather than skip.
pub fn browser_required() -> bool {
    std::env::var("EID_REQUIRE_BROWSER").is_ok_and(|v| v == "1")
}

/// True when Chromium is there; otherwise prints why the test skips (or panics when
/// [`browser_required`]).
pub fn browser_available() -> bool {
    let path = chromium_path();
    if path.exists() {
        return true;
    }
    let why = format!(
        "{} not found (set EID_CHROMIUM or install chromium)",
        path.display()
    );
    assert!(!browser_required(), "EID_REQUIRE_BROWSER=1 but {why}");
    eprintln!("SKIPPED: {why}");
    false
}

/// The `web/` directory of the repository.
pub fn web_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../web")
}

/// `--ignore-certificate-errors-spki-list` value of a certificate: base64 of the SHA-256 of its
/// DER SubjectPublicKeyInfo.
pub fn spki_pin_of_pem(cert_pem: &str) -> String {
    let cert = openssl::x509::X509::from_pem(cert_pem.as_bytes()).expect("certificate PEM");
    spki_pin_of_x509(&cert)
}

fn spki_pin_of_x509(cert: &openssl::x509::X509) -> String {
    let spki = cert
        .public_key()
        .and_then(|k| k.public_key_to_der())
        .expect("public key");
    openssl::base64::encode_block(&openssl::sha::sha256(&spki))
}

/// A directory under the system temporary directory, removed on drop.
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// A new empty directory named after `prefix`.
    pub fn new(prefix: &str) -> TempDir {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("{prefix}-{}-{n}-{nanos}", std::process::id()));
        fs::create_dir_all(&path).expect("create temporary directory");
        TempDir { path }
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// How to start the browser.
#[derive(Debug, Clone, Default)]
pub struct BrowserOptions {
    /// SPKI pins (see [`spki_pin_of_pem`]) whose certificates are accepted without a trusted CA.
    pub spki_pins: Vec<String>,
    /// `(name, address)`: `--host-resolver-rules=MAP name address, ...`.
    pub host_rules: Vec<(String, String)>,
    /// Further command-line switches.
    pub extra_args: Vec<String>,
    /// Environment variables set for the browser (e.g. `HOME`, whose `.pki/nssdb` Chromium
    /// trusts).
    pub env: Vec<(String, String)>,
}

impl BrowserOptions {
    /// Accept the certificate with this SPKI pin.
    pub fn pin(mut self, pin: String) -> Self {
        self.spki_pins.push(pin);
        self
    }

    /// Resolve `name` to `address` (e.g. `rp.example.test` -> `127.0.0.1`).
    pub fn map_host(mut self, name: &str, address: &str) -> Self {
        self.host_rules.push((name.to_owned(), address.to_owned()));
        self
    }

    /// Adds a command-line switch.
    pub fn arg(mut self, arg: &str) -> Self {
        self.extra_args.push(arg.to_owned());
        self
    }

    /// Sets an environment variable for the browser.
    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.env.push((name.to_owned(), value.to_owned()));
        self
    }
}

/// A headless Chromium showing one page; killed on drop.
#[derive(Debug)]
pub struct Browser {
    child: Child,
    log: PathBuf,
    _profile: TempDir,
}

impl Browser {
    /// Starts Chromium on `url`. `None` (after a message) when Chromium is missing and not
    /// required.
    pub fn open(url: &str, options: &BrowserOptions) -> Option<Browser> {
        use std::os::unix::process::CommandExt as _;
        if !browser_available() {
            return None;
        }
        let profile = TempDir::new("eid-chromium");
        let log = profile.path().join("chromium.log");
        let stderr = fs::File::create(&log).expect("create the browser log");
        let data_dir = profile.path().join("profile");
        let mut cmd = Command::new(chromium_path());
        cmd.args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--disable-dev-shm-usage",
            "--enable-logging=stderr",
            "--log-level=0",
        ])
        .arg(format!("--user-data-dir={}", data_dir.display()));
        if !options.spki_pins.is_empty() {
            cmd.arg(format!(
                "--ignore-certificate-errors-spki-list={}",
                options.spki_pins.join(",")
            ));
        }
        if !options.host_rules.is_empty() {
            let rules: Vec<String> = options
                .host_rules
                .iter()
                .map(|(n, a)| format!("MAP {n} {a}"))
                .collect();
            cmd.arg(format!("--host-resolver-rules={}", rules.join(", ")));
        }
        // Extra switches for diagnosis, e.g. EID_BROWSER_ARGS=--disable-http2.
        let from_env = std::env::var("EID_BROWSER_ARGS").unwrap_or_default();
        cmd.envs(options.env.iter().map(|(k, v)| (k, v)));
        cmd.args(&options.extra_args)
            .args(from_env.split_whitespace())
            .arg(url)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            // Its own process group, so that drop ends the wrapper script, the browser and
            // every renderer and helper it started, and nothing else.
            .process_group(0);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", chromium_path().display()));
        Some(Browser {
            child,
            log,
            _profile: profile,
        })
    }

    /// Chromium's log so far (stderr: errors, network failures, `CONSOLE` lines).
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The page's console messages found in the log.
    pub fn console(&self) -> Vec<String> {
        self.log()
            .lines()
            .filter(|l| l.contains("CONSOLE"))
            .map(str::to_owned)
            .collect()
    }

    /// The last `n` lines of the log, for failure messages.
    pub fn log_tail(&self, n: usize) -> String {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        lines
            .get(lines.len().saturating_sub(n)..)
            .unwrap_or_default()
            .join("\n")
    }

    /// True while the browser process runs.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // The group id is the child's pid (process_group(0)).
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a page posted to `/result`.
#[derive(Debug, Clone)]
pub struct PageResult {
    /// The `Host` the page was loaded from (`rp.example.test:PORT`).
    pub host: String,
    /// The `Origin` header of the post.
    pub origin: Option<String>,
    /// The posted JSON.
    pub body: serde_json::Value,
}

/// The test page: runs `action` against the bridge with web/eid-bridge.js and posts the outcome.
pub const TEST_PAGE: &str = r#"<!doctype html>
<html><head><meta charset="utf-8"><title>eid-agent browser test</title></head>
<body><pre id="out">running</pre>
<script type="module">
import { EidBridge } from "/eid-bridge.js";
const q = new URLSearchParams(location.search);
const action = q.get("action") || "authenticate";
const bridge = new EidBridge({ baseUrl: q.get("bridge") || undefined, timeoutMs: Number(q.get("timeoutMs") || 120000) });
let posting = Promise.resolve();
function post(outcome) {
  // One post at a time, in order (events may come faster than posts).
  posting = posting.then(async () => {
    outcome.localNetworkPermission = await bridge.localNetworkPermission().catch((e) => "error: " + e);
    document.getElementById("out").textContent = JSON.stringify(outcome);
    console.log("eid-test-result " + JSON.stringify(outcome));
    await fetch("/result", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(outcome) });
  });
  return posting;
}
const describe = (e) => ({ name: e?.name, code: e?.code, message: String(e?.message ?? e),
  remedy: e?.remedy, retriesLeft: e?.retriesLeft, status: e?.status });
let nonce = null;
try {
  nonce = (await (await fetch("/nonce", { cache: "no-store" })).json()).nonce;
  let result;
  switch (action) {
    case "status": result = await bridge.status(); break;
    case "authenticate": result = await bridge.authenticate(nonce); break;
    case "certificate": result = await bridge.getAuthenticationCertificate(); break;
    case "identity": result = await bridge.readIdentity({ photo: false }); break;
    case "emrtd": result = await bridge.readEmrtd({ can: q.get("can"), challengeNonce: nonce }); break;
    case "events":
      // One post per event, until the stream fails or ends.
      bridge.events((event) => post({ ok: true, action, event }),
        { onError: (e) => post({ ok: false, action, error: describe(e) }) });
      break;
    default: throw new Error("unknown action " + action);
  }
  if (action !== "events") await post({ ok: true, action, nonce, result });
} catch (e) {
  await post({ ok: false, action, nonce, error: describe(e) });
}
</script></body></html>
"#;

/// An HTTPS server for test pages (see the module documentation).
#[derive(Debug)]
pub struct PageServer {
    addr: SocketAddr,
    cert_pem: String,
    results: Mutex<Receiver<PageResult>>,
    nonces: Arc<NonceStore>,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

struct Served {
    config: Arc<ServerConfig>,
    results: Sender<PageResult>,
    nonces: Arc<NonceStore>,
    web: PathBuf,
}

impl PageServer {
    /// Listens on 127.0.0.1 (any port) with a self-signed certificate for `names` (DNS names;
    /// `127.0.0.1` is added).
    pub fn start(names: &[&str]) -> PageServer {
        let mut sans: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        sans.push("127.0.0.1".to_owned());
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = rcgen::CertificateParams::new(sans)
            .expect("names")
            .self_signed(&key)
            .expect("certificate");
        let mut config =
            ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .expect("protocol versions")
                .with_no_client_auth()
                .with_single_cert(
                    vec![CertificateDer::from(cert.der().to_vec())],
                    PrivateKeyDer::try_from(key.serialize_der()).expect("private key"),
                )
                .expect("server certificate");
        config.alpn_protocols = vec![b"http/1.1".to_vec()];

        let listener = TcpListener::bind("127.0.0.1:0").expect("bind page server");
        let addr = listener.local_addr().expect("address");
        let (tx, rx) = mpsc::channel();
        let nonces = Arc::new(NonceStore::new(time::Duration::minutes(5)));
        let stop = Arc::new(AtomicBool::new(false));
        let served = Arc::new(Served {
            config: Arc::new(config),
            results: tx,
            nonces: Arc::clone(&nonces),
            web: web_dir(),
        });
        let thread = {
            let stop = Arc::clone(&stop);
            thread::spawn(move || {
                for sock in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(sock) = sock else { continue };
                    let served = Arc::clone(&served);
                    thread::spawn(move || {
                        let _ = serve_connection(&served, sock);
                    });
                }
            })
        };
        PageServer {
            addr,
            cert_pem: cert.pem(),
            results: Mutex::new(rx),
            nonces,
            stop,
            thread: Some(thread),
        }
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `https://{host}:{port}{path}`.
    pub fn url(&self, host: &str, path: &str) -> String {
        format!("https://{host}:{}{path}", self.port())
    }

    /// `https://{host}:{port}` (the page's origin).
    pub fn origin(&self, host: &str) -> String {
        format!("https://{host}:{}", self.port())
    }

    /// The server's certificate (PEM).
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The SPKI pin of its certificate.
    pub fn spki_pin(&self) -> String {
        spki_pin_of_pem(&self.cert_pem)
    }

    /// The nonces `GET /nonce` handed out (validate tokens against this store).
    pub fn nonces(&self) -> &NonceStore {
        &self.nonces
    }

    /// The next page result, or `None` after `timeout`.
    pub fn wait_result(&self, timeout: Duration) -> Option<PageResult> {
        let rx = self.results.lock().unwrap_or_else(|e| e.into_inner());
        rx.recv_timeout(timeout).ok()
    }

    /// [`PageServer::wait_result`] that panics with the browser's log when nothing came.
    pub fn expect_result(&self, browser: &mut Browser, timeout: Duration) -> PageResult {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(r) = self.wait_result(Duration::from_millis(250)) {
                return r;
            }
            if !browser.running() {
                break;
            }
        }
        panic!(
            "the page posted no result within {timeout:?}; Chromium log tail:\n{}",
            browser.log_tail(60)
        );
    }
}

impl Drop for PageServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next() {
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("html") => "text/html; charset=utf-8",
        Some("json") => "application/json",
        Some("ts") => "text/plain; charset=utf-8",
        Some("md") => "text/markdown; charset=utf-8",
        _ => "application/octet-stream",
    }
}

fn serve_connection(served: &Served, sock: TcpStream) -> io::Result<()> {
    sock.set_nodelay(true)?;
    sock.set_read_timeout(Some(Duration::from_secs(30)))?;
    let conn = ServerConnection::new(Arc::clone(&served.config)).map_err(io::Error::other)?;
    let mut wire = Wire::new(StreamOwned::new(conn, sock));
    while let Some(req) = https::read_request(&mut wire, 1 << 20)? {
        let no_store = ("Cache-Control", "no-store");
        let path = req.path().to_owned();
        match (req.method.as_str(), path.as_str()) {
            ("GET", "/" | "/index.html") => https::write_response(
                &mut wire.io,
                200,
                &[("Content-Type", "text/html; charset=utf-8"), no_store],
                TEST_PAGE.as_bytes(),
            )?,
            ("GET", "/nonce") => {
                let now = time::OffsetDateTime::now_utc();
                match served.nonces.issue(now) {
                    Ok(nonce) => {
                        let body = serde_json::json!({ "nonce": nonce }).to_string();
                        https::write_response(
                            &mut wire.io,
                            200,
                            &[("Content-Type", "application/json"), no_store],
                            body.as_bytes(),
                        )?;
                    }
                    Err(e) => {
                        https::write_response(&mut wire.io, 500, &[], e.to_string().as_bytes())?
                    }
                }
            }
            ("POST", "/result") => {
                let body = serde_json::from_slice(&req.body).unwrap_or_else(|_| {
                    serde_json::Value::String(String::from_utf8_lossy(&req.body).into())
                });
                let _ = served.results.send(PageResult {
                    host: req.header("host").unwrap_or_default().to_owned(),
                    origin: req.header("origin").map(str::to_owned),
                    body,
                });
                https::write_response(
                    &mut wire.io,
                    200,
                    &[("Content-Type", "application/json")],
                    b"{}",
                )?;
            }
            ("GET", file) => {
                let name = file.trim_start_matches('/');
                let safe = !name.is_empty()
                    && name
                        .split('/')
                        .all(|part| !part.is_empty() && part != ".." && part != ".");
                match fs::read(served.web.join(name)).ok().filter(|_| safe) {
                    Some(bytes) => https::write_response(
                        &mut wire.io,
                        200,
                        &[("Content-Type", content_type(name)), no_store],
                        &bytes,
                    )?,
                    None => https::write_response(&mut wire.io, 404, &[], b"not found")?,
                }
            }
            _ => https::write_response(&mut wire.io, 405, &[], b"method not allowed")?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::https::{HttpsClient, Request};

    #[test]
    fn page_server_serves_the_page_the_client_and_nonces_and_collects_results() {
        let server = PageServer::start(&["rp.example.test"]);
        let client = HttpsClient::new(server.addr(), server.cert_pem(), "rp.example.test");
        let mut conn = client.connect();
        let page = conn
            .send(&Request::get("/").host("rp.example.test"))
            .unwrap();
        assert_eq!(page.status, 200);
        assert!(page.text().contains("/eid-bridge.js"));
        let js = conn.send(&Request::get("/eid-bridge.js")).unwrap();
        assert_eq!(
            (js.status, js.header("content-type")),
            (200, Some("text/javascript; charset=utf-8"))
        );
        assert!(js.text().contains("export class EidBridge"));
        assert_eq!(
            conn.send(&Request::get("/../Cargo.toml")).unwrap().status,
            404
        );
        let nonce = conn.send(&Request::get("/nonce")).unwrap().json()["nonce"]
            .as_str()
            .unwrap()
            .to_owned();
        eid_protocols::webeid::check_nonce(&nonce).unwrap();
        server
            .nonces()
            .consume(&nonce, time::OffsetDateTime::now_utc())
            .expect("issued by the store");
        let posted = conn
            .send(
                &Request::post("/result")
                    .origin("https://rp.example.test")
                    .json(&serde_json::json!({"ok": 1})),
            )
            .unwrap();
        assert_eq!(posted.status, 200);
        let result = server.wait_result(Duration::from_secs(5)).unwrap();
        assert_eq!(result.body["ok"], 1);
        assert_eq!(result.origin.as_deref(), Some("https://rp.example.test"));
    }

    #[test]
    fn spki_pin_is_base64_sha256_of_the_public_key_info() {
        let server = PageServer::start(&["a.test"]);
        let pin = server.spki_pin();
        assert_eq!(openssl::base64::decode_block(&pin).unwrap().len(), 32);
        assert_ne!(
            pin,
            PageServer::start(&["a.test"]).spki_pin(),
            "a new key each time"
        );
    }

    /// In a real browser, the client reports an agent that does not answer as
    /// AgentNotRunningError (nothing listens on the bridge port given to the page).
    #[test]
    fn chromium_page_reports_agent_not_running() {
        if !browser_available() {
            return;
        }
        let closed = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let server = PageServer::start(&["rp.example.test"]);
        let url = server.url(
            "rp.example.test",
            &format!("/?action=status&bridge=https://127.0.0.1:{closed}"),
        );
        let options = BrowserOptions::default()
            .pin(server.spki_pin())
            .map_host("rp.example.test", "127.0.0.1");
        let mut browser = Browser::open(&url, &options).unwrap();
        let result = server.expect_result(&mut browser, Duration::from_secs(60));
        assert_eq!(result.body["ok"], false, "{:?}", result.body);
        assert_eq!(
            result.body["error"]["name"], "AgentNotRunningError",
            "{:?}",
            result.body
        );
        assert_eq!(result.body["error"]["code"], "agent-not-running");
        assert_eq!(
            result.origin.as_deref(),
            Some(server.origin("rp.example.test").as_str())
        );
    }

    /// In a real browser, a public page calling loopback without the Local Network Access
    /// permission (headless Chromium denies it) gets LocalNetworkPermissionError, not "agent
    /// not running": the client tells the two apart through the permission state.
    #[test]
    fn chromium_public_page_without_local_network_permission_gets_permission_error() {
        if !browser_available() {
            return;
        }
        let closed = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let server = PageServer::start(&["rp.example.test"]);
        let url = server.url(
            "rp.example.test",
            &format!("/?action=status&bridge=https://127.0.0.1:{closed}"),
        );
        // The page server's address counts as public, as a real website's would.
        let public = format!(
            "--ip-address-space-overrides=127.0.0.1:{}=public",
            server.port()
        );
        let options = BrowserOptions::default()
            .pin(server.spki_pin())
            .map_host("rp.example.test", "127.0.0.1")
            .arg(&public);
        let mut browser = Browser::open(&url, &options).unwrap();
        let result = server.expect_result(&mut browser, Duration::from_secs(60));
        let body = &result.body;
        assert_eq!(
            body["error"]["name"], "LocalNetworkPermissionError",
            "{body}"
        );
        assert_eq!(
            body["error"]["code"], "local-network-permission-denied",
            "{body}"
        );
        assert_eq!(body["localNetworkPermission"], "denied", "{body}");
    }
}
