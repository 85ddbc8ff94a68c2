//! `leaf-certificate`: the localhost certificate the bridge presents, checked read-only.
//!
//! The TLS directory is chosen as `eid-agent run` chooses it: the user's `<config>/tls` when it
//! has a CA, else the machine's `/etc/eid-agent/tls` (a system installation). The files are
//! only read: calling `tls::ensure` here would renew the very certificate being examined, and
//! doctor must not change anything.

use std::path::{Path, PathBuf};

use eid_installer::layout::Layout;
use eid_installer::tls::{CA_FILE, LEAF_FILE, LEAF_KEY_FILE, RENEW_BEFORE_DAYS};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use time::OffsetDateTime;
use x509_parser::extensions::GeneralName;
use zeroize::Zeroizing;

use super::setup::Setup;
use super::{Check, DoctorOptions, read_bounded, shell_quote};

/// The largest certificate or key file read.
const PEM_LIMIT: u64 = 256 * 1024;

/// Whose TLS material the agent uses.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Scope {
    /// `<config>/tls`, the user's own (the agent renews the leaf itself).
    User,
    /// `/etc/eid-agent/tls`, the machine's (renewed by `eid-agent install --system`).
    System,
}

/// The TLS directory in use and its CA.
pub(super) struct Material {
    pub scope: Option<Scope>,
    pub dir: Option<PathBuf>,
    /// The CA certificate, when `ca.pem` holds one (trust checks compare it).
    pub ca_der: Option<Vec<u8>>,
    /// Why `ca.pem` could not be used.
    ca_problem: Option<String>,
    /// `eid-agent install`, with `--config-dir` when one was given.
    install_user: String,
}

impl Material {
    /// Finds the directory the agent would use.
    pub(super) fn find(options: &DoctorOptions, setup: &Setup) -> Material {
        let user_dir = setup.config_dir.as_ref().map(|d| d.join("tls"));
        let system_dir = Layout::system(&options.root).tls_dir();
        let (scope, dir) = match &user_dir {
            Some(dir) if dir.join(CA_FILE).exists() => (Some(Scope::User), Some(dir.clone())),
            _ if system_dir.join(CA_FILE).exists() || system_dir.join(LEAF_FILE).exists() => {
                (Some(Scope::System), Some(system_dir))
            }
            _ => (None, user_dir.clone()),
        };
        let mut install_user = "eid-agent install".to_owned();
        if let Some(dir) = &options.config.config_dir {
            install_user.push_str(" --config-dir ");
            install_user.push_str(&shell_quote(dir));
        }
        let mut material = Material {
            scope,
            dir,
            ca_der: None,
            ca_problem: None,
            install_user,
        };
        if let (Some(_), Some(dir)) = (scope, &material.dir) {
            match read_single_cert(&dir.join(CA_FILE)) {
                Ok(der) => material.ca_der = Some(der),
                Err(e) => material.ca_problem = Some(e),
            }
        }
        material
    }

    /// The command that renews or recreates the material of this scope.
    pub(super) fn install_command(&self) -> String {
        match self.scope {
            Some(Scope::System) => "sudo eid-agent install --system".to_owned(),
            _ => self.install_user.clone(),
        }
    }

    /// The `leaf-certificate` check at `now`.
    pub(super) fn check(&self, now: OffsetDateTime) -> Check {
        let (Some(scope), Some(dir)) = (self.scope, &self.dir) else {
            let place = self
                .dir
                .as_ref()
                .map_or_else(String::new, |d| format!(" in {}", d.display()));
            return Check::failed(
                "leaf-certificate",
                format!("no local certificate yet{place} (and no system installation)"),
            )
            .remedy(self.install_command());
        };
        let fix = match scope {
            Scope::User => format!(
                "{}  (renews the certificate; then restart the agent: systemctl --user restart \
                 eid-agent)",
                self.install_command()
            ),
            Scope::System => format!(
                "{}  (an administrator renews the machine's certificate; then restart the agent)",
                self.install_command()
            ),
        };
        let fail = |summary: String| {
            Check::failed("leaf-certificate", summary)
                .detail(dir.display().to_string())
                .remedy(fix.clone())
        };
        let ca_der = match (&self.ca_der, &self.ca_problem) {
            (Some(der), _) => der,
            (None, problem) => {
                return fail(format!(
                    "the local CA {} is unusable: {}",
                    CA_FILE,
                    problem.as_deref().unwrap_or("missing")
                ));
            }
        };
        match examine(dir, ca_der, now) {
            Err(Problem::Failed(why)) => fail(why),
            Err(Problem::KeyUnreadable(why)) => {
                let remedy = match scope {
                    Scope::System => format!(
                        "sudo usermod -aG {} \"$USER\"  (then log out and in again)",
                        eid_installer::layout::SYSTEM_GROUP
                    ),
                    Scope::User => format!(
                        "Check that {} belongs to you: ls -l {}",
                        LEAF_KEY_FILE,
                        shell_quote(dir)
                    ),
                };
                Check::failed("leaf-certificate", why)
                    .detail(dir.display().to_string())
                    .remedy(remedy)
            }
            Ok(leaf) => {
                let days = (leaf.not_after - now).whole_days();
                let until = leaf
                    .not_after
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_default();
                let place = match scope {
                    Scope::User => "user",
                    Scope::System => "system",
                };
                if days < RENEW_BEFORE_DAYS {
                    Check::warning(
                        "leaf-certificate",
                        format!("the localhost certificate expires in {days} day(s), on {until}"),
                    )
                    .detail(format!("{} ({place})", dir.display()))
                    .remedy(fix)
                } else {
                    Check::ok(
                        "leaf-certificate",
                        format!("valid until {until} ({days} days left), signed by the local CA"),
                    )
                    .detail(format!("{} ({place})", dir.display()))
                }
            }
        }
    }
}

