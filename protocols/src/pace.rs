//! PACE with ECDH generic mapping and chip authentication mapping, ICAO 9303-11 §4.4 (with
//! BSI TR-03110-2 §3.2 and the worked example of Appendix G): terminal side ([`PaceTerminal`],
//! a sans-IO state machine producing each command and consuming each answer) and chip side
//! ([`PaceChip`]).
//!
//! Steps (§4.4.4): MSE:Set AT (`80` protocol OID, `83` password reference, `84` domain parameter
//! id), then four GENERAL AUTHENTICATE commands, the first three chained (CLA 10):
//! 1. the chip sends `z = E(Kπ, s)` (CBC, IV 0), `Kπ = KDF(K, 3)`;
//! 2. mapping keys: `G' = s·G + SK_Map·PK_Map` (generic mapping, §4.4.3.3.1);
//! 3. ephemeral keys on `G'`: `K = x(SK_DH·PK_DH)`, `KSenc = KDF(K, 1)`, `KSmac = KDF(K, 2)`;
//! 4. authentication tokens `T = MAC(KSmac, 7F49{06 OID, 86 PK_DH_other})` (§4.4.3.4), and for
//!    PACE-CAM the encrypted chip authentication data `A_IC` (§4.4.3.5).
//!
//! Standardized domain parameters (§9.5.1): 12 NIST P-256, 13 brainpoolP256r1, 14
//! brainpoolP320r1, 15 NIST P-384, 16 brainpoolP384r1, 17 brainpoolP512r1, 18 NIST P-521. DH
//! groups (0-2) are not supported. Every received point is checked to be on the curve and not
//! the point at infinity; `PK_DH_IC == PK_DH_IFD` is refused (§4.4.3.3.2).

use openssl::bn::{BigNum, BigNumContext, BigNumRef};
use openssl::ec::{EcGroup, EcGroupRef, EcKey, EcPoint, EcPointRef, PointConversionForm};
use openssl::error::ErrorStack;
use openssl::hash::{MessageDigest, hash};
use openssl::memcmp;
use openssl::nid::Nid;
use openssl::pkey::Private;
use thiserror::Error;
use zeroize::Zeroizing;

use crate::kdf::{COUNTER_PACE, SessionKeys, derive_key};
use crate::sm::{
    ChipChannel, Cipher, CryptoError, RandomSource, SecureChannel, SmError, cbc_decrypt,
    cbc_encrypt, ecb_encrypt, mac, pad, unpad,
};
use crate::tlv::{self, TlvError};
use crate::{Command, Response, Status};

/// `0.4.0.127.0.7.2.2.4` (id-PACE), DER content bytes.
const ID_PACE: [u8; 8] = [0x04, 0x00, 0x7F, 0x00, 0x07, 0x02, 0x02, 0x04];

/// Why PACE failed. Whose fault: the user's for a wrong password (the chip answers 6300, or
/// [`PaceError::TokenMismatch`]), the peer's for malformed or invalid messages, ours for
/// `Crypto`.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum PaceError {
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    #[error(transparent)]
    Sm(#[from] SmError),
    #[error("malformed PACE data: {0}")]
    Tlv(#[from] TlvError),
    /// The peer refused a step (6300 on GENERAL AUTHENTICATE: wrong password).
    #[error("the chip refused PACE ({:04X})", .0.to_u16())]
    Rejected(Status),
    /// A message without the data object the step needs.
    #[error("PACE message lacks data object {0:02X}")]
    MissingObject(u8),
    /// A protocol OID that is not PACE-ECDH-GM/CAM with a known cipher.
    #[error("unsupported PACE protocol")]
    UnsupportedProtocol,
    /// A domain parameter id this implementation does not support.
    #[error("unsupported PACE domain parameters {0}")]
    UnsupportedParameters(u8),
    /// A password reference other than MRZ (1) or CAN (2), or one not matching.
    #[error("unsupported PACE password reference {0}")]
    UnsupportedPassword(u8),
    /// A public key that is not a valid point of the group (or is the point at infinity).
    #[error("invalid public key point")]
    InvalidPoint,
    /// `PK_DH_IC == PK_DH_IFD`.
    #[error("the chip's ephemeral key equals ours")]
    IdenticalKeys,
    /// The nonce does not decrypt to whole blocks.
    #[error("bad encrypted nonce")]
    BadNonce,
    /// The peer's authentication token does not verify: wrong password or an attack.
    #[error("PACE authentication token mismatch")]
    TokenMismatch,
    /// A step out of order.
    #[error("PACE step out of order")]
    OutOfOrder,
    /// PACE-CAM: `A_IC` missing, undecryptable, or `CA_IC · PK_IC ≠ PK_Map_IC`.
    #[error("PACE-CAM chip authentication failed")]
    CamFailed,
}

impl From<ErrorStack> for PaceError {
    fn from(e: ErrorStack) -> Self {
        PaceError::Crypto(CryptoError::OpenSsl(e))
    }
}

impl PaceError {
    /// The status word a chip answers for this error.
    pub fn status(&self) -> Status {
        match self {
            PaceError::TokenMismatch => Status::VerificationFailed,
            PaceError::OutOfOrder => Status::ConditionsNotSatisfied,
            PaceError::UnsupportedParameters(_) | PaceError::UnsupportedPassword(_) => {
                Status::ReferenceNotFound
            }
            PaceError::Rejected(sw) => *sw,
            PaceError::Crypto(_) => Status::NoPreciseDiagnosis,
            _ => Status::IncorrectData,
        }
    }
}

/// The PACE protocols supported (§9.2.7, id-PACE-ECDH-GM-* and id-PACE-ECDH-CAM-*).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum PaceProtocol {
    /// `0.4.0.127.0.7.2.2.4.2.{1,2,3,4}`: 3DES, AES-128, AES-192, AES-256.
    EcdhGm(Cipher),
    /// `0.4.0.127.0.7.2.2.4.6.{2,3,4}`: AES-128, AES-192, AES-256.
    EcdhCam(Cipher),
}

