//! The eMRTD chip's access control and secure messaging as an engine [`Applet`]: BAC
//! (ICAO 9303-11 §4.3), PACE generic mapping and PACE-CAM (§4.4), chip authentication v1
//! (§6.2), active authentication (§6.1), and secure messaging (§9.8) around every command and
//! every answer, the engine's own file answers included.
//!
//! The protocol logic is the chip side of `eid_protocols::{bac, pace, ca, aa, sm}`: the same
//! code the terminal side is tested against, so a virtual passport never accepts what the
//! protocol code would refuse.
//!
//! Behaviour a real chip has and this one copies:
//! - a secure messaging error (missing objects, bad MAC, bad padding) is answered 6987 / 6988 in
//!   plain and ends the session; so does any plain command received during a session;
//! - a wrong BAC key gets 6300 (bad challenge) or 6988 (bad MAC); a wrong PACE password gets
//!   6300 on the last GENERAL AUTHENTICATE (the terminal's token does not verify);
//! - applications listed in [`ChipConfig::sm_required_aids`] answer 6982 to anything but access
//!   control commands until BAC or PACE has succeeded;
//! - INTERNAL AUTHENTICATE (active authentication) is answered only under secure messaging,
//!   6982 in plain wherever the current DF is;
//! - a reset (power off/on) ends every session.

use std::fmt;

use eid_protocols::aa::{self, AaKey};
use eid_protocols::bac::BacChip;
use eid_protocols::ca::{CaChip, CaProtocol};
use eid_protocols::pace::{PaceChip, PaceChipConfig, PacePassword, parse_mse_set_at};
use eid_protocols::sm::{ChipChannel, OsRandom};
use eid_protocols::{Command, Response, Status};
use openssl::ec::EcKey;
use openssl::pkey::Private;
use zeroize::Zeroizing;

use crate::engine::{Applet, CardCore};

const INS_MSE: u8 = 0x22;
const INS_EXTERNAL_AUTHENTICATE: u8 = 0x82;
const INS_GET_CHALLENGE: u8 = 0x84;
const INS_GENERAL_AUTHENTICATE: u8 = 0x86;
const INS_INTERNAL_AUTHENTICATE: u8 = 0x88;
const INS_SELECT: u8 = 0xA4;

/// The chip's chip-authentication key (DG14).
#[derive(Clone, Debug)]
pub struct CaKey {
    pub protocol: CaProtocol,
    pub key: EcKey<Private>,
    /// keyId of ChipAuthenticationInfo / -PublicKeyInfo, if the chip has several keys.
    pub key_id: Option<Vec<u8>>,
}

/// Faults to inject into protected answers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Faults {
    /// Corrupt the MAC of the N-th protected answer (1-based, counted since power-on).
    pub corrupt_response_mac: Option<u64>,
    /// Corrupt the MAC of every protected answer.
    pub corrupt_all_response_macs: bool,
}

/// What the chip knows and offers.
#[derive(Clone, Default)]
pub struct ChipConfig {
    /// MRZ_information (document number, date of birth, date of expiry with check digits): the
    /// BAC key and the PACE MRZ password.
    pub mrz_information: Option<Zeroizing<Vec<u8>>>,
    /// The card access number (PACE password 02).
    pub can: Option<Zeroizing<String>>,
    /// Whether BAC (GET CHALLENGE + EXTERNAL AUTHENTICATE) is available.
    pub bac: bool,
    /// PACE protocols offered (as in EF.CardAccess), each with its domain parameters and, for
    /// PACE-CAM, the chip's static key.
    pub pace: Vec<PaceChipConfig>,
    /// Chip authentication v1 key.
    pub ca: Option<CaKey>,
    /// Active authentication key.
    pub aa: Option<AaKey>,
    /// DF names (AIDs) whose contents need BAC or PACE first (6982 before).
    pub sm_required_aids: Vec<Vec<u8>>,
    pub faults: Faults,
}

