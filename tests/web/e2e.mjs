// End-to-end test of xnatkit's web pages in a real browser: Debian's
// headless Chromium driven by playwright-core (no bundled browser).
//
// It starts `xnatkit serve` on a loopback port, fills a private project
// through the REST API, then as its owner: logs in on the login page the
// site root leads to, opens the projects page, filters the project's
// sessions, opens a session, downloads a selection from the Files panel
// as zip and as tar.gz and checks every file's MD5 against the archive's
// own listing; as an outsider: sees no page of the project, until the
// owner adds them on the Access tab (and again none once removed). It fails on
// any Content-Security-Policy violation. Screenshots of the main pages go
// to the artefacts folder.
//
// Environment:
//   XNATKIT_BIN              the xnatkit binary (required)
//   XNATKIT_CHROMIUM         the browser (default /usr/bin/chromium)
//   XNATKIT_WEB_ARTEFACTS    where screenshots go (default <repo>/tmp/artefacts/web)
import { randomBytes } from "node:crypto";
import path from "node:path";
import {
  archiveDigests, artefacts, check, createUser, launchBrowser, rest, runE2e, startServer, step, workDir,
} from "./support.mjs";

/** A private project of `owner`: one session, two scans with DICOM files, a session resource. */
async function seed(base, owner) {
  await rest(base, "PUT", "/data/projects/PRIV?accessibility=private&name=Private%20study", owner);
  await rest(base, "PUT", "/data/projects/PRIV/subjects/SUBJ1", owner);
  for (const label of ["SESS1", "SESS2", "OTHER3"]) {
    await rest(base, "PUT", `/data/projects/PRIV/subjects/SUBJ1/experiments/${label}?xsiType=xnat:mrSessionData&date=2024-05-01`, owner);
  }
  const session = "/data/projects/PRIV/subjects/SUBJ1/experiments/SESS1";
  for (const [scan, type] of [["1", "T1w"], ["2", "DWI"]]) {
    await rest(base, "PUT", `${session}/scans/${scan}?xsiType=xnat:mrScanData&xnat:mrScanData/type=${type}&xnat:mrScanData/series_description=${type}%20series`, owner);
    await rest(base, "PUT", `${session}/scans/${scan}/resources/DICOM?format=DICOM`, owner);
    for (let n = 0; n < 4; n++) {
      await rest(base, "PUT", `${session}/scans/${scan}/resources/DICOM/files/img${n}.dcm`, owner,
        randomBytes(2000 + n * 777), "application/octet-stream");
    }
  }
  await rest(base, "PUT", `${session}/resources/NOTES`, owner);
  await rest(base, "PUT", `${session}/resources/NOTES/files/notes%20one.txt`, owner, Buffer.from("session notes\n"), "application/octet-stream");
}

/** What the archive says the selection holds: entry name → MD5 (REST listings). */
async function expectedDigests(base, owner) {
  const session = "/data/projects/PRIV/subjects/SUBJ1/experiments/SESS1";
  const want = {};
  for (const [listing, prefix] of [
    ["scans/1/resources/DICOM/files", "SESS1/scans/1-T1w/resources/DICOM/files/"],
    ["resources/NOTES/files", "SESS1/resources/NOTES/files/"],
  ]) {
    const rows = (await (await rest(base, "GET", `${session}/${listing}?format=json`, owner)).json()).ResultSet.Result;
    for (const row of rows) want[prefix + row.Name] = row.digest;
  }
  return want;
}

