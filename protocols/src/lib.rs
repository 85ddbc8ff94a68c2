#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

pub mod apdu;
pub mod atr;
pub mod commands;
pub mod fci;
pub mod status;
pub mod tlv;

// ICAO 9303 / BSI TR-03110 secure channel protocols (terminal and chip side, sans-IO).
pub mod aa;
pub mod bac;
pub mod ca;
pub mod kdf;
pub mod pace;
pub mod sm;

// ICAO 9303 data: LDS files, MRZ, passive authentication.
pub mod lds;
pub mod mrz;
pub mod pa;

// Web eID: the authentication token and its relying-party validation.
pub mod webeid;

pub use apdu::{ApduError, Command, LengthForm, Response};
pub use status::Status;
