//! The PN532's firmware as the host sees it: commands in, answers out, and the one ISO/IEC
//! 14443 target in the field. No I/O: [`Chip::receive`] takes the host's bytes and returns the
//! chip's; [`Chip::tick`] lets time pass (a poll waiting for a card, a half-received frame).
//!
//! ISO/IEC 14443-4 (ISO-DEP) is split as on the real chip: InDataExchange carries APDUs and the
//! chip runs the block protocol, so the emulator hands whole APDUs to the [`VirtualCard`]
//! (chaining on the host link with the MI bit, both ways); InCommunicateThru carries raw blocks
//! (libnfc's presence check sends R(NAK) that way), which the card side answers by the block
//! rules of ISO/IEC 14443-4 §7.5.4 (block numbers, R(ACK)/R(NAK), S(DESELECT), CID).

use std::time::{Duration, Instant};

use crate::engine::VirtualCard;

use super::frame::{self, ACK, ERROR_FRAME, FrameParser, HostFrame};
use super::{Pn532Fault, Pn532Options, TargetKind};

// Command codes (UM0701-02 §7).
const DIAGNOSE: u8 = 0x00;
const GET_FIRMWARE_VERSION: u8 = 0x02;
const GET_GENERAL_STATUS: u8 = 0x04;
const READ_REGISTER: u8 = 0x06;
const WRITE_REGISTER: u8 = 0x08;
const SET_PARAMETERS: u8 = 0x12;
const SAM_CONFIGURATION: u8 = 0x14;
const POWER_DOWN: u8 = 0x16;
const RF_CONFIGURATION: u8 = 0x32;
const IN_DATA_EXCHANGE: u8 = 0x40;
const IN_COMMUNICATE_THRU: u8 = 0x42;
const IN_DESELECT: u8 = 0x44;
const IN_JUMP_FOR_DEP: u8 = 0x46;
const IN_LIST_PASSIVE_TARGET: u8 = 0x4A;
const IN_PSL: u8 = 0x4E;
const IN_RELEASE: u8 = 0x52;
const IN_SELECT: u8 = 0x54;
const IN_JUMP_FOR_PSL: u8 = 0x56;
const IN_AUTO_POLL: u8 = 0x60;

// Status bytes (UM0701-02 §7.1).
/// The target did not answer (it left the field, or there is none of that kind).
pub const STATUS_TIMEOUT: u8 = 0x01;
/// The command is not acceptable in the current context (e.g. no such target).
pub const STATUS_WRONG_CONTEXT: u8 = 0x27;
const STATUS_OK: u8 = 0x00;
/// The answer does not fit the chip's buffer.
const STATUS_BUFFER_OVERFLOW: u8 = 0x09;
const STATUS_MI: u8 = 0x40;

// CIU registers libnfc looks at.
const REG_TX_MODE: u16 = 0x6302;
const REG_RX_MODE: u16 = 0x6303;
const REG_MANUAL_RCV: u16 = 0x630D;
const CRC_ENABLE: u8 = 0x80;
const FRAMING_MASK: u8 = 0x73;
const FRAMING_A_106: u8 = 0x00;
const FRAMING_FELICA: u8 = 0x02;
const FRAMING_B_106: u8 = 0x03;
const PARITY_DISABLE: u8 = 0x10;

// SetParameters flags.
const PARAM_AUTO_RATS: u8 = 0x10;

/// Most data bytes in one InDataExchange answer after the status byte; the rest follows with MI.
pub const MAX_EXCHANGE_OUT: usize = 262;
/// A frame started but not finished after this long is dropped (the host gave up on it).
pub const PARTIAL_FRAME_TIMEOUT: Duration = Duration::from_millis(200);
/// One poll period unit of InAutoPoll.
const POLL_PERIOD_UNIT: Duration = Duration::from_millis(150);

/// The CID the chip gives a type B card in ATTRIB (libnfc's presence check relies on it).
const CID_B: u8 = 0x01;

/// What is in the RF field, shared with the test's handle.
#[derive(Debug, Default)]
pub(crate) struct Field {
    pub(crate) card: Option<VirtualCard>,
    /// The last card taken out, for `reinsert`.
    pub(crate) removed: Option<VirtualCard>,
    /// Bumped whenever a card enters or leaves: an activation of an older one is stale.
    pub(crate) generation: u64,
    /// Whether the card in the field is powered by the chip's field.
    pub(crate) powered: bool,
    /// APDUs still answered before the card leaves.
    pub(crate) remove_after: Option<u64>,
}

