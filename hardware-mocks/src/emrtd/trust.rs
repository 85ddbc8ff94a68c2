//! The test PKI behind the virtual eMRTDs (ICAO 9303-12): a Country Signing CA of the specimen
//! state `UTO`, the Document Signer that signs every good profile's EF.SOD and EF.CardSecurity,
//! a master-list signer, the CSCA master list (CMS, eContentType 2.23.136.1.1.2, 9303-12 §9),
//! a CRL of the CSCA (9303-12 §7.1.4), and a second, untrusted CSCA with its own Document Signer
//! for the `emrtd-untrusted-csca` profile.
//!
//! Everything is generated once per process (keys through [`pki::cached_key`], slots 200-209)
//! and shared by every card built in it, so verifiers can be handed the trust material once.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use openssl::hash::MessageDigest;
use openssl::pkey::{PKeyRef, Private};
use openssl::sign::Signer;
use openssl::x509::X509Ref;
use time::{Duration, OffsetDateTime};

use super::lds::oid;
use crate::der;
use crate::pki::{self, CertProfile, CertSpec, Credential, Curve, KeySpec};

/// Key slots of [`pki::cached_key`] used here.
const SLOT_CSCA: u32 = 200;
const SLOT_DS: u32 = 201;
const SLOT_ML_SIGNER: u32 = 202;
const SLOT_ROGUE_CSCA: u32 = 203;
const SLOT_ROGUE_DS: u32 = 204;

/// Certificates, keys and lists of the eMRTD test PKI.
#[derive(Debug)]
pub struct TrustMaterial {
    /// The trusted CSCA of `UTO` (self-signed).
    pub csca: Credential,
    /// The Document Signer under [`TrustMaterial::csca`].
    pub document_signer: Credential,
    /// The master-list signer under [`TrustMaterial::csca`].
    pub master_list_signer: Credential,
    /// The CSCA master list: CMS SignedData (DER) by the master-list signer, content a
    /// CscaMasterList holding [`TrustMaterial::csca`].
    pub master_list: Vec<u8>,
    /// The CSCA's CRL (DER, X.509 v2 CRL, no revoked certificates, next update in 90 days).
    pub crl: Vec<u8>,
    /// A CSCA that no verifier trusts.
    pub rogue_csca: Credential,
    /// A Document Signer under [`TrustMaterial::rogue_csca`].
    pub rogue_document_signer: Credential,
}

/// Why the trust material could not be generated (OpenSSL failure: a bug or a broken OpenSSL).
#[derive(Debug, Clone, thiserror::Error)]
#[error("generating the eMRTD test PKI failed: {0}")]
pub struct TrustError(String);

/// The process-wide trust material, generated on first use.
pub fn trust() -> Result<&'static TrustMaterial, TrustError> {
    static TRUST: OnceLock<Result<TrustMaterial, TrustError>> = OnceLock::new();
    TRUST
        .get_or_init(|| generate().map_err(|e| TrustError(e.to_string())))
        .as_ref()
        .map_err(Clone::clone)
}

fn ec_key(slot: u32) -> Result<openssl::pkey::PKey<Private>, pki::PkiError> {
    pki::cached_key(KeySpec::Ec(Curve::P256), slot)
}

fn generate() -> Result<TrustMaterial, Box<dyn std::error::Error>> {
    let csca = pki::self_signed_ca(
        &[
            ("C", "UT"),
            ("O", "Utopia"),
            ("OU", "eMRTD test PKI"),
            ("CN", "CSCA Utopia"),
        ],
        ec_key(SLOT_CSCA)?,
        15 * 365,
    )?;
    let ds = csca.issue(
        &CertSpec::new(
            &[
                ("C", "UT"),
                ("O", "Utopia"),
                ("CN", "Document Signer Utopia 1"),
            ],
            CertProfile::DigitalSignature,
            10 * 365,
        ),
        ec_key(SLOT_DS)?,
    )?;
    let ml_signer = csca.issue(
        &CertSpec::new(
            &[
                ("C", "UT"),
                ("O", "Utopia"),
                ("CN", "Master List Signer Utopia"),
            ],
            CertProfile::DigitalSignature,
            5 * 365,
        ),
        ec_key(SLOT_ML_SIGNER)?,
    )?;
    let rogue_csca = pki::self_signed_ca(
        &[("C", "UT"), ("O", "Counterfeit"), ("CN", "CSCA Utopia")],
        ec_key(SLOT_ROGUE_CSCA)?,
        15 * 365,
    )?;
    let rogue_ds = rogue_csca.issue(
        &CertSpec::new(
            &[
                ("C", "UT"),
                ("O", "Counterfeit"),
                ("CN", "Document Signer Utopia 1"),
            ],
            CertProfile::DigitalSignature,
            10 * 365,
        ),
        ec_key(SLOT_ROGUE_DS)?,
    )?;
    let master_list = master_list(&[&csca.cert], &ml_signer)?;
    let crl = crl(&csca.cert, &csca.key, OffsetDateTime::now_utc())?;
    Ok(TrustMaterial {
        csca,
        document_signer: ds,
        master_list_signer: ml_signer,
        master_list,
        crl,
        rogue_csca,
        rogue_document_signer: rogue_ds,
    })
}

