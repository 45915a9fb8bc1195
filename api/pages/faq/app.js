// Merchant FAQ page: talks to /api/v1/merchant/faq with the token kept in sessionStorage.
// Everything from the server is shown with textContent; nothing is ever parsed as HTML.
"use strict";
(() => {
  const API = "/api/v1/merchant/faq";
  const $ = (id) => document.getElementById(id);
  const state = { entry: null };

  function token() { return sessionStorage.getItem("shoptalk_merchant_token") || ""; }

  function say(text, isError) {
    const el = $("status");
    el.textContent = text;
    el.className = isError ? "error" : "";
  }

  async function call(method, path, body, raw) {
    const headers = { Authorization: "Bearer " + token() };
    let payload;
    if (raw !== undefined) { payload = raw; }
    else if (body !== undefined) { headers["Content-Type"] = "application/json"; payload = JSON.stringify(body); }
    const response = await fetch(API + path, { method, headers, body: payload });
    if (response.status === 204) return null;
    const type = response.headers.get("content-type") || "";
    const data = type.includes("json") ? await response.json() : await response.text();
    if (!response.ok) {
      const error = new Error((data && data.detail) || response.statusText);
      error.problem = data;
      throw error;
    }
    return data;
  }

  function el(tag, text, className) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (className) node.className = className;
    return node;
  }

  // Simple formatting without HTML: bold/italic markers stay as text, links become real anchors.
  function renderAnswer(container, text) {
    container.replaceChildren();
    const pattern = /\[([^\]]*)\]\((https?:\/\/[^)\s]+|mailto:[^)\s]+)\)|(https?:\/\/[^\s)]+)/g;
    let last = 0;
    let match;
    while ((match = pattern.exec(text)) !== null) {
      container.append(document.createTextNode(text.slice(last, match.index)));
      const href = match[2] || match[3];
      const link = el("a", match[1] || href);
      link.href = href;
      link.rel = "noopener noreferrer nofollow";
      link.target = "_blank";
      container.append(link);
      last = pattern.lastIndex;
    }
    container.append(document.createTextNode(text.slice(last)));
  }

  const lines = (value) => value.split("\n").map((s) => s.trim()).filter(Boolean);
  const list = (value) => value.split(",").map((s) => s.trim()).filter(Boolean);

  async function loadList() {
    const params = new URLSearchParams();
    if ($("filter-q").value) params.set("q", $("filter-q").value);
    if ($("filter-language").value) params.set("language", $("filter-language").value);
    if ($("filter-status").value) params.set("status", $("filter-status").value);
    params.set("limit", "200");
    try {
      const page = await call("GET", "/entries?" + params.toString());
      const body = $("entries").querySelector("tbody");
      body.replaceChildren();
      for (const entry of page.entries) {
        const row = el("tr");
        row.dataset.id = String(entry.id);
        row.append(el("td", entry.group_key), el("td", entry.language), el("td", entry.questions[0]),
                   el("td", entry.status, entry.status), el("td", entry.version));
        row.addEventListener("click", () => openEntry(entry.id));
        body.append(row);
      }
      $("entries-total").textContent = page.total + " entries";
      say("");
    } catch (error) { say(error.message, true); }
  }

  function fill(entry) {
    state.entry = entry;
    $("editor-title").textContent = entry ? "Entry " + entry.id + " (" + entry.language + ")" : "New entry";
    $("entry-id").value = entry ? entry.id : "";
    $("entry-version").value = entry ? entry.version : "";
    $("entry-key").value = entry ? entry.group_key : "";
    $("entry-key").disabled = Boolean(entry);
    $("entry-language").value = entry ? entry.language : "en";
    $("entry-language").disabled = Boolean(entry);
    $("entry-questions").value = entry ? entry.questions.join("\n") : "";
    $("entry-answer").value = entry ? entry.answer : "";
    $("entry-tags").value = entry ? entry.tags.join(", ") : "";
    $("entry-countries").value = entry ? entry.countries.join(", ") : "";
    $("entry-channels").value = entry ? entry.channels.join(", ") : "";
    $("entry-status").textContent = entry ? entry.status : "draft";
    renderAnswer($("preview"), entry ? entry.answer : "");
    const translations = $("translations");
    translations.replaceChildren();
    for (const t of entry ? entry.translations : []) {
      const item = el("li");
      const button = el("button", t.language + " (" + t.status + ")");
      button.type = "button";
      button.addEventListener("click", () => openEntry(t.id));
      item.append(button);
      translations.append(item);
    }
    $("history").replaceChildren();
  }

  async function openEntry(id) {
    try {
      const entry = await call("GET", "/entries/" + id);
      fill(entry);
      const versions = await call("GET", "/entries/" + id + "/versions");
      const history = $("history");
      for (const v of versions) {
        const item = el("li");
        item.append(el("span", "v" + v.version + " " + v.action + " by " + v.author + " at " + v.created_at + " "));
        if (v.version !== entry.version) {
          const restore = el("button", "Restore");
          restore.type = "button";
          restore.addEventListener("click", async () => {
            try { fill(await call("POST", "/entries/" + id + "/versions/" + v.version + "/restore")); await openEntry(id); await loadList(); say("Restored version " + v.version); }
            catch (error) { say(error.message, true); }
          });
          item.append(restore);
        }
        item.append(el("div", v.questions.join(" | ")));
        history.append(item);
      }
    } catch (error) { say(error.message, true); }
  }

  async function save(event) {
    event.preventDefault();
    const id = $("entry-id").value;
    const fields = { questions: lines($("entry-questions").value), answer: $("entry-answer").value,
                     tags: list($("entry-tags").value), countries: list($("entry-countries").value),
                     channels: list($("entry-channels").value) };
    try {
      let entry;
      if (id) {
        entry = await call("PATCH", "/entries/" + id, { ...fields, expected_version: Number($("entry-version").value) });
      } else {
        const key = $("entry-key").value.trim();
        entry = await call("POST", "/entries", { ...fields, language: $("entry-language").value, group_key: key || null });
      }
      await openEntry(entry.id);
      await loadList();
      say("Saved version " + entry.version);
    } catch (error) { say(error.message, true); }
  }

  async function entryAction(path, method, message) {
    const id = $("entry-id").value;
    if (!id) { say("Save the entry first.", true); return; }
    try {
      const entry = await call(method, "/entries/" + id + path,
                               method === "POST" ? { expected_version: Number($("entry-version").value) } : undefined);
      if (entry) await openEntry(entry.id); else fill(null);
      await loadList();
      say(message);
    } catch (error) { say(error.message, true); }
  }

  async function translate() {
    const id = $("entry-id").value;
    if (!id) { say("Save the entry first.", true); return; }
    const language = window.prompt("Translate into which language? (en or zh)", state.entry && state.entry.language === "en" ? "zh" : "en");
    if (!language) return;
    const questions = window.prompt("Question in " + language + " (you can add more phrasings after saving)");
    const answer = questions && window.prompt("Answer in " + language);
    if (!questions || !answer) return;
    try {
      const entry = await call("POST", "/entries/" + id + "/translations", { language, questions: [questions], answer });
      await openEntry(entry.id);
      await loadList();
      say("Translation saved as a draft");
    } catch (error) { say(error.message, true); }
  }

  async function tryQuestion(event) {
    event.preventDefault();
    const body = { question: $("try-question").value, language: $("try-language").value };
    if ($("try-country").value) body.country = $("try-country").value.toUpperCase();
    if ($("try-channel").value) body.channel = $("try-channel").value;
    try {
      const result = await call("POST", "/try", body);
      $("try-decision").textContent = "Decision: " + result.decision;
      const out = $("try-results");
      out.replaceChildren();
      for (const m of result.matches) {
        const item = el("li");
        item.append(el("span", m.score.toFixed(3), "score"), el("span", " " + m.question + " [" + m.group_key + ", " + m.language + "]"));
        const answer = el("div", null, "answer");
        renderAnswer(answer, m.answer);
        item.append(answer);
        out.append(item);
      }
    } catch (error) { say(error.message, true); }
  }

  async function importFile(event) {
    event.preventDefault();
    const file = $("import-file").files[0];
    if (!file) return;
    const format = file.name.toLowerCase().endsWith(".csv") ? "csv" : "json";
    const errors = $("import-errors");
    errors.replaceChildren();
    try {
      const report = await call("POST", "/import?format=" + format, undefined, await file.text());
      say("Imported: " + report.created + " created, " + report.updated + " updated, " + report.unchanged + " unchanged");
      await loadList();
    } catch (error) {
      say(error.message, true);
      for (const row of (error.problem && error.problem.errors) || []) {
        errors.append(el("li", "Row " + row.row + ": " + row.detail + " (" + row.code + ")", "error"));
      }
    }
  }

  async function exportFile(format) {
    try {
      const response = await fetch(API + "/export?format=" + format, { headers: { Authorization: "Bearer " + token() } });
      if (!response.ok) throw new Error("Export failed (" + response.status + ")");
      const url = URL.createObjectURL(await response.blob());
      const link = el("a");
      link.href = url;
      link.download = "faq." + format;
      link.click();
      URL.revokeObjectURL(url);
    } catch (error) { say(error.message, true); }
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("token-form").addEventListener("submit", (event) => {
      event.preventDefault();
      sessionStorage.setItem("shoptalk_merchant_token", $("token").value.trim());
      $("token").value = "";
      loadList();
    });
    $("forget-token").addEventListener("click", () => { sessionStorage.removeItem("shoptalk_merchant_token"); say("Token forgotten"); });
    $("filter-form").addEventListener("submit", (event) => { event.preventDefault(); loadList(); });
    $("new-entry").addEventListener("click", () => fill(null));
    $("editor").addEventListener("submit", save);
    $("entry-answer").addEventListener("input", () => renderAnswer($("preview"), $("entry-answer").value));
    $("publish").addEventListener("click", () => entryAction("/publish", "POST", "Published: the bot answers with it now"));
    $("unpublish").addEventListener("click", () => entryAction("/unpublish", "POST", "Unpublished"));
    $("delete").addEventListener("click", () => { if (window.confirm("Delete this entry?")) entryAction("", "DELETE", "Deleted"); });
    $("translate").addEventListener("click", translate);
    $("try-form").addEventListener("submit", tryQuestion);
    $("import-form").addEventListener("submit", importFile);
    $("export-json").addEventListener("click", () => exportFile("json"));
    $("export-csv").addEventListener("click", () => exportFile("csv"));
    if (token()) loadList(); else say("Enter a merchant API token to start.");
  });
})();
