//! A blocking HTTPS/1.1 client for the bridge tests, built for attack tests: it sends exactly
//! what it is told (any `Host`, any `Origin`, no `Host` at all, raw bytes) and parses what comes
//! back strictly and within fixed bounds.
//!
//! ```no_run
//! # use eid_tests::https::{HttpsClient, Request};
//! # let (addr, ca_pem) = ("127.0.0.1:24180".parse().unwrap(), String::new());
//! let client = HttpsClient::new(addr, &ca_pem, "127.0.0.1");
//! let mut conn = client.connect();
//! let res = conn.send(&Request::get("/v1/status").origin("https://rp.example")).unwrap();
//! assert_eq!(res.status, 200);
//! let res = conn // the same TLS connection (keep-alive)
//!     .send(&Request::post("/v1/authenticate").origin("https://evil.example").host("evil.example"))
//!     .unwrap();
//! assert_eq!(res.error_code().as_deref(), Some("host-not-allowed"));
//! ```
//!
//! [`Conn::open_events`] turns a connection into a Server-Sent Events reader; dropping a
//! [`Conn`] or [`EventStream`] closes the socket (tests use that to check that a disconnected
//! client's queued work is cancelled).
//!
//! The same wire code parses requests for the small test servers of this crate
//! ([`crate::browser::PageServer`]): see [`read_request`] and [`write_response`].

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

/// Longest status, request or header line accepted.
pub const MAX_LINE: usize = 16 * 1024;
/// Most header lines accepted in one message.
pub const MAX_HEADERS: usize = 128;
/// Largest body accepted (identity answers carry a photo).
pub const MAX_BODY: usize = 32 * 1024 * 1024;
/// Read timeout of a new connection, so a silent server fails a test instead of hanging it.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// Where to connect and whom to trust.
#[derive(Clone)]
pub struct HttpsClient {
    addr: SocketAddr,
    config: Arc<ClientConfig>,
    server_name: ServerName<'static>,
}

impl fmt::Debug for HttpsClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpsClient")
            .field("addr", &self.addr)
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

impl HttpsClient {
    /// A client for `addr` that trusts only the CA certificate(s) in `ca_pem` and checks the
    /// server certificate against `server_name` (`"127.0.0.1"`, `"localhost"`, `"::1"` ...).
    /// Panics on a CA PEM without certificates or an invalid name (test set-up errors).
    pub fn new(addr: SocketAddr, ca_pem: &str, server_name: &str) -> Self {
        let mut roots = RootCertStore::empty();
        let mut found = 0;
        for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
            let cert = cert.expect("CA PEM parses");
            roots.add(cert).expect("CA certificate accepted by rustls");
            found += 1;
        }
        assert!(found > 0, "no CERTIFICATE block in the CA PEM");
        let mut config =
            ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .expect("ring supports the default protocol versions")
                .with_root_certificates(roots)
                .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let server_name =
            ServerName::try_from(server_name.to_owned()).expect("valid DNS name or IP address");
        HttpsClient {
            addr,
            config: Arc::new(config),
            server_name,
        }
    }

    /// The server's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The `Host` requests carry unless told otherwise: `127.0.0.1:<port>` (`[::1]:<port>`).
    pub fn default_host(&self) -> String {
        self.addr.to_string()
    }

    /// One TLS connection (handshake done, TCP_NODELAY, read timeout [`DEFAULT_TIMEOUT`]).
    /// Panics when the server cannot be reached or the handshake fails.
    pub fn connect(&self) -> Conn {
        self.try_connect()
            .unwrap_or_else(|e| panic!("TLS connection to {} failed: {e}", self.addr))
    }

    /// [`HttpsClient::connect`] that reports failures (refused, certificate not trusted...).
    pub fn try_connect(&self) -> io::Result<Conn> {
        let sock = TcpStream::connect_timeout(&self.addr, Duration::from_secs(10))?;
        sock.set_nodelay(true)?;
        sock.set_read_timeout(Some(DEFAULT_TIMEOUT))?;
        sock.set_write_timeout(Some(DEFAULT_TIMEOUT))?;
        let conn = ClientConnection::new(self.config.clone(), self.server_name.clone())
            .map_err(io::Error::other)?;
        let mut tls = StreamOwned::new(conn, sock);
        while tls.conn.is_handshaking() {
            tls.conn.complete_io(&mut tls.sock)?;
        }
        Ok(Conn {
            wire: Wire::new(tls),
            default_host: self.default_host(),
        })
    }

    /// One request on a connection of its own.
    pub fn send(&self, req: &Request) -> io::Result<Response> {
        self.try_connect()?.send(req)
    }
}

