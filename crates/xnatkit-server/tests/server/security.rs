//! Users, alias tokens, lockout, session idle timeout and the project
//! permission matrix (accessibility × role × action).

use std::time::Duration;

use reqwest::{Method, StatusCode, header};

use crate::harness::{Backend, TestServer};

crate::on_both_backends!(tokens_and_user_admin, permission_matrix);

async fn tokens_and_user_admin(s: &TestServer) {
    let alice = s.create_user("alice").await;
    // Only admins manage users.
    let r = s
        .req(Method::POST, "/xapi/users", Some(&alice))
        .json(&serde_json::json!({"username": "mallory", "password": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let users: Vec<String> = s.get("/xapi/users", &s.admin()).await.json().await.unwrap();
    assert!(users.contains(&"alice".to_owned()));
    let dup = s
        .req(Method::POST, "/xapi/users", Some(&s.admin()))
        .json(&serde_json::json!({"username": "alice", "password": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(dup.status(), StatusCode::CONFLICT);

    // Alias token: UUID alias, works as Basic and through services/auth; invalidation ends it.
    let token: serde_json::Value = s
        .get("/data/services/tokens/issue?format=json", &alice)
        .await
        .json()
        .await
        .unwrap();
    let alias = token["alias"].as_str().unwrap().to_owned();
    let secret = token["secret"].as_str().unwrap().to_owned();
    assert!(uuid::Uuid::parse_str(&alias).is_ok());
    let creds = (alias.clone(), secret.clone());
    let auth = s.get("/data/auth", &creds).await;
    assert_eq!(auth.text().await.unwrap(), "User 'alice' is logged in");
    let root = s.get("/", &creds).await;
    assert!(
        root.headers().get(header::SET_COOKIE).is_some(),
        "GET / with Basic sets JSESSIONID"
    );
    let login = s
        .http
        .post(format!("{}/data/services/auth", s.url))
        .form(&[("username", alias.as_str()), ("password", secret.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), StatusCode::OK);
    let r = s
        .get(
            &format!("/data/services/tokens/invalidate/{alias}/{secret}"),
            &alice,
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        s.get("/data/auth", &creds).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

async fn permission_matrix(s: &TestServer) {
    let owner = s.create_user("owner1").await;
    let member = s.create_user("member1").await;
    let collaborator = s.create_user("collab1").await;
    let other = s.create_user("other1").await;
    for (project, level) in [
        ("PRIV", "private"),
        ("PROT", "protected"),
        ("PUBL", "public"),
    ] {
        s.seed(&owner, project).await;
        assert_eq!(
            s.put(
                &format!("/data/projects/{project}/accessibility/{level}"),
                &owner
            )
            .await
            .status(),
            StatusCode::OK
        );
        assert_eq!(
            s.put(
                &format!("/data/projects/{project}/users/member/member1"),
                &owner
            )
            .await
            .status(),
            StatusCode::OK
        );
        assert_eq!(
            s.put(
                &format!("/data/projects/{project}/users/collaborator/collab1"),
                &owner
            )
            .await
            .status(),
            StatusCode::OK
        );
    }
    // Default accessibility of a new project is protected.
    s.put("/data/projects/DEFAULTACC", &owner).await;
    assert_eq!(
        s.get("/data/projects/DEFAULTACC/accessibility", &owner)
            .await
            .text()
            .await
            .unwrap(),
        "protected"
    );

    let anonymous = None;
    type Who<'a> = (&'a str, Option<&'a (String, String)>);
    let roles: [Who; 5] = [
        ("owner", Some(&owner)),
        ("member", Some(&member)),
        ("collaborator", Some(&collaborator)),
        ("other", Some(&other)),
        ("anonymous", anonymous),
    ];
    let mut n = 0;
    for (project, level) in [
        ("PRIV", "private"),
        ("PROT", "protected"),
        ("PUBL", "public"),
    ] {
        for (role, auth) in roles {
            n += 1;
            let read_project = s
                .req(
                    Method::GET,
                    &format!("/data/projects/{project}?format=json"),
                    auth,
                )
                .send()
                .await
                .unwrap()
                .status()
                .as_u16();
            let read_subject = s
                .req(
                    Method::GET,
                    &format!("/data/projects/{project}/subjects/SUBJ1?format=json"),
                    auth,
                )
                .send()
                .await
                .unwrap()
                .status()
                .as_u16();
            let create = s
                .req(
                    Method::PUT,
                    &format!("/data/projects/{project}/subjects/N{n}?xsiType=xnat:subjectData"),
                    auth,
                )
                .send()
                .await
                .unwrap()
                .status()
                .as_u16();
            let edit = s.req(Method::PUT, &format!("/data/projects/{project}/subjects/SUBJ1?xnat:subjectData/fields/field%5Bname%3Dx%5D/field={n}"), auth).send().await.unwrap().status().as_u16();
            s.put(
                &format!("/data/projects/{project}/subjects/V{n}?xsiType=xnat:subjectData"),
                &owner,
            )
            .await;
            let delete = s
                .req(
                    Method::DELETE,
                    &format!("/data/projects/{project}/subjects/V{n}"),
                    auth,
                )
                .send()
                .await
                .unwrap()
                .status()
                .as_u16();
            let got = [read_project, read_subject, create, edit, delete];
            let want: [u16; 5] = match (level, role) {
                (_, "owner") => [200, 200, 201, 200, 200],
                (_, "member") => [200, 200, 201, 200, 403],
                (_, "collaborator") => [200, 200, 403, 403, 403],
                ("private", "other") => [404, 404, 404, 404, 404],
                ("protected", "other") => [200, 404, 403, 404, 403],
                ("public", "other") => [200, 200, 403, 403, 403],
                ("private", _) => [404, 404, 401, 401, 401],
                ("protected", _) => [200, 404, 401, 401, 401],
                _ => [200, 200, 401, 401, 401],
            };
            assert_eq!(
                got, want,
                "{level} project, {role}: [read project, read subject, create, edit, delete]"
            );
        }
    }
    // Listings show only visible projects; only owners manage the project.
    let listed: Vec<String> = s
        .rows("/data/projects?format=json", &other)
        .await
        .iter()
        .map(|r| r["ID"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        listed.contains(&"PROT".to_owned())
            && listed.contains(&"PUBL".to_owned())
            && !listed.contains(&"PRIV".to_owned())
    );
    assert_eq!(
        s.put("/data/projects/PUBL/accessibility/private", &member)
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        s.put("/data/projects/PUBL/users/owner/other1", &member)
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        s.delete("/data/projects/PRIV/users/member/member1", &owner)
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        s.get("/data/projects/PRIV?format=json", &member)
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lockout_after_repeated_failures() {
    let s = TestServer::start_with(Backend::Sqlite, |c| {
        c.max_failed_logins = 3;
        c.lockout = Duration::from_secs(600);
    })
    .await
    .unwrap();
    let bob = s.create_user("bob").await;
    let wrong = ("bob".to_owned(), "nope".to_owned());
    for _ in 0..3 {
        assert_eq!(
            s.get("/data/auth", &wrong).await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    // Locked now: even the right password is refused, with the same answer
    // as any failed login (a distinct "locked" text would tell a guesser
    // which names are real accounts).
    let r = s.get("/data/auth", &bob).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(r.text().await.unwrap(), xnatkit_server::auth::LOGIN_FAILED);
    // Unknown users and bad passwords are plain-text 401s.
    let r = s
        .get("/data/projects", &("ghost".to_owned(), "x".to_owned()))
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(
        r.headers()[header::WWW_AUTHENTICATE]
            .to_str()
            .unwrap()
            .starts_with("Basic")
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_sessions_expire() {
    let s = TestServer::start_with(Backend::Sqlite, |c| {
        c.session_timeout = Duration::from_secs(1)
    })
    .await
    .unwrap();
    let admin = s.admin();
    let id = s.get("/data/JSESSION", &admin).await.text().await.unwrap();
    let cookie = format!("JSESSIONID={id}");
    let ok = s
        .http
        .get(format!("{}/data/auth", s.url))
        .header(header::COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let expired = s
        .http
        .get(format!("{}/data/auth", s.url))
        .header(header::COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(expired.status(), StatusCode::UNAUTHORIZED);
    s.stop().await;
}
