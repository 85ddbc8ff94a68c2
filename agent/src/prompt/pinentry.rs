//! [`Prompt`] through a pinentry program, one program run per question.

use std::ffi::{OsStr, OsString};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use zeroize::Zeroizing;

use super::assuan::{self, AssuanError, MAX_LINE, Response, ServerError, code};
use super::{CanRequest, Cancel, Consent, ConsentRequest, PinRequest, Prompt, PromptError, Wake};

/// The environment variable naming the pinentry program (a path, or a name looked up in `PATH`).
pub const PROGRAM_VAR: &str = "EID_AGENT_PINENTRY";

/// Programs tried in `PATH`, in order, when [`PROGRAM_VAR`] is not set.
pub const CANDIDATES: &[&str] = &[
    "pinentry-gnome3",
    "pinentry-qt",
    "pinentry-gtk-2",
    "pinentry-gtk2",
    "pinentry-mac",
    "pinentry",
];

/// Variables passed to the program from the agent's environment; nothing else is.
/// Display and session (X11, Wayland, D-Bus), the terminal for pinentry-curses, the locale,
/// and the settings GUI toolkits and wrapper scripts need. Also every `EID_PINENTRY_*` variable,
/// meant for the pinentry program itself, and `PINENTRY_USER_DATA` (GnuPG's way to pass data to
/// a pinentry).
pub const PASSED_ENV: &[&str] = &[
    "DISPLAY",
    "WAYLAND_DISPLAY",
    "XAUTHORITY",
    "XDG_RUNTIME_DIR",
    "XDG_SESSION_TYPE",
    "XDG_CURRENT_DESKTOP",
    "DBUS_SESSION_BUS_ADDRESS",
    "GPG_TTY",
    "TERM",
    "HOME",
    "PATH",
    "LANG",
    "LANGUAGE",
    "LC_ALL",
    "LC_CTYPE",
    "LC_MESSAGES",
    "PINENTRY_USER_DATA",
    // Windows programs need these to start at all.
    "SystemRoot",
    "SYSTEMROOT",
    "windir",
    "USERPROFILE",
    "APPDATA",
    "LOCALAPPDATA",
    "TEMP",
    "TMP",
];

/// The prefix of variables passed through for the pinentry program's own settings.
pub const PASSED_ENV_PREFIX: &str = "EID_PINENTRY_";

/// How long the program may take after the user's time is up (or after `BYE`) before it is
/// killed: the pinentry's own timeout closes its window cleanly first.
const GRACE: Duration = Duration::from_secs(1);

/// The most lines (status, comments) accepted in one answer.
const MAX_LINES_PER_ANSWER: usize = 64;

/// A pinentry program, run once per question.
///
/// The program gets pipes on stdin and stdout, `/dev/null` on stderr, and only the environment
/// in [`PASSED_ENV`] plus `extra_env`. A watcher thread kills it when the [`Cancel`] fires or
/// when `timeout` (plus a second of grace) has passed, and it is always waited for.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Pinentry {
    pub program: PathBuf,
    /// How long the user has to answer (sent as `SETTIMEOUT`, whole seconds, at least one).
    pub timeout: Duration,
    /// Arguments for the program (e.g. `--no-global-grab`).
    pub extra_args: Vec<String>,
    /// Variables set for the program, besides those passed from the agent's environment.
    pub extra_env: Vec<(OsString, OsString)>,
}

impl Pinentry {
    /// How long the user has to answer unless configured otherwise.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

    /// `program` with the default timeout and nothing extra.
    pub fn new(program: impl Into<PathBuf>) -> Pinentry {
        Pinentry {
            program: program.into(),
            timeout: Pinentry::DEFAULT_TIMEOUT,
            extra_args: Vec::new(),
            extra_env: Vec::new(),
        }
    }

