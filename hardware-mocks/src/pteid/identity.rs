//! The citizen a virtual Citizen Card belongs to: identity, address and PINs, from a JSON file
//! (`eid-virtual-card pteid-cc1 --identity FILE`) or the embedded default
//! (`hardware-mocks/assets/citizen-default.json`).
//!
//! Dates are "DD MM YYYY" as the CC1 ID file stores them (cards.md §A3).

use eid_protocols::mrz::check_char;
use serde::Deserialize;
use zeroize::Zeroizing;

use super::PteidError;

/// The embedded default citizen.
pub const DEFAULT_IDENTITY_JSON: &str = include_str!("../../assets/citizen-default.json");

/// The citizen's identity data (the fields of the CC1 ID file, cards.md §A3, and of CC2 010D).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Identity {
    pub issuing_entity: String,
    pub country: String,
    pub document_type: String,
    pub document_number: String,
    pub pan: String,
    pub document_version: String,
    pub validity_begin_date: String,
    pub local_of_request: String,
    pub validity_end_date: String,
    pub surname: String,
    pub given_name: String,
    pub gender: String,
    pub nationality: String,
    pub date_of_birth: String,
    pub height: String,
    pub civilian_id: String,
    pub surname_mother: String,
    pub given_name_mother: String,
    pub surname_father: String,
    pub given_name_father: String,
    pub tax_no: String,
    pub social_security_no: String,
    pub health_no: String,
    #[serde(default)]
    pub accidental_indications: String,
    /// 16 hex digits: the 8 bytes GET DATA CPLC reports at offset 13 (cards.md §A7).
    pub card_serial: String,
    /// The 6-digit card access number printed on a CC2.
    pub can: String,
    pub address: Address,
    pub pins: Pins,
}

/// The national address (CC1 EF05 layout; the field widths are in `cc1::ADDRESS_FIELDS`).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Address {
    pub address_type: String,
    pub country: String,
    pub district_code: String,
    pub district: String,
    pub municipality_code: String,
    pub municipality: String,
    pub civil_parish_code: String,
    pub civil_parish: String,
    pub abbr_street_type: String,
    pub street_type: String,
    pub street_name: String,
    pub abbr_building_type: String,
    pub building_type: String,
    pub door_number: String,
    pub floor: String,
    pub side: String,
    pub place: String,
    pub locality: String,
    pub zip4: String,
    pub zip3: String,
    pub postal_locality: String,
    pub address_number: String,
}

/// PIN and PUK values (ASCII digits; PINs 4 to 8, PUKs 8).
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Pins {
    #[serde(deserialize_with = "secret")]
    pub auth: Zeroizing<String>,
    #[serde(deserialize_with = "secret")]
    pub sign: Zeroizing<String>,
    #[serde(deserialize_with = "secret")]
    pub address: Zeroizing<String>,
    #[serde(deserialize_with = "secret")]
    pub auth_puk: Zeroizing<String>,
    #[serde(deserialize_with = "secret")]
    pub sign_puk: Zeroizing<String>,
    #[serde(deserialize_with = "secret")]
    pub address_puk: Zeroizing<String>,
}

fn secret<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Zeroizing<String>, D::Error> {
    String::deserialize(d).map(Zeroizing::new)
}

/// Never shows the values.
impl std::fmt::Debug for Pins {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pins").finish_non_exhaustive()
    }
}

impl Default for Identity {
    fn default() -> Self {
        // The embedded file is checked by a unit test; an error here is a build bug.
        Identity::from_json(DEFAULT_IDENTITY_JSON).unwrap_or_else(|_| Identity::fallback())
    }
}

impl Identity {
    /// Parses and checks an identity JSON document.
    pub fn from_json(text: &str) -> Result<Identity, PteidError> {
        let identity: Identity =
            serde_json::from_str(text).map_err(|e| PteidError::Identity(e.to_string()))?;
        identity.check()?;
        Ok(identity)
    }

