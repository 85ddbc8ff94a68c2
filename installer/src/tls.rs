//! The local TLS material of the bridge: a private CA and the `localhost` certificate it signs.
//!
//! Browsers only talk to `https://127.0.0.1:<port>` when they trust its certificate, so the agent
//! has a CA of its own, registered in the trust stores at install time, and a short-lived leaf for
//! the loopback names signed by it. [`ensure`] loads both from one directory (normally
//! `~/.config/eid-agent/tls/`) and creates or renews what is missing or stale; the agent calls it at
//! start, the installer calls it before it registers the CA.
//!
//! # Layout
//! | file | content | mode |
//! |---|---|---|
//! | `ca.pem` | the CA certificate (what trust stores import) | 0644 |
//! | `ca-key.pem` | the CA's private key (PKCS#8) | 0600 |
//! | `localhost.pem` | the leaf, then the CA: the chain the server presents | 0644 |
//! | `localhost-key.pem` | the leaf's private key (PKCS#8) | 0600 |
//!
//! The directory is 0700; `.lock` in it serialises concurrent callers. Every file is written to a temporary name in the same directory and
//! renamed over the old one ([`write_file_atomic`]), so a reader sees the old file or the new one,
//! never half of one.
//!
//! # The CA
//! ECDSA P-256, `CN=eID Agent local CA (<host name or user>)`, basicConstraints CA with path length
//! 0, keyUsage keyCertSign + cRLSign, valid 10 years, and critical name constraints that permit
//! only the DNS name `localhost` (and its subdomains, per RFC 5280 §4.2.1.10) and the addresses
//! 127.0.0.1/32 and ::1/128. Even if its key leaked, a certificate it signed for any other name
//! fails validation in every client that honours name constraints.
//!
//! The CA key is kept (`ca-key.pem`, 0600, in the user's own 0700 directory) so that the agent can
//! renew the leaf by itself, without a new trust registration every year. Whoever can read that
//! file can already read the leaf key and impersonate the bridge, and the name constraints keep
//! the CA useless for other sites. An installer may still choose to destroy the CA key after
//! signing the leaf: the leaf then keeps working until it is due for renewal, and [`ensure`]
//! returns [`TlsError::CaKeyUnavailable`] at that point; the installer then calls [`regenerate`]
//! (a new CA and leaf) and registers the new CA again.
//!
//! # Keeping or destroying the CA key: per scope
//! - User scope (`eid-agent install`, and `eid-agent run` on first start): the CA key is **kept**
//!   as described above. Renewal path: the agent renews the leaf by itself ([`ensure`], at every
//!   start, [`RENEW_BEFORE_DAYS`] ahead); no trust registration is needed again for the CA's ten
//!   years. A damaged or lost CA key makes `eid-agent install` call [`regenerate`] and register
//!   the new CA (deleting the older CAs of ours from the NSS databases).
//! - System scope (`eid-agent install --system`, `/etc/eid-agent/tls`, see
//!   [`SYSTEM_TLS_DIR`]): the CA key is **destroyed**, in fact never written
//!   ([`regenerate_without_ca_key`]): the machine's trust store, browser policies and every user's
//!   NSS database trust that CA, so a key left on disk would let root-readable malware mint
//!   localhost certificates trusted by every user; without it nothing on the machine can. The
//!   leaf key is 0640 root:`eid-agent`, so members of that group run the agent with it
//!   ([`agent_material`], read-only via [`load_system`]). Renewal path: the administrator runs
//!   `eid-agent install --system` again before the leaf's 397 days are over (it regenerates CA
//!   and leaf and registers the new CA everywhere); `eid-agent doctor` warns
//!   [`RENEW_BEFORE_DAYS`] days ahead, and an expired machine leaf is
//!   [`TlsError::SystemUnusable`], whose remedy says so.
//!
//! An existing CA that parses is never replaced silently: trust stores hold it, and a new one
//! would make every browser refuse the bridge until it is registered again. A `ca.pem` that does
//! not parse (or is not a usable CA any more) is an error that tells the user to run
//! `eid-agent install` or to delete the directory.
//!
//! # The leaf
//! ECDSA P-256, `CN=localhost`, SANs DNS `localhost`, IP `127.0.0.1`, IP `::1`, EKU serverAuth,
//! keyUsage digitalSignature, basicConstraints CA:FALSE. Valid [`LEAF_VALIDITY_DAYS`] = 397 days:
//! under the 398 days browsers require of publicly trusted certificates and well under the 825
//! days Apple requires of every TLS server certificate, so no client's lifetime rule can refuse
//! it, while a renewal a year is cheap because the agent does it alone. It is renewed when it is
//! missing or unreadable, when its key does not match, when fewer than [`RENEW_BEFORE_DAYS`] days
//! remain (or it is not yet valid), when it does not chain to the CA, or when its names or usages
//! are not the ones above.

