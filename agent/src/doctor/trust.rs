//! `ca-trust-nss` (one check per NSS database) and `ca-trust-system`: is the CA the agent's
//! certificate chains to trusted where the browsers look?
//!
//! Chromium and Firefox on Linux do not read the system store for user-added roots: Chromium reads
//! `~/.pki/nssdb`, each Firefox profile its own `cert9.db`. A database counts as trusting us only
//! when it holds the very CA in use (compared by DER, not by name: an older CA of ours under the
//! same nickname prefix is reported as such) with the `C` flag for TLS servers. certutil runs on
//! a worker thread bounded by the timeout (a locked database can keep it waiting).

use std::path::Path;

use eid_installer::trust::{
    NssDb, NssKind, TRUST_FLAGS, TrustError, TrustState, nickname_for, nss_databases, nss_trust,
    system_store_has,
};

use super::tls::{Material, Scope};
use super::{Check, DoctorOptions, Status, bounded, shell_quote};

/// The trust checks.
pub(super) fn checks(options: &DoctorOptions, material: &Material) -> Vec<Check> {
    let mut out = Vec::new();
    let system = match (&material.ca_der, material.scope) {
        (Some(ca), Some(Scope::System)) => {
            if system_store_has(&options.root, ca) {
                Check::ok("ca-trust-system", "the machine's CA is in the system store")
            } else {
                Check::failed(
                    "ca-trust-system",
                    "the machine's CA is not in the system store",
                )
                .remedy("sudo eid-agent install --system")
            }
        }
        (None, Some(Scope::System)) => Check::skipped(
            "ca-trust-system",
            "the machine's CA is unusable (see leaf-certificate)",
        ),
        _ => Check::skipped(
            "ca-trust-system",
            "no system installation (the system store is for eid-agent install --system)",
        ),
    };

    let Some(ca) = material.ca_der.clone() else {
        out.push(Check::skipped(
            "ca-trust-nss",
            "no local CA to look for (see leaf-certificate)",
        ));
        out.push(system);
        return out;
    };
    let Some(home) = options.home.clone() else {
        out.push(Check::skipped("ca-trust-nss", "no home directory"));
        out.push(system);
        return out;
    };
    let ca_file = material
        .dir
        .as_ref()
        .map(|d| d.join(eid_installer::tls::CA_FILE))
        .unwrap_or_default();
    let install = material.install_command();
    let register = match material.scope {
        // The machine's installation does not touch users' databases: the user registers the
        // machine's CA in their own.
        Some(Scope::System) => None,
        _ => Some(install.clone()),
    };

    let dbs = {
        let home = home.clone();
        bounded(options.timeout, move || nss_databases(&home)).unwrap_or_default()
    };
    if dbs.is_empty() {
        out.push(
            Check::warning(
                "ca-trust-nss",
                "no NSS database found (neither ~/.pki/nssdb nor a Firefox profile): Chromium \
                 will not trust the agent until one exists and holds the CA",
            )
            .detail(home.join(".pki/nssdb").display().to_string())
            .remedy(register.clone().unwrap_or_else(|| {
                format!(
                    "mkdir -p ~/.pki/nssdb && certutil -N -d sql:$HOME/.pki/nssdb \
                     --empty-password && {}",
                    add_command(&home.join(".pki/nssdb"), &ca, &ca_file)
                )
            })),
        );
        out.push(system);
        return out;
    }
    // On a desk, `install --system` puts the machine CA into Chromium's and Chrome's managed
    // policy (`CACertificates`, honoured by Chromium 156, checked by hand): Chromium then trusts
    // it without the user's database, which only matters to other NSS programs.
    let policy_trusts = material.scope == Some(Scope::System) && managed_policy_has(options, &ca);
    for db in dbs {
        let mut check = db_check(options, &db, &ca, &ca_file, register.as_deref());
        if policy_trusts && check.status == Status::Failed && db.kind == NssKind::Chromium {
            check.status = Status::Warning;
            check.summary.push_str(
                " (Chromium trusts the machine's CA through its managed policy CACertificates)",
            );
        }
        out.push(check);
    }
    out.push(system);
    out
}

/// Whether a Chromium or Chrome managed policy file of ours lists `ca` in `CACertificates`.
fn managed_policy_has(options: &DoctorOptions, ca: &[u8]) -> bool {
    let layout = eid_installer::layout::Layout::system(&options.root);
    [layout.chromium_policy(), layout.chrome_policy()]
        .iter()
        .filter_map(|file| super::read_bounded(file, POLICY_LIMIT).ok())
        .any(|bytes| {
            eid_installer::browser_policy::ca_certificates(&String::from_utf8_lossy(&bytes))
                .iter()
                .any(|der| der.as_slice() == ca)
        })
}

/// The largest policy file read.
const POLICY_LIMIT: u64 = 1 << 20;

fn db_check(
    options: &DoctorOptions,
    db: &NssDb,
    ca: &[u8],
    ca_file: &Path,
    register: Option<&str>,
) -> Check {
    let what = db.describe();
    let detail = db.path.display().to_string();
    let add = add_command(&db.path, ca, ca_file);
    let fix = match register {
        Some(install) => format!("{install}  (or: {add})"),
        None => add,
    };
    let result = {
        let (db, ca) = (db.clone(), ca.to_vec());
        bounded(options.timeout, move || nss_trust(&db, &ca))
    };
    let check = match result {
        None => Check::failed(
            "ca-trust-nss",
            format!(
                "certutil did not answer within {} s for {what}",
                options.timeout.as_secs()
            ),
        )
        .remedy(format!("Close the browser using it, then: {fix}")),
        Some(Ok(TrustState::Trusted)) => {
            Check::ok("ca-trust-nss", format!("the local CA is trusted in {what}"))
        }
        Some(Ok(TrustState::NotTrusted)) => Check::failed(
            "ca-trust-nss",
            format!("the local CA is in {what} but not trusted for websites"),
        )
        .remedy(fix),
        Some(Ok(TrustState::Absent)) => {
            Check::failed("ca-trust-nss", format!("the local CA is not in {what}")).remedy(fix)
        }
        Some(Ok(TrustState::OtherCa)) => Check::failed(
            "ca-trust-nss",
            format!("{what} trusts an older local CA of the agent, not the current one"),
        )
        .remedy(fix),
        Some(Err(TrustError::CertutilMissing)) => Check::failed(
            "ca-trust-nss",
            format!("certutil is not installed: cannot read {what}"),
        )
        .remedy("sudo apt install libnss3-tools"),
        Some(Err(e)) => Check::failed("ca-trust-nss", format!("cannot read {what}"))
            .remedy(format!("{} [{}]", e.remedy(), e.code()))
            .detail(format!("{detail}: {e}")),
    };
    if check.detail.is_some() {
        check
    } else {
        check.detail(detail)
    }
}

/// The certutil command that adds the CA to `db` by hand.
fn add_command(db: &Path, ca: &[u8], ca_file: &Path) -> String {
    format!(
        "certutil -d sql:{} -A -t {TRUST_FLAGS} -n '{}' -i {}",
        shell_quote(db),
        nickname_for(ca),
        shell_quote(ca_file)
    )
}
