//! The connect sequence of xnatpy/pyxnat: login, version, schema, search
//! elements, alias tokens.

use reqwest::{Method, StatusCode, header};
use xnatkit_model::XsiType;

use crate::harness::TestServer;

xnatkit_test_support::on_both_backends!(connect_sequence_and_logout, schema_defines_every_type);

async fn connect_sequence_and_logout(s: &TestServer) {
    let admin = s.admin();
    let root = s.http.get(format!("{}/", s.url)).send().await.unwrap();
    assert_eq!(root.status(), StatusCode::OK);
    assert!(root.text().await.unwrap().contains("user_info"));

    let login = s
        .http
        .put(format!("{}/data/services/auth", s.url))
        .form(&[
            ("username", admin.0.as_str()),
            ("password", admin.1.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), StatusCode::OK);
    let cookie = login
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("JSESSIONID="))
        .expect("Set-Cookie JSESSIONID")
        .to_owned();
    let id = login.text().await.unwrap();
    assert!(
        cookie.starts_with(&format!("JSESSIONID={id};")),
        "{cookie} vs {id}"
    );
    let with_cookie = |m: Method, p: &str| {
        s.http
            .request(m, format!("{}{p}", s.url))
            .header(header::COOKIE, format!("JSESSIONID={id}"))
    };

    let auth = with_cookie(Method::GET, "/data/auth").send().await.unwrap();
    assert_eq!(auth.status(), StatusCode::OK);
    assert_eq!(auth.text().await.unwrap(), "User 'admin' is logged in");
    let beat = with_cookie(Method::GET, "/data/JSESSION")
        .send()
        .await
        .unwrap();
    assert_eq!(beat.text().await.unwrap(), id);

    let version = s
        .http
        .get(format!("{}/data/version", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(
        version.text().await.unwrap(),
        "1.8.10",
        "no trailing newline"
    );
    let build: serde_json::Value = s
        .http
        .get(format!("{}/xapi/siteConfig/buildInfo?format=json", s.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(build["version"], "1.8.10");
    let elements: serde_json::Value = with_cookie(Method::GET, "/data/search/elements?format=json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(elements["ResultSet"]["Result"].is_array());

    // Logout invalidates the session: the cookie no longer authenticates.
    let out = with_cookie(Method::DELETE, "/data/JSESSION")
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), StatusCode::OK);
    let after = with_cookie(Method::GET, "/data/auth").send().await.unwrap();
    assert_eq!(after.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        after
            .headers()
            .get(header::CONTENT_TYPE)
            .unwrap()
            .to_str()
            .unwrap(),
        "text/plain; charset=utf-8"
    );

    // Basic auth works on any endpoint and opens a session cookie too.
    let basic = s.get("/data/JSESSION", &admin).await;
    assert_eq!(basic.status(), StatusCode::OK);
    assert!(basic.headers().get(header::SET_COOKIE).is_some());
}

async fn schema_defines_every_type(s: &TestServer) {
    let names: Vec<String> = s
        .http
        .get(format!("{}/xapi/schemas?format=json", s.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(names.contains(&"xnat".to_owned()));
    for name in &names {
        let r = s
            .http
            .get(format!("{}/xapi/schemas/{name}", s.url))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "schema {name}");
        let text = r.text().await.unwrap();
        assert!(text.contains("<xs:schema "), "schema {name} root");
    }
    let xnat = s
        .http
        .get(format!("{}/xapi/schemas/xnat", s.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for t in XsiType::ALL {
        let local = t.as_str().trim_start_matches("xnat:");
        assert!(
            xnat.contains(&format!("name=\"{local}\"")),
            "{local} missing"
        );
    }
}
