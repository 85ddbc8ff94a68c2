//! Which document an operation was about, from what the card worker answers the page.
//!
//! The worker calls [`document_of`] with the job's result JSON (the bridge's wire format, see
//! `docs/bridge-openapi.json`) and passes what it finds to the audit log, which writes the kind
//! and a keyed hash of the number, never the number:
//! - `identity`: the identity file's `documentNumber` (absent when the page asked for other
//!   fields only: then the kind alone);
//! - `emrtd-read`: the document number of DG1 as read (`dataGroups["1"]`), else the agent's
//!   `document` reading of it; the kind from the MRZ document code;
//! - `certificate`, `authenticate`: the certificate's subject `serialNumber` (`certificate`,
//!   `unverifiedCertificate`); `sign` answers no certificate, so the worker passes the request's
//!   (`{"certificate": <base64 DER>}`) or calls [`document_of_certificate`].

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use eid_protocols::lds::Dg1;
use serde_json::Value;

/// The kind of a Citizen Card (all its operations).
const CITIZEN_CARD: &str = "citizen-card";

/// The document kind and number in an operation's result, when there is one. The number is
/// empty when the result names the kind but not the number.
pub fn document_of(operation: &str, result: &Value) -> Option<(String, String)> {
    match operation {
        "identity" => {
            let number = result
                .get("identity")?
                .get("documentNumber")
                .and_then(Value::as_str)
                .unwrap_or_default();
            Some((CITIZEN_CARD.to_owned(), number.to_owned()))
        }
        "emrtd-read" => emrtd(result),
        "certificate" | "authenticate" | "sign" => {
            let b64 = result
                .get("certificate")
                .or_else(|| result.get("unverifiedCertificate"))?
                .as_str()?;
            let der = B64.decode(b64).ok()?;
            document_of_certificate(&der)
        }
        _ => None,
    }
}

/// The Citizen Card kind and the subject `serialNumber` (OID 2.5.4.5) of a certificate.
pub fn document_of_certificate(der: &[u8]) -> Option<(String, String)> {
    let (_, certificate) = x509_parser::parse_x509_certificate(der).ok()?;
    let serial = certificate
        .subject()
        .iter_attributes()
        .find(|a| a.attr_type() == &x509_parser::oid_registry::OID_X509_SERIALNUMBER)
        .and_then(|a| a.as_str().ok())
        .unwrap_or_default();
    Some((CITIZEN_CARD.to_owned(), serial.to_owned()))
}

fn emrtd(result: &Value) -> Option<(String, String)> {
    let from_dg1 = result
        .get("dataGroups")
        .and_then(|g| g.get("1"))
        .and_then(Value::as_str)
        .and_then(|b64| B64.decode(b64).ok())
        .and_then(|file| Dg1::parse(&file).ok())
        .map(|dg1| (dg1.mrz.document_code, dg1.mrz.document_number));
    let (code, number) = match from_dg1 {
        Some(found) => found,
        None => {
            let document = result.get("document")?;
            let field = |name: &str| {
                document
                    .get(name)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned()
            };
            (field("documentCode"), field("documentNumber"))
        }
    };
    Some((kind_of_code(&code).to_owned(), number))
}

/// ICAO 9303: `P` passports, `I`/`A`/`C` identity cards (TD1/TD2), `V` visas.
fn kind_of_code(code: &str) -> &'static str {
    match code.as_bytes().first() {
        Some(b'P') => "passport",
        Some(b'I' | b'A' | b'C') => "id-card",
        Some(b'V') => "visa",
        _ => "travel-document",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn identity_document_number_and_kind() {
        let result = json!({ "identity": { "documentNumber": "12345678 9 ZZ1", "surname": "X" }, "photo": null });
        assert_eq!(
            document_of("identity", &result),
            Some(("citizen-card".into(), "12345678 9 ZZ1".into()))
        );
        let filtered = json!({ "identity": { "surname": "X" } });
        assert_eq!(
            document_of("identity", &filtered),
            Some(("citizen-card".into(), String::new()))
        );
        assert_eq!(document_of("identity", &json!({})), None);
        assert_eq!(document_of("session-start", &result), None);
    }

    #[test]
    fn emrtd_falls_back_to_the_agents_reading_of_dg1() {
        let result = json!({ "dataGroups": { "1": "not base64!" }, "document": { "documentCode": "P", "documentNumber": "L898902C3" } });
        assert_eq!(
            document_of("emrtd-read", &result),
            Some(("passport".into(), "L898902C3".into()))
        );
        assert_eq!(kind_of_code("ID"), "id-card");
        assert_eq!(kind_of_code(""), "travel-document");
    }

    #[test]
    fn emrtd_reads_the_number_from_dg1() {
        // ICAO 9303-4 Appendix A specimen, TD1 (an identity card).
        let mrz = "I<UTOD231458907<<<<<<<<<<<<<<<7408122F1204159UTO<<<<<<<<<<<6ERIKSSON<<ANNA<MARIA<<<<<<<<<<";
        let mut file = vec![0x61, (mrz.len() + 3) as u8, 0x5F, 0x1F, mrz.len() as u8];
        file.extend_from_slice(mrz.as_bytes());
        let result = json!({ "dataGroups": { "1": B64.encode(&file) } });
        assert_eq!(
            document_of("emrtd-read", &result),
            Some(("id-card".into(), "D23145890".into()))
        );
    }

    #[test]
    fn certificates_give_their_subject_serial_number() {
        use openssl::{asn1::Asn1Time, hash::MessageDigest, nid::Nid, pkey::PKey, rsa::Rsa, x509};
        let key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
        let mut name = x509::X509NameBuilder::new().unwrap();
        name.append_entry_by_nid(Nid::COMMONNAME, "ANNA ERIKSSON")
            .unwrap();
        name.append_entry_by_nid(Nid::SERIALNUMBER, "PNOPT-12345678")
            .unwrap();
        let name = name.build();
        let mut b = x509::X509Builder::new().unwrap();
        b.set_subject_name(&name).unwrap();
        b.set_issuer_name(&name).unwrap();
        b.set_pubkey(&key).unwrap();
        b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
            .unwrap();
        b.set_not_after(&Asn1Time::days_from_now(1).unwrap())
            .unwrap();
        b.sign(&key, MessageDigest::sha256()).unwrap();
        let der = b.build().to_der().unwrap();
        let expected = Some(("citizen-card".to_owned(), "PNOPT-12345678".to_owned()));
        assert_eq!(document_of_certificate(&der), expected);
        let b64 = B64.encode(&der);
        assert_eq!(
            document_of("certificate", &json!({ "certificate": b64 })),
            expected
        );
        assert_eq!(
            document_of("authenticate", &json!({ "unverifiedCertificate": b64 })),
            expected
        );
        assert_eq!(
            document_of("sign", &json!({ "certificate": b64 })),
            expected
        );
    }

    #[test]
    fn garbage_certificates_give_nothing() {
        assert_eq!(
            document_of("certificate", &json!({ "certificate": "AAAA" })),
            None
        );
        assert_eq!(document_of("sign", &json!({ "signature": "AAAA" })), None);
    }
}
