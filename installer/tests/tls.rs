//! The local CA and localhost leaf: creation, reuse, renewal, damage, and what a TLS client
//! (OpenSSL here) makes of them.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::fs;
use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use eid_installer::tls::{self, LocalTls, TlsError};
use openssl::stack::Stack;
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::verify::{X509VerifyFlags, X509VerifyParam};
use openssl::x509::{X509, X509PurposeId, X509StoreContext};
use time::{Duration, OffsetDateTime};
use x509_parser::extensions::{GeneralName, ParsedExtension};

/// A fresh, empty directory for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("eid-tls-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    dir.join("tls")
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

/// OpenSSL's verdict on `leaf` (with the CA as the only trust anchor) for `host` or `ip`, as a
/// TLS server certificate, at the current time.
fn openssl_verify(
    ca_pem: &str,
    leaf_der: &[u8],
    host: Option<&str>,
    ip: Option<IpAddr>,
) -> Result<(), String> {
    let ca = X509::from_pem(ca_pem.as_bytes()).unwrap();
    let leaf = X509::from_der(leaf_der).unwrap();
    let mut param = X509VerifyParam::new().unwrap();
    if let Some(host) = host {
        param.set_host(host).unwrap();
    }
    if let Some(ip) = ip {
        param.set_ip(ip).unwrap();
    }
    param.set_flags(X509VerifyFlags::X509_STRICT).unwrap();
    param.set_purpose(X509PurposeId::SSL_SERVER).unwrap();
    let mut builder = X509StoreBuilder::new().unwrap();
    builder.add_cert(ca).unwrap();
    builder.set_param(&param).unwrap();
    let store = builder.build();
    let mut ctx = X509StoreContext::new().unwrap();
    let chain = Stack::new().unwrap();
    ctx.init(&store, &leaf, &chain, |c| {
        if c.verify_cert()? {
            Ok(Ok(()))
        } else {
            Ok(Err(c.error().to_string()))
        }
    })
    .unwrap()
}

fn leaf_der(t: &LocalTls) -> Vec<u8> {
    t.cert_chain_der()[0].to_vec()
}

#[test]
fn first_call_creates_the_files_with_private_permissions() {
    let dir = scratch("create");
    let t = tls::ensure(&dir, now()).unwrap();
    assert!(t.created && t.ca_created);
    assert_eq!(mode(&dir), 0o700, "the directory");
    for (file, want) in [
        (tls::CA_FILE, 0o644),
        (tls::CA_KEY_FILE, 0o600),
        (tls::LEAF_FILE, 0o644),
        (tls::LEAF_KEY_FILE, 0o600),
    ] {
        assert_eq!(mode(&dir.join(file)), want, "{file}");
    }
    assert_eq!(
        fs::read_to_string(dir.join(tls::CA_FILE)).unwrap(),
        t.ca_pem
    );
    assert_eq!(
        fs::read_to_string(dir.join(tls::LEAF_FILE)).unwrap(),
        t.leaf_chain_pem
    );
    assert_eq!(
        fs::read_to_string(dir.join(tls::LEAF_KEY_FILE)).unwrap(),
        *t.leaf_key_pem
    );
    // No temporary files left behind by the atomic writes.
    let names: Vec<_> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n != ".lock")
        .collect();
    assert_eq!(names.len(), 4, "{names:?}");
    // The Debug form never shows the key.
    assert!(!format!("{t:?}").contains("PRIVATE KEY"));
}

#[test]
fn an_existing_directory_is_made_private() {
    let dir = scratch("chmod");
    fs::create_dir_all(&dir).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
    tls::ensure(&dir, now()).unwrap();
    assert_eq!(mode(&dir), 0o700);
}

