//! Relying-party validation of Web eID authentication tokens.

use std::fmt;

use openssl::bn::BigNum;
use openssl::ecdsa::EcdsaSig;
use openssl::pkey::{Id, PKey, Public};
use openssl::rsa::Padding;
use openssl::sign::{RsaPssSaltlen, Verifier};
use openssl::stack::Stack;
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::verify::{X509VerifyFlags, X509VerifyParam};
use openssl::x509::{X509, X509StoreContext};
use serde::Serialize;
use thiserror::Error;
use time::OffsetDateTime;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::ParsedExtension;
use x509_parser::oid_registry::{
    OID_X509_COMMON_NAME, OID_X509_COUNTRY_NAME, OID_X509_GIVEN_NAME, OID_X509_SERIALNUMBER,
    OID_X509_SURNAME,
};

use super::b64;
use super::nonce::{NonceError, NonceStore, check_nonce};
use super::origin::Origin;
use super::token::{AuthToken, JwsAlgorithm, KeyFamily, TOKEN_FORMAT_PREFIX, signed_data};

/// The Estonian Mobile-ID certificate policies (SK ESTEID 2015), which the reference validators
/// refuse by default: Mobile-ID certificates are not for Web eID.
pub const MOBILE_ID_POLICIES: [&str; 4] = [
    "1.3.6.1.4.1.10015.1.3",
    "1.3.6.1.4.1.10015.1.3.1",
    "1.3.6.1.4.1.10015.1.3.2",
    "1.3.6.1.4.1.10015.1.3.3",
];

/// Extended key usage id-kp-clientAuth (RFC 5280 §4.2.1.12).
const EKU_CLIENT_AUTH: &str = "1.3.6.1.5.5.7.3.2";

/// RSA keys shorter than this are refused (as JJWT, which the Java validator uses, does).
pub const MIN_RSA_BITS: u32 = 2048;

/// Why a token was refused. [`TokenError::code`] is stable and meant for machines (logs, API
/// answers); the message is for people.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum TokenError {
    /// The validator is misconfigured (origin, trust anchors). The relying party's fault.
    #[error("validator configuration: {0}")]
    Config(String),
    /// Not a Web eID token: size, JSON, `format`, a missing field, bad base64.
    #[error("not a valid Web eID token: {0}")]
    Format(String),
    /// The algorithm is unknown or does not fit the certificate's key.
    #[error("signature algorithm: {0}")]
    Algorithm(String),
    /// The certificate cannot be decoded.
    #[error("user certificate: {0}")]
    Certificate(String),
    /// The certificate's validity ended before the validation time.
    #[error("the user certificate has expired")]
    CertificateExpired,
    /// The certificate's validity starts after the validation time.
    #[error("the user certificate is not yet valid")]
    CertificateNotYetValid,
    /// No chain from the certificate to a trust anchor at the validation time.
    #[error("the user certificate is not trusted: {0}")]
    CertificateUntrusted(String),
    /// The certificate is not for client authentication (keyUsage, extendedKeyUsage).
    #[error("the user certificate is not for authentication: {0}")]
    CertificatePurpose(String),
    /// A required certificate policy is missing, or a disallowed one is present.
    #[error("user certificate policy: {0}")]
    CertificatePolicy(String),
    /// The signature does not verify over the expected origin and nonce.
    #[error("the token signature does not verify: {0}")]
    Signature(String),
    /// The nonce is malformed, unknown, expired or reused.
    #[error(transparent)]
    Nonce(#[from] NonceError),
}

impl TokenError {
    /// A stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Config(_) => "validator-config",
            Self::Format(_) => "token-format",
            Self::Algorithm(_) => "token-algorithm",
            Self::Certificate(_) => "certificate-invalid",
            Self::CertificateExpired => "certificate-expired",
            Self::CertificateNotYetValid => "certificate-not-yet-valid",
            Self::CertificateUntrusted(_) => "certificate-untrusted",
            Self::CertificatePurpose(_) => "certificate-purpose",
            Self::CertificatePolicy(_) => "certificate-policy",
            Self::Signature(_) => "signature-invalid",
            Self::Nonce(e) => e.code(),
        }
    }
}

