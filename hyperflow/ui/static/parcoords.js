// Parallel coordinates on a 2D canvas, with brushing. plotly.js draws parallel coordinates
// only with WebGL, which takes seconds for 10,000 lines where there is no GPU (software
// GL: remote desktops, VMs, CI); a canvas draws them in tens of milliseconds anywhere.
// Axes, labels, the colour bar and the brushes are SVG over the canvas.
//
// draw(el, {dims, color, colorLabel, reverse, ranges, onBrush}):
//   dims: [{key, label, values (axis space, null = missing), min, max, ticks: [[v, text]]}]
//   color: a number per line (its colour on a Viridis scale), ranges: Map key -> [[lo, hi]]
//   onBrush(ranges) after a drag along an axis (a click on an axis clears its range).
const SVGNS = "http://www.w3.org/2000/svg";
const VIRIDIS = ["#440154", "#482878", "#3e4989", "#31688e", "#26828e", "#1f9e89", "#35b779", "#6ece58", "#b5de2b", "#fde725"];
const BUCKETS = 48;
const PAD = { top: 44, bottom: 26, left: 60, right: 110 };

function mix(a, b, t) {
  const pa = parseInt(a.slice(1), 16);
  const pb = parseInt(b.slice(1), 16);
  const ch = (shift) => Math.round(((pa >> shift) & 255) * (1 - t) + ((pb >> shift) & 255) * t);
  return `rgb(${ch(16)},${ch(8)},${ch(0)})`;
}

function scale(t) {
  const x = Math.min(1, Math.max(0, t)) * (VIRIDIS.length - 1);
  const k = Math.min(VIRIDIS.length - 2, Math.floor(x));
  return mix(VIRIDIS[k], VIRIDIS[k + 1], x - k);
}

