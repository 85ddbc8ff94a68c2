//! `eid-agent install` and `eid-agent uninstall`: the command line over
//! [`eid_installer::install`], which does the work and documents every step.
//!
//! The configuration directory is resolved exactly as `eid-agent run` resolves it
//! ([`crate::config::config_dir`]: `--config-dir`, else `$EID_AGENT_CONFIG_DIR`, else
//! `~/.config/eid-agent`), so the CA install registers is the one `run` serves. Origins given with
//! `--allow-origin` are parsed with the project's one origin parser and written in canonical
//! form. Without `--allow-origin`, a system install keeps the allowlist of the policy file it
//! wrote before, so re-running it to renew the certificate does not empty the list.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use eid_installer::autostart::AutostartMode;
use eid_installer::install::{InstallOptions, Report, StepResult, StepStatus};
use eid_installer::layout::{Layout, Scope};

/// Options of `eid-agent install`.
#[derive(clap::Args, Debug)]
pub struct InstallArgs {
    #[command(flatten)]
    pub scope: ScopeArgs,
    /// Start the agent at login with: auto (systemd when it is the init, else XDG autostart),
    /// systemd, xdg, or none.
    #[arg(long, value_name = "HOW", default_value = "auto", value_parser = parse_autostart)]
    pub autostart: AutostartMode,
    /// With --system: an origin (https://desk.example) allowed to use the card without the
    /// consent dialog and to reach the agent under Chromium's Local Network Access. Repeatable.
    #[arg(long = "allow-origin", value_name = "ORIGIN")]
    pub allow_origin: Vec<String>,
    /// With --system: a user to add to the eid-agent group (may read the machine's localhost
    /// key). Repeatable.
    #[arg(long = "member", value_name = "USER")]
    pub member: Vec<String>,
    /// With --system: replace an /etc/eid-agent/policy.toml not written by install (it is kept
    /// and put back by uninstall).
    #[arg(long)]
    pub force: bool,
}

/// Options of `eid-agent uninstall`.
#[derive(clap::Args, Debug)]
pub struct UninstallArgs {
    #[command(flatten)]
    pub scope: ScopeArgs,
}

/// What both commands share.
#[derive(clap::Args, Debug)]
pub struct ScopeArgs {
    /// For this user only (the default): everything under your home.
    #[arg(long, conflicts_with = "system")]
    pub user: bool,
    /// For the whole machine (root): machine certificate, system trust store, browser
    /// policies, administrator policy, autostart for every user.
    #[arg(long)]
    pub system: bool,
    /// The configuration directory (user scope), as for `eid-agent run`. Default:
    /// $EID_AGENT_CONFIG_DIR, else ~/.config/eid-agent.
    #[arg(long, value_name = "DIR")]
    pub config_dir: Option<PathBuf>,
    /// Prefix of every system path; no command touching the real machine runs (tests, image
    /// building).
    #[arg(long, value_name = "DIR", hide = true, requires = "system")]
    pub root: Option<PathBuf>,
    /// One JSON document on stdout.
    #[arg(long)]
    pub json: bool,
}

fn parse_autostart(s: &str) -> Result<AutostartMode, String> {
    AutostartMode::parse(s).ok_or_else(|| format!("{s:?}: expected auto, systemd, xdg or none"))
}

/// A problem with the command line itself, reported as one failed step.
fn usage(scope: Scope, step: &str, detail: String, remedy: &str, json: bool) -> ExitCode {
    let report = Report {
        scope,
        steps: vec![StepResult::new(
            step,
            StepStatus::Failed,
            detail,
            Some(remedy),
        )],
    };
    print(&report, json, "install")
}

fn print(report: &Report, json: bool, what: &str) -> ExitCode {
    if json {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.to_text());
        let verdict = if report.failed() {
            format!("{what} incomplete: see the failed steps above")
        } else if report.changed() {
            format!("{what} done ({} scope)", report.scope.as_str())
        } else {
            format!("nothing to do: {what} was already complete")
        };
        println!("{verdict}");
    }
    if report.failed() {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    }
}

/// The layout of the chosen scope, or the step that explains why there is none.
fn layout(args: &ScopeArgs) -> Result<Layout, (String, &'static str)> {
    if args.system {
        return Ok(Layout::system(
            args.root.as_deref().unwrap_or_else(|| Path::new("/")),
        ));
    }
    let home = dirs::home_dir().ok_or((
        "no home directory (HOME is not set)".to_owned(),
        "Set HOME, or use --system as root.",
    ))?;
    let config_dir = crate::config::config_dir(args.config_dir.as_deref())
        .map_err(|e| (e.to_string(), e.remedy()))?;
    Ok(Layout::user(&home, &config_dir))
}

fn scope_of(args: &ScopeArgs) -> Scope {
    if args.system {
        Scope::System
    } else {
        Scope::User
    }
}

/// `eid-agent install`.
pub fn install(args: InstallArgs) -> ExitCode {
    let json = args.scope.json;
    let scope = scope_of(&args.scope);
    if scope == Scope::User && (!args.allow_origin.is_empty() || !args.member.is_empty()) {
        return usage(
            scope,
            "options",
            "--allow-origin and --member apply to a system installation".to_owned(),
            "Add --system (as root), or leave them out: a user's browser asks about each site \
             and the agent asks for consent.",
            json,
        );
    }
    let layout = match layout(&args.scope) {
        Ok(l) => l,
        Err((detail, remedy)) => return usage(scope, "options", detail, remedy, json),
    };
    let mut origins: Vec<String> = Vec::new();
    for raw in &args.allow_origin {
        match crate::config::parse_origin(raw) {
            Ok(origin) => {
                let canonical = origin.to_string();
                if !origins.contains(&canonical) {
                    origins.push(canonical);
                }
            }
            Err(e) => {
                return usage(
                    scope,
                    "options",
                    format!("--allow-origin {raw:?} is not an origin: {e}"),
                    "Give scheme://host[:port] without a path, e.g. https://desk.example.",
                    json,
                );
            }
        }
    }
    if origins.is_empty() && scope == Scope::System {
        origins = previous_origins(&layout);
    }
    let binary = match std::env::current_exe() {
        Ok(b) => b,
        Err(e) => {
            return usage(
                scope,
                "options",
                format!("cannot tell where this program is: {e}"),
                "Run eid-agent by its full path.",
                json,
            );
        }
    };
    let options = InstallOptions {
        layout,
        autostart: args.autostart,
        origins,
        members: args.member,
        force: args.force,
        binary,
        now: time::OffsetDateTime::now_utc(),
    };
    print(&eid_installer::install::install(&options), json, "install")
}

/// The allowlist of an admin policy file we wrote earlier (empty otherwise).
fn previous_origins(layout: &Layout) -> Vec<String> {
    let path = layout.admin_policy();
    let ours = std::fs::read_to_string(&path)
        .is_ok_and(|t| t.lines().next() == Some(eid_installer::install::ADMIN_POLICY_MARKER));
    if !ours {
        return Vec::new();
    }
    crate::config::AdminPolicy::load(&path, false)
        .map(|p| p.allow.iter().map(ToString::to_string).collect())
        .unwrap_or_default()
}

/// `eid-agent uninstall`.
pub fn uninstall(args: UninstallArgs) -> ExitCode {
    let json = args.scope.json;
    let scope = scope_of(&args.scope);
    let layout = match layout(&args.scope) {
        Ok(l) => l,
        Err((detail, remedy)) => return usage(scope, "options", detail, remedy, json),
    };
    print(
        &eid_installer::install::uninstall(&layout),
        json,
        "uninstall",
    )
}