    /// The program named by `EID_AGENT_PINENTRY`, else the first of [`CANDIDATES`] in `PATH`
    /// (and where Homebrew and Gpg4win install theirs).
    pub fn discover() -> Result<Pinentry, PromptError> {
        Pinentry::discover_in(
            std::env::var_os(PROGRAM_VAR).as_deref(),
            std::env::var_os("PATH").as_deref(),
        )
    }

    /// [`Pinentry::discover`] with the two variables given.
    pub fn discover_in(
        configured: Option<&OsStr>,
        path: Option<&OsStr>,
    ) -> Result<Pinentry, PromptError> {
        let mut dirs: Vec<PathBuf> = path
            .map(|p| std::env::split_paths(p).collect())
            .unwrap_or_default();
        dirs.extend(extra_dirs());
        if let Some(configured) = configured.filter(|c| !c.is_empty()) {
            let as_path = Path::new(configured);
            if as_path.components().count() > 1 {
                if is_executable(as_path) {
                    return Ok(Pinentry::new(as_path));
                }
                return Err(PromptError::Unavailable(format!(
                    "{PROGRAM_VAR}={} is not an executable file",
                    as_path.display()
                )));
            }
            return find_in(&dirs, configured)
                .map(Pinentry::new)
                .ok_or_else(|| {
                    PromptError::Unavailable(format!(
                        "{PROGRAM_VAR}={}: no such program in PATH",
                        as_path.display()
                    ))
                });
        }
        CANDIDATES
            .iter()
            .find_map(|name| find_in(&dirs, OsStr::new(name)))
            .map(Pinentry::new)
            .ok_or_else(|| {
                PromptError::Unavailable(format!(
                    "no pinentry program found (looked for {}); install one (on Debian and \
                     Ubuntu: apt install pinentry-gnome3, or pinentry-qt on KDE; on macOS: brew \
                     install pinentry-mac; on Windows: Gpg4win) or name it in {PROGRAM_VAR}",
                    CANDIDATES.join(", ")
                ))
            })
    }

    fn ask_secret(
        &self,
        texts: &Texts<'_>,
        cancel: &Cancel,
    ) -> Result<Zeroizing<String>, PromptError> {
        let mut session = Session::start(self, cancel)?;
        session.setup(self, texts)?;
        let mut secret = assuan::secret_buffer();
        match session.transact("GETPIN", Some(&mut secret))? {
            Ok(()) => {}
            Err(e) => return Err(session.refusal(e)),
        }
        session.finish();
        let bytes = std::mem::take(&mut *secret);
        match String::from_utf8(bytes) {
            Ok(s) => Ok(Zeroizing::new(s)),
            Err(e) => {
                drop(Zeroizing::new(e.into_bytes()));
                Err(PromptError::Unavailable(
                    "the pinentry program answered with bytes that are not UTF-8".into(),
                ))
            }
        }
    }
}

impl Prompt for Pinentry {
    /// Two questions, each with two buttons: "Allow" / "Deny", then, only when allowed,
    /// "Always allow this site" / "Only this time". Only an explicit OK on the second question
    /// remembers the site: any other answer (Cancel, closing the window, a "No" that a
    /// frontend reports as not-confirmed, a timeout) falls back to the safe side. A third
    /// button (SETNOTOK) is not used: pinentry accepts SETNOTOK whether or not its frontend
    /// shows it, and some frontends answer "not confirmed" for a plain No.
    fn consent(&self, req: &ConsentRequest<'_>, cancel: &Cancel) -> Result<Consent, PromptError> {
        let mut desc = intro(req.origin, req.operation, req.holder);
        desc.push_str("\n\nAllow this site to use your card?");
        let texts = Texts {
            desc,
            prompt: None,
            error: None,
            buttons: Some(("Allow", "Deny")),
        };
        let mut session = Session::start(self, cancel)?;
        session.setup(self, &texts)?;
        match session.transact("CONFIRM", None)? {
            Ok(()) => {}
            Err(e) if is_no(&e) => {
                session.finish();
                return Ok(Consent::Deny);
            }
            Err(e) => return Err(session.refusal(e)),
        }
        let remember = format!(
            "Always allow {} to use your card, without asking again?\n\nPINs are still asked \
             each time. You can revoke this with: eid-agent sites revoke {}",
            one_line(req.origin),
            one_line(req.origin)
        );
        session.require("SETDESC", &remember)?;
        session.require("SETOK", "Always allow this site")?;
        session.require("SETCANCEL", "Only this time")?;
        let consent = match session.transact("CONFIRM", None)? {
            Ok(()) => Consent::Always,
            Err(e) if is_no(&e) => Consent::Once,
            // The site was allowed; a failure of the second question does not take that back.
            Err(_) => Consent::Once,
        };
        session.finish();
        Ok(consent)
    }

