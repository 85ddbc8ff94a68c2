//! Secrets of the enrolment service: mobile-key PINs, one-time codes, session tokens.
//!
//! What is stored, and why:
//! - a PIN only as an argon2id PHC string ([`PinHasher`]): a slow, salted, memory-hard hash, so
//!   a stolen database does not give the PINs away cheaply (a 4 to 6 digit PIN has at most a
//!   million values, so the hash cost is what stands between a thief and the PIN; the real
//!   protection is the online attempt limit that suspends the mobile key);
//! - a one-time code only as a keyed hash ([`CodeKey`]: HMAC-SHA256 under a server key that is
//!   not in the database), bound to its purpose and session, so a database dump alone does not
//!   reveal live codes and a code for one session cannot be replayed in another;
//! - a session cookie only as its SHA-256 ([`session_token_hash`]): the cookie is 256 random
//!   bits, so a plain hash is enough and lets the server look sessions up by key.
//!
//! Randomness comes from OpenSSL's CSPRNG (`RAND_bytes`). Clear secrets are held in
//! [`Zeroizing`] containers and never logged.

use std::fs;
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use openssl::hash::MessageDigest;
use openssl::pkey::PKey;
use openssl::sign::Signer;
use thiserror::Error;
use zeroize::Zeroizing;

/// Errors of this module. None of them carries a secret.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum SecretError {
    /// The system random generator failed.
    #[error("no randomness available: {0}")]
    Random(String),
    /// argon2 refused to hash (should not happen with the built-in parameters).
    #[error("PIN hashing failed: {0}")]
    Hash(String),
    /// HMAC computation failed in OpenSSL.
    #[error("code hashing failed: {0}")]
    Mac(String),
    /// Reading or writing the code key file failed.
    #[error("code key file {path}: {source}")]
    Io {
        /// The key file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The code key file exists but is not acceptable (format, permissions).
    #[error("code key file {path}: {reason}")]
    KeyFile {
        /// The key file.
        path: PathBuf,
        /// What is wrong and how to fix it.
        reason: String,
    },
}

/// Fills `buf` from OpenSSL's CSPRNG, retrying a transient failure a few times.
pub fn random_bytes(buf: &mut [u8]) -> Result<(), SecretError> {
    let mut last = None;
    for _ in 0..3 {
        match openssl::rand::rand_bytes(buf) {
            Ok(()) => return Ok(()),
            Err(e) => last = Some(e),
        }
    }
    Err(SecretError::Random(
        last.map(|e| e.to_string()).unwrap_or_default(),
    ))
}

/// Random identifier for database rows: hex of 16 random bytes (128 bits, no collisions in
/// practice, nothing guessable).
pub fn new_id() -> Result<String, SecretError> {
    let mut bytes = [0u8; 16];
    random_bytes(&mut bytes)?;
    Ok(hex::encode(bytes))
}

// ---------------------------------------------------------------------------------------------
// PINs
// ---------------------------------------------------------------------------------------------

/// Upper bounds on the parameters of a stored hash that [`PinHasher::verify`] accepts: a
/// tampered row must not make the server allocate gigabytes or spin for minutes.
const MAX_VERIFY_M_COST: u32 = 256 * 1024;
const MAX_VERIFY_T_COST: u32 = 16;
const MAX_VERIFY_P_COST: u32 = 8;
/// Salt length in bytes (the PHC recommendation: 16).
const SALT_LEN: usize = 16;

/// Hashes and verifies mobile-key PINs with argon2id (RFC 9106), PHC string format
/// (`$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`), a fresh 16-byte random salt per hash.
///
/// A hash records its own parameters, so hashes made with [`PinHasher::for_tests`] verify with
/// a [`PinHasher::new`] and the other way round; raising the cost later keeps old hashes valid.
#[derive(Clone, Debug)]
pub struct PinHasher {
    params: Params,
}

impl Default for PinHasher {
    fn default() -> Self {
        Self::new()
    }
}

impl PinHasher {
    /// argon2id with m = 19456 KiB (19 MiB), t = 2, p = 1: the OWASP Password Storage Cheat
    /// Sheet's first recommended configuration (and argon2's defaults). About 20-50 ms per hash
    /// on a current server core.
    pub fn new() -> Self {
        Self {
            params: Params::DEFAULT,
        }
    }

