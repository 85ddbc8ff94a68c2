//! Passive Authentication (ICAO 9303-11 §5.1): SOD, DS signature, CSCA chain, hashes.
//!
//! - [`SignedData`]: CMS SignedData (RFC 5652 §5) as carried by EF.SOD, EF.CardSecurity and CSCA
//!   master lists. DER is read directly; BER (indefinite lengths, which some passports use) is
//!   first normalised to DER by OpenSSL's CMS parser.
//! - [`Sod`]: EF.SOD (ICAO 9303-10 §4.6.2) with its LDSSecurityObject (ICAO 9303-10 §4.6.2.3).
//! - [`CscaStore`]: CSCA certificates (files or a master list, ICAO 9303-12 §9), CRLs; chains a
//!   Document Signer certificate to a CSCA at a given time.
//! - [`PassiveAuthReport`] / [`Check`]: what was verified, what failed and why, and what was not
//!   checked, for the eMRTD and the Citizen Card applications alike.
//!
//! Sans-IO: loading files from disk is the caller's job ([`CscaStore::add_file`] takes bytes).

use std::fmt;

use openssl::bn::BigNum;
use openssl::cms::CmsContentInfo;
use openssl::ecdsa::EcdsaSig;
use openssl::hash::{MessageDigest, hash};
use openssl::pkey::{Id, PKeyRef, Public};
use openssl::rsa::Padding;
use openssl::sign::{RsaPssSaltlen, Verifier};
use openssl::stack::Stack;
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::verify::X509VerifyParam;
use openssl::x509::{CrlStatus, X509, X509Crl, X509StoreContext};
use serde::Serialize;
use thiserror::Error;
use time::OffsetDateTime;

use crate::lds::der::{self, DerError, Element};
use crate::lds::{Oid, oids};
use crate::tlv;

/// Hash algorithms of ICAO 9303-12 §7 (SHA-1 and SHA-2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum HashAlgorithm {
    Sha1,
    Sha224,
    Sha256,
    Sha384,
    Sha512,
}

impl HashAlgorithm {
    /// From an algorithm OID (FIPS 180 / NIST CSOR arcs).
    pub fn from_oid(dotted: &str) -> Option<Self> {
        Some(match dotted {
            "1.3.14.3.2.26" => Self::Sha1,
            "2.16.840.1.101.3.4.2.4" => Self::Sha224,
            "2.16.840.1.101.3.4.2.1" => Self::Sha256,
            "2.16.840.1.101.3.4.2.2" => Self::Sha384,
            "2.16.840.1.101.3.4.2.3" => Self::Sha512,
            _ => return None,
        })
    }
    /// The algorithm OID, dotted.
    pub fn oid(self) -> &'static str {
        match self {
            Self::Sha1 => "1.3.14.3.2.26",
            Self::Sha224 => "2.16.840.1.101.3.4.2.4",
            Self::Sha256 => "2.16.840.1.101.3.4.2.1",
            Self::Sha384 => "2.16.840.1.101.3.4.2.2",
            Self::Sha512 => "2.16.840.1.101.3.4.2.3",
        }
    }
    /// The OpenSSL digest.
    pub fn message_digest(self) -> MessageDigest {
        match self {
            Self::Sha1 => MessageDigest::sha1(),
            Self::Sha224 => MessageDigest::sha224(),
            Self::Sha256 => MessageDigest::sha256(),
            Self::Sha384 => MessageDigest::sha384(),
            Self::Sha512 => MessageDigest::sha512(),
        }
    }
    /// Output length in bytes.
    pub fn output_len(self) -> usize {
        match self {
            Self::Sha1 => 20,
            Self::Sha224 => 28,
            Self::Sha256 => 32,
            Self::Sha384 => 48,
            Self::Sha512 => 64,
        }
    }
    /// Hashes `data`. Empty only if OpenSSL fails, which it does not for these digests.
    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        hash(self.message_digest(), data)
            .map(|d| d.to_vec())
            .unwrap_or_default()
    }
}

/// The outcome of one verification step, reported as it is: a step that could not be done is
/// [`Check::NotPerformed`], never silently [`Check::Passed`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "kebab-case")]
pub enum Check {
    /// The step was not carried out (no trust store, file not read, ...).
    NotPerformed { reason: String },
    /// The step was carried out and succeeded.
    Passed,
    /// The step was carried out and failed.
    Failed { reason: String },
}

impl Check {
    pub fn not_performed(reason: impl Into<String>) -> Self {
        Self::NotPerformed {
            reason: reason.into(),
        }
    }
    pub fn failed(reason: impl Into<String>) -> Self {
        Self::Failed {
            reason: reason.into(),
        }
    }
    pub fn is_passed(&self) -> bool {
        matches!(self, Self::Passed)
    }
    pub fn is_failed(&self) -> bool {
        matches!(self, Self::Failed { .. })
    }
}

impl<E: fmt::Display> From<Result<(), E>> for Check {
    fn from(r: Result<(), E>) -> Self {
        match r {
            Ok(()) => Self::Passed,
            Err(e) => Self::failed(e.to_string()),
        }
    }
}

