//! Chip Authentication version 1 with ECDH, ICAO 9303-11 §6.2 (and BSI TR-03110-1 §3.2):
//! terminal side ([`CaTerminal`]) and chip side ([`CaChip`]).
//!
//! The terminal sends an ephemeral public key on the curve of the chip's static key from DG14,
//! under the current secure messaging session:
//! - 3DES (`id-CA-ECDH-3DES-CBC-CBC`, 0.4.0.127.0.7.2.2.3.2.1): MSE:Set KAT
//!   `00 22 41 A6 {91 PK} [{84 keyId}]` (§6.2.4.1);
//! - AES (`id-CA-ECDH-AES-CBC-CMAC-128/192/256`, …3.2.{2,3,4}): MSE:Set AT
//!   `00 22 41 A4 {80 OID} [{84 keyId}]`, then GENERAL AUTHENTICATE `7C {80 PK}` (§6.2.4.2).
//!
//! Both sides then derive `KSenc = KDF(K, 1)`, `KSmac = KDF(K, 2)` from `K = x(SK·PK)` and
//! restart secure messaging with SSC 0. The terminal keeps the old channel until the chip has
//! answered the last command with 9000 under it: [`CaTerminal::finish`] takes those answers.

use openssl::ec::{EcGroup, EcKey};
use openssl::error::ErrorStack;
use openssl::pkey::{PKey, Private};
use thiserror::Error;

use crate::kdf::SessionKeys;
use crate::pace::{decode_point, encode_point, mul, mul_generator, random_scalar, x_coordinate};
use crate::sm::{ChipChannel, Cipher, CryptoError, RandomSource, SecureChannel, SmError};
use crate::tlv::{self, TlvError};
use crate::{Command, Response, Status};

/// `0.4.0.127.0.7.2.2.3.2` (id-CA-ECDH), DER content bytes.
const ID_CA_ECDH: [u8; 9] = [0x04, 0x00, 0x7F, 0x00, 0x07, 0x02, 0x02, 0x03, 0x02];

