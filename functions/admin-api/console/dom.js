// DOM helpers: elements built from parts (text is always a text node), icons, the page's
// content, toasts, notices, and the one-shot message a page leaves for the next.

const FLASH_KEY = "comps-webhooks.flash";

/** An element: h("a", {href: "/x", class: "c"}, "text", child, …). Strings become text. */
export function h(tag, attrs, ...children) {
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
export function icon(name) {
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

export function main() {
  return document.getElementById("main");
}

/** Replaces the page's content and moves focus to its heading (for screen readers). */
export function render(title, ...children) {
  document.title = title + " · Webhooks · Admin";
  const root = main();
  root.replaceChildren(...children.flat().filter(Boolean));
  const heading = root.querySelector("h1");
  if (heading) {
    heading.setAttribute("tabindex", "-1");
    heading.focus({ preventScroll: true });
  }
}

export function toast(message, kind) {
  const region = document.getElementById("toasts");
  const item = h("div", { class: "toast toast-" + (kind || "ok") }, icon(kind === "error" ? "fail" : "ok"), h("span", {}, message));
  region.append(item);
  setTimeout(() => item.classList.add("toast-leaving"), 4500);
  setTimeout(() => item.remove(), 5000);
}

export function notice(kind, ...children) {
  return h("div", { class: "notice notice-" + kind, role: kind === "error" ? "alert" : null },
    icon(kind === "error" ? "fail" : kind === "warn" ? "warn" : "info"), h("div", {}, ...children));
}

export function setFlash(message) {
  try { sessionStorage.setItem(FLASH_KEY, message); } catch (_) { /* private mode */ }
}

export function takeFlash() {
  try {
    const message = sessionStorage.getItem(FLASH_KEY);
    sessionStorage.removeItem(FLASH_KEY);
    return message;
  } catch (_) {
    return null;
  }
}
