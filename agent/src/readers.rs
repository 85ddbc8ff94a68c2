//! The reader list with what is in each reader: PC/SC readers, then NFC readers (libnfc's USB
//! scan plus the serial devices named in agent.toml `nfc_devices` and `EID_NFC_DEVICES`). A
//! device pcscd serves is only ever listed as a PC/SC reader (see `eid_card::nfc`). The two
//! lists are independent: NFC readers are listed when pcscd is not running.

use eid_card::detect::{Detected, Detector};
use eid_card::nfc::{NfcContext, NfcReader};
use eid_card::pcsc_transport::{PcscContext, ReaderInfo};
use eid_card::{Error, ReaderCapabilities, Session, Transport};

use crate::report::ErrorReport;

/// One reader as `eid-agent readers` shows it.
#[derive(Debug, serde::Serialize)]
pub struct ReaderReport {
    #[serde(flatten)]
    pub reader: ReaderInfo,
    /// `pcsc` or `nfc`.
    pub transport: &'static str,
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
                    Ok((found, _)) => (Some(found), None),
                    Err(e) => (None, Some(ErrorReport::new(&e))),
                }
            } else {
                (None, None)
            };
            ReaderReport {
                reader,
                transport: "pcsc",
                card,
                card_error,
            }
        })
        .collect())
}

/// Lists the NFC readers: libnfc's scan and `extra` connection strings. Each is opened, polled
/// once and closed; one that cannot be opened (in use by a running agent, unplugged) is listed
/// with the reason. `Ok(empty)` when libnfc finds nothing.
pub fn list_nfc(detector: &Detector, extra: &[String]) -> Result<Vec<ReaderReport>, Error> {
    let mut context = NfcContext::new()?;
    let devices = context.list(extra)?;
    Ok(devices
        .into_iter()
        .map(|device| {
            let mut report = ReaderReport {
                reader: ReaderInfo {
                    name: device.name.clone(),
                    card_present: false,
                    exclusive: false,
                    atr: Vec::new(),
                },
                transport: "nfc",
                card: None,
                card_error: None,
            };
            match context.open(&device.connstring) {
                Ok(reader) => match identify_nfc(&reader, detector) {
                    Ok(None) => {}
                    Ok(Some((atr, found))) => {
                        report.reader.card_present = true;
                        report.reader.atr = atr;
                        match found {
                            Ok(found) => report.card = Some(found),
                            Err(e) => report.card_error = Some(ErrorReport::new(&e)),
                        }
                    }
                    Err(e) => report.card_error = Some(ErrorReport::new(&e)),
                },
                Err(e) => {
                    report.reader.exclusive = matches!(e, Error::ReaderInUse(_));
                    report.card_error = Some(ErrorReport::new(&e));
                }
            }
            report
        })
        .collect())
}

/// A card found in an NFC reader's field: its ATR, and what it is.
type FoundCard = (Vec<u8>, Result<Detected, Error>);

/// The card in an NFC reader's field, if any.
fn identify_nfc(reader: &NfcReader, detector: &Detector) -> Result<Option<FoundCard>, Error> {
    let mut transport = match reader.connect() {
        Ok(t) => t,
        Err(Error::NoCard(_)) => return Ok(None),
        Err(e) => return Err(e),
    };
    let atr = transport.atr().to_vec();
    let mut session = Session::new(&mut transport);
    let found = detector.detect(&mut session);
    Ok(Some((atr, found)))
}

/// Connects to the card in `reader` and recognises it; also what the reader carries (keypad,
/// interface), learned on the same connection.
pub fn identify(
    context: &PcscContext,
    detector: &Detector,
    reader: &str,
) -> Result<(Detected, ReaderCapabilities), Error> {
    let mut transport = context.connect(reader)?;
    let capabilities = transport.capabilities();
    let mut session = Session::new(&mut transport);
    let found = detector.detect(&mut session);
    let _ = transport.disconnect();
    Ok((found?, capabilities))
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