use std::fmt;
use std::fs;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine;
use rcgen::{
    BasicConstraints, CertificateParams, CidrSubnet, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, GeneralSubtree, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    NameConstraints, SanType,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use time::{Duration, OffsetDateTime};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use zeroize::Zeroizing;

/// The CA certificate.
pub const CA_FILE: &str = "ca.pem";
/// The CA's private key.
pub const CA_KEY_FILE: &str = "ca-key.pem";
/// The leaf certificate followed by the CA certificate.
pub const LEAF_FILE: &str = "localhost.pem";
/// The leaf's private key.
pub const LEAF_KEY_FILE: &str = "localhost-key.pem";

/// Held while the files are checked or written.
const LOCK_FILE: &str = ".lock";

/// How long a new CA is valid.
pub const CA_VALIDITY_DAYS: i64 = 3650;
/// How long a new leaf is valid (at most 825, Apple's limit; 397 keeps under the 398 of the
/// public web too).
pub const LEAF_VALIDITY_DAYS: i64 = 397;
/// A leaf with fewer days left than this is renewed.
pub const RENEW_BEFORE_DAYS: i64 = 30;
/// New certificates start this long before `now`, for clocks that disagree slightly.
const BACKDATE: Duration = Duration::hours(1);

/// What went wrong with the TLS files.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A file could not be read or written (the machine's fault: permissions, disk full).
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// `ca.pem` exists but is not a usable CA (damaged file, expired, or not a CA). Never
    /// replaced silently: trust stores hold the old one.
    #[error(
        "the local CA {} is unusable ({reason}); run `eid-agent install` to create and register \
         a new one, or delete {} to start over",
        path.display(),
        dir.display()
    )]
    CaUnusable {
        path: PathBuf,
        dir: PathBuf,
        reason: String,
    },
    /// The leaf must be renewed but the CA key is missing, damaged or not the CA's.
    #[error(
        "the localhost certificate must be renewed ({why}) but the CA key {} is unusable \
         ({reason}); run `eid-agent install` to create and register a new CA, or delete {} to \
         start over",
        path.display(),
        dir.display()
    )]
    CaKeyUnavailable {
        path: PathBuf,
        dir: PathBuf,
        why: String,
        reason: String,
    },
    /// Key or certificate generation failed (a bug, or the system's random source).
    #[error("cannot generate the local TLS certificates: {0}")]
    Generate(#[from] rcgen::Error),
    /// The machine's TLS material (`/etc/eid-agent/tls`, made by `eid-agent install --system`)
    /// is missing, unreadable, expired or inconsistent. Only the administrator can renew it.
    #[error("the machine's localhost certificate in {} is unusable: {reason}", dir.display())]
    SystemUnusable { dir: PathBuf, reason: String },
}

