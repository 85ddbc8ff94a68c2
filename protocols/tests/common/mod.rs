//! Test PKI and CMS builders: a CSCA -> DS chain generated with OpenSSL, LDSSecurityObjects and
//! SignedData encoded by hand (OpenSSL's CMS API cannot set a custom eContentType).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    dead_code,
    unreachable_pub
)]

use eid_protocols::lds::Oid;
use eid_protocols::pa::HashAlgorithm;
use openssl::asn1::Asn1Time;
use openssl::bn::BigNum;
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::rsa::{Padding, Rsa};
use openssl::sign::{RsaPssSaltlen, Signer};
use openssl::x509::extension::{BasicConstraints, KeyUsage, SubjectKeyIdentifier};
use openssl::x509::{X509, X509NameBuilder};

pub const DAY: i64 = 86_400;

pub fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

// ---- DER ----
pub fn tlv(tag: u8, value: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = value.len();
    if len < 0x80 {
        out.push(len as u8);
    } else if len < 0x100 {
        out.extend([0x81, len as u8]);
    } else if len < 0x10000 {
        out.extend([0x82, (len >> 8) as u8, len as u8]);
    } else {
        out.extend([0x83, (len >> 16) as u8, (len >> 8) as u8, len as u8]);
    }
    out.extend_from_slice(value);
    out
}
pub fn cons(tag: u8, parts: &[&[u8]]) -> Vec<u8> {
    tlv(tag, &parts.concat())
}
/// BER indefinite-length constructed encoding.
pub fn cons_indefinite(tag: u8, parts: &[&[u8]]) -> Vec<u8> {
    let mut out = vec![tag, 0x80];
    out.extend(parts.concat());
    out.extend([0, 0]);
    out
}
pub fn seq(parts: &[&[u8]]) -> Vec<u8> {
    cons(0x30, parts)
}
pub fn set(parts: &[&[u8]]) -> Vec<u8> {
    cons(0x31, parts)
}
pub fn int(v: u64) -> Vec<u8> {
    int_bytes(&v.to_be_bytes())
}
pub fn int_bytes(v: &[u8]) -> Vec<u8> {
    let mut b: Vec<u8> = v.iter().copied().skip_while(|&x| x == 0).collect();
    if b.is_empty() || b[0] & 0x80 != 0 {
        b.insert(0, 0);
    }
    tlv(0x02, &b)
}
pub fn oid(dotted: &str) -> Vec<u8> {
    Oid::from_dotted(dotted).unwrap().to_der()
}
pub fn octets(v: &[u8]) -> Vec<u8> {
    tlv(0x04, v)
}
pub fn alg(dotted: &str) -> Vec<u8> {
    seq(&[&oid(dotted)])
}
pub fn alg_null(dotted: &str) -> Vec<u8> {
    seq(&[&oid(dotted), &[0x05, 0x00]])
}
pub fn utc_time(unix: i64) -> Vec<u8> {
    let t = time::OffsetDateTime::from_unix_timestamp(unix).unwrap();
    let s = format!(
        "{:02}{:02}{:02}{:02}{:02}{:02}Z",
        t.year() % 100,
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    tlv(0x17, s.as_bytes())
}

// ---- keys and certificates ----
pub fn ec_key() -> PKey<Private> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
    PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap()
}
pub fn rsa_key() -> PKey<Private> {
    PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap()
}

fn name(cn: &str) -> openssl::x509::X509Name {
    let mut b = X509NameBuilder::new().unwrap();
    b.append_entry_by_text("C", "UT").unwrap();
    b.append_entry_by_text("CN", cn).unwrap();
    b.build()
}

static SERIAL: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1000);

pub fn certificate(
    subject: &str,
    key: &PKey<Private>,
    issuer: Option<(&X509, &PKey<Private>)>,
    not_before: i64,
    not_after: i64,
    ca: bool,
) -> X509 {
    let mut b = X509::builder().unwrap();
    b.set_version(2).unwrap();
    let serial = SERIAL.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    b.set_serial_number(&BigNum::from_u32(serial).unwrap().to_asn1_integer().unwrap())
        .unwrap();
    let subject_name = name(subject);
    b.set_subject_name(&subject_name).unwrap();
    match issuer {
        Some((cert, _)) => b.set_issuer_name(cert.subject_name()).unwrap(),
        None => b.set_issuer_name(&subject_name).unwrap(),
    }
    b.set_pubkey(key).unwrap();
    b.set_not_before(&Asn1Time::from_unix(not_before).unwrap())
        .unwrap();
    b.set_not_after(&Asn1Time::from_unix(not_after).unwrap())
        .unwrap();
    if ca {
        b.append_extension(BasicConstraints::new().critical().ca().build().unwrap())
            .unwrap();
        b.append_extension(
            KeyUsage::new()
                .critical()
                .key_cert_sign()
                .crl_sign()
                .build()
                .unwrap(),
        )
        .unwrap();
    } else {
        b.append_extension(
            KeyUsage::new()
                .critical()
                .digital_signature()
                .build()
                .unwrap(),
        )
        .unwrap();
    }
    let ski = SubjectKeyIdentifier::new()
        .build(&b.x509v3_context(issuer.map(|(c, _)| c.as_ref()), None))
        .unwrap();
    b.append_extension(ski).unwrap();
    let signing_key = issuer.map(|(_, k)| k).unwrap_or(key);
    b.sign(signing_key, MessageDigest::sha256()).unwrap();
    b.build()
}

