//! The eMRTD card application (ICAO Doc 9303 parts 10 and 11): access control (PACE, with BAC
//! as fallback), reading the LDS1 files under secure messaging, Chip Authentication, Active
//! Authentication and Passive Authentication, reported check by check.
//!
//! ```no_run
//! # fn demo(transport: &mut dyn eid_card::Transport) -> Result<(), eid_card::Error> {
//! use eid_card::emrtd::{self, AccessKey, ReadOptions};
//! let key = AccessKey::can("123456").map_err(|_| eid_card::Error::AccessDenied)?;
//! let report = emrtd::read_document(transport, &key, ReadOptions::default())?;
//! println!("{:?}", report.passive_authentication.is_valid());
//! # Ok(()) }
//! ```
//!
//! The flow (ICAO 9303-11 §4.2, §7):
//! 1. EF.CardAccess (plain, from the MF). When it lists a PACE suite we support, PACE with the
//!    CAN or MRZ; when there is none, or PACE fails for a reason other than a wrong password,
//!    BAC (MRZ only).
//! 2. SELECT the LDS1 application; read EF.COM, EF.SOD and DG14 (when listed).
//! 3. PACE-CAM: EF.CardSecurity (read from the MF right after PACE) is passively authenticated
//!    and its chip key checked against the chip's proof from PACE. Otherwise Chip
//!    Authentication when DG14 offers it: new session keys.
//! 4. DG1, DG2, DG11/DG12 (when listed), DG15 (when listed).
//! 5. Active Authentication when DG15 is present, over the caller's challenge or a random one.
//! 6. Passive Authentication against the caller's CSCA store.

pub mod access;
mod chip;
pub mod read;
pub mod report;
pub mod trust;

use std::collections::BTreeMap;

use eid_protocols::Status;
use eid_protocols::commands::{self, FileReturn, Select};
use eid_protocols::lds::{self, Dg1, Dg2, Dg11, Dg12, EfCom, SecurityInfo, SecurityInfos};
use eid_protocols::pa::{Check, CscaStore, Sod};
use eid_protocols::pace::CamEvidence;
use eid_protocols::sm::SecureChannel;

use crate::secure::SecureTransport;
use crate::session::Session;
use crate::{Error, Reborrow, Transport};

pub use access::{AccessKey, AccessKeyError};
pub use read::{LdsFile, Progress, ProgressFn};
pub use report::{
    AccessMethod, AccessReport, ActiveAuthEvidence, EmrtdReport, PassiveAuth, Photo, RawFiles,
};

/// What the caller brings to a read.
#[derive(Default)]
pub struct ReadOptions<'a> {
    /// CSCA certificates (and CRLs) for the certificate chain check; without one the chain is
    /// reported as not performed.
    pub csca: Option<&'a CscaStore>,
    /// The 8-byte Active Authentication challenge (the bridge derives it from origin and nonce);
    /// a random one when `None`.
    pub challenge: Option<[u8; 8]>,
    /// Called after every READ BINARY.
    pub progress: Option<Box<ProgressFn<'a>>>,
}

impl std::fmt::Debug for ReadOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadOptions")
            .field("csca", &self.csca.map(CscaStore::len))
            .field("challenge", &self.challenge.map(|c| crate::hex(&c)))
            .field("progress", &self.progress.is_some())
            .finish()
    }
}

/// An opened eMRTD: access established, LDS1 selected, every APDU under secure messaging.
pub struct Emrtd<'t> {
    sm: SecureTransport<Reborrow<'t>>,
    access: AccessReport,
    /// PACE-CAM: the chip's proof and EF.CardSecurity (read right after PACE, from the MF),
    /// checked against the caller's CSCA store in [`Emrtd::read_document`].
    cam: Option<(CamEvidence, Option<Vec<u8>>)>,
}

impl std::fmt::Debug for Emrtd<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emrtd")
            .field("sm", &self.sm)
            .field("access", &self.access)
            .field("pace_cam", &self.cam.is_some())
            .finish()
    }
}

/// Whether the chip accepts extended-length APDUs, from its ATR's card capabilities (ISO/IEC
/// 7816-4 §8.1.1.2.7).
fn chip_extended(transport: &dyn Transport) -> bool {
    eid_protocols::atr::Atr::parse(transport.atr())
        .ok()
        .and_then(|atr| atr.card_capabilities())
        .is_some_and(|c| c.extended_length)
        && transport.capabilities().allows_extended()
}

