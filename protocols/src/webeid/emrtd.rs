//! eMRTD results: what the agent sends after reading a passport or ID card over ICAO 9303, and
//! the server-side validation (passive authentication and Active Authentication redone).
//!
//! ```json
//! { "format": "eid-emrtd:1.0", "appVersion": "eid-agent/0.1.0",
//!   "access": { "method": "pace", "detail": "PACE-ECDH-GM-AES-128, CAN" },
//!   "sod": "<base64 EF.SOD>", "dataGroups": { "1": "<base64>", "14": "...", "15": "..." },
//!   "cardSecurity": null,
//!   "activeAuthentication": { "challenge": "0011223344556677", "signature": "<base64>" },
//!   "checks": { "passive": { "result": "passed" }, "chip": { "result": "passed" },
//!               "active": { "result": "passed" } },
//!   "document": { "documentCode": "P", "issuingState": "UTO", ... } }
//! ```
//!
//! Data group files and the SOD are the bytes as read from the chip (tag, length, value; any
//! padding after the template is ignored by the hash check as in [`crate::pa`]). `checks` and
//! `document` are the agent's own view: informative, never trusted by [`EmrtdValidator`].

use std::collections::BTreeMap;

use openssl::x509::X509;
use serde::{Deserialize, Serialize};
use thiserror::Error;
use time::OffsetDateTime;

use crate::aa::{self, AaHash};
use crate::lds::{Dg1, Dg15, SecurityInfos, oids};
use crate::mrz::{Mrz, MrzDate, Sex};
use crate::pa::{Check, CscaStore, HashAlgorithm, PassiveAuthReport, SignedData, Sod};

use super::b64;
use super::nonce::{NonceError, NonceStore, check_nonce};
use super::origin::Origin;

/// The result format this crate writes.
pub const EMRTD_FORMAT: &str = "eid-emrtd:1.0";
/// What a result's `format` must start with to be read (major version 1).
pub const EMRTD_FORMAT_PREFIX: &str = "eid-emrtd:1";
/// Longest result text accepted (a DG2 face image is the largest part).
pub const MAX_EMRTD_RESULT_LEN: usize = 4 << 20;
/// Domain separation label of [`emrtd_aa_challenge`].
pub const AA_CHALLENGE_LABEL: &[u8] = b"eid-agent emrtd-aa v1";

/// The Active Authentication challenge for a site and a nonce: the first 8 bytes of
/// `SHA-256("eid-agent emrtd-aa v1" || 0x00 || origin || 0x00 || nonce)`, `origin` being the
/// serialized origin ([`Origin::as_str`]) and `nonce` the challenge nonce as issued. The agent
/// sends it to the chip (INTERNAL AUTHENTICATE); the server recomputes it, so the chip's
/// signature is bound to this site and this nonce. Our own derivation, not an ICAO one.
pub fn emrtd_aa_challenge(origin: &str, nonce: &str) -> [u8; 8] {
    let mut input = Vec::with_capacity(AA_CHALLENGE_LABEL.len() + origin.len() + nonce.len() + 2);
    input.extend_from_slice(AA_CHALLENGE_LABEL);
    input.push(0);
    input.extend_from_slice(origin.as_bytes());
    input.push(0);
    input.extend_from_slice(nonce.as_bytes());
    let digest = HashAlgorithm::Sha256.digest(&input);
    let mut out = [0u8; 8];
    for (o, d) in out.iter_mut().zip(digest.iter()) {
        *o = *d;
    }
    out
}

/// How the agent opened the chip.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AccessMethod {
    Pace,
    Bac,
}

/// The access protocol used (informative).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccessInfo {
    pub method: AccessMethod,
    /// Free text: protocol OID or name, password kind (MRZ, CAN).
    #[serde(default)]
    pub detail: String,
}

/// The chip's Active Authentication answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActiveAuthenticationAnswer {
    /// The 8-byte challenge sent to the chip, hex.
    pub challenge: String,
    /// The INTERNAL AUTHENTICATE answer, base64.
    pub signature: String,
}

