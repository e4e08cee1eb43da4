// A virtualized table: only the rows in view (plus a margin) exist in the DOM, reused as
// the user scrolls, so 10,000 rows scroll as smoothly as 100. Sorting is by any column
// (numbers numerically, missing values last); the row set comes from the caller's filters.
import { h } from "./util.js";

const OVERSCAN = 8;

export class VirtualTable {
  // columns: [{key, label, value(i) -> sortable value, text(i) -> string, render(i, cell),
  //            numeric, width}]
  constructor({ columns, label, rowHeight = 30, height = 480, rowClass }) {
    this.columns = columns;
    this.visible = columns.map((c) => c.key);
    this.rowHeight = rowHeight;
    this.rowClass = rowClass;
    this.rows = [];
    this.order = [];
    this.sort = null; // {key, dir: 1 | -1}
    this.pool = [];
    this.frame = 0;
    this.scroller = h("div", { class: "vt-scroll", style: `height:${height}px`, tabindex: "0" });
    this.head = h("div", { class: "vt-head", role: "rowgroup" });
    this.body = h("div", { class: "vt-body", role: "rowgroup" });
    this.empty = h("div", { class: "vt-empty", hidden: true }, "No trials match.");
    this.scroller.append(this.head, this.body, this.empty);
    this.el = h("div", { class: "vt", role: "table", "aria-label": label }, this.scroller);
    this.scroller.addEventListener("scroll", () => this.schedule(), { passive: true });
    this.resize = new ResizeObserver(() => this.schedule());
    this.resize.observe(this.scroller);
    this.renderHead();
  }

  destroy() {
    this.resize.disconnect();
    cancelAnimationFrame(this.frame);
  }

  get shown() {
    const keys = new Set(this.visible);
    return this.columns.filter((c) => keys.has(c.key));
  }

  setColumns(columns, visible) {
    this.columns = columns;
    if (visible) this.visible = visible;
    this.renderHead();
    this.resort();
  }

  setVisible(keys) {
    this.visible = keys;
    this.renderHead();
    this.redraw();
  }

  template() {
    return this.shown.map((c) => `${c.width || 110}px`).join(" ");
  }

  renderHead() {
    const cols = this.shown;
    const row = h("div", { class: "vt-row", role: "row", "aria-rowindex": "1" });
    row.style.gridTemplateColumns = this.template();
    for (const c of cols) {
      const sorted = this.sort && this.sort.key === c.key;
      const dir = sorted ? (this.sort.dir > 0 ? "ascending" : "descending") : "none";
      const arrow = sorted ? (this.sort.dir > 0 ? " ▲" : " ▼") : "";
      row.append(
        h("div", { class: `vt-cell${c.numeric ? " num" : ""}`, role: "columnheader", "aria-sort": dir },
          h("button", {
            type: "button",
            dataset: { key: c.key },
            title: `Sort by ${c.label}`,
            onclick: () => this.toggleSort(c.key),
          }, c.label + arrow)),
      );
    }
    const width = cols.reduce((s, c) => s + (c.width || 110), 0);
    this.head.replaceChildren(row);
    this.head.style.minWidth = this.body.style.minWidth = `${width}px`;
    for (const r of this.pool) r.remove();
    this.pool = [];
  }

  toggleSort(key) {
    const dir = this.sort && this.sort.key === key ? -this.sort.dir : 1;
    this.sortBy(key, dir);
  }

  sortBy(key, dir = 1) {
    this.sort = key ? { key, dir } : null;
    this.renderHead();
    this.resort();
  }

  setRows(rows) {
    this.rows = rows;
    this.resort();
  }

  resort() {
    const rows = this.rows;
    if (!this.sort) {
      this.order = rows;
    } else {
      const col = this.columns.find((c) => c.key === this.sort.key);
      if (!col) {
        this.order = rows;
      } else {
        const n = rows.length;
        const keys = new Array(n);
        let numeric = true;
        for (let j = 0; j < n; j++) {
          const v = col.value(rows[j]);
          keys[j] = v;
          if (v !== null && v !== undefined && typeof v !== "number") numeric = false;
        }
        const idx = new Uint32Array(n);
        for (let j = 0; j < n; j++) idx[j] = j;
        const dir = this.sort.dir;
        const missing = (v) => v === null || v === undefined || (typeof v === "number" && Number.isNaN(v));
        const cmp = numeric
          ? (a, b) => {
              const x = keys[a], y = keys[b];
              const mx = missing(x), my = missing(y);
              if (mx || my) return mx === my ? a - b : mx ? 1 : -1;
              return x === y ? a - b : (x < y ? -dir : dir);
            }
          : (a, b) => {
              const x = keys[a], y = keys[b];
              const mx = missing(x), my = missing(y);
              if (mx || my) return mx === my ? a - b : mx ? 1 : -1;
              const c = String(x).localeCompare(String(y), undefined, { numeric: true });
              return c === 0 ? a - b : c * dir;
            };
        idx.sort(cmp);
        const order = new Array(n);
        for (let j = 0; j < n; j++) order[j] = rows[idx[j]];
        this.order = order;
      }
    }
    this.el.setAttribute("aria-rowcount", String(this.order.length + 1));
    this.redraw();
  }

  schedule() {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.draw();
    });
  }

  redraw() {
    for (const r of this.pool) r.dataset.i = "";
    this.draw();
  }

  draw() {
    const n = this.order.length;
    const rh = this.rowHeight;
    this.body.style.height = `${n * rh}px`;
    this.empty.hidden = n > 0;
    const top = Math.max(0, this.scroller.scrollTop - this.head.offsetHeight);
    const view = this.scroller.clientHeight || 480;
    const first = Math.max(0, Math.floor(top / rh) - OVERSCAN);
    const last = Math.min(n, Math.ceil((top + view) / rh) + OVERSCAN);
    const need = last - first;
    const cols = this.shown;
    const template = this.template();
    while (this.pool.length < need) {
      const row = h("div", { class: "vt-row", role: "row" });
      row.style.gridTemplateColumns = template;
      for (const c of cols) row.append(h("div", { class: `vt-cell${c.numeric ? " num" : ""}`, role: "cell" }));
      this.body.append(row);
      this.pool.push(row);
    }
    for (let k = 0; k < this.pool.length; k++) {
      const row = this.pool[k];
      if (k >= need) {
        row.hidden = true;
        continue;
      }
      const pos = first + k;
      const i = this.order[pos];
      row.hidden = false;
      row.style.transform = `translateY(${pos * rh}px)`;
      row.setAttribute("aria-rowindex", String(pos + 2));
      if (row.dataset.i === String(i)) continue;
      row.dataset.i = String(i);
      if (this.rowClass) row.className = `vt-row ${this.rowClass(i) || ""}`;
      const cells = row.children;
      for (let c = 0; c < cols.length; c++) {
        const col = cols[c];
        const cell = cells[c];
        if (col.render) col.render(i, cell);
        else cell.textContent = col.text ? col.text(i) : String(col.value(i) ?? "–");
      }
    }
  }

  // The data behind the row indices changed (new trials, new values): draw again.
  refresh() {
    this.resort();
  }
}