    fn pin(&self, req: &PinRequest<'_>, cancel: &Cancel) -> Result<Zeroizing<String>, PromptError> {
        let mut desc = intro(req.origin, req.operation, req.holder);
        desc.push_str(&format!("\n\nEnter your {}.", one_line(req.pin_name)));
        match req.retries_left {
            Some(1) => desc.push_str(" This is the last attempt: a wrong PIN blocks it."),
            Some(n) => desc.push_str(&format!(" {n} attempts left.")),
            None => {}
        }
        let texts = Texts {
            desc,
            prompt: Some("PIN:"),
            error: req.error,
            buttons: None,
        };
        self.ask_secret(&texts, cancel)
    }

    fn can(&self, req: &CanRequest<'_>, cancel: &Cancel) -> Result<Zeroizing<String>, PromptError> {
        let mut desc = intro(req.origin, req.operation, None);
        desc.push_str(
            "\n\nEnter the card access number (CAN): the 6 digits printed on the front of the \
             document.",
        );
        let texts = Texts {
            desc,
            prompt: Some("CAN:"),
            error: req.error,
            buttons: None,
        };
        self.ask_secret(&texts, cancel)
    }
}

/// "<origin> asks to <operation>." and the card holder: each on a line of its own, whatever
/// they contain (an origin cannot add lines that look like the agent's).
fn intro(origin: &str, operation: &str, holder: Option<&str>) -> String {
    let mut text = format!("{} asks to {}.", one_line(origin), one_line(operation));
    if let Some(holder) = holder {
        text.push_str(&format!("\n\nCard holder: {}", one_line(holder)));
    }
    text
}

/// `text` with every control character (line breaks, tabs, escapes) replaced by a space.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// What the dialog shows.
struct Texts<'a> {
    desc: String,
    prompt: Option<&'a str>,
    error: Option<&'a str>,
    /// The OK and Cancel labels of a question (CONFIRM) rather than PIN entry.
    buttons: Option<(&'a str, &'a str)>,
}

/// What the reader and watcher threads tell the conversation.
enum Event {
    Line(Zeroizing<Vec<u8>>),
    Eof,
    ReadFailed(String),
    Killed(Wake),
}

/// One run of the program.
struct Session {
    child: Arc<Mutex<Child>>,
    stdin: Option<ChildStdin>,
    events: Receiver<Event>,
    stop_watcher: Arc<AtomicBool>,
    watcher: Option<JoinHandle<()>>,
    /// Why the watcher killed the program, once it has.
    killed: Arc<OnceLock<Wake>>,
    cancel: Cancel,
    /// The program is in a state to be told BYE and given time to exit.
    graceful: bool,
}

