//! The agent's configuration: the user's `agent.toml`, the administrator's policy file, and the
//! command line and environment that say where both are.
//!
//! # Where
//! - The configuration directory (`agent.toml`, `sites.json`, `tls/`): `--config-dir DIR`, else
//!   `$EID_AGENT_CONFIG_DIR`, else `<the user's config dir>/eid-agent` (`~/.config/eid-agent`).
//! - The administrator's policy: `--policy FILE`, else `$EID_AGENT_POLICY`, else
//!   [`DEFAULT_POLICY_FILE`]. A missing file at the default place means "no policy"; a missing file
//!   that was named explicitly is an error (a typo must not silently drop the policy).
//!
//! # `agent.toml` (every key optional; an unknown key is an error that names it)
//! ```toml
//! port = 24180                     # 0: any free port (tests)
//! listen = ["127.0.0.1", "::1"]    # loopback addresses only
//! dev_mode = false                 # also accept http://localhost pages (development)
//! pinentry = "/usr/bin/pinentry-gnome3"
//! prompt_timeout_secs = 60         # how long a dialog waits for the user
//! queue_timeout_secs = 60          # how long a request waits for the card
//! operation_timeout_secs = 120     # how long one card operation may take
//! queue_capacity = 32              # requests waiting for the card, beyond which: queue-full
//! body_limit = 65536               # bytes of a request body
//! pin_rate_burst = 3               # PIN operations an origin may start at once...
//! pin_rate_period_secs = 60        # ...then one more per period
//! nfc_devices = ["pn532_uart:/dev/ttyUSB0"]  # NFC readers libnfc cannot find by itself
//! ```
//! `nfc_devices` names libnfc devices by connection string (`driver:port[:speed]`): serial
//! PN532 boards, which no scan finds. USB NFC readers are found without it; `EID_NFC_DEVICES`
//! (`;`-separated) adds more for one run. Devices pcscd serves (`pcsc`, `acr122_pcsc`,
//! `acr122_usb`) are refused here: those readers are used through PC/SC only.
//!
//! # The administrator's policy (`/etc/eid-agent/policy.toml`)
//! ```toml
//! allow = ["https://desk.example"]   # card operations without the consent dialog
//! deny = ["https://bad.example"]     # always refused (wins over allow)
//! allow_dev_mode = false             # the agent ignores dev_mode / --dev
//!
//! [kiosk]                            # an attended desk (see `crate::kiosk`)
//! enabled = true                     # kiosk mode without `run --kiosk`
//! desk = "loja-lisboa-03"            # the desk's name in the audit log (required)
//! origins = ["https://desk.example"] # the desk's pages, pre-approved; every other origin refused
//! idle_timeout_secs = 120            # a card session ends after this long without an operation
//! audit_dir = "/var/lib/eid-agent/audit"
//! audit_key_file = "/etc/eid-agent/audit.key"
//! audit_max_bytes = 8388608          # the audit file is rotated beyond this size
//! ```
//! Origins are parsed with [`parse_origin`] when the file is loaded, and stored in their
//! canonical form (lowercase, default port dropped); an entry with a path, a wildcard or
//! anything else that is not an origin is an error naming the entry. The policy protects users
//! from websites; it does not keep a user from running the agent with another policy.

use std::ffi::OsString;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use eid_protocols::webeid::{Origin, OriginError};

/// The bridge's port unless configured otherwise.
pub const DEFAULT_PORT: u16 = 24180;
/// The administrator's policy file unless `--policy` or `EID_AGENT_POLICY` say otherwise.
pub const DEFAULT_POLICY_FILE: &str = "/etc/eid-agent/policy.toml";
/// The user's configuration file, in the configuration directory.
pub const CONFIG_FILE: &str = "agent.toml";
/// Environment variable naming the configuration directory.
pub const ENV_CONFIG_DIR: &str = "EID_AGENT_CONFIG_DIR";
/// Environment variable naming the policy file.
pub const ENV_POLICY: &str = "EID_AGENT_POLICY";

/// The longest timeout any setting accepts.
const MAX_TIMEOUT_SECS: u64 = 3600;

/// Parses an `Origin` header value or a configured origin (the project's one origin parser,
/// [`eid_protocols::webeid::Origin`]).
pub fn parse_origin(s: &str) -> Result<Origin, OriginError> {
    Origin::parse(s)
}

