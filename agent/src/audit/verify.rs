//! Verification of an audit log: the whole chain, file by file, line by line, stopping at the
//! first break and saying what kind of break it looks like.
//!
//! The files and the head file are hostile input (whoever could edit them is who the log is
//! meant to catch): lines are read with a bound ([`MAX_LINE`]), every parse returns an error,
//! nothing is held in memory beyond one line and the next.
//!
//! How a break is named (the first one found):
//! - `missing-file`: a gap in the file numbers, the head file's log file gone, or the head
//!   file itself gone;
//! - `truncated`: the log ends before the line the head file records, or its last line is cut
//!   short;
//! - `wrong-key`: neither the first line nor the head file authenticate: the key given is not
//!   the one the log was written with (or everything was rewritten);
//! - `foreign-line`: a line the agent did not write: not an audit line at all, a line after
//!   the head's last line that does not authenticate, a line inserted between two lines that
//!   still chain to each other, or an authentic line from another chain;
//! - `edited`: a line whose MAC does not match its content (or not written in the canonical
//!   form), or a head file that does not authenticate;
//! - `deleted`: an authentic line whose sequence number skips ahead, the skipped ones appearing
//!   nowhere later;
//! - `reordered`: an authentic line out of sequence whose missing predecessor comes later, or
//!   that came earlier already.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use serde::Serialize;

use super::keys::{self, Keys};
use super::line::{Entry, GENESIS, LineError, MAX_LINE};
use super::{AuditError, HEAD_FILE, Head, file_name, log_files, parse_file_name, read_head};

/// The kind of the first break.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BreakKind {
    Edited,
    Deleted,
    Reordered,
    Truncated,
    MissingFile,
    ForeignLine,
    WrongKey,
}

impl BreakKind {
    /// The name `audit verify` prints.
    pub fn as_str(self) -> &'static str {
        match self {
            BreakKind::Edited => "edited",
            BreakKind::Deleted => "deleted",
            BreakKind::Reordered => "reordered",
            BreakKind::Truncated => "truncated",
            BreakKind::MissingFile => "missing-file",
            BreakKind::ForeignLine => "foreign-line",
            BreakKind::WrongKey => "wrong-key",
        }
    }
}

/// Where the chain first breaks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Break {
    /// The file name in the log directory.
    pub file: String,
    /// The line in that file, from 1 (0: the file as a whole).
    pub line: u64,
    pub kind: BreakKind,
    /// What was found, in plain words.
    pub detail: String,
}

/// The outcome of a verification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// No break found.
    pub intact: bool,
    /// Lines verified (before the break, if any).
    pub entries: u64,
    /// Log files in the directory.
    pub files: usize,
    pub first_seq: Option<u64>,
    pub last_seq: Option<u64>,
    /// The first break, when not intact.
    #[serde(rename = "break")]
    pub first_break: Option<Break>,
}

/// Where the log's bytes come from: a directory, or memory (tests, fuzzing).
trait Source<'a> {
    fn open(&mut self, name: &str) -> Result<Box<dyn BufRead + 'a>, AuditError>;
}

struct DirSource<'a>(&'a Path);

impl Source<'static> for DirSource<'_> {
    fn open(&mut self, name: &str) -> Result<Box<dyn BufRead + 'static>, AuditError> {
        let path = self.0.join(name);
        let file = std::fs::File::open(&path).map_err(|source| AuditError::Io { path, source })?;
        Ok(Box::new(BufReader::new(file)))
    }
}

struct MemorySource<'a>(&'a [(String, Vec<u8>)]);

impl<'a> Source<'a> for MemorySource<'a> {
    fn open(&mut self, name: &str) -> Result<Box<dyn BufRead + 'a>, AuditError> {
        let files: &'a [(String, Vec<u8>)] = self.0;
        let bytes = files
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, b)| b.as_slice())
            .unwrap_or_default();
        Ok(Box::new(bytes))
    }
}