    /// Cheap parameters (m = 1024 KiB, t = 1, p = 1) for tests and `--fast-pin-hash`: same
    /// format, far weaker. Never for real deployments.
    pub fn for_tests() -> Self {
        Self {
            params: Params::new(1024, 1, 1, None).unwrap_or_default(),
        }
    }

    fn argon2(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
    }

    /// The PHC string of `pin` under a fresh random salt.
    pub fn hash(&self, pin: &str) -> Result<String, SecretError> {
        let mut salt = [0u8; SALT_LEN];
        random_bytes(&mut salt)?;
        let salt = SaltString::encode_b64(&salt).map_err(|e| SecretError::Hash(e.to_string()))?;
        self.argon2()
            .hash_password(pin.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| SecretError::Hash(e.to_string()))
    }

    /// Whether `pin` matches the PHC string `phc` (constant-time comparison inside argon2).
    /// False for a malformed string, another algorithm than argon2id, or parameters beyond
    /// sane bounds.
    pub fn verify(&self, phc: &str, pin: &str) -> bool {
        let Ok(parsed) = PasswordHash::new(phc) else {
            return false;
        };
        if parsed.algorithm != argon2::ARGON2ID_IDENT {
            return false;
        }
        let Ok(params) = Params::try_from(&parsed) else {
            return false;
        };
        if params.m_cost() > MAX_VERIFY_M_COST
            || params.t_cost() > MAX_VERIFY_T_COST
            || params.p_cost() > MAX_VERIFY_P_COST
        {
            return false;
        }
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .verify_password(pin.as_bytes(), &parsed)
            .is_ok()
    }

    /// Spends the same time as a [`verify`](Self::verify) against a hash of this hasher's
    /// parameters, for a login with an unknown contact: the answer time must not tell whether a
    /// contact is enrolled.
    pub fn burn(&self, pin: &str) {
        let salt = [0x5au8; SALT_LEN];
        if let Ok(salt) = SaltString::encode_b64(&salt) {
            let _ = self.argon2().hash_password(pin.as_bytes(), &salt);
        }
    }
}

/// Why a new PIN is refused. [`code`](Self::code) is the API error code; `Display` is the
/// reason in plain words.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum PinRule {
    /// Not 4 to 6 ASCII digits.
    #[error("the PIN must be 4 to 6 digits")]
    Format,
    /// Every digit the same (0000, 99999).
    #[error("the PIN must not repeat one digit (like 0000)")]
    AllSame,
    /// A straight run up or down (1234, 654321).
    #[error("the PIN must not be a run of digits (like 1234 or 4321)")]
    Sequence,
}

impl PinRule {
    /// `"pin-format"` or `"pin-weak"`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Format => "pin-format",
            Self::AllSame | Self::Sequence => "pin-weak",
        }
    }
}

/// Checks a newly chosen PIN: 4 to 6 ASCII digits; refuses the guesses an attacker tries
/// first (one digit repeated, straight runs up or down). The online attempt limit does the
/// rest.
pub fn check_new_pin(pin: &str) -> Result<(), PinRule> {
    let bytes = pin.as_bytes();
    if !(4..=6).contains(&bytes.len()) || !bytes.iter().all(u8::is_ascii_digit) {
        return Err(PinRule::Format);
    }
    let steps: Vec<i16> = bytes
        .windows(2)
        .map(|w| match w {
            [a, b] => i16::from(*b) - i16::from(*a),
            _ => 0,
        })
        .collect();
    if steps.iter().all(|s| *s == 0) {
        return Err(PinRule::AllSame);
    }
    if steps.iter().all(|s| *s == 1) || steps.iter().all(|s| *s == -1) {
        return Err(PinRule::Sequence);
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// One-time codes
// ---------------------------------------------------------------------------------------------

/// Largest multiple of 10^6 that fits below 2^32: values at or above it are rejected so that
/// every 6-digit code is equally likely (no modulo bias).
const CODE_SAMPLE_LIMIT: u32 = 4_294_000_000;

/// A 6-digit one-time code, uniform over 000000..=999999 (rejection sampling over 32-bit
/// values from OpenSSL's CSPRNG).
pub fn try_new_code() -> Result<Zeroizing<String>, SecretError> {
    loop {
        let mut buf = Zeroizing::new([0u8; 4]);
        random_bytes(buf.as_mut())?;
        let value = u32::from_be_bytes(*buf);
        if value < CODE_SAMPLE_LIMIT {
            return Ok(Zeroizing::new(format!("{:06}", value % 1_000_000)));
        }
    }
}

/// [`try_new_code`] for callers that cannot handle a broken system random generator.
///
/// # Panics
/// Only when OpenSSL's random generator fails three times in a row: the process then cannot
/// produce any secret safely and must not go on (the same policy as `getrandom`-based crates).
#[expect(clippy::panic, reason = "no safe way to continue without randomness")]
pub fn new_code() -> Zeroizing<String> {
    match try_new_code() {
        Ok(code) => code,
        Err(e) => panic!("{e}"),
    }
}

/// The server key under which one-time codes are hashed (HMAC-SHA256). Kept outside the
/// database (a file next to it, mode 0600) so that a leaked database does not reveal codes.
pub struct CodeKey(Zeroizing<[u8; 32]>);

impl std::fmt::Debug for CodeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CodeKey(..)")
    }
}

