// Tests of web/eid-bridge.js against a fake fetch: what goes on the wire, how answers and
// failures become errors, time limits, and event-stream parsing across chunk boundaries.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  EidBridge, EidBridgeError, AgentNotRunningError, LocalNetworkPermissionError, UserCancelledError,
  PinBlockedError, CardRemovedError, TimeoutError, WrongPinError, AgentError, SseParser,
  SessionEndedError, errorFromResponse, DEFAULT_BASE_URL,
} from "../eid-bridge.js";
import { readFileSync } from "node:fs";

const NONCE = "mUyzGkUmuNNaWjkgOp8WK6aXbCbzGvDPDBfbmC2vJ7Y=";

/** A fake fetch that records calls and answers with `answer(url, init)`. */
function fakeFetch(answer) {
  const calls = [];
  const fetch = async (url, init) => {
    calls.push({ url, init, body: init.body === undefined ? undefined : JSON.parse(init.body) });
    return answer(url, init);
  };
  return { fetch, calls };
}

const json = (status, value) =>
  new Response(JSON.stringify(value), { status, headers: { "content-type": "application/json" } });

const agentError = (status, code, extra = {}) =>
  json(status, { error: { code, message: `message of ${code}`, remedy: `remedy of ${code}`, retryable: false, ...extra } });

/** A fetch that never answers until its signal aborts (then rejects as browsers do). */
function hangingFetch() {
  let seen;
  const fetch = (url, init) => new Promise((_, reject) => {
    seen = init.signal;
    init.signal.addEventListener("abort", () => reject(init.signal.reason ?? new DOMException("aborted", "AbortError")));
  });
  return { fetch, signal: () => seen };
}

test("every call uses the loopback address space, cors mode and no credentials", async () => {
  const { fetch, calls } = fakeFetch(() => json(200, {}));
  const bridge = new EidBridge({ fetch });
  await bridge.status();
  await bridge.authenticate(NONCE);
  for (const { url, init } of calls) {
    assert.ok(url.startsWith(DEFAULT_BASE_URL + "/v1/"), url);
    assert.equal(init.targetAddressSpace, "loopback");
    assert.equal(init.mode, "cors");
    assert.equal(init.credentials, "omit");
    assert.ok(init.signal instanceof AbortSignal);
  }
  assert.equal(calls[0].init.method, "GET");
  assert.equal(calls[0].init.headers, undefined, "GET /v1/status is a simple request (no preflight)");
});

test("request bodies are exactly what the API document says", async () => {
  const { fetch, calls } = fakeFetch(() => json(200, { ok: true }));
  const bridge = new EidBridge({ fetch, baseUrl: "https://localhost:24180/" });
  await bridge.authenticate(NONCE);
  await bridge.getSigningCertificate();
  await bridge.getAuthenticationCertificate();
  await bridge.sign("Q0VSVA==", new Uint8Array([0xfb, 0xff, 0x00, 0x01]), "SHA-256");
  await bridge.readIdentity({ fields: ["surname"], photo: true });
  await bridge.readIdentity();
  await bridge.readEmrtd({ can: "123456", challengeNonce: NONCE });
  await bridge.readEmrtd({ mrz: "L898902C3 740812 120415", dataGroups: [1, 2, 11], challengeNonce: NONCE });
  const seen = calls.map((c) => [c.init.method, c.url, c.body]);
  assert.deepEqual(seen, [
    ["POST", "https://localhost:24180/v1/authenticate", { challengeNonce: NONCE }],
    ["POST", "https://localhost:24180/v1/certificate", { type: "signing" }],
    ["POST", "https://localhost:24180/v1/certificate", { type: "authentication" }],
    ["POST", "https://localhost:24180/v1/sign", { certificate: "Q0VSVA==", hash: "+/8AAQ==", hashFunction: "SHA-256" }],
    ["POST", "https://localhost:24180/v1/identity", { fields: ["surname"], photo: true }],
    ["POST", "https://localhost:24180/v1/identity", {}],
    ["POST", "https://localhost:24180/v1/emrtd/read", { can: "123456", challengeNonce: NONCE }],
    ["POST", "https://localhost:24180/v1/emrtd/read", { mrz: "L898902C3 740812 120415", dataGroups: [1, 2, 11], challengeNonce: NONCE }],
  ]);
  for (const c of calls) assert.deepEqual(c.init.headers, { "Content-Type": "application/json" });
});

