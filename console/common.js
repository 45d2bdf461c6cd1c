// runbook console: helpers every page shares. No framework; text goes in with textContent only.
"use strict";

const RB = {};

// Outside text made safe to show, as the terminal shows it (Sources/RunbookCore/Escape.swift):
// control characters and bidirectional formatting characters become visible escapes.
RB.escape = function (value) {
  const s = value == null ? "" : String(value);
  let out = "";
  for (const ch of s) {
    const v = ch.codePointAt(0);
    const control = v <= 0x1f || (v >= 0x7f && v <= 0x9f) || v === 0x2028 || v === 0x2029;
    const bidi = v === 0x061c || v === 0x200e || v === 0x200f || (v >= 0x202a && v <= 0x202e) || (v >= 0x2066 && v <= 0x2069);
    if (!control && !bidi) { out += ch; continue; }
    if (ch === "\n") out += "\\n";
    else if (ch === "\r") out += "\\r";
    else if (ch === "\t") out += "\\t";
    else out += "\\u{" + v.toString(16).toUpperCase() + "}";
  }
  return out;
};

// An element with attributes and children (strings become escaped text nodes).
RB.el = function (tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === false || v == null) continue;
    if (k === "text") e.textContent = RB.escape(v);
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c == null || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(RB.escape(c)));
  }
  return e;
};

RB.svg = function (tag, attrs, ...children) {
  const e = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs || {})) if (v != null) e.setAttribute(k, v);
  for (const c of children.flat()) if (c != null) e.append(c instanceof Node ? c : document.createTextNode(RB.escape(c)));
  return e;
};

// JSON from the API; a failure throws an Error carrying the server's message and status.
RB.api = async function (path, options) {
  const r = await fetch(path, Object.assign({ credentials: "same-origin", headers: { "Accept": "application/json" } }, options || {}));
  if (r.status === 401) { location.href = "/ui/login"; throw new Error("signed out"); }
  const text = await r.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch (_) { body = text; }
  if (!r.ok) {
    const err = new Error((body && body.error) || ("HTTP " + r.status));
    err.status = r.status;
    throw err;
  }
  return body;
};

RB.post = function (path, body) {
  return RB.api(path, { method: "POST", headers: { "Content-Type": "application/json", "Accept": "application/json" }, body: JSON.stringify(body || {}) });
};

// A run's state as a word with an icon and a class (colour only adds to the word).
RB.state = function (summary) {
  const o = summary.outcome;
  const map = {
    "running": ["▶", "running", "run"], "awaiting-approval": ["‖", "awaiting approval", "warn"],
    "mitigated": ["✓", "mitigated", "ok"], "completed": ["✓", "completed", "ok"], "not-confirmed": ["✓", "not confirmed", "ok"], "inconclusive": ["?", "inconclusive", "warn"],
    "would-mitigate": ["✓", "would mitigate", "ok"], "failed": ["✗", "failed", "bad"], "aborted": ["✗", "aborted", "bad"],
    "interrupted": ["■", "interrupted", "bad"], "refused": ["⊘", "refused", "warn"], "declined": ["⊘", "declined", "warn"],
  };
  const key = o || summary.status;
  const [icon, word, cls] = map[key] || ["•", key || "?", ""];
  return RB.el("span", { class: "state " + cls, "data-state": key }, RB.el("span", { "aria-hidden": "true" }, icon + " "), word);
};

// As toLocaleString() writes it, with one formatter made once (making one per call is slow).
RB.timeFormat = new Intl.DateTimeFormat(undefined, { year: "numeric", month: "numeric", day: "numeric", hour: "numeric", minute: "numeric", second: "numeric" });
RB.time = function (iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return isNaN(d) ? iso : RB.timeFormat.format(d);
};

RB.duration = function (ms) {
  if (ms == null) return "";
  if (ms < 1000) return ms + " ms";
  const s = ms / 1000;
  if (s < 60) return s.toFixed(1) + " s";
  const m = Math.floor(s / 60);
  return m + " min " + Math.round(s - m * 60) + " s";
};

// Who is signed in: {name, role, operator, sign_in}.
RB.me = null;
RB.loadMe = async function () {
  RB.me = await RB.api("/ui/me");
  const who = document.getElementById("who");
  if (who) who.textContent = RB.escape(RB.me.name + " (" + RB.me.role + ")");
  if (!RB.me.sign_in) { const f = document.getElementById("logout"); if (f) f.hidden = true; }
  return RB.me;
};

RB.main = function () {
  const m = document.getElementById("main");
  const l = document.getElementById("loading");
  if (l) l.remove();
  return m;
};

RB.fail = function (where, err) {
  where.append(RB.el("p", { class: "error", role: "alert" }, RB.el("span", { "aria-hidden": "true" }, "✗ "), err.message || String(err)));
};
