//! `eid-agent emrtd read` against virtual eMRTDs behind the real pcscd + vpcd, with the verifier's
//! trust material exported to disk as a user would keep it (a CSCA folder, a master list).

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use eid_hardware_mocks::emrtd::profile::{self, Profile};
use eid_hardware_mocks::emrtd::trust::trust;
use eid_hardware_mocks::vpcd::{VpcdCard, VpcdHandle};
use eid_tests::cli::{self, json};
use eid_tests::{Slot, pcscd_available, wait_for_card};

const AGENT: &str = env!("CARGO_BIN_EXE_eid-agent");

/// Runs `eid-agent emrtd read <args> --reader <reader>`, failing the test after 30 s (a hang).
fn run(reader: &str, args: &[&str]) -> Output {
    let mut command = Command::new(AGENT);
    command
        .args(["emrtd", "read"])
        .args(args)
        .args(["--reader", reader]);
    cli::run_bounded(command, "", Duration::from_secs(30))
}

/// A fresh temporary folder with the verifier's trust material
/// (`csca/csca-utopia.pem`, `masterlist-utopia.ml`, `csca-utopia.crl`).
fn trust_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("eid-cli-emrtd-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    trust().unwrap().export(&dir).unwrap();
    dir
}

/// The card of `p` behind a vpcd slot, present in pcscd.
fn attach(p: Profile) -> (Slot, VpcdHandle) {
    let (slot, context) = Slot::acquire_empty();
    let handle = VpcdCard::attach(slot.addr(), profile::card(p).unwrap()).unwrap();
    wait_for_card(&context, &slot.reader_name(), true);
    (slot, handle)
}

fn detach(slot: &Slot, mut handle: VpcdHandle) {
    handle.remove();
    let context = eid_card::pcsc_transport::PcscContext::establish().unwrap();
    wait_for_card(&context, &slot.reader_name(), false);
}

fn assert_passed(value: &serde_json::Value, what: &str) {
    assert_eq!(value["result"], "passed", "{what}: {value}");
}

fn assert_every_check_passes(report: &serde_json::Value, data_groups: &[u8], aa: bool) {
    assert_passed(&report["access"]["check"], "access");
    assert_passed(&report["chip-authentication"], "chip authentication");
    if aa {
        assert_passed(&report["active-authentication"], "active authentication");
        assert_eq!(
            report["active-authentication-evidence"]["challenge"],
            "0102030405060708"
        );
    }
    let pa = &report["passive-authentication"];
    assert_eq!(pa["outcome"], "report", "{pa}");
    assert_passed(&pa["signature"], "SOD signature");
    assert_passed(&pa["certificate-chain"], "DS certificate chain");
    let groups = pa["data-groups"].as_array().unwrap();
    assert_eq!(groups.len(), data_groups.len(), "{pa}");
    for g in groups {
        assert_passed(g, &format!("data group {}", g["data-group"]));
    }
}

fn png_written(path: &Path) {
    let png = std::fs::read(path).unwrap();
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n"),
        "{} is no PNG",
        path.display()
    );
    let image = image_size(&png);
    assert_eq!(image, (300, 400));
}

/// Width and height from a PNG's IHDR.
fn image_size(png: &[u8]) -> (u32, u32) {
    assert_eq!(&png[12..16], b"IHDR");
    (
        u32::from_be_bytes(png[16..20].try_into().unwrap()),
        u32::from_be_bytes(png[20..24].try_into().unwrap()),
    )
}