/// Why chip authentication failed. Whose fault: the chip's for a refused step or a bad key,
/// the caller's for a key that is not EC, ours for `Crypto`.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum CaError {
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    #[error(transparent)]
    Sm(#[from] SmError),
    #[error("malformed chip authentication data: {0}")]
    Tlv(#[from] TlvError),
    /// The chip refused a step (its answer under the old channel was not 9000).
    #[error("the chip refused chip authentication ({:04X})", .0.to_u16())]
    Rejected(Status),
    /// Not an ECDH chip authentication OID with a known cipher.
    #[error("unsupported chip authentication protocol")]
    UnsupportedProtocol,
    /// The chip's public key is not an EC key, or a received point is invalid.
    #[error("invalid chip authentication public key")]
    InvalidKey,
    /// A key id that does not match the chip's key.
    #[error("unknown chip authentication key id")]
    UnknownKey,
    /// A message without the data object the step needs.
    #[error("chip authentication message lacks data object {0:02X}")]
    MissingObject(u8),
    /// Answers that do not match the commands sent.
    #[error("chip authentication step out of order")]
    OutOfOrder,
}

impl From<ErrorStack> for CaError {
    fn from(e: ErrorStack) -> Self {
        CaError::Crypto(CryptoError::OpenSsl(e))
    }
}

impl CaError {
    /// The status word a chip answers for this error.
    pub fn status(&self) -> Status {
        match self {
            CaError::UnknownKey => Status::ReferenceNotFound,
            CaError::OutOfOrder => Status::ConditionsNotSatisfied,
            CaError::Crypto(_) => Status::NoPreciseDiagnosis,
            _ => Status::IncorrectData,
        }
    }
}

/// ECDH chip authentication protocols (ChipAuthenticationInfo OIDs, §9.2.5).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub struct CaProtocol(pub Cipher);

impl CaProtocol {
    /// From the DER content bytes of the OID.
    pub fn from_oid_bytes(oid: &[u8]) -> Option<Self> {
        let (prefix, tail) = oid.split_at_checked(ID_CA_ECDH.len())?;
        if prefix != ID_CA_ECDH {
            return None;
        }
        Some(CaProtocol(match tail {
            [1] => Cipher::Tdes,
            [2] => Cipher::Aes128,
            [3] => Cipher::Aes192,
            [4] => Cipher::Aes256,
            _ => return None,
        }))
    }

    /// From dotted notation, `0.4.0.127.0.7.2.2.3.2.1`.
    pub fn from_dotted(oid: &str) -> Option<Self> {
        let c: u8 = oid.strip_prefix("0.4.0.127.0.7.2.2.3.2.")?.parse().ok()?;
        let mut bytes = ID_CA_ECDH.to_vec();
        bytes.push(c);
        Self::from_oid_bytes(&bytes)
    }

    pub fn oid_bytes(&self) -> Vec<u8> {
        let mut out = ID_CA_ECDH.to_vec();
        out.push(match self.0 {
            Cipher::Tdes => 1,
            Cipher::Aes128 => 2,
            Cipher::Aes192 => 3,
            Cipher::Aes256 => 4,
        });
        out
    }

    pub fn cipher(&self) -> Cipher {
        self.0
    }
}

fn key_id_object(key_id: Option<&[u8]>) -> Result<Vec<u8>, TlvError> {
    match key_id {
        Some(id) => tlv::encode(0x84, id),
        None => Ok(Vec::new()),
    }
}

fn derive(cipher: Cipher, shared: &[u8]) -> Result<SessionKeys, CryptoError> {
    SessionKeys::derive(cipher, shared)
}

/// Terminal side of chip authentication v1.
pub struct CaTerminal {
    protocol: CaProtocol,
    key_id: Option<Vec<u8>>,
    public_key: Vec<u8>,
    keys: SessionKeys,
}

impl CaTerminal {
    /// Generates the ephemeral key pair on the curve of the chip's static key
    /// (`chip_public_key`: SubjectPublicKeyInfo DER from DG14's
    /// ChipAuthenticationPublicKeyInfo) and computes the new session keys.
    pub fn new(
        protocol: CaProtocol,
        key_id: Option<&[u8]>,
        chip_public_key: &[u8],
        rng: &mut dyn RandomSource,
    ) -> Result<Self, CaError> {
        let pkey = PKey::public_key_from_der(chip_public_key).map_err(|_| CaError::InvalidKey)?;
        let ec = pkey.ec_key().map_err(|_| CaError::InvalidKey)?;
        let group = ec.group();
        let chip_point = encode_point(group, ec.public_key())?;
        let chip_point = decode_point(group, &chip_point).ok_or(CaError::InvalidKey)?;
        let sk = random_scalar(group, rng)?;
        let public_key = encode_point(group, &*mul_generator(group, &sk)?)?;
        let shared = x_coordinate(group, &*mul(group, &chip_point, &sk)?)?;
        Ok(CaTerminal {
            protocol,
            key_id: key_id.map(<[u8]>::to_vec),
            public_key,
            keys: derive(protocol.cipher(), &shared)?,
        })
    }

    /// The ephemeral public key (uncompressed point) sent to the chip.
    pub fn ephemeral_public_key(&self) -> &[u8] {
        &self.public_key
    }

    /// The plain commands to send, in order, through the current secure channel.
    pub fn commands(&self) -> Result<Vec<Command>, CaError> {
        let key_id = key_id_object(self.key_id.as_deref())?;
        if self.protocol.cipher() == Cipher::Tdes {
            let mut data = tlv::encode(0x91, &self.public_key)?;
            data.extend(key_id);
            return Ok(vec![crate::commands::manage_security_environment(
                0x41, 0xA6, &data,
            )]);
        }
        let mut mse = tlv::encode(0x80, &self.protocol.oid_bytes())?;
        mse.extend(key_id);
        let ga = tlv::encode(0x7C, &tlv::encode(0x80, &self.public_key)?)?;
        Ok(vec![
            crate::commands::manage_security_environment(0x41, 0xA4, &mse),
            Command::new(0x00, 0x86, 0x00, 0x00)
                .with_data(ga)
                .with_ne(256),
        ])
    }

    /// Given the chip's (unwrapped) answers to [`CaTerminal::commands`], all 9000, the new
    /// secure channel (SSC 0). Until this succeeds keep using the old one.
    pub fn finish(self, answers: &[Response]) -> Result<SecureChannel, CaError> {
        let expected = if self.protocol.cipher() == Cipher::Tdes {
            1
        } else {
            2
        };
        if answers.len() != expected {
            return Err(CaError::OutOfOrder);
        }
        if let Some(bad) = answers.iter().find(|r| !r.is_success()) {
            return Err(CaError::Rejected(bad.status()));
        }
        let ssc = vec![0u8; self.keys.cipher.block_len()];
        Ok(SecureChannel::new(self.keys, &ssc)?)
    }
}

impl std::fmt::Debug for CaTerminal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CaTerminal({:?}, <secret>)", self.protocol)
    }
}

