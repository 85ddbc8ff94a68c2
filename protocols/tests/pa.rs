//! Passive Authentication (ICAO 9303-11 §5.1) against SODs built here with a test CSCA -> DS
//! chain: every check passes for a genuine SOD and each kind of tampering fails the right check.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use common::*;
use eid_protocols::pa::{Added, Check, CscaStore, HashAlgorithm, PaError, SignedData, Sod};
use proptest::prelude::*;
use time::OffsetDateTime;

fn files() -> Vec<(u8, Vec<u8>)> {
    vec![
        (1, dg1()),
        (2, tlv(0x75, &[0x7F, 0x61, 0x03, 0x02, 0x01, 0x00])),
        (14, tlv(0x6E, &set(&[]))),
    ]
}

fn refs(f: &[(u8, Vec<u8>)]) -> Vec<(u8, &[u8])> {
    f.iter().map(|(n, v)| (*n, v.as_slice())).collect()
}

fn store_of(pki: &Pki) -> CscaStore {
    let mut s = CscaStore::new();
    s.add_certificates(&pki.csca.to_pem().unwrap()).unwrap();
    s
}

fn nowt() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

fn assert_failed(c: &Check, needle: &str) {
    match c {
        Check::Failed { reason } => assert!(reason.contains(needle), "reason {reason:?}"),
        other => panic!("expected failure containing {needle:?}, got {other:?}"),
    }
}

#[test]
fn genuine_ecdsa_sod_passes_every_check() {
    let pki = Pki::new(ec_key());
    let f = files();
    let sod_bytes = sod_file(&pki, &refs(&f), &Options::default());
    let sod = Sod::parse(&sod_bytes).unwrap();
    assert_eq!(sod.content_type().dotted(), "2.23.136.1.1.1");
    assert_eq!(sod.digest_algorithm(), HashAlgorithm::Sha256);
    assert_eq!(sod.lds_security_object.version, 0);
    assert_eq!(sod.lds_security_object.hashes.len(), 3);
    assert_eq!(
        sod.hash_for(1).unwrap(),
        HashAlgorithm::Sha256.digest(&f[0].1).as_slice()
    );
    assert_eq!(
        sod.signer_certificate_der().unwrap(),
        pki.ds.to_der().unwrap()
    );
    assert!(!sod.signed_data.normalised_from_ber);
    assert_eq!(sod.verify_signature(), Check::Passed);

    let report = sod.verify(Some(&store_of(&pki)), nowt(), &refs(&f));
    assert_eq!(report.signature, Check::Passed);
    assert_eq!(report.certificate_chain, Check::Passed);
    assert!(matches!(report.revocation, Check::NotPerformed { .. }));
    for n in [1, 2, 14] {
        assert_eq!(report.data_group(n), Some(&Check::Passed), "DG{n}");
    }
    assert!(report.is_valid());
    assert!(report.signer.as_ref().unwrap().subject.contains("DS UTO"));
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["signature"]["result"], "passed");
    assert_eq!(json["certificate-chain"]["result"], "passed");
    assert_eq!(json["revocation"]["result"], "not-performed");
    assert_eq!(json["data-groups"][0]["data-group"], 1);
    assert_eq!(json["data-groups"][0]["result"], "passed");
}

#[test]
fn every_signature_scheme_and_digest_verifies() {
    let cases = [
        (Sig::EcdsaSha256, HashAlgorithm::Sha256, false),
        (Sig::EcdsaPlainSha256, HashAlgorithm::Sha256, false),
        (Sig::EcdsaSha256, HashAlgorithm::Sha1, false),
        (Sig::EcdsaSha256, HashAlgorithm::Sha512, false),
        (Sig::RsaSha256, HashAlgorithm::Sha256, true),
        (Sig::RsaEncryption, HashAlgorithm::Sha384, true),
        (Sig::RsaEncryption, HashAlgorithm::Sha224, true),
        (Sig::RsaPss, HashAlgorithm::Sha256, true),
    ];
    let rsa = Pki::new(rsa_key());
    let ec = Pki::new(ec_key());
    let f = files();
    for (sig, digest, use_rsa) in cases {
        let pki = if use_rsa { &rsa } else { &ec };
        let o = Options {
            sig,
            digest,
            ..Options::default()
        };
        let sod = Sod::parse(&sod_file(pki, &refs(&f), &o)).unwrap();
        assert_eq!(sod.digest_algorithm(), digest);
        let report = sod.verify(Some(&store_of(pki)), nowt(), &refs(&f));
        assert!(report.is_valid(), "{digest:?}: {report:?}");
    }
}

