//! A virtual card behind real PC/SC: a TCP client of vsmartcard's `vpcd` reader driver.
//!
//! pcscd loads vpcd, which listens on TCP 35963 (reader "Virtual PCD 00 00") and 35964
//! ("Virtual PCD 00 01"). Connecting to that port inserts a card in the reader; closing the
//! connection removes it. Every message, both ways, is a two-byte big-endian length and a payload.
//! From vpcd, a one-byte payload is a control message (00 power off, 01 power on, 02 reset,
//! 04 "send the ATR"; only the last is answered, with the framed ATR); anything else is a command
//! APDU, answered with the framed response APDU.
//!
//! vpcd writes the length and the payload separately: with Nagle's algorithm on its side and
//! delayed ACKs on ours, each APDU would wait ~40 ms. The socket therefore has TCP_NODELAY, and
//! TCP_QUICKACK is re-armed before every read (Linux clears it on its own).
//!
//! A response frame holds at most 65 535 bytes, so the card's answers are limited to 65 533 data
//! bytes here (a READ BINARY asking for 65 536 gets 65 533 and 9000).

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, SocketAddrV4, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use zeroize::Zeroizing;

use crate::engine::VirtualCard;

/// vpcd's first slot, "Virtual PCD 00 00".
pub const SLOT0: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 35963));
/// vpcd's second slot, "Virtual PCD 00 01".
pub const SLOT1: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 35964));

const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest payload a frame carries.
const MAX_FRAME: usize = u16::MAX as usize;

/// The address of vpcd slot `slot` on this machine (35963 + slot).
pub fn slot_addr(slot: u8) -> SocketAddr {
    SocketAddr::V4(SocketAddrV4::new(
        Ipv4Addr::LOCALHOST,
        35963 + u16::from(slot),
    ))
}

/// Entry point: puts a [`VirtualCard`] into a vpcd reader.
#[derive(Debug)]
pub enum VpcdCard {}

impl VpcdCard {
    /// Connects `card` to vpcd at `addr` (the card is inserted) and serves it on a thread.
    pub fn attach(addr: SocketAddr, card: VirtualCard) -> io::Result<VpcdHandle> {
        let mut handle = VpcdHandle::detached(addr, card);
        handle.insert()?;
        Ok(handle)
    }
}

/// State shared by the handle and the thread serving the connection.
#[derive(Debug)]
struct Shared {
    card: Mutex<VirtualCard>,
    /// A clone of the connected socket, to shut it down from the handle.
    conn: Mutex<Option<TcpStream>>,
    attached: AtomicBool,
    remove_after: Mutex<Option<u64>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A card in a vpcd reader. Dropping it removes the card.
#[derive(Debug)]
pub struct VpcdHandle {
    addr: SocketAddr,
    shared: Arc<Shared>,
    worker: Option<JoinHandle<()>>,
}

impl VpcdHandle {
    /// A handle for `card` and vpcd at `addr`, not connected yet: call
    /// [`VpcdHandle::insert`].
    pub fn detached(addr: SocketAddr, card: VirtualCard) -> Self {
        let mut card = card;
        card.set_max_response_data(MAX_FRAME - 2);
        VpcdHandle {
            addr,
            shared: Arc::new(Shared {
                card: Mutex::new(card),
                conn: Mutex::new(None),
                attached: AtomicBool::new(false),
                remove_after: Mutex::new(None),
            }),
            worker: None,
        }
    }

    /// Inserts the card: connects to vpcd (the card is power-cycled first). Does nothing if the
    /// card is in already.
    pub fn insert(&mut self) -> io::Result<()> {
        if self.is_attached() {
            return Ok(());
        }
        self.join_worker();
        let stream = TcpStream::connect_timeout(&self.addr, CONNECT_TIMEOUT)?;
        stream.set_nodelay(true)?;
        stream.set_write_timeout(Some(WRITE_TIMEOUT))?;
        let control = stream.try_clone()?;
        {
            let mut card = lock(&self.shared.card);
            card.power_off();
        }
        *lock(&self.shared.remove_after) = None;
        *lock(&self.shared.conn) = Some(control);
        self.shared.attached.store(true, Ordering::SeqCst);
        let shared = Arc::clone(&self.shared);
        let worker = std::thread::Builder::new()
            .name(format!("vpcd {}", self.addr))
            .spawn(move || serve(&shared, stream));
        match worker {
            Ok(worker) => {
                tracing::debug!(addr = %self.addr, "virtual card inserted");
                self.worker = Some(worker);
                Ok(())
            }
            Err(e) => {
                self.shared.attached.store(false, Ordering::SeqCst);
                if let Some(conn) = lock(&self.shared.conn).take() {
                    let _ = conn.shutdown(Shutdown::Both);
                }
                Err(e)
            }
        }
    }

