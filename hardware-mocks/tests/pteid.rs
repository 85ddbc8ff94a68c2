//! Raw APDU tests of the virtual Citizen Cards (CC1, CC2), in process.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use eid_hardware_mocks::VirtualCard;
use eid_hardware_mocks::pteid::{self, PteidOptions, SodFault, cc1, cc2};
use openssl::cms::{CMSOptions, CmsContentInfo};
use openssl::hash::{MessageDigest, hash};
use openssl::stack::Stack;
use openssl::x509::X509;
use openssl::x509::store::X509StoreBuilder;

fn tx(card: &mut VirtualCard, apdu: &str) -> (Vec<u8>, u16) {
    let bytes = hex::decode(apdu.replace(' ', "")).unwrap();
    let mut r = card.process(&bytes);
    let sw2 = r.pop().unwrap();
    let sw1 = r.pop().unwrap();
    (r, u16::from_be_bytes([sw1, sw2]))
}

fn sw(card: &mut VirtualCard, apdu: &str) -> u16 {
    tx(card, apdu).1
}

fn pin_block(pin: &str) -> String {
    let mut b = pin.as_bytes().to_vec();
    b.resize(8, 0xFF);
    hex::encode(b)
}

/// Reads the current EF completely, 256 bytes at a time, until 6B00/6282.
fn read_all(card: &mut VirtualCard, size: usize) -> Vec<u8> {
    let mut out = Vec::new();
    while out.len() < size {
        let n = (size - out.len()).min(256);
        let apdu = format!("00B0{:04X}{:02X}", out.len(), if n == 256 { 0 } else { n });
        let (data, status) = tx(card, &apdu);
        assert_eq!(status, 0x9000, "{apdu}");
        assert!(data.len() <= 256);
        out.extend(data);
    }
    out
}

fn select_path_fci(card: &mut VirtualCard, path: &str) -> usize {
    let (fci, status) = tx(card, &format!("00A40800{:02X}{path}00", path.len() / 2));
    assert_eq!(status, 0x9000, "{path}");
    assert_eq!(fci[0], 0x6F);
    let obj = eid_protocols::tlv::find(&fci[2..], 0x80).unwrap().unwrap();
    obj.value()
        .iter()
        .fold(0usize, |a, &b| a << 8 | usize::from(b))
}

fn read_file(card: &mut VirtualCard, path: &str) -> Vec<u8> {
    let size = select_path_fci(card, path);
    read_all(card, size)
}

fn der_len_prefix(data: &[u8]) -> &[u8] {
    // A DER SEQUENCE at the start of a zero-padded file.
    let (len, head) = match data[1] {
        n if n < 0x80 => (usize::from(n), 2),
        0x81 => (usize::from(data[2]), 3),
        0x82 => (usize::from(u16::from_be_bytes([data[2], data[3]])), 4),
        _ => panic!("length"),
    };
    &data[..head + len]
}

#[test]
fn cc1_selects_fcis_and_reads() {
    let mut c = cc1::cc1_default().unwrap();
    let card = &mut c.card;
    assert_eq!(card.atr(), pteid::CC1_ATR);
    assert_eq!(sw(card, "00A4040C07 6046 32FF 000002"), 0x9000);
    assert_eq!(sw(card, "00A4040C07 6046 32FF 000005"), 0x6A82);
    assert_eq!(sw(card, "00A4000C023F00"), 0x9000);
    assert_eq!(select_path_fci(card, "3F005F00EF02"), cc1::ID_FILE_LEN);
    // Past the end.
    assert_eq!(sw(card, "00B03C8C10"), 0x6B00);
    // Extended APDUs are refused.
    assert_eq!(sw(card, "00B00000000400"), 0x6700);
    let id = read_all(card, cc1::ID_FILE_LEN);
    assert_eq!(&id[0..21], "República Portuguesa".as_bytes());
    assert_eq!(
        cc1::trimmed(&id, 606, 18),
        b"99000123",
        "civilian id at 606"
    );
    assert_eq!(
        &id[cc1::PHOTO_OFFSET..cc1::PHOTO_OFFSET + 12],
        &pteid::PHOTO_JP2[..12]
    );
    // Select by FID within 5F00.
    assert_eq!(sw(card, "00A4020C02EF06"), 0x9000);
    // Trace file active.
    let trace = read_file(card, "3F000003");
    assert_eq!(trace[5], 1);
    // CPLC and applet version.
    let (cplc, status) = tx(card, "00CA9F7F2D");
    assert_eq!(status, 0x9000);
    assert_eq!(cplc.len(), 45);
    assert_eq!(hex::encode_upper(&cplc[13..21]), "0123456789ABCDEF");
    assert_eq!(tx(card, "00CADF3000").1, 0x9000);
    // TokenInfo label.
    let token_info = read_file(card, "3F004F005032");
    assert!(token_info.windows(17).any(|w| w == b"CARTAO DE CIDADAO"));
    // EF.DIR names the PKCS#15 DF by its DF name with the path 4F00 relative to the MF (OpenSC's
    // PKCS#11 module attaches the emulated token only to that path), and the name selects it.
    let ef_dir = read_file(card, "3F002F00");
    let mut template = vec![0x4F, 0x09];
    template.extend_from_slice(cc1::PKCS15_DF_NAME);
    template.extend_from_slice(&[0x50, 0x0C]);
    template.extend_from_slice(b"PORTUGAL EID");
    template.extend_from_slice(&[0x51, 0x02, 0x4F, 0x00]);
    let mut expected = vec![0x61, template.len() as u8];
    expected.extend(template);
    assert_eq!(ef_dir, expected);
    assert_eq!(
        sw(
            card,
            &format!("00A4040C09{}", hex::encode(cc1::PKCS15_DF_NAME))
        ),
        0x9000
    );
}

