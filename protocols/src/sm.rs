//! Secure messaging, ICAO 9303-11 §9.8 (with ISO/IEC 7816-4 §6): 3DES and AES, terminal side
//! ([`SecureChannel`]) and chip side ([`ChipChannel`]).
//!
//! Command: CLA | 0C, `87 L 01 || E(pad(data))` (`85 L E(pad(data))` for an odd INS), `97 L Le`
//! (one byte, or two when Ne > 256), `8E 08 MAC` over `pad(SSC || pad(header) || DO87 || DO97)`,
//! Le 00 (0000 in extended form). Response: `[DO87/85] 99 02 SW 8E 08 MAC` with the MAC over
//! `pad(SSC || DO87 || DO99)`. The send sequence counter is incremented before each command and
//! before each response (§9.8.2).
//!
//! - 3DES (§9.8.6.1): two-key 3DES-CBC with IV 0, MAC = ISO/IEC 9797-1 MAC algorithm 3 (retail
//!   MAC, DES) with padding method 2, 8-byte SSC.
//! - AES (§9.8.6.2): AES-CBC with IV = AES-ECB(KSenc, SSC), MAC = AES-CMAC truncated to 8 bytes,
//!   16-byte SSC.
//!
//! Single DES is in OpenSSL 3's legacy provider only, so the single-DES steps of the retail MAC
//! run as DES-EDE3 with `K1 || K1 || K1`, which computes the same function.
//!
//! After any error the channel is closed: the chip ends secure messaging on an error
//! (§9.8.3), and a terminal that saw a forged or unprotected answer must not go on trusting the
//! session. Start a new BAC or PACE.

use std::fmt;

use openssl::error::ErrorStack;
use openssl::memcmp;
use openssl::pkey::PKey;
use openssl::sign::Signer;
use openssl::symm::{self, Crypter, Mode};
use thiserror::Error;
use zeroize::Zeroizing;

use crate::apdu::{EXTENDED_MAX_NC, EXTENDED_MAX_NE, SHORT_MAX_NC, SHORT_MAX_NE};
use crate::kdf::SessionKeys;
use crate::tlv::{self, TlvError};
use crate::{Command, LengthForm, Response, Status};

/// Block ciphers of ICAO 9303-11 §9.8.6 (and PACE / CA, §4.4, §6.2).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum Cipher {
    /// Two-key 3DES (16-byte key), retail MAC.
    Tdes,
    Aes128,
    Aes192,
    Aes256,
}

impl Cipher {
    /// Key length in bytes.
    pub const fn key_len(self) -> usize {
        match self {
            Cipher::Tdes | Cipher::Aes128 => 16,
            Cipher::Aes192 => 24,
            Cipher::Aes256 => 32,
        }
    }

    /// Block length in bytes (also the SSC length).
    pub const fn block_len(self) -> usize {
        match self {
            Cipher::Tdes => 8,
            _ => 16,
        }
    }
}

