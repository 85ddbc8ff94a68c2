//! The virtual CC2 (IAS v5, ECC P-256), contact interface, cards.md §A1-§A7.
//!
//! | path | contents |
//! |---|---|
//! | 3F00 (DF name = [`CC2_EID_AID`]) | eID application |
//! | 3F00 2F00 | EF.DIR: the eID and national data applications |
//! | 3F00 5F00 EF02 / EF04 | authentication / signature certificate (DER, zero-padded to 2 000) |
//! | 3F00 5F00 EF0E | PrKDF (keys 0x06 auth, 0x08 sign) |
//! | 3F00 [`NATIONAL_DATA_FID`] (DF name = [`CC2_NATIONAL_DATA_AID`]) | national data application |
//! | .. 0101 | MRZ: `61 L 5F1F L <90 chars>` |
//! | .. 0102 | photo: `75` / `7F61` / `7F60` / `5F2E` ISO 19794-5 record with the JPEG 2000 image |
//! | .. 010D | ID: `6D` with private-class UTF8Strings C0..D8 and the card key `7F49` |
//! | .. 010E / 010F | DG14 (ActiveAuthenticationInfo) / DG15 (card public key) |
//! | .. 011D | SOD: `77` CMS over SHA-256 of whole files, DGs 1, 2, 13, 14, 15 |
//!
//! The national data DF's file identifier is not confirmed (select it by AID).

use openssl::bn::{BigNum, BigNumContext};
use openssl::ec::PointConversionForm;

use crate::der;
use crate::engine::{Df, Ef};
use crate::pki::{self, Curve, KeySpec};

use super::pkcs15::{self, KeyEntry};
use super::{
    Assembly, CC2_ATR, CC2_EID_AID, CC2_NATIONAL_DATA_AID, Generation, Identity, PteidCard,
    PteidError, PteidOptions, assemble, cert_file, citizen_certs, sha256, slots, sod, test_pki,
};

/// MSE SET key reference of the authentication key (cards.md §A6).
pub const AUTH_KEY_REF: u8 = 0x06;
/// MSE SET key reference of the signature key.
pub const SIGN_KEY_REF: u8 = 0x08;
/// File identifier given to the national data application DF here.
pub const NATIONAL_DATA_FID: u16 = 0x4F05;

/// DG1: `61 L 5F1F L <MRZ>`.
pub fn mrz_file(identity: &Identity) -> Vec<u8> {
    der::tlv(&[0x61], &der::tlv(&[0x5F, 0x1F], identity.mrz().as_bytes()))
}

/// DG2: the facial image (JPEG 2000) in an ISO/IEC 19794-5 record inside a biometric
/// information template, as an eMRTD's.
pub fn photo_file(identity: &Identity, photo: &[u8]) -> Result<Vec<u8>, PteidError> {
    Ok(crate::emrtd::lds::dg2(
        photo,
        crate::emrtd::lds::ImageFormat::Jpeg2000,
        &identity.gender,
    )?)
}

/// DG13 (010D): the CC2 ID layout of cards.md §A3 with the card's public key.
pub fn id_file(
    identity: &Identity,
    card_key: &openssl::ec::EcKeyRef<openssl::pkey::Private>,
) -> Result<Vec<u8>, PteidError> {
    let fields: [(u8, &str); 24] = [
        (0xC0, &identity.issuing_entity),
        (0xC1, &identity.country),
        (0xC2, &identity.document_type),
        (0xC3, &identity.document_number),
        (0xC4, &identity.document_version),
        (0xC5, &identity.validity_begin_date),
        (0xC6, &identity.local_of_request),
        (0xC7, &identity.validity_end_date),
        (0xC8, &identity.surname),
        (0xC9, &identity.given_name),
        (0xCA, &identity.gender),
        (0xCB, &identity.nationality),
        (0xCC, &identity.date_of_birth),
        (0xCD, &identity.height),
        (0xD0, &identity.civilian_id),
        (0xD1, &identity.surname_father),
        (0xD2, &identity.given_name_father),
        (0xD3, &identity.surname_mother),
        (0xD4, &identity.given_name_mother),
        (0xD5, &identity.tax_no),
        (0xD6, &identity.social_security_no),
        (0xD7, &identity.health_no),
        (0xD8, &identity.accidental_indications),
        (0x00, ""),
    ];
    let mut content = Vec::new();
    for (tag, value) in fields {
        if tag == 0 || (tag == 0xD8 && value.is_empty()) {
            continue;
        }
        content.extend(der::tlv(&[tag], value.as_bytes()));
    }
    content.extend(ec_public_key_template(card_key)?);
    Ok(der::tlv(&[0x6D], &content))
}

