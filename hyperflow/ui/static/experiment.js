// One experiment: spec summary, conditions, best trial, actions, the trial table
// (virtualized; sort, filter, choose columns), parallel coordinates whose brushing filters
// the table, and the plots; all kept current from the event stream without reloads.
import { ctx, navigate } from "./app.js";
import { axisOf, TrialData } from "./data.js";
import { deployDialog } from "./deploy.js";
import { destroy as destroyParcoords } from "./parcoords.js";
import * as plots from "./plots.js";
import { VirtualTable } from "./table.js";
import {
  api, badge, fill, count, csvCell, download, duration, enc, expPath, h, loadPlotly, mlflowLink, num,
  parseTime, purge, reportError, showProblems, throttle, toast, watch, when,
} from "./util.js";

const TABS = [
  ["history", "History"],
  ["importance", "Importance"],
  ["slice", "Slice"],
  ["contour", "Contour"],
  ["intermediate", "Intermediate values"],
  ["edf", "EDF"],
  ["scatter", "Metrics scatter"],
];

export async function render(root, [ns, name], query) {
  const base = expPath(ns, name);
  const data = new TrialData(ns, name);
  const state = {
    obj: null,
    best: null,
    bestName: null,
    phase: query.get("phase") || "",
    text: "",
    ranges: new Map(), // key -> [[lo, hi], ...] in axis space (brushing or typed)
    tab: query.get("plot") || "history",
    plotParams: {},
    drawnVersion: {},
  };
  let table = null;

  // --- skeleton ---------------------------------------------------------------------------
  const title = h("h1", {}, name);
  const reason = h("p", { class: "sub", id: "exp-reason" });
  const actions = h("div", { class: "toolbar", role: "group", "aria-label": "Experiment actions" });
  const specCard = h("section", { class: "card", "aria-labelledby": "spec-h" });
  const bestCard = h("section", { class: "card", id: "best", "aria-labelledby": "best-h" });
  const statusCard = h("section", { class: "card", "aria-labelledby": "status-h" });
  const parcoords = h("div", { class: "plot tall", id: "plot-parcoords", role: "img", "aria-label": "Parallel coordinates of the succeeded trials; the range filters below do the same from the keyboard" });
  const parNote = h("p", { class: "plot-note" }, "Drag along an axis to keep only that range in the table; click an axis to clear its range.");
  const filters = h("div", { class: "filters", role: "search", "aria-label": "Trial filters" });
  const tableHost = h("div", { id: "trials" });
  const shownCount = h("span", { class: "sub", id: "shown-count", "aria-live": "polite" });
  const tablist = h("div", { class: "tabs", role: "tablist", "aria-label": "Plots" });
  const panel = h("div", { class: "tabpanel", role: "tabpanel", id: "plot-panel" });
  root.append(
    h("p", { class: "sub" }, h("a", { href: "/", "data-link": "" }, "Experiments"), ` / ${ns} /`),
    title, reason, actions,
    h("div", { class: "cards" }, specCard, bestCard, statusCard),
    h("h2", {}, "Parallel coordinates"), parNote, parcoords,
    h("h2", {}, "Trials ", shownCount), filters, tableHost,
    h("h2", {}, "Plots"), tablist, panel,
  );

  // --- experiment object: header, spec, conditions, status -------------------------------
  function drawHeader() {
    const o = state.obj;
    const st = o.status || {};
    const cond = (st.conditions || []).find((c) => c.status === "True" && c.type !== "Created") ||
      (st.conditions || []).slice(-1)[0];
    const phase = cond ? cond.type : "Created";
    title.replaceChildren(name, " ", badge(phase), h("span", { class: "sub" }, ns));
    reason.textContent = cond ? `${cond.reason}: ${cond.message}` : "";
    state.phase_ = phase;
    drawActions(phase);
    const spec = o.spec;
    const obj = spec.objective;
    const algo = spec.algorithm || {};
    specCard.replaceChildren(
      h("h2", { id: "spec-h" }, "Spec"),
      h("dl", { class: "kv" },
        h("dt", {}, "Objective"), h("dd", {}, `${obj.type} ${obj.objectiveMetricName}`,
          obj.goal !== undefined && obj.goal !== null ? ` (goal ${num(obj.goal)})` : ""),
        obj.additionalMetricNames && obj.additionalMetricNames.length
          ? [h("dt", {}, "Other metrics"), h("dd", {}, obj.additionalMetricNames.join(", "))] : null,
        h("dt", {}, "Algorithm"), h("dd", {}, algo.algorithmName,
          (algo.algorithmSettings || []).length ? h("span", { class: "sub" }, ` ${(algo.algorithmSettings || []).map((s) => `${s.name}=${s.value}`).join(", ")}`) : ""),
        spec.earlyStopping ? [h("dt", {}, "Early stopping"), h("dd", {}, spec.earlyStopping.algorithmName)] : null,
        h("dt", {}, "Budget"), h("dd", {}, `max ${spec.maxTrialCount ?? "∞"} trials, ${spec.parallelTrialCount} in parallel, max failed ${spec.maxFailedTrialCount ?? "∞"}`),
        h("dt", {}, "Resume policy"), h("dd", {}, spec.resumePolicy || "Never"),
        h("dt", {}, "Parameters"), h("dd", {}, h("ul", { style: "margin:0;padding-left:18px" },
          (spec.parameters || []).map((p) => h("li", {}, h("code", {}, p.name), ` ${p.parameterType} `, space(p.feasibleSpace || {})))),
        ),
      ),
    );
    const created = parseTime(o.metadata.creationTimestamp);
    const start = parseTime(st.startTime);
    const end = parseTime(st.completionTime);
    statusCard.replaceChildren(
      h("h2", { id: "status-h" }, "Status"),
      h("dl", { class: "kv" },
        h("dt", {}, "Trials"), h("dd", {}, `${count(st.trials || 0)}: ${count(st.trialsSucceeded)} succeeded, ${count(st.trialsRunning)} running, ${count(st.trialsPending)} pending, ${count(st.trialsFailed)} failed, ${count(st.trialsEarlyStopped)} early-stopped, ${count(st.trialsKilled)} killed`),
        h("dt", {}, "Created"), h("dd", {}, when(created)),
        h("dt", {}, "Elapsed"), h("dd", {}, start ? duration((end || Date.now() / 1000) - start, true) : "–"),
      ),
      h("details", {}, h("summary", {}, "Conditions"),
        h("div", { class: "scroll-x" }, h("table", { class: "plain", id: "conditions" },
          h("thead", {}, h("tr", {}, ["Type", "Status", "Reason", "Last transition", "Message"].map((t) => h("th", { scope: "col" }, t)))),
          h("tbody", {}, (st.conditions || []).map((c) => h("tr", {},
            h("td", {}, c.type), h("td", {}, badge(c.status)), h("td", {}, c.reason),
            h("td", {}, when(parseTime(c.lastTransitionTime))), h("td", {}, c.message))))))),
    );
  }

  function space(fs) {
    if (fs.list) return `{${fs.list.join(", ")}}`;
    return `[${fs.min}, ${fs.max}]${fs.step ? ` step ${fs.step}` : ""}${fs.distribution ? ` ${fs.distribution}` : ""}`;
  }

  function drawActions(phase) {
    const o = state.obj;
    const finished = phase === "Succeeded" || phase === "Failed";
    const stop = h("button", { type: "button", id: "act-stop", disabled: finished,
      title: "No new trials: maxTrialCount becomes the number of trials created; running trials finish",
      onclick: () => confirmThen(`Stop ${name}? No new trials start; ${runningPhrase(o.status.trialsRunning || 0)}.`,
        () => patch({ spec: { maxTrialCount: Math.max(1, o.status.trials || 0) } }, "stopped: no new trials")) }, "Stop");
    const raise = h("button", { type: "button", id: "act-raise", onclick: raiseDialog }, "Raise max trials…");
    const csv = h("button", { type: "button", id: "act-csv", onclick: downloadCsv }, "Download CSV");
    const del = h("button", { type: "button", class: "danger", id: "act-delete",
      onclick: () => confirmThen(`Delete ${ns}/${name}? Its running trials are killed; MLflow runs are kept.`, async () => {
        await api(base, { method: "DELETE" });
        toast(`experiment ${name} deleted`);
        navigate("/");
      }) }, "Delete");
    actions.replaceChildren(stop, raise, csv, del);
  }

  async function patch(body, message) {
    try {
      state.obj = await api(base, { method: "PATCH", body, type: "application/merge-patch+json" });
      drawHeader();
      toast(`${name}: ${message}`);
    } catch (e) {
      reportError(e);
      throw e;
    }
  }

  function confirmThen(text, action) {
    const dialog = h("dialog", { "aria-label": "Confirm" },
      h("form", { method: "dialog" }, h("p", {}, text),
        h("div", { class: "toolbar" }, h("button", { value: "cancel" }, "Cancel"),
          h("button", { value: "ok", class: "primary", autofocus: true }, "OK"))));
    dialog.addEventListener("close", async () => {
      dialog.remove();
      if (dialog.returnValue === "ok") {
        try { await action(); } catch (e) { reportError(e); }
      }
    });
    document.body.append(dialog);
    dialog.showModal();
  }

  function raiseDialog() {
    const o = state.obj;
    const current = o.spec.maxTrialCount ?? o.status.trials ?? 0;
    const input = h("input", { type: "number", min: 1, step: 1, value: String(current + 10), id: "raise-value", required: true });
    const problems = h("ul", { class: "problems", "aria-live": "polite" });
    const form = h("form", {},
      h("label", {}, "spec.maxTrialCount", input),
      h("p", { class: "sub" }, "An experiment that succeeded by reaching maxTrialCount restarts when its resumePolicy is LongRunning or FromVolume."),
      problems,
      h("div", { class: "toolbar" }, h("button", { type: "button", onclick: () => dialog.close() }, "Cancel"),
        h("button", { type: "submit", class: "primary" }, "Apply")));
    const dialog = h("dialog", { "aria-label": "Raise maxTrialCount" }, form);
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      try {
        state.obj = await api(base, { method: "PATCH", body: { spec: { maxTrialCount: Number(input.value) } }, type: "application/merge-patch+json" });
        drawHeader();
        toast(`${name}: maxTrialCount ${input.value}`);
        dialog.close();
      } catch (e) {
        showProblems(problems, e);
      }
    });
    dialog.addEventListener("close", () => dialog.remove());
    document.body.append(dialog);
    dialog.showModal();
  }

  // --- best trial -----------------------------------------------------------------------
  async function loadBest() {
    state.best = await api(`${base}/best`);
    const b = state.best;
    const t = b.currentOptimalTrial;
    state.bestName = t.bestTrialName;
    if (!t.bestTrialName) {
      bestCard.replaceChildren(h("h2", { id: "best-h" }, "Best trial"), h("p", { class: "sub" }, "No trial has succeeded yet."));
      return;
    }
    const deploy = ctx.config.services && b.storageUri
      ? h("button", { type: "button", class: "primary", id: "deploy",
        onclick: () => deployDialog({ ns, name: `${name}`.slice(0, 50), storageUri: b.storageUri, experiment: name, trial: t.bestTrialName, best: true }) }, "Deploy…")
      : null;
    fill(bestCard,
      h("h2", { id: "best-h" }, "Best trial"),
      h("p", {}, h("a", { href: `/experiments/${enc(ns)}/${enc(name)}/trials/${enc(t.bestTrialName)}`, "data-link": "" }, t.bestTrialName)),
      h("dl", { class: "kv" },
        t.parameterAssignments.map((p) => [h("dt", {}, p.name), h("dd", { class: "mono" }, num(p.value, 6))]),
        t.observation.metrics.map((m) => [h("dt", {}, m.name), h("dd", { class: "mono", title: `min ${m.min}, max ${m.max}, latest ${m.latest}` },
          num(Number(data.objective && data.objective.strategies[m.name] ? m[data.objective.strategies[m.name]] : m.latest), 6))]),
      ),
      h("p", {}, mlflowLink(ctx.config, b.mlflowRunId)),
      b.storageUri ? h("p", { class: "sub" }, "Model: ", h("code", {}, b.storageUri)) : null,
      deploy,
    );
  }

  // --- filters and table --------------------------------------------------------------------
  function columns() {
    const c = data.cols;
    const cols = [
      { key: "number", label: "#", value: (i) => c.number[i], numeric: true, width: 64 },
      { key: "name", label: "Trial", value: (i) => c.name[i], width: 190,
        render: (i, cell) => {
          let a = cell.firstChild;
          if (!a) { a = h("a", { "data-link": "" }); cell.append(a); }
          a.href = `/experiments/${enc(ns)}/${enc(name)}/trials/${enc(c.name[i])}`;
          a.textContent = c.name[i];
        } },
      { key: "phase", label: "Phase", value: (i) => c.phase[i], width: 130,
        render: (i, cell) => { cell.replaceChildren(badge(c.phase[i], c.reason[i])); } },
    ];
    for (const m of data.objective.metrics) {
      cols.push({ key: `m:${m}`, label: m, value: (i) => c.metrics[m][i], text: (i) => num(c.metrics[m][i], 6), numeric: true, width: 120 });
    }
    for (const p of data.parameters) {
      const numeric = !p.choices;
      cols.push({ key: `p:${p.name}`, label: p.name, value: (i) => c.params[p.name][i],
        text: (i) => (numeric ? num(c.params[p.name][i], 6) : String(c.params[p.name][i] ?? "–")), numeric, width: 120 });
    }
    cols.push(
      { key: "observations", label: "Reports", value: (i) => c.observations[i], text: (i) => count(c.observations[i]), numeric: true, width: 84 },
      { key: "duration", label: "Duration", value: (i) => (c.started[i] ? (c.completed[i] || Date.now() / 1000) - c.started[i] : null),
        text: (i) => (c.started[i] ? duration((c.completed[i] || Date.now() / 1000) - c.started[i]) : "–"), numeric: true, width: 96 },
      { key: "reason", label: "Reason", value: (i) => c.reason[i], width: 170 },
      { key: "created", label: "Created", value: (i) => c.created[i], text: (i) => when(c.created[i]), width: 190 },
    );
    return cols;
  }

  const storageKey = `hf-cols:${ns}/${name}`;
  function savedColumns(all) {
    try {
      const saved = JSON.parse(localStorage.getItem(storageKey) || "null");
      if (Array.isArray(saved)) return all.map((c) => c.key).filter((k) => saved.includes(k) || k === "name");
    } catch { /* fall through */ }
    return all.map((c) => c.key).filter((k) => k !== "created");
  }

  const phaseSelect = h("select", { id: "f-trial-phase", "aria-label": "Trial phase" },
    h("option", { value: "" }, "All phases"),
    ["Created", "Running", "Succeeded", "EarlyStopped", "Failed", "Killed", "MetricsUnavailable"].map((p) => h("option", { value: p }, p)));
  phaseSelect.value = state.phase;
  const textInput = h("input", { type: "search", id: "f-trial-text", placeholder: "Trial name", "aria-label": "Filter by trial name" });
  const rangeKey = h("select", { id: "f-range-key", "aria-label": "Range filter column" });
  const rangeMin = h("input", { type: "number", step: "any", id: "f-range-min", placeholder: "min", "aria-label": "Minimum" });
  const rangeMax = h("input", { type: "number", step: "any", id: "f-range-max", placeholder: "max", "aria-label": "Maximum" });
  const chips = h("div", { class: "chips", id: "range-chips", "aria-live": "polite" });
  const columnsMenu = h("details", { class: "columns" }, h("summary", {}, "Columns"), h("div", { id: "column-menu" }));
  filters.append(
    h("label", {}, "Phase", phaseSelect), textInput,
    h("span", { class: "range" }, rangeKey, rangeMin, "–", rangeMax,
      h("button", { type: "button", id: "f-range-add", onclick: addRange }, "Filter")),
    chips, h("span", { class: "grow", style: "flex:1" }), columnsMenu,
  );
  phaseSelect.addEventListener("change", () => { state.phase = phaseSelect.value; applyFilters(); });
  textInput.addEventListener("input", () => { state.text = textInput.value.trim().toLowerCase(); applyFilters(); });

  function keyLabel(key) {
    return key.slice(2);
  }

  function axisFor(key) {
    if (key.startsWith("p:")) return axisOf(data.parameters.find((p) => p.name === key.slice(2)));
    return { kind: "linear", to: (v) => v, from: (x) => x };
  }

  function valuesFor(key) {
    return key.startsWith("p:") ? data.cols.params[key.slice(2)] : data.cols.metrics[key.slice(2)];
  }

  function addRange() {
    const key = rangeKey.value;
    const lo = rangeMin.value === "" ? -Infinity : Number(rangeMin.value);
    const hi = rangeMax.value === "" ? Infinity : Number(rangeMax.value);
    if (!key || (lo === -Infinity && hi === Infinity)) return;
    const axis = axisFor(key);
    const a = axis.kind === "log" ? (lo > 0 ? Math.log10(lo) : -Infinity) : lo;
    const b = axis.kind === "log" ? (hi > 0 ? Math.log10(hi) : -Infinity) : hi;
    state.ranges.set(key, [[a, b]]);
    rangeMin.value = rangeMax.value = "";
    applyFilters();
    drawParallel();
  }

  function drawChips() {
    chips.replaceChildren(...[...state.ranges.entries()].map(([key, ranges]) => {
      const axis = axisFor(key);
      const text = ranges.map(([a, b]) => axis.kind === "category"
        ? axis.labels.filter((_, k) => k >= a && k <= b).join("|")
        : `${num(axis.from(a), 4)} – ${num(axis.from(b), 4)}`).join(" or ");
      return h("span", { class: "chip" }, `${keyLabel(key)}: ${text}`,
        h("button", { type: "button", "aria-label": `Remove filter on ${keyLabel(key)}`, onclick: () => {
          state.ranges.delete(key);
          applyFilters();
          drawParallel();
        } }, "×"));
    }));
  }

  function applyFilters() {
    if (!table) return;
    const c = data.cols;
    const rows = [];
    const checks = [...state.ranges.entries()].map(([key, ranges]) => [valuesFor(key), axisFor(key), ranges]);
    outer: for (let i = 0; i < data.n; i++) {
      if (state.phase && c.phase[i] !== state.phase) continue;
      if (state.text && !c.name[i].includes(state.text)) continue;
      for (const [vals, axis, ranges] of checks) {
        const x = axis.to(vals[i]);
        if (x === null || x === undefined || Number.isNaN(x)) continue outer;
        let inside = false;
        for (const [a, b] of ranges) if (x >= a && x <= b) { inside = true; break; }
        if (!inside) continue outer;
      }
      rows.push(i);
    }
    table.setRows(rows);
    shownCount.textContent = `${count(rows.length)} of ${count(data.n)} shown`;
    drawChips();
  }

  function buildTable() {
    const cols = columns();
    const best = () => data.bestIndex();
    let bestIdx = -1;
    if (!table) {
      table = new VirtualTable({ columns: cols, label: `Trials of ${name}`, height: 460,
        rowClass: (i) => (i === bestIdx ? "best" : "") });
      table.visible = savedColumns(cols);
      table.renderHead();
      tableHost.replaceChildren(table.el);
      const m = `m:${data.objective.metric}`;
      table.sortBy(m, data.maximize ? -1 : 1);
    } else {
      table.setColumns(cols);
    }
    bestIdx = best();
    table._bestRefresh = () => { bestIdx = best(); };
    rangeKey.replaceChildren(...cols.filter((c) => c.key.startsWith("p:") || c.key.startsWith("m:"))
      .filter((c) => c.numeric).map((c) => h("option", { value: c.key }, c.label)));
    const menu = columnsMenu.querySelector("div");
    menu.replaceChildren(...cols.map((c) => h("label", {},
      h("input", { type: "checkbox", checked: table.visible.includes(c.key), disabled: c.key === "name", dataset: { key: c.key },
        onchange: () => {
          const keys = [...menu.querySelectorAll("input:checked")].map((x) => x.dataset.key);
          localStorage.setItem(storageKey, JSON.stringify(keys));
          table.setVisible(cols.map((k) => k.key).filter((k) => keys.includes(k)));
        } }), c.label)));
  }

  function downloadCsv() {
    const c = data.cols;
    const params = data.parameters.map((p) => p.name);
    const metrics = data.objective.metrics;
    const head = ["number", "name", "phase", "reason", ...params, ...metrics, "started", "completed"];
    const lines = [head.map(csvCell).join(",")];
    for (const i of table.order) {
      lines.push([c.number[i], c.name[i], c.phase[i], c.reason[i], ...params.map((p) => c.params[p][i]),
        ...metrics.map((m) => c.metrics[m][i]),
        c.started[i] ? new Date(c.started[i] * 1000).toISOString() : "",
        c.completed[i] ? new Date(c.completed[i] * 1000).toISOString() : ""].map(csvCell).join(","));
    }
    download(`${name}-trials.csv`, `${lines.join("\n")}\n`);
  }

  // --- plots --------------------------------------------------------------------------------
  function drawParallel() {
    if (!data.n) return Promise.resolve();
    return plots.parallel(parcoords, data, state.ranges, (ranges) => {
      // Brushing: the parallel-coordinates ranges replace the table's range filters.
      for (const key of [...state.ranges.keys()]) if (!ranges.has(key)) state.ranges.delete(key);
      for (const [k, v] of ranges) state.ranges.set(k, v);
      applyFilters();
    });
  }

  const tabButtons = new Map();
  function drawTabs() {
    const multi = data.objective.metrics.length > 1;
    tablist.replaceChildren();
    tabButtons.clear();
    for (const [key, label] of TABS) {
      if (key === "scatter" && !multi) continue;
      const b = h("button", { type: "button", role: "tab", id: `tab-${key}`, "aria-controls": "plot-panel",
        "aria-selected": String(key === state.tab), tabindex: key === state.tab ? "0" : "-1",
        onclick: () => selectTab(key) }, label);
      tabButtons.set(key, b);
      tablist.append(b);
    }
    if (!tabButtons.has(state.tab)) state.tab = "history";
  }
  tablist.addEventListener("keydown", (ev) => {
    const keys = [...tabButtons.keys()];
    const at = keys.indexOf(state.tab);
    let next = null;
    if (ev.key === "ArrowRight") next = keys[(at + 1) % keys.length];
    else if (ev.key === "ArrowLeft") next = keys[(at - 1 + keys.length) % keys.length];
    else if (ev.key === "Home") next = keys[0];
    else if (ev.key === "End") next = keys[keys.length - 1];
    if (next) { ev.preventDefault(); selectTab(next); tabButtons.get(next).focus(); }
  });

  function selectTab(key) {
    state.tab = key;
    for (const [k, b] of tabButtons) {
      b.setAttribute("aria-selected", String(k === key));
      b.tabIndex = k === key ? 0 : -1;
    }
    panel.setAttribute("aria-labelledby", `tab-${key}`);
    purge(panel);
    panel.replaceChildren();
    state.drawnVersion = {};
    drawPlot(true).catch(reportError);
  }

  function select(id, label, options, value, onchange) {
    const s = h("select", { id, "aria-label": label }, options.map((o) => h("option", { value: o }, o)));
    s.value = value;
    s.addEventListener("change", () => onchange(s.value));
    return h("label", {}, label, s);
  }

  let intermediateCache = null;
  async function drawPlot(fresh = false) {
    if (!window.Plotly || !data.n) return;
    const tab = state.tab;
    if (!fresh && state.drawnVersion[tab] === data.version) return;
    state.drawnVersion[tab] = data.version;
    const params = data.parameters.map((p) => p.name);
    const metrics = data.objective.metrics;
    let gd = panel.querySelector(".plot");
    const ensure = (controls = []) => {
      if (!gd) {
        gd = h("div", { class: "plot", id: `plot-${tab}` });
        panel.replaceChildren(h("div", { class: "toolbar" }, controls), gd);
      }
      return gd;
    };
    const P = state.plotParams;
    if (tab === "history") {
      plots.history(ensure(), data);
    } else if (tab === "edf") {
      const m = data.objective.metric;
      plots.edf(ensure(), [{ name, metric: m, values: data.completed().map((i) => data.cols.metrics[m][i]) }]);
    } else if (tab === "slice") {
      P.slice = P.slice || params[0];
      plots.slice(ensure([select("slice-param", "Parameter", params, P.slice, (v) => { P.slice = v; plots.slice(gd, data, v); })]), data, P.slice);
    } else if (tab === "scatter") {
      P.sx = P.sx || metrics[0];
      P.sy = P.sy || metrics[1];
      const redraw = () => plots.scatter2(gd, data, P.sx, P.sy);
      ensure([select("scatter-x", "x", metrics, P.sx, (v) => { P.sx = v; redraw(); }),
        select("scatter-y", "y", metrics, P.sy, (v) => { P.sy = v; redraw(); })]);
      redraw();
    } else if (tab === "importance") {
      P.evaluator = P.evaluator || "fanova";
      const note = h("span", { class: "plot-note", id: "importance-note" });
      const load = async () => {
        note.textContent = "computing…";
        const resp = await api(`${base}/importances?evaluator=${P.evaluator}`);
        note.textContent = resp.importances.length
          ? `${count(resp.trials)} succeeded trials, optuna's ${resp.evaluator} evaluator`
          : "Needs at least two succeeded trials.";
        plots.importance(gd, resp);
      };
      ensure([select("importance-evaluator", "Evaluator", ["fanova", "mdi", "ped-anova"], P.evaluator, (v) => { P.evaluator = v; load().catch(reportError); }), note]);
      await load();
    } else if (tab === "contour") {
      if (params.length < 2) {
        panel.replaceChildren(h("p", { class: "plot-note" }, "A contour plot needs two parameters; this experiment has one."));
        return;
      }
      P.cx = P.cx || params[0];
      P.cy = P.cy || params[1];
      const load = async () => {
        if (P.cx === P.cy) return;
        const resp = await api(`${base}/contour?x=${enc(P.cx)}&y=${enc(P.cy)}`);
        plots.contour(gd, data, resp);
      };
      ensure([select("contour-x", "x", params, P.cx, (v) => { P.cx = v; load().catch(reportError); }),
        select("contour-y", "y", params, P.cy, (v) => { P.cy = v; load().catch(reportError); })]);
      await load();
    } else if (tab === "intermediate") {
      P.metric = P.metric || metrics[0];
      const load = async (reset) => {
        if (reset || !intermediateCache || intermediateCache.metric !== P.metric || intermediateCache.uid !== data.uid) {
          intermediateCache = await api(`${base}/intermediatevalues?metric=${enc(P.metric)}`);
        } else {
          const more = await api(`${base}/intermediatevalues?metric=${enc(P.metric)}&after=${intermediateCache.finishedThrough}`);
          const c = intermediateCache;
          let keep = c.number.length;
          while (keep > 0 && c.number[keep - 1] > more.after) keep--;
          for (const k of ["number", "step", "value"]) { c[k].length = keep; c[k].push(...more[k]); }
          c.finishedThrough = more.finishedThrough;
        }
        plots.intermediate(gd, data, intermediateCache);
      };
      ensure([select("intermediate-metric", "Metric", metrics, P.metric, (v) => { P.metric = v; load(true).catch(reportError); })]);
      await load(false);
    }
  }

  // --- loading and live updates ---------------------------------------------------------
  let lastPhase = null;
  async function refresh() {
    const before = data.version;
    const [obj] = await Promise.all([api(base), data.load()]);
    state.obj = obj;
    drawHeader();
    const bestName = obj.status.currentOptimalTrial ? obj.status.currentOptimalTrial.bestTrialName : "";
    if (bestName !== state.bestName || state.phase_ !== lastPhase) {
      lastPhase = state.phase_;
      loadBest().catch(reportError);
    }
    if (data.version !== before) {
      if (table && table._bestRefresh) table._bestRefresh();
      applyFilters();
      drawParallel();
      await drawPlot();
    }
  }

  // First paint: the table and parallel coordinates as soon as the trials are in; then
  // plotly.js (parsing it takes the main thread for a while) and the other plots.
  let obj;
  try {
    [obj] = await Promise.all([api(base), data.load()]);
  } catch (e) {
    // Nothing of an experiment the caller may not see (or that is gone) stays on the page.
    purge(root);
    root.replaceChildren(h("h1", {}, name), h("p", { class: "error-line", id: "exp-error" }, e.message));
    throw e;
  }
  performance.mark("hf:data");
  state.obj = obj;
  drawHeader();
  buildTable();
  applyFilters();
  performance.mark("hf:table");
  drawTabs();
  await drawParallel();
  performance.mark("hf:parcoords");
  parcoords.dataset.drawn = String(data.version);
  loadBest().catch(reportError);
  // Let the drawn page paint before plotly.js takes the main thread to parse itself.
  await new Promise(requestAnimationFrame);
  await new Promise((resolve) => setTimeout(resolve, 50));
  await loadPlotly();
  selectTab(state.tab);

  const live = throttle(refresh, 1000);
  const stop = watch(`/apis/v1/namespaces/${enc(ns)}/events?watch=true&object=experiments/${enc(name)}`, (ev) => {
    if (ev.type === "DELETED" && ev.kind === "Experiment") {
      toast(`experiment ${name} was deleted`);
      return;
    }
    live();
  }, data.resourceVersion);
  return () => {
    stop();
    live.cancel();
    if (table) table.destroy();
    destroyParcoords(parcoords);
    purge(root);
  };
}

function runningPhrase(n) {
  if (n === 0) return "none is running";
  return n === 1 ? "the running one finishes" : `the ${n} running ones finish`;
}
