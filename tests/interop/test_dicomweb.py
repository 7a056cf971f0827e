"""DICOMweb with a real, unchanged client: dicomweb-client 0.61.2 stores real CT
slices through STOW-RS, searches studies/series/instances with filters,
retrieves the study (the bytes equal the files sent, checked by MD5 through an
independent multipart decoder as well), series metadata and frames; an
RTSTRUCT drawn on that CT, stored through STOW-RS, becomes a ROI collection
that xnatpy lists among the session's assessors. An outsider sees none of it.

Data: the real GE CT slices and the MIM RTSTRUCT of rt-utils
(`../shared/data/rtstruct-rtutils/mock_data`, env XNATKIT_RTSTRUCT_DATA),
plus pydicom's bundled MR_small.dcm.
"""

from __future__ import annotations

import email.parser
import email.policy
import hashlib
import os
from pathlib import Path

import pydicom
import pytest
import requests
import xnat
from conftest import missing_prerequisite
from dicomweb_client.api import DICOMwebClient
from pydicom.data import get_testdata_file

REPO = Path(__file__).resolve().parents[2]


def rt_data() -> Path:
    folder = Path(os.environ.get("XNATKIT_RTSTRUCT_DATA",
                                 REPO.parent / "shared" / "data" / "rtstruct-rtutils" / "mock_data"))
    if not (folder / "rt.dcm").is_file():
        missing_prerequisite(f"XNATKIT_RTSTRUCT_DATA (rt-utils mock_data with ct_1.dcm, ct_2.dcm, rt.dcm; "
                             f"not found at {folder})")
    return folder


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def client_for(server, auth, project: str | None = None) -> DICOMwebClient:
    http = requests.Session()
    http.auth = auth
    root = f"{server.url}/xapi/dicomweb" + (f"/projects/{project}" if project else "")
    return DICOMwebClient(url=root, session=http)


def multipart_parts(response: requests.Response) -> list[bytes]:
    """The parts of a multipart/related answer, decoded by Python's email package
    (independent of the client under test)."""
    head = f"Content-Type: {response.headers['Content-Type']}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + response.content)
    return [part.get_payload(decode=True) for part in message.iter_parts()]


@pytest.fixture(scope="module")
def owner(server):
    return server.create_user()


@pytest.fixture(scope="module")
def stored(server, owner):
    """A private project holding the real CT study (2 slices), stored through STOW-RS."""
    project = server.create_project(owner, accessibility="private")
    folder = rt_data()
    paths = [folder / "ct_1.dcm", folder / "ct_2.dcm"]
    datasets = [pydicom.dcmread(p) for p in paths]
    client = client_for(server, owner, project)
    response = client.store_instances(datasets)
    referenced = response.get("ReferencedSOPSequence", [])
    assert len(referenced) == 2, response
    assert "FailedSOPSequence" not in response, response
    return {
        "project": project,
        "study": str(datasets[0].StudyInstanceUID),
        "series": str(datasets[0].SeriesInstanceUID),
        "by_sop": {str(ds.SOPInstanceUID): ds for ds in datasets},
        "md5": {md5(p.read_bytes()) for p in paths},
        "patient_id": str(datasets[0].PatientID),
    }


def test_search_studies_series_and_instances_with_filters(server, owner, stored):
    client = client_for(server, owner, stored["project"])
    studies = client.search_for_studies(search_filters={"PatientID": stored["patient_id"]})
    assert [s["0020000D"]["Value"][0] for s in studies] == [stored["study"]]
    assert client.search_for_studies(search_filters={"PatientID": "no-such-patient"}) == []
    assert len(client.search_for_studies(search_filters={"ModalitiesInStudy": "CT"})) == 1
    assert client.search_for_studies(search_filters={"ModalitiesInStudy": "MR"}) == []
    assert len(client.search_for_studies(fields=["StudyDescription"], limit=1, offset=0)) == 1
    assert client.search_for_studies(limit=1, offset=1) == []

    series = client.search_for_series(study_instance_uid=stored["study"])
    assert [s["0020000E"]["Value"][0] for s in series] == [stored["series"]]
    assert series[0]["00080060"]["Value"] == ["CT"]
    assert client.search_for_series(search_filters={"Modality": "MR"}) == []

    instances = client.search_for_instances(study_instance_uid=stored["study"],
                                            series_instance_uid=stored["series"])
    assert {i["00080018"]["Value"][0] for i in instances} == set(stored["by_sop"])
    one = next(iter(stored["by_sop"]))
    found = client.search_for_instances(search_filters={"SOPInstanceUID": one})
    assert [i["00080018"]["Value"][0] for i in found] == [one]
    # The site-wide root sees the same study for its owner.
    site = client_for(server, owner)
    assert stored["study"] in {s["0020000D"]["Value"][0] for s in site.search_for_studies()}


