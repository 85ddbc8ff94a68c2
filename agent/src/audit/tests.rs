//! Unit tests of the writer and the verifier together, on files in a temporary directory.

use std::os::unix::fs::PermissionsExt;
use std::sync::atomic::{AtomicU32, Ordering};

use super::*;

struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "eid-audit-unit-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn event<'a>(operation: &'a str, number: Option<&'a str>) -> AuditEvent<'a> {
    AuditEvent {
        origin: Some("https://desk.example"),
        reader: Some("Virtual PCD 00 00"),
        session: Some("00112233445566778899aabbccddeeff"),
        operation,
        result: "ok",
        document: number.map(|number| Document {
            kind: "citizen-card",
            number,
        }),
    }
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn lines_chain_across_rotation_and_reopening() {
    let tmp = TempDir::new();
    let dir = tmp.0.join("audit");
    let key = tmp.0.join("keys/audit.key");
    let log = AuditLog::open(&dir, &key, "desk-1", 700).unwrap();
    for i in 0..6 {
        log.record(event("identity", Some(&format!("DOC{i}"))))
            .unwrap();
    }
    // One writer at a time.
    let err = AuditLog::open(&dir, &key, "desk-1", 700).unwrap_err();
    assert_eq!(err.code(), "audit-busy", "{err}");
    drop(log);
    // The chain resumes where it stopped.
    let log = AuditLog::open(&dir, &key, "desk-1", 700).unwrap();
    log.record(event("agent-stop", None)).unwrap();

    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&key), 0o600);
    assert_eq!(fs::read(&key).unwrap().len(), 32);
    let files = log_files(&dir).unwrap();
    assert!(files.len() >= 3, "rotation at 700 bytes: {files:?}");
    for (_, name) in &files {
        assert_eq!(mode(&dir.join(name)), 0o600);
        assert!(fs::metadata(dir.join(name)).unwrap().len() <= 700);
    }
    assert_eq!(mode(&dir.join(HEAD_FILE)), 0o600);
    let report = verify_dir(&dir, &key).unwrap();
    assert!(report.intact, "{report:?}");
    assert_eq!(
        (report.entries, report.first_seq, report.last_seq),
        (7, Some(1), Some(7))
    );
    // Numbers are only there as keyed hashes, equal for the same document.
    let mut all = String::new();
    for (_, name) in &files {
        all.push_str(&fs::read_to_string(dir.join(name)).unwrap());
    }
    assert!(!all.contains("DOC"), "{all}");
    let keys = keys::load(&key, false).unwrap();
    assert!(all.contains(&keys.document_hash("doc3").unwrap()));
}

#[test]
fn a_key_others_can_read_or_too_short_is_refused() {
    let tmp = TempDir::new();
    let key = tmp.0.join("audit.key");
    fs::write(&key, [5u8; 32]).unwrap();
    fs::set_permissions(&key, fs::Permissions::from_mode(0o640)).unwrap();
    let err = AuditLog::open(&tmp.0.join("a"), &key, "d", 1000).unwrap_err();
    assert_eq!(err.code(), "audit-key-permissions", "{err}");
    fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).unwrap();
    fs::write(&key, [5u8; 16]).unwrap();
    let err = AuditLog::open(&tmp.0.join("a"), &key, "d", 1000).unwrap_err();
    assert_eq!(err.code(), "audit-key-invalid", "{err}");
    std::os::unix::fs::symlink("/etc/hostname", tmp.0.join("link.key")).unwrap();
    let err = AuditLog::open(&tmp.0.join("a"), &tmp.0.join("link.key"), "d", 1000).unwrap_err();
    assert_eq!(err.code(), "audit-key-unreadable", "{err}");
    // verify never creates a key.
    let err = verify_dir(&tmp.0.join("a"), &tmp.0.join("none.key")).unwrap_err();
    assert_eq!(err.code(), "audit-key-missing");
    assert!(!tmp.0.join("none.key").exists());
}

#[test]
fn open_refuses_to_continue_a_log_it_cannot_trust() {
    let tmp = TempDir::new();
    let dir = tmp.0.join("audit");
    let key = tmp.0.join("audit.key");
    let log = AuditLog::open(&dir, &key, "desk", 1 << 20).unwrap();
    for _ in 0..3 {
        log.record(event("certificate", None)).unwrap();
    }
    drop(log);
    let other = tmp.0.join("other.key");
    let err = AuditLog::open(&dir, &other, "desk", 1 << 20).unwrap_err();
    assert_eq!(err.code(), "audit-wrong-key");

    // Cut the last line: the head file records more than there is.
    let file = dir.join(file_name(1));
    let text = fs::read_to_string(&file).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines.pop();
    fs::write(&file, format!("{}\n", lines.join("\n"))).unwrap();
    let err = AuditLog::open(&dir, &key, "desk", 1 << 20).unwrap_err();
    assert_eq!(err.code(), "audit-tampered", "{err}");

    // A torn last line.
    fs::write(&file, &text[..text.len() - 5]).unwrap();
    let err = AuditLog::open(&dir, &key, "desk", 1 << 20).unwrap_err();
    assert_eq!(err.code(), "audit-damaged", "{err}");
}

