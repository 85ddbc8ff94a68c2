//! PIN and PUK objects: reference data with a retry counter, compared in constant time.
//!
//! A PIN's value is kept padded with `FF` to eight bytes (the format of the Portuguese Citizen
//! Card and of most ISO 7816 cards with ASCII PINs); VERIFY must send exactly that many bytes.
//! The retry counter survives resets and power cycles, the "verified" flag does not.

use std::fmt;

use zeroize::Zeroizing;

/// Length PIN values are padded to.
pub const PIN_BLOCK_LEN: usize = 8;

/// Reference data with a retry counter.
pub(crate) struct Secret {
    value: Zeroizing<Vec<u8>>,
    max_tries: u8,
    tries_left: u8,
}

/// What presenting a candidate value did.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Attempt {
    /// Correct; the counter is back to its maximum.
    Match,
    /// Wrong; this many tries are left (0: now blocked).
    Mismatch(u8),
    /// Blocked before this attempt; nothing was compared.
    Blocked,
    /// Not the length of the reference data; nothing was compared or counted.
    BadLength,
}

impl Secret {
    fn new(value: &[u8], max_tries: u8) -> Self {
        // 63Cx can only show 15.
        let max_tries = max_tries.clamp(1, 15);
        Secret {
            value: pad(value),
            max_tries,
            tries_left: max_tries,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.value.len()
    }

    pub(crate) fn attempt(&mut self, candidate: &[u8]) -> Attempt {
        if self.tries_left == 0 {
            return Attempt::Blocked;
        }
        if candidate.len() != self.value.len() {
            return Attempt::BadLength;
        }
        // Constant time: the position of the first wrong digit must not show in the timing.
        if openssl::memcmp::eq(candidate, &self.value) {
            self.tries_left = self.max_tries;
            Attempt::Match
        } else {
            self.tries_left = self.tries_left.saturating_sub(1);
            Attempt::Mismatch(self.tries_left)
        }
    }

    fn unblock(&mut self) {
        self.tries_left = self.max_tries;
    }
}

/// Pads `value` with `FF` to [`PIN_BLOCK_LEN`] bytes (longer values are kept as they are).
fn pad(value: &[u8]) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(value.len().max(PIN_BLOCK_LEN)));
    out.extend_from_slice(value);
    if out.len() < PIN_BLOCK_LEN {
        out.resize(PIN_BLOCK_LEN, 0xFF);
    }
    out
}

/// Whether `block` is a well-formed new PIN: 4 to 8 ASCII digits, then `FF` padding.
pub(crate) fn is_valid_pin_block(block: &[u8]) -> bool {
    let digits = block.iter().take_while(|&&b| b != 0xFF).count();
    let (head, tail) = block.split_at(digits);
    (4..=PIN_BLOCK_LEN).contains(&digits)
        && head.iter().all(u8::is_ascii_digit)
        && tail.iter().all(|&b| b == 0xFF)
}

/// A PIN object, optionally with a PUK that RESET RETRY COUNTER accepts.
pub struct Pin {
    reference: u8,
    pub(crate) secret: Secret,
    pub(crate) puk: Option<Secret>,
    pub(crate) verified: bool,
}

impl Pin {
    /// A PIN with this reference (P2 of VERIFY, e.g. 0x81), value (ASCII digits, padded with `FF`
    /// to 8 bytes here) and number of tries (1 to 15).
    pub fn new(reference: u8, value: &[u8], max_tries: u8) -> Self {
        Pin {
            reference,
            secret: Secret::new(value, max_tries),
            puk: None,
            verified: false,
        }
    }

    /// Adds a PUK (padded like the PIN) with its own retry counter.
    #[must_use]
    pub fn with_puk(mut self, puk: &[u8], max_tries: u8) -> Self {
        self.puk = Some(Secret::new(puk, max_tries));
        self
    }

    pub fn reference(&self) -> u8 {
        self.reference
    }

    /// Tries left before the PIN blocks.
    pub fn tries_left(&self) -> u8 {
        self.secret.tries_left
    }

    pub fn max_tries(&self) -> u8 {
        self.secret.max_tries
    }

    pub fn is_blocked(&self) -> bool {
        self.secret.tries_left == 0
    }

    /// Whether the PIN was verified in the current card session.
    pub fn is_verified(&self) -> bool {
        self.verified
    }

    /// Tries left for the PUK, if there is one.
    pub fn puk_tries_left(&self) -> Option<u8> {
        self.puk.as_ref().map(|p| p.tries_left)
    }

    /// Sets or clears the verified state (for profiles with their own authentication commands).
    pub fn set_verified(&mut self, verified: bool) {
        self.verified = verified;
    }

    /// Replaces the value (already padded) and resets the counter.
    pub(crate) fn replace(&mut self, block: &[u8]) {
        self.secret.value = Zeroizing::new(block.to_vec());
        self.secret.unblock();
    }

    pub(crate) fn unblock(&mut self) {
        self.secret.unblock();
    }
}

/// Shows the reference and the counters, never the values.
impl fmt::Debug for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pin")
            .field("reference", &format_args!("{:02X}", self.reference))
            .field("tries_left", &self.tries_left())
            .field("verified", &self.verified)
            .field("puk_tries_left", &self.puk_tries_left())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_blocks_and_resets() {
        let mut s = Secret::new(b"1234", 3);
        assert_eq!(s.len(), 8);
        assert_eq!(s.attempt(b"1234"), Attempt::BadLength);
        assert_eq!(s.attempt(b"1111\xFF\xFF\xFF\xFF"), Attempt::Mismatch(2));
        assert_eq!(s.attempt(b"1234\xFF\xFF\xFF\xFF"), Attempt::Match);
        assert_eq!(s.attempt(b"1111\xFF\xFF\xFF\xFF"), Attempt::Mismatch(2));
        assert_eq!(s.attempt(b"1111\xFF\xFF\xFF\xFF"), Attempt::Mismatch(1));
        assert_eq!(s.attempt(b"1111\xFF\xFF\xFF\xFF"), Attempt::Mismatch(0));
        assert_eq!(s.attempt(b"1234\xFF\xFF\xFF\xFF"), Attempt::Blocked);
        s.unblock();
        assert_eq!(s.attempt(b"1234\xFF\xFF\xFF\xFF"), Attempt::Match);
    }

    #[test]
    fn pin_block_format() {
        assert!(is_valid_pin_block(b"1234\xFF\xFF\xFF\xFF"));
        assert!(is_valid_pin_block(b"12345678"));
        assert!(!is_valid_pin_block(b"123\xFF\xFF\xFF\xFF\xFF"));
        assert!(!is_valid_pin_block(b"12a4\xFF\xFF\xFF\xFF"));
        assert!(!is_valid_pin_block(b"1234\xFF\xFF1\xFF"));
    }
}
