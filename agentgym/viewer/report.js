"use strict";
// agentgym report: everything below runs offline on the JSON embedded in this page.
// Trajectory text goes into the DOM as text nodes only (never as HTML).
(function () {
  const DATA = JSON.parse(document.getElementById("agentgym-data").textContent);
  const T = DATA.trajectories;
  const $ = (id) => document.getElementById(id);
  const state = { selected: null, tab: "conversation" };

  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") e.className = v;
      else if (k === "text") e.textContent = v;
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v);
    }
    for (const k of kids) if (k != null) e.append(k instanceof Node ? k : String(k));
    return e;
  }
  const fmt = (x, d = 3) => (x == null || Number.isNaN(x) ? "n/a" : Number(x).toFixed(d));
  const signed = (x) => (x == null ? "n/a" : (x >= 0 ? "+" : "") + Number(x).toFixed(3));
  const mean = (xs) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : null);
  const okText = (t) => (t.success == null ? "–" : t.success ? "yes" : "no");

  // ------------------------------------------------------------ advantages (per group)
  // GRPO: (R - mean) / (std + 1e-6); RLOO: R - mean of the others. infra_error samples
  // are skipped (not scored 0), as the trainer does.
  // A group is one task's G samples in one step: the same group id in another step of a
  // run (a seed used again) is another group.
  const groupKey = (t) => (t.step == null ? "" : "step " + t.step + ": ") + t.group_id;
  const groups = new Map();
  for (const t of T) {
    t.group = groupKey(t);
    if (!groups.has(t.group)) groups.set(t.group, []);
    groups.get(t.group).push(t);
  }
  for (const members of groups.values()) {
    const scored = members.filter((t) => t.status !== "infra_error");
    const rs = scored.map((t) => t.total_reward);
    const m = mean(rs);
    const sd = rs.length ? Math.sqrt(mean(rs.map((r) => (r - m) ** 2))) : 0;
    for (const t of members) {
      if (t.status === "infra_error") { t.grpo = null; t.rloo = null; continue; }
      t.grpo = (t.total_reward - m) / (sd + 1e-6);
      t.rloo = rs.length > 1 ? t.total_reward - (m * rs.length - t.total_reward) / (rs.length - 1) : 0;
    }
  }

  // ------------------------------------------------------------ header and summary
  $("title").textContent = DATA.title || "agentgym report";
  $("source").textContent = (DATA.is_run ? "training run: " : "trajectories: ") + (DATA.source || "");

  function summary() {
    const box = $("summary");
    box.textContent = "";
    const scorable = T.filter((t) => t.status !== "infra_error" && t.status !== "env_error");
    const stat = (label, value) => box.append(el("div", { class: "stat" }, el("b", { text: value }), el("span", { text: label })));
    stat("trajectories", String(T.length));
    stat("groups", String(groups.size));
    stat("success rate", scorable.length ? fmt(mean(scorable.map((t) => (t.success ? 1 : 0))), 3) : "n/a");
    stat("mean return", fmt(mean(scorable.map((t) => t.total_reward))));
    stat("mean turns", fmt(mean(T.map((t) => t.turns.length)), 2));
    const counts = {};
    for (const t of T) counts[t.status] = (counts[t.status] || 0) + 1;
    for (const [k, v] of Object.entries(counts).sort()) stat(k, String(v));
  }

  // ------------------------------------------------------------ charts (training runs)
  function lineChart(title, points, yRange) {
    const W = 300, H = 150, P = 30;
    const xs = points.map((p) => p[0]), ys = points.map((p) => p[1]);
    const x0 = Math.min(...xs), x1 = Math.max(...xs);
    let y0 = yRange ? yRange[0] : Math.min(...ys), y1 = yRange ? yRange[1] : Math.max(...ys);
    if (y1 - y0 < 1e-9) { y0 -= 0.5; y1 += 0.5; }
    const sx = (x) => P + ((x - x0) / ((x1 - x0) || 1)) * (W - P - 8);
    const sy = (y) => H - 18 - ((y - y0) / (y1 - y0)) * (H - 28);
    const ns = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(ns, "svg");
    svg.setAttribute("width", W); svg.setAttribute("height", H); svg.setAttribute("role", "img");
    const add = (tag, attrs, text) => {
      const e = document.createElementNS(ns, tag);
      for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
      if (text != null) e.textContent = text;
      svg.append(e); return e;
    };
    add("line", { x1: P, y1: H - 18, x2: W - 8, y2: H - 18, stroke: "#d0d7de" });
    add("line", { x1: P, y1: 8, x2: P, y2: H - 18, stroke: "#d0d7de" });
    add("text", { x: 2, y: 14, "font-size": 10, fill: "#6e7781" }, fmt(y1, 2));
    add("text", { x: 2, y: H - 20, "font-size": 10, fill: "#6e7781" }, fmt(y0, 2));
    add("text", { x: P, y: H - 4, "font-size": 10, fill: "#6e7781" }, "step " + x0);
    add("text", { x: W - 50, y: H - 4, "font-size": 10, fill: "#6e7781" }, "step " + x1);
    if (points.length > 1)
      add("polyline", { points: points.map((p) => sx(p[0]) + "," + sy(p[1])).join(" "), fill: "none", stroke: "#0969da", "stroke-width": 2 });
    for (const p of points) {
      const c = add("circle", { cx: sx(p[0]), cy: sy(p[1]), r: 3, fill: "#0969da", class: "point" });
      const tip = document.createElementNS(ns, "title");
      tip.textContent = "step " + p[0] + ": " + fmt(p[1]);
      c.append(tip);
    }
    return el("div", { class: "chart", "data-key": title }, el("h3", { text: title }), svg);
  }

  function charts() {
    const box = $("charts");
    const rows = DATA.metrics || [];
    for (const key of DATA.chart_keys || []) {
      const pts = rows.filter((r) => typeof r[key] === "number" && typeof r.step === "number").map((r) => [r.step, r[key]]);
      if (pts.length) box.append(lineChart(key, pts, key.includes("rate") || key.includes("fraction") ? [0, 1] : null));
    }
    // Also from the trajectories themselves, when they carry their step.
    const bySteps = new Map();
    for (const t of T) if (t.step != null && t.status !== "infra_error" && t.status !== "env_error") {
      if (!bySteps.has(t.step)) bySteps.set(t.step, []);
      bySteps.get(t.step).push(t);
    }
    if (bySteps.size && !rows.length) {
      const steps = [...bySteps.keys()].sort((a, b) => a - b);
      box.append(lineChart("return per step (trajectories)", steps.map((s) => [s, mean(bySteps.get(s).map((t) => t.total_reward))])));
      box.append(lineChart("success per step (trajectories)", steps.map((s) => [s, mean(bySteps.get(s).map((t) => (t.success ? 1 : 0)))]), [0, 1]));
    }
  }

  // ------------------------------------------------------------ filters and list
  function options(id, values, label) {
    const s = $(id);
    s.append(el("option", { value: "", text: "any" }));
    for (const v of values) s.append(el("option", { value: String(v), text: label ? label(v) : String(v) }));
  }
  const uniq = (xs) => [...new Set(xs)].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  options("f-env", uniq(T.map((t) => t.env_id)));
  options("f-status", uniq(T.map((t) => t.status)));
  options("f-step", uniq(T.filter((t) => t.step != null).map((t) => t.step)));
  options("f-group", [...groups.keys()]);
  if (!T.some((t) => t.step != null)) {
    $("f-step").parentElement.style.display = "none";
    $("list").classList.add("nostep");  // the step column stays in the DOM, hidden
  }

  function filtered() {
    const env = $("f-env").value, st = $("f-status").value, ok = $("f-success").value;
    const step = $("f-step").value, grp = $("f-group").value;
    const lo = $("f-min").value === "" ? -Infinity : Number($("f-min").value);
    const hi = $("f-max").value === "" ? Infinity : Number($("f-max").value);
    return T.filter((t) =>
      (!env || t.env_id === env) && (!st || t.status === st) &&
      (!ok || (ok === "yes") === Boolean(t.success)) &&
      (!step || String(t.step) === step) && (!grp || t.group === grp) &&
      t.total_reward >= lo && t.total_reward <= hi);
  }

  function renderList() {
    const rows = filtered();
    const body = $("list").tBodies[0];
    body.textContent = "";
    for (const t of rows) {
      const tr = el("tr", { "data-i": t.i, onclick: () => select(t.i) },
        el("td", { text: t.i }), el("td", { text: t.env_id }), el("td", { text: t.seed ?? "" }),
        el("td", { text: t.sample_index }), el("td", { text: t.step ?? "", class: "c-step" }),
        el("td", { text: t.status, class: t.status === "done" ? "" : "muted" }),
        el("td", { text: okText(t), class: t.success ? "ok" : "bad" }),
        el("td", { text: fmt(t.total_reward) }), el("td", { text: t.turns.length }));
      if (t.i === state.selected) tr.classList.add("selected");
      body.append(tr);
    }
    $("count").textContent = rows.length + " of " + T.length + " trajectories shown";
  }
  for (const id of ["f-env", "f-status", "f-success", "f-step", "f-group"]) $(id).addEventListener("change", renderList);
  for (const id of ["f-min", "f-max"]) $(id).addEventListener("input", renderList);
  $("f-reset").addEventListener("click", () => {
    for (const id of ["f-env", "f-status", "f-success", "f-step", "f-group", "f-min", "f-max"]) $(id).value = "";
    renderList();
  });

  // ------------------------------------------------------------ detail views
  function message(m) {
    const role = m.role || "?";
    return el("div", { class: "msg " + role },
      el("div", { class: "role", text: role + (m.name ? " (" + m.name + ")" : "") }),
      el("pre", { text: m.content == null ? "" : String(m.content) }));
  }

  function rewardLine(turn, k) {
    const comps = Object.entries(turn.components || {}).map(([name, v]) =>
      el("span", { class: "comp" }, name + " ", el("b", { class: v >= 0 ? "pos" : "neg", text: signed(v) })));
    const flags = [turn.finish_reason === "length" ? "cut at token limit" : null,
      turn.terminated ? "terminated" : null, turn.truncated ? "truncated" : null].filter(Boolean);
    return el("div", { class: "reward", "data-turn": k },
      el("b", { text: "turn " + (k + 1) + " reward " }),
      el("b", { class: turn.reward >= 0 ? "pos" : "neg", text: signed(turn.reward) }), "  ",
      ...comps, flags.length ? el("span", { class: "muted", text: "(" + flags.join(", ") + ")" }) : null);
  }

  function conversation(t, compact) {
    const box = el("div", { class: "conversation" });
    for (const m of t.initial) box.append(message(m));
    t.turns.forEach((turn, k) => {
      const a = message({ role: "assistant", content: turn.action });
      a.append(rewardLine(turn, k));
      box.append(a);
      if (!compact) for (const m of turn.observation) box.append(message(m));
    });
    if (t.error) box.append(el("div", { class: "error", text: t.error }));
    return box;
  }

  function tokenView(t) {
    const box = el("div", {});
    if (!t.tokens) { box.append(el("p", { class: "hint", text: "No token ledger (the episode failed before sampling)." })); return box; }
    const vocab = DATA.vocab;
    box.append(el("div", { class: "legend" },
      el("span", { class: "tok m1", text: "sampled (loss mask 1)" }), " ",
      el("span", { class: "tok m1 low", text: "sampled, logprob < -2" }), " ",
      el("span", { class: "tok m0", text: "prompt / observation (mask 0)" }),
      vocab ? " — hover a token for its id and logprob" : " — token ids shown (pass --tokenizer to decode); hover for logprobs",
      t.tokens.per_turn ? " — per-turn ledgers: the last turn's is shown" : ""));
    const ids = t.tokens.ids, mask = t.tokens.mask, lp = t.tokens.logprobs;
    const out = el("div", { class: "tokens" });
    const frag = document.createDocumentFragment();
    for (let j = 0; j < ids.length; j++) {
      const text = vocab ? (vocab[String(ids[j])] ?? "⟨" + ids[j] + "⟩") : "⟨" + ids[j] + "⟩";
      const cls = "tok m" + mask[j] + (mask[j] && lp[j] < -2 ? " low" : "");
      frag.append(el("span", { class: cls, title: "id " + ids[j] + " · mask " + mask[j] + (mask[j] ? " · logprob " + fmt(lp[j], 4) : ""), text }));
    }
    out.append(frag);
    box.append(el("div", { class: "muted", text: ids.length + " tokens, " + mask.reduce((a, b) => a + b, 0) + " sampled in " + t.tokens.spans.length + " turn(s)" }), out);
    return box;
  }

  function groupView(t) {
    const members = groups.get(t.group) || [t];
    const box = el("div", {});
    box.append(el("p", { class: "muted", text: members.length + " samples of group " + t.group +
      ". Advantages from each sample's return: GRPO (R − mean)/(std + 1e-6), RLOO R − mean(others); infra errors skipped. A run configured with another reward trained on other numbers." }));
    const row = el("div", { class: "group" });
    for (const m of members.slice().sort((a, b) => a.sample_index - b.sample_index)) {
      row.append(el("div", { class: "sample" + (m.i === t.i ? " current" : ""), "data-i": m.i },
        el("h4", { text: "sample " + m.sample_index + " (#" + m.i + ")" }),
        el("div", {}, "return ", el("b", { text: fmt(m.total_reward) }), "  success ", el("b", { class: m.success ? "ok" : "bad", text: okText(m) }), "  " + m.status),
        el("div", { class: "adv" }, "GRPO adv ", el("span", { class: m.grpo >= 0 ? "pos" : "neg", text: signed(m.grpo) }), "  RLOO adv ", el("span", { class: m.rloo >= 0 ? "pos" : "neg", text: signed(m.rloo) })),
        conversation(m, true)));
    }
    box.append(row);
    return box;
  }

  function select(i) {
    state.selected = i;
    for (const tr of $("list").tBodies[0].rows) tr.classList.toggle("selected", Number(tr.dataset.i) === i);
    const t = T[i];
    const d = $("detail");
    d.textContent = "";
    d.append(el("h2", { text: "#" + t.i + " " + t.env_id + " seed " + (t.seed ?? "–") + " sample " + t.sample_index }),
      el("div", {}, "status ", el("b", { text: t.status }), "  success ", el("b", { class: t.success ? "ok" : "bad", text: okText(t) }),
        "  outcome " + fmt(t.outcome) + "  return " + fmt(t.total_reward) + (t.step != null ? "  step " + t.step : "") +
        "  GRPO adv " + signed(t.grpo)));
    const tabs = el("div", { class: "tabs" });
    const views = { conversation: () => conversation(t, false), tokens: () => tokenView(t), group: () => groupView(t) };
    const body = el("div", { id: "view" });
    for (const name of Object.keys(views)) {
      tabs.append(el("button", { type: "button", id: "tab-" + name, class: name === state.tab ? "active" : "", text: name,
        onclick: () => { state.tab = name; select(i); } }));
    }
    body.append(views[state.tab]());
    d.append(tabs, body);
  }

  summary();
  charts();
  renderList();
  if (T.length) select(T[0].i);
})();