impl TlsError {
    /// A stable code for reports.
    pub fn code(&self) -> &'static str {
        match self {
            TlsError::Io { .. } => "tls-io",
            TlsError::CaUnusable { .. } => "tls-ca-unusable",
            TlsError::CaKeyUnavailable { .. } => "tls-ca-key-unavailable",
            TlsError::Generate(_) => "tls-generate",
            TlsError::SystemUnusable { .. } => "tls-system-unusable",
        }
    }

    /// What the user can do about it.
    pub fn remedy(&self) -> &'static str {
        match self {
            TlsError::Io { .. } => {
                "Check that the agent's configuration directory is yours and writable, and that \
                 the disk is not full."
            }
            TlsError::CaUnusable { .. } | TlsError::CaKeyUnavailable { .. } => {
                "Run `eid-agent install` (it creates a new local CA and registers it with the \
                 browsers), or delete the tls directory named above and restart the agent."
            }
            TlsError::Generate(_) => "Report this as a bug.",
            TlsError::SystemUnusable { .. } => {
                "Ask the administrator to run `sudo eid-agent install --system` (it renews the \
                 machine's certificate), or run `eid-agent install` to use a CA of your own."
            }
        }
    }
}

/// The loaded (or just created) TLS material.
#[derive(Clone)]
pub struct LocalTls {
    /// The CA certificate, PEM (what trust stores import).
    pub ca_pem: String,
    /// The leaf then the CA, PEM.
    pub leaf_chain_pem: String,
    /// The leaf's private key, PKCS#8 PEM.
    pub leaf_key_pem: Zeroizing<String>,
    /// When the leaf expires.
    pub leaf_not_after: OffsetDateTime,
    /// Base64 of the SHA-256 of the leaf's SubjectPublicKeyInfo DER: the form of Chromium's
    /// `--ignore-certificate-errors-spki-list` (tests and kiosks that cannot import the CA).
    pub leaf_spki_sha256_b64: String,
    /// Whether anything was written by this call (a new CA and/or a new leaf).
    pub created: bool,
    /// Whether a new CA was created by this call: it must be (re)registered with trust stores.
    pub ca_created: bool,
    /// Why files were written, for the log (`None` when everything was reused).
    pub reason: Option<String>,
    chain_der: Vec<CertificateDer<'static>>,
    key_der: Zeroizing<Vec<u8>>,
}

impl fmt::Debug for LocalTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalTls")
            .field("leaf_not_after", &self.leaf_not_after)
            .field("leaf_spki_sha256_b64", &self.leaf_spki_sha256_b64)
            .field("created", &self.created)
            .field("ca_created", &self.ca_created)
            .field("reason", &self.reason)
            .field("leaf_key_pem", &"[elided]")
            .finish_non_exhaustive()
    }
}

impl LocalTls {
    /// The chain the server presents: the leaf, then the CA.
    pub fn cert_chain_der(&self) -> Vec<CertificateDer<'static>> {
        self.chain_der.clone()
    }

    /// The leaf's private key (PKCS#8).
    pub fn key_der(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(self.key_der.to_vec().into())
    }

    /// The CA certificate, DER.
    pub fn ca_der(&self) -> Option<&CertificateDer<'static>> {
        self.chain_der.get(1)
    }
}

/// Loads the TLS material from `dir`, creating the CA and leaf when missing and renewing the leaf
/// when it is stale (see the module documentation). `now` is the current time (a parameter so
/// tests can move it).
pub fn ensure(dir: &Path, now: OffsetDateTime) -> Result<LocalTls, TlsError> {
    let _lock = prepare_dir(dir)?;
    let ca_path = dir.join(CA_FILE);
    let Some(ca_pem) = read_optional(&ca_path)? else {
        return create_all(dir, now, "no local CA yet".to_owned(), true);
    };
    let ca_der = parse_ca(&ca_pem, now).map_err(|reason| TlsError::CaUnusable {
        path: ca_path.clone(),
        dir: dir.to_path_buf(),
        reason,
    })?;

    match check_leaf(dir, &ca_der, now)? {
        Ok(leaf) => Ok(finish(ca_pem, ca_der, leaf, false, false, None)),
        Err(why) => {
            let key_path = dir.join(CA_KEY_FILE);
            let ca_key =
                load_ca_key(&key_path, &ca_der)?.map_err(|reason| TlsError::CaKeyUnavailable {
                    path: key_path.clone(),
                    dir: dir.to_path_buf(),
                    why: why.clone(),
                    reason,
                })?;
            let leaf = issue_leaf(dir, &ca_pem, ca_key, now)?;
            Ok(finish(ca_pem, ca_der, leaf, true, false, Some(why)))
        }
    }
}

