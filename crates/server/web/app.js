// natter in the browser: protocol v1 over a WebSocket (PROTOCOL.md), no framework, no build step.
//
// The natter way, as in the terminal client: every message you send keeps an id and waits in an outbox —
// kept in localStorage too — until the server acknowledges it; after a dropped connection, a server
// restart or a page reload the outbox is sent again with the same ids (the server acknowledges a repeat
// instead of storing it twice) and `resume_after` brings every message missed since the last one seen.
// Everything from the network is inserted as text, never as HTML.

const $ = (id) => document.getElementById(id);

// The page's words come from natter's catalogues (GET /i18n.json), in the browser's language.
let words = {};
// The language chosen in the page (`/lang`, the sign-in form's switch), else the browser's.
const browserLang = (navigator.languages || [navigator.language]).some((l) => /^zh\b/i.test(l)) ? "zh-CN" : "en";
let lang = null;
function tr(id, vars = {}) {
  return (words[id] ?? id).replace(/\{(\w+)\}/g, (_, name) => String(vars[name] ?? ""));
}
async function loadWords(choice) {
  if (choice !== undefined) store.set("lang", choice || null);
  lang = store.get("lang", null) || browserLang;
  const picker = $("lang");
  if (picker) picker.value = store.get("lang", null) || "";
  try {
    const response = await fetch(`i18n.json?lang=${lang}`);
    words = await response.json();
  } catch { /* the English in the page stays */ }
  document.documentElement.lang = lang;
  for (const e of document.querySelectorAll("[data-t]")) e.textContent = tr(e.dataset.t);
  for (const e of document.querySelectorAll("[data-t-placeholder]")) e.placeholder = tr(e.dataset.tPlaceholder);
  for (const e of document.querySelectorAll("[data-t-label]")) e.setAttribute("aria-label", tr(e.dataset.tLabel));
  for (const e of document.querySelectorAll("[data-t-title]")) e.title = tr(e.dataset.tTitle);
}
const store = {
  get(key, fallback) {
    try { return JSON.parse(localStorage.getItem("natter." + key)) ?? fallback; } catch { return fallback; }
  },
  set(key, value) {
    try { localStorage.setItem("natter." + key, JSON.stringify(value)); } catch { /* private mode */ }
  },
};

const state = {
  me: null,
  password: null,
  ws: null,
  attempt: 0,
  lastSeq: 0,
  outbox: [],            // {id, room, to, text} not yet acknowledged
  convs: new Map(),      // key ("#room" or "@name") -> {key, name, room, entries: [], unread, mention, members, topic, seqs}
  current: null,
  seenIds: 0,
  composingEnded: 0,
};

// ---- conversations ---------------------------------------------------------------------------------

const fold = (s) => s.normalize("NFC").toLowerCase();
const roomKey = (room) => "#" + fold(room);
const personKey = (name) => "@" + fold(name);

function conv(key, label, room) {
  let c = state.convs.get(key);
  if (!c) {
    c = { key, label, room, entries: [], unread: 0, mention: false, members: [], topic: null, seqs: new Set() };
    state.convs.set(key, c);
    if (!state.current) state.current = key;
  }
  return c;
}

function convOf(m) {
  if (m.room) return conv(roomKey(m.room), "#" + m.room, m.room);
  const other = fold(m.from) === fold(state.me) ? m.to : m.from;
  return conv(personKey(other), other, null);
}

function mentions(text) {
  return state.me && fold(text).includes(fold(state.me));
}

function addMessage(m, live) {
  const c = convOf(m);
  if (c.seqs.has(m.seq)) return;
  c.seqs.add(m.seq);
  state.lastSeq = Math.max(state.lastSeq, m.seq);
  const mine = fold(m.from) === fold(state.me);
  const entry = { seq: m.seq, ts: m.ts, from: m.from, text: describe(m), mine, mention: !mine && !m.file && mentions(m.text), file: m.file };
  // In seq order: a resumed or paged message may be older than what is shown.
  let i = c.entries.length;
  while (i > 0 && c.entries[i - 1].seq !== undefined && c.entries[i - 1].seq > m.seq) i--;
  c.entries.splice(i, 0, entry);
  if (c.entries.length > 2000) c.entries.splice(0, c.entries.length - 2000);
  if (live && c.key !== state.current) {
    c.unread++;
    c.mention ||= entry.mention || !c.room;
  }
  if (live && document.hidden && (entry.mention || (!c.room && !mine))) notify(c, entry);
  render();
}

