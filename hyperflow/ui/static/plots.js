// Plot builders: each turns data the page already holds (or one server answer) into a
// plotly figure. Above a few thousand points scatter plots use WebGL (scattergl).
import { axisOf } from "./data.js";
import { draw as drawParcoords } from "./parcoords.js";
import { num, plotly, plotLayout, PLOT_CONFIG } from "./util.js";

const GL_FROM = 3000;
const BLUE = "#1a73e8";
const GREY = "#8a94a3";
const RED = "#d93025";
const ORANGE = "#e37400";
const PALETTE = ["#1a73e8", "#d93025", "#188038", "#e37400", "#9334e6", "#007b83", "#b0008e", "#5f6368"];

function scatterType(n) {
  return n > GL_FROM ? "scattergl" : "scatter";
}

function react(gd, traces, layout) {
  return plotly().react(gd, traces, plotLayout(layout), PLOT_CONFIG);
}

function paramLabel(p) {
  return p.log ? `${p.name} (log)` : p.name;
}

// Objective value of each succeeded trial by trial number, and the best value so far.
export function history(gd, data, { name = null, color = BLUE, extra = [] } = {}) {
  const m = data.objective.metric;
  const idx = data.completed();
  const x = idx.map((i) => data.cols.number[i]);
  const y = idx.map((i) => data.cols.metrics[m][i]);
  const bx = [];
  const by = [];
  let best = null;
  for (let k = 0; k < idx.length; k++) {
    const v = y[k];
    if (best === null || (data.maximize ? v > best : v < best)) best = v;
    bx.push(x[k]);
    by.push(best);
  }
  const traces = [
    {
      type: scatterType(x.length), mode: "markers", name: name ? `${name}: ${m}` : m, x, y,
      marker: { color, size: 6, opacity: 0.55 },
      text: idx.map((i) => data.cols.name[i]), hovertemplate: "%{text}<br>trial %{x}<br>%{y}<extra></extra>",
    },
    { type: "scatter", mode: "lines", name: name ? `${name}: best` : "best value", x: bx, y: by,
      line: { color: name ? color : RED, width: 2, shape: "hv" } },
    ...extra,
  ];
  return react(gd, traces, {
    xaxis: { title: { text: "trial number" }, zeroline: false },
    yaxis: { title: { text: m } },
    legend: { orientation: "h", y: 1.12 },
  });
}

// Parallel coordinates of the parameters and metrics of succeeded trials (own canvas
// drawing, see parcoords.js). `ranges` are brushed ranges in axis space by key
// (p:NAME / m:NAME); brushing calls onBrush(ranges).
export function parallel(el, data, ranges, onBrush) {
  const idx = data.completed();
  const dims = [];
  for (const p of data.parameters) {
    const axis = axisOf(p);
    const col = data.cols.params[p.name];
    const values = idx.map((i) => axis.to(col[i]));
    let min, max, ticks;
    if (axis.kind === "category") {
      min = 0;
      max = Math.max(1, axis.labels.length - 1);
      ticks = axis.labels.map((t, k) => [k, t]);
    } else if (axis.kind === "log") {
      min = Math.log10(p.min > 0 ? p.min : 1e-10);
      max = Math.log10(p.max);
      ticks = [];
      for (let e = Math.ceil(min); e <= Math.floor(max); e++) ticks.push([e, num(10 ** e)]);
    } else {
      [min, max] = [p.min, p.max];
      ticks = niceTicks(min, max);
    }
    dims.push({ key: `p:${p.name}`, label: paramLabel(p), values, min, max, ticks });
  }
  for (const m of data.objective.metrics) {
    const col = data.cols.metrics[m];
    const values = idx.map((i) => col[i]);
    let min = Infinity;
    let max = -Infinity;
    for (const v of values) if (v !== null && Number.isFinite(v)) { if (v < min) min = v; if (v > max) max = v; }
    if (!Number.isFinite(min)) { min = 0; max = 1; }
    if (min === max) { min -= 0.5; max += 0.5; }
    dims.push({ key: `m:${m}`, label: m, values, min, max, ticks: niceTicks(min, max) });
  }
  const objective = data.cols.metrics[data.objective.metric];
  drawParcoords(el, {
    dims,
    color: idx.map((i) => objective[i]),
    colorLabel: data.objective.metric,
    reverse: !data.maximize,
    ranges: new Map(ranges),
    onBrush,
  });
  return Promise.resolve();
}

