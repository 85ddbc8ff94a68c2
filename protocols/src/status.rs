//! Status words (SW1-SW2), ISO/IEC 7816-4:2005 §5.1.3 and tables 5 and 6.
//!
//! [`Status`] names the interindustry values and carries the variable part of the ranges that have
//! one (`61xx`, `63Cx`, `6Cxx`). Conversion from two bytes never fails: anything not named here is
//! [`Status::Other`], and `Status::from(sw).to_u16() == sw` for every `sw`.
//!
//! What a status word *means* depends on the command that produced it (6985 after a VERIFY is not
//! the same event as 6985 after a SELECT); turning it into a domain error is the card application's
//! job, not this module's.

use std::fmt;

/// A status word, typed.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[non_exhaustive]
pub enum Status {
    /// 9000: normal processing.
    Success,
    /// 61xx: normal processing, `xx` more bytes are available with GET RESPONSE (00 = 256 or more).
    MoreAvailable(u8),
    /// 6281: part of the returned data may be corrupted.
    CorruptedData,
    /// 6282: end of file or record reached before reading Ne bytes.
    EndOfFile,
    /// 6283: selected file deactivated.
    FileDeactivated,
    /// 6284: file control information not formatted according to ISO 7816-4.
    FciNotFormatted,
    /// 62xx (other): warning, non-volatile memory unchanged.
    WarningUnchanged(u8),
    /// 6300: verification failed, no information about remaining tries.
    VerificationFailed,
    /// 63Cx: verification failed or counter value; `x` tries (or counter) remaining.
    RemainingRetries(u8),
    /// 63xx (other): warning, non-volatile memory changed.
    WarningChanged(u8),
    /// 64xx: execution error, non-volatile memory unchanged.
    ExecutionError(u8),
    /// 6581: memory failure.
    MemoryFailure,
    /// 65xx (other): execution error, non-volatile memory changed.
    ExecutionErrorChanged(u8),
    /// 6700: wrong length (Lc or Le).
    WrongLength,
    /// 6881: logical channel not supported.
    LogicalChannelNotSupported,
    /// 6882: secure messaging not supported.
    SecureMessagingNotSupported,
    /// 6883: last command of the chain expected.
    LastCommandOfChainExpected,
    /// 6884: command chaining not supported.
    ChainingNotSupported,
    /// 6981: command incompatible with file structure.
    IncompatibleFileStructure,
    /// 6982: security status not satisfied.
    SecurityStatusNotSatisfied,
    /// 6983: authentication method blocked.
    AuthenticationBlocked,
    /// 6984: reference data not usable (for instance a blocked or invalidated PIN).
    ReferenceDataNotUsable,
    /// 6985: conditions of use not satisfied.
    ConditionsNotSatisfied,
    /// 6986: command not allowed (no current EF).
    NoCurrentEf,
    /// 6987: expected secure messaging data objects missing.
    SmObjectsMissing,
    /// 6988: incorrect secure messaging data objects.
    SmObjectsIncorrect,
    /// 6A80: incorrect parameters in the command data field.
    IncorrectData,
    /// 6A81: function not supported.
    FunctionNotSupported,
    /// 6A82: file or application not found.
    FileNotFound,
    /// 6A83: record not found.
    RecordNotFound,
    /// 6A84: not enough memory space in the file.
    NotEnoughMemory,
    /// 6A86: incorrect parameters P1-P2.
    IncorrectP1P2,
    /// 6A88: referenced data or reference data not found.
    ReferenceNotFound,
    /// 6B00: wrong parameters P1-P2 (for READ BINARY: offset outside the EF).
    WrongP1P2,
    /// 6Cxx: wrong Le field; `xx` is the exact number of available bytes (00 = 256).
    WrongLe(u8),
    /// 6D00: instruction code not supported or invalid.
    InsNotSupported,
    /// 6E00: class not supported.
    ClaNotSupported,
    /// 6F00: no precise diagnosis.
    NoPreciseDiagnosis,
    /// Any other value, kept verbatim.
    Other(u16),
}

