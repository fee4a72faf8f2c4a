// Badges and marks: a webhook's status, its endpoint's circuit, an attempt's outcome, the
// last delivery, the subscribed events.

import { h, icon, notice } from "./dom.js";
import { formatTime, shortError, timeEl } from "./format.js";

export function statusBadge(status) {
  const active = status === "active";
  return h("span", { class: "badge " + (active ? "badge-ok" : "badge-paused") },
    icon(active ? "play" : "pause"), active ? "Active" : "Paused");
}

// The endpoint's circuit breaker: open, due attempts are logged as not sent.
export function circuitBadge(circuit) {
  if (!circuit || circuit.state !== "open") return null;
  return h("span", { class: "badge badge-fail", title: "The endpoint stopped answering: deliveries wait for a test request to succeed" },
    icon("fail"), "Not answering");
}

export function circuitNotice(circuit) {
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

export function outcomeMark(ok, detail) {
  return h("span", { class: "mark " + (ok ? "mark-ok" : "mark-fail") },
    icon(ok ? "ok" : "fail"), h("span", {}, ok ? "Succeeded" : "Failed"),
    detail ? h("span", { class: "mark-detail" }, detail) : null);
}

export function lastDelivery(last) {
  if (!last) return h("span", { class: "muted" }, "No deliveries yet");
  const detail = last.response_status ? String(last.response_status) : last.error ? shortError(last.error) : "";
  return h("div", { class: "last" }, outcomeMark(last.ok, detail), timeEl(last.at));
}

export function eventChips(events) {
  return h("ul", { class: "chips", "aria-label": "Subscribed events" }, events.map((e) => h("li", { class: "chip" }, e)));
}
