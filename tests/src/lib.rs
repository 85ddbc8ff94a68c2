//! Test harness shared by the end-to-end tests and the benchmarks.
//!
//! A [`Rig`] is a virtual card in a reader, with the hands of a tester: connect, pull the card,
//! put it back, pull it in the middle of the n-th APDU. [`InProcessRig`] puts it behind the
//! transport trait directly; [`PcscRig`] puts the same card behind the real pcscd through the
//! vsmartcard vpcd driver, so every APDU crosses pcsc-lite as it would on a citizen's machine.
//! Scenarios are written once against `&mut dyn Rig` and run on both.
//!
//! pcscd tests need a running pcscd with vpcd (`scripts/start-pcscd.sh`). Without one they
//! skip with a message, unless `EID_REQUIRE_PCSCD=1` (as in CI), where they fail.

#![forbid(unsafe_code)]
#![allow(
    clippy::expect_used,
    clippy::panic,
    clippy::unwrap_used,
    clippy::indexing_slicing
)]

use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use eid_card::pcsc_transport::{PcscContext, PcscTransport};
use eid_card::{Error, ReaderCapabilities, Transport};
use eid_hardware_mocks::engine::VirtualCard;
use eid_hardware_mocks::inprocess::{VirtualReader, VirtualReaderControl};
use eid_hardware_mocks::vpcd::{self, VpcdHandle};

/// A virtual card in a reader, and a tester's hands.
pub trait Rig: Send {
    /// Which tier, for messages.
    fn tier(&self) -> &'static str;
    /// A new connection to the card.
    fn connect(&mut self) -> Result<Box<dyn Transport>, Error>;
    /// Pulls the card out (and, for pcscd, waits until pcscd has seen it go).
    fn remove(&mut self);
    /// Puts the same card back (PIN counters kept, volatile state reset).
    fn insert(&mut self);
    /// The card disappears when the (n+1)-th further APDU reaches it.
    fn remove_after_apdus(&mut self, n: u64);
    /// Another application resets the card.
    fn reset_by_other_application(&mut self);
    /// APDUs the card has processed so far.
    fn apdu_count(&self) -> u64;
}

/// The card behind the transport trait, in this process.
#[derive(Debug)]
pub struct InProcessRig {
    control: VirtualReaderControl,
}

impl InProcessRig {
    /// `caps` plays the reader: use [`vpcd_like`] to mirror what pcscd + vpcd carry.
    pub fn new(card: VirtualCard, caps: ReaderCapabilities) -> Self {
        let (_transport, control) =
            VirtualReader::new("In-process virtual reader", card, caps).split();
        InProcessRig { control }
    }
}

/// What the PC/SC transport reports for a vpcd reader (T=1, pcsc-lite's extended buffer).
pub fn vpcd_like() -> ReaderCapabilities {
    ReaderCapabilities::extended(pcsc::MAX_BUFFER_SIZE_EXTENDED)
}

impl Rig for InProcessRig {
    fn tier(&self) -> &'static str {
        "in-process"
    }
    fn connect(&mut self) -> Result<Box<dyn Transport>, Error> {
        Ok(Box::new(self.control.connect()?))
    }
    fn remove(&mut self) {
        self.control.remove();
    }
    fn insert(&mut self) {
        assert!(self.control.reinsert(), "no removed card to put back");
    }
    fn remove_after_apdus(&mut self, n: u64) {
        self.control.remove_after_apdus(n);
    }
    fn reset_by_other_application(&mut self) {
        self.control.reset_card();
    }
    fn apdu_count(&self) -> u64 {
        self.control.apdu_count()
    }
}

/// The two vpcd slots, shared by the tests of one process.
static SLOTS: Mutex<[bool; 2]> = Mutex::new([false; 2]);
static SLOT_FREED: Condvar = Condvar::new();

/// One vpcd slot, held for the life of a test: by this process's threads through [`SLOTS`], and
/// against other processes (another test binary, `cargo nextest`, a second `cargo test`) through
/// an exclusive lock on a per-slot file.
#[derive(Debug)]
pub struct Slot {
    index: u8,
    _across_processes: std::fs::File,
}

