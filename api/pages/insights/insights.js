// Merchant insights page: reads /api/v1/insights/recommendations with the token kept in sessionStorage.
// Every value is written with textContent, never as HTML.
(() => {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const KEY = "shoptalk_merchant_token";
  const token = () => sessionStorage.getItem(KEY) || "";
  function say(text, isError) { $("status").textContent = text; $("status").className = isError ? "error" : ""; }
  const percent = (value) => (100 * Number(value || 0)).toFixed(1) + " %";
  const MODELS = { buy_again: "Buy again", item_to_item: "Also bought", bought_with: "Bought with the cart",
    similar_product: "Similar new product", popularity: "Popular", new_in_shop: "New in the shop", all: "All models" };

  function fill(id, rows, leading) {
    const body = $(id).querySelector("tbody");
    body.replaceChildren();
    for (const row of rows) {
      const tr = document.createElement("tr");
      const values = [...leading(row), row.impressions, row.clicks, row.added_to_cart, row.purchases,
        percent(row.click_through), percent(row.conversion)];
      values.forEach((value, i) => {
        const td = document.createElement("td");
        td.textContent = String(value);
        if (i < leading(row).length) td.className = "text";
        tr.appendChild(td);
      });
      body.appendChild(tr);
    }
  }
  const modelName = (row) => MODELS[row.model] || row.model;

  async function load(event) {
    if (event) event.preventDefault();
    if (!token()) { say("Enter a merchant API token."); return; }
    try {
      const response = await fetch("/api/v1/insights/recommendations?days=" + encodeURIComponent($("days").value),
        { headers: { Authorization: "Bearer " + token() } });
      const data = await response.json().catch(() => ({}));
      if (!response.ok) throw new Error((data.detail || data.title || "Request failed") + (data.code ? " (" + data.code + ")" : ""));
      const empty = !data.impressions;
      $("empty").hidden = !empty;
      $("results").hidden = empty;
      $("summary").textContent = empty ? "" : data.impressions + " recommendations shown, " + data.clicks + " clicked, " +
        data.purchases + " bought in the last " + data.days + " days.";
      fill("per-model", data.per_model, (row) => [modelName(row)]);
      fill("per-channel", data.per_channel, (row) => [row.channel]);
      fill("per-both", data.per_model_and_channel, (row) => [modelName(row), row.channel]);
      say("");
    } catch (error) { say(error.message, true); }
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("token-form").addEventListener("submit", (event) => {
      event.preventDefault(); sessionStorage.setItem(KEY, $("token").value.trim()); $("token").value = ""; say("Token set"); load();
    });
    $("forget-token").addEventListener("click", () => { sessionStorage.removeItem(KEY); say("Token forgotten"); });
    $("range-form").addEventListener("submit", load);
    load();
  });
})();
