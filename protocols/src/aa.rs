//! Active Authentication, ICAO 9303-11 §6.1: the chip signs the terminal's 8-byte challenge
//! (INTERNAL AUTHENTICATE) with the private key matching DG15.
//!
//! - RSA: ISO/IEC 9796-2 digital signature scheme 1 with partial message recovery (§6.1.2.1):
//!   the recovered representative is `6A || M1 || H(M1 || RND.IFD) || trailer`, the trailer
//!   `BC` (SHA-1, implicit) or `xx CC` (ISO/IEC 10118-3 hash identifier: 33 SHA-1, 34 SHA-256,
//!   35 SHA-512, 36 SHA-384, 38 SHA-224).
//! - ECDSA: the plain `r || s` signature (BSI TR-03111) over `H(RND.IFD)` with the hash of the
//!   ActiveAuthenticationInfo in DG14 (§9.2.9).
//!
//! [`verify`] is the terminal side; [`sign`] the chip side.

use openssl::bn::BigNum;
use openssl::ec::EcKey;
use openssl::ecdsa::EcdsaSig;
use openssl::error::ErrorStack;
use openssl::hash::{MessageDigest, hash};
use openssl::memcmp;
use openssl::pkey::{PKey, Private};
use openssl::rsa::{Padding, Rsa};
use thiserror::Error;

use crate::Command;
use crate::pace::order;
use crate::sm::{CryptoError, RandomSource};

/// Why active authentication failed. Whose fault: the chip's (a clone or a forged answer) for
/// `BadSignature`, the caller's for `UnknownHash` / `UnsupportedKey`, ours for `Crypto`.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum AaError {
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// The signature does not verify with the DG15 key over this challenge.
    #[error("active authentication signature does not verify")]
    BadSignature,
    /// A trailer or signature algorithm naming an unknown hash, or an EC key without a hash.
    #[error("unknown active authentication hash")]
    UnknownHash,
    /// A key that is neither RSA nor EC (or unusable).
    #[error("unsupported active authentication key")]
    UnsupportedKey,
}

impl From<ErrorStack> for AaError {
    fn from(e: ErrorStack) -> Self {
        AaError::Crypto(CryptoError::OpenSsl(e))
    }
}

/// Hash functions for active authentication.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum AaHash {
    Sha1,
    Sha224,
    Sha256,
    Sha384,
    Sha512,
}

impl AaHash {
    fn md(self) -> MessageDigest {
        match self {
            AaHash::Sha1 => MessageDigest::sha1(),
            AaHash::Sha224 => MessageDigest::sha224(),
            AaHash::Sha256 => MessageDigest::sha256(),
            AaHash::Sha384 => MessageDigest::sha384(),
            AaHash::Sha512 => MessageDigest::sha512(),
        }
    }

    fn len(self) -> usize {
        self.md().size()
    }

    /// ISO/IEC 10118-3 hash identifier used in the `xx CC` trailer.
    fn trailer_id(self) -> u8 {
        match self {
            AaHash::Sha1 => 0x33,
            AaHash::Sha256 => 0x34,
            AaHash::Sha512 => 0x35,
            AaHash::Sha384 => 0x36,
            AaHash::Sha224 => 0x38,
        }
    }

    fn from_trailer_id(id: u8) -> Option<Self> {
        Some(match id {
            0x33 => AaHash::Sha1,
            0x34 => AaHash::Sha256,
            0x35 => AaHash::Sha512,
            0x36 => AaHash::Sha384,
            0x38 => AaHash::Sha224,
            _ => return None,
        })
    }

    /// The hash of an ECDSA signature algorithm OID in ActiveAuthenticationInfo
    /// (`ecdsa-with-SHA1` 1.2.840.10045.4.1, `ecdsa-with-SHA224/256/384/512` …4.3.{1,2,3,4}).
    pub fn from_signature_oid(dotted: &str) -> Option<Self> {
        Some(match dotted {
            "1.2.840.10045.4.1" => AaHash::Sha1,
            "1.2.840.10045.4.3.1" => AaHash::Sha224,
            "1.2.840.10045.4.3.2" => AaHash::Sha256,
            "1.2.840.10045.4.3.3" => AaHash::Sha384,
            "1.2.840.10045.4.3.4" => AaHash::Sha512,
            _ => return None,
        })
    }
}

