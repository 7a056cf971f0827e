//! Sessions opened with alias tokens end with the token; the CSRF defence
//! refuses cross-site cookie writes but lets scripts and Basic through;
//! security headers and cookie flags on every answer; member e-mail
//! addresses only for those who manage the project.

use reqwest::{Method, Response, StatusCode, header};

use crate::harness::{Auth, TestServer};

crate::on_both_backends!(
    invalidating_a_token_ends_its_sessions,
    cross_site_cookie_writes_are_refused,
    answers_carry_security_headers_and_cookie_flags,
    member_emails_only_for_owners,
    password_change_and_disabling_end_sessions,
);

async fn issue_token(s: &TestServer, auth: &Auth) -> Auth {
    let token: serde_json::Value = s
        .get("/data/services/tokens/issue", auth)
        .await
        .json()
        .await
        .unwrap();
    (
        token["alias"].as_str().unwrap().to_owned(),
        token["secret"].as_str().unwrap().to_owned(),
    )
}

/// `GET path` with only the session cookie.
async fn with_cookie(s: &TestServer, method: Method, path: &str, session: &str) -> Response {
    s.http
        .request(method, format!("{}{path}", s.url))
        .header(header::COOKIE, format!("JSESSIONID={session}"))
        .send()
        .await
        .unwrap()
}