/// Why a SOD, a CMS object or a master list could not be parsed. Whose fault: the chip or file.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum PaError {
    #[error("EF.SOD framing: {0}")]
    Tlv(#[from] tlv::TlvError),
    #[error("EF.SOD does not start with tag 77 (found {0:#X})")]
    NotSod(u32),
    #[error("not a CMS SignedData: {0}")]
    Der(#[from] DerError),
    #[error("not a CMS SignedData (OpenSSL: {0})")]
    Cms(String),
    #[error("content type is {found}, expected {expected}")]
    ContentType {
        expected: &'static str,
        found: String,
    },
    #[error("unsupported hash algorithm {0}")]
    UnsupportedHash(String),
    #[error("data group number {0} out of range")]
    DataGroupNumber(u64),
    #[error("{what}: more than {limit} entries")]
    TooMany { what: &'static str, limit: usize },
    #[error("certificate: {0}")]
    Certificate(String),
    #[error("master list signature: {0}")]
    MasterListSignature(String),
    #[error("master list signer is not certified by a CSCA of the list: {0}")]
    MasterListUntrusted(String),
    #[error("not a certificate, CRL or CSCA master list")]
    UnknownFile,
}

/// Why a SignerInfo signature did not verify (RFC 5652 §5.6). Whose fault: the document (or an
/// attacker who altered it).
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SignatureError {
    #[error("no SignerInfo")]
    NoSignerInfo,
    #[error("the signer's certificate is not in the SignedData")]
    SignerCertificateMissing,
    #[error("signed attributes are missing (required for eContentType {0})")]
    SignedAttributesMissing(String),
    #[error("content-type attribute {found} differs from eContentType {expected}")]
    ContentTypeMismatch { expected: String, found: String },
    #[error("content-type signed attribute missing")]
    ContentTypeMissing,
    #[error("message-digest attribute does not match the digest of the content")]
    MessageDigestMismatch,
    #[error("message-digest signed attribute missing")]
    MessageDigestMissing,
    #[error("unsupported signature algorithm {0}")]
    UnsupportedAlgorithm(String),
    #[error("malformed signature algorithm parameters: {0}")]
    BadParameters(String),
    #[error("signature algorithm {algorithm} does not fit a {key} key")]
    KeyMismatch { algorithm: String, key: String },
    #[error("the signature does not verify with the signer's public key")]
    BadSignature,
    #[error("signer certificate: {0}")]
    Certificate(String),
}

/// How a SignerInfo names its certificate (RFC 5652 §5.3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SignerIdentifier {
    /// issuer Name (DER) and serial number (INTEGER content octets).
    IssuerAndSerialNumber { issuer: Vec<u8>, serial: Vec<u8> },
    /// subjectKeyIdentifier.
    SubjectKeyIdentifier(Vec<u8>),
}

/// One SignerInfo (RFC 5652 §5.3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignerInfo {
    pub sid: SignerIdentifier,
    pub digest_algorithm: HashAlgorithm,
    /// The `[0] IMPLICIT SignedAttributes` element as encoded (tag A0).
    pub signed_attributes: Option<Vec<u8>>,
    pub signature_algorithm: Oid,
    /// DER of the signature algorithm parameters, when present and not NULL.
    pub signature_parameters: Option<Vec<u8>>,
    pub signature: Vec<u8>,
}

/// A CMS SignedData (RFC 5652 §5.1) with encapsulated content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedData {
    /// eContentType.
    pub content_type: Oid,
    /// The eContent octets.
    pub content: Vec<u8>,
    /// The certificates field, each one DER.
    pub certificates: Vec<Vec<u8>>,
    pub signer_infos: Vec<SignerInfo>,
    /// Whether the input was BER that OpenSSL normalised to DER before parsing.
    pub normalised_from_ber: bool,
}

const MAX_ENTRIES: usize = 256;
const OID_SIGNED_DATA: &str = "1.2.840.113549.1.7.2";
const OID_CONTENT_TYPE: &str = "1.2.840.113549.1.9.3";
const OID_MESSAGE_DIGEST: &str = "1.2.840.113549.1.9.4";

fn algorithm(e: Element<'_>, what: &'static str) -> Result<(Oid, Option<Vec<u8>>), DerError> {
    let e = e.expect(der::SEQUENCE, what)?;
    let mut r = e.reader();
    let oid_e = r.expect(der::OID, what)?;
    let oid = Oid::from_der_content(oid_e.value).ok_or(DerError::Malformed(what))?;
    let params = match r.next_element()? {
        Some(p) if p.tag == 0x05 => None,
        Some(p) => Some(p.raw.to_vec()),
        None => None,
    };
    Ok((oid, params))
}

fn hash_algorithm(e: Element<'_>, what: &'static str) -> Result<HashAlgorithm, PaError> {
    let (oid, _) = algorithm(e, what)?;
    HashAlgorithm::from_oid(&oid.dotted()).ok_or_else(|| PaError::UnsupportedHash(oid.dotted()))
}

fn parse_signer_info(e: Element<'_>) -> Result<SignerInfo, PaError> {
    let e = e.expect(der::SEQUENCE, "SignerInfo")?;
    let mut r = e.reader();
    der::small_uint(r.element("SignerInfo version")?, "SignerInfo version")?;
    let sid_e = r.element("SignerInfo sid")?;
    let sid = match sid_e.tag {
        der::SEQUENCE => {
            let mut s = sid_e.reader();
            let issuer = s.expect(der::SEQUENCE, "sid issuer")?;
            let serial = s.expect(der::INTEGER, "sid serial")?;
            SignerIdentifier::IssuerAndSerialNumber {
                issuer: issuer.raw.to_vec(),
                serial: serial.value.to_vec(),
            }
        }
        0x80 => SignerIdentifier::SubjectKeyIdentifier(sid_e.value.to_vec()),
        found => {
            return Err(DerError::Unexpected {
                expected: "SignerIdentifier",
                found,
            }
            .into());
        }
    };
    let digest_algorithm = hash_algorithm(r.element("digestAlgorithm")?, "digestAlgorithm")?;
    let signed_attributes = r.optional(0xA0)?.map(|a| a.raw.to_vec());
    let (signature_algorithm, signature_parameters) =
        algorithm(r.element("signatureAlgorithm")?, "signatureAlgorithm")?;
    let signature = r.expect(der::OCTET_STRING, "signature")?.value.to_vec();
    Ok(SignerInfo {
        sid,
        digest_algorithm,
        signed_attributes,
        signature_algorithm,
        signature_parameters,
        signature,
    })
}

