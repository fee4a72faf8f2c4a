// New Webhook (/admin/webhooks/new): the form, then the created webhook's secret, once.

import { h, icon, render } from "./dom.js";
import { api, eventTypes } from "./api.js";
import { statusBadge } from "./badges.js";
import { activeSwitch, busy, eventsFieldset, localProblem, secretPanel, showProblem, urlField, webhookBody } from "./forms.js";
import { BASE, breadcrumbs } from "./router.js";

export async function newPage() {
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
