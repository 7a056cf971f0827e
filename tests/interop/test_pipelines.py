"""The pipeline engine with real clients: xnatctl 0.6.0's `container list |
launch --wait | logs | kill` runs dcm2niix and a registered command on our
server unchanged, and pyxnat 1.6.4's `Pipeline.status()` reads the workflow.

xnatctl has its own venv (its dependencies do not fit beside the peers
pins): `scripts/setup-peers.sh .venv-xnatctl tests/interop/requirements-xnatctl.txt`;
the tests find it through XNATKIT_XNATCTL_VENV.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import time
import zipfile
from pathlib import Path

import pydicom
import pytest
import requests
from pydicom.uid import generate_uid

from conftest import missing_prerequisite, unique
from dicom_tree import write_series

DONE = ("Complete", "Failed", "Killed")


@pytest.fixture(scope="module")
def xnatctl() -> str:
    venv = os.environ.get("XNATKIT_XNATCTL_VENV")
    if not venv:
        missing_prerequisite("XNATKIT_XNATCTL_VENV (a venv with xnatctl==0.6.0)")
    binary = Path(venv) / "bin" / "xnatctl"
    if not binary.exists():
        pytest.fail(f"{binary} not found: build the venv with scripts/setup-peers.sh", pytrace=False)
    if shutil.which("dcm2niix") is None:
        missing_prerequisite("dcm2niix on PATH (Debian package dcm2niix)")
    return str(binary)


def import_session(server, auth, project: str, tmp: Path) -> tuple[str, str]:
    """A CT series with geometry, imported into the archive; returns (ID, label)."""
    subject, label = unique("SUBJ"), unique("SESS")
    files = write_series(tmp / label, 4, patient_name=subject, patient_id=subject, study_date="20240301",
                         study_uid=generate_uid(), series_number=1, modality="CT",
                         series_description="Thorax")
    for index, path in enumerate(files):
        ds = pydicom.dcmread(path)
        ds.ImagePositionPatient = [0, 0, float(index)]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.PixelSpacing = [1, 1]
        ds.SliceThickness = 1
        ds.save_as(path, enforce_file_format=True)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in files:
            archive.write(path, f"{label}/{path.name}")
    response = requests.post(f"{server.url}/data/services/import", auth=auth, timeout=120,
                             params={"dest": "/archive", "project": project, "subject": subject,
                                     "session": label},
                             data=buffer.getvalue(), headers={"Content-Type": "application/zip"})
    assert response.status_code == 200, response.text
    item = requests.get(f"{server.url}/data/projects/{project}/experiments/{label}", auth=auth,
                        params={"format": "json"}, timeout=30).json()
    return item["items"][0]["data_fields"]["ID"], label


def wrapper_id(server, name: str) -> int:
    for command in requests.get(f"{server.url}/xapi/commands", auth=server.admin, timeout=30).json():
        for wrapper in command["xnat"]:
            if wrapper["name"] == name:
                return wrapper["id"]
    raise AssertionError(f"no wrapper {name}")


def run_xnatctl(binary: str, server, auth, home: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, HOME=str(home), XNAT_URL=server.url, XNAT_USER=auth[0], XNAT_PASS=auth[1],
               XNAT_NO_UPDATE_CHECK="1", NO_UPDATE_NOTIFIER="1")
    return subprocess.run([binary, *args], capture_output=True, text=True, env=env, timeout=600)


def launch_with_xnatctl(binary: str, server, auth, home: Path, project: str, wrapper: str, target: str,
                        root: str = "scan") -> dict:
    """Enables `wrapper` in `project` and runs it on `target` (its `root` input) with
    `xnatctl container launch --wait`."""
    wid = wrapper_id(server, wrapper)
    assert requests.put(f"{server.url}/xapi/projects/{project}/wrappers/{wid}/enabled", auth=auth,
                        timeout=30).status_code == 200
    launched = run_xnatctl(binary, server, auth, home, "container", "launch", wrapper, "-P", project,
                           "--param", f"{root}={target}", "--wait", "-o", "json")
    assert launched.returncode == 0, launched.stderr + launched.stdout
    container = json.loads(launched.stdout)
    if isinstance(container, list):
        container = container[0]
    assert container["status"] == "Complete", container
    return container


def wait_for(server, auth, container_id: str, states=DONE) -> dict:
    deadline = time.monotonic() + 300
    while True:
        container = requests.get(f"{server.url}/xapi/containers/{container_id}", auth=auth, timeout=30).json()
        if container["status"] in states:
            return container
        assert time.monotonic() < deadline, container
        time.sleep(0.2)


def test_xnatctl_runs_dcm2niix_and_pyxnat_reads_the_workflow(server, user, project, tmp_path, xnatctl):
    session_id, label = import_session(server, user, project, tmp_path)
    container = launch_with_xnatctl(xnatctl, server, user, tmp_path, project, "dcm2niix-scan",
                                    f"/experiments/{session_id}/scans/1")
    files = requests.get(f"{server.url}/data/experiments/{session_id}/scans/1/resources/NIFTI/files",
                         auth=user, params={"format": "json"}, timeout=30).json()["ResultSet"]["Result"]
    names = [f["Name"] for f in files]
    assert any(n.endswith(".nii.gz") for n in names) and any(n.endswith(".json") for n in names), names

    listed = run_xnatctl(xnatctl, server, user, tmp_path, "container", "list", "-P", project, "-o", "json")
    assert listed.returncode == 0, listed.stderr
    assert str(container["id"]) in {str(row["id"]) for row in json.loads(listed.stdout)}
    logs = run_xnatctl(xnatctl, server, user, tmp_path, "container", "logs", str(container["id"]))
    assert logs.returncode == 0, logs.stderr
    assert "Convert" in logs.stdout, logs.stdout

    import pyxnat
    from pyxnat.core.pipelines import Pipeline

    interface = pyxnat.Interface(server=server.url, user=user[0], password=user[1])
    try:
        status = Pipeline("dcm2niix-scan", interface.select.project(project), interface).status(label)
    finally:
        interface.disconnect()
    assert status is not None and status["status"] == "Complete", status
    assert status["wrk_workflowData_id"] == str(container["workflow-id"])


def test_xnatctl_kills_a_running_command(server, user, project, tmp_path, xnatctl):
    session_id, _ = import_session(server, user, project, tmp_path)
    name = unique("sleeper").lower()
    command = {
        "name": name, "type": "xnatkit", "command-line": "ls /input > /output/listing.txt; sleep 600",
        "mounts": [{"name": "in", "path": "/input"}, {"name": "out", "writable": True, "path": "/output"}],
        "outputs": [{"name": "listing", "mount": "out"}],
        "xnat": [{
            "name": f"{name}-scan", "contexts": ["xnat:imageScanData"],
            "external-inputs": [{"name": "scan", "type": "Scan", "required": True}],
            "derived-inputs": [{"name": "dicom", "type": "Resource", "matcher": "@.label == 'DICOM'",
                                "derived-from-wrapper-input": "scan", "provides-files-for-command-mount": "in"}],
            "output-handlers": [{"name": "h", "type": "Resource", "accepts-command-output": "listing",
                                 "as-a-child-of": "scan", "label": "LISTING"}],
        }],
    }
    response = requests.post(f"{server.url}/xapi/commands", auth=server.admin, json=command, timeout=30)
    assert response.status_code == 201, response.text
    wid = wrapper_id(server, f"{name}-scan")
    assert requests.put(f"{server.url}/xapi/wrappers/{wid}/enabled", auth=server.admin, timeout=30).ok
    assert requests.put(f"{server.url}/xapi/projects/{project}/wrappers/{wid}/enabled", auth=user, timeout=30).ok

    launched = run_xnatctl(xnatctl, server, user, tmp_path, "container", "launch", f"{name}-scan", "-P", project,
                           "--param", f"scan=/experiments/{session_id}/scans/1", "-o", "json")
    assert launched.returncode == 0, launched.stderr + launched.stdout
    report = json.loads(launched.stdout)
    containers = requests.get(f"{server.url}/xapi/projects/{project}/containers", auth=user, timeout=30).json()
    mine = [c for c in containers if str(c["workflow-id"]) == str(report["workflow-id"])]
    assert len(mine) == 1, containers
    wait_for(server, user, str(mine[0]["id"]), ("Running",))

    killed = run_xnatctl(xnatctl, server, user, tmp_path, "container", "kill", str(mine[0]["id"]), "--yes")
    assert killed.returncode == 0, killed.stderr + killed.stdout
    done = wait_for(server, user, str(mine[0]["id"]))
    assert done["status"] == "Killed", done
    listing = requests.get(f"{server.url}/data/experiments/{session_id}/scans/1/resources/LISTING/files",
                           auth=user, params={"format": "json"}, timeout=30)
    assert listing.status_code == 404, "a killed run attaches nothing"


def test_xnatctl_runs_qa_and_xnatpy_reads_the_nifti_and_the_qa_assessor(server, user, project, tmp_path, xnatctl):
    session_id, label = import_session(server, user, project, tmp_path)
    for name in ("dcm2niix-scan", "qa-scan"):
        launch_with_xnatctl(xnatctl, server, user, tmp_path, project, name, f"/experiments/{session_id}/scans/1")

    import xnat

    with xnat.connect(server.url, user=user[0], password=user[1]) as connection:
        experiment = connection.experiments[session_id]
        nifti = experiment.scans["1"].resources["NIFTI"]
        assert any(name.endswith(".nii.gz") for name in nifti.files.keys()), list(nifti.files.keys())

        assessor = experiment.assessors[f"{label}_QA_1"]
        assert assessor.__xsi_type__ == "xnat:qcAssessmentData"
        assert assessor.label == f"{label}_QA_1"
        report = assessor.resources["QA"]
        assert sorted(report.files.keys()) == ["montage.png", "qa.csv", "qa.json"]
        target = tmp_path / "qa.json"
        report.files["qa.json"].download(str(target))
        numbers = json.loads(target.read_text())

    # The assessor's scan statistics are the report's numbers.
    item = requests.get(f"{server.url}/data/experiments/{session_id}/assessors/{label}_QA_1", auth=user,
                        params={"format": "json"}, timeout=30).json()["items"][0]
    scans = next(c for c in item["children"] if c["field"] == "scans/scan")["items"]
    assert scans[0]["data_fields"]["id"] == "1"
    stats = next(c for c in scans[0]["children"] if c["field"] == "scanStatistics")["items"][0]
    assert float(stats["data_fields"]["mean"]) == pytest.approx(numbers["mean"], rel=1e-9)
    extra = {e["data_fields"]["name"]: float(e["data_fields"]["additionalStatistics"])
             for e in next(c for c in stats["children"] if c["field"] == "additionalStatistics")["items"]}
    assert extra["efc"] == pytest.approx(numbers["efc"], rel=1e-9)
    assert extra["fber"] == pytest.approx(numbers["fber"], rel=1e-9)


def test_xnatctl_runs_the_adc_map_on_a_real_ge_dwi_and_xnatpy_reads_it(server, user, project, tmp_path, xnatctl):
    dwi = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "dwi-ge" / "01_Ax_DWI_TENSOR_R2"
    if not dwi.is_dir():
        missing_prerequisite(f"the real GE DWI at {dwi} (../shared/data beside the repository)")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted(dwi.iterdir()):
            archive.write(path, f"DWI/{path.name}")
    label = unique("DWI")
    response = requests.post(f"{server.url}/data/services/import", auth=user, timeout=120,
                             params={"dest": "/archive", "project": project, "subject": unique("SUBJ"),
                                     "session": label},
                             data=buffer.getvalue(), headers={"Content-Type": "application/zip"})
    assert response.status_code == 200, response.text
    item = requests.get(f"{server.url}/data/projects/{project}/experiments/{label}", auth=user,
                        params={"format": "json"}, timeout=30).json()["items"][0]
    session_id = item["data_fields"]["ID"]
    scans = requests.get(f"{server.url}/data/experiments/{session_id}/scans", auth=user,
                         params={"format": "json"}, timeout=30).json()["ResultSet"]["Result"]
    assert len(scans) == 1, scans
    scan_id = scans[0]["ID"]

    launch_with_xnatctl(xnatctl, server, user, tmp_path, project, "adc-map-scan",
                        f"/experiments/{session_id}/scans/{scan_id}")

    import xnat

    with xnat.connect(server.url, user=user[0], password=user[1]) as connection:
        resource = connection.experiments[session_id].scans[scan_id].resources["ADCMAP"]
        names = set(resource.files.keys())
        assert {"ADC_map.nii.gz", "maps.json"} <= names, names
        target = tmp_path / "maps.json"
        resource.files["maps.json"].download(str(target))
    summary = json.loads(target.read_text())
    assert "adc" in json.dumps(summary).lower(), summary


def test_an_roi_collection_stored_over_stow_feeds_mask_average(server, user, project, tmp_path, xnatctl):
    """XNAT-PIC's Mask Average the way its users get there: the CT is in the archive with a map
    resource, the ROIs arrive as an RTSTRUCT over DICOMweb STOW-RS (what OHIF sends) and become an
    ROI collection; xnatctl launches mask-average-session on the session; xnatpy reads the
    statistics. Real data: rt-utils' CT slices and their RTSTRUCT (1,443 voxels in ROI-1)."""
    from dicomweb_client.api import DICOMwebClient

    folder = Path(os.environ.get("XNATKIT_RTSTRUCT_DATA",
                                 Path(__file__).resolve().parents[2].parent / "shared" / "data"
                                 / "rtstruct-rtutils" / "mock_data"))
    if not (folder / "rt.dcm").is_file():
        missing_prerequisite(f"rt-utils' mock_data (ct_1.dcm, ct_2.dcm, rt.dcm) at {folder}")
    http = requests.Session()
    http.auth = user
    stow = DICOMwebClient(url=f"{server.url}/xapi/dicomweb/projects/{project}", session=http)
    ct = [pydicom.dcmread(folder / name) for name in ("ct_1.dcm", "ct_2.dcm")]
    stored = stow.store_instances(ct)
    assert len(stored.ReferencedSOPSequence) == 2, stored
    sessions = requests.get(f"{server.url}/data/projects/{project}/experiments", auth=user,
                            params={"format": "json"}, timeout=30).json()["ResultSet"]["Result"]
    assert len(sessions) == 1, sessions
    session_id = sessions[0]["ID"]
    scans = requests.get(f"{server.url}/data/experiments/{session_id}/scans", auth=user,
                         params={"format": "json"}, timeout=30).json()["ResultSet"]["Result"]
    scan_id = scans[0]["ID"]
    # The map: a T2MAP resource holding a DICOM series, as a t2-map run leaves it.
    resource = f"{server.url}/data/experiments/{session_id}/scans/{scan_id}/resources/T2MAP"
    assert requests.put(resource, auth=user, timeout=30).status_code in (200, 201)
    for name in ("ct_1.dcm", "ct_2.dcm"):
        response = requests.put(f"{resource}/files/T2_map_dicom/{name}", auth=user, timeout=60,
                                data=(folder / name).read_bytes())
        assert response.status_code == 200, response.text

    rt = pydicom.dcmread(folder / "rt.dcm")
    stored = stow.store_instances([rt], study_instance_uid=str(rt.StudyInstanceUID))
    assert len(stored.ReferencedSOPSequence) == 1, stored

    launch_with_xnatctl(xnatctl, server, user, tmp_path, project, "mask-average-session",
                        f"/experiments/{session_id}", root="session")

    import xnat

    with xnat.connect(server.url, user=user[0], password=user[1], loglevel="ERROR") as connection:
        statistics = connection.experiments[session_id].resources["ROISTATS"]
        names = set(statistics.files.keys())
        assert {"rois.json", "rois.csv", "statistics.txt"} <= names, names
        target = tmp_path / "rois.json"
        statistics.files["rois.json"].download(str(target))
    rois = json.loads(target.read_text())
    assert rois[0]["roi"] == "ROI-1" and rois[0]["voxels"] == 1443, rois
