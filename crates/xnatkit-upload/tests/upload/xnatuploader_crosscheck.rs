//! Cross-check with xnatuploader 1.1.9 (from XNATKIT_UPLOADER_VENV) against
//! the same running server: both scan the same tree, each uploads the
//! spreadsheet the *other* made, into its own project; the two hierarchies
//! must be identical, and the sheets must agree row by row.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::common::server;
use tokio_util::sync::CancellationToken;
use xnatkit_upload::files_sheet::{self, FileRow};
use xnatkit_upload::run::{RunOptions, Silent, prepare, run};
use xnatkit_upload::workbook::Workbook;
use xnatkit_upload::{Config, ScanOptions, scan_to_workbook, write_default};

fn uploader_venv() -> Option<PathBuf> {
    xnatkit_test_support::ci::env(
        "XNATKIT_UPLOADER_VENV",
        "a venv with xnatuploader==1.1.9, for the cross-check",
    )
    .map(PathBuf::from)
}

async fn xnatuploader(venv: &Path, home: &Path, cwd: &Path, args: &[&str]) {
    let out = tokio::process::Command::new(venv.join("bin").join("xnatuploader"))
        .args(args)
        .arg("--logdir")
        .arg(cwd.join("logs"))
        .env("HOME", home)
        .env_remove("XNAT_USER")
        .env_remove("XNAT_PASS")
        .env_remove("XNAT_HOST")
        .current_dir(cwd)
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "xnatuploader {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn rows(sheet: &Path) -> Vec<FileRow> {
    let wb = Workbook::open(sheet).unwrap();
    let config = Config::read(&wb).unwrap();
    files_sheet::read_rows(&wb, &config).unwrap().1
}

fn by_file(rows: &[FileRow]) -> BTreeMap<String, BTreeMap<String, String>> {
    rows.iter()
        .map(|r| {
            let mut v = r.values.clone();
            v.insert("Upload".into(), if r.upload { "Y" } else { "N" }.into());
            v.insert("Pattern".into(), r.pattern.clone());
            v.insert("Filename".into(), r.filename.clone());
            (r.file.clone(), v)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_tree_same_hierarchy_and_sheets_work_both_ways() {
    let Some(venv) = uploader_venv() else { return };
    let srv = server::start().await;
    let admin = server::admin(&srv).await;
    server::create_project(&admin, "XU").await;
    server::create_project(&admin, "XK").await;

    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let port = srv.url.rsplit(':').next().unwrap().to_owned();
    let netrc = home.join(".netrc");
    std::fs::write(
        &netrc,
        format!(
            "machine 127.0.0.1:{port}\nlogin admin\npassword {}\n",
            server::ADMIN_PASSWORD
        ),
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&netrc, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let data = tmp.path().join("data");
    crate::common::write_seed_tree(&data);
    // A second modality and a third visit for one subject.
    for n in 1..=3 {
        crate::common::write_instance(
            &data.join(format!("Roe^Jane-0342/20210101/Brain MR/img{n}.dcm")),
            &crate::common::Instance {
                patient: "Roe^Jane",
                study_date: "20210101",
                modality: "MR",
                series_number: 7,
                instance_number: n,
            },
        );
    }
    let data_arg = data.to_str().unwrap();

    // Pass 1 by each tool.
    let xu_sheet = tmp.path().join("xu.xlsx");
    let xk_sheet = tmp.path().join("xk.xlsx");
    xnatuploader(
        &venv,
        &home,
        tmp.path(),
        &["init", "--spreadsheet", xu_sheet.to_str().unwrap()],
    )
    .await;
    xnatuploader(
        &venv,
        &home,
        tmp.path(),
        &[
            "scan",
            "--spreadsheet",
            xu_sheet.to_str().unwrap(),
            "--dir",
            data_arg,
        ],
    )
    .await;
    write_default(&xk_sheet, false).unwrap();
    scan_to_workbook(
        &xk_sheet,
        &data,
        &ScanOptions {
            include_unmatched: false,
            jobs: 2,
        },
    )
    .unwrap();

    // Same Configuration (xnatkit reads xnatuploader's), same rows and values.
    let xu_config = Config::read(&Workbook::open(&xu_sheet).unwrap()).unwrap();
    let xk_config = Config::read(&Workbook::open(&xk_sheet).unwrap()).unwrap();
    assert_eq!(xu_config.mappings, xk_config.mappings);
    assert_eq!(
        files_sheet::headers(&xu_config),
        files_sheet::headers(&xk_config)
    );
    let (xu_rows, xk_rows) = (rows(&xu_sheet), rows(&xk_sheet));
    assert_eq!(xu_rows.len(), 17);
    assert_eq!(by_file(&xu_rows), by_file(&xk_rows));
    let order = |rows: &[FileRow]| rows.iter().map(|r| r.file.clone()).collect::<Vec<_>>();
    assert_eq!(order(&xu_rows), order(&xk_rows), "rows in the same order");

    // Pass 2 crossed: xnatuploader runs xnatkit's sheet, xnatkit runs xnatuploader's.
    // xnatuploader goes first: it looks sessions up by label across the whole
    // server (xnatpy `login.experiments[label]`), so it would find and reuse the
    // other project's sessions; xnatkit only looks inside its own project.
    let options = RunOptions {
        dir: Some(data.clone()),
        project: Some("XK".into()),
        jobs: 4,
        overwrite: false,
        create_project: false,
        trigger_pipelines: true,
    };
    xnatuploader(
        &venv,
        &home,
        tmp.path(),
        &[
            "upload",
            "--spreadsheet",
            xk_sheet.to_str().unwrap(),
            "--dir",
            data_arg,
            "--project",
            "XU",
            "--server",
            &srv.url,
        ],
    )
    .await;
    let after: Vec<(String, String)> = rows(&xk_sheet)
        .into_iter()
        .map(|r| (r.file, r.status))
        .collect();
    assert!(
        after.iter().all(|(_, s)| s == "success"),
        "xnatuploader on xnatkit's sheet: {after:#?}"
    );

    let report = run(
        &admin,
        prepare(&xu_sheet, true).unwrap(),
        &options,
        &Silent,
        CancellationToken::new(),
    )
    .await
    .unwrap();
    assert_eq!((report.uploaded, report.failed), (17, 0), "{report:?}");
    let xu_tree = server::hierarchy(&admin, "XU").await;
    let xk_tree = server::hierarchy(&admin, "XK").await;
    assert_eq!(xu_tree.len(), 17);
    assert_eq!(xu_tree, xk_tree);
    assert!(
        xk_tree.iter().any(|l| l
            .starts_with("0342 / 0342_MR3 (xnat:mrSessionData) / 7 (Brain_MR, xnat:mrScanData)")),
        "{xk_tree:#?}"
    );

    // xnatuploader rewrites the sheet after its upload (all text, new row order):
    // xnatkit still reads it and finds nothing left to do.
    let report = run(
        &admin,
        prepare(&xk_sheet, true).unwrap(),
        &RunOptions {
            project: Some("XU".into()),
            ..options.clone()
        },
        &Silent,
        CancellationToken::new(),
    )
    .await
    .unwrap();
    assert_eq!(
        (report.uploaded, report.already_done, report.failed),
        (0, 17, 0),
        "{report:?}"
    );
}
