//! NFC readers through libnfc (the `nfc1` crate over Debian's libnfc 1.8): PN532 and PN533
//! boards, which have no PC/SC driver.
//!
//! - [`NfcContext`] lists devices and opens one by its libnfc connection string
//!   (`pn532_uart:/dev/ttyUSB0`, `pn53x_usb:003:012`). libnfc finds USB devices itself; it cannot
//!   find serial ones without probing every tty (its "intrusive scan", which writes to devices
//!   that may not be readers), so those are named in `EID_NFC_DEVICES` (`;`-separated) or the
//!   agent's `nfc_devices` setting.
//! - [`NfcReader`] is one opened device, shared (behind a mutex) by whoever polls it and whoever
//!   runs an operation on its card. [`NfcReader::poll`] looks for an ISO 14443-A card, then a
//!   -B card, and activates ISO-DEP (the PN53x does RATS or ATTRIB itself).
//! - [`NfcTransport`] is a connection to the card in the field, implementing
//!   [`crate::Transport`]: the session layer and every card application (eMRTD, contactless
//!   Citizen Card) run over it unchanged. Its ATR is the one a PC/SC reader would synthesise
//!   ([`atr`]), so card detection works the same on both stacks.
//! - [`NfcMonitor`] polls one reader on a thread of its own and reports the same
//!   [`crate::monitor::Event`]s as the PC/SC monitor.
//!
//! What the PN53x can carry: one InDataExchange takes at most 262 bytes of APDU and gives back
//! at most 263 (libnfc's 264-byte frame buffer less the status byte, MI chaining included).
//! That is a short APDU each way (261 and 258 bytes), never an extended one, so the transport
//! reports [`ReaderCapabilities::SHORT_ONLY`] and the session layer reads files in chunks of at
//! most 256 bytes (less under secure messaging). Longer commands are refused here before they
//! reach libnfc, which copies them into that fixed buffer without checking.
//!
//! Failures are typed: the card leaving the field is [`Error::CardRemoved`] (found by libnfc's
//! presence check after a failed exchange), the device disappearing is [`Error::ReaderRemoved`],
//! a reader that stops answering is [`Error::Timeout`] after [`EXCHANGE_TIMEOUT`] (every libnfc
//! call here has a bounded timeout), and a reader answering noise is [`Error::ReaderFault`].
//!
//! Readers that PC/SC also serves (ACR122U and other CCID devices: libnfc's `acr122_usb`,
//! `acr122_pcsc` and `pcsc` drivers) are never opened here: pcscd owns them and they are used
//! through PC/SC. A serial device is locked (`flock`) while it is open, so a second process (a
//! second agent, `eid-agent readers` while the agent runs) gets [`Error::ReaderInUse`] instead of
//! interleaving its frames with ours; USB devices are exclusive by libusb's interface claim.

pub mod atr;
mod monitor;
mod transport;

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use nfc1::target_info::TargetInfo;
use nfc1::{BaudRate, Modulation, ModulationType, Property};

pub use monitor::NfcMonitor;
pub use transport::NfcTransport;

use crate::Error;
use crate::transport::{Interface, ReaderCapabilities};

/// The prefix of every NFC reader's name, so the agent can tell them from PC/SC readers.
pub const NAME_PREFIX: &str = "NFC ";

/// Extra connection strings, `;`-separated (serial devices libnfc cannot find by itself).
pub const DEVICES_ENV: &str = "EID_NFC_DEVICES";

/// Longest one APDU exchange may take before the reader counts as silent. The PN53x handles
/// the card's waiting-time extensions itself and answers the host only when the card has, so
/// this covers the slowest card operation (an RSA signature) with room to spare.
pub const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(5);

/// libnfc's PN53x frame buffer (`PN53x_EXTENDED_FRAME__DATA_MAX_LEN`).
const PN53X_FRAME_MAX: usize = 264;
/// Largest APDU one InDataExchange carries: the frame less its command code and target number.
const PN53X_MAX_COMMAND: usize = PN53X_FRAME_MAX - 2;
/// Largest answer libnfc hands back: the frame less the status byte.
const PN53X_MAX_RESPONSE: usize = PN53X_FRAME_MAX - 1;
/// libnfc's connection string buffer (`NFC_BUFSIZE_CONNSTRING`), terminator included.
const CONNSTRING_MAX: usize = 1023;
/// libnfc drivers for devices that pcscd also serves (CCID readers): used through PC/SC only.
const PCSC_OWNED_DRIVERS: [&str; 3] = ["pcsc", "acr122_pcsc", "acr122_usb"];
/// How many USB devices libnfc's scan reports at most.
const SCAN_MAX: usize = 16;

