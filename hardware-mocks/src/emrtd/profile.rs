//! The virtual eMRTD profiles: their fixed document data, their keys and the encoded, signed
//! contents of their chips.
//!
//! | profile | document | access | chip authentication | AA | face | fault |
//! |---|---|---|---|---|---|---|
//! | `emrtd-bac` | passport (TD3) | BAC, 3DES | none | RSA-2048, ISO 9796-2 | JPEG | none |
//! | `emrtd-pace` | ID card (TD1) | PACE-GM ECDH brainpoolP256r1 AES-128; MRZ or CAN | CA ECDH AES-128, brainpoolP256r1 | ECDSA P-256 SHA-256 | JPEG 2000 | none |
//! | `emrtd-pace-cam` | ID card (TD1) | PACE-CAM ECDH brainpoolP384r1 AES-256; MRZ or CAN | PACE-CAM (key in EF.CardSecurity and DG14) | none | JPEG | none |
//! | `emrtd-bad-dg-hash` | as `emrtd-pace` | | | | | DG11 does not match its EF.SOD hash |
//! | `emrtd-bad-ds-signature` | as `emrtd-pace` | | | | | EF.SOD signature corrupted |
//! | `emrtd-untrusted-csca` | as `emrtd-pace` | | | | | Document Signer under a CSCA verifiers do not trust |
//! | `emrtd-clone` | as `emrtd-pace` | | | | | the chip's AA key is not the DG15 key |
//! | `emrtd-bad-mac` | as `emrtd-pace` | | | | | the chip corrupts the MAC of its answers after PACE |
//!
//! Keys are generated once per process ([`crate::pki::cached_key`], slots 210-219); every card
//! built in a process has the same keys, files and signatures.

use std::sync::OnceLock;

use openssl::pkey::{PKey, Private};

use eid_protocols::aa::{AaHash, AaKey};
use eid_protocols::ca::CaProtocol;
use eid_protocols::pace::{PaceChipConfig, PaceProtocol};
use eid_protocols::sm::Cipher;
use zeroize::Zeroizing;

use super::chip::{CaKey, ChipConfig, EmrtdApplet, Faults};
use super::data::{Document, MrzFormat};
use super::lds::{self, ImageFormat, oid, param_id};
use super::trust::{TrustError, trust};
use crate::engine::{Df, Ef, VirtualCard};
use crate::pki::{self, CmsOptions, Curve, KeySpec, PkiError};

/// The synthetic face of the test documents, JPEG (300 x 400).
pub const FACE_JPEG: &[u8] = include_bytes!("../../assets/citizen-photo.jpg");
/// The same face, JPEG 2000 (JP2).
pub const FACE_JP2: &[u8] = include_bytes!("../../assets/citizen-photo.jp2");

pub use eid_protocols::lds::LDS1_AID;
use eid_protocols::lds::{
    DataGroup, EF_CARD_ACCESS_FID, EF_CARD_ACCESS_SFI, EF_CARD_SECURITY_FID, EF_COM_FID,
    EF_COM_SFI, EF_SOD_FID, EF_SOD_SFI,
};

/// File identifier given to the LDS1 application DF (not standardised; selected by AID).
pub const LDS1_DF_FID: u16 = 0x7F10;
/// EF.CardAccess (in the MF).
pub const EF_CARD_ACCESS: (u16, u8) = (EF_CARD_ACCESS_FID, EF_CARD_ACCESS_SFI);
/// EF.CardSecurity (in the MF).
pub const EF_CARD_SECURITY: u16 = EF_CARD_SECURITY_FID;
/// EF.COM (in the LDS1 application).
pub const EF_COM: (u16, u8) = (EF_COM_FID, EF_COM_SFI);
/// EF.SOD (in the LDS1 application).
pub const EF_SOD: (u16, u8) = (EF_SOD_FID, EF_SOD_SFI);

/// FID (`01nn`) and SFI (`nn`) of data group `n`, ICAO 9303-10 §4.6 table 34; `None` outside
/// 1 to 16.
pub fn dg_file(number: u8) -> Option<(u16, u8)> {
    DataGroup::new(number).map(|dg| (dg.fid(), dg.sfi()))
}

/// The eMRTD profiles.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[non_exhaustive]
pub enum Profile {
    Bac,
    Pace,
    PaceCam,
    BadDgHash,
    BadDsSignature,
    UntrustedCsca,
    Clone,
    BadMac,
}

