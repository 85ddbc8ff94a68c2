//! The Citizen Card commands the standard engine does not have, as an [`Applet`]: GET DATA
//! (CPLC, applet version), MSE SET DST with the card's algorithm references, PSO HASH and PSO
//! COMPUTE DIGITAL SIGNATURE with RSA (CC1) or ECDSA (CC2) keys, GET CHALLENGE with CLA 80, and
//! the card's format checks on PIN commands (cards.md §A5-§A7).
//!
//! Signature PIN semantics (decided from cards.md §A6 and the qualified-signature rules the card
//! follows): after each COMPUTE DIGITAL SIGNATURE with the signature key (PIN 0x82) the card
//! drops the verified state of PIN 0x82, so every qualified signature needs its own VERIFY. The
//! authentication PIN (0x81) stays verified until reset or `00 20 FF 81`.

use std::fmt;

use eid_protocols::{Command, Response, Status, tlv};
use openssl::hash::MessageDigest;
use openssl::md::Md;
use openssl::pkey::{Id, PKey, Private};
use openssl::pkey_ctx::PkeyCtx;
use openssl::rsa::Padding;
use openssl::sign::RsaPssSaltlen;
use zeroize::Zeroizing;

use crate::der;
use crate::engine::{Access, Applet, CardCore};
use crate::pki::digest_oid;

use super::Generation;

/// A private key inside the card.
pub(crate) struct CardKey {
    pub(crate) reference: u8,
    pub(crate) pin: u8,
    pub(crate) key: PKey<Private>,
    /// Whether using it consumes the PIN's verified state (the qualified signature key).
    pub(crate) one_shot: bool,
}

/// What PSO HASH expects and what COMPUTE DIGITAL SIGNATURE produces, per algorithm reference.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Scheme {
    /// RSA PKCS#1 v1.5; the card adds the DigestInfo of this hash.
    RsaPkcs1(Hash),
    /// RSA-PSS with this hash (salt as long as the hash, MGF1 with the same hash).
    RsaPss(Hash),
    /// RSA PKCS#1 v1.5 over a DigestInfo the host built (algorithm 0x02).
    RsaDigestInfo,
    /// ECDSA over this hash, raw r || s.
    Ecdsa(Hash),
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Hash {
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

impl Hash {
    fn len(self) -> usize {
        match self {
            Hash::Sha1 => 20,
            Hash::Sha256 => 32,
            Hash::Sha384 => 48,
            Hash::Sha512 => 64,
        }
    }

    fn digest(self) -> MessageDigest {
        match self {
            Hash::Sha1 => MessageDigest::sha1(),
            Hash::Sha256 => MessageDigest::sha256(),
            Hash::Sha384 => MessageDigest::sha384(),
            Hash::Sha512 => MessageDigest::sha512(),
        }
    }

    fn md(self) -> &'static openssl::md::MdRef {
        match self {
            Hash::Sha1 => Md::sha1(),
            Hash::Sha256 => Md::sha256(),
            Hash::Sha384 => Md::sha384(),
            Hash::Sha512 => Md::sha512(),
        }
    }
}

/// cards.md §A6: the algorithm references each generation accepts.
fn scheme(generation: Generation, alg: u8) -> Option<Scheme> {
    let hash = |high: u8| match high {
        0x10 => Some(Hash::Sha1),
        0x40 => Some(Hash::Sha256),
        0x50 => Some(Hash::Sha384),
        0x60 => Some(Hash::Sha512),
        _ => None,
    };
    match (generation, alg & 0x0F) {
        (Generation::Cc1, _) if alg == 0x02 => Some(Scheme::RsaDigestInfo),
        (Generation::Cc1, 0x02) => hash(alg & 0xF0).map(Scheme::RsaPkcs1),
        (Generation::Cc1, 0x05) => hash(alg & 0xF0).map(Scheme::RsaPss),
        (Generation::Cc2, 0x04) => hash(alg & 0xF0).map(Scheme::Ecdsa),
        _ => None,
    }
}

/// The Citizen Card applet.
pub(crate) struct PteidApplet {
    pub(crate) generation: Generation,
    pub(crate) keys: Vec<CardKey>,
    /// The CPLC data object (`9F7F 2A ...`).
    pub(crate) cplc: Vec<u8>,
    /// CC1's applet version data object (`DF30 ...`).
    pub(crate) applet_version: Option<Vec<u8>>,
    /// MSE SET DST: (scheme, key reference).
    env: Option<(Scheme, u8)>,
    /// PSO HASH input waiting for COMPUTE DIGITAL SIGNATURE.
    hash: Option<Zeroizing<Vec<u8>>>,
}

impl PteidApplet {
    pub(crate) fn new(
        generation: Generation,
        keys: Vec<CardKey>,
        cplc: Vec<u8>,
        applet_version: Option<Vec<u8>>,
    ) -> Self {
        PteidApplet {
            generation,
            keys,
            cplc,
            applet_version,
            env: None,
            hash: None,
        }
    }

    fn key(&self, reference: u8) -> Option<&CardKey> {
        self.keys.iter().find(|k| k.reference == reference)
    }

