//! Card detection: which card application can talk to the card in the reader.
//!
//! Card applications register a [`CardKind`] with ATR patterns and application identifiers to
//! probe. [`Detector::detect`] first matches the ATR (free: no APDU), then probes the registered
//! AIDs in registration order with `SELECT by DF name, no response data`, inside one transaction.
//! As the Citizen Card middleware does, `9000` and `6982` (present but protected) both count as
//! "present"; anything else as "absent".

use eid_protocols::Status;
use eid_protocols::atr::AtrPattern;
use eid_protocols::commands::{self, FileReturn, Select};

use crate::{Error, Session};

/// A kind of card, as a card application names it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, serde::Serialize)]
pub struct CardKind {
    /// Stable identifier (`"pteid-cc1"`, `"emrtd"`...).
    pub id: &'static str,
    /// What the user is told.
    pub name: &'static str,
}

/// How a card was recognised.
#[derive(Clone, PartialEq, Eq, Debug, serde::Serialize)]
#[serde(tag = "by", rename_all = "kebab-case")]
pub enum Evidence {
    Atr,
    Aid {
        #[serde(serialize_with = "crate::hex_serde::upper")]
        aid: Vec<u8>,
    },
}

/// The result of detection.
#[derive(Clone, PartialEq, Eq, Debug, serde::Serialize)]
pub struct Detected {
    pub kind: CardKind,
    pub evidence: Evidence,
}

/// One registration: a kind and how to recognise it.
#[derive(Clone, Debug)]
pub struct Rule {
    pub kind: CardKind,
    pub atrs: Vec<AtrPattern>,
    pub aids: Vec<Vec<u8>>,
}

/// The registry card applications register into.
#[derive(Clone, Debug, Default)]
pub struct Detector {
    rules: Vec<Rule>,
}

/// The plain ISO 7816 test card of `eid-hardware-mocks` (profile `iso7816-test`): its
/// application identifier is `F0` followed by "EID-TEST".
pub const TEST_CARD: CardKind = CardKind {
    id: "iso7816-test",
    name: "ISO 7816 test card",
};
/// AID of the test card's application.
pub const TEST_CARD_AID: &[u8] = b"\xF0EID-TEST";

impl Detector {
    /// An empty registry.
    pub fn new() -> Self {
        Detector::default()
    }

    /// The registry with every card this crate knows.
    pub fn with_known_cards() -> Self {
        let mut d = Detector::new();
        d.register(Rule {
            kind: TEST_CARD,
            atrs: Vec::new(),
            aids: vec![TEST_CARD_AID.to_vec()],
        });
        // The Citizen Card before the eMRTD rule: a CC2 also holds an LDS application.
        for rule in crate::pteid::detection_rules()
            .into_iter()
            .chain(crate::emrtd::detection_rules())
        {
            d.register(rule);
        }
        d
    }

    pub fn register(&mut self, rule: Rule) {
        self.rules.push(rule);
    }

    /// Matches the ATR only; no APDU is sent.
    pub fn detect_by_atr(&self, atr: &[u8]) -> Option<Detected> {
        self.rules
            .iter()
            .find(|r| r.atrs.iter().any(|p| p.matches(atr)))
            .map(|r| Detected {
                kind: r.kind,
                evidence: Evidence::Atr,
            })
    }

    /// Recognises the card in `session`: ATR first, then AID probes.
    /// [`Error::UnsupportedCard`] when nothing matches.
    pub fn detect(&self, session: &mut Session<'_>) -> Result<Detected, Error> {
        let atr = session.transport().atr().to_vec();
        if let Some(found) = self.detect_by_atr(&atr) {
            return Ok(found);
        }
        let found = session.in_transaction(|s| {
            for rule in &self.rules {
                for aid in &rule.aids {
                    let response =
                        s.transmit(&commands::select(Select::DfName(aid), FileReturn::None))?;
                    if matches!(
                        response.status(),
                        Status::Success | Status::SecurityStatusNotSatisfied
                    ) {
                        return Ok(Some(Detected {
                            kind: rule.kind,
                            evidence: Evidence::Aid { aid: aid.clone() },
                        }));
                    }
                }
            }
            Ok(None)
        })?;
        found.ok_or_else(|| Error::UnsupportedCard {
            atr: crate::hex(&atr),
        })
    }
}
