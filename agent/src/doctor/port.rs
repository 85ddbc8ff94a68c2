//! `port`: the bridge's port on 127.0.0.1 is free, or held by this agent.
//!
//! "Held by this agent" is asked, not guessed from a process name: doctor opens TLS trusting
//! only the agent's CAs (the user's and the machine's) and sends `GET /v1/status`; the agent
//! answers with its version and API. A server whose certificate our CA did not sign is asked
//! again without verification, only to tell "another eID agent" (another user's, an old
//! installation's) from "another program".

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use eid_installer::layout::Layout;
use eid_installer::tls::CA_FILE;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore, StreamOwned};

use super::setup::Setup;
use super::tls::read_single_cert;
use super::{Check, DoctorOptions, one_line};

/// The largest answer read.
const ANSWER_LIMIT: usize = 256 * 1024;

/// What is on the port.
enum Found {
    Free,
    /// The agent, trusted through our CA.
    Ours {
        version: String,
    },
    /// An eID agent whose certificate our CA did not sign.
    OtherAgent {
        version: String,
    },
    /// Something else (plain TCP, another HTTPS server, no answer).
    Other(String),
}

/// The `port` check.
pub(super) fn check(options: &DoctorOptions, setup: &Setup) -> Check {
    let port = setup.port;
    if port == 0 {
        return Check::skipped("port", "port 0 in the configuration: any free port");
    }
    let mut roots = Vec::new();
    if let Some(dir) = &setup.config_dir {
        roots.extend(read_single_cert(&dir.join("tls").join(CA_FILE)).ok());
    }
    roots.extend(read_single_cert(&Layout::system(&options.root).tls_dir().join(CA_FILE)).ok());
    let find = format!("ss -ltnp 'sport = :{port}'");
    match probe(port, &roots, options.timeout) {
        Found::Free => Check::ok(
            "port",
            format!("127.0.0.1:{port} is free (the agent is not running)"),
        ),
        Found::Ours { version } => Check::ok(
            "port",
            format!("127.0.0.1:{port} is this eID agent's (ours, version {version})"),
        ),
        Found::OtherAgent { version } => Check::failed(
            "port",
            format!(
                "127.0.0.1:{port} is taken by an eID agent (version {version}) whose certificate \
                 the local CA did not sign (another user's agent, or an old installation)"
            ),
        )
        .remedy(format!(
            "Find it with: {find}; stop it, then start this user's agent (systemctl --user \
             restart eid-agent)"
        )),
        Found::Other(what) => Check::failed(
            "port",
            format!("127.0.0.1:{port} is taken by another program"),
        )
        .detail(one_line(&what))
        .remedy(format!(
            "Find it with: {find}; stop it, or give the agent another port (port = N in agent.toml)"
        )),
    }
}

fn probe(port: u16, roots: &[Vec<u8>], timeout: Duration) -> Found {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let deadline = Instant::now() + timeout;
    let first = match TcpStream::connect_timeout(&addr, timeout) {
        Ok(sock) => sock,
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => return Found::Free,
        Err(e) => return Found::Other(format!("connecting failed: {e}")),
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut store = RootCertStore::empty();
    for der in roots {
        let _ = store.add(CertificateDer::from(der.clone()));
    }
    if !store.is_empty() {
        let config = ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map(|b| b.with_root_certificates(store).with_no_client_auth());
        if let Ok(config) = config {
            match status(first, config, port, deadline) {
                Ok(Some(version)) => return Found::Ours { version },
                Ok(None) => {
                    return Found::Other(
                        "it speaks TLS with the local CA's certificate but does not answer as \
                         the eID agent"
                            .to_owned(),
                    );
                }
                Err(Failure::Certificate(_)) => {}
                Err(Failure::Other(e)) => return Found::Other(e),
            }
        }
    } else {
        drop(first);
    }
    // Not our certificate (or no CA to trust): who is it?
    let again = match TcpStream::connect_timeout(&addr, timeout) {
        Ok(sock) => sock,
        Err(e) => return Found::Other(format!("connecting again failed: {e}")),
    };
    let verifier = Arc::new(AnyCertificate(Arc::clone(&provider)));
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map(|b| {
            b.dangerous()
                .with_custom_certificate_verifier(verifier)
                .with_no_client_auth()
        });
    let Ok(config) = config else {
        return Found::Other("TLS is unavailable".to_owned());
    };
    match status(again, config, port, deadline) {
        Ok(Some(version)) => Found::OtherAgent { version },
        Ok(None) => Found::Other(
            "an HTTPS server that is not the eID agent, with a certificate the local CA did not \
             sign"
                .to_owned(),
        ),
        Err(Failure::Certificate(e) | Failure::Other(e)) => Found::Other(e),
    }
}

enum Failure {
    Certificate(String),
    Other(String),
}

/// `GET /v1/status` over TLS: `Some(version)` when the answer is the agent's.
fn status(
    sock: TcpStream,
    mut config: ClientConfig,
    port: u16,
    deadline: Instant,
) -> Result<Option<String>, Failure> {
    let other = |what: &str, e: &dyn std::fmt::Display| Failure::Other(format!("{what}: {e}"));
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let left = deadline
        .saturating_duration_since(Instant::now())
        .max(Duration::from_millis(100));
    sock.set_read_timeout(Some(left))
        .map_err(|e| other("socket", &e))?;
    sock.set_write_timeout(Some(left))
        .map_err(|e| other("socket", &e))?;
    let name = ServerName::IpAddress(Ipv4Addr::LOCALHOST.into());
    let conn = ClientConnection::new(Arc::new(config), name).map_err(|e| other("TLS", &e))?;
    let mut tls = StreamOwned::new(conn, sock);
    while tls.conn.is_handshaking() {
        if Instant::now() > deadline {
            return Err(Failure::Other("no TLS handshake in time".to_owned()));
        }
        if let Err(e) = tls.conn.complete_io(&mut tls.sock) {
            let certificate = e
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
                .is_some_and(|r| matches!(r, rustls::Error::InvalidCertificate(_)));
            return Err(if certificate {
                Failure::Certificate(e.to_string())
            } else {
                other("it does not speak TLS", &e)
            });
        }
    }
    let request = format!(
        "GET /v1/status HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: application/json\r\n\
         Connection: close\r\n\r\n"
    );
    tls.write_all(request.as_bytes())
        .and_then(|()| tls.flush())
        .map_err(|e| other("sending the request", &e))?;
    let mut answer = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        if Instant::now() > deadline {
            break;
        }
        match tls.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                answer.extend_from_slice(buf.get(..n).unwrap_or_default());
                if answer.len() > ANSWER_LIMIT {
                    break;
                }
                if complete(&answer) {
                    break;
                }
            }
            // A server that closes without close_notify: what came is what there is.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(e) if answer.is_empty() => return Err(other("reading the answer", &e)),
            Err(_) => break,
        }
    }
    Ok(agent_version(&answer))
}

