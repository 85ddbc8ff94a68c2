//! The agent's configuration: agent.toml, the administrator's policy, where they are looked for,
//! and the consent decision built on them.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::ffi::OsString;
use std::fs;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use eid_agent::config::{
    AdminPolicy, Config, ConfigArgs, ConfigError, DEFAULT_PORT, ENV_CONFIG_DIR, ENV_POLICY,
    parse_origin,
};
use eid_agent::consent::{By, Decision, SiteStore, decide};
use proptest::prelude::*;

/// A fresh directory for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("eid-config-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// No environment at all.
fn no_env(_: &str) -> Option<OsString> {
    None
}

/// Args with a config dir holding `agent_toml` (if any) and a policy file holding `policy`.
fn setup(name: &str, agent_toml: Option<&str>, policy: &str) -> (PathBuf, ConfigArgs) {
    let dir = scratch(name);
    let config_dir = dir.join("config");
    fs::create_dir_all(&config_dir).unwrap();
    if let Some(text) = agent_toml {
        fs::write(config_dir.join("agent.toml"), text).unwrap();
    }
    let policy_file = dir.join("policy.toml");
    fs::write(&policy_file, policy).unwrap();
    let args = ConfigArgs {
        config_dir: Some(config_dir.clone()),
        policy: Some(policy_file),
        ..ConfigArgs::default()
    };
    (config_dir, args)
}

fn origin(s: &str) -> eid_agent::config::Origin {
    parse_origin(s).unwrap()
}

#[test]
fn without_agent_toml_the_defaults_apply() {
    let (dir, args) = setup("defaults", None, "");
    let config = Config::load_with_env(&args, no_env).unwrap();
    assert_eq!(config.port, DEFAULT_PORT);
    assert_eq!(config.port, 24180);
    assert_eq!(
        config.listen,
        [
            "127.0.0.1".parse::<IpAddr>().unwrap(),
            "::1".parse().unwrap()
        ]
    );
    assert!(!config.dev_mode);
    assert_eq!(config.config_dir, dir);
    assert_eq!(config.pinentry, None);
    assert_eq!(config.prompt_timeout, Duration::from_secs(60));
    assert_eq!(config.queue_timeout, Duration::from_secs(60));
    assert_eq!(config.operation_timeout, Duration::from_secs(120));
    assert_eq!(config.queue_capacity, 32);
    assert_eq!(config.body_limit, 65536);
    assert_eq!(config.pin_rate_burst, 3);
    assert_eq!(config.pin_rate_period, Duration::from_secs(60));
    assert!(config.policy.allow.is_empty() && config.policy.deny.is_empty());
    assert!(config.policy.allow_dev_mode);
    assert!(config.warnings.is_empty());
    assert_eq!(config.tls_dir(), dir.join("tls"));
    assert_eq!(config.sites_file(), dir.join("sites.json"));
}

#[test]
fn every_agent_toml_key_is_applied() {
    let toml = r#"
port = 30000
listen = ["127.0.0.1"]
dev_mode = true
pinentry = "/usr/bin/pinentry-tty"
prompt_timeout_secs = 10
queue_timeout_secs = 11
operation_timeout_secs = 12
queue_capacity = 4
body_limit = 2048
pin_rate_burst = 5
pin_rate_period_secs = 7
"#;
    let (_, args) = setup("full", Some(toml), "");
    let c = Config::load_with_env(&args, no_env).unwrap();
    assert_eq!(c.port, 30000);
    assert_eq!(c.listen, ["127.0.0.1".parse::<IpAddr>().unwrap()]);
    assert!(c.dev_mode);
    assert_eq!(
        c.pinentry.as_deref(),
        Some(Path::new("/usr/bin/pinentry-tty"))
    );
    assert_eq!(c.prompt_timeout, Duration::from_secs(10));
    assert_eq!(c.queue_timeout, Duration::from_secs(11));
    assert_eq!(c.operation_timeout, Duration::from_secs(12));
    assert_eq!(c.queue_capacity, 4);
    assert_eq!(c.body_limit, 2048);
    assert_eq!(c.pin_rate_burst, 5);
    assert_eq!(c.pin_rate_period, Duration::from_secs(7));
}

#[test]
fn command_line_port_and_dev_override_the_file() {
    let (_, mut args) = setup("override", Some("port = 30000\n"), "");
    args.port = Some(0);
    args.dev = true;
    let c = Config::load_with_env(&args, no_env).unwrap();
    assert_eq!(c.port, 0);
    assert!(c.dev_mode);
}