/// A CSCA master list (ICAO 9303-12 §9): CMS SignedData, eContentType id-icao-cscaMasterList,
/// content `CscaMasterList ::= SEQUENCE { version INTEGER (v0), certList SET OF Certificate }`.
pub fn master_list(cscas: &[&X509Ref], signer: &Credential) -> Result<Vec<u8>, pki::PkiError> {
    let certs = cscas
        .iter()
        .map(|c| c.to_der())
        .collect::<Result<Vec<_>, _>>()?;
    let content = der::sequence(&[&der::integer(0), &der::set_of(&certs)]);
    pki::cms_sign(
        pki::OID_CSCA_MASTER_LIST,
        &content,
        &signer.cert,
        &signer.key,
        MessageDigest::sha256(),
    )
}

/// An X.509 v2 CRL of `issuer` with no revoked certificates (RFC 5280 §5.1), signed with
/// ecdsa-with-SHA256; extensions: authority key identifier and CRL number 1 (ICAO 9303-12
/// §7.1.4 requires both).
pub fn crl(
    issuer: &X509Ref,
    key: &PKeyRef<Private>,
    now: OffsetDateTime,
) -> Result<Vec<u8>, Box<dyn std::error::Error>> {
    let algorithm = der::algorithm(&oid::ECDSA_WITH_SHA256);
    let name = issuer.subject_name().to_der()?;
    let this_update = der::utc_time(now - Duration::days(1));
    let next_update = der::utc_time(now + Duration::days(90));
    let mut extensions = Vec::new();
    if let Some(ski) = issuer.subject_key_id() {
        let aki = der::sequence(&[&der::tlv(&[0x80], ski.as_slice())]);
        extensions.push(der::sequence(&[
            &der::oid(&[2, 5, 29, 35]),
            &der::octet_string(&aki),
        ]));
    }
    extensions.push(der::sequence(&[
        &der::oid(&[2, 5, 29, 20]),
        &der::octet_string(&der::integer(1)),
    ]));
    let tbs = der::sequence(&[
        &der::integer(1),
        &algorithm,
        &name,
        &this_update,
        &next_update,
        &der::explicit(0, &der::sequence(&extensions)),
    ]);
    let mut signer = Signer::new(MessageDigest::sha256(), key)?;
    signer.update(&tbs)?;
    let signature = signer.sign_to_vec()?;
    Ok(der::sequence(&[
        &tbs,
        &algorithm,
        &der::bit_string(0, &signature),
    ]))
}

impl TrustMaterial {
    /// The trusted CSCA certificates (DER): what a verifier's CSCA folder holds.
    pub fn csca_certificates_der(&self) -> Result<Vec<Vec<u8>>, pki::PkiError> {
        Ok(vec![self.csca.cert_der()?])
    }

    /// Writes the verifier's trust material into `dir` (created if missing):
    /// `csca/csca-utopia.pem` (the CSCA folder), `masterlist-utopia.ml` (CMS master list, DER)
    /// and `csca-utopia.crl` (DER). Returns the paths written.
    pub fn export(&self, dir: &Path) -> Result<Vec<PathBuf>, Box<dyn std::error::Error>> {
        let folder = dir.join("csca");
        std::fs::create_dir_all(&folder)?;
        let files = [
            (folder.join("csca-utopia.pem"), self.csca.cert_pem()?),
            (dir.join("masterlist-utopia.ml"), self.master_list.clone()),
            (dir.join("csca-utopia.crl"), self.crl.clone()),
        ];
        let mut written = Vec::with_capacity(files.len());
        for (path, bytes) in files {
            std::fs::write(&path, bytes)?;
            written.push(path);
        }
        Ok(written)
    }
}
