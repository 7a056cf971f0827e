// End-to-end test of the "Download images" page in a real browser
// (Debian's headless Chromium through playwright-core).
//
// It fills a project of two subjects over REST (scans of two types, each
// with DICOM and NIFTI files), then as its owner opens the project's
// Download images tab, which counts the matching sessions and the scan
// types and formats in SQL, and downloads:
//   1. T1w scans, DICOM only, subjects as sub-folders, simplified: a zip;
//   2. sessions matching a filter, every type and format, project and
//      subject in the paths, full structure: a tar.gz.
// Every entry name is checked against the layout and every file's MD5
// against the archive's REST listing. Any CSP violation fails the test.
// Then it uploads a zip of DICOM (pydicom's CT_small, three instances of
// one new study) to the prearchive on the Upload page (XHR with a progress
// bar), opens the project's Prearchive tab and the session's details,
// archives it under a new subject and session label, and checks over REST
// that the session is archived with its files and the prearchive is empty.
// Screenshots: download.png, download-filtered.png, upload.png,
// prearchive.png, prearchive-session.png, session-upload.png (two non-DICOM
// files into a session resource from the session page, MD5s checked).
//
// Environment: XNATKIT_BIN (required), XNATKIT_CHROMIUM, XNATKIT_WEB_ARTEFACTS.
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import path from "node:path";
import {
  archiveDigests, artefacts, check, createUser, launchBrowser, rest, runE2e, startServer, step, workDir,
} from "./support.mjs";

const SESSIONS = [["SUBJA", "A_MR1"], ["SUBJB", "B_MR1"], ["SUBJB", "B_MR2"]];
const SCANS = [["1", "T1w"], ["2", "DWI"]];
const FORMATS = ["DICOM", "NIFTI"];

async function seed(base, owner) {
  await rest(base, "PUT", "/data/projects/DL?accessibility=private&name=Download%20study", owner);
  for (const [subject, session] of SESSIONS) {
    await rest(base, "PUT", `/data/projects/DL/subjects/${subject}`, owner);
    const uri = `/data/projects/DL/subjects/${subject}/experiments/${session}`;
    await rest(base, "PUT", `${uri}?xsiType=xnat:mrSessionData&date=2024-05-01`, owner);
    for (const [scan, type] of SCANS) {
      await rest(base, "PUT", `${uri}/scans/${scan}?xsiType=xnat:mrScanData&xnat:mrScanData/type=${type}`, owner);
      for (const format of FORMATS) {
        await rest(base, "PUT", `${uri}/scans/${scan}/resources/${format}?format=${format}`, owner);
        for (let n = 0; n < 2; n++) {
          const name = format === "DICOM" ? `img${n}.dcm` : `vol${n}.nii.gz`;
          await rest(base, "PUT", `${uri}/scans/${scan}/resources/${format}/files/${name}`, owner,
            randomBytes(1500 + n * 333), "application/octet-stream");
        }
      }
    }
  }
}

/** Entry name → MD5 from the REST listings, for the sessions, types and formats taken. */
async function expected(base, owner, { sessions, types, formats, prefix, simplified }) {
  const want = {};
  for (const [subject, session] of sessions) {
    for (const [scan, type] of SCANS.filter(([, t]) => types.includes(t))) {
      for (const format of formats) {
        const listing = `/data/projects/DL/subjects/${subject}/experiments/${session}/scans/${scan}/resources/${format}/files?format=json`;
        const rows = (await (await rest(base, "GET", listing, owner)).json()).ResultSet.Result;
        const folder = simplified
          ? `${session}/scans/${scan}-${type}/${format}/`
          : `${session}/scans/${scan}-${type}/resources/${format}/files/`;
        for (const row of rows) want[prefix(subject) + folder + row.Name] = row.digest;
      }
    }
  }
  return want;
}

/** A zip of three DICOM instances of one new study, written with pydicom. */
function dicomZip(file) {
  const script = `
import sys, zipfile, pydicom
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid
study, series = generate_uid(), generate_uid()
with zipfile.ZipFile(sys.argv[1], "w") as z:
    for n in range(3):
        ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.InstanceNumber = n + 1
        ds.PatientName, ds.PatientID = "Upload^Test", "UP001"
        path = sys.argv[1] + f".{n}.dcm"
        ds.save_as(path)
        z.write(path, f"study/ct{n}.dcm")
`;
  const python = process.env.XNATKIT_PYTHON || "/usr/bin/python3";
  const run = spawnSync(python, ["-c", script, file], { encoding: "utf8" });
  check(run.status === 0, `writing DICOM with pydicom: ${run.stderr}`);
}