#[test]
fn cc1_address_needs_pin_and_pins_count_block_and_unblock() {
    let mut c = cc1::cc1_default().unwrap();
    let card = &mut c.card;
    select_path_fci(card, "3F005F00EF05");
    assert_eq!(sw(card, "00B0000010"), 0x6982);
    assert_eq!(sw(card, "00200083"), 0x63C3);
    // Wrong length: 6A80, no try used.
    assert_eq!(sw(card, "0020008304 33333333"), 0x6A80);
    assert_eq!(sw(card, "00200083"), 0x63C3);
    assert_eq!(
        sw(card, &format!("0020008308{}", pin_block("3333"))),
        0x9000
    );
    assert_eq!(sw(card, "00200083"), 0x9000);
    let address = read_all(card, cc1::ADDRESS_FILE_LEN);
    assert_eq!(&address[0..1], b"N");

    // Auth PIN: each wrong PIN decrements exactly once, then blocked.
    let wrong = format!("0020008108{}", pin_block("9999"));
    assert_eq!(sw(card, &wrong), 0x63C2);
    assert_eq!(sw(card, "00200081"), 0x63C2);
    assert_eq!(sw(card, &wrong), 0x63C1);
    assert_eq!(sw(card, &wrong), 0x63C0);
    assert_eq!(
        sw(card, &format!("0020008108{}", pin_block("1111"))),
        0x6983
    );
    assert_eq!(sw(card, "00200081"), 0x6983);
    // Unblock with the PUK only, then with PUK + new PIN.
    assert_eq!(
        sw(card, &format!("002C018108{}", hex::encode("11111111"))),
        0x9000
    );
    assert_eq!(sw(card, "00200081"), 0x63C3);
    assert_eq!(
        sw(
            card,
            &format!("002C008110{}{}", hex::encode("11111111"), pin_block("4321"))
        ),
        0x9000
    );
    assert_eq!(
        sw(card, &format!("0020008108{}", pin_block("4321"))),
        0x9000
    );
    // Wrong PUK counts.
    assert_eq!(
        sw(card, &format!("002C018108{}", hex::encode("00000000"))),
        0x63C9
    );
    // Change: old || new.
    assert_eq!(
        sw(
            card,
            &format!("0024008110{}{}", pin_block("4321"), pin_block("5678"))
        ),
        0x9000
    );
    assert_eq!(
        sw(
            card,
            &format!("0024008110{}{}", pin_block("4321"), pin_block("5678"))
        ),
        0x63C2
    );
    assert_eq!(
        sw(card, &format!("0024008108{}", pin_block("5678"))),
        0x6A80
    );
    // Clear the verified state.
    assert_eq!(
        sw(card, &format!("0020008108{}", pin_block("5678"))),
        0x9000
    );
    assert_eq!(sw(card, "0020FF8100"), 0x9000);
    assert_eq!(sw(card, "00200081"), 0x63C3);
}

fn digest_for(alg: u8) -> MessageDigest {
    match alg & 0xF0 {
        0x10 => MessageDigest::sha1(),
        0x40 => MessageDigest::sha256(),
        0x50 => MessageDigest::sha384(),
        _ => MessageDigest::sha512(),
    }
}

