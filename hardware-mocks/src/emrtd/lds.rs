//! Encoders for the files of a virtual eMRTD: the LDS1 data groups and EF.COM (ICAO 9303-10
//! §4.6-4.7), the SecurityInfos of EF.CardAccess, EF.CardSecurity and DG14 (ICAO 9303-11 §9.2,
//! BSI TR-03110-3 A.1), the LDSSecurityObject of EF.SOD (9303-10 §4.6.2) and the ISO/IEC 19794-5
//! facial record of DG2.
//!
//! Mock-side writers only; the terminal-side parsers are `eid_protocols::lds` and
//! `eid_protocols::pa`, which the tests use to read back what is written here.

use openssl::hash::{MessageDigest, hash};
use thiserror::Error;

use super::data::Document;
use crate::der;

/// Object identifiers the files use, as arcs.
pub mod oid {
    /// id-PK-ECDH (TR-03110-3 A.1.1.2).
    pub const PK_ECDH: [u64; 10] = [0, 4, 0, 127, 0, 7, 2, 2, 1, 2];
    /// id-CA-ECDH-3DES-CBC-CBC.
    pub const CA_ECDH_3DES: [u64; 11] = [0, 4, 0, 127, 0, 7, 2, 2, 3, 2, 1];
    /// id-CA-ECDH-AES-CBC-CMAC-128.
    pub const CA_ECDH_AES_128: [u64; 11] = [0, 4, 0, 127, 0, 7, 2, 2, 3, 2, 2];
    /// id-CA-ECDH-AES-CBC-CMAC-256.
    pub const CA_ECDH_AES_256: [u64; 11] = [0, 4, 0, 127, 0, 7, 2, 2, 3, 2, 4];
    /// id-PACE-ECDH-GM-AES-CBC-CMAC-128.
    pub const PACE_ECDH_GM_AES_128: [u64; 11] = [0, 4, 0, 127, 0, 7, 2, 2, 4, 2, 2];
    /// id-PACE-ECDH-GM-AES-CBC-CMAC-256.
    pub const PACE_ECDH_GM_AES_256: [u64; 11] = [0, 4, 0, 127, 0, 7, 2, 2, 4, 2, 4];
    /// id-PACE-ECDH-CAM-AES-CBC-CMAC-256.
    pub const PACE_ECDH_CAM_AES_256: [u64; 11] = [0, 4, 0, 127, 0, 7, 2, 2, 4, 6, 4];
    /// id-SecurityObject, eContentType of EF.CardSecurity: 0.4.0.127.0.7.3.2.1.
    pub const SECURITY_OBJECT: [u64; 9] = [0, 4, 0, 127, 0, 7, 3, 2, 1];
    /// id-icao-mrtd-security-aaProtocolObject (ICAO 9303-11 §6.1).
    pub const AA_PROTOCOL: [u64; 6] = [2, 23, 136, 1, 1, 5];
    /// id-icao-mrtd-security-ldsSecurityObject, eContentType of EF.SOD.
    pub const LDS_SECURITY_OBJECT: [u64; 6] = [2, 23, 136, 1, 1, 1];
    /// id-icao-cscaMasterList, eContentType of a CSCA master list.
    pub const CSCA_MASTER_LIST: [u64; 6] = [2, 23, 136, 1, 1, 2];
    /// id-sha256.
    pub const SHA256: [u64; 9] = [2, 16, 840, 1, 101, 3, 4, 2, 1];
    /// ecdsa-with-SHA256.
    pub const ECDSA_WITH_SHA256: [u64; 7] = [1, 2, 840, 10045, 4, 3, 2];
}

/// Standardized domain parameter identifiers (ICAO 9303-11 §9.5.1, table 6).
pub mod param_id {
    pub const P256: u64 = 12;
    pub const BRAINPOOL_P256R1: u64 = 13;
    pub const BRAINPOOL_P384R1: u64 = 16;
}

