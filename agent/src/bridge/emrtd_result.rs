//! The answer to `/v1/emrtd/read`: the agent's report turned into the wire format a relying
//! party re-verifies with `eid_protocols::webeid::EmrtdValidator` (raw SOD and data groups,
//! the Active Authentication answer over the origin-derived challenge, our own checks as
//! information).

use eid_card::emrtd::{AccessMethod as CardAccess, EmrtdReport, PassiveAuth};
use eid_protocols::pa::Check;
use eid_protocols::webeid::{AccessInfo, AccessMethod, DocumentFields, EmrtdResult};

use crate::workflows::APP_VERSION;

/// Data groups the answer always carries when the chip has them: DG1 (the identity a server
/// takes), DG14 and DG15 (the keys behind chip and active authentication).
const ALWAYS: [u8; 3] = [1, 14, 15];

/// Builds the wire result; `wanted` are the data groups the page asked for.
pub(super) fn build(report: &EmrtdReport, wanted: &[u8]) -> EmrtdResult {
    let access = match &report.access.method {
        CardAccess::Pace {
            oid,
            password,
            chip_authenticated,
            ..
        } => AccessInfo {
            method: AccessMethod::Pace,
            detail: format!(
                "PACE {oid} with the {password}{}",
                if *chip_authenticated {
                    ", chip authenticated (CAM)"
                } else {
                    ""
                }
            ),
        },
        CardAccess::Bac => AccessInfo {
            method: AccessMethod::Bac,
            detail: report
                .access
                .pace_fallback_reason
                .as_ref()
                .map(|r| format!("BAC (PACE not used: {r})"))
                .unwrap_or_else(|| "BAC".to_owned()),
        },
    };
    let sod = report.raw.sod.as_deref().unwrap_or_default();
    let mut result = EmrtdResult::new(APP_VERSION, access, sod);
    for (number, file) in &report.raw.data_groups {
        if ALWAYS.contains(number) || wanted.contains(number) {
            result.add_data_group(*number, file);
        }
    }
    if let Some(evidence) = &report.active_authentication_evidence {
        result.set_active_authentication(&evidence.challenge, &evidence.signature);
    }
    let passive = match &report.passive_authentication {
        PassiveAuth::Failed { reason } => Check::Failed {
            reason: reason.clone(),
        },
        p if p.is_valid() => Check::Passed,
        PassiveAuth::Report(r) => {
            // The first step that did not pass says why.
            let steps = [&r.signature, &r.certificate_chain];
            steps
                .into_iter()
                .chain(r.data_groups.iter().map(|d| &d.check))
                .find(|c| !c.is_passed())
                .cloned()
                .unwrap_or(Check::Passed)
        }
    };
    result.checks.passive = (&passive).into();
    result.checks.chip = (&report.chip_authentication).into();
    result.checks.active = (&report.active_authentication).into();
    result.document = report
        .dg1
        .as_ref()
        .map(|dg1| DocumentFields::from_mrz(&dg1.mrz));
    result
}
