//! Generated test PKIs (Citizen Card hierarchy, CSCA/DS) and CMS signing.
//!
//! Everything here is for virtual cards and tests: keys are generated with OpenSSL (RSA of any
//! size, EC on NIST and Brainpool curves), certificates are issued with the extensions a real
//! hierarchy carries (RFC 5280 §4.2: basicConstraints, keyUsage, subject and authority key
//! identifiers, optionally extendedKeyUsage), and [`cms_sign`] produces a CMS `SignedData`
//! (RFC 5652 §5) with any eContentType, as ICAO 9303-10 §4.6.2 (document security object,
//! `2.23.136.1.1.1`) and 9303-12 (master lists, `2.23.136.1.1.2`) need and as the Portuguese
//! Citizen Card's SOD uses.
//!
//! Expensive keys can be taken from a per-process cache ([`cached_key`]): generating an
//! RSA-3072 key takes a second or more, and tests build many cards.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, OnceLock, PoisonError};

use openssl::asn1::{Asn1Integer, Asn1Time};
use openssl::bn::BigNum;
use openssl::ec::{EcGroup, EcKey};
use openssl::error::ErrorStack;
use openssl::hash::{MessageDigest, hash};
use openssl::nid::Nid;
use openssl::pkey::{Id, PKey, PKeyRef, Private};
use openssl::rsa::Rsa;
use openssl::sign::Signer;
use openssl::x509::extension::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectKeyIdentifier,
};
use openssl::x509::{X509, X509Name, X509NameBuilder, X509Ref};
use thiserror::Error;

use crate::der;

/// Why a key, certificate or signature could not be made.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum PkiError {
    /// OpenSSL refused (a bug in the caller's parameters, or OpenSSL lacks the algorithm).
    #[error("openssl: {0}")]
    OpenSsl(#[from] ErrorStack),
    /// A subject attribute name OpenSSL does not know (caller's bug).
    #[error("unknown name attribute {0:?} or value out of its bounds")]
    UnknownAttribute(String),
    /// A dotted OID that is not well formed (caller's bug).
    #[error(transparent)]
    BadOid(#[from] der::OidError),
    /// The key type is neither RSA nor EC (caller's bug).
    #[error("unsupported key type for CMS signing")]
    UnsupportedKey,
    /// The digest has no known OID here (caller's bug).
    #[error("unsupported digest for CMS signing")]
    UnsupportedDigest,
}

/// Named elliptic curves (NIST and Brainpool, as ICAO 9303-11 §9.5.1 lists them).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[non_exhaustive]
pub enum Curve {
    P224,
    P256,
    P384,
    P521,
    BrainpoolP224r1,
    BrainpoolP256r1,
    BrainpoolP320r1,
    BrainpoolP384r1,
    BrainpoolP512r1,
}

impl Curve {
    /// The OpenSSL curve identifier.
    pub fn nid(self) -> Nid {
        match self {
            Curve::P224 => Nid::SECP224R1,
            Curve::P256 => Nid::X9_62_PRIME256V1,
            Curve::P384 => Nid::SECP384R1,
            Curve::P521 => Nid::SECP521R1,
            Curve::BrainpoolP224r1 => Nid::BRAINPOOL_P224R1,
            Curve::BrainpoolP256r1 => Nid::BRAINPOOL_P256R1,
            Curve::BrainpoolP320r1 => Nid::BRAINPOOL_P320R1,
            Curve::BrainpoolP384r1 => Nid::BRAINPOOL_P384R1,
            Curve::BrainpoolP512r1 => Nid::BRAINPOOL_P512R1,
        }
    }
}

/// What key to generate.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum KeySpec {
    /// RSA with this modulus size in bits, public exponent 65537.
    Rsa(u32),
    /// EC on a named curve.
    Ec(Curve),
}

/// A fresh key.
pub fn generate_key(spec: KeySpec) -> Result<PKey<Private>, PkiError> {
    Ok(match spec {
        KeySpec::Rsa(bits) => PKey::from_rsa(Rsa::generate(bits)?)?,
        KeySpec::Ec(curve) => {
            let group = EcGroup::from_curve_name(curve.nid())?;
            PKey::from_ec_key(EcKey::generate(&group)?)?
        }
    })
}

type KeyCache = Mutex<HashMap<(KeySpec, u32), PKey<Private>>>;