/// Headers and a `Content-Length` body fully received.
fn complete(answer: &[u8]) -> bool {
    let Some((head, body)) = split_head(answer) else {
        return false;
    };
    content_length(head).is_some_and(|n| body.len() >= n)
}

fn split_head(answer: &[u8]) -> Option<(&str, &[u8])> {
    let end = answer.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(answer.get(..end)?).ok()?;
    Some((head, answer.get(end + 4..)?))
}

fn content_length(head: &str) -> Option<usize> {
    head.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("content-length")
            .then(|| value.trim().parse().ok())?
    })
}

/// The agent's version when `answer` is a 200 with the agent's status JSON.
fn agent_version(answer: &[u8]) -> Option<String> {
    let (head, body) = split_head(answer)?;
    let status_line = head.lines().next()?;
    if status_line.split_whitespace().nth(1) != Some("200") {
        return None;
    }
    let chunked = head.lines().any(|l| {
        l.split_once(':').is_some_and(|(n, v)| {
            n.trim().eq_ignore_ascii_case("transfer-encoding")
                && v.to_ascii_lowercase().contains("chunked")
        })
    });
    let body = if chunked {
        dechunk(body)?
    } else {
        match content_length(head) {
            Some(n) => body.get(..n)?.to_vec(),
            None => body.to_vec(),
        }
    };
    let value: serde_json::Value = serde_json::from_slice(&body).ok()?;
    if value.get("api")?.as_str()? != "v1" {
        return None;
    }
    let version = value.get("version")?.as_str()?;
    (!version.is_empty() && version.len() < 64).then(|| one_line(version))
}

fn dechunk(mut body: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = body.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(body.get(..line_end)?).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        body = body.get(line_end + 2..)?;
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(body.get(..size)?);
        body = body.get(size + 2..)?;
        if out.len() > ANSWER_LIMIT {
            return None;
        }
    }
}

/// Accepts any certificate (signatures still checked): used only to ask a server that is not
/// ours what it is, never to send anything but `GET /v1/status`.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_the_agent_status_and_nothing_else() {
        let ok =
            b"HTTP/1.1 200 OK\r\ncontent-length: 27\r\n\r\n{\"version\":\"1.2\",\"api\":\"v1\"}";
        assert_eq!(
            agent_version(&ok[..]),
            None,
            "content-length 27 cuts the JSON"
        );
        let ok =
            b"HTTP/1.1 200 OK\r\ncontent-length: 28\r\n\r\n{\"version\":\"1.2\",\"api\":\"v1\"}";
        assert_eq!(agent_version(&ok[..]).as_deref(), Some("1.2"));
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"ver\r\n15\r\nsion\":\"9\",\"api\":\"v1\"}\r\n0\r\n\r\n";
        assert_eq!(agent_version(&chunked[..]).as_deref(), Some("9"));
        for hostile in [
            &b"HTTP/1.1 404 Not Found\r\n\r\n{\"version\":\"1\",\"api\":\"v1\"}"[..],
            b"HTTP/1.1 200 OK\r\n\r\n{\"version\":\"1\"}",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            b"\r\n\r\n",
            b"",
            b"SSH-2.0-OpenSSH_9.2\r\n",
        ] {
            assert_eq!(agent_version(hostile), None);
        }
    }
}
