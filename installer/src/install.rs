//! `eid-agent install` and `eid-agent uninstall`: the steps, the manifest, the report.
//!
//! # Steps
//! User scope ([`Scope::User`], a citizen, no privileges):
//! 1. `tls`: the user's CA and leaf ([`tls::ensure`]; a CA that is unusable or whose key is gone
//!    is replaced by [`tls::regenerate`] and registered again). The CA key is kept so the agent
//!    renews the leaf by itself.
//! 2. `nss-trust`: the CA in every NSS database of the home ([`trust::register_user_trust`]),
//!    creating Chromium's `~/.pki/nssdb` when absent.
//! 3. `autostart`: the systemd user unit and its `default.target.wants` link, or the XDG
//!    autostart entry ([`AutostartMode`]).
//! 4. `pcscd`: a check; when pcscd is not reachable the exact fix is printed (a warning).
//! 5. `manifest`: what was made, for uninstall.
//!
//! System scope ([`Scope::System`], root; desks and images): `group` (`eid-agent`, and
//! `--member` users), `tls` (the machine CA, its key never written, the leaf key 0640
//! root:eid-agent), `system-store` (`update-ca-certificates`), `browser-policy` (Chromium and
//! Chrome managed policies), `admin-policy` (`/etc/eid-agent/policy.toml`), `autostart` (for
//! every user), `pcscd`, `manifest`. With a root prefix ([`Layout::is_rooted`]), no command
//! that changes the real machine runs (`groupadd`, `gpasswd`, `chown`, `update-ca-certificates`,
//! `systemctl`): those steps say `skipped` and name the command they would have run.
//!
//! # Idempotency and reversal
//! Every file is compared with what would be written; an identical file (content and mode) is
//! left alone, so a second install changes nothing on disk and reports `unchanged`. The
//! manifest ([`Manifest`]) lists every file written, every directory created, the symlink, the
//! NSS entries and databases created, the group and members added, and any file that was
//! replaced (kept in a backup directory and put back by uninstall). Uninstall removes what the
//! manifest lists (a file changed since install is left in place with a warning, except the TLS
//! files, which the agent itself renews), then the manifest, then every directory install
//! created that is now empty. Without a manifest (lost, or damaged) uninstall still removes
//! what it recognises as ours: NSS entries by nickname prefix, our unit, link and desktop entry
//! when their content is ours, the policy files named `eid-agent.json`, an admin policy with our
//! marker line, the system store's `eid-agent-local-ca.crt` and the machine TLS directory.

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use time::OffsetDateTime;

use crate::autostart::{self, AutostartMode};
use crate::browser_policy;
use crate::layout::{Layout, SYSTEM_GROUP, Scope};
use crate::pcscd;
use crate::tls;
use crate::trust;

/// The first line of the administrator's policy file when we wrote it.
pub const ADMIN_POLICY_MARKER: &str = "# Managed by eid-agent install --system";
/// The manifest format version.
pub const MANIFEST_VERSION: u32 = 1;
/// Manifests larger than this are not read.
const MAX_MANIFEST_BYTES: u64 = 4 << 20;
/// Text that identifies our unit and desktop entry when there is no manifest.
const UNIT_SIGNATURE: &str = "eid-agent run";

/// How a step ended.
#[derive(Clone, Copy, PartialEq, Eq, Debug, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StepStatus {
    /// Something was changed.
    Done,
    /// Already as wanted: nothing changed.
    Unchanged,
    /// Not applicable here (the detail says why).
    Skipped,
    /// Done or checked, with something the user should know or fix.
    Warning,
    /// Could not be done; the install is incomplete.
    Failed,
}

impl StepStatus {
    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            StepStatus::Done => "done",
            StepStatus::Unchanged => "unchanged",
            StepStatus::Skipped => "skipped",
            StepStatus::Warning => "warning",
            StepStatus::Failed => "failed",
        }
    }
}

/// One step of the report.
#[derive(Clone, PartialEq, Eq, Debug, serde::Serialize)]
pub struct StepResult {
    /// A stable id (`tls`, `nss-trust`, `autostart`, ...).
    pub step: String,
    pub status: StepStatus,
    /// What happened, for a person.
    pub detail: String,
    /// What the user can do (failures and warnings).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remedy: Option<String>,
}

impl StepResult {
    /// A step result.
    pub fn new(
        step: &str,
        status: StepStatus,
        detail: impl Into<String>,
        remedy: Option<&str>,
    ) -> StepResult {
        StepResult {
            step: step.to_owned(),
            status,
            detail: detail.into(),
            remedy: remedy.map(str::to_owned),
        }
    }
}

/// What install or uninstall did.
#[derive(Clone, PartialEq, Eq, Debug, serde::Serialize)]
pub struct Report {
    pub scope: Scope,
    pub steps: Vec<StepResult>,
}

impl Report {
    /// Whether a step failed (exit status 2).
    pub fn failed(&self) -> bool {
        self.steps.iter().any(|s| s.status == StepStatus::Failed)
    }

    /// Whether anything was changed.
    pub fn changed(&self) -> bool {
        self.steps.iter().any(|s| s.status == StepStatus::Done)
    }

    /// The JSON document of `--json`.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|_| "{}".to_owned())
    }

    /// The human text.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for s in &self.steps {
            out.push_str(&format!(
                "{:<9} {:<15} {}\n",
                s.status.as_str(),
                s.step,
                s.detail
            ));
            if let Some(r) = &s.remedy {
                out.push_str(&format!("          what to do: {r}\n"));
            }
        }
        out
    }
}

/// A file install wrote.
#[derive(Clone, PartialEq, Eq, Debug, serde::Serialize, serde::Deserialize)]
pub struct FileRecord {
    pub path: PathBuf,
    /// SHA-256 (hex) of what was written; `None` for files the agent itself rewrites (TLS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Where the file that was there before is kept (put back by uninstall).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup: Option<PathBuf>,
}