fn key_cache() -> &'static KeyCache {
    static CACHE: OnceLock<KeyCache> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

/// A key generated once per process for `(spec, slot)`: the same slot gives the same key (a
/// cheap reference-counted handle), different slots give different keys. Use distinct slots for
/// keys that must differ (a card's authentication and signature keys, a root and its sub-CA).
pub fn cached_key(spec: KeySpec, slot: u32) -> Result<PKey<Private>, PkiError> {
    // Generation happens under the lock: two threads asking for the same key wait for one
    // generation instead of racing two.
    let mut cache = key_cache().lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(key) = cache.get(&(spec, slot)) {
        return Ok(key.clone());
    }
    let key = generate_key(spec)?;
    cache.insert((spec, slot), key.clone());
    Ok(key)
}

/// What a certificate is for (its basicConstraints, keyUsage and extendedKeyUsage).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum CertProfile {
    /// A CA: basicConstraints cA (critical, with this pathLenConstraint), keyUsage keyCertSign
    /// and cRLSign (critical).
    Ca { path_len: Option<u32> },
    /// An end entity with keyUsage digitalSignature (authentication, document signers, master
    /// list signers).
    DigitalSignature,
    /// An end entity with keyUsage digitalSignature, keyEncipherment and keyAgreement and
    /// extendedKeyUsage clientAuth and emailProtection (a citizen's authentication certificate).
    Authentication,
    /// An end entity with keyUsage nonRepudiation only (qualified electronic signature).
    NonRepudiation,
}

/// The contents of a certificate to issue.
#[derive(Clone)]
pub struct CertSpec {
    /// Subject attributes in order, by OpenSSL short or long name: "C", "O", "OU", "CN",
    /// "serialNumber", "GN" (givenName), "SN" (surname), ...
    pub subject: Vec<(String, String)>,
    /// The certificate serial number (big-endian, unsigned; leading zeros are dropped).
    pub serial: Vec<u8>,
    /// Start of validity, in days relative to now (negative: in the past).
    pub not_before_days: i64,
    /// Length of validity in days from `not_before_days`.
    pub valid_days: i64,
    pub profile: CertProfile,
    /// Signature digest of the issuer (SHA-256 if `None`).
    pub digest: Option<MessageDigest>,
}

impl CertSpec {
    /// A spec valid from yesterday for `valid_days`, with a random 16-byte serial.
    pub fn new(subject: &[(&str, &str)], profile: CertProfile, valid_days: i64) -> Self {
        let mut serial = vec![0u8; 16];
        if openssl::rand::rand_bytes(&mut serial).is_err() {
            // Randomness failing is not a reason to stop a test PKI; fall back to a counter.
            serial = next_serial().to_be_bytes().to_vec();
        }
        if let Some(first) = serial.first_mut() {
            *first &= 0x7F;
            *first |= 0x01;
        }
        CertSpec {
            subject: subject
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            serial,
            not_before_days: -1,
            valid_days,
            profile,
            digest: None,
        }
    }

    /// Replaces the serial number.
    #[must_use]
    pub fn serial(mut self, serial: &[u8]) -> Self {
        self.serial = serial.to_vec();
        self
    }

    /// Replaces the validity: from `not_before_days` (relative to now) for `valid_days`.
    #[must_use]
    pub fn validity(mut self, not_before_days: i64, valid_days: i64) -> Self {
        self.not_before_days = not_before_days;
        self.valid_days = valid_days;
        self
    }

    #[must_use]
    pub fn digest(mut self, digest: MessageDigest) -> Self {
        self.digest = Some(digest);
        self
    }
}

impl fmt::Debug for CertSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertSpec")
            .field("subject", &self.subject)
            .field("not_before_days", &self.not_before_days)
            .field("valid_days", &self.valid_days)
            .field("profile", &self.profile)
            .finish_non_exhaustive()
    }
}

fn next_serial() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0x1000);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// A certificate and its private key.
#[derive(Clone)]
pub struct Credential {
    pub cert: X509,
    pub key: PKey<Private>,
}

impl Credential {
    /// The certificate, DER.
    pub fn cert_der(&self) -> Result<Vec<u8>, PkiError> {
        Ok(self.cert.to_der()?)
    }