/// The subject attributes relying parties use (X.520 commonName, givenName, surname,
/// serialNumber, countryName), as text. Each is the first such attribute, absent when the
/// certificate has none or it is not a string.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SubjectFields {
    pub common_name: Option<String>,
    pub given_name: Option<String>,
    pub surname: Option<String>,
    /// E.g. `PNOEE-38001085718` (ETSI EN 319 412-1 semantics identifier).
    pub serial_number: Option<String>,
    pub country: Option<String>,
}

impl SubjectFields {
    fn from_certificate(cert: &X509Certificate<'_>) -> Self {
        let subject = cert.subject();
        let first = |oid| {
            subject
                .iter_by_oid(oid)
                .next()
                .and_then(|a| a.as_str().ok())
                .map(str::to_owned)
        };
        Self {
            common_name: first(&OID_X509_COMMON_NAME),
            given_name: first(&OID_X509_GIVEN_NAME),
            surname: first(&OID_X509_SURNAME),
            serial_number: first(&OID_X509_SERIALNUMBER),
            country: first(&OID_X509_COUNTRY_NAME),
        }
    }
}

fn serialize_b64<S: serde::Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&b64::encode(bytes))
}

/// A token that passed every check: who signed it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ValidatedToken {
    /// The user's certificate, DER (base64 in JSON).
    #[serde(serialize_with = "serialize_b64")]
    pub certificate: Vec<u8>,
    pub subject: SubjectFields,
    /// The certificate's notAfter.
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
    pub algorithm: JwsAlgorithm,
}

/// Validates Web eID tokens for one origin against a set of trust anchors.
///
/// ```no_run
/// # use eid_protocols::webeid::{NonceStore, TokenValidator};
/// # fn f(ca_pem: &[u8], token: &[u8], nonce: &str, store: &NonceStore) -> Result<(), eid_protocols::webeid::TokenError> {
/// let validator = TokenValidator::new("https://example.org")?.with_trust_anchors(ca_pem)?;
/// let user = validator.validate_with_store(token, nonce, store)?;
/// println!("{:?}", user.subject.serial_number);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct TokenValidator {
    origin: Origin,
    anchors: Vec<X509>,
    required_policies: Vec<String>,
    disallowed_policies: Vec<String>,
    now: Option<OffsetDateTime>,
}

impl fmt::Debug for TokenValidator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenValidator")
            .field("origin", &self.origin)
            .field("anchors", &self.anchors.len())
            .field("required_policies", &self.required_policies)
            .field("disallowed_policies", &self.disallowed_policies)
            .field("now", &self.now)
            .finish()
    }
}

fn is_dotted_oid(s: &str) -> bool {
    crate::lds::Oid::from_dotted(s).is_some()
}

fn openssl_err(e: openssl::error::ErrorStack) -> TokenError {
    TokenError::Config(e.to_string())
}

impl TokenValidator {
    /// A validator for tokens signed for `origin` (see [`Origin::parse`] for what is accepted),
    /// with no trust anchor yet, the Mobile-ID policies disallowed, and the system clock.
    pub fn new(origin: &str) -> Result<Self, TokenError> {
        let origin = Origin::parse(origin).map_err(|e| TokenError::Config(e.to_string()))?;
        Ok(Self {
            origin,
            anchors: Vec::new(),
            required_policies: Vec::new(),
            disallowed_policies: MOBILE_ID_POLICIES.iter().map(|s| (*s).to_owned()).collect(),
            now: None,
        })
    }

    /// Adds trust anchors: one or more PEM certificates, or one DER certificate. Anchors may be
    /// root or intermediate CAs; a chain ends at the first anchor met.
    pub fn add_trust_anchors(&mut self, bytes: &[u8]) -> Result<usize, TokenError> {
        let certs = if bytes.windows(10).any(|w| w == b"-----BEGIN") {
            X509::stack_from_pem(bytes).map_err(openssl_err)?
        } else {
            vec![X509::from_der(bytes).map_err(openssl_err)?]
        };
        if certs.is_empty() {
            return Err(TokenError::Config("no certificate in the PEM text".into()));
        }
        let n = certs.len();
        self.anchors.extend(certs);
        Ok(n)
    }

    /// [`Self::add_trust_anchors`], builder style.
    pub fn with_trust_anchors(mut self, bytes: &[u8]) -> Result<Self, TokenError> {
        self.add_trust_anchors(bytes)?;
        Ok(self)
    }

