//! One-time-code delivery: the citizen's contact (phone number or e-mail address) and the
//! channels that carry a code to it.
//!
//! [`Contact::parse`] is the one place where a contact typed into a page becomes a value: it
//! refuses anything that is not plainly a phone number or an e-mail address (hostile input:
//! never panics, no control characters, no header injection into SMTP), and gives the
//! canonical form that is stored and looked up.
//!
//! Delivery sits behind [`CodeSender`]; the service ships three implementations:
//! - [`DevOutbox`]: development outbox (a JSON-lines file plus the last messages in memory for
//!   the `/dev/outbox` page). It writes codes in clear, so it is for demos and tests only;
//! - [`SmtpSender`]: e-mail through an SMTP submission server (lettre; implicit TLS for
//!   `smtps://`, STARTTLS required for `smtp://` except on loopback);
//! - [`HttpSmsGateway`]: SMS through an HTTPS gateway taking `{"to","text"}` JSON with a bearer
//!   token, the common shape of SMS APIs; adapt it (or write another [`CodeSender`]) for a
//!   particular provider.
//!
//! [`Router`] picks the channel from the contact's kind.

use std::collections::VecDeque;
use std::fmt;
use std::fs;
use std::future::Future;
use std::io::{BufRead as _, BufReader, Write as _};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use thiserror::Error;
use zeroize::Zeroizing;

/// Longest e-mail address accepted (RFC 5321 path limit minus the angle brackets).
pub const EMAIL_MAX_LEN: usize = 254;
/// Longest input [`Contact::parse`] looks at; anything longer is refused before any work.
const CONTACT_INPUT_MAX: usize = 512;
/// Messages the development outbox keeps in memory.
pub const OUTBOX_RECENT: usize = 50;

/// Why a contact is refused. The texts are for the citizen.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ContactError {
    /// Nothing typed.
    #[error("enter a mobile phone number or an e-mail address")]
    Empty,
    /// Too long to be either.
    #[error("this is too long for a phone number or an e-mail address")]
    TooLong,
    /// Looks like a phone number but is not a valid international one.
    #[error("this is not a valid phone number: use the international form, like +351 912 345 678")]
    Phone,
    /// Looks like an e-mail address but is not a valid one.
    #[error("this is not a valid e-mail address")]
    Email,
}

impl ContactError {
    /// The API error code (`contact-invalid` for every variant).
    pub fn code(&self) -> &'static str {
        "contact-invalid"
    }
}

/// A citizen's contact for one-time codes, in canonical form.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Contact {
    /// E.164: `+` then 8 to 15 digits, e.g. `+351912345678`.
    Phone(String),
    /// `local@domain` with the domain in lower case (the local part is kept as typed: RFC 5321
    /// lets servers treat it case-sensitively).
    Email(String),
}

impl fmt::Display for Contact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

impl Contact {
    /// Parses a contact typed by a citizen. Leading and trailing white space is ignored.
    ///
    /// - containing `@`: an e-mail address: exactly one `@`, a local part of 1 to 64 characters
    ///   from the RFC 5322 "atext" set plus non-leading, non-trailing, non-doubled dots, a
    ///   domain of at least two labels of letters, digits and inner hyphens (ASCII only:
    ///   internationalised domains must be typed in their `xn--` form), at most 254 in all;
    /// - otherwise a phone number: spaces, dashes, dots and parentheses are removed; `00` at the
    ///   start means `+`; then `+` and 8 to 15 digits (E.164). A 9-digit number starting with
    ///   9 (a Portuguese mobile number) gets `+351`.
    pub fn parse(text: &str) -> Result<Contact, ContactError> {
        if text.len() > CONTACT_INPUT_MAX {
            return Err(ContactError::TooLong);
        }
        let text = text.trim();
        if text.is_empty() {
            return Err(ContactError::Empty);
        }
        if text.contains('@') {
            parse_email(text).map(Contact::Email)
        } else {
            parse_phone(text).map(Contact::Phone)
        }
    }

