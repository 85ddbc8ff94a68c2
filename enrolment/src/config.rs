//! The command line and the validated configuration of `eid-enrolment serve`.
//!
//! Everything that can be wrong in the configuration is found here, before the service
//! listens: the origin must parse as an origin, every trust file must load and hold a
//! certificate, an empty `--card-trust` is refused (a validator without anchors would refuse
//! every card, which is a misconfiguration to report now, not a citizen's error later).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand};
use eid_protocols::pa::CscaStore;
use eid_protocols::webeid::{Origin, TokenValidator};
use time::OffsetDateTime;

/// Largest trust file read (a full ICAO master list is a few MB).
const MAX_TRUST_FILE: u64 = 32 << 20;

/// Reference enrolment service: binds a Citizen Card or a passport to a mobile key.
#[derive(Debug, Parser)]
#[command(name = "eid-enrolment", version)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Runs the HTTPS service.
    Serve(Box<ServeArgs>),
    /// Manages desk operators.
    #[command(subcommand)]
    Operator(OperatorCommand),
    /// Lists the enrolled mobile keys.
    #[command(subcommand)]
    Bindings(BindingsCommand),
    /// Prints the development outbox (one-time codes "sent").
    Outbox(OutboxArgs),
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address and port to listen on (port 0: any free port, see --port-file).
    #[arg(long, default_value = "127.0.0.1:8443")]
    pub listen: SocketAddr,
    /// The exact origin tokens must be bound to (what browsers send as Origin).
    /// Default: https://localhost:<the port listened on>.
    #[arg(long)]
    pub origin: Option<String>,
    #[command(flatten)]
    pub db: DbArgs,
    /// Trust anchors of the Citizen Card authentication chain (PEM or DER; roots or sub-CAs).
    /// Repeatable; at least one.
    #[arg(long = "card-trust", value_name = "FILE")]
    pub card_trust: Vec<PathBuf>,
    /// CSCA certificates, CRLs or master lists for the desk's eMRTD checks: a file or a folder.
    /// Repeatable.
    #[arg(long = "csca", value_name = "FILE|DIR")]
    pub csca: Vec<PathBuf>,
    /// The eID agent's bridge URL (the pages call it; it is added to connect-src).
    #[arg(long, default_value = "https://127.0.0.1:24180")]
    pub bridge_url: String,
    /// TLS certificate chain (PEM). Default: a self-signed P-256 certificate in <data-dir>/tls.
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Development outbox: one-time codes are written to this file (JSON lines) and shown at
    /// /dev/outbox instead of being sent.
    #[arg(long, value_name = "FILE")]
    pub outbox: Option<PathBuf>,
    /// SMTP server for e-mail codes: smtp[s]://user:pass@host:port.
    #[arg(long, requires = "smtp_from")]
    pub smtp: Option<String>,
    /// From address of the e-mails.
    #[arg(long, value_name = "ADDR")]
    pub smtp_from: Option<String>,
    /// SMS gateway URL (HTTPS; POST {"to","text"} with a bearer token).
    #[arg(long, requires = "sms_token_file")]
    pub sms_gateway: Option<String>,
    /// File holding the SMS gateway's bearer token.
    #[arg(long, value_name = "FILE")]
    pub sms_token_file: Option<PathBuf>,
    /// Lifetime of a challenge nonce.
    #[arg(long, default_value_t = 300)]
    pub nonce_ttl_secs: u32,
    /// Lifetime of a one-time code.
    #[arg(long, default_value_t = 300)]
    pub code_ttl_secs: u32,
    /// Wrong PINs or codes at login before the mobile key is suspended.
    #[arg(long, default_value_t = 5)]
    pub max_failures: u32,
    /// Lifetime of a session.
    #[arg(long, default_value_t = 1800)]
    pub session_ttl_secs: u32,
    /// Writes the port listened on to this file once listening.
    #[arg(long, value_name = "FILE")]
    pub port_file: Option<PathBuf>,
    /// Cheap PIN hashing parameters. For tests only: never in production.
    #[arg(long)]
    pub fast_pin_hash: bool,
}

