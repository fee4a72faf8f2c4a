// Sign-in: the admin's token (memory, and this tab's sessionStorage so a reload keeps the
// session: docs/decisions.md, "Console"), how the console signs in (config.json), the
// OpenID Connect code flow with PKCE, the topbar's session and the sign-in page.

import { h, notice, render } from "./dom.js";
import { showFatal } from "./api.js";
import { BASE, route } from "./router.js";

const TOKEN_KEY = "comps-webhooks.token";
const OIDC_KEY = "comps-webhooks.oidc";
/** Set when a refused token sent the admin through the issuer; cleared by an accepted call. */
export const OIDC_TRIED_KEY = OIDC_KEY + ".tried";

/** The admin's token, or null. */
export let token = null;
/** How the console signs in: `{sign_in: "token"}` or `{sign_in: "oidc", issuer, client_id, scope}`. */
export let config = null;

// ------------------------------------------------------------------ the token

export function saveToken(value, expiresIn) {
  token = value;
  try {
    const expires = expiresIn ? Date.now() + Number(expiresIn) * 1000 : null;
    sessionStorage.setItem(TOKEN_KEY, JSON.stringify({ token: value, expires }));
  } catch (_) { /* memory only */ }
}

function loadToken() {
  try {
    const saved = JSON.parse(sessionStorage.getItem(TOKEN_KEY) || "null");
    if (saved && saved.token && (!saved.expires || saved.expires > Date.now() + 30000)) {
      return saved.token;
    }
  } catch (_) { /* none */ }
  return null;
}

/** The token this tab kept, unless one is already in memory. */
export function resumeSession() {
  token = token || loadToken();
}

export function forgetToken() {
  token = null;
  try { sessionStorage.removeItem(TOKEN_KEY); } catch (_) { /* none */ }
}

/** `#token=…` (what `make dev` prints): taken, then removed from the address bar. */
export function tokenFromFragment() {
  const fragment = new URLSearchParams(location.hash.slice(1));
  const found = fragment.get("token");
  if (found === null) return null;
  fragment.delete("token");
  const rest = fragment.toString();
  history.replaceState(history.state, "", location.pathname + location.search + (rest ? "#" + rest : ""));
  return found;
}

export async function loadConfig() {
  try {
    const answer = await fetch(BASE + "/assets/config.json", { headers: { Accept: "application/json" } });
    config = answer.ok ? await answer.json() : { sign_in: "token" };
  } catch (_) {
    config = { sign_in: "token" };
  }
}

// ------------------------------------------------------------------ OpenID Connect

function base64url(bytes) {
  let text = "";
  for (const b of new Uint8Array(bytes)) text += String.fromCharCode(b);
  return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function randomText(n) {
  return base64url(crypto.getRandomValues(new Uint8Array(n)));
}

async function discovery() {
  const url = config.issuer + "/.well-known/openid-configuration";
  const answer = await fetch(url, { headers: { Accept: "application/json" } });
  if (!answer.ok) throw new Error("the sign-in service's discovery document (" + url + ") answered " + answer.status);
  const doc = await answer.json();
  if (!doc.authorization_endpoint || !doc.token_endpoint) {
    throw new Error("the sign-in service's discovery document names no authorization or token endpoint");
  }
  return doc;
}

function redirectUri() {
  return location.origin + BASE;
}

/** OpenID Connect authorization code + PKCE (S256): off to the issuer's sign-in page. */
export async function startOidcSignIn() {
  const doc = await discovery();
  const verifier = randomText(48);
  const challenge = base64url(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier)));
  const state = randomText(24);
  const nonce = randomText(24);
  sessionStorage.setItem(OIDC_KEY, JSON.stringify({
    verifier, state, nonce, returnTo: location.pathname + location.hash,
  }));
  const url = new URL(doc.authorization_endpoint);
  url.searchParams.set("response_type", "code");
  url.searchParams.set("client_id", config.client_id);
  url.searchParams.set("redirect_uri", redirectUri());
  url.searchParams.set("scope", config.scope);
  url.searchParams.set("state", state);
  url.searchParams.set("nonce", nonce);
  url.searchParams.set("code_challenge", challenge);
  url.searchParams.set("code_challenge_method", "S256");
  location.assign(url.toString());
}

/** What a failed sign-in shows: our words only (see `finishOidcSignIn`). */
const SIGN_IN_FAILED = "Sign-in failed. Try again, or ask your administrator.";

/** The claims of a JWT: its payload, base64url-encoded JSON. Its signature is the issuer's
 *  business (the token came straight from the token endpoint over TLS), and the access
 *  token is verified by API Gateway's authorizer. `null` when it is not a JWT. */
