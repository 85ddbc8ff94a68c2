//! Registering the local CA with the NSS databases browsers read (Chromium's `~/.pki/nssdb`,
//! every Firefox profile) through `certutil` (Debian: libnss3-tools).
//!
//! # Why certutil
//! NSS databases are SQLite files with NSS's own schema and integrity rules; the supported way
//! to change them, safely even while a browser has them open, is NSS itself. `certutil` is NSS's
//! tool, packaged everywhere NSS is, so the installer shells out to it rather than linking NSS.
//! Its output is parsed defensively ([`parse_list`]): a line we do not understand is an error, not
//! a guess.
//!
//! # Which entries are ours
//! Every CA we add has a nickname starting with [`NICKNAME_PREFIX`], followed by the first 16 hex
//! digits of the SHA-256 of its DER ([`nickname_for`]), so successive CAs get distinct nicknames.
//! An entry is *ours* when its nickname has the prefix; it is *the current one* when its DER
//! equals our `ca.pem`. Install adds the current CA with trust `C,,` (trusted to issue TLS server
//! certificates, nothing else) and deletes entries of ours that are not current (CAs of earlier
//! installations); uninstall deletes every entry of ours. Nothing else in a database is touched.
//!
//! # Which databases
//! [`nss_databases`]: `~/.pki/nssdb` (Chromium, also Chrome and other NSS clients), its XDG
//! place `~/.local/share/pki/nssdb` (where recent NSS creates it when `~/.pki` is absent),
//! `~/snap/chromium/current/.pki/nssdb`, and every Firefox profile with a `cert9.db` under
//! `~/.mozilla/firefox/` and `~/snap/firefox/common/.mozilla/firefox/`. Chromium creates
//! `~/.pki/nssdb` lazily, so a fresh user has none: [`register_user_trust`] creates it (empty
//! password, as Chromium would).

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use crate::install::{StepResult, StepStatus};

/// The start of every nickname we give a CA (see the module documentation).
pub const NICKNAME_PREFIX: &str = "eID Agent local CA";
/// The trust flags we set: a CA for TLS servers only.
pub const TRUST_FLAGS: &str = "C,,";
/// NSS's files in a database directory (what a database we created consists of).
pub const NSS_FILES: [&str; 3] = ["cert9.db", "key4.db", "pkcs11.txt"];
/// How many entries with one nickname we delete before giving up (a loop bound).
const MAX_DUPLICATES: usize = 16;

/// What kind of client a database belongs to.
#[derive(Clone, PartialEq, Eq, Debug, serde::Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum NssKind {
    /// `~/.pki/nssdb` (Chromium, Chrome) or Chromium's snap.
    Chromium,
    /// A Firefox profile (its directory name).
    Firefox { profile: String },
    /// Anything else.
    Other,
}

/// One NSS database (a directory holding `cert9.db`).
#[derive(Clone, PartialEq, Eq, Debug, serde::Serialize)]
pub struct NssDb {
    pub path: PathBuf,
    #[serde(flatten)]
    pub kind: NssKind,
}

impl NssDb {
    /// A short description for reports.
    pub fn describe(&self) -> String {
        match &self.kind {
            NssKind::Chromium => format!("Chromium NSS database {}", self.path.display()),
            NssKind::Firefox { profile } => {
                format!("Firefox profile {profile} ({})", self.path.display())
            }
            NssKind::Other => format!("NSS database {}", self.path.display()),
        }
    }
}

/// Whether our CA is trusted in a database.
#[derive(Clone, Copy, PartialEq, Eq, Debug, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TrustState {
    /// The current CA is there with the `C` flag for TLS.
    Trusted,
    /// The current CA is there but not trusted for TLS servers.
    NotTrusted,
    /// No entry of ours.
    Absent,
    /// Only other CAs of ours (an earlier installation).
    OtherCa,
}

