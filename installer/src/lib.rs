#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

pub mod autostart;
pub mod browser_policy;
pub mod install;
pub mod layout;
pub mod pcscd;
pub mod tls;
pub mod trust;

pub use install::{InstallOptions, Report, StepResult, StepStatus, install, uninstall};
pub use layout::{Layout, Scope};
pub use trust::register_user_trust;