/// MSE SET, PSO HASH, PSO CDS (with GET RESPONSE when the card says 61xx).
fn sign(card: &mut VirtualCard, alg: u8, key_ref: u8, input: &[u8]) -> Result<Vec<u8>, u16> {
    let status = sw(card, &format!("002241B606 8001{alg:02X} 8401{key_ref:02X}"));
    assert_eq!(status, 0x9000);
    let status = sw(
        card,
        &format!(
            "002A90A0{:02X}90{:02X}{}",
            input.len() + 2,
            input.len(),
            hex::encode(input)
        ),
    );
    assert_eq!(status, 0x9000);
    let (mut sig, mut status) = tx(card, "002A9E9A00");
    while status >> 8 == 0x61 {
        let (more, s) = tx(card, &format!("00C00000{:02X}", status & 0xFF));
        sig.extend(more);
        status = s;
    }
    if status == 0x9000 {
        Ok(sig)
    } else {
        Err(status)
    }
}

#[test]
fn cc1_signatures_verify_for_every_hash() {
    let mut c = cc1::cc1_default().unwrap();
    let auth_key = c.pki.auth_cert.public_key().unwrap();
    let sign_key = c.pki.sign_cert.public_key().unwrap();
    let card = &mut c.card;
    let data = b"data to be signed";
    // Without the PIN: 6982.
    assert_eq!(
        sign(
            card,
            0x42,
            cc1::AUTH_KEY_REF,
            &hash(MessageDigest::sha256(), data).unwrap()
        ),
        Err(0x6982)
    );
    assert_eq!(
        sw(card, &format!("0020008108{}", pin_block("1111"))),
        0x9000
    );
    for alg in [0x12u8, 0x42, 0x52, 0x62, 0x15, 0x45, 0x55, 0x65] {
        let md = digest_for(alg);
        let h = hash(md, data).unwrap();
        let sig = sign(card, alg, cc1::AUTH_KEY_REF, &h).unwrap();
        assert_eq!(sig.len(), 384, "RSA-3072");
        let mut v = openssl::sign::Verifier::new(md, &auth_key).unwrap();
        if alg & 0x0F == 0x05 {
            v.set_rsa_padding(openssl::rsa::Padding::PKCS1_PSS).unwrap();
            v.set_rsa_pss_saltlen(openssl::sign::RsaPssSaltlen::DIGEST_LENGTH)
                .unwrap();
        }
        v.update(data).unwrap();
        assert!(v.verify(&sig).unwrap(), "alg {alg:02X}");
    }
    // 0x02: the host sends the DigestInfo (SHA-1, 35 bytes, what OpenSC sends).
    let mut info = hex::decode("3021300906052B0E03021A05000414").unwrap();
    info.extend_from_slice(&hash(MessageDigest::sha1(), data).unwrap());
    let sig = sign(card, 0x02, cc1::AUTH_KEY_REF, &info).unwrap();
    let mut v = openssl::sign::Verifier::new(MessageDigest::sha1(), &auth_key).unwrap();
    v.update(data).unwrap();
    assert!(v.verify(&sig).unwrap());
    // The first answer of CDS is 256 bytes and 6180.
    sw(card, "002241B606 800142 840102");
    sw(card, &format!("002A90A02290 20{}", "11".repeat(32)));
    let (first, status) = tx(card, "002A9E9A00");
    assert_eq!((first.len(), status), (256, 0x6180));
    assert_eq!(tx(card, "00C0000080").0.len(), 128);

    // Signature key: one signature per VERIFY.
    assert_eq!(
        sw(card, &format!("0020008208{}", pin_block("2222"))),
        0x9000
    );
    let h = hash(MessageDigest::sha256(), data).unwrap();
    let sig = sign(card, 0x42, cc1::SIGN_KEY_REF, &h).unwrap();
    let mut v = openssl::sign::Verifier::new(MessageDigest::sha256(), &sign_key).unwrap();
    v.update(data).unwrap();
    assert!(v.verify(&sig).unwrap());
    assert_eq!(sign(card, 0x42, cc1::SIGN_KEY_REF, &h), Err(0x6982));
    // Wrong hash length.
    sw(card, "002241B606 800142 840102");
    assert_eq!(
        sw(card, &format!("002A90A01690 14{}", "11".repeat(20))),
        0x6A80
    );
}