/// A request, written byte for byte as built: headers in order, names as given.
#[derive(Debug, Clone)]
pub struct Request {
    method: String,
    target: String,
    host: HostHeader,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    content_length: bool,
}

#[derive(Debug, Clone)]
enum HostHeader {
    Default,
    Value(String),
    Absent,
}

impl Request {
    /// Any method, any request target (not checked: attack tests send odd ones).
    pub fn new(method: &str, target: &str) -> Self {
        Request {
            method: method.to_owned(),
            target: target.to_owned(),
            host: HostHeader::Default,
            headers: Vec::new(),
            body: Vec::new(),
            content_length: method != "GET" && method != "HEAD" && method != "OPTIONS",
        }
    }

    /// `GET target`.
    pub fn get(target: &str) -> Self {
        Request::new("GET", target)
    }

    /// `POST target` (with `Content-Length: 0` until a body is set).
    pub fn post(target: &str) -> Self {
        Request::new("POST", target)
    }

    /// `OPTIONS target` (CORS preflights).
    pub fn options(target: &str) -> Self {
        Request::new("OPTIONS", target)
    }

    /// Adds a header line (repeat for duplicates).
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// `Origin: o`.
    pub fn origin(self, o: &str) -> Self {
        self.header("Origin", o)
    }

    /// `Host: h` instead of the client's default.
    pub fn host(mut self, h: &str) -> Self {
        self.host = HostHeader::Value(h.to_owned());
        self
    }

    /// No `Host` header at all.
    pub fn without_host(mut self) -> Self {
        self.host = HostHeader::Absent;
        self
    }

    /// A JSON body with `Content-Type: application/json`.
    pub fn json(self, value: &serde_json::Value) -> Self {
        let bytes = serde_json::to_vec(value).unwrap_or_default();
        self.body(bytes, "application/json")
    }

    /// A body with the given `Content-Type` (none when `content_type` is empty).
    pub fn body(mut self, bytes: impl Into<Vec<u8>>, content_type: &str) -> Self {
        if !content_type.is_empty() {
            self = self.header("Content-Type", content_type);
        }
        self.body = bytes.into();
        self.content_length = true;
        self
    }

    /// Does not add `Content-Length` (set your own with [`Request::header`]).
    pub fn without_content_length(mut self) -> Self {
        self.content_length = false;
        self
    }

    /// The method.
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The bytes sent on the wire, with `default_host` unless the host was set or removed.
    pub fn to_bytes(&self, default_host: &str) -> Vec<u8> {
        let mut out = format!("{} {} HTTP/1.1\r\n", self.method, self.target).into_bytes();
        match &self.host {
            HostHeader::Default => {
                out.extend_from_slice(format!("Host: {default_host}\r\n").as_bytes())
            }
            HostHeader::Value(h) => out.extend_from_slice(format!("Host: {h}\r\n").as_bytes()),
            HostHeader::Absent => {}
        }
        for (name, value) in &self.headers {
            out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
        }
        if self.content_length {
            out.extend_from_slice(format!("Content-Length: {}\r\n", self.body.len()).as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&self.body);
        out
    }
}

/// A response; header names lowercased, the body decoded (chunked or by length).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Header lines in order, names lowercased, values trimmed.
    pub headers: Vec<(String, String)>,
    /// Decoded body.
    pub body: Vec<u8>,
}

impl Response {
    /// First value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }

    /// Every value of header `name` (any case).
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .filter(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The body as JSON; panics with the status and body when it is not JSON.
    pub fn json(&self) -> serde_json::Value {
        self.try_json().unwrap_or_else(|e| {
            panic!(
                "status {} body is not JSON ({e}): {}",
                self.status,
                self.text()
            )
        })
    }

    /// The body as JSON.
    pub fn try_json(&self) -> serde_json::Result<serde_json::Value> {
        serde_json::from_slice(&self.body)
    }

    /// The body as (lossy) UTF-8.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// `error.code` of a bridge error body.
    pub fn error_code(&self) -> Option<String> {
        let v = self.try_json().ok()?;
        v.get("error")?.get("code")?.as_str().map(str::to_owned)
    }
}

fn find_header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// One TLS connection; several requests in turn (keep-alive).
pub struct Conn {
    wire: Wire<StreamOwned<ClientConnection, TcpStream>>,
    default_host: String,
}

impl fmt::Debug for Conn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Conn")
            .field("peer", &self.wire.io.sock.peer_addr().ok())
            .finish()
    }
}

impl Conn {
    /// Sends `req` and reads its response.
    pub fn send(&mut self, req: &Request) -> io::Result<Response> {
        self.write_raw(&req.to_bytes(&self.default_host))?;
        self.read_response_to(req.method())
    }

    /// Sends raw bytes (a malformed request) and reads one response.
    pub fn send_raw(&mut self, bytes: &[u8]) -> io::Result<Response> {
        self.write_raw(bytes)?;
        self.read_response()
    }

    /// Writes raw bytes without reading (slow or pipelined requests).
    pub fn write_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.wire.io.write_all(bytes)?;
        self.wire.io.flush()
    }

    /// Reads one response (to a request that was not `HEAD`).
    pub fn read_response(&mut self) -> io::Result<Response> {
        self.read_response_to("GET")
    }

    fn read_response_to(&mut self, method: &str) -> io::Result<Response> {
        loop {
            let (status, headers) = read_response_head(&mut self.wire)?;
            if (100..200).contains(&status) && status != 101 {
                continue; // 100 Continue and friends: the real answer follows
            }
            let mut decoder = if method == "HEAD" || status == 204 || status == 304 {
                BodyDecoder::Done
            } else {
                BodyDecoder::for_response(&headers)?
            };
            let body = decoder.read_all(&mut self.wire, MAX_BODY)?;
            return Ok(Response {
                status,
                headers,
                body,
            });
        }
    }

    /// Read timeout for later reads (`None`: wait forever).
    pub fn set_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        self.wire.io.sock.set_read_timeout(timeout)
    }

    /// True when the server has closed the connection (a read of zero bytes or an error); bytes
    /// already received stay readable.
    pub fn server_closed(&mut self, wait: Duration) -> bool {
        if !self.wire.buf.is_empty() {
            return false;
        }
        let _ = self
            .wire
            .io
            .sock
            .set_read_timeout(Some(wait.max(Duration::from_millis(1))));
        let closed = match self.wire.fill() {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => !is_timeout(&e),
        };
        let _ = self.wire.io.sock.set_read_timeout(Some(DEFAULT_TIMEOUT));
        closed
    }

    /// Sends `req` (normally `GET /v1/events`) and reads the response head. A `200` answer turns
    /// the connection into an event reader; any other answer is read whole and kept in
    /// [`EventStream::response`] (its `next_event` then returns `None`).
    pub fn open_events(mut self, req: &Request) -> io::Result<EventStream> {
        self.write_raw(&req.to_bytes(&self.default_host))?;
        let (status, headers) = loop {
            let (status, headers) = read_response_head(&mut self.wire)?;
            if !(100..200).contains(&status) {
                break (status, headers);
            }
        };
        let mut decoder = BodyDecoder::for_response(&headers)?;
        let mut response = Response {
            status,
            headers,
            body: Vec::new(),
        };
        if status != 200 {
            response.body = decoder.read_all(&mut self.wire, MAX_BODY)?;
            decoder = BodyDecoder::Done;
        }
        Ok(EventStream {
            conn: self,
            response,
            decoder,
            text: Vec::new(),
            event: None,
            data: None,
            comments: 0,
            ended: false,
        })
    }

    /// Closes the connection: TLS close_notify, then TCP shutdown. (Dropping closes too, without
    /// close_notify, as a crashed or navigated-away browser tab would.)
    pub fn close(mut self) {
        self.wire.io.conn.send_close_notify();
        let _ = self.wire.io.flush();
        let _ = self.wire.io.sock.shutdown(Shutdown::Both);
    }
}

/// A Server-Sent Events stream on a [`Conn`]; dropping it closes the connection.
#[derive(Debug)]
pub struct EventStream {
    conn: Conn,
    response: Response,
    decoder: BodyDecoder,
    text: Vec<u8>,
    event: Option<String>,
    data: Option<String>,
    comments: usize,
    ended: bool,
}

