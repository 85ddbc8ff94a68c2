//! The client side of the Assuan protocol, as far as a pinentry needs it: sans-IO.
//!
//! Assuan is line based. The client sends commands (`SETDESC text`, `GETPIN`), the server answers
//! each with any number of data (`D ...`), status (`S ...`) and comment (`# ...`) lines, then one
//! final `OK [text]` or `ERR <code> [text]`; it may also ask the client something back
//! (`INQUIRE keyword`), which a pinentry client answers with `CAN`. Data and command arguments
//! are percent-escaped: `%`, CR and LF at least (`%25`, `%0D`, `%0A`). Error codes are
//! libgpg-error values: the error source in bits 24..31, the code in the low 16 bits.
//!
//! Everything here treats the server's bytes as hostile: bounded, returning errors, never
//! panicking (fuzzed by `fuzz/fuzz_targets/assuan.rs`).

use zeroize::Zeroizing;

/// The longest line accepted from the server, newline excluded. Assuan's own limit is 1000
/// bytes; a little slack for servers that exceed it, and a bound for those that never stop.
pub const MAX_LINE: usize = 4096;

/// The longest command line sent, newline excluded (libassuan's `ASSUAN_LINELENGTH` is 1002
/// bytes with CR LF). Longer arguments are shortened with an ellipsis.
pub const MAX_COMMAND_LINE: usize = 1000;

/// The most secret bytes (a PIN, a CAN) accepted in the data lines of one answer. Pinentry
/// programs accept passphrases of up to 2048 characters.
pub const MAX_SECRET: usize = 2048;

/// libgpg-error codes a pinentry answers with (`err & 0xFFFF`).
pub mod code {
    /// `GPG_ERR_TIMEOUT`: the pinentry's own timeout (`SETTIMEOUT`) passed.
    pub const TIMEOUT: u16 = 62;
    /// `GPG_ERR_CANCELED`: the Cancel button, or the window closed.
    pub const CANCELED: u16 = 99;
    /// `GPG_ERR_NOT_CONFIRMED`: the third button (`SETNOTOK`) of `CONFIRM`; before pinentry
    /// 0.7.6, which added `SETNOTOK`, also the Cancel button.
    pub const NOT_CONFIRMED: u16 = 114;
    /// `GPG_ERR_FULLY_CANCELED`: cancelled, and the caller should not ask again.
    pub const FULLY_CANCELED: u16 = 198;
}

/// A malformed line from the server.
#[derive(thiserror::Error, Clone, PartialEq, Eq, Debug)]
pub enum AssuanError {
    #[error("line longer than {MAX_LINE} bytes")]
    LineTooLong,
    #[error("unknown response line")]
    UnknownResponse,
    #[error("ERR line without a numeric error code")]
    BadErrorCode,
    #[error("bad percent escape in data")]
    BadEscape,
    #[error("more than {MAX_SECRET} bytes of data")]
    TooMuchData,
}

/// One line from the server.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Response<'a> {
    /// `OK [text]`: the command succeeded (for the greeting: the server is ready).
    Ok,
    /// `ERR <code> [text]`.
    Err(ServerError),
    /// `D <escaped data>`; decode with [`decode_data`].
    Data(&'a [u8]),
    /// `S <keyword> [args]`: informational.
    Status,
    /// `# text`: ignored.
    Comment,
    /// `INQUIRE <keyword> [args]`: the server asks the client for data.
    Inquire,
}

/// An `ERR` answer.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ServerError {
    /// The full libgpg-error value.
    pub value: u32,
    /// The server's description, lossily decoded and cut to 200 characters, for messages.
    pub message: String,
}

impl ServerError {
    /// The error code without its source (`value & 0xFFFF`).
    pub fn code(&self) -> u16 {
        (self.value & 0xFFFF) as u16
    }
}

impl std::fmt::Display for ServerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.message.is_empty() {
            write!(f, "error {}", self.value)
        } else {
            write!(f, "{} (error {})", self.message, self.value)
        }
    }
}