    /// The canonical form (what is stored and looked up).
    pub fn as_str(&self) -> &str {
        match self {
            Self::Phone(s) | Self::Email(s) => s,
        }
    }

    /// `"phone"` or `"email"`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Phone(_) => "phone",
            Self::Email(_) => "email",
        }
    }

    /// The contact with most of it hidden, for pages and logs: `+351 *** *** 678`,
    /// `a***@example.org`.
    pub fn masked(&self) -> String {
        match self {
            Self::Phone(p) => mask_phone(p),
            Self::Email(e) => mask_email(e),
        }
    }
}

fn parse_phone(text: &str) -> Result<String, ContactError> {
    let mut digits = String::with_capacity(16);
    let mut plus = false;
    for (i, c) in text.chars().enumerate() {
        match c {
            '+' if i == 0 => plus = true,
            '0'..='9' => digits.push(c),
            ' ' | '-' | '.' | '(' | ')' => {}
            _ => return Err(ContactError::Phone),
        }
        if digits.len() > 17 {
            return Err(ContactError::Phone);
        }
    }
    if !plus {
        if let Some(rest) = digits.strip_prefix("00") {
            digits = rest.to_owned();
        } else if digits.len() == 9 && digits.starts_with('9') {
            digits.insert_str(0, "351");
        } else {
            return Err(ContactError::Phone);
        }
    }
    if !(8..=15).contains(&digits.len()) || digits.starts_with('0') {
        return Err(ContactError::Phone);
    }
    Ok(format!("+{digits}"))
}

fn is_atext(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+/=?^_`{|}~-".contains(c)
}

fn parse_email(text: &str) -> Result<String, ContactError> {
    if text.len() > EMAIL_MAX_LEN {
        return Err(ContactError::Email);
    }
    let mut parts = text.split('@');
    let (Some(local), Some(domain), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(ContactError::Email);
    };
    let local_ok = (1..=64).contains(&local.len())
        && local
            .split('.')
            .all(|atom| !atom.is_empty() && atom.chars().all(is_atext));
    if !local_ok {
        return Err(ContactError::Email);
    }
    let domain = domain.to_ascii_lowercase();
    let labels: Vec<&str> = domain.split('.').collect();
    let domain_ok = labels.len() >= 2
        && labels.iter().all(|label| {
            (1..=63).contains(&label.len())
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
        && labels
            .last()
            .is_some_and(|tld| tld.chars().any(|c| c.is_ascii_alphabetic()));
    if !domain_ok {
        return Err(ContactError::Email);
    }
    Ok(format!("{local}@{domain}"))
}

/// Length of the country calling code at the start of `digits` (ITU-T E.164 assignments:
/// 1 and 7 are one digit; zones 2 to 9 are two or three digits).
fn country_code_len(digits: &str) -> usize {
    let b = digits.as_bytes();
    match (b.first(), b.get(1)) {
        (Some(b'1' | b'7'), _) => 1,
        (Some(b'2'), Some(b'0' | b'7')) => 2,
        (Some(b'2'), _) => 3,
        (Some(b'3'), Some(b'5' | b'7' | b'8')) => 3,
        (Some(b'4'), Some(b'2')) => 3,
        (Some(b'5'), Some(b'0' | b'9')) => 3,
        (Some(b'6'), Some(b'7'..=b'9')) => 3,
        (Some(b'8'), Some(b'0' | b'5' | b'7' | b'8')) => 3,
        (Some(b'9'), Some(b'6' | b'7' | b'9')) => 3,
        _ => 2,
    }
}

fn mask_phone(phone: &str) -> String {
    let digits = phone.trim_start_matches('+');
    let cc = country_code_len(digits).min(digits.len());
    let (country, national) = digits.split_at(cc);
    let shown = national.len().min(3);
    let hidden = national.len() - shown;
    let tail = national.get(hidden..).unwrap_or_default();
    let mut out = format!("+{country}");
    let mut left = hidden;
    while left > 0 {
        let group = left.min(3);
        out.push(' ');
        out.push_str(&"*".repeat(group));
        left -= group;
    }
    out.push(' ');
    out.push_str(tail);
    out
}

fn mask_email(email: &str) -> String {
    match email.split_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => "***".to_owned(),
    }
}

/// Why a code was sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Purpose {
    /// Confirming a new mobile key.
    Enrolment,
    /// Logging in with the mobile key.
    Login,
}

impl Purpose {
    /// `"enrolment"` or `"login"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Enrolment => "enrolment",
            Self::Login => "login",
        }
    }
}

