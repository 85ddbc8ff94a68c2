//! `eid-agent card ...` against a virtual Citizen Card behind the real pcscd + vpcd.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::process::{Command, Output};
use std::time::Duration;

use eid_hardware_mocks::pteid::{self as mock, PteidOptions};
use eid_hardware_mocks::vpcd::VpcdCard;
use eid_tests::cli::{self, json};
use eid_tests::{Slot, pcscd_available, wait_for_card};

const AGENT: &str = env!("CARGO_BIN_EXE_eid-agent");

/// Runs `eid-agent card <args> --reader <reader>` with `stdin` fed in, failing the test after
/// 30 s (a hang).
fn run(reader: &str, args: &[&str], stdin: &str) -> Output {
    let mut command = Command::new(AGENT);
    command.arg("card").args(args).args(["--reader", reader]);
    cli::run_bounded(command, stdin, Duration::from_secs(30))
}

fn cli_on(built: mock::PteidCard, cc1: bool) {
    let (slot, context) = Slot::acquire_empty();
    let pki = built.pki.clone();
    let _handle = VpcdCard::attach(slot.addr(), built.card).unwrap();
    let reader = slot.reader_name();
    wait_for_card(&context, &reader, true);
    let profile = mock::Identity::default();

    // info
    let out = run(&reader, &["info", "--json"], "");
    assert!(out.status.success(), "{out:?}");
    let v = json(&out);
    assert_eq!(v["card"]["id"], if cc1 { "pteid-cc1" } else { "pteid-cc2" });
    assert_eq!(v["pins"]["auth"]["tries_left"], 3);

    // identity, whole and filtered; human form too
    let out = run(&reader, &["identity", "--json"], "");
    assert!(out.status.success(), "{out:?}");
    let v = json(&out);
    assert_eq!(v["identity"]["surname"], profile.surname);
    assert_eq!(v["identity"]["date_of_birth"]["date"], "1989-07-03");
    assert_eq!(v["sod"]["integrity"]["result"], "passed");
    let out = run(
        &reader,
        &["identity", "--fields", "surname,civilian_id", "--json"],
        "",
    );
    let v = json(&out);
    assert_eq!(v["identity"].as_object().unwrap().len(), 2);
    assert_eq!(v["identity"]["civilian_id"], profile.civilian_id);
    let out = run(&reader, &["identity"], "");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&profile.given_name), "{text}");
    assert!(text.contains("SOD integrity:   valid"), "{text}");

    // photo and certificates
    let dir = std::env::temp_dir().join(format!("eid-cli-card-{}-{cc1}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let png = dir.join("photo.png");
    let out = run(&reader, &["photo", "--out", png.to_str().unwrap()], "");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(&std::fs::read(&png).unwrap()[..4], b"\x89PNG");
    let pem_dir = dir.join("pem");
    let out = run(
        &reader,
        &["certs", "--json", "--pem", pem_dir.to_str().unwrap()],
        "",
    );
    assert!(out.status.success(), "{out:?}");
    let v = json(&out);
    assert_eq!(v["certificates"][0]["civil_id"], profile.civilian_id);
    let auth_pem = std::fs::read(pem_dir.join("authentication.pem")).unwrap();
    assert_eq!(
        openssl::x509::X509::from_pem(&auth_pem)
            .unwrap()
            .to_der()
            .unwrap(),
        pki.auth_cert.to_der().unwrap()
    );

    // wrong PIN: exit 2, typed code, retries left; then the right one
    let out = run(
        &reader,
        &["pin", "verify", "--pin", "auth", "--pin-stdin", "--json"],
        "9999\n",
    );
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let v = json(&out);
    assert_eq!(v["error"]["code"], "wrong-pin");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("2 tries left")
    );
    let out = run(&reader, &["pin", "status", "--json"], "");
    assert_eq!(json(&out)["pins"]["auth"]["tries_left"], 2);
    // a malformed PIN is refused before the card sees it
    let out = run(
        &reader,
        &["pin", "verify", "--pin", "auth", "--pin-stdin", "--json"],
        "12\n",
    );
    assert_eq!(json(&out)["error"]["code"], "invalid-pin-format");
    let out = run(&reader, &["pin", "status", "--json"], "");
    assert_eq!(json(&out)["pins"]["auth"]["tries_left"], 2);
    let pins = format!("{}\n", &*profile.pins.auth);
    let out = run(
        &reader,
        &["pin", "verify", "--pin", "auth", "--pin-stdin"],
        &pins,
    );
    assert!(out.status.success(), "{out:?}");

    // sign a file with the signature key (the PIN from stdin) and verify with openssl
    let doc = dir.join("doc.txt");
    std::fs::write(&doc, b"hello citizen").unwrap();
    let sign_pin = format!("{}\n", &*profile.pins.sign);
    let out = run(
        &reader,
        &[
            "sign",
            "--key",
            "sign",
            "--hash",
            "sha384",
            "--file",
            doc.to_str().unwrap(),
            "--pin-stdin",
            "--json",
        ],
        &sign_pin,
    );
    assert!(out.status.success(), "{out:?}");
    let v = json(&out);
    let sig = hex::decode(v["signature"].as_str().unwrap()).unwrap();
    let key = pki.sign_cert.public_key().unwrap();
    let mut verifier =
        openssl::sign::Verifier::new(openssl::hash::MessageDigest::sha384(), &key).unwrap();
    verifier.update(b"hello citizen").unwrap();
    assert!(verifier.verify(&sig).unwrap());

    // unblock form with the PUK only
    let out = run(
        &reader,
        &[
            "pin",
            "unblock",
            "--pin",
            "auth",
            "--keep-pin",
            "--pin-stdin",
        ],
        &format!("{}\n", &*profile.pins.auth_puk),
    );
    assert!(out.status.success(), "{out:?}");
    let out = run(&reader, &["pin", "status", "--json"], "");
    let v = json(&out);
    assert!(
        v["pins"]["auth"]["tries_left"] == 3 || v["pins"]["auth"]["state"] == "verified",
        "{v}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn card_commands_on_a_virtual_cc1() {
    if !pcscd_available() {
        return;
    }
    cli_on(mock::cc1::cc1(&PteidOptions::default()).unwrap(), true);
}

#[test]
fn card_commands_on_a_virtual_cc2() {
    if !pcscd_available() {
        return;
    }
    cli_on(mock::cc2::cc2(&PteidOptions::default()).unwrap(), false);
}

/// The same commands on a CC2 in a contactless reader: `--can` opens PACE, then every command
/// runs under secure messaging; without it the agent says what is needed.
#[test]
fn card_commands_on_a_contactless_cc2_with_the_can() {
    if !pcscd_available() {
        return;
    }
    let built = eid_hardware_mocks::emrtd::cc2::cc2_contactless_default().unwrap();
    let (slot, context) = Slot::acquire_empty();
    let pki = built.pki.clone();
    let _handle = VpcdCard::attach(slot.addr(), built.card).unwrap();
    let reader = slot.reader_name();
    wait_for_card(&context, &reader, true);
    let profile = mock::Identity::default();

    let out = run(&reader, &["identity", "--json"], "");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert_eq!(json(&out)["error"]["code"], "can-required");

    let out = run(&reader, &["identity", "--json", "--can", "000000"], "");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert_eq!(json(&out)["error"]["code"], "access-denied");

    let out = run(&reader, &["identity", "--json", "--can", &profile.can], "");
    assert!(out.status.success(), "{out:?}");
    let v = json(&out);
    assert_eq!(v["identity"]["surname"], profile.surname);
    assert_eq!(v["sod"]["integrity"]["result"], "passed");

    let digest =
        openssl::hash::hash(openssl::hash::MessageDigest::sha256(), b"contactless").unwrap();
    let out = run(
        &reader,
        &[
            "sign",
            "--key",
            "auth",
            "--hash",
            "sha256",
            "--digest",
            &hex::encode(digest),
            "--format",
            "der",
            "--pin-stdin",
            "--json",
            "--can",
            &profile.can,
        ],
        &format!("{}\n", &*profile.pins.auth),
    );
    assert!(out.status.success(), "{out:?}");
    let sig = hex::decode(json(&out)["signature"].as_str().unwrap()).unwrap();
    let key = pki.auth_cert.public_key().unwrap();
    let mut verifier =
        openssl::sign::Verifier::new(openssl::hash::MessageDigest::sha256(), &key).unwrap();
    verifier.update(b"contactless").unwrap();
    assert!(verifier.verify(&sig).unwrap());
}

/// Garbage on the command line is refused with its own code before any PIN is asked or sent:
/// the PIN on stdin stays unread and every counter keeps its tries.
#[test]
fn garbage_arguments_are_refused_without_a_pin_try() {
    if !pcscd_available() {
        return;
    }
    let built = mock::cc2::cc2(&PteidOptions::default()).unwrap();
    let (slot, context) = Slot::acquire_empty();
    let _handle = VpcdCard::attach(slot.addr(), built.card).unwrap();
    let reader = slot.reader_name();
    wait_for_card(&context, &reader, true);
    let wrong_pin = "0000\n";
    for (args, code) in [
        (
            &[
                "sign", "--key", "auth", "--hash", "sha256", "--digest", "zz",
            ][..],
            "bad-digest",
        ),
        (
            &[
                "sign", "--key", "auth", "--hash", "sha256", "--digest", "0102",
            ][..],
            "bad-digest",
        ),
        (&["identity", "--can", "12x"][..], "bad-can"),
    ] {
        let mut args = args.to_vec();
        args.extend(["--pin-stdin", "--json"]);
        let out = run(&reader, &args, wrong_pin);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
        assert_eq!(json(&out)["error"]["code"], code, "{args:?}");
    }
    let out = run(&reader, &["pin", "status", "--json"], "");
    let v = json(&out);
    // The CC2 has no address PIN (its address is not on the card).
    for pin in ["auth", "sign"] {
        assert_eq!(v["pins"][pin]["tries_left"], 3, "{pin}: {v}");
    }
}