/// A failure inside the cryptographic library, or a key of the wrong size. Whose fault: ours
/// (a bug or a broken OpenSSL), never the peer's.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum CryptoError {
    #[error("OpenSSL: {0}")]
    OpenSsl(#[from] ErrorStack),
    #[error("key of {0} bytes does not fit the cipher")]
    BadKeyLength(usize),
    #[error("data of {0} bytes is not a whole number of blocks")]
    NotBlockAligned(usize),
    #[error("internal error: {0}")]
    Internal(&'static str),
}

/// Randomness for the protocols. [`OsRandom`] in production; tests inject fixed values to
/// reproduce worked examples.
pub trait RandomSource {
    /// Fills `buf` with random bytes.
    fn fill(&mut self, buf: &mut [u8]) -> Result<(), CryptoError>;
}

/// OpenSSL's CSPRNG.
#[derive(Clone, Copy, Debug, Default)]
pub struct OsRandom;

impl RandomSource for OsRandom {
    fn fill(&mut self, buf: &mut [u8]) -> Result<(), CryptoError> {
        openssl::rand::rand_bytes(buf)?;
        Ok(())
    }
}

// ---- primitives (shared with BAC, PACE, CA) ----

/// ISO/IEC 9797-1 padding method 2: `80` then zeros up to a whole block.
pub fn pad(data: &[u8], block: usize) -> Zeroizing<Vec<u8>> {
    let padded = (data.len() / block + 1) * block;
    let mut out = Zeroizing::new(Vec::with_capacity(padded));
    out.extend_from_slice(data);
    out.push(0x80);
    out.resize(padded, 0);
    out
}

/// Removes ISO/IEC 9797-1 padding method 2; the padding must sit in the last block.
pub fn unpad(data: &[u8], block: usize) -> Option<&[u8]> {
    let mut end = data.len();
    let min = data.len().saturating_sub(block);
    while end > min {
        end -= 1;
        match data.get(end) {
            Some(0x00) => continue,
            Some(0x80) => return data.get(..end),
            _ => return None,
        }
    }
    None
}

fn tdes_key(key: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    let (k1, k2) = match key.len() {
        16 => (key.get(..8), key.get(8..16)),
        _ => return Err(CryptoError::BadKeyLength(key.len())),
    };
    let (Some(k1), Some(k2)) = (k1, k2) else {
        return Err(CryptoError::BadKeyLength(key.len()));
    };
    let mut k = Zeroizing::new(Vec::with_capacity(24));
    k.extend_from_slice(k1);
    k.extend_from_slice(k2);
    k.extend_from_slice(k1);
    Ok(k)
}

fn symm_cipher(cipher: Cipher, cbc: bool) -> symm::Cipher {
    match (cipher, cbc) {
        (Cipher::Tdes, true) => symm::Cipher::des_ede3_cbc(),
        (Cipher::Tdes, false) => symm::Cipher::des_ede3(),
        (Cipher::Aes128, true) => symm::Cipher::aes_128_cbc(),
        (Cipher::Aes128, false) => symm::Cipher::aes_128_ecb(),
        (Cipher::Aes192, true) => symm::Cipher::aes_192_cbc(),
        (Cipher::Aes192, false) => symm::Cipher::aes_192_ecb(),
        (Cipher::Aes256, true) => symm::Cipher::aes_256_cbc(),
        (Cipher::Aes256, false) => symm::Cipher::aes_256_ecb(),
    }
}

fn run_cipher(
    c: symm::Cipher,
    mode: Mode,
    key: &[u8],
    iv: Option<&[u8]>,
    data: &[u8],
    block: usize,
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    if !data.len().is_multiple_of(block) {
        return Err(CryptoError::NotBlockAligned(data.len()));
    }
    let mut crypter = Crypter::new(c, mode, key, iv)?;
    crypter.pad(false);
    let mut out = Zeroizing::new(vec![0u8; data.len() + block]);
    let n = crypter.update(data, &mut out)?;
    let tail = out
        .get_mut(n..)
        .ok_or(CryptoError::Internal("cipher output"))?;
    let m = crypter.finalize(tail)?;
    out.truncate(n + m);
    Ok(out)
}

fn cipher_key(cipher: Cipher, key: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    if key.len() != cipher.key_len() {
        return Err(CryptoError::BadKeyLength(key.len()));
    }
    match cipher {
        Cipher::Tdes => tdes_key(key),
        _ => Ok(Zeroizing::new(key.to_vec())),
    }
}

/// CBC encryption without padding (the caller pads).
pub fn cbc_encrypt(
    cipher: Cipher,
    key: &[u8],
    iv: &[u8],
    data: &[u8],
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    let k = cipher_key(cipher, key)?;
    let c = symm_cipher(cipher, true);
    run_cipher(c, Mode::Encrypt, &k, Some(iv), data, cipher.block_len())
}

/// CBC decryption without padding removal.
pub fn cbc_decrypt(
    cipher: Cipher,
    key: &[u8],
    iv: &[u8],
    data: &[u8],
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    let k = cipher_key(cipher, key)?;
    let c = symm_cipher(cipher, true);
    run_cipher(c, Mode::Decrypt, &k, Some(iv), data, cipher.block_len())
}

/// ECB encryption of whole blocks (AES SM IV, PACE-CAM IV).
pub fn ecb_encrypt(
    cipher: Cipher,
    key: &[u8],
    data: &[u8],
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    let k = cipher_key(cipher, key)?;
    let c = symm_cipher(cipher, false);
    run_cipher(c, Mode::Encrypt, &k, None, data, cipher.block_len())
}

/// ISO/IEC 9797-1 MAC algorithm 3 (retail MAC) over block-aligned `data`, no padding added.
fn retail_mac(key: &[u8], data: &[u8]) -> Result<[u8; 8], CryptoError> {
    if data.is_empty() || !data.len().is_multiple_of(8) {
        return Err(CryptoError::NotBlockAligned(data.len()));
    }
    let k = tdes_key(key)?;
    let k1 = k.get(..8).ok_or(CryptoError::Internal("key"))?;
    let mut single = Zeroizing::new(Vec::with_capacity(24));
    for _ in 0..3 {
        single.extend_from_slice(k1);
    }
    let split = data.len() - 8;
    let (head, last) = data.split_at(split);
    let mut h = [0u8; 8];
    if !head.is_empty() {
        let enc = run_cipher(
            symm::Cipher::des_ede3_cbc(),
            Mode::Encrypt,
            &single,
            Some(&[0u8; 8]),
            head,
            8,
        )?;
        let tail = enc.get(split - 8..).ok_or(CryptoError::Internal("mac"))?;
        h.copy_from_slice(tail);
    }
    for (hb, lb) in h.iter_mut().zip(last) {
        *hb ^= lb;
    }
    let out = run_cipher(symm::Cipher::des_ede3(), Mode::Encrypt, &k, None, &h, 8)?;
    let mut mac = [0u8; 8];
    mac.copy_from_slice(out.get(..8).ok_or(CryptoError::Internal("mac"))?);
    Ok(mac)
}

/// AES-CMAC (NIST SP 800-38B) truncated to 8 bytes.
fn cmac8(cipher: Cipher, key: &[u8], data: &[u8]) -> Result<[u8; 8], CryptoError> {
    if key.len() != cipher.key_len() {
        return Err(CryptoError::BadKeyLength(key.len()));
    }
    let pkey = PKey::cmac(&symm_cipher(cipher, true), key)?;
    let mut signer = Signer::new_without_digest(&pkey)?;
    signer.update(data)?;
    let full = Zeroizing::new(signer.sign_to_vec()?);
    let mut mac = [0u8; 8];
    mac.copy_from_slice(full.get(..8).ok_or(CryptoError::Internal("cmac"))?);
    Ok(mac)
}

/// The 8-byte MAC of §9.8.6 over `data` as given: retail MAC (3DES, `data` must be padded
/// already) or CMAC (AES).
pub fn mac(cipher: Cipher, key: &[u8], data: &[u8]) -> Result<[u8; 8], CryptoError> {
    match cipher {
        Cipher::Tdes => retail_mac(key, data),
        _ => cmac8(cipher, key, data),
    }
}

// ---- errors ----

/// Why secure messaging failed. Whose fault: the peer's (a chip or terminal that sent a bad,
/// forged or unprotected message), except [`SmError::Crypto`] and [`SmError::Apdu`] (ours).
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum SmError {
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// The cryptographic checksum (DO8E) does not match: forged, corrupted or out of sequence.
    #[error("secure messaging MAC mismatch")]
    MacMismatch,
    /// A mandatory data object is missing (99 in a response, 8E in either direction).
    #[error("secure messaging data object {0:02X} missing")]
    MissingObject(u8),
    /// A data object that has no place in a protected APDU, or one out of order.
    #[error("unexpected secure messaging data object {0:X}")]
    UnexpectedObject(u32),
    /// The protected data field is not valid BER-TLV.
    #[error("malformed secure messaging data objects: {0}")]
    Malformed(#[from] TlvError),
    /// A data object of the wrong length (DO99 not 2 bytes, DO8E not 8, DO97 over 2).
    #[error("secure messaging data object {0:02X} has a bad length")]
    BadObjectLength(u8),
    /// Decrypted data without valid ISO/IEC 9797-1 method 2 padding.
    #[error("bad padding in decrypted data")]
    BadPadding,
    /// DO87 whose first byte is not 01 (padding-content indicator).
    #[error("DO87 padding indicator {0:02X}, expected 01")]
    BadPaddingIndicator(u8),
    /// The chip answered 6987 or 6988 without protection: it rejected our secure messaging.
    #[error("the chip rejected secure messaging ({:04X})", .0.to_u16())]
    ChipRejected(Status),
    /// The chip answered without secure messaging (this status word is not authenticated).
    #[error("unprotected answer {:04X} from the chip", .0.to_u16())]
    Unprotected(Status),
    /// Chip side: a command without secure messaging (CLA bits 3-4 not set).
    #[error("command without secure messaging")]
    UnprotectedCommand,
    /// Terminal side: the command cannot be protected (proprietary class or already SM).
    #[error("class byte {0:02X} cannot be protected")]
    UnsupportedClass(u8),
    /// The protected command does not fit an APDU.
    #[error("protected APDU: {0}")]
    Apdu(#[from] crate::ApduError),
    /// The channel was closed by an earlier error; establish a new one.
    #[error("secure messaging session closed by an earlier error")]
    Closed,
    /// Keys or SSC of the wrong size for the cipher.
    #[error("SSC of {0} bytes does not fit the cipher")]
    BadSsc(usize),
}

impl SmError {
    /// The status word a chip answers (in plain) for this error: 6987 for missing objects, 6988
    /// for everything else (ICAO 9303-11 §9.8.3).
    pub fn status(&self) -> Status {
        match self {
            SmError::MissingObject(_) | SmError::UnprotectedCommand => Status::SmObjectsMissing,
            _ => Status::SmObjectsIncorrect,
        }
    }
}

// ---- shared state ----

struct SmState {
    cipher: Cipher,
    k_enc: Zeroizing<Vec<u8>>,
    k_mac: Zeroizing<Vec<u8>>,
    ssc: Zeroizing<Vec<u8>>,
    closed: bool,
}

impl SmState {
    fn new(keys: SessionKeys, ssc: &[u8]) -> Result<Self, SmError> {
        let cipher = keys.cipher;
        if ssc.len() != cipher.block_len() {
            return Err(SmError::BadSsc(ssc.len()));
        }
        for key in [&keys.k_enc, &keys.k_mac] {
            if key.len() != cipher.key_len() {
                return Err(CryptoError::BadKeyLength(key.len()).into());
            }
        }
        Ok(SmState {
            cipher,
            k_enc: keys.k_enc,
            k_mac: keys.k_mac,
            ssc: Zeroizing::new(ssc.to_vec()),
            closed: false,
        })
    }

    fn increment(&mut self) {
        for byte in self.ssc.iter_mut().rev() {
            let (v, carry) = byte.overflowing_add(1);
            *byte = v;
            if !carry {
                break;
            }
        }
    }

    fn iv(&self) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        match self.cipher {
            Cipher::Tdes => Ok(Zeroizing::new(vec![0; 8])),
            c => ecb_encrypt(c, &self.k_enc, &self.ssc),
        }
    }

    fn encrypt(&self, data: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let padded = pad(data, self.cipher.block_len());
        cbc_encrypt(self.cipher, &self.k_enc, &self.iv()?, &padded)
    }

    fn decrypt(&self, data: &[u8]) -> Result<Zeroizing<Vec<u8>>, SmError> {
        let block = self.cipher.block_len();
        if data.is_empty() || !data.len().is_multiple_of(block) {
            return Err(SmError::BadPadding);
        }
        let plain = cbc_decrypt(self.cipher, &self.k_enc, &self.iv()?, data)?;
        let unpadded = unpad(&plain, block).ok_or(SmError::BadPadding)?;
        Ok(Zeroizing::new(unpadded.to_vec()))
    }

    /// MAC over `pad(SSC || parts...)`.
    fn mac(&self, parts: &[&[u8]]) -> Result<[u8; 8], CryptoError> {
        let mut input = Vec::new();
        input.extend_from_slice(&self.ssc);
        for part in parts {
            input.extend_from_slice(part);
        }
        let padded = pad(&input, self.cipher.block_len());
        mac(self.cipher, &self.k_mac, &padded)
    }

    /// DO87 (even INS) or DO85 (odd INS) carrying `data` encrypted.
    fn data_object(&self, data: &[u8], odd_ins: bool) -> Result<Vec<u8>, SmError> {
        let enc = self.encrypt(data)?;
        if odd_ins {
            return Ok(tlv::encode(0x85, &enc)?);
        }
        let mut value = Vec::with_capacity(enc.len() + 1);
        value.push(0x01);
        value.extend_from_slice(&enc);
        Ok(tlv::encode(0x87, &value)?)
    }

    /// The plain data of a DO87 / DO85.
    fn open_data_object(&self, obj: &tlv::Tlv<'_>) -> Result<Zeroizing<Vec<u8>>, SmError> {
        match obj.tag() {
            0x87 => match obj.value().split_first() {
                Some((0x01, enc)) => self.decrypt(enc),
                Some((other, _)) => Err(SmError::BadPaddingIndicator(*other)),
                None => Err(SmError::BadObjectLength(0x87)),
            },
            _ => self.decrypt(obj.value()),
        }
    }
}

/// Data objects before DO8E, the bytes they span (the MAC input) and the MAC.
type Split<'a> = (Vec<tlv::Tlv<'a>>, &'a [u8], [u8; 8]);

/// Splits a protected data field into its data objects, in order, without gaps or padding.
/// Returns the objects and, for the final 8E, the bytes before it (the MAC input).
fn split_objects(data: &[u8]) -> Result<Split<'_>, SmError> {
    let mut objects = Vec::new();
    let mut pos = 0usize;
    while pos < data.len() {
        let rest = data.get(pos..).unwrap_or_default();
        if matches!(rest.first(), Some(0x00 | 0xFF)) {
            return Err(SmError::UnexpectedObject(0));
        }
        let obj = match tlv::iter(rest).next() {
            Some(obj) => obj?,
            None => break,
        };
        if obj.tag() == 0x8E {
            let mac: [u8; 8] = obj
                .value()
                .try_into()
                .map_err(|_| SmError::BadObjectLength(0x8E))?;
            if pos + obj.raw().len() != data.len() {
                return Err(SmError::UnexpectedObject(0x8E));
            }
            return Ok((objects, data.get(..pos).unwrap_or_default(), mac));
        }
        if objects.len() >= 3 {
            return Err(SmError::UnexpectedObject(obj.tag()));
        }
        pos += obj.raw().len();
        objects.push(obj);
    }
    Err(SmError::MissingObject(0x8E))
}

fn tlv_size(n: usize) -> usize {
    1 + match n {
        0..=0x7F => 1,
        0x80..=0xFF => 2,
        _ => 3,
    } + n
}

// ---- terminal ----

/// The terminal's end of a secure messaging session (ICAO 9303-11 §9.8).
pub struct SecureChannel {
    state: SmState,
}

impl SecureChannel {
    /// A session with these keys and this initial SSC (8 bytes for 3DES, 16 for AES).
    pub fn new(keys: SessionKeys, ssc: &[u8]) -> Result<Self, SmError> {
        Ok(SecureChannel {
            state: SmState::new(keys, ssc)?,
        })
    }

    pub fn cipher(&self) -> Cipher {
        self.state.cipher
    }

    /// The current send sequence counter (not secret; for tests and diagnostics).
    pub fn ssc(&self) -> &[u8] {
        &self.state.ssc
    }

    /// Whether an earlier error closed the session.
    pub fn is_closed(&self) -> bool {
        self.state.closed
    }

    /// Protects a command, choosing the length form: extended when the plain command needs it
    /// or the protected data would exceed 255 bytes, short otherwise.
    pub fn wrap(&mut self, command: &Command) -> Result<Command, SmError> {
        let block = self.state.cipher.block_len();
        let nc = command.nc();
        let do87 = if nc == 0 {
            0
        } else {
            tlv_size((nc / block + 1) * block + 1)
        };
        let size = do87 + 4 + 10;
        let form = if command.needs_extended() || size > SHORT_MAX_NC {
            LengthForm::Extended
        } else {
            LengthForm::Short
        };
        self.wrap_in(command, form)
    }

    /// Protects a command for the given length form (DO97 of one byte and Le 00, or two bytes
    /// and Le 0000).
    pub fn wrap_in(&mut self, command: &Command, form: LengthForm) -> Result<Command, SmError> {
        let result = self.wrap_inner(command, form);
        if result.is_err() {
            self.state.closed = true;
        }
        result
    }

    fn wrap_inner(&mut self, command: &Command, form: LengthForm) -> Result<Command, SmError> {
        if self.state.closed {
            return Err(SmError::Closed);
        }
        let cla = command.cla();
        if cla & 0x80 != 0 || cla & 0x0C != 0 || cla & 0xE0 == 0x20 {
            return Err(SmError::UnsupportedClass(cla));
        }
        let cla = cla | 0x0C;
        self.state.increment();
        let header = [cla, command.ins(), command.p1(), command.p2()];
        let block = self.state.cipher.block_len();
        let odd = command.ins() & 1 == 1;
        let do87 = if command.nc() > 0 {
            self.state.data_object(command.data(), odd)?
        } else {
            Vec::new()
        };
        let do97 = match (command.ne(), form) {
            (None, _) => Vec::new(),
            (Some(ne), LengthForm::Short) if ne <= SHORT_MAX_NE => vec![0x97, 0x01, ne as u8],
            (Some(ne), _) => {
                let le = ((ne % EXTENDED_MAX_NE) as u16).to_be_bytes();
                vec![0x97, 0x02, le[0], le[1]]
            }
        };
        let mac = self.state.mac(&[&pad(&header, block), &do87, &do97])?;
        let mut data = Vec::with_capacity(do87.len() + do97.len() + 10);
        data.extend_from_slice(&do87);
        data.extend_from_slice(&do97);
        data.extend_from_slice(&[0x8E, 0x08]);
        data.extend_from_slice(&mac);
        let ne = match form {
            LengthForm::Short => SHORT_MAX_NE,
            LengthForm::Extended => EXTENDED_MAX_NE,
        };
        let max_nc = match form {
            LengthForm::Short => SHORT_MAX_NC,
            LengthForm::Extended => EXTENDED_MAX_NC,
        };
        if data.len() > max_nc {
            return Err(crate::ApduError::DataTooLong {
                nc: data.len(),
                form,
            }
            .into());
        }
        Ok(Command::new(cla, command.ins(), command.p1(), command.p2())
            .with_data(data)
            .with_ne(ne))
    }

    /// Verifies and decrypts a protected response. The returned response carries the status
    /// word of DO99. Plain answers (6987/6988 or anything else without SM objects) are errors.
    pub fn unwrap(&mut self, response: &Response) -> Result<Response, SmError> {
        let result = self.unwrap_inner(response);
        if result.is_err() {
            self.state.closed = true;
        }
        result
    }

    fn unwrap_inner(&mut self, response: &Response) -> Result<Response, SmError> {
        if self.state.closed {
            return Err(SmError::Closed);
        }
        let data = response.data();
        if data.is_empty() {
            return Err(match response.status() {
                sw @ (Status::SmObjectsMissing | Status::SmObjectsIncorrect) => {
                    SmError::ChipRejected(sw)
                }
                sw => SmError::Unprotected(sw),
            });
        }
        self.state.increment();
        let (objects, mac_input, mac) = split_objects(data)?;
        let mut body = None;
        let mut sw = None;
        for obj in &objects {
            match obj.tag() {
                0x85 | 0x87 if body.is_none() && sw.is_none() => body = Some(*obj),
                0x99 if sw.is_none() => {
                    let v: [u8; 2] = obj
                        .value()
                        .try_into()
                        .map_err(|_| SmError::BadObjectLength(0x99))?;
                    sw = Some(Status::from(v));
                }
                tag => return Err(SmError::UnexpectedObject(tag)),
            }
        }
        let expected = self.state.mac(&[mac_input])?;
        if !memcmp::eq(&expected, &mac) {
            return Err(SmError::MacMismatch);
        }
        let sw = sw.ok_or(SmError::MissingObject(0x99))?;
        let plain = match body {
            Some(obj) => self.state.open_data_object(&obj)?,
            None => Zeroizing::new(Vec::new()),
        };
        Ok(Response::new(plain.to_vec(), sw))
    }
}

impl fmt::Debug for SecureChannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SecureChannel({:?}, closed={})",
            self.state.cipher, self.state.closed
        )
    }
}

