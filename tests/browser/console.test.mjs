// The admin console, clicked through in headless Chromium as the user guide tells it.
// Run by `cargo test -p integration-tests --test browser` (tests/tests/browser/main.rs),
// which starts the stack, the receivers and the OIDC test issuer and passes their
// addresses in the environment. Screenshots: $ARTIFACTS/*.png. Every distinct page and
// state met on the way is audited with axe-core (WCAG 2.0/2.1 A and AA, and axe's best
// practices), in the light and the dark colour scheme: 0 violations, listed in
// $ARTIFACTS/axe.json and by the last tests if any.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run these tests through cargo test -p integration-tests --test browser`);
  return value;
};
const CONSOLE = env("CONSOLE_URL");
const OIDC_CONSOLE = env("OIDC_CONSOLE_URL");
const OIDC_ISSUER = env("OIDC_ISSUER_URL");
const ADMIN = env("ADMIN_TOKEN");
const INGEST = env("INGEST_TOKEN");
const FAILING = env("FAILING_RECEIVER_URL");
const ACCEPTING = env("ACCEPTING_RECEIVER_URL");
const ARTIFACTS = env("ARTIFACTS");
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";

// axe-core's source, evaluated in the page. Not `page.addScriptTag`: that adds an inline
// <script>, which the console's CSP (`script-src 'self'`) refuses; nor `bypassCSP`, which
// would switch the CSP off for the whole context and with it the check that no page breaks
// it. Code evaluated through the DevTools protocol is not the page's, so the CSP lets it
// run (axe compiles its messages with `new Function`) and logs nothing.
const AXE_SOURCE = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");
const AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"];

const facts = {};
let profile;
let context;
let page;
/** Everything the pages logged as errors or threw (a CSP violation is one). */
const pageErrors = [];

async function shot(name, target = page) {
  mkdirSync(ARTIFACTS, { recursive: true });
  await target.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
}

async function api(method, path, body, token = ADMIN) {
  const answer = await fetch(CONSOLE + path, {
    method,
    headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await answer.text();
  return { status: answer.status, json: text ? JSON.parse(text) : null };
}

function watch(p) {
  p.on("console", (message) => {
    // An API answer of 4xx is shown to the admin on purpose; Chromium also logs it.
    if (message.type() === "error" && !message.text().startsWith("Failed to load resource: the server responded with a status of 4")) pageErrors.push(`${p.url()}: ${message.text()}`);
  });
  p.on("pageerror", (err) => pageErrors.push(`${p.url()}: ${err.message}`));
  return p;
}

before(async () => {
  profile = mkdtempSync(join(tmpdir(), "console-chromium-"));
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ],
    viewport: { width: 1280, height: 860 },
    colorScheme: "light",
    permissions: ["clipboard-read", "clipboard-write"],
  });
  page = watch(context.pages()[0] || (await context.newPage()));
  page.setDefaultTimeout(20000);
});

after(async () => {
  writeFileSync(join(ARTIFACTS, "facts.json"), JSON.stringify(facts, null, 2));
  await context?.close();
  if (profile) rmSync(profile, { recursive: true, force: true });
});

/** Every audit: the state's name, colour scheme and violations. */
const audits = [];

/** Audits what `target` shows now (`state` names it), in the light and the dark scheme. */
async function audit(state, target = page) {
  if (!(await target.evaluate(() => typeof window.axe === "object"))) await target.evaluate(AXE_SOURCE);
  for (const colorScheme of ["light", "dark"]) {
    await target.emulateMedia({ colorScheme });
    const result = await target.evaluate(async (tags) => {
      const results = await window.axe.run(document, { runOnly: { type: "tag", values: tags }, resultTypes: ["violations"] });
      return {
        violations: results.violations.map((v) => ({
          id: v.id, impact: v.impact, help: v.help, helpUrl: v.helpUrl,
          nodes: v.nodes.map((n) => ({ target: n.target.join(" "), html: n.html.slice(0, 200), summary: n.failureSummary })),
        })),
        // For the record (axe.json): the rules that passed, and those axe could not decide.
        passed: results.passes.map((r) => r.id),
        undecided: results.incomplete.map((r) => r.id),
      };
    }, AXE_TAGS);
    audits.push({ state, colorScheme, url: target.url(), ...result });
  }
  await target.emulateMedia({ colorScheme: "light" });
}