fn cipher_code(cipher: Cipher) -> u8 {
    match cipher {
        Cipher::Tdes => 1,
        Cipher::Aes128 => 2,
        Cipher::Aes192 => 3,
        Cipher::Aes256 => 4,
    }
}

impl PaceProtocol {
    /// From the DER content bytes of the OID (no `06 L`).
    pub fn from_oid_bytes(oid: &[u8]) -> Option<Self> {
        let (prefix, tail) = oid.split_at_checked(ID_PACE.len())?;
        if prefix != ID_PACE {
            return None;
        }
        let (kind, c) = match tail {
            [kind, c] => (*kind, *c),
            _ => return None,
        };
        let cipher = match c {
            1 => Cipher::Tdes,
            2 => Cipher::Aes128,
            3 => Cipher::Aes192,
            4 => Cipher::Aes256,
            _ => return None,
        };
        match (kind, cipher) {
            (2, cipher) => Some(PaceProtocol::EcdhGm(cipher)),
            (6, Cipher::Tdes) => None,
            (6, cipher) => Some(PaceProtocol::EcdhCam(cipher)),
            _ => None,
        }
    }

    /// From dotted notation, `0.4.0.127.0.7.2.2.4.2.2`.
    pub fn from_dotted(oid: &str) -> Option<Self> {
        let tail = oid.strip_prefix("0.4.0.127.0.7.2.2.4.")?;
        let (kind, c) = tail.split_once('.')?;
        let mut bytes = ID_PACE.to_vec();
        bytes.push(kind.parse().ok()?);
        bytes.push(c.parse().ok()?);
        Self::from_oid_bytes(&bytes)
    }

    /// The DER content bytes of the OID.
    pub fn oid_bytes(&self) -> Vec<u8> {
        let mut out = ID_PACE.to_vec();
        let (kind, cipher) = match self {
            PaceProtocol::EcdhGm(c) => (2, *c),
            PaceProtocol::EcdhCam(c) => (6, *c),
        };
        out.push(kind);
        out.push(cipher_code(cipher));
        out
    }

    /// Dotted notation.
    pub fn dotted(&self) -> String {
        let b = self.oid_bytes();
        format!(
            "0.4.0.127.0.7.2.2.4.{}.{}",
            b.get(8).copied().unwrap_or(0),
            b.get(9).copied().unwrap_or(0)
        )
    }

    pub fn cipher(&self) -> Cipher {
        match self {
            PaceProtocol::EcdhGm(c) | PaceProtocol::EcdhCam(c) => *c,
        }
    }

    pub fn is_cam(&self) -> bool {
        matches!(self, PaceProtocol::EcdhCam(_))
    }
}

/// The curve of a standardized domain parameter id (§9.5.1, table 6), ECDH ids only.
pub fn curve(parameter_id: u8) -> Option<Nid> {
    Some(match parameter_id {
        12 => Nid::X9_62_PRIME256V1,
        13 => Nid::BRAINPOOL_P256R1,
        14 => Nid::BRAINPOOL_P320R1,
        15 => Nid::SECP384R1,
        16 => Nid::BRAINPOOL_P384R1,
        17 => Nid::BRAINPOOL_P512R1,
        18 => Nid::SECP521R1,
        _ => return None,
    })
}

/// The domain parameter ids [`curve`] knows.
pub const SUPPORTED_PARAMETER_IDS: [u8; 7] = [12, 13, 14, 15, 16, 17, 18];

fn group(parameter_id: u8) -> Result<EcGroup, PaceError> {
    let nid = curve(parameter_id).ok_or(PaceError::UnsupportedParameters(parameter_id))?;
    Ok(EcGroup::from_curve_name(nid)?)
}

// ---- EC helpers (shared with chip authentication) ----

pub(crate) fn field_len(group: &EcGroupRef) -> usize {
    (group.degree() as usize).div_ceil(8)
}

pub(crate) fn order(group: &EcGroupRef) -> Result<BigNum, ErrorStack> {
    let mut ctx = BigNumContext::new()?;
    let mut n = BigNum::new()?;
    group.order(&mut n, &mut ctx)?;
    Ok(n)
}

/// A secret scalar (an ephemeral private key, the PACE nonce, a CAM value), wiped with
/// `BN_clear` when dropped: the openssl crate's `BigNum` frees its memory without clearing it.
pub(crate) struct SecretScalar(BigNum);

impl SecretScalar {
    pub(crate) fn new(value: BigNum) -> Self {
        SecretScalar(value)
    }
}

impl std::ops::Deref for SecretScalar {
    type Target = BigNumRef;
    fn deref(&self) -> &BigNumRef {
        &self.0
    }
}

impl Drop for SecretScalar {
    fn drop(&mut self) {
        self.0.clear();
    }
}

impl std::fmt::Debug for SecretScalar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretScalar(..)")
    }
}

