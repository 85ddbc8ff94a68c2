//! The virtual card engine: an ISO/IEC 7816-4 card operating system in memory.
//!
//! A [`VirtualCard`] takes raw command APDUs and returns raw response APDUs, as a card behind a
//! reader would. It never panics, whatever the bytes: anything malformed gets a status word.
//!
//! What it emulates:
//! - APDU decoding in short and extended form ([`Command::parse`]); a card built without extended
//!   length answers 6700 to any extended APDU.
//! - Command chaining (CLA bit 5): parts are collected until the last one, then the whole command
//!   is processed; a part with another INS, P1 or P2 breaks the chain (6883).
//! - T=0 behaviour when the card is built with [`Protocol::T0`]: a command with data whose answer
//!   has data is answered `61xx` and the data is held for GET RESPONSE (which returns the
//!   original status word once everything has been fetched); a READ BINARY asking for more bytes
//!   than the file has left is answered `6Cxx`; any other answer longer than Ne is `6Cxx` too.
//! - A file system ([`FileSystem`]) of DFs and transparent EFs: SELECT by FID, child DF, child EF,
//!   parent, DF name (exact or right-truncated), path from the MF or from the current DF, with
//!   FCI (`6F`), FCP (`62`) or no answer data; READ BINARY (B0 with offset or SFI, B1 with an
//!   offset data object) and UPDATE BINARY, with per-file access conditions.
//! - PINs with retry counters and PUKs: VERIFY (also without data, to read the counter, and
//!   P1 = FF to drop the verified state), CHANGE REFERENCE DATA, RESET RETRY COUNTER.
//! - GET CHALLENGE (OpenSSL randomness), MSE SET (key reference, tag 84) and PSO COMPUTE DIGITAL
//!   SIGNATURE with real EC keys ([`SigningKey`]).
//!
//! What it does not: logical channels (6881), secure messaging (6882, unless an [`Applet`] does
//! it), record or BER-TLV EFs, file management commands, PSO HASH, key generation on command,
//! GET DATA. Profiles add card-specific commands through the [`Applet`] hook, which sees every
//! command before the engine does.

mod crypto;
mod fs;
mod security;

use std::fmt;

use eid_protocols::apdu::{EXTENDED_MAX_NC, EXTENDED_MAX_NE, SHORT_MAX_NE};
use eid_protocols::{Command, LengthForm, Response, Status, tlv};
use zeroize::Zeroizing;

pub use crypto::SigningKey;
pub use fs::{Access, Df, Ef, FileRef, FileSystem, MF_FID};
pub use security::{PIN_BLOCK_LEN, Pin};

use security::{Attempt, is_valid_pin_block};

const INS_GET_RESPONSE: u8 = 0xC0;

/// The transmission protocol the card announces, which decides how it answers case 4 commands.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Protocol {
    /// Character protocol: `61xx` and GET RESPONSE for answers to commands with data, `6Cxx`
    /// for a wrong Le.
    T0,
    /// Block protocol: answers come back in one piece.
    T1,
}

/// A hook for profile-specific behaviour (a card application, secure messaging).
///
/// For each APDU the engine calls, in order: [`Applet::unwrap_command`] with the command as
/// received (after length-form checks and GET RESPONSE handling), then, once a chain is complete,
/// [`Applet::process`], which may answer instead of the engine, then [`Applet::wrap_response`]
/// on whatever answer is going back. An applet that wants the engine's standard behaviour for a
/// command it transformed calls [`CardCore::execute`].
pub trait Applet: Send + fmt::Debug {
    /// Sees every command first, one chain part at a time. Returns the command to go on with
    /// (for instance with secure messaging removed), or a final answer that skips everything
    /// else, [`Applet::wrap_response`] included.
    fn unwrap_command(
        &mut self,
        core: &mut CardCore,
        command: Command,
    ) -> Result<Command, Response> {
        let _ = core;
        Ok(command)
    }

    /// Sees every complete command (chains reassembled) before the standard commands. `Some`
    /// answers it; `None` lets the engine process it.
    fn process(&mut self, core: &mut CardCore, command: &Command) -> Option<Response> {
        let _ = (core, command);
        None
    }

    /// Sees every answer before it leaves (except those of [`Applet::unwrap_command`]).
    fn wrap_response(&mut self, core: &mut CardCore, response: Response) -> Response {
        let _ = core;
        response
    }

    /// The card was powered on or reset: drop session state (secure messaging keys...).
    fn reset(&mut self) {}
}

