//! Web eID tokens and eMRTD results: the published reference vectors of the Web eID validators,
//! round trips with keys and a CA generated here, every refusal with its code, the nonce rules
//! and store, and parsing of hostile input.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::sync::Arc;

use common::{DAY, Options, Pki, certificate, cons, ec_key, int, oid, rsa_key, seq, set, tlv};
use eid_protocols::aa::{self, AaHash, AaKey};
use eid_protocols::pa::{Check, CscaStore};
use eid_protocols::sm::OsRandom;
use eid_protocols::webeid::{
    AccessInfo, AccessMethod, AgentCheck, AuthToken, EmrtdError, EmrtdResult, EmrtdValidator,
    JwsAlgorithm, NonceError, NonceStore, Origin, TokenError, TokenValidator, check_nonce,
    digest_to_sign, emrtd_aa_challenge, signed_data,
};
use openssl::asn1::{Asn1Object, Asn1OctetString, Asn1Time};
use openssl::bn::BigNum;
use openssl::ec::{EcGroup, EcKey};
use openssl::ecdsa::EcdsaSig;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::rsa::{Padding, Rsa};
use openssl::sign::{RsaPssSaltlen, Signer};
use openssl::x509::extension::{ExtendedKeyUsage, KeyUsage};
use openssl::x509::{X509, X509Extension, X509NameBuilder};
use proptest::prelude::*;
use serde_json::Value;
use time::{Duration, OffsetDateTime};

const ORIGIN: &str = "https://example.org";

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

fn nonce() -> String {
    NonceStore::default().issue(now()).unwrap()
}

// ---------------------------------------------------------------------------------------------
// Generated keys and a test CA

struct Ca {
    key: PKey<Private>,
    cert: X509,
}

impl Ca {
    fn new(name: &str) -> Self {
        let key = ec_key();
        let t = now().unix_timestamp();
        let cert = certificate(name, &key, None, t - 100 * DAY, t + 3650 * DAY, true);
        Self { key, cert }
    }
    fn pem(&self) -> Vec<u8> {
        self.cert.to_pem().unwrap()
    }
}

#[derive(Clone)]
struct UserCert {
    key_usage: Option<&'static str>,
    eku: Option<&'static str>,
    policies: Option<&'static str>,
    from: i64,
    to: i64,
}

impl Default for UserCert {
    fn default() -> Self {
        let t = now().unix_timestamp();
        Self {
            key_usage: Some("digitalSignature,keyAgreement"),
            eku: Some("clientAuth,emailProtection"),
            policies: None,
            from: t - DAY,
            to: t + 365 * DAY,
        }
    }
}

fn user_certificate(key: &PKey<Private>, issuer: &Ca, spec: &UserCert) -> X509 {
    let mut b = X509::builder().unwrap();
    b.set_version(2).unwrap();
    b.set_serial_number(&BigNum::from_u32(4242).unwrap().to_asn1_integer().unwrap())
        .unwrap();
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_text("C", "EE").unwrap();
    name.append_entry_by_text("CN", "JÕEORG,JAAK-KRISTJAN,38001085718")
        .unwrap();
    name.append_entry_by_text("SN", "JÕEORG").unwrap();
    name.append_entry_by_text("GN", "JAAK-KRISTJAN").unwrap();
    name.append_entry_by_text("serialNumber", "PNOEE-38001085718")
        .unwrap();
    let name = name.build();
    b.set_subject_name(&name).unwrap();
    b.set_issuer_name(issuer.cert.subject_name()).unwrap();
    b.set_pubkey(key).unwrap();
    b.set_not_before(&Asn1Time::from_unix(spec.from).unwrap())
        .unwrap();
    b.set_not_after(&Asn1Time::from_unix(spec.to).unwrap())
        .unwrap();
    if let Some(ku) = spec.key_usage {
        let mut k = KeyUsage::new();
        k.critical();
        for u in ku.split(',') {
            match u {
                "digitalSignature" => k.digital_signature(),
                "keyAgreement" => k.key_agreement(),
                "keyEncipherment" => k.key_encipherment(),
                "nonRepudiation" => k.non_repudiation(),
                other => panic!("{other}"),
            };
        }
        b.append_extension(k.build().unwrap()).unwrap();
    }
    if let Some(eku) = spec.eku {
        let mut e = ExtendedKeyUsage::new();
        for u in eku.split(',') {
            match u {
                "clientAuth" => e.client_auth(),
                "serverAuth" => e.server_auth(),
                "emailProtection" => e.email_protection(),
                other => panic!("{other}"),
            };
        }
        b.append_extension(e.build().unwrap()).unwrap();
    }
    if let Some(p) = spec.policies {
        // certificatePolicies ::= SEQUENCE OF PolicyInformation { policyIdentifier }
        let infos: Vec<Vec<u8>> = p.split(',').map(|o| seq(&[&oid(o)])).collect();
        let refs: Vec<&[u8]> = infos.iter().map(Vec::as_slice).collect();
        let value = Asn1OctetString::new_from_bytes(&seq(&refs)).unwrap();
        let policy_oid = Asn1Object::from_str("2.5.29.32").unwrap();
        let ext = X509Extension::new_from_der(&policy_oid, false, &value).unwrap();
        b.append_extension(ext).unwrap();
    }
    b.sign(&issuer.key, MessageDigest::sha256()).unwrap();
    b.build()
}

fn ec_key_on(nid: Nid) -> PKey<Private> {
    PKey::from_ec_key(EcKey::generate(&EcGroup::from_curve_name(nid).unwrap()).unwrap()).unwrap()
}

/// What the card does: sign `digest_to_sign` (ECDSA raw r || s), or the JWS signature of
/// `signed_data` for RSA.
fn sign(alg: JwsAlgorithm, key: &PKey<Private>, origin: &str, nonce: &str) -> Vec<u8> {
    match alg {
        JwsAlgorithm::Es256 | JwsAlgorithm::Es384 | JwsAlgorithm::Es512 => {
            let ec = key.ec_key().unwrap();
            let sig = EcdsaSig::sign(&digest_to_sign(alg, origin, nonce), &ec).unwrap();
            let bits = ec.group().degree();
            let n = bits.div_ceil(8) as i32;
            let mut out = sig.r().to_vec_padded(n).unwrap();
            out.extend(sig.s().to_vec_padded(n).unwrap());
            out
        }
        _ => {
            let md = alg.hash().message_digest();
            let mut s = Signer::new(md, key).unwrap();
            if matches!(
                alg,
                JwsAlgorithm::Ps256 | JwsAlgorithm::Ps384 | JwsAlgorithm::Ps512
            ) {
                s.set_rsa_padding(Padding::PKCS1_PSS).unwrap();
                s.set_rsa_mgf1_md(md).unwrap();
                s.set_rsa_pss_saltlen(RsaPssSaltlen::DIGEST_LENGTH).unwrap();
            }
            s.sign_oneshot_to_vec(&signed_data(alg, origin, nonce))
                .unwrap()
        }
    }
}