    /// Removes the card: closes the connection and waits for the serving thread to end.
    pub fn remove(&mut self) {
        if let Some(conn) = lock(&self.shared.conn).take() {
            let _ = conn.shutdown(Shutdown::Both);
        }
        self.join_worker();
    }

    fn join_worker(&mut self) {
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }

    /// `n` more APDUs are answered; the connection is closed instead of answering the next one
    /// (the card is pulled out in the middle of a command).
    pub fn remove_after_apdus(&self, n: u64) {
        *lock(&self.shared.remove_after) = Some(n);
    }

    /// APDUs the card has processed since it was created.
    pub fn apdu_count(&self) -> u64 {
        lock(&self.shared.card).apdu_count()
    }

    /// Whether the connection to vpcd is up (false after [`VpcdHandle::remove`], after
    /// [`VpcdHandle::remove_after_apdus`] fired, and when vpcd closed it, e.g. pcscd stopped).
    pub fn is_attached(&self) -> bool {
        self.shared.attached.load(Ordering::SeqCst)
    }

    /// Where vpcd is.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Runs `f` on the card (to look at its state, or change files between APDUs).
    pub fn with_card<R>(&self, f: impl FnOnce(&mut VirtualCard) -> R) -> R {
        f(&mut lock(&self.shared.card))
    }
}

impl Drop for VpcdHandle {
    fn drop(&mut self) {
        self.remove();
    }
}

/// Serves one connection until vpcd closes it, the handle shuts it down, or an error.
fn serve(shared: &Shared, mut stream: TcpStream) {
    match serve_frames(shared, &mut stream) {
        Ok(()) => tracing::debug!("vpcd connection closed"),
        Err(e) => tracing::debug!(error = %e, "vpcd connection ended"),
    }
    shared.attached.store(false, Ordering::SeqCst);
    let _ = stream.shutdown(Shutdown::Both);
    lock(&shared.conn).take();
}

fn serve_frames(shared: &Shared, stream: &mut TcpStream) -> io::Result<()> {
    // APDUs may carry PINs.
    let mut payload = Zeroizing::new(Vec::with_capacity(MAX_FRAME));
    loop {
        quickack(stream);
        let mut header = [0u8; 2];
        match stream.read_exact(&mut header) {
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            other => other?,
        }
        payload.clear();
        payload.resize(usize::from(u16::from_be_bytes(header)), 0);
        quickack(stream);
        stream.read_exact(&mut payload)?;
        match payload.as_slice() {
            [] => {}
            [0x00] => lock(&shared.card).power_off(),
            [0x01] => lock(&shared.card).power_on(),
            [0x02] => lock(&shared.card).reset(),
            [0x04] => {
                let atr = lock(&shared.card).atr().to_vec();
                send(stream, &atr)?;
            }
            [other] => tracing::debug!(control = other, "unknown vpcd control message"),
            apdu => {
                {
                    let mut remove_after = lock(&shared.remove_after);
                    match *remove_after {
                        Some(0) => {
                            *remove_after = None;
                            tracing::debug!("virtual card pulled out before answering");
                            return Ok(());
                        }
                        Some(n) => *remove_after = Some(n - 1),
                        None => {}
                    }
                }
                let response = lock(&shared.card).process(apdu);
                send(stream, &response)?;
            }
        }
    }
}

/// One frame, in one write (one TCP segment where possible).
fn send(stream: &mut TcpStream, payload: &[u8]) -> io::Result<()> {
    let payload = if payload.len() > MAX_FRAME {
        tracing::warn!(
            len = payload.len(),
            "answer too long for vpcd, sending 6F00"
        );
        &[0x6F, 0x00][..]
    } else {
        payload
    };
    let mut frame = Vec::with_capacity(payload.len() + 2);
    frame.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    frame.extend_from_slice(payload);
    stream.write_all(&frame)?;
    stream.flush()
}

/// Asks Linux to acknowledge at once (it falls back to delayed ACKs after a while).
fn quickack(stream: &TcpStream) {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        let _ = socket2::SockRef::from(stream).set_tcp_quickack(true);
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        let _ = stream;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profiles::iso7816_test::{self, Variant};
    use std::net::TcpListener;

    /// The vpcd side of the protocol, for tests.
    struct FakeVpcd {
        stream: TcpStream,
    }

    impl FakeVpcd {
        fn accept(listener: &TcpListener) -> Self {
            let (stream, _) = listener.accept().unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            FakeVpcd { stream }
        }

        fn send(&mut self, payload: &[u8]) {
            // Like vpcd: length and payload in two writes.
            self.stream
                .write_all(&(payload.len() as u16).to_be_bytes())
                .unwrap();
            self.stream.write_all(payload).unwrap();
        }

        fn recv(&mut self) -> io::Result<Vec<u8>> {
            let mut header = [0u8; 2];
            self.stream.read_exact(&mut header)?;
            let mut payload = vec![0; usize::from(u16::from_be_bytes(header))];
            self.stream.read_exact(&mut payload)?;
            Ok(payload)
        }

        fn exchange(&mut self, apdu: &[u8]) -> io::Result<Vec<u8>> {
            self.send(apdu);
            self.recv()
        }

        fn is_closed(&mut self) -> bool {
            let mut byte = [0u8; 1];
            matches!(self.stream.read(&mut byte), Ok(0) | Err(_))
        }
    }

    fn listener() -> (TcpListener, SocketAddr) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        (listener, addr)
    }

