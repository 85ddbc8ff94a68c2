//! Where the agent's logs go.
//!
//! Logs go to stderr: `EID_LOG` filters them (default: warnings; `run` also logs each request and
//! card operation), `EID_LOG_FORMAT=json` makes them one JSON object per line. They never carry a
//! PIN, a CAN or an APDU's data (APDUs: header, length and status word only).
//!
//! `eid-agent run` also appends the same lines (without colours) to `agent.log` in the log folder,
//! [`log_dir`]: `$XDG_STATE_HOME/eid-agent/`, by default `~/.local/state/eid-agent/`. An agent
//! started at login by systemd or the XDG autostart has no terminal, so without this file the
//! user (and the support desk they call) would have nothing to look at; the tray's "Open log
//! folder" opens that folder. The folder is 0700 and the file 0600: the log names the sites that
//! used the card. The file is kept small: one older generation (`agent.log.1`) at most
//! [`ROTATE_AT`] bytes, rotated when `run` starts.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use tracing_subscriber::Layer;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// The log file's name in [`log_dir`].
pub const LOG_FILE: &str = "agent.log";

/// Size above which the log file is moved to `agent.log.1` when `run` starts.
pub const ROTATE_AT: u64 = 8 * 1024 * 1024;

/// The log folder: `$XDG_STATE_HOME/eid-agent` (when set to an absolute path, as the XDG base
/// directory specification requires), else `~/.local/state/eid-agent`. `None` without a home.
pub fn log_dir() -> Option<PathBuf> {
    let state = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| dirs::home_dir().map(|h| h.join(".local").join("state")))?;
    Some(state.join("eid-agent"))
}

/// Creates the log folder (0700) if missing.
pub fn ensure_log_dir(dir: &Path) -> std::io::Result<()> {
    if !dir.is_dir() {
        fs::create_dir_all(dir)?;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// Opens `<dir>/agent.log` for appending (0600), after moving a file larger than [`ROTATE_AT`]
/// to `agent.log.1`.
fn open_log_file(dir: &Path) -> std::io::Result<File> {
    ensure_log_dir(dir)?;
    let path = dir.join(LOG_FILE);
    if fs::metadata(&path).is_ok_and(|m| m.len() > ROTATE_AT) {
        fs::rename(&path, dir.join(format!("{LOG_FILE}.1")))?;
    }
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(&path)
}

type Boxed = Box<dyn Layer<tracing_subscriber::Registry> + Send + Sync>;

/// Installs the global subscriber. `long_running` is true for `eid-agent run`, which also writes
/// its log into [`log_dir`].
pub fn init(long_running: bool) {
    let default_filter = if long_running {
        "warn,eid_agent=info"
    } else {
        "warn"
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("EID_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    let json = std::env::var("EID_LOG_FORMAT").is_ok_and(|f| f == "json");
    let mut layers: Vec<Boxed> = Vec::new();
    let stderr = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    layers.push(if json {
        stderr.json().boxed()
    } else {
        stderr.boxed()
    });
    if long_running {
        // Told on stderr only: the subscriber is not installed yet.
        match log_dir().map(|dir| open_log_file(&dir).map_err(|e| (dir, e))) {
            Some(Ok(file)) => {
                let file = tracing_subscriber::fmt::layer()
                    .with_ansi(false)
                    .with_writer(Mutex::new(file));
                layers.push(if json {
                    file.json().boxed()
                } else {
                    file.boxed()
                });
            }
            Some(Err((dir, e))) => {
                let _ = writeln!(
                    std::io::stderr(),
                    "warning: cannot write the log into {}: {e}; logging to stderr only",
                    dir.display()
                );
            }
            None => {
                let _ = writeln!(
                    std::io::stderr(),
                    "warning: no home folder: logging to stderr only"
                );
            }
        }
    }
    tracing_subscriber::registry()
        .with(layers)
        .with(filter)
        .init();
}