/// Loads the machine's TLS material made by `eid-agent install --system` (normally
/// [`SYSTEM_TLS_DIR`]) without writing anything: the machine CA's key was destroyed, so nothing
/// here can be renewed by the agent. A leaf that is expired, not yet valid, not signed by the CA
/// next to it or not matching its key is [`TlsError::SystemUnusable`], whose remedy sends the
/// user to the administrator. A leaf close to expiry is still served (`eid-agent doctor` warns
/// [`RENEW_BEFORE_DAYS`] days ahead).
pub fn load_system(dir: &Path, now: OffsetDateTime) -> Result<LocalTls, TlsError> {
    let unusable = |reason: String| TlsError::SystemUnusable {
        dir: dir.to_path_buf(),
        reason,
    };
    let read = |name: &str| -> Result<String, TlsError> {
        let path = dir.join(name);
        match fs::read(&path) {
            Ok(bytes) => Ok(String::from_utf8_lossy(&bytes).into_owned()),
            Err(e) => Err(unusable(format!("cannot read {}: {e}", path.display()))),
        }
    };
    let ca_pem = read(CA_FILE)?;
    let ca_der = parse_ca(&ca_pem, now).map_err(|r| unusable(format!("{CA_FILE}: {r}")))?;
    let chain_pem = read(LEAF_FILE)?;
    let key_pem = Zeroizing::new(read(LEAF_KEY_FILE)?);
    let leaf = validate_leaf(chain_pem, key_pem, &ca_der, now, Duration::ZERO).map_err(unusable)?;
    Ok(finish(ca_pem, ca_der, leaf, false, false, None))
}

/// The machine's TLS directory (see [`agent_material`]).
pub const SYSTEM_TLS_DIR: &str = crate::layout::SYSTEM_TLS_DIR;

/// The TLS material `eid-agent run` serves, and the directory it came from: the machine's
/// (`system_dir`, via [`load_system`]) when the user has no CA of their own (`user_dir/ca.pem`
/// absent) and the machine's leaf and key are readable by this process; otherwise the user's
/// own, created or renewed by [`ensure`].
pub fn agent_material(
    user_dir: &Path,
    system_dir: &Path,
    now: OffsetDateTime,
) -> Result<(PathBuf, LocalTls), TlsError> {
    let readable = |name: &str| fs::File::open(system_dir.join(name)).is_ok();
    if !user_dir.join(CA_FILE).exists() && readable(LEAF_FILE) && readable(LEAF_KEY_FILE) {
        return Ok((system_dir.to_path_buf(), load_system(system_dir, now)?));
    }
    Ok((user_dir.to_path_buf(), ensure(user_dir, now)?))
}

/// Replaces the CA and the leaf with new ones, whatever is in `dir`. For the installer (a CA key
/// it destroyed, a CA it could not use); the new CA must then be registered with trust stores.
pub fn regenerate(dir: &Path, now: OffsetDateTime) -> Result<LocalTls, TlsError> {
    let _lock = prepare_dir(dir)?;
    create_all(dir, now, "regenerated on request".to_owned(), true)
}

/// Like [`regenerate`], but the new CA's private key never reaches the disk: it signs the leaf
/// in memory and is dropped. For the machine's CA (`eid-agent install --system`): no
/// process on the machine can mint another certificate under it. Any `ca-key.pem` left in `dir`
/// by an earlier layout is deleted. The leaf can then only be renewed by calling this again
/// (and registering the new CA).
pub fn regenerate_without_ca_key(dir: &Path, now: OffsetDateTime) -> Result<LocalTls, TlsError> {
    let _lock = prepare_dir(dir)?;
    let tls = create_all(dir, now, "regenerated on request".to_owned(), false)?;
    let key_path = dir.join(CA_KEY_FILE);
    match fs::remove_file(&key_path) {
        Ok(()) => Ok(tls),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(tls),
        Err(e) => Err(io_error("delete", &key_path)(e)),
    }
}

