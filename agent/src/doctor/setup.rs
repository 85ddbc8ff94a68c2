//! `config`, `lna-policy`, `autostart`: the files that decide how the agent starts and whom it
//! serves.

use std::path::{Path, PathBuf};

use eid_installer::browser_policy::read_lna_policies;
use eid_installer::layout::Layout;

use super::{Check, DoctorOptions, bounded, one_line, read_bounded, shell_quote};
use crate::config::{AdminPolicy, Config, ConfigArgs, DEFAULT_PORT};

/// The configuration as the agent would load it, and what the other checks need of it.
pub(super) struct Setup {
    /// The configuration directory (known even when agent.toml does not load).
    pub config_dir: Option<PathBuf>,
    /// The port to check.
    pub port: u16,
    /// `Ok` or the error that `eid-agent run` would stop on.
    pub loaded: Result<Config, String>,
    /// The stable code and the remedy of the error.
    error: Option<(&'static str, &'static str)>,
}

impl Setup {
    /// Loads the configuration (on a worker thread: a FIFO or a hung network file system in
    /// place of agent.toml must not hang doctor).
    pub(super) fn load(options: &DoctorOptions) -> Setup {
        let mut args = options.config.clone();
        // A hermetic run (--root) reads the administrator's policy under the root too.
        let rooted_policy = (options.root != Path::new("/")
            && args.policy.is_none()
            && std::env::var_os(crate::config::ENV_POLICY).is_none_or(|v| v.is_empty()))
        .then(|| Layout::system(&options.root).admin_policy());
        if let Some(policy) = rooted_policy.as_ref().filter(|p| p.exists()) {
            args.policy = Some(policy.clone());
        }
        let config_dir = crate::config::config_dir(args.config_dir.as_deref()).ok();
        let fallback_port = args.port.unwrap_or(DEFAULT_PORT);
        let load_args: ConfigArgs = args.clone();
        let loaded = bounded(options.timeout, move || Config::load(&load_args));
        let (loaded, error) = match loaded {
            None => (
                Err(format!(
                    "reading the configuration took more than {} s",
                    options.timeout.as_secs()
                )),
                Some((
                    "config-unreadable",
                    "Check that agent.toml and the policy file are regular files on a local \
                     disk.",
                )),
            ),
            Some(Ok(mut config)) => {
                if rooted_policy.as_ref().is_some_and(|p| !p.exists()) {
                    // The machine's real policy must not leak into a hermetic run.
                    config.policy = AdminPolicy::default();
                }
                (Ok(config), None)
            }
            Some(Err(e)) => (Err(e.to_string()), Some((e.code(), e.remedy()))),
        };
        let port = match &loaded {
            Ok(config) => config.port,
            Err(_) => fallback_port,
        };
        Setup {
            config_dir: loaded
                .as_ref()
                .map(|c| c.config_dir.clone())
                .ok()
                .or(config_dir),
            port,
            loaded,
            error,
        }
    }

    /// The `config` check.
    pub(super) fn config_check(&self) -> Check {
        match (&self.loaded, self.error) {
            (Ok(config), _) => {
                let policy = &config.policy;
                let policy_text = match &policy.source {
                    Some(file) => format!(
                        "policy {} ({} allowed, {} denied)",
                        file.display(),
                        policy.allow.len(),
                        policy.deny.len()
                    ),
                    None => "no administrator policy".to_owned(),
                };
                let summary = format!(
                    "{} loads: port {}, {policy_text}",
                    config.config_dir.join(crate::config::CONFIG_FILE).display(),
                    config.port
                );
                if config.warnings.is_empty() {
                    Check::ok("config", summary)
                } else {
                    Check::warning("config", summary)
                        .detail(config.warnings.join("; "))
                        .remedy("Remove dev_mode from agent.toml (the administrator forbids it).")
                }
            }
            (Err(message), error) => {
                let (code, remedy) = error.unwrap_or(("config-invalid", "Fix the file named."));
                Check::failed(
                    "config",
                    format!("the configuration does not load [{code}]"),
                )
                .detail(one_line(message))
                .remedy(remedy)
            }
        }
    }