fn token(alg: JwsAlgorithm, key: &PKey<Private>, cert: &X509, origin: &str, nonce: &str) -> String {
    AuthToken::new(
        alg,
        &cert.to_der().unwrap(),
        &sign(alg, key, origin, nonce),
        "https://example.invalid/eid-agent/0.1.0",
    )
    .to_json()
}

fn validator(ca: &Ca) -> TokenValidator {
    TokenValidator::new(ORIGIN)
        .unwrap()
        .with_trust_anchors(&ca.pem())
        .unwrap()
}

#[test]
fn round_trips_for_every_key_kind() {
    let ca = Ca::new("Test CA");
    let cases = [
        (JwsAlgorithm::Es256, ec_key_on(Nid::X9_62_PRIME256V1)),
        (JwsAlgorithm::Es384, ec_key_on(Nid::SECP384R1)),
        (JwsAlgorithm::Es512, ec_key_on(Nid::SECP521R1)),
        (JwsAlgorithm::Rs256, rsa_key()),
        (JwsAlgorithm::Ps256, rsa_key()),
        (JwsAlgorithm::Rs512, rsa_key()),
        (JwsAlgorithm::Ps384, rsa_key()),
    ];
    for (alg, key) in &cases {
        let cert = user_certificate(key, &ca, &UserCert::default());
        let n = nonce();
        let t = token(*alg, key, &cert, ORIGIN, &n);
        let ok = validator(&ca)
            .validate(t.as_bytes(), &n)
            .unwrap_or_else(|e| panic!("{alg}: {e}"));
        assert_eq!(ok.algorithm, *alg);
        assert_eq!(ok.certificate, cert.to_der().unwrap());
        assert_eq!(
            ok.subject.serial_number.as_deref(),
            Some("PNOEE-38001085718")
        );
        assert_eq!(ok.subject.surname.as_deref(), Some("JÕEORG"));
        // The algorithm the agent would choose for the key (RS256 for any RSA key).
        let chosen = JwsAlgorithm::for_key(key).unwrap();
        match alg {
            JwsAlgorithm::Es256 | JwsAlgorithm::Es384 | JwsAlgorithm::Es512 => {
                assert_eq!(chosen, *alg)
            }
            _ => assert_eq!(chosen, JwsAlgorithm::Rs256),
        }
    }
}

#[test]
fn agent_token_json_has_the_reference_shape() {
    let ca = Ca::new("Test CA");
    let key = ec_key_on(Nid::SECP384R1);
    let cert = user_certificate(&key, &ca, &UserCert::default());
    let n = nonce();
    let json: Value =
        serde_json::from_str(&token(JwsAlgorithm::Es384, &key, &cert, ORIGIN, &n)).unwrap();
    let obj = json.as_object().unwrap();
    let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "algorithm",
            "appVersion",
            "format",
            "signature",
            "unverifiedCertificate"
        ]
    );
    assert_eq!(obj["format"], "web-eid:1.0");
    assert_eq!(obj["algorithm"], "ES384");
    // Standard base64 with padding; ES384 signature is 96 bytes (128 characters).
    assert_eq!(obj["signature"].as_str().unwrap().len(), 128);
}

#[test]
fn tokens_fail_for_another_origin_nonce_anchor_or_signature_byte() {
    let ca = Ca::new("Test CA");
    let key = ec_key_on(Nid::X9_62_PRIME256V1);
    let cert = user_certificate(&key, &ca, &UserCert::default());
    let n = nonce();
    let t = token(JwsAlgorithm::Es256, &key, &cert, ORIGIN, &n);

    assert!(validator(&ca).validate(t.as_bytes(), &n).is_ok());
    // Same origin written differently is the same origin.
    assert!(
        TokenValidator::new("HTTPS://EXAMPLE.ORG:443/")
            .unwrap()
            .with_trust_anchors(&ca.pem())
            .unwrap()
            .validate(t.as_bytes(), &n)
            .is_ok()
    );
    for other in [
        "https://example.com",
        "https://example.org:8443",
        "https://sub.example.org",
    ] {
        let v = TokenValidator::new(other)
            .unwrap()
            .with_trust_anchors(&ca.pem())
            .unwrap();
        assert_eq!(
            v.validate(t.as_bytes(), &n).unwrap_err().code(),
            "signature-invalid"
        );
    }
    assert_eq!(
        validator(&ca)
            .validate(t.as_bytes(), &nonce())
            .unwrap_err()
            .code(),
        "signature-invalid"
    );
    let other_ca = Ca::new("Test CA");
    assert_eq!(
        validator(&other_ca)
            .validate(t.as_bytes(), &n)
            .unwrap_err()
            .code(),
        "certificate-untrusted"
    );
    let no_anchor = TokenValidator::new(ORIGIN).unwrap();
    assert_eq!(
        no_anchor.validate(t.as_bytes(), &n).unwrap_err().code(),
        "certificate-untrusted"
    );

    // Flip one byte of the signature (every position).
    let parsed = AuthToken::parse(t.as_bytes()).unwrap();
    let sig = eid_protocols::webeid::base64_decode(&parsed.signature).unwrap();
    for i in 0..sig.len() {
        let mut bad = sig.clone();
        bad[i] ^= 0x01;
        let mut tok = parsed.clone();
        tok.signature = eid_protocols::webeid::base64_encode(&bad);
        assert_eq!(
            validator(&ca).validate_token(&tok, &n).unwrap_err().code(),
            "signature-invalid",
            "byte {i}"
        );
    }
    // Truncated or DER-encoded ECDSA signatures are not r || s.
    let mut tok = parsed.clone();
    tok.signature = eid_protocols::webeid::base64_encode(&sig[..63]);
    assert_eq!(
        validator(&ca).validate_token(&tok, &n).unwrap_err().code(),
        "signature-invalid"
    );
    let der = EcdsaSig::from_private_components(
        BigNum::from_slice(&sig[..32]).unwrap(),
        BigNum::from_slice(&sig[32..]).unwrap(),
    )
    .unwrap()
    .to_der()
    .unwrap();
    tok.signature = eid_protocols::webeid::base64_encode(&der);
    assert_eq!(
        validator(&ca).validate_token(&tok, &n).unwrap_err().code(),
        "signature-invalid"
    );
    // URL-safe base64 without padding is read too (.NET's decoder).
    let mut tok = parsed.clone();
    tok.signature = tok
        .signature
        .replace('+', "-")
        .replace('/', "_")
        .trim_end_matches('=')
        .to_owned();
    assert!(validator(&ca).validate_token(&tok, &n).is_ok());
}

