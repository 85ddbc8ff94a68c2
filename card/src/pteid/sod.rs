//! The card's Document Security Object (cards.md §A4): a CMS SignedData over an ICAO
//! LDSSecurityObject, verified with `eid_protocols::pa`.
//!
//! - CC1 (`5F00 EF06`): the hashes are not over the raw files but over the Citizen Card's own
//!   byte strings: data group 1 the concatenated trimmed ID fields (in the SOD's order), 2 the
//!   trimmed address fields (only when the address was read with its PIN), 3 the photo with its
//!   CBEFF and ISO 19794-5 headers (trailing zeros trimmed), 4 the card key modulus || exponent.
//! - CC2 (`011D`): ICAO 9303-11 §5.1 style, SHA-256 over the complete files DG1, DG2, DG13,
//!   DG14, DG15.
//!
//! The outcome is reported as it is: [`Check::NotPerformed`] for what could not be checked,
//! [`Check::Failed`] with the reason for what did not verify.

use eid_protocols::pa::{Check, CscaStore, DataGroupCheck, PassiveAuthReport, Sod};
use serde::Serialize;

use super::address::AddressFile;
use super::identity::{Identity, cc1, field};
use super::{Generation, PteidCard, files, trim_nul};
use crate::Error;

/// The outcome of the SOD check.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SodVerification {
    /// Signature and data group hashes together: passed when the signature verifies, at least
    /// one hash was compared and none differs; failed with the first reason otherwise; not
    /// performed when there is nothing to check.
    pub integrity: Check,
    /// The signer's chain to the trust anchors given (not performed without anchors); failed
    /// as well when a CRL of the signer's issuer revokes it.
    pub certificate_chain: Check,
    /// Step by step, as `eid_protocols::pa` reports it (absent when the SOD did not parse).
    pub details: Option<PassiveAuthReport>,
}

impl SodVerification {
    /// Valid: integrity passed and the chain passed.
    pub fn is_valid(&self) -> bool {
        self.integrity.is_passed() && self.certificate_chain.is_passed()
    }

    fn unparsable(reason: String) -> Self {
        SodVerification {
            integrity: Check::failed(reason),
            certificate_chain: Check::not_performed("the SOD could not be parsed"),
            details: None,
        }
    }

    fn from_report(report: PassiveAuthReport) -> Self {
        let integrity = if let Check::Failed { reason } = &report.signature {
            Check::failed(format!("SOD signature: {reason}"))
        } else if let Some(bad) = report.data_groups.iter().find(|d| d.check.is_failed()) {
            match &bad.check {
                Check::Failed { reason } => Check::failed(reason.clone()),
                _ => Check::failed(format!("data group {}", bad.data_group)),
            }
        } else if !report.signature.is_passed() {
            report.signature.clone()
        } else if report.data_groups.iter().any(|d| d.check.is_passed()) {
            Check::Passed
        } else {
            Check::not_performed("no data group hash could be compared")
        };
        // A signer revoked by its issuer's CRL is not a trusted signer, whatever the chain says
        // (ICAO 9303-11 §5.1.2 step 2); without this a revoked DS still gave `is_valid()`.
        let certificate_chain = match &report.revocation {
            Check::Failed { reason } => Check::failed(format!("revocation: {reason}")),
            _ => report.certificate_chain.clone(),
        };
        SodVerification {
            integrity,
            certificate_chain,
            details: Some(report),
        }
    }
}

/// The CC1 data group byte strings the SOD hashes (cards.md §A4).
fn cc1_data_groups(
    identity: &Identity,
    address: Option<&AddressFile>,
) -> Result<Vec<(u8, Vec<u8>)>, Error> {
    const NAME: &str = "ID file";
    let file = &identity.raw_file;
    let mut id = Vec::new();
    for f in cc1::SOD_ID_FIELDS {
        id.extend_from_slice(trim_nul(field(file, f, NAME)?));
    }
    let mut photo = identity.photo.cc1_headers.clone();
    let area = file.get(cc1::PHOTO_START..).unwrap_or(&[]);
    photo.extend_from_slice(trim_nul(area));
    let mut key = field(file, cc1::MODULUS, NAME)?.to_vec();
    key.extend_from_slice(field(file, cc1::EXPONENT, NAME)?);
    let mut out = vec![(1, id), (3, photo), (4, key)];
    if let Some(address) = address {
        out.push((2, address.sod_bytes()));
    }
    Ok(out)
}

