//! LDS files of ICAO 9303-10 (EF.COM, data groups, SecurityInfos).
//!
//! BER-TLV framing (the data group templates) is read with the bounded one-level reader of
//! [`crate::tlv`]; ASN.1 content (SecurityInfos, SubjectPublicKeyInfo) with the small strict DER
//! reader of [`der`]. Neither recurses, and nothing allocates in proportion to a length field
//! before checking that the bytes are there.

pub(crate) mod der;

use std::fmt;

use openssl::pkey::{PKey, Public};
use serde::{Serialize, Serializer};
use thiserror::Error;

pub use der::DerError;

use crate::mrz::{Mrz, MrzError};
use crate::pa::HashAlgorithm;
use crate::tlv::{self, Tlv, TlvError};

/// Why an LDS file could not be read. Whose fault: the chip (or whoever wrote the file).
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum LdsError {
    #[error("malformed BER-TLV: {0}")]
    Tlv(#[from] TlvError),
    #[error("malformed DER: {0}")]
    Der(#[from] DerError),
    #[error("expected tag {expected:#X}, found {found:#X}")]
    WrongTag { expected: u32, found: u32 },
    #[error("{0} is missing")]
    Missing(&'static str),
    #[error("{0} is malformed")]
    Malformed(&'static str),
    #[error("MRZ: {0}")]
    Mrz(#[from] MrzError),
    #[error("public key not accepted by OpenSSL: {0}")]
    PublicKey(String),
    #[error("{what}: more than {limit} entries")]
    TooMany { what: &'static str, limit: usize },
}

/// An OBJECT IDENTIFIER, kept as its DER content octets (what MSE:Set AT tag 80 carries) and
/// shown in dotted form.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Oid(Vec<u8>);

impl Oid {
    /// From DER content octets (without tag and length); `None` when malformed.
    pub fn from_der_content(content: &[u8]) -> Option<Self> {
        der::oid_to_string(content).map(|_| Self(content.to_vec()))
    }
    /// From dotted notation (`"2.23.136.1.1.1"`); `None` when malformed.
    pub fn from_dotted(dotted: &str) -> Option<Self> {
        let arcs: Vec<u64> = dotted
            .split('.')
            .map(|a| a.parse::<u64>().ok())
            .collect::<Option<_>>()?;
        let (&a, rest) = arcs.split_first()?;
        let (&b, rest) = rest.split_first()?;
        if a > 2 || (a < 2 && b > 39) {
            return None;
        }
        let mut out = Vec::new();
        let mut push = |mut v: u64| {
            let mut tmp = vec![(v & 0x7F) as u8];
            v >>= 7;
            while v > 0 {
                tmp.push((v & 0x7F) as u8 | 0x80);
                v >>= 7;
            }
            out.extend(tmp.iter().rev());
        };
        push(a.checked_mul(40)?.checked_add(b)?);
        for &arc in rest {
            push(arc);
        }
        Some(Self(out))
    }
    /// The DER content octets.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
    /// The full DER encoding (`06 len content`).
    pub fn to_der(&self) -> Vec<u8> {
        der::encode(0x06, &self.0)
    }
    /// Dotted notation.
    pub fn dotted(&self) -> String {
        der::oid_to_string(&self.0).unwrap_or_default()
    }
    fn from_element(e: der::Element<'_>, what: &'static str) -> Result<Self, DerError> {
        let e = e.expect(der::OID, what)?;
        Self::from_der_content(e.value).ok_or(DerError::Malformed(what))
    }
}

impl fmt::Display for Oid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.dotted())
    }
}
impl fmt::Debug for Oid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Oid({})", self.dotted())
    }
}
impl Serialize for Oid {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.dotted())
    }
}

/// The data groups of LDS 1 (ICAO 9303-10 §4.6.1 table 33): number, tag, file identifier, SFI.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(into = "u8")]
pub struct DataGroup(u8);

impl From<DataGroup> for u8 {
    fn from(dg: DataGroup) -> u8 {
        dg.0
    }
}

