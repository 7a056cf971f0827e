"""xnatpy 0.8.1, unchanged, against `xnatkit serve`: connect, browse, create,
upload, download, fields and alias-token login."""

from __future__ import annotations

import hashlib
import re
import zipfile

import pytest
import xnat
from conftest import unique

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")

# Contents chosen to be distinct so a mix-up between files shows in the digest.
FILES = {
    "image one.nii": b"NIfTI-ish payload with a space in its name\n" * 100,
    "sub/dir/notes.txt": b"nested file\n",
    "pattern.bin": bytes(range(256)) * 40,
}


def connect(server, auth):
    return xnat.connect(server.url, user=auth[0], password=auth[1], loglevel="ERROR")


@pytest.fixture(scope="module")
def owner(server):
    return server.create_user()


@pytest.fixture(scope="module")
def archive(server, owner, tmp_path_factory):
    """Builds project → subject → MR session → scan → resource with FILES through
    xnatpy's generated classes, and returns the labels used."""
    project_id = server.create_project(owner, accessibility="private")
    labels = {"project": project_id, "subject": unique("XSUB"), "session": unique("XSESS"),
              "scan": "7", "scan_type": "T1w MPRAGE", "resource": "NIFTI"}
    source = tmp_path_factory.mktemp("xnatpy-upload")
    with connect(server, owner) as session:
        project = session.projects[project_id]
        subject = session.classes.SubjectData(parent=project, label=labels["subject"])
        experiment = session.classes.MrSessionData(parent=subject, label=labels["session"])
        scan = session.classes.MrScanData(parent=experiment, id=labels["scan"], type=labels["scan_type"],
                                          series_description="T1 weighted")
        resource = session.classes.ResourceCatalog(parent=scan, label=labels["resource"], format="NIFTI")
        for remote, content in FILES.items():
            local = source / remote.replace("/", "_")
            local.write_bytes(content)
            resource.upload(local, remote)
    return labels


def browse_to_resource(session, labels):
    project = session.projects[labels["project"]]
    subject = project.subjects[labels["subject"]]
    experiment = subject.experiments[labels["session"]]
    scan = experiment.scans[labels["scan"]]
    return project, subject, experiment, scan, scan.resources[labels["resource"]]


def test_connect_sees_own_project_and_disconnects(server, owner, archive):
    session = connect(server, owner)
    try:
        assert archive["project"] in session.projects
        assert session.projects[archive["project"]].name == f"Project {archive['project']}"
    finally:
        session.disconnect()


def test_wrong_password_fails_login(server, owner):
    with pytest.raises(xnat.exceptions.XNATLoginFailedError):
        xnat.connect(server.url, user=owner[0], password=owner[1] + "-wrong", loglevel="ERROR")


def test_browse_hierarchy_from_a_new_connection(server, owner, archive):
    with connect(server, owner) as session:
        project, subject, experiment, scan, resource = browse_to_resource(session, archive)
        assert subject.label == archive["subject"]
        assert re.fullmatch(r"XNAT_S\d{5}", subject.id), subject.id
        assert experiment.label == archive["session"]
        assert re.fullmatch(r"XNAT_E\d{5}", experiment.id), experiment.id
        assert isinstance(experiment, session.classes.MrSessionData)
        assert isinstance(scan, session.classes.MrScanData)
        assert scan.type == archive["scan_type"]
        assert scan.series_description == "T1 weighted"
        assert resource.label == archive["resource"]
        assert sorted(resource.files.keys()) == sorted(FILES)
        assert int(resource.file_count) == len(FILES)
        assert int(resource.file_size) == sum(len(c) for c in FILES.values())
        # The same objects through the short site-wide listings.
        assert session.experiments[experiment.id].label == archive["session"]
        assert session.subjects[subject.id].label == archive["subject"]


def test_file_download_is_verified_against_digest(server, owner, archive, tmp_path):
    with connect(server, owner) as session:
        *_, resource = browse_to_resource(session, archive)
        for name, content in FILES.items():
            remote = resource.files[name]
            assert remote.digest == hashlib.md5(content).hexdigest(), name
            assert int(remote.size) == len(content), name  # xnatpy: the HEAD Content-Length, as text
            target = tmp_path / name.replace("/", "_")
            remote.download(target, verbose=False)  # xnatpy raises on an MD5 mismatch
            assert target.read_bytes() == content, name


