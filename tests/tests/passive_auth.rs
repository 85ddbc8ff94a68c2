//! Passive Authentication across implementations: SODs and master lists signed by the mocks'
//! independent CMS builder (`hardware_mocks::pki::cms_sign`) verified by `eid_protocols::pa`,
//! with brainpool and NIST CSCAs, RSA and ECDSA Document Signers, and the mocks' fault options.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use eid_hardware_mocks::der;
use eid_hardware_mocks::pki::{
    self, CertProfile, CertSpec, CmsOptions, Credential, Curve, KeySpec, OID_CSCA_MASTER_LIST,
    OID_LDS_SECURITY_OBJECT, cms_sign, cms_sign_with,
};
use eid_protocols::pa::{Added, Check, CscaStore, HashAlgorithm, PaError, Sod};
use openssl::hash::MessageDigest;
use time::OffsetDateTime;

fn make_csca(slot: u32, curve: Curve) -> Credential {
    pki::self_signed_ca(
        &[("C", "UT"), ("O", "Utopia"), ("CN", "CSCA Utopia")],
        pki::cached_key(KeySpec::Ec(curve), slot).unwrap(),
        3650,
    )
    .unwrap()
}

fn ds(csca: &Credential, key: KeySpec, slot: u32) -> Credential {
    csca.issue(
        &CertSpec::new(
            &[("C", "UT"), ("CN", "Document Signer")],
            CertProfile::DigitalSignature,
            365,
        ),
        pki::cached_key(key, slot).unwrap(),
    )
    .unwrap()
}

fn data_groups() -> Vec<(u8, Vec<u8>)> {
    let mrz =
        b"P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<L898902C36UTO7408122F1204159ZE184226B<<<<<10";
    vec![
        (1, der::tlv(&[0x61], &der::tlv(&[0x5F, 0x1F], mrz))),
        (15, der::tlv(&[0x6F], &[0x30, 0x00])),
    ]
}

fn lds_security_object(digest: HashAlgorithm, dgs: &[(u8, Vec<u8>)]) -> Vec<u8> {
    let hashes: Vec<(u8, Vec<u8>)> = dgs.iter().map(|(n, f)| (*n, digest.digest(f))).collect();
    let algorithm = der::sequence(&[der::oid_dotted(digest.oid()).unwrap(), der::null()]);
    eid_hardware_mocks::emrtd::lds::lds_security_object(
        eid_hardware_mocks::emrtd::lds::LdsSoVersion::V0,
        &algorithm,
        &hashes,
    )
}

fn ef_sod(
    signer: &Credential,
    md: MessageDigest,
    digest: HashAlgorithm,
    o: &CmsOptions,
) -> Vec<u8> {
    let lso = lds_security_object(digest, &data_groups());
    let cms = cms_sign_with(
        OID_LDS_SECURITY_OBJECT,
        &lso,
        &signer.cert,
        &signer.key,
        md,
        o,
    )
    .unwrap();
    der::tlv(&[0x77], &cms)
}

fn refs(dgs: &[(u8, Vec<u8>)]) -> Vec<(u8, &[u8])> {
    dgs.iter().map(|(n, f)| (*n, f.as_slice())).collect()
}

fn store(csca: &Credential) -> CscaStore {
    let mut s = CscaStore::new();
    s.add_certificates(&csca.cert_pem().unwrap()).unwrap();
    s
}

#[test]
fn mock_signed_sods_pass_for_rsa_and_ecdsa_signers() {
    let cases = [
        (
            Curve::BrainpoolP256r1,
            KeySpec::Ec(Curve::BrainpoolP256r1),
            MessageDigest::sha256(),
            HashAlgorithm::Sha256,
        ),
        (
            Curve::P384,
            KeySpec::Ec(Curve::P384),
            MessageDigest::sha384(),
            HashAlgorithm::Sha384,
        ),
        (
            Curve::P256,
            KeySpec::Rsa(2048),
            MessageDigest::sha256(),
            HashAlgorithm::Sha256,
        ),
        (
            Curve::P256,
            KeySpec::Rsa(2048),
            MessageDigest::sha1(),
            HashAlgorithm::Sha1,
        ),
    ];
    let dgs = data_groups();
    for (i, (curve, ds_key, md, digest)) in cases.into_iter().enumerate() {
        let slot = 100 + 2 * i as u32;
        let csca = make_csca(slot, curve);
        let ds = ds(&csca, ds_key, slot + 1);
        let sod = Sod::parse(&ef_sod(&ds, md, digest, &CmsOptions::default())).unwrap();
        assert_eq!(sod.digest_algorithm(), digest);
        let report = sod.verify(Some(&store(&csca)), OffsetDateTime::now_utc(), &refs(&dgs));
        assert!(report.is_valid(), "case {i}: {report:#?}");
        assert_eq!(report.data_group(15), Some(&Check::Passed));
    }
}