#[test]
fn second_call_reuses_the_same_leaf() {
    let dir = scratch("reuse");
    let first = tls::ensure(&dir, now()).unwrap();
    let second = tls::ensure(&dir, now() + Duration::days(30)).unwrap();
    assert!(!second.created && !second.ca_created);
    assert_eq!(second.reason, None);
    assert_eq!(second.ca_pem, first.ca_pem);
    assert_eq!(second.leaf_chain_pem, first.leaf_chain_pem);
    assert_eq!(*second.leaf_key_pem, *first.leaf_key_pem);
    assert_eq!(second.leaf_not_after, first.leaf_not_after);
    assert_eq!(second.leaf_spki_sha256_b64, first.leaf_spki_sha256_b64);
    assert_eq!(second.cert_chain_der(), first.cert_chain_der());
}

#[test]
fn leaf_is_renewed_when_less_than_thirty_days_remain() {
    let dir = scratch("renew");
    let start = now();
    let first = tls::ensure(&dir, start).unwrap();
    let days_valid = (first.leaf_not_after - start).whole_days();

    // 37 days left: kept.
    let kept = tls::ensure(&dir, start + Duration::days(days_valid - 37)).unwrap();
    assert!(!kept.created);

    // 27 days left: renewed under the same CA.
    let later = start + Duration::days(days_valid - 27);
    let renewed = tls::ensure(&dir, later).unwrap();
    assert!(renewed.created && !renewed.ca_created);
    assert!(
        renewed.reason.as_deref().unwrap().contains("expires"),
        "{:?}",
        renewed.reason
    );
    assert_eq!(renewed.ca_pem, first.ca_pem);
    assert_ne!(renewed.leaf_chain_pem, first.leaf_chain_pem);
    assert_ne!(renewed.leaf_spki_sha256_b64, first.leaf_spki_sha256_b64);
    assert!(renewed.leaf_not_after > later + Duration::days(300));

    // 800 days ahead (long expired): renewed again, still the same CA.
    let far = start + Duration::days(800);
    let again = tls::ensure(&dir, far).unwrap();
    assert!(again.created && !again.ca_created);
    assert_eq!(again.ca_pem, first.ca_pem);
    assert!(again.leaf_not_after > far);
}

#[test]
fn leaf_verifies_against_the_ca_for_the_loopback_names_only() {
    let dir = scratch("verify");
    let t = tls::ensure(&dir, now()).unwrap();
    let leaf = leaf_der(&t);
    openssl_verify(&t.ca_pem, &leaf, Some("localhost"), None).unwrap();
    openssl_verify(&t.ca_pem, &leaf, None, Some("127.0.0.1".parse().unwrap())).unwrap();
    openssl_verify(&t.ca_pem, &leaf, None, Some("::1".parse().unwrap())).unwrap();
    assert!(openssl_verify(&t.ca_pem, &leaf, Some("example.com"), None).is_err());
    assert!(openssl_verify(&t.ca_pem, &leaf, None, Some("127.0.0.2".parse().unwrap())).is_err());

    // The chain's second certificate is the CA, and the key is the leaf's.
    let chain = t.cert_chain_der();
    assert_eq!(chain.len(), 2);
    assert_eq!(
        X509::from_der(&chain[1]).unwrap().to_der().unwrap(),
        X509::from_pem(t.ca_pem.as_bytes())
            .unwrap()
            .to_der()
            .unwrap()
    );
    let key = openssl::pkey::PKey::private_key_from_der(t.key_der().secret_der()).unwrap();
    let leaf_x509 = X509::from_der(&leaf).unwrap();
    assert!(leaf_x509.public_key().unwrap().public_eq(&key));
}