    /// Requires the certificate to carry this policy (dotted OID). With several required
    /// policies, one of them is enough.
    pub fn require_policy(mut self, oid: &str) -> Result<Self, TokenError> {
        if !is_dotted_oid(oid) {
            return Err(TokenError::Config(format!("{oid:?} is not an OID")));
        }
        self.required_policies.push(oid.to_owned());
        Ok(self)
    }

    /// Refuses certificates carrying this policy (dotted OID).
    pub fn disallow_policy(mut self, oid: &str) -> Result<Self, TokenError> {
        if !is_dotted_oid(oid) {
            return Err(TokenError::Config(format!("{oid:?} is not an OID")));
        }
        self.disallowed_policies.push(oid.to_owned());
        Ok(self)
    }

    /// Forgets the disallowed policies (the Mobile-ID ones by default).
    pub fn allow_all_policies(mut self) -> Self {
        self.disallowed_policies.clear();
        self
    }

    /// Validates at this time instead of the system clock (tests, replays of old tokens).
    pub fn at(mut self, now: OffsetDateTime) -> Self {
        self.now = Some(now);
        self
    }

    /// The origin tokens must be signed for.
    pub fn origin(&self) -> &Origin {
        &self.origin
    }

    /// Number of trust anchors.
    pub fn trust_anchor_count(&self) -> usize {
        self.anchors.len()
    }

    /// The validation time: the fixed one, or the system clock.
    pub fn now(&self) -> OffsetDateTime {
        self.now.unwrap_or_else(OffsetDateTime::now_utc)
    }

    /// Consumes `nonce` from `store` first (so that it is spent whatever the outcome), then
    /// validates the token against it. This is the normal entry point of a server.
    pub fn validate_with_store(
        &self,
        token_json: &[u8],
        nonce: &str,
        store: &NonceStore,
    ) -> Result<ValidatedToken, TokenError> {
        let now = self.now();
        store.consume(nonce, now)?;
        self.validate_at(token_json, nonce, now)
    }

    /// Validates the token text against `nonce`, which the caller has already taken out of its
    /// own store (single use is the caller's job here; see [`Self::validate_with_store`]). The
    /// nonce's form is checked too ([`check_nonce`]).
    pub fn validate(&self, token_json: &[u8], nonce: &str) -> Result<ValidatedToken, TokenError> {
        self.validate_at(token_json, nonce, self.now())
    }

    fn validate_at(
        &self,
        token_json: &[u8],
        nonce: &str,
        now: OffsetDateTime,
    ) -> Result<ValidatedToken, TokenError> {
        let token = AuthToken::parse(token_json)?;
        self.validate_token_at(&token, nonce, now)
    }

    /// Validates an already parsed token.
    pub fn validate_token(
        &self,
        token: &AuthToken,
        nonce: &str,
    ) -> Result<ValidatedToken, TokenError> {
        self.validate_token_at(token, nonce, self.now())
    }

    fn validate_token_at(
        &self,
        token: &AuthToken,
        nonce: &str,
        now: OffsetDateTime,
    ) -> Result<ValidatedToken, TokenError> {
        check_nonce(nonce)?;
        let (alg, der, signature) = decode_token(token)?;
        let (rest, parsed) = x509_parser::parse_x509_certificate(&der)
            .map_err(|e| TokenError::Certificate(e.to_string()))?;
        if !rest.is_empty() {
            return Err(TokenError::Certificate(
                "trailing bytes after the certificate".into(),
            ));
        }
        let cert = X509::from_der(&der).map_err(|e| TokenError::Certificate(e.to_string()))?;
        let key = cert
            .public_key()
            .map_err(|e| TokenError::Certificate(format!("public key: {e}")))?;

        check_algorithm(alg, &key)?;
        check_purpose(&parsed)?;
        self.check_policies(&parsed)?;
        check_validity(&parsed, now)?;
        self.check_chain(&cert, now)?;
        verify_signature(
            alg,
            &key,
            &signature,
            &signed_data(alg, self.origin.as_str(), nonce),
        )?;

        let not_after =
            OffsetDateTime::from_unix_timestamp(parsed.validity().not_after.timestamp())
                .map_err(|e| TokenError::Certificate(format!("notAfter: {e}")))?;
        Ok(ValidatedToken {
            subject: SubjectFields::from_certificate(&parsed),
            certificate: der,
            not_after,
            algorithm: alg,
        })
    }

