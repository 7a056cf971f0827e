"""xnatpy 0.8.1, unchanged, against the import service, the prearchive and the
DICOM dump: `services.import_` to the archive and to
the prearchive, `prearchive.sessions()`, `PrearchiveSession.archive(...)`,
`scan.dicom_dump(fields=...)`."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
import xnat
from conftest import unique
from dicom_tree import write_series
from pydicom.uid import generate_uid


def connect(server, auth):
    return xnat.connect(server.url, user=auth[0], password=auth[1], loglevel="ERROR")


@pytest.fixture(scope="module")
def owner(server):
    return server.create_user()


def study_zip(tmp_path: Path, patient_id: str, series: int = 2, per_series: int = 3) -> Path:
    """A zip of a generated study, laid out as xnatpy's `import_dir` would zip it."""
    study_uid = generate_uid()
    root = tmp_path / "Case001"
    for number in range(1, series + 1):
        write_series(root / "scans" / f"{number}_series" / "DICOM", per_series,
                     patient_name="Interop^Patient", patient_id=patient_id, study_date="20240131",
                     study_uid=study_uid, series_number=number, modality="MR",
                     series_description=f"Series {number}")
    archive = tmp_path / f"{patient_id}.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(root.rglob("*.dcm")):
            zf.write(path, path.relative_to(tmp_path))
    return archive


def test_import_to_archive_and_dicom_dump(server, owner, tmp_path):
    project_id = server.create_project(owner, accessibility="private")
    subject, session_label = unique("ISUB"), unique("ISESS")
    archive = study_zip(tmp_path, "PID-A")
    with connect(server, owner) as session:
        experiment = session.services.import_(archive, project=project_id, subject=subject,
                                              experiment=session_label, destination="/archive")
        assert experiment.label == session_label
        assert experiment.__xsi_type__ == "xnat:mrSessionData"
        project = session.projects[project_id]
        fetched = project.subjects[subject].experiments[session_label]
        assert sorted(fetched.scans.keys(), key=int) == ["1", "2"]
        scan = fetched.scans["1"]
        assert scan.series_description == "Series 1"
        files = scan.resources["DICOM"].files
        assert len(files) == 3
        dump = scan.dicom_dump(fields=["PatientID", "00080060"])
        values = {row["tag1"]: row["value"] for row in dump}
        assert values == {"(0010,0020)": "PID-A", "(0008,0060)": "MR"}
        assert {"tag1", "tag2", "vr", "value", "desc"} <= set(dump[0])


def test_tutorial_import_without_destination_is_archived(server, owner, tmp_path):
    """The xnatpy tutorial's `import_(zip, project=, subject=, experiment=)`:
    a new project auto-archives (prearchive_code 4, XNAT 1.8's default), so
    the call answers an archived experiment, not a prearchive session."""
    project_id = server.create_project(owner, accessibility="private")
    subject, session_label = unique("TSUB"), unique("TSESS")
    archive = study_zip(tmp_path, "PID-T")
    with connect(server, owner) as session:
        code = session.get(f"/data/projects/{project_id}/prearchive_code").text
        assert code.strip() == "4"
        experiment = session.services.import_(archive, project=project_id, subject=subject,
                                              experiment=session_label)
        assert type(experiment).__name__ != "PrearchiveSession"
        assert experiment.label == session_label
        fetched = session.projects[project_id].subjects[subject].experiments[session_label]
        assert sorted(fetched.scans.keys(), key=int) == ["1", "2"]
        assert session.prearchive.sessions(project=project_id) == []


def test_import_fills_scanner_fields_from_headers(server, owner, tmp_path):
    """Issue 3: the header fields reach xnatpy's generated attributes (the XSD
    declares them) as well as the raw JSON data_fields."""
    project_id = server.create_project(owner, accessibility="private")
    subject, session_label = unique("HSUB"), unique("HSESS")
    archive = study_zip(tmp_path, "PID-H", series=1, per_series=2)
    with connect(server, owner) as session:
        session.services.import_(archive, project=project_id, subject=subject,
                                 experiment=session_label, destination="/archive")
        fetched = session.projects[project_id].subjects[subject].experiments[session_label]
        assert fetched.dcm_patient_id == "PID-H"
        assert fetched.dcm_patient_name == "Interop^Patient"
        fields = fetched.data
        assert fields["scanner"] == "LOOPBACK"
        assert fields["scanner/manufacturer"] == "xnatkit-tests"
        assert fields["scanner/model"] == "synthetic"
        scan = fetched.scans["1"]
        assert scan.data["scanner/manufacturer"] == "xnatkit-tests"
        # XNAT's schema makes `scanner` an element with attributes, so xnatpy
        # generates a sub-object: manufacturer/model are attributes of it and
        # the StationName text is only in the raw data.
        assert fetched.scanner.manufacturer == "xnatkit-tests"
        assert fetched.scanner.model == "synthetic"
        assert scan.scanner.manufacturer == "xnatkit-tests"
        assert scan.scanner.model == "synthetic"
        assert scan.data["scanner"] == "LOOPBACK"
        assert scan.series_class == "MR"


def test_import_to_prearchive_then_archive(server, owner, tmp_path):
    project_id = server.create_project(owner, accessibility="private")
    subject, session_label = unique("PSUB"), unique("PSESS")
    archive = study_zip(tmp_path, "PID-P", series=1, per_series=2)
    with connect(server, owner) as session:
        prearchived = session.services.import_(archive, project=project_id, subject=subject,
                                               experiment=session_label, destination="/prearchive")
        assert type(prearchived).__name__ == "PrearchiveSession"
        listed = [s for s in session.prearchive.sessions(project=project_id)]
        assert len(listed) == 1
        found = listed[0]
        assert found.name == session_label
        assert found.status == "READY"
        assert found.subject == subject
        assert found.uploaded is not None
        assert found.lastmod is not None
        scans = found.scans
        assert [s.id for s in scans] == ["1"]
        assert len(scans[0].files) == 2
        assert found.id in [s.id for s in session.prearchive.sessions()]
        dump = scans[0].dicom_dump(fields=["PatientID"])
        assert dump[0]["value"] == "PID-P"

        relabelled = unique("ARCH")
        experiment = found.archive(subject=subject, experiment=relabelled)
        assert experiment.label == relabelled
        assert session.prearchive.sessions(project=project_id) == []
        project = session.projects[project_id]
        assert relabelled in project.subjects[subject].experiments


def test_import_conflict_and_unparsable(server, owner, tmp_path):
    project_id = server.create_project(owner, accessibility="private")
    archive = study_zip(tmp_path, "PID-C", series=1, per_series=1)
    with zipfile.ZipFile(archive, "a") as zf:
        zf.writestr("Case001/README.txt", "not DICOM")
    with connect(server, owner) as session:
        with pytest.raises(xnat.exceptions.XNATError) as refused:
            session.services.import_(archive, project=project_id, subject="S", experiment="E",
                                     destination="/archive")
        assert "README.txt" in str(refused.value)
        experiment = session.services.import_(archive, project=project_id, subject="S", experiment="E",
                                              destination="/archive", ignore_unparsable=True)
        assert experiment.label == "E"
        with pytest.raises(xnat.exceptions.XNATError) as conflict:
            session.services.import_(archive, project=project_id, subject="S", experiment="E",
                                     destination="/archive", ignore_unparsable=True)
        assert "already exists" in str(conflict.value)
