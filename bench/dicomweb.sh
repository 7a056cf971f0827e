#!/usr/bin/env bash
# DICOMweb benchmark of the whole server (run by hand, not a test):
#
#   bench/dicomweb.sh                        # 10000 studies, a 500-instance series
#   STUDIES=500 COUNT=100 bench/dicomweb.sh  # a quick smoke run
#
# In one run, with the release binary (or XNATKIT_BIN) and fresh data folders:
#  1. QIDO-RS over STUDIES archived studies (one instance each, imported as
#     one zip): the median time to first byte of 20 searches, by PatientID and
#     a page of 100 (goal: under 50 ms);
#  2. WADO-RS of one COUNT-instance series as multipart/related, against
#     `cat` of the same stored files, medians of 10 (goal: within 2x);
#  3. STOW-RS of the COUNT instances into a fresh project, against our C-STORE
#     receiver (dcmtk's storescu into `serve --dicom-listen`) and against
#     Orthanc's own STOW-RS (Debian orthanc + orthanc-dicomweb), as ratios.
#
# Needs curl, bc, dcmtk (storescu, echoscu), Orthanc with its DICOMweb plugin,
# and a Python with pydicom + numpy (PYTHON, default .venv-peers/bin/python).
set -euo pipefail

studies="${STUDIES:-10000}"
count="${COUNT:-500}"
rows="${ROWS:-256}"
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${PYTHON:-$repo/.venv-peers/bin/python}"
orthanc_bin="${ORTHANC:-/usr/sbin/Orthanc}"
orthanc_plugin="${ORTHANC_DICOMWEB:-/usr/share/orthanc/plugins/libOrthancDicomWeb.so}"
for tool in storescu echoscu curl bc; do
  command -v "$tool" >/dev/null || { echo "error: $tool not found; install dcmtk/curl/bc (apt-get install dcmtk curl bc)" >&2; exit 1; }
done
[[ -x "$orthanc_bin" && -f "$orthanc_plugin" ]] \
  || { echo "error: Orthanc with its DICOMweb plugin not found; install orthanc and orthanc-dicomweb (scripts/setup-system.sh)" >&2; exit 1; }
"$python" -c 'import pydicom, numpy' 2>/dev/null \
  || { echo "error: $python lacks pydicom/numpy; set PYTHON (scripts/setup-peers.sh builds .venv-peers)" >&2; exit 1; }

work="$(mktemp -d "${TMPDIR:-/tmp}/xnatkit-dicomweb-bench.XXXXXX")"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

binary="${XNATKIT_BIN:-}"
if [[ -z "$binary" ]]; then
  echo "building release binary..." >&2
  (cd "$repo" && cargo build --release -p xnatkit --quiet)
  binary="$repo/target/release/xnatkit"
fi

echo "generating $studies one-instance studies and a $count-instance series..." >&2
"$python" - "$work" "$studies" "$count" "$rows" <<'PY'
import sys, zipfile
from pathlib import Path
import numpy as np
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
work, studies, count, rows = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
mr = "1.2.840.10008.5.1.4.1.1.4"

