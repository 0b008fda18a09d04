/* legacy-assistant browser chat client. Plain JS, no dependencies. */
(function () {
  "use strict";

  var SENDER_KEY = "legacy-assistant-sender";
  var TOKEN_KEY = "legacy-assistant-token";
  var DETAILS_KEY = "legacy-assistant-details";
  var ENDPOINT = "/api/v1/chat";

  var form = document.getElementById("chat-form");
  var input = document.getElementById("message");
  var sendBtn = document.getElementById("send");
  var log = document.getElementById("log");
  var detailsBox = document.getElementById("show-details");
  var newBtn = document.getElementById("new-conversation");
  var busy = false;
  var seq = 0; // identifies the latest request, so stale completions are ignored

  // localStorage can throw (disabled storage, private mode): fail soft.
  function store(key, value) {
    try {
      if (value === null) localStorage.removeItem(key);
      else localStorage.setItem(key, value);
    } catch (e) { /* ignore */ }
  }
  function load(key) {
    try { return localStorage.getItem(key); } catch (e) { return null; }
  }

  function randomId() {
    var c = window.crypto;
    if (c && typeof c.randomUUID === "function") return c.randomUUID();
    if (c && typeof c.getRandomValues === "function") {
      var bytes = c.getRandomValues(new Uint8Array(16));
      return Array.prototype.map.call(bytes, function (b) {
        return ("0" + b.toString(16)).slice(-2);
      }).join("");
    }
    return Date.now().toString(36) + Math.random().toString(36).slice(2);
  }

  function newSender() {
    var id = "web-" + randomId();
    store(SENDER_KEY, id);
    return id;
  }

  var sender = load(SENDER_KEY) || newSender();

  function scrollToEnd() {
    log.scrollTop = log.scrollHeight;
  }

  function addMessage(kind, text) {
    var el = document.createElement("div");
    el.className = "msg " + kind;
    // Speaker labels ("You", "Assistant", "Error") come from CSS ::before,
    // so an element's textContent is exactly the message text.
    var body = document.createElement("p");
    body.className = "text";
    body.textContent = text;
    el.appendChild(body);
    log.appendChild(el);
    scrollToEnd();
    return el;
  }

  function formatConfidence(value) {
    var n = Number(value);
    return isFinite(n) && value !== null && value !== "" ? n.toFixed(2) : "n/a";
  }

  function addDetails(botEl) {
    if (botEl.querySelector(".details")) return;
    var d = document.createElement("p");
    d.className = "details";
    d.textContent = "intent: " + (botEl.dataset.intent || "unknown") +
      " \u00b7 confidence: " + formatConfidence(botEl.dataset.confidence);
    botEl.appendChild(d);
  }

  // Detail lines exist in the DOM only while the checkbox is on.
  function syncDetails() {
    var bots = log.querySelectorAll(".msg.bot");
    for (var i = 0; i < bots.length; i++) {
      var existing = bots[i].querySelector(".details");
      if (detailsBox.checked) addDetails(bots[i]);
      else if (existing) existing.remove();
    }
  }

  function setBusy(on) {
    busy = on;
    input.disabled = on;
    sendBtn.disabled = on;
    sendBtn.textContent = on ? "Sending\u2026" : "Send";
    log.setAttribute("aria-busy", on ? "true" : "false");
  }

  function errorText(status, data) {
    if (data && data.error && typeof data.error.message === "string" && data.error.message) {
      return data.error.message;
    }
    if (status) return "The server returned an unexpected response (HTTP " + status + ").";
    return "The server returned an unexpected response.";
  }

  function send(text) {
    var headers = { "Content-Type": "application/json", "Accept": "application/json" };
    var token = load(TOKEN_KEY);
    if (token) headers["Authorization"] = "Bearer " + token;
    var requestSender = sender;

    return fetch(ENDPOINT, {
      method: "POST",
      headers: headers,
      body: JSON.stringify({ sender: requestSender, message: text })
    }).then(function (res) {
      return res.text().then(function (raw) {
        var data = null;
        try { data = raw ? JSON.parse(raw) : null; } catch (e) { data = null; }
        return { res: res, data: data };
      });
    }, function () {
      throw new Error("Network error: could not reach the server. Please try again.");
    }).then(function (r) {
      if (requestSender !== sender) return; // conversation was reset meanwhile
      var data = r.data;
      if (!r.res.ok || !data || typeof data.reply !== "string") {
        addMessage("error", errorText(r.res.status, data));
        return;
      }
      var bot = addMessage("bot", data.reply);
      bot.dataset.intent = data.intent == null ? "" : String(data.intent);
      bot.dataset.confidence = data.confidence == null ? "" : String(data.confidence);
      if (detailsBox.checked) addDetails(bot);
      scrollToEnd();
    }).catch(function (err) {
      if (requestSender !== sender) return;
      addMessage("error", (err && err.message) || "Something went wrong.");
    });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    if (busy) return;
    var text = input.value.trim();
    if (!text) {
      input.value = "";
      input.focus();
      return;
    }
    addMessage("user", text);
    input.value = "";
    setBusy(true);
    var mine = ++seq;
    send(text).then(function () {
      if (mine !== seq) return;
      setBusy(false);
      input.focus();
    });
  });

  detailsBox.checked = load(DETAILS_KEY) === "true";
  detailsBox.addEventListener("change", function () {
    store(DETAILS_KEY, detailsBox.checked ? "true" : "false");
    syncDetails();
  });

  newBtn.addEventListener("click", function () {
    sender = newSender();
    seq++;
    log.textContent = "";
    setBusy(false);
    input.value = "";
    input.focus();
  });

  input.focus();
})();
