//! A bare terminal for testing the virtual chips over raw APDUs, with the terminal side of
//! `eid_protocols` and nothing of `eid_card` (no session layer, no transport): what the chip
//! tests of this crate drive BAC, PACE and secure messaging with. Product code reads documents
//! through `eid_card::emrtd`.

use eid_protocols::bac::{BacError, BacTerminal};
use eid_protocols::pace::{PaceConfig, PaceError, PaceOutcome, PacePassword, PaceTerminal};
use eid_protocols::sm::{OsRandom, SecureChannel, SmError};
use eid_protocols::{ApduError, Command, LengthForm, Response};
use thiserror::Error;

use crate::engine::VirtualCard;

/// Why a raw exchange with a virtual chip failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum TerminalError {
    #[error(transparent)]
    Apdu(#[from] ApduError),
    #[error(transparent)]
    Sm(#[from] SmError),
    #[error(transparent)]
    Bac(#[from] BacError),
    #[error(transparent)]
    Pace(#[from] PaceError),
    /// MSE:Set AT was refused with this status word.
    #[error("MSE:Set AT refused: {0:04X}")]
    MseRefused(u16),
}

/// One command in plain: extended length only when the command needs it.
pub fn send(card: &mut VirtualCard, command: &Command) -> Result<Response, ApduError> {
    let form = if command.needs_extended() {
        LengthForm::Extended
    } else {
        LengthForm::Short
    };
    Response::parse(&card.process(&command.encode(form)?))
}

/// One command under secure messaging (`form`, or the channel's choice when `None`): wrapped,
/// sent, and the answer's MAC verified and unwrapped.
pub fn send_sm(
    card: &mut VirtualCard,
    sm: &mut SecureChannel,
    command: &Command,
    form: Option<LengthForm>,
) -> Result<Response, TerminalError> {
    let wrapped = match form {
        Some(form) => sm.wrap_in(command, form)?,
        None => sm.wrap(command)?,
    };
    let answer = send(card, &wrapped)?;
    Ok(sm.unwrap(&answer)?)
}

/// BAC (GET CHALLENGE, EXTERNAL AUTHENTICATE) with this MRZ information.
pub fn bac(card: &mut VirtualCard, mrz_information: &[u8]) -> Result<SecureChannel, TerminalError> {
    let mut terminal = BacTerminal::new(mrz_information)?;
    let challenge = send(card, &terminal.get_challenge())?;
    let command = terminal.external_authenticate(&challenge, &mut OsRandom)?;
    let answer = send(card, &command)?;
    Ok(terminal.finish(&answer)?)
}

/// PACE: MSE:Set AT, then the four GENERAL AUTHENTICATE steps.
pub fn pace(
    card: &mut VirtualCard,
    config: PaceConfig,
    password: &PacePassword,
) -> Result<PaceOutcome, TerminalError> {
    let mut terminal = PaceTerminal::new(config, password)?;
    let answer = send(card, &terminal.mse_set_at())?;
    if !answer.is_success() {
        return Err(TerminalError::MseRefused(answer.status().to_u16()));
    }
    let answer = send(card, &terminal.general_authenticate_nonce())?;
    let command = terminal.process_nonce(&answer, &mut OsRandom)?;
    let answer = send(card, &command)?;
    let command = terminal.process_mapping(&answer, &mut OsRandom)?;
    let answer = send(card, &command)?;
    let command = terminal.process_key_agreement(&answer)?;
    let answer = send(card, &command)?;
    Ok(terminal.finish(&answer)?)
}