#[test]
fn certificate_time_purpose_and_policy_checks() {
    let ca = Ca::new("Test CA");
    let key = ec_key_on(Nid::X9_62_PRIME256V1);
    let t = now().unix_timestamp();
    let cases: [(UserCert, &str); 9] = [
        (
            UserCert {
                from: t - 400 * DAY,
                to: t - DAY,
                ..UserCert::default()
            },
            "certificate-expired",
        ),
        (
            UserCert {
                from: t + DAY,
                to: t + 400 * DAY,
                ..UserCert::default()
            },
            "certificate-not-yet-valid",
        ),
        (
            UserCert {
                key_usage: Some("keyEncipherment"),
                ..UserCert::default()
            },
            "certificate-purpose",
        ),
        (
            UserCert {
                key_usage: Some("nonRepudiation"),
                eku: None,
                ..UserCert::default()
            },
            "certificate-purpose",
        ),
        (
            UserCert {
                key_usage: None,
                ..UserCert::default()
            },
            "certificate-purpose",
        ),
        (
            UserCert {
                eku: Some("serverAuth,emailProtection"),
                ..UserCert::default()
            },
            "certificate-purpose",
        ),
        (
            UserCert {
                policies: Some("1.3.6.1.4.1.10015.1.3.2"),
                ..UserCert::default()
            },
            "certificate-policy",
        ),
        // No extendedKeyUsage: authentication assumed (e.g. the Luxembourg card).
        (
            UserCert {
                eku: None,
                ..UserCert::default()
            },
            "ok",
        ),
        (
            UserCert {
                policies: Some("1.3.6.1.4.1.51361.1.1.1,0.4.0.2042.1.2"),
                ..UserCert::default()
            },
            "ok",
        ),
    ];
    for (spec, want) in cases {
        let cert = user_certificate(&key, &ca, &spec);
        let n = nonce();
        let tok = token(JwsAlgorithm::Es256, &key, &cert, ORIGIN, &n);
        let got = match validator(&ca).validate(tok.as_bytes(), &n) {
            Ok(_) => "ok",
            Err(e) => e.code(),
        };
        assert_eq!(
            got, want,
            "{:?} {:?} {:?}",
            spec.key_usage, spec.eku, spec.policies
        );
    }

    // Required policies: one of them is enough; none present fails.
    let cert = user_certificate(
        &key,
        &ca,
        &UserCert {
            policies: Some("1.3.6.1.4.1.51361.1.1.1"),
            ..UserCert::default()
        },
    );
    let n = nonce();
    let tok = token(JwsAlgorithm::Es256, &key, &cert, ORIGIN, &n);
    let v = validator(&ca)
        .require_policy("1.3.6.1.4.1.51361.1.1.1")
        .unwrap()
        .require_policy("1.2.3.4")
        .unwrap();
    assert!(v.validate(tok.as_bytes(), &n).is_ok());
    let v = validator(&ca).require_policy("1.2.3.4").unwrap();
    assert_eq!(
        v.validate(tok.as_bytes(), &n).unwrap_err().code(),
        "certificate-policy"
    );
    let v = validator(&ca)
        .disallow_policy("1.3.6.1.4.1.51361.1.1.1")
        .unwrap();
    assert_eq!(
        v.validate(tok.as_bytes(), &n).unwrap_err().code(),
        "certificate-policy"
    );
    assert!(validator(&ca).require_policy("not an oid").is_err());

    // The Mobile-ID policy is refused by default and allowed on request.
    let mobile = user_certificate(
        &key,
        &ca,
        &UserCert {
            policies: Some("1.3.6.1.4.1.10015.1.3"),
            ..UserCert::default()
        },
    );
    let tok = token(JwsAlgorithm::Es256, &key, &mobile, ORIGIN, &n);
    assert_eq!(
        validator(&ca)
            .validate(tok.as_bytes(), &n)
            .unwrap_err()
            .code(),
        "certificate-policy"
    );
    assert!(
        validator(&ca)
            .allow_all_policies()
            .validate(tok.as_bytes(), &n)
            .is_ok()
    );

    // A fixed validation time inside the validity of an otherwise expired certificate.
    let old = user_certificate(
        &key,
        &ca,
        &UserCert {
            from: t - 400 * DAY,
            to: t - 10 * DAY,
            ..UserCert::default()
        },
    );
    let tok = token(JwsAlgorithm::Es256, &key, &old, ORIGIN, &n);
    let then = OffsetDateTime::from_unix_timestamp(t - 20 * DAY).unwrap();
    assert!(validator(&ca).at(then).validate(tok.as_bytes(), &n).is_ok());
}