    fn manage_security_environment(&mut self, command: &Command) -> Result<Response, Status> {
        match (command.p1(), command.p2()) {
            (0x41, 0xB6) => {}
            // RESTORE (ISO) and the GemSAFE restore OpenSC sends (22 73 se).
            (0xF3 | 0x73, _) => {
                self.env = None;
                self.hash = None;
                return Ok(Response::status_only(Status::Success));
            }
            _ => return Err(Status::IncorrectP1P2),
        }
        // A refused SET leaves no environment behind: a host that misses the error must not
        // sign with the key an earlier SET chose.
        self.env = None;
        self.hash = None;
        let data = command.data();
        let one_byte = |tag: u32| -> Result<u8, Status> {
            match tlv::find(data, tag) {
                Ok(Some(obj)) => match obj.value() {
                    [value] => Ok(*value),
                    _ => Err(Status::IncorrectData),
                },
                _ => Err(Status::IncorrectData),
            }
        };
        let alg = one_byte(0x80)?;
        let reference = one_byte(0x84)?;
        let scheme = scheme(self.generation, alg).ok_or(Status::IncorrectData)?;
        if self.key(reference).is_none() {
            return Err(Status::ReferenceNotFound);
        }
        self.env = Some((scheme, reference));
        self.hash = None;
        Ok(Response::status_only(Status::Success))
    }

    fn pso(&mut self, core: &mut CardCore, command: &Command) -> Result<Response, Status> {
        match (command.p1(), command.p2()) {
            (0x90, 0xA0) => self.pso_hash(command),
            (0x9E, 0x9A) => self.compute_signature(core, command),
            _ => Err(Status::IncorrectP1P2),
        }
    }

    fn expected_len(scheme: Scheme) -> Option<usize> {
        match scheme {
            Scheme::RsaPkcs1(h) | Scheme::RsaPss(h) | Scheme::Ecdsa(h) => Some(h.len()),
            Scheme::RsaDigestInfo => None,
        }
    }

    fn check_input(scheme: Scheme, input: &[u8]) -> Result<(), Status> {
        match Self::expected_len(scheme) {
            Some(len) if input.len() != len => Err(Status::IncorrectData),
            None if input.is_empty() || input.len() > 128 => Err(Status::IncorrectData),
            _ => Ok(()),
        }
    }

    /// PSO HASH `00 2A 90 A0 Lc 90 <len> <hash>`: the card takes the final hash from the host.
    fn pso_hash(&mut self, command: &Command) -> Result<Response, Status> {
        // A refused HASH forgets the previous one: CDS must not sign a hash sent earlier.
        self.hash = None;
        let (scheme, _) = self.env.ok_or(Status::ConditionsNotSatisfied)?;
        let value = match tlv::find(command.data(), 0x90) {
            Ok(Some(obj)) => obj.value(),
            _ => return Err(Status::IncorrectData),
        };
        Self::check_input(scheme, value)?;
        self.hash = Some(Zeroizing::new(value.to_vec()));
        Ok(Response::status_only(Status::Success))
    }

    /// PSO COMPUTE DIGITAL SIGNATURE `00 2A 9E 9A Le` (or with the hash as data).
    fn compute_signature(
        &mut self,
        core: &mut CardCore,
        command: &Command,
    ) -> Result<Response, Status> {
        let (scheme, reference) = self.env.ok_or(Status::ConditionsNotSatisfied)?;
        let input = if command.data().is_empty() {
            self.hash.take().ok_or(Status::ConditionsNotSatisfied)?
        } else {
            Self::check_input(scheme, command.data())?;
            Zeroizing::new(command.data().to_vec())
        };
        let key = self.key(reference).ok_or(Status::ReferenceNotFound)?;
        if !core.is_satisfied(Access::Pin(key.pin)) {
            return Err(Status::SecurityStatusNotSatisfied);
        }
        let signature = sign(&key.key, scheme, &input).map_err(|_| Status::NoPreciseDiagnosis)?;
        if key.one_shot
            && let Some(pin) = core.pin_mut(key.pin)
        {
            pin.set_verified(false);
        }
        Ok(Response::new(signature, Status::Success))
    }

    fn get_data(&self, command: &Command) -> Result<Response, Status> {
        let answer = match (command.p1(), command.p2()) {
            (0x9F, 0x7F) => self.cplc.clone(),
            (0xDF, 0x30) => self
                .applet_version
                .clone()
                .ok_or(Status::ReferenceNotFound)?,
            _ => return Err(Status::ReferenceNotFound),
        };
        Ok(Response::new(answer, Status::Success))
    }

    /// Length checks the card makes before a PIN command reaches the PIN objects: a PIN block is
    /// 8 bytes, a PUK 8 bytes (anything else is 6A80 and costs no try).
    fn check_pin_command(command: &Command) -> Result<(), Status> {
        let n = command.nc();
        let ok = match (command.ins(), command.p1()) {
            (0x20, 0x00) => n == 0 || n == 8,
            (0x20, 0xFF) => n == 0,
            (0x24, 0x00) => n == 16,
            (0x2C, 0x00) => n == 16,
            (0x2C, 0x01) => n == 8,
            _ => return Err(Status::IncorrectP1P2),
        };
        if ok {
            Ok(())
        } else {
            Err(Status::IncorrectData)
        }
    }
}

