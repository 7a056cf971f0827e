"""Sharing subjects and experiments into another project, and the experiment
status, with unchanged xnatpy 0.8.1 and pyxnat 1.6.4 (`SubjectData.label` in
the shared project, `/status`, sharing and activating through xnatpy).

Layout of every test: P1 (private) belongs to `owner`; P2 (private) belongs
to `other_owner`, with `owner` as member (so they may share into it) and
`reader` as member of P2 only: the data must reach `reader` through P2 and
nowhere else."""

from __future__ import annotations

import csv
import hashlib
import io
import zipfile

import pytest
import requests
import xnat
from conftest import unique
from pyxnat import Interface

CONTENT = b"shared scan file\n" * 50


def connect(server, auth):
    return xnat.connect(server.url, user=auth[0], password=auth[1], loglevel="ERROR")


@pytest.fixture
def projects(server):
    owner, other_owner, reader = server.create_user(), server.create_user(), server.create_user()
    p1 = server.create_project(owner, accessibility="private")
    p2 = server.create_project(other_owner, accessibility="private")
    server.add_role(other_owner, p2, "member", owner[0])
    server.add_role(other_owner, p2, "member", reader[0])
    return {"owner": owner, "other_owner": other_owner, "reader": reader, "p1": p1, "p2": p2}


def build_session(server, session, project_id):
    """Subject → MR session → scan 7 → NIFTI resource with one file, through
    xnatpy's generated classes; returns (subject, experiment, labels)."""
    labels = {"subject": unique("SHSUB"), "session": unique("SHSESS")}
    project = session.projects[project_id]
    subject = session.classes.SubjectData(parent=project, label=labels["subject"])
    experiment = session.classes.MrSessionData(parent=subject, label=labels["session"])
    scan = session.classes.MrScanData(parent=experiment, id="7", type="T1w", series_description="T1")
    resource = session.classes.ResourceCatalog(parent=scan, label="NIFTI", format="NIFTI")
    resource.upload_data(CONTENT, "image.nii")
    return subject, experiment, labels


def test_xnatpy_share_is_read_through_the_other_project(server, projects, tmp_path):
    p1, p2 = projects["p1"], projects["p2"]
    with connect(server, projects["owner"]) as session:
        subject, experiment, labels = build_session(server, session, p1)
        subject_id, experiment_id = subject.id, experiment.id
        subject.share(p2, label=labels["subject"] + "_P2")
        experiment.share(p2, label=labels["session"] + "_P2")
    subject_p2, session_p2 = labels["subject"] + "_P2", labels["session"] + "_P2"

    with connect(server, projects["reader"]) as session:
        assert p2 in session.projects and p1 not in session.projects
        project = session.projects[p2]
        # Listings of P2 name the shared objects by their P2 labels.
        assert [s.label for s in project.subjects.values()] == [subject_p2]
        assert [e.label for e in project.experiments.values()] == [session_p2]
        subject = project.subjects[subject_p2]
        assert subject.id == subject_id
        assert subject.label == subject_p2
        assert subject.fulldata["data_fields"]["project"] == p1, "the owning project, as XNAT reports it"
        experiment = subject.experiments[session_p2]
        assert experiment.id == experiment_id
        assert experiment.label == session_p2
        assert experiment.status == "active"
        # Files through P2: digest-checked download and the zip of the session.
        remote = experiment.scans["7"].resources["NIFTI"].files["image.nii"]
        assert remote.digest == hashlib.md5(CONTENT).hexdigest()
        remote.download(tmp_path / "image.nii", verbose=False)
        assert (tmp_path / "image.nii").read_bytes() == CONTENT
        experiment.download_dir(tmp_path / "dir", verbose=False)
        assert (tmp_path / "dir" / session_p2 / "scans" / "7-T1w" / "resources" / "NIFTI" / "files" /
                "image.nii").read_bytes() == CONTENT
        # Changes through P2 are refused; the share stays as it was.
        with pytest.raises(xnat.exceptions.XNATResponseError):
            experiment.label = "RENAMED"
        with pytest.raises(xnat.exceptions.XNATResponseError):
            experiment.quarantine()

    # Without a label from a listing, xnatpy takes it from the item's
    # sharing/share child for the project in the URI.
    with connect(server, projects["reader"]) as session:
        subject = session.create_object(f"/data/projects/{p2}/subjects/{subject_id}",
                                        type_="xnat:subjectData", id_=subject_id)
        assert subject.label == subject_p2
        experiment = session.create_object(f"/data/projects/{p2}/experiments/{experiment_id}",
                                           type_="xnat:mrSessionData", id_=experiment_id)
        assert experiment.label == session_p2

    # The owner still sees the data under its own labels in P1.
    with connect(server, projects["owner"]) as session:
        subject = session.projects[p1].subjects[labels["subject"]]
        assert subject.label == labels["subject"]
        assert [e.label for e in subject.experiments.values()] == [labels["session"]]


