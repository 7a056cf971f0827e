#!/usr/bin/env bash
# Pipeline-engine benchmark (run by hand, not part of the tests):
#
#   bench/pipelines.sh                  # 20 sessions x 2 scans, 64 slices of 256x256
#   SESSIONS=40 SLICES=120 JOBS=4 bench/pipelines.sh
#
# Starts `xnatkit serve` (release build) on loopback with a fresh data
# folder and `--pipeline-workers $JOBS` (default: the number of cores),
# generates one project of SESSIONS sessions (a topogram and a thorax scan
# each), then converts every scan to NIfTI three ways, in one run:
#   1. our engine: `xnatkit pipeline launch dcm2niix-scan --project P --wait`
#      (bulk launch, the local pool, outputs filed as NIFTI resources) —
#      wall time from the launch to the last run's end;
#   2. the floor: the same `dcm2niix -z y -b y -w 1 -f %s_%p` over the
#      archive's DICOM folders in a plain shell loop (`xargs -P $JOBS`),
#      writing to a scratch folder: no server, no filing;
#      Also the same loop with `-z n` (no gzip): a lower bound, since the
#      engine asks dcm2niix for plain images and gzips them itself;
#   3. the script a user writes today: xnatpy 0.8.1 — download each scan's
#      DICOM, run dcm2niix, create a NIFTI resource and upload the files,
#      one scan after the other (as XNAT-PIC's and most lab scripts do).
# Prints the times and the ratios. Goals (issue 13): the engine within 10 %
# of the floor, at least 3x faster than the xnatpy script.
#
# Needs dcm2niix, curl, python3 and an xnatpy venv (.venv-peers as built by
# scripts/test.sh, or XNATKIT_PEERS_PYTHON).
set -euo pipefail

SESSIONS="${SESSIONS:-20}"
SLICES="${SLICES:-64}"
SIDE="${SIDE:-256}"
JOBS="${JOBS:-$(nproc)}"
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d "${TMPDIR:-/tmp}/xnatkit-pipelines-bench.XXXXXX")"
server_pid=""
cleanup() {
  if [[ -n "$server_pid" ]]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
command -v dcm2niix >/dev/null || { echo "error: dcm2niix not found (apt-get install dcm2niix)" >&2; exit 1; }
now() { date +%s.%N; }

cd "$repo"
echo "building release binaries ..."
cargo build --release -q -p xnatkit
cargo build --release -q -p xnatkit-client --features sample-data --example sample_project
target_dir="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
xnatkit="$target_dir/release/xnatkit"
sample_project="$target_dir/release/examples/sample_project"

peers_python="${XNATKIT_PEERS_PYTHON:-$repo/.venv-peers/bin/python}"
if [[ ! -x "$peers_python" ]] || ! "$peers_python" -c 'import xnat' 2>/dev/null; then
  echo "error: $peers_python lacks xnatpy; run scripts/setup-peers.sh .venv-peers tests/interop/requirements-peers.txt or set XNATKIT_PEERS_PYTHON" >&2
  exit 1
fi

# --- server and data ---------------------------------------------------------
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
url="http://127.0.0.1:$port"
password="Bench-$(python3 -c 'import secrets; print(secrets.token_hex(8))')"
XNATKIT_ADMIN_PASSWORD="$password" "$xnatkit" serve --data "$work/server" --listen "127.0.0.1:$port" \
  --pipeline-workers "$JOBS" >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 300); do
  curl -fsS -o /dev/null "$url/data/version" 2>/dev/null && break
  kill -0 "$server_pid" 2>/dev/null || { echo "error: server exited:" >&2; cat "$work/server.log" >&2; exit 1; }
  sleep 0.1
