//! An emulated NXP PN532 NFC reader on a pseudo-terminal, for libnfc's own `pn532_uart` driver.
//!
//! The PN532 is what most cheap NFC boards carry; on Linux, libnfc talks to it over a serial
//! line (HSU, 115 200 baud) with the frame protocol of the PN532 user manual (UM0701-02 §6.2).
//! [`Pn532Emulator::spawn`] opens a pseudo-terminal pair and plays the chip on the master side,
//! so the real, unmodified libnfc opens `pn532_uart:/dev/pts/N` ([`Pn532Handle::connstring`])
//! as it would a board on `/dev/ttyUSB0`, and finds one of the virtual cards of this crate in
//! the field.
//!
//! # The host link ([`frame`])
//!
//! Normal and extended information frames with their length and data checksums, ACK and NACK
//! both ways, the syntax error frame. Every command is acknowledged (`00 00 FF 00 FF 00`) before
//! its answer. A host NACK gets the last answer again; a host ACK aborts a command still running
//! (a poll waiting for a card), and so does a new command. Frames with a bad length or data
//! checksum, a TFI other than D4, no command code or more data than the chip buffers are not
//! acknowledged at all (the host times out) and counted ([`Pn532Handle::frames_rejected`]); a
//! frame left half-sent for [`chip::PARTIAL_FRAME_TIMEOUT`] is dropped and counted too. A frame
//! the chip parses but does not understand (unknown command, wrong parameter count or value)
//! is acknowledged and answered with the syntax error frame `00 00 FF 01 FF 7F 81 00`.
//!
//! The chip starts in low-VBat mode and goes back to sleep after PowerDown: the first byte it
//! then receives only wakes it up (libnfc sends `55 55 00 00 ...` first, as the application
//! note says to).
//!
//! # Commands ([`chip`])
//!
//! Diagnose (communication test echo, ROM/RAM/antenna tests, card presence), GetFirmwareVersion
//! (IC 32, version 1.6, support 07: ISO/IEC 14443 A and B, ISO 18092), GetGeneralStatus,
//! ReadRegister and WriteRegister on a 64 KiB register file (libnfc reads back the CIU
//! registers it wrote), SetParameters, SAMConfiguration, PowerDown, RFConfiguration (field on
//! and off, timings, retries: MxRtyPassiveActivation FF makes InListPassiveTarget wait for a
//! card as the chip does), InListPassiveTarget (106 kbps type A with ATQA, SAK 20, UID and,
//! with automatic RATS, the ATS; type B with ATQB and the ATTRIB answer; FeliCa and Jewel find
//! nothing), InAutoPoll, InDataExchange (APDUs to the card; MI chaining both ways),
//! InCommunicateThru (raw ISO-DEP blocks: libnfc's presence check), InDeselect, InRelease,
//! InSelect; InJumpForDEP finds no NFCIP-1 target.
//!
//! Answers carry the chip's status bytes: 01 (timeout) when the target left the field or
//! nothing answers a raw frame, 27 (not acceptable in this context) for a target number that
//! was never activated.
//!
//! Not emulated: card emulation (target mode), NFCIP-1 peers, MIFARE Classic and other
//! ISO/IEC 14443-3 only cards, raw REQA/WUPA and anticollision through InCommunicateThru,
//! FeliCa, GPIO and SAM commands, timing (answers come as fast as the host reads them).
//!
//! # The target
//!
//! Any [`VirtualCard`]. Its ISO/IEC 14443 identity comes from [`Pn532Options`]; the ATS
//! historical bytes are the historical bytes of the card's ATR, so the ATR a PC/SC-style NFC
//! transport synthesises from the ATS (PC/SC part 3: `3B 8n 80 01 <historical> TCK`) matches
//! what vpcd shows for the same card. Each activation (InListPassiveTarget, InAutoPoll, or
//! re-selection after InDeselect) starts the card over, as a power-up does: selected
//! applications, verified PINs and secure messaging sessions do not survive it. Switching the
//! field off powers the card down.
//!
//! Removal ([`Pn532Handle::remove`], [`Pn532Handle::remove_after_apdus`]) takes the card out of
//! the field: the activated target stops answering (status 01), as a real card pulled away does.
//!
//! # Faults
//!
//! [`Pn532Fault`] makes the chip answer noise, stop answering, send answers with a wrong data
//! checksum, or answer everything with the error frame: a host must time out or fail cleanly,
//! never hang.
//!
//! # The pseudo-terminal
//!
//! The master side is ours; the slave (`/dev/pts/N`) is the host's serial port, set to raw
//! mode. libnfc marks a port it opens as claimed in the termios flags and restores them when it
//! closes; when the host goes away (all slave descriptors closed: the master reads EIO), the
//! emulator puts raw, unclaimed settings back, so a host that was killed does not leave the
//! port "already claimed" for the next one. The chip itself keeps its state across host
//! sessions, as a powered board does.

