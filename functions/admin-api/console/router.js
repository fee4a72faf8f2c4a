// Routing: where the console lives, which page a path is, and the navigation that says
// where the admin is (the topbar's links, the breadcrumbs).

import { h, main } from "./dom.js";
import { ApiError, handle, showFatal, SignInNeeded } from "./api.js";
import { config, renderSignIn, showSession, startOidcSignIn, token } from "./auth.js";
import { listPage } from "./list.js";
import { newPage } from "./new-webhook.js";
import { webhookPage } from "./webhook.js";

/** Where the console lives: the list; `/new` and `/{id}` below it. */
export const BASE = "/admin/webhooks";

function markNav(which) {
  for (const link of document.querySelectorAll("[data-nav]")) {
    if (link.dataset.nav === which) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

export function breadcrumbs(current) {
  return h("nav", { class: "crumbs", "aria-label": "Breadcrumb" },
    h("ol", {}, h("li", {}, h("a", { href: BASE }, "Webhooks")), h("li", { "aria-current": "page" }, current)));
}

/** Draws the page the address names, or signs the admin in first. */
export async function route() {
  showSession();
  if (!token) {
    if (config.sign_in === "oidc") {
      await startOidcSignIn();
      return;
    }
    renderSignIn();
    return;
  }
  const path = location.pathname.replace(/\/+$/, "");
  try {
    if (path === BASE) {
      markNav("list");
      await listPage();
    } else if (path === BASE + "/new") {
      markNav("new");
      await newPage();
    } else if (path.startsWith(BASE + "/")) {
      markNav(null);
      await webhookPage(decodeURIComponent(path.slice(BASE.length + 1)));
    } else {
      location.replace(BASE);
    }
  } catch (err) {
    if (err instanceof SignInNeeded || err instanceof ApiError) handle(err, null);
    else showFatal(err);
    if (err instanceof ApiError && !main().querySelector("h1")) showFatal(err);
  }
}
