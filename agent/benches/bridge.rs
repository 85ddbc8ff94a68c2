//! The bridge's cost, measured in one run on one virtual Citizen Card (CC2, P-256) behind the
//! real pcscd + vpcd:
//!
//! - authenticate through the bridge (HTTPS POST on a kept-alive connection: TLS, HTTP, origin
//!   checks, queue, consent decision, the pinentry dialog process, PIN, signature, card reset)
//!   against the same steps called directly on `eid_card` (open, certificate, PIN, sign, reset);
//! - the certificate read (no dialog) through the bridge against directly: the HTTP + TLS +
//!   queue overhead alone;
//! - `/v1/status` latency (p50, p99) and throughput on one kept-alive connection.
//!
//! Medians and ratios are printed; nothing is asserted (2 noisy cores).

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::{Duration, Instant};

use eid_agent::prompt::pinentry::Pinentry;
use eid_agent::prompt::{Cancel, PinRequest, Prompt};
use eid_card::Transport;
use eid_card::pcsc_transport::PcscContext;
use eid_card::pteid::{CertKind, Pin, PteidCard};
use eid_tests::agent::{Agent, AgentOptions};
use eid_tests::https::Request;
use eid_tests::{PcscRig, bench};

const RP: &str = "https://rp.example";
const NONCE: &str = "c7mD6hB9L3Zxq2o4yWm0n8pVt1sR5uEaKbJdFgHiQwE=";

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn percentile(samples: &[Duration], p: f64) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort();
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(index).copied().unwrap_or_default()
}

