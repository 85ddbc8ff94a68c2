//! `eid-agent run`: the long-running agent. It watches readers and serves the localhost
//! HTTPS bridge until interrupted (Ctrl-C, SIGTERM, or "Quit" in the tray menu), then shuts down
//! gracefully. In a desktop session it shows the tray icon (`crate::tray`) unless `--no-tray`;
//! its log also goes to the log folder (`crate::logging`).

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::bridge::{self, Bridge};
use crate::config::Config;
use crate::consent::SiteStore;
use crate::prompt::Prompt;
use crate::prompt::pinentry::Pinentry;

/// Options of `eid-agent run`.
#[derive(clap::Args, Debug, Default)]
pub struct RunArgs {
    #[command(flatten)]
    pub config: crate::config::ConfigArgs,
    /// Address to listen on, repeatable (default 127.0.0.1 and ::1). Loopback only.
    #[arg(long = "listen")]
    pub listen: Vec<IpAddr>,
    /// The pinentry program for consent and PIN dialogs (default: found in PATH; env
    /// EID_AGENT_PINENTRY).
    #[arg(long)]
    pub pinentry: Option<PathBuf>,
    /// Write the bound port to this file once listening (for scripts and tests that use
    /// `--port 0`).
    #[arg(long)]
    pub port_file: Option<PathBuf>,
    /// Print reader and card events as JSON lines instead of text.
    #[arg(long)]
    pub json: bool,
    /// No tray icon, even in a desktop session.
    #[arg(long)]
    pub no_tray: bool,
    /// Kiosk mode for an attended desk: only the desk's page origins from the administrator's
    /// policy ([kiosk] section), no consent dialogs, card sessions that end on removal or idle
    /// timeout, an audit log. Refuses to start without that section. Also on with
    /// `[kiosk] enabled = true`.
    #[arg(long)]
    pub kiosk: bool,
}

/// Why `run` stopped.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("configuration: {0}")]
    Config(String),
    #[error("local TLS certificate: {0}")]
    Tls(String),
    #[error("{0}")]
    Kiosk(#[from] crate::kiosk::KioskError),
    #[error("kiosk audit log: {0}")]
    Audit(#[from] crate::audit::AuditError),
    #[error(transparent)]
    Start(#[from] bridge::StartError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl RunError {
    pub fn code(&self) -> &'static str {
        match self {
            RunError::Config(_) => "config-invalid",
            RunError::Tls(_) => "tls-material",
            RunError::Kiosk(e) => e.code(),
            RunError::Audit(e) => e.code(),
            RunError::Start(bridge::StartError::PortInUse { .. }) => "port-in-use",
            RunError::Start(_) | RunError::Io(_) => "bridge-start-failed",
        }
    }
}

impl RunError {
    /// What to do, for the errors that know it better than their code's generic advice.
    pub fn remedy(&self) -> Option<&'static str> {
        match self {
            RunError::Kiosk(e) => Some(e.remedy()),
            RunError::Audit(e) => Some(e.remedy()),
            _ => None,
        }
    }
}