/// Why a file could not be built.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum LdsBuildError {
    /// The face image is neither a JPEG nor a JPEG 2000 file whose dimensions we can read.
    #[error("face image: {0}")]
    Image(&'static str),
    #[error("hashing failed: {0}")]
    Crypto(#[from] openssl::error::ErrorStack),
}

/// EF.COM (`60`): LDS version `0107`, Unicode version `040000`, and the tags of the data groups
/// present (ICAO 9303-10 §4.6.1).
pub fn ef_com(dg_tags: &[u8]) -> Vec<u8> {
    der::constructed(
        &[0x60],
        &[
            &der::tlv(&[0x5F, 0x01], b"0107"),
            &der::tlv(&[0x5F, 0x36], b"040000"),
            &der::tlv(&[0x5C], dg_tags),
        ],
    )
}

/// The EF.COM tag of a data group (`61` DG1 ... `6F` DG15), 9303-10 §4.6.1 table 35.
pub fn dg_tag(number: u8) -> Option<u8> {
    match number {
        1 => Some(0x61),
        2 => Some(0x75),
        3 => Some(0x63),
        4 => Some(0x76),
        5 => Some(0x65),
        6 => Some(0x66),
        7 => Some(0x67),
        8 => Some(0x68),
        9 => Some(0x69),
        10 => Some(0x6A),
        11 => Some(0x6B),
        12 => Some(0x6C),
        13 => Some(0x6D),
        14 => Some(0x6E),
        15 => Some(0x6F),
        16 => Some(0x70),
        _ => None,
    }
}

/// DG1 (`61` { `5F1F` MRZ }), 9303-10 §4.7.1.
pub fn dg1(document: &Document) -> Vec<u8> {
    der::constructed(
        &[0x61],
        &[&der::tlv(&[0x5F, 0x1F], document.mrz().as_bytes())],
    )
}

/// The encoding of a face image.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ImageFormat {
    Jpeg,
    Jpeg2000,
}

/// Gender of an ISO/IEC 19794-5 facial record from the MRZ sex (`M` 1, `F` 2, else 0).
fn gender_code(sex: &str) -> u8 {
    match sex {
        "M" => 1,
        "F" => 2,
        _ => 0,
    }
}

/// General header, facial information and image information of a facial record.
pub type FacialBlocks = ([u8; 14], [u8; 20], [u8; 12]);

/// The three ISO/IEC 19794-5:2005 blocks before the image data of a record with one
/// full-frontal image and no feature points (§5.4-5.7): general header (14 bytes), facial
/// information (20), image information (12). Width and height come from the image itself.
pub fn facial_blocks(
    image: &[u8],
    format: ImageFormat,
    sex: &str,
) -> Result<FacialBlocks, LdsBuildError> {
    let (width, height) = image_dimensions(image, format)?;
    let too_large = || LdsBuildError::Image("too large");
    let block_len = u32::try_from(20 + 12 + image.len()).map_err(|_| too_large())?;
    let record_len = block_len.checked_add(14).ok_or_else(too_large)?;
    let mut header = [0u8; 14];
    let header_bytes = [
        &b"FAC\0"[..],
        b"010\0",
        &record_len.to_be_bytes(),
        &1u16.to_be_bytes(),
    ];
    for (slot, b) in header.iter_mut().zip(header_bytes.concat()) {
        *slot = b;
    }
    let mut info = [0u8; 20];
    let info_bytes = [
        &block_len.to_be_bytes()[..],
        &0u16.to_be_bytes(), // feature points
        &[gender_code(sex)],
        &[0, 0],    // eye and hair colour unspecified
        &[0, 0, 0], // property mask
        &[0, 0],    // expression unspecified
        &[0, 0, 0], // pose angle yaw, pitch, roll
        &[0, 0, 0], // pose angle uncertainty
    ];
    for (slot, b) in info.iter_mut().zip(info_bytes.concat()) {
        *slot = b;
    }
    let mut image_info = [0u8; 12];
    let [w0, w1] = width.to_be_bytes();
    let [h0, h1] = height.to_be_bytes();
    let kind = match format {
        ImageFormat::Jpeg => 0x00,
        ImageFormat::Jpeg2000 => 0x01,
    };
    // Full frontal, data type, width, height, 24-bit RGB, static photograph from a digital
    // still camera, device type 0, quality 0.
    let image_bytes = [0x01, kind, w0, w1, h0, h1, 0x01, 0x02, 0, 0, 0, 0];
    for (slot, b) in image_info.iter_mut().zip(image_bytes) {
        *slot = b;
    }
    Ok((header, info, image_info))
}

/// An ISO/IEC 19794-5:2005 facial record: [`facial_blocks`], then the image data.
pub fn facial_record(
    image: &[u8],
    format: ImageFormat,
    sex: &str,
) -> Result<Vec<u8>, LdsBuildError> {
    let (header, info, image_info) = facial_blocks(image, format, sex)?;
    Ok([&header[..], &info, &image_info, image].concat())
}

