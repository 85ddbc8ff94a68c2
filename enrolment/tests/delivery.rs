//! Delivery tests: contact parsing (including hostile strings), masking, the development
//! outbox, the SMTP adapter against a minimal fake SMTP server, the SMS gateway adapter against
//! a local HTTP listener, and the router.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::Arc;

use base64::Engine as _;
use eid_enrolment::delivery::{
    CodeMessage, CodeSender, Contact, ContactError, DeliveryError, DevOutbox, HttpSmsGateway,
    OUTBOX_RECENT, Purpose, Router, SmtpSender, read_outbox,
};
use eid_enrolment::secrets::new_id;
use proptest::prelude::*;
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::TcpListener;
use zeroize::Zeroizing;

fn message(to: &str, code: &str, purpose: Purpose) -> CodeMessage {
    CodeMessage {
        to: Contact::parse(to).unwrap(),
        code: Zeroizing::new(code.to_owned()),
        purpose,
        expires_in_secs: 300,
    }
}

fn temp_dir() -> std::path::PathBuf {
    std::env::temp_dir().join(format!("eid-delivery-test-{}", new_id().unwrap()))
}

// ---------------------------------------------------------------------------------------------
// Contacts
// ---------------------------------------------------------------------------------------------

#[test]
fn phones_parse_to_e164() {
    for (input, canonical) in [
        ("+351912345678", "+351912345678"),
        ("  +351 912 345 678 ", "+351912345678"),
        ("+351-912-345-678", "+351912345678"),
        ("912345678", "+351912345678"),
        ("912 345 678", "+351912345678"),
        ("00351912345678", "+351912345678"),
        ("+44 (20) 7946.0958", "+442079460958"),
        ("+1 202 555 0143", "+12025550143"),
        ("+49 30 123456", "+4930123456"),
    ] {
        let contact = Contact::parse(input).unwrap();
        assert_eq!(contact, Contact::Phone(canonical.to_owned()), "{input}");
        assert_eq!(contact.as_str(), canonical);
        assert_eq!(contact.kind(), "phone");
    }
}

#[test]
fn bad_phones_are_refused() {
    for input in [
        "12345",
        "212345678",         // 9 digits not starting with 9: country code needed
        "+3519123",          // too short (7 digits)
        "+1234567890123456", // 16 digits
        "+351 912 345 67a",
        "++351912345678",
        "+0351912345678",
        "+351\u{0}912345678",
        "+351\n912345678",
        "+٣٥١٩١٢٣٤٥٦٧٨", // non-ASCII digits
        "tel:+351912345678",
    ] {
        assert_eq!(Contact::parse(input), Err(ContactError::Phone), "{input:?}");
    }
    assert_eq!(Contact::parse(""), Err(ContactError::Empty));
    assert_eq!(Contact::parse("  \t "), Err(ContactError::Empty));
    assert_eq!(Contact::parse(&"9".repeat(600)), Err(ContactError::TooLong));
    assert_eq!(ContactError::Phone.code(), "contact-invalid");
}

#[test]
fn emails_parse_with_lowercased_domain() {
    for (input, canonical) in [
        ("ana@example.org", "ana@example.org"),
        (" Ana.Silva@Example.ORG ", "Ana.Silva@example.org"),
        ("a+tag@sub.example.pt", "a+tag@sub.example.pt"),
        (
            "o'neil@xn--bcher-kva.example",
            "o'neil@xn--bcher-kva.example",
        ),
    ] {
        let contact = Contact::parse(input).unwrap();
        assert_eq!(contact, Contact::Email(canonical.to_owned()), "{input}");
        assert_eq!(contact.kind(), "email");
    }
}

#[test]
fn bad_emails_are_refused() {
    let long_local = format!("{}@example.org", "a".repeat(65));
    let long_total = format!("a@{}.org", "b".repeat(250));
    for input in [
        "@example.org",
        "ana@",
        "ana@@example.org",
        "ana@b@example.org",
        "ana@localhost",
        "ana@example.123",
        ".ana@example.org",
        "ana.@example.org",
        "a..na@example.org",
        "ana@-example.org",
        "ana@example-.org",
        "ana@exa_mple.org",
        "ana@example..org",
        "\"ana\"@example.org",
        "ana silva@example.org",
        "ana@example.org\r\nBcc: victim@example.org",
        "ana@example.org>",
        "<ana@example.org",
        "ana\u{0}@example.org",
        "anä@example.org",
        "ana@exämple.org",
        long_local.as_str(),
        long_total.as_str(),
    ] {
        assert_eq!(Contact::parse(input), Err(ContactError::Email), "{input:?}");
    }
}

