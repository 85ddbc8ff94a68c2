//! Virtual Portuguese Citizen Cards (CC1, CC2), contact interface.
//!
//! - [`cc1`]: the IAS07 / GemSAFE card (RSA keys, 3072-bit by default), T=1 ATR that OpenSC's
//!   `gemsafeV1` driver knows, the file system and PKCS#15 structures of cards.md §A2, the fixed
//!   ID file of §A3 with a JPEG 2000 photo, the address behind PIN 0x83 and the SOD with CC1's
//!   own hashing rules (§A4).
//! - [`cc2`]: the IAS v5 card (P-256 keys): eID application (certificates, PrKDF) and national
//!   data application (MRZ, photo, ID, DG14, DG15 and an ICAO-style SOD over whole files).
//!
//! Both cards: PINs 0x81 (authentication), 0x82 (signature), 0x83 (address), 3 tries, each with
//! an 8-digit PUK (10 tries); GET DATA CPLC; MSE SET DST / PSO HASH / PSO COMPUTE DIGITAL
//! SIGNATURE (§A6); answers longer than Le go out with `61xx` for GET RESPONSE. After each
//! signature with the signature key the card forgets that PIN 0x82 was verified (one VERIFY per
//! qualified signature); the authentication PIN stays verified for the session.
//!
//! The test PKI ([`test_pki`]) is generated once per process: a root ("Test ECRaizEstado"), an
//! authentication sub-CA and a signature sub-CA for the citizens' certificates, and a document
//! signer under the root for the SODs. Every card built in a process chains to the same root.

pub mod applet;
pub mod cc1;
pub mod cc2;
pub mod identity;
pub mod pkcs15;

use std::path::Path;
use std::sync::{Mutex, PoisonError};

use openssl::hash::{MessageDigest, hash};
use openssl::pkey::{PKey, Private};
use openssl::x509::X509;
use thiserror::Error;

use crate::der;
use crate::engine::{CardBuilder, Df, Pin, VirtualCard};

use crate::pki::{self, CertProfile, CertSpec, Credential, KeySpec, PkiError};
use applet::{CardKey, PteidApplet};

pub use identity::{Address, Identity, Pins};

/// CC1 applet (IAS07 / GemSAFE): `60 46 32 FF 00 00 02`.
pub const CC1_AID: &[u8] = &[0x60, 0x46, 0x32, 0xFF, 0x00, 0x00, 0x02];
/// CC2 eID application: `60 46 32 FF 00 00 04`.
pub const CC2_EID_AID: &[u8] = &[0x60, 0x46, 0x32, 0xFF, 0x00, 0x00, 0x04];
/// CC2 national data application: `60 46 32 FF 00 00 05`.
pub const CC2_NATIONAL_DATA_AID: &[u8] = &[0x60, 0x46, 0x32, 0xFF, 0x00, 0x00, 0x05];

/// CC1 T=1 ATR (cards.md §A1; in OpenSC's gemsafeV1 table).
pub const CC1_ATR: &[u8] = &[
    0x3B, 0xFF, 0x96, 0x00, 0x00, 0x81, 0x31, 0xFE, 0x43, 0x80, 0x31, 0x80, 0x65, 0xB0, 0x85, 0x04,
    0x01, 0x20, 0x12, 0x0F, 0xFF, 0x82, 0x90, 0x00, 0xD0,
];
/// CC2 contact ATR (cards.md §A1).
pub const CC2_ATR: &[u8] = &[
    0x3B, 0xFF, 0x96, 0x00, 0x00, 0x81, 0x31, 0xFE, 0x43, 0x80, 0x31, 0x80, 0x65, 0xB0, 0x85, 0x05,
    0x00, 0x11, 0x12, 0x0F, 0xFF, 0x82, 0x90, 0x00, 0xE1,
];

/// PIN references (cards.md §A5).
pub const PIN_AUTH: u8 = 0x81;
pub const PIN_SIGN: u8 = 0x82;
pub const PIN_ADDRESS: u8 = 0x83;
pub const PIN_TRIES: u8 = 3;
pub const PUK_TRIES: u8 = 10;

/// Which card.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Generation {
    /// IAS07 / GemSAFE, RSA.
    Cc1,
    /// IAS v5, ECC P-256.
    Cc2,
}

