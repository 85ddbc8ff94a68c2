//! Store tests, run on an SQLite file, an SQLite in-memory database and, when
//! `EID_TEST_POSTGRES_URL` is set (e.g. `postgres://eid:eid@127.0.0.1/eid_test`), on
//! PostgreSQL, each test in a schema of its own.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::Arc;

use eid_enrolment::delivery::{Contact, Purpose};
use eid_enrolment::secrets::{CodeKey, PinHasher, new_id};
use eid_enrolment::store::{
    BindingConflict, CodePolicy, CodeRejected, FailureOutcome, NewBinding, NonceRejected, Store,
    StoreError,
};
use serde_json::json;

const NOW: i64 = 1_700_000_000;

/// A database for one test; dropping it removes the SQLite file or the PostgreSQL schema.
struct TestDb {
    store: Store,
    cleanup: Cleanup,
}

enum Cleanup {
    None,
    File(std::path::PathBuf),
    Schema { base: String, schema: String },
}

impl TestDb {
    async fn finish(self) {
        self.store.close().await;
        match self.cleanup {
            Cleanup::None => {}
            Cleanup::File(dir) => {
                let _ = std::fs::remove_dir_all(dir);
            }
            Cleanup::Schema { base, schema } => {
                sqlx::any::install_default_drivers();
                let pool = sqlx::AnyPool::connect(&base).await.unwrap();
                sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
                    .execute(&pool)
                    .await
                    .unwrap();
                pool.close().await;
            }
        }
    }
}

async fn memory() -> TestDb {
    TestDb {
        store: Store::open("sqlite::memory:").await.unwrap(),
        cleanup: Cleanup::None,
    }
}

async fn file() -> TestDb {
    let dir = std::env::temp_dir().join(format!("eid-store-test-{}", new_id().unwrap()));
    // The directory does not exist yet: open creates it and the file.
    let url = format!(
        "sqlite:{}",
        dir.join("db").join("enrolment.sqlite").display()
    );
    TestDb {
        store: Store::open(&url).await.unwrap(),
        cleanup: Cleanup::File(dir),
    }
}

async fn postgres() -> Option<TestDb> {
    let base = std::env::var("EID_TEST_POSTGRES_URL").ok()?;
    sqlx::any::install_default_drivers();
    let schema = format!("t_{}", new_id().unwrap());
    let pool = sqlx::AnyPool::connect(&base).await.unwrap();
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let sep = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{sep}options[search_path]={schema}");
    let store = Store::open(&url).await.unwrap();
    assert_eq!(store.backend(), "postgres");
    Some(TestDb {
        store,
        cleanup: Cleanup::Schema { base, schema },
    })
}

/// Runs each scenario on every backend: `<backend>::<scenario>`.
macro_rules! on_every_backend {
    ($($name:ident),* $(,)?) => {
        mod sqlite_memory {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                let db = super::memory().await;
                super::$name(db.store.clone()).await;
                db.finish().await;
            })*
        }
        mod sqlite_file {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                let db = super::file().await;
                super::$name(db.store.clone()).await;
                db.finish().await;
            })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                let Some(db) = super::postgres().await else {
                    eprintln!("EID_TEST_POSTGRES_URL not set: PostgreSQL variant skipped");
                    return;
                };
                super::$name(db.store.clone()).await;
                db.finish().await;
            })*
        }
    };
}

on_every_backend!(
    sessions,
    nonce_single_use,
    nonce_expiry,
    nonce_bound_to_session_and_purpose,
    nonce_concurrent_single_use,
    code_wrong_then_right,
    code_attempts_exhausted,
    code_expired,
    code_new_replaces_old,
    code_bound_to_session_and_purpose,
    code_resend_rate_limit,
    code_detached_at_next_citizen,
    code_contact_hourly_limit,
    code_concurrent_right_single_use,
    code_concurrent_guesses_bounded,
    bindings_lifecycle,
    bindings_contact_taken,
    bindings_concurrent_contact_race,
    failures_to_suspension,
    failures_concurrent,
    operators,
    events,
    purge,
);

fn key() -> CodeKey {
    CodeKey::from_bytes([42; 32])
}

fn phone(n: u32) -> Contact {
    Contact::parse(&format!("+35191{n:07}")).unwrap()
}

// ---------------------------------------------------------------------------------------------
// Sessions
// ---------------------------------------------------------------------------------------------

