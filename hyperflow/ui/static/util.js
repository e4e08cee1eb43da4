// Shared helpers: the API client, DOM building, number/time formatting, the event stream.

export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.error) || `HTTP ${status}`);
    this.status = status;
    this.details = (body && body.details) || [];
  }
}

// Every call goes to the control plane's API, as the CLI's do. The header marks the
// request as the UI's (the API requires it for changes made with the login cookie).
export async function api(path, { method = "GET", body, type, signal } = {}) {
  const headers = { "X-Requested-With": "hyperflow-ui", Accept: "application/json" };
  let payload = body;
  if (body !== undefined && typeof body !== "string") {
    payload = JSON.stringify(body);
    headers["Content-Type"] = type || "application/json";
  } else if (body !== undefined) {
    headers["Content-Type"] = type || "application/yaml";
  }
  const r = await fetch(path, { method, headers, body: payload, signal, credentials: "same-origin" });
  const text = await r.text();
  let data = null;
  if (text) {
    try { data = JSON.parse(text); } catch { data = { error: text.slice(0, 300) }; }
  }
  if (!r.ok) {
    if (r.status === 401) window.dispatchEvent(new CustomEvent("hf-unauthorized"));
    throw new ApiError(r.status, data);
  }
  return data;
}

export function h(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") e.addEventListener(k.slice(2), v);
    else if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else if (k === "dataset") Object.assign(e.dataset, v);
    else if (k === "value") e.value = v;
    else if (k === "checked") e.checked = !!v;
    else e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const kid of kids.flat(Infinity)) {
    if (kid === null || kid === undefined || kid === false) continue;
    e.append(kid instanceof Node ? kid : String(kid));
  }
  return e;
}

export const enc = encodeURIComponent;

// replaceChildren, skipping null/false (replaceChildren itself would print "null").
export function fill(el, ...kids) {
  el.replaceChildren(...kids.flat(Infinity).filter((k) => k !== null && k !== undefined && k !== false));
  return el;
}

export function expPath(ns, name) {
  return `/apis/v1/namespaces/${enc(ns)}/experiments/${enc(name)}`;
}

// --- numbers and times -----------------------------------------------------------------
const intFmt = new Intl.NumberFormat("en-US");

// Up to 5 significant digits; integers with thousands separators; exponents when tiny/huge.
export function num(v, digits = 5) {
  if (v === null || v === undefined || v === "") return "–";
  if (typeof v === "string") {
    const f = Number(v);
    if (v.trim() === "" || Number.isNaN(f)) return v;
    v = f;
  }
  if (!Number.isFinite(v)) return String(v);
  if (Number.isInteger(v) && Math.abs(v) < 1e15) return intFmt.format(v);
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-4 || a >= 1e9)) return v.toExponential(digits - 1).replace(/\.?0+e/, "e");
  const s = Number(v.toPrecision(digits));
  return a >= 1000 ? intFmt.format(s) : String(s);
}

export function count(v) {
  return intFmt.format(v || 0);
}

// `whole`: the times it comes from are whole seconds (a Katib object's startTime and
// completionTime), so no tenths it does not know ("0.0 s" for a trial of 0.6 s).
export function duration(seconds, whole = false) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "–";
  const s = Math.max(0, seconds);
  if (whole && s < 60) return s < 1 ? "< 1 s" : `${Math.round(s)} s`;
  if (s < 10) return `${s.toFixed(1)} s`;
  if (s < 60) return `${Math.round(s)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(Math.floor(s % 60)).padStart(2, "0")}s`;
  const hrs = Math.floor(m / 60);
  if (hrs < 48) return `${hrs}h ${String(m % 60).padStart(2, "0")}m`;
  return `${Math.floor(hrs / 24)}d ${hrs % 24}h`;
}

export function age(ts) {
  if (!ts) return "–";
  return `${duration(Date.now() / 1000 - ts)} ago`;
}

export function when(ts) {
  if (!ts) return "–";
  const d = new Date(ts * 1000);
  return d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" });
}

export function parseTime(rfc) {
  return rfc ? Date.parse(rfc) / 1000 : null;
}

export function badge(phase, title, label) {
  return h("span", { class: `badge ph-${phase}`, title: title || null }, label || phase || "–");
}

// A service's Ready condition as a badge: "Ready" or "Not ready" (not "True"/"False").
export function readyBadge(condition) {
  const ok = condition.status === "True";
  return badge(ok ? "True" : "False", condition.message, ok ? "Ready" : "Not ready");
}

