//! The kiosk's audit log: one JSON line per card operation, session and agent start/stop, so
//! that every operation at an attended desk is accountable afterwards, and so that nobody who
//! can edit the files (but cannot read the audit key) can change, remove or reorder a line
//! without `eid-agent audit verify` saying where.
//!
//! What a line holds (see [`line::Entry`]): time (UTC, RFC 3339), sequence number, desk, origin,
//! reader, session, operation, result (`ok` or the API error code), document type, and a keyed
//! hash of the document number. Never the number itself, a name or a PIN: the log is metadata,
//! readable by whoever administers the desk, and must not become a register of citizens.
//!
//! How tampering shows:
//! - each line carries `mac` = HMAC-SHA256 under the chain key (derived from the key file) of
//!   the line without its `mac`, and `prev` = the previous line's `mac` (zeros for the first):
//!   an edited line fails its MAC, a removed or moved line breaks the `prev`/`seq` chain;
//! - when a file reaches `max_bytes` the log continues in the next numbered file
//!   (`audit-000001.jsonl`, `audit-000002.jsonl`...), the chain running on across files, so a
//!   missing file is a gap in the numbers or in the chain;
//! - cutting lines off the end leaves a valid chain, so after each line the agent replaces a
//!   small head file (`head.json`: the last sequence number and MAC, MAC'd under its own key)
//!   atomically: a log shorter than its head was truncated.
//!
//! Durability: files are opened `O_APPEND`, each line is one write followed by `fdatasync`
//! before the operation's answer goes out, files are 0600 in a 0700 directory. A write that
//! fails leaves the log refusing further lines (the caller learns it at once) rather than
//! writing a chain with a hole in it.
//!
//! What this does not do: it cannot stop someone with the key (root on the desk) from rewriting
//! the whole log, nor someone from deleting the whole directory (verify then has nothing to
//! check, and says so). Shipping the lines off the desk is for a later issue.

mod document;
pub mod keys;
pub mod line;
pub mod verify;

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

pub use document::{document_of, document_of_certificate};
pub use keys::Keys;
pub use line::{Entry, GENESIS};
pub use verify::{Break, BreakKind, Report, verify_dir};

/// The head file's name in the log directory.
pub const HEAD_FILE: &str = "head.json";
/// The lock file in the log directory: one writer at a time (two agents appending to one chain
/// would fork it).
pub const LOCK_FILE: &str = "lock";
/// The longest head file the verifier reads.
const MAX_HEAD: u64 = 1024;

/// The name of log file number `n` (from 1).
pub fn file_name(n: u32) -> String {
    format!("audit-{n:06}.jsonl")
}

/// The number of a log file's name, `None` for any other name.
pub fn parse_file_name(name: &str) -> Option<u32> {
    let digits = name.strip_prefix("audit-")?.strip_suffix(".jsonl")?;
    if digits.len() < 6 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().filter(|n| *n >= 1)
}

/// Why the audit log cannot be used. Each has a stable [`code`](AuditError::code) and a
/// [`remedy`](AuditError::remedy) in plain words.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("cannot use the audit directory {}: {source}", path.display())]
    Dir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the audit directory {} is not a directory (or is a symbolic link)", path.display())]
    NotADir { path: PathBuf },
    #[error("cannot read or write {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the audit key file {} does not exist", path.display())]
    KeyMissing { path: PathBuf },
    #[error("cannot read or create the audit key file {}: {source}", path.display())]
    KeyIo {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the audit key file {} is not a regular file (or is a symbolic link)", path.display())]
    KeyNotAFile { path: PathBuf },
    #[error("the audit key file {} can be read by other users (mode {mode:o})", path.display())]
    KeyPermissions { path: PathBuf, mode: u32 },
    #[error("the audit key file {} holds {len} bytes; at least 32 are needed", path.display())]
    KeyTooShort { path: PathBuf, len: usize },
    #[error("the audit key file {} is too large to be a key", path.display())]
    KeyTooLong { path: PathBuf },
    #[error("cryptography failed: {0}")]
    Crypto(String),
    #[error("the audit log in {} was not written with the key in {}", dir.display(), key.display())]
    WrongKey { dir: PathBuf, key: PathBuf },
    #[error("the audit log in {} has been tampered with: {detail}", dir.display())]
    Tampered { dir: PathBuf, detail: String },
    #[error("the last line of {} is incomplete (the machine stopped while writing it?)", path.display())]
    Damaged { path: PathBuf },
    #[error("there is no audit log in {}", dir.display())]
    NoLog { dir: PathBuf },
    #[error("the audit log stopped accepting lines after a failed write")]
    Unusable,
    #[error("another agent is writing the audit log in {}", dir.display())]
    Busy { dir: PathBuf },
}

