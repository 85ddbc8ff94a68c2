//! Desk operators' passwords: argon2id PHC strings (OWASP parameters m=19456 KiB, t=2, p=1),
//! salted with 16 random bytes from OpenSSL. Verification reads the parameters from the stored
//! string, so hashes made with other parameters keep working.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

/// Shortest operator password accepted by `operator add`.
pub const MIN_PASSWORD_LEN: usize = 10;

fn argon2(fast: bool) -> Result<Argon2<'static>, String> {
    let params = if fast {
        Params::new(1024, 1, 1, None)
    } else {
        Params::new(19_456, 2, 1, None)
    }
    .map_err(|e| e.to_string())?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// The PHC string of `password` (`fast`: cheap parameters, tests only).
pub fn hash_password(password: &str, fast: bool) -> Result<String, String> {
    let mut salt = [0u8; 16];
    openssl::rand::rand_bytes(&mut salt).map_err(|e| e.to_string())?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
    argon2(fast)?
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// Whether `password` matches `phc`; false for a malformed string.
pub fn verify_password(phc: &str, password: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let h = hash_password("correct horse", true).unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password(&h, "correct horse"));
        assert!(!verify_password(&h, "correct horsE"));
        assert!(!verify_password("not a hash", "x"));
    }
}