impl EventStream {
    /// The response head (and, when the status was not 200, the whole error response).
    pub fn response(&self) -> &Response {
        &self.response
    }

    /// Comment lines (keep-alives) seen so far.
    pub fn comments_seen(&self) -> usize {
        self.comments
    }

    /// True once the server ended the stream (or the status was not 200).
    pub fn ended(&self) -> bool {
        self.ended || matches!(self.decoder, BodyDecoder::Done)
    }

    /// The next event as `(event type, data)` (type "message" when the event had none), or
    /// `None` when `timeout` passed or the stream ended. Events split over several TLS records
    /// or chunks are put back together; a timeout loses nothing.
    pub fn next_event(&mut self, timeout: Duration) -> Option<(String, String)> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(ev) = self.parse_buffered() {
                return Some(ev);
            }
            if self.ended() {
                return None;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            let _ = self.conn.wire.io.sock.set_read_timeout(Some(left));
            match self.decoder.next_bytes(&mut self.conn.wire) {
                Ok(Some(bytes)) => {
                    if self.text.len() + bytes.len() > MAX_BODY {
                        self.ended = true;
                        return None;
                    }
                    self.text.extend_from_slice(&bytes);
                }
                Ok(None) => self.ended = true,
                Err(e) if is_timeout(&e) => return None,
                Err(_) => self.ended = true,
            }
        }
    }

    /// Dispatches the first complete event in the buffer (text/event-stream rules: `event:`,
    /// `data:` lines joined by LF, `:` comments, dispatch on an empty line, no dispatch when
    /// there was no data).
    fn parse_buffered(&mut self) -> Option<(String, String)> {
        while let Some(pos) = self.text.iter().position(|&b| b == b'\n') {
            let mut line: Vec<u8> = self.text.drain(..=pos).collect();
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            let line = String::from_utf8_lossy(&line).into_owned();
            if line.is_empty() {
                let event = self.event.take();
                if let Some(data) = self.data.take() {
                    return Some((event.unwrap_or_else(|| "message".to_owned()), data));
                }
                continue;
            }
            if line.starts_with(':') {
                self.comments += 1;
                continue;
            }
            let (field, value) = match line.split_once(':') {
                Some((f, v)) => (f.to_owned(), v.strip_prefix(' ').unwrap_or(v).to_owned()),
                None => (line.clone(), String::new()),
            };
            match field.as_str() {
                "event" => self.event = Some(value),
                "data" => match &mut self.data {
                    Some(d) => {
                        d.push('\n');
                        d.push_str(&value);
                    }
                    None => self.data = Some(value),
                },
                _ => {} // id, retry, unknown fields
            }
        }
        None
    }

    /// Closes the connection (as [`Conn::close`]).
    pub fn close(self) {
        self.conn.close();
    }
}

/// True for the errors a read timeout produces.
pub fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

fn bad(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

/// Bytes read from `io` and not yet parsed. Parsing consumes from `buf` only once a whole unit
/// (line, chunk piece) is there, so a read timeout in the middle loses nothing.
#[derive(Debug)]
pub struct Wire<S> {
    /// The stream.
    pub io: S,
    buf: Vec<u8>,
}

impl<S: Read + Write> Wire<S> {
    /// Wraps a stream.
    pub fn new(io: S) -> Self {
        Wire {
            io,
            buf: Vec::new(),
        }
    }

    /// Reads more bytes into the buffer; `Ok(0)` at the end of the stream.
    fn fill(&mut self) -> io::Result<usize> {
        let mut chunk = [0u8; 16 * 1024];
        loop {
            match self.io.read(&mut chunk) {
                Ok(n) => {
                    self.buf
                        .extend_from_slice(chunk.get(..n).unwrap_or_default());
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // A peer that closes TCP without TLS close_notify: the end, for our purposes.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                Err(e) => return Err(e),
            }
        }
    }

    /// One line without its CRLF (or LF); errors when longer than `max` bytes or at the end of
    /// the stream.
    fn read_line(&mut self, max: usize) -> io::Result<Vec<u8>> {
        let mut searched = 0;
        loop {
            if let Some(pos) = self.buf.iter().skip(searched).position(|&b| b == b'\n') {
                let pos = searched + pos;
                if pos > max + 1 {
                    return Err(bad("line too long"));
                }
                let mut line: Vec<u8> = self.buf.drain(..=pos).collect();
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Ok(line);
            }
            searched = self.buf.len();
            if searched > max + 1 {
                return Err(bad("line too long"));
            }
            if self.fill()? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "connection closed in the middle of a line",
                ));
            }
        }
    }

    /// Up to `max` buffered bytes (reading when the buffer is empty); empty at the end.
    fn take_some(&mut self, max: usize) -> io::Result<Vec<u8>> {
        if self.buf.is_empty() && self.fill()? == 0 {
            return Ok(Vec::new());
        }
        let n = max.min(self.buf.len());
        Ok(self.buf.drain(..n).collect())
    }

    /// True when nothing is buffered and the stream has ended.
    fn at_eof(&mut self) -> io::Result<bool> {
        if !self.buf.is_empty() {
            return Ok(false);
        }
        Ok(self.fill()? == 0)
    }
}

