//! The Web eID authentication token (`web-eid:1.0`): its JSON form, its JWS algorithms and the
//! value the card signs.

use openssl::pkey::{HasPublic, Id, PKeyRef};
use serde::{Deserialize, Deserializer, Serialize};

use crate::pa::HashAlgorithm;

use super::b64;

/// The token format this crate writes.
pub const TOKEN_FORMAT: &str = "web-eid:1.0";
/// What a token's `format` must start with to be read (major version 1).
pub const TOKEN_FORMAT_PREFIX: &str = "web-eid:1";
/// Shortest token text accepted (as the reference validators).
pub const TOKEN_MIN_LEN: usize = 100;
/// Longest token text accepted (as the reference validators).
pub const TOKEN_MAX_LEN: usize = 10_000;

/// The JWS signature algorithms of Web eID (RFC 7518 §3.3 RSASSA-PKCS1-v1_5, §3.4 ECDSA with
/// the raw `r || s` signature, §3.5 RSASSA-PSS with MGF1 of the same hash and a salt as long as
/// the hash).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum JwsAlgorithm {
    Es256,
    Es384,
    Es512,
    Ps256,
    Ps384,
    Ps512,
    Rs256,
    Rs384,
    Rs512,
}

/// The key family an algorithm needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyFamily {
    /// ECDSA ([`JwsAlgorithm::ec_bits`] gives the curve size).
    Ec,
    /// RSASSA-PKCS1-v1_5.
    RsaPkcs1,
    /// RSASSA-PSS.
    RsaPss,
}

impl JwsAlgorithm {
    /// Every algorithm, in the order of the reference validators' list.
    pub const ALL: [JwsAlgorithm; 9] = [
        Self::Es256,
        Self::Es384,
        Self::Es512,
        Self::Ps256,
        Self::Ps384,
        Self::Ps512,
        Self::Rs256,
        Self::Rs384,
        Self::Rs512,
    ];

    /// From the JWS name (case-sensitive, as JWS `alg` values are).
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == name)
    }

    /// The JWS name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Es256 => "ES256",
            Self::Es384 => "ES384",
            Self::Es512 => "ES512",
            Self::Ps256 => "PS256",
            Self::Ps384 => "PS384",
            Self::Ps512 => "PS512",
            Self::Rs256 => "RS256",
            Self::Rs384 => "RS384",
            Self::Rs512 => "RS512",
        }
    }

    /// The hash of the algorithm (also the one of [`signed_data`]).
    pub fn hash(self) -> HashAlgorithm {
        match self {
            Self::Es256 | Self::Ps256 | Self::Rs256 => HashAlgorithm::Sha256,
            Self::Es384 | Self::Ps384 | Self::Rs384 => HashAlgorithm::Sha384,
            Self::Es512 | Self::Ps512 | Self::Rs512 => HashAlgorithm::Sha512,
        }
    }

    /// The key family.
    pub fn family(self) -> KeyFamily {
        match self {
            Self::Es256 | Self::Es384 | Self::Es512 => KeyFamily::Ec,
            Self::Ps256 | Self::Ps384 | Self::Ps512 => KeyFamily::RsaPss,
            Self::Rs256 | Self::Rs384 | Self::Rs512 => KeyFamily::RsaPkcs1,
        }
    }

    /// For ES*: the curve size in bits the algorithm goes with (521 for ES512).
    pub fn ec_bits(self) -> Option<u32> {
        match self {
            Self::Es256 => Some(256),
            Self::Es384 => Some(384),
            Self::Es512 => Some(521),
            _ => None,
        }
    }

    /// The algorithm the Web eID application (libelectronic-id) uses with a card key: EC keys
    /// by their size (256 -> ES256, 384 -> ES384, 512 or 521 -> ES512), RSA keys RS256. `None`
    /// for other keys and other curve sizes.
    pub fn for_key<T: HasPublic>(key: &PKeyRef<T>) -> Option<Self> {
        match key.id() {
            Id::RSA => Some(Self::Rs256),
            Id::EC => Self::for_ec_bits(key.bits()),
            _ => None,
        }
    }

    /// The ES algorithm for an EC key of `bits` bits.
    pub fn for_ec_bits(bits: u32) -> Option<Self> {
        match bits {
            256 => Some(Self::Es256),
            384 => Some(Self::Es384),
            512 | 521 => Some(Self::Es512),
            _ => None,
        }
    }
}

