#!/usr/bin/env bash
# Server time of the web pages on a big project (run by hand, not part of
# the tests).
#
#   bench/ui.sh                      # 10,000 sessions: 100 subjects x 100 sessions
#   SUBJECTS=20 PER_SUBJECT=50 bench/ui.sh            # quicker
#   XNATKIT_BIN=target/debug/xnatkit bench/ui.sh      # skip the release build
#   XNATKIT_BENCH_DATABASE_URL=postgres://… bench/ui.sh   # PostgreSQL instead of SQLite
#
# Starts `xnatkit serve` on loopback with a fresh data folder, creates one
# project of SUBJECTS x PER_SUBJECT sessions (3 scans each on the first
# subject's sessions) through the REST API, logs in once, and then times
# each page ROUNDS times, reporting the median and the worst. The last
# row, the REST listing of every session (`/data/projects/P/experiments`),
# is the reference: the sessions page reads one SQL page of 50 rows, so it
# should cost a small fraction of the whole listing, whatever the size of
# the project. The server's resident memory is sampled before and after.
# Goal (issue 15): every page under 100 ms at the server.
set -euo pipefail

SUBJECTS="${SUBJECTS:-100}"
PER_SUBJECT="${PER_SUBJECT:-100}"
ROUNDS="${ROUNDS:-20}"
PARALLEL="${PARALLEL:-8}"

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
for tool in curl python3; do
  command -v "$tool" >/dev/null || { echo "error: $tool not found; install it (apt-get install $tool)" >&2; exit 1; }
done

work="$(mktemp -d "${TMPDIR:-/tmp}/xnatkit-bench-ui.XXXXXX")"
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
backend="sqlite"
extra=()
if [[ -n "${XNATKIT_BENCH_DATABASE_URL:-}" ]]; then
  backend="postgres"
  extra=(--database "$XNATKIT_BENCH_DATABASE_URL")
fi
XNATKIT_ADMIN_PASSWORD="$password" "$binary" serve --data "$work/data" --listen "127.0.0.1:$port" \
  "${extra[@]}" >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 300); do
  curl -fsS -o /dev/null "$url/data/version" 2>/dev/null && break
  kill -0 "$server_pid" 2>/dev/null || { echo "error: server exited; log:" >&2; cat "$work/server.log" >&2; exit 1; }
  sleep 0.1
done
rss() { awk '/^VmRSS/ {print $2}' "/proc/$server_pid/status"; }

# One login; the cookie serves the REST set-up and the pages (Basic on every
# request would time argon2, not the pages).
jsession="$(curl -fsS -X PUT --data-urlencode username=admin --data-urlencode "password=$password" \
  "$url/data/services/auth")"
cookie="JSESSIONID=$jsession"

total=$((SUBJECTS * PER_SUBJECT))
echo "creating project BENCH: $SUBJECTS subjects x $PER_SUBJECT sessions = $total sessions ($backend)..." >&2
curl -fsS -o /dev/null -X PUT -b "$cookie" "$url/data/projects/BENCH?accessibility=private"
python3 - "$url" "$SUBJECTS" "$PER_SUBJECT" >"$work/subjects.curl" <<'PY'
import sys
url, subjects, per = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for s in range(1, subjects + 1):
    print(f'url = "{url}/data/projects/BENCH/subjects/SUB{s:03d}"\n-X PUT\n-o /dev/null')
PY
python3 - "$url" "$SUBJECTS" "$PER_SUBJECT" >"$work/sessions.curl" <<'PY'
import sys
url, subjects, per = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for s in range(1, subjects + 1):
    for e in range(1, per + 1):
        print(f'url = "{url}/data/projects/BENCH/subjects/SUB{s:03d}/experiments/S{s:03d}_E{e:03d}'
              f'?xsiType=xnat:mrSessionData&date=2024-{e % 12 + 1:02d}-{e % 28 + 1:02d}"\n-X PUT\n-o /dev/null')
PY
started=$EPOCHREALTIME
curl -fsS --no-progress-meter --parallel --parallel-max "$PARALLEL" -b "$cookie" -K "$work/subjects.curl"
curl -fsS --no-progress-meter --parallel --parallel-max "$PARALLEL" -b "$cookie" -K "$work/sessions.curl"
for scan in 1 2 3; do
  for e in $(seq 1 "$PER_SUBJECT"); do
    printf 'url = "%s/data/projects/BENCH/subjects/SUB001/experiments/S001_E%03d/scans/%d?xsiType=xnat:mrScanData&xnat:mrScanData/type=T%d"\n-X PUT\n-o /dev/null\n' \
      "$url" "$e" "$scan" "$scan"
  done
done >"$work/scans.curl"
curl -fsS --no-progress-meter --parallel --parallel-max "$PARALLEL" -b "$cookie" -K "$work/scans.curl"
setup_s=$(awk -v a="$started" -v b="$EPOCHREALTIME" 'BEGIN {printf "%.1f", b - a}')
echo "set-up took ${setup_s} s" >&2
rss_before=$(rss)

# name|path; the REST listing goes last so the memory sampled after the
# pages is the pages' own.
pages=(
  "projects page|/app/projects"
  "sessions page 1|/app/projects/BENCH"
  "sessions page 100|/app/projects/BENCH?page=100"
  "sessions, last page, by date desc|/app/projects/BENCH?sort=date&dir=desc&page=99999"
  "sessions filtered (S050_)|/app/projects/BENCH?q=S050_"
  "sessions filtered, no match|/app/projects/BENCH?q=nomatch"
  "access tab|/app/projects/BENCH/access"
  "download images dialog (every session)|/app/projects/BENCH/download"
  "download images dialog, filtered (S050_)|/app/projects/BENCH/download?q=S050_"
  "prearchive tab|/app/projects/BENCH/prearchive"
  "subject page (100 sessions)|/app/projects/BENCH/subjects/SUB001"
  "session page (3 scans)|/app/projects/BENCH/subjects/SUB001/experiments/S001_E001"
  "REST listing, every session (reference)|/data/projects/BENCH/experiments?format=json"
)
names=()
medians=()
worsts=()
rss_pages=""
for entry in "${pages[@]}"; do
  name="${entry%%|*}"
  path="${entry#*|}"
  [[ "$path" == /data/* ]] && rss_pages=$(rss)
  times=()
  for _ in $(seq 1 "$ROUNDS"); do
    times+=("$(curl -fsS -o /dev/null -b "$cookie" -H 'Accept: text/html' -w '%{time_starttransfer}' "$url$path")")
  done
  read -r median worst < <(printf '%s\n' "${times[@]}" | python3 -c '
import statistics, sys
values = [float(v) * 1000 for v in sys.stdin.read().split()]
print(f"{statistics.median(values):.1f} {max(values):.1f}")')
  names+=("$name")
  medians+=("$median")
  worsts+=("$worst")
done
rss_after=$(rss)
reference="${medians[-1]}"
printf '\n%s sessions, %s, %d rounds each (server time = curl time_starttransfer on loopback)\n\n' "$total" "$backend" "$ROUNDS"
printf '%-42s %12s %12s %10s\n' "page" "median ms" "worst ms" "vs REST"
for i in "${!names[@]}"; do
  ratio=$(awk -v a="${medians[$i]}" -v b="$reference" 'BEGIN {printf "%.2fx", a / b}')
  printf '%-42s %12s %12s %10s\n' "${names[$i]}" "${medians[$i]}" "${worsts[$i]}" "$ratio"
done
printf '\nserver VmRSS: %s KiB after set-up, %s KiB after the pages, %s KiB after the REST listing\n' \
  "$rss_before" "$rss_pages" "$rss_after"
