// desk.js: attended enrolment at a service desk (page /desk). An operator signs in, the
// citizen's passport or ID card is read by the eID agent (passive and active authentication over
// this service's nonce), the service re-verifies it, the operator compares the verified identity
// with the person, and the citizen registers a mobile key.
// Steps: operator-login -> document -> mobile-key -> confirm -> done (page contract, api.md §3).
// SPDX-License-Identifier: EUPL-1.2
import { EidBridge } from "/static/eid-bridge.js";
import {
  InputError, applyContactKind, canAccess, loadConfig,
  mrzAccess, onAction, postJson, setText, showNotice, showStep, startPage, takeValue, valueOf,
} from "./common.js";

let bridge = null;

const IDENTITY_FIELDS = ["identity-name", "identity-number", "identity-country", "identity-nationality", "identity-birth"];

function clearCitizen() {
  for (const id of [...IDENTITY_FIELDS, "code-sent-to", "done-name", "done-contact"]) setText(id, "");
  for (const id of ["can", "mrz-document-number", "mrz-birth", "mrz-expiry", "contact", "pin", "pin-repeat", "code"]) takeValue(id);
  const photo = document.getElementById("identity-photo");
  photo.hidden = true;
  photo.removeAttribute("src");
}

function signedOut() {
  document.getElementById("operator-bar").hidden = true;
  setText("operator-name", "");
  clearCitizen();
  showStep("operator-login", { focus: false });
}

/** After these errors the operator signs in again, or the citizen's reading starts over. */
function afterError(_e, shown) {
  if (shown.code === "operator-required" || shown.code === "no-session") signedOut();
  else if (shown.code === "no-identity") {
    clearCitizen();
    showStep("document", { focus: false });
  }
}

async function operatorLogin() {
  const body = { operator: valueOf("operator"), password: takeValue("password") };
  const { operator } = await postJson("/api/desk/login", body);
  body.password = "";
  setText("operator-name", operator ?? body.operator);
  document.getElementById("operator-bar").hidden = false;
  clearCitizen();
  showStep("document");
}

async function operatorLogout() {
  try {
    await postJson("/api/desk/logout", {});
  } finally {
    signedOut();
  }
}

/** The access data typed by the operator: the CAN when given, else the three MRZ fields. */
function accessData() {
  const can = valueOf("can");
  if (can !== "") return { can: canAccess(can) };
  const mrz = [valueOf("mrz-document-number"), valueOf("mrz-birth"), valueOf("mrz-expiry")];
  if (mrz.every((v) => v === "")) {
    throw new InputError("access-missing", "Type the CAN, or the document number, date of birth and expiry date from the MRZ.");
  }
  return { mrz: mrzAccess(...mrz) };
}

async function readDocument() {
  const access = accessData();
  const { nonce } = await postJson("/api/desk/nonce", {});
  // Every data group the agent reads (it reads 1, 2, 11, 12, 14, 15; 14 and 15 always come):
  // the service then checks each one's hash against the SOD, so a document with any altered
  // data group is refused, not only one with an altered DG1 or DG2.
  const result = await bridge.readEmrtd({ ...access, challengeNonce: nonce, dataGroups: [1, 2, 11, 12] });
  const { identity, photo } = await postJson("/api/desk/document", { result, nonce });
  for (const id of ["can", "mrz-document-number", "mrz-birth", "mrz-expiry"]) takeValue(id);
  setText("identity-name", identity?.name ?? "");
  setText("identity-number", identity?.documentNumber ?? "");
  setText("identity-country", identity?.country ?? "");
  setText("identity-nationality", identity?.nationality ?? "");
  setText("identity-birth", identity?.dateOfBirth ?? "");
  showPhoto(photo);
  showStep("mobile-key");
}

/**
 * The face photo from DG2, as the service decoded it (PNG) after verifying the document: DG2's
 * hash is covered by the SOD it checked, and passports store JPEG 2000, which browsers do not
 * show. Only a PNG data URL is accepted; anything else leaves the photo hidden.
 */
function showPhoto(dataUrl) {
  const photo = document.getElementById("identity-photo");
  photo.hidden = true;
  photo.removeAttribute("src");
  if (typeof dataUrl !== "string" || !dataUrl.startsWith("data:image/png;base64,")) return;
  photo.src = dataUrl;
  photo.hidden = false;
}

async function register() {
  const body = { contact: valueOf("contact"), pin: takeValue("pin"), pinRepeat: takeValue("pin-repeat") };
  const { codeSentTo } = await postJson("/api/enrol/mobile-key", body);
  body.pin = body.pinRepeat = "";
  setText("code-sent-to", codeSentTo ?? "");
  showStep("confirm");
}

async function resend() {
  const { codeSentTo } = await postJson("/api/enrol/resend", {});
  setText("code-sent-to", codeSentTo ?? "");
  showNotice(`A new code was sent to ${codeSentTo ?? "the citizen"}. Only the newest code works.`);
}

async function confirm() {
  const { binding } = await postJson("/api/enrol/confirm", { code: takeValue("code").trim() });
  setText("done-name", binding?.name ?? "");
  setText("done-contact", binding?.contact ?? "");
  showStep("done");
}

async function nextCitizen() {
  await postJson("/api/desk/next", {});
  clearCitizen();
  showStep("document");
}

startPage(async () => {
  const config = await loadConfig();
  bridge = new EidBridge({ baseUrl: config.bridgeUrl });
  const contact = document.getElementById("contact");
  applyContactKind("phone", contact);
  contact.autocomplete = "off"; // the citizen's contact, not the operator's
  for (const r of document.querySelectorAll('input[name="contact-kind"]')) {
    r.addEventListener("change", () => {
      if (!r.checked) return;
      applyContactKind(r.value, contact);
      contact.autocomplete = "off";
    });
  }
  const documentRemedies = {
    "access-denied": "The document did not accept the CAN or MRZ data. Check what was typed against the document and try again.",
    "no-card": "No document was found on the reader. Place it on the contactless reader and try again.",
    "card-removed": "The document was moved away from the reader while it was read. Place it on the reader, keep it still, and try again.",
    "unsupported-card": "The reader holds a card that is not a passport or ID card with a chip. Place the citizen’s document on the reader.",
  };
  const codeRemedies = {
    "code-expired": "Press “Send a new code”.",
    "code-missing": "Press “Send a new code”.",
    "code-attempts-exhausted": "Press “Send a new code” to get another one.",
  };
  const opts = { onError: afterError };
  onAction("btn-operator-login", operatorLogin, opts);
  onAction("btn-operator-logout", operatorLogout, opts);
  onAction("btn-read-document", readDocument, { ...opts, remedies: documentRemedies });
  onAction("btn-register", register, opts);
  onAction("btn-confirm", confirm, { ...opts, remedies: codeRemedies });
  onAction("btn-resend", resend, opts);
  onAction("btn-next-citizen", nextCitizen, opts);
  showStep("operator-login", { focus: false });
});
