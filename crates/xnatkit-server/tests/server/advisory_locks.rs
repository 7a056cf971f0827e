//! The cross-server locks of `store::locks` on PostgreSQL: two stores on one
//! database, as two servers have, exclude each other on a session key and
//! on a resource in use; a waiter that gives up leaves no lock behind; and
//! a server's instance lock says whether it is alive. PostgreSQL only: on
//! SQLite the locks are in-process by design (one server per data folder).

use std::time::Duration;

use xnatkit_server::store::locks::{InstanceHold, Mode};
use xnatkit_server::store::{DEFAULT_POOL_SIZE, Store};

use crate::harness::{fresh_postgres_database, postgres_admin_url};

async fn drop_database(admin: &str, stores: [Store; 2], name: &str) {
    use sqlx::Connection;
    for store in stores {
        store.close().await;
    }
    let mut conn = sqlx::AnyConnection::connect(admin).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
    )))
    .execute(&mut conn)
    .await
    .unwrap();
}

/// Polls `check` until it holds: a dropped guard gives its lock back from a
/// spawned task, a moment later. The bound only keeps a bug from hanging.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..400 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{what} never happened");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_stores_exclude_each_other() {
    let Some(admin) = postgres_admin_url() else {
        return;
    };
    let (url, name) = fresh_postgres_database(&admin).await;
    let one = Store::open(&url, DEFAULT_POOL_SIZE).await.unwrap();
    let two = Store::open(&url, DEFAULT_POOL_SIZE).await.unwrap();

    // A session key held by one is taken for the other.
    let held = one.locks().lock("archive/P/s1").await.unwrap();
    assert!(
        two.locks()
            .try_cluster("archive/P/s1", Mode::Exclusive)
            .await
            .unwrap()
            .is_none()
    );
    // A waiter on the other side that gives up leaves nothing held.
    let gave_up =
        tokio::time::timeout(Duration::from_millis(100), two.locks().lock("archive/P/s1")).await;
    assert!(gave_up.is_err(), "the lock is held by the other store");
    drop(held);
    eventually("the session key is free for the other store", || async {
        match two
            .locks()
            .try_cluster("archive/P/s1", Mode::Exclusive)
            .await
            .unwrap()
        {
            Some(hold) => {
                hold.release().await;
                true
            }
            None => false,
        }
    })
    .await;
    drop(one.locks().lock("archive/P/s1").await.unwrap());

    // An upload using a resource through one server keeps the other from
    // removing it; uses are shared.
    let using = one.locks().use_resource(7).await.unwrap();
    assert!(two.locks().resource_unused(7).await.unwrap().is_none());
    let also_using = two.locks().use_resource(7).await.unwrap();
    drop(also_using);
    drop(using);
    eventually("the resource is unused on both", || async {
        two.locks().resource_unused(7).await.unwrap().is_some()
    })
    .await;
    drop_database(&admin, [one, two], &name).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_is_gone_once_its_instance_lock_is() {
    let Some(admin) = postgres_admin_url() else {
        return;
    };
    let (url, name) = fresh_postgres_database(&admin).await;
    let one = Store::open(&url, DEFAULT_POOL_SIZE).await.unwrap();
    let two = Store::open(&url, DEFAULT_POOL_SIZE).await.unwrap();
    assert_ne!(one.instance(), two.instance());
    let alive = InstanceHold::open(one.pool(), one.instance())
        .await
        .unwrap();
    assert!(
        two.locks()
            .instance_gone(one.instance())
            .await
            .unwrap()
            .is_none()
    );
    alive.close().await;
    eventually("a closed instance connection frees its lock", || async {
        two.locks()
            .instance_gone(one.instance())
            .await
            .unwrap()
            .is_some()
    })
    .await;
    drop_database(&admin, [one, two], &name).await;
}
