//! The tray icon of `eid-agent run`: what the agent sees at a glance, and the few things a user
//! does without a terminal.
//!
//! # What it shows
//! One of five states, each with its own icon (drawn here, so there are no image files to ship
//! and no theme to depend on), a title saying the state in words, and a status line:
//!
//! | state | when | icon |
//! |---|---|---|
//! | `attention` | pcscd is unreachable, or a consent/PIN/CAN dialog waits for the user | red triangle with "!" |
//! | `busy` | a card operation runs | orange card with three dots |
//! | `card` | a card is in a reader | green card with a gold chip |
//! | `reader` | a reader, no card | blue reader with its slot |
//! | `no-reader` | no reader | grey circle, struck through |
//!
//! The first matching row wins: a dialog hidden behind other windows is what the user must know
//! about first, then a dead pcscd (nothing works until it is back).
//!
//! The menu: the status line (disabled), "Sites allowed to use your card" (each site the user
//! chose to always allow as "Revoke <origin>", which forgets it; the administrator's allowed sites
//! are listed but cannot be revoked here), "Diagnostics…" (runs [`crate::doctor::collect`],
//! writes `doctor.txt` into the log folder, opens it and puts the summary in the menu), "Open log
//! folder" ([`crate::logging::log_dir`]) and "Quit" (the same graceful shutdown as SIGTERM).
//!
//! # Kiosk mode
//! At a desk the tray is the operator's, and citizens pass in front of the screen: no sites
//! menu (nothing is remembered), nothing of any card but its kind, the desk's name, and the
//! agent's last own problem in plain words (the smart card service, a reader, the dialogs, the
//! audit log: not a citizen's wrong PIN), cleared by the next operation that succeeds.
//!
//! # Threads
//! The icon is a StatusNotifierItem on the D-Bus session bus, through `tray-icon`'s `ksni`
//! backend: pure Rust, no GTK, no display needed. Its menu objects are not `Send`, so one thread
//! ("tray") owns the icon and the menu and is the only one touching them. It is driven by one
//! channel of [`Msg`]: changes of the reader table and of the card worker's activity (forwarded
//! by a small task on the agent's runtime from their `watch` channels, so the bridge only ever
//! publishes and never waits for the tray), menu clicks (`MenuEvent` handler), the outcome of
//! diagnostics (which run on a thread of their own: they may take seconds), and stop. Every two
//! seconds it also re-reads `sites.json` (only when its stamp changed; see
//! [`crate::consent`]), so a site remembered by a consent dialog or revoked with `eid-agent sites
//! revoke` shows up in the menu.
//!
//! # Without a desktop
//! No session bus (neither `DBUS_SESSION_BUS_ADDRESS` nor `$XDG_RUNTIME_DIR/bus`), or an icon that
//! cannot be created: the agent logs once "no desktop session: running without a tray icon" and
//! runs as before. A desktop without a tray host (no StatusNotifierWatcher) still gets the item on
//! the bus; `ksni` registers it when a watcher appears.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::Duration;

use tokio::sync::{Notify, watch};
use tray_icon::menu::{IsMenuItem, Menu, MenuEvent, MenuId, MenuItem, PredefinedMenuItem, Submenu};
use tray_icon::{Icon, TrayIcon, TrayIconBuilder};

use crate::bridge::readers::{ReaderView, Readers};
use crate::bridge::worker::Activity;
use crate::config::{ConfigArgs, parse_origin};
use crate::consent::{ConsentError, Site, SiteStore};

/// The message logged (once) when the agent runs without a tray icon.
pub const NO_TRAY_MESSAGE: &str = "no desktop session: running without a tray icon";

/// Menu labels (tests and documentation read them).
pub const SITES_LABEL: &str = "Sites allowed to use your card";
pub const REVOKE_PREFIX: &str = "Revoke ";
pub const DIAGNOSTICS_LABEL: &str = "Diagnostics…";
pub const OPEN_LOG_LABEL: &str = "Open log folder";
pub const QUIT_LABEL: &str = "Quit";

/// Menu item ids.
const ID_STATUS: &str = "status";
const ID_DIAGNOSTICS: &str = "diagnostics";
const ID_OPEN_LOG: &str = "open-log-folder";
const ID_QUIT: &str = "quit";
const ID_REVOKE: &str = "revoke:";