#[test]
fn masking_hides_most_of_the_contact() {
    let cases = [
        ("+351912345678", "+351 *** *** 678"),
        ("+12025550143", "+1 *** **** 143"),
        ("+442079460958", "+44 *** **** 958"),
        ("ana@example.org", "a***@example.org"),
        ("Ana.Silva@example.org", "A***@example.org"),
    ];
    for (input, masked) in cases {
        let contact = Contact::parse(input).unwrap();
        let got = contact.masked();
        // Groups of at most three stars; the exact grouping of long numbers may differ.
        assert_eq!(
            got.replace([' ', '*'], ""),
            masked.replace([' ', '*'], ""),
            "{input}: {got}"
        );
        assert_eq!(
            got.matches('*').count(),
            masked.matches('*').count(),
            "{input}: {got}"
        );
        assert_eq!(contact.to_string(), got, "Display is the masked form");
    }
    assert_eq!(
        Contact::parse("+351912345678").unwrap().masked(),
        "+351 *** *** 678"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Any string: parse never panics; what it accepts is canonical (parsing it again gives
    /// the same), short, printable ASCII without separators that could inject anything.
    #[test]
    fn parse_never_panics_and_accepts_only_canonical_forms(text in ".{0,300}") {
        if let Ok(contact) = Contact::parse(&text) {
            let canonical = contact.as_str();
            prop_assert!(canonical.len() <= 254);
            prop_assert!(canonical.bytes().all(|b| b.is_ascii_graphic()));
            prop_assert!(!canonical.contains(['<', '>', '"', ',', ';', '\\', '(', ')']));
            let again = Contact::parse(canonical);
            prop_assert_eq!(again, Ok(contact.clone()));
            let masked = contact.masked();
            prop_assert!(masked.contains('*'));
        }
    }

    /// Phone-shaped strings: accepted ones are E.164 and their mask keeps at most the country
    /// code and the last three digits.
    #[test]
    fn phone_like_strings(text in "[+]?[0-9 ().-]{0,24}") {
        if let Ok(contact) = Contact::parse(&text) {
            let canonical = contact.as_str();
            prop_assert!(canonical.starts_with('+'));
            prop_assert!((9..=16).contains(&canonical.len()));
            let masked = contact.masked();
            let shown = masked.chars().filter(|c| c.is_ascii_digit()).count();
            prop_assert!(shown <= 6, "{} -> {}", canonical, masked);
            prop_assert!(masked.ends_with(&canonical[canonical.len() - 3..]));
        }
    }

    /// E-mail-shaped strings with hostile bytes sprinkled in.
    #[test]
    fn email_like_strings(
        local in "[a-zA-Z0-9.+_\r\n\0 <>\"@-]{0,70}",
        domain in "[a-zA-Z0-9.\r\n\0 _-]{0,70}",
    ) {
        let text = format!("{local}@{domain}");
        if let Ok(contact) = Contact::parse(&text) {
            prop_assert_eq!(contact.kind(), "email");
            let canonical = contact.as_str();
            prop_assert!(!canonical.contains(['\r', '\n', '\0', ' ', '<', '>', '"']));
            prop_assert_eq!(canonical.matches('@').count(), 1);
            let domain_part = canonical.split('@').nth(1).unwrap();
            prop_assert_eq!(domain_part.to_ascii_lowercase(), domain_part);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Messages
// ---------------------------------------------------------------------------------------------

#[test]
fn message_text_has_the_code_and_lifetime() {
    let m = message("+351912345678", "042917", Purpose::Enrolment);
    let text = m.text();
    assert!(text.contains("042917"), "{}", text.as_str());
    assert!(text.contains("5 minutes"));
    assert!(text.len() <= 160, "one SMS: {}", text.len());
    let m = message("+351912345678", "042917", Purpose::Login);
    assert!(m.text().contains("log in"));
    assert_eq!(Purpose::Login.as_str(), "login");
    assert_eq!(Purpose::Enrolment.as_str(), "enrolment");
    // Debug output (what ends up in logs by accident) has neither the code nor the number.
    let debug = format!("{m:?}");
    assert!(
        !debug.contains("042917") && !debug.contains("912345678"),
        "{debug}"
    );
    let err = DeliveryError::Rejected(500);
    assert!(!err.to_string().contains("042917"));
    assert_eq!(err.code(), "delivery-failed");
}

// ---------------------------------------------------------------------------------------------
// Development outbox
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn outbox_writes_json_lines_and_keeps_recent() {
    let dir = temp_dir();
    let path = dir.join("nested").join("outbox.jsonl");
    let outbox = DevOutbox::new(&path).unwrap();
    assert_eq!(outbox.name(), "outbox");
    assert!(outbox.recent().is_empty());
    outbox
        .send(&message("+351912345678", "111111", Purpose::Enrolment))
        .await
        .unwrap();
    outbox
        .send(&message("ana@example.org", "222222", Purpose::Login))
        .await
        .unwrap();

    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2);
    let first: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(first["to"], "+351912345678");
    assert_eq!(first["channel"], "phone");
    assert_eq!(first["purpose"], "enrolment");
    assert_eq!(first["code"], "111111");
    assert!(first["text"].as_str().unwrap().contains("111111"));
    let time = first["time"].as_str().unwrap();
    time::OffsetDateTime::parse(time, &time::format_description::well_known::Rfc3339).unwrap();
    let keys: Vec<&String> = first.as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), 6, "{keys:?}");

    // Newest first, in memory and from the file.
    let recent = outbox.recent();
    assert_eq!(recent[0].code, "222222");
    assert_eq!(recent[0].channel, "email");
    assert_eq!(recent[1].code, "111111");
    assert_eq!(read_outbox(&path).unwrap(), recent);

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "codes in clear: owner only");
    }

    // Reopening picks up the file; only the last OUTBOX_RECENT stay in memory.
    for i in 0..OUTBOX_RECENT {
        outbox
            .send(&message(
                "+351912345678",
                &format!("{i:06}"),
                Purpose::Login,
            ))
            .await
            .unwrap();
    }
    assert_eq!(outbox.recent().len(), OUTBOX_RECENT);
    assert_eq!(outbox.recent()[0].code, format!("{:06}", OUTBOX_RECENT - 1));
    let reopened = DevOutbox::new(&path).unwrap();
    assert_eq!(reopened.recent(), outbox.recent());
    assert_eq!(read_outbox(&path).unwrap().len(), OUTBOX_RECENT + 2);

    // A corrupt line: read_outbox reports it, the outbox skips it.
    std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap()
        .write_all_sync(b"not json\n");
    assert!(matches!(
        read_outbox(&path),
        Err(DeliveryError::OutboxFormat { line, .. }) if line == OUTBOX_RECENT + 3
    ));
    assert_eq!(DevOutbox::new(&path).unwrap().recent().len(), OUTBOX_RECENT);
    std::fs::remove_dir_all(dir).unwrap();
}

