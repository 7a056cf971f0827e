#!/usr/bin/env bash
# Bulk-export benchmark (run by hand, not part of the tests):
#
#   bench/export.sh     # both shapes: 12 x 70 slices of 512 KiB (~440 MB)
#                       # and 12 x 120 slices of 128 KiB (~190 MB)
#   SUBJECTS=16 SLICES=80 MR_SUBJECTS=12 MR_SLICES=120 bench/export.sh
#   SHAPES=ct bench/export.sh                      # one shape only (ct|mr)
#   XNATCTL=0 bench/export.sh                      # without the xnatctl row
#   BASELINE_BIN=/path/to/old/xnatkit bench/export.sh   # plus an A/B row
#
# Starts `xnatkit serve` on loopback with a fresh data folder, generates one
# project per shape (one session per subject: a small topogram and a
# "Fl_Thorax INSP 3.0 Qr36" scan of 16-bit slices: SLICES of 512x512 for
# the "ct" shape, MR_SLICES of 256x256 — the size of MR instances — for the
# "mr" shape), then, shape by shape, exports the thorax scan of every
# subject from that same server with
#   1. xnatkit export (subject list CSV, --jobs $JOBS),
#   2. xnatpy 0.8.1, per-scan `download_dir` (venv .venv-peers, as built by
#      scripts/test.sh; else XNATKIT_PEERS_PYTHON),
#   3. xnatctl `session download -w 4 -r DICOM --extract`, one call per
#      session (venv .venv-bench/xnatctl, installed from PyPI if missing;
#      skipped with a message when it cannot be installed or run),
# ROUNDS times (default 3), the tools' order rotating each round, and prints
# per tool the median wall time, MB/s, the ratio to the fastest peer, the
# client's and the server's CPU seconds (median) and the peak RSS. It checks
# the bytes each tool wrote against xnatkit's (xnatctl cannot select scans by
# type, so it also fetches the topogram and its byte count is larger by
# design). Two reference rows bound what any client can do on this machine:
#   - "curl, no hashing": every file of the export with one parallel curl to
#     /dev/null (the server's part plus the bare transfer);
#   - "md5sum of the bytes": CPU time to hash the exported bytes once, which
#     a client that verifies every file against the server's MD5 must spend.
# With BASELINE_BIN, another xnatkit binary's export (e.g. a build of main)
# runs in the same rounds as a row of its own, against the same server, so
# a change can be compared on a machine whose load varies.
# Outputs are kept until the end (deleting thousands of files just before a
# run makes ext4's inode allocation slower for the next one) and the page
# cache is flushed with `sync` before every run. Needs python3, curl and
# /usr/bin/time.
set -euo pipefail

SUBJECTS="${SUBJECTS:-12}"
SLICES="${SLICES:-70}"
MR_SUBJECTS="${MR_SUBJECTS:-12}"
MR_SLICES="${MR_SLICES:-120}"
SHAPES="${SHAPES:-ct mr}"
JOBS="${JOBS:-16}"
ROUNDS="${ROUNDS:-3}"
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d "${TMPDIR:-/tmp}/xnatkit-export-bench.XXXXXX")"
server_pid=""
cleanup() {
  if [[ -n "$server_pid" ]]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
tree_bytes() { find "$1" -type f -name '*.dcm' -printf '%s\n' | awk '{s+=$1} END {print s+0}'; }

cd "$repo"
echo "building release binaries ..."
cargo build --release -q -p xnatkit
cargo build --release -q -p xnatkit-client --features sample-data --example sample_project
target_dir="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
xnatkit="$target_dir/release/xnatkit"
sample_project="$target_dir/release/examples/sample_project"

# --- peers -----------------------------------------------------------------
peers_python="${XNATKIT_PEERS_PYTHON:-$repo/.venv-peers/bin/python}"
if [[ ! -x "$peers_python" ]] || ! "$peers_python" -c 'import xnat' 2>/dev/null; then
  echo "building an xnatpy venv in $work/venv-peers ..."
  python3 -m venv "$work/venv-peers"
  "$work/venv-peers/bin/pip" install -q xnat==0.8.1
  peers_python="$work/venv-peers/bin/python"
fi
xnatctl_venv="$repo/.venv-bench/xnatctl"
xnatctl=""
if [[ "${XNATCTL:-1}" == 0 ]]; then
  echo "note: XNATCTL=0; the xnatctl row is skipped"
elif [[ -x "$xnatctl_venv/bin/xnatctl" ]] || { python3 -m venv "$xnatctl_venv" >/dev/null 2>&1 && "$xnatctl_venv/bin/pip" install -q xnatctl >"$work/xnatctl-install.log" 2>&1; }; then
  xnatctl="$xnatctl_venv/bin/xnatctl"
else
  echo "note: xnatctl could not be installed from PyPI; its row is skipped:"
  tail -3 "$work/xnatctl-install.log" || true
fi

# --- server and data -----------------------------------------------------------
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
url="http://127.0.0.1:$port"
password="Bench-$(python3 -c 'import secrets; print(secrets.token_hex(8))')"
XNATKIT_ADMIN_PASSWORD="$password" "$xnatkit" serve --data "$work/server" --listen "127.0.0.1:$port" >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 300); do
  curl -fsS -o /dev/null "$url/data/version" 2>/dev/null && break
  kill -0 "$server_pid" 2>/dev/null || { echo "error: server exited:" >&2; cat "$work/server.log" >&2; exit 1; }
  sleep 0.1
