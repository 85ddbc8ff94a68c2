//! Glue between the sans-IO protocols of `eid_protocols::{pace, ca, aa}` and the transports:
//! PACE (ICAO 9303-11 §4.4), Chip Authentication (§6.2), Active Authentication (§6.1).

use eid_protocols::aa::{self, AaHash};
use eid_protocols::ca::{CaProtocol, CaTerminal};
use eid_protocols::lds::{Dg15, LdsError, SecurityInfo, SecurityInfos};
use eid_protocols::pa::{Check, CscaStore, SignedData};
use eid_protocols::pace::{
    CamEvidence, PaceConfig, PaceError, PacePassword, PaceProtocol, PaceTerminal,
    SUPPORTED_PARAMETER_IDS,
};
use eid_protocols::sm::{Cipher, OsRandom, SecureChannel};
use eid_protocols::{Command, Response};

use super::access::{AccessKey, is_wrong_key_status};
use super::report::AccessMethod;
use crate::secure::SecureTransport;
use crate::session::Session;
use crate::{Error, Reborrow, Transport};

/// DG14's SecurityInfos.
pub(super) fn parse_dg14(file: &[u8]) -> Result<SecurityInfos, LdsError> {
    SecurityInfos::parse_dg14(file)
}

/// Whether DG14 offers Chip Authentication (a ChipAuthenticationPublicKeyInfo).
pub(super) fn offers_ca(infos: &SecurityInfos) -> bool {
    infos
        .iter()
        .any(|i| matches!(i, SecurityInfo::ChipAuthenticationPublicKey { .. }))
}

/// A fresh random Active Authentication challenge.
pub(super) fn random_challenge() -> Result<[u8; 8], Error> {
    aa::challenge(&mut OsRandom)
        .map_err(|_| Error::AccessFailed("the random generator failed".into()))
}

/// Strength rank of a cipher (larger is better).
fn rank(cipher: Cipher) -> u8 {
    match cipher {
        Cipher::Tdes => 0,
        Cipher::Aes128 => 1,
        Cipher::Aes192 => 2,
        Cipher::Aes256 => 3,
    }
}

/// The best PACE suite EF.CardAccess offers that we support: strongest cipher, then generic
/// mapping before chip authentication mapping (a chip offering both is then authenticated with
/// DG14's Chip Authentication, which needs no EF.CardSecurity read), then parameter id.
pub(crate) fn best_pace(infos: &SecurityInfos) -> Option<(PaceProtocol, u8)> {
    infos
        .iter()
        .filter_map(|i| match i {
            SecurityInfo::Pace {
                protocol,
                version: 2,
                parameter_id: Some(id),
            } => {
                let id = u8::try_from(*id).ok()?;
                let p = PaceProtocol::from_oid_bytes(protocol.as_bytes())?;
                SUPPORTED_PARAMETER_IDS.contains(&id).then_some((p, id))
            }
            _ => None,
        })
        .max_by_key(|(p, id)| (rank(p.cipher()), !p.is_cam(), *id))
}

/// What PACE established.
pub(crate) struct PaceResult {
    pub channel: SecureChannel,
    pub method: AccessMethod,
    /// PACE-CAM: the chip's proof, to check against the key of a passively authenticated
    /// EF.CardSecurity ([`verify_cam`]).
    pub cam: Option<CamEvidence>,
}

/// Why PACE did not give a channel.
#[derive(Debug)]
pub(crate) enum PaceFailure {
    /// PACE could not be started (no suite we support, MSE:Set AT refused): a BAC fallback is
    /// legitimate, and reported.
    Unavailable(String),
    /// PACE ran and failed (wrong password, a token or point that does not verify, a missing
    /// PACE-CAM proof, an I/O error): never a reason to fall back to the weaker BAC, which an
    /// attacker disturbing the exchange would otherwise force (ICAO 9303-11 §4.2).
    Failed(Error),
}

impl From<Error> for PaceFailure {
    fn from(e: Error) -> Self {
        PaceFailure::Failed(e)
    }
}

impl From<PaceFailure> for Error {
    fn from(f: PaceFailure) -> Self {
        match f {
            PaceFailure::Unavailable(why) => Error::AccessFailed(why),
            PaceFailure::Failed(e) => e,
        }
    }
}

