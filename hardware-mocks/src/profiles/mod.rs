//! Card profiles: ready-made [`VirtualCard`]s, by name.
//!
//! | name | what |
//! |---|---|
//! | `iso7816-test` | a generic ISO 7816-4 test card, T=1, extended length and chaining ([`iso7816_test`]) |
//! | `iso7816-test-short` | the same files, chaining but no extended length (extended APDUs get 6700) |
//! | `iso7816-test-t0` | the same files, T=0: short APDUs only, `61xx` / GET RESPONSE, `6Cxx` |
//! | `pteid-cc1` | Portuguese Citizen Card CC1 (IAS07 / GemSAFE, RSA-3072), [`crate::pteid::cc1`] |
//! | `pteid-cc1-2048` | the same with RSA-2048 citizen keys (older cards) |
//! | `pteid-cc2` | Portuguese Citizen Card CC2 (IAS v5, P-256), contact, [`crate::pteid::cc2`] |
//! | `pteid-cc2-contactless` | the CC2 over contactless: PACE (CAN), then the CC2 behind SM, [`crate::emrtd::cc2`] |
//! | `emrtd-*` | virtual eMRTDs (BAC, PACE, PACE-CAM, faulty variants), [`crate::emrtd::profile`] |
//!
//! Every profile instance gets fresh signing keys.

pub mod iso7816_test;

use openssl::error::ErrorStack;
use thiserror::Error;

use crate::engine::VirtualCard;
use iso7816_test::Variant;

/// Why a profile could not be built.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ProfileError {
    #[error("unknown card profile {0:?} (known: {known})", known = names().join(", "))]
    Unknown(String),
    #[error("generating the card's keys failed: {0}")]
    Crypto(#[from] ErrorStack),
    #[error("building the Citizen Card failed: {0}")]
    Pteid(#[from] crate::pteid::PteidError),
    #[error("building the eMRTD failed: {0}")]
    Emrtd(#[from] crate::emrtd::EmrtdError),
}

const NAMES: &[&str] = &[
    "iso7816-test",
    "iso7816-test-short",
    "iso7816-test-t0",
    "pteid-cc1",
    "pteid-cc1-2048",
    "pteid-cc2",
    "pteid-cc2-contactless",
    "emrtd-bac",
    "emrtd-pace",
    "emrtd-pace-cam",
    "emrtd-bad-dg-hash",
    "emrtd-bad-ds-signature",
    "emrtd-untrusted-csca",
    "emrtd-clone",
    "emrtd-bad-mac",
];

/// The names [`by_name`] knows.
pub fn names() -> &'static [&'static str] {
    NAMES
}

/// A fresh card of the named profile.
pub fn build(name: &str) -> Result<VirtualCard, ProfileError> {
    if let Some(card) = crate::emrtd::build(name) {
        return Ok(card?);
    }
    let variant = match name {
        "iso7816-test" => Variant::Full,
        "iso7816-test-short" => Variant::ShortOnly,
        "iso7816-test-t0" => Variant::T0,
        "pteid-cc1" | "pteid-cc1-2048" | "pteid-cc2" => {
            return Ok(crate::pteid::by_profile(name, &Default::default())?.card);
        }
        _ => return Err(ProfileError::Unknown(name.to_owned())),
    };
    Ok(iso7816_test::card(variant)?)
}

/// A fresh card of the named profile; `None` for an unknown name (or if key generation failed,
/// which [`build`] reports).
pub fn by_name(name: &str) -> Option<VirtualCard> {
    build(name).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_builds() {
        for name in names() {
            assert!(by_name(name).is_some(), "{name}");
        }
        assert!(matches!(build("nope"), Err(ProfileError::Unknown(_))));
        assert!(
            build("nope")
                .unwrap_err()
                .to_string()
                .contains("iso7816-test-t0")
        );
    }
}