/// Whether a reader name is an NFC reader's (as opposed to a PC/SC reader's).
pub fn is_nfc_reader_name(name: &str) -> bool {
    name.starts_with(NAME_PREFIX)
}

/// The reader name users see for a connection string.
pub fn reader_name(connstring: &str) -> String {
    format!("{NAME_PREFIX}{connstring}")
}

/// The connection strings of `EID_NFC_DEVICES`.
pub fn devices_from_env() -> Vec<String> {
    std::env::var(DEVICES_ENV)
        .map(|v| split_devices(&v))
        .unwrap_or_default()
}

/// `a;b;;c ` -> `[a, b, c]`.
pub fn split_devices(list: &str) -> Vec<String> {
    list.split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// libnfc's driver name: what precedes the first `:`.
fn driver_of(connstring: &str) -> &str {
    connstring.split(':').next().unwrap_or(connstring)
}

/// Whether pcscd owns this device (so it is used through PC/SC, never through libnfc).
pub fn is_pcsc_owned(connstring: &str) -> bool {
    PCSC_OWNED_DRIVERS.contains(&driver_of(connstring))
}

/// The serial device of a `pn532_uart:/dev/X[:baud]` connection string.
fn serial_path(connstring: &str) -> Option<&Path> {
    let rest = connstring.strip_prefix("pn532_uart:")?;
    let path = rest.split(':').next()?;
    (!path.is_empty()).then(|| Path::new(path))
}

/// Whether the device behind a connection string is gone (unplugged, or its pseudo-terminal
/// closed), for the drivers where we can tell without talking to it.
fn device_gone(connstring: &str) -> bool {
    if let Some(path) = serial_path(connstring) {
        return !path.exists();
    }
    let mut parts = connstring.split(':');
    if parts.next() == Some("pn53x_usb")
        && let (Some(bus), Some(dev)) = (parts.next(), parts.next())
    {
        return !Path::new("/dev/bus/usb").join(bus).join(dev).exists();
    }
    false
}

/// A device libnfc can open.
#[derive(Clone, PartialEq, Eq, Debug, serde::Serialize)]
pub struct NfcDeviceInfo {
    pub connstring: String,
    /// The reader name it will have once opened ([`reader_name`]).
    pub name: String,
    /// Found by libnfc's USB scan (`false`: named in the configuration or `EID_NFC_DEVICES`).
    pub scanned: bool,
}

/// A libnfc context. Opening and listing devices goes through it; opened readers do not need
/// it afterwards.
pub struct NfcContext {
    context: nfc1::Context,
}

impl std::fmt::Debug for NfcContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NfcContext")
    }
}

impl NfcContext {
    pub fn new() -> Result<Self, Error> {
        let context = nfc1::Context::new()
            .map_err(|e| Error::ReaderFault(format!("libnfc could not start: {e}")))?;
        Ok(NfcContext { context })
    }

    /// libnfc's USB scan (devices pcscd owns left out), then `extra` (the configuration's and
    /// `EID_NFC_DEVICES`'s connection strings), without duplicates. Nothing is opened.
    pub fn list(&mut self, extra: &[String]) -> Result<Vec<NfcDeviceInfo>, Error> {
        let scanned = self
            .context
            .list_devices(SCAN_MAX)
            .map_err(|e| Error::ReaderFault(format!("libnfc could not list devices: {e}")))?;
        let mut out: Vec<NfcDeviceInfo> = Vec::new();
        for (connstring, scanned) in scanned
            .into_iter()
            .map(|c| (c, true))
            .chain(extra.iter().map(|c| (c.clone(), false)))
        {
            if is_pcsc_owned(&connstring) {
                tracing::debug!(%connstring, "left to PC/SC");
                continue;
            }
            if out.iter().any(|d| d.connstring == connstring) {
                continue;
            }
            out.push(NfcDeviceInfo {
                name: reader_name(&connstring),
                connstring,
                scanned,
            });
        }
        Ok(out)
    }