/** The row of the delivery history for `text` (an event's resource id, say). */
const historyRows = () => page.locator("#deliveries tbody tr");

let webhookId;
let secret;

test("the printed URL signs in, and the token leaves the address bar", async () => {
  await page.goto(`${CONSOLE}/admin/webhooks#token=${encodeURIComponent(ADMIN)}`);
  await page.getByRole("heading", { level: 1, name: "Webhooks" }).waitFor();
  assert.ok(!page.url().includes("token"), page.url());
  await page.getByText("No webhooks yet — New Webhook").waitFor();
  await shot("01-list-empty");
  await audit("webhook list, empty");
  // Without the fragment (a new tab): asked to sign in, nothing shown.
  const other = watch(await context.newPage());
  await other.goto(`${CONSOLE}/admin/webhooks`);
  await other.getByRole("heading", { name: "Sign in" }).waitFor();
  await audit("sign-in page (token)", other);
  await other.close();
});

test("creating a webhook through the form shows its secret once", async () => {
  await page.getByRole("link", { name: "New Webhook" }).first().click();
  await page.getByRole("heading", { level: 1, name: "New Webhook" }).waitFor();
  // Every event type of the catalogue, with its description.
  const types = (await api("GET", "/api/v1/event-types")).json.event_types;
  assert.equal(await page.locator("input[name=events]").count(), types.length);
  for (const t of types) {
    const option = page.locator("label.event-option", { has: page.locator(`input[value="${t.type}"]`) });
    assert.match(await option.innerText(), new RegExp(t.description.replace(/[()]/g, ".")));
  }
  await page.getByLabel("Name").fill("Fulfilment CRM sync");
  await page.getByLabel("URL").fill(FAILING);
  await page.getByRole("checkbox", { name: /order\.completed/ }).check();
  await page.getByRole("checkbox", { name: /winner\.drawn/ }).check();
  assert.equal(await page.getByRole("switch", { name: "Active" }).isChecked(), true);
  await shot("02-new-webhook-form");
  await audit("new-webhook form, filled in");
  await page.getByRole("button", { name: "Save" }).click();
  const panel = page.locator("[data-secret-panel]");
  await panel.waitFor();
  secret = await page.locator("#secret").inputValue();
  assert.match(secret, /^whsec_[A-Za-z0-9+/]{43}=$/);
  await page.getByText("Copy it now: this secret will not be shown again.").waitFor();
  await page.getByRole("button", { name: "Copy" }).click();
  await page.getByText("Copied", { exact: true }).waitFor();
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), secret);
  await shot("03-secret-shown-once");
  await audit("new webhook's secret, shown once");
  webhookId = page.url().split("/").pop();
  assert.match(webhookId, /^wh_/);
  await page.getByRole("link", { name: /go to the webhook/ }).click();
  await page.getByRole("heading", { level: 1, name: "Fulfilment CRM sync" }).waitFor();
  const text = await page.locator("main").innerText();
  assert.ok(!text.includes(secret), "the secret is never shown again");
  assert.ok(text.includes(secret.slice(-4)), "only its hint");
  await audit("webhook page, no deliveries yet");
});

test("the list shows the webhook with its status and last delivery", async () => {
  await page.goto(`${CONSOLE}/admin/webhooks`);
  const row = page.locator(`tr[data-id="${webhookId}"]`);
  await row.waitFor();
  const text = await row.innerText();
  for (const expected of ["Fulfilment CRM sync", FAILING, "order.completed", "winner.drawn", "Active", "No deliveries yet"]) {
    assert.ok(text.includes(expected), `${expected} in ${text}`);
  }
  for (const action of ["Edit", "Pause", "Deliveries", "Delete"]) {
    await row.getByRole(action === "Edit" || action === "Deliveries" ? "link" : "button", { name: new RegExp(action, "i") }).waitFor();
  }
});