impl AuditError {
    /// A stable code for reports.
    pub fn code(&self) -> &'static str {
        match self {
            AuditError::Dir { .. } | AuditError::NotADir { .. } => "audit-dir",
            AuditError::Io { .. } => "audit-io",
            AuditError::KeyMissing { .. } => "audit-key-missing",
            AuditError::KeyIo { .. } | AuditError::KeyNotAFile { .. } => "audit-key-unreadable",
            AuditError::KeyPermissions { .. } => "audit-key-permissions",
            AuditError::KeyTooShort { .. } | AuditError::KeyTooLong { .. } => "audit-key-invalid",
            AuditError::Crypto(_) => "audit-crypto",
            AuditError::WrongKey { .. } => "audit-wrong-key",
            AuditError::Tampered { .. } => "audit-tampered",
            AuditError::Damaged { .. } => "audit-damaged",
            AuditError::NoLog { .. } => "audit-no-log",
            AuditError::Unusable => "audit-unusable",
            AuditError::Busy { .. } => "audit-busy",
        }
    }

    /// What to do about it.
    pub fn remedy(&self) -> &'static str {
        match self {
            AuditError::Dir { .. } | AuditError::NotADir { .. } | AuditError::Io { .. } => {
                "Check that the audit directory exists, is a directory owned by the agent's user, and that the disk is not full."
            }
            AuditError::KeyMissing { .. } => {
                "Give the key file the log was written with (--key, or audit_key_file in the policy's [kiosk] table)."
            }
            AuditError::KeyIo { .. } | AuditError::KeyNotAFile { .. } => {
                "Check the key file's path and that the agent's user can read it; it must be a regular file, not a link."
            }
            AuditError::KeyPermissions { .. } => {
                "Make the key file readable by its owner only: chmod 600 <file>. Anyone who could read it could forge the log."
            }
            AuditError::KeyTooShort { .. } | AuditError::KeyTooLong { .. } => {
                "Use the key file the agent created (32 random bytes), or remove it to have a new one created with a new log directory."
            }
            AuditError::Crypto(_) => "Check the OpenSSL installation.",
            AuditError::WrongKey { .. } => {
                "Use the key file this log was written with. If it is lost, move the log directory aside (keep it as evidence) to start a new log."
            }
            AuditError::Tampered { .. } => {
                "Run eid-agent audit verify to see where; keep the directory as evidence, move it aside, and start the agent again to begin a new log."
            }
            AuditError::Damaged { .. } => {
                "Run eid-agent audit verify; keep the directory as evidence, move it aside, and start the agent again to begin a new log."
            }
            AuditError::NoLog { .. } => {
                "Check the directory (--dir, or audit_dir in the policy's [kiosk] table)."
            }
            AuditError::Unusable => {
                "Check the disk (space, errors) and restart the agent; card operations are refused until the audit log works."
            }
            AuditError::Busy { .. } => {
                "Stop the other agent (systemctl --user stop eid-agent-kiosk) or give this one another audit directory."
            }
        }
    }
}

/// The document an operation was about. `number` is only ever written as its keyed hash.
#[derive(Clone, Copy)]
pub struct Document<'a> {
    /// `citizen-card`, `passport`, `id-card`, `visa`, `travel-document`.
    pub kind: &'a str,
    /// The document number (identity file, DG1) or the certificate's serialNumber.
    pub number: &'a str,
}

impl std::fmt::Debug for Document<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the number.
        f.debug_struct("Document")
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