#[test]
fn leaf_has_the_loopback_sans_server_auth_and_a_short_validity() {
    let dir = scratch("profile");
    let t = tls::ensure(&dir, now()).unwrap();
    let der = leaf_der(&t);
    let (_, leaf) = x509_parser::parse_x509_certificate(&der).unwrap();
    let mut sans: Vec<String> = leaf
        .subject_alternative_name()
        .unwrap()
        .unwrap()
        .value
        .general_names
        .iter()
        .map(|n| match n {
            GeneralName::DNSName(d) => format!("DNS:{d}"),
            GeneralName::IPAddress(b) => format!("IP:{}", hex(b)),
            other => panic!("unexpected SAN {other:?}"),
        })
        .collect();
    sans.sort();
    assert_eq!(
        sans,
        [
            "DNS:localhost",
            "IP:00000000000000000000000000000001",
            "IP:7f000001"
        ]
    );
    let eku = leaf.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.server_auth && !eku.client_auth && !eku.any);
    let ku = leaf.key_usage().unwrap().unwrap().value;
    assert!(ku.digital_signature() && !ku.key_cert_sign());
    assert!(!leaf.is_ca());
    let v = leaf.validity();
    let days = (v.not_after.to_datetime() - v.not_before.to_datetime()).whole_days();
    assert!(days <= 825, "{days} days");
    assert!(days >= 365, "{days} days");
    assert_eq!(v.not_after.to_datetime(), t.leaf_not_after);
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn ca_is_constrained_to_the_loopback_names() {
    let dir = scratch("ca");
    let t = tls::ensure(&dir, now()).unwrap();
    let ca_der = t.ca_der().unwrap().to_vec();
    let (_, ca) = x509_parser::parse_x509_certificate(&ca_der).unwrap();
    assert!(
        ca.subject().to_string().contains("CN=eID Agent local CA ("),
        "{}",
        ca.subject()
    );
    let bc = ca.basic_constraints().unwrap().unwrap();
    assert!(bc.critical && bc.value.ca);
    assert_eq!(bc.value.path_len_constraint, Some(0));
    let ku = ca.key_usage().unwrap().unwrap().value;
    assert!(ku.key_cert_sign() && ku.crl_sign() && !ku.digital_signature());

    let mut critical_nc = None;
    for ext in ca.extensions() {
        if let ParsedExtension::NameConstraints(nc) = ext.parsed_extension() {
            critical_nc = Some((ext.critical, nc.clone()));
        }
    }
    let (critical, nc) = critical_nc.expect("a name constraints extension");
    assert!(critical, "name constraints must be critical");
    assert!(nc.excluded_subtrees.is_none());
    let permitted: Vec<String> = nc
        .permitted_subtrees
        .unwrap()
        .iter()
        .map(|s| match &s.base {
            GeneralName::DNSName(d) => format!("DNS:{d}"),
            GeneralName::IPAddress(b) => format!("IP:{}", hex(b)),
            other => panic!("unexpected subtree {other:?}"),
        })
        .collect();
    assert_eq!(
        permitted,
        [
            "DNS:localhost",
            "IP:7f000001ffffffff",
            "IP:00000000000000000000000000000001ffffffffffffffffffffffffffffffff",
        ]
    );
    let v = ca.validity();
    let days = (v.not_after.to_datetime() - v.not_before.to_datetime()).whole_days();
    assert!((3650..=3651).contains(&days), "{days} days");
}

#[test]
fn the_ca_key_cannot_vouch_for_another_site() {
    // Even with the CA's key, a certificate for another name does not validate: the name
    // constraints stop it.
    let dir = scratch("rogue");
    let t = tls::ensure(&dir, now()).unwrap();
    let ca_key =
        rcgen::KeyPair::from_pem(&fs::read_to_string(dir.join(tls::CA_KEY_FILE)).unwrap()).unwrap();
    let issuer = rcgen::Issuer::from_ca_cert_pem(&t.ca_pem, ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["bank.example".to_owned()]).unwrap();
    // Everything else as the genuine leaf, so that only the name can fail.
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
    params.use_authority_key_identifier_extension = true;
    params.not_before = now() - Duration::hours(1);
    params.not_after = now() + Duration::days(30);
    let rogue = params.signed_by(&key, &issuer).unwrap();
    let verdict = openssl_verify(&t.ca_pem, rogue.der(), Some("bank.example"), None);
    let err = verdict.expect_err("a constrained CA must not validate bank.example");
    assert!(
        err.contains("name constraint") || err.contains("permitted"),
        "{err}"
    );
}

#[test]
fn spki_hash_is_the_sha256_of_the_leaf_public_key() {
    let dir = scratch("spki");
    let t = tls::ensure(&dir, now()).unwrap();
    let leaf = X509::from_der(&leaf_der(&t)).unwrap();
    let spki = leaf.public_key().unwrap().public_key_to_der().unwrap();
    let digest = openssl::sha::sha256(&spki);
    let expected = openssl::base64::encode_block(&digest);
    assert_eq!(t.leaf_spki_sha256_b64, expected);
}

