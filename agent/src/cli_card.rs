//! `eid-agent card ...`: Citizen Card commands (identity, photo, certificates, PINs, signatures).
//!
//! Everything card-shaped goes through `eid_card::pteid`; this module only parses arguments,
//! asks for PINs and prints. PINs are read from the terminal without echo, or from stdin (one per
//! line) with `--pin-stdin`; never from the command line. Exit codes as the rest of the CLI:
//! 0 success, 2 failure (with the error report on stderr, or as JSON on stdout under `--json`).

use std::io::{BufRead, Write};
use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};
use eid_card::Error;
use eid_card::emrtd::{self, AccessKey};
use eid_card::pcsc_transport::{PcscContext, PcscTransport};
use eid_card::pteid::{self, HashAlg, KeyRef, Pin, PinRef, PinStatus, PteidCard, Puk, RsaPadding};
use eid_protocols::pa::CscaStore;
use zeroize::Zeroizing;

/// `eid-agent card`.
#[derive(Args, Debug)]
pub struct CardArgs {
    /// The reader to use (default: the first reader with a card).
    #[arg(long, global = true)]
    pub reader: Option<String>,
    /// One JSON document on stdout.
    #[arg(long, global = true)]
    pub json: bool,
    /// Read PINs from stdin, one per line, instead of the terminal (for scripts and tests).
    #[arg(long, global = true)]
    pub pin_stdin: bool,
    /// The card access number printed on the front of a CC2, to use it contactless (PACE, then
    /// every command under secure messaging). Not a secret like a PIN: it only opens the radio
    /// channel.
    #[arg(long, global = true, value_name = "DIGITS")]
    pub can: Option<String>,
    #[command(subcommand)]
    pub command: CardCommand,
}