/// INTERNAL AUTHENTICATE for active authentication: `00 88 00 00 08 <RND.IFD> 00`.
pub fn internal_authenticate(rnd_ifd: &[u8; 8]) -> Command {
    crate::commands::internal_authenticate(0x00, 0x00, rnd_ifd, 256)
}

/// A fresh 8-byte challenge.
pub fn challenge(rng: &mut dyn RandomSource) -> Result<[u8; 8], AaError> {
    let mut c = [0u8; 8];
    rng.fill(&mut c)?;
    Ok(c)
}

/// Verifies an active authentication answer. `public_key` is the SubjectPublicKeyInfo DER of
/// DG15; `ec_hash` the hash from ActiveAuthenticationInfo (required for EC keys, ignored for
/// RSA whose trailer names the hash).
pub fn verify(
    public_key: &[u8],
    rnd_ifd: &[u8],
    signature: &[u8],
    ec_hash: Option<AaHash>,
) -> Result<(), AaError> {
    let pkey = PKey::public_key_from_der(public_key).map_err(|_| AaError::UnsupportedKey)?;
    if let Ok(rsa) = pkey.rsa() {
        return verify_rsa(&rsa, rnd_ifd, signature);
    }
    if let Ok(ec) = pkey.ec_key() {
        let hash_alg = ec_hash.ok_or(AaError::UnknownHash)?;
        return verify_ec(&ec, rnd_ifd, signature, hash_alg);
    }
    Err(AaError::UnsupportedKey)
}

fn verify_rsa(
    rsa: &Rsa<openssl::pkey::Public>,
    rnd_ifd: &[u8],
    signature: &[u8],
) -> Result<(), AaError> {
    let k = rsa.size() as usize;
    if signature.len() != k {
        return Err(AaError::BadSignature);
    }
    let mut buf = vec![0u8; k];
    let n = rsa
        .public_decrypt(signature, &mut buf, Padding::NONE)
        .map_err(|_| AaError::BadSignature)?;
    buf.truncate(n);
    // ISO/IEC 9796-2 §B: the signature may be min(s, n - s); undo it when the trailer does not
    // end in C.
    if buf.last().is_none_or(|b| b & 0x0F != 0x0C) {
        let m = BigNum::from_slice(&buf)?;
        let mut alt = BigNum::new()?;
        alt.checked_sub(rsa.n(), &m)?;
        let len = i32::try_from(k).map_err(|_| AaError::BadSignature)?;
        buf = alt.to_vec_padded(len).map_err(|_| AaError::BadSignature)?;
    }
    let (hash_alg, trailer_len) = match buf.as_slice() {
        [.., 0xBC] => (AaHash::Sha1, 1),
        [.., id, 0xCC] => (AaHash::from_trailer_id(*id).ok_or(AaError::UnknownHash)?, 2),
        _ => return Err(AaError::BadSignature),
    };
    if buf.first() != Some(&0x6A) {
        return Err(AaError::BadSignature);
    }
    let l = hash_alg.len();
    let digest_start = k
        .checked_sub(trailer_len + l)
        .filter(|&d| d >= 1)
        .ok_or(AaError::BadSignature)?;
    let m1 = buf.get(1..digest_start).ok_or(AaError::BadSignature)?;
    let digest = buf
        .get(digest_start..k - trailer_len)
        .ok_or(AaError::BadSignature)?;
    let mut input = Vec::with_capacity(m1.len() + rnd_ifd.len());
    input.extend_from_slice(m1);
    input.extend_from_slice(rnd_ifd);
    let expected = hash(hash_alg.md(), &input)?;
    if expected.len() == digest.len() && memcmp::eq(&expected, digest) {
        Ok(())
    } else {
        Err(AaError::BadSignature)
    }
}