/// Verifies the log in `dir` with the key in `key_file` (which must exist and be private).
/// `Err` when verification cannot run (no log, key unreadable, I/O error); a broken chain is an
/// `Ok` report with `intact: false`.
pub fn verify_dir(dir: &Path, key_file: &Path) -> Result<Report, AuditError> {
    let keys = keys::load(key_file, false)?;
    let meta = std::fs::metadata(dir).map_err(|source| AuditError::Dir {
        path: dir.to_owned(),
        source,
    })?;
    if !meta.is_dir() {
        return Err(AuditError::NotADir {
            path: dir.to_owned(),
        });
    }
    let names: Vec<(u32, String)> = log_files(dir)?;
    let head = read_head(dir)?;
    if names.is_empty() && head.is_none() {
        return Err(AuditError::NoLog {
            dir: dir.to_owned(),
        });
    }
    run(&mut DirSource(dir), &names, head.as_deref(), &keys)
}

/// Verifies a log held in memory: `files` by name (names that are not log file names are
/// ignored), `head` the head file's bytes. Never panics, whatever the bytes.
pub fn verify_memory(files: &[(String, Vec<u8>)], head: Option<&[u8]>, keys: &Keys) -> Report {
    let mut names: Vec<(u32, String)> = files
        .iter()
        .filter_map(|(name, _)| parse_file_name(name).map(|n| (n, name.clone())))
        .collect();
    names.sort();
    names.dedup_by_key(|(n, _)| *n);
    match run(&mut MemorySource(files), &names, head, keys) {
        Ok(report) => report,
        // Memory cannot fail to read; keep the signature total anyway.
        Err(e) => Report {
            intact: false,
            entries: 0,
            files: names.len(),
            first_seq: None,
            last_seq: None,
            first_break: Some(Break {
                file: String::new(),
                line: 0,
                kind: BreakKind::ForeignLine,
                detail: e.to_string(),
            }),
        },
    }
}

enum HeadState {
    Missing,
    Invalid,
    Valid(Head),
}

/// One line as read: where, what it parsed to, whether it ended with a newline.
struct Item {
    file: usize,
    line: u64,
    parsed: Result<Entry, LineError>,
    complete: bool,
}

/// One line's bytes as read.
struct RawLine {
    /// `None`: longer than [`MAX_LINE`] (skipped to its end, not kept).
    bytes: Option<Vec<u8>>,
    /// It ended with a newline.
    complete: bool,
}

/// Reads one line of at most [`MAX_LINE`] bytes; a longer one is skipped to its end.
/// `None` at the end of the file.
fn read_line(reader: &mut dyn BufRead) -> std::io::Result<Option<RawLine>> {
    let mut buf = Vec::new();
    let n = reader
        .take(MAX_LINE as u64 + 1)
        .read_until(b'\n', &mut buf)?;
    if n == 0 {
        return Ok(None);
    }
    if buf.last() == Some(&b'\n') {
        buf.pop();
        return Ok(Some(RawLine {
            bytes: Some(buf),
            complete: true,
        }));
    }
    if buf.len() <= MAX_LINE {
        // The end of the file without a newline.
        return Ok(Some(RawLine {
            bytes: Some(buf),
            complete: false,
        }));
    }
    // Too long: skip the rest of it, in bounded pieces.
    loop {
        let mut skip = Vec::new();
        let m = reader.take(64 * 1024).read_until(b'\n', &mut skip)?;
        if m == 0 || skip.last() == Some(&b'\n') {
            return Ok(Some(RawLine {
                bytes: None,
                complete: m != 0,
            }));
        }
    }
}

/// The lines of all files in order, one at a time, with one line of look-ahead.
struct Lines<'a, 's, S: Source<'a>> {
    source: &'s mut S,
    names: &'s [(u32, String)],
    file: usize,
    line: u64,
    reader: Option<Box<dyn BufRead + 'a>>,
    peeked: Option<Item>,
}