impl Session {
    fn start(pinentry: &Pinentry, cancel: &Cancel) -> Result<Session, PromptError> {
        if cancel.is_cancelled() {
            return Err(PromptError::Aborted);
        }
        let started = Instant::now();
        let mut command = Command::new(&pinentry.program);
        command
            .args(&pinentry.extra_args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .env_clear();
        for (key, value) in std::env::vars_os() {
            let passed = key
                .to_str()
                .is_some_and(|k| PASSED_ENV.contains(&k) || k.starts_with(PASSED_ENV_PREFIX));
            if passed {
                command.env(key, value);
            }
        }
        command.envs(pinentry.extra_env.iter().map(|(k, v)| (k, v)));
        // Keep no directory of ours busy.
        #[cfg(unix)]
        command.current_dir("/");
        let mut child = command.spawn().map_err(|e| {
            PromptError::Unavailable(format!(
                "cannot start the pinentry program {}: {e}",
                pinentry.program.display()
            ))
        })?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take();
        let child = Arc::new(Mutex::new(child));
        let (tx, events) = sync_channel(8);

        if let Some(stdout) = stdout {
            let tx = tx.clone();
            let spawned = std::thread::Builder::new()
                .name("pinentry-reader".into())
                .spawn(move || read_lines(stdout, &tx));
            if let Err(e) = spawned {
                kill_and_reap(&child);
                return Err(PromptError::Unavailable(format!(
                    "cannot start a thread: {e}"
                )));
            }
        }

        let stop_watcher = Arc::new(AtomicBool::new(false));
        let killed = Arc::new(OnceLock::new());
        let deadline = started
            .checked_add(pinentry.timeout)
            .and_then(|d| d.checked_add(GRACE));
        let watcher = {
            let (cancel, child) = (cancel.clone(), child.clone());
            let (stop, killed) = (stop_watcher.clone(), killed.clone());
            std::thread::Builder::new()
                .name("pinentry-watcher".into())
                .spawn(move || {
                    let wake = cancel.wait_until(deadline, &stop);
                    if wake != Wake::Stopped {
                        let _ = killed.set(wake);
                        kill(&child);
                        // Wakes the conversation if it waits for a line. When the channel is
                        // full it does not wait: it reads `killed` before every line.
                        let _ = tx.try_send(Event::Killed(wake));
                    }
                })
        };
        let watcher = match watcher {
            Ok(w) => w,
            Err(e) => {
                kill_and_reap(&child);
                return Err(PromptError::Unavailable(format!(
                    "cannot start a thread: {e}"
                )));
            }
        };
        let mut session = Session {
            child,
            stdin,
            events,
            stop_watcher,
            watcher: Some(watcher),
            killed,
            cancel: cancel.clone(),
            graceful: false,
        };
        // The greeting.
        match session.answer(None)? {
            Ok(()) => Ok(session),
            Err(e) => Err(PromptError::Unavailable(format!(
                "the pinentry program refused to start: {e}"
            ))),
        }
    }

    /// Sends the options and texts.
    fn setup(&mut self, pinentry: &Pinentry, texts: &Texts<'_>) -> Result<(), PromptError> {
        // Where pinentry-curses draws, and in which character set. Optional everywhere.
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let options = [
            ("ttyname", var("GPG_TTY")),
            ("ttytype", var("TERM")),
            (
                "lc-ctype",
                var("LC_ALL")
                    .or_else(|| var("LC_CTYPE"))
                    .or_else(|| var("LANG")),
            ),
        ];
        for (option, value) in options {
            if let Some(value) = value {
                let line = assuan::command("OPTION", &format!("{option}={value}"));
                let _ = self.transact(&line, None)?;
            }
        }
        let timeout = pinentry.timeout;
        let seconds = (timeout.as_secs() + u64::from(timeout.subsec_nanos() > 0)).max(1);
        let _ = self.transact(&format!("SETTIMEOUT {seconds}"), None)?;
        let _ = self.transact(&assuan::command("SETTITLE", "eID agent"), None)?;
        self.require("SETDESC", &texts.desc)?;
        if let Some(prompt) = texts.prompt {
            self.require("SETPROMPT", prompt)?;
        }
        if let Some(error) = texts.error {
            self.require("SETERROR", &one_line(error))?;
        }
        if let Some((ok, cancel)) = texts.buttons {
            self.require("SETOK", ok)?;
            self.require("SETCANCEL", cancel)?;
        }
        Ok(())
    }

    /// A command that must succeed: the user has to see this text.
    fn require(&mut self, verb: &str, arg: &str) -> Result<(), PromptError> {
        match self.transact(&assuan::command(verb, arg), None)? {
            Ok(()) => Ok(()),
            Err(e) => Err(PromptError::Unavailable(format!(
                "the pinentry program refused {verb}: {e}"
            ))),
        }
    }

    /// Sends one command and reads its answer. The outer error is a failure of the program or
    /// of the conversation; the inner one is the program's `ERR` answer.
    fn transact(
        &mut self,
        line: &str,
        data: Option<&mut Zeroizing<Vec<u8>>>,
    ) -> Result<Result<(), ServerError>, PromptError> {
        self.send(line)?;
        self.answer(data)
    }

    fn send(&mut self, line: &str) -> Result<(), PromptError> {
        let Some(stdin) = self.stdin.as_mut() else {
            return Err(PromptError::Unavailable(
                "the pinentry program's input is closed".into(),
            ));
        };
        let written = stdin
            .write_all(line.as_bytes())
            .and_then(|()| stdin.write_all(b"\n"))
            .and_then(|()| stdin.flush());
        match written {
            Ok(()) => Ok(()),
            // The program is gone: the reason (killed by the watcher, exited) is in the events.
            Err(e) => Err(self.gone(format!("cannot write to the pinentry program: {e}"))),
        }
    }

    /// Reads lines up to the final `OK` or `ERR`. Data lines go to `data` (or are refused when
    /// none is expected).
    fn answer(
        &mut self,
        mut data: Option<&mut Zeroizing<Vec<u8>>>,
    ) -> Result<Result<(), ServerError>, PromptError> {
        self.graceful = false;
        for _ in 0..MAX_LINES_PER_ANSWER {
            let line = self.next_line()?;
            match assuan::parse_response(&line) {
                Ok(Response::Ok) => {
                    self.graceful = true;
                    return Ok(Ok(()));
                }
                Ok(Response::Err(e)) => {
                    self.graceful = true;
                    return Ok(Err(e));
                }
                Ok(Response::Data(bytes)) => match data.as_deref_mut() {
                    Some(out) => assuan::decode_data(bytes, out).map_err(protocol)?,
                    None => return Err(protocol(AssuanError::UnknownResponse)),
                },
                Ok(Response::Status | Response::Comment) => {}
                Ok(Response::Inquire) => self.send("CAN")?,
                Err(e) => return Err(protocol(e)),
            }
        }
        Err(PromptError::Unavailable(format!(
            "the pinentry program sent more than {MAX_LINES_PER_ANSWER} lines in one answer"
        )))
    }

    fn next_line(&mut self) -> Result<Zeroizing<Vec<u8>>, PromptError> {
        if let Some(&wake) = self.killed.get() {
            return Err(killed(wake));
        }
        match self.events.recv() {
            Ok(Event::Line(line)) => Ok(line),
            Ok(Event::Killed(wake)) => Err(killed(wake)),
            Ok(Event::Eof) => Err(self.gone("the pinentry program exited".into())),
            Ok(Event::ReadFailed(e)) => Err(self.gone(e)),
            Err(_) => Err(self.gone("the pinentry program exited".into())),
        }
    }

    /// The error for a program that stopped talking: the watcher's reason when it killed the
    /// program, else `what`.
    fn gone(&mut self, what: String) -> PromptError {
        self.graceful = false;
        if let Some(&wake) = self.killed.get() {
            return killed(wake);
        }
        if self.cancel.is_cancelled() {
            return PromptError::Aborted;
        }
        PromptError::Unavailable(what)
    }

    /// Maps an `ERR` answer to GETPIN or CONFIRM.
    fn refusal(&self, e: ServerError) -> PromptError {
        match e.code() {
            code::CANCELED | code::FULLY_CANCELED => PromptError::Cancelled,
            code::TIMEOUT => PromptError::Timeout,
            _ => PromptError::Unavailable(format!("the pinentry program failed: {e}")),
        }
    }

    /// Says goodbye (the normal end).
    fn finish(mut self) {
        if self.graceful {
            let _ = self.send("BYE");
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.stop_watcher.store(true, Ordering::SeqCst);
        self.cancel.wake_waiters();
        if let Some(watcher) = self.watcher.take() {
            let _ = watcher.join();
        }
        // EOF on its input ends any pinentry; give a well-behaved one a moment to go.
        drop(self.stdin.take());
        if self.graceful {
            let until = Instant::now() + GRACE;
            while Instant::now() < until {
                let exited = lock(&self.child)
                    .try_wait()
                    .map(|s| s.is_some())
                    .unwrap_or(true);
                if exited {
                    break;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        kill_and_reap(&self.child);
    }
}

fn killed(wake: Wake) -> PromptError {
    match wake {
        Wake::Deadline => PromptError::Timeout,
        Wake::Cancelled | Wake::Stopped => PromptError::Aborted,
    }
}

fn protocol(e: AssuanError) -> PromptError {
    PromptError::Unavailable(format!(
        "the pinentry program broke the Assuan protocol: {e}"
    ))
}

fn lock(child: &Mutex<Child>) -> std::sync::MutexGuard<'_, Child> {
    child.lock().unwrap_or_else(PoisonError::into_inner)
}

fn kill(child: &Mutex<Child>) {
    let mut child = lock(child);
    if matches!(child.try_wait(), Ok(None)) {
        let _ = child.kill();
    }
}

fn kill_and_reap(child: &Mutex<Child>) {
    let mut child = lock(child);
    if matches!(child.try_wait(), Ok(None)) {
        let _ = child.kill();
    }
    let _ = child.wait();
}

/// The reader thread: lines from the program until EOF, an error, or nobody listening.
fn read_lines(stdout: impl Read, events: &SyncSender<Event>) {
    let mut lines = LineReader::new(stdout);
    loop {
        let event = match lines.next_line() {
            Ok(Some(line)) => Event::Line(line),
            Ok(None) => Event::Eof,
            Err(e) => Event::ReadFailed(e),
        };
        let last = !matches!(event, Event::Line(_));
        if events.send(event).is_err() || last {
            return;
        }
    }
}

/// Splits a byte stream into lines of at most [`MAX_LINE`] bytes, in a fixed buffer that is
/// wiped when dropped (the PIN passes through it).
struct LineReader<R> {
    inner: R,
    buf: Zeroizing<Vec<u8>>,
    start: usize,
    end: usize,
}

impl<R: Read> LineReader<R> {
    fn new(inner: R) -> Self {
        LineReader {
            inner,
            buf: Zeroizing::new(vec![0; MAX_LINE + 1]),
            start: 0,
            end: 0,
        }
    }

    /// The next line without its LF; `None` at the end of the stream.
    fn next_line(&mut self) -> Result<Option<Zeroizing<Vec<u8>>>, String> {
        loop {
            let pending = self.buf.get(self.start..self.end).unwrap_or_default();
            if let Some(n) = pending.iter().position(|&b| b == b'\n') {
                let line = Zeroizing::new(pending.get(..n).unwrap_or_default().to_vec());
                self.start += n + 1;
                return Ok(Some(line));
            }
            if pending.len() > MAX_LINE {
                return Err(format!(
                    "the pinentry program sent a line longer than {MAX_LINE} bytes"
                ));
            }
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            let Some(free) = self.buf.get_mut(self.end..).filter(|f| !f.is_empty()) else {
                return Err(format!(
                    "the pinentry program sent a line longer than {MAX_LINE} bytes"
                ));
            };
            match self.inner.read(free) {
                Ok(0) if self.end > 0 => {
                    return Err("the pinentry program ended in the middle of a line".into());
                }
                Ok(0) => return Ok(None),
                Ok(n) => self.end += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("cannot read from the pinentry program: {e}")),
            }
        }
    }
}

fn find_in(dirs: &[PathBuf], name: &OsStr) -> Option<PathBuf> {
    dirs.iter().find_map(|dir| {
        let candidate = dir.join(name);
        if is_executable(&candidate) {
            return Some(candidate);
        }
        if cfg!(windows) {
            let mut exe = candidate.into_os_string();
            exe.push(".exe");
            let exe = PathBuf::from(exe);
            return is_executable(&exe).then_some(exe);
        }
        None
    })
}

#[cfg(unix)]
fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file())
}

/// Where pinentry programs live outside the usual `PATH` of a desktop session's services.
fn extra_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if cfg!(target_os = "macos") {
        dirs.push(PathBuf::from("/opt/homebrew/bin"));
        dirs.push(PathBuf::from("/usr/local/bin"));
        dirs.push(PathBuf::from(
            "/usr/local/MacGPG2/libexec/pinentry-mac.app/Contents/MacOS",
        ));
    }
    if cfg!(windows) {
        for var in ["ProgramFiles(x86)", "ProgramFiles"] {
            if let Some(base) = std::env::var_os(var) {
                dirs.push(PathBuf::from(&base).join("Gpg4win").join("bin"));
                dirs.push(PathBuf::from(base).join("GnuPG").join("bin"));
            }
        }
    }
    dirs
}

