#!/usr/bin/env bash
# A big download through the web page's "Download images" form against the
# REST zip of the same selection (run by hand, not part of the tests).
#
#   bench/ui-download.sh                         # 2 GiB: 8 sessions x 256 MiB
#   SESSIONS=4 FILE_MB=64 bench/ui-download.sh   # quicker
#   XNATKIT_BIN=target/debug/xnatkit bench/ui-download.sh   # skip the release build
#
# Starts `xnatkit serve` on loopback with a fresh data folder and creates
# project DL: SESSIONS sessions, each with one scan whose DICOM resource
# holds one FILE_MB file of random bytes (random, so nothing compresses;
# what is measured is the streaming). Then, ROUNDS times each, alternating:
#   page  POST /app/projects/DL/download (the form a browser sends: every
#         session, every format and type, zip), logged in with a cookie;
#   rest  POST /xapi/archive/downloadwithsize + GET /xapi/archive/download/{id}/zip,
#         the route XNAT's scripts and Desktop Client use;
# both written to /dev/null by curl. Prints the median seconds, MiB/s, the
# page's time over the REST time, and the server's peak RSS (VmHWM).
# Goal (issue 15): the page downloads at the REST zip's rate, memory flat.
set -euo pipefail

SESSIONS="${SESSIONS:-8}"
FILE_MB="${FILE_MB:-256}"
ROUNDS="${ROUNDS:-3}"

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
for tool in curl python3; do
  command -v "$tool" >/dev/null || { echo "error: $tool not found; install it (apt-get install $tool)" >&2; exit 1; }
done

work="$(mktemp -d "${TMPDIR:-/tmp}/xnatkit-bench-dl.XXXXXX")"
server_pid=""
cleanup() {
  [[ -n "$server_pid" ]] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

binary="${XNATKIT_BIN:-}"
if [[ -z "$binary" ]]; then
  echo "building release binary..." >&2
  (cd "$repo" && cargo build --release -p xnatkit --quiet)
  binary="$repo/target/release/xnatkit"
fi

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
hwm() { awk '/^VmHWM/ {print int($2 / 1024)}' "/proc/$server_pid/status"; }

# A browser's login (the page form wants the session cookie and its token).
curl -fsS -o /dev/null -c "$work/cookies" --data-urlencode username=admin \
  --data-urlencode "password=$password" "$url/app/login"

total_mb=$((SESSIONS * FILE_MB))
echo "creating project DL: $SESSIONS sessions x $FILE_MB MiB = $total_mb MiB..." >&2
head -c "$((FILE_MB * 1024 * 1024))" /dev/urandom >"$work/blob.dcm"
curl -fsS -o /dev/null -b "$work/cookies" -X PUT "$url/data/projects/DL?accessibility=private"
sessions_json=()
for i in $(seq 1 "$SESSIONS"); do
  session="$url/data/projects/DL/subjects/SUB$i/experiments/E$i"
  curl -fsS -o /dev/null -b "$work/cookies" -X PUT "$url/data/projects/DL/subjects/SUB$i"
  curl -fsS -o /dev/null -b "$work/cookies" -X PUT "$session?xsiType=xnat:mrSessionData"
  curl -fsS -o /dev/null -b "$work/cookies" -X PUT "$session/scans/1?xsiType=xnat:mrScanData&xnat:mrScanData/type=T1"
  curl -fsS -o /dev/null -b "$work/cookies" -X PUT -H 'Content-Type: application/octet-stream' \
    --data-binary @"$work/blob.dcm" "$session/scans/1/resources/DICOM/files/blob.dcm?inbody=true"
  id="$(curl -fsS -b "$work/cookies" "$session?format=json" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["items"][0]["data_fields"]["ID"])')"
  sessions_json+=("\"DL:SUB$i:E$i:$id\"")
done
rm -f "$work/blob.dcm"
catalog_body="{\"sessions\": [$(IFS=,; echo "${sessions_json[*]}")], \"scan_formats\": [\"DICOM\"], \"scan_types\": [\"T1\"], \"options\": [\"simplified\"]}"

token="$(curl -fsS -b "$work/cookies" "$url/app/projects/DL/download" |
  python3 -c 'import re,sys; print(re.search(r"name=\"xnatkit-csrf\" content=\"([^\"]+)\"", sys.stdin.read()).group(1))')"
