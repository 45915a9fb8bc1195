// ShopTalk web chat widget. All text from the server or the shopper goes through textContent, never innerHTML.
(function () {
  "use strict";
  var SESSION_KEY = "shoptalk.webchat.session-token";  // minted and signed by the server
  var OLD_SESSION_KEY = "shoptalk.webchat.session";  // the id earlier widgets chose themselves: no longer accepted
  var PENDING_KEY = "shoptalk.webchat.pending";
  var LOCALE_KEY = "shoptalk.webchat.locale";
  var UI = {
    en: { send: "Send", placeholder: "Ask about products, your cart or an order…", language: "Language",
          connecting: "Connecting…", online: "Online", reconnecting: "Reconnecting…", failed: "Not sent" },
    zh: { send: "发送", placeholder: "咨询商品、购物车或订单…", language: "语言",
          connecting: "连接中…", online: "在线", reconnecting: "重新连接中…", failed: "发送失败" }
  };

  function randomId() {
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }
  function load(key, fallback) {
    try { var v = window.localStorage.getItem(key); return v === null ? fallback : JSON.parse(v); }
    catch (e) { return fallback; }
  }
  function save(key, value) { try { window.localStorage.setItem(key, JSON.stringify(value)); } catch (e) { /* private mode */ } }

  var sessionToken = load(SESSION_KEY, null);  // "<id>.<signature>"; none yet: the server sends one
  if (typeof sessionToken !== "string" || !/^[0-9a-f]{32}\.[A-Za-z0-9_-]{43}$/.test(sessionToken)) { sessionToken = null; }
  try { window.localStorage.removeItem(OLD_SESSION_KEY); } catch (e) { /* private mode */ }
  var pending = load(PENDING_KEY, []);  // frames sent but not yet acknowledged, in order
  if (!Array.isArray(pending)) { pending = []; }
  var locale = load(LOCALE_KEY, (navigator.language || "en").toLowerCase().indexOf("zh") === 0 ? "zh" : "en");
  var rendered = {};  // message key -> its <li>, so nothing shows twice
  var socket = null;
  var retryDelay = 500;

  var log = document.getElementById("log");
  var statusEl = document.getElementById("status");
  var form = document.getElementById("composer");
  var input = document.getElementById("text");
  var localeSelect = document.getElementById("locale");

  function t(key) { return (UI[locale] || UI.en)[key]; }
  function applyLocale() {
    document.documentElement.lang = locale === "zh" ? "zh-Hans" : "en";
    localeSelect.value = locale;
    document.querySelectorAll("[data-i18n]").forEach(function (el) { el.textContent = t(el.getAttribute("data-i18n")); });
    input.placeholder = t("placeholder");
    setStatus(statusEl.getAttribute("data-state") || "connecting");
  }
  function setStatus(state) {
    statusEl.setAttribute("data-state", state);
    statusEl.textContent = t(state) || "";
  }
  function safeUrl(url) {
    return typeof url === "string" && /^https?:\/\//i.test(url) ? url : null;
  }

  function renderButtons(buttons, into) {
    if (!buttons || !buttons.length) { return; }
    var row = document.createElement("div");
    row.className = "buttons";
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

  function renderCards(cards, into) {
    if (!cards || !cards.length) { return; }
    var strip = document.createElement("div");
    strip.className = "cards";
    cards.forEach(function (c) {
      var card = document.createElement("div");
      card.className = "card";
      card.setAttribute("data-sku", String(c.sku || ""));
      var img = safeUrl(c.image_url);
      if (img) { var pic = document.createElement("img"); pic.src = img; pic.alt = ""; pic.loading = "lazy"; card.appendChild(pic); }
      var title = document.createElement("div"); title.className = "card-title"; title.textContent = String(c.title || "");
      card.appendChild(title);
      if (c.subtitle) { var sub = document.createElement("div"); sub.className = "card-subtitle"; sub.textContent = String(c.subtitle); card.appendChild(sub); }
      if (c.price_text) { var price = document.createElement("div"); price.className = "card-price"; price.textContent = String(c.price_text); card.appendChild(price); }
      renderButtons(c.buttons, card);
      strip.appendChild(card);
    });
    into.appendChild(strip);
  }

  function render(key, mine, message, extraClass) {
    if (rendered[key]) { return rendered[key]; }
    var item = document.createElement("li");
    item.className = "msg " + (mine ? "mine" : "theirs") + (extraClass ? " " + extraClass : "");
    item.setAttribute("data-key", key);
    if (!mine) { item.setAttribute("data-author", String(message.author || "bot")); }
    var bubble = document.createElement("div");
    bubble.className = "bubble";
    bubble.textContent = String(message.text || "");
    item.appendChild(bubble);
    if (!mine) { renderButtons(message.buttons, item); renderCards(message.cards, item); }
    log.appendChild(item);
    rendered[key] = item;
    log.scrollTop = log.scrollHeight;
    return item;
  }

  function transmit(frame) {
    if (socket && socket.readyState === WebSocket.OPEN) { socket.send(JSON.stringify(frame)); }
  }

  function sendFrame(frame) {
    frame.id = randomId();
    frame.locale = locale;
    render("in:" + frame.id, true, { text: frame.text }, "pending");
    pending.push(frame);
    save(PENDING_KEY, pending);
    transmit(frame);
  }

  function acknowledge(id, failed) {
    pending = pending.filter(function (f) { return f.id !== id; });
    save(PENDING_KEY, pending);
    var item = rendered["in:" + id];
    if (item) {
      item.classList.remove("pending");
      if (failed) { item.classList.add("failed"); item.setAttribute("title", t("failed")); }
    }
  }

  function onFrame(frame) {
    if (frame.type === "session" && typeof frame.token === "string") {
      // A new session (first visit, or the kept token was refused): keep it for every reconnect.
      sessionToken = frame.token;
      save(SESSION_KEY, sessionToken);
    } else if (frame.type === "history") {
      // The stored history is the truth: redraw from it, then what is still unacknowledged.
      log.textContent = "";
      rendered = {};
      (frame.messages || []).forEach(function (m) { render(m.key, !!m.mine, m); });
      // Everything the server has not acknowledged goes again; it dedupes by our id.
      pending.forEach(function (f) { render("in:" + f.id, true, { text: f.text }, "pending"); transmit(f); });
    } else if (frame.type === "ack") {
      acknowledge(frame.id, false);
      // A duplicate was stored before; the history frame that follows shows it once.
      if (frame.duplicate && rendered["in:" + frame.id]) { rendered["in:" + frame.id].remove(); delete rendered["in:" + frame.id]; }
    } else if (frame.type === "reply" && frame.message) {
      render("out:" + frame.message.message_id, false, frame.message);
    } else if (frame.type === "error") {
      if (frame.id) { acknowledge(frame.id, true); }
    }
  }

  function connect() {
    setStatus(socket ? "reconnecting" : "connecting");
    var scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
    var query = sessionToken ? "?session=" + encodeURIComponent(sessionToken) : "";
    var ws = new WebSocket(scheme + "//" + window.location.host + "/ws/chat" + query);
    socket = ws;
    ws.onopen = function () { retryDelay = 500; setStatus("online"); };
    ws.onmessage = function (event) {
      var frame;
      try { frame = JSON.parse(event.data); } catch (e) { return; }
      onFrame(frame);
    };
    ws.onclose = function () {
      if (socket !== ws) { return; }
      setStatus("reconnecting");
      window.setTimeout(connect, retryDelay);
      retryDelay = Math.min(retryDelay * 2, 5000);
    };
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var text = input.value.trim();
    if (!text) { return; }
    input.value = "";
    sendFrame({ type: "message", text: text });
  });
  localeSelect.addEventListener("change", function () { locale = localeSelect.value; save(LOCALE_KEY, locale); applyLocale(); });

  window.shoptalkChat = { pendingCount: function () { return pending.length; },
                          reconnect: function () { if (socket) { socket.close(); } } };
  // The session's id (the part before the signature), once the server has given one.
  Object.defineProperty(window.shoptalkChat, "sessionId", {
    get: function () { return sessionToken ? sessionToken.split(".")[0] : null; } });
  applyLocale();
  connect();
})();
