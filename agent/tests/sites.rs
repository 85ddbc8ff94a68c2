//! The remembered sites: the store the bridge consults, and `eid-agent sites` as a user runs it.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use eid_agent::config::{Origin, parse_origin};
use eid_agent::consent::{ConsentError, SiteStore};
use time::OffsetDateTime;

const AGENT: &str = env!("CARGO_BIN_EXE_eid-agent");

/// A fresh configuration directory (not created: the store creates it).
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("eid-sites-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    dir.join("config")
}

fn origin(s: &str) -> Origin {
    parse_origin(s).unwrap()
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn remembered_sites_are_written_as_version_1_json_readable_only_by_the_user() {
    let dir = scratch("format");
    let store = SiteStore::in_config_dir(&dir);
    assert!(store.list().unwrap().is_empty(), "no file: no sites");
    let granted = time::macros::datetime!(2026-11-21 10:20:30.5 UTC);
    assert!(
        store
            .remember(&origin("https://Desk.Example:443"), granted)
            .unwrap()
    );

    let path = dir.join("sites.json");
    assert_eq!(mode(&path), 0o600);
    assert_eq!(
        mode(&dir),
        0o700,
        "a directory the store creates is private"
    );
    let json: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "version": 1,
            "sites": [{"origin": "https://desk.example", "granted": "2026-11-21T10:20:30Z"}]
        })
    );
    let sites = store.list().unwrap();
    assert_eq!(sites.len(), 1);
    assert_eq!(sites[0].origin, origin("https://desk.example"));
    assert_eq!(
        sites[0].granted,
        time::macros::datetime!(2026-11-21 10:20:30 UTC)
    );
    assert_eq!(sites[0].operations, None);
}

#[test]
fn remember_revoke_and_revoke_all() {
    let dir = scratch("cycle");
    let store = SiteStore::in_config_dir(&dir);
    let a = origin("https://a.example");
    let b = origin("https://b.example:8443");
    assert!(!store.is_allowed(&a));
    assert!(store.remember(&a, now()).unwrap());
    assert!(!store.remember(&a, now()).unwrap(), "already remembered");
    assert!(store.remember(&b, now()).unwrap());
    assert!(store.is_allowed(&a) && store.is_allowed(&b));
    assert!(
        !store.is_allowed(&origin("https://b.example")),
        "the port is part of the origin"
    );
    assert_eq!(store.list().unwrap().len(), 2);

    assert!(store.revoke(&a).unwrap());
    assert!(!store.revoke(&a).unwrap(), "a second revoke finds nothing");
    assert!(!store.is_allowed(&a));
    assert!(store.is_allowed(&b));

    store.remember(&a, now()).unwrap();
    let removed = store.revoke_all().unwrap();
    let mut removed: Vec<String> = removed.iter().map(|s| s.origin.to_string()).collect();
    removed.sort();
    assert_eq!(removed, ["https://a.example", "https://b.example:8443"]);
    assert!(store.list().unwrap().is_empty());
    assert!(!store.is_allowed(&b));
}