done
mkdir -p "$work/home"
# generate SHAPE PROJECT SUBJECTS SLICES SIDE: a project and its subject list.
generate() {
  echo "generating shape $1: $3 subjects x $4 slices of $5x$5 in project $2 on $url ..."
  XNAT_PASS="$password" "$sample_project" "$url" admin "$2" "$3" "$4" "$5" >"$work/subjects-$1.txt"
  { echo "subject"; cat "$work/subjects-$1.txt"; } >"$work/list-$1.csv"
}
for shape in $SHAPES; do
  case "$shape" in
    ct) generate ct BENCH "$SUBJECTS" "$SLICES" 512 ;;
    mr) generate mr BENCHMR "$MR_SUBJECTS" "$MR_SLICES" 256 ;;
    *) echo "error: unknown shape $shape (ct or mr)" >&2; exit 1 ;;
  esac
done

export_type="Fl_Thorax INSP 3.0 Qr36"
cat >"$work/xnatpy_export.py" <<'PY'
import sys
import xnat

url, password, out, scan_type, project_id = sys.argv[1:6]
with xnat.connect(url, user="admin", password=password) as session:
    project = session.projects[project_id]
    for subject in project.subjects.values():
        for experiment in subject.experiments.values():
            for scan in experiment.scans.values():
                if scan.type == scan_type:
                    scan.download_dir(f"{out}/{subject.label}")
PY

# The "curl, no hashing" row: the file URIs of each shape's export, listed once.
for shape in $SHAPES; do
project="$([[ "$shape" == ct ]] && echo BENCH || echo BENCHMR)"
XNAT_PASS="$password" "$peers_python" - "$url" "$export_type" "$project" >"$work/files-$shape.curl" <<'PY'
import os, sys
import xnat
url, scan_type, project_id = sys.argv[1:4]
with xnat.connect(url, user="admin", password=os.environ["XNAT_PASS"]) as session:
    for subject in session.projects[project_id].subjects.values():
        for experiment in subject.experiments.values():
            for scan in experiment.scans.values():
                if scan.type == scan_type:
                    for resource in scan.resources.values():
                        for f in resource.files.values():
                            print(f'url = "{url}{f.uri}"\noutput = "/dev/null"')
PY
done
jsession="$(curl -fsS -X PUT --data-urlencode username=admin --data-urlencode "password=$password" "$url/data/services/auth")"

server_cpu() { awk '{printf "%.2f", ($14 + $15) / 100}' "/proc/$server_pid/stat"; }

# run_tool NAME ROUND: one timed run of the current $shape ($project);
# appends "name wall client_cpu server_cpu rss_mb bytes" to its results.
run_tool() {
  local tool="$1" round="$2" out="$work/out-$shape-$1-$2" timing="$work/time-$shape-$1-$2"
  sync
  local before; before="$(server_cpu)"
  local -a cmd
  case "$tool" in
    xnatkit)
      cmd=(env HOME="$work/home" XNATKIT_CONFIG_DIR="$work/home/xk" XNAT_PASS="$password"
        "$xnatkit" export -f "$work/list-$shape.csv" -o "$out" -p "$project" -t "$export_type"
        --server "$url" -u admin --jobs "$JOBS") ;;
    baseline)
      cmd=(env HOME="$work/home" XNATKIT_CONFIG_DIR="$work/home/xk" XNAT_PASS="$password"
        "$BASELINE_BIN" export -f "$work/list-$shape.csv" -o "$out" -p "$project" -t "$export_type"
        --server "$url" -u admin --jobs "$JOBS") ;;
    xnatpy)
      cmd=(env HOME="$work/home" "$peers_python" "$work/xnatpy_export.py" "$url" "$password" "$out" "$export_type" "$project") ;;
    xnatctl)
      # One call per session, as a user would script it.
      cmd=(env HOME="$work/home" XNAT_URL="$url" XNAT_USER=admin XNAT_PASS="$password" SUBJECTS_FILE="$work/subjects-$shape.txt"
        OUT="$out" XNATCTL="$xnatctl" PROJECT="$project" sh -c 'while read -r s; do "$XNATCTL" session download -E "${s}_CT1" -P "$PROJECT" --out "$OUT/$s" -w 4 -r DICOM --extract || exit 1; done <"$SUBJECTS_FILE"') ;;
    curl)
      cmd=(curl -fsS --parallel --parallel-max "$JOBS" -b "JSESSIONID=$jsession" -K "$work/files-$shape.curl") ;;
    md5sum)
      cmd=(sh -c 'find "$0" -type f -name "*.dcm" -print0 | xargs -0 md5sum >/dev/null' "$work/out-$shape-xnatkit-1") ;;
  esac
  if ! /usr/bin/time -f '%e %U %S %M' -o "$timing" "${cmd[@]}" >"$work/log-$shape-$tool-$round" 2>&1; then
    echo "note: $tool failed in round $round; its row is skipped:"; tail -5 "$work/log-$shape-$tool-$round"
    echo "$tool failed" >>"$work/results-$shape"
    return
  fi
  local after; after="$(server_cpu)"
  local bytes=0
  [[ -d "$out" ]] && bytes="$(tree_bytes "$out")"
  read -r wall user sys rss_kb <"$timing"
  echo "$tool $wall $(awk -v u="$user" -v s="$sys" 'BEGIN {printf "%.2f", u + s}') $(awk -v a="$before" -v b="$after" 'BEGIN {printf "%.2f", b - a}') $((rss_kb / 1024)) $bytes" >>"$work/results-$shape"
}