/// Chip side of chip authentication v1: the static key pair of DG14.
#[derive(Clone)]
pub struct CaChip {
    protocol: CaProtocol,
    key: EcKey<Private>,
    key_id: Option<Vec<u8>>,
    selected: bool,
}

impl CaChip {
    pub fn new(protocol: CaProtocol, key: EcKey<Private>, key_id: Option<Vec<u8>>) -> Self {
        CaChip {
            protocol,
            key,
            key_id,
            selected: false,
        }
    }

    pub fn protocol(&self) -> CaProtocol {
        self.protocol
    }

    /// The public key as SubjectPublicKeyInfo DER (for DG14).
    pub fn public_key_der(&self) -> Result<Vec<u8>, CaError> {
        let public = EcKey::from_public_key(self.key.group(), self.key.public_key())?;
        Ok(PKey::from_ec_key(public)?.public_key_to_der()?)
    }

    fn check_key_id(&self, data: &[u8]) -> Result<(), CaError> {
        match (tlv::find(data, 0x84)?, self.key_id.as_deref()) {
            (None, _) => Ok(()),
            (Some(obj), Some(id)) if obj.value() == id => Ok(()),
            _ => Err(CaError::UnknownKey),
        }
    }

    fn agree(&self, public_key: &[u8]) -> Result<ChipChannel, CaError> {
        let group: &openssl::ec::EcGroupRef = self.key.group();
        let point = decode_point(group, public_key).ok_or(CaError::InvalidKey)?;
        let sk = crate::pace::SecretScalar::new(self.key.private_key().to_owned()?);
        let shared = x_coordinate(group, &*mul(group, &point, &sk)?)?;
        let keys = derive(self.protocol.cipher(), &shared)?;
        let ssc = vec![0u8; keys.cipher.block_len()];
        Ok(ChipChannel::new(keys, &ssc)?)
    }

    /// MSE:Set KAT (3DES variant): returns the new channel, to be used after answering 9000
    /// under the old one.
    pub fn mse_set_kat(&mut self, data: &[u8]) -> Result<ChipChannel, CaError> {
        if self.protocol.cipher() != Cipher::Tdes {
            return Err(CaError::UnsupportedProtocol);
        }
        self.check_key_id(data)?;
        let pk = tlv::find(data, 0x91)?.ok_or(CaError::MissingObject(0x91))?;
        self.agree(pk.value())
    }

    /// MSE:Set AT for chip authentication (AES variant).
    pub fn mse_set_at(&mut self, data: &[u8]) -> Result<(), CaError> {
        let oid = tlv::find(data, 0x80)?.ok_or(CaError::MissingObject(0x80))?;
        if CaProtocol::from_oid_bytes(oid.value()) != Some(self.protocol) {
            return Err(CaError::UnsupportedProtocol);
        }
        self.check_key_id(data)?;
        self.selected = true;
        Ok(())
    }

    /// GENERAL AUTHENTICATE (AES variant): answer data `7C 00` and the new channel.
    pub fn general_authenticate(&mut self, data: &[u8]) -> Result<(Vec<u8>, ChipChannel), CaError> {
        if !std::mem::take(&mut self.selected) {
            return Err(CaError::OutOfOrder);
        }
        let outer = tlv::parse_single(data)?;
        if outer.tag() != 0x7C {
            return Err(CaError::MissingObject(0x7C));
        }
        let pk = outer.child(0x80)?.ok_or(CaError::MissingObject(0x80))?;
        Ok((vec![0x7C, 0x00], self.agree(pk.value())?))
    }

    /// Forgets a chip authentication selected by MSE:Set AT (session ended).
    pub fn cancel(&mut self) {
        self.selected = false;
    }

    /// Whether MSE:Set AT selected chip authentication and GENERAL AUTHENTICATE is awaited.
    pub fn is_selected(&self) -> bool {
        self.selected
    }

    /// The curve of the key.
    pub fn group(&self) -> Result<EcGroup, CaError> {
        let nid = self.key.group().curve_name().ok_or(CaError::InvalidKey)?;
        Ok(EcGroup::from_curve_name(nid)?)
    }
}

impl std::fmt::Debug for CaChip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CaChip({:?}, <secret>)", self.protocol)
    }
}