/// Why a card could not be built.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum PteidError {
    /// Generating keys, certificates or signatures failed.
    #[error("test PKI: {0}")]
    Pki(#[from] PkiError),
    #[error("openssl: {0}")]
    OpenSsl(#[from] openssl::error::ErrorStack),
    /// The identity file is not usable (user's input).
    #[error("identity: {0}")]
    Identity(String),
    /// A field does not fit the card's fixed layout (user's input).
    #[error("{0} does not fit its field on the card")]
    FieldTooLong(&'static str),
    #[error("writing the PKI: {0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Lds(#[from] crate::emrtd::lds::LdsBuildError),
}

/// Faults for negative tests.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum SodFault {
    #[default]
    None,
    /// The SOD's hash of this data group number is wrong (one bit flipped).
    WrongHash(u8),
    /// The SOD's signature does not verify.
    BadSignature,
}

/// What to build.
#[derive(Clone, Debug)]
pub struct PteidOptions {
    pub identity: Identity,
    pub sod_fault: SodFault,
    /// CC1 RSA key size for the citizen's keys (3072 on current cards, 2048 on older ones;
    /// OpenSC 0.23 signs with both).
    pub rsa_bits: u32,
}

impl Default for PteidOptions {
    fn default() -> Self {
        PteidOptions {
            identity: Identity::default(),
            sod_fault: SodFault::None,
            rsa_bits: 3072,
        }
    }
}

/// A built card with the certificates a verifier needs.
#[derive(Debug)]
pub struct PteidCard {
    pub card: VirtualCard,
    pub pki: CardPki,
}

/// The certificates around one card.
#[derive(Clone, Debug)]
pub struct CardPki {
    pub root: X509,
    pub auth_sub_ca: X509,
    pub sign_sub_ca: X509,
    pub document_signer: X509,
    pub auth_cert: X509,
    pub sign_cert: X509,
}

impl CardPki {
    /// Writes `root.pem`, `auth-sub-ca.pem`, `sign-sub-ca.pem`, `document-signer.pem`,
    /// `citizen-auth.pem`, `citizen-sign.pem` into `dir` (created if missing).
    pub fn export_pem(&self, dir: &Path) -> Result<(), PteidError> {
        std::fs::create_dir_all(dir)?;
        for (name, cert) in [
            ("root.pem", &self.root),
            ("auth-sub-ca.pem", &self.auth_sub_ca),
            ("sign-sub-ca.pem", &self.sign_sub_ca),
            ("document-signer.pem", &self.document_signer),
            ("citizen-auth.pem", &self.auth_cert),
            ("citizen-sign.pem", &self.sign_cert),
        ] {
            std::fs::write(dir.join(name), cert.to_pem()?)?;
        }
        Ok(())
    }
}

/// The card of an `eid-virtual-card` profile: `pteid-cc1`, `pteid-cc1-2048` (RSA-2048 keys, as
/// on cards issued before RSA-3072) or `pteid-cc2`. Another name is an error.
pub fn by_profile(name: &str, options: &PteidOptions) -> Result<PteidCard, PteidError> {
    match name {
        "pteid-cc1" => cc1::cc1(options),
        "pteid-cc1-2048" => cc1::cc1(&PteidOptions {
            rsa_bits: 2048,
            ..options.clone()
        }),
        "pteid-cc2" => cc2::cc2(options),
        _ => Err(PteidError::Identity(format!(
            "no Citizen Card profile {name:?}"
        ))),
    }
}

/// The per-process test hierarchy.
#[derive(Clone, Debug)]
pub struct TestPki {
    pub root: Credential,
    pub auth_sub_ca: Credential,
    pub sign_sub_ca: Credential,
    pub document_signer: Credential,
}

/// Key cache slots (pki::cached_key) used here: 0-99.
mod slots {
    pub(super) const ROOT: u32 = 0;
    pub(super) const AUTH_CA: u32 = 1;
    pub(super) const SIGN_CA: u32 = 2;
    pub(super) const DOCUMENT_SIGNER: u32 = 3;
    pub(super) const CC1_AUTH: u32 = 10;
    pub(super) const CC1_SIGN: u32 = 11;
    pub(super) const CC1_CARD_KEY: u32 = 12;
    pub(super) const CC2_AUTH: u32 = 20;
    pub(super) const CC2_SIGN: u32 = 21;
    pub(super) const CC2_CARD_KEY: u32 = 22;
}

/// The test PKI, generated on first use (RSA-3072 CAs and document signer).
pub fn test_pki() -> Result<TestPki, PteidError> {
    static PKI: Mutex<Option<TestPki>> = Mutex::new(None);
    let mut slot = PKI.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(pki) = slot.as_ref() {
        return Ok(pki.clone());
    }
    let rsa = KeySpec::Rsa(3072);
    let org = "Teste - Cartão de Cidadão";
    let root = pki::issue(
        &CertSpec::new(
            &[("C", "PT"), ("O", org), ("CN", "Test ECRaizEstado")],
            CertProfile::Ca { path_len: None },
            7300,
        )
        .validity(-365, 7300),
        pki::cached_key(rsa, slots::ROOT)?,
        None,
    )?;
    let sub_ca = |cn: &str, slot: u32| {
        root.issue(
            &CertSpec::new(
                &[("C", "PT"), ("O", org), ("OU", "subECEstado"), ("CN", cn)],
                CertProfile::Ca { path_len: Some(0) },
                4000,
            )
            .validity(-300, 4000),
            pki::cached_key(rsa, slot)?,
        )
    };
    let auth_sub_ca = sub_ca(
        "Test EC de Autenticação do Cartão de Cidadão 0001",
        slots::AUTH_CA,
    )?;
    let sign_sub_ca = sub_ca(
        "Test EC de Assinatura Digital Qualificada do CC 0001",
        slots::SIGN_CA,
    )?;
    let document_signer = root.issue(
        &CertSpec::new(
            &[
                ("C", "PT"),
                ("O", org),
                ("OU", "Document Signer"),
                ("CN", "Test Document Signer Cartão de Cidadão 0001"),
            ],
            CertProfile::DigitalSignature,
            3650,
        )
        .validity(-200, 3650),
        pki::cached_key(rsa, slots::DOCUMENT_SIGNER)?,
    )?;
    let pki = TestPki {
        root,
        auth_sub_ca,
        sign_sub_ca,
        document_signer,
    };
    *slot = Some(pki.clone());
    Ok(pki)
}

/// The citizen's authentication and signature certificates for these public keys.
fn citizen_certs(
    pki: &TestPki,
    identity: &Identity,
    auth_key: openssl::pkey::PKey<openssl::pkey::Private>,
    sign_key: openssl::pkey::PKey<openssl::pkey::Private>,
) -> Result<(Credential, Credential), PteidError> {
    let serial_number = format!("PNOPT-{}", identity.civilian_id);
    let cn = format!("{} {}", identity.given_name, identity.surname);
    let subject = |ou: &'static str| {
        vec![
            ("C", "PT"),
            ("OU", ou),
            ("SN", identity.surname.as_str()),
            ("GN", identity.given_name.as_str()),
            ("serialNumber", serial_number.as_str()),
            ("CN", cn.as_str()),
        ]
    };
    let auth = pki.auth_sub_ca.issue(
        &CertSpec::new(
            &subject("Autenticação do Cidadão"),
            CertProfile::Authentication,
            3650,
        ),
        auth_key,
    )?;
    let sign = pki.sign_sub_ca.issue(
        &CertSpec::new(
            &subject("Assinatura Qualificada do Cidadão"),
            CertProfile::NonRepudiation,
            3650,
        ),
        sign_key,
    )?;
    Ok((auth, sign))
}