impl Slot {
    /// Waits for a free slot.
    pub fn acquire() -> Slot {
        let index = {
            let mut slots = SLOTS.lock().unwrap_or_else(|p| p.into_inner());
            loop {
                if let Some(i) = slots.iter().position(|busy| !busy) {
                    slots[i] = true;
                    break i as u8;
                }
                slots = SLOT_FREED.wait(slots).unwrap_or_else(|p| p.into_inner());
            }
        };
        // Blocks while a test in another process holds this slot; released when the file closes.
        Slot::lock_file(index)
    }
    /// Both slots at once, taken together (never one and then the other: two tests each
    /// holding one slot and waiting for the second would deadlock). Across processes the slot
    /// files are locked in index order, which cannot deadlock either.
    pub fn acquire_pair() -> (Slot, Slot) {
        {
            let mut slots = SLOTS.lock().unwrap_or_else(|p| p.into_inner());
            while slots.iter().any(|busy| *busy) {
                slots = SLOT_FREED.wait(slots).unwrap_or_else(|p| p.into_inner());
            }
            *slots = [true; 2];
        }
        (Slot::lock_file(0), Slot::lock_file(1))
    }

    /// The cross-process lock of slot `index` (already taken in [`SLOTS`]).
    fn lock_file(index: u8) -> Slot {
        let path = std::env::temp_dir().join(format!("eid-tests-vpcd-slot-{index}.lock"));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        file.lock()
            .unwrap_or_else(|e| panic!("locking {}: {e}", path.display()));
        Slot {
            index,
            _across_processes: file,
        }
    }

    /// A free slot with no card in it (an earlier test's card must have gone), and a PC/SC
    /// context to watch it. Call after [`pcscd_available`].
    pub fn acquire_empty() -> (Slot, PcscContext) {
        let slot = Slot::acquire();
        let context = PcscContext::establish().expect("pcscd");
        wait_for_card(&context, &slot.reader_name(), false);
        (slot, context)
    }

    pub fn reader_name(&self) -> String {
        format!("Virtual PCD 00 {:02}", self.index)
    }
    pub fn addr(&self) -> std::net::SocketAddr {
        vpcd::slot_addr(self.index)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut slots = SLOTS.lock().unwrap_or_else(|p| p.into_inner());
        slots[usize::from(self.index)] = false;
        // notify_all: a pair waits for both slots, a single waiter for either.
        SLOT_FREED.notify_all();
    }
}

/// Whether pcscd with the vpcd readers is reachable. When it is not: fails under
/// `EID_REQUIRE_PCSCD=1`, otherwise prints why the test is skipped and returns `false`.
pub fn pcscd_available() -> bool {
    let problem = match PcscContext::establish().and_then(|c| c.reader_names()) {
        Ok(names) if names.iter().any(|n| n.starts_with("Virtual PCD")) => return true,
        Ok(names) => format!("pcscd runs but has no vpcd reader (readers: {names:?})"),
        Err(e) => format!("pcscd is not reachable: {e}"),
    };
    if std::env::var_os("EID_REQUIRE_PCSCD").is_some_and(|v| v == "1") {
        panic!("{problem}; run scripts/start-pcscd.sh");
    }
    eprintln!("SKIPPED (needs pcscd + vpcd): {problem}; run scripts/start-pcscd.sh");
    false
}

/// The card behind the real pcscd, through a vpcd slot.
#[derive(Debug)]
pub struct PcscRig {
    slot: Slot,
    handle: VpcdHandle,
    context: PcscContext,
}

impl PcscRig {
    /// Attaches `card` to a free vpcd slot and waits until pcscd reports it present.
    /// `None` when pcscd is not available (see [`pcscd_available`]).
    pub fn new(card: VirtualCard) -> Option<Self> {
        if !pcscd_available() {
            return None;
        }
        let (slot, context) = Slot::acquire_empty();
        let handle = vpcd::VpcdCard::attach(slot.addr(), card).expect("vpcd accepts the card");
        wait_for_card(&context, &slot.reader_name(), true);
        Some(PcscRig {
            slot,
            handle,
            context,
        })
    }

    pub fn reader_name(&self) -> String {
        self.slot.reader_name()
    }

    pub fn context(&self) -> &PcscContext {
        &self.context
    }

    pub fn vpcd(&mut self) -> &mut VpcdHandle {
        &mut self.handle
    }