    /// The certificate, PEM.
    pub fn cert_pem(&self) -> Result<Vec<u8>, PkiError> {
        Ok(self.cert.to_pem()?)
    }

    /// Issues a certificate for `key` under this credential.
    pub fn issue(&self, spec: &CertSpec, key: PKey<Private>) -> Result<Credential, PkiError> {
        issue(spec, key, Some(self))
    }
}

/// Shows the subject, never the key.
impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let subject = self
            .cert
            .subject_name()
            .entries()
            .map(|e| String::from_utf8_lossy(e.data().as_slice()).into_owned())
            .collect::<Vec<_>>()
            .join(", ");
        f.debug_struct("Credential")
            .field("subject", &subject)
            .finish_non_exhaustive()
    }
}

fn build_name(attributes: &[(String, String)]) -> Result<X509Name, PkiError> {
    let mut name = X509NameBuilder::new()?;
    for (field, value) in attributes {
        name.append_entry_by_text(field, value)
            .map_err(|_| PkiError::UnknownAttribute(field.clone()))?;
    }
    Ok(name.build())
}

fn days_from_now(days: i64) -> Result<Asn1Time, PkiError> {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let at = now.saturating_add(days.saturating_mul(86_400));
    Ok(Asn1Time::from_unix(at)?)
}

/// Issues a certificate for `key` (self-signed when `issuer` is `None`), RFC 5280 v3 with
/// subjectKeyIdentifier (SHA-1 of the public key), authorityKeyIdentifier (keyid) and the
/// extensions of `spec.profile`.
pub fn issue(
    spec: &CertSpec,
    key: PKey<Private>,
    issuer: Option<&Credential>,
) -> Result<Credential, PkiError> {
    let subject = build_name(&spec.subject)?;
    let mut builder = X509::builder()?;
    builder.set_version(2)?;
    let serial_bn = BigNum::from_slice(&spec.serial)?;
    let serial = Asn1Integer::from_bn(&serial_bn)?;
    builder.set_serial_number(&serial)?;
    builder.set_subject_name(&subject)?;
    match issuer {
        Some(issuer) => builder.set_issuer_name(issuer.cert.subject_name())?,
        None => builder.set_issuer_name(&subject)?,
    }
    let not_before = days_from_now(spec.not_before_days)?;
    let not_after = days_from_now(spec.not_before_days.saturating_add(spec.valid_days))?;
    builder.set_not_before(&not_before)?;
    builder.set_not_after(&not_after)?;
    builder.set_pubkey(&key)?;
    match spec.profile {
        CertProfile::Ca { path_len } => {
            let mut bc = BasicConstraints::new();
            bc.critical().ca();
            if let Some(len) = path_len {
                bc.pathlen(len);
            }
            builder.append_extension(bc.build()?)?;
            builder.append_extension(
                KeyUsage::new()
                    .critical()
                    .key_cert_sign()
                    .crl_sign()
                    .build()?,
            )?;
        }
        CertProfile::DigitalSignature => {
            builder.append_extension(BasicConstraints::new().critical().build()?)?;
            builder.append_extension(KeyUsage::new().critical().digital_signature().build()?)?;
        }
        CertProfile::Authentication => {
            builder.append_extension(BasicConstraints::new().critical().build()?)?;
            builder.append_extension(
                KeyUsage::new()
                    .critical()
                    .digital_signature()
                    .key_encipherment()
                    .key_agreement()
                    .build()?,
            )?;
            builder.append_extension(
                ExtendedKeyUsage::new()
                    .client_auth()
                    .email_protection()
                    .build()?,
            )?;
        }
        CertProfile::NonRepudiation => {
            builder.append_extension(BasicConstraints::new().critical().build()?)?;
            builder.append_extension(KeyUsage::new().critical().non_repudiation().build()?)?;
        }
    }
    let ski = {
        let ctx = builder.x509v3_context(issuer.map(|i| i.cert.as_ref()), None);
        SubjectKeyIdentifier::new().build(&ctx)?
    };
    builder.append_extension(ski)?;
    let aki = {
        // Self-signed: the authority key is the subject's own, whose SKI was just added.
        let ctx = builder.x509v3_context(issuer.map(|i| i.cert.as_ref()), None);
        AuthorityKeyIdentifier::new().keyid(true).build(&ctx)?
    };
    builder.append_extension(aki)?;
    let digest = spec.digest.unwrap_or_else(MessageDigest::sha256);
    match issuer {
        Some(issuer) => builder.sign(&issuer.key, digest)?,
        None => builder.sign(&key, digest)?,
    }
    Ok(Credential {
        cert: builder.build(),
        key,
    })
}

