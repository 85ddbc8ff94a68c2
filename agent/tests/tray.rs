//! The tray icon over a real D-Bus session, as a desktop sees it: `eid-agent run` inside
//! `dbus-run-session`, and this test in the desktop's role, implementing the
//! StatusNotifierWatcher the item registers with, then reading the item's properties and its
//! `com.canonical.dbusmenu` menu and clicking entries the way a panel does. The card is a virtual
//! card behind the real pcscd (vpcd), put in and taken out during the test.
//!
//! Needs `dbus-run-session` (Debian: dbus-daemon) and, for the card, pcscd with vpcd
//! (scripts/start-pcscd.sh). Without them the tests say why and skip, unless
//! `EID_REQUIRE_BROWSER=1` or `CI=true` (then they fail).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use eid_agent::tray::{self, Attention, TrayState};
use eid_hardware_mocks::profiles::iso7816_test::{self as test_card, Variant};
use eid_hardware_mocks::vpcd::VpcdCard;
use eid_tests::{Slot, pcscd_available, wait_for_card};
use zbus::zvariant::{OwnedObjectPath, OwnedValue, Value};

const AGENT: &str = env!("CARGO_BIN_EXE_eid-agent");
const REMEMBERED: &str = "https://remembered.example";
const KEPT: &str = "https://kept.example";
const DESK: &str = "https://desk.example";
const SNI: &str = "org.kde.StatusNotifierItem";

fn required() -> bool {
    std::env::var_os("EID_REQUIRE_BROWSER").is_some_and(|v| v == "1")
        || std::env::var_os("CI").is_some_and(|v| v == "true")
}

fn dbus_run_session_available() -> bool {
    let found = Command::new("dbus-run-session")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        assert!(
            !required(),
            "dbus-run-session is missing (apt-get install dbus-daemon)"
        );
        eprintln!("SKIPPED (needs dbus-run-session): apt-get install dbus-daemon");
    }
    found
}

/// A scratch directory, removed unless the test failed.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("eid-tray-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// The agent's configuration: remembered sites, the administrator's policy, a log folder, and
/// an `xdg-open` that writes down what it was asked to open.
struct Setup {
    dir: PathBuf,
    config: PathBuf,
    policy: PathBuf,
    state: PathBuf,
    bin: PathBuf,
    opened: PathBuf,
    /// The agent's pinentry program (`/bin/false` unless a test needs dialogs).
    pinentry: PathBuf,
}

impl Setup {
    fn new(scratch: &Scratch) -> Setup {
        let dir = scratch.0.clone();
        let config = dir.join("config");
        std::fs::create_dir_all(&config).unwrap();
        std::fs::write(
            config.join("sites.json"),
            format!(
                r#"{{"version": 1, "sites": [{{"origin": "{REMEMBERED}", "granted": "2026-01-02T03:04:05Z"}}, {{"origin": "{KEPT}", "granted": "2026-01-02T03:04:05Z"}}]}}"#
            ),
        )
        .unwrap();
        let policy = dir.join("policy.toml");
        std::fs::write(&policy, format!("allow = [\"{DESK}\"]\n")).unwrap();
        let bin = dir.join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let opened = dir.join("opened");
        let fake = bin.join("xdg-open");
        std::fs::write(
            &fake,
            format!("#!/bin/sh\necho \"$1\" >> '{}'\n", opened.display()),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        Setup {
            config,
            policy,
            state: dir.join("state"),
            bin,
            opened,
            pinentry: PathBuf::from("/bin/false"),
            dir,
        }
    }

    fn log_dir(&self) -> PathBuf {
        self.state.join("eid-agent")
    }

    fn opened(&self) -> Vec<String> {
        std::fs::read_to_string(&self.opened)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// `program` with the agent's environment (PATH with the fake xdg-open, the log folder).
    fn agent_command(&self, program: &str) -> Command {
        let mut command = Command::new(program);
        let path = format!(
            "{}:{}",
            self.bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        command
            .env("PATH", path)
            .env("XDG_STATE_HOME", &self.state)
            .env("EID_LOG", "info")
            .env("AGENT", AGENT)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(self.dir.join("stdout")).unwrap())
            .stderr(std::fs::File::create(self.dir.join("stderr")).unwrap());
        command
    }

    fn run_args(&self) -> Vec<String> {
        ["run", "--port", "0", "--listen", "127.0.0.1"]
            .iter()
            .map(|s| (*s).to_owned())
            .chain([
                "--pinentry".to_owned(),
                self.pinentry.display().to_string(),
                "--port-file".to_owned(),
                self.dir.join("port").display().to_string(),
                "--config-dir".to_owned(),
                self.config.display().to_string(),
                "--policy".to_owned(),
                self.policy.display().to_string(),
            ])
            .collect()
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.join("stderr")).unwrap_or_default()
    }

    fn stdout(&self) -> String {
        std::fs::read_to_string(self.dir.join("stdout")).unwrap_or_default()
    }
}

/// `dbus-run-session -- sh -c '...exec eid-agent run ...'`: a private session bus whose address
/// the shell writes down, then waits (for the test's watcher to be on the bus) before becoming
/// the agent.
struct Session {
    child: Option<Child>,
    address: String,
    go: PathBuf,
    agent_pid: PathBuf,
}

impl Session {
    fn start(setup: &Setup, extra: &[&str]) -> Session {
        Session::start_with_env(setup, extra, &[])
    }

