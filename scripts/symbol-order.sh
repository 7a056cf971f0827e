#!/usr/bin/env bash
# Regenerates crates/xnatkit/symbol-order.txt, the order in which the linker
# lays out the functions that `xnatkit maps` runs (run by hand, not a test):
#
#   scripts/symbol-order.sh            # builds the release binary first
#   XNATKIT=path scripts/symbol-order.sh
#
# Why: the binary holds 31 MB of code, and the kernel maps each page of it
# that a process touches together with its neighbours (fault-around, 64 KiB).
# The few hundred KB a `maps` run executes, scattered over the whole text,
# made about 8 MB of it resident — as much as a 3-point T1 input. Laid out
# first and together (lld's --symbol-ordering-file, passed by
# crates/xnatkit/build.rs), they take about 2 MB (docs/maps.md, "Laying out
# the code a run needs").
#
# How: each map command runs under valgrind's callgrind on small inputs
# (synthetic T1 and T2 series from bench/maps_bench.py, the real GE DWI in
# ../shared/data/dwi-ge); every function of the binary that ran, in the order
# callgrind first saw it, goes into the file.
#
# When to run: the names are mangled with hashes that change when a
# dependency, the Rust toolchain or the release profile changes. The names
# with ThinLTO's `.llvm.<hash>` suffix (about a tenth) changed with the
# checkout's path too, until the release profile dropped its line tables
# (docs/maps.md). Stale names are skipped by the
# linker (no error, nothing wrong in the binary: only the layout falls back
# to the default). bench/maps.sh prints how many of the names the binary
# still has; rerun this when that falls.
#
# Needs valgrind, nm (binutils) and a Python with pydicom and numpy
# (PYTHON, default .venv-peers/bin/python; scripts/setup-peers.sh).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${PYTHON:-$repo/.venv-peers/bin/python}"
dwi="${DWI:-$repo/../shared/data/dwi-ge}"
order="$repo/crates/xnatkit/symbol-order.txt"
command -v valgrind >/dev/null || { echo "error: valgrind not found (apt-get install valgrind)" >&2; exit 1; }
command -v nm >/dev/null || { echo "error: nm not found (apt-get install binutils)" >&2; exit 1; }
"$python" -c 'import pydicom, numpy' 2>/dev/null \
  || { echo "error: $python lacks pydicom/numpy; set PYTHON (scripts/setup-peers.sh builds .venv-peers)" >&2; exit 1; }
[[ -d $dwi ]] || { echo "error: the GE DWI series $dwi is missing; set DWI" >&2; exit 1; }

if [[ -n ${XNATKIT:-} ]]; then
  xnatkit="$XNATKIT"
else
  (cd "$repo" && cargo build --release -q -p xnatkit)
  xnatkit="${CARGO_TARGET_DIR:-$repo/target}/release/xnatkit"
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/xnatkit-symbol-order.XXXXXX")"
trap 'rm -rf "$work"' EXIT
"$python" "$repo/bench/maps_bench.py" generate t1 "$work/t1" 96 96 4 >/dev/null
"$python" "$repo/bench/maps_bench.py" generate t2 "$work/t2" 96 96 4 >/dev/null

profile() {
  local name="$1"
  shift
  echo "callgrind: xnatkit $*" >&2
  valgrind --tool=callgrind --demangle=no --callgrind-out-file="$work/$name.callgrind" \
    "$xnatkit" "$@" >/dev/null 2>"$work/$name.log" \
    || { echo "error: xnatkit $* failed under valgrind:" >&2; cat "$work/$name.log" >&2; exit 1; }
}
profile t1 maps t1-sr "$work/t1" -o "$work/t1-out"
profile t2 maps t2 "$work/t2" -o "$work/t2-out"
profile adc maps adc "$dwi" -o "$work/adc-out"

nm --defined-only "$xnatkit" >"$work/nm.txt"
python3 - "$work/nm.txt" "$work"/t1.callgrind "$work"/t2.callgrind "$work"/adc.callgrind >"$work/order.txt" <<'EOF'
import re
import sys

# Functions of the binary: the text symbols nm lists.
functions = set()
for line in open(sys.argv[1]):
    parts = line.split()
    if len(parts) == 3 and parts[1] in "tTwW":
        functions.add(parts[2])
# Callgrind names a function in full the first time it appears
# ("fn=(id) name" or, as a callee, "cfn=(id) name").
named = re.compile(r"^c?fn=\(\d+\) (\S+)$")
seen = set()
for path in sys.argv[2:]:
    for line in open(path):
        m = named.match(line)
        if m and m.group(1) in functions and m.group(1) not in seen:
            seen.add(m.group(1))
            print(m.group(1))
EOF
count=$(wc -l <"$work/order.txt")
(( count > 500 )) || { echo "error: only $count functions of the binary found in the profiles (is it stripped?)" >&2; exit 1; }
mv "$work/order.txt" "$order"
echo "wrote $order: $count functions" >&2