fn parse_content_info(input: &[u8]) -> Result<SignedData, PaError> {
    let ci = der::single(input, "ContentInfo")?.expect(der::SEQUENCE, "ContentInfo")?;
    let mut r = ci.reader();
    let ct = der::oid(r.element("contentType")?, "contentType")?;
    if ct != OID_SIGNED_DATA {
        return Err(PaError::ContentType {
            expected: OID_SIGNED_DATA,
            found: ct,
        });
    }
    let explicit = r.expect(0xA0, "content")?;
    let sd = der::single(explicit.value, "SignedData")?.expect(der::SEQUENCE, "SignedData")?;
    let mut r = sd.reader();
    der::small_uint(r.element("SignedData version")?, "SignedData version")?;
    r.expect(der::SET, "digestAlgorithms")?;
    let encap = r.expect(der::SEQUENCE, "encapContentInfo")?;
    let mut er = encap.reader();
    let ect = er.expect(der::OID, "eContentType")?;
    let content_type =
        Oid::from_der_content(ect.value).ok_or(DerError::Malformed("eContentType"))?;
    let econtent = er.expect(0xA0, "eContent")?;
    let content = der::single(econtent.value, "eContent")?
        .expect(der::OCTET_STRING, "eContent")?
        .value
        .to_vec();
    let mut certificates = Vec::new();
    if let Some(certs) = r.optional(0xA0)? {
        let mut cr = certs.reader();
        while let Some(c) = cr.next_element()? {
            if c.tag == der::SEQUENCE {
                if certificates.len() >= MAX_ENTRIES {
                    return Err(PaError::TooMany {
                        what: "certificates",
                        limit: MAX_ENTRIES,
                    });
                }
                certificates.push(c.raw.to_vec());
            }
        }
    }
    r.optional(0xA1)?; // crls: not used
    let infos = r.expect(der::SET, "signerInfos")?;
    let mut signer_infos = Vec::new();
    let mut ir = infos.reader();
    while let Some(i) = ir.next_element()? {
        if signer_infos.len() >= MAX_ENTRIES {
            return Err(PaError::TooMany {
                what: "signerInfos",
                limit: MAX_ENTRIES,
            });
        }
        signer_infos.push(parse_signer_info(i)?);
    }
    Ok(SignedData {
        content_type,
        content,
        certificates,
        signer_infos,
        normalised_from_ber: false,
    })
}

/// Signed attributes: (contentType, messageDigest) values.
fn signed_attribute_values(attrs: &[u8]) -> Result<(Option<String>, Option<Vec<u8>>), DerError> {
    let a = der::single(attrs, "signedAttrs")?;
    let mut r = a.reader();
    let (mut ct, mut md) = (None, None);
    while let Some(attr) = r.next_element()? {
        let attr = attr.expect(der::SEQUENCE, "Attribute")?;
        let mut ar = attr.reader();
        let ty = der::oid(ar.element("attrType")?, "attrType")?;
        let values = ar.expect(der::SET, "attrValues")?;
        let first = values.reader().element("attribute value")?;
        match ty.as_str() {
            OID_CONTENT_TYPE => ct = Some(der::oid(first, "content-type attribute")?),
            OID_MESSAGE_DIGEST => {
                md = Some(
                    first
                        .expect(der::OCTET_STRING, "message-digest attribute")?
                        .value
                        .to_vec(),
                )
            }
            _ => {}
        }
    }
    Ok((ct, md))
}

/// How a signature is to be checked.
enum Scheme {
    Pkcs1(HashAlgorithm),
    Pss {
        hash: HashAlgorithm,
        mgf1: HashAlgorithm,
        salt: i32,
    },
    Ecdsa(HashAlgorithm),
    EcdsaPlain(HashAlgorithm),
}

fn pss_parameters(params: Option<&[u8]>) -> Result<Scheme, SignatureError> {
    let bad = |e: DerError| SignatureError::BadParameters(e.to_string());
    let (mut hash, mut mgf1, mut salt) = (HashAlgorithm::Sha1, HashAlgorithm::Sha1, 20i32);
    if let Some(p) = params {
        let seq = der::single(p, "RSASSA-PSS-params")
            .and_then(|e| e.expect(der::SEQUENCE, "RSASSA-PSS-params"))
            .map_err(bad)?;
        let mut r = seq.reader();
        while let Some(field) = r.next_element().map_err(bad)? {
            let inner = der::single(field.value, "PSS parameter").map_err(bad)?;
            match field.tag {
                0xA0 => {
                    let (oid, _) = algorithm(inner, "hashAlgorithm").map_err(bad)?;
                    hash = HashAlgorithm::from_oid(&oid.dotted())
                        .ok_or_else(|| SignatureError::UnsupportedAlgorithm(oid.dotted()))?;
                }
                0xA1 => {
                    let (oid, mgf_params) = algorithm(inner, "maskGenAlgorithm").map_err(bad)?;
                    if oid.dotted() != "1.2.840.113549.1.1.8" {
                        return Err(SignatureError::UnsupportedAlgorithm(oid.dotted()));
                    }
                    let mp = mgf_params
                        .ok_or(SignatureError::BadParameters("MGF1 without hash".into()))?;
                    let e = der::single(&mp, "MGF1 hash").map_err(bad)?;
                    let (h, _) = algorithm(e, "MGF1 hash").map_err(bad)?;
                    mgf1 = HashAlgorithm::from_oid(&h.dotted())
                        .ok_or_else(|| SignatureError::UnsupportedAlgorithm(h.dotted()))?;
                }
                0xA2 => {
                    let s = der::small_uint(inner, "saltLength").map_err(bad)?;
                    salt = i32::try_from(s)
                        .map_err(|_| SignatureError::BadParameters("salt length".into()))?;
                }
                0xA3 => {
                    if der::small_uint(inner, "trailerField").map_err(bad)? != 1 {
                        return Err(SignatureError::BadParameters("trailer field".into()));
                    }
                }
                _ => return Err(SignatureError::BadParameters("unknown field".into())),
            }
        }
    }
    Ok(Scheme::Pss { hash, mgf1, salt })
}

