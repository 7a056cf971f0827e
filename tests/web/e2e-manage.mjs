// End-to-end test of the project's Manage tab in headless Chromium: the
// owner sets the prearchive setting, makes the built-in qa-scan run on
// every archived session and sets who gets the archive email, each
// through the page's forms; the REST API then reads back exactly what the
// page stored (the same domain functions). A member gets 403 and an
// outsider 404 on the Manage page and its forms. Screenshots go to the
// artefacts folder.
//
// Environment: as e2e.mjs (XNATKIT_BIN, XNATKIT_CHROMIUM, XNATKIT_WEB_ARTEFACTS).
import path from "node:path";
import {
  artefacts, check, createUser, launchBrowser, rest, runE2e, startServer, step,
} from "./support.mjs";

async function login(browser, base, user) {
  const context = await browser.newContext({ viewport: { width: 1366, height: 860 } });
  const page = await context.newPage();
  const violations = [];
  page.on("console", (message) => {
    if (/Content Security Policy|Refused to/i.test(message.text())) violations.push(message.text());
  });
  page.on("pageerror", (error) => violations.push(`page error: ${error.message}`));
  await page.goto(base + "/app/login");
  await page.fill('input[name="username"]', user[0]);
  await page.fill('input[name="password"]', user[1]);
  await Promise.all([page.waitForURL("**/app/projects"), page.click('button[type="submit"]')]);
  return { page, violations };
}

async function main() {
  const base = await startServer(["--smtp", "smtp://127.0.0.1:9", "--smtp-from", "xnat@example.org"]);
  step(`server at ${base}`);
  const alice = await createUser(base, "alice");
  const bob = await createUser(base, "bob");
  const carol = await createUser(base, "carol");
  await rest(base, "PUT", "/data/projects/MANAGED?accessibility=private&name=Managed%20study", alice);
  await rest(base, "PUT", "/data/projects/MANAGED/users/member/bob", alice);

  const browser = await launchBrowser();
  try {
    step("owner: the Manage tab from the project page");
    const { page, violations } = await login(browser, base, alice);
    await page.goto(base + "/app/projects/MANAGED");
    await Promise.all([page.waitForURL("**/app/projects/MANAGED/manage"), page.click('nav.tabs a:text-is("Manage")')]);
    check((await page.title()).includes("Manage"), `title ${await page.title()}`);
    check(await page.isChecked('input[name="code"][value="4"]'), "a new project auto-archives (code 4)");

    step("owner: prearchive setting → manual");
    await page.check('input[name="code"][value="0"]');
    await Promise.all([page.waitForURL(/done=prearchive/), page.click('#prearchive-form button[type="submit"]')]);
    check((await page.textContent(".notice")).includes("prearchive setting was saved"), "notice after saving");
    check(await page.isChecked('input[name="code"][value="0"]'), "the page shows manual");
    const code = await (await rest(base, "GET", "/data/projects/MANAGED/prearchive_code", alice)).text();
    check(code.trim() === "0", `REST prearchive_code is ${code}`);

    step("owner: qa-scan runs on every archived session");
    const row = page.locator('tr[data-wrapper="qa-scan"]');
    await row.locator('select[name="mode"]').selectOption("on-archive");
    await Promise.all([page.waitForURL(/done=pipeline/), row.locator('button[type="submit"]').click()]);
    check(await page.locator('tr[data-wrapper="qa-scan"] select[name="mode"]').inputValue() === "on-archive",
      "the page shows qa-scan on archive");
    const subs = await (await rest(base, "GET", "/xapi/projects/MANAGED/events/subscriptions", alice)).json();
    const qaWrapper = (await (await rest(base, "GET", "/xapi/commands", alice)).json())
      .flatMap((c) => c.xnat).find((w) => w.name === "qa-scan");
    check(subs.length === 1 && subs[0]["action-key"].endsWith(`:${qaWrapper.id}`) && subs[0].active,
      `one active subscription for qa-scan: ${JSON.stringify(subs)}`);
    const enabled = await (await rest(base, "GET", `/xapi/projects/MANAGED/wrappers/${qaWrapper.id}/enabled`, alice)).json();
    check(enabled["enabled-for-project"] === true, `qa-scan enabled in the project: ${JSON.stringify(enabled)}`);

    step("owner: archive email recipients (with a bad address refused)");
    await page.fill('textarea[name="recipients"]', "pi@example.org\nnot an address");
    const [refused] = await Promise.all([page.waitForNavigation(), page.click('#email-form button[type="submit"]')]);
    check(refused.status() === 400, `a bad address is refused with 400, got ${refused.status()}`);
    check((await page.textContent("body")).includes("is not an email address"), "the refusal names the problem");
    await page.goto(base + "/app/projects/MANAGED/manage");
    await page.fill('textarea[name="recipients"]', "pi@example.org\nlab@example.org, pi@example.org");
    await Promise.all([page.waitForURL(/done=email/), page.click('#email-form button[type="submit"]')]);
    check((await page.inputValue('textarea[name="recipients"]')) === "lab@example.org\npi@example.org",
      "the page shows the stored list");
    const stored = await (await rest(base, "GET", "/xapi/projects/MANAGED/archive-email", alice)).json();
    check(JSON.stringify(stored) === JSON.stringify(["lab@example.org", "pi@example.org"]), `REST reads ${stored}`);
    await page.screenshot({ path: path.join(artefacts, "manage.png"), fullPage: true });

    step("owner: qa-scan back to enabled only removes the subscription");
    await page.locator('tr[data-wrapper="qa-scan"] select[name="mode"]').selectOption("enabled");
    await Promise.all([page.waitForURL(/done=pipeline/), page.locator('tr[data-wrapper="qa-scan"] button[type="submit"]').click()]);
    const after = await (await rest(base, "GET", "/xapi/projects/MANAGED/events/subscriptions", alice)).json();
    check(after.length === 0, `no subscription left: ${JSON.stringify(after)}`);
    check(violations.length === 0, `CSP violations: ${violations.join("; ")}`);

    step("a member gets 403 and an outsider 404 on Manage");
    for (const [user, status] of [[bob, 403], [carol, 404]]) {
      const { page: other } = await login(browser, base, user);
      const response = await other.goto(base + "/app/projects/MANAGED/manage");
      check(response.status() === status, `${user[0]} got ${response.status()} on Manage, want ${status}`);
      if (user === bob) await other.screenshot({ path: path.join(artefacts, "manage-member-403.png") });
      // The forms too, with the user's own valid form token.
      await other.goto(base + "/app/projects");
      const token = await other.inputValue('input[name="_csrf"]').catch(() => "");
      const posted = await other.evaluate(async ([url, csrf]) => {
        const body = new URLSearchParams({ _csrf: csrf, recipients: "evil@example.org" });
        return (await fetch(url, { method: "POST", body, redirect: "manual" })).status;
      }, [base + "/app/projects/MANAGED/manage/email", token]);
      check(posted === status, `${user[0]} posting recipients got ${posted}, want ${status}`);
    }
    const unchanged = await (await rest(base, "GET", "/xapi/projects/MANAGED/archive-email", alice)).json();
    check(unchanged.length === 2 && !unchanged.includes("evil@example.org"), "recipients unchanged");
  } finally {
    await browser.close();
  }
}

runE2e("web-e2e-manage", main);