test("a delivery to a failing receiver appears in the history panel", async () => {
  const posted = await fetch(`${CONSOLE}/api/v1/events`, {
    method: "POST",
    headers: { Authorization: `Bearer ${INGEST}`, "Content-Type": "application/json" },
    body: JSON.stringify({ id: `ord_1042-paid-${Date.now()}`, type: "order.completed", data: { id: "ord_1042", total: 597 } }),
  });
  assert.equal(posted.status, 202);
  const { id: eventId } = await posted.json();
  facts.redelivered_event_id = eventId;
  await page.goto(`${CONSOLE}/admin/webhooks/${webhookId}#deliveries`);
  await page.getByRole("heading", { name: "Delivery history" }).waitFor();
  // It updates on its own: the first attempt, then its retries (1-2 s apart here).
  const first = historyRows().filter({ hasText: "ord_1042" }).first();
  await first.waitFor({ timeout: 30000 });
  const line = await first.innerText();
  assert.match(line, /order\.completed/);
  assert.match(line, /Failed/);
  assert.match(line, /500/);
  assert.match(line, /of 6/);
  assert.match(line, /\d+ ms/);
  await page.locator("#deliveries tbody tr", { hasText: "6 of 6" }).waitFor({ timeout: 40000 });
  await shot("04-webhook-page-history");
  await audit("webhook page with its delivery history");
  // The list's last delivery: a failure, marked by text and icon, not colour alone.
  await page.goto(`${CONSOLE}/admin/webhooks`);
  const last = await page.locator(`tr[data-id="${webhookId}"] td[data-label="Last delivery"]`).innerText();
  assert.match(last, /Failed/);
  assert.match(last, /500/);
  await shot("05-list");
  await audit("webhook list with a webhook");
});

test("Inspect shows the exact payload and the response as text", async () => {
  await page.goto(`${CONSOLE}/admin/webhooks/${webhookId}#deliveries`);
  const row = historyRows().filter({ hasText: "ord_1042" }).first();
  await row.waitFor();
  await row.getByRole("button", { name: /Inspect payload/ }).click();
  const dialog = page.getByRole("dialog", { name: "Payload as sent" });
  await dialog.waitFor();
  const body = await dialog.locator("[data-payload]").textContent();
  const sent = JSON.parse(body);
  assert.equal(sent.id, facts.redelivered_event_id);
  assert.equal(sent.type, "order.completed");
  assert.ok(body.endsWith(`"data":{"id":"ord_1042","total":597}}`), body);
  const headers = await dialog.locator("table.headers").innerText();
  for (const name of ["x-comps-signature", "x-comps-event-id", "x-comps-attempt", "webhook-signature"]) {
    assert.ok(headers.toLowerCase().includes(name), `${name} in ${headers}`);
  }
  await shot("06-inspect-payload");
  await audit("delivery history, payload dialog open");
  await dialog.getByRole("button", { name: "Close" }).click();

  await row.getByRole("button", { name: /Inspect response/ }).click();
  const response = page.getByRole("dialog", { name: "Response as received" });
  await response.waitFor();
  const shown = await response.locator("[data-response]").textContent();
  assert.ok(shown.includes("<img src=x onerror="), shown);
  assert.ok(shown.includes("<script>"), shown);
  assert.equal(await response.locator("img, script, b").count(), 0, "receiver text is never markup");
  assert.ok((await response.innerText()).includes("<b>not bold</b>"));
  assert.match(await response.innerText(), /Status\s+500/);
  assert.notEqual(await page.title(), "pwned");
  await shot("07-inspect-response");
  await audit("delivery history, response dialog open");
  await page.keyboard.press("Escape");
  await response.waitFor({ state: "detached" });
});

test("Redeliver sends the event again as a new, manual delivery", async () => {
  const before = await historyRows().count();
  const row = historyRows().filter({ hasText: "ord_1042" }).first();
  const originalDelivery = await row.getAttribute("data-delivery");
  await row.getByRole("button", { name: /Redeliver/ }).click();
  await page.getByText("Redelivery queued").waitFor();
  const manual = page.locator(`#deliveries tbody tr:not([data-delivery="${originalDelivery}"])`, { hasText: "Manual" }).first();
  await manual.waitFor({ timeout: 30000 });
  assert.match(await manual.innerText(), /ord_1042/);
  assert.ok((await historyRows().count()) > before);
});