impl<'a, 's, S: Source<'a>> Lines<'a, 's, S> {
    fn new(source: &'s mut S, names: &'s [(u32, String)]) -> Self {
        Lines {
            source,
            names,
            file: 0,
            line: 0,
            reader: None,
            peeked: None,
        }
    }

    fn read(&mut self) -> Result<Option<Item>, AuditError> {
        loop {
            let Some((_, name)) = self.names.get(self.file) else {
                return Ok(None);
            };
            if self.reader.is_none() {
                let reader = self.source.open(name)?;
                self.reader = Some(reader);
                self.line = 0;
            }
            let Some(reader) = self.reader.as_mut() else {
                return Ok(None);
            };
            let read = read_line(reader.as_mut()).map_err(|source| AuditError::Io {
                path: name.into(),
                source,
            })?;
            match read {
                None => {
                    self.reader = None;
                    self.file += 1;
                }
                Some(RawLine { bytes, complete }) => {
                    self.line += 1;
                    let parsed = match bytes {
                        Some(bytes) => Entry::parse_line(&bytes),
                        None => Err(LineError::TooLong),
                    };
                    return Ok(Some(Item {
                        file: self.file,
                        line: self.line,
                        parsed,
                        complete,
                    }));
                }
            }
        }
    }

    fn next(&mut self) -> Result<Option<Item>, AuditError> {
        match self.peeked.take() {
            Some(item) => Ok(Some(item)),
            None => self.read(),
        }
    }

    fn peek(&mut self) -> Result<Option<&Item>, AuditError> {
        if self.peeked.is_none() {
            self.peeked = self.read()?;
        }
        Ok(self.peeked.as_ref())
    }
}