/// A one-time code on its way to a citizen. `Debug` hides the code and most of the contact.
pub struct CodeMessage {
    /// Where to.
    pub to: Contact,
    /// The code in clear (zeroized when dropped).
    pub code: Zeroizing<String>,
    /// Why.
    pub purpose: Purpose,
    /// Its lifetime, told to the citizen.
    pub expires_in_secs: u64,
}

impl fmt::Debug for CodeMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CodeMessage")
            .field("to", &self.to.masked())
            .field("code", &"******")
            .field("purpose", &self.purpose)
            .field("expires_in_secs", &self.expires_in_secs)
            .finish()
    }
}

impl CodeMessage {
    /// The text sent: short (one SMS), the code, its lifetime, and a warning against sharing it.
    pub fn text(&self) -> Zeroizing<String> {
        let what = match self.purpose {
            Purpose::Enrolment => "to confirm your mobile key",
            Purpose::Login => "to log in",
        };
        let minutes = self.expires_in_secs.div_ceil(60).max(1);
        let unit = if minutes == 1 { "minute" } else { "minutes" };
        Zeroizing::new(format!(
            "Your code {what} is {}. It expires in {minutes} {unit}. Never share it: we will not ask for it.",
            self.code.as_str()
        ))
    }
}

/// Why a code could not be delivered. Never contains the code.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum DeliveryError {
    /// No channel is configured for this kind of contact.
    #[error("no delivery channel for {0} contacts is configured")]
    NoChannel(&'static str),
    /// The sender does not handle this kind of contact (e.g. an e-mail given to the SMS
    /// gateway).
    #[error("the {sender} sender cannot deliver to a {kind} contact")]
    WrongChannel {
        /// The sender's name.
        sender: &'static str,
        /// The contact's kind.
        kind: &'static str,
    },
    /// The adapter's configuration is not acceptable (URL, address, scheme).
    #[error("delivery configuration: {0}")]
    Config(String),
    /// Writing the outbox failed.
    #[error("outbox {path}: {source}")]
    Io {
        /// The outbox file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// An outbox line is not an entry.
    #[error("outbox {path} line {line}: {reason}")]
    OutboxFormat {
        /// The outbox file.
        path: PathBuf,
        /// Line number (from 1).
        line: usize,
        /// Parser message.
        reason: String,
    },
    /// The SMTP server refused or could not be reached.
    #[error("e-mail delivery failed: {0}")]
    Smtp(String),
    /// The SMS gateway could not be reached.
    #[error("SMS gateway unreachable: {0}")]
    Http(String),
    /// The SMS gateway answered with a non-2xx status.
    #[error("SMS gateway refused the message (HTTP {0})")]
    Rejected(u16),
}

impl DeliveryError {
    /// The API error code (`delivery-failed` for every variant).
    pub fn code(&self) -> &'static str {
        "delivery-failed"
    }
}

/// The future a [`CodeSender`] returns.
pub type SendFuture<'a> = Pin<Box<dyn Future<Output = Result<(), DeliveryError>> + Send + 'a>>;

/// A channel that delivers one-time codes. Implementations must not log the code.
pub trait CodeSender: Send + Sync + fmt::Debug {
    /// Short name for logs ("outbox", "smtp", "sms-gateway", "router").
    fn name(&self) -> &'static str;
    /// Delivers `message`; `Ok` once the next hop has accepted it.
    fn send<'a>(&'a self, message: &'a CodeMessage) -> SendFuture<'a>;
}

