"""Fixtures for the interop suites: a real `xnatkit serve` on a loopback port.

Every suite runs once per storage backend (`sqlite`, `postgres`). The server
is started from the binary named by `XNATKIT_BIN` with a fresh data folder
(and, for PostgreSQL, a fresh database created on the server-admin URL in
`XNATKIT_TEST_DATABASE_URL`). When a test fails, the tail of the server's log
is attached to the report.
"""

from __future__ import annotations

import itertools
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

import pytest
import requests

BACKENDS = ("sqlite", "postgres")
READY_TIMEOUT_S = 30
SITE_ID = "XNAT"


def missing_prerequisite(what: str) -> None:
    """Skip loudly, or fail when running in CI where everything must be present."""
    message = f"SKIPPED: set {what}"
    if os.environ.get("CI"):
        pytest.fail(f"{what} is required when CI is set", pytrace=False)
    print(f"\n{message}", file=sys.stderr)
    pytest.skip(message)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


_names = itertools.count(1)


def unique(prefix: str) -> str:
    """A label unique within this test run (labels allow only [A-Za-z0-9_-])."""
    return f"{prefix}{next(_names):04d}"


class PostgresDatabase:
    """A database created for one server and dropped after it stops."""

    def __init__(self, admin_url: str):
        self.admin_url = admin_url
        self.name = f"xnatkit_interop_{secrets.token_hex(6)}"
        self._psql(f'CREATE DATABASE "{self.name}"')
        parts = urllib.parse.urlsplit(admin_url)
        self.url = urllib.parse.urlunsplit(parts._replace(path=f"/{self.name}"))

    def _psql(self, sql: str) -> None:
        psql = shutil.which("psql")
        if psql is None:
            pytest.fail("psql not found on PATH (Debian package postgresql-client)", pytrace=False)
        done = subprocess.run(
            [psql, "--no-psqlrc", "--quiet", "-v", "ON_ERROR_STOP=1", self.admin_url, "-c", sql],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if done.returncode != 0:
            pytest.fail(f"psql {sql!r} failed: {done.stderr.strip()}", pytrace=False)

    def drop(self) -> None:
        self._psql(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


class Server:
    """A running `xnatkit serve` plus request helpers for test set-up."""

    def __init__(self, binary: str, backend: str, workdir: Path):
        self.backend = backend
        self.data_dir = workdir / "data"
        self.log_path = workdir / "server.log"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.admin = ("admin", "Adm1n-" + secrets.token_hex(8))
        self.database: PostgresDatabase | None = None

        argv = [binary, "serve", "--data", str(self.data_dir), "--listen", f"127.0.0.1:{self.port}",
                "--site-id", SITE_ID]
        if backend == "postgres":
            admin_url = os.environ.get("XNATKIT_TEST_DATABASE_URL")
            if not admin_url:
                missing_prerequisite("XNATKIT_TEST_DATABASE_URL")
            self.database = PostgresDatabase(admin_url)
            argv += ["--database", self.database.url]

        env = dict(os.environ, XNATKIT_ADMIN_PASSWORD=self.admin[1])
        self._log = open(self.log_path, "wb")
        self.process = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT, env=env)
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.stop()
                pytest.fail(
                    f"xnatkit serve ({self.backend}) exited with {self.process.returncode} before "
                    f"becoming ready:\n{self.log_tail()}",
                    pytrace=False,
                )
            try:
                if requests.get(f"{self.url}/data/version", timeout=2).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.1)
        self.stop()
        pytest.fail(f"xnatkit serve ({self.backend}) not ready after {READY_TIMEOUT_S}s:\n{self.log_tail()}",
                    pytrace=False)

    def log_tail(self, lines: int = 60) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError as err:
            return f"(no server log: {err})"
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        if self.database is not None:
            self.database.drop()
            self.database = None

    # --- set-up helpers (plain HTTP, as a script against XNAT would do) -----

    def session(self, auth: tuple[str, str] | None) -> requests.Session:
        http = requests.Session()
        http.auth = auth
        return http

    def create_user(self, username: str | None = None, password: str | None = None) -> tuple[str, str]:
        username = username or unique("user")
        password = password or "Pw-" + secrets.token_hex(8)
        response = requests.post(
            f"{self.url}/xapi/users",
            auth=self.admin,
            json={
                "username": username,
                "password": password,
                "email": f"{username}@example.org",
                "firstName": "Test",
                "lastName": username,
                "enabled": True,
                "verified": True,
            },
            timeout=30,
        )
        assert response.status_code == 201, f"POST /xapi/users: {response.status_code} {response.text[:200]}"
        return username, password

    def create_project(self, owner: tuple[str, str], project: str | None = None,
                       accessibility: str | None = None) -> str:
        project = project or unique("PRJ")
        response = requests.put(f"{self.url}/data/projects/{project}", params={"name": f"Project {project}"},
                                auth=owner, timeout=30)
        assert response.status_code in (200, 201), f"PUT project {project}: {response.status_code} {response.text[:200]}"
        if accessibility:
            response = requests.put(f"{self.url}/data/projects/{project}/accessibility/{accessibility}",
                                    auth=owner, timeout=30)
            assert response.status_code in (200, 201), (
                f"PUT accessibility {accessibility}: {response.status_code} {response.text[:200]}")
        return project

    def add_role(self, owner: tuple[str, str], project: str, role: str, username: str) -> None:
        response = requests.put(f"{self.url}/data/projects/{project}/users/{role}/{username}", auth=owner,
                                timeout=30)
        assert response.status_code in (200, 201), (
            f"PUT role {role} for {username}: {response.status_code} {response.text[:200]}")

    def create_subject(self, auth: tuple[str, str], project: str, label: str | None = None) -> tuple[str, str]:
        """Returns (accession ID, label)."""
        label = label or unique("SUBJ")
        response = requests.put(
            f"{self.url}/data/projects/{project}/subjects/{label}",
            params={"xsiType": "xnat:subjectData"},
            auth=auth,
            timeout=30,
        )
        assert response.status_code in (200, 201), f"PUT subject {label}: {response.status_code} {response.text[:200]}"
        return response.text.strip(), label

    def create_session(self, auth: tuple[str, str], project: str, subject: str, label: str | None = None,
                       xsi_type: str = "xnat:mrSessionData") -> tuple[str, str]:
        label = label or unique("SESS")
        response = requests.put(
            f"{self.url}/data/projects/{project}/subjects/{subject}/experiments/{label}",
            params={"xsiType": xsi_type},
            auth=auth,
            timeout=30,
        )
        assert response.status_code in (200, 201), f"PUT session {label}: {response.status_code} {response.text[:200]}"
        return response.text.strip(), label

    def upload_file(self, auth: tuple[str, str], resource_uri: str, name: str, content: bytes) -> None:
        """PUTs a resource (if absent) and one file into it; resource_uri starts with /data."""
        response = requests.put(f"{self.url}{resource_uri}", auth=auth, timeout=30)
        assert response.status_code in (200, 201, 409), (
            f"PUT {resource_uri}: {response.status_code} {response.text[:200]}")
        response = requests.put(f"{self.url}{resource_uri}/files/{name}", data=content, auth=auth, timeout=60,
                                headers={"Content-Type": "application/octet-stream"})
        assert response.status_code in (200, 201), (
            f"PUT {resource_uri}/files/{name}: {response.status_code} {response.text[:200]}")