impl Field {
    pub(crate) fn remove(&mut self) {
        if let Some(mut card) = self.card.take() {
            card.power_off();
            self.removed = Some(card);
            self.generation = self.generation.wrapping_add(1);
        }
        self.powered = false;
        self.remove_after = None;
    }

    pub(crate) fn insert(&mut self, card: VirtualCard) {
        self.remove();
        self.card = Some(card);
        self.generation = self.generation.wrapping_add(1);
    }
}

/// The activated target (the chip handles one: MaxTg 2 still finds the one card).
#[derive(Debug)]
struct Target {
    kind: TargetKind,
    generation: u64,
    /// ISO/IEC 14443-4 active (after RATS for type A, ATTRIB for type B).
    iso_dep: bool,
    /// False after InDeselect (S(DESELECT) sent, card halted).
    selected: bool,
    /// The card's current ISO-DEP block number (1 after activation, §7.5.4.2 rule B).
    picc_block: u8,
    /// APDU parts received with MI (host to chip chaining).
    chain_in: Vec<u8>,
    /// Answer bytes not sent yet (chip to host chaining).
    out_rest: Vec<u8>,
    /// I-blocks with the chaining bit received raw (InCommunicateThru).
    raw_chain: Vec<u8>,
    /// The last block the card sent, for R-block retransmission.
    last_block: Option<Vec<u8>>,
}

/// A command waiting for a card (the chip is polling).
#[derive(Debug)]
enum Pending {
    ListPassive {
        kind: TargetKind,
        uid: Option<Vec<u8>>,
    },
    AutoPoll {
        types: Vec<u8>,
        deadline: Option<Instant>,
    },
}

/// Answer to one command.
enum Exec {
    Answer(Vec<u8>),
    SyntaxError,
    Wait(Pending),
}

/// The emulated PN532.
#[derive(Debug)]
pub struct Chip {
    options: Pn532Options,
    parser: FrameParser,
    registers: Vec<u8>,
    parameters: u8,
    field_on: bool,
    /// Power-down or low-VBat: the next byte received wakes the chip and is lost.
    asleep: bool,
    max_retries_passive: u8,
    target: Option<Target>,
    pending: Option<(u8, Pending)>,
    last_answer: Option<Vec<u8>>,
    last_status: u8,
    last_byte_at: Option<Instant>,
    frames_rejected: u64,
    noise: u32,
}

impl Chip {
    pub fn new(options: Pn532Options) -> Self {
        let mut chip = Chip {
            options,
            parser: FrameParser::new(),
            registers: vec![0u8; 0x1_0000],
            parameters: 0,
            field_on: false,
            // The PN532 C106 starts in low-VBat mode (AN10609 §C106 appendix).
            asleep: true,
            max_retries_passive: 0xFF,
            target: None,
            pending: None,
            last_answer: None,
            last_status: 0,
            last_byte_at: None,
            frames_rejected: 0,
            noise: 0x2F6B_1D35,
        };
        // What the firmware sets up for 106 kbps type A: CRC on both ways.
        chip.set_register(REG_TX_MODE, CRC_ENABLE);
        chip.set_register(REG_RX_MODE, CRC_ENABLE);
        chip
    }

    /// Host frames the chip did not acknowledge (bad checksums, wrong TFI, wrong length,
    /// abandoned half-way).
    pub fn frames_rejected(&self) -> u64 {
        self.frames_rejected
    }

    /// Whether the chip has something to do without new bytes (a poll, a partial frame).
    pub fn busy(&self) -> bool {
        self.pending.is_some() || self.parser.pending() > 1
    }

    /// The host closed the serial line: a partial frame is dropped, the rest of the chip's
    /// state is kept (the chip stays powered).
    pub fn host_gone(&mut self) {
        self.parser.clear();
        self.pending = None;
    }

    /// Bytes from the host; returns the bytes the chip sends back.
    pub(crate) fn receive(
        &mut self,
        bytes: &[u8],
        field: &mut Field,
        fault: Option<Pn532Fault>,
        now: Instant,
    ) -> Vec<u8> {
        let mut bytes = bytes;
        if bytes.is_empty() {
            return Vec::new();
        }
        self.drop_stale_partial(now);
        self.last_byte_at = Some(now);
        if self.asleep {
            // HSU wake-up: the first byte only wakes the chip up.
            self.asleep = false;
            bytes = bytes.get(1..).unwrap_or_default();
        }
        self.parser.push(bytes);
        let mut out = Vec::new();
        while let Some(parsed) = self.parser.next_frame() {
            match parsed {
                Err(e) => {
                    self.frames_rejected += 1;
                    tracing::debug!(error = %e, "PN532: host frame rejected");
                }
                Ok(HostFrame::Ack) => {
                    if self.pending.take().is_some() {
                        tracing::debug!("PN532: command aborted by the host");
                    }
                }
                Ok(HostFrame::Nack) => {
                    if let Some(last) = &self.last_answer {
                        out.extend_from_slice(last);
                    }
                }
                Ok(HostFrame::Command(data)) => {
                    // A new command ends a poll still waiting.
                    self.pending = None;
                    self.command(&data, field, fault, now, &mut out);
                }
            }
        }
        out
    }

