// enrol.js: the citizen's enrolment with the Citizen Card (page /enrol).
// Steps: read-card -> authenticate -> mobile-key -> confirm -> done (page contract, api.md §3).
// The card PIN never passes through this page: the eID agent asks for it in its own window.
// SPDX-License-Identifier: EUPL-1.2
import { EidBridge } from "/static/eid-bridge.js";
import {
  applyContactKind, certificateHolderName, loadConfig, onAction, postJson, setText, showNotice,
  showStep, startPage, takeValue, valueOf,
} from "./common.js";

let bridge = null;

/** Errors after which the citizen has to start again from the first step. */
const RESTART = new Set(["no-session", "no-identity"]);

function backToStartOn(codes) {
  return (_e, shown) => {
    if (codes.has(shown.code)) showStep("read-card");
  };
}

/** Step 1: a new session, then the card's authentication certificate (consent, no PIN). */
async function readCard() {
  await postJson("/api/enrol/start", {});
  const { certificate } = await bridge.getAuthenticationCertificate();
  // Display only: the identity that counts is the one the service takes from the verified token.
  setText("card-holder", certificateHolderName(certificate) ?? "your Citizen Card");
  showStep("authenticate");
}

/** Step 2: the service's nonce, signed by the card (PIN in the agent's window), verified by the service. */
async function authenticate() {
  const { nonce } = await postJson("/api/enrol/nonce", {});
  const token = await bridge.authenticate(nonce);
  const { identity } = await postJson("/api/enrol/card", { token, nonce });
  setText("identity-name", identity?.name ?? "");
  setText("identity-number", identity?.documentNumber ?? "");
  showStep("mobile-key");
}

/** Step 3: contact and the mobile-key PIN (twice); the inputs are emptied before sending. */
async function register() {
  const contact = valueOf("contact");
  const body = { contact, pin: takeValue("pin"), pinRepeat: takeValue("pin-repeat") };
  const answer = await postJson("/api/enrol/mobile-key", body);
  body.pin = body.pinRepeat = "";
  codeSent(answer);
}

function codeSent({ codeSentTo }) {
  setText("code-sent-to", codeSentTo ?? "");
  showStep("confirm");
}

async function resend() {
  const answer = await postJson("/api/enrol/resend", {});
  setText("code-sent-to", answer.codeSentTo ?? "");
  showNotice(`A new code was sent to ${answer.codeSentTo ?? "you"}. Use the newest code: the earlier one no longer works.`);
}

async function confirm() {
  const { binding } = await postJson("/api/enrol/confirm", { code: takeValue("code").trim() });
  setText("done-name", binding?.name ?? "");
  setText("done-contact", binding?.contact ?? "");
  showStep("done");
}

startPage(async () => {
  const config = await loadConfig();
  bridge = new EidBridge({ baseUrl: config.bridgeUrl });
  const contact = document.getElementById("contact");
  for (const r of document.querySelectorAll('input[name="contact-kind"]')) {
    r.addEventListener("change", () => r.checked && applyContactKind(r.value, contact));
  }
  onAction("btn-read-card", readCard);
  onAction("btn-authenticate", authenticate, { onError: backToStartOn(new Set(["no-session"])) });
  onAction("btn-register", register, {
    remedies: { "pin-mismatch": "Type the same new PIN in both fields." },
    onError: backToStartOn(RESTART),
  });
  const codeRemedies = {
    "code-expired": "Press “Send a new code”.",
    "code-missing": "Press “Send a new code”.",
    "code-attempts-exhausted": "Press “Send a new code” to get another one.",
  };
  onAction("btn-confirm", confirm, { remedies: codeRemedies, onError: backToStartOn(RESTART) });
  onAction("btn-resend", resend, { onError: backToStartOn(RESTART) });
  showStep("read-card", { focus: false });
});
