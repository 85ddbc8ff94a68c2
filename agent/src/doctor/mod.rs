//! `eid-agent doctor`: what stands between this machine and a working card in the browser.
//!
//! The two top complaints about card agents are "reader not detected" and "the browser does not
//! trust the localhost certificate"; both have several causes, each with its own fix. Doctor
//! looks at every link of the chain and names, for each broken one, the command that repairs it:
//!
//! | id | what |
//! |---|---|
//! | `pcscd` | the PC/SC service answers (a real `SCardEstablishContext`, not only its socket) |
//! | `readers` | the readers pcscd sees |
//! | `cards` | the card in each reader and what it is |
//! | `port` | the bridge's port is free, or held by this agent (asked over TLS, trusting our CA) |
//! | `leaf-certificate` | the localhost certificate: dates, chain to the CA, key |
//! | `ca-trust-nss` | our CA in each NSS database (Chromium, Firefox), one check per database |
//! | `ca-trust-system` | our CA in the system store (system installation only) |
//! | `lna-policy` | the Chromium/Chrome Local Network Access policy, against the admin policy |
//! | `config` | `agent.toml` and the administrator's policy load |
//! | `autostart` | a systemd user unit or an XDG autostart entry starts the agent |
//!
//! # Rules
//! - Doctor changes nothing: it reads files (the TLS directory read-only: never `tls::ensure`,
//!   which would renew the very certificate under examination), connects, and runs read-only
//!   commands (`certutil -L`).
//! - It never hangs: PC/SC and certutil run on worker threads abandoned after a timeout (a hung
//!   pcscd blocks inside libpcsclite where nothing can cancel it), sockets have timeouts.
//! - It never panics on hostile files: every file is parsed into a result, sizes are bounded.
//! - It prints no secret: the leaf's private key is read only to compare its public half with the
//!   certificate, and is zeroized after.
//!
//! [`collect`] returns the report (the tray's "Diagnostics…" uses it); [`main`] prints it, as text
//! (one line per check, its remedy indented below) or as one JSON document
//! `{"ok": bool, "checks": [{"id","status","summary","detail"?,"remedy"?}]}`, and exits 0 when no
//! check failed, 1 when one did, 2 when doctor itself could not run.

mod pcsc;
mod port;
mod setup;
mod tls;
mod trust;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::Duration;

use time::OffsetDateTime;

use crate::config::ConfigArgs;

/// Options of `eid-agent doctor`.
#[derive(clap::Args, Debug, Default)]
pub struct DoctorArgs {
    /// One JSON document on stdout: {"ok", "checks": [{"id", "status", "summary", "detail",
    /// "remedy"}]}.
    #[arg(long)]
    pub json: bool,
    /// The bridge's port to check (default: agent.toml's, else 24180).
    #[arg(long)]
    pub port: Option<u16>,
    /// The configuration directory (agent.toml, tls/). Default: $EID_AGENT_CONFIG_DIR, else
    /// ~/.config/eid-agent.
    #[arg(long, value_name = "DIR")]
    pub config_dir: Option<PathBuf>,
    /// The administrator's policy file. Default: $EID_AGENT_POLICY, else
    /// /etc/eid-agent/policy.toml.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// Prefix of every system path (/etc/eid-agent, browser policies, system store, global
    /// autostart), for tests.
    #[arg(long, value_name = "DIR", hide = true)]
    pub root: Option<PathBuf>,
    /// How long one external call (pcscd, certutil, the port) may take, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 10, hide = true)]
    pub timeout_secs: u64,
}

/// What [`collect`] looks at.
#[derive(Debug, Clone)]
pub struct DoctorOptions {
    /// Where the configuration is (as for `eid-agent run`).
    pub config: ConfigArgs,
    /// The user's home (NSS databases, autostart entries). `None`: no home, those checks are
    /// skipped.
    pub home: Option<PathBuf>,
    /// Prefix of the system paths (`/` normally).
    pub root: PathBuf,
    /// The bound of every external call.
    pub timeout: Duration,
    /// The time certificates are checked against.
    pub now: OffsetDateTime,
}

impl DoctorOptions {
    /// The options for this user and this machine, with `config` saying where the configuration
    /// is.
    pub fn new(config: ConfigArgs) -> DoctorOptions {
        DoctorOptions {
            config,
            home: std::env::var_os("HOME")
                .filter(|h| !h.is_empty())
                .map(PathBuf::from)
                .or_else(dirs::home_dir),
            root: PathBuf::from("/"),
            timeout: Duration::from_secs(10),
            now: OffsetDateTime::now_utc(),
        }
    }

    fn from_args(args: &DoctorArgs) -> DoctorOptions {
        let mut options = DoctorOptions::new(ConfigArgs {
            config_dir: args.config_dir.clone(),
            policy: args.policy.clone(),
            port: args.port,
            dev: false,
        });
        if let Some(root) = &args.root {
            options.root = root.clone();
        }
        options.timeout = Duration::from_secs(args.timeout_secs.clamp(1, 600));
        options
    }

    /// A system path under [`DoctorOptions::root`].
    fn system_path(&self, absolute: &str) -> PathBuf {
        self.root.join(absolute.trim_start_matches('/'))
    }
}

/// How one check came out.
#[derive(Clone, Copy, PartialEq, Eq, Debug, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Warning,
    Failed,
    Skipped,
}

impl Status {
    fn mark(self) -> &'static str {
        match self {
            Status::Ok => "[ ok ]",
            Status::Warning => "[warn]",
            Status::Failed => "[FAIL]",
            Status::Skipped => "[skip]",
        }
    }
}

