// common.js: what every page of the enrolment service shares: calling the service's JSON API,
// turning errors (the service's and the eID agent's) into plain messages with a remedy, the
// single error line, the busy state and step switching (the page contract, /tmp api.md §3).
//
// No DOM access at import time: the helpers that touch the page take the document as an
// optional argument, so that the pure ones can be unit-tested under node
// (web/test/enrolment.test.mjs).
// SPDX-License-Identifier: EUPL-1.2

// ---------------------------------------------------------------------------------------------
// The service's JSON API

/**
 * An error answer of the service, `{"error": {code, message, attemptsLeft?, retryAfterSeconds?}}`,
 * or a failure to reach it. `code` is stable (the service's error codes, or `service-unreachable`
 * and `service-error` for answers that never came or were not the service's).
 */
export class ApiError extends Error {
  constructor(message, { code = "service-error", status = null, attemptsLeft = null, retryAfterSeconds = null, cause } = {}) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = "ApiError";
    /** Stable error code of the service. */
    this.code = code;
    /** HTTP status (null when there was no answer). */
    this.status = status;
    /** Attempts left before a code or a mobile key is locked, when the service says. */
    this.attemptsLeft = attemptsLeft;
    /** Seconds to wait before trying again (rate limits), when the service says. */
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

/**
 * A check made in the page before anything is sent (a CAN with letters, ...). Shown like the
 * service's errors, with its own code.
 */
export class InputError extends Error {
  constructor(code, message) {
    super(message);
    this.name = "InputError";
    this.code = code;
  }
}

const isCount = (v) => Number.isInteger(v) && v >= 0;

/**
 * The ApiError for an error answer: HTTP `status` and the parsed JSON `body` (null when the body
 * was not JSON). Anything without the service's error object becomes `service-error`: the
 * answer may come from a proxy, and its text is not shown to the citizen.
 */
export function apiErrorFromResponse(status, body) {
  const e = body !== null && typeof body === "object" ? body.error : undefined;
  if (!e || typeof e !== "object" || typeof e.code !== "string" || e.code === "") {
    return new ApiError(`The service answered with an unexpected error (HTTP ${status}). Please try again in a moment.`, {
      code: "service-error",
      status,
    });
  }
  return new ApiError(typeof e.message === "string" && e.message !== "" ? e.message : e.code, {
    code: e.code,
    status,
    attemptsLeft: isCount(e.attemptsLeft) ? e.attemptsLeft : null,
    retryAfterSeconds: isCount(e.retryAfterSeconds) ? e.retryAfterSeconds : null,
  });
}

/** The response body parsed as JSON, or null when it is empty or not JSON. */
async function readJson(res) {
  const text = await res.text();
  if (text === "") return null;
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

/**
 * One request to the service (same origin, the session cookie travels by itself). Returns the
 * parsed JSON answer or throws ApiError. `fetch` is replaceable for tests.
 */
export async function requestJson(method, path, body, { fetch = globalThis.fetch } = {}) {
  const init = {
    method,
    credentials: "same-origin",
    cache: "no-store",
    redirect: "error",
    headers: { Accept: "application/json" },
  };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch (cause) {
    throw new ApiError("The service did not answer. Check your internet connection, then try again.", {
      code: "service-unreachable",
      cause,
    });
  }
  const json = await readJson(res).catch(() => null);
  if (!res.ok) throw apiErrorFromResponse(res.status, json);
  if (json === null) {
    throw new ApiError("The service gave an answer this page does not understand. Please try again.", {
      code: "service-error",
      status: res.status,
    });
  }
  return json;
}

/** POST `body` as JSON to the service's `path`; the answer's JSON, or throws ApiError. */
export function postJson(path, body = {}, options) {
  return requestJson("POST", path, body, options);
}

/** GET the service's `path`; the answer's JSON, or throws ApiError. */
export function getJson(path, options) {
  return requestJson("GET", path, undefined, options);
}

/**
 * GET /api/config: `{origin, bridgeUrl, devOutbox}`. The bridge URL is checked to be an https
 * (or loopback http) URL, since the page sends card operations there.
 */
export async function loadConfig(options) {
  const c = await getJson("/api/config", options);
  if (!c || typeof c !== "object" || typeof c.bridgeUrl !== "string" || !validBridgeUrl(c.bridgeUrl)) {
    throw new ApiError("The service's configuration is not usable by this page.", { code: "config-invalid" });
  }
  return { origin: String(c.origin ?? ""), bridgeUrl: c.bridgeUrl, devOutbox: c.devOutbox === true };
}

/** An https URL, or http on a loopback host (the agent in development mode). */
export function validBridgeUrl(text) {
  let u;
  try {
    u = new URL(text);
  } catch {
    return false;
  }
  if (u.username || u.password || u.search || u.hash) return false;
  if (u.protocol === "https:") return true;
  return u.protocol === "http:" && ["127.0.0.1", "localhost", "[::1]"].includes(u.hostname);
}

// ---------------------------------------------------------------------------------------------
// Messages

const plural = (n, one, many) => `${n} ${n === 1 ? one : many}`;

/**
 * What the eID agent's errors (eid-bridge.js EidBridgeError codes) mean for a citizen, and what
 * to do. Keyed by code so that this module needs no import of the bridge (the classes map 1:1 to
 * codes: WrongPinError = wrong-pin, CardRemovedError = card-removed, ...).
 */
const BRIDGE_MESSAGES = {
  "agent-not-running": () =>
    "The eID agent on this computer did not answer. Start it (open “eID agent” from your applications, or run “eid-agent run” in a terminal) and try again. If it is not installed yet, install it first.",
  "local-network-permission-denied": () =>
    "Your browser does not let this page talk to the eID agent on your computer. Allow “local network access” for this site in the browser’s site settings (the icon left of the address), then reload the page.",
  "user-cancelled": () => "The eID agent’s window was closed, so nothing was done. Press the button again when you are ready.",
  "consent-denied": () =>
    "You did not allow this site to use your card in the eID agent’s window. If that was a mistake, press the button again and choose Allow.",
  "wrong-pin": (e) =>
    isCount(e.retriesLeft)
      ? `Wrong PIN. ${plural(e.retriesLeft, "try", "tries")} left. Press the button to try again: the eID agent will ask for the PIN again in its own window.`
      : "Wrong PIN. Press the button to try again: the eID agent will ask for the PIN again in its own window.",
  "pin-blocked": () =>
    "Your card’s PIN is blocked after too many wrong tries. Unblock it with the PUK from your PIN letter (in the eID agent: “eid-agent card pin unblock”) or at a Citizen Card service desk, then try again.",
  "invalid-pin-format": () => "The card PIN has 4 to 8 digits; no try was spent. Press the button to try again.",
  "card-removed": () => "The card was removed while it was being read. Put it back in the reader and press the button again.",
  "no-card": () => "No card was found. Insert the card in the reader (chip first) and press the button again.",
  "no-reader": () => "No card reader was found. Connect the reader, insert the card and press the button again.",
  "reader-removed": () => "The card reader was disconnected. Connect it again and press the button again.",
  "card-busy": () => "Another program is using the card. Close it and press the button again.",
  "unsupported-card": () =>
    "The card in the reader cannot be used here. Insert a Portuguese Citizen Card (at the desk: the passport or ID card being read).",
  "pcscd-not-running": () =>
    "The computer’s smart card service is not running. Start it (on Linux: “sudo systemctl start pcscd”) and press the button again.",
  "access-denied": () =>
    "The document did not accept the CAN or MRZ data. Check what was typed against the document and try again.",
  "rate-limited": (e) =>
    isCount(e.retryAfterSeconds)
      ? `Too many PIN requests in a short time. Wait ${plural(e.retryAfterSeconds, "second", "seconds")}, then try again.`
      : "Too many PIN requests in a short time. Wait a minute, then try again.",
  "client-timeout": () => "This took too long. If the eID agent’s window is open, answer it; otherwise press the button again.",
  "operation-timeout": () => "This took too long. Press the button to try again.",
  "queue-timeout": () => "The card was busy for too long. Press the button to try again.",
  "queue-full": () => "The card is busy. Wait a moment and press the button again.",
  "prompt-timeout": () => "The eID agent’s window was left unanswered. Press the button to try again.",
  "prompt-unavailable": () =>
    "The eID agent cannot show its PIN window on this computer. Run it in your desktop session (or install a PIN entry program such as pinentry-gnome3) and try again.",
  "origin-insecure": () => "This page is not on a secure (https) address, so the eID agent refuses it. Open the service’s https address.",
  "origin-denied": () => "The eID agent on this computer is set up to refuse this site. Ask your administrator.",
  // Kiosk mode (a service desk's agent).
  "session-ended": () =>
    "The card lay unused in the reader for too long, so the eID agent closed its session. Take the card out, put it back and press the button again.",
  "reader-not-found": () =>
    "The card reader this page asked for is not connected to this computer. Connect it (or check its name in the eID agent’s reader list) and press the button again.",
  "origin-not-allowed": (e) =>
    agentWords(e) ||
    "The eID agent on this desk serves only the desk page’s configured address, and this page is not at it. Open the desk page from the address your administrator gave, or ask them to add this one.",
};

/** The agent's own message and remedy (written in plain words), or "" when it gave none. */
function agentWords(e) {
  if (typeof e?.userMessage === "function") return e.userMessage();
  return [e?.message, e?.remedy].map(sentence).filter(Boolean).join(" ");
}

/**
 * Kiosk mode: why the citizen's data was cleared from the desk page, by the agent's reason for
 * ending the card session (eid-bridge.js followSessions).
 */
export function sessionEndedText(reason) {
  switch (reason) {
    case "card-removed":
      return "The document was taken off the reader, so everything read from it was cleared from this page. Place the next document on the reader.";
    case "idle-timeout":
      return "The document lay on the reader unused for too long, so the eID agent closed its session and this page cleared what was read from it. Take the document off the reader and place it again to start over.";
    case "reader-removed":
      return "The card reader was disconnected, so what was read from the document was cleared from this page. Connect the reader again, then place the document on it.";
    case "agent-stopping":
      return "The eID agent stopped, so what was read from the document was cleared from this page. When the agent is back, place the document on the reader again.";
    default: // "missed": the session ended while this page was not connected to the agent
      return "This page lost contact with the eID agent and the document’s session ended meanwhile, so what was read from it was cleared. Place the document on the reader again.";
  }
}

/** Extra advice after the service's own message, by code (the message says what went wrong). */
const SERVICE_REMEDIES = {
  "no-session": "Your session has ended (or cookies are blocked). Start again from the first step.",
  "no-identity": "Start again from the first step.",
  "operator-required": "Sign in as an operator again.",
  suspended:
    "To use a mobile key again, enrol again: with your Citizen Card on the enrolment page, or at a service desk with your passport. Enrolling again replaces the suspended key.",
  "code-expired": "Ask for a new code.",
  "code-missing": "Ask for a new code.",
  "code-attempts-exhausted": "Ask for a new code.",
  "nonce-expired": "Press the button again: a fresh request will be made.",
  "nonce-unknown": "Press the button again: a fresh request will be made.",
  "nonce-reused": "Press the button again: a fresh request will be made.",
  "login-failed": "Check the phone number or e-mail address and the PIN of your mobile key (not your card’s PIN).",
  "contact-taken": "Use another phone number or e-mail address, or recover the existing key by enrolling with the card it belongs to.",
  "service-error": "",
};

/**
 * The message to show for any error: `{code, text, retriesLeft?, attemptsLeft?}`.
 * - The eID agent's errors (objects with a string `code` that are not ApiError/InputError):
 *   this page's wording by code, else the error's `remedy`, else its message.
 * - The service's errors: its message (written for citizens; it may name what exactly was
 *   refused), then the attempts left or time to wait when given, then `remedies[code]` or the
 *   shared advice for that code.
 * `remedies` lets a page give advice that depends on where the citizen is.
 */
export function describeError(error, remedies = {}) {
  if (error instanceof InputError) return { code: error.code, text: error.message };
  if (error instanceof ApiError) {
    const parts = [sentence(error.message)];
    const out = { code: error.code };
    if (isCount(error.attemptsLeft)) {
      out.attemptsLeft = error.attemptsLeft;
      if (!/attempt/i.test(error.message)) parts.push(`${plural(error.attemptsLeft, "attempt", "attempts")} left.`);
    }
    if (isCount(error.retryAfterSeconds) && !/second/i.test(error.message)) {
      parts.push(`Try again in ${plural(error.retryAfterSeconds, "second", "seconds")}.`);
    }
    const remedy = remedies[error.code] ?? SERVICE_REMEDIES[error.code];
    if (remedy) parts.push(remedy);
    out.text = parts.filter(Boolean).join(" ");
    return out;
  }
  if (error && typeof error === "object" && typeof error.code === "string") {
    const code = error.code;
    const make = BRIDGE_MESSAGES[code];
    const text = remedies[code] ?? (make ? make(error) : (error.remedy || error.message || `The eID agent refused (${code}).`));
    const out = { code, text };
    if (code === "wrong-pin" && isCount(error.retriesLeft)) out.retriesLeft = error.retriesLeft;
    return out;
  }
  if (error && error.name === "AbortError") return { code: "aborted", text: "Stopped." };
  return { code: "unexpected", text: "Something went wrong in this page. Reload it and try again." };
}

/** `text` ending with a full stop (messages are joined into one line). */
function sentence(text) {
  const t = String(text ?? "").trim();
  if (t === "") return "";
  return /[.!?]$/.test(t) ? t : `${t}.`;
}

// ---------------------------------------------------------------------------------------------
// The page: error line, busy state, steps

const doc = (d) => d ?? globalThis.document;

/**
 * Shows `error` on the page's single error line (`#error`): its text, `data-code`, and
 * `data-retries-left` (card PIN) or `data-attempts-left` (the service's count) when known.
 * Returns what was shown. Focus is not moved: role="alert" makes screen readers announce it.
 */
export function showError(error, remedies, d) {
  const el = doc(d).getElementById("error");
  const shown = describeError(error, remedies);
  if (!el) return shown;
  clearError(d);
  el.textContent = shown.text;
  el.setAttribute("data-code", shown.code);
  if (shown.retriesLeft !== undefined) el.setAttribute("data-retries-left", String(shown.retriesLeft));
  if (shown.attemptsLeft !== undefined) el.setAttribute("data-attempts-left", String(shown.attemptsLeft));
  el.hidden = false;
  return shown;
}

/** Hides the error line and removes its text and data attributes. */
export function clearError(d) {
  const el = doc(d).getElementById("error");
  if (!el) return;
  el.hidden = true;
  el.textContent = "";
  for (const a of ["data-code", "data-retries-left", "data-attempts-left"]) el.removeAttribute(a);
}

/** Shows a calm, non-error notice (`#notice`, role="status"); empty text hides it. */
export function showNotice(text, d) {
  const el = doc(d).getElementById("notice");
  if (!el) return;
  el.textContent = text;
  el.hidden = text === "";
}

let busyDepth = 0;

/**
 * `<main aria-busy>`: "true" while a request or a card operation runs; the page's buttons are
 * disabled meanwhile (a second click would start a second PIN dialog). Nested calls count.
 */
export function setBusy(busy, d) {
  busyDepth = Math.max(0, busyDepth + (busy ? 1 : -1));
  const main = doc(d).querySelector("main");
  if (!main) return;
  const on = busyDepth > 0;
  main.setAttribute("aria-busy", on ? "true" : "false");
  for (const b of main.querySelectorAll("button")) {
    if (on && !b.disabled) {
      b.disabled = true;
      b.setAttribute("data-busy-disabled", "");
    } else if (!on && b.hasAttribute("data-busy-disabled")) {
      b.disabled = false;
      b.removeAttribute("data-busy-disabled");
    }
  }
}

/** True while the page is busy. */
export function isBusy() {
  return busyDepth > 0;
}

/** Runs `fn` with the page busy; always leaves the busy state, even when `fn` throws. */
export async function whileBusy(fn, d) {
  setBusy(true, d);
  try {
    return await fn();
  } finally {
    setBusy(false, d);
  }
}

/**
 * Makes step `name` (`<section data-step=name>`) the only visible one, marks it in the progress
 * list (`[data-progress-for=name]`, aria-current="step"), puts its heading in the title and
 * moves focus to the heading, so keyboard and screen reader users start at the new step.
 */
export function showStep(name, { focus = true } = {}, d) {
  const dd = doc(d);
  let shown = null;
  for (const s of dd.querySelectorAll("section[data-step]")) {
    const on = s.getAttribute("data-step") === name;
    s.hidden = !on;
    if (on) shown = s;
  }
  for (const li of dd.querySelectorAll("[data-progress-for]")) {
    if (li.getAttribute("data-progress-for") === name) li.setAttribute("aria-current", "step");
    else li.removeAttribute("aria-current");
  }
  const heading = shown?.querySelector("h2");
  if (heading) {
    const base = dd.querySelector("main h1")?.textContent?.trim();
    dd.title = base ? `${heading.textContent.trim()} – ${base}` : heading.textContent.trim();
    if (focus) {
      heading.setAttribute("tabindex", "-1");
      heading.focus({ preventScroll: false });
    }
  }
  return shown !== null;
}

/** The name of the visible step, or null. */
export function currentStep(d) {
  const s = doc(d).querySelector("section[data-step]:not([hidden])");
  return s ? s.getAttribute("data-step") : null;
}

/** Sets the text of element `#id` (never HTML: values come from cards and the service). */
export function setText(id, text, d) {
  const el = doc(d).getElementById(id);
  if (el) el.textContent = text ?? "";
}

/**
 * The value of input `#id`, which is emptied at once: PINs and codes do not stay in the page
 * after they were sent (or refused). JavaScript strings cannot be wiped; the value is kept only
 * in the request being built.
 */
export function takeValue(id, d) {
  const el = doc(d).getElementById(id);
  if (!el) return "";
  const v = el.value;
  el.value = "";
  return v;
}

/** The trimmed value of input `#id` (kept in the input). */
export function valueOf(id, d) {
  const el = doc(d).getElementById(id);
  return el ? el.value.trim() : "";
}

/**
 * Runs `handler` when the button `#id` is used: through its form's submit (Enter works; the
 * forms use method="dialog", so nothing is ever submitted to a URL even if this script failed),
 * or its click when it is not in a form. The handler runs busy, after the error line is
 * cleared; a throw is shown on the error line (with `remedies`) and passed to `onError`.
 * A use while busy is ignored.
 */
export function onAction(id, handler, { remedies, onError } = {}, d) {
  const dd = doc(d);
  const button = dd.getElementById(id);
  if (!button) throw new Error(`page contract: #${id} is missing`);
  const run = async (ev) => {
    ev?.preventDefault();
    if (isBusy()) return;
    clearError(dd);
    showNotice("", dd);
    try {
      await whileBusy(() => handler(ev), dd);
    } catch (e) {
      const shown = showError(e, remedies, dd);
      if (shown.code === "unexpected") console.error(e); // a bug in the page: keep it for the console
      if (onError) onError(e, shown);
    }
  };
  const form = button.form;
  if (form && button.type === "submit") {
    form.addEventListener("submit", (ev) => {
      // Only this form's own button starts this handler (a form may hold other buttons).
      if (ev.submitter && ev.submitter !== button) return;
      run(ev);
    });
  } else {
    button.addEventListener("click", run);
  }
}

/**
 * Page start-up: runs `init` busy (main starts with aria-busy="true" in the HTML, so a test or a
 * fast user cannot press a button before the handlers exist), shows its error if it fails.
 */
export async function startPage(init, d) {
  const dd = doc(d);
  busyDepth = 1; // the HTML's aria-busy="true"
  try {
    await init();
  } catch (e) {
    showError(e, undefined, dd);
  } finally {
    setBusy(false, dd);
  }
}

// ---------------------------------------------------------------------------------------------
// Contact input: phone or e-mail

/**
 * Adapts the contact input to the kind the citizen chose: the right keyboard on phones and the
 * right autofill (autocomplete tel / email). The service decides what is valid.
 */
export function applyContactKind(kind, input) {
  if (!input) return;
  if (kind === "email") {
    input.type = "email";
    input.autocomplete = "email";
    input.inputMode = "email";
    input.placeholder = "name@example.org";
  } else {
    input.type = "tel";
    input.autocomplete = "tel";
    input.inputMode = "tel";
    input.placeholder = "+351 912 345 678";
  }
}

// ---------------------------------------------------------------------------------------------
// eMRTD access data (printed on the document; typed by the desk operator)

/** The CAN (6 digits, spaces ignored) or an InputError. */
export function canAccess(text) {
  const can = String(text ?? "").replace(/\s+/g, "");
  if (!/^[0-9]{6}$/.test(can)) {
    throw new InputError("can-format", "The CAN has 6 digits (printed on the front of ID cards, or on the data page). Check it and try again.");
  }
  return can;
}

/**
 * The MRZ access data as the agent takes it, "DOCNO YYMMDD YYMMDD", from the three fields
 * (document number: letters, digits and "<", up to 9 characters counted, spaces removed; dates
 * as six digits, month 01-12, day 01-31), or an InputError.
 */
export function mrzAccess(documentNumber, birth, expiry) {
  const doc = String(documentNumber ?? "").replace(/\s+/g, "").toUpperCase();
  if (!/^[A-Z0-9<]{1,9}$/.test(doc)) {
    throw new InputError("mrz-format", "The document number has up to 9 letters and digits, as in the machine-readable zone. Check it and try again.");
  }
  const date = (v, what) => {
    const t = String(v ?? "").replace(/\s+/g, "");
    const m = /^([0-9]{2})([0-9]{2})([0-9]{2})$/.exec(t);
    if (!m || +m[2] < 1 || +m[2] > 12 || +m[3] < 1 || +m[3] > 31) {
      throw new InputError("mrz-format", `The ${what} is written YYMMDD (year, month, day: six digits). Check it and try again.`);
    }
    return t;
  };
  return `${doc} ${date(birth, "date of birth")} ${date(expiry, "expiry date")}`;
}

// ---------------------------------------------------------------------------------------------
// Bytes: base64, a minimal DER reader (display only)

/** Standard or URL-safe base64 (padding optional) to bytes; throws on bad input. */
export function base64ToBytes(text) {
  let s = String(text).replace(/-/g, "+").replace(/_/g, "/");
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(s)) throw new Error("not base64");
  s = s.replace(/=+$/, "");
  if (s.length % 4 === 1) throw new Error("not base64");
  s += "=".repeat((4 - (s.length % 4)) % 4);
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** Bytes to standard base64. */
export function bytesToBase64(bytes) {
  let bin = "";
  for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(bin);
}

/**
 * One DER TLV at `pos` within `[pos, end)`: `{tag, start, end}` (content bounds). Throws on a
 * truncated or over-long element, high tag numbers or indefinite lengths (not DER).
 */
export function readTlv(bytes, pos, end = bytes.length) {
  if (pos + 2 > end) throw new Error("DER: truncated");
  const tag = bytes[pos];
  if ((tag & 0x1f) === 0x1f) throw new Error("DER: high tag number");
  let len = bytes[pos + 1];
  let p = pos + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4 || p + n > end) throw new Error("DER: bad length");
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + bytes[p + i];
    p += n;
  }
  if (p + len > end) throw new Error("DER: truncated");
  return { tag, start: p, end: p + len };
}