/// The wire form of [`crate::pa::Check`] (`{"result": "passed" | "failed" | "not-performed",
/// "reason": "..."}`), readable as well as writable.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "kebab-case")]
pub enum AgentCheck {
    NotPerformed {
        #[serde(default)]
        reason: String,
    },
    Passed,
    Failed {
        #[serde(default)]
        reason: String,
    },
}

impl From<&Check> for AgentCheck {
    fn from(c: &Check) -> Self {
        match c {
            Check::NotPerformed { reason } => Self::NotPerformed {
                reason: reason.clone(),
            },
            Check::Passed => Self::Passed,
            Check::Failed { reason } => Self::Failed {
                reason: reason.clone(),
            },
        }
    }
}

impl From<Check> for AgentCheck {
    fn from(c: Check) -> Self {
        Self::from(&c)
    }
}

impl From<AgentCheck> for Check {
    fn from(c: AgentCheck) -> Self {
        match c {
            AgentCheck::NotPerformed { reason } => Check::NotPerformed { reason },
            AgentCheck::Passed => Check::Passed,
            AgentCheck::Failed { reason } => Check::Failed { reason },
        }
    }
}

/// The agent's own verification results (informative for the server).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentChecks {
    /// Passive authentication (SOD, chain, hashes).
    pub passive: AgentCheck,
    /// Chip authentication or PACE-CAM.
    pub chip: AgentCheck,
    /// Active authentication.
    pub active: AgentCheck,
}

/// The DG1 fields a relying party uses. Dates are `YYYY-MM-DD` when the MRZ field is a full
/// date, else the six MRZ characters; sex is `F`, `M` or `X`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DocumentFields {
    pub document_code: String,
    pub issuing_state: String,
    pub document_number: String,
    pub surname: String,
    pub given_names: String,
    pub nationality: String,
    pub birth_date: String,
    pub sex: String,
    pub expiry_date: String,
}

fn date_text(d: &MrzDate) -> String {
    match d.date {
        Some(date) => date.to_string(),
        None => d.raw.clone(),
    }
}

impl DocumentFields {
    /// The fields of a parsed MRZ.
    pub fn from_mrz(mrz: &Mrz) -> Self {
        Self {
            document_code: mrz.document_code.clone(),
            issuing_state: mrz.issuing_state.clone(),
            document_number: mrz.document_number.clone(),
            surname: mrz.primary_identifier.clone(),
            given_names: mrz.secondary_identifier.clone(),
            nationality: mrz.nationality.clone(),
            birth_date: date_text(&mrz.birth_date),
            sex: match mrz.sex {
                Sex::Female => "F",
                Sex::Male => "M",
                Sex::Unspecified => "X",
            }
            .to_owned(),
            expiry_date: date_text(&mrz.expiry_date),
        }
    }
}

/// What the agent answers after reading an eMRTD (JSON, camelCase).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EmrtdResult {
    /// `eid-emrtd:1.0`.
    pub format: String,
    /// Names the agent and its version (informative).
    #[serde(default)]
    pub app_version: String,
    pub access: AccessInfo,
    /// EF.SOD as read, base64.
    pub sod: String,
    /// Data group files as read, base64, by number (`"1"` to `"16"`).
    #[serde(default)]
    pub data_groups: BTreeMap<String, String>,
    /// EF.CardSecurity as read (PACE chips that have one), base64.
    #[serde(default)]
    pub card_security: Option<String>,
    /// The chip's answer to the challenge of [`emrtd_aa_challenge`].
    #[serde(default)]
    pub active_authentication: Option<ActiveAuthenticationAnswer>,
    /// The agent's own checks.
    pub checks: AgentChecks,
    /// The agent's reading of DG1.
    #[serde(default)]
    pub document: Option<DocumentFields>,
}