function niceTicks(min, max, count = 5) {
  const span = max - min || 1;
  const raw = span / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((f) => f * mag).find((s) => s >= raw) || mag * 10;
  const out = [];
  for (let v = Math.ceil(min / step) * step; v <= max + step * 1e-9; v += step) {
    out.push([v, num(Number(v.toPrecision(12)), 4)]);
  }
  return out;
}

export function importance(gd, resp) {
  const items = [...resp.importances].reverse();
  return react(gd, [{
    type: "bar", orientation: "h", x: items.map((d) => d.importance), y: items.map((d) => d.name),
    marker: { color: BLUE }, text: items.map((d) => num(d.importance, 3)), textposition: "auto",
    hovertemplate: "%{y}: %{x:.4f}<extra></extra>",
  }], {
    xaxis: { title: { text: `importance for ${resp.metric} (${resp.evaluator})` }, range: [0, 1] },
    margin: { l: 140, r: 20, t: 20, b: 50 },
  });
}

// The objective against one parameter, coloured by trial number.
export function slice(gd, data, param) {
  const idx = data.completed();
  const p = data.parameters.find((q) => q.name === param) || data.parameters[0];
  const col = data.cols.params[p.name];
  const m = data.objective.metric;
  return react(gd, [{
    type: scatterType(idx.length), mode: "markers",
    x: idx.map((i) => col[i]), y: idx.map((i) => data.cols.metrics[m][i]),
    marker: { color: idx.map((i) => data.cols.number[i]), colorscale: "Blues", showscale: true, size: 6,
      colorbar: { title: { text: "trial" }, thickness: 12 } },
    text: idx.map((i) => data.cols.name[i]), hovertemplate: "%{text}<br>%{x}<br>%{y}<extra></extra>",
  }], {
    xaxis: { title: { text: p.name }, type: p.log ? "log" : p.choices ? "category" : "linear" },
    yaxis: { title: { text: m } },
  });
}

export function contour(gd, data, resp) {
  const px = data.parameters.find((p) => p.name === resp.x);
  const py = data.parameters.find((p) => p.name === resp.y);
  const idx = data.completed(resp.metric);
  const ax = axisOf(px);
  const ay = axisOf(py);
  const coord = (axis, v) => (axis.kind === "category" ? axis.to(v) : v);
  const traces = [];
  if (resp.z.length) {
    traces.push({
      type: "contour", x: resp.gridX, y: resp.gridY, z: resp.z, colorscale: "Viridis",
      reversescale: !data.maximize, contours: { coloring: "heatmap" }, line: { width: 0.5 },
      colorbar: { title: { text: resp.metric }, thickness: 12 }, hoverinfo: "skip",
    });
  }
  traces.push({
    type: scatterType(idx.length), mode: "markers", name: "trials",
    x: idx.map((i) => coord(ax, data.cols.params[px.name][i])),
    y: idx.map((i) => coord(ay, data.cols.params[py.name][i])),
    marker: { color: "#000", size: 4, opacity: 0.6 }, showlegend: false,
    text: idx.map((i) => `${data.cols.name[i]}: ${num(data.cols.metrics[resp.metric][i])}`),
    hovertemplate: "%{text}<extra></extra>",
  });
  const axisLayout = (p, axis) => {
    if (axis.kind === "category") return { title: { text: p.name }, tickvals: axis.labels.map((_, k) => k), ticktext: axis.labels };
    return { title: { text: p.name }, type: axis.kind === "log" ? "log" : "linear" };
  };
  return react(gd, traces, { xaxis: axisLayout(px, ax), yaxis: axisLayout(py, ay) });
}