impl CodeKey {
    /// A fresh random key.
    ///
    /// # Panics
    /// Only when the system random generator is broken (see [`new_code`]).
    #[expect(clippy::panic, reason = "no safe way to continue without randomness")]
    pub fn generate() -> Self {
        match Self::try_generate() {
            Ok(key) => key,
            Err(e) => panic!("{e}"),
        }
    }

    /// A fresh random key, or the random generator's error.
    pub fn try_generate() -> Result<Self, SecretError> {
        let mut key = Zeroizing::new([0u8; 32]);
        random_bytes(key.as_mut())?;
        Ok(Self(key))
    }

    /// A key from its bytes (tests, or a key kept in a secret manager).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// Reads the key from `path` (64 hex digits, optionally followed by a newline) or, when the
    /// file does not exist, creates it with a random key: written to a temporary file with mode
    /// 0600 in the same directory, synced, then linked into place without overwriting, so two
    /// processes starting together agree on one key. An existing file readable by group or
    /// others is refused (on Unix).
    pub fn load_or_create(path: &Path) -> Result<Self, SecretError> {
        match Self::load(path) {
            Err(SecretError::Io { source, .. }) if source.kind() == ErrorKind::NotFound => {}
            other => return other,
        }
        let key = Self::try_generate()?;
        let io = |source| SecretError::Io {
            path: path.to_path_buf(),
            source,
        };
        let dir = path.parent().filter(|p| !p.as_os_str().is_empty());
        if let Some(dir) = dir {
            fs::create_dir_all(dir).map_err(io)?;
        }
        let mut suffix = [0u8; 8];
        random_bytes(&mut suffix)?;
        let file_name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "code-key".to_owned());
        let tmp = path.with_file_name(format!(".{file_name}.{}.tmp", hex::encode(suffix)));
        let result = (|| {
            let mut options = fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt as _;
                options.mode(0o600);
            }
            let mut file = options.open(&tmp)?;
            let text = Zeroizing::new(format!("{}\n", hex::encode(key.0.as_ref())));
            file.write_all(text.as_bytes())?;
            file.sync_all()?;
            drop(file);
            fs::hard_link(&tmp, path)
        })();
        let _ = fs::remove_file(&tmp);
        match result {
            Ok(()) => Ok(key),
            // Another process created it first: use theirs.
            Err(e) if e.kind() == ErrorKind::AlreadyExists => Self::load(path),
            Err(e) => Err(io(e)),
        }
    }

    fn load(path: &Path) -> Result<Self, SecretError> {
        let io = |source| SecretError::Io {
            path: path.to_path_buf(),
            source,
        };
        let bad = |reason: &str| SecretError::KeyFile {
            path: path.to_path_buf(),
            reason: reason.to_owned(),
        };
        let meta = fs::metadata(path).map_err(io)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            if meta.permissions().mode() & 0o077 != 0 {
                return Err(bad(
                    "readable by other users; restrict it with `chmod 600` (or delete it to make a new key, which invalidates outstanding codes)",
                ));
            }
        }
        if meta.len() > 200 {
            return Err(bad("too large for a key (expected 64 hex digits)"));
        }
        let text = Zeroizing::new(fs::read_to_string(path).map_err(io)?);
        let mut key = Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(text.trim(), key.as_mut())
            .map_err(|_| bad("not a key (expected 64 hex digits)"))?;
        Ok(Self(key))
    }

    /// HMAC-SHA256(key, purpose || 0x00 || session || 0x00 || code) in lower-case hex. The
    /// separators make the encoding unambiguous (none of the parts contains a NUL byte).
    pub fn hash(&self, purpose: &str, session: &str, code: &str) -> String {
        self.try_hash(purpose, session, code)
            // HMAC with a valid key cannot fail in practice; an empty string never matches a
            // stored hash (they are 64 hex digits), so a failure fails closed.
            .unwrap_or_default()
    }

    fn try_hash(&self, purpose: &str, session: &str, code: &str) -> Result<String, SecretError> {
        let mac = |e: openssl::error::ErrorStack| SecretError::Mac(e.to_string());
        let pkey = PKey::hmac(self.0.as_ref()).map_err(mac)?;
        let mut signer = Signer::new(MessageDigest::sha256(), &pkey).map_err(mac)?;
        for part in [
            purpose.as_bytes(),
            b"\0",
            session.as_bytes(),
            b"\0",
            code.as_bytes(),
        ] {
            signer.update(part).map_err(mac)?;
        }
        let out = Zeroizing::new(signer.sign_to_vec().map_err(mac)?);
        Ok(hex::encode(out.as_slice()))
    }
}

