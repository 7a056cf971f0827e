//! Pass two against a real server on loopback: the seed's example, reruns,
//! a vanished file, the XNAT-PIC folder example with custom variables and
//! several modalities, and a user without permission.

use std::path::Path;

use crate::common::server;
use tokio_util::sync::CancellationToken;
use xnatkit_client::{Request, XnatClient};
use xnatkit_upload::files_sheet::{self, FileRow};
use xnatkit_upload::run::{RunOptions, RunReport, Silent, prepare, run};
use xnatkit_upload::workbook::Workbook;
use xnatkit_upload::{Config, ScanOptions, scan_to_workbook, write_default};

fn options(project: &str) -> RunOptions {
    RunOptions {
        dir: None,
        project: Some(project.to_owned()),
        jobs: 4,
        overwrite: false,
        create_project: false,
        trigger_pipelines: true,
    }
}

async fn upload(client: &XnatClient, sheet: &Path, options: &RunOptions) -> RunReport {
    let prepared = prepare(sheet, true).unwrap();
    run(client, prepared, options, &Silent, CancellationToken::new())
        .await
        .unwrap()
}

fn rows(sheet: &Path) -> Vec<FileRow> {
    let wb = Workbook::open(sheet).unwrap();
    let config = Config::read(&wb).unwrap();
    files_sheet::read_rows(&wb, &config).unwrap().1
}

