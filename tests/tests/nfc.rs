//! The NFC transport (`eid_card::nfc`) through the real libnfc (Debian's libnfc 1.8, its own
//! `pn532_uart` driver) talking to an emulated PN532 on a pseudo-terminal
//! (`eid_hardware_mocks::pn532`), with virtual cards in its field:
//!
//! - a full eMRTD read (PACE, chip authentication, active authentication, passive
//!   authentication) and a contactless Citizen Card CC2 authentication signature, verified with
//!   OpenSSL, over unchanged card applications;
//! - the card pulled out mid-read is `Error::CardRemoved`, and the reader still works after;
//! - a reader answering noise is `Error::ReaderFault`, a silent one `Error::Timeout`, a vanished
//!   one `Error::ReaderRemoved`, each within a bound (no hang);
//! - the monitor reports insertion and removal; `eid-agent readers --json` lists the reader.
//!
//! Nothing here needs pcscd; the comparison with pcscd + vpcd is in benches/nfc_read.rs.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::process::Command;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use eid_card::emrtd::{self, AccessKey, AccessMethod, ReadOptions, open_contactless_cc2};
use eid_card::monitor::Event;
use eid_card::nfc::{NfcContext, NfcMonitor, NfcReader, TargetKind};
use eid_card::pteid::{HashAlg, KeyRef, Pin, PinRef, PteidCard, RsaPadding};
use eid_card::{Error, Interface, Reborrow, Session, Transport};
use eid_hardware_mocks::emrtd::cc2;
use eid_hardware_mocks::emrtd::profile::{self, Profile, chip_files};
use eid_hardware_mocks::emrtd::trust::trust;
use eid_hardware_mocks::engine::VirtualCard;
use eid_hardware_mocks::pn532::{self, Pn532Emulator, Pn532Fault, Pn532Handle, Pn532Options};
use eid_hardware_mocks::pteid::Identity;
use eid_protocols::pa::CscaStore;
use eid_tests::{bins, cli};

/// Longest any failing exchange may take: libnfc's own timeouts are bounded, so a hang is a bug.
const NO_HANG: Duration = Duration::from_secs(30);

/// An emulated PN532 with `card` in its field, opened through libnfc.
/// Fields drop in order: libnfc closes the device while the emulator still answers.
struct Bench {
    reader: NfcReader,
    emulator: Pn532Handle,
}

fn bench(card: Option<VirtualCard>, options: Pn532Options) -> Bench {
    let emulator = Pn532Emulator::spawn(card, options).expect("emulated PN532");
    let mut context = NfcContext::new().expect("libnfc");
    let reader = context
        .open(&emulator.connstring())
        .unwrap_or_else(|e| panic!("libnfc opens {}: {e:?}", emulator.connstring()));
    Bench { emulator, reader }
}

fn emrtd_card(p: Profile) -> VirtualCard {
    profile::card(p).expect("virtual eMRTD")
}

fn store() -> CscaStore {
    let mut store = CscaStore::new();
    store
        .add_certificates(&trust().unwrap().csca.cert_der().unwrap())
        .unwrap();
    store
}

fn can_key(p: Profile) -> AccessKey {
    AccessKey::can(p.document().can.expect("a CAN")).unwrap()
}

fn read(
    t: &mut dyn Transport,
    key: &AccessKey,
    store: &CscaStore,
) -> Result<emrtd::EmrtdReport, Error> {
    emrtd::read_document(
        t,
        key,
        ReadOptions {
            csca: Some(store),
            challenge: Some([0x4E, 0x46, 0x43, 0x21, 1, 2, 3, 4]),
            progress: None,
        },
    )
}