/// What went wrong with the configuration. Every variant is the user's or the administrator's to
/// fix (a file or an option), none is retryable.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// No `--config-dir`, no `EID_AGENT_CONFIG_DIR`, and no home directory to derive it from.
    #[error(
        "cannot tell where the agent's configuration lives (no home directory); pass \
         --config-dir or set {ENV_CONFIG_DIR}"
    )]
    NoConfigDir,
    /// A file exists but cannot be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A policy file named explicitly does not exist.
    #[error("the policy file {} does not exist", path.display())]
    PolicyMissing { path: PathBuf },
    /// Not TOML, or a key this version does not know (the message names it).
    #[error("{}: {message}", path.display())]
    Syntax { path: PathBuf, message: String },
    /// A key has a value outside what it accepts.
    #[error("{}: `{key}`: {message}", path.display())]
    Invalid {
        path: PathBuf,
        key: &'static str,
        message: String,
    },
    /// A policy entry is not an origin.
    #[error("{}: `{list}` entry {entry:?} is not an origin (scheme://host[:port]): {source}", path.display())]
    PolicyOrigin {
        path: PathBuf,
        list: &'static str,
        entry: String,
        #[source]
        source: OriginError,
    },
}

impl ConfigError {
    /// A stable code for reports.
    pub fn code(&self) -> &'static str {
        match self {
            ConfigError::NoConfigDir => "config-dir-unknown",
            ConfigError::Read { .. } => "config-unreadable",
            ConfigError::PolicyMissing { .. } => "policy-missing",
            ConfigError::Syntax { .. } | ConfigError::Invalid { .. } => "config-invalid",
            ConfigError::PolicyOrigin { .. } => "policy-invalid",
        }
    }

    /// What to do about it.
    pub fn remedy(&self) -> &'static str {
        match self {
            ConfigError::NoConfigDir => "Pass --config-dir DIR or set EID_AGENT_CONFIG_DIR.",
            ConfigError::Read { .. } => "Check the file's permissions.",
            ConfigError::PolicyMissing { .. } => {
                "Check the path given with --policy or EID_AGENT_POLICY."
            }
            ConfigError::Syntax { .. } | ConfigError::Invalid { .. } => {
                "Fix or remove the key named in the message (see the agent's documentation for \
                 the keys and their ranges)."
            }
            ConfigError::PolicyOrigin { .. } => {
                "Write each policy entry as scheme://host[:port], e.g. https://desk.example, \
                 without a path or wildcard; ask the administrator if the file is not yours."
            }
        }
    }
}

/// Where the configuration comes from on the command line (`eid-agent run` and friends flatten
/// this). The environment fills in what is not given.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ConfigArgs {
    /// The configuration directory (agent.toml, sites.json, tls/). Default:
    /// $EID_AGENT_CONFIG_DIR, else ~/.config/eid-agent.
    #[arg(long, value_name = "DIR")]
    pub config_dir: Option<PathBuf>,
    /// The administrator's policy file. Default: $EID_AGENT_POLICY, else
    /// /etc/eid-agent/policy.toml.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// The bridge's port (overrides agent.toml).
    #[arg(long)]
    pub port: Option<u16>,
    /// Development mode: also accept pages on http://localhost (unless the policy forbids it).
    #[arg(long)]
    pub dev: bool,
}

/// The administrator's policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminPolicy {
    /// Origins allowed without the consent dialog.
    pub allow: Vec<Origin>,
    /// Origins always refused (wins over `allow` and over the user's choices).
    pub deny: Vec<Origin>,
    /// Whether development mode may be used.
    pub allow_dev_mode: bool,
    /// The file it came from, if any.
    pub source: Option<PathBuf>,
    /// The `[kiosk]` table, as written (checked by [`crate::kiosk::Kiosk::from_policy`] when
    /// kiosk mode starts, so a desk that lacks it gets one plain message).
    pub kiosk: Option<KioskPolicy>,
}