#[test]
fn algorithm_must_fit_the_key() {
    let ca = Ca::new("Test CA");
    let p256 = ec_key_on(Nid::X9_62_PRIME256V1);
    let rsa = rsa_key();
    let rsa1024 = PKey::from_rsa(Rsa::generate(1024).unwrap()).unwrap();
    let n = nonce();
    let cases: [(JwsAlgorithm, &PKey<Private>, &PKey<Private>); 4] = [
        // (claimed algorithm, certificate key, signing key)
        (JwsAlgorithm::Rs256, &p256, &rsa),
        (JwsAlgorithm::Es256, &rsa, &p256),
        (JwsAlgorithm::Es384, &p256, &p256),
        (JwsAlgorithm::Rs256, &rsa1024, &rsa1024),
    ];
    for (alg, cert_key, signing_key) in cases {
        let cert = user_certificate(cert_key, &ca, &UserCert::default());
        let sig = match alg {
            JwsAlgorithm::Es384 => sign(JwsAlgorithm::Es256, signing_key, ORIGIN, &n),
            _ => sign(alg, signing_key, ORIGIN, &n),
        };
        let tok = AuthToken::new(alg, &cert.to_der().unwrap(), &sig, "x").to_json();
        let e = validator(&ca).validate(tok.as_bytes(), &n).unwrap_err();
        assert_eq!(e.code(), "token-algorithm", "{alg}: {e}");
    }
    // A PKCS#1 v1.5 signature presented as PSS (and the reverse) does not verify.
    let cert = user_certificate(&rsa, &ca, &UserCert::default());
    for (claimed, made) in [
        (JwsAlgorithm::Ps256, JwsAlgorithm::Rs256),
        (JwsAlgorithm::Rs256, JwsAlgorithm::Ps256),
        (JwsAlgorithm::Rs384, JwsAlgorithm::Rs256),
    ] {
        let tok = AuthToken::new(
            claimed,
            &cert.to_der().unwrap(),
            &sign(made, &rsa, ORIGIN, &n),
            "x",
        )
        .to_json();
        assert_eq!(
            validator(&ca)
                .validate(tok.as_bytes(), &n)
                .unwrap_err()
                .code(),
            "signature-invalid"
        );
    }
    assert_eq!(JwsAlgorithm::for_key(&p256), Some(JwsAlgorithm::Es256));
    let brainpool = ec_key_on(Nid::BRAINPOOL_P384R1);
    assert_eq!(JwsAlgorithm::for_key(&brainpool), Some(JwsAlgorithm::Es384));
    let secp224 = ec_key_on(Nid::SECP224R1);
    assert_eq!(JwsAlgorithm::for_key(&secp224), None);
}

#[test]
fn intermediate_anchor_and_chains() {
    let root = Ca::new("Root");
    let t = now().unix_timestamp();
    let inter_key = ec_key();
    let inter_cert = certificate(
        "Issuing CA",
        &inter_key,
        Some((&root.cert, &root.key)),
        t - 10 * DAY,
        t + 1000 * DAY,
        true,
    );
    let inter = Ca {
        key: inter_key,
        cert: inter_cert,
    };
    let key = ec_key_on(Nid::SECP384R1);
    let cert = user_certificate(&key, &inter, &UserCert::default());
    let n = nonce();
    let tok = token(JwsAlgorithm::Es384, &key, &cert, ORIGIN, &n);
    // The issuing CA alone is a trust anchor (as in the reference validators).
    assert!(validator(&inter).validate(tok.as_bytes(), &n).is_ok());
    // Root and issuing CA together.
    let mut both = root.pem();
    both.extend(inter.pem());
    let v = TokenValidator::new(ORIGIN)
        .unwrap()
        .with_trust_anchors(&both)
        .unwrap();
    assert_eq!(v.trust_anchor_count(), 2);
    assert!(v.validate(tok.as_bytes(), &n).is_ok());
    // The root alone: the token carries no intermediate, so no chain.
    assert_eq!(
        validator(&root)
            .validate(tok.as_bytes(), &n)
            .unwrap_err()
            .code(),
        "certificate-untrusted"
    );
    // DER anchors work too.
    let der = TokenValidator::new(ORIGIN)
        .unwrap()
        .with_trust_anchors(&inter.cert.to_der().unwrap())
        .unwrap();
    assert!(der.validate(tok.as_bytes(), &n).is_ok());
    assert!(
        TokenValidator::new(ORIGIN)
            .unwrap()
            .with_trust_anchors(b"not a certificate")
            .is_err()
    );
}

#[test]
fn token_shape_errors() {
    let ca = Ca::new("Test CA");
    let key = ec_key_on(Nid::X9_62_PRIME256V1);
    let cert = user_certificate(&key, &ca, &UserCert::default());
    let n = nonce();
    let good: Value =
        serde_json::from_str(&token(JwsAlgorithm::Es256, &key, &cert, ORIGIN, &n)).unwrap();
    let v = validator(&ca);
    let check = |json: String, want: &str| {
        let got = match v.validate(json.as_bytes(), &n) {
            Ok(_) => "ok",
            Err(e) => e.code(),
        };
        assert_eq!(got, want, "{json}");
    };
    // Unknown fields are ignored; appVersion is optional.
    let mut extra = good.clone();
    extra["issuerApp"] = "x".into();
    extra["unknown"] = serde_json::json!({"nested": [1, 2]});
    check(extra.to_string(), "ok");
    let mut no_app = good.clone();
    no_app.as_object_mut().unwrap().remove("appVersion");
    check(no_app.to_string(), "ok");
    // Minor format versions are accepted.
    let mut minor = good.clone();
    minor["format"] = "web-eid:1.1".into();
    check(minor.to_string(), "ok");
    for field in ["unverifiedCertificate", "algorithm", "signature", "format"] {
        let mut missing = good.clone();
        missing.as_object_mut().unwrap().remove(field);
        check(missing.to_string(), "token-format");
        let mut null = good.clone();
        null[field] = Value::Null;
        check(null.to_string(), "token-format");
        let mut number = good.clone();
        number[field] = 5.into();
        check(number.to_string(), "token-format");
    }
    let mut bad_cert = good.clone();
    bad_cert["unverifiedCertificate"] = "!!!!".into();
    check(bad_cert.to_string(), "token-format");
    bad_cert["unverifiedCertificate"] = eid_protocols::webeid::base64_encode(b"garbage").into();
    check(bad_cert.to_string(), "certificate-invalid");
    let mut trailing = good.clone();
    let mut der = cert.to_der().unwrap();
    der.push(0);
    trailing["unverifiedCertificate"] = eid_protocols::webeid::base64_encode(&der).into();
    check(trailing.to_string(), "certificate-invalid");
    check("[]".repeat(60), "token-format");
    check("{}".into(), "token-format");
    // The same fields as a JSON array are not a token.
    let obj = good.as_object().unwrap();
    let array = Value::Array(
        [
            "unverifiedCertificate",
            "algorithm",
            "signature",
            "format",
            "appVersion",
        ]
        .iter()
        .map(|k| obj[*k].clone())
        .collect(),
    );
    check(array.to_string(), "token-format");
    let mut long = good.clone();
    long["padding"] = "x".repeat(10_000).into();
    check(long.to_string(), "token-format");
    // Duplicate keys are refused by the JSON reader.
    let text = good.to_string();
    let dup = text.replacen('{', "{\"algorithm\":\"ES256\",", 1);
    check(dup, "token-format");
    // A malformed nonce never reaches the signature check.
    assert_eq!(
        v.validate(good.to_string().as_bytes(), "short")
            .unwrap_err()
            .code(),
        "nonce-invalid"
    );
    assert!(TokenValidator::new("http://example.org").is_err());
    assert_eq!(
        TokenValidator::new("https://example.org/path")
            .unwrap_err()
            .code(),
        "validator-config"
    );
}