/// A uniformly random scalar in `[1, n-1]` (rejection sampling on the order's bit length).
pub(crate) fn random_scalar(
    group: &EcGroupRef,
    rng: &mut dyn RandomSource,
) -> Result<SecretScalar, CryptoError> {
    let n = order(group)?;
    let bits = n.num_bits() as usize;
    let len = bits.div_ceil(8);
    let excess = len * 8 - bits;
    let mut buf = Zeroizing::new(vec![0u8; len]);
    for _ in 0..128 {
        rng.fill(&mut buf)?;
        if let Some(first) = buf.first_mut() {
            *first &= 0xFFu8 >> excess;
        }
        let k = SecretScalar::new(BigNum::from_slice(&buf)?);
        if k.num_bits() > 0 && *k < *n {
            return Ok(k);
        }
    }
    Err(CryptoError::Internal("no scalar below the group order"))
}

/// Uncompressed encoding `04 || x || y`.
pub(crate) fn encode_point(group: &EcGroupRef, point: &EcPointRef) -> Result<Vec<u8>, ErrorStack> {
    let mut ctx = BigNumContext::new()?;
    point.to_bytes(group, PointConversionForm::UNCOMPRESSED, &mut ctx)
}

/// Decodes an uncompressed point and checks it is on the curve and not infinity.
pub(crate) fn decode_point(group: &EcGroupRef, bytes: &[u8]) -> Option<EcPoint> {
    if bytes.len() != 1 + 2 * field_len(group) || bytes.first() != Some(&0x04) {
        return None;
    }
    let mut ctx = BigNumContext::new().ok()?;
    let point = EcPoint::from_bytes(group, bytes, &mut ctx).ok()?;
    if point.is_infinity(group) || !point.is_on_curve(group, &mut ctx).ok()? {
        return None;
    }
    Some(point)
}

pub(crate) fn mul(
    group: &EcGroupRef,
    point: &EcPointRef,
    k: &BigNumRef,
) -> Result<EcPoint, ErrorStack> {
    let mut ctx = BigNumContext::new()?;
    let mut out = EcPoint::new(group)?;
    out.mul2(group, point, k, &mut ctx)?;
    Ok(out)
}

pub(crate) fn mul_generator(group: &EcGroupRef, k: &BigNumRef) -> Result<EcPoint, ErrorStack> {
    let mut ctx = BigNumContext::new()?;
    let mut out = EcPoint::new(group)?;
    out.mul_generator2(group, k, &mut ctx)?;
    Ok(out)
}

/// The x coordinate, left-padded to the field length (the ECDH shared secret, §9.6).
pub(crate) fn x_coordinate(
    group: &EcGroupRef,
    point: &EcPointRef,
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    if point.is_infinity(group) {
        return Err(CryptoError::Internal("shared point at infinity"));
    }
    let mut ctx = BigNumContext::new()?;
    let mut x = BigNum::new()?;
    let mut y = BigNum::new()?;
    point.affine_coordinates(group, &mut x, &mut y, &mut ctx)?;
    let len = i32::try_from(field_len(group)).map_err(|_| CryptoError::Internal("field"))?;
    Ok(Zeroizing::new(x.to_vec_padded(len)?))
}

fn points_equal(group: &EcGroupRef, a: &EcPointRef, b: &EcPointRef) -> Result<bool, ErrorStack> {
    let mut ctx = BigNumContext::new()?;
    a.eq(group, b, &mut ctx)
}

// ---- passwords ----

/// The PACE password (§4.4.1): MRZ (`K = SHA-1(MRZ_information)`) or CAN (`K` = its digits).
pub struct PacePassword {
    reference: u8,
    key: Zeroizing<Vec<u8>>,
}

impl PacePassword {
    /// Password reference of the MRZ (§4.4.4.1, table: 01).
    pub const MRZ: u8 = 0x01;
    /// Password reference of the CAN (02).
    pub const CAN: u8 = 0x02;

    /// From MRZ_information (document number, DOB, expiry with check digits).
    pub fn mrz(mrz_information: &[u8]) -> Result<Self, PaceError> {
        let digest = hash(MessageDigest::sha1(), mrz_information)?;
        Ok(PacePassword {
            reference: Self::MRZ,
            key: Zeroizing::new(digest.to_vec()),
        })
    }

    /// From the card access number (its ASCII digits).
    pub fn can(can: &str) -> Self {
        PacePassword {
            reference: Self::CAN,
            key: Zeroizing::new(can.as_bytes().to_vec()),
        }
    }

    /// 01 (MRZ) or 02 (CAN).
    pub fn reference(&self) -> u8 {
        self.reference
    }

    /// `K`, the input of `Kπ = KDF(K, 3)`.
    pub fn key_material(&self) -> &[u8] {
        &self.key
    }

    fn k_pi(&self, cipher: Cipher) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        derive_key(cipher, &self.key, COUNTER_PACE)
    }
}

impl std::fmt::Debug for PacePassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PacePassword(ref={:02X}, <secret>)", self.reference)
    }
}

/// What the terminal runs: the protocol and domain parameters from EF.CardAccess (PACEInfo).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct PaceConfig {
    pub protocol: PaceProtocol,
    pub parameter_id: u8,
    /// Whether MSE:Set AT carries `84 parameterId` (needed when the chip offers several).
    pub send_parameter_id: bool,
}

/// MSE:Set AT for PACE (§4.4.4.1): `00 22 C1 A4 {80 OID} {83 ref} [{84 id}]`.
pub fn mse_set_at(protocol: PaceProtocol, password_ref: u8, parameter_id: Option<u8>) -> Command {
    let oid = protocol.oid_bytes();
    let mut data = Vec::with_capacity(oid.len() + 8);
    data.push(0x80);
    data.push(oid.len() as u8);
    data.extend_from_slice(&oid);
    data.extend_from_slice(&[0x83, 0x01, password_ref]);
    if let Some(id) = parameter_id {
        data.extend_from_slice(&[0x84, 0x01, id]);
    }
    crate::commands::manage_security_environment(0xC1, 0xA4, &data)
}