async fn sessions(store: Store) {
    let data = json!({"step": "card", "list": [1, 2]});
    store
        .create_session("s1", "citizen", &data, NOW, NOW + 100)
        .await
        .unwrap();
    let row = store.load_session("s1", NOW + 1).await.unwrap().unwrap();
    assert_eq!(row.kind, "citizen");
    assert_eq!(row.data, data);
    assert_eq!((row.created_at, row.expires_at), (NOW, NOW + 100));

    let data2 = json!({"step": "mobile-key", "identity": {"name": "ANA"}});
    store.save_session("s1", &data2, NOW + 5).await.unwrap();
    let row = store.load_session("s1", NOW + 6).await.unwrap().unwrap();
    assert_eq!(row.data, data2);
    assert_eq!(row.updated_at, NOW + 5);

    // Expired: invisible, and cannot be saved.
    assert!(store.load_session("s1", NOW + 100).await.unwrap().is_none());
    assert!(matches!(
        store.save_session("s1", &data, NOW + 100).await,
        Err(StoreError::SessionGone)
    ));
    assert!(store.load_session("nope", NOW).await.unwrap().is_none());

    // Same token hash twice is an error (primary key), never a silent overwrite.
    assert!(
        store
            .create_session("s1", "citizen", &data, NOW, NOW + 100)
            .await
            .is_err()
    );

    store.delete_session("s1").await.unwrap();
    assert!(store.load_session("s1", NOW).await.unwrap().is_none());
}

// ---------------------------------------------------------------------------------------------
// Nonces
// ---------------------------------------------------------------------------------------------

async fn nonce_single_use(store: Store) {
    let nonce = store.issue_nonce("card", "s1", NOW, 300).await.unwrap();
    assert_eq!(nonce.len(), 44);
    eid_protocols::webeid::check_nonce(&nonce).unwrap();
    let other = store.issue_nonce("card", "s1", NOW, 300).await.unwrap();
    assert_ne!(nonce, other);

    assert_eq!(
        store
            .consume_nonce(&nonce, "card", "s1", NOW + 1)
            .await
            .unwrap(),
        Ok(())
    );
    assert_eq!(
        store
            .consume_nonce(&nonce, "card", "s1", NOW + 2)
            .await
            .unwrap(),
        Err(NonceRejected::Reused)
    );
    assert_eq!(NonceRejected::Reused.code(), "nonce-reused");
    let unknown = "A".repeat(43) + "=";
    assert_eq!(
        store
            .consume_nonce(&unknown, "card", "s1", NOW)
            .await
            .unwrap(),
        Err(NonceRejected::Unknown)
    );
    assert_eq!(NonceRejected::Unknown.code(), "nonce-unknown");
    // The other nonce is untouched.
    assert_eq!(
        store
            .consume_nonce(&other, "card", "s1", NOW + 1)
            .await
            .unwrap(),
        Ok(())
    );
}

async fn nonce_expiry(store: Store) {
    let a = store.issue_nonce("card", "s1", NOW, 300).await.unwrap();
    let b = store.issue_nonce("card", "s1", NOW, 300).await.unwrap();
    assert_eq!(
        store
            .consume_nonce(&a, "card", "s1", NOW + 299)
            .await
            .unwrap(),
        Ok(())
    );
    assert_eq!(
        store
            .consume_nonce(&b, "card", "s1", NOW + 300)
            .await
            .unwrap(),
        Err(NonceRejected::Expired)
    );
    assert_eq!(NonceRejected::Expired.code(), "nonce-expired");
    // Still expired (not "unknown") after a purge within the grace period.
    store.purge_expired(NOW + 400).await.unwrap();
    assert_eq!(
        store
            .consume_nonce(&b, "card", "s1", NOW + 401)
            .await
            .unwrap(),
        Err(NonceRejected::Expired)
    );
}

async fn nonce_bound_to_session_and_purpose(store: Store) {
    let nonce = store.issue_nonce("card", "s1", NOW, 300).await.unwrap();
    assert_eq!(
        store
            .consume_nonce(&nonce, "card", "s2", NOW)
            .await
            .unwrap(),
        Err(NonceRejected::OtherSession)
    );
    assert_eq!(
        store
            .consume_nonce(&nonce, "desk", "s1", NOW)
            .await
            .unwrap(),
        Err(NonceRejected::OtherPurpose)
    );
    // Refusals to others do not burn it for its owner.
    assert_eq!(
        store
            .consume_nonce(&nonce, "card", "s1", NOW)
            .await
            .unwrap(),
        Ok(())
    );
    assert_eq!(
        store
            .consume_nonce(&nonce, "card", "s2", NOW)
            .await
            .unwrap(),
        Err(NonceRejected::OtherSession)
    );
}

async fn nonce_concurrent_single_use(store: Store) {
    let nonce = store.issue_nonce("card", "s1", NOW, 300).await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let store = store.clone();
        let nonce = nonce.clone();
        tasks.push(tokio::spawn(async move {
            store
                .consume_nonce(&nonce, "card", "s1", NOW + 1)
                .await
                .unwrap()
        }));
    }
    let mut ok = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(()) => ok += 1,
            Err(NonceRejected::Reused) => {}
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(ok, 1);
}

