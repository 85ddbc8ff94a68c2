//! pcscd stops and comes back while the agent is connected and watching: every call in flight
//! ends in a typed error (no panic, no hang), and the monitor and new connections recover.
//!
//! This test kills and restarts the machine's pcscd, so it runs only when
//! `EID_TEST_RESTART_PCSCD=1` (set by scripts/test.sh, which started that pcscd itself).

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::{Duration, Instant};

use eid_card::monitor::{Event, Monitor};
use eid_card::pcsc_transport::PcscContext;
use eid_card::session::Session;
use eid_card::{Error, Transport};
use eid_hardware_mocks::profiles::iso7816_test::{self as test_card, Variant};
use eid_hardware_mocks::vpcd::VpcdCard;
use eid_tests::{Slot, pcscd_available, restart, wait_for_card};

#[test]
fn pcscd_restart_ends_in_typed_errors_and_everything_recovers() {
    if !restart::allowed() || !pcscd_available() {
        return;
    }
    let (slot, context) = Slot::acquire_empty();
    let reader = slot.reader_name();
    let mut handle =
        VpcdCard::attach(slot.addr(), test_card::card(Variant::Full).unwrap()).unwrap();
    wait_for_card(&context, &reader, true);
    let mut transport = context.connect(&reader).unwrap();
    let mut monitor = Monitor::new(&context).unwrap();
    monitor.initial_events().unwrap();
    // A second monitor is blocked in its wait when pcscd dies (the agent's usual state).
    let mut blocked = Monitor::new(&context).unwrap();
    blocked.initial_events().unwrap();
    let blocked = std::thread::spawn(move || {
        loop {
            match blocked.wait(Some(Duration::from_secs(20))) {
                Ok(events) if events.is_empty() => continue,
                other => return (blocked, other),
            }
        }
    });
    // Taken before the restart, used after it.
    let canceller = monitor.canceller();
    std::thread::sleep(Duration::from_millis(200));

    let _restart = restart::RestartOnDrop;
    restart::stop_pcscd();

    // The connection in hand and the monitor both say the service went away.
    let err = Session::new(&mut transport)
        .read_file(&[test_card::APP_FID, test_card::EF_SMALL])
        .unwrap_err();
    assert!(matches!(err, Error::PcscdStopped), "transmit: {err:?}");
    assert!(err.is_retryable());
    let err = monitor.wait(Some(Duration::from_secs(5))).unwrap_err();
    assert!(matches!(err, Error::PcscdStopped), "monitor: {err:?}");
    let (mut blocked, result) = blocked.join().unwrap();
    let err = result.unwrap_err();
    assert!(
        matches!(err, Error::PcscdStopped),
        "blocked monitor: {err:?}"
    );
    // Cancelled while pcscd is down: waiting for it to come back ends at once.
    blocked.canceller().cancel().unwrap();
    let started = Instant::now();
    let err = blocked
        .reestablish(Duration::from_millis(100), 100)
        .unwrap_err();
    assert!(
        matches!(err, Error::Cancelled),
        "reestablish after cancel: {err:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(1));
    // A new client is told the service is not running.
    let err = PcscContext::establish()
        .and_then(|c| c.reader_names())
        .unwrap_err();
    assert!(
        matches!(err, Error::PcscdNotRunning | Error::PcscdStopped),
        "establish: {err:?}"
    );
    drop(transport);
    drop(context);

    restart::start_pcscd();
    // The virtual card reconnects to the new vpcd, as a card sits in a reader across a restart.
    handle.remove();
    handle.insert().unwrap();

    let events = monitor
        .reestablish(Duration::from_millis(100), 100)
        .unwrap();
    let context = PcscContext::establish().unwrap();
    wait_for_card(&context, &reader, true);
    let mut later = events;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !later
        .iter()
        .any(|e| matches!(e, Event::CardInserted { reader: r, .. } if *r == reader))
    {
        assert!(
            Instant::now() < deadline,
            "no card-inserted event after the restart: {later:?}"
        );
        match monitor.wait(Some(Duration::from_secs(2))) {
            Ok(events) => later.extend(events),
            Err(Error::Timeout) => {}
            Err(e) => panic!("monitor after restart: {e:?}"),
        }
    }
    // The canceller from before the restart still reaches the monitor's new context.
    let waiting = std::thread::spawn(move || monitor.wait(None));
    std::thread::sleep(Duration::from_millis(200));
    canceller.cancel().unwrap();
    let result = waiting.join().unwrap();
    assert!(matches!(result, Err(Error::Cancelled)), "{result:?}");

    let mut transport = context.connect(&reader).unwrap();
    let data = Session::new(&mut transport)
        .read_file(&[test_card::APP_FID, test_card::EF_SMALL])
        .unwrap();
    assert_eq!(data, test_card::test_file(test_card::EF_SMALL).unwrap());
    let _ = transport.atr();
}
