"""pyxnat 1.6.4, unchanged, against `xnatkit serve`: CSV listings, select/exists,
insert of subject/experiment/scan/resource, file put (POST inbody to the numeric
resource ID) and get, resource zip."""

from __future__ import annotations

import csv
import hashlib
import io
import os
from pathlib import Path

import pytest
from conftest import unique
from pyxnat import Interface


@pytest.fixture(scope="module")
def owner(server):
    return server.create_user()


@pytest.fixture(scope="module")
def project_id(server, owner):
    return server.create_project(owner, accessibility="private")


@pytest.fixture
def interface(server, owner):
    intf = Interface(server=server.url, user=owner[0], password=owner[1])
    yield intf
    intf.disconnect()


def test_version_and_project_listing(interface, project_id):
    version = interface.version()
    assert version, "GET /data/version (or buildInfo) must give a version"
    assert project_id in interface.select.projects().get()


def test_insert_hierarchy_and_exists(interface, project_id):
    subject_label, session_label = unique("PSUB"), unique("PSESS")
    project = interface.select.project(project_id)
    subject = project.subject(subject_label)
    assert not subject.exists()
    subject.insert()
    assert subject.exists()
    experiment = subject.experiment(session_label)
    experiment.create(experiments="xnat:mrSessionData")
    assert experiment.exists()
    assert experiment.datatype() == "xnat:mrSessionData"
    scan = experiment.scan("9")
    scan.create(scans="xnat:mrScanData")
    assert scan.exists()
    resource = scan.resource("NIFTI")
    resource.create()
    assert resource.exists()

    # Listings come back in CSV; check they name what was created. (Not
    # Collection.get("label"): pyxnat switches to labels only after the first row.)
    assert subject_label in {s.label() for s in project.subjects()}
    assert session_label in {e.label() for e in subject.experiments()}
    assert "9" in experiment.scans().get()
    assert "NIFTI" in {r.label() for r in scan.resources()}


def test_file_put_get_and_resource_zip(interface, project_id, tmp_path):
    subject_label, session_label = unique("PSUB"), unique("PSESS")
    scan = interface.select.project(project_id).subject(subject_label).experiment(session_label).scan("3")
    scan.create(experiments="xnat:mrSessionData", scans="xnat:mrScanData")
    resource = scan.resource("DATA")
    resource.create()

    contents = {"first.txt": b"first file\n" * 50, "second.bin": os.urandom(70_000)}
    for name, content in contents.items():
        local = tmp_path / name
        local.write_bytes(content)
        resource.file(name).put(str(local))  # POST …/resources/<numeric id>/files/<name>?inbody=true

    assert sorted(resource.files().get()) == sorted(contents)
    for name, content in contents.items():
        remote = resource.file(name)
        assert int(remote.size()) == len(content)
        target = tmp_path / f"downloaded-{name}"
        remote.get(str(target))
        assert target.read_bytes() == content

    extract_dir = tmp_path / "zip"
    extract_dir.mkdir()
    extracted = resource.get(str(extract_dir), extract=True)
    # pyxnat re-roots the zip below the first "files" component: <dest>/<resource>/<name>.
    found = {os.path.relpath(path, extract_dir / "DATA"): Path(path).read_bytes() for path in extracted}
    assert found == contents


def test_file_listing_digests_in_csv(server, owner, project_id):
    """pyxnat reads Name, Size, URI and digest from the CSV files listing."""
    _subject_id, subject_label = server.create_subject(owner, project_id)
    _, session_label = server.create_session(owner, project_id, subject_label)
    resource_uri = f"/data/projects/{project_id}/subjects/{subject_label}/experiments/{session_label}/resources/CSV"
    content = b"csv digest check\n"
    server.upload_file(owner, resource_uri, "row.txt", content)
    http = server.session(owner)
    response = http.get(f"{server.url}{resource_uri}/files", params={"format": "csv"}, timeout=30)
    assert response.status_code == 200
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [row["Name"] for row in rows] == ["row.txt"]
    assert rows[0]["digest"] == hashlib.md5(content).hexdigest()
    assert rows[0]["Size"] == str(len(content))
    assert rows[0]["URI"].startswith("/data/") and "/files/row.txt" in rows[0]["URI"]


def test_delete_subject(interface, project_id):
    subject = interface.select.project(project_id).subject(unique("PDEL"))
    subject.insert()
    assert subject.exists()
    subject.delete()
    assert not subject.exists()