/// An NSS entry install added.
#[derive(Clone, PartialEq, Eq, Debug, serde::Serialize, serde::Deserialize)]
pub struct NssRecord {
    pub db: PathBuf,
    pub nickname: String,
}

/// Everything install made (see the module documentation).
#[derive(Clone, PartialEq, Eq, Debug, serde::Serialize, serde::Deserialize)]
pub struct Manifest {
    pub version: u32,
    pub scope: Scope,
    #[serde(default)]
    pub files: Vec<FileRecord>,
    #[serde(default)]
    pub symlinks: Vec<PathBuf>,
    /// Directories install created, parents first.
    #[serde(default)]
    pub dirs: Vec<PathBuf>,
    #[serde(default)]
    pub nss: Vec<NssRecord>,
    /// NSS databases install created.
    #[serde(default)]
    pub nss_created: Vec<PathBuf>,
    #[serde(default)]
    pub group_created: bool,
    #[serde(default)]
    pub members_added: Vec<String>,
    /// Commands install ran (for the record).
    #[serde(default)]
    pub commands: Vec<String>,
}

/// The manifest file is damaged.
#[derive(Debug, thiserror::Error)]
#[error("the install manifest {} is unreadable: {reason}", path.display())]
pub struct ManifestError {
    pub path: PathBuf,
    pub reason: String,
}

impl Manifest {
    /// An empty manifest.
    pub fn new(scope: Scope) -> Manifest {
        Manifest {
            version: MANIFEST_VERSION,
            scope,
            files: Vec::new(),
            symlinks: Vec::new(),
            dirs: Vec::new(),
            nss: Vec::new(),
            nss_created: Vec::new(),
            group_created: false,
            members_added: Vec::new(),
            commands: Vec::new(),
        }
    }

    /// Parses a manifest's text; every path in it must be absolute and free of `..`, so a
    /// tampered manifest cannot steer uninstall outside the places install writes.
    pub fn parse(text: &str, path: &Path) -> Result<Manifest, ManifestError> {
        let bad = |reason: String| ManifestError {
            path: path.to_path_buf(),
            reason,
        };
        let m: Manifest = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
        if m.version != MANIFEST_VERSION {
            return Err(bad(format!("unknown version {}", m.version)));
        }
        let paths = m
            .files
            .iter()
            .flat_map(|f| std::iter::once(&f.path).chain(f.backup.as_ref()))
            .chain(&m.symlinks)
            .chain(&m.dirs)
            .chain(m.nss.iter().map(|n| &n.db))
            .chain(&m.nss_created);
        for p in paths {
            if !p.is_absolute()
                || p.components()
                    .any(|c| matches!(c, std::path::Component::ParentDir))
            {
                return Err(bad(format!(
                    "path {} is not a plain absolute path",
                    p.display()
                )));
            }
        }
        if m.members_added.iter().any(|u| !valid_user_name(u)) {
            return Err(bad("a member name is not a user name".to_owned()));
        }
        Ok(m)
    }

    /// Reads the manifest at `path`: `Ok(None)` when there is none.
    pub fn load(path: &Path) -> Result<Option<Manifest>, ManifestError> {
        let bad = |reason: String| ManifestError {
            path: path.to_path_buf(),
            reason,
        };
        match fs::metadata(path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(bad(e.to_string())),
            Ok(m) if m.len() > MAX_MANIFEST_BYTES => return Err(bad("too large".to_owned())),
            Ok(_) => {}
        }
        let bytes = fs::read(path).map_err(|e| bad(e.to_string()))?;
        Manifest::parse(&String::from_utf8_lossy(&bytes), path).map(Some)
    }

    fn owns(&self, path: &Path) -> bool {
        self.files.iter().any(|f| f.path == path)
    }

    fn record_file(&mut self, path: &Path, sha256: Option<String>, backup: Option<PathBuf>) {
        if let Some(f) = self.files.iter_mut().find(|f| f.path == path) {
            f.sha256 = sha256;
            if backup.is_some() {
                f.backup = backup;
            }
        } else {
            self.files.push(FileRecord {
                path: path.to_path_buf(),
                sha256,
                backup,
            });
        }
    }

    fn record_dir(&mut self, dir: &Path) {
        if !self.dirs.iter().any(|d| d == dir) {
            self.dirs.push(dir.to_path_buf());
        }
    }

    fn record_command(&mut self, command: &str) {
        if !self.commands.iter().any(|c| c == command) {
            self.commands.push(command.to_owned());
        }
    }
}

/// A user name acceptable to `gpasswd` (Debian's rules, conservatively).
pub fn valid_user_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 32
        && !name.starts_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
}

/// What `eid-agent install` was asked to do.
#[derive(Clone, Debug)]
pub struct InstallOptions {
    pub layout: Layout,
    pub autostart: AutostartMode,
    /// Origins (canonical form) for the LNA policy and the admin allowlist (system scope).
    pub origins: Vec<String>,
    /// Users to add to the `eid-agent` group (system scope).
    pub members: Vec<String>,
    /// Replace an admin policy file that is not ours.
    pub force: bool,
    /// The agent binary the unit and desktop entry start.
    pub binary: PathBuf,
    pub now: OffsetDateTime,
}

