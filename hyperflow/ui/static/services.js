// Inference services (KServe InferenceService objects of the API): the list with URL,
// readiness, traffic split and replicas; a service's page with request rate, latency
// p50/p99 and replicas over time, its events, its YAML and a "try it" form.
import { ctx, knownNamespaces } from "./app.js";
import * as plots from "./plots.js";
import {
  api, badge, enc, fill, h, loadPlotly, num, parseTime, purge, readyBadge, reportError, throttle, watch, when,
} from "./util.js";


function ready(obj) {
  const c = ((obj.status || {}).conditions || []).find((x) => x.type === "Ready");
  return c || { status: "Unknown", reason: "", message: "" };
}

function traffic(obj) {
  const t = ((((obj.status || {}).components || {}).predictor || {}).traffic) || [];
  if (!t.length) return "–";
  return t.map((r) => `${r.revisionName || r.tag || "latest"} ${r.percent ?? 100}%`).join(", ");
}

function predictorStatus(obj) {
  return (((obj.status || {}).components || {}).predictor) || {};
}

// Ready and desired replicas over the running revisions (KServe shows a revision's).
function replicas(obj) {
  const revs = predictorStatus(obj).revisions || [];
  if (!revs.length) return "–";
  const sum = (k) => revs.reduce((a, r) => a + ((r.replicas || {})[k] || 0), 0);
  return `${sum("ready")} ready / ${sum("desired")} desired`;
}

function revisions(obj) {
  const revs = predictorStatus(obj).revisions || [];
  return revs.length ? revs.map((r) => `${r.name} (${r.state})`).join(", ") : "–";
}

export function toYaml(value, indent = "") {
  const scalar = (v) => {
    if (v === null || v === undefined) return "null";
    if (typeof v === "number" || typeof v === "boolean") return String(v);
    const s = String(v);
    return /^[\w./:@-][\w ./:@-]*$/.test(s) && !/^(true|false|null|yes|no|on|off|[-+]?[\d.]+(e[-+]?\d+)?)$/i.test(s) && !s.endsWith(" ")
      ? s : JSON.stringify(s);
  };
  if (Array.isArray(value)) {
    if (!value.length) return "[]";
    return value.map((v) => {
      if (v && typeof v === "object" && Object.keys(v).length) {
        const inner = toYaml(v, `${indent}  `);
        return `${indent}- ${inner.slice(indent.length + 2)}`;
      }
      return `${indent}- ${typeof v === "object" && v !== null ? (Array.isArray(v) ? "[]" : "{}") : scalar(v)}`;
    }).join("\n");
  }
  if (value && typeof value === "object") {
    const keys = Object.keys(value);
    if (!keys.length) return "{}";
    return keys.map((k) => {
      const v = value[k];
      if (v && typeof v === "object" && (Array.isArray(v) ? v.length : Object.keys(v).length)) {
        return `${indent}${scalar(k)}:\n${toYaml(v, Array.isArray(v) ? indent : `${indent}  `)}`;
      }
      return `${indent}${scalar(k)}: ${v && typeof v === "object" ? (Array.isArray(v) ? "[]" : "{}") : scalar(v)}`;
    }).join("\n");
  }
  return indent + scalar(value);
}

async function listAll() {
  if (ctx.config.servicesAllNamespaces) return (await api("/apis/v1/inferenceservices")).items;
  let namespaces = knownNamespaces();
  try {
    const exps = await api("/apis/v1/experimentsummaries");
    namespaces = knownNamespaces(exps.items.map((e) => e.namespace));
  } catch (e) { /* the token's own namespaces are enough */ }
  const lists = await Promise.all(namespaces.map((ns) => api(`/apis/v1/namespaces/${enc(ns)}/inferenceservices`).then((r) => r.items)));
  return lists.flat();
}

