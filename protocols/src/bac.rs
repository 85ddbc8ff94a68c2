//! Basic Access Control, ICAO 9303-11 §4.3 (with the key derivation of §9.7.1 and the worked
//! example of Appendix D): terminal side ([`BacTerminal`]) and chip side ([`BacChip`]).
//!
//! `Kseed = SHA-1(MRZ_information)[0..16]`, `KEnc = KDF(Kseed, 1)`, `KMAC = KDF(Kseed, 2)`
//! (two-key 3DES). The terminal sends GET CHALLENGE, then EXTERNAL AUTHENTICATE with
//! `E_IFD = 3DES(KEnc, RND.IFD || RND.IC || K.IFD)` and `M_IFD = MAC(KMAC, E_IFD)`; the chip
//! answers `E_IC || M_IC` over `RND.IC || RND.IFD || K.IC`. Session keys come from
//! `K.IFD ⊕ K.IC`, the SSC from the low halves of the two challenges (§9.8.2).

use openssl::hash::{MessageDigest, hash};
use openssl::memcmp;
use thiserror::Error;
use zeroize::Zeroizing;

use crate::kdf::{COUNTER_ENC, COUNTER_MAC, SessionKeys, derive_key};
use crate::sm::{
    ChipChannel, Cipher, CryptoError, RandomSource, SecureChannel, SmError, cbc_decrypt,
    cbc_encrypt, mac, pad,
};
use crate::{Command, Response, Status};

const ZERO_IV: [u8; 8] = [0; 8];

/// Why BAC failed. Whose fault: the user's for a wrong MRZ (the chip answers 6300 / 6988, or
/// its cryptogram does not verify), the peer's for malformed messages, ours for `Crypto`.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum BacError {
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    #[error(transparent)]
    Sm(#[from] SmError),
    /// The chip refused EXTERNAL AUTHENTICATE or GET CHALLENGE (6300 or 6988 usually means the
    /// MRZ data used for the keys is wrong).
    #[error("the chip refused BAC ({:04X})", .0.to_u16())]
    Rejected(Status),
    /// A message of the wrong size.
    #[error("BAC message of {0} bytes has the wrong length")]
    BadLength(usize),
    /// The MAC over the cryptogram does not verify (wrong keys or a forged message).
    #[error("BAC cryptogram MAC mismatch")]
    MacMismatch,
    /// The decrypted cryptogram does not carry the challenges we expect.
    #[error("BAC challenge mismatch")]
    ChallengeMismatch,
    /// EXTERNAL AUTHENTICATE before GET CHALLENGE (chip side) or steps out of order.
    #[error("BAC step out of order")]
    OutOfOrder,
}

impl BacError {
    /// The status word a chip answers for this error (cards.md B2: 6300 wrong challenge, 6988
    /// bad MAC).
    pub fn status(&self) -> Status {
        match self {
            BacError::MacMismatch => Status::SmObjectsIncorrect,
            BacError::ChallengeMismatch => Status::VerificationFailed,
            BacError::BadLength(_) => Status::WrongLength,
            BacError::OutOfOrder => Status::ConditionsNotSatisfied,
            BacError::Rejected(sw) => *sw,
            _ => Status::NoPreciseDiagnosis,
        }
    }
}

// MRZ_information itself (document number, birth and expiry dates with their check digits) is
// built by [`crate::mrz::mrz_information`].

/// The BAC keys `KEnc`, `KMAC` from MRZ_information (§9.7.2).
pub fn bac_keys(mrz_information: &[u8]) -> Result<SessionKeys, CryptoError> {
    let digest = hash(MessageDigest::sha1(), mrz_information)?;
    let seed = Zeroizing::new(digest.get(..16).map(<[u8]>::to_vec).unwrap_or_default());
    SessionKeys::derive(Cipher::Tdes, &seed)
}

/// GET CHALLENGE for BAC: `00 84 00 00 08`.
pub fn get_challenge() -> Command {
    crate::commands::get_challenge(8)
}

