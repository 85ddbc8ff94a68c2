//! API v1 routes (docs/bridge-openapi.json). Requests reach these filters only after the Host
//! and Origin checks of `server`; the checked [`Caller`] is in the request's extensions.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use eid_card::emrtd::AccessKey;
use eid_card::pteid::{CertKind, HashAlg};
use eid_protocols::webeid;
use futures_util::StreamExt as _;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use warp::{Filter, Rejection, Reply};
use zeroize::Zeroizing;

use super::Shared;
use super::error::ApiError;
use super::policy::Caller;
use super::readers::Target;
use super::worker::Operation;
use crate::consent::{Decision, decide};

/// The API document, also kept in the repository.
pub const OPENAPI: &str = include_str!("../../../docs/bridge-openapi.json");

/// An [`ApiError`] travelling as a warp rejection.
#[derive(Debug)]
struct Refused(ApiError);

impl warp::reject::Reject for Refused {}

fn refuse(e: ApiError) -> Rejection {
    warp::reject::custom(Refused(e))
}

/// All routes, errors included, as one filter that always answers.
pub fn routes(
    shared: Arc<Shared>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = Infallible> + Clone + Send + Sync + 'static
{
    let with_shared = {
        let shared = Arc::clone(&shared);
        warp::any().map(move || Arc::clone(&shared))
    };
    let caller = warp::ext::get::<Caller>();

    let status = warp::path!("v1" / "status")
        .and(warp::get())
        .and(with_shared.clone())
        .and(caller)
        .map(|shared: Arc<Shared>, caller: Caller| status(&shared, &caller).into_response());

    let openapi = warp::path!("v1" / "openapi.json").and(warp::get()).map(|| {
        warp::reply::with_header(OPENAPI, "content-type", "application/json").into_response()
    });

    let events = warp::path!("v1" / "events")
        .and(warp::get())
        .and(with_shared.clone())
        .and(caller)
        .and_then(|shared: Arc<Shared>, caller: Caller| async move {
            events(&shared, &caller).map_err(refuse)
        });

    let certificate = operation(
        warp::path!("v1" / "certificate"),
        &shared,
        certificate_operation,
    );
    let authenticate = operation(
        warp::path!("v1" / "authenticate"),
        &shared,
        authenticate_operation,
    );
    let sign = operation(warp::path!("v1" / "sign"), &shared, sign_operation);
    let identity = operation(warp::path!("v1" / "identity"), &shared, identity_operation);
    let emrtd = operation(
        warp::path!("v1" / "emrtd" / "read"),
        &shared,
        emrtd_operation,
    );

    status
        .or(openapi)
        .unify()
        .or(events)
        .unify()
        .or(certificate)
        .unify()
        .or(authenticate)
        .unify()
        .or(sign)
        .unify()
        .or(identity)
        .unify()
        .or(emrtd)
        .unify()
        .recover(|rejection: Rejection| async move {
            Ok::<_, Infallible>(rejection_to_error(&rejection).into_response())
        })
        .unify()
}

/// A card operation's route: POST `path` with a JSON body `T`, turned into an [`Operation`]
/// by `to_operation` (which checks what the types cannot), then queued for the card.
fn operation<T, P>(
    path: P,
    shared: &Arc<Shared>,
    to_operation: fn(T) -> Result<Operation, ApiError>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = Rejection>
+ Clone
+ Send
+ Sync
+ 'static
+ use<T, P>
where
    T: DeserializeOwned + Targeted + Send + 'static,
    P: Filter<Extract = (), Error = Rejection> + Clone + Send + Sync + 'static,
{
    let with_shared = {
        let shared = Arc::clone(shared);
        warp::any().map(move || Arc::clone(&shared))
    };
    path.and(warp::post())
        .and(with_shared)
        .and(warp::ext::get::<Caller>())
        .and(warp::header::optional::<String>("content-type"))
        .and(warp::body::content_length_limit(shared.body_limit))
        .and(warp::body::bytes())
        .and_then(
            move |shared: Arc<Shared>,
                  caller: Caller,
                  content_type: Option<String>,
                  body: Bytes| async move {
                let request: T = parse(content_type, &body)?;
                let target = request.target().map_err(refuse)?;
                let operation = to_operation(request).map_err(refuse)?;
                card_operation(&shared, &caller, operation, &target).await
            },
        )
}

fn certificate_operation(request: CertificateRequest) -> Result<Operation, ApiError> {
    Ok(Operation::Certificate(match request.kind {
        CertificateType::Authentication => CertKind::Authentication,
        CertificateType::Signing => CertKind::Signature,
    }))
}

fn authenticate_operation(request: AuthenticateRequest) -> Result<Operation, ApiError> {
    check_nonce(&request.challenge_nonce)?;
    Ok(Operation::Authenticate {
        nonce: request.challenge_nonce,
    })
}

fn sign_operation(request: SignRequest) -> Result<Operation, ApiError> {
    let certificate = B64
        .decode(request.certificate.as_bytes())
        .map_err(|_| ApiError::bad_request("certificate is not base64"))?;
    let digest = B64
        .decode(request.hash.as_bytes())
        .map_err(|_| ApiError::bad_request("hash is not base64"))?;
    // SHA-1 and SHA-224 are refused on purpose.
    let hash = HashAlg::from_name(&request.hash_function).ok_or_else(|| {
        ApiError::bad_request(format!(
            "hashFunction {:?}: use SHA-256, SHA-384 or SHA-512",
            request.hash_function
        ))
    })?;
    if digest.len() != hash.digest_len() {
        return Err(ApiError::bad_request(format!(
            "hash has {} bytes; {} has {}",
            digest.len(),
            request.hash_function,
            hash.digest_len()
        )));
    }
    Ok(Operation::Sign {
        certificate,
        hash,
        digest,
    })
}

fn identity_operation(request: IdentityRequest) -> Result<Operation, ApiError> {
    if let Some(fields) = &request.fields
        && (fields.len() > 64 || fields.iter().any(|f| f.len() > 64))
    {
        return Err(ApiError::bad_request("too many or too long field names"));
    }
    Ok(Operation::Identity {
        fields: request.fields,
        photo: request.photo,
        address: request.address,
    })
}

fn emrtd_operation(request: EmrtdRequest) -> Result<Operation, ApiError> {
    check_nonce(&request.challenge_nonce)?;
    // Neither: the agent asks the CAN in its own dialog.
    let key = match (&request.can, &request.mrz) {
        (Some(can), None) => Some(AccessKey::can(can)),
        (None, Some(mrz)) => Some(AccessKey::parse_mrz(mrz)),
        (None, None) => None,
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request("give at most one of can and mrz"));
        }
    }
    .transpose()
    .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let mut data_groups = request.data_groups.clone().unwrap_or_else(|| vec![1, 2]);
    if data_groups.iter().any(|n| !(1..=16).contains(n)) || data_groups.len() > 16 {
        return Err(ApiError::bad_request("data groups are 1 to 16"));
    }
    data_groups.sort_unstable();
    data_groups.dedup();
    Ok(Operation::Emrtd {
        key,
        data_groups,
        nonce: request.challenge_nonce.clone(),
    })
}