/// Certificate files are fixed-size on both generations, zero-padded after the DER (a reader
/// must parse the certificate's own length).
pub const CERT_FILE_LEN: usize = 2_000;

/// A certificate (or any data) in a file of `len` bytes, zero-padded.
fn padded(mut data: Vec<u8>, len: usize) -> Vec<u8> {
    if data.len() < len {
        data.resize(len, 0);
    }
    data
}

/// A certificate file: the DER, zero-padded to [`CERT_FILE_LEN`].
fn cert_file(der: Vec<u8>) -> Vec<u8> {
    padded(der, CERT_FILE_LEN)
}

/// What differs between the generations once their file systems are built.
struct Assembly<'a> {
    generation: Generation,
    atr: &'a [u8],
    mf: Df,
    /// Key references of the authentication and signature keys in MSE SET.
    key_refs: (u8, u8),
    keys: (PKey<Private>, PKey<Private>),
    serial: [u8; 8],
    applet_version: Option<Vec<u8>>,
    identity: &'a Identity,
    pki: &'a TestPki,
    certs: (Credential, Credential),
}

/// Both generations alike: the applet holding the two keys (each behind its own PIN; the
/// signature PIN consumed by every signature), the PINs, short APDUs only, and answers longer
/// than 256 bytes through 61xx / GET RESPONSE.
fn assemble(a: Assembly<'_>) -> PteidCard {
    let (auth_ref, sign_ref) = a.key_refs;
    let (auth_key, sign_key) = a.keys;
    let applet = PteidApplet::new(
        a.generation,
        vec![
            CardKey {
                reference: auth_ref,
                pin: PIN_AUTH,
                key: auth_key,
                one_shot: false,
            },
            CardKey {
                reference: sign_ref,
                pin: PIN_SIGN,
                key: sign_key,
                one_shot: true,
            },
        ],
        cplc(a.serial, a.generation),
        a.applet_version,
    );
    let mut builder = CardBuilder::new(a.atr, a.mf)
        .extended_length(false)
        .long_answers_via_get_response(true)
        .applet(applet);
    for pin in pins(a.identity) {
        builder = builder.pin(pin);
    }
    let mut card = builder.build();
    card.set_max_response_data(256);
    let (auth, sign) = a.certs;
    PteidCard {
        card,
        pki: CardPki {
            root: a.pki.root.cert.clone(),
            auth_sub_ca: a.pki.auth_sub_ca.cert.clone(),
            sign_sub_ca: a.pki.sign_sub_ca.cert.clone(),
            document_signer: a.pki.document_signer.cert.clone(),
            auth_cert: auth.cert,
            sign_cert: sign.cert,
        },
    }
}