fn scan(sheet: &Path, dir: &Path) {
    scan_to_workbook(
        sheet,
        dir,
        &ScanOptions {
            include_unmatched: true,
            jobs: 2,
        },
    )
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_example_uploads_verifies_and_reruns() {
    let srv = server::start().await;
    let admin = server::admin(&srv).await;
    server::create_project(&admin, "Test001").await;
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    crate::common::write_seed_tree(&data);
    let sheet = tmp.path().join("s.xlsx");
    write_default(&sheet, false).unwrap();
    scan(&sheet, &data);

    // One file vanishes between scan and upload: only its row fails.
    let vanished = data.join("Roe^Jane-0342/20200623/Neck CT/scan0001.dcm");
    let kept = std::fs::read(&vanished).unwrap();
    std::fs::remove_file(&vanished).unwrap();

    let report = upload(&admin, &sheet, &options("Test001")).await;
    assert_eq!((report.uploaded, report.failed), (13, 1), "{report:?}");
    let after = rows(&sheet);
    let failed: Vec<&FileRow> = after
        .iter()
        .filter(|r| r.upload && !r.is_success())
        .collect();
    assert_eq!(failed.len(), 1);
    assert!(
        failed[0].status.contains("file not found"),
        "{}",
        failed[0].status
    );

    let tree = server::hierarchy(&admin, "Test001").await;
    assert_eq!(tree.len(), 13);
    assert!(
        tree.contains(
            &"0001 / 0001_CT1 (xnat:ctSessionData) / 2 (Chest_CT, xnat:ctScanData) / scan0000.dcm"
                .to_owned()
        ),
        "{tree:#?}"
    );
    assert!(
        tree.iter()
            .any(|l| l.starts_with("0342 / 0342_CT2 (xnat:ctSessionData) / 4 (Neck_CT"))
    );

    // Put it back: the rerun sends only that file, visits keep their numbers.
    std::fs::write(&vanished, kept).unwrap();
    let report = upload(&admin, &sheet, &options("Test001")).await;
    assert_eq!(
        (report.uploaded, report.failed, report.already_done),
        (1, 0, 13),
        "{report:?}"
    );
    assert!(rows(&sheet).iter().all(|r| r.is_success()));
    let tree = server::hierarchy(&admin, "Test001").await;
    assert_eq!(tree.len(), 14);
    assert!(
        tree.contains(
            &"0342 / 0342_CT2 (xnat:ctSessionData) / 4 (Neck_CT, xnat:ctScanData) / scan0001.dcm"
                .to_owned()
        )
    );

    // A third run has nothing to do.
    let report = upload(&admin, &sheet, &options("Test001")).await;
    assert_eq!((report.uploaded, report.already_done), (0, 14));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_whose_status_was_lost_are_verified_not_resent() {
    let srv = server::start().await;
    let admin = server::admin(&srv).await;
    server::create_project(&admin, "P1").await;
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    crate::common::write_seed_tree(&data);
    let sheet = tmp.path().join("s.xlsx");
    write_default(&sheet, false).unwrap();
    scan(&sheet, &data);
    let pristine = std::fs::read(&sheet).unwrap();
    upload(&admin, &sheet, &options("P1")).await;
    // As if the process died before saving: statuses gone, files on the server.
    std::fs::write(&sheet, &pristine).unwrap();
    // Change one file locally: same name, other content → refused without --overwrite.
    let changed = data.join("Doe^John-0001/20200312/Chest CT/scan0002.dcm");
    let mut bytes = std::fs::read(&changed).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&changed, &bytes).unwrap();
    let report = upload(&admin, &sheet, &options("P1")).await;
    assert_eq!((report.uploaded, report.failed), (13, 1), "{report:?}");
    let refused = rows(&sheet).into_iter().find(|r| !r.is_success()).unwrap();
    assert!(refused.status.contains("--overwrite"), "{}", refused.status);
    let mut with_overwrite = options("P1");
    with_overwrite.overwrite = true;
    let report = upload(&admin, &sheet, &with_overwrite).await;
    assert_eq!((report.uploaded, report.failed), (1, 0), "{report:?}");
}

/// XNAT-PIC's layout: PROJECT/<group>/<timepoint>/<mouse>/<scan folder>/files,
/// MR, CT, PET and US sessions, a physiology log that is not DICOM.
fn write_pic_tree(root: &Path) {
    let mice = [("treated", "MOUSE01"), ("control", "MOUSE02")];
    let timepoints = [("pre", "20240101"), ("post1w", "20240108")];
    for (group, mouse) in mice {
        for (timepoint, date) in timepoints {
            let base = root.join(group).join(timepoint).join(mouse);
            for (folder, modality, series) in [
                ("T2w", "MR", 1),
                ("CT", "CT", 2),
                ("FDG", "PT", 3),
                ("Bmode", "US", 4),
            ] {
                for n in 1..=2 {
                    crate::common::write_instance(
                        &base.join(folder).join(format!("img{n}.dcm")),
                        &crate::common::Instance {
                            patient: mouse,
                            study_date: date,
                            modality,
                            series_number: series,
                            instance_number: n,
                        },
                    );
                }
            }
            std::fs::create_dir_all(base.join("physio")).unwrap();
            std::fs::write(
                base.join("physio").join("resp.log"),
                format!("{mouse} {timepoint} breathing"),
            )
            .unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xnat_pic_folders_give_custom_variables_and_modalities() {
    let srv = server::start().await;
    let admin = server::admin(&srv).await;
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("PROJECT");
    write_pic_tree(&data);
    let sheet = tmp.path().join("pic.xlsx");
    write_default(&sheet, false).unwrap();
    {
        let mut wb = Workbook::open(&sheet).unwrap();
        let config = wb.sheet_mut("Configuration").unwrap();
        for (cell, value) in [
            ("B5", "PIC"),
            ("C5", "{group}"),
            ("D5", "{timepoint}"),
            ("E5", "{Mouse}"),
            ("F5", "{Directory}"),
            ("G5", "{filename}"),
            ("C10", "Mouse"),
            // Extra mapping rows go between Dataset (row 12) and XNAT (row 14).
            ("B13", "Resource"),
            ("C13", "Directory"),
        ] {
            config.cell_mut(cell).set_value_string(value);
        }
        // Custom variables: insert two more mapping rows above the XNAT section.
        config.cell_mut("A14").set_value_string("");
        config.cell_mut("A16").set_value_string("XNAT");
        for (cell, value) in [
            ("B14", "Subject:group"),
            ("C14", "group"),
            ("B15", "Session:timepoint"),
            ("C15", "timepoint"),
            ("B16", "Project"),
            ("C16", "PIC"),
            ("B17", "Server"),
            ("C17", "http://localhost:8080"),
        ] {
            config.cell_mut(cell).set_value_string(value);
        }
        wb.save().unwrap();
    }
    scan(&sheet, &data);
    let scanned = rows(&sheet);
    assert_eq!(
        scanned.iter().filter(|r| r.upload).count(),
        2 * 2 * (8 + 1),
        "{scanned:#?}"
    );

    let mut opts = options("PIC");
    opts.create_project = true;
    let report = upload(&admin, &sheet, &opts).await;
    let bad: Vec<String> = rows(&sheet)
        .iter()
        .filter(|r| !r.is_success())
        .map(|r| format!("{}: {}", r.file, r.status))
        .collect();
    assert_eq!(
        (report.uploaded, report.failed),
        (36, 0),
        "{report:?} {bad:#?}"
    );

    let sessions = admin.sessions("PIC", "MOUSE01").await.unwrap();
    let mut kinds: Vec<(String, String)> = sessions
        .iter()
        .map(|s| (s.label.clone(), s.xsi_type.clone()))
        .collect();
    kinds.sort();
    assert_eq!(
        kinds,
        [
            ("MOUSE01_CT1", "xnat:ctSessionData"),
            ("MOUSE01_CT2", "xnat:ctSessionData"),
            ("MOUSE01_MR1", "xnat:mrSessionData"),
            ("MOUSE01_MR2", "xnat:mrSessionData"),
            ("MOUSE01_PT1", "xnat:petSessionData"),
            ("MOUSE01_PT2", "xnat:petSessionData"),
            ("MOUSE01_US1", "xnat:usSessionData"),
            ("MOUSE01_US2", "xnat:usSessionData"),
        ]
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
    );
    let subject = admin
        .text(
            &Request::get("/data/projects/PIC/subjects/MOUSE01", "subject").query("format", "json"),
        )
        .await
        .unwrap();
    assert!(subject.contains("treated"), "{subject}");
    let session = admin
        .text(
            &Request::get(
                "/data/projects/PIC/subjects/MOUSE01/experiments/MOUSE01_MR2",
                "session",
            )
            .query("format", "json"),
        )
        .await
        .unwrap();
    assert!(
        session.contains("post1w") && session.contains("timepoint"),
        "{session}"
    );
    // The physiology log sits in the folder of all four sessions of that
    // visit; it goes to a project resource, keeping its folders.
    let files = admin
        .files("/data/projects/PIC/resources/physio")
        .await
        .unwrap();
    let mut names: Vec<String> = files.into_iter().map(|f| f.path).collect();
    names.sort();
    assert_eq!(names.len(), 4, "{names:?}");
    assert!(
        names.contains(&"treated/pre/MOUSE01/physio/resp.log".to_owned()),
        "{names:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn project_without_permission_stops_with_one_clear_message() {
    let srv = server::start().await;
    let admin = server::admin(&srv).await;
    server::create_project(&admin, "Secret").await;
    server::create_user(&admin, "visitor", "visitor-pass").await;
    let visitor = server::connect(&srv.url, "visitor", "visitor-pass")
        .await
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    crate::common::write_seed_tree(&data);
    let sheet = tmp.path().join("s.xlsx");
    write_default(&sheet, false).unwrap();
    scan(&sheet, &data);
    let before = rows(&sheet);
    let prepared = prepare(&sheet, true).unwrap();
    let err = run(
        &visitor,
        prepared,
        &options("Secret"),
        &Silent,
        CancellationToken::new(),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(err.contains("Secret"), "{err}");
    assert!(
        err.contains("cannot see it") || err.contains("may upload"),
        "{err}"
    );
    // Nothing was marked uploaded; the admin can still run the same workbook.
    assert!(rows(&sheet).iter().all(|r| !r.is_success()));
    assert_eq!(rows(&sheet).len(), before.len());
    let report = upload(&admin, &sheet, &options("Secret")).await;
    assert_eq!(report.uploaded, 14);
}
