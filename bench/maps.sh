#!/usr/bin/env bash
# Parametric-map benchmark (run by hand, not a test):
#
#   bench/maps.sh                      # 256×256×20, 12-echo T2 and 3-point T1
#   ROWS=128 SLICES=5 bench/maps.sh    # smaller
#   RUNS=5 bench/maps.sh               # our fastest of 5 runs (default 3)
#
# In one run, on the same synthetic DICOM series (bench/maps_bench.py):
#  1. `xnatkit maps t2` / `maps t1-sr` (release build; full nonlinear
#     least-squares fit of every voxel in the Otsu mask, all outputs
#     written), wall time and peak memory from /usr/bin/time -v, and in a
#     second run the peak of private memory (RssAnon, sampled from /proc)
#     apart from the binary's code pages (RssFile: shared with the page
#     cache, and more of them are resident the more of the 30 MB binary
#     the page cache holds);
#  2. SciPy curve_fit per voxel, as Python users write it: SAMPLE (default
#     2000) random object voxels are fitted and the time is extrapolated to
#     every object voxel (fitting all 800 000 takes an hour);
#  3. a vectorised numpy log-linear fit of every voxel (no nonlinear step):
#     the first fit in the process (data in memory; a fresh process, as
#     ours is), the script's reading of the DICOM files with pydicom plus
#     that fit (what a Python user's script costs end to end; interpreter
#     start-up and imports excluded), and the fastest of 4 repeated fits in
#     the same interpreter (warm memory: several times faster than the
#     first); each of the three the fastest of RUNS fresh processes (the
#     first fit varies by 2–4× between processes).
# Our own stage times (read, fit, write, fsync+rename) come from the debug
# log of xnatkit-maps (XNATKIT_LOG=xnatkit_maps=debug).
# Prints the ratios. Goals (issue 14): ≥ 100× faster than per-voxel SciPy,
# within 2× of the numpy log-linear time, peak memory < 2× the input size
# (input size = the 16-bit pixel data).
#
# Needs /usr/bin/time (Debian package `time`) and a Python with pydicom,
# numpy and scipy (PYTHON, default .venv-peers/bin/python). XNATKIT=path
# runs that binary instead of building the release one.
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

if [[ -n ${XNATKIT:-} ]]; then
  # A given binary (e.g. a copy of an earlier build, to compare): no build.
  xnatkit="$XNATKIT"
else
  (cd "$repo" && cargo build --release -q -p xnatkit)
  # Cargo puts the binary under CARGO_TARGET_DIR when that is set.
  xnatkit="${CARGO_TARGET_DIR:-$repo/target}/release/xnatkit"
fi
helper="$repo/bench/maps_bench.py"

# The functions a maps run needs are laid out first and together in the
# binary (crates/xnatkit/build.rs, scripts/symbol-order.sh); a list gone
# stale (new dependency or toolchain) costs about 6 MB of resident code.
order="$repo/crates/xnatkit/symbol-order.txt"
if [[ -f $order ]] && command -v nm >/dev/null; then
  found=$(nm --defined-only "$xnatkit" \
    | awk 'NR == FNR { want[$1] = 1; next } ($3 in want) && !seen[$3]++ { n++ } END { print n + 0 }' "$order" -)
  echo "symbol order: $found of $(wc -l <"$order") listed functions found in the binary (fewer: rerun scripts/symbol-order.sh)"
fi

