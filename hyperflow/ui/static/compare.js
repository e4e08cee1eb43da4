// Compare experiments: optimization histories overlaid, the best trial of each side by
// side, and one trial table over the parameters they share.
import { TrialData } from "./data.js";
import * as plots from "./plots.js";
import { VirtualTable } from "./table.js";
import { api, badge, count, enc, expPath, h, loadPlotly, num, purge, throttle, watch } from "./util.js";

export async function render(root, _params, query) {
  const keys = query.getAll("e").filter((k) => /^[^/]+\/[^/]+$/.test(k));
  root.append(h("p", { class: "sub" }, h("a", { href: "/", "data-link": "" }, "Experiments"), " /"),
    h("h1", {}, `Compare ${keys.length} experiments`));
  if (keys.length < 2) {
    root.append(h("p", {}, "Select two or more experiments on the ", h("a", { href: "/", "data-link": "" }, "experiments list"), " to compare them."));
    return null;
  }
  const sets = keys.map((k) => {
    const [ns, name] = k.split("/");
    return { key: k, ns, name, data: new TrialData(ns, name), best: null };
  });
  const cards = h("div", { class: "cards", id: "compare-best" });
  const hist = h("div", { class: "plot", id: "plot-compare-history", role: "img", "aria-label": "Optimization histories" });
  const edf = h("div", { class: "plot short", id: "plot-compare-edf", role: "img", "aria-label": "Empirical distributions" });
  const tableHost = h("div", { id: "compare-table" });
  const shared = h("p", { class: "sub", id: "shared-params" });
  root.append(h("h2", {}, "Best trials"), cards, h("h2", {}, "Optimization history"), hist,
    h("h2", {}, "Empirical distribution"), edf, h("h2", {}, "Trials"), shared, tableHost);
  const plotlyReady = loadPlotly();
  let table = null;

  async function load() {
    await Promise.all(sets.map(async (s) => {
      await s.data.load();
      s.best = await api(`${expPath(s.ns, s.name)}/best`);
    }));
    cards.replaceChildren(...sets.map((s, k) => {
      const t = s.best.currentOptimalTrial;
      const metric = s.data.objective.metric;
      const bi = s.data.bestIndex();
      return h("section", { class: "card", style: `border-top: 4px solid ${plots.PALETTE[k % plots.PALETTE.length]}` },
        h("h3", {}, h("a", { href: `/experiments/${enc(s.ns)}/${enc(s.name)}`, "data-link": "" }, s.key)),
        t.bestTrialName
          ? h("dl", { class: "kv" },
            h("dt", {}, "Trial"), h("dd", {}, h("a", { href: `/experiments/${enc(s.ns)}/${enc(s.name)}/trials/${enc(t.bestTrialName)}`, "data-link": "" }, t.bestTrialName)),
            h("dt", {}, `${s.data.objective.type} ${metric}`), h("dd", { class: "mono" }, bi >= 0 ? num(s.data.cols.metrics[metric][bi], 6) : "–"),
            t.parameterAssignments.map((p) => [h("dt", {}, p.name), h("dd", { class: "mono" }, num(p.value, 6))]),
            h("dt", {}, "Trials"), h("dd", {}, count(s.data.n)))
          : h("p", { class: "sub" }, "No trial has succeeded yet."));
    }));
    await plotlyReady;
    const first = sets[0].data;
    const extra = [];
    sets.slice(1).forEach((s, k) => {
      const d = s.data;
      const m = d.objective.metric;
      const idx = d.completed();
      let best = null;
      const color = plots.PALETTE[(k + 1) % plots.PALETTE.length];
      extra.push({ type: idx.length > 3000 ? "scattergl" : "scatter", mode: "markers", name: `${s.key}: ${m}`,
        x: idx.map((i) => d.cols.number[i]), y: idx.map((i) => d.cols.metrics[m][i]), marker: { color, size: 6, opacity: 0.5 } });
      extra.push({ type: "scatter", mode: "lines", name: `${s.key}: best`, line: { color, width: 2, shape: "hv" },
        x: idx.map((i) => d.cols.number[i]),
        y: idx.map((i) => { const v = d.cols.metrics[m][i]; if (best === null || (d.maximize ? v > best : v < best)) best = v; return best; }) });
    });
    plots.history(hist, first, { name: sets[0].key, color: plots.PALETTE[0], extra });
    plots.edf(edf, sets.map((s) => ({ name: s.key, metric: s.data.objective.metric,
      values: s.data.completed().map((i) => s.data.cols.metrics[s.data.objective.metric][i]) })));
    drawTable();
  }

  function drawTable() {
    const names = sets.map((s) => new Set(s.data.parameters.map((p) => p.name)));
    const common = sets[0].data.parameters.map((p) => p.name).filter((p) => names.every((n) => n.has(p)));
    shared.textContent = common.length ? `Shared parameters: ${common.join(", ")}` : "These experiments share no parameter.";
    // One row per trial of every experiment: (set index, row index) packed into arrays.
    const which = [];
    const at = [];
    sets.forEach((s, k) => { for (let i = 0; i < s.data.n; i++) { which.push(k); at.push(i); } });
    const get = (j) => sets[which[j]].data;
    const cols = [
      { key: "experiment", label: "Experiment", value: (j) => sets[which[j]].key, width: 200 },
      { key: "name", label: "Trial", value: (j) => get(j).cols.name[at[j]], width: 190,
        render: (j, cell) => {
          const s = sets[which[j]];
          cell.replaceChildren(h("a", { href: `/experiments/${enc(s.ns)}/${enc(s.name)}/trials/${enc(s.data.cols.name[at[j]])}`, "data-link": "" }, s.data.cols.name[at[j]]));
        } },
      { key: "phase", label: "Phase", value: (j) => get(j).cols.phase[at[j]], width: 130,
        render: (j, cell) => cell.replaceChildren(badge(get(j).cols.phase[at[j]])) },
      { key: "objective", label: "Objective", value: (j) => get(j).cols.metrics[get(j).objective.metric][at[j]],
        text: (j) => num(get(j).cols.metrics[get(j).objective.metric][at[j]], 6), numeric: true, width: 120 },
      ...common.map((p) => ({ key: `p:${p}`, label: p, value: (j) => get(j).cols.params[p][at[j]],
        text: (j) => num(get(j).cols.params[p][at[j]], 6), numeric: typeof get(0).cols.params[p][0] === "number", width: 120 })),
    ];
    if (!table) {
      table = new VirtualTable({ columns: cols, label: "Trials of the compared experiments", height: 420 });
      tableHost.replaceChildren(table.el);
      table.sortBy("objective", sets[0].data.maximize ? -1 : 1);
    } else {
      table.setColumns(cols, cols.map((c) => c.key));
    }
    table.setRows(which.map((_, j) => j));
  }

  await load();
  const refresh = throttle(load, 2000);
  const stops = sets.map((s) => watch(`/apis/v1/namespaces/${enc(s.ns)}/events?watch=true&object=experiments/${enc(s.name)}`, () => refresh(), s.data.resourceVersion));
  return () => { for (const stop of stops) stop(); refresh.cancel(); if (table) table.destroy(); purge(root); };
}
