//! Authorization of every prearchive and import service: each service ×
//! every standing on the source project (owner, member, collaborator, none,
//! anonymous; private, protected and public projects) × every standing on
//! the destination project. The expected answer is derived from XNAT's rules
//! written out here independently of the server (`expect_*`), and every
//! refusal is checked to have changed nothing: the session is still there
//! with its status and files, and nothing appeared at the destination.
//! One server per backend; a session is generated afresh only after an
//! allowed case consumed the previous one.

use std::collections::HashMap;
use std::path::PathBuf;

use reqwest::{Method, StatusCode};

use crate::harness::{Auth, TestServer, entries_of, study, walk, zip_of};

crate::on_both_backends!(
    prearchive_services_by_source_and_destination_role,
    unassigned_sessions_by_role,
    import_and_prearchive_code_by_destination_role,
);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Role {
    Owner,
    Member,
    Collaborator,
    None,
}

const ROLES: [Role; 4] = [Role::Owner, Role::Member, Role::Collaborator, Role::None];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Openness {
    Private,
    Protected,
    Public,
}

const OPENNESS: [Openness; 3] = [Openness::Private, Openness::Protected, Openness::Public];

impl Openness {
    fn name(self) -> &'static str {
        match self {
            Openness::Private => "private",
            Openness::Protected => "protected",
            Openness::Public => "public",
        }
    }
}

/// Who calls: a user with a standing in the source and destination
/// projects, or nobody.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    User { source: Role, dest: Role },
    Anonymous,
}

/// What a request needs in a project, in XNAT's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Need {
    /// The project's prearchive (XNAT's `canModify`): owners and members.
    Prearchive,
    /// Create (and, with overwrite, edit) data in the project.
    Put,
    /// Read the project row.
    ReadProject,
    /// Project settings: owners only.
    Manage,
}

/// XNAT's answer for a caller with `role` (or anonymous) needing `need`
/// in a project that is `openness`.
fn expect_in(role: Option<Role>, openness: Openness, need: Need) -> u16 {
    let writes = need != Need::ReadProject;
    match role {
        Some(Role::Owner) => 200,
        Some(Role::Member) => {
            if need == Need::Manage {
                403
            } else {
                200
            }
        }
        Some(Role::Collaborator) => {
            if writes {
                403
            } else {
                200
            }
        }
        Option::None if writes => 401,
        Some(Role::None) | Option::None => match (openness, need) {
            (Openness::Private, _) => 404,
            (_, Need::ReadProject) => 200,
            // A protected project's prearchive is data the caller cannot see.
            (Openness::Protected, Need::Prearchive) => 404,
            _ => 403,
        },
    }
}

/// The first refusal of source then destination, else `ok`.
fn expect(source: u16, dest: Option<u16>, ok: u16) -> u16 {
    if source != 200 {
        return source;
    }
    match dest {
        Some(code) if code != 200 => code,
        _ => ok,
    }
}

/// One source project per openness, one destination project per openness,
/// and one user per (source role, destination role).
struct World {
    users: HashMap<(Role, Role), Auth>,
    next_label: std::cell::Cell<usize>,
}

fn source_project(openness: Openness) -> String {
    format!("SRC_{}", openness.name().to_ascii_uppercase())
}

fn dest_project(openness: Openness) -> String {
    format!("DST_{}", openness.name().to_ascii_uppercase())
}

fn folder_name(role: Role) -> &'static str {
    match role {
        Role::Owner => "Owners",
        Role::Member => "Members",
        Role::Collaborator => "Collaborators",
        Role::None => "",
    }
}

async fn put_ok(server: &TestServer, path: &str) {
    let r = server.put(path, &server.admin()).await;
    assert!(r.status().is_success(), "PUT {path}: {}", r.status());
}