done
echo "generating $SESSIONS sessions x 2 scans ($SLICES slices of ${SIDE}x$SIDE in the thorax scan) ..."
XNAT_PASS="$password" "$sample_project" "$url" admin BENCH "$SESSIONS" "$SLICES" "$SIDE" >/dev/null
XNAT_PASS="$password" "$sample_project" "$url" admin BENCHPY "$SESSIONS" "$SLICES" "$SIDE" >/dev/null
mkdir -p "$work/home"
cli() { HOME="$work/home" XDG_CONFIG_HOME="$work/home" XNAT_PASS="$password" "$xnatkit" "$@" --server "$url" -u admin; }
cli pipeline enable dcm2niix-scan --project BENCH >/dev/null
mapfile -t dicom_dirs < <(find "$work/server" -type d -name DICOM -path '*BENCH/*' | sort)
scans=${#dicom_dirs[@]}
[[ $scans -gt 0 ]] || { echo "error: no DICOM folders of BENCH under $work/server" >&2; exit 1; }
sync

# dcm2niix -z GZIP over every archive folder, JOBS at a time, into OUT;
# prints the wall time.
convert_loop() {
  local gzip=$1 out=$2 begin
  mkdir -p "$out"
  begin=$(now)
  printf '%s\n' "${dicom_dirs[@]}" | awk '{print NR "\t" $0}' |
    xargs -P "$JOBS" -L 1 bash -c 'mkdir -p "$0/$2" && dcm2niix -z "$1" -b y -w 1 -f %s_%p -o "$0/$2" "$3" >/dev/null' "$out" "$gzip"
  echo "$(now) - $begin" | bc -l
  sync
}

# --- 1. the floor: dcm2niix over the archive folders ---------------------------
floor=$(convert_loop y "$work/floor")

# --- 1b. dcm2niix without gzip: what is left when no image is compressed --------
# (the engine gzips dcm2niix's plain images itself, with zlib-rs, instead of
# dcm2niix's built-in miniz; this row bounds what the engine's own cost is)
plain=$(convert_loop n "$work/plain")

# --- 2. our engine -----------------------------------------------------------------
start=$(now)
cli -q pipeline launch dcm2niix-scan --project BENCH --wait --json >"$work/runs.json"
engine=$(echo "$(now) - $start" | bc -l)
breakdown=$(python3 - "$work/runs.json" "$scans" "$start" <<'PY'
import json, sys
from datetime import datetime
runs = json.load(open(sys.argv[1]))
bad = [r for r in runs if r["status"] != "Complete"]
if len(runs) != int(sys.argv[2]) or bad:
    sys.exit(f"error: the engine ran {len(runs)} of {sys.argv[2]} scans, {len(bad)} not Complete")
# Where the engine's wall time went, from the runs' own history: the
# launch until the first job was queued, the queue's span (first queued to
# last ended), the time the jobs spent running, and what the client spent
# after the last one ended (its --wait poll).
def at(h):
    return datetime.strptime(h.get("time-recorded") or h["time_recorded"], "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()
start = float(sys.argv[3])
created = [at(h) for r in runs for h in r["history"] if h["status"] == "Created"]
ended = [at(h) for r in runs for h in r["history"] if h["status"] == "Complete"]
running = sum(at(next(h for h in r["history"] if h["status"] == "Complete"))
              - at(next(h for h in r["history"] if h["status"] == "Running")) for r in runs)
print(f"{min(created) - start:.2f} {max(ended) - min(created):.2f} {running:.2f} {max(ended)}")
PY
)
read -r to_first_queued queue_span running_sum last_end <<<"$breakdown"
wait_tail=$(echo "$start + $engine - $last_end" | bc -l)
sync

# --- 3. the xnatpy script ---------------------------------------------------------
cat >"$work/xnatpy_dcm2niix.py" <<'PY'
import os, subprocess, sys, tempfile
import xnat

url, work = sys.argv[1:3]
with xnat.connect(url, user="admin", password=os.environ["XNAT_PASS"]) as session:
    for subject in session.projects["BENCHPY"].subjects.values():
        for experiment in subject.experiments.values():
            for scan in experiment.scans.values():
                with tempfile.TemporaryDirectory(dir=work) as tmp:
                    scan.resources["DICOM"].download_dir(f"{tmp}/in")
                    os.makedirs(f"{tmp}/out")
                    subprocess.run(["dcm2niix", "-z", "y", "-b", "y", "-w", "1", "-d", "9", "-f", "%s_%p",
                                    "-o", f"{tmp}/out", f"{tmp}/in"], check=True, capture_output=True)
                    resource = session.classes.ResourceCatalog(parent=scan, label="NIFTI", format="NIFTI")
                    for name in sorted(os.listdir(f"{tmp}/out")):
                        resource.upload(f"{tmp}/out/{name}", name)
PY
start=$(now)
XNAT_PASS="$password" "$peers_python" "$work/xnatpy_dcm2niix.py" "$url" "$work"
script=$(echo "$(now) - $start" | bc -l)

echo
printf 'dcm2niix on %d scans (%d sessions), %d parallel jobs:\n' "$scans" "$SESSIONS" "$JOBS"
printf '  plain shell loop over the archive (floor): %7.2f s\n' "$floor"
printf '  the same loop, dcm2niix -z n (no gzip):    %7.2f s  (lower bound: no image compressed)\n' "$plain"
printf '  xnatkit engine, bulk launch --wait:        %7.2f s  (%.2fx the floor; goal <= 1.10x; %.2fx the no-gzip loop)\n' "$engine" "$(echo "$engine / $floor" | bc -l)" "$(echo "$engine / $plain" | bc -l)"
printf '  xnatpy download -> dcm2niix -> upload:      %7.2f s  (engine is %.1fx faster; goal >= 3x)\n' "$script" "$(echo "$script / $engine" | bc -l)"
printf '  engine breakdown: launch to first queued job %.2f s, first queued to last ended %.2f s\n' "$to_first_queued" "$queue_span"
printf '    (jobs running %.2f s in all over %d workers), last ended to --wait returning %.2f s\n' "$running_sum" "$JOBS" "$wait_tail"