fn sha256_hex(bytes: &[u8]) -> String {
    openssl::sha::sha256(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn mode_of(path: &Path) -> Option<u32> {
    fs::symlink_metadata(path)
        .ok()
        .map(|m| m.permissions().mode() & 0o7777)
}

/// The running state of one install or uninstall.
struct Run<'a> {
    layout: &'a Layout,
    manifest: Manifest,
    steps: Vec<StepResult>,
}

impl Run<'_> {
    fn step(&mut self, step: &str, status: StepStatus, detail: impl Into<String>) {
        self.steps.push(StepResult::new(step, status, detail, None));
    }

    fn fail(&mut self, step: &str, detail: impl Into<String>, remedy: &str) {
        self.steps.push(StepResult::new(
            step,
            StepStatus::Failed,
            detail,
            Some(remedy),
        ));
    }

    /// Creates `dir` and its missing parents, recording each one created.
    fn ensure_dir(&mut self, dir: &Path) -> io::Result<()> {
        let mut missing = Vec::new();
        let mut cur = Some(dir);
        while let Some(d) = cur {
            if d.as_os_str().is_empty() || d.exists() {
                break;
            }
            missing.push(d.to_path_buf());
            cur = d.parent();
        }
        for d in missing.iter().rev() {
            fs::create_dir(d)?;
            self.manifest.record_dir(d);
        }
        Ok(())
    }

    /// Writes `contents` with `mode` unless the file already is exactly that. A different file
    /// that is not ours (`ours` false) is kept in the backup directory first. Returns whether
    /// anything was written.
    fn put_file(
        &mut self,
        path: &Path,
        contents: &[u8],
        mode: u32,
        ours: bool,
    ) -> io::Result<bool> {
        let sha = sha256_hex(contents);
        let mut backup = None;
        match fs::read(path) {
            Ok(existing) if existing == contents && mode_of(path) == Some(mode) => {
                self.manifest.record_file(path, Some(sha), None);
                return Ok(false);
            }
            Ok(_) if !ours && !self.manifest.owns(path) => {
                let dir = self.layout.backup_dir();
                self.ensure_dir(&dir)?;
                let name: String = path
                    .to_string_lossy()
                    .chars()
                    .map(|c| if c == '/' { '%' } else { c })
                    .collect();
                let target = dir.join(name);
                fs::copy(path, &target)?;
                backup = Some(target);
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        if let Some(parent) = path.parent() {
            self.ensure_dir(parent)?;
        }
        tls::write_file_atomic(path, contents, mode)?;
        self.manifest.record_file(path, Some(sha), backup);
        Ok(true)
    }

    /// Makes `link` a symlink to `target`; returns whether it changed.
    fn put_symlink(&mut self, link: &Path, target: &Path) -> io::Result<bool> {
        if fs::read_link(link).is_ok_and(|t| t == target) {
            if !self.manifest.symlinks.iter().any(|l| l == link) {
                self.manifest.symlinks.push(link.to_path_buf());
            }
            return Ok(false);
        }
        if let Some(parent) = link.parent() {
            self.ensure_dir(parent)?;
        }
        match fs::remove_file(link) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        std::os::unix::fs::symlink(target, link)?;
        if !self.manifest.symlinks.iter().any(|l| l == link) {
            self.manifest.symlinks.push(link.to_path_buf());
        }
        Ok(true)
    }

    fn write_manifest(&mut self) {
        let path = self.layout.manifest();
        let mut text = match serde_json::to_string_pretty(&self.manifest) {
            Ok(t) => t,
            Err(e) => {
                self.fail("manifest", e.to_string(), "Report this as a bug.");
                return;
            }
        };
        text.push('\n');
        if fs::read(&path).is_ok_and(|old| old == text.as_bytes()) {
            self.step(
                "manifest",
                StepStatus::Unchanged,
                format!("{} is up to date", path.display()),
            );
            return;
        }
        let result = path
            .parent()
            .map_or(Ok(()), |p| self.ensure_dir(p))
            .and_then(|()| tls::write_file_atomic(&path, text.as_bytes(), 0o600));
        // The directories just created for the manifest are in the manifest only if it is
        // written again; write once more when that changed it.
        let result = result.and_then(|()| {
            let again = serde_json::to_string_pretty(&self.manifest)
                .map(|t| t + "\n")
                .unwrap_or_default();
            if again != text {
                tls::write_file_atomic(&path, again.as_bytes(), 0o600)
            } else {
                Ok(())
            }
        });
        match result {
            Ok(()) => self.step(
                "manifest",
                StepStatus::Done,
                format!("{} lists what was installed", path.display()),
            ),
            Err(e) => self.fail(
                "manifest",
                format!("cannot write {}: {e}", path.display()),
                "Check that the directory is writable; uninstall will still find what it recognises.",
            ),
        }
    }
}

/// Runs `eid-agent install`.
pub fn install(opts: &InstallOptions) -> Report {
    let layout = &opts.layout;
    let mut run = Run {
        layout,
        manifest: Manifest::new(layout.scope()),
        steps: Vec::new(),
    };
    match Manifest::load(&layout.manifest()) {
        Ok(Some(m)) if m.scope == layout.scope() => run.manifest = m,
        Ok(_) => {}
        Err(e) => run.step(
            "manifest",
            StepStatus::Warning,
            format!("{e}; starting a new one"),
        ),
    }
    match layout.scope() {
        Scope::User => install_user(&mut run, opts),
        Scope::System => {
            if !layout.is_rooted() && !is_root() {
                run.fail(
                    "privileges",
                    "a system installation changes /etc and needs root",
                    "Run it as root: sudo eid-agent install --system (or install for yourself \
                     only: eid-agent install).",
                );
                return Report {
                    scope: layout.scope(),
                    steps: run.steps,
                };
            }
            install_system(&mut run, opts);
        }
    }
    pcscd_step(&mut run);
    run.write_manifest();
    Report {
        scope: layout.scope(),
        steps: run.steps,
    }
}

/// Creates the TLS directory when missing (recorded in the manifest by `ensure_dir`). `Some`
/// with whether it was created, `None` after a failed step.
fn tls_dir_step(run: &mut Run<'_>, dir: &Path, remedy: &'static str) -> Option<bool> {
    let created = !dir.exists();
    match run.ensure_dir(dir) {
        Ok(_) => Some(created),
        Err(e) => {
            run.fail(
                "tls",
                format!("cannot create {}: {e}", dir.display()),
                remedy,
            );
            None
        }
    }
}

fn install_user(run: &mut Run<'_>, opts: &InstallOptions) {
    let layout = run.layout;
    let dir = layout.tls_dir();
    let Some(created_dir) = tls_dir_step(
        run,
        &dir,
        "Check that your configuration directory is writable.",
    ) else {
        return;
    };
    let material = match tls::ensure(&dir, opts.now) {
        Ok(m) => Ok((m, None)),
        Err(e @ (tls::TlsError::CaUnusable { .. } | tls::TlsError::CaKeyUnavailable { .. })) => {
            tls::regenerate(&dir, opts.now).map(|m| (m, Some(e.to_string())))
        }
        Err(e) => Err(e),
    };
    let material = match material {
        Ok((m, replaced)) => {
            let detail = match (&replaced, m.created) {
                (Some(why), _) => format!("new local CA in {} (the old one: {why})", dir.display()),
                (None, true) => format!(
                    "local CA and localhost certificate in {} ({})",
                    dir.display(),
                    m.reason.as_deref().unwrap_or("created")
                ),
                (None, false) => format!("local CA in {} is valid", dir.display()),
            };
            let status = if m.created {
                StepStatus::Done
            } else {
                StepStatus::Unchanged
            };
            run.step("tls", status, detail);
            m
        }
        Err(e) => {
            run.fail("tls", e.to_string(), e.remedy());
            return;
        }
    };
    if created_dir {
        for name in [
            tls::CA_FILE,
            tls::CA_KEY_FILE,
            tls::LEAF_FILE,
            tls::LEAF_KEY_FILE,
            ".lock",
        ] {
            run.manifest.record_file(&dir.join(name), None, None);
        }
    }
    let Some(ca_der) = material.ca_der().map(|c| c.to_vec()) else {
        run.fail("tls", "the chain has no CA", "Report this as a bug.");
        return;
    };

    // Record the directories Chromium's database needs before it is made.
    let nssdb = trust::chromium_nssdb(layout.home());
    if !nssdb.join("cert9.db").is_file()
        && trust::certutil_available()
        && let Err(e) = run.ensure_dir(&nssdb)
    {
        run.fail(
            "nss-trust",
            format!("cannot create {}: {e}", nssdb.display()),
            "Check that your home directory is writable.",
        );
    }
    let (steps, created, added) = trust::register_user_trust_detailed(layout.home(), &ca_der);
    run.steps.extend(steps);
    for db in created {
        if !run.manifest.nss_created.contains(&db) {
            run.manifest.nss_created.push(db);
        }
    }
    for (db, nickname) in added {
        let rec = NssRecord { db, nickname };
        if !run.manifest.nss.contains(&rec) {
            run.manifest.nss.push(rec);
        }
    }
    autostart_step(run, opts);
}

/// Whether this process runs as root (effective uid 0, from /proc/self/status).
pub fn is_root() -> bool {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|rest| rest.split_whitespace().nth(1).map(|e| e == "0"))
        })
        .unwrap_or(false)
}