// ---------------------------------------------------------------------------------------------
// One-time codes
// ---------------------------------------------------------------------------------------------

fn wrong_code(code: &str) -> String {
    let n: u32 = code.parse().unwrap();
    format!("{:06}", (n + 1) % 1_000_000)
}

async fn code_wrong_then_right(store: Store) {
    let policy = CodePolicy::default();
    let issued = store
        .issue_code(&key(), Purpose::Enrolment, "s1", &phone(1), NOW, &policy)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(issued.code.len(), 6);
    assert_eq!(issued.expires_at, NOW + 300);
    assert!(!format!("{issued:?}").contains(issued.code.as_str()));

    let wrong = wrong_code(&issued.code);
    assert_eq!(
        store
            .verify_code(&key(), Purpose::Enrolment, "s1", &wrong, NOW + 1, &policy)
            .await
            .unwrap(),
        Err(CodeRejected::Wrong { attempts_left: 2 })
    );
    assert_eq!(
        CodeRejected::Wrong { attempts_left: 2 }.code(),
        "code-wrong"
    );
    // Spaces typed around or inside are ignored.
    let spaced = format!(" {} {} ", &issued.code[..3], &issued.code[3..]);
    assert_eq!(
        store
            .verify_code(&key(), Purpose::Enrolment, "s1", &spaced, NOW + 2, &policy)
            .await
            .unwrap(),
        Ok(())
    );
    // Single use.
    assert_eq!(
        store
            .verify_code(
                &key(),
                Purpose::Enrolment,
                "s1",
                &issued.code,
                NOW + 3,
                &policy
            )
            .await
            .unwrap(),
        Err(CodeRejected::NoCode)
    );
    assert_eq!(CodeRejected::NoCode.code(), "code-missing");
    // Another key (e.g. the key file was replaced) does not accept it either.
    let issued = store
        .issue_code(
            &key(),
            Purpose::Enrolment,
            "s1",
            &phone(1),
            NOW + 60,
            &policy,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        store
            .verify_code(
                &CodeKey::from_bytes([1; 32]),
                Purpose::Enrolment,
                "s1",
                &issued.code,
                NOW + 61,
                &policy
            )
            .await
            .unwrap(),
        Err(CodeRejected::Wrong { attempts_left: 2 })
    );
}

async fn code_attempts_exhausted(store: Store) {
    let policy = CodePolicy::default();
    let issued = store
        .issue_code(&key(), Purpose::Login, "s1", &phone(1), NOW, &policy)
        .await
        .unwrap()
        .unwrap();
    let wrong = wrong_code(&issued.code);
    for left in [2, 1, 0] {
        assert_eq!(
            store
                .verify_code(&key(), Purpose::Login, "s1", &wrong, NOW + 1, &policy)
                .await
                .unwrap(),
            Err(CodeRejected::Wrong {
                attempts_left: left
            })
        );
    }
    // Even the right code is refused now, without being compared.
    assert_eq!(
        store
            .verify_code(&key(), Purpose::Login, "s1", &issued.code, NOW + 2, &policy)
            .await
            .unwrap(),
        Err(CodeRejected::AttemptsExhausted)
    );
    assert_eq!(
        CodeRejected::AttemptsExhausted.code(),
        "code-attempts-exhausted"
    );
    // A new code (after the resend interval) starts afresh.
    let again = store
        .issue_code(&key(), Purpose::Login, "s1", &phone(1), NOW + 30, &policy)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        store
            .verify_code(&key(), Purpose::Login, "s1", &again.code, NOW + 31, &policy)
            .await
            .unwrap(),
        Ok(())
    );
}

async fn code_expired(store: Store) {
    let policy = CodePolicy {
        ttl_secs: 60,
        ..CodePolicy::default()
    };
    let issued = store
        .issue_code(&key(), Purpose::Enrolment, "s1", &phone(1), NOW, &policy)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(issued.expires_at, NOW + 60);
    assert_eq!(
        store
            .verify_code(
                &key(),
                Purpose::Enrolment,
                "s1",
                &issued.code,
                NOW + 60,
                &policy
            )
            .await
            .unwrap(),
        Err(CodeRejected::Expired)
    );
    assert_eq!(CodeRejected::Expired.code(), "code-expired");
    // Expiry does not consume attempts; still expired later.
    assert_eq!(
        store
            .verify_code(
                &key(),
                Purpose::Enrolment,
                "s1",
                &issued.code,
                NOW + 600,
                &policy
            )
            .await
            .unwrap(),
        Err(CodeRejected::Expired)
    );
}

