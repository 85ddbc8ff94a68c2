//! The audit log's reader on arbitrary bytes (whoever can edit the log files is who the log is
//! meant to catch): `audit::line::Entry::parse_line`, `audit::Head::parse` and the whole
//! verifier `audit::verify::verify_memory`.
//!
//! Input: pieces separated by a NUL byte; the first is the head file (absent when empty), the
//! others are the log files `audit-000001.jsonl`, `audit-000002.jsonl`... The key is fixed (the
//! seeds are logs written under it, so the fuzzer starts from chains that verify).
//!
//! Invariants: nothing panics; a line parses only when it is at most `MAX_LINE` bytes and is
//! exactly its own canonical serialisation, with a 64-hex-digit MAC; a head parses only when it is
//! at most 1 KiB (and, inside, re-serialises to itself); a report is intact exactly when it names no break, and then its
//! entries run from sequence 1 to `entries` with no more entries than lines.
#![no_main]

use eid_agent::audit::line::{Entry, MAX_LINE, is_mac_hex};
use eid_agent::audit::verify::verify_memory;
use eid_agent::audit::{Head, Keys, file_name};
use libfuzzer_sys::fuzz_target;

/// The key the seeds were written with.
const KEY: [u8; 32] = [0x42; 32];

fuzz_target!(|input: &[u8]| {
    let Ok(keys) = Keys::derive(&KEY) else {
        return;
    };
    let mut pieces = input.split(|b| *b == 0);
    let head = pieces.next().filter(|h| !h.is_empty());
    let files: Vec<(String, Vec<u8>)> = pieces
        .take(16)
        .enumerate()
        .map(|(i, bytes)| (file_name(i as u32 + 1), bytes.to_vec()))
        .collect();

    let mut lines = 0u64;
    for (_, bytes) in &files {
        for line in bytes.split(|b| *b == b'\n') {
            lines += 1;
            if let Ok(entry) = Entry::parse_line(line) {
                assert!(line.len() <= MAX_LINE);
                assert_eq!(entry.line().unwrap().as_bytes(), line);
                assert!(entry.mac.as_deref().is_some_and(is_mac_hex));
                let _ = entry.mac_valid(&keys);
            }
        }
    }
    if let Some(bytes) = head
        && let Some(parsed) = Head::parse(bytes)
    {
        assert!(bytes.len() <= 1024);
        let _ = parsed.mac_valid(&keys);
    }

    let report = verify_memory(&files, head, &keys);
    assert_eq!(report.intact, report.first_break.is_none());
    assert!(report.entries <= lines);
    if report.intact {
        assert!(report.entries > 0);
        assert_eq!(report.first_seq, Some(1));
        assert_eq!(report.last_seq, Some(report.entries));
    } else if report.entries > 0 {
        assert_eq!(report.last_seq, Some(report.entries));
    }
});
