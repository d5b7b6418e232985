// The workspace in a real browser: Debian's chromium, headless, against the real `charter`
// binary running `charter demo` on a fresh data directory. Signs in by typing the key, reads the
// Policies list, opens a policy, signs out, and signs in again by the one-click link the demo
// prints; opens the Monitor, filters it by a policy and opens a run from a row, sees a block
// made through the API arrive in the open Monitor, pauses it; opens the API reference from the
// sidebar, finds an operation and follows a schema link; creates a policy through the form,
// exports it by clicking and imports the file, follows its version chain; edits a clone's
// details and JSON, validates and activates it superseding the active version; checks the
// guards (escaping, CSRF, tenant isolation, a read-only key); no console error and no CSP
// violation anywhere but the refusals asked for. Takes screenshots (1280 and 390 px
// wide) into a scratch folder, or into `SCREENSHOTS_DIR` (`docs/screenshots` to refresh the
// committed ones: they show the demo's timestamps, so every run would otherwise change them).

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, mkdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const binary = process.env.CHARTER_BIN ?? join(root, "target", "debug", "charter");
const shots = process.env.SCREENSHOTS_DIR
  ? join(root, process.env.SCREENSHOTS_DIR)
  : mkdtempSync(join(tmpdir(), "charter-screenshots-"));
const browserPath = process.env.CHROMIUM ?? "/usr/bin/chromium";

let server;
let dataDir;
let base;
let key;
let browser;

/** Starts `charter demo` and reads its URL and key from standard output. */
function startDemo() {
  dataDir = mkdtempSync(join(tmpdir(), "charter-web-"));
  server = spawn(binary, ["demo", "--listen", "127.0.0.1:0", "--data-dir", dataDir], {
    stdio: ["ignore", "pipe", "inherit"],
    env: { ...process.env, RUST_LOG: "warn" },
  });
  return new Promise((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error(`charter demo did not start: ${out}`)), 120_000);
    server.on("exit", (code) => reject(new Error(`charter demo exited (${code}): ${out}`)));
    server.stdout.on("data", (chunk) => {
      out += chunk;
      const url = out.match(/^listening on (http:\/\/\S+)$/m);
      const link = out.match(/^workspace: (\S+)$/m);
      const found = out.match(/^bootstrap key: (\S+)$/m);
      if (url && link && found) {
        clearTimeout(timer);
        resolve({ base: url[1], key: found[1], link: link[1] });
      }
    });
  });
}

let link;

before(async () => {
  ({ base, key, link } = await startDemo());
  browser = await chromium.launch({
    executablePath: browserPath,
    args: [
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
    ],
  });
  mkdirSync(shots, { recursive: true });
});

after(async () => {
  await browser?.close();
  if (server && server.exitCode === null) {
    server.removeAllListeners("exit");
    server.kill("SIGTERM");
    await new Promise((resolve) => server.once("exit", resolve));
  }
  if (dataDir) {
    rmSync(dataDir, { recursive: true, force: true });
  }
  if (!process.env.SCREENSHOTS_DIR) {
    rmSync(shots, { recursive: true, force: true });
  }
});

/** A page that records console errors, page errors and CSP violations. */
async function watchedPage(width) {
  const context = await browser.newContext({ viewport: { width, height: 900 } });
  const page = await context.newPage();
  const problems = [];
  page.on("console", (message) => {
    if (message.type() === "error" || message.type() === "warning") {
      problems.push(`console ${message.type()}: ${message.text()}`);
    }
  });
  page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
  // Runs outside the page's CSP (injected by the driver), before any script of the page.
  await page.addInitScript(() => {
    document.addEventListener("securitypolicyviolation", (event) => {
      console.error(`CSP violation: ${event.violatedDirective} ${event.blockedURI}`);
    });
  });
  return { context, page, problems };
}

/** Whether the page scrolls sideways. */
async function scrollsSideways(page) {
  return page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth);
}

for (const [label, width] of [["desktop", 1280], ["phone", 390]]) {
  test(`sign in by typing a key, read the policies, open one, sign out (${label})`, async () => {
    const { context, page, problems } = await watchedPage(width);
    await page.goto(`${base}/policies`);
    assert.equal(new URL(page.url()).pathname, "/sign-in", "unauthenticated pages lead to sign-in");
    await page.screenshot({ path: join(shots, `sign-in-${label}.png`) });
    await page.getByLabel("API key").fill(key);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.waitForURL(`${base}/policies`);

    // The list, from the demo's data: several policies, each with a status badge.
    await page.getByRole("heading", { name: "Policies" }).waitFor();
    const rows = page.locator("table.list tbody tr");
    assert.ok((await rows.count()) >= 3, "the demo's policies are listed");
    assert.ok((await page.locator(".badge-active").count()) >= 1);
    assert.equal(await scrollsSideways(page), false, `no horizontal scroll at ${width}px`);
    await page.screenshot({ path: join(shots, `policies-${label}.png`), fullPage: true });

    // Tabs swap the content through htmx and keep a real URL.
    await page.getByRole("link", { name: "Active", exact: true }).click();
    await page.waitForURL(`${base}/policies?status=active`);
    await page.locator('.tabs a[aria-current="page"]', { hasText: "Active" }).waitFor();
    const statuses = await page.locator("table.list tbody .badge").allTextContents();
    assert.ok(statuses.length > 0 && statuses.every((s) => s.trim() === "active"), statuses.join());

    // A policy's page.
    const first = page.locator("table.list tbody tr a").first();
    const name = (await first.textContent()).trim();
    await first.click();
    await page.waitForURL(/\/policies\/pol_/);
    await page.getByRole("heading", { name, level: 1 }).waitFor();
    assert.match(await page.locator("pre.json").textContent(), /"type"/);
    // app.js sets the title of content swapped in by htmx (after it settles).
    await page.waitForFunction((title) => document.title === title, `${name} · Charter`);
    assert.equal(await scrollsSideways(page), false, `no horizontal scroll at ${width}px`);
    await page.screenshot({ path: join(shots, `policy-${label}.png`), fullPage: true });

    // Reload: the pushed URL answers a whole page.
    await page.reload();
    await page.getByRole("heading", { name, level: 1 }).waitFor();

    await page.getByRole("button", { name: "Sign out" }).click();
    await page.waitForURL(`${base}/sign-in`);
    await page.goto(`${base}/policies`);
    assert.equal(new URL(page.url()).pathname, "/sign-in", "signed out");

    assert.deepEqual(problems, []);
    await context.close();
  });
}