/// A CSCA and a DS it issued, valid from 10 days ago for a year.
pub struct Pki {
    pub csca_key: PKey<Private>,
    pub csca: X509,
    pub ds_key: PKey<Private>,
    pub ds: X509,
}

impl Pki {
    pub fn new(ds_key: PKey<Private>) -> Self {
        let t = now();
        Self::with_validity(ds_key, t - 10 * DAY, t + 365 * DAY)
    }
    pub fn with_validity(ds_key: PKey<Private>, ds_from: i64, ds_to: i64) -> Self {
        let t = now();
        let csca_key = ec_key();
        let csca = certificate(
            "CSCA UTO",
            &csca_key,
            None,
            t - 100 * DAY,
            t + 3650 * DAY,
            true,
        );
        let ds = certificate(
            "DS UTO",
            &ds_key,
            Some((&csca, &csca_key)),
            ds_from,
            ds_to,
            false,
        );
        Self {
            csca_key,
            csca,
            ds_key,
            ds,
        }
    }
}

// ---- CMS ----
#[derive(Clone, Copy)]
pub enum Sig {
    /// ecdsa-with-SHA256 (X9.62 DER signature).
    EcdsaSha256,
    /// BSI ecdsa-plain-SHA256 (r||s).
    EcdsaPlainSha256,
    /// sha256WithRSAEncryption.
    RsaSha256,
    /// rsaEncryption: hash from the digestAlgorithm.
    RsaEncryption,
    /// RSASSA-PSS, SHA-256, MGF1-SHA-256, salt 32.
    RsaPss,
}

pub struct Options {
    pub digest: HashAlgorithm,
    pub sig: Sig,
    pub ber: bool,
    /// contentType signed attribute, when it should differ from eContentType.
    pub attr_content_type: Option<&'static str>,
    pub include_cert: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            digest: HashAlgorithm::Sha256,
            sig: Sig::EcdsaSha256,
            ber: false,
            attr_content_type: None,
            include_cert: true,
        }
    }
}

fn sha_oid(h: HashAlgorithm) -> &'static str {
    h.oid()
}

pub fn sign_raw(key: &PKey<Private>, sig: Sig, digest: HashAlgorithm, data: &[u8]) -> Vec<u8> {
    let md = match sig {
        Sig::RsaEncryption => digest.message_digest(),
        _ => MessageDigest::sha256(),
    };
    let mut s = Signer::new(md, key).unwrap();
    if let Sig::RsaPss = sig {
        s.set_rsa_padding(Padding::PKCS1_PSS).unwrap();
        s.set_rsa_mgf1_md(MessageDigest::sha256()).unwrap();
        s.set_rsa_pss_saltlen(RsaPssSaltlen::custom(32)).unwrap();
    }
    let der_sig = s.sign_oneshot_to_vec(data).unwrap();
    if let Sig::EcdsaPlainSha256 = sig {
        let e = openssl::ecdsa::EcdsaSig::from_der(&der_sig).unwrap();
        let mut out = e.r().to_vec_padded(32).unwrap();
        out.extend(e.s().to_vec_padded(32).unwrap());
        return out;
    }
    der_sig
}

fn sig_alg(sig: Sig) -> Vec<u8> {
    match sig {
        Sig::EcdsaSha256 => alg("1.2.840.10045.4.3.2"),
        Sig::EcdsaPlainSha256 => alg("0.4.0.127.0.7.1.1.4.1.3"),
        Sig::RsaSha256 => alg_null("1.2.840.113549.1.1.11"),
        Sig::RsaEncryption => alg_null("1.2.840.113549.1.1.1"),
        Sig::RsaPss => {
            let sha256 = alg_null("2.16.840.1.101.3.4.2.1");
            let mgf = seq(&[&oid("1.2.840.113549.1.1.8"), &sha256]);
            let params = seq(&[
                &cons(0xA0, &[&sha256]),
                &cons(0xA1, &[&mgf]),
                &cons(0xA2, &[&int(32)]),
            ]);
            seq(&[&oid("1.2.840.113549.1.1.10"), &params])
        }
    }
}