fn run<'a, S: Source<'a>>(
    source: &mut S,
    names: &[(u32, String)],
    head_bytes: Option<&[u8]>,
    keys: &Keys,
) -> Result<Report, AuditError> {
    let mut report = Report {
        intact: false,
        entries: 0,
        files: names.len(),
        first_seq: None,
        last_seq: None,
        first_break: None,
    };
    let broken = |mut report: Report, file: String, line: u64, kind, detail: String| {
        report.first_break = Some(Break {
            file,
            line,
            kind,
            detail,
        });
        Ok(report)
    };
    let head = match head_bytes.map(Head::parse) {
        None => HeadState::Missing,
        Some(Some(h)) if h.mac_valid(keys) => HeadState::Valid(h),
        Some(_) => HeadState::Invalid,
    };

    // The files: numbered 1, 2, ... without a gap, up to the one the head names.
    for (i, (n, _)) in names.iter().enumerate() {
        let expected = u32::try_from(i).unwrap_or(u32::MAX).saturating_add(1);
        if *n != expected {
            return broken(
                report,
                file_name(expected),
                0,
                BreakKind::MissingFile,
                format!(
                    "{} is missing (the files go on at {})",
                    file_name(expected),
                    file_name(*n)
                ),
            );
        }
    }
    if let HeadState::Valid(h) = &head {
        let named = parse_file_name(&h.file).unwrap_or(0);
        if names.is_empty() || named as usize > names.len() {
            return broken(
                report,
                h.file.clone(),
                0,
                BreakKind::MissingFile,
                format!("{} holds the last line ({}) but is missing", h.file, h.seq),
            );
        }
    }
    if names.is_empty() {
        return broken(
            report,
            file_name(1),
            0,
            BreakKind::MissingFile,
            format!("{HEAD_FILE} is there but no log file is"),
        );
    }

    let mut lines = Lines::new(source, names);
    let mut expected: u64 = 1;
    let mut prev = GENESIS.to_owned();
    let mut last_at: (usize, u64) = (0, 0);
    let mut mac_at_head: Option<String> = None;
    let head_seq = match &head {
        HeadState::Valid(h) => Some(h.seq),
        _ => None,
    };
    let name_of = |i: usize| names.get(i).map(|(_, n)| n.clone()).unwrap_or_default();

    while let Some(item) = lines.next()? {
        let file = name_of(item.file);
        let at = item.line;
        let entry = match item.parsed {
            _ if !item.complete => {
                return broken(
                    report,
                    file,
                    at,
                    BreakKind::Truncated,
                    "the line is cut short (it has no line end)".into(),
                );
            }
            Ok(entry) => Some(entry),
            // Parsed, but not byte for byte what the agent writes: judged like a line whose
            // MAC fails.
            Err(LineError::NotCanonical) => None,
            Err(e) => {
                let what = match e {
                    LineError::TooLong => "a line longer than any the agent writes",
                    LineError::BadMac => "a line without a MAC the agent would write",
                    _ => "not an audit line",
                };
                return broken(report, file, at, BreakKind::ForeignLine, what.into());
            }
        };
        let entry = match entry {
            Some(entry) if entry.mac_valid(keys) => entry,
            unauthentic => {
                if unauthentic.is_some()
                    && report.entries == 0
                    && matches!(head, HeadState::Invalid)
                {
                    return broken(
                        report,
                        file,
                        at,
                        BreakKind::WrongKey,
                        "neither the first line nor the head file authenticate: this is not the key the log was written with".into(),
                    );
                }
                if head_seq.is_some_and(|h| expected > h) {
                    return broken(
                        report,
                        file,
                        at,
                        BreakKind::ForeignLine,
                        format!(
                            "a line after the last one the agent recorded (line {}), and it does not authenticate",
                            expected - 1
                        ),
                    );
                }
                let inserted = match lines.peek()? {
                    Some(Item {
                        parsed: Ok(next), ..
                    }) => next.seq == expected && next.prev == prev && next.mac_valid(keys),
                    _ => false,
                };
                if inserted {
                    return broken(
                        report,
                        file,
                        at,
                        BreakKind::ForeignLine,
                        format!("a line the agent did not write, inserted before line {expected}"),
                    );
                }
                let detail = match unauthentic {
                    Some(e) => format!(
                        "line {} does not match its MAC: its content was changed",
                        e.seq
                    ),
                    None => {
                        "the line is not written the way the agent writes lines: it was changed"
                            .into()
                    }
                };
                return broken(report, file, at, BreakKind::Edited, detail);
            }
        };
        if entry.seq == expected && entry.prev == prev {
            report.entries += 1;
            report.first_seq.get_or_insert(entry.seq);
            report.last_seq = Some(entry.seq);
            prev = entry.mac.clone().unwrap_or_default();
            if head_seq == Some(entry.seq) {
                mac_at_head = Some(prev.clone());
            }
            expected += 1;
            last_at = (item.file, item.line);
            continue;
        }
        if entry.seq > expected {
            // Deleted, or moved later: look for the missing line in the rest of the log.
            let mut found = false;
            while let Some(later) = lines.next()? {
                if let Ok(e) = &later.parsed
                    && e.seq == expected
                    && e.mac_valid(keys)
                {
                    found = true;
                    break;
                }
            }
            return if found {
                broken(
                    report,
                    file,
                    at,
                    BreakKind::Reordered,
                    format!("line {} comes before line {expected}", entry.seq),
                )
            } else {
                broken(
                    report,
                    file,
                    at,
                    BreakKind::Deleted,
                    if entry.seq == expected + 1 {
                        format!("line {expected} is missing before line {}", entry.seq)
                    } else {
                        format!("lines {expected} to {} are missing", entry.seq - 1)
                    },
                )
            };
        }
        if entry.seq < expected {
            return broken(
                report,
                file,
                at,
                BreakKind::Reordered,
                format!("line {} comes again after line {}", entry.seq, expected - 1),
            );
        }
        return broken(
            report,
            file,
            at,
            BreakKind::ForeignLine,
            format!(
                "line {} is authentic but belongs to another chain",
                entry.seq
            ),
        );
    }

    match head {
        HeadState::Missing => broken(
            report,
            HEAD_FILE.into(),
            0,
            BreakKind::MissingFile,
            format!("{HEAD_FILE} is missing: nothing shows whether lines were cut off the end"),
        ),
        HeadState::Invalid => broken(
            report,
            HEAD_FILE.into(),
            0,
            BreakKind::Edited,
            format!("{HEAD_FILE} does not authenticate"),
        ),
        HeadState::Valid(h) => {
            let last = report.last_seq.unwrap_or(0);
            if h.seq > last {
                // Where the missing lines were: after the last line found, or at the start of
                // the head's file when that file lost all its lines.
                let (file, line) = match parse_file_name(&h.file) {
                    Some(n) if n as usize > last_at.0 + 1 => (h.file.clone(), 1),
                    _ => (name_of(last_at.0), last_at.1 + 1),
                };
                return broken(
                    report,
                    file,
                    line,
                    BreakKind::Truncated,
                    format!(
                        "the log ends at line {last} but the agent recorded up to line {}",
                        h.seq
                    ),
                );
            }
            if mac_at_head.as_deref() != Some(h.mac.as_str()) {
                return broken(
                    report,
                    HEAD_FILE.into(),
                    0,
                    BreakKind::Edited,
                    format!("{HEAD_FILE} names a line {} that is not this log's", h.seq),
                );
            }
            report.intact = true;
            Ok(report)
        }
    }
}
