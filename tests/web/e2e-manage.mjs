// End-to-end test of the project's Manage tab in headless Chromium: the
// owner sets the prearchive setting, makes the built-in qa-scan run on
// every archived session and sets who gets the archive email, each
// through the page's forms; the REST API then reads back exactly what the
// page stored (the same domain functions). A member gets 403 and an
// outsider 404 on the Manage page and its forms. Then the site admin, on
// Admin → Users, creates a user, disables them (who then cannot log in),
// enables them, resets their password and switches the admin role; a
// non-admin gets 403 there. Screenshots go to the artefacts folder.
//
// Environment: as e2e.mjs (XNATKIT_BIN, XNATKIT_CHROMIUM, XNATKIT_WEB_ARTEFACTS),
// plus XNATKIT_E2E_DATABASE_URL (optional): an empty PostgreSQL database to serve from.
import path from "node:path";
import {
  adminPassword, artefacts, basic, check, createUser, launchBrowser, rest, runE2e, startServer, step,
} from "./support.mjs";

/** The status of a Basic-auth login (`/data/JSESSION`) as `user`. */
async function loginStatus(base, user) {
  const response = await fetch(base + "/data/JSESSION", { headers: { Authorization: basic(...user) } });
  return response.status;
}

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
  // XNATKIT_E2E_DATABASE_URL runs the same test on PostgreSQL (a fresh database).
  const database = process.env.XNATKIT_E2E_DATABASE_URL ? ["--database", process.env.XNATKIT_E2E_DATABASE_URL] : [];
  const base = await startServer(["--smtp", "smtp://127.0.0.1:9", "--smtp-from", "xnat@example.org", ...database]);
  step(`server at ${base}`);
  const alice = await createUser(base, "alice");
  const bob = await createUser(base, "bob");
  const carol = await createUser(base, "carol");
  await rest(base, "PUT", "/data/projects/MANAGED?accessibility=private&name=Managed%20study", alice);
  await rest(base, "PUT", "/data/projects/MANAGED/users/member/bob", alice);
  // A session with two scans, for the README's screenshot of the session page.
  const session = "/data/projects/MANAGED/subjects/SUBJ01/experiments/SUBJ01_MR1";
  await rest(base, "PUT", "/data/projects/MANAGED/subjects/SUBJ01", alice);
  await rest(base, "PUT", `${session}?xsiType=xnat:mrSessionData&date=2024-05-01`, alice);
  for (const [scan, type, files] of [["1", "T1w", 176], ["2", "DWI", 60]]) {
    await rest(base, "PUT", `${session}/scans/${scan}?xsiType=xnat:mrScanData&xnat:mrScanData/type=${type}&xnat:mrScanData/series_description=${type}%20series&xnat:mrScanData/quality=usable`, alice);
    await rest(base, "PUT", `${session}/scans/${scan}/resources/DICOM?format=DICOM`, alice);
    for (let n = 0; n < 3; n++) {
      await rest(base, "PUT", `${session}/scans/${scan}/resources/DICOM/files/${type}-${n}.dcm`, alice,
        Buffer.alloc(1000 * files + n), "application/octet-stream");
    }
  }

  const browser = await launchBrowser();
  try {
    const { page, violations } = await login(browser, base, alice);
    step("owner: the session page (README screenshot)");
    await page.goto(base + "/app/projects/MANAGED/subjects/SUBJ01/experiments/SUBJ01_MR1");
    check((await page.textContent("#scan-table")).includes("T1w series"), "the scan table");
    await page.screenshot({ path: path.join(artefacts, "readme-session.png") });

    step("owner: the Manage tab from the project page");
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

    step("admin: Admin → Users creates dave, who logs in");
    const { page: admin, violations: adminViolations } = await login(browser, base, ["admin", adminPassword]);
    await admin.goto(base + "/app/admin/users");
    check((await admin.title()).includes("Users"), `title ${await admin.title()}`);
    const dave = ["dave", "Pw-dave-first-1"];
    await admin.fill('#create-user input[name="username"]', dave[0]);
    await admin.fill('#create-user input[name="password"]', dave[1]);
    await admin.fill('#create-user input[name="email"]', "dave@example.org");
    await admin.fill('#create-user input[name="first_name"]', "Dave");
    await Promise.all([admin.waitForURL(/done=created/), admin.click('#create-user button[type="submit"]')]);
    const daveRow = () => admin.locator('tr[data-user="dave"]');
    check((await daveRow().locator(".enabled").textContent()) === "yes", "dave is enabled");
    check(!(await admin.content()).includes(dave[1]), "the password is not on the page");
    check(await loginStatus(base, dave) === 200, "dave can log in");

    step("admin: disable dave; dave can no longer log in (REST or page)");
    await Promise.all([admin.waitForURL(/done=disabled/), daveRow().locator('button[value="disable"]').click()]);
    check((await daveRow().locator(".enabled").textContent()) === "no", "dave shows disabled");
    check(await loginStatus(base, dave) === 401, "disabled dave gets 401");
    const { page: davePage } = await (async () => {
      const context = await browser.newContext();
      const p = await context.newPage();
      await p.goto(base + "/app/login");
      await p.fill('input[name="username"]', dave[0]);
      await p.fill('input[name="password"]', dave[1]);
      await p.click('button[type="submit"]');
      await p.waitForLoadState();
      return { page: p };
    })();
    check(new URL(davePage.url()).pathname === "/app/login", `disabled dave left the login page: ${davePage.url()}`);
    await davePage.screenshot({ path: path.join(artefacts, "disabled-login.png") });

    step("admin: enable dave, reset his password, make and unmake him admin");
    await Promise.all([admin.waitForURL(/done=enabled/), daveRow().locator('button[value="enable"]').click()]);
    await daveRow().locator('input[name="password"]').fill("Pw-dave-second-2");
    await Promise.all([admin.waitForURL(/done=password/), daveRow().locator('button:text-is("Reset")').click()]);
    check(await loginStatus(base, dave) === 401, "the old password no longer works");
    check(await loginStatus(base, ["dave", "Pw-dave-second-2"]) === 200, "the new password works");
    await Promise.all([admin.waitForURL(/done=admin/), daveRow().locator('button[value="admin"]').click()]);
    const daveJson = await (await rest(base, "GET", "/xapi/users/dave", ["admin", adminPassword])).json();
    check(daveJson.admin === true && daveJson.enabled === true, `REST reads dave: ${JSON.stringify(daveJson)}`);
    await Promise.all([admin.waitForURL(/done=unadmin/), daveRow().locator('button[value="unadmin"]').click()]);
    await admin.screenshot({ path: path.join(artefacts, "admin-users.png"), fullPage: true });
    check(adminViolations.length === 0, `CSP violations: ${adminViolations.join("; ")}`);

    step("a non-admin gets 403 on Admin → Users and its forms");
    const aliceAdmin = await page.goto(base + "/app/admin/users");
    check(aliceAdmin.status() === 403, `alice got ${aliceAdmin.status()} on Admin`);
    await page.goto(base + "/app/projects");
    const aliceToken = await page.inputValue('input[name="_csrf"]');
    const disabled = await page.evaluate(async ([url, csrf]) => {
      const body = new URLSearchParams({ _csrf: csrf, action: "disable" });
      return (await fetch(url, { method: "POST", body, redirect: "manual" })).status;
    }, [base + "/app/admin/users/bob", aliceToken]);
    check(disabled === 403, `alice disabling bob got ${disabled}`);
    check(await loginStatus(base, bob) === 200, "bob still logs in");
  } finally {
    await browser.close();
  }
}

runE2e("web-e2e-manage", main);
