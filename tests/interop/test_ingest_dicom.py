"""DICOM networking peers against `xnatkit serve --dicom-listen`: dcmtk
`echoscu`/`storescu` pushing a series that lands in the project named by the
called AE title, and pynetdicom sending pydicom's own test files in
compressed (JPEG, RLE, JPEG 2000), big-endian and implicit transfer syntaxes,
which must be stored byte-for-byte as received."""

from __future__ import annotations

import hashlib
import io
import shutil
import stat
import subprocess
import time
from pathlib import Path

import pytest
import requests
from conftest import BACKENDS, Server, free_port, missing_prerequisite, unique
from dicom_tree import write_series
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid

IDLE_SECS = 1
ARRIVAL_TIMEOUT_S = 30

# pydicom's bundled test files, one per transfer-syntax family.
PYDICOM_FILES = [
    "MR_small.dcm",              # explicit VR little endian
    "MR_small_implicit.dcm",     # implicit VR little endian
    "MR_small_bigendian.dcm",    # explicit VR big endian
    "MR_small_RLE.dcm",          # RLE lossless
    "JPEG-lossy.dcm",            # JPEG baseline
    "MR_small_jp2klossless.dcm", # JPEG 2000 lossless
    "SC_rgb_jpeg_dcmtk.dcm",     # JPEG baseline, colour
]


@pytest.fixture(scope="module", params=BACKENDS)
def receiving_server(request, xnatkit_bin, tmp_path_factory):
    """`xnatkit serve` with the DICOM receiver on a free loopback port."""
    workdir = tmp_path_factory.mktemp(f"dicom-{request.param}")
    port = free_port()
    # The shared fixture starts `BINARY serve …`; a wrapper adds the receiver flags.
    wrapper = workdir / "xnatkit-with-receiver"
    wrapper.write_text(
        "#!/bin/sh\n"
        f'exec "{xnatkit_bin}" "$@" --dicom-listen 127.0.0.1:{port} --dicom-ae-title XNAT '
        f"--dicom-idle-secs {IDLE_SECS}\n"
    )
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    server = Server(str(wrapper), request.param, workdir)
    server.dicom_port = port
    yield server
    server.stop()


def dcmtk(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        missing_prerequisite(f"dcmtk's {name} on PATH (Debian package dcmtk)")
    return found


def wait_for(what, probe):
    deadline = time.monotonic() + ARRIVAL_TIMEOUT_S
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.25)
    pytest.fail(f"{what} did not arrive within {ARRIVAL_TIMEOUT_S}s")


def rows(server, path):
    response = requests.get(f"{server.url}{path}", params={"format": "json"}, auth=server.admin, timeout=30)
    assert response.status_code == 200, f"{path}: {response.status_code} {response.text[:200]}"
    return response.json()["ResultSet"]["Result"]


def test_echoscu_and_storescu_series_lands_in_called_project(receiving_server, tmp_path):
    server = receiving_server
    project = server.create_project(server.admin)
    response = requests.put(f"{server.url}/data/projects/{project}/prearchive_code/4", auth=server.admin,
                            timeout=30)
    assert response.status_code == 200
    port = str(server.dicom_port)
    echo = subprocess.run([dcmtk("echoscu"), "-aec", "XNAT", "127.0.0.1", port], capture_output=True,
                          text=True, timeout=60)
    assert echo.returncode == 0, echo.stderr
    patient_id = unique("DCM")
    files = write_series(tmp_path / "series", 5, patient_name="Store^Scu", patient_id=patient_id,
                         study_date="20240131", study_uid=generate_uid(), series_number=3,
                         modality="MR", series_description="pushed")
    sent = subprocess.run([dcmtk("storescu"), "-aec", project, "127.0.0.1", port, *map(str, files)],
                          capture_output=True, text=True, timeout=120)
    assert sent.returncode == 0, sent.stderr
    experiments = wait_for("the pushed session",
                           lambda: rows(server, f"/data/projects/{project}/experiments"))
    assert [e["label"] for e in experiments] == [patient_id]
    scan_files = rows(server, f"/data/projects/{project}/experiments/{patient_id}/scans/3/resources/DICOM/files")
    assert len(scan_files) == 5


def test_pynetdicom_sends_every_transfer_syntax_unchanged(receiving_server):
    from pynetdicom import AE

    server = receiving_server
    project = server.create_project(server.admin)
    # New projects auto-archive (XNAT 1.8's default); this test waits for the
    # sessions in the prearchive, so it sets the manual code explicitly.
    response = requests.put(f"{server.url}/data/projects/{project}/prearchive_code/0", auth=server.admin,
                            timeout=30)
    assert response.status_code == 200
    sources = [Path(get_testdata_file(name)) for name in PYDICOM_FILES]
    datasets = [dcmread(path) for path in sources]
    for ds in datasets:
        # Several files are the same image in other encodings (same UIDs):
        # make each its own study so every one must be stored.
        ds.StudyInstanceUID = generate_uid()
        ds.SeriesInstanceUID = generate_uid()
        ds.SOPInstanceUID = generate_uid()
        ds.PatientID = unique("PYN")
    ae = AE(ae_title="PYNETDICOM")
    for ds in datasets:
        ae.add_requested_context(ds.SOPClassUID, ds.file_meta.TransferSyntaxUID)
    assoc = ae.associate("127.0.0.1", server.dicom_port, ae_title=project)
    assert assoc.is_established, "association refused"
    try:
        for ds in datasets:
            status = assoc.send_c_store(ds)
            assert status and status.Status == 0x0000, f"{ds.SOPInstanceUID}: {status}"
    finally:
        assoc.release()

    # Each bundled file is its own study; with the manual setting they wait
    # in that project's prearchive.
    def all_arrived():
        found = rows(server, f"/data/prearchive/projects/{project}")
        ready = [s for s in found if s["status"] == "READY"]
        return found if len(ready) >= len(datasets) else None

    sessions = wait_for("all sent studies", all_arrived)
    assert len(sessions) == len(datasets)
    stored = {}
    for session in sessions:
        base = f"/data{session['url']}"
        for scan in rows(server, f"{base}/scans"):
            for entry in rows(server, f"{base}/scans/{scan['ID']}/resources/DICOM/files"):
                body = requests.get(f"{server.url}{entry['URI']}", auth=server.admin, timeout=30).content
                ds = dcmread(io.BytesIO(body))
                stored[ds.SOPInstanceUID] = (ds.file_meta.TransferSyntaxUID, hashlib.md5(ds.PixelData).hexdigest())
    for ds in datasets:
        assert ds.SOPInstanceUID in stored, f"{ds.SOPInstanceUID} was not stored"
        syntax, pixel_digest = stored[ds.SOPInstanceUID]
        assert syntax == ds.file_meta.TransferSyntaxUID
        assert pixel_digest == hashlib.md5(ds.PixelData).hexdigest()