fn rejection_to_error(rejection: &Rejection) -> ApiError {
    if let Some(Refused(e)) = rejection.find::<Refused>() {
        return e.clone();
    }
    if rejection.is_not_found() {
        return ApiError::new("not-found", "no such endpoint");
    }
    if rejection.find::<warp::reject::PayloadTooLarge>().is_some() {
        return ApiError::new("body-too-large", "the request body is too large");
    }
    if rejection.find::<warp::reject::LengthRequired>().is_some() {
        return ApiError::bad_request("send the body with a Content-Length");
    }
    if rejection.find::<warp::reject::MethodNotAllowed>().is_some() {
        return ApiError::new("method-not-allowed", "wrong method for this endpoint");
    }
    ApiError::bad_request("malformed request")
}

/// `Content-Type: application/json` (a cross-site form or text/plain POST, which browsers send
/// without a preflight, is refused here), then the JSON itself.
fn parse<T: DeserializeOwned>(content_type: Option<String>, body: &Bytes) -> Result<T, Rejection> {
    let json = content_type.as_deref().is_some_and(|ct| {
        let essence = ct.split(';').next().unwrap_or("").trim();
        essence.eq_ignore_ascii_case("application/json")
    });
    if !json {
        return Err(refuse(ApiError::new(
            "unsupported-media-type",
            format!(
                "Content-Type {:?}: send application/json",
                content_type.unwrap_or_default()
            ),
        )));
    }
    parse_json(body).map_err(refuse)
}