impl Status {
    /// The status word as SW1 << 8 | SW2. Inverse of `From<u16>`.
    pub const fn to_u16(self) -> u16 {
        match self {
            Status::Success => 0x9000,
            Status::MoreAvailable(n) => 0x6100 | n as u16,
            Status::CorruptedData => 0x6281,
            Status::EndOfFile => 0x6282,
            Status::FileDeactivated => 0x6283,
            Status::FciNotFormatted => 0x6284,
            Status::WarningUnchanged(x) => 0x6200 | x as u16,
            Status::VerificationFailed => 0x6300,
            Status::RemainingRetries(n) => 0x63C0 | (n & 0x0F) as u16,
            Status::WarningChanged(x) => 0x6300 | x as u16,
            Status::ExecutionError(x) => 0x6400 | x as u16,
            Status::MemoryFailure => 0x6581,
            Status::ExecutionErrorChanged(x) => 0x6500 | x as u16,
            Status::WrongLength => 0x6700,
            Status::LogicalChannelNotSupported => 0x6881,
            Status::SecureMessagingNotSupported => 0x6882,
            Status::LastCommandOfChainExpected => 0x6883,
            Status::ChainingNotSupported => 0x6884,
            Status::IncompatibleFileStructure => 0x6981,
            Status::SecurityStatusNotSatisfied => 0x6982,
            Status::AuthenticationBlocked => 0x6983,
            Status::ReferenceDataNotUsable => 0x6984,
            Status::ConditionsNotSatisfied => 0x6985,
            Status::NoCurrentEf => 0x6986,
            Status::SmObjectsMissing => 0x6987,
            Status::SmObjectsIncorrect => 0x6988,
            Status::IncorrectData => 0x6A80,
            Status::FunctionNotSupported => 0x6A81,
            Status::FileNotFound => 0x6A82,
            Status::RecordNotFound => 0x6A83,
            Status::NotEnoughMemory => 0x6A84,
            Status::IncorrectP1P2 => 0x6A86,
            Status::ReferenceNotFound => 0x6A88,
            Status::WrongP1P2 => 0x6B00,
            Status::WrongLe(n) => 0x6C00 | n as u16,
            Status::InsNotSupported => 0x6D00,
            Status::ClaNotSupported => 0x6E00,
            Status::NoPreciseDiagnosis => 0x6F00,
            Status::Other(sw) => sw,
        }
    }

    /// SW1 and SW2 as they go on the wire.
    pub const fn to_bytes(self) -> [u8; 2] {
        self.to_u16().to_be_bytes()
    }

    /// 9000, the only status meaning "done, nothing to add".
    pub const fn is_success(self) -> bool {
        matches!(self, Status::Success)
    }

    /// 62xx and 63xx: processed with a warning (the command's data, if any, is valid).
    pub const fn is_warning(self) -> bool {
        matches!(self.to_u16() >> 8, 0x62 | 0x63)
    }
}

impl From<u16> for Status {
    fn from(sw: u16) -> Self {
        let [sw1, sw2] = sw.to_be_bytes();
        match (sw1, sw2) {
            (0x90, 0x00) => Status::Success,
            (0x61, n) => Status::MoreAvailable(n),
            (0x62, 0x81) => Status::CorruptedData,
            (0x62, 0x82) => Status::EndOfFile,
            (0x62, 0x83) => Status::FileDeactivated,
            (0x62, 0x84) => Status::FciNotFormatted,
            (0x62, x) => Status::WarningUnchanged(x),
            (0x63, 0x00) => Status::VerificationFailed,
            (0x63, x) if x & 0xF0 == 0xC0 => Status::RemainingRetries(x & 0x0F),
            (0x63, x) => Status::WarningChanged(x),
            (0x64, x) => Status::ExecutionError(x),
            (0x65, 0x81) => Status::MemoryFailure,
            (0x65, x) => Status::ExecutionErrorChanged(x),
            (0x67, 0x00) => Status::WrongLength,
            (0x68, 0x81) => Status::LogicalChannelNotSupported,
            (0x68, 0x82) => Status::SecureMessagingNotSupported,
            (0x68, 0x83) => Status::LastCommandOfChainExpected,
            (0x68, 0x84) => Status::ChainingNotSupported,
            (0x69, 0x81) => Status::IncompatibleFileStructure,
            (0x69, 0x82) => Status::SecurityStatusNotSatisfied,
            (0x69, 0x83) => Status::AuthenticationBlocked,
            (0x69, 0x84) => Status::ReferenceDataNotUsable,
            (0x69, 0x85) => Status::ConditionsNotSatisfied,
            (0x69, 0x86) => Status::NoCurrentEf,
            (0x69, 0x87) => Status::SmObjectsMissing,
            (0x69, 0x88) => Status::SmObjectsIncorrect,
            (0x6A, 0x80) => Status::IncorrectData,
            (0x6A, 0x81) => Status::FunctionNotSupported,
            (0x6A, 0x82) => Status::FileNotFound,
            (0x6A, 0x83) => Status::RecordNotFound,
            (0x6A, 0x84) => Status::NotEnoughMemory,
            (0x6A, 0x86) => Status::IncorrectP1P2,
            (0x6A, 0x88) => Status::ReferenceNotFound,
            (0x6B, 0x00) => Status::WrongP1P2,
            (0x6C, n) => Status::WrongLe(n),
            (0x6D, 0x00) => Status::InsNotSupported,
            (0x6E, 0x00) => Status::ClaNotSupported,
            (0x6F, 0x00) => Status::NoPreciseDiagnosis,
            _ => Status::Other(sw),
        }
    }
}

