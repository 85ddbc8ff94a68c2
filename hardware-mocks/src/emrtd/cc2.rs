//! `pteid-cc2-contactless`: the Portuguese Citizen Card CC2 read over its contactless interface
//! (cards.md §A1, §A4): the contactless ATR, PACE with the 6-digit CAN only (ECDH generic
//! mapping on P-256, AES-128; ICAO 9303-11 §4.4), and then, behind secure messaging, the same
//! card as the contact CC2 of [`crate::pteid::cc2`]: the eID application (MF, certificates,
//! signing commands) and the national-data application (ICAO-style DG1, DG2, DG13, DG14, DG15,
//! SOD), with Active Authentication by the DG15 card key.
//!
//! Before PACE the card shows only its MF with EF.CardAccess (`011C`, SFI `1C`); selecting the
//! eID or national-data application answers 6982, as the real card does, and so does any other
//! command but SELECT and READ BINARY in the MF.
//!
//! How it is put together: an outer card (MF + EF.CardAccess) whose applet is the eMRTD chip
//! applet (PACE and secure messaging, [`super::chip`]) in front of the complete contact CC2 card
//! built by [`crate::pteid::cc2::cc2`]; once PACE has succeeded, every unwrapped command goes to
//! that inner card in short APDUs (its `61xx` answers collected with GET RESPONSE), and its
//! answer goes back through secure messaging.

use eid_protocols::aa::{AaHash, AaKey};
use eid_protocols::pace::{PaceChipConfig, PaceProtocol};
use eid_protocols::sm::Cipher;
use eid_protocols::{Command, LengthForm, Response, Status};
use zeroize::Zeroizing;

use super::chip::{ChipConfig, EmrtdApplet};
use super::lds::{self, oid, param_id};
use super::profile::{EF_CARD_ACCESS, EmrtdError};
use crate::engine::{Applet, CardCore, Df, Ef, VirtualCard};
use crate::pki::{self, Curve, KeySpec};
use crate::pteid::{self, CC2_EID_AID, CC2_NATIONAL_DATA_AID, PteidCard, PteidOptions};

/// The profile name.
pub const PROFILE: &str = "pteid-cc2-contactless";

/// The CC2's contactless ATR (cards.md §A1):
/// `3B 8F 80 01 80 31 80 65 B0 85 05 00 11 12 0F FF 82 90 00 8B`.
pub const ATR: [u8; 20] = [
    0x3B, 0x8F, 0x80, 0x01, 0x80, 0x31, 0x80, 0x65, 0xB0, 0x85, 0x05, 0x00, 0x11, 0x12, 0x0F, 0xFF,
    0x82, 0x90, 0x00, 0x8B,
];

/// The PACE protocol the card offers: id-PACE-ECDH-GM-AES-CBC-CMAC-128.
pub const PACE_PROTOCOL: PaceProtocol = PaceProtocol::EcdhGm(Cipher::Aes128);
/// The PACE domain parameters: standardized id 12, NIST P-256.
pub const PACE_PARAMETER_ID: u8 = 12;

/// The most GET RESPONSE rounds spent collecting one answer of the inner card.
const MAX_GET_RESPONSE: usize = 300;

/// EF.CardAccess of the contactless CC2: one PACEInfo.
pub fn card_access() -> Vec<u8> {
    lds::security_infos(&[lds::pace_info(&oid::PACE_ECDH_GM_AES_128, param_id::P256)])
}

/// One line for `eid-virtual-card --list`.
pub fn describe() -> String {
    format!(
        "{PROFILE}: Citizen Card CC2 over contactless; PACE-GM P-256 AES-128 with the CAN only \
         (default citizen: CAN {}), then the CC2 (eID + national data, signing) under SM",
        pteid::Identity::default().can
    )
}

/// The contactless CC2 of the default citizen (CAN "123456").
pub fn cc2_contactless_default() -> Result<PteidCard, EmrtdError> {
    cc2_contactless(&PteidOptions::default())
}

/// A contactless CC2 for `options` (the citizen's CAN is the PACE password). The returned
/// [`PteidCard::pki`] is the contact CC2's (citizen certificates, document signer, roots).
pub fn cc2_contactless(options: &PteidOptions) -> Result<PteidCard, EmrtdError> {
    let PteidCard { card: inner, pki } = pteid::cc2::cc2(options)?;
    let aa_key = card_key(&inner)?;
    let config = ChipConfig {
        mrz_information: None,
        can: Some(Zeroizing::new(options.identity.can.clone())),
        bac: false,
        pace: vec![PaceChipConfig {
            protocol: PACE_PROTOCOL,
            parameter_id: PACE_PARAMETER_ID,
            cam_key: None,
        }],
        ca: None,
        aa: Some(aa_key),
        ..ChipConfig::default()
    };
    let front = ContactlessFront {
        chip: EmrtdApplet::new(config),
        inner,
        had_session: false,
    };
    let mf = Df::mf().ef(Ef::new(EF_CARD_ACCESS.0, card_access()).sfi(EF_CARD_ACCESS.1));
    let card = VirtualCard::builder(ATR.to_vec(), mf).applet(front).build();
    Ok(PteidCard { card, pki })
}

