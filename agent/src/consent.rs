//! Consent: which websites may use the card without asking, and the decision for one request.
//!
//! The user's "always allow" choices live in `<config dir>/sites.json`:
//! ```json
//! {"version": 1, "sites": [{"origin": "https://desk.example", "granted": "2026-11-21T10:20:00Z"}]}
//! ```
//! An entry may carry `"operations": ["authenticate", ...]`: a grant limited to those operations
//! ([`SiteStore::is_allowed_for`]); without it, the grant covers every operation. The file is
//! written atomically (a temporary file renamed over it) with mode 0600, under an advisory lock
//! (`.sites.json.lock`) so that the agent and `eid-agent sites revoke` do not lose each other's
//! changes. The agent re-reads the file whenever it changed on disk (size, modification time or
//! inode), so a revocation from the command line takes effect on the next request.
//!
//! A damaged file is never a panic: [`SiteStore::list`] and the changing methods return an error
//! naming the file, and [`SiteStore::is_allowed`] then answers "no" (the user is asked again).
//! `revoke_all` replaces even a damaged file, so `eid-agent sites revoke --all` is the way out.
//!
//! [`decide`] combines this with the administrator's policy: denied by the administrator, else
//! allowed by the administrator, else allowed by the user, else ask.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::SystemTime;

use time::OffsetDateTime;

use crate::config::{AdminPolicy, Origin, parse_origin};

/// The file of remembered sites, in the configuration directory.
pub const SITES_FILE: &str = "sites.json";
/// The version of the file format this agent reads and writes.
pub const SITES_VERSION: u32 = 1;

/// Who decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum By {
    /// The administrator's policy file.
    Admin,
    /// The user's "always allow" choice.
    User,
}

/// What to do with a card operation requested by an origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Refused without asking.
    Denied(By),
    /// Allowed without the consent dialog.
    Allowed(By),
    /// Show the consent dialog.
    Ask,
}

/// The decision for `origin`: the administrator's deny list first, then the administrator's allow
/// list, then the sites the user remembered, else ask.
pub fn decide(policy: &AdminPolicy, store: &SiteStore, origin: &Origin) -> Decision {
    if policy.denies(origin) {
        Decision::Denied(By::Admin)
    } else if policy.allows(origin) {
        Decision::Allowed(By::Admin)
    } else if store.is_allowed(origin) {
        Decision::Allowed(By::User)
    } else {
        Decision::Ask
    }
}

/// A problem with the sites file. Local to the machine: the user's to fix.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConsentError {
    /// The file (or its directory or lock) cannot be read or written.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file is not what this agent writes.
    #[error("the remembered-sites file {} is damaged: {reason}", path.display())]
    Corrupt { path: PathBuf, reason: String },
}

impl ConsentError {
    /// A stable code for reports.
    pub fn code(&self) -> &'static str {
        match self {
            ConsentError::Io { .. } => "sites-io",
            ConsentError::Corrupt { .. } => "sites-corrupt",
        }
    }

    /// What to do about it.
    pub fn remedy(&self) -> &'static str {
        match self {
            ConsentError::Io { .. } => {
                "Check that the agent's configuration directory is yours and writable."
            }
            ConsentError::Corrupt { .. } => {
                "Run `eid-agent sites revoke --all` to start a new list (websites will ask again), \
                 or fix the file by hand."
            }
        }
    }
}

/// A website the user chose to always allow.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Site {
    #[serde(serialize_with = "serialize_origin")]
    pub origin: Origin,
    /// When the user chose it.
    #[serde(with = "time::serde::rfc3339")]
    pub granted: OffsetDateTime,
    /// The operations the grant covers; `None`: all.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operations: Option<Vec<String>>,
}

fn serialize_origin<S: serde::Serializer>(origin: &Origin, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(origin.as_str())
}

impl Site {
    fn covers(&self, operation: Option<&str>) -> bool {
        match (&self.operations, operation) {
            (None, _) => true,
            (Some(ops), Some(op)) => ops.iter().any(|o| o == op),
            (Some(_), None) => false,
        }
    }
}