for (const [label, width] of [["desktop", 1280], ["phone", 390]]) {
  test(`the Monitor: filter by a policy, open a run from a row (${label})`, async () => {
    const { context, page, problems } = await watchedPage(width);
    await page.goto(link);
    await page.waitForURL(`${base}/policies`);
    await page.locator(".sidebar").getByRole("link", { name: "Monitor" }).click();
    await page.waitForURL(`${base}/monitor`);
    await page.getByRole("heading", { name: "Monitor", level: 1 }).waitFor();

    // The demo's live runs were refused: rows newest first, each with a decision, over a chart.
    const rows = page.locator("#events tr");
    assert.ok((await rows.count()) >= 1, "the demo's blocks are listed");
    assert.ok((await page.locator("#events .badge-block, #events .badge-halt").count()) >= 1);
    assert.ok((await page.locator("figure.chart svg rect.bar").count()) >= 1, "a chart");
    assert.equal(await scrollsSideways(page), false, `no horizontal scroll at ${width}px`);
    // The first screen only: fifty rows would make a file of megabytes.
    await page.screenshot({ path: join(shots, `monitor-${label}.png`) });

    // Filter by the first row's policy: typed into the form, kept in the URL, every row its.
    const policyHref = await rows.first().locator('td[data-label="Policy"] a').getAttribute("href");
    const policyId = policyHref.split("/").pop();
    await page.getByLabel("Policy id").fill(policyId);
    await page.getByRole("button", { name: "Filter" }).click();
    await page.waitForURL((url) => url.searchParams.get("policy_id") === policyId);
    await page.locator("#events tr").first().waitFor();
    const hrefs = await page.locator('#events td[data-label="Policy"] a').evaluateAll((links) =>
      links.map((a) => a.getAttribute("href")),
    );
    assert.ok(hrefs.length > 0 && hrefs.every((h) => h === policyHref), hrefs.join());
    // A bad value is told on the page (answered 400, which the console reports: the one
    // message expected here).
    const before = problems.length;
    await page.goto(`${base}/monitor?decision=allow`);
    await page.getByText("These filters cannot be used").waitFor();
    const reported = problems.splice(before);
    assert.ok(reported.every((p) => p.includes("status of 400")), reported.join());
    await page.goBack();

    // Open a run from a row: its agent, its pinned versions and its actions.
    await page.locator('#events td[data-label="Run"] a').first().click();
    await page.waitForURL(/\/runs\/run_/);
    await page.getByRole("heading", { name: /^Run / }).waitFor();
    assert.ok((await page.locator(".timeline .step").count()) >= 1, "its actions");
    assert.ok((await page.locator(".timeline .violations li").count()) >= 1, "its violations");
    assert.ok((await page.locator(".pinned a").count()) >= 1, "its pinned policies");
    assert.equal(await scrollsSideways(page), false, `no horizontal scroll at ${width}px`);
    await page.screenshot({ path: join(shots, `run-${label}.png`), fullPage: true });

    // The policy's page links back to its blocks.
    await page.goto(`${base}${policyHref}`);
    await page.getByRole("link", { name: "Blocks by this policy" }).click();
    await page.waitForURL((url) => url.searchParams.get("policy_id") === policyId);
    await page.locator("#events tr").first().waitFor();

    // The Runs list.
    await page.locator(".sidebar").getByRole("link", { name: "Runs" }).click();
    await page.waitForURL(`${base}/runs`);
    assert.ok((await page.locator("table.list tbody tr").count()) >= 1);
    assert.equal(await scrollsSideways(page), false, `no horizontal scroll at ${width}px`);
    await page.screenshot({ path: join(shots, `runs-${label}.png`) });

    assert.deepEqual(problems, []);
    await context.close();
  });
}

