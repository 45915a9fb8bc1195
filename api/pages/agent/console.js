"use strict";
// The agent console: everything is rendered with textContent (shopper text is never HTML).
(function () {
  const $ = (id) => document.getElementById(id);
  const API = "/api/v1/agent";
  const state = { me: null, csrf: null, view: "unassigned", current: null, conversation: null, agents: [],
                  canned: [], cannedEditing: null, events: null, poll: null, rules: null, intents: [] };
  const DAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    Object.entries(props || {}).forEach(([key, value]) => {
      if (key === "dataset") Object.assign(node.dataset, value);
      else if (key === "className") node.className = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value);
    });
    children.flat().forEach((child) => {
      if (child !== null && child !== undefined) node.append(child instanceof Node ? child : String(child));
    });
    return node;
  }

  function flash(text) {
    const box = $("flash");
    box.textContent = text;
    box.hidden = false;
    clearTimeout(flash.timer);
    flash.timer = setTimeout(() => { box.hidden = true; }, 6000);
  }

  async function api(method, path, body) {
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (method !== "GET" && state.csrf) headers["X-CSRF-Token"] = state.csrf;
    const response = await fetch(API + path, { method, headers, credentials: "same-origin",
                                                body: body === undefined ? undefined : JSON.stringify(body) });
    if (response.status === 204) return null;
    const data = await response.json().catch(() => ({}));
    if (response.status === 401 && path !== "/session") { showLogin(data.detail); throw new Error(data.code); }
    if (!response.ok) { const error = new Error(describe(data)); error.code = data.code; throw error; }
    return data;
  }

  function describe(problem) {
    // A validation problem lists each wrong field; say which ones, not just "invalid request".
    const fields = (problem.errors || []).map((e) =>
      e.loc.filter((part) => part !== "body").join(".") + ": " + e.msg.replace(/^Value error, /, ""));
    return fields.length ? fields.join("\n") : (problem.detail || "Request failed");
  }

  async function act(fn) {
    try { await fn(); } catch (error) { if (error.message) flash(error.message); }
  }

  // ---- sign in / out ----
  function showLogin(message) {
    stopEvents();
    $("console").hidden = true;
    $("login").hidden = false;
    $("login-error").textContent = message || "";
  }

  async function start(session) {
    state.me = session.agent;
    state.csrf = session.csrf_token;
    $("login").hidden = true;
    $("console").hidden = false;
    $("me").textContent = state.me.name + " (" + state.me.role + ")";
    $("available").checked = state.me.available;
    $("settings").hidden = true;
    $("console").querySelector("main").hidden = false;
    await Promise.all([loadInbox(), loadAgents(), loadCanned(), loadTeam(), loadRules(), loadIntents()]);
    startEvents();
  }

  $("login-form").addEventListener("submit", (event) => {
    event.preventDefault();
    act(async () => {
      try {
        await start(await api("POST", "/session", { email: $("login-email").value, password: $("login-password").value }));
        $("login-password").value = "";
      } catch (error) { $("login-error").textContent = error.message; }
    });
  });

  $("sign-out").addEventListener("click", () => act(async () => {
    await api("DELETE", "/session");
    state.csrf = null;
    showLogin("Signed out.");
  }));

  $("available").addEventListener("change", () => act(async () => {
    state.me = await api("PUT", "/availability", { available: $("available").checked });
  }));

  // ---- real time ----
  function startEvents() {
    stopEvents();
    const source = new EventSource(API + "/events");
    state.events = source;
    source.onopen = () => $("live").classList.add("on");
    source.onerror = () => $("live").classList.remove("on");
    source.onmessage = (message) => {
      const event = JSON.parse(message.data);
      if (event.type === "signed_out") { showLogin("Your session has ended; sign in again."); return; }
      if (event.type === "inbox" || event.type === "conversation") scheduleInbox();
      // A read-only view follows at once; a supervisor's open form is not overwritten under their hands.
      if (event.type === "settings") { act(loadCanned); if ($("settings").hidden || !supervisor()) act(loadRules); }
      if (event.type === "conversation" && event.conversation_id === state.current) scheduleConversation();
    };
  }

  function stopEvents() {
    if (state.events) { state.events.close(); state.events = null; }
    $("live").classList.remove("on");
  }

  let inboxTimer = null;
  let conversationTimer = null;
  function scheduleInbox() {
    if (!inboxTimer) inboxTimer = setTimeout(() => { inboxTimer = null; act(loadInbox); act(loadTeam); }, 50);
  }
  function scheduleConversation() {
    if (!conversationTimer) conversationTimer = setTimeout(() => { conversationTimer = null; act(loadConversation); }, 50);
  }

  // ---- inbox ----
  document.querySelectorAll("#views button").forEach((button) => {
    button.addEventListener("click", () => { state.view = button.dataset.view; act(loadInbox); });
  });

  async function loadInbox() {
    const items = await api("GET", "/inbox?view=" + state.view);
    document.querySelectorAll("#views button").forEach((b) => b.classList.toggle("active", b.dataset.view === state.view));
    $("inbox").replaceChildren(...items.map((item) => el("li", {
      dataset: { conversationId: String(item.conversation_id) },
      className: item.conversation_id === state.current ? "current" : "",
      onclick: () => { state.current = item.conversation_id; act(loadConversation); act(loadInbox); },
    }, el("div", { className: "who" }, item.shopper_name || item.sender_id,
          el("span", { className: "tag" }, item.channel),
          item.assignee_name ? el("span", { className: "tag assignee" }, item.assignee_name) : null,
          item.has_draft ? el("span", { className: "tag" }, "draft") : null,
          item.reason ? el("span", { className: "tag" }, item.reason) : null),
       el("div", { className: "preview" }, item.last_text || ""))));
    $("inbox-empty").hidden = items.length > 0;
  }

  async function loadAgents() {
    state.agents = await api("GET", "/agents");
    $("transfer-to").replaceChildren(el("option", { value: "" }, "Transfer to..."),
      ...state.agents.filter((a) => a.id !== state.me.id).map((a) =>
        el("option", { value: String(a.id) }, a.name + (a.online ? "" : " (offline)"))));
  }

  async function loadTeam() {
    const [agents, csat] = await Promise.all([api("GET", "/agents"), api("GET", "/csat")]);
    const ratings = new Map(csat.map((c) => [c.agent_id, c]));
    $("team").replaceChildren(...agents.map((a) => {
      const r = ratings.get(a.id);
      const score = r && r.average !== null ? "CSAT " + r.average.toFixed(1) + " (" + r.answered + ")" : "no CSAT yet";
      return el("li", { dataset: { agentId: String(a.id) } },
        a.name + (a.online ? " - online" : " - offline") + ", " + a.open + "/" + a.capacity + " open, " + score);
    }));
  }

  async function loadCanned() {
    state.canned = await api("GET", "/canned");
    $("canned").replaceChildren(el("option", { value: "" }, "Canned response..."),
      ...state.canned.map((c) => el("option", { value: String(c.id) }, "/" + c.shortcut)));
    renderCannedList();
  }

  // ---- rules and canned responses (supervisors edit; agents read) ----
  const supervisor = () => state.me && state.me.role === "supervisor";

  $("open-settings").addEventListener("click", () => act(async () => {
    const opening = $("settings").hidden;
    $("settings").hidden = !opening;
    $("console").querySelector("main").hidden = opening;
    if (!opening) return;
    $("settings").dataset.loaded = "false";  // the form shows the server's rules, not what was left in it
    await Promise.all([loadRules(), loadCanned()]);
    $("settings").dataset.loaded = "true";
  }));
  $("settings-close").addEventListener("click", () => {
    $("settings").hidden = true;
    $("console").querySelector("main").hidden = false;
  });

  async function loadIntents() {
    state.intents = await api("GET", "/intents");
    $("intent-names").replaceChildren(...state.intents.map((name) => el("option", { value: name })));
  }

  async function loadRules() {
    state.rules = await api("GET", "/rules");
    renderRules(state.rules);
  }

  function mixedRow(intent, choice) {
    const select = el("select", { className: "mixed-choice", "aria-label": "Choice" },
      el("option", { value: "answer_and_offer" }, "Answer and offer a person"),
      el("option", { value: "draft_for_agent" }, "Draft for an agent"));
    select.value = choice;
    const input = el("input", { className: "mixed-intent", list: "intent-names", value: intent,
                                "aria-label": "Intent", size: "24" });
    const row = el("tr", {}, el("td", {}, input), el("td", {}, select));
    row.append(el("td", {}, el("button", { type: "button", className: "mixed-remove",
                                          onclick: () => row.remove() }, "Remove")));
    return row;
  }

  function renderRules(rules) {
    const edit = supervisor();
    $("settings-mode").textContent = edit ? "" : "Read only: only a supervisor can change these.";
    $("rules-fields").disabled = !edit;
    $("rules-save").hidden = !edit;
    $("mixed-add").hidden = !edit;
    $("rules-error").textContent = "";
    $("rule-on-request").checked = rules.on_request;
    $("rule-on-complaint").checked = rules.on_complaint;
    $("rule-on-negative").checked = rules.on_negative_wording;
    $("rule-low-count").value = String(rules.low_confidence_in_a_row);
    $("rule-low-below").value = rules.low_confidence_below === null ? "" : String(rules.low_confidence_below);
    $("rule-unhelpful").value = String(rules.unhelpful_in_a_row);
    $("rule-order-value").value = rules.order_value_above === null ? "" : String(rules.order_value_above);
    $("rule-order-currency").value = rules.order_value_currency;
    $("rule-mixed-default").value = rules.mixed_reply_default;
    $("mixed-rows").replaceChildren(...Object.entries(rules.mixed_reply_by_intent).map(([i, c]) => mixedRow(i, c)));
    $("rule-auto-assign").checked = rules.auto_assign;
    const hours = rules.opening_hours;
    $("rule-always-open").checked = hours.always_open;
    $("rule-timezone").value = hours.timezone;
    $("rule-days").replaceChildren(...DAYS.map((name, day) => {
      const box = el("input", { type: "checkbox", value: String(day), className: "rule-day" });
      box.checked = hours.days.includes(day);
      return el("label", {}, box, " " + name);
    }));
    $("rule-opens").value = hours.opens.slice(0, 5);
    $("rule-closes").value = hours.closes.slice(0, 5);
  }

  function numberOrNull(id) {
    const raw = $(id).value.trim();
    return raw === "" ? null : Number(raw);
  }

  function collectRules() {
    const mixed = {};
    $("mixed-rows").querySelectorAll("tr").forEach((row) => {
      const intent = row.querySelector(".mixed-intent").value.trim();
      if (intent) mixed[intent] = row.querySelector(".mixed-choice").value;
    });
    return {
      on_request: $("rule-on-request").checked,
      on_complaint: $("rule-on-complaint").checked,
      on_negative_wording: $("rule-on-negative").checked,
      low_confidence_in_a_row: numberOrNull("rule-low-count"),
      low_confidence_below: numberOrNull("rule-low-below"),
      unhelpful_in_a_row: numberOrNull("rule-unhelpful"),
      order_value_above: $("rule-order-value").value.trim() || null,
      order_value_currency: $("rule-order-currency").value.trim(),
      mixed_reply_default: $("rule-mixed-default").value,
      mixed_reply_by_intent: mixed,
      auto_assign: $("rule-auto-assign").checked,
      opening_hours: {
        always_open: $("rule-always-open").checked,
        timezone: $("rule-timezone").value.trim(),
        days: [...document.querySelectorAll("#rule-days .rule-day")].filter((b) => b.checked).map((b) => Number(b.value)),
        opens: $("rule-opens").value,
        closes: $("rule-closes").value,
      },
    };
  }

  $("mixed-add").addEventListener("click", () => {
    const row = mixedRow("", "draft_for_agent");
    $("mixed-rows").append(row);
    row.querySelector(".mixed-intent").focus();
  });

  $("rules-form").addEventListener("submit", (event) => {
    event.preventDefault();
    act(async () => {
      try {
        state.rules = await api("PUT", "/rules", collectRules());
      } catch (error) {
        $("rules-error").textContent = error.message;
        return;
      }
      renderRules(state.rules);
      $("rules-error").textContent = "Saved.";
    });
  });

  function renderCannedList() {
    const edit = supervisor();
    $("canned-form").hidden = !edit;
    // A live refresh (another supervisor saved something) must not throw away an edit in progress.
    const open = state.cannedEditing === null ? null
      : $("canned-list").querySelector('li[data-canned-id="' + state.cannedEditing + '"]');
    if (open === null || !state.canned.some((c) => c.id === state.cannedEditing)) state.cannedEditing = null;
    $("canned-list").replaceChildren(...state.canned.map((c) => {
      if (edit && open !== null && c.id === state.cannedEditing) return open;
      const item = el("li", { dataset: { cannedId: String(c.id) } },
        el("span", { className: "shortcut" }, "/" + c.shortcut), el("span", { className: "body" }, c.body));
      if (edit) {
        item.append(" ", el("button", { type: "button", className: "canned-edit", onclick: () => cannedEditForm(item, c) }, "Edit"),
          " ", el("button", { type: "button", className: "canned-delete", onclick: () => act(async () => {
            await api("DELETE", "/canned/" + c.id);
            await loadCanned();
          }) }, "Delete"));
      }
      return item;
    }));
  }

  function cannedEditForm(item, canned) {
    const shortcut = el("input", { value: canned.shortcut, className: "canned-edit-shortcut", maxlength: "40",
                                   "aria-label": "Shortcut" });
    const body = el("textarea", { className: "canned-edit-body", rows: "2", "aria-label": "Text" });
    body.value = canned.body;
    state.cannedEditing = canned.id;
    item.replaceChildren(el("form", { onsubmit: (event) => {
      event.preventDefault();
      act(async () => {
        await api("PUT", "/canned/" + canned.id, { shortcut: shortcut.value.trim(), body: body.value });
        state.cannedEditing = null;
        await loadCanned();
      });
    } }, shortcut, body, el("button", { type: "submit", className: "canned-save" }, "Save"),
       el("button", { type: "button", onclick: () => { state.cannedEditing = null; renderCannedList(); } }, "Cancel")));
    body.focus();
  }

  $("canned-form").addEventListener("submit", (event) => {
    event.preventDefault();
    act(async () => {
      await api("POST", "/canned", { shortcut: $("canned-shortcut").value.trim(), body: $("canned-body").value });
      $("canned-shortcut").value = "";
      $("canned-body").value = "";
      await loadCanned();
    });
  });

  // ---- conversation ----
  async function loadConversation() {
    if (state.current === null) return;
    const view = await api("GET", "/conversations/" + state.current);
    state.conversation = view;
    renderConversation(view);
    clearTimeout(state.poll);
    // Delivery status changes in the worker; look again while a reply is still on its way.
    if (view.messages.some((m) => m.delivery === "sending")) state.poll = setTimeout(() => act(loadConversation), 1500);
  }

  function renderConversation(view) {
    $("conversation").hidden = false;
    $("side").hidden = false;
    $("conversation-title").textContent = (view.shopper.name || view.sender_id) + " on " + view.channel;
    const owner = view.assignee_name ? "with " + view.assignee_name : "unassigned";
    $("conversation-state").textContent = view.status === "bot" ? "bot is answering" :
      view.status + (view.status === "open" ? ", " + owner : "") + " - " + (view.mode === "human" ? "bot silent" : "bot answering");
    const mine = view.assignee_id === state.me.id && view.status === "open";
    $("take").hidden = mine;
    $("hand-back").hidden = !mine;
    $("resolve").hidden = !mine;
    $("transfer").hidden = view.status !== "open";
    $("transfer-to").hidden = view.status !== "open";
    $("reply-form").hidden = !mine;
    $("draft-box").hidden = !(mine && view.draft);
    if (mine && view.draft && document.activeElement !== $("draft-text")) $("draft-text").value = view.draft;
    const intents = new Set();
    $("messages").replaceChildren(...view.messages.map((m, index) => {
      if (m.intent) intents.add(m.intent);
      return renderMessage(m, view.messages.slice(0, index));
    }));
    $("intents").replaceChildren(...[...intents].map((name) => el("option", { value: name })));
    $("messages").scrollTop = $("messages").scrollHeight;
    renderShopper(view);
  }

  function renderMessage(m, before) {
    const meta = el("div", { className: "meta" });
    meta.append(el("span", { className: "author" }, m.agent_name || m.author));
    if (m.intent) {
      meta.append(el("span", { className: "intent" }, m.intent + " " + (m.confidence === null ? "" : m.confidence.toFixed(2))));
    }
    if (m.corrected_intent) meta.append(el("span", { className: "corrected" }, "corrected: " + m.corrected_intent));
    if (m.policy) meta.append(el("span", { className: "policy" }, m.policy + (m.reason ? " (" + m.reason + ")" : "")));
    if (m.delivery) {
      meta.append(el("span", { className: "delivery " + m.delivery },
        m.delivery === "failed" ? "not delivered: " + (m.delivery_error || "") : m.delivery));
    }
    const item = el("li", { className: (m.direction === "in" ? "in" : "out") + " author-" + m.author,
                           dataset: { messageId: String(m.id), author: m.author } },
                    el("div", { className: "text" }, m.text || m.payload || ""), meta);
    if (m.direction === "in" && m.text) {
      meta.append(el("button", { type: "button", className: "correct", onclick: () => correctForm(item, m) }, "Correct intent"));
    }
    if (m.author === "agent" && m.text) {
      const question = [...before].reverse().find((b) => b.direction === "in" && b.text);
      meta.append(el("button", { type: "button", className: "save-faq",
                                 onclick: () => faqForm(item, question ? question.text : "", m.text) }, "Save as FAQ"));
    }
    return item;
  }

  function correctForm(item, message) {
    const input = el("input", { list: "intents", value: message.corrected_intent || message.intent || "",
                                className: "intent-input", "aria-label": "Right intent" });
    const form = el("form", { className: "correct-form", onsubmit: (event) => {
      event.preventDefault();
      act(async () => {
        await api("POST", "/messages/" + message.id + "/intent", { intent: input.value.trim() });
        flash("Saved as a training example.");
        await loadConversation();
      });
    } }, input, el("button", { type: "submit" }, "Save intent"));
    item.append(form);
    input.focus();
  }

  function faqForm(item, question, answer) {
    const q = el("input", { value: question, className: "faq-question", "aria-label": "Question" });
    const a = el("textarea", { className: "faq-answer", rows: "2", "aria-label": "Answer" });
    a.value = answer;
    const form = el("form", { className: "faq-form", onsubmit: (event) => {
      event.preventDefault();
      act(async () => {
        await api("POST", "/faq-drafts", { question: q.value, answer: a.value,
                                           language: state.conversation.shopper.locale || "en" });
        form.remove();
        flash("Saved as a FAQ draft for the merchant.");
      });
    } }, q, a, el("button", { type: "submit" }, "Save FAQ draft"));
    item.append(form);
  }

  function renderShopper(view) {
    const s = view.shopper;
    const rows = [["Name", s.name], ["Email", s.email], ["Channel id", view.sender_id], ["Country", s.country],
                  ["Currency", s.currency], ["Language", s.locale]];
    $("shopper").replaceChildren(...rows.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v || "-")]));
    $("orders").replaceChildren(...s.orders.map((o) => el("li", {}, "#" + o.number + " " + o.status + " " + o.total + " " + o.currency)));
    $("cart").replaceChildren(...s.cart.map((line) => el("li", {}, line.sku + " x " + line.quantity)));
    $("notes").replaceChildren(...view.notes.map((n) => el("li", {}, el("strong", {}, n.agent_name + ": "), n.body)));
  }

  function conversationAction(path, after) {
    return () => act(async () => {
      await api("POST", "/conversations/" + state.current + path);
      if (after) after();
      await Promise.all([loadConversation(), loadInbox()]);
    });
  }

  $("take").addEventListener("click", conversationAction("/take"));
  $("hand-back").addEventListener("click", conversationAction("/hand-back"));
  $("resolve").addEventListener("click", conversationAction("/resolve"));
  $("transfer").addEventListener("click", () => act(async () => {
    const to = $("transfer-to").value;
    if (!to) { flash("Pick an agent to transfer to."); return; }
    await api("POST", "/conversations/" + state.current + "/assign", { agent_id: Number(to) });
    await Promise.all([loadConversation(), loadInbox()]);
  }));

  $("reply-form").addEventListener("submit", (event) => {
    event.preventDefault();
    act(async () => {
      const text = $("reply-text").value;
      await api("POST", "/conversations/" + state.current + "/replies", { text });
      $("reply-text").value = "";
      await loadConversation();
    });
  });

  $("draft-send").addEventListener("click", () => act(async () => {
    await api("POST", "/conversations/" + state.current + "/draft/send", { text: $("draft-text").value });
    await loadConversation();
  }));

  $("canned").addEventListener("change", () => {
    const canned = state.canned.find((c) => String(c.id) === $("canned").value);
    if (canned && state.conversation) {
      const values = state.conversation.canned_values;
      $("reply-text").value += canned.body.replace(/\{([a-z_]+)\}/g, (all, name) => values[name] || all);
    }
    $("canned").value = "";
    $("reply-text").focus();
  });

  $("note-form").addEventListener("submit", (event) => {
    event.preventDefault();
    act(async () => {
      await api("POST", "/conversations/" + state.current + "/notes", { body: $("note-text").value });
      $("note-text").value = "";
      await loadConversation();
    });
  });

  // ---- boot: an existing session (cookie) signs straight in ----
  fetch(API + "/session", { credentials: "same-origin" })
    .then(async (response) => (response.ok ? start(await response.json()) : showLogin()))
    .catch(() => showLogin());
})();