trait WriteAllSync {
    fn write_all_sync(self, bytes: &[u8]);
}
impl WriteAllSync for std::fs::File {
    fn write_all_sync(mut self, bytes: &[u8]) {
        std::io::Write::write_all(&mut self, bytes).unwrap();
    }
}

#[tokio::test]
async fn outbox_concurrent_sends_do_not_interleave() {
    let dir = temp_dir();
    let path = dir.join("outbox.jsonl");
    let outbox = Arc::new(DevOutbox::new(&path).unwrap());
    let mut tasks = Vec::new();
    for i in 0..32 {
        let outbox = outbox.clone();
        tasks.push(tokio::spawn(async move {
            outbox
                .send(&message(
                    "+351912345678",
                    &format!("{i:06}"),
                    Purpose::Login,
                ))
                .await
                .unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let entries = read_outbox(&path).unwrap();
    assert_eq!(entries.len(), 32);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn outbox_in_unwritable_place_is_an_error() {
    let err = DevOutbox::new(std::path::Path::new("/proc/eid-outbox/x.jsonl")).unwrap_err();
    assert!(matches!(err, DeliveryError::Io { .. }), "{err}");
}

// ---------------------------------------------------------------------------------------------
// SMTP, against a minimal fake server
// ---------------------------------------------------------------------------------------------

/// What the fake SMTP server saw.
#[derive(Debug, Default)]
struct SmtpCapture {
    commands: Vec<String>,
    data: String,
}

/// Serves one SMTP session on `listener`: 220 greeting, EHLO with AUTH, AUTH PLAIN, MAIL,
/// RCPT, DATA (captured up to the lone dot), QUIT. `reject_rcpt` answers 550 to RCPT.
async fn fake_smtp(listener: TcpListener, reject_rcpt: bool) -> SmtpCapture {
    let (socket, _) = listener.accept().await.unwrap();
    let (read, mut write) = socket.into_split();
    let mut lines = BufReader::new(read);
    let mut capture = SmtpCapture::default();
    write
        .write_all(b"220 fake.smtp.test ESMTP ready\r\n")
        .await
        .unwrap();
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await.unwrap() == 0 {
            break;
        }
        let command = line.trim_end().to_owned();
        capture.commands.push(command.clone());
        let verb = command
            .split(' ')
            .next()
            .unwrap_or_default()
            .to_ascii_uppercase();
        let reply: &[u8] = match verb.as_str() {
            "EHLO" | "HELO" => b"250-fake.smtp.test\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n",
            "AUTH" => b"235 2.7.0 authenticated\r\n",
            "MAIL" => b"250 2.1.0 ok\r\n",
            "RCPT" if reject_rcpt => b"550 5.1.1 no such user\r\n",
            "RCPT" => b"250 2.1.5 ok\r\n",
            "DATA" => {
                write
                    .write_all(b"354 end with <CRLF>.<CRLF>\r\n")
                    .await
                    .unwrap();
                loop {
                    line.clear();
                    if lines.read_line(&mut line).await.unwrap() == 0 {
                        break;
                    }
                    if line == ".\r\n" {
                        break;
                    }
                    capture.data.push_str(&line);
                }
                b"250 2.0.0 queued\r\n"
            }
            "RSET" | "NOOP" => b"250 ok\r\n",
            "QUIT" => {
                write.write_all(b"221 bye\r\n").await.unwrap();
                break;
            }
            _ => b"502 not implemented\r\n",
        };
        write.write_all(reply).await.unwrap();
    }
    capture
}

#[tokio::test]
async fn smtp_sends_the_code_to_the_fake_server() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(fake_smtp(listener, false));

    let sender = SmtpSender::new(
        &format!("smtp://mailer:s%40cret@127.0.0.1:{port}"),
        "eID enrolment <noreply@example.org>",
    )
    .unwrap();
    assert_eq!(sender.name(), "smtp");
    let debug = format!("{sender:?}");
    assert!(
        !debug.contains("s@cret") && !debug.contains("s%40cret"),
        "{debug}"
    );
    sender
        .send(&message("Ana@Example.org", "493817", Purpose::Enrolment))
        .await
        .unwrap();
    let capture = server.await.unwrap();

    let commands = capture.commands.join("\n");
    assert!(
        commands.contains("MAIL FROM:<noreply@example.org>"),
        "{commands}"
    );
    assert!(commands.contains("RCPT TO:<Ana@example.org>"), "{commands}");
    // AUTH PLAIN with the percent-decoded password.
    let auth = capture
        .commands
        .iter()
        .find(|c| c.starts_with("AUTH PLAIN"))
        .expect("AUTH PLAIN sent");
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(auth.trim_start_matches("AUTH PLAIN").trim())
        .unwrap();
    assert_eq!(decoded, b"\0mailer\0s@cret");
    assert!(capture.data.contains("493817"), "{}", capture.data);
    assert!(
        capture
            .data
            .contains("Subject: Your code to confirm your mobile key")
    );
    assert!(capture.data.contains("To: Ana@example.org"));
}

#[tokio::test]
async fn smtp_refusal_is_a_delivery_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(fake_smtp(listener, true));
    let sender =
        SmtpSender::new(&format!("smtp://127.0.0.1:{port}"), "noreply@example.org").unwrap();
    let err = sender
        .send(&message("ana@example.org", "493817", Purpose::Login))
        .await
        .unwrap_err();
    assert!(matches!(err, DeliveryError::Smtp(_)), "{err}");
    assert!(!err.to_string().contains("493817"));
    let capture = server.await.unwrap();
    assert!(capture.data.is_empty());
    assert!(!capture.commands.iter().any(|c| c.starts_with("AUTH")));
}

#[tokio::test]
async fn smtp_unreachable_and_wrong_channel() {
    // A port nobody listens on.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let sender =
        SmtpSender::new(&format!("smtp://127.0.0.1:{port}"), "noreply@example.org").unwrap();
    assert!(matches!(
        sender
            .send(&message("ana@example.org", "1", Purpose::Login))
            .await,
        Err(DeliveryError::Smtp(_))
    ));
    assert!(matches!(
        sender
            .send(&message("+351912345678", "1", Purpose::Login))
            .await,
        Err(DeliveryError::WrongChannel {
            sender: "smtp",
            kind: "phone"
        })
    ));
}

#[test]
fn smtp_configuration_is_checked() {
    for (url, from) in [
        ("http://mail.example.org", "noreply@example.org"),
        ("mail.example.org:587", "noreply@example.org"),
        ("smtp://", "noreply@example.org"),
        ("smtp://mail.example.org:99999", "noreply@example.org"),
        ("smtp://mail.example.org:x", "noreply@example.org"),
        ("smtp://u:%zz@mail.example.org", "noreply@example.org"),
        ("smtp://mail.example.org", "not an address"),
        ("smtp://mail exa.org", "noreply@example.org"),
    ] {
        assert!(
            matches!(SmtpSender::new(url, from), Err(DeliveryError::Config(_))),
            "{url} {from}"
        );
    }
    // Remote servers: STARTTLS required (smtp://) or implicit TLS (smtps://); IPv6 literals.
    SmtpSender::new("smtp://mail.example.org", "noreply@example.org").unwrap();
    SmtpSender::new("smtps://u:p@mail.example.org:465", "noreply@example.org").unwrap();
    SmtpSender::new("smtp://[::1]:2525", "noreply@example.org").unwrap();
    let d = format!(
        "{:?}",
        SmtpSender::new("smtp://mail.example.org", "noreply@example.org").unwrap()
    );
    assert!(d.contains("STARTTLS required"), "{d}");
    let d = format!(
        "{:?}",
        SmtpSender::new("smtp://localhost:25", "noreply@example.org").unwrap()
    );
    assert!(d.contains("plain, loopback"), "{d}");
}

// ---------------------------------------------------------------------------------------------
// SMS gateway, against a local HTTP listener
// ---------------------------------------------------------------------------------------------

/// What the fake gateway received.
#[derive(Debug)]
struct HttpCapture {
    request_line: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl HttpCapture {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Serves one HTTP/1.1 request and answers `status`.
async fn fake_gateway(listener: TcpListener, status: u16) -> HttpCapture {
    let (socket, _) = listener.accept().await.unwrap();
    let (read, mut write) = socket.into_split();
    let mut reader = BufReader::new(read);
    let mut request_line = String::new();
    reader.read_line(&mut request_line).await.unwrap();
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).await.unwrap();
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':').unwrap();
        headers.push((name.trim().to_owned(), value.trim().to_owned()));
    }
    let length: usize = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .map(|(_, v)| v.parse().unwrap())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).await.unwrap();
    let response = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}"
    );
    write.write_all(response.as_bytes()).await.unwrap();
    write.shutdown().await.unwrap();
    HttpCapture {
        request_line: request_line.trim_end().to_owned(),
        headers,
        body,
    }
}