/// The content of a PACE MSE:Set AT (chip side).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct MseSetAt {
    pub protocol: PaceProtocol,
    pub password_ref: u8,
    pub parameter_id: Option<u8>,
}

/// Parses MSE:Set AT data (chip side).
pub fn parse_mse_set_at(data: &[u8]) -> Result<MseSetAt, PaceError> {
    let oid = tlv::find(data, 0x80)?.ok_or(PaceError::MissingObject(0x80))?;
    let protocol =
        PaceProtocol::from_oid_bytes(oid.value()).ok_or(PaceError::UnsupportedProtocol)?;
    let password_ref = match tlv::find(data, 0x83)?
        .ok_or(PaceError::MissingObject(0x83))?
        .value()
    {
        [r] => *r,
        _ => return Err(PaceError::MissingObject(0x83)),
    };
    let parameter_id = match tlv::find(data, 0x84)? {
        None => None,
        Some(obj) => match obj.value() {
            [id] => Some(*id),
            _ => return Err(PaceError::MissingObject(0x84)),
        },
    };
    Ok(MseSetAt {
        protocol,
        password_ref,
        parameter_id,
    })
}

/// GENERAL AUTHENTICATE (ISO/IEC 7816-4 §7.5.5) for PACE with a dynamic authentication data
/// object `7C { inner }`, chained (CLA 10) except for the last step.
pub fn general_authenticate(inner: &[u8], last: bool) -> Result<Command, TlvError> {
    let data = tlv::encode(0x7C, inner)?;
    let cla = if last { 0x00 } else { 0x10 };
    Ok(Command::new(cla, 0x86, 0x00, 0x00)
        .with_data(data)
        .with_ne(256))
}

/// The value of `tag` inside the `7C` template of a GENERAL AUTHENTICATE data field.
fn dynamic_object(data: &[u8], tag: u32) -> Result<Vec<u8>, PaceError> {
    let outer = tlv::parse_single(data)?;
    if outer.tag() != 0x7C {
        return Err(PaceError::MissingObject(0x7C));
    }
    let inner = outer
        .child(tag)?
        .ok_or(PaceError::MissingObject(tag as u8))?;
    Ok(inner.value().to_vec())
}

fn answer_object(response: &Response, tag: u32) -> Result<Vec<u8>, PaceError> {
    if !response.is_success() {
        return Err(PaceError::Rejected(response.status()));
    }
    dynamic_object(response.data(), tag)
}

/// `MAC(KSmac, 7F49 {06 OID, 86 PK})` (§4.4.3.4): retail MAC over padded input for 3DES, CMAC
/// over the plain input for AES.
fn token(
    cipher: Cipher,
    k_mac: &[u8],
    protocol: PaceProtocol,
    public_key: &[u8],
) -> Result<[u8; 8], PaceError> {
    let oid = tlv::encode(0x06, &protocol.oid_bytes())?;
    let pk = tlv::encode(0x86, public_key)?;
    let input = tlv::encode_constructed(0x7F49, [&oid[..], &pk[..]])?;
    Ok(match cipher {
        Cipher::Tdes => mac(cipher, k_mac, &pad(&input, 8))?,
        _ => mac(cipher, k_mac, &input)?,
    })
}

/// IV for the PACE-CAM data: `E(KSenc, FF..FF)` (§4.4.3.5.1).
fn cam_iv(cipher: Cipher, k_enc: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    ecb_encrypt(cipher, k_enc, &vec![0xFF; cipher.block_len()])
}

// ---- terminal ----

enum TerminalStep {
    Start,
    /// A step failed: the run is over; start a new `PaceTerminal`.
    Failed,
    Nonce,
    Mapping,
    KeyAgreement,
    Tokens,
    Done,
}

/// Terminal side of PACE. Drive it with [`PaceTerminal::mse_set_at`],
/// [`PaceTerminal::general_authenticate_nonce`], then feed each answer to
/// [`PaceTerminal::process_nonce`], [`PaceTerminal::process_mapping`],
/// [`PaceTerminal::process_key_agreement`] (each returns the next command) and
/// [`PaceTerminal::finish`].
pub struct PaceTerminal {
    config: PaceConfig,
    password_ref: u8,
    group: EcGroup,
    k_pi: Zeroizing<Vec<u8>>,
    step: TerminalStep,
    s: Option<Zeroizing<Vec<u8>>>,
    sk_map: Option<SecretScalar>,
    pk_map_ic: Option<Vec<u8>>,
    generator: Option<EcPoint>,
    sk_dh: Option<SecretScalar>,
    pk_dh_ifd: Option<Vec<u8>>,
    pk_dh_ic: Option<Vec<u8>>,
    shared: Option<Zeroizing<Vec<u8>>>,
    keys: Option<SessionKeys>,
}

/// What a successful PACE leaves: the secure channel and, for PACE-CAM, what proves the chip.
#[derive(Debug)]
pub struct PaceOutcome {
    pub channel: SecureChannel,
    /// PACE-CAM only: check it against the chip's static key with [`CamEvidence::verify`].
    pub chip_authentication: Option<CamEvidence>,
    /// The chip's ephemeral public key (`ID_PICC` is derived from it for terminal/chip
    /// authentication v2).
    pub pk_dh_ic: Vec<u8>,
}

