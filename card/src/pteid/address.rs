//! The CC1 address file `3F00 5F00 EF05`, readable after the address PIN (reference 0x83) is
//! verified. Fixed-length NUL-padded fields; the first field says whether the address is
//! national (`N`) or foreign. Layout as in the public Citizen Card middleware (address offsets
//! of the national and foreign variants; see cards.md §A7 and /tmp/coord/cpteid.md).
//!
//! CC2 keeps no address on the card (the official middleware fetches it from a government
//! service); [`PteidCard::read_address`] says so with [`Error::NotSupported`].

use serde::Serialize;

use super::identity::field;
use super::{Generation, PteidCard, files, text};
use crate::Error;

/// The address file's layout: (offset, length) of each field.
pub(crate) mod layout {
    pub(crate) const TYPE: (usize, usize) = (0, 2);
    pub(crate) const COUNTRY: (usize, usize) = (2, 4);
    // National address.
    pub(crate) const DISTRICT: (usize, usize) = (6, 4);
    pub(crate) const DISTRICT_DESC: (usize, usize) = (10, 100);
    pub(crate) const MUNICIPALITY: (usize, usize) = (110, 8);
    pub(crate) const MUNICIPALITY_DESC: (usize, usize) = (118, 100);
    pub(crate) const CIVIL_PARISH: (usize, usize) = (218, 12);
    pub(crate) const CIVIL_PARISH_DESC: (usize, usize) = (230, 100);
    pub(crate) const ABBR_STREET_TYPE: (usize, usize) = (330, 20);
    pub(crate) const STREET_TYPE: (usize, usize) = (350, 100);
    pub(crate) const STREET_NAME: (usize, usize) = (450, 200);
    pub(crate) const ABBR_BUILDING_TYPE: (usize, usize) = (650, 20);
    pub(crate) const BUILDING_TYPE: (usize, usize) = (670, 100);
    pub(crate) const DOOR_NO: (usize, usize) = (770, 20);
    pub(crate) const FLOOR: (usize, usize) = (790, 40);
    pub(crate) const SIDE: (usize, usize) = (830, 40);
    pub(crate) const PLACE: (usize, usize) = (870, 100);
    pub(crate) const LOCALITY: (usize, usize) = (970, 100);
    pub(crate) const ZIP4: (usize, usize) = (1070, 8);
    pub(crate) const ZIP3: (usize, usize) = (1078, 6);
    pub(crate) const POSTAL_LOCALITY: (usize, usize) = (1084, 50);
    pub(crate) const GEN_ADDRESS_NUM: (usize, usize) = (1134, 12);
    // Foreign address.
    pub(crate) const F_COUNTRY_DESC: (usize, usize) = (6, 100);
    pub(crate) const F_ADDRESS: (usize, usize) = (106, 300);
    pub(crate) const F_CITY: (usize, usize) = (406, 100);
    pub(crate) const F_REGION: (usize, usize) = (506, 100);
    pub(crate) const F_LOCALITY: (usize, usize) = (606, 100);
    pub(crate) const F_POSTAL_CODE: (usize, usize) = (706, 100);
    pub(crate) const F_GEN_ADDRESS_NUM: (usize, usize) = (806, 12);

    pub(crate) const NATIONAL: [(usize, usize); 22] = [
        TYPE,
        COUNTRY,
        DISTRICT,
        DISTRICT_DESC,
        MUNICIPALITY,
        MUNICIPALITY_DESC,
        CIVIL_PARISH,
        CIVIL_PARISH_DESC,
        ABBR_STREET_TYPE,
        STREET_TYPE,
        STREET_NAME,
        ABBR_BUILDING_TYPE,
        BUILDING_TYPE,
        DOOR_NO,
        FLOOR,
        SIDE,
        PLACE,
        LOCALITY,
        ZIP4,
        ZIP3,
        POSTAL_LOCALITY,
        GEN_ADDRESS_NUM,
    ];
    pub(crate) const FOREIGN: [(usize, usize); 9] = [
        TYPE,
        COUNTRY,
        F_COUNTRY_DESC,
        F_ADDRESS,
        F_CITY,
        F_REGION,
        F_LOCALITY,
        F_POSTAL_CODE,
        F_GEN_ADDRESS_NUM,
    ];
}

/// A Portuguese address, field by field.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
pub struct NationalAddress {
    pub country: String,
    pub district_code: String,
    pub district: String,
    pub municipality_code: String,
    pub municipality: String,
    pub civil_parish_code: String,
    pub civil_parish: String,
    pub street_type_abbreviation: String,
    pub street_type: String,
    pub street_name: String,
    pub building_type_abbreviation: String,
    pub building_type: String,
    pub door_number: String,
    pub floor: String,
    pub side: String,
    pub place: String,
    pub locality: String,
    pub zip4: String,
    pub zip3: String,
    pub postal_locality: String,
    pub generated_address_code: String,
}

/// An address abroad.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
pub struct ForeignAddress {
    pub country: String,
    pub country_description: String,
    pub address: String,
    pub city: String,
    pub region: String,
    pub locality: String,
    pub postal_code: String,
    pub generated_address_code: String,
}

/// The address file's contents.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Address {
    National(Box<NationalAddress>),
    Foreign(Box<ForeignAddress>),
}

/// The file as read, kept for the SOD check (cards.md §A4: hash over the trimmed fields).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct AddressFile {
    pub address: Address,
    pub(crate) raw: Vec<u8>,
}