// ---- chip ----

/// The chip's end of a secure messaging session (ICAO 9303-11 §9.8).
pub struct ChipChannel {
    state: SmState,
    odd_ins: bool,
}

impl ChipChannel {
    /// A session with these keys and this initial SSC.
    pub fn new(keys: SessionKeys, ssc: &[u8]) -> Result<Self, SmError> {
        Ok(ChipChannel {
            state: SmState::new(keys, ssc)?,
            odd_ins: false,
        })
    }

    pub fn cipher(&self) -> Cipher {
        self.state.cipher
    }

    pub fn ssc(&self) -> &[u8] {
        &self.state.ssc
    }

    pub fn is_closed(&self) -> bool {
        self.state.closed
    }

    /// Verifies and decrypts a protected command. On error the chip answers
    /// [`SmError::status`] in plain and the session is over.
    pub fn unwrap_command(&mut self, command: &Command) -> Result<Command, SmError> {
        let result = self.unwrap_inner(command);
        if result.is_err() {
            self.state.closed = true;
        }
        result
    }

    fn unwrap_inner(&mut self, command: &Command) -> Result<Command, SmError> {
        if self.state.closed {
            return Err(SmError::Closed);
        }
        let cla = command.cla();
        if cla & 0x80 != 0 || cla & 0x0C != 0x0C {
            return Err(SmError::UnprotectedCommand);
        }
        self.state.increment();
        let header = [cla, command.ins(), command.p1(), command.p2()];
        let (objects, mac_input, mac) = split_objects(command.data())?;
        let mut body = None;
        let mut le = None;
        for obj in &objects {
            match obj.tag() {
                0x85 | 0x87 if body.is_none() && le.is_none() => body = Some(*obj),
                0x97 if le.is_none() => le = Some(obj.value()),
                tag => return Err(SmError::UnexpectedObject(tag)),
            }
        }
        let block = self.state.cipher.block_len();
        let expected = self.state.mac(&[&pad(&header, block), mac_input])?;
        if !memcmp::eq(&expected, &mac) {
            return Err(SmError::MacMismatch);
        }
        let ne = match le {
            None => 0,
            Some([]) | Some([0]) => SHORT_MAX_NE,
            Some([n]) => usize::from(*n),
            Some([0, 0]) => EXTENDED_MAX_NE,
            Some([a, b]) => usize::from(u16::from_be_bytes([*a, *b])),
            Some(_) => return Err(SmError::BadObjectLength(0x97)),
        };
        let plain = match body {
            Some(obj) => self.state.open_data_object(&obj)?,
            None => Zeroizing::new(Vec::new()),
        };
        self.odd_ins = command.ins() & 1 == 1;
        Ok(
            Command::new(cla & !0x0C, command.ins(), command.p1(), command.p2())
                .with_secret_data(plain)
                .with_ne(ne),
        )
    }