    /// Opens the device, initialises it as a reader (RF field on, ISO-DEP handled by the chip,
    /// finite polling) and returns it. [`Error::ReaderNotFound`] when libnfc cannot open it,
    /// [`Error::ReaderInUse`] when another program holds it.
    pub fn open(&mut self, connstring: &str) -> Result<NfcReader, Error> {
        let not_found = || Error::ReaderNotFound(reader_name(connstring));
        if connstring.is_empty()
            || connstring.len() > CONNSTRING_MAX
            || !connstring.bytes().all(|b| b.is_ascii_graphic())
            || is_pcsc_owned(connstring)
        {
            return Err(not_found());
        }
        let lock = match serial_path(connstring) {
            Some(path) => Some(lock_serial(path, connstring)?),
            None => None,
        };
        let mut device = self
            .context
            .open_with_connstring(connstring)
            .map_err(|_| not_found())?;
        device
            .initiator_init()
            .map_err(|e| link_error(connstring, e))?;
        // libnfc's initiator default is to wait for a card forever; ours is to look and return.
        for (property, on) in [
            (Property::InfiniteSelect, false),
            (Property::AutoIso144434, true),
            (Property::EasyFraming, true),
        ] {
            device
                .set_property_bool(property, on)
                .map_err(|e| link_error(connstring, e))?;
        }
        // libnfc names serial devices by their connection string and USB devices by their
        // product string (ASCII through libusb-0.1, so nfc1's UTF-8 conversion holds).
        let model = device.name().to_owned();
        tracing::debug!(connstring, model, "NFC reader opened");
        Ok(NfcReader {
            shared: Arc::new(Shared {
                name: reader_name(connstring),
                connstring: connstring.to_owned(),
                model,
                state: Mutex::new(DeviceState {
                    device: Some(device),
                    target: None,
                    generation: 0,
                }),
                busy: AtomicUsize::new(0),
                _lock: lock,
            }),
        })
    }
}

/// Takes an exclusive advisory lock on a serial device for as long as the descriptor lives.
fn lock_serial(path: &Path, connstring: &str) -> Result<rustix::fd::OwnedFd, Error> {
    use rustix::fs::{FlockOperation, Mode, OFlags, flock, open};
    let fd = open(
        path,
        OFlags::RDONLY | OFlags::NOCTTY | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|_| Error::ReaderNotFound(reader_name(connstring)))?;
    match flock(&fd, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(fd),
        Err(rustix::io::Errno::WOULDBLOCK) => Err(Error::ReaderInUse(reader_name(connstring))),
        Err(e) => Err(Error::ReaderFault(format!(
            "cannot lock {}: {e}",
            path.display()
        ))),
    }
}

/// A libnfc failure that is about the reader, not the card: the device gone, silent, or noisy.
fn link_error(connstring: &str, e: nfc1::Error) -> Error {
    match e {
        nfc1::Error::Timeout => Error::Timeout,
        _ if device_gone(connstring) => Error::ReaderRemoved,
        nfc1::Error::Io => Error::ReaderFault("the reader sent a malformed frame".into()),
        e => Error::ReaderFault(format!("libnfc: {e}")),
    }
}

/// Which ISO 14443 type the card answered as.
#[derive(Clone, Copy, PartialEq, Eq, Debug, serde::Serialize)]
pub enum TargetKind {
    #[serde(rename = "iso14443a")]
    Iso14443A,
    #[serde(rename = "iso14443b")]
    Iso14443B,
}

/// A card in the field, activated for ISO-DEP.
#[derive(Clone, PartialEq, Eq, Debug, serde::Serialize)]
pub struct NfcTarget {
    pub kind: TargetKind,
    /// The PC/SC part 3 ATR synthesised from its ATS or ATQB.
    #[serde(serialize_with = "crate::hex_serde::upper")]
    pub atr: Vec<u8>,
    /// Which activation this is: a card taken away and brought back is a new one.
    #[serde(skip)]
    pub(crate) generation: u64,
}

/// The selected target as libnfc knows it, and as we report it.
#[derive(Clone, Debug)]
struct Selected {
    info: NfcTarget,
}

/// What the mutex guards: the device and what is in its field.
struct DeviceState {
    /// `None` once the device is gone (closed, not to be used again).
    device: Option<nfc1::Device>,
    target: Option<Selected>,
    /// Bumped at every activation and every loss: a transport made for an earlier card must
    /// not talk to a later one.
    generation: u64,
}

