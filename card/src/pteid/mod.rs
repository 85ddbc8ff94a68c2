//! The Portuguese Citizen Card application (pteid): CC1 (Gemalto IAS07) and CC2 (IAS v5) on the
//! contact interface.
//!
//! [`PteidCard`] drives the card over any [`Transport`] (PC/SC, an in-process virtual card, or a
//! secure-messaging transport for the contactless CC2): detection, the identity file and photo,
//! the CC1 address file, the certificates, the SOD check, the PINs and signatures.
//!
//! Card facts (AIDs, ATRs, file identifiers, layouts, APDUs) follow the public Citizen Card
//! middleware (autenticacao.gov, `CardLayerConst.h`, `CardPteidDef.h`) and OpenSC's
//! `pkcs15-pteid.c`, as summarised in `cards.md` §A.

pub mod address;
pub mod certs;
pub mod identity;
pub mod pin;
pub mod sign;
pub mod sod;

use eid_protocols::Status;
use eid_protocols::atr::AtrPattern;
use eid_protocols::commands::{self, FileReturn, Select};

use crate::detect::{CardKind, Detector, Rule};
use crate::session::LengthPolicy;
use crate::{Error, Session, Transport};

pub use address::Address;
pub use certs::{CardCertificate, CertKind, KeyInfo};
pub use identity::{CardDate, Identity, Photo};
pub use pin::{Pin, PinRef, PinStatus, Puk};
pub use sign::{HashAlg, KeyRef, RsaPadding, Signature};
pub use sod::SodVerification;

/// The Citizen Card generation.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Generation {
    /// Gemalto GemSafe / IAS07, RSA keys ([AG] `IAS07`).
    Cc1,
    /// IAS v5, ECC P-256, dual interface, issued from 2024-06-11 ([AG] `IAS5`).
    Cc2,
}

impl Generation {
    /// The detection kind for this generation.
    pub fn kind(self) -> CardKind {
        match self {
            Generation::Cc1 => CC1,
            Generation::Cc2 => CC2,
        }
    }
}

/// Card kind of the first-generation Citizen Card.
pub const CC1: CardKind = CardKind {
    id: "pteid-cc1",
    name: "Portuguese Citizen Card (CC1)",
};
/// Card kind of the second-generation Citizen Card.
pub const CC2: CardKind = CardKind {
    id: "pteid-cc2",
    name: "Portuguese Citizen Card (CC2)",
};

/// CC1 IAS applet (cards.md §A1).
pub const AID_CC1: &[u8] = &[0x60, 0x46, 0x32, 0xFF, 0x00, 0x00, 0x02];
/// CC2 eID application (keys, certificates, PINs).
pub const AID_CC2_EID: &[u8] = &[0x60, 0x46, 0x32, 0xFF, 0x00, 0x00, 0x04];
/// CC2 national-data application (ID, photo, SOD).
pub const AID_CC2_NATIONAL: &[u8] = &[0x60, 0x46, 0x32, 0xFF, 0x00, 0x00, 0x05];

/// CC1 ATRs (cards.md §A1): T=0 with three chip variants (with and without the trailing
/// `90 00` status in the historical bytes), and the two T=1 ATRs.
const CC1_ATRS: &[&[u8]] = &[
    &[
        0x3B, 0x7D, 0x95, 0x00, 0x00, 0x80, 0x31, 0x80, 0x65, 0xB0, 0x83, 0x11, 0xC0, 0xA9, 0x83,
        0x00, 0x90, 0x00,
    ],
    &[
        0x3B, 0x7D, 0x95, 0x00, 0x00, 0x80, 0x31, 0x80, 0x65, 0xB0, 0x83, 0x11, 0x00, 0xC8, 0x83,
        0x00, 0x90, 0x00,
    ],
    &[
        0x3B, 0x7D, 0x95, 0x00, 0x00, 0x80, 0x31, 0x80, 0x65, 0xB0, 0x83, 0x11, 0x00, 0xA9, 0x83,
        0x00, 0x90, 0x00,
    ],
    &[
        0x3B, 0x7D, 0x95, 0x00, 0x00, 0x80, 0x31, 0x80, 0x65, 0xB0, 0x83, 0x11, 0xC0, 0xA9, 0x83,
        0x00,
    ],
    &[
        0x3B, 0x7D, 0x95, 0x00, 0x00, 0x80, 0x31, 0x80, 0x65, 0xB0, 0x83, 0x11, 0x00, 0xC8, 0x83,
        0x00,
    ],
    &[
        0x3B, 0x7D, 0x95, 0x00, 0x00, 0x80, 0x31, 0x80, 0x65, 0xB0, 0x83, 0x11, 0x00, 0xA9, 0x83,
        0x00,
    ],
    &[
        0x3B, 0xFF, 0x96, 0x00, 0x00, 0x81, 0x31, 0x80, 0x43, 0x80, 0x31, 0x80, 0x65, 0xB0, 0x85,
        0x03, 0x00, 0xEF, 0x12, 0x0F, 0xFF, 0x82, 0x90, 0x00, 0x67,
    ],
    &[
        0x3B, 0xFF, 0x96, 0x00, 0x00, 0x81, 0x31, 0xFE, 0x43, 0x80, 0x31, 0x80, 0x65, 0xB0, 0x85,
        0x04, 0x01, 0x20, 0x12, 0x0F, 0xFF, 0x82, 0x90, 0x00, 0xD0,
    ],
];

