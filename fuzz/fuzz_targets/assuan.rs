//! The pinentry client's Assuan pieces on arbitrary bytes (what a pinentry program sends) and
//! arbitrary text (what ends up in a dialog): `prompt::assuan::parse_response`, `decode_data`,
//! `command`.
//!
//! Invariants: a response line parses only up to `MAX_LINE` bytes; an `ERR` carries the number
//! written in the line; decoding data never grows the secret buffer past `MAX_SECRET` nor
//! reallocates it, and `%XX`-free data decodes to itself; a command line is at most
//! `MAX_COMMAND_LINE` bytes, has no control character (no line break can end it early), and
//! starts with the verb.
#![no_main]

use eid_agent::prompt::assuan::{
    MAX_COMMAND_LINE, MAX_LINE, MAX_SECRET, Response, command, decode_data, parse_response,
    secret_buffer,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    match parse_response(input) {
        Ok(Response::Err(e)) => {
            assert!(input.starts_with(b"ERR "));
            let digits: Vec<u8> = input[4..]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .copied()
                .collect();
            assert_eq!(
                std::str::from_utf8(&digits).unwrap().parse::<u32>().ok(),
                Some(e.value)
            );
            assert!(e.message.chars().count() <= 200);
        }
        Ok(Response::Data(data)) => {
            assert!(input.starts_with(b"D "));
            let mut out = secret_buffer();
            let before = out.as_ptr();
            let decoded = decode_data(data, &mut out);
            assert!(out.len() <= MAX_SECRET);
            assert_eq!(out.as_ptr(), before, "the secret buffer moved");
            if decoded.is_ok() && !data.contains(&b'%') {
                assert_eq!(&out[..], data);
            }
        }
        Ok(_) => assert!(input.len() <= MAX_LINE),
        Err(_) => {}
    }

    let text = String::from_utf8_lossy(input);
    let line = command("SETDESC", &text);
    assert!(line.len() <= MAX_COMMAND_LINE, "{} bytes", line.len());
    assert!(line.starts_with("SETDESC"));
    assert!(
        !line.chars().any(char::is_control),
        "control character in {line:?}"
    );
});