/// Writes `contents` to `path` atomically: a temporary file in the same directory with `mode`,
/// flushed to disk, then renamed over `path`.
pub fn write_file_atomic(path: &Path, contents: &[u8], mode: u32) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // Unique per process and per call, so concurrent writers never share a temporary file.
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let serial = COUNTER.fetch_add(1, Ordering::Relaxed);
    let tmp = dir.join(format!(".{name}.tmp-{}-{serial}", std::process::id()));
    let result = (|| {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)?;
        // The mode given to open() is filtered by the umask; make it exact.
        file.set_permissions(fs::Permissions::from_mode(mode))?;
        file.write_all(contents)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, path)?;
        // Make the rename itself durable.
        if let Ok(d) = fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// The leaf's SubjectPublicKeyInfo hash in Chromium's `--ignore-certificate-errors-spki-list`
/// form.
pub fn spki_sha256_b64(cert_der: &[u8]) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(cert_der).ok()?;
    let digest = openssl::sha::sha256(cert.tbs_certificate.subject_pki.raw);
    Some(base64::engine::general_purpose::STANDARD.encode(digest))
}

/// A leaf that passed every check, with what the caller needs of it.
struct Leaf {
    chain_pem: String,
    chain_der: Vec<CertificateDer<'static>>,
    key_pem: Zeroizing<String>,
    key_der: Zeroizing<Vec<u8>>,
    not_after: OffsetDateTime,
    spki_b64: String,
}

fn finish(
    ca_pem: String,
    ca_der: CertificateDer<'static>,
    leaf: Leaf,
    created: bool,
    ca_created: bool,
    reason: Option<String>,
) -> LocalTls {
    let mut chain_der = leaf.chain_der;
    chain_der.truncate(1);
    chain_der.push(ca_der);
    LocalTls {
        ca_pem,
        leaf_chain_pem: leaf.chain_pem,
        leaf_key_pem: leaf.key_pem,
        leaf_not_after: leaf.not_after,
        leaf_spki_sha256_b64: leaf.spki_b64,
        created,
        ca_created,
        reason,
        chain_der,
        key_der: leaf.key_der,
    }
}

fn io_error(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> TlsError + use<> {
    let path = path.to_path_buf();
    move |source| TlsError::Io {
        action,
        path,
        source,
    }
}

/// Creates `dir` (0700) and takes its lock (`.lock`, held until the returned file is dropped), so
/// that the agent and the installer never create two different CAs at once.
fn prepare_dir(dir: &Path) -> Result<fs::File, TlsError> {
    fs::create_dir_all(dir).map_err(io_error("create", dir))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
        .map_err(io_error("set permissions of", dir))?;
    let lock_path = dir.join(LOCK_FILE);
    let lock = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&lock_path)
        .map_err(io_error("open", &lock_path))?;
    lock.lock().map_err(io_error("lock", &lock_path))?;
    Ok(lock)
}

fn read_optional(path: &Path) -> Result<Option<String>, TlsError> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(String::from_utf8_lossy(&bytes).into_owned())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_error("read", path)(e)),
    }
}

fn write(path: &Path, contents: &str, mode: u32) -> Result<(), TlsError> {
    write_file_atomic(path, contents.as_bytes(), mode).map_err(io_error("write", path))
}

/// The one certificate of a PEM file, or why not (also `eid-agent doctor`'s reader).
pub fn single_cert(pem: &[u8]) -> Result<CertificateDer<'static>, String> {
    let mut certs = CertificateDer::pem_slice_iter(pem);
    let first = certs
        .next()
        .ok_or("no certificate in it")?
        .map_err(|e| format!("not PEM: {e}"))?;
    if certs.next().is_some() {
        return Err("more than one certificate in it".to_owned());
    }
    Ok(first)
}

