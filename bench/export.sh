#!/usr/bin/env bash
# Bulk-export benchmark (run by hand, not part of the tests):
#
#   bench/export.sh                       # 12 subjects x 70 slices of 512 KiB (~440 MB)
#   SUBJECTS=16 SLICES=80 bench/export.sh
#
# Starts `xnatkit serve` on loopback with a fresh data folder, generates one
# project (one CT session per subject: a small topogram and a
# "Fl_Thorax INSP 3.0 Qr36" scan of SLICES 512x512 16-bit slices), then
# exports the thorax scan of every subject from that same server with
#   1. xnatkit export (subject list CSV, --jobs $JOBS),
#   2. xnatpy 0.8.1, per-scan `download_dir` (venv .venv-peers, as built by
#      scripts/test.sh; else XNATKIT_PEERS_PYTHON),
#   3. xnatctl `session download -w 4 -r DICOM --extract`, one call per
#      session (venv .venv-bench/xnatctl, installed from PyPI if missing;
#      skipped with a message when it cannot be installed or run),
# compares the bytes each tool wrote with xnatkit's (xnatctl cannot select
# scans by type, so it fetches every scan of the session, topogram included,
# and its byte count is larger by design), and prints
# seconds, MB/s, the ratio to xnatkit and each tool's peak RSS
# (/usr/bin/time -v). Needs python3, curl and /usr/bin/time.
set -euo pipefail

SUBJECTS="${SUBJECTS:-12}"
SLICES="${SLICES:-70}"
JOBS="${JOBS:-16}"
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d "${TMPDIR:-/tmp}/xnatkit-export-bench.XXXXXX")"
server_pid=""
cleanup() {
  if [[ -n "$server_pid" ]]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
now() { python3 -c 'import time; print(time.time())'; }
peak_rss_mb() { awk -F: '/Maximum resident set size/ {printf "%.0f", $2/1024}' "$1"; }
tree_bytes() { find "$1" -type f -name '*.dcm' -printf '%s\n' | awk '{s+=$1} END {print s+0}'; }

cd "$repo"
echo "building release binaries ..."
cargo build --release -q -p xnatkit
cargo build --release -q -p xnat-client --features sample-data --example sample_project
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
if [[ -x "$xnatctl_venv/bin/xnatctl" ]] || { python3 -m venv "$xnatctl_venv" >/dev/null 2>&1 && "$xnatctl_venv/bin/pip" install -q xnatctl >"$work/xnatctl-install.log" 2>&1; }; then
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
echo "generating $SUBJECTS subjects x $SLICES slices on $url ..."
XNAT_PASS="$password" "$sample_project" "$url" admin BENCH "$SUBJECTS" "$SLICES" >"$work/subjects.txt"
{ echo "subject"; cat "$work/subjects.txt"; } >"$work/list.csv"
mkdir -p "$work/home"

declare -A seconds rss bytes

# --- 1. xnatkit ------------------------------------------------------------------
start="$(now)"
/usr/bin/time -v -o "$work/xk.time" env HOME="$work/home" XNATKIT_CONFIG_DIR="$work/home/xk" XNAT_PASS="$password" \
  "$xnatkit" export -f "$work/list.csv" -o "$work/out-xnatkit" -p BENCH -t "Fl_Thorax INSP 3.0 Qr36" \
  --server "$url" -u admin --jobs "$JOBS" 2>"$work/xk.log" || { cat "$work/xk.log"; exit 1; }
seconds[xnatkit]="$(python3 -c "print($(now) - $start)")"
rss[xnatkit]="$(peak_rss_mb "$work/xk.time")"
bytes[xnatkit]="$(tree_bytes "$work/out-xnatkit")"

# --- 2. xnatpy download_dir per scan -----------------------------------------------
cat >"$work/xnatpy_export.py" <<'PY'
import sys
import xnat

url, password, out = sys.argv[1], sys.argv[2], sys.argv[3]
with xnat.connect(url, user="admin", password=password) as session:
    project = session.projects["BENCH"]
    for subject in project.subjects.values():
        for experiment in subject.experiments.values():
            for scan in experiment.scans.values():
                if scan.type == "Fl_Thorax INSP 3.0 Qr36":
                    scan.download_dir(f"{out}/{subject.label}")
PY
start="$(now)"
if /usr/bin/time -v -o "$work/xp.time" env HOME="$work/home" "$peers_python" "$work/xnatpy_export.py" "$url" "$password" "$work/out-xnatpy" >"$work/xp.log" 2>&1; then
  seconds[xnatpy]="$(python3 -c "print($(now) - $start)")"
  rss[xnatpy]="$(peak_rss_mb "$work/xp.time")"
  bytes[xnatpy]="$(tree_bytes "$work/out-xnatpy")"
else
  echo "note: the xnatpy export failed; its row is skipped:"; tail -5 "$work/xp.log"
fi

# --- 3. xnatctl session download -w 4 ----------------------------------------------
if [[ -n "$xnatctl" ]]; then
  start="$(now)"
  ok=1
  peak=0
  while read -r subject; do
    if ! /usr/bin/time -v -o "$work/xc.time" env HOME="$work/home" XNAT_URL="$url" XNAT_USER=admin XNAT_PASS="$password" \
      "$xnatctl" session download -E "${subject}_CT1" -P BENCH --out "$work/out-xnatctl/$subject" -w 4 -r DICOM --extract >>"$work/xc.log" 2>&1; then
      ok=0; break
    fi
    r="$(peak_rss_mb "$work/xc.time")"; (( r > peak )) && peak=$r
  done <"$work/subjects.txt"
  if [[ $ok == 1 ]]; then
    seconds[xnatctl]="$(python3 -c "print($(now) - $start)")"
    rss[xnatctl]="$peak"
    bytes[xnatctl]="$(tree_bytes "$work/out-xnatctl")"
  else
    echo "note: xnatctl session download failed; its row is skipped:"; tail -5 "$work/xc.log"
  fi
fi

# --- report ------------------------------------------------------------------------
mb="$(python3 -c "print(round(${bytes[xnatkit]} / 1e6))")"
echo
echo "project: $SUBJECTS subjects, one thorax scan of $SLICES slices each, $mb MB exported; server $url (SQLite, same process for all tools)"
printf '%-10s %9s %9s %14s %10s %10s\n' tool seconds MB/s "x slower" "peak RSS" "bytes ok"
for tool in xnatkit xnatpy xnatctl; do
  [[ -n "${seconds[$tool]:-}" ]] || { printf '%-10s %9s\n' "$tool" skipped; continue; }
  python3 - "$tool" "${seconds[$tool]}" "${seconds[xnatkit]}" "${bytes[$tool]}" "${bytes[xnatkit]}" "${rss[$tool]}" <<'PY'
import sys
tool, s, base, b, base_b, rss = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
print(f"{tool:<10} {s:9.2f} {b / 1e6 / s:9.1f} {s / base:13.2f}x {rss + ' MB':>10} {'yes' if b == base_b else 'NO (' + str(b) + ')':>10}")
PY
done
