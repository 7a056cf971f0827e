"""Error answers: short plain text (never HTML) with XNAT's status codes;
invalid labels and unsafe file or archive-entry names are refused and leave
nothing behind; DELETE answers 200."""

from __future__ import annotations

import http.client
import io
import tarfile
import zipfile

import pytest
import requests
from conftest import unique


def assert_plain_error(response: requests.Response, status: int | set[int]) -> None:
    allowed = {status} if isinstance(status, int) else status
    where = f"{response.request.method} {response.request.path_url}"
    assert response.status_code in allowed, f"{where}: expected {sorted(allowed)}, got {response.status_code}"
    body = response.text
    assert not body.lstrip().startswith("<"), f"{where}: error body must not be HTML/XML: {body[:200]!r}"
    assert "html" not in response.headers.get("Content-Type", ""), f"{where}: {response.headers}"
    assert 0 < len(body) <= 500, f"{where}: error body should be one short line: {body[:600]!r}"


@pytest.fixture(scope="module")
def owner(server):
    return server.create_user()


@pytest.fixture(scope="module")
def place(server, owner):
    """A project with a subject and an MR session to hang resources on."""
    project = server.create_project(owner, accessibility="private")
    _, subject = server.create_subject(owner, project)
    _, session = server.create_session(owner, project, subject)
    return {"project": project, "subject": subject, "session": session,
            "session_uri": f"/data/projects/{project}/subjects/{subject}/experiments/{session}"}


def stored_files(server, owner, resource_uri: str) -> list[str]:
    response = requests.get(f"{server.url}{resource_uri}/files", params={"format": "json"}, auth=owner, timeout=30)
    if response.status_code == 404:
        return []
    assert response.status_code == 200, response.text
    return sorted(row["Name"] for row in response.json()["ResultSet"]["Result"])


def data_dir_names(server) -> set[str]:
    return {path.name for path in server.data_dir.rglob("*")}


@pytest.mark.parametrize("path", [
    "/data/projects/NOSUCHPROJECT",
    "/data/projects/NOSUCHPROJECT/subjects",
    "/data/subjects/XNAT_S99999",
    "/data/experiments/XNAT_E99999",
    "/data/experiments/XNAT_E99999/scans/1/resources/DICOM/files/x.dcm",
])
def test_not_found_is_plain_404(server, owner, path):
    assert_plain_error(requests.get(f"{server.url}{path}", params={"format": "json"}, auth=owner, timeout=30), 404)


def test_missing_objects_inside_a_project_are_404(server, owner, place):
    for tail in ("subjects/NOSUCH", "experiments/NOSUCH", "subjects/NOSUCH/experiments/NOSUCH"):
        response = requests.get(f"{server.url}/data/projects/{place['project']}/{tail}", params={"format": "json"},
                                auth=owner, timeout=30)
        assert_plain_error(response, 404)
    response = requests.get(f"{server.url}{place['session_uri']}/scans/77", params={"format": "json"}, auth=owner,
                            timeout=30)
    assert_plain_error(response, 404)


def test_missing_credentials_is_plain_401(server):
    assert_plain_error(requests.put(f"{server.url}/data/projects/{unique('P')}", timeout=30), 401)


@pytest.mark.parametrize("bad", ["bad.label", "bad label", "bad$label", "bäd"])
def test_invalid_labels_are_refused(server, owner, place, bad):
    project = place["project"]
    response = requests.put(f"{server.url}/data/projects/{project}/subjects/{bad}",
                            params={"xsiType": "xnat:subjectData"}, auth=owner, timeout=30)
    assert_plain_error(response, 417)
    response = requests.put(f"{server.url}/data/projects/{project}/subjects/{place['subject']}/experiments/{bad}",
                            params={"xsiType": "xnat:mrSessionData"}, auth=owner, timeout=30)
    assert_plain_error(response, 417)
    response = requests.put(f"{server.url}/data/projects/{bad}", auth=owner, timeout=30)
    assert_plain_error(response, 417)
    listing = requests.get(f"{server.url}/data/projects/{project}/subjects", params={"format": "json"}, auth=owner,
                           timeout=30).json()["ResultSet"]["Result"]
    assert all(row["label"] != bad for row in listing)