fn session(k_a: &[u8], k_b: &[u8]) -> Result<SessionKeys, CryptoError> {
    let seed: Zeroizing<Vec<u8>> =
        Zeroizing::new(k_a.iter().zip(k_b).map(|(a, b)| a ^ b).collect());
    Ok(SessionKeys {
        cipher: Cipher::Tdes,
        k_enc: derive_key(Cipher::Tdes, &seed, COUNTER_ENC)?,
        k_mac: derive_key(Cipher::Tdes, &seed, COUNTER_MAC)?,
    })
}

fn ssc(rnd_ic: &[u8; 8], rnd_ifd: &[u8; 8]) -> [u8; 8] {
    let mut s = [0u8; 8];
    s[..4].copy_from_slice(&rnd_ic[4..]);
    s[4..].copy_from_slice(&rnd_ifd[4..]);
    s
}

/// `E || MAC(E)` over `a || b || key`.
fn seal(
    keys: &SessionKeys,
    a: &[u8; 8],
    b: &[u8; 8],
    key: &[u8; 16],
) -> Result<Vec<u8>, CryptoError> {
    let mut s = Zeroizing::new(Vec::with_capacity(32));
    s.extend_from_slice(a);
    s.extend_from_slice(b);
    s.extend_from_slice(key);
    let e = cbc_encrypt(Cipher::Tdes, &keys.k_enc, &ZERO_IV, &s)?;
    let m = mac(Cipher::Tdes, &keys.k_mac, &pad(&e, 8))?;
    let mut out = Vec::with_capacity(40);
    out.extend_from_slice(&e);
    out.extend_from_slice(&m);
    Ok(out)
}

/// Verifies and opens `E || M`: returns `(first, second, key)`.
fn open(keys: &SessionKeys, data: &[u8]) -> Result<Opened, BacError> {
    if data.len() != 40 {
        return Err(BacError::BadLength(data.len()));
    }
    let (e, m) = data.split_at(32);
    let expected = mac(Cipher::Tdes, &keys.k_mac, &pad(e, 8))?;
    if !memcmp::eq(&expected, m) {
        return Err(BacError::MacMismatch);
    }
    let s = cbc_decrypt(Cipher::Tdes, &keys.k_enc, &ZERO_IV, e)?;
    let mut a = [0u8; 8];
    let mut b = [0u8; 8];
    let mut k = Zeroizing::new([0u8; 16]);
    let (Some(sa), Some(sb), Some(sk)) = (s.get(..8), s.get(8..16), s.get(16..32)) else {
        return Err(BacError::BadLength(s.len()));
    };
    a.copy_from_slice(sa);
    b.copy_from_slice(sb);
    k.copy_from_slice(sk);
    Ok((a, b, k))
}

/// Terminal side of BAC (ICAO 9303-11 §4.3.4.1, inspection system).
pub struct BacTerminal {
    keys: SessionKeys,
    sent: Option<Opened>,
}

/// `(RND.IFD, RND.IC, K.IFD)` or `(RND.IC, RND.IFD, K.IC)`.
type Opened = ([u8; 8], [u8; 8], Zeroizing<[u8; 16]>);

impl BacTerminal {
    /// Derives `KEnc` and `KMAC` from MRZ_information.
    pub fn new(mrz_information: &[u8]) -> Result<Self, BacError> {
        Ok(BacTerminal {
            keys: bac_keys(mrz_information)?,
            sent: None,
        })
    }

    /// The command to send first: [`get_challenge`].
    pub fn get_challenge(&self) -> Command {
        get_challenge()
    }

    /// From the GET CHALLENGE answer (RND.IC), builds EXTERNAL AUTHENTICATE with fresh RND.IFD
    /// and K.IFD from `rng`.
    pub fn external_authenticate(
        &mut self,
        challenge: &Response,
        rng: &mut dyn RandomSource,
    ) -> Result<Command, BacError> {
        let mut rnd_ifd = [0u8; 8];
        let mut k_ifd = Zeroizing::new([0u8; 16]);
        rng.fill(&mut rnd_ifd)?;
        rng.fill(&mut k_ifd[..])?;
        self.external_authenticate_with(challenge, rnd_ifd, &k_ifd)
    }