    const SELECT_APP: &[u8] = b"\x00\xA4\x04\x0C\x09\xF0EID-TEST";

    #[test]
    fn default_slots() {
        assert_eq!(slot_addr(0), SLOT0);
        assert_eq!(slot_addr(1), SLOT1);
        assert_eq!(SLOT0.to_string(), "127.0.0.1:35963");
    }

    #[test]
    fn speaks_the_vpcd_protocol() {
        let (listener, addr) = listener();
        let card = iso7816_test::card(Variant::Full).unwrap();
        let mut handle = VpcdCard::attach(addr, card).unwrap();
        let mut vpcd = FakeVpcd::accept(&listener);
        assert!(handle.is_attached());

        vpcd.send(&[0x04]);
        assert_eq!(vpcd.recv().unwrap(), iso7816_test::atr(Variant::Full));
        vpcd.send(&[0x01]);
        vpcd.send(&[0x02]);
        assert_eq!(vpcd.exchange(SELECT_APP).unwrap(), [0x90, 0x00]);
        // Extended Le 0000: 20 000 bytes fit a frame.
        vpcd.exchange(b"\x00\xA4\x02\x0C\x02\x01\x02").unwrap();
        let data = vpcd.exchange(b"\x00\xB0\x00\x00\x00\x00\x00").unwrap();
        assert_eq!(&data[..20_000], iso7816_test::test_file(0x0102).unwrap());
        assert_eq!(data[20_000..], [0x62, 0x82]);
        // 70 000 bytes do not: the card gives what a frame holds.
        vpcd.exchange(b"\x00\xA4\x02\x0C\x02\x01\x03").unwrap();
        let data = vpcd.exchange(b"\x00\xB0\x00\x00\x00\x00\x00").unwrap();
        assert_eq!(data.len(), MAX_FRAME);
        assert_eq!(data[MAX_FRAME - 2..], [0x90, 0x00]);
        assert_eq!(handle.apdu_count(), 5);

        handle.remove();
        assert!(!handle.is_attached());
        assert!(vpcd.is_closed());
    }

    /// The connector notices a closed connection on its own thread: give it a second.
    fn wait_detached(handle: &VpcdHandle) {
        for _ in 0..100 {
            if !handle.is_attached() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("the card is still attached after 1 s");
    }

    #[test]
    fn remove_after_apdus_and_reinsert() {
        let (listener, addr) = listener();
        let card = iso7816_test::card(Variant::Full).unwrap();
        let mut handle = VpcdCard::attach(addr, card).unwrap();
        let mut vpcd = FakeVpcd::accept(&listener);
        handle.remove_after_apdus(1);
        // A verified PIN must not survive the removal.
        let pin = b"\x00\x20\x00\x81\x08\x31\x32\x33\x34\xFF\xFF\xFF\xFF";
        assert_eq!(vpcd.exchange(pin).unwrap(), [0x90, 0x00]);
        assert!(vpcd.exchange(SELECT_APP).is_err());
        wait_detached(&handle);

        handle.insert().unwrap();
        let mut vpcd = FakeVpcd::accept(&listener);
        vpcd.send(&[0x01]);
        assert_eq!(vpcd.exchange(b"\x00\x20\x00\x81").unwrap(), [0x63, 0xC3]);
        assert_eq!(handle.apdu_count(), 2);
        drop(handle);
        assert!(vpcd.is_closed());
    }

    #[test]
    fn vpcd_closing_detaches() {
        let (listener, addr) = listener();
        let card = iso7816_test::card(Variant::T0).unwrap();
        let mut handle = VpcdCard::attach(addr, card).unwrap();
        let vpcd = FakeVpcd::accept(&listener);
        drop(vpcd);
        wait_detached(&handle);
        drop(listener);
        assert!(handle.insert().is_err());
    }
}