for kind in t2 t1; do
  times=12
  [[ $kind == t1 ]] && times=3
  echo "== $kind: ${rows}x${rows}x${slices}, $times time points"
  "$python" "$helper" generate "$kind" "$work/$kind" "$rows" "$rows" "$slices"
  input_mb=$(echo "$rows * $rows * $slices * $times * 2 / 1000000" | bc -l)
  sub=$kind
  [[ $kind == t1 ]] && sub=t1-sr
  # Ours: the fastest of RUNS runs end to end, with that run's stage times,
  # and the fastest fit stage of the runs.
  ours=""
  best_fit=""
  for ((run = 0; run < ${RUNS:-3}; run++)); do
    rm -rf "$work/$kind-out"
    XNATKIT_LOG=xnatkit_maps=debug /usr/bin/time -v -o "$work/time.txt" \
      "$xnatkit" maps "$sub" "$work/$kind" -o "$work/$kind-out" 2>"$work/run.txt" >/dev/null
    wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,a,":"); s=0; for(i=1;i<=n;i++) s=s*60+a[i]; print s}' "$work/time.txt")
    if [[ -z $ours ]] || (( $(echo "$wall < $ours" | bc -l) )); then
      ours=$wall
      rss_kb=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$work/time.txt")
      cp "$work/run.txt" "$work/log.txt"
    fi
    # The fit stage's fastest run, whichever run was fastest end to end
    # (numpy's fits below are the fastest of as many fresh processes).
    run_fit=$(sed -n 's/.*fit_s=\([0-9.e-]*\).*/\1/p' "$work/run.txt" | tail -1)
    if [[ -n $run_fit ]] && { [[ -z $best_fit ]] || (( $(echo "$run_fit < $best_fit" | bc -l) )); }; then
      best_fit=$run_fit
    fi
  done
  stage() { sed -n "s/.*$1=\([0-9.e-]*\).*/\1/p" "$work/log.txt" | tail -1; }
  read_s=$(stage read_s); fit_s=$best_fit; write_s=$(stage write_s); commit_s=$(stage commit_s)
  [[ -n $fit_s ]] || { echo "error: no stage times in the log:" >&2; cat "$work/log.txt" >&2; exit 1; }
  # Memory in a second run, sampled from /proc (the timed run is not
  # disturbed by the sampler): private memory apart from the binary's pages.
  read -r vm_kb anon_kb file_kb < <("$python" "$helper" memory \
    "$xnatkit" maps "$sub" "$work/$kind" -o "$work/$kind-out-memory")
  read -r scipy voxels fitted < <("$python" "$helper" scipy "$kind" "$work/$kind" "$sample")
  # numpy's first fit in a fresh process varies by 2–4× from run to run
  # (page faults of its temporaries on a shared machine): the fastest of
  # RUNS processes, each number on its own, as for ours.
  numpy=""; numpy_all=""; numpy_warm=""
  for ((run = 0; run < ${RUNS:-3}; run++)); do
    read -r first all warm < <("$python" "$helper" numpy "$kind" "$work/$kind")
    numpy=$(printf '%s\n' $numpy "$first" | sort -g | head -1)
    numpy_all=$(printf '%s\n' $numpy_all "$all" | sort -g | head -1)
    numpy_warm=$(printf '%s\n' $numpy_warm "$warm" | sort -g | head -1)
  done
  r() { echo "$1" | bc -l; }
  printf '  xnatkit (all outputs):       %8.2f s, peak RSS %.0f MB (input %.0f MB, ratio %.2f)\n' \
    "$ours" "$(r "$rss_kb / 1000")" "$input_mb" "$(r "$rss_kb / 1000 / $input_mb")"
  printf '    sampled run: peak private memory (RssAnon) %.1f MB = %.2fx the input; binary and libraries mapped from files (RssFile) %.1f MB; VmRSS %.1f MB\n' \
    "$(r "$anon_kb / 1000")" "$(r "$anon_kb / 1000 / $input_mb")" "$(r "$file_kb / 1000")" "$(r "$vm_kb / 1000")"
  printf '    stages (the fastest run; fit: the fastest of the runs): read %.2f s, fit %.3f s, write %.2f s, fsync+rename %.2f s\n' \
    "$read_s" "$fit_s" "$write_s" "$commit_s"
  printf '  scipy curve_fit per voxel:   %8.2f s (extrapolated from %s of %s object voxels)\n' "$scipy" "$fitted" "$voxels"
  printf '  numpy log-linear, vectorised:%8.3f s fit only (first fit in the process), %.3f s reading the DICOMs with pydicom + fit, %.3f s fastest repeated fit (warm); each the fastest of %s processes\n' "$numpy" "$numpy_all" "$numpy_warm" "${RUNS:-3}"
  printf '  ratios: scipy/xnatkit %.1fx (end to end)\n' "$(r "$scipy / $ours")"
  printf '          xnatkit/numpy: fit only %.2fx (%.2fx against the warm repeat), read+fit %.2fx, our end to end (all outputs written) vs numpy read+fit %.2fx\n' \
    "$(r "$fit_s / $numpy")" "$(r "$fit_s / $numpy_warm")" "$(r "($read_s + $fit_s) / $numpy_all")" "$(r "$ours / $numpy_all")"
done
