// The runbooks page: each runbook's triggers, guards and graph; dry-run and run with its params.
"use strict";

(async function () {
  const main = RB.main();
  main.append(RB.el("h1", {}, "Runbooks"));
  let runbooks;
  try { await RB.loadMe(); runbooks = await RB.api("/runbooks"); } catch (e) { return RB.fail(main, e); }
  if (!runbooks.length) main.append(RB.el("p", { class: "muted" }, "No runbooks loaded."));

  for (const rb of runbooks) {
    const section = RB.el("section", { class: "panel", id: "runbook-" + rb.name, "aria-labelledby": "title-" + rb.name });
    section.append(RB.el("h2", { id: "title-" + rb.name }, rb.name, RB.el("span", { class: "muted" }, " — " + rb.title + " [" + rb.severity + "]")));
    if (rb.description) section.append(RB.el("p", {}, rb.description));
    section.append(RB.el("dl", { class: "header" },
      RB.el("dt", {}, "Triggers"), RB.el("dd", {}, rb.triggers.length ? rb.triggers.join("; ") : "none (manual only)"),
      RB.el("dt", {}, "Guards"), RB.el("dd", {}, rb.guards.join("; ")),
      RB.el("dt", {}, "Owner"), RB.el("dd", {}, rb.owner || "")));
    const graph = RB.el("div", { class: "scroll" });
    graph.innerHTML = rb.graph_svg; // server-rendered SVG, its text escaped there
    section.append(graph);

    if (RB.me.operator) {
      const form = RB.el("form", { class: "filters params", "data-runbook": rb.name });
      for (const p of rb.params) {
        form.append(RB.el("label", {}, p.name + (p.required ? " (required)" : ""),
          RB.el("input", { name: p.name, type: p.secret ? "password" : "text", required: p.required,
            placeholder: p.default != null ? String(p.default) : "", title: p.description || null })));
      }
      const confirm = RB.el("input", { type: "checkbox", name: "confirm" });
      form.append(RB.el("label", {}, RB.el("span", {}, "Confirm steps"), RB.el("span", {}, confirm, " run confirm: true steps")));
      const note = RB.el("p", { class: "error", "aria-live": "assertive" });
      const send = (path) => async (ev) => {
        ev.preventDefault();
        note.textContent = "";
        const params = {};
        for (const p of rb.params) { const v = form.elements[p.name].value; if (v !== "") params[p.name] = v; }
        try {
          const r = await RB.post(path, { runbook: rb.name, params, confirm: confirm.checked });
          const first = r.runs && r.runs[0];
          if (first && first.status === "started") location.href = "/ui/runs/" + encodeURIComponent(first.run);
          else note.textContent = "✗ " + RB.escape(first ? first.status + ": " + (first.message || "") : "not started");
        } catch (e) { note.textContent = "✗ " + RB.escape(e.message); }
      };
      form.append(RB.el("div", { class: "actions" },
        RB.el("button", { type: "button", class: "dry-run", onclick: send("/hooks/dry-run") }, "◇ Dry run (show the plan)"),
        RB.el("button", { type: "submit", class: "primary run" }, "▶ Run")));
      form.addEventListener("submit", send("/hooks/run"));
      section.append(form, note);
    }
    main.append(section);
  }
})();