fn verify_sod(sod_file: &[u8], root: &X509) -> Result<Vec<u8>, openssl::error::ErrorStack> {
    assert_eq!(sod_file[0], 0x77);
    let cms_der = &der_len_prefix(sod_file)[4..];
    let mut store = X509StoreBuilder::new().unwrap();
    store.add_cert(root.clone()).unwrap();
    let store = store.build();
    let mut cms = CmsContentInfo::from_der(cms_der).unwrap();
    let mut out = Vec::new();
    cms.verify(
        Some(&Stack::new().unwrap()),
        Some(&store),
        None,
        Some(&mut out),
        CMSOptions::empty(),
    )?;
    Ok(out)
}

#[test]
fn cc1_sod_verifies_and_hashes_match() {
    let mut c = cc1::cc1_default().unwrap();
    let card = &mut c.card;
    let sod = read_file(card, "3F005F00EF06");
    let lds = verify_sod(&sod, &c.pki.root).unwrap();
    let id = read_file(card, "3F005F00EF02");
    sw(card, &format!("0020008308{}", pin_block("3333")));
    let address = read_file(card, "3F005F00EF05");
    for (_, input) in cc1::sod_inputs(&id, &address) {
        let h = hash(MessageDigest::sha256(), &input).unwrap();
        assert!(lds.windows(32).any(|w| w == &h[..]));
    }
    // Certificates chain.
    let auth = X509::from_der(der_len_prefix(&read_file(card, "3F005F00EF09"))).unwrap();
    assert_eq!(auth.to_der().unwrap(), c.pki.auth_cert.to_der().unwrap());
    assert!(
        auth.verify(&c.pki.auth_sub_ca.public_key().unwrap())
            .unwrap()
    );
    let subject = format!("{:?}", auth.subject_name());
    assert!(subject.contains("PNOPT-99000123"), "{subject}");
}

#[test]
fn faulty_sods_are_detectable() {
    let bad_sig = cc1::cc1(&PteidOptions {
        sod_fault: SodFault::BadSignature,
        ..PteidOptions::default()
    })
    .unwrap();
    let sod = bad_sig.card.file(&[0x5F00, 0xEF06]).unwrap().to_vec();
    assert!(verify_sod(&sod, &bad_sig.pki.root).is_err());

    let bad_hash = cc1::cc1(&PteidOptions {
        sod_fault: SodFault::WrongHash(1),
        ..PteidOptions::default()
    })
    .unwrap();
    let sod = bad_hash.card.file(&[0x5F00, 0xEF06]).unwrap().to_vec();
    let lds = verify_sod(&sod, &bad_hash.pki.root).unwrap();
    let id = bad_hash.card.file(&[0x5F00, 0xEF02]).unwrap();
    let address = bad_hash.card.file(&[0x5F00, 0xEF05]).unwrap();
    let inputs = cc1::sod_inputs(id, address);
    let h1 = hash(MessageDigest::sha256(), &inputs[0].1).unwrap();
    let h2 = hash(MessageDigest::sha256(), &inputs[1].1).unwrap();
    assert!(!lds.windows(32).any(|w| w == &h1[..]));
    assert!(lds.windows(32).any(|w| w == &h2[..]));
}

