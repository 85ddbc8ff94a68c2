//! Signing keys: real elliptic-curve keys (OpenSSL), used by PSO COMPUTE DIGITAL SIGNATURE.
//!
//! The card signs a hash the host computed (the card never hashes) and answers the plain
//! signature r || s, each left-padded to the size of the curve order, as IAS-style cards do.
//! RSA keys are not emulated.

use std::fmt;

use openssl::bn::BigNumContext;
use openssl::ec::{EcGroup, EcKey};
use openssl::ecdsa::EcdsaSig;
use openssl::error::ErrorStack;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};

use super::fs::Access;

/// A private key on the card.
pub struct SigningKey {
    reference: u8,
    key: EcKey<Private>,
    access: Access,
    spki: Vec<u8>,
    field_len: usize,
}

impl SigningKey {
    /// A fresh P-256 key with this reference (tag 84 of MSE SET) and use condition.
    pub fn generate_p256(reference: u8, access: Access) -> Result<Self, ErrorStack> {
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
        Self::from_ec_key(reference, EcKey::generate(&group)?, access)
    }

    /// A given EC key (for profiles that need a fixed key, for instance one certified by a test
    /// CA).
    pub fn from_ec_key(
        reference: u8,
        key: EcKey<Private>,
        access: Access,
    ) -> Result<Self, ErrorStack> {
        key.check_key()?;
        let mut ctx = BigNumContext::new()?;
        let mut order = openssl::bn::BigNum::new()?;
        key.group().order(&mut order, &mut ctx)?;
        let field_len = usize::try_from(order.num_bytes()).unwrap_or(32);
        let spki = PKey::from_ec_key(key.clone())?.public_key_to_der()?;
        Ok(SigningKey {
            reference,
            key,
            access,
            spki,
            field_len,
        })
    }

    pub fn reference(&self) -> u8 {
        self.reference
    }

    /// The condition for using the key.
    pub fn access(&self) -> Access {
        self.access
    }

    /// The public key as a DER SubjectPublicKeyInfo.
    pub fn public_key_der(&self) -> &[u8] {
        &self.spki
    }

    /// The key itself (for profiles that build certificates around it).
    pub fn ec_key(&self) -> &EcKey<Private> {
        &self.key
    }

    /// ECDSA over a hash computed by the host: r || s, each left-padded to the order's size.
    pub fn sign_digest(&self, digest: &[u8]) -> Result<Vec<u8>, ErrorStack> {
        let sig = EcdsaSig::sign(digest, &self.key)?;
        let len = i32::try_from(self.field_len).unwrap_or(32);
        let mut out = sig.r().to_vec_padded(len)?;
        out.extend(sig.s().to_vec_padded(len)?);
        Ok(out)
    }
}

/// Shows the reference, the condition and the public key size; never the private key.
impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("reference", &format_args!("{:02X}", self.reference))
            .field("access", &self.access)
            .field("bits", &(self.field_len * 8))
            .finish()
    }
}