    /// Protects an answer to the last unwrapped command.
    pub fn wrap_response(&mut self, response: &Response) -> Result<Response, SmError> {
        if self.state.closed {
            return Err(SmError::Closed);
        }
        self.state.increment();
        let do87 = if response.data().is_empty() {
            Vec::new()
        } else {
            self.state.data_object(response.data(), self.odd_ins)?
        };
        let sw = response.status().to_bytes();
        let do99 = [0x99, 0x02, sw[0], sw[1]];
        let mac = self.state.mac(&[&do87, &do99])?;
        let mut data = Vec::with_capacity(do87.len() + 14);
        data.extend_from_slice(&do87);
        data.extend_from_slice(&do99);
        data.extend_from_slice(&[0x8E, 0x08]);
        data.extend_from_slice(&mac);
        Ok(Response::new(data, response.status()))
    }
}

impl fmt::Debug for ChipChannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ChipChannel({:?}, closed={})",
            self.state.cipher, self.state.closed
        )
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn pad_and_unpad() {
        assert_eq!(&pad(&[1, 2], 8)[..], &[1, 2, 0x80, 0, 0, 0, 0, 0]);
        assert_eq!(pad(&[0; 8], 8).len(), 16);
        assert_eq!(unpad(&[1, 2, 0x80, 0, 0, 0, 0, 0], 8), Some(&[1u8, 2][..]));
        assert_eq!(unpad(&[1, 2, 0, 0, 0, 0, 0, 0], 8), None);
        assert_eq!(unpad(&[0x80, 0, 0, 0, 0, 0, 0, 0, 0], 8), None);
        assert_eq!(unpad(&[], 8), None);
    }

    #[test]
    fn cmac_matches_sp800_38b_example() {
        // NIST SP 800-38B D.1, AES-128, Example 2 (16-byte message).
        let key = [
            0x2b, 0x7e, 0x15, 0x16, 0x28, 0xae, 0xd2, 0xa6, 0xab, 0xf7, 0x15, 0x88, 0x09, 0xcf,
            0x4f, 0x3c,
        ];
        let msg = [
            0x6b, 0xc1, 0xbe, 0xe2, 0x2e, 0x40, 0x9f, 0x96, 0xe9, 0x3d, 0x7e, 0x11, 0x73, 0x93,
            0x17, 0x2a,
        ];
        let mac = mac(Cipher::Aes128, &key, &msg).unwrap();
        assert_eq!(mac, [0x07, 0x0a, 0x16, 0xb4, 0x6b, 0x4d, 0x41, 0x44]);
    }
}