@pytest.fixture(scope="session")
def xnatkit_bin() -> str:
    binary = os.environ.get("XNATKIT_BIN")
    if not binary:
        missing_prerequisite("XNATKIT_BIN (path of the built xnatkit binary)")
    if not os.access(binary, os.X_OK):
        pytest.fail(f"XNATKIT_BIN={binary} is not an executable file; build it with cargo build -p xnatkit",
                    pytrace=False)
    return binary


@pytest.fixture(scope="module", params=BACKENDS)
def server(request, xnatkit_bin, tmp_path_factory):
    """One server per test module and backend; tests share it and use unique labels."""
    server = Server(xnatkit_bin, request.param, tmp_path_factory.mktemp(f"xnatkit-{request.param}"))
    yield server
    server.stop()


@pytest.fixture
def user(server) -> tuple[str, str]:
    """A fresh ordinary user (username, password)."""
    return server.create_user()


@pytest.fixture
def project(server, user) -> str:
    """A fresh private project owned by `user`."""
    return server.create_project(user, accessibility="private")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        server = getattr(item, "funcargs", {}).get("server")
        if isinstance(server, Server):
            report.sections.append((f"xnatkit serve log ({server.backend}, tail)", server.log_tail()))


def peers_bin(name: str) -> str:
    """A console script installed next to the interpreter running pytest (.venv-peers)."""
    path = Path(sys.executable).parent / name
    if not path.exists():
        pytest.fail(f"{name} not found in {path.parent}; run pytest with .venv-peers/bin/python", pytrace=False)
    return str(path)


def write_netrc(home: Path, server: Server, auth: tuple[str, str]) -> None:
    """Credentials for xnatutils / xnatuploader / xnatpy, keyed by host:port as they look them up."""
    netrc = home / ".netrc"
    netrc.write_text(f"machine 127.0.0.1:{server.port}\nlogin {auth[0]}\npassword {auth[1]}\n")
    netrc.chmod(0o600)