    fn check_policies(&self, cert: &X509Certificate<'_>) -> Result<(), TokenError> {
        let mut policies = Vec::new();
        for ext in cert.extensions() {
            if let ParsedExtension::CertificatePolicies(list) = ext.parsed_extension() {
                policies.extend(list.iter().map(|p| p.policy_id.to_id_string()));
            }
        }
        if let Some(p) = policies
            .iter()
            .find(|p| self.disallowed_policies.contains(p))
        {
            return Err(TokenError::CertificatePolicy(format!(
                "policy {p} is not allowed"
            )));
        }
        if !self.required_policies.is_empty()
            && !policies.iter().any(|p| self.required_policies.contains(p))
        {
            return Err(TokenError::CertificatePolicy(format!(
                "none of the required policies {:?}",
                self.required_policies
            )));
        }
        Ok(())
    }

    fn check_chain(&self, cert: &X509, now: OffsetDateTime) -> Result<(), TokenError> {
        if self.anchors.is_empty() {
            return Err(TokenError::CertificateUntrusted(
                "no trust anchor is configured".into(),
            ));
        }
        let mut builder = X509StoreBuilder::new().map_err(openssl_err)?;
        for a in &self.anchors {
            builder.add_cert(a.clone()).map_err(openssl_err)?;
        }
        let mut param = X509VerifyParam::new().map_err(openssl_err)?;
        param.set_time(now.unix_timestamp() as _);
        param
            .set_flags(X509VerifyFlags::PARTIAL_CHAIN)
            .map_err(openssl_err)?;
        builder.set_param(&param).map_err(openssl_err)?;
        let store = builder.build();
        let untrusted = Stack::new().map_err(openssl_err)?;
        let mut ctx = X509StoreContext::new().map_err(openssl_err)?;
        let (ok, err) = ctx
            .init(&store, cert, &untrusted, |c| {
                c.verify_cert().map(|ok| (ok, c.error()))
            })
            .map_err(openssl_err)?;
        if ok {
            Ok(())
        } else {
            Err(TokenError::CertificateUntrusted(
                err.error_string().to_owned(),
            ))
        }
    }
}

/// The token's fields checked for presence and decoded: (algorithm, certificate DER, signature).
fn decode_token(token: &AuthToken) -> Result<(JwsAlgorithm, Vec<u8>, Vec<u8>), TokenError> {
    if !token.format.starts_with(TOKEN_FORMAT_PREFIX) {
        return Err(TokenError::Format(format!(
            "only format {TOKEN_FORMAT_PREFIX}.x is supported, found {:?}",
            token.format
        )));
    }
    if token.algorithm.is_empty() {
        return Err(TokenError::Format("'algorithm' is missing or empty".into()));
    }
    if token.signature.is_empty() {
        return Err(TokenError::Format("'signature' is missing or empty".into()));
    }
    if token.unverified_certificate.is_empty() {
        return Err(TokenError::Format(
            "'unverifiedCertificate' is missing or empty".into(),
        ));
    }
    let alg = JwsAlgorithm::parse(&token.algorithm)
        .ok_or_else(|| TokenError::Algorithm("unsupported signature algorithm".into()))?;
    let der = b64::decode(&token.unverified_certificate)
        .ok_or_else(|| TokenError::Format("'unverifiedCertificate' is not base64".into()))?;
    let signature = b64::decode(&token.signature)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| TokenError::Format("'signature' is not base64".into()))?;
    Ok((alg, der, signature))
}

fn check_algorithm(alg: JwsAlgorithm, key: &PKey<Public>) -> Result<(), TokenError> {
    let mismatch = |what: &str| TokenError::Algorithm(format!("{alg} does not fit {what}"));
    match alg.family() {
        KeyFamily::Ec => {
            if key.id() != Id::EC {
                return Err(mismatch("a non-EC key"));
            }
            if JwsAlgorithm::for_ec_bits(key.bits()) != Some(alg) {
                return Err(mismatch(&format!("a {}-bit EC key", key.bits())));
            }
        }
        KeyFamily::RsaPkcs1 | KeyFamily::RsaPss => {
            if key.id() != Id::RSA {
                return Err(mismatch("a non-RSA key"));
            }
            if key.bits() < MIN_RSA_BITS {
                return Err(TokenError::Algorithm(format!(
                    "RSA keys of {} bits are too short (at least {MIN_RSA_BITS})",
                    key.bits()
                )));
            }
        }
    }
    Ok(())
}