/// Builds a [`VirtualCard`].
#[derive(Debug)]
pub struct CardBuilder {
    atr: Vec<u8>,
    protocol: Protocol,
    extended_length: bool,
    command_chaining: bool,
    long_answers_via_get_response: bool,
    files: Df,
    pins: Vec<Pin>,
    keys: Vec<SigningKey>,
    applet: Option<Box<dyn Applet>>,
}

impl CardBuilder {
    /// A T=1 card with extended length and command chaining, this ATR and these files.
    pub fn new(atr: impl Into<Vec<u8>>, files: Df) -> Self {
        CardBuilder {
            atr: atr.into(),
            protocol: Protocol::T1,
            extended_length: true,
            command_chaining: true,
            long_answers_via_get_response: false,
            files,
            pins: Vec::new(),
            keys: Vec::new(),
            applet: None,
        }
    }

    #[must_use]
    pub fn protocol(mut self, protocol: Protocol) -> Self {
        self.protocol = protocol;
        self
    }

    /// Whether extended APDUs are accepted (otherwise they are answered 6700).
    #[must_use]
    pub fn extended_length(mut self, on: bool) -> Self {
        self.extended_length = on;
        self
    }

    /// Whether command chaining is accepted (otherwise chained parts are answered 6884).
    #[must_use]
    pub fn command_chaining(mut self, on: bool) -> Self {
        self.command_chaining = on;
        self
    }

    /// Whether an answer longer than Ne (256 for a short `Le = 00`) is cut at Ne and the rest
    /// held for GET RESPONSE (`61xx`), as some T=1 cards do (ISO/IEC 7816-4:2005 §5.1.3), instead
    /// of being refused with `6Cxx` / 6700. Off by default.
    #[must_use]
    pub fn long_answers_via_get_response(mut self, on: bool) -> Self {
        self.long_answers_via_get_response = on;
        self
    }

    #[must_use]
    pub fn pin(mut self, pin: Pin) -> Self {
        self.pins.push(pin);
        self
    }

    /// Adds a signing key; the first one added is used when MSE SET has not chosen one.
    #[must_use]
    pub fn key(mut self, key: SigningKey) -> Self {
        self.keys.push(key);
        self
    }

    #[must_use]
    pub fn applet(mut self, applet: impl Applet + 'static) -> Self {
        self.applet = Some(Box::new(applet));
        self
    }

    pub fn build(self) -> VirtualCard {
        let fs = FileSystem::new(self.files);
        let mf = fs.mf();
        VirtualCard {
            core: CardCore {
                atr: self.atr,
                protocol: self.protocol,
                extended_length: self.extended_length,
                command_chaining: self.command_chaining,
                long_answers: self.long_answers_via_get_response,
                max_response_data: EXTENDED_MAX_NE,
                fs,
                current_df: mf,
                current_ef: None,
                pins: self.pins,
                keys: self.keys,
                selected_key: None,
            },
            applet: self.applet,
            chain: None,
            pending: None,
            apdu_count: 0,
        }
    }
}

/// A virtual card: feed it command APDUs with [`VirtualCard::process`].
pub struct VirtualCard {
    core: CardCore,
    applet: Option<Box<dyn Applet>>,
    chain: Option<Chain>,
    pending: Option<Pending>,
    apdu_count: u64,
}

/// Chain parts received so far.
struct Chain {
    key: (u8, u8, u8),
    data: Zeroizing<Vec<u8>>,
}

/// An answer held for GET RESPONSE (T=0).
struct Pending {
    data: Vec<u8>,
    status: Status,
}

/// The outcome of one chain part.
enum ChainStep {
    Partial,
    Complete(Command),
    Failed(Status),
}

impl VirtualCard {
    /// Starts describing a card.
    pub fn builder(atr: impl Into<Vec<u8>>, files: Df) -> CardBuilder {
        CardBuilder::new(atr, files)
    }

    /// Processes one command APDU and returns the response APDU (data || SW1 SW2).
    pub fn process(&mut self, apdu: &[u8]) -> Vec<u8> {
        self.apdu_count = self.apdu_count.saturating_add(1);
        let response = self.handle(apdu);
        if let Some(header) = apdu.first_chunk::<4>() {
            tracing::trace!(
                header = %hex_bytes(header),
                len = apdu.len(),
                resp_len = response.data().len(),
                sw = format_args!("{:04X}", response.status().to_u16()),
                "virtual card"
            );
        }
        response.to_bytes()
    }

