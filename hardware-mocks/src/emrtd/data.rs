//! The printed data of a virtual travel document and its machine readable zone (ICAO 9303-3 §4.9
//! check digits, 9303-4 TD3, 9303-5 TD1).
//!
//! Everything here is fixed per profile so that tests and the demo can address the documents
//! (document number, dates, CAN) without reading them first. Check digits and MRZ_information
//! come from `eid_protocols::mrz`, the code the terminal side uses; the specimen tests below pin
//! them to the ICAO examples.

use eid_protocols::mrz::{self, MrzError, check_char};
use zeroize::Zeroizing;

/// The size of the MRZ.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum MrzFormat {
    /// Passport: two lines of 44 characters (ICAO 9303-4).
    Td3,
    /// ID card: three lines of 30 characters (ICAO 9303-5).
    Td1,
}

/// The holder and document data of one virtual document. Names and codes use the MRZ character
/// set (`A`-`Z`, `0`-`9`, space between name parts); dates are `YYMMDD` as in the MRZ.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Document {
    pub format: MrzFormat,
    /// Document code: `P<` for a passport, `ID` for an identity card.
    pub document_code: &'static str,
    /// Issuing state or organisation, three letters (`UTO` is the ICAO specimen state).
    pub issuing_state: &'static str,
    pub surname: &'static str,
    pub given_names: &'static str,
    /// Nine characters.
    pub document_number: &'static str,
    pub nationality: &'static str,
    /// `YYMMDD`.
    pub date_of_birth: &'static str,
    /// `M`, `F` or `<`.
    pub sex: &'static str,
    /// `YYMMDD`.
    pub date_of_expiry: &'static str,
    /// Optional data of the MRZ (personal number), at most 14 (TD3) or 15 (TD1) characters.
    pub optional_data: &'static str,
    /// The card access number printed on the document, if it has one.
    pub can: Option<&'static str>,
    /// Full date of birth `YYYYMMDD` (DG11).
    pub full_date_of_birth: &'static str,
    pub place_of_birth: &'static str,
    /// DG11 permanent address, `<` separating the lines.
    pub address: &'static str,
    /// DG12 issuing authority.
    pub issuing_authority: &'static str,
    /// DG12 date of issue, `YYYYMMDD`.
    pub date_of_issue: &'static str,
}

impl Document {
    /// The MRZ as one string without line breaks (88 characters for TD3, 90 for TD1), as DG1
    /// holds it (ICAO 9303-10 §4.7.1).
    pub fn mrz(&self) -> String {
        match self.format {
            MrzFormat::Td3 => self.td3(),
            MrzFormat::Td1 => self.td1(),
        }
    }

    /// The MRZ lines.
    pub fn mrz_lines(&self) -> Vec<String> {
        let mrz = self.mrz();
        let width = match self.format {
            MrzFormat::Td3 => 44,
            MrzFormat::Td1 => 30,
        };
        mrz.as_bytes()
            .chunks(width)
            .map(|line| String::from_utf8_lossy(line).into_owned())
            .collect()
    }

    /// MRZ_information for BAC and the PACE MRZ password (ICAO 9303-11 §9.7.2): document
    /// number, its check digit, date of birth, check digit, date of expiry, check digit, as
    /// [`mrz::mrz_information`] computes it (in a zeroizing string: it is key material). Fails
    /// only if the profile's data is not MRZ text.
    pub fn mrz_information(&self) -> Result<Zeroizing<String>, MrzError> {
        mrz::mrz_information(
            self.document_number,
            self.date_of_birth,
            self.date_of_expiry,
        )
    }

    /// `SURNAME<<GIVEN<NAMES`, padded with `<` or truncated to `width`.
    fn name_field(&self, width: usize) -> String {
        let name = format!(
            "{}<<{}",
            self.surname.replace(' ', "<"),
            self.given_names.replace(' ', "<")
        );
        pad(&name, width)
    }

