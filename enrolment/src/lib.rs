//! The reference enrolment service (relying-party side): see the crate README.
pub mod delivery;
pub mod secrets;
pub mod store;

pub mod api;
pub mod app;
pub mod cli;
pub mod config;
pub mod errors;
pub mod identity;
pub mod operators;
pub mod pages;
pub mod server;
pub mod session;
pub mod tls;