/// Reads EF.CardAccess (plain, from the MF) and returns its SecurityInfos; `None` when the chip
/// has none (a BAC-only document) or it cannot be parsed, then with the reason (reported as
/// the reason PACE was not used).
fn card_access(
    transport: &mut dyn Transport,
) -> Result<(Option<SecurityInfos>, Option<String>), Error> {
    // Another application (or our previous read) may have left the LDS1 application current,
    // in a secure-messaging session: this plain SELECT MF ends the session (ICAO 9303-11
    // §9.8.3) and makes the MF, where EF.CardAccess is, current. A chip refusing it is read as
    // it is.
    let select_mf = commands::select(Select::MasterFile, FileReturn::None);
    let answer = Session::new(&mut *transport).transmit(&select_mf)?;
    if !answer.is_success() {
        tracing::debug!(
            sw = format_args!("{:04X}", answer.status().to_u16()),
            "SELECT MF refused"
        );
    }
    let file = match read::read_lds_file(transport, LdsFile::CARD_ACCESS, &mut |_| {}) {
        Ok(Some(file)) => file,
        Ok(None) => return Ok((None, None)),
        // A refusal of the plain read: treat as a document without PACE.
        Err(Error::Status { status, .. }) => {
            tracing::debug!(
                sw = format_args!("{:04X}", status.to_u16()),
                "no EF.CardAccess"
            );
            return Ok((None, None));
        }
        Err(e) => return Err(e),
    };
    match SecurityInfos::parse_card_access(&file) {
        Ok(infos) => Ok((Some(infos), None)),
        Err(e) => {
            tracing::warn!(error = %e, "EF.CardAccess does not parse; trying BAC");
            Ok((None, Some(format!("EF.CardAccess does not parse: {e}"))))
        }
    }
}

/// Establishes access: PACE when EF.CardAccess offers a suite we support, BAC otherwise.
fn establish(
    transport: &mut dyn Transport,
    key: &AccessKey,
) -> Result<(SecureChannel, AccessReport, Option<CamEvidence>), Error> {
    let (infos, card_access_problem) = card_access(transport)?;
    let mut fallback = None;
    if let Some(infos) = &infos {
        match chip::run_pace(transport, key, infos) {
            Ok(pace) => {
                return Ok((
                    pace.channel,
                    AccessReport {
                        method: pace.method,
                        check: Check::Passed,
                        pace_fallback_reason: None,
                    },
                    pace.cam,
                ));
            }
            // PACE ran and failed: a wrong password, or an exchange that does not verify
            // (possibly an attacker forcing BAC). No fallback (ICAO 9303-11 §4.2).
            Err(chip::PaceFailure::Failed(e)) => return Err(e),
            Err(chip::PaceFailure::Unavailable(why)) => {
                tracing::info!(reason = %why, "PACE not possible; falling back to BAC");
                fallback = Some(why);
            }
        }
    } else if let Some(why) = card_access_problem {
        fallback = Some(why);
    }
    // BAC works inside the LDS1 application (ICAO 9303-11 §4.3): select it in plain first.
    let mut session = Session::new(transport);
    let select = commands::select(Select::DfName(&lds::LDS1_AID), FileReturn::None);
    let answer = session.transmit(&select)?;
    if !answer.is_success() {
        return Err(Error::UnsupportedCard {
            atr: crate::hex(transport.atr()),
        });
    }
    let channel = access::run_bac(transport, key)?;
    Ok((
        channel,
        AccessReport {
            method: AccessMethod::Bac,
            check: Check::Passed,
            pace_fallback_reason: fallback,
        },
        None,
    ))
}