/// The side of the square icons, in pixels.
pub const ICON_SIZE: u32 = 32;

/// How often the tray looks at `sites.json` for changes made elsewhere.
const SITES_POLL: Duration = Duration::from_secs(2);

/// How long `start` waits for the icon to be on the bus.
const START_LIMIT: Duration = Duration::from_secs(10);

/// Why attention is needed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attention {
    /// pcscd does not answer.
    ServiceDown,
    /// A consent, PIN or CAN dialog waits for the user.
    DialogWaiting,
}

/// What the icon shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrayState {
    NoReader,
    Reader {
        readers: usize,
    },
    Card {
        reader: String,
        card: Option<String>,
    },
    Busy,
    Attention(Attention),
}

impl TrayState {
    /// The state's stable name (`no-reader`, `reader`, `card`, `busy`, `attention`).
    pub fn id(&self) -> &'static str {
        match self {
            TrayState::NoReader => "no-reader",
            TrayState::Reader { .. } => "reader",
            TrayState::Card { .. } => "card",
            TrayState::Busy => "busy",
            TrayState::Attention(_) => "attention",
        }
    }

    /// The state in a few words: the icon's title is "eID agent: <words>".
    pub fn words(&self) -> &'static str {
        match self {
            TrayState::NoReader => "no card reader",
            TrayState::Reader { .. } => "reader ready, no card",
            TrayState::Card { .. } => "card present",
            TrayState::Busy => "busy, using your card",
            TrayState::Attention(Attention::ServiceDown) => {
                "attention needed: smart card service not running"
            }
            TrayState::Attention(Attention::DialogWaiting) => {
                "attention needed: a dialog is waiting for you"
            }
        }
    }

    /// The icon's title.
    pub fn title(&self) -> String {
        format!("eID agent: {}", self.words())
    }

    /// The status line: the menu's first entry and the tooltip.
    pub fn status_line(&self) -> String {
        match self {
            TrayState::NoReader => "No card reader is connected".to_owned(),
            TrayState::Reader { readers: 1 } => "Reader ready: insert your card".to_owned(),
            TrayState::Reader { readers } => {
                format!("{readers} readers ready: insert your card")
            }
            TrayState::Card {
                reader,
                card: Some(card),
            } => format!("{card} in {reader}"),
            TrayState::Card { reader, card: None } => format!("A card is in {reader}"),
            TrayState::Busy => "Using your card: do not remove it".to_owned(),
            TrayState::Attention(Attention::ServiceDown) => {
                "The smart card service (pcscd) is not running: start it, or run Diagnostics"
                    .to_owned()
            }
            TrayState::Attention(Attention::DialogWaiting) => {
                "A dialog is waiting for your answer".to_owned()
            }
        }
    }
}

/// The state for what the reader monitor and the card worker report.
pub fn state_of(service_up: bool, readers: &[ReaderView], activity: Activity) -> TrayState {
    if activity.dialog {
        return TrayState::Attention(Attention::DialogWaiting);
    }
    if !service_up {
        return TrayState::Attention(Attention::ServiceDown);
    }
    if activity.running {
        return TrayState::Busy;
    }
    if let Some(r) = readers.iter().find(|r| r.card_present) {
        return TrayState::Card {
            reader: r.name.clone(),
            card: r.card.as_ref().map(|c| c.name.to_owned()),
        };
    }
    if readers.is_empty() {
        TrayState::NoReader
    } else {
        TrayState::Reader {
            readers: readers.len(),
        }
    }
}

/// The icon of a state: [`ICON_SIZE`]² RGBA pixels, row by row.
pub fn icon_rgba(state: &TrayState) -> Vec<u8> {
    let n = ICON_SIZE as usize;
    let mut out = Vec::with_capacity(n * n * 4);
    for y in 0..n {
        for x in 0..n {
            // Pixel centres, in icon coordinates.
            let px = x as f32 + 0.5;
            let py = y as f32 + 0.5;
            out.extend_from_slice(&pixel(state, px, py));
        }
    }
    out
}

const CLEAR: [u8; 4] = [0, 0, 0, 0];
const WHITE: [u8; 4] = [255, 255, 255, 255];