#[test]
fn emrtd_full_read_with_pace_ca_aa_and_pa() {
    let p = Profile::Pace;
    let b = bench(Some(emrtd_card(p)), Pn532Options::default());
    let mut t = b.reader.connect().unwrap();
    // What the session layer is told: short APDUs, contactless; the ATR a PC/SC reader would
    // build from the same ATS (the card's own historical bytes).
    let caps = t.capabilities();
    assert!(!caps.allows_extended(), "{caps:?}");
    assert_eq!(caps.interface, Interface::Contactless);
    let card_atr = emrtd_card(p).atr().to_vec();
    let historical = eid_protocols::atr::Atr::parse(&card_atr)
        .unwrap()
        .historical;
    assert_eq!(
        &t.atr()[..4],
        &[0x3B, 0x80 | historical.len() as u8, 0x80, 0x01]
    );
    assert_eq!(&t.atr()[4..4 + historical.len()], historical.as_slice());

    let before = b.emulator.apdu_count();
    let report = read(&mut t, &can_key(p), &store()).unwrap();
    assert!(report.access.check.is_passed());
    assert!(
        matches!(report.access.method, AccessMethod::Pace { .. }),
        "{:?}",
        report.access.method
    );
    assert!(
        report.chip_authentication.is_passed(),
        "{:?}",
        report.chip_authentication
    );
    assert!(
        report.active_authentication.is_passed(),
        "{:?}",
        report.active_authentication
    );
    assert!(
        report.passive_authentication.is_valid(),
        "{:?}",
        report.passive_authentication
    );
    // The chip's files, byte for byte, through libnfc and the emulated chip.
    let files = chip_files(p).unwrap();
    assert_eq!(report.raw.sod.as_deref(), Some(files.sod.as_slice()));
    for (n, data) in &files.data_groups {
        assert_eq!(report.raw.data_groups.get(n), Some(data), "DG{n}");
    }
    assert_eq!(
        report.dg1.as_ref().unwrap().mrz.document_number,
        p.document().document_number
    );
    // Every APDU crossed the emulated air interface as an ISO-DEP I-block.
    let apdus = b.emulator.apdu_count() - before;
    assert!(
        apdus >= report.protected_apdus,
        "{apdus} < {}",
        report.protected_apdus
    );
}

#[test]
fn emrtd_pace_cam_read_on_a_type_b_card() {
    let p = Profile::PaceCam;
    let b = bench(
        Some(emrtd_card(p)),
        Pn532Options {
            kind: pn532::TargetKind::TypeB,
            ..Pn532Options::default()
        },
    );
    let target = b.reader.poll().unwrap().expect("a type B card");
    assert_eq!(target.kind, TargetKind::Iso14443B);
    assert_eq!(&target.atr[..4], &[0x3B, 0x88, 0x80, 0x01]);
    let mut t = b.reader.connect().unwrap();
    let report = read(&mut t, &can_key(p), &store()).unwrap();
    assert!(report.access.check.is_passed());
    assert!(
        report.chip_authentication.is_passed(),
        "{:?}",
        report.chip_authentication
    );
    assert!(report.passive_authentication.is_valid());
}

#[test]
fn contactless_cc2_authentication_signature_verifies_with_openssl() {
    let built = cc2::cc2_contactless_default().expect("contactless CC2");
    let b = bench(Some(built.card), Pn532Options::default());
    let identity = Identity::default();
    let mut t = b.reader.connect().unwrap();
    let mut sm = open_contactless_cc2(Reborrow(&mut t), &AccessKey::can(&identity.can).unwrap())
        .unwrap_or_else(|e| panic!("PACE: {e:?}"));
    let mut card = PteidCard::open(&mut sm).unwrap();
    card.verify_pin(PinRef::Auth, &Pin::new(&identity.pins.auth).unwrap())
        .unwrap();
    let challenge = b"TLS 1.3, client CertificateVerify content, over NFC";
    let digest = openssl::hash::hash(HashAlg::Sha256.message_digest(), challenge).unwrap();
    let sig = card
        .sign(KeyRef::Auth, HashAlg::Sha256, &digest, RsaPadding::Pkcs1v15)
        .unwrap();
    let key = built.pki.auth_cert.public_key().unwrap();
    let mut verifier =
        openssl::sign::Verifier::new(HashAlg::Sha256.message_digest(), &key).unwrap();
    verifier.update(challenge).unwrap();
    assert!(verifier.verify(sig.der.as_ref().unwrap()).unwrap());
    assert!(card.read_chunk() > 0);
    assert!(sm.is_open());
}