fn read_headers<S: Read + Write>(wire: &mut Wire<S>) -> io::Result<Vec<(String, String)>> {
    let mut headers = Vec::new();
    loop {
        let line = wire.read_line(MAX_LINE)?;
        if line.is_empty() {
            return Ok(headers);
        }
        if headers.len() >= MAX_HEADERS {
            return Err(bad("too many header lines"));
        }
        let line = String::from_utf8(line).map_err(|_| bad("header line is not UTF-8"))?;
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| bad("header line without ':'"))?;
        if name.is_empty() || name.bytes().any(|b| b <= b' ' || b == 0x7f) {
            return Err(bad(format!("bad header name {name:?}")));
        }
        headers.push((name.to_ascii_lowercase(), value.trim().to_owned()));
    }
}

fn read_response_head<S: Read + Write>(
    wire: &mut Wire<S>,
) -> io::Result<(u16, Vec<(String, String)>)> {
    let line = wire.read_line(MAX_LINE)?;
    let line = String::from_utf8(line).map_err(|_| bad("status line is not UTF-8"))?;
    let mut parts = line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    if version != "HTTP/1.1" && version != "HTTP/1.0" {
        return Err(bad(format!("bad status line {line:?}")));
    }
    let status = parts
        .next()
        .filter(|s| s.len() == 3)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| bad(format!("bad status line {line:?}")))?;
    Ok((status, read_headers(wire)?))
}

/// How a message body is delimited, and how far it has been read.
#[derive(Debug)]
enum BodyDecoder {
    Length(usize),
    /// Reading a chunk-size line.
    ChunkSize,
    /// Inside a chunk, bytes left.
    ChunkData(usize),
    /// The CRLF after a chunk's data.
    ChunkEnd,
    UntilEof,
    Done,
}

impl BodyDecoder {
    fn for_response(headers: &[(String, String)]) -> io::Result<Self> {
        if let Some(te) = find_header(headers, "transfer-encoding") {
            if te
                .to_ascii_lowercase()
                .split(',')
                .any(|t| t.trim() == "chunked")
            {
                return Ok(BodyDecoder::ChunkSize);
            }
            return Err(bad(format!("unsupported transfer-encoding {te:?}")));
        }
        match find_header(headers, "content-length") {
            Some(len) => Ok(BodyDecoder::length(len)?),
            None => Ok(BodyDecoder::UntilEof),
        }
    }

    fn for_request(headers: &[(String, String)]) -> io::Result<Self> {
        if find_header(headers, "transfer-encoding").is_some() {
            return Ok(BodyDecoder::ChunkSize); // only chunked is valid for requests
        }
        match find_header(headers, "content-length") {
            Some(len) => Ok(BodyDecoder::length(len)?),
            None => Ok(BodyDecoder::Done),
        }
    }

    fn length(value: &str) -> io::Result<Self> {
        let n: usize = value
            .parse()
            .map_err(|_| bad(format!("bad content-length {value:?}")))?;
        if n > MAX_BODY {
            return Err(bad("body too large"));
        }
        Ok(if n == 0 {
            BodyDecoder::Done
        } else {
            BodyDecoder::Length(n)
        })
    }