test("a successful answer is returned as parsed JSON", async () => {
  const token = { unverifiedCertificate: "MII=", algorithm: "ES256", signature: "c2ln", format: "web-eid:1.0", appVersion: "x" };
  const { fetch } = fakeFetch(() => json(200, token));
  assert.deepEqual(await new EidBridge({ fetch }).authenticate(NONCE), token);
});

test("agent error codes map to their error classes with code, remedy and status", async () => {
  const cases = [
    ["user-cancelled", 400, UserCancelledError],
    ["consent-denied", 403, UserCancelledError],
    ["pin-blocked", 403, PinBlockedError],
    ["card-removed", 409, CardRemovedError],
    ["operation-timeout", 504, TimeoutError],
    ["queue-timeout", 503, TimeoutError],
    ["prompt-timeout", 408, TimeoutError],
    ["wrong-pin", 403, WrongPinError],
    ["no-card", 409, AgentError],
    ["origin-denied", 403, AgentError],
    ["a-code-from-the-future", 418, AgentError],
  ];
  for (const [code, status, Class] of cases) {
    const { fetch } = fakeFetch(() => agentError(status, code));
    const err = await new EidBridge({ fetch }).authenticate(NONCE).then(
      () => assert.fail("resolved"), (e) => e);
    assert.ok(err instanceof Class, `${code} -> ${err.constructor.name}`);
    assert.ok(err instanceof EidBridgeError);
    assert.equal(err.name, Class.name);
    assert.equal(err.code, code);
    assert.equal(err.remedy, `remedy of ${code}`);
    assert.equal(err.message, `message of ${code}`);
    assert.equal(err.status, status);
    assert.equal(err.retriesLeft, null);
  }
});

test("wrong-pin carries retriesLeft and rate-limited retryAfterSeconds", async () => {
  let { fetch } = fakeFetch(() => agentError(403, "wrong-pin", { retriesLeft: 2 }));
  const wrong = await new EidBridge({ fetch }).authenticate(NONCE).catch((e) => e);
  assert.ok(wrong instanceof WrongPinError);
  assert.equal(wrong.retriesLeft, 2);
  ({ fetch } = fakeFetch(() => agentError(429, "rate-limited", { retryAfterSeconds: 30, retryable: true })));
  const limited = await new EidBridge({ fetch }).authenticate(NONCE).catch((e) => e);
  assert.equal(limited.retryAfterSeconds, 30);
  assert.equal(limited.retryable, true);
});

test("answers that are not the agent's JSON are invalid-response errors", async () => {
  for (const res of [
    () => new Response("<html>proxy error</html>", { status: 502 }),
    () => json(500, { message: "no error object" }),
    () => new Response("not json", { status: 200 }),
  ]) {
    const { fetch } = fakeFetch(res);
    const err = await new EidBridge({ fetch }).status().catch((e) => e);
    assert.ok(err instanceof AgentError, String(err));
    assert.equal(err.code, "invalid-response");
  }
  assert.equal(errorFromResponse(400, null).code, "invalid-response");
});

const networkFailure = () => Promise.reject(new TypeError("Failed to fetch"));

test("a network failure with Local Network Access denied is a permission error", async () => {
  const asked = [];
  const permissions = { query: async ({ name }) => { asked.push(name); return { state: "denied" }; } };
  const err = await new EidBridge({ fetch: networkFailure, permissions }).status().catch((e) => e);
  assert.ok(err instanceof LocalNetworkPermissionError, String(err));
  assert.equal(err.code, "local-network-permission-denied");
  assert.match(err.remedy, /LocalNetworkAccessAllowedForUrls/);
  assert.ok(err.cause instanceof TypeError);
  assert.deepEqual(asked, ["local-network-access"]);
});