impl fmt::Debug for ChipConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChipConfig")
            .field(
                "mrz_information",
                &self.mrz_information.as_ref().map(|_| "<secret>"),
            )
            .field("can", &self.can.as_ref().map(|_| "<secret>"))
            .field("bac", &self.bac)
            .field(
                "pace",
                &self
                    .pace
                    .iter()
                    .map(|p| (p.protocol, p.parameter_id))
                    .collect::<Vec<_>>(),
            )
            .field("ca", &self.ca.as_ref().map(|c| c.protocol))
            .field("aa", &self.aa)
            .field("sm_required_aids", &self.sm_required_aids.len())
            .field("faults", &self.faults)
            .finish()
    }
}

/// The eMRTD access-control applet. Add it to a card with
/// [`crate::engine::CardBuilder::applet`].
pub struct EmrtdApplet {
    config: ChipConfig,
    rng: OsRandom,
    bac: Option<BacChip>,
    pace: Option<PaceChip>,
    ca: Option<CaChip>,
    sm: Option<ChipChannel>,
    /// The channel chip authentication set up, switched to after answering 9000 under the old.
    next_sm: Option<ChipChannel>,
    /// Whether the command being processed came under secure messaging.
    protected: bool,
    protected_answers: u64,
}

impl EmrtdApplet {
    pub fn new(config: ChipConfig) -> Self {
        EmrtdApplet {
            ca: config
                .ca
                .as_ref()
                .map(|c| CaChip::new(c.protocol, c.key.clone(), c.key_id.clone())),
            config,
            rng: OsRandom,
            bac: None,
            pace: None,
            sm: None,
            next_sm: None,
            protected: false,
            protected_answers: 0,
        }
    }

    /// Whether a secure messaging session is open.
    pub fn has_session(&self) -> bool {
        self.sm.is_some()
    }

    fn end_session(&mut self) {
        self.sm = None;
        self.next_sm = None;
        self.protected = false;
        if let Some(ca) = self.ca.as_mut() {
            // Forget a half-done chip authentication.
            ca.cancel();
        }
    }

    fn password(&self, reference: u8) -> Option<PacePassword> {
        match reference {
            PacePassword::MRZ => self
                .config
                .mrz_information
                .as_ref()
                .and_then(|m| PacePassword::mrz(m).ok()),
            PacePassword::CAN => self.config.can.as_ref().map(|c| PacePassword::can(c)),
            _ => None,
        }
    }

    /// Whether the current DF needs access control that has not happened yet.
    fn locked(&self, core: &CardCore) -> bool {
        if self.sm.is_some() {
            return false;
        }
        let fs = core.fs();
        let mut df = Some(core.current_df());
        while let Some(d) = df {
            if let Some(name) = fs.name(d)
                && self.config.sm_required_aids.iter().any(|aid| aid == name)
            {
                return true;
            }
            df = fs.parent(d);
        }
        false
    }

    /// PACE GENERAL AUTHENTICATE steps, which are chain parts with an answer each.
    fn pace_step(&mut self, command: &Command) -> Response {
        let Some(pace) = self.pace.as_mut() else {
            return Response::status_only(Status::ConditionsNotSatisfied);
        };
        let chained = command.cla() & 0x10 != 0;
        if chained == pace.expects_last() {
            self.pace = None;
            return Response::status_only(Status::LastCommandOfChainExpected);
        }
        match pace.general_authenticate(command.data(), &mut self.rng) {
            Ok(data) if chained => Response::new(data, Status::Success),
            Ok(data) => {
                let channel = self.pace.take().map(PaceChip::finish);
                match channel {
                    Some(Ok(channel)) => {
                        self.sm = Some(channel);
                        Response::new(data, Status::Success)
                    }
                    _ => Response::status_only(Status::NoPreciseDiagnosis),
                }
            }
            Err(e) => {
                self.pace = None;
                Response::status_only(e.status())
            }
        }
    }