const DG_TAGS: [u8; 16] = [
    0x61, 0x75, 0x63, 0x76, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6A, 0x6B, 0x6C, 0x6D, 0x6E, 0x6F, 0x70,
];

impl DataGroup {
    pub const DG1: Self = Self(1);
    pub const DG2: Self = Self(2);
    pub const DG3: Self = Self(3);
    pub const DG11: Self = Self(11);
    pub const DG12: Self = Self(12);
    pub const DG13: Self = Self(13);
    pub const DG14: Self = Self(14);
    pub const DG15: Self = Self(15);

    /// DG1 to DG16.
    pub fn new(number: u8) -> Option<Self> {
        (1..=16).contains(&number).then_some(Self(number))
    }
    /// All sixteen data groups.
    pub fn all() -> impl Iterator<Item = Self> {
        (1..=16).map(Self)
    }
    /// The data group for a template tag (`0x61` is DG1, `0x75` DG2 ...).
    pub fn from_tag(tag: u32) -> Option<Self> {
        let pos = DG_TAGS.iter().position(|&t| u32::from(t) == tag)?;
        u8::try_from(pos + 1).ok().map(Self)
    }
    /// The data group for a file identifier (`0x0101`..`0x0110`).
    pub fn from_fid(fid: u16) -> Option<Self> {
        match fid {
            0x0101..=0x0110 => u8::try_from(fid - 0x0100).ok().map(Self),
            _ => None,
        }
    }
    /// 1 to 16.
    pub fn number(self) -> u8 {
        self.0
    }
    /// The template tag of the file.
    pub fn tag(self) -> u8 {
        DG_TAGS
            .get(usize::from(self.0).saturating_sub(1))
            .copied()
            .unwrap_or(0)
    }
    /// The file identifier (`0x0100 + n`).
    pub fn fid(self) -> u16 {
        0x0100 + u16::from(self.0)
    }
    /// The short file identifier (`n`).
    pub fn sfi(self) -> u8 {
        self.0
    }
}

impl fmt::Display for DataGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DG{}", self.0)
    }
}

/// EF.COM: FID 011E, SFI 1E, tag 60.
pub const EF_COM_FID: u16 = 0x011E;
/// EF.COM short file identifier.
pub const EF_COM_SFI: u8 = 0x1E;
/// EF.SOD: FID 011D, SFI 1D, tag 77.
pub const EF_SOD_FID: u16 = 0x011D;
/// EF.SOD short file identifier.
pub const EF_SOD_SFI: u8 = 0x1D;
/// EF.CardAccess (under the MF): FID 011C, SFI 1C.
pub const EF_CARD_ACCESS_FID: u16 = 0x011C;
/// EF.CardAccess short file identifier.
pub const EF_CARD_ACCESS_SFI: u8 = 0x1C;
/// EF.CardSecurity (under the MF): FID 011D.
pub const EF_CARD_SECURITY_FID: u16 = 0x011D;
/// The LDS1 eMRTD application (ICAO 9303-10 §3.1).
pub const LDS1_AID: [u8; 7] = [0xA0, 0x00, 0x00, 0x02, 0x47, 0x10, 0x01];

/// Longest list we accept for any repeated element (data groups, faces, names, SecurityInfos).
const MAX_ENTRIES: usize = 64;

fn outer<'a>(file: &'a [u8], tag: u32) -> Result<Tlv<'a>, LdsError> {
    let t = tlv::parse_single(file)?;
    if t.tag() != tag {
        return Err(LdsError::WrongTag {
            expected: tag,
            found: t.tag(),
        });
    }
    Ok(t)
}

fn utf8(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// EF.COM (ICAO 9303-10 §4.6.1): LDS version, Unicode version, the data groups present.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct EfCom {
    /// Tag 5F01, four digits `aabb` (LDS `aa.bb`), e.g. `"0107"`.
    pub lds_version: String,
    /// Tag 5F36, six digits `aabbcc` (Unicode `aa.bb.cc`), e.g. `"040000"`.
    pub unicode_version: String,
    /// Tag 5C: the data groups present, in file order.
    pub data_groups: Vec<DataGroup>,
    /// Tags in 5C that name no data group (kept so nothing is silently dropped).
    pub unknown_tags: Vec<u8>,
}

