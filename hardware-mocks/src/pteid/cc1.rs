//! The virtual CC1 (IAS07 / GemSAFE), cards.md §A1-§A8.
//!
//! | path | contents |
//! |---|---|
//! | 3F00 (DF name = [`CC1_AID`]) | the applet |
//! | 3F00 2F00 | EF.DIR: the PKCS#15 application, AID "DF issuer", label "PORTUGAL EID", path 4F00 |
//! | 3F00 0003 | trace, 32 bytes, byte 5 = 01 (active) |
//! | 3F00 4F00 (DF name "DF issuer") 5031 / 5032 / 4401 | ODF / TokenInfo / AODF |
//! | 3F00 5F00 EF02 | ID file, 15 500 bytes ([`ID_FIELDS`], photo at 1583) |
//! | 5F00 EF05 | address, 1 200 bytes ([`ADDRESS_FIELDS`]), read after PIN 0x83 |
//! | 5F00 EF06 | SOD: `77 82 LL LL` CMS, zero-padded to 4 000 bytes |
//! | 5F00 EF07 | notepad, 1 000 bytes, updatable after PIN 0x81 |
//! | 5F00 EF08 / EF09 | signature / authentication certificate (DER, zero-padded to 2 000) |
//! | 5F00 EF0F / EF10 / EF11 | signature sub-CA / authentication sub-CA / root (same) |
//! | 5F00 EF0C / EF0D | CDF / PrKDF |
//!
//! Keys: authentication [`AUTH_KEY_REF`] (PIN 0x81), signature [`SIGN_KEY_REF`] (PIN 0x82),
//! RSA of [`PteidOptions::rsa_bits`]. The key references are not confirmed by cards.md; the
//! PrKDF gives them, as on the real card. Text fields are UTF-8 (the real encoding is not
//! confirmed either).

use openssl::pkey::{PKey, Private};

use crate::engine::{Access, Df, Ef};
use crate::pki::{self, KeySpec};

use super::pkcs15::{self, CertEntry, KeyEntry, PinEntry};
use crate::emrtd::lds::{ImageFormat, facial_blocks};

use super::{
    Assembly, CC1_AID, CC1_ATR, Generation, Identity, PIN_ADDRESS, PIN_AUTH, PIN_SIGN, PteidCard,
    PteidError, PteidOptions, assemble, cert_file, citizen_certs, padded, sha256, slots, sod,
    test_pki,
};

/// MSE SET key reference of the authentication key.
pub const AUTH_KEY_REF: u8 = 0x02;
/// MSE SET key reference of the signature key.
pub const SIGN_KEY_REF: u8 = 0x82;

/// DF name of 3F00 4F00, the PKCS#15 application: ASCII "DF issuer", as a public dump of a
/// development CC1 shows (vsmartcard PR #208), and the AID its EF.DIR entry names.
///
/// The EF.DIR entry gives the application path as `4F00`, relative to the MF, not `3F00 4F00`.
/// This matters to OpenSC 0.23: its `pteid` emulator selects the application as path `4F00` and
/// the PKCS#11 module only attaches the emulated token to an EF.DIR application whose path is
/// byte-for-byte that one (`get_fw_data` in framework-pkcs15.c). With `3F00 4F00` it created a
/// token without PINs or keys ("uninitialized").
pub const PKCS15_DF_NAME: &[u8] = b"DF issuer";
/// DF name of 3F00 5F00 (same source): ASCII "DF issues".
pub const DATA_DF_NAME: &[u8] = b"DF issues";

pub const ID_FILE_LEN: usize = 15_500;
pub const ADDRESS_FILE_LEN: usize = 1_200;
pub const SOD_FILE_LEN: usize = 4_000;
pub const NOTEPAD_LEN: usize = 1_000;
pub const TRACE_LEN: usize = 32;

