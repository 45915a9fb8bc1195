// Merchant search page: talks to /api/v1/search with the token kept in sessionStorage; text via textContent only.
(() => {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const KEY = "shoptalk_merchant_token";
  const token = () => sessionStorage.getItem(KEY) || "";
  function say(text, isError) { $("status").textContent = text; $("status").className = isError ? "error" : ""; }

  async function api(method, path, body) {
    const headers = { Authorization: "Bearer " + token() };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch("/api/v1/search" + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    if (response.status === 204) return null;
    const data = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error((data.detail || data.title || "Request failed") + (data.code ? " (" + data.code + ")" : ""));
    return data;
  }

  function cell(row, text) { const td = document.createElement("td"); td.textContent = String(text); row.appendChild(td); }
  function fillTable(id, rows, fields) {
    const body = $(id).querySelector("tbody");
    body.replaceChildren();
    for (const item of rows) { const tr = document.createElement("tr"); fields.forEach((f) => cell(tr, item[f])); body.appendChild(tr); }
  }
  function item(list, text, onDelete) {
    const li = document.createElement("li");
    li.textContent = text;
    const button = document.createElement("button");
    button.type = "button"; button.textContent = "Remove";
    button.addEventListener("click", onDelete);
    li.appendChild(button);
    list.appendChild(li);
  }
  const guard = (fn) => async (event) => { if (event) event.preventDefault(); try { await fn(); } catch (error) { say(error.message, true); } };

  const loadReport = guard(async () => {
    const report = await api("GET", "/report?days=30");
    fillTable("zero", report.zero_results, ["query", "language", "searches"]);
    fillTable("abandoned", report.abandoned, ["query", "language", "searches", "results"]);
  });
  const loadSynonyms = guard(async () => {
    const list = $("synonyms"); list.replaceChildren();
    for (const group of await api("GET", "/synonyms")) {
      item(list, group.terms.join(" = "), guard(async () => { await api("DELETE", "/synonyms/" + group.id); say("Synonyms removed"); await loadSynonyms(); }));
    }
  });
  const loadRules = guard(async () => {
    const list = $("rules"); list.replaceChildren();
    for (const rule of await api("GET", "/rules")) {
      const where = rule.query === null ? "every query" : "“" + rule.query + "”";
      const text = rule.kind + " " + rule.product + " for " + where + (rule.kind === "pin" ? " at " + rule.position : "");
      item(list, text, guard(async () => { await api("DELETE", "/rules/" + rule.id); say("Rule removed"); await loadRules(); }));
    }
  });
  const loadAll = async () => { if (!token()) { say("Enter a merchant API token."); return; } await Promise.all([loadReport(), loadSynonyms(), loadRules()]); };

  document.addEventListener("DOMContentLoaded", () => {
    $("token-form").addEventListener("submit", guard(async () => { sessionStorage.setItem(KEY, $("token").value.trim()); $("token").value = ""; say("Token set"); await loadAll(); }));
    $("forget-token").addEventListener("click", () => { sessionStorage.removeItem(KEY); say("Token forgotten"); });
    $("refresh-report").addEventListener("click", loadReport);
    $("try-form").addEventListener("submit", guard(async () => {
      const found = await api("GET", "/products?limit=20&q=" + encodeURIComponent($("try-q").value));
      const list = $("try-results"); list.replaceChildren();
      for (const hit of found.hits) { const li = document.createElement("li"); li.textContent = hit.title + " (" + hit.product + ", " + hit.score.toFixed(3) + ")"; list.appendChild(li); }
      say(found.total ? found.total + " products found" : "No products found");
    }));
    $("synonym-form").addEventListener("submit", guard(async () => {
      const terms = $("synonym-terms").value.split(/[,，]/).map((t) => t.trim()).filter(Boolean);
      await api("POST", "/synonyms", { terms }); $("synonym-terms").value = ""; say("Synonyms added (live now)"); await loadSynonyms();
    }));
    $("rule-form").addEventListener("submit", guard(async () => {
      const query = $("rule-query").value.trim();
      await api("POST", "/rules", { kind: $("rule-kind").value, product: $("rule-product").value.trim(), query: query || null, position: Number($("rule-position").value) || 1 });
      say("Rule added (live now)"); await loadRules();
    }));
    loadAll();
  });
})();
