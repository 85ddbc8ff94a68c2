//! The emulated PN532's host link: `FrameParser` on arbitrary bytes, then the whole chip
//! (`Simulator`: frames, commands, the ISO-DEP card side) on the same bytes.
//!
//! Invariants:
//!
//! 1. Nothing panics, whatever the bytes and however they are split into reads.
//! 2. The parser's result does not depend on how the stream is split: byte by byte gives the
//!    same frames and rejections as one push (the serial line may deliver any split).
//! 3. A command frame carries 1 to `MAX_DATA` bytes.
//! 4. Everything the chip sends back is whole frames: ACKs, answers (TFI D5, checksums right)
//!    and the error frame.
#![no_main]

use eid_hardware_mocks::VirtualCard;
use eid_hardware_mocks::engine::{Df, atr_t1};
use eid_hardware_mocks::pn532::Pn532Options;
use eid_hardware_mocks::pn532::chip::Simulator;
use eid_hardware_mocks::pn532::frame::{FrameError, FrameParser, HostFrame, MAX_DATA};
use libfuzzer_sys::fuzz_target;

fn parse_all(chunks: &[&[u8]]) -> Vec<Result<HostFrame, FrameError>> {
    let mut parser = FrameParser::new();
    let mut frames = Vec::new();
    for chunk in chunks {
        parser.push(chunk);
        while let Some(frame) = parser.next_frame() {
            frames.push(frame);
        }
    }
    frames
}

fuzz_target!(|input: &[u8]| {
    // 2. Split invariance.
    let whole = parse_all(&[input]);
    let bytes: Vec<&[u8]> = input.chunks(1).collect();
    assert_eq!(parse_all(&bytes), whole);

    // 3. Sizes.
    for frame in whole.iter().flatten() {
        if let HostFrame::Command(data) = frame {
            assert!((1..=MAX_DATA).contains(&data.len()));
        }
    }

    // 4. The chip, fed in reads of varying sizes (first byte of each read: its length).
    let card = VirtualCard::builder(atr_t1(b"\x80\x73\x00\x00\xC0"), Df::mf()).build();
    let mut sim = Simulator::new(Some(card), Pn532Options::default());
    let mut out = Vec::new();
    let mut rest = input;
    while let Some((&n, tail)) = rest.split_first() {
        let n = usize::from(n).min(tail.len());
        let (read, after) = tail.split_at(n);
        out.extend_from_slice(&sim.feed(read, None));
        rest = after;
    }
    let mut answers = FrameParser::new();
    answers.push(&out);
    while let Some(parsed) = answers.next_frame() {
        match parsed {
            Ok(HostFrame::Ack) => {}
            // Answers: TFI D5 is "wrong" for a host-side parser, and the error frame has LEN 1.
            Err(FrameError::WrongTfi { tfi: 0xD5 }) | Err(FrameError::TooShort { len: 1 }) => {}
            other => panic!("the chip sent {other:?}"),
        }
    }
});
