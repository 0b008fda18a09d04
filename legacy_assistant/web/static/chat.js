/* legacy-assistant browser chat client. Plain JS, no dependencies. */
(function () {
  "use strict";

  var SENDER_KEY = "legacy-assistant-sender";
  var TOKEN_KEY = "legacy-assistant-token";
  var DETAILS_KEY = "legacy-assistant-details";
  var EMOTION_KEY = "legacy-assistant-emotion";
  var STRENGTH_KEY = "legacy-assistant-strength";
  // Written after each answered turn, so the other tabs of this conversation show it too.
  var TURN_KEY = "legacy-assistant-turn";
  // This tab's messages whose fate is unknown or that the server turned out not to have (kept
  // in sessionStorage, so a reload shows them): {sender, entries: [{text, base, offered, id}]}.
  var UNSURE_KEY = "legacy-assistant-unsure";
  // Relative to the page, so that the page works where a proxy mounts it (/assistant/ as well as /).
  var ENDPOINT = "api/v1/chat";
  var TRANSCRIPT = "api/v1/conversations/";
  // "web-" and 128 random bits in hex: whoever knows a sender id can read its transcript.
  var SENDER_PATTERN = /^web-[0-9a-f]{32}$/;
  // A request unanswered this long is given up (the form's data-timeout-ms can say otherwise).
  var REQUEST_TIMEOUT_MS = 60000;
  // A reply not come after this long is said to be on its way (the form's data-slow-ms can say
  // otherwise): the Send button's label, which says it too, is read by no screen reader unasked.
  var SLOW_MS = 8000;
  // How long the log stays quiet while detail lines are added to every reply (ms).
  var QUIET_MS = 300;

  var form = document.getElementById("chat-form");
  var input = document.getElementById("message");
  var sendBtn = document.getElementById("send");
  var log = document.getElementById("log");
  var detailsBox = document.getElementById("show-details");
  var newBtn = document.getElementById("new-conversation");
  var emotionBox = document.getElementById("emotion"); // absent when the server has no responder
  var strengthBox = document.getElementById("strength"); // absent unless the responder has guidance
  var strengthShown = document.getElementById("strength-value");
  var limitHint = document.getElementById("message-limit");
  var notice = document.getElementById("message-notice");
  var statusBox = document.getElementById("status");
  var limitText = limitHint ? limitHint.textContent : "";
  var busy = false;
  var refreshWhenIdle = false; // another tab answered a turn of this conversation meanwhile
  // The log may lack turns the server has: its restore failed, or a message went unanswered in
  // time (the server may have answered it since). The next answered turn brings them in.
  var stale = false;
  // The turns (message and reply) this page believes the server has, oldest first: what the
  // last restore read, and the turns answered since. A message whose request failed is looked
  // for among the server's turns after these.
  var known = [];
  // The user's message element of each of those turns, in the same order.
  var shown = [];
  // Messages sent without a word back (given up on, or the connection failed): each with the
  // turns known when it went out (base), and whether it was put back in the box (offered).
  var unsure = [];
  // The message on its way, kept with the unsure ones for this tab until a word comes back: a
  // reload meanwhile drops the request, and the page after it settles the message as those.
  var pending = null;
  // The message last put back in the box after its request failed, with its id: {text, id}.
  var givenBack = null;
  // The latest chat request's end (it never rejects): a conversation is forgotten only after
  // it, or a message still on its way would land in it after the server had forgotten it.
  var lastChat = Promise.resolve();
  var seq = 0; // identifies the latest request, so stale completions are ignored

  // Web storage can throw, reaching it included (disabled storage, private mode): fail soft.
  // `area` is "localStorage" (this browser's) or "sessionStorage" (this tab's, which outlives a
  // reload but not the tab).
  function storeIn(area, key, value) {
    try {
      if (value === null) window[area].removeItem(key);
      else window[area].setItem(key, value);
    } catch (e) { /* ignore */ }
  }
  function loadFrom(area, key) {
    try { return window[area].getItem(key); } catch (e) { return null; }
  }
  function store(key, value) { storeIn("localStorage", key, value); }
  function load(key) { return loadFrom("localStorage", key); }
  function storeForTab(key, value) { storeIn("sessionStorage", key, value); }
  function loadForTab(key) { return loadFrom("sessionStorage", key); }

  // 16 bytes from the browser's cryptographic generator, as 32 hex digits. There is no
  // fallback to the clock or Math.random: such an id could be guessed, and with it the transcript.
  function randomId() {
    var bytes = window.crypto.getRandomValues(new Uint8Array(16));
    return Array.prototype.map.call(bytes, function (b) {
      return ("0" + b.toString(16)).slice(-2);
    }).join("");
  }

  function newSender() {
    var id = "web-" + randomId();
    store(SENDER_KEY, id);
    return id;
  }

  // An id of another shape (older pages made some from the clock) is replaced, not reused.
  function savedSender() {
    var id = load(SENDER_KEY);
    return id && SENDER_PATTERN.test(id) ? id : null;
  }

  var sender = savedSender() || newSender();

  // Where the id could not be kept, a reload starts a new conversation: said beside the box.
  var storageNotice = document.getElementById("storage-notice");
  if (storageNotice && load(SENDER_KEY) !== sender) {
    storageNotice.hidden = false;
    input.setAttribute("aria-describedby", (input.getAttribute("aria-describedby") || "") + " storage-notice");
  }

  // The unsure messages of this conversation, kept for this tab (a reload shows them again).
  function saveUnsure() {
    var entries = pending ? unsure.concat([pending]) : unsure;
    storeForTab(UNSURE_KEY, entries.length ? JSON.stringify({ sender: sender, entries: entries }) : null);
  }
  function loadUnsure() {
    var saved = null;
    try { saved = JSON.parse(loadForTab(UNSURE_KEY)); } catch (e) { saved = null; }
    if (!saved || saved.sender !== sender || !Array.isArray(saved.entries)) {
      storeForTab(UNSURE_KEY, null); // another conversation's (left since), or nothing usable
      return [];
    }
    return saved.entries.filter(function (entry) {
      return entry && typeof entry.text === "string" && Array.isArray(entry.base);
    });
  }
  unsure = loadUnsure();

  // Whether the log shows its end, as the latest scroll left it (a smooth scroll to the end counts
  // from its start). The page is the window's height, so the log's own height follows the window
  // and the message box (a long message typed, the window resized): a log that showed its
  // end goes on showing it, the latest reply in view.
  var showsEnd = true;
  var lastTop = 0; // the log's scrollTop as the latest scroll or change of its size left it
  var lastHeight = 0, lastShown = 0; // its scrollHeight and clientHeight then
  function scrollToEnd() {
    showsEnd = true;
    log.scrollTop = log.scrollHeight;
  }
  function remember() {
    lastTop = log.scrollTop;
    lastHeight = log.scrollHeight;
    lastShown = log.clientHeight;
  }
  // "scrollend" comes once a smooth scroll has arrived; where there is none, every step is heard,
  // those of a smooth scroll to the end too: only a scroll up, away from the end, tells that the
  // log no longer shows it (a step on the way down had the next height change left unfollowed).
  // A scroll up that came with a change of the log's height or of its content's is the layout's
  // (its scrollTop held within its new height, as the window changed between the stacked and
  // the side-by-side layout), not the user's: a log that showed its end goes on showing it.
  log.addEventListener("onscrollend" in window ? "scrollend" : "scroll", function () {
    var top = log.scrollTop;
    var resized = log.scrollHeight !== lastHeight || log.clientHeight !== lastShown;
    if (log.scrollHeight - top - log.clientHeight < 2) showsEnd = true;
    else if (resized) {
      if (showsEnd) scrollToEnd();
    } else if (top < lastTop) showsEnd = false;
    remember();
  });
  if (typeof ResizeObserver === "function") {
    new ResizeObserver(function () {
      if (showsEnd) scrollToEnd();
      remember();
    }).observe(log);
  }

  var SPEAKERS = { user: "You", bot: "Assistant", error: "Error" };
  // Put between the turns the log shows and the first the server holds, where the server no
  // longer holds them (idle past its expiry, a server without a lasting store restarted, or
  // deleted): the replies after it were written without them. The server gives the words (as its
  // playground says them), and how many turns of a conversation it keeps (0: not said).
  var STARTED_OVER = log.getAttribute("data-started-over") ||
    "(The assistant no longer remembers the conversation above. This is a new one.)";
  var KEPT_TURNS = parseInt(log.getAttribute("data-kept-turns"), 10) || 0;

  // A message: its speaker's label, then its text. The label is text of the page (not CSS
  // generated content), so that a copied transcript keeps it; it keeps the page's direction,
  // while the text takes its own from its first strong character (dir="auto"). Put before
  // `before` when given, else at the end of the log.
  function addMessage(kind, text, before) {
    var el = document.createElement("div");
    el.className = "msg " + kind;
    var label = document.createElement("span");
    label.className = "speaker";
    label.textContent = SPEAKERS[kind];
    el.appendChild(label);
    var body = document.createElement("p");
    body.className = "text";
    body.dir = "auto"; // right-to-left text reads from the right, its punctuation on its side
    body.textContent = text;
    el.appendChild(body);
    return place(el, before);
  }

  // While a transcript is put into the log, each message is not scrolled to: a scroll after each
  // had the browser lay the log out again at every message, which made a restore of hundreds of
  // turns take seconds (its time grew with the square of their number). It scrolls once at the end.
  var filling = false;

  // `el` put into the log before `before` when given, else at its end (scrolled to).
  function place(el, before) {
    if (before) {
      log.insertBefore(el, before);
    } else {
      log.appendChild(el);
      if (!filling) scrollToEnd();
    }
    return el;
  }

  // A message of the user's that the server does not have: shown where it was sent, and said so.
  function addUnsent(text, before) {
    return markUnsent(addMessage("user", text, before));
  }
  function markUnsent(el) {
    if (el.classList.contains("unsent")) return el;
    el.classList.add("unsent");
    var note = document.createElement("p");
    note.className = "note";
    note.textContent = "Not sent";
    el.appendChild(note);
    return el;
  }

  function formatConfidence(value) {
    var n = Number(value);
    return isFinite(n) && value !== null && value !== "" ? n.toFixed(2) : "n/a";
  }

  // A reply the generative model wrote, rather than one of the model's prepared answers.
  function addGeneratedBadge(botEl) {
    var badge = document.createElement("span");
    badge.className = "badge";
    badge.setAttribute("role", "note");
    badge.setAttribute("aria-label", "Generated reply");
    badge.title = "Written by the generative model, not a prepared answer";
    badge.textContent = "generated";
    botEl.insertBefore(badge, botEl.querySelector(".text")); // under the speaker's label
  }

  // One assistant message from a chat reply or a stored turn (same field names).
  function addReply(data) {
    var bot = addMessage("bot", data.reply);
    bot.dataset.intent = data.intent == null ? "" : String(data.intent);
    bot.dataset.confidence = data.confidence == null ? "" : String(data.confidence);
    bot.dataset.generated = data.generated === true ? "true" : "false";
    if (data.generated === true) addGeneratedBadge(bot);
    if (detailsBox.checked) addDetails(bot);
    return bot;
  }

  function addDetails(botEl) {
    if (botEl.querySelector(".details")) return;
    var d = document.createElement("p");
    d.className = "details";
    d.textContent = "intent: " + (botEl.dataset.intent || "unknown") +
      " \u00b7 confidence: " + formatConfidence(botEl.dataset.confidence);
    botEl.appendChild(d);
  }

  // The log stops being live while what is no news goes in (detail lines added to every reply,
  // the stored turns shown again), and is live again QUIET_MS later: a screen reader hears of
  // the changes once the page has drawn them, so a log made live again (or no longer busy) by
  // the same script that changed it would have them all read out.
  var quietSyncs = 0; // the latest hush's number: only its timer makes the log live again
  function hush() {
    log.setAttribute("aria-live", "off");
    var mine = ++quietSyncs;
    window.setTimeout(function () {
      if (mine === quietSyncs) log.setAttribute("aria-live", "polite");
    }, QUIET_MS);
  }
  // News (a reply, an error) goes into a live log, however recent the last hush.
  function unhush() {
    quietSyncs++;
    log.setAttribute("aria-live", "polite");
  }

  // Detail lines exist in the DOM only while the checkbox is on. Added to every reply at once,
  // they are no news to announce.
  function syncDetails() {
    var bots = log.querySelectorAll(".msg.bot");
    hush();
    for (var i = 0; i < bots.length; i++) {
      var existing = bots[i].querySelector(".details");
      if (detailsBox.checked) addDetails(bots[i]);
      else if (existing) existing.remove();
    }
  }

  // Focus goes back to the message box only when it has nowhere better to be: the user may
  // have moved on to the log or a setting while a reply was on its way.
  function focusInputIfLost() {
    var active = document.activeElement;
    if (!active || active === document.body || active === sendBtn) input.focus();
  }

  // While a request is out the message box stays usable (focus stays there, the next message
  // can be typed); only sending waits. The log is marked busy only while it is refilled, so a
  // reply added to it is announced as it comes.
  // A log to be read again as the page goes idle is read once what just went into it (a reply:
  // news) has been drawn and heard: read at once, it was marked busy, and refilled, before a
  // screen reader heard of the reply. Meanwhile the page stays busy, loading.
  function setBusy(on, restoring) {
    var refresh = !on && refreshWhenIdle;
    if (refresh) {
      refreshWhenIdle = false;
      on = restoring = true;
    }
    busy = on;
    sendBtn.disabled = on;
    // the style sheet gives Send the width of its widest label (these three): the box beside it
    // keeps its width, and its lines, when the label changes
    sendBtn.textContent = on ? (restoring ? "Loading\u2026" : "Sending\u2026") : "Send";
    if (!refresh) {
      log.setAttribute("aria-busy", on && restoring ? "true" : "false");
      return;
    }
    var mine = seq; // a new conversation meanwhile has nothing to read again
    window.setTimeout(function () {
      if (mine === seq) showStored();
    }, QUIET_MS);
  }

  // `when` (optional) is asked again as the words go in: they are left out once it says no.
  function announce(text, when) {
    if (!statusBox) return;
    statusBox.textContent = "";
    // a change of text is what a screen reader announces, even the same text twice
    window.setTimeout(function () {
      if (!when || when()) statusBox.textContent = text;
    }, 50);
  }

  var UNAVAILABLE = "The server is unavailable or overloaded at the moment: try again shortly";
  var STATUS_MEANINGS = {
    413: "The message was refused as too large on its way to the server: shorten it and try again",
    429: "Too many messages in a short time: wait a moment and try again",
    502: UNAVAILABLE,
    503: UNAVAILABLE,
    504: "The server did not answer in time: reload the page to see whether it got the message " +
      "before sending it again"
  };

  // The server's own message in an error answer ("" where there is none: a proxy's page).
  function serverWords(data) {
    return data && data.error && typeof data.error.message === "string" ? data.error.message : "";
  }

  function errorText(status, data) {
    if (status === 401) {
      return "This server needs an API token, and this browser has none saved or a wrong one " +
        "(the page sends the token saved under the localStorage key " + TOKEN_KEY + ").";
    }
    var words = serverWords(data);
    if (words) return words;
    // a proxy's answer, without the server's words: what the status means, which the user can act on
    if (STATUS_MEANINGS[status]) return STATUS_MEANINGS[status] + " (HTTP " + status + ").";
    if (status) return "The server returned an unexpected response (HTTP " + status + ").";
    return "The server returned an unexpected response.";
  }

  // fetch with the API token (when one is saved), the body parsed as JSON when it is JSON.
  function call(url, options) {
    var headers = { "Accept": "application/json" };
    if (options.body) headers["Content-Type"] = "application/json";
    var token = load(TOKEN_KEY);
    // A header holds Latin-1 only, and no NUL or line break but those fetch drops at its end (a
    // copied token's newline): fetch would refuse such a token, which reads as a network error.
    if (token && /[^\x00-\xff]|[\0\r\n]/.test(token.replace(/[\t\n\r ]+$/, ""))) {
      var refused = new Error("The API token saved in this browser (localStorage key " +
        TOKEN_KEY + ") holds characters a browser cannot send in a header: save the server's token again.");
      refused.unsent = true; // nothing went out
      return Promise.reject(refused);
    }
    if (token) headers["Authorization"] = "Bearer " + token;
    options.headers = headers;
    var limit = parseInt(form.getAttribute("data-timeout-ms"), 10) || REQUEST_TIMEOUT_MS;
    var aborter = typeof AbortController === "function" ? new AbortController() : null;
    var timer = null;
    if (aborter) {
      options.signal = aborter.signal;
      timer = window.setTimeout(function () { aborter.abort(); }, limit);
    }
    function done() { if (timer !== null) window.clearTimeout(timer); }
    function failed() {
      done();
      if (aborter && aborter.signal.aborted) {
        // the server may have the message and answer it yet: sending it again could say it twice
        var late = new Error("The server did not answer in time (" + limit / 1000 + " s)." +
          (options.method !== "POST" ? "" : " It may still " +
          "have the message: reload the page to see whether it was answered before sending it again."));
        late.unanswered = true;
        throw late;
      }
      // the connection failed: before the request reached the server, or after (the server
      // may have stored the turn and lost only the way back)
      var lost = new Error("Network error: could not reach the server.");
      lost.network = true;
      throw lost;
    }
    return fetch(url, options).then(function (res) {
      return res.text().then(function (raw) {
        done();
        var data = null;
        try { data = raw ? JSON.parse(raw) : null; } catch (e) { data = null; }
        return { res: res, data: data };
      }, failed);
    }, failed);
  }

  // A message that did not go through, back in the box: sized, and counted near the cap. Sent
  // again as it is, it keeps its id (see messageIdFor).
  function giveBack(text, id) {
    givenBack = { text: text, id: id };
    input.value = text;
    checkLength();
    fitHeight();
  }

  function turnOf(turn) {
    return { message: turn.message, reply: turn.reply };
  }
  function sameTurn(a, b) {
    return a.message === b.message && a.reply === b.reply;
  }

  // Where the turns that came after `base` begin in the server's transcript `turns`. The server
  // keeps a conversation's latest turns, so the transcript is the end of base, then the turns
  // that came after it (from this tab or another): the longest overlap is taken, the fewest new.
  function newFrom(base, turns) {
    for (var k = Math.min(base.length, turns.length); k > 0; k--) {
      var i = 0;
      while (i < k && sameTurn(turns[i], base[base.length - k + i])) i++;
      if (i === k) return k;
    }
    return 0;
  }

  // The transcript `turns` has just been shown (`firsts`: each turn's message element). An
  // unsure message the server has among its new turns is settled: its turn is shown. One it
  // lacks is shown as not sent, where it was sent (before the turns that came after it), and is
  // put back in the box once, unless something else is being typed. Returns the messages not
  // sent, and those of them found so for the first time.
  function settle(turns, firsts) {
    var missing = [], news = [];
    unsure = unsure.filter(function (entry) {
      var k = newFrom(entry.base, turns);
      for (var j = k; j < turns.length; j++) {
        if (turns[j].message === entry.text) return false; // the server has it
      }
      addUnsent(entry.text, firsts[k] || null);
      missing.push(entry);
      if (!entry.shown) news.push(entry);
      entry.shown = true;
      return true;
    });
    for (var i = missing.length - 1; i >= 0; i--) {
      if (missing[i].offered) continue;
      if (!input.value) {
        giveBack(missing[i].text, missing[i].id);
        missing[i].offered = true;
      }
      break;
    }
    saveUnsure();
    return { missing: missing, news: news };
  }

  // The id a message is sent with: a new one (128 random bits, as a sender id), unless the
  // message is one sent before without a word back, or put back in the box, sent again as it
  // is. Then it keeps its id, and a server that stored the first copy answers with that turn
  // instead of storing it twice.
  function messageIdFor(text) {
    for (var i = unsure.length - 1; i >= 0; i--) {
      if (unsure[i].text === text && typeof unsure[i].id === "string") return unsure[i].id;
    }
    if (givenBack && givenBack.text === text) return givenBack.id;
    return randomId();
  }

  // The latest turns of `known`, as many as the server keeps: all that newFrom() can match
  // against a transcript the server gives. The whole log's turns were copied into each message
  // sent and written to the tab's storage with it: work and storage that grew with the length
  // of the conversation at every message.
  function latestKnown() {
    return known.slice(KEPT_TURNS > 0 ? Math.max(0, known.length - KEPT_TURNS) : 0);
  }

  function send(text, messageId, userEl) {
    var requestSender = sender;
    var base = latestKnown();
    var body = { sender: requestSender, message: text, message_id: messageId };
    if (emotionBox && emotionBox.value) body.emotion = emotionBox.value;
    if (strengthBox) body.condition_strength = parseFloat(strengthBox.value);

    // The connection failed: the server may have stored the turn before it did, so the message
    // is not offered again to be sent blindly. The conversation is read again, and shown as the
    // server has it: with the turn and its reply, or with the message marked not sent.
    function recheck(entry) {
      setBusy(true, true);
      return restore(true).then(function (settled) {
        if (requestSender !== sender || settled === null) return;
        log.setAttribute("aria-busy", "false"); // what follows is news
        if (!settled) {
          addMessage("error", "Network error: could not reach the server, so whether it got the " +
            "message is not known yet. The next reply shows it, or reload the page to see.");
        } else if (settled.missing.indexOf(entry) < 0) {
          store(TURN_KEY, requestSender + " " + randomId()); // answered: the other tabs show it too
          announce("The connection failed after the server got the message: its reply is shown.");
        } else {
          // the log, quiet while the turns went in, says nothing added to it just after them
          var said = "Network error: the message did not reach the server." +
            (entry.offered ? " It is back in the message box, to send again." : "");
          addMessage("error", said);
          announce(said);
        }
      });
    }

    var mine = { text: text, base: base, offered: false, id: messageId };
    pending = mine;
    saveUnsure();
    function onItsWay() { return pending === mine && requestSender === sender; }
    var slow = window.setTimeout(function () {
      if (onItsWay()) {
        announce("Still waiting for the reply. The next message can be typed meanwhile, and sent once it has come.",
          onItsWay);
      }
    }, parseInt(form.getAttribute("data-slow-ms"), 10) || SLOW_MS);
    // a word came back (or none will): the message is no longer on its way
    function answered() {
      window.clearTimeout(slow);
      if (pending !== mine) return;
      pending = null;
      saveUnsure();
    }

    var request = call(ENDPOINT, { method: "POST", body: JSON.stringify(body) }).then(function (r) {
      answered();
      if (requestSender !== sender) return; // conversation was reset meanwhile
      unhush();
      var data = r.data;
      if (!r.res.ok || !data || typeof data.reply !== "string") {
        if (r.res.status === 504 && !serverWords(data)) {
          // a proxy gave up waiting, not the server: it may have the message and answer it yet.
          // Kept as one the page gave up on, for the reload the error advises to settle.
          unsure.push(mine);
          saveUnsure();
          stale = true;
          addMessage("error", errorText(r.res.status, data));
          return;
        }
        // refused: the server does not have it, as the log says beside it
        markUnsent(userEl);
        addMessage("error", errorText(r.res.status, data));
        // to send again or to change, unless more was typed since
        if (!input.value) giveBack(text, messageId);
        return;
      }
      addReply(data);
      known.push({ message: text, reply: data.reply });
      shown.push(userEl);
      scrollToEnd();
      store(TURN_KEY, requestSender + " " + randomId());
      // a copy the server had already (replayed) may be in the log as not sent: the turn is read
      // again, and shown where the server stored it
      if (stale || data.replayed === true) refreshWhenIdle = true;
      // else the server's turns are compared with the log's: a message marked not sent may have
      // been stored since, or the server may no longer hold the turns before this one
      else if (base.length || unsure.length) compare(true);
    }).catch(function (err) {
      answered();
      if (requestSender !== sender) return;
      unhush();
      if (err && err.unsent) {
        // it never left the page: given back to send again
        markUnsent(userEl);
        addMessage("error", err.message);
        if (!input.value) giveBack(text, messageId);
        return;
      }
      // No word back: the server may have the message, and may answer it yet. It is kept, and
      // settled by the next transcript read (the next reply, or a reload).
      var entry = mine;
      unsure.push(entry);
      saveUnsure();
      if (err && err.network) return recheck(entry);
      stale = true;
      addMessage("error", (err && err.message) || "Something went wrong.");
    });
    lastChat = request;
    return request;
  }

  // The stored turns of this conversation, shown again after a reload. They replace what the
  // log shows once they are in: a refresh that fails leaves the log as it was. Resolves to what
  // settle() returns, false when the turns could not be read (said in the log unless quiet, and
  // once), or null when the page left the conversation meanwhile.
  function restore(quiet) {
    var requestSender = sender;
    function failed(why) {
      if (!stale && !quiet) { // said once
        var said = "Could not restore the conversation: " + why;
        hush(); // said by the status line, not a second time by the log
        addMessage("error", said);
        announce(said);
      }
      stale = true;
      return false;
    }
    return call(TRANSCRIPT + encodeURIComponent(requestSender), { method: "GET" }).then(function (r) {
      if (requestSender !== sender) return null;
      var data = r.data;
      if (!r.res.ok || !data || !Array.isArray(data.turns)) return failed(errorText(r.res.status, data));
      stale = false;
      hush(); // the turns shown again are no news: what is, the status line says
      var from = heldFrom(data.turns);
      var lost = from > 0;
      // the server holds the latest of the turns shown, having dropped the oldest to keep its
      // number: the conversation goes on, and those it dropped stay (with no note)
      var overlap = lost ? 0 : newFrom(known, data.turns);
      var keep = lost ? from : overlap > 0 ? known.length - overlap : 0;
      var notes = log.querySelectorAll(".msg.notice");
      var since = notes.length ? notes[notes.length - 1] : null;
      if (keep > 0) {
        // the turns the server no longer holds stay (said to be no longer its where it lost
        // them); the rest is shown anew
        var cut = shown[keep];
        while (cut && cut.parentNode === log && cut.nextSibling) log.removeChild(cut.nextSibling);
        if (cut && cut.parentNode === log) log.removeChild(cut);
        // after the latest such note (before it, a conversation gone before), a message of the
        // user's that is none of those turns (not sent, or of unknown fate) is settled below
        var kept = shown.slice(0, keep);
        Array.prototype.forEach.call(log.querySelectorAll(".msg.user, .msg.error"), function (el) {
          var after = !since || since.compareDocumentPosition(el) & Node.DOCUMENT_POSITION_FOLLOWING;
          if (after && kept.indexOf(el) < 0) el.remove();
        });
        if (lost) addNotice(null);
      } else if (since) {
        // what is above the latest note is no longer the server's (`known` holds none of it): it stays
        while (since.nextSibling) log.removeChild(since.nextSibling);
      } else {
        log.textContent = "";
      }
      known = [];
      var firsts = [];
      filling = true;
      try {
        data.turns.forEach(function (turn) {
          firsts.push(addMessage("user", turn.message));
          addReply(turn);
          known.push(turnOf(turn));
        });
      } finally {
        filling = false;
      }
      shown = firsts.slice();
      var settled = settle(data.turns, firsts);
      settled.lost = lost;
      scrollToEnd();
      return settled;
    }).catch(function (err) {
      if (requestSender !== sender) return null;
      return failed((err && err.message) || "unknown error");
    });
  }

  // The server's turns, read without touching the log, compared with those the log shows: the
  // log is filled anew where they differ, or where the server now holds a message marked not
  // sent. Where the server holds only the latest of them, fewer than it keeps, it no longer holds
  // the others: that is said where they end. Nothing is done if a request went out meanwhile
  // (its answer compares again), or if the turns cannot be read. `answered`: called as a reply
  // has come, the page still busy with it; else nothing is done while it is busy.
  function compare(answered) {
    if (stale || busy && !answered) return; // stale: the log is filled anew anyway
    var requestSender = sender, mine = seq;
    call(TRANSCRIPT + encodeURIComponent(requestSender), { method: "GET" }).then(function (r) {
      if (requestSender !== sender || mine !== seq) return;
      var turns = r.res.ok && r.data && Array.isArray(r.data.turns) ? r.data.turns : null;
      if (!turns) return;
      var stored = unsure.some(function (entry) {
        for (var j = newFrom(entry.base, turns); j < turns.length; j++) {
          if (turns[j].message === entry.text) return true;
        }
        return false;
      });
      if (stored || newFrom(known, turns) !== turns.length) {
        if (busy) refreshWhenIdle = true;
        else showStored();
        return;
      }
      var kept = KEPT_TURNS > 0 ? Math.min(known.length, KEPT_TURNS) : known.length;
      if (turns.length < kept) startedOver(known.length - turns.length);
    }).catch(function () { /* not read: left as it is */ });
  }

  // Where the turns the server still holds begin among those the log shows (`known`): after the
  // latest it does not hold (known.length: it holds none), or 0 where it holds them all. A server
  // that holds as many turns as it keeps may have dropped the oldest for newer ones: 0.
  function heldFrom(turns) {
    if (!known.length || KEPT_TURNS > 0 && turns.length >= KEPT_TURNS) return 0;
    var i = turns.length - 1, j = known.length - 1;
    for (; j >= 0; j--) { // known's turns, latest first, looked for in that order among the server's
      while (i >= 0 && !sameTurn(turns[i], known[j])) i--;
      if (i < 0) break;
      i--;
    }
    return j + 1;
  }

  // The note that the server no longer holds the turns above it: put before `before`, or at the end.
  function addNotice(before) {
    var el = document.createElement("div");
    el.className = "msg notice";
    el.setAttribute("role", "note");
    var body = document.createElement("p");
    body.className = "text";
    body.textContent = STARTED_OVER;
    el.appendChild(body);
    place(el, before);
  }

  // The server holds the turns the log shows from `from` on only.
  function startedOver(from) {
    addNotice(shown[from] || null);
    known = known.slice(from);
    shown = shown.slice(from);
    // a message sent before it, found missing, is looked for among the turns after it
    unsure.forEach(function (entry) { entry.base = latestKnown(); });
    saveUnsure();
  }

  function codePoints(text) {
    return Array.from(text).length;
  }

  // What a reader sees as one character (a flag, an emoji with its skin tone, a letter with its
  // accents) is cut whole or not at all; without Intl.Segmenter, code points.
  var segmenter = window.Intl && typeof Intl.Segmenter === "function" ?
    new Intl.Segmenter(undefined, { granularity: "grapheme" }) : null;
  function graphemes(text) {
    if (!segmenter) return Array.from(text);
    return Array.from(segmenter.segment(text), function (part) { return part.segment; });
  }

  // The server's cap counts characters (code points); the maxlength attribute would count
  // UTF-16 units, an emoji as two, so the input is cut here instead. Read on every input, so a
  // page without the attribute takes anything.
  // Like maxlength, what was just typed or pasted is what gets cut: the characters over the cap
  // are taken from just before the caret (where an insertion ends), and the caret stays there.
  // Returns whether anything was cut.
  function keepToTheCap(cap) {
    var value = input.value;
    var excess = codePoints(value) - cap;
    if (excess <= 0) return false;
    var caret = typeof input.selectionEnd === "number" ? input.selectionEnd : value.length;
    var before = graphemes(value.slice(0, caret));
    var after = graphemes(value.slice(caret));
    while (excess > 0 && before.length) excess -= codePoints(before.pop());
    while (excess > 0 && after.length) excess -= codePoints(after.pop());
    var head = before.join("");
    input.value = head + after.join("");
    input.setSelectionRange(head.length, head.length);
    return true;
  }

  // Near the cap the hint counts; a cut is said once, where a screen reader hears it.
  function showLength(cap, cut) {
    var used = codePoints(input.value);
    if (limitHint) limitHint.textContent = used >= 0.8 * cap ? used + " of " + cap + " characters." : limitText;
    if (notice) {
      var said = cut ? "Shortened to " + cap + " characters: the server takes no more." : used < cap ? "" : null;
      // the same words again would be announced again, at every key pressed past the cap
      if (said !== null && said !== notice.textContent) notice.textContent = said;
    }
  }

  function checkLength() {
    var cap = parseInt(input.getAttribute("data-max-chars"), 10);
    if (!(cap > 0)) return;
    showLength(cap, keepToTheCap(cap));
  }
  input.addEventListener("input", function (event) {
    if (!event.isComposing) checkLength(); // not in the middle of an input method's word
  });
  input.addEventListener("compositionend", checkLength);

  // The height of the placeholder's lines in the box, read off a hidden copy of the box that
  // holds them as its text: some browsers leave the placeholder out of an empty box's
  // scrollHeight, and a box one line high cut off its second line on a narrow screen.
  var sizer = null;
  function placeholderHeight() {
    if (!input.placeholder) return 0;
    if (!sizer) {
      sizer = document.createElement("textarea");
      sizer.className = "sizer"; // styled as the box, and hidden
      sizer.rows = 1;
      sizer.tabIndex = -1;
      sizer.setAttribute("aria-hidden", "true");
      input.parentNode.insertBefore(sizer, input.nextSibling);
    }
    sizer.style.width = input.offsetWidth + "px";
    sizer.value = input.placeholder;
    return sizer.scrollHeight;
  }

  // The box grows with its lines (up to the style sheet's max-height, then it scrolls); empty,
  // with the placeholder's.
  function fitHeight() {
    input.style.height = "auto";
    var content = input.scrollHeight;
    if (!input.value) content = Math.max(content, placeholderHeight());
    // scrollHeight leaves out the borders, which the box's height (border-box) holds
    input.style.height = content + input.offsetHeight - input.clientHeight + "px";
  }
  input.addEventListener("input", fitHeight);
  // a window made narrower (a phone turned) wraps the lines again: more of them, or fewer
  window.addEventListener("resize", fitHeight);
  fitHeight();

  // Enter sends, Shift+Enter starts a new line; an input method's Enter (choosing a word) does neither.
  // Enter held down sends once: its repeats, come after a quick refusal had put the message
  // back in the box, sent it again and again until the key was let go.
  input.addEventListener("keydown", function (event) {
    if (event.key !== "Enter" || event.shiftKey || event.isComposing || event.keyCode === 229) return;
    event.preventDefault();
    if (event.repeat) return;
    if (typeof form.requestSubmit === "function") form.requestSubmit();
    else form.dispatchEvent(new Event("submit", { cancelable: true }));
  });

  // A double-click on Send is one message: its second click, come after a quick refusal had
  // put the message back in the box, sent it a second time. Only that message is held back: one
  // typed (or pasted) since the first click is sent by the second.
  var lastSent = null;
  sendBtn.addEventListener("click", function (event) {
    if (event.detail > 1 && input.value.trim() === lastSent) event.preventDefault();
  });

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    if (busy) {
      // Enter in the box, which takes typing meanwhile, would otherwise do nothing unheard
      if (input.value.trim()) {
        announce(log.getAttribute("aria-busy") === "true" ? "Not sent yet: the conversation is still loading." :
          "Not sent yet: a reply is still on its way. Send again once it has come.");
      }
      return;
    }
    var text = input.value.trim();
    if (!text) {
      // blank lines or spaces only: nothing to send, and the box is emptied, of its lines'
      // height and its count near the cap too
      input.value = "";
      checkLength();
      fitHeight();
      input.focus();
      return;
    }
    var messageId = messageIdFor(text); // before the copies it may take its id from are dropped
    lastSent = text;
    givenBack = null;
    // sent again: an earlier copy the server did not have is no longer waiting to be
    unsure = unsure.filter(function (entry) { return entry.text !== text; });
    saveUnsure();
    var userEl = addMessage("user", text);
    input.value = "";
    checkLength();
    fitHeight();
    // Send is disabled while busy: focus on it would fall to the page's body
    if (document.activeElement === sendBtn) input.focus();
    setBusy(true);
    var mine = ++seq;
    send(text, messageId, userEl).then(function () {
      if (mine !== seq) return;
      setBusy(false);
      focusInputIfLost();
    });
  });

  if (emotionBox) {
    var savedEmotion = load(EMOTION_KEY);
    // only an emotion this server still offers; else the server's default stays selected
    for (var i = 0; i < emotionBox.options.length; i++) {
      if (emotionBox.options[i].value === savedEmotion) emotionBox.value = savedEmotion;
    }
    emotionBox.addEventListener("change", function () {
      store(EMOTION_KEY, emotionBox.value);
    });
  }

  if (strengthBox) {
    var savedStrength = load(STRENGTH_KEY);
    // a saved strength the slider cannot hold (edited by hand) leaves the server's default;
    // the number is what is set, not the text ("1.5 ", which a range input refuses and
    // replaces by its midpoint), and "1junk" is no number (parseFloat would read 1)
    var savedNumber = savedStrength === null || savedStrength.trim() === "" ? NaN : Number(savedStrength);
    if (isFinite(savedNumber) && savedNumber >= parseFloat(strengthBox.min) &&
        savedNumber <= parseFloat(strengthBox.max)) {
      strengthBox.value = String(savedNumber);
    }
    // step="any": the server's strength (1.25, say) is kept exactly, where a coarser step
    // would move it to the nearest step; the label rounds what a drag makes to 2 decimals.
    var showStrength = function () {
      var rounded = String(Math.round(parseFloat(strengthBox.value) * 100) / 100);
      if (strengthShown) strengthShown.textContent = rounded;
      strengthBox.setAttribute("aria-valuetext", rounded); // as shown, not 3.333333
    };
    showStrength();
    strengthBox.addEventListener("input", function () {
      store(STRENGTH_KEY, strengthBox.value);
      showStrength();
    });
  }

  detailsBox.checked = load(DETAILS_KEY) === "true";
  detailsBox.addEventListener("change", function () {
    store(DETAILS_KEY, detailsBox.checked ? "true" : "false");
    var atEnd = log.scrollHeight - log.scrollTop - log.clientHeight < 2;
    syncDetails();
    if (atEnd) scrollToEnd(); // the latest reply stays in view with its new line
  });

  // The server forgets the conversation for good: the user is asked first (a native dialog, which
  // takes the keyboard and gives the focus back), unless there is nothing to lose.
  function confirmNew() {
    if (!busy && !stale && !log.querySelector(".msg.user, .msg.bot")) return true;
    return window.confirm("Start a new conversation? This one is deleted from the server " +
      "and cannot be shown again.");
  }

  newBtn.addEventListener("click", function () {
    if (!confirmNew()) return;
    var left = sender;
    sender = newSender();
    // No page can reach the conversation left behind any more: the server forgets it as soon
    // as the message still on its way (if any) has been answered, rather than after its idle
    // time. Best effort; the idle time still applies if this fails.
    lastChat.then(function () {
      return call(TRANSCRIPT + encodeURIComponent(left), { method: "DELETE" });
    }).catch(function () {});
    seq++;
    refreshWhenIdle = false;
    stale = false; // a new conversation has no turns to miss
    known = [];
    shown = [];
    givenBack = null;
    unsure = [];
    pending = null;
    saveUnsure();
    log.textContent = "";
    setBusy(false);
    input.value = "";
    checkLength();
    fitHeight();
    input.focus();
    announce("New conversation started.");
  });

  // Show this conversation's stored turns, the input waiting until they are in; another
  // conversation's (switched) leaves the log at once.
  function showStored(switched) {
    if (switched) log.textContent = "";
    setBusy(true, true);
    var restoring = ++seq;
    restore().then(function (settled) {
      if (restoring !== seq) return; // a new conversation was started meanwhile
      setBusy(false);
      // the log, busy while refilled, announced neither the note nor the messages marked
      var said = settled && settled.lost ? [STARTED_OVER] : [];
      if (settled && settled.news.length) {
        var back = settled.news.some(function (entry) { return entry.offered; });
        var several = settled.news.length > 1;
        said.push((several ? "Messages you sent did not reach the server: they are marked not sent" :
          "A message you sent did not reach the server: it is marked not sent") +
          (!back ? "." : several ? ", and the latest is back in the message box." : ", and back in the message box."));
      }
      if (said.length) announce(said.join(" "));
      focusInputIfLost();
    });
  }

  // Tabs of one browser share one sender id, so one conversation: when another tab starts a new
  // conversation (and has the server forget this one), this tab follows it, rather than writing
  // on into a conversation that is gone or, later, deleting the one the other tab holds.
  // A turn another tab had answered in this conversation is shown here too, once this tab's own
  // request (if any) is answered: a reply never comes to a question this tab did not show.
  window.addEventListener("storage", function (event) {
    if (event.key === TURN_KEY) {
      if (!event.newValue || event.newValue.split(" ")[0] !== sender) return;
      if (busy) refreshWhenIdle = true;
      else showStored();
      return;
    }
    if (event.key !== SENDER_KEY && event.key !== null) return; // null: the other tab cleared all
    follow();
  });

  // Follow the conversation this browser's tabs hold now, where another tab left this one.
  // Returns whether it was another.
  function follow() {
    var id = savedSender();
    if (!id) {
      // cleared, or set to something unusable: a fresh conversation, where the browser keeps
      // one; where it keeps none (storage blocked: private mode), no other tab can have left
      // this conversation, and the page back from the back-forward cache goes on with it
      id = newSender();
      if (load(SENDER_KEY) !== id) return false;
    }
    if (id === sender) return false;
    sender = id;
    stale = false;
    known = [];
    shown = [];
    givenBack = null;
    unsure = [];
    pending = null;
    saveUnsure();
    showStored(true);
    return true;
  }

  // A page shown again (its tab brought back, or the page itself brought back from the
  // browser's back-forward cache, where it heard nothing of the other tabs) may show what the
  // server no longer has, or lack what it has since: a message marked not sent that it stored
  // after all, another tab's turns or new conversation, a conversation it forgot meanwhile.
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible" && (known.length || unsure.length)) compare();
  });
  window.addEventListener("pageshow", function (event) {
    if (!event.persisted || follow()) return;
    if (busy) refreshWhenIdle = true;
    else showStored();
  });

  checkLength();
  showStored();
})();