function describe(m) {
  if (m.file) {
    const size = humanSize(m.file.size);
    return m.file.expired
      ? tr("web-file-expired", { file: m.file.name, size })
      : tr("web-file", { file: m.file.name, size, id: m.file.id });
  }
  return m.text;
}

function humanSize(n) {
  const units = ["KiB", "MiB", "GiB", "TiB"];
  if (n < 1024) return n + " B";
  let v = n / 1024, u = 0;
  while (v >= 1024 && u < units.length - 1) { v /= 1024; u++; }
  return v.toFixed(1) + " " + units[u];
}

function info(c, text) {
  c.entries.push({ ts: new Date().toISOString(), text, info: true });
  render();
}

function notify(c, entry) {
  if (!("Notification" in window) || Notification.permission !== "granted") return;
  try { new Notification(`${entry.from} — ${c.label}`, { body: entry.text.slice(0, 200) }); } catch { /* */ }
}

// ---- drawing ---------------------------------------------------------------------------------------

function colour(name) {
  let h = 0;
  for (const ch of fold(name)) h = (h * 31 + ch.codePointAt(0)) >>> 0;
  return `hsl(${h % 360} 55% 45%)`;
}

const pad = (n) => String(n).padStart(2, "0");

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

// Text with http(s) links made clickable; everything stays text.
function withLinks(text) {
  const span = el("span", "text");
  const re = /https?:\/\/[^\s<>"]+/g;
  let at = 0;
  for (const m of text.matchAll(re)) {
    span.append(text.slice(at, m.index));
    const a = el("a", null, m[0]);
    a.href = m[0];
    a.target = "_blank";
    a.rel = "noopener noreferrer";
    span.append(a);
    at = m.index + m[0].length;
  }
  span.append(text.slice(at));
  return span;
}

let drawing = false;
function render() {
  if (drawing) return;
  drawing = true;
  requestAnimationFrame(() => { drawing = false; draw(); });
}

function draw() {
  const nav = $("convs");
  nav.replaceChildren();
  for (const c of state.convs.values()) {
    const b = el("button", "conv");
    b.type = "button";
    b.setAttribute("aria-current", String(c.key === state.current));
    b.append(el("span", null, c.label));
    if (c.unread) b.append(el("span", "unread" + (c.mention ? " mention" : ""), String(c.unread)));
    b.addEventListener("click", () => switchTo(c.key));
    nav.append(b);
  }
  const c = state.convs.get(state.current);
  if (!c) return;
  const topic = $("topic");
  topic.hidden = !c.topic;
  topic.textContent = c.topic || "";
  const log = $("log");
  const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
  log.replaceChildren();
  let day = null;
  for (const e of c.entries.slice(-500)) {
    const when = new Date(e.ts);
    const d = `${when.getFullYear()}-${pad(when.getMonth() + 1)}-${pad(when.getDate())}`;
    if (d !== day) { if (day) log.append(el("div", "day", d)); day = d; }
    const row = el("div", "msg" + (e.info ? " info" : "") + (e.mention ? " mention" : "")
      + (e.state === "pending" ? " pending" : "") + (e.state === "failed" ? " failed" : ""));
    const t = el("time", null, `${pad(when.getHours())}:${pad(when.getMinutes())}`);
    t.dateTime = e.ts;
    t.title = `${d} ${pad(when.getHours())}:${pad(when.getMinutes())}:${pad(when.getSeconds())}`;
    row.append(t);
    if (e.from) {
      const who = el("span", "from", e.from);
      who.style.color = colour(e.from);
      row.append(who);
    }
    row.append(withLinks(e.text));
    if (e.file && !e.file.expired) fileLinks(row, e.file);
    if (e.state === "pending") row.append(el("span", "note", tr("web-sending")));
    if (e.state === "failed") row.append(el("span", "note", tr("web-not-sent", { reason: e.reason })));
    log.append(row);
  }
  if (atBottom) log.scrollTop = log.scrollHeight;
  const members = $("members");
  members.replaceChildren();
  if (c.room) {
    members.append(el("h2", null, tr("web-members", { count: c.members.length, room: "#" + c.room })));
    for (const m of c.members) members.append(el("div", null, m));
  }
}

// ---- the browser's key ------------------------------------------------------------------------------

// An Ed25519 key made by the browser and kept in IndexedDB, its private half never extractable: what
// makes a name yours here, as natter's terminal client's key file does there. Without Ed25519 in this
// browser's WebCrypto, the page signs in as a guest (or with the name's password).
async function browserKey() {
  if (!window.crypto?.subtle || !window.indexedDB) return null;
  const ask = (request) => new Promise((ok, fail) => {
    request.onsuccess = () => ok(request.result);
    request.onerror = () => fail(request.error);
  });
  try {
    const opening = indexedDB.open("natter", 1);
    opening.onupgradeneeded = () => opening.result.createObjectStore("keys");
    const db = await ask(opening);
    let pair = await ask(db.transaction("keys").objectStore("keys").get("identity"));
    if (!pair) {
      pair = await crypto.subtle.generateKey({ name: "Ed25519" }, false, ["sign", "verify"]);
      await ask(db.transaction("keys", "readwrite").objectStore("keys").put(pair, "identity"));
    }
    const raw = new Uint8Array(await crypto.subtle.exportKey("raw", pair.publicKey));
    return { pair, public: base64url(raw) };
  } catch {
    return null;
  }
}

function base64url(bytes) {
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

async function prove(nonce) {
  const message = new TextEncoder().encode(`natter-hello-v1\n${nonce}\n${state.helloName}`);
  const signature = await crypto.subtle.sign("Ed25519", state.key.pair.privateKey, message);
  send({ type: "prove", signature: base64url(new Uint8Array(signature)) });
}

// ---- files -------------------------------------------------------------------------------------------

const tokens = new Map();   // file id -> a promise of its download URL (tokens last an hour)

function fileUrl(id) {
  if (!tokens.has(id)) {
    tokens.set(id, request({ type: "fetch", file: id }).then((f) => {
      if (f.type !== "download_ready") { tokens.delete(id); throw new Error(f.message); }
      setTimeout(() => tokens.delete(id), 50 * 60 * 1000);
      return "files/" + encodeURIComponent(f.token);
    }));
  }
  return tokens.get(id);
}

function fileLinks(row, file) {
  const get = el("a", "get", tr("web-download"));
  get.href = "#";
  get.dataset.file = file.id;
  get.addEventListener("click", async (ev) => {
    ev.preventDefault();
    const a = el("a");
    a.href = await fileUrl(file.id);
    a.download = file.name;
    a.click();
  });
  row.append(get);
  if (/^image\/(png|jpeg|gif|webp)$/.test(file.mime)) {
    const img = el("img", "preview");
    img.alt = file.name;
    img.dataset.file = file.id;
    fileUrl(file.id).then((url) => { img.src = url; }).catch(() => img.remove());
    row.append(img);
  }
}

const requests = new Map(); // request id -> {frame, resolve}: asked again after a reconnect

function request(frame) {
  return new Promise((resolve) => {
    frame.id = newId();
    requests.set(frame.id, { frame, resolve });
    send(frame);
  });
}

function hex(buffer) {
  return [...new Uint8Array(buffer)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

// Shares a file with the current conversation: offer it, then send its bytes over HTTP from where the
// server stands — again from the server's offset after a dropped request.
async function share(file) {
  const c = state.convs.get(state.current);
  if (!c) return;
  const note = { ts: new Date().toISOString(), text: tr("web-uploading", { file: file.name }), info: true };
  c.entries.push(note);
  render();
  try {
    const sha256 = hex(await crypto.subtle.digest("SHA-256", await file.arrayBuffer()));
    const target = c.room ? { room: c.room } : { to: c.label };
    for (let attempt = 0; ; attempt++) {
      const ready = await request({ type: "offer", name: file.name, size: file.size, sha256, ...target });
      if (ready.type !== "upload_ready") throw new Error(ready.message);
      if (ready.file !== undefined) break;
      let response;
      try {
        response = await fetch("files/upload/" + encodeURIComponent(ready.token), {
          method: "PATCH", headers: { "Upload-Offset": String(ready.offset) }, body: file.slice(ready.offset),
        });
      } catch (e) {
        if (attempt >= 8) throw e;
        await new Promise((r) => setTimeout(r, 500 * 2 ** attempt));
        continue;
      }
      if (response.ok) break;
      const answer = await response.json().catch(() => ({}));
      if ((response.status === 409 || response.status === 400) && attempt < 8) continue;
      throw new Error(answer.message || response.statusText);
    }
    c.entries = c.entries.filter((e) => e !== note);
  } catch (e) {
    note.text = tr("web-upload-failed", { file: file.name, why: e.message });
  }
  render();
}

function switchTo(key) {
  state.current = key;
  const c = state.convs.get(key);
  if (c) { c.unread = 0; c.mention = false; }
  render();
  $("input").focus();
}

// ---- the connection --------------------------------------------------------------------------------

function send(frame) {
  if (state.ws && state.ws.readyState === WebSocket.OPEN) state.ws.send(JSON.stringify(frame));
}

function banner(text) {
  const b = $("banner");
  b.hidden = !text;
  b.textContent = text || "";
}

function connect() {
  const ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws");
  state.ws = ws;
  ws.addEventListener("open", () => {
    const hello = { type: "hello", name: state.me, version: 1 };
    state.helloName = state.me;
    if (state.key) hello.key = state.key.public;
    // Within a page's life, resume from the last message seen; a new page gets the recent history.
    if (state.lastSeq) hello.resume_after = state.lastSeq;
    if (state.password) hello.password = state.password;
    send(hello);
  });
  ws.addEventListener("message", (ev) => {
    let f;
    try { f = JSON.parse(ev.data); } catch { return; }
    received(f);
  });
  ws.addEventListener("close", () => {
    if (state.ws !== ws) return;
    state.ws = null;
    if (!state.me) return;
    state.attempt++;
    // Offline (the browser says so): wait for the network to come back, then try at once.
    if (navigator.onLine === false) {
      banner(tr("web-offline"));
      window.addEventListener("online", () => { banner(tr("web-connecting")); connect(); }, { once: true });
      return;
    }
    const delay = Math.min(30, 0.5 * 2 ** (state.attempt - 1));
    let left = Math.ceil(delay);
    banner(tr("web-reconnecting", { secs: left }));
    const tick = setInterval(() => { left--; if (left > 0) banner(tr("web-reconnecting", { secs: left })); }, 1000);
    setTimeout(() => { clearInterval(tick); banner(tr("web-connecting")); connect(); }, delay * 1000);
  });
}

function received(f) {
  if (f.id && requests.has(f.id) && f.type !== "ack") {
    const { resolve } = requests.get(f.id);
    requests.delete(f.id);
    resolve(f);
    return;
  }
  switch (f.type) {
    case "welcome":
      state.attempt = 0;
      state.me = f.name;
      store.set("name", f.name);
      $("signin").hidden = true;
      $("chat").hidden = false;
      banner(null);
      for (const r of f.rooms) conv(roomKey(r), "#" + r, r);
      // Requests without their answer (a file's offer or fetch) are asked again.
      for (const { frame } of requests.values()) send(frame);
      // What was not acknowledged goes again, with the same ids: sent once, whatever happened (the
      // server acknowledges a repeat with the first one's seq instead of storing it again).
      for (const m of state.outbox) {
        const c = convOfOutgoing(m);
        if (!c.entries.some((e) => e.id === m.id)) {
          c.entries.push({ id: m.id, ts: new Date().toISOString(), from: state.me, text: m.text, mine: true, state: "pending" });
        }
        send(frameOf(m));
      }
      render();
      break;
    case "message":
      addMessage(f, true);
      break;
    case "history":
      for (const m of f.messages) addMessage(m, false);
      if (f.messages.length === 0 && state.askedHistory) {
        state.askedHistory = false;
      }
      break;
    case "ack": {
      const i = state.outbox.findIndex((m) => m.id === f.id);
      if (i >= 0) {
        const m = state.outbox.splice(i, 1)[0];
        store.set("outbox", state.outbox);
        const c = convOfOutgoing(m);
        if (c.seqs.has(f.seq)) {
          // Stored before a reload, and already shown from the replay: this line was its echo.
          c.entries = c.entries.filter((e) => e.id !== m.id);
          render();
        } else {
          settle(m.id, (e) => { e.state = undefined; e.seq = f.seq; e.ts = f.ts; c.seqs.add(f.seq); });
        }
      }
      state.lastSeq = Math.max(state.lastSeq, f.seq);
      break;
    }
    case "error": {
      const i = state.outbox.findIndex((m) => m.id === f.id);
      if (i >= 0) {
        const m = state.outbox.splice(i, 1)[0];
        store.set("outbox", state.outbox);
        settle(m.id, (e) => { e.state = "failed"; e.reason = f.message; });
        errorText(f).then((text) => settle(m.id, (e) => { e.reason = text; }));
      } else if (!state.me || $("chat").hidden) {
        $("signin-error").textContent = f.message;
        errorText(f).then((text) => { $("signin-error").textContent = text; });
        state.me = null;
        state.ws?.close();
      } else {
        const note = { ts: new Date().toISOString(), text: "! " + f.message, info: true };
        state.convs.get(state.current)?.entries.push(note);
        render();
        errorText(f).then((text) => { note.text = "! " + text; render(); });
      }
      break;
    }
    case "joined": {
      const c = conv(roomKey(f.room), "#" + f.room, f.room);
      if (fold(f.name) !== fold(state.me) && !c.members.includes(f.name)) c.members.push(f.name);
      if (fold(f.name) === fold(state.me) && state.joining === fold(f.room)) { state.joining = null; switchTo(c.key); }
      render();
      break;
    }
    case "left": {
      const c = state.convs.get(roomKey(f.room));
      if (!c) break;
      if (fold(f.name) === fold(state.me) && f.reason === "leave") {
        state.convs.delete(c.key);
        if (state.current === c.key) state.current = state.convs.keys().next().value ?? null;
      } else {
        c.members = c.members.filter((m) => m !== f.name);
      }
      render();
      break;
    }
    case "users": {
      const c = conv(roomKey(f.room), "#" + f.room, f.room);
      if (f.names.length || !f.count) c.members = f.names;
      render();
      break;
    }
    case "topic": {
      const c = conv(roomKey(f.room), "#" + f.room, f.room);
      c.topic = f.topic || null;
      render();
      break;
    }
    case "ping":
      send({ type: "pong", id: f.id });
      break;
    case "challenge":
      if (state.key) prove(f.nonce);
      break;
  }
}

function convOfOutgoing(m) {
  return m.to ? conv(personKey(m.to), m.to, null) : conv(roomKey(m.room), "#" + m.room, m.room);
}

// An error frame's words in the page's language, from the same catalogue the terminal clients use
// (the frame's English `message` until they arrive, and if they cannot).
async function errorText(f) {
  try {
    const query = new URLSearchParams({ lang, code: f.code, args: JSON.stringify(f.args || {}), message: f.message });
    const answer = await (await fetch("i18n/error?" + query)).json();
    return answer.text || f.message;
  } catch {
    return f.message;
  }
}

function settle(id, change) {
  for (const c of state.convs.values()) {
    const e = c.entries.find((x) => x.id === id);
    if (e) { change(e); render(); return; }
  }
}

function frameOf(m) {
  return m.to ? { type: "whisper", to: m.to, text: m.text, id: m.id }
    : { type: "say", room: m.room, text: m.text, id: m.id };
}

// ---- what the user types -----------------------------------------------------------------------------

function newId() {
  return `w${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;
}

function say(text) {
  const c = state.convs.get(state.current);
  if (!c) return;
  const m = { id: newId(), text, room: c.room, to: c.room ? null : c.label };
  state.outbox.push(m);
  store.set("outbox", state.outbox);
  c.entries.push({ id: m.id, ts: new Date().toISOString(), from: state.me, text, mine: true, state: "pending" });
  send(frameOf(m));
  render();
}

function typed(line) {
  if (!line.trim()) return;
  if (!line.startsWith("/") || line.startsWith("//")) return say(line.startsWith("//") ? line.slice(1) : line);
  const [cmd, ...rest] = line.slice(1).split(" ");
  const arg = rest.join(" ").trim();
  const c = state.convs.get(state.current);
  switch (cmd) {
    case "join": case "j": {
      const room = arg.replace(/^#/, "");
      state.joining = fold(room);
      send({ type: "join", room });
      break;
    }
    case "leave": case "part":
      if (c && !c.room && !arg) { state.convs.delete(c.key); state.current = state.convs.keys().next().value; render(); }
      else send({ type: "leave", room: arg.replace(/^#/, "") || c?.room || "lobby" });
      break;
    case "msg": case "query": {
      const [to, ...words] = arg.split(" ");
      if (!to) return info(c, "! " + tr("web-usage-msg"));
      const p = conv(personKey(to), to, null);
      switchTo(p.key);
      if (words.length) say(words.join(" "));
      break;
    }
    case "who": send({ type: "who", room: arg.replace(/^#/, "") || c?.room || "lobby" }); break;
    case "lang": case "language":
      if (arg === "en" || arg === "zh-CN") loadWords(arg).then(render);
      else info(c, "! /lang en|zh-CN");
      break;
    case "quit": send({ type: "exit" }); state.me = null; store.set("outbox", []); location.reload(); break;
    case "help":
      info(c, tr("web-help"));
      break;
    default: info(c, "! " + tr("web-unknown-command", { command: "/" + cmd }));
  }
}

function complete(input) {
  const c = state.convs.get(state.current);
  const before = input.value.slice(0, input.selectionStart);
  const word = before.split(/\s/).pop();
  if (!word || !c) return;
  const match = c.members.find((m) => fold(m).startsWith(fold(word)) && fold(m) !== fold(state.me));
  if (!match) return;
  const start = before.length - word.length;
  const suffix = start === 0 ? ": " : " ";
  input.value = input.value.slice(0, start) + match + suffix + input.value.slice(input.selectionStart);
  input.selectionStart = input.selectionEnd = start + match.length + suffix.length;
}

async function start() {
  // Every handler is attached before anything is awaited, so nothing typed or clicked meanwhile goes to
  // the browser's defaults (a form submitted by the browser would reload the page).
  const ready = (async () => {
    await loadWords();
    state.key = await browserKey();
  })();
  $("lang").addEventListener("change", (ev) => loadWords(ev.target.value).then(render));
  state.outbox = store.get("outbox", []);
  const saved = store.get("name", null);
  if (saved) $("name").value = saved;
  $("signin").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    await ready;
    const name = $("name").value.trim();
    if (fold(name) !== fold(saved || "")) {
      // Another name: another history and outbox.
      state.outbox = [];
      store.set("outbox", []);
    }
    state.me = name;
    state.password = $("password").value || null;
    $("signin-error").textContent = "";
    if ("Notification" in window && Notification.permission === "default") Notification.requestPermission();
    connect();
  });
  const input = $("input");
  input.addEventListener("compositionend", () => { state.composingEnded = performance.now(); });
  input.addEventListener("keydown", (ev) => {
    if (ev.key === "Tab") { ev.preventDefault(); complete(input); return; }
    if (ev.key !== "Enter" || ev.shiftKey) return;
    // An IME composition's Enter chooses the characters; it never sends. (Safari delivers that Enter
    // just after compositionend, when isComposing is already false.)
    if (ev.isComposing || ev.keyCode === 229 || performance.now() - state.composingEnded < 50) return;
    ev.preventDefault();
    const line = input.value;
    input.value = "";
    typed(line);
  });
  $("file").addEventListener("change", (ev) => {
    for (const file of ev.target.files) share(file);
    ev.target.value = "";
  });
  const log = $("log");
  log.addEventListener("dragover", (ev) => { ev.preventDefault(); log.classList.add("dropping"); });
  log.addEventListener("dragleave", () => log.classList.remove("dropping"));
  log.addEventListener("drop", (ev) => {
    ev.preventDefault();
    log.classList.remove("dropping");
    for (const file of ev.dataTransfer.files) share(file);
  });
  input.addEventListener("paste", (ev) => {
    const files = [...(ev.clipboardData?.files || [])];
    if (files.length) { ev.preventDefault(); for (const file of files) share(file); }
  });
  $("say").addEventListener("submit", (ev) => { ev.preventDefault(); typed(input.value); input.value = ""; });
  $("log").addEventListener("scroll", () => {
    const log = $("log");
    const c = state.convs.get(state.current);
    if (log.scrollTop === 0 && c && c.entries.length && !state.askedHistory) {
      const oldest = c.entries.find((e) => e.seq !== undefined);
      if (!oldest) return;
      state.askedHistory = true;
      send({ type: "history", room: c.room ?? undefined, before: oldest.seq, limit: 50 });
      setTimeout(() => { state.askedHistory = false; }, 1000);
    }
  });
  await ready;
  // Straight back in after a reload, with what was still unsent.
  if (saved && state.outbox.length) {
    state.me = saved;
    connect();
  }
}

start();