tools=(xnatkit xnatpy)
[[ -n "${BASELINE_BIN:-}" ]] && tools+=(baseline)
[[ -n "$xnatctl" ]] && tools+=(xnatctl)
for shape in $SHAPES; do
  project="$([[ "$shape" == ct ]] && echo BENCH || echo BENCHMR)"
  : >"$work/results-$shape"
  for round in $(seq 1 "$ROUNDS"); do
    # Rotate the order so no tool always runs first (or last) in a round.
    n=${#tools[@]}
    for i in $(seq 0 $((n - 1))); do
      tool="${tools[$(((i + round - 1) % n))]}"
      echo "shape $shape, round $round/$ROUNDS: $tool ..."
      run_tool "$tool" "$round"
    done
    run_tool curl "$round"
  done
  run_tool md5sum 1
done

# --- report ------------------------------------------------------------------------
for shape in $SHAPES; do
if [[ "$shape" == ct ]]; then subjects="$SUBJECTS" slices="$SLICES" side=512; else subjects="$MR_SUBJECTS" slices="$MR_SLICES" side=256; fi
python3 - "$work/results-$shape" "$subjects" "$slices" "$ROUNDS" "$JOBS" "$shape" "$side" <<'PY'
import statistics, sys
path, subjects, slices, rounds, jobs, shape, side = sys.argv[1:8]
runs = {}
failed = set()
for line in open(path):
    parts = line.split()
    if parts[1] == "failed":
        failed.add(parts[0])
        continue
    tool, wall, client, server, rss, size = parts
    runs.setdefault(tool, []).append((float(wall), float(client), float(server), int(rss), int(size)))
base_bytes = runs["xnatkit"][0][4] if "xnatkit" in runs else 0
med = {tool: statistics.median(r[0] for r in rs) for tool, rs in runs.items()}
peers = [t for t in ("xnatpy", "xnatctl") if t in med and t not in failed]
fastest_peer = min(peers, key=med.get) if peers else None
print(f"\nshape {shape}: {subjects} subjects x {slices} slices of {side}x{side}, {base_bytes / 1e6:.0f} MB exported per run; "
      f"median of {rounds} rounds; xnatkit --jobs {jobs}; one xnatkit server (SQLite) for all")
print(f"{'tool':<26} {'seconds':>8} {'MB/s':>7} {'x ' + (fastest_peer or 'peer') + ' time':>14} "
      f"{'client CPU s':>13} {'server CPU s':>13} {'peak RSS':>9} {'bytes ok':>9}")
labels = {"curl": "curl, no hashing (floor)", "md5sum": "md5sum of the bytes", "baseline": "xnatkit, BASELINE_BIN"}
for tool in ("xnatkit", "baseline", "xnatpy", "xnatctl", "curl", "md5sum"):
    if tool in failed or tool not in runs:
        if tool in failed:
            print(f"{tool:<26} failed (see the note above)")
        continue
    rs = runs[tool]
    wall = med[tool]
    client = statistics.median(r[1] for r in rs)
    server = statistics.median(r[2] for r in rs)
    rss = max(r[3] for r in rs)
    size = rs[0][4]
    ratio = f"{wall / med[fastest_peer]:.2f}" if fastest_peer else "-"
    ok = "-" if tool in ("curl", "md5sum") else ("yes" if size == base_bytes else f"NO {size}")
    print(f"{labels.get(tool, tool):<26} {wall:8.2f} {base_bytes / 1e6 / wall:7.0f} {ratio:>14} "
          f"{client:13.2f} {server:13.2f} {str(rss) + ' MB':>9} {ok:>9}")
if fastest_peer and "xnatkit" in med:
    speedup = med[fastest_peer] / med["xnatkit"]
    print(f"\nxnatkit is {speedup:.2f}x faster than the fastest peer ({fastest_peer}); goal 2x: {'met' if speedup >= 2 else 'NOT met'}")
with open("/proc/loadavg") as f:
    print(f"load average at the end: {' '.join(f.read().split()[:3])}")
PY
done