    fn mse(&mut self, command: &Command) -> Option<Response> {
        let data = command.data();
        match (command.p1(), command.p2()) {
            // PACE: MSE:Set AT for mutual authentication.
            (0xC1, 0xA4) => {
                self.end_session();
                self.pace = None;
                let mse = match parse_mse_set_at(data) {
                    Ok(mse) => mse,
                    Err(e) => return Some(Response::status_only(e.status())),
                };
                let offer = self.config.pace.iter().find(|p| {
                    p.protocol == mse.protocol
                        && mse.parameter_id.is_none_or(|id| id == p.parameter_id)
                });
                let Some(offer) = offer.cloned() else {
                    return Some(Response::status_only(Status::ReferenceNotFound));
                };
                let Some(password) = self.password(mse.password_ref) else {
                    return Some(Response::status_only(Status::ReferenceNotFound));
                };
                let answer = PaceChip::new(offer, &password).and_then(|mut chip| {
                    chip.mse_set_at(data)?;
                    Ok(chip)
                });
                Some(match answer {
                    Ok(chip) => {
                        self.pace = Some(chip);
                        Response::status_only(Status::Success)
                    }
                    Err(e) => Response::status_only(e.status()),
                })
            }
            // Chip authentication, 3DES: MSE:Set KAT.
            (0x41, 0xA6) => {
                let ca = self.ca.as_mut()?;
                if self.sm.is_none() {
                    return Some(Response::status_only(Status::ConditionsNotSatisfied));
                }
                Some(match ca.mse_set_kat(data) {
                    Ok(channel) => {
                        self.next_sm = Some(channel);
                        Response::status_only(Status::Success)
                    }
                    Err(e) => Response::status_only(e.status()),
                })
            }
            // Chip authentication, AES: MSE:Set AT (tag 80 names a CA OID).
            (0x41, 0xA4) if self.ca.is_some() && self.sm.is_some() => {
                let ca = self.ca.as_mut()?;
                Some(match ca.mse_set_at(data) {
                    Ok(()) => Response::status_only(Status::Success),
                    Err(e) => Response::status_only(e.status()),
                })
            }
            _ => None,
        }
    }
}

impl fmt::Debug for EmrtdApplet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmrtdApplet")
            .field("config", &self.config)
            .field("session", &self.sm.is_some())
            .finish_non_exhaustive()
    }
}

impl Applet for EmrtdApplet {
    fn unwrap_command(
        &mut self,
        _core: &mut CardCore,
        command: Command,
    ) -> Result<Command, Response> {
        let cla = command.cla();
        if cla & 0x80 == 0 && cla & 0x0C == 0x0C {
            let Some(sm) = self.sm.as_mut() else {
                return Err(Response::status_only(Status::SmObjectsIncorrect));
            };
            return match sm.unwrap_command(&command) {
                Ok(plain) => {
                    self.protected = true;
                    Ok(plain)
                }
                Err(e) => {
                    self.end_session();
                    Err(Response::status_only(e.status()))
                }
            };
        }
        // A plain command ends secure messaging (ICAO 9303-11 §9.8.3).
        if self.sm.is_some() {
            self.end_session();
        }
        self.protected = false;
        if command.ins() == INS_GENERAL_AUTHENTICATE {
            // Plain GENERAL AUTHENTICATE is PACE only (chip authentication runs under SM).
            return Err(self.pace_step(&command));
        }
        Ok(command)
    }