/// Offset of the CBEFF block, the facial blocks and the photo in the ID file.
pub const CBEFF_OFFSET: usize = 1503;
pub const CBEFF_LEN: usize = 34;
pub const FACIAL_HEADER_OFFSET: usize = 1537;
pub const FACIAL_INFO_OFFSET: usize = 1551;
pub const IMAGE_INFO_OFFSET: usize = 1571;
pub const PHOTO_OFFSET: usize = 1583;
pub const MODULUS_OFFSET: usize = 1372;
pub const EXPONENT_OFFSET: usize = 1500;

/// ID file text fields (name, offset, length), cards.md §A3.
pub const ID_FIELDS: &[(&str, usize, usize)] = &[
    ("IssuingEntity", 0, 40),
    ("Country", 40, 80),
    ("DocumentType", 120, 34),
    ("DocumentNumber", 154, 28),
    ("DocumentNumberPAN", 182, 16),
    ("DocumentVersion", 214, 16),
    ("ValidityBeginDate", 230, 20),
    ("LocalofRequest", 250, 60),
    ("ValidityEndDate", 310, 20),
    ("Surname", 330, 120),
    ("Name", 450, 120),
    ("Gender", 570, 2),
    ("Nationality", 572, 6),
    ("DateOfBirth", 578, 20),
    ("Height", 598, 8),
    ("CivilianIdNumber", 606, 18),
    ("SurnameMother", 624, 120),
    ("GivenNameMother", 744, 120),
    ("SurnameFather", 864, 120),
    ("GivenNameFather", 984, 120),
    ("TaxNo", 1104, 18),
    ("SocialSecurityNo", 1122, 22),
    ("HealthNo", 1144, 18),
    ("AccidentalIndications", 1162, 120),
    ("Mrz1", 1282, 30),
    ("Mrz2", 1312, 30),
    ("Mrz3", 1342, 30),
];

/// The order of the ID fields in the SOD's ID hash (cards.md §A4).
pub const ID_HASH_ORDER: &[&str] = &[
    "IssuingEntity",
    "Country",
    "DocumentType",
    "DocumentNumber",
    "DocumentNumberPAN",
    "DocumentVersion",
    "ValidityBeginDate",
    "LocalofRequest",
    "ValidityEndDate",
    "Surname",
    "Name",
    "Gender",
    "Nationality",
    "DateOfBirth",
    "Height",
    "CivilianIdNumber",
    "SurnameMother",
    "GivenNameMother",
    "SurnameFather",
    "GivenNameFather",
    "AccidentalIndications",
    "TaxNo",
    "SocialSecurityNo",
    "HealthNo",
];

/// National address fields (name, offset, length) of EF05; the SOD's address hash covers them
/// trimmed, concatenated in this order.
pub const ADDRESS_FIELDS: &[(&str, usize, usize)] = &[
    ("AddressType", 0, 2),
    ("Country", 2, 4),
    ("DistrictCode", 6, 4),
    ("District", 10, 100),
    ("MunicipalityCode", 110, 8),
    ("Municipality", 118, 100),
    ("CivilParishCode", 218, 12),
    ("CivilParish", 230, 100),
    ("AbbrStreetType", 330, 20),
    ("StreetType", 350, 100),
    ("StreetName", 450, 200),
    ("AbbrBuildingType", 650, 20),
    ("BuildingType", 670, 100),
    ("DoorNo", 770, 20),
    ("Floor", 790, 40),
    ("Side", 830, 40),
    ("Place", 870, 100),
    ("Locality", 970, 100),
    ("Zip4", 1070, 8),
    ("Zip3", 1078, 6),
    ("PostalLocality", 1084, 50),
    ("AddressNumber", 1134, 12),
];

/// A field's bytes with trailing NULs removed.
pub fn trimmed(file: &[u8], offset: usize, len: usize) -> &[u8] {
    let field = file
        .get(offset..offset.saturating_add(len))
        .unwrap_or_default();
    let end = field.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    field.get(..end).unwrap_or_default()
}

