// The runs page: newest first, filtered and paged on the server, updated live from /runs/events.
"use strict";

(async function () {
  const main = RB.main();
  main.append(RB.el("h1", {}, "Runs"));
  const params = new URLSearchParams(location.search);
  const query = new URLSearchParams();
  for (const k of ["runbook", "outcome", "status", "q", "before"]) if (params.get(k)) query.set(k, params.get(k));
  query.set("limit", "50");
  // The three reads go out at once, and the rows wait for none but their own: the runbook filter
  // gets its choices when they come.
  const first = RB.api("/runs?" + query.toString());
  const me = RB.loadMe();
  const runbooksRead = RB.api("/runbooks").catch(() => []);

  const field = (label, control) => RB.el("label", {}, label, control);
  const chosen = params.get("runbook");
  const rbSelect = RB.el("select", { name: "runbook" }, RB.el("option", { value: "" }, "any"),
    chosen ? RB.el("option", { value: chosen, selected: true }, chosen) : null);
  runbooksRead.then((runbooks) => {
    const now = rbSelect.value;
    rbSelect.replaceChildren(RB.el("option", { value: "" }, "any"),
      ...runbooks.map((r) => RB.el("option", { value: r.name, selected: now === r.name }, r.name)));
  });
  const outcomes = ["", "mitigated", "completed", "not-confirmed", "failed", "aborted", "interrupted", "refused", "inconclusive", "would-mitigate"];
  const outcome = RB.el("select", { name: "outcome" }, outcomes.map((o) => RB.el("option", { value: o, selected: params.get("outcome") === o && o !== "" }, o || "any")));
  const statuses = ["", "running", "awaiting-approval", "finished"];
  const status = RB.el("select", { name: "status" }, statuses.map((s) => RB.el("option", { value: s, selected: params.get("status") === s && s !== "" }, s || "any")));
  const text = RB.el("input", { name: "q", type: "search", value: params.get("q") || "", placeholder: "id, trigger, fingerprint" });
  main.append(RB.el("form", { class: "filters", method: "get", action: "/ui/", role: "search" },
    field("Runbook", rbSelect), field("Outcome", outcome), field("Status", status), field("Text", text),
    RB.el("button", { type: "submit" }, "Filter")));

  const live = RB.el("p", { class: "live", "aria-live": "polite" }, "");
  const table = RB.el("table", { id: "runs" },
    RB.el("thead", {}, RB.el("tr", {}, ["State", "Run", "Runbook", "Trigger", "Started", "Duration"].map((h) => RB.el("th", { scope: "col" }, h)))));
  const body = RB.el("tbody", {});
  table.append(body);
  const pager = RB.el("div", { class: "pager" });
  main.append(live, table, pager);

  function row(r) {
    return RB.el("tr", { "data-run": r.id },
      RB.el("td", {}, RB.state(r)),
      RB.el("td", {}, RB.el("a", { href: "/ui/runs/" + encodeURIComponent(r.id) }, r.id)),
      RB.el("td", {}, r.runbook), RB.el("td", {}, r.trigger),
      RB.el("td", {}, RB.time(r.started)), RB.el("td", {}, RB.duration(r.duration_ms)));
  }

  async function load(read) {
    const runs = await (read || RB.api("/runs?" + query.toString()));
    body.replaceChildren(...runs.map(row));
    if (runs.length === 0) body.append(RB.el("tr", {}, RB.el("td", { colspan: "6", class: "muted" }, "No runs match.")));
    pager.replaceChildren();
    if (params.get("before")) {
      const first = new URLSearchParams(query); first.delete("before"); first.delete("limit");
      pager.append(RB.el("a", { href: "/ui/?" + first.toString() }, "← Newest"));
    }
    if (runs.length === 50) {
      const next = new URLSearchParams(query); next.set("before", runs[runs.length - 1].id); next.delete("limit");
      pager.append(RB.el("a", { href: "/ui/?" + next.toString(), rel: "next" }, "Older →"));
    }
  }
  try { await Promise.all([me, load(first)]); } catch (e) { return RB.fail(main, e); }

  // Live: each change reloads the first page (coalesced); older pages only say that runs changed.
  let pending = null;
  const source = new EventSource("/runs/events");
  source.onopen = () => { live.textContent = "● live"; };
  source.onerror = () => { live.textContent = "○ reconnecting…"; };
  source.addEventListener("run", () => {
    if (params.get("before")) { live.textContent = "● runs changed: go to the newest page to see them"; return; }
    if (pending) return;
    pending = setTimeout(() => { pending = null; load().catch(() => {}); }, 150);
  });
})();
