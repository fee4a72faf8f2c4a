// The webhooks console (SPEC §8): the list, the New Webhook form and a webhook's page with
// its delivery history, on the admin API at /api/v1. No build step, no dependencies.
//
// Rules this file keeps:
// - every text that comes from the API (above all what a receiver answered) is written with
//   textContent or as a text node, never parsed as markup (no HTML-string APIs here);
// - the admin's token stays in this tab: memory, and sessionStorage so a reload in the same
//   tab keeps the session (see docs/decisions.md, "Console");
// - an API error is shown with its problem+json `detail`.
"use strict";

(function () {
  const BASE = "/admin/webhooks";
  const API = "/api/v1";
  const TOKEN_KEY = "comps-webhooks.token";
  const OIDC_KEY = "comps-webhooks.oidc";
  const FLASH_KEY = "comps-webhooks.flash";
  const MAX_ATTEMPTS = 6;

  // ------------------------------------------------------------------ DOM helpers

  /** An element: h("a", {href: "/x", class: "c"}, "text", child, …). Strings become text. */
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key.startsWith("on") && typeof value === "function") {
        el.addEventListener(key.slice(2), value);
      } else if (key === "dataset") {
        Object.assign(el.dataset, value);
      } else if (value === true) {
        el.setAttribute(key, "");
      } else {
        el.setAttribute(key, String(value));
      }
    }
    append(el, children);
    return el;
  }

  function append(el, children) {
    for (const child of children.flat(Infinity)) {
      if (child === null || child === undefined || child === false) continue;
      el.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return el;
  }

  /** A small inline icon (decorative: the text next to it says the same). */
  function icon(name) {
    const paths = {
      ok: "M3.5 8.5l3 3 6-7",
      fail: "M4.5 4.5l7 7m0-7l-7 7",
      pause: "M5.5 3.5v9m5-9v9",
      play: "M5 3.5l7 4.5-7 4.5z",
      copy: "M5.5 5.5h7v7h-7zM3.5 10.5v-7h7",
      trash: "M3 4.5h10M6.5 4.5V3h3v1.5M4.5 4.5l.7 8.5h5.6l.7-8.5",
      edit: "M3 13l1-3.5L10.5 3 13 5.5 6.5 12z",
      list: "M3 4.5h10M3 8h10M3 11.5h10",
      send: "M2.5 8l11-5-4 11-2-4.5z",
      key: "M10 2.5a3.5 3.5 0 1 1-2.9 5.4L3 12v1.5h1.5V12H6v-1.5h1.5l.9-.9",
      refresh: "M13 8a5 5 0 1 1-1.5-3.5M13 2.5v3h-3",
      warn: "M8 2.5l6 11H2zM8 6.5v3m0 2v.01",
      info: "M8 2.5a5.5 5.5 0 1 1 0 11 5.5 5.5 0 0 1 0-11zM8 7.5v3.5m0-5.5v.01",
      clock: "M8 2.5a5.5 5.5 0 1 1 0 11 5.5 5.5 0 0 1 0-11zM8 5v3.2l2 1.3",
    };
    const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
    svg.setAttribute("viewBox", "0 0 16 16");
    svg.setAttribute("class", "icon icon-" + name);
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    const path = document.createElementNS("http://www.w3.org/2000/svg", "path");
    path.setAttribute("d", paths[name] || "");
    svg.append(path);
    return svg;
  }

  function main() {
    return document.getElementById("main");
  }

  /** Replaces the page's content and moves focus to its heading (for screen readers). */
  function render(title, ...children) {
    document.title = title + " · Webhooks · Admin";
    const root = main();
    root.replaceChildren(...children.flat().filter(Boolean));
    const heading = root.querySelector("h1");
    if (heading) {
      heading.setAttribute("tabindex", "-1");
      heading.focus({ preventScroll: true });
    }
  }

  function toast(message, kind) {
    const region = document.getElementById("toasts");
    const item = h("div", { class: "toast toast-" + (kind || "ok") }, icon(kind === "error" ? "fail" : "ok"), h("span", {}, message));
    region.append(item);
    setTimeout(() => item.classList.add("toast-leaving"), 4500);
    setTimeout(() => item.remove(), 5000);
  }

  function notice(kind, ...children) {
    return h("div", { class: "notice notice-" + kind, role: kind === "error" ? "alert" : null },
      icon(kind === "error" ? "fail" : kind === "warn" ? "warn" : "info"), h("div", {}, ...children));
  }

  function setFlash(message) {
    try { sessionStorage.setItem(FLASH_KEY, message); } catch (_) { /* private mode */ }
  }

  function takeFlash() {
    try {
      const message = sessionStorage.getItem(FLASH_KEY);
      sessionStorage.removeItem(FLASH_KEY);
      return message;
    } catch (_) {
      return null;
    }
  }

  // ------------------------------------------------------------------ time

  function formatTime(iso) {
    const at = new Date(iso);
    if (Number.isNaN(at.getTime())) return String(iso);
    return at.toLocaleString(undefined, {
      year: "numeric", month: "short", day: "numeric",
      hour: "2-digit", minute: "2-digit", second: "2-digit",
    });
  }

  function relativeTime(iso) {
    const at = new Date(iso).getTime();
    if (Number.isNaN(at)) return "";
    const seconds = Math.round((Date.now() - at) / 1000);
    const rtf = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });
    const steps = [[60, "second"], [60, "minute"], [24, "hour"], [30, "day"], [12, "month"]];
    let value = -seconds;
    for (const [size, unit] of steps) {
      if (Math.abs(value) < size) return rtf.format(Math.round(value), unit);
      value /= size;
    }
    return rtf.format(Math.round(value), "year");
  }

  function timeEl(iso) {
    return h("time", { datetime: iso, title: formatTime(iso) }, relativeTime(iso));
  }

  // ------------------------------------------------------------------ sign-in

  let token = null;
  let config = null;

  function saveToken(value, expiresIn) {
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

  function forgetToken() {
    token = null;
    try { sessionStorage.removeItem(TOKEN_KEY); } catch (_) { /* none */ }
  }

  /** `#token=…` (what `make dev` prints): taken, then removed from the address bar. */
  function tokenFromFragment() {
    const fragment = new URLSearchParams(location.hash.slice(1));
    const found = fragment.get("token");
    if (found === null) return null;
    fragment.delete("token");
    const rest = fragment.toString();
    history.replaceState(history.state, "", location.pathname + location.search + (rest ? "#" + rest : ""));
    return found;
  }

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
  async function startOidcSignIn() {
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

  /** Back from the issuer with `?code=…&state=…`: the code for a token. */
  async function finishOidcSignIn(params) {
    let pending = null;
    try { pending = JSON.parse(sessionStorage.getItem(OIDC_KEY) || "null"); } catch (_) { /* none */ }
    sessionStorage.removeItem(OIDC_KEY);
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
    const doc = await discovery();
    const answer = await fetch(doc.token_endpoint, {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded", Accept: "application/json" },
      body: new URLSearchParams({
        grant_type: "authorization_code",
        code: params.get("code") || "",
        redirect_uri: redirectUri(),
        client_id: config.client_id,
        code_verifier: pending.verifier,
      }),
    });
    const body = await answer.json().catch(() => ({}));
    if (!answer.ok || !body.access_token) {
      throw new Error("the sign-in service refused the code: " + (body.error_description || body.error || answer.status));
    }
    // The ID token must carry the nonce this tab sent: else the code was not issued for this
    // sign-in (a replayed or injected answer), and nothing of it is kept.
    const claims = jwtClaims(body.id_token);
    if (!claims || typeof claims.nonce !== "string" || !pending.nonce || claims.nonce !== pending.nonce) {
      console.warn("sign-in refused: " + (claims ? "the ID token's nonce is not this sign-in's" : "the sign-in service sent no readable ID token"));
      throw new Error(SIGN_IN_FAILED);
    }
    saveToken(body.access_token, body.expires_in);
    history.replaceState(null, "", pending.returnTo || BASE);
  }

  async function loadConfig() {
    try {
      const answer = await fetch(BASE + "/assets/config.json", { headers: { Accept: "application/json" } });
      config = answer.ok ? await answer.json() : { sign_in: "token" };
    } catch (_) {
      config = { sign_in: "token" };
    }
  }

  function showSession() {
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
  function renderSignIn(reason) {
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

  // ------------------------------------------------------------------ the API

  class ApiError extends Error {
    constructor(status, problem) {
      super((problem && problem.detail) || "the API answered " + status);
      this.status = status;
      this.problem = problem || {};
    }
  }

  class SignInNeeded extends Error {}

  async function api(method, path, body) {
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
    try { sessionStorage.removeItem(OIDC_KEY + ".tried"); } catch (_) { /* none */ }
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
  async function eventTypes() {
    if (!catalogue) catalogue = (await api("GET", "/event-types")).event_types;
    return catalogue;
  }

  /** Turns a failed call into what the admin sees; a lost session goes to sign-in. */
  function handle(err, slot) {
    if (err instanceof SignInNeeded) {
      showSession();
      if (config && config.sign_in === "oidc" && !sessionStorage.getItem(OIDC_KEY + ".tried")) {
        sessionStorage.setItem(OIDC_KEY + ".tried", "1");
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

  function showFatal(err) {
    render("Problem", h("section", { class: "page" }, h("h1", {}, "Something went wrong"), notice("error", String(err.message || err)),
      h("p", {}, h("a", { href: BASE, class: "btn" }, "Back to the webhooks"))));
  }

  // ------------------------------------------------------------------ pieces

  function statusBadge(status) {
    const active = status === "active";
    return h("span", { class: "badge " + (active ? "badge-ok" : "badge-paused") },
      icon(active ? "play" : "pause"), active ? "Active" : "Paused");
  }

  // The endpoint's circuit breaker: open, due attempts are logged as not sent.
  function circuitBadge(circuit) {
    if (!circuit || circuit.state !== "open") return null;
    return h("span", { class: "badge badge-fail", title: "The endpoint stopped answering: deliveries wait for a test request to succeed" },
      icon("fail"), "Not answering");
  }

  function circuitNotice(circuit) {
    if (!circuit) return null;
    if (circuit.state === "open") {
      return notice("warn",
        h("strong", {}, "The endpoint is not answering, so nothing is sent to it for now. "),
        circuit.failures_in_row + " attempts in a row got no answer" +
          (circuit.last_error ? " (the last: " + shortError(circuit.last_error) + ")" : "") +
          ". Due attempts are logged as not sent and count towards the 6; one test request goes at " +
          formatTime(circuit.next_probe_at) + ", and a 2xx answer resumes deliveries. Fixed the URL? Saving it tries at once.");
    }
    if (circuit.failures_in_row > 0) {
      return h("p", { class: "small muted" }, circuit.failures_in_row +
        (circuit.failures_in_row === 1 ? " attempt" : " attempts") + " in a row got no answer; after 5, sending pauses until a test request succeeds.");
    }
    return null;
  }

  function outcomeMark(ok, detail) {
    return h("span", { class: "mark " + (ok ? "mark-ok" : "mark-fail") },
      icon(ok ? "ok" : "fail"), h("span", {}, ok ? "Succeeded" : "Failed"),
      detail ? h("span", { class: "mark-detail" }, detail) : null);
  }

  function lastDelivery(last) {
    if (!last) return h("span", { class: "muted" }, "No deliveries yet");
    const detail = last.response_status ? String(last.response_status) : last.error ? shortError(last.error) : "";
    return h("div", { class: "last" }, outcomeMark(last.ok, detail), timeEl(last.at));
  }

  function shortError(error) {
    const text = String(error);
    return text.length > 48 ? text.slice(0, 47) + "…" : text;
  }

  function eventChips(events) {
    return h("ul", { class: "chips", "aria-label": "Subscribed events" }, events.map((e) => h("li", { class: "chip" }, e)));
  }

  /** A modal dialog; resolves with true when its action is chosen. */
  function confirmDialog({ title, body, action, danger }) {
    return new Promise((resolve) => {
      const dialog = h("dialog", { class: "dialog", "aria-labelledby": "dialog-title" });
      const close = (value) => { dialog.close(); dialog.remove(); resolve(value); };
      dialog.append(
        h("h2", { id: "dialog-title" }, title),
        h("div", { class: "dialog-body" }, body),
        h("div", { class: "dialog-actions" },
          h("button", { type: "button", class: "btn", onclick: () => close(false) }, "Cancel"),
          h("button", { type: "button", class: "btn " + (danger ? "btn-danger" : "btn-primary"), "data-confirm": "", onclick: () => close(true) }, action)));
      dialog.addEventListener("cancel", (e) => { e.preventDefault(); close(false); });
      document.body.append(dialog);
      dialog.showModal();
      dialog.querySelector("button.btn").focus();
    });
  }

  /** A dialog that only shows things (Inspect). */
  function infoDialog(title, ...content) {
    const dialog = h("dialog", { class: "dialog dialog-wide", "aria-labelledby": "dialog-title" });
    const close = () => { dialog.close(); dialog.remove(); };
    dialog.append(
      h("div", { class: "dialog-head" }, h("h2", { id: "dialog-title" }, title),
        h("button", { type: "button", class: "btn btn-quiet btn-small", onclick: close, "aria-label": "Close" }, "Close")),
      h("div", { class: "dialog-body" }, content));
    dialog.addEventListener("close", () => dialog.remove());
    document.body.append(dialog);
    dialog.showModal();
    return dialog;
  }

  /** The secret, shown once, with a copy button and the warning. */
  function secretPanel(secret, heading, extra) {
    const field = h("input", { id: "secret", class: "input mono", readonly: true, value: secret, "aria-describedby": "secret-warning", spellcheck: "false" });
    const copied = h("span", { class: "copied", "aria-live": "polite" });
    const copy = async () => {
      try {
        await navigator.clipboard.writeText(secret);
      } catch (_) {
        field.select();
        document.execCommand("copy");
      }
      copied.textContent = "Copied";
      setTimeout(() => { copied.textContent = ""; }, 3000);
    };
    return h("section", { class: "card secret-card", "aria-labelledby": "secret-heading", "data-secret-panel": "" },
      h("h2", { id: "secret-heading", tabindex: "-1" }, heading),
      h("div", { class: "field" }, h("label", { for: "secret" }, "Signing secret"),
        h("div", { class: "secret-row" }, field,
          h("button", { type: "button", class: "btn btn-primary", onclick: copy, "data-copy": "" }, icon("copy"), "Copy"), copied)),
      notice("warn", h("strong", { id: "secret-warning" }, "Copy it now: this secret will not be shown again."),
        " Only its last characters are kept for display. Your receiver verifies ", h("code", {}, "X-Comps-Signature"), " with it."),
      extra || null);
  }

  function fieldError(id) {
    return h("p", { class: "field-error", id, hidden: true });
  }

  /** Shows the problem under the field it names, or at the form's top. */
  function showProblem(form, err) {
    for (const el of form.querySelectorAll(".field-error")) { el.hidden = true; el.textContent = ""; }
    for (const el of form.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
    if (!(err instanceof ApiError)) return handle(err);
    const field = err.problem.field;
    const slot = field && form.querySelector("[data-error-for='" + CSS.escape(field) + "']");
    if (slot) {
      slot.textContent = err.message;
      slot.hidden = false;
      const input = form.querySelector("[name='" + CSS.escape(field) + "']");
      if (input) { input.setAttribute("aria-invalid", "true"); input.focus(); }
    } else {
      const top = form.querySelector("[data-form-error]");
      top.replaceChildren(notice("error", err.message));
      top.hidden = false;
      top.focus();
    }
  }

  /** The URL check the page makes as you type (the API makes the same, and has the last word). */
  function urlHint(value) {
    const text = value.trim();
    if (!text) return "";
    if (/^http:\/\//i.test(text)) return "Plain http:// endpoints are rejected: use https://.";
    if (!/^https:\/\//i.test(text)) return "The URL must start with https://.";
    try { new URL(text); } catch (_) { return "This is not a valid URL."; }
    return "";
  }

  function urlField(value) {
    const input = h("input", {
      id: "url", name: "url", type: "url", class: "input mono", required: true, maxlength: 2048,
      placeholder: "https://crm.example.com/hooks/comps", value: value || "", autocomplete: "url",
      "aria-describedby": "url-help url-error", spellcheck: "false",
    });
    const error = h("p", { class: "field-error", id: "url-error", "data-error-for": "url", hidden: true });
    const check = () => {
      const hint = urlHint(input.value);
      error.textContent = hint;
      error.hidden = !hint;
      if (hint) input.setAttribute("aria-invalid", "true"); else input.removeAttribute("aria-invalid");
    };
    input.addEventListener("blur", check);
    input.addEventListener("input", () => { if (!error.hidden) check(); });
    return h("div", { class: "field" },
      h("label", { for: "url" }, "URL"),
      h("p", { class: "help", id: "url-help" }, "The HTTPS endpoint that receives the deliveries."),
      input, error);
  }

  function eventsFieldset(types, selected) {
    const chosen = new Set(selected || []);
    return h("fieldset", { class: "field events", "aria-describedby": "events-help events-error" },
      h("legend", {}, "Events"),
      h("p", { class: "help", id: "events-help" }, "Tick one or more event types to subscribe to."),
      h("div", { class: "event-grid" }, types.map((t) => {
        const id = "event-" + t.type.replace(/[^a-z0-9]/gi, "-");
        return h("label", { class: "event-option", for: id },
          h("input", { type: "checkbox", id, name: "events", value: t.type, checked: chosen.has(t.type) }),
          h("span", { class: "event-text" }, h("code", {}, t.type), h("span", { class: "event-desc" }, t.description)));
      })),
      h("p", { class: "field-error", id: "events-error", "data-error-for": "events", hidden: true }));
  }

  function activeSwitch(checked, label, help) {
    return h("div", { class: "field switch-field" },
      h("label", { class: "switch", for: "active" },
        h("input", { type: "checkbox", id: "active", name: "active", role: "switch", checked, "aria-describedby": "active-help" }),
        h("span", { class: "switch-track", "aria-hidden": "true" }, h("span", { class: "switch-thumb" })),
        h("span", { class: "switch-label" }, label)),
      h("p", { class: "help", id: "active-help" }, help));
  }

  function checkedEvents(form) {
    return [...form.querySelectorAll("input[name='events']:checked")].map((i) => i.value);
  }

  /** What the New Webhook and the edit form send: the body of the API's create and PATCH. */
  function webhookBody(form, name) {
    return {
      name: name.value.trim(),
      url: form.querySelector("#url").value.trim(),
      events: checkedEvents(form),
      active: form.querySelector("#active").checked,
    };
  }

  function busy(button, on, text) {
    if (on) {
      button.dataset.label = button.textContent;
      button.disabled = true;
      button.setAttribute("aria-busy", "true");
      if (text) button.textContent = text;
    } else {
      button.disabled = false;
      button.removeAttribute("aria-busy");
      if (button.dataset.label && text) button.textContent = button.dataset.label;
    }
  }

  // ------------------------------------------------------------------ the list

  async function listPage() {
    const flash = takeFlash();
    const { webhooks } = await api("GET", "/webhooks");
    webhooks.sort((a, b) => a.name.localeCompare(b.name));
    const head = h("div", { class: "page-head" },
      h("div", {}, h("h1", {}, "Webhooks"),
        h("p", { class: "lede" }, "Signed HTTP callbacks to your own systems when events happen on the platform.")),
      h("a", { href: BASE + "/new", class: "btn btn-primary", "data-new-webhook": "" }, "New Webhook"));
    const flashEl = flash ? notice("info", flash) : null;
    if (webhooks.length === 0) {
      render("Webhooks", h("section", { class: "page" }, head, flashEl,
        h("div", { class: "empty card" },
          h("div", { class: "empty-mark", "aria-hidden": "true" }, icon("send")),
          h("p", { class: "empty-title" }, "No webhooks yet — ", h("a", { href: BASE + "/new" }, "New Webhook")),
          h("p", { class: "muted" }, "Create one to have the platform's events posted to your endpoint, signed and retried."))));
      return;
    }
    const rows = webhooks.map((w) => webhookRow(w));
    render("Webhooks", h("section", { class: "page" }, head, flashEl,
      h("div", { class: "table-wrap card" },
        h("table", { class: "table webhooks" },
          h("caption", { class: "visually-hidden" }, "Configured webhooks"),
          h("thead", {}, h("tr", {},
            h("th", { scope: "col" }, "Name"), h("th", { scope: "col" }, "URL"), h("th", { scope: "col" }, "Events"),
            h("th", { scope: "col" }, "Status"), h("th", { scope: "col" }, "Last delivery"),
            h("th", { scope: "col" }, h("span", { class: "visually-hidden" }, "Actions")))),
          h("tbody", {}, rows)))));
  }

  function webhookRow(w) {
    const page = BASE + "/" + encodeURIComponent(w.id);
    const paused = w.status !== "active";
    const toggle = h("button", { type: "button", class: "btn btn-small", "data-action": paused ? "resume" : "pause" },
      icon(paused ? "play" : "pause"), paused ? "Resume" : "Pause");
    toggle.setAttribute("aria-label", (paused ? "Resume " : "Pause ") + w.name);
    toggle.addEventListener("click", async () => {
      busy(toggle, true);
      try {
        const updated = await api("PATCH", "/webhooks/" + encodeURIComponent(w.id), { active: paused });
        toast(updated.status === "active" ? "“" + w.name + "” resumed" : "“" + w.name + "” paused");
        row.replaceWith(webhookRow(updated));
        document.querySelector("tr[data-id='" + CSS.escape(w.id) + "'] [data-action]")?.focus();
      } catch (err) {
        busy(toggle, false);
        handle(err);
      }
    });
    const del = h("button", { type: "button", class: "btn btn-small btn-danger-quiet", "data-action": "delete", "aria-label": "Delete " + w.name },
      icon("trash"), "Delete");
    del.addEventListener("click", () => deleteWebhook(w, () => {
      row.remove();
      if (!document.querySelector("tr[data-id]")) listPage().catch(handle);
    }));
    const row = h("tr", { "data-id": w.id },
      h("td", { "data-label": "Name" }, h("a", { href: page, class: "name-link" }, w.name)),
      h("td", { "data-label": "URL" }, h("span", { class: "url mono", title: w.url }, w.url)),
      h("td", { "data-label": "Events" }, eventChips(w.events)),
      h("td", { "data-label": "Status" }, statusBadge(w.status), " ", circuitBadge(w.circuit)),
      h("td", { "data-label": "Last delivery" }, lastDelivery(w.last_delivery)),
      h("td", { class: "actions" }, h("div", { class: "actions-inner" },
        h("a", { href: page, class: "btn btn-small", "aria-label": "Edit " + w.name }, icon("edit"), "Edit"),
        toggle,
        h("a", { href: page + "#deliveries", class: "btn btn-small", "aria-label": "View deliveries of " + w.name }, icon("list"), "Deliveries"),
        del)));
    return row;
  }

  async function deleteWebhook(w, done) {
    const ok = await confirmDialog({
      title: "Delete “" + w.name + "”?",
      body: [h("p", {}, "Its URL gets no more deliveries, queued ones end cancelled, and its delivery history goes with it. This cannot be undone."),
        h("p", { class: "mono small" }, w.url)],
      action: "Delete webhook",
      danger: true,
    });
    if (!ok) return;
    try {
      await api("DELETE", "/webhooks/" + encodeURIComponent(w.id));
      toast("“" + w.name + "” deleted");
      done();
    } catch (err) {
      handle(err);
    }
  }

  // ------------------------------------------------------------------ New Webhook

  async function newPage() {
    const types = await eventTypes();
    const name = h("input", { id: "name", name: "name", class: "input", required: true, maxlength: 100, placeholder: "Fulfilment CRM sync", autocomplete: "off", "aria-describedby": "name-help name-error" });
    const save = h("button", { type: "submit", class: "btn btn-primary" }, "Save");
    const form = h("form", { class: "card stack form", novalidate: true, "aria-labelledby": "form-title" },
      h("div", { "data-form-error": "", tabindex: "-1", hidden: true }),
      h("div", { class: "field" }, h("label", { for: "name" }, "Name"),
        h("p", { class: "help", id: "name-help" }, "A human-readable label, e.g. “Fulfilment CRM sync”."),
        name, h("p", { class: "field-error", id: "name-error", "data-error-for": "name", hidden: true })),
      urlField(""),
      eventsFieldset(types, []),
      h("div", { class: "field" }, h("span", { class: "label" }, "Secret"),
        h("p", { class: "help" }, icon("key"), " Generated when you save: an HMAC-SHA256 signing secret, shown once in full — copy it then; it won't be shown again.")),
      activeSwitch(true, "Active", "Toggle off to create the webhook paused: it gets no deliveries until you resume it."),
      h("div", { class: "form-actions" }, save, h("a", { href: BASE, class: "btn btn-quiet" }, "Cancel")));
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const body = webhookBody(form, name);
      const local = localProblem(body);
      if (local) return showProblem(form, local);
      busy(save, true, "Saving…");
      try {
        const created = await api("POST", "/webhooks", body);
        catalogue = catalogue || types;
        createdPage(created);
      } catch (err) {
        busy(save, false, "Saving…");
        showProblem(form, err);
      }
    });
    render("New Webhook", h("section", { class: "page" },
      breadcrumbs("New Webhook"),
      h("div", { class: "page-head" }, h("div", {}, h("h1", { id: "form-title" }, "New Webhook"),
        h("p", { class: "lede" }, "Every event you tick reaches this endpoint signed, retried up to 6 times, and logged."))),
      form));
  }

  /** What the page can tell before asking the API (the API checks all of it again). */
  function localProblem(body) {
    if (!body.name) return new ApiError(422, { field: "name", detail: "Give the webhook a name (1-100 characters)." });
    if (!body.url) return new ApiError(422, { field: "url", detail: "Enter the https:// URL that receives the deliveries." });
    if (body.events && body.events.length === 0) return new ApiError(422, { field: "events", detail: "Tick at least one event type." });
    return null;
  }

  function createdPage(created) {
    const page = BASE + "/" + encodeURIComponent(created.id);
    render("Webhook created", h("section", { class: "page" },
      breadcrumbs(created.name),
      h("div", { class: "page-head" }, h("div", {}, h("h1", {}, "“" + created.name + "” is created"),
        h("p", { class: "lede" }, statusBadge(created.status), " ", h("span", { class: "mono" }, created.url)))),
      secretPanel(created.secret, "Your signing secret",
        h("div", { class: "form-actions" },
          h("a", { href: page, class: "btn btn-primary", "data-continue": "" }, "I have copied it — go to the webhook"),
          h("a", { href: BASE, class: "btn btn-quiet" }, "Back to all webhooks")))));
    history.replaceState(null, "", page);
    document.getElementById("secret-heading").focus();
  }

  function breadcrumbs(current) {
    return h("nav", { class: "crumbs", "aria-label": "Breadcrumb" },
      h("ol", {}, h("li", {}, h("a", { href: BASE }, "Webhooks")), h("li", { "aria-current": "page" }, current)));
  }

  // ------------------------------------------------------------------ a webhook's page

  async function webhookPage(id) {
    const path = "/webhooks/" + encodeURIComponent(id);
    let webhook;
    try {
      webhook = await api("GET", path);
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) {
        render("Not found", h("section", { class: "page" }, breadcrumbs("Not found"), h("h1", {}, "No such webhook"),
          notice("error", err.message), h("p", {}, h("a", { href: BASE, class: "btn" }, "Back to all webhooks"))));
        return;
      }
      throw err;
    }
    const types = await eventTypes();
    const head = h("div", { class: "page-head" });
    const showHead = (w) => head.replaceChildren(
      h("div", {}, h("h1", {}, w.name),
        h("p", { class: "lede" }, statusBadge(w.status), " ", circuitBadge(w.circuit), " ", h("span", { class: "mono url-lede" }, w.url)),
        circuitNotice(w.circuit)),
      h("a", { href: "#deliveries", class: "btn" }, icon("list"), "Deliveries"));
    showHead(webhook);

    const history = deliveryHistory(webhook, types);
    const settings = settingsForm(webhook, types, (updated) => {
      webhook = updated;
      showHead(updated);
      history.webhookChanged(updated);
    });
    render(webhook.name, h("section", { class: "page" },
      breadcrumbs(webhook.name), head,
      h("div", { class: "columns" },
        h("div", { class: "column-main" }, settings),
        h("div", { class: "column-side" }, secretSection(() => webhook), testEventSection(() => webhook, types, history), dangerSection(() => webhook))),
      history.element));
    if (location.hash === "#deliveries") {
      document.getElementById("deliveries-title").focus();
      document.getElementById("deliveries").scrollIntoView();
    }
    await history.refresh();
    history.poll();
  }

  function settingsForm(webhook, types, changed) {
    const name = h("input", { id: "name", name: "name", class: "input", required: true, maxlength: 100, value: webhook.name, autocomplete: "off" });
    const save = h("button", { type: "submit", class: "btn btn-primary" }, "Save changes");
    const form = h("form", { class: "card stack form", novalidate: true, "aria-labelledby": "settings-title" },
      h("h2", { id: "settings-title" }, "Settings"),
      h("div", { "data-form-error": "", tabindex: "-1", hidden: true }),
      h("div", { class: "field" }, h("label", { for: "name" }, "Name"), name,
        h("p", { class: "field-error", "data-error-for": "name", hidden: true })),
      urlField(webhook.url),
      eventsFieldset(types, webhook.events),
      activeSwitch(webhook.status === "active", "Active", "Off: paused. A paused webhook gets no new deliveries; queued ones end cancelled (recover them later)."),
      h("div", { class: "form-actions" }, save));
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const body = webhookBody(form, name);
      const local = localProblem(body);
      if (local) return showProblem(form, local);
      busy(save, true, "Saving…");
      try {
        const updated = await api("PATCH", "/webhooks/" + encodeURIComponent(webhook.id), body);
        showProblem(form, new ApiError(0, {}));
        form.querySelector("[data-form-error]").hidden = true;
        webhook = updated;
        toast("Changes saved");
        changed(updated);
      } catch (err) {
        showProblem(form, err);
      } finally {
        busy(save, false, "Saving…");
      }
    });
    return form;
  }

  function secretSection(current) {
    const slot = h("div", { class: "secret-slot" });
    const hint = h("code", { class: "hint" }, current().secret_hint);
    const rotate = h("button", { type: "button", class: "btn", "data-action": "rotate" }, icon("key"), "Rotate secret");
    rotate.addEventListener("click", async () => {
      const ok = await confirmDialog({
        title: "Rotate the signing secret?",
        body: [notice("warn", h("strong", {}, "The old secret stops verifying immediately."),
          " Every delivery from now on is signed with the new one: update your receiving endpoint first (or be ready to, within seconds).")],
        action: "Rotate secret",
        danger: true,
      });
      if (!ok) return;
      busy(rotate, true);
      try {
        const rotated = await api("POST", "/webhooks/" + encodeURIComponent(current().id) + "/rotate-secret");
        hint.textContent = rotated.secret_hint;
        slot.replaceChildren(secretPanel(rotated.secret, "Your new signing secret"));
        document.getElementById("secret-heading").focus();
      } catch (err) {
        handle(err);
      } finally {
        busy(rotate, false);
      }
    });
    return h("section", { class: "card stack", "aria-labelledby": "signing-title" },
      h("h2", { id: "signing-title" }, "Signing secret"),
      h("p", { class: "muted" }, "Current secret: ", hint),
      h("p", { class: "small muted" }, "Rotate it if you suspect it leaked. The new secret is shown once."),
      h("div", {}, rotate), slot);
  }

  function testEventSection(current, types, history) {
    const select = h("select", { id: "test-type", name: "event_type", class: "input" });
    const fill = () => {
      const subscribed = new Set(current().events);
      const mine = types.filter((t) => subscribed.has(t.type));
      const others = types.filter((t) => !subscribed.has(t.type));
      const group = (label, list) => list.length ? h("optgroup", { label }, list.map((t) => h("option", { value: t.type }, t.type))) : null;
      select.replaceChildren(...[group("Subscribed", mine), group("Other event types", others)].filter(Boolean));
    };
    fill();
    const send = h("button", { type: "submit", class: "btn" }, icon("send"), "Send test event");
    const result = h("p", { class: "small", "aria-live": "polite" });
    const form = h("form", { class: "card stack", "aria-labelledby": "test-title" },
      h("h2", { id: "test-title" }, "Send a test event"),
      h("p", { class: "small muted" }, "Posts the catalogue's example of the type to this webhook only, signed as usual. It shows in the history marked ", h("span", { class: "tag tag-test" }, "Test"), "."),
      h("div", { class: "field" }, h("label", { for: "test-type" }, "Event type"), select),
      h("div", {}, send), result);
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      busy(send, true);
      result.textContent = "";
      try {
        const sent = await api("POST", "/webhooks/" + encodeURIComponent(current().id) + "/test-event", { event_type: select.value });
        result.replaceChildren(icon("ok"), " Queued ", h("code", {}, sent.event_type), " as event ", h("code", {}, sent.event_id), ". Its attempt appears below in a moment.");
        history.expect(sent.delivery_id);
      } catch (err) {
        result.replaceChildren(notice("error", err.message));
        if (err instanceof SignInNeeded) handle(err);
      } finally {
        busy(send, false);
      }
    });
    form.refill = fill;
    return form;
  }

  function dangerSection(current) {
    const del = h("button", { type: "button", class: "btn btn-danger", "data-action": "delete" }, icon("trash"), "Delete webhook");
    del.addEventListener("click", () => deleteWebhook(current(), () => {
      setFlash("“" + current().name + "” was deleted.");
      location.assign(BASE);
    }));
    return h("section", { class: "card stack danger-zone", "aria-labelledby": "danger-title" },
      h("h2", { id: "danger-title" }, "Delete"),
      h("p", { class: "small muted" }, "Removes the webhook and stops its deliveries. You will be asked to confirm."),
      h("div", {}, del));
  }

  // ------------------------------------------------------------------ delivery history

  function deliveryHistory(webhook, types) {
    let current = webhook;
    let expected = new Set();
    let timer = null;
    const body = h("tbody", {});
    const status = h("p", { class: "small muted", "aria-live": "polite" });
    const errorSlot = h("div", { hidden: true });
    const table = h("div", { class: "table-wrap" },
      h("table", { class: "table attempts" },
        h("caption", { class: "visually-hidden" }, "The last 100 delivery attempts, newest first"),
        h("thead", {}, h("tr", {},
          h("th", { scope: "col" }, "Event"), h("th", { scope: "col" }, "Status"), h("th", { scope: "col" }, "Attempt"),
          h("th", { scope: "col" }, "Duration"), h("th", { scope: "col" }, "Time"),
          h("th", { scope: "col" }, h("span", { class: "visually-hidden" }, "Actions")))),
        body));
    const empty = h("div", { class: "empty", hidden: true },
      h("p", { class: "empty-title" }, "No deliveries yet"),
      h("p", { class: "muted" }, "Attempts appear here as events arrive. Send a test event to see one now."));
    const refreshButton = h("button", { type: "button", class: "btn btn-small", onclick: () => refresh(true) }, icon("refresh"), "Refresh");

    const element = h("section", { class: "card history", id: "deliveries", "aria-labelledby": "deliveries-title" },
      h("div", { class: "section-head" },
        h("div", {}, h("h2", { id: "deliveries-title", tabindex: "-1" }, "Delivery history"),
          h("p", { class: "small muted" }, "The last 100 attempts, newest first. Updates on its own while this page is open.")),
        h("div", { class: "toolbar" }, refreshButton)),
      recoverForm(() => current, () => refresh()),
      errorSlot, status, table, empty);

    async function refresh(announce) {
      try {
        const { attempts } = await api("GET", "/webhooks/" + encodeURIComponent(current.id) + "/attempts?limit=100");
        errorSlot.hidden = true;
        body.replaceChildren(...attempts.map((a) => attemptRow(a)));
        empty.hidden = attempts.length > 0;
        table.hidden = attempts.length === 0;
        for (const a of attempts) expected.delete(a.delivery_id);
        const when = new Date().toLocaleTimeString();
        status.textContent = attempts.length + (attempts.length === 1 ? " attempt" : " attempts") + " · updated " + when;
        if (announce) toast("Delivery history updated");
      } catch (err) {
        handle(err, errorSlot);
      }
    }

    function poll() {
      clearInterval(timer);
      timer = setInterval(() => {
        if (document.visibilityState === "visible" && !document.querySelector("dialog[open]")) refresh();
      }, expected.size ? 1500 : 5000);
    }

    function attemptRow(a) {
      const statusText = a.response_status ? String(a.response_status) : "";
      const statusCell = h("td", { "data-label": "Status" }, outcomeMark(a.outcome === "succeeded", statusText),
        a.error ? h("span", { class: "error-text", title: a.error }, a.error) : null);
      const tags = [];
      if (a.test) tags.push(h("span", { class: "tag tag-test" }, "Test"));
      else if (a.manual) tags.push(h("span", { class: "tag" }, "Manual"));
      const inspectPayload = h("button", { type: "button", class: "btn btn-small", "data-action": "inspect-payload", "aria-label": "Inspect payload of attempt " + a.id }, "Payload");
      inspectPayload.addEventListener("click", () => inspect(a, "request"));
      const inspectResponse = h("button", { type: "button", class: "btn btn-small", "data-action": "inspect-response", "aria-label": "Inspect response to attempt " + a.id }, "Response");
      inspectResponse.addEventListener("click", () => inspect(a, "response"));
      const redeliver = h("button", { type: "button", class: "btn btn-small", "data-action": "redeliver", "aria-label": "Redeliver the event of attempt " + a.id }, icon("refresh"), "Redeliver");
      redeliver.addEventListener("click", async () => {
        busy(redeliver, true);
        try {
          const answer = await api("POST", "/webhooks/" + encodeURIComponent(current.id) + "/attempts/" + encodeURIComponent(a.id) + "/redeliver");
          toast("Redelivery queued: the same payload, as a new delivery");
          expect(answer.delivery_id);
        } catch (err) {
          handle(err);
        } finally {
          busy(redeliver, false);
        }
      });
      return h("tr", { "data-attempt": a.id, "data-delivery": a.delivery_id, class: a.outcome === "succeeded" ? "row-ok" : "row-fail" },
        h("td", { "data-label": "Event" },
          h("div", { class: "event-cell" }, h("code", {}, a.event_type), tags),
          h("div", { class: "small muted mono" }, a.resource_id ? a.resource_id : a.event_id)),
        statusCell,
        h("td", { "data-label": "Attempt" }, h("span", { class: "attempt-no" }, a.attempt + " of " + MAX_ATTEMPTS)),
        h("td", { "data-label": "Duration", class: "num" }, a.duration_ms + " ms"),
        h("td", { "data-label": "Time" }, timeEl(a.at)),
        h("td", { class: "actions" }, h("div", { class: "actions-inner" }, inspectPayload, inspectResponse, redeliver)));
    }

    async function inspect(a, part) {
      let detail;
      try {
        detail = await api("GET", "/webhooks/" + encodeURIComponent(current.id) + "/attempts/" + encodeURIComponent(a.id));
      } catch (err) {
        return handle(err);
      }
      const summary = h("dl", { class: "summary" },
        h("dt", {}, "Attempt"), h("dd", { class: "mono" }, detail.id + " (" + detail.attempt + " of " + MAX_ATTEMPTS + ")"),
        h("dt", {}, "Event"), h("dd", {}, h("code", {}, detail.event_type), " ", h("span", { class: "mono small" }, detail.event_id)),
        h("dt", {}, "When"), h("dd", {}, formatTime(detail.at)));
      if (part === "request") {
        const request = detail.request;
        infoDialog("Payload as sent", summary, request
          ? [h("h3", {}, "POST ", h("span", { class: "mono" }, request.url)),
            headersTable(request.headers),
            h("h3", {}, "Body ", h("span", { class: "muted small" }, "(the exact bytes signed and sent)")),
            h("pre", { class: "code", "data-payload": "", tabindex: "0" }, request.body)]
          : notice("info", "No request was made for this attempt (", detail.error || "cancelled", ")."));
      } else {
        const response = detail.response;
        infoDialog("Response as received", summary, response
          ? [h("h3", {}, "Status ", h("span", { class: "mono" }, String(response.status))),
            headersTable(response.headers),
            h("h3", {}, "Body ", response.truncated ? h("span", { class: "tag tag-warn" }, "Truncated to 16 KiB") : h("span", { class: "muted small" }, "(complete)")),
            response.body ? h("pre", { class: "code", "data-response": "", tabindex: "0" }, response.body) : h("p", { class: "muted" }, "(empty body)")]
          : notice("info", "No response: ", detail.error || "the receiver did not answer", "."));
      }
    }

    function expect(deliveryId) {
      expected.add(deliveryId);
      poll();
      setTimeout(() => refresh(), 700);
    }

    return {
      element,
      refresh,
      poll,
      expect,
      webhookChanged(w) { current = w; },
    };
  }

  function headersTable(headers) {
    const entries = Object.entries(headers || {});
    if (entries.length === 0) return h("p", { class: "muted" }, "(no headers)");
    return h("table", { class: "headers" },
      h("caption", { class: "visually-hidden" }, "Headers"),
      h("tbody", {}, entries.map(([k, v]) => h("tr", {}, h("th", { scope: "row" }, k), h("td", { class: "mono" }, v)))));
  }

  function recoverForm(current, refresh) {
    const since = h("input", { id: "recover-since", name: "since", type: "datetime-local", class: "input", required: true, step: 1 });
    const dayAgo = new Date(Date.now() - 24 * 3600 * 1000);
    since.value = toLocalInput(dayAgo);
    const go = h("button", { type: "submit", class: "btn" }, icon("refresh"), "Recover");
    const result = h("div", { class: "recover-result", "aria-live": "polite" });
    const form = h("form", { class: "recover", "aria-label": "Recover failed deliveries" },
      h("div", { class: "field" }, h("label", { for: "recover-since" }, "Redeliver every failed delivery since"),
        h("div", { class: "inline" }, since, go)),
      h("p", { class: "help" }, "Deliveries that ended permanently failed or cancelled from then until now are sent again, once each."),
      result);
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const at = new Date(since.value);
      if (Number.isNaN(at.getTime())) {
        result.replaceChildren(notice("error", "Choose the date and time to recover from."));
        return;
      }
      busy(go, true);
      result.replaceChildren(h("p", { class: "small muted" }, "Recovering…"));
      let found = 0;
      let queued = 0;
      let cursor = null;
      try {
        do {
          const body = { since: at.toISOString() };
          if (cursor) body.cursor = cursor;
          const answer = await api("POST", "/webhooks/" + encodeURIComponent(current().id) + "/recover", body);
          found += answer.found;
          queued += answer.queued;
          cursor = answer.next_cursor;
        } while (cursor);
        result.replaceChildren(notice("info", "Found " + found + (found === 1 ? " failed delivery" : " failed deliveries") + " since " + formatTime(at.toISOString()) +
          "; queued " + queued + (queued === 1 ? " redelivery." : " redeliveries.")));
        result.dataset.found = String(found);
        result.dataset.queued = String(queued);
        refresh();
      } catch (err) {
        result.replaceChildren(notice("error", err.message));
        if (err instanceof SignInNeeded) handle(err);
      } finally {
        busy(go, false);
      }
    });
    return form;
  }

  function toLocalInput(date) {
    const pad = (n) => String(n).padStart(2, "0");
    return date.getFullYear() + "-" + pad(date.getMonth() + 1) + "-" + pad(date.getDate()) + "T" + pad(date.getHours()) + ":" + pad(date.getMinutes()) + ":" + pad(date.getSeconds());
  }

  // ------------------------------------------------------------------ routing

  function markNav(which) {
    for (const link of document.querySelectorAll("[data-nav]")) {
      if (link.dataset.nav === which) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
  }

  async function route() {
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
    token = token || loadToken();
    await route();
  }

  document.addEventListener("DOMContentLoaded", () => { start().catch(showFatal); });
})();