    /// Like [`BacTerminal::external_authenticate`] with RND.IFD and K.IFD given (worked
    /// examples).
    pub fn external_authenticate_with(
        &mut self,
        challenge: &Response,
        rnd_ifd: [u8; 8],
        k_ifd: &[u8; 16],
    ) -> Result<Command, BacError> {
        if !challenge.is_success() {
            return Err(BacError::Rejected(challenge.status()));
        }
        let rnd_ic: [u8; 8] = challenge
            .data()
            .try_into()
            .map_err(|_| BacError::BadLength(challenge.data().len()))?;
        let data = seal(&self.keys, &rnd_ifd, &rnd_ic, k_ifd)?;
        self.sent = Some((rnd_ifd, rnd_ic, Zeroizing::new(*k_ifd)));
        Ok(crate::commands::external_authenticate(0, 0, &data, 40))
    }

    /// Checks the chip's answer to EXTERNAL AUTHENTICATE and opens the secure channel
    /// (session keys from `K.IFD ⊕ K.IC`, SSC from the challenges).
    pub fn finish(self, response: &Response) -> Result<SecureChannel, BacError> {
        let (rnd_ifd, rnd_ic, k_ifd) = self.sent.ok_or(BacError::OutOfOrder)?;
        if !response.is_success() {
            return Err(BacError::Rejected(response.status()));
        }
        let (got_ic, got_ifd, k_ic) = open(&self.keys, response.data())?;
        if !memcmp::eq(&got_ic, &rnd_ic) || !memcmp::eq(&got_ifd, &rnd_ifd) {
            return Err(BacError::ChallengeMismatch);
        }
        let keys = session(&k_ifd[..], &k_ic[..])?;
        Ok(SecureChannel::new(keys, &ssc(&rnd_ic, &rnd_ifd))?)
    }
}

impl std::fmt::Debug for BacTerminal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BacTerminal(<secret>)")
    }
}

/// Chip side of BAC (ICAO 9303-11 §4.3.4.1, the MRTD chip).
pub struct BacChip {
    keys: SessionKeys,
    rnd_ic: Option<[u8; 8]>,
}

impl BacChip {
    pub fn new(mrz_information: &[u8]) -> Result<Self, BacError> {
        Ok(BacChip {
            keys: bac_keys(mrz_information)?,
            rnd_ic: None,
        })
    }

    /// Answers GET CHALLENGE: a fresh RND.IC, remembered for EXTERNAL AUTHENTICATE.
    pub fn get_challenge(&mut self, rng: &mut dyn RandomSource) -> Result<[u8; 8], BacError> {
        let mut rnd = [0u8; 8];
        rng.fill(&mut rnd)?;
        self.rnd_ic = Some(rnd);
        Ok(rnd)
    }

    /// Uses this RND.IC (worked examples).
    pub fn set_challenge(&mut self, rnd_ic: [u8; 8]) {
        self.rnd_ic = Some(rnd_ic);
    }

    /// Checks EXTERNAL AUTHENTICATE data, returns the answer `E_IC || M_IC` and the chip's end
    /// of the secure channel. The challenge is spent either way.
    pub fn external_authenticate(
        &mut self,
        data: &[u8],
        rng: &mut dyn RandomSource,
    ) -> Result<(Vec<u8>, ChipChannel), BacError> {
        let mut k_ic = Zeroizing::new([0u8; 16]);
        rng.fill(&mut k_ic[..])?;
        self.external_authenticate_with(data, &k_ic)
    }

    /// Like [`BacChip::external_authenticate`] with K.IC given.
    pub fn external_authenticate_with(
        &mut self,
        data: &[u8],
        k_ic: &[u8; 16],
    ) -> Result<(Vec<u8>, ChipChannel), BacError> {
        let rnd_ic = self.rnd_ic.take().ok_or(BacError::OutOfOrder)?;
        let (rnd_ifd, got_ic, k_ifd) = open(&self.keys, data)?;
        if !memcmp::eq(&got_ic, &rnd_ic) {
            return Err(BacError::ChallengeMismatch);
        }
        let answer = seal(&self.keys, &rnd_ic, &rnd_ifd, k_ic)?;
        let keys = session(&k_ifd[..], &k_ic[..])?;
        let channel = ChipChannel::new(keys, &ssc(&rnd_ic, &rnd_ifd))?;
        Ok((answer, channel))
    }
}

impl std::fmt::Debug for BacChip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BacChip(<secret>)")
    }
}
