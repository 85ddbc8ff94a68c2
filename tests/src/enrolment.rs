//! The enrolment service (`eid-enrolment serve`) for end-to-end tests, with everything around
//! it that a citizen's machine has: a virtual card behind the real pcscd (vpcd), the real
//! `eid-agent run` with the scripted pinentry, and headless Chromium driven over DevTools.
//!
//! - [`EnrolmentService`]: the binary on `127.0.0.1:<port>`, its origin
//!   `https://enrol.example.test:<port>` (Chromium maps the name to 127.0.0.1), a temporary
//!   data directory, a TLS certificate made here (so the browser pins it and API clients verify
//!   it by name), the development outbox file, `--fast-pin-hash`. It is killed on drop.
//! - [`Stack`]: card + agent + service, started in the order their addresses are known: the
//!   service's port first (the agent's policy allows its origin, so no consent dialog), the
//!   agent, then the service with the agent's URL as its bridge URL.
//! - [`ApiSession`]: JSON calls to the service with its `Origin` and session cookie, as the
//!   pages make them.
//! - [`Shots`]: numbered PNG screenshots under `target/test-artifacts/enrolment/<test>/`.
//!
//! The card's PKI and the eMRTD CSCA are made in the test process (they are generated once per
//! process), so the trust anchors handed to the service are written from here.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use eid_hardware_mocks::engine::VirtualCard;
use eid_hardware_mocks::pteid::CardPki;
use serde_json::Value;

use crate::PcscRig;
use crate::agent::{Agent, AgentOptions};
use crate::browser::{BrowserOptions, TempDir, spki_pin_of_pem};
use crate::cdp::Page;
use crate::https::{HttpsClient, Request, Response};

/// The service's host name in the browser (mapped to 127.0.0.1).
pub const SERVICE_HOST: &str = "enrol.example.test";
/// Another site, for tokens minted for the wrong origin.
pub const OTHER_HOST: &str = "other.example.test";
/// The session cookie's name.
pub const COOKIE: &str = "__Host-eid-enrolment";

/// A free TCP port on 127.0.0.1 (bound, read, released: the service binds it next).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Writes the Citizen Card trust anchors a relying party configures (the root and the
/// authentication sub-CA; the token carries the citizen's certificate only) to `dir/name`.
pub fn write_card_trust(dir: &Path, pki: &CardPki, name: &str) -> PathBuf {
    let mut pem = pki.root.to_pem().expect("root PEM");
    pem.extend(pki.auth_sub_ca.to_pem().expect("sub-CA PEM"));
    let path = dir.join(name);
    std::fs::write(&path, pem).expect("write the card trust anchors");
    path
}

/// An unrelated root CA (self-signed, PEM) at `dir/name`: a service trusting only it must refuse
/// every virtual card.
pub fn write_unrelated_root(dir: &Path, name: &str) -> PathBuf {
    let key = rcgen::KeyPair::generate().expect("key");
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Unrelated Test Root");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let cert = params.self_signed(&key).expect("root");
    let path = dir.join(name);
    std::fs::write(&path, cert.pem()).expect("write the unrelated root");
    path
}

/// Writes the virtual eMRTDs' CSCA (the `UTO` country signing CA) to `dir/csca-utopia.pem`.
pub fn write_csca(dir: &Path) -> PathBuf {
    let trust = eid_hardware_mocks::emrtd::trust::trust().expect("eMRTD trust material");
    let path = dir.join("csca-utopia.pem");
    std::fs::write(&path, trust.csca.cert_pem().expect("CSCA PEM")).expect("write the CSCA");
    path
}

/// How to start the service.
#[derive(Debug, Clone, Default)]
pub struct EnrolmentOptions {
    /// The port (`None`: a free one).
    pub port: Option<u16>,
    /// `--card-trust` files.
    pub card_trust: Vec<PathBuf>,
    /// `--csca` files or directories.
    pub csca: Vec<PathBuf>,
    /// `--bridge-url`.
    pub bridge_url: Option<String>,
    /// `--nonce-ttl-secs`.
    pub nonce_ttl_secs: Option<u64>,
    /// `--code-ttl-secs`.
    pub code_ttl_secs: Option<u64>,
    /// `--max-failures`.
    pub max_failures: Option<u32>,
    /// Further arguments.
    pub extra_args: Vec<String>,
}

