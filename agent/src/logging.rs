//! Where the agent's logs go.
//!
//! Logs go to stderr: `EID_LOG` filters them (default: warnings; `run` also logs each request and
//! card operation), `EID_LOG_FORMAT=json` makes them one JSON object per line. They never carry a
//! PIN, a CAN or an APDU's data (APDUs: header, length and status word only).

/// Installs the global subscriber. `long_running` is true for `eid-agent run`.
pub fn init(long_running: bool) {
    let default_filter = if long_running {
        "warn,eid_agent=info"
    } else {
        "warn"
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("EID_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if std::env::var("EID_LOG_FORMAT").is_ok_and(|f| f == "json") {
        logs.json().init();
    } else {
        logs.init();
    }
}