test("Recover redelivers every failed delivery since a time and says what it queued", async () => {
  // The original delivery has ended permanently_failed (6 of 6 above).
  const since = new Date(Date.now() - 3600 * 1000);
  const pad = (n) => String(n).padStart(2, "0");
  const local = `${since.getFullYear()}-${pad(since.getMonth() + 1)}-${pad(since.getDate())}T${pad(since.getHours())}:${pad(since.getMinutes())}:${pad(since.getSeconds())}`;
  await page.getByLabel("Redeliver every failed delivery since").fill(local);
  await page.getByRole("button", { name: "Recover" }).click();
  const result = page.locator(".recover-result");
  await result.getByText(/queued \d+ redeliver/).waitFor();
  const found = Number(await result.getAttribute("data-found"));
  const queued = Number(await result.getAttribute("data-queued"));
  assert.ok(found >= 1, `found ${found}`);
  assert.ok(queued >= 1, `queued ${queued}`);
  await shot("08-recover");
  await audit("webhook page, recover result");
});

test("pause and resume from the list, and the pause state on the edit page", async () => {
  await page.goto(`${CONSOLE}/admin/webhooks`);
  const row = () => page.locator(`tr[data-id="${webhookId}"]`);
  await row().getByRole("button", { name: /Pause/ }).click();
  await row().getByText("Paused", { exact: true }).waitFor();
  await audit("webhook list with a paused webhook");
  assert.equal((await api("GET", `/api/v1/webhooks/${webhookId}`)).json.status, "paused", "paused from the list");
  await row().getByRole("button", { name: /Resume/ }).click();
  await row().getByText("Active", { exact: true }).waitFor();
  assert.equal((await api("GET", `/api/v1/webhooks/${webhookId}`)).json.status, "active", "resumed from the list");

  await page.goto(`${CONSOLE}/admin/webhooks/${webhookId}`);
  await page.getByRole("switch", { name: "Active" }).uncheck();
  await page.getByRole("button", { name: "Save changes" }).click();
  await page.getByText("Changes saved").waitFor();
  await page.locator(".page-head").getByText("Paused", { exact: true }).waitFor();
  await audit("webhook page, paused");
  assert.equal((await api("GET", `/api/v1/webhooks/${webhookId}`)).json.status, "paused", "paused on its page");
  await page.getByRole("switch", { name: "Active" }).check();
  await page.getByRole("button", { name: "Save changes" }).click();
  await page.locator(".page-head").getByText("Active", { exact: true }).waitFor();
});

test("rotating the secret warns first and shows the new one once", async () => {
  await page.getByRole("button", { name: "Rotate secret" }).click();
  const dialog = page.getByRole("dialog", { name: "Rotate the signing secret?" });
  await dialog.getByText("The old secret stops verifying immediately.").waitFor();
  await shot("09-rotate-warning");
  await audit("rotate-secret confirm dialog");
  await dialog.getByRole("button", { name: "Rotate secret" }).click();
  const fresh = await page.locator("#secret").inputValue();
  assert.match(fresh, /^whsec_/);
  assert.notEqual(fresh, secret);
  assert.equal((await api("GET", `/api/v1/webhooks/${webhookId}`)).json.secret_hint.slice(-4), fresh.slice(-4));
  await page.getByText("Copy it now: this secret will not be shown again.").waitFor();
  await audit("webhook page, rotated secret shown once");
});

test("a test event reaches this webhook only and shows in the history, marked", async () => {
  const created = await api("POST", "/api/v1/webhooks", { name: "Slack big wins", url: ACCEPTING, events: ["winner.drawn"] });
  assert.equal(created.status, 201);
  await page.goto(`${CONSOLE}/admin/webhooks/${created.json.id}`);
  await page.getByLabel("Event type").selectOption("winner.drawn");
  await page.getByRole("button", { name: "Send test event" }).click();
  const note = page.getByText(/Queued winner\.drawn as event/);
  await note.waitFor();
  facts.test_event_id = await note.locator("code").nth(1).textContent();
  assert.match(facts.test_event_id, /^test~/);
  const row = historyRows().filter({ hasText: "Test" }).first();
  await row.waitFor({ timeout: 30000 });
  const line = await row.innerText();
  assert.match(line, /winner\.drawn/);
  assert.match(line, /Succeeded/);
  assert.match(line, /200/);
  await shot("10-test-event");
  await audit("webhook page, test event sent");
  // The other webhook did not get it.
  const others = (await api("GET", `/api/v1/webhooks/${webhookId}/attempts`)).json.attempts;
  assert.ok(!others.some((a) => a.event_id === facts.test_event_id));
});