pub mod chip;
pub mod frame;

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags};
use rustix::termios::{self, InputModes, OptionalActions};

use crate::engine::VirtualCard;
use chip::{Chip, Field};

/// The UID of the emulated type A target unless [`Pn532Options::uid`] says otherwise: a
/// single-size UID whose first byte 08 marks it random, as eMRTDs and ID cards use.
pub const DEFAULT_UID: [u8; 4] = [0x08, 0x65, 0x49, 0x44];
/// The PUPI of the emulated type B target by default.
pub const DEFAULT_PUPI: [u8; 4] = [0x65, 0x49, 0x44, 0x42];
/// GetFirmwareVersion of a PN532 C106: IC 32, version 1, revision 6, support 07.
pub const PN532_FIRMWARE: [u8; 4] = [0x32, 0x01, 0x06, 0x07];

/// How often the serving thread looks at the clock while the chip waits for something (a card
/// for a poll, the rest of a frame).
const TICK: Duration = Duration::from_millis(5);
/// How often it looks otherwise (the stop flag).
const IDLE_TICK: Duration = Duration::from_millis(50);
/// How long a write to the host may wait for room before the bytes are dropped.
const WRITE_PATIENCE: Duration = Duration::from_secs(2);

/// ISO/IEC 14443 type of the emulated target.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TargetKind {
    /// 106 kbps type A, ISO/IEC 14443-4 (SAK 20, ATS after RATS).
    #[default]
    TypeA,
    /// 106 kbps type B, ISO/IEC 14443-4 (ATQB, ATTRIB).
    TypeB,
}

/// How the emulated reader and its target present themselves.
#[derive(Clone, Debug)]
pub struct Pn532Options {
    pub kind: TargetKind,
    /// Type A UID (4, 7 or 10 bytes); [`DEFAULT_UID`] when `None`.
    pub uid: Option<Vec<u8>>,
    /// Type B PUPI.
    pub pupi: [u8; 4],
    /// The whole ATS (length byte first) instead of the one built from the card's ATR.
    pub ats: Option<Vec<u8>>,
    /// What GetFirmwareVersion answers.
    pub firmware: [u8; 4],
}

impl Default for Pn532Options {
    fn default() -> Self {
        Pn532Options {
            kind: TargetKind::TypeA,
            uid: None,
            pupi: DEFAULT_PUPI,
            ats: None,
            firmware: PN532_FIRMWARE,
        }
    }
}

impl Pn532Options {
    /// The type A UID in use.
    pub fn uid(&self) -> Vec<u8> {
        self.uid.clone().unwrap_or_else(|| DEFAULT_UID.to_vec())
    }

    /// The ATS for a card with this ATR: TL, T0 78 (TA, TB, TC follow; FSCI 8: 256 bytes),
    /// TA 80 (106 kbps only), TB 71 (FWI 7, SFGI 1), TC 02 (CID supported), then the ATR's
    /// historical bytes.
    pub fn ats(&self, atr: &[u8]) -> Vec<u8> {
        if let Some(ats) = &self.ats {
            return ats.clone();
        }
        let historical = eid_protocols::atr::Atr::parse(atr)
            .map(|atr| atr.historical)
            .unwrap_or_default();
        let mut ats = Vec::with_capacity(historical.len() + 5);
        ats.push(u8::try_from(historical.len() + 5).unwrap_or(5));
        ats.extend_from_slice(&[0x78, 0x80, 0x71, 0x02]);
        if historical.len() <= 250 {
            ats.extend_from_slice(&historical);
        }
        ats
    }
}

/// Faults the emulated chip can show.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pn532Fault {
    /// Every command is answered with noise (no ACK, no frame).
    Garbage,
    /// Nothing is answered (the chip hangs): the host must time out.
    Silent,
    /// ACK, then an answer frame whose data checksum is wrong.
    BadChecksum,
    /// ACK, then the syntax error frame, for every command.
    ErrorFrame,
}

/// Entry point: the emulated reader on a new pseudo-terminal.
#[derive(Debug)]
pub enum Pn532Emulator {}