def test_retrieve_study_equals_the_stored_files(server, owner, stored):
    client = client_for(server, owner, stored["project"])
    retrieved = client.retrieve_study(stored["study"])
    assert {str(ds.SOPInstanceUID) for ds in retrieved} == set(stored["by_sop"])
    for ds in retrieved:
        original = stored["by_sop"][str(ds.SOPInstanceUID)]
        assert ds == original
        assert ds.PixelData == original.PixelData
    # The same answer read byte for byte.
    url = f"{server.url}/xapi/dicomweb/projects/{stored['project']}/studies/{stored['study']}"
    response = requests.get(url, auth=owner, headers={"Accept": 'multipart/related; type="application/dicom"'},
                            timeout=60)
    assert response.status_code == 200
    assert {md5(p) for p in multipart_parts(response)} == stored["md5"]


def test_series_metadata_and_frames(server, owner, stored):
    client = client_for(server, owner, stored["project"])
    metadata = client.retrieve_series_metadata(stored["study"], stored["series"])
    assert len(metadata) == 2
    for item in metadata:
        assert "BulkDataURI" in item["7FE00010"]
        ds = pydicom.Dataset.from_json(item)
        original = stored["by_sop"][str(ds.SOPInstanceUID)]
        assert ds.PatientID == original.PatientID
        assert ds.Rows == original.Rows and ds.Columns == original.Columns
        assert list(ds.ImagePositionPatient) == list(original.ImagePositionPatient)
    for sop, original in stored["by_sop"].items():
        frames = client.retrieve_instance_frames(stored["study"], stored["series"], sop, frame_numbers=[1])
        assert len(frames) == 1
        assert frames[0] == original.PixelData
        single = client.retrieve_instance(stored["study"], stored["series"], sop)
        assert single == original


def test_wado_uri_returns_the_stored_file(server, owner, stored):
    sop = next(iter(stored["by_sop"]))
    response = requests.get(
        f"{server.url}/xapi/dicomweb/wado",
        params={"requestType": "WADO", "studyUID": stored["study"], "seriesUID": stored["series"],
                "objectUID": sop, "contentType": "application/dicom", "transferSyntax": "*"},
        auth=owner, timeout=60)
    assert response.status_code == 200
    assert md5(response.content) in stored["md5"]


def test_store_another_study_and_find_it(server, owner, stored):
    client = client_for(server, owner, stored["project"])
    mr = pydicom.dcmread(get_testdata_file("MR_small.dcm"))
    response = client.store_instances([mr])
    assert len(response.ReferencedSOPSequence) == 1, response
    found = client.search_for_studies(search_filters={"StudyInstanceUID": str(mr.StudyInstanceUID)})
    assert len(found) == 1
    assert found[0]["00080061"]["Value"] == ["MR"]
    again = client.retrieve_instance(str(mr.StudyInstanceUID), str(mr.SeriesInstanceUID), str(mr.SOPInstanceUID))
    assert again == mr
    # Storing it again is refused as a duplicate (409 from the server).
    with pytest.raises(requests.HTTPError) as refused:
        client.store_instances([mr])
    assert refused.value.response.status_code == 409


def test_rtstruct_becomes_a_roi_collection_xnatpy_lists(server, owner, stored):
    rt = pydicom.dcmread(rt_data() / "rt.dcm")
    client = client_for(server, owner, stored["project"])
    response = client.store_instances([rt], study_instance_uid=str(rt.StudyInstanceUID))
    assert len(response.ReferencedSOPSequence) == 1, response
    with xnat.connect(server.url, user=owner[0], password=owner[1], loglevel="ERROR") as session:
        project = session.projects[stored["project"]]
        experiments = list(project.experiments.values())
        ct_sessions = [e for e in experiments if e.uid == stored["study"]]
        assert len(ct_sessions) == 1, [e.label for e in experiments]
        assessors = list(ct_sessions[0].assessors.values())
        rois = [a for a in assessors if a.__xsi_type__ == "icr:roiCollectionData"]
        assert len(rois) == 1, [a.__xsi_type__ for a in assessors]
        files = rois[0].resources["RTSTRUCT"].files
        assert len(files) == 1
        name = next(iter(files.keys()))
        data = session.get(files[name].uri).content
    assert md5(data) == md5((rt_data() / "rt.dcm").read_bytes())


def test_an_outsider_sees_nothing(server, owner, stored):
    outsider = server.create_user()
    client = client_for(server, outsider)
    assert stored["study"] not in {s["0020000D"]["Value"][0] for s in client.search_for_studies()}
    with pytest.raises(requests.HTTPError) as hidden:
        client.retrieve_study(stored["study"])
    assert hidden.value.response.status_code == 404
    with pytest.raises(requests.HTTPError) as hidden:
        client_for(server, outsider, stored["project"]).search_for_studies()
    assert hidden.value.response.status_code == 404
