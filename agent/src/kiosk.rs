//! Kiosk mode: the agent at an attended desk (a Citizen Shop), where one machine serves a queue
//! of strangers all day and an operator's page drives the agent.
//!
//! What changes against the desktop agent, and why:
//! - **Who may call.** Only the desk's own page origins (the administrator's `[kiosk] origins`)
//!   are served; every other origin is refused with `origin-not-allowed` before any dialog. There
//!   is nobody at the desk whose consent would mean anything for a third site, so there is no
//!   consent dialog, and nothing is remembered (`sites.json` is never written).
//! - **Isolation between citizens.** Every card presence in a reader is a session
//!   (`bridge::readers`): its id is 128 random bits; every job is bound to one session when it is
//!   queued; pulling the card (or the idle timeout) ends the session, cancels its running and
//!   queued jobs (dialogs closed), and tells the page with a `session-ended` event. Nothing read
//!   from a card outlives the job that read it (the worker keeps no cache), and nothing from a
//!   card is written to disk.
//! - **Accountability.** Every operation, refused origins included, goes to the audit log
//!   (`crate::audit`), which names the desk.
//! - **Unattended start.** Without a usable `[kiosk]` table (a desk name, at least one origin)
//!   the agent refuses to start, with code `kiosk-config` and words an operator can pass on: a
//!   kiosk that silently ran as a desktop agent would ask strangers for consent.

use std::path::PathBuf;
use std::time::Duration;

use crate::config::{Config, Origin};

/// Kiosk mode, as the agent runs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kiosk {
    /// The desk's name.
    pub desk: String,
    /// The only origins served.
    pub origins: Vec<Origin>,
    /// A session ends after this long without an operation.
    pub idle_timeout: Duration,
    pub audit_dir: PathBuf,
    pub audit_key_file: PathBuf,
    pub audit_max_bytes: u64,
}

/// Why kiosk mode cannot start. Always the administrator's to fix.
#[derive(Debug, thiserror::Error)]
pub enum KioskError {
    #[error(
        "kiosk mode needs the administrator's policy file with a [kiosk] section; {} has none",
        policy_name(.0)
    )]
    NoKioskSection(Option<PathBuf>),
    #[error("kiosk mode needs the desk's name: [kiosk] desk = \"...\" in {}", policy_name(.0))]
    NoDesk(Option<PathBuf>),
    #[error(
        "kiosk mode needs at least one desk page origin: [kiosk] origins = [\"https://...\"] in {}",
        policy_name(.0)
    )]
    NoOrigin(Option<PathBuf>),
    #[error("kiosk mode serves only https pages; {0} is not https")]
    InsecureOrigin(String),
    #[error("development mode (--dev or dev_mode) cannot be used in kiosk mode")]
    DevMode,
}

fn policy_name(path: &Option<PathBuf>) -> String {
    match path {
        Some(p) => p.display().to_string(),
        None => format!(
            "no policy file was found (looked for {})",
            crate::config::DEFAULT_POLICY_FILE
        ),
    }
}

impl KioskError {
    /// The stable code.
    pub fn code(&self) -> &'static str {
        "kiosk-config"
    }

    /// What to do.
    pub fn remedy(&self) -> &'static str {
        "Ask the administrator to complete the [kiosk] section of the policy file \
         (/etc/eid-agent/policy.toml): a desk name and the desk page's https origin(s); \
         see the agent's README."
    }
}

impl Kiosk {
    /// Whether kiosk mode was asked for: `--kiosk`, or `[kiosk] enabled = true`.
    pub fn wanted(config: &Config, flag: bool) -> bool {
        flag || config.policy.kiosk.as_ref().is_some_and(|k| k.enabled)
    }

    /// Kiosk mode from the administrator's policy, or why it cannot run.
    pub fn from_policy(config: &Config) -> Result<Kiosk, KioskError> {
        let source = config.policy.source.clone();
        let Some(policy) = &config.policy.kiosk else {
            return Err(KioskError::NoKioskSection(source));
        };
        if policy.desk.is_empty() {
            return Err(KioskError::NoDesk(source));
        }
        if policy.origins.is_empty() {
            return Err(KioskError::NoOrigin(source));
        }
        if let Some(o) = policy
            .origins
            .iter()
            .find(|o| !o.to_string().starts_with("https://"))
        {
            return Err(KioskError::InsecureOrigin(o.to_string()));
        }
        if config.dev_mode {
            return Err(KioskError::DevMode);
        }
        Ok(Kiosk {
            desk: policy.desk.clone(),
            origins: policy.origins.clone(),
            idle_timeout: policy.idle_timeout,
            audit_dir: policy.audit_dir.clone(),
            audit_key_file: policy.audit_key_file.clone(),
            audit_max_bytes: policy.audit_max_bytes,
        })
    }

    /// Whether `origin` (canonical serialisation) is one of the desk's pages.
    pub fn serves(&self, origin: &str) -> bool {
        self.origins.iter().any(|o| o.to_string() == origin)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::config::AdminPolicy;
    use std::path::Path;

    fn config(policy: &str) -> Config {
        let mut c = Config::defaults(PathBuf::from("/nonexistent"));
        c.policy = AdminPolicy::parse(policy, Path::new("policy.toml")).unwrap();
        c
    }

    #[test]
    fn needs_a_desk_and_an_https_origin() {
        let e = Kiosk::from_policy(&config("")).unwrap_err();
        assert!(matches!(e, KioskError::NoKioskSection(_)), "{e}");
        let e = Kiosk::from_policy(&config("[kiosk]\norigins = [\"https://d.example\"]\n"));
        assert!(matches!(e, Err(KioskError::NoDesk(_))));
        let e = Kiosk::from_policy(&config("[kiosk]\ndesk = \"d1\"\n"));
        assert!(matches!(e, Err(KioskError::NoOrigin(_))));
        let e = Kiosk::from_policy(&config(
            "[kiosk]\ndesk = \"d1\"\norigins = [\"http://localhost:8080\"]\n",
        ));
        assert!(matches!(e, Err(KioskError::InsecureOrigin(_))));
        let k = Kiosk::from_policy(&config(
            "[kiosk]\ndesk = \"d1\"\norigins = [\"https://D.example:443\"]\nidle_timeout_secs = 5\n",
        ))
        .unwrap();
        assert!(k.serves("https://d.example"));
        assert!(!k.serves("https://other.example"));
        assert_eq!(k.idle_timeout, Duration::from_secs(5));
        let mut dev = config("[kiosk]\ndesk = \"d1\"\norigins = [\"https://d.example\"]\n");
        dev.dev_mode = true;
        assert!(matches!(Kiosk::from_policy(&dev), Err(KioskError::DevMode)));
    }

    #[test]
    fn unknown_kiosk_keys_and_bad_values_are_errors() {
        let bad = |text: &str| AdminPolicy::parse(text, Path::new("p.toml")).is_err();
        assert!(bad("[kiosk]\ndesk = \"d\"\ncolour = 1\n"));
        assert!(bad("[kiosk]\nidle_timeout_secs = 0\n"));
        assert!(bad("[kiosk]\norigins = [\"https://x.example/path\"]\n"));
    }
}
