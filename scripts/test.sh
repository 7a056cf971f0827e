#!/usr/bin/env bash
# The project's one test command (what the README and .ci/run call):
#
#   scripts/test.sh
#
# On a fresh Debian 12 machine (as root) it installs what is missing, builds
# the peer-client venvs, starts a throwaway PostgreSQL and a single-node Slurm
# (scripts/setup-slurm.sh), runs every Rust test
# (nextest, `ci` profile) and then the interop suites in tests/interop, where
# unchanged Python XNAT clients drive `xnatkit serve` on loopback, and the
# web pages' end-to-end tests (tests/web: headless Chromium + playwright-core;
# the OHIF viewer's test installs OHIF with scripts/setup-ohif.sh).
#
# Environment:
#   CI=true                 tests that need PostgreSQL, Slurm or a peer fail instead of skipping
#   XNATKIT_SKIP_RUST=1     skip the Rust test stage (interop only; for quick iterations)
#   XNATKIT_PYTEST_ARGS     extra arguments for pytest (e.g. "-k xnatpy -x")
#   XNATKIT_OHIF_DIR        where the OHIF viewer is installed (default tmp/ohif)
set -uo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo" || exit 1

started_at=$(date +%s)
declare -a stage_names=()
declare -a stage_results=()
overall=0

say() { printf '\n==> %s\n' "$*" >&2; }
record() {
  stage_names+=("$1")
  stage_results+=("$2")
  [[ "$2" == ok* ]] || overall=1
}

summary() {
  local i elapsed=$(($(date +%s) - started_at))
  printf '\n==== test summary (%dm%02ds) ====\n' $((elapsed / 60)) $((elapsed % 60)) >&2
  for i in "${!stage_names[@]}"; do
    printf '  %-22s %s\n' "${stage_names[$i]}" "${stage_results[$i]}" >&2
  done
  if [[ $overall -eq 0 ]]; then
    printf 'ALL STAGES PASSED\n' >&2
  else
    printf 'FAILED: see the stages above\n' >&2
  fi
}

# Setup stages are prerequisites: when one fails nothing after it can mean
# anything, so stop there (after printing the summary).
abort() {
  record "$1" "FAILED: $2"
  summary
  exit 1
}

