#!/usr/bin/env bash
# Parametric-map benchmark (run by hand, not a test):
#
#   bench/maps.sh                      # 256×256×20, 12-echo T2 and 3-point T1
#   ROWS=128 SLICES=5 bench/maps.sh    # smaller
#
# In one run, on the same synthetic DICOM series (bench/maps_bench.py):
#  1. `xnatkit maps t2` / `maps t1-sr` (release build; full nonlinear
#     Levenberg–Marquardt fit of every voxel in the Otsu mask, all outputs
#     written), wall time and peak memory from /usr/bin/time -v;
#  2. SciPy curve_fit per voxel, as Python users write it: SAMPLE (default
#     2000) random object voxels are fitted and the time is extrapolated to
#     every object voxel (fitting all 800 000 takes an hour);
#  3. a vectorised numpy log-linear fit of every voxel (no nonlinear step).
# Prints the ratios. Goals (issue 14): ≥ 100× faster than per-voxel SciPy,
# within 2× of the numpy log-linear time, peak memory < 2× the input size
# (input size = the 16-bit pixel data).
#
# Needs /usr/bin/time (Debian package `time`) and a Python with pydicom,
# numpy and scipy (PYTHON, default .venv-peers/bin/python).
set -euo pipefail

rows="${ROWS:-256}"
slices="${SLICES:-20}"
sample="${SAMPLE:-2000}"
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${PYTHON:-$repo/.venv-peers/bin/python}"
[[ -x /usr/bin/time ]] || { echo "error: /usr/bin/time not found (apt-get install time)" >&2; exit 1; }
"$python" -c 'import pydicom, numpy, scipy' 2>/dev/null \
  || { echo "error: $python lacks pydicom/numpy/scipy; set PYTHON (scripts/setup-peers.sh builds .venv-peers)" >&2; exit 1; }

work="$(mktemp -d "${TMPDIR:-/tmp}/xnatkit-maps-bench.XXXXXX")"
trap 'rm -rf "$work"' EXIT

(cd "$repo" && cargo build --release -q -p xnatkit)
xnatkit="$repo/target/release/xnatkit"
helper="$repo/bench/maps_bench.py"

for kind in t2 t1; do
  times=12
  [[ $kind == t1 ]] && times=3
  echo "== $kind: ${rows}x${rows}x${slices}, $times time points"
  "$python" "$helper" generate "$kind" "$work/$kind" "$rows" "$rows" "$slices"
  input_mb=$(echo "$rows * $rows * $slices * $times * 2 / 1000000" | bc -l)
  sub=$kind
  [[ $kind == t1 ]] && sub=t1-sr
  /usr/bin/time -v "$xnatkit" -q maps "$sub" "$work/$kind" -o "$work/$kind-out" 2>"$work/time.txt" >/dev/null
  ours=$(awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,a,":"); s=0; for(i=1;i<=n;i++) s=s*60+a[i]; print s}' "$work/time.txt")
  rss_kb=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$work/time.txt")
  read -r scipy voxels fitted < <("$python" "$helper" scipy "$kind" "$work/$kind" "$sample")
  numpy=$("$python" "$helper" numpy "$kind" "$work/$kind")
  printf '  xnatkit (LM, all outputs):   %8.2f s, peak RSS %.0f MB (input %.0f MB, ratio %.2f)\n' \
    "$ours" "$(echo "$rss_kb / 1000" | bc -l)" "$input_mb" "$(echo "$rss_kb / 1000 / $input_mb" | bc -l)"
  printf '  scipy curve_fit per voxel:   %8.2f s (extrapolated from %s of %s object voxels)\n' "$scipy" "$fitted" "$voxels"
  printf '  numpy log-linear, vectorised:%8.2f s (fit only, data already in memory)\n' "$numpy"
  printf '  ratios: scipy/xnatkit %.1fx, xnatkit/numpy %.2fx\n' \
    "$(echo "$scipy / $ours" | bc -l)" "$(echo "$ours / $numpy" | bc -l)"
done
