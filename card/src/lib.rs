#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

pub mod detect;
pub mod emrtd;
mod error;
pub mod image;
pub mod monitor;
pub mod pcsc_transport;
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
