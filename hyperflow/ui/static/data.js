// An experiment's trials in the browser, as columns, kept current incrementally: each
// fetch asks only for the trials after `finishedThrough` of the previous answer (the
// ones before it have all finished and never change).
import { api, expPath } from "./util.js";

const COLUMNS = ["number", "name", "phase", "reason", "value", "observations", "created", "started", "completed"];

export class TrialData {
  constructor(ns, name) {
    this.ns = ns;
    this.name = name;
    this.uid = null;
    this.through = -1;
    this.objective = null;
    this.parameters = [];
    this.cols = null;
    this.version = 0; // bumps on every change (plots redraw only when it moved)
  }

  get n() {
    return this.cols ? this.cols.number.length : 0;
  }

  async load() {
    const resp = await api(`${expPath(this.ns, this.name)}/trialtable?after=${this.uid ? this.through : -1}`);
    this.merge(resp);
    return resp;
  }

  merge(resp) {
    if (resp.uid !== this.uid || !this.cols) {
      this.uid = resp.uid;
      this.cols = { params: {}, metrics: {} };
      for (const c of COLUMNS) this.cols[c] = [];
      for (const p of resp.parameters) this.cols.params[p.name] = [];
      for (const m of resp.objective.metrics) this.cols.metrics[m] = [];
    }
    this.objective = resp.objective;
    this.parameters = resp.parameters;
    const cols = this.cols;
    // Drop what is numbered above `after` (it is all in the answer), then append.
    let keep = cols.number.length;
    while (keep > 0 && cols.number[keep - 1] > resp.after) keep--;
    const t = resp.trials;
    const cut = (arr, add) => {
      arr.length = keep;
      for (let k = 0; k < add.length; k++) arr.push(add[k]);
    };
    for (const c of COLUMNS) cut(cols[c], t[c]);
    for (const p of Object.keys(cols.params)) cut(cols.params[p], t.params[p] || []);
    for (const m of Object.keys(cols.metrics)) cut(cols.metrics[m], t.metrics[m] || []);
    this.through = resp.finishedThrough;
    this.resourceVersion = resp.resourceVersion;
    this.version++;
  }

  get maximize() {
    return this.objective && this.objective.type === "maximize";
  }

  // Indices of succeeded trials with an objective value.
  completed(metric) {
    const m = metric || this.objective.metric;
    const vals = this.cols.metrics[m];
    const out = [];
    for (let i = 0; i < this.n; i++) {
      if (this.cols.phase[i] === "Succeeded" && vals[i] !== null && vals[i] !== undefined) out.push(i);
    }
    return out;
  }

  bestIndex() {
    const vals = this.cols.metrics[this.objective.metric];
    let best = -1;
    for (const i of this.completed()) {
      if (best < 0 || (this.maximize ? vals[i] > vals[best] : vals[i] < vals[best])) best = i;
    }
    return best;
  }

  phaseCounts() {
    const counts = {};
    for (const p of this.cols.phase) counts[p] = (counts[p] || 0) + 1;
    return counts;
  }
}

// A parameter's values as axis coordinates: categorical ones by index, log ones in log10.
export function axisOf(param) {
  if (param.choices) {
    const labels = param.choices.map(String);
    const index = new Map(labels.map((c, i) => [c, i]));
    return {
      kind: "category",
      labels,
      to: (v) => (v === null || v === undefined ? null : index.has(String(v)) ? index.get(String(v)) : null),
      from: (x) => labels[Math.round(x)],
    };
  }
  if (param.log) {
    return { kind: "log", to: (v) => (v > 0 ? Math.log10(v) : null), from: (x) => 10 ** x };
  }
  return { kind: "linear", to: (v) => (v === null || v === undefined ? null : Number(v)), from: (x) => x };
}