/// The administrator's `[kiosk]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KioskPolicy {
    /// Kiosk mode without `run --kiosk`.
    pub enabled: bool,
    /// The desk's name (audit log, tray); empty when missing.
    pub desk: String,
    /// The desk's page origins, canonical.
    pub origins: Vec<Origin>,
    /// A session ends after this long without an operation.
    pub idle_timeout: Duration,
    pub audit_dir: PathBuf,
    pub audit_key_file: PathBuf,
    pub audit_max_bytes: u64,
}

/// Defaults of the `[kiosk]` table.
pub const DEFAULT_KIOSK_IDLE_SECS: u64 = 120;
pub const DEFAULT_AUDIT_DIR: &str = "/var/lib/eid-agent/audit";
pub const DEFAULT_AUDIT_KEY_FILE: &str = "/etc/eid-agent/audit.key";
pub const DEFAULT_AUDIT_MAX_BYTES: u64 = 8 * 1024 * 1024;

impl Default for AdminPolicy {
    fn default() -> Self {
        AdminPolicy {
            allow: Vec::new(),
            deny: Vec::new(),
            allow_dev_mode: true,
            source: None,
            kiosk: None,
        }
    }
}

impl AdminPolicy {
    /// Whether the administrator refuses `origin`.
    pub fn denies(&self, origin: &Origin) -> bool {
        self.deny.contains(origin)
    }

    /// Whether the administrator allows `origin` without asking (and does not deny it).
    pub fn allows(&self, origin: &Origin) -> bool {
        !self.denies(origin) && self.allow.contains(origin)
    }

    /// Reads a policy file. `required`: a missing file is an error (it was named explicitly);
    /// otherwise a missing file is the empty policy.
    pub fn load(path: &Path, required: bool) -> Result<AdminPolicy, ConfigError> {
        let Some(text) = read_optional(path)? else {
            if required {
                return Err(ConfigError::PolicyMissing {
                    path: path.to_path_buf(),
                });
            }
            return Ok(AdminPolicy::default());
        };
        AdminPolicy::parse(&text, path)
    }

    /// Parses the text of a policy file (`path` is for messages).
    pub fn parse(text: &str, path: &Path) -> Result<AdminPolicy, ConfigError> {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct File {
            #[serde(default)]
            allow: Vec<String>,
            #[serde(default)]
            deny: Vec<String>,
            allow_dev_mode: Option<bool>,
            kiosk: Option<KioskFile>,
        }
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct KioskFile {
            enabled: Option<bool>,
            desk: Option<String>,
            #[serde(default)]
            origins: Vec<String>,
            idle_timeout_secs: Option<u64>,
            audit_dir: Option<PathBuf>,
            audit_key_file: Option<PathBuf>,
            audit_max_bytes: Option<u64>,
        }
        let file: File = toml::from_str(text).map_err(|e| syntax(path, text, &e))?;
        let origins = |list: &'static str, entries: Vec<String>| {
            let mut out: Vec<Origin> = Vec::with_capacity(entries.len());
            for entry in entries {
                let origin = parse_origin(&entry).map_err(|source| ConfigError::PolicyOrigin {
                    path: path.to_path_buf(),
                    list,
                    entry: entry.clone(),
                    source,
                })?;
                if !out.contains(&origin) {
                    out.push(origin);
                }
            }
            Ok::<_, ConfigError>(out)
        };
        let invalid = |key: &'static str, message: String| ConfigError::Invalid {
            path: path.to_path_buf(),
            key,
            message,
        };
        let kiosk = match file.kiosk {
            None => None,
            Some(k) => {
                let idle = k.idle_timeout_secs.unwrap_or(DEFAULT_KIOSK_IDLE_SECS);
                if !(1..=MAX_TIMEOUT_SECS).contains(&idle) {
                    return Err(invalid(
                        "kiosk.idle_timeout_secs",
                        format!("{idle} is not between 1 and {MAX_TIMEOUT_SECS} seconds"),
                    ));
                }
                let max_bytes = k.audit_max_bytes.unwrap_or(DEFAULT_AUDIT_MAX_BYTES);
                if max_bytes < 4096 {
                    return Err(invalid(
                        "kiosk.audit_max_bytes",
                        format!("{max_bytes} is below 4096 bytes"),
                    ));
                }
                let desk = k.desk.unwrap_or_default();
                if desk.len() > 128 || desk.chars().any(char::is_control) {
                    return Err(invalid(
                        "kiosk.desk",
                        "must be a short name without control characters".to_owned(),
                    ));
                }
                Some(KioskPolicy {
                    enabled: k.enabled.unwrap_or(false),
                    desk: desk.trim().to_owned(),
                    origins: origins("kiosk.origins", k.origins)?,
                    idle_timeout: Duration::from_secs(idle),
                    audit_dir: k
                        .audit_dir
                        .unwrap_or_else(|| PathBuf::from(DEFAULT_AUDIT_DIR)),
                    audit_key_file: k
                        .audit_key_file
                        .unwrap_or_else(|| PathBuf::from(DEFAULT_AUDIT_KEY_FILE)),
                    audit_max_bytes: max_bytes,
                })
            }
        };
        Ok(AdminPolicy {
            allow: origins("allow", file.allow)?,
            deny: origins("deny", file.deny)?,
            allow_dev_mode: file.allow_dev_mode.unwrap_or(true),
            source: Some(path.to_path_buf()),
            kiosk,
        })
    }
}