function jwtClaims(jwt) {
  const parts = typeof jwt === "string" ? jwt.split(".") : [];
  if (parts.length !== 3) return null;
  try {
    const b64 = parts[1].replace(/-/g, "+").replace(/_/g, "/");
    const text = atob(b64 + "=".repeat((4 - (b64.length % 4)) % 4));
    const claims = JSON.parse(new TextDecoder().decode(Uint8Array.from(text, (c) => c.charCodeAt(0))));
    return claims && typeof claims === "object" && !Array.isArray(claims) ? claims : null;
  } catch (_) {
    return null;
  }
}

/** The sign-in `startOidcSignIn` left in this tab (verifier, state, nonce), taken once. */
function takePendingSignIn() {
  let pending = null;
  try { pending = JSON.parse(sessionStorage.getItem(OIDC_KEY) || "null"); } catch (_) { /* none */ }
  sessionStorage.removeItem(OIDC_KEY);
  return pending;
}

/** The authorization code for the token endpoint's answer (with the access and ID tokens). */
async function exchangeCode(code, pending) {
  const doc = await discovery();
  const answer = await fetch(doc.token_endpoint, {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded", Accept: "application/json" },
    body: new URLSearchParams({
      grant_type: "authorization_code",
      code,
      redirect_uri: redirectUri(),
      client_id: config.client_id,
      code_verifier: pending.verifier,
    }),
  });
  const body = await answer.json().catch(() => ({}));
  if (!answer.ok || !body.access_token) {
    throw new Error("the sign-in service refused the code: " + (body.error_description || body.error || answer.status));
  }
  return body;
}

/** The ID token must carry the nonce this tab sent: else the code was not issued for this
 *  sign-in (a replayed or injected answer), and nothing of it is kept. */
function requireOwnNonce(idToken, pending) {
  const claims = jwtClaims(idToken);
  if (!claims || typeof claims.nonce !== "string" || !pending.nonce || claims.nonce !== pending.nonce) {
    console.warn("sign-in refused: " + (claims ? "the ID token's nonce is not this sign-in's" : "the sign-in service sent no readable ID token"));
    throw new Error(SIGN_IN_FAILED);
  }
}

/** Back from the issuer with `?code=…&state=…`: the code for a token. */
export async function finishOidcSignIn(params) {
  const pending = takePendingSignIn();
  history.replaceState(null, "", BASE);
  if (params.get("error")) {
    // Anyone can link here with `?error=…&error_description=<any text>`: shown on our
    // origin, that text would be a phishing line the admin has reason to trust. The page
    // says our words; the issuer's error code goes to the browser's console only.
    console.warn("sign-in failed: the sign-in service answered error=" + JSON.stringify(params.get("error").slice(0, 64)));
    throw new Error(SIGN_IN_FAILED);
  }
  if (!pending || pending.state !== params.get("state")) {
    throw new Error("this sign-in answer does not belong to a sign-in started in this tab; sign in again");
  }
  const body = await exchangeCode(params.get("code") || "", pending);
  requireOwnNonce(body.id_token, pending);
  saveToken(body.access_token, body.expires_in);
  history.replaceState(null, "", pending.returnTo || BASE);
}

// ------------------------------------------------------------------ the session, the sign-in page

export function showSession() {
  const slot = document.getElementById("session");
  if (!slot) return;
  slot.replaceChildren();
  if (token) {
    slot.append(h("span", { class: "session-state" }, h("span", { class: "dot dot-ok", "aria-hidden": "true" }), "Signed in"),
      h("button", { type: "button", class: "btn btn-quiet btn-small", onclick: signOut }, "Sign out"));
  }
}

function signOut() {
  forgetToken();
  showSession();
  renderSignIn("You are signed out.");
}

/** No token (or a refused one): the way to get one. */
export function renderSignIn(reason) {
  const children = [h("h1", {}, "Sign in")];
  if (reason) children.push(notice("info", reason));
  if (config && config.sign_in === "oidc") {
    children.push(h("p", {}, "The console signs you in with your organisation's sign-in service."),
      h("button", {
        type: "button", class: "btn btn-primary", onclick: () => startOidcSignIn().catch(showFatal),
      }, "Sign in"));
  } else {
    const input = h("input", { id: "token", name: "token", type: "password", autocomplete: "off", required: true, class: "input" });
    children.push(
      h("p", {}, "Open the address ", h("code", {}, "make dev"), " prints (it signs you in), or paste the admin token (",
        h("code", {}, "WEBHOOKS_ADMIN_TOKEN"), ", ", h("code", {}, "dev-admin-token"), " by default)."),
      h("form", {
        class: "card stack narrow", onsubmit: (e) => {
          e.preventDefault();
          saveToken(input.value.trim());
          route();
        },
      }, h("div", { class: "field" }, h("label", { for: "token" }, "Admin token"), input),
      h("div", {}, h("button", { type: "submit", class: "btn btn-primary" }, "Sign in"))));
  }
  render("Sign in", h("section", { class: "page" }, children));
}