test("a plain http:// URL shows the API's message", async () => {
  const refused = await api("POST", "/api/v1/webhooks", { name: "x", url: "http://crm.example.com/hooks", events: ["order.completed"] });
  assert.equal(refused.status, 422);
  await page.goto(`${CONSOLE}/admin/webhooks/new`);
  await page.getByLabel("Name").fill("Plain HTTP");
  await page.getByLabel("URL").fill("http://crm.example.com/hooks");
  await page.getByLabel("Name").focus();
  // The page says so as you leave the field…
  await page.getByText("Plain http:// endpoints are rejected: use https://.").waitFor();
  await audit("new-webhook form, the page's validation error");
  await page.getByRole("checkbox", { name: /order\.completed/ }).check();
  await page.getByRole("button", { name: "Save" }).click();
  // …and the API has the last word, shown with its detail.
  const error = page.locator("#url-error");
  await error.getByText(refused.json.detail).waitFor();
  assert.equal(await page.getByLabel("URL").getAttribute("aria-invalid"), "true");
  await shot("11-http-refused");
  await audit("new-webhook form, the API's validation error");
  const list = (await api("GET", "/api/v1/webhooks")).json.webhooks;
  assert.ok(!list.some((w) => w.name === "Plain HTTP"), "nothing was created");
});

test("creating a webhook with the keyboard only", async () => {
  await page.goto(`${CONSOLE}/admin/webhooks`);
  // From the top of the page: skip link, then into the page; New Webhook by keyboard.
  await page.keyboard.press("Tab");
  assert.equal(await page.evaluate(() => document.activeElement.textContent), "Skip to content");
  let guard = 0;
  while (!(await page.evaluate(() => document.activeElement.matches("[data-new-webhook]"))) && guard++ < 20) {
    await page.keyboard.press("Tab");
  }
  await page.keyboard.press("Enter");
  await page.getByRole("heading", { level: 1, name: "New Webhook" }).waitFor();
  // Focus is on the heading; the form follows in order.
  await page.keyboard.press("Tab");
  assert.equal(await page.evaluate(() => document.activeElement.id), "name");
  await page.keyboard.type("Keyboard-made hook");
  await page.keyboard.press("Tab");
  assert.equal(await page.evaluate(() => document.activeElement.id), "url");
  await page.keyboard.type(`${ACCEPTING}/keys`);
  await page.keyboard.press("Tab");
  assert.equal(await page.evaluate(() => document.activeElement.value), "order.completed");
  await page.keyboard.press("Space");
  const focusVisible = await page.evaluate(() => getComputedStyle(document.activeElement.closest("label")).outlineStyle);
  assert.notEqual(focusVisible, "none", "the focused option shows it");
  guard = 0;
  while (!(await page.evaluate(() => document.activeElement.type === "submit")) && guard++ < 20) {
    await page.keyboard.press("Tab");
  }
  await page.keyboard.press("Enter");
  await page.locator("[data-secret-panel]").waitFor();
  assert.equal(await page.evaluate(() => document.activeElement.id), "secret-heading");
  const made = (await api("GET", "/api/v1/webhooks")).json.webhooks.find((w) => w.name === "Keyboard-made hook");
  assert.deepEqual(made.events, ["order.completed"]);
  assert.equal(made.status, "active");
});

