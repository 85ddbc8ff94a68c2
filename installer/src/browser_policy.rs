//! Chromium and Google Chrome managed policies (system scope).
//!
//! Chromium's Local Network Access (LNA) makes a public website ask the user before it may
//! fetch from a loopback address such as the bridge. On a desk, where the sites that use the
//! card are known, the administrator pre-approves them with the managed policy
//! `LocalNetworkAccessAllowedForUrls`; a citizen's browser simply asks once. The installer writes
//! one file of its own, `eid-agent.json`, into `/etc/chromium/policies/managed/` (Debian's
//! Chromium) and `/etc/opt/chrome/policies/managed/` (Google Chrome). Browsers merge every file of
//! that directory; ours holds only our keys, so removing it removes exactly what we added.
//!
//! The file also lists the machine CA in `CACertificates` (base64 DER), Chrome's policy for
//! trusting an enterprise CA for TLS server certificates on Linux, where the system trust store
//! is not consulted. The NSS registration per user remains the path every Chromium honours.
//!
//! [`read_lna_policies`] reads every `*.json` in both directories (ours and the administrator's
//! own) for `eid-agent doctor`.

use std::fs;
use std::path::{Path, PathBuf};

use base64::Engine;

/// The policy key of the Local Network Access allowlist.
pub const LNA_KEY: &str = "LocalNetworkAccessAllowedForUrls";
/// The policy key of the extra trusted CAs.
pub const CA_KEY: &str = "CACertificates";
/// The managed policy directories (without a root prefix).
pub const MANAGED_DIRS: [&str; 2] = [
    "/etc/chromium/policies/managed",
    "/etc/opt/chrome/policies/managed",
];
/// Policy files larger than this are not read (a policy file is a few hundred bytes).
const MAX_POLICY_BYTES: u64 = 1 << 20;

/// The LNA allowlist of one policy file.
#[derive(Clone, PartialEq, Eq, Debug, serde::Serialize)]
pub struct LnaPolicy {
    pub file: PathBuf,
    /// The `LocalNetworkAccessAllowedForUrls` entries (empty when the key is absent).
    pub origins: Vec<String>,
}

/// A policy file that could not be read or understood.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    #[error("cannot read {}: {source}", file.display())]
    Io {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is too large for a policy file", file.display())]
    TooLarge { file: PathBuf },
    #[error("{} is not valid JSON: {reason}", file.display())]
    Json { file: PathBuf, reason: String },
    #[error("{}: {reason}", file.display())]
    Shape { file: PathBuf, reason: String },
}

impl PolicyError {
    /// A stable code.
    pub fn code(&self) -> &'static str {
        match self {
            PolicyError::Io { .. } => "policy-unreadable",
            PolicyError::TooLarge { .. } | PolicyError::Json { .. } | PolicyError::Shape { .. } => {
                "policy-invalid"
            }
        }
    }

    /// What to do.
    pub fn remedy(&self) -> &'static str {
        match self {
            PolicyError::Io { .. } => "Check the file's permissions (policy files are 0644).",
            _ => {
                "Fix the JSON of the policy file named above (Chromium ignores a file it cannot \
                 parse), or run sudo eid-agent install --system to rewrite eid-agent.json."
            }
        }
    }
}

/// The JSON of our policy file: the LNA allowlist, and the CA when given.
pub fn render(origins: &[String], ca_der: Option<&[u8]>) -> String {
    let mut map = serde_json::Map::new();
    map.insert(
        LNA_KEY.to_owned(),
        serde_json::Value::from(origins.to_vec()),
    );
    if let Some(der) = ca_der {
        let b64 = base64::engine::general_purpose::STANDARD.encode(der);
        map.insert(CA_KEY.to_owned(), serde_json::Value::from(vec![b64]));
    }
    let mut text =
        serde_json::to_string_pretty(&serde_json::Value::Object(map)).unwrap_or_default();
    text.push('\n');
    text
}

/// Parses a policy file's text: a JSON object whose `LocalNetworkAccessAllowedForUrls`, if
/// present, is a list of strings.
pub fn parse(file: &Path, text: &str) -> Result<LnaPolicy, PolicyError> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| PolicyError::Json {
        file: file.to_path_buf(),
        reason: e.to_string(),
    })?;
    let shape = |reason: &str| PolicyError::Shape {
        file: file.to_path_buf(),
        reason: reason.to_owned(),
    };
    let object = value
        .as_object()
        .ok_or_else(|| shape("the top level is not a JSON object"))?;
    let origins = match object.get(LNA_KEY) {
        None => Vec::new(),
        Some(serde_json::Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| shape("LocalNetworkAccessAllowedForUrls holds a non-string"))
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(shape("LocalNetworkAccessAllowedForUrls is not a list")),
    };
    Ok(LnaPolicy {
        file: file.to_path_buf(),
        origins,
    })
}

