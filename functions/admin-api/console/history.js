// A webhook's delivery history: its last 100 attempts, kept fresh while the page is open,
// each one's payload and response (Inspect), redelivery, and recovery of failed deliveries.

import { h, icon, notice, toast } from "./dom.js";
import { api, handle, SignInNeeded } from "./api.js";
import { outcomeMark } from "./badges.js";
import { infoDialog } from "./dialogs.js";
import { busy } from "./forms.js";
import { formatTime, timeEl, toLocalInput } from "./format.js";

/** The attempts a delivery gets at most. */
const MAX_ATTEMPTS = 6;

function attemptsPath(webhookId) {
  return "/webhooks/" + encodeURIComponent(webhookId) + "/attempts";
}

/** The history section of `webhook`'s page: `element`, and `refresh`, `poll` and `expect`
 *  (a delivery just queued: look sooner until its attempt shows). */
export function deliveryHistory(webhook) {
  let current = webhook;
  const expected = new Set();
  let timer = null;
  const view = historyView(() => refresh(true), recoverForm(() => current, () => refresh()));

  async function refresh(announce) {
    try {
      const { attempts } = await api("GET", attemptsPath(current.id) + "?limit=100");
      showAttempts(view, attempts, (a) => attemptRow(a, () => current, expect));
      for (const a of attempts) expected.delete(a.delivery_id);
      if (announce) toast("Delivery history updated");
    } catch (err) {
      handle(err, view.errorSlot);
    }
  }

  function poll() {
    clearInterval(timer);
    timer = setInterval(() => {
      if (document.visibilityState === "visible" && !document.querySelector("dialog[open]")) refresh();
    }, expected.size ? 1500 : 5000);
  }

  function expect(deliveryId) {
    expected.add(deliveryId);
    poll();
    setTimeout(() => refresh(), 700);
  }

  return {
    element: view.element,
    refresh,
    poll,
    expect,
    webhookChanged(w) { current = w; },
  };
}

// ------------------------------------------------------------------ the section and its table

/** The section, empty: its parts are filled by `showAttempts`. */
function historyView(onRefresh, recover) {
  const body = h("tbody", {});
  const status = h("p", { class: "small muted", "aria-live": "polite" });
  const errorSlot = h("div", { hidden: true });
  const table = attemptsTable(body);
  const empty = noAttemptsYet();
  const refreshButton = h("button", { type: "button", class: "btn btn-small", onclick: onRefresh }, icon("refresh"), "Refresh");
  const element = h("section", { class: "card history", id: "deliveries", "aria-labelledby": "deliveries-title" },
    h("div", { class: "section-head" },
      h("div", {}, h("h2", { id: "deliveries-title", tabindex: "-1" }, "Delivery history"),
        h("p", { class: "small muted" }, "The last 100 attempts, newest first. Updates on its own while this page is open.")),
      h("div", { class: "toolbar" }, refreshButton)),
    recover,
    errorSlot, status, table, empty);
  return { element, body, status, errorSlot, table, empty };
}

function attemptsTable(body) {
  return h("div", { class: "table-wrap" },
    h("table", { class: "table attempts" },
      h("caption", { class: "visually-hidden" }, "The last 100 delivery attempts, newest first"),
      h("thead", {}, h("tr", {},
        h("th", { scope: "col" }, "Event"), h("th", { scope: "col" }, "Status"), h("th", { scope: "col" }, "Attempt"),
        h("th", { scope: "col" }, "Duration"), h("th", { scope: "col" }, "Time"),
        h("th", { scope: "col" }, h("span", { class: "visually-hidden" }, "Actions")))),
      body));
}

function noAttemptsYet() {
  return h("div", { class: "empty", hidden: true },
    h("p", { class: "empty-title" }, "No deliveries yet"),
    h("p", { class: "muted" }, "Attempts appear here as events arrive. Send a test event to see one now."));
}

/** The attempts (newest first) in the table, or the empty state; and when that was. */
function showAttempts(view, attempts, row) {
  view.errorSlot.hidden = true;
  view.body.replaceChildren(...attempts.map((a) => row(a)));
  view.empty.hidden = attempts.length > 0;
  view.table.hidden = attempts.length === 0;
  const when = new Date().toLocaleTimeString();
  view.status.textContent = attempts.length + (attempts.length === 1 ? " attempt" : " attempts") + " · updated " + when;
}

// ------------------------------------------------------------------ an attempt