impl EfCom {
    pub fn parse(file: &[u8]) -> Result<Self, LdsError> {
        let t = outer(file, 0x60)?;
        let lds_version = t
            .child(0x5F01)?
            .map(|v| utf8(v.value()))
            .ok_or(LdsError::Missing("LDS version (5F01)"))?;
        let unicode_version = t
            .child(0x5F36)?
            .map(|v| utf8(v.value()))
            .ok_or(LdsError::Missing("Unicode version (5F36)"))?;
        let list = t.child(0x5C)?.ok_or(LdsError::Missing("tag list (5C)"))?;
        if list.value().len() > MAX_ENTRIES {
            return Err(LdsError::TooMany {
                what: "EF.COM tag list",
                limit: MAX_ENTRIES,
            });
        }
        let mut data_groups = Vec::new();
        let mut unknown_tags = Vec::new();
        for &tag in list.value() {
            match DataGroup::from_tag(u32::from(tag)) {
                Some(dg) => data_groups.push(dg),
                None => unknown_tags.push(tag),
            }
        }
        Ok(Self {
            lds_version,
            unicode_version,
            data_groups,
            unknown_tags,
        })
    }
}

/// DG1 (ICAO 9303-10 §4.7.1): `61 { 5F1F <MRZ> }`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Dg1 {
    pub mrz: Mrz,
}

impl Dg1 {
    pub fn parse(file: &[u8]) -> Result<Self, LdsError> {
        let t = outer(file, 0x61)?;
        let mrz = t.child(0x5F1F)?.ok_or(LdsError::Missing("MRZ (5F1F)"))?;
        let text = std::str::from_utf8(mrz.value()).map_err(|_| LdsError::Malformed("MRZ"))?;
        Ok(Self {
            mrz: Mrz::parse(text)?,
        })
    }
}

/// The encoding of a facial image (ISO/IEC 19794-5:2005 §5.7.2 image data type, checked against
/// the image's own magic bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ImageType {
    Jpeg,
    Jpeg2000,
    /// An image data type this reader does not know.
    Other(u8),
}

/// One facial image of DG2 with the ISO/IEC 19794-5 fields a viewer needs.
#[derive(Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct FaceImage {
    pub image_type: ImageType,
    pub width: u16,
    pub height: u16,
    /// The encoded image (JPEG or JPEG 2000 bytes).
    #[serde(skip)]
    pub data: Vec<u8>,
}

impl fmt::Debug for FaceImage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaceImage")
            .field("image_type", &self.image_type)
            .field("width", &self.width)
            .field("height", &self.height)
            .field("data_len", &self.data.len())
            .finish()
    }
}

/// DG2 (ICAO 9303-10 §4.7.2): `75 { 7F61 { 02 count, 7F60 { A1 header, 5F2E|7F2E record }* } }`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Dg2 {
    pub faces: Vec<FaceImage>,
}

fn be(bytes: &[u8], from: usize, n: usize) -> Option<u64> {
    let b = bytes.get(from..from.checked_add(n)?)?;
    Some(b.iter().fold(0u64, |acc, &x| acc << 8 | u64::from(x)))
}

