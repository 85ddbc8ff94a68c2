//! `pcscd`, `readers`, `cards`: the PC/SC service, as the agent itself reaches it.
//!
//! The installer's [`diagnose`] looks at the file system (binary, socket, process); that is what
//! names the fix, but a socket file can outlive its daemon and a daemon can hang. So the verdict
//! comes from a real `SCardEstablishContext` and reader listing, through the same
//! libpcsclite the agent uses (which honours `PCSCLITE_CSOCK_NAME`, as [`diagnose`] does), run
//! on a worker thread abandoned after the timeout.

use std::path::Path;
use std::time::Duration;

use eid_card::detect::Detector;
use eid_card::pcsc_transport::PcscContext;
use eid_installer::pcscd::{PcscdDiagnosis, diagnose};

use super::{Check, bounded, one_line};
use crate::readers::ReaderReport;

/// What the worker thread found.
enum Found {
    NoService(eid_card::Error),
    ListFailed(eid_card::Error),
    Readers(Vec<ReaderReport>),
}

/// The three checks.
pub(super) fn checks(limit: Duration) -> Vec<Check> {
    let diagnosis = diagnose();
    let found = bounded(limit, || {
        let context = match PcscContext::establish() {
            Ok(context) => context,
            Err(e) => return Found::NoService(e),
        };
        match crate::readers::list(&context, &Detector::with_known_cards()) {
            Ok(readers) => Found::Readers(readers),
            Err(e) => Found::ListFailed(e),
        }
    });
    let socket = diagnosis.socket.display().to_string();
    let skip = |why: &str| {
        vec![
            Check::skipped("readers", why.to_owned()),
            Check::skipped("cards", why.to_owned()),
        ]
    };
    let mut out = Vec::with_capacity(3);
    match found {
        None => {
            out.push(
                Check::failed(
                    "pcscd",
                    format!("pcscd does not answer within {} s", limit.as_secs()),
                )
                .detail(format!("socket {socket}; {}", facts(&diagnosis)))
                .remedy(restart_remedy()),
            );
            out.extend(skip("pcscd does not answer"));
        }
        Some(Found::NoService(e)) => {
            let summary = if diagnosis.binary.is_none() {
                "pcscd is not installed".to_owned()
            } else if !diagnosis.socket_exists {
                format!("pcscd is not running (no socket at {socket})")
            } else {
                format!("pcscd does not answer on {socket}")
            };
            out.push(
                Check::failed("pcscd", summary)
                    .detail(format!("{}; {e}", facts(&diagnosis)))
                    .remedy(remedy(&diagnosis)),
            );
            out.extend(skip("pcscd is not reachable"));
        }
        Some(Found::ListFailed(e)) => {
            out.push(Check::ok("pcscd", format!("pcscd answers on {socket}")));
            out.push(
                Check::failed("readers", "pcscd cannot list the readers")
                    .detail(e.to_string())
                    .remedy(restart_remedy()),
            );
            out.push(Check::skipped("cards", "the readers could not be listed"));
        }
        Some(Found::Readers(readers)) => {
            out.push(Check::ok("pcscd", format!("pcscd answers on {socket}")));
            out.extend(reader_checks(&readers));
        }
    }
    out
}

fn reader_checks(readers: &[ReaderReport]) -> Vec<Check> {
    if readers.is_empty() {
        return vec![
            Check::warning("readers", "no smart card reader is connected").remedy(
                "Connect the reader. If it is connected: check that `lsusb` lists it and that \
                 its driver is installed (sudo apt install libccid), then unplug and plug it again.",
            ),
            Check::skipped("cards", "no reader"),
        ];
    }
    let names: Vec<String> = readers.iter().map(|r| one_line(&r.reader.name)).collect();
    let readers_check = Check::ok(
        "readers",
        format!("{} reader(s): {}", readers.len(), names.join(", ")),
    );

    let mut recognised = Vec::new();
    let mut problems = Vec::new();
    let mut remedies = Vec::new();
    for r in readers.iter().filter(|r| r.reader.card_present) {
        let reader = one_line(&r.reader.name);
        match (&r.card, &r.card_error) {
            (Some(card), _) => {
                recognised.push(format!("{} ({}) in {reader}", card.kind.name, card.kind.id))
            }
            (None, Some(e)) => {
                problems.push(format!(
                    "card in {reader} not recognised: {} [{}]",
                    e.message, e.code
                ));
                remedies.push(e.remedy.clone());
            }
            (None, None) if r.reader.exclusive => {
                problems.push(format!(
                    "the card in {reader} is held exclusively by another program"
                ));
                remedies.push(
                    "Close the other program that uses the card (another smart card middleware \
                     or a browser's own smart card module), or remove and insert the card again."
                        .to_owned(),
                );
            }
            (None, None) => problems.push(format!("card in {reader}: not identified")),
        }
    }
    let cards_check = if !problems.is_empty() {
        let mut check = Check::warning("cards", problems.join("; "));
        if !recognised.is_empty() {
            check = check.detail(format!("recognised: {}", recognised.join("; ")));
        }
        remedies.dedup();
        if remedies.is_empty() {
            remedies.push("Remove the card and insert it again.".to_owned());
        }
        check.remedy(remedies.join(" "))
    } else if recognised.is_empty() {
        Check::ok("cards", "no card in any reader (insert the card to use it)")
    } else {
        Check::ok("cards", recognised.join("; "))
    };
    vec![readers_check, cards_check]
}

/// The diagnosis in words.
fn facts(d: &PcscdDiagnosis) -> String {
    format!(
        "binary {}, process {}, socket {}, socket activation {}",
        d.binary
            .as_deref()
            .map_or_else(|| "not installed".to_owned(), |b| b.display().to_string()),
        if d.running { "running" } else { "not running" },
        if d.socket_exists { "present" } else { "absent" },
        if d.socket_unit_enabled {
            "enabled"
        } else {
            "not enabled"
        },
    )
}

fn remedy(d: &PcscdDiagnosis) -> String {
    match d.remedy() {
        Some(fix) => fix.to_owned(),
        // Installed, socket present, yet no answer: a stale socket or a wedged daemon.
        None => restart_remedy(),
    }
}

fn restart_remedy() -> String {
    if Path::new("/run/systemd/system").exists() {
        "sudo systemctl restart pcscd.socket pcscd.service".to_owned()
    } else {
        "sudo pkill -x pcscd; sudo pcscd  (no systemd here: restart the daemon directly)".to_owned()
    }
}
