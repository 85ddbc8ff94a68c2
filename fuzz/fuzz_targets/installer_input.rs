//! What the installer and `eid-agent doctor` read from the machine, on arbitrary text: `certutil
//! -L` listings (`trust::parse_list`) and PEM output (`trust::parse_pem_certs`), Chromium/Chrome
//! managed policy files (`browser_policy::parse`, `browser_policy::ca_certificates`), the install
//! manifest (`install::Manifest::parse`), `/etc/group` lines (`install::parse_group_line`) and
//! `--autostart` values.
//!
//! Invariants: nothing panics; an entry `parse_list` accepts has a non-empty nickname and is ours
//! exactly when the nickname has our prefix; a parsed group line's gid is the number written in
//! its third field.
#![no_main]

use std::path::Path;

use eid_installer::{browser_policy, install, trust};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let Ok(text) = std::str::from_utf8(input) else {
        return;
    };
    if let Ok(entries) = trust::parse_list(text) {
        for entry in entries {
            assert!(!entry.nickname.is_empty());
            assert_eq!(
                entry.is_ours(),
                entry.nickname.starts_with(trust::NICKNAME_PREFIX)
            );
        }
    }
    let _ = trust::parse_pem_certs(text);
    // An administrator may write URL patterns there: entries are kept as written, not checked
    // as origins; only that nothing panics.
    let _ = browser_policy::parse(Path::new("/fuzz/policy.json"), text);
    let _ = browser_policy::ca_certificates(text);
    let _ = install::Manifest::parse(text, Path::new("/fuzz/install-manifest.json"));
    if let Some((gid, _members)) = install::parse_group_line(text) {
        let third = text.trim_end_matches('\n').split(':').nth(2);
        assert_eq!(third.and_then(|g| g.parse::<u32>().ok()), Some(gid));
    }
    let _ = eid_installer::autostart::AutostartMode::parse(text);
});