    fn handle(&mut self, apdu: &[u8]) -> Response {
        let Ok((command, form)) = Command::parse(apdu) else {
            self.pending = None;
            return status(Status::WrongLength);
        };
        if form == LengthForm::Extended && !self.core.extended_length {
            self.pending = None;
            return status(Status::WrongLength);
        }
        if command.cla() == 0xFF {
            self.pending = None;
            return status(Status::ClaNotSupported);
        }
        if command.ins() == INS_GET_RESPONSE && command.cla() & 0x80 == 0 {
            return self.get_response(&command);
        }
        self.pending = None;
        // What T=0 would have carried: a command with data is case 3 on the wire, so data in
        // the answer must wait for GET RESPONSE.
        let data_on_wire = command.nc() > 0;
        let long_answers = self.core.long_answers && self.core.protocol == Protocol::T1;

        let command = match self.applet.as_mut() {
            Some(applet) => match applet.unwrap_command(&mut self.core, command) {
                Ok(command) => command,
                Err(response) => return response,
            },
            None => command,
        };
        let response = match self.chain(command) {
            ChainStep::Partial => status(Status::Success),
            ChainStep::Failed(sw) => status(sw),
            ChainStep::Complete(command) => {
                let response = match self.applet.as_mut() {
                    Some(applet) => applet.process(&mut self.core, &command),
                    None => None,
                };
                let response = response.unwrap_or_else(|| self.core.execute(&command));
                if long_answers {
                    return self.split_long_answer(command.ne(), response);
                }
                fit_ne(&command, response)
            }
        };
        let response = match self.applet.as_mut() {
            Some(applet) => applet.wrap_response(&mut self.core, response),
            None => response,
        };
        if self.core.protocol == Protocol::T0 && data_on_wire && !response.data().is_empty() {
            let len = response.data().len();
            let sw = response.status();
            self.pending = Some(Pending {
                data: response.into_data(),
                status: sw,
            });
            return status(Status::MoreAvailable(sw2_count(len)));
        }
        response
    }

    /// [`CardBuilder::long_answers_via_get_response`]: the applet wraps the whole answer, then
    /// up to Ne bytes go out with `61xx` and the rest waits for GET RESPONSE.
    fn split_long_answer(&mut self, ne: Option<usize>, response: Response) -> Response {
        let response = match self.applet.as_mut() {
            Some(applet) => applet.wrap_response(&mut self.core, response),
            None => response,
        };
        let limit = ne.unwrap_or(0);
        if response.data().len() <= limit {
            return response;
        }
        let sw = response.status();
        let mut data = response.into_data();
        let rest = data.split_off(limit);
        let left = rest.len();
        self.pending = Some(Pending {
            data: rest,
            status: sw,
        });
        Response::new(data, Status::MoreAvailable(sw2_count(left)))
    }

    /// Collects chain parts; returns the whole command once the last part has arrived.
    fn chain(&mut self, command: Command) -> ChainStep {
        let key = (command.ins(), command.p1(), command.p2());
        let chained = command.cla() & 0x80 == 0 && command.cla() & 0x10 != 0;
        if chained && !self.core.command_chaining {
            self.chain = None;
            return ChainStep::Failed(Status::ChainingNotSupported);
        }
        match self.chain.take() {
            Some(chain) if chain.key != key => {
                ChainStep::Failed(Status::LastCommandOfChainExpected)
            }
            Some(mut chain) => {
                if chain.data.len().saturating_add(command.nc()) > EXTENDED_MAX_NC {
                    return ChainStep::Failed(Status::WrongLength);
                }
                chain.data.extend_from_slice(command.data());
                if chained {
                    self.chain = Some(chain);
                    return ChainStep::Partial;
                }
                let whole = Command::new(command.cla(), command.ins(), command.p1(), command.p2())
                    .with_secret_data(chain.data)
                    .with_ne(command.ne().unwrap_or(0));
                ChainStep::Complete(whole)
            }
            None if chained => {
                let mut data = Zeroizing::new(Vec::with_capacity(EXTENDED_MAX_NC));
                data.extend_from_slice(command.data());
                self.chain = Some(Chain { key, data });
                ChainStep::Partial
            }
            None => ChainStep::Complete(command),
        }
    }

    fn get_response(&mut self, command: &Command) -> Response {
        let Some(mut pending) = self.pending.take() else {
            return status(Status::ConditionsNotSatisfied);
        };
        if command.p1() != 0 || command.p2() != 0 {
            return status(Status::IncorrectP1P2);
        }
        let Some(ne) = command.ne() else {
            return status(Status::WrongLength);
        };
        let rest = pending.data.split_off(ne.min(pending.data.len()));
        if rest.is_empty() {
            return Response::new(pending.data, pending.status);
        }
        let left = rest.len();
        self.pending = Some(Pending {
            data: rest,
            status: pending.status,
        });
        Response::new(pending.data, Status::MoreAvailable(sw2_count(left)))
    }

    /// The answer-to-reset.
    pub fn atr(&self) -> &[u8] {
        &self.core.atr
    }

