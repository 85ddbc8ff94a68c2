//! The citizen's identity: the CC1 ID file (`3F00 5F00 EF02`, fixed-length fields) and the CC2
//! national-data files (`010D` tagged fields under `6D`, `0101` MRZ, `0102` photo), as laid out in
//! cards.md §A3. Every parser here is bounded by its input and returns errors, never panics.

use eid_protocols::tlv;
use serde::Serialize;

use super::{Generation, PteidCard, files, text};
use crate::Error;

/// A date as the card writes it ("DD MM YYYY"), with the parsed value when it parses.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct CardDate {
    /// The text on the card, trimmed.
    pub raw: String,
    /// The date, when `raw` is a valid "DD MM YYYY" (also accepted: "DDMMYYYY", "DD.MM.YYYY",
    /// "DD-MM-YYYY", "DD/MM/YYYY").
    pub date: Option<time::Date>,
}

impl CardDate {
    pub fn parse(raw: &str) -> CardDate {
        let raw = raw.trim().to_owned();
        let b = raw.as_bytes();
        // "DD?MM?YYYY" with one separator kind, or "DDMMYYYY".
        let shape_ok = match b {
            [d0, d1, s0, m0, m1, s1, y @ ..] if y.len() == 4 => {
                s0 == s1
                    && matches!(s0, b' ' | b'.' | b'-' | b'/')
                    && [d0, d1, m0, m1].iter().all(|c| c.is_ascii_digit())
                    && y.iter().all(u8::is_ascii_digit)
            }
            _ => b.len() == 8 && b.iter().all(u8::is_ascii_digit),
        };
        let digits: String = raw.chars().filter(char::is_ascii_digit).collect();
        let date = shape_ok
            .then(|| {
                let day: u8 = digits.get(0..2)?.parse().ok()?;
                let month: u8 = digits.get(2..4)?.parse().ok()?;
                let year: i32 = digits.get(4..8)?.parse().ok()?;
                let month = time::Month::try_from(month).ok()?;
                time::Date::from_calendar_date(year, month, day).ok()
            })
            .flatten();
        CardDate { raw, date }
    }
}

impl Serialize for CardDate {
    /// `{"raw": "31 12 2030", "date": "2030-12-31"}` (`date` null when it does not parse).
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("CardDate", 2)?;
        st.serialize_field("raw", &self.raw)?;
        let iso = self
            .date
            .map(|d| format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day()));
        st.serialize_field("date", &iso)?;
        st.end()
    }
}

impl std::fmt::Display for CardDate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.date {
            Some(d) => write!(
                f,
                "{:04}-{:02}-{:02}",
                d.year(),
                u8::from(d.month()),
                d.day()
            ),
            None => write!(f, "{} (not a valid date)", self.raw),
        }
    }
}

/// The card's own public key as stored in the ID file (CC1: RSA modulus and exponent; CC2: the
/// `7F49` EC public key object).
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum CardPublicKey {
    Rsa {
        #[serde(serialize_with = "crate::hex_serde::upper")]
        modulus: Vec<u8>,
        #[serde(serialize_with = "crate::hex_serde::upper")]
        exponent: Vec<u8>,
    },
    /// The whole `7F49` object (curve parameters and public point).
    Ec {
        #[serde(serialize_with = "crate::hex_serde::upper")]
        public_key_object: Vec<u8>,
    },
}

/// The facial image as stored (JPEG 2000), with the ISO 19794-5 headers before it.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Photo {
    /// The JPEG 2000 codestream or file, trailing zero padding removed.
    pub jp2: Vec<u8>,
    /// CC1: CBEFF (34) || facial record header (14) || facial info (20) || image info (12),
    /// hashed together with the image by the CC1 SOD (cards.md §A4).
    pub(crate) cc1_headers: Vec<u8>,
    /// CC2: the whole DG2 file, hashed by the SOD.
    pub(crate) cc2_file: Vec<u8>,
}

