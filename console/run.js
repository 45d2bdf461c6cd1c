// One run's page: header, live timeline, Gantt chart, step graph, changes, gate answers, cancel and
// the postmortem draft. Events arrive once each from /runs/ID/events (past first, then live).
"use strict";

(async function () {
  const runID = document.body.dataset.run;
  const main = RB.main();
  try { await RB.loadMe(); } catch (e) { return RB.fail(main, e); }
  let run;
  try { run = await RB.api("/runs/" + encodeURIComponent(runID)); } catch (e) { return RB.fail(main, e); }
  runID && (document.title = "Run " + run.id + " · runbook");
  const runbook = ((await RB.api("/runbooks").catch(() => [])) || []).find((r) => r.name === run.runbook);

  const events = [];
  const steps = new Map(); // id -> {phase, segments: [{from, to, status, wait}], status}
  let started = null, finished = null, startedBy = null;

  const header = RB.el("dl", { class: "header", id: "header" });
  const gatePanel = RB.el("section", { class: "panel gate", id: "gate", hidden: true, "aria-live": "polite" });
  const controls = RB.el("section", { class: "actions", id: "controls" });
  const timeline = RB.el("ol", { class: "timeline", id: "timeline", "aria-live": "polite", tabindex: "0", "aria-label": "timeline" });
  const gantt = RB.el("div", { class: "scroll", id: "gantt" });
  const graph = RB.el("div", { class: "scroll", id: "graph" });
  const changes = RB.el("ul", { id: "changes" });
  const postmortem = RB.el("section", { id: "postmortem" }, RB.el("p", { class: "muted" }, "The draft appears when the run finishes."));
  main.append(RB.el("h1", {}, "Run ", RB.el("code", {}, run.id)), header, gatePanel, controls,
    RB.el("h2", {}, "Steps over time"), gantt, RB.el("h2", {}, "Timeline"), timeline,
    RB.el("h2", {}, "Step graph"), graph, RB.el("h2", {}, "Changes"), changes,
    RB.el("h2", {}, "Postmortem draft"), postmortem);
  if (runbook) graph.innerHTML = runbook.graph_svg; // server-rendered SVG, its text escaped there

  function renderHeader() {
    const s = finished ? { outcome: finished.outcome, status: "finished" } : { status: openGates().length ? "awaiting-approval" : "running" };
    const end = finished ? new Date(finished.time) : new Date();
    const params = started && started.params ? Object.entries(started.params).map(([k, v]) => k + "=" + v).join(", ") : "";
    const rows = [["Runbook", run.runbook], ["Trigger", run.trigger], ["By", startedBy || (run.fingerprint ? "alert " + run.fingerprint : "")],
      ["Params", params || "none"], ["Status", RB.state(s)], ["Started", RB.time(run.started)],
      ["Elapsed", started ? RB.duration(end - new Date(started.time)) : ""]];
    header.replaceChildren(...rows.flatMap(([k, v]) => [RB.el("dt", {}, k), RB.el("dd", {}, v)]));
  }

  // Gates open now: requested and not yet answered for good.
  function openGates() {
    const open = new Map();
    for (const e of events) {
      if (e.event === "approval.requested") open.set(e.gate, { request: e, approvers: [] });
      else if (e.event === "approval.granted" && open.has(e.gate)) {
        if (e.status === "approved") open.delete(e.gate); else open.get(e.gate).approvers.push(e.by);
      } else if ((e.event === "approval.denied" || e.event === "approval.timed_out") && open.has(e.gate)) open.delete(e.gate);
      else if (e.event === "run.finished" || e.event === "run.cancelled") open.clear();
    }
    return [...open.values()];
  }

  function renderGate() {
    const gates = openGates();
    gatePanel.hidden = gates.length === 0;
    if (!gates.length) { gatePanel.replaceChildren(); return; }
    const g = gates[0];
    const parts = [RB.el("h2", {}, RB.el("span", { "aria-hidden": "true" }, "‖ "), "Waiting for approval"),
      RB.el("p", {}, g.request.message || ""),
      RB.el("p", {}, "Deadline: ", RB.time(g.request.deadline)),
      RB.el("p", {}, "Approved so far by: ", g.approvers.length ? g.approvers.join(", ") : "nobody yet")];
    if (RB.me.operator) {
      const note = RB.el("p", { class: "error", id: "gate-error", "aria-live": "assertive" });
      const mine = startedBy && startedBy === RB.me.name && RB.me.sign_in;
      const answer = (verb) => async () => {
        note.textContent = "";
        try { await RB.post("/runs/" + encodeURIComponent(run.id) + "/" + verb, {}); } catch (e) { note.textContent = "✗ " + RB.escape(e.message); }
      };
      parts.push(RB.el("div", { class: "actions" },
        RB.el("button", { class: "primary", id: "approve", type: "button", onclick: answer("approve"), disabled: mine }, "✓ Approve"),
        RB.el("button", { class: "danger", id: "deny", type: "button", onclick: answer("deny") }, "✗ Deny")));
      if (mine) parts.push(RB.el("p", { class: "muted" }, "You started this run, so you cannot approve it: another operator must."));
      parts.push(note);
    }
    gatePanel.replaceChildren(...parts);
  }

  function renderControls() {
    controls.replaceChildren();
    if (finished || !RB.me.operator) return;
    const note = RB.el("span", { class: "error", "aria-live": "assertive" });
    const keep = RB.el("input", { type: "checkbox", id: "keep-changes" });
    const confirmBox = RB.el("span", { class: "actions", id: "cancel-confirm", hidden: true },
      RB.el("strong", {}, "Cancel this run? Running steps stop."),
      RB.el("label", {}, keep, " leave completed changes in place"),
      RB.el("button", { class: "danger", id: "cancel-yes", type: "button", onclick: async () => {
        try { await RB.post("/runs/" + encodeURIComponent(run.id) + "/cancel", { undo: !keep.checked }); confirmBox.hidden = true; }
        catch (e) { note.textContent = "✗ " + RB.escape(e.message); }
      } }, "■ Yes, cancel the run"),
      RB.el("button", { type: "button", onclick: () => { confirmBox.hidden = true; ask.focus(); } }, "Keep it running"));
    const ask = RB.el("button", { id: "cancel", type: "button", onclick: () => { confirmBox.hidden = false; confirmBox.querySelector("#cancel-yes").focus(); } }, "■ Cancel run…");
    controls.append(ask, confirmBox, note);
  }

  function line(id, e) {
    const t = e.time ? e.time.slice(11, 23) : "";
    const change = e.what && e.from && e.to ? e.what + ": " + e.from + " → " + e.to : null;
    const detail = [e.step, e.status, e.outcome, e.by && "by " + e.by, e.message, change].filter(Boolean).join("  ");
    return RB.el("li", { "data-id": id, "data-event": e.event },
      RB.el("span", { class: "t" }, t), RB.el("span", { class: "e" }, e.event), detail);
  }

  function track(e) {
    if (e.step) changedSteps.add(e.step);
    if (e.event.startsWith("approval.") || e.event === "run.finished" || e.event === "run.cancelled") gateDirty = true;
    if (e.event === "run.started") { started = e; startedBy = e.by || null; }
    if (e.event === "run.finished") finished = e;
    if (e.step && e.event.startsWith("step.")) {
      const s = steps.get(e.step) || { phase: e.phase, segments: [], status: "pending" };
      steps.set(e.step, s);
      const last = s.segments[s.segments.length - 1];
      if (e.event === "step.started") {
        if (last && last.wait && !last.to) last.to = e.time;
        s.segments.push({ from: e.time, to: null, status: "running" }); s.status = "running";
      } else if (e.event === "step.retrying") {
        if (last && !last.to) { last.to = e.time; last.status = e.status || "failed"; }
        s.segments.push({ from: e.time, to: null, wait: true });
      } else if (e.event === "step.finished") {
        if (last && !last.to) { last.to = e.time; last.status = e.status; }
        else s.segments.push({ from: e.time, to: e.time, status: e.status });
        s.status = e.status;
      }
    }
    // A step waiting at its approval gate shows the wait until it is answered.
    if (e.step && e.event === "approval.requested") {
      const s = steps.get(e.step) || { phase: e.phase, segments: [], status: "awaiting approval" };
      steps.set(e.step, s);
      s.segments.push({ from: e.time, to: null, wait: true });
    }
    if (e.step && (e.event === "approval.denied" || e.event === "approval.timed_out" || (e.event === "approval.granted" && e.status === "approved"))) {
      const last = (steps.get(e.step) || { segments: [] }).segments.slice(-1)[0];
      if (last && last.wait && !last.to) last.to = e.time;
    }
    if (e.event === "run.finished") {
      for (const s of steps.values()) for (const seg of s.segments) if (!seg.to) { seg.to = e.time; seg.status = seg.status === "running" ? "failed" : seg.status; }
    }
    if (e.event === "change.applied" || e.event.startsWith("undo.")) {
      changes.append(RB.el("li", {}, RB.el("span", { "aria-hidden": "true" }, e.event === "change.applied" ? "＋ " : "↺ "),
        e.event, "  ", e.step || "", "  ", e.message || e.what || ""));
    }
  }

  // Steps changed since the graph was last drawn: only they are redrawn.
  const changedSteps = new Set();
  function renderGraph() {
    for (const id of changedSteps) {
      const s = steps.get(id);
      if (!s) continue;
      const g = graph.querySelector('g[data-step="' + CSS.escape(id) + '"]');
      if (!g) continue;
      g.setAttribute("class", "step " + (s.status === "passed" || s.status === "would-change" ? "passed" : s.status));
      const t = g.querySelector("title");
      if (t) t.textContent = id + ": " + s.status;
    }
    changedSteps.clear();
  }

  let ganttDrawn = 0;
  function renderGantt() {
    ganttDrawn = Date.now();
    if (!started) return;
    const t0 = new Date(started.time).getTime();
    const tEnd = finished ? new Date(finished.time).getTime() : Date.now();
    const span = Math.max(1000, tEnd - t0);
    const W = 900, left = 160, rowH = 22, rows = [...steps.entries()];
    const x = (t) => left + ((new Date(t).getTime() - t0) / span) * (W - left - 10);
    const svg = RB.svg("svg", { class: "gantt", role: "img", "aria-label": "steps over time", width: W, height: rows.length * rowH + 24, viewBox: "0 0 " + W + " " + (rows.length * rowH + 24) });
    rows.forEach(([id, s], i) => {
      const y = i * rowH + 4;
      svg.append(RB.svg("text", { x: 4, y: y + 14 }, (s.phase ? s.phase[0].toUpperCase() + " " : "") + id));
      for (const seg of s.segments) {
        const to = seg.to || (finished ? finished.time : new Date(tEnd).toISOString());
        const x1 = x(seg.from), w = Math.max(2, x(to) - x1);
        const ms = new Date(to) - new Date(seg.from);
        if (seg.wait) svg.append(RB.svg("rect", { class: "wait", x: x1, y: y + 5, width: w, height: 8, "data-step": id, "data-ms": ms }, RB.svg("title", {}, id + ": waiting to retry")));
        else svg.append(RB.svg("rect", { class: "bar " + (seg.to ? seg.status : "running"), x: x1, y: y + 2, width: w, height: 14, rx: 2, "data-step": id, "data-ms": ms },
          RB.svg("title", {}, id + ": " + (seg.to ? seg.status : "running") + ", " + RB.duration(new Date(to) - new Date(seg.from)))));
      }
    });
    svg.append(RB.svg("text", { class: "sub", x: left, y: rows.length * rowH + 18 }, "0 s"),
      RB.svg("text", { class: "sub", x: W - 10, y: rows.length * rowH + 18, "text-anchor": "end" }, RB.duration(span)));
    gantt.replaceChildren(svg);
  }

  async function showPostmortem() {
    try {
      const r = await fetch("/runs/" + encodeURIComponent(run.id) + "/postmortem", { credentials: "same-origin" });
      const text = await r.text();
      postmortem.replaceChildren(
        RB.el("p", {}, RB.el("a", { href: "/runs/" + encodeURIComponent(run.id) + "/postmortem?download=1", download: "postmortem-" + run.id + ".md", id: "postmortem-download" }, "⬇ Download the Markdown")),
        RB.el("pre", { class: "postmortem" }, text));
    } catch (e) { RB.fail(postmortem, e); }
  }

  // Everything once; then, per frame with new events, what they changed (the Gantt chart at most
  // every 250 ms: the timeline line is what must not wait).
  let dirty = false, gateDirty = false;
  function renderAll() {
    for (const id of steps.keys()) changedSteps.add(id);
    renderHeader(); renderGate(); renderControls(); renderGraph(); renderGantt();
  }
  function renderChanged() {
    dirty = false;
    timeline.scrollTop = timeline.scrollHeight;
    renderHeader();
    if (gateDirty) { gateDirty = false; renderGate(); }
    renderGraph();
    if (Date.now() - ganttDrawn >= 250) renderGantt();
  }
  renderAll();

  // Running steps grow in real time.
  const tick = setInterval(() => { if (!finished) { renderGantt(); renderHeader(); } }, 250);

  const source = new EventSource("/runs/" + encodeURIComponent(run.id) + "/events");
  let lastID = 0;
  source.onmessage = (m) => {
    const id = Number(m.lastEventId);
    if (id && id <= lastID) return; // never shown twice
    lastID = id || lastID + 1;
    const e = JSON.parse(m.data);
    events.push(e);
    track(e);
    timeline.append(line(lastID, e));
    if (!dirty) { dirty = true; requestAnimationFrame(renderChanged); }
    if (e.event === "run.finished") {
      source.close();
      clearInterval(tick);
      setTimeout(() => { renderAll(); showPostmortem(); }, 0);
    }
  };
  if (run.outcome) { /* a finished run's stream still replays its events, then ends */ }
})();