impl<'t> Emrtd<'t> {
    /// Establishes access with `key` and selects the LDS1 application.
    ///
    /// A wrong CAN or MRZ is [`Error::AccessDenied`]; a card taken away is
    /// [`Error::CardRemoved`].
    pub fn open(transport: &'t mut dyn Transport, key: &AccessKey) -> Result<Self, Error> {
        let extended = chip_extended(&*transport);
        let (channel, access, cam) = establish(&mut *transport, key)?;
        let is_pace = matches!(access.method, AccessMethod::Pace { .. });
        let mut sm = SecureTransport::new(Reborrow(transport), Box::new(channel), extended);
        // PACE-CAM: EF.CardSecurity sits in the MF, which is current right after PACE.
        let cam = match cam {
            Some(evidence) => {
                let file = read::read_lds_file(&mut sm, LdsFile::CARD_SECURITY, &mut |_| {})?;
                Some((evidence, file))
            }
            None => None,
        };
        if is_pace {
            // After PACE the MF is current; select LDS1 under secure messaging.
            let mut session = Session::new(&mut sm);
            let select = commands::select(Select::DfName(&lds::LDS1_AID), FileReturn::None);
            let answer = session.transmit(&select)?;
            if !answer.is_success() {
                return Err(Error::Status {
                    command: select.header(),
                    status: answer.status(),
                });
            }
        }
        Ok(Emrtd { sm, access, cam })
    }

    /// How access was obtained.
    pub fn access(&self) -> &AccessReport {
        &self.access
    }

