"""The whole permission matrix, with plain HTTP: project accessibility
(private/protected/public) × role (owner/member/collaborator/authenticated
non-member/anonymous) × action, with XNAT's answers:
401 bad or missing credentials, 403 visible but not allowed, 404 not visible.

Every refused write is also checked for having changed nothing."""

from __future__ import annotations

import pytest
import requests
from conftest import unique

ACCESSIBILITIES = ("private", "protected", "public")
ROLES = ("owner", "member", "collaborator", "other", "anonymous")
ACTIONS = ("read_project", "list_subjects", "read_file", "create_subject", "edit_subject", "delete_subject")
READS = ("read_project", "list_subjects", "read_file")

OK = {"read_project": {200}, "list_subjects": {200}, "read_file": {200},
      "create_subject": {200, 201}, "edit_subject": {200, 201}, "delete_subject": {200}}
# A listing of subjects the caller may not see: refused, or an empty table.
HIDDEN_LISTING = "hidden"
FILE_CONTENT = b"visible only to those allowed\n"


def expected(accessibility: str, role: str, action: str, guest_enabled: bool):
    """The status codes XNAT gives (a set), or HIDDEN_LISTING."""
    if role == "anonymous":
        if action not in READS or not guest_enabled:
            return {401}
        role = "other"  # a guest reads what any non-member may read
    if role == "owner":
        return OK[action]
    if role == "member":
        return {403} if action == "delete_subject" else OK[action]
    if role == "collaborator":
        return OK[action] if action in READS else {403}
    # Authenticated, but not in the project.
    if accessibility == "public":
        return OK[action] if action in READS else {403}
    if accessibility == "protected":
        # The project row is visible (users can ask for access); its data is not.
        return {
            "read_project": {200},
            "list_subjects": HIDDEN_LISTING,
            "read_file": {404},
            "create_subject": {403},
            "edit_subject": {404},
            "delete_subject": {403, 404},
        }[action]
    # private: the project does not exist for this user.
    return {403, 404} if action == "delete_subject" else {404}


class World:
    """Three projects (one per accessibility) with the same owner, member and
    collaborator, each holding a subject SEED with one file."""

    def __init__(self, server):
        self.server = server
        self.users = {role: server.create_user() for role in ("owner", "member", "collaborator", "other")}
        self.projects = {}
        owner = self.users["owner"]
        for accessibility in ACCESSIBILITIES:
            project = server.create_project(owner, accessibility=accessibility)
            server.add_role(owner, project, "member", self.users["member"][0])
            server.add_role(owner, project, "collaborator", self.users["collaborator"][0])
            server.create_subject(owner, project, "SEED")
            server.upload_file(owner, f"/data/projects/{project}/subjects/SEED/resources/NOTES", "note.txt",
                               FILE_CONTENT)
            self.projects[accessibility] = project
        anonymous = requests.get(f"{server.url}/data/projects", params={"format": "json"}, timeout=30)
        assert anonymous.status_code in (200, 401), (
            f"anonymous GET /data/projects: expected 401 (login required) or 200 (guest access), "
            f"got {anonymous.status_code}")
        self.guest_enabled = anonymous.status_code == 200

    def auth(self, role: str):
        return None if role == "anonymous" else self.users[role]

    def owner_get(self, path: str, **params) -> requests.Response:
        return requests.get(f"{self.server.url}{path}", params=params, auth=self.users["owner"], timeout=30)


@pytest.fixture(scope="module")
def world(server) -> World:
    return World(server)


def describe(response: requests.Response) -> str:
    return f"{response.request.method} {response.request.path_url} -> {response.status_code} {response.text[:120]!r}"