/// A log in memory: the files' lines, and the head file.
fn memory_log(keys: &Keys, n: u64, per_file: u64) -> (Vec<(String, Vec<u8>)>, Vec<u8>) {
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    let mut prev = GENESIS.to_owned();
    let mut last = String::new();
    for seq in 1..=n {
        let number = u32::try_from((seq - 1) / per_file + 1).unwrap();
        let mut entry = Entry {
            seq,
            time: "2026-11-21T10:00:00Z".into(),
            desk: "desk".into(),
            origin: None,
            reader: None,
            session: None,
            operation: "agent-start".into(),
            result: "ok".into(),
            document_type: None,
            document_hash: None,
            prev: prev.clone(),
            mac: None,
        };
        let mac = hex::encode(
            keys.chain_mac(entry.canonical().unwrap().as_bytes())
                .unwrap(),
        );
        entry.mac = Some(mac.clone());
        prev = mac;
        if files.len() < number as usize {
            files.push((file_name(number), Vec::new()));
        }
        let file = files.last_mut().unwrap();
        file.1.extend_from_slice(entry.line().unwrap().as_bytes());
        file.1.push(b'\n');
        last = file.0.clone();
    }
    let head = Head::signed(last, n, prev, keys).unwrap();
    (files, serde_json::to_vec(&head).unwrap())
}

fn kind(
    files: &[(String, Vec<u8>)],
    head: Option<&[u8]>,
    keys: &Keys,
) -> Option<(BreakKind, String, u64)> {
    let report = verify::verify_memory(files, head, keys);
    assert_eq!(report.intact, report.first_break.is_none());
    report.first_break.map(|b| (b.kind, b.file, b.line))
}

fn lines_of(file: &[u8]) -> Vec<Vec<u8>> {
    file.split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}

fn join(lines: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for l in lines {
        out.extend_from_slice(l);
        out.push(b'\n');
    }
    out
}