impl std::fmt::Debug for Photo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Photo({} bytes)", self.jp2.len())
    }
}

impl Photo {
    /// The photo converted to PNG ([`crate::image::to_png`]).
    pub fn to_png(&self) -> Result<Vec<u8>, Error> {
        crate::image::to_png(&self.jp2).map_err(|e| Error::MalformedCardData {
            file: "photo",
            reason: e.to_string(),
        })
    }
}

/// Every field of the identity file, typed. Fields a generation does not have are `None`.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
pub struct Identity {
    pub generation: Generation,
    pub issuing_entity: String,
    /// CC1 "Country", CC2 issuing state.
    pub country: String,
    /// CC1 "DocumentType", CC2 document label.
    pub document_type: String,
    pub document_number: String,
    /// CC1 only: the card's PAN.
    pub document_number_pan: Option<String>,
    pub document_version: String,
    pub validity_begin: CardDate,
    pub local_of_request: String,
    pub validity_end: CardDate,
    pub surname: String,
    pub given_names: String,
    pub gender: String,
    pub nationality: String,
    pub date_of_birth: CardDate,
    pub height: String,
    pub civilian_id: String,
    pub surname_mother: String,
    pub given_names_mother: String,
    pub surname_father: String,
    pub given_names_father: String,
    pub tax_no: String,
    pub social_security_no: String,
    pub health_no: String,
    pub accidental_indications: Option<String>,
    /// The machine-readable zone, one entry per line.
    pub mrz: Vec<String>,
    pub card_public_key: Option<CardPublicKey>,
    /// The photo (not serialised; see [`Photo::to_png`]).
    #[serde(skip)]
    pub photo: Photo,
    /// The ID file as read (for the SOD check).
    #[serde(skip)]
    pub(crate) raw_file: Vec<u8>,
    /// CC2: the MRZ file (DG1) as read.
    #[serde(skip)]
    pub(crate) raw_mrz_file: Vec<u8>,
}

/// CC1 ID file layout, cards.md §A3: (field, offset, length).
pub(crate) mod cc1 {
    pub(crate) const ISSUING_ENTITY: (usize, usize) = (0, 40);
    pub(crate) const COUNTRY: (usize, usize) = (40, 80);
    pub(crate) const DOCUMENT_TYPE: (usize, usize) = (120, 34);
    pub(crate) const DOCUMENT_NUMBER: (usize, usize) = (154, 28);
    pub(crate) const DOCUMENT_NUMBER_PAN: (usize, usize) = (182, 16);
    pub(crate) const DOCUMENT_VERSION: (usize, usize) = (214, 16);
    pub(crate) const VALIDITY_BEGIN: (usize, usize) = (230, 20);
    pub(crate) const LOCAL_OF_REQUEST: (usize, usize) = (250, 60);
    pub(crate) const VALIDITY_END: (usize, usize) = (310, 20);
    pub(crate) const SURNAME: (usize, usize) = (330, 120);
    pub(crate) const NAME: (usize, usize) = (450, 120);
    pub(crate) const GENDER: (usize, usize) = (570, 2);
    pub(crate) const NATIONALITY: (usize, usize) = (572, 6);
    pub(crate) const DATE_OF_BIRTH: (usize, usize) = (578, 20);
    pub(crate) const HEIGHT: (usize, usize) = (598, 8);
    pub(crate) const CIVILIAN_ID: (usize, usize) = (606, 18);
    pub(crate) const SURNAME_MOTHER: (usize, usize) = (624, 120);
    pub(crate) const GIVEN_NAME_MOTHER: (usize, usize) = (744, 120);
    pub(crate) const SURNAME_FATHER: (usize, usize) = (864, 120);
    pub(crate) const GIVEN_NAME_FATHER: (usize, usize) = (984, 120);
    pub(crate) const TAX_NO: (usize, usize) = (1104, 18);
    pub(crate) const SOCIAL_SECURITY_NO: (usize, usize) = (1122, 22);
    pub(crate) const HEALTH_NO: (usize, usize) = (1144, 18);
    pub(crate) const ACCIDENTAL_INDICATIONS: (usize, usize) = (1162, 120);
    pub(crate) const MRZ: [(usize, usize); 3] = [(1282, 30), (1312, 30), (1342, 30)];
    pub(crate) const MODULUS: (usize, usize) = (1372, 128);
    pub(crate) const EXPONENT: (usize, usize) = (1500, 3);
    pub(crate) const CBEFF: (usize, usize) = (1503, 34);
    pub(crate) const FACIAL_HEADER: (usize, usize) = (1537, 14);
    pub(crate) const FACIAL_INFO: (usize, usize) = (1551, 20);
    pub(crate) const IMAGE_INFO: (usize, usize) = (1571, 12);
    pub(crate) const PHOTO_START: usize = 1583;