/// A self-signed CA certificate (convenience for [`issue`] with no issuer).
pub fn self_signed_ca(
    subject: &[(&str, &str)],
    key: PKey<Private>,
    valid_days: i64,
) -> Result<Credential, PkiError> {
    issue(
        &CertSpec::new(subject, CertProfile::Ca { path_len: None }, valid_days),
        key,
        None,
    )
}

// ---------------------------------------------------------------------------------------------
// CMS SignedData
// ---------------------------------------------------------------------------------------------

/// ICAO 9303-10 §4.6.2.1: eContentType of the document security object (LDSSecurityObject).
pub const OID_LDS_SECURITY_OBJECT: &str = "2.23.136.1.1.1";
/// ICAO 9303-12 §8.2: eContentType of a CSCA master list.
pub const OID_CSCA_MASTER_LIST: &str = "2.23.136.1.1.2";
/// BSI TR-03110-3 / ICAO 9303-11 §9.2.12: eContentType of EF.CardSecurity.
pub const OID_SECURITY_OBJECT: &str = "0.4.0.127.0.7.3.2.1";
/// RFC 5652 §5.1: id-signedData.
pub const OID_SIGNED_DATA: &str = "1.2.840.113549.1.7.2";

const OID_CONTENT_TYPE: &str = "1.2.840.113549.1.9.3";
const OID_MESSAGE_DIGEST: &str = "1.2.840.113549.1.9.4";
const OID_SIGNING_TIME: &str = "1.2.840.113549.1.9.5";
const OID_RSA_ENCRYPTION: &str = "1.2.840.113549.1.1.1";

/// Options of [`cms_sign_with`].
#[derive(Clone, Debug, Default)]
pub struct CmsOptions {
    /// Further certificates to embed after the signer's (a chain).
    pub extra_certs: Vec<X509>,
    /// Leave the signer's certificate out of `certificates`.
    pub omit_signer_cert: bool,
    /// Flip a bit of the signature value after signing (for negative tests).
    pub corrupt_signature: bool,
    /// Put this in the messageDigest attribute instead of the content's digest (negative tests).
    pub message_digest_override: Option<Vec<u8>>,
}

/// The DER algorithm identifier OID of a digest.
pub fn digest_oid(digest: MessageDigest) -> Result<&'static str, PkiError> {
    let nid = digest.type_();
    Ok(if nid == Nid::SHA1 {
        "1.3.14.3.2.26"
    } else if nid == Nid::SHA224 {
        "2.16.840.1.101.3.4.2.4"
    } else if nid == Nid::SHA256 {
        "2.16.840.1.101.3.4.2.1"
    } else if nid == Nid::SHA384 {
        "2.16.840.1.101.3.4.2.2"
    } else if nid == Nid::SHA512 {
        "2.16.840.1.101.3.4.2.3"
    } else {
        return Err(PkiError::UnsupportedDigest);
    })
}

fn ecdsa_oid(digest: MessageDigest) -> Result<&'static str, PkiError> {
    let nid = digest.type_();
    Ok(if nid == Nid::SHA1 {
        "1.2.840.10045.4.1"
    } else if nid == Nid::SHA224 {
        "1.2.840.10045.4.3.1"
    } else if nid == Nid::SHA256 {
        "1.2.840.10045.4.3.2"
    } else if nid == Nid::SHA384 {
        "1.2.840.10045.4.3.3"
    } else if nid == Nid::SHA512 {
        "1.2.840.10045.4.3.4"
    } else {
        return Err(PkiError::UnsupportedDigest);
    })
}

/// CMS `ContentInfo` holding a `SignedData` (RFC 5652 §5) over `content` with eContentType
/// `econtent_type` (dotted OID): one SignerInfo (version 1, issuerAndSerialNumber) with the
/// signed attributes contentType, messageDigest and signingTime, the signer certificate
/// embedded, signature by OpenSSL (RSA PKCS#1 v1.5 as rsaEncryption, or ECDSA-with-`digest`).
pub fn cms_sign(
    econtent_type: &str,
    content: &[u8],
    signer_cert: &X509Ref,
    signer_key: &PKeyRef<Private>,
    digest: MessageDigest,
) -> Result<Vec<u8>, PkiError> {
    cms_sign_with(
        econtent_type,
        content,
        signer_cert,
        signer_key,
        digest,
        &CmsOptions::default(),
    )
}

