// Compare experiments: optimization histories overlaid, the best trial of each side by
// side, and one trial table over the parameters they share.
import { TrialData } from "./data.js";
import * as plots from "./plots.js";
import { VirtualTable } from "./table.js";
import { api, badge, count, enc, expPath, h, loadPlotly, num, purge, throttle, watch } from "./util.js";

export async function render(root, _params, query) {
  // Each experiment once (?e=X&e=X compared X with itself, every row twice).
  const keys = [...new Set(query.getAll("e").filter((k) => /^[^/]+\/[^/]+$/.test(k)))];
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
  let tableMode = null;  // whether the table's experiments share one objective

  async function load() {
    // One experiment that cannot be read (deleted, another namespace's) is said on its
    // card; the others are still compared (it blanked the whole page).
    const settled = await Promise.allSettled(sets.map(async (s) => {
      await s.data.load();
      s.best = await api(`${expPath(s.ns, s.name)}/best`);
    }));
    settled.forEach((r, k) => {
      sets[k].error = r.status === "rejected" ? (r.reason && r.reason.message) || String(r.reason) : null;
    });
    const shown = sets.filter((s) => !s.error);
    cards.replaceChildren(...sets.map((s, k) => {
      const head = h("h3", {}, h("a", { href: `/experiments/${enc(s.ns)}/${enc(s.name)}`, "data-link": "" }, s.key));
      const style = `border-top: 4px solid ${plots.PALETTE[k % plots.PALETTE.length]}`;
      if (s.error) return h("section", { class: "card", style }, head, h("p", { class: "error" }, s.error));
      const t = s.best.currentOptimalTrial;
      const metric = s.data.objective.metric;
      const bi = s.data.bestIndex();
      return h("section", { class: "card", style }, head,
        t.bestTrialName
          ? h("dl", { class: "kv" },
            h("dt", {}, "Trial"), h("dd", {}, h("a", { href: `/experiments/${enc(s.ns)}/${enc(s.name)}/trials/${enc(t.bestTrialName)}`, "data-link": "" }, t.bestTrialName)),
            h("dt", {}, `${s.data.objective.type} ${metric}`), h("dd", { class: "mono" }, bi >= 0 ? num(s.data.cols.metrics[metric][bi], 6) : "–"),
            t.parameterAssignments.map((p) => [h("dt", {}, p.name), h("dd", { class: "mono" }, num(p.value, 6))]),
            h("dt", {}, "Trials"), h("dd", {}, count(s.data.n)))
          : h("p", { class: "sub" }, "No trial has succeeded yet."));
    }));
    await plotlyReady;
    const series = shown.map((s) => ({ name: s.key, data: s.data, color: plots.PALETTE[sets.indexOf(s) % plots.PALETTE.length] }));
    plots.histories(hist, series);
    plots.edf(edf, shown.map((s) => ({ name: s.key, metric: s.data.objective.metric,
      values: s.data.completed().map((i) => s.data.cols.metrics[s.data.objective.metric][i]) })));
    drawTable(shown);
  }

  // Rank of each trial among its experiment's completed ones, by its own direction (1 =
  // its best): what the table sorts on when the experiments' objectives differ.
  function ranks(s) {
    const d = s.data;
    const col = d.cols.metrics[d.objective.metric];
    const order = d.completed().filter((i) => col[i] !== null).sort((a, b) => (d.maximize ? col[b] - col[a] : col[a] - col[b]));
    const rank = new Array(d.n).fill(null);
    order.forEach((i, k) => { rank[i] = k + 1; });
    return rank;
  }

  function drawTable(shown) {
    if (!shown.length) {
      shared.textContent = "";
      tableHost.replaceChildren();
      return;
    }
    const names = shown.map((s) => new Set(s.data.parameters.map((p) => p.name)));
    const common = shown[0].data.parameters.map((p) => p.name).filter((p) => names.every((n) => n.has(p)));
    const first = shown[0].data;
    const same = shown.every((s) => s.data.objective.metric === first.objective.metric && s.data.maximize === first.maximize);
    shared.textContent = (common.length ? `Shared parameters: ${common.join(", ")}` : "These experiments share no parameter.")
      + (same ? "" : " Their objectives differ: each trial's rank is within its own experiment (1 = its best).");
    // One row per trial of every experiment: (set index, row index) packed into arrays.
    const which = [];
    const at = [];
    shown.forEach((s, k) => { for (let i = 0; i < s.data.n; i++) { which.push(k); at.push(i); } });
    const rank = shown.map(ranks);
    const get = (j) => shown[which[j]].data;
    const objectiveOf = (j) => get(j).cols.metrics[get(j).objective.metric][at[j]];
    const cols = [
      { key: "experiment", label: "Experiment", value: (j) => shown[which[j]].key, width: 200 },
      { key: "name", label: "Trial", value: (j) => get(j).cols.name[at[j]], width: 190,
        render: (j, cell) => {
          const s = shown[which[j]];
          cell.replaceChildren(h("a", { href: `/experiments/${enc(s.ns)}/${enc(s.name)}/trials/${enc(s.data.cols.name[at[j]])}`, "data-link": "" }, s.data.cols.name[at[j]]));
        } },
      { key: "phase", label: "Phase", value: (j) => get(j).cols.phase[at[j]], width: 130,
        render: (j, cell) => cell.replaceChildren(badge(get(j).cols.phase[at[j]])) },
      same
        ? { key: "objective", label: "Objective", value: objectiveOf, text: (j) => num(objectiveOf(j), 6), numeric: true, width: 120 }
        : { key: "rank", label: "Rank", value: (j) => rank[which[j]][at[j]], text: (j) => (rank[which[j]][at[j]] ?? "–").toString(), numeric: true, width: 80 },
      ...(same ? [] : [{ key: "objective", label: "Objective", value: (j) => `${get(j).objective.metric}=${num(objectiveOf(j), 6)}`, width: 170 }]),
      ...common.map((p) => ({ key: `p:${p}`, label: p, value: (j) => get(j).cols.params[p][at[j]],
        text: (j) => num(get(j).cols.params[p][at[j]], 6), numeric: typeof first.cols.params[p][0] === "number", width: 120 })),
    ];
    if (table && tableMode === same) {
      table.setColumns(cols, cols.map((c) => c.key));  // a refresh keeps the user's sort
    } else {
      if (table) table.destroy();
      table = new VirtualTable({ columns: cols, label: "Trials of the compared experiments", height: 420 });
      tableHost.replaceChildren(table.el);
      tableMode = same;
      if (same) table.sortBy("objective", first.maximize ? -1 : 1);
      else table.sortBy("rank", 1);
    }
    table.setRows(which.map((_, j) => j));
  }

  await load();
  const refresh = throttle(load, 2000);
  const stops = sets.map((s) => watch(`/apis/v1/namespaces/${enc(s.ns)}/events?watch=true&object=experiments/${enc(s.name)}`, () => refresh(), s.data.resourceVersion));
  return () => { for (const stop of stops) stop(); refresh.cancel(); if (table) table.destroy(); purge(root); };
}