fn main() {
    let rounds = bench::rounds(15).min(90);
    let card = eid_hardware_mocks::pteid::cc2::cc2_default().expect("card");
    let Some(rig) = PcscRig::new(card.card) else {
        eprintln!("bridge: pcscd with vpcd is not available; nothing measured");
        return;
    };
    let reader = rig.reader_name();
    let agent = Agent::start(
        env!("CARGO_BIN_EXE_eid-agent").as_ref(),
        &AgentOptions {
            allow: vec![RP.into()],
            agent_toml: "pin_rate_burst = 100\npin_rate_period_secs = 1\n".into(),
            ..AgentOptions::default()
        },
    );
    let client = agent.client();
    let mut conn = client.connect();
    // Wait for the agent's reader monitor to recognise the card.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !conn
        .send(&Request::get("/v1/status"))
        .unwrap()
        .text()
        .contains("pteid-cc2")
    {
        assert!(Instant::now() < deadline, "card never seen");
        std::thread::sleep(Duration::from_millis(50));
    }

    // The same dialog program the agent runs, for the direct path with a dialog.
    let script = agent.dir.join("direct-pinentry-script");
    let answers: Vec<&str> = std::iter::repeat_n("pin 1111", rounds + 2).collect();
    std::fs::write(&script, answers.join("\n") + "\n").unwrap();
    let mut pinentry = Pinentry::new(eid_tests::bins::workspace_bin(
        "eid-hardware-mocks",
        "eid-scripted-pinentry",
    ));
    pinentry.extra_env = vec![("EID_PINENTRY_SCRIPT".into(), script.into_os_string())];
    let dialog = |_: &eid_agent::workflows::PinAsk| -> Result<Pin, eid_card::Error> {
        let request = PinRequest {
            origin: RP,
            operation: "identify you with your Citizen Card",
            holder: None,
            pin_name: "authentication PIN",
            retries_left: Some(3),
            error: None,
        };
        let typed = pinentry.pin(&request, &Cancel::default()).unwrap();
        Pin::new(&typed)
    };

    // Directly on the card crate: the same steps as the bridge's worker.
    let context = PcscContext::establish().unwrap();
    let direct = |authenticate: bool, with_dialog: bool| {
        let start = Instant::now();
        let mut transport = context.connect(&reader).unwrap();
        {
            let mut tx = transport.transaction().unwrap();
            let mut card = PteidCard::open(&mut *tx).unwrap();
            let certificate =
                eid_agent::workflows::certificate(&mut card, CertKind::Authentication).unwrap();
            if authenticate {
                let mut typed = |_: &eid_agent::workflows::PinAsk| -> Result<Pin, eid_card::Error> {
                    Pin::new("1111")
                };
                let mut shown = dialog;
                let ask: &mut dyn FnMut(
                    &eid_agent::workflows::PinAsk,
                ) -> Result<Pin, eid_card::Error> =
                    if with_dialog { &mut shown } else { &mut typed };
                eid_agent::workflows::authenticate(&mut card, &certificate, RP, NONCE, ask)
                    .unwrap();
            }
        }
        if authenticate {
            transport.reconnect(true).unwrap();
        }
        transport.disconnect().unwrap();
        start.elapsed()
    };
    let mut via_bridge = |path: &str, body: serde_json::Value| {
        let start = Instant::now();
        let response = conn
            .send(&Request::post(path).origin(RP).json(&body))
            .unwrap();
        assert_eq!(response.status, 200, "{}", response.text());
        start.elapsed()
    };

    let answers: Vec<&str> = std::iter::repeat_n("pin 1111", rounds + 2).collect();
    agent.answer(&answers);
    let mut bridge_auth = Vec::new();
    let mut direct_auth = Vec::new();
    let mut direct_auth_dialog = Vec::new();
    let mut bridge_cert = Vec::new();
    let mut direct_cert = Vec::new();
    // Interleaved, so both see the same machine load.
    for _ in 0..rounds {
        bridge_auth.push(via_bridge(
            "/v1/authenticate",
            serde_json::json!({ "challengeNonce": NONCE }),
        ));
        direct_auth.push(direct(true, false));
        direct_auth_dialog.push(direct(true, true));
        bridge_cert.push(via_bridge(
            "/v1/certificate",
            serde_json::json!({ "type": "authentication" }),
        ));
        direct_cert.push(direct(false, false));
    }
    let (ba, da) = (bench::median(&bridge_auth), bench::median(&direct_auth));
    let dd = bench::median(&direct_auth_dialog);
    let (bc, dc) = (bench::median(&bridge_cert), bench::median(&direct_cert));
    println!("bridge benchmark (CC2 behind pcscd + vpcd, {rounds} rounds, medians)");
    println!(
        "  authenticate: bridge {:.2} ms, direct {:.2} ms: overhead {:.2} ms, ratio {:.2} \
         (bridge: with the pinentry dialog process; direct: PIN given)",
        ms(ba),
        ms(da),
        ms(ba) - ms(da),
        ms(ba) / ms(da)
    );
    println!(
        "  authenticate with the same dialog program on both sides: bridge {:.2} ms, direct {:.2} ms: \
         overhead {:.2} ms, ratio {:.2} (HTTPS + origin checks + consent decision + queue)",
        ms(ba),
        ms(dd),
        ms(ba) - ms(dd),
        ms(ba) / ms(dd)
    );
    println!(
        "  certificate:  bridge {:.2} ms, direct {:.2} ms: overhead {:.2} ms, ratio {:.2} \
         (HTTPS + origin checks + queue, no dialog)",
        ms(bc),
        ms(dc),
        ms(bc) - ms(dc),
        ms(bc) / ms(dc)
    );

    // Status: latency on one kept-alive connection, then throughput.
    let status_rounds = rounds * 100;
    let mut latencies = Vec::with_capacity(status_rounds);
    let request = Request::get("/v1/status").origin(RP);
    for _ in 0..status_rounds {
        let start = Instant::now();
        let response = conn.send(&request).unwrap();
        latencies.push(start.elapsed());
        assert_eq!(response.status, 200);
    }
    let window = Duration::from_secs(2);
    let start = Instant::now();
    let mut served = 0u64;
    while start.elapsed() < window {
        conn.send(&request).unwrap();
        served += 1;
    }
    let throughput = served as f64 / start.elapsed().as_secs_f64();
    println!(
        "  status: p50 {:.3} ms, p99 {:.3} ms over {status_rounds} requests; {throughput:.0} requests/s on one kept-alive connection",
        ms(percentile(&latencies, 0.5)),
        ms(percentile(&latencies, 0.99)),
    );
    drop(rig);
}