test("deleting asks first, from the list and from the edit page", async () => {
  const list = (await api("GET", "/api/v1/webhooks")).json.webhooks;
  const keyboard = list.find((w) => w.name === "Keyboard-made hook");
  await page.goto(`${CONSOLE}/admin/webhooks`);
  const row = page.locator(`tr[data-id="${keyboard.id}"]`);
  await row.getByRole("button", { name: /Delete/ }).click();
  const dialog = page.getByRole("dialog", { name: /Delete “Keyboard-made hook”/ });
  await shot("12-delete-confirm");
  await audit("delete confirm dialog");
  await dialog.getByRole("button", { name: "Cancel" }).click();
  assert.equal((await api("GET", `/api/v1/webhooks/${keyboard.id}`)).status, 200, "Cancel keeps it");
  await row.getByRole("button", { name: /Delete/ }).click();
  await dialog.getByRole("button", { name: "Delete webhook" }).click();
  await row.waitFor({ state: "detached" });
  assert.equal((await api("GET", `/api/v1/webhooks/${keyboard.id}`)).status, 404);

  await page.goto(`${CONSOLE}/admin/webhooks/${webhookId}`);
  await page.locator(".danger-zone").getByRole("button", { name: "Delete webhook" }).click();
  await page.getByRole("dialog").getByRole("button", { name: "Delete webhook" }).click();
  await page.getByText("“Fulfilment CRM sync” was deleted.").waitFor();
  await audit("webhook list, after a delete from the webhook page");
  assert.equal((await api("GET", `/api/v1/webhooks/${webhookId}`)).status, 404);
});

test("on a phone-sized screen the list still reads", async () => {
  const phone = watch(await context.newPage());
  await phone.setViewportSize({ width: 390, height: 844 });
  // A new tab has a session of its own: signed in by the printed URL again.
  await phone.goto(`${CONSOLE}/admin/webhooks#token=${encodeURIComponent(ADMIN)}`);
  await phone.getByRole("heading", { level: 1, name: "Webhooks" }).waitFor();
  await phone.locator("tr[data-id]").first().waitFor();
  const overflow = await phone.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 1, `no sideways scrolling (${overflow}px)`);
  await shot("13-list-phone", phone);
  await audit("webhook list on a phone-sized screen", phone);
  await phone.close();
});

test("on AWS: OpenID Connect sign-in (authorization code + PKCE) against the issuer", async () => {
  const fresh = watch(await context.newPage());
  await fresh.goto(`${OIDC_CONSOLE}/admin/webhooks`);
  // Off to the issuer and back with a code, exchanged for a token: no typing.
  await fresh.getByRole("heading", { level: 1, name: "Webhooks" }).waitFor();
  assert.ok(!fresh.url().includes("code="), fresh.url());
  assert.equal(new URL(fresh.url()).pathname, "/admin/webhooks");
  await fresh.locator("tr[data-id]").first().waitFor();
  await fresh.getByText("Signed in").waitFor();
  await shot("14-oidc-signed-in", fresh);
  await audit("webhook list, signed in through OpenID Connect", fresh);
  // A reload in the same tab keeps the session.
  await fresh.reload();
  await fresh.locator("tr[data-id]").first().waitFor();
  await fresh.close();
});

const SIGN_IN_FAILED = "Sign-in failed. Try again, or ask your administrator.";

test("on AWS: a sign-in whose ID token carries another nonce is refused", async () => {
  // The issuer's next ID token names a nonce this tab never sent (a replayed or injected answer).
  const set = await fetch(`${OIDC_ISSUER}/test/next-id-token-nonce`, { method: "POST", body: "not-this-tabs-nonce" });
  assert.equal(set.status, 204);
  const fresh = watch(await context.newPage());
  await fresh.goto(`${OIDC_CONSOLE}/admin/webhooks`);
  await fresh.getByRole("heading", { level: 1, name: "Sign in" }).waitFor();
  await fresh.getByText(SIGN_IN_FAILED).waitFor();
  assert.ok(!fresh.url().includes("code="), fresh.url());
  assert.equal(await fresh.getByText("Signed in").count(), 0);
  const kept = await fresh.evaluate(() => sessionStorage.getItem("comps-webhooks.token"));
  assert.equal(kept, null, "no token is kept");
  await shot("14-oidc-wrong-nonce-refused", fresh);
  await audit("sign-in page (OpenID Connect), sign-in failed", fresh);
  await fresh.close();
});

test("on AWS: an error in the address bar shows our words, never the link's", async () => {
  const fresh = watch(await context.newPage());
  const logged = [];
  fresh.on("console", (message) => logged.push(message.text()));
  const lure = "Your account is locked. Call +1 555 0100 to restore access.";
  await fresh.goto(`${OIDC_CONSOLE}/admin/webhooks?error=access_denied&state=x&error_description=${encodeURIComponent(lure)}`);
  await fresh.getByText(SIGN_IN_FAILED).waitFor();
  const shown = await fresh.locator("body").innerText();
  assert.ok(!shown.includes("555") && !shown.includes("locked"), shown);
  assert.ok(!fresh.url().includes("error"), fresh.url());
  assert.ok(logged.some((line) => line.includes('"access_denied"')), logged.join("\n"));
  await fresh.close();
});

