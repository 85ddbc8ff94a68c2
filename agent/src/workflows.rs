//! Card workflows the bridge (and, later, kiosk mode) runs: authenticate with an origin-bound
//! Web eID token, read a certificate, sign a hash, read the identity, read an eMRTD.
//!
//! A workflow drives a card application of `eid_card` and asks for PINs through a callback; it
//! never speaks HTTP and never retries a PIN: a wrong PIN ends the workflow with
//! `Error::WrongPin { retries_left }`. Errors are generic (`E: From<eid_card::Error>`) so the
//! caller chooses how a cancelled dialog is reported.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use eid_card::Error;
use eid_card::pteid::{
    CardCertificate, CertKind, HashAlg, KeyInfo, KeyRef, Pin, PinRef, PinStatus, PteidCard,
    RsaPadding,
};
use eid_protocols::webeid::{self, AuthToken, JwsAlgorithm};
use serde::Serialize;

/// The `appVersion` of our tokens.
pub const APP_VERSION: &str = concat!(
    "https://eid-agent.invalid/releases/",
    env!("CARGO_PKG_VERSION")
);

/// What the PIN dialog needs to know: which PIN, whose card, how many tries are left.
#[derive(Debug, Clone)]
pub struct PinAsk {
    pub pin: PinRef,
    pub retries_left: Option<u8>,
}

impl PinAsk {
    /// "authentication PIN", "signature PIN", "address PIN".
    pub fn pin_name(&self) -> &'static str {
        match self.pin {
            PinRef::Auth => "authentication PIN",
            PinRef::Sign => "signature PIN",
            PinRef::Address => "address PIN",
        }
    }
}

/// One signature algorithm a key supports, in Web eID's vocabulary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SignatureAlgorithm {
    /// `ECC` or `RSA`.
    pub crypto_algorithm: &'static str,
    /// `SHA-256`, `SHA-384`, `SHA-512`.
    pub hash_function: &'static str,
    /// `NONE` (ECDSA), `PKCS1.5` or `PSS`.
    pub padding_scheme: &'static str,
}

const HASHES: [HashAlg; 3] = [HashAlg::Sha256, HashAlg::Sha384, HashAlg::Sha512];

/// The Web eID name of a hash function.
pub fn hash_name(hash: HashAlg) -> &'static str {
    match hash {
        HashAlg::Sha256 => "SHA-256",
        HashAlg::Sha384 => "SHA-384",
        HashAlg::Sha512 => "SHA-512",
    }
}

/// What the card can do with the key of `certificate`.
pub fn supported_algorithms(certificate: &CardCertificate) -> Vec<SignatureAlgorithm> {
    let mut out = Vec::new();
    for hash in HASHES {
        match certificate.key {
            KeyInfo::Ec { .. } => out.push(SignatureAlgorithm {
                crypto_algorithm: "ECC",
                hash_function: hash_name(hash),
                padding_scheme: "NONE",
            }),
            KeyInfo::Rsa { .. } => {
                for padding in ["PKCS1.5", "PSS"] {
                    out.push(SignatureAlgorithm {
                        crypto_algorithm: "RSA",
                        hash_function: hash_name(hash),
                        padding_scheme: padding,
                    });
                }
            }
            KeyInfo::Other { .. } => {}
        }
    }
    out
}

/// The certificate of `kind`, or `NotSupported` when the card has none.
pub fn certificate(card: &mut PteidCard<'_>, kind: CertKind) -> Result<CardCertificate, Error> {
    card.read_certificate(kind)?
        .ok_or(Error::NotSupported("the card has no such certificate"))
}

/// The card holder's name as the certificate gives it (its CN), for the agent's dialogs.
pub fn holder_name(certificate: &CardCertificate) -> Option<String> {
    let (_, parsed) = x509_parser::parse_x509_certificate(&certificate.der).ok()?;
    let cn = parsed.subject().iter_common_name().next()?;
    cn.as_str().ok().map(str::to_owned)
}

/// The tries left of `pin` (`None` when already verified), or `PinBlocked`. Costs no try.
pub fn tries_left(card: &mut PteidCard<'_>, pin: PinRef) -> Result<Option<u8>, Error> {
    match card.pin_status(pin)? {
        PinStatus::Blocked => Err(Error::PinBlocked),
        PinStatus::Verified => Ok(None),
        PinStatus::NotVerified { tries_left } => Ok(Some(tries_left)),
    }
}