/// Signs `input` (a hash, or a DigestInfo for [`Scheme::RsaDigestInfo`]).
fn sign(
    key: &PKey<Private>,
    scheme: Scheme,
    input: &[u8],
) -> Result<Vec<u8>, crate::pki::PkiError> {
    match scheme {
        Scheme::RsaPkcs1(hash) => {
            let info = digest_info(hash, input)?;
            rsa_pkcs1(key, &info)
        }
        Scheme::RsaDigestInfo => rsa_pkcs1(key, input),
        Scheme::RsaPss(hash) => {
            let mut ctx = PkeyCtx::new(key)?;
            ctx.sign_init()?;
            ctx.set_rsa_padding(Padding::PKCS1_PSS)?;
            ctx.set_signature_md(hash.md())?;
            ctx.set_rsa_pss_saltlen(RsaPssSaltlen::DIGEST_LENGTH)?;
            let mut out = Vec::new();
            ctx.sign_to_vec(input, &mut out)?;
            Ok(out)
        }
        Scheme::Ecdsa(_) => {
            let ec = key.ec_key()?;
            let sig = openssl::ecdsa::EcdsaSig::sign(input, &ec)?;
            let mut ctx = openssl::bn::BigNumContext::new()?;
            let mut order = openssl::bn::BigNum::new()?;
            ec.group().order(&mut order, &mut ctx)?;
            let len = order.num_bytes();
            let mut out = sig.r().to_vec_padded(len)?;
            out.extend(sig.s().to_vec_padded(len)?);
            Ok(out)
        }
    }
}

fn rsa_pkcs1(key: &PKey<Private>, block: &[u8]) -> Result<Vec<u8>, crate::pki::PkiError> {
    if key.id() != Id::RSA {
        return Err(crate::pki::PkiError::UnsupportedKey);
    }
    let rsa = key.rsa()?;
    let mut out = vec![0u8; usize::try_from(rsa.size()).unwrap_or(512)];
    let n = rsa.private_encrypt(block, &mut out, Padding::PKCS1)?;
    out.truncate(n);
    Ok(out)
}

/// PKCS#1 v2.2 §9.2 DigestInfo of a hash.
fn digest_info(hash: Hash, value: &[u8]) -> Result<Vec<u8>, crate::pki::PkiError> {
    let alg = der::sequence(&[der::oid_dotted(digest_oid(hash.digest())?)?, der::null()]);
    Ok(der::sequence(&[alg, der::octet_string(value)]))
}

impl Applet for PteidApplet {
    fn process(&mut self, core: &mut CardCore, command: &Command) -> Option<Response> {
        let answer = match (command.cla(), command.ins()) {
            (0x00, 0x22) => self.manage_security_environment(command),
            (0x00, 0x2A) => self.pso(core, command),
            (0x00, 0xCA) => self.get_data(command),
            (0x80, 0x84) => {
                // GET CHALLENGE with CLA 80 (what OpenSC sends to a PTEID card).
                if command.p1() != 0 || command.p2() != 0 {
                    return Some(Response::status_only(Status::IncorrectP1P2));
                }
                if command.nc() != 0 {
                    return Some(Response::status_only(Status::WrongLength));
                }
                let n = command.ne().unwrap_or(8).min(256);
                let mut challenge = vec![0u8; n];
                match openssl::rand::rand_bytes(&mut challenge) {
                    Ok(()) => Ok(Response::new(challenge, Status::Success)),
                    Err(_) => Err(Status::NoPreciseDiagnosis),
                }
            }
            (0x00, 0x20 | 0x24 | 0x2C) => match Self::check_pin_command(command) {
                // The engine's PIN objects do the rest.
                Ok(()) => return None,
                Err(sw) => Err(sw),
            },
            _ => return None,
        };
        Some(answer.unwrap_or_else(Response::status_only))
    }

    fn reset(&mut self) {
        self.env = None;
        self.hash = None;
    }
}

/// Shows the generation and key references, never key material.
impl fmt::Debug for PteidApplet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PteidApplet")
            .field("generation", &self.generation)
            .field(
                "keys",
                &self.keys.iter().map(|k| k.reference).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn algorithm_references() {
        assert_eq!(
            scheme(Generation::Cc1, 0x42),
            Some(Scheme::RsaPkcs1(Hash::Sha256))
        );
        assert_eq!(
            scheme(Generation::Cc1, 0x65),
            Some(Scheme::RsaPss(Hash::Sha512))
        );
        assert_eq!(scheme(Generation::Cc1, 0x02), Some(Scheme::RsaDigestInfo));
        assert_eq!(scheme(Generation::Cc1, 0x44), None);
        assert_eq!(
            scheme(Generation::Cc2, 0x54),
            Some(Scheme::Ecdsa(Hash::Sha384))
        );
        assert_eq!(scheme(Generation::Cc2, 0x42), None);
    }
}