fn scheme(info: &SignerInfo) -> Result<Scheme, SignatureError> {
    let oid = info.signature_algorithm.dotted();
    let d = info.digest_algorithm;
    Ok(match oid.as_str() {
        "1.2.840.113549.1.1.1" => Scheme::Pkcs1(d),
        "1.2.840.113549.1.1.5" => Scheme::Pkcs1(HashAlgorithm::Sha1),
        "1.2.840.113549.1.1.14" => Scheme::Pkcs1(HashAlgorithm::Sha224),
        "1.2.840.113549.1.1.11" => Scheme::Pkcs1(HashAlgorithm::Sha256),
        "1.2.840.113549.1.1.12" => Scheme::Pkcs1(HashAlgorithm::Sha384),
        "1.2.840.113549.1.1.13" => Scheme::Pkcs1(HashAlgorithm::Sha512),
        "1.2.840.113549.1.1.10" => pss_parameters(info.signature_parameters.as_deref())?,
        // id-ecPublicKey used as a signature algorithm: the digestAlgorithm gives the hash.
        "1.2.840.10045.2.1" => Scheme::Ecdsa(d),
        other => match crate::lds::ecdsa_hash(other) {
            Some(h) if other.starts_with("0.4.0.127.0.7.1.1.4.1") => Scheme::EcdsaPlain(h),
            Some(h) => Scheme::Ecdsa(h),
            None => return Err(SignatureError::UnsupportedAlgorithm(other.to_string())),
        },
    })
}

/// BSI TR-03111 §5.2.1 plain signature r||s to the X9.62 DER form OpenSSL verifies.
fn plain_to_der(sig: &[u8]) -> Result<Vec<u8>, SignatureError> {
    if sig.is_empty() || !sig.len().is_multiple_of(2) {
        return Err(SignatureError::BadSignature);
    }
    let (r, s) = sig.split_at(sig.len() / 2);
    let bn = |b: &[u8]| BigNum::from_slice(b).map_err(|_| SignatureError::BadSignature);
    EcdsaSig::from_private_components(bn(r)?, bn(s)?)
        .and_then(|s| s.to_der())
        .map_err(|_| SignatureError::BadSignature)
}

fn verify_with_key(
    info: &SignerInfo,
    key: &PKeyRef<Public>,
    data: &[u8],
) -> Result<(), SignatureError> {
    let scheme = scheme(info)?;
    let key_name = format!("{:?}", key.id());
    let mismatch = || SignatureError::KeyMismatch {
        algorithm: info.signature_algorithm.dotted(),
        key: key_name.clone(),
    };
    let ossl = |_| SignatureError::BadSignature;
    let (md, signature) = match &scheme {
        Scheme::Pkcs1(h) | Scheme::Pss { hash: h, .. } => {
            if key.id() != Id::RSA && key.id() != Id::RSA_PSS {
                return Err(mismatch());
            }
            (h.message_digest(), info.signature.clone())
        }
        Scheme::Ecdsa(h) => {
            if key.id() != Id::EC {
                return Err(mismatch());
            }
            (h.message_digest(), info.signature.clone())
        }
        Scheme::EcdsaPlain(h) => {
            if key.id() != Id::EC {
                return Err(mismatch());
            }
            (h.message_digest(), plain_to_der(&info.signature)?)
        }
    };
    let mut v = Verifier::new(md, key).map_err(ossl)?;
    match scheme {
        Scheme::Pkcs1(_) => v.set_rsa_padding(Padding::PKCS1).map_err(ossl)?,
        Scheme::Pss { mgf1, salt, .. } => {
            v.set_rsa_padding(Padding::PKCS1_PSS).map_err(ossl)?;
            v.set_rsa_mgf1_md(mgf1.message_digest()).map_err(ossl)?;
            v.set_rsa_pss_saltlen(RsaPssSaltlen::custom(salt))
                .map_err(ossl)?;
        }
        _ => {}
    }
    match v.verify_oneshot(&signature, data) {
        Ok(true) => Ok(()),
        _ => Err(SignatureError::BadSignature),
    }
}

fn serial_matches(cert: &X509, serial: &[u8]) -> bool {
    let ours = cert.serial_number().to_bn().map(|b| b.to_vec());
    let theirs = BigNum::from_slice(serial).map(|b| b.to_vec());
    matches!((ours, theirs), (Ok(a), Ok(b)) if a == b)
}

impl SignedData {
    /// Parses a CMS ContentInfo holding a SignedData. DER is read as is; on failure the input is
    /// given to OpenSSL, which accepts BER, and its DER re-encoding is read instead.
    pub fn parse(input: &[u8]) -> Result<Self, PaError> {
        match parse_content_info(input) {
            Ok(sd) => Ok(sd),
            Err(first) => {
                let Ok(cms) = CmsContentInfo::from_der(input) else {
                    return Err(first);
                };
                let der = cms.to_der().map_err(|e| PaError::Cms(e.to_string()))?;
                let mut sd = parse_content_info(&der)?;
                sd.normalised_from_ber = true;
                Ok(sd)
            }
        }
    }