    /// The secure transport (for further commands of the caller's own).
    pub fn transport(&mut self) -> &mut SecureTransport<Reborrow<'t>> {
        &mut self.sm
    }

    /// Reads one LDS file under secure messaging; `None` when the chip does not have it.
    pub fn read_file(
        &mut self,
        file: LdsFile,
        progress: &mut ProgressFn<'_>,
    ) -> Result<Option<Vec<u8>>, Error> {
        read::read_lds_file(&mut self.sm, file, progress)
    }

    /// Chip Authentication (ICAO 9303-11 §6.2) with the key DG14 offers; on success the secure
    /// channel continues with the new keys. A chip that refuses or answers wrongly is
    /// `Check::Failed`; the channel is then closed when its keys can no longer be trusted.
    pub fn chip_authenticate(&mut self, dg14: &SecurityInfos) -> Result<Check, Error> {
        chip::run_ca(&mut self.sm, dg14)
    }

    /// Active Authentication (ICAO 9303-11 §6.1): INTERNAL AUTHENTICATE over `challenge`;
    /// returns the chip's signature as given (a server re-verifies it with DG15).
    pub fn active_authenticate(&mut self, challenge: &[u8; 8]) -> Result<Vec<u8>, Error> {
        let command = eid_protocols::aa::internal_authenticate(challenge);
        let mut session = Session::with_policy(&mut self.sm, crate::session::LengthPolicy::Auto);
        let answer = session.transmit(&command)?;
        if !answer.is_success() {
            return Err(Error::Status {
                command: command.header(),
                status: answer.status(),
            });
        }
        Ok(answer.into_data())
    }

    /// Reads everything ICAO 9303 lets an inspection system read without terminal
    /// authentication, runs every check the document offers, and reports.
    pub fn read_document(mut self, options: ReadOptions<'_>) -> Result<EmrtdReport, Error> {
        let mut noop = |_: &Progress| {};
        let ReadOptions {
            csca,
            challenge,
            mut progress,
        } = options;
        let progress: &mut ProgressFn<'_> = match progress.as_deref_mut() {
            Some(p) => p,
            None => &mut noop,
        };
        let mut raw = RawFiles::default();
        let mut parse_errors = Vec::new();

        let com_bytes = self
            .read_file(LdsFile::COM, progress)?
            .ok_or(Error::ProtocolViolation("the document has no EF.COM"))?;
        let com = match EfCom::parse(&com_bytes) {
            Ok(com) => Some(com),
            Err(e) => {
                parse_errors.push(format!("EF.COM: {e}"));
                None
            }
        };
        raw.com = Some(com_bytes);
        let listed = |n: u8| {
            com.as_ref()
                .is_none_or(|c| c.data_groups.iter().any(|dg| dg.number() == n))
        };
        raw.sod = self.read_file(LdsFile::SOD, progress)?;

        // DG14 first: Chip Authentication replaces the keys for everything read after it.
        let mut dg14_infos = None;
        if listed(14)
            && let Some(dg14) = self.read_dg(14, progress)?
        {
            match chip::parse_dg14(&dg14) {
                Ok(infos) => dg14_infos = Some(infos),
                Err(e) => parse_errors.push(format!("DG14: {e}")),
            }
            raw.data_groups.insert(14, dg14);
        }
        let dg14_offers_pace = dg14_infos
            .as_ref()
            .is_some_and(|infos| infos.iter().any(|i| matches!(i, SecurityInfo::Pace { .. })));
        let chip_authentication = if let Some((evidence, card_security)) = &self.cam {
            // PACE-CAM authenticated the chip within PACE (ICAO 9303-11 §4.4.3.5.2); it counts
            // once EF.CardSecurity is passively authenticated.
            let check = chip::verify_cam(evidence, card_security.as_deref(), csca);
            if let AccessMethod::Pace {
                chip_authenticated, ..
            } = &mut self.access.method
            {
                *chip_authenticated = check.is_passed();
            }
            check
        } else {
            match &dg14_infos {
                Some(infos) if chip::offers_ca(infos) => self.chip_authenticate(infos)?,
                Some(_) => Check::not_performed("DG14 offers no Chip Authentication"),
                None => Check::not_performed("the document has no DG14"),
            }
        };

        for n in [1u8, 2, 11, 12, 15] {
            if (n == 1 || n == 2 || listed(n))
                && let Some(file) = self.read_dg(n, progress)?
            {
                raw.data_groups.insert(n, file);
            }
        }

        let dg1 = parse_dg(&raw.data_groups, 1, Dg1::parse, &mut parse_errors);
        let photo = parse_dg(&raw.data_groups, 2, Dg2::parse, &mut parse_errors)
            .and_then(|dg2| dg2.faces.into_iter().next())
            .and_then(|face| match crate::image::to_png(&face.data) {
                Ok(png) => Some(Photo {
                    image_type: face.image_type,
                    width: face.width,
                    height: face.height,
                    png,
                }),
                Err(e) => {
                    parse_errors.push(format!("DG2 image: {e}"));
                    None
                }
            });
        let dg11 = parse_dg(&raw.data_groups, 11, Dg11::parse, &mut parse_errors);
        let dg12 = parse_dg(&raw.data_groups, 12, Dg12::parse, &mut parse_errors);

        // Active Authentication.
        let (active_authentication, active_authentication_evidence) =
            match raw.data_groups.get(&15).cloned() {
                None => (Check::not_performed("the document has no DG15"), None),
                Some(dg15) => {
                    let challenge = match challenge {
                        Some(c) => c,
                        None => chip::random_challenge()?,
                    };
                    match self.active_authenticate(&challenge) {
                        Ok(signature) => (
                            chip::verify_aa(&dg15, dg14_infos.as_ref(), &challenge, &signature),
                            Some(ActiveAuthEvidence {
                                challenge,
                                signature,
                            }),
                        ),
                        Err(e) if e.is_link_failure() => return Err(e),
                        Err(e) => (Check::failed(format!("INTERNAL AUTHENTICATE: {e}")), None),
                    }
                }
            };

        Ok(self.finish(FinishParts {
            chip_authentication,
            active_authentication,
            evidence: active_authentication_evidence,
            csca,
            com,
            dg1,
            photo,
            dg11,
            dg12,
            parse_errors,
            raw,
            dg14_offers_pace,
        }))
    }

    fn read_dg(&mut self, n: u8, progress: &mut ProgressFn<'_>) -> Result<Option<Vec<u8>>, Error> {
        let file = LdsFile::data_group(n).ok_or(Error::ProtocolViolation("no such data group"))?;
        match self.read_file(file, progress) {
            // Access-protected groups (DG3/DG4 without terminal authentication) are skipped.
            Err(Error::Status {
                status: Status::SecurityStatusNotSatisfied,
                ..
            }) => Ok(None),
            other => other,
        }
    }

    fn finish(self, parts: FinishParts<'_>) -> EmrtdReport {
        let FinishParts {
            chip_authentication,
            active_authentication,
            evidence,
            csca,
            com,
            dg1,
            photo,
            dg11,
            dg12,
            parse_errors,
            raw,
            dg14_offers_pace,
        } = parts;
        let passive_authentication = match raw.sod.as_deref().map(Sod::parse) {
            None => PassiveAuth::Failed {
                reason: "the document has no EF.SOD".into(),
            },
            Some(Err(e)) => PassiveAuth::Failed {
                reason: format!("EF.SOD: {e}"),
            },
            Some(Ok(sod)) => {
                let files: Vec<(u8, &[u8])> = raw
                    .data_groups
                    .iter()
                    .map(|(n, f)| (*n, f.as_slice()))
                    .collect();
                PassiveAuth::Report(Box::new(sod.verify(
                    csca,
                    time::OffsetDateTime::now_utc(),
                    &files,
                )))
            }
        };
        // CA and AA prove the chip holds the key DG14 / DG15 names; that says something about
        // the document only when Passive Authentication vouches for that key.
        let chip_authentication = if self.cam.is_some() {
            // PACE-CAM: already bound to a passively authenticated EF.CardSecurity.
            chip_authentication
        } else {
            bound_to_pa(chip_authentication, &passive_authentication, 14)
        };
        let active_authentication = bound_to_pa(active_authentication, &passive_authentication, 15);
        let mut access = self.access;
        if access.method == AccessMethod::Bac
            && dg14_offers_pace
            && passive_authentication.data_group_passed(14)
        {
            // EF.CardAccess is read in plain: whoever strips it forces BAC. DG14, which the
            // SOD signs, says the chip has PACE (ICAO 9303-11 §9.2).
            let why = "DG14 lists PACE, but EF.CardAccess offered no usable PACE: access was downgraded to BAC";
            access.check = Check::failed(why);
            access
                .pace_fallback_reason
                .get_or_insert_with(|| why.into());
        }
        EmrtdReport {
            access,
            chip_authentication,
            active_authentication,
            active_authentication_evidence: evidence,
            passive_authentication,
            com,
            dg1,
            photo,
            dg11,
            dg12,
            parse_errors,
            raw,
            protected_apdus: self.sm.apdu_count(),
        }
    }
}

