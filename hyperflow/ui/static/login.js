// Login: a token checked by the server, kept in an HttpOnly cookie (the page never sees it
// again); the browser then holds exactly what the token grants.
import { ctx, navigate, refreshSession } from "./app.js";
import { ApiError, api, h } from "./util.js";

export async function render(root, _params, query) {
  const next = query.get("next") || "/";
  const safeNext = next.startsWith("/") && !next.startsWith("//") ? next : "/";
  if (ctx.session && ctx.session.authenticated) {
    navigate(safeNext, true);
    return null;
  }
  const input = h("input", { id: "login-token", type: "password", autocomplete: "off", required: true, "aria-describedby": "login-help login-error" });
  const error = h("p", { id: "login-error", class: "error-line", "aria-live": "assertive" });
  const form = h("form", {},
    h("label", { for: "login-token" }, "API token"), input,
    h("p", { id: "login-help", class: "sub" }, "This server needs a token. Create one with ",
      h("code", {}, "hyperflow token create --namespace NS"), "."),
    error, h("button", { type: "submit", class: "primary" }, "Log in"));
  root.append(h("section", { class: "login card" }, h("h1", {}, "Log in"), form));
  input.focus();
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    error.textContent = "";
    try {
      await api("/ui/login", { method: "POST", body: { token: input.value } });
      input.value = "";
      await refreshSession();
      navigate(safeNext, true);
    } catch (err) {
      error.textContent = err instanceof ApiError ? err.message : String(err);
    }
  });
  return null;
}