/// One thing to record.
#[derive(Clone, Copy, Debug)]
pub struct AuditEvent<'a> {
    pub origin: Option<&'a str>,
    pub reader: Option<&'a str>,
    pub session: Option<&'a str>,
    /// `certificate`, `authenticate`, `sign`, `identity`, `emrtd-read`, `session-start`,
    /// `session-end`, `agent-start`, `agent-stop` (and `origin-refused` for a refused origin).
    pub operation: &'a str,
    /// `ok` or the API error code (for `session-end`: the reason).
    pub result: &'a str,
    pub document: Option<Document<'a>>,
}

/// The head file: the last line written, MAC'd under the head key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Head {
    /// The log file holding the last line.
    pub file: String,
    /// The last line's `seq`.
    pub seq: u64,
    /// The last line's `mac`.
    pub mac: String,
    /// HMAC-SHA256 under the head key of this JSON without `headMac`, hex.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub head_mac: Option<String>,
}

impl Head {
    fn signed(file: String, seq: u64, mac: String, keys: &Keys) -> Result<Head, AuditError> {
        let mut head = Head {
            file,
            seq,
            mac,
            head_mac: None,
        };
        let canonical =
            serde_json::to_string(&head).map_err(|e| AuditError::Crypto(e.to_string()))?;
        head.head_mac = Some(hex::encode(keys.head_mac(canonical.as_bytes())?));
        Ok(head)
    }

    /// Parses head file bytes (bounded, canonical form only); `None` when they are not a head.
    pub fn parse(bytes: &[u8]) -> Option<Head> {
        if bytes.len() as u64 > MAX_HEAD {
            return None;
        }
        let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
        let head: Head = serde_json::from_slice(body).ok()?;
        let again = serde_json::to_string(&head).ok()?;
        (again.as_bytes() == body).then_some(head)
    }

    /// Whether `headMac` authenticates the rest under `keys` (constant time).
    pub fn mac_valid(&self, keys: &Keys) -> bool {
        let Some(given) = self.head_mac.as_deref().and_then(|m| hex::decode(m).ok()) else {
            return false;
        };
        let unsigned = Head {
            head_mac: None,
            ..self.clone()
        };
        let Ok(canonical) = serde_json::to_string(&unsigned) else {
            return false;
        };
        let Ok(expected) = keys.head_mac(canonical.as_bytes()) else {
            return false;
        };
        given.len() == expected.len() && openssl::memcmp::eq(&given, &expected)
    }
}

/// The append-only audit log of one desk. `Send + Sync`: lines are appended under a mutex, so
/// their order is the order of the calls.
#[derive(Debug)]
pub struct AuditLog {
    dir: PathBuf,
    desk: String,
    max_bytes: u64,
    keys: Keys,
    state: Mutex<State>,
    /// Holds the directory's lock while the log is open.
    _lock: File,
}

#[derive(Debug)]
struct State {
    file: File,
    number: u32,
    size: u64,
    seq: u64,
    prev: String,
    /// A write failed: the chain on disk may have a hole, so nothing more is written.
    broken: bool,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> AuditError + '_ {
    move |source| AuditError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Creates `dir` (0700) or checks it is a directory, tightening its mode to 0700.
fn prepare_dir(dir: &Path) -> Result<(), AuditError> {
    let dir_err = |source| AuditError::Dir {
        path: dir.to_owned(),
        source,
    };
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(dir_err)?;
    let meta = fs::symlink_metadata(dir).map_err(dir_err)?;
    if !meta.file_type().is_dir() {
        return Err(AuditError::NotADir {
            path: dir.to_owned(),
        });
    }
    if meta.permissions().mode() & 0o077 != 0 {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(dir_err)?;
    }
    Ok(())
}

/// The log files in `dir`, by number.
pub fn log_files(dir: &Path) -> Result<Vec<(u32, String)>, AuditError> {
    let mut files = Vec::new();
    let entries = fs::read_dir(dir).map_err(|source| AuditError::Dir {
        path: dir.to_owned(),
        source,
    })?;
    for entry in entries {
        let entry = entry.map_err(io_err(dir))?;
        if let Some(name) = entry.file_name().to_str()
            && let Some(n) = parse_file_name(name)
        {
            files.push((n, name.to_owned()));
        }
    }
    files.sort();
    Ok(files)
}

/// The head file's bytes, `None` when there is none.
pub fn read_head(dir: &Path) -> Result<Option<Vec<u8>>, AuditError> {
    let path = dir.join(HEAD_FILE);
    match File::open(&path) {
        Ok(file) => {
            let mut bytes = Vec::new();
            file.take(MAX_HEAD + 1)
                .read_to_end(&mut bytes)
                .map_err(io_err(&path))?;
            Ok(Some(bytes))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err(&path)(e)),
    }
}

/// The last line of a file (`None` when empty); `Damaged` when it does not end with a newline.
fn last_line(path: &Path) -> Result<Option<Vec<u8>>, AuditError> {
    let mut file = File::open(path).map_err(io_err(path))?;
    let len = file.metadata().map_err(io_err(path))?.len();
    if len == 0 {
        return Ok(None);
    }
    let window = len.min(line::MAX_LINE as u64 + 2);
    file.seek(SeekFrom::Start(len - window))
        .map_err(io_err(path))?;
    let mut tail = Vec::new();
    file.read_to_end(&mut tail).map_err(io_err(path))?;
    let Some(body) = tail.strip_suffix(b"\n") else {
        return Err(AuditError::Damaged {
            path: path.to_owned(),
        });
    };
    let start = body.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    Ok(Some(body.get(start..).unwrap_or_default().to_vec()))
}

fn open_append(path: &Path) -> Result<File, AuditError> {
    let file = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path)
        .map_err(io_err(path))?;
    let meta = file.metadata().map_err(io_err(path))?;
    if meta.permissions().mode() & 0o077 != 0 {
        file.set_permissions(fs::Permissions::from_mode(0o600))
            .map_err(io_err(path))?;
    }
    Ok(file)
}

