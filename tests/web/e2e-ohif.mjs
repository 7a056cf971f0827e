// End-to-end test of the OHIF viewer that `xnatkit serve --ohif-dir` serves:
// an unmodified OHIF build (scripts/setup-ohif.sh installs @ohif/app from
// the npm registry) in Debian's headless Chromium against our DICOMweb.
//
// It installs or finds OHIF, starts `xnatkit serve --ohif-dir DIR` with the
// viewer on its own loopback port, stores a generated MR series (pydicom)
// into a private project over STOW-RS, then as the project's owner: logs in
// on the web pages, opens OHIF's study list (the study is listed) and, from
// the session page's "View in OHIF" button, the viewer, and waits until the
// viewport's canvas shows non-uniform pixels (read in the page). An
// outsider, logging in on the viewer's own origin, sees no study in OHIF's
// list. A visitor without a session is sent to the login page. It fails on
// any Content-Security-Policy violation. Screenshots: ohif-studylist.png,
// ohif-viewer.png, ohif-outsider.png in the artefacts folder.
//
// Environment:
//   XNATKIT_BIN              the xnatkit binary (required)
//   XNATKIT_OHIF_DIR         where OHIF is (installed there when missing; default <repo>/tmp/ohif)
//   CI                       when "true", OHIF that cannot be installed is a failure, not a skip
//   XNATKIT_CHROMIUM         the browser (default /usr/bin/chromium)
//   XNATKIT_WEB_ARTEFACTS    where screenshots go (default <repo>/tmp/artefacts/web)
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import path from "node:path";
import {
  artefacts, basic, check, createUser, launchBrowser, repo, rest, runE2e, startServer, step, workDir,
} from "./support.mjs";

const PATIENT_NAME = "OHIF^Phantom";
const PATIENT_ID = "OHIF-E2E-1";

/** OHIF's dist folder, installed by scripts/setup-ohif.sh (idempotent). */
function ohifDir() {
  const dir = process.env.XNATKIT_OHIF_DIR || path.join(repo, "tmp", "ohif");
  const setup = spawnSync("bash", [path.join(repo, "scripts", "setup-ohif.sh"), dir], { stdio: "inherit" });
  if (setup.status !== 0 || !existsSync(path.join(dir, "index.html"))) {
    const why = `OHIF is not installed in ${dir} and scripts/setup-ohif.sh failed (status ${setup.status})`;
    if (process.env.CI === "true") throw new Error(why);
    return null;
  }
  return dir;
}