/** Calls API v1 with the demo's key. */
async function api(method, path, body) {
  const response = await fetch(`${base}${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  assert.ok(response.ok, `${method} ${path}: ${response.status} ${text}`);
  return JSON.parse(text);
}

/** A check the demo's "No shell access" refuses, made through the API; its decision. */
async function blockedCheck() {
  const run = await api("POST", "/v1/runs", { tenant_id: "globex", agent_id: "research" });
  return api("POST", `/v1/runs/${run.id}/check`, {
    kind: "tool_call",
    tool: "admin.exec",
    args: { cmd: "live-row-check" },
  });
}

test("the live Monitor adds a row for a new block without a reload, and pauses", async () => {
  const { context, page, problems } = await watchedPage(1280);
  await page.goto(link);
  await page.waitForURL(`${base}/policies`);
  await page.goto(`${base}/monitor`);
  const rows = page.locator("#events tr");
  await rows.first().waitFor();
  // The stream is open once the extension says so.
  await page.locator('.live[data-state="open"]').waitFor({ state: "attached" });
  const firstId = await rows.first().getAttribute("id");
  const navigations = [];
  page.on("framenavigated", (frame) => frame === page.mainFrame() && navigations.push(frame.url()));

  const decision = await blockedCheck();
  assert.equal(decision.decision, "block", JSON.stringify(decision));
  await page.waitForFunction(
    (id) => document.querySelector("#events tr")?.id !== id,
    firstId,
  );
  const newest = rows.first();
  assert.match(await newest.textContent(), /admin\.exec/);
  assert.equal(await newest.locator('td[data-label="Run"] a').getAttribute("href"), `/runs/${decision.run_id}`);
  assert.deepEqual(navigations, [], "no reload");

  // Paused, a new block is held back and counted; resuming brings it.
  await page.getByRole("button", { name: "Pause" }).click();
  const paused = await blockedCheck();
  await page.getByText("Paused: 1 new event held back").waitFor();
  assert.notEqual(await rows.first().locator('td[data-label="Run"] a').getAttribute("href"), `/runs/${paused.run_id}`);
  await page.getByRole("button", { name: "Resume" }).click();
  await page.waitForFunction(
    (href) => document.querySelector('#events tr td[data-label="Run"] a')?.getAttribute("href") === href,
    `/runs/${paused.run_id}`,
  );

  assert.deepEqual(problems, []);
  await context.close();
});

test("the link charter demo prints signs in with one click and forgets the key", async () => {
  const { context, page, problems } = await watchedPage(1280);
  assert.ok(link.startsWith(`${base}/sign-in#key=`), link);
  await page.goto(link);
  await page.waitForURL(`${base}/policies`);
  await page.getByRole("heading", { name: "Policies" }).waitFor();
  assert.ok(!page.url().includes(key), "the key is not in the address");
  await page.goBack();
  assert.ok(!page.url().includes(key), "nor in the history");
  assert.deepEqual(problems, []);
  await context.close();
});

/** Signs in with the demo's key by typing it. */
async function signIn(page, as = key) {
  await page.goto(`${base}/sign-in`);
  await page.getByLabel("API key").fill(as);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL(`${base}/policies`);
}

test("register an agent, create a key and see it once, revoke it, verify the audit log", async () => {
  const { context, page, problems } = await watchedPage(1280);
  await signIn(page);

  // Agents: a platform key looking at all tenants is asked to pick one first.
  await page.getByRole("link", { name: "Agents", exact: true }).click();
  await page.waitForURL(`${base}/agents`);
  await page.getByText("Pick a tenant.").waitFor();
  await page.getByLabel("Tenant").selectOption("acme");
  await page.waitForURL(`${base}/agents`);
  await page.getByRole("heading", { name: "Register an agent" }).waitFor();
  // A bad id: the error next to the field, by htmx's swap of the 422 answer.
  await page.getByLabel("Id", { exact: true }).fill("bad id");
  await page.getByLabel("Name", { exact: true }).fill("Greeter");
  await page.getByRole("button", { name: "Register agent" }).click();
  await page.locator("#agent-id-error").waitFor();
  assert.match(await page.locator("#agent-id-error").textContent(), /not allowed in an id/);
  assert.equal(await page.getByLabel("Name", { exact: true }).inputValue(), "Greeter");
  await page.getByLabel("Id", { exact: true }).fill("greeter");
  await page.getByRole("button", { name: "Register agent" }).click();
  await page.getByText("Agent greeter registered.").waitFor();
  await page.locator("table.list td", { hasText: "greeter" }).first().waitFor();

  // Keys: create one; its value shows once, with a copy button.
  await page.getByRole("link", { name: "Keys", exact: true }).click();
  await page.waitForURL(`${base}/keys`);
  await page.getByLabel("Name", { exact: true }).fill("browser test key");
  await page.getByLabel("execute", { exact: false }).check();
  await page.getByRole("button", { name: "Create key" }).click();
  await page.getByRole("heading", { name: /browser test key/ }).waitFor();
  const value = (await page.locator("#new-key-value").textContent()).trim();
  assert.match(value, /^chk_/);
  await page.getByRole("button", { name: "Copy" }).click();
  await page.locator(".copy-status").filter({ hasText: /Copied|Selected/ }).waitFor();
  await page.getByRole("link", { name: "Back to Keys" }).click();
  await page.waitForURL(`${base}/keys`);
  const row = page.locator("table.list tbody tr", { hasText: "browser test key" });
  await row.waitFor();
  assert.ok(!(await page.content()).includes(value), "the value is never shown again");

  // Revoke it, after the confirmation page.
  await row.getByRole("link", { name: /Revoke/ }).click();
  await page.waitForURL(/\/keys\/key_[^/]+\/revoke$/);
  await page.getByRole("heading", { name: /Revoke “browser test key”\?/ }).waitFor();
  await page.getByRole("button", { name: "Revoke key" }).click();
  await page.waitForURL(`${base}/keys`);
  await page
    .locator("table.list tbody tr", { hasText: "browser test key" })
    .locator(".badge", { hasText: "revoked" })
    .waitFor();

  // The Audit Log holds all of it; Verify recomputes the chain.
  await page.getByRole("link", { name: "Audit Log", exact: true }).click();
  await page.waitForURL(`${base}/audit`);
  for (const action of ["agent.created", "key.created", "key.revoked"]) {
    await page.locator(".entry .badge", { hasText: action }).first().waitFor();
  }
  await page.getByLabel("Action").selectOption("key.revoked");
  await page.getByRole("button", { name: "Filter" }).click();
  await page.waitForURL(`${base}/audit?action=key.revoked`);
  assert.equal(await page.locator(".entry").count(), 1);
  await page.getByRole("link", { name: "Verify chain" }).click();
  await page.waitForURL(`${base}/audit/verify`);
  await page.getByText("The chain is intact.").waitFor();

  // Chromium logs every 4xx answer as a console error; the one 422 here is the refused form's
  // answer (asked for above), nothing else may show.
  const refusedForm = /Failed to load resource: .* status of 422/;
  assert.equal(problems.filter((p) => refusedForm.test(p)).length, 1, problems.join("\n"));
  assert.deepEqual(problems.filter((p) => !refusedForm.test(p)), []);
  await context.close();
});