def test_xnatpy_share_rules_and_unshare(server, projects):
    p1, p2 = projects["p1"], projects["p2"]
    with connect(server, projects["other_owner"]) as session:
        taken = session.classes.SubjectData(parent=session.projects[p2], label=unique("TAKEN")).label
    with connect(server, projects["owner"]) as session:
        subject, experiment, labels = build_session(server, session, p1)
        experiment_id = experiment.id
        with pytest.raises(xnat.exceptions.XNATResponseError, match="409"):
            subject.share(p2, label=taken)
        subject.share(p2)  # default label: its own
        subject.share(p2)  # again: nothing changes
        experiment.share(p2)
    with connect(server, projects["reader"]) as session:
        assert sorted(s.label for s in session.projects[p2].subjects.values()) == sorted([labels["subject"], taken])
    # The owner of P2 removes the share with a DELETE through P2.
    with connect(server, projects["other_owner"]) as session:
        session.projects[p2].experiments[labels["session"]].delete()
    with connect(server, projects["reader"]) as session:
        assert list(session.projects[p2].experiments.values()) == []
    with connect(server, projects["owner"]) as session:
        assert session.experiments[experiment_id].label == labels["session"]


def test_xnatpy_experiment_status_activate_quarantine(server, projects):
    with connect(server, projects["owner"]) as session:
        _subject, experiment, labels = build_session(server, session, projects["p1"])
        assert experiment.status == "active"
        experiment.quarantine()
        assert experiment.status == "quarantine"
    with connect(server, projects["owner"]) as session:
        experiment = session.projects[projects["p1"]].experiments[labels["session"]]
        assert experiment.status == "quarantine"
        experiment.activate()
        assert experiment.status == "active"
        experiment.status = "quarantined"  # xnatpy's setter spelling
        assert experiment.status == "quarantine"


def csv_rows(server, auth, path):
    response = requests.get(f"{server.url}{path}", params={"format": "csv"}, auth=auth, timeout=30)
    assert response.status_code == 200, f"GET {path}: {response.status_code} {response.text[:200]}"
    return list(csv.DictReader(io.StringIO(response.text)))


def test_pyxnat_share_and_unshare(server, projects):
    p1, p2 = projects["p1"], projects["p2"]
    subject_label, session_label = unique("PYSH"), unique("PYSHE")
    owner = Interface(server=server.url, user=projects["owner"][0], password=projects["owner"][1])
    try:
        subject = owner.select.project(p1).subject(subject_label)
        subject.insert()
        experiment = subject.experiment(session_label)
        experiment.create(experiments="xnat:mrSessionData")
        resource = experiment.resource("NOTES")
        resource.create()
        resource.file("n.txt").insert(b"pyxnat note\n", format="TXT")

        subject.share(p2, label=subject_label + "_P2")
        experiment.share(p2)  # default: its own label
        assert sorted(subject.shares().get()) == sorted([p1, p2])
        assert sorted(experiment.shares().get()) == sorted([p1, p2])
    finally:
        owner.disconnect()

    reader = Interface(server=server.url, user=projects["reader"][0], password=projects["reader"][1])
    try:
        shared = reader.select.project(p2).subject(subject_label + "_P2")
        assert shared.exists()
        assert shared.label() == subject_label + "_P2"
        assert reader.select.project(p2).experiment(session_label).exists()
        assert not reader.select.project(p1).subject(subject_label).exists()
    finally:
        reader.disconnect()
    rows = csv_rows(server, projects["reader"], f"/data/projects/{p2}/experiments")
    assert [(r["label"], r["project"]) for r in rows] == [(session_label, p1)]
    zipped = requests.get(f"{server.url}/data/projects/{p2}/experiments/{session_label}/resources/NOTES/files",
                          params={"format": "zip"}, auth=projects["reader"], timeout=30)
    assert zipped.status_code == 200
    with zipfile.ZipFile(io.BytesIO(zipped.content)) as bundle:
        assert bundle.namelist() == [f"{session_label}/resources/NOTES/files/n.txt"]

    owner = Interface(server=server.url, user=projects["owner"][0], password=projects["owner"][1])
    try:
        owner.select.project(p1).subject(subject_label).unshare(p2)
        owner.select.project(p1).subject(subject_label).experiment(session_label).unshare(p2)
        assert owner.select.project(p1).subject(subject_label).shares().get() == [p1]
    finally:
        owner.disconnect()
    assert csv_rows(server, projects["reader"], f"/data/projects/{p2}/subjects") == []
    assert csv_rows(server, projects["reader"], f"/data/projects/{p2}/experiments") == []