async fn code_new_replaces_old(store: Store) {
    let policy = CodePolicy::default();
    let first = store
        .issue_code(&key(), Purpose::Enrolment, "s1", &phone(1), NOW, &policy)
        .await
        .unwrap()
        .unwrap();
    let mut second = store
        .issue_code(
            &key(),
            Purpose::Enrolment,
            "s1",
            &phone(1),
            NOW + 30,
            &policy,
        )
        .await
        .unwrap()
        .unwrap();
    // Codes are random: with 1 in a million chance they coincide; then draw again.
    while second.code == first.code {
        second = store
            .issue_code(
                &key(),
                Purpose::Enrolment,
                "s1",
                &phone(1),
                NOW + 60,
                &policy,
            )
            .await
            .unwrap()
            .unwrap();
    }
    assert!(matches!(
        store
            .verify_code(
                &key(),
                Purpose::Enrolment,
                "s1",
                &first.code,
                NOW + 61,
                &policy
            )
            .await
            .unwrap(),
        Err(CodeRejected::Wrong { .. })
    ));
    assert_eq!(
        store
            .verify_code(
                &key(),
                Purpose::Enrolment,
                "s1",
                &second.code,
                NOW + 62,
                &policy
            )
            .await
            .unwrap(),
        Ok(())
    );
}

async fn code_bound_to_session_and_purpose(store: Store) {
    let policy = CodePolicy::default();
    let issued = store
        .issue_code(&key(), Purpose::Enrolment, "s1", &phone(1), NOW, &policy)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        store
            .verify_code(&key(), Purpose::Enrolment, "s2", &issued.code, NOW, &policy)
            .await
            .unwrap(),
        Err(CodeRejected::NoCode)
    );
    assert_eq!(
        store
            .verify_code(&key(), Purpose::Login, "s1", &issued.code, NOW, &policy)
            .await
            .unwrap(),
        Err(CodeRejected::NoCode)
    );
    // A code for s2 with the same digits would still not match s1's hash: the hash binds the
    // session. Deleting the session voids its code.
    store.delete_session("s1").await.unwrap();
    assert_eq!(
        store
            .verify_code(&key(), Purpose::Enrolment, "s1", &issued.code, NOW, &policy)
            .await
            .unwrap(),
        Err(CodeRejected::NoCode)
    );
}

async fn code_resend_rate_limit(store: Store) {
    let policy = CodePolicy::default();
    store
        .issue_code(&key(), Purpose::Enrolment, "s1", &phone(1), NOW, &policy)
        .await
        .unwrap()
        .unwrap();
    let refused = store
        .issue_code(
            &key(),
            Purpose::Enrolment,
            "s1",
            &phone(1),
            NOW + 10,
            &policy,
        )
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(
        refused,
        CodeRejected::RateLimited {
            retry_after_secs: 20
        }
    );
    assert_eq!(refused.code(), "code-rate-limited");
    // Another purpose in the same session is not held back by it.
    store
        .issue_code(&key(), Purpose::Login, "s1", &phone(1), NOW + 10, &policy)
        .await
        .unwrap()
        .unwrap();
    store
        .issue_code(
            &key(),
            Purpose::Enrolment,
            "s1",
            &phone(1),
            NOW + 30,
            &policy,
        )
        .await
        .unwrap()
        .unwrap();
}

/// The desk's "next citizen": the previous citizen's code dies, the next citizen's first code is
/// not held back by the resend interval, and the per-contact hourly limit still counts it.
async fn code_detached_at_next_citizen(store: Store) {
    let policy = CodePolicy::default();
    let first = store
        .issue_code(&key(), Purpose::Enrolment, "desk", &phone(1), NOW, &policy)
        .await
        .unwrap()
        .unwrap();
    store.detach_codes("desk").await.unwrap();
    assert_eq!(
        store
            .verify_code(
                &key(),
                Purpose::Enrolment,
                "desk",
                &first.code,
                NOW + 1,
                &policy
            )
            .await
            .unwrap(),
        Err(CodeRejected::NoCode)
    );
    // The next citizen, five seconds later: no resend wait.
    let second = store
        .issue_code(
            &key(),
            Purpose::Enrolment,
            "desk",
            &phone(2),
            NOW + 5,
            &policy,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        store
            .verify_code(
                &key(),
                Purpose::Enrolment,
                "desk",
                &second.code,
                NOW + 6,
                &policy
            )
            .await
            .unwrap(),
        Ok(())
    );
    // Without the detach, the same session is held back as before.
    assert!(matches!(
        store
            .issue_code(
                &key(),
                Purpose::Enrolment,
                "desk",
                &phone(3),
                NOW + 7,
                &policy
            )
            .await
            .unwrap(),
        Err(CodeRejected::RateLimited { .. })
    ));
    // Detached codes still count toward their contact's hourly limit.
    for i in 0..4 {
        store.detach_codes("desk").await.unwrap();
        store
            .issue_code(
                &key(),
                Purpose::Enrolment,
                "desk",
                &phone(1),
                NOW + 10 + i,
                &policy,
            )
            .await
            .unwrap()
            .unwrap();
    }
    store.detach_codes("desk").await.unwrap();
    assert!(matches!(
        store
            .issue_code(
                &key(),
                Purpose::Enrolment,
                "desk",
                &phone(1),
                NOW + 20,
                &policy
            )
            .await
            .unwrap(),
        Err(CodeRejected::RateLimited { .. })
    ));
}

