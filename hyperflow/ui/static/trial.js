// One trial: assignments, status with reason, every metric's curve by step, the log
// (followed while the trial runs), its MLflow run and, when it saved a model, "deploy".
import { ctx } from "./app.js";
import { deployDialog } from "./deploy.js";
import * as plots from "./plots.js";
import {
  api, badge, fill, duration, enc, expPath, h, loadPlotly, mlflowLink, num, parseTime, purge,
  reportError, throttle, watch, when,
} from "./util.js";

const LOG_KEEP = 512 * 1024; // characters of the log kept on screen (its tail)

export async function render(root, [ns, name, trial]) {
  const base = `${expPath(ns, name)}/trials/${enc(trial)}`;
  const head = h("h1", {}, trial);
  const info = h("section", { class: "card", "aria-labelledby": "params-h" });
  const status = h("section", { class: "card", "aria-labelledby": "tstatus-h" });
  const curves = h("div", { class: "plot", id: "plot-curves", role: "img", "aria-label": "Metric curves by step" });
  const logBox = h("pre", { class: "log", id: "trial-log", tabindex: "0", "aria-label": "Trial log", "aria-live": "off" });
  const logState = h("span", { class: "sub", id: "log-state" });
  root.append(
    h("p", { class: "sub" }, h("a", { href: "/", "data-link": "" }, "Experiments"), " / ",
      h("a", { href: `/experiments/${enc(ns)}/${enc(name)}`, "data-link": "" }, `${ns}/${name}`), " /"),
    head, h("div", { class: "cards" }, info, status),
    h("h2", {}, "Metrics by step"), curves,
    h("h2", {}, "Log ", logState), logBox,
  );
  const plotlyReady = loadPlotly();
  let obj = null;
  let finished = false;
  let artifacts = null;

  async function load() {
    obj = await api(base);
    const cond = obj.status.conditions[0] || {};
    finished = !["Created", "Running"].includes(cond.type);
    head.replaceChildren(trial, " ", badge(cond.type, cond.message));
    // A running trial's summary is made when it ends: until then, from its reported values
    // (it said "none reported yet" above a chart of them).
    const summary = obj.status.observation.metrics.length
      ? obj.status.observation.metrics
      : summarize((obj.status.observationLog && obj.status.observationLog.metricLogs) || []);
    fill(info, h("h2", { id: "params-h" }, "Parameters"),
      h("dl", { class: "kv" }, obj.spec.parameterAssignments.map((p) => [h("dt", {}, p.name), h("dd", { class: "mono" }, num(p.value, 6))])),
      h("h3", {}, summary.length && !obj.status.observation.metrics.length ? "Metrics so far" : "Metrics"),
      summary.length
        ? h("dl", { class: "kv" }, summary.map((m) => [h("dt", {}, m.name),
          h("dd", { class: "mono" }, `min ${num(Number(m.min), 6)} · max ${num(Number(m.max), 6)} · latest ${num(Number(m.latest), 6)}`)]))
        : h("p", { class: "sub" }, "none reported yet"));
    const st = obj.status;
    const start = parseTime(st.startTime);
    const end = parseTime(st.completionTime);
    if (finished && !artifacts) artifacts = await api(`${base}/artifacts`);
    const deploy = artifacts && artifacts.storageUri && ctx.config.services
      ? h("button", { type: "button", class: "primary", id: "deploy",
        onclick: () => deployDialog({ ns, name: trial, storageUri: artifacts.storageUri, experiment: name, trial }) }, "Deploy…")
      : null;
    fill(status, h("h2", { id: "tstatus-h" }, "Status"),
      h("dl", { class: "kv" },
        h("dt", {}, "Phase"), h("dd", {}, cond.type),
        h("dt", {}, "Reason"), h("dd", {}, cond.reason || "–"),
        h("dt", {}, "Message"), h("dd", {}, cond.message || "–"),
        h("dt", {}, "Exit code"), h("dd", {}, st.exitCode ?? "–"),
        h("dt", {}, "Created"), h("dd", {}, when(parseTime(obj.metadata.creationTimestamp))),
        h("dt", {}, "Duration"), h("dd", {}, start ? duration((end || Date.now() / 1000) - start, true) : "–"),
      ),
      h("p", {}, mlflowLink(ctx.config, st.mlflowRunId)),
      artifacts && artifacts.storageUri ? h("p", { class: "sub" }, "Model: ", h("code", {}, artifacts.storageUri)) : null,
      deploy);
    drawCurves(st).catch(reportError);
  }

  async function drawCurves(st) {
    await plotlyReady;
    const logs = (st.observationLog && st.observationLog.metricLogs) || [];
    if (logs.length) plots.curves(curves, logs);
    else curves.replaceChildren(h("p", { class: "plot-note" }, "No metric reported yet."));
    curves.dataset.points = String(logs.length);
  }

  // The log: read whole when the trial has finished, else followed as a stream.
  const aborter = new AbortController();
  async function followLog() {
    logState.textContent = finished ? "" : "(following)";
    const r = await fetch(`${base}/log${finished ? "" : "?follow=true"}`, {
      signal: aborter.signal, headers: { "X-Requested-With": "hyperflow-ui" }, credentials: "same-origin",
    });
    if (!r.ok) {
      logState.textContent = `(${r.status})`;
      return;
    }
    const reader = r.body.getReader();
    const decoder = new TextDecoder();
    let text = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      const atBottom = logBox.scrollTop + logBox.clientHeight >= logBox.scrollHeight - 4;
      text += decoder.decode(value, { stream: true });
      if (text.length > LOG_KEEP) text = text.slice(text.length - LOG_KEEP);
      logBox.textContent = text;
      if (atBottom) logBox.scrollTop = logBox.scrollHeight;
    }
    logState.textContent = text ? "" : "(empty)";
    logBox.dataset.done = "1";
  }

  try {
    await load();
  } catch (e) {
    // A trial that is gone, or of a namespace the caller may not see: said on the page.
    purge(root);
    root.replaceChildren(h("h1", {}, trial), h("p", { class: "error-line", id: "trial-error" }, e.message));
    throw e;
  }
  followLog().catch((e) => { if (e.name !== "AbortError") reportError(e); });
  const refresh = throttle(async () => {
    const was = finished;
    await load();
    if (was !== finished) logState.textContent = "";
  }, 1000);
  const stop = watch(`/apis/v1/namespaces/${enc(ns)}/events?watch=true&object=experiments/${enc(name)}`, (ev) => {
    if (ev.kind === "Trial" && ev.name === trial) refresh();
  });
  // Reported values arrive without an event of their own: look again while it runs.
  const poll = setInterval(() => { if (!finished) refresh(); }, 2000);
  return () => { stop(); refresh.cancel(); clearInterval(poll); aborter.abort(); purge(root); };
}

function summarize(logs) {
  const by = new Map();
  for (const l of logs) {
    const v = Number(l.metric.value);
    const m = by.get(l.metric.name);
    if (!m) by.set(l.metric.name, { name: l.metric.name, min: v, max: v, latest: v });
    else Object.assign(m, { min: Math.min(m.min, v), max: Math.max(m.max, v), latest: v });
  }
  return [...by.values()];
}