/// Parses an ISO/IEC 19794-5:2005 facial record (§5.4 header, §5.5 facial information, §5.7 image
/// information) and returns its first image.
pub fn parse_facial_record(record: &[u8]) -> Result<FaceImage, LdsError> {
    const HEADER: usize = 14;
    if record.get(0..4) != Some(b"FAC\0") {
        return Err(LdsError::Malformed(
            "facial record header (no FAC identifier)",
        ));
    }
    let count = be(record, 12, 2).ok_or(LdsError::Malformed("facial record header"))?;
    if count == 0 {
        return Err(LdsError::Missing("facial image"));
    }
    // Facial information block.
    let fib = HEADER;
    let block_len = be(record, fib, 4).ok_or(LdsError::Malformed("facial information"))?;
    let feature_points =
        be(record, fib + 4, 2).ok_or(LdsError::Malformed("facial information"))? as usize;
    let info = fib + 20 + feature_points * 8;
    let image_data_type = record
        .get(info + 1)
        .copied()
        .ok_or(LdsError::Malformed("image information"))?;
    let width = be(record, info + 2, 2).ok_or(LdsError::Malformed("image information"))? as u16;
    let height = be(record, info + 4, 2).ok_or(LdsError::Malformed("image information"))? as u16;
    let data_start = info + 12;
    let block_end = usize::try_from(block_len)
        .ok()
        .and_then(|l| fib.checked_add(l))
        .filter(|&e| e >= data_start && e <= record.len())
        .ok_or(LdsError::Malformed("facial record block length"))?;
    let data = record
        .get(data_start..block_end)
        .ok_or(LdsError::Malformed("image data"))?
        .to_vec();
    let by_magic = if data.starts_with(&[0xFF, 0xD8]) {
        Some(ImageType::Jpeg)
    } else if data.starts_with(&[0, 0, 0, 0x0C, 0x6A, 0x50, 0x20, 0x20])
        || data.starts_with(&[0xFF, 0x4F, 0xFF, 0x51])
    {
        Some(ImageType::Jpeg2000)
    } else {
        None
    };
    let image_type = match (image_data_type, by_magic) {
        (_, Some(t)) => t,
        (0, None) => ImageType::Jpeg,
        (1, None) => ImageType::Jpeg2000,
        (other, None) => ImageType::Other(other),
    };
    Ok(FaceImage {
        image_type,
        width,
        height,
        data,
    })
}

impl Dg2 {
    pub fn parse(file: &[u8]) -> Result<Self, LdsError> {
        let t = outer(file, 0x75)?;
        let group = t.child(0x7F61)?.ok_or(LdsError::Missing(
            "biometric information group template (7F61)",
        ))?;
        let mut faces = Vec::new();
        for child in group.children() {
            let child = child?;
            if child.tag() != 0x7F60 {
                continue;
            }
            if faces.len() >= MAX_ENTRIES {
                return Err(LdsError::TooMany {
                    what: "DG2 faces",
                    limit: MAX_ENTRIES,
                });
            }
            let record = match child.child(0x5F2E)? {
                Some(r) => r,
                None => child
                    .child(0x7F2E)?
                    .ok_or(LdsError::Missing("biometric data block (5F2E/7F2E)"))?,
            };
            faces.push(parse_facial_record(record.value())?);
        }
        if faces.is_empty() {
            return Err(LdsError::Missing("biometric information template (7F60)"));
        }
        Ok(Self { faces })
    }
}

fn text_field(t: &Tlv<'_>, tag: u32) -> Result<Option<String>, LdsError> {
    Ok(t.child(tag)?.map(|v| utf8(v.value())))
}

fn bytes_field(t: &Tlv<'_>, tag: u32) -> Result<Option<Vec<u8>>, LdsError> {
    Ok(t.child(tag)?.map(|v| v.value().to_vec()))
}

/// A list of `item_tag` values, either inside a content-specific constructed template `A0`
/// (`02 count` then the items, ICAO 9303-10 §4.7.11) or directly at this level.
fn repeated(t: &Tlv<'_>, item_tag: u32) -> Result<Vec<String>, LdsError> {
    let mut out = Vec::new();
    for level in [Some(*t), t.child(0xA0)?] {
        let Some(level) = level else { continue };
        for c in level.children() {
            let c = c?;
            if c.tag() == item_tag {
                if out.len() >= MAX_ENTRIES {
                    return Err(LdsError::TooMany {
                        what: "names",
                        limit: MAX_ENTRIES,
                    });
                }
                out.push(utf8(c.value()));
            }
        }
    }
    Ok(out)
}