struct Shared {
    name: String,
    connstring: String,
    model: String,
    state: Mutex<DeviceState>,
    /// Operations (transactions) in progress: the monitor leaves the device alone meanwhile.
    busy: AtomicUsize,
    /// The serial device's lock, held as long as the reader is open.
    _lock: Option<rustix::fd::OwnedFd>,
}

/// One opened NFC reader; clones share the device.
#[derive(Clone)]
pub struct NfcReader {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for NfcReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NfcReader")
            .field("name", &self.shared.name)
            .finish()
    }
}

impl NfcReader {
    /// The reader name users see: `NFC <connection string>`.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    pub fn connstring(&self) -> &str {
        &self.shared.connstring
    }

    /// libnfc's name for the device (the product for USB devices).
    pub fn model(&self) -> &str {
        &self.shared.model
    }

    /// What the reader carries: short APDUs, on a contactless interface.
    pub fn capabilities(&self) -> ReaderCapabilities {
        let mut caps = ReaderCapabilities::SHORT_ONLY;
        caps.max_command_len = caps.max_command_len.min(PN53X_MAX_COMMAND);
        caps.max_response_len = caps.max_response_len.min(PN53X_MAX_RESPONSE);
        caps.interface = Interface::Contactless;
        caps
    }

    fn lock(&self) -> MutexGuard<'_, DeviceState> {
        self.shared
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether an operation holds the card (the monitor stays away).
    pub(crate) fn is_busy(&self) -> bool {
        self.shared.busy.load(Ordering::SeqCst) > 0
    }

    /// The card in the field, if any: the one already activated if it still answers, else a
    /// new ISO 14443-A card, else a -B card. Bounded: libnfc gives each activation 300 ms.
    pub fn poll(&self) -> Result<Option<NfcTarget>, Error> {
        let mut state = self.lock();
        self.poll_locked(&mut state)
    }

    /// [`NfcReader::poll`] unless someone else holds the device right now (`Ok(None)` is then
    /// not an answer: the caller tries later).
    pub(crate) fn try_poll(&self) -> Option<Result<Option<NfcTarget>, Error>> {
        let mut state = match self.shared.state.try_lock() {
            Ok(state) => state,
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return None,
        };
        Some(self.poll_locked(&mut state))
    }

    /// Whether a card is in the field.
    pub fn is_present(&self) -> Result<bool, Error> {
        self.poll().map(|t| t.is_some())
    }

    /// A connection to the card in the field. [`Error::NoCard`] when the field is empty.
    pub fn connect(&self) -> Result<NfcTransport, Error> {
        let target = self
            .poll()?
            .ok_or_else(|| Error::NoCard(self.shared.name.clone()))?;
        tracing::debug!(reader = %self.shared.name, atr = %crate::hex(&target.atr), "connected");
        Ok(NfcTransport::new(self.clone(), target))
    }

    fn poll_locked(&self, state: &mut DeviceState) -> Result<Option<NfcTarget>, Error> {
        let connstring = self.shared.connstring.as_str();
        let device = state.device.as_mut().ok_or(Error::ReaderRemoved)?;
        if let Some(selected) = &state.target {
            match device.initiator_target_is_present_any() {
                Ok(()) => return Ok(Some(selected.info.clone())),
                Err(e) if is_target_loss(e) => {
                    state.target = None;
                    state.generation += 1;
                }
                Err(e) => return Err(self.fail(state, e)),
            }
        }
        let Some(device) = state.device.as_mut() else {
            return Err(Error::ReaderRemoved);
        };
        for modulation in [ModulationType::Iso14443a, ModulationType::Iso14443b] {
            let selected = device.initiator_select_passive_target(&Modulation {
                modulation_type: modulation,
                baud_rate: BaudRate::Baud106,
            });
            let target = match selected {
                Ok(target) => target,
                // No card of this type (libnfc's 300 ms activation window passed).
                Err(nfc1::Error::Timeout) => continue,
                Err(e) if is_target_loss(e) => continue,
                Err(e) => return Err(link_error(connstring, e)),
            };
            if let Some(info) = iso_dep_target(&target.target_info) {
                state.generation += 1;
                let info = NfcTarget {
                    generation: state.generation,
                    ..info
                };
                state.target = Some(Selected { info: info.clone() });
                return Ok(Some(info));
            }
        }
        Ok(None)
    }

    /// Maps a failure that is not the card's, closing the device when it is gone.
    fn fail(&self, state: &mut DeviceState, e: nfc1::Error) -> Error {
        let error = link_error(&self.shared.connstring, e);
        if matches!(error, Error::ReaderRemoved) {
            tracing::info!(reader = %self.shared.name, "NFC reader gone");
            state.device = None;
            state.target = None;
            state.generation += 1;
        }
        error
    }
}