/// PACE with the best suite EF.CardAccess offers (ICAO 9303-11 §4.4.4). A chip refusing our
/// authentication token (63xx, 6982) means a wrong password: [`Error::AccessDenied`].
pub(crate) fn run_pace(
    transport: &mut dyn Transport,
    key: &AccessKey,
    infos: &SecurityInfos,
) -> Result<PaceResult, PaceFailure> {
    let (protocol, parameter_id) = best_pace(infos).ok_or_else(|| {
        PaceFailure::Unavailable("EF.CardAccess offers no PACE suite this software supports".into())
    })?;
    let password = match key {
        AccessKey::Can(can) => PacePassword::can(can),
        AccessKey::Mrz(info) => PacePassword::mrz(info.as_bytes()).map_err(pace_error)?,
    };
    let config = PaceConfig {
        protocol,
        parameter_id,
        send_parameter_id: true,
    };
    let mut pace = PaceTerminal::new(config, &password).map_err(pace_error)?;
    let mut session = Session::new(transport);
    let mse = pace.mse_set_at();
    let answer = session.transmit(&mse)?;
    if !answer.is_success() {
        return Err(PaceFailure::Unavailable(format!(
            "PACE: the chip refused MSE:Set AT ({:04X})",
            answer.status().to_u16()
        )));
    }
    // GA1-GA3 carry CLA 10 themselves (one chain): sent as they are.
    let r = session.transmit(&pace.general_authenticate_nonce())?;
    let c = pace.process_nonce(&r, &mut OsRandom).map_err(pace_error)?;
    let r = session.transmit(&c)?;
    let c = pace
        .process_mapping(&r, &mut OsRandom)
        .map_err(pace_error)?;
    let r = session.transmit(&c)?;
    let c = pace.process_key_agreement(&r).map_err(pace_error)?;
    let r = session.transmit(&c)?;
    let outcome = pace.finish(&r).map_err(pace_error)?;
    if protocol.is_cam() && outcome.chip_authentication.is_none() {
        return Err(PaceFailure::Failed(Error::AccessFailed(
            "PACE-CAM: the chip sent no chip authentication data".into(),
        )));
    }
    Ok(PaceResult {
        channel: outcome.channel,
        method: AccessMethod::Pace {
            oid: protocol.dotted(),
            parameter_id: Some(u64::from(parameter_id)),
            password: if key.is_can() { "can" } else { "mrz" },
            chip_authenticated: false,
        },
        cam: outcome.chip_authentication,
    })
}

/// eContentType of EF.CardSecurity: id-SecurityObject (BSI TR-03110-3 A.1.2.5).
const SECURITY_OBJECT_OID: &str = "0.4.0.127.0.7.3.2.1";

/// Completes PACE-CAM (ICAO 9303-11 §4.4.3.5.2, §6.2.3.1): EF.CardSecurity must be signed by a
/// Document Signer that chains to a trusted CSCA, and its ChipAuthenticationPublicKeyInfo must
/// be the key `PK_IC` with `CA_IC · PK_IC = PK_Map_IC`. Passed only when all of that holds;
/// not performed without a CSCA store (the key cannot then be trusted).
pub(super) fn verify_cam(
    evidence: &CamEvidence,
    card_security: Option<&[u8]>,
    csca: Option<&CscaStore>,
) -> Check {
    let Some(file) = card_security else {
        return Check::failed("PACE-CAM: the chip has no EF.CardSecurity");
    };
    let signed = match SignedData::parse(file) {
        Ok(s) => s,
        Err(e) => return Check::failed(format!("PACE-CAM: EF.CardSecurity: {e}")),
    };
    if signed.content_type.dotted() != SECURITY_OBJECT_OID {
        return Check::failed(format!(
            "PACE-CAM: EF.CardSecurity content type is {}, not id-SecurityObject",
            signed.content_type
        ));
    }
    let signer = match signed.verify_signature() {
        Ok(cert) => cert,
        Err(e) => {
            return Check::failed(format!("PACE-CAM: EF.CardSecurity signature: {e}"));
        }
    };
    let Some(store) = csca else {
        return Check::not_performed(
            "PACE-CAM: no CSCA trust store to authenticate EF.CardSecurity",
        );
    };
    let extra: Vec<openssl::x509::X509> = signed
        .certificates
        .iter()
        .filter_map(|d| openssl::x509::X509::from_der(d).ok())
        .collect();
    match store.verify_chain(&signer, &extra, time::OffsetDateTime::now_utc()) {
        Check::Passed => {}
        Check::Failed { reason } => {
            return Check::failed(format!(
                "PACE-CAM: EF.CardSecurity signer certificate: {reason}"
            ));
        }
        Check::NotPerformed { reason } => {
            return Check::not_performed(format!(
                "PACE-CAM: EF.CardSecurity signer certificate: {reason}"
            ));
        }
    }
    let infos = match SecurityInfos::parse(&signed.content) {
        Ok(i) => i,
        Err(e) => return Check::failed(format!("PACE-CAM: EF.CardSecurity content: {e}")),
    };
    let mut keys = 0usize;
    for info in infos.iter() {
        let SecurityInfo::ChipAuthenticationPublicKey {
            subject_public_key_info,
            ..
        } = info
        else {
            continue;
        };
        keys += 1;
        if let Some(point) = uncompressed_point(subject_public_key_info)
            && evidence.verify(&point).is_ok()
        {
            return Check::Passed;
        }
    }
    if keys == 0 {
        Check::failed("PACE-CAM: EF.CardSecurity holds no chip authentication public key")
    } else {
        Check::failed(
            "PACE-CAM: the chip's proof does not match the key in EF.CardSecurity (CA_IC · PK_IC ≠ PK_Map_IC)",
        )
    }
}