async fn form_login(s: &TestServer, auth: &Auth) -> String {
    let r = s
        .http
        .post(format!("{}/data/services/auth", s.url))
        .form(&[("username", auth.0.as_str()), ("password", auth.1.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    r.text().await.unwrap()
}

async fn invalidating_a_token_ends_its_sessions(s: &TestServer) {
    let alice = s.create_user("alice").await;
    let token = issue_token(s, &alice).await;
    let (alias, secret) = token.clone();
    // Sessions opened with the token: by form login and by Basic.
    let by_form = form_login(s, &token).await;
    let by_basic = s.get("/data/JSESSION", &token).await.text().await.unwrap();
    let by_password = form_login(s, &alice).await;
    for session in [&by_form, &by_basic, &by_password] {
        assert_eq!(
            with_cookie(s, Method::GET, "/data/auth", session)
                .await
                .status(),
            StatusCode::OK
        );
    }
    // Basic alias next to the token's own cookie keeps that session.
    let r = s
        .req(Method::GET, "/data/auth", Some(&token))
        .header(header::COOKIE, format!("JSESSIONID={by_form}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers().get(header::SET_COOKIE).is_none(),
        "no new session"
    );

    let r = s
        .get(
            &format!("/data/services/tokens/invalidate/{alias}/{secret}"),
            &alice,
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    for session in [&by_form, &by_basic] {
        assert_eq!(
            with_cookie(s, Method::GET, "/data/auth", session)
                .await
                .status(),
            StatusCode::UNAUTHORIZED,
            "a session opened with an invalidated token"
        );
    }
    // The password session is not the token's.
    assert_eq!(
        with_cookie(s, Method::GET, "/data/auth", &by_password)
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        s.get("/data/auth", &token).await.status(),
        StatusCode::UNAUTHORIZED
    );

    // A wrong secret invalidates nothing.
    let second = issue_token(s, &alice).await;
    let session = form_login(s, &second).await;
    assert_eq!(
        with_cookie(s, Method::GET, "/data/auth", &session)
            .await
            .status(),
        StatusCode::OK
    );
    let refused = s
        .req(
            Method::GET,
            &format!(
                "/data/services/tokens/invalidate/{}/{}",
                second.0, "wrong-secret"
            ),
            Some(&alice),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        with_cookie(s, Method::GET, "/data/auth", &session)
            .await
            .status(),
        StatusCode::OK
    );
}

async fn cross_site_cookie_writes_are_refused(s: &TestServer) {
    let owner = s.create_user("owner").await;
    s.seed(&owner, "CSRF").await;
    let session = form_login(s, &owner).await;
    let cookie = format!("JSESSIONID={session}");
    let own_origin = s.url.clone();
    let accessibility = || async {
        s.get("/data/projects/CSRF/accessibility", &owner)
            .await
            .text()
            .await
            .unwrap()
    };
    assert_eq!(accessibility().await, "protected");
    let make_public = format!("{}/data/projects/CSRF/accessibility/public", s.url);

    // Foreign pages: refused, nothing changed.
    for (name, value) in [
        ("origin", "http://evil.example"),
        ("origin", "null"),
        ("sec-fetch-site", "cross-site"),
        ("referer", "http://evil.example/form.html"),
    ] {
        for method in [Method::PUT, Method::POST] {
            let r = s
                .http
                .request(method.clone(), &make_public)
                .header(header::COOKIE, &cookie)
                .header(name, value)
                .send()
                .await
                .unwrap();
            assert_eq!(
                r.status(),
                StatusCode::FORBIDDEN,
                "{method} with {name}: {value}"
            );
        }
        assert_eq!(accessibility().await, "protected", "{name}: {value}");
    }
    let r = s
        .http
        .delete(format!("{}/data/projects/CSRF", s.url))
        .header(header::COOKIE, &cookie)
        .header("origin", "http://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        s.get("/data/projects/CSRF?format=json", &owner)
            .await
            .status(),
        StatusCode::OK
    );

    // Reads with a foreign Origin are not writes.
    let r = s
        .http
        .get(format!("{}/data/projects/CSRF/accessibility", s.url))
        .header(header::COOKIE, &cookie)
        .header("origin", "http://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    // Basic credentials are not ambient to another site: unaffected.
    let r = s
        .req(
            Method::PUT,
            "/data/projects/CSRF/accessibility/private",
            Some(&owner),
        )
        .header("origin", "http://evil.example")
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(accessibility().await, "private");

    // Same-origin pages and scripts (no Origin at all) may write.
    let r = s
        .http
        .put(&make_public)
        .header(header::COOKIE, &cookie)
        .header("origin", &own_origin)
        .header("sec-fetch-site", "same-origin")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(accessibility().await, "public");
    let r = s
        .http
        .put(format!(
            "{}/data/projects/CSRF/accessibility/protected",
            s.url
        ))
        .header(header::COOKIE, &cookie)
        .header("referer", format!("{own_origin}/app/page"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = with_cookie(
        s,
        Method::PUT,
        "/data/projects/CSRF/accessibility/private",
        &session,
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(accessibility().await, "private");
}

fn assert_security_headers(r: &Response, what: &str) {
    let h = r.headers();
    assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff", "{what}");
    assert_eq!(h[header::X_FRAME_OPTIONS], "DENY", "{what}");
    let csp = h[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"),
        "{what}: {csp}"
    );
}

async fn answers_carry_security_headers_and_cookie_flags(s: &TestServer) {
    let admin = s.admin();
    s.seed(&admin, "HDRS").await;
    // Data answers, errors (also from authentication) and the root page.
    let json = s.get("/data/projects?format=json", &admin).await;
    let missing = s.get("/data/projects/NOPE?format=json", &admin).await;
    let refused = s
        .get("/data/projects", &("admin".to_owned(), "wrong".to_owned()))
        .await;
    let anonymous = s.http.get(format!("{}/", s.url)).send().await.unwrap();
    for (r, what) in [
        (&json, "JSON listing"),
        (&missing, "404"),
        (&refused, "401"),
        (&anonymous, "root page"),
    ] {
        assert_security_headers(r, what);
        assert_eq!(r.headers()[header::CACHE_CONTROL], "no-store", "{what}");
    }

    // File downloads keep ranges (and resume) working.
    let resource = "/data/projects/HDRS/resources/DOCS";
    assert_eq!(s.put(resource, &admin).await.status(), StatusCode::CREATED);
    let body: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
    let r = s
        .req(
            Method::PUT,
            &format!("{resource}/files/a.bin"),
            Some(&admin),
        )
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let r = s
        .req(
            Method::GET,
            &format!("{resource}/files/a.bin"),
            Some(&admin),
        )
        .header(header::RANGE, "bytes=100-")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_security_headers(&r, "file range");
    assert!(r.headers().get(header::CACHE_CONTROL).is_none());
    assert_eq!(r.bytes().await.unwrap().as_ref(), &body[100..]);

    // The session cookie: HttpOnly, SameSite=Lax, not Secure over plain HTTP.
    let r = s.get("/data/JSESSION", &admin).await;
    let cookies: Vec<String> = r
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    let session = cookies
        .iter()
        .find(|c| c.starts_with("JSESSIONID="))
        .expect("JSESSIONID cookie");
    assert!(session.contains("; HttpOnly"), "{session}");
    assert!(session.contains("; SameSite=Lax"), "{session}");
    assert!(!session.contains("Secure"), "{session}");
    let logout = s
        .http
        .delete(format!("{}/data/JSESSION", s.url))
        .send()
        .await
        .unwrap();
    let cleared = logout.headers()[header::SET_COOKIE].to_str().unwrap();
    assert!(
        cleared.contains("Max-Age=0") && cleared.contains("SameSite=Lax"),
        "{cleared}"
    );
}

async fn member_emails_only_for_owners(s: &TestServer) {
    let owner = s.create_user("powner").await;
    let member = s.create_user("pmember").await;
    s.create_project_as(&owner, "MAIL").await;
    assert_eq!(
        s.put("/data/projects/MAIL/users/member/pmember", &owner)
            .await
            .status(),
        StatusCode::OK
    );
    let emails = |auth: Auth| async move {
        s.rows("/data/projects/MAIL/users?format=json", &auth)
            .await
            .iter()
            .map(|row| {
                (
                    row["login"].as_str().unwrap().to_owned(),
                    row["email"].as_str().unwrap().to_owned(),
                )
            })
            .collect::<Vec<_>>()
    };
    let seen_by_owner = emails(owner.clone()).await;
    assert!(seen_by_owner.contains(&("pmember".to_owned(), "pmember@example.org".to_owned())));
    let seen_by_admin = emails(s.admin()).await;
    assert_eq!(seen_by_admin, seen_by_owner);
    let seen_by_member = emails(member.clone()).await;
    assert_eq!(seen_by_member.len(), seen_by_owner.len());
    assert!(
        seen_by_member.iter().all(|(_, email)| email.is_empty()),
        "{seen_by_member:?}"
    );
    // Adding a name answers the same whether or not it is an account.
    let real = s
        .put("/data/projects/MAIL/users/collaborator/pmember", &owner)
        .await;
    let ghost = s
        .put(
            "/data/projects/MAIL/users/collaborator/no-such-user",
            &owner,
        )
        .await;
    assert_eq!(real.status(), ghost.status());
    assert_eq!(real.text().await.unwrap(), ghost.text().await.unwrap());
    let logins: Vec<String> = emails(owner.clone())
        .await
        .into_iter()
        .map(|(l, _)| l)
        .collect();
    assert!(!logins.contains(&"no-such-user".to_owned()));
}

async fn password_change_and_disabling_end_sessions(s: &TestServer) {
    let ivan = s.create_user("ivan").await;
    let judy = s.create_user("judy").await;
    let ivan_session = form_login(s, &ivan).await;
    let judy_session = form_login(s, &judy).await;
    let alive = |session: String| async move {
        with_cookie(s, Method::GET, "/data/auth", &session)
            .await
            .status()
    };
    assert_eq!(alive(ivan_session.clone()).await, StatusCode::OK);

    // Users change their own password; others' only as admin.
    let r = s
        .req(Method::PUT, "/xapi/users/judy", Some(&ivan))
        .json(&serde_json::json!({"password": "Hijacked-1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = s
        .req(Method::PUT, "/xapi/users/ivan", Some(&ivan))
        .json(&serde_json::json!({"enabled": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::FORBIDDEN,
        "only admins enable accounts"
    );
    let r = s
        .req(Method::PUT, "/xapi/users/ivan", Some(&ivan))
        .json(&serde_json::json!({"password": "New-ivan-2"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(alive(ivan_session.clone()).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        s.get("/data/auth", &ivan).await.status(),
        StatusCode::UNAUTHORIZED,
        "the old password (cached before) no longer works"
    );
    let renewed = ("ivan".to_owned(), "New-ivan-2".to_owned());
    assert_eq!(s.get("/data/auth", &renewed).await.status(), StatusCode::OK);
    assert_eq!(alive(judy_session.clone()).await, StatusCode::OK);

    // Disabling ends the sessions; enabling does not bring them back.
    assert_eq!(s.get("/data/auth", &judy).await.status(), StatusCode::OK);
    assert_eq!(
        s.put("/xapi/users/judy/enabled/false", &s.admin())
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(alive(judy_session.clone()).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        s.get("/data/auth", &judy).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        s.put("/xapi/users/judy/enabled/true", &s.admin())
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(alive(judy_session).await, StatusCode::UNAUTHORIZED);
    assert_eq!(s.get("/data/auth", &judy).await.status(), StatusCode::OK);
    assert_eq!(
        s.put("/xapi/users/nobody/enabled/false", &s.admin())
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
}

impl TestServer {
    /// A project created by `auth` (its owner).
    async fn create_project_as(&self, auth: &Auth, project: &str) {
        let r = self.put(&format!("/data/projects/{project}"), auth).await;
        assert_eq!(r.status(), StatusCode::CREATED, "create project {project}");
    }
}