fn field<'a>(table: &[(&str, usize, usize)], file: &'a [u8], name: &str) -> &'a [u8] {
    table
        .iter()
        .find(|(n, _, _)| *n == name)
        .map_or(&[][..], |&(_, o, l)| trimmed(file, o, l))
}

fn put(
    file: &mut [u8],
    offset: usize,
    len: usize,
    value: &[u8],
    name: &'static str,
) -> Result<(), PteidError> {
    if value.len() > len {
        return Err(PteidError::FieldTooLong(name));
    }
    file.get_mut(offset..offset.saturating_add(value.len()))
        .ok_or(PteidError::FieldTooLong(name))?
        .copy_from_slice(value);
    Ok(())
}

/// The ID file (EF02) of a citizen with this card key and photo.
pub fn id_file(
    identity: &Identity,
    modulus: &[u8],
    exponent: &[u8],
    photo: &[u8],
) -> Result<Vec<u8>, PteidError> {
    let mrz = identity.mrz_lines();
    let [m1, m2, m3] = &mrz;
    let values: [&str; 27] = [
        &identity.issuing_entity,
        &identity.country,
        &identity.document_type,
        &identity.document_number,
        &identity.pan,
        &identity.document_version,
        &identity.validity_begin_date,
        &identity.local_of_request,
        &identity.validity_end_date,
        &identity.surname,
        &identity.given_name,
        &identity.gender,
        &identity.nationality,
        &identity.date_of_birth,
        &identity.height,
        &identity.civilian_id,
        &identity.surname_mother,
        &identity.given_name_mother,
        &identity.surname_father,
        &identity.given_name_father,
        &identity.tax_no,
        &identity.social_security_no,
        &identity.health_no,
        &identity.accidental_indications,
        m1,
        m2,
        m3,
    ];
    let mut file = vec![0u8; ID_FILE_LEN];
    for (&(name, offset, len), value) in ID_FIELDS.iter().zip(values) {
        put(&mut file, offset, len, value.as_bytes(), name)?;
    }
    put(&mut file, MODULUS_OFFSET, 128, modulus, "card key modulus")?;
    put(&mut file, EXPONENT_OFFSET, 3, exponent, "card key exponent")?;
    // CBEFF header (content not confirmed): format owner 0101 (ISO/IEC JTC 1/SC 37), format
    // type 0008 (face image), then zeros.
    put(
        &mut file,
        CBEFF_OFFSET,
        CBEFF_LEN,
        &[0x01, 0x01, 0x00, 0x08],
        "CBEFF",
    )?;
    let (header, info, image) = facial_blocks(photo, ImageFormat::Jpeg2000, &identity.gender)?;
    put(
        &mut file,
        FACIAL_HEADER_OFFSET,
        14,
        &header,
        "facial header",
    )?;
    put(&mut file, FACIAL_INFO_OFFSET, 20, &info, "facial info")?;
    put(&mut file, IMAGE_INFO_OFFSET, 12, &image, "image info")?;
    put(
        &mut file,
        PHOTO_OFFSET,
        ID_FILE_LEN - PHOTO_OFFSET,
        photo,
        "photo",
    )?;
    Ok(file)
}

/// The address file (EF05).
pub fn address_file(identity: &Identity) -> Result<Vec<u8>, PteidError> {
    let a = &identity.address;
    let values: [&str; 22] = [
        &a.address_type,
        &a.country,
        &a.district_code,
        &a.district,
        &a.municipality_code,
        &a.municipality,
        &a.civil_parish_code,
        &a.civil_parish,
        &a.abbr_street_type,
        &a.street_type,
        &a.street_name,
        &a.abbr_building_type,
        &a.building_type,
        &a.door_number,
        &a.floor,
        &a.side,
        &a.place,
        &a.locality,
        &a.zip4,
        &a.zip3,
        &a.postal_locality,
        &a.address_number,
    ];
    let mut file = vec![0u8; ADDRESS_FILE_LEN];
    for (&(name, offset, len), value) in ADDRESS_FIELDS.iter().zip(values) {
        put(&mut file, offset, len, value.as_bytes(), name)?;
    }
    Ok(file)
}