work="$(mktemp -d /tmp/xnatkit-test.XXXXXX)"
# shellcheck source=scripts/scratch-postgres.sh
source "$repo/scripts/scratch-postgres.sh"
slurm_started=0
cleanup() {
  scratch_postgres_stop
  # Only a Slurm this run started is stopped; one already running stays up.
  if [[ $slurm_started == 1 ]]; then bash "$repo/scripts/setup-slurm.sh" stop || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- 1. system packages ---------------------------------------------------
say "system packages"
bash "$repo/scripts/setup-system.sh" || abort "system packages" "a Debian package is missing (see above)"
record "system packages" "ok"

command -v cargo >/dev/null || abort "rust toolchain" "cargo not found on PATH; install Rust 1.95 (rustup) first"

# --- 2. peer venvs --------------------------------------------------------
say "python venvs"
bash "$repo/scripts/setup-peers.sh" "$repo/.venv-peers" "$repo/tests/interop/requirements-peers.txt" ||
  abort "python venvs" "could not build .venv-peers (see above)"
bash "$repo/scripts/setup-peers.sh" "$repo/.venv-uploader" "$repo/tests/interop/requirements-uploader.txt" ||
  abort "python venvs" "could not build .venv-uploader (see above)"
bash "$repo/scripts/setup-peers.sh" "$repo/.venv-xnatctl" "$repo/tests/interop/requirements-xnatctl.txt" ||
  abort "python venvs" "could not build .venv-xnatctl (see above)"
record "python venvs" "ok"
export XNATKIT_PEERS_PYTHON="$repo/.venv-peers/bin/python"
export XNATKIT_UPLOADER_VENV="$repo/.venv-uploader"
export XNATKIT_XNATCTL_VENV="$repo/.venv-xnatctl"

# The real ParaVision 5.1 study lives in the shared data folder beside the
# work tree (CI clones the repo with shared/ next to it); it is never
# committed. Tests that need it fail under CI when it is missing.
if [[ -z "${XNATKIT_PARAVISION_BANANA:-}" && -d "$repo/../shared/data/paravision/banana_pv51" ]]; then
  XNATKIT_PARAVISION_BANANA="$(cd "$repo/../shared/data/paravision/banana_pv51" && pwd)"
  export XNATKIT_PARAVISION_BANANA
fi
if [[ -z "${XNATKIT_PARAVISION_BANANA:-}" ]]; then
  echo "warning: ../shared/data/paravision/banana_pv51 not found beside the repo; set XNATKIT_PARAVISION_BANANA (ParaVision tests fail under CI without it)" >&2
fi

# --- 3. throwaway PostgreSQL ----------------------------------------------
say "postgresql"
scratch_postgres_start "$work" || abort "postgresql" "could not start a throwaway cluster (see above)"
export XNATKIT_TEST_DATABASE_URL="$SCRATCH_PG_URL"
record "postgresql" "ok ($XNATKIT_TEST_DATABASE_URL)"

# --- 3b. single-node Slurm (crates/xnatkit-slurm's tests) -----------------
say "slurm"
slurm_was_up=0
bash "$repo/scripts/setup-slurm.sh" status >/dev/null 2>&1 && slurm_was_up=1
if [[ $(id -u) -eq 0 ]]; then
  # As root always run it: it is idempotent and restarts the daemons when the
  # conf it writes has changed.
  if bash "$repo/scripts/setup-slurm.sh" start; then
    [[ $slurm_was_up == 1 ]] || slurm_started=1
    record "slurm" "ok"
  elif [[ $slurm_was_up == 1 ]]; then
    record "slurm" "ok (running, not managed by scripts/setup-slurm.sh)"
  else
    abort "slurm" "could not start a single-node Slurm (see above)"
  fi
elif [[ $slurm_was_up == 1 ]]; then
  record "slurm" "ok (already running)"
elif [[ "${CI:-}" != "" && "${CI:-}" != "false" && "${CI:-}" != "0" ]]; then
  abort "slurm" "Slurm is not running and only root can start it (scripts/setup-slurm.sh)"
else
  echo "warning: Slurm is not running and starting it needs root (sudo scripts/setup-slurm.sh); the Slurm tests skip" >&2
  record "slurm" "ok (not running: Slurm tests skip)"
fi

# --- 4. Rust lints and tests ---------------------------------------------
if [[ "${XNATKIT_SKIP_RUST:-}" == 1 ]]; then
  record "rust lints" "SKIPPED (XNATKIT_SKIP_RUST=1)"
  record "rust tests" "SKIPPED (XNATKIT_SKIP_RUST=1)"
  overall=1
else
  say "rust lints (cargo fmt --check, cargo clippy --all-targets -D warnings)"
  lint_rc=0
  cargo fmt --all --check || lint_rc=1
  cargo clippy --workspace --all-targets -- -D warnings || lint_rc=1
  if [[ $lint_rc -eq 0 ]]; then record "rust lints" "ok"; else record "rust lints" "FAILED (see above)"; fi
  say "rust tests"
  if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --workspace --no-fail-fast --profile ci
  else
    printf 'cargo-nextest not installed; falling back to cargo test\n' >&2
    cargo test --workspace --no-fail-fast
  fi
  rc=$?
  if [[ $rc -eq 0 ]]; then record "rust tests" "ok"; else record "rust tests" "FAILED (exit $rc)"; fi
fi

# --- 5. interop suites ----------------------------------------------------
say "build xnatkit binary"
if cargo build -p xnatkit; then
  # Ask cargo where it put the binary: CARGO_TARGET_DIR or a config may move it.
  target_dir="$(cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"
  export XNATKIT_BIN="$target_dir/debug/xnatkit"
  if "$XNATKIT_BIN" serve --help >/dev/null 2>&1; then
    record "build xnatkit" "ok"
    binary_ok=1
  else
    record "build xnatkit" "FAILED: the binary has no 'serve' subcommand"
  fi
else
  record "build xnatkit" "FAILED: cargo build -p xnatkit"
fi

# The README's first command (`cargo run --release -- demo`) on the debug
# build: same code path, no second optimised build. The demo checks its own
# outcome (the expected exported / missing / no-type subjects) and exits
# non-zero otherwise.
binary_ok="${binary_ok:-0}"
if [[ $binary_ok == 1 ]]; then
  say "demo (README's first command)"
  if "$XNATKIT_BIN" demo --dir "$work/demo"; then
    record "demo" "ok"
  else
    record "demo" "FAILED (exit $?)"
  fi
fi

if [[ $binary_ok == 1 ]]; then
  say "interop tests (pytest tests/interop)"
  # shellcheck disable=SC2086  # XNATKIT_PYTEST_ARGS is a word list on purpose
  "$XNATKIT_PEERS_PYTHON" -m pytest "$repo/tests/interop" -q -rfE \
    -p no:cacheprovider --timeout=600 ${XNATKIT_PYTEST_ARGS:-}
  rc=$?
  case $rc in
    0) record "interop tests" "ok" ;;
    5) record "interop tests" "FAILED: pytest collected no tests (exit 5)" ;;
    *) record "interop tests" "FAILED (pytest exit $rc)" ;;
  esac