    /// The fields the SOD's ID hash covers, in its order (cards.md §A4).
    pub(crate) const SOD_ID_FIELDS: [(usize, usize); 24] = [
        ISSUING_ENTITY,
        COUNTRY,
        DOCUMENT_TYPE,
        DOCUMENT_NUMBER,
        DOCUMENT_NUMBER_PAN,
        DOCUMENT_VERSION,
        VALIDITY_BEGIN,
        LOCAL_OF_REQUEST,
        VALIDITY_END,
        SURNAME,
        NAME,
        GENDER,
        NATIONALITY,
        DATE_OF_BIRTH,
        HEIGHT,
        CIVILIAN_ID,
        SURNAME_MOTHER,
        GIVEN_NAME_MOTHER,
        SURNAME_FATHER,
        GIVEN_NAME_FATHER,
        ACCIDENTAL_INDICATIONS,
        TAX_NO,
        SOCIAL_SECURITY_NO,
        HEALTH_NO,
    ];
}

/// The bytes of one fixed field, or an error naming the file when the file is too short.
pub(crate) fn field<'a>(
    file: &'a [u8],
    (offset, len): (usize, usize),
    name: &'static str,
) -> Result<&'a [u8], Error> {
    offset
        .checked_add(len)
        .and_then(|end| file.get(offset..end))
        .ok_or_else(|| Error::MalformedCardData {
            file: name,
            reason: format!("shorter than the field at {offset}+{len}"),
        })
}

