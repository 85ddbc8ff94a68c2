// Tests of the enrolment service's pages (web/enrolment): the page contract the end-to-end test
// drives (ids, data-step sections, the error line, aria-busy), the CSP rules (no inline script
// or style, no external resources), accessibility basics (labels, autocomplete), and the DOM-free
// helpers of common.js (API errors, messages, MRZ/CAN, DER and DG2 reading) plus the DOM ones
// against a tiny fake document.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { X509Certificate } from "node:crypto";
import { fileURLToPath } from "node:url";
import {
  ApiError, InputError, apiErrorFromResponse, postJson, getJson, loadConfig, validBridgeUrl,
  describeError, showError, clearError, showStep, currentStep, setBusy, whileBusy, takeValue,
  canAccess, mrzAccess, base64ToBytes, bytesToBase64, readTlv, certificateHolderName, sessionEndedText,
} from "../enrolment/common.js";
import {
  WrongPinError, CardRemovedError, AgentNotRunningError, LocalNetworkPermissionError,
  UserCancelledError, PinBlockedError, AgentError, SessionEndedError, errorFromResponse,
} from "../eid-bridge.js";

const dir = fileURLToPath(new URL("../enrolment/", import.meta.url));
const read = (name) => readFileSync(dir + name, "utf8");

/** The files the server embeds (api.md §2): exactly these, nothing else. */
const HTML = ["index.html", "enrol.html", "login.html", "desk.html", "outbox.html"];
const STATIC = ["common.js", "enrol.js", "login.js", "desk.js", "outbox.js", "style.css"];

// ---------------------------------------------------------------------------------------------
// The page contract (api.md §3)

const CONTRACT = {
  "enrol.html": {
    page: "enrol",
    steps: ["read-card", "authenticate", "mobile-key", "confirm", "done"],
    ids: [
      "btn-read-card", "card-holder", "btn-authenticate", "identity-name", "identity-number", "contact",
      "pin", "pin-repeat", "btn-register", "code-sent-to", "code", "btn-confirm", "btn-resend",
      "done-name", "done-contact",
    ],
    script: "enrol.js",
  },
  "login.html": {
    page: "login",
    steps: ["credentials", "code", "done"],
    ids: ["contact", "pin", "btn-login", "code-sent-to", "code", "btn-confirm", "welcome-name"],
    script: "login.js",
  },
  "desk.html": {
    page: "desk",
    steps: ["operator-login", "document", "mobile-key", "confirm", "done"],
    ids: [
      "operator", "password", "btn-operator-login", "can", "mrz-document-number", "mrz-birth",
      "mrz-expiry", "btn-read-document", "identity-name", "identity-number", "identity-nationality",
      "identity-birth", "contact", "pin", "pin-repeat", "btn-register", "code-sent-to", "code",
      "btn-confirm", "btn-resend", "done-name", "btn-next-citizen",
    ],
    script: "desk.js",
  },
  "index.html": { page: "index", steps: [], ids: ["link-enrol", "link-login", "link-desk"], script: null },
  "outbox.html": { page: "outbox", steps: [], ids: ["outbox"], script: "outbox.js" },
};