/// Verifies `pin` once: on the reader's keypad when it has one (the digits never reach the
/// agent), otherwise asked through `ask` after reading the tries left (which costs no try). A
/// wrong PIN is returned as `WrongPin { retries_left }`, never retried.
pub fn verify_pin<E: From<Error>>(
    card: &mut PteidCard<'_>,
    pin: PinRef,
    ask: &mut dyn FnMut(&PinAsk) -> Result<Pin, E>,
) -> Result<(), E> {
    let retries_left = tries_left(card, pin)?;
    if card.reader_has_pinpad() {
        tracing::info!(pin = pin.name(), "PIN entry on the reader's keypad");
        match card.verify_pin_on_reader(pin) {
            // The connection cannot drive the pinpad (refused before the card saw anything):
            // the agent's dialog instead.
            Err(Error::NotSupported(why)) => {
                tracing::info!(why, "keypad not usable; asking in the agent's dialog");
            }
            outcome => return outcome.map_err(E::from),
        }
    }
    let value = ask(&PinAsk { pin, retries_left })?;
    card.verify_pin(pin, &value)?;
    Ok(())
}

/// The JWS algorithm for a card key: ES256/384/512 by curve size, RS256 for RSA (as the Web eID
/// application does).
pub fn jws_algorithm(certificate: &CardCertificate) -> Result<JwsAlgorithm, Error> {
    let unsupported = || Error::NotSupported("no Web eID algorithm for this card key");
    let x509 = openssl::x509::X509::from_der(&certificate.der).map_err(|_| unsupported())?;
    let key = x509.public_key().map_err(|_| unsupported())?;
    JwsAlgorithm::for_key(&key).ok_or_else(unsupported)
}

fn card_hash(alg: JwsAlgorithm) -> HashAlg {
    match alg {
        JwsAlgorithm::Es256 | JwsAlgorithm::Rs256 | JwsAlgorithm::Ps256 => HashAlg::Sha256,
        JwsAlgorithm::Es384 | JwsAlgorithm::Rs384 | JwsAlgorithm::Ps384 => HashAlg::Sha384,
        JwsAlgorithm::Es512 | JwsAlgorithm::Rs512 | JwsAlgorithm::Ps512 => HashAlg::Sha512,
    }
}

/// Web eID authentication: the card signs hash(origin) || hash(nonce) with the authentication
/// key. `origin` is the requesting page's origin as the browser sent it; `nonce` was checked by
/// the caller ([`webeid::check_nonce`]).
pub fn authenticate<E: From<Error>>(
    card: &mut PteidCard<'_>,
    certificate: &CardCertificate,
    origin: &str,
    nonce: &str,
    ask: &mut dyn FnMut(&PinAsk) -> Result<Pin, E>,
) -> Result<AuthToken, E> {
    let alg = jws_algorithm(certificate)?;
    let digest = webeid::digest_to_sign(alg, origin, nonce);
    let padding = match alg {
        JwsAlgorithm::Ps256 | JwsAlgorithm::Ps384 | JwsAlgorithm::Ps512 => RsaPadding::Pss,
        _ => RsaPadding::Pkcs1v15,
    };
    verify_pin(card, PinRef::Auth, ask)?;
    let signature = card.sign(KeyRef::Auth, card_hash(alg), &digest, padding)?;
    Ok(AuthToken::new(
        alg,
        &certificate.der,
        &signature.raw,
        APP_VERSION,
    ))
}

/// A signature made with the qualified signature key.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HashSignature {
    /// RSA PKCS#1 v1.5, or ECDSA as raw r || s, base64.
    pub signature: String,
    pub signature_algorithm: SignatureAlgorithm,
}

/// Signs `digest` (made with `hash`) with the signature key whose certificate is `certificate`
/// (read from this card: the caller compares it with the one the website built its document with).
pub fn sign_hash<E: From<Error>>(
    card: &mut PteidCard<'_>,
    certificate: &CardCertificate,
    hash: HashAlg,
    digest: &[u8],
    ask: &mut dyn FnMut(&PinAsk) -> Result<Pin, E>,
) -> Result<HashSignature, E> {
    if digest.len() != hash.digest_len() {
        return Err(Error::NotSupported("the hash length does not match the hash function").into());
    }
    verify_pin(card, PinRef::Sign, ask)?;
    let signature = card.sign(KeyRef::Sign, hash, digest, RsaPadding::Pkcs1v15)?;
    let crypto_algorithm = match certificate.key {
        KeyInfo::Ec { .. } => "ECC",
        _ => "RSA",
    };
    Ok(HashSignature {
        signature: B64.encode(&signature.raw),
        signature_algorithm: SignatureAlgorithm {
            crypto_algorithm,
            hash_function: hash_name(hash),
            padding_scheme: if crypto_algorithm == "ECC" {
                "NONE"
            } else {
                "PKCS1.5"
            },
        },
    })
}