async fn code_contact_hourly_limit(store: Store) {
    let policy = CodePolicy::default();
    let victim = Contact::parse("victim@example.org").unwrap();
    // Five sessions (an attacker opening many) each ask for a code to one contact.
    for i in 0..5 {
        store
            .issue_code(
                &key(),
                Purpose::Login,
                &format!("s{i}"),
                &victim,
                NOW + i * 60,
                &policy,
            )
            .await
            .unwrap()
            .unwrap();
    }
    let refused = store
        .issue_code(&key(), Purpose::Login, "s9", &victim, NOW + 300, &policy)
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(
        refused,
        CodeRejected::RateLimited {
            retry_after_secs: 3300
        }
    );
    // Other contacts are not affected.
    store
        .issue_code(&key(), Purpose::Login, "s9", &phone(2), NOW + 300, &policy)
        .await
        .unwrap()
        .unwrap();
    // An hour after the first, one more is allowed.
    store
        .issue_code(&key(), Purpose::Login, "s10", &victim, NOW + 3600, &policy)
        .await
        .unwrap()
        .unwrap();
}

async fn code_concurrent_right_single_use(store: Store) {
    let policy = CodePolicy {
        max_attempts: 100,
        ..CodePolicy::default()
    };
    let issued = store
        .issue_code(&key(), Purpose::Enrolment, "s1", &phone(1), NOW, &policy)
        .await
        .unwrap()
        .unwrap();
    let code = Arc::new(issued.code.to_string());
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let (store, code, policy) = (store.clone(), code.clone(), policy.clone());
        tasks.push(tokio::spawn(async move {
            store
                .verify_code(&key(), Purpose::Enrolment, "s1", &code, NOW + 1, &policy)
                .await
                .unwrap()
        }));
    }
    let mut ok = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(()) => ok += 1,
            Err(CodeRejected::NoCode) => {}
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(ok, 1, "a code must be accepted exactly once");
}

