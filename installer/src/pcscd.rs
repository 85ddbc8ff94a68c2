//! Diagnosis of the PC/SC service (pcsc-lite's `pcscd`), the top cause of "reader not detected".
//!
//! Reads the file system and `/proc` only; it starts nothing and needs no privileges.

use std::path::{Path, PathBuf};

/// Where pcsc-lite clients look for the daemon's socket unless `PCSCLITE_CSOCK_NAME` says
/// otherwise.
pub const DEFAULT_SOCKET: &str = "/run/pcscd/pcscd.comm";

/// What was found.
#[derive(Clone, PartialEq, Eq, Debug, serde::Serialize)]
pub struct PcscdDiagnosis {
    /// The `pcscd` binary, if installed.
    pub binary: Option<PathBuf>,
    /// A process named `pcscd` is running.
    pub running: bool,
    /// The socket clients connect to.
    pub socket: PathBuf,
    pub socket_exists: bool,
    /// systemd's socket unit for pcscd is enabled (socket activation).
    pub socket_unit_enabled: bool,
}

impl PcscdDiagnosis {
    /// Whether a client should be able to reach pcscd (running, or socket-activated).
    pub fn reachable(&self) -> bool {
        self.socket_exists && (self.running || self.socket_unit_enabled)
    }

    /// The command that fixes what is wrong, or `None` when nothing is.
    pub fn remedy(&self) -> Option<&'static str> {
        if self.binary.is_none() {
            Some("sudo apt install pcscd && sudo systemctl enable --now pcscd.socket")
        } else if !self.reachable() {
            if Path::new("/run/systemd/system").exists() {
                Some("sudo systemctl enable --now pcscd.socket")
            } else {
                Some("sudo pcscd  (no systemd here: start the daemon directly)")
            }
        } else {
            None
        }
    }
}

/// Looks at the machine.
pub fn diagnose() -> PcscdDiagnosis {
    let socket = std::env::var_os("PCSCLITE_CSOCK_NAME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_SOCKET));
    PcscdDiagnosis {
        binary: ["/usr/sbin/pcscd", "/usr/bin/pcscd", "/usr/local/sbin/pcscd"]
            .iter()
            .map(PathBuf::from)
            .find(|p| p.exists()),
        running: process_running("pcscd"),
        socket_exists: socket.exists(),
        socket,
        socket_unit_enabled: [
            "/etc/systemd/system/sockets.target.wants/pcscd.socket",
            "/lib/systemd/system/sockets.target.wants/pcscd.socket",
            "/usr/lib/systemd/system/sockets.target.wants/pcscd.socket",
        ]
        .iter()
        .any(|p| Path::new(p).exists()),
    }
}

/// Whether a process with this command name runs (reads `/proc/<pid>/comm`).
fn process_running(name: &str) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return false;
    };
    entries.flatten().any(|e| {
        e.file_name()
            .to_string_lossy()
            .bytes()
            .all(|b| b.is_ascii_digit())
            && std::fs::read_to_string(e.path().join("comm")).is_ok_and(|c| c.trim_end() == name)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remedy_names_the_missing_step() {
        let mut d = PcscdDiagnosis {
            binary: None,
            running: false,
            socket: PathBuf::from(DEFAULT_SOCKET),
            socket_exists: false,
            socket_unit_enabled: false,
        };
        assert!(d.remedy().unwrap().contains("apt install pcscd"));
        d.binary = Some(PathBuf::from("/usr/sbin/pcscd"));
        assert!(d.remedy().unwrap().contains("pcscd"));
        d.running = true;
        d.socket_exists = true;
        assert_eq!(d.remedy(), None);
    }

    #[test]
    fn finds_this_process_by_name() {
        let me = std::fs::read_to_string("/proc/self/comm").unwrap();
        assert!(process_running(me.trim_end()));
        assert!(!process_running("no-such-process-name"));
    }
}
