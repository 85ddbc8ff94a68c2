//! Where everything the installer writes lives, per scope, in one place.
//!
//! The installer, `eid-agent uninstall` and `eid-agent doctor` all ask a [`Layout`] for paths,
//! so the three can never disagree about where the unit, the manifest or a policy file is.
//!
//! - [`Scope::User`]: everything under the user's home and the agent's configuration directory
//!   (the one `eid-agent run` uses, so install and run share the TLS material). The systemd and
//!   XDG paths follow `$XDG_CONFIG_HOME` when it is set to an absolute path (as systemd and the
//!   desktop do), else `~/.config`.
//! - [`Scope::System`]: the machine's paths (`/etc/...`, `/usr/local/share/...`, `/var/lib/...`),
//!   each prefixed by `root`. `root` is `/` in real use; tests pass a temporary directory to
//!   install hermetically (the hidden `--root` option).
//!
//! The system paths are also available from a user layout (they are read by `doctor` in either
//! scope); a user install never writes them.

use std::path::{Path, PathBuf};

/// The machine's TLS directory (without a root prefix): what `eid-agent run` falls back to.
pub const SYSTEM_TLS_DIR: &str = "/etc/eid-agent/tls";
/// The group allowed to read the machine's leaf key.
pub const SYSTEM_GROUP: &str = "eid-agent";
/// The unit and desktop entry's file names.
pub const UNIT_NAME: &str = "eid-agent.service";
/// The XDG autostart entry's file name.
pub const DESKTOP_NAME: &str = "eid-agent.desktop";
/// The Chromium/Chrome managed policy file name (ours, whole).
pub const POLICY_FILE_NAME: &str = "eid-agent.json";
/// The manifest's file name in the user's configuration directory.
pub const USER_MANIFEST_NAME: &str = "install-manifest.json";

/// Who an installation is for.
#[derive(Clone, Copy, PartialEq, Eq, Debug, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// One user (a citizen's computer): no privileges needed.
    User,
    /// The whole machine (desks, images): root.
    System,
}

impl Scope {
    /// `user` or `system`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::User => "user",
            Scope::System => "system",
        }
    }
}

/// Every path of one installation.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Layout {
    scope: Scope,
    /// Prefix of the system paths ("/" normally).
    root: PathBuf,
    /// The user's home (user scope; the root for system scope).
    home: PathBuf,
    /// The agent's configuration directory (user scope).
    config_dir: PathBuf,
    /// `$XDG_CONFIG_HOME` or `~/.config` (user scope).
    xdg_config: PathBuf,
}

impl Layout {
    /// A user installation: `home` is the user's home, `config_dir` the agent's configuration
    /// directory (what `eid-agent run` uses).
    pub fn user(home: &Path, config_dir: &Path) -> Layout {
        let xdg_config = std::env::var_os("XDG_CONFIG_HOME")
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
            .unwrap_or_else(|| home.join(".config"));
        Layout {
            scope: Scope::User,
            root: PathBuf::from("/"),
            home: home.to_path_buf(),
            config_dir: config_dir.to_path_buf(),
            xdg_config,
        }
    }

    /// A machine installation with every system path under `root` (`/` normally).
    pub fn system(root: &Path) -> Layout {
        Layout {
            scope: Scope::System,
            root: root.to_path_buf(),
            home: root.to_path_buf(),
            config_dir: prefixed(root, "/etc/eid-agent"),
            xdg_config: prefixed(root, "/etc/xdg"),
        }
    }

    /// The scope.
    pub fn scope(&self) -> Scope {
        self.scope
    }

    /// The prefix of the system paths.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Whether system paths are redirected under a prefix (hermetic mode: no command that
    /// touches the real machine runs).
    pub fn is_rooted(&self) -> bool {
        self.root != Path::new("/")
    }

    /// The user's home (user scope).
    pub fn home(&self) -> &Path {
        &self.home
    }

    /// The agent's configuration directory (user scope) or `/etc/eid-agent` (system scope).
    pub fn config_dir(&self) -> &Path {
        &self.config_dir
    }

    /// A system path under the root.
    pub fn system_path(&self, absolute: &str) -> PathBuf {
        prefixed(&self.root, absolute)
    }

    /// The TLS directory of this scope.
    pub fn tls_dir(&self) -> PathBuf {
        match self.scope {
            Scope::User => self.config_dir.join("tls"),
            Scope::System => self.system_path(SYSTEM_TLS_DIR),
        }
    }