/// SHA-256 inputs of the CC1 SOD (cards.md §A4), by data group number: 1 ID, 2 address,
/// 3 photo, 4 card key.
pub fn sod_inputs(id: &[u8], address: &[u8]) -> [(u8, Vec<u8>); 4] {
    let id_input: Vec<u8> = ID_HASH_ORDER
        .iter()
        .flat_map(|name| field(ID_FIELDS, id, name).to_vec())
        .collect();
    let address_input: Vec<u8> = ADDRESS_FIELDS
        .iter()
        .flat_map(|&(_, o, l)| trimmed(address, o, l).to_vec())
        .collect();
    let mut photo_input = id
        .get(CBEFF_OFFSET..PHOTO_OFFSET)
        .unwrap_or_default()
        .to_vec();
    photo_input.extend_from_slice(trimmed(id, PHOTO_OFFSET, ID_FILE_LEN - PHOTO_OFFSET));
    let key_input = id
        .get(MODULUS_OFFSET..MODULUS_OFFSET + 131)
        .unwrap_or_default()
        .to_vec();
    [
        (1, id_input),
        (2, address_input),
        (3, photo_input),
        (4, key_input),
    ]
}

/// The default CC1: embedded citizen, RSA-3072, no faults.
pub fn cc1_default() -> Result<PteidCard, PteidError> {
    cc1(&PteidOptions::default())
}