    /// Powers the card on: volatile state (selection, verified PINs, chains, pending answers,
    /// chosen key, applet session) is cleared; retry counters and file contents persist.
    pub fn power_on(&mut self) {
        self.clear_volatile();
    }

    /// Powers the card off (same effect on state as [`VirtualCard::power_on`]).
    pub fn power_off(&mut self) {
        self.clear_volatile();
    }

    /// Warm reset (same effect on state as [`VirtualCard::power_on`]).
    pub fn reset(&mut self) {
        self.clear_volatile();
    }

    fn clear_volatile(&mut self) {
        self.chain = None;
        self.pending = None;
        self.core.clear_volatile();
        if let Some(applet) = self.applet.as_mut() {
            applet.reset();
        }
    }

    /// How many APDUs [`VirtualCard::process`] has seen, malformed ones included.
    pub fn apdu_count(&self) -> u64 {
        self.apdu_count
    }

    /// Limits the data of any one answer (the card's I/O buffer; 65 536 by default). A READ
    /// BINARY that asks for more gets this many bytes and 9000.
    pub fn set_max_response_data(&mut self, max: usize) {
        self.core.max_response_data = max.clamp(1, EXTENDED_MAX_NE);
    }

    /// The card's state (files, PINs, keys, selection), for tests and applets.
    pub fn core(&self) -> &CardCore {
        &self.core
    }

    pub fn core_mut(&mut self) -> &mut CardCore {
        &mut self.core
    }

    /// The contents of the EF at `path` from the MF (leading 3F00 optional).
    pub fn file(&self, path: &[u16]) -> Option<&[u8]> {
        let fs = &self.core.fs;
        fs.data(fs.resolve_from_mf(path)?)
    }

    /// The PIN object with this reference.
    pub fn pin(&self, reference: u8) -> Option<&Pin> {
        self.core.pin(reference)
    }
}

impl fmt::Debug for VirtualCard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VirtualCard")
            .field("atr", &hex_bytes(&self.core.atr))
            .field("protocol", &self.core.protocol)
            .field("apdu_count", &self.apdu_count)
            .field("applet", &self.applet)
            .finish_non_exhaustive()
    }
}

/// A status word without data, or an answer with data: `Err` is the short way to say "this
/// status word and nothing else".
type Answer = Result<Response, Status>;

/// The card's state and its standard (interindustry) commands.
pub struct CardCore {
    atr: Vec<u8>,
    protocol: Protocol,
    extended_length: bool,
    command_chaining: bool,
    long_answers: bool,
    max_response_data: usize,
    fs: FileSystem,
    current_df: FileRef,
    current_ef: Option<FileRef>,
    pins: Vec<Pin>,
    keys: Vec<SigningKey>,
    selected_key: Option<u8>,
}

impl fmt::Debug for CardCore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CardCore")
            .field("protocol", &self.protocol)
            .field("extended_length", &self.extended_length)
            .field("command_chaining", &self.command_chaining)
            .field("current_df", &self.fs.fid(self.current_df))
            .field("current_ef", &self.current_ef.and_then(|f| self.fs.fid(f)))
            .field("pins", &self.pins)
            .field("keys", &self.keys)
            .finish_non_exhaustive()
    }
}

impl CardCore {
    /// Processes one complete command with the standard commands only (no applet, no chaining,
    /// no GET RESPONSE).
    pub fn execute(&mut self, command: &Command) -> Response {
        let answer = check_class(command.cla()).and_then(|()| match command.ins() {
            0xA4 => self.select(command),
            0xB0 => self.read_binary(command),
            0xB1 => self.read_binary_odd(command),
            0xD6 => self.update_binary(command),
            0x20 => self.verify(command),
            0x24 => self.change_reference_data(command),
            0x2C => self.reset_retry_counter(command),
            0x84 => self.get_challenge(command),
            0x22 => self.manage_security_environment(command),
            0x2A => self.perform_security_operation(command),
            INS_GET_RESPONSE => Err(Status::ConditionsNotSatisfied),
            _ => Err(Status::InsNotSupported),
        });
        answer.unwrap_or_else(status)
    }

    fn clear_volatile(&mut self) {
        self.current_df = self.fs.mf();
        self.current_ef = None;
        self.selected_key = None;
        for pin in &mut self.pins {
            pin.verified = false;
        }
    }

    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    pub fn fs(&self) -> &FileSystem {
        &self.fs
    }

    pub fn fs_mut(&mut self) -> &mut FileSystem {
        &mut self.fs
    }

    pub fn current_df(&self) -> FileRef {
        self.current_df
    }

    pub fn current_ef(&self) -> Option<FileRef> {
        self.current_ef
    }