/// Compares two strings in constant time (for their common length; lengths are not secret).
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && openssl::memcmp::eq(a.as_bytes(), b.as_bytes())
}

// ---------------------------------------------------------------------------------------------
// Session tokens
// ---------------------------------------------------------------------------------------------

/// A new session token (32 random bytes, base64url without padding: 43 characters, cookie
/// safe) and its hash as stored ([`session_token_hash`]).
///
/// # Panics
/// Only when the system random generator is broken (see [`new_code`]).
#[expect(clippy::panic, reason = "no safe way to continue without randomness")]
pub fn new_session_token() -> (Zeroizing<String>, String) {
    match try_new_session_token() {
        Ok(pair) => pair,
        Err(e) => panic!("{e}"),
    }
}

/// [`new_session_token`] returning the random generator's error instead of panicking.
pub fn try_new_session_token() -> Result<(Zeroizing<String>, String), SecretError> {
    let mut bytes = Zeroizing::new([0u8; 32]);
    random_bytes(bytes.as_mut())?;
    let token = Zeroizing::new(URL_SAFE_NO_PAD.encode(bytes.as_ref()));
    let hash = session_token_hash(&token);
    Ok((token, hash))
}

/// SHA-256 of the token's text, lower-case hex: the session's key in the database.
pub fn session_token_hash(token: &str) -> String {
    hex::encode(openssl::sha::sha256(token.as_bytes()))
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
mod tests {
    use super::*;

    #[test]
    fn pin_hash_round_trip_and_format() {
        let hasher = PinHasher::for_tests();
        let phc = hasher.hash("4826").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"), "{phc}");
        assert!(hasher.verify(&phc, "4826"));
        assert!(!hasher.verify(&phc, "4827"));
        // Fresh salt each time.
        assert_ne!(phc, hasher.hash("4826").unwrap());
        // Parameters travel with the hash.
        assert!(PinHasher::new().verify(&phc, "4826"));
        hasher.burn("4826");
    }

    #[test]
    fn default_parameters_are_owasp() {
        let phc = PinHasher::new().hash("4826").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(PinHasher::for_tests().verify(&phc, "4826"));
    }

    #[test]
    fn verify_refuses_malformed_and_foreign_hashes() {
        let hasher = PinHasher::for_tests();
        for phc in [
            "",
            "4826",
            "$argon2id$",
            "$argon2i$v=19$m=1024,t=1,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g",
            "$argon2id$v=19$m=4000000,t=1,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g",
            "$pbkdf2-sha256$i=1000$c2FsdA$aGFzaA",
        ] {
            assert!(!hasher.verify(phc, "4826"), "{phc}");
        }
    }

    #[test]
    fn pin_rules() {
        for ok in ["4826", "13579", "902317", "1235", "0102"] {
            assert_eq!(check_new_pin(ok), Ok(()), "{ok}");
        }
        for (pin, rule) in [
            ("", PinRule::Format),
            ("123", PinRule::Format),
            ("1234567", PinRule::Format),
            ("12a4", PinRule::Format),
            (" 4826", PinRule::Format),
            ("٤٨٢٦", PinRule::Format), // Arabic-Indic digits are not ASCII digits
            ("0000", PinRule::AllSame),
            ("999999", PinRule::AllSame),
            ("1234", PinRule::Sequence),
            ("654321", PinRule::Sequence),
            ("45678", PinRule::Sequence),
        ] {
            assert_eq!(check_new_pin(pin), Err(rule.clone()), "{pin}");
        }
        assert_eq!(PinRule::Format.code(), "pin-format");
        assert_eq!(PinRule::Sequence.code(), "pin-weak");
        assert_eq!(PinRule::AllSame.code(), "pin-weak");
    }

    #[test]
    fn codes_are_six_digits_and_spread() {
        let mut first_digits = [0u32; 10];
        for _ in 0..2000 {
            let code = new_code();
            assert_eq!(code.len(), 6);
            assert!(code.bytes().all(|b| b.is_ascii_digit()));
            first_digits[usize::from(code.as_bytes()[0] - b'0')] += 1;
        }
        // Every leading digit appears (2000 draws, 10 buckets: a missing one means a bias bug).
        assert!(first_digits.iter().all(|n| *n > 100), "{first_digits:?}");
    }

    #[test]
    fn code_hash_binds_purpose_session_and_key() {
        let key = CodeKey::from_bytes([7; 32]);
        let h = key.hash("enrolment", "s1", "123456");
        assert_eq!(h.len(), 64);
        assert_eq!(h, key.hash("enrolment", "s1", "123456"));
        assert_ne!(h, key.hash("login", "s1", "123456"));
        assert_ne!(h, key.hash("enrolment", "s2", "123456"));
        assert_ne!(h, key.hash("enrolment", "s1", "123457"));
        // The separators keep the parts apart: "ab"+"c" is not "a"+"bc".
        assert_ne!(key.hash("ab", "c", "1"), key.hash("a", "bc", "1"));
        assert_ne!(
            h,
            CodeKey::from_bytes([8; 32]).hash("enrolment", "s1", "123456")
        );
        // The documented construction, byte for byte.
        let expected = {
            let pkey = PKey::hmac(&[7u8; 32]).unwrap();
            let mut s = Signer::new(MessageDigest::sha256(), &pkey).unwrap();
            s.update(b"enrolment\x00s1\x00123456").unwrap();
            hex::encode(s.sign_to_vec().unwrap())
        };
        assert_eq!(h, expected);
    }

    #[test]
    fn code_key_file_is_created_once_and_private() {
        let dir = std::env::temp_dir().join(format!("eid-codekey-{}", new_id().unwrap()));
        let path = dir.join("sub").join("code-key");
        let a = CodeKey::load_or_create(&path).unwrap();
        let b = CodeKey::load_or_create(&path).unwrap();
        assert_eq!(a.hash("p", "s", "c"), b.hash("p", "s", "c"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
            fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
            assert!(matches!(
                CodeKey::load_or_create(&path),
                Err(SecretError::KeyFile { .. })
            ));
            fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        }
        fs::write(&path, "not hex").unwrap();
        assert!(matches!(
            CodeKey::load_or_create(&path),
            Err(SecretError::KeyFile { .. })
        ));
        // No temporary files left behind.
        let left: Vec<_> = fs::read_dir(dir.join("sub")).unwrap().collect();
        assert_eq!(left.len(), 1);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn code_key_concurrent_creation_agrees() {
        let dir = std::env::temp_dir().join(format!("eid-codekey-{}", new_id().unwrap()));
        let path = dir.join("code-key");
        let hashes: Vec<String> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| s.spawn(|| CodeKey::load_or_create(&path).unwrap().hash("p", "s", "c")))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(hashes.windows(2).all(|w| w[0] == w[1]));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn session_tokens() {
        let (token, hash) = new_session_token();
        assert_eq!(token.len(), 43);
        assert!(
            token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_eq!(hash, session_token_hash(&token));
        assert_eq!(hash.len(), 64);
        assert_ne!(new_session_token().0, token);
        // SHA-256("abc")
        assert_eq!(
            session_token_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn constant_time_eq_works() {
        assert!(constant_time_eq("abc", "abc"));
        assert!(!constant_time_eq("abc", "abd"));
        assert!(!constant_time_eq("abc", "ab"));
    }
}