// ---------------------------------------------------------------------------------------------
// Nonces

#[test]
fn nonce_rules() {
    let b64_32 = eid_protocols::webeid::base64_encode(&[7u8; 32]); // 44 characters
    assert_eq!(b64_32.len(), 44);
    assert_eq!(check_nonce(&b64_32), Ok(()));
    assert_eq!(check_nonce(&b64_32[..43]), Err(NonceError::Length(43)));
    assert_eq!(check_nonce(""), Err(NonceError::Length(0)));
    // The reference validators' test nonce (44 digits, 33 bytes once decoded).
    assert_eq!(
        check_nonce("12345678123456781234567812345678912356789123"),
        Ok(())
    );
    // 44 characters that are not base64.
    assert_eq!(check_nonce(&"!".repeat(44)), Err(NonceError::Encoding));
    assert_eq!(check_nonce(&"é".repeat(44)), Err(NonceError::Encoding));
    // 44 characters of base64 for 31 bytes only.
    assert_eq!(
        check_nonce(&format!("{}==", "A".repeat(42))),
        Err(NonceError::Encoding)
    );
    // URL-safe alphabet, padding optional.
    let url = eid_protocols::webeid::base64_encode(&[0xFB; 40])
        .replace('+', "-")
        .replace('/', "_")
        .trim_end_matches('=')
        .to_owned();
    assert!(url.contains('-') || url.contains('_'));
    assert_eq!(check_nonce(&url), Ok(()));
    assert_eq!(check_nonce(&"A".repeat(512)), Ok(()));
    assert_eq!(check_nonce(&"A".repeat(513)), Err(NonceError::Length(513)));
    assert_eq!(NonceError::Length(1).code(), "nonce-invalid");
}

#[test]
fn nonce_store_single_use_and_expiry() {
    let t0 = now();
    let store = NonceStore::default();
    assert_eq!(store.ttl(), Duration::minutes(5));
    let a = store.issue(t0).unwrap();
    let b = store.issue(t0).unwrap();
    assert_ne!(a, b);
    assert_eq!(a.len(), 44);
    assert_eq!(check_nonce(&a), Ok(()));
    assert_eq!(store.consume(&a, t0 + Duration::seconds(10)), Ok(()));
    assert_eq!(
        store.consume(&a, t0 + Duration::seconds(11)),
        Err(NonceError::Reused)
    );
    assert_eq!(
        store.consume(&b, t0 + Duration::minutes(5) + Duration::seconds(1)),
        Err(NonceError::Expired)
    );
    assert_eq!(
        store.consume(&b, t0 + Duration::minutes(6)),
        Err(NonceError::Unknown)
    );
    assert_eq!(store.consume(&nonce(), t0), Err(NonceError::Unknown));
    // Exactly at the expiry instant it is still valid.
    let c = store.issue(t0).unwrap();
    assert_eq!(store.consume(&c, t0 + Duration::minutes(5)), Ok(()));
    // Expired entries are forgotten.
    let _ = store.issue(t0).unwrap();
    let _ = store.issue(t0 + Duration::hours(1)).unwrap();
    assert_eq!(store.len(), 1);

    let short = NonceStore::new(Duration::seconds(30)).with_capacity(2);
    let n1 = short.issue(t0).unwrap();
    let n2 = short.issue(t0 + Duration::seconds(1)).unwrap();
    let n3 = short.issue(t0 + Duration::seconds(2)).unwrap();
    assert_eq!(short.len(), 2);
    assert_eq!(short.consume(&n1, t0), Err(NonceError::Unknown));
    assert_eq!(short.consume(&n2, t0 + Duration::seconds(3)), Ok(()));
    assert_eq!(
        short.consume(&n3, t0 + Duration::seconds(40)),
        Err(NonceError::Expired)
    );
    assert_eq!(NonceError::Reused.code(), "nonce-reused");
    assert_eq!(NonceError::Expired.code(), "nonce-expired");
    assert_eq!(NonceError::Unknown.code(), "nonce-unknown");
}

#[test]
fn nonce_store_is_thread_safe() {
    let store = Arc::new(NonceStore::default());
    let t0 = now();
    let n = store.issue(t0).unwrap();
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let store = Arc::clone(&store);
            let n = n.clone();
            std::thread::spawn(move || store.consume(&n, t0).is_ok())
        })
        .collect();
    let wins = handles
        .into_iter()
        .map(|h| h.join().unwrap())
        .filter(|ok| *ok)
        .count();
    assert_eq!(wins, 1);
}

#[test]
fn validate_with_store_spends_the_nonce_first() {
    let ca = Ca::new("Test CA");
    let key = ec_key_on(Nid::X9_62_PRIME256V1);
    let cert = user_certificate(&key, &ca, &UserCert::default());
    let store = NonceStore::default();
    let v = validator(&ca);

    let n = store.issue(v.now()).unwrap();
    let good = token(JwsAlgorithm::Es256, &key, &cert, ORIGIN, &n);
    assert!(v.validate_with_store(good.as_bytes(), &n, &store).is_ok());
    assert_eq!(
        v.validate_with_store(good.as_bytes(), &n, &store)
            .unwrap_err(),
        TokenError::Nonce(NonceError::Reused)
    );

    // A failed attempt (wrong origin) burns the nonce too.
    let n = store.issue(v.now()).unwrap();
    let wrong = token(JwsAlgorithm::Es256, &key, &cert, "https://evil.example", &n);
    assert_eq!(
        v.validate_with_store(wrong.as_bytes(), &n, &store)
            .unwrap_err()
            .code(),
        "signature-invalid"
    );
    let retry = token(JwsAlgorithm::Es256, &key, &cert, ORIGIN, &n);
    assert_eq!(
        v.validate_with_store(retry.as_bytes(), &n, &store)
            .unwrap_err()
            .code(),
        "nonce-reused"
    );

    // A nonce the store never issued, and one that expired.
    let foreign = nonce();
    let tok = token(JwsAlgorithm::Es256, &key, &cert, ORIGIN, &foreign);
    assert_eq!(
        v.validate_with_store(tok.as_bytes(), &foreign, &store)
            .unwrap_err()
            .code(),
        "nonce-unknown"
    );
    let old = store.issue(v.now() - Duration::minutes(10)).unwrap();
    let tok = token(JwsAlgorithm::Es256, &key, &cert, ORIGIN, &old);
    assert_eq!(
        v.validate_with_store(tok.as_bytes(), &old, &store)
            .unwrap_err()
            .code(),
        "nonce-expired"
    );
}

