"""xnatutils 0.10.0 command-line tools, unchanged, against `xnatkit serve`:
xnat-put, xnat-ls, xnat-get, xnat-varput/xnat-varget, and the token it saves to
~/.netrc after a typed-in login.

xnatutils names things by convention: project `P`, subject `P_S`, session
`P_S_MR01`; the CLIs find credentials in `$HOME/.netrc`, so every test runs them
with a temporary HOME."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import pytest
from conftest import peers_bin, unique, write_netrc

CLI_TIMEOUT_S = 180


@pytest.fixture(scope="module")
def owner(server):
    return server.create_user()


@pytest.fixture(scope="module")
def project_id(server, owner):
    # No underscore in the project ID: xnatutils splits session names on "_".
    return server.create_project(owner, project=unique("XU"), accessibility="private")


@pytest.fixture(scope="module")
def home(server, owner, tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    write_netrc(home, server, owner)
    return home


def run_cli(name: str, *args: str, home: Path, server, stdin: str | None = None,
            extra_env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if not key.startswith("XNAT_")}
    env.update(HOME=str(home), **(extra_env or {}))
    done = subprocess.run(
        [peers_bin(name), "--server", server.url, *args],
        capture_output=True,
        text=True,
        env=env,
        input=stdin if stdin is not None else "",
        timeout=CLI_TIMEOUT_S,
        cwd=cwd or home,
        # No controlling terminal: getpass then reads the password from stdin
        # instead of prompting on /dev/tty (and hanging an interactive run).
        start_new_session=True,
    )
    return done


def ok(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 0, (
        f"{' '.join(done.args)} exited {done.returncode}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}")
    return done.stdout


@pytest.fixture(scope="module")
def uploaded(server, project_id, home, tmp_path_factory):
    """One session created by xnat-put --create_session from a directory (tar.gz +
    extract=true upload, then xnatutils' own digest check)."""
    subject = f"{project_id}_{unique('S')}"
    session = f"{subject}_MR01"
    data = tmp_path_factory.mktemp("xnat-put") / "t1w"
    data.mkdir()
    files = {"t1w.nii.gz": os.urandom(50_000), "t1w.json": b'{"EchoTime": 0.003}\n'}
    for name, content in files.items():
        (data / name).write_bytes(content)
    # -p/-b explicitly: left to itself xnat-put would label the subject "S…"
    # (the middle part), which xnat-varput then cannot find under "P_S…".
    ok(run_cli("xnat-put", session, "t1w", str(data), "--create_session", "--resource_name", "NIFTI_GZ",
               "--project_id", project_id, "--subject_id", subject, home=home, server=server))
    return {"subject": subject, "session": session, "scan": "t1w", "resource": "NIFTI_GZ", "files": files}


def test_put_created_subject_session_scan_and_files(server, owner, project_id, uploaded):
    http = server.session(owner)
    base = (f"{server.url}/data/projects/{project_id}/subjects/{uploaded['subject']}"
            f"/experiments/{uploaded['session']}")
    response = http.get(f"{base}/scans/{uploaded['scan']}/resources/{uploaded['resource']}/files",
                        params={"format": "json"}, timeout=30)
    assert response.status_code == 200, response.text
    rows = response.json()["ResultSet"]["Result"]
    assert {row["Name"]: row["digest"] for row in rows} == {
        name: hashlib.md5(content).hexdigest() for name, content in uploaded["files"].items()}


def test_put_per_file_method(server, project_id, home, uploaded, tmp_path):
    files = {"a.nii": os.urandom(10_000), "b.nii": os.urandom(12_000)}
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
    ok(run_cli("xnat-put", uploaded["session"], "dwi", *(str(tmp_path / n) for n in files),
               "--resource_name", "NIFTI", "--method", "per_file", home=home, server=server))


def test_ls_lists_projects_subjects_sessions_scans(server, project_id, home, uploaded):
    # Always with --datatype: xnatutils 0.10.0 crashes guessing it from a
    # positional ID (it passes the argument list where it expects a string).
    def ls(*args):
        return ok(run_cli("xnat-ls", *args, home=home, server=server)).split()

    assert project_id in ls()
    assert ls("--datatype", "subject", "--project", project_id) == [uploaded["subject"]]
    assert ls("--datatype", "session", "--project", project_id) == [uploaded["session"]]
    assert ls("--datatype", "session", f"{uploaded['subject']}_.*") == [uploaded["session"]]
    assert uploaded["scan"] in ls("--datatype", "scan", uploaded["session"])


def test_get_downloads_scan_files(server, home, uploaded, tmp_path):
    target = tmp_path / "download"
    ok(run_cli("xnat-get", uploaded["session"], "--scans", uploaded["scan"], "--target", str(target),
               home=home, server=server))
    scan_dir = target / uploaded["session"] / f"{uploaded['scan']}-{uploaded['scan']}"
    found = {p.name: p.read_bytes() for p in scan_dir.iterdir() if p.is_file()} if scan_dir.is_dir() else {}
    assert found == uploaded["files"], f"layout under {target}: {sorted(str(p) for p in target.rglob('*'))}"


def test_varput_then_varget(server, home, uploaded):
    ok(run_cli("xnat-varput", uploaded["session"], "qc_rating", "good", home=home, server=server))
    assert ok(run_cli("xnat-varget", uploaded["session"], "qc_rating", home=home, server=server)).strip() == "good"
    ok(run_cli("xnat-varput", uploaded["subject"], "cohort", "patients", home=home, server=server))
    assert ok(run_cli("xnat-varget", uploaded["subject"], "cohort", home=home, server=server)).strip() == "patients"
    missing = run_cli("xnat-varget", uploaded["session"], "never_set", "--default", "none", home=home, server=server)
    assert ok(missing).strip() == "none"


def test_typed_login_saves_alias_token_in_netrc(server, owner, project_id, tmp_path):
    """Credentials typed in (user from XNAT_USER, password on stdin) make xnatutils
    issue an alias token and store it in ~/.netrc; the next run logs in with it."""
    home = tmp_path / "fresh-home"
    home.mkdir()
    first = run_cli("xnat-ls", home=home, server=server, stdin=owner[1] + "\n",
                    extra_env={"XNAT_USER": owner[0]})
    assert project_id in ok(first).split()
    netrc = (home / ".netrc").read_text()
    assert f"machine 127.0.0.1:{server.port}" in netrc
    assert owner[1] not in netrc, "the saved credential must be the token, not the password"
    second = run_cli("xnat-ls", home=home, server=server)
    assert project_id in ok(second).split()
