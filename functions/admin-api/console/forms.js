// Form pieces the New Webhook form and the webhook's page share: the fields, the body they
// send, the checks made before sending, problems shown under their field, busy buttons,
// and the secret panel (a new secret, shown once).

import { h, icon, notice } from "./dom.js";
import { ApiError, handle } from "./api.js";

/** The secret, shown once, with a copy button and the warning. */
export function secretPanel(secret, heading, extra) {
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

/** Shows the problem under the field it names, or at the form's top. */
export function showProblem(form, err) {
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

export function urlField(value) {
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

export function eventsFieldset(types, selected) {
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

export function activeSwitch(checked, label, help) {
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
export function webhookBody(form, name) {
  return {
    name: name.value.trim(),
    url: form.querySelector("#url").value.trim(),
    events: checkedEvents(form),
    active: form.querySelector("#active").checked,
  };
}

/** What the page can tell before asking the API (the API checks all of it again). */
export function localProblem(body) {
  if (!body.name) return new ApiError(422, { field: "name", detail: "Give the webhook a name (1-100 characters)." });
  if (!body.url) return new ApiError(422, { field: "url", detail: "Enter the https:// URL that receives the deliveries." });
  if (body.events && body.events.length === 0) return new ApiError(422, { field: "events", detail: "Tick at least one event type." });
  return null;
}

export function busy(button, on, text) {
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
