// The page shell: who is logged in, what the server offers, and which view to draw for
// the URL (History API; the server answers every view's URL with this same page).
import { api, h, reportError } from "./util.js";

const ROUTES = [
  [/^\/$/, "experiments", () => import("./experiments.js")],
  [/^\/experiments\/([^/]+)\/([^/]+)\/trials\/([^/]+)$/, "experiments", () => import("./trial.js")],
  [/^\/experiments\/([^/]+)\/([^/]+)$/, "experiments", () => import("./experiment.js")],
  [/^\/compare$/, "experiments", () => import("./compare.js")],
  [/^\/create$/, "create", () => import("./create.js")],
  [/^\/services$/, "services", () => import("./services.js"), "list"],
  [/^\/services\/([^/]+)\/([^/]+)$/, "services", () => import("./services.js"), "service"],
  [/^\/login$/, null, () => import("./login.js")],
];

export const ctx = { session: null, config: null };
let cleanup = null;
let generation = 0;

export function navigate(url, replace = false) {
  if (replace) history.replaceState(null, "", url);
  else history.pushState(null, "", url);
  route();
}

let sessionReady = null;

let drawn = null; // the path and query of the view on screen

async function route() {
  const gen = ++generation;
  drawn = location.pathname + location.search;
  await sessionReady;
  if (cleanup) {
    try { cleanup(); } catch (e) { console.warn(e); }
    cleanup = null;
  }
  const main = document.getElementById("main");
  const path = location.pathname.replace(/\/+$/, "") || "/";
  if (path !== "/login" && ctx.session && !ctx.session.authenticated) {
    navigate(`/login?next=${encodeURIComponent(location.pathname + location.search)}`, true);
    return;
  }
  for (const [pattern, nav, load, view] of ROUTES) {
    const m = path.match(pattern);
    if (!m) continue;
    for (const a of document.querySelectorAll("header nav a")) {
      if (a.dataset.nav === nav) a.setAttribute("aria-current", "page");
      else a.removeAttribute("aria-current");
    }
    const mod = await load();
    if (gen !== generation) return;
    main.replaceChildren();
    const params = m.slice(1).map(decodeURIComponent);
    try {
      cleanup = (await mod.render(main, params, new URLSearchParams(location.search), view)) || null;
    } catch (e) {
      reportError(e);
    }
    return;
  }
  main.replaceChildren(h("h1", {}, "Not found"), h("p", {}, h("a", { href: "/", "data-link": "" }, "Experiments")));
}

function drawWho() {
  const who = document.getElementById("who");
  const s = ctx.session;
  who.replaceChildren();
  if (!s || !s.authenticated || !s.required) return;
  const scope = s.admin ? "all namespaces" : s.namespaces.join(", ");
  who.append(
    h("span", {}, `token ${s.name} · ${scope}`),
    h("button", {
      type: "button",
      onclick: async () => {
        ctx.session = await api("/ui/logout", { method: "POST" });
        drawWho();
        navigate("/login");
      },
    }, "Log out"),
  );
}

export async function refreshSession() {
  const [session, config] = await Promise.all([api("/ui/session"), api("/ui/config")]);
  ctx.session = session;
  ctx.config = config;
  document.querySelector('header nav a[data-nav="services"]').hidden = !config.services;
  drawWho();
}

// The namespaces a view can offer: the token's, or for an admin those that have objects.
export function knownNamespaces(extra = []) {
  const s = ctx.session;
  const out = new Set(s && !s.admin ? s.namespaces : ["default"]);
  for (const ns of extra) out.add(ns);
  return [...out].sort();
}

document.addEventListener("click", (e) => {
  const a = e.target.closest("a[data-link]");
  if (!a || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
  e.preventDefault();
  navigate(a.getAttribute("href"));
});
// "Skip to content" moves the focus without touching the URL; a change of the hash alone
// (a link to #something) keeps the view.
document.querySelector("a.skip")?.addEventListener("click", (e) => {
  e.preventDefault();
  document.getElementById("main").focus();
});
window.addEventListener("popstate", () => {
  if (location.pathname + location.search !== drawn) route();
});
window.addEventListener("hf-unauthorized", async () => {
  await refreshSession();
  if (!ctx.session.authenticated && location.pathname !== "/login") {
    navigate(`/login?next=${encodeURIComponent(location.pathname + location.search)}`, true);
  }
});

let bootData = {};

// Data the server put in the page for the first view; given out once (later views read
// the API).
export function takeBoot(key) {
  const value = bootData[key];
  delete bootData[key];
  return value || null;
}

// The server puts the session and its offer in the page; later changes (login, logout,
// a 401) ask again.
function boot() {
  try {
    const data = JSON.parse(document.getElementById("boot").textContent);
    bootData = data;
    ctx.session = data.session;
    ctx.config = data.config;
    document.querySelector('header nav a[data-nav="services"]').hidden = !data.config.services;
    drawWho();
    return Promise.resolve();
  } catch {
    return refreshSession();
  }
}

sessionReady = boot().catch(reportError);
route();