impl Identity {
    /// Parses the CC1 ID file (cards.md §A3, fixed layout).
    pub fn parse_cc1(file: &[u8]) -> Result<Identity, Error> {
        const NAME: &str = "ID file";
        let t = |f: (usize, usize)| field(file, f, NAME).map(text);
        let photo_area = file
            .get(cc1::PHOTO_START..)
            .ok_or(Error::MalformedCardData {
                file: NAME,
                reason: "no photo area".to_owned(),
            })?;
        let mut cc1_headers = Vec::with_capacity(80);
        for f in [
            cc1::CBEFF,
            cc1::FACIAL_HEADER,
            cc1::FACIAL_INFO,
            cc1::IMAGE_INFO,
        ] {
            cc1_headers.extend_from_slice(field(file, f, NAME)?);
        }
        Ok(Identity {
            generation: Generation::Cc1,
            issuing_entity: t(cc1::ISSUING_ENTITY)?,
            country: t(cc1::COUNTRY)?,
            document_type: t(cc1::DOCUMENT_TYPE)?,
            document_number: t(cc1::DOCUMENT_NUMBER)?,
            document_number_pan: Some(t(cc1::DOCUMENT_NUMBER_PAN)?),
            document_version: t(cc1::DOCUMENT_VERSION)?,
            validity_begin: CardDate::parse(&t(cc1::VALIDITY_BEGIN)?),
            local_of_request: t(cc1::LOCAL_OF_REQUEST)?,
            validity_end: CardDate::parse(&t(cc1::VALIDITY_END)?),
            surname: t(cc1::SURNAME)?,
            given_names: t(cc1::NAME)?,
            gender: t(cc1::GENDER)?,
            nationality: t(cc1::NATIONALITY)?,
            date_of_birth: CardDate::parse(&t(cc1::DATE_OF_BIRTH)?),
            height: t(cc1::HEIGHT)?,
            civilian_id: t(cc1::CIVILIAN_ID)?,
            surname_mother: t(cc1::SURNAME_MOTHER)?,
            given_names_mother: t(cc1::GIVEN_NAME_MOTHER)?,
            surname_father: t(cc1::SURNAME_FATHER)?,
            given_names_father: t(cc1::GIVEN_NAME_FATHER)?,
            tax_no: t(cc1::TAX_NO)?,
            social_security_no: t(cc1::SOCIAL_SECURITY_NO)?,
            health_no: t(cc1::HEALTH_NO)?,
            accidental_indications: Some(t(cc1::ACCIDENTAL_INDICATIONS)?),
            mrz: cc1::MRZ
                .iter()
                .map(|&f| t(f))
                .collect::<Result<Vec<_>, _>>()?,
            card_public_key: Some(CardPublicKey::Rsa {
                modulus: field(file, cc1::MODULUS, NAME)?.to_vec(),
                exponent: field(file, cc1::EXPONENT, NAME)?.to_vec(),
            }),
            photo: Photo {
                jp2: super::trim_nul(photo_area).to_vec(),
                cc1_headers,
                cc2_file: Vec::new(),
            },
            raw_file: file.to_vec(),
            raw_mrz_file: Vec::new(),
        })
    }

    /// Parses the CC2 national-data files: `010D` (DG13 layout, outer tag 6D, private-class
    /// primitive UTF8 strings C0..D8, then 7F49), `0101` (`61 { 5F1F mrz }`) and `0102` (photo:
    /// the ISO 19794-5 record in `5F2E`, image after its 14 + 20 + 12 header bytes).
    pub fn parse_cc2(
        id_file: &[u8],
        mrz_file: &[u8],
        photo_file: &[u8],
    ) -> Result<Identity, Error> {
        const NAME: &str = "ID file (DG13)";
        let bad = |reason: String| Error::MalformedCardData { file: NAME, reason };
        let outer = tlv::parse_single(id_file).map_err(|e| bad(e.to_string()))?;
        if outer.tag() != 0x6D {
            return Err(bad(format!("outer tag {:X}, not 6D", outer.tag())));
        }
        // Tags C0..D8 → slot index; each may appear once.
        let mut slots: [Option<String>; 25] = Default::default();
        let mut key = None;
        for obj in outer.children() {
            let obj = obj.map_err(|e| bad(e.to_string()))?;
            match obj.tag() {
                tag @ 0xC0..=0xD8 => {
                    let index = usize::try_from(tag - 0xC0).unwrap_or(usize::MAX);
                    let slot = slots
                        .get_mut(index)
                        .ok_or_else(|| bad(format!("tag {tag:X}")))?;
                    if slot.is_some() {
                        return Err(bad(format!("tag {tag:X} twice")));
                    }
                    let value = std::str::from_utf8(obj.value())
                        .map_err(|_| bad(format!("tag {tag:X} is not UTF-8")))?;
                    *slot = Some(value.trim_end_matches('\0').trim_end().to_owned());
                }
                0x7F49 => {
                    key = Some(CardPublicKey::Ec {
                        public_key_object: obj.raw().to_vec(),
                    });
                }
                // Unknown objects are skipped (future fields).
                _ => {}
            }
        }
        let mut take = |tag: u32| -> Option<String> {
            let index = usize::try_from(tag.checked_sub(0xC0)?).ok()?;
            slots.get_mut(index).and_then(Option::take)
        };
        let mut need = |tag: u32| -> Result<String, Error> {
            take(tag).ok_or_else(|| bad(format!("missing tag {tag:X}")))
        };
        let issuing_entity = need(0xC0)?;
        let country = need(0xC1)?;
        let document_type = need(0xC2)?;
        let document_number = need(0xC3)?;
        let document_version = need(0xC4)?;
        let validity_begin = CardDate::parse(&need(0xC5)?);
        let local_of_request = need(0xC6)?;
        let validity_end = CardDate::parse(&need(0xC7)?);
        let surname = need(0xC8)?;
        let given_names = need(0xC9)?;
        let gender = need(0xCA)?;
        let nationality = need(0xCB)?;
        let date_of_birth = CardDate::parse(&need(0xCC)?);
        let height = need(0xCD)?;
        let civilian_id = need(0xD0)?;
        let surname_father = need(0xD1)?;
        let given_names_father = need(0xD2)?;
        let surname_mother = need(0xD3)?;
        let given_names_mother = need(0xD4)?;
        let tax_no = need(0xD5)?;
        let social_security_no = need(0xD6)?;
        let health_no = need(0xD7)?;
        let accidental_indications = take(0xD8);
        Ok(Identity {
            generation: Generation::Cc2,
            issuing_entity,
            country,
            document_type,
            document_number,
            document_number_pan: None,
            document_version,
            validity_begin,
            local_of_request,
            validity_end,
            surname,
            given_names,
            gender,
            nationality,
            date_of_birth,
            height,
            civilian_id,
            surname_mother,
            given_names_mother,
            surname_father,
            given_names_father,
            tax_no,
            social_security_no,
            health_no,
            accidental_indications,
            mrz: parse_mrz_file(mrz_file)?,
            card_public_key: key,
            photo: parse_dg2_photo(photo_file)?,
            raw_file: id_file.to_vec(),
            raw_mrz_file: mrz_file.to_vec(),
        })
    }
}

