#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

pub mod audit;
pub mod bridge;
pub mod cli_audit;
pub mod cli_card;
pub mod cli_emrtd;
pub mod cli_install;
pub mod cli_run;
pub mod cli_sites;
pub mod config;
pub mod consent;
pub mod doctor;
pub mod kiosk;
pub mod logging;
pub mod prompt;
pub mod readers;
pub mod report;
pub mod service;
pub mod tray;
pub mod workflows;