for (const [label, width] of [["desktop", 1280], ["phone", 390]]) {
  test(`Agents, Keys and Audit Log fit the screen (${label})`, async () => {
    const { context, page, problems } = await watchedPage(width);
    await signIn(page);
    await page.getByLabel("Tenant").selectOption("acme");
    // The switcher reloads the page; the server marks the choice.
    await page.locator('#tenant-select option[value="acme"][selected]').waitFor({ state: "attached" });
    for (const [path, heading] of [
      ["/agents", "Agents"],
      ["/keys", "Keys"],
      ["/audit", "Audit Log"],
    ]) {
      await page.goto(`${base}${path}`);
      await page.getByRole("heading", { name: heading, level: 1 }).waitFor();
      assert.equal(await scrollsSideways(page), false, `${path}: no horizontal scroll at ${width}px`);
      await page.screenshot({ path: join(shots, `${path.slice(1)}-${label}.png`), fullPage: true });
    }
    assert.deepEqual(problems, []);
    await context.close();
  });
}

test("create a policy through the form, import a document file, see the version chain after a clone", async () => {
  const { context, page, problems } = await watchedPage(1280);
  await signIn(page);

  // + New policy: a draft with no rules, scoped to an agent picked from the list.
  await page.getByRole("link", { name: "New policy" }).click();
  await page.waitForURL(`${base}/policies/new`);
  await page.getByRole("heading", { name: "New policy", level: 1 }).waitFor();
  // A missing name is refused beside its field (a 422, swapped in by htmx).
  await page.locator('input[name="scope"][value="agent"]').check();
  await page.locator("#policy-agent").selectOption({ index: 1 });
  await page.getByRole("button", { name: "Create draft" }).click();
  await page.locator("#policy-name-error").waitFor();
  await page.getByLabel("Name", { exact: true }).fill("Browser <draft>");
  await page.getByLabel(/^Description/).fill("made in the browser test");
  await page.getByRole("button", { name: "Create draft" }).click();
  await page.waitForURL(/\/policies\/pol_[^/]+$/);
  const draftUrl = page.url();
  await page.getByRole("heading", { name: "Browser <draft>", level: 1 }).waitFor();
  await page.getByText("No rules yet").waitFor();
  assert.equal(await page.locator("table.versions tbody tr").count(), 1);

  // Clone: the new draft's page shows the chain, oldest first, itself marked.
  await page.getByRole("button", { name: "Clone" }).click();
  await page.waitForURL((url) => url.href !== draftUrl && /\/policies\/pol_[^/]+$/.test(url.pathname));
  const chain = page.locator("table.versions tbody tr");
  assert.equal(await chain.count(), 2);
  assert.equal(await chain.nth(0).locator("a").getAttribute("href"), new URL(draftUrl).pathname);
  assert.equal(await chain.nth(1).getAttribute("aria-current"), "page");

  // Export by clicking: a download of the portable document, then imported back.
  await page.goto(draftUrl);
  const [download] = await Promise.all([
    page.waitForEvent("download"),
    page.getByRole("link", { name: "Export" }).click(),
  ]);
  const policyId = new URL(draftUrl).pathname.split("/").pop();
  assert.equal(download.suggestedFilename(), `${policyId}.json`);
  const doc = JSON.parse(readFileSync(await download.path(), "utf8"));
  assert.equal(doc.format, "charter.policy/v1");
  assert.equal(doc.name, "Browser <draft>");
  doc.name = "Imported in the browser";
  await page.goto(`${base}/policies`);
  await page.getByRole("link", { name: "Import" }).click();
  await page.waitForURL(`${base}/policies/import`);
  // A refused document names its path, and nothing is imported.
  const bad = { ...doc, scope: { type: "galaxy" } };
  await page.getByLabel("Policy file").setInputFiles({
    name: "bad.json",
    mimeType: "application/json",
    buffer: Buffer.from(JSON.stringify([doc, bad])),
  });
  await page.getByRole("button", { name: "Import as drafts" }).click();
  await page.getByText("Nothing was imported.").waitFor();
  assert.match(await page.locator("#import-error code.path").textContent(), /^\[1\]\.scope/);
  await page.getByLabel("Policy file").setInputFiles({
    name: "policy.json",
    mimeType: "application/json",
    buffer: Buffer.from(JSON.stringify(doc)),
  });
  await page.getByRole("button", { name: "Import as drafts" }).click();
  await page.getByText("Imported 1 draft.").waitFor();
  await page.getByRole("link", { name: "Imported in the browser" }).click();
  await page.getByRole("heading", { name: "Imported in the browser", level: 1 }).waitFor();

  // Chromium logs every 4xx answer as a console error: the two refused forms asked for above.
  const refused = /Failed to load resource: .* status of 422/;
  assert.equal(problems.filter((p) => refused.test(p)).length, 2, problems.join("\n"));
  assert.deepEqual(problems.filter((p) => !refused.test(p)), []);
  await context.close();
});

for (const [label, width] of [["desktop", 1280], ["phone", 390]]) {
  test(`New policy and Import fit the screen (${label})`, async () => {
    const { context, page, problems } = await watchedPage(width);
    await signIn(page);
    for (const [path, heading] of [
      ["/policies/new", "New policy"],
      ["/policies/import", "Import policies"],
    ]) {
      await page.goto(`${base}${path}`);
      await page.getByRole("heading", { name: heading, level: 1 }).waitFor();
      assert.equal(await scrollsSideways(page), false, `${path}: no horizontal scroll at ${width}px`);
      const name = path === "/policies/new" ? "policy-new" : "policy-import";
      await page.screenshot({ path: join(shots, `${name}-${label}.png`), fullPage: true });
    }
    assert.deepEqual(problems, []);
    await context.close();
  });
}