    fn process(&mut self, core: &mut CardCore, command: &Command) -> Option<Response> {
        let ins = command.ins();
        let access_control = matches!(
            ins,
            INS_MSE | INS_EXTERNAL_AUTHENTICATE | INS_GET_CHALLENGE | INS_GENERAL_AUTHENTICATE
        ) || (ins == INS_SELECT && command.p1() == 0x04)
            // Selecting the MF is always allowed: after a plain command has ended secure
            // messaging inside LDS1, a terminal starts again from the MF (ICAO 9303-11 §9.8.3).
            || (ins == INS_SELECT
                && command.p1() == 0x00
                && matches!(command.data(), [] | [0x3F, 0x00]));
        if !access_control && self.locked(core) {
            return Some(Response::status_only(Status::SecurityStatusNotSatisfied));
        }
        match ins {
            INS_GET_CHALLENGE if self.config.bac && !self.protected => {
                let mrz = self.config.mrz_information.as_ref()?;
                if command.p1() != 0 || command.p2() != 0 {
                    return Some(Response::status_only(Status::IncorrectP1P2));
                }
                if command.ne() != Some(8) || command.nc() != 0 {
                    return Some(Response::status_only(Status::WrongLength));
                }
                let answer = BacChip::new(mrz).and_then(|mut chip| {
                    let rnd = chip.get_challenge(&mut self.rng)?;
                    Ok((chip, rnd))
                });
                Some(match answer {
                    Ok((chip, rnd)) => {
                        self.bac = Some(chip);
                        Response::new(rnd.to_vec(), Status::Success)
                    }
                    Err(e) => Response::status_only(e.status()),
                })
            }
            INS_EXTERNAL_AUTHENTICATE if self.config.bac && !self.protected => {
                let Some(mut chip) = self.bac.take() else {
                    return Some(Response::status_only(Status::ConditionsNotSatisfied));
                };
                Some(
                    match chip.external_authenticate(command.data(), &mut self.rng) {
                        Ok((answer, channel)) => {
                            self.sm = Some(channel);
                            Response::new(answer, Status::Success)
                        }
                        Err(e) => Response::status_only(e.status()),
                    },
                )
            }
            INS_MSE => self.mse(command),
            INS_GENERAL_AUTHENTICATE if self.protected => {
                let ca = self.ca.as_mut()?;
                Some(match ca.general_authenticate(command.data()) {
                    Ok((data, channel)) => {
                        self.next_sm = Some(channel);
                        Response::new(data, Status::Success)
                    }
                    Err(e) => Response::status_only(e.status()),
                })
            }
            INS_INTERNAL_AUTHENTICATE => {
                let key = self.config.aa.as_ref()?;
                // Active authentication belongs to the LDS1 application after access control
                // (ICAO 9303-11 §6.1): a chip does not sign challenges for anyone in reach
                // before BAC or PACE, wherever the command is sent.
                if !self.protected {
                    return Some(Response::status_only(Status::SecurityStatusNotSatisfied));
                }
                if command.p1() != 0 || command.p2() != 0 {
                    return Some(Response::status_only(Status::IncorrectP1P2));
                }
                if command.nc() != 8 {
                    return Some(Response::status_only(Status::WrongLength));
                }
                Some(match aa::sign(key, command.data(), &mut self.rng) {
                    Ok(sig) => Response::new(sig, Status::Success),
                    Err(_) => Response::status_only(Status::NoPreciseDiagnosis),
                })
            }
            _ => None,
        }
    }

    fn wrap_response(&mut self, _core: &mut CardCore, response: Response) -> Response {
        if !std::mem::take(&mut self.protected) {
            return response;
        }
        let Some(sm) = self.sm.as_mut() else {
            return response;
        };
        let success = response.is_success();
        let wrapped = match sm.wrap_response(&response) {
            Ok(wrapped) => wrapped,
            Err(_) => {
                self.end_session();
                return Response::status_only(Status::NoPreciseDiagnosis);
            }
        };
        self.protected_answers = self.protected_answers.saturating_add(1);
        let faults = self.config.faults;
        let wrapped = if faults.corrupt_all_response_macs
            || faults.corrupt_response_mac == Some(self.protected_answers)
        {
            let status = wrapped.status();
            let mut data = wrapped.into_data();
            if let Some(last) = data.last_mut() {
                *last ^= 0x01;
            }
            Response::new(data, status)
        } else {
            wrapped
        };
        // Chip authentication: the new keys apply from the next command on.
        match self.next_sm.take() {
            Some(next) if success => self.sm = Some(next),
            _ => {}
        }
        wrapped
    }

