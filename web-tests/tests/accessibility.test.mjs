// Accessibility of the workspace, checked by axe-core (the engine of Lighthouse's and most
// browsers' accessibility audits) in Debian's chromium: every main page, at laptop and at phone
// width, against WCAG 2.1 A and AA (labels, names, roles, contrast, landmarks, headings), and
// none may scroll sideways. A violation fails the test with its rule, its elements and axe's
// help text.
//
// axe is evaluated through the driver (which the page's CSP does not govern), so the pages
// keep their strict policy while they are checked. Starts its own `charter demo`.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const binary = process.env.CHARTER_BIN ?? join(root, "target", "debug", "charter");
const browserPath = process.env.CHROMIUM ?? "/usr/bin/chromium";
const axeSource = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");

let server;
let dataDir;
let base;
let key;
let browser;

before(async () => {
  dataDir = mkdtempSync(join(tmpdir(), "charter-a11y-"));
  server = spawn(binary, ["demo", "--listen", "127.0.0.1:0", "--data-dir", dataDir], {
    stdio: ["ignore", "pipe", "inherit"],
    env: { ...process.env, RUST_LOG: "warn" },
  });
  ({ base, key } = await new Promise((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error(`charter demo did not start: ${out}`)), 120_000);
    server.on("exit", (code) => reject(new Error(`charter demo exited (${code}): ${out}`)));
    server.stdout.on("data", (chunk) => {
      out += chunk;
      const url = out.match(/^listening on (http:\/\/\S+)$/m);
      const found = out.match(/^bootstrap key: (\S+)$/m);
      if (url && found) {
        clearTimeout(timer);
        resolve({ base: url[1], key: found[1] });
      }
    });
  }));
  browser = await chromium.launch({ executablePath: browserPath, args: ["--disable-gpu", "--no-first-run"] });
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
});

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

/** axe's violations of WCAG 2.1 A/AA on the page as it is now, one line each. */
async function violations(page) {
  await page.evaluate(`${axeSource}\n;0`);
  const found = await page.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const result = await axe.run(document, {
      runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] },
      resultTypes: ["violations"],
    });
    return result.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      targets: v.nodes.slice(0, 5).map((n) => n.target.join(" ")),
    }));
  });
  return found.map((v) => `${v.id} (${v.impact}): ${v.help} — ${v.targets.join(", ")}`);
}

test("the checker itself finds what it is here to find", async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.setContent(`<!doctype html><html lang="en"><title>t</title><main>
    <input name="unlabelled"><p style="color:#bbb;background:#fff">faint text</p>
    <button></button></main></html>`);
  const found = (await violations(page)).map((line) => line.split(" ")[0]);
  for (const rule of ["label", "color-contrast", "button-name"]) {
    assert.ok(found.includes(rule), `${rule} in ${found.join(", ")}`);
  }
  await context.close();
});

for (const [label, width] of [["desktop", 1280], ["phone", 390]]) {
  test(`every main page passes axe's WCAG 2.1 AA checks and fits the width (${label})`, async () => {
    // A draft with a rule of each kind the forms show, and a run with a block.
    const scope = { type: "agent", tenant_id: "acme", agent_id: "support" };
    const draft = await api("POST", "/v1/policies", {
      name: `Accessible draft (${label})`,
      scope,
      rules: [{ id: "r1", type: "tool", effect: "deny", tools: ["*.send_email"],
        when: [{ arg: "to", op: "not_ends_with", value: "@acme.com" }] }],
    });
    const run = await api("POST", "/v1/runs", { tenant_id: "acme", agent_id: "support" });
    await api("POST", `/v1/runs/${run.id}/check`, { kind: "tool_call", tool: "admin.exec", args: {} });

    const context = await browser.newContext({ viewport: { width, height: 900 } });
    const page = await context.newPage();
    await page.goto(`${base}/sign-in`);
    assert.deepEqual(await violations(page), [], "/sign-in");
    await page.getByLabel("API key").fill(key);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.waitForURL(`${base}/policies`);

    const pages = [
      "/policies",
      "/policies?status=draft",
      `/policies/${draft.id}`,
      "/policies/new",
      "/policies/import",
      `/policies/${draft.id}/details`,
      `/policies/${draft.id}/definition`,
      `/policies/${draft.id}/clone`,
      `/policies/${draft.id}/validate`,
      `/policies/${draft.id}/activate`,
      `/policies/${draft.id}/rules/new`,
      `/policies/${draft.id}/rules/r1/edit`,
      `/policies/${draft.id}/rules/new?type=data_access`,
      `/policies/${draft.id}/rules/new?type=rate`,
      `/policies/${draft.id}/rules/new?type=cost`,
      `/policies/${draft.id}/rules/new?type=time`,
      `/policies/${draft.id}/rules/new?type=output`,
      "/monitor",
      "/runs",
      `/runs/${run.id}`,
      "/audit",
      "/audit/verify",
      "/keys",
      "/docs",
    ];
    const problems = [];
    for (const path of pages) {
      const answer = await page.goto(`${base}${path}`);
      assert.equal(answer.status(), 200, path);
      for (const line of await violations(page)) {
        problems.push(`${path}: ${line}`);
      }
      if (await page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth)) {
        problems.push(`${path}: scrolls sideways at ${width} px`);
      }
    }
    // Agents asks a platform key to pick a tenant first: both states.
    await page.goto(`${base}/agents`);
    for (const line of await violations(page)) {
      problems.push(`/agents: ${line}`);
    }
    await page.getByLabel("Tenant").selectOption("acme");
    await page.waitForURL(`${base}/agents`);
    await page.getByRole("heading", { name: "Register an agent" }).waitFor();
    for (const line of await violations(page)) {
      problems.push(`/agents (acme): ${line}`);
    }
    assert.deepEqual(problems, []);
    await context.close();
  });
}