fn verify_ec(
    ec: &EcKey<openssl::pkey::Public>,
    rnd_ifd: &[u8],
    signature: &[u8],
    hash_alg: AaHash,
) -> Result<(), AaError> {
    let n_len = order(ec.group())?.num_bytes() as usize;
    if signature.len() != 2 * n_len {
        return Err(AaError::BadSignature);
    }
    let (r, s) = signature.split_at(n_len);
    let sig = EcdsaSig::from_private_components(BigNum::from_slice(r)?, BigNum::from_slice(s)?)?;
    let digest = hash(hash_alg.md(), rnd_ifd)?;
    if sig.verify(&digest, ec).map_err(|_| AaError::BadSignature)? {
        Ok(())
    } else {
        Err(AaError::BadSignature)
    }
}

/// The chip's active authentication key (DG15's private half).
#[derive(Clone)]
pub enum AaKey {
    /// RSA with the hash of the ISO/IEC 9796-2 representative (SHA-1 uses the `BC` trailer).
    Rsa(Rsa<Private>, AaHash),
    /// ECDSA with the hash of ActiveAuthenticationInfo.
    Ec(EcKey<Private>, AaHash),
}

impl std::fmt::Debug for AaKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AaKey::Rsa(_, h) => write!(f, "AaKey::Rsa({h:?}, <secret>)"),
            AaKey::Ec(_, h) => write!(f, "AaKey::Ec({h:?}, <secret>)"),
        }
    }
}

impl AaKey {
    /// The public key as SubjectPublicKeyInfo DER (DG15 content).
    pub fn public_key_der(&self) -> Result<Vec<u8>, AaError> {
        Ok(match self {
            AaKey::Rsa(rsa, _) => {
                let public = Rsa::from_public_components(rsa.n().to_owned()?, rsa.e().to_owned()?)?;
                PKey::from_rsa(public)?.public_key_to_der()?
            }
            AaKey::Ec(ec, _) => {
                let public = EcKey::from_public_key(ec.group(), ec.public_key())?;
                PKey::from_ec_key(public)?.public_key_to_der()?
            }
        })
    }

    pub fn hash(&self) -> AaHash {
        match self {
            AaKey::Rsa(_, h) | AaKey::Ec(_, h) => *h,
        }
    }
}

/// Chip side: signs the challenge (the INTERNAL AUTHENTICATE answer data).
pub fn sign(key: &AaKey, rnd_ifd: &[u8], rng: &mut dyn RandomSource) -> Result<Vec<u8>, AaError> {
    match key {
        AaKey::Rsa(rsa, hash_alg) => {
            let k = rsa.size() as usize;
            if rsa.n().num_bits() % 8 != 0 {
                return Err(AaError::UnsupportedKey);
            }
            let trailer: &[u8] = match hash_alg {
                AaHash::Sha1 => &[0xBC],
                other => &[other.trailer_id(), 0xCC],
            };
            let m1_len = k
                .checked_sub(1 + hash_alg.len() + trailer.len())
                .filter(|&l| l > 0)
                .ok_or(AaError::UnsupportedKey)?;
            let mut m1 = vec![0u8; m1_len];
            rng.fill(&mut m1)?;
            let mut input = m1.clone();
            input.extend_from_slice(rnd_ifd);
            let digest = hash(hash_alg.md(), &input)?;
            let mut repr = Vec::with_capacity(k);
            repr.push(0x6A);
            repr.extend_from_slice(&m1);
            repr.extend_from_slice(&digest);
            repr.extend_from_slice(trailer);
            let mut out = vec![0u8; k];
            let n = rsa.private_encrypt(&repr, &mut out, Padding::NONE)?;
            out.truncate(n);
            Ok(out)
        }
        AaKey::Ec(ec, hash_alg) => {
            let digest = hash(hash_alg.md(), rnd_ifd)?;
            let sig = EcdsaSig::sign(&digest, ec)?;
            let len = order(ec.group())?.num_bytes();
            let mut out = sig.r().to_vec_padded(len)?;
            out.extend(sig.s().to_vec_padded(len)?);
            Ok(out)
        }
    }
}