/// How the chip is accessed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Access {
    /// BAC with the MRZ (3DES secure messaging).
    Bac,
    /// PACE generic mapping, ECDH on the named standard domain parameters, with this PACE OID.
    PaceGm {
        protocol: &'static [u64],
        parameter_id: u64,
    },
    /// PACE with chip authentication mapping.
    PaceCam {
        protocol: &'static [u64],
        parameter_id: u64,
    },
}

/// The `UTO` passport of `emrtd-bac` (the ICAO 9303 specimen holder, valid until 2034).
pub const DOC_BAC: Document = Document {
    format: MrzFormat::Td3,
    document_code: "P<",
    issuing_state: "UTO",
    surname: "ERIKSSON",
    given_names: "ANNA MARIA",
    document_number: "L898902C3",
    nationality: "UTO",
    date_of_birth: "740812",
    sex: "F",
    date_of_expiry: "340415",
    optional_data: "ZE184226B",
    can: None,
    full_date_of_birth: "19740812",
    place_of_birth: "ZENITH",
    address: "1 MAIN STREET<ZENITH<UTOPIA",
    issuing_authority: "MINISTRY OF FOREIGN AFFAIRS UTOPIA",
    date_of_issue: "20240416",
};

/// The `UTO` identity card of `emrtd-pace` and the faulty variants.
pub const DOC_PACE: Document = Document {
    format: MrzFormat::Td1,
    document_code: "ID",
    issuing_state: "UTO",
    surname: "SILVA",
    given_names: "JOAO PEDRO",
    document_number: "IDP000017",
    nationality: "UTO",
    date_of_birth: "880214",
    sex: "M",
    date_of_expiry: "330901",
    optional_data: "",
    can: Some("123456"),
    full_date_of_birth: "19880214",
    place_of_birth: "ZENITH",
    address: "22 HARBOUR ROAD<ZENITH<UTOPIA",
    issuing_authority: "CIVIL REGISTRY UTOPIA",
    date_of_issue: "20230902",
};

/// The `UTO` identity card of `emrtd-pace-cam`.
pub const DOC_PACE_CAM: Document = Document {
    format: MrzFormat::Td1,
    document_code: "ID",
    issuing_state: "UTO",
    surname: "MARTINS",
    given_names: "ANA SOFIA",
    document_number: "IDC000025",
    nationality: "UTO",
    date_of_birth: "951130",
    sex: "F",
    date_of_expiry: "350630",
    optional_data: "",
    can: Some("654321"),
    full_date_of_birth: "19951130",
    place_of_birth: "ATLANTIS",
    address: "7 RUA DO SOL<ATLANTIS<UTOPIA",
    issuing_authority: "CIVIL REGISTRY UTOPIA",
    date_of_issue: "20250701",
};

impl Profile {
    /// Every eMRTD profile.
    pub const ALL: [Profile; 8] = [
        Profile::Bac,
        Profile::Pace,
        Profile::PaceCam,
        Profile::BadDgHash,
        Profile::BadDsSignature,
        Profile::UntrustedCsca,
        Profile::Clone,
        Profile::BadMac,
    ];