    fn td3(&self) -> String {
        let line1 = format!(
            "{}{}{}",
            pad(self.document_code, 2),
            pad(self.issuing_state, 3),
            self.name_field(39)
        );
        let number = pad(self.document_number, 9);
        let optional = pad(self.optional_data, 14);
        let optional_check = if self.optional_data.is_empty() {
            '<'
        } else {
            check_char(optional.as_bytes())
        };
        let composite_input = format!(
            "{number}{}{}{}{}{}{optional}{optional_check}",
            check_char(number.as_bytes()),
            self.date_of_birth,
            check_char(self.date_of_birth.as_bytes()),
            self.date_of_expiry,
            check_char(self.date_of_expiry.as_bytes()),
        );
        let line2 = format!(
            "{number}{}{}{}{}{}{}{}{optional}{optional_check}{}",
            check_char(number.as_bytes()),
            pad(self.nationality, 3),
            self.date_of_birth,
            check_char(self.date_of_birth.as_bytes()),
            pad(self.sex, 1),
            self.date_of_expiry,
            check_char(self.date_of_expiry.as_bytes()),
            check_char(composite_input.as_bytes()),
        );
        format!("{line1}{line2}")
    }

    fn td1(&self) -> String {
        let number = pad(self.document_number, 9);
        let optional = pad(self.optional_data, 15);
        let line1 = format!(
            "{}{}{number}{}{optional}",
            pad(self.document_code, 2),
            pad(self.issuing_state, 3),
            check_char(number.as_bytes()),
        );
        let optional2 = pad("", 11);
        let line2_head = format!(
            "{}{}{}{}{}{}{optional2}",
            self.date_of_birth,
            check_char(self.date_of_birth.as_bytes()),
            pad(self.sex, 1),
            self.date_of_expiry,
            check_char(self.date_of_expiry.as_bytes()),
            pad(self.nationality, 3),
        );
        // Upper line positions 6-30, middle line 1-7, 9-15, 19-29 (ICAO 9303-5 §4.2.4).
        let composite_input = format!(
            "{}{}{}{}",
            line1.get(5..30).unwrap_or_default(),
            line2_head.get(0..7).unwrap_or_default(),
            line2_head.get(8..15).unwrap_or_default(),
            line2_head.get(18..29).unwrap_or_default(),
        );
        let line2 = format!("{line2_head}{}", check_char(composite_input.as_bytes()));
        let line3 = self.name_field(30);
        format!("{line1}{line2}{line3}")
    }
}

/// `s` padded on the right with `<` to `width` characters, or cut to `width`.
fn pad(s: &str, width: usize) -> String {
    let mut out: String = s.chars().take(width).collect();
    while out.chars().count() < width {
        out.push('<');
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// The ICAO 9303-4 Appendix specimen (Anna Maria Eriksson).
    const SPECIMEN: Document = Document {
        format: MrzFormat::Td3,
        document_code: "P<",
        issuing_state: "UTO",
        surname: "ERIKSSON",
        given_names: "ANNA MARIA",
        document_number: "L898902C3",
        nationality: "UTO",
        date_of_birth: "740812",
        sex: "F",
        date_of_expiry: "120415",
        optional_data: "ZE184226B",
        can: None,
        full_date_of_birth: "19740812",
        place_of_birth: "ZENITH",
        address: "",
        issuing_authority: "",
        date_of_issue: "",
    };

    #[test]
    fn td3_specimen_matches_icao_9303_4() {
        assert_eq!(
            SPECIMEN.mrz_lines(),
            [
                "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<",
                "L898902C36UTO7408122F1204159ZE184226B<<<<<10",
            ]
        );
    }

    #[test]
    fn td1_specimen_matches_icao_9303_5() {
        let id = Document {
            format: MrzFormat::Td1,
            document_code: "I<",
            document_number: "D23145890",
            optional_data: "",
            ..SPECIMEN
        };
        let lines = id.mrz_lines();
        assert_eq!(lines[0], "I<UTOD231458907<<<<<<<<<<<<<<<");
        assert_eq!(lines[1], "7408122F1204159UTO<<<<<<<<<<<6");
        assert_eq!(lines[2], "ERIKSSON<<ANNA<MARIA<<<<<<<<<<");
    }

    #[test]
    fn mrz_information_matches_appendix_d() {
        let doc = Document {
            document_number: "L898902C",
            date_of_birth: "690806",
            date_of_expiry: "940623",
            ..SPECIMEN
        };
        assert_eq!(
            doc.mrz_information().unwrap().as_str(),
            "L898902C<369080619406236"
        );
    }
}
