//! The emulated PN532 against the real libnfc (Debian's `nfc-list`, `nfc-scan-device`,
//! `nfc-poll` on the `pn532_uart` driver) and, frame by frame, against the PN532 user manual's
//! host link rules.
//!
//! The libnfc tests need libnfc-bin (and libnfc-examples for `nfc-poll`); they are skipped
//! when the tools are missing, unless `EID_REQUIRE_LIBNFC=1` (CI), where that is a failure.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use eid_hardware_mocks::VirtualCard;
use eid_hardware_mocks::pn532::chip::Simulator;
use eid_hardware_mocks::pn532::frame::{self, ACK, ERROR_FRAME, NACK, TFI_HOST};
use eid_hardware_mocks::pn532::{Pn532Emulator, Pn532Fault, Pn532Handle, Pn532Options, TargetKind};
use eid_hardware_mocks::profiles::iso7816_test::{self, Variant};
use proptest::prelude::*;

const TOOL_TIMEOUT: Duration = Duration::from_secs(60);
const SELECT_APP: &[u8] = b"\x00\xA4\x04\x0C\x09\xF0EID-TEST";

fn card() -> VirtualCard {
    iso7816_test::card(Variant::Full).unwrap()
}

/// A libnfc command line tool, or `None` (test skipped) when it is not installed.
fn tool(name: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|path| path.is_file())
    });
    if found.is_none() {
        assert!(
            std::env::var_os("EID_REQUIRE_LIBNFC").is_none(),
            "{name} not installed (apt install libnfc-bin libnfc-examples)"
        );
        eprintln!("skipped: {name} not installed");
    }
    found
}

/// Runs a libnfc tool against `reader`; its stdout and stderr. Fails if it hangs.
fn run_tool(path: &Path, reader: &Pn532Handle, args: &[&str]) -> String {
    let child = libnfc_command(path, reader)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_output(child)
}

fn libnfc_command(path: &Path, reader: &Pn532Handle) -> Command {
    let mut command = Command::new(path);
    command
        .env("LIBNFC_DEVICE", reader.connstring())
        .env("LIBNFC_AUTO_SCAN", "false")
        .env("LIBNFC_INTRUSIVE_SCAN", "false")
        .env_remove("LIBNFC_LOG_LEVEL");
    command
}

fn wait_output(mut child: std::process::Child) -> String {
    let deadline = Instant::now() + TOOL_TIMEOUT;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the libnfc tool hangs on the emulated PN532");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = child.wait_with_output().unwrap();
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    text
}

/// Bytes as libnfc's tools print them: "08  65  49  44".
fn libnfc_hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join("  ")
}

#[test]
fn nfc_list_shows_the_card_identity_and_ats() {
    let Some(nfc_list) = tool("nfc-list") else {
        return;
    };
    let reader = Pn532Emulator::spawn(Some(card()), Pn532Options::default()).unwrap();
    let out = run_tool(&nfc_list, &reader, &["-v"]);
    assert!(out.contains("1 ISO14443A passive target(s) found"), "{out}");
    assert!(out.contains("ATQA (SENS_RES): 00  04"), "{out}");
    assert!(out.contains(": 08  65  49  44"), "UID: {out}");
    assert!(out.contains("SAK (SEL_RES): 20"), "{out}");
    // T0 78: TA, TB, TC present, FSCI 8; then the ATR's historical bytes.
    let mut ats = vec![0x78, 0x80, 0x71, 0x02];
    ats.extend_from_slice(&iso7816_test::historical_bytes(Variant::Full));
    assert!(out.contains(&format!("ATS: {}", libnfc_hex(&ats))), "{out}");
    assert!(out.contains("0 ISO14443B passive target(s) found"), "{out}");
    assert_eq!(reader.frames_rejected(), 0);
    // The host closed the port and opens it again: the chip still answers.
    let again = run_tool(&nfc_list, &reader, &[]);
    assert!(again.contains(": 08  65  49  44"), "{again}");
}