/// The JSON body as `T`; unknown fields are refused.
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("request body: {e}")))
}

fn check_nonce(nonce: &str) -> Result<(), ApiError> {
    webeid::check_nonce(nonce).map_err(|e| ApiError::new("nonce-invalid", e.to_string()))
}

async fn card_operation(
    shared: &Shared,
    caller: &Caller,
    operation: Operation,
    target: &Target,
) -> Result<warp::reply::Response, Rejection> {
    let origin = caller.origin().map_err(refuse)?;
    if operation.rate_limited() {
        shared
            .pin_limit
            .take(origin, std::time::Instant::now())
            .map_err(refuse)?;
    }
    let value = shared
        .queue
        .run(origin, operation, target)
        .await
        .map_err(refuse)?;
    Ok(warp::reply::json(&value).into_response())
}

fn allowed(shared: &Shared, origin: &str) -> bool {
    if let Some(kiosk) = &shared.kiosk {
        return kiosk.serves(origin);
    }
    crate::config::parse_origin(origin)
        .map(|o| {
            matches!(
                decide(&shared.policy, &shared.sites, &o),
                Decision::Allowed(_)
            )
        })
        .unwrap_or(false)
}

fn status_value(shared: &Shared, caller: &Caller) -> serde_json::Value {
    let (allowed, show) = match caller {
        Caller::Page(origin) => {
            let allowed = allowed(shared, origin);
            (allowed, allowed)
        }
        // A local program could ask pcscd itself.
        Caller::Local => (false, true),
    };
    let readers = show.then(|| {
        let mut readers = shared.readers.snapshot();
        // Session ids are for the pages that use them; a local program has no use for them.
        if matches!(caller, Caller::Local) {
            for r in &mut readers {
                r.session = None;
            }
        }
        readers
    });
    let kiosk = shared.kiosk.as_ref().filter(|_| show).map(
        |k| serde_json::json!({ "desk": k.desk, "idleTimeoutSecs": k.idle_timeout.as_secs() }),
    );
    serde_json::json!({
        "version": env!("CARGO_PKG_VERSION"),
        "api": "v1",
        "origin": { "allowed": allowed },
        "smartCardService": show.then(|| shared.readers.service_up()),
        "readers": readers,
        "kiosk": kiosk,
    })
}

fn status(shared: &Shared, caller: &Caller) -> impl Reply + use<> {
    warp::reply::json(&status_value(shared, caller))
}

fn events(shared: &Arc<Shared>, caller: &Caller) -> Result<warp::reply::Response, ApiError> {
    let origin = caller.origin()?.to_owned();
    if !allowed(shared, &origin) {
        return Err(ApiError::new(
            "consent-required",
            "card events are for sites the user or the administrator allowed",
        ));
    }
    let first = warp::sse::Event::default()
        .event("status")
        .json_data(status_value(shared, caller))
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let receiver = shared.readers.subscribe();
    // A site revoked (eid-agent sites revoke) or denied by a new policy stops receiving at
    // its next event.
    let still = Arc::clone(shared);
    let later = tokio_stream_from(receiver)
        .take_while(move |_| std::future::ready(allowed(&still, &origin)))
        .map(|event| {
            warp::sse::Event::default()
                .event(event.name)
                .json_data(event.data)
                .map_err(|e| ApiError::internal(e.to_string()))
        });
    let stream = futures_util::stream::once(async move { Ok::<_, ApiError>(first) }).chain(later);
    let stream = warp::sse::keep_alive()
        .interval(Duration::from_secs(15))
        .stream(stream.map(|r| r.map_err(|e| std::io::Error::other(e.to_string()))));
    Ok(warp::sse::reply(stream).into_response())
}

