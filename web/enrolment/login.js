// login.js: signing in with the mobile key alone (page /login): contact + PIN, then the
// one-time code. Steps: credentials -> code -> done (page contract, api.md §3).
// SPDX-License-Identifier: EUPL-1.2
import { loadConfig, onAction, postJson, setText, showStep, startPage, takeValue, valueOf } from "./common.js";

const KIND_NAMES = { "citizen-card": "Citizen Card", passport: "passport" };

function showRecovery(_e, shown) {
  document.getElementById("recover").hidden = shown.code !== "suspended";
  if (["code-attempts-exhausted", "code-expired", "code-missing", "no-session", "suspended"].includes(shown.code)) {
    showStep("credentials", { focus: false });
  }
}

async function start() {
  document.getElementById("recover").hidden = true;
  const body = { contact: valueOf("contact"), pin: takeValue("pin") };
  const answer = await postJson("/api/login/start", body);
  body.pin = "";
  setText("code-sent-to", answer.codeSentTo ?? "");
  showStep("code");
}

async function confirm() {
  const who = await postJson("/api/login/confirm", { code: takeValue("code").trim() });
  setText("welcome-name", who.name ?? "");
  const kind = KIND_NAMES[who.identityKind] ?? "identity document";
  setText("welcome-detail", `Mobile key ${who.contact ?? ""}, registered with your ${kind}.`);
  showStep("done");
}

startPage(async () => {
  await loadConfig();
  const restart = {
    "code-attempts-exhausted": "Start again with your PIN to get a new code.",
    "code-expired": "Start again with your PIN to get a new code.",
    "code-missing": "Start again with your PIN to get a new code.",
    "no-session": "Start again with your PIN.",
  };
  onAction("btn-login", start, { onError: showRecovery });
  onAction("btn-confirm", confirm, { remedies: restart, onError: showRecovery });
  onAction("btn-restart", async () => {
    takeValue("code");
    showStep("credentials");
  });
  showStep("credentials", { focus: false });
});