// Each trial's curve of a metric by step (one trace per group, trials separated by gaps);
// early-stopped trials in orange with a cross where they stopped.
export function intermediate(gd, data, resp) {
  const phaseOf = new Map();
  for (let i = 0; i < data.n; i++) phaseOf.set(data.cols.number[i], data.cols.phase[i]);
  const groups = { done: { x: [], y: [] }, stopped: { x: [], y: [] }, other: { x: [], y: [] } };
  const ends = { x: [], y: [], text: [] };
  const n = resp.number.length;
  for (let k = 0; k < n; k++) {
    const t = resp.number[k];
    const phase = phaseOf.get(t);
    const g = phase === "EarlyStopped" ? groups.stopped : phase === "Succeeded" ? groups.done : groups.other;
    g.x.push(resp.step[k]);
    g.y.push(resp.value[k]);
    if (k === n - 1 || resp.number[k + 1] !== t) {
      g.x.push(null);
      g.y.push(null);
      if (phase === "EarlyStopped") {
        ends.x.push(resp.step[k]);
        ends.y.push(resp.value[k]);
        ends.text.push(`trial ${t} early-stopped`);
      }
    }
  }
  const line = (g, name, color, width) => ({
    type: "scatter", mode: "lines", name, x: g.x, y: g.y, connectgaps: false,
    line: { color, width }, opacity: 0.6, hoverinfo: "skip",
  });
  const traces = [
    line(groups.done, "succeeded", BLUE, 1),
    line(groups.other, "running / other", GREY, 1),
    line(groups.stopped, "early-stopped", ORANGE, 1),
    { type: scatterType(ends.x.length), mode: "markers", name: "stopped here", x: ends.x, y: ends.y, text: ends.text,
      marker: { symbol: "x", color: ORANGE, size: 8 }, hovertemplate: "%{text}<br>step %{x}: %{y}<extra></extra>" },
  ];
  return react(gd, traces, {
    xaxis: { title: { text: "step" } }, yaxis: { title: { text: resp.metric } },
    legend: { orientation: "h", y: 1.12 },
  });
}

// Empirical distribution function of the objective over succeeded trials.
export function edf(gd, series) {
  // Series of different metrics get a row each: one x axis per metric, never one axis
  // titled by the first metric for values of another.
  const metrics = [...new Set(series.map((s) => s.metric))];
  const traces = series.map((s, k) => {
    const v = [...s.values].sort((a, b) => a - b);
    const r = metrics.indexOf(s.metric);
    return {
      type: "scatter", mode: "lines", name: s.name, x: v, y: v.map((_, j) => (j + 1) / v.length),
      xaxis: axisName("x", r), yaxis: axisName("y", r),
      line: { shape: "hv", color: PALETTE[k % PALETTE.length], width: 2 },
    };
  });
  const layout = { legend: { orientation: "h", y: 1.12 } };
  metrics.forEach((m, r) => {
    layout[axisName("xaxis", r)] = { title: { text: m } };
    layout[axisName("yaxis", r)] = { title: { text: metrics.length > 1 ? "fraction ≤" : "fraction of trials ≤ value" }, range: [0, 1.02] };
  });
  gridRows(gd, layout, metrics.length);
  return react(gd, traces, layout);
}

// Optimization histories of several experiments (compare): one row per objective (metric
// and direction), each titled by it; the best-so-far line of each experiment follows its
// own direction.
export function histories(gd, series) {
  const key = (s) => `${s.data.objective.metric} (${s.data.maximize ? "maximize" : "minimize"})`;
  const rows = [...new Set(series.map(key))];
  const traces = [];
  series.forEach((s) => {
    const d = s.data;
    const m = d.objective.metric;
    const idx = d.completed();
    const r = rows.indexOf(key(s));
    const x = idx.map((i) => d.cols.number[i]);
    const y = idx.map((i) => d.cols.metrics[m][i]);
    let best = null;
    const by = y.map((v) => { if (best === null || (d.maximize ? v > best : v < best)) best = v; return best; });
    const axes = { xaxis: axisName("x", r), yaxis: axisName("y", r) };
    traces.push({ type: scatterType(x.length), mode: "markers", name: `${s.name}: ${m}`, x, y, ...axes,
      marker: { color: s.color, size: 6, opacity: 0.5 },
      text: idx.map((i) => d.cols.name[i]), hovertemplate: "%{text}<br>trial %{x}<br>%{y}<extra></extra>" });
    traces.push({ type: "scatter", mode: "lines", name: `${s.name}: best`, x, y: by, ...axes,
      line: { color: s.color, width: 2, shape: "hv" } });
  });
  const layout = { legend: { orientation: "h", y: 1.12 } };
  rows.forEach((label, r) => {
    layout[axisName("yaxis", r)] = { title: { text: label } };
    layout[axisName("xaxis", r)] = { title: { text: r === rows.length - 1 ? "trial number" : "" }, zeroline: false };
  });
  gridRows(gd, layout, rows.length);
  return react(gd, traces, layout);
}