#[test]
fn origin_serialization() {
    assert_eq!(
        Origin::parse("https://Example.org:443").unwrap().as_str(),
        "https://example.org"
    );
    assert_eq!(
        TokenValidator::new("https://example.org:8443/")
            .unwrap()
            .origin()
            .as_str(),
        "https://example.org:8443"
    );
}

// ---------------------------------------------------------------------------------------------
// eMRTD results

/// DG14 with an ActiveAuthenticationInfo naming ecdsa-with-SHA256.
fn dg14_with_aa() -> Vec<u8> {
    let aa_info = seq(&[&oid("2.23.136.1.1.5"), &int(1), &oid("1.2.840.10045.4.3.2")]);
    tlv(0x6E, &set(&[&aa_info]))
}

struct Document {
    pki: Pki,
    aa_key: Option<AaKey>,
    files: Vec<(u8, Vec<u8>)>,
    sod: Vec<u8>,
}

impl Document {
    /// An ID document with DG1, DG2, DG14 and (with `aa`) DG15, signed by a fresh CSCA -> DS.
    fn new(aa: Option<AaKey>) -> Self {
        let pki = Pki::new(ec_key());
        let mut files = vec![
            (1, common::dg1()),
            (2, tlv(0x75, &[0x7F, 0x61, 0x03, 0x02, 0x01, 0x00])),
            (14, dg14_with_aa()),
        ];
        if let Some(k) = &aa {
            let spki = k.public_key_der().unwrap();
            files.push((15, tlv(0x6F, &spki)));
        }
        let refs: Vec<(u8, &[u8])> = files.iter().map(|(n, f)| (*n, f.as_slice())).collect();
        let sod = common::sod_file(&pki, &refs, &Options::default());
        Self {
            pki,
            aa_key: aa,
            files,
            sod,
        }
    }

    fn ec() -> Self {
        let key =
            EcKey::generate(&EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap()).unwrap();
        Self::new(Some(AaKey::Ec(key, AaHash::Sha256)))
    }

    fn csca(&self) -> CscaStore {
        let mut s = CscaStore::new();
        s.add_certificates(&self.pki.csca.to_pem().unwrap())
            .unwrap();
        s
    }

    fn validator(&self) -> EmrtdValidator {
        EmrtdValidator::new(self.csca(), ORIGIN).unwrap()
    }

    /// What the agent sends for `origin` and `nonce`.
    fn result(&self, origin: &str, nonce: &str) -> EmrtdResult {
        let mut r = EmrtdResult::new(
            "eid-agent/0.1.0",
            AccessInfo {
                method: AccessMethod::Pace,
                detail: "PACE-ECDH-GM-AES-128, CAN".into(),
            },
            &self.sod,
        );
        for (n, f) in &self.files {
            r.add_data_group(*n, f);
        }
        if let Some(k) = &self.aa_key {
            let challenge = emrtd_aa_challenge(origin, nonce);
            let sig = aa::sign(k, &challenge, &mut OsRandom).unwrap();
            r.set_active_authentication(&challenge, &sig);
        }
        r.checks.passive = AgentCheck::Passed;
        r.checks.active = Check::Passed.into();
        r
    }
}

#[test]
fn emrtd_valid_result_passes() {
    for doc in [
        Document::ec(),
        Document::new(Some(AaKey::Rsa(
            Rsa::generate(2048).unwrap(),
            AaHash::Sha256,
        ))),
        Document::new(Some(AaKey::Rsa(Rsa::generate(1024).unwrap(), AaHash::Sha1))),
    ] {
        let n = nonce();
        let r = doc.result(ORIGIN, &n);
        // Through JSON, as the server receives it.
        let json = r.to_json();
        let back = EmrtdResult::parse(json.as_bytes()).unwrap();
        assert_eq!(back, r);
        let ok = doc.validator().validate(&back, &n, now()).unwrap();
        assert!(ok.active_authentication);
        assert_eq!(ok.data_groups, vec![1, 2, 14, 15]);
        assert_eq!(ok.document.surname, "ERIKSSON");
        assert_eq!(ok.document.given_names, "ANNA MARIA");
        assert_eq!(ok.document.document_number, "L898902C3");
        assert_eq!(ok.document.document_code, "P");
        assert_eq!(ok.document.issuing_state, "UTO");
        assert_eq!(ok.document.birth_date, "1974-08-12");
        assert_eq!(ok.document.sex, "F");
        assert_eq!(ok.document.expiry_date, "2012-04-15");
        assert!(
            ok.expired,
            "the ICAO specimen expired in 2012: authentic, and said to be expired"
        );
        assert!(ok.mrz_check_digits_valid);
        assert!(ok.passive_authentication.is_valid());
        assert_eq!(
            ok.card_security,
            Check::not_performed("EF.CardSecurity not sent")
        );
        let v = serde_json::to_value(&ok).unwrap();
        assert_eq!(v["document"]["documentNumber"], "L898902C3");
        assert_eq!(v["activeAuthentication"], true);
    }
}