// ---------------------------------------------------------------------------------------------
// Development outbox
// ---------------------------------------------------------------------------------------------

/// One message in the development outbox (one JSON line in its file).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxEntry {
    /// RFC 3339 time of sending (UTC).
    pub time: String,
    /// Canonical contact.
    pub to: String,
    /// `"phone"` or `"email"`.
    pub channel: String,
    /// `"enrolment"` or `"login"`.
    pub purpose: String,
    /// The code, in clear: this is a development tool.
    pub code: String,
    /// The full text as it would be sent.
    pub text: String,
}

/// Development outbox: appends one JSON line per message to a file (created with mode 0600)
/// and keeps the last [`OUTBOX_RECENT`] in memory for the `/dev/outbox` page. It delivers to
/// any contact kind. Codes are written in clear: never use it for real citizens.
#[derive(Debug)]
pub struct DevOutbox {
    path: PathBuf,
    recent: Mutex<VecDeque<OutboxEntry>>,
}

impl DevOutbox {
    /// Opens (creating it and its directory when missing) the outbox file at `path`; the
    /// entries already in it fill the in-memory list (malformed lines are skipped).
    pub fn new(path: &Path) -> Result<Self, DeliveryError> {
        let io = |source| DeliveryError::Io {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            fs::create_dir_all(dir).map_err(io)?;
        }
        let file = open_append(path).map_err(io)?;
        drop(file);
        let mut recent = VecDeque::with_capacity(OUTBOX_RECENT);
        for entry in read_lines(path)?.into_iter().flatten() {
            if recent.len() == OUTBOX_RECENT {
                recent.pop_back();
            }
            recent.push_front(entry);
        }
        Ok(Self {
            path: path.to_path_buf(),
            recent: Mutex::new(recent),
        })
    }

    /// The outbox file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The last messages, newest first.
    pub fn recent(&self) -> Vec<OutboxEntry> {
        match self.recent.lock() {
            Ok(recent) => recent.iter().cloned().collect(),
            Err(poisoned) => poisoned.into_inner().iter().cloned().collect(),
        }
    }

    fn append(&self, message: &CodeMessage) -> Result<(), DeliveryError> {
        let entry = OutboxEntry {
            time: now_rfc3339(),
            to: message.to.as_str().to_owned(),
            channel: message.to.kind().to_owned(),
            purpose: message.purpose.as_str().to_owned(),
            code: message.code.as_str().to_owned(),
            text: message.text().as_str().to_owned(),
        };
        let io = |source| DeliveryError::Io {
            path: self.path.clone(),
            source,
        };
        let mut line = serde_json::to_string(&entry).map_err(|e| io(std::io::Error::other(e)))?;
        line.push('\n');
        let mut recent = match self.recent.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        // One write of a whole line to an O_APPEND file: concurrent writers do not interleave.
        let mut file = open_append(&self.path).map_err(io)?;
        file.write_all(line.as_bytes()).map_err(io)?;
        if recent.len() == OUTBOX_RECENT {
            recent.pop_back();
        }
        recent.push_front(entry);
        Ok(())
    }
}

impl CodeSender for DevOutbox {
    fn name(&self) -> &'static str {
        "outbox"
    }

    fn send<'a>(&'a self, message: &'a CodeMessage) -> SendFuture<'a> {
        // A small local append: done inline rather than on the blocking pool.
        Box::pin(async move { self.append(message) })
    }
}