test("the older permission name is asked when the new one is unknown", async () => {
  const asked = [];
  const permissions = {
    query: async ({ name }) => {
      asked.push(name);
      if (name === "local-network-access") throw new TypeError("not a valid PermissionName");
      return { state: "denied" };
    },
  };
  const err = await new EidBridge({ fetch: networkFailure, permissions }).status().catch((e) => e);
  assert.ok(err instanceof LocalNetworkPermissionError);
  assert.deepEqual(asked, ["local-network-access", "loopback-network"]);
});

test("a network failure with the permission granted, unknown or absent means the agent is not running", async () => {
  for (const permissions of [
    { query: async () => ({ state: "granted" }) },
    { query: async () => ({ state: "prompt" }) },
    { query: async () => { throw new TypeError("unknown"); } },
    null,
  ]) {
    const bridge = new EidBridge({ fetch: networkFailure, permissions: permissions ?? { query: undefined } });
    const err = await bridge.authenticate(NONCE).catch((e) => e);
    assert.ok(err instanceof AgentNotRunningError, String(err));
    assert.equal(err.code, "agent-not-running");
    assert.equal(err.retryable, true);
    assert.equal(err.status, null);
  }
});

test("the client's own time limit aborts the fetch and throws TimeoutError", async () => {
  const hanging = hangingFetch();
  const started = Date.now();
  const err = await new EidBridge({ fetch: hanging.fetch, timeoutMs: 50 }).authenticate(NONCE).catch((e) => e);
  assert.ok(err instanceof TimeoutError, String(err));
  assert.equal(err.code, "client-timeout");
  assert.ok(hanging.signal().aborted, "the fetch was aborted, not left running");
  assert.ok(Date.now() - started < 5000);
});

test("a per-call timeout overrides the client's", async () => {
  const hanging = hangingFetch();
  const bridge = new EidBridge({ fetch: hanging.fetch, timeoutMs: 60_000 });
  const err = await bridge.status({ timeoutMs: 20 }).catch((e) => e);
  assert.equal(err.code, "client-timeout");
});

test("a body that stalls past the time limit is a timeout too", async () => {
  const fetch = async (url, init) => {
    const body = new ReadableStream({
      start(controller) {
        controller.enqueue(new TextEncoder().encode('{"version":'));
        init.signal.addEventListener("abort", () => controller.error(new DOMException("aborted", "AbortError")));
      },
    });
    return new Response(body, { status: 200 });
  };
  const err = await new EidBridge({ fetch, timeoutMs: 50 }).status().catch((e) => e);
  assert.ok(err instanceof TimeoutError, String(err));
});

test("the caller's AbortSignal cancels with the caller's reason, not a timeout", async () => {
  const hanging = hangingFetch();
  const controller = new AbortController();
  const pending = new EidBridge({ fetch: hanging.fetch }).authenticate(NONCE, { signal: controller.signal });
  controller.abort(new Error("user navigated away"));
  const err = await pending.catch((e) => e);
  assert.equal(err.message, "user navigated away");
  assert.ok(hanging.signal().aborted);
});

// ---- Server-Sent Events

const STREAM =
  "\uFEFF: keep-alive\r\n\r\n" +
  "event: status\r\ndata: {\"readers\":[],\r\ndata: \"api\":\"v1\"}\r\n\r\n" +
  "event: card-inserted\ndata: {\"reader\":\"Lecteur é€ 😀\"}\n\n" +
  "id: 7\rdata:no space\r\r" +
  "event: ignored-without-data\n\n" +
  "data\n\n" +
  "event: card-removed\ndata: {\"reader\":\"r\"}\n\n";
const EXPECTED = [
  { type: "status", data: '{"readers":[],\n"api":"v1"}', lastEventId: "" },
  { type: "card-inserted", data: '{"reader":"Lecteur é€ 😀"}', lastEventId: "" },
  { type: "message", data: "no space", lastEventId: "7" },
  { type: "message", data: "", lastEventId: "7" },
  { type: "card-removed", data: '{"reader":"r"}', lastEventId: "7" },
];