/// `61 { 5F1F <mrz> }` → the MRZ split into lines (3 × 30 for an ID card, 2 × 44 for TD3).
fn parse_mrz_file(file: &[u8]) -> Result<Vec<String>, Error> {
    let bad = |reason: String| Error::MalformedCardData {
        file: "MRZ (DG1)",
        reason,
    };
    let mrz = tlv::find_path(file, &[0x61, 0x5F1F])
        .map_err(|e| bad(e.to_string()))?
        .ok_or_else(|| bad("no 5F1F object".to_owned()))?;
    let text = std::str::from_utf8(mrz.value()).map_err(|_| bad("not ASCII".to_owned()))?;
    let line = match text.len() {
        90 => 30,
        88 => 44,
        72 => 36,
        _ => text.len().max(1),
    };
    Ok(text
        .as_bytes()
        .chunks(line)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect())
}

/// The image inside DG2: `75 / 7F61 / 7F60 / 5F2E` (or `5F2E` anywhere when the nesting is
/// unusual), after the ISO 19794-5 facial record header (14), facial information (20) and image
/// information (12) blocks.
fn parse_dg2_photo(file: &[u8]) -> Result<Photo, Error> {
    const HEADERS: usize = 14 + 20 + 12;
    let bad = |reason: String| Error::MalformedCardData {
        file: "photo (DG2)",
        reason,
    };
    let record = match tlv::find_path(file, &[0x75, 0x7F61, 0x7F60, 0x5F2E]) {
        Ok(Some(obj)) => obj.value(),
        _ => {
            // 5F2E with a two-byte length, as the official middleware looks for it.
            let at = file
                .windows(3)
                .position(|w| w == [0x5F, 0x2E, 0x82])
                .ok_or_else(|| bad("no 5F2E biometric data block".to_owned()))?;
            let after = file.get(at..).unwrap_or(&[]);
            tlv::parse_single(after)
                .or_else(|_| {
                    tlv::iter(after)
                        .next()
                        .unwrap_or(Err(eid_protocols::tlv::TlvError::Truncated(0)))
                })
                .map_err(|e| bad(e.to_string()))?
                .value()
        }
    };
    let image = record
        .get(HEADERS..)
        .ok_or_else(|| bad("facial record shorter than its headers".to_owned()))?;
    Ok(Photo {
        jp2: super::trim_nul(image).to_vec(),
        cc1_headers: Vec::new(),
        cc2_file: file.to_vec(),
    })
}

