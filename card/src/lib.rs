#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

pub mod detect;
pub mod emrtd;
mod error;
pub mod image;
pub mod monitor;
#[cfg(all(feature = "nfc", target_os = "linux"))]
pub mod nfc;
pub mod pcsc_transport;
pub mod pinpad;
pub mod pteid;
pub mod secure;
pub mod session;
pub mod transport;

pub use error::Error;
pub use session::Session;
pub use transport::{Interface, PinpadFeatures, ReaderCapabilities, Reborrow, Transport};

/// Upper-case hex without separators, for ATRs in logs and JSON.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02X}");
            s
        })
}

/// `#[serde(serialize_with = ...)]` helpers: bytes in JSON as upper-case hex strings, as
/// [`hex`] writes them.
pub(crate) mod hex_serde {
    pub(crate) fn upper<T, S>(bytes: &T, s: S) -> Result<S::Ok, S::Error>
    where
        T: AsRef<[u8]> + ?Sized,
        S: serde::Serializer,
    {
        s.serialize_str(&crate::hex(bytes.as_ref()))
    }

    pub(crate) fn upper_opt<T, S>(bytes: &Option<T>, s: S) -> Result<S::Ok, S::Error>
    where
        T: AsRef<[u8]>,
        S: serde::Serializer,
    {
        match bytes {
            Some(b) => s.serialize_str(&crate::hex(b.as_ref())),
            None => s.serialize_none(),
        }
    }
}