/// Writes `contents` over `file` in `dir`.
fn damage(dir: &Path, file: &str, contents: &[u8]) {
    fs::write(dir.join(file), contents).unwrap();
}

#[test]
fn damaged_leaf_files_are_replaced() {
    let dir = scratch("damaged-leaf");
    let first = tls::ensure(&dir, now()).unwrap();
    let other = scratch("damaged-leaf-other");
    let stranger = tls::ensure(&other, now()).unwrap();

    let cases: Vec<(&str, &str, Vec<u8>)> = vec![
        (
            "garbage leaf",
            tls::LEAF_FILE,
            b"not a certificate".to_vec(),
        ),
        ("empty leaf", tls::LEAF_FILE, Vec::new()),
        (
            "garbage key",
            tls::LEAF_KEY_FILE,
            b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n".to_vec(),
        ),
        (
            "another leaf's key",
            tls::LEAF_KEY_FILE,
            stranger.leaf_key_pem.as_bytes().to_vec(),
        ),
        (
            "a leaf of another CA",
            tls::LEAF_FILE,
            stranger.leaf_chain_pem.as_bytes().to_vec(),
        ),
        ("the leaf without the CA", tls::LEAF_FILE, {
            let pem = first.leaf_chain_pem.clone();
            let end = pem.find("-----END CERTIFICATE-----").unwrap() + 26;
            pem.as_bytes()[..end].to_vec()
        }),
    ];
    for (what, file, contents) in cases {
        damage(&dir, file, &contents);
        let t = tls::ensure(&dir, now()).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert!(t.created && !t.ca_created, "{what}");
        assert_eq!(t.ca_pem, first.ca_pem, "{what}: the CA stays");
        openssl_verify(&t.ca_pem, &leaf_der(&t), Some("localhost"), None)
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        // And it holds: the next call reuses it.
        assert!(!tls::ensure(&dir, now()).unwrap().created, "{what}");
    }

    // A missing key or leaf file.
    for file in [tls::LEAF_FILE, tls::LEAF_KEY_FILE] {
        fs::remove_file(dir.join(file)).unwrap();
        let t = tls::ensure(&dir, now()).unwrap();
        assert!(t.created && !t.ca_created, "{file} missing");
    }
}