    /// The profile's public name (a stable contract: tests, the demo and `eid-virtual-card`).
    pub fn name(self) -> &'static str {
        match self {
            Profile::Bac => "emrtd-bac",
            Profile::Pace => "emrtd-pace",
            Profile::PaceCam => "emrtd-pace-cam",
            Profile::BadDgHash => "emrtd-bad-dg-hash",
            Profile::BadDsSignature => "emrtd-bad-ds-signature",
            Profile::UntrustedCsca => "emrtd-untrusted-csca",
            Profile::Clone => "emrtd-clone",
            Profile::BadMac => "emrtd-bad-mac",
        }
    }

    /// The profile with this name.
    pub fn from_name(name: &str) -> Option<Profile> {
        Profile::ALL.into_iter().find(|p| p.name() == name)
    }

    /// One line for `eid-virtual-card --list`.
    pub fn description(self) -> &'static str {
        match self {
            Profile::Bac => "eMRTD passport (TD3), BAC 3DES, RSA Active Authentication",
            Profile::Pace => {
                "eMRTD ID card (TD1), PACE-GM brainpoolP256r1 AES-128 (MRZ or CAN), CA, ECDSA AA"
            }
            Profile::PaceCam => {
                "eMRTD ID card (TD1), PACE-CAM brainpoolP384r1 AES-256 (MRZ or CAN), EF.CardSecurity"
            }
            Profile::BadDgHash => "emrtd-pace, but DG11 does not match its EF.SOD hash",
            Profile::BadDsSignature => "emrtd-pace, but the EF.SOD signature is corrupted",
            Profile::UntrustedCsca => {
                "emrtd-pace, but the Document Signer is under an unknown CSCA"
            }
            Profile::Clone => "emrtd-pace, but the chip's AA key does not match DG15",
            Profile::BadMac => "emrtd-pace, but the chip corrupts response MACs after PACE",
        }
    }

    /// The document printed data (document number, dates, CAN, MRZ).
    pub fn document(self) -> &'static Document {
        match self {
            Profile::Bac => &DOC_BAC,
            Profile::PaceCam => &DOC_PACE_CAM,
            _ => &DOC_PACE,
        }
    }

    /// How a terminal gets in.
    pub fn access(self) -> Access {
        match self {
            Profile::Bac => Access::Bac,
            Profile::PaceCam => Access::PaceCam {
                protocol: &oid::PACE_ECDH_CAM_AES_256,
                parameter_id: param_id::BRAINPOOL_P384R1,
            },
            _ => Access::PaceGm {
                protocol: &oid::PACE_ECDH_GM_AES_128,
                parameter_id: param_id::BRAINPOOL_P256R1,
            },
        }
    }

    /// The data groups on the chip, in EF.COM order.
    pub fn data_groups(self) -> &'static [u8] {
        match self {
            Profile::Bac => &[1, 2, 11, 12, 15],
            Profile::PaceCam => &[1, 2, 11, 12, 14],
            _ => &[1, 2, 11, 12, 14, 15],
        }
    }

    /// Whether the chip does Active Authentication.
    pub fn has_active_authentication(self) -> bool {
        self.data_groups().contains(&15)
    }
}