/// The PIN objects of a card.
fn pins(identity: &Identity) -> Vec<Pin> {
    let p = &identity.pins;
    vec![
        Pin::new(PIN_AUTH, p.auth.as_bytes(), PIN_TRIES).with_puk(p.auth_puk.as_bytes(), PUK_TRIES),
        Pin::new(PIN_SIGN, p.sign.as_bytes(), PIN_TRIES).with_puk(p.sign_puk.as_bytes(), PUK_TRIES),
        Pin::new(PIN_ADDRESS, p.address.as_bytes(), PIN_TRIES)
            .with_puk(p.address_puk.as_bytes(), PUK_TRIES),
    ]
}

/// GET DATA CPLC answer (`9F7F 2A` + 42 bytes), with the 8-byte serial at answer offset 13
/// (cards.md §A7: IC fabrication date, IC serial number and batch identifier of the CPLC).
fn cplc(serial: [u8; 8], generation: Generation) -> Vec<u8> {
    let mut data = vec![0u8; 42];
    // IC fabricator, IC type, OS identifier, OS release date, OS release level.
    let head: [u8; 10] = match generation {
        Generation::Cc1 => [0x40, 0x90, 0x71, 0x60, 0x47, 0x91, 0x80, 0x81, 0x07, 0x01],
        Generation::Cc2 => [0x40, 0x90, 0x73, 0x78, 0x47, 0x92, 0x40, 0x52, 0x05, 0x00],
    };
    for (slot, b) in data.iter_mut().zip(head.iter().chain(serial.iter())) {
        *slot = *b;
    }
    let mut out = vec![0x9F, 0x7F, 0x2A];
    out.extend(data);
    out
}

/// ICAO 9303-10 §4.6.2.2 LDSSecurityObject v0 with SHA-256 (parameters NULL) over these
/// (number, hash) pairs.
pub fn lds_security_object(hashes: &[(u8, Vec<u8>)]) -> Result<Vec<u8>, PteidError> {
    let alg = der::sequence(&[
        der::oid_dotted(pki::digest_oid(MessageDigest::sha256())?).map_err(PkiError::from)?,
        der::null(),
    ]);
    Ok(crate::emrtd::lds::lds_security_object(
        crate::emrtd::lds::LdsSoVersion::V0,
        &alg,
        hashes,
    ))
}

/// The SOD contents (`77` + CMS) over these data group hashes, with the requested fault.
fn sod(
    pki: &TestPki,
    mut hashes: Vec<(u8, Vec<u8>)>,
    fault: SodFault,
) -> Result<Vec<u8>, PteidError> {
    if let SodFault::WrongHash(dg) = fault {
        for (n, h) in &mut hashes {
            if *n == dg
                && let Some(b) = h.first_mut()
            {
                *b ^= 0x01;
            }
        }
    }
    let lds = lds_security_object(&hashes)?;
    let options = pki::CmsOptions {
        corrupt_signature: fault == SodFault::BadSignature,
        ..pki::CmsOptions::default()
    };
    let cms = pki::cms_sign_with(
        pki::OID_LDS_SECURITY_OBJECT,
        &lds,
        &pki.document_signer.cert,
        &pki.document_signer.key,
        MessageDigest::sha256(),
        &options,
    )?;
    Ok(der::tlv(&[0x77], &cms))
}

fn sha256(data: &[u8]) -> Result<Vec<u8>, PteidError> {
    Ok(hash(MessageDigest::sha256(), data)?.to_vec())
}

/// The embedded synthetic face, JPEG 2000 (for the cards).
pub const PHOTO_JP2: &[u8] = include_bytes!("../../assets/citizen-photo.jp2");
/// The same face as JPEG (for eMRTD chips).
pub const PHOTO_JPEG: &[u8] = include_bytes!("../../assets/citizen-photo.jpg");

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn cplc_serial_at_offset_13() {
        let c = cplc([1, 2, 3, 4, 5, 6, 7, 8], Generation::Cc1);
        assert_eq!(c.len(), 45);
        assert_eq!(c.get(13..21).unwrap(), [1, 2, 3, 4, 5, 6, 7, 8]);
    }
}