    /// The certificate the (first) SignerInfo names, from the certificates field.
    pub fn signer_certificate(&self) -> Result<X509, SignatureError> {
        let info = self
            .signer_infos
            .first()
            .ok_or(SignatureError::NoSignerInfo)?;
        for der in &self.certificates {
            let Ok(cert) = X509::from_der(der) else {
                continue;
            };
            let matches = match &info.sid {
                SignerIdentifier::IssuerAndSerialNumber { issuer, serial } => {
                    cert.issuer_name().to_der().ok().as_deref() == Some(issuer.as_slice())
                        && serial_matches(&cert, serial)
                }
                SignerIdentifier::SubjectKeyIdentifier(ski) => {
                    cert.subject_key_id().map(|k| k.as_slice()) == Some(ski.as_slice())
                }
            };
            if matches {
                return Ok(cert);
            }
        }
        Err(SignatureError::SignerCertificateMissing)
    }

    /// Verifies the first SignerInfo with `cert`'s public key (RFC 5652 §5.4, §5.6): the
    /// content-type attribute must equal eContentType, the message-digest attribute the digest of
    /// eContent, and the signature over the DER SET OF signed attributes must verify.
    pub fn verify_signature_with(&self, cert: &X509) -> Result<(), SignatureError> {
        let info = self
            .signer_infos
            .first()
            .ok_or(SignatureError::NoSignerInfo)?;
        let key = cert
            .public_key()
            .map_err(|e| SignatureError::Certificate(e.to_string()))?;
        let Some(attrs) = &info.signed_attributes else {
            return Err(SignatureError::SignedAttributesMissing(
                self.content_type.dotted(),
            ));
        };
        let (ct, md) = signed_attribute_values(attrs)
            .map_err(|e| SignatureError::BadParameters(e.to_string()))?;
        let ct = ct.ok_or(SignatureError::ContentTypeMissing)?;
        if ct != self.content_type.dotted() {
            return Err(SignatureError::ContentTypeMismatch {
                expected: self.content_type.dotted(),
                found: ct,
            });
        }
        let md = md.ok_or(SignatureError::MessageDigestMissing)?;
        if md != info.digest_algorithm.digest(&self.content) {
            return Err(SignatureError::MessageDigestMismatch);
        }
        // §5.4: the signature covers the EXPLICIT SET OF encoding, not the [0] IMPLICIT tag.
        let mut signed = attrs.clone();
        if let Some(first) = signed.first_mut() {
            *first = 0x31;
        }
        verify_with_key(info, &key, &signed)
    }

    /// Verifies the signature with the certificate the SignerInfo names; returns that certificate.
    pub fn verify_signature(&self) -> Result<X509, SignatureError> {
        let cert = self.signer_certificate()?;
        self.verify_signature_with(&cert)?;
        Ok(cert)
    }
}

/// One `DataGroupHash` of the LDSSecurityObject.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct DataGroupHash {
    pub data_group: u8,
    #[serde(serialize_with = "hex_bytes")]
    pub hash: Vec<u8>,
}

fn hex_bytes<S: serde::Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&b.iter().map(|x| format!("{x:02X}")).collect::<String>())
}

/// `LDSVersionInfo` (LDSSecurityObject v1).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct LdsVersionInfo {
    pub lds_version: String,
    pub unicode_version: String,
}

/// LDSSecurityObject (ICAO 9303-10 §4.6.2.3).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct LdsSecurityObject {
    /// 0 (LDS 1.7) or 1 (LDS 1.8, with `lds_version_info`).
    pub version: u64,
    pub digest_algorithm: HashAlgorithm,
    pub hashes: Vec<DataGroupHash>,
    pub lds_version_info: Option<LdsVersionInfo>,
}

impl LdsSecurityObject {
    /// Parses the DER eContent of an EF.SOD.
    pub fn parse(content: &[u8]) -> Result<Self, PaError> {
        let seq = der::single(content, "LDSSecurityObject")?
            .expect(der::SEQUENCE, "LDSSecurityObject")?;
        let mut r = seq.reader();
        let version = der::small_uint(r.element("version")?, "LDSSecurityObject version")?;
        let digest_algorithm = hash_algorithm(r.element("hashAlgorithm")?, "hashAlgorithm")?;
        let list = r.expect(der::SEQUENCE, "dataGroupHashValues")?;
        let mut hashes = Vec::new();
        let mut lr = list.reader();
        while let Some(item) = lr.next_element()? {
            if hashes.len() >= MAX_ENTRIES {
                return Err(PaError::TooMany {
                    what: "dataGroupHashValues",
                    limit: MAX_ENTRIES,
                });
            }
            let item = item.expect(der::SEQUENCE, "DataGroupHash")?;
            let mut ir = item.reader();
            let n = der::small_uint(ir.element("dataGroupNumber")?, "dataGroupNumber")?;
            let data_group = u8::try_from(n).map_err(|_| PaError::DataGroupNumber(n))?;
            let hash = ir
                .expect(der::OCTET_STRING, "dataGroupHashValue")?
                .value
                .to_vec();
            hashes.push(DataGroupHash { data_group, hash });
        }
        let lds_version_info = match r.optional(der::SEQUENCE)? {
            Some(v) => {
                let mut vr = v.reader();
                let l = vr.expect(der::PRINTABLE_STRING, "ldsVersion")?;
                let u = vr.expect(der::PRINTABLE_STRING, "unicodeVersion")?;
                Some(LdsVersionInfo {
                    lds_version: String::from_utf8_lossy(l.value).into_owned(),
                    unicode_version: String::from_utf8_lossy(u.value).into_owned(),
                })
            }
            None => None,
        };
        Ok(Self {
            version,
            digest_algorithm,
            hashes,
            lds_version_info,
        })
    }
}

/// EF.SOD (ICAO 9303-10 §4.6.2): `77 { ContentInfo(SignedData(LDSSecurityObject)) }`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sod {
    pub signed_data: SignedData,
    pub lds_security_object: LdsSecurityObject,
}

/// A certificate as shown in a report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct CertificateSummary {
    pub subject: String,
    pub issuer: String,
    pub serial: String,
    pub not_before: String,
    pub not_after: String,
}