/// DG2 (`75` { `7F61` { `02` count, `7F60` { `A1` biometric header, `5F2E` facial record } } }),
/// 9303-10 §4.7.2 with the ISO/IEC 7816-11 biometric header template.
pub fn dg2(image: &[u8], format: ImageFormat, sex: &str) -> Result<Vec<u8>, LdsBuildError> {
    let record = facial_record(image, format, sex)?;
    let header = der::constructed(
        &[0xA1],
        &[
            &der::tlv(&[0x80], &[0x01, 0x01]), // ICAO header version
            &der::tlv(&[0x81], &[0x02]),       // biometric type: facial features
            &der::tlv(&[0x87], &[0x01, 0x01]), // format owner: ISO/IEC JTC 1/SC 37
            &der::tlv(&[0x88], &[0x00, 0x08]), // format type: ISO/IEC 19794-5
        ],
    );
    let bit = der::constructed(&[0x7F, 0x60], &[&header, &der::tlv(&[0x5F, 0x2E], &record)]);
    let group = der::constructed(&[0x7F, 0x61], &[&der::tlv(&[0x02], &[0x01]), &bit]);
    Ok(der::tlv(&[0x75], &group))
}

/// DG11 additional personal details (`6B`), 9303-10 §4.7.11: full name, full date of birth,
/// place of birth, permanent address.
pub fn dg11(document: &Document) -> Vec<u8> {
    let name = format!(
        "{}<<{}",
        document.surname.replace(' ', "<"),
        document.given_names.replace(' ', "<")
    );
    der::constructed(
        &[0x6B],
        &[
            &der::tlv(&[0x5C], &[0x5F, 0x0E, 0x5F, 0x2B, 0x5F, 0x11, 0x5F, 0x42]),
            &der::tlv(&[0x5F, 0x0E], name.as_bytes()),
            &der::tlv(&[0x5F, 0x2B], document.full_date_of_birth.as_bytes()),
            &der::tlv(&[0x5F, 0x11], document.place_of_birth.as_bytes()),
            &der::tlv(&[0x5F, 0x42], document.address.as_bytes()),
        ],
    )
}

/// DG12 additional document details (`6C`), 9303-10 §4.7.12: issuing authority, date of issue.
pub fn dg12(document: &Document) -> Vec<u8> {
    der::constructed(
        &[0x6C],
        &[
            &der::tlv(&[0x5C], &[0x5F, 0x19, 0x5F, 0x26]),
            &der::tlv(&[0x5F, 0x19], document.issuing_authority.as_bytes()),
            &der::tlv(&[0x5F, 0x26], document.date_of_issue.as_bytes()),
        ],
    )
}

/// PACEInfo (9303-11 §9.2.1): protocol, version 2, standardized domain parameter id.
pub fn pace_info(protocol: &[u64], parameter_id: u64) -> Vec<u8> {
    der::sequence(&[
        &der::oid(protocol),
        &der::integer(2),
        &der::integer(parameter_id),
    ])
}

/// ChipAuthenticationInfo (9303-11 §9.2.5): protocol, version 1, optional key id.
pub fn ca_info(protocol: &[u64], key_id: Option<u64>) -> Vec<u8> {
    match key_id {
        Some(id) => der::sequence(&[&der::oid(protocol), &der::integer(1), &der::integer(id)]),
        None => der::sequence(&[&der::oid(protocol), &der::integer(1)]),
    }
}

/// ChipAuthenticationPublicKeyInfo (9303-11 §9.2.6): id-PK-ECDH, the key's
/// SubjectPublicKeyInfo, optional key id.
pub fn ca_public_key_info(spki: &[u8], key_id: Option<u64>) -> Vec<u8> {
    match key_id {
        Some(id) => der::sequence(&[&der::oid(&oid::PK_ECDH), spki, &der::integer(id)][..]),
        None => der::sequence(&[&der::oid(&oid::PK_ECDH), spki][..]),
    }
}

/// ActiveAuthenticationInfo (9303-11 §9.2.7) for ECDSA Active Authentication: version 1 and the
/// signature algorithm (ecdsa-with-SHA256 here).
pub fn aa_info() -> Vec<u8> {
    der::sequence(&[
        &der::oid(&oid::AA_PROTOCOL),
        &der::integer(1),
        &der::oid(&oid::ECDSA_WITH_SHA256),
    ])
}

