// desk.js: attended enrolment at a service desk (page /desk). An operator signs in, the
// citizen's passport or ID card is read by the eID agent (passive and active authentication over
// this service's nonce), the service re-verifies it, the operator compares the verified identity
// with the person, and the citizen registers a mobile key.
// Steps: operator-login -> document -> mobile-key -> confirm -> done (page contract, api.md §3).
//
// Kiosk mode (the desk's agent runs `eid-agent run --kiosk`): every document presence on the
// reader is a card session, and the result of the read names it. The page follows the agent's
// sessions; when the one the shown citizen's data came from ends (the document is taken off the
// reader, or left unused past the agent's idle timeout), it clears that citizen from the page and
// from the service's desk session, goes back to "place the document" and says why. The operator
// stays signed in. With a normal agent results name no session and nothing of this happens.
// SPDX-License-Identifier: EUPL-1.2
import { EidBridge } from "/static/eid-bridge.js";
import {
  InputError, applyContactKind, canAccess, clearError, describeError, loadConfig, mrzAccess, onAction,
  postJson, sessionEndedText, setText, showNotice, showStep, startPage, takeValue, valueOf,
} from "./common.js";

let bridge = null;

/** Kiosk mode: the card session the shown citizen's data came from (null: none, or a normal agent). */
let citizenSession = null;
/** Sessions the agent said ended, with why (the last few): a read from one of them is dropped. */
const endedSessions = new Map();
/** Bumped whenever the citizen part is cleared: a request begun before does not show its answer. */
let citizenGeneration = 0;
/** Stops following the agent's sessions (null when not following). */
let stopFollowing = null;

const IDENTITY_FIELDS = ["identity-name", "identity-number", "identity-country", "identity-nationality", "identity-birth"];