enum Problem {
    Failed(String),
    KeyUnreadable(String),
}

struct LeafFacts {
    not_after: OffsetDateTime,
}

/// Every check of the leaf against the CA, in the order of what a user can see first.
fn examine(dir: &Path, ca_der: &[u8], now: OffsetDateTime) -> Result<LeafFacts, Problem> {
    let failed = |s: String| Problem::Failed(s);
    let (_, ca) = x509_parser::parse_x509_certificate(ca_der)
        .map_err(|e| failed(format!("{CA_FILE} does not parse: {e}")))?;
    if !ca.is_ca() {
        return Err(failed(format!("{CA_FILE} is not a CA certificate")));
    }
    if now < ca.validity().not_before.to_datetime() {
        return Err(failed(format!(
            "the local CA is not valid yet (from {}): is the clock right?",
            ca.validity().not_before
        )));
    }
    if now > ca.validity().not_after.to_datetime() {
        return Err(failed(format!(
            "the local CA expired on {}",
            ca.validity().not_after
        )));
    }

    let chain_path = dir.join(LEAF_FILE);
    let chain_pem = read_bounded(&chain_path, PEM_LIMIT)
        .map_err(|e| failed(format!("cannot read {LEAF_FILE}: {e}")))?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&chain_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| failed(format!("{LEAF_FILE} is not PEM: {e}")))?;
    let Some(leaf_der) = chain.first() else {
        return Err(failed(format!("{LEAF_FILE} holds no certificate")));
    };
    if chain.get(1).is_some_and(|c| c.as_ref() != ca_der) {
        return Err(failed(format!(
            "{LEAF_FILE} ends with another CA than {CA_FILE}"
        )));
    }
    let (_, leaf) = x509_parser::parse_x509_certificate(leaf_der)
        .map_err(|e| failed(format!("the localhost certificate does not parse: {e}")))?;
    if leaf.issuer() != ca.subject() || !signed_by(leaf_der, ca_der) {
        return Err(failed(
            "the localhost certificate is not signed by the local CA".to_owned(),
        ));
    }
    let not_before = leaf.validity().not_before.to_datetime();
    let not_after = leaf.validity().not_after.to_datetime();
    if now < not_before {
        return Err(failed(format!(
            "the localhost certificate is not valid yet (from {}): is the clock right?",
            leaf.validity().not_before
        )));
    }
    if now > not_after {
        return Err(failed(format!(
            "the localhost certificate expired on {}",
            leaf.validity().not_after
        )));
    }
    let names: Vec<String> = match leaf.subject_alternative_name() {
        Ok(Some(san)) => san
            .value
            .general_names
            .iter()
            .filter_map(|n| match n {
                GeneralName::DNSName(d) => Some((*d).to_owned()),
                GeneralName::IPAddress(b) if *b == [127, 0, 0, 1] => Some("127.0.0.1".to_owned()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    if !names.iter().any(|n| n == "localhost") || !names.iter().any(|n| n == "127.0.0.1") {
        return Err(failed(
            "the localhost certificate does not name localhost and 127.0.0.1".to_owned(),
        ));
    }

    let key_path = dir.join(LEAF_KEY_FILE);
    let key_pem = Zeroizing::new(read_bounded(&key_path, PEM_LIMIT).map_err(|e| {
        if e.kind() == std::io::ErrorKind::PermissionDenied {
            Problem::KeyUnreadable(format!(
                "this user cannot read the certificate's key {}",
                key_path.display()
            ))
        } else {
            failed(format!("cannot read {LEAF_KEY_FILE}: {e}"))
        }
    })?);
    let public = openssl::pkey::PKey::private_key_from_pem(&key_pem)
        .and_then(|key| key.public_key_to_der())
        .map_err(|_| failed(format!("{LEAF_KEY_FILE} is not a PEM private key")))?;
    if public != leaf.tbs_certificate.subject_pki.raw {
        return Err(failed(format!(
            "{LEAF_KEY_FILE} is not the key of the localhost certificate"
        )));
    }
    Ok(LeafFacts { not_after })
}

/// Whether the CA's key signed `leaf_der`.
fn signed_by(leaf_der: &[u8], ca_der: &[u8]) -> bool {
    let verify = || -> Result<bool, openssl::error::ErrorStack> {
        let leaf = openssl::x509::X509::from_der(leaf_der)?;
        let ca = openssl::x509::X509::from_der(ca_der)?;
        leaf.verify(&*ca.public_key()?)
    };
    verify().unwrap_or(false)
}

/// The one certificate of a PEM file, DER.
pub(super) fn read_single_cert(path: &Path) -> Result<Vec<u8>, String> {
    let pem = read_bounded(path, PEM_LIMIT).map_err(|e| format!("cannot read it: {e}"))?;
    eid_installer::tls::single_cert(&pem).map(|cert| cert.as_ref().to_vec())
}