impl PteidCard<'_> {
    /// Reads the SOD file as stored; `Ok(None)` when the card has none.
    pub fn read_sod(&mut self) -> Result<Option<Vec<u8>>, Error> {
        let file = match self.generation {
            Generation::Cc1 => files::CC1_SOD,
            Generation::Cc2 => files::CC2_SOD,
        };
        self.read_file(file)
    }

    /// Verifies the SOD against `identity` (as read by [`PteidCard::read_identity`]) and, on
    /// CC1, the address when it was read. `anchors` are the trusted issuers for the signer's
    /// chain (`None`: the chain is reported as not performed). `at` is the verification time.
    pub fn verify_sod(
        &mut self,
        identity: &Identity,
        address: Option<&AddressFile>,
        anchors: Option<&CscaStore>,
        at: time::OffsetDateTime,
    ) -> Result<SodVerification, Error> {
        let Some(sod_file) = self.read_sod()? else {
            return Ok(SodVerification {
                integrity: Check::not_performed("the card has no SOD"),
                certificate_chain: Check::not_performed("the card has no SOD"),
                details: None,
            });
        };
        let sod = match Sod::parse(&sod_file) {
            Ok(sod) => sod,
            Err(e) => return Ok(SodVerification::unparsable(format!("SOD: {e}"))),
        };
        let report = match self.generation {
            Generation::Cc1 => {
                // Signature and chain from pa, hashes by the Citizen Card's own rules.
                let mut report = sod.verify(anchors, at, &[]);
                let algorithm = sod.digest_algorithm();
                for (n, bytes) in cc1_data_groups(identity, address)? {
                    let check = sod.check_hash(n, &algorithm.digest(&bytes));
                    match report.data_groups.iter_mut().find(|d| d.data_group == n) {
                        Some(entry) => entry.check = check,
                        None => report.data_groups.push(DataGroupCheck {
                            data_group: n,
                            check,
                        }),
                    }
                }
                report
            }
            Generation::Cc2 => {
                let dg14 = self.read_file(files::CC2_DG14)?;
                let dg15 = self.read_file(files::CC2_DG15)?;
                let mut given: Vec<(u8, &[u8])> = vec![
                    (1, identity.raw_mrz_file.as_slice()),
                    (2, identity.photo.cc2_file.as_slice()),
                    (13, identity.raw_file.as_slice()),
                ];
                if let Some(f) = dg14.as_deref() {
                    given.push((14, f));
                }
                if let Some(f) = dg15.as_deref() {
                    given.push((15, f));
                }
                sod.verify(anchors, at, &given)
            }
        };
        Ok(SodVerification::from_report(report))
    }
}

#[cfg(test)]
mod tests {
    use eid_protocols::pa::HashAlgorithm;

    use super::*;

    fn report(revocation: Check) -> PassiveAuthReport {
        PassiveAuthReport {
            digest_algorithm: HashAlgorithm::Sha256,
            signer: None,
            signature: Check::Passed,
            certificate_chain: Check::Passed,
            revocation,
            data_groups: vec![DataGroupCheck {
                data_group: 1,
                check: Check::Passed,
            }],
        }
    }

    #[test]
    fn a_revoked_signer_makes_the_sod_invalid() {
        let v = SodVerification::from_report(report(Check::failed("revoked")));
        assert!(!v.is_valid());
        assert!(v.certificate_chain.is_failed(), "{v:?}");
        // No CRL loaded: not a failure.
        let v = SodVerification::from_report(report(Check::not_performed("no CRL")));
        assert!(v.is_valid());
        assert!(SodVerification::from_report(report(Check::Passed)).is_valid());
    }
}
