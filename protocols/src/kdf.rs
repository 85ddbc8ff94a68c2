//! Key derivation for BAC, PACE and Chip Authentication, ICAO 9303-11 §9.7.1.
//!
//! `KDF(K, c) = H(K || c)` truncated to the key length, with `c` a 32-bit big-endian counter:
//! 1 for the encryption key, 2 for the MAC key, 3 for the PACE password key `Kπ`. SHA-1 for
//! 3DES and AES-128, SHA-256 for AES-192 and AES-256 (§9.7.1.1). 3DES keys (two-key, 16 bytes)
//! get their DES parity bits adjusted (§9.7.1.2 with FIPS 46-3).

use openssl::hash::{MessageDigest, hash};
use zeroize::Zeroizing;

use crate::sm::{Cipher, CryptoError};

/// Counter for the encryption key (`KSenc`, `KEnc`).
pub const COUNTER_ENC: u32 = 1;
/// Counter for the MAC key (`KSmac`, `KMAC`).
pub const COUNTER_MAC: u32 = 2;
/// Counter for the PACE password key `Kπ`.
pub const COUNTER_PACE: u32 = 3;

/// ICAO 9303-11 §9.7.1 KDF: the `cipher` key derived from `secret` with `counter`.
pub fn derive_key(
    cipher: Cipher,
    secret: &[u8],
    counter: u32,
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    let md = match cipher {
        Cipher::Tdes | Cipher::Aes128 => MessageDigest::sha1(),
        Cipher::Aes192 | Cipher::Aes256 => MessageDigest::sha256(),
    };
    let mut input = Zeroizing::new(Vec::with_capacity(secret.len() + 4));
    input.extend_from_slice(secret);
    input.extend_from_slice(&counter.to_be_bytes());
    let digest = hash(md, &input)?;
    // Copy out of the openssl buffer into a zeroizing one; wipe the other through a local copy.
    let mut full = Zeroizing::new(digest.to_vec());
    let len = cipher.key_len();
    full.truncate(len);
    if full.len() != len {
        return Err(CryptoError::Internal("digest shorter than key"));
    }
    if cipher == Cipher::Tdes {
        set_des_parity(&mut full);
    }
    Ok(full)
}

/// Sets each byte's least significant bit so that the byte has odd parity (FIPS 46-3 §3: DES
/// key bytes have odd parity).
pub fn set_des_parity(key: &mut [u8]) {
    for byte in key.iter_mut() {
        let ones = (*byte & 0xFE).count_ones();
        *byte = (*byte & 0xFE) | u8::from(ones.is_multiple_of(2));
    }
}

/// A pair of secure-messaging keys derived from one shared secret (§9.7.1, counters 1 and 2).
pub struct SessionKeys {
    pub cipher: Cipher,
    pub k_enc: Zeroizing<Vec<u8>>,
    pub k_mac: Zeroizing<Vec<u8>>,
}

impl SessionKeys {
    /// `KSenc = KDF(secret, 1)`, `KSmac = KDF(secret, 2)`.
    pub fn derive(cipher: Cipher, secret: &[u8]) -> Result<Self, CryptoError> {
        Ok(SessionKeys {
            cipher,
            k_enc: derive_key(cipher, secret, COUNTER_ENC)?,
            k_mac: derive_key(cipher, secret, COUNTER_MAC)?,
        })
    }
}

impl std::fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SessionKeys({:?}, <secret>)", self.cipher)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parity_is_odd_for_every_byte() {
        let mut key: Vec<u8> = (0..=255).collect();
        set_des_parity(&mut key);
        for (i, b) in key.iter().enumerate() {
            assert_eq!(b.count_ones() % 2, 1);
            assert_eq!(b & 0xFE, (i as u8) & 0xFE);
        }
    }

    #[test]
    fn key_lengths_follow_the_cipher() {
        for (cipher, len) in [
            (Cipher::Tdes, 16),
            (Cipher::Aes128, 16),
            (Cipher::Aes192, 24),
            (Cipher::Aes256, 32),
        ] {
            assert_eq!(derive_key(cipher, b"secret", 1).unwrap().len(), len);
        }
        assert_ne!(
            *derive_key(Cipher::Aes128, b"s", 1).unwrap(),
            *derive_key(Cipher::Aes128, b"s", 2).unwrap()
        );
    }
}
