"""The archive email (issue 15): with `serve --smtp` pointing at a real SMTP
server on loopback (aiosmtpd), archiving a session — by the import service
and by dcmtk's storescu through the C-STORE receiver — sends the project's
recipients its summary and a link that opens the session's page."""

from __future__ import annotations

import io
import re
import shutil
import stat
import subprocess
import time
import zipfile
from email import message_from_bytes
from email.message import Message
from pathlib import Path

import pytest
import requests
from aiosmtpd.controller import Controller
from pydicom.uid import generate_uid

from conftest import BACKENDS, Server, free_port, missing_prerequisite, unique
from dicom_tree import write_series

MAIL_TIMEOUT_S = 30
IDLE_SECS = 1


class Inbox:
    """aiosmtpd handler keeping every message it accepts."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], Message]] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
        self.messages.append((list(envelope.rcpt_tos), message_from_bytes(envelope.content)))
        return "250 OK"

    def wait_for(self, label: str) -> tuple[list[str], Message]:
        deadline = time.monotonic() + MAIL_TIMEOUT_S
        while time.monotonic() < deadline:
            for rcpt, message in self.messages:
                if label in message["Subject"]:
                    return rcpt, message
            time.sleep(0.2)
        pytest.fail(f"no archive email about {label} within {MAIL_TIMEOUT_S}s; got "
                    f"{[m['Subject'] for _, m in self.messages]}")


@pytest.fixture(scope="module")
def inbox():
    handler = Inbox()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    handler.port = controller.port
    yield handler
    controller.stop()


@pytest.fixture(scope="module", params=BACKENDS)
def mailing_server(request, xnatkit_bin, inbox, tmp_path_factory):
    """`xnatkit serve --smtp` at the inbox, with the C-STORE receiver."""
    workdir = tmp_path_factory.mktemp(f"email-{request.param}")
    dicom_port = free_port()
    # The shared fixture starts `BINARY serve …`; a wrapper adds our flags.
    wrapper = workdir / "xnatkit-with-smtp"
    wrapper.write_text(
        "#!/bin/sh\n"
        f'exec "{xnatkit_bin}" "$@" --smtp smtp://127.0.0.1:{inbox.port} --smtp-from archive@xnat.test '
        f"--dicom-listen 127.0.0.1:{dicom_port} --dicom-ae-title XNAT --dicom-idle-secs {IDLE_SECS}\n"
    )
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    server = Server(str(wrapper), request.param, workdir)
    server.dicom_port = dicom_port
    yield server
    server.stop()


def set_recipients(server: Server, auth, project: str, addresses: list[str]) -> list[str]:
    response = requests.put(f"{server.url}/xapi/projects/{project}/archive-email", json=addresses, auth=auth,
                            timeout=30)
    assert response.status_code == 200, f"{response.status_code} {response.text[:200]}"
    return response.json()


def check_email(server: Server, auth, inbox: Inbox, project: str, subject: str, label: str, scans: int):
    rcpt, message = inbox.wait_for(label)
    assert sorted(rcpt) == ["lab@example.org", "pi@example.org"]
    assert message["From"] == "archive@xnat.test"
    body = message.get_payload(decode=True).decode()
    assert f"Project: {project}" in body
    assert f"Subject: {subject}" in body
    assert f"Session: {label}" in body
    assert f"Scans:   {scans}" in body
    link = re.search(r"Open it: (\S+)", body).group(1)
    assert link == f"{server.url}/app/projects/{project}/subjects/{subject}/experiments/{label}"
    # The link opens the session's page for a logged-in member …
    http = requests.Session()
    assert http.post(f"{server.url}/data/JSESSION", auth=auth, timeout=30).status_code == 200
    page = http.get(link, timeout=30, allow_redirects=False)
    assert page.status_code == 200, page.status_code
    assert label in page.text
    # … and sends an anonymous browser to the login page.
    anonymous = requests.get(link, timeout=30, allow_redirects=False, headers={"Accept": "text/html"})
    assert anonymous.status_code in (302, 303, 401), anonymous.status_code


def test_rest_recipients_are_for_owners_only(mailing_server):
    owner = mailing_server.create_user()
    member = mailing_server.create_user()
    project = mailing_server.create_project(owner, accessibility="private")
    mailing_server.add_role(owner, project, "member", member[0])
    assert set_recipients(mailing_server, owner, project, ["b@example.org", " a@example.org", "b@example.org"]) \
        == ["a@example.org", "b@example.org"]
    url = f"{mailing_server.url}/xapi/projects/{project}/archive-email"
    assert requests.get(url, auth=owner, timeout=30).json() == ["a@example.org", "b@example.org"]
    assert requests.get(url, auth=member, timeout=30).status_code == 403
    assert requests.put(url, json=["x@example.org"], auth=member, timeout=30).status_code == 403
    outsider = mailing_server.create_user()
    assert requests.get(url, auth=outsider, timeout=30).status_code == 404
    bad = requests.put(url, json=["not an address"], auth=owner, timeout=30)
    assert bad.status_code == 400 and "not an email address" in bad.text


def test_import_sends_the_archive_email_with_a_working_link(mailing_server, inbox, tmp_path):
    owner = mailing_server.create_user()
    project = mailing_server.create_project(owner, accessibility="private")
    set_recipients(mailing_server, owner, project, ["pi@example.org", "lab@example.org"])
    subject, label = unique("SUBJ"), unique("SESS")
    files = write_series(tmp_path / label, 3, patient_name=subject, patient_id=subject, study_date="20240301",
                         study_uid=generate_uid(), series_number=1, modality="MR", series_description="T1")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in files:
            archive.write(path, f"{label}/{path.name}")
    response = requests.post(f"{mailing_server.url}/data/services/import", auth=owner, timeout=120,
                             params={"dest": "/archive", "project": project, "subject": subject,
                                     "session": label},
                             data=buffer.getvalue(), headers={"Content-Type": "application/zip"})
    assert response.status_code == 200, response.text
    check_email(mailing_server, owner, inbox, project, subject, label, scans=1)


def test_storescu_archive_sends_the_archive_email(mailing_server, inbox, tmp_path):
    storescu = shutil.which("storescu")
    if storescu is None:
        missing_prerequisite("dcmtk's storescu on PATH (Debian package dcmtk)")
    owner = mailing_server.create_user()
    project = mailing_server.create_project(owner, accessibility="private")
    set_recipients(mailing_server, owner, project, ["pi@example.org", "lab@example.org"])
    subject = unique("SUBJ")
    study_uid = generate_uid()
    files = write_series(tmp_path / "s1", 2, patient_name=subject, patient_id=subject, study_date="20240302",
                         study_uid=study_uid, series_number=1, modality="MR", series_description="T1")
    files += write_series(tmp_path / "s2", 2, patient_name=subject, patient_id=subject, study_date="20240302",
                          study_uid=study_uid, series_number=2, modality="MR", series_description="T2")
    sent = subprocess.run([storescu, "-aec", project, "127.0.0.1", str(mailing_server.dicom_port),
                           *map(str, files)], capture_output=True, text=True, timeout=60)
    assert sent.returncode == 0, sent.stderr
    # The receiver names the session from the headers; find it by its subject.
    deadline = time.monotonic() + MAIL_TIMEOUT_S
    while True:
        rows = requests.get(f"{mailing_server.url}/data/projects/{project}/experiments", auth=owner,
                            params={"format": "json"}, timeout=30).json()["ResultSet"]["Result"]
        if rows:
            break
        assert time.monotonic() < deadline, "the C-STORE session was not archived"
        time.sleep(0.25)
    label = rows[0]["label"]
    check_email(mailing_server, owner, inbox, project, subject, label, scans=2)


def test_a_dead_mail_server_does_not_fail_the_archive(xnatkit_bin, tmp_path):
    """With nothing listening at --smtp, the import still archives and the log says why no email left."""
    dead_port = free_port()
    wrapper = tmp_path / "xnatkit-dead-smtp"
    wrapper.write_text(f'#!/bin/sh\nexec "{xnatkit_bin}" "$@" --smtp smtp://127.0.0.1:{dead_port}\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    server = Server(str(wrapper), "sqlite", tmp_path)
    try:
        owner = server.create_user()
        project = server.create_project(owner)
        set_recipients(server, owner, project, ["pi@example.org"])
        subject, label = unique("SUBJ"), unique("SESS")
        files = write_series(tmp_path / label, 1, patient_name=subject, patient_id=subject,
                             study_date="20240303", study_uid=generate_uid(), series_number=1, modality="MR",
                             series_description="T1")
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.write(files[0], f"{label}/{files[0].name}")
        response = requests.post(f"{server.url}/data/services/import", auth=owner, timeout=120,
                                 params={"dest": "/archive", "project": project, "subject": subject,
                                         "session": label},
                                 data=buffer.getvalue(), headers={"Content-Type": "application/zip"})
        assert response.status_code == 200, response.text
        deadline = time.monotonic() + MAIL_TIMEOUT_S
        while "archive email for session" not in server.log_tail(200):
            assert time.monotonic() < deadline, server.log_tail()
            time.sleep(0.2)
        assert "not sent" in server.log_tail(200)
    finally:
        server.stop()
