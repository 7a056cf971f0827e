"""Downloads with plain HTTP, as curl users and the clients' lower layers see
them: HTTP Range, HEAD, format-less JSON file listings, scan selections
(`ALL`, `1,2`), zip and tar.gz with XNAT's entry layout, session resources, and
overwrite rules on upload."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
import zipfile

import pytest
import requests

SCANS = {
    "1": ("T1 MPRAGE", "DICOM", {"a.dcm": os.urandom(3000), "b.dcm": os.urandom(5000)}),
    "2": ("dwi", "NIFTI", {"dwi.nii.gz": os.urandom(20_000), "sub/bvals.txt": b"0 1000 1000\n"}),
}
SESSION_RESOURCE = ("NOTES", {"report.txt": b"session-level report\n"})


@pytest.fixture(scope="module")
def owner(server):
    return server.create_user()


@pytest.fixture(scope="module")
def session(server, owner):
    project = server.create_project(owner, accessibility="private")
    _, subject = server.create_subject(owner, project)
    experiment_id, label = server.create_session(owner, project, subject)
    uri = f"/data/projects/{project}/subjects/{subject}/experiments/{label}"
    for scan, (scan_type, resource, files) in SCANS.items():
        response = requests.put(f"{server.url}{uri}/scans/{scan}",
                                params={"xsiType": "xnat:mrScanData", "xnat:mrScanData/type": scan_type},
                                auth=owner, timeout=30)
        assert response.status_code in (200, 201), response.text
        for name, content in files.items():
            server.upload_file(owner, f"{uri}/scans/{scan}/resources/{resource}", name, content)
    name, files = SESSION_RESOURCE
    for file_name, content in files.items():
        server.upload_file(owner, f"{uri}/resources/{name}", file_name, content)
    return {"uri": uri, "id": experiment_id, "label": label}


def get(server, owner, path: str, **kwargs) -> requests.Response:
    return requests.get(f"{server.url}{path}", auth=owner, timeout=60, **kwargs)


def scan_entries(label: str, scans) -> dict[str, bytes]:
    entries = {}
    for scan in scans:
        scan_type, resource, files = SCANS[scan]
        safe_type = "".join(c if c.isalnum() or c in "_-" else "_" for c in scan_type)
        for name, content in files.items():
            entries[f"{label}/scans/{scan}-{safe_type}/resources/{resource}/files/{name}"] = content
    return entries


def zip_entries(body: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(body)) as bundle:
        return {info.filename: bundle.read(info) for info in bundle.infolist() if not info.is_dir()}


def tar_entries(body: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as bundle:
        return {member.name: bundle.extractfile(member).read() for member in bundle.getmembers() if member.isfile()}


def test_range_requests_on_a_file(server, owner, session):
    content = SCANS["2"][2]["dwi.nii.gz"]
    path = f"{session['uri']}/scans/2/resources/NIFTI/files/dwi.nii.gz"
    middle = get(server, owner, path, headers={"Range": "bytes=100-1099"})
    assert middle.status_code == 206, middle.status_code
    assert middle.content == content[100:1100]
    assert middle.headers.get("Content-Range") == f"bytes 100-1099/{len(content)}"
    tail = get(server, owner, path, headers={"Range": "bytes=19000-"})
    assert tail.status_code == 206 and tail.content == content[19000:]
    whole = get(server, owner, path)
    assert whole.status_code == 200 and whole.content == content


def test_head_gives_content_length(server, owner, session):
    content = SCANS["1"][2]["b.dcm"]
    response = requests.head(f"{server.url}{session['uri']}/scans/1/resources/DICOM/files/b.dcm", auth=owner,
                             timeout=30)
    assert response.status_code == 200
    assert response.headers.get("Content-Length") == str(len(content))


def test_file_listing_without_format_is_json_with_md5(server, owner, session):
    response = get(server, owner, f"{session['uri']}/scans/2/resources/NIFTI/files")
    assert response.status_code == 200
    rows = response.json()["ResultSet"]["Result"]
    files = SCANS["2"][2]
    by_path = {}
    for row in rows:
        # The listed URI must itself download the file (xnatpy uses it verbatim).
        assert "/resources/" in row["URI"] and "/files/" in row["URI"], row
        by_path[row["URI"].split("/files/", 1)[1]] = row
    assert set(by_path) == set(files)
    for path, content in files.items():
        assert by_path[path]["digest"] == hashlib.md5(content).hexdigest()
        assert by_path[path]["Size"] == str(len(content))
        assert get(server, owner, by_path[path]["URI"]).content == content


@pytest.mark.parametrize("selection,scans", [("ALL", ["1", "2"]), ("1", ["1"]), ("1,2", ["1", "2"]), ("2", ["2"])])
def test_scan_selection_zip(server, owner, session, selection, scans):
    response = get(server, owner, f"/data/experiments/{session['id']}/scans/{selection}/files",
                   params={"format": "zip"})
    assert response.status_code == 200, response.text[:200]
    assert zip_entries(response.content) == scan_entries(session["label"], scans)


def test_session_tar_gz_matches_zip(server, owner, session):
    response = get(server, owner, f"{session['uri']}/scans/ALL/files", params={"format": "tar.gz"})
    assert response.status_code == 200, response.text[:200]
    assert tar_entries(response.content) == scan_entries(session["label"], ["1", "2"])


def test_session_resource_zip(server, owner, session):
    name, files = SESSION_RESOURCE
    response = get(server, owner, f"{session['uri']}/resources/{name}/files", params={"format": "zip"})
    assert response.status_code == 200, response.text[:200]
    assert zip_entries(response.content) == {
        f"{session['label']}/resources/{name}/files/{file_name}": content for file_name, content in files.items()}


def test_empty_selection_is_404(server, owner, session):
    response = get(server, owner, f"{session['uri']}/scans/99/files", params={"format": "zip"})
    assert response.status_code == 404
    assert not response.text.lstrip().startswith("<")


def test_upload_over_existing_file_needs_overwrite(server, owner, session):
    resource = f"{session['uri']}/resources/OVERWRITE"
    server.upload_file(owner, resource, "same.txt", b"first version\n")
    again = requests.put(f"{server.url}{resource}/files/same.txt", data=b"second version\n", auth=owner, timeout=30,
                         headers={"Content-Type": "application/octet-stream"})
    assert 400 <= again.status_code < 500, f"re-upload without overwrite: {again.status_code}"
    assert get(server, owner, f"{resource}/files/same.txt").content == b"first version\n"
    forced = requests.put(f"{server.url}{resource}/files/same.txt", params={"overwrite": "true"},
                          data=b"second version\n", auth=owner, timeout=30,
                          headers={"Content-Type": "application/octet-stream"})
    assert forced.status_code in (200, 201), forced.text
    assert get(server, owner, f"{resource}/files/same.txt").content == b"second version\n"
    rows = get(server, owner, f"{resource}/files", params={"format": "json"}).json()["ResultSet"]["Result"]
    assert [row["digest"] for row in rows] == [hashlib.md5(b"second version\n").hexdigest()]