    /// The manifest of what install did.
    pub fn manifest(&self) -> PathBuf {
        match self.scope {
            Scope::User => self.config_dir.join(USER_MANIFEST_NAME),
            Scope::System => self.system_path("/var/lib/eid-agent/install-manifest.json"),
        }
    }

    /// Where files replaced by install are kept so uninstall can put them back.
    pub fn backup_dir(&self) -> PathBuf {
        match self.scope {
            Scope::User => self.config_dir.join("install-backup"),
            Scope::System => self.system_path("/var/lib/eid-agent/backup"),
        }
    }

    /// The directory of systemd user units (per user, or global for every user).
    pub fn systemd_dir(&self) -> PathBuf {
        match self.scope {
            Scope::User => self.xdg_config.join("systemd/user"),
            Scope::System => self.system_path("/etc/systemd/user"),
        }
    }

    /// The systemd user unit.
    pub fn systemd_unit(&self) -> PathBuf {
        self.systemd_dir().join(UNIT_NAME)
    }

    /// The symlink `systemctl [--global|--user] enable` makes.
    pub fn systemd_wants_link(&self) -> PathBuf {
        self.systemd_dir()
            .join("default.target.wants")
            .join(UNIT_NAME)
    }

    /// What the wants symlink points to: the unit's path as the running system sees it (no
    /// root prefix).
    pub fn systemd_link_target(&self) -> PathBuf {
        match self.scope {
            Scope::User => self.systemd_unit(),
            Scope::System => PathBuf::from("/etc/systemd/user").join(UNIT_NAME),
        }
    }

    /// The XDG autostart entry.
    pub fn xdg_autostart(&self) -> PathBuf {
        self.xdg_config.join("autostart").join(DESKTOP_NAME)
    }

    /// Chromium's managed policy file (system).
    pub fn chromium_policy(&self) -> PathBuf {
        self.system_path("/etc/chromium/policies/managed")
            .join(POLICY_FILE_NAME)
    }

    /// Google Chrome's managed policy file (system).
    pub fn chrome_policy(&self) -> PathBuf {
        self.system_path("/etc/opt/chrome/policies/managed")
            .join(POLICY_FILE_NAME)
    }

    /// The administrator's policy file (origin allowlist), `/etc/eid-agent/policy.toml`.
    pub fn admin_policy(&self) -> PathBuf {
        self.system_path("/etc/eid-agent/policy.toml")
    }

    /// The CA in the system store's input directory (`update-ca-certificates`).
    pub fn system_ca(&self) -> PathBuf {
        self.system_path("/usr/local/share/ca-certificates/eid-agent-local-ca.crt")
    }
}

/// `absolute` under `root` (`/etc/x` under `/tmp/r` is `/tmp/r/etc/x`).
pub fn prefixed(root: &Path, absolute: &str) -> PathBuf {
    root.join(absolute.trim_start_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_paths_are_prefixed_and_links_are_not() {
        let l = Layout::system(Path::new("/tmp/r"));
        assert_eq!(l.tls_dir(), Path::new("/tmp/r/etc/eid-agent/tls"));
        assert_eq!(
            l.manifest(),
            Path::new("/tmp/r/var/lib/eid-agent/install-manifest.json")
        );
        assert_eq!(
            l.chromium_policy(),
            Path::new("/tmp/r/etc/chromium/policies/managed/eid-agent.json")
        );
        assert_eq!(
            l.systemd_link_target(),
            Path::new("/etc/systemd/user/eid-agent.service")
        );
        assert!(l.is_rooted());
        assert!(!Layout::system(Path::new("/")).is_rooted());
        assert_eq!(
            Layout::system(Path::new("/")).admin_policy(),
            Path::new("/etc/eid-agent/policy.toml")
        );
    }

    #[test]
    fn user_paths_live_in_the_home_and_config_dir() {
        let l = Layout::user(Path::new("/home/a"), Path::new("/home/a/.config/eid-agent"));
        assert_eq!(l.tls_dir(), Path::new("/home/a/.config/eid-agent/tls"));
        assert_eq!(
            l.manifest(),
            Path::new("/home/a/.config/eid-agent/install-manifest.json")
        );
        assert!(l.systemd_unit().ends_with("systemd/user/eid-agent.service"));
        assert!(l.xdg_autostart().ends_with("autostart/eid-agent.desktop"));
    }
}
