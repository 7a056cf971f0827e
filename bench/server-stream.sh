#!/usr/bin/env bash
# Streaming benchmark for `xnatkit serve` (run by hand, not part of the tests).
#
#   bench/server-stream.sh            # 1 GiB session: 4 scans x 256 files x 1 MiB
#   SCANS=2 FILES_PER_SCAN=64 bench/server-stream.sh   # quicker, smaller run
#
# Builds the release binary, starts a server on loopback with a fresh data
# folder, uploads a generated session of random bytes, then measures in one
# run: the whole session as one zip (scans/ALL/files?format=zip), the same
# files as parallel single GETs, and `cat` of the stored files (whatever the
# page cache holds is left there: the numbers are reported, not normalised).
# The server's memory is sampled throughout (VmRSS, and VmHWM at the end).
# Goal: flat server memory, and streaming within 2x of the disk read.
set -euo pipefail

SCANS="${SCANS:-4}"
FILES_PER_SCAN="${FILES_PER_SCAN:-256}"
FILE_MB="${FILE_MB:-1}"
PARALLEL="${PARALLEL:-8}"

# Timestamps come from bash's $EPOCHREALTIME, read right after each command,
# so no process start-up (date, python) is inside a measured interval.
seconds_since() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.4f", b - a}'; }

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
for tool in curl python3; do
  command -v "$tool" >/dev/null || { echo "error: $tool not found; install it (apt-get install $tool)" >&2; exit 1; }
done

work="$(mktemp -d "${TMPDIR:-/tmp}/xnatkit-bench.XXXXXX")"
server_pid=""
sampler_pid=""
cleanup() {
  [[ -n "$sampler_pid" ]] && kill "$sampler_pid" 2>/dev/null || true
  [[ -n "$server_pid" ]] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

echo "building release binary..." >&2
(cd "$repo" && cargo build --release -p xnatkit --quiet)
binary="$repo/target/release/xnatkit"

port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
url="http://127.0.0.1:$port"
password="bench-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
XNATKIT_ADMIN_PASSWORD="$password" "$binary" serve --data "$work/data" --listen "127.0.0.1:$port" \
  >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 300); do
  curl -fsS -o /dev/null "$url/data/version" 2>/dev/null && break
  kill -0 "$server_pid" 2>/dev/null || { echo "error: server exited; log:" >&2; cat "$work/server.log" >&2; exit 1; }
  sleep 0.1
done
curl -fsS -o /dev/null "$url/data/version" || { echo "error: server not ready after 30 s" >&2; exit 1; }

# Log in once and reuse the session cookie, as XNAT clients do: HTTP Basic on
# every request would time the password hash (argon2), not the streaming.
jsession="$(curl -fsS -X PUT --data-urlencode username=admin --data-urlencode "password=$password" \
  "$url/data/services/auth")"
cookie="JSESSIONID=$jsession"
auth=(-b "$cookie")
put() { curl -fsS "${auth[@]}" -X PUT -o /dev/null "$url$1"; }

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$server_pid/status"; }
hwm_kb() { awk '/^VmHWM:/ {print $2}' "/proc/$server_pid/status"; }
# Background sampler: one VmRSS value every 100 ms into a file per phase.
phase_file="$work/phase"
echo setup >"$phase_file"
(
  while kill -0 "$server_pid" 2>/dev/null; do
    printf '%s %s\n' "$(cat "$phase_file")" "$(rss_kb)" >>"$work/rss.samples"
    sleep 0.1
  done
) &
sampler_pid=$!
peak_rss_mb() { awk -v p="$1" '$1 == p && $2 > m {m = $2} END {printf "%.1f", m / 1024}' "$work/rss.samples"; }

echo "generating $SCANS scans x $FILES_PER_SCAN files x $FILE_MB MiB of random bytes..." >&2
put "/data/projects/BENCH?name=Benchmark"
put "/data/projects/BENCH/subjects/BENCH01?xsiType=xnat:subjectData"
experiment="$(curl -fsS "${auth[@]}" -X PUT \
  "$url/data/projects/BENCH/subjects/BENCH01/experiments/BENCH01_MR1?xsiType=xnat:mrSessionData")"
session="/data/projects/BENCH/subjects/BENCH01/experiments/BENCH01_MR1"
mkdir -p "$work/source"
: >"$work/uploads"
for scan in $(seq 1 "$SCANS"); do
  put "$session/scans/$scan?xsiType=xnat:mrScanData&xnat:mrScanData/type=BENCH"
  put "$session/scans/$scan/resources/RAW"
  for file in $(seq -w 1 "$FILES_PER_SCAN"); do
    head -c "$((FILE_MB * 1024 * 1024))" /dev/urandom >"$work/source/s${scan}_f${file}.bin"
    printf '%s %s\n' "$work/source/s${scan}_f${file}.bin" "$session/scans/$scan/resources/RAW/files/f${file}.bin" \
      >>"$work/uploads"
  done
done
total_bytes=$((SCANS * FILES_PER_SCAN * FILE_MB * 1024 * 1024))
total_mb=$((total_bytes / 1024 / 1024))

