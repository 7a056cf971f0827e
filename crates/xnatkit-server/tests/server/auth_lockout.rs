//! Login attempts against the lockout: counted before hashing (parallel
//! guesses cannot outrun the limit), reset by any good login (also one
//! answered from the credential cache), per alias token as well as per
//! user, and one identical answer for every refused login.

use std::sync::Arc;
use std::time::Duration;

use reqwest::{Method, StatusCode, header};
use xnatkit_server::ServerConfig;
use xnatkit_server::auth::LOGIN_FAILED;
use xnatkit_server::store::{AttemptClaim, Store};

use crate::harness::{Auth, Backend, TestServer};

const LIMIT: u32 = 3;

/// A server whose accounts lock after [`LIMIT`] failures, and a second
/// connection to its database to watch the counters.
async fn start(backend: Backend) -> Option<(TestServer, Store)> {
    let mut url = None;
    let server = TestServer::start_with(backend, |c: &mut ServerConfig| {
        c.max_failed_logins = LIMIT;
        c.lockout = Duration::from_secs(600);
        url = Some(c.database_url());
    })
    .await?;
    let store = Store::open(&url.expect("database URL"))
        .await
        .expect("second connection to the test database");
    Some((server, store))
}

macro_rules! on_both_backends_with_lockout {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let (server, store) = super::start(crate::harness::Backend::Sqlite)
                        .await
                        .expect("SQLite is always available");
                    super::$name(&server, &store).await;
                    store.close().await;
                    server.stop().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some((server, store)) = super::start(crate::harness::Backend::Postgres).await else {
                        return;
                    };
                    super::$name(&server, &store).await;
                    store.close().await;
                    server.stop().await;
                }
            )*
        }
    };
}

on_both_backends_with_lockout!(
    parallel_claims_grant_exactly_the_limit,
    a_burst_of_wrong_guesses_locks_before_the_right_password,
    remembered_good_logins_reset_the_count,
    alias_token_guessing_is_locked_per_alias,
    every_refused_login_answers_the_same,
    an_expired_token_ends_its_sessions,
    parallel_first_logins_with_the_right_password_all_succeed,
);

async fn status_and_body(s: &TestServer, path: &str, auth: &Auth) -> (StatusCode, String) {
    let r = s.get(path, auth).await;
    let status = r.status();
    (status, r.text().await.unwrap())
}

async fn parallel_claims_grant_exactly_the_limit(s: &TestServer, store: &Store) {
    s.create_user("carol").await;
    let store = Arc::new(store.clone());
    let mut claims = Vec::new();
    for _ in 0..40 {
        let store = store.clone();
        claims.push(tokio::spawn(async move {
            store
                .claim_login_attempt("carol", i64::from(LIMIT), 600_000)
                .await
                .unwrap()
        }));
    }
    let mut granted = 0;
    for claim in claims {
        if claim.await.unwrap() == AttemptClaim::Granted {
            granted += 1;
        }
    }
    assert_eq!(granted, LIMIT, "40 parallel attempts, limit {LIMIT}");
    assert_eq!(
        store.claim_login_attempt("nobody", 3, 1).await.unwrap(),
        AttemptClaim::Unknown
    );
    // A success clears count and lock.
    store.login_succeeded("carol").await.unwrap();
    assert_eq!(
        store
            .claim_login_attempt("carol", i64::from(LIMIT), 600_000)
            .await
            .unwrap(),
        AttemptClaim::Granted
    );
}