async function renderList(root) {
  const tbody = h("tbody");
  root.append(h("h1", {}, "Inference services"),
    h("div", { class: "scroll-x" }, h("table", { class: "plain", id: "services" },
      h("thead", {}, h("tr", {}, ["Name", "Namespace", "URL", "Ready", "Revisions", "Traffic", "Replicas", "Created"].map((t) => h("th", { scope: "col" }, t)))),
      tbody)));
  async function load() {
    const items = await listAll();
    fill(tbody, items.map((o) => {
      const r = ready(o);
      const md = o.metadata;
      return h("tr", { "data-key": `${md.namespace}/${md.name}` },
        h("td", {}, h("a", { href: `/services/${enc(md.namespace)}/${enc(md.name)}`, "data-link": "" }, md.name)),
        h("td", {}, md.namespace),
        h("td", { class: "mono wrap" }, (o.status || {}).url || "–"),
        h("td", {}, readyBadge(r), r.reason ? h("div", { class: "sub" }, r.reason) : null),
        h("td", {}, revisions(o)),
        h("td", {}, traffic(o)),
        h("td", {}, replicas(o)),
        h("td", {}, when(parseTime(md.creationTimestamp))));
    }));
    if (!items.length) {
      tbody.append(h("tr", {}, h("td", { colspan: 8 }, "No inference services. Deploy a trial's model from its experiment, or ",
        h("a", { href: "/create", "data-link": "" }, "create one from YAML"), ".")));
    }
  }
  await load();
  const refresh = throttle(load, 1000);
  const stop = watch("/apis/v1/events?watch=true", (ev) => { if (ev.kind === "InferenceService") refresh(); });
  return () => { stop(); refresh.cancel(); };
}