test("an endpoint that stops answering shows its open circuit on the list and its page", async () => {
  // Nothing listens on port 9 here: every attempt's connection is refused.
  const created = await api("POST", "/api/v1/webhooks", {
    name: `Silent ${Date.now()}`, url: "https://127.0.0.1:9/hook", events: ["withdrawal.requested"],
  });
  assert.equal(created.status, 201);
  const id = created.json.id;
  for (let i = 0; i < 5; i++) {
    const posted = await api("POST", "/api/v1/events", { type: "withdrawal.requested", data: { id: `wdr_${i}` } }, INGEST);
    assert.equal(posted.status, 202);
  }
  let circuit;
  for (let tries = 0; tries < 120; tries++) {
    circuit = (await api("GET", `/api/v1/webhooks/${id}`)).json.circuit;
    if (circuit.state === "open") break;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  assert.equal(circuit.state, "open");
  await page.goto(`${CONSOLE}/admin/webhooks/${id}`);
  await page.getByText("The endpoint is not answering").waitFor();
  const lede = await page.locator(".page-head").innerText();
  assert.match(lede, /Not answering/);
  assert.match(lede, /attempts in a row got no answer/);
  await shot("15-circuit-open");
  await audit("webhook page, circuit open");
  await page.goto(`${CONSOLE}/admin/webhooks`);
  const status = await page.locator(`tr[data-id="${id}"] td[data-label="Status"]`).innerText();
  assert.match(status, /Not answering/);
  assert.equal((await api("DELETE", `/api/v1/webhooks/${id}`)).status, 204);
});

test("a list longer than a page offers the next page, and each webhook shows once", async () => {
  const prefix = `Paged ${Date.now()}`;
  const made = [];
  for (let i = 0; i < 101; i++) {
    const created = await api("POST", "/api/v1/webhooks", { name: `${prefix} ${i}`, url: ACCEPTING, events: ["winner.drawn"] });
    assert.equal(created.status, 201);
    made.push(created.json.id);
  }
  await page.goto(`${CONSOLE}/admin/webhooks`);
  await page.locator("tr[data-id]").first().waitFor();
  assert.equal(await page.locator("tr[data-id]").count(), 100, "the first page: 100 rows");
  const more = page.getByRole("button", { name: "More webhooks" });
  await audit("webhook list, more than one page");
  while (await more.count() > 0) {
    const shown = await page.locator("tr[data-id]").count();
    await more.click();
    await page.waitForFunction((n) => document.querySelectorAll("tr[data-id]").length > n, shown);
  }
  const ids = await page.locator("tr[data-id]").evaluateAll((rows) => rows.map((r) => r.dataset.id));
  assert.equal(new Set(ids).size, ids.length, "no webhook listed twice");
  for (const id of made) assert.ok(ids.includes(id), `${id} is listed`);
  for (const id of made) assert.equal((await api("DELETE", `/api/v1/webhooks/${id}`)).status, 204);
});

test("axe-core finds no accessibility violation on any page audited", () => {
  writeFileSync(join(ARTIFACTS, "axe.json"), JSON.stringify(audits, null, 2));
  assert.ok(audits.length > 0, "pages were audited");
  const found = audits.flatMap(({ state, colorScheme, url, violations }) => violations.map((v) =>
    `${state} (${colorScheme}, ${url}): ${v.id} [${v.impact}] ${v.help}\n  ${v.helpUrl}\n` +
    v.nodes.map((n) => `  - ${n.target}: ${n.html}\n    ${n.summary.replace(/\n/g, "\n    ")}`).join("\n")));
  assert.equal(found.length, 0, `${found.length} violation(s) in ${audits.length} audits:\n\n${found.join("\n\n")}`);
  console.log(`axe-core: 0 violations in ${audits.length} audits (${AXE_TAGS.join(", ")}) of: ${[...new Set(audits.map((a) => a.state))].join("; ")}`);
});

test("no page logged an error (a CSP violation would be one)", () => {
  assert.deepEqual(pageErrors, []);
});