/// The uncompressed point of an EC SubjectPublicKeyInfo.
fn uncompressed_point(spki: &[u8]) -> Option<Vec<u8>> {
    let key = openssl::pkey::PKey::public_key_from_der(spki).ok()?;
    let ec = key.ec_key().ok()?;
    let mut ctx = openssl::bn::BigNumContext::new().ok()?;
    ec.public_key()
        .to_bytes(
            ec.group(),
            openssl::ec::PointConversionForm::UNCOMPRESSED,
            &mut ctx,
        )
        .ok()
}

fn pace_error(e: PaceError) -> Error {
    match e {
        PaceError::Rejected(status) if is_wrong_key_status(status) => Error::AccessDenied,
        other => Error::AccessFailed(format!("PACE: {other}")),
    }
}

/// Minimal big-endian bytes of a key identifier.
fn key_id_bytes(id: u64) -> Vec<u8> {
    let bytes = id.to_be_bytes();
    let first = bytes
        .iter()
        .position(|&b| b != 0)
        .unwrap_or(bytes.len() - 1);
    bytes.get(first..).map(<[u8]>::to_vec).unwrap_or_default()
}

/// Chip Authentication over the current channel (ICAO 9303-11 §6.2.4); on success the channel's
/// keys are replaced. The check fails when the chip refuses; the channel is then closed, since
/// a chip that refused CA may have dropped the old keys too.
pub(crate) fn run_ca(
    sm: &mut SecureTransport<Reborrow<'_>>,
    dg14: &SecurityInfos,
) -> Result<Check, Error> {
    let Some((spki, key_id)) = dg14.iter().find_map(|i| match i {
        SecurityInfo::ChipAuthenticationPublicKey {
            subject_public_key_info,
            key_id,
            ..
        } => Some((subject_public_key_info.clone(), *key_id)),
        _ => None,
    }) else {
        return Ok(Check::not_performed(
            "DG14 offers no chip authentication key",
        ));
    };
    // ChipAuthenticationInfo with the same key id names the cipher; without one, 3DES
    // (ICAO 9303-11 §9.2.6).
    let protocol = dg14
        .iter()
        .find_map(|i| match i {
            SecurityInfo::ChipAuthentication {
                protocol,
                key_id: info_key,
                ..
            } if key_id.is_none() || *info_key == key_id => {
                CaProtocol::from_oid_bytes(protocol.as_bytes())
            }
            _ => None,
        })
        .unwrap_or(CaProtocol(Cipher::Tdes));
    let key_id = key_id.map(key_id_bytes);
    let ca = match CaTerminal::new(protocol, key_id.as_deref(), &spki, &mut OsRandom) {
        Ok(ca) => ca,
        Err(e) => return Ok(Check::failed(format!("DG14 chip authentication key: {e}"))),
    };
    let commands: Vec<Command> = match ca.commands() {
        Ok(c) => c,
        Err(e) => return Ok(Check::failed(e.to_string())),
    };
    let mut answers: Vec<Response> = Vec::with_capacity(commands.len());
    {
        let mut session = Session::new(&mut *sm);
        for command in &commands {
            let answer = session.transmit(command)?;
            let ok = answer.is_success();
            answers.push(answer);
            if !ok {
                break;
            }
        }
    }
    match ca.finish(&answers) {
        Ok(channel) => {
            sm.replace_channel(Box::new(channel))?;
            Ok(Check::Passed)
        }
        Err(e) => Ok(Check::failed(format!(
            "the chip refused chip authentication: {e}"
        ))),
    }
}

/// Verifies an Active Authentication signature with the DG15 key (ICAO 9303-11 §6.1), the hash
/// for ECDSA from DG14's ActiveAuthenticationInfo.
pub(super) fn verify_aa(
    dg15: &[u8],
    dg14: Option<&SecurityInfos>,
    challenge: &[u8; 8],
    signature: &[u8],
) -> Check {
    let key = match Dg15::parse(dg15) {
        Ok(k) => k,
        Err(e) => return Check::failed(format!("DG15: {e}")),
    };
    let ec_hash = dg14.and_then(|infos| {
        infos.iter().find_map(|i| match i {
            SecurityInfo::ActiveAuthentication {
                signature_algorithm,
                ..
            } => AaHash::from_signature_oid(&signature_algorithm.dotted()),
            _ => None,
        })
    });
    aa::verify(&key.subject_public_key_info, challenge, signature, ec_hash).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_ids_are_minimal_big_endian() {
        assert_eq!(key_id_bytes(0), vec![0]);
        assert_eq!(key_id_bytes(1), vec![1]);
        assert_eq!(key_id_bytes(0x0102), vec![1, 2]);
    }

    #[test]
    fn best_pace_prefers_strong_generic_mapping() {
        // ICAO 9303-11 Appendix G EF.CardAccess: ECDH-GM AES-128, brainpoolP256r1.
        let file = hex::decode("31143012060A04007F0007020204020202010202010D").unwrap();
        let infos = SecurityInfos::parse_card_access(&file).unwrap();
        let (p, id) = best_pace(&infos).unwrap();
        assert_eq!((p, id), (PaceProtocol::EcdhGm(Cipher::Aes128), 13));
    }
}