async fn build_world(server: &TestServer) -> World {
    for openness in OPENNESS {
        for project in [source_project(openness), dest_project(openness)] {
            server.create_project(&project).await;
            put_ok(
                server,
                &format!("/data/projects/{project}/accessibility/{}", openness.name()),
            )
            .await;
        }
    }
    let mut users = HashMap::new();
    for source in ROLES {
        for dest in ROLES {
            let name = format!("u_{source:?}_{dest:?}").to_ascii_lowercase();
            let auth = server.create_user(&name).await;
            for openness in OPENNESS {
                for (role, project) in [
                    (source, source_project(openness)),
                    (dest, dest_project(openness)),
                ] {
                    if role != Role::None {
                        put_ok(
                            server,
                            &format!(
                                "/data/projects/{project}/users/{}/{name}",
                                folder_name(role)
                            ),
                        )
                        .await;
                    }
                }
            }
            users.insert((source, dest), auth);
        }
    }
    World {
        users,
        next_label: std::cell::Cell::new(0),
    }
}

impl World {
    fn auth(&self, who: Who) -> Option<&Auth> {
        match who {
            Who::User { source, dest } => self.users.get(&(source, dest)),
            Who::Anonymous => Option::None,
        }
    }

    fn label(&self) -> String {
        let n = self.next_label.get() + 1;
        self.next_label.set(n);
        format!("L{n:04}")
    }
}

fn everyone() -> Vec<Who> {
    let mut all: Vec<Who> = ROLES
        .iter()
        .flat_map(|&source| ROLES.iter().map(move |&dest| Who::User { source, dest }))
        .collect();
    all.push(Who::Anonymous);
    all
}

fn source_role(who: Who) -> Option<Role> {
    match who {
        Who::User { source, .. } => Some(source),
        Who::Anonymous => Option::None,
    }
}

fn dest_role(who: Who) -> Option<Role> {
    match who {
        Who::User { dest, .. } => Some(dest),
        Who::Anonymous => Option::None,
    }
}

