// outbox.js: the development outbox (page /dev/outbox, only with --outbox): the one-time codes
// the service "sent", newest first, refreshed every 2 s. Rows are <tr data-code data-to>
// (page contract, api.md §3) so that tests can read the code. Text only, never HTML.
// SPDX-License-Identifier: EUPL-1.2
import { InputError, clearError, getJson, setBusy, showError, startPage } from "./common.js";

const REFRESH_MS = 2000;
let lastRendered = "";

/** The table body rows for `entries` (OutboxEntry objects). */
function render(entries) {
  const key = JSON.stringify(entries);
  if (key === lastRendered) return;
  lastRendered = key;
  const tbody = document.querySelector("#outbox tbody");
  const rows = entries.map((e) => {
    const tr = document.createElement("tr");
    tr.setAttribute("data-code", String(e.code ?? ""));
    tr.setAttribute("data-to", String(e.to ?? ""));
    for (const v of [e.time, e.to, e.channel, e.purpose, e.code, e.text]) {
      const td = document.createElement("td");
      td.textContent = String(v ?? "");
      tr.append(td);
    }
    tr.cells[4].className = "code";
    return tr;
  });
  tbody.replaceChildren(...rows);
  document.getElementById("outbox-empty").hidden = entries.length > 0;
}

async function refresh() {
  const entries = await getJson("/api/dev/outbox");
  if (!Array.isArray(entries)) throw new Error("outbox: not a list");
  render(entries);
  document.getElementById("outbox-updated").textContent = `Updated ${new Date().toLocaleTimeString()}.`;
}

function schedule() {
  setTimeout(async () => {
    setBusy(true);
    try {
      await refresh();
      clearError();
    } catch (e) {
      showError(offOr(e));
    } finally {
      setBusy(false);
      schedule();
    }
  }, REFRESH_MS);
}

/** A 404 means the service runs without --outbox: say so rather than "unexpected error". */
function offOr(e) {
  if (e?.status === 404) {
    return new InputError("outbox-off", "The development outbox is off: the service was started without --outbox FILE.");
  }
  return e;
}

startPage(async () => {
  try {
    await refresh().catch((e) => {
      throw offOr(e);
    });
  } finally {
    schedule();
  }
});
