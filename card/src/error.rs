//! The card layer's errors: one enum, each variant saying whose fault it is, what the user can do
//! about it ([`Error::remedy`]), a stable code for the bridge and the CLI ([`Error::code`]), and
//! whether trying again may help ([`Error::is_retryable`]).

use eid_protocols::{ApduError, Status, apdu::Header};
use thiserror::Error;

/// Everything that can go wrong between the agent and a card.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    /// The PC/SC service (pcscd) is not running or cannot be reached. System's fault.
    #[error("the smart card service (pcscd) is not running")]
    PcscdNotRunning,
    /// pcscd stopped or restarted while we were using it. System's fault; retryable once it runs.
    #[error("the smart card service (pcscd) stopped during the operation")]
    PcscdStopped,
    /// No reader is connected. User's situation.
    #[error("no smart card reader is connected")]
    NoReader,
    /// The named reader does not exist (any more). User's situation.
    #[error("reader {0:?} is not connected")]
    ReaderNotFound(String),
    /// The reader was unplugged during the operation. User's action; retryable.
    #[error("the reader was disconnected")]
    ReaderRemoved,
    /// There is no card in the reader. User's situation; retryable.
    #[error("there is no card in {}", reader_label(.0))]
    NoCard(String),
    /// The card was removed during the operation. User's action; retryable after re-insertion.
    #[error("the card was removed")]
    CardRemoved,
    /// Another application reset the card: whatever state we had on it (selected file, verified
    /// PIN, secure messaging) is gone. Retryable after [`crate::Transport::reconnect`].
    #[error("the card was reset by another application")]
    CardReset,
    /// Another application holds the card exclusively. Retryable when it lets go.
    #[error("the card is in use by another application")]
    CardBusy,
    /// The card does not answer (mute, badly inserted, or not a smart card). Card's fault.
    #[error("the card does not respond")]
    CardUnresponsive,
    /// The card is not one this software knows. User's situation.
    #[error("this card is not supported (ATR {atr})")]
    UnsupportedCard { atr: String },
    /// A wait or operation was cancelled by the agent. Not an error for the user.
    #[error("the operation was cancelled")]
    Cancelled,
    /// A wait timed out. Retryable.
    #[error("timed out")]
    Timeout,
    /// The card or the reader sent bytes that are not a valid response. Card's or reader's fault.
    #[error("malformed response from the card: {0}")]
    MalformedResponse(#[from] ApduError),
    /// The card answered a status word the operation cannot go on with. What it means depends on
    /// the command; card applications turn the ones they know into their own errors.
    #[error("the card refused {command:?}: {status}")]
    Status { command: Header, status: Status },
    /// The card behaved against the protocol (for instance endless GET RESPONSE, more data than
    /// asked for). Card's fault.
    #[error("protocol violation by the card: {0}")]
    ProtocolViolation(&'static str),
    /// The command cannot be sent through this reader to this card (too long, and neither
    /// extended length nor command chaining is available). Our limitation or the card's.
    #[error("the command is too long for this card and reader ({nc} data bytes)")]
    CommandTooLong { nc: usize },
    /// A file larger than this software will read into memory. Card's fault.
    #[error("file larger than {limit} bytes")]
    FileTooLarge { limit: usize },
    /// The PIN was wrong; `retries_left` tries remain before it blocks. User's input; never
    /// retried automatically.
    #[error("wrong PIN ({retries_left} tries left)")]
    WrongPin { retries_left: u8 },
    /// The PIN (or PUK) is blocked. User's situation: unblock with the PUK.
    #[error("the PIN is blocked")]
    PinBlocked,
    /// The operation needs a PIN that has not been verified in this session. Caller's fault.
    #[error("the PIN must be verified first")]
    PinNotVerified,
    /// A PIN or PUK typed by the user does not have the card's format; nothing was sent.
    #[error("invalid PIN: {0}")]
    InvalidPinFormat(&'static str),
    /// A file read from the card does not have the expected layout. Card's fault.
    #[error("malformed {file} on the card: {reason}")]
    MalformedCardData { file: &'static str, reason: String },
    /// The card or this software does not offer the requested operation (algorithm, pinpad...).
    #[error("not supported: {0}")]
    NotSupported(&'static str),
    /// Any other PC/SC failure, with the PC/SC code for the logs. System's or bug.
    #[error("smart card service error {code:#010X}: {message}")]
    Pcsc { code: u32, message: String },
    /// Secure messaging failed (an answer's MAC did not verify, or the card rejected ours): the
    /// channel is closed. Card's fault, or someone tampering between us and the card; retryable
    /// by establishing access again.
    #[error("secure messaging failed: {0}")]
    SecureMessaging(crate::secure::SmFailure),
    /// A command was refused because the secure channel is closed (an earlier failure, or the
    /// card was reset). Retryable by establishing access again.
    #[error("the secure channel to the card is closed ({0})")]
    SecureChannelClosed(crate::secure::ClosedReason),
    /// The document refused the access key (PACE or BAC failed its authentication step). User's
    /// fault: the CAN or the MRZ data typed do not belong to this document.
    #[error("access denied: wrong CAN or MRZ")]
    AccessDenied,
    /// Establishing secure access (PACE, BAC, chip authentication) failed for a reason other
    /// than a wrong key: the chip answered against the protocol or offers nothing we support.
    /// Card's fault (or ours, for an unsupported document).
    #[error("secure access to the document failed: {0}")]
    AccessFailed(String),
    /// The reader itself misbehaved: it answered frames that are not its protocol (noise, bad
    /// checksums), or its driver failed in a way that says nothing about the card. Reader's
    /// fault (or its cable's); retryable.
    #[error("the reader failed: {0}")]
    ReaderFault(String),
    /// Another program (another eid-agent, nfc-list...) holds the reader. Retryable when it
    /// lets go.
    #[error("reader {0:?} is in use by another program")]
    ReaderInUse(String),
}

/// `the reader` when PC/SC did not say which, `reader "NAME"` otherwise.
fn reader_label(reader: &str) -> String {
    if reader.is_empty() {
        "the reader".to_owned()
    } else {
        format!("reader {reader:?}")
    }
}

impl Error {
    /// A stable, machine-readable code (used by the bridge and by `--json` output).
    pub fn code(&self) -> &'static str {
        match self {
            Error::PcscdNotRunning => "pcscd-not-running",
            Error::PcscdStopped => "pcscd-stopped",
            Error::NoReader => "no-reader",
            Error::ReaderNotFound(_) => "reader-not-found",
            Error::ReaderRemoved => "reader-removed",
            Error::NoCard(_) => "no-card",
            Error::CardRemoved => "card-removed",
            Error::CardReset => "card-reset",
            Error::CardBusy => "card-busy",
            Error::CardUnresponsive => "card-unresponsive",
            Error::UnsupportedCard { .. } => "unsupported-card",
            Error::Cancelled => "cancelled",
            Error::Timeout => "timeout",
            Error::MalformedResponse(_) => "malformed-response",
            Error::Status { .. } => "card-status",
            Error::ProtocolViolation(_) => "protocol-violation",
            Error::CommandTooLong { .. } => "command-too-long",
            Error::FileTooLarge { .. } => "file-too-large",
            Error::WrongPin { .. } => "wrong-pin",
            Error::PinBlocked => "pin-blocked",
            Error::PinNotVerified => "pin-not-verified",
            Error::InvalidPinFormat(_) => "invalid-pin-format",
            Error::MalformedCardData { .. } => "malformed-card-data",
            Error::NotSupported(_) => "not-supported",
            Error::Pcsc { .. } => "pcsc-error",
            Error::SecureMessaging(_) => "secure-messaging-failed",
            Error::SecureChannelClosed(_) => "secure-channel-closed",
            Error::AccessDenied => "access-denied",
            Error::AccessFailed(_) => "access-failed",
            Error::ReaderFault(_) => "reader-fault",
            Error::ReaderInUse(_) => "reader-in-use",
        }
    }

    /// What the person in front of the machine can do about it.
    pub fn remedy(&self) -> &'static str {
        match self {
            Error::PcscdNotRunning => {
                "Start the smart card service: `sudo systemctl enable --now pcscd.socket` \
                 (install it first with `sudo apt install pcscd` if it is missing)."
            }
            Error::PcscdStopped => "Wait for the smart card service to restart, then try again.",
            Error::NoReader | Error::ReaderNotFound(_) | Error::ReaderRemoved => {
                "Connect the card reader (check the cable), then try again."
            }
            Error::NoCard(_) => "Insert the card in the reader, chip first.",
            Error::CardRemoved => "Put the card back in the reader and try again.",
            Error::CardReset => {
                "Another program used the card; try again, and close other smart card programs."
            }
            Error::CardBusy => "Close the other program that is using the card, then try again.",
            Error::CardUnresponsive => {
                "Take the card out and insert it again, chip first; if it persists, the card may \
                 be damaged."
            }
            Error::UnsupportedCard { .. } => "Use a supported card (see the documentation).",
            Error::Cancelled => "Nothing to do.",
            Error::Timeout => "Try again.",
            Error::MalformedResponse(_) | Error::ProtocolViolation(_) => {
                "Take the card out and insert it again; if it persists, report the card type."
            }
            Error::Status { .. } => "Try again; if it persists, report the card type.",
            Error::CommandTooLong { .. } | Error::FileTooLarge { .. } => {
                "This card and reader combination is not supported; try another reader."
            }
            Error::Pcsc { .. } => "Restart the smart card service, or reconnect the reader.",
            Error::WrongPin { .. } => {
                "Check the PIN and try again; the PIN blocks when no tries are left."
            }
            Error::PinBlocked => "Unblock the PIN with the PUK (from the PIN letter).",
            Error::PinNotVerified => "Enter the PIN first.",
            Error::InvalidPinFormat(_) => "Type the PIN as 4 to 8 digits (a PUK has 8).",
            Error::MalformedCardData { .. } => {
                "The card's data is damaged or not of a known layout; report the card type."
            }
            Error::NotSupported(_) => "Use a supported card, reader or option.",
            Error::SecureMessaging(_) | Error::SecureChannelClosed(_) => {
                "Keep the document still on the reader and try again; if it persists, the \
                 document or the reader may be faulty."
            }
            Error::AccessDenied => {
                "Check the access number (CAN) printed on the document, or the document number, \
                 date of birth and expiry date from its machine-readable zone, and try again."
            }
            Error::AccessFailed(_) => {
                "Keep the document still on the reader and try again; if it persists, report \
                 the document type."
            }
            Error::ReaderFault(_) => {
                "Unplug the reader and plug it in again, then try again; if it persists, the \
                 reader or its cable is faulty."
            }
            Error::ReaderInUse(_) => {
                "Close the other program using the reader (another eid-agent, nfc-list...), \
                 then try again."
            }
        }
    }

    /// Whether the path to the card failed (service, reader, card gone or reset, busy, timeout)
    /// rather than the card answering: such an error says nothing about the card itself, so it
    /// must never become a verdict on it (an authentication "failed").
    pub fn is_link_failure(&self) -> bool {
        self.is_retryable()
            && !matches!(
                self,
                Error::SecureMessaging(_) | Error::SecureChannelClosed(_)
            )
    }

    /// Whether the same operation may succeed if tried again after the user or the system acted
    /// (re-insert, restart pcscd, wait). Never a reason to retry a PIN automatically.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Error::PcscdStopped
                | Error::ReaderRemoved
                | Error::NoCard(_)
                | Error::CardRemoved
                | Error::CardReset
                | Error::CardBusy
                | Error::Timeout
                | Error::SecureMessaging(_)
                | Error::SecureChannelClosed(_)
                | Error::ReaderFault(_)
                | Error::ReaderInUse(_)
        )
    }
}