fn hex_encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hex_decode(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || !text.is_ascii() {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| {
            text.get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect()
}

impl EmrtdResult {
    /// A result with the SOD and nothing else yet; checks "not performed".
    pub fn new(app_version: impl Into<String>, access: AccessInfo, sod: &[u8]) -> Self {
        let not = || AgentCheck::NotPerformed {
            reason: String::new(),
        };
        Self {
            format: EMRTD_FORMAT.to_owned(),
            app_version: app_version.into(),
            access,
            sod: b64::encode(sod),
            data_groups: BTreeMap::new(),
            card_security: None,
            active_authentication: None,
            checks: AgentChecks {
                passive: not(),
                chip: not(),
                active: not(),
            },
            document: None,
        }
    }

    /// Adds (or replaces) data group `number`'s file.
    pub fn add_data_group(&mut self, number: u8, file: &[u8]) {
        self.data_groups
            .insert(number.to_string(), b64::encode(file));
    }

    /// Sets EF.CardSecurity.
    pub fn set_card_security(&mut self, file: &[u8]) {
        self.card_security = Some(b64::encode(file));
    }

    /// Sets the Active Authentication challenge and answer.
    pub fn set_active_authentication(&mut self, challenge: &[u8; 8], signature: &[u8]) {
        self.active_authentication = Some(ActiveAuthenticationAnswer {
            challenge: hex_encode(challenge),
            signature: b64::encode(signature),
        });
    }

    /// Parses the JSON text (at most [`MAX_EMRTD_RESULT_LEN`] bytes).
    pub fn parse(json: &[u8]) -> Result<Self, EmrtdError> {
        if json.len() > MAX_EMRTD_RESULT_LEN {
            return Err(EmrtdError::Format("result is too long".into()));
        }
        if json.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(EmrtdError::Format("a result is a JSON object".into()));
        }
        serde_json::from_slice(json).map_err(|e| EmrtdError::Format(format!("not a result: {e}")))
    }

    /// The result as compact JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The decoded SOD.
    pub fn sod_bytes(&self) -> Result<Vec<u8>, EmrtdError> {
        b64::decode(&self.sod).ok_or_else(|| EmrtdError::Format("'sod' is not base64".into()))
    }

    /// The decoded data groups in ascending order; keys must be `1` to `16` written plainly.
    pub fn data_group_files(&self) -> Result<Vec<(u8, Vec<u8>)>, EmrtdError> {
        let mut files = self
            .data_groups
            .iter()
            .map(|(k, v)| {
                let n: u8 = k
                    .parse()
                    .ok()
                    .filter(|n: &u8| (1..=16).contains(n) && n.to_string() == *k)
                    .ok_or_else(|| EmrtdError::Format(format!("data group key {k:?}")))?;
                let file = b64::decode(v)
                    .ok_or_else(|| EmrtdError::Format(format!("data group {n} is not base64")))?;
                Ok((n, file))
            })
            .collect::<Result<Vec<_>, EmrtdError>>()?;
        files.sort_unstable_by_key(|(n, _)| *n);
        Ok(files)
    }
}

/// Why an eMRTD result was refused. [`EmrtdError::code`] is stable.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum EmrtdError {
    /// The validator is misconfigured (origin, empty CSCA store).
    #[error("validator configuration: {0}")]
    Config(String),
    /// Not an eMRTD result: JSON, `format`, base64, data group keys.
    #[error("not a valid eMRTD result: {0}")]
    Format(String),
    /// EF.SOD cannot be parsed.
    #[error("EF.SOD: {0}")]
    Sod(String),
    /// The SOD signature does not verify with its Document Signer certificate.
    #[error("EF.SOD signature: {0}")]
    SodSignature(String),
    /// The Document Signer does not chain to a trusted CSCA at the validation time.
    #[error("the document is not trusted: {0}")]
    DocumentUntrusted(String),
    /// The Document Signer certificate is revoked by its CSCA's CRL.
    #[error("the Document Signer certificate is revoked")]
    DocumentRevoked,
    /// A data group given does not match its SOD hash (or is not listed).
    #[error("data group {number}: {reason}")]
    DataGroupHash { number: u8, reason: String },
    /// DG1 (the MRZ) was not sent.
    #[error("DG1 is missing")]
    Dg1Missing,
    /// DG1 does not parse.
    #[error("DG1: {0}")]
    Dg1Invalid(String),
    /// EF.CardSecurity was sent and does not verify.
    #[error("EF.CardSecurity: {0}")]
    CardSecurity(String),
    /// Active Authentication is required and the document has no DG15.
    #[error("active authentication is required and the document has no DG15 key")]
    AaUnavailable,
    /// The document has DG15 (or AA is required) and no AA answer was sent.
    #[error("the active authentication answer is missing")]
    AaMissing,
    /// The challenge the agent used is not the one derived from this origin and nonce.
    #[error("the active authentication challenge is not the one of this origin and nonce")]
    AaChallenge,
    /// The chip's signature does not verify with the DG15 key.
    #[error("active authentication: {0}")]
    AaInvalid(String),
    /// The nonce is malformed, unknown, expired or reused.
    #[error(transparent)]
    Nonce(#[from] NonceError),
}

impl EmrtdError {
    /// A stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Config(_) => "validator-config",
            Self::Format(_) => "result-format",
            Self::Sod(_) => "sod-invalid",
            Self::SodSignature(_) => "sod-signature",
            Self::DocumentUntrusted(_) => "document-untrusted",
            Self::DocumentRevoked => "document-revoked",
            Self::DataGroupHash { .. } => "data-group-hash",
            Self::Dg1Missing => "dg1-missing",
            Self::Dg1Invalid(_) => "dg1-invalid",
            Self::CardSecurity(_) => "card-security-invalid",
            Self::AaUnavailable => "aa-unavailable",
            Self::AaMissing => "aa-missing",
            Self::AaChallenge => "aa-challenge",
            Self::AaInvalid(_) => "aa-invalid",
            Self::Nonce(e) => e.code(),
        }
    }
}

