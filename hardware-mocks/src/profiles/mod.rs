//! Card profiles: ready-made [`VirtualCard`]s, by name.
//!
//! | name | what |
//! |---|---|
//! | `iso7816-test` | a generic ISO 7816-4 test card, T=1, extended length and chaining ([`iso7816_test`]) |
//! | `iso7816-test-short` | the same files, chaining but no extended length (extended APDUs get 6700) |
//! | `iso7816-test-t0` | the same files, T=0: short APDUs only, `61xx` / GET RESPONSE, `6Cxx` |
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
}

const NAMES: &[&str] = &["iso7816-test", "iso7816-test-short", "iso7816-test-t0"];

/// The names [`by_name`] knows.
pub fn names() -> &'static [&'static str] {
    NAMES
}

/// A fresh card of the named profile.
pub fn build(name: &str) -> Result<VirtualCard, ProfileError> {
    let variant = match name {
        "iso7816-test" => Variant::Full,
        "iso7816-test-short" => Variant::ShortOnly,
        "iso7816-test-t0" => Variant::T0,
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