for (const [label, width] of [["desktop", 1280], ["phone", 390]]) {
  test(`the API reference: open it from the sidebar, find an operation, follow a schema (${label})`, async () => {
    const { context, page, problems } = await watchedPage(width);
    await signIn(page);
    await page.getByRole("link", { name: "API reference", exact: true }).click();
    await page.getByRole("heading", { name: "API reference", level: 1 }).waitFor();
    await page.waitForURL(`${base}/docs`);
    assert.equal(await scrollsSideways(page), false, `/docs: no horizontal scroll at ${width}px`);
    await page.screenshot({ path: join(shots, `docs-${label}.png`) });

    // The raw document is one click away, and it is the one the page was built from.
    const raw = page.getByRole("link", { name: "Download openapi.json" });
    assert.equal(await raw.getAttribute("href"), "/v1/openapi.json");
    const doc = await (await page.request.get(`${base}/v1/openapi.json`)).json();
    const operations = Object.values(doc.paths).flatMap((item) => Object.keys(item)).length;
    assert.equal(await page.locator("article.operation").count(), operations);

    // Find an operation from the contents, by its method and path.
    const toc = page.getByRole("navigation", { name: "Operations" });
    await toc.getByRole("link", { name: "POST /v1/policies", exact: true }).click();
    await page.waitForURL(`${base}/docs#op-create_policy`);
    const op = page.locator("#op-create_policy");
    assert.equal(await op.isVisible(), true);
    assert.match(await op.locator("h3").innerText(), /POST\s+\/v1\/policies/);
    assert.equal(await scrollsSideways(page), false, `an operation: no horizontal scroll at ${width}px`);
    await op.screenshot({ path: join(shots, `docs-operation-${label}.png`) });

    // Its request body names a component: the link lands on the schema.
    await op.locator('a[href^="#schema-"]').first().click();
    await page.waitForURL(/#schema-/);
    const target = page.locator(".component:target");
    assert.equal(await target.count(), 1);
    assert.equal(await target.isVisible(), true);
    assert.equal(await scrollsSideways(page), false, `a schema: no horizontal scroll at ${width}px`);
    assert.deepEqual(problems, []);
    await context.close();
  });
}

test("a hostile name renders as text, a form without its token changes nothing, a tenant key stays in its tenant, a read-only key gets no write controls", async () => {
  const scope = { type: "agent", tenant_id: "acme", agent_id: "research" };
  const hostile = await api("POST", "/v1/policies", { name: "<script>alert(1)</script>", scope, rules: [] });
  const theirs = await api("POST", "/v1/policies", {
    name: "Globex private", scope: { type: "tenant", tenant_id: "globex" }, rules: [],
  });
  const newKey = async (name, scopes) =>
    (await api("POST", "/v1/keys", { name, tenant_id: "acme", scopes })).key;
  const writerKey = await newKey("acme browser", ["read", "write"]);
  const readerKey = await newKey("acme reader", ["read"]);

  const { context, page, problems } = await watchedPage(390);
  let dialogs = 0;
  page.on("dialog", async (dialog) => {
    dialogs += 1;
    await dialog.dismiss();
  });
  await signIn(page, writerKey);
  // The name is text: no script ran, and the phone width does not scroll sideways.
  await page.goto(`${base}/policies/${hostile.id}`);
  assert.equal(await page.getByRole("heading", { level: 1 }).textContent(), "<script>alert(1)</script>");
  assert.equal(dialogs, 0);
  assert.equal(await scrollsSideways(page), false);

  // A form without its token (neither the field nor htmx's header) is refused; nothing changed.
  await page.getByRole("link", { name: "Edit details" }).click();
  await page.waitForURL(`${base}/policies/${hostile.id}/details`);
  await page.evaluate(() => {
    document.querySelector('form.panel-form input[name="csrf"]').remove();
    document.body.removeAttribute("hx-headers");
  });
  await page.getByLabel("Name", { exact: true }).fill("Forged");
  await page.getByRole("button", { name: "Save details" }).click();
  await page.getByRole("heading", { name: "Request refused" }).waitFor();
  assert.equal((await api("GET", `/v1/policies/${hostile.id}`)).name, "<script>alert(1)</script>");

  // Another tenant's policy is not found, exactly as a made-up id, and never named.
  const theirsPage = await page.goto(`${base}/policies/${theirs.id}`);
  assert.equal(theirsPage.status(), 404);
  const theirsText = await page.locator("main").innerText();
  const madeUp = await page.goto(`${base}/policies/pol_made_up`);
  assert.equal(madeUp.status(), 404);
  assert.equal(await page.locator("main").innerText(), theirsText);
  await page.goto(`${base}/policies`);
  assert.doesNotMatch(await page.content(), /globex/i);
  await context.close();

  // A read-only key: no control that changes anything, and a forged POST is refused.
  const reader = await watchedPage(1280);
  await signIn(reader.page, readerKey);
  await reader.page.goto(`${base}/policies`);
  await reader.page.getByRole("link", { name: "<script>alert(1)</script>" }).waitFor();
  assert.equal(await reader.page.getByRole("link", { name: "New policy", exact: true }).count(), 0);
  assert.equal(await reader.page.getByRole("link", { name: "Import", exact: true }).count(), 0);
  await reader.page.goto(`${base}/policies/${hostile.id}`);
  for (const name of ["Edit details", "Edit as JSON", "Validate…", "Activate…", "Delete…", "Clone into…"]) {
    assert.equal(await reader.page.getByRole("link", { name, exact: true }).count(), 0, name);
  }
  assert.equal(await reader.page.getByRole("button", { name: "Clone", exact: true }).count(), 0);
  const status = await reader.page.evaluate(async (id) => {
    const token = JSON.parse(document.body.getAttribute("hx-headers"))["X-CSRF-Token"];
    const answer = await fetch(`/policies/${id}/details`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: `csrf=${token}&revision=1&name=Forged`,
    });
    return answer.status;
  }, hostile.id);
  assert.equal(status, 403);
  assert.equal((await api("GET", `/v1/policies/${hostile.id}`)).name, "<script>alert(1)</script>");

  // Chromium reports each 4xx answer: the refused form, the two not-found pages, the forgery.
  const expected = /Failed to load resource: .* status of (403|404)/;
  assert.equal([...problems, ...reader.problems].filter((p) => expected.test(p)).length, 4,
    [...problems, ...reader.problems].join("\n"));
  assert.deepEqual([...problems, ...reader.problems].filter((p) => !expected.test(p)), []);
  await reader.context.close();
});