fn tag_list(t: &Tlv<'_>) -> Result<Vec<u32>, LdsError> {
    let mut out = Vec::new();
    if let Some(list) = t.child(0x5C)? {
        let mut bytes = list.value().iter().copied();
        while let Some(b) = bytes.next() {
            let mut tag = u32::from(b);
            if b & 0x1F == 0x1F {
                let next = bytes.next().ok_or(LdsError::Malformed("tag list (5C)"))?;
                tag = tag << 8 | u32::from(next);
            }
            if out.len() >= MAX_ENTRIES {
                return Err(LdsError::TooMany {
                    what: "tag list",
                    limit: MAX_ENTRIES,
                });
            }
            out.push(tag);
        }
    }
    Ok(out)
}

/// DG11, additional personal details (ICAO 9303-10 §4.7.11). Text as stored (names keep their
/// `<` separators).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Dg11 {
    /// 5C: tags the file says it contains.
    pub tags: Vec<u32>,
    /// 5F0E.
    pub full_name: Option<String>,
    /// A0 { 02, 5F0F* }.
    pub other_names: Vec<String>,
    /// 5F10.
    pub personal_number: Option<String>,
    /// 5F2B: `YYYYMMDD` (ASCII digits, or BCD decoded to digits).
    pub full_date_of_birth: Option<String>,
    /// 5F11.
    pub place_of_birth: Option<String>,
    /// 5F42.
    pub address: Option<String>,
    /// 5F12.
    pub telephone: Option<String>,
    /// 5F13.
    pub profession: Option<String>,
    /// 5F14.
    pub title: Option<String>,
    /// 5F15.
    pub personal_summary: Option<String>,
    /// 5F16: an image.
    #[serde(skip)]
    pub proof_of_citizenship: Option<Vec<u8>>,
    /// 5F17.
    pub other_travel_documents: Option<String>,
    /// 5F18.
    pub custody_information: Option<String>,
}

fn date_digits(bytes: &[u8]) -> String {
    if bytes.len() == 4 && !bytes.iter().all(u8::is_ascii_digit) {
        // BCD (some issuers encode 5F2B in 4 bytes).
        bytes.iter().map(|b| format!("{b:02X}")).collect()
    } else {
        utf8(bytes)
    }
}

impl Dg11 {
    pub fn parse(file: &[u8]) -> Result<Self, LdsError> {
        let t = outer(file, 0x6B)?;
        Ok(Self {
            tags: tag_list(&t)?,
            full_name: text_field(&t, 0x5F0E)?,
            other_names: repeated(&t, 0x5F0F)?,
            personal_number: text_field(&t, 0x5F10)?,
            full_date_of_birth: t.child(0x5F2B)?.map(|v| date_digits(v.value())),
            place_of_birth: text_field(&t, 0x5F11)?,
            address: text_field(&t, 0x5F42)?,
            telephone: text_field(&t, 0x5F12)?,
            profession: text_field(&t, 0x5F13)?,
            title: text_field(&t, 0x5F14)?,
            personal_summary: text_field(&t, 0x5F15)?,
            proof_of_citizenship: bytes_field(&t, 0x5F16)?,
            other_travel_documents: text_field(&t, 0x5F17)?,
            custody_information: text_field(&t, 0x5F18)?,
        })
    }
}

/// DG12, additional document details (ICAO 9303-10 §4.7.12).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Dg12 {
    /// 5C.
    pub tags: Vec<u32>,
    /// 5F19.
    pub issuing_authority: Option<String>,
    /// 5F26: `YYYYMMDD`.
    pub date_of_issue: Option<String>,
    /// A0 { 02, 5F1A* }.
    pub other_persons: Vec<String>,
    /// 5F1B.
    pub endorsements: Option<String>,
    /// 5F1C.
    pub tax_exit_requirements: Option<String>,
    /// 5F1D: image of the front of the document.
    #[serde(skip)]
    pub image_front: Option<Vec<u8>>,
    /// 5F1E: image of the rear.
    #[serde(skip)]
    pub image_rear: Option<Vec<u8>>,
    /// 5F55: `YYYYMMDDhhmmss`.
    pub personalisation_time: Option<String>,
    /// 5F56.
    pub personalisation_system_serial: Option<String>,
}