/// libnfc errors that mean "the card is not (any more) there" rather than "the reader failed".
fn is_target_loss(e: nfc1::Error) -> bool {
    matches!(
        e,
        nfc1::Error::TargetReleased
            | nfc1::Error::RfTransmissionError
            | nfc1::Error::InvalidArgument
            | nfc1::Error::Chip
    )
}

/// The target as we report it, if it is an ISO-DEP card (anything else, a MIFARE Classic or
/// an NFC tag, is not a smart card and is left alone). nfc1 0.7 drops libnfc's target count, so
/// "no card" comes back as an empty type A target: a UID length of 0.
fn iso_dep_target(info: &TargetInfo) -> Option<NfcTarget> {
    match info {
        TargetInfo::Iso14443a(a) => {
            // SAK bit 6: compliant with ISO/IEC 14443-4.
            if a.uid_len == 0 || a.sak & 0x20 == 0 {
                return None;
            }
            let ats = a.ats.get(..a.ats_len)?;
            match atr::from_ats(ats) {
                Ok(atr) => Some(NfcTarget {
                    kind: TargetKind::Iso14443A,
                    atr,
                    generation: 0,
                }),
                Err(e) => {
                    tracing::warn!(error = %e, "ignoring a card with a malformed ATS");
                    None
                }
            }
        }
        // Protocol info byte 2, bit 1: compliant with ISO/IEC 14443-4.
        TargetInfo::Iso14443b(b) if b.protocol_info[1] & 0x01 != 0 => Some(NfcTarget {
            kind: TargetKind::Iso14443B,
            atr: atr::from_atqb(b.application_data, b.protocol_info, 0),
            generation: 0,
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_lists_split_on_semicolons() {
        assert_eq!(
            split_devices(" pn532_uart:/dev/pts/3;; pn532_uart:/dev/ttyUSB0:115200 ;"),
            vec!["pn532_uart:/dev/pts/3", "pn532_uart:/dev/ttyUSB0:115200"]
        );
        assert!(split_devices("").is_empty());
    }

    #[test]
    fn pcsc_devices_are_left_to_pcscd() {
        assert!(is_pcsc_owned("acr122_usb:001:004"));
        assert!(is_pcsc_owned("pcsc:ACS ACR122U 00 00"));
        assert!(!is_pcsc_owned("pn53x_usb:001:005"));
        assert!(!is_pcsc_owned("pn532_uart:/dev/ttyUSB0"));
    }

    #[test]
    fn serial_paths_and_names() {
        assert_eq!(
            serial_path("pn532_uart:/dev/ttyUSB0:115200"),
            Some(Path::new("/dev/ttyUSB0"))
        );
        assert_eq!(serial_path("pn53x_usb:001:005"), None);
        assert!(device_gone("pn532_uart:/dev/definitely-not-a-tty"));
        assert!(is_nfc_reader_name(&reader_name("pn532_uart:/dev/pts/3")));
        assert!(!is_nfc_reader_name("Virtual PCD 00 00"));
    }

    #[test]
    fn an_empty_answer_is_no_card() {
        let empty = nfc1::Target::new_iso14443a();
        assert_eq!(iso_dep_target(&empty.target_info), None);
    }

    #[test]
    fn a_type_a_card_gets_the_pcsc_atr() {
        let mut a = match nfc1::Target::new_iso14443a().target_info {
            TargetInfo::Iso14443a(a) => a,
            _ => unreachable!(),
        };
        a.uid_len = 4;
        a.sak = 0x20;
        a.ats[..3].copy_from_slice(&[0x00, 0x80, 0x90]);
        a.ats_len = 3;
        let t = iso_dep_target(&TargetInfo::Iso14443a(a)).unwrap();
        assert_eq!(t.atr, vec![0x3B, 0x82, 0x80, 0x01, 0x80, 0x90, 0x13]);
        // An ATS length past the buffer (libnfc does not check it) is no card, not a panic.
        a.ats_len = 1000;
        assert_eq!(iso_dep_target(&TargetInfo::Iso14443a(a)), None);
    }
}