/// The card's Active Authentication key: the P-256 key whose public half the contact CC2's DG15
/// (national-data application, `010F`) holds. The key is the process-wide cached key of the
/// Citizen Card test PKI; it is checked against DG15 so a mismatch fails loudly here instead of
/// producing a card that fails Active Authentication.
fn card_key(inner: &VirtualCard) -> Result<AaKey, EmrtdError> {
    /// The [`pki::cached_key`] slot of the CC2 card key in `crate::pteid`.
    const CC2_CARD_KEY_SLOT: u32 = 22;
    let key = pki::cached_key(KeySpec::Ec(Curve::P256), CC2_CARD_KEY_SLOT)?;
    let dg15 = inner
        .file(&[pteid::cc2::NATIONAL_DATA_FID, 0x010F])
        .ok_or_else(|| EmrtdError::Other("the CC2 has no DG15".into()))?;
    let spki = key.public_key_to_der()?;
    let expected = super::lds::dg15(&spki);
    if dg15 != expected.as_slice() {
        return Err(EmrtdError::Other(
            "the CC2 card key is not the DG15 key (crate::pteid changed its key slots)".into(),
        ));
    }
    Ok(AaKey::Ec(key.ec_key()?, AaHash::Sha256))
}

/// PACE and secure messaging in front of the contact CC2.
struct ContactlessFront {
    chip: EmrtdApplet,
    inner: VirtualCard,
    /// Whether a PACE session was open after the previous hook call.
    had_session: bool,
}

impl std::fmt::Debug for ContactlessFront {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContactlessFront")
            .field("chip", &self.chip)
            .field("inner", &self.inner)
            .finish()
    }
}

impl ContactlessFront {
    /// When the secure messaging session has ended (plain command, SM error, new MSE:Set AT),
    /// the security state it carried ends with it: the inner card's verified PINs, security
    /// environment and selection are dropped, so a new PACE (with a CAN anyone can read off the
    /// card) does not inherit a PIN someone verified in an earlier session: security status
    /// reached under a secure messaging session does not outlive it.
    fn follow_session(&mut self) {
        let now = self.chip.has_session();
        if self.had_session && !now {
            self.inner.reset();
        }
        self.had_session = now;
    }

    /// Sends one plain command to the inner card in short APDUs (chained when the data is
    /// longer than 255 bytes) and collects a `61xx` answer with GET RESPONSE.
    fn forward(&mut self, command: &Command) -> Response {
        let ne = command.ne().map(|ne| ne.min(256));
        let data = command.data();
        let parts: Vec<&[u8]> = if data.is_empty() {
            vec![data]
        } else {
            data.chunks(255).collect()
        };
        let last_index = parts.len().saturating_sub(1);
        let mut answer = Response::status_only(Status::NoPreciseDiagnosis);
        for (i, part) in parts.iter().enumerate() {
            let last = i == last_index;
            let cla = if last {
                command.cla()
            } else {
                command.cla() | 0x10
            };
            let mut part_command = Command::new(cla, command.ins(), command.p1(), command.p2())
                .with_secret_data(Zeroizing::new(part.to_vec()));
            if last && let Some(ne) = ne {
                part_command = part_command.with_ne(ne);
            }
            answer = self.exchange(&part_command);
            if !last && !answer.is_success() {
                return answer;
            }
        }
        let mut data = answer.data().to_vec();
        let mut status = answer.status();
        for _ in 0..MAX_GET_RESPONSE {
            let Status::MoreAvailable(n) = status else {
                break;
            };
            let ne = if n == 0 { 256 } else { usize::from(n) };
            let next = self.exchange(&Command::new(0x00, 0xC0, 0x00, 0x00).with_ne(ne));
            data.extend_from_slice(next.data());
            status = next.status();
        }
        Response::new(data, status)
    }

    fn exchange(&mut self, command: &Command) -> Response {
        let Ok(bytes) = command.encode(LengthForm::Short) else {
            return Response::status_only(Status::WrongLength);
        };
        Response::from_vec(self.inner.process(&bytes))
            .unwrap_or_else(|_| Response::status_only(Status::NoPreciseDiagnosis))
    }
}

/// Whether a SELECT names one of the Citizen Card applications by AID.
fn selects_application(command: &Command) -> bool {
    command.ins() == 0xA4
        && command.p1() == 0x04
        && [CC2_EID_AID, CC2_NATIONAL_DATA_AID]
            .iter()
            .any(|aid| command.data().starts_with(aid) || aid.starts_with(command.data()))
}

impl Applet for ContactlessFront {
    fn unwrap_command(
        &mut self,
        core: &mut CardCore,
        command: Command,
    ) -> Result<Command, Response> {
        let result = self.chip.unwrap_command(core, command);
        self.follow_session();
        result
    }

    fn process(&mut self, core: &mut CardCore, command: &Command) -> Option<Response> {
        let answer = self.chip.process(core, command);
        self.follow_session();
        if answer.is_some() {
            return answer;
        }
        if self.chip.has_session() {
            return Some(self.forward(command));
        }
        // Before PACE: the MF and EF.CardAccess only.
        if selects_application(command) {
            return Some(Response::status_only(Status::SecurityStatusNotSatisfied));
        }
        match command.ins() {
            0xA4 | 0xB0 => None,
            _ => Some(Response::status_only(Status::SecurityStatusNotSatisfied)),
        }
    }

    fn wrap_response(&mut self, core: &mut CardCore, response: Response) -> Response {
        let response = self.chip.wrap_response(core, response);
        self.follow_session();
        response
    }

    fn reset(&mut self) {
        self.chip.reset();
        self.inner.reset();
        self.had_session = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atr_is_the_contactless_atr_with_its_check_byte() {
        assert_eq!(
            super::super::profile::contactless_atr(&ATR[4..19]),
            ATR.to_vec()
        );
    }
}
