//! Machine readable zone (ICAO 9303-3/4/5/6): parsing and check digits.
//!
//! Three formats are recognised by their size: TD1 (3 lines of 30, ICAO 9303-5 §4.2), TD2 (2 lines
//! of 36, ICAO 9303-6 §4.2) and TD3 (2 lines of 44, ICAO 9303-4 §4.2). Input may be the
//! concatenated characters of DG1 (`5F1F`) or lines separated by line breaks. Every check digit,
//! including the composite one, is computed and reported next to the digit found; a wrong digit is
//! not a parse error, so a caller can show what the document says and flag the mismatch.
//!
//! Nothing here panics on any input: fields are read with bounds-checked slicing of validated
//! ASCII.

use serde::Serialize;
use thiserror::Error;
use time::{Date, Month};
use zeroize::Zeroizing;

/// Why a string is not a machine readable zone. Whose fault: the document, the OCR, or the user
/// who typed it.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum MrzError {
    /// The character count matches none of TD1 (90), TD2 (72) or TD3 (88).
    #[error("an MRZ has 90 (TD1), 72 (TD2) or 88 (TD3) characters, this one has {0}")]
    Length(usize),
    /// A character outside `A-Z`, `0-9` and `<` (ICAO 9303-3 §4.3).
    #[error("character {found:?} at position {position} is not allowed in an MRZ")]
    Character { position: usize, found: char },
    /// An input field of [`mrz_information`] is malformed.
    #[error("{field} is malformed: {reason}")]
    Field {
        field: &'static str,
        reason: &'static str,
    },
}

/// The MRZ format, by document size (ICAO 9303-3 §2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum MrzFormat {
    /// ID-1 size card: 3 lines of 30 characters (ICAO 9303-5).
    Td1,
    /// ID-2 size document: 2 lines of 36 characters (ICAO 9303-6).
    Td2,
    /// Passport booklet: 2 lines of 44 characters (ICAO 9303-4).
    Td3,
}

/// Sex as printed in the MRZ (ICAO 9303-4 §4.2.2: `F`, `M`, or `<` for unspecified; `X` is read
/// as unspecified too).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Sex {
    Female,
    Male,
    Unspecified,
}

/// One check digit: the character printed and the one computed over its field (ICAO 9303-3 §4.9).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct DigitCheck {
    /// The check character in the MRZ.
    pub found: char,
    /// The check digit computed over the field.
    pub computed: char,
}

impl DigitCheck {
    fn new(field: &[u8], found: u8) -> Self {
        Self {
            found: char::from(found),
            computed: char::from(b'0' + check_digit(field)),
        }
    }
    /// Whether the printed digit is the computed one.
    pub fn is_valid(&self) -> bool {
        self.found == self.computed
    }
}

/// All check digits of one MRZ.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct MrzChecks {
    pub document_number: DigitCheck,
    pub birth_date: DigitCheck,
    pub expiry_date: DigitCheck,
    /// TD3 only: the check digit over the personal number (optional data). ICAO 9303-4 allows `<`
    /// when the field is all fillers; that counts as `0`.
    pub optional_data: Option<DigitCheck>,
    /// The composite check digit (all formats).
    pub composite: DigitCheck,
}

impl MrzChecks {
    /// Whether every check digit matches.
    pub fn all_valid(&self) -> bool {
        self.document_number.is_valid()
            && self.birth_date.is_valid()
            && self.expiry_date.is_valid()
            && self.optional_data.is_none_or(|c| c.is_valid())
            && self.composite.is_valid()
    }
}

/// A `YYMMDD` date field: the characters as printed and, when they form a real date, that date
/// with the century chosen as ICAO 9303-3 leaves to the reader (birth dates in the past, expiry
/// dates at most 50 years ahead).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct MrzDate {
    /// The six characters (may contain `<` for an unknown day or month).
    pub raw: String,
    /// The date, when the field holds one.
    pub date: Option<Date>,
}