fn inside(px: f32, py: f32, x0: f32, y0: f32, x1: f32, y1: f32) -> bool {
    px >= x0 && px < x1 && py >= y0 && py < y1
}

/// A card: a rectangle with cut corners.
fn in_card(px: f32, py: f32) -> bool {
    let (x0, y0, x1, y1) = (3.0, 7.0, 29.0, 25.0);
    inside(px, py, x0, y0, x1, y1)
        && !((px < x0 + 2.0 || px > x1 - 2.0) && (py < y0 + 2.0 || py > y1 - 2.0))
}

fn pixel(state: &TrayState, px: f32, py: f32) -> [u8; 4] {
    match state {
        TrayState::NoReader => {
            let grey = [128, 128, 128, 255];
            let d = ((px - 16.0).powi(2) + (py - 16.0).powi(2)).sqrt();
            // A ring, and the stroke from top left to bottom right.
            let on_slash = (px - py).abs() < 2.0 && d < 13.0;
            if (11.0..14.0).contains(&d) || on_slash {
                grey
            } else {
                CLEAR
            }
        }
        TrayState::Reader { .. } => {
            let blue = [30, 100, 200, 255];
            if inside(px, py, 8.0, 15.0, 24.0, 18.0) {
                WHITE
            } else if inside(px, py, 4.0, 11.0, 28.0, 28.0) {
                blue
            } else {
                CLEAR
            }
        }
        TrayState::Card { .. } => {
            let green = [40, 160, 70, 255];
            let gold = [225, 185, 40, 255];
            if inside(px, py, 7.0, 12.0, 14.0, 19.0) {
                gold
            } else if in_card(px, py) {
                green
            } else {
                CLEAR
            }
        }
        TrayState::Busy => {
            let orange = [235, 140, 20, 255];
            let dot = |cx: f32| ((px - cx).powi(2) + (py - 16.0).powi(2)) < 5.0;
            if in_card(px, py) && (dot(10.0) || dot(16.0) || dot(22.0)) {
                WHITE
            } else if in_card(px, py) {
                orange
            } else {
                CLEAR
            }
        }
        TrayState::Attention(_) => {
            let red = [205, 40, 40, 255];
            // Upward triangle: apex (16, 2), base y = 29 from x = 1 to 31.
            let half_width = (py - 2.0) * 15.0 / 27.0;
            let in_triangle = (2.0..29.0).contains(&py) && (px - 16.0).abs() <= half_width;
            let in_mark =
                inside(px, py, 14.5, 10.0, 17.5, 20.0) || inside(px, py, 14.5, 22.0, 17.5, 25.0);
            if in_triangle && in_mark {
                WHITE
            } else if in_triangle {
                red
            } else {
                CLEAR
            }
        }
    }
}

/// One menu entry, before it becomes a `muda` item (so the menu is a value tests can compare).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MenuEntry {
    Item {
        id: String,
        label: String,
        enabled: bool,
    },
    Submenu {
        label: String,
        entries: Vec<MenuEntry>,
    },
    Separator,
}

fn item(id: impl Into<String>, label: impl Into<String>, enabled: bool) -> MenuEntry {
    MenuEntry::Item {
        id: id.into(),
        label: label.into(),
        enabled,
    }
}

/// What the menu shows besides the state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MenuFacts {
    /// The sites the user allowed, or why the file cannot be read.
    pub sites: Result<Vec<String>, String>,
    /// The administrator's allowed origins.
    pub admin_allowed: Vec<String>,
    /// The last diagnostics' summary, or that they run.
    pub diagnostics: Option<String>,
    /// Kiosk mode: the desk's name (the menu then has no sites).
    pub kiosk_desk: Option<String>,
    /// The agent's last own problem, in words (kiosk mode shows it).
    pub last_problem: Option<String>,
}