/// A document that passed validation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ValidatedDocument {
    /// From the hash-verified DG1 only.
    pub document: DocumentFields,
    /// Whether every MRZ check digit of DG1 is right (a signed DG1 with a wrong digit is the
    /// issuer's mistake; reported, not refused).
    pub mrz_check_digits_valid: bool,
    /// Whether Active Authentication was verified (false only when not required).
    pub active_authentication: bool,
    /// The data groups sent and verified against the SOD.
    pub data_groups: Vec<u8>,
    /// The agent's access protocol (informative, not verifiable by a server).
    pub access: AccessInfo,
    /// Passive authentication, step by step.
    pub passive_authentication: PassiveAuthReport,
    /// EF.CardSecurity: passed when sent and verified, not performed when not sent.
    pub card_security: Check,
    /// Whether the document's expiry date (MRZ) is before the validation date. The document
    /// is still authentic; whether an expired one is acceptable is the relying party's rule.
    pub expired: bool,
}

/// Validates eMRTD results for one origin against a CSCA store.
#[derive(Debug)]
pub struct EmrtdValidator {
    /// Trusted CSCA certificates (and CRLs).
    pub csca: CscaStore,
    /// The origin the Active Authentication challenge is bound to.
    pub expected_origin: Origin,
    /// Refuse documents without Active Authentication (no DG15). Default true: without it a
    /// copied chip (clone) cannot be told from the genuine one. Turned off, it excuses only
    /// documents whose SOD lists no DG15: a result that leaves out the DG15 or the answer of a
    /// document that has them is refused all the same (`aa-missing`).
    pub require_active_authentication: bool,
}

fn aa_hash(h: HashAlgorithm) -> AaHash {
    match h {
        HashAlgorithm::Sha1 => AaHash::Sha1,
        HashAlgorithm::Sha224 => AaHash::Sha224,
        HashAlgorithm::Sha256 => AaHash::Sha256,
        HashAlgorithm::Sha384 => AaHash::Sha384,
        HashAlgorithm::Sha512 => AaHash::Sha512,
    }
}

fn file(files: &[(u8, Vec<u8>)], n: u8) -> Option<&[u8]> {
    files
        .iter()
        .find(|(k, _)| *k == n)
        .map(|(_, f)| f.as_slice())
}

impl EmrtdValidator {
    /// A validator for `expected_origin` with these CSCAs, requiring Active Authentication.
    pub fn new(csca: CscaStore, expected_origin: &str) -> Result<Self, EmrtdError> {
        Ok(Self {
            csca,
            expected_origin: Origin::parse(expected_origin)
                .map_err(|e| EmrtdError::Config(e.to_string()))?,
            require_active_authentication: true,
        })
    }