fn open_append(path: &Path) -> std::io::Result<fs::File> {
    let mut options = fs::OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    options.open(path)
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// An outbox line: the entry, or its line number and the parser's message.
type ParsedLine = Result<OutboxEntry, (usize, String)>;

/// Each line parsed, in file order (blank lines skipped).
fn read_lines(path: &Path) -> Result<Vec<ParsedLine>, DeliveryError> {
    let io = |source| DeliveryError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = fs::File::open(path).map_err(io)?;
    let mut out = Vec::new();
    for (i, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(io)?;
        if line.trim().is_empty() {
            continue;
        }
        out.push(serde_json::from_str(&line).map_err(|e| (i + 1, e.to_string())));
    }
    Ok(out)
}

/// All entries of an outbox file, newest first (for tests and `eid-enrolment outbox`). A
/// malformed line is an error.
pub fn read_outbox(path: &Path) -> Result<Vec<OutboxEntry>, DeliveryError> {
    let mut entries = Vec::new();
    for entry in read_lines(path)? {
        match entry {
            Ok(entry) => entries.push(entry),
            Err((line, reason)) => {
                return Err(DeliveryError::OutboxFormat {
                    path: path.to_path_buf(),
                    line,
                    reason,
                });
            }
        }
    }
    entries.reverse();
    Ok(entries)
}

// ---------------------------------------------------------------------------------------------
// SMTP
// ---------------------------------------------------------------------------------------------

/// The parts of an `smtp[s]://user:pass@host:port` URL.
struct SmtpUrl {
    implicit_tls: bool,
    host: String,
    port: Option<u16>,
    user: Option<String>,
    password: Option<Zeroizing<String>>,
}

fn percent_decode(text: &str) -> Result<String, DeliveryError> {
    let bad = || DeliveryError::Config("bad percent-encoding in the SMTP URL".to_owned());
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = bytes.get(i + 1..i + 3).ok_or_else(bad)?;
            let hex = std::str::from_utf8(hex).map_err(|_| bad())?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| bad())?);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| bad())
}

fn parse_smtp_url(url: &str) -> Result<SmtpUrl, DeliveryError> {
    let bad = |why: &str| DeliveryError::Config(format!("SMTP URL: {why}"));
    let (implicit_tls, rest) = if let Some(rest) = url.strip_prefix("smtps://") {
        (true, rest)
    } else if let Some(rest) = url.strip_prefix("smtp://") {
        (false, rest)
    } else {
        return Err(bad("must start with smtp:// or smtps://"));
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let (user, password) = match userinfo {
        Some(info) => {
            let (u, p) = info.split_once(':').unwrap_or((info, ""));
            (
                Some(percent_decode(u)?),
                Some(Zeroizing::new(percent_decode(p)?)),
            )
        }
        None => (None, None),
    };
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (host, after) = v6
            .split_once(']')
            .ok_or_else(|| bad("unclosed [ in host"))?;
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p),
            None if after.is_empty() => None,
            None => return Err(bad("junk after the host")),
        };
        (host.to_owned(), port)
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h.to_owned(), Some(p)),
            None => (hostport.to_owned(), None),
        }
    };
    if host.is_empty()
        || !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-:".contains(c))
    {
        return Err(bad("missing or invalid host"));
    }
    let port = port
        .map(|p| p.parse::<u16>().map_err(|_| bad("invalid port")))
        .transpose()?;
    Ok(SmtpUrl {
        implicit_tls,
        host,
        port,
        user: user.filter(|u| !u.is_empty()),
        password,
    })
}

/// Whether `host` names this machine (so that plain-text connections to it never cross a
/// network).
fn is_loopback_host(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<IpAddr>()
            .map(|ip| ip.is_loopback())
            .unwrap_or(false)
}

/// E-mail delivery through an SMTP submission server (lettre, tokio, rustls with the webpki
/// roots). `smtps://` uses implicit TLS (default port 465); `smtp://` requires STARTTLS
/// (default port 587) except to a loopback host (a local relay, or the tests' fake server),
/// where it speaks plain SMTP (default port 25). Credentials come from the URL's user info
/// (percent-encoded). Delivers to e-mail contacts only.
pub struct SmtpSender {
    transport: lettre::AsyncSmtpTransport<lettre::Tokio1Executor>,
    from: lettre::message::Mailbox,
    description: String,
}

impl fmt::Debug for SmtpSender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpSender")
            .field("server", &self.description)
            .field("from", &self.from.to_string())
            .finish_non_exhaustive()
    }
}