#[test]
fn emrtd_result_json_shape() {
    let doc = Document::ec();
    let n = nonce();
    let mut r = doc.result(ORIGIN, &n);
    r.document = Some(eid_protocols::webeid::DocumentFields {
        surname: "ERIKSSON".into(),
        ..Default::default()
    });
    let v: Value = serde_json::from_str(&r.to_json()).unwrap();
    assert_eq!(v["format"], "eid-emrtd:1.0");
    assert_eq!(v["appVersion"], "eid-agent/0.1.0");
    assert_eq!(v["access"]["method"], "pace");
    assert!(v["dataGroups"]["1"].is_string());
    assert!(v["cardSecurity"].is_null());
    assert_eq!(
        v["activeAuthentication"]["challenge"]
            .as_str()
            .unwrap()
            .len(),
        16
    );
    assert_eq!(
        v["checks"]["passive"],
        serde_json::json!({"result": "passed"})
    );
    assert_eq!(
        v["checks"]["chip"],
        serde_json::json!({"result": "not-performed", "reason": ""})
    );
    assert_eq!(v["document"]["surname"], "ERIKSSON");
    // pa::Check and the wire check serialize alike.
    let failed = Check::failed("x");
    assert_eq!(
        serde_json::to_value(&failed).unwrap(),
        serde_json::to_value(AgentCheck::from(&failed)).unwrap()
    );
    // Minimal input: optional members absent, unknown members ignored.
    let minimal = serde_json::json!({
        "format": "eid-emrtd:1.0",
        "access": {"method": "bac"},
        "sod": "",
        "checks": {"passive": {"result": "passed"}, "chip": {"result": "not-performed"},
                   "active": {"result": "failed", "reason": "r"}},
        "extra": 1
    });
    let parsed = EmrtdResult::parse(minimal.to_string().as_bytes()).unwrap();
    assert_eq!(parsed.access.method, AccessMethod::Bac);
    assert!(parsed.data_groups.is_empty());
    assert!(
        EmrtdResult::parse(br#"{"format":"eid-emrtd:1.0","access":{"method":"nfc"}}"#).is_err()
    );
}

fn code(r: Result<eid_protocols::webeid::ValidatedDocument, EmrtdError>) -> &'static str {
    match r {
        Ok(_) => "ok",
        Err(e) => e.code(),
    }
}

#[test]
fn emrtd_tampering_fails_with_its_code() {
    let doc = Document::ec();
    let n = nonce();
    let v = doc.validator();
    let t = now();

    // A changed data group.
    let mut r = doc.result(ORIGIN, &n);
    let mut dg1 = common::dg1();
    let last = dg1.len() - 3;
    dg1[last] = b'9';
    r.add_data_group(1, &dg1);
    assert_eq!(code(v.validate(&r, &n, t)), "data-group-hash");
    // A data group the SOD does not list.
    let mut r = doc.result(ORIGIN, &n);
    r.add_data_group(11, &tlv(0x6B, &[0x5C, 0x00]));
    assert_eq!(code(v.validate(&r, &n, t)), "data-group-hash");
    // DG1 left out.
    let mut r = doc.result(ORIGIN, &n);
    r.data_groups.remove("1");
    assert_eq!(code(v.validate(&r, &n, t)), "dg1-missing");

    // Another CSCA.
    let other = Document::ec();
    let r = doc.result(ORIGIN, &n);
    assert_eq!(
        code(other.validator().validate(&r, &n, t)),
        "document-untrusted"
    );
    let empty = EmrtdValidator::new(CscaStore::new(), ORIGIN).unwrap();
    assert_eq!(code(empty.validate(&r, &n, t)), "validator-config");

    // The SOD: garbage, then one flipped byte in the signature (its last bytes).
    let mut r = doc.result(ORIGIN, &n);
    r.sod = eid_protocols::webeid::base64_encode(b"\x77\x03abc");
    assert_eq!(code(v.validate(&r, &n, t)), "sod-invalid");
    let mut sod = doc.sod.clone();
    let k = sod.len() - 5;
    sod[k] ^= 0x01;
    let mut r = doc.result(ORIGIN, &n);
    r.sod = eid_protocols::webeid::base64_encode(&sod);
    assert_eq!(code(v.validate(&r, &n, t)), "sod-signature");

    // Active authentication over another nonce or origin: the agent sends that challenge...
    let other_nonce = nonce();
    let r = doc.result(ORIGIN, &other_nonce);
    assert_eq!(code(v.validate(&r, &n, t)), "aa-challenge");
    let r = doc.result("https://evil.example", &n);
    assert_eq!(code(v.validate(&r, &n, t)), "aa-challenge");
    // ...or claims the right challenge with a signature over another one.
    let mut r = doc.result(ORIGIN, &other_nonce);
    let right = emrtd_aa_challenge(ORIGIN, &n);
    let sig = r.active_authentication.as_ref().unwrap().signature.clone();
    r.set_active_authentication(&right, &eid_protocols::webeid::base64_decode(&sig).unwrap());
    assert_eq!(code(v.validate(&r, &n, t)), "aa-invalid");
    // A clone: the chip's key is not the DG15 key.
    let mut r = doc.result(ORIGIN, &n);
    let clone_key = AaKey::Ec(
        EcKey::generate(&EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap()).unwrap(),
        AaHash::Sha256,
    );
    let sig = aa::sign(&clone_key, &right, &mut OsRandom).unwrap();
    r.set_active_authentication(&right, &sig);
    assert_eq!(code(v.validate(&r, &n, t)), "aa-invalid");
    // No AA answer although DG15 is there.
    let mut r = doc.result(ORIGIN, &n);
    r.active_authentication = None;
    assert_eq!(code(v.validate(&r, &n, t)), "aa-missing");
    // Not requiring AA excuses documents without it, not results that leave it out: this
    // document's SOD lists DG15, so the answer (and DG15) must be there.
    let lenient = doc.validator().with_active_authentication_required(false);
    assert_eq!(code(lenient.validate(&r, &n, t)), "aa-missing");
    let mut r = doc.result(ORIGIN, &n);
    r.data_groups.remove("15");
    r.active_authentication = None;
    assert_eq!(code(lenient.validate(&r, &n, t)), "aa-missing");
    // ECDSA AA without DG14 has no hash.
    let mut r = doc.result(ORIGIN, &n);
    r.data_groups.remove("14");
    assert_eq!(code(v.validate(&r, &n, t)), "aa-invalid");

    // Format, base64, keys and the nonce.
    let mut r = doc.result(ORIGIN, &n);
    r.format = "eid-emrtd:2.0".into();
    assert_eq!(code(v.validate(&r, &n, t)), "result-format");
    let mut r = doc.result(ORIGIN, &n);
    r.data_groups
        .insert("01".into(), r.data_groups["1"].clone());
    assert_eq!(code(v.validate(&r, &n, t)), "result-format");
    let mut r = doc.result(ORIGIN, &n);
    r.data_groups.insert("2".into(), "***".into());
    assert_eq!(code(v.validate(&r, &n, t)), "result-format");
    let r = doc.result(ORIGIN, &n);
    assert_eq!(code(v.validate(&r, "short", t)), "nonce-invalid");
}

