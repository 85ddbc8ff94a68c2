//! The `eid-enrolment` commands: `serve`, `operator add`, `bindings list`, `outbox`.

use std::io::{BufRead, Write};
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;

use crate::app::App;
use crate::config::{
    self, BindingsCommand, Cli, Command, ConfigError, DbArgs, OperatorCommand, OutboxArgs,
    ServeArgs,
};
use crate::delivery;
use crate::operators;
use crate::store::Store;
use crate::{server, tls};

/// Logs to stderr; the filter is `EID_LOG` (default `info`, with the TLS internals quieter).
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("EID_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,rustls=warn,sqlx=warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .try_init();
}

/// The program: parses the command line, runs the command, maps failures to exit status 1
/// (configuration) with one clear line on stderr.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("eid-enrolment: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => serve(&args).await,
            Command::Operator(OperatorCommand::Add {
                name,
                password_stdin,
                db,
            }) => operator_add(&name, password_stdin, &db).await,
            Command::Bindings(BindingsCommand::List { json, db }) => bindings_list(json, &db).await,
            Command::Outbox(args) => outbox(&args),
        }
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("eid-enrolment: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(args: &ServeArgs) -> Result<(), ConfigError> {
    let data_dir = args.db.data_dir()?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| ConfigError(format!("--listen {}: {e}", args.listen)))?;
    let addr = listener
        .local_addr()
        .map_err(|e| ConfigError(format!("--listen {}: {e}", args.listen)))?;
    let origin = config::origin(args.origin.as_deref(), addr.port())?;
    let files = tls::tls_files(args.tls_cert.as_deref(), args.tls_key.as_deref(), &data_dir)?;
    let tls_config = tls::server_config(&files)?;
    let app = Arc::new(App::build(args, origin.clone(), &data_dir).await?);
    tracing::info!(
        database = app.store.backend(),
        tls_cert = %files.cert.display(),
        anchors = app.tokens.trust_anchor_count(),
        desk = app.documents.is_some(),
        "configured"
    );
    let shutdown = server::shutdown_signal();
    if let Some(path) = &args.port_file {
        // Written atomically, so a reader never sees a half-written port.
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, addr.port().to_string())
            .and_then(|()| std::fs::rename(&tmp, path))
            .map_err(|e| ConfigError(format!("--port-file {}: {e}", path.display())))?;
    }
    let host = if addr.ip().is_loopback() || addr.ip().is_unspecified() {
        "localhost".to_owned()
    } else {
        addr.ip().to_string()
    };
    println!(
        "eid-enrolment: listening on https://{host}:{}/ (origin {origin})",
        addr.port()
    );
    let _ = std::io::stdout().flush();
    // Expired sessions, nonces and codes are deleted every few minutes (they are refused
    // when expired anyway; this keeps the tables small).
    let purger = {
        let store = app.store.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(300));
            loop {
                tick.tick().await;
                match store.purge_expired(now()).await {
                    Ok(n) if n > 0 => tracing::debug!(rows = n, "expired rows purged"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "purging expired rows failed"),
                }
            }
        })
    };
    server::serve(listener, tls_config, app, shutdown).await;
    purger.abort();
    tracing::info!("stopped");
    Ok(())
}

async fn open_store(db: &DbArgs) -> Result<Store, ConfigError> {
    let url = db.database_url()?;
    Store::open(&url)
        .await
        .map_err(|e| ConfigError(format!("database: {e}")))
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

async fn operator_add(name: &str, password_stdin: bool, db: &DbArgs) -> Result<(), ConfigError> {
    if name.is_empty()
        || name.len() > 64
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '@'))
    {
        return Err(ConfigError(
            "an operator name is 1 to 64 letters, digits, '.', '-', '_' or '@'".into(),
        ));
    }
    if !password_stdin {
        return Err(ConfigError(
            "give the password on stdin with --password-stdin (never on the command line)".into(),
        ));
    }
    let mut line = zeroize::Zeroizing::new(String::new());
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| ConfigError(format!("reading the password: {e}")))?;
    let password = line.trim_end_matches(['\r', '\n']);
    if password.chars().count() < operators::MIN_PASSWORD_LEN {
        return Err(ConfigError(format!(
            "the password must have at least {} characters",
            operators::MIN_PASSWORD_LEN
        )));
    }
    let phc = operators::hash_password(password, false).map_err(ConfigError)?;
    let store = open_store(db).await?;
    store
        .add_operator(name, &phc, now())
        .await
        .map_err(|e| ConfigError(format!("database: {e}")))?;
    println!("operator {name} saved");
    Ok(())
}

async fn bindings_list(json: bool, db: &DbArgs) -> Result<(), ConfigError> {
    let store = open_store(db).await?;
    let bindings = store
        .list_bindings()
        .await
        .map_err(|e| ConfigError(format!("database: {e}")))?;
    if json {
        let text = serde_json::to_string_pretty(&bindings)
            .map_err(|e| ConfigError(format!("JSON: {e}")))?;
        println!("{text}");
        return Ok(());
    }
    if bindings.is_empty() {
        println!("no bindings");
        return Ok(());
    }
    println!(
        "{:<32} {:<12} {:<28} {:<24} {:<9} {:>8}",
        "identity", "kind", "name", "contact", "status", "failures"
    );
    for b in &bindings {
        println!(
            "{:<32} {:<12} {:<28} {:<24} {:<9} {:>8}",
            b.identity_key, b.identity_kind, b.display_name, b.contact, b.status, b.failures
        );
    }
    Ok(())
}

fn outbox(args: &OutboxArgs) -> Result<(), ConfigError> {
    let path = match &args.file {
        Some(f) => f.clone(),
        None => {
            let dir = match &args.data_dir {
                Some(d) => d.clone(),
                None => config::default_data_dir()?,
            };
            dir.join("outbox.jsonl")
        }
    };
    if !path.exists() {
        println!(
            "the outbox is empty ({} does not exist yet)",
            path.display()
        );
        return Ok(());
    }
    let entries = delivery::read_outbox(&path)
        .map_err(|e| ConfigError(format!("{}: {e}", path.display())))?;
    if entries.is_empty() {
        println!("the outbox is empty");
    }
    for e in entries {
        println!(
            "{}  {:<9} {:<6} {:<28} {}",
            e.time, e.purpose, e.channel, e.to, e.code
        );
    }
    Ok(())
}
