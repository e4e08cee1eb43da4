// "Deploy": an InferenceService of a trial's saved model, created through the API (the
// same POST as `hyperflow create -f isvc.yaml`), then its page.
import { navigate } from "./app.js";
import { api, enc, expPath, h, toast } from "./util.js";

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
export function deployDialog({ ns, name, storageUri, experiment, trial }) {
  const nameInput = h("input", { id: "deploy-name", required: true, value: name.toLowerCase().replace(/[^a-z0-9-]/g, "-").slice(0, 63), pattern: "[a-z0-9]([a-z0-9\\-]*[a-z0-9])?" });
  const format = h("select", { id: "deploy-format" }, FORMATS.map((f) => h("option", { value: f }, f)));
  const problems = h("ul", { class: "problems", "aria-live": "polite" });
  const form = h("form", {},
    h("h2", {}, "Deploy the model"),
    h("p", { class: "sub" }, "storageUri ", h("code", {}, storageUri)),
    h("label", {}, "metadata.name", nameInput),
    h("label", {}, "modelFormat.name", format),
    problems,
    h("div", { class: "toolbar" }, h("button", { type: "button", onclick: () => dialog.close() }, "Cancel"),
      h("button", { type: "submit", class: "primary" }, "Create InferenceService")));
  const dialog = h("dialog", { "aria-label": "Deploy" }, form);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const svc = nameInput.value.trim();
    try {
      await api(`/apis/v1/namespaces/${enc(ns)}/inferenceservices`, { method: "POST", body: serviceBody(ns, svc, format.value, storageUri) });
      toast(`inferenceservice ${svc} created`);
      dialog.close();
      navigate(`/services/${enc(ns)}/${enc(svc)}`);
    } catch (e) {
      problems.replaceChildren(...(e.details && e.details.length ? e.details : [{ path: "", message: e.message }])
        .map((d) => h("li", {}, d.path ? h("code", {}, d.path) : null, d.path ? ": " : "", d.message)));
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
