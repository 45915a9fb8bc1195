/* ShopTalk web chat loader: <script src="https://<shop host>/widget.js" data-shop="..." async></script>
   Adds a launcher bubble (with an unread badge) that opens the messenger in an iframe served by ShopTalk.
   API: ShopTalk.open(), .close(), .identify({customerId, email?, signature}) (null: logged out), .on('message', fn),
   .setLocale('zh'); data-sound="on" chimes on a new message while closed. Calls made before the chat is ready are kept and run once it is. */
(function () {
  "use strict";
  if (window.ShopTalk && window.ShopTalk.__loaded) { return; }
  var script = document.currentScript || document.querySelector("script[data-shop][src*='widget.js']");
  if (!script) { return; }
  var base = new URL(script.src, window.location.href).origin;
  var shop = script.getAttribute("data-shop") || "";
  var settings = window.ShopTalkSettings || {};
  var locale = settings.locale || script.getAttribute("data-locale") || (document.documentElement.lang || navigator.language || "en").slice(0, 2);
  var identity = settings.customerId ? { customerId: settings.customerId, email: settings.email, signature: settings.signature } :
    (script.getAttribute("data-customer-id") ? { customerId: script.getAttribute("data-customer-id"),
                                                  signature: script.getAttribute("data-customer-signature") } : null);
  var handlers = { message: [], unread: [], identity: [], open: [], close: [] };
  var queue = [];
  var frame = null, launcher = null, badge = null, panel = null, ready = false, opened = false;
  var strings = {};
  var started = performance.now();

  function post(message) {
    if (ready && frame) { frame.contentWindow.postMessage(Object.assign({ shoptalk: 1 }, message), base); }
    else { queue.push(message); }
  }
  // The frame's session token, language and unsent messages, kept first-party (third-party storage is often blocked).
  var STORE = "shoptalk." + shop + ".";
  function keep(key, value) {
    try { if (value === null || value === undefined) { localStorage.removeItem(STORE + key); } else { localStorage.setItem(STORE + key, JSON.stringify(value)); } }
    catch (e) { /* private mode: the chat lasts this page */ }
  }
  function stored() {
    var out = {};
    try {
      for (var i = 0; i < localStorage.length; i++) {
        var key = localStorage.key(i);
        if (key && key.indexOf(STORE) === 0) { out[key.slice(STORE.length)] = JSON.parse(localStorage.getItem(key)); }
      }
    } catch (e) { /* private mode */ }
    return out;
  }
  // Optional sound for a new message while the chat is closed: data-sound="on" or ShopTalkSettings.sound.
  var sound = settings.sound === true || script.getAttribute("data-sound") === "on";
  function chime() {
    if (!sound || !window.AudioContext) { return; }
    try {
      var audio = new window.AudioContext(), tone = audio.createOscillator(), level = audio.createGain();
      tone.frequency.value = 880; level.gain.value = 0.05;
      tone.connect(level); level.connect(audio.destination);
      tone.start(); tone.stop(audio.currentTime + 0.12);
      tone.onended = function () { audio.close(); };
    } catch (e) { /* no audio before the shopper interacted with the page: silent */ }
  }
  function emit(name, value) { (handlers[name] || []).forEach(function (fn) { try { fn(value); } catch (e) { console.error(e); } }); }
  function label(count) {
    var text = strings.open || "Open chat";
    return count ? text + " (" + (strings.unread || "{count} unread").split("{count}").join(count) + ")" : text;
  }
  function setUnread(count) {
    badge.textContent = count > 99 ? "99+" : String(count);
    badge.hidden = !count;
    launcher.setAttribute("aria-label", opened ? (strings.close || "Close chat") : label(count));
    emit("unread", count);
  }

  var api = {
    __loaded: true,
    open: function () {
      if (!panel) { queue.push({ type: "__open" }); return; }
      opened = true; panel.hidden = false; setUnread(0);
      launcher.setAttribute("aria-expanded", "true");
      launcher.setAttribute("aria-label", strings.close || "Close chat");
      post({ type: "open" }); frame.focus(); emit("open");
    },
    close: function () {
      if (!panel) { return; }
      var hadFocus = opened;
      opened = false; panel.hidden = true;
      launcher.setAttribute("aria-expanded", "false");
      post({ type: "close" }); setUnread(0);
      if (hadFocus) { launcher.focus(); }
      emit("close");
    },
    identify: function (given) { identity = given && given.customerId ? given : null; post({ type: "identify", identity: identity }); },
    setLocale: function (code) { locale = code; post({ type: "locale", locale: code }); },
    on: function (name, fn) { if (handlers[name] && typeof fn === "function") { handlers[name].push(fn); } return api; }
  };
  window.ShopTalk = api;

  var CSS = ":host{all:initial}" +
    ".launcher{position:fixed;right:20px;bottom:20px;width:60px;height:60px;border-radius:50%;border:0;" +
    "background:#1d4ed8;color:#fff;cursor:pointer;box-shadow:0 4px 14px rgba(0,0,0,.25);z-index:2147483646;" +
    "display:flex;align-items:center;justify-content:center}" +
    ".launcher:focus-visible{outline:3px solid #1d4ed8;outline-offset:3px}" +
    ".badge{position:absolute;top:-4px;right:-4px;min-width:22px;height:22px;padding:0 5px;box-sizing:border-box;" +
    "border-radius:11px;background:#b91c1c;color:#fff;font:700 12px/22px system-ui,sans-serif;text-align:center}" +
    ".badge[hidden]{display:none}" +
    ".panel{position:fixed;right:20px;bottom:92px;width:380px;height:min(640px,calc(100vh - 112px));" +
    "z-index:2147483647;border-radius:12px;overflow:hidden;box-shadow:0 8px 30px rgba(0,0,0,.3);background:#fff}" +
    ".panel[hidden]{display:none}" +
    ".panel iframe{border:0;width:100%;height:100%;display:block}" +
    "@media (max-width:480px){.panel{right:0;bottom:0;width:100vw;height:100%;border-radius:0}" +
    ".panel:not([hidden])~.launcher{display:none}}";
  var ICON = "http://www.w3.org/2000/svg";

  function build(config) {
    strings = config.strings || {};
    var host = document.createElement("div");
    host.id = "shoptalk-widget";
    var root = host.attachShadow ? host.attachShadow({ mode: "open" }) : host;
    var style = document.createElement("style"); style.textContent = CSS; root.appendChild(style);
    panel = document.createElement("div"); panel.className = "panel"; panel.hidden = true;
    frame = document.createElement("iframe");
    frame.title = strings.title || "Chat";
    // Where the shopper came from (this page and its referrer), for the agent console's shopper panel.
    frame.src = config.frame_url + "&page=" + encodeURIComponent(window.location.href) + "&ref=" + encodeURIComponent(document.referrer);
    frame.setAttribute("allow", "clipboard-write");
    panel.appendChild(frame);
    launcher = document.createElement("button");
    launcher.type = "button"; launcher.className = "launcher";
    launcher.setAttribute("aria-expanded", "false");
    launcher.setAttribute("aria-haspopup", "dialog");
    var svg = document.createElementNS(ICON, "svg");
    svg.setAttribute("viewBox", "0 0 24 24"); svg.setAttribute("width", "28"); svg.setAttribute("height", "28");
    svg.setAttribute("aria-hidden", "true"); svg.setAttribute("focusable", "false");
    var path = document.createElementNS(ICON, "path");
    path.setAttribute("fill", "currentColor");
    path.setAttribute("d", "M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H8l-4 4V6a2 2 0 0 1 2-2z");
    svg.appendChild(path); launcher.appendChild(svg);
    badge = document.createElement("span"); badge.className = "badge"; badge.hidden = true;
    badge.setAttribute("aria-hidden", "true");
    launcher.appendChild(badge);
    launcher.addEventListener("click", function () { if (opened) { api.close(); } else { api.open(); } });
    root.appendChild(panel); root.appendChild(launcher);
    document.body.appendChild(host);
    setUnread(0);
    window.ShopTalk.launcherVisibleMs = performance.now() - started;
    if (performance.mark) { performance.mark("shoptalk:launcher-visible"); }
    var pendingOpen = queue.some(function (m) { return m.type === "__open"; });
    queue = queue.filter(function (m) { return m.type !== "__open"; });
    if (pendingOpen) { api.open(); }
  }

  window.addEventListener("message", function (event) {
    if (!frame || event.origin !== base || event.source !== frame.contentWindow) { return; }
    var m = event.data || {};
    if (m.shoptalk !== 1) { return; }
    if (m.type === "ready") {
      ready = true;
      frame.contentWindow.postMessage({ shoptalk: 1, type: "init", identity: identity, locale: locale,
                                        stored: stored() }, base);
      var waiting = queue; queue = [];
      waiting.forEach(post);
      if (opened) { post({ type: "open" }); }
    } else if (m.type === "unread") {
      if (!opened) { if ((m.count || 0) > (Number(badge.textContent) || 0)) { chime(); } setUnread(m.count || 0); }
    }
    else if (m.type === "message") { emit("message", m.message); }
    else if (m.type === "store" && typeof m.key === "string") { keep(m.key, m.value); }
    else if (m.type === "close") { api.close(); }
    else if (m.type === "identity") { emit("identity", m); }
    else if (m.type === "locale" && m.strings) {
      strings = m.strings; frame.title = strings.title || frame.title; setUnread(Number(badge.textContent) || 0);
    }
  });

  function start() {
    fetch(base + "/webchat/config?shop=" + encodeURIComponent(shop) + "&locale=" + encodeURIComponent(locale),
          { credentials: "omit", mode: "cors" })
      .then(function (response) {
        return response.json().catch(function () { return {}; }).then(function (body) {
          if (!response.ok) {
            console.error(body.detail || ("ShopTalk web chat refused this page (HTTP " + response.status + ")."));
            return;
          }
          build(body);
        });
      })
      .catch(function () {
        console.error("ShopTalk web chat: could not load the chat for shop '" + shop + "' from " + base +
                      " (the server is unreachable, or it does not allow the origin " + window.location.origin + ").");
      });
  }
  if (document.body) { start(); } else { document.addEventListener("DOMContentLoaded", start); }
})();