/// Checks an existing CA certificate: one certificate, a CA, valid at `now`.
fn parse_ca(pem: &str, now: OffsetDateTime) -> Result<CertificateDer<'static>, String> {
    let der = single_cert(pem.as_bytes())?;
    let (_, cert) = x509_parser::parse_x509_certificate(&der)
        .map_err(|e| format!("not an X.509 certificate: {e}"))?;
    if !cert.is_ca() {
        return Err("not a CA certificate".to_owned());
    }
    let validity = cert.validity();
    if now < validity.not_before.to_datetime() {
        return Err("not valid yet (is the clock right?)".to_owned());
    }
    if now > validity.not_after.to_datetime() {
        return Err(format!("expired on {}", validity.not_after));
    }
    Ok(der)
}

/// The CA key when it exists, parses and belongs to the CA; `Ok(Err(reason))` otherwise.
fn load_ca_key(
    path: &Path,
    ca_der: &CertificateDer<'static>,
) -> Result<Result<KeyPair, String>, TlsError> {
    let Some(pem) = read_optional(path)?.map(Zeroizing::new) else {
        return Ok(Err("it does not exist".to_owned()));
    };
    let key = match KeyPair::from_pem(&pem) {
        Ok(key) => key,
        Err(e) => return Ok(Err(format!("not a private key: {e}"))),
    };
    let Ok((_, ca)) = x509_parser::parse_x509_certificate(ca_der) else {
        return Ok(Err("the CA does not parse".to_owned()));
    };
    if rcgen::PublicKeyData::subject_public_key_info(&key) != ca.tbs_certificate.subject_pki.raw {
        return Ok(Err("it is not the CA's key".to_owned()));
    }
    Ok(Ok(key))
}

/// The existing leaf when it is fine, `Ok(Err(why))` when it must be renewed.
fn check_leaf(
    dir: &Path,
    ca_der: &CertificateDer<'static>,
    now: OffsetDateTime,
) -> Result<Result<Leaf, String>, TlsError> {
    let Some(chain_pem) = read_optional(&dir.join(LEAF_FILE))? else {
        return Ok(Err(format!("{LEAF_FILE} is missing")));
    };
    let Some(key_pem) = read_optional(&dir.join(LEAF_KEY_FILE))?.map(Zeroizing::new) else {
        return Ok(Err(format!("{LEAF_KEY_FILE} is missing")));
    };
    Ok(validate_leaf(
        chain_pem,
        key_pem,
        ca_der,
        now,
        Duration::days(RENEW_BEFORE_DAYS),
    ))
}