    /// Time passes: a waiting poll may find a card or give up; a frame the host abandoned
    /// half-way is dropped.
    pub(crate) fn tick(
        &mut self,
        field: &mut Field,
        fault: Option<Pn532Fault>,
        now: Instant,
    ) -> Vec<u8> {
        self.drop_stale_partial(now);
        let Some((code, pending)) = self.pending.take() else {
            return Vec::new();
        };
        let answer = match pending {
            Pending::ListPassive { kind, uid } => {
                match self.activate(field, kind, uid.as_deref(), None) {
                    Some(data) => Some(data),
                    None => {
                        self.pending = Some((code, Pending::ListPassive { kind, uid }));
                        None
                    }
                }
            }
            Pending::AutoPoll { types, deadline } => match self.auto_poll_find(field, &types) {
                Some(data) => Some(data),
                None if deadline.is_some_and(|d| now >= d) => Some(vec![0x00]),
                None => {
                    self.pending = Some((code, Pending::AutoPoll { types, deadline }));
                    None
                }
            },
        };
        let mut out = Vec::new();
        if let Some(data) = answer {
            self.send_answer(code, &data, fault, &mut out);
        }
        out
    }

    /// Drops a frame whose sender stopped half-way more than [`PARTIAL_FRAME_TIMEOUT`] ago.
    fn drop_stale_partial(&mut self, now: Instant) {
        if self.parser.pending() > 1
            && self
                .last_byte_at
                .is_some_and(|at| now.duration_since(at) > PARTIAL_FRAME_TIMEOUT)
        {
            self.parser.clear();
            self.frames_rejected += 1;
            tracing::debug!("PN532: truncated host frame dropped");
        }
    }

    fn command(
        &mut self,
        data: &[u8],
        field: &mut Field,
        fault: Option<Pn532Fault>,
        now: Instant,
        out: &mut Vec<u8>,
    ) {
        let Some((&code, params)) = data.split_first() else {
            return;
        };
        match fault {
            Some(Pn532Fault::Silent) => return,
            Some(Pn532Fault::Garbage) => {
                let noise = self.noise(11);
                out.extend_from_slice(&noise);
                return;
            }
            _ => {}
        }
        out.extend_from_slice(&ACK);
        if fault == Some(Pn532Fault::ErrorFrame) {
            out.extend_from_slice(&ERROR_FRAME);
            return;
        }
        match self.execute(code, params, field, now) {
            Exec::Answer(answer) => self.send_answer(code, &answer, fault, out),
            Exec::SyntaxError => {
                tracing::debug!(code, "PN532: command not understood, error frame");
                self.last_answer = Some(ERROR_FRAME.to_vec());
                out.extend_from_slice(&ERROR_FRAME);
            }
            Exec::Wait(pending) => self.pending = Some((code, pending)),
        }
    }

    fn send_answer(&mut self, code: u8, data: &[u8], fault: Option<Pn532Fault>, out: &mut Vec<u8>) {
        let Some(mut answer) = frame::answer(code, data) else {
            out.extend_from_slice(&ERROR_FRAME);
            return;
        };
        if fault == Some(Pn532Fault::BadChecksum) {
            let dcs = answer.len().saturating_sub(2);
            if let Some(byte) = answer.get_mut(dcs) {
                *byte ^= 0x5A;
            }
        }
        self.last_answer = Some(answer.clone());
        out.extend_from_slice(&answer);
    }