/// [`cms_sign`] with options (chain certificates, faults for negative tests).
pub fn cms_sign_with(
    econtent_type: &str,
    content: &[u8],
    signer_cert: &X509Ref,
    signer_key: &PKeyRef<Private>,
    digest: MessageDigest,
    options: &CmsOptions,
) -> Result<Vec<u8>, PkiError> {
    let digest_alg = der::sequence(&[der::oid_dotted(digest_oid(digest)?)?]);
    let content_digest = match &options.message_digest_override {
        Some(value) => value.clone(),
        None => hash(digest, content)?.to_vec(),
    };
    let now = time::OffsetDateTime::now_utc();
    let attributes = [
        attribute(OID_CONTENT_TYPE, &der::oid_dotted(econtent_type)?)?,
        attribute(OID_MESSAGE_DIGEST, &der::octet_string(&content_digest))?,
        attribute(OID_SIGNING_TIME, &der::utc_time(now))?,
    ];
    // SignedAttributes is a SET OF, DER-sorted (RFC 5652 §5.4 signs this encoding).
    let signed_attrs = der::set_of(&attributes);
    let (signature_alg, mut signature) = match signer_key.id() {
        Id::RSA => {
            let mut signer = Signer::new(digest, signer_key)?;
            signer.update(&signed_attrs)?;
            (
                der::sequence(&[der::oid_dotted(OID_RSA_ENCRYPTION)?, der::null()]),
                signer.sign_to_vec()?,
            )
        }
        Id::EC => {
            let mut signer = Signer::new(digest, signer_key)?;
            signer.update(&signed_attrs)?;
            (
                der::sequence(&[der::oid_dotted(ecdsa_oid(digest)?)?]),
                signer.sign_to_vec()?,
            )
        }
        _ => return Err(PkiError::UnsupportedKey),
    };
    if options.corrupt_signature
        && let Some(last) = signature.last_mut()
    {
        *last ^= 0x01;
    }
    let serial = signer_cert.serial_number().to_bn()?.to_vec();
    let issuer_and_serial = der::sequence(&[
        signer_cert.issuer_name().to_der()?,
        der::unsigned_integer(&serial),
    ]);
    // [0] IMPLICIT SET OF Attribute.
    let mut signed_attrs_implicit = signed_attrs;
    if let Some(tag) = signed_attrs_implicit.first_mut() {
        *tag = 0xA0;
    }
    let signer_info = der::sequence(&[
        der::integer(1),
        issuer_and_serial,
        digest_alg.clone(),
        signed_attrs_implicit,
        signature_alg,
        der::octet_string(&signature),
    ]);
    let mut certs = Vec::new();
    if !options.omit_signer_cert {
        certs.push(signer_cert.to_der()?);
    }
    for cert in &options.extra_certs {
        certs.push(cert.to_der()?);
    }
    let encap = der::sequence(&[
        der::oid_dotted(econtent_type)?,
        der::explicit(0, &der::octet_string(content)),
    ]);
    let mut signed_data_fields = vec![
        // Version 3: the eContentType is not id-data (RFC 5652 §5.1).
        der::integer(3),
        der::set_of(&[digest_alg]),
        encap,
    ];
    if !certs.is_empty() {
        // certificates [0] IMPLICIT CertificateSet, in the order given.
        signed_data_fields.push(der::constructed(&[0xA0], &certs));
    }
    signed_data_fields.push(der::set_of(&[signer_info]));
    let signed_data = der::sequence(&signed_data_fields);
    Ok(der::sequence(&[
        der::oid_dotted(OID_SIGNED_DATA)?,
        der::explicit(0, &signed_data),
    ]))
}