test("validate a clone, activate it superseding the active version, deprecate it, delete a draft", async () => {
  const { context, page, problems } = await watchedPage(1280);
  await signIn(page);
  const rules = [{ id: "external", type: "tool", effect: "deny", tools: ["*.send_email"],
    when: [{ arg: "to", op: "not_ends_with", value: "@acme.com" }] }];
  const scope = { type: "agent", tenant_id: "acme", agent_id: "billing" };
  const first = await api("POST", "/v1/policies", { name: "Browser lineage", scope, rules });
  await api("POST", `/v1/policies/${first.id}/activate`, { force: true });

  // Clone the active version into a draft, from its page.
  await page.goto(`${base}/policies/${first.id}`);
  await page.getByRole("heading", { name: "Browser lineage", level: 1 }).waitFor();
  await page.getByText("does not end with").first().waitFor();
  await page.getByRole("button", { name: "Clone" }).click();
  await page.waitForURL((url) => /\/policies\/pol_[^/]+$/.test(url.pathname) && !url.pathname.endsWith(first.id));
  const clone = new URL(page.url()).pathname.split("/").pop();

  // Edit the clone: its name in the details form (its scope is fixed: v1 has been active)...
  await page.getByRole("link", { name: "Edit details" }).click();
  await page.waitForURL(`${base}/policies/${clone}/details`);
  await page.getByText("its scope is fixed").waitFor();
  await page.screenshot({ path: join(shots, "policy-details-desktop.png") });
  await page.getByLabel("Name", { exact: true }).fill("Browser lineage, v2");
  await page.getByRole("button", { name: "Save details" }).click();
  await page.waitForURL(`${base}/policies/${clone}`);
  await page.getByRole("heading", { name: "Browser lineage, v2", level: 1 }).waitFor();
  // ... and a rule in the JSON editor: a bad op is refused with its path, then a good edit.
  await page.getByRole("link", { name: "Edit as JSON" }).click();
  await page.waitForURL(`${base}/policies/${clone}/definition`);
  const editor = page.getByLabel("Definition");
  const text = await editor.inputValue();
  await editor.fill(text.replace('"not_ends_with"', '"sounds_like"'));
  await page.getByRole("button", { name: "Save definition" }).click();
  await page.locator("#policy-definition-error").waitFor();
  assert.equal(await page.locator("#policy-definition-error code").textContent(), "rules[0].when[0].op");
  await page.screenshot({ path: join(shots, "policy-json-desktop.png"), fullPage: true });
  await editor.fill(text.replace('"@acme.com"', '"@acme.org"'));
  await page.getByRole("button", { name: "Save definition" }).click();
  await page.waitForURL(`${base}/policies/${clone}`);
  await page.getByText("@acme.org").first().waitFor();

  // Validate it: the report, and activation no longer needs force.
  await page.getByRole("link", { name: "Validate…" }).click();
  await page.waitForURL(`${base}/policies/${clone}/validate`);
  await page.getByRole("button", { name: "Validate", exact: true }).click();
  await page.getByRole("heading", { name: "Report" }).waitFor();
  await page.screenshot({ path: join(shots, "validate-desktop.png"), fullPage: true });
  await page.getByRole("link", { name: "Activate…" }).click();
  await page.waitForURL(`${base}/policies/${clone}/activate`);
  await page.getByText("Validated at this revision").waitFor();
  await page.getByLabel(/Deprecate the other active versions/).check();
  await page.screenshot({ path: join(shots, "activate-desktop.png") });
  await page.getByRole("button", { name: "Activate", exact: true }).click();
  await page.waitForURL(`${base}/policies/${clone}`);
  await page.locator(".page-head .badge-active").waitFor();
  assert.equal((await api("GET", `/v1/policies/${first.id}`)).status, "deprecated", "superseded");
  const chain = page.locator("table.versions tbody tr");
  assert.equal(await chain.count(), 2);
  assert.match(await chain.nth(0).innerText(), /deprecated/i);

  // Deprecate the new active version after its confirmation page.
  await page.getByRole("link", { name: "Deprecate…" }).click();
  await page.waitForURL(`${base}/policies/${clone}/deprecate`);
  await page.getByRole("button", { name: "Deprecate", exact: true }).click();
  await page.waitForURL(`${base}/policies/${clone}`);
  await page.locator(".page-head .badge-deprecated").waitFor();

  // Delete a draft after its confirmation page: gone from the list and the API.
  const draft = await api("POST", "/v1/policies", { name: "Browser throwaway", scope, rules });
  await page.goto(`${base}/policies/${draft.id}`);
  await page.getByRole("link", { name: "Delete…" }).click();
  await page.waitForURL(`${base}/policies/${draft.id}/delete`);
  await page.getByRole("button", { name: "Delete draft" }).click();
  await page.waitForURL(`${base}/policies`);
  assert.equal(await page.getByRole("link", { name: "Browser throwaway" }).count(), 0);
  const gone = await fetch(`${base}/v1/policies/${draft.id}`, {
    headers: { authorization: `Bearer ${key}` },
  });
  assert.equal(gone.status, 404);

  // The Audit Log keeps the lineage's story: both versions activated, both deprecated.
  await page.goto(`${base}/audit?lineage_id=${first.lineage_id}`);
  const entries = page.locator("li.entry");
  await entries.first().waitFor();
  assert.equal(await entries.filter({ hasText: "policy.activated" }).count(), 2);
  assert.equal(await entries.filter({ hasText: "policy.deprecated" }).count(), 2);
  assert.ok(await entries.filter({ hasText: "policy.updated" }).count() >= 2, "the two edits");

  // The refused JSON edit is the one 4xx answer asked for here.
  const refused = /Failed to load resource: .* status of 422/;
  assert.equal(problems.filter((p) => refused.test(p)).length, 1, problems.join("\n"));
  assert.deepEqual(problems.filter((p) => !refused.test(p)), []);
  await context.close();
});