    /// Reads an identity JSON file.
    pub fn from_file(path: &std::path::Path) -> Result<Identity, PteidError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| PteidError::Identity(format!("{}: {e}", path.display())))?;
        Identity::from_json(&text)
    }

    fn check(&self) -> Result<(), PteidError> {
        let bad = |what: &str| Err(PteidError::Identity(what.to_owned()));
        let pin_ok = |p: &str| (4..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit());
        let puk_ok = |p: &str| p.len() == 8 && p.bytes().all(|b| b.is_ascii_digit());
        if ![&self.pins.auth, &self.pins.sign, &self.pins.address]
            .iter()
            .all(|p| pin_ok(p))
        {
            return bad("PINs must be 4 to 8 digits");
        }
        if ![
            &self.pins.auth_puk,
            &self.pins.sign_puk,
            &self.pins.address_puk,
        ]
        .iter()
        .all(|p| puk_ok(p))
        {
            return bad("PUKs must be 8 digits");
        }
        if self.serial().is_none() {
            return bad("card_serial must be 16 hex digits");
        }
        if self.can.len() != 6 || !self.can.bytes().all(|b| b.is_ascii_digit()) {
            return bad("can must be 6 digits");
        }
        for date in [
            &self.date_of_birth,
            &self.validity_begin_date,
            &self.validity_end_date,
        ] {
            if parse_date(date).is_none() {
                return bad("dates must be \"DD MM YYYY\"");
            }
        }
        Ok(())
    }

    /// The 8-byte card serial number.
    pub fn serial(&self) -> Option<[u8; 8]> {
        let digits = self.card_serial.as_bytes();
        if digits.len() != 16 {
            return None;
        }
        let mut out = [0u8; 8];
        for (slot, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
            let text = std::str::from_utf8(pair).ok()?;
            *slot = u8::from_str_radix(text, 16).ok()?;
        }
        Some(out)
    }

    /// The three 30-character lines of the TD1 machine-readable zone (ICAO 9303-5 §4.2), with
    /// check digits computed from the identity.
    pub fn mrz_lines(&self) -> [String; 3] {
        let doc: String = self
            .document_number
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .map(|c| c.to_ascii_uppercase())
            .collect();
        let (doc_field, optional) = doc.split_at(doc.len().min(9));
        let doc_field = pad(doc_field, 9);
        let line1 = format!(
            "I<{}{}{}{}",
            pad(&self.nationality, 3),
            doc_field,
            check_char(doc_field.as_bytes()),
            pad(optional, 15)
        );
        let dob = yymmdd(&self.date_of_birth);
        let exp = yymmdd(&self.validity_end_date);
        let sex = match self.gender.as_str() {
            "M" | "F" => self.gender.clone(),
            _ => "<".to_owned(),
        };
        let head = format!(
            "{dob}{}{sex}{exp}{}{}{}",
            check_char(dob.as_bytes()),
            check_char(exp.as_bytes()),
            pad(&self.nationality, 3),
            pad("", 11)
        );
        let upper_composite = format!(
            "{}{}{}{}{}{}",
            line1.get(5..30).unwrap_or_default(),
            dob,
            check_char(dob.as_bytes()),
            exp,
            check_char(exp.as_bytes()),
            pad("", 11)
        );
        let line2 = format!("{head}{}", check_char(upper_composite.as_bytes()));
        let name = format!(
            "{}<<{}",
            mrz_name(&self.surname),
            mrz_name(&self.given_name)
        );
        let line3 = pad(&name, 30);
        [line1, line2, line3.chars().take(30).collect()]
    }

    /// The whole MRZ (90 characters).
    pub fn mrz(&self) -> String {
        self.mrz_lines().concat()
    }

    /// A fixed identity used only if the embedded JSON failed to parse (it is tested not to).
    fn fallback() -> Identity {
        let s = |v: &str| v.to_owned();
        let z = |v: &str| Zeroizing::new(v.to_owned());
        Identity {
            issuing_entity: s("República Portuguesa"),
            country: s("PRT"),
            document_type: s("Cartão De Cidadão"),
            document_number: s("99000123 4 ZY5"),
            pan: s("0000099000123456"),
            document_version: s("006.007.23"),
            validity_begin_date: s("10 04 2021"),
            local_of_request: s("CRCiv. Lisboa"),
            validity_end_date: s("10 04 2031"),
            surname: s("SEQUEIRA TESTE"),
            given_name: s("MARTA INÊS"),
            gender: s("F"),
            nationality: s("PRT"),
            date_of_birth: s("03 07 1989"),
            height: s("1,68"),
            civilian_id: s("99000123"),
            surname_mother: s("SEQUEIRA"),
            given_name_mother: s("ANA MARIA"),
            surname_father: s("TESTE"),
            given_name_father: s("JOÃO PEDRO"),
            tax_no: s("299999998"),
            social_security_no: s("11999999999"),
            health_no: s("399999999"),
            accidental_indications: String::new(),
            card_serial: s("0123456789ABCDEF"),
            can: s("123456"),
            address: Address {
                address_type: s("N"),
                country: s("PT"),
                district_code: s("11"),
                district: s("Lisboa"),
                municipality_code: s("1106"),
                municipality: s("Lisboa"),
                civil_parish_code: s("110658"),
                civil_parish: s("Arroios"),
                abbr_street_type: s("R"),
                street_type: s("Rua"),
                street_name: s("das Flores de Teste"),
                abbr_building_type: String::new(),
                building_type: String::new(),
                door_number: s("12"),
                floor: s("3"),
                side: s("Esq"),
                place: String::new(),
                locality: s("Lisboa"),
                zip4: s("1000"),
                zip3: s("001"),
                postal_locality: s("LISBOA"),
                address_number: s("000012345678"),
            },
            pins: Pins {
                auth: z("1111"),
                sign: z("2222"),
                address: z("3333"),
                auth_puk: z("11111111"),
                sign_puk: z("22222222"),
                address_puk: z("33333333"),
            },
        }
    }
}