async fn code_concurrent_guesses_bounded(store: Store) {
    let policy = CodePolicy::default();
    let issued = store
        .issue_code(&key(), Purpose::Login, "s1", &phone(1), NOW, &policy)
        .await
        .unwrap()
        .unwrap();
    let wrong = Arc::new(wrong_code(&issued.code));
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let (store, wrong, policy) = (store.clone(), wrong.clone(), policy.clone());
        tasks.push(tokio::spawn(async move {
            store
                .verify_code(&key(), Purpose::Login, "s1", &wrong, NOW + 1, &policy)
                .await
                .unwrap()
        }));
    }
    let mut compared = Vec::new();
    let mut exhausted = 0;
    for task in tasks {
        match task.await.unwrap() {
            Err(CodeRejected::Wrong { attempts_left }) => compared.push(attempts_left),
            Err(CodeRejected::AttemptsExhausted) => exhausted += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    compared.sort_unstable();
    assert_eq!(compared, [0, 1, 2], "exactly max_attempts comparisons");
    assert_eq!(exhausted, 17);
    assert_eq!(
        store
            .verify_code(&key(), Purpose::Login, "s1", &issued.code, NOW + 2, &policy)
            .await
            .unwrap(),
        Err(CodeRejected::AttemptsExhausted)
    );
}

// ---------------------------------------------------------------------------------------------
// Bindings
// ---------------------------------------------------------------------------------------------

fn new_binding(identity: &str, contact: &Contact, pin_hash: &str) -> NewBinding {
    NewBinding {
        identity_key: format!("pt-cc:PNOPT-{identity}"),
        identity_kind: "citizen-card".to_owned(),
        display_name: format!("Citizen {identity}"),
        identity: json!({"serialNumber": format!("PNOPT-{identity}"), "country": "PT"}),
        contact: contact.clone(),
        pin_hash: pin_hash.to_owned(),
        enrolled_by: None,
        evidence_sha256: "ab".repeat(32),
    }
}

async fn bindings_lifecycle(store: Store) {
    let hasher = PinHasher::for_tests();
    let hash1 = hasher.hash("4826").unwrap();
    let b = store
        .upsert_binding(&new_binding("12345678", &phone(1), &hash1), NOW)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(b.identity_key, "pt-cc:PNOPT-12345678");
    assert_eq!(b.contact, "+351910000001");
    assert_eq!(b.contact_kind, "phone");
    assert_eq!(b.status, "active");
    assert!(b.is_active());
    assert_eq!(b.failures, 0);
    assert_eq!(
        (b.created_at, b.updated_at, b.last_login_at),
        (NOW, NOW, None)
    );
    assert!(hasher.verify(&b.pin_hash, "4826"));
    assert_eq!(b.identity["country"], "PT");
    let text = serde_json::to_string(&b).unwrap();
    assert!(
        !text.contains("argon2"),
        "PIN hash must not be serialised: {text}"
    );

    assert_eq!(
        store.binding_by_contact("+351910000001").await.unwrap(),
        Some(b.clone())
    );
    assert_eq!(
        store
            .binding_by_identity("pt-cc:PNOPT-12345678")
            .await
            .unwrap(),
        Some(b.clone())
    );
    assert_eq!(store.binding_by_id(&b.id).await.unwrap(), Some(b.clone()));
    assert_eq!(
        store.binding_by_contact("+351910000002").await.unwrap(),
        None
    );

    store.record_login(&b.id, NOW + 5).await.unwrap();
    assert_eq!(
        store
            .binding_by_id(&b.id)
            .await
            .unwrap()
            .unwrap()
            .last_login_at,
        Some(NOW + 5)
    );

    // Re-enrolment at the desk with a new e-mail contact and PIN: same id, old contact freed.
    let email = Contact::parse("Ana.Silva@Example.ORG").unwrap();
    let hash2 = hasher.hash("9073").unwrap();
    let mut again = new_binding("12345678", &email, &hash2);
    again.enrolled_by = Some("desk-1".to_owned());
    let b2 = store
        .upsert_binding(&again, NOW + 10)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(b2.id, b.id);
    assert_eq!(b2.created_at, NOW);
    assert_eq!(b2.updated_at, NOW + 10);
    assert_eq!(b2.contact, "Ana.Silva@example.org");
    assert_eq!(b2.contact_kind, "email");
    assert_eq!(b2.enrolled_by.as_deref(), Some("desk-1"));
    assert!(hasher.verify(&b2.pin_hash, "9073"));
    assert!(!hasher.verify(&b2.pin_hash, "4826"));
    assert_eq!(
        store.binding_by_contact("+351910000001").await.unwrap(),
        None
    );

    // The freed contact can go to someone else.
    let other = store
        .upsert_binding(&new_binding("87654321", &phone(1), &hash1), NOW + 20)
        .await
        .unwrap()
        .unwrap();
    assert_ne!(other.id, b.id);
    let all = store.list_bindings().await.unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].id, b.id);
    assert_eq!(all[1].id, other.id);

    // A passport binding keeps its kind and operator.
    let mut passport = new_binding("x", &phone(3), &hash1);
    passport.identity_key = "passport:UTO:IDP000017".to_owned();
    passport.identity_kind = "passport".to_owned();
    passport.enrolled_by = Some("desk-2".to_owned());
    let p = store.upsert_binding(&passport, NOW).await.unwrap().unwrap();
    assert_eq!(p.identity_kind, "passport");
    assert_eq!(p.enrolled_by.as_deref(), Some("desk-2"));
}

async fn bindings_contact_taken(store: Store) {
    let a = store
        .upsert_binding(&new_binding("1", &phone(1), "h"), NOW)
        .await
        .unwrap()
        .unwrap();
    let refused = store
        .upsert_binding(&new_binding("2", &phone(1), "h"), NOW)
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(refused, BindingConflict::ContactTaken);
    assert_eq!(refused.code(), "contact-taken");
    // Nothing stored for the refused identity; the owner is unchanged.
    assert_eq!(
        store.binding_by_identity("pt-cc:PNOPT-2").await.unwrap(),
        None
    );
    assert_eq!(store.binding_by_contact(&a.contact).await.unwrap(), Some(a));
    // Moving an existing identity onto a taken contact is refused too.
    store
        .upsert_binding(&new_binding("3", &phone(3), "h"), NOW)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        store
            .upsert_binding(&new_binding("3", &phone(1), "h"), NOW)
            .await
            .unwrap(),
        Err(BindingConflict::ContactTaken)
    );
    assert_eq!(
        store
            .binding_by_identity("pt-cc:PNOPT-3")
            .await
            .unwrap()
            .unwrap()
            .contact,
        phone(3).as_str()
    );
}

async fn bindings_concurrent_contact_race(store: Store) {
    let mut tasks = Vec::new();
    for i in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .upsert_binding(&new_binding(&format!("{i}"), &phone(7), "h"), NOW)
                .await
                .unwrap()
        }));
    }
    let mut ok = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => ok += 1,
            Err(BindingConflict::ContactTaken) => {}
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(ok, 1);
    assert_eq!(store.list_bindings().await.unwrap().len(), 1);
}