    /// Pseudo-random bytes that never begin a valid frame.
    fn noise(&mut self, n: usize) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(n);
        for _ in 0..n {
            self.noise ^= self.noise << 13;
            self.noise ^= self.noise >> 17;
            self.noise ^= self.noise << 5;
            bytes.push(self.noise.to_le_bytes()[0]);
        }
        if let Some(first) = bytes.first_mut() {
            *first = 0xA5;
        }
        bytes
    }

    fn execute(&mut self, code: u8, p: &[u8], field: &mut Field, now: Instant) -> Exec {
        match code {
            DIAGNOSE => self.diagnose(p, field),
            GET_FIRMWARE_VERSION => Exec::Answer(self.options.firmware.to_vec()),
            GET_GENERAL_STATUS => Exec::Answer(self.general_status()),
            READ_REGISTER => {
                if p.is_empty() || !p.len().is_multiple_of(2) {
                    return Exec::SyntaxError;
                }
                let values = p
                    .chunks_exact(2)
                    .map(|a| match a {
                        [hi, lo] => self.register(u16::from_be_bytes([*hi, *lo])),
                        _ => 0,
                    })
                    .collect();
                Exec::Answer(values)
            }
            WRITE_REGISTER => {
                if p.is_empty() || !p.len().is_multiple_of(3) {
                    return Exec::SyntaxError;
                }
                for w in p.chunks_exact(3) {
                    if let [hi, lo, value] = w {
                        self.set_register(u16::from_be_bytes([*hi, *lo]), *value);
                    }
                }
                Exec::Answer(Vec::new())
            }
            SET_PARAMETERS => match p {
                [flags] => {
                    self.parameters = *flags;
                    Exec::Answer(Vec::new())
                }
                _ => Exec::SyntaxError,
            },
            SAM_CONFIGURATION => match p {
                [mode, ..] if (1..=4).contains(mode) && p.len() <= 3 => Exec::Answer(Vec::new()),
                _ => Exec::SyntaxError,
            },
            POWER_DOWN => match p {
                [_wake_up] | [_wake_up, _] => {
                    // Answered, then asleep until the host wakes it.
                    self.asleep = true;
                    Exec::Answer(vec![STATUS_OK])
                }
                _ => Exec::SyntaxError,
            },
            RF_CONFIGURATION => self.rf_configuration(p, field),
            IN_DATA_EXCHANGE => self.in_data_exchange(p, field),
            IN_COMMUNICATE_THRU => self.in_communicate_thru(p, field),
            IN_DESELECT => self.in_deselect(p, field),
            IN_RELEASE => self.in_release(p, field),
            IN_SELECT => self.in_select(p, field),
            IN_LIST_PASSIVE_TARGET => self.in_list_passive_target(p, field),
            IN_AUTO_POLL => self.in_auto_poll(p, field, now),
            // No NFCIP-1 (DEP) target is ever in the field.
            IN_JUMP_FOR_DEP | IN_JUMP_FOR_PSL => {
                if p.len() < 3 {
                    Exec::SyntaxError
                } else {
                    self.status(STATUS_TIMEOUT)
                }
            }
            IN_PSL => match p {
                [_tg, _br_it, _br_ti] => self.status(STATUS_OK),
                _ => Exec::SyntaxError,
            },
            // Target (card emulation) mode, GPIO, SAM and the rest are not emulated: the chip
            // answers as if it did not know them.
            _ => Exec::SyntaxError,
        }
    }

    fn status(&mut self, status: u8) -> Exec {
        self.last_status = status;
        Exec::Answer(vec![status])
    }

    fn status_with(&mut self, status: u8, data: &[u8]) -> Exec {
        self.last_status = status & 0x3F;
        let mut answer = Vec::with_capacity(data.len() + 1);
        answer.push(status);
        answer.extend_from_slice(data);
        Exec::Answer(answer)
    }

    fn register(&self, address: u16) -> u8 {
        self.registers
            .get(usize::from(address))
            .copied()
            .unwrap_or(0)
    }

    fn set_register(&mut self, address: u16, value: u8) {
        if let Some(r) = self.registers.get_mut(usize::from(address)) {
            *r = value;
        }
    }

    fn diagnose(&mut self, p: &[u8], field: &mut Field) -> Exec {
        match p.first() {
            // Communication test: the parameters come back.
            Some(0x00) => Exec::Answer(p.to_vec()),
            // ROM and RAM self tests, antenna test: passed.
            Some(0x01 | 0x02) if p.len() == 1 => Exec::Answer(vec![STATUS_OK]),
            Some(0x07) if p.len() == 2 => Exec::Answer(vec![STATUS_OK]),
            // Attention request / card presence (ISO-DEP and DEP targets).
            Some(0x06) if p.len() == 1 => {
                if self.target_present(field) {
                    self.status(STATUS_OK)
                } else {
                    self.status(STATUS_TIMEOUT)
                }
            }
            _ => Exec::SyntaxError,
        }
    }

    fn general_status(&self) -> Vec<u8> {
        let mut status = vec![self.last_status, u8::from(self.field_on)];
        match &self.target {
            Some(target) => {
                let kind = match target.kind {
                    TargetKind::TypeA => 0x00,
                    TargetKind::TypeB => 0x03,
                };
                status.extend_from_slice(&[1, 1, 0x00, 0x00, kind]);
            }
            None => status.push(0),
        }
        // SAM status.
        status.push(0x00);
        status
    }

    fn rf_configuration(&mut self, p: &[u8], field: &mut Field) -> Exec {
        let Some((&item, values)) = p.split_first() else {
            return Exec::SyntaxError;
        };
        let expected = match item {
            0x01 | 0x04 => 1,
            0x02 | 0x05 | 0x0C => 3,
            0x0A => 11,
            0x0B => 8,
            0x0D => 9,
            _ => return Exec::SyntaxError,
        };
        if values.len() != expected {
            return Exec::SyntaxError;
        }
        match (item, values) {
            (0x01, [flags]) => {
                let on = flags & 0x01 != 0;
                if !on {
                    self.field_off(field);
                }
                self.field_on = on;
            }
            (0x05, [_atr, _psl, passive]) => self.max_retries_passive = *passive,
            _ => {}
        }
        Exec::Answer(Vec::new())
    }

    /// The field goes off: the card loses power, targets are forgotten.
    fn field_off(&mut self, field: &mut Field) {
        self.target = None;
        self.field_on = false;
        if field.powered {
            if let Some(card) = field.card.as_mut() {
                card.power_off();
            }
            field.powered = false;
        }
    }

    fn target_present(&self, field: &Field) -> bool {
        self.target
            .as_ref()
            .is_some_and(|t| t.generation == field.generation && field.card.is_some())
    }

    /// Target number in a command (bits 0..5; bit 6 is MI).
    fn target_matches(&self, tg: u8) -> bool {
        self.target.is_some() && (tg & 0x3F) == 1
    }

    fn in_list_passive_target(&mut self, p: &[u8], field: &mut Field) -> Exec {
        let [max_tg, br_ty, initiator @ ..] = p else {
            return Exec::SyntaxError;
        };
        if !(1..=2).contains(max_tg) {
            return Exec::SyntaxError;
        }
        let kind = match br_ty {
            0x00 => {
                if !matches!(initiator.len(), 0 | 4 | 8 | 12) {
                    return Exec::SyntaxError;
                }
                Some(TargetKind::TypeA)
            }
            0x01 | 0x02 => {
                if initiator.len() != 5 {
                    return Exec::SyntaxError;
                }
                None
            }
            0x03 => {
                if !matches!(initiator.len(), 1 | 2) {
                    return Exec::SyntaxError;
                }
                Some(TargetKind::TypeB)
            }
            0x04 => None,
            _ => return Exec::SyntaxError,
        };
        // The chip switches the field on and the CIU to the modulation asked for.
        self.field_on = true;
        self.target = None;
        let framing = match br_ty {
            0x00 | 0x04 => FRAMING_A_106,
            0x01 | 0x02 => FRAMING_FELICA,
            _ => FRAMING_B_106,
        };
        for reg in [REG_TX_MODE, REG_RX_MODE] {
            let value = (self.register(reg) & !FRAMING_MASK) | framing | CRC_ENABLE;
            self.set_register(reg, value);
        }
        let Some(kind) = kind else {
            // No FeliCa or Jewel card is ever in the field.
            return self.status(0x00);
        };
        let uid = match (kind, initiator) {
            (TargetKind::TypeA, [_, ..]) => Some(uncascade(initiator)),
            // AFI 0 wakes every card; any other one is not ours.
            (TargetKind::TypeB, [afi, ..]) if *afi != 0 => {
                return Exec::Answer(vec![0x00]);
            }
            _ => None,
        };
        match self.activate(field, kind, uid.as_deref(), None) {
            Some(data) => Exec::Answer(data),
            None if self.max_retries_passive == 0xFF => {
                Exec::Wait(Pending::ListPassive { kind, uid })
            }
            None => Exec::Answer(vec![0x00]),
        }
    }

    fn in_auto_poll(&mut self, p: &[u8], field: &mut Field, now: Instant) -> Exec {
        let [poll_nr, period, types @ ..] = p else {
            return Exec::SyntaxError;
        };
        if *poll_nr == 0 || !(1..=15).contains(period) || !(1..=15).contains(&types.len()) {
            return Exec::SyntaxError;
        }
        self.field_on = true;
        self.target = None;
        if let Some(data) = self.auto_poll_find(field, types) {
            return Exec::Answer(data);
        }
        let deadline = (*poll_nr != 0xFF).then(|| {
            let periods = u32::from(*poll_nr) * u32::from(*period) * types.len() as u32;
            now + POLL_PERIOD_UNIT * periods
        });
        Exec::Wait(Pending::AutoPoll {
            types: types.to_vec(),
            deadline,
        })
    }

    /// InAutoPoll's answer when the card in the field is of one of `types`.
    fn auto_poll_find(&mut self, field: &mut Field, types: &[u8]) -> Option<Vec<u8>> {
        let kind = self.options.kind;
        let found = types.iter().copied().find(|t| match kind {
            TargetKind::TypeA => matches!(t, 0x00 | 0x10 | 0x20),
            TargetKind::TypeB => matches!(t, 0x03 | 0x23),
        })?;
        let rats = match found {
            0x20 => Some(true),
            0x00 | 0x10 => Some(false),
            _ => None,
        };
        let data = self.activate(field, kind, None, rats)?;
        // NbTg, then Type, length of the target data, target data (with its Tg).
        let target_data = data.get(1..)?;
        let mut answer = vec![0x01, if found == 0x00 { 0x10 } else { found }];
        answer.push(u8::try_from(target_data.len()).ok()?);
        answer.extend_from_slice(target_data);
        Some(answer)
    }

    /// Activates the card in the field if it is of `kind` (and has `uid`, when given): returns
    /// InListPassiveTarget's data (NbTg = 1, then the target data).
    fn activate(
        &mut self,
        field: &mut Field,
        kind: TargetKind,
        uid: Option<&[u8]>,
        rats: Option<bool>,
    ) -> Option<Vec<u8>> {
        if self.options.kind != kind || !self.field_on {
            return None;
        }
        let our_uid = self.options.uid();
        if kind == TargetKind::TypeA && uid.is_some_and(|u| u != our_uid.as_slice()) {
            return None;
        }
        let card = field.card.as_mut()?;
        // A fresh activation: the card starts over (volatile state cleared), as after a
        // power-up or a deselection.
        card.reset();
        field.powered = true;
        let ats = self.options.ats(card.atr());
        let rats = rats.unwrap_or(self.parameters & PARAM_AUTO_RATS != 0);
        let mut data = vec![0x01, 0x01];
        match kind {
            TargetKind::TypeA => {
                let atqa = if our_uid.len() == 4 { 0x04 } else { 0x44 };
                data.extend_from_slice(&[0x00, atqa, 0x20]);
                data.push(u8::try_from(our_uid.len()).ok()?);
                data.extend_from_slice(&our_uid);
                if rats {
                    data.extend_from_slice(&ats);
                }
            }
            TargetKind::TypeB => {
                data.push(0x50);
                data.extend_from_slice(&self.options.pupi);
                // Application data, then protocol info: 106 kbps only, FSCI 8 (256 bytes),
                // ISO/IEC 14443-4 compliant, FWI 7, CID supported.
                data.extend_from_slice(&[0x00, 0x00, 0x00, 0x00, 0x00, 0x81, 0x71]);
                // ATTRIB answer: MBLI 0, the CID the chip gave.
                data.extend_from_slice(&[0x01, CID_B]);
            }
        }
        self.target = Some(Target {
            kind,
            generation: field.generation,
            iso_dep: rats || kind == TargetKind::TypeB,
            selected: true,
            picc_block: 1,
            chain_in: Vec::new(),
            out_rest: Vec::new(),
            raw_chain: Vec::new(),
            last_block: None,
        });
        self.last_status = 0;
        Some(data)
    }

    fn in_data_exchange(&mut self, p: &[u8], field: &mut Field) -> Exec {
        let Some((&tg, data)) = p.split_first() else {
            return Exec::SyntaxError;
        };
        if !self.target_matches(tg) || !self.field_on {
            return self.status(STATUS_WRONG_CONTEXT);
        }
        let present = self.target_present(field);
        let Some(target) = self.target.as_mut() else {
            return self.status(STATUS_WRONG_CONTEXT);
        };
        if !present {
            target.chain_in.clear();
            target.out_rest.clear();
            return self.status(STATUS_TIMEOUT);
        }
        // The rest of a long answer.
        if data.is_empty() && !target.out_rest.is_empty() {
            let rest = std::mem::take(&mut target.out_rest);
            return self.send_chunk(rest);
        }
        target.out_rest.clear();
        if !target.selected {
            // A deselected target is activated again before the exchange.
            if let Some(card) = field.card.as_mut() {
                card.reset();
            }
            target.selected = true;
            target.picc_block = 1;
        }
        if !target.iso_dep {
            // ISO/IEC 14443-3 only: the card understands RATS and nothing else.
            if data.first() == Some(&0xE0) {
                target.iso_dep = true;
                let ats = field
                    .card
                    .as_ref()
                    .map(|c| self.options.ats(c.atr()))
                    .unwrap_or_default();
                return self.status_with(STATUS_OK, &ats);
            }
            return self.status(STATUS_TIMEOUT);
        }
        target.chain_in.extend_from_slice(data);
        target.picc_block ^= 1;
        if tg & 0x40 != 0 {
            // More to come: the card acknowledged this part.
            return self.status(STATUS_OK);
        }
        let apdu = std::mem::take(&mut target.chain_in);
        let block = target.picc_block;
        let Some(response) = run_apdu(field, &apdu) else {
            return self.status(STATUS_TIMEOUT);
        };
        if let Some(target) = self.target.as_mut() {
            let mut last = vec![0x02 | block];
            last.extend_from_slice(&response);
            target.last_block = Some(last);
        }
        self.send_chunk(response)
    }

    /// One InDataExchange answer: status (MI when more follows) and up to
    /// [`MAX_EXCHANGE_OUT`] bytes.
    fn send_chunk(&mut self, mut data: Vec<u8>) -> Exec {
        if data.len() > MAX_EXCHANGE_OUT {
            let rest = data.split_off(MAX_EXCHANGE_OUT);
            if let Some(target) = self.target.as_mut() {
                target.out_rest = rest;
            }
            return self.status_with(STATUS_MI, &data);
        }
        self.status_with(STATUS_OK, &data)
    }

    fn in_communicate_thru(&mut self, p: &[u8], field: &mut Field) -> Exec {
        let tx_mode = self.register(REG_TX_MODE);
        let usable = self.field_on
            && !p.is_empty()
            && tx_mode & CRC_ENABLE != 0
            && self.register(REG_MANUAL_RCV) & PARITY_DISABLE == 0
            && self.target_present(field);
        if !usable {
            return self.status(STATUS_TIMEOUT);
        }
        let Some(target) = self.target.as_mut() else {
            return self.status(STATUS_TIMEOUT);
        };
        let framing = match target.kind {
            TargetKind::TypeA => FRAMING_A_106,
            TargetKind::TypeB => FRAMING_B_106,
        };
        if tx_mode & FRAMING_MASK != framing || !target.selected {
            return self.status(STATUS_TIMEOUT);
        }
        if !target.iso_dep {
            if p.first() == Some(&0xE0) && target.kind == TargetKind::TypeA {
                target.iso_dep = true;
                let ats = field
                    .card
                    .as_ref()
                    .map(|c| self.options.ats(c.atr()))
                    .unwrap_or_default();
                return self.status_with(STATUS_OK, &ats);
            }
            return self.status(STATUS_TIMEOUT);
        }
        match picc_block(target, field, p) {
            // The chip does not chain raw frames: more than its buffer is an overflow.
            Some(answer) if answer.len() > MAX_EXCHANGE_OUT => self.status(STATUS_BUFFER_OVERFLOW),
            Some(answer) => self.status_with(STATUS_OK, &answer),
            None => self.status(STATUS_TIMEOUT),
        }
    }

    fn in_deselect(&mut self, p: &[u8], field: &mut Field) -> Exec {
        let [tg] = p else {
            return Exec::SyntaxError;
        };
        if self.target.is_none() || (*tg != 0 && !self.target_matches(*tg)) {
            return if *tg == 0 {
                self.status(STATUS_OK)
            } else {
                self.status(STATUS_WRONG_CONTEXT)
            };
        }
        let present = self.target_present(field);
        if let Some(target) = self.target.as_mut() {
            target.selected = false;
        }
        if present {
            self.status(STATUS_OK)
        } else {
            self.status(STATUS_TIMEOUT)
        }
    }

    fn in_release(&mut self, p: &[u8], _field: &mut Field) -> Exec {
        let [tg] = p else {
            return Exec::SyntaxError;
        };
        if *tg != 0 && !self.target_matches(*tg) {
            return self.status(STATUS_WRONG_CONTEXT);
        }
        self.target = None;
        self.status(STATUS_OK)
    }

    fn in_select(&mut self, p: &[u8], field: &mut Field) -> Exec {
        let [tg] = p else {
            return Exec::SyntaxError;
        };
        if !self.target_matches(*tg) {
            return self.status(STATUS_WRONG_CONTEXT);
        }
        if !self.target_present(field) {
            return self.status(STATUS_TIMEOUT);
        }
        if let Some(target) = self.target.as_mut()
            && !target.selected
        {
            if let Some(card) = field.card.as_mut() {
                card.reset();
            }
            target.selected = true;
            target.picc_block = 1;
        }
        self.status(STATUS_OK)
    }
}