/// The file's content as written on disk.
#[derive(serde::Serialize, serde::Deserialize)]
struct FileForm {
    version: u32,
    sites: Vec<EntryForm>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct EntryForm {
    origin: String,
    #[serde(with = "time::serde::rfc3339")]
    granted: OffsetDateTime,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    operations: Option<Vec<String>>,
}

/// What identifies one version of the file on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    len: u64,
    modified: Option<SystemTime>,
    inode: u64,
    ctime: (i64, i64),
}

#[derive(Debug)]
struct State {
    /// The sites as last read (empty when the file is missing or damaged).
    sites: Vec<Site>,
    /// The file version they were read from (`None`: no file); `Some` outer once read at all.
    stamp: Option<Option<Stamp>>,
    /// The error of the last read, if it failed.
    error: Option<String>,
}

/// The remembered sites: a handle shared by the bridge's tasks (`&self` methods, internal lock).
#[derive(Debug)]
pub struct SiteStore {
    path: PathBuf,
    state: Mutex<State>,
}

impl SiteStore {
    /// The store in `path` (nothing is read until it is used).
    pub fn new(path: PathBuf) -> SiteStore {
        SiteStore {
            path,
            state: Mutex::new(State {
                sites: Vec::new(),
                stamp: None,
                error: None,
            }),
        }
    }

    /// The store of a configuration directory (`<dir>/sites.json`).
    pub fn in_config_dir(dir: &Path) -> SiteStore {
        SiteStore::new(dir.join(SITES_FILE))
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The remembered sites, as on disk now.
    pub fn list(&self) -> Result<Vec<Site>, ConsentError> {
        let mut state = self.lock();
        self.refresh(&mut state);
        match &state.error {
            Some(reason) => Err(self.corrupt(reason.clone())),
            None => Ok(state.sites.clone()),
        }
    }

    /// Whether the user chose to always allow `origin` for every operation. A damaged or
    /// unreadable file allows nothing.
    pub fn is_allowed(&self, origin: &Origin) -> bool {
        self.allowed(origin, None)
    }

    /// Whether the user chose to always allow `origin` for `operation`.
    pub fn is_allowed_for(&self, origin: &Origin, operation: &str) -> bool {
        self.allowed(origin, Some(operation))
    }

    fn allowed(&self, origin: &Origin, operation: Option<&str>) -> bool {
        let mut state = self.lock();
        self.refresh(&mut state);
        state.error.is_none()
            && state
                .sites
                .iter()
                .any(|s| &s.origin == origin && s.covers(operation))
    }

    /// Remembers `origin` for every operation (the user chose "always allow"). Returns whether it
    /// was new; an origin already remembered keeps its first grant time, and a grant limited to
    /// some operations is widened to all.
    pub fn remember(&self, origin: &Origin, now: OffsetDateTime) -> Result<bool, ConsentError> {
        self.modify(false, |sites| {
            if let Some(site) = sites.iter_mut().find(|s| &s.origin == origin) {
                let widened = site.operations.is_some();
                site.operations = None;
                return widened;
            }
            sites.push(Site {
                origin: origin.clone(),
                granted: now.replace_nanosecond(0).unwrap_or(now),
                operations: None,
            });
            true
        })
    }

    /// Forgets `origin`. Returns whether it was remembered.
    pub fn revoke(&self, origin: &Origin) -> Result<bool, ConsentError> {
        self.modify(false, |sites| {
            let before = sites.len();
            sites.retain(|s| &s.origin != origin);
            sites.len() != before
        })
    }

    /// Forgets every site, returning those that were remembered. Replaces a damaged file.
    pub fn revoke_all(&self) -> Result<Vec<Site>, ConsentError> {
        let mut removed = Vec::new();
        self.modify(true, |sites| {
            removed = std::mem::take(sites);
            true
        })?;
        Ok(removed)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn corrupt(&self, reason: String) -> ConsentError {
        ConsentError::Corrupt {
            path: self.path.clone(),
            reason,
        }
    }

    fn io(&self, action: &'static str, path: &Path, source: std::io::Error) -> ConsentError {
        ConsentError::Io {
            action,
            path: path.to_path_buf(),
            source,
        }
    }

    fn stamp(&self) -> Result<Option<Stamp>, std::io::Error> {
        match fs::metadata(&self.path) {
            Ok(m) => Ok(Some(Stamp {
                len: m.len(),
                modified: m.modified().ok(),
                inode: m.ino(),
                ctime: (m.ctime(), m.ctime_nsec()),
            })),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Re-reads the file if it changed since the last read.
    fn refresh(&self, state: &mut State) {
        let stamp = match self.stamp() {
            Ok(stamp) => stamp,
            Err(e) => {
                state.sites.clear();
                state.stamp = None;
                state.error = Some(format!("cannot read it: {e}"));
                return;
            }
        };
        if state.stamp == Some(stamp) {
            return;
        }
        state.stamp = Some(stamp);
        match self.read() {
            Ok(sites) => {
                state.sites = sites;
                state.error = None;
            }
            Err(reason) => {
                tracing::warn!(file = %self.path.display(), %reason, "remembered sites ignored");
                state.sites.clear();
                state.error = Some(reason);
            }
        }
    }

    /// The file's sites, or why they cannot be read.
    fn read(&self) -> Result<Vec<Site>, String> {
        let bytes = match fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(format!("cannot read it: {e}")),
        };
        parse_sites(&bytes)
    }

    /// Read, change and write the file under the in-process lock and the file lock.
    fn modify<R>(
        &self,
        replace_damaged: bool,
        change: impl FnOnce(&mut Vec<Site>) -> R,
    ) -> Result<R, ConsentError> {
        let mut state = self.lock();
        let dir = match self.path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if !dir.exists() {
            fs::create_dir_all(&dir).map_err(|e| self.io("create", &dir, e))?;
            fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))
                .map_err(|e| self.io("set permissions of", &dir, e))?;
        }
        let lock_path = dir.join(format!(
            ".{}.lock",
            self.path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        ));
        let lock_file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| self.io("open", &lock_path, e))?;
        lock_file
            .lock()
            .map_err(|e| self.io("lock", &lock_path, e))?;

        // Always from disk: another process may have changed it since the last look.
        state.stamp = None;
        self.refresh(&mut state);
        if let Some(reason) = &state.error
            && !replace_damaged
        {
            return Err(self.corrupt(reason.clone()));
        }
        let mut sites = state.sites.clone();
        let result = change(&mut sites);
        let text = serialize_sites(&sites).map_err(|e| self.io("encode", &self.path, e))?;
        eid_installer::tls::write_file_atomic(&self.path, text.as_bytes(), 0o600)
            .map_err(|e| self.io("write", &self.path, e))?;
        state.sites = sites;
        state.error = None;
        state.stamp = self.stamp().ok();
        drop(lock_file);
        Ok(result)
    }
}