fn validate_leaf(
    chain_pem: String,
    key_pem: Zeroizing<String>,
    ca_der: &CertificateDer<'static>,
    now: OffsetDateTime,
    renew_before: Duration,
) -> Result<Leaf, String> {
    let chain_der = CertificateDer::pem_slice_iter(chain_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{LEAF_FILE} is not PEM: {e}"))?;
    let [leaf_der, chain_ca] = chain_der.as_slice() else {
        return Err(format!(
            "{LEAF_FILE} holds {} certificates, not the leaf and the CA",
            chain_der.len()
        ));
    };
    if chain_ca != ca_der {
        return Err(format!("{LEAF_FILE} does not end with the current CA"));
    }
    let (_, leaf) = x509_parser::parse_x509_certificate(leaf_der)
        .map_err(|e| format!("the leaf does not parse: {e}"))?;
    let (_, ca) =
        x509_parser::parse_x509_certificate(ca_der).map_err(|e| format!("the CA: {e}"))?;
    if leaf.issuer() != ca.subject() || leaf.verify_signature(Some(ca.public_key())).is_err() {
        return Err("the leaf is not signed by the current CA".to_owned());
    }
    let not_before = leaf.validity().not_before.to_datetime();
    let not_after = leaf.validity().not_after.to_datetime();
    if now < not_before {
        return Err("the leaf is not valid yet".to_owned());
    }
    if not_after - now < renew_before {
        return Err(if renew_before.is_zero() || not_after <= now {
            format!("the leaf expired on {}", leaf.validity().not_after)
        } else {
            format!(
                "the leaf expires on {} (less than {} days left)",
                leaf.validity().not_after,
                renew_before.whole_days()
            )
        });
    }
    if not_after - not_before > Duration::days(825) {
        return Err("the leaf is valid for more than 825 days".to_owned());
    }
    leaf_profile_problem(&leaf).map_or(Ok(()), Err)?;

    let key_der = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
        .map_err(|e| format!("{LEAF_KEY_FILE} is not a PEM private key: {e}"))?;
    let PrivateKeyDer::Pkcs8(pkcs8) = &key_der else {
        return Err(format!("{LEAF_KEY_FILE} is not PKCS#8"));
    };
    let key_der = Zeroizing::new(pkcs8.secret_pkcs8_der().to_vec());
    let key = KeyPair::from_pem(&key_pem).map_err(|e| format!("{LEAF_KEY_FILE}: {e}"))?;
    if rcgen::PublicKeyData::subject_public_key_info(&key) != leaf.tbs_certificate.subject_pki.raw {
        return Err(format!("{LEAF_KEY_FILE} is not the leaf's key"));
    }
    let spki_b64 = spki_sha256_b64(leaf_der).ok_or("the leaf does not parse")?;
    Ok(Leaf {
        chain_der: chain_der.clone(),
        chain_pem,
        key_pem,
        key_der,
        not_after,
        spki_b64,
    })
}

/// Why the leaf's names or usages are not the expected ones, if they are not.
fn leaf_profile_problem(leaf: &X509Certificate<'_>) -> Option<String> {
    let mut names: Vec<String> = match leaf.subject_alternative_name() {
        Ok(Some(san)) => san
            .value
            .general_names
            .iter()
            .map(|n| match n {
                GeneralName::DNSName(d) => format!("DNS:{d}"),
                GeneralName::IPAddress(bytes) => ip_from_bytes(bytes)
                    .map(|ip| format!("IP:{ip}"))
                    .unwrap_or_else(|| "IP:?".to_owned()),
                other => format!("{other:?}"),
            })
            .collect(),
        _ => return Some("the leaf has no readable subjectAltName".to_owned()),
    };
    names.sort();
    let mut expected: Vec<String> = leaf_sans()
        .iter()
        .map(|s| match s {
            SanType::DnsName(d) => format!("DNS:{}", d.as_str()),
            SanType::IpAddress(ip) => format!("IP:{ip}"),
            _ => String::new(),
        })
        .collect();
    expected.sort();
    if names != expected {
        return Some(format!("the leaf's names are {names:?}, not {expected:?}"));
    }
    match leaf.extended_key_usage() {
        Ok(Some(eku)) if eku.value.server_auth => {}
        _ => return Some("the leaf lacks extendedKeyUsage serverAuth".to_owned()),
    }
    match leaf.key_usage() {
        Ok(Some(ku)) if ku.value.digital_signature() => {}
        _ => return Some("the leaf lacks keyUsage digitalSignature".to_owned()),
    }
    if leaf.is_ca() {
        return Some("the leaf is a CA".to_owned());
    }
    None
}

fn ip_from_bytes(bytes: &[u8]) -> Option<IpAddr> {
    if let Ok(v4) = <[u8; 4]>::try_from(bytes) {
        return Some(IpAddr::V4(Ipv4Addr::from(v4)));
    }
    <[u8; 16]>::try_from(bytes)
        .ok()
        .map(|v6| IpAddr::V6(Ipv6Addr::from(v6)))
}

fn leaf_sans() -> Vec<SanType> {
    let mut sans = Vec::with_capacity(3);
    if let Ok(name) = "localhost".try_into() {
        sans.push(SanType::DnsName(name));
    }
    sans.push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    sans.push(SanType::IpAddress(IpAddr::V6(Ipv6Addr::LOCALHOST)));
    sans
}

/// Whose CA this is, for its name: the host name, else the user, else a generic word.
fn owner_label() -> String {
    let from_host = fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned());
    let from_user = || {
        std::env::var("USER")
            .or_else(|_| std::env::var("LOGNAME"))
            .ok()
    };
    let label = from_host
        .filter(|h| !h.is_empty() && h != "localhost")
        .or_else(from_user)
        .unwrap_or_else(|| "this computer".to_owned());
    label.chars().filter(|c| !c.is_control()).take(48).collect()
}