async fn a_burst_of_wrong_guesses_locks_before_the_right_password(s: &TestServer, store: &Store) {
    let bob = s.create_user("bob").await;
    let mut guesses = Vec::new();
    for n in 0..39 {
        let request = s
            .req(Method::GET, "/data/auth", None)
            .basic_auth("bob", Some(format!("guess-{n}")));
        guesses.push(tokio::spawn(async move {
            request.send().await.unwrap().status()
        }));
    }
    // The right password joins the burst once the guesses are counted
    // (which happens before any of them is hashed).
    let mut polls = 0;
    while store.user("bob").await.unwrap().unwrap().failed_logins < i64::from(LIMIT) {
        polls += 1;
        assert!(polls < 20_000, "the burst's attempts were never counted");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Refused either way: as a failed login, or (while the burst fills the
    // hashing pool) as busy — never let in.
    let (status, body) = status_and_body(s, "/data/auth", &bob).await;
    assert!(
        (status, body.as_str()) == (StatusCode::UNAUTHORIZED, LOGIN_FAILED)
            || status == StatusCode::SERVICE_UNAVAILABLE,
        "right password during the burst: {status} {body}"
    );
    for guess in guesses {
        let status = guess.await.unwrap();
        assert!(
            status == StatusCode::UNAUTHORIZED || status == StatusCode::SERVICE_UNAVAILABLE,
            "wrong guess answered {status}"
        );
    }
    // Still locked after the burst.
    let (status, body) = status_and_body(s, "/data/auth", &bob).await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::UNAUTHORIZED, LOGIN_FAILED)
    );
    let user = store.user("bob").await.unwrap().unwrap();
    assert!(user.locked_until > xnatkit_server::store::now_ms());
}

async fn remembered_good_logins_reset_the_count(s: &TestServer, store: &Store) {
    let dave = s.create_user("dave").await;
    let wrong = ("dave".to_owned(), "not-it".to_owned());
    // The first good login runs argon2 and fills the credential cache.
    assert_eq!(s.get("/data/auth", &dave).await.status(), StatusCode::OK);
    for _ in 0..4 {
        for _ in 0..(LIMIT - 1) {
            assert_eq!(
                s.get("/data/auth", &wrong).await.status(),
                StatusCode::UNAUTHORIZED
            );
        }
        // Answered from the cache, and still a success that resets the count.
        assert_eq!(s.get("/data/auth", &dave).await.status(), StatusCode::OK);
        let user = store.user("dave").await.unwrap().unwrap();
        assert_eq!(user.failed_logins, 0);
    }
    // The cache does not open a locked account.
    for _ in 0..LIMIT {
        s.get("/data/auth", &wrong).await;
    }
    let (status, body) = status_and_body(s, "/data/auth", &dave).await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::UNAUTHORIZED, LOGIN_FAILED)
    );
}

