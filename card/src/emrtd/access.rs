//! Access control to the chip: the access key the user gives (CAN or MRZ data) and Basic Access
//! Control (ICAO Doc 9303-11 §4.3). PACE is in [`super::pace`].

use eid_protocols::bac::{BacError, BacTerminal};
use eid_protocols::mrz;
use eid_protocols::sm::{OsRandom, SecureChannel};
use eid_protocols::{Response, Status};
use zeroize::Zeroizing;

use crate::session::Session;
use crate::{Error, Transport};

/// The password that opens the chip (ICAO 9303-11 §4.2, §9.7.2): the card access number printed
/// on the document, or the MRZ information (document number, date of birth, date of expiry).
///
/// No `Debug` of the secret, no `Clone`; wiped on drop.
pub enum AccessKey {
    /// CAN: the digits printed on the document (6 on ICAO documents and the Citizen Card).
    Can(Zeroizing<String>),
    /// MRZ_information: `doc number || check || birth || check || expiry || check`.
    Mrz(Zeroizing<String>),
}

impl std::fmt::Debug for AccessKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AccessKey::Can(_) => "AccessKey::Can(<secret>)",
            AccessKey::Mrz(_) => "AccessKey::Mrz(<secret>)",
        })
    }
}

/// Why an access key typed by the user is not one. User's fault.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum AccessKeyError {
    #[error("the CAN must be 1 to 12 digits")]
    BadCan,
    #[error("the MRZ access data must be \"<document number> <birth YYMMDD> <expiry YYMMDD>\"")]
    BadMrzFormat,
    #[error("invalid MRZ access data: {0}")]
    BadMrzField(String),
}

impl AccessKey {
    /// A CAN (digits only).
    pub fn can(digits: &str) -> Result<Self, AccessKeyError> {
        let digits = digits.trim();
        if digits.is_empty() || digits.len() > 12 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(AccessKeyError::BadCan);
        }
        Ok(AccessKey::Can(Zeroizing::new(digits.to_owned())))
    }

    /// MRZ access data from its three fields (ICAO 9303-11 §9.7.1, check digits computed here).
    pub fn mrz(
        document_number: &str,
        birth_yymmdd: &str,
        expiry_yymmdd: &str,
    ) -> Result<Self, AccessKeyError> {
        mrz::mrz_information(document_number, birth_yymmdd, expiry_yymmdd)
            .map(AccessKey::Mrz)
            .map_err(|e| AccessKeyError::BadMrzField(e.to_string()))
    }

    /// MRZ access data as typed on a command line: `"<doc no> <birth yymmdd> <expiry yymmdd>"`.
    pub fn parse_mrz(text: &str) -> Result<Self, AccessKeyError> {
        let parts: Vec<&str> = text.split_whitespace().collect();
        match parts.as_slice() {
            [doc, birth, expiry] => Self::mrz(doc, birth, expiry),
            _ => Err(AccessKeyError::BadMrzFormat),
        }
    }

    /// The password bytes as PACE and BAC use them (ASCII digits, or MRZ_information).
    #[cfg(test)]
    pub(crate) fn bytes(&self) -> &[u8] {
        match self {
            AccessKey::Can(s) | AccessKey::Mrz(s) => s.as_bytes(),
        }
    }

    pub fn is_can(&self) -> bool {
        matches!(self, AccessKey::Can(_))
    }
}

/// Whether a status word answering an authentication step means "wrong password": 63xx
/// (authentication failed, counter), 6982 (security status not satisfied), 6300.
pub(crate) fn is_wrong_key_status(status: Status) -> bool {
    matches!(
        status,
        Status::VerificationFailed
            | Status::RemainingRetries(_)
            | Status::WarningChanged(_)
            | Status::SecurityStatusNotSatisfied
    ) || status.to_u16() == 0x6988
}

/// Basic Access Control, ICAO 9303-11 §4.3.4.1: GET CHALLENGE, EXTERNAL AUTHENTICATE, session
/// keys. A chip refusing the cryptogram (6300, 6988, 6982) or answering one that does not
/// verify under our keys is [`Error::AccessDenied`].
pub(crate) fn run_bac(
    transport: &mut dyn Transport,
    key: &AccessKey,
) -> Result<SecureChannel, Error> {
    let AccessKey::Mrz(info) = key else {
        return Err(Error::AccessFailed(
            "the document offers only Basic Access Control, which needs the MRZ data, not the CAN"
                .into(),
        ));
    };
    let mut bac = BacTerminal::new(info.as_bytes()).map_err(bac_error)?;
    let mut session = Session::new(transport);
    let challenge = session.transmit(&bac.get_challenge())?;
    let external = bac
        .external_authenticate(&challenge, &mut OsRandom)
        .map_err(bac_error)?;
    let answer: Response = session.transmit(&external)?;
    bac.finish(&answer).map_err(bac_error)
}

fn bac_error(e: BacError) -> Error {
    match e {
        BacError::Rejected(status) if is_wrong_key_status(status) => Error::AccessDenied,
        BacError::MacMismatch | BacError::ChallengeMismatch => Error::AccessDenied,
        other => Error::AccessFailed(format!("BAC: {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_keys_from_user_input() {
        assert!(AccessKey::can("123456").unwrap().is_can());
        assert_eq!(
            AccessKey::can("12a456").unwrap_err(),
            AccessKeyError::BadCan
        );
        assert_eq!(AccessKey::can("").unwrap_err(), AccessKeyError::BadCan);
        // ICAO 9303-11 Appendix D: L898902C< 690806 940623.
        let k = AccessKey::parse_mrz("L898902C 690806 940623").unwrap();
        assert_eq!(k.bytes(), b"L898902C<369080619406236");
        assert_eq!(
            AccessKey::parse_mrz("L898902C 690806").unwrap_err(),
            AccessKeyError::BadMrzFormat
        );
        assert!(matches!(
            AccessKey::parse_mrz("L898902C 6908 940623"),
            Err(AccessKeyError::BadMrzField(_))
        ));
        assert!(!format!("{k:?}").contains("L898"));
    }
}