impl Dg12 {
    pub fn parse(file: &[u8]) -> Result<Self, LdsError> {
        let t = outer(file, 0x6C)?;
        Ok(Self {
            tags: tag_list(&t)?,
            issuing_authority: text_field(&t, 0x5F19)?,
            date_of_issue: t.child(0x5F26)?.map(|v| date_digits(v.value())),
            other_persons: repeated(&t, 0x5F1A)?,
            endorsements: text_field(&t, 0x5F1B)?,
            tax_exit_requirements: text_field(&t, 0x5F1C)?,
            image_front: bytes_field(&t, 0x5F1D)?,
            image_rear: bytes_field(&t, 0x5F1E)?,
            personalisation_time: text_field(&t, 0x5F55)?,
            personalisation_system_serial: text_field(&t, 0x5F56)?,
        })
    }
}

/// Protocol OID prefixes of BSI TR-03110 / ICAO 9303-11 §9.2.
pub mod oids {
    /// id-PACE: 0.4.0.127.0.7.2.2.4.
    pub const PACE: &str = "0.4.0.127.0.7.2.2.4";
    /// id-CA: 0.4.0.127.0.7.2.2.3.
    pub const CA: &str = "0.4.0.127.0.7.2.2.3";
    /// id-PK: 0.4.0.127.0.7.2.2.1 (.1 DH, .2 ECDH).
    pub const PK: &str = "0.4.0.127.0.7.2.2.1";
    /// id-TA: 0.4.0.127.0.7.2.2.2.
    pub const TA: &str = "0.4.0.127.0.7.2.2.2";
    /// id-icao-mrtd-security-aaProtocolObject: 2.23.136.1.1.5.
    pub const ACTIVE_AUTHENTICATION: &str = "2.23.136.1.1.5";
    /// id-icao-mrtd-security-ldsSecurityObject: 2.23.136.1.1.1.
    pub const LDS_SECURITY_OBJECT: &str = "2.23.136.1.1.1";
    /// id-icao-cscaMasterList: 2.23.136.1.1.2.
    pub const CSCA_MASTER_LIST: &str = "2.23.136.1.1.2";
    /// id-SecurityObject (EF.CardSecurity content): 0.4.0.127.0.7.3.2.1.
    pub const SECURITY_OBJECT: &str = "0.4.0.127.0.7.3.2.1";
}

/// One entry of a SET OF SecurityInfo (ICAO 9303-11 §9.2).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "type")]
#[non_exhaustive]
pub enum SecurityInfo {
    /// PACEInfo (§9.2.1): protocol `id-PACE-{DH,ECDH}-{GM,IM,CAM}-{3DES,AES-*}`, version,
    /// standardized domain parameter ID. PACE-CAM protocols (`.4.6.x`) appear here too.
    Pace {
        protocol: Oid,
        version: u64,
        parameter_id: Option<u64>,
    },
    /// PACEDomainParameterInfo (§9.2.2): explicit domain parameters, kept as DER.
    PaceDomainParameters {
        protocol: Oid,
        #[serde(skip)]
        algorithm_identifier: Vec<u8>,
        parameter_id: Option<u64>,
    },
    /// ChipAuthenticationInfo (§9.2.5).
    ChipAuthentication {
        protocol: Oid,
        version: u64,
        key_id: Option<u64>,
    },
    /// ChipAuthenticationPublicKeyInfo (§9.2.6): the SubjectPublicKeyInfo as DER.
    ChipAuthenticationPublicKey {
        protocol: Oid,
        #[serde(skip)]
        subject_public_key_info: Vec<u8>,
        key_id: Option<u64>,
    },
    /// ActiveAuthenticationInfo (§9.2.9): the ECDSA signature algorithm of Active Authentication.
    ActiveAuthentication {
        version: u64,
        signature_algorithm: Oid,
    },
    /// TerminalAuthenticationInfo (§9.2.7).
    TerminalAuthentication { protocol: Oid, version: u64 },
    /// Any other SecurityInfo, kept as its DER encoding.
    Other {
        protocol: Oid,
        #[serde(skip)]
        der: Vec<u8>,
    },
}

