// End-to-end test of the Pipelines pages in headless Chromium: an owner
// imports a session of two generated MR series (pydicom), enables the
// built-in QA in the project, logs in, opens the project's Pipelines tab
// (no runs yet), opens the session, ticks both scans in its Pipelines
// panel and launches qa-scan; the panel polls (htmx) until both runs are
// complete and then shows each run's PNG montage inline (checked to have
// decoded: naturalWidth > 0); the run's page shows its logs and outputs;
// the tab lists both runs. An outsider gets 404 on the tab. Screenshots go
// to the artefacts folder: pipelines-session.png, pipelines-run.png,
// pipelines.png.
//
// Environment: as e2e.mjs (XNATKIT_BIN, XNATKIT_CHROMIUM, XNATKIT_WEB_ARTEFACTS),
// plus XNATKIT_PYTHON (a Python with pydicom; default /usr/bin/python3) and
// XNATKIT_E2E_DATABASE_URL (optional): an empty PostgreSQL database to serve from.
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import {
  artefacts, check, createUser, launchBrowser, rest, runE2e, startServer, step, workDir,
} from "./support.mjs";

/** A zip of one MR study of two series (8 slices of 64×64 each), written with pydicom. */
function studyZip(file) {
  const script = `
import io, struct, sys, zipfile
import pydicom
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
study = generate_uid()
size, slices = 64, 8
with zipfile.ZipFile(sys.argv[1], "w") as z:
    for number, description in ((1, "T1w"), (2, "T2w")):
        series, frame = generate_uid(), generate_uid()
        for n in range(slices):
            meta = FileMetaDataset()
            meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.4"
            meta.MediaStorageSOPInstanceUID = generate_uid()
            meta.TransferSyntaxUID = ExplicitVRLittleEndian
            ds = FileDataset(None, {}, file_meta=meta, preamble=b"\\0" * 128)
            ds.is_little_endian, ds.is_implicit_VR = True, False
            ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
            ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame
            ds.PatientName, ds.PatientID = "Pipeline^Phantom", "PIPE01"
            ds.StudyDate, ds.StudyTime = "20240501", "101500"
            ds.StudyID, ds.AccessionNumber = "1", "ACC1"
            ds.Modality, ds.SeriesNumber, ds.SeriesDescription = "MR", number, description
            ds.InstanceNumber = n + 1
            ds.ImagePositionPatient = [0.0, 0.0, float(n * 2)]
            ds.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
            ds.PixelSpacing, ds.SliceThickness = [1.0, 1.0], 2.0
            ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
            ds.Rows = ds.Columns = size
            ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
            pixels = bytearray()
            c = size / 2
            for y in range(size):
                for x in range(size):
                    r = ((x - c) ** 2 + (y - c) ** 2) ** 0.5
                    v = 1200 + 40 * number + 5 * ((x + y + n) % 7) if r < 22 else 10 + (x * y + n) % 5
                    pixels += struct.pack("<H", int(v))
            ds.PixelData = bytes(pixels)
            buffer = io.BytesIO()
            ds.save_as(buffer, write_like_original=False)
            z.writestr(f"study/s{number}/slice{n + 1:02d}.dcm", buffer.getvalue())
`;
  const python = process.env.XNATKIT_PYTHON || "/usr/bin/python3";
  const run = spawnSync(python, ["-c", script, file], { encoding: "utf8" });
  check(run.status === 0, `writing DICOM with pydicom: ${run.stderr}`);
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

/** Every `img.output` in `scope` has loaded and decoded (naturalWidth > 0). */
async function imagesDecoded(page, scope) {
  return page.evaluate(async (selector) => {
    const images = [...document.querySelectorAll(`${selector} img.output`)];
    await Promise.all(images.map((img) => (img.complete ? null : new Promise((resolve) => {
      img.addEventListener("load", resolve, { once: true });
      img.addEventListener("error", resolve, { once: true });
    }))));
    return images.map((img) => ({ src: img.getAttribute("src"), width: img.naturalWidth }));
  }, scope);
}

async function main() {
  const database = process.env.XNATKIT_E2E_DATABASE_URL ? ["--database", process.env.XNATKIT_E2E_DATABASE_URL] : [];
  const base = await startServer(database);
  step(`server at ${base}`);
  const alice = await createUser(base, "alice");
  const carol = await createUser(base, "carol");
  await rest(base, "PUT", "/data/projects/PIPES?accessibility=private&name=Pipeline%20study", alice);
  const zip = path.join(workDir(), "study.zip");
  studyZip(zip);
  await rest(base, "POST", "/data/services/import?dest=/archive&project=PIPES&subject=SUBJ01&session=SUBJ01_MR1",
    alice, readFileSync(zip), "application/zip");
  const qa = (await (await rest(base, "GET", "/xapi/commands", alice)).json())
    .flatMap((c) => c.xnat).find((w) => w.name === "qa-scan");
  await rest(base, "PUT", `/xapi/projects/PIPES/wrappers/${qa.id}/enabled`, alice);

  const browser = await launchBrowser();
  try {
    const { page, violations } = await login(browser, base, alice);
    step("owner: the Pipelines tab, no runs yet");
    await page.goto(base + "/app/projects/PIPES");
    await Promise.all([page.waitForURL("**/app/projects/PIPES/pipelines"), page.click('nav.tabs a:text-is("Pipelines")')]);
    check((await page.title()).includes("Pipelines"), `title ${await page.title()}`);
    check((await page.textContent("#run-count")).includes("No runs"), "no runs yet");
    check((await page.textContent("#launch-wrapper")).includes("qa-scan"), "qa-scan offered on the tab");

    step("owner: launch qa-scan on both scans from the session page");
    const sessionUrl = base + "/app/projects/PIPES/subjects/SUBJ01/experiments/SUBJ01_MR1";
    await page.goto(sessionUrl);
    await page.selectOption("#session-launch-wrapper", String(qa.id));
    await page.click('#launch-scans button[data-check="all"]');
    const ticked = await page.$$eval('#launch-scans input[name="scan"]', (boxes) => boxes.filter((b) => b.checked).length);
    check(ticked === 2, `both scans ticked by "All": ${ticked}`);
    await Promise.all([page.waitForURL(/launched=2/), page.click("#session-launch-button")]);
    check((await page.textContent("#pipelines .notice")).includes("Launched 2 runs"), "the launch notice");

    step("the panel follows the runs (htmx) until both montages show");
    await page.waitForFunction(() => document.querySelectorAll("#pipeline-runs img.output").length >= 2
      && !document.querySelector("#pipeline-runs .status.active"), null, { timeout: 180000, polling: 500 });
    const statuses = await page.$$eval("#session-runs .status", (spans) => spans.map((s) => s.textContent));
    check(statuses.length === 2 && statuses.every((s) => s === "Complete"), `both runs complete: ${statuses}`);
    const images = await imagesDecoded(page, "#pipeline-runs");
    check(images.length === 2 && images.every((i) => i.width > 0 && i.src.endsWith("/montage.png")),
      `both montages decoded inline: ${JSON.stringify(images)}`);
    await page.screenshot({ path: path.join(artefacts, "pipelines-session.png"), fullPage: true });

    step("the run's page: status, logs, outputs");
    await Promise.all([page.waitForURL(/\/pipelines\/\d+#logs$/), page.locator("#session-runs a.run-log").first().click()]);
    check((await page.textContent("#run-status")) === "Complete", "the run page says Complete");
    check(await page.locator("#log-stdout").count() === 1 && await page.locator("#log-stderr").count() === 1, "both logs");
    const runId = page.url().match(/\/pipelines\/(\d+)/)[1];
    const stdout = await (await rest(base, "GET", `/xapi/projects/PIPES/containers/${runId}/logs/stdout`, alice)).text();
    const shown = await page.textContent("#log-stdout");
    check(stdout.trim() === "" ? shown.includes("Nothing written") : shown.includes(stdout.trim().split("\n")[0]),
      `the page shows the stdout log the xapi route serves: ${stdout.slice(0, 200)}`);
    const runImages = await imagesDecoded(page, "#run-outputs");
    check(runImages.length === 1 && runImages[0].width > 0, `the montage on the run page: ${JSON.stringify(runImages)}`);
    check((await page.textContent("#run-outputs")).includes("resource QA"), "the QA resource is linked");
    await page.screenshot({ path: path.join(artefacts, "pipelines-run.png"), fullPage: true });

    step("the tab lists both runs, newest first, with the session linked");
    await page.goto(base + "/app/projects/PIPES/pipelines");
    const rows = await page.$$eval("#run-table tbody tr", (trs) => trs.map((tr) => ({
      id: Number(tr.dataset.run), text: tr.textContent,
    })));
    check(rows.length === 2 && rows[0].id > rows[1].id, `two runs, newest first: ${JSON.stringify(rows)}`);
    check(rows.every((r) => r.text.includes("qa-scan") && r.text.includes("Complete") && r.text.includes("SUBJ01_MR1 scan")),
      `the rows: ${JSON.stringify(rows)}`);
    await page.screenshot({ path: path.join(artefacts, "pipelines.png"), fullPage: true });
    check(violations.length === 0, `CSP violations: ${violations.join("; ")}`);

    step("an outsider gets 404 on the tab");
    const { page: outsider } = await login(browser, base, carol);
    const response = await outsider.goto(base + "/app/projects/PIPES/pipelines");
    check(response.status() === 404, `carol got ${response.status()} on the Pipelines tab`);
  } finally {
    await browser.close();
  }
}

runE2e("web-e2e-pipelines", main);