    /// A PC/SC connection with its concrete type (for the benchmark and PC/SC-only checks).
    pub fn connect_pcsc(&self) -> Result<PcscTransport, Error> {
        self.context.connect(&self.reader_name())
    }

    /// After a pcscd restart: a new context, and the card reattached to the new vpcd (as a card
    /// sits in a reader across a restart).
    pub fn after_pcscd_restart(&mut self) {
        self.context = PcscContext::establish().expect("pcscd is back");
        self.handle.remove();
        self.handle.insert().expect("vpcd accepts the card again");
        wait_for_card(&self.context, &self.slot.reader_name(), true);
    }
}

impl Drop for PcscRig {
    fn drop(&mut self) {
        self.handle.remove();
        wait_for_card(&self.context, &self.slot.reader_name(), false);
    }
}

/// Blocks (in PC/SC's status-change wait, 10 s at most) until the reader has a card or not.
pub fn wait_for_card(context: &PcscContext, reader: &str, present: bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let name = std::ffi::CString::new(reader).expect("reader name");
    let mut states = [pcsc::ReaderState::new(name, pcsc::State::UNAWARE)];
    loop {
        let now = Instant::now();
        assert!(
            now < deadline,
            "{reader}: card never became {}",
            if present { "present" } else { "absent" }
        );
        match context.raw().get_status_change(deadline - now, &mut states) {
            Ok(()) | Err(pcsc::Error::Timeout) => {}
            Err(e) => panic!("waiting for {reader}: {e}"),
        }
        let is_present = states[0].event_state().contains(pcsc::State::PRESENT);
        // A card pcscd has seen but not powered yet is not usable: wait for its ATR.
        let ready = !present || !states[0].event_state().contains(pcsc::State::MUTE);
        if is_present == present && ready {
            return;
        }
        states[0].sync_current_state();
    }
}

impl Rig for PcscRig {
    fn tier(&self) -> &'static str {
        "pcscd+vpcd"
    }
    fn connect(&mut self) -> Result<Box<dyn Transport>, Error> {
        Ok(Box::new(self.connect_pcsc()?))
    }
    fn remove(&mut self) {
        self.handle.remove();
        wait_for_card(&self.context, &self.slot.reader_name(), false);
    }
    fn insert(&mut self) {
        self.handle.insert().expect("vpcd accepts the card again");
        wait_for_card(&self.context, &self.slot.reader_name(), true);
    }
    fn remove_after_apdus(&mut self, n: u64) {
        self.handle.remove_after_apdus(n);
    }
    fn reset_by_other_application(&mut self) {
        // Another PC/SC client connects and resets the card, as a second program would.
        let other = PcscContext::establish().expect("pcscd");
        let mut card = other
            .connect(&self.reader_name())
            .expect("second connection");
        card.reconnect(true)
            .expect("reset by the other application");
        card.disconnect().expect("other application leaves");
    }
    fn apdu_count(&self) -> u64 {
        self.handle.apdu_count()
    }
}

/// Stopping and starting the machine's pcscd, for the tests that show what a restart does.
/// They run only when `EID_TEST_RESTART_PCSCD=1` (set by scripts/test.sh, which started that
/// pcscd itself); test binaries run one after another, so no other test loses pcscd meanwhile.
pub mod restart {
    use std::process::Command;
    use std::time::{Duration, Instant};

    /// Whether this run may restart pcscd; prints why not when it may not.
    pub fn allowed() -> bool {
        let allowed = std::env::var_os("EID_TEST_RESTART_PCSCD").is_some_and(|v| v == "1");
        if !allowed {
            eprintln!("SKIPPED: set EID_TEST_RESTART_PCSCD=1 to let this test restart pcscd");
        }
        allowed
    }

    pub fn pcscd_running() -> bool {
        Command::new("pgrep")
            .args(["-x", "pcscd"])
            .status()
            .is_ok_and(|s| s.success())
    }