else
  record "interop tests" "FAILED: not run, no usable xnatkit binary"
fi

# --- 6. web pages in a real browser (tests/web) ---------------------------
ci_mode=0
[[ "${CI:-}" != "" && "${CI:-}" != "false" && "${CI:-}" != "0" ]] && ci_mode=1
if [[ $binary_ok != 1 ]]; then
  record "web e2e" "FAILED: not run, no usable xnatkit binary"
elif [[ ! -x /usr/bin/chromium ]] || ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  if [[ $ci_mode == 1 ]]; then
    record "web e2e" "FAILED: chromium, node or npm missing (scripts/setup-system.sh installs them)"
  else
    echo "SKIPPED: web e2e needs /usr/bin/chromium, node and npm (scripts/setup-system.sh as root)" >&2
    record "web e2e" "SKIPPED (chromium/node missing)"
  fi
else
  say "web e2e (tests/web, headless chromium)"
  if ! bash "$repo/scripts/setup-web.sh"; then
    record "web e2e" "FAILED: npm ci in tests/web (see above)"
  else
    # Every tests/web/e2e*.mjs is its own program with its own server.
    failed_web=()
    # The OHIF viewer (e2e-ohif.mjs) comes from the npm registry, pinned
    # and integrity-checked; not getting it is a failure, never a skip.
    ohif_dir="${XNATKIT_OHIF_DIR:-$repo/tmp/ohif}"
    say "web e2e: OHIF viewer into $ohif_dir (scripts/setup-ohif.sh)"
    if ! bash "$repo/scripts/setup-ohif.sh" "$ohif_dir"; then
      echo "FAILED: scripts/setup-ohif.sh could not install OHIF into $ohif_dir (is the npm registry reachable?)" >&2
      failed_web+=("setup-ohif.sh")
    fi
    for e2e in "$repo"/tests/web/e2e*.mjs; do
      say "web e2e: ${e2e##*/}"
      XNATKIT_OHIF_DIR="$ohif_dir" \
        XNATKIT_WEB_ARTEFACTS="${XNATKIT_WEB_ARTEFACTS:-$repo/tmp/artefacts/web}" node "$e2e" ||
        failed_web+=("${e2e##*/}")
    done
    if [[ ${#failed_web[@]} -eq 0 ]]; then record "web e2e" "ok"; else record "web e2e" "FAILED: ${failed_web[*]}"; fi
  fi
fi

summary
exit $overall
