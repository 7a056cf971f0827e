#!/usr/bin/env bash
# DICOM ingestion benchmark of the whole server (run by hand, not a test):
#
#   bench/dicom-receive-server.sh [COUNT]        # default 400 instances of 256x256
#   ROWS=512 bench/dicom-receive-server.sh        # larger images
#
# In one run, with the release binary and fresh data folders:
#  1. receiving COUNT instances with dcmtk's storescu into
#     `xnatkit serve --dicom-listen` (instances spooled and fsynced before
#     each C-STORE response) versus into dcmtk's storescp; prints both times
#     and the ratio xnatkit/dcmtk (goal: <= 1.0), then waits until the study
#     is built into a prearchive session and reports that time too;
#  2. the import service: the same instances as one zip POSTed to
#     /data/services/import?dest=/archive, in files/s and MB/s.
# (bench/dicom-receive.sh measures xnatkit-receiver's SCP on its own.)
#
# Needs dcmtk (storescu, storescp, echoscu), curl, zip support in Python, and
# a Python with pydicom + numpy (PYTHON, default .venv-peers/bin/python).
set -euo pipefail

count="${1:-400}"
# Image size: 256x256 16-bit pixels, about 128 KB per instance.
rows="${ROWS:-256}"
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${PYTHON:-$repo/.venv-peers/bin/python}"
for tool in storescu storescp echoscu curl bc; do
  command -v "$tool" >/dev/null || { echo "error: $tool not found; install dcmtk/curl/bc (apt-get install dcmtk curl bc)" >&2; exit 1; }
done
"$python" -c 'import pydicom, numpy' 2>/dev/null \
  || { echo "error: $python lacks pydicom/numpy; set PYTHON to an interpreter that has them (scripts/setup-peers.sh builds .venv-peers)" >&2; exit 1; }

work="$(mktemp -d "${TMPDIR:-/tmp}/xnatkit-dicom-bench.XXXXXX")"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# XNATKIT_BIN runs an already built binary instead of building the release one.
binary="${XNATKIT_BIN:-}"
if [[ -z "$binary" ]]; then
  echo "building release binary..." >&2
  (cd "$repo" && cargo build --release -p xnatkit --quiet)
  binary="$repo/target/release/xnatkit"
fi

echo "generating $count instances..." >&2
"$python" - "$work/in" "$count" "$rows" <<'PY'
import sys
from pathlib import Path
import numpy as np
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
out, count, rows = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
study, mr = generate_uid(), "1.2.840.10008.5.1.4.1.1.4"
per_series = 100
series_uids = [generate_uid() for _ in range((count + per_series - 1) // per_series)]
for index in range(count):
    series = index // per_series
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = mr
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset("", {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID, ds.SOPInstanceUID = mr, meta.MediaStorageSOPInstanceUID
    ds.PatientName, ds.PatientID, ds.StudyDate, ds.StudyTime = "Bench^Mark", "BENCH01", "20240131", "101500"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series_uids[series]
    ds.SeriesNumber, ds.InstanceNumber, ds.Modality = series + 1, index % per_series + 1, "MR"
    ds.SeriesDescription = f"bench {series + 1}"
    ds.Rows = ds.Columns = rows
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelData = ((np.arange(rows * rows, dtype=np.uint32) * (index + 1)) % 4096).astype(np.uint16).tobytes()
    path = out / f"s{series + 1}" / f"i{index:05d}.dcm"
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
PY
size_mb=$(echo "$(du -sb "$work/in" | cut -f1) / 1000000" | bc -l)

free_port() { "$python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now() { date +%s.%N; }
wait_echo() {
  for _ in $(seq 200); do echoscu -aec "$2" 127.0.0.1 "$1" 2>/dev/null && return 0; sleep 0.1; done
  echo "error: no DICOM receiver on port $1" >&2; exit 1
}

# --- xnatkit serve --dicom-listen -------------------------------------------
http_port=$(free_port)
dicom_port=$(free_port)
password="Bench-$RANDOM$RANDOM"
XNATKIT_ADMIN_PASSWORD="$password" "$binary" serve --data "$work/xnatkit" \
  --listen "127.0.0.1:$http_port" --dicom-listen "127.0.0.1:$dicom_port" \
  --dicom-ae-title XNAT --dicom-idle-secs 1 >"$work/server.log" 2>&1 &
pids+=($!)
wait_echo "$dicom_port" XNAT
base="http://127.0.0.1:$http_port"
curl -sf -u "admin:$password" -X PUT "$base/data/projects/BENCH" >/dev/null

start=$(now)
storescu -aec BENCH +sd +r 127.0.0.1 "$dicom_port" "$work/in"
ours=$(echo "$(now) - $start" | bc)
for _ in $(seq 600); do
  listing=$(curl -sf -u "admin:$password" "$base/data/prearchive/projects/BENCH?format=json" || true)
  [[ "$listing" == *'"READY"'* ]] && break
  sleep 0.1
done
built=$(echo "$(now) - $start" | bc)
[[ "$listing" == *'"READY"'* ]] || { echo "error: the received study was not built; see $work/server.log" >&2; exit 1; }
stored=$(find "$work/xnatkit/prearchive" -name '*.dcm' | wc -l)

# --- dcmtk storescp -----------------------------------------------------------
scp_port=$(free_port)
mkdir -p "$work/dcmtk"
storescp -od "$work/dcmtk" "$scp_port" &
pids+=($!)
wait_echo "$scp_port" ANY-SCP
start=$(now)
storescu -aec ANY-SCP +sd +r 127.0.0.1 "$scp_port" "$work/in"
theirs=$(echo "$(now) - $start" | bc)
dcmtk_stored=$(find "$work/dcmtk" -type f | wc -l)

# --- import service -------------------------------------------------------------
(cd "$work/in" && "$python" -c '
import sys, zipfile, pathlib
with zipfile.ZipFile(sys.argv[1], "w", zipfile.ZIP_DEFLATED) as z:
    for p in sorted(pathlib.Path(".").rglob("*.dcm")):
        z.write(p)
' "$work/upload.zip")
start=$(now)
answer=$(curl -sf -u "admin:$password" -H 'Content-Type: application/zip' --data-binary "@$work/upload.zip" \
  "$base/data/services/import?dest=/archive&project=BENCH&subject=BENCH01&session=IMPORTED")
imported=$(echo "$(now) - $start" | bc)
[[ "$answer" == /data/archive/* ]] || { echo "error: import failed: $answer" >&2; exit 1; }

printf 'instances: %s (%.1f MB); xnatkit stored %s, dcmtk stored %s\n' "$count" "$size_mb" "$stored" "$dcmtk_stored"
printf 'receive, xnatkit serve --dicom-listen: %.2f s (%.0f instances/s)\n' "$ours" "$(echo "$count / $ours" | bc -l)"
printf 'receive, dcmtk storescp:               %.2f s (%.0f instances/s)\n' "$theirs" "$(echo "$count / $theirs" | bc -l)"
printf 'ratio xnatkit/dcmtk: %.2f (goal <= 1.0)\n' "$(echo "$ours / $theirs" | bc -l)"
printf 'received study built into the prearchive after %.2f s (1 s idle period included)\n' "$built"
printf 'import service (zip, dest=/archive): %.2f s, %.0f files/s, %.1f MB/s\n' \
  "$imported" "$(echo "$count / $imported" | bc -l)" "$(echo "$size_mb / $imported" | bc -l)"
