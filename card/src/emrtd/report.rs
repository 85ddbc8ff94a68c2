//! What reading an eMRTD found: each security check's outcome, the parsed data, and the raw SOD
//! and data group bytes (so a server can verify everything again).

use std::collections::BTreeMap;

use eid_protocols::lds::{Dg1, Dg11, Dg12, EfCom, ImageType};
use eid_protocols::pa::{Check, PassiveAuthReport};
use serde::{Serialize, Serializer};

/// How access to the chip was obtained (ICAO 9303-11 §4).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "protocol", rename_all = "kebab-case")]
pub enum AccessMethod {
    /// PACE (§4.4) with this PACEInfo.
    Pace {
        /// The PACE protocol OID (mapping and cipher), dotted.
        oid: String,
        /// Standardized domain parameter ID (ICAO 9303-11 §9.5.1).
        parameter_id: Option<u64>,
        /// `can` or `mrz`.
        password: &'static str,
        /// Whether the chip authenticated itself within PACE (PACE-CAM).
        chip_authenticated: bool,
    },
    /// Basic Access Control (§4.3).
    Bac,
}

/// The access step of the report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct AccessReport {
    pub method: AccessMethod,
    pub check: Check,
    /// Why PACE was not used although the chip offers it (a BAC fallback), if it was not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pace_fallback_reason: Option<String>,
}

/// Active Authentication evidence a server can re-verify with DG15 (ICAO 9303-11 §6.1).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct ActiveAuthEvidence {
    #[serde(serialize_with = "crate::hex_serde::upper")]
    pub challenge: [u8; 8],
    #[serde(serialize_with = "crate::hex_serde::upper")]
    pub signature: Vec<u8>,
}

/// The face image of DG2: what it is, and the image converted to PNG.
#[derive(Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Photo {
    pub image_type: ImageType,
    pub width: u16,
    pub height: u16,
    /// The image as PNG (not in JSON output: use `raw.data-groups.2` or a file).
    #[serde(skip)]
    pub png: Vec<u8>,
}

impl std::fmt::Debug for Photo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Photo")
            .field("image_type", &self.image_type)
            .field("width", &self.width)
            .field("height", &self.height)
            .field("png_len", &self.png.len())
            .finish()
    }
}

/// Files as read, byte for byte.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct RawFiles {
    #[serde(serialize_with = "crate::hex_serde::upper_opt")]
    pub com: Option<Vec<u8>>,
    #[serde(serialize_with = "crate::hex_serde::upper_opt")]
    pub sod: Option<Vec<u8>>,
    /// Data group number → complete file.
    #[serde(serialize_with = "hex_map")]
    pub data_groups: BTreeMap<u8, Vec<u8>>,
}

/// Everything one read of an eMRTD found.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct EmrtdReport {
    pub access: AccessReport,
    /// Chip Authentication (ICAO 9303-11 §6.2) with the DG14 key.
    pub chip_authentication: Check,
    /// Active Authentication (ICAO 9303-11 §6.1) with the DG15 key.
    pub active_authentication: Check,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active_authentication_evidence: Option<ActiveAuthEvidence>,
    /// Passive Authentication (ICAO 9303-11 §5.1); `Err` check when EF.SOD could not be parsed.
    pub passive_authentication: PassiveAuth,
    pub com: Option<EfCom>,
    pub dg1: Option<Dg1>,
    pub photo: Option<Photo>,
    pub dg11: Option<Dg11>,
    pub dg12: Option<Dg12>,
    /// Files present but not understood, with the reason (the checks above still cover them).
    pub parse_errors: Vec<String>,
    pub raw: RawFiles,
    /// APDUs exchanged under secure messaging.
    pub protected_apdus: u64,
}

/// Passive Authentication's outcome.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "outcome")]
pub enum PassiveAuth {
    /// EF.SOD was parsed: each step.
    Report(Box<PassiveAuthReport>),
    /// EF.SOD is missing or could not be parsed.
    Failed { reason: String },
}

impl PassiveAuth {
    /// Whether signature, chain and every data group hash passed.
    pub fn is_valid(&self) -> bool {
        match self {
            PassiveAuth::Report(r) => {
                r.signature.is_passed()
                    && r.certificate_chain.is_passed()
                    && r.data_groups.iter().all(|d| d.check.is_passed())
            }
            PassiveAuth::Failed { .. } => false,
        }
    }

    /// Whether the SOD signature verifies and DG`n`'s hash matches it.
    pub fn data_group_passed(&self, n: u8) -> bool {
        match self {
            PassiveAuth::Report(r) => {
                r.signature.is_passed() && r.data_group(n).is_some_and(Check::is_passed)
            }
            PassiveAuth::Failed { .. } => false,
        }
    }
}

fn hex_map<S: Serializer>(map: &BTreeMap<u8, Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
    s.collect_map(map.iter().map(|(k, v)| (k.to_string(), crate::hex(v))))
}