    /// Makes `file` the current file (and its parent the current DF if it is an EF).
    pub fn select_file(&mut self, file: FileRef) {
        if self.fs.is_df(file) {
            self.current_df = file;
            self.current_ef = None;
        } else {
            self.current_df = self.fs.parent(file).unwrap_or(self.fs.mf());
            self.current_ef = Some(file);
        }
    }

    pub fn pin(&self, reference: u8) -> Option<&Pin> {
        self.pins.iter().find(|p| p.reference() == reference)
    }

    pub fn pin_mut(&mut self, reference: u8) -> Option<&mut Pin> {
        self.pins.iter_mut().find(|p| p.reference() == reference)
    }

    pub fn key(&self, reference: u8) -> Option<&SigningKey> {
        self.keys.iter().find(|k| k.reference() == reference)
    }

    /// The key PSO COMPUTE DIGITAL SIGNATURE uses: the one MSE SET chose, else the first.
    pub fn signing_key(&self) -> Option<&SigningKey> {
        match self.selected_key {
            Some(reference) => self.key(reference),
            None => self.keys.first(),
        }
    }

    /// Whether an access condition is met now.
    pub fn is_satisfied(&self, access: Access) -> bool {
        match access {
            Access::Always => true,
            Access::Never => false,
            Access::Pin(reference) => self.pin(reference).is_some_and(Pin::is_verified),
        }
    }

    /// The largest answer data the card sends at once.
    pub fn max_response_data(&self) -> usize {
        self.max_response_data
    }

    fn require(&self, access: Option<Access>) -> Result<(), Status> {
        match access {
            None => Err(Status::IncompatibleFileStructure),
            Some(access) if self.is_satisfied(access) => Ok(()),
            Some(_) => Err(Status::SecurityStatusNotSatisfied),
        }
    }

    // ---- SELECT ----

    fn select(&mut self, command: &Command) -> Answer {
        let template = match command.p2() {
            0x00 => Some(0x6F),
            0x04 => Some(0x62),
            0x0C => None,
            _ => return Err(Status::IncorrectP1P2),
        };
        let data = command.data();
        let fs = &self.fs;
        let target = match command.p1() {
            0x00 if data.is_empty() => Some(fs.mf()),
            0x00 => self.find_by_fid(fid(data)?),
            0x01 => fs
                .child(self.current_df, fid(data)?)
                .filter(|&f| fs.is_df(f)),
            0x02 => fs
                .child(self.current_df, fid(data)?)
                .filter(|&f| !fs.is_df(f)),
            0x03 if data.is_empty() => fs.parent(self.current_df),
            0x03 => return Err(Status::WrongLength),
            0x04 if data.is_empty() || data.len() > 16 => return Err(Status::WrongLength),
            0x04 => fs.df_by_name(data),
            0x08 => fs.resolve_from_mf(&path(data)?),
            0x09 => fs.resolve(self.current_df, &path(data)?),
            _ => return Err(Status::IncorrectP1P2),
        };
        let target = target.ok_or(Status::FileNotFound)?;
        self.select_file(target);
        let Some(tag) = template else {
            return Ok(status(Status::Success));
        };
        let parameters = self
            .fs
            .control_parameters(target)
            .ok_or(Status::NoPreciseDiagnosis)?;
        let fci = tlv::encode(tag, &parameters).map_err(|_| Status::NoPreciseDiagnosis)?;
        Ok(Response::new(fci, Status::Success))
    }

    /// SELECT P1 = 00: the MF, a child of the current DF, the current DF, its parent or a
    /// sibling DF (ISO/IEC 7816-4:2005 §7.1.1).
    fn find_by_fid(&self, fid: u16) -> Option<FileRef> {
        let fs = &self.fs;
        let current = self.current_df;
        if fid == MF_FID {
            return Some(fs.mf());
        }
        if let Some(child) = fs.child(current, fid) {
            return Some(child);
        }
        if fs.fid(current) == Some(fid) {
            return Some(current);
        }
        let parent = fs.parent(current)?;
        if fs.fid(parent) == Some(fid) {
            return Some(parent);
        }
        fs.child(parent, fid).filter(|&f| fs.is_df(f))
    }

    // ---- READ BINARY / UPDATE BINARY ----