/// Where the database is: `--database URL`, or `sqlite:<data-dir>/enrolment.sqlite`.
#[derive(Debug, Args, Clone)]
pub struct DbArgs {
    /// Data folder (database, TLS certificate, code key). Default ~/.local/share/eid-enrolment.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Database URL: sqlite:PATH or postgres://... Default sqlite:<data-dir>/enrolment.sqlite.
    #[arg(long, value_name = "URL")]
    pub database: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum OperatorCommand {
    /// Adds a desk operator (or sets a new password); the password is read from stdin or asked.
    Add {
        name: String,
        /// Reads the password from the first line of stdin.
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        db: DbArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum BindingsCommand {
    /// Lists every binding (no PIN hashes).
    List {
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: DbArgs,
    },
}

#[derive(Debug, Args)]
pub struct OutboxArgs {
    /// The outbox file (as given to serve --outbox). Default <data-dir>/outbox.jsonl.
    #[arg(long)]
    pub file: Option<PathBuf>,
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

/// A configuration error: says which option is wrong and why.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

fn err(text: impl Into<String>) -> ConfigError {
    ConfigError(text.into())
}

impl DbArgs {
    /// The data folder (created if missing, 0700 on Unix).
    pub fn data_dir(&self) -> Result<PathBuf, ConfigError> {
        let dir = match &self.data_dir {
            Some(d) => d.clone(),
            None => default_data_dir()?,
        };
        create_private_dir(&dir)?;
        Ok(dir)
    }

    /// The database URL.
    pub fn database_url(&self) -> Result<String, ConfigError> {
        match &self.database {
            Some(url) => Ok(url.clone()),
            None => {
                let dir = self.data_dir()?;
                Ok(format!("sqlite:{}", dir.join("enrolment.sqlite").display()))
            }
        }
    }
}

/// `$XDG_DATA_HOME/eid-enrolment` or `~/.local/share/eid-enrolment`.
pub fn default_data_dir() -> Result<PathBuf, ConfigError> {
    if let Some(xdg) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(xdg).join("eid-enrolment"));
    }
    let home = std::env::var_os("HOME")
        .filter(|v| !v.is_empty())
        .ok_or_else(|| err("HOME is not set: give --data-dir"))?;
    Ok(PathBuf::from(home).join(".local/share/eid-enrolment"))
}

/// Creates `dir` (and parents); the folder itself is private (0700) on Unix.
pub fn create_private_dir(dir: &Path) -> Result<(), ConfigError> {
    std::fs::create_dir_all(dir)
        .map_err(|e| err(format!("cannot create {}: {e}", dir.display())))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    }
    Ok(())
}

fn read_limited(option: &str, path: &Path) -> Result<Vec<u8>, ConfigError> {
    let cannot = |e: std::io::Error| err(format!("{option} {}: cannot read: {e}", path.display()));
    let meta = std::fs::metadata(path).map_err(cannot)?;
    if meta.len() > MAX_TRUST_FILE {
        return Err(err(format!(
            "{option} {} is too large for a trust file",
            path.display()
        )));
    }
    std::fs::read(path).map_err(cannot)
}

/// The Citizen Card token validator: `origin` and every `--card-trust` file's certificates.
pub fn token_validator(origin: &Origin, files: &[PathBuf]) -> Result<TokenValidator, ConfigError> {
    if files.is_empty() {
        return Err(err(
            "--card-trust is required: give the Citizen Card authentication root and sub-CA \
             certificates (PEM or DER) the service trusts",
        ));
    }
    let mut validator =
        TokenValidator::new(origin.as_str()).map_err(|e| err(format!("--origin {origin}: {e}")))?;
    for path in files {
        let bytes = read_limited("--card-trust", path)?;
        let n = validator
            .add_trust_anchors(&bytes)
            .map_err(|e| err(format!("--card-trust {}: {e}", path.display())))?;
        tracing::info!(path = %path.display(), certificates = n, "Citizen Card trust anchors");
    }
    Ok(validator)
}

/// The CSCA store for the desk: each `--csca` is a file (certificate, CRL or master list) or a
/// folder of them, read by `eid_card::emrtd::trust::add_path` (the agent's own loader): a file
/// that is none of these is an error; in a folder it is skipped with a warning. `None` when no `--csca` is given (the desk then
/// refuses every document with `validator-config`).
pub fn csca_store(paths: &[PathBuf]) -> Result<Option<CscaStore>, ConfigError> {
    if paths.is_empty() {
        return Ok(None);
    }
    let now = OffsetDateTime::now_utc();
    let mut store = CscaStore::new();
    for path in paths {
        eid_card::emrtd::trust::add_path(&mut store, path, now)
            .map_err(|e| err(format!("--csca: {e}")))?;
    }
    if store.is_empty() {
        return Err(err("--csca: no CSCA certificate found in the given files"));
    }
    Ok(Some(store))
}

/// Parses `--origin`, or derives `https://localhost:<port>` from the bound port.
pub fn origin(given: Option<&str>, port: u16) -> Result<Origin, ConfigError> {
    let text = match given {
        Some(o) => o.to_owned(),
        None => format!("https://localhost:{port}"),
    };
    Origin::parse(&text).map_err(|e| err(format!("--origin {text:?}: {e}")))
}

/// The origin of the bridge URL (scheme://host:port), for the CSP's connect-src.
pub fn bridge_origin(url: &str) -> Result<String, ConfigError> {
    let trimmed = url.trim_end_matches('/');
    Origin::parse(trimmed)
        .map(|o| o.as_str().to_owned())
        .map_err(|e| {
            err(format!(
                "--bridge-url {url:?} is not an origin (https://host:port): {e}"
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_default_follows_the_port() {
        assert_eq!(
            origin(None, 8443).unwrap().as_str(),
            "https://localhost:8443"
        );
        assert_eq!(
            origin(Some("https://Enrol.Example/"), 1).unwrap().as_str(),
            "https://enrol.example"
        );
        assert!(origin(Some("http://enrol.example"), 1).is_err());
        assert!(origin(Some("https://enrol.example/path"), 1).is_err());
    }

    #[test]
    fn empty_card_trust_is_refused() {
        let o = origin(None, 8443).unwrap();
        let e = token_validator(&o, &[]).unwrap_err();
        assert!(e.to_string().contains("--card-trust"));
        let e = token_validator(&o, &[PathBuf::from("/nonexistent/root.pem")]).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/root.pem"));
    }

    #[test]
    fn bridge_origin_is_checked() {
        assert_eq!(
            bridge_origin("https://127.0.0.1:24180/").unwrap(),
            "https://127.0.0.1:24180"
        );
        assert!(bridge_origin("https://127.0.0.1:24180/v1").is_err());
        assert!(bridge_origin("ftp://x").is_err());
    }
}
