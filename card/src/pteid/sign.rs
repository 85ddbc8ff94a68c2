//! Signatures with the citizen's keys (cards.md §A6): ISO/IEC 7816-8 MANAGE SECURITY
//! ENVIRONMENT SET DST, PERFORM SECURITY OPERATION HASH (`2A 90 A0`) with the host-computed
//! digest, then PSO COMPUTE DIGITAL SIGNATURE (`2A 9E 9A`).
//!
//! CC1: RSA PKCS#1 v1.5 (algorithm 0x42/0x52/0x62 for SHA-256/384/512) or PSS (+3) where the
//! card offers it. CC2: ECDSA (0x44/0x54/0x64); the card answers raw `r || s`, returned as is and
//! as DER. After the signature the CC2's PIN verified state is cleared (`00 20 FF <ref> 00`).
//! The session layer collects long signatures with GET RESPONSE (`61xx`).

use eid_protocols::{Command, Status, commands};
use serde::Serialize;

use super::{Generation, PinRef, PteidCard};
use crate::Error;

/// Which key signs.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyRef {
    /// Citizen authentication key (PIN 0x81).
    Auth,
    /// Qualified signature key (PIN 0x82).
    Sign,
}

/// CC1 private key references (the `84` object of MSE SET DST).
pub const CC1_AUTH_KEY_REF: u8 = 0x02;
pub const CC1_SIGN_KEY_REF: u8 = 0x82;
/// CC2 private key references (cards.md §A6).
pub const CC2_AUTH_KEY_REF: u8 = 0x06;
pub const CC2_SIGN_KEY_REF: u8 = 0x08;

impl KeyRef {
    /// The PIN that unlocks this key.
    pub fn pin(self) -> PinRef {
        match self {
            KeyRef::Auth => PinRef::Auth,
            KeyRef::Sign => PinRef::Sign,
        }
    }

    /// The card's key reference for this generation.
    pub fn reference(self, generation: Generation) -> u8 {
        match (generation, self) {
            (Generation::Cc1, KeyRef::Auth) => CC1_AUTH_KEY_REF,
            (Generation::Cc1, KeyRef::Sign) => CC1_SIGN_KEY_REF,
            (Generation::Cc2, KeyRef::Auth) => CC2_AUTH_KEY_REF,
            (Generation::Cc2, KeyRef::Sign) => CC2_SIGN_KEY_REF,
        }
    }

    /// The certificate of this key.
    pub fn certificate(self) -> super::CertKind {
        match self {
            KeyRef::Auth => super::CertKind::Authentication,
            KeyRef::Sign => super::CertKind::Signature,
        }
    }
}

/// The hash the digest was computed with.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum HashAlg {
    Sha256,
    Sha384,
    Sha512,
}

impl HashAlg {
    pub fn digest_len(self) -> usize {
        match self {
            HashAlg::Sha256 => 32,
            HashAlg::Sha384 => 48,
            HashAlg::Sha512 => 64,
        }
    }

    pub fn message_digest(self) -> openssl::hash::MessageDigest {
        match self {
            HashAlg::Sha256 => openssl::hash::MessageDigest::sha256(),
            HashAlg::Sha384 => openssl::hash::MessageDigest::sha384(),
            HashAlg::Sha512 => openssl::hash::MessageDigest::sha512(),
        }
    }

    /// Parses `sha256`, `sha384`, `sha512`.
    pub fn from_name(name: &str) -> Option<HashAlg> {
        match name.to_ascii_lowercase().replace('-', "").as_str() {
            "sha256" => Some(HashAlg::Sha256),
            "sha384" => Some(HashAlg::Sha384),
            "sha512" => Some(HashAlg::Sha512),
            _ => None,
        }
    }

    /// Low nibble of the algorithm byte for this hash (cards.md §A6: 0x_2/0x_4 families with
    /// high nibble 4, 5, 6 for SHA-256, 384, 512).
    fn high_nibble(self) -> u8 {
        match self {
            HashAlg::Sha256 => 0x40,
            HashAlg::Sha384 => 0x50,
            HashAlg::Sha512 => 0x60,
        }
    }
}

/// RSA padding (CC1 only).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RsaPadding {
    #[default]
    Pkcs1v15,
    Pss,
}

/// A signature from the card.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
pub struct Signature {
    pub key: KeyRef,
    pub hash: HashAlg,
    /// `rsa-pkcs1v15`, `rsa-pss` or `ecdsa`.
    pub scheme: &'static str,
    /// What the card returned: the RSA signature, or ECDSA `r || s`.
    #[serde(serialize_with = "crate::hex_serde::upper")]
    pub raw: Vec<u8>,
    /// ECDSA only: the same signature as a DER `Ecdsa-Sig-Value` (RFC 3279).
    #[serde(serialize_with = "crate::hex_serde::upper_opt")]
    pub der: Option<Vec<u8>>,
}

/// ECDSA `r || s` (two equal halves) to DER.
pub fn ecdsa_raw_to_der(raw: &[u8]) -> Result<Vec<u8>, Error> {
    let bad = |reason: &str| Error::MalformedCardData {
        file: "signature",
        reason: reason.to_owned(),
    };
    if raw.is_empty() || !raw.len().is_multiple_of(2) {
        return Err(bad("ECDSA signature of odd length"));
    }
    let (r, s) = raw.split_at(raw.len() / 2);
    let r = openssl::bn::BigNum::from_slice(r).map_err(|e| bad(&e.to_string()))?;
    let s = openssl::bn::BigNum::from_slice(s).map_err(|e| bad(&e.to_string()))?;
    openssl::ecdsa::EcdsaSig::from_private_components(r, s)
        .and_then(|sig| sig.to_der())
        .map_err(|e| bad(&e.to_string()))
}

