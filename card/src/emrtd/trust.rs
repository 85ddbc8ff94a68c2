//! Loading a CSCA trust store (ICAO 9303-12 §9) from disk: a folder of certificates and CRLs
//! (PEM or DER) and/or a CSCA master list (CMS, eContentType 2.23.136.1.1.2). The parsing and the
//! master list's own verification are `eid_protocols::pa::CscaStore`'s; this module only reads
//! the files.

use std::path::{Path, PathBuf};

use eid_protocols::pa::{CscaStore, PaError};
use time::OffsetDateTime;

/// Why a trust store could not be loaded. User's fault (a wrong path or file).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrustStoreError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a certificate, CRL or master list: {source}")]
    Invalid { path: PathBuf, source: PaError },
    #[error("{0} holds no CSCA certificate")]
    Empty(PathBuf),
}

/// Largest trust file read (a full ICAO master list is a few MB).
const MAX_TRUST_FILE: u64 = 32 << 20;
/// Most files taken from one folder.
const MAX_FILES: usize = 10_000;

fn read(path: &Path) -> Result<Vec<u8>, TrustStoreError> {
    let io = |source| TrustStoreError::Io {
        path: path.to_owned(),
        source,
    };
    let len = std::fs::metadata(path).map_err(io)?.len();
    if len > MAX_TRUST_FILE {
        return Err(io(std::io::Error::other("file too large")));
    }
    std::fs::read(path).map_err(io)
}

/// Builds a store from a folder (every regular file in it: certificates, CRLs, master lists)
/// and/or a master list file. Files in the folder that are none of these are skipped with a
/// warning; a master list given explicitly must verify.
pub fn load(
    folder: Option<&Path>,
    master_list: Option<&Path>,
) -> Result<CscaStore, TrustStoreError> {
    let now = OffsetDateTime::now_utc();
    let mut store = CscaStore::new();
    if let Some(dir) = folder {
        add_folder(&mut store, dir, now)?;
        if store.is_empty() {
            return Err(TrustStoreError::Empty(dir.to_owned()));
        }
    }
    if let Some(path) = master_list {
        let bytes = read(path)?;
        store
            .add_master_list(&bytes, now)
            .map_err(|source| TrustStoreError::Invalid {
                path: path.to_owned(),
                source,
            })?;
    }
    Ok(store)
}

/// Adds `path` to `store`: a folder as in [`load`] (files that are no trust material skipped
/// with a warning), or one file (certificate, CRL or master list), which must be one of them.
pub fn add_path(
    store: &mut CscaStore,
    path: &Path,
    now: OffsetDateTime,
) -> Result<(), TrustStoreError> {
    if path.is_dir() {
        return add_folder(store, path, now);
    }
    let bytes = read(path)?;
    store
        .add_file(&bytes, now)
        .map(drop)
        .map_err(|source| TrustStoreError::Invalid {
            path: path.to_owned(),
            source,
        })
}

/// Every regular file of `dir` (sorted, at most [`MAX_FILES`]); what is not trust material is
/// skipped with a warning (folders often hold README files).
fn add_folder(
    store: &mut CscaStore,
    dir: &Path,
    now: OffsetDateTime,
) -> Result<(), TrustStoreError> {
    let entries = std::fs::read_dir(dir).map_err(|source| TrustStoreError::Io {
        path: dir.to_owned(),
        source,
    })?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .take(MAX_FILES)
        .collect();
    paths.sort();
    for path in paths {
        let bytes = read(&path)?;
        if let Err(e) = store.add_file(&bytes, now) {
            tracing::warn!(path = %path.display(), error = %e, "skipping trust file");
        }
    }
    Ok(())
}
