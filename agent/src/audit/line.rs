//! One line of the audit log, its canonical form and its MAC.
//!
//! A line is the JSON serialisation of [`Entry`] with its fields in a fixed order and no
//! whitespace, followed by `\n`. The MAC covers the same serialisation without the `mac` field
//! (the "canonical line"), so the verifier recomputes exactly the bytes the agent authenticated.
//! A line whose bytes differ from the canonical serialisation of what it parses to (extra
//! spaces, reordered keys, escapes written differently) is not a line the agent wrote: the
//! verifier reports it even when its content would authenticate.

use serde::{Deserialize, Serialize};

use super::keys::Keys;

/// The `prev` of the first line of a log: 32 zero bytes, hex.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The longest line the verifier reads (bytes, newline excluded). The agent's lines are a few
/// hundred bytes: every free-text field is cut at [`MAX_FIELD`] characters when recorded.
pub const MAX_LINE: usize = 8192;

/// The longest free-text field (characters) the agent writes; longer values are cut.
pub const MAX_FIELD: usize = 512;

/// One record of the audit log. Field order is the line's key order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Entry {
    /// 1 for the first line of the log, +1 for each line after it, across rotated files.
    pub seq: u64,
    /// When the agent recorded it: RFC 3339, UTC.
    pub time: String,
    /// The desk's name from the policy.
    pub desk: String,
    /// The web origin that asked, when a website asked.
    pub origin: Option<String>,
    /// The reader the operation used, when one did.
    pub reader: Option<String>,
    /// The card session (128 random bits, hex), when there was one.
    pub session: Option<String>,
    /// What happened: `certificate`, `authenticate`, `sign`, `identity`, `emrtd-read`,
    /// `session-start`, `session-end`, `agent-start`, `agent-stop`, `origin-refused`...
    pub operation: String,
    /// `ok` or the API error code.
    pub result: String,
    /// The kind of document the card was (`citizen-card`, `passport`, `id-card`...).
    pub document_type: Option<String>,
    /// HMAC-SHA256 of the document number under the document key, hex: the same document
    /// gives the same value in every line, and the number cannot be read back without the key.
    pub document_hash: Option<String>,
    /// The previous line's `mac` ([`GENESIS`] for the first line).
    pub prev: String,
    /// HMAC-SHA256 of the canonical line under the chain key, hex. Absent only while it is
    /// computed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
}

/// Why bytes are not a line of the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineError {
    /// Longer than [`MAX_LINE`].
    TooLong,
    /// Not UTF-8, not JSON, or not the fields of an entry.
    NotAnEntry,
    /// An entry, but not written the way the agent writes it (spacing, key order, escapes).
    NotCanonical,
    /// The `mac` is missing or is not 64 lowercase hex digits.
    BadMac,
}

impl Entry {
    /// The canonical line: the JSON of this entry without its `mac`.
    pub fn canonical(&self) -> Result<String, serde_json::Error> {
        let mut unsigned = self.clone();
        unsigned.mac = None;
        serde_json::to_string(&unsigned)
    }

    /// The full line, without its newline.
    pub fn line(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string(self)
    }

    /// Parses one line (without its newline). Never panics; bounded by [`MAX_LINE`].
    pub fn parse_line(bytes: &[u8]) -> Result<Entry, LineError> {
        if bytes.len() > MAX_LINE {
            return Err(LineError::TooLong);
        }
        let entry: Entry = serde_json::from_slice(bytes).map_err(|_| LineError::NotAnEntry)?;
        match &entry.mac {
            Some(mac) if is_mac_hex(mac) => {}
            _ => return Err(LineError::BadMac),
        }
        match entry.line() {
            Ok(again) if again.as_bytes() == bytes => Ok(entry),
            _ => Err(LineError::NotCanonical),
        }
    }

    /// Whether `mac` is the chain key's MAC of this entry's canonical line (constant time).
    pub fn mac_valid(&self, keys: &Keys) -> bool {
        let (Some(mac), Ok(canonical)) = (&self.mac, self.canonical()) else {
            return false;
        };
        let Ok(expected) = keys.chain_mac(canonical.as_bytes()) else {
            return false;
        };
        let Ok(given) = hex::decode(mac) else {
            return false;
        };
        given.len() == expected.len() && openssl::memcmp::eq(&given, &expected)
    }
}

/// 64 lowercase hex digits (what the agent writes for a MAC).
pub fn is_mac_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// `s` cut to [`MAX_FIELD`] characters.
pub fn bounded(s: &str) -> String {
    match s.char_indices().nth(MAX_FIELD) {
        Some((end, _)) => s.get(..end).unwrap_or_default().to_owned(),
        None => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> Entry {
        Entry {
            seq: 1,
            time: "2026-11-21T10:00:00Z".into(),
            desk: "loja-lisboa-03".into(),
            origin: Some("https://desk.example".into()),
            reader: None,
            session: None,
            operation: "identity".into(),
            result: "ok".into(),
            document_type: Some("citizen-card".into()),
            document_hash: None,
            prev: GENESIS.into(),
            mac: Some("ab".repeat(32)),
        }
    }

    #[test]
    fn a_written_line_parses_back_to_itself() {
        let e = entry();
        let line = e.line().unwrap();
        assert_eq!(Entry::parse_line(line.as_bytes()).unwrap(), e);
        assert!(line.starts_with(r#"{"seq":1,"time":"#));
        assert!(line.ends_with(&format!(
            r#""prev":"{GENESIS}","mac":"{}"}}"#,
            "ab".repeat(32)
        )));
        assert!(!e.canonical().unwrap().contains("\"mac\""));
    }

    #[test]
    fn respaced_reordered_or_unknown_fields_are_refused() {
        let line = entry().line().unwrap();
        let spaced = line.replace(r#""seq":1,"#, r#""seq": 1,"#);
        assert_eq!(
            Entry::parse_line(spaced.as_bytes()),
            Err(LineError::NotCanonical)
        );
        let extra = line.replacen('{', r#"{"pin":"1234","#, 1);
        assert_eq!(
            Entry::parse_line(extra.as_bytes()),
            Err(LineError::NotAnEntry)
        );
        let no_mac = serde_json::to_string(&Entry {
            mac: None,
            ..entry()
        })
        .unwrap();
        assert_eq!(Entry::parse_line(no_mac.as_bytes()), Err(LineError::BadMac));
        let long = vec![b' '; MAX_LINE + 1];
        assert_eq!(Entry::parse_line(&long), Err(LineError::TooLong));
        assert_eq!(Entry::parse_line(b"\xff\xfe"), Err(LineError::NotAnEntry));
    }

    #[test]
    fn fields_are_cut_on_a_character_boundary() {
        let s = "é".repeat(MAX_FIELD + 10);
        assert_eq!(bounded(&s).chars().count(), MAX_FIELD);
        assert_eq!(bounded("short"), "short");
    }
}