    fn start_with_env(setup: &Setup, extra: &[&str], env: &[(&str, PathBuf)]) -> Session {
        let address_file = setup.dir.join("bus-address");
        let go = setup.dir.join("go");
        let agent_pid = setup.dir.join("agent-pid");
        let script = r#"echo "$DBUS_SESSION_BUS_ADDRESS" > "$ADDRESS_FILE"
while [ ! -e "$GO_FILE" ]; do sleep 0.05; done
echo $$ > "$PID_FILE"
exec "$AGENT" "$@""#;
        let mut command = setup.agent_command("dbus-run-session");
        command
            .args(["--", "sh", "-c", script, "sh"])
            .args(setup.run_args())
            .args(extra)
            .env("ADDRESS_FILE", &address_file)
            .env("GO_FILE", &go)
            .env("PID_FILE", &agent_pid);
        for (name, value) in env {
            command.env(name, value);
        }
        // Its own process group: the bus daemon and the agent's dialogs go with it.
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let child = command.spawn().unwrap();
        let mut session = Session {
            child: Some(child),
            address: String::new(),
            go,
            agent_pid,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(text) = std::fs::read_to_string(&address_file)
                && text.ends_with('\n')
                && !text.trim().is_empty()
            {
                session.address = text.trim().to_owned();
                break;
            }
            assert!(
                Instant::now() < deadline,
                "dbus-run-session gave no address: {}",
                setup.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        session
    }

    /// Lets the shell exec the agent.
    fn go(&self) {
        std::fs::write(&self.go, "").unwrap();
    }

    /// Waits for the agent (and so the session) to end.
    fn wait(&mut self, limit: Duration) -> Option<ExitStatus> {
        let child = self.child.as_mut()?;
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                self.child = None;
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let Some(pgid) = self.child.as_ref().map(|c| c.id()) else {
            return;
        };
        if let Ok(pid) = std::fs::read_to_string(&self.agent_pid) {
            let _ = Command::new("kill").args(["-TERM", pid.trim()]).status();
        }
        let _ = self.wait(Duration::from_secs(5));
        // Whatever is left of the session (the bus daemon, a dialog the test left open).
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{pgid}")])
            .stderr(Stdio::null())
            .status();
        if let Some(mut child) = self.child.take() {
            let _ = child.wait();
        }
    }
}

/// The desktop's StatusNotifierWatcher: it records who registers.
#[derive(Clone, Default)]
struct Watcher {
    items: Arc<Mutex<Vec<String>>>,
}

#[zbus::interface(name = "org.kde.StatusNotifierWatcher")]
impl Watcher {
    async fn register_status_notifier_item(
        &self,
        service: &str,
        #[zbus(header)] header: zbus::message::Header<'_>,
    ) {
        // ksni registers its well-known name; a path means "the sender, at this path".
        let name = if service.starts_with('/') {
            header.sender().map(|s| s.to_string()).unwrap_or_default()
        } else {
            service.to_owned()
        };
        self.items.lock().unwrap().push(name);
    }

    async fn register_status_notifier_host(&self, _service: &str) {}

    #[zbus(property)]
    async fn registered_status_notifier_items(&self) -> Vec<String> {
        self.items.lock().unwrap().clone()
    }

    #[zbus(property)]
    async fn is_status_notifier_host_registered(&self) -> bool {
        true
    }

    #[zbus(property)]
    async fn protocol_version(&self) -> i32 {
        0
    }
}

/// One node of a dbusmenu layout.
#[derive(Debug)]
struct Node {
    id: i32,
    label: String,
    enabled: bool,
    submenu: bool,
    children: Vec<Node>,
}

impl Node {
    fn labels(&self) -> Vec<&str> {
        self.children
            .iter()
            .filter(|c| !c.label.is_empty())
            .map(|c| c.label.as_str())
            .collect()
    }

    fn find(&self, label: &str) -> Option<&Node> {
        if self.label == label {
            return Some(self);
        }
        self.children.iter().find_map(|c| c.find(label))
    }
}

fn node(value: &Value<'_>) -> Node {
    match value {
        Value::Value(inner) => node(inner),
        Value::Structure(s) => {
            let fields = s.fields();
            let Value::I32(id) = &fields[0] else {
                panic!("layout id: {:?}", fields[0]);
            };
            let Value::Dict(props) = &fields[1] else {
                panic!("layout properties: {:?}", fields[1]);
            };
            let props: HashMap<String, OwnedValue> = props.try_clone().unwrap().try_into().unwrap();
            let Value::Array(children) = &fields[2] else {
                panic!("layout children: {:?}", fields[2]);
            };
            let children: Vec<OwnedValue> = children
                .iter()
                .map(|c| OwnedValue::try_from(c.try_clone().unwrap()).unwrap())
                .collect();
            node_of(*id, &props, &children)
        }
        other => panic!("not a layout: {other:?}"),
    }
}

fn node_of(id: i32, props: &HashMap<String, OwnedValue>, children: &[OwnedValue]) -> Node {
    let text = |key: &str| {
        props
            .get(key)
            .and_then(|v| String::try_from(v.try_clone().unwrap()).ok())
    };
    Node {
        id,
        label: text("label").unwrap_or_default(),
        enabled: props
            .get("enabled")
            .and_then(|v| bool::try_from(v.try_clone().unwrap()).ok())
            .unwrap_or(true),
        submenu: text("children-display").is_some_and(|d| d == "submenu"),
        children: children.iter().map(|c| node(c)).collect(),
    }
}

/// The test's side of the bus.
struct Desktop {
    conn: zbus::Connection,
    watcher: Watcher,
    item: String,
}

impl Desktop {
    async fn connect(address: &str) -> Desktop {
        let watcher = Watcher::default();
        let conn = zbus::connection::Builder::address(address)
            .unwrap()
            .name("org.kde.StatusNotifierWatcher")
            .unwrap()
            .serve_at("/StatusNotifierWatcher", watcher.clone())
            .unwrap()
            .build()
            .await
            .unwrap();
        Desktop {
            conn,
            watcher,
            item: String::new(),
        }
    }

    async fn wait_for_item(&mut self, setup: &Setup) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(item) = self.watcher.items.lock().unwrap().first() {
                self.item = item.clone();
                return;
            }
            assert!(
                Instant::now() < deadline,
                "no StatusNotifierItem registered; agent stderr:\n{}",
                setup.stderr()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn property(&self, name: &str) -> OwnedValue {
        let props = zbus::fdo::PropertiesProxy::builder(&self.conn)
            .destination(self.item.as_str())
            .unwrap()
            .path("/StatusNotifierItem")
            .unwrap()
            .build()
            .await
            .unwrap();
        props
            .get(SNI.try_into().unwrap(), name)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    async fn title(&self) -> String {
        String::try_from(self.property("Title").await).unwrap()
    }

    /// (title, description) of the ToolTip.
    async fn tooltip(&self) -> (String, String) {
        type Pixmaps = Vec<(i32, i32, Vec<u8>)>;
        let (_icon, _pixmaps, title, description): (String, Pixmaps, String, String) =
            self.property("ToolTip").await.try_into().unwrap();
        (title, description)
    }

    async fn icon(&self) -> Vec<(i32, i32, Vec<u8>)> {
        self.property("IconPixmap").await.try_into().unwrap()
    }

    async fn menu_path(&self) -> OwnedObjectPath {
        self.property("Menu").await.try_into().unwrap()
    }

    async fn layout(&self) -> Node {
        let path = self.menu_path().await;
        let reply = self
            .conn
            .call_method(
                Some(self.item.as_str()),
                path.as_str(),
                Some("com.canonical.dbusmenu"),
                "GetLayout",
                &(0i32, -1i32, Vec::<String>::new()),
            )
            .await
            .unwrap();
        type Layout = (i32, HashMap<String, OwnedValue>, Vec<OwnedValue>);
        let (_revision, (id, props, children)): (u32, Layout) = reply.body().deserialize().unwrap();
        node_of(id, &props, &children)
    }

    async fn click(&self, label: &str) {
        let layout = self.layout().await;
        let target = layout
            .find(label)
            .unwrap_or_else(|| panic!("no menu entry {label:?} in {layout:#?}"));
        let path = self.menu_path().await;
        self.conn
            .call_method(
                Some(self.item.as_str()),
                path.as_str(),
                Some("com.canonical.dbusmenu"),
                "Event",
                &(target.id, "clicked", Value::I32(0), 0u32),
            )
            .await
            .unwrap();
    }

    /// Waits until the title is the one of `state`.
    async fn wait_for_state(&self, state: &TrayState, setup: &Setup) {
        let deadline = Instant::now() + Duration::from_secs(20);
        let want = state.title();
        loop {
            let title = self.title().await;
            if title == want {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "title stayed {title:?}, expected {want:?}; agent stderr:\n{}",
                setup.stderr()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The icon of `state` as the item publishes it (ARGB32, network byte order).
fn argb(state: &TrayState) -> Vec<(i32, i32, Vec<u8>)> {
    let mut data = tray::icon_rgba(state);
    for pixel in data.chunks_mut(4) {
        pixel.rotate_right(1);
    }
    let size = tray::ICON_SIZE as i32;
    vec![(size, size, data)]
}

async fn wait_until(what: &str, setup: &Setup, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !check() {
        assert!(
            Instant::now() < deadline,
            "{what} did not happen; agent stderr:\n{}",
            setup.stderr()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn the_tray_is_registered_follows_the_card_and_its_menu_acts() {
    if !dbus_run_session_available() || !pcscd_available() {
        return;
    }
    // Both vpcd slots, empty: the agent sees every reader, so no other test's card may show.
    let (slot, context) = Slot::acquire_empty();
    let (other, _) = Slot::acquire_empty();
    let scratch = Scratch::new("main");
    let setup = Setup::new(&scratch);
    let mut session = Session::start(&setup, &[]);
    let rt = runtime();
    rt.block_on(async {
        let mut desktop = Desktop::connect(&session.address).await;
        session.go();
        desktop.wait_for_item(&setup).await;
        assert!(
            desktop.item.starts_with("org.kde.StatusNotifierItem-"),
            "{}",
            desktop.item
        );

        // Two readers, no card.
        let reader = TrayState::Reader { readers: 2 };
        desktop.wait_for_state(&reader, &setup).await;
        assert_eq!(
            String::try_from(desktop.property("Status").await).unwrap(),
            "Active"
        );
        assert_eq!(desktop.icon().await, argb(&reader));
        assert_eq!(
            desktop.tooltip().await,
            (reader.title(), reader.status_line())
        );

        // The menu, as a panel shows it.
        let layout = desktop.layout().await;
        assert_eq!(
            layout.labels(),
            [
                reader.status_line().as_str(),
                tray::SITES_LABEL,
                tray::DIAGNOSTICS_LABEL,
                tray::OPEN_LOG_LABEL,
                tray::QUIT_LABEL
            ],
            "{layout:#?}"
        );
        let status = layout.find(&reader.status_line()).unwrap();
        assert!(!status.enabled, "the status line is not clickable");
        let sites = layout.find(tray::SITES_LABEL).unwrap();
        assert!(sites.submenu);
        let admin = format!("{DESK} (allowed by your administrator)");
        assert_eq!(
            sites.labels(),
            [
                format!("Revoke {REMEMBERED}").as_str(),
                format!("Revoke {KEPT}").as_str(),
                admin.as_str()
            ]
        );
        assert!(sites.find(&format!("Revoke {REMEMBERED}")).unwrap().enabled);
        assert!(!sites.find(&admin).unwrap().enabled, "not revocable here");

        // A card goes in: the state, its icon and the status line follow; out: back.
        let mut card =
            VpcdCard::attach(slot.addr(), test_card::card(Variant::Full).unwrap()).unwrap();
        wait_for_card(&context, &slot.reader_name(), true);
        let title = loop {
            let title = desktop.title().await;
            if title != reader.title()
                && title != TrayState::Attention(Attention::ServiceDown).title()
            {
                break title;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert_eq!(title, "eID agent: card present");
        let icon = desktop.icon().await;
        let card_state = TrayState::Card {
            reader: slot.reader_name(),
            card: None,
        };
        assert_eq!(icon, argb(&card_state));
        let (_, line) = desktop.tooltip().await;
        assert!(line.contains(&slot.reader_name()), "{line}");
        let layout = desktop.layout().await;
        assert_eq!(layout.labels()[0], line, "the menu's status line follows");
        card.remove();
        wait_for_card(&context, &slot.reader_name(), false);
        desktop.wait_for_state(&reader, &setup).await;
        assert_eq!(desktop.icon().await, argb(&reader));

        // "Revoke" forgets the site in sites.json, and the menu is rebuilt without it.
        desktop.click(&format!("Revoke {REMEMBERED}")).await;
        let sites_file = setup.config.join("sites.json");
        wait_until("the revocation in sites.json", &setup, || {
            let text = std::fs::read_to_string(&sites_file).unwrap();
            !text.contains(REMEMBERED) && text.contains(KEPT)
        })
        .await;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let layout = desktop.layout().await;
            let sites = layout.find(tray::SITES_LABEL).unwrap();
            if sites.find(&format!("Revoke {REMEMBERED}")).is_none() {
                assert!(sites.find(&format!("Revoke {KEPT}")).is_some());
                break;
            }
            assert!(Instant::now() < deadline, "menu not rebuilt: {layout:#?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }

        // "Open log folder" opens the folder the log is written to.
        desktop.click(tray::OPEN_LOG_LABEL).await;
        let log_dir = setup.log_dir();
        wait_until("xdg-open of the log folder", &setup, || {
            setup.opened().contains(&log_dir.display().to_string())
        })
        .await;
        let log = std::fs::read_to_string(log_dir.join("agent.log")).unwrap();
        assert!(log.contains("tray icon on the session bus"), "{log}");
        assert!(log.contains("site revoked from the tray menu"), "{log}");

        // "Diagnostics…" writes the doctor's report there, opens it, and sums it up in the menu.
        desktop.click(tray::DIAGNOSTICS_LABEL).await;
        let report = log_dir.join("doctor.txt");
        wait_until("xdg-open of doctor.txt", &setup, || {
            setup.opened().contains(&report.display().to_string())
        })
        .await;
        let text = std::fs::read_to_string(&report).unwrap();
        assert!(text.contains("pcscd"), "{text}");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let layout = desktop.layout().await;
            if layout
                .labels()
                .iter()
                .any(|l| l.starts_with("Diagnostics: "))
            {
                break;
            }
            assert!(Instant::now() < deadline, "no summary: {layout:#?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }

        // "Quit": the agent stops as on SIGTERM, exit code 0.
        desktop.click(tray::QUIT_LABEL).await;
    });
    let status = session
        .wait(Duration::from_secs(15))
        .unwrap_or_else(|| panic!("Quit did not stop the agent:\n{}", setup.stderr()));
    assert!(status.success(), "{status}:\n{}", setup.stderr());
    assert!(
        setup.stdout().contains("eID agent stopped"),
        "{}",
        setup.stdout()
    );
    drop(other);
}

#[test]
fn without_a_session_bus_the_agent_runs_and_says_so_once() {
    let scratch = Scratch::new("nobus");
    let setup = Setup::new(&scratch);
    let mut command = setup.agent_command(AGENT);
    command
        .args(setup.run_args())
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .env_remove("XDG_RUNTIME_DIR");
    let mut child = command.spawn().unwrap();
    let port_file = setup.dir.join("port");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !std::fs::read_to_string(&port_file).is_ok_and(|p| p.trim().parse::<u16>().is_ok()) {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the agent exited ({status}):\n{}", setup.stderr());
        }
        assert!(
            Instant::now() < deadline,
            "never listened:\n{}",
            setup.stderr()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // It keeps running: give the tray a chance to (wrongly) try again.
    std::thread::sleep(Duration::from_secs(1));
    assert!(child.try_wait().unwrap().is_none(), "{}", setup.stderr());
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}:\n{}", setup.stderr());
    let stderr = setup.stderr();
    assert_eq!(
        stderr.matches("running without a tray icon").count(),
        1,
        "{stderr}"
    );
    // The same log, in the log folder.
    let log = std::fs::read_to_string(setup.log_dir().join("agent.log")).unwrap();
    assert_eq!(log.matches(tray::NO_TRAY_MESSAGE).count(), 1, "{log}");
}

#[test]
fn no_tray_keeps_the_agent_off_the_bus() {
    if !dbus_run_session_available() {
        return;
    }
    let scratch = Scratch::new("notray");
    let setup = Setup::new(&scratch);
    let session = Session::start(&setup, &["--no-tray"]);
    let rt = runtime();
    rt.block_on(async {
        let desktop = Desktop::connect(&session.address).await;
        session.go();
        let port_file = setup.dir.join("port");
        wait_until("the agent listening", &setup, || port_file.exists()).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(desktop.watcher.items.lock().unwrap().is_empty());
        let names = zbus::fdo::DBusProxy::new(&desktop.conn)
            .await
            .unwrap()
            .list_names()
            .await
            .unwrap();
        assert!(!names.iter().any(|n| n.starts_with(SNI)), "{names:?}");
    });
    assert!(!setup.stderr().contains("running without a tray icon"));
    drop(session);
}

#[test]
fn a_dialog_waiting_for_the_user_needs_attention() {
    if !dbus_run_session_available() {
        return;
    }
    let scratch = Scratch::new("dialog");
    let mut setup = Setup::new(&scratch);
    setup.pinentry = eid_tests::bins::workspace_bin("eid-hardware-mocks", "eid-scripted-pinentry");
    let script = setup.dir.join("pinentry-script");
    // The consent dialog stays open: the user has not answered yet.
    std::fs::write(&script, "hang\n").unwrap();
    let session = Session::start_with_env(
        &setup,
        &[],
        &[
            ("EID_PINENTRY_SCRIPT", script.clone()),
            ("EID_PINENTRY_LOG", setup.dir.join("pinentry-log")),
        ],
    );
    let rt = runtime();
    rt.block_on(async {
        let mut desktop = Desktop::connect(&session.address).await;
        session.go();
        desktop.wait_for_item(&setup).await;
        let port_file = setup.dir.join("port");
        wait_until("the agent listening", &setup, || {
            std::fs::read_to_string(&port_file).is_ok_and(|p| p.trim().parse::<u16>().is_ok())
        })
        .await;
        let port: u16 = std::fs::read_to_string(&port_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let ca = std::fs::read_to_string(setup.config.join("tls").join("ca.pem")).unwrap();
        // A page not yet allowed asks for the certificate: the consent dialog opens and waits.
        let _request = std::thread::spawn(move || {
            let client = eid_tests::https::HttpsClient::new(
                format!("127.0.0.1:{port}").parse().unwrap(),
                &ca,
                "127.0.0.1",
            );
            let _ = client.send(
                &eid_tests::https::Request::post("/v1/certificate")
                    .origin("https://asking.example")
                    .json(&serde_json::json!({ "type": "authentication" })),
            );
        });
        let waiting = TrayState::Attention(Attention::DialogWaiting);
        desktop.wait_for_state(&waiting, &setup).await;
        assert_eq!(desktop.icon().await, argb(&waiting));
        let layout = desktop.layout().await;
        assert_eq!(layout.labels()[0], waiting.status_line());
    });
    drop(session);
}