/// PACE-CAM: the decrypted chip authentication data and the chip's mapping key.
#[derive(Debug)]
pub struct CamEvidence {
    parameter_id: u8,
    ca_ic: Vec<u8>,
    pk_map_ic: Vec<u8>,
}

impl CamEvidence {
    /// Checks `CA_IC · PK_IC == PK_Map_IC` (§4.4.3.5.2). `chip_public_key` is the chip's static
    /// PACE-CAM public key (an uncompressed point) from a passively authenticated
    /// EF.CardSecurity; without that check, PACE-CAM proves nothing.
    pub fn verify(&self, chip_public_key: &[u8]) -> Result<(), PaceError> {
        let group = group(self.parameter_id)?;
        let pk_ic = decode_point(&group, chip_public_key).ok_or(PaceError::InvalidPoint)?;
        let pk_map_ic = decode_point(&group, &self.pk_map_ic).ok_or(PaceError::InvalidPoint)?;
        let ca = BigNum::from_slice(&self.ca_ic)?;
        if ca.num_bits() == 0 || ca >= order(&group)? {
            return Err(PaceError::CamFailed);
        }
        let product = mul(&group, &pk_ic, &ca)?;
        if points_equal(&group, &product, &pk_map_ic)? {
            Ok(())
        } else {
            Err(PaceError::CamFailed)
        }
    }

    /// `CA_IC` as decrypted.
    pub fn ca_ic(&self) -> &[u8] {
        &self.ca_ic
    }
}

impl PaceTerminal {
    pub fn new(config: PaceConfig, password: &PacePassword) -> Result<Self, PaceError> {
        let group = group(config.parameter_id)?;
        Ok(PaceTerminal {
            config,
            password_ref: password.reference(),
            group,
            k_pi: password.k_pi(config.protocol.cipher())?,
            step: TerminalStep::Start,
            s: None,
            sk_map: None,
            pk_map_ic: None,
            generator: None,
            sk_dh: None,
            pk_dh_ifd: None,
            pk_dh_ic: None,
            shared: None,
            keys: None,
        })
    }

    /// MSE:Set AT selecting the protocol, password and (if configured) the parameters.
    pub fn mse_set_at(&self) -> Command {
        let id = self
            .config
            .send_parameter_id
            .then_some(self.config.parameter_id);
        mse_set_at(self.config.protocol, self.password_ref, id)
    }

    /// GENERAL AUTHENTICATE step 1: `10 86 00 00 02 7C 00 00` (asks for the encrypted nonce).
    pub fn general_authenticate_nonce(&mut self) -> Command {
        // Only a fresh terminal starts a run; otherwise the next step answers OutOfOrder.
        if matches!(self.step, TerminalStep::Start) {
            self.step = TerminalStep::Nonce;
        }
        Command::new(0x10, 0x86, 0x00, 0x00)
            .with_data(vec![0x7C, 0x00])
            .with_ne(256)
    }

    /// Decrypts the nonce (answer to step 1) and returns step 2 with a fresh mapping key.
    pub fn process_nonce(
        &mut self,
        response: &Response,
        rng: &mut dyn RandomSource,
    ) -> Result<Command, PaceError> {
        if !matches!(self.step, TerminalStep::Nonce) {
            return Err(PaceError::OutOfOrder);
        }
        // Until this step succeeds the run is failed: no second try with the same secrets.
        self.step = TerminalStep::Failed;
        let z = answer_object(response, 0x80)?;
        let cipher = self.config.protocol.cipher();
        if z.is_empty() || !z.len().is_multiple_of(cipher.block_len()) {
            return Err(PaceError::BadNonce);
        }
        let iv = vec![0u8; cipher.block_len()];
        self.s = Some(cbc_decrypt(cipher, &self.k_pi, &iv, &z)?);
        let sk = random_scalar(&self.group, rng)?;
        let pk = encode_point(&self.group, &*mul_generator(&self.group, &sk)?)?;
        self.sk_map = Some(sk);
        self.step = TerminalStep::Mapping;
        Ok(general_authenticate(&tlv::encode(0x81, &pk)?, false)?)
    }

    /// Maps the generator with the chip's mapping key (answer to step 2) and returns step 3
    /// with a fresh ephemeral key on `G'`.
    pub fn process_mapping(
        &mut self,
        response: &Response,
        rng: &mut dyn RandomSource,
    ) -> Result<Command, PaceError> {
        if !matches!(self.step, TerminalStep::Mapping) {
            return Err(PaceError::OutOfOrder);
        }
        // Until this step succeeds the run is failed: no second try with the same secrets.
        self.step = TerminalStep::Failed;
        let pk_map_ic = answer_object(response, 0x82)?;
        let (Some(s), Some(sk_map)) = (self.s.as_ref(), self.sk_map.as_ref()) else {
            return Err(PaceError::OutOfOrder);
        };
        let point = decode_point(&self.group, &pk_map_ic).ok_or(PaceError::InvalidPoint)?;
        let generator = map_generator(&self.group, s, sk_map, &point)?;
        let sk = random_scalar(&self.group, rng)?;
        let pk = encode_point(&self.group, &*mul(&self.group, &generator, &sk)?)?;
        self.pk_map_ic = Some(pk_map_ic);
        self.generator = Some(generator);
        self.sk_dh = Some(sk);
        self.sk_map = None;
        self.pk_dh_ifd = Some(pk.clone());
        self.step = TerminalStep::KeyAgreement;
        Ok(general_authenticate(&tlv::encode(0x83, &pk)?, false)?)
    }

