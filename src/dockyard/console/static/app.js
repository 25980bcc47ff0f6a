// The console's shell: client-side routing under /console, the nav's current page, sign-out.

import { csrfToken } from "./api.js";
import { errorNote, h, routeParts } from "./dom.js";

// Each resource kind: its list page and its detail page (one module per page kind).
const ROUTES = {
  "training-jobs": ["./pages/training-jobs.js", "./pages/training-job.js"],
  endpoints: ["./pages/endpoints.js", "./pages/endpoint.js"],
  "transform-jobs": ["./pages/transform-jobs.js", "./pages/transform-job.js"],
  models: ["./pages/models.js", "./pages/model.js"],
  "endpoint-configs": ["./pages/endpoint-configs.js", "./pages/endpoint-config.js"],
  images: ["./pages/images.js", "./pages/image-repository.js"],
};

// Links to these are real page loads, not client-side routes.
const SERVER_PATHS = ["/console/static/", "/console/artifacts", "/console/sign-in", "/console/api/"];

// The charts drawn on the page, by name (charts.js fills it): there from the first moment.
window.dockyardCharts = window.dockyardCharts || {};

const main = document.getElementById("page");
let leave = null; // the current page's cleanup: stops its polling
let generation = 0;

async function show() {
  const mine = ++generation;
  if (leave) {
    leave();
    leave = null;
  }
  let [kind, ...rest] = routeParts(location.pathname);
  if (!kind) {
    history.replaceState(null, "", "/console/training-jobs");
    kind = "training-jobs";
  }
  for (const a of document.querySelectorAll("header nav a")) {
    const current = a.getAttribute("href") === `/console/${kind}`;
    if (current) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  const modules = ROUTES[kind];
  main.replaceChildren();
  if (!modules) {
    document.title = "Not found · dockyard";
    main.append(h("h1", {}, "Not found"), h("p", {}, `The console has no page ${location.pathname}.`));
    return;
  }
  const page = await import(modules[rest.length ? 1 : 0]);
  if (mine !== generation) return;
  const ctx = { alive: () => mine === generation, navigate };
  try {
    const cleanup = await page.render(main, rest, ctx);
    if (mine === generation) leave = typeof cleanup === "function" ? cleanup : null;
    else if (typeof cleanup === "function") cleanup();
  } catch (error) {
    if (mine !== generation) return;
    main.append(errorNote(error));
    // A detail page that failed (most often: no such resource) leads back to its list.
    if (rest.length) {
      const list = document.querySelector(`header nav a[href="/console/${kind}"]`);
      main.append(h("p", {}, h("a", { href: `/console/${kind}` }, `Back to ${list ? list.textContent : "the list"}`)));
    }
  }
}

export function navigate(path) {
  history.pushState(null, "", path);
  show();
  main.focus();
}

document.addEventListener("click", (event) => {
  if (event.defaultPrevented || event.button !== 0) return;
  if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  const a = event.target.closest("a[href]");
  if (!a || a.target || a.hasAttribute("download")) return;
  const url = new URL(a.href, location.href);
  if (url.origin !== location.origin || !url.pathname.startsWith("/console")) return;
  if (SERVER_PATHS.some((p) => url.pathname.startsWith(p))) return;
  event.preventDefault();
  navigate(url.pathname + url.search);
});

window.addEventListener("popstate", show);

document.getElementById("sign-out").addEventListener("click", async () => {
  await fetch("/console/sign-out", {
    method: "POST",
    credentials: "same-origin",
    headers: { "X-CSRF-Token": csrfToken() },
  });
  location.assign("/console/sign-in");
});

show();