fn sync_dir(dir: &Path) -> Result<(), AuditError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}

impl AuditLog {
    /// Opens (or starts) the log in `dir` for `desk`, creating the directory (0700) and the key
    /// file (32 random bytes, 0600) when missing. The chain resumes after the newest line,
    /// which must authenticate under the key and agree with the head file: a log that does not
    /// is refused (`audit-wrong-key`, `audit-tampered`, `audit-damaged`) rather than continued.
    /// Only the tail is checked here; `eid-agent audit verify` checks everything.
    pub fn open(
        dir: &Path,
        key_file: &Path,
        desk: &str,
        max_bytes: u64,
    ) -> Result<AuditLog, AuditError> {
        prepare_dir(dir)?;
        let lock_path = dir.join(LOCK_FILE);
        let lock = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&lock_path)
            .map_err(io_err(&lock_path))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                return Err(AuditError::Busy {
                    dir: dir.to_owned(),
                });
            }
            Err(fs::TryLockError::Error(e)) => return Err(io_err(&lock_path)(e)),
        }
        let keys = keys::load(key_file, true)?;
        let files = log_files(dir)?;
        let tampered = |detail: String| AuditError::Tampered {
            dir: dir.to_owned(),
            detail,
        };
        let mut tail: Option<Entry> = None;
        for (_, name) in files.iter().rev() {
            let path = dir.join(name);
            if let Some(bytes) = last_line(&path)? {
                let entry = Entry::parse_line(&bytes).map_err(|_| {
                    tampered(format!("the last line of {name} is not an audit line"))
                })?;
                if !entry.mac_valid(&keys) {
                    return Err(AuditError::WrongKey {
                        dir: dir.to_owned(),
                        key: key_file.to_owned(),
                    });
                }
                tail = Some(entry);
                break;
            }
        }
        let head = read_head(dir)?;
        let (seq, prev) = match (&tail, head) {
            (None, None) => (0, GENESIS.to_owned()),
            (None, Some(_)) => {
                return Err(tampered(format!(
                    "{HEAD_FILE} is there but the log files are empty or gone"
                )));
            }
            (Some(_), None) => {
                return Err(tampered(format!("{HEAD_FILE} is missing")));
            }
            (Some(entry), Some(bytes)) => {
                let head = Head::parse(&bytes)
                    .ok_or_else(|| tampered(format!("{HEAD_FILE} is not a head file")))?;
                if !head.mac_valid(&keys) {
                    return Err(tampered(format!(
                        "{HEAD_FILE} does not authenticate under the key"
                    )));
                }
                if head.seq > entry.seq {
                    return Err(tampered(format!(
                        "the log ends at line {} but {HEAD_FILE} records line {}: lines were cut off the end",
                        entry.seq, head.seq
                    )));
                }
                (entry.seq, entry.mac.clone().unwrap_or_default())
            }
        };
        let number = files.last().map_or(1, |(n, _)| *n);
        let path = dir.join(file_name(number));
        let file = open_append(&path)?;
        let size = file.metadata().map_err(io_err(&path))?.len();
        sync_dir(dir)?;
        Ok(AuditLog {
            dir: dir.to_owned(),
            desk: line::bounded(desk),
            max_bytes: max_bytes.max(1),
            keys,
            state: Mutex::new(State {
                file,
                number,
                size,
                seq,
                prev,
                broken: false,
            }),
            _lock: lock,
        })
    }

    /// The log's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The desk's name written in every line.
    pub fn desk(&self) -> &str {
        &self.desk
    }

    /// Appends one line and makes it durable (and the head file) before returning. Free text
    /// is cut at [`line::MAX_FIELD`] characters; the document number is written only as its
    /// keyed hash.
    pub fn record(&self, event: AuditEvent<'_>) -> Result<(), AuditError> {
        let mut state = self.state.lock().map_err(|_| AuditError::Unusable)?;
        if state.broken {
            return Err(AuditError::Unusable);
        }
        let time = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .map_err(|e| AuditError::Crypto(e.to_string()))?;
        let document_hash = match event.document {
            Some(d) if !d.number.trim().is_empty() => Some(self.keys.document_hash(d.number)?),
            _ => None,
        };
        let mut entry = Entry {
            seq: state.seq + 1,
            time,
            desk: self.desk.clone(),
            origin: event.origin.map(line::bounded),
            reader: event.reader.map(line::bounded),
            session: event.session.map(line::bounded),
            operation: line::bounded(event.operation),
            result: line::bounded(event.result),
            document_type: event.document.map(|d| line::bounded(d.kind)),
            document_hash,
            prev: state.prev.clone(),
            mac: None,
        };
        let json_err = |e: serde_json::Error| AuditError::Crypto(e.to_string());
        let canonical = entry.canonical().map_err(json_err)?;
        let mac = hex::encode(self.keys.chain_mac(canonical.as_bytes())?);
        entry.mac = Some(mac.clone());
        let mut text = entry.line().map_err(json_err)?;
        text.push('\n');
        let outcome = self.append(&mut state, text.as_bytes(), entry.seq, &mac);
        if outcome.is_err() {
            state.broken = true;
        }
        outcome
    }

    fn append(
        &self,
        state: &mut State,
        line: &[u8],
        seq: u64,
        mac: &str,
    ) -> Result<(), AuditError> {
        if state.size > 0 && state.size + line.len() as u64 > self.max_bytes {
            let number = state.number + 1;
            let path = self.dir.join(file_name(number));
            state.file = open_append(&path)?;
            sync_dir(&self.dir)?;
            state.number = number;
            state.size = 0;
        }
        let path = self.dir.join(file_name(state.number));
        // One write of the whole line on an O_APPEND file.
        state.file.write_all(line).map_err(io_err(&path))?;
        state.file.sync_data().map_err(io_err(&path))?;
        state.size += line.len() as u64;
        state.seq = seq;
        state.prev = mac.to_owned();
        self.write_head(&file_name(state.number), seq, mac)
    }

    /// Replaces the head file atomically: a temporary file, fsync, rename, fsync of the
    /// directory.
    fn write_head(&self, file: &str, seq: u64, mac: &str) -> Result<(), AuditError> {
        let head = Head::signed(file.to_owned(), seq, mac.to_owned(), &self.keys)?;
        let mut text =
            serde_json::to_string(&head).map_err(|e| AuditError::Crypto(e.to_string()))?;
        text.push('\n');
        let tmp = self.dir.join(format!("{HEAD_FILE}.tmp"));
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io_err(&tmp))?;
        f.write_all(text.as_bytes()).map_err(io_err(&tmp))?;
        f.sync_all().map_err(io_err(&tmp))?;
        let target = self.dir.join(HEAD_FILE);
        fs::rename(&tmp, &target).map_err(io_err(&target))?;
        sync_dir(&self.dir)
    }
}

#[cfg(test)]
mod tests;