#[derive(Subcommand, Debug)]
pub enum CardCommand {
    /// Which card, which reader, and the state of each PIN.
    Info,
    /// The citizen's identity and the check of the card's security object (SOD).
    Identity {
        /// Only these fields (comma-separated JSON names, e.g. `surname,given_names`).
        #[arg(long, value_delimiter = ',')]
        fields: Vec<String>,
        /// Trusted issuer certificates (PEM or DER file) to chain the SOD signer to.
        #[arg(long)]
        trust: Vec<PathBuf>,
    },
    /// The CC1 address (asks for the address PIN).
    Address,
    /// Writes the photo as PNG.
    Photo {
        #[arg(long)]
        out: PathBuf,
        /// Also write the photo as stored (JPEG 2000).
        #[arg(long)]
        raw_out: Option<PathBuf>,
    },
    /// The certificates on the card.
    Certs {
        /// Write each certificate as DIR/<kind>.pem.
        #[arg(long)]
        pem: Option<PathBuf>,
    },
    /// PIN status, verification, change and unblocking.
    Pin {
        #[command(subcommand)]
        command: PinCommand,
    },
    /// Signs a digest with the authentication or signature key (asks for its PIN).
    Sign {
        #[arg(long, value_enum)]
        key: KeyArg,
        #[arg(long, value_enum, default_value = "sha256")]
        hash: HashArg,
        /// The digest, in hex.
        #[arg(long, conflicts_with = "file", required_unless_present = "file")]
        digest: Option<String>,
        /// A file to hash and sign.
        #[arg(long)]
        file: Option<PathBuf>,
        /// Output form of an ECDSA signature (RSA signatures have one form).
        #[arg(long, value_enum, default_value = "der")]
        format: FormatArg,
        /// RSA-PSS instead of PKCS#1 v1.5 (CC1 cards that offer it).
        #[arg(long)]
        pss: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum PinCommand {
    /// Tries left for each PIN (no try is spent).
    Status,
    /// Verifies a PIN.
    Verify {
        #[arg(long, value_enum)]
        pin: PinArg,
    },
    /// Changes a PIN (asks for the current one, then the new one twice).
    Change {
        #[arg(long, value_enum)]
        pin: PinArg,
    },
    /// Unblocks a PIN with the PUK, optionally setting a new PIN.
    Unblock {
        #[arg(long, value_enum)]
        pin: PinArg,
        /// Keep the current PIN value: only reset its counter.
        #[arg(long)]
        keep_pin: bool,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum PinArg {
    Auth,
    Sign,
    Address,
}

impl From<PinArg> for PinRef {
    fn from(p: PinArg) -> PinRef {
        match p {
            PinArg::Auth => PinRef::Auth,
            PinArg::Sign => PinRef::Sign,
            PinArg::Address => PinRef::Address,
        }
    }
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum KeyArg {
    Auth,
    Sign,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum HashArg {
    Sha256,
    Sha384,
    Sha512,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum FormatArg {
    Der,
    Raw,
}

/// A failure of the command: the card's, or a local one (files, arguments).
enum Failure {
    Card(Error),
    Local { code: &'static str, message: String },
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Card(e)
    }
}

fn local(code: &'static str, message: impl Into<String>) -> Failure {
    Failure::Local {
        code,
        message: message.into(),
    }
}

/// Runs `eid-agent card ...`. Card errors are returned for the common report; local errors
/// (files, arguments) are reported here in the same shape and end the process with code 2.
pub fn run(args: CardArgs) -> Result<(), Error> {
    match execute(&args) {
        Ok(()) => Ok(()),
        Err(Failure::Card(e)) => Err(e),
        Err(Failure::Local { code, message }) => {
            if args.json {
                println!(
                    "{}",
                    serde_json::json!({ "error": { "code": code, "message": message,
                        "remedy": "Check the command's arguments and files.", "retryable": false } })
                );
            } else {
                eprintln!("error: {message}\n  code: {code}");
            }
            std::process::exit(2);
        }
    }
}

/// Where PINs come from.
struct PinSource {
    stdin: bool,
}

impl PinSource {
    fn read(&self, prompt: &str) -> Result<Zeroizing<String>, Failure> {
        if self.stdin {
            let mut line = Zeroizing::new(String::new());
            let n = std::io::stdin()
                .lock()
                .read_line(&mut line)
                .map_err(|e| local("pin-input", format!("reading the PIN from stdin: {e}")))?;
            if n == 0 {
                return Err(local("pin-input", "stdin ended before the PIN"));
            }
            let trimmed = Zeroizing::new(line.trim_end_matches(['\r', '\n']).to_owned());
            Ok(trimmed)
        } else {
            rpassword::prompt_password(prompt)
                .map(Zeroizing::new)
                .map_err(|e| {
                    local(
                        "pin-input",
                        format!("reading the PIN from the terminal: {e}"),
                    )
                })
        }
    }

    fn pin(&self, prompt: &str) -> Result<Pin, Failure> {
        let text = self.read(prompt)?;
        Ok(Pin::new(&text)?)
    }

    fn puk(&self, prompt: &str) -> Result<Puk, Failure> {
        let text = self.read(prompt)?;
        Ok(Puk::new(&text)?)
    }

    /// A new PIN typed twice (once with `--pin-stdin`).
    fn new_pin(&self, what: &str) -> Result<Pin, Failure> {
        let first = self.read(&format!("New {what}: "))?;
        if !self.stdin {
            let again = self.read(&format!("New {what} again: "))?;
            if *again != *first {
                return Err(local("pin-mismatch", "the two new PINs differ"));
            }
        }
        Ok(Pin::new(&first)?)
    }
}

fn pin_label(pin: PinRef) -> &'static str {
    match pin {
        PinRef::Auth => "authentication PIN",
        PinRef::Sign => "signature PIN",
        PinRef::Address => "address PIN",
    }
}

fn connect(reader: Option<&str>) -> Result<(PcscContext, PcscTransport), Error> {
    let context = PcscContext::establish()?;
    let transport = match reader {
        Some(name) => context.connect(name)?,
        None => context.connect_first_card()?,
    };
    Ok((context, transport))
}

fn print_json(value: &serde_json::Value) {
    println!("{value}");
}

fn execute(args: &CardArgs) -> Result<(), Failure> {
    let (_context, mut transport) = connect(args.reader.as_deref())?;
    let reader = eid_card::Transport::reader_name(&transport).to_owned();
    let caps = eid_card::Transport::capabilities(&transport);
    let atr = eid_card::hex(eid_card::Transport::atr(&transport));
    let pins = PinSource {
        stdin: args.pin_stdin,
    };
    let needs_pin = matches!(
        args.command,
        CardCommand::Address
            | CardCommand::Sign { .. }
            | CardCommand::Pin {
                command: PinCommand::Verify { .. }
                    | PinCommand::Change { .. }
                    | PinCommand::Unblock { .. }
            }
    );
    if needs_pin && caps.pinpad.has_pinpad() {
        eprintln!(
            "note: reader {reader:?} has a PIN pad, but PIN pad entry is not supported yet; \
             the PIN is asked here instead."
        );
    }
    let contactless_cc2 = eid_card::Transport::atr(&transport) == pteid::CC2_CONTACTLESS_ATR;
    let result = match &args.can {
        Some(can) => {
            let can = AccessKey::can(can).map_err(|e| local("bad-can", e.to_string()))?;
            let mut secure = emrtd::open_contactless_cc2(eid_card::Reborrow(&mut transport), &can)?;
            let mut card = PteidCard::open(&mut secure)?;
            run_command(&mut card, args, &pins, &reader, &atr, false)
        }
        None if contactless_cc2 => Err(local(
            "can-required",
            "this Citizen Card is on a contactless reader: give the 6-digit card access number \
             printed on its front with --can",
        )),
        None => {
            let mut card = PteidCard::open(&mut transport)?;
            run_command(
                &mut card,
                args,
                &pins,
                &reader,
                &atr,
                caps.pinpad.has_pinpad(),
            )
        }
    };
    let _ = transport.disconnect();
    result
}

fn run_command(
    card: &mut PteidCard<'_>,
    args: &CardArgs,
    pins: &PinSource,
    reader: &str,
    atr: &str,
    pinpad: bool,
) -> Result<(), Failure> {
    let json = args.json;
    match &args.command {
        CardCommand::Info => {
            let generation = card.generation();
            let mut statuses = Vec::new();
            for pin in PinRef::ALL {
                if pin == PinRef::Address && generation == eid_card::pteid::Generation::Cc2 {
                    continue;
                }
                statuses.push((pin, card.pin_status(pin)?));
            }
            if json {
                let pins: serde_json::Map<String, serde_json::Value> = statuses
                    .iter()
                    .map(|(p, s)| (p.name().to_owned(), serde_json::json!(s)))
                    .collect();
                print_json(&serde_json::json!({
                    "reader": reader, "atr": atr, "pinpad": pinpad,
                    "card": generation.kind(), "generation": generation, "pins": pins,
                }));
            } else {
                println!("Reader:  {reader}");
                println!("ATR:     {atr}");
                println!("Card:    {}", generation.kind().name);
                if pinpad {
                    println!("PIN pad: present (not used yet)");
                }
                for (pin, status) in statuses {
                    println!(
                        "{:<22} {}",
                        format!("{}:", pin_label(pin)),
                        status_text(status)
                    );
                }
            }
        }
        CardCommand::Identity { fields, trust } => {
            let anchors = load_anchors(trust)?;
            let identity = card.read_identity()?;
            let sod = card.verify_sod(
                &identity,
                None,
                anchors.as_ref(),
                time::OffsetDateTime::now_utc(),
            )?;
            let mut value =
                serde_json::to_value(&identity).map_err(|e| local("internal", e.to_string()))?;
            if let (false, Some(map)) = (fields.is_empty(), value.as_object_mut()) {
                for f in fields {
                    if !map.contains_key(f) {
                        return Err(local("unknown-field", format!("no identity field {f:?}")));
                    }
                }
                map.retain(|k, _| fields.iter().any(|f| f == k));
            }
            if json {
                print_json(&serde_json::json!({ "identity": value, "sod": sod }));
            } else {
                print_fields(&value);
                println!("SOD integrity:   {}", check_text(&sod.integrity));
                println!("SOD signer chain: {}", check_text(&sod.certificate_chain));
            }
        }
        CardCommand::Address => {
            if card.pin_status(PinRef::Address)? != PinStatus::Verified {
                let pin = pins.pin("Address PIN: ")?;
                card.verify_pin(PinRef::Address, &pin)?;
            }
            let address = card.read_address()?;
            let value = serde_json::to_value(&address.address)
                .map_err(|e| local("internal", e.to_string()))?;
            if json {
                print_json(&serde_json::json!({ "address": value }));
            } else {
                print_fields(&value);
            }
        }
        CardCommand::Photo { out, raw_out } => {
            let identity = card.read_identity()?;
            let png = identity.photo.to_png()?;
            write_file(out, &png)?;
            if let Some(raw) = raw_out {
                write_file(raw, &identity.photo.jp2)?;
            }
            if json {
                print_json(&serde_json::json!({
                    "photo": { "png": out, "png_bytes": png.len(), "stored_bytes": identity.photo.jp2.len() }
                }));
            } else {
                println!(
                    "Photo written to {} ({} bytes PNG, {} bytes as stored)",
                    out.display(),
                    png.len(),
                    identity.photo.jp2.len()
                );
            }
        }
        CardCommand::Certs { pem } => {
            let certs = card.read_certificates()?;
            if let Some(dir) = pem {
                std::fs::create_dir_all(dir)
                    .map_err(|e| local("io", format!("{}: {e}", dir.display())))?;
                for c in &certs {
                    let path = dir.join(format!("{}.pem", c.kind.name()));
                    write_file(&path, c.to_pem()?.as_bytes())?;
                }
            }
            if json {
                print_json(&serde_json::json!({ "certificates": certs }));
            } else {
                for c in &certs {
                    println!("{}:", c.kind.name());
                    println!("  subject:  {}", c.subject);
                    println!("  issuer:   {}", c.issuer);
                    println!("  serial:   {}", c.serial);
                    println!("  valid:    {} .. {}", c.not_before, c.not_after);
                    println!("  key:      {}", c.key);
                    if let Some(id) = &c.civil_id {
                        println!("  civil id: {id}");
                    }
                }
            }
        }
        CardCommand::Pin { command } => pin_command(card, command, pins, json)?,
        CardCommand::Sign {
            key,
            hash,
            digest,
            file,
            format,
            pss,
        } => {
            let key = match key {
                KeyArg::Auth => KeyRef::Auth,
                KeyArg::Sign => KeyRef::Sign,
            };
            let hash = match hash {
                HashArg::Sha256 => HashAlg::Sha256,
                HashArg::Sha384 => HashAlg::Sha384,
                HashArg::Sha512 => HashAlg::Sha512,
            };
            let digest = match (digest, file) {
                (Some(hex_digest), _) => hex::decode(hex_digest.trim())
                    .map_err(|e| local("bad-digest", format!("--digest is not hex: {e}")))?,
                (None, Some(path)) => {
                    let data = std::fs::read(path)
                        .map_err(|e| local("io", format!("{}: {e}", path.display())))?;
                    openssl::hash::hash(hash.message_digest(), &data)
                        .map_err(|e| local("internal", e.to_string()))?
                        .to_vec()
                }
                (None, None) => return Err(local("usage", "give --digest or --file")),
            };
            if digest.len() != hash.digest_len() {
                return Err(local(
                    "bad-digest",
                    format!(
                        "a {hash:?} digest has {} bytes, not {}",
                        hash.digest_len(),
                        digest.len()
                    ),
                ));
            }
            if card.pin_status(key.pin())? != PinStatus::Verified {
                let pin = pins.pin(&format!("{}: ", capitalised(pin_label(key.pin()))))?;
                card.verify_pin(key.pin(), &pin)?;
            }
            let padding = if *pss {
                RsaPadding::Pss
            } else {
                RsaPadding::Pkcs1v15
            };
            let signature = card.sign(key, hash, &digest, padding)?;
            let out = match (format, &signature.der) {
                (FormatArg::Der, Some(der)) => der.clone(),
                _ => signature.raw.clone(),
            };
            if json {
                print_json(&serde_json::json!({
                    "signature": hex::encode_upper(&out),
                    "scheme": signature.scheme,
                    "key": signature.key,
                    "hash": signature.hash,
                    "raw": hex::encode_upper(&signature.raw),
                    "der": signature.der.as_ref().map(hex::encode_upper),
                }));
            } else {
                println!("{}", hex::encode_upper(&out));
            }
        }
    }
    Ok(())
}

fn pin_command(
    card: &mut PteidCard<'_>,
    command: &PinCommand,
    pins: &PinSource,
    json: bool,
) -> Result<(), Failure> {
    match command {
        PinCommand::Status => {
            let mut out = serde_json::Map::new();
            for pin in PinRef::ALL {
                if pin == PinRef::Address && card.generation() == eid_card::pteid::Generation::Cc2 {
                    continue;
                }
                let status = card.pin_status(pin)?;
                if !json {
                    println!(
                        "{:<22} {}",
                        format!("{}:", pin_label(pin)),
                        status_text(status)
                    );
                }
                out.insert(pin.name().to_owned(), serde_json::json!(status));
            }
            if json {
                print_json(&serde_json::json!({ "pins": out }));
            }
        }
        PinCommand::Verify { pin } => {
            let pin = PinRef::from(*pin);
            let value = pins.pin(&format!("{}: ", capitalised(pin_label(pin))))?;
            card.verify_pin(pin, &value)?;
            done(json, pin, "verified");
        }
        PinCommand::Change { pin } => {
            let pin = PinRef::from(*pin);
            let old = pins.pin(&format!("Current {}: ", pin_label(pin)))?;
            let new = pins.new_pin(pin_label(pin))?;
            card.change_pin(pin, &old, &new)?;
            done(json, pin, "changed");
        }
        PinCommand::Unblock { pin, keep_pin } => {
            let pin = PinRef::from(*pin);
            let puk = pins.puk(&format!("PUK for the {}: ", pin_label(pin)))?;
            let new = if *keep_pin {
                None
            } else {
                Some(pins.new_pin(pin_label(pin))?)
            };
            card.unblock_pin(pin, &puk, new.as_ref())?;
            done(json, pin, "unblocked");
        }
    }
    Ok(())
}

fn done(json: bool, pin: PinRef, what: &str) {
    if json {
        print_json(&serde_json::json!({ "pin": pin, "result": what }));
    } else {
        println!("The {} was {what}.", pin_label(pin));
    }
}

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(first) => first.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

fn status_text(status: PinStatus) -> String {
    match status {
        PinStatus::Verified => "verified".to_owned(),
        PinStatus::NotVerified { tries_left } => format!("{tries_left} tries left"),
        PinStatus::Blocked => "BLOCKED (unblock with the PUK)".to_owned(),
    }
}

fn check_text(check: &eid_protocols::pa::Check) -> String {
    match check {
        eid_protocols::pa::Check::Passed => "valid".to_owned(),
        eid_protocols::pa::Check::Failed { reason } => format!("INVALID: {reason}"),
        eid_protocols::pa::Check::NotPerformed { reason } => format!("not checked ({reason})"),
    }
}

/// Prints a JSON object's fields as `name: value` lines.
fn print_fields(value: &serde_json::Value) {
    let Some(map) = value.as_object() else {
        println!("{value}");
        return;
    };
    for (k, v) in map {
        let text = match v {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Null => "-".to_owned(),
            serde_json::Value::Array(items) => items
                .iter()
                .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_owned))
                .collect::<Vec<_>>()
                .join(" / "),
            serde_json::Value::Object(o) => match (o.get("date"), o.get("raw"), o.get("modulus")) {
                (Some(serde_json::Value::String(d)), _, _) => d.clone(),
                (_, Some(serde_json::Value::String(r)), _) => format!("{r} (not a valid date)"),
                // The card's own RSA key (CC1 ID file): its size, not a wall of hex.
                (_, _, Some(serde_json::Value::String(m))) => {
                    format!(
                        "RSA, {} bits (--json for the key)",
                        m.trim_start_matches('0').len() * 4
                    )
                }
                _ => v.to_string(),
            },
            other => other.to_string(),
        };
        println!("{:<24} {text}", format!("{k}:"));
    }
}

fn write_file(path: &std::path::Path, bytes: &[u8]) -> Result<(), Failure> {
    let mut f =
        std::fs::File::create(path).map_err(|e| local("io", format!("{}: {e}", path.display())))?;
    f.write_all(bytes)
        .map_err(|e| local("io", format!("{}: {e}", path.display())))
}

fn load_anchors(paths: &[PathBuf]) -> Result<Option<CscaStore>, Failure> {
    if paths.is_empty() {
        return Ok(None);
    }
    let mut store = CscaStore::new();
    for path in paths {
        let bytes =
            std::fs::read(path).map_err(|e| local("io", format!("{}: {e}", path.display())))?;
        store
            .add_file(&bytes, time::OffsetDateTime::now_utc())
            .map_err(|e| local("bad-trust-file", format!("{}: {e}", path.display())))?;
    }
    Ok(Some(store))
}