impl SmtpSender {
    /// A sender to the server at `url` (`smtp[s]://[user:pass@]host[:port]`) with the
    /// envelope and header sender `from` (`addr` or `Name <addr>`).
    pub fn new(url: &str, from: &str) -> Result<Self, DeliveryError> {
        use lettre::transport::smtp::authentication::Credentials;
        use lettre::{AsyncSmtpTransport, Tokio1Executor};

        let parsed = parse_smtp_url(url)?;
        let from: lettre::message::Mailbox = from
            .parse()
            .map_err(|e| DeliveryError::Config(format!("SMTP From address {from:?}: {e}")))?;
        let smtp_err = |e: lettre::transport::smtp::Error| DeliveryError::Config(e.to_string());
        let loopback = is_loopback_host(&parsed.host);
        let (mut builder, mode) = if parsed.implicit_tls {
            (
                AsyncSmtpTransport::<Tokio1Executor>::relay(&parsed.host).map_err(smtp_err)?,
                "implicit TLS",
            )
        } else if loopback {
            (
                AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(parsed.host.as_str()),
                "plain, loopback",
            )
        } else {
            (
                AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&parsed.host)
                    .map_err(smtp_err)?,
                "STARTTLS required",
            )
        };
        if let Some(port) = parsed.port {
            builder = builder.port(port);
        }
        if let Some(user) = parsed.user {
            let password = parsed.password.map(|p| p.to_string()).unwrap_or_default();
            builder = builder.credentials(Credentials::new(user, password));
        }
        builder = builder.timeout(Some(Duration::from_secs(30)));
        let description = format!(
            "{}:{} ({mode})",
            parsed.host,
            parsed.port.map(|p| p.to_string()).unwrap_or_default()
        );
        Ok(Self {
            transport: builder.build(),
            from,
            description,
        })
    }

    async fn deliver(&self, message: &CodeMessage) -> Result<(), DeliveryError> {
        use lettre::AsyncTransport as _;
        use lettre::message::header::ContentType;

        let Contact::Email(address) = &message.to else {
            return Err(DeliveryError::WrongChannel {
                sender: "smtp",
                kind: message.to.kind(),
            });
        };
        let to: lettre::message::Mailbox = address
            .parse()
            .map_err(|e| DeliveryError::Smtp(format!("recipient: {e}")))?;
        let subject = match message.purpose {
            Purpose::Enrolment => "Your code to confirm your mobile key",
            Purpose::Login => "Your login code",
        };
        let email = lettre::Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .header(ContentType::TEXT_PLAIN)
            .body(message.text().to_string())
            .map_err(|e| DeliveryError::Smtp(e.to_string()))?;
        self.transport
            .send(email)
            .await
            .map(|_| ())
            .map_err(|e| DeliveryError::Smtp(e.to_string()))
    }
}

impl CodeSender for SmtpSender {
    fn name(&self) -> &'static str {
        "smtp"
    }

    fn send<'a>(&'a self, message: &'a CodeMessage) -> SendFuture<'a> {
        Box::pin(self.deliver(message))
    }
}

// ---------------------------------------------------------------------------------------------
// SMS gateway
// ---------------------------------------------------------------------------------------------

/// SMS through an HTTP gateway: `POST <url>` with `Authorization: Bearer <token>` and the JSON
/// body `{"to": "+351912345678", "text": "..."}`; any 2xx answer means accepted. The URL must
/// be `https://` (plain `http://` only to a loopback host, for tests and local relays);
/// redirects are not followed (the token must not travel elsewhere). The request is blocking
/// (ureq) and runs on tokio's blocking pool, 20 s timeout. Delivers to phone contacts only.
#[derive(Clone)]
pub struct HttpSmsGateway {
    agent: ureq::Agent,
    url: String,
    token: Zeroizing<String>,
}

impl fmt::Debug for HttpSmsGateway {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpSmsGateway")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize)]
struct SmsBody<'a> {
    to: &'a str,
    text: &'a str,
}