/// `7F49`: curve OID, then [1] p, [2] a, [3] b, [4] G, [5] n, [6] Q, [7] cofactor.
fn ec_public_key_template(
    key: &openssl::ec::EcKeyRef<openssl::pkey::Private>,
) -> Result<Vec<u8>, PteidError> {
    let group = key.group();
    let mut ctx = BigNumContext::new()?;
    let (mut p, mut a, mut b) = (BigNum::new()?, BigNum::new()?, BigNum::new()?);
    group.components_gfp(&mut p, &mut a, &mut b, &mut ctx)?;
    let mut n = BigNum::new()?;
    group.order(&mut n, &mut ctx)?;
    let mut h = BigNum::new()?;
    group.cofactor(&mut h, &mut ctx)?;
    let len = p.num_bytes();
    let generator = group
        .generator_opt()
        .ok_or_else(|| PteidError::Identity("curve without generator".into()))?
        .to_bytes(group, PointConversionForm::UNCOMPRESSED, &mut ctx)?;
    let q = key
        .public_key()
        .to_bytes(group, PointConversionForm::UNCOMPRESSED, &mut ctx)?;
    let content = [
        der::oid(&[1, 2, 840, 10045, 3, 1, 7]),
        der::tlv(&[0x81], &p.to_vec_padded(len)?),
        der::tlv(&[0x82], &a.to_vec_padded(len)?),
        der::tlv(&[0x83], &b.to_vec_padded(len)?),
        der::tlv(&[0x84], &generator),
        der::tlv(&[0x85], &n.to_vec()),
        der::tlv(&[0x86], &q),
        der::tlv(&[0x87], &h.to_vec()),
    ]
    .concat();
    Ok(der::tlv(&[0x7F, 0x49], &content))
}

/// DG14: ActiveAuthenticationInfo (ICAO 9303-11 §6.1, ECDSA plain SHA-256).
pub fn dg14() -> Result<Vec<u8>, PteidError> {
    let info = der::sequence(&[
        der::oid(&[2, 23, 136, 1, 1, 5]),
        der::integer(1),
        der::oid(&[0, 4, 0, 127, 0, 7, 1, 1, 4, 1, 3]),
    ]);
    Ok(der::tlv(&[0x6E], &der::set_of(&[info])))
}

/// The default CC2.
pub fn cc2_default() -> Result<PteidCard, PteidError> {
    cc2(&PteidOptions::default())
}

/// A CC2 as `options` say (`rsa_bits` is ignored).
pub fn cc2(options: &PteidOptions) -> Result<PteidCard, PteidError> {
    let identity = &options.identity;
    let pki = test_pki()?;
    let ec = KeySpec::Ec(Curve::P256);
    let auth_key = pki::cached_key(ec, slots::CC2_AUTH)?;
    let sign_key = pki::cached_key(ec, slots::CC2_SIGN)?;
    let card_key = pki::cached_key(ec, slots::CC2_CARD_KEY)?;
    let (auth, sign) = citizen_certs(&pki, identity, auth_key.clone(), sign_key.clone())?;

    let dg1 = mrz_file(identity);
    let dg2 = photo_file(identity, super::PHOTO_JP2)?;
    let card_ec = card_key.ec_key()?;
    let dg13 = id_file(identity, &card_ec)?;
    let dg14 = dg14()?;
    let dg15 = der::tlv(&[0x6F], &card_key.public_key_to_der()?);
    let hashes = [
        (1u8, &dg1),
        (2, &dg2),
        (13, &dg13),
        (14, &dg14),
        (15, &dg15),
    ]
    .iter()
    .map(|(n, file)| Ok((*n, sha256(file)?)))
    .collect::<Result<Vec<_>, PteidError>>()?;
    let sod = sod(&pki, hashes, options.sod_fault)?;

    let serial = identity
        .serial()
        .ok_or_else(|| PteidError::Identity("card_serial".into()))?;
    let df_path = vec![0x3F, 0x00, 0x5F, 0x00];
    let prkdf = pkcs15::prkdf(&[
        KeyEntry {
            label: "CITIZEN AUTHENTICATION KEY",
            id: 0x45,
            auth_id: 1,
            key_reference: AUTH_KEY_REF,
            path: df_path.clone(),
            bits: 256,
            ec: true,
            non_repudiation: false,
        },
        KeyEntry {
            label: "CITIZEN SIGNATURE KEY",
            id: 0x46,
            auth_id: 2,
            key_reference: SIGN_KEY_REF,
            path: df_path,
            bits: 256,
            ec: true,
            non_repudiation: true,
        },
    ]);
    let ef_dir = pkcs15::ef_dir(&[
        (CC2_EID_AID, "CARTAO DE CIDADAO", &[0x3F, 0x00]),
        (
            CC2_NATIONAL_DATA_AID,
            "NATIONAL DATA",
            &NATIONAL_DATA_FID.to_be_bytes(),
        ),
    ]);
    let eid_df = Df::new(0x5F00)
        .ef(Ef::new(0xEF02, cert_file(auth.cert_der()?)))
        .ef(Ef::new(0xEF04, cert_file(sign.cert_der()?)))
        .ef(Ef::new(0xEF0E, prkdf));
    let national = Df::new(NATIONAL_DATA_FID)
        .name(CC2_NATIONAL_DATA_AID)
        .ef(Ef::new(0x0101, dg1).sfi(0x01))
        .ef(Ef::new(0x0102, dg2).sfi(0x02))
        .ef(Ef::new(0x010D, dg13).sfi(0x0D))
        .ef(Ef::new(0x010E, dg14).sfi(0x0E))
        .ef(Ef::new(0x010F, dg15).sfi(0x0F))
        .ef(Ef::new(0x011D, sod).sfi(0x1D));
    let mf = Df::mf()
        .name(CC2_EID_AID)
        .ef(Ef::new(0x2F00, ef_dir))
        .df(eid_df)
        .df(national);
    Ok(assemble(Assembly {
        generation: Generation::Cc2,
        atr: CC2_ATR,
        mf,
        key_refs: (AUTH_KEY_REF, SIGN_KEY_REF),
        keys: (auth_key, sign_key),
        serial,
        applet_version: None,
        identity,
        pki: &pki,
        certs: (auth, sign),
    }))
}
