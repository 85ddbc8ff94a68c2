// eid-bridge.js: the browser client of the eid-agent bridge (API v1, docs/bridge-openapi.json).
// Dependency-free ES module. Copy it next to your pages and import it:
//   import { EidBridge } from "./eid-bridge.js";
// SPDX-License-Identifier: EUPL-1.2

/** Where the agent listens unless told otherwise. */
export const DEFAULT_BASE_URL = "https://127.0.0.1:24180";

/** Default time limit of one call, PIN dialogs included (the agent has its own limits too). */
export const DEFAULT_TIMEOUT_MS = 180_000;

/**
 * Permission names Chromium has used for Local Network Access, in the order asked: the first
 * one the browser knows answers (checked in headless Chromium 156, where the first is known).
 */
export const LOCAL_NETWORK_PERMISSIONS = ["local-network-access", "loopback-network"];

/** Largest event the event-stream parser keeps in memory. */
const MAX_EVENT_CHARS = 1 << 20;

// ---------------------------------------------------------------------------------------------
// Errors

/**
 * Base class of every error this client throws. `code` is the agent's stable error code
 * (docs/bridge-openapi.json, x-error-codes) or one of the client's own: `agent-not-running`,
 * `local-network-permission-denied`, `client-timeout`, `invalid-response`.
 */
export class EidBridgeError extends Error {
  constructor(message, details = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = new.target.name;
    /** Stable error code. */
    this.code = details.code ?? "unknown";
    /** What the user or developer can do. */
    this.remedy = details.remedy ?? "";
    /** True when the same call may succeed later. */
    this.retryable = details.retryable ?? false;
    /** wrong-pin: tries left before the PIN blocks; otherwise null. */
    this.retriesLeft = details.retriesLeft ?? null;
    /** rate-limited: seconds to wait; otherwise null. */
    this.retryAfterSeconds = details.retryAfterSeconds ?? null;
    /** The HTTP status of the agent's answer (null when there was no answer). */
    this.status = details.status ?? null;
    /** Kiosk mode: the card session the failed operation was bound to, when the agent says. */
    this.session = details.session ?? null;
  }

  /**
   * The message and the remedy as one text to show a person. The agent writes both in plain
   * words (in kiosk mode for the desk's operator), so a page without its own wording for a code
   * can show this as it is.
   */
  userMessage() {
    const parts = [this.message, this.remedy].map((t) => String(t ?? "").trim()).filter(Boolean);
    return parts.map((t) => (/[.!?]$/.test(t) ? t : `${t}.`)).join(" ");
  }
}

/** Nothing answered at the agent's address: it is not installed, not running, or its certificate is not trusted. */
export class AgentNotRunningError extends EidBridgeError {}

/** The browser blocked the call: the user (or a policy) denied the Local Network Access permission. */
export class LocalNetworkPermissionError extends EidBridgeError {}

/** The user said no: declined the site in the consent dialog, or closed the PIN dialog. */
export class UserCancelledError extends EidBridgeError {}

/** The PIN is blocked; the citizen needs the PUK or a service desk. */
export class PinBlockedError extends EidBridgeError {}

/**
 * The card was removed during the operation. In kiosk mode also: the operation was bound to a
 * card session that ended by removal before or while it ran (the card may be back: that is a new
 * session).
 */
export class CardRemovedError extends EidBridgeError {}

/**
 * Kiosk mode: the card session the operation was bound to ended without the card being removed
 * (the agent's idle timeout reset the card). Lift the card and put it back: that opens a new
 * session.
 */
export class SessionEndedError extends EidBridgeError {}

/** The call took too long: this client's own time limit, or the agent's (operation, queue, dialog). */
export class TimeoutError extends EidBridgeError {}

/** The PIN was wrong; `retriesLeft` says how many tries remain. */
export class WrongPinError extends EidBridgeError {}

/** Any other error code of the agent (see `code` and `remedy`). */
export class AgentError extends EidBridgeError {}