function axisName(prefix, r) {
  return r === 0 ? prefix : `${prefix}${r + 1}`;
}

function gridRows(gd, layout, n) {
  if (n > 1) {
    layout.grid = { rows: n, columns: 1, pattern: "independent" };
    gd.style.height = `${Math.max(320, 240 * n)}px`;
  }
}

// Any two metrics against each other (objective with additionalMetricNames).
export function scatter2(gd, data, mx, my) {
  const idx = [];
  const X = data.cols.metrics[mx];
  const Y = data.cols.metrics[my];
  for (let i = 0; i < data.n; i++) {
    if (data.cols.phase[i] === "Succeeded" && X[i] !== null && Y[i] !== null) idx.push(i);
  }
  return react(gd, [{
    type: scatterType(idx.length), mode: "markers", x: idx.map((i) => X[i]), y: idx.map((i) => Y[i]),
    marker: { color: idx.map((i) => data.cols.number[i]), colorscale: "Blues", size: 6, showscale: true,
      colorbar: { title: { text: "trial" }, thickness: 12 } },
    text: idx.map((i) => data.cols.name[i]), hovertemplate: "%{text}<br>%{x}, %{y}<extra></extra>",
  }], { xaxis: { title: { text: mx } }, yaxis: { title: { text: my } } });
}

// Curves of one trial's metrics by step (trial page).
export function curves(gd, logs) {
  const byName = new Map();
  logs.forEach((l, k) => {
    const name = l.metric.name;
    if (!byName.has(name)) byName.set(name, { x: [], y: [] });
    const s = byName.get(name);
    s.x.push(l.step ?? s.x.length);
    s.y.push(Number(l.metric.value));
  });
  const traces = [...byName.entries()].map(([name, s], k) => ({
    type: "scatter", mode: s.x.length > 1 ? "lines+markers" : "markers", name, x: s.x, y: s.y,
    yaxis: k === 0 ? "y" : `y${k + 1}`, line: { color: PALETTE[k % PALETTE.length] },
  }));
  const layout = { xaxis: { title: { text: "step" } }, legend: { orientation: "h", y: 1.12 } };
  const n = traces.length;
  if (n > 1) {
    layout.grid = { rows: n, columns: 1, pattern: "independent" };
    traces.forEach((t, k) => {
      t.xaxis = k === 0 ? "x" : `x${k + 1}`;
      layout[k === 0 ? "yaxis" : `yaxis${k + 1}`] = { title: { text: t.name } };
      // "step" under the bottom plot only (on the top one it was drawn over the next).
      layout[k === 0 ? "xaxis" : `xaxis${k + 1}`] = { title: { text: k === n - 1 ? "step" : "" } };
    });
  } else if (n === 1) {
    layout.yaxis = { title: { text: traces[0].name } };
  }
  return react(gd, traces, layout);
}

export function timeSeries(gd, series, yTitle) {
  const traces = series.map((s, k) => ({
    // A few samples (a service just started) show as points, not an invisible line.
    type: "scatter", mode: s.x.length < 3 ? "lines+markers" : "lines", name: s.name,
    x: s.x.map((t) => new Date(t * 1000)), y: s.y,
    // A dashed series (a target, as replicas desired) stays visible where it meets another.
    line: { color: PALETTE[k % PALETTE.length], width: 2, dash: s.dash || "solid" },
  }));
  // The last hour, whatever the samples span (one sample spanned a millisecond).
  const last = Math.max(0, ...series.map((s) => (s.x.length ? s.x[s.x.length - 1] : 0))) || Date.now() / 1000;
  const xaxis = { type: "date", range: [new Date((last - 3600) * 1000), new Date(last * 1000)] };
  return react(gd, traces, { xaxis, yaxis: { title: { text: yTitle }, rangemode: "tozero" },
    legend: { orientation: "h", y: 1.15 }, margin: { l: 60, r: 20, t: 30, b: 40 } });
}

export { PALETTE };
