// The webhooks console (SPEC §8): the list, the New Webhook form and a webhook's page with
// its delivery history, on the admin API at /api/v1. No build step, no dependencies: ES
// modules, served under a path that names their version (docs/decisions.md, "Console").
// This is the entry; the others:
//   dom.js          DOM helpers: elements, icons, the page's content, toasts, notices
//   format.js       times and short errors as text
//   auth.js         the token, the sign-in settings, OpenID Connect, the sign-in page
//   api.js          calls to /api/v1, their errors, the event catalogue
//   badges.js       status, circuit and outcome marks
//   dialogs.js      confirmation and information dialogs, the confirmed delete
//   forms.js        the webhook form's fields, checks and problems; the secret panel
//   router.js       which page a path is; the navigation
//   list.js         the list of webhooks
//   new-webhook.js  the New Webhook form
//   webhook.js      a webhook's page
//   history.js      its delivery history, Inspect, redelivery and recovery
// Modules import one another freely (the router draws pages that route again after a
// sign-in); none runs anything when loaded but this one, so the order they load in does
// not matter.
//
// Rules these files keep:
// - every text that comes from the API (above all what a receiver answered) is written with
//   textContent or as a text node, never parsed as markup (no HTML-string APIs here);
// - the admin's token stays in this tab: memory, and sessionStorage so a reload in the same
//   tab keeps the session (see docs/decisions.md, "Console");
// - an API error is shown with its problem+json `detail`.

import { config, finishOidcSignIn, loadConfig, renderSignIn, resumeSession, saveToken, showSession, tokenFromFragment } from "./auth.js";
import { showFatal } from "./api.js";
import { route } from "./router.js";

async function start() {
  await loadConfig();
  const fromFragment = tokenFromFragment();
  if (fromFragment && config.sign_in !== "oidc") saveToken(fromFragment);
  const params = new URLSearchParams(location.search);
  if (config.sign_in === "oidc" && (params.has("code") || params.has("error"))) {
    try {
      await finishOidcSignIn(params);
    } catch (err) {
      showSession();
      renderSignIn(err.message);
      return;
    }
  }
  resumeSession();
  await route();
}

document.addEventListener("DOMContentLoaded", () => { start().catch(showFatal); });
