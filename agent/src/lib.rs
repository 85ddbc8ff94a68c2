#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

pub mod readers;
pub mod report;
pub mod service;