/// SecurityInfos: the SET OF the given SecurityInfo encodings (EF.CardAccess, 9303-11 §9.2).
pub fn security_infos(infos: &[Vec<u8>]) -> Vec<u8> {
    der::set_of(infos)
}

/// DG14 (`6E` { SecurityInfos }), 9303-10 §4.7.14.
pub fn dg14(infos: &[Vec<u8>]) -> Vec<u8> {
    der::tlv(&[0x6E], &security_infos(infos))
}

/// DG15 (`6F` { SubjectPublicKeyInfo }), 9303-10 §4.7.15.
pub fn dg15(spki: &[u8]) -> Vec<u8> {
    der::tlv(&[0x6F], spki)
}

/// SHA-256 of each data group file, complete (tag included), as EF.SOD lists them.
pub fn dg_hashes(groups: &[(u8, &[u8])]) -> Result<Vec<(u8, Vec<u8>)>, LdsBuildError> {
    groups
        .iter()
        .map(|&(number, bytes)| Ok((number, hash(MessageDigest::sha256(), bytes)?.to_vec())))
        .collect()
}

/// Which LDSSecurityObject: version 0 (LDS 1.7, also the Citizen Card CC1's) has no
/// LDSVersionInfo; version 1 (LDS 1.8) carries it, here `0107` / `040000`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum LdsSoVersion {
    V0,
    V1,
}

/// LDSSecurityObject (9303-10 §4.6.2.2): `hash_algorithm` is the DER AlgorithmIdentifier of the
/// hashes, `hashes` the (data group number, hash) pairs.
pub fn lds_security_object(
    version: LdsSoVersion,
    hash_algorithm: &[u8],
    hashes: &[(u8, Vec<u8>)],
) -> Vec<u8> {
    let entries: Vec<Vec<u8>> = hashes
        .iter()
        .map(|(number, digest)| {
            der::sequence(&[
                &der::integer(u64::from(*number)),
                &der::octet_string(digest),
            ])
        })
        .collect();
    let mut parts = vec![
        der::integer(match version {
            LdsSoVersion::V0 => 0,
            LdsSoVersion::V1 => 1,
        }),
        hash_algorithm.to_vec(),
        der::sequence(&entries),
    ];
    if version == LdsSoVersion::V1 {
        parts.push(der::sequence(&[
            &der::printable_string("0107"),
            &der::printable_string("040000"),
        ]));
    }
    der::sequence(&parts)
}

/// EF.SOD: `77` around the CMS ContentInfo (9303-10 §4.6.2).
pub fn ef_sod(content_info: &[u8]) -> Vec<u8> {
    der::tlv(&[0x77], content_info)
}

/// Width and height of a JPEG (from its SOFn segment) or JPEG 2000 image (from the `ihdr` box
/// of a JP2 file, or the SIZ segment of a bare codestream).
pub fn image_dimensions(image: &[u8], format: ImageFormat) -> Result<(u16, u16), LdsBuildError> {
    match format {
        ImageFormat::Jpeg => jpeg_dimensions(image),
        ImageFormat::Jpeg2000 => jp2_dimensions(image),
    }
    .ok_or(LdsBuildError::Image("dimensions not found"))
}

fn be16(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(*bytes.get(at..)?.first_chunk::<2>()?))
}

fn be32(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(*bytes.get(at..)?.first_chunk::<4>()?))
}

fn jpeg_dimensions(image: &[u8]) -> Option<(u16, u16)> {
    if image.get(..2)? != [0xFF, 0xD8] {
        return None;
    }
    let mut pos = 2usize;
    loop {
        if *image.get(pos)? != 0xFF {
            return None;
        }
        let marker = *image.get(pos + 1)?;
        match marker {
            0xFF => {
                pos += 1;
                continue;
            }
            0xD0..=0xD9 | 0x01 => {
                pos += 2;
                continue;
            }
            _ => {}
        }
        let len = usize::from(be16(image, pos + 2)?);
        if matches!(marker, 0xC0..=0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF) {
            let height = be16(image, pos + 5)?;
            let width = be16(image, pos + 7)?;
            return Some((width, height));
        }
        pos = pos.checked_add(2)?.checked_add(len)?;
    }
}

