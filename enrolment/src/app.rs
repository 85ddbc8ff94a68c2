//! The service's shared state, built once from the validated configuration.

use std::path::PathBuf;
use std::sync::Arc;

use eid_protocols::webeid::{EmrtdValidator, Origin, TokenValidator};
use http::HeaderValue;

use crate::config::{self, ConfigError, ServeArgs};
use crate::delivery::{CodeSender, DevOutbox, HttpSmsGateway, Router, SmtpSender};
use crate::operators;
use crate::pages;
use crate::secrets::{CodeKey, PinHasher};
use crate::store::{CodePolicy, Store};

/// Largest JSON body of a POST (the contract's 64 KiB)...
pub const MAX_BODY: usize = 64 * 1024;
/// ...except the desk's eMRTD result, which carries the face image (DG2): a JPEG 2000 face of a
/// real passport is 15 to 100 KB, base64 adds a third.
pub const MAX_DOCUMENT_BODY: usize = 1024 * 1024;

/// Everything a request handler needs.
pub struct App {
    pub store: Store,
    pub origin: Origin,
    pub bridge_url: String,
    /// The Content-Security-Policy header value.
    pub csp: HeaderValue,
    pub tokens: TokenValidator,
    /// `None` without `--csca`: the desk then refuses documents (validator-config).
    pub documents: Option<EmrtdValidator>,
    pub code_key: CodeKey,
    pub sender: Arc<dyn CodeSender>,
    pub outbox: Option<Arc<DevOutbox>>,
    pub pin_hasher: Arc<PinHasher>,
    pub code_policy: CodePolicy,
    pub nonce_ttl_secs: i64,
    pub session_ttl_secs: u32,
    pub max_failures: u32,
    pub fast_hashes: bool,
    /// A password hash verified against when the operator is unknown (same time as a real one).
    pub operator_decoy: String,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("origin", &self.origin)
            .field("bridge_url", &self.bridge_url)
            .field("tokens", &self.tokens)
            .field("documents", &self.documents.is_some())
            .field("sender", &self.sender)
            .finish_non_exhaustive()
    }
}

/// The sender the handlers use, and the development outbox (for its page) when configured.
type Senders = (Arc<dyn CodeSender>, Option<Arc<DevOutbox>>);

/// The code senders of the configuration: SMTP for e-mail and the SMS gateway for phones when
/// given, the development outbox for whatever else (or everything). Without any of them the
/// service cannot deliver a code, which is refused at start.
fn senders(args: &ServeArgs) -> Result<Senders, ConfigError> {
    let outbox = match &args.outbox {
        // The outbox page shows every code to whoever can load it: a development aid that must
        // not be reachable from another machine.
        Some(_) if !args.listen.ip().is_loopback() => {
            return Err(ConfigError(format!(
                "--outbox is for development: it shows the one-time codes at /dev/outbox, so \
                 the service must listen on a loopback address, not {}",
                args.listen
            )));
        }
        Some(path) => {
            Some(Arc::new(DevOutbox::new(path).map_err(|e| {
                ConfigError(format!("--outbox {}: {e}", path.display()))
            })?))
        }
        None => None,
    };
    let email: Option<Arc<dyn CodeSender>> = match (&args.smtp, &args.smtp_from) {
        (Some(url), Some(from)) => Some(Arc::new(
            SmtpSender::new(url, from).map_err(|e| ConfigError(format!("--smtp: {e}")))?,
        )),
        _ => outbox.clone().map(|o| o as Arc<dyn CodeSender>),
    };
    let sms: Option<Arc<dyn CodeSender>> = match (&args.sms_gateway, &args.sms_token_file) {
        (Some(url), Some(token_file)) => {
            let token = read_token(token_file)?;
            Some(Arc::new(
                HttpSmsGateway::new(url, token)
                    .map_err(|e| ConfigError(format!("--sms-gateway: {e}")))?,
            ))
        }
        _ => outbox.clone().map(|o| o as Arc<dyn CodeSender>),
    };
    if email.is_none() && sms.is_none() {
        return Err(ConfigError(
            "no way to deliver one-time codes: give --outbox FILE (development), --smtp URL \
             --smtp-from ADDR, or --sms-gateway URL --sms-token-file FILE"
                .into(),
        ));
    }
    Ok((Arc::new(Router { sms, email }), outbox))
}

fn read_token(path: &PathBuf) -> Result<zeroize::Zeroizing<String>, ConfigError> {
    let text = zeroize::Zeroizing::new(
        std::fs::read_to_string(path)
            .map_err(|e| ConfigError(format!("--sms-token-file {}: {e}", path.display())))?,
    );
    let token = text.trim();
    if token.is_empty() {
        return Err(ConfigError(format!(
            "--sms-token-file {} is empty",
            path.display()
        )));
    }
    Ok(zeroize::Zeroizing::new(token.to_owned()))
}

impl App {
    /// Builds the state for a service whose origin is known (the port may come from the
    /// listener). Loads trust anchors, opens the database, the code key and the senders.
    pub async fn build(
        args: &ServeArgs,
        origin: Origin,
        data_dir: &std::path::Path,
    ) -> Result<App, ConfigError> {
        let tokens = config::token_validator(&origin, &args.card_trust)?;
        let documents = match config::csca_store(&args.csca)? {
            Some(store) => Some(
                EmrtdValidator::new(store, origin.as_str())
                    .map_err(|e| ConfigError(format!("eMRTD validator: {e}")))?,
            ),
            None => {
                tracing::warn!("no --csca: the desk will refuse every document");
                None
            }
        };
        let bridge_origin = config::bridge_origin(&args.bridge_url)?;
        let csp = HeaderValue::from_str(&pages::content_security_policy(&bridge_origin))
            .map_err(|e| ConfigError(format!("--bridge-url: {e}")))?;
        let (sender, outbox) = senders(args)?;
        let url = args.db.database_url()?;
        let store = Store::open(&url)
            .await
            .map_err(|e| ConfigError(format!("database: {e}")))?;
        let code_key = CodeKey::load_or_create(&data_dir.join("code-key"))
            .map_err(|e| ConfigError(format!("code key: {e}")))?;
        let pin_hasher = Arc::new(if args.fast_pin_hash {
            tracing::warn!("--fast-pin-hash: cheap PIN hashes, for tests only");
            PinHasher::for_tests()
        } else {
            PinHasher::new()
        });
        let code_policy = CodePolicy {
            ttl_secs: args.code_ttl_secs.into(),
            ..CodePolicy::default()
        };
        let operator_decoy = operators::hash_password("decoy password", args.fast_pin_hash)
            .map_err(|e| ConfigError(format!("password hashing: {e}")))?;
        Ok(App {
            store,
            origin,
            bridge_url: bridge_origin,
            csp,
            tokens,
            documents,
            code_key,
            sender,
            outbox,
            pin_hasher,
            code_policy,
            nonce_ttl_secs: args.nonce_ttl_secs.into(),
            session_ttl_secs: args.session_ttl_secs,
            max_failures: args.max_failures.max(1),
            fast_hashes: args.fast_pin_hash,
            operator_decoy,
        })
    }
}