/// A one-instance session put into `project`'s prearchive by the admin;
/// returns its `/data/prearchive/...` URI.
async fn prearchive_session(server: &TestServer, project: &str, label: &str) -> String {
    let generated = study(1, 1, |_| {});
    let (status, uri) = server
        .import(
            &format!("dest=/prearchive/projects/{project}&subject=SUBJ&session={label}"),
            zip_of(&entries_of(generated.dir.path(), &generated.files)),
            &server.admin(),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{uri}");
    uri.trim_end().to_owned()
}

/// What a refusal must leave as it was.
#[derive(Debug, PartialEq, Eq)]
struct Snapshot {
    status: String,
    files: Vec<PathBuf>,
    archived_labels: Vec<PathBuf>,
    prearchive_elsewhere: Vec<PathBuf>,
}

async fn snapshot(server: &TestServer, uri: &str, label: &str) -> Snapshot {
    let rows = server
        .rows(&format!("{uri}?format=json"), &server.admin())
        .await;
    let status = rows[0]["status"].as_str().expect("status").to_owned();
    let relative = uri.trim_start_matches("/data/prearchive/projects/");
    let files = walk(&server.data.path().join("prearchive").join(relative));
    assert!(!files.is_empty(), "session {uri} has files");
    let archived_labels = walk(&server.data.path().join("archive"))
        .into_iter()
        .filter(|p| p.components().any(|c| c.as_os_str() == label))
        .collect();
    let prearchive_elsewhere = walk(&server.data.path().join("prearchive"))
        .into_iter()
        .filter(|p| p.components().any(|c| c.as_os_str() == label))
        .filter(|p| !files.contains(p))
        .collect();
    Snapshot {
        status,
        files,
        archived_labels,
        prearchive_elsewhere,
    }
}

/// A service applied to one prearchive session.
#[derive(Debug, Clone, Copy)]
enum Service {
    ArchiveServiceInto,
    ArchiveServiceInPlace,
    ActionArchiveInto,
    ActionCommitArchive,
    ActionMove,
    BatchMove,
    BatchDelete,
    BatchRebuild,
    DeleteSession,
    ActionBuild,
    ViewSession,
    DicomDump,
}

impl Service {
    /// The destination project when it is not the source's own.
    fn moves_elsewhere(self) -> bool {
        matches!(
            self,
            Service::ArchiveServiceInto
                | Service::ActionArchiveInto
                | Service::ActionMove
                | Service::BatchMove
        )
    }

    /// The request, and the status of success.
    fn request(self, uri: &str, dest: &str) -> (Method, String, u16) {
        let src = uri.trim_start_matches("/data");
        match self {
            Service::ArchiveServiceInto => (
                Method::POST,
                format!("/data/services/archive?src={src}&project={dest}"),
                200,
            ),
            Service::ArchiveServiceInPlace => (
                Method::POST,
                format!("/data/services/archive?src={src}"),
                200,
            ),
            Service::ActionArchiveInto => (
                Method::POST,
                format!("{uri}?action=archive&project={dest}"),
                200,
            ),
            Service::ActionCommitArchive => {
                (Method::POST, format!("{uri}?action=commit&AA=true"), 301)
            }
            Service::ActionMove => (
                Method::POST,
                format!("{uri}?action=move&newProject={dest}"),
                301,
            ),
            Service::BatchMove => (
                Method::POST,
                format!("/data/services/prearchive/move?src={src}&newProject={dest}"),
                200,
            ),
            Service::BatchDelete => (
                Method::POST,
                format!("/data/services/prearchive/delete?src={src}"),
                200,
            ),
            Service::BatchRebuild => (
                Method::POST,
                format!("/data/services/prearchive/rebuild?src={src}"),
                200,
            ),
            Service::DeleteSession => (Method::DELETE, uri.to_owned(), 200),
            Service::ActionBuild => (Method::POST, format!("{uri}?action=build"), 200),
            Service::ViewSession => (Method::GET, format!("{uri}?format=json"), 200),
            Service::DicomDump => (
                Method::GET,
                format!("/data/services/dicomdump?src={src}&format=json"),
                200,
            ),
        }
    }

    /// Does success leave the session where it was?
    fn keeps_session(self) -> bool {
        matches!(
            self,
            Service::BatchRebuild
                | Service::ActionBuild
                | Service::ViewSession
                | Service::DicomDump
        )
    }
}

const SERVICES: [Service; 12] = [
    Service::ArchiveServiceInto,
    Service::ArchiveServiceInPlace,
    Service::ActionArchiveInto,
    Service::ActionCommitArchive,
    Service::ActionMove,
    Service::BatchMove,
    Service::BatchDelete,
    Service::BatchRebuild,
    Service::DeleteSession,
    Service::ActionBuild,
    Service::ViewSession,
    Service::DicomDump,
];

async fn send(
    server: &TestServer,
    method: Method,
    path: &str,
    auth: Option<&Auth>,
) -> (u16, String) {
    let r = server
        .req(method.clone(), path, auth)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    let status = r.status().as_u16();
    (status, r.text().await.unwrap_or_default())
}

async fn prearchive_services_by_source_and_destination_role(server: &TestServer) {
    let world = build_world(server).await;
    let mut checked = 0;
    for openness in OPENNESS {
        let source = source_project(openness);
        let dest = dest_project(openness);
        let mut current: Option<(String, String)> = Option::None;
        for service in SERVICES {
            let callers: Vec<Who> = if service.moves_elsewhere() {
                everyone()
            } else {
                // The destination is the source: one caller per source role.
                ROLES
                    .iter()
                    .map(|&source| Who::User {
                        source,
                        dest: Role::None,
                    })
                    .chain([Who::Anonymous])
                    .collect()
            };
            for who in callers {
                let (uri, label) = match current.take() {
                    Some(session) => session,
                    Option::None => {
                        let label = world.label();
                        (prearchive_session(server, &source, &label).await, label)
                    }
                };
                // Every service here uses the source's prearchive.
                let source_code = expect_in(source_role(who), openness, Need::Prearchive);
                let dest_code = service
                    .moves_elsewhere()
                    .then(|| expect_in(dest_role(who), openness, Need::Put));
                let (method, path, ok) = service.request(&uri, &dest);
                let expected = expect(source_code, dest_code, ok);
                let before = snapshot(server, &uri, &label).await;
                let (status, body) = send(server, method.clone(), &path, world.auth(who)).await;
                assert_eq!(
                    status,
                    expected,
                    "{who:?} {method} {path} on a {} source: {body}",
                    openness.name()
                );
                checked += 1;
                if status == ok && !service.keeps_session() {
                    // Consumed: the session is gone from the source.
                    let r = server
                        .get(&format!("{uri}?format=json"), &server.admin())
                        .await;
                    assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path} left {uri}");
                    continue;
                }
                let after = snapshot(server, &uri, &label).await;
                assert_eq!(before, after, "{who:?} {method} {path} changed something");
                current = Some((uri, label));
            }
        }
    }
    assert!(checked > 250, "{checked} cases");
}