async function main() {
  const base = await startServer();
  step(`server at ${base}`);
  const alice = await createUser(base, "alice");
  const bob = await createUser(base, "bob");
  await seed(base, alice);

  const browser = await launchBrowser();
  const violations = [];
  const watch = (page) => {
    page.on("console", (message) => {
      if (/Content Security Policy|Refused to/i.test(message.text())) violations.push(message.text());
    });
    page.on("pageerror", (error) => violations.push(`page error: ${error.message}`));
  };
  try {
    // The owner.
    const context = await browser.newContext({ acceptDownloads: true, viewport: { width: 1366, height: 860 } });
    const page = await context.newPage();
    watch(page);
    step("the site root leads a browser to the login page");
    await page.goto(base + "/");
    check(new URL(page.url()).pathname === "/app/login", `root went to ${page.url()}`);
    await page.screenshot({ path: path.join(artefacts, "login.png") });
    await page.fill('input[name="username"]', alice[0]);
    await page.fill('input[name="password"]', alice[1]);
    await Promise.all([page.waitForURL("**/app/projects"), page.click('button[type="submit"]')]);
    step("projects page");
    check((await page.textContent("#my-projects")).includes("PRIV"), "PRIV is among my projects");
    check(await page.evaluate(() => typeof window.htmx === "object"), "htmx loaded from the binary");
    await page.screenshot({ path: path.join(artefacts, "projects.png"), fullPage: true });
    await Promise.all([page.waitForURL("**/app/projects/PRIV"), page.click('a[href="/app/projects/PRIV"]')]);
    step("project page: the filter narrows the sessions through htmx");
    check((await page.locator("#session-table tbody tr").count()) === 3, "three sessions");
    await page.keyboard.press("/");
    check(await page.evaluate(() => document.activeElement && document.activeElement.name === "q"), "'/' focuses the filter");
    await page.keyboard.type("sess");
    await page.waitForURL(/q=sess/);
    await page.waitForFunction(() => document.querySelectorAll("#session-table tbody tr").length === 2);
    await page.screenshot({ path: path.join(artefacts, "project.png"), fullPage: true });
    await Promise.all([
      page.waitForURL("**/experiments/SESS1"),
      page.click('#session-table a:text-is("SESS1")'),
    ]);
    step("session page: scan table and Files panel");
    const scans = await page.textContent("#scan-table");
    check(scans.includes("T1w series") && scans.includes("DWI series"), "scan table lists both scans");
    await page.screenshot({ path: path.join(artefacts, "session.png"), fullPage: true });
    // Keep scan 1's DICOM and the session's NOTES; drop scan 2.
    const scan2 = page.locator("fieldset", { hasText: "Scan 2" }).locator('input[type="checkbox"]');
    await scan2.uncheck();
    const want = await expectedDigests(base, alice);
    for (const format of ["zip", "tar.gz"]) {
      step(`download the selection as ${format}`);
      await page.selectOption('select[name="format"]', format);
      const [download] = await Promise.all([page.waitForEvent("download"), page.click("#download-button")]);
      const saved = path.join(workDir(), `selection.${format}`);
      await download.saveAs(saved);
      const got = archiveDigests(saved);
      const names = Object.keys(want).sort();
      check(JSON.stringify(Object.keys(got).sort()) === JSON.stringify(names),
        `${format} entries ${JSON.stringify(Object.keys(got).sort())} != ${JSON.stringify(names)}`);
      for (const name of names) check(got[name] === want[name], `${format}: MD5 of ${name}`);
      step(`${format}: ${names.length} files, every MD5 matches the archive`);
    }

    // The outsider.
    step("an outsider gets no page of the private project");
    const outsider = await browser.newContext({ viewport: { width: 1366, height: 860 } });
    const other = await outsider.newPage();
    watch(other);
    await other.goto(base + "/app/login");
    await other.fill('input[name="username"]', bob[0]);
    await other.fill('input[name="password"]', bob[1]);
    await Promise.all([other.waitForURL("**/app/projects"), other.click('button[type="submit"]')]);
    check(!(await other.content()).includes("PRIV"), "PRIV is not listed for the outsider");
    const privatePages = [
      "/app/projects/PRIV",
      "/app/projects/PRIV/access",
      "/app/projects/PRIV/subjects/SUBJ1",
      "/app/projects/PRIV/subjects/SUBJ1/experiments/SESS1",
    ];
    const outsiderSeesNothing = async () => {
      for (const route of privatePages) {
        const response = await other.goto(base + route);
        check(response.status() === 404, `${route} answers ${response.status()} to the outsider`);
        check(!(await other.content()).includes("T1w"), `${route} shows nothing of the project`);
      }
    };
    await outsiderSeesNothing();
    await other.screenshot({ path: path.join(artefacts, "outsider-404.png") });

    // The owner's Access tab: its forms are real browser POSTs, so this
    // also proves the CSRF checks let this site's own pages through.
    step("the owner adds the outsider as a collaborator on the Access tab");
    await page.goto(base + "/app/projects/PRIV/access");
    await page.fill('input[type="text"][name="username"]', bob[0]);
    await page.selectOption('select[name="role"]', "collaborator");
    await Promise.all([page.waitForURL(/\/access\?done=/), page.click('form:has(input[value="add"]) button[type="submit"]')]);
    check((await page.textContent("main")).includes(bob[0]), "bob is listed");
    await page.screenshot({ path: path.join(artefacts, "access.png"), fullPage: true });
    for (const route of privatePages) {
      const response = await other.goto(base + route);
      check(response.status() === 200, `${route} answers ${response.status()} to the new collaborator`);
    }
    await other.goto(base + "/app/projects");
    check((await other.textContent("#my-projects")).includes("PRIV"), "PRIV is now among bob's projects");
    step("the owner removes them again");
    await Promise.all([
      page.waitForURL(/\/access\?done=/),
      page.click(`tr:has(td:text-is("${bob[0]}")) button`),
    ]);
    await outsiderSeesNothing();

    step("log out");
    await Promise.all([page.waitForURL("**/app/login"), page.click('header form button[type="submit"]')]);

    // The auto-logout warning, on a browser clock we can move (the
    // server's default idle timeout is 15 minutes; the warning comes 2
    // minutes before).
    step("the auto-logout warning offers to keep the session");
    const clocked = await browser.newContext({ viewport: { width: 1366, height: 860 } });
    await clocked.clock.install();
    const idle = await clocked.newPage();
    watch(idle);
    await idle.goto(base + "/app/login");
    await idle.fill('input[name="username"]', alice[0]);
    await idle.fill('input[name="password"]', alice[1]);
    await Promise.all([idle.waitForURL("**/app/projects"), idle.click('button[type="submit"]')]);
    check(!(await idle.locator("#session-warning").count()), "no warning at first");
    await idle.clock.fastForward("13:30");
    await idle.locator("#session-warning button").waitFor();
    await idle.screenshot({ path: path.join(artefacts, "logout-warning.png") });
    await idle.click("#session-warning button");
    await idle.locator("#session-warning").waitFor({ state: "detached" });
    await clocked.close();
    check(violations.length === 0, `browser reported: ${violations.join(" | ")}`);
    step(`all checks passed; screenshots in ${artefacts}`);
  } finally {
    await browser.close();
  }
}

await runE2e("web-e2e", main);