/** Start tags of `html` as {name, attrs (Map), index}. Enough for our own, well-formed files. */
function tags(html) {
  const out = [];
  const re = /<([a-zA-Z][a-zA-Z0-9-]*)((?:\s+[^\s=>/]+(?:\s*=\s*(?:"[^"]*"|'[^']*'|[^\s>]+))?)*)\s*\/?>/g;
  for (let m; (m = re.exec(html));) {
    const attrs = new Map();
    const are = /([^\s=>/]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+)))?/g;
    for (let a; (a = are.exec(m[2]));) attrs.set(a[1].toLowerCase(), a[2] ?? a[3] ?? a[4] ?? "");
    out.push({ name: m[1].toLowerCase(), attrs, index: m.index, end: re.lastIndex });
  }
  return out;
}

const idsOf = (html) => tags(html).filter((t) => t.attrs.has("id")).map((t) => t.attrs.get("id"));

test("the directory holds exactly the files the server embeds", () => {
  assert.deepEqual(readdirSync(dir).sort(), [...HTML, ...STATIC].sort());
});

for (const [file, c] of Object.entries(CONTRACT)) {
  test(`${file}: page, steps and ids of the contract`, () => {
    const html = read(file);
    const all = tags(html);
    const mains = all.filter((t) => t.name === "main");
    assert.equal(mains.length, 1, "one <main>");
    assert.equal(mains[0].attrs.get("data-page"), c.page);
    assert.ok(["true", "false"].includes(mains[0].attrs.get("aria-busy")), "main has aria-busy");
    if (c.script) assert.equal(mains[0].attrs.get("aria-busy"), "true", "busy until the script has started");

    const ids = idsOf(html);
    const dup = ids.filter((id, i) => ids.indexOf(id) !== i);
    assert.deepEqual(dup, [], "ids are unique");
    for (const id of [...c.ids, "error"]) assert.ok(ids.includes(id), `#${id} in ${file}`);

    const error = all.find((t) => t.attrs.get("id") === "error");
    assert.equal(error.name, "p");
    assert.equal(error.attrs.get("role"), "alert");
    assert.ok(error.attrs.has("hidden"), "#error starts hidden");

    const sections = all.filter((t) => t.attrs.has("data-step"));
    assert.deepEqual(sections.map((t) => t.attrs.get("data-step")), c.steps, "steps in order");
    sections.forEach((s, i) => {
      assert.equal(s.name, "section");
      assert.equal(s.attrs.has("hidden"), i > 0, `only the first step is visible at first (${s.attrs.get("data-step")})`);
    });

    // Each contract id (but the shared error line) sits in the step the contract names.
    const stepOf = (id) => {
      const t = all.find((x) => x.attrs.get("id") === id);
      const before = sections.filter((s) => s.index < t.index);
      return before.length ? before[before.length - 1].attrs.get("data-step") : null;
    };
    if (c.page === "enrol") {
      assert.equal(stepOf("btn-read-card"), "read-card");
      assert.equal(stepOf("btn-authenticate"), "authenticate");
      for (const id of ["identity-name", "identity-number", "contact", "pin", "pin-repeat", "btn-register"]) assert.equal(stepOf(id), "mobile-key", id);
      for (const id of ["code-sent-to", "code", "btn-confirm", "btn-resend"]) assert.equal(stepOf(id), "confirm", id);
      for (const id of ["done-name", "done-contact"]) assert.equal(stepOf(id), "done", id);
    }
    if (c.page === "desk") {
      for (const id of ["operator", "password", "btn-operator-login"]) assert.equal(stepOf(id), "operator-login", id);
      for (const id of ["can", "mrz-document-number", "mrz-birth", "mrz-expiry", "btn-read-document"]) assert.equal(stepOf(id), "document", id);
      for (const id of ["identity-name", "identity-nationality", "identity-birth", "contact", "pin", "btn-register"]) assert.equal(stepOf(id), "mobile-key", id);
      for (const id of ["done-name", "btn-next-citizen"]) assert.equal(stepOf(id), "done", id);
    }
    if (c.page === "login") {
      for (const id of ["contact", "pin", "btn-login"]) assert.equal(stepOf(id), "credentials", id);
      for (const id of ["code-sent-to", "code", "btn-confirm"]) assert.equal(stepOf(id), "code", id);
      assert.equal(stepOf("welcome-name"), "done");
    }
    if (c.page === "index") {
      const href = (id) => all.find((t) => t.attrs.get("id") === id).attrs.get("href");
      assert.equal(href("link-enrol"), "/enrol");
      assert.equal(href("link-login"), "/login");
      assert.equal(href("link-desk"), "/desk");
    }
    if (c.page === "outbox") {
      assert.equal(all.find((t) => t.attrs.get("id") === "outbox").name, "table");
      assert.match(html, /Development only/);
    }

    // The page's script, as a module from /static.
    const scripts = all.filter((t) => t.name === "script");
    assert.deepEqual(scripts.map((s) => s.attrs.get("src")), c.script ? [`/static/${c.script}`] : []);
    for (const s of scripts) assert.equal(s.attrs.get("type"), "module");
  });
}

test("buttons of the contract are buttons, inputs are inputs", () => {
  for (const [file, c] of Object.entries(CONTRACT)) {
    const all = tags(read(file));
    for (const id of c.ids) {
      const t = all.find((x) => x.attrs.get("id") === id);
      if (id.startsWith("btn-")) assert.equal(t.name, "button", `${file} #${id}`);
      if (["contact", "pin", "pin-repeat", "code", "operator", "password", "can"].includes(id) || id.startsWith("mrz-")) {
        assert.equal(t.name, "input", `${file} #${id}`);
      }
    }
  }
});

// ---------------------------------------------------------------------------------------------
// CSP: default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:

test("no inline script, no inline style, no event handler attributes, no javascript: URLs", () => {
  for (const file of HTML) {
    const html = read(file);
    for (const t of tags(html)) {
      assert.notEqual(t.name, "style", `${file}: <style>`);
      assert.ok(!t.attrs.has("style"), `${file}: style attribute on <${t.name}>`);
      for (const a of t.attrs.keys()) assert.ok(!/^on/.test(a), `${file}: ${a} on <${t.name}>`);
      for (const a of ["href", "src", "action", "formaction"]) {
        assert.ok(!/^\s*javascript:/i.test(t.attrs.get(a) ?? ""), `${file}: javascript: URL`);
      }
      if (t.name === "script") {
        assert.ok(t.attrs.get("src"), `${file}: script without src`);
        assert.match(html.slice(t.end), /^\s*<\/script>/, `${file}: script with content`);
      }
    }
    assert.doesNotMatch(html, /<script(?![^>]*\bsrc=)[^>]*>/i, `${file}: inline script`);
  }
});

test("no external resources: only /static files, data: icons and same-site links", () => {
  const embedded = new Set([...STATIC, "eid-bridge.js"]);
  for (const file of HTML) {
    for (const t of tags(read(file))) {
      const src = t.attrs.get("src");
      if (src !== undefined && t.name !== "img") {
        assert.match(src, /^\/static\/[a-z-]+\.js$/, `${file}: ${src}`);
        assert.ok(embedded.has(src.slice(8)), `${file}: ${src} is served`);
      }
      const href = t.attrs.get("href");
      if (href === undefined) continue;
      if (t.name === "link" && t.attrs.get("rel") === "stylesheet") assert.equal(href, "/static/style.css");
      else if (t.name === "link") assert.equal(href, "data:,", `${file}: <link href=${href}>`);
      else assert.match(href, /^(\/[a-z/-]*|#[a-z-]+)$/, `${file}: <a href=${href}> stays on the site`);
    }
  }
  for (const file of STATIC) {
    const text = read(file);
    assert.doesNotMatch(text, /https?:\/\/(?!127\.0\.0\.1)/, `${file}: an absolute URL`);
    if (file.endsWith(".css")) {
      assert.doesNotMatch(text, /@import|url\(/, `${file}: imports or url()`);
    } else {
      assert.doesNotMatch(text, /\binnerHTML\b|\bouterHTML\b|insertAdjacentHTML|document\.write|\beval\(|new Function/, `${file}: HTML injection or eval`);
      for (const m of text.matchAll(/^\s*import\s[^;]*?from\s+"([^"]+)"/gms)) {
        assert.ok(["./common.js", "/static/eid-bridge.js"].includes(m[1]), `${file} imports ${m[1]}`);
      }
    }
  }
});

test("page scripts use only ids their page has", () => {
  for (const [file, c] of Object.entries(CONTRACT)) {
    if (!c.script) continue;
    const ids = new Set(idsOf(read(file)));
    const js = read(c.script);
    const used = [...js.matchAll(/(?:getElementById|onAction|setText|takeValue|valueOf)\("([a-z0-9-]+)"/g)].map((m) => m[1]);
    for (const m of js.matchAll(/\[\s*((?:"[a-z0-9-]+",?\s*)+)\]/g)) {
      for (const id of m[1].matchAll(/"([a-z0-9-]+)"/g)) if (/^(identity-|mrz-|can$|contact$|pin$|pin-repeat$|code$|code-sent-to$|done-)/.test(id[1])) used.push(id[1]);
    }
    for (const id of used) assert.ok(ids.has(id), `${c.script} uses #${id}, missing from ${file}`);
    for (const step of [...js.matchAll(/showStep\("([a-z-]+)"/g)].map((m) => m[1])) {
      assert.ok(c.steps.includes(step), `${c.script} shows unknown step ${step}`);
    }
  }
});

// ---------------------------------------------------------------------------------------------
// Forms and accessibility

test("every input has a label; forms never submit to a URL", () => {
  for (const file of HTML) {
    const html = read(file);
    const all = tags(html);
    const labelled = new Set(all.filter((t) => t.name === "label").map((t) => t.attrs.get("for")));
    for (const t of all.filter((x) => x.name === "input")) {
      if (t.attrs.get("type") === "radio") {
        assert.match(html.slice(0, t.index), /<label>\s*$/, `${file}: radio ${t.attrs.get("id")} inside its label`);
      } else {
        assert.ok(labelled.has(t.attrs.get("id")), `${file}: #${t.attrs.get("id")} has a <label for>`);
      }
    }
    for (const f of all.filter((x) => x.name === "form")) {
      assert.equal(f.attrs.get("method"), "dialog", `${file}: forms use method=dialog (no navigation, no PIN in a URL)`);
      assert.ok(f.attrs.has("novalidate"), `${file}: the page checks and explains, not the browser bubble`);
      assert.ok(!f.attrs.has("action"), `${file}: no form action`);
    }
    const lang = all.find((t) => t.name === "html");
    assert.equal(lang.attrs.get("lang"), "en", `${file}: lang`);
    assert.ok(all.some((t) => t.name === "meta" && t.attrs.get("name") === "viewport"), `${file}: viewport`);
  }
});

test("autocomplete and keyboards: one-time-code, new PINs, numeric PINs, contacts", () => {
  const input = (file, id) => tags(read(file)).find((t) => t.attrs.get("id") === id).attrs;
  for (const file of ["enrol.html", "login.html", "desk.html"]) {
    assert.equal(input(file, "code").get("autocomplete"), "one-time-code", file);
    assert.equal(input(file, "code").get("inputmode"), "numeric", file);
    assert.equal(input(file, "pin").get("type"), "password", file);
    assert.equal(input(file, "pin").get("inputmode"), "numeric", file);
  }
  for (const file of ["enrol.html", "desk.html"]) {
    for (const id of ["pin", "pin-repeat"]) assert.equal(input(file, id).get("autocomplete"), "new-password", `${file} #${id}`);
    assert.equal(input(file, "contact").get("type"), "tel", file);
  }
  assert.equal(input("enrol.html", "contact").get("autocomplete"), "tel");
  assert.equal(input("login.html", "pin").get("autocomplete"), "current-password");
  assert.equal(input("login.html", "contact").get("autocomplete"), "username");
  assert.equal(input("desk.html", "password").get("autocomplete"), "current-password");
});

test("the card PIN is never asked for in a page; the mobile-key PIN is said to be another one", () => {
  const enrol = read("enrol.html");
  assert.match(enrol, /asks for your card’s <strong>authentication PIN in its own\s+window<\/strong>/);
  assert.match(enrol, /new PIN<\/strong>, not your card’s\s+PIN/);
  assert.match(read("login.html"), /not your card’s PIN/);
  for (const file of HTML) {
    for (const t of tags(read(file)).filter((x) => x.name === "label")) {
      assert.doesNotMatch(read(file).slice(t.end, t.end + 80), /^[^<]*card(’|')?s? PIN/i, `${file}: a field for the card PIN`);
    }
  }
});

test("the desk asks the agent for every data group it reads, so each one's hash is checked", () => {
  assert.match(read("desk.js"), /dataGroups: \[1, 2, 11, 12\]/);
  assert.match(read("desk.js"), /"\/api\/desk\/nonce"[\s\S]*readEmrtd\([\s\S]*challengeNonce: nonce[\s\S]*"\/api\/desk\/document", \{ result: emrtd, nonce \}/);
  assert.match(read("enrol.js"), /"\/api\/enrol\/nonce"[\s\S]*bridge\.authenticate\(nonce\)[\s\S]*"\/api\/enrol\/card", \{ token, nonce \}/);
});

test("step headings are numbered", () => {
  assert.match(read("enrol.html"), /<h2[^>]*>1\. Read your card<\/h2>/);
  for (const [file, c] of Object.entries(CONTRACT)) {
    const html = read(file);
    for (const step of c.steps) {
      const at = html.indexOf(`data-step="${step}"`);
      assert.match(html.slice(at), /^[^>]*>\s*<h2 id="h-[a-z-]+">/, `${file} ${step} starts with its h2`);
    }
  }
});

// ---------------------------------------------------------------------------------------------
// common.js: the service's API

const json = (status, value) =>
  new Response(JSON.stringify(value), { status, headers: { "content-type": "application/json" } });

function fakeFetch(answer) {
  const calls = [];
  const fetch = async (url, init) => {
    calls.push({ url, init, body: init.body === undefined ? undefined : JSON.parse(init.body) });
    return answer(url, init);
  };
  return { fetch, calls };
}

test("postJson sends JSON, same-origin credentials, no cache; returns the answer", async () => {
  const { fetch, calls } = fakeFetch(() => json(200, { nonce: "n" }));
  assert.deepEqual(await postJson("/api/enrol/nonce", {}, { fetch }), { nonce: "n" });
  assert.deepEqual(await postJson("/api/enrol/start", undefined, { fetch }), { nonce: "n" });
  const [c, d] = calls;
  assert.equal(c.url, "/api/enrol/nonce");
  assert.equal(c.init.method, "POST");
  assert.equal(c.init.headers["Content-Type"], "application/json");
  assert.equal(c.init.credentials, "same-origin");
  assert.equal(c.init.cache, "no-store");
  assert.equal(c.init.redirect, "error");
  assert.deepEqual(c.body, {});
  assert.deepEqual(d.body, {}, "the default body is {}");
});

test("postJson throws ApiError with code, message, attemptsLeft and retryAfterSeconds", async () => {
  const { fetch } = fakeFetch(() =>
    json(400, { error: { code: "code-wrong", message: "The code is not right.", attemptsLeft: 2 } }));
  await assert.rejects(postJson("/api/enrol/confirm", { code: "1" }, { fetch }), (e) => {
    assert.ok(e instanceof ApiError);
    assert.equal(e.code, "code-wrong");
    assert.equal(e.message, "The code is not right.");
    assert.equal(e.status, 400);
    assert.equal(e.attemptsLeft, 2);
    assert.equal(e.retryAfterSeconds, null);
    return true;
  });
  const limited = fakeFetch(() => json(429, { error: { code: "code-rate-limited", message: "Wait.", retryAfterSeconds: 25 } }));
  await assert.rejects(postJson("/x", {}, { fetch: limited.fetch }), { code: "code-rate-limited", retryAfterSeconds: 25, attemptsLeft: null });
});

test("answers that are not the service's become service-error; no answer is service-unreachable", async () => {
  const html = fakeFetch(() => new Response("<h1>Bad gateway</h1>", { status: 502 }));
  await assert.rejects(postJson("/x", {}, { fetch: html.fetch }), (e) => {
    assert.equal(e.code, "service-error");
    assert.equal(e.status, 502);
    assert.doesNotMatch(e.message, /Bad gateway/, "a proxy's text is not shown");
    return true;
  });
  const okNotJson = fakeFetch(() => new Response("", { status: 200 }));
  await assert.rejects(postJson("/x", {}, { fetch: okNotJson.fetch }), { code: "service-error" });
  const down = async () => {
    throw new TypeError("Failed to fetch");
  };
  await assert.rejects(getJson("/api/config", { fetch: down }), { code: "service-unreachable" });
  assert.equal(apiErrorFromResponse(400, { error: { code: "" } }).code, "service-error");
  assert.equal(apiErrorFromResponse(400, { error: { code: "x", attemptsLeft: -1, retryAfterSeconds: 1.5 } }).attemptsLeft, null);
  assert.equal(apiErrorFromResponse(400, null).code, "service-error");
  assert.equal(apiErrorFromResponse(400, { error: { code: "pin-weak" } }).message, "pin-weak");
});

test("loadConfig accepts an https bridge URL only (or loopback http)", async () => {
  const ok = fakeFetch(() => json(200, { origin: "https://localhost:8443", bridgeUrl: "https://127.0.0.1:24180", devOutbox: true }));
  assert.deepEqual(await loadConfig({ fetch: ok.fetch }), { origin: "https://localhost:8443", bridgeUrl: "https://127.0.0.1:24180", devOutbox: true });
  assert.equal(ok.calls[0].init.method, "GET");
  assert.equal(ok.calls[0].url, "/api/config");
  const bad = fakeFetch(() => json(200, { origin: "x", bridgeUrl: "http://evil.example", devOutbox: false }));
  await assert.rejects(loadConfig({ fetch: bad.fetch }), { code: "config-invalid" });
  assert.ok(validBridgeUrl("http://127.0.0.1:24180"));
  assert.ok(validBridgeUrl("https://localhost:24180/"));
  assert.ok(!validBridgeUrl("javascript:alert(1)"));
  assert.ok(!validBridgeUrl("https://u:p@127.0.0.1:24180"));
  assert.ok(!validBridgeUrl("not a url"));
});

// ---------------------------------------------------------------------------------------------
// common.js: messages

test("card errors from the bridge: wrong PIN with tries left, card removed, agent not running", () => {
  const wrong = describeError(new WrongPinError("x", { code: "wrong-pin", retriesLeft: 2 }));
  assert.equal(wrong.code, "wrong-pin");
  assert.equal(wrong.retriesLeft, 2);
  assert.match(wrong.text, /^Wrong PIN\. 2 tries left\./);
  assert.match(describeError(new WrongPinError("x", { code: "wrong-pin", retriesLeft: 1 })).text, /^Wrong PIN\. 1 try left\./);
  // The same through the bridge's own mapping of an agent answer.
  const mapped = describeError(errorFromResponse(403, { error: { code: "wrong-pin", message: "m", retriesLeft: 2 } }));
  assert.deepEqual([mapped.code, mapped.retriesLeft], ["wrong-pin", 2]);

  const removed = describeError(new CardRemovedError("x", { code: "card-removed" }));
  assert.equal(removed.code, "card-removed");
  assert.match(removed.text, /removed/);
  assert.equal(removed.retriesLeft, undefined);

  assert.match(describeError(new AgentNotRunningError("x", { code: "agent-not-running" })).text, /eid-agent run/);
  assert.match(describeError(new LocalNetworkPermissionError("x", { code: "local-network-permission-denied" })).text, /local network access/);
  assert.match(describeError(new UserCancelledError("x", { code: "consent-denied" })).text, /Allow/);
  assert.match(describeError(new PinBlockedError("x", { code: "pin-blocked" })).text, /PUK/);
  // Unknown agent codes: the bridge's remedy.
  assert.equal(describeError(new AgentError("m", { code: "something-new", remedy: "Do this." })).text, "Do this.");
  // A page may word it for its context.
  assert.equal(describeError(new CardRemovedError("x", { code: "card-removed" }), { "card-removed": "Keep it still." }).text, "Keep it still.");
});

test("kiosk errors: session ended in plain words, a refused origin in the agent's own words", () => {
  const ended = describeError(new SessionEndedError("x", { code: "session-ended" }));
  assert.equal(ended.code, "session-ended");
  assert.match(ended.text, /too long.*put it back/);
  const refused = describeError(errorFromResponse(403, {
    error: { code: "origin-not-allowed", message: "This desk’s eID agent serves only https://desk.example", remedy: "Open the desk page from its configured address" },
  }));
  assert.equal(refused.code, "origin-not-allowed");
  assert.equal(refused.text, "This desk’s eID agent serves only https://desk.example. Open the desk page from its configured address.");
  // Without words from the agent, the page's own.
  assert.match(describeError({ code: "origin-not-allowed" }).text, /administrator/);
});

test("why the desk cleared the citizen: one plain sentence per reason, and one for the unknown", () => {
  const reasons = ["card-removed", "idle-timeout", "reader-removed", "agent-stopping", "missed", "a-future-reason"];
  const texts = reasons.map(sessionEndedText);
  assert.equal(new Set(texts.slice(0, 5)).size, 5, "each reason its own text");
  assert.equal(texts[5], texts[4], "unknown reasons read as a lost contact");
  for (const t of texts) assert.match(t, /cleared/);
  assert.match(texts[0], /taken off the reader/);
  assert.match(texts[1], /too long/);
});

test("the desk page follows the agent's sessions and clears the citizen when theirs ends", () => {
  const js = read("desk.js");
  for (const needle of ["followSessions", "onSessionEnded: sessionEnded", "session: resultSession", "/api/desk/next", "sessionEndedText"]) {
    assert.ok(js.includes(needle), needle);
  }
  // Every step of the citizen part drops its answer once the citizen was cleared meanwhile.
  for (const step of ["readDocument", "register", "confirm", "resend"]) {
    assert.match(js, new RegExp(`onAction\\("btn-[a-z-]+", citizenStep\\(${step}\\)`), step);
  }
});

test("service errors: its message, attempts left, wait time, and the remedy", () => {
  const wrong = describeError(new ApiError("The code is not right", { code: "code-wrong", attemptsLeft: 2 }));
  assert.deepEqual(wrong, { code: "code-wrong", attemptsLeft: 2, text: "The code is not right. 2 attempts left." });
  const said = describeError(new ApiError("Wrong code: 1 attempt left.", { code: "code-wrong", attemptsLeft: 1 }));
  assert.equal(said.text, "Wrong code: 1 attempt left.", "not said twice");
  const suspended = describeError(new ApiError("Your mobile key is suspended.", { code: "suspended" }));
  assert.match(suspended.text, /enrol again/);
  const origin = describeError(new ApiError("The card's signature was not made for this site.", { code: "signature-invalid" }));
  assert.equal(origin.text, "The card's signature was not made for this site.", "the service's words are kept");
  const limited = describeError(new ApiError("Too many codes", { code: "code-rate-limited", retryAfterSeconds: 30 }));
  assert.equal(limited.text, "Too many codes. Try again in 30 seconds.");
  assert.equal(describeError(new ApiError("Expired.", { code: "code-expired" }), { "code-expired": "Press resend." }).text, "Expired. Press resend.");
  assert.deepEqual(describeError(new InputError("can-format", "Six digits.")), { code: "can-format", text: "Six digits." });
  assert.equal(describeError(new Error("boom")).code, "unexpected");
  assert.equal(describeError(undefined).code, "unexpected");
});

// ---------------------------------------------------------------------------------------------
// common.js: the page (fake DOM)

class FakeElement {
  constructor(tag, attrs = {}, doc) {
    this.tagName = tag.toUpperCase();
    this.attributes = new Map(Object.entries(attrs));
    this.children = [];
    this.textContent = "";
    this.value = "";
    this.disabled = false;
    this.focused = false;
    this.doc = doc;
  }
  get hidden() { return this.attributes.has("hidden"); }
  set hidden(v) { if (v) this.attributes.set("hidden", ""); else this.attributes.delete("hidden"); }
  getAttribute(n) { return this.attributes.has(n) ? this.attributes.get(n) : null; }
  setAttribute(n, v) { this.attributes.set(n, String(v)); }
  removeAttribute(n) { this.attributes.delete(n); }
  hasAttribute(n) { return this.attributes.has(n); }
  append(...c) { this.children.push(...c); return this; }
  focus() { this.doc.focused = this; }
  *all() { for (const c of this.children) { yield c; yield* c.all(); } }
  matches(sel) {
    if (sel === "main") return this.tagName === "MAIN";
    if (sel === "button") return this.tagName === "BUTTON";
    if (sel === "h2") return this.tagName === "H2";
    if (sel === "main h1") return this.tagName === "H1";
    if (sel === "section[data-step]") return this.tagName === "SECTION" && this.hasAttribute("data-step");
    if (sel === "section[data-step]:not([hidden])") return this.matches("section[data-step]") && !this.hidden;
    if (sel === "[data-progress-for]") return this.hasAttribute("data-progress-for");
    throw new Error(`fake DOM: selector ${sel}`);
  }
  querySelectorAll(sel) { return [...this.all()].filter((e) => e.matches(sel)); }
  querySelector(sel) { return this.querySelectorAll(sel)[0] ?? null; }
}

function fakePage() {
  const doc = { title: "", focused: null };
  const el = (tag, attrs, ...kids) => new FakeElement(tag, attrs, doc).append(...kids);
  const h1 = el("h1");
  h1.textContent = "Enrol";
  const heading = (t) => {
    const h = el("h2");
    h.textContent = t;
    return h;
  };
  const main = el("main", { "data-page": "enrol", "aria-busy": "true" },
    h1,
    el("li", { "data-progress-for": "one", "aria-current": "step" }),
    el("li", { "data-progress-for": "two" }),
    el("p", { id: "error", role: "alert", hidden: "" }),
    el("section", { "data-step": "one" }, heading("1. One"), el("button", { id: "b1" })),
    el("section", { "data-step": "two", hidden: "" }, heading("2. Two"), el("button", { id: "b2" }), el("input", { id: "pin" })),
  );
  const byId = (id) => [main, ...main.all()].find((e) => e.getAttribute("id") === id) ?? null;
  Object.assign(doc, {
    getElementById: byId,
    querySelector: (s) => (s === "main" ? main : main.querySelector(s)),
    querySelectorAll: (s) => main.querySelectorAll(s),
  });
  return { doc, main, byId };
}

test("showError sets text and data attributes; clearError removes them", () => {
  const { doc, byId } = fakePage();
  const error = byId("error");
  showError(new WrongPinError("x", { code: "wrong-pin", retriesLeft: 2 }), undefined, doc);
  assert.equal(error.hidden, false);
  assert.equal(error.getAttribute("data-code"), "wrong-pin");
  assert.equal(error.getAttribute("data-retries-left"), "2");
  assert.equal(error.getAttribute("data-attempts-left"), null);
  assert.match(error.textContent, /^Wrong PIN\. 2 tries left\./);

  showError(new ApiError("Wrong code.", { code: "code-wrong", attemptsLeft: 1 }), undefined, doc);
  assert.equal(error.getAttribute("data-code"), "code-wrong");
  assert.equal(error.getAttribute("data-attempts-left"), "1");
  assert.equal(error.getAttribute("data-retries-left"), null, "the previous error's attributes are gone");

  clearError(doc);
  assert.equal(error.hidden, true);
  assert.equal(error.textContent, "");
  for (const a of ["data-code", "data-retries-left", "data-attempts-left"]) assert.equal(error.getAttribute(a), null);
});

test("showStep shows one step, marks the progress, focuses and titles", () => {
  const { doc, main } = fakePage();
  const [one, two] = main.querySelectorAll("section[data-step]");
  assert.ok(showStep("two", {}, doc));
  assert.deepEqual([one.hidden, two.hidden], [true, false]);
  assert.equal(currentStep(doc), "two");
  assert.equal(doc.focused.textContent, "2. Two");
  assert.equal(doc.title, "2. Two – Enrol");
  const [p1, p2] = main.querySelectorAll("[data-progress-for]");
  assert.deepEqual([p1.getAttribute("aria-current"), p2.getAttribute("aria-current")], [null, "step"]);
  assert.ok(!showStep("nope", { focus: false }, doc), "unknown step: all hidden, reported");
});

test("busy: aria-busy and disabled buttons while running, restored after a throw", async () => {
  const { doc, main, byId } = fakePage();
  setBusy(false, doc); // the page starts busy in the HTML; the counter starts at 0 here
  assert.equal(main.getAttribute("aria-busy"), "false");
  byId("b2").disabled = true; // disabled by the page itself: stays disabled
  let seen;
  await assert.rejects(whileBusy(async () => {
    seen = [main.getAttribute("aria-busy"), byId("b1").disabled];
    await whileBusy(async () => {}, doc); // nested
    assert.equal(main.getAttribute("aria-busy"), "true", "still busy after the nested call");
    throw new Error("x");
  }, doc));
  assert.deepEqual(seen, ["true", true]);
  assert.equal(main.getAttribute("aria-busy"), "false");
  assert.equal(byId("b1").disabled, false);
  assert.equal(byId("b2").disabled, true);
});

test("takeValue empties the input it reads (PINs do not stay in the page)", () => {
  const { doc, byId } = fakePage();
  byId("pin").value = "4826";
  assert.equal(takeValue("pin", doc), "4826");
  assert.equal(byId("pin").value, "");
  assert.equal(takeValue("missing", doc), "");
});

// ---------------------------------------------------------------------------------------------
// common.js: CAN, MRZ, bytes

test("CAN and MRZ access data", () => {
  assert.equal(canAccess(" 123 456 "), "123456");
  for (const bad of ["12345", "1234567", "12345a", ""]) assert.throws(() => canAccess(bad), { code: "can-format" });
  assert.equal(mrzAccess("l898902c3", "740812", "120415"), "L898902C3 740812 120415");
  assert.equal(mrzAccess("IDP 000017", "900101", "300101"), "IDP000017 900101 300101");
  assert.throws(() => mrzAccess("L898902C3X", "740812", "120415"), { code: "mrz-format" });
  assert.throws(() => mrzAccess("", "740812", "120415"), { code: "mrz-format" });
  assert.throws(() => mrzAccess("L8989", "741312", "120415"), { code: "mrz-format" });
  assert.throws(() => mrzAccess("L8989", "740812", "12041"), { code: "mrz-format" });
  assert.throws(() => mrzAccess("L8989", "740800", "120415"), { code: "mrz-format" });
});

test("base64 both alphabets, with or without padding", () => {
  const bytes = new Uint8Array([0xfb, 0xff, 0x00, 0x01, 0x02]);
  assert.equal(bytesToBase64(bytes), "+/8AAQI=");
  assert.deepEqual(base64ToBytes("+/8AAQI="), bytes);
  assert.deepEqual(base64ToBytes("-_8AAQI"), bytes);
  assert.throws(() => base64ToBytes("a"));
  assert.throws(() => base64ToBytes("ab$="));
  const big = new Uint8Array(100000).map((_, i) => i * 7);
  assert.deepEqual(base64ToBytes(bytesToBase64(big)), big);
});

// P-256 self-signed, subject C=PT, serialNumber=PNOPT-12345678, GN=JOSÉ, SN=CIDADÃO,
// CN=JOSÉ CIDADÃO (UTF8String), made with openssl req -utf8.
const CERT =
  "MIICGDCCAb+gAwIBAgIUd++Hgn7G+e28yiVElGZ8Jddyw1YwCgYIKoZIzj0EAwIwYjELMAkGA1UEBhMCUFQxFzAVBgNVBAUTDlBOT1BULTEyMzQ1Njc4MQ4wDAYDVQQqDAVKT1PDiTERMA8GA1UEBAwIQ0lEQUTDg08xFzAVBgNVBAMMDkpPU8OJIENJREFEw4NPMB4XDTI2MTEyMTEzMjAxMFoXDTI2MTEyMjEzMjAxMFowYjELMAkGA1UEBhMCUFQxFzAVBgNVBAUTDlBOT1BULTEyMzQ1Njc4MQ4wDAYDVQQqDAVKT1PDiTERMA8GA1UEBAwIQ0lEQUTDg08xFzAVBgNVBAMMDkpPU8OJIENJREFEw4NPMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEYvrrVzIXcEu/wYgDsJ002YzK6nf2PF8Rp81kMQKRe9zYJI6X+dGwYwUiKQ0vucZB17VSTCpdtQ47+rvXefKyfKNTMFEwHQYDVR0OBBYEFAxGH8Ew1mFBGb6gq9q6j82FVBPuMB8GA1UdIwQYMBaAFAxGH8Ew1mFBGb6gq9q6j82FVBPuMA8GA1UdEwEB/wQFMAMBAf8wCgYIKoZIzj0EAwIDRwAwRAIgSEz/RLwX1Jm2c0VzUREhEJ3Il+wxuCvrpMqTF8JV8NkCIDJlUiyKCpV4y80pTEQebZ6Tigsfg/48189Tt6RZhqeJ";

test("certificateHolderName reads the subject CN (display only), null on garbage", () => {
  assert.equal(certificateHolderName(CERT), "JOSÉ CIDADÃO");
  assert.match(new X509Certificate(Buffer.from(CERT, "base64")).subject, /CN=JOSÉ CIDADÃO/, "the fixture is what it says");
  assert.equal(certificateHolderName("AAAA"), null);
  assert.equal(certificateHolderName("%%%"), null);
  const der = base64ToBytes(CERT);
  for (const cut of [1, 10, 100, der.length - 1]) assert.equal(certificateHolderName(bytesToBase64(der.subarray(0, cut))), null, `cut at ${cut}`);
  // A lying length must not read past the end.
  const lying = der.slice();
  lying[1] = 0x84;
  assert.equal(certificateHolderName(bytesToBase64(lying)), null);
});

test("readTlv refuses truncated and non-DER lengths", () => {
  assert.deepEqual(readTlv(new Uint8Array([0x04, 0x02, 1, 2]), 0), { tag: 4, start: 2, end: 4 });
  assert.deepEqual(readTlv(new Uint8Array([0x04, 0x81, 0x01, 9]), 0), { tag: 4, start: 3, end: 4 });
  assert.throws(() => readTlv(new Uint8Array([0x04, 0x03, 1, 2]), 0));
  assert.throws(() => readTlv(new Uint8Array([0x04, 0x80, 0, 0]), 0), /bad length/);
  assert.throws(() => readTlv(new Uint8Array([0x1f, 0x01, 0x00]), 0), /high tag/);
  assert.throws(() => readTlv(new Uint8Array([0x04]), 0));
});