impl AddressFile {
    /// Parses the CC1 address file.
    pub fn parse(file: &[u8]) -> Result<AddressFile, Error> {
        const NAME: &str = "address file";
        let t = |f: (usize, usize)| field(file, f, NAME).map(text);
        let kind = t(layout::TYPE)?;
        let address = if kind == "N" {
            Address::National(Box::new(NationalAddress {
                country: t(layout::COUNTRY)?,
                district_code: t(layout::DISTRICT)?,
                district: t(layout::DISTRICT_DESC)?,
                municipality_code: t(layout::MUNICIPALITY)?,
                municipality: t(layout::MUNICIPALITY_DESC)?,
                civil_parish_code: t(layout::CIVIL_PARISH)?,
                civil_parish: t(layout::CIVIL_PARISH_DESC)?,
                street_type_abbreviation: t(layout::ABBR_STREET_TYPE)?,
                street_type: t(layout::STREET_TYPE)?,
                street_name: t(layout::STREET_NAME)?,
                building_type_abbreviation: t(layout::ABBR_BUILDING_TYPE)?,
                building_type: t(layout::BUILDING_TYPE)?,
                door_number: t(layout::DOOR_NO)?,
                floor: t(layout::FLOOR)?,
                side: t(layout::SIDE)?,
                place: t(layout::PLACE)?,
                locality: t(layout::LOCALITY)?,
                zip4: t(layout::ZIP4)?,
                zip3: t(layout::ZIP3)?,
                postal_locality: t(layout::POSTAL_LOCALITY)?,
                generated_address_code: t(layout::GEN_ADDRESS_NUM)?,
            }))
        } else if kind == "I" || kind == "F" {
            Address::Foreign(Box::new(ForeignAddress {
                country: t(layout::COUNTRY)?,
                country_description: t(layout::F_COUNTRY_DESC)?,
                address: t(layout::F_ADDRESS)?,
                city: t(layout::F_CITY)?,
                region: t(layout::F_REGION)?,
                locality: t(layout::F_LOCALITY)?,
                postal_code: t(layout::F_POSTAL_CODE)?,
                generated_address_code: t(layout::F_GEN_ADDRESS_NUM)?,
            }))
        } else {
            return Err(Error::MalformedCardData {
                file: NAME,
                reason: format!("unknown address type {kind:?}"),
            });
        };
        Ok(AddressFile {
            address,
            raw: file.to_vec(),
        })
    }

    /// The concatenated trimmed fields, in file order (what the CC1 SOD hashes as data group 2).
    pub(crate) fn sod_bytes(&self) -> Vec<u8> {
        let fields: &[(usize, usize)] = match self.address {
            Address::National(_) => &layout::NATIONAL,
            Address::Foreign(_) => &layout::FOREIGN,
        };
        let mut out = Vec::new();
        for &(offset, len) in fields {
            if let Some(bytes) = offset
                .checked_add(len)
                .and_then(|end| self.raw.get(offset..end))
            {
                out.extend_from_slice(super::trim_nul(bytes));
            }
        }
        out
    }
}

impl PteidCard<'_> {
    /// Reads the CC1 address file. The address PIN (0x83) must have been verified in this
    /// session ([`PteidCard::verify_pin`]); otherwise [`Error::PinNotVerified`].
    pub fn read_address(&mut self) -> Result<AddressFile, Error> {
        match self.generation {
            Generation::Cc1 => {
                let file = self.read_address_raw()?;
                AddressFile::parse(&file)
            }
            Generation::Cc2 => Err(Error::NotSupported("the CC2 keeps no address on the card")),
        }
    }

    fn read_address_raw(&mut self) -> Result<Vec<u8>, Error> {
        match self.read_file(files::CC1_ADDRESS) {
            Err(Error::Status {
                status: eid_protocols::Status::SecurityStatusNotSatisfied,
                ..
            }) => Err(Error::PinNotVerified),
            other => other?.ok_or(Error::MalformedCardData {
                file: "address file",
                reason: "the card has no such file".to_owned(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    fn put(f: &mut [u8], (o, _): (usize, usize), v: &str) {
        f[o..o + v.len()].copy_from_slice(v.as_bytes());
    }

    #[test]
    fn national_address_fields() {
        let mut f = vec![0u8; 1146];
        put(&mut f, layout::TYPE, "N");
        put(&mut f, layout::COUNTRY, "PT");
        put(&mut f, layout::DISTRICT_DESC, "Lisboa");
        put(&mut f, layout::STREET_NAME, "Rua Augusta");
        put(&mut f, layout::DOOR_NO, "100");
        put(&mut f, layout::ZIP4, "1100");
        put(&mut f, layout::ZIP3, "053");
        put(&mut f, layout::GEN_ADDRESS_NUM, "123456789012");
        let a = AddressFile::parse(&f).unwrap();
        let Address::National(n) = &a.address else {
            panic!()
        };
        assert_eq!(n.district, "Lisboa");
        assert_eq!(n.street_name, "Rua Augusta");
        assert_eq!(n.zip4, "1100");
        assert_eq!(n.generated_address_code, "123456789012");
        assert_eq!(a.sod_bytes(), b"NPTLisboaRua Augusta1001100053123456789012");
        assert!(AddressFile::parse(&f[..1000]).is_err());
    }

    #[test]
    fn foreign_address_and_unknown_type() {
        let mut f = vec![0u8; 1146];
        put(&mut f, layout::TYPE, "I");
        put(&mut f, layout::COUNTRY, "FR");
        put(&mut f, layout::F_CITY, "Paris");
        let a = AddressFile::parse(&f).unwrap();
        assert!(matches!(&a.address, Address::Foreign(x) if x.city == "Paris"));
        put(&mut f, layout::TYPE, "Q");
        assert!(AddressFile::parse(&f).is_err());
    }
}