#[test]
fn cc2_apps_files_sod_and_ecdsa() {
    let mut c = cc2::cc2_default().unwrap();
    let sign_key = c.pki.sign_cert.public_key().unwrap();
    let card = &mut c.card;
    assert_eq!(card.atr(), pteid::CC2_ATR);
    assert_eq!(sw(card, "00A4040C07 6046 32FF 000004"), 0x9000);
    assert_eq!(sw(card, "00A4040C07 6046 32FF 000002"), 0x6A82);
    let auth = read_file(card, "3F005F00EF02");
    X509::from_der(der_len_prefix(&auth)).unwrap();
    assert_eq!(sw(card, "00A4040C07 6046 32FF 000005"), 0x9000);
    let mut files = Vec::new();
    for fid in ["0101", "0102", "010D", "010E", "010F", "011D"] {
        let (fci, status) = tx(card, &format!("00A4020002{fid}00"));
        assert_eq!(status, 0x9000);
        let size = eid_protocols::tlv::find(&fci[2..], 0x80)
            .unwrap()
            .unwrap()
            .value()
            .iter()
            .fold(0usize, |a, &b| a << 8 | usize::from(b));
        files.push(read_all(card, size));
    }
    assert_eq!(&files[0][..4], &[0x61, 0x5D, 0x5F, 0x1F]);
    let pos = files[1]
        .windows(3)
        .position(|w| w == [0x5F, 0x2E, 0x82])
        .unwrap();
    let image = &files[1][pos + 5 + 14 + 20 + 12..];
    assert_eq!(image, pteid::PHOTO_JP2);
    assert_eq!(files[2][0], 0x6D);
    let lds = verify_sod(&files[5], &c.pki.root).unwrap();
    for file in &files[..5] {
        let h = hash(MessageDigest::sha256(), file).unwrap();
        assert!(lds.windows(32).any(|w| w == &h[..]));
    }
    // ECDSA with the signature key.
    assert_eq!(
        sw(card, &format!("0020008208{}", pin_block("2222"))),
        0x9000
    );
    for alg in [0x14u8, 0x44, 0x54, 0x64] {
        let md = digest_for(alg);
        let h = hash(md, b"cc2").unwrap();
        if alg != 0x14 {
            assert_eq!(
                sw(card, &format!("0020008208{}", pin_block("2222"))),
                0x9000
            );
        }
        let sig = sign(card, alg, cc2::SIGN_KEY_REF, &h).unwrap();
        assert_eq!(sig.len(), 64);
        let r = openssl::bn::BigNum::from_slice(&sig[..32]).unwrap();
        let s = openssl::bn::BigNum::from_slice(&sig[32..]).unwrap();
        let esig = openssl::ecdsa::EcdsaSig::from_private_components(r, s).unwrap();
        assert!(esig.verify(&h, &sign_key.ec_key().unwrap()).unwrap());
    }
    // The signature PIN is consumed.
    assert_eq!(sw(card, "00200082"), 0x63C3);
}

/// A refused MSE SET or PSO HASH leaves nothing behind: COMPUTE DIGITAL SIGNATURE must not sign
/// with the key of an earlier SET, nor a hash of an earlier HASH (6985 instead).
#[test]
fn refused_mse_or_pso_hash_leaves_nothing_to_sign() {
    let mut c = cc2::cc2_default().unwrap();
    let card = &mut c.card;
    assert_eq!(
        sw(card, &format!("0020008108{}", pin_block("1111"))),
        0x9000
    );
    let h = hash(MessageDigest::sha256(), b"stale").unwrap();
    let pso_hash = format!("002A90A022 9020{}", hex::encode(h));
    // SET for the auth key, then a SET the card refuses (CC1's RSA algorithm on a CC2).
    assert_eq!(
        sw(
            card,
            &format!("002241B606 800144 8401{:02X}", cc2::AUTH_KEY_REF)
        ),
        0x9000
    );
    assert_eq!(
        sw(
            card,
            &format!("002241B606 800142 8401{:02X}", cc2::AUTH_KEY_REF)
        ),
        0x6A80
    );
    assert_eq!(sw(card, &pso_hash), 0x6985);
    assert_eq!(sw(card, "002A9E9A00"), 0x6985);
    // A SET naming a key the card does not have: same.
    assert_eq!(
        sw(
            card,
            &format!("002241B606 800144 8401{:02X}", cc2::AUTH_KEY_REF)
        ),
        0x9000
    );
    assert_eq!(sw(card, "002241B606 800144 840177"), 0x6A88);
    assert_eq!(sw(card, &pso_hash), 0x6985);
    // A good HASH, then one of the wrong length: the first is gone.
    assert_eq!(
        sw(
            card,
            &format!("002241B606 800144 8401{:02X}", cc2::AUTH_KEY_REF)
        ),
        0x9000
    );
    assert_eq!(sw(card, &pso_hash), 0x9000);
    assert_eq!(
        sw(card, &format!("002A90A021 901F{}", hex::encode(&h[..31]))),
        0x6A80
    );
    assert_eq!(sw(card, "002A9E9A00"), 0x6985);
    // And the sequence still works when nothing was refused.
    assert_eq!(sw(card, &pso_hash), 0x9000);
    let (sig, status) = tx(card, "002A9E9A00");
    assert_eq!(status, 0x9000);
    assert_eq!(sig.len(), 64);
}

/// GET CHALLENGE with CLA 80 checks its parameters like any other command.
#[test]
fn get_challenge_cla80_checks_p1_p2_and_lc() {
    let mut c = cc2::cc2_default().unwrap();
    let card = &mut c.card;
    let (challenge, status) = tx(card, "8084000008");
    assert_eq!((challenge.len(), status), (8, 0x9000));
    assert_eq!(sw(card, "8084010008"), 0x6A86);
    assert_eq!(sw(card, "808400000100"), 0x6700);
}