    /// Agrees on the session keys with the chip's ephemeral key (answer to step 3) and returns
    /// step 4 with our token `T_IFD`.
    pub fn process_key_agreement(&mut self, response: &Response) -> Result<Command, PaceError> {
        if !matches!(self.step, TerminalStep::KeyAgreement) {
            return Err(PaceError::OutOfOrder);
        }
        // Until this step succeeds the run is failed: no second try with the same secrets.
        self.step = TerminalStep::Failed;
        let pk_dh_ic = answer_object(response, 0x84)?;
        let (Some(sk_dh), Some(pk_dh_ifd)) = (self.sk_dh.as_ref(), self.pk_dh_ifd.as_ref()) else {
            return Err(PaceError::OutOfOrder);
        };
        let point = decode_point(&self.group, &pk_dh_ic).ok_or(PaceError::InvalidPoint)?;
        if memcmp_eq(&pk_dh_ic, pk_dh_ifd) {
            return Err(PaceError::IdenticalKeys);
        }
        let shared = x_coordinate(&self.group, &*mul(&self.group, &point, sk_dh)?)?;
        let cipher = self.config.protocol.cipher();
        let keys = SessionKeys::derive(cipher, &shared)?;
        let t_ifd = token(cipher, &keys.k_mac, self.config.protocol, &pk_dh_ic)?;
        self.shared = Some(shared);
        self.keys = Some(keys);
        self.pk_dh_ic = Some(pk_dh_ic);
        self.sk_dh = None;
        self.step = TerminalStep::Tokens;
        Ok(general_authenticate(&tlv::encode(0x85, &t_ifd)?, true)?)
    }

    /// Verifies the chip's token `T_IC` (answer to step 4), decrypts `A_IC` for PACE-CAM, and
    /// opens the secure channel (SSC 0).
    pub fn finish(mut self, response: &Response) -> Result<PaceOutcome, PaceError> {
        if !matches!(self.step, TerminalStep::Tokens) {
            return Err(PaceError::OutOfOrder);
        }
        let t_ic = answer_object(response, 0x86)?;
        let (Some(keys), Some(pk_dh_ifd), Some(pk_dh_ic)) = (
            self.keys.take(),
            self.pk_dh_ifd.take(),
            self.pk_dh_ic.take(),
        ) else {
            return Err(PaceError::OutOfOrder);
        };
        let cipher = keys.cipher;
        let expected = token(cipher, &keys.k_mac, self.config.protocol, &pk_dh_ifd)?;
        if t_ic.len() != 8 || !memcmp::eq(&expected, &t_ic) {
            return Err(PaceError::TokenMismatch);
        }
        let chip_authentication = if self.config.protocol.is_cam() {
            let a_ic = dynamic_object(response.data(), 0x8A).map_err(|_| PaceError::CamFailed)?;
            if a_ic.is_empty() || !a_ic.len().is_multiple_of(cipher.block_len()) {
                return Err(PaceError::CamFailed);
            }
            let iv = cam_iv(cipher, &keys.k_enc)?;
            let plain = cbc_decrypt(cipher, &keys.k_enc, &iv, &a_ic)?;
            let ca_ic = unpad(&plain, cipher.block_len())
                .ok_or(PaceError::CamFailed)?
                .to_vec();
            Some(CamEvidence {
                parameter_id: self.config.parameter_id,
                ca_ic,
                pk_map_ic: self.pk_map_ic.take().unwrap_or_default(),
            })
        } else {
            None
        };
        self.step = TerminalStep::Done;
        let ssc = vec![0u8; cipher.block_len()];
        Ok(PaceOutcome {
            channel: SecureChannel::new(keys, &ssc)?,
            chip_authentication,
            pk_dh_ic,
        })
    }

    /// The decrypted nonce `s` (after step 1; for worked examples).
    pub fn nonce(&self) -> Option<&[u8]> {
        self.s.as_deref().map(|s| &s[..])
    }

    /// The mapped generator `G'`, uncompressed (after step 2).
    pub fn mapped_generator(&self) -> Option<Vec<u8>> {
        let g = self.generator.as_ref()?;
        encode_point(&self.group, g).ok()
    }

    /// The shared secret `K` (after step 3).
    pub fn shared_secret(&self) -> Option<&[u8]> {
        self.shared.as_deref().map(|s| &s[..])
    }

    /// `KSenc`, `KSmac` (after step 3).
    pub fn session_keys(&self) -> Option<&SessionKeys> {
        self.keys.as_ref()
    }
}

impl std::fmt::Debug for PaceTerminal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PaceTerminal({:?}, <secret>)", self.config)
    }
}

fn memcmp_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && memcmp::eq(a, b)
}

/// Generic mapping (§4.4.3.3.1): `G' = s·G + SK_Map·PK_Map_other`.
fn map_generator(
    group: &EcGroupRef,
    s: &[u8],
    sk_map: &BigNumRef,
    pk_map_other: &EcPointRef,
) -> Result<EcPoint, PaceError> {
    let h = mul(group, pk_map_other, sk_map)?;
    if h.is_infinity(group) {
        return Err(PaceError::InvalidPoint);
    }
    let s = SecretScalar::new(BigNum::from_slice(s)?);
    let sg = mul_generator(group, &s)?;
    let mut ctx = BigNumContext::new()?;
    let mut g = EcPoint::new(group)?;
    g.add(group, &sg, &h, &mut ctx)?;
    if g.is_infinity(group) {
        return Err(PaceError::InvalidPoint);
    }
    Ok(g)
}

// ---- chip ----

