#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

pub mod apdu;
pub mod atr;
pub mod commands;
pub mod fci;
pub mod status;
pub mod tlv;

pub use apdu::{ApduError, Command, LengthForm, Response};
pub use status::Status;