/// The menu for `state` and `facts`.
pub fn menu_model(state: &TrayState, facts: &MenuFacts) -> Vec<MenuEntry> {
    let mut sites = Vec::new();
    match &facts.sites {
        Ok(list) => {
            for origin in list {
                sites.push(item(
                    format!("{ID_REVOKE}{origin}"),
                    format!("{REVOKE_PREFIX}{origin}"),
                    true,
                ));
            }
        }
        Err(reason) => sites.push(item(
            "sites-error",
            format!("Cannot read the list: {reason}"),
            false,
        )),
    }
    for origin in &facts.admin_allowed {
        sites.push(item(
            format!("admin:{origin}"),
            format!("{origin} (allowed by your administrator)"),
            false,
        ));
    }
    if sites.is_empty() {
        sites.push(item("no-sites", "No site is allowed without asking", false));
    }
    if let Some(desk) = &facts.kiosk_desk {
        let mut menu = vec![
            item(ID_STATUS, state.status_line(), false),
            item("kiosk-desk", format!("Kiosk mode, desk {desk}"), false),
        ];
        if let Some(problem) = &facts.last_problem {
            menu.push(item(
                "kiosk-problem",
                format!("Last problem: {problem}"),
                false,
            ));
        }
        menu.push(MenuEntry::Separator);
        menu.push(item(ID_DIAGNOSTICS, DIAGNOSTICS_LABEL, true));
        if let Some(summary) = &facts.diagnostics {
            menu.push(item("diagnostics-summary", summary.clone(), false));
        }
        menu.push(item(ID_OPEN_LOG, OPEN_LOG_LABEL, true));
        menu.push(MenuEntry::Separator);
        menu.push(item(ID_QUIT, QUIT_LABEL, true));
        return menu;
    }
    let mut menu = vec![
        item(ID_STATUS, state.status_line(), false),
        MenuEntry::Separator,
        MenuEntry::Submenu {
            label: SITES_LABEL.to_owned(),
            entries: sites,
        },
        item(ID_DIAGNOSTICS, DIAGNOSTICS_LABEL, true),
    ];
    if let Some(summary) = &facts.diagnostics {
        menu.push(item("diagnostics-summary", summary.clone(), false));
    }
    menu.push(item(ID_OPEN_LOG, OPEN_LOG_LABEL, true));
    menu.push(MenuEntry::Separator);
    menu.push(item(ID_QUIT, QUIT_LABEL, true));
    menu
}

/// The `muda` items of `entries`; the returned items must live as long as the menu.
fn build_items(entries: &[MenuEntry]) -> Result<Vec<Box<dyn IsMenuItem>>, tray_icon::menu::Error> {
    let mut items: Vec<Box<dyn IsMenuItem>> = Vec::new();
    for entry in entries {
        match entry {
            MenuEntry::Item { id, label, enabled } => {
                items.push(Box::new(MenuItem::with_id(
                    MenuId::new(id),
                    label,
                    *enabled,
                    None,
                )));
            }
            MenuEntry::Separator => items.push(Box::new(PredefinedMenuItem::separator())),
            MenuEntry::Submenu { label, entries } => {
                let children = build_items(entries)?;
                let refs: Vec<&dyn IsMenuItem> = children.iter().map(|c| c.as_ref()).collect();
                items.push(Box::new(Submenu::with_items(label, true, &refs)?));
            }
        }
    }
    Ok(items)
}

fn build_menu(entries: &[MenuEntry]) -> Result<Menu, tray_icon::menu::Error> {
    let items = build_items(entries)?;
    let refs: Vec<&dyn IsMenuItem> = items.iter().map(|c| c.as_ref()).collect();
    Menu::with_items(&refs)
}

fn icon(state: &TrayState) -> Result<Icon, tray_icon::BadIcon> {
    Icon::from_rgba(icon_rgba(state), ICON_SIZE, ICON_SIZE)
}

/// What the tray needs from `run`.
#[derive(Debug)]
pub struct TrayOptions {
    pub readers: Arc<Readers>,
    pub activity: watch::Receiver<Activity>,
    pub sites: Arc<SiteStore>,
    /// The administrator's allowed origins (shown, not revocable).
    pub admin_allowed: Vec<String>,
    /// Where the log and `doctor.txt` go.
    pub log_dir: Option<PathBuf>,
    /// Where the configuration is, for the diagnostics (with the bound port).
    pub doctor_config: ConfigArgs,
    /// Notified by "Quit": `run` shuts down as on SIGTERM.
    pub quit: Arc<Notify>,
    /// Kiosk mode: the desk's name.
    pub kiosk_desk: Option<String>,
}

