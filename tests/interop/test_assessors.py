"""Image assessors with real clients, unchanged: xnatpy 0.8.1 creates and reads
a QC assessor and its files; pyxnat 1.6.4 creates a `proc:genProcData`
assessor and updates `procstatus` the way dax does (PUT with XPath
parameters, read back through a `columns=` listing); the REST forms
(`…/out/resources`, listings with `xsiType=`, zip downloads, DELETE) and the
permissions that follow the parent session."""

from __future__ import annotations

import io
import zipfile

import pytest
import requests
import xnat
from conftest import unique
from pyxnat import Interface

QC_FILES = {"qa.json": b'{"snr": 12.5}\n', "montage.png": b"\x89PNG fake but stored as sent\n"}


@pytest.fixture(scope="module")
def owner(server):
    return server.create_user()


@pytest.fixture(scope="module")
def session_ids(server, owner):
    project = server.create_project(owner, accessibility="private")
    _, subject = server.create_subject(owner, project)
    session_id, session_label = server.create_session(owner, project, subject)
    return {"project": project, "subject": subject, "session": session_id, "session_label": session_label}


def connect(server, auth):
    return xnat.connect(server.url, user=auth[0], password=auth[1], loglevel="ERROR")


def test_xnatpy_creates_and_reads_a_qc_assessor_with_files(server, owner, session_ids, tmp_path):
    label = unique("QC")
    with connect(server, owner) as session:
        experiment = session.experiments[session_ids["session"]]
        assessor = session.classes.QcAssessmentData(parent=experiment, label=label)
        assert assessor.id.startswith("XNAT_E"), assessor.id
        resource = session.classes.ResourceCatalog(parent=assessor, label="QA", format="JSON")
        for name, content in QC_FILES.items():
            local = tmp_path / name
            local.write_bytes(content)
            resource.upload(local, name)

    with connect(server, owner) as session:
        experiment = session.experiments[session_ids["session"]]
        assert label in experiment.assessors
        read = experiment.assessors[label]
        assert read.__xsi_type__ == "xnat:qcAssessmentData"
        assert read.label == label
        assert read.image_session_id == session_ids["session"]
        files = read.resources["QA"].files
        assert sorted(files.keys()) == sorted(QC_FILES)
        for name, content in QC_FILES.items():
            out = tmp_path / f"back-{name}"
            files[name].download(out, verbose=False)
            assert out.read_bytes() == content


def test_pyxnat_genproc_assessor_with_procstatus_as_dax_does(server, owner, session_ids):
    label = f"{session_ids['project']}-x-{session_ids['subject']}-x-{session_ids['session_label']}-x-dcm2niix"
    intf = Interface(server=server.url, user=owner[0], password=owner[1])
    try:
        assessor = (intf.select.project(session_ids["project"]).subject(session_ids["subject"])
                    .experiment(session_ids["session_label"]).assessor(label))
        assert not assessor.exists()
        assessor.create(assessors="proc:genProcData",
                        **{"proc:genProcData/proctype": "dcm2niix", "proc:genProcData/procstatus": "NEED_TO_RUN"})
        assert assessor.exists()
        assert assessor.attrs.get("proc:genProcData/procstatus") == "NEED_TO_RUN"
        assessor.attrs.mset({"proc:genProcData/procstatus": "JOB_RUNNING", "proc:genProcData/jobid": "4242"})
        assert assessor.attrs.get("proc:genProcData/procstatus") == "JOB_RUNNING"
        assert assessor.attrs.get("proc:genProcData/jobid") == "4242"
        assessor.attrs.set("proc:genProcData/validation/status", "Needs QA")
        assert assessor.attrs.get("proc:genProcData/validation/status") == "Needs QA"
        assert assessor.datatype() == "proc:genProcData"
    finally:
        intf.disconnect()


QC_DOCUMENT = """<xnat:QCAssessment xmlns:xnat="http://nrg.wustl.edu/xnat"
    xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" type="external-qa">
  <xnat:date>2026-12-06</xnat:date>
  <xnat:scans>
    <xnat:scan id="1"><xnat:scanStatistics xsi:type="xnat:statisticsData">
      <xnat:mean>101.5</xnat:mean>
      <xnat:additionalStatistics name="efc">0.4375</xnat:additionalStatistics>
    </xnat:scanStatistics></xnat:scan>
  </xnat:scans>
</xnat:QCAssessment>"""


def test_pyxnat_creates_a_qc_assessor_from_an_xml_document(server, owner, session_ids, tmp_path):
    """pyxnat's `create(xml=...)` (a multipart PUT of the document, the
    label set from the URL): the type, fields and per-scan statistics are
    stored, and xnatpy reads them back."""
    label = unique("QCXML")
    document = tmp_path / "qc.xml"
    document.write_text(QC_DOCUMENT)
    intf = Interface(server=server.url, user=owner[0], password=owner[1])
    try:
        assessor = (intf.select.project(session_ids["project"]).subject(session_ids["subject"])
                    .experiment(session_ids["session_label"]).assessor(label))
        assessor.create(xml=str(document))
        assert assessor.exists()
        assert assessor.datatype() == "xnat:qcAssessmentData"
    finally:
        intf.disconnect()
    with connect(server, owner) as session:
        experiment = session.experiments[session_ids["session"]]
        qc = experiment.assessors[label]
        assert qc.__xsi_type__ == "xnat:qcAssessmentData"
    http = server.session(owner)
    item = http.get(f"{server.url}/data/experiments/{session_ids['session']}/assessors/{label}",
                    params={"format": "json"}).json()["items"][0]
    assert item["data_fields"]["type"] == "external-qa"
    assert item["data_fields"]["label"] == label
    scan = item["children"][0]["items"][0]
    assert scan["data_fields"]["id"] == "1"
    stats = scan["children"][0]["items"][0]
    assert stats["data_fields"]["mean"] == "101.5"
    named = {a["data_fields"]["name"]: a["data_fields"]["additionalStatistics"]
             for a in stats["children"][0]["items"]}
    assert named["efc"] == "0.4375"


