// Modal dialogs: a confirmation, an information dialog (Inspect), and the confirmed delete
// of a webhook (the list and the webhook's page both offer it).

import { h, toast } from "./dom.js";
import { api, handle } from "./api.js";

/** A modal dialog; resolves with true when its action is chosen. */
export function confirmDialog({ title, body, action, danger }) {
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
export function infoDialog(title, ...content) {
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

/** Asks, then deletes the webhook `w`; `done` runs once it is gone. */
export async function deleteWebhook(w, done) {
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