#[test]
fn removal_mid_read_is_card_removed_and_the_reader_still_works() {
    let p = Profile::Pace;
    let b = bench(Some(emrtd_card(p)), Pn532Options::default());
    let key = can_key(p);
    let store = store();
    let mut t = b.reader.connect().unwrap();
    // Well into the read: after PACE, in the middle of the data groups.
    b.emulator.remove_after_apdus(25);
    let start = Instant::now();
    let err = read(&mut t, &key, &store).unwrap_err();
    assert!(matches!(err, Error::CardRemoved), "{err:?}");
    assert!(start.elapsed() < NO_HANG);
    assert!(!b.emulator.is_present());
    // The field is empty: no card, and a connection made before stays dead.
    assert_eq!(b.reader.poll().unwrap(), None);
    assert!(matches!(b.reader.connect(), Err(Error::NoCard(_))));
    assert!(matches!(
        t.transmit(&[0x00, 0xA4, 0x00, 0x0C]),
        Err(Error::CardRemoved)
    ));
    // Back in the field: a new activation, and a full read.
    assert!(b.emulator.reinsert());
    let mut t = b.reader.connect().unwrap();
    let report = read(&mut t, &key, &store).unwrap();
    assert!(report.passive_authentication.is_valid());
}

/// One SELECT through the reader after `fault`: the error, and how long it took.
fn exchange_with_fault(fault: Pn532Fault) -> (Error, Duration, Bench) {
    let b = bench(Some(emrtd_card(Profile::Pace)), Pn532Options::default());
    let mut t = b.reader.connect().unwrap();
    let select_mf = [0x00, 0xA4, 0x00, 0x0C, 0x02, 0x3F, 0x00];
    let answer = t.transmit(&select_mf).unwrap();
    assert!(answer.len() >= 2);
    b.emulator.set_fault(Some(fault));
    let start = Instant::now();
    let err = t.transmit(&select_mf).unwrap_err();
    (err, start.elapsed(), b)
}

#[test]
fn a_reader_answering_noise_is_a_reader_fault() {
    let (err, took, b) = exchange_with_fault(Pn532Fault::Garbage);
    assert!(matches!(err, Error::ReaderFault(_)), "{err:?}");
    assert!(err.is_link_failure());
    assert!(took < NO_HANG, "{took:?}");
    // Once the reader behaves again, so does the transport.
    b.emulator.set_fault(None);
    let mut recovered = false;
    for _ in 0..5 {
        if let Ok(Some(_)) = b.reader.poll() {
            recovered = true;
            break;
        }
    }
    assert!(
        recovered,
        "the reader is usable again once it answers properly"
    );
}

#[test]
fn a_reader_answering_bad_checksums_is_a_reader_fault() {
    let (err, took, _b) = exchange_with_fault(Pn532Fault::BadChecksum);
    assert!(matches!(err, Error::ReaderFault(_)), "{err:?}");
    assert!(took < NO_HANG, "{took:?}");
}

#[test]
fn a_silent_reader_times_out() {
    let (err, took, _b) = exchange_with_fault(Pn532Fault::Silent);
    assert!(matches!(err, Error::Timeout), "{err:?}");
    assert!(took < NO_HANG, "{took:?}");
}

#[test]
fn a_vanished_reader_is_reader_removed() {
    let Bench { reader, emulator } =
        bench(Some(emrtd_card(Profile::Pace)), Pn532Options::default());
    let mut t = reader.connect().unwrap();
    drop(emulator);
    let start = Instant::now();
    let err = t
        .transmit(&[0x00, 0xA4, 0x00, 0x0C, 0x02, 0x3F, 0x00])
        .unwrap_err();
    assert!(matches!(err, Error::ReaderRemoved), "{err:?}");
    assert!(start.elapsed() < NO_HANG);
    assert!(matches!(reader.poll(), Err(Error::ReaderRemoved)));
}

#[test]
fn the_monitor_reports_cards_coming_and_going() {
    let b = bench(None, Pn532Options::default());
    let (tx, rx) = mpsc::channel();
    let mut monitor = NfcMonitor::spawn(b.reader.clone(), Duration::from_millis(50), move |e| {
        let _ = tx.send(e);
    })
    .unwrap();
    let next = || rx.recv_timeout(NO_HANG).expect("an event");
    let name = b.reader.name().to_owned();
    assert_eq!(
        next(),
        Event::ReaderAdded {
            reader: name.clone()
        }
    );
    let card = emrtd_card(Profile::Pace);
    let atr = card.atr().to_vec();
    b.emulator.insert(card);
    match next() {
        Event::CardInserted { reader, atr: got } => {
            assert_eq!(reader, name);
            // Same historical bytes as the card's own ATR.
            let hist = eid_protocols::atr::Atr::parse(&atr).unwrap().historical;
            assert_eq!(
                eid_protocols::atr::Atr::parse(&got).unwrap().historical,
                hist
            );
        }
        other => panic!("{other:?}"),
    }
    // A connection between polls does not make the monitor see a new card.
    let mut t = b.reader.connect().unwrap();
    {
        let mut session = Session::new(&mut t);
        assert!(session.transport().atr().starts_with(&[0x3B]));
    }
    b.emulator.remove();
    assert_eq!(
        next(),
        Event::CardRemoved {
            reader: name.clone()
        }
    );
    monitor.stop();
    assert!(monitor.is_finished());
}