    /// The EF addressed by P1-P2 of B0/D6 (current EF with a 15-bit offset, or SFI with an
    /// 8-bit offset), which becomes the current EF.
    fn ef_and_offset(&mut self, p1: u8, p2: u8) -> Result<(FileRef, usize), Status> {
        if p1 & 0x80 == 0 {
            let ef = self.current_ef.ok_or(Status::NoCurrentEf)?;
            return Ok((ef, usize::from(u16::from_be_bytes([p1, p2]))));
        }
        let sfi = p1 & 0x1F;
        if p1 & 0x60 != 0 || sfi == 0 || sfi == 0x1F {
            return Err(Status::IncorrectP1P2);
        }
        let ef = self
            .fs
            .child_by_sfi(self.current_df, sfi)
            .ok_or(Status::FileNotFound)?;
        self.current_ef = Some(ef);
        Ok((ef, usize::from(p2)))
    }

    fn read_binary(&mut self, command: &Command) -> Answer {
        if command.nc() != 0 {
            return Err(Status::WrongLength);
        }
        let (ef, offset) = self.ef_and_offset(command.p1(), command.p2())?;
        let ne = command.ne().ok_or(Status::WrongLength)?;
        self.require(self.fs.read_access(ef))?;
        let data = self.fs.data(ef).ok_or(Status::IncompatibleFileStructure)?;
        let remaining = data
            .get(offset..)
            .filter(|r| !r.is_empty())
            .ok_or(Status::WrongP1P2)?;
        if remaining.len() < ne && self.protocol == Protocol::T0 {
            // remaining < Ne ≤ 256 here.
            return Err(Status::WrongLe(sw2_count(remaining.len())));
        }
        let (chunk, sw) = chunk(remaining, ne.min(self.max_response_data), ne);
        Ok(Response::new(chunk.to_vec(), sw))
    }

    fn read_binary_odd(&mut self, command: &Command) -> Answer {
        let ef = match (command.p1(), command.p2()) {
            (0, 0) => self.current_ef.ok_or(Status::NoCurrentEf)?,
            (0, sfi @ 1..=30) => self
                .fs
                .child_by_sfi(self.current_df, sfi)
                .ok_or(Status::FileNotFound)?,
            (0, _) => return Err(Status::IncorrectP1P2),
            (p1, p2) => {
                let fid = u16::from_be_bytes([p1, p2]);
                let fs = &self.fs;
                fs.child(self.current_df, fid)
                    .filter(|&f| !fs.is_df(f))
                    .ok_or(Status::FileNotFound)?
            }
        };
        self.current_ef = Some(ef);
        let offset = match tlv::find(command.data(), 0x54) {
            Ok(Some(obj)) if (1..=4).contains(&obj.value().len()) => obj
                .value()
                .iter()
                .fold(0usize, |acc, &b| acc << 8 | usize::from(b)),
            _ => return Err(Status::IncorrectData),
        };
        let ne = command.ne().ok_or(Status::WrongLength)?;
        self.require(self.fs.read_access(ef))?;
        let data = self.fs.data(ef).ok_or(Status::IncompatibleFileStructure)?;
        let remaining = data
            .get(offset..)
            .filter(|r| !r.is_empty())
            .ok_or(Status::WrongP1P2)?;
        // Ne counts the 53 header too.
        let fits = |cap: usize| {
            let mut n = cap.saturating_sub(2);
            while n > 0 && n + tlv_header_len(n) > cap {
                n -= 1;
            }
            n
        };
        let room = fits(ne.min(self.max_response_data));
        if room == 0 {
            return Err(Status::WrongLength);
        }
        let (chunk, sw) = chunk(remaining, room, fits(ne));
        let wrapped = tlv::encode(0x53, chunk).map_err(|_| Status::NoPreciseDiagnosis)?;
        Ok(Response::new(wrapped, sw))
    }

    fn update_binary(&mut self, command: &Command) -> Answer {
        let (ef, offset) = self.ef_and_offset(command.p1(), command.p2())?;
        let new = command.data();
        if new.is_empty() {
            return Err(Status::WrongLength);
        }
        self.require(self.fs.update_access(ef))?;
        let data = self
            .fs
            .data_mut(ef)
            .ok_or(Status::IncompatibleFileStructure)?;
        if offset >= data.len() {
            return Err(Status::WrongP1P2);
        }
        let target = data.get_mut(offset..offset.saturating_add(new.len()));
        let target = target.ok_or(Status::NotEnoughMemory)?;
        target.copy_from_slice(new);
        Ok(status(Status::Success))
    }

    // ---- PINs ----

    fn verify(&mut self, command: &Command) -> Answer {
        let pin = self.pin_mut(command.p2());
        match command.p1() {
            0x00 => {}
            // Drop the verified state.
            0xFF if command.nc() == 0 => {
                pin.ok_or(Status::ReferenceNotFound)?.verified = false;
                return Ok(status(Status::Success));
            }
            0xFF => return Err(Status::WrongLength),
            _ => return Err(Status::IncorrectP1P2),
        }
        let pin = pin.ok_or(Status::ReferenceNotFound)?;
        if command.data().is_empty() {
            return if pin.is_blocked() {
                Err(Status::AuthenticationBlocked)
            } else if pin.verified {
                Ok(status(Status::Success))
            } else {
                Err(Status::RemainingRetries(pin.tries_left()))
            };
        }
        present(pin, command.data())?;
        Ok(status(Status::Success))
    }