/// Parses one line (without its LF; a trailing CR is tolerated).
pub fn parse_response(line: &[u8]) -> Result<Response<'_>, AssuanError> {
    if line.len() > MAX_LINE {
        return Err(AssuanError::LineTooLong);
    }
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let (word, rest) = match line.iter().position(|&b| b == b' ') {
        Some(i) => (line.get(..i).unwrap_or_default(), line.get(i + 1..)),
        None => (line, None),
    };
    match word {
        b"OK" => Ok(Response::Ok),
        b"ERR" => parse_error(rest.unwrap_or_default()).map(Response::Err),
        b"D" => rest.map(Response::Data).ok_or(AssuanError::UnknownResponse),
        b"S" if rest.is_some_and(|r| !r.is_empty()) => Ok(Response::Status),
        b"INQUIRE" if rest.is_some_and(|r| !r.is_empty()) => Ok(Response::Inquire),
        _ if line.first() == Some(&b'#') => Ok(Response::Comment),
        _ => Err(AssuanError::UnknownResponse),
    }
}

fn parse_error(rest: &[u8]) -> Result<ServerError, AssuanError> {
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || digits > 10 {
        return Err(AssuanError::BadErrorCode);
    }
    let (number, text) = rest.split_at(digits);
    let value = std::str::from_utf8(number)
        .ok()
        .and_then(|n| n.parse::<u32>().ok())
        .ok_or(AssuanError::BadErrorCode)?;
    let text = match text {
        [] => &[][..],
        [b' ', text @ ..] => text,
        _ => return Err(AssuanError::BadErrorCode),
    };
    let message: String = String::from_utf8_lossy(text)
        .chars()
        .filter(|c| !c.is_control())
        .take(200)
        .collect();
    Ok(ServerError { value, message })
}

/// Percent-decodes the payload of a `D` line and appends it to `out`. `out` never grows past
/// [`MAX_SECRET`] bytes, and it never reallocates when created with [`secret_buffer`], so no
/// copy of a PIN is left behind in freed memory.
pub fn decode_data(data: &[u8], out: &mut Zeroizing<Vec<u8>>) -> Result<(), AssuanError> {
    let mut bytes = data.iter();
    while let Some(&b) = bytes.next() {
        let byte = if b == b'%' {
            let hi = bytes.next().and_then(|&h| hex_value(h));
            let lo = bytes.next().and_then(|&l| hex_value(l));
            match (hi, lo) {
                (Some(hi), Some(lo)) => hi << 4 | lo,
                _ => return Err(AssuanError::BadEscape),
            }
        } else {
            b
        };
        if out.len() >= MAX_SECRET {
            return Err(AssuanError::TooMuchData);
        }
        out.push(byte);
    }
    Ok(())
}