impl PteidCard<'_> {
    /// Reads the identity and the photo: CC1 one file (`EF02`), CC2 three (`010D`, `0101`,
    /// `0102`).
    pub fn read_identity(&mut self) -> Result<Identity, Error> {
        match self.generation {
            Generation::Cc1 => Identity::parse_cc1(&self.read_required(files::CC1_ID)?),
            Generation::Cc2 => {
                let id = self.read_required(files::CC2_ID)?;
                let mrz = self.read_required(files::CC2_MRZ)?;
                let photo = self.read_required(files::CC2_PHOTO)?;
                Identity::parse_cc2(&id, &mrz, &photo)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    fn put(file: &mut [u8], (offset, _): (usize, usize), value: &str) {
        file[offset..offset + value.len()].copy_from_slice(value.as_bytes());
    }

    pub(crate) fn cc1_file() -> Vec<u8> {
        let mut f = vec![0u8; 15_500];
        put(&mut f, cc1::ISSUING_ENTITY, "República Portuguesa");
        put(&mut f, cc1::COUNTRY, "PRT");
        put(&mut f, cc1::DOCUMENT_TYPE, "Cartão De Cidadão");
        put(&mut f, cc1::DOCUMENT_NUMBER, "99999999 0 ZZ9");
        put(&mut f, cc1::DOCUMENT_NUMBER_PAN, "0000036014662658");
        put(&mut f, cc1::VALIDITY_BEGIN, "05 06 2019");
        put(&mut f, cc1::VALIDITY_END, "31 02 2029");
        put(&mut f, cc1::SURNAME, "Carvalho Ferreira");
        put(&mut f, cc1::NAME, "Ana Maria");
        put(&mut f, cc1::GENDER, "F");
        put(&mut f, cc1::DATE_OF_BIRTH, "17 03 1985");
        put(&mut f, cc1::CIVILIAN_ID, "99999999");
        put(&mut f, cc1::MRZ[0], "I<PRT999999990<ZZ95<<<<<<<<<<<");
        f[cc1::MODULUS.0] = 0xC1;
        f[cc1::EXPONENT.0..cc1::EXPONENT.0 + 3].copy_from_slice(&[1, 0, 1]);
        f[cc1::PHOTO_START..cc1::PHOTO_START + 4].copy_from_slice(&[0xFF, 0x4F, 0xFF, 0x51]);
        f
    }

    #[test]
    fn cc1_fields_are_trimmed_typed_and_bad_dates_keep_their_text() {
        let id = Identity::parse_cc1(&cc1_file()).unwrap();
        assert_eq!(id.issuing_entity, "República Portuguesa");
        assert_eq!(id.document_type, "Cartão De Cidadão");
        assert_eq!(id.surname, "Carvalho Ferreira");
        assert_eq!(id.given_names, "Ana Maria");
        assert_eq!(
            id.date_of_birth.date,
            Some(time::macros::date!(1985 - 03 - 17))
        );
        assert_eq!(id.validity_end.raw, "31 02 2029");
        assert_eq!(id.validity_end.date, None);
        assert_eq!(id.mrz[0], "I<PRT999999990<ZZ95<<<<<<<<<<<");
        assert_eq!(id.photo.jp2, [0xFF, 0x4F, 0xFF, 0x51]);
        assert_eq!(id.photo.cc1_headers.len(), 80);
        let json = serde_json::to_value(&id).unwrap();
        assert_eq!(json["date_of_birth"]["date"], "1985-03-17");
        assert!(json["validity_end"]["date"].is_null());
        assert!(json.get("photo").is_none());
    }

    #[test]
    fn cc1_truncated_file_is_an_error() {
        for len in [0, 100, 1500, 1582] {
            assert!(Identity::parse_cc1(&cc1_file()[..len]).is_err(), "{len}");
        }
    }

    fn tlv(tag: u32, value: &[u8]) -> Vec<u8> {
        tlv::encode(tag, value).unwrap()
    }

    pub(crate) fn cc2_files() -> (Vec<u8>, Vec<u8>, Vec<u8>) {
        let mut inner = Vec::new();
        for tag in 0xC0..=0xD7u32 {
            if tag == 0xCE || tag == 0xCF {
                continue;
            }
            let value = match tag {
                0xC5 => "01 07 2024".to_owned(),
                0xC7 => "01 07 2034".to_owned(),
                0xCC => "29 02 2000".to_owned(),
                0xC8 => "Sá Nogueira".to_owned(),
                _ => format!("v{tag:X}"),
            };
            inner.extend(tlv(tag, value.as_bytes()));
        }
        inner.extend(tlv(0x7F49, &[0x06, 0x01, 0x00]));
        let id = tlv(0x6D, &inner);
        let mrz = tlv(0x61, &tlv(0x5F1F, "X".repeat(90).as_bytes()));
        let mut record = vec![0u8; 46];
        record.extend([0x00, 0x00, 0x00, 0x0C, 0x6A, 0x50]);
        let bio = tlv(0x7F60, &tlv(0x5F2E, &record));
        let photo = tlv(0x75, &tlv(0x7F61, &[tlv(0x02, &[1]), bio].concat()));
        (id, mrz, photo)
    }

    #[test]
    fn cc2_tagged_fields_mrz_and_photo() {
        let (id, mrz, photo) = cc2_files();
        let ident = Identity::parse_cc2(&id, &mrz, &photo).unwrap();
        assert_eq!(ident.surname, "Sá Nogueira");
        assert_eq!(ident.civilian_id, "vD0");
        assert_eq!(ident.surname_father, "vD1");
        assert_eq!(ident.given_names_mother, "vD4");
        assert_eq!(
            ident.date_of_birth.date,
            Some(time::macros::date!(2000 - 02 - 29))
        );
        assert_eq!(ident.accidental_indications, None);
        assert_eq!(ident.mrz.len(), 3);
        assert_eq!(ident.photo.jp2, [0x00, 0x00, 0x00, 0x0C, 0x6A, 0x50]);
        assert!(matches!(
            ident.card_public_key,
            Some(CardPublicKey::Ec { .. })
        ));
        // A missing mandatory field is an error naming it.
        let (_, mrz, photo) = cc2_files();
        let short = tlv(0x6D, &tlv(0xC0, b"x"));
        let err = Identity::parse_cc2(&short, &mrz, &photo).unwrap_err();
        assert!(err.to_string().contains("C1"), "{err}");
    }

    #[test]
    fn cc2_parsers_never_panic_on_truncations() {
        let (id, mrz, photo) = cc2_files();
        for n in 0..id.len() {
            let _ = Identity::parse_cc2(&id[..n], &mrz, &photo);
        }
        for n in 0..photo.len() {
            let _ = parse_dg2_photo(&photo[..n]);
        }
        for n in 0..mrz.len() {
            let _ = parse_mrz_file(&mrz[..n]);
        }
    }

    #[test]
    fn dates() {
        assert!(CardDate::parse("01 01 2020").date.is_some());
        assert!(CardDate::parse("01012020").date.is_some());
        assert!(CardDate::parse("2020-01-01").date.is_none());
        assert!(CardDate::parse("").date.is_none());
        assert!(CardDate::parse("aa bb cccc").date.is_none());
    }
}