test("add a tool rule with a condition, a cost rule and an output rule to a draft by clicking", async () => {
  const { context, page, problems } = await watchedPage(1280);
  await signIn(page);
  const draft = await api("POST", "/v1/policies", {
    name: "Rules by clicking",
    scope: { type: "agent", tenant_id: "globex", agent_id: "research" },
  });
  await page.goto(`${base}/policies/${draft.id}`);
  const addRule = async (type) => {
    await page.getByRole("link", { name: "+ Add rule" }).click();
    await page.getByRole("heading", { name: "Add a rule", level: 1 }).waitFor();
    await page.getByRole("link", { name: type, exact: true }).click();
    await page.getByRole("heading", { name: new RegExp(`^Add an? ${type.toLowerCase()} rule$`), level: 1 }).waitFor();
  };

  // A tool rule: a condition row is added by the server (htmx swaps the form in again).
  await addRule("Tool");
  await page.getByLabel("Tools").fill("*.send_email");
  await page.getByRole("button", { name: "+ Add condition" }).click();
  await page.getByLabel("Argument").fill("to");
  await page.getByLabel("Op", { exact: true }).selectOption("not_ends_with");
  await page.getByLabel("Value").fill("@acme.com");
  await page.getByRole("button", { name: "Save rule" }).click();
  await page.waitForURL(`${base}/policies/${draft.id}`);

  // A cost rule: a negative cap is refused beside its field; corrected, it is saved.
  await addRule("Cost");
  await page.getByLabel(/^Cap/).fill("-1");
  await page.getByLabel("Period").selectOption("day");
  await page.getByRole("button", { name: "Save rule" }).click();
  await page.locator("#rule-max-usd-error").waitFor();
  assert.equal(await page.getByLabel(/^Cap/).getAttribute("aria-invalid"), "true");
  await page.getByLabel(/^Cap/).fill("25");
  await page.getByRole("button", { name: "Save rule" }).click();
  await page.waitForURL(`${base}/policies/${draft.id}`);

  // An output rule.
  await addRule("Output");
  await page.getByLabel(/^Denied phrases/).fill("internal only");
  await page.getByLabel("email", { exact: true }).check();
  await page.getByRole("button", { name: "Save rule" }).click();
  await page.waitForURL(`${base}/policies/${draft.id}`);

  // The three rules, as sentences, in the order they were added.
  const rules = page.locator("ol.rules > li");
  await rules.nth(2).waitFor();
  assert.equal(await rules.count(), 3);
  assert.match(await rules.nth(0).locator(".rule-sentence").textContent(), /send_email.*@acme\.com/);
  assert.match(await rules.nth(1).locator(".rule-sentence").textContent(), /25/);
  assert.match(await rules.nth(2).locator(".rule-sentence").textContent(), /internal only/);
  const stored = await api("GET", `/v1/policies/${draft.id}`);
  assert.deepEqual(stored.rules[0].when, [{ arg: "to", op: "not_ends_with", value: "@acme.com" }]);
  await page.screenshot({ path: join(shots, "policy-rules-desktop.png"), fullPage: true });

  // Chromium logs every 4xx answer as a console error: the one refused form above.
  const refused = /Failed to load resource: .* status of 422/;
  assert.equal(problems.filter((p) => refused.test(p)).length, 1, problems.join("\n"));
  assert.deepEqual(problems.filter((p) => !refused.test(p)), []);
  await context.close();
});

test("a rule form with conditions and windows fits a phone and works by keyboard", async () => {
  const { context, page, problems } = await watchedPage(390);
  await signIn(page);
  const draft = await api("POST", "/v1/policies", {
    name: "Rules on a phone",
    scope: { type: "agent", tenant_id: "globex", agent_id: "research" },
  });
  await page.goto(`${base}/policies/${draft.id}/rules/new?type=tool`);
  await page.getByRole("button", { name: "+ Add condition" }).focus();
  await page.keyboard.press("Enter");
  await page.getByLabel("Argument").waitFor();
  assert.equal(await scrollsSideways(page), false, "tool form: no horizontal scroll at 390px");
  await page.screenshot({ path: join(shots, "rule-tool-phone.png"), fullPage: true });
  await page.goto(`${base}/policies/${draft.id}/rules/new?type=time`);
  await page.getByRole("button", { name: "+ Add allowed window" }).click();
  await page.getByLabel("From").waitFor();
  assert.equal(await scrollsSideways(page), false, "time form: no horizontal scroll at 390px");
  await page.screenshot({ path: join(shots, "rule-time-phone.png"), fullPage: true });
  assert.deepEqual(problems, []);
  await context.close();
});