    fn change_reference_data(&mut self, command: &Command) -> Answer {
        let pin = self
            .pin_mut(command.p2())
            .ok_or(Status::ReferenceNotFound)?;
        let len = pin.secret.len();
        let data = command.data();
        let new = match command.p1() {
            0x00 => {
                if data.len() != len.saturating_mul(2) {
                    return Err(Status::WrongLength);
                }
                let (old, new) = data.split_at(len);
                if !is_valid_pin_block(new) {
                    return Err(Status::IncorrectData);
                }
                present(pin, old)?;
                new
            }
            0x01 => {
                if data.len() != len {
                    return Err(Status::WrongLength);
                }
                if pin.is_blocked() {
                    return Err(Status::AuthenticationBlocked);
                }
                if !pin.verified {
                    return Err(Status::SecurityStatusNotSatisfied);
                }
                if !is_valid_pin_block(data) {
                    return Err(Status::IncorrectData);
                }
                data
            }
            _ => return Err(Status::IncorrectP1P2),
        };
        pin.replace(new);
        pin.verified = true;
        Ok(status(Status::Success))
    }

    fn reset_retry_counter(&mut self, command: &Command) -> Answer {
        let pin = self
            .pin_mut(command.p2())
            .ok_or(Status::ReferenceNotFound)?;
        let pin_len = pin.secret.len();
        let puk = pin.puk.as_mut().ok_or(Status::ReferenceNotFound)?;
        let puk_len = puk.len();
        let data = command.data();
        let (presented, new) = match command.p1() {
            0x00 => {
                if data.len() != puk_len.saturating_add(pin_len) {
                    return Err(Status::WrongLength);
                }
                let (presented, new) = data.split_at(puk_len);
                if !is_valid_pin_block(new) {
                    return Err(Status::IncorrectData);
                }
                (presented, Some(new))
            }
            0x01 if data.len() == puk_len => (data, None),
            0x01 => return Err(Status::WrongLength),
            _ => return Err(Status::IncorrectP1P2),
        };
        match puk.attempt(presented) {
            Attempt::Match => {}
            Attempt::Mismatch(left) => return Err(Status::RemainingRetries(left)),
            Attempt::Blocked => return Err(Status::AuthenticationBlocked),
            Attempt::BadLength => return Err(Status::WrongLength),
        }
        match new {
            Some(new) => pin.replace(new),
            None => pin.unblock(),
        }
        pin.verified = false;
        Ok(status(Status::Success))
    }

    // ---- Security operations ----

    fn get_challenge(&mut self, command: &Command) -> Answer {
        if command.p1() != 0 || command.p2() != 0 {
            return Err(Status::IncorrectP1P2);
        }
        if command.nc() != 0 {
            return Err(Status::WrongLength);
        }
        let ne = command.ne().ok_or(Status::WrongLength)?;
        let mut challenge = vec![0; ne.min(self.max_response_data)];
        openssl::rand::rand_bytes(&mut challenge).map_err(|_| Status::NoPreciseDiagnosis)?;
        Ok(Response::new(challenge, Status::Success))
    }

    fn manage_security_environment(&mut self, command: &Command) -> Answer {
        match (command.p1(), command.p2()) {
            (0x41 | 0x81, 0xB6) | (0x41, 0xA4) => {}
            // RESTORE: back to the default key.
            (0xF3, _) => {
                self.selected_key = None;
                return Ok(status(Status::Success));
            }
            _ => return Err(Status::IncorrectP1P2),
        }
        let reference = match tlv::find(command.data(), 0x84) {
            Ok(Some(obj)) => match obj.value() {
                [reference] => Some(*reference),
                _ => return Err(Status::IncorrectData),
            },
            Ok(None) => None,
            Err(_) => return Err(Status::IncorrectData),
        };
        if let Some(reference) = reference {
            if self.key(reference).is_none() {
                return Err(Status::ReferenceNotFound);
            }
            self.selected_key = Some(reference);
        }
        Ok(status(Status::Success))
    }

