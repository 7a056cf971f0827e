#!/usr/bin/env bash
# Bulk-upload benchmark (run by hand, not part of the tests):
#
#   bench/upload.sh                      # 20 subjects x 60 instances
#   SUBJECTS=5 INSTANCES=30 bench/upload.sh
#
# Generates one DICOM tree laid out as in the xnatuploader README
# (SURNAME^GIVEN-ID/YYYYMMDD/<series folder>/scanNNNN.dcm, 3 series per
# subject, 256x256 16-bit images), starts `xnatkit serve` on loopback with a
# fresh data folder, and uploads the same tree, each into its own project, with
#   1. xnatkit upload scan + run,
#   2. xnatuploader 1.1.9 scan + upload (venv: XNATKIT_UPLOADER_VENV, else built),
#   3. xnatctl session upload, one call per subject (venv built from PyPI if
#      possible; skipped with a message when it cannot be installed or run),
# then prints seconds, files/s and the ratios. Needs python3.11 and curl.
# XNATKIT_BIN=path skips the release build.
set -euo pipefail

SUBJECTS="${SUBJECTS:-20}"
INSTANCES="${INSTANCES:-60}"
JOBS="${JOBS:-16}"
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d "${TMPDIR:-/tmp}/xnatkit-upload-bench.XXXXXX")"
server_pid=""
cleanup() {
  if [[ -n "$server_pid" ]]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

cd "$repo"
# XNATKIT_BIN: use an already built binary instead of building one.
if [[ -n "${XNATKIT_BIN:-}" ]]; then
  xnatkit="$XNATKIT_BIN"
else
  cargo build --release -q -p xnatkit
  target_dir="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
  xnatkit="$target_dir/release/xnatkit"
fi

# --- peers -----------------------------------------------------------------
uploader_venv="${XNATKIT_UPLOADER_VENV:-$work/venv-uploader}"
if [[ ! -x "$uploader_venv/bin/xnatuploader" ]]; then
  echo "building xnatuploader venv in $uploader_venv ..."
  python3.11 -m venv "$uploader_venv"
  "$uploader_venv/bin/pip" install -q -r "$repo/tests/interop/requirements-uploader.txt"
fi
xnatctl_venv="$work/venv-xnatctl"
xnatctl=""
if python3 -m venv "$xnatctl_venv" >/dev/null 2>&1 && "$xnatctl_venv/bin/pip" install -q xnatctl >"$work/xnatctl-install.log" 2>&1; then
  xnatctl="$xnatctl_venv/bin/xnatctl"
else
  echo "note: xnatctl could not be installed from PyPI (see below); its row is skipped"
  tail -3 "$work/xnatctl-install.log" || true
fi

# --- data ------------------------------------------------------------------
echo "generating $SUBJECTS subjects x $INSTANCES instances ..."
"$uploader_venv/bin/python" - "$work/data" "$SUBJECTS" "$INSTANCES" <<'PY'
import os
import sys
from pathlib import Path
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

root, subjects, instances = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
series_names = ["T1 MPRAGE", "T2 FLAIR", "DWI"]
for s in range(subjects):
    pid = f"{s + 1:04d}"
    study = generate_uid()
    for k, name in enumerate(series_names):
        series = generate_uid()
        count = instances // len(series_names) + (1 if k < instances % len(series_names) else 0)
        folder = root / f"Bench^Subject{s + 1}-{pid}" / "20240115" / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(count):
            meta = FileMetaDataset()
            meta.MediaStorageSOPClassUID = MRImageStorage
            meta.MediaStorageSOPInstanceUID = generate_uid()
            meta.TransferSyntaxUID = ExplicitVRLittleEndian
            ds = Dataset()
            ds.file_meta = meta
            ds.SOPClassUID = MRImageStorage
            ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
            ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
            ds.PatientName, ds.PatientID = f"Bench^Subject{s + 1}", pid
            ds.StudyDate, ds.Modality, ds.Manufacturer = "20240115", "MR", "bench"
            ds.SeriesNumber, ds.InstanceNumber = k + 1, i + 1
            ds.SeriesDescription = name
            ds.Rows = ds.Columns = 256
            ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
            ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
            ds.PixelData = os.urandom(256 * 256 * 2)
            ds.save_as(folder / f"scan{i:04d}.dcm", enforce_file_format=True)
PY
files="$(find "$work/data" -name '*.dcm' | wc -l)"
mb="$(du -sm "$work/data" | cut -f1)"

# --- server ----------------------------------------------------------------
password="bench-$(date +%s)"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
url="http://127.0.0.1:$port"
XNATKIT_ADMIN_PASSWORD="$password" "$xnatkit" serve --data "$work/server" --listen "127.0.0.1:$port" >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 300); do
  curl -fsS -o /dev/null "$url/data/version" 2>/dev/null && break
  kill -0 "$server_pid" 2>/dev/null || { echo "error: server exited:" >&2; cat "$work/server.log" >&2; exit 1; }
  sleep 0.1
