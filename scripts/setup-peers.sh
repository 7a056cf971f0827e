#!/usr/bin/env bash
# Creates (or reuses) a Python venv holding pinned peer clients.
#
#   scripts/setup-peers.sh VENV_DIR REQUIREMENTS_FILE
#
# A venv is reused when its marker file holds the hash of the requirements
# file and of the interpreter version; otherwise it is rebuilt from scratch.
set -euo pipefail

log() { printf '[setup-peers] %s\n' "$*" >&2; }

if [[ $# -ne 2 ]]; then
  log "usage: $0 VENV_DIR REQUIREMENTS_FILE"
  exit 2
fi
venv_dir="$1"
requirements="$2"
if [[ ! -f "$requirements" ]]; then
  log "error: requirements file $requirements not found"
  exit 1
fi

# xnatuploader's pinned xnatpy 0.4.3 imports `imp`, gone in Python 3.12, and the
# pins were resolved on 3.11 (Debian 12's python3): insist on 3.11.
pick_python() {
  local candidate
  for candidate in "${XNATKIT_PYTHON:-}" /usr/bin/python3.11 /usr/bin/python3 python3.11 python3; do
    [[ -n "$candidate" ]] || continue
    command -v "$candidate" >/dev/null 2>&1 || continue
    if "$candidate" -c 'import sys, venv, ensurepip; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
      command -v "$candidate"
      return 0
    fi
  done
  return 1
}

if ! python="$(pick_python)"; then
  log "error: no Python 3.11 with venv support found; install python3 and python3-venv (Debian 12) or set XNATKIT_PYTHON"
  exit 1
fi

want="$( { sha256sum <"$requirements"; "$python" -c 'import sys; print(sys.version)'; } | sha256sum | cut -d' ' -f1)"
marker="$venv_dir/.xnatkit-requirements"
if [[ -f "$marker" && "$(cat "$marker")" == "$want" && -x "$venv_dir/bin/python" ]]; then
  log "reusing $venv_dir"
  exit 0
fi

log "building $venv_dir from $requirements with $python"
# The marker, written last, is what marks the venv complete: an interrupted
# build has none and is rebuilt from scratch on the next run. (Building under
# a temporary name and renaming does not work for venvs: console scripts carry
# absolute shebangs.)
rm -rf "$venv_dir"
"$python" -m venv "$venv_dir"
"$venv_dir/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
  --requirement "$requirements"
printf '%s\n' "$want" >"$marker.tmp"
sync "$marker.tmp"
mv "$marker.tmp" "$marker"
log "ready: $venv_dir"
