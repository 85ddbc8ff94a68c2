//! The machine's TLS material (`install --system`) and `eid-agent run`'s choice between it and
//! the user's own CA.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs;
use std::path::PathBuf;

use eid_installer::tls::{self, TlsError};
use time::{Duration, OffsetDateTime};

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("eid-systls-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn machine_ca_key_is_never_written_and_run_prefers_the_users_own_ca() {
    let base = scratch("choice");
    let system = base.join("system");
    let now = OffsetDateTime::now_utc();
    let made = tls::regenerate_without_ca_key(&system, now).unwrap();
    assert!(made.ca_created);
    assert!(!system.join(tls::CA_KEY_FILE).exists());
    let loaded = tls::load_system(&system, now).unwrap();
    assert_eq!(loaded.ca_pem, made.ca_pem);
    assert!(!loaded.created);

    // No CA of the user's own: the machine's material, nothing written for the user.
    let user = base.join("user");
    let (dir, material) = tls::agent_material(&user, &system, now).unwrap();
    assert_eq!(dir, system);
    assert_eq!(material.ca_pem, made.ca_pem);
    assert!(!user.exists());

    // A CA of the user's own wins.
    let own = tls::ensure(&user, now).unwrap();
    let (dir, material) = tls::agent_material(&user, &system, now).unwrap();
    assert_eq!(dir, user);
    assert_eq!(material.ca_pem, own.ca_pem);

    // No machine material: the user's (created).
    let (dir, _) = tls::agent_material(&base.join("u2"), &base.join("none"), now).unwrap();
    assert_eq!(dir, base.join("u2"));
    fs::remove_dir_all(&base).unwrap();
}

#[test]
fn an_expired_machine_leaf_sends_the_user_to_the_administrator() {
    let system = scratch("expired");
    let then = OffsetDateTime::now_utc() - Duration::days(400);
    tls::regenerate_without_ca_key(&system, then).unwrap();
    let err = tls::load_system(&system, OffsetDateTime::now_utc()).unwrap_err();
    assert!(matches!(err, TlsError::SystemUnusable { .. }), "{err}");
    assert_eq!(err.code(), "tls-system-unusable");
    assert!(err.remedy().contains("install --system"));
    assert!(err.to_string().contains("expired"), "{err}");
    // A leaf with days left but under the renewal margin is still served.
    let soon = OffsetDateTime::now_utc() - Duration::days(tls::LEAF_VALIDITY_DAYS - 5);
    tls::regenerate_without_ca_key(&system, soon).unwrap();
    assert!(tls::load_system(&system, OffsetDateTime::now_utc()).is_ok());
    // A damaged leaf is refused, never repaired.
    fs::write(system.join(tls::LEAF_FILE), "garbage").unwrap();
    assert!(matches!(
        tls::load_system(&system, OffsetDateTime::now_utc()),
        Err(TlsError::SystemUnusable { .. })
    ));
    fs::remove_dir_all(&system).unwrap();
}
