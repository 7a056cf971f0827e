#!/usr/bin/env bash
# ParaVision -> DICOM conversion throughput, in MB/s of 2dseq.
# Generates a synthetic PV360 study (default ~500 MB of 2dseq; 16-bit scans and
# every fourth scan float) in a temporary folder, converts it with a release
# build of `xnatkit convert paravision`, and reports the rate. Run by hand:
#   bench/paravision.sh [SIZE_MB]
set -euo pipefail

size_mb="${1:-500}"
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d "${TMPDIR:-/tmp}/xnatkit-pv-bench.XXXXXX")"
trap 'rm -rf "$work"' EXIT

cd "$repo"
cargo build --release -q -p xnatkit
cargo build --release -q -p xnatkit-paravision --example synth_study
target_dir="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"

echo "generating ~${size_mb} MB study in $work ..."
study="$("$target_dir/release/examples/synth_study" "$work/in" "$size_mb")"
bytes="$(find "$study" -name 2dseq -printf '%s\n' | awk '{s+=$1} END {print s}')"
# Drop what we can of the page cache effect by reading once (both runs then see warm input).
cat $(find "$study" -name 2dseq) > /dev/null

start="$(date +%s.%N)"
"$target_dir/release/xnatkit" convert paravision "$study" --out "$work/out" > "$work/log"
end="$(date +%s.%N)"

images="$(find "$work/out" -name '*.dcm' | wc -l)"
python3 - "$bytes" "$start" "$end" "$images" <<'PY'
import sys
size, start, end, images = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
seconds = end - start
print(f"2dseq: {size / 1e6:.1f} MB, {images} DICOM images, {seconds:.2f} s")
print(f"throughput: {size / 1e6 / seconds:.1f} MB/s of 2dseq")
PY