async fn failures_to_suspension(store: Store) {
    let b = store
        .upsert_binding(&new_binding("1", &phone(1), "h"), NOW)
        .await
        .unwrap()
        .unwrap();
    let outcomes = [
        FailureOutcome {
            attempts_left: 2,
            suspended: false,
        },
        FailureOutcome {
            attempts_left: 1,
            suspended: false,
        },
        FailureOutcome {
            attempts_left: 0,
            suspended: true,
        },
    ];
    // A success in between resets the count.
    assert_eq!(
        store.record_failure(&b.id, NOW, 3).await.unwrap(),
        outcomes[0]
    );
    store.record_login(&b.id, NOW).await.unwrap();
    for (i, expected) in outcomes.iter().enumerate() {
        assert_eq!(
            store
                .record_failure(&b.id, NOW + i as i64, 3)
                .await
                .unwrap(),
            *expected
        );
    }
    let suspended = store.binding_by_id(&b.id).await.unwrap().unwrap();
    assert_eq!(suspended.status, "suspended");
    assert!(!suspended.is_active());
    assert_eq!(suspended.failures, 3);
    // Further failures keep it suspended.
    assert_eq!(
        store.record_failure(&b.id, NOW + 5, 3).await.unwrap(),
        outcomes[2]
    );
    // A login resets the counter but does not lift the suspension...
    store.record_login(&b.id, NOW + 6).await.unwrap();
    let still = store.binding_by_id(&b.id).await.unwrap().unwrap();
    assert_eq!((still.status.as_str(), still.failures), ("suspended", 0));
    // ...re-enrolment does.
    let back = store
        .upsert_binding(&new_binding("1", &phone(1), "h2"), NOW + 7)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((back.status.as_str(), back.failures), ("active", 0));
    assert_eq!(back.id, b.id);

    assert!(matches!(
        store.record_failure("no-such-id", NOW, 3).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.record_login("no-such-id", NOW).await,
        Err(StoreError::NotFound(_))
    ));
}

async fn failures_concurrent(store: Store) {
    let b = store
        .upsert_binding(&new_binding("1", &phone(1), "h"), NOW)
        .await
        .unwrap()
        .unwrap();
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let (store, id) = (store.clone(), b.id.clone());
        tasks.push(tokio::spawn(async move {
            store.record_failure(&id, NOW, 5).await.unwrap()
        }));
    }
    let mut lefts = Vec::new();
    for task in tasks {
        let outcome = task.await.unwrap();
        lefts.push((outcome.attempts_left, outcome.suspended));
    }
    lefts.sort_unstable();
    // Every failure counted once: 4,3,2,1 left, then six suspended answers.
    let mut expected = vec![(0, true); 6];
    expected.extend([(1, false), (2, false), (3, false), (4, false)]);
    assert_eq!(lefts, expected);
    let after = store.binding_by_id(&b.id).await.unwrap().unwrap();
    assert_eq!((after.failures, after.status.as_str()), (10, "suspended"));
}

// ---------------------------------------------------------------------------------------------
// Operators, events, purge
// ---------------------------------------------------------------------------------------------

async fn operators(store: Store) {
    assert_eq!(store.operator_password("alice").await.unwrap(), None);
    store
        .add_operator("alice", "$argon2id$one", NOW)
        .await
        .unwrap();
    store
        .add_operator("bob", "$argon2id$two", NOW)
        .await
        .unwrap();
    assert_eq!(
        store.operator_password("alice").await.unwrap().as_deref(),
        Some("$argon2id$one")
    );
    store
        .add_operator("alice", "$argon2id$three", NOW + 1)
        .await
        .unwrap();
    assert_eq!(
        store.operator_password("alice").await.unwrap().as_deref(),
        Some("$argon2id$three")
    );
    assert_eq!(
        store.operator_password("bob").await.unwrap().as_deref(),
        Some("$argon2id$two")
    );
    // Names are exact (no case folding, no trimming).
    assert_eq!(store.operator_password("Alice").await.unwrap(), None);
}

async fn events(store: Store) {
    assert!(store.events(10).await.unwrap().is_empty());
    store
        .log_event(
            "enrolled",
            Some("b1"),
            &json!({"kind": "citizen-card"}),
            NOW,
        )
        .await
        .unwrap();
    store
        .log_event("refused", None, &json!({"code": "nonce-reused"}), NOW)
        .await
        .unwrap();
    store
        .log_event("login", Some("b1"), &json!({}), NOW + 1)
        .await
        .unwrap();
    let latest = store.events(2).await.unwrap();
    assert_eq!(latest.len(), 2);
    assert_eq!(latest[0].kind, "login");
    assert_eq!(latest[1].kind, "refused");
    assert_eq!(latest[1].binding_id, None);
    assert_eq!(latest[1].detail, json!({"code": "nonce-reused"}));
    let all = store.events(100).await.unwrap();
    assert_eq!(all.len(), 3);
    assert_eq!(all[2].kind, "enrolled");
    assert_eq!(all[2].binding_id.as_deref(), Some("b1"));
    assert!(all[0].seq > all[1].seq && all[1].seq > all[2].seq);
    assert!(store.events(-1).await.unwrap().is_empty());
}