function clearCitizen() {
  citizenGeneration++;
  citizenSession = null;
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

/**
 * Wraps a step of the citizen part: when the citizen is cleared while it runs (their document's
 * session ended), its answer and its error are dropped; `stale()` tells the step so.
 */
function citizenStep(step) {
  return async (ev) => {
    const generation = citizenGeneration;
    const stale = () => generation !== citizenGeneration;
    try {
      return await step(stale, ev);
    } catch (e) {
      if (stale()) return undefined;
      throw e;
    }
  };
}

async function readDocument(stale) {
  const access = accessData();
  const { nonce } = await postJson("/api/desk/nonce", {});
  // Every data group the agent reads (it reads 1, 2, 11, 12, 14, 15; 14 and 15 always come):
  // the service then checks each one's hash against the SOD, so a document with any altered
  // data group is refused, not only one with an altered DG1 or DG2.
  const result = await bridge.readEmrtd({ ...access, challengeNonce: nonce, dataGroups: [1, 2, 11, 12] });
  // Kiosk mode: the card session the result came from. It is the agent's business, not the
  // service's: the service gets the eid-emrtd:1.0 result without it.
  const { session: resultSession, ...emrtd } = result ?? {};
  const session = typeof resultSession === "string" && resultSession !== "" ? resultSession : null;
  const { identity, photo } = await postJson("/api/desk/document", { result: emrtd, nonce });
  if (stale() || (session !== null && endedSessions.has(session))) {
    // The document left the reader while it was checked: the service forgets it too.
    await postJson("/api/desk/next", {}).catch(() => {});
    if (!stale()) citizenLeft(endedSessions.get(session) ?? "card-removed");
    return;
  }
  citizenSession = session;
  if (session !== null) ensureFollowing(); // consent may have come with this read
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

async function register(stale) {
  const body = { contact: valueOf("contact"), pin: takeValue("pin"), pinRepeat: takeValue("pin-repeat") };
  const { codeSentTo } = await postJson("/api/enrol/mobile-key", body);
  body.pin = body.pinRepeat = "";
  if (stale()) return;
  setText("code-sent-to", codeSentTo ?? "");
  showStep("confirm");
}

async function resend(stale) {
  const { codeSentTo } = await postJson("/api/enrol/resend", {});
  if (stale()) return;
  setText("code-sent-to", codeSentTo ?? "");
  showNotice(`A new code was sent to ${codeSentTo ?? "the citizen"}. Only the newest code works.`);
}

async function confirm(stale) {
  const { binding } = await postJson("/api/enrol/confirm", { code: takeValue("code").trim() });
  if (stale()) return;
  setText("done-name", binding?.name ?? "");
  setText("done-contact", binding?.contact ?? "");
  showStep("done");
}

async function nextCitizen() {
  await postJson("/api/desk/next", {});
  clearCitizen();
  showStep("document");
}

/**
 * The citizen's document session ended (kiosk mode): their data leaves the page and the
 * service's desk session; the operator stays signed in, back at "place the document".
 */
function citizenLeft(reason) {
  clearCitizen();
  clearError();
  if (!document.getElementById("operator-bar").hidden) showStep("document", { focus: false });
  showNotice(sessionEndedText(reason));
  postJson("/api/desk/next", {}).catch((e) => {
    if (e?.code === "operator-required" || e?.code === "no-session") signedOut();
  });
}

function sessionEnded({ session, reason }) {
  endedSessions.set(session, reason);
  if (endedSessions.size > 64) endedSessions.delete(endedSessions.keys().next().value);
  if (session === citizenSession) citizenLeft(reason);
}

/** A problem with the agent's event stream, for the operator (it is reopened by itself). */
function agentProblem(e) {
  const line = document.getElementById("agent-problem");
  if (e === null) {
    line.hidden = true;
    line.textContent = "";
    line.removeAttribute("data-code");
    return;
  }
  // A normal agent that has not been allowed for this site yet: nothing to follow, not a problem.
  if (e?.code === "consent-required") return;
  const text = e?.code === "agent-not-running"
    ? "The eID agent on this computer is not answering. This page keeps trying to reach it; if this message stays, start the agent again (at a desk: restart the eid-agent-kiosk service)."
    : describeError(e).text;
  line.textContent = text;
  line.setAttribute("data-code", String(e?.code ?? "unexpected"));
  line.hidden = false;
}

/** Follows the agent's card sessions, unless already doing so. */
function ensureFollowing() {
  if (stopFollowing !== null) return;
  const stop = bridge.followSessions({
    onSessionEnded: sessionEnded,
    onEvent: (event) => {
      if (event.type === "status") agentProblem(null);
    },
    onError: agentProblem,
  });
  stopFollowing = stop;
  // Stopped for good (a refusal): a later read may start it again.
  stop.done.then(() => {
    if (stopFollowing === stop) stopFollowing = null;
  });
}

startPage(async () => {
  const config = await loadConfig();
  bridge = new EidBridge({ baseUrl: config.bridgeUrl });
  ensureFollowing();
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
    "session-ended": "The document lay on the reader unused for too long, so the eID agent closed its session. Take it off the reader, place it again and press “Read the document”.",
  };
  const codeRemedies = {
    "code-expired": "Press “Send a new code”.",
    "code-missing": "Press “Send a new code”.",
    "code-attempts-exhausted": "Press “Send a new code” to get another one.",
  };
  const opts = { onError: afterError };
  onAction("btn-operator-login", operatorLogin, opts);
  onAction("btn-operator-logout", operatorLogout, opts);
  onAction("btn-read-document", citizenStep(readDocument), { ...opts, remedies: documentRemedies });
  onAction("btn-register", citizenStep(register), opts);
  onAction("btn-confirm", citizenStep(confirm), { ...opts, remedies: codeRemedies });
  onAction("btn-resend", citizenStep(resend), opts);
  onAction("btn-next-citizen", nextCitizen, opts);
  showStep("operator-login", { focus: false });
});