fn create_all(
    dir: &Path,
    now: OffsetDateTime,
    why: String,
    keep_ca_key: bool,
) -> Result<LocalTls, TlsError> {
    let ca_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(
        DnType::CommonName,
        format!("eID Agent local CA ({})", owner_label()),
    );
    dn.push(DnType::OrganizationName, "eID Agent");
    // Tells apart the CAs of successive installations in a trust-store listing.
    dn.push(
        DnType::OrganizationalUnitName,
        format!("created {}", now.date()),
    );
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.name_constraints = Some(NameConstraints {
        permitted_subtrees: vec![
            GeneralSubtree::DnsName("localhost".to_owned()),
            GeneralSubtree::IpAddress(CidrSubnet::from_v4_prefix([127, 0, 0, 1], 32)),
            GeneralSubtree::IpAddress(CidrSubnet::from_v6_prefix(
                Ipv6Addr::LOCALHOST.octets(),
                128,
            )),
        ],
        excluded_subtrees: Vec::new(),
    });
    params.not_before = now - BACKDATE;
    params.not_after = now + Duration::days(CA_VALIDITY_DAYS);
    let ca_cert = params.self_signed(&ca_key)?;
    let ca_pem = ca_cert.pem();
    let ca_der = ca_cert.der().clone();

    // Key first: a crash between the two writes leaves a CA with its key, or no CA.
    if keep_ca_key {
        write(
            &dir.join(CA_KEY_FILE),
            &Zeroizing::new(ca_key.serialize_pem()),
            0o600,
        )?;
    }
    write(&dir.join(CA_FILE), &ca_pem, 0o644)?;
    let leaf = issue_leaf(dir, &ca_pem, ca_key, now)?;
    Ok(finish(ca_pem, ca_der, leaf, true, true, Some(why)))
}

fn issue_leaf(
    dir: &Path,
    ca_pem: &str,
    ca_key: KeyPair,
    now: OffsetDateTime,
) -> Result<Leaf, TlsError> {
    let issuer = Issuer::from_ca_cert_pem(ca_pem, ca_key)?;
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "localhost");
    params.distinguished_name = dn;
    params.subject_alt_names = leaf_sans();
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    params.not_before = now - BACKDATE;
    params.not_after = now + Duration::days(LEAF_VALIDITY_DAYS);
    let cert = params.signed_by(&key, &issuer)?;

    let chain_pem = format!("{}{}", cert.pem(), ca_pem);
    let key_pem = Zeroizing::new(key.serialize_pem());
    // Key first: a crash between the two writes leaves a leaf that does not match its key,
    // which the next start renews.
    write(&dir.join(LEAF_KEY_FILE), &key_pem, 0o600)?;
    write(&dir.join(LEAF_FILE), &chain_pem, 0o644)?;

    let ca_der = single_cert(ca_pem.as_bytes()).map_err(|reason| TlsError::CaUnusable {
        path: dir.join(CA_FILE),
        dir: dir.to_path_buf(),
        reason,
    })?;
    // What the certificate says (whole seconds), not what was asked.
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.der()).map_err(|e| {
        TlsError::Generate(rcgen::Error::X509(format!(
            "the new leaf does not parse: {e}"
        )))
    })?;
    Ok(Leaf {
        not_after: parsed.validity().not_after.to_datetime(),
        spki_b64: spki_sha256_b64(cert.der()).unwrap_or_default(),
        chain_der: vec![cert.der().clone(), ca_der],
        chain_pem,
        key_der: Zeroizing::new(key.serialize_der()),
        key_pem,
    })
}