/// The user said no (Cancel, the window closed, or a No reported as "not confirmed").
fn is_no(e: &assuan::ServerError) -> bool {
    matches!(
        e.code(),
        code::NOT_CONFIRMED | code::CANCELED | code::FULLY_CANCELED
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hands out its bytes a few at a time.
    struct Trickle<'a>(&'a [u8], usize);
    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.0.len().min(buf.len()).min(self.1);
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn lines() {
        for chunk in [1, 3, 1000] {
            let mut r = LineReader::new(Trickle(b"OK hi\nD 1%252\n\nOK\n", chunk));
            assert_eq!(&r.next_line().unwrap().unwrap()[..], b"OK hi");
            assert_eq!(&r.next_line().unwrap().unwrap()[..], b"D 1%252");
            assert_eq!(&r.next_line().unwrap().unwrap()[..], b"");
            assert_eq!(&r.next_line().unwrap().unwrap()[..], b"OK");
            assert!(r.next_line().unwrap().is_none());
        }
        let mut r = LineReader::new(Trickle(b"OK", 10));
        assert!(r.next_line().is_err());
    }

    #[test]
    fn line_limit() {
        let mut long = vec![b'a'; MAX_LINE];
        long.push(b'\n');
        long.extend_from_slice(b"OK\n");
        let mut r = LineReader::new(Trickle(&long, 7));
        assert_eq!(r.next_line().unwrap().unwrap().len(), MAX_LINE);
        assert_eq!(&r.next_line().unwrap().unwrap()[..], b"OK");

        let endless = vec![b'a'; 10 * MAX_LINE];
        let mut r = LineReader::new(Trickle(&endless, 4096));
        assert!(r.next_line().unwrap_err().contains("longer than"));
    }

    #[test]
    fn discovery() {
        let dir = std::env::temp_dir().join(format!("eid-discover-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let program = dir.join("pinentry-qt");
        std::fs::write(&program, "#!/bin/sh\n").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let path = dir.as_os_str();
        assert_eq!(
            Pinentry::discover_in(None, Some(path)).unwrap().program,
            program
        );
        assert_eq!(
            Pinentry::discover_in(Some(OsStr::new("pinentry-qt")), Some(path))
                .unwrap()
                .program,
            program
        );
        assert_eq!(
            Pinentry::discover_in(Some(program.as_os_str()), None)
                .unwrap()
                .program,
            program
        );
        let missing = Pinentry::discover_in(Some(OsStr::new("pinentry-nope")), Some(path));
        assert!(matches!(missing, Err(PromptError::Unavailable(_))));
        let none = Pinentry::discover_in(None, Some(OsStr::new("/nonexistent-eid")));
        if cfg!(target_os = "linux") {
            let Err(PromptError::Unavailable(message)) = none else {
                panic!()
            };
            assert!(message.contains("install"), "{message}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