/// A running `eid-enrolment serve`; killed on drop.
#[derive(Debug)]
pub struct EnrolmentService {
    child: Option<Child>,
    /// The port it listens on (127.0.0.1).
    pub port: u16,
    /// `https://enrol.example.test:<port>`.
    pub origin: String,
    /// Its data directory (database, code key).
    pub data_dir: PathBuf,
    /// The development outbox (one JSON line per code sent).
    pub outbox: PathBuf,
    /// Its TLS certificate (PEM), for the browser's SPKI pin and API clients.
    pub cert_pem: String,
    stdout: PathBuf,
    stderr: PathBuf,
    bin: PathBuf,
    _dir: TempDir,
}

/// The `eid-enrolment` binary, brought up to date once per test process (the service is
/// written alongside these tests: a binary left from an older build would test old code).
/// `EID_ENROLMENT_BIN` names a binary to use as it is.
pub fn enrolment_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("EID_ENROLMENT_BIN") {
        return PathBuf::from(path);
    }
    fresh_bin("eid-enrolment", "eid-enrolment")
}

/// The `eid-agent` binary, brought up to date once per test process.
pub fn agent_bin() -> PathBuf {
    fresh_bin("eid-agent", "eid-agent")
}

/// `cargo build -p <package> --bin <name>` once per process, then its path.
fn fresh_bin(package: &str, name: &str) -> PathBuf {
    use std::collections::HashSet;
    use std::sync::Mutex;
    static BUILT: Mutex<Option<HashSet<String>>> = Mutex::new(None);
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    let built = built.get_or_insert_with(HashSet::new);
    if built.insert(name.to_owned()) {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let exe = std::env::current_exe().expect("test executable");
        let release = exe
            .parent()
            .and_then(Path::parent)
            .and_then(Path::file_name)
            .is_some_and(|n| n == "release");
        let mut build = Command::new(cargo);
        build.args(["build", "--quiet", "-p", package, "--bin", name]);
        // What cargo set for this test's own package: build scripts (ring's) watch some of
        // these, and inheriting them would make the two builds rebuild each other's crates.
        for (key, _) in std::env::vars_os() {
            let key = key.to_string_lossy();
            let per_package = ["CARGO_PKG_", "CARGO_BIN_EXE_", "CARGO_MANIFEST_"]
                .iter()
                .any(|p| key.starts_with(p))
                || [
                    "CARGO_CRATE_NAME",
                    "CARGO_BIN_NAME",
                    "CARGO_PRIMARY_PACKAGE",
                    "CARGO_TARGET_TMPDIR",
                    "CARGO_RUSTC_CURRENT_DIR",
                    "OUT_DIR",
                ]
                .contains(&key.as_ref());
            if per_package {
                build.env_remove(key.as_ref());
            }
        }
        if release {
            build.arg("--release");
        }
        let status = build.status().expect("run cargo build");
        assert!(
            status.success(),
            "cargo build -p {package} --bin {name} failed"
        );
    }
    crate::bins::workspace_bin(package, name)
}