done
for p in BXK BXU BXC; do curl -fsS -o /dev/null -u "admin:$password" -X PUT "$url/data/projects/$p"; done
mkdir -p "$work/home"
printf 'machine 127.0.0.1:%s\nlogin admin\npassword %s\n' "$port" "$password" >"$work/home/.netrc"
chmod 600 "$work/home/.netrc"

now() { date +%s.%N; }
declare -A seconds

# --- 1. xnatkit --------------------------------------------------------------
start="$(now)"
HOME="$work/home" "$xnatkit" upload init --spreadsheet "$work/xk.xlsx" 2>/dev/null
HOME="$work/home" "$xnatkit" upload scan --spreadsheet "$work/xk.xlsx" --dir "$work/data" 2>/dev/null
scanned="$(now)"
HOME="$work/home" "$xnatkit" upload run --spreadsheet "$work/xk.xlsx" --dir "$work/data" \
  --project BXK --server "$url" --jobs "$JOBS" 2>"$work/xk.log" || { cat "$work/xk.log"; exit 1; }
finished="$(now)"
seconds[xnatkit]="$(python3 -c "print($finished - $start)")"
echo "xnatkit: init + scan $(python3 -c "print(round($scanned - $start, 2))") s, run $(python3 -c "print(round($finished - $scanned, 2))") s"

# --- 2. xnatuploader ---------------------------------------------------------
start="$(now)"
(cd "$work" && HOME="$work/home" "$uploader_venv/bin/xnatuploader" init --spreadsheet xu.xlsx --logdir logs >/dev/null 2>&1 &&
  HOME="$work/home" "$uploader_venv/bin/xnatuploader" scan --spreadsheet xu.xlsx --dir data --logdir logs >/dev/null 2>&1 &&
  HOME="$work/home" "$uploader_venv/bin/xnatuploader" upload --spreadsheet xu.xlsx --dir data --project BXU \
    --server "$url" --logdir logs </dev/null >"$work/xu.log" 2>&1) || { tail -20 "$work/xu.log"; exit 1; }
seconds[xnatuploader]="$(python3 -c "print($(now) - $start)")"

# --- 3. xnatctl --------------------------------------------------------------
if [[ -n "$xnatctl" ]]; then
  start="$(now)"
  ok=1
  for subject_dir in "$work"/data/*/; do
    id="${subject_dir%/}"; id="${id##*-}"
    if ! HOME="$work/home" XNAT_URL="$url" XNAT_USER=admin XNAT_PASS="$password" \
      "$xnatctl" session upload "$subject_dir" -P BXC -S "$id" -E "${id}_MR1" --workers 4 >>"$work/xc.log" 2>&1; then
      ok=0; break
    fi
  done
  if [[ $ok == 1 ]]; then
    seconds[xnatctl]="$(python3 -c "print($(now) - $start)")"
  else
    echo "note: xnatctl session upload failed (it needs POST /data/services/import); its row is skipped:"
    tail -5 "$work/xc.log"
  fi
fi

# --- report ------------------------------------------------------------------
echo
echo "tree: $SUBJECTS subjects, $files files, $mb MB; server $url (SQLite); xnatkit --jobs $JOBS"
python3 - "$files" "${seconds[xnatkit]}" "${seconds[xnatuploader]:-}" "${seconds[xnatctl]:-}" <<'PY'
import sys
files = int(sys.argv[1])
rows = [("xnatkit (scan + run)", sys.argv[2]), ("xnatuploader 1.1.9 (scan + upload)", sys.argv[3]),
        ("xnatctl session upload", sys.argv[4])]
base = float(sys.argv[2])
print(f"{'tool':38} {'seconds':>8} {'files/s':>8} {'vs xnatkit':>10}")
for name, value in rows:
    if not value:
        print(f"{name:38} {'skipped':>8}")
        continue
    s = float(value)
    print(f"{name:38} {s:8.2f} {files / s:8.1f} {s / base:9.1f}x")
PY