def test_relabel_to_a_label_in_use_is_409(server, owner, place):
    _, other = server.create_subject(owner, place["project"])
    response = requests.put(f"{server.url}/data/projects/{place['project']}/subjects/{other}",
                            params={"label": place["subject"]}, auth=owner, timeout=30)
    assert_plain_error(response, 409)


def raw_put(server, owner, path: str, body: bytes) -> int:
    """PUT with the path sent byte-for-byte: requests/urllib3 would resolve `..`."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        token = requests.auth._basic_auth_str(*owner)
        connection.request("PUT", path, body=body, headers={"Authorization": token,
                                                            "Content-Type": "application/octet-stream"})
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


@pytest.mark.parametrize("name", [
    "../escape.txt",
    "%2E%2E/escape.txt",
    "sub/../../escape.txt",
    "sub/%2e%2e/%2e%2e/escape.txt",
    "%2Fescape.txt",
    "..%2Fescape.txt",
])
def test_unsafe_file_names_are_refused(server, owner, place, name):
    resource_uri = f"{place['session_uri']}/resources/{unique('SAFE')}"
    assert requests.put(f"{server.url}{resource_uri}", auth=owner, timeout=30).status_code in (200, 201)
    status = raw_put(server, owner, f"{resource_uri}/files/{name}", b"must not be stored")
    assert 400 <= status < 500, f"PUT …/files/{name}: expected a 4xx refusal, got {status}"
    assert stored_files(server, owner, resource_uri) == []
    assert "escape.txt" not in data_dir_names(server), "an unsafe name was written somewhere in the data folder"


def zip_with(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        for name, content in entries.items():
            bundle.writestr(zipfile.ZipInfo(name), content)
    return buffer.getvalue()


def tar_gz_with(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as bundle:
        for name, content in entries.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            bundle.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


@pytest.mark.parametrize("kind,archive", [
    ("zip", zip_with({"fine.txt": b"ok", "../evil-zip.txt": b"bad"})),
    ("zip", zip_with({"fine.txt": b"ok", "/tmp/evil-zip-abs.txt": b"bad"})),
    ("tar.gz", tar_gz_with({"fine.txt": b"ok", "../../evil-tar.txt": b"bad"})),
    ("tar.gz", tar_gz_with({"fine.txt": b"ok", "/evil-tar-abs.txt": b"bad"})),
])
def test_unsafe_archive_entries_are_refused_whole(server, owner, place, kind, archive):
    resource_uri = f"{place['session_uri']}/resources/{unique('ARCH')}"
    assert requests.put(f"{server.url}{resource_uri}", auth=owner, timeout=30).status_code in (200, 201)
    response = requests.put(f"{server.url}{resource_uri}/files/upload.{kind}", params={"extract": "true"},
                            data=archive, auth=owner, timeout=30,
                            headers={"Content-Type": "application/octet-stream"})
    assert_plain_error(response, {400, 403, 415, 422})
    assert stored_files(server, owner, resource_uri) == [], "a refused archive must leave nothing, not even fine.txt"
    names = data_dir_names(server)
    assert not {"evil-zip.txt", "evil-zip-abs.txt", "evil-tar.txt", "evil-tar-abs.txt"} & names


def test_delete_answers_200_at_every_level(server, owner):
    project = server.create_project(owner, accessibility="private")
    _, subject = server.create_subject(owner, project)
    _, session = server.create_session(owner, project, subject)
    session_uri = f"/data/projects/{project}/subjects/{subject}/experiments/{session}"
    scan = requests.put(f"{server.url}{session_uri}/scans/1", params={"xsiType": "xnat:mrScanData"}, auth=owner,
                        timeout=30)
    assert scan.status_code in (200, 201), scan.text
    resource_uri = f"{session_uri}/scans/1/resources/DICOM"
    server.upload_file(owner, resource_uri, "a.dcm", b"a")
    server.upload_file(owner, resource_uri, "b.dcm", b"b")

    for uri in (f"{resource_uri}/files/a.dcm", resource_uri, f"{session_uri}/scans/1", session_uri,
                f"/data/projects/{project}/subjects/{subject}"):
        response = requests.delete(f"{server.url}{uri}", auth=owner, timeout=30)
        assert response.status_code == 200, f"DELETE {uri}: {response.status_code} {response.text[:200]}"
        gone = requests.get(f"{server.url}{uri}", params={"format": "json"}, auth=owner, timeout=30)
        assert gone.status_code == 404, f"GET {uri} after DELETE: {gone.status_code}"