#[tokio::test]
async fn sms_gateway_posts_json_with_bearer_token() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(fake_gateway(listener, 202));
    let gateway = HttpSmsGateway::new(
        &format!("http://127.0.0.1:{port}/v1/sms"),
        Zeroizing::new("tok-123\n".to_owned()),
    )
    .unwrap();
    assert_eq!(gateway.name(), "sms-gateway");
    assert!(!format!("{gateway:?}").contains("tok-123"));
    gateway
        .send(&message("912 345 678", "730451", Purpose::Login))
        .await
        .unwrap();
    let capture = server.await.unwrap();
    assert_eq!(capture.request_line, "POST /v1/sms HTTP/1.1");
    assert_eq!(capture.header("authorization"), Some("Bearer tok-123"));
    assert!(
        capture
            .header("content-type")
            .unwrap()
            .starts_with("application/json")
    );
    let body: serde_json::Value = serde_json::from_slice(&capture.body).unwrap();
    assert_eq!(body["to"], "+351912345678");
    assert!(body["text"].as_str().unwrap().contains("730451"));
    assert_eq!(body.as_object().unwrap().len(), 2);
}

#[tokio::test]
async fn sms_gateway_errors() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(fake_gateway(listener, 500));
    let gateway = HttpSmsGateway::new(
        &format!("http://localhost:{port}/sms"),
        Zeroizing::new("t".to_owned()),
    )
    .unwrap();
    let err = gateway
        .send(&message("+351912345678", "730451", Purpose::Login))
        .await
        .unwrap_err();
    assert!(matches!(err, DeliveryError::Rejected(500)), "{err}");
    server.await.unwrap();

    // Nobody listening.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let gateway = HttpSmsGateway::new(
        &format!("http://127.0.0.1:{port}/sms"),
        Zeroizing::new("t".to_owned()),
    )
    .unwrap();
    assert!(matches!(
        gateway
            .send(&message("+351912345678", "1", Purpose::Login))
            .await,
        Err(DeliveryError::Http(_))
    ));
    assert!(matches!(
        gateway
            .send(&message("ana@example.org", "1", Purpose::Login))
            .await,
        Err(DeliveryError::WrongChannel {
            sender: "sms-gateway",
            kind: "email"
        })
    ));
}