/// Gives `apdu` to the card, unless the card is to leave the field now. `None`: no answer.
fn run_apdu(field: &mut Field, apdu: &[u8]) -> Option<Vec<u8>> {
    match field.remove_after {
        Some(0) => {
            tracing::debug!("PN532: card pulled out of the field before answering");
            field.remove();
            return None;
        }
        Some(n) => field.remove_after = Some(n - 1),
        None => {}
    }
    let card = field.card.as_mut()?;
    Some(card.process(apdu))
}

/// The card's answer to one raw ISO-DEP block (ISO/IEC 14443-4 §7.1 and §7.5.4); `None` when
/// the card stays silent.
fn picc_block(target: &mut Target, field: &mut Field, block: &[u8]) -> Option<Vec<u8>> {
    let (&pcb, mut rest) = block.split_first()?;
    let our_cid = match target.kind {
        TargetKind::TypeA => 0,
        TargetKind::TypeB => CID_B,
    };
    let with_cid = pcb & 0x08 != 0;
    if with_cid {
        let (&cid, after) = rest.split_first()?;
        if cid & 0x0F != our_cid {
            return None;
        }
        rest = after;
    } else if our_cid != 0 {
        return None;
    }
    let cid_suffix = |pcb: u8| -> Vec<u8> {
        if with_cid {
            vec![pcb | 0x08, our_cid]
        } else {
            vec![pcb]
        }
    };
    if pcb & 0xE2 == 0x02 {
        // I-block.
        if pcb & 0x04 != 0 {
            rest = rest.get(1..)?;
        }
        target.picc_block ^= 1;
        if pcb & 0x10 != 0 {
            target.raw_chain.extend_from_slice(rest);
            return Some(cid_suffix(0xA2 | target.picc_block));
        }
        let mut apdu = std::mem::take(&mut target.raw_chain);
        apdu.extend_from_slice(rest);
        let response = run_apdu(field, &apdu)?;
        let mut answer = cid_suffix(0x02 | target.picc_block);
        answer.extend_from_slice(&response);
        target.last_block = Some(answer.clone());
        return Some(answer);
    }
    if pcb & 0xE6 == 0xA2 {
        // R-block: same block number, the last block again (rule 11); R(NAK) otherwise gets
        // R(ACK) (rule 12).
        if pcb & 0x01 == target.picc_block
            && let Some(last) = &target.last_block
        {
            return Some(last.clone());
        }
        return Some(cid_suffix(0xA2 | target.picc_block));
    }
    if pcb & 0xF7 == 0xC2 {
        // S(DESELECT).
        target.selected = false;
        return Some(cid_suffix(0xC2));
    }
    None
}