/// The agent's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The bridge's port (0: any free port).
    pub port: u16,
    /// The addresses the bridge listens on (loopback only).
    pub listen: Vec<IpAddr>,
    /// Development mode: http pages on loopback hosts are accepted.
    pub dev_mode: bool,
    /// Where agent.toml, sites.json and tls/ live.
    pub config_dir: PathBuf,
    /// The pinentry program for PIN and consent dialogs (`None`: the prompt module's default).
    pub pinentry: Option<PathBuf>,
    /// How long a dialog waits for the user.
    pub prompt_timeout: Duration,
    /// How long a request waits for the card before `queue-timeout`.
    pub queue_timeout: Duration,
    /// How long one card operation may take before `operation-timeout`.
    pub operation_timeout: Duration,
    /// Requests that may wait for the card; one more is `queue-full`.
    pub queue_capacity: usize,
    /// The largest request body, in bytes.
    pub body_limit: u64,
    /// PIN operations an origin may start in a burst.
    pub pin_rate_burst: u32,
    /// After the burst, one PIN operation per origin per period.
    pub pin_rate_period: Duration,
    /// The administrator's policy.
    pub policy: AdminPolicy,
    /// libnfc connection strings of NFC readers no scan finds (serial boards), checked by
    /// [`check_nfc_device`].
    pub nfc_devices: Vec<String>,
    /// Things the user should know about the configuration (e.g. development mode refused by
    /// the policy); the agent logs them at start.
    pub warnings: Vec<String>,
}

impl Config {
    /// The defaults, with `config_dir` as the configuration directory.
    pub fn defaults(config_dir: PathBuf) -> Config {
        Config {
            port: DEFAULT_PORT,
            listen: vec![
                IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(Ipv6Addr::LOCALHOST),
            ],
            dev_mode: false,
            config_dir,
            pinentry: None,
            prompt_timeout: Duration::from_secs(60),
            queue_timeout: Duration::from_secs(60),
            operation_timeout: Duration::from_secs(120),
            queue_capacity: 32,
            body_limit: 65536,
            pin_rate_burst: 3,
            pin_rate_period: Duration::from_secs(60),
            policy: AdminPolicy::default(),
            nfc_devices: Vec::new(),
            warnings: Vec::new(),
        }
    }

    /// Loads the configuration as the command line and the process environment say.
    pub fn load(args: &ConfigArgs) -> Result<Config, ConfigError> {
        Config::load_with_env(args, |name| std::env::var_os(name))
    }

    /// [`Config::load`] with the environment given as a function (tests).
    pub fn load_with_env(
        args: &ConfigArgs,
        env: impl Fn(&str) -> Option<OsString>,
    ) -> Result<Config, ConfigError> {
        let config_dir = resolve_config_dir(args.config_dir.as_deref(), &env)?;
        let (policy_path, required) = match (&args.policy, non_empty(env(ENV_POLICY))) {
            (Some(path), _) => (path.clone(), true),
            (None, Some(path)) => (PathBuf::from(path), true),
            (None, None) => (PathBuf::from(DEFAULT_POLICY_FILE), false),
        };
        let policy = AdminPolicy::load(&policy_path, required)?;

        let file = config_dir.join(CONFIG_FILE);
        let mut config = Config::defaults(config_dir);
        if let Some(text) = read_optional(&file)? {
            config.apply_file(&text, &file)?;
        }
        if let Some(port) = args.port {
            config.port = port;
        }
        config.dev_mode |= args.dev;
        config.policy = policy;
        if config.dev_mode && !config.policy.allow_dev_mode {
            config.dev_mode = false;
            config.warnings.push(format!(
                "development mode was asked for but the administrator's policy ({}) forbids it",
                config
                    .policy
                    .source
                    .as_deref()
                    .unwrap_or(Path::new("?"))
                    .display()
            ));
        }
        Ok(config)
    }