#[test]
fn a_revocation_by_another_process_is_seen_on_the_next_check() {
    let dir = scratch("other-process");
    let agent = SiteStore::in_config_dir(&dir);
    let cli = SiteStore::in_config_dir(&dir);
    let site = origin("https://desk.example");
    agent.remember(&site, now()).unwrap();
    assert!(agent.is_allowed(&site));

    // Several changes in a row, faster than any file-time granularity.
    for _ in 0..5 {
        assert!(cli.revoke(&site).unwrap());
        assert!(
            !agent.is_allowed(&site),
            "the agent must see the revocation at once"
        );
        agent.remember(&site, now()).unwrap();
        assert!(cli.is_allowed(&site));
    }

    // A change made with another tool entirely (an editor) is seen too.
    fs::write(dir.join("sites.json"), r#"{"version":1,"sites":[]}"#).unwrap();
    assert!(!agent.is_allowed(&site));
}

#[test]
fn concurrent_changes_from_threads_and_handles_are_not_lost() {
    let dir = scratch("concurrent");
    let shared = Arc::new(SiteStore::in_config_dir(&dir));
    let mut threads = Vec::new();
    for t in 0..4 {
        let shared = Arc::clone(&shared);
        let dir = dir.clone();
        threads.push(std::thread::spawn(move || {
            // Half through the shared handle, half through a handle of their own (another
            // process would look like this).
            let own = SiteStore::in_config_dir(&dir);
            for i in 0..10 {
                let o = origin(&format!("https://t{t}-{i}.example"));
                let store: &SiteStore = if i % 2 == 0 { &shared } else { &own };
                store.remember(&o, now()).unwrap();
                assert!(shared.is_allowed(&o));
            }
        }));
    }
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(shared.list().unwrap().len(), 40);
}

#[test]
fn a_damaged_file_is_an_error_naming_it_and_allows_nothing() {
    let dir = scratch("corrupt");
    let store = SiteStore::in_config_dir(&dir);
    let site = origin("https://desk.example");
    store.remember(&site, now()).unwrap();
    let path = dir.join("sites.json");

    for (what, contents) in [
        ("not JSON", "{\"version\":1,\"sites\":[".to_owned()),
        ("empty", String::new()),
        ("another version", r#"{"version":2,"sites":[]}"#.to_owned()),
        ("no version", r#"{"sites":[]}"#.to_owned()),
        (
            "not an origin",
            r#"{"version":1,"sites":[{"origin":"https://desk.example/path","granted":"2026-01-01T00:00:00Z"}]}"#
                .to_owned(),
        ),
        (
            "bad date",
            r#"{"version":1,"sites":[{"origin":"https://desk.example","granted":"yesterday"}]}"#
                .to_owned(),
        ),
        ("binary", "\u{0}\u{1}\u{2}".to_owned()),
    ] {
        fs::write(&path, &contents).unwrap();
        let err = store.list().unwrap_err();
        assert!(matches!(err, ConsentError::Corrupt { .. }), "{what}: {err:?}");
        let message = err.to_string();
        assert!(message.contains(&path.display().to_string()), "{what}: {message}");
        assert!(!store.is_allowed(&site), "{what}: a damaged file allows nothing");
        assert!(store.remember(&site, now()).is_err(), "{what}: not overwritten by remember");
        assert!(store.revoke(&site).is_err(), "{what}: not overwritten by revoke");
        assert_eq!(fs::read_to_string(&path).unwrap(), contents, "{what}: left alone");
    }
    let err = store.list().unwrap_err();
    assert_eq!(err.code(), "sites-corrupt");
    assert!(err.remedy().contains("revoke --all"));

    // The way out.
    store.revoke_all().unwrap();
    assert!(store.list().unwrap().is_empty());
    store.remember(&site, now()).unwrap();
    assert!(store.is_allowed(&site));
}

#[test]
fn a_grant_for_some_operations_covers_only_those() {
    let dir = scratch("operations");
    fs::create_dir_all(&dir).unwrap();
    fs::write(
        dir.join("sites.json"),
        r#"{"version":1,"sites":[
            {"origin":"https://desk.example","granted":"2026-01-01T00:00:00Z","operations":["authenticate"]},
            {"origin":"https://desk.example","granted":"2026-02-01T00:00:00Z"}
        ]}"#,
    )
    .unwrap();
    let store = SiteStore::in_config_dir(&dir);
    let site = origin("https://desk.example");
    assert_eq!(
        store.list().unwrap().len(),
        1,
        "duplicates collapse to the first"
    );
    assert!(!store.is_allowed(&site));
    assert!(store.is_allowed_for(&site, "authenticate"));
    assert!(!store.is_allowed_for(&site, "sign"));

    // "Always allow" widens it to everything.
    assert!(store.remember(&site, now()).unwrap());
    assert!(store.is_allowed(&site));
    assert_eq!(
        store.list().unwrap()[0].granted,
        time::macros::datetime!(2026-01-01 00:00 UTC)
    );
}

// ---- the binary ----

fn sites(dir: &Path, args: &[&str]) -> Output {
    Command::new(AGENT)
        .arg("sites")
        .args(args)
        .arg("--config-dir")
        .arg(dir)
        .output()
        .unwrap()
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

#[test]
fn cli_lists_and_revokes_remembered_sites() {
    let dir = scratch("cli");
    let out = sites(&dir, &["list"]);
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("No site is remembered"));

    let store = SiteStore::in_config_dir(&dir);
    store
        .remember(&origin("https://desk.example"), now())
        .unwrap();
    store
        .remember(&origin("https://kiosk.example:8443"), now())
        .unwrap();

    let out = sites(&dir, &["list", "--json"]);
    assert!(out.status.success(), "{out:?}");
    let listed = json(&out);
    let origins: Vec<&str> = listed["sites"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["origin"].as_str().unwrap())
        .collect();
    assert_eq!(
        origins,
        ["https://desk.example", "https://kiosk.example:8443"]
    );
    assert!(
        listed["sites"][0]["granted"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );

    let out = sites(&dir, &["list"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("https://desk.example") && text.contains("since"),
        "{text}"
    );

    // The origin is normalised the same way as everywhere else.
    let out = sites(&dir, &["revoke", "HTTPS://Desk.Example:443", "--json"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        json(&out),
        serde_json::json!({"revoked": ["https://desk.example"]})
    );
    assert!(!store.is_allowed(&origin("https://desk.example")));
    assert!(store.is_allowed(&origin("https://kiosk.example:8443")));

    let out = sites(&dir, &["revoke", "--all"]);
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("https://kiosk.example:8443"));
    assert!(store.list().unwrap().is_empty());
}

#[test]
fn cli_refuses_unknown_and_malformed_origins_with_codes() {
    let dir = scratch("cli-errors");
    let out = sites(&dir, &["revoke", "https://never.example", "--json"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(json(&out)["error"]["code"], "site-not-remembered");

    let out = sites(&dir, &["revoke", "https://desk.example/page", "--json"]);
    assert_eq!(out.status.code(), Some(2));
    let error = &json(&out)["error"];
    assert_eq!(error["code"], "invalid-origin");
    assert!(error["remedy"].as_str().unwrap().contains("https://host"));

    let out = sites(&dir, &["revoke", "*"]);
    assert_eq!(out.status.code(), Some(2));
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains("not a website origin") && text.contains("what to do:"),
        "{text}"
    );

    // `revoke` needs an origin or --all, not both.
    assert!(!sites(&dir, &["revoke"]).status.success());
    assert!(
        !sites(&dir, &["revoke", "https://a.example", "--all"])
            .status
            .success()
    );
}

#[test]
fn cli_reports_a_damaged_file_and_revoke_all_repairs_it() {
    let dir = scratch("cli-corrupt");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("sites.json"), "garbage").unwrap();
    let out = sites(&dir, &["list", "--json"]);
    assert_eq!(out.status.code(), Some(2));
    let error = &json(&out)["error"];
    assert_eq!(error["code"], "sites-corrupt");
    assert!(
        error["message"].as_str().unwrap().contains("sites.json"),
        "{error}"
    );

    let out = sites(&dir, &["revoke", "--all", "--json"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(json(&out), serde_json::json!({"revoked": []}));
    assert!(sites(&dir, &["list"]).status.success());
}

#[test]
fn cli_takes_the_config_dir_from_the_environment() {
    let dir = scratch("cli-env");
    SiteStore::in_config_dir(&dir)
        .remember(&origin("https://env.example"), now())
        .unwrap();
    let out = Command::new(AGENT)
        .args(["sites", "list", "--json"])
        .env("EID_AGENT_CONFIG_DIR", &dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(json(&out)["sites"][0]["origin"], "https://env.example");
}

#[test]
fn cli_allows_a_site_without_the_dialog_and_says_when_it_already_was() {
    let dir = scratch("cli-allow");
    let out = sites(&dir, &["allow", "HTTPS://Desk.Example:443", "--json"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        json(&out),
        serde_json::json!({"allowed": "https://desk.example", "new": true})
    );
    let store = SiteStore::in_config_dir(&dir);
    assert!(store.is_allowed(&origin("https://desk.example")));
    let again = sites(&dir, &["allow", "https://desk.example"]);
    assert!(String::from_utf8_lossy(&again.stdout).contains("already allowed"));
    let bad = sites(&dir, &["allow", "http://desk.example", "--json"]);
    assert!(!bad.status.success());
    assert_eq!(json(&bad)["error"]["code"], "invalid-origin");
    assert!(!store.is_allowed(&origin("https://other.example")));
}