#[test]
fn read_pace_document_with_can_csca_folder_and_photo() {
    if !pcscd_available() {
        return;
    }
    let p = Profile::Pace;
    let dir = trust_dir("pace");
    let photo = dir.join("face.png");
    let (slot, handle) = attach(p);
    let csca = dir.join("csca");
    let out = run(
        &slot.reader_name(),
        &[
            "--can",
            p.document().can.unwrap(),
            "--json",
            "--csca",
            csca.to_str().unwrap(),
            "--challenge",
            "0102030405060708",
            "--photo",
            photo.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{out:?}");
    let doc = json(&out);
    let report = &doc["emrtd"];
    assert_every_check_passes(report, p.data_groups(), true);
    assert_eq!(report["access"]["method"]["protocol"], "pace");
    assert_eq!(report["access"]["method"]["password"], "can");
    assert_eq!(
        report["dg1"]["mrz"]["document-number"],
        p.document().document_number
    );
    // The raw files are there for a server to verify again.
    assert!(report["raw"]["sod"].as_str().unwrap().len() > 100);
    assert!(report["raw"]["data-groups"]["15"].is_string());
    png_written(&photo);

    // A wrong CAN: exit code 2, a typed error in the JSON, no hang.
    let out = run(
        &slot.reader_name(),
        &[
            "--can",
            "000000",
            "--json",
            "--csca",
            csca.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert_eq!(json(&out)["error"]["code"], "access-denied");

    detach(&slot, handle);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn read_bac_passport_with_mrz_and_master_list() {
    if !pcscd_available() {
        return;
    }
    let p = Profile::Bac;
    let d = p.document();
    let dir = trust_dir("bac");
    let (slot, handle) = attach(p);
    let mrz = format!(
        "{} {} {}",
        d.document_number, d.date_of_birth, d.date_of_expiry
    );
    let out = run(
        &slot.reader_name(),
        &[
            "--mrz",
            &mrz,
            "--json",
            "--master-list",
            dir.join("masterlist-utopia.ml").to_str().unwrap(),
            "--challenge",
            "0102030405060708",
        ],
    );
    assert!(out.status.success(), "{out:?}");
    let doc = json(&out);
    let report = &doc["emrtd"];
    assert_eq!(report["access"]["method"]["protocol"], "bac");
    assert_eq!(report["chip-authentication"]["result"], "not-performed");
    assert_passed(&report["active-authentication"], "active authentication");
    let pa = &report["passive-authentication"];
    assert_passed(&pa["signature"], "SOD signature");
    assert_passed(&pa["certificate-chain"], "DS certificate chain");
    for g in pa["data-groups"].as_array().unwrap() {
        assert_passed(g, "data group");
    }

    // The text output names every check.
    let out = run(
        &slot.reader_name(),
        &[
            "--mrz",
            &mrz,
            "--master-list",
            dir.join("masterlist-utopia.ml").to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    for line in [
        "access:                  BAC: passed",
        "active authentication:   passed",
        "  signature:             passed",
        "  certificate chain:     passed",
        "ERIKSSON, ANNA MARIA",
    ] {
        assert!(text.contains(line), "{line:?} missing from:\n{text}");
    }

    detach(&slot, handle);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn faulty_document_is_reported_not_hidden() {
    if !pcscd_available() {
        return;
    }
    let p = Profile::UntrustedCsca;
    let dir = trust_dir("rogue");
    let (slot, handle) = attach(p);
    let out = run(
        &slot.reader_name(),
        &[
            "--can",
            p.document().can.unwrap(),
            "--json",
            "--csca",
            dir.join("csca").to_str().unwrap(),
        ],
    );
    // The read succeeds; the report says which check failed.
    assert!(out.status.success(), "{out:?}");
    let doc = json(&out);
    let pa = &doc["emrtd"]["passive-authentication"];
    assert_passed(&pa["signature"], "SOD signature");
    assert_eq!(pa["certificate-chain"]["result"], "failed", "{pa}");
    detach(&slot, handle);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Malformed access data or challenge is refused before any reader is touched (no pcscd
/// needed), each with a clear message and exit code 2.
#[test]
fn malformed_arguments_are_refused_before_the_card() {
    for (args, code) in [
        (&["--mrz", "garbage"][..], Some("invalid-access-key")),
        (
            &["--mrz", "L898902C3 7408 340415"][..],
            Some("invalid-access-key"),
        ),
        (&["--can", "12x"][..], Some("invalid-access-key")),
        (&["--can", "123456", "--challenge", "zz"][..], None),
        (&["--can", "123456", "--challenge", "0102"][..], None),
        (&[][..], None),
    ] {
        let mut command = Command::new(AGENT);
        command
            .args(["emrtd", "read", "--json", "--reader", "No Such Reader"])
            .args(args);
        let out = cli::run_bounded(command, "", Duration::from_secs(10));
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
        match code {
            // Our own check: one JSON error document naming it.
            Some(code) => assert_eq!(json(&out)["error"]["code"], code, "{args:?}"),
            // clap's: the usage error on stderr, naming the argument.
            None => {
                let err = String::from_utf8_lossy(&out.stderr);
                assert!(err.contains("error:"), "{args:?}: {err}");
            }
        }
    }
}