#[test]
fn wrong_data_group_hash_fails_that_group_only() {
    let pki = Pki::new(ec_key());
    let f = files();
    let sod = Sod::parse(&sod_file(&pki, &refs(&f), &Options::default())).unwrap();
    let mut read = f.clone();
    let last = read[0].1.len() - 1;
    read[0].1[last] ^= 0x01; // one MRZ character changed
    let report = sod.verify(Some(&store_of(&pki)), nowt(), &refs(&read));
    assert_failed(report.data_group(1).unwrap(), "differs");
    assert_eq!(report.data_group(2), Some(&Check::Passed));
    assert_eq!(report.signature, Check::Passed);
    assert!(!report.is_valid());
}

#[test]
fn unread_and_unlisted_groups_are_reported_honestly() {
    let pki = Pki::new(ec_key());
    let f = files();
    let sod = Sod::parse(&sod_file(&pki, &refs(&f[..2]), &Options::default())).unwrap();
    let dg11 = tlv(0x6B, &[]);
    let report = sod.verify(Some(&store_of(&pki)), nowt(), &[(1, &f[0].1), (11, &dg11)]);
    assert_eq!(report.data_group(1), Some(&Check::Passed));
    assert!(matches!(
        report.data_group(2),
        Some(Check::NotPerformed { .. })
    ));
    assert_failed(report.data_group(11).unwrap(), "not listed");
    assert!(!report.is_valid());
}

#[test]
fn tampered_signature_fails_signature_check() {
    let pki = Pki::new(ec_key());
    let f = files();
    let mut sod = Sod::parse(&sod_file(&pki, &refs(&f), &Options::default())).unwrap();
    let sig = &mut sod.signed_data.signer_infos[0].signature;
    let mid = sig.len() / 2;
    sig[mid] ^= 0x55;
    assert_failed(&sod.verify_signature(), "does not verify");
    let report = sod.verify(Some(&store_of(&pki)), nowt(), &refs(&f));
    assert!(report.signature.is_failed());
    assert!(!report.is_valid());
}

#[test]
fn tampered_hash_list_breaks_the_message_digest() {
    let pki = Pki::new(ec_key());
    let f = files();
    let bytes = sod_file(&pki, &refs(&f), &Options::default());
    // Change one byte of the DG1 hash inside the encapsulated LDSSecurityObject.
    let h = HashAlgorithm::Sha256.digest(&f[0].1);
    let pos = bytes
        .windows(h.len())
        .position(|w| w == h.as_slice())
        .unwrap();
    let mut tampered = bytes.clone();
    tampered[pos] ^= 0x01;
    let sod = Sod::parse(&tampered).unwrap();
    assert_failed(&sod.verify_signature(), "message-digest");
}

#[test]
fn content_type_attribute_must_match_econtent_type() {
    let pki = Pki::new(ec_key());
    let f = files();
    let o = Options {
        attr_content_type: Some("1.2.840.113549.1.7.1"),
        ..Options::default()
    };
    let sod = Sod::parse(&sod_file(&pki, &refs(&f), &o)).unwrap();
    assert_failed(&sod.verify_signature(), "content-type");
}

#[test]
fn wrong_econtent_type_is_not_a_sod() {
    let pki = Pki::new(ec_key());
    let lso = lds_security_object(HashAlgorithm::Sha256, &[(1, &dg1())]);
    let ci = signed_data(
        "1.2.840.113549.1.7.1",
        &lso,
        &pki.ds,
        &pki.ds_key,
        &[&pki.ds],
        &Options::default(),
    );
    assert!(matches!(
        Sod::parse(&tlv(0x77, &ci)),
        Err(PaError::ContentType { .. })
    ));
    // The generic SignedData parser still reads it.
    assert_eq!(
        SignedData::parse(&ci).unwrap().content_type.dotted(),
        "1.2.840.113549.1.7.1"
    );
}