    fn perform_security_operation(&mut self, command: &Command) -> Answer {
        if (command.p1(), command.p2()) != (0x9E, 0x9A) {
            return Err(Status::IncorrectP1P2);
        }
        let digest = command.data();
        if digest.is_empty() || digest.len() > 64 {
            return Err(Status::WrongLength);
        }
        let key = self.signing_key().ok_or(Status::ReferenceNotFound)?;
        if !self.is_satisfied(key.access()) {
            return Err(Status::SecurityStatusNotSatisfied);
        }
        let signature = key
            .sign_digest(digest)
            .map_err(|_| Status::NoPreciseDiagnosis)?;
        Ok(Response::new(signature, Status::Success))
    }
}

/// Presents `candidate` to a PIN: verified on a match, counted down otherwise.
fn present(pin: &mut Pin, candidate: &[u8]) -> Result<(), Status> {
    match pin.secret.attempt(candidate) {
        Attempt::Match => {
            pin.verified = true;
            Ok(())
        }
        Attempt::Mismatch(left) => {
            pin.verified = false;
            Err(Status::RemainingRetries(left))
        }
        Attempt::Blocked => {
            pin.verified = false;
            Err(Status::AuthenticationBlocked)
        }
        Attempt::BadLength => Err(Status::WrongLength),
    }
}

/// Classes the standard commands accept: first interindustry, basic channel, no secure
/// messaging (CLA bit 5, chaining, is handled before).
fn check_class(cla: u8) -> Result<(), Status> {
    if cla & 0x80 != 0 || cla & 0xE0 == 0x20 {
        Err(Status::ClaNotSupported)
    } else if cla & 0x40 != 0 || cla & 0x03 != 0 {
        Err(Status::LogicalChannelNotSupported)
    } else if cla & 0x0C != 0 {
        Err(Status::SecureMessagingNotSupported)
    } else {
        Ok(())
    }
}

/// Up to `room` bytes of `remaining`; 6282 when the file ends before `ne` bytes.
fn chunk(remaining: &[u8], room: usize, ne: usize) -> (&[u8], Status) {
    let n = remaining.len().min(room);
    let sw = if n == remaining.len() && remaining.len() < ne {
        Status::EndOfFile
    } else {
        Status::Success
    };
    (remaining.get(..n).unwrap_or_default(), sw)
}

/// An answer longer than Ne: `6Cxx` when a short Le could ask for all of it, 6700 otherwise.
fn fit_ne(command: &Command, response: Response) -> Response {
    let len = response.data().len();
    match command.ne() {
        Some(ne) if len > ne && len <= SHORT_MAX_NE => status(Status::WrongLe(sw2_count(len))),
        Some(ne) if len > ne => status(Status::WrongLength),
        _ => response,
    }
}

fn fid(data: &[u8]) -> Result<u16, Status> {
    <[u8; 2]>::try_from(data)
        .map(u16::from_be_bytes)
        .map_err(|_| Status::WrongLength)
}

fn path(data: &[u8]) -> Result<Vec<u16>, Status> {
    if data.is_empty() || !data.len().is_multiple_of(2) {
        return Err(Status::WrongLength);
    }
    Ok(data
        .chunks_exact(2)
        .map(|c| c.iter().fold(0u16, |acc, &b| acc << 8 | u16::from(b)))
        .collect())
}

/// Length of the tag and length fields of a one-byte-tag data object with `n` value bytes.
fn tlv_header_len(n: usize) -> usize {
    match n {
        0..=0x7F => 2,
        0x80..=0xFF => 3,
        0x100..=0xFFFF => 4,
        _ => 5,
    }
}

/// SW2 of `61xx` / `6Cxx`: the count, with 00 meaning 256 or more.
fn sw2_count(n: usize) -> u8 {
    u8::try_from(n).unwrap_or(0)
}

fn status(sw: Status) -> Response {
    Response::status_only(sw)
}

pub(crate) fn hex_bytes(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

/// An ATR offering T=1 only, with these historical bytes (at most 15) and its check byte:
/// `3B 8K 01 <historical> TCK`.
pub fn atr_t1(historical: &[u8]) -> Vec<u8> {
    let historical = historical
        .get(..historical.len().min(15))
        .unwrap_or_default();
    let mut atr = vec![0x3B, 0x80 | historical.len() as u8, 0x01];
    atr.extend_from_slice(historical);
    let tck = atr.iter().skip(1).fold(0u8, |acc, b| acc ^ b);
    atr.push(tck);
    atr
}

/// An ATR offering T=0 only (no interface bytes, no check byte): `3B 0K <historical>`.
pub fn atr_t0(historical: &[u8]) -> Vec<u8> {
    let historical = historical
        .get(..historical.len().min(15))
        .unwrap_or_default();
    let mut atr = vec![0x3B, historical.len() as u8];
    atr.extend_from_slice(historical);
    atr
}

#[cfg(test)]
mod tests;