impl SecurityInfo {
    /// The protocol OID of this entry.
    pub fn protocol(&self) -> Option<&Oid> {
        match self {
            Self::Pace { protocol, .. }
            | Self::PaceDomainParameters { protocol, .. }
            | Self::ChipAuthentication { protocol, .. }
            | Self::ChipAuthenticationPublicKey { protocol, .. }
            | Self::TerminalAuthentication { protocol, .. }
            | Self::Other { protocol, .. } => Some(protocol),
            Self::ActiveAuthentication { .. } => None,
        }
    }

    /// For [`SecurityInfo::ActiveAuthentication`]: the hash of the ECDSA signature algorithm
    /// (ecdsa-with-SHA*, X9.62 / RFC 5758, and BSI TR-03111 ecdsa-plain-SHA*).
    pub fn active_authentication_hash(&self) -> Option<HashAlgorithm> {
        match self {
            Self::ActiveAuthentication {
                signature_algorithm,
                ..
            } => ecdsa_hash(&signature_algorithm.dotted()),
            _ => None,
        }
    }
}

/// The hash of an ECDSA signature algorithm OID.
pub fn ecdsa_hash(oid: &str) -> Option<HashAlgorithm> {
    Some(match oid {
        "1.2.840.10045.4.1" | "0.4.0.127.0.7.1.1.4.1.1" => HashAlgorithm::Sha1,
        "1.2.840.10045.4.3.1" | "0.4.0.127.0.7.1.1.4.1.2" => HashAlgorithm::Sha224,
        "1.2.840.10045.4.3.2" | "0.4.0.127.0.7.1.1.4.1.3" => HashAlgorithm::Sha256,
        "1.2.840.10045.4.3.3" | "0.4.0.127.0.7.1.1.4.1.4" => HashAlgorithm::Sha384,
        "1.2.840.10045.4.3.4" | "0.4.0.127.0.7.1.1.4.1.5" => HashAlgorithm::Sha512,
        _ => return None,
    })
}

fn under(oid: &str, prefix: &str) -> Option<usize> {
    let rest = oid.strip_prefix(prefix)?;
    if rest.is_empty() {
        return Some(0);
    }
    let rest = rest.strip_prefix('.')?;
    Some(rest.split('.').count())
}

fn parse_security_info(e: der::Element<'_>) -> Result<SecurityInfo, LdsError> {
    let e = e.expect(der::SEQUENCE, "SecurityInfo")?;
    let mut r = e.reader();
    let protocol = Oid::from_element(r.element("SecurityInfo protocol")?, "SecurityInfo protocol")?;
    let dotted = protocol.dotted();
    let opt_int = |r: &mut der::Reader<'_>, what| -> Result<Option<u64>, LdsError> {
        Ok(match r.optional(der::INTEGER)? {
            Some(i) => Some(der::small_uint(i, what)?),
            None => None,
        })
    };
    let info = if under(&dotted, oids::PACE) == Some(2) {
        SecurityInfo::Pace {
            version: der::small_uint(r.element("PACEInfo version")?, "PACEInfo version")?,
            parameter_id: opt_int(&mut r, "PACEInfo parameterId")?,
            protocol,
        }
    } else if under(&dotted, oids::PACE) == Some(1) {
        let alg = r.expect(der::SEQUENCE, "PACEDomainParameterInfo domainParameter")?;
        SecurityInfo::PaceDomainParameters {
            algorithm_identifier: alg.raw.to_vec(),
            parameter_id: opt_int(&mut r, "PACEDomainParameterInfo parameterId")?,
            protocol,
        }
    } else if under(&dotted, oids::CA) == Some(2) {
        SecurityInfo::ChipAuthentication {
            version: der::small_uint(r.element("ChipAuthenticationInfo version")?, "version")?,
            key_id: opt_int(&mut r, "ChipAuthenticationInfo keyId")?,
            protocol,
        }
    } else if under(&dotted, oids::PK) == Some(1) {
        let spki = r.expect(der::SEQUENCE, "ChipAuthenticationPublicKeyInfo key")?;
        SecurityInfo::ChipAuthenticationPublicKey {
            subject_public_key_info: spki.raw.to_vec(),
            key_id: opt_int(&mut r, "ChipAuthenticationPublicKeyInfo keyId")?,
            protocol,
        }
    } else if dotted == oids::ACTIVE_AUTHENTICATION {
        let version = der::small_uint(r.element("ActiveAuthenticationInfo version")?, "version")?;
        let alg = Oid::from_element(
            r.element("ActiveAuthenticationInfo signatureAlgorithm")?,
            "signatureAlgorithm",
        )?;
        SecurityInfo::ActiveAuthentication {
            version,
            signature_algorithm: alg,
        }
    } else if under(&dotted, oids::TA) == Some(0) {
        SecurityInfo::TerminalAuthentication {
            version: der::small_uint(r.element("TerminalAuthenticationInfo version")?, "version")?,
            protocol,
        }
    } else {
        SecurityInfo::Other {
            protocol,
            der: e.raw.to_vec(),
        }
    };
    Ok(info)
}

