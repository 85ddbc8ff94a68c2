//! The identity a binding is made for, taken only from what was verified: the Citizen Card's
//! authentication certificate after [`eid_protocols::webeid::TokenValidator`] accepted the
//! token, or DG1 after [`eid_protocols::webeid::EmrtdValidator`] checked it against the SOD.
//! Nothing here reads a field the page sent.

use eid_protocols::pa::HashAlgorithm;
use eid_protocols::webeid::{ValidatedDocument, ValidatedToken};
use serde::{Deserialize, Serialize};

/// What the pages show of a verified identity (`IdentityView` of the API contract).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IdentityView {
    /// `citizen-card` or `passport`.
    pub kind: String,
    pub name: String,
    pub given_name: String,
    pub surname: String,
    /// The civil identification number (Citizen Card) or the document number (passport).
    pub document_number: String,
    /// `PT`, or the passport's issuing state.
    pub country: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nationality: Option<String>,
    /// Passport only: as the validation library gives it from DG1 (YYYY-MM-DD).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date_of_birth: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expired: Option<bool>,
}

/// A verified identity, kept in the session until the mobile key is confirmed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifiedIdentity {
    /// `pt-cc:PNOPT-12345678` or `passport:UTO:IDP000017`.
    pub identity_key: String,
    pub view: IdentityView,
    /// SHA-256 (hex) of the evidence: the certificate DER, or the EF.SOD.
    pub evidence_sha256: String,
}

/// Why a verified certificate cannot identify anyone here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdentityIncomplete;

/// `PNOPT-12345678` -> `12345678` (ETSI EN 319 412-1 semantics identifier: type, country,
/// hyphen, number); other forms are kept whole.
fn civil_number(serial: &str) -> String {
    let bytes = serial.as_bytes();
    let semantic = bytes.len() > 6
        && bytes.get(5) == Some(&b'-')
        && serial
            .get(..3)
            .is_some_and(|t| t.bytes().all(|b| b.is_ascii_uppercase()));
    match serial.get(6..) {
        Some(rest) if semantic => rest.to_owned(),
        _ => serial.to_owned(),
    }
}

/// The identity of a validated Citizen Card token. The serialNumber (`PNOPT-...`) is the key:
/// it is what stays the same when the card is renewed.
pub fn from_token(token: &ValidatedToken) -> Result<VerifiedIdentity, IdentityIncomplete> {
    let s = &token.subject;
    let serial = s
        .serial_number
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .ok_or(IdentityIncomplete)?;
    let given_name = s.given_name.clone().unwrap_or_default();
    let surname = s.surname.clone().unwrap_or_default();
    let name = s
        .common_name
        .clone()
        .filter(|n| !n.trim().is_empty())
        .unwrap_or_else(|| format!("{given_name} {surname}").trim().to_owned());
    Ok(VerifiedIdentity {
        identity_key: format!("pt-cc:{serial}"),
        view: IdentityView {
            kind: "citizen-card".to_owned(),
            name,
            given_name,
            surname,
            document_number: civil_number(serial),
            country: s.country.clone().unwrap_or_else(|| "PT".to_owned()),
            nationality: None,
            date_of_birth: None,
            expired: None,
        },
        evidence_sha256: hex::encode(HashAlgorithm::Sha256.digest(&token.certificate)),
    })
}

/// MRZ names use `<` as filler: `JOAO<PEDRO` -> `JOAO PEDRO`.
fn mrz_name(text: &str) -> String {
    text.split('<')
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The identity of a validated eMRTD (the verified DG1 only). `sod` is EF.SOD as sent (it was
/// verified with the data groups), whose hash is the evidence kept with the binding.
pub fn from_document(
    document: &ValidatedDocument,
    sod: &[u8],
) -> Result<VerifiedIdentity, IdentityIncomplete> {
    let d = &document.document;
    let number = d.document_number.trim_end_matches('<').trim();
    let state = d.issuing_state.trim_end_matches('<').trim();
    if number.is_empty() || state.is_empty() {
        return Err(IdentityIncomplete);
    }
    let given_name = mrz_name(&d.given_names);
    let surname = mrz_name(&d.surname);
    Ok(VerifiedIdentity {
        identity_key: format!("passport:{state}:{number}"),
        view: IdentityView {
            kind: "passport".to_owned(),
            name: format!("{given_name} {surname}").trim().to_owned(),
            given_name,
            surname,
            document_number: number.to_owned(),
            country: state.to_owned(),
            nationality: Some(d.nationality.trim_end_matches('<').to_owned())
                .filter(|n| !n.is_empty()),
            date_of_birth: Some(d.birth_date.clone()).filter(|b| !b.is_empty()),
            expired: Some(document.expired),
        },
        evidence_sha256: hex::encode(HashAlgorithm::Sha256.digest(sod)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_numbers() {
        assert_eq!(civil_number("PNOPT-12345678"), "12345678");
        assert_eq!(civil_number("IDCPT-1"), "1");
        assert_eq!(civil_number("12345678"), "12345678");
        assert_eq!(civil_number("PNO"), "PNO");
        assert_eq!(civil_number("pnopt-1"), "pnopt-1");
    }

    #[test]
    fn mrz_names() {
        assert_eq!(mrz_name("JOAO<PEDRO<<"), "JOAO PEDRO");
        assert_eq!(mrz_name("JOAO PEDRO"), "JOAO PEDRO");
    }
}