test("the event parser gives the same events however the text is cut", () => {
  const whole = new SseParser().push(STREAM);
  assert.deepEqual(whole, EXPECTED);
  for (let cut = 0; cut <= STREAM.length; cut++) {
    const p = new SseParser();
    const events = [...p.push(STREAM.slice(0, cut)), ...p.push(STREAM.slice(cut))];
    assert.deepEqual(events, EXPECTED, `cut at ${cut}: ${JSON.stringify(STREAM.slice(cut - 2, cut + 2))}`);
  }
  const p = new SseParser();
  const oneByOne = [...STREAM].flatMap((c) => p.push(c));
  assert.deepEqual(oneByOne, EXPECTED);
});

test("an event without its blank line is not dispatched, and an endless one is refused", () => {
  const p = new SseParser();
  assert.deepEqual(p.push("event: status\ndata: {}\n"), []);
  assert.equal(p.push("\n").length, 1);
  assert.throws(() => new SseParser().push("data: " + "x".repeat(2 << 20)), EidBridgeError);
});

/** A Response whose body delivers `bytes` in pieces of `step` bytes. */
function streamResponse(bytes, step, { end = true } = {}) {
  let offset = 0;
  const body = new ReadableStream({
    pull(controller) {
      if (offset >= bytes.length) {
        if (end) controller.close();
        return new Promise(() => {}); // never ends
      }
      controller.enqueue(bytes.slice(offset, offset + step));
      offset += step;
    },
  });
  return new Response(body, { status: 200, headers: { "content-type": "text/event-stream" } });
}

test("events() decodes UTF-8 and events split across network chunks, and parses JSON data", async () => {
  const bytes = new TextEncoder().encode(STREAM);
  for (const step of [1, 2, 3, 5, 7, 64]) {
    const seen = [];
    const errors = [];
    const { fetch, calls } = fakeFetch(() => streamResponse(bytes, step));
    const close = new EidBridge({ fetch }).events((e) => seen.push(e), { onError: (e) => errors.push(e) });
    await close.done;
    assert.deepEqual(seen.map((e) => e.type), EXPECTED.map((e) => e.type), `step ${step}`);
    assert.deepEqual(seen[1].data, { reader: "Lecteur é€ 😀" }, `step ${step}`);
    assert.equal(seen[2].data, "no space", "non-JSON data is given as text");
    assert.equal(calls[0].url, DEFAULT_BASE_URL + "/v1/events");
    assert.equal(calls[0].init.targetAddressSpace, "loopback");
    assert.equal(errors.length, 1, "the end of the stream is reported");
    assert.ok(errors[0] instanceof AgentNotRunningError);
  }
});

test("events() closes quietly when asked and reports a refusal", async () => {
  const seen = [];
  const errors = [];
  let signal;
  const fetch = async (url, init) => {
    signal = init.signal;
    return streamResponse(new TextEncoder().encode("event: status\ndata: {}\n\n"), 4, { end: false });
  };
  const close = new EidBridge({ fetch }).events((e) => seen.push(e), { onError: (e) => errors.push(e) });
  while (seen.length === 0) await new Promise((r) => setTimeout(r, 5));
  close();
  await close.done;
  assert.ok(signal.aborted, "closing aborts the fetch");
  assert.deepEqual(errors, [], "closing is not an error");

  const refused = fakeFetch(() => agentError(403, "consent-required"));
  const errs = [];
  const close2 = new EidBridge({ fetch: refused.fetch }).events(() => assert.fail("no event"), { onError: (e) => errs.push(e) });
  await close2.done;
  assert.equal(errs.length, 1);
  assert.ok(errs[0] instanceof AgentError);
  assert.equal(errs[0].code, "consent-required");
});

test("events() reports an agent that is not running", async () => {
  const errs = [];
  const close = new EidBridge({ fetch: networkFailure, permissions: { query: async () => ({ state: "granted" }) } })
    .events(() => {}, { onError: (e) => errs.push(e) });
  await close.done;
  assert.ok(errs[0] instanceof AgentNotRunningError);
});

// ---- Kiosk mode: reader and session, the new codes, following sessions