/// An empty buffer with room for [`MAX_SECRET`] bytes, wiped when dropped.
pub fn secret_buffer() -> Zeroizing<Vec<u8>> {
    Zeroizing::new(Vec::with_capacity(MAX_SECRET))
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// The command line `verb arg` (no newline), with `arg` percent-escaped: `%`, every control
/// character (CR and LF among them) and DEL. When the line would be longer than
/// [`MAX_COMMAND_LINE`], `arg` is cut at a character boundary and ends with "…".
pub fn command(verb: &str, arg: &str) -> String {
    let mut line = String::with_capacity(verb.len() + 1 + arg.len().min(MAX_COMMAND_LINE));
    line.push_str(verb);
    if arg.is_empty() {
        return line;
    }
    line.push(' ');
    const ELLIPSIS: &str = "…";
    let budget = MAX_COMMAND_LINE.saturating_sub(line.len());
    let pieces = arg.chars().map(|c| {
        let mut piece = [0u8; 4];
        let len = if c == '%' || c.is_ascii_control() {
            escape_byte(c as u8, &mut piece)
        } else if c.is_control() {
            // C1 controls: not on screen either.
            ' '.encode_utf8(&mut piece).len()
        } else {
            c.encode_utf8(&mut piece).len()
        };
        (piece, len)
    });
    let full: usize = pieces.clone().map(|(_, len)| len).sum();
    let room = if full <= budget {
        budget
    } else {
        budget.saturating_sub(ELLIPSIS.len())
    };
    let mut escaped = Vec::with_capacity(full.min(budget));
    for (piece, len) in pieces {
        if escaped.len() + len > room {
            break;
        }
        escaped.extend_from_slice(piece.get(..len).unwrap_or_default());
    }
    // Whole characters and ASCII escapes only: always UTF-8.
    line.push_str(&String::from_utf8_lossy(&escaped));
    if full > budget {
        line.push_str(ELLIPSIS);
    }
    line
}

/// Writes `%XX` for `b` into `buf`; returns 3.
fn escape_byte(b: u8, buf: &mut [u8; 4]) -> usize {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    *buf = [
        b'%',
        HEX.get(usize::from(b >> 4)).copied().unwrap_or(b'0'),
        HEX.get(usize::from(b & 15)).copied().unwrap_or(b'0'),
        0,
    ];
    3
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses() {
        assert_eq!(parse_response(b"OK"), Ok(Response::Ok));
        assert_eq!(parse_response(b"OK Pleased to meet you"), Ok(Response::Ok));
        assert_eq!(parse_response(b"OK\r"), Ok(Response::Ok));
        assert_eq!(parse_response(b"D 12%2534"), Ok(Response::Data(b"12%2534")));
        assert_eq!(parse_response(b"D "), Ok(Response::Data(b"")));
        assert_eq!(
            parse_response(b"S ERROR curses.isatty 83918950 "),
            Ok(Response::Status)
        );
        assert_eq!(parse_response(b"# hello"), Ok(Response::Comment));
        assert_eq!(parse_response(b"#"), Ok(Response::Comment));
        assert_eq!(parse_response(b"INQUIRE QUALITY 12"), Ok(Response::Inquire));
        let Ok(Response::Err(e)) = parse_response(b"ERR 83886179 Operation cancelled <Pinentry>")
        else {
            panic!()
        };
        assert_eq!(e.value, 83886179);
        assert_eq!(e.code(), code::CANCELED);
        assert_eq!(e.message, "Operation cancelled <Pinentry>");
        let Ok(Response::Err(e)) = parse_response(b"ERR 83886194") else {
            panic!()
        };
        assert_eq!(e.code(), code::NOT_CONFIRMED);
        for bad in [
            &b""[..],
            b"D",
            b"OKAY",
            b"ERR",
            b"ERR x",
            b"ERR 12x",
            b"ERR 99999999999",
            b"S",
            b"S ",
            b"INQUIRE",
            b"END",
            b"ok",
        ] {
            assert!(
                parse_response(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        assert_eq!(
            parse_response(&vec![b'#'; MAX_LINE + 1]),
            Err(AssuanError::LineTooLong)
        );
    }

    #[test]
    fn data_decoding() {
        let mut out = secret_buffer();
        decode_data(b"1%252%0A3%0d", &mut out).unwrap();
        decode_data(b"+x", &mut out).unwrap();
        assert_eq!(&out[..], b"1%2\n3\r+x");
        for bad in [&b"%"[..], b"%2", b"%zz", b"%2g"] {
            assert_eq!(
                decode_data(bad, &mut secret_buffer()),
                Err(AssuanError::BadEscape)
            );
        }
        let mut out = secret_buffer();
        let ptr = out.as_ptr();
        decode_data(&[b'7'; MAX_SECRET], &mut out).unwrap();
        assert_eq!(decode_data(b"7", &mut out), Err(AssuanError::TooMuchData));
        assert_eq!(out.as_ptr(), ptr, "the secret buffer was reallocated");
    }

    #[test]
    fn commands() {
        assert_eq!(command("GETPIN", ""), "GETPIN");
        assert_eq!(
            command("SETDESC", "a%b\r\nc\td"),
            "SETDESC a%25b%0D%0Ac%09d"
        );
        assert_eq!(command("SETOK", "Allow once"), "SETOK Allow once");
        let long = "é".repeat(2000);
        let line = command("SETDESC", &long);
        assert!(line.len() <= MAX_COMMAND_LINE, "{}", line.len());
        assert!(line.ends_with('…'));
        let exact = "x".repeat(MAX_COMMAND_LINE - "SETDESC ".len());
        assert_eq!(command("SETDESC", &exact).len(), MAX_COMMAND_LINE);
        assert!(!command("SETDESC", &exact).ends_with('…'));
        let over = "x".repeat(MAX_COMMAND_LINE - "SETDESC ".len() + 1);
        assert!(command("SETDESC", &over).ends_with('…'));
        assert!(command("SETDESC", &over).len() <= MAX_COMMAND_LINE);
    }
}