impl From<[u8; 2]> for Status {
    fn from([sw1, sw2]: [u8; 2]) -> Self {
        Status::from(u16::from_be_bytes([sw1, sw2]))
    }
}

impl From<Status> for u16 {
    fn from(status: Status) -> u16 {
        status.to_u16()
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            Status::Success => "success",
            Status::MoreAvailable(_) => "more data available",
            Status::CorruptedData => "returned data may be corrupted",
            Status::EndOfFile => "end of file reached",
            Status::FileDeactivated => "selected file deactivated",
            Status::FciNotFormatted => "FCI not formatted",
            Status::WarningUnchanged(_) => "warning, memory unchanged",
            Status::VerificationFailed => "verification failed",
            Status::RemainingRetries(_) => "verification failed, tries remaining",
            Status::WarningChanged(_) => "warning, memory changed",
            Status::ExecutionError(_) => "execution error",
            Status::MemoryFailure => "memory failure",
            Status::ExecutionErrorChanged(_) => "execution error, memory changed",
            Status::WrongLength => "wrong length",
            Status::LogicalChannelNotSupported => "logical channel not supported",
            Status::SecureMessagingNotSupported => "secure messaging not supported",
            Status::LastCommandOfChainExpected => "last command of chain expected",
            Status::ChainingNotSupported => "command chaining not supported",
            Status::IncompatibleFileStructure => "command incompatible with file structure",
            Status::SecurityStatusNotSatisfied => "security status not satisfied",
            Status::AuthenticationBlocked => "authentication method blocked",
            Status::ReferenceDataNotUsable => "reference data not usable",
            Status::ConditionsNotSatisfied => "conditions of use not satisfied",
            Status::NoCurrentEf => "no current EF",
            Status::SmObjectsMissing => "secure messaging data objects missing",
            Status::SmObjectsIncorrect => "secure messaging data objects incorrect",
            Status::IncorrectData => "incorrect data field",
            Status::FunctionNotSupported => "function not supported",
            Status::FileNotFound => "file or application not found",
            Status::RecordNotFound => "record not found",
            Status::NotEnoughMemory => "not enough memory",
            Status::IncorrectP1P2 => "incorrect P1-P2",
            Status::ReferenceNotFound => "referenced data not found",
            Status::WrongP1P2 => "wrong P1-P2 (offset outside the file)",
            Status::WrongLe(_) => "wrong Le",
            Status::InsNotSupported => "instruction not supported",
            Status::ClaNotSupported => "class not supported",
            Status::NoPreciseDiagnosis => "no precise diagnosis",
            Status::Other(_) => "unknown status",
        };
        write!(f, "{:04X} ({text})", self.to_u16())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_word_round_trips() {
        for sw in 0..=u16::MAX {
            assert_eq!(Status::from(sw).to_u16(), sw, "{sw:04X}");
        }
    }

    #[test]
    fn ranges_carry_their_variable_part() {
        assert_eq!(Status::from(0x61_1Fu16), Status::MoreAvailable(0x1F));
        assert_eq!(Status::from(0x63_C2u16), Status::RemainingRetries(2));
        assert_eq!(Status::from(0x6C_80u16), Status::WrongLe(0x80));
        assert_eq!(Status::from([0x90, 0x00]), Status::Success);
        assert!(Status::EndOfFile.is_warning());
        assert!(!Status::WrongLe(1).is_warning());
    }

    #[test]
    fn display_shows_the_hex_value() {
        assert_eq!(
            Status::FileNotFound.to_string(),
            "6A82 (file or application not found)"
        );
    }
}