/// CC2 contact ATR (cards.md §A1).
pub const CC2_CONTACT_ATR: &[u8] = &[
    0x3B, 0xFF, 0x96, 0x00, 0x00, 0x81, 0x31, 0xFE, 0x43, 0x80, 0x31, 0x80, 0x65, 0xB0, 0x85, 0x05,
    0x00, 0x11, 0x12, 0x0F, 0xFF, 0x82, 0x90, 0x00, 0xE1,
];
/// CC2 contactless ATR (as PC/SC builds it from the ATS); the contactless path runs PACE first.
pub const CC2_CONTACTLESS_ATR: &[u8] = &[
    0x3B, 0x8F, 0x80, 0x01, 0x80, 0x31, 0x80, 0x65, 0xB0, 0x85, 0x05, 0x00, 0x11, 0x12, 0x0F, 0xFF,
    0x82, 0x90, 0x00, 0x8B,
];

/// The detection rules for [`crate::detect::Detector`]: CC1 first (ATRs, then its applet AID,
/// as the official middleware probes `...02` before `...05`), then CC2 (contact ATR, then the
/// national-data and eID application AIDs). A SELECT answering 9000 or 6982 means present.
pub fn detection_rules() -> Vec<Rule> {
    vec![
        Rule {
            kind: CC1,
            atrs: CC1_ATRS.iter().map(|a| AtrPattern::exact(a)).collect(),
            aids: vec![AID_CC1.to_vec()],
        },
        Rule {
            kind: CC2,
            // Contactless too: the card is then used with `--can` (PACE), not probed by AID
            // (its applications answer 6982 before PACE).
            atrs: vec![
                AtrPattern::exact(CC2_CONTACT_ATR),
                AtrPattern::exact(CC2_CONTACTLESS_ATR),
            ],
            aids: vec![AID_CC2_NATIONAL.to_vec(), AID_CC2_EID.to_vec()],
        },
    ]
}

/// Which application is selected on the card, so that a file read does not reselect it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum App {
    Cc1,
    Cc2Eid,
    Cc2National,
}

impl App {
    fn aid(self) -> &'static [u8] {
        match self {
            App::Cc1 => AID_CC1,
            App::Cc2Eid => AID_CC2_EID,
            App::Cc2National => AID_CC2_NATIONAL,
        }
    }
}

/// A file of the card application: which application holds it and how to select it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct CardFile {
    app: App,
    /// Path from the MF without 3F00 (SELECT P1=08), or one FID (SELECT P1=02) when `by_fid`.
    path: &'static [u16],
    by_fid: bool,
    /// For messages.
    pub(crate) name: &'static str,
}

impl CardFile {
    const fn cc1(path: &'static [u16], name: &'static str) -> Self {
        CardFile {
            app: App::Cc1,
            path,
            by_fid: false,
            name,
        }
    }
    const fn cc2_national(fid: &'static [u16], name: &'static str) -> Self {
        CardFile {
            app: App::Cc2National,
            path: fid,
            by_fid: true,
            name,
        }
    }
    const fn cc2_eid(path: &'static [u16], name: &'static str) -> Self {
        CardFile {
            app: App::Cc2Eid,
            path,
            by_fid: false,
            name,
        }
    }
}

/// CC1 files (cards.md §A2).
pub(crate) mod files {
    use super::CardFile;
    pub(crate) const CC1_ID: CardFile = CardFile::cc1(&[0x5F00, 0xEF02], "ID file");
    pub(crate) const CC1_ADDRESS: CardFile = CardFile::cc1(&[0x5F00, 0xEF05], "address file");
    pub(crate) const CC1_SOD: CardFile = CardFile::cc1(&[0x5F00, 0xEF06], "SOD");
    pub(crate) const CC1_SIGN_CERT: CardFile =
        CardFile::cc1(&[0x5F00, 0xEF08], "signature certificate");
    pub(crate) const CC1_AUTH_CERT: CardFile =
        CardFile::cc1(&[0x5F00, 0xEF09], "authentication certificate");
    pub(crate) const CC1_SIGN_SUBCA: CardFile =
        CardFile::cc1(&[0x5F00, 0xEF0F], "signature sub-CA certificate");
    pub(crate) const CC1_AUTH_SUBCA: CardFile =
        CardFile::cc1(&[0x5F00, 0xEF10], "authentication sub-CA certificate");
    pub(crate) const CC1_ROOT: CardFile = CardFile::cc1(&[0x5F00, 0xEF11], "root CA certificate");