impl Pn532Emulator {
    /// Opens a pseudo-terminal pair and serves the PN532 protocol on it until the handle is
    /// dropped. `card`: the target in the field (`None`: the field is empty).
    pub fn spawn(card: Option<VirtualCard>, options: Pn532Options) -> io::Result<Pn532Handle> {
        let master = rustix::pty::openpt(
            rustix::pty::OpenptFlags::RDWR
                | rustix::pty::OpenptFlags::NOCTTY
                | rustix::pty::OpenptFlags::CLOEXEC,
        )?;
        rustix::pty::grantpt(&master)?;
        rustix::pty::unlockpt(&master)?;
        let name = rustix::pty::ptsname(&master, Vec::new())?;
        let tty_path = PathBuf::from(name.to_string_lossy().into_owned());
        set_raw(&master)?;
        let flags = rustix::fs::fcntl_getfl(&master)?;
        rustix::fs::fcntl_setfl(&master, flags | rustix::fs::OFlags::NONBLOCK)?;

        let mut field = Field::default();
        if let Some(card) = card {
            field.insert(card);
        }
        let shared = Arc::new(Shared {
            field: Mutex::new(field),
            fault: Mutex::new(None),
            frames_rejected: AtomicU64::new(0),
            stop: AtomicBool::new(false),
        });
        let thread_shared = Arc::clone(&shared);
        let worker = std::thread::Builder::new()
            .name(format!("pn532 {}", tty_path.display()))
            .spawn(move || serve(&thread_shared, master, options))?;
        tracing::debug!(tty = %tty_path.display(), "PN532 emulator started");
        Ok(Pn532Handle {
            tty_path,
            shared,
            worker: Some(worker),
        })
    }
}

/// State shared by the handle and the serving thread.
#[derive(Debug)]
struct Shared {
    field: Mutex<Field>,
    fault: Mutex<Option<Pn532Fault>>,
    frames_rejected: AtomicU64,
    stop: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The running emulator. Dropping it stops the chip and closes the pseudo-terminal.
#[derive(Debug)]
pub struct Pn532Handle {
    tty_path: PathBuf,
    shared: Arc<Shared>,
    worker: Option<JoinHandle<()>>,
}

impl Pn532Handle {
    /// The host's serial port, `/dev/pts/N`.
    pub fn tty_path(&self) -> &Path {
        &self.tty_path
    }

    /// libnfc's connection string for the reader: `pn532_uart:/dev/pts/N`.
    pub fn connstring(&self) -> String {
        format!("pn532_uart:{}", self.tty_path.display())
    }

    /// The card leaves the field (kept for [`Pn532Handle::reinsert`]).
    pub fn remove(&self) {
        lock(&self.shared.field).remove();
    }

    /// `card` enters the field (the one there, if any, leaves).
    pub fn insert(&self, card: VirtualCard) {
        lock(&self.shared.field).insert(card);
    }

    /// The last removed card comes back. False if there is none, or a card is in the field.
    pub fn reinsert(&self) -> bool {
        let mut field = lock(&self.shared.field);
        if field.card.is_some() {
            return false;
        }
        match field.removed.take() {
            Some(card) => {
                field.insert(card);
                true
            }
            None => false,
        }
    }

    /// The card leaves the field when the (n+1)-th APDU from now arrives: `n` more are
    /// answered, the next one is not (the chip reports a timeout).
    pub fn remove_after_apdus(&self, n: u64) {
        lock(&self.shared.field).remove_after = Some(n);
    }

    /// Whether a card is in the field.
    pub fn is_present(&self) -> bool {
        lock(&self.shared.field).card.is_some()
    }

    /// APDUs the card (in the field, else the last removed one) has processed.
    pub fn apdu_count(&self) -> u64 {
        self.with_card(|card| card.apdu_count()).unwrap_or(0)
    }

    /// Sets or clears a fault of the chip.
    pub fn set_fault(&self, fault: Option<Pn532Fault>) {
        *lock(&self.shared.fault) = fault;
    }

    /// Runs `f` on the card in the field, else the last removed one.
    pub fn with_card<R>(&self, f: impl FnOnce(&mut VirtualCard) -> R) -> Option<R> {
        let mut field = lock(&self.shared.field);
        let field = &mut *field;
        field.card.as_mut().or(field.removed.as_mut()).map(f)
    }