/// Parses the file's bytes.
fn parse_sites(bytes: &[u8]) -> Result<Vec<Site>, String> {
    #[derive(serde::Deserialize)]
    struct VersionOnly {
        version: serde_json::Value,
    }
    let version: VersionOnly =
        serde_json::from_slice(bytes).map_err(|e| format!("not the expected JSON: {e}"))?;
    if version.version != serde_json::json!(SITES_VERSION) {
        return Err(format!(
            "version {} is not supported (this agent reads version {SITES_VERSION})",
            version.version
        ));
    }
    let file: FileForm =
        serde_json::from_slice(bytes).map_err(|e| format!("not the expected JSON: {e}"))?;
    let mut sites: Vec<Site> = Vec::with_capacity(file.sites.len());
    for (index, entry) in file.sites.into_iter().enumerate() {
        let origin = parse_origin(&entry.origin)
            .map_err(|e| format!("entry {index}: {:?} is not an origin: {e}", entry.origin))?;
        if sites.iter().any(|s| s.origin == origin) {
            continue;
        }
        sites.push(Site {
            origin,
            granted: entry.granted,
            operations: entry.operations,
        });
    }
    Ok(sites)
}

fn serialize_sites(sites: &[Site]) -> Result<String, std::io::Error> {
    let file = FileForm {
        version: SITES_VERSION,
        sites: sites
            .iter()
            .map(|s| EntryForm {
                origin: s.origin.as_str().to_owned(),
                granted: s.granted,
                operations: s.operations.clone(),
            })
            .collect(),
    };
    let mut text = serde_json::to_string_pretty(&file).map_err(std::io::Error::other)?;
    text.push('\n');
    Ok(text)
}
