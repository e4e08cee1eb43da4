// Experiments: every experiment the caller may see, filtered by namespace, phase and text;
// two or more selected can be compared. Updated live from the event stream.
import { navigate, takeBoot } from "./app.js";
import { api, count, duration, enc, fill, h, num, throttle, watch, when } from "./util.js";

const PHASES = ["Created", "Running", "Restarting", "Succeeded", "Failed"];

const esc = (v) => String(v ?? "").replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

// A progress bar as HTML text (rows are built as one string: several times faster than
// creating their elements one by one).
function progress(t, max) {
  const s = t.Succeeded || 0;
  const r = t.Running || 0;
  const f = (t.Failed || 0) + (t.Killed || 0) + (t.MetricsUnavailable || 0);
  const e = t.EarlyStopped || 0;
  const total = Object.values(t).reduce((a, b) => a + b, 0);
  const of = max || Math.max(total, 1);
  const pct = (v) => `${Math.min(100, (100 * v) / of)}%`;
  const label = `${count(total)}${max ? ` / ${count(max)}` : ""}`;
  const title = esc(`${s} succeeded, ${r} running, ${e} early-stopped, ${f} failed/killed, ${t.Created || 0} pending`);
  return `<div class="prog" title="${title}"><div class="progress" role="img" aria-label="${title}">` +
    `<span class="s" style="width:${pct(s)}"></span><span class="e" style="width:${pct(e)}"></span>` +
    `<span class="r" style="width:${pct(r)}"></span><span class="f" style="width:${pct(f)}"></span></div>` +
    `<span class="sub">${label}</span></div>`;
}