hwm_before=$(hwm)

page_download() {
  curl -fsS -o /dev/null -w '%{time_total} %{size_download}\n' -b "$work/cookies" \
    -H 'Sec-Fetch-Site: same-origin' \
    --data-urlencode "_csrf=$token" --data-urlencode q= --data-urlencode subject= \
    --data-urlencode format=DICOM --data-urlencode type=T1 \
    --data-urlencode simplified=true --data-urlencode archive=zip \
    "$url/app/projects/DL/download"
}
rest_download() {
  # Client-side parsing is left out: the time is the catalog POST's plus
  # the zip's, both as curl measures them.
  local answer id post_s zip_s size
  answer="$(curl -fsS -b "$work/cookies" -H 'Content-Type: application/json' -d "$catalog_body" \
    -w '\n%{time_total}' "$url/xapi/archive/downloadwithsize")"
  id="$(head -1 <<<"$answer" | sed -n 's/.*"id" *: *"\([^"]*\)".*/\1/p')"
  post_s="$(tail -1 <<<"$answer")"
  read -r zip_s size < <(curl -fsS -o /dev/null -w '%{time_total} %{size_download}\n' -b "$work/cookies" \
    "$url/xapi/archive/download/$id/zip")
  awk -v p="$post_s" -v z="$zip_s" -v s="$size" 'BEGIN {printf "%.3f %s\n", p + z, s}'
}

: >"$work/page.txt"
: >"$work/rest.txt"
for round in $(seq 1 "$ROUNDS"); do
  # Alternate which goes first so the page cache favours neither.
  if ((round % 2)); then
    page_download >>"$work/page.txt"
    rest_download >>"$work/rest.txt"
  else
    rest_download >>"$work/rest.txt"
    page_download >>"$work/page.txt"
  fi
  echo "round $round: page $(tail -1 "$work/page.txt"), rest $(tail -1 "$work/rest.txt")" >&2
done
hwm_after=$(hwm)

python3 - "$work/page.txt" "$work/rest.txt" "$total_mb" "$hwm_before" "$hwm_after" <<'PY'
import statistics, sys
def load(path):
    rows = [line.split() for line in open(path) if line.strip()]
    return [float(r[0]) for r in rows], [int(r[1]) for r in rows]
page_t, page_b = load(sys.argv[1])
rest_t, rest_b = load(sys.argv[2])
total_mb, before, after = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
# The same files; only the entry names may differ a little (the page's
# and the catalog's folder naming), so the sizes agree to 0.1 %.
if max(page_b + rest_b) - min(page_b + rest_b) > max(page_b + rest_b) // 1000:
    sys.exit(f"error: the two downloads differ in size: page {set(page_b)}, rest {set(rest_b)}")
pm, rm = statistics.median(page_t), statistics.median(rest_t)
mib = page_b[0] / 2**20
print(f"selection: {total_mb} MiB of files, archive {mib:.0f} MiB (zip)")
print(f"| route | median s | MiB/s |")
print(f"| --- | --- | --- |")
print(f"| page form POST /app/projects/DL/download | {pm:.2f} | {mib / pm:.0f} |")
print(f"| REST downloadwithsize + /xapi/archive/download/ID/zip | {rm:.2f} | {mib / rm:.0f} |")
print(f"page / REST time: {pm / rm:.2f} (goal: about 1)")
print(f"server peak RSS (VmHWM): {before} MiB before the downloads, {after} MiB after")
PY