/// The parts of a report gathered before Passive Authentication.
struct FinishParts<'a> {
    chip_authentication: Check,
    active_authentication: Check,
    evidence: Option<ActiveAuthEvidence>,
    csca: Option<&'a CscaStore>,
    com: Option<EfCom>,
    dg1: Option<Dg1>,
    photo: Option<Photo>,
    dg11: Option<Dg11>,
    dg12: Option<Dg12>,
    parse_errors: Vec<String>,
    raw: RawFiles,
    /// DG14 holds a PACEInfo.
    dg14_offers_pace: bool,
}

/// A passed CA or AA check, kept only when Passive Authentication vouches for DG`n`, the file
/// holding the key (ICAO 9303-11 §6.1, §6.2: the key is trusted through EF.SOD): failed when
/// the SOD signature, the DS chain or DG`n`'s hash fails, not performed when the chain could
/// not be checked (no trust store).
fn bound_to_pa(check: Check, pa: &PassiveAuth, n: u8) -> Check {
    if !check.is_passed() {
        return check;
    }
    let report = match pa {
        PassiveAuth::Failed { reason } => {
            return Check::failed(format!("DG{n} is not authenticated: {reason}"));
        }
        PassiveAuth::Report(r) => r,
    };
    match report.data_group(n) {
        Some(Check::Passed) => {}
        Some(Check::Failed { reason }) => {
            return Check::failed(format!("DG{n} is not authenticated by EF.SOD: {reason}"));
        }
        Some(Check::NotPerformed { reason }) => {
            return Check::failed(format!("DG{n} is not authenticated by EF.SOD: {reason}"));
        }
        None => return Check::failed(format!("EF.SOD has no hash of DG{n}")),
    }
    for (what, step) in [
        ("EF.SOD signature", &report.signature),
        ("Document Signer certificate", &report.certificate_chain),
        ("Document Signer revocation", &report.revocation),
    ] {
        match step {
            Check::Failed { reason } => {
                return Check::failed(format!("DG{n} is not authenticated: {what}: {reason}"));
            }
            Check::NotPerformed { reason } if what != "Document Signer revocation" => {
                return Check::not_performed(format!(
                    "DG{n} key not authenticated: {what}: {reason}"
                ));
            }
            _ => {}
        }
    }
    Check::Passed
}