/// A command's outcome as a short text, for the report.
fn run_command(program: &str, args: &[&str]) -> Result<String, String> {
    match Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
    {
        Ok(out) if out.status.success() => Ok(String::from_utf8_lossy(&out.stdout).into_owned()),
        Ok(out) => Err(format!(
            "{program} {}: {} {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Err(e) => Err(format!("{program}: {e}")),
    }
}

/// A group line (`name:x:gid:user1,user2`): its gid and members. `None` when malformed.
pub fn parse_group_line(line: &str) -> Option<(u32, Vec<String>)> {
    let mut fields = line.trim_end_matches('\n').split(':');
    let _name = fields.next().filter(|n| !n.is_empty())?;
    let _password = fields.next()?;
    let gid = fields.next()?.parse::<u32>().ok()?;
    let members = fields.next()?;
    if fields.next().is_some() {
        return None;
    }
    let members = members
        .split(',')
        .filter(|m| !m.is_empty())
        .map(str::to_owned)
        .collect();
    Some((gid, members))
}

fn group_info() -> Option<(u32, Vec<String>)> {
    run_command("getent", &["group", SYSTEM_GROUP])
        .ok()
        .and_then(|out| parse_group_line(out.lines().next().unwrap_or_default()))
}

fn group_step(run: &mut Run<'_>, opts: &InstallOptions) -> Option<u32> {
    if run.layout.is_rooted() {
        let detail = format!(
            "--root: the group {SYSTEM_GROUP} is not created (would run: groupadd --system \
             {SYSTEM_GROUP}{}); file modes are set, owners are not",
            opts.members
                .iter()
                .map(|m| format!("; gpasswd -a {m} {SYSTEM_GROUP}"))
                .collect::<String>()
        );
        run.step("group", StepStatus::Skipped, detail);
        return None;
    }
    let mut changed = Vec::new();
    let (gid, members) = match group_info() {
        Some(info) => info,
        None => match run_command("groupadd", &["--system", SYSTEM_GROUP]) {
            Ok(_) => {
                run.manifest.group_created = true;
                run.manifest
                    .record_command(&format!("groupadd --system {SYSTEM_GROUP}"));
                changed.push(format!("group {SYSTEM_GROUP} created"));
                match group_info() {
                    Some(info) => info,
                    None => {
                        run.fail(
                            "group",
                            format!("{SYSTEM_GROUP} was created but cannot be looked up"),
                            "Check /etc/group and nsswitch.conf.",
                        );
                        return None;
                    }
                }
            }
            Err(e) => {
                run.fail(
                    "group",
                    e,
                    "Create it by hand: sudo groupadd --system eid-agent, then run install again.",
                );
                return None;
            }
        },
    };
    for user in &opts.members {
        if !valid_user_name(user) {
            run.fail(
                "group",
                format!("--member {user:?} is not a user name"),
                "Give the login name of an existing user.",
            );
            continue;
        }
        if members.contains(user) {
            continue;
        }
        match run_command("gpasswd", &["-a", user, SYSTEM_GROUP]) {
            Ok(_) => {
                if !run.manifest.members_added.contains(user) {
                    run.manifest.members_added.push(user.clone());
                }
                changed.push(format!("{user} added"));
            }
            Err(e) => run.fail(
                "group",
                e,
                "Check the user name; add it by hand with sudo gpasswd -a USER eid-agent.",
            ),
        }
    }
    if changed.is_empty() {
        run.step(
            "group",
            StepStatus::Unchanged,
            format!("group {SYSTEM_GROUP} (gid {gid}) exists"),
        );
    } else {
        run.step(
            "group",
            StepStatus::Done,
            format!(
                "{} (members read the leaf key; they must log in again)",
                changed.join(", ")
            ),
        );
    }
    Some(gid)
}

fn install_system(run: &mut Run<'_>, opts: &InstallOptions) {
    let layout = run.layout;
    let gid = group_step(run, opts);

    // TLS: the machine CA, its key never written.
    let dir = layout.tls_dir();
    let Some(created_dir) = tls_dir_step(run, &dir, "Check that /etc is writable.") else {
        return;
    };
    let current = tls::load_system(&dir, opts.now).ok().filter(|m| {
        m.leaf_not_after - opts.now > time::Duration::days(tls::RENEW_BEFORE_DAYS)
            && !dir.join(tls::CA_KEY_FILE).exists()
    });
    let (material, mut changed) = match current {
        Some(m) => (m, false),
        None => match tls::regenerate_without_ca_key(&dir, opts.now) {
            Ok(m) => (m, true),
            Err(e) => {
                run.fail("tls", e.to_string(), e.remedy());
                return;
            }
        },
    };
    let key = dir.join(tls::LEAF_KEY_FILE);
    let perms = || -> io::Result<bool> {
        let mut any = false;
        for (path, mode) in [(dir.as_path(), 0o755), (key.as_path(), 0o640)] {
            if mode_of(path) != Some(mode) {
                fs::set_permissions(path, fs::Permissions::from_mode(mode))?;
                any = true;
            }
        }
        if let Some(gid) = gid {
            use std::os::unix::fs::MetadataExt;
            let meta = fs::metadata(&key)?;
            if meta.uid() != 0 || meta.gid() != gid {
                std::os::unix::fs::chown(&key, Some(0), Some(gid))?;
                any = true;
            }
        }
        Ok(any)
    };
    match perms() {
        Ok(any) => changed |= any,
        Err(e) => {
            run.fail(
                "tls",
                format!("cannot set the owner or mode of {}: {e}", key.display()),
                "Check that you run as root.",
            );
            return;
        }
    }
    if created_dir {
        for name in [tls::CA_FILE, tls::LEAF_FILE, tls::LEAF_KEY_FILE, ".lock"] {
            run.manifest.record_file(&dir.join(name), None, None);
        }
    }
    run.step(
        "tls",
        if changed {
            StepStatus::Done
        } else {
            StepStatus::Unchanged
        },
        if changed {
            format!(
                "machine CA and localhost certificate in {} (CA key not kept; leaf key 0640{})",
                dir.display(),
                if gid.is_some() {
                    format!(" root:{SYSTEM_GROUP}")
                } else {
                    String::new()
                }
            )
        } else {
            format!("machine certificate in {} is valid", dir.display())
        },
    );
    let Some(ca_der) = material.ca_der().map(|c| c.to_vec()) else {
        run.fail("tls", "the chain has no CA", "Report this as a bug.");
        return;
    };

    // The system store.
    let crt = layout.system_ca();
    match run.put_file(&crt, material.ca_pem.as_bytes(), 0o644, true) {
        Ok(false) => run.step(
            "system-store",
            StepStatus::Unchanged,
            format!("{} is current", crt.display()),
        ),
        Ok(true) if layout.is_rooted() => run.step(
            "system-store",
            StepStatus::Skipped,
            format!(
                "{} written; --root: update-ca-certificates not run",
                crt.display()
            ),
        ),
        Ok(true) => match run_command("update-ca-certificates", &[]) {
            Ok(_) => {
                run.manifest.record_command("update-ca-certificates");
                run.step(
                    "system-store",
                    StepStatus::Done,
                    format!("{} added; update-ca-certificates ran", crt.display()),
                );
            }
            Err(e) => run.steps.push(StepResult::new(
                "system-store",
                StepStatus::Warning,
                format!("{} written but {e}", crt.display()),
                Some("Install ca-certificates and run sudo update-ca-certificates."),
            )),
        },
        Err(e) => run.fail(
            "system-store",
            format!("cannot write {}: {e}", crt.display()),
            "Check that you run as root.",
        ),
    }

    // Chromium and Chrome managed policies.
    let policy = browser_policy::render(&opts.origins, Some(&ca_der));
    for file in [layout.chromium_policy(), layout.chrome_policy()] {
        match run.put_file(&file, policy.as_bytes(), 0o644, true) {
            Ok(changed) => run.step(
                "browser-policy",
                if changed {
                    StepStatus::Done
                } else {
                    StepStatus::Unchanged
                },
                format!(
                    "{}: LocalNetworkAccessAllowedForUrls {:?} and the machine CA",
                    file.display(),
                    opts.origins
                ),
            ),
            Err(e) => run.fail(
                "browser-policy",
                format!("cannot write {}: {e}", file.display()),
                "Check that you run as root.",
            ),
        }
    }

    admin_policy_step(run, opts);
    autostart_step(run, opts);
}

/// The administrator's policy file's text for `origins`.
pub fn render_admin_policy(origins: &[String]) -> String {
    let list: Vec<String> = origins
        .iter()
        .map(|o| serde_json::Value::from(o.as_str()).to_string())
        .collect();
    format!(
        "{ADMIN_POLICY_MARKER}\n# Origins allowed to use the card without the consent dialog. \
         Edit with\n# eid-agent install --system --allow-origin ORIGIN ... (or remove the first \
         line to manage it by hand).\nallow = [{}]\n",
        list.join(", ")
    )
}

fn admin_policy_step(run: &mut Run<'_>, opts: &InstallOptions) {
    let path = run.layout.admin_policy();
    let existing = fs::read_to_string(&path).ok();
    let ours = existing
        .as_deref()
        .is_some_and(|t| t.lines().next() == Some(ADMIN_POLICY_MARKER));
    if opts.origins.is_empty() && !ours {
        run.step(
            "admin-policy",
            StepStatus::Skipped,
            format!(
                "no --allow-origin: {} {}",
                path.display(),
                if existing.is_some() {
                    "left as it is"
                } else {
                    "not written"
                }
            ),
        );
        return;
    }
    if existing.is_some() && !ours && !opts.force {
        run.fail(
            "admin-policy",
            format!(
                "{} exists and was not written by eid-agent install",
                path.display()
            ),
            "Add the origins to its allow list by hand, or run again with --force to replace it \
             (the current file is kept and put back by eid-agent uninstall --system).",
        );
        return;
    }
    let text = render_admin_policy(&opts.origins);
    match run.put_file(&path, text.as_bytes(), 0o644, ours) {
        Ok(changed) => run.step(
            "admin-policy",
            if changed {
                StepStatus::Done
            } else {
                StepStatus::Unchanged
            },
            format!("{}: allow = {:?}", path.display(), opts.origins),
        ),
        Err(e) => run.fail(
            "admin-policy",
            format!("cannot write {}: {e}", path.display()),
            "Check that you run as root.",
        ),
    }
}

/// The user unit the Debian package ships (relative to the layout's root).
const PACKAGED_UNIT: &str = "usr/lib/systemd/user/eid-agent.service";

fn autostart_step(run: &mut Run<'_>, opts: &InstallOptions) {
    let layout = run.layout;
    // The Debian package already starts the agent for every user (its unit, enabled globally, and
    // its autostart entry, a conffile): the machine scope must not write over those, nor remove
    // them at uninstall.
    let packaged = layout.root().join(PACKAGED_UNIT);
    if layout.scope() == Scope::System && packaged.is_file() {
        run.step(
            "autostart",
            StepStatus::Skipped,
            format!(
                "the eid-agent package starts the agent for every user ({})",
                packaged.display()
            ),
        );
        return;
    }
    let mode = opts.autostart.resolve();
    let result = match mode {
        AutostartMode::None | AutostartMode::Auto => {
            run.step("autostart", StepStatus::Skipped, "--autostart none");
            return;
        }
        AutostartMode::Systemd => autostart::render_unit(&opts.binary).map(|u| (u, true)),
        AutostartMode::Xdg => autostart::render_desktop(&opts.binary).map(|d| (d, false)),
    };
    let (text, systemd) = match result {
        Ok(r) => r,
        Err(e) => {
            run.fail("autostart", e.to_string(), e.remedy());
            return;
        }
    };
    let write = |run: &mut Run<'_>| -> io::Result<(bool, PathBuf)> {
        if systemd {
            let unit = layout.systemd_unit();
            let a = run.put_file(&unit, text.as_bytes(), 0o644, false)?;
            let b = run.put_symlink(&layout.systemd_wants_link(), &layout.systemd_link_target())?;
            Ok((a || b, unit))
        } else {
            let entry = layout.xdg_autostart();
            Ok((run.put_file(&entry, text.as_bytes(), 0o644, false)?, entry))
        }
    };
    let (changed, path) = match write(run) {
        Ok(r) => r,
        Err(e) => {
            run.fail(
                "autostart",
                format!("cannot write the autostart file: {e}"),
                "Check that the directory is writable.",
            );
            return;
        }
    };
    // The other kind, from an earlier install, goes.
    let other = if systemd {
        vec![layout.xdg_autostart()]
    } else {
        vec![layout.systemd_wants_link(), layout.systemd_unit()]
    };
    let mut removed = Vec::new();
    for p in other {
        if run.manifest.owns(&p) || run.manifest.symlinks.contains(&p) {
            if fs::remove_file(&p).is_ok() {
                removed.push(p.display().to_string());
            }
            run.manifest.files.retain(|f| f.path != p);
            run.manifest.symlinks.retain(|l| *l != p);
        }
    }
    let mut detail = if systemd {
        format!(
            "systemd user unit {} enabled (default.target.wants)",
            path.display()
        )
    } else {
        format!("XDG autostart entry {}", path.display())
    };
    if !removed.is_empty() {
        detail.push_str(&format!("; removed {}", removed.join(", ")));
    }
    let mut status = if changed || !removed.is_empty() {
        StepStatus::Done
    } else {
        StepStatus::Unchanged
    };
    if systemd && changed && layout.scope() == Scope::User && autostart::systemd_is_init() {
        match run_command("systemctl", &["--user", "daemon-reload"])
            .and_then(|_| run_command("systemctl", &["--user", "start", crate::layout::UNIT_NAME]))
        {
            Ok(_) => detail.push_str(" and started"),
            Err(e) => {
                detail.push_str(&format!(
                    "; not started now ({e}): it starts at the next login"
                ));
                status = StepStatus::Done;
            }
        }
    }
    run.step("autostart", status, detail);
}

fn pcscd_step(run: &mut Run<'_>) {
    let d = pcscd::diagnose();
    match d.remedy() {
        None => run.step(
            "pcscd",
            StepStatus::Unchanged,
            format!("pcscd is reachable ({})", d.socket.display()),
        ),
        Some(fix) => run.steps.push(StepResult::new(
            "pcscd",
            StepStatus::Warning,
            if d.binary.is_none() {
                "pcscd (the smart card service) is not installed: card readers will not be found"
                    .to_owned()
            } else {
                format!(
                    "pcscd is installed but not reachable at {}: card readers will not be found",
                    d.socket.display()
                )
            },
            Some(fix),
        )),
    }
}

/// Runs `eid-agent uninstall` for `layout`'s scope.
pub fn uninstall(layout: &Layout) -> Report {
    let mut run = Run {
        layout,
        manifest: Manifest::new(layout.scope()),
        steps: Vec::new(),
    };
    if layout.scope() == Scope::System && !layout.is_rooted() && !is_root() {
        run.fail(
            "privileges",
            "a system uninstallation changes /etc and needs root",
            "Run it as root: sudo eid-agent uninstall --system.",
        );
        return Report {
            scope: layout.scope(),
            steps: run.steps,
        };
    }
    let manifest = match Manifest::load(&layout.manifest()) {
        Ok(Some(m)) => Some(m),
        Ok(None) => {
            run.step(
                "manifest",
                StepStatus::Warning,
                format!(
                    "no manifest at {}: removing what is recognisably ours",
                    layout.manifest().display()
                ),
            );
            None
        }
        Err(e) => {
            run.step(
                "manifest",
                StepStatus::Warning,
                format!("{e}: removing what is recognisably ours"),
            );
            None
        }
    };
    let m = manifest.unwrap_or_else(|| recognised(layout));

    // Stop the running unit first (user scope, systemd running).
    if layout.scope() == Scope::User
        && autostart::systemd_is_init()
        && m.symlinks.contains(&layout.systemd_wants_link())
    {
        let _ = run_command("systemctl", &["--user", "stop", crate::layout::UNIT_NAME]);
    }

    // NSS (user scope): every entry of ours in every database, then the databases we made.
    if layout.scope() == Scope::User {
        uninstall_nss(&mut run, layout, &m);
    }

    // Links, then files (restoring backups).
    let mut removed = Vec::new();
    let mut kept = Vec::new();
    for link in &m.symlinks {
        if fs::symlink_metadata(link).is_ok_and(|md| md.file_type().is_symlink()) {
            match fs::remove_file(link) {
                Ok(()) => removed.push(link.display().to_string()),
                Err(e) => kept.push(format!("{}: {e}", link.display())),
            }
        }
    }
    let mut system_ca_removed = false;
    for f in &m.files {
        if let Some(backup) = &f.backup {
            match fs::rename(backup, &f.path) {
                Ok(()) => {
                    removed.push(format!("{} (previous file restored)", f.path.display()));
                    continue;
                }
                Err(e) => kept.push(format!("{}: cannot restore: {e}", f.path.display())),
            }
        }
        let Ok(bytes) = fs::read(&f.path) else {
            continue;
        };
        if let Some(sha) = &f.sha256
            && sha256_hex(&bytes) != *sha
        {
            kept.push(format!("{} (changed since install)", f.path.display()));
            continue;
        }
        match fs::remove_file(&f.path) {
            Ok(()) => {
                if f.path == layout.system_ca() {
                    system_ca_removed = true;
                }
                removed.push(f.path.display().to_string());
            }
            Err(e) => kept.push(format!("{}: {e}", f.path.display())),
        }
    }
    let status = if !kept.is_empty() {
        StepStatus::Warning
    } else if removed.is_empty() {
        StepStatus::Unchanged
    } else {
        StepStatus::Done
    };
    let mut detail = if removed.is_empty() {
        "no file of ours found".to_owned()
    } else {
        format!("removed {}", removed.join(", "))
    };
    if !kept.is_empty() {
        detail.push_str(&format!("; left in place: {}", kept.join(", ")));
    }
    run.steps.push(StepResult::new(
        "files",
        status,
        detail,
        (!kept.is_empty())
            .then_some("Remove the files named above by hand if they are not needed."),
    ));

    if system_ca_removed {
        if layout.is_rooted() {
            run.step(
                "system-store",
                StepStatus::Skipped,
                "--root: update-ca-certificates --fresh not run",
            );
        } else {
            match run_command("update-ca-certificates", &["--fresh"]) {
                Ok(_) => run.step(
                    "system-store",
                    StepStatus::Done,
                    "update-ca-certificates --fresh ran",
                ),
                Err(e) => run.steps.push(StepResult::new(
                    "system-store",
                    StepStatus::Warning,
                    e,
                    Some("Run sudo update-ca-certificates --fresh."),
                )),
            }
        }
    }

    if layout.scope() == Scope::System && m.group_created {
        if layout.is_rooted() {
            run.step("group", StepStatus::Skipped, "--root: groupdel not run");
        } else {
            match run_command("groupdel", &[SYSTEM_GROUP]) {
                Ok(_) => run.step(
                    "group",
                    StepStatus::Done,
                    format!("group {SYSTEM_GROUP} deleted"),
                ),
                Err(e) => run.steps.push(StepResult::new(
                    "group",
                    StepStatus::Warning,
                    e,
                    Some("Delete it by hand: sudo groupdel eid-agent."),
                )),
            }
        }
    } else if layout.scope() == Scope::System && !layout.is_rooted() {
        for user in &m.members_added {
            let _ = run_command("gpasswd", &["-d", user, SYSTEM_GROUP]);
        }
    }

    // The manifest, then the directories install made, deepest first, when empty.
    let manifest_path = layout.manifest();
    match fs::remove_file(&manifest_path) {
        Ok(()) => run.step(
            "manifest",
            StepStatus::Done,
            format!("{} removed", manifest_path.display()),
        ),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => run.fail(
            "manifest",
            format!("cannot remove {}: {e}", manifest_path.display()),
            "Remove it by hand.",
        ),
    }
    let mut dirs = m.dirs.clone();
    dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
    let mut gone = Vec::new();
    for d in dirs {
        if fs::remove_dir(&d).is_ok() {
            gone.push(d.display().to_string());
        }
    }
    if !gone.is_empty() {
        run.step(
            "directories",
            StepStatus::Done,
            format!("removed empty {}", gone.join(", ")),
        );
    }
    Report {
        scope: layout.scope(),
        steps: run.steps,
    }
}

fn uninstall_nss(run: &mut Run<'_>, layout: &Layout, m: &Manifest) {
    let dbs = trust::nss_databases(layout.home());
    if dbs.is_empty() {
        run.step("nss-trust", StepStatus::Unchanged, "no NSS database found");
        return;
    }
    if !trust::certutil_available() {
        let e = trust::TrustError::CertutilMissing;
        run.fail("nss-trust", e.to_string(), e.remedy());
        return;
    }
    for db in dbs {
        match trust::remove_ours(&db.path) {
            Ok(removed) if removed.is_empty() => run.step(
                "nss-trust",
                StepStatus::Unchanged,
                format!("{}: no CA of ours", db.describe()),
            ),
            Ok(removed) => run.step(
                "nss-trust",
                StepStatus::Done,
                format!("{}: removed {removed:?}", db.describe()),
            ),
            Err(e) => run.fail("nss-trust", format!("{}: {e}", db.describe()), e.remedy()),
        }
    }
    // Databases install created, when nothing else is in them now.
    for db in &m.nss_created {
        let empty = trust::list(db).is_ok_and(|l| l.is_empty())
            && run_command("certutil", &["-d", &format!("sql:{}", db.display()), "-K"]).is_err();
        if !empty {
            continue;
        }
        for name in trust::NSS_FILES {
            let _ = fs::remove_file(db.join(name));
        }
        if fs::remove_dir(db).is_ok() {
            run.step(
                "nss-trust",
                StepStatus::Done,
                format!(
                    "removed the empty NSS database {} install created",
                    db.display()
                ),
            );
        }
    }
}

/// What uninstall removes without a manifest: what is recognisably ours.
fn recognised(layout: &Layout) -> Manifest {
    let mut m = Manifest::new(layout.scope());
    let ours_text = |p: &Path| {
        fs::read_to_string(p).is_ok_and(|t| t.contains(UNIT_SIGNATURE) && t.len() < 64 * 1024)
    };
    for p in [layout.systemd_unit(), layout.xdg_autostart()] {
        if ours_text(&p) {
            m.files.push(FileRecord {
                path: p,
                sha256: None,
                backup: None,
            });
        }
    }
    let link = layout.systemd_wants_link();
    if fs::read_link(&link).is_ok_and(|t| t == layout.systemd_link_target()) {
        m.symlinks.push(link);
    }
    if layout.scope() == Scope::System {
        let mut add = |p: PathBuf| {
            if p.exists() {
                m.files.push(FileRecord {
                    path: p,
                    sha256: None,
                    backup: None,
                });
            }
        };
        add(layout.chromium_policy());
        add(layout.chrome_policy());
        add(layout.system_ca());
        for name in [
            tls::CA_FILE,
            tls::CA_KEY_FILE,
            tls::LEAF_FILE,
            tls::LEAF_KEY_FILE,
            ".lock",
        ] {
            add(layout.tls_dir().join(name));
        }
        let admin = layout.admin_policy();
        if fs::read_to_string(&admin).is_ok_and(|t| t.lines().next() == Some(ADMIN_POLICY_MARKER)) {
            add(admin);
        }
        m.dirs.push(layout.tls_dir());
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_round_trips_and_refuses_hostile_text() {
        let mut m = Manifest::new(Scope::User);
        m.record_file(Path::new("/h/.config/x"), Some("ab".into()), None);
        m.record_dir(Path::new("/h/.config"));
        m.nss.push(NssRecord {
            db: "/h/.pki/nssdb".into(),
            nickname: "eID Agent local CA (00)".into(),
        });
        let text = serde_json::to_string(&m).unwrap();
        assert_eq!(Manifest::parse(&text, Path::new("m")).unwrap(), m);

        let p = Path::new("m");
        for bad in [
            "",
            "null",
            "[]",
            r#"{"version": 2, "scope": "user"}"#,
            r#"{"version": 1, "scope": "root"}"#,
            r#"{"version": 1, "scope": "user", "files": [{"path": "relative"}]}"#,
            r#"{"version": 1, "scope": "user", "dirs": ["/a/../../etc"]}"#,
            r#"{"version": 1, "scope": "user", "files": [{"path": "/a", "backup": "b"}]}"#,
            r#"{"version": 1, "scope": "system", "members_added": ["-rf"]}"#,
            r#"{"version": 1, "scope": "system", "members_added": ["a b"]}"#,
            r#"{"version": 1, "scope": "user", "files": "x"}"#,
        ] {
            assert!(Manifest::parse(bad, p).is_err(), "{bad:?} was accepted");
        }
        let nest = |key: &str| {
            format!(
                r#"{{"version": 1, "scope": "user", "{key}": {}{}}}"#,
                "[".repeat(50_000),
                "]".repeat(50_000)
            )
        };
        assert!(Manifest::parse(&nest("files"), p).is_err());
        // Deep nesting under an ignored key neither overflows the stack nor matters.
        let _ = Manifest::parse(&nest("x"), p);
        // Unknown keys from a newer version are tolerated; missing lists are empty.
        let m = Manifest::parse(r#"{"version": 1, "scope": "user", "later": 1}"#, p).unwrap();
        assert!(m.files.is_empty());
    }

    #[test]
    fn group_lines() {
        assert_eq!(
            parse_group_line("eid-agent:x:998:alice,bob\n"),
            Some((998, vec!["alice".to_owned(), "bob".to_owned()]))
        );
        assert_eq!(parse_group_line("eid-agent:x:998:"), Some((998, vec![])));
        for bad in [
            "",
            "eid-agent",
            "eid-agent:x:abc:",
            "eid-agent:x:-1:",
            ":x:1:",
            "a:x:1:b:c",
            "a:x:99999999999:",
        ] {
            assert_eq!(parse_group_line(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn admin_policy_text_has_the_marker_and_quoted_origins() {
        let t = render_admin_policy(&["https://desk.example".into(), "https://a.b:8443".into()]);
        assert_eq!(t.lines().next(), Some(ADMIN_POLICY_MARKER));
        assert!(t.ends_with("allow = [\"https://desk.example\", \"https://a.b:8443\"]\n"));
        assert!(render_admin_policy(&[]).ends_with("allow = []\n"));
    }

    #[test]
    fn user_names() {
        assert!(valid_user_name("alice"));
        assert!(valid_user_name("a.b-c_1"));
        for bad in ["", "-a", "a b", "a:b", "a/b", &"x".repeat(33)] {
            assert!(!valid_user_name(bad), "{bad:?}");
        }
    }
}
