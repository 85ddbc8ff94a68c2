//! The reader list with what is in each reader.

use eid_card::detect::{Detected, Detector};
use eid_card::pcsc_transport::{PcscContext, ReaderInfo};
use eid_card::{Error, Session};

use crate::report::ErrorReport;

/// One reader as `eid-agent readers` shows it.
#[derive(Debug, serde::Serialize)]
pub struct ReaderReport {
    #[serde(flatten)]
    pub reader: ReaderInfo,
    /// What the card is, when there is one and it could be recognised.
    pub card: Option<Detected>,
    /// Why the card could not be recognised (busy, unsupported, removed meanwhile...).
    pub card_error: Option<ErrorReport>,
}

/// Lists the readers and recognises each card present.
pub fn list(context: &PcscContext, detector: &Detector) -> Result<Vec<ReaderReport>, Error> {
    let readers = context.readers()?;
    Ok(readers
        .into_iter()
        .map(|reader| {
            let (card, card_error) = if reader.card_present {
                match identify(context, detector, &reader.name) {
                    Ok(found) => (Some(found), None),
                    Err(e) => (None, Some(ErrorReport::new(&e))),
                }
            } else {
                (None, None)
            };
            ReaderReport {
                reader,
                card,
                card_error,
            }
        })
        .collect())
}

/// Connects to the card in `reader` and recognises it.
pub fn identify(
    context: &PcscContext,
    detector: &Detector,
    reader: &str,
) -> Result<Detected, Error> {
    let mut transport = context.connect(reader)?;
    let mut session = Session::new(&mut transport);
    let found = detector.detect(&mut session);
    let _ = transport.disconnect();
    found
}

/// Human-readable listing.
pub fn print_text(reports: &[ReaderReport]) {
    if reports.is_empty() {
        println!("No smart card reader is connected.");
        return;
    }
    for r in reports {
        println!("{}", r.reader.name);
        if !r.reader.card_present {
            println!("  no card");
            continue;
        }
        println!("  ATR  {}", eid_card::hex(&r.reader.atr));
        match (&r.card, &r.card_error) {
            (Some(d), _) => println!("  card {} ({})", d.kind.name, d.kind.id),
            (None, Some(e)) => println!("  card not recognised: {} [{}]", e.message, e.code),
            (None, None) => {}
        }
    }
}