export async function render(root, _params, query) {
  const state = {
    ns: query.get("namespace") || "",
    phase: query.get("phase") || "",
    text: query.get("q") || "",
    sort: { key: "created", dir: -1 },
    selected: new Set(),
    items: [],
  };
  const nsSelect = h("select", { id: "f-ns", "aria-label": "Namespace" });
  const phaseSelect = h("select", { id: "f-phase", "aria-label": "Phase" },
    h("option", { value: "" }, "All phases"), PHASES.map((p) => h("option", { value: p }, p)));
  const textInput = h("input", { id: "f-text", type: "search", placeholder: "Filter by name or algorithm", "aria-label": "Filter by text" });
  const compare = h("button", { type: "button", class: "primary", disabled: true, id: "compare" }, "Compare selected");
  const summary = h("span", { class: "sub", id: "exp-count" });
  const tbody = h("tbody");
  const headRow = h("tr");
  // Fixed layout: column widths come from the header, not from measuring 1,000 rows.
  const widths = ["40px", "17%", "10%", "19%", "9%", "170px", "9%", "18%", "8%"];
  const table = h("table", { class: "plain fixed", id: "experiments" }, h("caption", { class: "skip" }, "Experiments"),
    h("colgroup", {}, widths.map((w) => h("col", { style: `width:${w}` }))), h("thead", {}, headRow), tbody);
  root.append(
    h("h1", {}, "Experiments"),
    h("div", { class: "toolbar" }, nsSelect, phaseSelect, textInput, h("span", { class: "grow" }), summary, compare),
    h("div", { class: "scroll-x" }, table),
  );
  phaseSelect.value = state.phase;
  textInput.value = state.text;

  const columns = [
    { key: "select", label: "", sortable: false },
    { key: "name", label: "Name", value: (e) => e.name },
    { key: "namespace", label: "Namespace", value: (e) => e.namespace },
    { key: "phase", label: "Phase", value: (e) => e.phase },
    { key: "algorithm", label: "Algorithm", value: (e) => e.algorithm || "" },
    { key: "progress", label: "Trials", value: (e) => Object.values(e.trials).reduce((a, b) => a + b, 0) },
    { key: "best", label: "Best", value: (e) => e.best, numeric: true },
    { key: "created", label: "Created", value: (e) => e.created },
    { key: "elapsed", label: "Elapsed", value: (e) => elapsed(e), numeric: true },
  ];
  for (const c of columns) {
    const th = h("th", { scope: "col", class: c.numeric ? "num" : "" });
    if (c.sortable !== false) {
      th.append(h("button", { type: "button", class: "sort", onclick: () => {
        state.sort = { key: c.key, dir: state.sort.key === c.key ? -state.sort.dir : 1 };
        draw();
      } }, c.label));
    } else {
      th.append(h("span", { class: "skip" }, "Select"));
    }
    c.th = th;
    headRow.append(th);
  }

  function elapsed(e) {
    if (!e.started) return null;
    return (e.completed || Date.now() / 1000) - e.started;
  }

  function visible() {
    const text = state.text.toLowerCase();
    return state.items.filter((e) =>
      (!state.ns || e.namespace === state.ns) &&
      (!state.phase || e.phase === state.phase) &&
      (!text || e.name.includes(text) || (e.algorithm || "").includes(text) || e.namespace.includes(text)));
  }

  // The rows in view (plus a margin) exist; spacer rows stand for the others, so 1,000
  // experiments cost what ~50 do. Every row has the same height (one line per cell,
  // measured from a drawn row), so a row's position is its index times that height.
  let rows = [];
  let rowHeight = 0;
  let shown = [-1, -1];
  const MARGIN = 15;

  function rowHtml(e, index) {
    const key = `${e.namespace}/${e.name}`;
    const goal = e.objective.goal !== null && e.objective.goal !== undefined ? ` (goal ${num(e.objective.goal)})` : "";
    const href = `/experiments/${enc(e.namespace)}/${enc(e.name)}`;
    return `<tr data-key="${esc(key)}" aria-rowindex="${index + 2}">` +
      `<td><input type="checkbox" aria-label="Select ${esc(key)} to compare"${state.selected.has(key) ? " checked" : ""}></td>` +
      `<td title="${esc(e.name)}"><a href="${esc(href)}" data-link>${esc(e.name)}</a></td>` +
      `<td>${esc(e.namespace)}</td>` +
      `<td><span class="badge ph-${esc(e.phase)}" title="${esc(e.message)}">${esc(e.phase)}</span><div class="sub" title="${esc(e.message)}">${esc(e.reason || "")}</div></td>` +
      `<td>${esc(e.algorithm || "–")}</td>` +
      `<td>${progress(e.trials, e.maxTrialCount)}</td>` +
      `<td class="num" title="${esc(`${e.objective.type} ${e.objective.metric}${goal}`)}">${esc(num(e.best))}</td>` +
      `<td>${esc(when(e.created))}</td>` +
      `<td class="num">${esc(duration(elapsed(e)))}</td></tr>`;
  }

  const spacer = (height) =>
    height > 0 ? `<tr class="spacer" aria-hidden="true" style="height:${height}px"><td colspan="${columns.length}"></td></tr>` : "";

  function paint(force = false) {
    const height = rowHeight || 53;
    const top = tbody.getBoundingClientRect().top;
    const first = Math.max(0, Math.min(rows.length, Math.floor(-top / height) - MARGIN));
    const last = Math.min(rows.length, Math.max(first, Math.ceil((innerHeight - top) / height) + MARGIN));
    if (!force && first === shown[0] && last === shown[1]) return;
    shown = [first, last];
    // A focused checkbox or link survives the redraw (keyboard users tab down the list).
    const active = document.activeElement;
    const focusRow = active && tbody.contains(active) ? active.closest("tr")?.dataset.key : null;
    const focusWhat = active && active.tagName === "A" ? "a" : "input";
    const html = [spacer(first * height)];
    for (let i = first; i < last; i++) html.push(rowHtml(rows[i], i));
    html.push(spacer((rows.length - last) * height));
    tbody.innerHTML = html.join("");
    if (focusRow) {
      const row = [...tbody.rows].find((r) => r.dataset.key === focusRow);
      row?.querySelector(focusWhat)?.focus({ preventScroll: true });
    }
    if (!rowHeight && last > first) {
      const drawn = tbody.querySelector("tr[data-key]");
      const measured = drawn ? drawn.getBoundingClientRect().height : 0;
      if (measured > 0 && Math.abs(measured - height) > 0.5) {
        rowHeight = measured;
        paint(true);
        return;
      }
      rowHeight = measured || height;
    }
  }

  function draw() {
    const col = columns.find((c) => c.key === state.sort.key);
    rows = visible();
    const dir = state.sort.dir;
    rows.sort((a, b) => {
      const x = col.value(a), y = col.value(b);
      if (x === null || x === undefined) return 1;
      if (y === null || y === undefined) return -1;
      return (typeof x === "number" ? x - y : String(x).localeCompare(String(y))) * dir;
    });
    for (const c of columns) {
      if (c.th) c.th.setAttribute("aria-sort", c.key === state.sort.key ? (dir > 0 ? "ascending" : "descending") : "none");
    }
    table.setAttribute("aria-rowcount", String(rows.length + 1));
    paint(true);
    performance.mark("hf:list");
    summary.textContent = `${count(rows.length)} of ${count(state.items.length)} experiments`;
    if (!state.items.length) {
      tbody.append(h("tr", {}, h("td", { colspan: columns.length },
        "No experiments yet. ", h("a", { href: "/create", "data-link": "" }, "Create one"), " or run ",
        h("code", {}, "hyperflow create -f experiment.yaml"), ".")));
    }
    updateCompare();
  }

  let frame = 0;
  const onScroll = () => {
    if (!frame) frame = requestAnimationFrame(() => { frame = 0; paint(); });
  };
  addEventListener("scroll", onScroll, { passive: true });
  addEventListener("resize", onScroll, { passive: true });

  function updateCompare() {
    compare.disabled = state.selected.size < 2;
    compare.textContent = state.selected.size >= 2 ? `Compare ${state.selected.size} selected` : "Compare selected";
  }

  function syncUrl() {
    const q = new URLSearchParams();
    if (state.ns) q.set("namespace", state.ns);
    if (state.phase) q.set("phase", state.phase);
    if (state.text) q.set("q", state.text);
    const s = q.toString();
    history.replaceState(null, "", s ? `/?${s}` : "/");
  }

  let since = null;
  async function load() {
    // The first time, the page may carry the data (the server put it in; no round trip).
    const resp = takeBoot("experimentsummaries") || (await api("/apis/v1/experimentsummaries"));
    performance.mark("hf:summaries");
    since = since || resp.resourceVersion;
    state.items = resp.items;
    const namespaces = [...new Set(resp.items.map((e) => e.namespace))].sort();
    const current = state.ns;
    fill(nsSelect, h("option", { value: "" }, "All namespaces"), namespaces.map((n) => h("option", { value: n }, n)));
    if (current && !namespaces.includes(current)) nsSelect.append(h("option", { value: current }, current));
    nsSelect.value = current;
    const live = new Set(resp.items.map((e) => `${e.namespace}/${e.name}`));
    for (const k of [...state.selected]) if (!live.has(k)) state.selected.delete(k);
    draw();
  }

  tbody.addEventListener("change", (ev) => {
    const box = ev.target.closest("input[type=checkbox]");
    if (!box) return;
    const key = box.closest("tr").dataset.key;
    if (box.checked) state.selected.add(key);
    else state.selected.delete(key);
    updateCompare();
  });
  nsSelect.addEventListener("change", () => { state.ns = nsSelect.value; syncUrl(); draw(); });
  phaseSelect.addEventListener("change", () => { state.phase = phaseSelect.value; syncUrl(); draw(); });
  textInput.addEventListener("input", () => { state.text = textInput.value.trim(); syncUrl(); draw(); });
  compare.addEventListener("click", () => {
    const q = new URLSearchParams();
    for (const k of state.selected) q.append("e", k);
    navigate(`/compare?${q}`);
  });

  await load();
  const refresh = throttle(load, 1000);
  const stop = watch("/apis/v1/events?watch=true", (ev) => { if (ev.kind !== "InferenceService") refresh(); }, since);
  const ticker = setInterval(() => paint(true), 15000); // elapsed times of running experiments
  return () => {
    stop(); refresh.cancel(); clearInterval(ticker); cancelAnimationFrame(frame);
    removeEventListener("scroll", onScroll);
    removeEventListener("resize", onScroll);
  };
}
