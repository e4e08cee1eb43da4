// Create: paste or upload an Experiment (or InferenceService) YAML. While typing, the
// server validates it (dryRun=All, nothing stored) and every problem shows with its
// field path and line, before anything is submitted.
import { ctx, knownNamespaces, navigate } from "./app.js";
import { ApiError, api, enc, h, toast } from "./util.js";

const EXAMPLE = `apiVersion: kubeflow.org/v1beta1
kind: Experiment
metadata:
  name: quadratic
spec:
  objective:
    type: minimize
    objectiveMetricName: loss
  algorithm:
    algorithmName: tpe
  parallelTrialCount: 2
  maxTrialCount: 20
  parameters:
    - name: x
      parameterType: double
      feasibleSpace: {min: "-5", max: "5"}
  trialTemplate:
    trialParameters:
      - {name: x, reference: x}
    command: [python3, -c, "import sys; x = float(sys.argv[1]); print(f'loss={(x - 1) ** 2}')", "\${trialParameters.x}"]
`;

const KINDS = { Experiment: "experiments", InferenceService: "inferenceservices" };

function kindOf(text) {
  const m = text.match(/^kind:\s*["']?([A-Za-z]+)/m);
  return m ? m[1] : null;
}

function namespaceOf(text) {
  const m = text.match(/^metadata:\s*\n(?:[ \t]+.*\n)*?[ \t]+namespace:\s*["']?([a-z0-9-]+)/m);
  return m ? m[1] : null;
}

export async function render(root) {
  const namespaces = knownNamespaces();
  const nsInput = h("input", { id: "create-ns", list: "create-ns-list", value: namespaces[0] || "default", required: true, "aria-describedby": "ns-help" });
  const textarea = h("textarea", { id: "create-yaml", spellcheck: "false", "aria-label": "YAML", "aria-describedby": "create-result", wrap: "off" });
  const gutter = h("div", { class: "gutter", "aria-hidden": "true" });
  const file = h("input", { type: "file", id: "create-file", accept: ".yaml,.yml,.json,application/yaml,text/yaml" });
  const result = h("div", { id: "create-result", "aria-live": "polite" });
  const submit = h("button", { type: "submit", class: "primary", id: "create-submit", disabled: true }, "Create");
  const form = h("form", {},
    h("div", { class: "toolbar" },
      h("label", {}, "Namespace", nsInput), h("datalist", { id: "create-ns-list" }, namespaces.map((n) => h("option", { value: n }))),
      h("span", { class: "sub", id: "ns-help" }, "(metadata.namespace wins when the YAML sets it)"),
      h("label", {}, "Upload", file),
      h("button", { type: "button", onclick: () => { textarea.value = EXAMPLE; changed(); } }, "Insert an example")),
    h("div", { class: "editor" }, gutter, textarea),
    result,
    h("div", { class: "toolbar" }, submit));
  root.append(h("h1", {}, "Create"),
    h("p", { class: "sub" }, "A Katib Experiment",
      ctx.config.services ? " or a KServe InferenceService" : "",
      " in YAML, as for ", h("code", {}, "hyperflow create -f"), ". Relative trial commands need ",
      h("code", {}, "metadata.annotations[hyperflow.io/base-dir]"), " (an absolute folder on the server)."),
    form);

  let bad = new Set();
  function drawGutter() {
    const lines = textarea.value.split("\n").length;
    const out = [];
    for (let k = 1; k <= lines; k++) out.push(bad.has(k) ? `<span class="bad">${k}</span>` : String(k));
    gutter.innerHTML = out.join("\n");
    gutter.scrollTop = textarea.scrollTop;
  }
  textarea.addEventListener("scroll", () => { gutter.scrollTop = textarea.scrollTop; });

  function goToLine(line) {
    const lines = textarea.value.split("\n");
    let start = 0;
    for (let k = 0; k < line - 1 && k < lines.length; k++) start += lines[k].length + 1;
    textarea.focus();
    textarea.setSelectionRange(start, start + (lines[line - 1] || "").length);
    textarea.scrollTop = Math.max(0, (line - 5) * 18);
  }

  function target() {
    const text = textarea.value;
    const kind = kindOf(text);
    const plural = KINDS[kind];
    if (!kind) return { error: "the YAML needs a kind (Experiment or InferenceService)" };
    if (!plural || (plural === "inferenceservices" && !ctx.config.services)) {
      // The path says "kind"; the line of it is marked, as a field error's is.
      const line = text.split("\n").findIndex((l) => /^kind\s*:/.test(l)) + 1;
      return { error: `${kind} cannot be created here; it must be Experiment${ctx.config.services ? " or InferenceService" : ""}`, path: "kind", line: line || undefined };
    }
    const ns = namespaceOf(text) || nsInput.value.trim() || "default";
    return { url: `/apis/v1/namespaces/${enc(ns)}/${plural}`, kind, plural, ns };
  }

  function show(problems, ok) {
    bad = new Set(problems.filter((p) => p.line).map((p) => p.line));
    drawGutter();
    if (ok) {
      result.replaceChildren(h("p", { class: "ok-line" }, ok));
      return;
    }
    result.replaceChildren(h("ul", { class: "problems", id: "create-problems" }, problems.map((p) => h("li", { dataset: { path: p.path || "" } },
      p.path ? h("code", {}, p.path) : null,
      p.line ? [" ", h("button", { type: "button", onclick: () => goToLine(p.line) }, `line ${p.line}`)] : null,
      p.path || p.line ? ": " : "", p.message))));
  }

  let seq = 0;
  let timer = null;
  async function validate() {
    const mine = ++seq;
    const text = textarea.value;
    submit.disabled = true;
    if (!text.trim()) { result.replaceChildren(); bad = new Set(); drawGutter(); return; }
    const t = target();
    if (t.error) { show([{ path: t.path || "", message: t.error, line: t.line }]); return; }
    try {
      const obj = await api(`${t.url}?dryRun=All`, { method: "POST", body: text, type: "application/yaml" });
      if (mine !== seq) return;
      show([], `Valid ${t.kind} ${obj.metadata.name} in namespace ${t.ns}.`);
      submit.disabled = false;
    } catch (e) {
      if (mine !== seq) return;
      if (e instanceof ApiError) show(e.details.length ? e.details : [{ path: "", message: e.message }]);
      else show([{ path: "", message: String(e) }]);
    }
  }

  function changed() {
    drawGutter();
    clearTimeout(timer);
    timer = setTimeout(validate, 350);
  }
  textarea.addEventListener("input", changed);
  nsInput.addEventListener("change", changed);
  textarea.addEventListener("keydown", (e) => {
    // Tab inserts two spaces (YAML indentation); Escape then Tab leaves the editor.
    if (e.key === "Tab" && !e.shiftKey && !textarea.dataset.escaped) {
      e.preventDefault();
      textarea.setRangeText("  ", textarea.selectionStart, textarea.selectionEnd, "end");
      changed();
    } else if (e.key === "Escape") {
      textarea.dataset.escaped = "1";
    } else {
      delete textarea.dataset.escaped;
    }
  });
  file.addEventListener("change", async () => {
    const f = file.files[0];
    if (!f) return;
    if (f.size > 3 * 1024 * 1024) { show([{ path: "", message: `${f.name} is over 3 MiB` }]); return; }
    textarea.value = await f.text();
    changed();
  });
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const t = target();
    if (t.error) return;
    submit.disabled = true;
    try {
      const obj = await api(t.url, { method: "POST", body: textarea.value, type: "application/yaml" });
      toast(`${t.kind.toLowerCase()} ${obj.metadata.name} created`);
      navigate(t.plural === "experiments" ? `/experiments/${enc(t.ns)}/${enc(obj.metadata.name)}` : `/services/${enc(t.ns)}/${enc(obj.metadata.name)}`);
    } catch (err) {
      if (err instanceof ApiError) show(err.details.length ? err.details : [{ path: "", message: err.message }]);
      submit.disabled = false;
    }
  });
  drawGutter();
  return () => clearTimeout(timer);
}