#[test]
fn nfc_list_type_b_and_double_size_uid() {
    let Some(nfc_list) = tool("nfc-list") else {
        return;
    };
    let type_b = Pn532Options {
        kind: TargetKind::TypeB,
        ..Pn532Options::default()
    };
    let reader = Pn532Emulator::spawn(Some(card()), type_b).unwrap();
    let out = run_tool(&nfc_list, &reader, &[]);
    assert!(out.contains("1 ISO14443B passive target(s) found"), "{out}");
    assert!(out.contains("PUPI: 65  49  44  42"), "{out}");
    assert!(!out.contains("ISO14443A passive target(s) found"), "{out}");
    drop(reader);

    let uid = vec![0x04, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66];
    let long_uid = Pn532Options {
        uid: Some(uid.clone()),
        ..Pn532Options::default()
    };
    let reader = Pn532Emulator::spawn(Some(card()), long_uid).unwrap();
    let out = run_tool(&nfc_list, &reader, &["-v", "-t", "1"]);
    assert!(out.contains("ATQA (SENS_RES): 00  44"), "{out}");
    assert!(out.contains(&libnfc_hex(&uid)), "{out}");
    assert!(out.contains("UID size: double"), "{out}");
}

#[test]
fn nfc_scan_device_sees_a_pn532() {
    let Some(scan) = tool("nfc-scan-device") else {
        return;
    };
    let reader = Pn532Emulator::spawn(None, Pn532Options::default()).unwrap();
    let out = run_tool(&scan, &reader, &["-v"]);
    assert!(out.contains("1 NFC device(s) found"), "{out}");
    assert!(out.contains(&reader.connstring()), "{out}");
    assert!(out.contains("chip: PN532 v1.6"), "{out}");
    assert!(out.contains("ISO/IEC 14443-4B (106 kbps)"), "{out}");
}

#[test]
fn empty_field_then_a_card_enters() {
    let Some(nfc_list) = tool("nfc-list") else {
        return;
    };
    let reader = Pn532Emulator::spawn(None, Pn532Options::default()).unwrap();
    let out = run_tool(&nfc_list, &reader, &["-v", "-t", "9"]);
    assert!(out.contains("0 ISO14443A passive target(s) found"), "{out}");
    assert!(out.contains("0 ISO14443B passive target(s) found"), "{out}");
    reader.insert(card());
    let out = run_tool(&nfc_list, &reader, &["-t", "1"]);
    assert!(out.contains(": 08  65  49  44"), "{out}");
    reader.remove();
    let out = run_tool(&nfc_list, &reader, &["-v", "-t", "1"]);
    assert!(out.contains("0 ISO14443A passive target(s) found"), "{out}");
    assert!(reader.reinsert());
    let out = run_tool(&nfc_list, &reader, &["-t", "1"]);
    assert!(out.contains(": 08  65  49  44"), "{out}");
}