/// A certutil problem.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrustError {
    /// certutil is not installed.
    #[error("certutil is not installed (it registers the local CA with the browsers)")]
    CertutilMissing,
    /// certutil ran and failed.
    #[error("certutil {action} on {} failed ({status}): {stderr}", db.display())]
    Certutil {
        action: &'static str,
        db: PathBuf,
        status: String,
        stderr: String,
    },
    /// certutil's output is not what we understand.
    #[error("cannot understand certutil's output for {}: {reason}", db.display())]
    Output { db: PathBuf, reason: String },
    /// A file or directory could not be created or read.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl TrustError {
    /// A stable code.
    pub fn code(&self) -> &'static str {
        match self {
            TrustError::CertutilMissing => "certutil-missing",
            TrustError::Certutil { .. } => "certutil-failed",
            TrustError::Output { .. } => "certutil-output",
            TrustError::Io { .. } => "nss-io",
        }
    }

    /// What the user can do.
    pub fn remedy(&self) -> &'static str {
        match self {
            TrustError::CertutilMissing => {
                "Install NSS's tools (Debian/Ubuntu: sudo apt install libnss3-tools), then run \
                 eid-agent install again."
            }
            TrustError::Certutil { .. } | TrustError::Output { .. } => {
                "Close the browser using this database (or remove its master password) and run \
                 eid-agent install again; eid-agent doctor shows the state of each database."
            }
            TrustError::Io { .. } => "Check that the directory is yours and writable.",
        }
    }
}

/// One line of `certutil -L`.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct NssEntry {
    pub nickname: String,
    /// The trust attributes, e.g. `C,,` or `CT,C,C`.
    pub trust: String,
}

impl NssEntry {
    /// Trusted to issue TLS server certificates (`C` in the SSL field).
    pub fn trusted_for_tls(&self) -> bool {
        self.trust
            .split(',')
            .next()
            .is_some_and(|ssl| ssl.contains('C'))
    }

    /// One of ours (by nickname).
    pub fn is_ours(&self) -> bool {
        self.nickname.starts_with(NICKNAME_PREFIX)
    }
}

/// The nickname of a CA: the prefix and the first 16 hex digits of its DER's SHA-256.
pub fn nickname_for(ca_der: &[u8]) -> String {
    let digest = openssl::sha::sha256(ca_der);
    let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!("{NICKNAME_PREFIX} ({hex})")
}

/// Whether `certutil` can be run.
pub fn certutil_available() -> bool {
    Command::new("certutil")
        .arg("-H")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// Chromium's database in `home` (whether it exists or not): the classic place, which NSS and
/// every Chromium use when it exists.
pub fn chromium_nssdb(home: &Path) -> PathBuf {
    home.join(".pki/nssdb")
}

/// The XDG place of the user's NSS database (`$XDG_DATA_HOME/pki/nssdb`, default
/// `~/.local/share/pki/nssdb`): recent NSS, and so Chromium, create the database there when
/// `~/.pki/nssdb` does not exist (seen with Debian's Chromium 156 in a fresh HOME).
pub fn xdg_nssdb(home: &Path) -> PathBuf {
    let data = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute() && p.starts_with(home))
        .unwrap_or_else(|| home.join(".local/share"));
    data.join("pki/nssdb")
}

/// The NSS databases found in `home` (see the module documentation), in a stable order.
pub fn nss_databases(home: &Path) -> Vec<NssDb> {
    let mut dbs = Vec::new();
    for path in [
        chromium_nssdb(home),
        xdg_nssdb(home),
        home.join("snap/chromium/current/.pki/nssdb"),
    ] {
        if path.join("cert9.db").is_file() {
            dbs.push(NssDb {
                path,
                kind: NssKind::Chromium,
            });
        }
    }
    for profiles in [
        home.join(".mozilla/firefox"),
        home.join("snap/firefox/common/.mozilla/firefox"),
    ] {
        let Ok(entries) = fs::read_dir(&profiles) else {
            continue;
        };
        let mut found: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.join("cert9.db").is_file())
            .collect();
        found.sort();
        dbs.extend(found.into_iter().map(|path| {
            NssDb {
                kind: NssKind::Firefox {
                    profile: path
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                },
                path,
            }
        }));
    }
    dbs
}