/// What drives the tray thread.
#[derive(Debug)]
enum Msg {
    /// The readers or the worker changed.
    Refresh,
    /// A menu item was clicked.
    Menu(MenuId),
    /// Diagnostics finished: the summary, and the report file if it was written.
    Diagnosed {
        summary: String,
        file: Option<PathBuf>,
    },
    Stop,
}

/// The running tray; [`Tray::stop`] removes the icon.
#[derive(Debug)]
pub struct Tray {
    sender: Sender<Msg>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Tray {
    /// Starts the tray icon, or returns `None` (after logging [`NO_TRAY_MESSAGE`] once) when
    /// there is no desktop session. `runtime` runs the task that forwards reader and worker
    /// changes to the tray.
    pub fn start(options: TrayOptions, runtime: &tokio::runtime::Handle) -> Option<Tray> {
        if !session_bus_present() {
            tracing::info!("{NO_TRAY_MESSAGE}");
            return None;
        }
        let (sender, receiver) = std::sync::mpsc::channel();
        let (ready, started) = std::sync::mpsc::sync_channel(1);
        let mut readers_changes = options.readers.changes();
        let mut activity_changes = options.activity.clone();
        let thread_sender = sender.clone();
        let thread = std::thread::Builder::new()
            .name("tray".into())
            .spawn(move || tray_thread(options, receiver, thread_sender, ready));
        let thread = match thread {
            Ok(thread) => thread,
            Err(e) => {
                tracing::info!(error = %e, "{NO_TRAY_MESSAGE}");
                return None;
            }
        };
        match started.recv_timeout(START_LIMIT) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::info!(error = %e, "{NO_TRAY_MESSAGE}");
                let _ = thread.join();
                return None;
            }
            Err(_) => {
                tracing::info!(
                    error = "the session bus did not answer in time",
                    "{NO_TRAY_MESSAGE}"
                );
                let _ = sender.send(Msg::Stop);
                return None;
            }
        }
        let forward = sender.clone();
        runtime.spawn(async move {
            loop {
                tokio::select! {
                    changed = readers_changes.changed() => if changed.is_err() { break },
                    changed = activity_changes.changed() => if changed.is_err() { break },
                }
                if forward.send(Msg::Refresh).is_err() {
                    break;
                }
            }
        });
        tracing::info!("tray icon on the session bus");
        Some(Tray {
            sender,
            thread: Some(thread),
        })
    }

    /// Removes the icon from the bus (waits for the tray thread at most a few seconds).
    pub fn stop(mut self) {
        let _ = self.sender.send(Msg::Stop);
        if let Some(thread) = self.thread.take() {
            let (done, finished) = std::sync::mpsc::channel::<()>();
            // Joined on a helper so that a stuck bus cannot hold the agent's exit.
            let _ = std::thread::Builder::new()
                .name("tray-join".into())
                .spawn(move || {
                    let _ = thread.join();
                    let _ = done.send(());
                });
            let _ = finished.recv_timeout(Duration::from_secs(3));
        }
    }
}

/// Whether a D-Bus session bus can be reached: the address in the environment, or the
/// per-user bus socket systemd creates (`$XDG_RUNTIME_DIR/bus`), which zbus also falls back to.
fn session_bus_present() -> bool {
    if std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some_and(|a| !a.is_empty()) {
        return true;
    }
    std::env::var_os("XDG_RUNTIME_DIR")
        .filter(|d| !d.is_empty())
        .is_some_and(|dir| Path::new(&dir).join("bus").exists())
}

/// The tray's own view of the world, to update the icon only when something changed.
struct View {
    state: TrayState,
    facts: MenuFacts,
    menu: Vec<MenuEntry>,
}

fn site_list(store: &SiteStore) -> Result<Vec<String>, String> {
    store
        .list()
        .map(|sites: Vec<Site>| {
            sites
                .into_iter()
                .map(|s| s.origin.as_str().to_owned())
                .collect()
        })
        .map_err(|e: ConsentError| e.to_string())
}

/// The agent's last own problem in words: the remedy of its error code.
fn last_problem(activity: &Activity) -> Option<String> {
    let code = activity.last_error?;
    crate::bridge::error::CODES
        .iter()
        .find(|(c, _, _)| *c == code)
        .map(|(_, _, remedy)| (*remedy).to_owned())
}