    /// Sets [`Self::require_active_authentication`].
    pub fn with_active_authentication_required(mut self, required: bool) -> Self {
        self.require_active_authentication = required;
        self
    }

    /// Consumes `nonce` from `store` first (spent whatever the outcome), then parses and
    /// validates the result text.
    pub fn validate_with_store(
        &self,
        json: &[u8],
        nonce: &str,
        store: &NonceStore,
        now: OffsetDateTime,
    ) -> Result<ValidatedDocument, EmrtdError> {
        store.consume(nonce, now)?;
        self.validate(&EmrtdResult::parse(json)?, nonce, now)
    }

    /// Validates a result against `nonce` (already consumed by the caller; its form is checked
    /// with [`check_nonce`]) at time `now`.
    pub fn validate(
        &self,
        result: &EmrtdResult,
        nonce: &str,
        now: OffsetDateTime,
    ) -> Result<ValidatedDocument, EmrtdError> {
        check_nonce(nonce)?;
        if !result.format.starts_with(EMRTD_FORMAT_PREFIX) {
            return Err(EmrtdError::Format(format!(
                "only format {EMRTD_FORMAT_PREFIX}.x is supported, found {:?}",
                result.format
            )));
        }
        if self.csca.is_empty() {
            return Err(EmrtdError::Config("the CSCA store is empty".into()));
        }
        let sod_bytes = result.sod_bytes()?;
        let files = result.data_group_files()?;
        let sod = Sod::parse(&sod_bytes).map_err(|e| EmrtdError::Sod(e.to_string()))?;

        // Passive authentication (ICAO 9303-11 §5.1).
        let refs: Vec<(u8, &[u8])> = files.iter().map(|(n, f)| (*n, f.as_slice())).collect();
        let report = sod.verify(Some(&self.csca), now, &refs);
        match &report.signature {
            Check::Passed => {}
            Check::Failed { reason } | Check::NotPerformed { reason } => {
                return Err(EmrtdError::SodSignature(reason.clone()));
            }
        }
        match &report.certificate_chain {
            Check::Passed => {}
            Check::Failed { reason } | Check::NotPerformed { reason } => {
                return Err(EmrtdError::DocumentUntrusted(reason.clone()));
            }
        }
        if report.revocation.is_failed() {
            return Err(EmrtdError::DocumentRevoked);
        }
        for (n, _) in &files {
            match report.data_group(*n) {
                Some(Check::Passed) => {}
                Some(Check::Failed { reason } | Check::NotPerformed { reason }) => {
                    return Err(EmrtdError::DataGroupHash {
                        number: *n,
                        reason: reason.clone(),
                    });
                }
                None => {
                    return Err(EmrtdError::DataGroupHash {
                        number: *n,
                        reason: "not checked".into(),
                    });
                }
            }
        }

        // Identity: the verified DG1 only.
        let dg1 = file(&files, 1).ok_or(EmrtdError::Dg1Missing)?;
        let parsed = Dg1::parse(dg1).map_err(|e| EmrtdError::Dg1Invalid(e.to_string()))?;
        let mrz = Mrz::parse_at(&parsed.mrz.lines.concat(), now.date())
            .map_err(|e| EmrtdError::Dg1Invalid(e.to_string()))?;

        let card_security = match &result.card_security {
            None => Check::not_performed("EF.CardSecurity not sent"),
            Some(text) => {
                let bytes = b64::decode(text)
                    .ok_or_else(|| EmrtdError::Format("'cardSecurity' is not base64".into()))?;
                self.check_card_security(&bytes, now)
                    .map_err(EmrtdError::CardSecurity)?;
                Check::Passed
            }
        };

        // A document whose SOD lists DG15 supports Active Authentication: leaving DG15 or the
        // answer out must not switch the clone check off (whatever the policy says).
        let sod_lists_dg15 = sod
            .lds_security_object
            .hashes
            .iter()
            .any(|h| h.data_group == 15);
        let active_authentication =
            self.check_active_authentication(result, &files, nonce, sod_lists_dg15)?;

        Ok(ValidatedDocument {
            document: DocumentFields::from_mrz(&mrz),
            mrz_check_digits_valid: mrz.checks.all_valid(),
            active_authentication,
            data_groups: files.iter().map(|(n, _)| *n).collect(),
            access: result.access.clone(),
            passive_authentication: report,
            card_security,
            expired: mrz.expiry_date.date.is_some_and(|d| d < now.date()),
        })
    }

