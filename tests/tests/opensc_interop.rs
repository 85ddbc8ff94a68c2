//! The virtual CC1 as OpenSC 0.23 sees it, through the real pcscd + vpcd: OpenSC's `gemsafeV1`
//! driver and `pteid` PKCS#15 emulator must read it as they read a real card (cards.md §A8),
//! and its PKCS#11 module must sign with it. This is the external proof that the emulation is
//! faithful.
//!
//! Both key sizes are exercised: OpenSC 0.23's gemsafeV1 driver registers RSA 512 to 4096 bits
//! (card-gemsafeV1.c, 3072/4096 since 0.20.0), so it signs with the 3072-bit keys of current
//! cards (`pteid-cc1`) as well as with 2048-bit ones (`pteid-cc1-2048`). The signature comes
//! back as 128 bytes (OpenSC asks `Le = 80`) plus `61xx` and GET RESPONSE.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::path::Path;
use std::process::Command;

use eid_hardware_mocks::pteid::{self, PteidOptions};
use eid_tests::PcscRig;
use openssl::hash::MessageDigest;
use openssl::sign::Verifier;
use openssl::x509::X509;

const PKCS11_MODULE: &str = "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so";
/// OpenSC names each token "<TokenInfo label> (<PIN label>)".
const AUTH_TOKEN: &str = "CARTAO DE CIDADAO (Auth PIN)";
const SIGN_TOKEN: &str = "CARTAO DE CIDADAO (Sign PIN)";

fn opensc_installed() -> bool {
    let ok = Command::new("pkcs15-tool")
        .arg("--version")
        .output()
        .is_ok()
        && Path::new(PKCS11_MODULE).exists();
    if !ok {
        if std::env::var_os("EID_REQUIRE_PCSCD").is_some_and(|v| v == "1") {
            panic!("opensc is not installed (scripts/setup.sh)");
        }
        eprintln!("SKIPPED: opensc is not installed (scripts/setup.sh)");
    }
    ok
}

fn run(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .env("OPENSC_CONF", "/etc/opensc/opensc.conf")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{program} {args:?} failed:\n{text}");
    text
}