/// A SET OF SecurityInfo (ICAO 9303-11 §9.2): the content of EF.CardAccess, of DG14 (inside tag
/// 6E) and of the SecurityObject in EF.CardSecurity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct SecurityInfos(pub Vec<SecurityInfo>);

impl SecurityInfos {
    /// Parses the DER `SET OF SecurityInfo` (EF.CardAccess, the eContent of EF.CardSecurity).
    pub fn parse(der_set: &[u8]) -> Result<Self, LdsError> {
        let set = der::single(der_set, "SecurityInfos")?.expect(der::SET, "SecurityInfos")?;
        let mut out = Vec::new();
        let mut r = set.reader();
        while let Some(e) = r.next_element()? {
            if out.len() >= MAX_ENTRIES {
                return Err(LdsError::TooMany {
                    what: "SecurityInfos",
                    limit: MAX_ENTRIES,
                });
            }
            out.push(parse_security_info(e)?);
        }
        Ok(Self(out))
    }

    /// EF.CardAccess: the DER set, possibly followed by padding.
    pub fn parse_card_access(file: &[u8]) -> Result<Self, LdsError> {
        let t = tlv::iter(file)
            .next()
            .ok_or(LdsError::Missing("SecurityInfos"))??;
        Self::parse(t.raw())
    }

    /// DG14: `6E { SET OF SecurityInfo }`.
    pub fn parse_dg14(file: &[u8]) -> Result<Self, LdsError> {
        let t = outer(file, 0x6E)?;
        Self::parse(t.value())
    }

    /// The entries.
    pub fn iter(&self) -> impl Iterator<Item = &SecurityInfo> {
        self.0.iter()
    }

    /// The PACEInfo entries.
    pub fn pace(&self) -> impl Iterator<Item = &SecurityInfo> {
        self.0
            .iter()
            .filter(|i| matches!(i, SecurityInfo::Pace { .. }))
    }

    /// The signature hash of Active Authentication (ECDSA), when an ActiveAuthenticationInfo
    /// is present.
    pub fn active_authentication_hash(&self) -> Option<HashAlgorithm> {
        self.0
            .iter()
            .find_map(SecurityInfo::active_authentication_hash)
    }
}

/// DG15 (ICAO 9303-10 §4.7.15): `6F { SubjectPublicKeyInfo }`, the Active Authentication key.
#[derive(Clone, Debug)]
pub struct Dg15 {
    /// The SubjectPublicKeyInfo, DER.
    pub subject_public_key_info: Vec<u8>,
    /// The key (RSA or EC).
    pub public_key: PKey<Public>,
}

impl Dg15 {
    pub fn parse(file: &[u8]) -> Result<Self, LdsError> {
        let t = outer(file, 0x6F)?;
        let spki = der::single(t.value(), "SubjectPublicKeyInfo")?
            .expect(der::SEQUENCE, "SubjectPublicKeyInfo")?;
        let public_key =
            PKey::public_key_from_der(spki.raw).map_err(|e| LdsError::PublicKey(e.to_string()))?;
        Ok(Self {
            subject_public_key_info: spki.raw.to_vec(),
            public_key,
        })
    }
}