impl HttpSmsGateway {
    /// A gateway client for `url` authenticating with the bearer `token`.
    pub fn new(url: &str, token: Zeroizing<String>) -> Result<Self, DeliveryError> {
        let bad = |why: &str| DeliveryError::Config(format!("SMS gateway URL: {why}"));
        let (secure, rest) = if let Some(rest) = url.strip_prefix("https://") {
            (true, rest)
        } else if let Some(rest) = url.strip_prefix("http://") {
            (false, rest)
        } else {
            return Err(bad("must start with https://"));
        };
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        if authority.is_empty() || authority.contains('@') {
            return Err(bad("missing host, or user info in the URL (use the token)"));
        }
        let host = if let Some(v6) = authority.strip_prefix('[') {
            v6.split_once(']').map(|(h, _)| h).unwrap_or_default()
        } else {
            authority.split(':').next().unwrap_or_default()
        };
        if !secure && !is_loopback_host(host) {
            return Err(bad("plain http:// is allowed only to a loopback host"));
        }
        // A token file usually ends with a newline: surrounding white space is not part of it.
        let token = Zeroizing::new(token.trim().to_owned());
        if token.is_empty() || token.chars().any(|c| c.is_ascii_control()) {
            return Err(DeliveryError::Config(
                "SMS gateway token is empty or has control characters".to_owned(),
            ));
        }
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_global(Some(Duration::from_secs(20)))
            .build();
        Ok(Self {
            agent: ureq::Agent::new_with_config(config),
            url: url.to_owned(),
            token,
        })
    }

    fn post(&self, to: &str, text: &str) -> Result<(), DeliveryError> {
        let authorization = Zeroizing::new(format!("Bearer {}", self.token.as_str()));
        let response = self
            .agent
            .post(&self.url)
            .header("Authorization", authorization.as_str())
            .send_json(SmsBody { to, text })
            .map_err(|e| DeliveryError::Http(e.to_string()))?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(DeliveryError::Rejected(status.as_u16()))
        }
    }
}

impl CodeSender for HttpSmsGateway {
    fn name(&self) -> &'static str {
        "sms-gateway"
    }

    fn send<'a>(&'a self, message: &'a CodeMessage) -> SendFuture<'a> {
        Box::pin(async move {
            let Contact::Phone(to) = &message.to else {
                return Err(DeliveryError::WrongChannel {
                    sender: "sms-gateway",
                    kind: message.to.kind(),
                });
            };
            let gateway = self.clone();
            let to = to.clone();
            let text = message.text();
            tokio::task::spawn_blocking(move || gateway.post(&to, &text))
                .await
                .map_err(|e| DeliveryError::Http(format!("worker: {e}")))?
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Router
// ---------------------------------------------------------------------------------------------

/// Routes by the contact's kind: phone numbers to `sms`, e-mail addresses to `email`; a kind
/// without a channel is [`DeliveryError::NoChannel`]. (A development outbox can sit in both.)
#[derive(Clone, Debug, Default)]
pub struct Router {
    /// Channel for phone contacts.
    pub sms: Option<Arc<dyn CodeSender>>,
    /// Channel for e-mail contacts.
    pub email: Option<Arc<dyn CodeSender>>,
}

impl Router {
    /// Whether a contact of this kind can be served (to refuse it before issuing a code).
    pub fn supports(&self, contact: &Contact) -> bool {
        match contact {
            Contact::Phone(_) => self.sms.is_some(),
            Contact::Email(_) => self.email.is_some(),
        }
    }
}

impl CodeSender for Router {
    fn name(&self) -> &'static str {
        "router"
    }

    fn send<'a>(&'a self, message: &'a CodeMessage) -> SendFuture<'a> {
        let channel = match message.to {
            Contact::Phone(_) => &self.sms,
            Contact::Email(_) => &self.email,
        };
        match channel {
            Some(sender) => sender.send(message),
            None => {
                let kind = message.to.kind();
                Box::pin(async move { Err(DeliveryError::NoChannel(kind)) })
            }
        }
    }
}