def expected_scan_entries(archive):
    scan_dir = f"{archive['scan']}-{re.sub(r'[^A-Za-z0-9_-]', '_', archive['scan_type'])}"
    prefix = f"{archive['session']}/scans/{scan_dir}/resources/{archive['resource']}/files"
    return {f"{prefix}/{name}": content for name, content in FILES.items()}


def test_scan_zip_download_has_xnat_layout(server, owner, archive, tmp_path):
    with connect(server, owner) as session:
        *_, scan, _resource = browse_to_resource(session, archive)
        target = tmp_path / "scan.zip"
        scan.download(target, verbose=False)
    with zipfile.ZipFile(target) as bundle:
        entries = {info.filename: bundle.read(info) for info in bundle.infolist() if not info.is_dir()}
    assert entries == expected_scan_entries(archive)


def test_subject_download_dir_layout(server, owner, archive, tmp_path):
    with connect(server, owner) as session:
        _project, subject, *_ = browse_to_resource(session, archive)
        subject.download_dir(tmp_path, verbose=False)
    subject_dir = tmp_path / archive["subject"]
    found = {str(p.relative_to(subject_dir)): p.read_bytes() for p in subject_dir.rglob("*") if p.is_file()}
    assert found == expected_scan_entries(archive)


def test_upload_dir_extracts_tar_gz_on_server(server, owner, archive, tmp_path):
    tree = {"a.txt": b"alpha\n", "deeper/b.txt": b"beta\n", "deeper/more/c.bin": b"\x00\x01\x02" * 1000}
    for rel, content in tree.items():
        (tmp_path / "tree" / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "tree" / rel).write_bytes(content)
    with connect(server, owner) as session:
        *_, experiment, _scan, _resource = browse_to_resource(session, archive)
        resource = experiment.create_resource(unique("TREE"))
        resource.upload_dir(tmp_path / "tree", method="tgz_file")
        label = resource.label
    with connect(server, owner) as session:
        *_, experiment, _scan, _resource = browse_to_resource(session, archive)
        files = experiment.resources[label].files
        assert sorted(files.keys()) == sorted(tree), "the archive must be unpacked, and not stored itself"
        for rel, content in tree.items():
            assert files[rel].digest == hashlib.md5(content).hexdigest(), rel


def test_fields_round_trip_through_a_new_connection(server, owner, archive):
    with connect(server, owner) as session:
        _project, subject, experiment, *_ = browse_to_resource(session, archive)
        experiment.fields["brain_volume"] = "1234.5"
        experiment.fields["site"] = "north wing"
        subject.fields["cohort"] = "control"
    with connect(server, owner) as session:
        _project, subject, experiment, *_ = browse_to_resource(session, archive)
        assert experiment.fields["brain_volume"] == "1234.5"
        assert experiment.fields["site"] == "north wing"
        assert subject.fields["cohort"] == "control"
        experiment.fields["site"] = "south wing"
    with connect(server, owner) as session:
        _project, _subject, experiment, *_ = browse_to_resource(session, archive)
        assert experiment.fields["site"] == "south wing"


def test_alias_token_login(server, owner, archive):
    with connect(server, owner) as session:
        token = session.services.issue_token()
    assert UUID_RE.match(token.alias), f"alias {token.alias!r} must be UUID-shaped for xnatpy"
    assert token.secret and token.secret != owner[1]
    with connect(server, (token.alias, token.secret)) as session:
        assert archive["project"] in session.projects
        _project, subject, *_ = browse_to_resource(session, archive)
        assert subject.label == archive["subject"]


def test_other_user_does_not_see_private_project(server, archive):
    stranger = server.create_user()
    with connect(server, stranger) as session:
        assert archive["project"] not in session.projects


def test_delete_file_through_xnatpy(server, owner, archive, tmp_path):
    with connect(server, owner) as session:
        *_, experiment, _scan, _resource = browse_to_resource(session, archive)
        resource = experiment.create_resource(unique("DEL"))
        resource.upload_data(b"to be removed", "gone.txt")
        resource.upload_data(b"to be kept", "kept.txt")
        resource.files["gone.txt"].delete()
        label = resource.label
    with connect(server, owner) as session:
        *_, experiment, _scan, _resource = browse_to_resource(session, archive)
        assert sorted(experiment.resources[label].files.keys()) == ["kept.txt"]