/// Why a profile's chip could not be built (a bug or a broken OpenSSL; never the caller's).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EmrtdError {
    #[error(transparent)]
    Trust(#[from] TrustError),
    #[error("building the Citizen Card: {0}")]
    Pteid(#[from] crate::pteid::PteidError),
    #[error("test PKI: {0}")]
    Pki(#[from] PkiError),
    #[error("building the LDS files: {0}")]
    Lds(#[from] lds::LdsBuildError),
    #[error("profile data: {0}")]
    Mrz(#[from] eid_protocols::mrz::MrzError),
    #[error("openssl: {0}")]
    Crypto(#[from] openssl::error::ErrorStack),
    #[error("{0}")]
    Other(String),
}

/// The chip's private keys (shared by every card of the profile in this process).
#[derive(Clone)]
pub struct ChipKeys {
    /// The Active Authentication key the chip signs with (DG15 holds [`ChipKeys::aa_public`]
    /// of the genuine key; for `emrtd-clone` they differ).
    pub aa: Option<PKey<Private>>,
    /// The key whose public half DG15 holds.
    pub aa_public: Option<PKey<Private>>,
    /// The static Chip Authentication key (DG14), for CA or PACE-CAM.
    pub chip_authentication: Option<PKey<Private>>,
}

impl std::fmt::Debug for ChipKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChipKeys")
            .field("aa", &self.aa.as_ref().map(|k| k.id()))
            .field(
                "chip_authentication",
                &self.chip_authentication.as_ref().map(|k| k.id()),
            )
            .finish_non_exhaustive()
    }
}

/// Key slots of [`pki::cached_key`] used here.
const SLOT_AA_RSA: u32 = 210;
const SLOT_AA_EC: u32 = 211;
const SLOT_CA_BP256: u32 = 212;
const SLOT_CAM_BP384: u32 = 213;
const SLOT_AA_CLONE: u32 = 214;

/// The keys of a profile's chip.
pub fn chip_keys(profile: Profile) -> Result<ChipKeys, PkiError> {
    Ok(match profile {
        Profile::Bac => {
            let aa = pki::cached_key(KeySpec::Rsa(2048), SLOT_AA_RSA)?;
            ChipKeys {
                aa: Some(aa.clone()),
                aa_public: Some(aa),
                chip_authentication: None,
            }
        }
        Profile::PaceCam => ChipKeys {
            aa: None,
            aa_public: None,
            chip_authentication: Some(pki::cached_key(
                KeySpec::Ec(Curve::BrainpoolP384r1),
                SLOT_CAM_BP384,
            )?),
        },
        _ => {
            let genuine = pki::cached_key(KeySpec::Ec(Curve::P256), SLOT_AA_EC)?;
            let aa = if profile == Profile::Clone {
                pki::cached_key(KeySpec::Ec(Curve::P256), SLOT_AA_CLONE)?
            } else {
                genuine.clone()
            };
            ChipKeys {
                aa: Some(aa),
                aa_public: Some(genuine),
                chip_authentication: Some(pki::cached_key(
                    KeySpec::Ec(Curve::BrainpoolP256r1),
                    SLOT_CA_BP256,
                )?),
            }
        }
    })
}

/// The encoded files of a chip.
#[derive(Clone, Debug)]
pub struct ChipFiles {
    /// EF.CardAccess (absent for BAC-only chips).
    pub card_access: Option<Vec<u8>>,
    /// EF.CardSecurity (PACE-CAM chips).
    pub card_security: Option<Vec<u8>>,
    pub com: Vec<u8>,
    /// The data groups, by number, in EF.COM order.
    pub data_groups: Vec<(u8, Vec<u8>)>,
    pub sod: Vec<u8>,
}

impl ChipFiles {
    /// The file of data group `n`.
    pub fn data_group(&self, number: u8) -> Option<&[u8]> {
        self.data_groups
            .iter()
            .find(|(n, _)| *n == number)
            .map(|(_, f)| f.as_slice())
    }
}

/// The files of a profile's chip, built and signed once per process.
pub fn chip_files(profile: Profile) -> Result<&'static ChipFiles, EmrtdError> {
    static FILES: OnceLock<Vec<(Profile, Result<ChipFiles, String>)>> = OnceLock::new();
    let all = FILES.get_or_init(|| {
        Profile::ALL
            .into_iter()
            .map(|p| (p, build_files(p).map_err(|e| e.to_string())))
            .collect()
    });
    match all.iter().find(|(p, _)| *p == profile) {
        Some((_, Ok(files))) => Ok(files),
        Some((_, Err(e))) => Err(EmrtdError::Other(e.clone())),
        None => Err(EmrtdError::Other(format!(
            "no files for {}",
            profile.name()
        ))),
    }
}

/// The SubjectPublicKeyInfo (DER) of a key.
fn spki(key: &PKey<Private>) -> Result<Vec<u8>, openssl::error::ErrorStack> {
    key.public_key_to_der()
}

/// Builds and signs the files of a profile (no caching).
pub fn build_files(profile: Profile) -> Result<ChipFiles, EmrtdError> {
    let document = profile.document();
    let keys = chip_keys(profile)?;
    let trust = trust()?;

    // SecurityInfos of EF.CardAccess (and DG14, EF.CardSecurity).
    let pace_info = match profile.access() {
        Access::Bac => None,
        Access::PaceGm {
            protocol,
            parameter_id,
        }
        | Access::PaceCam {
            protocol,
            parameter_id,
        } => Some(lds::pace_info(protocol, parameter_id)),
    };
    let ca_protocol: &[u64] = match profile.access() {
        Access::PaceCam { .. } => &oid::CA_ECDH_AES_256,
        _ => &oid::CA_ECDH_AES_128,
    };
    let ca_infos = match &keys.chip_authentication {
        Some(key) => vec![
            lds::ca_info(ca_protocol, None),
            lds::ca_public_key_info(&spki(key)?, None),
        ],
        None => Vec::new(),
    };
    let card_access = pace_info
        .as_ref()
        .map(|info| lds::security_infos(std::slice::from_ref(info)));
    let card_security = match (profile.access(), &pace_info) {
        (Access::PaceCam { .. }, Some(info)) => {
            let mut infos = vec![info.clone()];
            infos.extend(ca_infos.iter().cloned());
            Some(pki::cms_sign(
                pki::OID_SECURITY_OBJECT,
                &lds::security_infos(&infos),
                &trust.document_signer.cert,
                &trust.document_signer.key,
                openssl::hash::MessageDigest::sha256(),
            )?)
        }
        _ => None,
    };

    // JPEG for the passport and the PACE-CAM card, JPEG 2000 for the PACE card and its variants.
    let face = match profile {
        Profile::Bac | Profile::PaceCam => (FACE_JPEG, ImageFormat::Jpeg),
        _ => (FACE_JP2, ImageFormat::Jpeg2000),
    };
    let mut data_groups = Vec::new();
    for &number in profile.data_groups() {
        let file = match number {
            1 => lds::dg1(document),
            2 => lds::dg2(face.0, face.1, document.sex)?,
            11 => lds::dg11(document),
            12 => lds::dg12(document),
            14 => {
                let mut infos = Vec::new();
                infos.extend(pace_info.iter().cloned());
                infos.extend(ca_infos.iter().cloned());
                if matches!(&keys.aa_public, Some(k) if k.ec_key().is_ok()) {
                    infos.push(lds::aa_info());
                }
                lds::dg14(&infos)
            }
            15 => match &keys.aa_public {
                Some(key) => lds::dg15(&spki(key)?),
                None => continue,
            },
            _ => continue,
        };
        data_groups.push((number, file));
    }
    let tags: Vec<u8> = data_groups
        .iter()
        .filter_map(|(n, _)| lds::dg_tag(*n))
        .collect();
    let com = lds::ef_com(&tags);

    let refs: Vec<(u8, &[u8])> = data_groups
        .iter()
        .map(|(n, f)| (*n, f.as_slice()))
        .collect();
    let hashes = lds::dg_hashes(&refs)?;
    let lds_so = lds::lds_security_object(
        lds::LdsSoVersion::V1,
        &crate::der::algorithm(&lds::oid::SHA256),
        &hashes,
    );
    let (signer, options) = match profile {
        Profile::UntrustedCsca => (&trust.rogue_document_signer, CmsOptions::default()),
        Profile::BadDsSignature => (
            &trust.document_signer,
            CmsOptions {
                corrupt_signature: true,
                ..CmsOptions::default()
            },
        ),
        _ => (&trust.document_signer, CmsOptions::default()),
    };
    let sod = lds::ef_sod(&pki::cms_sign_with(
        pki::OID_LDS_SECURITY_OBJECT,
        &lds_so,
        &signer.cert,
        &signer.key,
        openssl::hash::MessageDigest::sha256(),
        &options,
    )?);

    // The fault of emrtd-bad-dg-hash: DG11 changed after signing (same length, one letter).
    if profile == Profile::BadDgHash
        && let Some((_, dg11)) = data_groups.iter_mut().find(|(n, _)| *n == 11)
        && let Some(last) = dg11.last_mut()
    {
        *last = if *last == b'A' { b'B' } else { b'A' };
    }

    Ok(ChipFiles {
        card_access,
        card_security,
        com,
        data_groups,
        sod,
    })
}

/// The ATR of the virtual eMRTDs: what a PC/SC contactless reader makes of an ISO/IEC 14443-4
/// card (PC/SC part 3 §3.1.3.2.3: `3B 8n 80 01`, historical bytes, TCK), here with the
/// historical bytes "eMRTD UTO".
pub fn atr() -> Vec<u8> {
    contactless_atr(b"eMRTD UTO")
}

/// The ATR of the PACE profiles, chips of the current generation: historical bytes in
/// compact-TLV (category 80) with card capabilities (tag 7, ISO 7816-4 §12.1.1.9) announcing
/// command chaining and extended Lc/Le, so a terminal reads each file in one READ BINARY.
pub fn atr_extended_length() -> Vec<u8> {
    contactless_atr(&[0x80, 0x73, 0x00, 0x00, 0xC0])
}

/// `3B 8n 80 01 <historical bytes> TCK` (at most 15 historical bytes).
pub fn contactless_atr(historical: &[u8]) -> Vec<u8> {
    let historical = historical
        .get(..historical.len().min(15))
        .unwrap_or_default();
    let mut atr = vec![0x3B, 0x80 | historical.len() as u8, 0x80, 0x01];
    atr.extend_from_slice(historical);
    let tck = atr.iter().skip(1).fold(0u8, |acc, b| acc ^ b);
    atr.push(tck);
    atr
}

/// The access-control configuration of a profile's chip (for [`EmrtdApplet`]).
pub fn chip_config(profile: Profile) -> Result<ChipConfig, EmrtdError> {
    let document = profile.document();
    let keys = chip_keys(profile)?;
    let ec =
        |key: &Option<PKey<Private>>| -> Result<Option<openssl::ec::EcKey<Private>>, EmrtdError> {
            key.as_ref()
                .map(|k| k.ec_key())
                .transpose()
                .map_err(EmrtdError::from)
        };
    let ca_key = ec(&keys.chip_authentication)?;
    let mut config = ChipConfig {
        mrz_information: Some(Zeroizing::new(
            document.mrz_information()?.as_bytes().to_vec(),
        )),
        can: document.can.map(|c| Zeroizing::new(c.to_owned())),
        sm_required_aids: vec![LDS1_AID.to_vec()],
        ..ChipConfig::default()
    };
    match profile.access() {
        Access::Bac => config.bac = true,
        Access::PaceGm { parameter_id, .. } => {
            config.pace.push(PaceChipConfig {
                protocol: PaceProtocol::EcdhGm(Cipher::Aes128),
                parameter_id: u8::try_from(parameter_id).unwrap_or(0),
                cam_key: None,
            });
            config.ca = ca_key.map(|key| CaKey {
                protocol: CaProtocol(Cipher::Aes128),
                key,
                key_id: None,
            });
        }
        Access::PaceCam { parameter_id, .. } => {
            config.pace.push(PaceChipConfig {
                protocol: PaceProtocol::EcdhCam(Cipher::Aes256),
                parameter_id: u8::try_from(parameter_id).unwrap_or(0),
                cam_key: ca_key.clone(),
            });
            config.ca = ca_key.map(|key| CaKey {
                protocol: CaProtocol(Cipher::Aes256),
                key,
                key_id: None,
            });
        }
    }
    config.aa = match &keys.aa {
        Some(key) => Some(match key.rsa() {
            Ok(rsa) => AaKey::Rsa(rsa, AaHash::Sha1),
            Err(_) => AaKey::Ec(key.ec_key()?, AaHash::Sha256),
        }),
        None => None,
    };
    if profile == Profile::BadMac {
        config.faults = Faults {
            corrupt_all_response_macs: true,
            ..Faults::default()
        };
    }
    Ok(config)
}

/// The file tree of a profile's chip: EF.CardAccess (`011C`, SFI `1C`) and EF.CardSecurity
/// (`011D`) in the MF; the LDS1 application ([`LDS1_AID`]) with EF.COM (`011E`, SFI `1E`),
/// EF.SOD (`011D`, SFI `1D`) and DGn (`01nn`, SFI `n`). SELECT with P2 = 00 answers an FCI with
/// the file size (tag 80), so a terminal can read a file in one extended-length READ BINARY.
pub fn file_system(files: &ChipFiles) -> Df {
    let mut mf = Df::mf();
    if let Some(card_access) = &files.card_access {
        mf = mf.ef(Ef::new(EF_CARD_ACCESS.0, card_access.clone()).sfi(EF_CARD_ACCESS.1));
    }
    if let Some(card_security) = &files.card_security {
        mf = mf.ef(Ef::new(EF_CARD_SECURITY, card_security.clone()));
    }
    let mut app = Df::new(LDS1_DF_FID)
        .name(LDS1_AID)
        .ef(Ef::new(EF_COM.0, files.com.clone()).sfi(EF_COM.1))
        .ef(Ef::new(EF_SOD.0, files.sod.clone()).sfi(EF_SOD.1));
    // The profiles' data groups are all in 1..=16; one skipped here would fail the tests that
    // read every documented data group through the chip.
    for (number, file) in &files.data_groups {
        if let Some((fid, sfi)) = dg_file(*number) {
            app = app.ef(Ef::new(fid, file.clone()).sfi(sfi));
        }
    }
    mf.df(app)
}

/// A fresh card of an eMRTD profile (T=1, contactless ATR, extended length accepted). The PACE
/// chips announce extended length in their ATR ([`atr_extended_length`]); the BAC passport, an
/// older chip, does not ([`atr`]), so a terminal reads it with short APDUs and uses extended
/// length only where an answer cannot fit (its 256-byte RSA Active Authentication signature).
pub fn card(profile: Profile) -> Result<VirtualCard, EmrtdError> {
    let files = chip_files(profile)?;
    let atr = match profile.access() {
        Access::Bac => atr(),
        _ => atr_extended_length(),
    };
    Ok(VirtualCard::builder(atr, file_system(files))
        .applet(EmrtdApplet::new(chip_config(profile)?))
        .build())
}