function attemptRow(a, current, expect) {
  const statusText = a.response_status ? String(a.response_status) : "";
  const statusCell = h("td", { "data-label": "Status" }, outcomeMark(a.outcome === "succeeded", statusText),
    a.error ? h("span", { class: "error-text", title: a.error }, a.error) : null);
  const tags = [];
  if (a.test) tags.push(h("span", { class: "tag tag-test" }, "Test"));
  else if (a.manual) tags.push(h("span", { class: "tag" }, "Manual"));
  const inspectPayload = h("button", { type: "button", class: "btn btn-small", "data-action": "inspect-payload", "aria-label": "Inspect payload of attempt " + a.id }, "Payload");
  inspectPayload.addEventListener("click", () => inspect(current().id, a, "request"));
  const inspectResponse = h("button", { type: "button", class: "btn btn-small", "data-action": "inspect-response", "aria-label": "Inspect response to attempt " + a.id }, "Response");
  inspectResponse.addEventListener("click", () => inspect(current().id, a, "response"));
  const redeliver = redeliverButton(a, current, expect);
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

/** Sends the attempt's event again, the same bytes, as a new delivery. */
function redeliverButton(a, current, expect) {
  const redeliver = h("button", { type: "button", class: "btn btn-small", "data-action": "redeliver", "aria-label": "Redeliver the event of attempt " + a.id }, icon("refresh"), "Redeliver");
  redeliver.addEventListener("click", async () => {
    busy(redeliver, true);
    try {
      const answer = await api("POST", attemptsPath(current().id) + "/" + encodeURIComponent(a.id) + "/redeliver");
      toast("Redelivery queued: the same payload, as a new delivery");
      expect(answer.delivery_id);
    } catch (err) {
      handle(err);
    } finally {
      busy(redeliver, false);
    }
  });
  return redeliver;
}

/** The attempt's request (`part` "request") or response, in a dialog. */
async function inspect(webhookId, a, part) {
  let detail;
  try {
    detail = await api("GET", attemptsPath(webhookId) + "/" + encodeURIComponent(a.id));
  } catch (err) {
    return handle(err);
  }
  const summary = attemptSummary(detail);
  if (part === "request") requestDialog(detail, summary);
  else responseDialog(detail, summary);
}

function attemptSummary(detail) {
  return h("dl", { class: "summary" },
    h("dt", {}, "Attempt"), h("dd", { class: "mono" }, detail.id + " (" + detail.attempt + " of " + MAX_ATTEMPTS + ")"),
    h("dt", {}, "Event"), h("dd", {}, h("code", {}, detail.event_type), " ", h("span", { class: "mono small" }, detail.event_id)),
    h("dt", {}, "When"), h("dd", {}, formatTime(detail.at)));
}

function requestDialog(detail, summary) {
  const request = detail.request;
  infoDialog("Payload as sent", summary, request
    ? [h("h3", {}, "POST ", h("span", { class: "mono" }, request.url)),
      headersTable(request.headers),
      h("h3", {}, "Body ", h("span", { class: "muted small" }, "(the exact bytes signed and sent)")),
      h("pre", { class: "code", "data-payload": "", tabindex: "0" }, request.body)]
    : notice("info", "No request was made for this attempt (", detail.error || "cancelled", ")."));
}

function responseDialog(detail, summary) {
  const response = detail.response;
  infoDialog("Response as received", summary, response
    ? [h("h3", {}, "Status ", h("span", { class: "mono" }, String(response.status))),
      headersTable(response.headers),
      h("h3", {}, "Body ", response.truncated ? h("span", { class: "tag tag-warn" }, "Truncated to 16 KiB") : h("span", { class: "muted small" }, "(complete)")),
      response.body ? h("pre", { class: "code", "data-response": "", tabindex: "0" }, response.body) : h("p", { class: "muted" }, "(empty body)")]
    : notice("info", "No response: ", detail.error || "the receiver did not answer", "."));
}

function headersTable(headers) {
  const entries = Object.entries(headers || {});
  if (entries.length === 0) return h("p", { class: "muted" }, "(no headers)");
  return h("table", { class: "headers" },
    h("caption", { class: "visually-hidden" }, "Headers"),
    h("tbody", {}, entries.map(([k, v]) => h("tr", {}, h("th", { scope: "row" }, k), h("td", { class: "mono" }, v)))));
}

// ------------------------------------------------------------------ recovery

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
    try {
      const { found, queued } = await recoverSince(current, at);
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

/** Every page of the API's recover from `at` until now: how many were found and queued. */
async function recoverSince(current, at) {
  let found = 0;
  let queued = 0;
  let cursor = null;
  do {
    const body = { since: at.toISOString() };
    if (cursor) body.cursor = cursor;
    const answer = await api("POST", "/webhooks/" + encodeURIComponent(current().id) + "/recover", body);
    found += answer.found;
    queued += answer.queued;
    cursor = answer.next_cursor;
  } while (cursor);
  return { found, queued };
}