impl CertificateSummary {
    pub fn from_der(der: &[u8]) -> Option<Self> {
        let (_, c) = x509_parser::parse_x509_certificate(der).ok()?;
        Some(Self {
            subject: c.subject().to_string(),
            issuer: c.issuer().to_string(),
            serial: c.raw_serial_as_string(),
            not_before: c.validity().not_before.to_string(),
            not_after: c.validity().not_after.to_string(),
        })
    }
}

/// The outcome of one data group's hash comparison.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct DataGroupCheck {
    pub data_group: u8,
    #[serde(flatten)]
    pub check: Check,
}

/// What Passive Authentication found, step by step (ICAO 9303-11 §5.1.2).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct PassiveAuthReport {
    pub digest_algorithm: HashAlgorithm,
    /// The Document Signer certificate, when the SOD carries it.
    pub signer: Option<CertificateSummary>,
    /// SignerInfo signature, content-type and message-digest attributes.
    pub signature: Check,
    /// DS certificate chained to a trusted CSCA, validity at the verification time included.
    pub certificate_chain: Check,
    /// DS certificate against a CRL of its issuer.
    pub revocation: Check,
    /// One entry per data group listed in the SOD or given to the check.
    pub data_groups: Vec<DataGroupCheck>,
}

impl PassiveAuthReport {
    /// True when the signature and chain passed, nothing failed, and at least one data group
    /// hash was compared.
    pub fn is_valid(&self) -> bool {
        self.signature.is_passed()
            && self.certificate_chain.is_passed()
            && !self.revocation.is_failed()
            && !self.data_groups.iter().any(|d| d.check.is_failed())
            && self.data_groups.iter().any(|d| d.check.is_passed())
    }
    /// The check of data group `n`.
    pub fn data_group(&self, n: u8) -> Option<&Check> {
        self.data_groups
            .iter()
            .find(|d| d.data_group == n)
            .map(|d| &d.check)
    }
}

impl Sod {
    /// Parses EF.SOD: strips the `77` template and any trailing zero padding (CC1), then the CMS
    /// (DER, or BER via OpenSSL). The eContentType must be id-icao-ldsSecurityObject.
    pub fn parse(file: &[u8]) -> Result<Self, PaError> {
        let cms = match tlv::iter(file).next() {
            Some(Ok(t)) if t.tag() == 0x77 => t.value(),
            Some(Ok(t)) if t.tag() == 0x30 => t.raw(),
            Some(Ok(t)) => return Err(PaError::NotSod(t.tag())),
            Some(Err(e)) => return Err(e.into()),
            None => return Err(PaError::Tlv(tlv::TlvError::Truncated(0))),
        };
        Self::from_signed_data(SignedData::parse(cms)?)
    }

    /// Builds a SOD from an already parsed SignedData.
    pub fn from_signed_data(signed_data: SignedData) -> Result<Self, PaError> {
        let ct = signed_data.content_type.dotted();
        if ct != oids::LDS_SECURITY_OBJECT {
            return Err(PaError::ContentType {
                expected: oids::LDS_SECURITY_OBJECT,
                found: ct,
            });
        }
        let lds_security_object = LdsSecurityObject::parse(&signed_data.content)?;
        Ok(Self {
            signed_data,
            lds_security_object,
        })
    }

    /// The DS certificate (DER), when the SOD carries the one its SignerInfo names.
    pub fn signer_certificate_der(&self) -> Option<Vec<u8>> {
        self.signed_data.signer_certificate().ok()?.to_der().ok()
    }

    /// The eContentType.
    pub fn content_type(&self) -> &Oid {
        &self.signed_data.content_type
    }

    /// The digest algorithm of the data group hashes.
    pub fn digest_algorithm(&self) -> HashAlgorithm {
        self.lds_security_object.digest_algorithm
    }

    /// The hash the SOD lists for data group `n`.
    pub fn hash_for(&self, n: u8) -> Option<&[u8]> {
        self.lds_security_object
            .hashes
            .iter()
            .find(|h| h.data_group == n)
            .map(|h| h.hash.as_slice())
    }

    /// Verifies only the SOD signature (with its embedded DS certificate), no chain.
    pub fn verify_signature(&self) -> Check {
        self.signed_data.verify_signature().map(|_| ()).into()
    }

    /// Compares an already computed hash with the SOD's entry for data group `n` (for the
    /// Citizen Card, whose hashes follow its own field rules).
    pub fn check_hash(&self, n: u8, computed: &[u8]) -> Check {
        match self.hash_for(n) {
            None => Check::failed(format!("data group {n} is not listed in the SOD")),
            Some(h) if h == computed => Check::Passed,
            Some(_) => Check::failed(format!(
                "the {:?} hash of data group {n} differs from the SOD",
                self.digest_algorithm()
            )),
        }
    }

    /// Hashes the complete file of data group `n` (tag included) with the SOD's algorithm and
    /// compares (ICAO 9303-11 §5.1.2 step 4).
    pub fn check_data_group(&self, n: u8, file: &[u8]) -> Check {
        let file = trim_file(file);
        self.check_hash(n, &self.digest_algorithm().digest(file))
    }