    /// Applies the text of an `agent.toml` (`path` is for messages).
    pub fn apply_file(&mut self, text: &str, path: &Path) -> Result<(), ConfigError> {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct File {
            port: Option<u16>,
            listen: Option<Vec<IpAddr>>,
            dev_mode: Option<bool>,
            pinentry: Option<PathBuf>,
            prompt_timeout_secs: Option<u64>,
            queue_timeout_secs: Option<u64>,
            operation_timeout_secs: Option<u64>,
            queue_capacity: Option<usize>,
            body_limit: Option<u64>,
            pin_rate_burst: Option<u32>,
            pin_rate_period_secs: Option<u64>,
            nfc_devices: Option<Vec<String>>,
        }
        let file: File = toml::from_str(text).map_err(|e| syntax(path, text, &e))?;
        let invalid = |key: &'static str, message: String| ConfigError::Invalid {
            path: path.to_path_buf(),
            key,
            message,
        };
        let seconds = |key: &'static str, value: Option<u64>, target: &mut Duration| {
            if let Some(secs) = value {
                if !(1..=MAX_TIMEOUT_SECS).contains(&secs) {
                    return Err(invalid(
                        key,
                        format!("{secs} is not between 1 and {MAX_TIMEOUT_SECS} seconds"),
                    ));
                }
                *target = Duration::from_secs(secs);
            }
            Ok(())
        };
        seconds(
            "prompt_timeout_secs",
            file.prompt_timeout_secs,
            &mut self.prompt_timeout,
        )?;
        seconds(
            "queue_timeout_secs",
            file.queue_timeout_secs,
            &mut self.queue_timeout,
        )?;
        seconds(
            "operation_timeout_secs",
            file.operation_timeout_secs,
            &mut self.operation_timeout,
        )?;
        seconds(
            "pin_rate_period_secs",
            file.pin_rate_period_secs,
            &mut self.pin_rate_period,
        )?;
        if let Some(port) = file.port {
            self.port = port;
        }
        if let Some(listen) = file.listen {
            if listen.is_empty() {
                return Err(invalid("listen", "needs at least one address".to_owned()));
            }
            if let Some(ip) = listen.iter().find(|ip| !ip.is_loopback()) {
                return Err(invalid(
                    "listen",
                    format!("{ip} is not a loopback address; the bridge only listens on loopback"),
                ));
            }
            let mut unique: Vec<IpAddr> = Vec::with_capacity(listen.len());
            for ip in listen {
                if !unique.contains(&ip) {
                    unique.push(ip);
                }
            }
            self.listen = unique;
        }
        if let Some(dev_mode) = file.dev_mode {
            self.dev_mode = dev_mode;
        }
        if let Some(pinentry) = file.pinentry {
            if pinentry.as_os_str().is_empty() {
                return Err(invalid("pinentry", "is empty".to_owned()));
            }
            self.pinentry = Some(pinentry);
        }
        if let Some(capacity) = file.queue_capacity {
            if !(1..=1024).contains(&capacity) {
                return Err(invalid(
                    "queue_capacity",
                    format!("{capacity} is not between 1 and 1024"),
                ));
            }
            self.queue_capacity = capacity;
        }
        if let Some(limit) = file.body_limit {
            if !(1024..=16 * 1024 * 1024).contains(&limit) {
                return Err(invalid(
                    "body_limit",
                    format!("{limit} is not between 1024 and 16777216 bytes"),
                ));
            }
            self.body_limit = limit;
        }
        if let Some(burst) = file.pin_rate_burst {
            if !(1..=100).contains(&burst) {
                return Err(invalid(
                    "pin_rate_burst",
                    format!("{burst} is not between 1 and 100"),
                ));
            }
            self.pin_rate_burst = burst;
        }
        if let Some(devices) = file.nfc_devices {
            let mut unique: Vec<String> = Vec::with_capacity(devices.len());
            for device in devices {
                check_nfc_device(&device)
                    .map_err(|why| invalid("nfc_devices", format!("entry {device:?}: {why}")))?;
                if !unique.contains(&device) {
                    unique.push(device);
                }
            }
            self.nfc_devices = unique;
        }
        Ok(())
    }

    /// The NFC devices to open besides libnfc's scan: `nfc_devices`, then `EID_NFC_DEVICES`
    /// (each once).
    pub fn all_nfc_devices(&self) -> Vec<String> {
        merge_nfc_devices(&self.nfc_devices, &eid_card::nfc::devices_from_env())
    }

    /// The directory of the local TLS material ([`eid_installer::tls::ensure`]).
    pub fn tls_dir(&self) -> PathBuf {
        self.config_dir.join("tls")
    }

    /// The file of the sites the user chose to remember ([`crate::consent::SiteStore`]).
    pub fn sites_file(&self) -> PathBuf {
        self.config_dir.join(crate::consent::SITES_FILE)
    }
}