/// Parses `certutil -L` (nickname, then the trust attributes in the last column). Header lines
/// are skipped; any other line without a trust column is an error.
pub fn parse_list(text: &str) -> Result<Vec<NssEntry>, String> {
    let mut entries = Vec::new();
    for line in text.lines() {
        let line = line.trim_end();
        let trimmed = line.trim_start();
        if trimmed.is_empty()
            || (trimmed.starts_with("Certificate Nickname") && trimmed.ends_with("Attributes"))
            || trimmed == "SSL,S/MIME,JAR/XPI"
        {
            continue;
        }
        let Some((nickname, trust)) = line.rsplit_once(|c: char| c.is_ascii_whitespace()) else {
            return Err(format!("line without trust attributes: {:?}", clip(line)));
        };
        let fields: Vec<&str> = trust.split(',').collect();
        if fields.len() != 3
            || !fields
                .iter()
                .all(|f| f.chars().all(|c| c.is_ascii_alphabetic()))
        {
            return Err(format!("unexpected trust attributes in {:?}", clip(line)));
        }
        let nickname = nickname.trim();
        if nickname.is_empty() {
            return Err(format!("line without a nickname: {:?}", clip(line)));
        }
        entries.push(NssEntry {
            nickname: nickname.to_owned(),
            trust: trust.to_owned(),
        });
    }
    Ok(entries)
}

fn clip(s: &str) -> String {
    s.chars().take(120).collect()
}

/// The certificates of a PEM text (`certutil -L -n NICK -a`); unparseable blocks are errors.
pub fn parse_pem_certs(text: &str) -> Result<Vec<Vec<u8>>, String> {
    CertificateDer::pem_slice_iter(text.as_bytes())
        .map(|c| c.map(|c| c.to_vec()).map_err(|e| format!("not PEM: {e}")))
        .collect()
}

fn certutil(db: &Path, action: &'static str, args: &[&str]) -> Result<String, TrustError> {
    certutil_with_input(db, action, args, None)
}