def test_rest_forms_listing_download_and_delete(server, owner, session_ids):
    http = server.session(owner)
    base = f"{server.url}/data/projects/{session_ids['project']}/subjects/{session_ids['subject']}" \
           f"/experiments/{session_ids['session_label']}/assessors"
    label = unique("ROI")
    created = http.put(f"{base}/{label}", params={"xsiType": "icr:roiCollectionData",
                                                  "icr:roiCollectionData/collectionType": "RTSTRUCT"})
    assert created.status_code == 201, created.text
    assessor_id = created.text.strip()
    # The `out/resources` form (XNAT's) and the plain one reach the same resource.
    put = http.put(f"{server.url}/data/experiments/{session_ids['session']}/assessors/{assessor_id}"
                   f"/out/resources/RTSTRUCT/files/rois.dcm", data=b"RTSTRUCT bytes")
    assert put.status_code in (200, 201), put.text
    listed = http.get(f"{base}/{label}/resources/RTSTRUCT/files", params={"format": "json"}).json()
    assert [row["Name"] for row in listed["ResultSet"]["Result"]] == ["rois.dcm"]

    rows = http.get(base, params={"format": "json", "xsiType": "icr:roiCollectionData"}).json()["ResultSet"]["Result"]
    assert [row["label"] for row in rows] == [label]
    assert rows[0]["ID"] == assessor_id and rows[0]["xsiType"] == "icr:roiCollectionData"
    csv_text = http.get(base, params={"format": "csv"}).text
    assert label in csv_text

    item = http.get(f"{base}/{assessor_id}", params={"format": "json"}).json()["items"][0]
    assert item["data_fields"]["collectionType"] == "RTSTRUCT"
    assert item["meta"]["xsi:type"] == "icr:roiCollectionData"

    zipped = http.get(f"{base}/{label}/files", params={"format": "zip"})
    assert zipped.status_code == 200
    names = zipfile.ZipFile(io.BytesIO(zipped.content)).namelist()
    assert names == [f"{session_ids['session_label']}/assessors/{label}/resources/RTSTRUCT/files/rois.dcm"]
    # A whole-session download includes the assessors' files.
    session_zip = http.get(f"{server.url}/data/experiments/{session_ids['session']}/files", params={"format": "zip"})
    assert session_zip.status_code == 200, session_zip.text
    assert any("/assessors/" in n for n in zipfile.ZipFile(io.BytesIO(session_zip.content)).namelist())

    # Labels share the project's experiment namespace.
    clash = http.put(f"{base}/{session_ids['session_label']}", params={"xsiType": "xnat:qcAssessmentData"})
    assert clash.status_code == 409, clash.text
    unknown = http.put(f"{base}/{label}", params={"icr:roiCollectionData/bogus": "x"})
    assert unknown.status_code == 400 and "bogus" in unknown.text

    assert http.delete(f"{base}/{label}").status_code == 200
    assert http.get(f"{base}/{label}", params={"format": "json"}).status_code == 404
    assert http.get(f"{base}/{label}/resources/RTSTRUCT/files/rois.dcm").status_code == 404


def test_permissions_follow_the_session(server, owner, session_ids):
    http = server.session(owner)
    base = f"{server.url}/data/experiments/{session_ids['session']}/assessors"
    label = unique("QCP")
    assert http.put(f"{base}/{label}", params={"xsiType": "xnat:qcManualAssessorData",
                                               "xnat:qcManualAssessorData/pass": "1"}).status_code == 201
    outsider = server.create_user()
    response = requests.get(f"{base}/{label}", params={"format": "json"}, auth=outsider, timeout=30)
    assert response.status_code in (403, 404)
    response = requests.put(f"{base}/{unique('QCX')}", params={"xsiType": "xnat:qcManualAssessorData"},
                            auth=outsider, timeout=30)
    assert response.status_code in (403, 404)
    listed = requests.get(base, params={"format": "json"}, auth=outsider, timeout=30)
    assert listed.status_code in (403, 404)

    reader = server.create_user()
    server.add_role(owner, session_ids["project"], "collaborator", reader[0])
    assert requests.get(f"{base}/{label}", params={"format": "json"}, auth=reader, timeout=30).status_code == 200
    assert requests.delete(f"{base}/{label}", auth=reader, timeout=30).status_code == 403
    assert requests.put(f"{base}/{label}", params={"xnat:qcManualAssessorData/pass": "0"}, auth=reader,
                        timeout=30).status_code == 403
