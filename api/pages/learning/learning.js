"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  function item(text) { const li = document.createElement("li"); li.textContent = text; return li; }
  async function show(token) {
    $("error").textContent = "";
    const response = await fetch("/api/v1/merchant/learning", { headers: { Authorization: "Bearer " + token } });
    const body = await response.json();
    if (!response.ok) { $("error").textContent = body.detail || "Could not load the counts."; return; }
    $("counts").hidden = false;
    $("corrections").textContent = String(body.corrections);
    $("drafts").textContent = String(body.faq_drafts);
    $("published").textContent = String(body.faq_drafts_published);
    $("file").textContent = body.corrections_file;
    $("by-intent").replaceChildren(...Object.entries(body.corrections_by_intent).map(([k, v]) => item(k + ": " + v)));
    $("csat").replaceChildren(...body.csat.map((s) => item((s.agent_name || "former agent") + ": " +
      (s.average === null ? "no ratings" : s.average.toFixed(2)) + " (" + s.answered + "/" + s.asked + " answered)")));
  }
  $("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const token = $("token").value.trim();
    sessionStorage.setItem("shoptalk-merchant-token", token);
    show(token);
  });
  const saved = sessionStorage.getItem("shoptalk-merchant-token");
  if (saved) { $("token").value = saved; show(saved); }
})();