/// Runs the agent until interrupted.
pub fn run(args: RunArgs) -> Result<(), RunError> {
    let mut config = Config::load(&args.config).map_err(|e| RunError::Config(e.to_string()))?;
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }
    if !args.listen.is_empty() {
        if let Some(bad) = args.listen.iter().find(|a| !a.is_loopback()) {
            return Err(RunError::Config(format!(
                "--listen {bad}: the bridge listens on loopback addresses only"
            )));
        }
        config.listen = args.listen.clone();
    }
    if let Some(p) = &args.pinentry {
        config.pinentry = Some(p.clone());
    }
    // Kiosk mode is checked before anything is created (TLS material, listeners): a desk whose
    // policy is incomplete must not come up as a desktop agent, nor half-way.
    let kiosk = if crate::kiosk::Kiosk::wanted(&config, args.kiosk) {
        let kiosk = crate::kiosk::Kiosk::from_policy(&config)?;
        tracing::info!(desk = %kiosk.desk, origins = kiosk.origins.len(), "kiosk mode");
        Some(kiosk)
    } else {
        None
    };
    // A desk that cannot account for its operations does not serve them.
    let audit = match &kiosk {
        Some(k) => Some(Arc::new(crate::audit::AuditLog::open(
            &k.audit_dir,
            &k.audit_key_file,
            &k.desk,
            k.audit_max_bytes,
        )?)),
        None => None,
    };

    // The machine's certificate (install --system) when the user has no CA of their own and may
    // read it; otherwise the user's own, created or renewed here.
    let (tls_dir, material) = eid_installer::tls::agent_material(
        &config.tls_dir(),
        std::path::Path::new(eid_installer::tls::SYSTEM_TLS_DIR),
        time::OffsetDateTime::now_utc(),
    )
    .map_err(|e| RunError::Tls(e.to_string()))?;
    let machine_ca = tls_dir == std::path::Path::new(eid_installer::tls::SYSTEM_TLS_DIR);
    if material.ca_created || machine_ca {
        register_new_ca(&args.config, &material);
    }
    let tls = bridge::server::tls_config(material.cert_chain_der(), material.key_der())
        .map_err(|e| RunError::Tls(e.to_string()))?;
    let prompt: Arc<dyn Prompt> = Arc::new(pinentry(&config));
    let sites = Arc::new(SiteStore::in_config_dir(&config.config_dir));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listeners = bridge::bind(&config.listen, config.port).await?;
        let port = listeners
            .first()
            .map(|l| l.local_addr().map(|a| a.port()))
            .transpose()?
            .unwrap_or(config.port);
        let bridge = Bridge::start(
            &config,
            port,
            prompt,
            Arc::clone(&sites),
            kiosk.clone(),
            audit.clone(),
        )?;
        agent_event(audit.as_deref(), "agent-start");
        let quit = Arc::new(tokio::sync::Notify::new());
        let tray = if args.no_tray {
            None
        } else {
            crate::tray::Tray::start(
                crate::tray::TrayOptions {
                    readers: Arc::clone(&bridge.shared.readers),
                    activity: bridge.shared.queue.activity(),
                    sites,
                    admin_allowed: config
                        .policy
                        .allow
                        .iter()
                        .map(|o| o.as_str().to_owned())
                        .collect(),
                    log_dir: crate::logging::log_dir(),
                    doctor_config: crate::config::ConfigArgs {
                        port: Some(port),
                        ..args.config.clone()
                    },
                    quit: Arc::clone(&quit),
                    kiosk_desk: kiosk.as_ref().map(|k| k.desk.clone()),
                },
                &tokio::runtime::Handle::current(),
            )
        };
        if let Some(file) = &args.port_file {
            std::fs::write(file, port.to_string())?;
        }
        let leaf_until = material
            .leaf_not_after
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        if args.json {
            println!(
                "{}",
                serde_json::json!({
                    "kind": "listening",
                    "url": format!("https://127.0.0.1:{port}"),
                    "port": port,
                    "ca": tls_dir.join("ca.pem"),
                    "leafSpkiSha256": material.leaf_spki_sha256_b64,
                    "devMode": config.dev_mode,
                    "kiosk": kiosk.as_ref().map(|k| serde_json::json!({ "desk": k.desk })),
                })
            );
        } else {
            println!("eID agent bridge on https://127.0.0.1:{port} (and https://localhost:{port})");
            println!(
                "  TLS: local CA {} (leaf valid until {leaf_until}){}",
                tls_dir.join("ca.pem").display(),
                if material.created {
                    ", created now"
                } else {
                    ""
                }
            );
            if config.dev_mode {
                println!("  development mode: http pages on loopback origins are accepted");
            }
            if let Some(k) = &kiosk {
                println!(
                    "  kiosk mode: desk {}, pages {}",
                    k.desk,
                    k.origins
                        .iter()
                        .map(|o| o.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
        }
        flush();
        let shutdown = async {
            tokio::select! {
                _ = shutdown_signal() => {}
                _ = quit.notified() => {}
            }
            tracing::info!("shutting down");
        };
        bridge::server::serve(listeners, tls, Arc::clone(&bridge.shared), shutdown).await;
        bridge.stop();
        agent_event(audit.as_deref(), "agent-stop");
        if let Some(tray) = tray {
            tray.stop();
        }
        if !args.json {
            println!("eID agent stopped");
        }
        Ok::<(), RunError>(())
    })?;
    // The card worker may be inside a card operation; it ends on its own, the process does not
    // wait for it.
    runtime.shutdown_timeout(Duration::from_secs(1));
    Ok(())
}

/// A CA created just now is in no trust store yet, and the machine's CA (`install --system`) is in
/// the system store, which Chromium on Linux does not read. The user's own agent (the default
/// configuration directory) registers it with the user's NSS databases, as `eid-agent install`
/// does (idempotent: a CA already trusted is left as it is), so that someone who installed the
/// package and logged in, or a desk user, needs no second step. An agent
/// started on another configuration directory (tests, a second agent) leaves the user's browsers
/// alone: it would otherwise replace the CA they trust.
fn register_new_ca(args: &crate::config::ConfigArgs, material: &eid_installer::tls::LocalTls) {
    let default_dir =
        args.config_dir.is_none() && std::env::var_os(crate::config::ENV_CONFIG_DIR).is_none();
    let (Some(home), Some(ca)) = (dirs::home_dir(), material.ca_der()) else {
        return;
    };
    if !default_dir {
        tracing::info!(
            "new local CA not registered with the browsers (not the default configuration directory); run eid-agent install"
        );
        return;
    }
    for step in eid_installer::register_user_trust(&home, ca) {
        tracing::info!(step = %step.step, status = ?step.status, "{}", step.detail);
    }
}

/// The agent's own start and stop in the kiosk's audit log.
fn agent_event(audit: Option<&crate::audit::AuditLog>, operation: &'static str) {
    let Some(audit) = audit else {
        return;
    };
    let event = crate::audit::AuditEvent {
        origin: None,
        reader: None,
        session: None,
        operation,
        result: "ok",
        document: None,
    };
    if let Err(e) = audit.record(event) {
        tracing::error!(code = e.code(), error = %e, "audit log not written");
    }
}

fn pinentry(config: &Config) -> Pinentry {
    let mut pinentry = match &config.pinentry {
        Some(program) => Pinentry::new(program),
        None => Pinentry::discover().unwrap_or_else(|e| {
            tracing::warn!(error = %e, "no pinentry program: dialogs will fail with prompt-unavailable");
            Pinentry::new("pinentry")
        }),
    };
    pinentry.timeout = config.prompt_timeout;
    pinentry
}

fn flush() {
    use std::io::Write;
    let _ = std::io::stdout().flush();
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