async fn unassigned_sessions_by_role(server: &TestServer) {
    let world = build_world(server).await;
    let admin = server.admin();
    for openness in OPENNESS {
        let dest = dest_project(openness);
        for who in everyone() {
            // Nothing routes this study to a project: it lands in Unassigned.
            let generated = study(1, 1, |i| {
                i.patient_comments = Option::None;
                i.study_description = Some("no such project".to_owned());
            });
            let (status, uri) = server
                .import(
                    "",
                    zip_of(&entries_of(generated.dir.path(), &generated.files)),
                    &admin,
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{uri}");
            let uri = uri.trim_end().to_owned();
            assert!(
                uri.starts_with("/data/prearchive/projects/Unassigned/"),
                "{uri}"
            );
            let src = uri.trim_start_matches("/data");
            let auth = world.auth(who);
            let admin_only = if auth.is_some() { 403 } else { 401 };
            for (method, path) in [
                (Method::GET, format!("{uri}?format=json")),
                (Method::POST, format!("{uri}?action=build")),
                (Method::DELETE, uri.clone()),
                (
                    Method::POST,
                    format!("/data/services/prearchive/delete?src={src}"),
                ),
                (
                    Method::POST,
                    format!("/data/services/archive?src={src}&project={dest}"),
                ),
                (Method::POST, format!("{uri}?action=archive&project={dest}")),
            ] {
                let (status, body) = send(server, method.clone(), &path, auth).await;
                assert_eq!(status, admin_only, "{who:?} {method} {path}: {body}");
            }
            // Claiming: any logged-in user who may create in the target.
            let claim = match dest_role(who) {
                Option::None => 401,
                role => expect_in(role, openness, Need::Put),
            };
            let path = format!("/data/services/prearchive/move?src={src}&newProject={dest}");
            let (status, body) = send(server, Method::POST, &path, auth).await;
            assert_eq!(status, claim, "{who:?} claims into {dest}: {body}");
            let rows = server
                .rows("/data/prearchive/projects/Unassigned?format=json", &admin)
                .await;
            if status == 200 {
                assert!(
                    body.starts_with(&format!("/data/prearchive/projects/{dest}/")),
                    "{body}"
                );
                assert!(rows.is_empty(), "claimed session left Unassigned: {rows:?}");
                let (status, _) = send(server, Method::DELETE, body.trim_end(), Some(&admin)).await;
                assert_eq!(status, 200);
            } else {
                assert_eq!(rows.len(), 1, "a refused claim moved nothing");
                let (status, _) = send(server, Method::DELETE, &uri, Some(&admin)).await;
                assert_eq!(status, 200);
            }
        }
    }
    // Only admins put sessions into Unassigned by hand.
    let owner = world.auth(Who::User {
        source: Role::Owner,
        dest: Role::Owner,
    });
    let label = world.label();
    let uri = prearchive_session(server, &source_project(Openness::Private), &label).await;
    let before = snapshot(server, &uri, &label).await;
    let (status, body) = send(
        server,
        Method::POST,
        &format!("{uri}?action=move&newProject=Unassigned"),
        owner,
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(before, snapshot(server, &uri, &label).await);
}

async fn import_and_prearchive_code_by_destination_role(server: &TestServer) {
    let world = build_world(server).await;
    let admin = server.admin();
    for openness in OPENNESS {
        let dest = dest_project(openness);
        // An existing session to merge into.
        let existing = study(1, 1, |_| {});
        let (status, body) = server
            .import(
                &format!("dest=/archive/projects/{dest}&subject=SUBJ&session=EXISTING"),
                zip_of(&entries_of(existing.dir.path(), &existing.files)),
                &admin,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let callers: Vec<Who> = ROLES
            .iter()
            .map(|&dest| Who::User {
                source: Role::None,
                dest,
            })
            .chain([Who::Anonymous])
            .collect();
        for who in callers {
            let auth = world.auth(who);
            let role = dest_role(who);
            let put = expect_in(role, openness, Need::Put);
            for (query, merge) in [
                (
                    format!(
                        "dest=/archive/projects/{dest}&subject=SUBJ&session={}",
                        world.label()
                    ),
                    false,
                ),
                (
                    format!(
                        "dest=/prearchive/projects/{dest}&subject=SUBJ&session={}",
                        world.label()
                    ),
                    false,
                ),
                (
                    format!("project={dest}&subject=SUBJ&session={}", world.label()),
                    false,
                ),
                (
                    format!("project={dest}&subject=SUBJ&session=EXISTING&overwrite=append"),
                    true,
                ),
            ] {
                // A merge sends more series of the existing study.
                let generated = study(1, 1, |i| {
                    if merge {
                        i.study_uid = existing.uid.clone();
                        i.series_number = Some(world.next_label.get() as i64 + 100);
                    }
                });
                world.label();
                let body = zip_of(&entries_of(generated.dir.path(), &generated.files));
                let archive_before = walk(&server.data.path().join("archive"));
                let prearchive_before = walk(&server.data.path().join("prearchive"));
                let r = server
                    .req(
                        Method::POST,
                        &format!("/data/services/import?{query}"),
                        auth,
                    )
                    .header("Content-Type", "application/zip")
                    .body(body)
                    .send()
                    .await
                    .expect("POST import");
                let status = r.status().as_u16();
                let text = r.text().await.unwrap_or_default();
                assert_eq!(status, put, "{who:?} import {query}: {text}");
                if status != 200 {
                    assert_eq!(archive_before, walk(&server.data.path().join("archive")));
                    assert_eq!(
                        prearchive_before,
                        walk(&server.data.path().join("prearchive"))
                    );
                }
                assert!(server.staging_leftovers().is_empty());
            }
            let read = expect_in(role, openness, Need::ReadProject);
            let path = format!("/data/projects/{dest}/prearchive_code");
            let (status, body) = send(server, Method::GET, &path, auth).await;
            assert_eq!(status, read, "{who:?} GET {path}: {body}");
            let manage = expect_in(role, openness, Need::Manage);
            let path = format!("/data/projects/{dest}/prearchive_code/0");
            let (status, body) = send(server, Method::PUT, &path, auth).await;
            assert_eq!(status, manage, "{who:?} PUT {path}: {body}");
            let code = server
                .get(&format!("/data/projects/{dest}/prearchive_code"), &admin)
                .await
                .text()
                .await
                .expect("code");
            let expected_code = if manage == 200 { "0" } else { "4" };
            assert_eq!(code, expected_code, "{who:?} PUT {path}");
            put_ok(server, &format!("/data/projects/{dest}/prearchive_code/4")).await;
        }
    }
}
