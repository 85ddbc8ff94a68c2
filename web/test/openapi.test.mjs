// Structure checks of docs/bridge-openapi.json: valid JSON, every $ref resolves, every error code
// of the agent (agent/src/bridge/error.rs CODES) is documented with the same status.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("../../", import.meta.url));
const doc = JSON.parse(readFileSync(root + "docs/bridge-openapi.json", "utf8"));

function resolve(pointer) {
  assert.ok(pointer.startsWith("#/"), `only local refs: ${pointer}`);
  let node = doc;
  for (const raw of pointer.slice(2).split("/")) {
    const key = raw.replace(/~1/g, "/").replace(/~0/g, "~");
    assert.ok(node && Object.hasOwn(node, key), `unresolved ${pointer} (at ${key})`);
    node = node[key];
  }
  return node;
}

function* walk(node, path = "#") {
  if (Array.isArray(node)) {
    for (let i = 0; i < node.length; i++) yield* walk(node[i], `${path}/${i}`);
  } else if (node && typeof node === "object") {
    yield [node, path];
    for (const [k, v] of Object.entries(node)) yield* walk(v, `${path}/${k}`);
  }
}

test("the document is OpenAPI 3 with info and paths", () => {
  assert.match(doc.openapi, /^3\.[01]\.\d+$/);
  assert.ok(doc.info.title && doc.info.version);
  assert.ok(Object.keys(doc.paths).length >= 8);
});

test("every $ref and discriminator mapping resolves", () => {
  let refs = 0;
  for (const [node, path] of walk(doc)) {
    if (typeof node.$ref === "string") {
      assert.ok(resolve(node.$ref) !== undefined, path);
      refs++;
    }
    if (node.discriminator?.mapping) {
      for (const target of Object.values(node.discriminator.mapping)) resolve(target);
    }
  }
  assert.ok(refs > 50, `only ${refs} refs found`);
});

test("every operation has a unique operationId and a success response", () => {
  const ids = new Set();
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(item)) {
      assert.ok(["get", "post", "options"].includes(method), `${method} ${path}`);
      assert.ok(op.operationId, `${method} ${path} has no operationId`);
      assert.ok(!ids.has(op.operationId), `duplicate ${op.operationId}`);
      ids.add(op.operationId);
      const ok = Object.keys(op.responses).filter((s) => /^2\d\d$/.test(s));
      assert.equal(ok.length, 1, `${method} ${path}`);
      if (method === "post") {
        assert.ok(op.requestBody.content["application/json"], `${path} takes JSON`);
        assert.ok(item.options, `${path} documents its CORS preflight`);
      }
    }
  }
});

test("every route of the agent (agent/src/bridge/routes.rs) is documented", () => {
  const src = readFileSync(root + "agent/src/bridge/routes.rs", "utf8");
  const routes = [...src.matchAll(/warp::path!\(([^)]*)\)/g)].map(
    (m) => "/" + [...m[1].matchAll(/"([^"]+)"/g)].map((p) => p[1]).join("/"),
  );
  assert.ok(routes.length >= 8, `parsed ${routes.length} routes`);
  for (const r of routes) assert.ok(doc.paths[r], `${r} is not in the API document`);
  for (const p of Object.keys(doc.paths)) assert.ok(routes.includes(p), `${p} is documented but not served`);
});

test("the API contract's endpoints are all documented", () => {
  for (const [path, method] of [
    ["/v1/status", "get"], ["/v1/openapi.json", "get"], ["/v1/events", "get"],
    ["/v1/certificate", "post"], ["/v1/authenticate", "post"], ["/v1/sign", "post"],
    ["/v1/identity", "post"], ["/v1/emrtd/read", "post"],
  ]) {
    assert.ok(doc.paths[path]?.[method], `${method} ${path}`);
  }
});

/** The (code, status) table of agent/src/bridge/error.rs. */
function agentCodes() {
  const src = readFileSync(root + "agent/src/bridge/error.rs", "utf8");
  const table = src.slice(src.indexOf("pub const CODES"), src.indexOf("];", src.indexOf("pub const CODES")));
  return [...table.matchAll(/\(\s*"([a-z-]+)",\s*(\d+),/g)].map((m) => [m[1], Number(m[2])]);
}

test("every agent error code is documented with its status, description and remedy", () => {
  const codes = agentCodes();
  assert.ok(codes.length >= 30, `parsed ${codes.length} codes from error.rs`);
  const table = new Map(doc["x-error-codes"].map((e) => [e.code, e]));
  const enumCodes = doc.components.schemas.ErrorBody.properties.code.enum;
  for (const [code, status] of codes) {
    const entry = table.get(code);
    assert.ok(entry, `${code} missing from x-error-codes`);
    assert.equal(entry.status, status, code);
    assert.ok(entry.description.length > 10 && entry.remedy.length > 10, code);
    assert.ok(enumCodes.includes(code), `${code} missing from ErrorBody.code enum`);
    assert.ok(doc.info.description.includes("`" + code + "`"), `${code} missing from the description`);
  }
  assert.equal(table.size, codes.length, "x-error-codes lists codes the agent does not have");
});

test("every error code has a reusable response naming it, and operations use them", () => {
  const responses = doc.components.responses;
  for (const [code, status] of agentCodes()) {
    const named = Object.values(responses).filter(
      (r) => r.description.includes(code) && r.content?.["application/json"],
    );
    assert.ok(named.length > 0, `${code} (${status}) has no response in components.responses`);
  }
  const used = new Set();
  for (const item of Object.values(doc.paths)) {
    for (const op of Object.values(item)) {
      for (const r of Object.values(op.responses)) if (r.$ref) used.add(r.$ref.split("/").pop());
    }
  }
  // not-found is for paths that do not exist, so no operation lists it
  for (const name of Object.keys(responses)) {
    if (name !== "NotFound") assert.ok(used.has(name), `response ${name} is used by no operation`);
  }
});

test("the security notes and the AA challenge derivation are there", () => {
  const d = doc.info.description;
  for (const needle of [
    "Origin", "Host", "Access-Control-Allow-Origin", "consent", "PIN", "Local Network Access",
    "LocalNetworkAccessAllowedForUrls", "targetAddressSpace",
    '"eid-agent emrtd-aa v1" || 0x00 || origin || 0x00 || challengeNonce',
  ]) {
    assert.ok(d.includes(needle), needle);
  }
});
