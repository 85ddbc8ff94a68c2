//! `eid-agent sites ...`: the websites the user chose to always allow.
//!
//! ```text
//! eid-agent sites list [--json]
//! eid-agent sites revoke https://desk.example
//! eid-agent sites revoke --all
//! ```
//! Every form takes `--config-dir DIR` (default `$EID_AGENT_CONFIG_DIR`, else
//! `~/.config/eid-agent`). A running agent sees the change on its next request. Exit codes as the
//! rest of the CLI: 0 success, 2 failure (the error report on stderr, or as JSON on stdout under
//! `--json`).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use crate::config::{self, ConfigError, OriginError, parse_origin};
use crate::consent::{ConsentError, Site, SiteStore};
use crate::report::ErrorReport;

/// `eid-agent sites`.
#[derive(Args, Debug)]
pub struct SitesArgs {
    /// The configuration directory (default: $EID_AGENT_CONFIG_DIR, else ~/.config/eid-agent).
    #[arg(long, global = true, value_name = "DIR")]
    pub config_dir: Option<PathBuf>,
    /// One JSON document on stdout.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: SitesCommand,
}

#[derive(Subcommand, Debug)]
pub enum SitesCommand {
    /// The websites that may use the card without asking, and since when.
    List,
    /// Always allows a website without asking (what "Always allow this site" in the agent's
    /// dialog does; for dialogs without that button, e.g. pinentry-gnome3). PINs are still
    /// asked for each operation.
    Allow {
        /// The website's origin, e.g. https://desk.example.
        origin: String,
    },
    /// Forgets a website (it will ask again), or every website with --all.
    Revoke {
        /// The website's origin, e.g. https://desk.example.
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        origin: Option<String>,
        /// Forget every website.
        #[arg(long)]
        all: bool,
    },
}

/// Why a `sites` command failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SitesError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Store(#[from] ConsentError),
    /// The argument is not an origin (the user's typo).
    #[error("{input:?} is not a website origin: {source}")]
    InvalidOrigin {
        input: String,
        #[source]
        source: OriginError,
    },
    /// The origin was not remembered (nothing changed).
    #[error("{0} is not among the remembered sites")]
    NotRemembered(String),
}

impl SitesError {
    /// A stable code for reports.
    pub fn code(&self) -> &'static str {
        match self {
            SitesError::Config(e) => e.code(),
            SitesError::Store(e) => e.code(),
            SitesError::InvalidOrigin { .. } => "invalid-origin",
            SitesError::NotRemembered(_) => "site-not-remembered",
        }
    }

    /// What to do about it.
    pub fn remedy(&self) -> &'static str {
        match self {
            SitesError::Config(e) => e.remedy(),
            SitesError::Store(e) => e.remedy(),
            SitesError::InvalidOrigin { .. } => {
                "Give the origin as the browser shows it: https://host or https://host:port, \
                 without a path."
            }
            SitesError::NotRemembered(_) => "See the remembered sites with `eid-agent sites list`.",
        }
    }

    /// The report in the CLI's common shape.
    pub fn report(&self) -> ErrorReport {
        ErrorReport {
            code: self.code(),
            message: self.to_string(),
            remedy: self.remedy().to_owned(),
            retryable: false,
        }
    }
}

/// Runs `eid-agent sites ...`, printing the result.
pub fn run(args: SitesArgs) -> Result<(), SitesError> {
    let dir = config::config_dir(args.config_dir.as_deref())?;
    let store = SiteStore::in_config_dir(&dir);
    match args.command {
        SitesCommand::List => {
            let sites = store.list()?;
            if args.json {
                println!(
                    "{}",
                    serde_json::json!({ "file": store.path(), "sites": sites })
                );
            } else {
                print_list(&sites);
            }
        }
        SitesCommand::Allow { origin: input } => {
            let origin = parse_origin(&input).map_err(|source| SitesError::InvalidOrigin {
                input: input.clone(),
                source,
            })?;
            let added = store.remember(&origin, time::OffsetDateTime::now_utc())?;
            if args.json {
                println!(
                    "{}",
                    serde_json::json!({ "allowed": origin.as_str(), "new": added })
                );
            } else if added {
                println!("allowed: {origin}");
            } else {
                println!("already allowed: {origin}");
            }
        }
        SitesCommand::Revoke { all: true, .. } => {
            let removed = store.revoke_all()?;
            let origins: Vec<&str> = removed.iter().map(|s| s.origin.as_str()).collect();
            if args.json {
                println!("{}", serde_json::json!({ "revoked": origins }));
            } else if origins.is_empty() {
                println!("No site was remembered.");
            } else {
                for origin in &origins {
                    println!("revoked: {origin}");
                }
            }
        }
        SitesCommand::Revoke { origin, all: false } => {
            let input = origin.unwrap_or_default();
            let origin = parse_origin(&input).map_err(|source| SitesError::InvalidOrigin {
                input: input.clone(),
                source,
            })?;
            if !store.revoke(&origin)? {
                return Err(SitesError::NotRemembered(origin.to_string()));
            }
            if args.json {
                println!("{}", serde_json::json!({ "revoked": [origin.as_str()] }));
            } else {
                println!("revoked: {origin}");
            }
        }
    }
    Ok(())
}

/// Runs `eid-agent sites ...` and reports a failure like the rest of the CLI: the exit code for
/// `main`.
pub fn main(args: SitesArgs) -> ExitCode {
    let json = args.json;
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            e.report().print(json);
            ExitCode::from(2)
        }
    }
}

fn print_list(sites: &[Site]) {
    if sites.is_empty() {
        println!("No site is remembered: every website asks before it uses the card.");
        return;
    }
    let width = sites
        .iter()
        .map(|s| s.origin.as_str().len())
        .max()
        .unwrap_or(0);
    for site in sites {
        let granted = site
            .granted
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_else(|_| site.granted.to_string());
        let scope = match &site.operations {
            None => String::new(),
            Some(ops) => format!("  (only: {})", ops.join(", ")),
        };
        println!("{:width$}  since {granted}{scope}", site.origin.as_str());
    }
}