echo upload >"$phase_file"
echo "uploading ${total_mb} MiB ($((SCANS * FILES_PER_SCAN)) files, $PARALLEL in parallel)..." >&2
export url
# One curl process with --parallel for the uploads and the single-file GETs:
# spawning a shell and a curl per file costs a few milliseconds each on this
# machine and would measure the client's process start-up, not the server.
while read -r source path; do
  printf 'url = "%s%s?inbody=true"\nupload-file = "%s"\noutput = "/dev/null"\n' "$url" "$path" "$source"
done <"$work/uploads" >"$work/uploads.curl"
start=$EPOCHREALTIME
curl -fsS --parallel --parallel-max "$PARALLEL" -b "$cookie" -K "$work/uploads.curl"
upload_s=$(seconds_since "$start" "$EPOCHREALTIME")
rm -rf "$work/source"  # keep only the server's copy on disk

# Stored files: everything under the data folder named like the uploads.
mapfile -t stored < <(find "$work/data" -type f -name 'f*.bin')
if [[ ${#stored[@]} -ne $((SCANS * FILES_PER_SCAN)) ]]; then
  echo "error: expected $((SCANS * FILES_PER_SCAN)) stored files under $work/data, found ${#stored[@]}" >&2
  exit 1
fi



echo disk >"$phase_file"
# Two baselines. O_DIRECT reads the bytes from the device itself, bypassing
# the page cache without dropping it (which would need root and disturb
# other work on a shared machine); `cat` right after the upload reads the
# page cache, the strictest baseline, and is the one the goal is judged on.
start=$EPOCHREALTIME
python3 - "${stored[@]}" <<'PY'
import mmap, os, sys
buffer = mmap.mmap(-1, 1 << 20)  # page-aligned, as O_DIRECT requires
for path in sys.argv[1:]:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
    try:
        while os.readv(fd, [buffer]) > 0:
            pass
    finally:
        os.close(fd)
PY
direct_s=$(seconds_since "$start" "$EPOCHREALTIME")
start=$EPOCHREALTIME
cat "${stored[@]}" >/dev/null
disk_s=$(seconds_since "$start" "$EPOCHREALTIME")

echo zip >"$phase_file"
start=$EPOCHREALTIME
# The creation PUT answers with the accession ID; address the session by it,
# as xnatpy does (fall back to the label path if the body was empty).
zip_base="${experiment:+/data/experiments/$experiment}"
zip_base="${zip_base:-$session}"
zip_bytes=$(curl -fsS "${auth[@]}" -o /dev/null -w '%{size_download}' "$url$zip_base/scans/ALL/files?format=zip")
zip_s=$(seconds_since "$start" "$EPOCHREALTIME")
if ((zip_bytes < total_bytes)); then
  echo "error: the zip had $zip_bytes bytes, less than the $total_bytes stored" >&2
  exit 1
fi

echo files >"$phase_file"
cut -d' ' -f2 "$work/uploads" >"$work/gets"
while read -r path; do
  printf 'url = "%s%s"\noutput = "/dev/null"\n' "$url" "$path"
done <"$work/gets" >"$work/gets.curl"
start=$EPOCHREALTIME
curl -fsS --parallel --parallel-max "$PARALLEL" -b "$cookie" -K "$work/gets.curl"
files_s=$(seconds_since "$start" "$EPOCHREALTIME")
echo done >"$phase_file"
sleep 0.3

hwm_mb=$(awk '{printf "%.1f", $1 / 1024}' <<<"$(hwm_kb)")
python3 - "$total_mb" "$disk_s" "$zip_s" "$files_s" "$upload_s" "$direct_s" \
  "$(peak_rss_mb setup)" "$(peak_rss_mb upload)" "$(peak_rss_mb zip)" "$(peak_rss_mb files)" "$hwm_mb" \
  "$PARALLEL" <<'EOF'
import sys
total_mb, disk, zipped, files, upload, direct = (float(v) for v in sys.argv[1:7])
idle, up_rss, zip_rss, files_rss, hwm = sys.argv[7:12]
parallel = sys.argv[12]
rows = [
    ("read with O_DIRECT (device)", direct, "-"),
    ("cat stored files (page cache)", disk, "-"),
    ("session zip, one GET", zipped, zip_rss),
    (f"single files, {parallel} parallel GETs", files, files_rss),
    (f"upload, {parallel} parallel PUTs", upload, up_rss),
]
print(f"\nxnatkit serve streaming benchmark: {total_mb:.0f} MiB session\n")
print(f"{'measurement':<32} {'seconds':>8} {'MiB/s':>9} {'x cat time':>12} {'peak RSS MiB':>13}")
for name, seconds, rss in rows:
    print(f"{name:<32} {seconds:>8.2f} {total_mb / seconds:>9.1f} {seconds / disk:>12.2f} {rss:>13}")
print(f"\nserver RSS after start-up: {idle} MiB; VmHWM (peak over the whole run): {hwm} MiB")
with open("/proc/loadavg") as loadavg:
    # Context for the numbers: on a shared machine other work steals the CPU.
    print(f"load average at the end: {' '.join(loadavg.read().split()[:3])} on {__import__('os').cpu_count()} CPUs")
for label, baseline in (("page-cache read (cat)", disk), ("device read (O_DIRECT)", direct)):
    ok = max(zipped, files) <= 2 * baseline
    print(f"goal, streaming within 2x of the {label}: {'met' if ok else 'NOT met'}")
EOF
