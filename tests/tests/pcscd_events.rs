//! What only the real PC/SC stack can show: the vpcd readers as pcscd lists them, card insertion
//! and removal as hot-plug events from blocking status-change waits, and cancellation of a wait.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use eid_card::Error;
use eid_card::monitor::{Event, Monitor};
use eid_card::pcsc_transport::PcscContext;
use eid_hardware_mocks::profiles::iso7816_test::{self as test_card, Variant};
use eid_hardware_mocks::vpcd::VpcdCard;
use eid_tests::{Slot, pcscd_available};

#[test]
fn virtual_readers_are_listed() {
    if !pcscd_available() {
        return;
    }
    let context = PcscContext::establish().unwrap();
    let names = context.reader_names().unwrap();
    assert!(names.contains(&"Virtual PCD 00 00".to_owned()), "{names:?}");
    assert!(names.contains(&"Virtual PCD 00 01".to_owned()), "{names:?}");
}

/// The next batch of events that concern `reader`: tests in other slots move their cards at the
/// same time, and the monitor reports every reader. Each wait is bounded (5 s).
fn next_events_for(monitor: &mut Monitor, reader: &str) -> Vec<Event> {
    loop {
        let events: Vec<Event> = monitor
            .wait(Some(Duration::from_secs(5)))
            .expect("an event within 5 s")
            .into_iter()
            .filter(|e| concerns(e, reader))
            .collect();
        if !events.is_empty() {
            return events;
        }
    }
}

#[test]
fn attaching_and_closing_the_virtual_card_raise_insert_and_remove_events() {
    if !pcscd_available() {
        return;
    }
    let (slot, context) = Slot::acquire_empty();
    let reader = slot.reader_name();

    let mut monitor = Monitor::new(&context).unwrap();
    let initial = monitor.initial_events().unwrap();
    assert!(
        initial.contains(&Event::ReaderAdded {
            reader: reader.clone()
        }),
        "{initial:?}"
    );
    assert!(
        !initial
            .iter()
            .any(|e| matches!(e, Event::CardInserted { reader: r, .. } if *r == reader))
    );

    let card = test_card::card(Variant::Full).unwrap();
    let atr = card.atr().to_vec();
    let mut handle = VpcdCard::attach(slot.addr(), card).unwrap();
    let events = next_events_for(&mut monitor, &reader);
    assert_eq!(
        events,
        vec![Event::CardInserted {
            reader: reader.clone(),
            atr
        }]
    );

    handle.remove();
    let events = next_events_for(&mut monitor, &reader);
    assert_eq!(
        events,
        vec![Event::CardRemoved {
            reader: reader.clone()
        }]
    );
}

fn concerns(event: &Event, reader: &str) -> bool {
    match event {
        Event::ReaderAdded { reader: r }
        | Event::ReaderRemoved { reader: r }
        | Event::CardInserted { reader: r, .. }
        | Event::CardRemoved { reader: r } => r == reader,
    }
}

#[test]
fn a_blocked_wait_is_cancelled_from_another_thread() {
    if !pcscd_available() {
        return;
    }
    let context = PcscContext::establish().unwrap();
    let mut monitor = Monitor::new(&context).unwrap();
    monitor.initial_events().unwrap();
    let canceller = monitor.canceller();
    let (tx, rx) = mpsc::channel();
    let waiter = thread::spawn(move || {
        // No timeout: only the cancellation can end this wait (unless a card moves meanwhile).
        loop {
            match monitor.wait(None) {
                Ok(_) => continue,
                other => {
                    tx.send(other).unwrap();
                    return;
                }
            }
        }
    });
    thread::sleep(Duration::from_millis(200));
    canceller.cancel().unwrap();
    let result = rx
        .recv_timeout(Duration::from_secs(5))
        .expect("the wait ended");
    assert!(matches!(result, Err(Error::Cancelled)), "{result:?}");
    waiter.join().unwrap();
}

#[test]
fn a_card_held_exclusively_by_another_application_is_busy_until_released() {
    if !pcscd_available() {
        return;
    }
    let (slot, context) = Slot::acquire_empty();
    let reader = slot.reader_name();
    let _card = VpcdCard::attach(slot.addr(), test_card::card(Variant::Full).unwrap()).unwrap();
    eid_tests::wait_for_card(&context, &reader, true);

    // Another program takes the card for itself.
    let other = pcsc::Context::establish(pcsc::Scope::User).unwrap();
    let name = std::ffi::CString::new(reader.clone()).unwrap();
    let held = other
        .connect(&name, pcsc::ShareMode::Exclusive, pcsc::Protocols::ANY)
        .unwrap();
    let err = context.connect(&reader).unwrap_err();
    assert!(matches!(err, Error::CardBusy), "{err:?}");
    assert!(err.is_retryable());
    assert_eq!(err.code(), "card-busy");

    // Once it lets go, the card is ours.
    held.disconnect(pcsc::Disposition::LeaveCard)
        .map_err(|(_, e)| e)
        .unwrap();
    let mut transport = context.connect(&reader).unwrap();
    let data = eid_card::Session::new(&mut transport)
        .read_file(&[test_card::APP_FID, test_card::EF_SMALL])
        .unwrap();
    assert_eq!(data, test_card::test_file(test_card::EF_SMALL).unwrap());
}
