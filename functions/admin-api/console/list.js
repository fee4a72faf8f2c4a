// The list (/admin/webhooks): every webhook with its status and last delivery, paused,
// resumed or deleted in place. The API answers a page at a time (100 webhooks); "More
// webhooks" appends the next page, so a large account costs one request per page shown.

import { h, icon, notice, render, takeFlash, toast } from "./dom.js";
import { api, handle } from "./api.js";
import { circuitBadge, eventChips, lastDelivery, statusBadge } from "./badges.js";
import { deleteWebhook } from "./dialogs.js";
import { busy } from "./forms.js";
import { BASE } from "./router.js";

export async function listPage() {
  const flash = takeFlash();
  const { webhooks, next_cursor: nextCursor } = await api("GET", "/webhooks");
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
  const tbody = h("tbody", {}, webhooks.map((w) => webhookRow(w)));
  render("Webhooks", h("section", { class: "page" }, head, flashEl,
    h("div", { class: "table-wrap card" },
      h("table", { class: "table webhooks" },
        h("caption", { class: "visually-hidden" }, "Configured webhooks"),
        h("thead", {}, h("tr", {},
          h("th", { scope: "col" }, "Name"), h("th", { scope: "col" }, "URL"), h("th", { scope: "col" }, "Events"),
          h("th", { scope: "col" }, "Status"), h("th", { scope: "col" }, "Last delivery"),
          h("th", { scope: "col" }, h("span", { class: "visually-hidden" }, "Actions")))),
        tbody)),
    moreButton(tbody, nextCursor)));
}

// "More webhooks" while the API has another page: appends it (sorted within itself) and
// gives way to the next page's button, or to nothing after the last.
function moreButton(tbody, cursor) {
  if (!cursor) return null;
  const more = h("button", { type: "button", class: "btn", "data-action": "more-webhooks" }, "More webhooks");
  more.addEventListener("click", async () => {
    busy(more, true);
    try {
      const page = await api("GET", "/webhooks?cursor=" + encodeURIComponent(cursor));
      page.webhooks.sort((a, b) => a.name.localeCompare(b.name));
      page.webhooks.forEach((w) => tbody.append(webhookRow(w)));
      const next = moreButton(tbody, page.next_cursor);
      if (next) {
        wrapper.replaceWith(next);
        next.querySelector("button").focus();
      } else {
        wrapper.remove();
      }
    } catch (err) {
      busy(more, false);
      handle(err);
    }
  });
  const wrapper = h("p", { class: "more" }, more);
  return wrapper;
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