/// Maps PC/SC return codes to what they mean for the user, in one place.
impl From<pcsc::Error> for Error {
    fn from(e: pcsc::Error) -> Self {
        use pcsc::Error as P;
        match e {
            P::NoService => Error::PcscdNotRunning,
            P::ServiceStopped | P::InvalidHandle => Error::PcscdStopped,
            P::NoReadersAvailable => Error::NoReader,
            P::UnknownReader | P::ReaderUnavailable => Error::ReaderRemoved,
            P::NoSmartcard => Error::NoCard(String::new()),
            P::RemovedCard => Error::CardRemoved,
            P::ResetCard => Error::CardReset,
            P::SharingViolation => Error::CardBusy,
            P::UnresponsiveCard | P::UnpoweredCard => Error::CardUnresponsive,
            P::UnsupportedCard => Error::UnsupportedCard { atr: String::new() },
            P::Cancelled => Error::Cancelled,
            P::Timeout => Error::Timeout,
            other => Error::Pcsc {
                code: other as u32,
                message: other.to_string(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_reader_only_when_known() {
        assert_eq!(
            Error::NoCard("ACS ACR39U".into()).to_string(),
            "there is no card in reader \"ACS ACR39U\""
        );
        assert_eq!(
            Error::from(pcsc::Error::NoSmartcard).to_string(),
            "there is no card in the reader"
        );
    }

    #[test]
    fn pcsc_codes_map_to_what_the_user_can_act_on() {
        assert!(matches!(
            Error::from(pcsc::Error::NoService),
            Error::PcscdNotRunning
        ));
        assert!(matches!(
            Error::from(pcsc::Error::RemovedCard),
            Error::CardRemoved
        ));
        assert!(matches!(
            Error::from(pcsc::Error::ResetCard),
            Error::CardReset
        ));
        assert!(matches!(
            Error::from(pcsc::Error::SharingViolation),
            Error::CardBusy
        ));
        assert!(matches!(
            Error::from(pcsc::Error::ReaderUnavailable),
            Error::ReaderRemoved
        ));
        let other = Error::from(pcsc::Error::InsufficientBuffer);
        assert!(
            matches!(
                other,
                Error::Pcsc {
                    code: 0x8010_0008,
                    ..
                }
            ),
            "{other:?}"
        );
        assert!(!other.is_retryable());
    }
}