#[test]
fn a_leaf_with_other_names_is_replaced() {
    let dir = scratch("wrong-sans");
    let first = tls::ensure(&dir, now()).unwrap();
    let ca_key =
        rcgen::KeyPair::from_pem(&fs::read_to_string(dir.join(tls::CA_KEY_FILE)).unwrap()).unwrap();
    let issuer = rcgen::Issuer::from_ca_cert_pem(&first.ca_pem, ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    // Only localhost: the IP addresses are missing.
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
    params.not_before = now() - Duration::hours(1);
    params.not_after = now() + Duration::days(200);
    let cert = params.signed_by(&key, &issuer).unwrap();
    damage(
        &dir,
        tls::LEAF_FILE,
        format!("{}{}", cert.pem(), first.ca_pem).as_bytes(),
    );
    damage(&dir, tls::LEAF_KEY_FILE, key.serialize_pem().as_bytes());

    let t = tls::ensure(&dir, now()).unwrap();
    assert!(t.created, "a leaf without the IP SANs is renewed");
    assert!(
        t.reason.as_deref().unwrap().contains("names"),
        "{:?}",
        t.reason
    );
}

#[test]
fn a_damaged_ca_is_an_error_and_is_left_alone() {
    let dir = scratch("damaged-ca");
    tls::ensure(&dir, now()).unwrap();
    damage(
        &dir,
        tls::CA_FILE,
        b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    );
    let err = tls::ensure(&dir, now()).unwrap_err();
    assert!(matches!(err, TlsError::CaUnusable { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("eid-agent install"), "{message}");
    assert!(message.contains(&dir.display().to_string()), "{message}");
    assert_eq!(err.code(), "tls-ca-unusable");
    assert_eq!(
        fs::read(dir.join(tls::CA_FILE)).unwrap(),
        b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        "the CA file is not replaced"
    );
}

#[test]
fn an_expired_ca_is_an_error_not_a_silent_replacement() {
    let dir = scratch("expired-ca");
    let first = tls::ensure(&dir, now()).unwrap();
    let err = tls::ensure(&dir, now() + Duration::days(3700)).unwrap_err();
    assert!(matches!(err, TlsError::CaUnusable { .. }), "{err:?}");
    assert!(err.to_string().contains("expired"), "{err}");
    assert_eq!(
        fs::read_to_string(dir.join(tls::CA_FILE)).unwrap(),
        first.ca_pem
    );
}

#[test]
fn without_the_ca_key_the_leaf_is_used_until_it_is_due() {
    let dir = scratch("no-ca-key");
    let first = tls::ensure(&dir, now()).unwrap();
    fs::remove_file(dir.join(tls::CA_KEY_FILE)).unwrap();

    // Still valid: reused.
    let t = tls::ensure(&dir, now()).unwrap();
    assert!(!t.created);
    assert_eq!(t.leaf_chain_pem, first.leaf_chain_pem);

    // Due for renewal: a clear error, nothing replaced.
    let err = tls::ensure(&dir, now() + Duration::days(380)).unwrap_err();
    assert!(matches!(err, TlsError::CaKeyUnavailable { .. }), "{err:?}");
    assert!(err.to_string().contains("eid-agent install"), "{err}");
    assert_eq!(
        fs::read_to_string(dir.join(tls::CA_FILE)).unwrap(),
        first.ca_pem
    );

    // A CA key that is someone else's is no better.
    let other = scratch("no-ca-key-other");
    tls::ensure(&other, now()).unwrap();
    fs::copy(other.join(tls::CA_KEY_FILE), dir.join(tls::CA_KEY_FILE)).unwrap();
    let err = tls::ensure(&dir, now() + Duration::days(380)).unwrap_err();
    assert!(err.to_string().contains("not the CA's key"), "{err}");

    // The installer's way out: a new CA and leaf.
    let fresh = tls::regenerate(&dir, now() + Duration::days(380)).unwrap();
    assert!(fresh.created && fresh.ca_created);
    assert_ne!(fresh.ca_pem, first.ca_pem);
    assert!(
        !tls::ensure(&dir, now() + Duration::days(380))
            .unwrap()
            .created
    );
}

#[test]
fn a_missing_ca_makes_a_new_ca_and_leaf() {
    let dir = scratch("missing-ca");
    let first = tls::ensure(&dir, now()).unwrap();
    fs::remove_file(dir.join(tls::CA_FILE)).unwrap();
    let t = tls::ensure(&dir, now()).unwrap();
    assert!(t.created && t.ca_created);
    assert_ne!(t.ca_pem, first.ca_pem);
    openssl_verify(&t.ca_pem, &leaf_der(&t), Some("localhost"), None).unwrap();
}

#[test]
fn atomic_write_replaces_content_and_sets_the_mode() {
    let dir = scratch("atomic");
    fs::create_dir_all(&dir).unwrap();
    let path = dir.join("f");
    tls::write_file_atomic(&path, b"one", 0o600).unwrap();
    tls::write_file_atomic(&path, b"two", 0o640).unwrap();
    assert_eq!(fs::read(&path).unwrap(), b"two");
    assert_eq!(mode(&path), 0o640);
    assert_eq!(fs::read_dir(&dir).unwrap().count(), 1);
}

#[test]
fn concurrent_first_calls_agree_on_one_ca() {
    let dir = scratch("race");
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let dir = dir.clone();
            std::thread::spawn(move || tls::ensure(&dir, now()).unwrap())
        })
        .collect();
    let results: Vec<LocalTls> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(results.iter().filter(|t| t.ca_created).count(), 1);
    for t in &results {
        assert_eq!(t.ca_pem, results[0].ca_pem);
        assert_eq!(t.leaf_chain_pem, results[0].leaf_chain_pem);
    }
}