/// A parsed machine readable zone.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Mrz {
    pub format: MrzFormat,
    /// Document code, fillers removed (`P`, `I`, `ID`, `AC`, `V`...).
    pub document_code: String,
    /// Issuing state or organisation (ICAO 9303-3 §5 three-letter code), fillers removed.
    pub issuing_state: String,
    /// Document number, fillers removed; for TD1/TD2 numbers longer than nine characters the
    /// overflow from the optional data is appended (ICAO 9303-5 §4.2.2 note j).
    pub document_number: String,
    pub nationality: String,
    pub birth_date: MrzDate,
    pub sex: Sex,
    pub expiry_date: MrzDate,
    /// Primary identifier (surname), `<` read as space.
    pub primary_identifier: String,
    /// Secondary identifier (given names), `<` read as space.
    pub secondary_identifier: String,
    /// Optional data of line 1 (TD1) or line 2 (TD2, TD3: the personal number), fillers removed
    /// at the end; without the document number overflow.
    pub optional_data: String,
    /// TD1 only: optional data of line 2, fillers removed at the end.
    pub optional_data_2: Option<String>,
    pub checks: MrzChecks,
    /// The lines as read, without separators.
    pub lines: Vec<String>,
}

/// ICAO 9303-3 §4.9 check digit: weights 7, 3, 1 repeating over the character values (`0`-`9`
/// as themselves, `A`-`Z` as 10-35, `<` and anything else as 0), sum modulo 10.
pub fn check_digit(field: &[u8]) -> u8 {
    let sum = field
        .iter()
        .zip([7u32, 3, 1].iter().cycle())
        .fold(0u32, |acc, (&c, &w)| {
            let v = match c {
                b'0'..=b'9' => u32::from(c - b'0'),
                b'A'..=b'Z' => u32::from(c - b'A') + 10,
                _ => 0,
            };
            (acc + v * w) % 10
        });
    // `sum` is below 10 after the modulo.
    u8::try_from(sum).unwrap_or(0)
}

/// [`check_digit`] as the character an MRZ prints (`'0'` to `'9'`).
pub fn check_char(field: &[u8]) -> char {
    char::from(b'0' + check_digit(field) % 10)
}

/// The MRZ information that seeds the BAC key and the PACE MRZ password (ICAO 9303-11 §9.7.1,
/// §4.4.1): document number (padded with `<` to nine characters; a longer number is used whole),
/// its check digit, date of birth, its check digit, date of expiry, its check digit.
///
/// `birth` and `expiry` are `YYMMDD`. Returned in a zeroizing string: it is key material.
pub fn mrz_information(
    document_number: &str,
    birth: &str,
    expiry: &str,
) -> Result<Zeroizing<String>, MrzError> {
    let doc = document_number.trim().to_ascii_uppercase();
    if doc.is_empty() || doc.len() > 22 {
        return Err(MrzError::Field {
            field: "document number",
            reason: "must have 1 to 22 characters",
        });
    }
    if !doc.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'<') {
        return Err(MrzError::Field {
            field: "document number",
            reason: "only A-Z, 0-9 and < are allowed",
        });
    }
    for (field, value) in [("date of birth", birth), ("date of expiry", expiry)] {
        if value.len() != 6 || !value.bytes().all(|b| b.is_ascii_digit() || b == b'<') {
            return Err(MrzError::Field {
                field,
                reason: "must be six characters YYMMDD",
            });
        }
    }
    let mut out = Zeroizing::new(String::with_capacity(doc.len().max(9) + 15));
    out.push_str(&doc);
    while out.len() < 9 {
        out.push('<');
    }
    let doc_cd = check_digit(out.as_bytes());
    out.push(char::from(b'0' + doc_cd));
    out.push_str(birth);
    out.push(char::from(b'0' + check_digit(birth.as_bytes())));
    out.push_str(expiry);
    out.push(char::from(b'0' + check_digit(expiry.as_bytes())));
    Ok(out)
}

fn text(bytes: &[u8]) -> String {
    // Input was validated as ASCII A-Z0-9<.
    String::from_utf8_lossy(bytes).into_owned()
}

fn strip_fillers(bytes: &[u8]) -> String {
    let s = text(bytes);
    s.trim_end_matches('<').to_string()
}

