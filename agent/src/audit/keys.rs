//! The audit key file and the keys derived from it.
//!
//! The key file holds at least 32 random bytes (the agent creates it with 32 when it is
//! missing, mode 0600). Three keys are derived from it with HMAC-SHA256 under fixed labels, so
//! that no key is used for two purposes:
//! - the chain key MACs every line: whoever can edit the log but cannot read the key file cannot
//!   write a line (or re-chain the lines after an edit) that verifies;
//! - the head key MACs the head file (the last sequence number and MAC), which catches lines cut
//!   from the end of the log;
//! - the document key turns document numbers into stable pseudonyms: the same document gives
//!   the same hash in every line, and the number cannot be recovered without the key (document
//!   numbers are short and structured: an unkeyed hash could be reversed by trying them all).

use std::fs::{self, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use openssl::hash::MessageDigest;
use openssl::pkey::PKey;
use openssl::sign::Signer;
use zeroize::Zeroizing;

use super::AuditError;

/// Bytes the agent writes into a new key file; also the least it accepts.
pub const KEY_LEN: usize = 32;

/// A key file longer than this is not a key file.
const MAX_KEY_FILE: u64 = 4096;

const CHAIN_LABEL: &[u8] = b"eid-agent audit v1 chain";
const HEAD_LABEL: &[u8] = b"eid-agent audit v1 head";
const DOCUMENT_LABEL: &[u8] = b"eid-agent audit v1 document";

/// The keys derived from the audit key file. Zeroed when dropped.
pub struct Keys {
    chain: Zeroizing<Vec<u8>>,
    head: Zeroizing<Vec<u8>>,
    document: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keys(..)")
    }
}

fn hmac(key: &[u8], data: &[u8]) -> Result<Vec<u8>, openssl::error::ErrorStack> {
    let pkey = PKey::hmac(key)?;
    let mut signer = Signer::new(MessageDigest::sha256(), &pkey)?;
    signer.update(data)?;
    signer.sign_to_vec()
}

impl Keys {
    /// Derives the keys from the key file's bytes (at least [`KEY_LEN`]).
    pub fn derive(master: &[u8]) -> Result<Keys, AuditError> {
        if master.len() < KEY_LEN {
            return Err(AuditError::KeyTooShort {
                path: Default::default(),
                len: master.len(),
            });
        }
        let derive = |label: &[u8]| -> Result<Zeroizing<Vec<u8>>, AuditError> {
            Ok(Zeroizing::new(hmac(master, label).map_err(crypto)?))
        };
        Ok(Keys {
            chain: derive(CHAIN_LABEL)?,
            head: derive(HEAD_LABEL)?,
            document: derive(DOCUMENT_LABEL)?,
        })
    }

    /// The MAC of a canonical line.
    pub fn chain_mac(&self, canonical: &[u8]) -> Result<Vec<u8>, AuditError> {
        hmac(&self.chain, canonical).map_err(crypto)
    }

    /// The MAC of the head file's canonical content.
    pub fn head_mac(&self, canonical: &[u8]) -> Result<Vec<u8>, AuditError> {
        hmac(&self.head, canonical).map_err(crypto)
    }

    /// The pseudonym of a document number, hex. The number is normalised first (spaces and
    /// MRZ fillers `<` removed, upper case) so that the same document read two ways gives the
    /// same value.
    pub fn document_hash(&self, number: &str) -> Result<String, AuditError> {
        let normal: Zeroizing<String> = Zeroizing::new(
            number
                .chars()
                .filter(|c| !c.is_whitespace() && *c != '<')
                .flat_map(char::to_uppercase)
                .collect(),
        );
        Ok(hex::encode(
            hmac(&self.document, normal.as_bytes()).map_err(crypto)?,
        ))
    }
}

pub(super) fn crypto(e: openssl::error::ErrorStack) -> AuditError {
    AuditError::Crypto(e.to_string())
}

/// Reads the key file (refusing one that group or others can read, or one too short) and
/// derives the keys. With `create`, a missing file is created with [`KEY_LEN`] random bytes,
/// mode 0600 (its directory 0700 when it has to be created too).
pub fn load(path: &Path, create: bool) -> Result<Keys, AuditError> {
    let io = |source| AuditError::KeyIo {
        path: path.to_owned(),
        source,
    };
    match fs::symlink_metadata(path) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => {
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(parent)
                    .map_err(io)?;
            }
            let mut key = Zeroizing::new([0u8; KEY_LEN]);
            openssl::rand::rand_bytes(&mut key[..]).map_err(crypto)?;
            match OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
            {
                Ok(mut file) => {
                    file.write_all(&key[..]).map_err(io)?;
                    file.sync_all().map_err(io)?;
                    tracing::info!(path = %path.display(), "audit key file created");
                }
                // Another process created it meanwhile: use theirs.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(io(e)),
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(AuditError::KeyMissing {
                path: path.to_owned(),
            });
        }
        Err(e) => return Err(io(e)),
    }
    // The key file itself may not be a symbolic link (one planted in its place could point the
    // agent at a file someone else controls): the name must be a regular file, and the file
    // opened must be that same file.
    let named = fs::symlink_metadata(path).map_err(io)?;
    let file = OpenOptions::new().read(true).open(path).map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    if !named.file_type().is_file()
        || !meta.is_file()
        || (named.dev(), named.ino()) != (meta.dev(), meta.ino())
    {
        return Err(AuditError::KeyNotAFile {
            path: path.to_owned(),
        });
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(AuditError::KeyPermissions {
            path: path.to_owned(),
            mode,
        });
    }
    let mut bytes = Zeroizing::new(Vec::with_capacity(KEY_LEN));
    file.take(MAX_KEY_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > MAX_KEY_FILE {
        return Err(AuditError::KeyTooLong {
            path: path.to_owned(),
        });
    }
    Keys::derive(&bytes).map_err(|e| match e {
        AuditError::KeyTooShort { len, .. } => AuditError::KeyTooShort {
            path: path.to_owned(),
            len,
        },
        other => other,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_give_distinct_keys_and_numbers_are_normalised() {
        let keys = Keys::derive(&[7u8; 32]).unwrap();
        assert_ne!(keys.chain_mac(b"x").unwrap(), keys.head_mac(b"x").unwrap());
        assert_eq!(
            keys.document_hash("ab12 3<<").unwrap(),
            keys.document_hash("AB123").unwrap()
        );
        assert_ne!(
            keys.document_hash("AB123").unwrap(),
            keys.document_hash("AB124").unwrap()
        );
        let other = Keys::derive(&[8u8; 32]).unwrap();
        assert_ne!(
            keys.document_hash("AB123").unwrap(),
            other.document_hash("AB123").unwrap()
        );
        assert!(matches!(
            Keys::derive(&[1u8; 31]),
            Err(AuditError::KeyTooShort { len: 31, .. })
        ));
    }
}