test("the operator's story in one go: author, validate, activate, watch a block arrive live, open its run, clone, edit, supersede", async () => {
  const { context, page, problems } = await watchedPage(1280);
  await signIn(page);

  // + New policy, scoped to one agent.
  await page.getByRole("link", { name: "New policy" }).click();
  await page.getByLabel("Name", { exact: true }).fill("Story: external email");
  await page.locator('input[name="scope"][value="agent"]').check();
  await page.locator("#policy-agent").selectOption("globex/support");
  await page.getByRole("button", { name: "Create draft" }).click();
  await page.waitForURL(/\/policies\/pol_[^/]+$/);
  const v1 = new URL(page.url()).pathname.split("/").pop();

  // + Add rule: block email outside globex.com.
  await page.getByRole("link", { name: "+ Add rule" }).click();
  await page.getByRole("link", { name: "Tool", exact: true }).click();
  await page.getByLabel("Tools").fill("*.send_email");
  await page.getByRole("button", { name: "+ Add condition" }).click();
  await page.getByLabel("Argument").fill("to");
  await page.getByLabel("Op", { exact: true }).selectOption("not_ends_with");
  await page.getByLabel("Value").fill("@globex.com");
  await page.getByRole("button", { name: "Save rule" }).click();
  await page.waitForURL(`${base}/policies/${v1}`);
  await page.getByText("does not end with").first().waitFor();

  // Validate, then activate: the confirmation knows the revision was validated.
  await page.getByRole("link", { name: "Validate…" }).click();
  await page.getByRole("button", { name: "Validate", exact: true }).click();
  await page.getByRole("heading", { name: "Report" }).waitFor();
  await page.getByRole("link", { name: "Activate…" }).click();
  await page.getByText("Validated at this revision").waitFor();
  await page.getByRole("button", { name: "Activate", exact: true }).click();
  await page.waitForURL(`${base}/policies/${v1}`);
  await page.locator(".page-head .badge-active").waitFor();

  // Its blocks in the Monitor, filtered by it; a block arrives while the page is open.
  await page.getByRole("link", { name: "Blocks by this policy" }).click();
  await page.waitForURL(`${base}/monitor?policy_id=${v1}`);
  await page.locator('.live[data-state="open"]').waitFor({ state: "attached" });
  const run = await api("POST", "/v1/runs", { tenant_id: "globex", agent_id: "support" });
  const decision = await api("POST", `/v1/runs/${run.id}/check`, {
    kind: "tool_call", tool: "gmail.send_email", args: { to: "someone@example.org" },
  });
  assert.equal(decision.decision, "block", JSON.stringify(decision));
  const row = page.locator("#events tr").first();
  await row.waitFor();
  assert.match(await row.textContent(), /Story: external email/);
  assert.match(await row.textContent(), /someone@example\.org/);

  // Open its run: the refused action and why.
  await row.locator('td[data-label="Run"] a').click();
  await page.waitForURL(`${base}/runs/${run.id}`);
  await page.getByText("gmail.send_email").first().waitFor();
  await page.getByText("Story: external email").first().waitFor();

  // Clone into another scope is offered (a page of its own), then clone in place.
  await page.goto(`${base}/policies/${v1}`);
  await page.getByRole("link", { name: "Clone into…" }).click();
  await page.waitForURL(`${base}/policies/${v1}/clone`);
  assert.equal(await page.locator("#policy-agent").inputValue(), "globex/support");
  await page.screenshot({ path: join(shots, "policy-clone-desktop.png") });

  // Clone, edit its details, validate, activate superseding v1.
  await page.goto(`${base}/policies/${v1}`);
  await page.getByRole("button", { name: "Clone", exact: true }).click();
  await page.waitForURL((url) => /\/policies\/pol_[^/]+$/.test(url.pathname) && !url.pathname.endsWith(v1));
  const v2 = new URL(page.url()).pathname.split("/").pop();
  await page.getByRole("link", { name: "Edit details" }).click();
  await page.getByLabel(/^Description/).fill("v2: same rule, reviewed");
  await page.getByRole("button", { name: "Save details" }).click();
  await page.waitForURL(`${base}/policies/${v2}`);
  await page.getByText("v2: same rule, reviewed").waitFor();
  await page.getByRole("link", { name: "Validate…" }).click();
  await page.getByRole("button", { name: "Validate", exact: true }).click();
  await page.getByRole("heading", { name: "Report" }).waitFor();
  await page.getByRole("link", { name: "Activate…" }).click();
  await page.getByLabel(/Deprecate the other active versions/).check();
  await page.getByRole("button", { name: "Activate", exact: true }).click();
  await page.waitForURL(`${base}/policies/${v2}`);
  const chain = page.locator("table.versions tbody tr");
  assert.equal(await chain.count(), 2);
  assert.match(await chain.nth(0).innerText(), /deprecated/i);
  assert.match(await chain.nth(1).innerText(), /active/i);

  // The Audit Log keeps both versions' story.
  const lineage = (await api("GET", `/v1/policies/${v2}`)).lineage_id;
  await page.goto(`${base}/audit?lineage_id=${lineage}`);
  const entries = page.locator("li.entry");
  await entries.first().waitFor();
  for (const [action, count] of [["policy.created", 1], ["policy.cloned", 1], ["policy.activated", 2], ["policy.deprecated", 1]]) {
    assert.equal(await entries.filter({ hasText: action }).count(), count, action);
  }

  assert.deepEqual(problems, []);
  await context.close();
});