/// One check.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Check {
    /// Stable identifier (`pcscd`, `readers`, `cards`, `port`, `leaf-certificate`,
    /// `ca-trust-nss`, `ca-trust-system`, `lna-policy`, `config`, `autostart`).
    pub id: &'static str,
    pub status: Status,
    /// One line.
    pub summary: String,
    /// More: which database, which file, the underlying error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// What to do (an exact command where there is one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remedy: Option<String>,
}

impl Check {
    fn new(id: &'static str, status: Status, summary: impl Into<String>) -> Check {
        Check {
            id,
            status,
            summary: summary.into(),
            detail: None,
            remedy: None,
        }
    }
    fn ok(id: &'static str, summary: impl Into<String>) -> Check {
        Check::new(id, Status::Ok, summary)
    }
    fn warning(id: &'static str, summary: impl Into<String>) -> Check {
        Check::new(id, Status::Warning, summary)
    }
    fn failed(id: &'static str, summary: impl Into<String>) -> Check {
        Check::new(id, Status::Failed, summary)
    }
    fn skipped(id: &'static str, summary: impl Into<String>) -> Check {
        Check::new(id, Status::Skipped, summary)
    }
    fn detail(mut self, detail: impl Into<String>) -> Check {
        self.detail = Some(detail.into());
        self
    }
    fn remedy(mut self, remedy: impl Into<String>) -> Check {
        self.remedy = Some(remedy.into());
        self
    }
}

/// Everything doctor found.
#[derive(Clone, Debug, serde::Serialize)]
pub struct DoctorReport {
    /// No check failed (warnings allowed).
    pub ok: bool,
    pub checks: Vec<Check>,
}

impl DoctorReport {
    fn new(checks: Vec<Check>) -> DoctorReport {
        DoctorReport {
            ok: !checks.iter().any(|c| c.status == Status::Failed),
            checks,
        }
    }

    /// The checks with this id.
    pub fn checks_with_id<'a>(&'a self, id: &'a str) -> impl Iterator<Item = &'a Check> + 'a {
        self.checks.iter().filter(move |c| c.id == id)
    }

    /// One line per check with its mark, the detail and the remedy indented below.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for check in &self.checks {
            let _ = writeln!(
                out,
                "{} {:<16} {}",
                check.status.mark(),
                check.id,
                one_line(&check.summary)
            );
            if let Some(detail) = &check.detail {
                let _ = writeln!(out, "       {:<16} {}", "", one_line(detail));
            }
            if let Some(remedy) = &check.remedy {
                let _ = writeln!(out, "       {:<16} fix: {}", "", one_line(remedy));
            }
        }
        let failed = self
            .checks
            .iter()
            .filter(|c| c.status == Status::Failed)
            .count();
        let warned = self
            .checks
            .iter()
            .filter(|c| c.status == Status::Warning)
            .count();
        let _ = match (failed, warned) {
            (0, 0) => writeln!(out, "Everything checked is fine."),
            (0, w) => writeln!(out, "No problem found; {w} warning(s)."),
            (f, w) => writeln!(out, "{f} problem(s) found, {w} warning(s)."),
        };
        out
    }
}

/// Runs every check.
pub fn collect(options: &DoctorOptions) -> DoctorReport {
    let mut checks = pcsc::checks(options.timeout);
    let setup = setup::Setup::load(options);
    checks.push(port::check(options, &setup));
    let material = tls::Material::find(options, &setup);
    checks.push(material.check(options.now));
    checks.extend(trust::checks(options, &material));
    checks.push(setup.lna_check(options));
    checks.push(setup.config_check());
    checks.push(setup::autostart_check(options));
    DoctorReport::new(checks)
}

/// `eid-agent doctor`.
pub fn main(args: DoctorArgs) -> ExitCode {
    let options = DoctorOptions::from_args(&args);
    let report = collect(&options);
    let printed = if args.json {
        serde_json::to_string_pretty(&report)
            .map_err(std::io::Error::other)
            .and_then(|text| print_out(&text))
    } else {
        print_out(report.to_text().trim_end())
    };
    match printed {
        Err(e) => {
            eprintln!("error: doctor could not print its report: {e}");
            ExitCode::from(2)
        }
        Ok(()) if report.ok => ExitCode::SUCCESS,
        Ok(()) => ExitCode::from(1),
    }
}

fn print_out(text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}")?;
    out.flush()
}

/// Control characters from files and devices (a reader name, a policy entry) must not reach the
/// terminal.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// Runs `work` on a thread of its own and waits at most `limit` for it. `None` on timeout (the
/// thread is abandoned: PC/SC and child processes cannot always be interrupted) or when no
/// thread could be started.
fn bounded<T: Send + 'static>(
    limit: Duration,
    work: impl FnOnce() -> T + Send + 'static,
) -> Option<T> {
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .name("eid-doctor".to_owned())
        .spawn(move || {
            let _ = tx.send(work());
        })
        .ok()?;
    rx.recv_timeout(limit).ok()
}

/// Reads a file of at most `limit` bytes. Files beyond it are refused (a hostile or broken file
/// must not make doctor read gigabytes).
fn read_bounded(path: &Path, limit: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    // Opening a FIFO would wait for a writer: only regular files are read.
    if !std::fs::metadata(path)?.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    let file = std::fs::File::open(path)?;
    let mut data = Vec::new();
    file.take(limit + 1).read_to_end(&mut data)?;
    if data.len() as u64 > limit {
        return Err(std::io::Error::other(format!(
            "larger than {limit} bytes, not read"
        )));
    }
    Ok(data)
}

/// `path` for a shell command line: quoted when it holds anything but plain characters.
fn shell_quote(path: &Path) -> String {
    let text = path.to_string_lossy();
    if !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+=:,@".contains(c))
    {
        text.into_owned()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}
