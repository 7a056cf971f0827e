#!/usr/bin/env bash
# Installs the Debian packages the test suite needs, only when something is
# missing (so a warm machine pays nothing and never touches the network).
#
#   scripts/setup-system.sh
#
# Needs root (or sudo) only when it has to install. Prints one line per
# missing piece and exits non-zero if it cannot fix it.
set -euo pipefail

log() { printf '[setup-system] %s\n' "$*" >&2; }

# Each entry: "<debian package>|<shell test that succeeds when it is present>".
# Tests look at the Debian install locations, not PATH, because wrappers in
# /usr/local/bin on a developer machine must not hide a missing package on CI.
checks=(
  "postgresql|compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null && compgen -G '/usr/lib/postgresql/*/bin/pg_ctl' >/dev/null"
  "postgresql-client|command -v psql >/dev/null"
  "dcmtk|command -v dcmdump >/dev/null && command -v storescu >/dev/null"
  "dcm2niix|command -v dcm2niix >/dev/null"
  "dicom3tools|command -v dciodvfy >/dev/null"
  "python3|test -x /usr/bin/python3"
  "python3-venv|/usr/bin/python3 -c 'import ensurepip, venv' 2>/dev/null"
  "python3-pydicom|/usr/bin/python3 -c 'import pydicom' 2>/dev/null"
  "ca-certificates|test -f /etc/ssl/certs/ca-certificates.crt"
  # unshare: the full-disk export test mounts a tmpfs in a private user+mount namespace
  "util-linux|command -v unshare >/dev/null"
  # nginx: the two-server test runs docs/deploy/nginx.conf in front of two servers
  "nginx|test -x /usr/sbin/nginx"
  # slurm-wlm + munge: crates/xnatkit-slurm's tests run jobs on a real single-node
  # Slurm, which scripts/setup-slurm.sh configures and starts (test.sh calls it)
  "slurm-wlm|test -x /usr/sbin/slurmctld && test -x /usr/sbin/slurmd && test -x /usr/bin/sbatch"
  "munge|test -x /usr/sbin/munged"
  # orthanc + orthanc-dicomweb: tests/interop/test_dicomweb_orthanc.py runs a private
  # Orthanc with our server as its DICOMweb peer
  "orthanc|test -x /usr/sbin/Orthanc"
  "orthanc-dicomweb|test -f /usr/share/orthanc/plugins/libOrthancDicomWeb.so"
  # chromium + nodejs/npm: the web pages' end-to-end test (tests/web) drives
  # Debian's headless Chromium with playwright-core (scripts/setup-web.sh)
  "chromium|test -x /usr/bin/chromium"
  "nodejs|test -x /usr/bin/node"
  "npm|test -x /usr/bin/npm"
)

missing=()
for entry in "${checks[@]}"; do
  package="${entry%%|*}"
  probe="${entry#*|}"
  if ! bash -c "$probe"; then
    missing+=("$package")
  fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
  log "all system packages present"
  exit 0
fi

log "missing Debian packages: ${missing[*]}"
if [[ $(id -u) -eq 0 ]]; then
  apt_get=(apt-get)
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
  apt_get=(sudo -n apt-get)
else
  log "error: cannot install ${missing[*]}: run as root or install them with apt-get"
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
"${apt_get[@]}" update -qq
"${apt_get[@]}" install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

still_missing=()
for entry in "${checks[@]}"; do
  package="${entry%%|*}"
  probe="${entry#*|}"
  if ! bash -c "$probe"; then
    still_missing+=("$package")
  fi
done
if [[ ${#still_missing[@]} -ne 0 ]]; then
  log "error: still missing after apt-get install: ${still_missing[*]}"
  exit 1
fi
log "installed: ${missing[*]}"
