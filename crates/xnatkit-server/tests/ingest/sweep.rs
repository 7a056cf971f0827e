//! The RECEIVING-session rebuilder, driven directly on a real state
//! (SQLite in a temp dir): gradual uploads become READY, or are archived
//! when the project auto-archives.

use std::time::Duration;

use xnatkit_dicom::InstanceRef;
use xnatkit_server::access::Caller;
use xnatkit_server::import::{ImportHandler, ImportOptions, import_instances};
use xnatkit_server::prearchive::sweep::build_stale;
use xnatkit_server::{AppState, ServerConfig};

use crate::harness::study;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quiet_receiving_sessions_are_built_or_archived() {
    let data = tempfile::tempdir().expect("dir");
    let mut config = ServerConfig::new(data.path());
    config.admin_password = Some("Sweep-admin-1".to_owned());
    let (state, _) = AppState::open(config).await.expect("state");
    let store = state.store();
    let admin = Caller {
        user: store.user("admin").await.expect("user"),
        session_id: None,
    };
    for project in ["MANUAL", "AUTO"] {
        store
            .create_project(
                project,
                project,
                "",
                xnatkit_model::Accessibility::Private,
                "admin",
            )
            .await
            .expect("project");
    }
    // New projects auto-archive by default; MANUAL opts out.
    store.set_prearchive_code("MANUAL", 0).await.expect("code");
    store.set_prearchive_code("AUTO", 4).await.expect("code");

    for project in ["MANUAL", "AUTO"] {
        let generated = study(1, 2, |_| {});
        let instances = generated
            .files
            .iter()
            .map(|path| InstanceRef {
                path: path.clone(),
                header: xnatkit_dicom::read_header(path).expect("header"),
            })
            .collect();
        let options = ImportOptions {
            hints: xnatkit_dicom::RoutingHints {
                project: Some(project.to_owned()),
                subject: Some("S".to_owned()),
                session: Some("G".to_owned()),
            },
            handler: ImportHandler::GradualDicom,
            ..ImportOptions::default()
        };
        let uris = import_instances(&state, &admin, &options, instances)
            .await
            .expect("import");
        assert!(uris[0].starts_with(&format!("/data/prearchive/projects/{project}/")));
    }
    // Not quiet long enough yet: nothing changes.
    build_stale(&state, Duration::from_secs(3600)).await;
    let manual = store
        .prearchive_sessions(Some("MANUAL"))
        .await
        .expect("list");
    assert_eq!(manual[0].status, "RECEIVING");

    build_stale(&state, Duration::ZERO).await;
    let manual = store
        .prearchive_sessions(Some("MANUAL"))
        .await
        .expect("list");
    assert_eq!(manual[0].status, "READY");
    assert!(
        store
            .prearchive_sessions(Some("AUTO"))
            .await
            .expect("list")
            .is_empty()
    );
    let archived = store.experiment_by_label("AUTO", "G").await.expect("query");
    assert!(archived.is_some(), "the AUTO session was archived");
    store.close().await;
}