fn current_state(options: &TrayOptions) -> TrayState {
    let activity = *options.activity.borrow();
    state_of(
        options.readers.service_up(),
        &options.readers.snapshot(),
        activity,
    )
}

fn tray_thread(
    options: TrayOptions,
    receiver: Receiver<Msg>,
    sender: Sender<Msg>,
    ready: std::sync::mpsc::SyncSender<Result<(), String>>,
) {
    let state = current_state(&options);
    let facts = MenuFacts {
        sites: if options.kiosk_desk.is_some() {
            Ok(Vec::new())
        } else {
            site_list(&options.sites)
        },
        admin_allowed: options.admin_allowed.clone(),
        diagnostics: None,
        kiosk_desk: options.kiosk_desk.clone(),
        last_problem: last_problem(&options.activity.borrow()),
    };
    let menu = menu_model(&state, &facts);
    let built = build_menu(&menu)
        .map_err(|e| e.to_string())
        .and_then(|m| icon(&state).map(|i| (m, i)).map_err(|e| e.to_string()))
        .and_then(|(m, i)| {
            TrayIconBuilder::new()
                .with_id("eid-agent")
                .with_title(state.title())
                .with_tooltip(state.status_line())
                .with_icon(i)
                .with_menu(Box::new(m))
                .build()
                .map_err(|e| e.to_string())
        });
    let tray = match built {
        Ok(tray) => tray,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let clicks = sender.clone();
    MenuEvent::set_event_handler(Some(move |event: MenuEvent| {
        let _ = clicks.send(Msg::Menu(event.id));
    }));
    if ready.send(Ok(())).is_err() {
        return;
    }
    let mut view = View { state, facts, menu };
    let mut diagnosing = false;
    loop {
        match receiver.recv_timeout(SITES_POLL) {
            Ok(Msg::Stop) | Err(RecvTimeoutError::Disconnected) => break,
            Ok(Msg::Refresh) | Err(RecvTimeoutError::Timeout) => {}
            Ok(Msg::Menu(id)) => {
                let id = id.as_ref();
                if id == ID_QUIT {
                    tracing::info!("quit chosen in the tray menu");
                    options.quit.notify_one();
                } else if id == ID_OPEN_LOG {
                    open_log_folder(options.log_dir.as_deref());
                } else if id == ID_DIAGNOSTICS {
                    if !diagnosing {
                        diagnosing = true;
                        view.facts.diagnostics = Some("Diagnostics running…".to_owned());
                        run_diagnostics(&options, sender.clone());
                    }
                } else if let Some(origin) = id.strip_prefix(ID_REVOKE) {
                    revoke(&options.sites, origin);
                }
            }
            Ok(Msg::Diagnosed { summary, file }) => {
                diagnosing = false;
                view.facts.diagnostics = Some(summary);
                if let Some(file) = file {
                    open_with_desktop(&file);
                }
            }
        }
        // Drain what queued up meanwhile: one update for a burst of changes.
        update(&tray, &options, &mut view);
    }
    MenuEvent::set_event_handler(None::<fn(MenuEvent)>);
    drop(tray);
}

/// Brings the icon and the menu up to date with the readers, the worker and the sites.
fn update(tray: &TrayIcon, options: &TrayOptions, view: &mut View) {
    let state = current_state(options);
    if options.kiosk_desk.is_none() {
        view.facts.sites = site_list(&options.sites);
    }
    view.facts.last_problem = last_problem(&options.activity.borrow());
    if state != view.state {
        tracing::debug!(state = state.id(), "tray state");
        if let Err(e) = icon(&state).map(|i| tray.set_icon(Some(i))) {
            tracing::warn!(error = %e, "tray icon not updated");
        }
        tray.set_title(Some(state.title()));
        let _ = tray.set_tooltip(Some(state.status_line()));
        view.state = state;
    }
    let menu = menu_model(&view.state, &view.facts);
    if menu != view.menu {
        match build_menu(&menu) {
            Ok(m) => {
                tray.set_menu(Some(Box::new(m)));
                view.menu = menu;
            }
            Err(e) => tracing::warn!(error = %e, "tray menu not updated"),
        }
    }
}

fn revoke(sites: &SiteStore, origin: &str) {
    let parsed = match parse_origin(origin) {
        Ok(o) => o,
        Err(e) => {
            tracing::warn!(origin, error = %e, "tray: not an origin");
            return;
        }
    };
    match sites.revoke(&parsed) {
        Ok(true) => tracing::info!(origin, "site revoked from the tray menu"),
        Ok(false) => tracing::info!(origin, "site already revoked"),
        Err(e) => {
            tracing::warn!(origin, error = %e, code = e.code(), remedy = e.remedy(), "site not revoked")
        }
    }
}

fn open_log_folder(dir: Option<&Path>) {
    let Some(dir) = dir else {
        tracing::warn!("no log folder (no home folder)");
        return;
    };
    if let Err(e) = crate::logging::ensure_log_dir(dir) {
        tracing::warn!(folder = %dir.display(), error = %e, "cannot create the log folder");
        return;
    }
    open_with_desktop(dir);
}

/// Opens `path` with the desktop's default application (`xdg-open`), without waiting for it.
fn open_with_desktop(path: &Path) {
    let spawned = std::process::Command::new("xdg-open")
        .arg(path)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    match spawned {
        Ok(mut child) => {
            // Reaped on a thread of its own: xdg-open may wait for the application.
            let _ = std::thread::Builder::new()
                .name("xdg-open".into())
                .spawn(move || child.wait());
        }
        Err(e) => tracing::warn!(
            path = %path.display(),
            error = %e,
            "cannot open it with xdg-open (install xdg-utils); open it by hand"
        ),
    }
}

/// Runs the doctor on a thread of its own and sends the outcome to the tray.
fn run_diagnostics(options: &TrayOptions, sender: Sender<Msg>) {
    let config = options.doctor_config.clone();
    let log_dir = options.log_dir.clone();
    let spawned = std::thread::Builder::new()
        .name("tray-diagnostics".into())
        .spawn(move || {
            let report = crate::doctor::collect(&crate::doctor::DoctorOptions::new(config));
            let summary = diagnostics_summary(&report);
            let text = format!("eid-agent doctor\n{summary}\n\n{}", report.to_text());
            let file = log_dir.and_then(|dir| {
                let file = dir.join("doctor.txt");
                let written = crate::logging::ensure_log_dir(&dir).and_then(|()| {
                    eid_installer::tls::write_file_atomic(&file, text.as_bytes(), 0o600)
                });
                match written {
                    Ok(()) => Some(file),
                    Err(e) => {
                        tracing::warn!(file = %file.display(), error = %e, "diagnostics not written");
                        None
                    }
                }
            });
            tracing::info!(%summary, "diagnostics from the tray");
            let _ = sender.send(Msg::Diagnosed { summary, file });
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "diagnostics not started");
    }
}

/// "Diagnostics: 7 ok, 1 warning, 2 failed (pcscd, port)".
fn diagnostics_summary(report: &crate::doctor::DoctorReport) -> String {
    use crate::doctor::Status;
    let count = |s: Status| report.checks.iter().filter(|c| c.status == s).count();
    let failed: Vec<&str> = report
        .checks
        .iter()
        .filter(|c| c.status == Status::Failed)
        .map(|c| c.id)
        .collect();
    let mut summary = format!(
        "Diagnostics: {} ok, {} warnings, {} failed",
        count(Status::Ok),
        count(Status::Warning),
        failed.len()
    );
    if !failed.is_empty() {
        summary.push_str(&format!(" ({})", failed.join(", ")));
    }
    summary
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bridge::readers::CardView;

    fn reader(name: &str, card: bool) -> ReaderView {
        ReaderView {
            name: name.to_owned(),
            card_present: card,
            card: card.then_some(CardView {
                id: "pteid-cc2",
                name: "Citizen Card",
            }),
            session: None,
            interface: "contact",
            transport: "pcsc",
            pinpad: false,
        }
    }

    #[test]
    fn dialog_then_service_then_busy_then_card_then_reader() {
        let idle = Activity::default();
        let busy = Activity {
            running: true,
            ..Activity::default()
        };
        let dialog = Activity {
            running: true,
            dialog: true,
            ..Activity::default()
        };
        let with_card = [reader("A", false), reader("B", true)];
        assert_eq!(state_of(true, &[], idle), TrayState::NoReader);
        assert_eq!(
            state_of(true, &[reader("A", false)], idle),
            TrayState::Reader { readers: 1 }
        );
        assert_eq!(
            state_of(true, &with_card, idle),
            TrayState::Card {
                reader: "B".into(),
                card: Some("Citizen Card".into())
            }
        );
        assert_eq!(state_of(true, &with_card, busy), TrayState::Busy);
        assert_eq!(
            state_of(false, &with_card, busy),
            TrayState::Attention(Attention::ServiceDown)
        );
        assert_eq!(
            state_of(false, &with_card, dialog),
            TrayState::Attention(Attention::DialogWaiting)
        );
    }

    #[test]
    fn every_state_has_its_own_icon() {
        let states = [
            TrayState::NoReader,
            TrayState::Reader { readers: 1 },
            TrayState::Card {
                reader: "A".into(),
                card: None,
            },
            TrayState::Busy,
            TrayState::Attention(Attention::ServiceDown),
        ];
        let icons: Vec<Vec<u8>> = states.iter().map(icon_rgba).collect();
        for (i, a) in icons.iter().enumerate() {
            assert_eq!(a.len(), (ICON_SIZE * ICON_SIZE * 4) as usize);
            // Not empty, not full: a shape.
            let opaque = a.chunks(4).filter(|p| p[3] == 255).count();
            assert!(opaque > 50 && opaque < (ICON_SIZE * ICON_SIZE) as usize);
            for b in icons.iter().skip(i + 1) {
                assert_ne!(a, b);
            }
        }
    }

    #[test]
    fn menu_lists_revocable_sites_and_the_administrators() {
        let facts = MenuFacts {
            sites: Ok(vec!["https://a.example".into()]),
            admin_allowed: vec!["https://desk.example".into()],
            diagnostics: None,
            kiosk_desk: None,
            last_problem: None,
        };
        let menu = menu_model(&TrayState::NoReader, &facts);
        let MenuEntry::Submenu { label, entries } = &menu[2] else {
            panic!("no submenu: {menu:?}");
        };
        assert_eq!(label, SITES_LABEL);
        assert_eq!(
            entries[0],
            item("revoke:https://a.example", "Revoke https://a.example", true)
        );
        assert!(
            matches!(&entries[1], MenuEntry::Item { enabled: false, label, .. } if label.starts_with("https://desk.example"))
        );
        let labels: Vec<&str> = menu
            .iter()
            .filter_map(|e| match e {
                MenuEntry::Item { label, .. } => Some(label.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(
            labels,
            [
                "No card reader is connected",
                DIAGNOSTICS_LABEL,
                OPEN_LOG_LABEL,
                QUIT_LABEL
            ]
        );
    }

    #[test]
    fn kiosk_menu_has_the_desk_and_the_problem_and_no_sites() {
        let facts = MenuFacts {
            sites: Ok(vec!["https://a.example".into()]),
            admin_allowed: vec!["https://b.example".into()],
            diagnostics: None,
            kiosk_desk: Some("loja-03".into()),
            last_problem: Some("Start the smart card service (pcscd) and try again.".into()),
        };
        let state = TrayState::Card {
            reader: "R".into(),
            card: Some("Citizen Card".into()),
        };
        let menu = menu_model(&state, &facts);
        let labels: Vec<String> = menu
            .iter()
            .filter_map(|e| match e {
                MenuEntry::Item { label, .. } => Some(label.clone()),
                MenuEntry::Submenu { label, .. } => Some(label.clone()),
                MenuEntry::Separator => None,
            })
            .collect();
        assert_eq!(labels[0], "Citizen Card in R");
        assert_eq!(labels[1], "Kiosk mode, desk loja-03");
        assert!(labels[2].starts_with("Last problem: Start the smart card service"));
        assert!(
            !labels
                .iter()
                .any(|l| l.contains("example") || l == SITES_LABEL)
        );
        let facts = MenuFacts {
            last_problem: None,
            ..facts
        };
        assert!(
            !menu_model(&state, &facts)
                .iter()
                .any(|e| matches!(e, MenuEntry::Item { id, .. } if id == "kiosk-problem"))
        );
    }
}
