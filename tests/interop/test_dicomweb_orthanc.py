"""Orthanc (Debian's `orthanc` + `orthanc-dicomweb`, unchanged) with our server
configured as its DICOMweb peer: it lists our studies through QIDO-RS,
retrieves one into its own store through WADO-RS (the bytes it then holds equal
ours), and sends one to us through STOW-RS, which we archive and serve back.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time
from pathlib import Path

import pydicom
import pytest
import requests
from conftest import free_port, missing_prerequisite
from dicomweb_client.api import DICOMwebClient
from pydicom.data import get_testdata_file

ORTHANC = "/usr/sbin/Orthanc"
DICOMWEB_PLUGIN = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so"
READY_TIMEOUT_S = 30


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


@pytest.fixture(scope="module")
def owner(server):
    return server.create_user()


@pytest.fixture(scope="module")
def project(server, owner):
    return server.create_project(owner, accessibility="private")


@pytest.fixture(scope="module")
def orthanc(server, owner, project, tmp_path_factory):
    """A private Orthanc whose DICOMweb peer `xnatkit` is our project's root."""
    if not (os.access(ORTHANC, os.X_OK) and os.path.isfile(DICOMWEB_PLUGIN)):
        missing_prerequisite("Orthanc with its DICOMweb plugin (Debian packages orthanc, orthanc-dicomweb; "
                             "scripts/setup-system.sh installs them)")
    work = tmp_path_factory.mktemp("orthanc")
    port = free_port()
    config = {
        "Name": "xnatkit-interop",
        "StorageDirectory": str(work / "storage"),
        "IndexDirectory": str(work / "index"),
        "HttpPort": port,
        "DicomPort": free_port(),
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "Plugins": [DICOMWEB_PLUGIN],
        "DicomWeb": {
            "Enable": True,
            "Root": "/dicom-web/",
            "Servers": {
                "xnatkit": {
                    "Url": f"{server.url}/xapi/dicomweb/projects/{project}/",
                    "Username": owner[0],
                    "Password": owner[1],
                },
            },
        },
    }
    (work / "orthanc.json").write_text(json.dumps(config))
    log = open(work / "orthanc.log", "wb")
    process = subprocess.Popen([ORTHANC, str(work / "orthanc.json")], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + READY_TIMEOUT_S
    while True:
        if process.poll() is not None:
            log.close()
            pytest.fail(f"Orthanc exited with {process.returncode}:\n{(work / 'orthanc.log').read_text()[-3000:]}",
                        pytrace=False)
        try:
            if requests.get(f"{url}/system", timeout=2).status_code == 200:
                break
        except requests.ConnectionError:
            pass
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail("Orthanc did not answer /system in time", pytrace=False)
        time.sleep(0.2)
    yield url
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    log.close()


@pytest.fixture(scope="module")
def ct_study(server, owner, project):
    """pydicom's CT_small stored into our project through STOW-RS."""
    path = Path(get_testdata_file("CT_small.dcm"))
    ds = pydicom.dcmread(path)
    http = requests.Session()
    http.auth = owner
    client = DICOMwebClient(url=f"{server.url}/xapi/dicomweb/projects/{project}", session=http)
    response = client.store_instances([ds])
    assert len(response.ReferencedSOPSequence) == 1
    return {"uid": str(ds.StudyInstanceUID), "md5": md5(path.read_bytes())}


def test_orthanc_lists_our_studies(orthanc, ct_study):
    answer = requests.post(f"{orthanc}/dicom-web/servers/xnatkit/get", json={"Uri": "/studies"}, timeout=60)
    assert answer.status_code == 200, answer.text
    uids = [s["0020000D"]["Value"][0] for s in answer.json()]
    assert ct_study["uid"] in uids


def test_orthanc_retrieves_a_study_with_our_bytes(orthanc, ct_study):
    answer = requests.post(f"{orthanc}/dicom-web/servers/xnatkit/retrieve",
                           json={"Resources": [{"Study": ct_study["uid"]}]}, timeout=120)
    assert answer.status_code == 200, answer.text
    found = requests.post(f"{orthanc}/tools/find",
                          json={"Level": "Instance", "Query": {"StudyInstanceUID": ct_study["uid"]}},
                          timeout=60).json()
    assert len(found) == 1
    held = requests.get(f"{orthanc}/instances/{found[0]}/file", timeout=60).content
    assert md5(held) == ct_study["md5"]


def test_orthanc_sends_a_study_to_us_over_stow(server, owner, project, orthanc):
    path = Path(get_testdata_file("MR_small.dcm"))
    sent = path.read_bytes()
    uploaded = requests.post(f"{orthanc}/instances", data=sent, timeout=60)
    assert uploaded.status_code == 200, uploaded.text
    study_id = uploaded.json()["ParentStudy"]
    answer = requests.post(f"{orthanc}/dicom-web/servers/xnatkit/stow",
                           json={"Resources": [study_id], "Synchronous": True}, timeout=120)
    assert answer.status_code == 200, answer.text
    ds = pydicom.dcmread(path)
    wado = requests.get(
        f"{server.url}/xapi/dicomweb/projects/{project}/wado",
        params={"requestType": "WADO", "studyUID": str(ds.StudyInstanceUID),
                "seriesUID": str(ds.SeriesInstanceUID), "objectUID": str(ds.SOPInstanceUID)},
        auth=owner, timeout=60)
    assert wado.status_code == 200, wado.text
    assert md5(wado.content) == md5(sent)