/// What a chip offers for one PACE protocol (PACEInfo in EF.CardAccess).
#[derive(Clone, Debug)]
pub struct PaceChipConfig {
    pub protocol: PaceProtocol,
    pub parameter_id: u8,
    /// The chip's static key pair for PACE-CAM (on the same curve).
    pub cam_key: Option<EcKey<Private>>,
}

enum ChipStep {
    Selected,
    Nonce,
    Mapping,
    KeyAgreement,
    Tokens,
    Done,
}

/// Chip side of PACE. Create it on MSE:Set AT, answer each GENERAL AUTHENTICATE with
/// [`PaceChip::general_authenticate`], then take the channel with [`PaceChip::finish`].
pub struct PaceChip {
    config: PaceChipConfig,
    group: EcGroup,
    k_pi: Zeroizing<Vec<u8>>,
    password_ref: u8,
    step: ChipStep,
    s: Option<Zeroizing<Vec<u8>>>,
    sk_map: Option<SecretScalar>,
    generator: Option<EcPoint>,
    pk_dh_ic: Option<Vec<u8>>,
    pk_dh_ifd: Option<Vec<u8>>,
    keys: Option<SessionKeys>,
}

impl PaceChip {
    pub fn new(config: PaceChipConfig, password: &PacePassword) -> Result<Self, PaceError> {
        let group = group(config.parameter_id)?;
        if config.protocol.is_cam() && config.cam_key.is_none() {
            return Err(PaceError::UnsupportedProtocol);
        }
        Ok(PaceChip {
            k_pi: password.k_pi(config.protocol.cipher())?,
            password_ref: password.reference(),
            config,
            group,
            step: ChipStep::Selected,
            s: None,
            sk_map: None,
            generator: None,
            pk_dh_ic: None,
            pk_dh_ifd: None,
            keys: None,
        })
    }

    /// Checks that MSE:Set AT asks for what this chip object was set up with.
    pub fn mse_set_at(&mut self, data: &[u8]) -> Result<(), PaceError> {
        let mse = parse_mse_set_at(data)?;
        if mse.protocol != self.config.protocol {
            return Err(PaceError::UnsupportedProtocol);
        }
        if mse.password_ref != self.password_ref {
            return Err(PaceError::UnsupportedPassword(mse.password_ref));
        }
        if let Some(id) = mse
            .parameter_id
            .filter(|&id| id != self.config.parameter_id)
        {
            return Err(PaceError::UnsupportedParameters(id));
        }
        self.step = ChipStep::Nonce;
        Ok(())
    }

    /// Whether the next GENERAL AUTHENTICATE is the last one (sent without chaining).
    pub fn expects_last(&self) -> bool {
        matches!(self.step, ChipStep::Tokens)
    }

    /// Whether MSE:Set AT has been accepted and the exchange has not finished.
    pub fn in_progress(&self) -> bool {
        !matches!(self.step, ChipStep::Done)
    }

    /// Answers one GENERAL AUTHENTICATE data field (`7C {...}`) with the response data.
    pub fn general_authenticate(
        &mut self,
        data: &[u8],
        rng: &mut dyn RandomSource,
    ) -> Result<Vec<u8>, PaceError> {
        let result = self.step_inner(data, rng);
        if result.is_err() {
            self.step = ChipStep::Done;
        }
        result
    }

    fn step_inner(
        &mut self,
        data: &[u8],
        rng: &mut dyn RandomSource,
    ) -> Result<Vec<u8>, PaceError> {
        let cipher = self.config.protocol.cipher();
        match self.step {
            ChipStep::Nonce => {
                let outer = tlv::parse_single(data)?;
                if outer.tag() != 0x7C || !outer.value().is_empty() {
                    return Err(PaceError::MissingObject(0x7C));
                }
                let mut s = Zeroizing::new(vec![0u8; 16]);
                rng.fill(&mut s)?;
                let iv = vec![0u8; cipher.block_len()];
                let z = cbc_encrypt(cipher, &self.k_pi, &iv, &s)?;
                self.s = Some(s);
                self.step = ChipStep::Mapping;
                Ok(tlv::encode(0x7C, &tlv::encode(0x80, &z)?)?)
            }
            ChipStep::Mapping => {
                let pk_map_ifd = dynamic_object(data, 0x81)?;
                let point =
                    decode_point(&self.group, &pk_map_ifd).ok_or(PaceError::InvalidPoint)?;
                let sk = random_scalar(&self.group, rng)?;
                let pk = encode_point(&self.group, &*mul_generator(&self.group, &sk)?)?;
                let s = self.s.as_ref().ok_or(PaceError::OutOfOrder)?;
                self.generator = Some(map_generator(&self.group, s, &sk, &point)?);
                self.sk_map = Some(sk);
                self.step = ChipStep::KeyAgreement;
                Ok(tlv::encode(0x7C, &tlv::encode(0x82, &pk)?)?)
            }
            ChipStep::KeyAgreement => {
                let pk_dh_ifd = dynamic_object(data, 0x83)?;
                let point = decode_point(&self.group, &pk_dh_ifd).ok_or(PaceError::InvalidPoint)?;
                let generator = self.generator.as_ref().ok_or(PaceError::OutOfOrder)?;
                let sk = random_scalar(&self.group, rng)?;
                let pk = encode_point(&self.group, &*mul(&self.group, generator, &sk)?)?;
                if memcmp_eq(&pk, &pk_dh_ifd) {
                    return Err(PaceError::IdenticalKeys);
                }
                let shared = x_coordinate(&self.group, &*mul(&self.group, &point, &sk)?)?;
                self.keys = Some(SessionKeys::derive(cipher, &shared)?);
                self.pk_dh_ic = Some(pk.clone());
                self.pk_dh_ifd = Some(pk_dh_ifd);
                self.step = ChipStep::Tokens;
                Ok(tlv::encode(0x7C, &tlv::encode(0x84, &pk)?)?)
            }
            ChipStep::Tokens => {
                let t_ifd = dynamic_object(data, 0x85)?;
                let (Some(keys), Some(pk_dh_ic), Some(pk_dh_ifd)) = (
                    self.keys.as_ref(),
                    self.pk_dh_ic.as_ref(),
                    self.pk_dh_ifd.as_ref(),
                ) else {
                    return Err(PaceError::OutOfOrder);
                };
                let expected = token(cipher, &keys.k_mac, self.config.protocol, pk_dh_ic)?;
                if t_ifd.len() != 8 || !memcmp::eq(&expected, &t_ifd) {
                    return Err(PaceError::TokenMismatch);
                }
                let t_ic = token(cipher, &keys.k_mac, self.config.protocol, pk_dh_ifd)?;
                let mut inner = tlv::encode(0x86, &t_ic)?;
                if let Some(cam_key) = self.config.cam_key.as_ref() {
                    let sk_map = self.sk_map.as_ref().ok_or(PaceError::OutOfOrder)?;
                    let n = order(&self.group)?;
                    let mut ctx = BigNumContext::new()?;
                    let mut inv = SecretScalar::new(BigNum::new()?);
                    inv.0.mod_inverse(cam_key.private_key(), &n, &mut ctx)?;
                    let mut ca = SecretScalar::new(BigNum::new()?);
                    ca.0.mod_mul(sk_map, &inv, &n, &mut ctx)?;
                    let len = n.num_bytes();
                    let ca = Zeroizing::new(ca.to_vec_padded(len)?);
                    let iv = cam_iv(cipher, &keys.k_enc)?;
                    let a_ic =
                        cbc_encrypt(cipher, &keys.k_enc, &iv, &pad(&ca, cipher.block_len()))?;
                    inner.extend(tlv::encode(0x8A, &a_ic)?);
                }
                self.sk_map = None;
                self.step = ChipStep::Done;
                Ok(tlv::encode(0x7C, &inner)?)
            }
            ChipStep::Selected | ChipStep::Done => Err(PaceError::OutOfOrder),
        }
    }