    pub(crate) const CC2_MRZ: CardFile = CardFile::cc2_national(&[0x0101], "MRZ (DG1)");
    pub(crate) const CC2_PHOTO: CardFile = CardFile::cc2_national(&[0x0102], "photo (DG2)");
    pub(crate) const CC2_ID: CardFile = CardFile::cc2_national(&[0x010D], "ID file (DG13)");
    pub(crate) const CC2_DG14: CardFile =
        CardFile::cc2_national(&[0x010E], "security infos (DG14)");
    pub(crate) const CC2_DG15: CardFile = CardFile::cc2_national(&[0x010F], "AA key (DG15)");
    pub(crate) const CC2_SOD: CardFile = CardFile::cc2_national(&[0x011D], "SOD");
    pub(crate) const CC2_AUTH_CERT: CardFile =
        CardFile::cc2_eid(&[0x5F00, 0xEF02], "authentication certificate");
    pub(crate) const CC2_SIGN_CERT: CardFile =
        CardFile::cc2_eid(&[0x5F00, 0xEF04], "signature certificate");
    pub(crate) const CC2_SIGN_SUBCA: CardFile =
        CardFile::cc2_eid(&[0x5F00, 0xEF0F], "signature sub-CA certificate");
    pub(crate) const CC2_AUTH_SUBCA: CardFile =
        CardFile::cc2_eid(&[0x5F00, 0xEF10], "authentication sub-CA certificate");
    pub(crate) const CC2_ROOT: CardFile =
        CardFile::cc2_eid(&[0x5F00, 0xEF11], "root CA certificate");
}

/// An open Citizen Card: a session on a transport, the generation, and what is selected.
///
/// Every multi-APDU operation runs inside one transaction. PINs are never retried here.
pub struct PteidCard<'t> {
    session: Session<'t>,
    generation: Generation,
    selected: Option<App>,
}

impl std::fmt::Debug for PteidCard<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PteidCard")
            .field("generation", &self.generation)
            .field("read_chunk", &self.read_chunk())
            .finish_non_exhaustive()
    }
}

impl<'t> PteidCard<'t> {
    /// Opens the card in `transport`: the generation from the ATR, else by SELECT AID (CC1's
    /// applet, then CC2's national-data application; 9000 or 6982 mean present).
    /// [`Error::UnsupportedCard`] when it is no Citizen Card.
    pub fn open(transport: &'t mut dyn Transport) -> Result<Self, Error> {
        let mut session = Session::with_policy(transport, LengthPolicy::Auto);
        let mut detector = Detector::new();
        for rule in detection_rules() {
            detector.register(rule);
        }
        let found = detector.detect(&mut session)?;
        let generation = if found.kind == CC1 {
            Generation::Cc1
        } else {
            Generation::Cc2
        };
        // A probe by AID left an application selected, or not (6982): select again when needed.
        Ok(Self::from_session(session, generation))
    }

    /// Uses the card as the given generation without probing (the caller detected it, or a
    /// secure-messaging transport already selected the application).
    pub fn with_generation(transport: &'t mut dyn Transport, generation: Generation) -> Self {
        Self::from_session(
            Session::with_policy(transport, LengthPolicy::Auto),
            generation,
        )
    }

    fn from_session(session: Session<'t>, generation: Generation) -> Self {
        PteidCard {
            session,
            generation,
            selected: None,
        }
    }

    pub fn generation(&self) -> Generation {
        self.generation
    }

    /// The number of bytes one READ BINARY asks for at most: the session's Ne limit, which
    /// accounts for what the transport can carry back (223 bytes under secure messaging).
    pub fn read_chunk(&self) -> usize {
        self.session.link().max_ne
    }