/// A CC1 as `options` say.
pub fn cc1(options: &PteidOptions) -> Result<PteidCard, PteidError> {
    let identity = &options.identity;
    let pki = test_pki()?;
    let rsa = KeySpec::Rsa(options.rsa_bits);
    let auth_key: PKey<Private> = pki::cached_key(rsa, slots::CC1_AUTH)?;
    let sign_key: PKey<Private> = pki::cached_key(rsa, slots::CC1_SIGN)?;
    let (auth, sign) = citizen_certs(&pki, identity, auth_key.clone(), sign_key.clone())?;

    let card_key = pki::cached_key(KeySpec::Rsa(1024), slots::CC1_CARD_KEY)?.rsa()?;
    let modulus = card_key.n().to_vec_padded(128)?;
    let exponent = card_key.e().to_vec_padded(3)?;
    let id = id_file(identity, &modulus, &exponent, super::PHOTO_JP2)?;
    let address = address_file(identity)?;
    let hashes = sod_inputs(&id, &address)
        .iter()
        .map(|(n, input)| Ok((*n, sha256(input)?)))
        .collect::<Result<Vec<_>, PteidError>>()?;
    let sod = padded(sod(&pki, hashes, options.sod_fault)?, SOD_FILE_LEN);

    let serial = identity
        .serial()
        .ok_or_else(|| PteidError::Identity("card_serial".into()))?;
    let bits = options.rsa_bits;
    let df_path = vec![0x3F, 0x00, 0x5F, 0x00];
    let cert_path = |fid: u16| {
        let mut p = df_path.clone();
        p.extend(fid.to_be_bytes());
        p
    };
    let prkdf = pkcs15::prkdf(&[
        KeyEntry {
            label: "CITIZEN AUTHENTICATION KEY",
            id: 0x45,
            auth_id: 1,
            key_reference: AUTH_KEY_REF,
            path: df_path.clone(),
            bits,
            ec: false,
            non_repudiation: false,
        },
        KeyEntry {
            label: "CITIZEN SIGNATURE KEY",
            id: 0x46,
            auth_id: 2,
            key_reference: SIGN_KEY_REF,
            path: df_path.clone(),
            bits,
            ec: false,
            non_repudiation: true,
        },
    ]);
    let cdf = pkcs15::cdf(&[
        CertEntry {
            label: "CITIZEN AUTHENTICATION CERTIFICATE",
            id: 0x45,
            authority: false,
            path: cert_path(0xEF09),
        },
        CertEntry {
            label: "CITIZEN SIGNATURE CERTIFICATE",
            id: 0x46,
            authority: false,
            path: cert_path(0xEF08),
        },
        CertEntry {
            label: "SIGNATURE SUB CA",
            id: 0x51,
            authority: true,
            path: cert_path(0xEF0F),
        },
        CertEntry {
            label: "AUTHENTICATION SUB CA",
            id: 0x52,
            authority: true,
            path: cert_path(0xEF10),
        },
        CertEntry {
            label: "ROOT CA",
            id: 0x50,
            authority: true,
            path: cert_path(0xEF11),
        },
    ]);
    let aodf = pkcs15::aodf(&[
        PinEntry {
            label: "Auth PIN",
            auth_id: 1,
            reference: PIN_AUTH,
        },
        PinEntry {
            label: "Sign PIN",
            auth_id: 2,
            reference: PIN_SIGN,
        },
        PinEntry {
            label: "Address PIN",
            auth_id: 3,
            reference: PIN_ADDRESS,
        },
    ]);
    let odf = pkcs15::odf(
        &cert_path(0xEF0D),
        &cert_path(0xEF0C),
        &[0x3F, 0x00, 0x4F, 0x00, 0x44, 0x01],
    );
    let token_info = pkcs15::token_info(&serial, "GEMALTO", "CARTAO DE CIDADAO");
    // EF.DIR as on a development CC1: the application path is `4F00`, relative to the MF
    // (see [`PKCS15_DF_NAME`]).
    let ef_dir = pkcs15::ef_dir(&[(PKCS15_DF_NAME, "PORTUGAL EID", &[0x4F, 0x00])]);
    let mut trace = vec![0u8; TRACE_LEN];
    if let Some(active) = trace.get_mut(5) {
        *active = 0x01;
    }

    let pkcs15_df = Df::new(0x4F00)
        .name(PKCS15_DF_NAME)
        .ef(Ef::new(0x5031, odf))
        .ef(Ef::new(0x5032, token_info))
        .ef(Ef::new(0x4401, aodf));
    let data_df = Df::new(0x5F00)
        .name(DATA_DF_NAME)
        .ef(Ef::new(0xEF02, id))
        .ef(Ef::new(0xEF05, address).read(Access::Pin(PIN_ADDRESS)))
        .ef(Ef::new(0xEF06, sod))
        .ef(Ef::new(0xEF07, vec![0u8; NOTEPAD_LEN]).update(Access::Pin(PIN_AUTH)))
        .ef(Ef::new(0xEF08, cert_file(sign.cert_der()?)))
        .ef(Ef::new(0xEF09, cert_file(auth.cert_der()?)))
        .ef(Ef::new(0xEF0F, cert_file(pki.sign_sub_ca.cert_der()?)))
        .ef(Ef::new(0xEF10, cert_file(pki.auth_sub_ca.cert_der()?)))
        .ef(Ef::new(0xEF11, cert_file(pki.root.cert_der()?)))
        .ef(Ef::new(0xEF0C, cdf))
        .ef(Ef::new(0xEF0D, prkdf));
    let mf = Df::mf()
        .name(CC1_AID)
        .ef(Ef::new(0x2F00, ef_dir))
        .ef(Ef::new(0x0003, trace))
        .df(pkcs15_df)
        .df(data_df);

    Ok(assemble(Assembly {
        generation: Generation::Cc1,
        atr: CC1_ATR,
        mf,
        key_refs: (AUTH_KEY_REF, SIGN_KEY_REF),
        keys: (auth_key, sign_key),
        serial,
        // Applet version (value not confirmed).
        applet_version: Some(vec![0xDF, 0x30, 0x05, b'4', b'.', b'4', b'.', b'1']),
        identity,
        pki: &pki,
        certs: (auth, sign),
    }))
}