/// Turns the status of a signing step into a typed error: 6982 means the key's PIN is not
/// verified (the card's "security status not satisfied").
fn step(status: Status, command: &Command) -> Result<(), Error> {
    match status {
        Status::Success => Ok(()),
        Status::SecurityStatusNotSatisfied => Err(Error::PinNotVerified),
        Status::AuthenticationBlocked => Err(Error::PinBlocked),
        status => Err(Error::Status {
            command: command.header(),
            status,
        }),
    }
}

impl PteidCard<'_> {
    /// Signs `digest` (already hashed with `hash`) with `key`. The key's PIN must have been
    /// verified ([`PteidCard::verify_pin`]); otherwise [`Error::PinNotVerified`].
    pub fn sign(
        &mut self,
        key: KeyRef,
        hash: HashAlg,
        digest: &[u8],
        padding: RsaPadding,
    ) -> Result<Signature, Error> {
        if digest.len() != hash.digest_len() {
            return Err(Error::NotSupported(
                "the digest length does not match the hash algorithm",
            ));
        }
        let generation = self.generation;
        let (algorithm, scheme) = match (generation, padding) {
            (Generation::Cc1, RsaPadding::Pkcs1v15) => (hash.high_nibble() | 0x02, "rsa-pkcs1v15"),
            (Generation::Cc1, RsaPadding::Pss) => (hash.high_nibble() | 0x05, "rsa-pss"),
            (Generation::Cc2, RsaPadding::Pkcs1v15) => (hash.high_nibble() | 0x04, "ecdsa"),
            (Generation::Cc2, RsaPadding::Pss) => {
                return Err(Error::NotSupported("the CC2 has no RSA keys (PSS)"));
            }
        };
        let key_ref = key.reference(generation);
        self.select_pin_app()?;
        let raw = self.session.in_transaction(|s| {
            // MSE SET DST: 80 algorithm, 84 key reference.
            let mse = commands::manage_security_environment(
                0x41,
                0xB6,
                &[0x80, 0x01, algorithm, 0x84, 0x01, key_ref],
            );
            step(s.transmit(&mse)?.status(), &mse)?;
            // PSO HASH with the digest in a 90 object.
            let len = u8::try_from(digest.len())
                .map_err(|_| Error::CommandTooLong { nc: digest.len() })?;
            let mut data = Vec::with_capacity(digest.len().saturating_add(2));
            data.extend_from_slice(&[0x90, len]);
            data.extend_from_slice(digest);
            let pso_hash = Command::new(0x00, 0x2A, 0x90, 0xA0).with_data(data);
            step(s.transmit(&pso_hash)?.status(), &pso_hash)?;
            // PSO CDS: the whole signature, GET RESPONSE included.
            let cds = commands::pso_compute_digital_signature(&[], 256);
            let response = s.transmit(&cds)?;
            step(response.status(), &cds)?;
            Ok(response.into_data())
        });
        // Clear the verified state whatever happened, where the card allows it; a removed card
        // has no state left to clear.
        if generation == Generation::Cc2 && !matches!(&raw, Err(e) if e.is_retryable()) {
            let logout = self.logout_pin(key.pin());
            if raw.is_ok() {
                logout?;
            }
        }
        let raw = match raw {
            Ok(raw) => raw,
            Err(e) => {
                self.forget_selection();
                return Err(e);
            }
        };
        if raw.is_empty() {
            return Err(Error::ProtocolViolation("empty signature"));
        }
        let der = match generation {
            Generation::Cc1 => None,
            Generation::Cc2 => Some(ecdsa_raw_to_der(&raw)?),
        };
        Ok(Signature {
            key,
            hash,
            scheme,
            raw,
            der,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn ecdsa_raw_and_der_agree() {
        let group =
            openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).unwrap();
        let key = openssl::ec::EcKey::generate(&group).unwrap();
        let digest = [7u8; 32];
        let sig = openssl::ecdsa::EcdsaSig::sign(&digest, &key).unwrap();
        let mut raw = sig.r().to_vec_padded(32).unwrap();
        raw.extend(sig.s().to_vec_padded(32).unwrap());
        let der = ecdsa_raw_to_der(&raw).unwrap();
        let back = openssl::ecdsa::EcdsaSig::from_der(&der).unwrap();
        assert!(back.verify(&digest, &key).unwrap());
        assert!(ecdsa_raw_to_der(&raw[..63]).is_err());
        assert!(ecdsa_raw_to_der(&[]).is_err());
    }

    #[test]
    fn algorithm_bytes_follow_the_card_tables() {
        assert_eq!(HashAlg::Sha256.high_nibble() | 0x02, 0x42);
        assert_eq!(HashAlg::Sha512.high_nibble() | 0x04, 0x64);
        assert_eq!(HashAlg::Sha384.high_nibble() | 0x05, 0x55);
        assert_eq!(HashAlg::from_name("SHA-384"), Some(HashAlg::Sha384));
        assert!(matches!(
            step(
                Status::SecurityStatusNotSatisfied,
                &commands::get_challenge(8)
            ),
            Err(Error::PinNotVerified)
        ));
    }
}