const CLASS_BY_CODE = {
  "user-cancelled": UserCancelledError,
  "consent-denied": UserCancelledError,
  "pin-blocked": PinBlockedError,
  "card-removed": CardRemovedError,
  "session-ended": SessionEndedError,
  "operation-timeout": TimeoutError,
  "queue-timeout": TimeoutError,
  "prompt-timeout": TimeoutError,
  "wrong-pin": WrongPinError,
};

/**
 * The error for an agent's error answer: HTTP `status` and the parsed JSON `body`
 * (`{"error": {code, message, remedy, retryable, ...}}`), or null when the body was not JSON.
 */
export function errorFromResponse(status, body, baseUrl = DEFAULT_BASE_URL) {
  const e = body && typeof body === "object" ? body.error : undefined;
  if (!e || typeof e !== "object" || typeof e.code !== "string") {
    return new AgentError(`The agent answered HTTP ${status} without an error object.`, {
      code: "invalid-response",
      status,
      remedy: `Check that ${baseUrl} is the eid-agent (GET ${baseUrl}/v1/status).`,
    });
  }
  const Class = CLASS_BY_CODE[e.code] ?? AgentError;
  return new Class(typeof e.message === "string" ? e.message : e.code, {
    code: e.code,
    remedy: typeof e.remedy === "string" ? e.remedy : "",
    retryable: e.retryable === true,
    retriesLeft: Number.isInteger(e.retriesLeft) ? e.retriesLeft : null,
    retryAfterSeconds: Number.isInteger(e.retryAfterSeconds) ? e.retryAfterSeconds : null,
    session: typeof e.session === "string" ? e.session : null,
    status,
  });
}

// ---------------------------------------------------------------------------------------------
// Server-Sent Events

/**
 * An incremental text/event-stream parser (WHATWG HTML "event stream interpretation"): feed it
 * decoded text in pieces of any size; it returns the events completed by each piece.
 * Events: `{ type, data, lastEventId }` (`type` "message" when the event named none).
 */
export class SseParser {
  constructor() {
    this._buf = "";
    this._skipLf = false;
    this._first = true;
    this._event = "";
    this._data = null;
    this._lastId = "";
  }

  /** Feeds text; returns the events it completed. */
  push(text) {
    if (this._first && text.length > 0) {
      this._first = false;
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    }
    if (this._skipLf && text.length > 0) {
      this._skipLf = false;
      if (text[0] === "\n") text = text.slice(1);
    }
    const buf = this._buf + text;
    const events = [];
    let start = 0;
    for (let i = 0; i < buf.length; i++) {
      const c = buf[i];
      if (c !== "\n" && c !== "\r") continue;
      const line = buf.slice(start, i);
      if (c === "\r") {
        if (i + 1 < buf.length) {
          if (buf[i + 1] === "\n") i++;
        } else {
          this._skipLf = true; // a CRLF cut between two pieces
        }
      }
      start = i + 1;
      this._line(line, events);
    }
    this._buf = buf.slice(start);
    const pending = this._buf.length + (this._data === null ? 0 : this._data.length);
    if (pending > MAX_EVENT_CHARS) {
      this._buf = "";
      this._data = null;
      throw new EidBridgeError("An event from the agent is too large.", { code: "invalid-response" });
    }
    return events;
  }