async fn alias_token_guessing_is_locked_per_alias(s: &TestServer, store: &Store) {
    let erin = s.create_user("erin").await;
    let token: serde_json::Value = s
        .get("/data/services/tokens/issue", &erin)
        .await
        .json()
        .await
        .unwrap();
    let alias = token["alias"].as_str().unwrap().to_owned();
    let secret = token["secret"].as_str().unwrap().to_owned();
    let good = (alias.clone(), secret.clone());
    // Parallel guesses are counted like passwords: exactly LIMIT verified.
    let store = Arc::new(store.clone());
    let mut claims = Vec::new();
    for _ in 0..20 {
        let (store, alias) = (store.clone(), alias.clone());
        claims.push(tokio::spawn(async move {
            store
                .claim_token_attempt(&alias, i64::from(LIMIT), 600_000)
                .await
                .unwrap()
        }));
    }
    let mut granted = 0;
    for claim in claims {
        if claim.await.unwrap() == AttemptClaim::Granted {
            granted += 1;
        }
    }
    assert_eq!(granted, LIMIT);
    // The alias is locked now: the right secret is refused everywhere…
    let (status, body) = status_and_body(s, "/data/auth", &good).await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::UNAUTHORIZED, LOGIN_FAILED)
    );
    let validated: serde_json::Value = s
        .http
        .get(format!(
            "{}/data/services/tokens/validate/{alias}/{secret}",
            s.url
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(validated, serde_json::json!({}));
    // …while the owner's password and a fresh token still work.
    assert_eq!(s.get("/data/auth", &erin).await.status(), StatusCode::OK);
    let fresh: serde_json::Value = s
        .get("/data/services/tokens/issue", &erin)
        .await
        .json()
        .await
        .unwrap();
    let fresh = (
        fresh["alias"].as_str().unwrap().to_owned(),
        fresh["secret"].as_str().unwrap().to_owned(),
    );
    assert_eq!(s.get("/data/auth", &fresh).await.status(), StatusCode::OK);
    // Over HTTP: LIMIT wrong secrets lock the fresh alias too.
    let wrong = (fresh.0.clone(), "x".repeat(64));
    for _ in 0..LIMIT {
        assert_eq!(
            s.get("/data/auth", &wrong).await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    // A cached good secret does not open a locked alias either.
    assert_eq!(
        s.get("/data/auth", &fresh).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

async fn every_refused_login_answers_the_same(s: &TestServer, _store: &Store) {
    s.create_user("frank").await;
    s.create_user("grace").await;
    let answer = |auth: Auth| async move {
        let r = s.get("/data/projects?format=json", &auth).await;
        let status = r.status();
        let challenge = r.headers().get(header::WWW_AUTHENTICATE).cloned();
        (status, challenge, r.text().await.unwrap())
    };
    let unknown = answer(("nosuchuser".to_owned(), "pw".to_owned())).await;
    let wrong = answer(("frank".to_owned(), "wrong".to_owned())).await;
    assert_eq!(unknown.0, StatusCode::UNAUTHORIZED);
    assert_eq!(unknown.2, LOGIN_FAILED);
    assert_eq!(unknown, wrong, "unknown user vs wrong password");
    // A locked account answers like the others too.
    for _ in 0..LIMIT {
        answer(("grace".to_owned(), "wrong".to_owned())).await;
    }
    let locked = answer(("grace".to_owned(), "Pw-grace-1".to_owned())).await;
    assert_eq!(unknown, locked, "unknown user vs locked account");
    // The form login answers the same for all of them.
    let form = |user: &'static str, password: &'static str| async move {
        let r = s
            .http
            .post(format!("{}/data/services/auth", s.url))
            .form(&[("username", user), ("password", password)])
            .send()
            .await
            .unwrap();
        (r.status(), r.text().await.unwrap())
    };
    let unknown = form("nosuchuser", "pw").await;
    assert_eq!(unknown, form("frank", "wrong").await);
    assert_eq!(unknown, form("grace", "Pw-grace-1").await);
    assert_eq!(unknown.0, StatusCode::UNAUTHORIZED);
}

async fn an_expired_token_ends_its_sessions(s: &TestServer, store: &Store) {
    let heidi = s.create_user("heidi").await;
    let token: serde_json::Value = s
        .get("/data/services/tokens/issue", &heidi)
        .await
        .json()
        .await
        .unwrap();
    let alias = token["alias"].as_str().unwrap();
    let secret = token["secret"].as_str().unwrap();
    let login = s
        .http
        .post(format!("{}/data/services/auth", s.url))
        .form(&[("username", alias), ("password", secret)])
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), StatusCode::OK);
    let cookie = format!("JSESSIONID={}", login.text().await.unwrap());
    let check = || async {
        s.http
            .get(format!("{}/data/auth", s.url))
            .header(header::COOKIE, &cookie)
            .send()
            .await
            .unwrap()
            .status()
    };
    assert_eq!(check().await, StatusCode::OK);
    sqlx::query("UPDATE alias_tokens SET expires = 1 WHERE alias = $1")
        .bind(alias)
        .execute(store.pool())
        .await
        .unwrap();
    assert_eq!(check().await, StatusCode::UNAUTHORIZED);
}

/// A client opening many connections at once with the right password (no
/// session or cached check yet) is one login attempt, not one per
/// connection: it must not trip the lockout on itself.
async fn parallel_first_logins_with_the_right_password_all_succeed(s: &TestServer, store: &Store) {
    let (name, password) = s.create_user("ken").await;
    let mut logins = Vec::new();
    for _ in 0..(4 * LIMIT) {
        let request = s
            .req(Method::GET, "/data/auth", None)
            .basic_auth(&name, Some(&password));
        logins.push(tokio::spawn(async move {
            request.send().await.unwrap().status()
        }));
    }
    for login in logins {
        assert_eq!(login.await.unwrap(), StatusCode::OK);
    }
    let user = store.user("ken").await.unwrap().unwrap();
    assert_eq!((user.failed_logins, user.locked_until), (0, 0));
}