    /// The session underneath (for callers that need the transport, e.g. reader capabilities).
    pub fn session(&mut self) -> &mut Session<'t> {
        &mut self.session
    }

    /// Selects `app` unless it is already selected.
    fn select_app(
        session: &mut Session<'_>,
        selected: &mut Option<App>,
        app: App,
    ) -> Result<(), Error> {
        if *selected == Some(app) {
            return Ok(());
        }
        *selected = None;
        // A contactless CC2 keeps its applications closed (6982) until PACE with the CAN.
        session
            .select(Select::DfName(app.aid()), FileReturn::None)
            .map_err(|e| match e {
                Error::Status {
                    status: Status::SecurityStatusNotSatisfied,
                    ..
                } => Error::AccessFailed(
                    "the card's applications open only after PACE with its CAN (a contactless \
                     Citizen Card): give the CAN, or use a contact reader"
                        .into(),
                ),
                other => other,
            })?;
        *selected = Some(app);
        Ok(())
    }

    /// Selects the application (if needed), then `file` with its FCI, then reads exactly the
    /// size the FCI gives in READ BINARY chunks of [`PteidCard::read_chunk`] bytes: the fewest
    /// APDUs the card and transport allow, never past the end. `Ok(None)` when the card has no
    /// such file (6A82).
    pub(crate) fn read_file(&mut self, file: CardFile) -> Result<Option<Vec<u8>>, Error> {
        let PteidCard {
            session, selected, ..
        } = self;
        let result = session.in_transaction(|s| {
            Self::select_app(s, selected, file.app)?;
            let target = if file.by_fid {
                Select::ChildEf(file.path.first().copied().unwrap_or(0))
            } else {
                Select::PathFromMf(file.path)
            };
            let response = s.transmit(&commands::select(target, FileReturn::Fci))?;
            match response.status() {
                Status::Success => {}
                Status::FileNotFound => return Ok(None),
                Status::SecurityStatusNotSatisfied => return Err(Error::PinNotVerified),
                status => {
                    return Err(Error::Status {
                        command: commands::select(target, FileReturn::Fci).header(),
                        status,
                    });
                }
            }
            let size = eid_protocols::fci::FileControl::parse(response.data())
                .ok()
                .and_then(|fc| fc.readable_size());
            s.read_binary(size).map(Some)
        });
        if result.is_err() {
            self.forget_selection();
        }
        result
    }

    /// Like [`PteidCard::read_file`], but a missing file is a typed error.
    pub(crate) fn read_required(&mut self, file: CardFile) -> Result<Vec<u8>, Error> {
        self.read_file(file)?.ok_or(Error::MalformedCardData {
            file: file.name,
            reason: "the card has no such file".to_owned(),
        })
    }

    /// Forgets which application is selected (after a reset or a failed operation).
    fn forget_selection(&mut self) {
        self.selected = None;
    }
}

/// Trims trailing NUL bytes (and the spaces some issuers pad with) and decodes the text.
/// The encoding is not confirmed (cards.md §A3): UTF-8 when valid, else Latin-1.
pub(crate) fn text(bytes: &[u8]) -> String {
    let end = bytes
        .iter()
        .rposition(|&b| b != 0)
        .map_or(0, |i| i.saturating_add(1));
    let trimmed = bytes.get(..end).unwrap_or(&[]);
    let s = match std::str::from_utf8(trimmed) {
        Ok(s) => s.to_owned(),
        Err(_) => trimmed.iter().map(|&b| char::from(b)).collect(),
    };
    s.trim_end().to_owned()
}

/// The bytes with trailing NULs removed (the form the CC1 SOD hashes, cards.md §A4).
pub(crate) fn trim_nul(bytes: &[u8]) -> &[u8] {
    let end = bytes
        .iter()
        .rposition(|&b| b != 0)
        .map_or(0, |i| i.saturating_add(1));
    bytes.get(..end).unwrap_or(&[])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_atrs_give_the_generation() {
        let d = {
            let mut d = crate::detect::Detector::new();
            for r in detection_rules() {
                d.register(r);
            }
            d
        };
        assert_eq!(d.detect_by_atr(CC1_ATRS[0]).unwrap().kind, CC1);
        assert_eq!(d.detect_by_atr(CC1_ATRS[6]).unwrap().kind, CC1);
        assert_eq!(d.detect_by_atr(CC2_CONTACT_ATR).unwrap().kind, CC2);
        assert_eq!(d.detect_by_atr(CC2_CONTACTLESS_ATR).unwrap().kind, CC2);
        assert!(d.detect_by_atr(&[0x3B, 0x00]).is_none());
    }

    #[test]
    fn text_trims_nuls_and_decodes_latin1() {
        assert_eq!(text(b"ABC\0\0\0"), "ABC");
        assert_eq!(text(&[0x4A, 0xC3, 0xA9, 0, 0]), "J\u{e9}");
        assert_eq!(text(&[0x4A, 0xE9, 0]), "J\u{e9}");
        assert_eq!(text(&[0, 0]), "");
        assert_eq!(trim_nul(&[1, 0, 2, 0, 0]), &[1, 0, 2]);
    }
}
