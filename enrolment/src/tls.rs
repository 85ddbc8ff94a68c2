//! The service's TLS: a given certificate and key (PEM), or a self-signed P-256 certificate for
//! `localhost`, `127.0.0.1` and `::1` made once in `<data-dir>/tls/{cert,key}.pem` and reused.
//!
//! The self-signed certificate is for development and the demo: browsers (and the test
//! client) trust it explicitly. A deployment gives its own certificate with `--tls-cert` and
//! `--tls-key`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::{ConfigError, create_private_dir};

/// Validity of the self-signed certificate (renewed by deleting the folder).
const SELF_SIGNED_DAYS: i64 = 397;

/// Where the TLS material comes from.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// Whether it is the service's own self-signed certificate.
    pub self_signed: bool,
}

fn err(text: String) -> ConfigError {
    ConfigError(text)
}

/// The given files, or the self-signed ones in `<data_dir>/tls` (created when missing).
pub fn tls_files(
    cert: Option<&Path>,
    key: Option<&Path>,
    data_dir: &Path,
) -> Result<TlsFiles, ConfigError> {
    if let (Some(cert), Some(key)) = (cert, key) {
        return Ok(TlsFiles {
            cert: cert.to_owned(),
            key: key.to_owned(),
            self_signed: false,
        });
    }
    let dir = data_dir.join("tls");
    let files = TlsFiles {
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
        self_signed: true,
    };
    if files.cert.exists() && files.key.exists() {
        return Ok(files);
    }
    create_private_dir(&dir)?;
    let (cert_pem, key_pem) = self_signed()?;
    write_private(&files.key, key_pem.as_bytes())?;
    std::fs::write(&files.cert, cert_pem)
        .map_err(|e| err(format!("writing {}: {e}", files.cert.display())))?;
    tracing::info!(cert = %files.cert.display(), "created a self-signed TLS certificate");
    Ok(files)
}

/// A P-256 self-signed certificate for the loopback names: (certificate PEM, key PEM).
fn self_signed() -> Result<(String, String), ConfigError> {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
        .map_err(|e| err(format!("generating the TLS key: {e}")))?;
    let mut params = rcgen::CertificateParams::new(vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ])
    .map_err(|e| err(format!("TLS certificate names: {e}")))?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "eid-enrolment (self-signed)");
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::hours(1);
    params.not_after = now + time::Duration::days(SELF_SIGNED_DAYS);
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
    let cert = params
        .self_signed(&key)
        .map_err(|e| err(format!("signing the TLS certificate: {e}")))?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// Writes a secret file readable by its owner only, atomically (temporary file, then rename).
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), ConfigError> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options
        .open(&tmp)
        .map_err(|e| err(format!("writing {}: {e}", tmp.display())))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| err(format!("writing {}: {e}", tmp.display())))?;
    std::fs::rename(&tmp, path).map_err(|e| err(format!("writing {}: {e}", path.display())))
}

/// The rustls configuration (TLS 1.3 and 1.2, ring; ALPN h2 and http/1.1) for these files.
pub fn server_config(files: &TlsFiles) -> Result<Arc<ServerConfig>, ConfigError> {
    let cert_pem = std::fs::read(&files.cert)
        .map_err(|e| err(format!("reading {}: {e}", files.cert.display())))?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| err(format!("{}: {e}", files.cert.display())))?;
    if chain.is_empty() {
        return Err(err(format!(
            "{} holds no certificate",
            files.cert.display()
        )));
    }
    let key_pem = zeroize::Zeroizing::new(
        std::fs::read(&files.key)
            .map_err(|e| err(format!("reading {}: {e}", files.key.display())))?,
    );
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| err(format!("{}: {e}", files.key.display())))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| err(format!("TLS: {e}")))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| err(format!("TLS certificate and key: {e}")))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_signed_is_made_once_and_loads() {
        let dir = std::env::temp_dir().join(format!("eid-enrolment-tls-{}", std::process::id()));
        let a = tls_files(None, None, &dir).unwrap();
        let first = std::fs::read(&a.cert).unwrap();
        let b = tls_files(None, None, &dir).unwrap();
        assert_eq!(first, std::fs::read(&b.cert).unwrap(), "reused");
        server_config(&b).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&b.key).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