@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("accessibility", ACCESSIBILITIES)
def test_matrix(world, accessibility, role, action):
    server, project = world.server, world.projects[accessibility]
    base = f"{server.url}/data/projects/{project}"
    auth = world.auth(role)
    want = expected(accessibility, role, action, world.guest_enabled)

    if action == "read_project":
        response = requests.get(base, params={"format": "json"}, auth=auth, timeout=30)
    elif action == "list_subjects":
        response = requests.get(f"{base}/subjects", params={"format": "json"}, auth=auth, timeout=30)
    elif action == "read_file":
        response = requests.get(f"{base}/subjects/SEED/resources/NOTES/files/note.txt", auth=auth, timeout=30)
    elif action == "create_subject":
        label = unique("NEW")
        response = requests.put(f"{base}/subjects/{label}", params={"xsiType": "xnat:subjectData"}, auth=auth,
                                timeout=30)
    elif action == "edit_subject":
        value = unique("v")
        response = requests.put(
            f"{base}/subjects/SEED",
            params={"xsiType": "xnat:subjectData", "xnat:subjectData/fields/field[name=note]/field": value},
            auth=auth, timeout=30)
    else:
        _, victim = server.create_subject(world.users["owner"], project)
        response = requests.delete(f"{base}/subjects/{victim}", auth=auth, timeout=30)

    if want == HIDDEN_LISTING:
        if response.status_code == 200:
            rows = response.json()["ResultSet"]["Result"]
            assert rows == [], f"subjects of a {accessibility} project leaked to a non-member: {describe(response)}"
        else:
            assert response.status_code in (403, 404), describe(response)
    else:
        assert response.status_code in want, f"expected {sorted(want)}: {describe(response)}"

    if response.status_code >= 400:
        assert not response.text.lstrip().startswith("<"), f"error bodies are plain text: {describe(response)}"

    # The outcome must match the answer: allowed writes happened, refused ones left nothing.
    allowed = want != HIDDEN_LISTING and want <= OK[action]
    if action == "read_file" and allowed:
        assert response.content == FILE_CONTENT
    elif action == "create_subject":
        after = world.owner_get(f"/data/projects/{project}/subjects/{label}", format="json").status_code
        assert after == (200 if allowed else 404), f"subject {label} after {describe(response)}: GET {after}"
    elif action == "edit_subject":
        seed = world.owner_get(f"/data/projects/{project}/subjects/SEED", format="json")
        assert (value in seed.text) == allowed, f"field value after {describe(response)}"
    elif action == "delete_subject":
        after = world.owner_get(f"/data/projects/{project}/subjects/{victim}", format="json").status_code
        assert after == (404 if allowed else 200), f"subject {victim} after {describe(response)}: GET {after}"


@pytest.mark.parametrize("role", ("owner", "member", "collaborator", "other"))
def test_project_listing_shows_only_visible_projects(world, role):
    response = requests.get(f"{world.server.url}/data/projects", params={"format": "json"}, auth=world.auth(role),
                            timeout=30)
    assert response.status_code == 200, describe(response)
    listed = {row["ID"] for row in response.json()["ResultSet"]["Result"]}
    ours = set(world.projects.values())
    if role == "other":
        want = {world.projects["protected"], world.projects["public"]}
    else:
        want = ours
    assert listed & ours == want


@pytest.mark.parametrize("role", ("member", "collaborator", "other"))
def test_only_owners_manage_users_and_accessibility(world, role):
    server, project = world.server, world.projects["public"]
    auth = world.auth(role)
    newcomer = server.create_user()
    response = requests.put(f"{server.url}/data/projects/{project}/users/member/{newcomer[0]}", auth=auth,
                            timeout=30)
    assert response.status_code == 403, describe(response)
    response = requests.put(f"{server.url}/data/projects/{project}/accessibility/private", auth=auth, timeout=30)
    assert response.status_code == 403, describe(response)
    # Still public: a non-member can read it.
    check = requests.get(f"{server.url}/data/projects/{project}", params={"format": "json"},
                         auth=world.users["other"], timeout=30)
    assert check.status_code == 200, describe(check)


def test_owner_can_remove_a_role(server):
    owner, guest = server.create_user(), server.create_user()
    project = server.create_project(owner, accessibility="private")
    server.add_role(owner, project, "member", guest[0])
    url = f"{server.url}/data/projects/{project}"
    assert requests.get(url, params={"format": "json"}, auth=guest, timeout=30).status_code == 200
    response = requests.delete(f"{url}/users/member/{guest[0]}", auth=owner, timeout=30)
    assert response.status_code == 200, describe(response)
    assert requests.get(url, params={"format": "json"}, auth=guest, timeout=30).status_code == 404