    /// The `lna-policy` check: the Chromium/Chrome managed policies, and whether they let the
    /// pages the administrator allows reach the agent.
    pub(super) fn lna_check(&self, options: &DoctorOptions) -> Check {
        let root = options.root.clone();
        let Some(policies) = bounded(options.timeout, move || read_lna_policies(&root)) else {
            return Check::failed(
                "lna-policy",
                "reading the browser policy directories took too long",
            )
            .remedy("Check /etc/chromium/policies/managed and /etc/opt/chrome/policies/managed.");
        };
        let mut files = Vec::new();
        let mut broken = Vec::new();
        let mut allowed: Vec<String> = Vec::new();
        for policy in policies {
            match policy {
                Ok(p) => {
                    files.push(p.file.display().to_string());
                    for origin in p.origins {
                        let canonical = crate::config::parse_origin(&origin)
                            .map(|o| o.to_string())
                            .unwrap_or(origin);
                        if !allowed.contains(&canonical) {
                            allowed.push(canonical);
                        }
                    }
                }
                Err(e) => broken.push(one_line(&e.to_string())),
            }
        }
        let admin_allow: Vec<String> = match &self.loaded {
            Ok(config) => config.policy.allow.iter().map(|o| o.to_string()).collect(),
            Err(_) => Vec::new(),
        };
        let missing: Vec<&String> = admin_allow
            .iter()
            .filter(|o| !allowed.contains(o))
            .collect();
        let install = |origins: &[&String]| {
            let mut command = "sudo eid-agent install --system".to_owned();
            for o in origins {
                command.push_str(" --allow-origin ");
                command.push_str(o);
            }
            command
        };
        if !broken.is_empty() {
            let everything: Vec<&String> = admin_allow.iter().collect();
            return Check::failed(
                "lna-policy",
                "a browser policy file does not parse (Chromium ignores it)",
            )
            .detail(broken.join("; "))
            .remedy(format!(
                "Fix the JSON of the file named, or remove it (sudo rm FILE), then run: {}",
                install(&everything)
            ));
        }
        let origins_text = if allowed.is_empty() {
            "no origin".to_owned()
        } else {
            allowed.join(", ")
        };
        if !missing.is_empty() {
            return Check::warning(
                "lna-policy",
                format!(
                    "the administrator allows {} but the browsers' Local Network Access policy \
                     does not: those pages will be asked (or blocked) before reaching the agent",
                    missing
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
            .detail(if files.is_empty() {
                "no policy file".to_owned()
            } else {
                format!("{}: {origins_text}", files.join(", "))
            })
            .remedy(install(&missing));
        }
        if files.is_empty() {
            Check::ok(
                "lna-policy",
                "no Local Network Access policy (the browser asks the user once per site)",
            )
        } else {
            Check::ok("lna-policy", format!("allows {origins_text}")).detail(files.join(", "))
        }
    }
}

/// What starts the agent at login.
pub(super) fn autostart_check(options: &DoctorOptions) -> Check {
    let system = Layout::system(&options.root);
    let user = match (
        &options.home,
        crate::config::config_dir(options.config.config_dir.as_deref()),
    ) {
        (Some(home), Ok(config_dir)) => Some(Layout::user(home, &config_dir)),
        _ => None,
    };
    let systemd_running = options.system_path("/run/systemd/system").exists();

    // systemd: a unit file (user, global, or the package's) and an enabling link (user or
    // global). A user unit linked to /dev/null is masked.
    let mut unit_files: Vec<PathBuf> = Vec::new();
    if let Some(user) = &user {
        unit_files.push(user.systemd_unit());
    }
    unit_files.push(system.systemd_unit());
    unit_files.push(options.system_path("/usr/lib/systemd/user/eid-agent.service"));
    unit_files.push(options.system_path("/lib/systemd/user/eid-agent.service"));
    let masked = user
        .as_ref()
        .map(|u| u.systemd_unit())
        .and_then(|p| std::fs::read_link(p).ok())
        .is_some_and(|target| target == Path::new("/dev/null"));
    let unit = unit_files.iter().find(|p| p.is_file()).cloned();
    let mut links: Vec<PathBuf> = Vec::new();
    if let Some(user) = &user {
        links.push(user.systemd_wants_link());
    }
    links.push(system.systemd_wants_link());
    let enabled = links.iter().any(|l| l.symlink_metadata().is_ok());

    // XDG: the user's entry overrides the system one; Hidden=true disables it.
    let user_entry = user.as_ref().map(|u| u.xdg_autostart());
    let system_entry = system.xdg_autostart();
    let entry = match &user_entry {
        Some(p) if p.symlink_metadata().is_ok() => Some(p.clone()),
        _ => system_entry.is_file().then_some(system_entry),
    };
    let entry_text = entry
        .as_ref()
        .map(|p| (p.clone(), read_bounded(p, 64 * 1024)));

    let install = "eid-agent install";
    // A unit or entry that starts a program that is not there (a moved or removed binary).
    let stale = |file: &Path, key: &str| -> Option<Check> {
        let text = read_bounded(file, 64 * 1024).ok()?;
        let text = String::from_utf8_lossy(&text);
        let program = exec_program(&text, key)?;
        if program_exists(&program) {
            return None;
        }
        Some(
            Check::failed(
                "autostart",
                format!(
                    "{} starts {}, which does not exist",
                    file.display(),
                    program.display()
                ),
            )
            .remedy(format!(
                "{install}  (rewrites it with this eid-agent's path)"
            )),
        )
    };

    if masked {
        return Check::warning("autostart", "the systemd user unit eid-agent is masked").remedy(
            "systemctl --user unmask eid-agent && systemctl --user enable --now eid-agent",
        );
    }
    if let (Some(unit), true) = (&unit, enabled) {
        if let Some(check) = stale(unit, "ExecStart") {
            return check;
        }
        if systemd_running {
            return Check::ok(
                "autostart",
                format!("systemd user unit {} (enabled)", unit.display()),
            );
        }
    }
    if let Some((path, text)) = &entry_text {
        let hidden = text.as_ref().is_ok_and(|t| {
            String::from_utf8_lossy(t)
                .lines()
                .any(|l| l.trim().eq_ignore_ascii_case("hidden=true"))
        });
        if hidden {
            return Check::warning(
                "autostart",
                format!(
                    "the XDG autostart entry {} is disabled (Hidden=true)",
                    path.display()
                ),
            )
            .remedy(format!(
                "rm {} && {install} --autostart xdg",
                shell_quote(path)
            ));
        }
        if let Some(check) = stale(path, "Exec") {
            return check;
        }
        return Check::ok(
            "autostart",
            format!("XDG autostart entry {}", path.display()),
        );
    }
    if let (Some(unit), true) = (&unit, enabled) {
        return Check::warning(
            "autostart",
            format!(
                "systemd user unit {} is enabled but systemd is not running here, and there is \
                 no XDG autostart entry",
                unit.display()
            ),
        )
        .remedy(format!("{install} --autostart xdg"));
    }
    if let Some(unit) = &unit {
        return Check::warning(
            "autostart",
            format!(
                "systemd user unit {} is installed but not enabled",
                unit.display()
            ),
        )
        .remedy("systemctl --user enable --now eid-agent");
    }
    Check::warning(
        "autostart",
        "nothing starts the agent at login (no systemd user unit, no XDG autostart entry)",
    )
    .remedy(install)
}

/// The program of `ExecStart=` / `Exec=` (systemd's prefixes `-@:+!` dropped, a quoted first word
/// unquoted).
fn exec_program(text: &str, key: &str) -> Option<PathBuf> {
    let value = text.lines().find_map(|line| {
        let (k, v) = line.split_once('=')?;
        (k.trim() == key).then(|| v.trim())
    })?;
    let value = value.trim_start_matches(['-', '@', ':', '+', '!']);
    let word = if let Some(rest) = value.strip_prefix('"') {
        rest.split('"').next()?
    } else {
        value.split_whitespace().next()?
    };
    (!word.is_empty()).then(|| PathBuf::from(word))
}

/// Whether `program` exists (absolute, or found in `PATH`).
fn program_exists(program: &Path) -> bool {
    if program.is_absolute() {
        return program.is_file();
    }
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_program_reads_systemd_and_desktop_lines() {
        let unit = "[Service]\nType=simple\nExecStart=-/usr/bin/eid-agent run\n";
        assert_eq!(
            exec_program(unit, "ExecStart"),
            Some(PathBuf::from("/usr/bin/eid-agent"))
        );
        let desktop = "[Desktop Entry]\nExec=\"/opt/my agent/eid-agent\" run\n";
        assert_eq!(
            exec_program(desktop, "Exec"),
            Some(PathBuf::from("/opt/my agent/eid-agent"))
        );
        for hostile in [
            "",
            "Exec=",
            "Exec=\"",
            "ExecStart=  ",
            "\u{0}=\u{0}",
            "Exec",
        ] {
            assert_eq!(exec_program(hostile, "Exec"), None, "{hostile:?}");
            assert_eq!(exec_program(hostile, "ExecStart"), None, "{hostile:?}");
        }
        assert!(program_exists(Path::new("sh")));
        assert!(!program_exists(Path::new("/nonexistent/eid-agent")));
    }
}