    /// Full Passive Authentication at time `at`: signature, chain to a CSCA of `store` (if
    /// given), revocation, and each data group in `files` (number, complete file bytes). Data
    /// groups listed in the SOD but not given are reported as not performed; files given but not
    /// listed as failed.
    pub fn verify(
        &self,
        store: Option<&CscaStore>,
        at: OffsetDateTime,
        files: &[(u8, &[u8])],
    ) -> PassiveAuthReport {
        let signer = self.signed_data.signer_certificate();
        let signature: Check = match &signer {
            Ok(cert) => self.signed_data.verify_signature_with(cert).into(),
            Err(e) => Check::failed(e.to_string()),
        };
        let (certificate_chain, revocation) = match (&signer, store) {
            (Err(_), _) => (
                Check::not_performed("no DS certificate in the SOD"),
                Check::not_performed("no DS certificate in the SOD"),
            ),
            (Ok(_), None) => (
                Check::not_performed("no CSCA trust store configured"),
                Check::not_performed("no CSCA trust store configured"),
            ),
            (Ok(cert), Some(store)) => {
                let extra: Vec<X509> = self
                    .signed_data
                    .certificates
                    .iter()
                    .filter_map(|d| X509::from_der(d).ok())
                    .collect();
                (
                    store.verify_chain(cert, &extra, at),
                    store.check_revocation(cert, at),
                )
            }
        };
        let mut data_groups: Vec<DataGroupCheck> = self
            .lds_security_object
            .hashes
            .iter()
            .map(|h| {
                let check = match files.iter().find(|(n, _)| *n == h.data_group) {
                    Some((n, f)) => self.check_data_group(*n, f),
                    None => Check::not_performed("data group not read"),
                };
                DataGroupCheck {
                    data_group: h.data_group,
                    check,
                }
            })
            .collect();
        for (n, _) in files {
            if self.hash_for(*n).is_none() && !data_groups.iter().any(|d| d.data_group == *n) {
                data_groups.push(DataGroupCheck {
                    data_group: *n,
                    check: Check::failed(format!("data group {n} is not listed in the SOD")),
                });
            }
        }
        PassiveAuthReport {
            digest_algorithm: self.digest_algorithm(),
            signer: signer
                .ok()
                .and_then(|c| c.to_der().ok())
                .and_then(|d| CertificateSummary::from_der(&d)),
            signature,
            certificate_chain,
            revocation,
            data_groups,
        }
    }
}

/// A data group file as read may carry padding after its template (tag, length, value): hash the
/// template only. Malformed framing hashes the bytes as given, so the comparison fails honestly.
fn trim_file(file: &[u8]) -> &[u8] {
    match tlv::iter(file).next() {
        Some(Ok(t)) if file.starts_with(t.raw()) => t.raw(),
        _ => file,
    }
}

/// What [`CscaStore::add_file`] recognised.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Added {
    Certificates(usize),
    Crl,
    MasterList { certificates: usize, skipped: usize },
}

/// Trusted CSCA certificates and CRLs (ICAO 9303-12 §5, §9).
#[derive(Default)]
pub struct CscaStore {
    certificates: Vec<X509>,
    crls: Vec<X509Crl>,
}

impl fmt::Debug for CscaStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CscaStore")
            .field("certificates", &self.certificates.len())
            .field("crls", &self.crls.len())
            .finish()
    }
}

const MASTER_LIST_LIMIT: usize = 4096;

fn store_with(
    certs: &[X509],
    at: OffsetDateTime,
) -> Result<openssl::x509::store::X509Store, String> {
    let mut b = X509StoreBuilder::new().map_err(|e| e.to_string())?;
    for c in certs {
        b.add_cert(c.clone()).map_err(|e| e.to_string())?;
    }
    let mut param = X509VerifyParam::new().map_err(|e| e.to_string())?;
    param.set_time(at.unix_timestamp() as _);
    b.set_param(&param).map_err(|e| e.to_string())?;
    Ok(b.build())
}

/// A signing certificate (Document Signer, EF.CardSecurity or master list signer) must allow
/// digital signatures (ICAO 9303-12 §7.1.1, RFC 5280 §4.2.1.3). OpenSSL's chain verification,
/// run without a purpose, does not look at the leaf's keyUsage, so it is checked here: an
/// absent extension allows any use, a present one must have digitalSignature.
fn signer_key_usage(cert: &X509) -> Result<(), String> {
    let der = cert.to_der().map_err(|e| e.to_string())?;
    let (_, c) = x509_parser::parse_x509_certificate(&der).map_err(|e| e.to_string())?;
    match c.key_usage() {
        Ok(None) => Ok(()),
        Ok(Some(ku)) if ku.value.digital_signature() => Ok(()),
        Ok(Some(_)) => Err("its keyUsage does not allow digitalSignature".to_owned()),
        Err(e) => Err(format!("malformed keyUsage: {e}")),
    }
}

fn chain(certs: &[X509], leaf: &X509, extra: &[X509], at: OffsetDateTime) -> Result<(), String> {
    signer_key_usage(leaf)?;
    let store = store_with(certs, at)?;
    let mut untrusted = Stack::new().map_err(|e| e.to_string())?;
    for c in extra {
        untrusted.push(c.clone()).map_err(|e| e.to_string())?;
    }
    let mut ctx = X509StoreContext::new().map_err(|e| e.to_string())?;
    let (ok, err) = ctx
        .init(&store, leaf, &untrusted, |c| {
            c.verify_cert().map(|ok| (ok, c.error()))
        })
        .map_err(|e| e.to_string())?;
    if ok {
        Ok(())
    } else {
        Err(err.error_string().to_string())
    }
}