    /// Stops pcscd and waits (10 s at most) until it has gone.
    pub fn stop_pcscd() {
        assert!(
            Command::new("pkill")
                .args(["-x", "pcscd"])
                .status()
                .unwrap()
                .success()
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        while pcscd_running() {
            assert!(Instant::now() < deadline, "pcscd did not stop");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Starts pcscd with the project's script, which waits until the vpcd readers answer.
    pub fn start_pcscd() {
        assert!(
            Command::new(SCRIPT).status().unwrap().success(),
            "pcscd did not come back"
        );
    }

    const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/start-pcscd.sh");

    /// Brings pcscd back even when a test fails half-way, so later tests find it running.
    #[derive(Debug)]
    pub struct RestartOnDrop;

    impl Drop for RestartOnDrop {
        fn drop(&mut self) {
            if !pcscd_running() {
                let _ = Command::new(SCRIPT).status();
            }
        }
    }
}

/// What the benchmarks share: the round count and the median.
pub mod bench {
    use std::time::Duration;

    /// `EID_BENCH_ROUNDS`, else `default` (at least one).
    pub fn rounds(default: usize) -> usize {
        std::env::var("EID_BENCH_ROUNDS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
            .max(1)
    }

    /// The median (upper middle for an even count); zero for no samples.
    pub fn median(samples: &[Duration]) -> Duration {
        let mut sorted = samples.to_vec();
        sorted.sort();
        sorted.get(sorted.len() / 2).copied().unwrap_or_default()
    }
}

/// Running the `eid-agent` binary in tests, as a user does.
pub mod cli {
    use std::io::Write;
    use std::process::{Command, Output, Stdio};
    use std::time::{Duration, Instant};

    /// Runs `command` with `stdin` written to it, collecting stdout and stderr; fails the test
    /// when it takes longer than `limit` (a hang).
    pub fn run_bounded(mut command: Command, stdin: &str, limit: Duration) -> Output {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut input = child.stdin.take().unwrap();
        // A child that exits before reading its stdin closes the pipe: not an error here.
        let _ = input.write_all(stdin.as_bytes());
        drop(input);
        let deadline = Instant::now() + limit;
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                child.kill().unwrap();
                panic!("hung for {limit:?}: {command:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        child.wait_with_output().unwrap()
    }

    /// Stdout parsed as one JSON document; the test fails showing both streams otherwise.
    pub fn json(out: &Output) -> serde_json::Value {
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "{e}: {}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        })
    }
}

/// Binaries of other workspace packages (the virtual card, the scripted pinentry), found beside
/// the running test executable (`target/<profile>/deps/..`). `cargo test --workspace` builds them;
/// when a single package's tests run, the binary is built here once with cargo.
pub mod bins {
    use std::path::PathBuf;
    use std::process::Command;
    use std::sync::Mutex;

    static BUILD: Mutex<()> = Mutex::new(());

    /// The path of workspace binary `name` from package `package`, built when missing.
    pub fn workspace_bin(package: &str, name: &str) -> PathBuf {
        let exe = std::env::current_exe().unwrap();
        // target/<profile>/deps/<test> -> target/<profile>
        let profile_dir = exe
            .parent()
            .and_then(|deps| deps.parent())
            .expect("test executable lives in target/<profile>/deps")
            .to_path_buf();
        let path = profile_dir.join(name);
        let _guard = BUILD.lock().unwrap_or_else(|e| e.into_inner());
        if !path.exists() {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let mut build = Command::new(cargo);
            build.args(["build", "-p", package, "--bin", name]);
            // Benchmarks run from target/release.
            if profile_dir.file_name().is_some_and(|n| n == "release") {
                build.arg("--release");
            }
            let status = build.status().unwrap();
            assert!(
                status.success(),
                "cargo build -p {package} --bin {name} failed"
            );
        }
        assert!(path.exists(), "{} was not built", path.display());
        path
    }
}
pub mod https;

/// A running `eid-agent run` for the bridge and browser tests: its own configuration directory
/// (so its own local CA), an administrator policy file, and the scripted pinentry (a real
/// pinentry program speaking the Assuan protocol, whose answers a test writes beforehand).
pub mod agent {
    use std::path::{Path, PathBuf};
    use std::process::{Child, Command, ExitStatus, Stdio};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::{Duration, Instant};

    use crate::https::HttpsClient;

    static NEXT: AtomicUsize = AtomicUsize::new(0);

    /// How to start the agent.
    #[derive(Debug, Clone, Default)]
    pub struct AgentOptions {
        /// Origins the administrator allows (no consent dialog).
        pub allow: Vec<String>,
        /// Origins the administrator denies.
        pub deny: Vec<String>,
        /// `--dev`: http loopback origins accepted.
        pub dev: bool,
        /// Extra lines for agent.toml (e.g. `pin_rate_burst = 100`).
        pub agent_toml: String,
        /// `EID_LOG` (default `info,eid_card=debug`).
        pub log_filter: Option<String>,
        /// Kiosk mode: a `[kiosk]` table in the policy file (and `--kiosk` unless
        /// `enabled_in_policy`).
        pub kiosk: Option<KioskOptions>,
        /// Extra lines appended to the policy file (written as is).
        pub policy_toml: String,
        /// `--kiosk` on the command line without writing a `[kiosk]` table (refusal tests).
        pub kiosk_flag: bool,
        /// Extra environment of the agent process (e.g. `EID_NFC_DEVICES`, or
        /// `PCSCLITE_CSOCK_NAME` pointing at a missing socket: a machine without pcscd).
        pub env: Vec<(String, String)>,
    }

    /// The `[kiosk]` table the harness writes. The audit log goes to `<agent.dir>/audit`, its
    /// key to `<agent.dir>/audit.key` ([`Agent::audit_dir`], [`Agent::audit_key`]).
    #[derive(Debug, Clone, Default)]
    pub struct KioskOptions {
        /// The desk's name.
        pub desk: String,
        /// The desk page origins.
        pub origins: Vec<String>,
        /// `idle_timeout_secs` (the agent's default when `None`).
        pub idle_timeout_secs: Option<u64>,
        /// `enabled = true` in the table instead of `--kiosk`.
        pub enabled_in_policy: bool,
        /// Extra lines inside the `[kiosk]` table (e.g. `audit_max_bytes = 4096`).
        pub extra_toml: String,
    }

    /// The agent process; killed on drop.
    #[derive(Debug)]
    pub struct Agent {
        child: Option<Child>,
        pub port: u16,
        pub dir: PathBuf,
        pub ca_pem: String,
        pub script: PathBuf,
        pub prompt_log: PathBuf,
        pub stderr: PathBuf,
    }

    impl Agent {
        /// Starts `bin run` on a free port and waits until it listens.
        pub fn start(bin: &Path, options: &AgentOptions) -> Agent {
            let dir = std::env::temp_dir().join(format!(
                "eid-agent-test-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::SeqCst)
            ));
            let _ = std::fs::remove_dir_all(&dir);
            let config_dir = dir.join("config");
            std::fs::create_dir_all(&config_dir).unwrap();
            let list = |v: &[String]| {
                v.iter()
                    .map(|o| format!("{o:?}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let policy = dir.join("policy.toml");
            let mut policy_text = format!(
                "allow = [{}]\ndeny = [{}]\n{}\n",
                list(&options.allow),
                list(&options.deny),
                options.policy_toml
            );
            if let Some(kiosk) = &options.kiosk {
                policy_text.push_str(&format!(
                    "[kiosk]\ndesk = {:?}\norigins = [{}]\naudit_dir = {:?}\naudit_key_file = {:?}\n",
                    kiosk.desk,
                    list(&kiosk.origins),
                    dir.join("audit").display().to_string(),
                    dir.join("audit.key").display().to_string(),
                ));
                if let Some(secs) = kiosk.idle_timeout_secs {
                    policy_text.push_str(&format!("idle_timeout_secs = {secs}\n"));
                }
                if kiosk.enabled_in_policy {
                    policy_text.push_str("enabled = true\n");
                }
                policy_text.push_str(&kiosk.extra_toml);
                policy_text.push('\n');
            }
            std::fs::write(&policy, policy_text).unwrap();
            std::fs::write(config_dir.join("agent.toml"), &options.agent_toml).unwrap();
            let script = dir.join("pinentry-script");
            let prompt_log = dir.join("pinentry-log");
            std::fs::write(&script, "").unwrap();
            let port_file = dir.join("port");
            let stderr = dir.join("agent.log");
            let pinentry =
                crate::bins::workspace_bin("eid-hardware-mocks", "eid-scripted-pinentry");
            let mut command = Command::new(bin);
            command
                .arg("run")
                .args(["--port", "0", "--listen", "127.0.0.1"])
                .arg("--port-file")
                .arg(&port_file)
                .arg("--config-dir")
                .arg(&config_dir)
                .arg("--policy")
                .arg(&policy)
                .arg("--pinentry")
                .arg(&pinentry)
                // The harness's agents keep their log file to themselves and show no tray icon
                // (agent/tests/tray.rs tests the tray on a bus of its own).
                .arg("--no-tray")
                .env("XDG_STATE_HOME", dir.join("state"))
                .env("EID_PINENTRY_SCRIPT", &script)
                .env("EID_PINENTRY_LOG", &prompt_log)
                .env(
                    "EID_LOG",
                    options
                        .log_filter
                        .as_deref()
                        .unwrap_or("info,eid_card=debug"),
                )
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&stderr).unwrap());
            if options.dev {
                command.arg("--dev");
            }
            command.envs(options.env.iter().map(|(k, v)| (k, v)));
            let kiosk_flag =
                options.kiosk_flag || options.kiosk.as_ref().is_some_and(|k| !k.enabled_in_policy);
            if kiosk_flag {
                command.arg("--kiosk");
            }
            let child = command.spawn().unwrap();
            let mut agent = Agent {
                child: Some(child),
                port: 0,
                dir,
                ca_pem: String::new(),
                script,
                prompt_log,
                stderr,
            };
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                if let Ok(text) = std::fs::read_to_string(&port_file)
                    && let Ok(port) = text.trim().parse::<u16>()
                {
                    agent.port = port;
                    break;
                }
                if let Some(status) = agent.child.as_mut().and_then(|c| c.try_wait().unwrap()) {
                    panic!("the agent exited ({status}):\n{}", agent.log());
                }
                assert!(
                    Instant::now() < deadline,
                    "the agent never listened:\n{}",
                    agent.log()
                );
                std::thread::sleep(Duration::from_millis(20));
            }
            agent.ca_pem = std::fs::read_to_string(config_dir.join("tls").join("ca.pem")).unwrap();
            agent
        }

        /// Where a kiosk agent started with [`KioskOptions`] writes its audit log.
        pub fn audit_dir(&self) -> PathBuf {
            self.dir.join("audit")
        }

        /// The audit key file of a kiosk agent started with [`KioskOptions`].
        pub fn audit_key(&self) -> PathBuf {
            self.dir.join("audit.key")
        }

        /// The policy file the agent was started with.
        pub fn policy_file(&self) -> PathBuf {
            self.dir.join("policy.toml")
        }

        /// A client trusting this agent's local CA.
        pub fn client(&self) -> HttpsClient {
            HttpsClient::new(
                format!("127.0.0.1:{}", self.port).parse().unwrap(),
                &self.ca_pem,
                "127.0.0.1",
            )
        }

        /// The answers the pinentry gives next, one per dialog (`pin 1111`, `cancel`, `ok`,
        /// `notok`, `pin 1111 delay=1500`, `hang`).
        pub fn answer(&self, lines: &[&str]) {
            let mut text = lines.join("\n");
            text.push('\n');
            std::fs::write(&self.script, text).unwrap();
        }

        /// The dialogs shown so far (one JSON object per dialog).
        pub fn prompts(&self) -> Vec<serde_json::Value> {
            std::fs::read_to_string(&self.prompt_log)
                .unwrap_or_default()
                .lines()
                .filter_map(|l| serde_json::from_str(l).ok())
                .collect()
        }

        /// The agent's log so far.
        pub fn log(&self) -> String {
            std::fs::read_to_string(&self.stderr).unwrap_or_default()
        }

        /// The agent's process id while it runs (to signal it and keep its files, unlike
        /// [`Agent::terminate`], which removes them).
        pub fn pid(&self) -> Option<u32> {
            self.child.as_ref().map(Child::id)
        }

        /// SIGTERM, then waits (at most `limit`) for the exit.
        pub fn terminate(mut self, limit: Duration) -> Option<ExitStatus> {
            let mut child = self.child.take()?;
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let deadline = Instant::now() + limit;
            loop {
                if let Some(status) = child.try_wait().unwrap() {
                    return Some(status);
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    return None;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    impl Drop for Agent {
        fn drop(&mut self) {
            if let Some(mut child) = self.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
            if !std::thread::panicking() {
                let _ = std::fs::remove_dir_all(&self.dir);
            }
        }
    }
}
pub mod browser;
pub mod cdp;
pub mod enrolment;