/// `eid-virtual-card <profile> --pn532` prints the connection string and serves until killed.
#[test]
fn eid_virtual_card_pn532_mode() {
    let Some(nfc_list) = tool("nfc-list") else {
        return;
    };
    let mut child = Command::new(env!("CARGO_BIN_EXE_eid-virtual-card"))
        .args(["iso7816-test", "--pn532"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    let mut connstring = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut first).unwrap();
    std::io::BufRead::read_line(&mut stdout, &mut connstring).unwrap();
    let connstring = connstring.trim().to_owned();
    assert!(first.contains("iso7816-test"), "{first}");
    assert!(
        connstring.starts_with("pn532_uart:/dev/pts/"),
        "{connstring}"
    );
    let out = Command::new(&nfc_list)
        .env("LIBNFC_DEVICE", &connstring)
        .env("LIBNFC_AUTO_SCAN", "false")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = wait_output(out);
    let _ = child.kill();
    let _ = child.wait();
    assert!(out.contains(": 08  65  49  44"), "{out}");
    let mut ats = vec![0x78, 0x80, 0x71, 0x02];
    ats.extend_from_slice(&iso7816_test::historical_bytes(Variant::Full));
    assert!(out.contains(&format!("ATS: {}", libnfc_hex(&ats))), "{out}");
}

/// nfc-poll finds the card with InAutoPoll, then checks its presence (raw R(NAK) blocks
/// through InCommunicateThru) until it leaves the field.
#[test]
fn nfc_poll_notices_the_card_leaving() {
    let (Some(nfc_poll), Some(stdbuf)) = (tool("nfc-poll"), tool("stdbuf")) else {
        return;
    };
    let reader = Pn532Emulator::spawn(Some(card()), Pn532Options::default()).unwrap();
    let mut command = libnfc_command(&stdbuf, &reader);
    let mut child = command
        .arg("-oL")
        .arg(&nfc_poll)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    // Read until nfc-poll waits for the removal (line-buffered through stdbuf).
    let (tx, rx) = std::sync::mpsc::channel();
    let reader_thread = std::thread::spawn(move || {
        let mut seen = Vec::new();
        let mut byte = [0u8; 1];
        while let Ok(1) = stdout.read(&mut byte) {
            seen.push(byte[0]);
            if seen.ends_with(b"Waiting for card removing...") {
                let _ = tx.send(());
            }
        }
        String::from_utf8_lossy(&seen).into_owned()
    });
    if rx.recv_timeout(TOOL_TIMEOUT).is_err() {
        let _ = child.kill();
        panic!("nfc-poll did not find the card");
    }
    // nfc-poll is now pinging the card; it must still be running.
    assert!(child.try_wait().unwrap().is_none());
    reader.remove();
    let status = {
        let deadline = Instant::now() + TOOL_TIMEOUT;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("nfc-poll did not notice the removal");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    let out = reader_thread.join().unwrap();
    assert!(status.success(), "{out}");
    assert!(out.contains(": 08  65  49  44"), "{out}");
    assert!(out.contains("done."), "{out}");
}

/// A host killed while it held the port leaves libnfc's claim mark in the terminal settings;
/// the emulator clears it so the next libnfc can open the port.
#[test]
fn a_killed_host_does_not_leave_the_port_claimed() {
    let Some(nfc_list) = tool("nfc-list") else {
        return;
    };
    let reader = Pn532Emulator::spawn(Some(card()), Pn532Options::default()).unwrap();
    {
        let port = open_port(reader.tty_path());
        let mut settings = rustix::termios::tcgetattr(&port).unwrap();
        settings.input_modes |= rustix::termios::InputModes::from_bits_retain(0x8000_0000);
        rustix::termios::tcsetattr(&port, rustix::termios::OptionalActions::Now, &settings)
            .unwrap();
    }
    // Wait (bounded) for the emulator to notice nobody holds the port.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        std::thread::sleep(Duration::from_millis(50));
        let claimed = {
            let port = open_port(reader.tty_path());
            rustix::termios::tcgetattr(&port)
                .unwrap()
                .input_modes
                .bits()
                & 0x8000_0000
                != 0
        };
        if !claimed {
            break;
        }
        assert!(Instant::now() < deadline, "the claim mark stayed");
    }
    let out = run_tool(&nfc_list, &reader, &[]);
    assert!(out.contains(": 08  65  49  44"), "{out}");
}

#[test]
fn a_reader_that_stops_answering_or_answers_noise_does_not_hang_libnfc() {
    let Some(nfc_list) = tool("nfc-list") else {
        return;
    };
    let reader = Pn532Emulator::spawn(Some(card()), Pn532Options::default()).unwrap();
    for fault in [
        Pn532Fault::Silent,
        Pn532Fault::Garbage,
        Pn532Fault::BadChecksum,
        Pn532Fault::ErrorFrame,
    ] {
        reader.set_fault(Some(fault));
        let out = run_tool(&nfc_list, &reader, &[]);
        assert!(!out.contains("08  65  49  44"), "{fault:?}: {out}");
        assert!(
            out.contains("Unable to open NFC device"),
            "{fault:?}: {out}"
        );
    }
    reader.set_fault(None);
    let out = run_tool(&nfc_list, &reader, &[]);
    assert!(out.contains(": 08  65  49  44"), "{out}");
}

// --- Frame level: our own host on the port. ---

fn open_port(path: &Path) -> File {
    use rustix::fs::{Mode, OFlags};
    let fd = rustix::fs::open(
        path,
        OFlags::RDWR | OFlags::NOCTTY | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .unwrap();
    File::from(fd)
}

struct Host {
    port: File,
}

impl Host {
    /// Opens the port and wakes the chip up as libnfc does (HSU wake-up, SAMConfiguration).
    fn connect(reader: &Pn532Handle) -> Host {
        let mut host = Host {
            port: open_port(reader.tty_path()),
        };
        let mut wake_up = vec![0x55, 0x55];
        wake_up.extend_from_slice(&[0; 14]);
        host.write(&wake_up);
        assert_eq!(host.command(&[0x14, 0x01]), [0u8; 0]);
        host
    }

    fn write(&mut self, bytes: &[u8]) {
        self.port.write_all(bytes).unwrap();
    }

    /// Reads exactly `n` bytes, or `None` if they do not come within `wait`.
    fn read_exact(&mut self, n: usize, wait: Duration) -> Option<Vec<u8>> {
        let deadline = Instant::now() + wait;
        let mut got = Vec::with_capacity(n);
        let mut buf = [0u8; 512];
        while got.len() < n {
            let want = (n - got.len()).min(buf.len());
            match self.port.read(&mut buf[..want]) {
                Ok(0) => return None,
                Ok(k) => got.extend_from_slice(&buf[..k]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    if Instant::now() > deadline {
                        return None;
                    }
                    std::thread::sleep(Duration::from_millis(2));
                }
                Err(e) => panic!("{e}"),
            }
        }
        Some(got)
    }

    /// Nothing arrives within `wait` (what a host sees from a chip that ignores a frame).
    fn silent_for(&mut self, wait: Duration) -> bool {
        self.read_exact(1, wait).is_none()
    }

    /// One frame from the chip, checked: its data (after TFI D5).
    fn read_frame(&mut self) -> Vec<u8> {
        let wait = Duration::from_secs(10);
        let head = self.read_exact(5, wait).expect("no answer frame");
        assert_eq!(head[..3], [0x00, 0x00, 0xFF]);
        let len = if head[3..5] == [0xFF, 0xFF] {
            let ext = self.read_exact(3, wait).unwrap();
            assert_eq!(ext[0].wrapping_add(ext[1]).wrapping_add(ext[2]), 0);
            usize::from(u16::from_be_bytes([ext[0], ext[1]]))
        } else {
            assert_eq!(head[3].wrapping_add(head[4]), 0, "LCS");
            usize::from(head[3])
        };
        let body = self.read_exact(len + 2, wait).unwrap();
        let sum = body[..=len].iter().fold(0u8, |a, b| a.wrapping_add(*b));
        assert_eq!(sum, 0, "DCS");
        assert_eq!(body[len + 1], 0x00, "postamble");
        assert_eq!(body[0], 0xD5, "TFI");
        body[1..len].to_vec()
    }

    fn expect_ack(&mut self) {
        assert_eq!(
            self.read_exact(6, Duration::from_secs(10)).as_deref(),
            Some(&ACK[..])
        );
    }

    /// Sends a command, checks the ACK and the answer's command code; the answer's data.
    fn command(&mut self, data: &[u8]) -> Vec<u8> {
        self.write(&frame::encode(TFI_HOST, data).unwrap());
        self.expect_ack();
        let answer = self.read_frame();
        assert_eq!(answer[0], data[0] + 1, "answer code");
        answer[1..].to_vec()
    }

    /// InListPassiveTarget, one type A target.
    fn activate(&mut self) -> Vec<u8> {
        self.command(&[0x4A, 0x01, 0x00])
    }

    fn exchange(&mut self, apdu: &[u8]) -> Vec<u8> {
        let mut cmd = vec![0x40, 0x01];
        cmd.extend_from_slice(apdu);
        self.command(&cmd)
    }
}

#[test]
fn initialisation_commands_answer_as_the_manual_says() {
    let reader = Pn532Emulator::spawn(Some(card()), Pn532Options::default()).unwrap();
    let mut host = Host::connect(&reader);
    assert_eq!(host.command(&[0x02]), [0x32, 0x01, 0x06, 0x07]);
    // Diagnose, communication test: the data comes back.
    assert_eq!(host.command(b"\x00\x00libnfc"), b"\x00libnfc");
    // Registers read back what was written.
    assert_eq!(
        host.command(&[0x08, 0x63, 0x3C, 0x10, 0x63, 0x05, 0x40]),
        [0u8; 0]
    );
    assert_eq!(host.command(&[0x06, 0x63, 0x3C, 0x63, 0x05]), [0x10, 0x40]);
    assert_eq!(host.command(&[0x12, 0x14]), [0u8; 0]);
    assert_eq!(host.command(&[0x32, 0x01, 0x01]), [0u8; 0]);
    assert_eq!(host.command(&[0x32, 0x05, 0xFF, 0x01, 0x02]), [0u8; 0]);
    // GetGeneralStatus: no error, field on, no target, SAM status.
    assert_eq!(host.command(&[0x04]), [0x00, 0x01, 0x00, 0x00]);
    // A NACK gets the last answer again.
    host.write(&NACK);
    assert_eq!(host.read_frame(), [0x05, 0x00, 0x01, 0x00, 0x00]);
    // PowerDown: answered, then the chip sleeps until woken up.
    assert_eq!(host.command(&[0x16, 0xF0]), [0x00]);
    host.write(&[0x55]);
    assert_eq!(host.command(&[0x02]), [0x32, 0x01, 0x06, 0x07]);
}

#[test]
fn apdus_with_chaining_both_ways() {
    let reader = Pn532Emulator::spawn(Some(card()), Pn532Options::default()).unwrap();
    let mut host = Host::connect(&reader);
    host.command(&[0x12, 0x14]);
    let target = host.activate();
    // NbTg 1, Tg 1, ATQA 00 04, SAK 20, UID, then the ATS.
    assert_eq!(
        target[..9],
        [0x01, 0x01, 0x00, 0x04, 0x20, 0x04, 0x08, 0x65, 0x49]
    );
    let historical = iso7816_test::historical_bytes(Variant::Full);
    assert_eq!(target[10] as usize, historical.len() + 5);
    assert_eq!(target[15..], historical[..]);

    // The host sends SELECT in two parts (MI set in the target number of the first).
    let mut first = vec![0x40, 0x41];
    first.extend_from_slice(&SELECT_APP[..6]);
    assert_eq!(host.command(&first), [0x00]);
    assert_eq!(host.exchange(&SELECT_APP[6..]), [0x00, 0x90, 0x00]);
    // 1000 bytes of a file with extended Le: the chip gives 262, MI, and the rest on request.
    assert_eq!(
        host.exchange(b"\x00\xA4\x02\x0C\x02\x01\x02"),
        [0x00, 0x90, 0x00]
    );
    let first = host.exchange(b"\x00\xB0\x00\x00\x00\x03\xE8");
    assert_eq!(first[0], 0x40);
    assert_eq!(first.len(), 263);
    let mut data = first[1..].to_vec();
    loop {
        let more = host.command(&[0x40, 0x01]);
        data.extend_from_slice(&more[1..]);
        if more[0] == 0x00 {
            break;
        }
        assert_eq!(more[0], 0x40);
    }
    let file = iso7816_test::test_file(0x0102).unwrap();
    assert_eq!(data[..1000], file[..1000]);
    assert_eq!(data[1000..], [0x90, 0x00]);
    assert_eq!(reader.apdu_count(), 3);
}

#[test]
fn removal_mid_operation_and_reinsertion() {
    let reader = Pn532Emulator::spawn(Some(card()), Pn532Options::default()).unwrap();
    let mut host = Host::connect(&reader);
    host.command(&[0x12, 0x14]);
    host.activate();
    reader.remove_after_apdus(1);
    let verify = b"\x00\x20\x00\x81\x08\x31\x32\x33\x34\xFF\xFF\xFF\xFF";
    assert_eq!(host.exchange(verify), [0x00, 0x90, 0x00]);
    // The card leaves before answering: status 01, timeout.
    assert_eq!(host.exchange(SELECT_APP), [0x01]);
    assert!(!reader.is_present());
    assert_eq!(host.exchange(SELECT_APP), [0x01]);
    // Presence check as libnfc does it: a raw R(NAK) gets no answer.
    assert_eq!(host.command(&[0x42, 0xB2]), [0x01]);
    // Empty field, retries limited: no target.
    host.command(&[0x32, 0x05, 0x00, 0x01, 0x02]);
    assert_eq!(host.activate(), [0x00]);
    assert!(reader.reinsert());
    assert_eq!(host.activate()[0], 0x01);
    // The verified PIN did not survive the removal.
    assert_eq!(host.exchange(b"\x00\x20\x00\x81"), [0x00, 0x63, 0xC3]);
    // A target number never activated.
    assert_eq!(host.command(&[0x40, 0x02, 0x00, 0xA4, 0x00, 0x00]), [0x27]);
}

#[test]
fn presence_check_blocks_follow_iso_14443_4() {
    let reader = Pn532Emulator::spawn(Some(card()), Pn532Options::default()).unwrap();
    let mut host = Host::connect(&reader);
    host.command(&[0x12, 0x14]);
    host.activate();
    // Before any I-block the card's block number is 1: R(NAK) 0 gets R(ACK) 1.
    assert_eq!(host.command(&[0x42, 0xB2]), [0x00, 0xA3]);
    // After one exchange its block number is 0: R(NAK) 0 gets the last I-block again.
    assert_eq!(host.exchange(SELECT_APP), [0x00, 0x90, 0x00]);
    assert_eq!(host.command(&[0x42, 0xB2]), [0x00, 0x02, 0x90, 0x00]);
    // A raw I-block carries an APDU too.
    let mut block = vec![0x42, 0x03];
    block.extend_from_slice(SELECT_APP);
    assert_eq!(host.command(&block), [0x00, 0x03, 0x90, 0x00]);
    // S(DESELECT) is answered; InSelect brings the card back.
    assert_eq!(host.command(&[0x42, 0xC2]), [0x00, 0xC2]);
    assert_eq!(host.command(&[0x54, 0x01]), [0x00]);
    assert_eq!(host.exchange(SELECT_APP), [0x00, 0x90, 0x00]);
    // Raw frames are not chained by the chip: a 1000-byte answer overflows its buffer.
    assert_eq!(
        host.exchange(b"\x00\xA4\x02\x0C\x02\x01\x02"),
        [0x00, 0x90, 0x00]
    );
    assert_eq!(
        host.command(b"\x42\x02\x00\xB0\x00\x00\x00\x03\xE8"),
        [0x09]
    );
}

#[test]
fn malformed_frames_are_not_acknowledged_and_counted() {
    let reader = Pn532Emulator::spawn(Some(card()), Pn532Options::default()).unwrap();
    let mut host = Host::connect(&reader);
    let good = frame::encode(TFI_HOST, &[0x02]).unwrap();
    let quiet = Duration::from_millis(300);

    let mut bad_lcs = good.clone();
    bad_lcs[4] ^= 0x01;
    let mut bad_dcs = good.clone();
    let dcs = bad_dcs.len() - 2;
    bad_dcs[dcs] ^= 0x01;
    let wrong_tfi = frame::encode(0xD5, &[0x02]).unwrap();
    // Extended frame announcing 512 bytes: more than the chip buffers.
    let oversize = [0x00, 0x00, 0xFF, 0xFF, 0xFF, 0x02, 0x00, 0xFE, 0xD4];
    // LEN 1: a TFI and no command.
    let no_command = frame::encode(TFI_HOST, &[]).unwrap();
    for bad in [&bad_lcs[..], &bad_dcs, &wrong_tfi, &oversize, &no_command] {
        host.write(bad);
        assert!(host.silent_for(quiet), "answered {bad:02X?}");
    }
    // Half a frame, then nothing: dropped after a while.
    host.write(&good[..5]);
    assert!(host.silent_for(quiet));
    assert_eq!(host.command(&[0x02]), [0x32, 0x01, 0x06, 0x07]);
    assert_eq!(reader.frames_rejected(), 6);

    // Understood as a frame, not as a command: ACK, then the syntax error frame.
    for unknown in [
        &[0xFE][..],
        &[0x8C, 0x00],
        &[0x06, 0x63],
        &[0x4A, 0x05, 0x00],
    ] {
        host.write(&frame::encode(TFI_HOST, unknown).unwrap());
        host.expect_ack();
        assert_eq!(
            host.read_exact(8, Duration::from_secs(10)).as_deref(),
            Some(&ERROR_FRAME[..]),
            "{unknown:02X?}"
        );
    }
    assert_eq!(reader.frames_rejected(), 6);
}

#[test]
fn faults_seen_from_the_host() {
    let reader = Pn532Emulator::spawn(Some(card()), Pn532Options::default()).unwrap();
    let mut host = Host::connect(&reader);
    let get_firmware = frame::encode(TFI_HOST, &[0x02]).unwrap();

    reader.set_fault(Some(Pn532Fault::Silent));
    host.write(&get_firmware);
    assert!(host.silent_for(Duration::from_millis(300)));

    reader.set_fault(Some(Pn532Fault::Garbage));
    host.write(&get_firmware);
    let noise = host.read_exact(6, Duration::from_secs(10)).unwrap();
    assert_ne!(noise, ACK);

    reader.set_fault(Some(Pn532Fault::BadChecksum));
    // Drain the rest of the noise first.
    while !host.silent_for(Duration::from_millis(100)) {}
    host.write(&get_firmware);
    host.expect_ack();
    let answer = host.read_exact(13, Duration::from_secs(10)).unwrap();
    let sum = answer[5..12].iter().fold(0u8, |a, b| a.wrapping_add(*b));
    assert_ne!(sum, 0, "the data checksum is wrong");

    reader.set_fault(Some(Pn532Fault::ErrorFrame));
    host.write(&get_firmware);
    host.expect_ack();
    assert_eq!(
        host.read_exact(8, Duration::from_secs(10)).as_deref(),
        Some(&ERROR_FRAME[..])
    );

    reader.set_fault(None);
    assert_eq!(host.command(&[0x02]), [0x32, 0x01, 0x06, 0x07]);
}

#[test]
fn in_auto_poll_waits_for_a_card() {
    let reader = Pn532Emulator::spawn(None, Pn532Options::default()).unwrap();
    let mut host = Host::connect(&reader);
    // Poll forever for ISO/IEC 14443-4 A: nothing yet.
    host.write(&frame::encode(TFI_HOST, &[0x60, 0xFF, 0x01, 0x20]).unwrap());
    host.expect_ack();
    assert!(host.silent_for(Duration::from_millis(300)));
    reader.insert(card());
    let answer = host.read_frame();
    assert_eq!(answer[..4], [0x61, 0x01, 0x20, answer.len() as u8 - 4]);
    assert_eq!(answer[4], 0x01, "Tg");
    assert_eq!(host.exchange(SELECT_APP), [0x00, 0x90, 0x00]);
}

#[test]
fn a_host_ack_aborts_a_waiting_poll() {
    let poll = frame::encode(TFI_HOST, &[0x4A, 0x01, 0x00]).unwrap();
    for abort in [true, false] {
        let mut sim = Simulator::new(None, Pn532Options::default());
        sim.feed(&[0x55], None);
        // Retries FF (the default): InListPassiveTarget waits for a card.
        assert_eq!(sim.feed(&poll, None), ACK);
        assert!(sim.advance(Duration::from_secs(1)).is_empty());
        if abort {
            assert!(sim.feed(&ACK, None).is_empty());
        }
        sim.insert_card(card());
        let late = sim.advance(Duration::from_millis(10));
        if abort {
            assert!(late.is_empty(), "{late:02X?}");
        } else {
            assert_eq!(late[5..8], [0xD5, 0x4B, 0x01]);
        }
    }
}

proptest! {
    /// No byte sequence makes the chip panic; every answer it sends is made of whole frames.
    #[test]
    fn any_bytes_are_survived(chunks in proptest::collection::vec(
        proptest::collection::vec(any::<u8>(), 0..300), 0..8)) {
        let mut sim = Simulator::new(Some(card()), Pn532Options::default());
        let mut parser = frame::FrameParser::new();
        for chunk in &chunks {
            let out = sim.feed(chunk, None);
            // What the chip sends parses as frames from its side (TFI D5 is a "wrong TFI"
            // for the host parser, the ACK an ACK, the error frame TFI 7F).
            parser.push(&out);
            parser.push(&sim.advance(Duration::from_millis(300)));
            while let Some(parsed) = parser.next_frame() {
                match parsed {
                    Ok(frame::HostFrame::Ack) => {}
                    Ok(other) => prop_assert!(false, "unexpected {other:?}"),
                    Err(frame::FrameError::WrongTfi { tfi }) => prop_assert_eq!(tfi, 0xD5),
                    // The error frame: LEN 1, TFI 7F.
                    Err(frame::FrameError::TooShort { len: 1 }) => {}
                    Err(e) => prop_assert!(false, "malformed answer: {e}"),
                }
            }
        }
    }

    /// Valid commands with random parameters: always ACK, then one answer or error frame.
    #[test]
    fn random_commands_get_ack_and_one_answer(code in any::<u8>(),
        params in proptest::collection::vec(any::<u8>(), 0..40)) {
        let mut sim = Simulator::new(Some(card()), Pn532Options::default());
        sim.feed(&[0x55], None);
        let mut data = vec![code];
        data.extend_from_slice(&params);
        let out = sim.feed(&frame::encode(TFI_HOST, &data).unwrap(), None);
        // InListPassiveTarget/InAutoPoll may wait for a card: then only the ACK.
        prop_assert!(out.starts_with(&ACK), "{out:02X?}");
        let answer = &out[ACK.len()..];
        if !answer.is_empty() {
            prop_assert!(
                answer == ERROR_FRAME || answer[5] == 0xD5 || answer[8] == 0xD5,
                "{answer:02X?}"
            );
        }
    }
}