@pytest.mark.parametrize("credentials", ("wrong-password", "unknown-user", "bad-token"))
def test_bad_credentials_get_401(server, credentials):
    username, password = server.create_user()
    auth = {
        "wrong-password": (username, password + "x"),
        "unknown-user": (unique("nobody"), password),
        "bad-token": ("0b7f4b7e-0000-4000-8000-000000000000", "not-a-secret"),
    }[credentials]
    for method, path in (("GET", "/data/projects"), ("GET", "/data/JSESSION"), ("PUT", "/data/projects/X1")):
        response = requests.request(method, f"{server.url}{path}", auth=auth, timeout=30)
        assert response.status_code == 401, describe(response)
        assert not response.text.lstrip().startswith("<"), describe(response)
    form = requests.put(f"{server.url}/data/services/auth", data={"username": auth[0], "password": auth[1]},
                        timeout=30)
    assert form.status_code == 401, describe(form)


def test_lockout_after_repeated_failures(server):
    victim, bystander = server.create_user(), server.create_user()
    url = f"{server.url}/data/JSESSION"
    assert requests.get(url, auth=victim, timeout=30).status_code == 200
    # XNAT locks at 20 failures (maxFailedLogins); 25 leaves no doubt.
    for attempt in range(25):
        response = requests.get(url, auth=(victim[0], f"wrong-{attempt}"), timeout=30)
        assert response.status_code == 401, describe(response)
    locked = requests.get(url, auth=victim, timeout=30)
    assert locked.status_code == 401, f"right password after 25 failures must be refused: {describe(locked)}"
    assert requests.get(url, auth=bystander, timeout=30).status_code == 200, "lockout is per account"


def test_form_login_cookie_and_logout(server):
    """The connect sequence of xnatpy 0.4.3 (cookie mandatory) and logout."""
    username, password = server.create_user()
    login = requests.put(f"{server.url}/data/services/auth", data={"username": username, "password": password},
                         timeout=30)
    assert login.status_code == 200, describe(login)
    session_id = login.text.strip()
    assert login.cookies.get("JSESSIONID") == session_id, "the body and the JSESSIONID cookie name the same session"
    cookies = {"JSESSIONID": session_id}
    auth = requests.get(f"{server.url}/data/auth", cookies=cookies, timeout=30)
    assert auth.status_code == 200 and f"User '{username}' is logged in" in auth.text, describe(auth)
    assert requests.get(f"{server.url}/data/projects", params={"format": "json"}, cookies=cookies,
                        timeout=30).status_code == 200
    logout = requests.delete(f"{server.url}/data/JSESSION", cookies=cookies, timeout=30)
    assert logout.status_code == 200, describe(logout)
    after = requests.get(f"{server.url}/data/projects", params={"format": "json"}, cookies=cookies, timeout=30)
    assert after.status_code == 401, f"a logged-out session must not authenticate: {describe(after)}"


def test_alias_token_as_basic_auth_and_invalidation(server):
    user = server.create_user()
    issued = requests.get(f"{server.url}/data/services/tokens/issue", params={"format": "json"}, auth=user,
                          timeout=30)
    assert issued.status_code == 200, describe(issued)
    token = issued.json()
    alias, secret = token["alias"], token["secret"]
    url = f"{server.url}/data/projects"
    assert requests.get(url, params={"format": "json"}, auth=(alias, secret), timeout=30).status_code == 200
    assert requests.get(url, params={"format": "json"}, auth=(alias, secret + "x"), timeout=30).status_code == 401
    invalidate = requests.get(f"{server.url}/data/services/tokens/invalidate/{alias}/{secret}", auth=user,
                              timeout=30)
    assert invalidate.status_code == 200, describe(invalidate)
    assert requests.get(url, params={"format": "json"}, auth=(alias, secret), timeout=30).status_code == 401


def test_only_admins_issue_tokens_for_others(server):
    user, other = server.create_user(), server.create_user()
    refused = requests.get(f"{server.url}/data/services/tokens/issue/user/{other[0]}", auth=user, timeout=30)
    assert refused.status_code == 403, describe(refused)
    granted = requests.get(f"{server.url}/data/services/tokens/issue/user/{other[0]}", auth=server.admin,
                           timeout=30)
    assert granted.status_code == 200, describe(granted)


def test_only_admins_create_users(server):
    user = server.create_user()
    response = requests.post(f"{server.url}/xapi/users", auth=user, timeout=30,
                             json={"username": unique("intruder"), "password": "Pw-123456789", "email": "x@example.org",
                                   "firstName": "X", "lastName": "Y", "enabled": True, "verified": True})
    assert response.status_code == 403, describe(response)
