//! Base64 as the Web eID parties write and read it.

use base64::Engine;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

const fn lenient() -> GeneralPurposeConfig {
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true)
}

const STANDARD: GeneralPurpose = GeneralPurpose::new(&alphabet::STANDARD, lenient());
const URL_SAFE: GeneralPurpose = GeneralPurpose::new(&alphabet::URL_SAFE, lenient());

/// Standard alphabet with padding (what the Web eID application and Java's encoder write).
pub(crate) fn encode(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Standard alphabet (Java's basic decoder) or, failing that, URL-safe (.NET's
/// `Base64UrlEncoder`); padding optional either way, alphabets not mixed.
pub(crate) fn decode(text: &str) -> Option<Vec<u8>> {
    STANDARD
        .decode(text)
        .or_else(|_| URL_SAFE.decode(text))
        .ok()
}