impl EnrolmentService {
    /// Starts the service and waits (60 s at most) until it listens. Panics with its output
    /// when it exits or never listens.
    pub fn start(options: &EnrolmentOptions) -> EnrolmentService {
        let dir = TempDir::new("eid-enrolment-test");
        let data_dir = dir.path().join("data");
        std::fs::create_dir_all(&data_dir).expect("data directory");
        let port = options.port.unwrap_or_else(free_port);
        let origin = format!("https://{SERVICE_HOST}:{port}");

        // Our own certificate for the names the tests use: the browser pins its key, API
        // clients check it by name.
        let key = rcgen::KeyPair::generate().expect("TLS key");
        let cert = rcgen::CertificateParams::new(vec![
            SERVICE_HOST.to_owned(),
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
        ])
        .expect("names")
        .self_signed(&key)
        .expect("TLS certificate");
        let cert_path = dir.path().join("tls-cert.pem");
        let key_path = dir.path().join("tls-key.pem");
        std::fs::write(&cert_path, cert.pem()).expect("write the TLS certificate");
        std::fs::write(&key_path, key.serialize_pem()).expect("write the TLS key");

        let outbox = dir.path().join("outbox.jsonl");
        let port_file = dir.path().join("port");
        let stdout = dir.path().join("stdout.log");
        let stderr = dir.path().join("stderr.log");
        let bin = enrolment_bin();
        let mut command = Command::new(&bin);
        command
            .arg("serve")
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--origin", &origin])
            .arg("--data-dir")
            .arg(&data_dir)
            .arg("--tls-cert")
            .arg(&cert_path)
            .arg("--tls-key")
            .arg(&key_path)
            .arg("--outbox")
            .arg(&outbox)
            .arg("--port-file")
            .arg(&port_file)
            .arg("--fast-pin-hash");
        for file in &options.card_trust {
            command.arg("--card-trust").arg(file);
        }
        for file in &options.csca {
            command.arg("--csca").arg(file);
        }
        if let Some(url) = &options.bridge_url {
            command.args(["--bridge-url", url]);
        }
        if let Some(ttl) = options.nonce_ttl_secs {
            command.args(["--nonce-ttl-secs", &ttl.to_string()]);
        }
        if let Some(ttl) = options.code_ttl_secs {
            command.args(["--code-ttl-secs", &ttl.to_string()]);
        }
        if let Some(limit) = options.max_failures {
            command.args(["--max-failures", &limit.to_string()]);
        }
        command
            .args(&options.extra_args)
            .env(
                "RUST_LOG",
                std::env::var("EID_ENROLMENT_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout).expect("stdout log"))
            .stderr(std::fs::File::create(&stderr).expect("stderr log"));
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", bin.display()));
        let mut service = EnrolmentService {
            child: Some(child),
            port,
            origin,
            data_dir,
            outbox,
            cert_pem: cert.pem(),
            stdout,
            stderr,
            bin,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let listening = std::fs::read_to_string(&port_file)
                .ok()
                .is_some_and(|t| !t.trim().is_empty())
                || service.stdout().contains("listening on");
            if listening && service.client().try_connect().is_ok() {
                break;
            }
            if let Some(status) = service.child.as_mut().and_then(|c| c.try_wait().ok()?) {
                panic!("eid-enrolment exited ({status}):\n{}", service.log());
            }
            assert!(
                Instant::now() < deadline,
                "eid-enrolment never listened:\n{}",
                service.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        service
    }

    /// What it printed on stdout.
    pub fn stdout(&self) -> String {
        std::fs::read_to_string(&self.stdout).unwrap_or_default()
    }

    /// Its stdout and stderr so far, for failure messages.
    pub fn log(&self) -> String {
        format!(
            "--- eid-enrolment stdout ---\n{}\n--- eid-enrolment stderr ---\n{}",
            self.stdout(),
            std::fs::read_to_string(&self.stderr).unwrap_or_default()
        )
    }

    /// `https://enrol.example.test:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.origin)
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// An HTTPS client that trusts the service's certificate and checks it by name.
    pub fn client(&self) -> HttpsClient {
        HttpsClient::new(self.addr(), &self.cert_pem, SERVICE_HOST)
    }

    /// A new API session (no cookie yet).
    pub fn api(&self) -> ApiSession {
        ApiSession {
            client: self.client(),
            origin: self.origin.clone(),
            host: format!("{SERVICE_HOST}:{}", self.port),
            cookie: None,
        }
    }

    /// The SPKI pin of its certificate (for the browser).
    pub fn spki_pin(&self) -> String {
        spki_pin_of_pem(&self.cert_pem)
    }

    /// The development outbox, oldest first (one JSON object per code sent).
    pub fn outbox_entries(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.outbox)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// The code of the first outbox entry after the first `seen` ones with `purpose`
    /// (`enrolment` | `login`), waiting up to 10 s for it.
    pub fn wait_code(&self, seen: usize, purpose: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let entries = self.outbox_entries();
            if let Some(entry) = entries.iter().skip(seen).find(|e| e["purpose"] == purpose) {
                return entry["code"]
                    .as_str()
                    .unwrap_or_else(|| panic!("outbox entry without a code: {entry}"))
                    .to_owned();
            }
            assert!(
                Instant::now() < deadline,
                "no {purpose} code in the outbox after entry {seen}: {entries:?}\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Runs `eid-enrolment <args> --data-dir <its data dir>` (60 s at most).
    pub fn cli(&self, args: &[&str], stdin: &str) -> std::process::Output {
        let mut command = Command::new(&self.bin);
        command.args(args).arg("--data-dir").arg(&self.data_dir);
        crate::cli::run_bounded(command, stdin, Duration::from_secs(60))
    }

    /// The stored bindings (`eid-enrolment bindings list --json`).
    pub fn bindings(&self) -> Vec<Value> {
        let out = self.cli(&["bindings", "list", "--json"], "");
        assert!(
            out.status.success(),
            "bindings list failed: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        match crate::cli::json(&out) {
            Value::Array(list) => list,
            Value::Object(mut map) => match map.remove("bindings") {
                Some(Value::Array(list)) => list,
                other => panic!("bindings list --json: no array: {other:?}"),
            },
            other => panic!("bindings list --json: no array: {other}"),
        }
    }

    /// Adds a desk operator (`eid-enrolment operator add NAME --password-stdin`).
    pub fn add_operator(&self, name: &str, password: &str) {
        let out = self.cli(
            &["operator", "add", name, "--password-stdin"],
            &format!("{password}\n"),
        );
        assert!(
            out.status.success(),
            "operator add failed: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for EnrolmentService {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A field of a stored binding, in either spelling (`identity_key` or `identityKey`).
pub fn binding_field<'a>(binding: &'a Value, snake: &str) -> &'a Value {
    if let Some(v) = binding.get(snake) {
        return v;
    }
    let mut camel = String::new();
    let mut upper = false;
    for c in snake.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            camel.extend(c.to_uppercase());
            upper = false;
        } else {
            camel.push(c);
        }
    }
    binding.get(&camel).unwrap_or(&Value::Null)
}

/// JSON calls to the service as its pages make them: its `Origin`, its `Host`, and the session
/// cookie it set.
#[derive(Debug, Clone)]
pub struct ApiSession {
    client: HttpsClient,
    /// The `Origin` header sent.
    pub origin: String,
    host: String,
    /// `__Host-eid-enrolment=<token>` once the service set it.
    pub cookie: Option<String>,
}

impl ApiSession {
    /// `POST path` with a JSON body; keeps a session cookie the answer sets.
    pub fn post(&mut self, path: &str, body: &Value) -> Response {
        let mut request = Request::post(path)
            .host(&self.host)
            .origin(&self.origin)
            .json(body);
        if let Some(cookie) = &self.cookie {
            request = request.header("Cookie", cookie);
        }
        let response = self
            .client
            .send(&request)
            .unwrap_or_else(|e| panic!("POST {path}: {e}"));
        for value in response.header_all("set-cookie") {
            if let Some(pair) = value.split(';').next()
                && pair.trim().starts_with(&format!("{COOKIE}="))
            {
                self.cookie = Some(pair.trim().to_owned());
            }
        }
        response
    }

    /// `GET path`.
    pub fn get(&mut self, path: &str) -> Response {
        let mut request = Request::get(path).host(&self.host);
        if let Some(cookie) = &self.cookie {
            request = request.header("Cookie", cookie);
        }
        self.client
            .send(&request)
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }
}

/// The error code of a service answer (`error.code`), or a panic showing the answer.
pub fn error_code(response: &Response) -> String {
    response
        .error_code()
        .unwrap_or_else(|| panic!("no error code: {} {}", response.status, response.text()))
}

/// How to start a [`Stack`].
#[derive(Debug, Clone, Default)]
pub struct StackOptions {
    /// The service's options (port and bridge URL are filled in).
    pub service: EnrolmentOptions,
    /// Origins the agent also allows (besides the service's), as host names served on the
    /// service's port: `other.example.test` -> `https://other.example.test:<port>`.
    pub also_allow_hosts: Vec<String>,
    /// Kiosk mode (a service desk): the agent runs `--kiosk` with a `[kiosk]` table naming this
    /// desk and the origins above as the desk's pages.
    pub kiosk_desk: Option<String>,
    /// Kiosk mode: the agent's idle timeout (its default when `None`).
    pub kiosk_idle_timeout_secs: Option<u64>,
}

/// A virtual card behind pcscd, the agent, and the service. Fields drop in order: the service
/// and the agent stop, then the card leaves the reader.
#[derive(Debug)]
pub struct Stack {
    /// The service.
    pub service: EnrolmentService,
    /// The agent (scripted pinentry).
    pub agent: Agent,
    /// The card's reader.
    pub rig: PcscRig,
    /// Files written for the service (trust anchors).
    pub files: TempDir,
}

impl Stack {
    /// Puts `card` behind pcscd, starts the agent (allowing the service's origin), waits until
    /// it sees the card, and starts the service. `None` (skip) without pcscd.
    /// `trust` writes the service's trust files into the given directory and returns the
    /// options' `card_trust` and `csca` lists.
    pub fn start(
        card: VirtualCard,
        options: &StackOptions,
        trust: impl FnOnce(&Path) -> (Vec<PathBuf>, Vec<PathBuf>),
    ) -> Option<Stack> {
        let rig = PcscRig::new(card)?;
        let files = TempDir::new("eid-enrolment-files");
        let (card_trust, csca) = trust(files.path());
        let port = options.service.port.unwrap_or_else(free_port);
        let mut allow = vec![format!("https://{SERVICE_HOST}:{port}")];
        allow.extend(
            options
                .also_allow_hosts
                .iter()
                .map(|h| format!("https://{h}:{port}")),
        );
        let kiosk = options
            .kiosk_desk
            .as_ref()
            .map(|desk| crate::agent::KioskOptions {
                desk: desk.clone(),
                origins: allow.clone(),
                idle_timeout_secs: options.kiosk_idle_timeout_secs,
                ..crate::agent::KioskOptions::default()
            });
        let agent = Agent::start(
            &agent_bin(),
            &AgentOptions {
                allow,
                // Several PIN dialogs in a row (wrong PIN, then the right one).
                agent_toml: "pin_rate_burst = 100\npin_rate_period_secs = 1\n".into(),
                kiosk,
                ..AgentOptions::default()
            },
        );
        wait_for_agent_card(&agent);
        let mut service_options = options.service.clone();
        service_options.port = Some(port);
        service_options.card_trust.extend(card_trust);
        service_options.csca.extend(csca);
        service_options.bridge_url = Some(format!("https://127.0.0.1:{}", agent.port));
        let service = EnrolmentService::start(&service_options);
        Some(Stack {
            service,
            agent,
            rig,
            files,
        })
    }

    /// Headless Chromium pinning the agent's and the service's certificates, with the test
    /// host names mapped to 127.0.0.1.
    pub fn browser(&self) -> Page {
        let leaf = std::fs::read_to_string(self.agent.dir.join("config/tls/localhost.pem"))
            .expect("the agent's leaf certificate");
        let options = BrowserOptions::default()
            .pin(spki_pin_of_pem(&leaf))
            .pin(self.service.spki_pin())
            .map_host(SERVICE_HOST, "127.0.0.1")
            .map_host(OTHER_HOST, "127.0.0.1");
        let mut page = Page::launch(&options).unwrap_or_else(|e| panic!("{e}"));
        page.set_timeout(Duration::from_secs(60));
        page
    }

    /// Everything that was said, for a failure message.
    pub fn diagnostics(&self) -> String {
        format!(
            "{}\n--- agent log (tail) ---\n{}\n--- pinentry prompts ---\n{:?}",
            self.service.log(),
            tail(&self.agent.log(), 40),
            self.agent.prompts()
        )
    }

    /// A web-eid:1.0 token minted by the real agent for `origin` (its `Origin` header) over
    /// `nonce`; the scripted pinentry must have been given the PIN.
    pub fn mint_token(&self, origin: &str, nonce: &str) -> Value {
        let response = self
            .agent
            .client()
            .send(
                &Request::post("/v1/authenticate")
                    .origin(origin)
                    .json(&serde_json::json!({ "challengeNonce": nonce })),
            )
            .unwrap_or_else(|e| panic!("POST /v1/authenticate: {e}"));
        assert_eq!(
            response.status,
            200,
            "the agent minted no token: {}\n{}",
            response.text(),
            self.diagnostics()
        );
        response.json()
    }
}

/// The last `n` lines of `text`.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines
        .get(lines.len().saturating_sub(n)..)
        .unwrap_or_default()
        .join("\n")
}

/// Waits until the agent's reader table shows a recognised card (30 s at most).
pub fn wait_for_agent_card(agent: &Agent) {
    let client = agent.client();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = client
            .send(&Request::get("/v1/status"))
            .map(|r| r.json())
            .unwrap_or_default();
        let ready = status["readers"]
            .as_array()
            .is_some_and(|rs| rs.iter().any(|r| !r["card"].is_null()));
        if ready {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the agent sees no card: {status}\n{}",
            agent.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Where test artifacts go: `$CARGO_TARGET_DIR/test-artifacts`, else
/// `<workspace>/target/test-artifacts`.
pub fn artifacts_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"))
        .join("test-artifacts")
}

/// Numbered screenshots of one test: `<artifacts>/enrolment/<test>/<nn>-<step>.png`.
#[derive(Debug)]
pub struct Shots {
    dir: PathBuf,
    next: u32,
}

impl Shots {
    /// A fresh (emptied) directory for `test`.
    pub fn new(test: &str) -> Shots {
        let dir = artifacts_dir().join("enrolment").join(test);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
        Shots { dir, next: 1 }
    }

    /// Its directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Saves the page as the next numbered PNG named `step`; returns its path.
    pub fn take(&mut self, page: &mut Page, step: &str) -> PathBuf {
        let path = self.dir.join(format!("{:02}-{step}.png", self.next));
        self.next += 1;
        page.screenshot(&path)
            .unwrap_or_else(|e| panic!("screenshot {}: {e}", path.display()));
        path
    }
}

/// Driving the enrolment pages in Chromium: the steps of `web/enrolment/` (`section[data-step]`,
/// `main[aria-busy]`, `#error`), shared by the citizen, desk and kiosk tests. Each test file
/// passes its own `state` (what it prints of the page when a wait fails).
pub mod pages {
    use std::time::Duration;

    use serde_json::Value;

    use super::Stack;
    use crate::cdp::{Page, js_string};

    /// Waits until the page is idle on `step`; fails at once when it shows an error instead,
    /// printing `state(page)` and the stack's diagnostics.
    pub fn wait_step(
        page: &mut Page,
        stack: &Stack,
        step: &str,
        limit: Duration,
        state: fn(&mut Page) -> Value,
    ) {
        let predicate = format!(
            "(() => {{ const m = document.querySelector('main');
            if (!m || m.getAttribute('aria-busy') !== 'false') return null;
            const e = document.getElementById('error');
            if (e && !e.hidden) return 'error';
            return document.querySelector('section[data-step]:not([hidden])')?.dataset.step === {s} ? 'ok' : null; }})()",
            s = js_string(step)
        );
        match page.wait_for(&predicate, limit) {
            Ok(v) if v == "ok" => {}
            Ok(_) => panic!(
                "waiting for step {step}, the page shows an error: {}\n{}",
                state(page),
                stack.diagnostics()
            ),
            Err(e) => panic!(
                "step {step} never came: {}\n{e}\n{}",
                state(page),
                stack.diagnostics()
            ),
        }
    }

    /// The text of `selector`, which must exist.
    pub fn text(page: &mut Page, selector: &str) -> String {
        page.text(selector)
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|| panic!("no {selector}"))
    }

    pub fn do_click(page: &mut Page, selector: &str) {
        page.click(selector).unwrap_or_else(|e| panic!("{e}"));
    }

    pub fn type_in(page: &mut Page, selector: &str, value: &str) {
        page.type_into(selector, value)
            .unwrap_or_else(|e| panic!("{e}"));
    }
}