#[test]
fn an_unknown_key_is_an_error_that_names_it() {
    let (_, args) = setup("unknown", Some("port = 1\nprompt_timeout = 5\n"), "");
    let err = Config::load_with_env(&args, no_env).unwrap_err();
    assert!(matches!(err, ConfigError::Syntax { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("prompt_timeout"), "{message}");
    assert!(message.contains("line 2"), "{message}");
    assert!(message.contains("agent.toml"), "{message}");
    assert!(!message.contains('\n'), "one line: {message}");
    assert_eq!(err.code(), "config-invalid");
}

#[test]
fn values_out_of_range_are_errors_that_name_the_key() {
    for (toml, key) in [
        ("listen = [\"0.0.0.0\"]", "listen"),
        ("listen = [\"192.168.1.2\"]", "listen"),
        ("listen = []", "listen"),
        ("prompt_timeout_secs = 0", "prompt_timeout_secs"),
        ("operation_timeout_secs = 100000", "operation_timeout_secs"),
        ("queue_capacity = 0", "queue_capacity"),
        ("body_limit = 10", "body_limit"),
        ("pin_rate_burst = 0", "pin_rate_burst"),
        ("pin_rate_period_secs = 0", "pin_rate_period_secs"),
        ("pinentry = \"\"", "pinentry"),
    ] {
        let (_, args) = setup("range", Some(toml), "");
        let err = Config::load_with_env(&args, no_env).unwrap_err();
        assert!(
            err.to_string().contains(key),
            "{toml}: {err} does not name {key}"
        );
    }
    for toml in [
        "port = 70000",
        "port = \"x\"",
        "listen = [\"not-an-ip\"]",
        "dev_mode = 1",
        "= =",
    ] {
        let (_, args) = setup("type", Some(toml), "");
        let err = Config::load_with_env(&args, no_env).unwrap_err();
        assert!(matches!(err, ConfigError::Syntax { .. }), "{toml}: {err:?}");
    }
}

#[test]
fn config_dir_comes_from_the_flag_then_the_environment() {
    let dir = scratch("env");
    let from_env = dir.join("from-env");
    let from_flag = dir.join("from-flag");
    fs::create_dir_all(&from_env).unwrap();
    fs::write(from_env.join("agent.toml"), "port = 30001\n").unwrap();
    let policy = dir.join("policy.toml");
    fs::write(&policy, "").unwrap();
    let env_value = from_env.clone().into_os_string();
    let env = |name: &str| (name == ENV_CONFIG_DIR).then(|| env_value.clone());

    let args = ConfigArgs {
        policy: Some(policy.clone()),
        ..ConfigArgs::default()
    };
    let c = Config::load_with_env(&args, env).unwrap();
    assert_eq!(c.config_dir, from_env);
    assert_eq!(c.port, 30001, "agent.toml of the environment's directory");

    let args = ConfigArgs {
        config_dir: Some(from_flag.clone()),
        policy: Some(policy.clone()),
        ..ConfigArgs::default()
    };
    let c = Config::load_with_env(&args, env).unwrap();
    assert_eq!(c.config_dir, from_flag, "the flag wins");
    assert_eq!(c.port, DEFAULT_PORT);

    // An empty variable counts as unset.
    let args = ConfigArgs {
        policy: Some(policy),
        ..ConfigArgs::default()
    };
    let c = Config::load_with_env(&args, |_| Some(OsString::new())).unwrap();
    assert!(c.config_dir.ends_with("eid-agent"), "{:?}", c.config_dir);
}

#[test]
fn policy_file_comes_from_the_flag_then_the_environment() {
    let dir = scratch("policy-env");
    let env_policy = dir.join("env-policy.toml");
    fs::write(&env_policy, "deny = [\"https://bad.example\"]\n").unwrap();
    let env_value = env_policy.clone().into_os_string();
    let env = |name: &str| (name == ENV_POLICY).then(|| env_value.clone());
    let args = ConfigArgs {
        config_dir: Some(dir.join("config")),
        ..ConfigArgs::default()
    };
    let c = Config::load_with_env(&args, env).unwrap();
    assert_eq!(c.policy.deny, [origin("https://bad.example")]);
    assert_eq!(c.policy.source.as_deref(), Some(env_policy.as_path()));

    let flag_policy = dir.join("flag-policy.toml");
    fs::write(&flag_policy, "allow = [\"https://good.example\"]\n").unwrap();
    let args = ConfigArgs {
        config_dir: Some(dir.join("config")),
        policy: Some(flag_policy),
        ..ConfigArgs::default()
    };
    let c = Config::load_with_env(&args, env).unwrap();
    assert_eq!(c.policy.allow, [origin("https://good.example")]);
    assert!(
        c.policy.deny.is_empty(),
        "the flag wins over the environment"
    );
}

#[test]
fn a_policy_file_named_explicitly_must_exist() {
    let dir = scratch("policy-missing");
    let args = ConfigArgs {
        config_dir: Some(dir.clone()),
        policy: Some(dir.join("nope.toml")),
        ..ConfigArgs::default()
    };
    let err = Config::load_with_env(&args, no_env).unwrap_err();
    assert!(matches!(err, ConfigError::PolicyMissing { .. }), "{err:?}");
    assert!(err.to_string().contains("nope.toml"));
    // At the default place, a missing file is no policy.
    let policy = AdminPolicy::load(&dir.join("nope.toml"), false).unwrap();
    assert_eq!(policy, AdminPolicy::default());
}

#[test]
fn policy_origins_are_normalised() {
    let text = r#"
allow = ["HTTPS://Desk.Example", "https://desk.example:443", "https://kiosk.example:8443/"]
deny = ["https://BAD.example"]
allow_dev_mode = false
"#;
    let policy = AdminPolicy::parse(text, Path::new("policy.toml")).unwrap();
    let allow: Vec<String> = policy.allow.iter().map(|o| o.to_string()).collect();
    assert_eq!(
        allow,
        ["https://desk.example", "https://kiosk.example:8443"]
    );
    assert_eq!(policy.deny, [origin("https://bad.example")]);
    assert!(!policy.allow_dev_mode);
    assert!(policy.allows(&origin("https://desk.example")));
    assert!(!policy.allows(&origin("https://other.example")));
}

#[test]
fn a_policy_entry_that_is_not_an_origin_is_an_error_naming_it() {
    for (list, entry) in [
        ("allow", "https://desk.example/enrol"),
        ("allow", "*"),
        ("deny", "https://*.example"),
        ("allow", "desk.example"),
        ("deny", "https://desk.example?x=1"),
        ("allow", "ftp://desk.example"),
        ("allow", "http://desk.example"),
    ] {
        let text = format!("{list} = [\"https://fine.example\", \"{entry}\"]\n");
        let err = AdminPolicy::parse(&text, Path::new("/etc/eid-agent/policy.toml")).unwrap_err();
        assert!(
            matches!(err, ConfigError::PolicyOrigin { .. }),
            "{entry}: {err:?}"
        );
        let message = err.to_string();
        assert!(message.contains(entry), "{message} does not name {entry}");
        assert!(
            message.contains(list),
            "{message} does not name the list {list}"
        );
        assert!(message.contains("/etc/eid-agent/policy.toml"), "{message}");
        assert_eq!(err.code(), "policy-invalid");
    }
    let err = AdminPolicy::parse("allow_everything = true\n", Path::new("p.toml")).unwrap_err();
    assert!(err.to_string().contains("allow_everything"), "{err}");
}

#[test]
fn the_administrator_can_forbid_development_mode() {
    let (_, mut args) = setup(
        "no-dev",
        Some("dev_mode = true\n"),
        "allow_dev_mode = false\n",
    );
    let c = Config::load_with_env(&args, no_env).unwrap();
    assert!(!c.dev_mode, "forced off by the policy");
    assert_eq!(c.warnings.len(), 1);
    assert!(c.warnings[0].contains("policy"), "{:?}", c.warnings);

    args.dev = true;
    let c = Config::load_with_env(&args, no_env).unwrap();
    assert!(!c.dev_mode, "--dev is forced off too");

    let (_, args) = setup("dev", Some("dev_mode = true\n"), "allow_dev_mode = true\n");
    let c = Config::load_with_env(&args, no_env).unwrap();
    assert!(c.dev_mode);
    assert!(c.warnings.is_empty());
}

#[test]
fn decide_puts_the_administrator_first_then_the_user() {
    let dir = scratch("decide");
    let policy = AdminPolicy::parse(
        r#"allow = ["https://desk.example", "https://both.example"]
deny = ["https://bad.example", "https://both.example"]"#,
        Path::new("policy.toml"),
    )
    .unwrap();
    let store = SiteStore::in_config_dir(&dir);
    let now = time::OffsetDateTime::now_utc();
    store.remember(&origin("https://bad.example"), now).unwrap();
    store
        .remember(&origin("https://mine.example"), now)
        .unwrap();

    assert_eq!(
        decide(&policy, &store, &origin("https://bad.example")),
        Decision::Denied(By::Admin),
        "the deny list wins over the user's choice"
    );
    assert_eq!(
        decide(&policy, &store, &origin("https://both.example")),
        Decision::Denied(By::Admin),
        "the deny list wins over the allow list"
    );
    assert_eq!(
        decide(&policy, &store, &origin("https://desk.example")),
        Decision::Allowed(By::Admin)
    );
    assert_eq!(
        decide(&policy, &store, &origin("https://mine.example")),
        Decision::Allowed(By::User)
    );
    assert_eq!(
        decide(&policy, &store, &origin("https://mine.example:8443")),
        Decision::Ask,
        "another port is another origin"
    );
    assert_eq!(
        decide(&policy, &store, &origin("https://new.example")),
        Decision::Ask
    );
}

/// Strings shaped like origins, valid or nearly so.
fn origin_like() -> impl Strategy<Value = String> {
    (
        prop_oneof![
            Just("https"),
            Just("http"),
            Just("HTTPS"),
            Just("ftp"),
            Just("")
        ],
        prop_oneof![
            "[a-zA-Z0-9-]{1,12}(\\.[a-zA-Z0-9-]{1,12}){0,3}",
            Just("localhost".to_owned()),
            Just("127.0.0.1".to_owned()),
            Just("[::1]".to_owned()),
            "\\[[0-9a-f:]{2,20}\\]",
            "[ -~]{0,20}",
        ],
        prop::option::of(0u32..70000),
        prop_oneof![
            Just(""),
            Just("/"),
            Just("/x"),
            Just("?q"),
            Just("#f"),
            Just(" ")
        ],
    )
        .prop_map(|(scheme, host, port, tail)| match port {
            Some(p) => format!("{scheme}://{host}:{p}{tail}"),
            None => format!("{scheme}://{host}{tail}"),
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn parse_origin_never_panics(s in "\\PC{0,300}") {
        let _ = parse_origin(&s);
    }

    #[test]
    fn parsed_origins_round_trip_in_canonical_form(s in origin_like()) {
        if let Ok(o) = parse_origin(&s) {
            let canonical = o.to_string();
            let again = parse_origin(&canonical).unwrap();
            prop_assert_eq!(&again, &o);
            prop_assert_eq!(again.to_string(), canonical.clone());
            prop_assert!(canonical.len() <= 255);
            prop_assert!(!canonical.ends_with('/'));
            prop_assert!(!canonical.ends_with(":443") || canonical.starts_with("http:"));
            prop_assert_eq!(canonical.to_ascii_lowercase(), canonical);
        }
    }

    #[test]
    fn policy_files_never_panic(s in "\\PC{0,200}") {
        let _ = AdminPolicy::parse(&s, Path::new("p.toml"));
    }

    #[test]
    fn policy_entries_are_stored_canonical(entries in prop::collection::vec(origin_like(), 0..6)) {
        let text = format!(
            "allow = [{}]\n",
            entries.iter().map(|e| format!("{e:?}")).collect::<Vec<_>>().join(", ")
        );
        // The Debug form of a Rust string is a valid TOML basic string for these inputs
        // (printable ASCII); the policy either refuses an entry or keeps it canonical.
        if let Ok(policy) = AdminPolicy::parse(&text, Path::new("p.toml")) {
            for o in &policy.allow {
                prop_assert_eq!(parse_origin(&o.to_string()).unwrap(), o.clone());
            }
            prop_assert!(entries.iter().all(|e| parse_origin(e).is_ok()));
        } else {
            prop_assert!(entries.iter().any(|e| parse_origin(e).is_err()));
        }
    }

    #[test]
    fn agent_toml_never_panics(s in "\\PC{0,200}") {
        let mut c = Config::defaults(PathBuf::from("/nonexistent"));
        let _ = c.apply_file(&s, Path::new("agent.toml"));
    }
}
