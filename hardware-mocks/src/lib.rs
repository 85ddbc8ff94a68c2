//! Virtual smart cards for tests and demos.
//!
//! - [`engine`]: an ISO/IEC 7816-4 card in memory ([`VirtualCard`]): file system, PINs, real
//!   signing keys, T=0 and T=1 behaviour, command chaining, and an [`engine::Applet`] hook for
//!   card-specific commands.
//! - [`profiles`]: ready-made cards by name (`iso7816-test`, `iso7816-test-short`,
//!   `iso7816-test-t0`).
//! - [`inprocess`]: a virtual card behind an [`eid_card::Transport`], with card removal and
//!   re-insertion under the test's control, PC/SC style.
//! - [`der`]: the DER writer the virtual cards' files, CMS signatures and test PKIs are built
//!   with.
//! - [`pn532`]: the same card in the field of an emulated PN532 NFC reader on a pseudo-terminal,
//!   for libnfc's `pn532_uart` driver.
//! - [`vpcd`]: the same card behind real PC/SC, as a client of vsmartcard's `vpcd` reader driver
//!   in pcscd (the `eid-virtual-card` binary runs one from the command line).
//!
//! Nothing here is meant to be secure: keys are generated at random per card instance and PINs
//! are fixed test values.

#![forbid(unsafe_code)]

pub mod der;
pub mod emrtd;
pub mod engine;
pub mod inprocess;
pub mod pki;
pub mod pn532;
pub mod profiles;
pub mod pteid;
pub mod vpcd;

pub use engine::VirtualCard;
pub use inprocess::{VirtualReader, VirtualReaderControl, VirtualTransport};
pub use vpcd::{VpcdCard, VpcdHandle};
