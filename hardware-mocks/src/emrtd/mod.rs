//! Virtual eMRTD chips (ICAO 9303): the files of the chip encoded here with real data and
//! real signatures, and the card profiles built from them.
//!
//! - [`der`]: a small DER writer for the files.
//! - [`data`]: the printed document data and the MRZ (TD3, TD1) with check digits.
//! - [`lds`]: encoders for EF.COM, DG1, DG2 (ISO/IEC 19794-5), DG11, DG12, DG14, DG15, the
//!   SecurityInfos of EF.CardAccess / EF.CardSecurity and the LDSSecurityObject of EF.SOD.
//! - [`trust`]: the CSCA / Document Signer test PKI, master list and CRL.
//! - [`profile`]: the `emrtd-*` profiles (document data, keys, files, cards).
//! - [`cc2`]: `pteid-cc2-contactless`, the Citizen Card CC2 behind PACE (CAN) and secure
//!   messaging.
//! - [`chip`]: the chip's access control and secure messaging applet.

pub mod cc2;
pub mod chip;
pub mod data;
pub mod lds;
pub mod profile;
pub mod terminal;
pub mod trust;

pub use data::{Document, MrzFormat};
pub use profile::{ChipFiles, EmrtdError, Profile, card, chip_config, chip_files};
pub use trust::{TrustMaterial, trust};

/// The eMRTD profile names (for `eid-virtual-card --list` and `profiles::names`).
pub fn names() -> impl Iterator<Item = &'static str> {
    Profile::ALL.into_iter().map(Profile::name)
}

/// A fresh card of the named eMRTD profile; `None` if the name is not an eMRTD profile.
/// Also builds `pteid-cc2-contactless` (default citizen; [`cc2::cc2_contactless`] takes options).
pub fn build(name: &str) -> Option<Result<crate::engine::VirtualCard, EmrtdError>> {
    if name == cc2::PROFILE {
        return Some(cc2::cc2_contactless_default().map(|c| c.card));
    }
    Profile::from_name(name).map(card)
}

/// One line per eMRTD profile with its document data, for `eid-virtual-card --list`.
pub fn describe(profile: Profile) -> String {
    let d = profile.document();
    format!(
        "{name}: {what}; document {number}, born {dob}, expires {exp}, CAN {can}, MRZ {mrz}",
        name = profile.name(),
        what = profile.description(),
        number = d.document_number,
        dob = d.date_of_birth,
        exp = d.date_of_expiry,
        can = d.can.unwrap_or("none"),
        mrz = d.mrz_lines().join(" / "),
    )
}