    /// EF.CardSecurity: a SignedData of id-SecurityObject signed by a Document Signer that
    /// chains to a trusted CSCA.
    fn check_card_security(&self, bytes: &[u8], now: OffsetDateTime) -> Result<(), String> {
        let sd = SignedData::parse(bytes).map_err(|e| e.to_string())?;
        let ct = sd.content_type.dotted();
        if ct != oids::SECURITY_OBJECT {
            return Err(format!(
                "content type {ct}, expected {}",
                oids::SECURITY_OBJECT
            ));
        }
        SecurityInfos::parse(&sd.content).map_err(|e| e.to_string())?;
        let signer = sd.verify_signature().map_err(|e| e.to_string())?;
        let extra: Vec<X509> = sd
            .certificates
            .iter()
            .filter_map(|d| X509::from_der(d).ok())
            .collect();
        match self.csca.verify_chain(&signer, &extra, now) {
            Check::Passed => Ok(()),
            Check::Failed { reason } | Check::NotPerformed { reason } => Err(reason),
        }
    }

    /// Returns whether AA was verified; errors when it fails or is required and missing.
    fn check_active_authentication(
        &self,
        result: &EmrtdResult,
        files: &[(u8, Vec<u8>)],
        nonce: &str,
        sod_lists_dg15: bool,
    ) -> Result<bool, EmrtdError> {
        let required = self.require_active_authentication || sod_lists_dg15;
        let Some(dg15) = file(files, 15) else {
            return if self.require_active_authentication {
                Err(EmrtdError::AaUnavailable)
            } else if sod_lists_dg15 {
                Err(EmrtdError::AaMissing)
            } else {
                Ok(false)
            };
        };
        let Some(answer) = &result.active_authentication else {
            return if required {
                Err(EmrtdError::AaMissing)
            } else {
                Ok(false)
            };
        };
        let challenge = emrtd_aa_challenge(self.expected_origin.as_str(), nonce);
        let sent = hex_decode(&answer.challenge).ok_or(EmrtdError::AaChallenge)?;
        if sent != challenge {
            return Err(EmrtdError::AaChallenge);
        }
        let signature = b64::decode(&answer.signature)
            .ok_or_else(|| EmrtdError::Format("AA 'signature' is not base64".into()))?;
        let key = Dg15::parse(dg15).map_err(|e| EmrtdError::AaInvalid(format!("DG15: {e}")))?;
        // ECDSA: the hash comes from DG14's ActiveAuthenticationInfo (hash-checked above when
        // sent). RSA: the ISO/IEC 9796-2 trailer names it.
        let ec_hash = file(files, 14)
            .and_then(|f| SecurityInfos::parse_dg14(f).ok())
            .and_then(|s| s.active_authentication_hash())
            .map(aa_hash);
        aa::verify(
            &key.subject_public_key_info,
            &challenge,
            &signature,
            ec_hash,
        )
        .map_err(|e| EmrtdError::AaInvalid(e.to_string()))?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip() {
        assert_eq!(
            hex_decode(&hex_encode(&[0, 0xAB, 0xFF])),
            Some(vec![0, 0xAB, 0xFF])
        );
        assert_eq!(hex_decode("0"), None);
        assert_eq!(hex_decode("zz"), None);
        assert_eq!(hex_decode("é0"), None);
    }

    #[test]
    fn challenge_is_bound_to_origin_and_nonce() {
        let a = emrtd_aa_challenge("https://example.org", "n1");
        assert_ne!(a, emrtd_aa_challenge("https://example.org", "n2"));
        assert_ne!(a, emrtd_aa_challenge("https://example.com", "n1"));
        // The separator keeps ("ab", "c") apart from ("a", "bc").
        assert_ne!(emrtd_aa_challenge("ab", "c"), emrtd_aa_challenge("a", "bc"));
    }
}