#[test]
fn sms_gateway_configuration_is_checked() {
    let token = || Zeroizing::new("t".to_owned());
    for url in [
        "http://sms.example.org/send",
        "http://10.0.0.1/send",
        "ftp://127.0.0.1/",
        "https://",
        "https://user:pw@sms.example.org/",
        "sms.example.org",
    ] {
        assert!(
            matches!(
                HttpSmsGateway::new(url, token()),
                Err(DeliveryError::Config(_))
            ),
            "{url}"
        );
    }
    for bad_token in ["", "  ", "a\rb"] {
        assert!(matches!(
            HttpSmsGateway::new(
                "https://sms.example.org/send",
                Zeroizing::new(bad_token.to_owned())
            ),
            Err(DeliveryError::Config(_))
        ));
    }
    HttpSmsGateway::new("https://sms.example.org/send", token()).unwrap();
    HttpSmsGateway::new("http://[::1]:8080/send", token()).unwrap();
    HttpSmsGateway::new("http://localhost/send", token()).unwrap();
}

// ---------------------------------------------------------------------------------------------
// Router
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn router_routes_by_contact_kind() {
    let dir = temp_dir();
    let sms = Arc::new(DevOutbox::new(&dir.join("sms.jsonl")).unwrap());
    let email = Arc::new(DevOutbox::new(&dir.join("email.jsonl")).unwrap());
    let router = Router {
        sms: Some(sms.clone()),
        email: Some(email.clone()),
    };
    assert_eq!(router.name(), "router");
    router
        .send(&message("+351912345678", "111111", Purpose::Login))
        .await
        .unwrap();
    router
        .send(&message("ana@example.org", "222222", Purpose::Login))
        .await
        .unwrap();
    assert_eq!(sms.recent().len(), 1);
    assert_eq!(sms.recent()[0].code, "111111");
    assert_eq!(email.recent().len(), 1);
    assert_eq!(email.recent()[0].code, "222222");
    assert!(router.supports(&Contact::parse("ana@example.org").unwrap()));

    let only_email = Router {
        sms: None,
        email: Some(email.clone()),
    };
    assert!(!only_email.supports(&Contact::parse("+351912345678").unwrap()));
    assert!(matches!(
        only_email
            .send(&message("+351912345678", "333333", Purpose::Login))
            .await,
        Err(DeliveryError::NoChannel("phone"))
    ));
    assert!(matches!(
        Router::default()
            .send(&message("ana@example.org", "333333", Purpose::Login))
            .await,
        Err(DeliveryError::NoChannel("email"))
    ));
    std::fs::remove_dir_all(dir).unwrap();
}