/// The UID in a cascaded form (CT 88 before each level but the last) to its plain bytes.
fn uncascade(initiator: &[u8]) -> Vec<u8> {
    match initiator.len() {
        8 => initiator.get(1..).unwrap_or_default().to_vec(),
        12 => initiator
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != 0 && *i != 4)
            .map(|(_, b)| *b)
            .collect(),
        _ => initiator.to_vec(),
    }
}

/// The chip and its field without a pseudo-terminal: bytes in, bytes out. For fuzzing and
/// property tests of the whole command path.
#[derive(Debug)]
pub struct Simulator {
    chip: Chip,
    field: Field,
}

impl Simulator {
    pub fn new(card: Option<VirtualCard>, options: Pn532Options) -> Self {
        let mut field = Field::default();
        if let Some(card) = card {
            field.insert(card);
        }
        Simulator {
            chip: Chip::new(options),
            field,
        }
    }

    /// The host's bytes in; what the chip sends back.
    pub fn feed(&mut self, bytes: &[u8], fault: Option<Pn532Fault>) -> Vec<u8> {
        self.chip
            .receive(bytes, &mut self.field, fault, Instant::now())
    }

    /// Lets `elapsed` pass (a waiting poll, a half-sent frame); what the chip sends meanwhile.
    pub fn advance(&mut self, elapsed: Duration) -> Vec<u8> {
        let now = Instant::now() + elapsed;
        self.chip.tick(&mut self.field, None, now)
    }

    /// Puts `card` in the field.
    pub fn insert_card(&mut self, card: VirtualCard) {
        self.field.insert(card);
    }

    /// Takes the card out of the field.
    pub fn remove_card(&mut self) {
        self.field.remove();
    }

    pub fn frames_rejected(&self) -> u64 {
        self.chip.frames_rejected()
    }
}