    /// Host frames the chip rejected (not acknowledged) so far.
    pub fn frames_rejected(&self) -> u64 {
        self.shared.frames_rejected.load(Ordering::SeqCst)
    }
}

impl Drop for Pn532Handle {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}

/// Raw 8-bit settings for the host's side, without libnfc's "claimed" mark (set through the
/// master: Linux applies terminal settings made on a master to its slave).
fn set_raw(master: impl AsFd) -> io::Result<()> {
    let mut settings = termios::tcgetattr(&master)?;
    settings.make_raw();
    settings.input_modes = InputModes::IGNPAR;
    termios::tcsetattr(&master, OptionalActions::Now, &settings)?;
    Ok(())
}

/// libnfc's mark on a port it has open (`CCLAIMED`, a bit of c_iflag no driver uses).
const LIBNFC_CLAIMED: u32 = 0x8000_0000;

fn is_claimed(master: impl AsFd) -> bool {
    termios::tcgetattr(&master)
        .map(|t| t.input_modes.bits() & LIBNFC_CLAIMED != 0)
        .unwrap_or(false)
}

/// The serving thread: bytes from the host to the chip, the chip's answers back.
fn serve(shared: &Shared, master: OwnedFd, options: Pn532Options) {
    let mut chip = Chip::new(options);
    let mut port = File::from(master);
    let mut buf = vec![0u8; 4096];
    let mut host_present = false;
    while !shared.stop.load(Ordering::SeqCst) {
        let tick = if chip.busy() { TICK } else { IDLE_TICK };
        let timeout = rustix::event::Timespec {
            tv_sec: 0,
            tv_nsec: i64::from(tick.subsec_nanos()),
        };
        let mut fds = [PollFd::new(&port, PollFlags::IN)];
        let ready = match rustix::event::poll(&mut fds, Some(&timeout)) {
            Ok(n) => n,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => {
                tracing::warn!(error = %e, "PN532 emulator: poll failed, stopping");
                return;
            }
        };
        let revents = fds[0].revents();
        let mut hung_up = revents.contains(PollFlags::HUP) && !revents.contains(PollFlags::IN);
        if ready > 0 && revents.contains(PollFlags::IN) {
            match port.read(&mut buf) {
                Ok(0) => hung_up = true,
                Ok(n) => {
                    host_present = true;
                    let received = buf.get(..n).unwrap_or_default();
                    let fault = *lock(&shared.fault);
                    let out = {
                        let mut field = lock(&shared.field);
                        chip.receive(received, &mut field, fault, Instant::now())
                    };
                    send(&mut port, &out);
                    shared
                        .frames_rejected
                        .store(chip.frames_rejected(), Ordering::SeqCst);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // EIO: no process has the slave open.
                Err(_) => hung_up = true,
            }
        }
        if hung_up {
            if host_present {
                tracing::debug!("PN532 emulator: the host closed the port");
                chip.host_gone();
                host_present = false;
            }
            // A host killed while it had the port open leaves libnfc's claim mark behind.
            if is_claimed(&port)
                && let Err(e) = set_raw(&port)
            {
                tracing::debug!(error = %e, "PN532 emulator: could not reset the port");
            }
            // Nobody on the other side: wait for the next host without spinning.
            std::thread::sleep(Duration::from_millis(20));
            continue;
        }
        if chip.busy() {
            let fault = *lock(&shared.fault);
            let out = {
                let mut field = lock(&shared.field);
                chip.tick(&mut field, fault, Instant::now())
            };
            send(&mut port, &out);
        }
        shared
            .frames_rejected
            .store(chip.frames_rejected(), Ordering::SeqCst);
    }
}

/// Writes the chip's bytes to the host, waiting a bounded time for room; a host that does not
/// read loses them, as it would on a serial line.
fn send(port: &mut File, bytes: &[u8]) {
    let mut rest = bytes;
    let deadline = Instant::now() + WRITE_PATIENCE;
    while !rest.is_empty() {
        match port.write(rest) {
            Ok(0) => return,
            Ok(n) => rest = rest.get(n..).unwrap_or_default(),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if Instant::now() >= deadline {
                    tracing::debug!(lost = rest.len(), "PN532 emulator: host not reading");
                    return;
                }
                let mut fds = [PollFd::new(&*port, PollFlags::OUT)];
                let wait = rustix::event::Timespec {
                    tv_sec: 0,
                    tv_nsec: 10_000_000,
                };
                let _ = rustix::event::poll(&mut fds, Some(&wait));
            }
            Err(_) => return,
        }
    }
}