// --- feedback -----------------------------------------------------------------------------
export function toast(message, error = false) {
  const box = document.getElementById("toast");
  const item = h("div", { class: error ? "err" : "" }, message);
  box.append(item);
  setTimeout(() => item.remove(), error ? 8000 : 4000);
}

// A failed request's field problems (or its message) as the items of a dialog's list.
export function showProblems(list, e) {
  list.replaceChildren(...(e.details && e.details.length ? e.details : [{ path: "", message: e.message }])
    .map((d) => h("li", {}, d.path ? h("code", {}, d.path) : null, d.path ? ": " : "", d.message)));
}

// Run `fn` at most once per `ms`, the last call always eventually (live updates).
export function throttle(fn, ms) {
  let timer = null;
  let pending = false;
  let last = 0;
  const run = async () => {
    timer = null;
    if (!pending) return;
    pending = false;
    last = Date.now();
    try { await fn(); } catch (e) { reportError(e); }
  };
  const call = () => {
    pending = true;
    if (timer) return;
    timer = setTimeout(run, Math.max(0, ms - (Date.now() - last)));
  };
  call.cancel = () => { clearTimeout(timer); timer = null; pending = false; };
  return call;
}

export function reportError(e) {
  if (e && e.name === "AbortError") return;
  if (e instanceof ApiError && e.status === 401) return;
  console.warn(e);
  toast(e && e.message ? e.message : String(e), true);
}

// The API's event stream (server-sent events), from `since` (the resourceVersion the page
// read its data at: nothing that happened in between is missed). EventSource reconnects
// by itself with Last-Event-ID; if the server refuses (a position it no longer keeps), a
// new stream starts from now and onEvent gets {type: "RESYNC"} to read everything again.
export function watch(url, onEvent, since) {
  let source = null;
  let closed = false;
  const handler = (message) => {
    let event;
    try { event = JSON.parse(message.data); } catch { return; }
    onEvent(event);
  };
  const open = (rv) => {
    source = new EventSource(rv ? `${url}&resourceVersion=${encodeURIComponent(rv)}` : url, { withCredentials: true });
    for (const type of ["ADDED", "MODIFIED", "DELETED"]) source.addEventListener(type, handler);
    source.onerror = () => {
      if (closed || source.readyState !== EventSource.CLOSED) return;
      setTimeout(() => {
        if (closed) return;
        open(null);
        onEvent({ type: "RESYNC" });
      }, 2000);
    };
  };
  open(since);
  return () => { closed = true; source.close(); };
}

export function download(name, text, type = "text/csv") {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = h("a", { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

export function csvCell(v) {
  if (v === null || v === undefined) return "";
  const s = String(v);
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function mlflowLink(config, runId) {
  if (!runId) return h("span", { class: "sub" }, "no MLflow run");
  if (config.mlflowUi) {
    return h("a", { href: `${config.mlflowUi}/#/runs/${enc(runId)}`, target: "_blank", rel: "noopener" },
      `MLflow run ${runId.slice(0, 12)}`);
  }
  return h("span", { title: `open it with: mlflow ui --backend-store-uri ${config.trackingUri || "<tracking URI>"}` },
    "MLflow run ", h("code", {}, runId));
}

// plotly.js (from the installed plotly package) is loaded on the first page that plots,
// while that page fetches its data.
let plotlyLoading = null;
export function loadPlotly() {
  if (window.Plotly) return Promise.resolve(window.Plotly);
  if (!plotlyLoading) {
    plotlyLoading = new Promise((resolve, reject) => {
      const s = document.createElement("script");
      s.src = document.documentElement.dataset.plotly;
      s.onload = () => resolve(window.Plotly);
      s.onerror = () => { plotlyLoading = null; reject(new Error("plotly.js did not load")); };
      document.head.append(s);
    });
  }
  return plotlyLoading;
}

export function plotly() {
  return window.Plotly;
}

// At phone width plotly's toolbar sits on the legends: without it there (pinch zooms).
export const PLOT_CONFIG = {
  responsive: true,
  displaylogo: false,
  ...(window.matchMedia("(max-width: 600px)").matches ? { displayModeBar: false } : {}),
};

export function plotLayout(extra = {}) {
  return {
    margin: { l: 60, r: 20, t: 30, b: 50 },
    font: { family: "system-ui, sans-serif", size: 12, color: "#17191c" },
    paper_bgcolor: "#fff",
    plot_bgcolor: "#fff",
    hovermode: "closest",
    ...extra,
  };
}

export function purge(root) {
  const Plotly = plotly();
  if (!Plotly) return;
  for (const gd of root.querySelectorAll(".js-plotly-plot")) Plotly.purge(gd);
}