#[test]
fn emrtd_without_dg15() {
    let doc = Document::new(None);
    let n = nonce();
    let r = doc.result(ORIGIN, &n);
    let err = doc.validator().validate(&r, &n, now()).unwrap_err();
    assert_eq!(err, EmrtdError::AaUnavailable);
    assert_eq!(err.code(), "aa-unavailable");
    let ok = doc
        .validator()
        .with_active_authentication_required(false)
        .validate(&r, &n, now())
        .unwrap();
    assert!(!ok.active_authentication);
    assert_eq!(ok.data_groups, vec![1, 2, 14]);
}

#[test]
fn emrtd_card_security_and_store() {
    let doc = Document::ec();
    let v = doc.validator();
    // EF.CardSecurity signed by the document's DS.
    let infos = set(&[&seq(&[&oid("0.4.0.127.0.7.2.2.4.2.2"), &int(2), &int(13)])]);
    let card_security = common::signed_data(
        "0.4.0.127.0.7.3.2.1",
        &infos,
        &doc.pki.ds,
        &doc.pki.ds_key,
        &[&doc.pki.ds],
        &Options::default(),
    );
    let store = NonceStore::default();
    let t = now();
    let n = store.issue(t).unwrap();
    let mut r = doc.result(ORIGIN, &n);
    r.set_card_security(&card_security);
    let ok = v
        .validate_with_store(r.to_json().as_bytes(), &n, &store, t)
        .unwrap();
    assert_eq!(ok.card_security, Check::Passed);
    // Single use.
    assert_eq!(
        code(v.validate_with_store(r.to_json().as_bytes(), &n, &store, t)),
        "nonce-reused"
    );
    // Signed by someone else.
    let other = Pki::new(ec_key());
    let forged = common::signed_data(
        "0.4.0.127.0.7.3.2.1",
        &infos,
        &other.ds,
        &other.ds_key,
        &[&other.ds],
        &Options::default(),
    );
    r.set_card_security(&forged);
    assert_eq!(code(v.validate(&r, &n, t)), "card-security-invalid");
    // Not a SecurityObject.
    r.set_card_security(&cons(0x30, &[&int(1)]));
    assert_eq!(code(v.validate(&r, &n, t)), "card-security-invalid");
}

// ---------------------------------------------------------------------------------------------
// Hostile input

fn fixed_validator() -> &'static TokenValidator {
    static V: std::sync::OnceLock<TokenValidator> = std::sync::OnceLock::new();
    V.get_or_init(|| {
        let ca = Ca::new("Fuzz CA");
        validator(&ca).at(OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap())
    })
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        ".{0,40}".prop_map(Value::from),
        prop::sample::select(vec![
            "ES256",
            "RS256",
            "PS512",
            "web-eid:1.0",
            "eid-emrtd:1.0",
            "pace",
            "bac",
            "passed",
            "failed",
            "not-performed",
            "AAAA",
            "MIIB",
        ])
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map(
                prop::sample::select(vec![
                    "unverifiedCertificate",
                    "algorithm",
                    "signature",
                    "format",
                    "appVersion",
                    "access",
                    "method",
                    "detail",
                    "sod",
                    "dataGroups",
                    "1",
                    "15",
                    "cardSecurity",
                    "activeAuthentication",
                    "challenge",
                    "checks",
                    "passive",
                    "chip",
                    "active",
                    "result",
                    "reason",
                    "document",
                ])
                .prop_map(str::to_owned),
                inner,
                0..8
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn parsing_arbitrary_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let _ = AuthToken::parse(&bytes);
        let _ = EmrtdResult::parse(&bytes);
        let e = fixed_validator().validate(&bytes, "12345678123456781234567812345678912356789123");
        prop_assert!(e.is_err());
    }

    #[test]
    fn parsing_arbitrary_json_never_panics(v in json_value()) {
        let text = v.to_string();
        let _ = AuthToken::parse(text.as_bytes());
        if let Ok(r) = EmrtdResult::parse(text.as_bytes()) {
            let _ = r.data_group_files();
            let csca = CscaStore::new();
            let validator = EmrtdValidator::new(csca, ORIGIN).unwrap();
            prop_assert!(validator
                .validate(&r, "12345678123456781234567812345678912356789123", now())
                .is_err());
        }
        let padded = format!("{text}{}", " ".repeat(100));
        prop_assert!(fixed_validator()
            .validate(padded.as_bytes(), "12345678123456781234567812345678912356789123")
            .is_err());
    }

    #[test]
    fn origins_never_panic(s in ".{0,80}") {
        if let Ok(o) = Origin::parse(&s) {
            // Normalisation is idempotent.
            prop_assert_eq!(Origin::parse(o.as_str()).unwrap(), o);
        }
        let _ = check_nonce(&s);
    }
}

/// The algorithm and format fields are checked before the signature: a token whose algorithm
/// or format was replaced is refused with the matching code.
#[test]
fn token_with_replaced_algorithm_or_format_is_refused() {
    let ca = Ca::new("Test CA");
    let key = ec_key_on(Nid::SECP384R1);
    let cert = user_certificate(&key, &ca, &UserCert::default());
    let n = nonce();
    let token = token(JwsAlgorithm::Es384, &key, &cert, ORIGIN, &n);
    let validator = TokenValidator::new(ORIGIN)
        .unwrap()
        .with_trust_anchors(&ca.cert.to_pem().unwrap())
        .unwrap();
    assert!(validator.validate(token.as_bytes(), &n).is_ok());
    for (from, to, code) in [
        ("\"ES384\"", "\"NONE\"", "token-algorithm"),
        ("\"ES384\"", "\"ES256\"", "token-algorithm"),
        ("\"ES384\"", "\"RS384\"", "token-algorithm"),
        ("\"ES384\"", "\"es384\"", "token-algorithm"),
        ("\"ES384\"", "\"\"", "token-format"),
        ("\"ES384\"", "null", "token-format"),
        ("web-eid:1.0", "web-eid:2.0", "token-format"),
        ("web-eid:1.0", "", "token-format"),
    ] {
        let changed = token.replace(from, to);
        assert_ne!(changed, token);
        let e = validator.validate(changed.as_bytes(), &n).unwrap_err();
        assert_eq!(e.code(), code, "{from} -> {to}: {e}");
    }
}