/// The longest connection string accepted (libnfc's own buffer is 1024 bytes).
const MAX_CONNSTRING: usize = 256;

/// Checks that `connstring` is a plausible libnfc connection string, `driver:port[:speed]`: a
/// driver name (lowercase letters, digits, `_`), then a port of printable characters without
/// spaces or `;` (the separator of `EID_NFC_DEVICES`). Serial drivers (`*_uart`) need an
/// absolute device path and, if given, a numeric speed. Drivers of devices pcscd serves are
/// refused (PC/SC wins). The error says what is wrong, in words.
pub fn check_nfc_device(connstring: &str) -> Result<(), String> {
    if connstring.len() > MAX_CONNSTRING {
        return Err(format!("longer than {MAX_CONNSTRING} characters"));
    }
    let Some((driver, port)) = connstring.split_once(':') else {
        return Err("not driver:port (e.g. pn532_uart:/dev/ttyUSB0)".to_owned());
    };
    if driver.is_empty()
        || !driver
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        return Err(format!("{driver:?} is not a libnfc driver name"));
    }
    if port.is_empty() {
        return Err("the port after the driver is missing".to_owned());
    }
    if !port.bytes().all(|b| b.is_ascii_graphic() && b != b';') {
        return Err("the port has spaces, `;` or characters that are not printable".to_owned());
    }
    if eid_card::nfc::is_pcsc_owned(connstring) {
        return Err(format!(
            "{driver} devices are served by pcscd and used through PC/SC, not libnfc"
        ));
    }
    if driver.ends_with("_uart") {
        let mut parts = port.splitn(2, ':');
        let path = parts.next().unwrap_or_default();
        if !path.starts_with('/') {
            return Err(format!("{path:?} is not an absolute serial device path"));
        }
        if let Some(speed) = parts.next()
            && (speed.is_empty() || !speed.bytes().all(|b| b.is_ascii_digit()) || speed.len() > 7)
        {
            return Err(format!("{speed:?} is not a serial speed in baud"));
        }
    }
    Ok(())
}

/// `first` then the entries of `second` not in it.
fn merge_nfc_devices(first: &[String], second: &[String]) -> Vec<String> {
    let mut all = first.to_vec();
    for device in second {
        if !all.contains(device) {
            all.push(device.clone());
        }
    }
    all
}

/// The NFC devices for commands that do not load the whole configuration (`eid-agent
/// readers`): `nfc_devices` of the `agent.toml` in `config_dir` (resolved as
/// [`config_dir`] does), then `EID_NFC_DEVICES`. A missing `agent.toml` is no devices.
pub fn nfc_devices(config_dir_flag: Option<&Path>) -> Result<Vec<String>, ConfigError> {
    let dir = config_dir(config_dir_flag)?;
    let file = dir.join(CONFIG_FILE);
    let mut config = Config::defaults(dir);
    if let Some(text) = read_optional(&file)? {
        config.apply_file(&text, &file)?;
    }
    Ok(config.all_nfc_devices())
}