/// The CA certificates (DER) listed in a policy text's `CACertificates`, for checks.
pub fn ca_certificates(text: &str) -> Vec<Vec<u8>> {
    let Ok(serde_json::Value::Object(map)) = serde_json::from_str::<serde_json::Value>(text) else {
        return Vec::new();
    };
    let Some(serde_json::Value::Array(items)) = map.get(CA_KEY) else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|v| v.as_str())
        .filter_map(|s| base64::engine::general_purpose::STANDARD.decode(s).ok())
        .collect()
}

/// Reads every `*.json` of both managed directories under `root` (sorted by path).
pub fn read_lna_policies(root: &Path) -> Vec<Result<LnaPolicy, PolicyError>> {
    let mut files: Vec<PathBuf> = Vec::new();
    for dir in MANAGED_DIRS {
        let Ok(entries) = fs::read_dir(crate::layout::prefixed(root, dir)) else {
            continue;
        };
        files.extend(
            entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "json")),
        );
    }
    files.sort();
    files.into_iter().map(|f| read_one(&f)).collect()
}

fn read_one(file: &Path) -> Result<LnaPolicy, PolicyError> {
    let io = |source| PolicyError::Io {
        file: file.to_path_buf(),
        source,
    };
    let meta = fs::metadata(file).map_err(io)?;
    if meta.len() > MAX_POLICY_BYTES {
        return Err(PolicyError::TooLarge {
            file: file.to_path_buf(),
        });
    }
    let bytes = fs::read(file).map_err(io)?;
    parse(file, &String::from_utf8_lossy(&bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_then_parse_round_trips() {
        let origins = vec!["https://desk.example".to_owned()];
        let text = render(&origins, Some(&[1, 2, 3]));
        let p = parse(Path::new("x.json"), &text).unwrap();
        assert_eq!(p.origins, origins);
        assert_eq!(ca_certificates(&text), vec![vec![1, 2, 3]]);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["CACertificates"][0], "AQID");
        assert_eq!(
            render(&[], None),
            "{\n  \"LocalNetworkAccessAllowedForUrls\": []\n}\n"
        );
    }

    #[test]
    fn hostile_policy_files_are_errors() {
        let f = Path::new("p.json");
        assert!(matches!(parse(f, ""), Err(PolicyError::Json { .. })));
        assert!(matches!(parse(f, "[1]"), Err(PolicyError::Shape { .. })));
        assert!(matches!(
            parse(f, r#"{"LocalNetworkAccessAllowedForUrls": "https://a"}"#),
            Err(PolicyError::Shape { .. })
        ));
        assert!(matches!(
            parse(f, r#"{"LocalNetworkAccessAllowedForUrls": [1]}"#),
            Err(PolicyError::Shape { .. })
        ));
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(parse(f, &deep).is_err());
        assert_eq!(parse(f, "{}").unwrap().origins, Vec::<String>::new());
        assert!(ca_certificates("{\"CACertificates\": [\"***\", 5]}").is_empty());
        assert!(ca_certificates("nonsense").is_empty());
    }

    #[test]
    fn reads_every_json_of_both_dirs() {
        let root = std::env::temp_dir().join(format!("eid-policy-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        let a = crate::layout::prefixed(&root, MANAGED_DIRS[0]);
        let b = crate::layout::prefixed(&root, MANAGED_DIRS[1]);
        fs::create_dir_all(&a).unwrap();
        fs::create_dir_all(&b).unwrap();
        fs::write(
            a.join("eid-agent.json"),
            render(&["https://x.example".into()], None),
        )
        .unwrap();
        fs::write(a.join("admin.json"), "{").unwrap();
        fs::write(a.join("notes.txt"), "ignored").unwrap();
        fs::write(b.join("eid-agent.json"), "{}").unwrap();
        let got = read_lna_policies(&root);
        assert_eq!(got.len(), 3);
        assert!(got[0].is_err());
        assert_eq!(got[1].as_ref().unwrap().origins, ["https://x.example"]);
        assert!(got[2].as_ref().unwrap().origins.is_empty());
        fs::remove_dir_all(&root).unwrap();
    }
}