fn jp2_dimensions(image: &[u8]) -> Option<(u16, u16)> {
    // A bare codestream: SOC then SIZ (Lsiz, Rsiz, Xsiz, Ysiz, XOsiz, YOsiz).
    if image.get(..4)? == [0xFF, 0x4F, 0xFF, 0x51] {
        let x = be32(image, 8)?.checked_sub(be32(image, 16)?)?;
        let y = be32(image, 12)?.checked_sub(be32(image, 20)?)?;
        return Some((u16::try_from(x).ok()?, u16::try_from(y).ok()?));
    }
    // A JP2 file: find the ihdr box (inside jp2h) by walking the boxes, descending into jp2h.
    let mut pos = 0usize;
    let mut end = image.len();
    while pos < end {
        let len = be32(image, pos)? as usize;
        let kind = image.get(pos + 4..pos + 8)?;
        let (header, len) = match len {
            1 => (
                16,
                usize::try_from(u64::from_be_bytes(
                    *image.get(pos + 8..)?.first_chunk::<8>()?,
                ))
                .ok()?,
            ),
            0 => (8, end - pos),
            n => (8, n),
        };
        if len < header {
            return None;
        }
        match kind {
            b"jp2h" => {
                end = pos.checked_add(len)?.min(image.len());
                pos += header;
            }
            b"ihdr" => {
                let height = be32(image, pos + header)?;
                let width = be32(image, pos + header + 4)?;
                return Some((u16::try_from(width).ok()?, u16::try_from(height).ok()?));
            }
            _ => pos = pos.checked_add(len)?,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ef_com_matches_appendix_d_prefix() {
        // Appendix D.4 decrypts EF.COM to 60 14 5F01 04 "0106" 5F36 06 "040000" 5C 02 61 75.
        let com = ef_com(&[0x61, 0x75]);
        assert_eq!(hex::encode_upper(&com[..5]), "60145F0104");
        assert_eq!(&com[5..9], b"0107");
        assert_eq!(hex::encode_upper(&com[9..]), "5F36063034303030305C026175");
    }

    proptest::proptest! {
        #[test]
        fn image_dimensions_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..64)) {
            let _ = image_dimensions(&bytes, ImageFormat::Jpeg);
            let _ = image_dimensions(&bytes, ImageFormat::Jpeg2000);
            let mut jp2 = b"\0\0\0\x0cjP  \r\n\x87\n".to_vec();
            jp2.extend_from_slice(&bytes);
            let _ = image_dimensions(&jp2, ImageFormat::Jpeg2000);
            let mut jpeg = vec![0xFF, 0xD8];
            jpeg.extend_from_slice(&bytes);
            let _ = image_dimensions(&jpeg, ImageFormat::Jpeg);
        }
    }

    #[test]
    fn jp2_dimensions_come_from_ihdr() {
        assert_eq!(
            image_dimensions(super::super::profile::FACE_JP2, ImageFormat::Jpeg2000).unwrap(),
            (300, 400)
        );
    }

    #[test]
    fn jpeg_dimensions_come_from_sof() {
        let jpeg = [
            0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x04, 0x00, 0x00, 0xFF, 0xC0, 0x00, 0x0B, 0x08, 0x01,
            0xE0, 0x01, 0x68, 0x03,
        ];
        assert_eq!(
            image_dimensions(&jpeg, ImageFormat::Jpeg).unwrap(),
            (360, 480)
        );
        assert!(image_dimensions(&jpeg[..10], ImageFormat::Jpeg).is_err());
        assert!(image_dimensions(b"nope", ImageFormat::Jpeg2000).is_err());
    }

    #[test]
    fn facial_record_header_sizes() {
        let jpeg = [
            0xFF, 0xD8, 0xFF, 0xC0, 0x00, 0x0B, 0x08, 0x00, 0x20, 0x00, 0x10, 0x03,
        ];
        let record = facial_record(&jpeg, ImageFormat::Jpeg, "F").unwrap();
        assert_eq!(record.len(), 14 + 20 + 12 + jpeg.len());
        assert_eq!(&record[..4], b"FAC\0");
        assert_eq!(
            u32::from_be_bytes(record[8..12].try_into().unwrap()) as usize,
            record.len()
        );
        assert_eq!(record[20], 2);
        assert_eq!(&record[14 + 20 + 12..], &jpeg);
        // width 16, height 32
        assert_eq!(&record[36..40], &[0, 16, 0, 32]);
    }
}