test("card operations send the reader and session of the call's options; status does not", async () => {
  const { fetch, calls } = fakeFetch(() => json(200, { ok: true }));
  const bridge = new EidBridge({ fetch });
  const at = { reader: "Virtual PCD 00 01", session: "9f".repeat(16) };
  await bridge.status(at);
  await bridge.getAuthenticationCertificate(at);
  await bridge.getSigningCertificate({ reader: at.reader });
  await bridge.authenticate(NONCE, at);
  await bridge.sign("Q0VSVA==", "aGFzaA==", "SHA-256", { session: at.session });
  await bridge.readIdentity({ photo: true }, at);
  await bridge.readEmrtd({ can: "123456", challengeNonce: NONCE }, { ...at, timeoutMs: 5000 });
  await bridge.readEmrtd({ can: "123456", challengeNonce: NONCE }, { reader: null, session: undefined });
  assert.equal(calls[0].init.body, undefined, "GET /v1/status has no body");
  assert.deepEqual(calls.slice(1).map((c) => c.body), [
    { type: "authentication", ...at },
    { type: "signing", reader: at.reader },
    { challengeNonce: NONCE, ...at },
    { certificate: "Q0VSVA==", hash: "aGFzaA==", hashFunction: "SHA-256", session: at.session },
    { photo: true, ...at },
    { can: "123456", challengeNonce: NONCE, ...at },
    { can: "123456", challengeNonce: NONCE },
  ]);
  for (const bad of [{ reader: "" }, { reader: 7 }, { session: "" }, { session: ["x"] }]) {
    await assert.rejects(bridge.authenticate(NONCE, bad), TypeError, JSON.stringify(bad));
  }
  assert.equal(calls.length, 8, "a bad reader or session is not sent");
});

test("kiosk codes: session-ended and card-removed have classes, origin-not-allowed keeps the agent's words", async () => {
  const session = "ab".repeat(16);
  let { fetch } = fakeFetch(() => agentError(409, "session-ended", { session }));
  const ended = await new EidBridge({ fetch }).readEmrtd({ can: "123456", challengeNonce: NONCE }).catch((e) => e);
  assert.ok(ended instanceof SessionEndedError);
  assert.equal(ended.code, "session-ended");
  assert.equal(ended.session, session);
  ({ fetch } = fakeFetch(() => agentError(409, "card-removed", { session: 42 })));
  const removed = await new EidBridge({ fetch }).authenticate(NONCE).catch((e) => e);
  assert.ok(removed instanceof CardRemovedError);
  assert.equal(removed.session, null, "a session that is not a string is ignored");
  ({ fetch } = fakeFetch(() =>
    json(403, { error: { code: "origin-not-allowed", message: "This desk's eID agent serves only https://desk.example", remedy: "Open the desk page from its configured address." } })));
  const refused = await new EidBridge({ fetch }).status().catch((e) => e);
  assert.ok(refused instanceof AgentError);
  assert.equal(refused.code, "origin-not-allowed");
  assert.equal(refused.userMessage(), "This desk's eID agent serves only https://desk.example. Open the desk page from its configured address.");
  assert.equal(new EidBridgeError("Only a message", {}).userMessage(), "Only a message.");
});