    /// The next decoded bytes, `None` at the end of the body. The state moves only after a
    /// complete step, so an error (a read timeout) can be retried.
    fn next_bytes<S: Read + Write>(&mut self, wire: &mut Wire<S>) -> io::Result<Option<Vec<u8>>> {
        loop {
            match *self {
                BodyDecoder::Done => return Ok(None),
                BodyDecoder::Length(left) => {
                    let bytes = wire.take_some(left)?;
                    if bytes.is_empty() {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "body cut short",
                        ));
                    }
                    let left = left - bytes.len();
                    *self = if left == 0 {
                        BodyDecoder::Done
                    } else {
                        BodyDecoder::Length(left)
                    };
                    return Ok(Some(bytes));
                }
                BodyDecoder::UntilEof => {
                    let bytes = wire.take_some(usize::MAX)?;
                    if bytes.is_empty() {
                        *self = BodyDecoder::Done;
                        return Ok(None);
                    }
                    return Ok(Some(bytes));
                }
                BodyDecoder::ChunkSize => {
                    let line = wire.read_line(1024)?;
                    let line = String::from_utf8_lossy(&line);
                    let size = line.split(';').next().unwrap_or_default().trim();
                    let size = usize::from_str_radix(size, 16)
                        .map_err(|_| bad(format!("bad chunk size {line:?}")))?;
                    if size > MAX_BODY {
                        return Err(bad("chunk too large"));
                    }
                    if size == 0 {
                        read_headers(wire)?; // trailers, up to the empty line
                        *self = BodyDecoder::Done;
                        return Ok(None);
                    }
                    *self = BodyDecoder::ChunkData(size);
                }
                BodyDecoder::ChunkData(left) => {
                    let bytes = wire.take_some(left)?;
                    if bytes.is_empty() {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "chunk cut short",
                        ));
                    }
                    let left = left - bytes.len();
                    *self = if left == 0 {
                        BodyDecoder::ChunkEnd
                    } else {
                        BodyDecoder::ChunkData(left)
                    };
                    return Ok(Some(bytes));
                }
                BodyDecoder::ChunkEnd => {
                    if !wire.read_line(0)?.is_empty() {
                        return Err(bad("chunk data longer than its size"));
                    }
                    *self = BodyDecoder::ChunkSize;
                }
            }
        }
    }

    fn read_all<S: Read + Write>(&mut self, wire: &mut Wire<S>, max: usize) -> io::Result<Vec<u8>> {
        let mut body = Vec::new();
        while let Some(bytes) = self.next_bytes(wire)? {
            if body.len() + bytes.len() > max {
                return Err(bad("body too large"));
            }
            body.extend_from_slice(&bytes);
        }
        Ok(body)
    }
}

/// A request as a test server reads it: method, target, headers (names lowercased), body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerRequest {
    /// Method.
    pub method: String,
    /// Request target (path and query).
    pub target: String,
    /// Header lines, names lowercased.
    pub headers: Vec<(String, String)>,
    /// Decoded body.
    pub body: Vec<u8>,
}

impl ServerRequest {
    /// First value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }

    /// The path without the query.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or_default()
    }
}

/// Reads one request (for test servers); `Ok(None)` when the client closed the connection
/// between requests. Bodies above `max_body` are refused with an error.
pub fn read_request<S: Read + Write>(
    wire: &mut Wire<S>,
    max_body: usize,
) -> io::Result<Option<ServerRequest>> {
    if wire.at_eof()? {
        return Ok(None);
    }
    let line = wire.read_line(MAX_LINE)?;
    let line = String::from_utf8(line).map_err(|_| bad("request line is not UTF-8"))?;
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad(format!("bad request line {line:?}")));
    };
    if version != "HTTP/1.1" && version != "HTTP/1.0" {
        return Err(bad(format!("bad request line {line:?}")));
    }
    let (method, target) = (method.to_owned(), target.to_owned());
    let headers = read_headers(wire)?;
    let body = BodyDecoder::for_request(&headers)?.read_all(wire, max_body)?;
    Ok(Some(ServerRequest {
        method,
        target,
        headers,
        body,
    }))
}

