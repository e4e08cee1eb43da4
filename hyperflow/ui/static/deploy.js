// "Deploy": the experiment's best model through deploy-best (the same POST as `hyperflow
// experiment deploy-best`: a new version in the MLflow Model Registry, served from
// models:/MODEL/VERSION; a service of that name gets a new revision), or any trial's saved
// model as an InferenceService of its run's files (the same POST as `hyperflow create -f
// isvc.yaml`); then the service's page.
import { navigate } from "./app.js";
import { api, enc, expPath, h, showProblems, toast } from "./util.js";

const FORMATS = ["mlflow", "sklearn", "xgboost", "lightgbm", "onnx"];

export function serviceBody(ns, name, format, storageUri) {
  return {
    apiVersion: "serving.kserve.io/v1beta1",
    kind: "InferenceService",
    metadata: { name, namespace: ns },
    spec: { predictor: { model: { modelFormat: { name: format }, storageUri } } },
  };
}

// The model's format preselected as the server finds it from the trial's files.
// best: deploy the experiment's best trial through deploy-best (registers a model version).
export function deployDialog({ ns, name, storageUri, experiment, trial, best = false }) {
  const nameInput = h("input", { id: "deploy-name", required: true, value: name.toLowerCase().replace(/[^a-z0-9-]/g, "-").slice(0, 63), pattern: "[a-z0-9]([a-z0-9\\-]*[a-z0-9])?" });
  const format = h("select", { id: "deploy-format" }, FORMATS.map((f) => h("option", { value: f }, f)));
  const problems = h("ul", { class: "problems", "aria-live": "polite" });
  const modelName = ns === "default" ? experiment : `${ns}.${experiment}`;
  const modelInput = best
    ? h("input", { id: "deploy-model", required: true, value: modelName, pattern: "[^\\/:]+" })
    : null;
  const form = h("form", {},
    h("h2", {}, best ? "Deploy the best model" : "Deploy the model"),
    best
      ? h("p", { class: "sub" }, "Registers ", h("code", {}, storageUri),
        " as a new version of a model in the MLflow Model Registry and serves ",
        h("code", {}, "models:/MODEL/VERSION"), "; a service of that name gets a new revision.")
      : h("p", { class: "sub" }, "storageUri ", h("code", {}, storageUri)),
    h("label", {}, best ? "service" : "metadata.name", nameInput),
    best ? h("label", {}, "registered model", modelInput) : null,
    h("label", {}, "modelFormat.name", format),
    problems,
    h("div", { class: "toolbar" }, h("button", { type: "button", onclick: () => dialog.close() }, "Cancel"),
      h("button", { type: "submit", class: "primary" }, "Create InferenceService")));
  const dialog = h("dialog", { "aria-label": "Deploy" }, form);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const svc = nameInput.value.trim();
    try {
      if (best) {
        const r = await api(`${expPath(ns, experiment)}/deploy-best`, { method: "POST",
          body: { service: svc, modelFormat: format.value, modelName: modelInput.value.trim() } });
        const m = r.registeredModel;
        toast(`${m.name} version ${m.version} registered; inferenceservice ${svc} ${r.created ? "created" : "updated"}`);
      } else {
        await api(`/apis/v1/namespaces/${enc(ns)}/inferenceservices`, { method: "POST", body: serviceBody(ns, svc, format.value, storageUri) });
        toast(`inferenceservice ${svc} created`);
      }
      dialog.close();
      navigate(`/services/${enc(ns)}/${enc(svc)}`);
    } catch (e) {
      showProblems(problems, e);
    }
  });
  dialog.addEventListener("close", () => dialog.remove());
  document.body.append(dialog);
  dialog.showModal();
  if (experiment && trial) {
    api(`${expPath(ns, experiment)}/trials/${enc(trial)}/artifacts`).then((a) => {
      if (a.modelFormat && FORMATS.includes(a.modelFormat)) format.value = a.modelFormat;
    }).catch(() => { /* the user picks the format */ });
  }
}
