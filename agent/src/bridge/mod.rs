//! The localhost HTTPS bridge: websites reach the card only through it.
//!
//! - `server`: TLS, HTTP, and the checks every request passes (Host, Origin, CORS, preflight).
//! - `policy`: those checks as pure functions, and the PIN rate limit.
//! - `routes`: API v1 (docs/bridge-openapi.json).
//! - `worker`: the card queue: one operation at a time, consent and PIN dialogs, timeouts,
//!   cancellation when the client goes away.
//! - `readers`: the reader table and the event stream, kept by the reader monitor.
//! - `error`: every error's wire code, status and remedy, in one place.
//!
//! The bridge calls workflows (`crate::workflows`); it does not contain them.

mod connect;
mod emrtd_result;
pub mod error;
mod nfc;
pub mod policy;
pub mod readers;
pub mod routes;
pub mod server;
pub mod worker;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::config::{AdminPolicy, Config};
use crate::consent::SiteStore;
use crate::prompt::Prompt;
use readers::Readers;
use worker::{CardQueue, WorkerEnv};

/// What every request handler shares.
#[derive(Debug)]
pub struct Shared {
    pub port: u16,
    pub dev_mode: bool,
    pub policy: AdminPolicy,
    pub sites: Arc<SiteStore>,
    pub readers: Arc<Readers>,
    pub queue: CardQueue,
    pub pin_limit: policy::PinRateLimit,
    pub body_limit: u64,
    /// Kiosk mode: only the desk's origins, sessions that idle out, results naming their session.
    pub kiosk: Option<crate::kiosk::Kiosk>,
    /// Kiosk mode: the audit log (refused origins are recorded by the server).
    pub audit: Option<Arc<crate::audit::AuditLog>>,
    /// The NFC readers' monitors, stopped with the bridge.
    pub(crate) nfc: Arc<nfc::NfcReaders>,
}

/// Why the bridge could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("port {port} on {address} is in use (is another eid-agent running?): {source}")]
    PortInUse {
        address: IpAddr,
        port: u16,
        source: std::io::Error,
    },
    #[error("cannot listen on {address}: {source}")]
    Bind {
        address: SocketAddr,
        source: std::io::Error,
    },
    #[error("TLS: {0}")]
    Tls(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Binds every configured address on the configured port (port 0: one free port, the same for
/// every address when possible). An address family the machine lacks (no IPv6) is skipped with
/// a warning; a port in use is an error.
pub async fn bind(addresses: &[IpAddr], port: u16) -> Result<Vec<TcpListener>, StartError> {
    let mut listeners = Vec::new();
    let mut port = port;
    for address in addresses {
        match TcpListener::bind(SocketAddr::new(*address, port)).await {
            Ok(listener) => {
                if port == 0 {
                    port = listener.local_addr()?.port();
                }
                listeners.push(listener);
            }
            Err(source) if source.kind() == std::io::ErrorKind::AddrInUse => {
                return Err(StartError::PortInUse {
                    address: *address,
                    port,
                    source,
                });
            }
            Err(source) if !listeners.is_empty() || addresses.len() > 1 => {
                tracing::warn!(%address, error = %source, "address skipped");
            }
            Err(source) => {
                return Err(StartError::Bind {
                    address: SocketAddr::new(*address, port),
                    source,
                });
            }
        }
    }
    if listeners.is_empty() {
        return Err(StartError::Io(std::io::Error::other(
            "no address to listen on",
        )));
    }
    Ok(listeners)
}

/// A bridge ready to serve: the shared state, with its reader monitor and card worker running.
pub struct Bridge {
    pub shared: Arc<Shared>,
}

impl std::fmt::Debug for Bridge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bridge")
            .field("port", &self.shared.port)
            .finish()
    }
}

impl Bridge {
    /// Starts the reader monitor and the card worker for `config`, with `port` the port
    /// actually bound, `prompt` the dialogs and `kiosk` kiosk mode (`None`: the desktop agent).
    pub fn start(
        config: &Config,
        port: u16,
        prompt: Arc<dyn Prompt>,
        sites: Arc<SiteStore>,
        kiosk: Option<crate::kiosk::Kiosk>,
        audit: Option<Arc<crate::audit::AuditLog>>,
    ) -> Result<Bridge, StartError> {
        let readers = Readers::new();
        if let Some(audit) = &audit {
            readers.set_audit(Arc::clone(audit));
        }
        readers.start_monitor(Duration::from_millis(500))?;
        // agent.toml `nfc_devices`, then EID_NFC_DEVICES; NFC works with or without pcscd.
        let nfc = nfc::NfcReaders::start(&readers, &config.all_nfc_devices());
        let env = WorkerEnv {
            prompt,
            sites: Arc::clone(&sites),
            policy: config.policy.clone(),
            readers: Arc::clone(&readers),
            queue_timeout: config.queue_timeout,
            csca: None,
            citizen_card_anchors: None,
            denials: std::sync::Mutex::new(std::collections::HashMap::new()),
            kiosk: kiosk.clone(),
            audit: audit.clone(),
            nfc: Arc::clone(&nfc),
        };
        let wait_limit = config
            .queue_timeout
            .saturating_add(config.operation_timeout);
        let queue = CardQueue::start(env, config.queue_capacity, wait_limit)?;
        Ok(Bridge {
            shared: Arc::new(Shared {
                port,
                dev_mode: config.dev_mode,
                policy: config.policy.clone(),
                sites,
                readers,
                queue,
                pin_limit: policy::PinRateLimit::new(config.pin_rate_burst, config.pin_rate_period),
                body_limit: config.body_limit,
                kiosk,
                audit,
                nfc,
            }),
        })
    }

    /// Stops the reader monitor and the card worker (after the current job, which is
    /// cancelled: every session ends with `agent-stopping`).
    pub fn stop(&self) {
        self.shared.queue.close();
        self.shared
            .readers
            .end_all(readers::EndReason::AgentStopping);
        self.shared.readers.stop();
        self.shared.nfc.stop();
    }
}