function compare(file, want, what) {
  const got = archiveDigests(file);
  const names = Object.keys(want).sort();
  check(names.length > 0, `${what}: the expectation is not empty`);
  check(JSON.stringify(Object.keys(got).sort()) === JSON.stringify(names),
    `${what}: entries ${JSON.stringify(Object.keys(got).sort())} != ${JSON.stringify(names)}`);
  for (const name of names) check(got[name] === want[name], `${what}: MD5 of ${name}`);
  step(`${what}: ${names.length} files in the expected layout, every MD5 matches the archive`);
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
  const login = async (context, user) => {
    const page = await context.newPage();
    watch(page);
    await page.goto(base + "/app/login");
    await page.fill('input[name="username"]', user[0]);
    await page.fill('input[name="password"]', user[1]);
    await Promise.all([page.waitForURL("**/app/projects"), page.click('button[type="submit"]')]);
    return page;
  };
  try {
    const context = await browser.newContext({ acceptDownloads: true, viewport: { width: 1366, height: 860 } });
    const page = await login(context, alice);
    await page.goto(base + "/app/projects/DL");
    step("the project's Download images tab");
    await Promise.all([page.waitForURL("**/app/projects/DL/download"), page.click('nav.tabs a:text-is("Download images")')]);
    check((await page.textContent("#session-total")).includes("All 3 matching"), "all 3 sessions match");
    const types = await page.textContent("#type-choice");
    check(types.includes("T1w (3)") && types.includes("DWI (3)"), `scan types with counts: ${types}`);
    const formats = await page.textContent("#format-choice");
    check(formats.includes("DICOM (6)") && formats.includes("NIFTI (6)"), `scan formats with counts: ${formats}`);
    check((await page.textContent("#cli-command")).includes("xnatkit download DL"), "the equivalent command is shown");
    check((await page.textContent("#curl-command")).includes("DL:SUBJA:A_MR1:"), "the curl command names the sessions");
    await page.screenshot({ path: path.join(artefacts, "download.png"), fullPage: true });

    step("download T1w DICOM of every session, subjects as sub-folders, simplified, as zip");
    await page.uncheck('#type-choice input[value="DWI"]');
    await page.uncheck('#format-choice input[value="NIFTI"]');
    await page.check('input[name="subjectIncludedInPath"]');
    check(await page.isChecked('input[name="simplified"]'), "simplified is the default");
    let [download] = await Promise.all([page.waitForEvent("download"), page.click("#images-button")]);
    let saved = path.join(workDir(), "images.zip");
    await download.saveAs(saved);
    compare(saved, await expected(base, alice, {
      sessions: SESSIONS, types: ["T1w"], formats: ["DICOM"], prefix: (s) => `${s}/`, simplified: true,
    }), "zip");

    step("filter to subject B's sessions; everything, project and subject in paths, full structure, as tar.gz");
    await page.fill('input[name="q"][type="search"]', "b_mr");
    await Promise.all([page.waitForURL(/q=b_mr/), page.press('input[name="q"][type="search"]', "Enter")]);
    check((await page.textContent("#session-total")).includes("All 2 matching"), "2 sessions match the filter");
    check((await page.textContent("#type-choice")).includes("T1w (2)"), "counts follow the filter");
    await page.check('input[name="projectIncludedInPath"]');
    await page.check('input[name="subjectIncludedInPath"]');
    await page.uncheck('input[name="simplified"]');
    await page.selectOption('select[name="archive"]', "tar.gz");
    await page.screenshot({ path: path.join(artefacts, "download-filtered.png"), fullPage: true });
    [download] = await Promise.all([page.waitForEvent("download"), page.click("#images-button")]);
    saved = path.join(workDir(), "images.tar.gz");
    await download.saveAs(saved);
    compare(saved, await expected(base, alice, {
      sessions: SESSIONS.filter(([s]) => s === "SUBJB"), types: ["T1w", "DWI"], formats: FORMATS,
      prefix: (s) => `DL/${s}/`, simplified: false,
    }), "tar.gz");

    step("upload a zip of DICOM to the prearchive on the Upload page");
    const zipFile = path.join(workDir(), "upload.zip");
    dicomZip(zipFile);
    await page.goto(base + "/app/projects/DL");
    await Promise.all([page.waitForURL("**/app/upload?project=DL"), page.click('nav.tabs a:text-is("Upload")')]);
    check((await page.inputValue('select[name="project"]')) === "DL", "the project is preselected");
    await page.fill('input[name="subject"]', "UPSUBJ");
    await page.fill('input[name="session"]', "UP_MR1");
    await page.setInputFiles('input[name="file"]', zipFile);
    await page.click("#upload-button");
    await page.locator("#upload-sessions a").waitFor();
    check((await page.getAttribute("#upload-progress", "value")) === "100", "the progress bar is full");
    const uploaded = await page.textContent("#upload-sessions");
    check(uploaded.includes("/data/prearchive/projects/DL/"), `uploaded to the prearchive: ${uploaded}`);
    await page.screenshot({ path: path.join(artefacts, "upload.png"), fullPage: true });

    step("the Prearchive tab lists it; its details show the scan");
    await Promise.all([page.waitForURL("**/app/projects/DL/prearchive"), page.click("#upload-sessions a")]);
    check((await page.locator("#prearchive-table tbody tr").count()) === 1, "one prearchive session");
    const row = await page.textContent("#prearchive-table tbody tr");
    check(row.includes("UP_MR1") && row.includes("READY"), `prearchive row: ${row}`);
    await page.screenshot({ path: path.join(artefacts, "prearchive.png"), fullPage: true });
    await page.click('#prearchive-table a:text-is("UP_MR1")');
    await page.locator("#prearchive-scans").waitFor();
    check((await page.textContent("#prearchive-status")).includes("READY"), "details show READY");
    await page.screenshot({ path: path.join(artefacts, "prearchive-session.png"), fullPage: true });
    await page.goBack();

    step("archive it from the Prearchive tab under a new subject and label");
    await page.check('#prearchive-table input[name="sel"]');
    await page.fill('input[name="subject"]', "ARCHSUBJ");
    await page.fill('input[name="label"]', "UP_MR1_ARCH");
    await Promise.all([page.waitForURL(/prearchive\?done=archived/), page.click("#archive-button")]);
    check((await page.textContent("#prearchive-notice")).includes("Archived"), "the page says archived");
    check((await page.locator("#prearchive-table").count()) === 0, "the prearchive is empty now");
    const archived = await (await rest(base, "GET", "/data/projects/DL/subjects/ARCHSUBJ/experiments/UP_MR1_ARCH/files?format=json", alice)).json();
    check(archived.ResultSet.Result.length === 3, `the archived session holds ${archived.ResultSet.Result.length} files`);
    const left = await (await rest(base, "GET", "/data/prearchive/projects/DL?format=json", alice)).json();
    check(left.ResultSet.Result.length === 0, "the REST prearchive listing is empty");
    step("archived: 3 files under DL/ARCHSUBJ/UP_MR1_ARCH, prearchive empty");

    step("upload two non-DICOM files into a session resource from the session page");
    const { writeFileSync } = await import("node:fs");
    const extra = [["report.txt", Buffer.from("a report\n")], ["map.nii.gz", randomBytes(4096)]];
    const paths = extra.map(([name, data]) => {
      const file = path.join(workDir(), name);
      writeFileSync(file, data);
      return file;
    });
    await page.goto(base + "/app/projects/DL/subjects/SUBJA/experiments/A_MR1");
    await page.fill('#resource-upload input[name="resource"]', "EXTRA");
    await page.setInputFiles('#resource-upload input[name="file"]', paths);
    await page.click("#resource-upload #upload-button");
    await page.locator("#upload-sessions a").waitFor();
    await page.screenshot({ path: path.join(artefacts, "session-upload.png"), fullPage: true });
    const extraRows = (await (await rest(base, "GET", "/data/projects/DL/subjects/SUBJA/experiments/A_MR1/resources/EXTRA/files?format=json", alice)).json()).ResultSet.Result;
    const { createHash } = await import("node:crypto");
    for (const [name, data] of extra) {
      const row = extraRows.find((r) => r.Name === name);
      check(row && row.digest === createHash("md5").update(data).digest("hex"), `${name} stored with its MD5`);
    }
    step("both files are in resource EXTRA with their MD5s");

    step("an outsider gets 404 for the dialog, and the download is refused");
    const outsider = await browser.newContext({ viewport: { width: 1366, height: 860 } });
    const other = await login(outsider, bob);
    const response = await other.goto(base + "/app/projects/DL/download");
    check(response.status() === 404, `the dialog answers ${response.status()} to the outsider`);
    for (const route of ["/app/projects/DL/prearchive"]) {
      const answer = await other.goto(base + route);
      check(answer.status() === 404, `${route} answers ${answer.status()} to the outsider`);
    }
    check(violations.length === 0, `browser reported: ${violations.join(" | ")}`);
    step(`all checks passed; screenshots in ${artefacts}`);
  } finally {
    await browser.close();
  }
}

await runE2e("e2e-download", main);