fn attribute(oid: &str, value: &[u8]) -> Result<Vec<u8>, PkiError> {
    Ok(der::sequence(&[
        der::oid_dotted(oid)?,
        der::set_of(&[value]),
    ]))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn chain_verifies_with_openssl() {
        use openssl::stack::Stack;
        use openssl::x509::X509StoreContext;
        use openssl::x509::store::X509StoreBuilder;
        let root = self_signed_ca(
            &[("C", "PT"), ("CN", "Test Root")],
            generate_key(KeySpec::Ec(Curve::BrainpoolP256r1)).unwrap(),
            3650,
        )
        .unwrap();
        let sub = root
            .issue(
                &CertSpec::new(
                    &[("C", "PT"), ("CN", "Test Sub")],
                    CertProfile::Ca { path_len: Some(0) },
                    1000,
                ),
                generate_key(KeySpec::Ec(Curve::P256)).unwrap(),
            )
            .unwrap();
        let leaf = sub
            .issue(
                &CertSpec::new(
                    &[("C", "PT"), ("serialNumber", "PNOPT-1"), ("CN", "A B")],
                    CertProfile::NonRepudiation,
                    100,
                ),
                generate_key(KeySpec::Rsa(1024)).unwrap(),
            )
            .unwrap();
        let mut store = X509StoreBuilder::new().unwrap();
        store.add_cert(root.cert.clone()).unwrap();
        let store = store.build();
        let mut chain = Stack::new().unwrap();
        chain.push(sub.cert.clone()).unwrap();
        let mut ctx = X509StoreContext::new().unwrap();
        assert!(
            ctx.init(&store, &leaf.cert, &chain, |c| c.verify_cert())
                .unwrap()
        );
        assert!(leaf.cert.authority_key_id().is_some());
        assert_eq!(
            leaf.cert.authority_key_id().unwrap().as_slice(),
            sub.cert.subject_key_id().unwrap().as_slice()
        );
    }

    #[test]
    fn cms_verifies_with_openssl_and_detects_faults() {
        use openssl::cms::{CMSOptions, CmsContentInfo};
        use openssl::stack::Stack;
        use openssl::x509::store::X509StoreBuilder;
        for spec in [KeySpec::Ec(Curve::P256), KeySpec::Rsa(2048)] {
            let root = self_signed_ca(
                &[("C", "PT"), ("CN", "Root")],
                generate_key(spec).unwrap(),
                100,
            )
            .unwrap();
            let ds = root
                .issue(
                    &CertSpec::new(
                        &[("C", "PT"), ("CN", "DS")],
                        CertProfile::DigitalSignature,
                        10,
                    ),
                    generate_key(spec).unwrap(),
                )
                .unwrap();
            let content = b"\x30\x03\x02\x01\x00";
            let der = cms_sign(
                OID_LDS_SECURITY_OBJECT,
                content,
                &ds.cert,
                &ds.key,
                MessageDigest::sha256(),
            )
            .unwrap();
            let mut store = X509StoreBuilder::new().unwrap();
            store.add_cert(root.cert.clone()).unwrap();
            let store = store.build();
            let mut cms = CmsContentInfo::from_der(&der).unwrap();
            let mut out = Vec::new();
            cms.verify(
                Some(&Stack::new().unwrap()),
                Some(&store),
                None,
                Some(&mut out),
                CMSOptions::empty(),
            )
            .unwrap();
            assert_eq!(out, content);
            for options in [
                CmsOptions {
                    corrupt_signature: true,
                    ..CmsOptions::default()
                },
                CmsOptions {
                    message_digest_override: Some(vec![0; 32]),
                    ..CmsOptions::default()
                },
            ] {
                let der = cms_sign_with(
                    OID_LDS_SECURITY_OBJECT,
                    content,
                    &ds.cert,
                    &ds.key,
                    MessageDigest::sha256(),
                    &options,
                )
                .unwrap();
                let mut cms = CmsContentInfo::from_der(&der).unwrap();
                assert!(
                    cms.verify(None, Some(&store), None, None, CMSOptions::empty())
                        .is_err()
                );
            }
        }
    }

    #[test]
    fn cached_keys_are_stable_per_slot() {
        let a = cached_key(KeySpec::Ec(Curve::P256), 7).unwrap();
        let b = cached_key(KeySpec::Ec(Curve::P256), 7).unwrap();
        let c = cached_key(KeySpec::Ec(Curve::P256), 8).unwrap();
        assert!(a.public_eq(&b));
        assert!(!a.public_eq(&c));
    }
}