impl CscaStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of trusted certificates.
    pub fn len(&self) -> usize {
        self.certificates.len()
    }

    pub fn is_empty(&self) -> bool {
        self.certificates.is_empty()
    }

    /// Adds trusted certificates from PEM (one or more) or DER bytes.
    pub fn add_certificates(&mut self, bytes: &[u8]) -> Result<usize, PaError> {
        let certs =
            if bytes.starts_with(b"-----BEGIN") || bytes.windows(10).any(|w| w == b"-----BEGIN") {
                X509::stack_from_pem(bytes).map_err(|e| PaError::Certificate(e.to_string()))?
            } else {
                vec![X509::from_der(bytes).map_err(|e| PaError::Certificate(e.to_string()))?]
            };
        let n = certs.len();
        self.certificates.extend(certs);
        Ok(n)
    }

    /// Adds a CRL (PEM or DER). Its signature is checked when it is used.
    pub fn add_crl(&mut self, bytes: &[u8]) -> Result<(), PaError> {
        let crl = if bytes.starts_with(b"-----BEGIN") {
            X509Crl::from_pem(bytes)
        } else {
            X509Crl::from_der(bytes)
        }
        .map_err(|e| PaError::Certificate(e.to_string()))?;
        self.crls.push(crl);
        Ok(())
    }

    /// Adds the CSCA certificates of a CSCA master list (ICAO 9303-12 §9: SignedData with
    /// eContentType id-icao-cscaMasterList, content `SEQUENCE { version, SET OF Certificate }`).
    /// The list's signature must verify, and its signer must chain at `at` to a certificate in
    /// the list. Returns (added, skipped unparseable).
    ///
    /// That check proves the file is intact and self-consistent, not who published it: anyone
    /// can make a CSCA, list it and sign the list. Loading a master list is therefore a trust
    /// decision of whoever configures the store (as copying a CSCA into the trust folder is);
    /// take master lists only from their publisher (e.g. the ICAO PKD or a state's CSCA site)
    /// over an authenticated channel.
    pub fn add_master_list(
        &mut self,
        bytes: &[u8],
        at: OffsetDateTime,
    ) -> Result<(usize, usize), PaError> {
        let sd = SignedData::parse(bytes)?;
        let ct = sd.content_type.dotted();
        if ct != oids::CSCA_MASTER_LIST {
            return Err(PaError::ContentType {
                expected: oids::CSCA_MASTER_LIST,
                found: ct,
            });
        }
        let seq =
            der::single(&sd.content, "CscaMasterList")?.expect(der::SEQUENCE, "CscaMasterList")?;
        let mut r = seq.reader();
        der::small_uint(r.element("CscaMasterList version")?, "version")?;
        let set = r.expect(der::SET, "certList")?;
        let mut certs = Vec::new();
        let mut skipped = 0;
        let mut cr = set.reader();
        while let Some(c) = cr.next_element()? {
            if certs.len() + skipped >= MASTER_LIST_LIMIT {
                return Err(PaError::TooMany {
                    what: "master list certificates",
                    limit: MASTER_LIST_LIMIT,
                });
            }
            match X509::from_der(c.raw) {
                Ok(x) => certs.push(x),
                Err(_) => skipped += 1,
            }
        }
        let signer = sd
            .verify_signature()
            .map_err(|e| PaError::MasterListSignature(e.to_string()))?;
        let extra: Vec<X509> = sd
            .certificates
            .iter()
            .filter_map(|d| X509::from_der(d).ok())
            .collect();
        chain(&certs, &signer, &extra, at).map_err(PaError::MasterListUntrusted)?;
        let n = certs.len();
        self.certificates.extend(certs);
        Ok((n, skipped))
    }

    /// Adds one file of a trust folder, recognising PEM/DER certificates, CRLs and master lists.
    pub fn add_file(&mut self, bytes: &[u8], at: OffsetDateTime) -> Result<Added, PaError> {
        if bytes.windows(15).any(|w| w == b"BEGIN X509 CRL-") {
            self.add_crl(bytes)?;
            return Ok(Added::Crl);
        }
        if let Ok(n) = self.add_certificates(bytes) {
            return Ok(Added::Certificates(n));
        }
        if self.add_crl(bytes).is_ok() {
            return Ok(Added::Crl);
        }
        match self.add_master_list(bytes, at) {
            Ok((certificates, skipped)) => Ok(Added::MasterList {
                certificates,
                skipped,
            }),
            Err(e @ (PaError::MasterListSignature(_) | PaError::MasterListUntrusted(_))) => Err(e),
            Err(_) => Err(PaError::UnknownFile),
        }
    }

    /// Chains `ds` to a trusted CSCA at time `at` (ICAO 9303-11 §5.1.2 step 2), with `extra`
    /// certificates (e.g. those in the SOD) as untrusted intermediates.
    pub fn verify_chain(&self, ds: &X509, extra: &[X509], at: OffsetDateTime) -> Check {
        if self.certificates.is_empty() {
            return Check::not_performed("the CSCA trust store is empty");
        }
        chain(&self.certificates, ds, extra, at)
            .map_err(|e| format!("DS certificate not trusted: {e}"))
            .into()
    }

    /// Checks `ds` against the CRLs of its issuer whose signature verifies with a trusted CSCA.
    pub fn check_revocation(&self, ds: &X509, at: OffsetDateTime) -> Check {
        let Ok(issuer) = ds.issuer_name().to_der() else {
            return Check::failed("DS issuer name cannot be encoded");
        };
        let mut stale = false;
        let mut checked = false;
        for crl in &self.crls {
            if crl.issuer_name().to_der().ok().as_deref() != Some(issuer.as_slice()) {
                continue;
            }
            let signed_by_csca = self.certificates.iter().any(|c| {
                c.subject_name().to_der().ok().as_deref() == Some(issuer.as_slice())
                    && c.public_key().and_then(|k| crl.verify(&k)).unwrap_or(false)
            });
            if !signed_by_csca {
                continue;
            }
            if let CrlStatus::Revoked(_) = crl.get_by_cert(ds) {
                return Check::failed("the DS certificate is revoked by its CSCA's CRL");
            }
            let current = openssl::asn1::Asn1Time::from_unix(at.unix_timestamp() as _)
                .ok()
                .and_then(|now| {
                    let next = crl.next_update()?;
                    Some(crl.last_update() <= now && next >= now)
                })
                .unwrap_or(false);
            if current {
                checked = true;
            } else {
                stale = true;
            }
        }
        if checked {
            Check::Passed
        } else if stale {
            Check::not_performed("the CSCA's CRL is not current at the verification time")
        } else {
            Check::not_performed("no CRL of the DS certificate's issuer is loaded")
        }
    }
}