  _line(line, events) {
    if (line === "") {
      if (this._data !== null) {
        events.push({ type: this._event || "message", data: this._data, lastEventId: this._lastId });
      }
      this._data = null;
      this._event = "";
      return;
    }
    if (line[0] === ":") return; // comment (keep-alive)
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value[0] === " ") value = value.slice(1);
    switch (field) {
      case "event":
        this._event = value;
        break;
      case "data":
        this._data = this._data === null ? value : `${this._data}\n${value}`;
        break;
      case "id":
        if (!value.includes("\0")) this._lastId = value;
        break;
      default: // retry and unknown fields: ignored
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The client

function toBase64(value, what) {
  if (typeof value === "string") return value;
  let bytes;
  if (value instanceof ArrayBuffer) bytes = new Uint8Array(value);
  else if (ArrayBuffer.isView(value)) bytes = new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  else throw new TypeError(`${what} must be a base64 string, an ArrayBuffer or a typed array`);
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

/**
 * The card an operation is for, from the call's options: `reader` (a reader's exact name, as in
 * `status().readers[].name`) and `session` (kiosk mode: the card session the operation must run
 * in; it fails with `card-removed` or `session-ended` once that session is over). Checked here
 * so that a page's mistake is a TypeError, not a request the agent refuses.
 */
function cardTarget({ reader, session } = {}) {
  const out = {};
  if (reader !== undefined && reader !== null) {
    if (typeof reader !== "string" || reader === "") throw new TypeError("reader must be a reader's name (a non-empty string)");
    out.reader = reader;
  }
  if (session !== undefined && session !== null) {
    if (typeof session !== "string" || session === "") throw new TypeError("session must be a session id (a non-empty string)");
    out.session = session;
  }
  return out;
}

/** Copies the defined properties of `o` named in `keys`. */
function pick(o, keys) {
  const out = {};
  for (const k of keys) if (o[k] !== undefined) out[k] = o[k];
  return out;
}

/**
 * The bridge client.
 *
 *   const bridge = new EidBridge();
 *   const token = await bridge.authenticate(nonceFromYourServer);
 *
 * Every call is a `fetch` with `{ mode: "cors", targetAddressSpace: "loopback" }`; failures are
 * thrown as subclasses of {@link EidBridgeError}.
 */
export class EidBridge {
  /**
   * @param {object} [options]
   * @param {string} [options.baseUrl] the agent's address (default https://127.0.0.1:24180)
   * @param {number} [options.timeoutMs] time limit of each call (default 180 s)
   * @param {typeof fetch} [options.fetch] a fetch implementation (tests)
   * @param {Permissions} [options.permissions] a Permissions object (tests; default navigator.permissions)
   */
  constructor({ baseUrl = DEFAULT_BASE_URL, timeoutMs = DEFAULT_TIMEOUT_MS, fetch, permissions } = {}) {
    this.baseUrl = String(baseUrl).replace(/\/+$/, "");
    this.timeoutMs = timeoutMs;
    this._fetch = fetch ?? globalThis.fetch.bind(globalThis);
    this._permissions = permissions ?? globalThis.navigator?.permissions;
  }

  /** `GET /v1/status`: agent version, whether this site has consent, and (if so) the readers. */
  status(options) {
    return this._call("GET", "/v1/status", undefined, options);
  }

  /** `POST /v1/certificate {type: "authentication"}`: `{certificate, supportedSignatureAlgorithms}`. */
  getAuthenticationCertificate(options) {
    return this._call("POST", "/v1/certificate", { type: "authentication" }, options);
  }

  /** `POST /v1/certificate {type: "signing"}`: `{certificate, supportedSignatureAlgorithms}`. */
  getSigningCertificate(options) {
    return this._call("POST", "/v1/certificate", { type: "signing" }, options);
  }

  /**
   * `POST /v1/authenticate`: a Web eID token (`web-eid:1.0`) over this page's origin and
   * `challengeNonce` (from your server). Send the token to your server and validate it there.
   */
  authenticate(challengeNonce, options) {
    return this._call("POST", "/v1/authenticate", { challengeNonce }, options);
  }

  /**
   * `POST /v1/sign`: signs `hash` with the qualified signature key.
   * @param {string|ArrayBuffer|ArrayBufferView} certificate the signing certificate (base64 DER or bytes)
   * @param {string|ArrayBuffer|ArrayBufferView} hash the digest (base64 or bytes)
   * @param {"SHA-256"|"SHA-384"|"SHA-512"} hashFunction
   */
  sign(certificate, hash, hashFunction, options) {
    const body = {
      certificate: toBase64(certificate, "certificate"),
      hash: toBase64(hash, "hash"),
      hashFunction,
    };
    return this._call("POST", "/v1/sign", body, options);
  }

  /** `POST /v1/identity`: `{identity, photo, address, sod}`. */
  readIdentity({ fields, photo, address } = {}, options) {
    const body = pick({ fields, photo, address }, ["fields", "photo", "address"]);
    return this._call("POST", "/v1/identity", body, options);
  }

  /** `POST /v1/emrtd/read` with `can` or `mrz`: the raw files and checks (`eid-emrtd:1.0`). */
  readEmrtd({ can, mrz, dataGroups, challengeNonce } = {}, options) {
    const body = pick({ can, mrz, dataGroups, challengeNonce }, ["can", "mrz", "dataGroups", "challengeNonce"]);
    return this._call("POST", "/v1/emrtd/read", body, options);
  }

  /**
   * `GET /v1/events`: calls `onEvent({type, data})` for each event (`data` parsed as JSON) until
   * the returned function is called. Errors (refused, connection lost) go to `onError`; the
   * stream is not reopened by itself. Uses fetch and a stream reader, as EventSource cannot ask
   * for loopback access.
   * @returns {(() => void) & {done: Promise<void>}} close
   */
  events(onEvent, { onError = () => {} } = {}) {
    const controller = new AbortController();
    let closed = false;
    const close = () => {
      closed = true;
      controller.abort();
    };
    close.done = this._stream(onEvent, controller).catch((e) => {
      if (!closed) onError(e);
    });
    return close;
  }

  /**
   * Follows the card sessions of a kiosk-mode agent (every card presence in a reader is a
   * session; removing the card, the agent's idle timeout, the reader leaving or the agent
   * stopping ends it). Built on {@link events}, which it reopens by itself after the connection
   * is lost (the agent restarting), waiting `retryMs`, doubled after each failure up to
   * `maxRetryMs`; a refusal that will not change by waiting (`consent-required`,
   * `origin-not-allowed`, ...) stops it. Every failure goes to `onError` first.
   *
   * - `onSessionStarted({reader, session, card})`: a card was put in a reader (or was there
   *   when the stream opened).
   * - `onSessionEnded({reader, session, reason})`: `reason` is the agent's (`card-removed`,
   *   `idle-timeout`, `reader-removed`, `agent-stopping`), or `missed` for a session that was
   *   gone when the stream reopened (it ended while the page was not connected: the agent
   *   restarted, or the connection dropped). Sessions are those the stream announced; a page
   *   that holds a citizen's data from session S clears it when S ends.
   * - `onEvent(event)`: every event, as {@link events} gives them.
   *
   * With a normal (not kiosk) agent nothing has a session and no callback but `onEvent` and
   * `onError` is ever called. Returns `stop()`; `stop.done` settles once it has stopped (by
   * `stop()` or a refusal), `stop.sessions()` lists the open sessions it knows.
   * @returns {(() => void) & {done: Promise<void>, sessions: () => Array<{reader: string, session: string}>}}
   */
  followSessions({
    onSessionStarted = () => {},
    onSessionEnded = () => {},
    onEvent = () => {},
    onError = () => {},
    retryMs = 1000,
    maxRetryMs = 30_000,
  } = {}) {
    const open = new Map(); // session -> reader
    let stopped = false;
    let close = null;
    let timer = null;
    let wait = retryMs;
    let finish;
    const done = new Promise((resolve) => {
      finish = resolve;
    });
    const report = (fn, arg) => {
      try {
        fn(arg);
      } catch (e) {
        queueMicrotask(() => {
          throw e;
        });
      }
    };
    const started = (reader, session, card) => {
      if (open.has(session)) return;
      open.set(session, reader);
      report(onSessionStarted, { reader, session, card: card ?? null });
    };
    const ended = (reader, session, reason) => {
      open.delete(session);
      report(onSessionEnded, { reader, session, reason });
    };
    const onStreamEvent = (event) => {
      if (stopped) return;
      const { type, data } = event;
      const isString = (v) => typeof v === "string" && v !== "";
      if (type === "status") {
        // The first event of every connection: the readers now. Sessions we knew that are not
        // there any more ended while we were not listening.
        wait = retryMs;
        const now = new Map();
        for (const r of Array.isArray(data?.readers) ? data.readers : []) {
          if (isString(r?.session) && isString(r?.name)) now.set(r.session, r);
        }
        for (const [session, reader] of [...open]) if (!now.has(session)) ended(reader, session, "missed");
        for (const [session, r] of now) started(r.name, session, r.card);
      } else if (type === "card-inserted" && isString(data?.session) && isString(data?.reader)) {
        started(data.reader, data.session, data.card);
      } else if (type === "session-ended" && isString(data?.session)) {
        ended(isString(data.reader) ? data.reader : (open.get(data.session) ?? ""), data.session,
          isString(data.reason) ? data.reason : "unknown");
      }
      report(onEvent, event);
    };
    const connect = () => {
      timer = null;
      if (stopped) return;
      close = this.events(onStreamEvent, {
        onError: (e) => {
          if (stopped) return;
          report(onError, e);
          const again = e instanceof EidBridgeError && (e.retryable || e.code === "agent-not-running");
          if (!again) {
            stopped = true;
            finish();
            return;
          }
          timer = setTimeout(connect, wait);
          wait = Math.min(wait * 2, maxRetryMs);
        },
      });
    };
    const stop = () => {
      if (stopped && close === null) return;
      stopped = true;
      if (timer !== null) clearTimeout(timer);
      timer = null;
      const c = close;
      close = null;
      if (c) {
        c();
        c.done.then(() => finish());
      } else {
        finish();
      }
    };
    stop.done = done;
    stop.sessions = () => [...open].map(([session, reader]) => ({ reader, session }));
    connect();
    return stop;
  }

  /**
   * `onSessionEnded(callback, options)`: {@link followSessions} with `callback` as
   * `onSessionEnded`. A kiosk desk page clears the citizen's data when the session it was read
   * from ends.
   */
  onSessionEnded(callback, options = {}) {
    return this.followSessions({ ...options, onSessionEnded: callback });
  }

  async _stream(onEvent, controller) {
    const res = await this._fetchOrThrow("/v1/events", {
      method: "GET",
      headers: { Accept: "text/event-stream" },
      signal: controller.signal,
    }, { timeoutMs: this.timeoutMs, headOnly: true });
    if (!res.ok) throw errorFromResponse(res.status, await readJson(res), this.baseUrl);
    if (!res.body) throw new AgentError("The event stream has no body.", { code: "invalid-response" });
    const reader = res.body.getReader();
    // Browsers end the body when the fetch is aborted; cancel the reader too, in case.
    const cancel = () => reader.cancel().catch(() => {});
    if (controller.signal.aborted) cancel();
    controller.signal.addEventListener("abort", cancel, { once: true });
    const decoder = new TextDecoder();
    const parser = new SseParser();
    try {
      for (;;) {
        const { value, done } = await reader.read();
        const text = done ? decoder.decode() : decoder.decode(value, { stream: true });
        for (const ev of parser.push(text)) {
          let data = ev.data;
          try {
            data = JSON.parse(ev.data);
          } catch {
            // not JSON: give the text
          }
          try {
            onEvent({ type: ev.type, data });
          } catch (e) {
            // The page's handler failed: report it, keep the stream.
            queueMicrotask(() => {
              throw e;
            });
          }
        }
        if (done) break;
      }
    } catch (e) {
      // An event too large, or a read error: do not leave the connection to the agent open.
      controller.abort();
      cancel();
      throw e;
    }
    if (controller.signal.aborted) return;
    throw new AgentNotRunningError("The agent closed the event stream.", {
      code: "agent-not-running",
      retryable: true,
      remedy: "Open the event stream again when the agent is back.",
    });
  }

  async _call(method, path, body, options = {}) {
    const { signal, timeoutMs } = options ?? {};
    const init = { method };
    if (body !== undefined) {
      init.headers = { "Content-Type": "application/json" };
      // Every POST of the API is a card operation: it takes the reader and session.
      init.body = JSON.stringify({ ...body, ...cardTarget(options ?? {}) });
    }
    return this._fetchOrThrow(path, init, { signal, timeoutMs: timeoutMs ?? this.timeoutMs });
  }

  /**
   * One fetch with the loopback options and a time limit. Without `headOnly`, reads the JSON
   * body and returns it (or throws the agent's error); with it, returns the Response once the
   * head is in (the body is then not under the time limit).
   */
  async _fetchOrThrow(path, init, { signal, timeoutMs, headOnly = false }) {
    const controller = new AbortController();
    const outer = init.signal ?? signal;
    const onOuterAbort = () => controller.abort(outer.reason);
    if (outer) {
      if (outer.aborted) onOuterAbort();
      else outer.addEventListener("abort", onOuterAbort, { once: true });
    }
    let timedOut = false;
    const timer = timeoutMs > 0 && Number.isFinite(timeoutMs)
      ? setTimeout(() => {
        timedOut = true;
        controller.abort();
      }, timeoutMs)
      : null;
    const timeoutError = () => new TimeoutError(`No answer from the agent within ${timeoutMs} ms.`, {
      code: "client-timeout",
      retryable: true,
      remedy: "Try again; if the agent's dialog is open, answer it.",
    });
    try {
      let res;
      try {
        res = await this._fetch(this.baseUrl + path, {
          ...init,
          mode: "cors",
          credentials: "omit",
          cache: "no-store",
          targetAddressSpace: "loopback",
          signal: controller.signal,
        });
      } catch (e) {
        if (timedOut) throw timeoutError();
        if (outer?.aborted) throw outer.reason ?? e;
        throw await this._unreachable(e);
      }
      if (headOnly) return res;
      let json;
      try {
        json = await readJson(res);
      } catch (e) {
        if (timedOut) throw timeoutError();
        if (outer?.aborted) throw outer.reason ?? e;
        throw e;
      }
      if (!res.ok) throw errorFromResponse(res.status, json, this.baseUrl);
      if (json === null) {
        throw new AgentError(`The agent's answer (HTTP ${res.status}) is not JSON.`, {
          code: "invalid-response",
          status: res.status,
        });
      }
      return json;
    } finally {
      if (timer !== null) clearTimeout(timer);
      // A streamed body stays tied to the caller's signal; a whole answer is read by now.
      if (!headOnly) outer?.removeEventListener?.("abort", onOuterAbort);
    }
  }

  /**
   * Why fetch failed without an answer. The browser gives the same TypeError when the agent
   * does not run, when its certificate is not trusted and when Local Network Access was
   * denied; the permission state tells the last one apart.
   */
  async _unreachable(cause) {
    const state = await this.localNetworkPermission();
    if (state === "denied") {
      return new LocalNetworkPermissionError(
        "The browser blocked access to the eID agent on this computer (Local Network Access denied).",
        {
          code: "local-network-permission-denied",
          cause,
          remedy:
            "Allow this site to access devices on your local network (site settings, \"Local network access\"), then reload the page. Administrators can allow the site with the LocalNetworkAccessAllowedForUrls policy.",
        },
      );
    }
    return new AgentNotRunningError(`The eID agent did not answer at ${this.baseUrl}.`, {
      code: "agent-not-running",
      cause,
      retryable: true,
      remedy:
        state === "prompt"
          ? "Allow this site to access devices on your local network when the browser asks; check that the eID agent is installed and running."
          : "Check that the eID agent is installed and running (and that its certificate was installed), then try again.",
    });
  }

  /**
   * The Local Network Access permission state for this page: "granted", "denied", "prompt", or
   * null when the browser has no such permission (older browsers, Firefox, Safari).
   */
  async localNetworkPermission() {
    const permissions = this._permissions;
    if (!permissions || typeof permissions.query !== "function") return null;
    for (const name of LOCAL_NETWORK_PERMISSIONS) {
      try {
        const status = await permissions.query({ name });
        if (status && typeof status.state === "string") return status.state;
      } catch {
        // unknown permission name in this browser: try the next one
      }
    }
    return null;
  }
}

/** The response body as JSON, or null when it is empty or not JSON. */
async function readJson(res) {
  const text = await res.text();
  if (text === "") return null;
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}