async fn purge(store: Store) {
    let policy = CodePolicy::default();
    store
        .create_session("old", "citizen", &json!({}), NOW, NOW + 10)
        .await
        .unwrap();
    store
        .create_session("new", "citizen", &json!({}), NOW, NOW + 10_000)
        .await
        .unwrap();
    store.issue_nonce("card", "old", NOW, 10).await.unwrap();
    let fresh = store.issue_nonce("card", "new", NOW, 10_000).await.unwrap();
    store
        .issue_code(&key(), Purpose::Enrolment, "old", &phone(1), NOW, &policy)
        .await
        .unwrap()
        .unwrap();
    // Nothing is due yet.
    assert_eq!(store.purge_expired(NOW).await.unwrap(), 0);
    // An hour and a bit later: the old session, its nonce (past the grace period) and its
    // code (past the rate-limit window) go.
    let removed = store.purge_expired(NOW + 3700).await.unwrap();
    assert_eq!(removed, 3);
    assert!(store.load_session("old", NOW).await.unwrap().is_none());
    assert!(
        store
            .load_session("new", NOW + 3700)
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(
        store
            .consume_nonce(&fresh, "card", "new", NOW + 3700)
            .await
            .unwrap(),
        Ok(())
    );
}

// ---------------------------------------------------------------------------------------------
// Opening
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn open_refuses_unknown_schemes_without_echoing_secrets() {
    for url in ["mysql://u:secret@h/db", "", "file:/tmp/x", "sqlite:"] {
        let err = Store::open(url).await.unwrap_err();
        assert!(matches!(err, StoreError::Url(_)), "{url}: {err}");
        assert!(!err.to_string().contains("secret"));
    }
}

#[tokio::test]
async fn sqlite_file_is_created_in_wal_mode_and_persists() {
    let dir = std::env::temp_dir().join(format!("eid-store-test-{}", new_id().unwrap()));
    let path = dir.join("enrolment.sqlite");
    let url = format!("sqlite:{}", path.display());
    let store = Store::open(&url).await.unwrap();
    assert_eq!(store.backend(), "sqlite");
    assert!(path.exists());
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(mode, "wal");
    let fk: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(fk, 1);
    store.add_operator("alice", "phc", NOW).await.unwrap();
    store.close().await;

    // Reopening runs the migrations again (a no-op) and keeps the data.
    let store = Store::open(&url).await.unwrap();
    assert_eq!(
        store.operator_password("alice").await.unwrap().as_deref(),
        Some("phc")
    );
    let applied: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(applied, 1);
    store.close().await;
    #[cfg(unix)]
    {
        // The sqlite:// spelling works too.
        let store = Store::open(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        assert!(store.operator_password("alice").await.unwrap().is_some());
        store.close().await;
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn sqlite_url_survives_awkward_paths() {
    let dir = std::env::temp_dir().join(format!("eid store %20 ?#{}", new_id().unwrap()));
    let path = dir.join("sub dir").join("enrolment.sqlite");
    let url = eid_enrolment::store::sqlite_url(&path);
    let store = Store::open(&url).await.unwrap();
    store.add_operator("alice", "phc", NOW).await.unwrap();
    store.close().await;
    assert!(path.exists(), "{url}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn memory_databases_are_private() {
    let a = Store::open("sqlite::memory:").await.unwrap();
    let b = Store::open("sqlite::memory:").await.unwrap();
    a.add_operator("alice", "phc", NOW).await.unwrap();
    assert!(b.operator_password("alice").await.unwrap().is_none());
    assert!(a.operator_password("alice").await.unwrap().is_some());
}

/// Many writers at once on an SQLite file (8 pooled connections, WAL): the busy timeout
/// serialises them, no "database is locked" errors.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_file_many_concurrent_writers() {
    let db = file().await;
    let mut tasks = Vec::new();
    for i in 0..64 {
        let store = db.store.clone();
        tasks.push(tokio::spawn(async move {
            let session = format!("s{i}");
            let nonce = store.issue_nonce("card", &session, NOW, 300).await.unwrap();
            assert_eq!(
                store
                    .consume_nonce(&nonce, "card", &session, NOW)
                    .await
                    .unwrap(),
                Ok(())
            );
            store
                .log_event("refused", None, &json!({"i": i}), NOW)
                .await
                .unwrap();
            store
                .issue_code(
                    &key(),
                    Purpose::Login,
                    &session,
                    &phone(i),
                    NOW,
                    &CodePolicy::default(),
                )
                .await
                .unwrap()
                .unwrap();
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(db.store.events(1000).await.unwrap().len(), 64);
    db.finish().await;
}