/// A broadcast receiver as a stream; a slow reader that lagged just misses events.
fn tokio_stream_from(
    receiver: tokio::sync::broadcast::Receiver<super::readers::BridgeEvent>,
) -> impl futures_util::Stream<Item = super::readers::BridgeEvent> {
    futures_util::stream::unfold(receiver, |mut receiver| async move {
        loop {
            match receiver.recv().await {
                Ok(event) => return Some((event, receiver)),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
            }
        }
    })
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
enum CertificateType {
    Authentication,
    Signing,
}

/// `POST /v1/certificate`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertificateRequest {
    #[serde(rename = "type")]
    kind: CertificateType,
    #[serde(default)]
    reader: Option<String>,
    #[serde(default)]
    session: Option<String>,
}

/// The card a request names (`reader`, `session`: every card operation accepts both).
pub trait Targeted {
    /// The fields as given.
    fn fields(&self) -> (Option<&str>, Option<&str>);

    /// The fields, checked: a reader name of sane length, a session id of 32 hex digits.
    fn target(&self) -> Result<Target, ApiError> {
        let (reader, session) = self.fields();
        if let Some(r) = reader
            && (r.is_empty() || r.len() > 256 || r.chars().any(char::is_control))
        {
            return Err(ApiError::bad_request(
                "reader: give the exact name from /v1/status",
            ));
        }
        if let Some(s) = session
            && (s.len() != 32 || !s.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            return Err(ApiError::bad_request(
                "session: give the id from /v1/status or the card-inserted event",
            ));
        }
        Ok(Target {
            reader: reader.map(str::to_owned),
            session: session.map(str::to_ascii_lowercase),
        })
    }
}

macro_rules! targeted {
    ($($t:ty),*) => {$(
        impl Targeted for $t {
            fn fields(&self) -> (Option<&str>, Option<&str>) {
                (self.reader.as_deref(), self.session.as_deref())
            }
        }
    )*};
}

targeted!(
    CertificateRequest,
    AuthenticateRequest,
    SignRequest,
    IdentityRequest,
    EmrtdRequest
);

/// `POST /v1/authenticate`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AuthenticateRequest {
    challenge_nonce: String,
    #[serde(default)]
    reader: Option<String>,
    #[serde(default)]
    session: Option<String>,
}

/// `POST /v1/sign`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SignRequest {
    certificate: String,
    hash: String,
    hash_function: String,
    #[serde(default)]
    reader: Option<String>,
    #[serde(default)]
    session: Option<String>,
}

/// `POST /v1/identity`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct IdentityRequest {
    #[serde(default)]
    fields: Option<Vec<String>>,
    #[serde(default)]
    photo: bool,
    #[serde(default)]
    address: bool,
    #[serde(default)]
    reader: Option<String>,
    #[serde(default)]
    session: Option<String>,
}

/// `POST /v1/emrtd/read`. The CAN and MRZ data are printed on the document (not secrets like a
/// PIN) but are kept out of logs and wiped after use all the same.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EmrtdRequest {
    #[serde(default)]
    can: Option<Zeroizing<String>>,
    #[serde(default)]
    mrz: Option<Zeroizing<String>>,
    #[serde(default)]
    data_groups: Option<Vec<u8>>,
    challenge_nonce: String,
    #[serde(default)]
    reader: Option<String>,
    #[serde(default)]
    session: Option<String>,
}

impl std::fmt::Debug for EmrtdRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmrtdRequest")
            .field("can", &self.can.as_ref().map(|_| "***"))
            .field("mrz", &self.mrz.as_ref().map(|_| "***"))
            .field("data_groups", &self.data_groups)
            .field("reader", &self.reader)
            .finish()
    }
}