function svg(tag, attrs, text) {
  const e = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

export function draw(el, opts) {
  if (!el._pc) setup(el);
  el._pc.opts = opts;
  el.hf = { dims: opts.dims.map((d) => ({ key: d.key, label: d.label, values: d.values })), ranges: opts.ranges };
  render(el);
}

function setup(el) {
  el.classList.add("pc");
  el.style.position = "relative";
  const canvas = document.createElement("canvas");
  canvas.style.position = "absolute";
  canvas.style.inset = "0";
  const overlay = svg("svg", { class: "pc-overlay" });
  overlay.style.position = "absolute";
  overlay.style.inset = "0";
  overlay.style.width = "100%";
  overlay.style.height = "100%";
  el.replaceChildren(canvas, overlay);
  el._pc = { canvas, overlay, drag: null, frame: 0 };
  const ro = new ResizeObserver(() => {
    cancelAnimationFrame(el._pc.frame);
    el._pc.frame = requestAnimationFrame(() => render(el));
  });
  ro.observe(el);
  el._pc.ro = ro;
}

export function destroy(el) {
  if (el._pc) el._pc.ro.disconnect();
}

function geometry(el) {
  const { dims } = el._pc.opts;
  const width = el.clientWidth || 800;
  const height = el.clientHeight || 420;
  const inner = Math.max(10, width - PAD.left - PAD.right);
  const step = dims.length > 1 ? inner / (dims.length - 1) : 0;
  const xs = dims.map((_, k) => PAD.left + k * step);
  const top = PAD.top;
  const bottom = height - PAD.bottom;
  const y = (d, v) => {
    const span = d.max - d.min || 1;
    return bottom - ((v - d.min) / span) * (bottom - top);
  };
  const value = (d, py) => d.min + ((bottom - py) / (bottom - top)) * (d.max - d.min || 1);
  return { width, height, xs, top, bottom, y, value };
}

function inside(v, ranges) {
  for (const [a, b] of ranges) if (v >= a && v <= b) return true;
  return false;
}

function render(el) {
  const { canvas, overlay, opts } = el._pc;
  const { dims, color, ranges } = opts;
  const g = geometry(el);
  const ratio = window.devicePixelRatio || 1;
  canvas.width = Math.round(g.width * ratio);
  canvas.height = Math.round(g.height * ratio);
  canvas.style.width = `${g.width}px`;
  canvas.style.height = `${g.height}px`;
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, g.width, g.height);
  const n = dims.length ? dims[0].values.length : 0;
  // Colour buckets of the selected lines; unselected ones grey underneath.
  let cmin = Infinity;
  let cmax = -Infinity;
  for (let i = 0; i < n; i++) {
    const c = color[i];
    if (c !== null && c !== undefined) { if (c < cmin) cmin = c; if (c > cmax) cmax = c; }
  }
  const cspan = cmax - cmin || 1;
  const active = dims.map((d) => ranges.get(d.key)).map((r) => (r && r.length ? r : null));
  const buckets = Array.from({ length: BUCKETS + 1 }, () => []);
  let selected = 0;
  for (let i = 0; i < n; i++) {
    let keep = true;
    for (let k = 0; k < dims.length && keep; k++) {
      if (!active[k]) continue;
      const v = dims[k].values[i];
      keep = v !== null && v !== undefined && inside(v, active[k]);
    }
    if (keep) {
      const c = color[i];
      let b = c === null || c === undefined ? 0 : Math.round(((c - cmin) / cspan) * (BUCKETS - 1));
      if (opts.reverse) b = BUCKETS - 1 - b;
      buckets[b + 1].push(i);
      selected++;
    } else {
      buckets[0].push(i);
    }
  }
  const path = (rows) => {
    ctx.beginPath();
    for (const i of rows) {
      let started = false;
      for (let k = 0; k < dims.length; k++) {
        const v = dims[k].values[i];
        if (v === null || v === undefined || Number.isNaN(v)) { started = false; continue; }
        const py = g.y(dims[k], v);
        if (started) ctx.lineTo(g.xs[k], py);
        else { ctx.moveTo(g.xs[k], py); started = true; }
      }
    }
    ctx.stroke();
  };
  ctx.lineWidth = 1;
  ctx.globalAlpha = n > 2000 ? 0.12 : 0.25;
  ctx.strokeStyle = "#9aa0a6";
  path(buckets[0]);
  ctx.globalAlpha = n > 2000 ? 0.35 : 0.7;
  for (let b = 1; b <= BUCKETS; b++) {
    if (!buckets[b].length) continue;
    ctx.strokeStyle = scale((b - 1) / (BUCKETS - 1));
    path(buckets[b]);
  }
  ctx.globalAlpha = 1;
  el.dataset.lines = String(n);
  el.dataset.selected = String(selected);
  drawOverlay(el, g, cmin, cmax);
}