    fn reset(&mut self) {
        self.end_session();
        self.bac = None;
        self.pace = None;
        self.protected_answers = 0;
    }
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )]

    use eid_protocols::aa;
    use eid_protocols::aa::AaHash;
    use eid_protocols::ca::CaTerminal;
    use eid_protocols::commands::{self, FileReturn, Select};
    use eid_protocols::pace::{PaceConfig, PaceError, PaceProtocol};
    use eid_protocols::sm::{Cipher, SecureChannel, SmError};
    use openssl::ec::EcGroup;
    use openssl::nid::Nid;
    use openssl::rsa::Rsa;

    use super::*;
    use crate::VirtualCard;
    use crate::emrtd::terminal::{self, TerminalError};
    use crate::engine::{Df, Ef, atr_t1};

    const LDS1: [u8; 7] = [0xA0, 0x00, 0x00, 0x02, 0x47, 0x10, 0x01];
    const MRZ: &[u8] = b"L898902C<369080619406236";
    const EF_COM: [u8; 22] = [
        0x60, 0x14, 0x5F, 0x01, 0x04, 0x30, 0x31, 0x30, 0x36, 0x5F, 0x36, 0x06, 0x30, 0x34, 0x30,
        0x30, 0x30, 0x30, 0x5C, 0x02, 0x61, 0x75,
    ];

    fn config() -> ChipConfig {
        let ec = |nid| EcKey::generate(&EcGroup::from_curve_name(nid).unwrap()).unwrap();
        ChipConfig {
            mrz_information: Some(Zeroizing::new(MRZ.to_vec())),
            can: Some(Zeroizing::new("123456".into())),
            bac: true,
            pace: vec![
                PaceChipConfig {
                    protocol: PaceProtocol::EcdhGm(Cipher::Aes128),
                    parameter_id: 13,
                    cam_key: None,
                },
                PaceChipConfig {
                    protocol: PaceProtocol::EcdhCam(Cipher::Aes256),
                    parameter_id: 12,
                    cam_key: Some(ec(Nid::X9_62_PRIME256V1)),
                },
            ],
            ca: Some(CaKey {
                protocol: CaProtocol(Cipher::Tdes),
                key: ec(Nid::BRAINPOOL_P256R1),
                key_id: None,
            }),
            aa: Some(AaKey::Rsa(Rsa::generate(1024).unwrap(), AaHash::Sha1)),
            sm_required_aids: vec![LDS1.to_vec()],
            faults: Faults::default(),
        }
    }

    fn new_card(config: ChipConfig) -> VirtualCard {
        let files = Df::mf()
            .ef(Ef::new(0x011C, vec![0x31, 0x00]).sfi(0x1C))
            .df(Df::new(0x7F00)
                .name(LDS1)
                .ef(Ef::new(0x011E, EF_COM).sfi(0x1E)));
        VirtualCard::builder(atr_t1(b"eMRTD"), files)
            .applet(EmrtdApplet::new(config))
            .build()
    }

    fn send(card: &mut VirtualCard, cmd: &Command) -> Response {
        terminal::send(card, cmd).unwrap()
    }

    fn send_sm(card: &mut VirtualCard, sm: &mut SecureChannel, cmd: &Command) -> Response {
        terminal::send_sm(card, sm, cmd, None).unwrap()
    }

    fn select_lds(card: &mut VirtualCard) {
        let r = send(
            card,
            &commands::select(Select::DfName(&LDS1), FileReturn::None),
        );
        assert_eq!(r.status(), Status::Success);
    }

    fn bac(
        card: &mut VirtualCard,
        mrz: &[u8],
    ) -> Result<SecureChannel, eid_protocols::bac::BacError> {
        match terminal::bac(card, mrz) {
            Err(TerminalError::Bac(e)) => Err(e),
            other => Ok(other.unwrap()),
        }
    }

    fn pace(
        card: &mut VirtualCard,
        config: PaceConfig,
        pw: &PacePassword,
    ) -> Result<eid_protocols::pace::PaceOutcome, PaceError> {
        match terminal::pace(card, config, pw) {
            Err(TerminalError::Pace(e)) => Err(e),
            Err(TerminalError::MseRefused(sw)) => Err(PaceError::Rejected(Status::from(sw))),
            other => Ok(other.unwrap()),
        }
    }

    fn read_ef_com(card: &mut VirtualCard, sm: &mut SecureChannel) -> Vec<u8> {
        let r = send_sm(
            card,
            sm,
            &commands::select(Select::ChildEf(0x011E), FileReturn::None),
        );
        assert_eq!(r.status(), Status::Success);
        let r = send_sm(card, sm, &commands::read_binary(0, 256).unwrap());
        assert!(r.status() == Status::Success || r.status() == Status::EndOfFile);
        r.into_data()
    }

    #[test]
    fn lds_application_refuses_plain_reads_before_access_control() {
        let mut card = new_card(config());
        // EF.CardAccess under the MF is readable in plain.
        let r = send(&mut card, &commands::read_binary_sfi(0x1C, 0, 256).unwrap());
        assert!(matches!(r.status(), Status::Success | Status::EndOfFile));
        assert_eq!(r.data(), &[0x31, 0x00]);
        select_lds(&mut card);
        let r = send(
            &mut card,
            &commands::select(Select::ChildEf(0x011E), FileReturn::None),
        );
        assert_eq!(r.status(), Status::SecurityStatusNotSatisfied);
        let r = send(&mut card, &commands::read_binary_sfi(0x1E, 0, 4).unwrap());
        assert_eq!(r.status(), Status::SecurityStatusNotSatisfied);
    }

    #[test]
    fn bac_then_secure_read_binary() {
        let mut card = new_card(config());
        select_lds(&mut card);
        let mut sm = bac(&mut card, MRZ).unwrap();
        assert_eq!(read_ef_com(&mut card, &mut sm), EF_COM);
        // A missing file is answered under secure messaging too.
        let r = send_sm(
            &mut card,
            &mut sm,
            &commands::select(Select::ChildEf(0x0199), FileReturn::None),
        );
        assert_eq!(r.status(), Status::FileNotFound);
    }

    #[test]
    fn a_plain_command_ends_secure_messaging_and_the_mf_can_be_selected_again() {
        let mut card = new_card(config());
        select_lds(&mut card);
        let mut sm = bac(&mut card, MRZ).unwrap();
        assert_eq!(read_ef_com(&mut card, &mut sm), EF_COM);
        // A plain SELECT MF ends the session (ICAO 9303-11 §9.8.3) and is answered in plain.
        let r = send(
            &mut card,
            &commands::select(Select::MasterFile, FileReturn::None),
        );
        assert_eq!(r.status(), Status::Success);
        // The old keys are gone: a protected command is refused in plain.
        let wrapped = sm.wrap(&commands::read_binary(0, 4).unwrap()).unwrap();
        assert_eq!(
            send(&mut card, &wrapped).status(),
            Status::SmObjectsIncorrect
        );
        // And LDS1 is locked again until access control is redone.
        select_lds(&mut card);
        let r = send(&mut card, &commands::read_binary_sfi(0x1E, 0, 4).unwrap());
        assert_eq!(r.status(), Status::SecurityStatusNotSatisfied);
    }

    #[test]
    fn bac_with_a_wrong_mrz_is_refused() {
        let mut card = new_card(config());
        let err = bac(&mut card, b"L898902C<369080619406237").unwrap_err();
        assert!(
            matches!(
                err,
                eid_protocols::bac::BacError::Rejected(
                    Status::SmObjectsIncorrect | Status::VerificationFailed
                )
            ),
            "{err}"
        );
    }

    #[test]
    fn pace_with_can_and_mrz_then_secure_read_binary() {
        for pw in [PacePassword::can("123456"), PacePassword::mrz(MRZ).unwrap()] {
            let mut card = new_card(config());
            let config = PaceConfig {
                protocol: PaceProtocol::EcdhGm(Cipher::Aes128),
                parameter_id: 13,
                send_parameter_id: true,
            };
            let outcome = pace(&mut card, config, &pw).unwrap();
            let mut sm = outcome.channel;
            select_lds_sm(&mut card, &mut sm);
            assert_eq!(read_ef_com(&mut card, &mut sm), EF_COM);
        }
    }

    fn select_lds_sm(card: &mut VirtualCard, sm: &mut SecureChannel) {
        let r = send_sm(
            card,
            sm,
            &commands::select(Select::DfName(&LDS1), FileReturn::None),
        );
        assert_eq!(r.status(), Status::Success);
    }

    #[test]
    fn pace_cam_proves_the_configured_key() {
        let config = config();
        let key = config.pace[1].cam_key.clone().unwrap();
        let mut card = new_card(config);
        let outcome = pace(
            &mut card,
            PaceConfig {
                protocol: PaceProtocol::EcdhCam(Cipher::Aes256),
                parameter_id: 12,
                send_parameter_id: true,
            },
            &PacePassword::can("123456"),
        )
        .unwrap();
        let mut ctx = openssl::bn::BigNumContext::new().unwrap();
        let public = key
            .public_key()
            .to_bytes(
                key.group(),
                openssl::ec::PointConversionForm::UNCOMPRESSED,
                &mut ctx,
            )
            .unwrap();
        outcome
            .chip_authentication
            .unwrap()
            .verify(&public)
            .unwrap();
    }

    #[test]
    fn pace_with_a_wrong_can_gets_6300() {
        let mut card = new_card(config());
        let err = pace(
            &mut card,
            PaceConfig {
                protocol: PaceProtocol::EcdhGm(Cipher::Aes128),
                parameter_id: 13,
                send_parameter_id: false,
            },
            &PacePassword::can("000000"),
        )
        .unwrap_err();
        assert!(
            matches!(err, PaceError::Rejected(Status::VerificationFailed)),
            "{err}"
        );
        // Parameters the chip does not offer.
        let err = pace(
            &mut card,
            PaceConfig {
                protocol: PaceProtocol::EcdhGm(Cipher::Aes128),
                parameter_id: 17,
                send_parameter_id: true,
            },
            &PacePassword::can("123456"),
        )
        .unwrap_err();
        assert!(
            matches!(err, PaceError::Rejected(Status::ReferenceNotFound)),
            "{err}"
        );
    }

    #[test]
    fn corrupted_response_mac_is_detected() {
        let mut config = config();
        config.faults.corrupt_response_mac = Some(2);
        let mut card = new_card(config);
        select_lds(&mut card);
        let mut sm = bac(&mut card, MRZ).unwrap();
        let select = commands::select(Select::ChildEf(0x011E), FileReturn::None);
        let w = sm.wrap(&select).unwrap();
        assert!(sm.unwrap(&send(&mut card, &w)).is_ok());
        let read = commands::read_binary(0, 4).unwrap();
        let w = sm.wrap(&read).unwrap();
        let err = sm.unwrap(&send(&mut card, &w)).unwrap_err();
        assert!(matches!(err, SmError::MacMismatch));
    }

    #[test]
    fn reset_ends_the_session_and_forged_commands_get_6988() {
        let mut card = new_card(config());
        select_lds(&mut card);
        let mut sm = bac(&mut card, MRZ).unwrap();
        card.reset();
        let read = commands::read_binary(0, 4).unwrap();
        let w = sm.wrap(&read).unwrap();
        let err = sm.unwrap(&send(&mut card, &w)).unwrap_err();
        assert!(matches!(
            err,
            SmError::ChipRejected(Status::SmObjectsIncorrect)
        ));
        // A tampered command ends the session.
        select_lds(&mut card);
        let mut sm = bac(&mut card, MRZ).unwrap();
        let wrapped = sm.wrap(&read).unwrap();
        let mut data = wrapped.data().to_vec();
        let n = data.len();
        data[n - 1] ^= 1;
        let forged = Command::new(wrapped.cla(), 0xB0, 0, 0)
            .with_data(data)
            .with_ne(256);
        assert_eq!(
            send(&mut card, &forged).status(),
            Status::SmObjectsIncorrect
        );
    }

    #[test]
    fn chip_authentication_after_bac_and_after_pace() {
        // 3DES variant after BAC.
        let config = config();
        let ca = config.ca.clone().unwrap();
        let spki = CaChip::new(ca.protocol, ca.key.clone(), None)
            .public_key_der()
            .unwrap();
        let mut card = new_card(config);
        select_lds(&mut card);
        let mut sm = bac(&mut card, MRZ).unwrap();
        let t = CaTerminal::new(ca.protocol, None, &spki, &mut OsRandom).unwrap();
        let answers: Vec<Response> = t
            .commands()
            .unwrap()
            .iter()
            .map(|c| send_sm(&mut card, &mut sm, c))
            .collect();
        let mut sm = t.finish(&answers).unwrap();
        assert_eq!(read_ef_com(&mut card, &mut sm), EF_COM);

        // AES variant after PACE.
        let mut config2 = self::config();
        let key = EcKey::generate(&EcGroup::from_curve_name(Nid::SECP384R1).unwrap()).unwrap();
        config2.ca = Some(CaKey {
            protocol: CaProtocol(Cipher::Aes256),
            key: key.clone(),
            key_id: Some(vec![7]),
        });
        let spki = CaChip::new(CaProtocol(Cipher::Aes256), key, None)
            .public_key_der()
            .unwrap();
        let mut card = new_card(config2);
        let outcome = pace(
            &mut card,
            PaceConfig {
                protocol: PaceProtocol::EcdhGm(Cipher::Aes128),
                parameter_id: 13,
                send_parameter_id: false,
            },
            &PacePassword::can("123456"),
        )
        .unwrap();
        let mut sm = outcome.channel;
        let t =
            CaTerminal::new(CaProtocol(Cipher::Aes256), Some(&[7]), &spki, &mut OsRandom).unwrap();
        let answers: Vec<Response> = t
            .commands()
            .unwrap()
            .iter()
            .map(|c| send_sm(&mut card, &mut sm, c))
            .collect();
        let mut sm = t.finish(&answers).unwrap();
        assert_eq!(sm.cipher(), Cipher::Aes256);
        select_lds_sm(&mut card, &mut sm);
        assert_eq!(read_ef_com(&mut card, &mut sm), EF_COM);
    }

    #[test]
    fn active_authentication_under_secure_messaging() {
        let config = config();
        let key = config.aa.clone().unwrap();
        let mut card = new_card(config);
        select_lds(&mut card);
        // Before access control: refused, in the MF as in LDS1.
        let challenge = [9u8; 8];
        let r = send(&mut card, &aa::internal_authenticate(&challenge));
        assert_eq!(r.status(), Status::SecurityStatusNotSatisfied);
        card.reset();
        let r = send(&mut card, &aa::internal_authenticate(&challenge));
        assert_eq!(r.status(), Status::SecurityStatusNotSatisfied);
        select_lds(&mut card);
        let mut sm = bac(&mut card, MRZ).unwrap();
        let r = send_sm(&mut card, &mut sm, &aa::internal_authenticate(&challenge));
        assert_eq!(r.status(), Status::Success);
        let spki = key.public_key_der().unwrap();
        aa::verify(&spki, &challenge, r.data(), None).unwrap();
        assert!(aa::verify(&spki, &[8u8; 8], r.data(), None).is_err());
    }
}
