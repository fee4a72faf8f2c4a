// The admin API at /api/v1: calls with the admin's token, its problem+json errors, the
// event catalogue, and how a failed call is shown (its `detail`; a lost session: sign-in).

import { h, notice, render, toast } from "./dom.js";
import { config, forgetToken, OIDC_TRIED_KEY, renderSignIn, showSession, startOidcSignIn, token } from "./auth.js";
import { BASE } from "./router.js";

const API = "/api/v1";

export class ApiError extends Error {
  constructor(status, problem) {
    super((problem && problem.detail) || "the API answered " + status);
    this.status = status;
    this.problem = problem || {};
  }
}

export class SignInNeeded extends Error {}

export async function api(method, path, body) {
  if (!token) throw new SignInNeeded("sign in first");
  const headers = { Authorization: "Bearer " + token, Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let answer;
  try {
    answer = await fetch(API + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (err) {
    throw new ApiError(0, { detail: "the API could not be reached (" + err.message + "); check your connection and try again" });
  }
  if (answer.status === 401) {
    forgetToken();
    throw new SignInNeeded("Your session has ended or the token was refused; sign in again.");
  }
  try { sessionStorage.removeItem(OIDC_TRIED_KEY); } catch (_) { /* none */ }
  if (answer.status === 204) return null;
  const text = await answer.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch (_) { json = null; }
  if (!answer.ok) {
    throw new ApiError(answer.status, json && typeof json === "object" ? json : { detail: text || "the API answered " + answer.status });
  }
  return json;
}

let catalogue = null;
/** The event catalogue, asked for once. */
export async function eventTypes() {
  if (!catalogue) catalogue = (await api("GET", "/event-types")).event_types;
  return catalogue;
}

/** Turns a failed call into what the admin sees; a lost session goes to sign-in. */
export function handle(err, slot) {
  if (err instanceof SignInNeeded) {
    showSession();
    if (config && config.sign_in === "oidc" && !sessionStorage.getItem(OIDC_TRIED_KEY)) {
      sessionStorage.setItem(OIDC_TRIED_KEY, "1");
      startOidcSignIn().catch(showFatal);
      return;
    }
    renderSignIn(err.message);
    return;
  }
  const message = err instanceof ApiError ? err.message : "Something went wrong: " + err.message;
  if (slot) {
    slot.replaceChildren(notice("error", message));
    slot.hidden = false;
  } else {
    toast(message, "error");
  }
}

export function showFatal(err) {
  render("Problem", h("section", { class: "page" }, h("h1", {}, "Something went wrong"), notice("error", String(err.message || err)),
    h("p", {}, h("a", { href: BASE, class: "btn" }, "Back to the webhooks"))));
}
