//! PIN entry on a reader's keypad (PC/SC part 10 FEATURE_VERIFY_PIN_DIRECT), with the Citizen
//! Card in-process behind a keypad reader played by the test: the reader takes the
//! PIN_VERIFY_STRUCTURE the agent builds, puts the digits the "user" typed into the VERIFY APDU
//! it carries (ASCII, left-justified in the FF-padded block, as the structure says) and sends it
//! to the card. The agent never sees the digits and never shows its own PIN dialog.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use eid_agent::workflows::{self, PinAsk};
use eid_card::pteid::{Pin, PinRef, PinStatus, PteidCard};
use eid_card::{Error, ReaderCapabilities, Transport};
use eid_tests::{InProcessRig, Rig, vpcd_like};

const VERIFY_PIN_DIRECT: u32 = 0x4200_3136;

/// A keypad reader around any transport; `typed` is what the user keys in.
struct KeypadReader {
    inner: Box<dyn Transport>,
    typed: &'static str,
    structures: Vec<Vec<u8>>,
}

impl Transport for KeypadReader {
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, Error> {
        self.inner.transmit(command)
    }
    fn atr(&self) -> &[u8] {
        self.inner.atr()
    }
    fn reader_name(&self) -> &str {
        "Test keypad reader"
    }
    fn capabilities(&self) -> ReaderCapabilities {
        let mut caps = self.inner.capabilities();
        caps.pinpad.verify_pin_direct = Some(VERIFY_PIN_DIRECT);
        caps
    }
    fn transaction(&mut self) -> Result<Box<dyn Transport + '_>, Error> {
        Ok(Box::new(eid_card::transport::Reborrow(self)))
    }
    fn reconnect(&mut self, reset: bool) -> Result<(), Error> {
        self.inner.reconnect(reset)
    }
    fn control(&mut self, code: u32, input: &[u8]) -> Result<Vec<u8>, Error> {
        assert_eq!(code, VERIFY_PIN_DIRECT);
        self.structures.push(input.to_vec());
        // PIN_VERIFY_STRUCTURE: 19 bytes of parameters, then the APDU (its ulDataLength at 15).
        let len = u32::from_le_bytes(input[15..19].try_into().unwrap()) as usize;
        let mut apdu = input[19..19 + len].to_vec();
        assert_eq!(input[2] & 0x03, 0x02, "ASCII digits");
        let (min, max) = (input[6], input[5]);
        assert!((min..=max).contains(&(self.typed.len() as u8)));
        // Left-justified in the block that follows CLA INS P1 P2 Lc.
        apdu[5..5 + self.typed.len()].copy_from_slice(self.typed.as_bytes());
        let response = self.inner.transmit(&apdu)?;
        Ok(response[response.len() - 2..].to_vec())
    }
}

fn keypad_card(typed: &'static str) -> (InProcessRig, KeypadReader) {
    let card = eid_hardware_mocks::pteid::cc1::cc1_default().unwrap();
    let mut rig = InProcessRig::new(card.card, vpcd_like());
    let inner = rig.connect().unwrap();
    (
        rig,
        KeypadReader {
            inner,
            typed,
            structures: Vec::new(),
        },
    )
}

fn never_asked(_: &PinAsk) -> Result<Pin, Error> {
    panic!("the agent's PIN dialog was shown although the reader has a keypad")
}

#[test]
fn keypad_pin_verifies_without_the_agent_seeing_it() {
    let (_rig, mut reader) = keypad_card("1111");
    {
        let mut card = PteidCard::open(&mut reader).unwrap();
        assert!(card.reader_has_pinpad());
        workflows::verify_pin(&mut card, PinRef::Auth, &mut never_asked).unwrap();
        assert_eq!(card.pin_status(PinRef::Auth).unwrap(), PinStatus::Verified);
    }
    // The structure the agent built carries the VERIFY header and an FF block: no digits.
    let structure = &reader.structures[0];
    assert_eq!(&structure[19..24], &[0x00, 0x20, 0x00, 0x81, 0x08]);
    assert_eq!(&structure[24..32], &[0xFF; 8]);
}

#[test]
fn wrong_keypad_pin_reports_retries_left_once() {
    let (_rig, mut reader) = keypad_card("9999");
    {
        let mut card = PteidCard::open(&mut reader).unwrap();
        let e = workflows::verify_pin(&mut card, PinRef::Auth, &mut never_asked).unwrap_err();
        assert!(matches!(e, Error::WrongPin { retries_left: 2 }), "{e:?}");
    }
    assert_eq!(
        reader.structures.len(),
        1,
        "tried once, never again by itself"
    );
}

#[test]
fn without_a_keypad_the_dialog_asks() {
    let card = eid_hardware_mocks::pteid::cc1::cc1_default().unwrap();
    let mut rig = InProcessRig::new(card.card, vpcd_like());
    let mut transport = rig.connect().unwrap();
    let mut card = PteidCard::open(&mut *transport).unwrap();
    assert!(!card.reader_has_pinpad());
    let mut asked = Vec::new();
    workflows::verify_pin(&mut card, PinRef::Auth, &mut |a: &PinAsk| {
        asked.push(a.retries_left);
        Pin::new("1111")
    })
    .unwrap();
    assert_eq!(asked, vec![Some(3)]);
}
