"use strict";
// The agent console: everything is rendered with textContent (shopper text is never HTML).
(function () {
  const $ = (id) => document.getElementById(id);
  const API = "/api/v1/agent";
  const LANG = navigator.language || "en";
  // The console's words in the page's language (the server's catalogs, `console.*`), inlined as JSON data.
  const STRINGS = JSON.parse(($("console-strings") || {}).textContent || "{}");
  // Every word the console shows comes from the catalogs: T(key, { name: value }) fills the text's {placeholders};
  // TC(prefix, code) names a server code (a status, a role) in the page's language, the code itself when unknown.
  const fill = (text, values) => text.replace(/\{(\w+)\}/g, (whole, name) =>
    (values && Object.prototype.hasOwnProperty.call(values, name) ? String(values[name]) : whole));
  const T = (key, values) => fill(STRINGS[key] === undefined ? key : STRINGS[key], values);
  const TC = (prefix, code, values) => fill(STRINGS[prefix + code] === undefined ? String(code) : STRINGS[prefix + code], values);
  const state = { me: null, csrf: null, view: "queue", current: null, conversation: null, agents: [], inboxShown: "",
                  canned: [], cannedEditing: null, events: null, poll: null, rules: null, intents: [],
                  items: [], queueIds: new Set(), counts: {}, connection: "connecting", retry: 0,
                  retryTimer: null, reconnectAt: 0, cannedMissing: [], cartDraft: [] };
  const DAYS = T("days").split(" ");
  const TITLE = document.title;

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

  const UNREACHABLE = T("unreachable");

  async function api(method, path, body) {
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (method !== "GET" && state.csrf) headers["X-CSRF-Token"] = state.csrf;
    let response;
    try {
      response = await fetch(API + path, { method, headers, credentials: "same-origin",
                                           body: body === undefined ? undefined : JSON.stringify(body) });
    } catch (networkError) {
      // Not "Failed to fetch": say what happened and that nothing typed is lost.
      setConnection("offline");
      scheduleReconnect();
      const error = new Error(UNREACHABLE);
      error.code = "unreachable";
      throw error;
    }
    if (response.status === 204) return null;
    if (response.status === 502 || response.status === 503 || response.status === 504) {
      setConnection("offline");
      scheduleReconnect();
      const error = new Error(UNREACHABLE);
      error.code = "unreachable";
      throw error;
    }
    const data = await response.json().catch(() => ({}));
    if (response.status === 401 && path !== "/session") { showLogin(data.detail); throw new Error(data.code); }
    if (!response.ok) { const error = new Error(describe(data)); error.code = data.code; error.problem = data; throw error; }
    return data;
  }

  function describe(problem) {
    // A validation problem lists each wrong field; say which ones, not just "invalid request".
    const fields = (problem.errors || []).map((e) =>
      e.loc.filter((part) => part !== "body").join(".") + ": " + e.msg.replace(/^Value error, /, ""));
    return fields.length ? fields.join("\n") : (problem.detail || T("request_failed"));
  }

  async function act(fn) {
    try { await fn(); } catch (error) { if (error.message) flash(error.message); }
  }

  // ---- time: relative and absolute, in the agent's language and time zone ----
  const relative = new Intl.RelativeTimeFormat(LANG, { numeric: "auto" });
  const absolute = new Intl.DateTimeFormat(LANG, { dateStyle: "medium", timeStyle: "short" });
  const timeOnly = new Intl.DateTimeFormat(LANG, { timeStyle: "short" });
  function ago(iso) {
    const seconds = Math.round((new Date(iso).getTime() - Date.now()) / 1000);
    const abs = Math.abs(seconds);
    if (abs < 60) return relative.format(Math.round(seconds), "second");
    if (abs < 3600) return relative.format(Math.round(seconds / 60), "minute");
    if (abs < 86400) return relative.format(Math.round(seconds / 3600), "hour");
    return relative.format(Math.round(seconds / 86400), "day");
  }
  function stamp(iso) {
    const when = new Date(iso);
    const sameDay = when.toDateString() === new Date().toDateString();
    return el("time", { datetime: iso, title: absolute.format(when), dataset: { relative: iso } },
              (sameDay ? timeOnly.format(when) : absolute.format(when)) + " · " + ago(iso));
  }
  function clock(seconds) {
    const s = Math.max(0, Math.floor(seconds));
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
    return (h ? h + ":" + String(m).padStart(2, "0") : String(m)) + ":" + String(r).padStart(2, "0");
  }
  function slaClass(seconds) {
    const warn = (state.rules ? state.rules.sla_warn_minutes : 2) * 60;
    const breach = (state.rules ? state.rules.sla_breach_minutes : 5) * 60;
    return seconds >= breach ? "sla-breach" : seconds >= warn ? "sla-warn" : "sla-ok";
  }
  function tickClocks() {
    document.querySelectorAll("[data-waiting-since]").forEach((node) => {
      const since = node.dataset.waitingSince;
      const target = node.classList.contains("wait") ? node : node.querySelector(".wait");
      const row = node.classList.contains("wait") ? null : node;
      [target, row].forEach((n) => n && n.classList.remove("sla-ok", "sla-warn", "sla-breach"));
      if (!since) { if (target) target.textContent = ""; return; }
      const seconds = (Date.now() - new Date(since).getTime()) / 1000;
      if (target) { target.textContent = T("waiting_for", { time: clock(seconds) }); target.classList.add(slaClass(seconds)); }
      if (row) row.classList.add(slaClass(seconds));
    });
    document.querySelectorAll("time[data-relative]").forEach((node) => {
      const when = new Date(node.dataset.relative);
      const sameDay = when.toDateString() === new Date().toDateString();
      node.textContent = (sameDay ? timeOnly.format(when) : absolute.format(when)) + " · " + ago(node.dataset.relative);
    });
  }
  setInterval(tickClocks, 1000);

  // ---- panes: one at a time on a phone (list -> conversation -> details), list + conversation on a tablet ----
  function showPane(pane) { document.querySelector("main").dataset.pane = pane; }
  $("back").addEventListener("click", () => { showPane("list"); });
  $("show-details").addEventListener("click", () => showPane("details"));
  $("side-back").addEventListener("click", () => showPane("conversation"));

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
    $("me").textContent = state.me.name + " (" + TC("role_", state.me.role) + ")";
    $("available").checked = state.me.available;
    $("settings").hidden = true;
    $("console").querySelector("main").hidden = false;
    await Promise.all([loadInbox(), loadAgents(), loadCanned(), loadTeam(), loadRules(), loadIntents()]);
    setupNotifications();
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
    showLogin(T("signed_out"));
  }));

  $("available").addEventListener("change", () => act(async () => {
    state.me = await api("PUT", "/availability", { available: $("available").checked });
  }));

  // ---- never miss: notifications (asked once), sound, title badge ----
  function setupNotifications() {
    $("sound").checked = localStorage.getItem("shoptalk.sound") === "on";
    const supported = "Notification" in window;
    $("notify").hidden = !supported || Notification.permission !== "default" ||
      localStorage.getItem("shoptalk.notify-asked") === "yes";
  }
  $("sound").addEventListener("change", () => localStorage.setItem("shoptalk.sound", $("sound").checked ? "on" : "off"));
  $("notify").addEventListener("click", () => {
    localStorage.setItem("shoptalk.notify-asked", "yes");  // asked once: the browser remembers the answer
    $("notify").hidden = true;
    Notification.requestPermission().catch(() => undefined);
  });

  function beep() {
    if (!$("sound").checked) return;
    try {
      const audio = new (window.AudioContext || window.webkitAudioContext)();
      const tone = audio.createOscillator();
      const gain = audio.createGain();
      tone.frequency.value = 880;
      gain.gain.value = 0.08;
      tone.connect(gain).connect(audio.destination);
      tone.start();
      tone.stop(audio.currentTime + 0.18);
      tone.onended = () => audio.close();
    } catch (error) { /* no audio device: the badge and notification still tell */ }
  }

  function notify(title, body, conversationId) {
    document.body.dataset.lastAlert = title + ": " + body;
    document.body.dataset.alerts = (document.body.dataset.alerts || "") + title + "\n";
    beep();
    if (!("Notification" in window) || Notification.permission !== "granted") return;
    if (document.visibilityState === "visible" && conversationId === state.current) return;
    const shown = new Notification(title, { body, tag: "shoptalk-" + conversationId });
    shown.onclick = () => { window.focus(); openConversation(conversationId); shown.close(); };
  }

  function updateTitle() {
    const queue = state.counts.queue;
    const unread = queue ? queue.unread : 0;
    document.title = (unread ? "(" + unread + ") " : "") + TITLE;
  }

  // ---- real time: a real connection state, reconnect with back-off, a clear message when the server is gone ----
  const LIVE_TEXT = { connecting: T("connecting"), live: T("live"),
                     reconnecting: T("reconnecting"), offline: T("offline") };

  function setConnection(name, message) {
    state.connection = name;
    $("live").dataset.state = name;
    $("live-text").textContent = LIVE_TEXT[name];
    const banner = $("conn-banner");
    if (name === "live" || name === "connecting") { banner.hidden = true; return; }
    banner.hidden = false;
    banner.className = name;
    banner.textContent = message || (name === "offline" ? UNREACHABLE
      : T("connection_lost_kept"));
  }

  function startEvents() {
    stopEvents();
    const source = new EventSource(API + "/events");
    state.events = source;
    if (state.connection !== "offline" && state.connection !== "reconnecting") setConnection("connecting");
    source.onerror = () => {
      // The browser's own retry hides a dead server behind a green dot; close and retry with back-off instead.
      source.close();
      if (state.events === source) state.events = null;
      setConnection(state.retry >= 2 ? "offline" : "reconnecting");
      scheduleReconnect();
    };
    source.onmessage = (message) => {
      const event = JSON.parse(message.data);
      if (event.type === "hello") {
        state.retry = 0;
        setConnection("live");
        act(refreshAll);  // what happened before the stream was live (or while we were away)
        return;
      }
      if (event.type === "reconnect") {  // the server is shutting down: another process (or this one) will answer
        source.close();
        if (state.events === source) state.events = null;
        setConnection("reconnecting", T("server_restarting"));
        scheduleReconnect(500);
        return;
      }
      if (event.type === "signed_out") { showLogin(T("session_ended")); return; }
      handleEvent(event);
    };
  }

  function scheduleReconnect(first) {
    if (state.retryTimer || !state.csrf) return;
    const delay = first !== undefined && state.retry === 0 ? first
      : Math.min(30000, 1000 * 2 ** state.retry) * (0.75 + Math.random() * 0.5);
    state.retry += 1;
    state.reconnectAt = Date.now() + delay;
    const countdown = setInterval(() => {
      if (state.connection === "live") { clearInterval(countdown); return; }
      const left = Math.max(0, Math.ceil((state.reconnectAt - Date.now()) / 1000));
      const base = state.connection === "offline" ? T("server_not_answering") : T("connection_lost");
      $("conn-banner").textContent = T("reconnecting_in", { base, seconds: left, attempt: state.retry });
    }, 250);
    state.retryTimer = setTimeout(() => {
      clearInterval(countdown);
      state.retryTimer = null;
      startEvents();
    }, delay);
  }

  function stopEvents() {
    if (state.events) { state.events.close(); state.events = null; }
    clearTimeout(state.retryTimer);
    state.retryTimer = null;
    setConnection("connecting");
  }

  async function refreshAll() {
    await Promise.all([loadInbox(), loadTeam()]);
    if (state.current !== null) await loadConversation();
  }

  function handleEvent(event) {
    if (event.type === "inbox" || event.type === "conversation" || event.type === "escalation" ||
        event.type === "shopper_message") scheduleInbox();
    // A read-only view follows at once; a supervisor's open form is not overwritten under their hands.
    if (event.type === "settings") { act(loadCanned); if ($("settings").hidden || !supervisor()) act(loadRules); }
    if (event.conversation_id !== undefined && event.conversation_id === state.current &&
        event.type !== "inbox") scheduleConversation();
    if (event.type === "escalation") {
      notify(T("new_waiting"), event.reason ? T("notify_reason", { reason: event.reason }) : T("notify_asked_person"),
             event.conversation_id);
    } else if (event.type === "shopper_message" && state.queueIds.has(event.conversation_id)) {
      notify(T("shopper_wrote"), event.preview || T("notify_new_message"), event.conversation_id);
    } else if (event.type === "conversation" && state.me && event.assignee_id === state.me.id) {
      notify(T("assigned_to_you"), T("notify_assigned"), event.conversation_id);
    }
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
    const [items, counts, queue] = await Promise.all([
      api("GET", "/inbox?view=" + state.view), api("GET", "/inbox/counts"),
      state.view === "queue" ? null : api("GET", "/inbox?view=queue")]);
    state.items = items;
    state.queueIds = new Set((queue || items).map((i) => i.conversation_id));
    state.counts = Object.fromEntries(counts.map((c) => [c.view, c]));
    document.querySelectorAll("#views button").forEach((b) => {
      b.classList.toggle("active", b.dataset.view === state.view);
      b.setAttribute("aria-selected", String(b.dataset.view === state.view));
      const count = state.counts[b.dataset.view];
      const badge = b.querySelector(".count");
      if (badge) {
        badge.textContent = count ? String(count.unread || count.conversations || "") : "";
        badge.classList.toggle("zero", !count || !count.unread);
        badge.title = count ? T("unread_in", { unread: count.unread, conversations: count.conversations }) : "";
      }
    });
    updateTitle();
    // Rebuilt only when what it shows changed: events come in bursts, and a list replaced under the agent's pointer
    // or keyboard focus loses the click or the focus (seen under load: every refresh detached the item clicked).
    const shown = JSON.stringify([items, state.current]);
    if (shown !== state.inboxShown) {
      state.inboxShown = shown;
      renderInbox(items);
    }
    $("inbox-empty").hidden = items.length > 0;
    tickClocks();
  }

  function renderInbox(items) {
    $("inbox").replaceChildren(...items.map((item) => el("li", {
      dataset: { conversationId: String(item.conversation_id), waitingSince: item.waiting_since || "" },
      className: [item.conversation_id === state.current ? "current" : "", item.unread ? "unread" : ""].join(" "),
      onclick: () => openConversation(item.conversation_id),
    }, el("div", { className: "who" }, item.shopper_name || item.shopper_email || shortId(item),
          item.unread ? el("span", { className: "count unread-count", title: T("unread") }, String(item.unread)) : null,
          el("span", { className: "tag" }, item.channel),
          item.assignee_name ? el("span", { className: "tag assignee" }, item.assignee_name) : null,
          item.has_draft ? el("span", { className: "tag" }, T("tag_draft")) : null,
          item.reason ? el("span", { className: "tag" }, item.reason) : null),
       el("div", { className: "preview" }, item.last_text || ""),
       el("div", { className: "meta" }, el("span", { className: "wait" }), " ", stamp(item.updated_at)))));
  }

  // The shopper as a person: their name, else their e-mail, else "<Channel> shopper <last 6>" in the page's language.
  function shopperName(shopper, channel, senderId) {
    return shopper.name || shopper.email || shortId({ channel, sender_id: senderId });
  }

  function shortId(item) {
    return T("shopper_short", { channel: item.channel.charAt(0).toUpperCase() + item.channel.slice(1),
                               id: item.sender_id.slice(-6) });
  }

  function openConversation(conversationId) {
    if (state.current !== conversationId) saveTyped();
    state.current = conversationId;
    showPane("conversation");
    act(loadConversation);
    act(loadInbox);
  }

  function moveSelection(step) {
    if (!state.items.length) return;
    const index = state.items.findIndex((i) => i.conversation_id === state.current);
    const next = state.items[(index + step + state.items.length) % state.items.length];
    openConversation(next.conversation_id);
  }

  async function loadAgents() {
    state.agents = await api("GET", "/agents");
    $("transfer-to").replaceChildren(el("option", { value: "" }, T("transfer_to")),
      ...state.agents.filter((a) => a.id !== state.me.id).map((a) =>
        el("option", { value: String(a.id) }, a.online ? a.name : T("agent_offline", { name: a.name }))));
  }

  async function loadTeam() {
    const [agents, csat] = await Promise.all([api("GET", "/agents"), api("GET", "/csat")]);
    const ratings = new Map(csat.map((c) => [c.agent_id, c]));
    $("team").replaceChildren(...agents.map((a) => {
      const r = ratings.get(a.id);
      const score = r && r.average !== null ? T("csat_score", { average: r.average.toFixed(1), answered: r.answered })
        : T("no_csat");
      return el("li", { dataset: { agentId: String(a.id) } },
        T(a.online ? "team_line_online" : "team_line_offline", { name: a.name, open: a.open, capacity: a.capacity, score }));
    }));
  }

  async function loadCanned() {
    state.canned = await api("GET", "/canned");
    $("canned-shortcuts").replaceChildren(...state.canned.map((c) =>
      el("option", { value: "/" + c.shortcut }, c.body.slice(0, 60))));
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
    const select = el("select", { className: "mixed-choice", "aria-label": T("choice") },
      el("option", { value: "answer_and_offer" }, T("mixed_answer_and_offer")),
      el("option", { value: "draft_for_agent" }, T("mixed_draft_for_agent")));
    select.value = choice;
    const input = el("input", { className: "mixed-intent", list: "intent-names", value: intent,
                                "aria-label": T("intent"), size: "24" });
    const row = el("tr", {}, el("td", {}, input), el("td", {}, select));
    row.append(el("td", {}, el("button", { type: "button", className: "mixed-remove",
                                          onclick: () => row.remove() }, T("remove"))));
    return row;
  }

  function renderRules(rules) {
    const edit = supervisor();
    $("settings-mode").textContent = edit ? "" : T("read_only_rules");
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
    $("rule-sla-warn").value = String(rules.sla_warn_minutes);
    $("rule-sla-breach").value = String(rules.sla_breach_minutes);
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
      sla_warn_minutes: numberOrNull("rule-sla-warn"),
      sla_breach_minutes: numberOrNull("rule-sla-breach"),
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
      $("rules-error").textContent = T("saved");
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
        item.append(" ", el("button", { type: "button", className: "canned-edit", onclick: () => cannedEditForm(item, c) }, T("edit")),
          " ", el("button", { type: "button", className: "canned-delete", onclick: () => act(async () => {
            await api("DELETE", "/canned/" + c.id);
            await loadCanned();
          }) }, T("delete")));
      }
      return item;
    }));
  }

  function cannedEditForm(item, canned) {
    const shortcut = el("input", { value: canned.shortcut, className: "canned-edit-shortcut", maxlength: "40",
                                   "aria-label": T("shortcut") });
    const body = el("textarea", { className: "canned-edit-body", rows: "2", "aria-label": T("text") });
    body.value = canned.body;
    state.cannedEditing = canned.id;
    item.replaceChildren(el("form", { onsubmit: (event) => {
      event.preventDefault();
      act(async () => {
        await api("PUT", "/canned/" + canned.id, { shortcut: shortcut.value.trim(), body: body.value });
        state.cannedEditing = null;
        await loadCanned();
      });
    } }, shortcut, body, el("button", { type: "submit", className: "canned-save" }, T("save")),
       el("button", { type: "button", onclick: () => { state.cannedEditing = null; renderCannedList(); } }, T("cancel"))));
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
  function typedKey(id) { return "shoptalk.typed." + id; }
  function saveTyped() {
    if (state.current === null) return;
    const text = $("reply-text").value;
    if (text) localStorage.setItem(typedKey(state.current), text);
    else localStorage.removeItem(typedKey(state.current));
  }
  $("reply-text").addEventListener("input", saveTyped);

  async function loadConversation() {
    if (state.current === null) return;
    const id = state.current;
    const view = await api("GET", "/conversations/" + id + "?locale=" + encodeURIComponent(LANG));
    if (id !== state.current) return;
    const switched = !state.conversation || state.conversation.conversation_id !== id;
    state.conversation = view;
    renderConversation(view, switched);
    clearTimeout(state.poll);
    // Delivery status changes in the worker; look again while a reply is still on its way.
    // A shopper's file still being fetched shows "Fetching…"; look again until it is stored or refused.
    if (view.messages.some((m) => m.delivery === "sending" || (m.media && m.media.status === "pending"))) {
      state.poll = setTimeout(() => act(loadConversation), 1500);
    }
    if (document.visibilityState === "visible" && view.last_message_id) {
      await api("POST", "/conversations/" + id + "/read", { message_id: view.last_message_id });
      scheduleInbox();
    }
    await loadReplyWindow(view);  // last: its failure must not stop the poll or the read marker
  }

  // WhatsApp's 24-hour customer-service window: outside it only a registered template can be sent.
  async function loadReplyWindow(view) {
    const box = $("wa-window");
    if (view.channel !== "whatsapp") { box.hidden = true; return; }
    const windowState = view.reply_window;  // part of the conversation's view: no request of its own
    if (!windowState || windowState.open) { box.hidden = true; return; }
    const closed = windowState.closes_at
      ? T("wa_window_closed", { time: new Date(windowState.closes_at).toLocaleString(LANG) }) : T("wa_window_never");
    $("wa-window-text").textContent = closed + " " + T("wa_window_template") +
      (windowState.templates.length ? "" : " " + T("wa_no_template"));
    $("wa-template").replaceChildren(...windowState.templates.map((name) => el("option", { value: name }, name)));
    $("wa-template").hidden = $("wa-template-send").hidden = !windowState.templates.length;
    box.hidden = false;
  }

  $("wa-template-send").addEventListener("click", () => act(async () => {
    if (state.current === null || !$("wa-template").value) return;
    await api("POST", "/conversations/" + state.current + "/whatsapp-template", { name: $("wa-template").value });
    await loadConversation();
  }));

  function renderConversation(view, switched) {
    $("conversation").hidden = false;
    $("side").hidden = false;
    $("conversation-title").textContent = shopperName(view.shopper, view.channel, view.sender_id) + " · " + view.channel;
    const owner = view.assignee_name ? T("state_with", { name: view.assignee_name }) : T("state_unassigned");
    $("conversation-state").textContent = view.status === "bot" ? T("state_bot_answering") :
      TC("status_", view.status) + (view.status === "open" ? ", " + owner : "") + " - " +
      T(view.mode === "human" ? "state_bot_silent" : "state_bot_on");
    const item = state.items.find((i) => i.conversation_id === view.conversation_id);
    $("conversation-wait").dataset.waitingSince = view.status === "open" && item && item.waiting_since ? item.waiting_since : "";
    const mine = view.assignee_id === state.me.id && view.status === "open";
    $("take").hidden = mine;
    $("hand-back").hidden = !mine;
    $("resolve").hidden = !mine;
    $("transfer").hidden = view.status !== "open";
    $("transfer-to").hidden = view.status !== "open";
    $("reply-form").hidden = !mine;
    $("draft-box").hidden = !(mine && view.draft);
    if (mine && view.draft && document.activeElement !== $("draft-text")) $("draft-text").value = view.draft;
    $("draft-cards").replaceChildren(...(view.draft_cards || []).map((c) => card(c)));
    if (switched) {
      $("reply-text").value = localStorage.getItem(typedKey(view.conversation_id)) || "";
      hideCannedPreview();
      $("catalog-results").hidden = true;
      state.cartDraft = [];
      $("cart-draft").hidden = true;
    }
    const intents = new Set();
    const entries = [];
    view.messages.forEach((m, index) => {
      if (m.intent) intents.add(m.intent);
      entries.push([m.created_at, 0, m.id, () => renderMessage(m, view.messages.slice(0, index))]);
    });
    view.notes.forEach((n) => entries.push([n.created_at, 1, n.id, () => renderNote(n)]));
    (view.events || []).forEach((e) => entries.push([e.created_at, 2, e.id, () => renderEvent(e)]));
    entries.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] - b[1] || a[2] - b[2]));
    const box = $("messages");
    const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
    box.replaceChildren(...entries.map((entry) => entry[3]()));
    $("intents").replaceChildren(...[...intents].map((name) => el("option", { value: name })));
    if (switched || atBottom) box.scrollTop = box.scrollHeight;
    renderShopper(view);
    tickClocks();
  }

  function safeUrl(url) {
    try { const parsed = new URL(url, location.href); return /^https?:$/.test(parsed.protocol) ? parsed.href : null; }
    catch (error) { return null; }
  }

  function card(c, extra) {
    return el("div", { className: "card", dataset: { sku: c.sku } },
      el("div", { className: "title" }, c.title),
      c.subtitle ? el("div", { className: "subtitle" }, c.subtitle) : null,
      c.price_text ? el("div", { className: "price" }, c.price_text) : null,
      el("div", { className: "sku" }, c.sku),
      (c.buttons || []).length ? el("div", { className: "chips" }, c.buttons.map(chip)) : null,
      extra || null);
  }

  function chip(b) {
    const url = b.url ? safeUrl(b.url) : null;
    if (url) return el("a", { className: "chip link", href: url, target: "_blank", rel: "noopener noreferrer" }, b.title + " ↗");
    return el("span", { className: "chip", title: b.payload || "" }, b.title);
  }

  function orderSummary(custom) {
    if (!custom || !custom.order_number) return null;
    const parts = [T("order_number", { number: custom.order_number })];
    if (custom.status) parts.push(TC("order_status_", custom.status));
    if (custom.total && custom.currency) {
      let total = custom.total + " " + custom.currency;
      try { total = new Intl.NumberFormat(LANG, { style: "currency", currency: custom.currency }).format(Number(custom.total)); }
      catch (error) { /* unknown currency code: the raw amount */ }
      parts.push(total);
    }
    if (custom.tracking_number) parts.push((custom.carrier || "") + " " + custom.tracking_number);
    return el("div", { className: "order-summary" }, parts.join(" · "));
  }

  function renderMessage(m, before) {
    const meta = el("div", { className: "meta" });
    meta.append(el("span", { className: "author" }, m.agent_name || TC("author_", m.author)), stamp(m.created_at));
    if (m.intent) {
      meta.append(el("span", { className: "intent" }, m.intent + " " + (m.confidence === null ? "" : m.confidence.toFixed(2))));
    }
    if (m.corrected_intent) meta.append(el("span", { className: "corrected" }, T("corrected", { intent: m.corrected_intent })));
    if (m.policy) meta.append(el("span", { className: "policy" }, m.policy + (m.reason ? " (" + m.reason + ")" : "")));
    if (m.delivery) {
      meta.append(el("span", { className: "delivery " + m.delivery },
        m.delivery === "failed" ? T("not_delivered", { error: m.delivery_error || "" }) : TC("delivery_", m.delivery)));
    }
    if (m.delivery_status) {
      // What the shopper's app reported (WhatsApp: sent, delivered, read, failed).
      const ticks = { read: "✓✓ ", delivered: "✓✓ ", sent: "✓ " }[m.delivery_status] || "";
      meta.append(el("span", { className: "receipt " + m.delivery_status, title: T("receipt_title") },
        ticks + TC("receipt_", m.delivery_status)));
    }
    const pressed = m.direction === "in" && m.payload && !m.text ? T("pressed", { payload: m.payload }) : null;
    const item = el("li", { className: (m.direction === "in" ? "in" : "out") + " author-" + m.author,
                           dataset: { messageId: String(m.id), author: m.author } },
                    (m.text || pressed || m.payload) ? el("div", { className: "text" }, m.text || pressed || m.payload) : null,
                    shopperFile(m),
                    (m.cards || []).length ? el("div", { className: "cards" }, m.cards.map((c) => card(c))) : null,
                    (m.buttons || []).length ? el("div", { className: "chips buttons" }, m.buttons.map(chip)) : null,
                    orderSummary(m.custom), meta);
    if (m.direction === "in" && m.text) {
      meta.append(el("button", { type: "button", className: "correct", onclick: () => correctForm(item, m) }, T("correct_intent")));
    }
    if (m.author === "agent" && m.text) {
      const question = [...before].reverse().find((b) => b.direction === "in" && b.text);
      meta.append(el("button", { type: "button", className: "save-faq",
                                 onclick: () => faqForm(item, question ? question.text : "", m.text) }, T("save_as_faq")));
    }
    return item;
  }

  // A file the shopper sent (WhatsApp, WeChat; issue 29): a safe image as a thumbnail that opens the full image,
  // anything else as a download; while the server still fetches it, or when it was refused, a line says so.
  function shopperFile(m) {
    const f = m.media;
    if (!f) return null;
    if (f.status !== "stored") {
      return el("div", { className: "shopper-file " + f.status },
        f.status === "failed" ? T("file_not_kept", { kind: TC("media_", f.kind), error: f.error || "" }) :
          T("file_fetching", { kind: TC("media_", f.kind) }));
    }
    if (f.inline) {
      return el("a", { className: "shopper-file image", href: f.url, target: "_blank", rel: "noopener",
                       title: T("open_full_image") },
        el("img", { src: f.url, alt: T("image_alt"), loading: "lazy" }));
    }
    const size = f.size ? " " + T("size_kb", { kb: Math.max(1, Math.round(f.size / 1024)) }) : "";
    return el("a", { className: "shopper-file download", href: f.url, download: f.filename || "" },
      T("download_file", { name: f.filename || TC("media_", f.kind) }) + size);
  }

  function renderNote(n) {
    return el("li", { className: "note", dataset: { noteId: String(n.id) } },
      el("div", { className: "text" }, el("span", { className: "private" }, T("private_note_label")), n.body),
      el("div", { className: "meta" }, el("span", { className: "author" }, n.agent_name), stamp(n.created_at)));
  }

  // Who did what, in the page's language: "<agent> took the conversation", "... assigned it to ...".
  const who = (e) => e.agent_name || T("an_agent");
  const whom = (e) => e.target_agent_name || T("an_agent_target");
  const EVENT_TEXT = {
    escalated: (e) => (e.detail ? T("event_escalated_because", { detail: e.detail }) : T("event_escalated")),
    taken: (e) => T("event_taken", { agent: who(e) }),
    assigned: (e) => T(e.agent_name ? "event_assigned_by" : "event_assigned", { agent: who(e), target: whom(e) }) +
      (e.detail === "round_robin" ? " " + T("event_round_robin") : ""),
    transferred: (e) => T("event_transferred", { agent: who(e), target: whom(e) }),
    handed_back: (e) => T("event_handed_back", { agent: who(e) }),
    resolved: (e) => T("event_resolved", { agent: who(e) }),
  };
  function renderEvent(e) {
    const text = (EVENT_TEXT[e.kind] || ((x) => x.kind))(e);
    return el("li", { className: "event", dataset: { eventKind: e.kind } }, text, " · ", stamp(e.created_at));
  }

  function correctForm(item, message) {
    const input = el("input", { list: "intents", value: message.corrected_intent || message.intent || "",
                                className: "intent-input", "aria-label": T("right_intent") });
    const form = el("form", { className: "correct-form", onsubmit: (event) => {
      event.preventDefault();
      act(async () => {
        await api("POST", "/messages/" + message.id + "/intent", { intent: input.value.trim() });
        flash(T("saved_training"));
        await loadConversation();
      });
    } }, input, el("button", { type: "submit" }, T("save_intent")));
    item.append(form);
    input.focus();
  }

  function faqForm(item, question, answer) {
    const q = el("input", { value: question, className: "faq-question", "aria-label": T("question") });
    const a = el("textarea", { className: "faq-answer", rows: "2", "aria-label": T("answer") });
    a.value = answer;
    const form = el("form", { className: "faq-form", onsubmit: (event) => {
      event.preventDefault();
      act(async () => {
        await api("POST", "/faq-drafts", { question: q.value, answer: a.value,
                                           language: state.conversation.shopper.locale || "en" });
        form.remove();
        flash(T("saved_faq"));
      });
    } }, q, a, el("button", { type: "submit" }, T("save_faq_draft")));
    item.append(form);
  }

  // Payments (issue 23): paid and refunded amounts, the refunds, and a refund action (the server checks the role).
  function orderMoney(o) {
    const refunds = (o.refunds || []).map((text) => el("li", { className: "refund" }, text));
    const nodes = [];
    if (refunds.length) nodes.push(el("ul", { className: "refunds" }, ...refunds));
    if (o.refundable_text && state.me && state.me.role !== "agent") {
      nodes.push(el("button", { type: "button", className: "refund-order", onclick: () => openRefund(o) }, T("refund")));
    }
    return nodes;
  }

  // The refund dialog (issue 23): an amount or all that is left, a reason the shopper is told; a refusal by the return
  // policy (409 refund_outside_policy) is said plainly, and a supervisor or the owner may override it with a reason.
  const OVERRIDE_ROLES = new Set(["supervisor", "owner"]);
  function refundKey(o) { return "console-" + o.order_id + "-" + Date.now() + "-" + Math.random().toString(36).slice(2, 8); }
  function openRefund(o) {
    state.refunding = { order: o, key: refundKey(o) };
    $("refund-title").textContent = T("refund_title", { number: o.number });
    $("refund-left").textContent = T("refund_left", { amount: o.refundable_text });
    $("refund-amount").value = "";
    $("refund-amount").disabled = false;
    $("refund-all").checked = false;
    $("refund-reason").value = "";
    $("refund-override").hidden = true;
    $("refund-override-reason").value = "";
    $("refund-error").textContent = "";
    $("refund-submit").disabled = false;
    $("refund-dialog").showModal();
    $("refund-amount").focus();
  }
  $("refund-all").addEventListener("change", () => {
    $("refund-amount").disabled = $("refund-all").checked;
    if ($("refund-all").checked) $("refund-amount").value = "";
  });
  $("refund-cancel").addEventListener("click", () => $("refund-dialog").close());
  $("refund-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const refunding = state.refunding;
    if (!refunding || $("refund-submit").disabled) return;
    const all = $("refund-all").checked;
    const amount = $("refund-amount").value.trim().replace(",", ".");
    if (!all && !/^\d+(\.\d+)?$/.test(amount)) {
      $("refund-error").textContent = T("refund_amount_needed");
      $("refund-amount").focus();
      return;
    }
    const overriding = !$("refund-override").hidden;
    const overrideReason = $("refund-override-reason").value.trim();
    if (overriding && !overrideReason) {
      $("refund-error").textContent = T("refund_override_needed");
      $("refund-override-reason").focus();
      return;
    }
    $("refund-submit").disabled = true;  // a double click refunds once (and the key makes the server agree)
    act(async () => {
      try {
        await api("POST", "/orders/" + refunding.order.order_id + "/refunds", {
          amount: all ? null : amount, reason: $("refund-reason").value.trim() || null,
          override_reason: overriding ? overrideReason : null, idempotency_key: refunding.key });
      } catch (error) {
        refunding.key = refundKey(refunding.order);  // nothing was refunded: the next try is a new request
        $("refund-submit").disabled = false;
        if (error.code === "refund_outside_policy") {
          const may = state.me && OVERRIDE_ROLES.has(state.me.role);
          $("refund-error").textContent = T(may ? "refund_outside_policy_override" : "refund_outside_policy") +
            " (" + error.message + ")";
          $("refund-override").hidden = !may;
          if (may) $("refund-override-reason").focus();
          return;
        }
        const tooMuch = error.code === "refund_not_possible" && error.problem && error.problem.refundable !== undefined;
        // Too much: the dialog already says what is left, in the agent's money format; anything else says why.
        $("refund-error").textContent = tooMuch ? T("refund_too_much") : T("refund_failed") + " (" + error.message + ")";
        return;
      }
      $("refund-dialog").close();
      flash(T("refunded_order", { number: refunding.order.number }));
      await loadConversation();
    });
  });

  function renderShopper(view) {
    const s = view.shopper;
    $("shopper-name").textContent = shopperName(s, view.channel, view.sender_id);
    const country = s.country ? (s.country_name ? s.country_name + " (" + s.country + ")" : s.country) : null;
    const rows = [[T("name"), s.name], [T("email"), s.email], [T("language"), s.locale],
                  [T("country"), country], [T("currency"), s.currency],
                  [T("came_from"), view.channel], [T("channel_id"), view.sender_id]];
    const came = s.came_from || {};  // landing page, referrer and UTM (web chat); the deep-link parameter (Telegram)
    const campaign = ["utm_source", "utm_medium", "utm_campaign"].map((k) => came[k]).filter(Boolean).join(" / ");
    rows.push([T("landing_page"), came.landing_page], [T("referrer"), came.referrer],
              [T("campaign"), campaign || null]);
    if (came.start_parameter) rows.push([T("start_parameter"), came.start_parameter]);
    $("shopper").replaceChildren(...rows.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v || "-")]));
    $("orders").replaceChildren(...s.orders.map((o) => el("li", { dataset: { order: o.number } },
      "#" + o.number + " " + o.total_text + " · " + T("order_facet", { state: TC("order_state_", o.order_state) }) + " · ",
      el("span", { className: o.paid ? "paid" : "unpaid" }, T("payment_facet", {
        state: TC("payment_state_", o.payment_state, { paid: o.paid_text, refunded: o.refunded_text }) })),
      " · " + T("fulfilment_facet", { state: TC("fulfilment_", o.fulfilment) }), ...orderMoney(o))));
    $("cart").replaceChildren(...s.cart.map((line) => el("li", {}, line.sku + " x " + line.quantity)));
    if (!s.orders.length) $("orders").append(el("li", {}, T("no_orders")));
    if (!s.cart.length) $("cart").append(el("li", {}, T("empty")));
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
    if (!to) { flash(T("pick_agent")); return; }
    await api("POST", "/conversations/" + state.current + "/assign", { agent_id: Number(to) });
    await Promise.all([loadConversation(), loadInbox()]);
  }));

  function sendReply() {
    act(async () => {
      const text = $("reply-text").value;
      const left = [...new Set([...text.matchAll(/\{([a-z_]+)\}/g)].map((m) => m[1]))];
      if (left.length) { showMissing(left); return; }
      try {
        await api("POST", "/conversations/" + state.current + "/replies", { text });
      } catch (error) {
        if (error.code === "unfilled_variable" && error.problem) showMissing(error.problem.variables || []);
        throw error;
      }
      $("reply-text").value = "";
      saveTyped();
      hideCannedPreview();
      await loadConversation();
    });
  }
  $("reply-form").addEventListener("submit", (event) => { event.preventDefault(); sendReply(); });
  $("reply-text").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) { event.preventDefault(); sendReply(); }
  });

  // ---- the shopper sees "<agent> is typing…" (issue 26): at most one "on" per 2 s while the box has text; "off" when
  // it is cleared, after 4 s without typing, or on leaving the conversation (a sent reply clears it on the shopper's side)
  function signalTyping() {
    const t = signalTyping.s || (signalTyping.s = { id: null, at: 0, idle: 0 });
    const id = state.current, hasText = $("reply-text").value.trim() !== "";
    const send = (cid, on) => api("POST", "/conversations/" + cid + "/typing", { on }).catch(() => {});
    clearTimeout(t.idle);
    if (t.id !== null && (t.id !== id || !hasText)) { send(t.id, false); t.id = null; t.at = 0; }
    if (!hasText || id === null) return;
    if (Date.now() - t.at >= 2000) { send(id, true); t.id = id; t.at = Date.now(); }
    t.idle = setTimeout(() => { if (t.id !== null) { send(t.id, false); t.id = null; t.at = 0; } }, 4000);
  }
  $("reply-text").addEventListener("input", signalTyping);

  $("draft-send").addEventListener("click", () => act(async () => {
    const edited = $("draft-text").value.trim() !== (state.conversation.draft || "").trim();
    await api("POST", "/conversations/" + state.current + "/draft/send", edited ? { text: $("draft-text").value } : {});
    await loadConversation();
  }));

  // ---- canned responses: filled from the conversation, missing variables named, never sent raw ----
  function showMissing(names) {
    state.cannedMissing = names;
    $("canned-preview").hidden = names.length === 0;
    $("canned-missing").textContent = names.length
      ? T(names.length === 1 ? "fill_in_one" : "fill_in_many", { names: names.map((n) => "{" + n + "}").join(", ") })
      : "";
  }
  function hideCannedPreview() { showMissing([]); }

  async function useCanned(shortcut) {
    const canned = state.canned.find((c) => "/" + c.shortcut === shortcut || c.shortcut === shortcut);
    if (!canned || state.current === null) return false;
    const filled = await api("GET", "/conversations/" + state.current + "/canned/" + canned.id +
                             "?locale=" + encodeURIComponent(LANG));
    const box = $("reply-text");
    box.value = box.value ? box.value.replace(/\s*$/, " ") + filled.text : filled.text;
    saveTyped();
    showMissing(filled.missing);
    $("canned-search").value = "";
    box.focus();
    const first = box.value.search(/\{[a-z_]+\}/);
    if (first >= 0) box.setSelectionRange(first, box.value.indexOf("}", first) + 1);  // select what to fill
    return true;
  }
  $("canned-search").addEventListener("change", () => act(() => useCanned($("canned-search").value.trim())));
  $("canned-search").addEventListener("keydown", (event) => {
    if (event.key === "Enter") { event.preventDefault(); act(() => useCanned($("canned-search").value.trim())); }
  });
  $("reply-text").addEventListener("input", () => {
    const left = [...new Set([...$("reply-text").value.matchAll(/\{([a-z_]+)\}/g)].map((m) => m[1]))];
    if (state.cannedMissing.length || left.length) showMissing(left);
  });

  // ---- the catalog from the reply box: search and send product cards ----
  let catalogTimer = null;
  $("catalog-search").addEventListener("input", () => {
    clearTimeout(catalogTimer);
    const query = $("catalog-search").value.trim();
    if (!query) { $("catalog-results").hidden = true; return; }
    catalogTimer = setTimeout(() => act(async () => {
      const found = await api("GET", "/catalog?q=" + encodeURIComponent(query) + "&conversation_id=" + state.current);
      $("catalog-results").hidden = false;
      $("catalog-results").replaceChildren(...(found.length ? found.map((c) => card(c, el("div", { className: "card-actions" }, el("button", {
        type: "button", className: "send-card", onclick: () => act(async () => {
          await api("POST", "/conversations/" + state.current + "/cards",
                    { skus: [c.sku], text: $("reply-text").value.trim() || null });
          $("reply-text").value = "";
          saveTyped();
          $("catalog-results").hidden = true;
          $("catalog-search").value = "";
          await loadConversation();
        }) }, T("send_card")), cartDraftAdder(c)))) : [el("p", {}, T("no_products"))]));
    }), 250);
  });

  // ---- a cart link from the reply box: variants and quantities into a draft, priced for the shopper, then sent ----
  function cartDraftAdder(c) {
    const quantity = el("input", { type: "number", min: "1", max: "99", value: "1", className: "cart-qty",
                                   "aria-label": T("cart_link_quantity") + " " + c.title });
    return el("div", { className: "cart-add" }, quantity, el("button", { type: "button", className: "add-to-cart-link",
      onclick: () => act(async () => {
        const n = Math.max(1, Math.min(99, Number(quantity.value) || 1));
        const line = state.cartDraft.find((l) => l.sku === c.sku);
        if (line) line.quantity = Math.min(99, line.quantity + n); else state.cartDraft.push({ sku: c.sku, quantity: n });
        await renderCartDraft();
      }) }, T("cart_link_add")));
  }

  async function renderCartDraft() {
    const box = $("cart-draft");
    box.hidden = state.cartDraft.length === 0;
    if (box.hidden) return;
    const conversationId = state.current;
    const draft = await api("POST", "/conversations/" + conversationId + "/cart-link/preview", { lines: state.cartDraft });
    if (conversationId !== state.current) return;
    $("cart-draft-lines").replaceChildren(...draft.lines.map((line) => {
      const quantity = el("input", { type: "number", min: "1", max: "99", value: String(line.quantity), className: "cart-qty",
                                     "aria-label": T("cart_link_quantity") + " " + line.title });
      quantity.addEventListener("change", () => act(async () => {
        const wanted = state.cartDraft.find((l) => l.sku === line.sku);
        if (wanted) wanted.quantity = Math.max(1, Math.min(99, Number(quantity.value) || 1));
        await renderCartDraft();
      }));
      const label = line.options ? line.title + " (" + line.options + ")" : line.title;
      return el("li", { dataset: { sku: line.sku }, className: line.problem ? "problem" : "" },
        quantity, " × ", el("span", { className: "title" }, label), " ",
        el("span", { className: "amount" }, line.line_total_text),
        line.problem ? el("span", { className: "why", role: "alert" }, TC("cart_link_problem_", line.problem)) : null,
        el("button", { type: "button", className: "remove", "aria-label": T("cart_link_remove") + " " + label,
                       onclick: () => act(async () => {
                         state.cartDraft = state.cartDraft.filter((l) => l.sku !== line.sku);
                         await renderCartDraft();
                       }) }, "×"));
    }));
    $("cart-draft-total").textContent = T("cart_link_total") + ": " + draft.total_text;
    $("cart-link-send").disabled = !draft.sendable;
  }

  $("cart-link-send").addEventListener("click", () => act(async () => {
    if (!state.cartDraft.length) return;
    await api("POST", "/conversations/" + state.current + "/cart-link", { lines: state.cartDraft });
    state.cartDraft = [];
    $("cart-draft").hidden = true;
    $("catalog-results").hidden = true;
    $("catalog-search").value = "";
    flash(T("cart_link_sent"));
    await loadConversation();
  }));
  $("cart-draft-clear").addEventListener("click", () => { state.cartDraft = []; $("cart-draft").hidden = true; });

  $("note-form").addEventListener("submit", (event) => {
    event.preventDefault();
    act(async () => {
      await api("POST", "/conversations/" + state.current + "/notes", { body: $("note-text").value });
      $("note-text").value = "";
      await loadConversation();
    });
  });

  // ---- keyboard shortcuts: r reply, j/k next/previous, a assign to me, e resolve, / canned, ? help ----
  function typing(target) {
    return target && (target.tagName === "INPUT" || target.tagName === "TEXTAREA" || target.tagName === "SELECT" ||
                      target.isContentEditable);
  }
  $("shortcuts-open").addEventListener("click", () => { $("shortcuts").hidden = !$("shortcuts").hidden; });
  $("shortcuts-close").addEventListener("click", () => { $("shortcuts").hidden = true; });
  document.addEventListener("keydown", (event) => {
    if ($("console").hidden || event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.key === "Escape") { $("shortcuts").hidden = true; if (typing(event.target)) event.target.blur(); return; }
    if (typing(event.target)) return;
    const open = state.current !== null && !$("conversation").hidden;
    const run = {
      r: () => { if (open && !$("reply-form").hidden) $("reply-text").focus(); },
      j: () => moveSelection(1),
      k: () => moveSelection(-1),
      a: () => { if (open && !$("take").hidden) $("take").click(); },
      e: () => { if (open && !$("resolve").hidden) $("resolve").click(); },
      "/": () => { if (open && !$("reply-form").hidden) $("canned-search").focus(); },
      "?": () => { $("shortcuts").hidden = !$("shortcuts").hidden; },
    }[event.key];
    if (run) { event.preventDefault(); run(); }
  });

  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible" && state.current !== null) act(loadConversation);
  });

  // ---- boot: an existing session (cookie) signs straight in ----
  fetch(API + "/session", { credentials: "same-origin" })
    .then(async (response) => (response.ok ? start(await response.json()) : showLogin()))
    .catch(() => showLogin(UNREACHABLE));
})();
