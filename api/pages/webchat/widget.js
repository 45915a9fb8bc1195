// ShopTalk messenger: the page at "/" and the frame a storefront's /widget.js opens. Text from the server or the
// shopper is only ever put in the page through textContent / DOM nodes, never innerHTML; the small Markdown
// allow-list below builds elements, so markup in any message is shown as text.
(function () {
  "use strict";
  var data = {};
  try { data = JSON.parse(document.getElementById("shoptalk-data").textContent); } catch (e) { data = {}; }
  var STRINGS = data.strings || {};
  var LANGUAGES = data.languages || { en: "English" };
  var framed = document.body.getAttribute("data-mode") === "frame";
  var shop = data.shop || "";
  var prefix = framed ? "" : "shoptalk.webchat.";
  var SESSION_KEY = prefix + "session-token";  // minted and signed by the server
  var CUSTOMER_KEY = prefix + "customer";  // the verified customer the kept token belongs to, if any
  var PENDING_KEY = prefix + "pending";
  var LOCALE_KEY = prefix + "locale";
  var SOUND_KEY = prefix + "sound";  // the shopper's choice: a short tone for new messages (off unless they turn it on)
  var MAX_PENDING = 50;

  function randomId() {
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }
  // In a frame, browsers keep (or block) third-party storage per top-level site; the storefront's loader keeps
  // the frame's values in the storefront's own storage instead and hands them over in its "init" message.
  var kept = {};
  function load(key, fallback) {
    if (framed) { return Object.prototype.hasOwnProperty.call(kept, key) && kept[key] !== null ? kept[key] : fallback; }
    try { var v = window.localStorage.getItem(key); return v === null ? fallback : JSON.parse(v); }
    catch (e) { return fallback; }
  }
  function save(key, value) {
    if (framed) { kept[key] = value; tell({ type: "store", key: key, value: value }); return; }
    try { window.localStorage.setItem(key, JSON.stringify(value)); } catch (e) { /* private mode */ }
  }
  function drop(key) { save(key, null); if (!framed) { try { window.localStorage.removeItem(key); } catch (e) { /* private mode */ } } }
  if (!framed) { try { window.localStorage.removeItem("shoptalk.webchat.session"); } catch (e) { /* the old self-chosen id */ } }

  var sessionToken = null, customer = null, pending = [], storedLocale = null;
  var locale = (navigator.language || "en").toLowerCase().indexOf("zh") === 0 ? "zh" : "en";
  function restore() {
    sessionToken = load(SESSION_KEY, null);  // "<id>.<signature>"; none yet: the server sends one
    if (typeof sessionToken !== "string" || !/^[0-9a-f]{32}\.[A-Za-z0-9_-]{43}$/.test(sessionToken)) { sessionToken = null; }
    customer = load(CUSTOMER_KEY, null);
    pending = load(PENDING_KEY, []);  // frames sent but not yet acknowledged, in order
    if (!Array.isArray(pending)) { pending = []; }
    storedLocale = load(LOCALE_KEY, null);
    setSound(load(SOUND_KEY, false) === true, false);
    if (STRINGS[storedLocale]) { locale = storedLocale; }
  }
  var rendered = {};  // message key -> its <li>, so nothing shows twice
  var lastTheirs = null;  // author and agent name of the last shop message drawn (who the typing line names)
  var socket = null;
  var retryDelay = 500;
  var identity = null;  // {customerId, signature} given by the storefront
  var isOpen = !framed;
  var unread = 0;
  var typingTimer = null;

  var log = document.getElementById("log");
  var statusEl = document.getElementById("status");
  var form = document.getElementById("composer");
  var input = document.getElementById("text");
  var localeSelect = document.getElementById("locale");
  var typingEl = document.getElementById("typing");
  var prechat = document.getElementById("prechat");
  var identityEl = document.getElementById("identity");
  var closeButton = document.getElementById("close");
  var soundButton = document.getElementById("sound");

  // Optional sound: off by default; when on, a short tone (Web Audio, no file to fetch) for a message from the shop
  // that arrives while the chat is closed or the tab is hidden. The tone needs the shopper's own click first (browsers
  // allow audio only after a gesture), which the toggle itself is.
  var soundOn = false, audio = null, tones = 0;
  function setSound(on, remember) {
    soundOn = on;
    if (soundButton) { soundButton.setAttribute("aria-pressed", on ? "true" : "false"); }
    if (remember) { save(SOUND_KEY, on); }
  }
  function chime() {
    if (!soundOn || (isOpen && !document.hidden)) { return; }
    tones += 1;
    try {
      audio = audio || new (window.AudioContext || window.webkitAudioContext)();
      var osc = audio.createOscillator(), gain = audio.createGain(), now = audio.currentTime;
      osc.frequency.value = 880;
      gain.gain.setValueAtTime(0.0001, now);
      gain.gain.exponentialRampToValueAtTime(0.2, now + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, now + 0.25);
      osc.connect(gain); gain.connect(audio.destination);
      osc.start(now); osc.stop(now + 0.3);
    } catch (e) { /* no audio in this browser: the unread badge still counts */ }
  }
  if (soundButton) {
    soundButton.addEventListener("click", function () {
      setSound(!soundOn, true);
      if (soundOn && !audio) { try { audio = new (window.AudioContext || window.webkitAudioContext)(); } catch (e) { /* none */ } }
    });
  }

  function t(key, values) {
    var text = (STRINGS[locale] || STRINGS.en || {})[key] || (STRINGS.en || {})[key] || "";
    Object.keys(values || {}).forEach(function (name) { text = text.split("{" + name + "}").join(String(values[name])); });
    return text;
  }
  // Until the storefront's init names its origin only "ready" goes out; afterwards nothing (the session token
  // included) is posted to any other origin than that page's.
  var parentOrigin = null;
  function tell(message) {
    if (!framed || window.parent === window) { return; }
    if (parentOrigin === null && message.type !== "ready") { return; }
    window.parent.postMessage(Object.assign({ shoptalk: 1 }, message), parentOrigin || "*");
  }

  Object.keys(LANGUAGES).forEach(function (code) {
    var option = document.createElement("option");
    option.value = code; option.textContent = LANGUAGES[code]; option.lang = code;
    localeSelect.appendChild(option);
  });
  localeSelect.setAttribute("aria-label", "Language / 语言");

  function applyLocale() {
    document.documentElement.lang = locale === "zh" ? "zh-Hans" : locale;
    localeSelect.value = locale;
    document.querySelectorAll("[data-i18n]").forEach(function (el) { el.textContent = t(el.getAttribute("data-i18n")); });
    input.placeholder = t("placeholder");
    setStatus(statusEl.getAttribute("data-state") || "connecting");
    tell({ type: "locale", locale: locale, strings: STRINGS[locale] || {} });
  }
  function setLocale(code, remember) {
    if (!STRINGS[code]) { return; }
    locale = code;
    if (remember) { save(LOCALE_KEY, locale); }
    applyLocale();
  }
  function setStatus(state) {
    statusEl.setAttribute("data-state", state);
    statusEl.textContent = t(state) || "";
  }
  function safeUrl(url) {
    return typeof url === "string" && /^https?:\/\//i.test(url) ? url : null;
  }

  // Markdown, allow-listed: **bold**, *em* / _em_, `code`, [text](http(s) link), "- " lists, line breaks.
  var INLINE = /(\*\*[^*\n]+\*\*|`[^`\n]+`|\[[^\]\n]+\]\((https?:\/\/[^)\s]+)\)|\*[^*\s][^*\n]*\*|_[^_\s][^_\n]*_)/;
  function inline(text, into) {
    var rest = text;
    while (rest) {
      var match = INLINE.exec(rest);
      if (!match) { into.appendChild(document.createTextNode(rest)); break; }
      if (match.index) { into.appendChild(document.createTextNode(rest.slice(0, match.index))); }
      var token = match[0], el;
      if (token.indexOf("**") === 0) { el = document.createElement("strong"); el.textContent = token.slice(2, -2); }
      else if (token.charAt(0) === "`") { el = document.createElement("code"); el.textContent = token.slice(1, -1); }
      else if (token.charAt(0) === "[") {
        el = document.createElement("a");
        el.href = match[2]; el.target = "_blank"; el.rel = "noopener noreferrer nofollow";
        el.textContent = token.slice(1, token.indexOf("]("));
      } else { el = document.createElement("em"); el.textContent = token.slice(1, -1); }
      into.appendChild(el);
      rest = rest.slice(match.index + token.length);
    }
  }
  function markdown(text, into) {
    var list = null;
    String(text || "").split("\n").forEach(function (line, i) {
      var item = /^\s*[-*•]\s+(.*)$/.exec(line);
      if (item) {
        if (!list) { list = document.createElement("ul"); into.appendChild(list); }
        var li = document.createElement("li"); inline(item[1], li); list.appendChild(li);
        return;
      }
      list = null;
      if (i > 0 && into.lastChild && into.lastChild.nodeName !== "UL") { into.appendChild(document.createElement("br")); }
      inline(line, into);
    });
  }

  function retireButtons() {
    // Only the newest message's buttons stay in the tab order, so the message box is not behind every old one.
    log.querySelectorAll(".buttons button, .buttons a").forEach(function (el) { el.setAttribute("tabindex", "-1"); });
  }
  function renderButtons(buttons, into, quick) {
    if (!buttons || !buttons.length) { return; }
    var row = document.createElement("div");
    row.className = "buttons" + (quick ? " quick" : "");
    buttons.forEach(function (b) {
      var url = safeUrl(b.url);
      var el;
      if (url) {
        el = document.createElement("a");
        el.href = url; el.target = "_blank"; el.rel = "noopener noreferrer";
      } else {
        el = document.createElement("button");
        el.type = "button";
        el.addEventListener("click", function () { sendFrame({ type: "button", payload: b.payload || b.title, text: b.title }); });
      }
      el.textContent = String(b.title || "");
      row.appendChild(el);
    });
    into.appendChild(row);
  }
  function placeholder(card, title) {
    var box = document.createElement("div");
    box.className = "card-img placeholder";
    box.setAttribute("role", "img");
    box.setAttribute("aria-label", t("no_image"));
    // The initial is drawn by CSS (not text): the card reads the same whether or not the picture loaded.
    box.setAttribute("data-initial", String(title || "?").trim().charAt(0).toUpperCase() || "?");
    card.insertBefore(box, card.firstChild);
  }
  function renderCards(cards, into) {
    if (!cards || !cards.length) { return; }
    var strip = document.createElement("div");
    strip.className = "cards";
    cards.forEach(function (c) {
      var card = document.createElement("div");
      card.className = "card";
      card.setAttribute("data-sku", String(c.sku || ""));
      var title = document.createElement("div"); title.className = "card-title"; title.textContent = String(c.title || "");
      card.appendChild(title);
      var img = safeUrl(c.image_url);
      if (img) {
        var pic = document.createElement("img");
        pic.className = "card-img"; pic.alt = ""; pic.loading = "lazy";
        pic.addEventListener("error", function () { pic.remove(); placeholder(card, c.title); });
        pic.src = img;
        card.insertBefore(pic, title);
      } else { placeholder(card, c.title); }
      if (c.subtitle) { var sub = document.createElement("div"); sub.className = "card-subtitle"; sub.textContent = String(c.subtitle); card.appendChild(sub); }
      if (c.price_text) { var price = document.createElement("div"); price.className = "card-price"; price.textContent = String(c.price_text); card.appendChild(price); }
      renderButtons(c.buttons, card, false);
      strip.appendChild(card);
    });
    into.appendChild(strip);
  }
  function timeOf(at) {
    var when = at ? new Date(at) : new Date();
    if (isNaN(when.getTime())) { when = new Date(); }
    var el = document.createElement("time");
    el.className = "at";
    el.dateTime = when.toISOString();
    el.textContent = new Intl.DateTimeFormat(locale === "zh" ? "zh-Hans" : locale, { hour: "2-digit", minute: "2-digit" }).format(when);
    return el;
  }
  function line(key, text) {
    if (rendered[key]) { return; }
    var item = document.createElement("li");
    item.className = "msg line"; item.setAttribute("data-key", key);
    item.textContent = text;
    log.appendChild(item);
    rendered[key] = item;
  }
  function initials(name) {
    return String(name || "?").split(/\s+/).filter(Boolean).slice(0, 2).map(function (w) { return w.charAt(0).toUpperCase(); }).join("") || "?";
  }
  function noticeOf(message) {
    // A person joined / handed back: a system message the server sends at that moment (bot/handoff/notices.py).
    var custom = message && message.custom;
    return custom && (custom.notice === "joined" || custom.notice === "returned") ? custom : null;
  }
  function noticeLine(key, notice) {
    var name = String(notice.agent_name || t("agent"));
    line(key, notice.notice === "joined" ? t("agent_joined", { name: name }) : t("handed_back", { name: name }));
    lastTheirs = notice.notice === "joined" ? { author: "agent", name: name } : { author: "bot", name: t("assistant") };
  }

  function render(key, mine, message, extraClass) {
    if (rendered[key]) { return rendered[key]; }
    var notice = mine ? null : noticeOf(message);
    if (notice) { noticeLine(key, notice); return rendered[key]; }
    var author = mine ? "shopper" : String(message.author || "bot");
    if (!mine && author !== "system") { lastTheirs = { author: author, name: author === "agent" ? message.agent_name || t("agent") : t("assistant") }; }
    if (!mine) { retireButtons(); }
    var item = document.createElement("li");
    item.className = "msg " + (mine ? "mine" : "theirs") + (author === "system" ? " system" : "") + (extraClass ? " " + extraClass : "");
    item.setAttribute("data-key", key);
    if (!mine) { item.setAttribute("data-author", author); }
    var head = document.createElement("div");
    head.className = "who";
    if (!mine && author !== "system") {
      var avatar = document.createElement("span");
      avatar.className = "avatar " + author;
      avatar.setAttribute("aria-hidden", "true");
      avatar.textContent = author === "agent" ? initials(message.agent_name || t("agent")) : "ST";
      head.appendChild(avatar);
    }
    var name = document.createElement("span");
    name.className = "name";
    name.textContent = mine ? t("you") : author === "agent" ? (message.agent_name || t("agent")) : t("assistant");
    head.appendChild(name);
    head.appendChild(timeOf(message.at));
    item.appendChild(head);
    var bubble = document.createElement("div");
    bubble.className = "bubble";
    if (mine) { bubble.textContent = String(message.text || ""); } else { markdown(message.text, bubble); }
    item.appendChild(bubble);
    if (!mine) { renderCards(message.cards, item); renderButtons(message.buttons, item, true); }
    log.appendChild(item);
    rendered[key] = item;
    log.scrollTop = log.scrollHeight;
    return item;
  }

  function transmit(frame) {
    if (socket && socket.readyState === WebSocket.OPEN) { socket.send(JSON.stringify(frame)); return true; }
    return false;
  }
  function sendFrame(frame) {
    frame.id = randomId();
    frame.locale = locale;
    render("in:" + frame.id, true, { text: frame.text }, "pending");
    pending.push(frame);
    if (pending.length > MAX_PENDING) { pending.shift(); }
    save(PENDING_KEY, pending);
    transmit(frame);
  }
  function acknowledge(id, failed) {
    pending = pending.filter(function (f) { return f.id !== id; });
    save(PENDING_KEY, pending);
    var item = rendered["in:" + id];
    if (item) {
      item.classList.remove("pending");
      if (failed) {
        item.classList.add("failed");
        var note = document.createElement("span"); note.className = "failed-note"; note.textContent = t("failed");
        item.appendChild(note);
      }
    }
  }
  var typingUntil = null;
  function setTyping(on, name, ttl) {
    window.clearTimeout(typingTimer); window.clearTimeout(typingUntil);
    if (!on) { typingEl.textContent = ""; typingEl.classList.remove("on"); return; }
    var text = t("typing", { name: name || (lastTheirs && lastTheirs.author === "agent" ? lastTheirs.name : t("assistant")) });
    // A stop that never comes (the agent closed their console): the line goes by itself.
    if (ttl) { typingUntil = window.setTimeout(function () { setTyping(false); }, ttl * 1000); }
    // Refreshed while the agent keeps typing: the same words are not written again, so nothing is re-announced.
    if (typingEl.classList.contains("on") && typingEl.textContent === text) { return; }
    // A short wait first: a quick answer needs no indicator flashing before it.
    typingTimer = window.setTimeout(function () {
      typingEl.textContent = text;
      typingEl.classList.add("on");
    }, 250);
  }
  function countUnread() {
    if (isOpen) { return; }
    unread += 1;
    tell({ type: "unread", count: unread });
  }
  function keepSession(token, customerId) {
    sessionToken = token;
    customer = customerId || null;
    save(SESSION_KEY, sessionToken);
    save(CUSTOMER_KEY, customer);
  }
  function forgetSession() {
    sessionToken = null; customer = null; pending = [];
    drop(SESSION_KEY); drop(CUSTOMER_KEY); save(PENDING_KEY, pending);
  }

  function onFrame(frame) {
    if (frame.type === "session" && typeof frame.token === "string") {
      // A new session (first visit, a kept token refused, a verified customer's own): keep it for every reconnect.
      keepSession(frame.token, frame.customer_id);
    } else if (frame.type === "history") {
      // The stored history is the truth: redraw from it, then what is still unacknowledged.
      log.textContent = "";
      rendered = {}; lastTheirs = null;
      (frame.messages || []).forEach(function (m) { render(m.key, !!m.mine, m); });
      pending.forEach(function (f) { render("in:" + f.id, true, { text: f.text }, "pending"); transmit(f); });
    } else if (frame.type === "ack") {
      acknowledge(frame.id, false);
      // A duplicate was stored before; the history frame that follows shows it once.
      if (frame.duplicate && rendered["in:" + frame.id]) { rendered["in:" + frame.id].remove(); delete rendered["in:" + frame.id]; }
    } else if (frame.type === "typing") {
      setTyping(!!frame.on, frame.author === "agent" ? String(frame.name || t("agent")) : null,
                typeof frame.ttl === "number" ? frame.ttl : 0);
    } else if (frame.type === "reply" && frame.message) {
      setTyping(false);
      var key = "out:" + frame.message.message_id;
      if (!rendered[key]) {
        render(key, false, frame.message);
        countUnread();
        chime();
        tell({ type: "message", message: { text: frame.message.text, author: frame.message.author || "bot",
                                           agent_name: frame.message.agent_name || null } });
      }
    } else if (frame.type === "identity") {
      identityEl && (identityEl.hidden = frame.status !== "verified");
      if (frame.status === "refused") {
        if (window.console) { window.console.warn("ShopTalk web chat: " + frame.detail); }
        identity = null;  // anonymous from now on: reconnects do not ask again
      }
      tell({ type: "identity", status: frame.status, code: frame.code || null });
    } else if (frame.type === "error") {
      if (frame.id) { acknowledge(frame.id, true); }
    }
  }

  function connect() {
    setStatus(socket ? "reconnecting" : "connecting");
    var scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
    // The token and the signed identity go in the first frame, never in the URL (which access logs keep).
    var query = "?auth=frame" + (shop ? "&shop=" + encodeURIComponent(shop) : "");
    var came = new URLSearchParams(window.location.search);  // the storefront page and referrer the loader passed
    if (came.get("page")) { query += "&page=" + encodeURIComponent(came.get("page")) + "&ref=" + encodeURIComponent(came.get("ref") || ""); }
    var ws = new WebSocket(scheme + "//" + window.location.host + "/ws/chat" + query);
    socket = ws;
    ws.onopen = function () {
      var auth = { type: "auth", session: sessionToken || "", shop: shop };
      if (identity) {
        // The customer is verified before the server sends anything: a refused one gets a fresh anonymous chat.
        auth.customer_id = identity.customerId; auth.signature = identity.signature;
        if (identity.email) { auth.email = identity.email; }
      }
      ws.send(JSON.stringify(auth));
      retryDelay = 500; setStatus("online");
    };
    ws.onmessage = function (event) {
      var frame;
      try { frame = JSON.parse(event.data); } catch (e) { return; }
      onFrame(frame);
    };
    ws.onclose = function (event) {
      if (socket !== ws) { return; }
      if (event.code === 1008) {  // refused by policy (an origin not allowed): retrying cannot help; say why
        setStatus("failed");
        if (window.console) { window.console.error("ShopTalk web chat: " + (event.reason || "refused")); }
        return;
      }
      setStatus("reconnecting"); setTyping(false);
      window.setTimeout(connect, retryDelay);
      retryDelay = Math.min(retryDelay * 2, 5000);
    };
  }
  function identify(given) {
    var next = given && given.customerId ? { customerId: String(given.customerId), signature: String(given.signature || ""),
                                            email: given.email ? String(given.email) : null } : null;
    // A kept conversation of another (or no longer) signed-in customer is never shown: start afresh.
    if (customer && (!next || next.customerId !== customer)) { forgetSession(); reconnect(); }
    identity = next;
    if (identity && customer !== identity.customerId && socket && socket.readyState === WebSocket.OPEN) {
      transmit({ type: "identify", shop: shop, customer_id: identity.customerId, email: identity.email,
                 signature: identity.signature });
    }
  }
  function reconnect() { if (socket) { var old = socket; socket = null; old.onclose = null; old.close(); connect(); } }

  function showPrechat() {
    // First visit: the shopper picks the language once; it is remembered.
    prechat.hidden = false;
    prechat.textContent = "";
    var question = document.createElement("p"); question.id = "prechat-q"; question.textContent = t("choose_language");
    prechat.appendChild(question);
    var row = document.createElement("div"); row.className = "buttons"; row.setAttribute("role", "group");
    row.setAttribute("aria-labelledby", "prechat-q");
    Object.keys(LANGUAGES).forEach(function (code) {
      var b = document.createElement("button"); b.type = "button"; b.lang = code; b.textContent = LANGUAGES[code];
      b.setAttribute("data-locale", code);
      b.addEventListener("click", function () { setLocale(code, true); prechat.hidden = true; input.focus(); });
      row.appendChild(b);
    });
    prechat.appendChild(row);
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var text = input.value.trim();
    if (!text) { return; }
    input.value = "";
    prechat.hidden = true;
    sendFrame({ type: "message", text: text });
  });
  localeSelect.addEventListener("change", function () { setLocale(localeSelect.value, true); prechat.hidden = true; });
  if (closeButton) { closeButton.addEventListener("click", function () { tell({ type: "close" }); }); }
  document.addEventListener("keydown", function (event) { if (event.key === "Escape" && framed) { tell({ type: "close" }); } });

  var started = false;
  function start() { if (!started) { started = true; connect(); } }
  window.addEventListener("message", function (event) {
    if (!framed || event.source !== window.parent || !event.data || event.data.shoptalk !== 1) { return; }
    var m = event.data;
    if (m.type === "init") {
      if (started) { return; }
      parentOrigin = event.origin;
      kept = m.stored && typeof m.stored === "object" ? m.stored : {};
      restore();
      if (storedLocale) { applyLocale(); } else { if (m.locale && STRINGS[m.locale]) { setLocale(m.locale, false); } showPrechat(); }
      identify(m.identity || null);
      start();
    } else if (m.type === "identify") { identify(m.identity || null); }
    else if (m.type === "locale") { setLocale(m.locale, true); prechat.hidden = true; }
    else if (m.type === "open") {
      isOpen = true; unread = 0; tell({ type: "unread", count: 0 });
      window.setTimeout(function () { (prechat.hidden ? input : prechat.querySelector("button")).focus(); }, 0);
    } else if (m.type === "close") { isOpen = false; }
  });

  window.shoptalkChat = { pendingCount: function () { return pending.length; },
                          tonesPlayed: function () { return tones; },
                          reconnect: function () { if (socket) { socket.close(); } },
                          identify: identify };
  // The session's id (the part before the signature), once the server has given one.
  Object.defineProperty(window.shoptalkChat, "sessionId", {
    get: function () { return sessionToken ? sessionToken.split(".")[0] : null; } });
  if (!framed) { restore(); }
  applyLocale();
  if (framed && window.parent !== window) {
    tell({ type: "ready" });
    window.setTimeout(function () { if (!started) { showPrechat(); start(); } }, 3000);  // no init: anonymous
  } else { start(); }
})();
