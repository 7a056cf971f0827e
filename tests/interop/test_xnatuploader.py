"""xnatuploader 1.1.9 (with its pinned xnatpy 0.4.3 / xnatutils 0.8.3), unchanged,
against `xnatkit serve`: `init`, `scan` and `upload` of a small DICOM tree laid
out as in the xnatuploader README.

xnatuploader checks every uploaded file's MD5 against the server's `digest` and
writes "success" into the spreadsheet only when they match, so a spreadsheet full
of "success" is the integrity check. It runs from its own venv
(XNATKIT_UPLOADER_VENV) because it cannot share one with xnatpy 0.8.1."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import openpyxl
import pytest
from conftest import missing_prerequisite, unique, write_netrc
from dicom_tree import write_series
from pydicom.uid import generate_uid

CLI_TIMEOUT_S = 300


@pytest.fixture(scope="module")
def uploader_bin() -> str:
    venv = os.environ.get("XNATKIT_UPLOADER_VENV")
    if not venv:
        missing_prerequisite("XNATKIT_UPLOADER_VENV (venv with xnatuploader==1.1.9)")
    binary = Path(venv) / "bin" / "xnatuploader"
    if not binary.exists():
        pytest.fail(f"{binary} not found; rebuild the venv with scripts/setup-peers.sh", pytrace=False)
    return str(binary)


def make_tree(root: Path) -> dict[str, list[Path]]:
    """The README's example layout: SURNAME^GIVEN-ID/YYYYMMDD/<dataset>/scanNNNN.dcm.
    Returns the files per expected session label ({ID}_{modality}{visit})."""
    sessions: dict[str, list[Path]] = {}

    def series(patient: str, patient_id: str, date: str, dataset: str, modality: str, number: int,
               count: int, session: str) -> None:
        files = write_series(root / f"{patient}-{patient_id}" / date / dataset, count,
                             patient_name=patient, patient_id=patient_id, study_date=date,
                             study_uid=generate_uid(), series_number=number, modality=modality,
                             series_description=dataset)
        sessions.setdefault(session, []).extend(files)

    series("Doe^John", "0001", "20200312", "Chest CT", "CT", 2, 3, "0001_CT1")
    series("Roe^Jane", "0342", "20190115", "Head MR", "MR", 4, 4, "0342_MR1")
    series("Roe^Jane", "0342", "20200623", "Head MR", "MR", 4, 3, "0342_MR2")
    return sessions


def run(uploader_bin: str, *args: str, home: Path, cwd: Path) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if not key.startswith("XNAT_")}
    env["HOME"] = str(home)
    done = subprocess.run([uploader_bin, *args, "--logdir", str(cwd / "logs")], capture_output=True, text=True,
                          env=env, cwd=cwd, input="", timeout=CLI_TIMEOUT_S, start_new_session=True)
    assert done.returncode == 0, (
        f"xnatuploader {' '.join(args)} exited {done.returncode}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}")
    return done


def statuses(spreadsheet: Path) -> dict[str, str]:
    """File path → Status column of the "Files" worksheet, for rows selected for upload."""
    sheet = openpyxl.load_workbook(spreadsheet)["Files"]
    rows = sheet.iter_rows(values_only=True)
    header = list(next(rows))
    file_col, upload_col, status_col = header.index("File"), header.index("Upload"), header.index("Status")
    return {row[file_col]: row[status_col] for row in rows if row[upload_col] == "Y"}


def test_init_scan_upload_dicom_tree(server, uploader_bin, tmp_path):
    owner = server.create_user()
    project = server.create_project(owner, project=unique("UPL"), accessibility="private")
    home = tmp_path / "home"
    home.mkdir()
    write_netrc(home, server, owner)
    data = tmp_path / "data"
    sessions = make_tree(data)
    all_files = [path for files in sessions.values() for path in files]
    spreadsheet = tmp_path / "files.xlsx"

    run(uploader_bin, "init", "--spreadsheet", str(spreadsheet), home=home, cwd=tmp_path)
    run(uploader_bin, "scan", "--spreadsheet", str(spreadsheet), "--dir", str(data), home=home, cwd=tmp_path)
    assert len(statuses(spreadsheet)) == len(all_files), "scan must select every DICOM file of the tree"

    upload = ["upload", "--spreadsheet", str(spreadsheet), "--dir", str(data), "--project", project,
              "--server", server.url]
    run(uploader_bin, *upload, home=home, cwd=tmp_path)
    result = statuses(spreadsheet)
    failed = {path: status for path, status in result.items() if status != "success"}
    assert not failed, f"xnatuploader reported failures (status per file): {failed}"
    assert len(result) == len(all_files)

    # What xnatuploader checked, checked again from outside: every session is
    # there with byte-identical files in its scan's DICOM resource.
    http = server.session(owner)
    listing = http.get(f"{server.url}/data/projects/{project}/experiments", params={"format": "json"}, timeout=30)
    assert listing.status_code == 200, listing.text
    labels = {row["label"] for row in listing.json()["ResultSet"]["Result"]}
    assert labels == set(sessions)
    for session, files in sessions.items():
        subject = session.split("_")[0]
        base = f"{server.url}/data/projects/{project}/subjects/{subject}/experiments/{session}"
        scans = http.get(f"{base}/scans", params={"format": "json"}, timeout=30).json()["ResultSet"]["Result"]
        assert len(scans) == 1, scans
        files_uri = f"{base}/scans/{scans[0]['ID']}/resources/DICOM/files"
        rows = http.get(files_uri, params={"format": "json"}, timeout=30).json()["ResultSet"]["Result"]
        assert {row["Name"]: row["digest"] for row in rows} == {
            path.name: hashlib.md5(path.read_bytes()).hexdigest() for path in files}

    # A rerun skips what is already uploaded and leaves everything as it was.
    run(uploader_bin, *upload, home=home, cwd=tmp_path)
    assert set(statuses(spreadsheet).values()) == {"success"}
    listing = http.get(f"{server.url}/data/projects/{project}/experiments", params={"format": "json"}, timeout=30)
    assert {row["label"] for row in listing.json()["ResultSet"]["Result"]} == set(sessions)
