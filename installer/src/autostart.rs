//! Starting the agent at login: a systemd user unit, or an XDG autostart entry where systemd is
//! not the init.
//!
//! The templates are `installer/units/eid-agent.service` and `installer/units/eid-agent.desktop`
//! (the Debian package ships them as they are, with `/usr/bin/eid-agent`). For an installation
//! made by a binary elsewhere (`cargo install`, a tarball), the installer writes them with the
//! absolute path of the running binary instead, which it first checks needs no quoting in either
//! format: a path with spaces, quotes, `%`, `$` or other special characters is refused rather
//! than escaped, since the two formats escape differently and a mistake would run something else.
//!
//! Only one of the two is installed: GNOME and KDE on systemd turn XDG autostart entries into
//! units themselves, so having both would start the agent twice (the second one failing on the
//! port).
//!
//! Enabling the unit is what `systemctl --user enable` (or `--global enable`) does: a symlink
//! in `default.target.wants/`. The installer makes it itself, so that it works without a running
//! user manager (first install over SSH, image building, tests), and asks a running user
//! manager to reload and start the unit.

use std::path::{Path, PathBuf};

/// The systemd unit template.
pub const UNIT_TEMPLATE: &str = include_str!("../units/eid-agent.service");
/// The XDG autostart template.
pub const DESKTOP_TEMPLATE: &str = include_str!("../units/eid-agent.desktop");
/// The binary path in the templates.
pub const PACKAGED_BINARY: &str = "/usr/bin/eid-agent";

/// Which autostart to install.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AutostartMode {
    /// systemd when it is the init, else XDG.
    #[default]
    Auto,
    Systemd,
    Xdg,
    None,
}

impl AutostartMode {
    /// Parses `auto`, `systemd`, `xdg`, `none`.
    pub fn parse(s: &str) -> Option<AutostartMode> {
        match s {
            "auto" => Some(AutostartMode::Auto),
            "systemd" => Some(AutostartMode::Systemd),
            "xdg" => Some(AutostartMode::Xdg),
            "none" => Some(AutostartMode::None),
            _ => None,
        }
    }

    /// `Auto` resolved for this machine.
    pub fn resolve(self) -> AutostartMode {
        match self {
            AutostartMode::Auto if systemd_is_init() => AutostartMode::Systemd,
            AutostartMode::Auto => AutostartMode::Xdg,
            other => other,
        }
    }

    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            AutostartMode::Auto => "auto",
            AutostartMode::Systemd => "systemd",
            AutostartMode::Xdg => "xdg",
            AutostartMode::None => "none",
        }
    }
}

/// Whether systemd is the running init (its documented test: `/run/systemd/system` exists).
pub fn systemd_is_init() -> bool {
    Path::new("/run/systemd/system").is_dir()
}

/// The binary path cannot be written into a unit or desktop entry without quoting.
#[derive(Debug, thiserror::Error)]
#[error(
    "the agent's path {} contains characters that would need quoting in a unit or desktop entry",
    path.display()
)]
pub struct UnsafeBinaryPath {
    pub path: PathBuf,
}

impl UnsafeBinaryPath {
    /// A stable code.
    pub fn code(&self) -> &'static str {
        "binary-path-unsafe"
    }

    /// What to do.
    pub fn remedy(&self) -> &'static str {
        "Install eid-agent in a directory whose path has only letters, digits and / . _ - + @ \
         (e.g. ~/.local/bin or /usr/local/bin), or use --autostart none."
    }
}

fn checked(binary: &Path) -> Result<&str, UnsafeBinaryPath> {
    let unsafe_path = || UnsafeBinaryPath {
        path: binary.to_path_buf(),
    };
    let s = binary.to_str().ok_or_else(unsafe_path)?;
    let ok = binary.is_absolute()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+@".contains(c));
    if ok { Ok(s) } else { Err(unsafe_path()) }
}

/// The systemd unit for `binary`.
pub fn render_unit(binary: &Path) -> Result<String, UnsafeBinaryPath> {
    Ok(UNIT_TEMPLATE.replace(PACKAGED_BINARY, checked(binary)?))
}

/// The XDG autostart entry for `binary`. The template's lines telling systemd sessions to skip
/// the entry are for the Debian package, which ships the unit beside it; the installer writes
/// one or the other, so an entry it writes must start the agent wherever it is read.
pub fn render_desktop(binary: &Path) -> Result<String, UnsafeBinaryPath> {
    let entry: String = DESKTOP_TEMPLATE
        .lines()
        .filter(|l| {
            !l.starts_with("X-systemd-skip=") && !l.starts_with("X-GNOME-HiddenUnderSystemd=")
        })
        .filter(|l| !l.starts_with("# Where the systemd user unit runs"))
        .map(|l| format!("{l}\n"))
        .collect();
    Ok(entry.replace(PACKAGED_BINARY, checked(binary)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_name_the_binary_once_each() {
        let unit = render_unit(Path::new("/home/a/.cargo/bin/eid-agent")).unwrap();
        assert!(unit.contains("\nExecStart=/home/a/.cargo/bin/eid-agent run\n"));
        assert!(unit.contains("\nWantedBy=default.target\n"));
        assert!(unit.contains("\nRestart=on-failure\n"));
        let desktop = render_desktop(Path::new("/opt/e/eid-agent")).unwrap();
        assert!(desktop.contains("\nExec=/opt/e/eid-agent run\n"));
        assert!(desktop.starts_with("[Desktop Entry]\n"));
        assert!(!desktop.contains("X-systemd-skip"), "{desktop}");
        assert!(DESKTOP_TEMPLATE.contains("\nX-systemd-skip=true\n"));
    }

    #[test]
    fn paths_needing_quotes_are_refused() {
        for bad in [
            "/home/a b/eid-agent",
            "/x/%h/eid-agent",
            "/x/$HOME/eid-agent",
            "/x/\"q\"/eid-agent",
            "relative/eid-agent",
            "/x/\n/eid-agent",
            "/x/é/eid-agent",
        ] {
            assert!(render_unit(Path::new(bad)).is_err(), "{bad:?}");
            assert!(render_desktop(Path::new(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn modes_parse() {
        for m in ["auto", "systemd", "xdg", "none"] {
            assert_eq!(AutostartMode::parse(m).unwrap().as_str(), m);
        }
        assert!(AutostartMode::parse("System").is_none());
        assert_ne!(AutostartMode::Auto.resolve(), AutostartMode::Auto);
    }
}