fn name_part(bytes: &[u8]) -> String {
    text(bytes)
        .split('<')
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

fn field(line: &[u8], from: usize, to: usize) -> &[u8] {
    line.get(from..to).unwrap_or_default()
}

fn at(line: &[u8], i: usize) -> u8 {
    line.get(i).copied().unwrap_or(b'<')
}

fn two_digits(b: &[u8], i: usize) -> Option<u8> {
    let hi = b.get(i)?.checked_sub(b'0').filter(|d| *d < 10)?;
    let lo = b.get(i + 1)?.checked_sub(b'0').filter(|d| *d < 10)?;
    Some(hi * 10 + lo)
}

#[derive(Clone, Copy)]
enum DateKind {
    Birth,
    Expiry,
}

fn mrz_date(raw: &[u8], kind: DateKind, today: Date) -> MrzDate {
    let date = (|| {
        let yy = i32::from(two_digits(raw, 0)?);
        let month = Month::try_from(two_digits(raw, 2)?).ok()?;
        let day = two_digits(raw, 4)?;
        let century = today.year() / 100 * 100;
        let candidate = |c: i32| Date::from_calendar_date(c + yy, month, day).ok();
        let this = candidate(century)?;
        match kind {
            DateKind::Birth if this > today => candidate(century - 100),
            DateKind::Expiry if this.year() > today.year() + 50 => candidate(century - 100),
            DateKind::Expiry if this.year() < today.year() - 49 => candidate(century + 100),
            _ => Some(this),
        }
    })();
    MrzDate {
        raw: text(raw),
        date,
    }
}

fn sex(c: u8) -> Sex {
    match c {
        b'F' => Sex::Female,
        b'M' => Sex::Male,
        _ => Sex::Unspecified,
    }
}

fn names(field: &[u8]) -> (String, String) {
    let s = text(field);
    match s.split_once("<<") {
        Some((primary, secondary)) => (
            name_part(primary.as_bytes()),
            name_part(secondary.as_bytes()),
        ),
        None => (name_part(s.as_bytes()), String::new()),
    }
}

/// TD1/TD2 long document number (ICAO 9303-5 §4.2.2 note j): when the check digit position holds
/// `<`, the number continues in the optional data up to its first `<`, whose last character is
/// the check digit. Returns (full number, check digit, rest of the optional data).
fn long_document_number(number: &[u8], cd: u8, optional: &[u8]) -> (String, DigitCheck, String) {
    if cd == b'<' {
        let end = optional
            .iter()
            .position(|&c| c == b'<')
            .unwrap_or(optional.len());
        if end >= 1 {
            let overflow = field(optional, 0, end - 1);
            let found = at(optional, end - 1);
            let mut full = number.to_vec();
            full.extend_from_slice(overflow);
            let check = DigitCheck::new(&full, found);
            let rest = strip_fillers(optional.get(end..).unwrap_or_default());
            return (
                strip_fillers(&full),
                check,
                rest.trim_start_matches('<').to_string(),
            );
        }
    }
    (
        strip_fillers(number),
        DigitCheck::new(number, cd),
        strip_fillers(optional),
    )
}

impl Mrz {
    /// Parses an MRZ, choosing the century of its dates relative to today (UTC).
    pub fn parse(input: &str) -> Result<Self, MrzError> {
        Self::parse_at(input, time::OffsetDateTime::now_utc().date())
    }

    /// Parses an MRZ, choosing the century of its dates relative to `today`.
    pub fn parse_at(input: &str, today: Date) -> Result<Self, MrzError> {
        let mut chars = Vec::with_capacity(input.len().min(128));
        for (position, c) in input.chars().enumerate() {
            match c {
                '\r' | '\n' | ' ' | '\t' => continue,
                'A'..='Z' | '0'..='9' | '<' => chars.push(c as u8),
                found => return Err(MrzError::Character { position, found }),
            }
            if chars.len() > 90 {
                return Err(MrzError::Length(input.chars().count()));
            }
        }
        match chars.len() {
            90 => Ok(Self::td1(&chars, today)),
            72 => Ok(Self::td2(&chars, today)),
            88 => Ok(Self::td3(&chars, today)),
            n => Err(MrzError::Length(n)),
        }
    }

    fn td1(c: &[u8], today: Date) -> Self {
        let (l1, l2, l3) = (field(c, 0, 30), field(c, 30, 60), field(c, 60, 90));
        let (document_number, doc_check, optional_data) =
            long_document_number(field(l1, 5, 14), at(l1, 14), field(l1, 15, 30));
        let mut composite_input = field(l1, 5, 30).to_vec();
        composite_input.extend_from_slice(field(l2, 0, 7));
        composite_input.extend_from_slice(field(l2, 8, 15));
        composite_input.extend_from_slice(field(l2, 18, 29));
        let (primary_identifier, secondary_identifier) = names(l3);
        Self {
            format: MrzFormat::Td1,
            document_code: strip_fillers(field(l1, 0, 2)),
            issuing_state: strip_fillers(field(l1, 2, 5)),
            document_number,
            nationality: strip_fillers(field(l2, 15, 18)),
            birth_date: mrz_date(field(l2, 0, 6), DateKind::Birth, today),
            sex: sex(at(l2, 7)),
            expiry_date: mrz_date(field(l2, 8, 14), DateKind::Expiry, today),
            primary_identifier,
            secondary_identifier,
            optional_data,
            optional_data_2: Some(strip_fillers(field(l2, 18, 29))),
            checks: MrzChecks {
                document_number: doc_check,
                birth_date: DigitCheck::new(field(l2, 0, 6), at(l2, 6)),
                expiry_date: DigitCheck::new(field(l2, 8, 14), at(l2, 14)),
                optional_data: None,
                composite: DigitCheck::new(&composite_input, at(l2, 29)),
            },
            lines: vec![text(l1), text(l2), text(l3)],
        }
    }

    fn td2(c: &[u8], today: Date) -> Self {
        let (l1, l2) = (field(c, 0, 36), field(c, 36, 72));
        let (document_number, doc_check, optional_data) =
            long_document_number(field(l2, 0, 9), at(l2, 9), field(l2, 28, 35));
        let mut composite_input = field(l2, 0, 10).to_vec();
        composite_input.extend_from_slice(field(l2, 13, 20));
        composite_input.extend_from_slice(field(l2, 21, 35));
        let (primary_identifier, secondary_identifier) = names(field(l1, 5, 36));
        Self {
            format: MrzFormat::Td2,
            document_code: strip_fillers(field(l1, 0, 2)),
            issuing_state: strip_fillers(field(l1, 2, 5)),
            document_number,
            nationality: strip_fillers(field(l2, 10, 13)),
            birth_date: mrz_date(field(l2, 13, 19), DateKind::Birth, today),
            sex: sex(at(l2, 20)),
            expiry_date: mrz_date(field(l2, 21, 27), DateKind::Expiry, today),
            primary_identifier,
            secondary_identifier,
            optional_data,
            optional_data_2: None,
            checks: MrzChecks {
                document_number: doc_check,
                birth_date: DigitCheck::new(field(l2, 13, 19), at(l2, 19)),
                expiry_date: DigitCheck::new(field(l2, 21, 27), at(l2, 27)),
                optional_data: None,
                composite: DigitCheck::new(&composite_input, at(l2, 35)),
            },
            lines: vec![text(l1), text(l2)],
        }
    }

    fn td3(c: &[u8], today: Date) -> Self {
        let (l1, l2) = (field(c, 0, 44), field(c, 44, 88));
        let mut composite_input = field(l2, 0, 10).to_vec();
        composite_input.extend_from_slice(field(l2, 13, 20));
        composite_input.extend_from_slice(field(l2, 21, 43));
        let (primary_identifier, secondary_identifier) = names(field(l1, 5, 44));
        let personal = field(l2, 28, 42);
        // ICAO 9303-4 §4.2.2: the personal number check digit may be `<` when the field is empty.
        let personal_cd = match at(l2, 42) {
            b'<' if personal.iter().all(|&b| b == b'<') => b'0',
            other => other,
        };
        Self {
            format: MrzFormat::Td3,
            document_code: strip_fillers(field(l1, 0, 2)),
            issuing_state: strip_fillers(field(l1, 2, 5)),
            document_number: strip_fillers(field(l2, 0, 9)),
            nationality: strip_fillers(field(l2, 10, 13)),
            birth_date: mrz_date(field(l2, 13, 19), DateKind::Birth, today),
            sex: sex(at(l2, 20)),
            expiry_date: mrz_date(field(l2, 21, 27), DateKind::Expiry, today),
            primary_identifier,
            secondary_identifier,
            optional_data: strip_fillers(personal),
            optional_data_2: None,
            checks: MrzChecks {
                document_number: DigitCheck::new(field(l2, 0, 9), at(l2, 9)),
                birth_date: DigitCheck::new(field(l2, 13, 19), at(l2, 19)),
                expiry_date: DigitCheck::new(field(l2, 21, 27), at(l2, 27)),
                optional_data: Some(DigitCheck::new(personal, personal_cd)),
                composite: DigitCheck::new(&composite_input, at(l2, 43)),
            },
            lines: vec![text(l1), text(l2)],
        }
    }

    /// The MRZ information of this document for BAC / PACE ([`mrz_information`]), built from the
    /// fields as printed.
    pub fn mrz_information(&self) -> Result<Zeroizing<String>, MrzError> {
        mrz_information(
            &self.document_number,
            &self.birth_date.raw,
            &self.expiry_date.raw,
        )
    }
}