/// A reset the agent makes (no PIN left verified, a kiosk session that idled out) switches the
/// field off, so the chip forgets its state, but it is not the card leaving: the monitor reports
/// nothing, and the connection keeps working. A card that really goes is still reported.
#[test]
fn a_reset_powers_the_card_down_without_a_removal_event() {
    let b = bench(Some(emrtd_card(Profile::Pace)), Pn532Options::default());
    let fresh = emrtd_card(Profile::Pace).core().current_df();
    let (tx, rx) = mpsc::channel();
    let _monitor = NfcMonitor::spawn(b.reader.clone(), Duration::from_millis(20), move |e| {
        let _ = tx.send(e);
    })
    .unwrap();
    let next = || rx.recv_timeout(NO_HANG).expect("an event");
    assert!(matches!(next(), Event::ReaderAdded { .. }));
    assert!(matches!(next(), Event::CardInserted { .. }));
    let mut t = b.reader.connect().unwrap();
    // SELECT the LDS1 application: the chip's state changes.
    let select = [
        0x00, 0xA4, 0x04, 0x0C, 0x07, 0xA0, 0x00, 0x00, 0x02, 0x47, 0x10, 0x01,
    ];
    assert_eq!(t.transmit(&select).unwrap(), [0x90, 0x00]);
    assert_ne!(b.emulator.with_card(|c| c.core().current_df()), Some(fresh));
    t.reconnect(true).unwrap();
    assert_eq!(b.emulator.with_card(|c| c.core().current_df()), Some(fresh));
    // Several polls later: nothing to report, and the same connection still talks to the card.
    assert!(
        rx.recv_timeout(Duration::from_millis(300)).is_err(),
        "the reset was reported as a removal"
    );
    assert_eq!(t.transmit(&select).unwrap(), [0x90, 0x00]);
    b.emulator.remove();
    assert!(matches!(next(), Event::CardRemoved { .. }));
}

#[test]
fn a_second_open_of_the_same_serial_device_is_refused() {
    let b = bench(None, Pn532Options::default());
    let mut context = NfcContext::new().unwrap();
    let err = context.open(&b.emulator.connstring()).unwrap_err();
    assert!(matches!(err, Error::ReaderInUse(_)), "{err:?}");
}

#[test]
fn eid_agent_readers_lists_the_nfc_reader() {
    // With or without pcscd: NFC readers are listed either way (agent/tests/nfc.rs runs it
    // without); with pcscd, its readers come first.
    let p = Profile::Pace;
    let emulator = Pn532Emulator::spawn(Some(emrtd_card(p)), Pn532Options::default()).unwrap();
    let mut command = Command::new(bins::workspace_bin("eid-agent", "eid-agent"));
    command
        .args(["readers", "--json"])
        .env("EID_NFC_DEVICES", emulator.connstring());
    let out = cli::run_bounded(command, "", NO_HANG);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json = cli::json(&out);
    let name = format!("NFC {}", emulator.connstring());
    let reader = json["readers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name.as_str())
        .unwrap_or_else(|| panic!("{name} not in {json}"));
    assert_eq!(reader["transport"], "nfc");
    assert_eq!(reader["card_present"], true, "{reader}");
    assert_eq!(reader["card"]["kind"]["id"], "emrtd", "{reader}");
    // The card saw the detection's APDUs through the real libnfc.
    assert!(emulator.apdu_count() > 0);
    // PC/SC readers come first.
    let transports: Vec<&str> = json["readers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["transport"].as_str().unwrap())
        .collect();
    assert!(
        transports
            .windows(2)
            .all(|w| !(w[0] == "nfc" && w[1] == "pcsc"))
    );
}