async function renderService(root, [ns, name]) {
  const base = `/apis/v1/namespaces/${enc(ns)}/inferenceservices/${enc(name)}`;
  const title = h("h1", {}, name);
  const summary = h("section", { class: "card", id: "svc-status", "aria-labelledby": "svc-h" });
  const tryCard = h("section", { class: "card", "aria-labelledby": "try-h" },
    h("h2", { id: "try-h" }, "Try it"), h("p", { class: "sub", id: "try-wait" }, "The form opens once the service is Ready."));
  const rate = h("div", { class: "plot short", id: "plot-rate", role: "img", "aria-label": "Request rate" });
  const latency = h("div", { class: "plot short", id: "plot-latency", role: "img", "aria-label": "Latency" });
  const reps = h("div", { class: "plot short", id: "plot-replicas", role: "img", "aria-label": "Replicas" });
  const eventsBody = h("tbody");
  const yaml = h("pre", { class: "log", id: "svc-yaml", tabindex: "0" });
  root.append(h("p", { class: "sub" }, h("a", { href: "/services", "data-link": "" }, "Inference services"), ` / ${ns} /`),
    title, h("div", { class: "cards" }, summary, tryCard),
    h("h2", {}, "Requests per second"), rate, h("h2", {}, "Latency (seconds)"), latency, h("h2", {}, "Replicas"), reps,
    h("h2", {}, "Events"), h("div", { class: "scroll-x" }, h("table", { class: "plain", id: "svc-events" },
      h("thead", {}, h("tr", {}, ["Time", "Reason", "Message"].map((t) => h("th", { scope: "col" }, t)))), eventsBody)),
    h("h2", {}, "YAML"), yaml);
  const plotlyReady = loadPlotly();
  let obj = null;

  async function load() {
    obj = await api(base);
    const r = ready(obj);
    title.replaceChildren(name, " ", readyBadge(r), h("span", { class: "sub" }, ns));
    const st = obj.status || {};
    fill(summary, h("h2", { id: "svc-h" }, "Status"),
      h("dl", { class: "kv" },
        h("dt", {}, "URL"), h("dd", { class: "mono" }, st.url || "–"),
        h("dt", {}, "Ready"), h("dd", {}, `${r.status}${r.reason ? ` (${r.reason})` : ""}${r.message ? `: ${r.message}` : ""}`),
        h("dt", {}, "Revisions"), h("dd", {}, revisions(obj)),
        h("dt", {}, "Traffic"), h("dd", {}, traffic(obj)),
        h("dt", {}, "Replicas"), h("dd", {}, replicas(obj)),
        h("dt", {}, "Conditions"), h("dd", {}, (st.conditions || []).map((c) => h("div", {}, badge(c.status), ` ${c.type} ${c.reason || ""}`)))));
    yaml.textContent = toYaml(obj);
    // Once Ready: the example comes from the model's metadata, which a service still
    // starting cannot give yet.
    if (r.status === "True") drawTry();
  }

  let tryDrawn = false;
  async function drawTry() {
    if (tryDrawn) return;
    tryDrawn = true;
    // Shaped as the model says its inputs are (its V2 metadata), in the service's protocol.
    let example = { protocol: "v1", body: {} };
    try { example = await api(`${base}/try`); } catch (err) { /* an empty request to edit */ }
    const v1 = example.protocol === "v1";
    const input = h("textarea", { id: "try-body", rows: 8, spellcheck: "false", style: "width:100%" }, JSON.stringify(example.body, null, 2));
    const out = h("pre", { class: "log", id: "try-answer", "aria-live": "polite" });
    const form = h("form", {}, h("label", { for: "try-body" }, v1 ? "V1 predict request (JSON)" : "V2 inference request (JSON)"), input,
      h("div", { class: "toolbar" }, h("button", { type: "submit", class: "primary", id: "try-send" }, "Send")), out);
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      let body;
      try { body = JSON.parse(input.value); } catch (err) { out.textContent = `not JSON: ${err.message}`; return; }
      out.textContent = "sending…";
      try {
        const answer = await api(`${base}/try`, { method: "POST", body });
        out.textContent = `${answer.status} in ${num(answer.seconds * 1000, 3)} ms (${answer.path})\n${typeof answer.body === "string" ? answer.body : JSON.stringify(answer.body, null, 2)}`;
        out.dataset.body = JSON.stringify(answer.body);
        out.dataset.status = String(answer.status);
      } catch (err) {
        out.textContent = err.message;
      }
    });
    fill(tryCard, h("h2", { id: "try-h" }, "Try it"), form);
  }

  async function loadMetrics() {
    const m = await api(`${base}/requestmetrics`);
    await plotlyReady;
    plots.timeSeries(rate, [{ name: "requests/s", x: m.time, y: m.rate }, { name: "errors/s", x: m.time, y: m.errors }], "per second");
    plots.timeSeries(latency, [{ name: "p50", x: m.time, y: m.p50 }, { name: "p99", x: m.time, y: m.p99 }], "seconds");
    plots.timeSeries(reps, [{ name: "ready", x: m.time, y: m.ready }, { name: "desired", x: m.time, y: m.desired, dash: "dash" }], "replicas");
  }

  let since = null;
  async function loadEvents() {
    const list = await api(`/apis/v1/namespaces/${enc(ns)}/events?object=inferenceservices/${enc(name)}`);
    since = since || list.metadata.resourceVersion;
    fill(eventsBody, list.items.slice().reverse().map((e) => h("tr", {},
      h("td", {}, when(e.time)), h("td", {}, e.reason), h("td", {}, e.message))));
    if (!list.items.length) eventsBody.append(h("tr", {}, h("td", { colspan: 3 }, "No events kept for this service.")));
  }

  try {
    await Promise.all([load(), loadEvents()]);
  } catch (e) {
    // Nothing of a service the caller may not see (or that is gone) stays on the page.
    purge(root);
    root.replaceChildren(h("h1", {}, "Inference service"), h("p", { class: "error-line", id: "svc-error" }, e.message));
    throw e;
  }
  loadMetrics().catch(reportError);
  const refresh = throttle(async () => { await Promise.all([load(), loadEvents()]); }, 1000);
  const stop = watch(`/apis/v1/namespaces/${enc(ns)}/events?watch=true&object=inferenceservices/${enc(name)}`, () => refresh(), since);
  const poll = setInterval(() => loadMetrics().catch(reportError), 5000);
  return () => { stop(); refresh.cancel(); clearInterval(poll); purge(root); };
}

export async function render(root, params, _query, view) {
  if (!ctx.config.services) {
    root.append(h("h1", {}, "Inference services"), h("p", {}, "This server does not run inference services."));
    return null;
  }
  return view === "service" ? renderService(root, params) : renderList(root);
}