/// The configuration directory: `flag`, else `$EID_AGENT_CONFIG_DIR`, else
/// `<user config dir>/eid-agent`.
pub fn config_dir(flag: Option<&Path>) -> Result<PathBuf, ConfigError> {
    resolve_config_dir(flag, &|name: &str| std::env::var_os(name))
}

fn resolve_config_dir(
    flag: Option<&Path>,
    env: &dyn Fn(&str) -> Option<OsString>,
) -> Result<PathBuf, ConfigError> {
    if let Some(dir) = flag {
        return Ok(dir.to_path_buf());
    }
    if let Some(dir) = non_empty(env(ENV_CONFIG_DIR)) {
        return Ok(PathBuf::from(dir));
    }
    dirs::config_dir()
        .map(|d| d.join("eid-agent"))
        .ok_or(ConfigError::NoConfigDir)
}

fn non_empty(value: Option<OsString>) -> Option<OsString> {
    value.filter(|v| !v.is_empty())
}

/// A TOML error as one line: where, then what (toml's own text spans several lines).
fn syntax(path: &Path, text: &str, error: &toml::de::Error) -> ConfigError {
    let line = error
        .span()
        .and_then(|span| text.get(..span.start))
        .map(|before| before.matches('\n').count() + 1);
    let what = error.message().trim_end().replace('\n', " ");
    ConfigError::Syntax {
        path: path.to_path_buf(),
        message: match line {
            Some(line) => format!("line {line}: {what}"),
            None => what,
        },
    }
}

fn read_optional(path: &Path) -> Result<Option<String>, ConfigError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(ConfigError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    fn apply(text: &str) -> Result<Config, ConfigError> {
        let mut config = Config::defaults(PathBuf::from("/nowhere"));
        config
            .apply_file(text, Path::new("agent.toml"))
            .map(|()| config)
    }

    #[test]
    fn nfc_devices_are_read_and_deduplicated() {
        let config = apply(
            "nfc_devices = [\"pn532_uart:/dev/ttyUSB0\", \"pn532_uart:/dev/ttyS1:115200\", \
             \"pn53x_usb:001:004\", \"pn532_uart:/dev/ttyUSB0\"]",
        )
        .unwrap();
        assert_eq!(
            config.nfc_devices,
            [
                "pn532_uart:/dev/ttyUSB0",
                "pn532_uart:/dev/ttyS1:115200",
                "pn53x_usb:001:004"
            ]
        );
        assert!(apply("").unwrap().nfc_devices.is_empty());
    }

    #[test]
    fn implausible_nfc_devices_are_refused_naming_the_entry() {
        for bad in [
            "/dev/ttyUSB0",
            "pn532_uart:",
            ":/dev/ttyUSB0",
            "PN532_UART:/dev/ttyUSB0",
            "pn532_uart:dev/ttyUSB0",
            "pn532_uart:/dev/ttyUSB0:fast",
            "pn532_uart:/dev/ttyUSB0;pn532_uart:/dev/ttyUSB1",
            "pn532_uart:/dev/tty USB0",
            "acr122_usb:001:004",
            "pcsc:ACS ACR122U",
        ] {
            let err = apply(&format!("nfc_devices = [{bad:?}]")).unwrap_err();
            assert_eq!(err.code(), "config-invalid", "{bad}");
            let text = err.to_string();
            assert!(text.contains("nfc_devices"), "{text}");
            assert!(text.contains(&format!("{bad:?}")), "{text}");
        }
        let long = format!("pn532_uart:/dev/{}", "x".repeat(300));
        assert!(apply(&format!("nfc_devices = [{long:?}]")).is_err());
        // Strictness kept: a misspelt key is still an error naming it.
        let err = apply("nfc_device = [\"pn532_uart:/dev/ttyUSB0\"]").unwrap_err();
        assert!(err.to_string().contains("nfc_device"), "{err}");
    }

    #[test]
    fn configured_devices_come_before_the_environments() {
        let merged = merge_nfc_devices(
            &["a:1".to_owned(), "b:2".to_owned()],
            &["b:2".to_owned(), "c:3".to_owned()],
        );
        assert_eq!(merged, ["a:1", "b:2", "c:3"]);
    }
}