    /// The chip's end of the secure channel, once the tokens have been exchanged.
    pub fn finish(self) -> Result<ChipChannel, PaceError> {
        let keys = match (self.step, self.keys) {
            (ChipStep::Done, Some(keys)) if self.pk_dh_ifd.is_some() && self.sk_map.is_none() => {
                keys
            }
            _ => return Err(PaceError::OutOfOrder),
        };
        let ssc = vec![0u8; keys.cipher.block_len()];
        Ok(ChipChannel::new(keys, &ssc)?)
    }
}

impl std::fmt::Debug for PaceChip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PaceChip({:?}, <secret>)", self.config.protocol)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn oids_round_trip() {
        for p in [
            PaceProtocol::EcdhGm(Cipher::Tdes),
            PaceProtocol::EcdhGm(Cipher::Aes256),
            PaceProtocol::EcdhCam(Cipher::Aes128),
        ] {
            assert_eq!(PaceProtocol::from_oid_bytes(&p.oid_bytes()), Some(p));
            assert_eq!(PaceProtocol::from_dotted(&p.dotted()), Some(p));
        }
        assert_eq!(PaceProtocol::from_dotted("0.4.0.127.0.7.2.2.4.6.1"), None);
        assert_eq!(PaceProtocol::from_dotted("0.4.0.127.0.7.2.2.4.1.2"), None);
    }

    #[test]
    fn points_off_the_curve_are_refused() {
        let group = group(13).unwrap();
        let mut bad = vec![0x04];
        bad.extend([1u8; 64]);
        assert!(decode_point(&group, &bad).is_none());
        assert!(decode_point(&group, &[0x00]).is_none());
        let k = BigNum::from_u32(7).unwrap();
        let good = encode_point(&group, &mul_generator(&group, &k).unwrap()).unwrap();
        assert!(decode_point(&group, &good).is_some());
        assert!(decode_point(&group, &good[..good.len() - 1]).is_none());
    }

    #[test]
    fn a_failed_step_ends_the_run() {
        use crate::sm::OsRandom;
        let config = PaceConfig {
            protocol: PaceProtocol::EcdhGm(Cipher::Aes128),
            parameter_id: 13,
            send_parameter_id: true,
        };
        let password = PacePassword::can("123456");
        let mut terminal = PaceTerminal::new(config, &password).unwrap();
        let _ = terminal.general_authenticate_nonce();
        // A nonce that is not whole blocks fails the step...
        let bad = Response::new(vec![0x7C, 0x03, 0x80, 0x01, 0x00], Status::Success);
        assert!(matches!(
            terminal.process_nonce(&bad, &mut OsRandom),
            Err(PaceError::BadNonce)
        ));
        // ...and a well-formed answer afterwards is refused: no second try in the same run.
        let good = Response::new(
            [&[0x7C, 0x12, 0x80, 0x10][..], &[0x5A; 16][..]].concat(),
            Status::Success,
        );
        assert!(matches!(
            terminal.process_nonce(&good, &mut OsRandom),
            Err(PaceError::OutOfOrder)
        ));
        // Restarting the GENERAL AUTHENTICATE chain does not revive it either.
        let _ = terminal.general_authenticate_nonce();
        assert!(matches!(
            terminal.process_nonce(&good, &mut OsRandom),
            Err(PaceError::OutOfOrder)
        ));
    }
}