/// A ContentInfo(SignedData) over `content`.
pub fn signed_data(
    content_type: &str,
    content: &[u8],
    signer: &X509,
    key: &PKey<Private>,
    certs: &[&X509],
    o: &Options,
) -> Vec<u8> {
    let digest = o.digest.digest(content);
    let attrs_content = [
        seq(&[
            &oid("1.2.840.113549.1.9.3"),
            &set(&[&oid(o.attr_content_type.unwrap_or(content_type))]),
        ]),
        seq(&[&oid("1.2.840.113549.1.9.4"), &set(&[&octets(&digest)])]),
    ]
    .concat();
    let signed = tlv(0x31, &attrs_content);
    let signature = sign_raw(key, o.sig, o.digest, &signed);
    let issuer = signer.issuer_name().to_der().unwrap();
    let serial = signer.serial_number().to_bn().unwrap().to_vec();
    let signer_info = seq(&[
        &int(1),
        &seq(&[&issuer, &int_bytes(&serial)]),
        &alg_null(sha_oid(o.digest)),
        &tlv(0xA0, &attrs_content),
        &sig_alg(o.sig),
        &octets(&signature),
    ]);
    let cert_ders: Vec<Vec<u8>> = certs.iter().map(|c| c.to_der().unwrap()).collect();
    let cert_refs: Vec<&[u8]> = cert_ders.iter().map(|c| c.as_slice()).collect();
    let certs_field = if o.include_cert && !certs.is_empty() {
        cons(0xA0, &cert_refs)
    } else {
        vec![]
    };
    let digest_algs = set(&[&alg_null(sha_oid(o.digest))]);
    if o.ber {
        // Indefinite lengths everywhere above the signed parts, and eContent as a constructed
        // OCTET STRING in two chunks.
        let (a, b) = content.split_at(content.len() / 2);
        let econtent = cons_indefinite(0x24, &[&octets(a), &octets(b)]);
        let encap = cons_indefinite(
            0x30,
            &[&oid(content_type), &cons_indefinite(0xA0, &[&econtent])],
        );
        let sd = cons_indefinite(
            0x30,
            &[
                &int(3),
                &digest_algs,
                &encap,
                &certs_field,
                &set(&[&signer_info]),
            ],
        );
        cons_indefinite(
            0x30,
            &[&oid("1.2.840.113549.1.7.2"), &cons_indefinite(0xA0, &[&sd])],
        )
    } else {
        let encap = seq(&[&oid(content_type), &cons(0xA0, &[&octets(content)])]);
        let sd = seq(&[
            &int(3),
            &digest_algs,
            &encap,
            &certs_field,
            &set(&[&signer_info]),
        ]);
        seq(&[&oid("1.2.840.113549.1.7.2"), &cons(0xA0, &[&sd])])
    }
}

/// LDSSecurityObject v0 over the given data group files.
pub fn lds_security_object(digest: HashAlgorithm, dgs: &[(u8, &[u8])]) -> Vec<u8> {
    let hashes: Vec<Vec<u8>> = dgs
        .iter()
        .map(|(n, f)| seq(&[&int(u64::from(*n)), &octets(&digest.digest(f))]))
        .collect();
    let refs: Vec<&[u8]> = hashes.iter().map(|h| h.as_slice()).collect();
    seq(&[&int(0), &alg_null(sha_oid(digest)), &seq(&refs)])
}

/// EF.SOD: `77 { ContentInfo }`.
pub fn sod_file(pki: &Pki, dgs: &[(u8, &[u8])], o: &Options) -> Vec<u8> {
    let lso = lds_security_object(o.digest, dgs);
    let ci = signed_data("2.23.136.1.1.1", &lso, &pki.ds, &pki.ds_key, &[&pki.ds], o);
    tlv(0x77, &ci)
}

/// A CRL of `issuer` revoking `serials`, valid from yesterday to `next_update`.
pub fn crl(issuer: &X509, key: &PKey<Private>, serials: &[&X509], next_update: i64) -> Vec<u8> {
    let t = now();
    let revoked: Vec<Vec<u8>> = serials
        .iter()
        .map(|c| {
            seq(&[
                &int_bytes(&c.serial_number().to_bn().unwrap().to_vec()),
                &utc_time(t - DAY),
            ])
        })
        .collect();
    let revoked_refs: Vec<&[u8]> = revoked.iter().map(|r| r.as_slice()).collect();
    let sig_alg = alg("1.2.840.10045.4.3.2");
    let mut parts: Vec<Vec<u8>> = vec![
        int(1),
        sig_alg.clone(),
        issuer.subject_name().to_der().unwrap(),
        utc_time(t - DAY),
        utc_time(next_update),
    ];
    if !revoked.is_empty() {
        parts.push(seq(&revoked_refs));
    }
    let part_refs: Vec<&[u8]> = parts.iter().map(|p| p.as_slice()).collect();
    let tbs = seq(&part_refs);
    let mut s = Signer::new(MessageDigest::sha256(), key).unwrap();
    let sig = s.sign_oneshot_to_vec(&tbs).unwrap();
    let mut bits = vec![0u8];
    bits.extend(sig);
    seq(&[&tbs, &sig_alg, &tlv(0x03, &bits)])
}

/// DG1 with the ICAO 9303-4 specimen MRZ.
pub fn dg1() -> Vec<u8> {
    let mrz =
        b"P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<L898902C36UTO7408122F1204159ZE184226B<<<<<10";
    tlv(0x61, &tlv_2(0x5F1F, mrz))
}

pub fn tlv_2(tag: u16, value: &[u8]) -> Vec<u8> {
    let mut out = tag.to_be_bytes().to_vec();
    out.extend(&tlv(0, value)[1..]);
    out
}