fn certutil_with_input(
    db: &Path,
    action: &'static str,
    args: &[&str],
    input: Option<&[u8]>,
) -> Result<String, TrustError> {
    let mut cmd = Command::new("certutil");
    cmd.arg("-d")
        .arg(format!("sql:{}", db.display()))
        .args(args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            TrustError::CertutilMissing
        } else {
            TrustError::Certutil {
                action,
                db: db.to_path_buf(),
                status: "not started".to_owned(),
                stderr: e.to_string(),
            }
        }
    })?;
    if let (Some(bytes), Some(mut stdin)) = (input, child.stdin.take()) {
        // A write error shows up as certutil's failure below.
        let _ = stdin.write_all(bytes);
    }
    let out = child.wait_with_output().map_err(|e| TrustError::Certutil {
        action,
        db: db.to_path_buf(),
        status: "lost".to_owned(),
        stderr: e.to_string(),
    })?;
    if !out.status.success() {
        return Err(TrustError::Certutil {
            action,
            db: db.to_path_buf(),
            status: out.status.to_string(),
            stderr: clip(String::from_utf8_lossy(&out.stderr).trim()),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Every entry of a database.
pub fn list(db: &Path) -> Result<Vec<NssEntry>, TrustError> {
    let text = certutil(db, "list", &["-L"])?;
    parse_list(&text).map_err(|reason| TrustError::Output {
        db: db.to_path_buf(),
        reason,
    })
}

/// The certificates stored under one nickname.
pub fn certs_named(db: &Path, nickname: &str) -> Result<Vec<Vec<u8>>, TrustError> {
    let text = certutil(db, "read", &["-L", "-n", nickname, "-a"])?;
    parse_pem_certs(&text).map_err(|reason| TrustError::Output {
        db: db.to_path_buf(),
        reason,
    })
}

/// The state of our CA in `db`.
pub fn nss_trust(db: &NssDb, ca_der: &[u8]) -> Result<TrustState, TrustError> {
    let mut other = false;
    for entry in list(&db.path)?.into_iter().filter(NssEntry::is_ours) {
        if certs_named(&db.path, &entry.nickname)?
            .iter()
            .any(|c| c == ca_der)
        {
            return Ok(if entry.trusted_for_tls() {
                TrustState::Trusted
            } else {
                TrustState::NotTrusted
            });
        }
        other = true;
    }
    Ok(if other {
        TrustState::OtherCa
    } else {
        TrustState::Absent
    })
}

/// Creates an empty database (no password) in `dir`, creating `dir` if needed.
pub fn create_db(dir: &Path) -> Result<(), TrustError> {
    fs::create_dir_all(dir).map_err(|source| TrustError::Io {
        action: "create",
        path: dir.to_path_buf(),
        source,
    })?;
    certutil(dir, "create", &["-N", "--empty-password"]).map(drop)
}

/// Deletes every certificate with this nickname.
fn delete_nickname(db: &Path, nickname: &str) -> Result<(), TrustError> {
    for _ in 0..MAX_DUPLICATES {
        if !list(db)?.iter().any(|e| e.nickname == nickname) {
            return Ok(());
        }
        certutil(db, "delete", &["-D", "-n", nickname])?;
    }
    Ok(())
}

/// What [`ensure_trusted`] changed.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct TrustChange {
    /// The nickname the current CA has in the database.
    pub nickname: String,
    /// Whether it was added (or its trust fixed).
    pub added: bool,
    /// Older CAs of ours that were deleted.
    pub removed: Vec<String>,
}

/// Makes `ca_der` trusted (`C,,`) in `db` and deletes the other CAs of ours.
pub fn ensure_trusted(db: &Path, ca_der: &[u8]) -> Result<TrustChange, TrustError> {
    let mut change = TrustChange {
        nickname: nickname_for(ca_der),
        ..TrustChange::default()
    };
    let mut current: Option<NssEntry> = None;
    for entry in list(db)?.into_iter().filter(NssEntry::is_ours) {
        if certs_named(db, &entry.nickname)?
            .iter()
            .any(|c| c == ca_der)
        {
            current = Some(entry);
        } else {
            delete_nickname(db, &entry.nickname)?;
            change.removed.push(entry.nickname);
        }
    }
    match current {
        Some(entry) if entry.trusted_for_tls() => change.nickname = entry.nickname,
        Some(entry) => {
            certutil(
                db,
                "trust",
                &["-M", "-n", &entry.nickname, "-t", TRUST_FLAGS],
            )?;
            change.nickname = entry.nickname;
            change.added = true;
        }
        None => {
            let pem = format!(
                "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
                base64_lines(ca_der)
            );
            certutil_with_input(
                db,
                "add",
                &["-A", "-n", &change.nickname, "-t", TRUST_FLAGS, "-a"],
                Some(pem.as_bytes()),
            )?;
            change.added = true;
        }
    }
    Ok(change)
}

fn base64_lines(der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    b64.as_bytes()
        .chunks(64)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Deletes every entry of ours from `db`; returns the nicknames deleted.
pub fn remove_ours(db: &Path) -> Result<Vec<String>, TrustError> {
    let mut removed = Vec::new();
    for entry in list(db)?.into_iter().filter(NssEntry::is_ours) {
        if !removed.contains(&entry.nickname) {
            delete_nickname(db, &entry.nickname)?;
            removed.push(entry.nickname);
        }
    }
    Ok(removed)
}

/// Whether the system store's input file holds `ca_der` (under `root`).
pub fn system_store_has(root: &Path, ca_der: &[u8]) -> bool {
    let path = crate::layout::Layout::system(root).system_ca();
    fs::read_to_string(path)
        .ok()
        .and_then(|text| parse_pem_certs(&text).ok())
        .is_some_and(|certs| certs.iter().any(|c| c == ca_der))
}

/// Registers `ca_der` in every NSS database of `home` (creating Chromium's `~/.pki/nssdb` when
/// absent), for `eid-agent run` after it created a CA, and for install. One step per database.
pub fn register_user_trust(home: &Path, ca_der: &[u8]) -> Vec<StepResult> {
    register_user_trust_detailed(home, ca_der).0
}

/// [`register_user_trust`], also returning the databases it created and the nickname per
/// database it added (for the install manifest).
pub(crate) fn register_user_trust_detailed(
    home: &Path,
    ca_der: &[u8],
) -> (Vec<StepResult>, Vec<PathBuf>, Vec<(PathBuf, String)>) {
    let mut steps = Vec::new();
    let mut created = Vec::new();
    let mut added = Vec::new();
    if !certutil_available() {
        let e = TrustError::CertutilMissing;
        steps.push(StepResult::new(
            "nss-trust",
            StepStatus::Failed,
            e.to_string(),
            Some(e.remedy()),
        ));
        return (steps, created, added);
    }
    // A user who never started Chromium has no database yet; Chromium opens `~/.pki/nssdb` when it
    // exists, so that is where one is created. One at the XDG place is used as it is.
    let chromium = chromium_nssdb(home);
    if !chromium.join("cert9.db").is_file() && !xdg_nssdb(home).join("cert9.db").is_file() {
        match create_db(&chromium) {
            Ok(()) => created.push(chromium.clone()),
            Err(e) => {
                steps.push(StepResult::new(
                    "nss-trust",
                    StepStatus::Failed,
                    format!("creating {}: {e}", chromium.display()),
                    Some(e.remedy()),
                ));
            }
        }
    }
    for db in nss_databases(home) {
        let step = match ensure_trusted(&db.path, ca_der) {
            Ok(change) => {
                let mut detail = if change.added {
                    format!("{}: CA added as {:?}", db.describe(), change.nickname)
                } else {
                    format!("{}: CA already trusted", db.describe())
                };
                if !change.removed.is_empty() {
                    detail.push_str(&format!("; older CAs removed: {:?}", change.removed));
                }
                let status = if change.added || !change.removed.is_empty() {
                    StepStatus::Done
                } else {
                    StepStatus::Unchanged
                };
                added.push((db.path.clone(), change.nickname));
                StepResult::new("nss-trust", status, detail, None)
            }
            Err(e) => StepResult::new(
                "nss-trust",
                StepStatus::Failed,
                format!("{}: {e}", db.describe()),
                Some(e.remedy()),
            ),
        };
        steps.push(step);
    }
    (steps, created, added)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LISTING: &str = "\nCertificate Nickname                                         Trust Attributes\n                                                             SSL,S/MIME,JAR/XPI\n\neID Agent local CA (0011223344556677)                        C,,  \nSome Other CA                                                CT,C,C\nuser cert                                                    u,u,u\n";

    #[test]
    fn parses_certutil_listing() {
        let entries = parse_list(LISTING).unwrap();
        assert_eq!(entries.len(), 3);
        assert_eq!(entries[0].nickname, "eID Agent local CA (0011223344556677)");
        assert!(entries[0].is_ours() && entries[0].trusted_for_tls());
        assert_eq!(entries[1].nickname, "Some Other CA");
        assert!(!entries[1].is_ours() && entries[1].trusted_for_tls());
        assert!(!entries[2].trusted_for_tls());
        assert_eq!(parse_list("").unwrap(), Vec::new());
    }

    #[test]
    fn hostile_listings_are_errors_not_guesses() {
        for bad in [
            "garbage",
            "nickname only-no-commas",
            "nick C,,,",
            "nick C,x y,",
            "   C,,",
            "nick C,\u{e9},",
        ] {
            assert!(parse_list(bad).is_err(), "{bad:?} was accepted");
        }
        // Long and odd lines never panic.
        let long = format!("{} C,,", "é".repeat(10_000));
        assert!(parse_list(&long).is_ok());
        assert!(parse_list(&"\u{0},,\n".repeat(100)).is_err());
    }

    #[test]
    fn prefix_alone_is_ours_and_trust_is_the_ssl_field() {
        let e = NssEntry {
            nickname: "eID Agent local CA".into(),
            trust: ",C,".into(),
        };
        assert!(e.is_ours());
        assert!(!e.trusted_for_tls());
        let e = NssEntry {
            nickname: "Not eID Agent local CA".into(),
            trust: "C,,".into(),
        };
        assert!(!e.is_ours());
    }

    #[test]
    fn nicknames_differ_per_ca_and_share_the_prefix() {
        let a = nickname_for(b"one");
        let b = nickname_for(b"two");
        assert_ne!(a, b);
        assert!(a.starts_with(NICKNAME_PREFIX) && a.len() == NICKNAME_PREFIX.len() + 19);
    }

    #[test]
    fn pem_parser_rejects_damaged_blocks() {
        assert_eq!(parse_pem_certs("").unwrap(), Vec::<Vec<u8>>::new());
        assert!(
            parse_pem_certs("-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n")
                .is_err()
        );
        let ok = format!(
            "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
            base64_lines(&[0x30, 0x03, 0x02, 0x01, 0x01])
        );
        assert_eq!(
            parse_pem_certs(&ok).unwrap(),
            vec![vec![0x30, 0x03, 0x02, 0x01, 0x01]]
        );
    }
}