#[test]
fn missing_signer_certificate_is_reported() {
    let pki = Pki::new(ec_key());
    let f = files();
    let o = Options {
        include_cert: false,
        ..Options::default()
    };
    let sod = Sod::parse(&sod_file(&pki, &refs(&f), &o)).unwrap();
    assert!(sod.signer_certificate_der().is_none());
    let report = sod.verify(Some(&store_of(&pki)), nowt(), &refs(&f));
    assert_failed(&report.signature, "certificate");
    assert!(matches!(
        report.certificate_chain,
        Check::NotPerformed { .. }
    ));
    // With the DS certificate from elsewhere the signature verifies.
    assert!(sod.signed_data.verify_signature_with(&pki.ds).is_ok());
}

#[test]
fn untrusted_csca_fails_the_chain() {
    let pki = Pki::new(ec_key());
    let other = Pki::new(ec_key());
    let f = files();
    let sod = Sod::parse(&sod_file(&pki, &refs(&f), &Options::default())).unwrap();
    let report = sod.verify(Some(&store_of(&other)), nowt(), &refs(&f));
    assert_eq!(report.signature, Check::Passed);
    assert_failed(&report.certificate_chain, "not trusted");
    assert!(!report.is_valid());
    // No store at all: not performed, and the report is not valid.
    let report = sod.verify(None, nowt(), &refs(&f));
    assert!(matches!(
        report.certificate_chain,
        Check::NotPerformed { .. }
    ));
    assert!(!report.is_valid());
    // An empty store is not a pass either.
    let report = sod.verify(Some(&CscaStore::new()), nowt(), &refs(&f));
    assert!(matches!(
        report.certificate_chain,
        Check::NotPerformed { .. }
    ));
}

#[test]
fn ds_whose_key_usage_forbids_signatures_fails_the_chain() {
    // A certificate of the CSCA whose keyUsage is keyCertSign/cRLSign only (a CA, not a
    // Document Signer) signs a SOD: the signature is good, but the chain step must refuse it.
    let good = Pki::new(ec_key());
    let t = now();
    let key = ec_key();
    let ca_like = certificate(
        "Not a DS",
        &key,
        Some((&good.csca, &good.csca_key)),
        t - DAY,
        t + 30 * DAY,
        true,
    );
    let pki = Pki {
        csca_key: good.csca_key.clone(),
        csca: good.csca.clone(),
        ds_key: key,
        ds: ca_like,
    };
    let f = files();
    let sod = Sod::parse(&sod_file(&pki, &refs(&f), &Options::default())).unwrap();
    let report = sod.verify(Some(&store_of(&pki)), nowt(), &refs(&f));
    assert_eq!(report.signature, Check::Passed);
    assert_failed(&report.certificate_chain, "digitalSignature");
    assert!(!report.is_valid());
    // The genuine DS of the same CSCA still passes.
    let sod = Sod::parse(&sod_file(&good, &refs(&f), &Options::default())).unwrap();
    let report = sod.verify(Some(&store_of(&good)), nowt(), &refs(&f));
    assert_eq!(report.certificate_chain, Check::Passed);
}

#[test]
fn expired_ds_fails_the_chain_at_now_but_passes_in_its_validity() {
    let t = now();
    let pki = Pki::with_validity(ec_key(), t - 60 * DAY, t - 30 * DAY);
    let f = files();
    let sod = Sod::parse(&sod_file(&pki, &refs(&f), &Options::default())).unwrap();
    let report = sod.verify(Some(&store_of(&pki)), nowt(), &refs(&f));
    assert_failed(&report.certificate_chain, "expired");
    let then = OffsetDateTime::from_unix_timestamp(t - 45 * DAY).unwrap();
    let report = sod.verify(Some(&store_of(&pki)), then, &refs(&f));
    assert_eq!(report.certificate_chain, Check::Passed);
}