test("the types list every error code of the agent", () => {
  const root = new URL("../../", import.meta.url);
  const rs = readFileSync(new URL("agent/src/bridge/error.rs", root), "utf8");
  const table = rs.slice(rs.indexOf("pub const CODES"), rs.indexOf("];", rs.indexOf("pub const CODES")));
  const codes = [...table.matchAll(/\(\s*"([a-z-]+)",\s*(\d+),/g)].map((m) => m[1]);
  assert.ok(codes.length >= 30, `parsed ${codes.length} codes`);
  const dts = readFileSync(new URL("web/eid-bridge.d.ts", root), "utf8");
  const union = dts.slice(dts.indexOf("export type ErrorCode"), dts.indexOf(";", dts.indexOf("export type ErrorCode")));
  for (const code of codes) assert.ok(union.includes(`"${code}"`), `${code} missing from ErrorCode in eid-bridge.d.ts`);
});

/** A fetch answering /v1/events with the next script entry: a stream text (that then ends), or a Response. */
function scriptedEvents(script) {
  const calls = [];
  const fetch = async (url, init) => {
    calls.push(url);
    const next = script.shift();
    if (next === undefined) return new Promise((_, reject) => init.signal.addEventListener("abort", () => reject(new DOMException("aborted", "AbortError"))));
    if (next instanceof Response) return next;
    return streamResponse(new TextEncoder().encode(next), 16);
  };
  return { fetch, calls };
}

const sse = (type, data) => `event: ${type}\ndata: ${JSON.stringify(data)}\n\n`;
const S1 = "11".repeat(16);
const S2 = "22".repeat(16);
const S3 = "33".repeat(16);

test("followSessions: started and ended sessions, missed ones after a reconnect, stops on a refusal", async () => {
  const { fetch, calls } = scriptedEvents([
    // First connection: S1 already in a reader; S2 arrives; S1 is removed; the agent goes away.
    sse("status", { readers: [{ name: "A", cardPresent: true, card: null, session: S1 }, { name: "B", cardPresent: false, card: null, session: null }] }) +
      sse("card-inserted", { reader: "B", card: { id: "emrtd", name: "Passport" }, session: S2 }) +
      sse("card-removed", { reader: "A" }) +
      sse("session-ended", { reader: "A", session: S1, reason: "card-removed" }),
    // The agent restarted: S2 is gone (missed), S3 is new.
    sse("status", { readers: [{ name: "B", cardPresent: true, card: null, session: S3 }] }) +
      sse("session-ended", { reader: "B", session: S3, reason: "idle-timeout" }),
    // Then a refusal that waiting does not change.
    agentError(403, "origin-not-allowed"),
  ]);
  const started = [];
  const ended = [];
  const errors = [];
  const events = [];
  const stop = new EidBridge({ fetch }).followSessions({
    onSessionStarted: (s) => started.push(s),
    onSessionEnded: (e) => ended.push(e),
    onEvent: (e) => events.push(e.type),
    onError: (e) => errors.push(e.code),
    retryMs: 1,
  });
  await stop.done;
  assert.deepEqual(started, [
    { reader: "A", session: S1, card: null },
    { reader: "B", session: S2, card: { id: "emrtd", name: "Passport" } },
    { reader: "B", session: S3, card: null },
  ]);
  assert.deepEqual(ended, [
    { reader: "A", session: S1, reason: "card-removed" },
    { reader: "B", session: S2, reason: "missed" },
    { reader: "B", session: S3, reason: "idle-timeout" },
  ]);
  assert.deepEqual(errors, ["agent-not-running", "agent-not-running", "origin-not-allowed"]);
  assert.equal(calls.length, 3, "reopened after each loss, not after the refusal");
  assert.deepEqual(events.slice(0, 4), ["status", "card-inserted", "card-removed", "session-ended"]);
  assert.deepEqual(stop.sessions(), []);
});

test("onSessionEnded with a normal agent: no session, no callback; stop() ends it", async () => {
  const { fetch } = scriptedEvents([
    sse("status", { readers: [{ name: "A", cardPresent: true, card: null }] }) +
      sse("card-inserted", { reader: "A", card: null }) + sse("card-removed", { reader: "A" }),
  ]);
  const ended = [];
  const errors = [];
  const stop = new EidBridge({ fetch }).onSessionEnded((e) => ended.push(e), { onError: (e) => errors.push(e), retryMs: 1 });
  // The first stream ends (reported), the second connection hangs until stop().
  while (errors.length === 0) await new Promise((r) => setTimeout(r, 2));
  await new Promise((r) => setTimeout(r, 10));
  stop();
  await stop.done;
  assert.deepEqual(ended, []);
  assert.equal(errors.length, 1, "stopping is not an error");
});

test("followSessions keeps track of open sessions; an ended one takes its reader from the start", async () => {
  const { fetch } = scriptedEvents([
    sse("card-inserted", { reader: "A", card: null, session: S1 }) + sse("card-inserted", { reader: "B", card: null, session: S2 }) +
      sse("session-ended", { session: S1, reason: "card-removed" }),
  ]);
  const ended = [];
  const stop = new EidBridge({ fetch }).followSessions({ onSessionEnded: (e) => ended.push(e), retryMs: 60_000 });
  while (ended.length === 0) await new Promise((r) => setTimeout(r, 2));
  assert.deepEqual(ended, [{ reader: "A", session: S1, reason: "card-removed" }]);
  assert.deepEqual(stop.sessions(), [{ reader: "B", session: S2 }]);
  stop();
  await stop.done;
});
