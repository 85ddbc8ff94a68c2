#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

pub mod cli_card;
pub mod cli_emrtd;
pub mod readers;
pub mod report;
pub mod service;
