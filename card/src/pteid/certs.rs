//! The certificates on the card (cards.md §A2): the citizen's authentication and signature
//! certificates, their sub-CAs and the root, parsed with `x509-parser` (RFC 5280). The DER is
//! kept as read, without the card's zero padding after the certificate.

use serde::Serialize;

use super::{CardFile, Generation, PteidCard, files};
use crate::Error;

/// Which certificate.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CertKind {
    Authentication,
    Signature,
    AuthenticationSubCa,
    SignatureSubCa,
    Root,
}

impl CertKind {
    pub const ALL: [CertKind; 5] = [
        CertKind::Authentication,
        CertKind::Signature,
        CertKind::AuthenticationSubCa,
        CertKind::SignatureSubCa,
        CertKind::Root,
    ];

    /// A short stable name (file names, CLI).
    pub fn name(self) -> &'static str {
        match self {
            CertKind::Authentication => "authentication",
            CertKind::Signature => "signature",
            CertKind::AuthenticationSubCa => "authentication-sub-ca",
            CertKind::SignatureSubCa => "signature-sub-ca",
            CertKind::Root => "root",
        }
    }

    fn file(self, generation: Generation) -> CardFile {
        match (generation, self) {
            (Generation::Cc1, CertKind::Authentication) => files::CC1_AUTH_CERT,
            (Generation::Cc1, CertKind::Signature) => files::CC1_SIGN_CERT,
            (Generation::Cc1, CertKind::AuthenticationSubCa) => files::CC1_AUTH_SUBCA,
            (Generation::Cc1, CertKind::SignatureSubCa) => files::CC1_SIGN_SUBCA,
            (Generation::Cc1, CertKind::Root) => files::CC1_ROOT,
            (Generation::Cc2, CertKind::Authentication) => files::CC2_AUTH_CERT,
            (Generation::Cc2, CertKind::Signature) => files::CC2_SIGN_CERT,
            (Generation::Cc2, CertKind::AuthenticationSubCa) => files::CC2_AUTH_SUBCA,
            (Generation::Cc2, CertKind::SignatureSubCa) => files::CC2_SIGN_SUBCA,
            (Generation::Cc2, CertKind::Root) => files::CC2_ROOT,
        }
    }
}

/// The subject public key.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum KeyInfo {
    Rsa { bits: usize },
    Ec { curve: String, bits: usize },
    Other { algorithm: String },
}

impl std::fmt::Display for KeyInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyInfo::Rsa { bits } => write!(f, "RSA {bits} bits"),
            KeyInfo::Ec { curve, bits } => write!(f, "EC {curve} ({bits} bits)"),
            KeyInfo::Other { algorithm } => write!(f, "{algorithm}"),
        }
    }
}

fn rfc3339<S: serde::Serializer>(t: &time::OffsetDateTime, s: S) -> Result<S::Ok, S::Error> {
    let text = t
        .format(&time::format_description::well_known::Rfc3339)
        .map_err(serde::ser::Error::custom)?;
    s.serialize_str(&text)
}

/// One certificate, parsed, with its DER.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
pub struct CardCertificate {
    pub kind: CertKind,
    pub subject: String,
    pub issuer: String,
    /// Serial number, upper-case hex.
    pub serial: String,
    #[serde(serialize_with = "rfc3339")]
    pub not_before: time::OffsetDateTime,
    #[serde(serialize_with = "rfc3339")]
    pub not_after: time::OffsetDateTime,
    pub key: KeyInfo,
    /// The subject's serialNumber attribute (for citizens `PNOPT-<civil id>`).
    pub subject_serial_number: Option<String>,
    /// The civil identification number from `PNOPT-...`.
    pub civil_id: Option<String>,
    #[serde(skip)]
    pub der: Vec<u8>,
}

impl CardCertificate {
    /// Parses a certificate file: one DER certificate, possibly followed by zero padding.
    pub fn parse(kind: CertKind, file: &[u8]) -> Result<CardCertificate, Error> {
        let bad = |reason: String| Error::MalformedCardData {
            file: "certificate",
            reason,
        };
        let (rest, cert) =
            x509_parser::parse_x509_certificate(file).map_err(|e| bad(e.to_string()))?;
        if rest.iter().any(|&b| b != 0 && b != 0xFF) {
            return Err(bad("data after the certificate".to_owned()));
        }
        let used = file.len().saturating_sub(rest.len());
        let der = file.get(..used).unwrap_or(file).to_vec();
        let time = |t: &x509_parser::time::ASN1Time| {
            time::OffsetDateTime::from_unix_timestamp(t.timestamp()).map_err(|e| bad(e.to_string()))
        };
        let spki = cert.public_key();
        let key = match spki.parsed() {
            Ok(x509_parser::public_key::PublicKey::RSA(rsa)) => KeyInfo::Rsa {
                bits: rsa.key_size(),
            },
            Ok(x509_parser::public_key::PublicKey::EC(ec)) => {
                let curve = spki
                    .algorithm
                    .parameters
                    .as_ref()
                    .and_then(|p| p.as_oid().ok())
                    .map(|oid| curve_name(&oid.to_id_string()))
                    .unwrap_or_else(|| "unknown curve".to_owned());
                KeyInfo::Ec {
                    curve,
                    bits: ec.key_size(),
                }
            }
            _ => KeyInfo::Other {
                algorithm: spki.algorithm.algorithm.to_id_string(),
            },
        };
        let subject_serial_number = cert
            .subject()
            .iter_by_oid(&x509_parser::oid_registry::OID_X509_SERIALNUMBER)
            .next()
            .and_then(|a| a.as_str().ok())
            .map(str::to_owned);
        let civil_id = subject_serial_number
            .as_deref()
            .and_then(|s| s.strip_prefix("PNOPT-"))
            .map(str::to_owned);
        Ok(CardCertificate {
            kind,
            subject: cert.subject().to_string(),
            issuer: cert.issuer().to_string(),
            serial: crate::hex(cert.raw_serial()),
            not_before: time(&cert.validity().not_before)?,
            not_after: time(&cert.validity().not_after)?,
            key,
            subject_serial_number,
            civil_id,
            der,
        })
    }

