#!/usr/bin/env bash
# Receiving 400 instances with DCMTK's storescu: xnatkit's C-STORE receiver
# (xnatkit-receiver's run_scp, files fsynced before each response) versus DCMTK's storescp.
# Prints both times and the ratio xnatkit/dcmtk (goal: <= 1.0).
# Needs dcmtk (storescu, storescp, echoscu) on PATH. Usage: bench/dicom-receive.sh [COUNT]
set -euo pipefail
count="${1:-400}"
root="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

for tool in storescu storescp echoscu; do
    command -v "$tool" >/dev/null || { echo "error: $tool not found: install dcmtk" >&2; exit 1; }
done

cargo build --release --quiet --manifest-path "$root/Cargo.toml" -p xnatkit-receiver --example dicom_receive
runner="${CARGO_TARGET_DIR:-$root/target}/release/examples/dicom_receive"
"$runner" generate "$work/in" "$count" >/dev/null
size_mb=$(du -sm "$work/in" | cut -f1)

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_for() { for _ in $(seq 100); do echoscu -aec "$2" 127.0.0.1 "$1" 2>/dev/null && return 0; sleep 0.1; done; echo "error: no receiver on port $1" >&2; exit 1; }
now() { date +%s.%N; }

# xnatkit
port=$(free_port)
mkfifo "$work/stop"
"$runner" serve "$port" "$work/xnatkit" < "$work/stop" > "$work/xnatkit.count" &
exec 3>"$work/stop"
wait_for "$port" XNATKIT
start=$(now)
storescu -aec XNATKIT +sd 127.0.0.1 "$port" "$work/in"
ours=$(echo "$(now) - $start" | bc)
exec 3>&-
wait %1 || true
received=$(cat "$work/xnatkit.count")

# dcmtk storescp
port=$(free_port)
mkdir -p "$work/dcmtk"
storescp -od "$work/dcmtk" "$port" &
scp_pid=$!
wait_for "$port" ANY-SCP
start=$(now)
storescu -aec ANY-SCP +sd 127.0.0.1 "$port" "$work/in"
theirs=$(echo "$(now) - $start" | bc)
kill "$scp_pid"

echo "instances: $count (${size_mb} MB), xnatkit received: $received, dcmtk stored: $(ls "$work/dcmtk" | wc -l)"
printf 'xnatkit run_scp: %.2f s (%.0f instances/s)\n' "$ours" "$(echo "$count / $ours" | bc -l)"
printf 'dcmtk storescp:  %.2f s (%.0f instances/s)\n' "$theirs" "$(echo "$count / $theirs" | bc -l)"
printf 'ratio xnatkit/dcmtk: %.2f\n' "$(echo "$ours / $theirs" | bc -l)"