/// (day, month, year) of "DD MM YYYY".
pub fn parse_date(text: &str) -> Option<(u8, u8, u16)> {
    let mut parts = text.split(' ');
    let day = parts.next()?.parse().ok()?;
    let month = parts.next()?.parse().ok()?;
    let year = parts.next()?.parse().ok()?;
    if parts.next().is_some() || !(1..=31).contains(&day) || !(1..=12).contains(&month) {
        return None;
    }
    Some((day, month, year))
}

fn yymmdd(date: &str) -> String {
    match parse_date(date) {
        Some((d, m, y)) => format!("{:02}{m:02}{d:02}", y % 100),
        None => "<<<<<<".to_owned(),
    }
}

fn pad(text: &str, len: usize) -> String {
    let mut out: String = text.chars().take(len).collect();
    while out.chars().count() < len {
        out.push('<');
    }
    out
}

/// Name characters for the MRZ: letters A-Z (accents dropped), spaces and hyphens as '<'.
fn mrz_name(name: &str) -> String {
    name.chars()
        .map(|c| match c.to_ascii_uppercase() {
            'Á' | 'À' | 'Â' | 'Ã' | 'á' | 'à' | 'â' | 'ã' => 'A',
            'É' | 'Ê' | 'é' | 'ê' => 'E',
            'Í' | 'í' => 'I',
            'Ó' | 'Ô' | 'Õ' | 'ó' | 'ô' | 'õ' => 'O',
            'Ú' | 'ú' => 'U',
            'Ç' | 'ç' => 'C',
            c if c.is_ascii_uppercase() => c,
            _ => '<',
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn default_parses_and_mrz_is_well_formed() {
        let id = Identity::from_json(DEFAULT_IDENTITY_JSON).unwrap();
        assert_eq!(id, Identity::fallback());
        let lines = id.mrz_lines();
        for line in &lines {
            assert_eq!(line.len(), 30, "{line}");
        }
        assert!(lines[0].starts_with("I<PRT990001234"));
        assert_eq!(lines[1].get(0..7), Some("8907035"));
        assert!(lines[2].starts_with("SEQUEIRA<TESTE<<MARTA<INES"));
        // ICAO 9303-3 worked example.
        assert_eq!(check_char(b"520727"), '3');
        assert_eq!(check_char(b"L898902C<"), '3');
    }

    #[test]
    fn rejects_bad_pins() {
        let text = DEFAULT_IDENTITY_JSON.replace("\"1111\"", "\"11a1\"");
        assert!(Identity::from_json(&text).is_err());
    }
}