#[test]
fn each_kind_of_tampering_is_named() {
    let keys = Keys::derive(&[9u8; 32]).unwrap();
    let (files, head) = memory_log(&keys, 12, 5);
    assert_eq!(kind(&files, Some(&head), &keys), None);
    let f1 = file_name(1);
    let f2 = file_name(2);

    let mut edited = files.clone();
    let text = String::from_utf8(edited[1].1.clone()).unwrap();
    edited[1].1 = text.replacen("agent-start", "agent-stop!", 1).into_bytes();
    assert_eq!(
        kind(&edited, Some(&head), &keys),
        Some((BreakKind::Edited, f2.clone(), 1))
    );

    let mut deleted = files.clone();
    let mut lines = lines_of(&deleted[0].1);
    lines.remove(2);
    deleted[0].1 = join(&lines);
    assert_eq!(
        kind(&deleted, Some(&head), &keys),
        Some((BreakKind::Deleted, f1.clone(), 3))
    );

    let mut swapped = files.clone();
    let mut lines = lines_of(&swapped[0].1);
    lines.swap(1, 2);
    swapped[0].1 = join(&lines);
    assert_eq!(
        kind(&swapped, Some(&head), &keys),
        Some((BreakKind::Reordered, f1.clone(), 2))
    );

    let mut inserted = files.clone();
    let mut lines = lines_of(&inserted[0].1);
    let mut forged = Entry::parse_line(&lines[1]).unwrap();
    forged.seq = 3;
    forged.operation = "sign".into();
    lines.insert(2, forged.line().unwrap().into_bytes());
    inserted[0].1 = join(&lines);
    assert_eq!(
        kind(&inserted, Some(&head), &keys),
        Some((BreakKind::ForeignLine, f1.clone(), 3))
    );

    let missing: Vec<_> = files.iter().filter(|(n, _)| *n != f2).cloned().collect();
    assert_eq!(
        kind(&missing, Some(&head), &keys),
        Some((BreakKind::MissingFile, f2.clone(), 0))
    );
    let newest_gone: Vec<_> = files[..2].to_vec();
    assert_eq!(
        kind(&newest_gone, Some(&head), &keys).map(|k| k.0),
        Some(BreakKind::MissingFile)
    );
    assert_eq!(
        kind(&files, None, &keys).map(|k| k.0),
        Some(BreakKind::MissingFile)
    );

    let mut truncated = files.clone();
    let mut lines = lines_of(&truncated[2].1);
    lines.pop();
    truncated[2].1 = join(&lines);
    assert_eq!(
        kind(&truncated, Some(&head), &keys),
        Some((BreakKind::Truncated, file_name(3), 2))
    );
    let mut cut = files.clone();
    let len = cut[2].1.len();
    cut[2].1.truncate(len - 10);
    assert_eq!(
        kind(&cut, Some(&head), &keys),
        Some((BreakKind::Truncated, file_name(3), 2))
    );

    let mut appended = files.clone();
    let lines = lines_of(&appended[2].1);
    let mut forged = Entry::parse_line(lines.last().unwrap()).unwrap();
    forged.prev = forged.mac.clone().unwrap();
    forged.seq = 13;
    appended[2]
        .1
        .extend_from_slice(forged.line().unwrap().as_bytes());
    appended[2].1.push(b'\n');
    assert_eq!(
        kind(&appended, Some(&head), &keys),
        Some((BreakKind::ForeignLine, file_name(3), 3))
    );
    let mut garbage = files.clone();
    garbage[2].1.extend_from_slice(b"hello\n");
    assert_eq!(
        kind(&garbage, Some(&head), &keys),
        Some((BreakKind::ForeignLine, file_name(3), 3))
    );

    let other = Keys::derive(&[10u8; 32]).unwrap();
    assert_eq!(
        kind(&files, Some(&head), &other),
        Some((BreakKind::WrongKey, f1.clone(), 1))
    );

    // The same log re-chained under another key does not pass either.
    let (forged_files, forged_head) = memory_log(&other, 12, 5);
    assert_eq!(
        kind(&forged_files, Some(&forged_head), &keys).map(|k| k.0),
        Some(BreakKind::WrongKey)
    );
}

#[test]
fn hostile_bytes_never_panic() {
    let keys = Keys::derive(&[9u8; 32]).unwrap();
    let huge = vec![b'x'; line::MAX_LINE * 3];
    for bytes in [
        &b""[..],
        b"\n\n\n",
        b"{}\n",
        b"\xff\xfe\n",
        &huge,
        b"{\"seq\":18446744073709551615}\n",
    ] {
        let files = vec![(file_name(1), bytes.to_vec())];
        let report = verify::verify_memory(&files, Some(b"{}"), &keys);
        assert!(!report.intact);
        let _ = Head::parse(bytes);
    }
}

/// The fuzz target's seeds (written by an independent Python writer of the format, under the
/// fuzz key 0x42 x 32) are what the fuzz target says they are: logs that verify, or break as
/// named. This keeps the seeds useful, and checks the line format against a second writer.
#[test]
fn the_fuzz_seeds_are_logs_of_the_documented_format() {
    let seeds = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds/audit_line");
    let keys = Keys::derive(&[0x42; 32]).unwrap();
    let split = |name: &str| {
        let input = fs::read(seeds.join(name)).unwrap();
        let mut pieces = input.split(|b| *b == 0);
        let head = pieces.next().filter(|h| !h.is_empty()).map(<[u8]>::to_vec);
        let files: Vec<(String, Vec<u8>)> = pieces
            .enumerate()
            .map(|(i, b)| (file_name(u32::try_from(i).unwrap() + 1), b.to_vec()))
            .collect();
        (files, head)
    };
    for (seed, entries, files) in [
        ("seed-one-file.bin", 8, 1),
        ("seed-rotated.bin", 8, 3),
        ("seed-short.bin", 2, 1),
    ] {
        let (f, head) = split(seed);
        let report = verify::verify_memory(&f, head.as_deref(), &keys);
        assert!(report.intact, "{seed}: {report:?}");
        assert_eq!((report.entries, report.files), (entries, files), "{seed}");
    }
    let (f, head) = split("seed-edited.bin");
    let report = verify::verify_memory(&f, head.as_deref(), &keys);
    assert_eq!(report.first_break.map(|b| b.kind), Some(BreakKind::Edited));
    let (f, head) = split("seed-no-head.bin");
    let report = verify::verify_memory(&f, head.as_deref(), &keys);
    assert_eq!(
        report.first_break.map(|b| b.kind),
        Some(BreakKind::MissingFile)
    );
}
