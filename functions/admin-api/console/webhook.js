// A webhook's page (/admin/webhooks/{id}): its head, settings, signing secret, test event,
// delete, and its delivery history (history.js).

import { h, icon, notice, render, setFlash, toast } from "./dom.js";
import { api, ApiError, eventTypes, handle, SignInNeeded } from "./api.js";
import { circuitBadge, circuitNotice, statusBadge } from "./badges.js";
import { confirmDialog, deleteWebhook } from "./dialogs.js";
import { activeSwitch, busy, eventsFieldset, localProblem, secretPanel, showProblem, urlField, webhookBody } from "./forms.js";
import { deliveryHistory } from "./history.js";
import { BASE, breadcrumbs } from "./router.js";

export async function webhookPage(id) {
  let webhook = await fetchWebhook(id);
  if (!webhook) return;
  const types = await eventTypes();
  const head = pageHead();
  head.show(webhook);

  const deliveries = deliveryHistory(webhook);
  const settings = settingsForm(webhook, types, (updated) => {
    webhook = updated;
    head.show(updated);
    deliveries.webhookChanged(updated);
  });
  render(webhook.name, h("section", { class: "page" },
    breadcrumbs(webhook.name), head.element,
    h("div", { class: "columns" },
      h("div", { class: "column-main" }, settings),
      h("div", { class: "column-side" }, secretSection(() => webhook), testEventSection(() => webhook, types, deliveries), dangerSection(() => webhook))),
    deliveries.element));
  if (location.hash === "#deliveries") {
    document.getElementById("deliveries-title").focus();
    document.getElementById("deliveries").scrollIntoView();
  }
  await deliveries.refresh();
  deliveries.poll();
}

/** The webhook, or null when there is none (the page then says so). */
async function fetchWebhook(id) {
  try {
    return await api("GET", "/webhooks/" + encodeURIComponent(id));
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) {
      render("Not found", h("section", { class: "page" }, breadcrumbs("Not found"), h("h1", {}, "No such webhook"),
        notice("error", err.message), h("p", {}, h("a", { href: BASE, class: "btn" }, "Back to all webhooks"))));
      return null;
    }
    throw err;
  }
}

/** The page's head (name, status, circuit, URL), shown again when the webhook changes. */
function pageHead() {
  const element = h("div", { class: "page-head" });
  const show = (w) => element.replaceChildren(
    h("div", {}, h("h1", {}, w.name),
      h("p", { class: "lede" }, statusBadge(w.status), " ", circuitBadge(w.circuit), " ", h("span", { class: "mono url-lede" }, w.url)),
      circuitNotice(w.circuit)),
    h("a", { href: "#deliveries", class: "btn" }, icon("list"), "Deliveries"));
  return { element, show };
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

function testEventSection(current, types, deliveries) {
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
      deliveries.expect(sent.delivery_id);
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