impl std::fmt::Display for JwsAlgorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for JwsAlgorithm {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for JwsAlgorithm {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        Self::parse(&name)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown JWS algorithm {name:?}")))
    }
}

/// `hash(origin) || hash(nonce)`: the data a Web eID signature covers (hashed once more by the
/// signature algorithm). `origin` is the serialized origin ([`super::Origin::as_str`]), `nonce`
/// the challenge nonce as the server issued it, both as UTF-8.
pub fn signed_data(alg: JwsAlgorithm, origin: &str, nonce: &str) -> Vec<u8> {
    let h = alg.hash();
    let mut out = h.digest(origin.as_bytes());
    out.extend(h.digest(nonce.as_bytes()));
    out
}

/// `hash(hash(origin) || hash(nonce))`: the digest the card signs (with PKCS#1 v1.5 / PSS
/// padding for RSA, raw ECDSA for EC).
pub fn digest_to_sign(alg: JwsAlgorithm, origin: &str, nonce: &str) -> Vec<u8> {
    alg.hash().digest(&signed_data(alg, origin, nonce))
}

fn null_as_empty<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(Option::<String>::deserialize(d)?.unwrap_or_default())
}

/// The authentication token, as JSON (camelCase). Fields are kept as text: [`super::TokenValidator`]
/// checks them and says which one is wrong. Missing or `null` fields read as empty; unknown
/// fields are ignored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthToken {
    /// The user's authentication certificate, base64 DER.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub unverified_certificate: String,
    /// The JWS algorithm name.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub algorithm: String,
    /// The signature, base64 (ECDSA: raw `r || s`).
    #[serde(default, deserialize_with = "null_as_empty")]
    pub signature: String,
    /// `web-eid:1.0`.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub format: String,
    /// A URL naming the issuing application and its version (informative).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_version: Option<String>,
}

impl AuthToken {
    /// A token as the agent issues it: certificate and signature base64 with padding.
    pub fn new(
        algorithm: JwsAlgorithm,
        certificate_der: &[u8],
        signature: &[u8],
        app_version: impl Into<String>,
    ) -> Self {
        Self {
            unverified_certificate: b64::encode(certificate_der),
            algorithm: algorithm.as_str().to_owned(),
            signature: b64::encode(signature),
            format: TOKEN_FORMAT.to_owned(),
            app_version: Some(app_version.into()),
        }
    }

    /// Parses the JSON text of a token (size checked first: [`TOKEN_MIN_LEN`] to
    /// [`TOKEN_MAX_LEN`] bytes). Only the JSON shape is checked here.
    pub fn parse(json: &[u8]) -> Result<Self, super::TokenError> {
        use super::TokenError;
        if json.len() < TOKEN_MIN_LEN {
            return Err(TokenError::Format("token is too short".into()));
        }
        if json.len() > TOKEN_MAX_LEN {
            return Err(TokenError::Format("token is too long".into()));
        }
        // A JSON object only (serde would also fill a struct from an array).
        if json.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(TokenError::Format("a token is a JSON object".into()));
        }
        serde_json::from_slice(json).map_err(|e| TokenError::Format(format!("not a token: {e}")))
    }

    /// The token as compact JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for a in JwsAlgorithm::ALL {
            assert_eq!(JwsAlgorithm::parse(a.as_str()), Some(a));
            assert_eq!(
                a.hash().output_len() * 8,
                a.as_str()[2..].parse::<usize>().unwrap()
            );
        }
        assert_eq!(JwsAlgorithm::parse("es256"), None);
        assert_eq!(JwsAlgorithm::parse("NONE"), None);
        assert_eq!(JwsAlgorithm::parse("HS256"), None);
    }

    #[test]
    fn signed_data_is_two_hashes() {
        let d = signed_data(JwsAlgorithm::Es384, "https://ria.ee", "n");
        assert_eq!(d.len(), 96);
        assert_eq!(&d[..48], HashAlgorithm::Sha384.digest(b"https://ria.ee"));
        assert_eq!(
            digest_to_sign(JwsAlgorithm::Es384, "https://ria.ee", "n"),
            HashAlgorithm::Sha384.digest(&d)
        );
    }
}