#[test]
fn revoked_ds_fails_revocation_via_crl() {
    let pki = Pki::new(ec_key());
    let f = files();
    let sod = Sod::parse(&sod_file(&pki, &refs(&f), &Options::default())).unwrap();

    let mut store = store_of(&pki);
    let revoking = crl(&pki.csca, &pki.csca_key, &[&pki.ds], now() + 30 * DAY);
    assert_eq!(store.add_file(&revoking, nowt()).unwrap(), Added::Crl);
    let report = sod.verify(Some(&store), nowt(), &refs(&f));
    assert_failed(&report.revocation, "revoked");
    assert!(!report.is_valid());

    // A current CRL that does not list the DS: passed.
    let mut store = store_of(&pki);
    store
        .add_crl(&crl(&pki.csca, &pki.csca_key, &[], now() + 30 * DAY))
        .unwrap();
    let report = sod.verify(Some(&store), nowt(), &refs(&f));
    assert_eq!(report.revocation, Check::Passed);
    assert!(report.is_valid());

    // A CRL signed by someone else is ignored, not trusted.
    let mut store = store_of(&pki);
    let forger = ec_key();
    store
        .add_crl(&crl(&pki.csca, &forger, &[&pki.ds], now() + 30 * DAY))
        .unwrap();
    let report = sod.verify(Some(&store), nowt(), &refs(&f));
    assert!(matches!(report.revocation, Check::NotPerformed { .. }));

    // An out-of-date CRL cannot vouch for the DS.
    let mut store = store_of(&pki);
    store
        .add_crl(&crl(&pki.csca, &pki.csca_key, &[], now() - 3600))
        .unwrap();
    let report = sod.verify(Some(&store), nowt(), &refs(&f));
    assert!(matches!(report.revocation, Check::NotPerformed { .. }));
}

#[test]
fn ber_encoded_sod_is_accepted() {
    let pki = Pki::new(ec_key());
    let f = files();
    let o = Options {
        ber: true,
        ..Options::default()
    };
    let bytes = sod_file(&pki, &refs(&f), &o);
    assert_eq!(&bytes[..2], &[0x77, 0x82]);
    assert_eq!(&bytes[4..6], &[0x30, 0x80], "the test SOD really is BER");
    let sod = Sod::parse(&bytes).unwrap();
    assert!(sod.signed_data.normalised_from_ber);
    let report = sod.verify(Some(&store_of(&pki)), nowt(), &refs(&f));
    assert!(report.is_valid(), "{report:?}");
}

#[test]
fn zero_padded_sod_file_like_cc1_is_accepted() {
    let pki = Pki::new(ec_key());
    let f = files();
    let mut bytes = sod_file(&pki, &refs(&f), &Options::default());
    bytes.extend([0u8; 700]);
    let sod = Sod::parse(&bytes).unwrap();
    assert_eq!(sod.verify_signature(), Check::Passed);
}

#[test]
fn cc1_style_precomputed_hashes() {
    let pki = Pki::new(rsa_key());
    let id_fields = b"REPUBLICA PORTUGUESAPRTCARTAO DE CIDADAO";
    let o = Options {
        sig: Sig::RsaSha256,
        ..Options::default()
    };
    let sod = Sod::parse(&sod_file(&pki, &[(1, id_fields)], &o)).unwrap();
    assert_eq!(sod.verify_signature(), Check::Passed);
    let computed = HashAlgorithm::Sha256.digest(id_fields);
    assert_eq!(sod.check_hash(1, &computed), Check::Passed);
    assert_failed(&sod.check_hash(1, &[0u8; 32]), "differs");
    assert_failed(&sod.check_hash(3, &computed), "not listed");
}

