// Shared pieces of the web end-to-end tests (tests/web/e2e*.mjs): start
// `xnatkit serve` on a loopback port, call its REST API, read archives,
// launch Debian's headless Chromium. Each e2e file is its own program that
// scripts/test.sh runs in turn.
import { chromium } from "playwright-core";
import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import readline from "node:readline";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
export const repo = path.resolve(here, "..", "..");
export const binary = process.env.XNATKIT_BIN;
export const browserPath = process.env.XNATKIT_CHROMIUM || "/usr/bin/chromium";
export const artefacts = process.env.XNATKIT_WEB_ARTEFACTS || path.join(repo, "tmp", "artefacts", "web");
export const adminPassword = "Adm1n-" + randomBytes(8).toString("hex");

let tag = "web-e2e";
let server;
let work;

export function step(text) {
  process.stderr.write(`[${tag}] ${text}\n`);
}

export function check(condition, message) {
  if (!condition) {
    throw new Error(`check failed: ${message}`);
  }
}

/**
 * Starts `xnatkit serve` (extra arguments appended) in a fresh data folder
 * and resolves with its base URL (from its `listening on` line).
 */
export function startServer(extraArgs = []) {
  return new Promise((resolve, reject) => {
    server = spawn(
      binary,
      ["serve", "--data", path.join(work, "data"), "--listen", "127.0.0.1:0", "--site-id", "WEB_E2E", ...extraArgs],
      { env: { ...process.env, XNATKIT_ADMIN_PASSWORD: adminPassword }, stdio: ["ignore", "pipe", "pipe"] },
    );
    const log = [];
    const timer = setTimeout(() => reject(new Error(`server not ready:\n${log.join("\n")}`)), 60000);
    for (const stream of [server.stdout, server.stderr]) {
      readline.createInterface({ input: stream }).on("line", (line) => {
        log.push(line);
        const match = line.match(/listening on (https?:\/\/\S+)/);
        if (match && !line.startsWith("DICOM")) {
          clearTimeout(timer);
          resolve(match[1]);
        }
      });
    }
    server.on("exit", (code) => reject(new Error(`xnatkit serve exited with ${code}:\n${log.join("\n")}`)));
  });
}

/** The scratch folder of this run (removed at the end). */
export function workDir() {
  return work;
}

export function basic(user, password) {
  return "Basic " + Buffer.from(`${user}:${password}`).toString("base64");
}

export async function rest(base, method, route, auth, body, type) {
  const headers = { Authorization: basic(...auth) };
  if (type) headers["Content-Type"] = type;
  const response = await fetch(base + route, { method, headers, body });
  if (!response.ok) {
    throw new Error(`${method} ${route}: ${response.status} ${await response.text()}`);
  }
  return response;
}

export async function createUser(base, name) {
  const password = `Pw-${name}-1x`;
  await rest(base, "POST", "/xapi/users", ["admin", adminPassword], JSON.stringify({
    username: name, password, email: `${name}@example.org`, firstName: "Web", lastName: name, enabled: true, verified: true,
  }), "application/json");
  return [name, password];
}

/** name → MD5 of every file in a zip or tar.gz (read with Python's standard library). */
export function archiveDigests(file) {
  const script = `
import hashlib, json, sys, tarfile, zipfile
name = sys.argv[1]
out = {}
if zipfile.is_zipfile(name):
    with zipfile.ZipFile(name) as z:
        for info in z.infolist():
            if not info.is_dir():
                out[info.filename] = hashlib.md5(z.read(info)).hexdigest()
else:
    with tarfile.open(name, "r:gz") as t:
        for member in t.getmembers():
            if member.isfile():
                out[member.name] = hashlib.md5(t.extractfile(member).read()).hexdigest()
print(json.dumps(out))
`;
  const run = spawnSync("python3", ["-c", script, file], { encoding: "utf8" });
  check(run.status === 0, `reading ${file}: ${run.stderr}`);
  return JSON.parse(run.stdout);
}

/** Debian's Chromium, headless, through playwright-core (no bundled browser). */
export async function launchBrowser() {
  return chromium.launch({
    executablePath: browserPath,
    headless: true,
    // Root in a container has no user namespaces for Chromium's sandbox.
    args: ["--no-sandbox", "--disable-dev-shm-usage"],
  });
}

/**
 * Runs one e2e program: `main()` with a scratch folder, then stops the
 * server it started and removes the folder; exits 1 on any failure.
 */
export async function runE2e(name, main) {
  tag = name;
  if (!binary) {
    console.error(`[${tag}] XNATKIT_BIN is not set: point it at the xnatkit binary`);
    process.exit(2);
  }
  work = mkdtempSync(path.join(tmpdir(), `xnatkit-${name}-`));
  mkdirSync(artefacts, { recursive: true });
  let failed = false;
  try {
    await main();
  } catch (error) {
    failed = true;
    console.error(`[${tag}] FAILED: ${error.stack || error}`);
  } finally {
    if (server && server.exitCode === null) {
      // Let it stop before its data folder is removed.
      const exited = new Promise((resolve) => server.once("exit", resolve));
      server.kill("SIGTERM");
      await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 10000))]);
    }
    rmSync(work, { recursive: true, force: true });
  }
  process.exit(failed ? 1 : 0);
}