/// Writes a complete response with `Content-Length` (for test servers).
pub fn write_response<W: Write>(
    w: &mut W,
    status: u16,
    headers: &[(&str, &str)],
    body: &[u8],
) -> io::Result<()> {
    let mut out = format!("HTTP/1.1 {status} {}\r\n", reason(status)).into_bytes();
    for (name, value) in headers {
        out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    out.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
    out.extend_from_slice(body);
    w.write_all(&out)?;
    w.flush()
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        204 => "No Content",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Payload Too Large",
        _ => "Status",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;
    use std::net::TcpListener;
    use std::sync::mpsc;
    use std::thread;

    /// A read/write pair over in-memory bytes that hands out at most `step` bytes per read, to
    /// cut messages at every possible place.
    struct Trickle {
        input: Cursor<Vec<u8>>,
        step: usize,
    }

    impl Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = buf.len().min(self.step);
            self.input.read(buf.get_mut(..n).unwrap_or_default())
        }
    }

    impl Write for Trickle {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn wire(bytes: &[u8], step: usize) -> Wire<Trickle> {
        Wire::new(Trickle {
            input: Cursor::new(bytes.to_vec()),
            step,
        })
    }

    fn response(bytes: &[u8], step: usize) -> io::Result<Response> {
        let mut w = wire(bytes, step);
        let (status, headers) = read_response_head(&mut w)?;
        let body = BodyDecoder::for_response(&headers)?.read_all(&mut w, MAX_BODY)?;
        Ok(Response {
            status,
            headers,
            body,
        })
    }

    #[test]
    fn chunked_and_length_bodies_decode_at_any_read_size() {
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: b\r\n\r\n\
            5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\nTrailer: x\r\n\r\n";
        let length = b"HTTP/1.1 404 Not Found\r\ncontent-length: 12\r\n\r\nhello, world";
        for step in 1..8 {
            let res = response(chunked, step).unwrap();
            assert_eq!((res.status, res.text().as_str()), (200, "hello, world"));
            assert_eq!(res.header("X-a"), Some("b"));
            let res = response(length, step).unwrap();
            assert_eq!((res.status, res.text().as_str()), (404, "hello, world"));
        }
    }

    #[test]
    fn malformed_responses_are_errors_not_panics() {
        for bad_input in [
            b"HTTP/1.1 2000 OK\r\n\r\n".as_slice(),
            b"HTTP/2 200 OK\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc",
            b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            b"HTTP/1.1 200",
        ] {
            assert!(
                response(bad_input, 3).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad_input)
            );
        }
        let long = [
            b"HTTP/1.1 200 OK\r\nX: ".as_slice(),
            &vec![b'a'; MAX_LINE + 1],
        ]
        .concat();
        assert!(
            response(&long, 4096).is_err(),
            "an endless header line is refused"
        );
    }

    #[test]
    fn request_bytes_are_exactly_as_built() {
        let req = Request::post("/v1/sign")
            .origin("https://rp.example")
            .json(&serde_json::json!({"a": 1}));
        assert_eq!(
            String::from_utf8(req.to_bytes("127.0.0.1:1")).unwrap(),
            "POST /v1/sign HTTP/1.1\r\nHost: 127.0.0.1:1\r\nOrigin: https://rp.example\r\n\
             Content-Type: application/json\r\nContent-Length: 7\r\n\r\n{\"a\":1}"
        );
        let req = Request::get("/x")
            .without_host()
            .host("ignored")
            .without_host();
        assert_eq!(req.to_bytes("h").as_slice(), b"GET /x HTTP/1.1\r\n\r\n");
        // what read_request sees of it
        let req = Request::post("/r")
            .host("evil.example")
            .body(b"xyz".to_vec(), "text/plain");
        let got = read_request(&mut wire(&req.to_bytes(""), 2), 100)
            .unwrap()
            .unwrap();
        assert_eq!(got.header("host"), Some("evil.example"));
        assert_eq!(
            (got.method.as_str(), got.body.as_slice()),
            ("POST", b"xyz".as_slice())
        );
        assert!(
            read_request(&mut wire(&req.to_bytes(""), 2), 2).is_err(),
            "body over the limit"
        );
    }

    /// A one-connection TLS server on 127.0.0.1 that runs `serve` on the accepted stream.
    fn tls_server(
        serve: impl FnOnce(&mut StreamOwned<rustls::ServerConnection, TcpStream>) + Send + 'static,
    ) -> (SocketAddr, String, thread::JoinHandle<()>) {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["127.0.0.1".into()]).unwrap();
        params.is_ca = rcgen::IsCa::NoCa;
        let cert = params.self_signed(&key).unwrap();
        let ca_pem = cert.pem();
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap(),
        )
        .unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let handle = thread::spawn(move || {
            let (sock, _) = listener.accept().unwrap();
            let conn = rustls::ServerConnection::new(Arc::new(config)).unwrap();
            serve(&mut StreamOwned::new(conn, sock));
        });
        (addr, ca_pem, handle)
    }

    #[test]
    fn keep_alive_requests_share_one_tls_connection() {
        let (addr, ca, server) = tls_server(|s| {
            let mut w = Wire::new(s);
            let mut n = 0;
            while let Some(req) = read_request(&mut w, 1024).unwrap() {
                n += 1;
                let body = format!("{n} {} {}", req.target, req.header("origin").unwrap_or("-"));
                write_response(
                    &mut w.io,
                    200,
                    &[("Content-Type", "text/plain")],
                    body.as_bytes(),
                )
                .unwrap();
            }
        });
        let mut conn = HttpsClient::new(addr, &ca, "127.0.0.1").connect();
        let a = conn
            .send(&Request::get("/a").origin("https://x.example"))
            .unwrap();
        let b = conn.send(&Request::post("/b")).unwrap();
        assert_eq!(
            (a.status, a.text().as_str()),
            (200, "1 /a https://x.example")
        );
        assert_eq!(b.text(), "2 /b -", "second request on the same connection");
        assert_eq!(a.header("CONTENT-TYPE"), Some("text/plain"));
        conn.close();
        server.join().unwrap();
    }

    #[test]
    fn untrusted_server_certificate_is_refused() {
        let (addr, _ca, server) = tls_server(|s| {
            let _ = s.conn.complete_io(&mut s.sock);
        });
        let other = rcgen::CertificateParams::new(vec!["127.0.0.1".into()])
            .unwrap()
            .self_signed(&rcgen::KeyPair::generate().unwrap())
            .unwrap();
        let err = HttpsClient::new(addr, &other.pem(), "127.0.0.1")
            .try_connect()
            .unwrap_err();
        assert!(err.to_string().contains("certificate"), "{err}");
        server.join().unwrap();
    }

    #[test]
    fn events_split_across_chunks_and_timeouts_arrive_whole() {
        let (go_tx, go_rx) = mpsc::channel::<()>();
        let (addr, ca, server) = tls_server(move |s| {
            let mut w = Wire::new(s);
            read_request(&mut w, 0).unwrap().unwrap();
            let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\
                        transfer-encoding: chunked\r\n\r\n";
            w.io.write_all(head.as_bytes()).unwrap();
            fn chunk(io: &mut impl Write, s: &str) {
                io.write_all(format!("{:x}\r\n{s}\r\n", s.len()).as_bytes())
                    .unwrap();
                io.flush().unwrap();
            }
            chunk(&mut w.io, ": keep-alive\n\nevent: sta");
            chunk(&mut w.io, "tus\ndata: {\"a\":\r\n");
            go_rx.recv().unwrap(); // the client times out in the middle of the event first
            chunk(&mut w.io, "data: 1}\n\ndata: plain\n\n");
            w.io.write_all(b"0\r\n\r\n").unwrap();
            w.io.flush().unwrap();
        });
        let conn = HttpsClient::new(addr, &ca, "127.0.0.1").connect();
        let mut events = conn.open_events(&Request::get("/v1/events")).unwrap();
        assert_eq!(events.response().status, 200);
        assert_eq!(
            events.next_event(Duration::from_millis(200)),
            None,
            "half an event"
        );
        go_tx.send(()).unwrap();
        let ev = events.next_event(Duration::from_secs(10));
        assert_eq!(
            ev,
            Some(("status".into(), "{\"a\":\n1}".into())),
            "data lines joined by LF"
        );
        let ev = events.next_event(Duration::from_secs(10));
        assert_eq!(ev, Some(("message".into(), "plain".into())));
        assert_eq!(events.comments_seen(), 1);
        assert_eq!(events.next_event(Duration::from_secs(10)), None);
        assert!(events.ended());
        server.join().unwrap();
    }
}