#[test]
fn mock_fault_options_are_detected() {
    let csca = make_csca(110, Curve::P256);
    let ds = ds(&csca, KeySpec::Ec(Curve::P256), 111);
    let dgs = data_groups();
    let now = OffsetDateTime::now_utc();
    let verify = |o: &CmsOptions| {
        let sod = Sod::parse(&ef_sod(
            &ds,
            MessageDigest::sha256(),
            HashAlgorithm::Sha256,
            o,
        ))
        .unwrap();
        sod.verify(Some(&store(&csca)), now, &refs(&dgs))
    };
    let corrupt = verify(&CmsOptions {
        corrupt_signature: true,
        ..CmsOptions::default()
    });
    assert!(corrupt.signature.is_failed(), "{corrupt:?}");
    assert!(!corrupt.is_valid());
    let digest = verify(&CmsOptions {
        message_digest_override: Some(vec![0u8; 32]),
        ..CmsOptions::default()
    });
    match &digest.signature {
        Check::Failed { reason } => assert!(reason.contains("message-digest"), "{reason}"),
        other => panic!("{other:?}"),
    }
    let no_cert = verify(&CmsOptions {
        omit_signer_cert: true,
        ..CmsOptions::default()
    });
    assert!(no_cert.signature.is_failed());
    assert!(matches!(
        no_cert.certificate_chain,
        Check::NotPerformed { .. }
    ));
    // A DS from another CSCA does not chain.
    let other = make_csca(112, Curve::P256);
    let sod = Sod::parse(&ef_sod(
        &ds,
        MessageDigest::sha256(),
        HashAlgorithm::Sha256,
        &CmsOptions::default(),
    ))
    .unwrap();
    assert!(
        sod.verify(Some(&store(&other)), now, &refs(&dgs))
            .certificate_chain
            .is_failed()
    );
}

#[test]
fn mock_signed_master_list_feeds_the_trust_store() {
    let csca = make_csca(120, Curve::BrainpoolP256r1);
    let signer = csca
        .issue(
            &CertSpec::new(
                &[("C", "UT"), ("CN", "Master List Signer")],
                CertProfile::DigitalSignature,
                365,
            ),
            pki::cached_key(KeySpec::Ec(Curve::P256), 121).unwrap(),
        )
        .unwrap();
    let list = der::sequence(&[der::integer(0), der::set_of(&[csca.cert_der().unwrap()])]);
    let ml = cms_sign(
        OID_CSCA_MASTER_LIST,
        &list,
        &signer.cert,
        &signer.key,
        MessageDigest::sha256(),
    )
    .unwrap();
    let now = OffsetDateTime::now_utc();
    let mut trust = CscaStore::new();
    assert_eq!(
        trust.add_file(&ml, now).unwrap(),
        Added::MasterList {
            certificates: 1,
            skipped: 0
        }
    );
    let ds = ds(&csca, KeySpec::Ec(Curve::BrainpoolP256r1), 122);
    let sod = Sod::parse(&ef_sod(
        &ds,
        MessageDigest::sha256(),
        HashAlgorithm::Sha256,
        &CmsOptions::default(),
    ))
    .unwrap();
    assert!(
        sod.verify(Some(&trust), now, &refs(&data_groups()))
            .is_valid()
    );

    let forged = cms_sign_with(
        OID_CSCA_MASTER_LIST,
        &list,
        &signer.cert,
        &signer.key,
        MessageDigest::sha256(),
        &CmsOptions {
            corrupt_signature: true,
            ..CmsOptions::default()
        },
    )
    .unwrap();
    assert!(matches!(
        CscaStore::new().add_master_list(&forged, now),
        Err(PaError::MasterListSignature(_))
    ));
}