#[test]
fn master_list_adds_cscas_after_verifying_its_signature() {
    let pki = Pki::new(ec_key());
    let t = now();
    let ml_key = ec_key();
    let ml_signer = certificate(
        "ML signer",
        &ml_key,
        Some((&pki.csca, &pki.csca_key)),
        t - DAY,
        t + 100 * DAY,
        false,
    );
    let other = Pki::new(ec_key());
    let csca_ders = [pki.csca.to_der().unwrap(), other.csca.to_der().unwrap()];
    let list = seq(&[&int(0), &set(&[&csca_ders[0], &csca_ders[1]])]);
    let ml = signed_data(
        "2.23.136.1.1.2",
        &list,
        &ml_signer,
        &ml_key,
        &[&ml_signer],
        &Options::default(),
    );
    let mut store = CscaStore::new();
    assert_eq!(
        store.add_file(&ml, nowt()).unwrap(),
        Added::MasterList {
            certificates: 2,
            skipped: 0
        }
    );
    assert_eq!(store.len(), 2);
    let f = files();
    let sod = Sod::parse(&sod_file(&pki, &refs(&f), &Options::default())).unwrap();
    assert!(sod.verify(Some(&store), nowt(), &refs(&f)).is_valid());

    // A list signed by a signer no CSCA in it certified is refused.
    let rogue_key = ec_key();
    let rogue = certificate("rogue", &rogue_key, None, t - DAY, t + DAY, false);
    let ml = signed_data(
        "2.23.136.1.1.2",
        &list,
        &rogue,
        &rogue_key,
        &[&rogue],
        &Options::default(),
    );
    let mut store = CscaStore::new();
    assert!(matches!(
        store.add_master_list(&ml, nowt()),
        Err(PaError::MasterListUntrusted(_))
    ));
    assert!(store.is_empty());

    // A tampered list (signature no longer matches) is refused.
    let mut ml = signed_data(
        "2.23.136.1.1.2",
        &list,
        &ml_signer,
        &ml_key,
        &[&ml_signer],
        &Options::default(),
    );
    let pos = ml
        .windows(8)
        .position(|w| w == &csca_ders[1][20..28])
        .unwrap();
    ml[pos] ^= 1;
    assert!(matches!(
        CscaStore::new().add_master_list(&ml, nowt()),
        Err(PaError::MasterListSignature(_))
    ));
}

#[test]
fn trust_files_are_recognised() {
    let pki = Pki::new(ec_key());
    let mut store = CscaStore::new();
    assert_eq!(
        store.add_file(&pki.csca.to_der().unwrap(), nowt()).unwrap(),
        Added::Certificates(1)
    );
    let mut pem = pki.csca.to_pem().unwrap();
    pem.extend(pki.ds.to_pem().unwrap());
    assert_eq!(
        store.add_file(&pem, nowt()).unwrap(),
        Added::Certificates(2)
    );
    assert!(matches!(
        store.add_file(b"hello", nowt()),
        Err(PaError::UnknownFile)
    ));
}

#[test]
fn garbage_is_an_error() {
    assert!(Sod::parse(&[]).is_err());
    assert!(Sod::parse(&[0x77, 0x00]).is_err());
    assert!(matches!(
        Sod::parse(&[0x61, 0x00]),
        Err(PaError::NotSod(0x61))
    ));
    assert!(Sod::parse(&[0x77, 0x82, 0xFF, 0xFF, 0x30]).is_err());
    assert!(SignedData::parse(&[0x30, 0x80, 0x30, 0x80]).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = Sod::parse(&bytes);
        let _ = SignedData::parse(&bytes);
        let mut store = CscaStore::new();
        let _ = store.add_file(&bytes, OffsetDateTime::now_utc());
    }

    #[test]
    fn mutated_sods_never_panic(flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
                                cut in any::<prop::sample::Index>()) {
        thread_local! {
            static SOD: (Vec<u8>, Vec<u8>) = {
                let pki = Pki::new(ec_key());
                let f = files();
                (sod_file(&pki, &refs(&f), &Options::default()),
                 sod_file(&pki, &refs(&f), &Options { ber: true, ..Options::default() }))
            };
        }
        SOD.with(|(der, ber)| {
            for base in [der, ber] {
                let mut b = base.clone();
                for (i, v) in &flips {
                    let i = i.index(b.len());
                    b[i] ^= *v;
                }
                if let Ok(sod) = Sod::parse(&b) {
                    let _ = sod.verify(None, OffsetDateTime::now_utc(), &[(1, &b)]);
                }
                b.truncate(cut.index(b.len()));
                let _ = Sod::parse(&b);
            }
        });
    }
}