def instance(study, series, number, patient, size):
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = mr
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset("", {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID, ds.SOPInstanceUID = mr, meta.MediaStorageSOPInstanceUID
    ds.PatientName, ds.PatientID = f"Bench^{patient}", patient
    ds.StudyDate, ds.StudyTime = "20240131", "101500"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
    ds.SeriesNumber, ds.InstanceNumber, ds.Modality = 1, number, "MR"
    ds.Rows = ds.Columns = size
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelData = ((np.arange(size * size, dtype=np.uint32) * number) % 4096).astype(np.uint16).tobytes()
    return ds

with zipfile.ZipFile(work / "studies.zip", "w", zipfile.ZIP_STORED) as z:
    for n in range(studies):
        ds = instance(generate_uid(), generate_uid(), 1, f"P{n:06d}", 16)
        path = work / "one.dcm"
        ds.save_as(path, enforce_file_format=True)
        z.write(path, f"s{n:06d}.dcm")
series_dir = work / "series"
series_dir.mkdir()
study, series = generate_uid(), generate_uid()
for n in range(1, count + 1):
    instance(study, series, n, "SERIES01", rows).save_as(series_dir / f"i{n:05d}.dcm", enforce_file_format=True)
boundary = "bench-boundary-7f3a"
with open(work / "stow.body", "wb") as body:
    for path in sorted(series_dir.iterdir()):
        body.write(f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode())
        body.write(path.read_bytes())
        body.write(b"\r\n")
    body.write(f"--{boundary}--\r\n".encode())
(work / "series.uids").write_text(f"{study} {series}\n")
PY
read -r series_study series_uid <"$work/series.uids"
stow_type="multipart/related; type=\"application/dicom\"; boundary=bench-boundary-7f3a"
size_mb=$(echo "$(du -sb "$work/series" | cut -f1) / 1000000" | bc -l)

free_port() { "$python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now() { date +%s.%N; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

http_port=$(free_port)
password="Bench-$RANDOM$RANDOM"
XNATKIT_ADMIN_PASSWORD="$password" "$binary" serve --data "$work/xnatkit" \
  --listen "127.0.0.1:$http_port" >"$work/server.log" 2>&1 &
pids+=($!)
base="http://127.0.0.1:$http_port"
for _ in $(seq 300); do curl -sf "$base/data/version" >/dev/null && break; sleep 0.1; done
auth=(-u "admin:$password")
for p in QIDO WADO STOW; do curl -sf "${auth[@]}" -X PUT "$base/data/projects/$p" >/dev/null; done

# --- 1. QIDO-RS over many studies ----------------------------------------------
echo "importing $studies studies..." >&2
curl -sf "${auth[@]}" -H 'Content-Type: application/zip' --data-binary "@$work/studies.zip" \
  "$base/data/services/import?dest=/archive&project=QIDO" >/dev/null
listed=$(curl -sf "${auth[@]}" "$base/xapi/dicomweb/projects/QIDO/studies?limit=1&offset=$((studies - 1))" | grep -c 0020000D || true)
[[ "$listed" == 1 ]] || { echo "error: QIDO does not list $studies studies; see $work/server.log" >&2; exit 1; }
qido() {
  for _ in $(seq 20); do
    curl -s -o /dev/null -w '%{time_starttransfer}\n' "${auth[@]}" "$base/xapi/dicomweb$1"
  done | median
}
qido_patient=$(qido "/studies?PatientID=P000042")
qido_page=$(qido "/studies?limit=100&offset=0")
qido_name=$(qido "/studies?PatientName=bench%5EP00004*")

# --- 2. WADO-RS of one series ---------------------------------------------------
curl -sf "${auth[@]}" -H "Content-Type: $stow_type" --data-binary "@$work/stow.body" \
  "$base/xapi/dicomweb/projects/WADO/studies" >/dev/null
stored_files=$(find "$work/xnatkit/archive/WADO" -name '*.dcm')
# Medians of 10 (single runs on a shared machine vary by 2x).
cat_s=$(for _ in $(seq 10); do
  start=$(now); cat $stored_files >/dev/null; echo "$(now) - $start" | bc
done | median)
wado_url="$base/xapi/dicomweb/projects/WADO/studies/$series_study/series/$series_uid"
wado_s=$(for _ in $(seq 10); do
  curl -sf "${auth[@]}" -H 'Accept: multipart/related; type="application/dicom"' -o /dev/null \
    -w '%{time_total}\n' "$wado_url"
done | median)

# --- 3. STOW-RS against C-STORE and Orthanc -------------------------------------
# STOW-RS is answered once the study is archived; C-STORE once each instance
# is spooled (the study is built after the idle period).
start=$(now)
stowed=$(curl -s -o /dev/null -w '%{http_code}' "${auth[@]}" -H "Content-Type: $stow_type" \
  --data-binary "@$work/stow.body" "$base/xapi/dicomweb/projects/STOW/studies")
stow_s=$(echo "$(now) - $start" | bc)
cstore_port=$(free_port)
mkdir -p "$work/xnatkit2"
XNATKIT_ADMIN_PASSWORD="$password" "$binary" serve --data "$work/xnatkit2" \
  --listen "127.0.0.1:$(free_port)" --dicom-listen "127.0.0.1:$cstore_port" \
  --dicom-ae-title XNAT --dicom-idle-secs 1 >"$work/server2.log" 2>&1 &
pids+=($!)
for _ in $(seq 200); do echoscu -aec XNAT 127.0.0.1 "$cstore_port" 2>/dev/null && break; sleep 0.1; done
start=$(now)
storescu -aec XNAT +sd +r 127.0.0.1 "$cstore_port" "$work/series" 2>/dev/null
cstore_s=$(echo "$(now) - $start" | bc)
orthanc_port=$(free_port)
cat >"$work/orthanc.json" <<EOF
{ "Name": "bench", "StorageDirectory": "$work/orthanc/storage", "IndexDirectory": "$work/orthanc/index",
  "HttpPort": $orthanc_port, "DicomPort": $(free_port), "RemoteAccessAllowed": false,
  "AuthenticationEnabled": false, "Plugins": ["$orthanc_plugin"],
  "DicomWeb": { "Enable": true, "Root": "/dicom-web/" } }
EOF
"$orthanc_bin" "$work/orthanc.json" >"$work/orthanc.log" 2>&1 &
pids+=($!)
for _ in $(seq 300); do curl -sf "http://127.0.0.1:$orthanc_port/system" >/dev/null && break; sleep 0.1; done
start=$(now)
curl -sf -H "Content-Type: $stow_type" --data-binary "@$work/stow.body" \
  "http://127.0.0.1:$orthanc_port/dicom-web/studies" >/dev/null
orthanc_s=$(echo "$(now) - $start" | bc)

ms() { echo "$1 * 1000" | bc -l; }
printf 'QIDO-RS over %s studies, median time to first byte (goal < 50 ms):\n' "$studies"
printf '  PatientID=…            %6.1f ms\n' "$(ms "$qido_patient")"
printf '  PatientName=bench^P00004*  %6.1f ms\n' "$(ms "$qido_name")"
printf '  limit=100              %6.1f ms\n' "$(ms "$qido_page")"
printf 'WADO-RS of a %s-instance series (%.1f MB): %.3f s; cat of the stored files %.3f s; ratio %.2f (goal <= 2)\n' \
  "$count" "$size_mb" "$wado_s" "$cat_s" "$(echo "$wado_s / $cat_s" | bc -l)"
[[ "$stowed" == 200 || "$stowed" == 409 ]] || { echo "error: STOW-RS answered $stowed; see $work/server.log" >&2; exit 1; }
printf 'STOW-RS of %s instances: %.2f s; C-STORE into serve --dicom-listen %.2f s (ratio %.2f); Orthanc STOW-RS %.2f s (ratio %.2f)\n' \
  "$count" "$stow_s" "$cstore_s" "$(echo "$stow_s / $cstore_s" | bc -l)" "$orthanc_s" "$(echo "$stow_s / $orthanc_s" | bc -l)"