#[test]
fn opensc_reads_the_virtual_cc1() {
    if !opensc_installed() {
        return;
    }
    let built = pteid::by_profile("pteid-cc1-2048", &PteidOptions::default()).unwrap();
    let id_file = built.card.file(&[0x5F00, 0xEF02]).unwrap().to_vec();
    let _ = &built.pki;
    let Some(rig) = PcscRig::new(built.card) else {
        return;
    };
    let reader = rig.reader_name();

    let certs = run("pkcs15-tool", &["--reader", &reader, "--list-certificates"]);
    for label in [
        "CITIZEN AUTHENTICATION CERTIFICATE",
        "CITIZEN SIGNATURE CERTIFICATE",
        "ROOT CA",
    ] {
        assert!(certs.contains(label), "{label} missing:\n{certs}");
    }

    let pins = run("pkcs15-tool", &["--reader", &reader, "--list-pins"]);
    for label in ["Auth PIN", "Sign PIN", "Address PIN"] {
        assert!(pins.contains(label), "{label} missing:\n{pins}");
    }
    assert!(
        pins.contains("Tries left") && pins.contains(": 3"),
        "{pins}"
    );

    let objects = run("pkcs15-tool", &["--reader", &reader, "--list-data-objects"]);
    for label in ["Trace", "Citizen Data", "Citizen Address Data", "SOd"] {
        assert!(objects.contains(label), "{label} missing:\n{objects}");
    }

    let dir = std::env::temp_dir().join(format!("eid-opensc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let citizen = dir.join("citizen.bin");
    run(
        "pkcs15-tool",
        &[
            "--reader",
            &reader,
            "--read-data-object",
            "Citizen Data",
            "--output",
            citizen.to_str().unwrap(),
        ],
    );
    assert_eq!(std::fs::read(&citizen).unwrap(), id_file);
    std::fs::remove_dir_all(&dir).ok();
}

/// Runs `program`; returns whether it succeeded and what it printed.
fn run_status(program: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(program)
        .args(args)
        .env("OPENSC_CONF", "/etc/opensc/opensc.conf")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// The PKCS#11 slot (as `pkcs11-tool --slot` takes it) of the token `label` in `reader`, from
/// `pkcs11-tool -L`. OpenSC makes one slot per PIN, all with the reader's name as description,
/// so the token label picks the PIN; the reader picks our card when the other vpcd slot holds
/// another Citizen Card (same token labels).
fn pkcs11_slot(reader: &str, label: &str) -> String {
    let list = run("pkcs11-tool", &["--module", PKCS11_MODULE, "--list-slots"]);
    let mut current: Option<(&str, &str)> = None;
    for line in list.lines() {
        if let Some(rest) = line.strip_prefix("Slot ") {
            // "Slot 1 (0x4): Virtual PCD 00 01"
            current = rest
                .split_once("): ")
                .and_then(|(head, desc)| Some((head.split_once('(')?.1, desc.trim())));
        } else if let Some((_, value)) = line.split_once("token label") {
            let token = value.trim_start().trim_start_matches(':').trim();
            if let Some((id, desc)) = current
                && desc == reader
                && token == label
            {
                return id.to_string();
            }
        }
    }
    panic!("no token {label:?} in reader {reader:?}:\n{list}");
}

/// Signs `data` with `pkcs11-tool` (PKCS#11 `C_Login` with `pin`, then `C_Sign` with
/// CKM_SHA256_RSA_PKCS and the private key `id`) in the token `label`; returns the signature.
fn pkcs11_sign(reader: &str, label: &str, pin: &str, id: &str, data: &[u8]) -> Vec<u8> {
    let dir = std::env::temp_dir().join(format!(
        "eid-opensc-sign-{}-{id}-{}",
        std::process::id(),
        reader.replace(' ', "_")
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let input = dir.join("data.bin");
    let output = dir.join("sig.bin");
    std::fs::write(&input, data).unwrap();
    let slot = pkcs11_slot(reader, label);
    run(
        "pkcs11-tool",
        &[
            "--module",
            PKCS11_MODULE,
            "--slot",
            &slot,
            "--login",
            "--pin",
            pin,
            "--sign",
            "--id",
            id,
            "--mechanism",
            "SHA256-RSA-PKCS",
            "--input-file",
            input.to_str().unwrap(),
            "--output-file",
            output.to_str().unwrap(),
        ],
    );
    let signature = std::fs::read(&output).unwrap();
    std::fs::remove_dir_all(&dir).ok();
    signature
}

fn verifies(cert: &X509, data: &[u8], signature: &[u8]) -> bool {
    let key = cert.public_key().unwrap();
    let mut verifier = Verifier::new(MessageDigest::sha256(), &key).unwrap();
    verifier.update(data).unwrap();
    verifier.verify(signature).unwrap()
}

/// OpenSC's PKCS#11 module, through pcscd, on the default (RSA-3072) CC1: one token per PIN,
/// a wrong authentication PIN is refused, the authentication key (id 45) signs after
/// `C_Login` with PIN 1111, the signature key (id 46) after `C_Login` with PIN 2222, and both
/// signatures verify with the citizen's certificates.
#[test]
fn opensc_pkcs11_signs_with_the_virtual_cc1() {
    if !opensc_installed() {
        return;
    }
    let built = pteid::by_profile("pteid-cc1", &PteidOptions::default()).unwrap();
    let pki = built.pki.clone();
    let Some(rig) = PcscRig::new(built.card) else {
        return;
    };
    let reader = rig.reader_name();

    let slots = run("pkcs11-tool", &["--module", PKCS11_MODULE, "--list-slots"]);
    for label in [AUTH_TOKEN, SIGN_TOKEN, "CARTAO DE CIDADAO (Address PIN)"] {
        assert!(slots.contains(label), "{label} missing:\n{slots}");
    }
    assert!(slots.contains("PIN initialized"), "{slots}");

    let (ok, text) = run_status(
        "pkcs11-tool",
        &[
            "--module",
            PKCS11_MODULE,
            "--slot",
            &pkcs11_slot(&reader, AUTH_TOKEN),
            "--login",
            "--pin",
            "9999",
            "--list-objects",
        ],
    );
    assert!(!ok && text.contains("CKR_PIN_INCORRECT"), "{text}");

    let data = b"signed by OpenSC through the virtual CC1";
    let auth_sig = pkcs11_sign(&reader, AUTH_TOKEN, "1111", "45", data);
    assert_eq!(auth_sig.len(), 384);
    assert!(
        verifies(&pki.auth_cert, data, &auth_sig),
        "authentication signature"
    );
    assert!(!verifies(&pki.sign_cert, data, &auth_sig));

    let sign_sig = pkcs11_sign(&reader, SIGN_TOKEN, "2222", "46", data);
    assert_eq!(sign_sig.len(), 384);
    assert!(
        verifies(&pki.sign_cert, data, &sign_sig),
        "qualified signature"
    );
}

/// The same with the 2048-bit profile (cards issued before the move to RSA-3072).
#[test]
fn opensc_pkcs11_signs_with_a_2048_bit_cc1() {
    if !opensc_installed() {
        return;
    }
    let built = pteid::by_profile("pteid-cc1-2048", &PteidOptions::default()).unwrap();
    let auth_cert = built.pki.auth_cert.clone();
    let Some(rig) = PcscRig::new(built.card) else {
        return;
    };
    let data = b"2048-bit authentication signature";
    let sig = pkcs11_sign(&rig.reader_name(), AUTH_TOKEN, "1111", "45", data);
    assert_eq!(sig.len(), 256);
    assert!(
        verifies(&auth_cert, data, &sig),
        "signature does not verify"
    );
}

#[test]
fn opensc_lists_the_3072_bit_card() {
    if !opensc_installed() {
        return;
    }
    let built = pteid::by_profile("pteid-cc1", &PteidOptions::default()).unwrap();
    let Some(rig) = PcscRig::new(built.card) else {
        return;
    };
    let reader = rig.reader_name();
    let keys = run("pkcs15-tool", &["--reader", &reader, "--list-keys"]);
    assert!(keys.contains("CITIZEN SIGNATURE KEY"), "{keys}");
    assert!(keys.contains("3072"), "{keys}");
}