/** A free loopback port for the viewer's listener. */
function freePort() {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

/**
 * Writes an 8-slice MR series (128×128, 16-bit, a bright ring on a
 * gradient that changes per slice) with pydicom; returns the file paths and
 * the study's UID.
 */
function generateSeries(folder) {
  const script = `
import os, struct, sys
import pydicom
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
folder = sys.argv[1]
os.makedirs(folder, exist_ok=True)
study, series, frame = generate_uid(), generate_uid(), generate_uid()
size, slices = 128, 8
for n in range(slices):
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.4"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(None, {}, file_meta=meta, preamble=b"\\0" * 128)
    ds.is_little_endian, ds.is_implicit_VR = True, False
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame
    ds.PatientName, ds.PatientID = "${PATIENT_NAME}", "${PATIENT_ID}"
    ds.PatientBirthDate, ds.PatientSex = "19800101", "O"
    ds.StudyDate, ds.StudyTime, ds.SeriesDate = "20240501", "101500", "20240501"
    ds.StudyID, ds.AccessionNumber, ds.StudyDescription = "1", "ACC1", "OHIF e2e phantom"
    ds.Modality, ds.SeriesNumber, ds.SeriesDescription = "MR", 3, "T2 ring phantom"
    ds.InstanceNumber = n + 1
    ds.ImagePositionPatient = [0.0, 0.0, float(n * 2)]
    ds.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    ds.PixelSpacing, ds.SliceThickness = [1.0, 1.0], 2.0
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.Rows = ds.Columns = size
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.WindowCenter, ds.WindowWidth = 1000, 2000
    pixels = bytearray()
    c = size / 2
    for y in range(size):
        for x in range(size):
            r = ((x - c) ** 2 + (y - c) ** 2) ** 0.5
            v = 200 + 6 * x + 40 * n
            if 30 + n < r < 45 + n:
                v = 1800
            pixels += struct.pack("<H", int(v))
    ds.PixelData = bytes(pixels)
    ds.save_as(os.path.join(folder, f"slice{n + 1:02d}.dcm"), write_like_original=False)
print(study)
`;
  const python = existsSync("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
  const run = spawnSync(python, ["-c", script, folder], { encoding: "utf8" });
  check(run.status === 0, `generating DICOM with pydicom: ${run.stderr}`);
  const files = readdirSync(folder).filter((f) => f.endsWith(".dcm")).sort().map((f) => path.join(folder, f));
  return { study: run.stdout.trim(), files };
}

/**
 * Writes an RTSTRUCT (one square contour on the first slice) drawn on the
 * series in `folder`, as OHIF's "save" would; returns its path.
 */
function generateRtstruct(folder, out) {
  const script = `
import sys
import pydicom
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
image = pydicom.dcmread(sys.argv[1])
meta = FileMetaDataset()
meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.481.3"
meta.MediaStorageSOPInstanceUID = generate_uid()
meta.TransferSyntaxUID = ExplicitVRLittleEndian
ds = FileDataset(None, {}, file_meta=meta, preamble=b"\\0" * 128)
ds.is_little_endian, ds.is_implicit_VR = True, False
ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
for key in ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyInstanceUID",
            "StudyDate", "StudyTime", "StudyID", "AccessionNumber", "StudyDescription"):
    setattr(ds, key, getattr(image, key))
ds.Modality, ds.SeriesInstanceUID, ds.SeriesNumber = "RTSTRUCT", generate_uid(), 99
ds.SeriesDescription, ds.StructureSetLabel = "OHIF e2e ROI", "OHIF e2e ROI"
ds.StructureSetDate, ds.StructureSetTime = "20240501", "120000"
contour_image = Dataset()
contour_image.ReferencedSOPClassUID, contour_image.ReferencedSOPInstanceUID = image.SOPClassUID, image.SOPInstanceUID
series = Dataset()
series.SeriesInstanceUID, series.ContourImageSequence = image.SeriesInstanceUID, Sequence([contour_image])
study = Dataset()
study.ReferencedSOPClassUID = "1.2.840.10008.3.1.2.3.1"
study.ReferencedSOPInstanceUID = image.StudyInstanceUID
study.RTReferencedSeriesSequence = Sequence([series])
frame = Dataset()
frame.FrameOfReferenceUID, frame.RTReferencedStudySequence = image.FrameOfReferenceUID, Sequence([study])
ds.ReferencedFrameOfReferenceSequence = Sequence([frame])
roi = Dataset()
roi.ROINumber, roi.ReferencedFrameOfReferenceUID, roi.ROIName, roi.ROIGenerationAlgorithm = 1, image.FrameOfReferenceUID, "ring", "MANUAL"
ds.StructureSetROISequence = Sequence([roi])
contour = Dataset()
contour.ContourImageSequence = Sequence([contour_image])
contour.ContourGeometricType, contour.NumberOfContourPoints = "CLOSED_PLANAR", 4
contour.ContourData = [20.0, 20.0, 0.0, 60.0, 20.0, 0.0, 60.0, 60.0, 0.0, 20.0, 60.0, 0.0]
roi_contour = Dataset()
roi_contour.ReferencedROINumber, roi_contour.ROIDisplayColor = 1, [255, 0, 0]
roi_contour.ContourSequence = Sequence([contour])
ds.ROIContourSequence = Sequence([roi_contour])
observation = Dataset()
observation.ObservationNumber, observation.ReferencedROINumber, observation.RTROIInterpretedType, observation.ROIInterpreter = 1, 1, "ORGAN", ""
ds.RTROIObservationsSequence = Sequence([observation])
ds.save_as(sys.argv[2], write_like_original=False)
`;
  const python = existsSync("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
  const run = spawnSync(python, ["-c", script, path.join(folder, "slice01.dcm"), out], { encoding: "utf8" });
  check(run.status === 0, `generating an RTSTRUCT with pydicom: ${run.stderr}`);
  return out;
}

/** Stores the files in one STOW-RS request; checks every instance was stored. */
async function stow(base, root, auth, files) {
  const boundary = "xnatkit-e2e-" + Date.now();
  const chunks = [];
  for (const file of files) {
    chunks.push(Buffer.from(`--${boundary}\r\nContent-Type: application/dicom\r\n\r\n`));
    chunks.push(readFileSync(file));
    chunks.push(Buffer.from("\r\n"));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  const response = await fetch(`${base}${root}/studies`, {
    method: "POST",
    headers: {
      Authorization: basic(...auth),
      "Content-Type": `multipart/related; type="application/dicom"; boundary=${boundary}`,
      Accept: "application/dicom+json",
    },
    body: Buffer.concat(chunks),
  });
  const answer = await response.text();
  check(response.status === 200, `STOW-RS answered ${response.status}: ${answer}`);
  const referenced = JSON.parse(answer)["00081199"].Value;
  check(referenced.length === files.length, `STOW-RS stored ${referenced.length} of ${files.length}`);
}

/** Waits until OHIF's viewport canvas has rendered an image with more than a few distinct pixel values. */
async function waitForRenderedImage(page) {
  await page.waitForFunction(() => {
    for (const canvas of document.querySelectorAll("canvas.cornerstone-canvas, .cornerstone-viewport-element canvas")) {
      if (canvas.width < 32 || canvas.height < 32) continue;
      // Copy through a 2D canvas: works whatever context the viewport used.
      const copy = document.createElement("canvas");
      copy.width = canvas.width;
      copy.height = canvas.height;
      const context = copy.getContext("2d");
      context.drawImage(canvas, 0, 0);
      const { data } = context.getImageData(0, 0, copy.width, copy.height);
      const seen = new Set();
      for (let i = 0; i < data.length; i += 4 * 7) {
        seen.add((data[i] << 16) | (data[i + 1] << 8) | data[i + 2]);
        if (seen.size > 16) return true;
      }
    }
    return false;
  }, null, { timeout: 90000, polling: 500 });
}

async function login(page, user) {
  await page.fill('input[name="username"]', user[0]);
  await page.fill('input[name="password"]', user[1]);
  await Promise.all([page.waitForNavigation(), page.click('button[type="submit"]')]);
}

async function main() {
  const dir = ohifDir();
  if (!dir) {
    step("SKIPPED: OHIF could not be installed (no npm registry?); set CI=true to make this a failure");
    return;
  }
  const port = await freePort();
  const base = await startServer(["--ohif-dir", dir, "--ohif-listen", `127.0.0.1:${port}`]);
  const viewer = `http://127.0.0.1:${port}`;
  step(`server at ${base}, OHIF at ${viewer}`);
  const alice = await createUser(base, "alice");
  const bob = await createUser(base, "bob");
  await rest(base, "PUT", "/data/projects/PRIV?accessibility=private&name=Private%20viewer%20study", alice);
  const { study, files } = generateSeries(path.join(workDir(), "dicom"));
  await stow(base, "/xapi/dicomweb/projects/PRIV", alice, files);
  step(`stored study ${study} (${files.length} instances) in PRIV over STOW-RS`);

  step("a visitor without a session gets the login page, not OHIF");
  // node:http, not fetch: fetch marks itself a script (Sec-Fetch-Mode: cors).
  const anonymous = await new Promise((resolve, reject) => {
    http.get(`${viewer}/viewer?StudyInstanceUIDs=${study}`, { headers: { Accept: "text/html" } }, (response) => {
      response.resume();
      resolve(response);
    }).on("error", reject);
  });
  check(anonymous.statusCode === 303, `anonymous viewer page answered ${anonymous.statusCode}`);
  check(anonymous.headers.location.startsWith("/app/login?next=%2Fviewer"), `went to ${anonymous.headers.location}`);
  const anonymousQido = await fetch(`${viewer}/xapi/dicomweb/studies`);
  check(anonymousQido.status === 200, `anonymous QIDO answered ${anonymousQido.status}`);
  check((await anonymousQido.json()).length === 0, "anonymous QIDO lists no study of the private project");
  const badLogin = await fetch(`${viewer}/xapi/dicomweb/studies`, { headers: { Authorization: basic("alice", "wrong") } });
  check(badLogin.status === 401, `QIDO with a wrong password answered ${badLogin.status}`);
  check(!badLogin.headers.has("www-authenticate"), "no browser password dialog on the viewer's origin");
  const config = await (await fetch(`${viewer}/app-config.js`)).text();
  check(config.includes("/xapi/dicomweb") && config.includes("wadouri"), "generated app-config.js points at our DICOMweb");

  const browser = await launchBrowser();
  const violations = [];
  const consoleLines = [];
  const pages = [];
  const watch = (page) => {
    pages.push(page);
    page.on("console", (message) => {
      consoleLines.push(`${message.type()}: ${message.text()}`.slice(0, 400));
      if (/Content Security Policy|Refused to/i.test(message.text())) violations.push(message.text());
    });
    page.on("pageerror", (error) => consoleLines.push(`page error: ${error.message}`));
    page.on("response", (response) => {
      if (response.status() >= 400) consoleLines.push(`HTTP ${response.status()} ${response.url()}`);
    });
  };
  try {
    const owner = await browser.newContext({ viewport: { width: 1400, height: 900 } });
    const page = await owner.newPage();
    watch(page);
    step("the owner logs in on the web pages; the cookie also holds on the viewer's port");
    await page.goto(base + "/app/login");
    await login(page, alice);
    const sessions = await (await rest(base, "GET", "/data/projects/PRIV/experiments?format=json", alice)).json();
    const session = sessions.ResultSet.Result[0];
    check(session, "the STOW-RS study became a session of PRIV");

    step("OHIF's study list shows the study");
    const index = await page.goto(viewer + "/");
    const policy = index.headers()["content-security-policy"] || "";
    check(policy.includes("'wasm-unsafe-eval'") && policy.includes("'sha256-") && !policy.includes("'unsafe-eval'"),
      `viewer CSP: ${policy}`);
    await page.waitForSelector("text=OHIF e2e phantom", { timeout: 60000 });
    await page.screenshot({ path: path.join(artefacts, "ohif-studylist.png") });

    step("the session page's View button opens OHIF on the study");
    const subjects = await (await rest(base, "GET", "/data/projects/PRIV/subjects?format=json", alice)).json();
    const subjectLabel = subjects.ResultSet.Result[0].label;
    await page.goto(`${base}/app/projects/PRIV/subjects/${encodeURIComponent(subjectLabel)}/experiments/${encodeURIComponent(session.label)}`);
    const view = page.locator("#view-session");
    check(await view.count() === 1, "the session page has a View in OHIF button");
    check((await page.locator("a.view-scan").count()) === 1, "the scan row has a View link");
    await Promise.all([page.waitForURL(`${viewer}/viewer?**`), view.click()]);
    check(page.url().includes(`StudyInstanceUIDs=${study}`), `viewer URL ${page.url()}`);
    await waitForRenderedImage(page);
    // OHIF's first-visit hints would cover the image in the screenshot.
    for (const hint of ["text=Skip all", "text=Confirm and hide"]) {
      await page.locator(hint).first().click({ timeout: 3000 }).catch(() => {});
    }
    await page.waitForTimeout(1000);
    await page.screenshot({ path: path.join(artefacts, "ohif-viewer.png") });
    step("the viewport shows the series (non-uniform pixels)");

    step("the viewer's origin stores an RTSTRUCT over STOW-RS with the session cookie, as OHIF's save does");
    const rtstruct = readFileSync(generateRtstruct(path.join(workDir(), "dicom"), path.join(workDir(), "rtstruct.dcm")));
    const stored = await page.evaluate(async (bytes) => {
      const boundary = "ohif-save-" + Date.now();
      const body = new Blob([
        `--${boundary}\r\nContent-Type: application/dicom\r\n\r\n`, new Uint8Array(bytes), `\r\n--${boundary}--\r\n`,
      ]);
      const response = await fetch("/xapi/dicomweb/studies", {
        method: "POST",
        headers: { "Content-Type": `multipart/related; type="application/dicom"; boundary=${boundary}`, Accept: "application/dicom+json" },
        body,
      });
      return { status: response.status, text: await response.text() };
    }, [...rtstruct]);
    check(stored.status === 200, `STOW-RS of the RTSTRUCT from the viewer answered ${stored.status}: ${stored.text}`);
    const assessors = await (await rest(base, "GET",
      `/data/projects/PRIV/subjects/${encodeURIComponent(subjectLabel)}/experiments/${encodeURIComponent(session.label)}/assessors?format=json`, alice)).json();
    const rois = assessors.ResultSet.Result.filter((a) => a.xsiType === "icr:roiCollectionData");
    check(rois.length === 1, `the session has ${rois.length} ROI collections: ${JSON.stringify(assessors.ResultSet.Result)}`);
    step(`the RTSTRUCT became ROI collection ${rois[0].label}`);

    step("an outsider logs in on the viewer's origin and sees no study");
    const outsider = await browser.newContext({ viewport: { width: 1400, height: 900 } });
    const other = await outsider.newPage();
    watch(other);
    await other.goto(viewer + "/");
    check(new URL(other.url()).pathname === "/app/login", `outsider went to ${other.url()}`);
    const listed = other.waitForResponse((r) => new URL(r.url()).pathname === "/xapi/dicomweb/studies", { timeout: 60000 });
    await login(other, bob);
    check(new URL(other.url()).origin === viewer, `after login the outsider is at ${other.url()}`);
    const qido = await listed;
    check(qido.status() === 200, `outsider's QIDO answered ${qido.status()}`);
    const found = await qido.json();
    check(Array.isArray(found) && found.length === 0, `outsider's QIDO listed ${JSON.stringify(found).slice(0, 200)}`);
    await other.waitForTimeout(2000);
    check((await other.locator("text=OHIF e2e phantom").count()) === 0, "the outsider's study list does not show the study");
    await other.screenshot({ path: path.join(artefacts, "ohif-outsider.png") });

    check(violations.length === 0, `Content-Security-Policy violations:\n${violations.join("\n")}`);
    step(`all checks passed; screenshots in ${artefacts}`);
  } catch (error) {
    // What the browser said, and what it showed, to tell why.
    process.stderr.write(consoleLines.slice(-40).map((l) => `  browser ${l}\n`).join(""));
    for (const [n, page] of pages.entries()) {
      await page.screenshot({ path: path.join(artefacts, `ohif-failure-${n}.png`) }).catch(() => {});
    }
    throw error;
  } finally {
    await browser.close();
  }
}

runE2e("web-e2e-ohif", main);