function drawOverlay(el, g, cmin, cmax) {
  const { overlay, opts } = el._pc;
  const { dims, ranges } = opts;
  overlay.replaceChildren();
  overlay.setAttribute("viewBox", `0 0 ${g.width} ${g.height}`);
  dims.forEach((d, k) => {
    const x = g.xs[k];
    const axis = svg("g", { class: "pc-axis", "data-key": d.key });
    axis.append(svg("line", { x1: x, x2: x, y1: g.top, y2: g.bottom, stroke: "#17191c", "stroke-width": 1 }));
    for (const [v, text] of d.ticks) {
      const py = g.y(d, v);
      axis.append(svg("line", { x1: x - 4, x2: x, y1: py, y2: py, stroke: "#17191c" }));
      axis.append(svg("text", { x: x - 6, y: py + 4, "text-anchor": "end", "font-size": 11, fill: "#17191c", class: "pc-tick" }, text));
    }
    axis.append(svg("text", { x, y: g.top - 22, "text-anchor": "middle", "font-size": 12, "font-weight": 600, fill: "#17191c", class: "pc-label" }, d.label));
    for (const [lo, hi] of ranges.get(d.key) || []) {
      const y1 = g.y(d, Math.min(d.max, hi));
      const y2 = g.y(d, Math.max(d.min, lo));
      axis.append(svg("rect", { x: x - 6, y: Math.min(y1, y2), width: 12, height: Math.max(2, Math.abs(y2 - y1)),
        fill: "#f4b400", "fill-opacity": 0.35, stroke: "#7a4f01", class: "pc-brush" }));
    }
    const hit = svg("rect", { x: x - 12, y: g.top - 4, width: 24, height: g.bottom - g.top + 8, fill: "transparent", class: "pc-hit", "data-key": d.key });
    hit.style.cursor = "crosshair";
    axis.append(hit);
    hit.addEventListener("pointerdown", (ev) => startDrag(el, ev, k));
    overlay.append(axis);
  });
  // Colour bar.
  if (Number.isFinite(cmin)) {
    const x = g.width - 60;
    const defs = svg("defs");
    const grad = svg("linearGradient", { id: `pc-grad-${el.id}`, x1: 0, x2: 0, y1: opts.reverse ? 0 : 1, y2: opts.reverse ? 1 : 0 });
    VIRIDIS.forEach((c, k) => grad.append(svg("stop", { offset: k / (VIRIDIS.length - 1), "stop-color": c })));
    defs.append(grad);
    overlay.append(defs,
      svg("rect", { x, y: g.top, width: 12, height: g.bottom - g.top, fill: `url(#pc-grad-${el.id})` }),
      svg("text", { x: x + 16, y: g.top + 4, "font-size": 11, fill: "#17191c" }, fmt(cmax)),
      svg("text", { x: x + 16, y: g.bottom, "font-size": 11, fill: "#17191c" }, fmt(cmin)),
      // Its title on a row of its own, below the axis titles (the last one's is next to it).
      svg("text", { x: g.width - 4, y: g.top - 8, "text-anchor": "end", "font-size": 11, "font-weight": 600, fill: "#17191c", class: "pc-color-label" }, opts.colorLabel || ""));
  }
}

function fmt(v) {
  return Math.abs(v) >= 1e4 || (Math.abs(v) < 1e-3 && v !== 0) ? v.toExponential(2) : String(Number(v.toPrecision(4)));
}

function startDrag(el, ev, k) {
  ev.preventDefault();
  const { opts, overlay } = el._pc;
  const d = opts.dims[k];
  const g = geometry(el);
  const rect = overlay.getBoundingClientRect();
  const y0 = ev.clientY - rect.top;
  let y1 = y0;
  // Listening on the window: the overlay (and the axis under the pointer) is redrawn
  // while the pointer moves.
  const target = window;
  const preview = () => {
    const ranges = new Map(opts.ranges);
    if (Math.abs(y1 - y0) >= 3) {
      const a = g.value(d, Math.max(g.top, Math.min(g.bottom, Math.max(y0, y1))));
      const b = g.value(d, Math.max(g.top, Math.min(g.bottom, Math.min(y0, y1))));
      ranges.set(d.key, [[Math.min(a, b), Math.max(a, b)]]);
    } else {
      ranges.delete(d.key);
    }
    return ranges;
  };
  const move = (e) => {
    y1 = e.clientY - rect.top;
    opts.ranges = preview();
    cancelAnimationFrame(el._pc.frame);
    el._pc.frame = requestAnimationFrame(() => render(el));
  };
  const up = (e) => {
    y1 = e.clientY - rect.top;
    target.removeEventListener("pointermove", move);
    target.removeEventListener("pointerup", up);
    target.removeEventListener("pointercancel", up);
    opts.ranges = preview();
    el.hf.ranges = opts.ranges;
    render(el);
    if (opts.onBrush) opts.onBrush(new Map(opts.ranges));
  };
  target.addEventListener("pointermove", move);
  target.addEventListener("pointerup", up);
  target.addEventListener("pointercancel", up);
}