    /// PEM text of the certificate.
    pub fn to_pem(&self) -> Result<String, Error> {
        let x509 =
            openssl::x509::X509::from_der(&self.der).map_err(|e| Error::MalformedCardData {
                file: "certificate",
                reason: e.to_string(),
            })?;
        let pem = x509.to_pem().map_err(|e| Error::MalformedCardData {
            file: "certificate",
            reason: e.to_string(),
        })?;
        Ok(String::from_utf8_lossy(&pem).into_owned())
    }
}

fn curve_name(oid: &str) -> String {
    match oid {
        "1.2.840.10045.3.1.7" => "P-256".to_owned(),
        "1.3.132.0.34" => "P-384".to_owned(),
        "1.3.132.0.35" => "P-521".to_owned(),
        "1.3.36.3.3.2.8.1.1.7" => "brainpoolP256r1".to_owned(),
        other => other.to_owned(),
    }
}

impl PteidCard<'_> {
    /// Reads and parses one certificate; `Ok(None)` when the card does not hold it.
    pub fn read_certificate(&mut self, kind: CertKind) -> Result<Option<CardCertificate>, Error> {
        match self.read_file(kind.file(self.generation))? {
            Some(file) if file.iter().any(|&b| b != 0) => {
                CardCertificate::parse(kind, &file).map(Some)
            }
            _ => Ok(None),
        }
    }

    /// Every certificate the card holds, in [`CertKind::ALL`] order.
    pub fn read_certificates(&mut self) -> Result<Vec<CardCertificate>, Error> {
        let mut out = Vec::new();
        for kind in CertKind::ALL {
            if let Some(cert) = self.read_certificate(kind)? {
                out.push(cert);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use openssl::asn1::{Asn1Integer, Asn1Time};
    use openssl::bn::BigNum;
    use openssl::ec::{EcGroup, EcKey};
    use openssl::hash::MessageDigest;
    use openssl::nid::Nid;
    use openssl::pkey::PKey;
    use openssl::x509::{X509, X509NameBuilder};

    fn cert() -> Vec<u8> {
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
        let key = PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap();
        let mut name = X509NameBuilder::new().unwrap();
        name.append_entry_by_text("CN", "ANA MARIA").unwrap();
        name.append_entry_by_text("serialNumber", "PNOPT-99999999")
            .unwrap();
        let name = name.build();
        let mut b = X509::builder().unwrap();
        b.set_version(2).unwrap();
        let serial = Asn1Integer::from_bn(&BigNum::from_u32(0x1234).unwrap()).unwrap();
        b.set_serial_number(&serial).unwrap();
        b.set_subject_name(&name).unwrap();
        b.set_issuer_name(&name).unwrap();
        b.set_pubkey(&key).unwrap();
        b.set_not_before(&Asn1Time::from_unix(1_700_000_000).unwrap())
            .unwrap();
        b.set_not_after(&Asn1Time::from_unix(1_900_000_000).unwrap())
            .unwrap();
        b.sign(&key, MessageDigest::sha256()).unwrap();
        b.build().to_der().unwrap()
    }

    #[test]
    fn padded_certificate_is_parsed_and_trimmed() {
        let der = cert();
        let mut file = der.clone();
        file.resize(2000, 0);
        let c = CardCertificate::parse(CertKind::Authentication, &file).unwrap();
        assert_eq!(c.der, der);
        assert_eq!(c.civil_id.as_deref(), Some("99999999"));
        assert_eq!(c.serial, "1234");
        assert_eq!(
            c.key,
            KeyInfo::Ec {
                curve: "P-256".into(),
                bits: 256
            }
        );
        assert_eq!(c.not_before.unix_timestamp(), 1_700_000_000);
        assert!(
            c.to_pem()
                .unwrap()
                .starts_with("-----BEGIN CERTIFICATE-----")
        );
        // Garbage after it, or a truncation, is an error.
        let mut bad = der.clone();
        bad.push(0x42);
        assert!(CardCertificate::parse(CertKind::Root, &bad).is_err());
        assert!(CardCertificate::parse(CertKind::Root, &der[..der.len() - 1]).is_err());
    }
}