/// keyUsage must be present and allow digitalSignature; an extendedKeyUsage listing usages must
/// list clientAuth (an absent one is read as "authentication", as the reference validators and
/// the Web eID application do for e.g. the Luxembourg card).
fn check_purpose(cert: &X509Certificate<'_>) -> Result<(), TokenError> {
    match cert.key_usage() {
        Ok(None) => {
            return Err(TokenError::CertificatePurpose(
                "no keyUsage extension".into(),
            ));
        }
        Ok(Some(ku)) if !ku.value.digital_signature() => {
            return Err(TokenError::CertificatePurpose(
                "keyUsage lacks digitalSignature".into(),
            ));
        }
        Ok(Some(_)) => {}
        Err(e) => return Err(TokenError::Certificate(format!("keyUsage: {e}"))),
    }
    match cert.extended_key_usage() {
        Ok(None) => Ok(()),
        Ok(Some(eku)) => {
            let v = eku.value;
            let listed = v.any
                || v.server_auth
                || v.client_auth
                || v.code_signing
                || v.email_protection
                || v.time_stamping
                || v.ocsp_signing
                || !v.other.is_empty();
            let client =
                v.client_auth || v.other.iter().any(|o| o.to_id_string() == EKU_CLIENT_AUTH);
            if !listed || client {
                Ok(())
            } else {
                Err(TokenError::CertificatePurpose(
                    "extendedKeyUsage lacks clientAuth".into(),
                ))
            }
        }
        Err(e) => Err(TokenError::Certificate(format!("extendedKeyUsage: {e}"))),
    }
}

fn check_validity(cert: &X509Certificate<'_>, now: OffsetDateTime) -> Result<(), TokenError> {
    let t = now.unix_timestamp();
    let v = cert.validity();
    if t < v.not_before.timestamp() {
        return Err(TokenError::CertificateNotYetValid);
    }
    if t > v.not_after.timestamp() {
        return Err(TokenError::CertificateExpired);
    }
    Ok(())
}

/// Verifies a Web eID signature (raw `r || s` for ECDSA) over `data` = [`signed_data`].
fn verify_signature(
    alg: JwsAlgorithm,
    key: &PKey<Public>,
    signature: &[u8],
    data: &[u8],
) -> Result<(), TokenError> {
    let bad = |why: &str| TokenError::Signature(why.to_owned());
    let md = alg.hash().message_digest();
    let ossl = |e: openssl::error::ErrorStack| TokenError::Signature(e.to_string());
    let signature = match alg.family() {
        KeyFamily::Ec => {
            let ec = key.ec_key().map_err(ossl)?;
            let n_len = crate::pace::order(ec.group()).map_err(ossl)?.num_bytes() as usize;
            if signature.len() != 2 * n_len {
                return Err(bad(
                    "an ECDSA signature is r || s of the curve order's size",
                ));
            }
            let (r, s) = signature.split_at(n_len);
            EcdsaSig::from_private_components(
                BigNum::from_slice(r).map_err(ossl)?,
                BigNum::from_slice(s).map_err(ossl)?,
            )
            .and_then(|sig| sig.to_der())
            .map_err(ossl)?
        }
        _ => signature.to_vec(),
    };
    let mut v = Verifier::new(md, key).map_err(ossl)?;
    match alg.family() {
        KeyFamily::RsaPkcs1 => v.set_rsa_padding(Padding::PKCS1).map_err(ossl)?,
        KeyFamily::RsaPss => {
            v.set_rsa_padding(Padding::PKCS1_PSS).map_err(ossl)?;
            v.set_rsa_mgf1_md(md).map_err(ossl)?;
            v.set_rsa_pss_saltlen(RsaPssSaltlen::DIGEST_LENGTH)
                .map_err(ossl)?;
        }
        KeyFamily::Ec => {}
    }
    match v.verify_oneshot(&signature, data) {
        Ok(true) => Ok(()),
        _ => Err(bad("wrong origin, nonce, key or data")),
    }
}