/** The children of a constructed DER element. */
function children(bytes, el) {
  const out = [];
  for (let p = el.start; p < el.end;) {
    const c = readTlv(bytes, p, el.end);
    out.push(c);
    p = c.end;
  }
  return out;
}

const OID_CN = [0x55, 0x04, 0x03];
const sameBytes = (bytes, el, want) =>
  el.end - el.start === want.length && want.every((b, i) => bytes[el.start + i] === b);

/**
 * The subject common name of a DER X.509 certificate (base64), for display only ("Card of
 * ..."): the page never decides anything with it; the service takes the identity from the
 * certificate it verified. null when the certificate cannot be read.
 */
export function certificateHolderName(certificateBase64) {
  try {
    const der = base64ToBytes(certificateBase64);
    const cert = readTlv(der, 0);
    const tbs = children(der, cert)[0];
    if (!tbs || tbs.tag !== 0x30) return null;
    const fields = children(der, tbs);
    const i = fields[0]?.tag === 0xa0 ? 1 : 0; // [0] version
    const subject = fields[i + 4]; // serial, signature algorithm, issuer, validity, subject
    if (!subject || subject.tag !== 0x30) return null;
    for (const rdn of children(der, subject)) {
      for (const atv of children(der, rdn)) {
        const [oid, value] = children(der, atv);
        if (oid?.tag === 0x06 && value && sameBytes(der, oid, OID_CN)) {
          return decodeDirectoryString(der.subarray(value.start, value.end), value.tag);
        }
      }
    }
    return null;
  } catch {
    return null;
  }
}

/** UTF8String, PrintableString, IA5String, T61String (read as Latin-1), BMPString. */
function decodeDirectoryString(bytes, tag) {
  if (tag === 0x1e) {
    let s = "";
    for (let i = 0; i + 1 < bytes.length; i += 2) s += String.fromCharCode((bytes[i] << 8) | bytes[i + 1]);
    return s;
  }
  if (tag === 0x14) return Array.from(bytes, (b) => String.fromCharCode(b)).join("");
  return new TextDecoder("utf-8", { fatal: false }).decode(bytes);
}

