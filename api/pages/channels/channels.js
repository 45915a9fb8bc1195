// Merchant view of the sales channels. Data only ever reaches the page through textContent.
(function () {
  "use strict";
  const KEY = "shoptalk.merchantToken";
  const API = "/api/v1/channels";
  const $ = (id) => document.getElementById(id);
  let selected = null;

  function token() { return sessionStorage.getItem(KEY); }

  function say(text, isError) {
    $("status").textContent = text;
    $("status").className = isError ? "error" : "";
  }

  async function call(path, options) {
    const used = token();
    const response = await fetch(path, Object.assign({}, options, {
      headers: Object.assign({ "Authorization": "Bearer " + used, "Content-Type": "application/json" },
        (options || {}).headers || {}),
    }));
    const body = await response.json().catch(() => ({}));
    if (!response.ok) {
      const detail = body.detail || body.title || ("HTTP " + response.status);
      if (response.status === 401) {
        if (token() !== used) {
          // Refused with a token the merchant has since replaced: it must not log the new one out.
          const stale = new Error("Enter a merchant token (" + detail + ")");
          stale.stale = true;
          throw stale;
        }
        sessionStorage.removeItem(KEY);
        show();
        throw new Error("Enter a merchant token (" + detail + ")");
      }
      throw new Error(detail);
    }
    return body;
  }

  function cell(row, text, cls) {
    const td = document.createElement("td");
    td.textContent = text === null || text === undefined ? "—" : String(text);
    if (cls) td.className = cls;
    row.appendChild(td);
    return td;
  }

  function when(iso) { return iso ? new Date(iso).toLocaleString() : "never"; }

  function allocation(ch) {
    let text = ch.allocation === "buffer" ? "pool − " + ch.allocation_value
      : ch.allocation === "share" ? ch.allocation_value + "% of pool" : "shared pool";
    if (ch.safety_stock) text += ", safety " + ch.safety_stock;
    return text;
  }

  // One line saying why the channel may show wrong stock now; "" when nothing is known to be wrong.
  function alertText(a) {
    if (!a) return "";
    const parts = [];
    if (a.dead_pushes > 0) {
      parts.push(a.dead_pushes + " failed push(es) not made good since " + when(a.dead_since)
        + (a.dead_last_error ? " (" + a.dead_last_error + ")" : ""));
    }
    if (a.unrepaired_drift > 0) parts.push(a.unrepaired_drift + " SKU(s) still wrong at the last check");
    if (a.reconciliation_error) parts.push("last check failed: " + a.reconciliation_error);
    return parts.join("; ");
  }

  async function load() {
    try {
      const list = await call(API);
      const body = document.querySelector("#channels tbody");
      body.replaceChildren();
      for (const ch of list) {
        const row = document.createElement("tr");
        if (ch.alert) row.className = "warn";
        cell(row, ch.name + " (" + ch.code + ")");
        cell(row, ch.sync_mode + " · " + ch.connector);
        cell(row, allocation(ch));
        cell(row, when(ch.last_sync_at));
        cell(row, ch.lag_seconds.toFixed(1) + " s", "num");
        cell(row, ch.pending, "num");
        cell(row, ch.dead, "num");
        cell(row, ch.orders_imported + " / " + ch.orders_rejected, "num");
        cell(row, ch.last_reconciliation ? ch.last_reconciliation.drifted + " of " + ch.last_reconciliation.checked
          : "not checked", "num");
        cell(row, ch.alert ? alertText(ch.alert) : "OK", ch.alert ? "alert" : "");
        const actions = cell(row, "");
        actions.textContent = "";
        const open = document.createElement("button");
        open.type = "button";
        open.textContent = "Details";
        open.addEventListener("click", () => { selected = ch.code; detail(ch); });
        actions.appendChild(open);
        if (ch.connector !== "none" && ch.sync_mode !== "direct") {
          const check = document.createElement("button");
          check.type = "button";
          check.textContent = "Reconcile now";
          check.addEventListener("click", () => reconcile(ch.code));
          actions.appendChild(check);
        }
        body.appendChild(row);
        if (selected === ch.code) detail(ch);
      }
      $("updated").textContent = "Updated " + new Date().toLocaleTimeString();
      if ($("status").className === "error") say("", false);
    } catch (err) {
      if (!err.stale) say(err.message, true);
    }
  }

  async function detail(ch) {
    $("detail").hidden = false;
    $("detail-title").textContent = ch.name + " (" + ch.code + ")";
    $("detail-alert").textContent = ch.alert ? "Alert: " + alertText(ch.alert) : "";
    $("detail-alert").hidden = !ch.alert;
    const rec = ch.last_reconciliation;
    $("reconcile-summary").textContent = rec
      ? "Checked " + rec.checked + " SKUs at " + when(rec.finished_at) + ": " + rec.drifted + " drifted, "
        + rec.repaired + " repaired." + (rec.error ? " Error: " + rec.error : "")
      : "No reconciliation yet.";
    const driftBody = document.querySelector("#drift tbody");
    driftBody.replaceChildren();
    for (const d of rec ? rec.drift : []) {
      const row = document.createElement("tr");
      cell(row, d.sku); cell(row, d.ours, "num"); cell(row, d.theirs, "num");
      driftBody.appendChild(row);
    }
    try {
      const dead = await call(API + "/" + encodeURIComponent(ch.code) + "/dead-letters");
      const deadBody = document.querySelector("#dead tbody");
      deadBody.replaceChildren();
      for (const e of dead) {
        const row = document.createElement("tr");
        cell(row, e.event_id, "num"); cell(row, e.sku); cell(row, e.attempts, "num"); cell(row, e.last_error);
        const retry = document.createElement("button");
        retry.type = "button";
        retry.textContent = "Retry";
        retry.addEventListener("click", () => retryDead(ch.code, [e.event_id]));
        cell(row, "").appendChild(retry);
        deadBody.appendChild(row);
      }
      $("retry-all").onclick = () => retryDead(ch.code, null);
      $("retry-all").disabled = dead.length === 0;
    } catch (err) {
      say(err.message, true);
    }
  }

  async function retryDead(code, ids) {
    try {
      const out = await call(API + "/" + encodeURIComponent(code) + "/dead-letters/retry", {
        method: "POST", body: JSON.stringify({ event_ids: ids }),
      });
      say(out.retried + " push(es) queued again.", false);
      await load();
    } catch (err) { say(err.message, true); }
  }

  async function reconcile(code) {
    try {
      const out = await call(API + "/" + encodeURIComponent(code) + "/reconcile", { method: "POST" });
      say("Reconciled " + code + ": " + out.drifted + " of " + out.checked + " SKUs drifted.", false);
      selected = code;
      await load();
    } catch (err) { say(err.message, true); }
  }

  function show() {
    const has = !!token();
    $("main").hidden = !has;
    $("logout").hidden = !has;
    if (has) load(); else say("Enter a merchant token to see the channels.", false);
  }

  $("login").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem(KEY, $("token").value.trim());
    $("token").value = "";
    show();
  });
  $("logout").addEventListener("click", () => { sessionStorage.removeItem(KEY); show(); });
  $("refresh").addEventListener("click", load);
  setInterval(() => { if (token()) load(); }, 10000);
  show();
})();