fn parse_dg<T, E: std::fmt::Display>(
    files: &BTreeMap<u8, Vec<u8>>,
    n: u8,
    parse: impl Fn(&[u8]) -> Result<T, E>,
    errors: &mut Vec<String>,
) -> Option<T> {
    let file = files.get(&n)?;
    match parse(file) {
        Ok(v) => Some(v),
        Err(e) => {
            errors.push(format!("DG{n}: {e}"));
            None
        }
    }
}

/// Opens the document and reads it, all inside one PC/SC transaction.
pub fn read_document(
    transport: &mut dyn Transport,
    key: &AccessKey,
    options: ReadOptions<'_>,
) -> Result<EmrtdReport, Error> {
    let mut tx = transport.transaction()?;
    Emrtd::open(&mut *tx, key)?.read_document(options)
}

/// Opens a secure channel with PACE alone (ICAO 9303-11 §4.4; no BAC fallback) and returns the
/// transport wrapped in it, the MF current, no application selected: every APDU sent through
/// the result is protected. For cards that keep other applications behind PACE (the contactless
/// Citizen Card, [`open_contactless_cc2`]).
///
/// [`Error::AccessDenied`] for a wrong password; [`Error::AccessFailed`] when the card offers no
/// PACE suite this software supports (no EF.CardAccess, or none it knows).
/// With PACE-CAM the chip's proof is not checked here (it needs the caller's CSCA store and
/// EF.CardSecurity): use [`Emrtd`] for eMRTDs.
pub fn open_pace<T: Transport>(
    mut transport: T,
    key: &AccessKey,
) -> Result<SecureTransport<T>, Error> {
    let extended = chip_extended(&transport);
    let infos = card_access(&mut transport)?.0.ok_or_else(|| {
        Error::AccessFailed("the card offers no PACE (no readable EF.CardAccess)".into())
    })?;
    let pace = chip::run_pace(&mut transport, key, &infos).map_err(Error::from)?;
    Ok(SecureTransport::new(
        transport,
        Box::new(pace.channel),
        extended,
    ))
}

/// The contactless Citizen Card (CC2, cards.md §A4): PACE with the 6-digit CAN printed on the
/// card, then the card's own applications over secure messaging. Hand the result to
/// [`crate::pteid::PteidCard::open`] and every Citizen Card operation (identity, certificates,
/// PINs, signatures) runs as on the contact interface.
///
/// ```no_run
/// # fn demo(transport: eid_card::pcsc_transport::PcscTransport) -> Result<(), eid_card::Error> {
/// use eid_card::emrtd::{AccessKey, open_contactless_cc2};
/// let can = AccessKey::can("123456").map_err(|_| eid_card::Error::AccessDenied)?;
/// let mut sm = open_contactless_cc2(transport, &can)?;
/// let mut card = eid_card::pteid::PteidCard::open(&mut sm)?;
/// let identity = card.read_identity()?;
/// # Ok(()) }
/// ```
pub fn open_contactless_cc2<T: Transport>(
    transport: T,
    can: &AccessKey,
) -> Result<SecureTransport<T>, Error> {
    if !can.is_can() {
        return Err(Error::AccessFailed(
            "the Citizen Card's contactless interface opens with its CAN, not MRZ data".into(),
        ));
    }
    open_pace(transport, can)
}

/// An ICAO 9303 travel document (passport, ID card, residence permit), whatever its issuer.
pub const EMRTD: crate::detect::CardKind = crate::detect::CardKind {
    id: "emrtd",
    name: "ICAO 9303 travel document (eMRTD)",
};

/// The detection rule for [`crate::detect::Detector`]: no ATR (eMRTD ATRs are whatever the
/// contactless reader makes of the chip), the LDS1 application AID (ICAO 9303-10 §3.10); a
/// plain SELECT by name answers 9000 before access control.
pub fn detection_rules() -> Vec<crate::detect::Rule> {
    vec![crate::detect::Rule {
        kind: EMRTD,
        atrs: Vec::new(),
        aids: vec![lds::LDS1_AID.to_vec()],
    }]
}

/// Which SecurityInfo entries a file offers, for callers that want to show them.
pub fn security_infos(infos: &SecurityInfos) -> &[SecurityInfo] {
    &infos.0
}
