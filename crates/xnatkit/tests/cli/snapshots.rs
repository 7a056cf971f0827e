//! Snapshots of output whose exact shape people and scripts rely on: the
//! `--help` of the main commands, the `--json` listings of `ls`, and the
//! closing lines of `export`, `upload scan` and `upload run`. What changes from run to run
//! (timings, ports, temp paths, generated IDs and digests) is replaced by
//! insta filters, so the `.snap` files in `snapshots/` are the same on every
//! machine. Under CI (`CI` set) insta writes nothing and a mismatch fails;
//! locally `cargo insta review` (or `INSTA_UPDATE=always`) accepts a change.

use std::path::Path;
use std::process::Output;

use xnatkit_client::sample::{ListCell, seed_story_subjects, write_subject_list_xlsx};

use crate::support::{TestServer, cli, runtime};

/// Help text wraps at this width whatever the terminal running the tests.
const COLUMNS: &str = "100";

fn stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

#[test]
fn help_of_the_main_commands() {
    let home = tempfile::tempdir().unwrap();
    for command in [
        &[][..],
        &["export"],
        &["download"],
        &["ls"],
        &["upload"],
        &["upload", "run"],
        &["serve"],
        &["convert", "paravision"],
        &["maps"],
        &["maps", "t2"],
        &["maps", "t1-sr"],
        &["maps", "mask-average"],
    ] {
        let out = cli(home.path())
            .args(command)
            .arg("--help")
            .env("COLUMNS", COLUMNS)
            .output()
            .unwrap();
        let name = if command.is_empty() {
            "help".to_owned()
        } else {
            format!("help_{}", command.join("_"))
        };
        insta::assert_snapshot!(name, stdout(&out));
    }
}

/// Filters for what a fresh server and generated data make different on
/// every run.
fn settings(project: &str, home: &Path) -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(&regex_escape(&home.to_string_lossy()), "[HOME]");
    settings.add_filter(&regex_escape(project), "[PROJECT]");
    settings.add_filter(r"\b[0-9a-f]{32}\b", "[MD5]");
    // Accession IDs follow the order in which parallel uploads created them.
    settings.add_filter(r"\bXNAT_[SE]\d+\b", "[ACCESSION]");
    // Resource IDs are a site-wide counter, taken in upload order too.
    settings.add_filter(r"/resources/\d+/", "/resources/[RESOURCE_ID]/");
    // Generated file names end in the series UID, which is random.
    settings.add_filter(r"\b(\d+)_\d{6}_(\d+)\.dcm\b", "${1}_[UID]_${2}.dcm");
    settings.add_filter(
        r"\b\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(\.\d+)?\b",
        "[TIMESTAMP]",
    );
    settings.add_filter(r"https?://127\.0\.0\.1:\d+", "[SERVER]");
    settings.add_filter(r"done in \d+\.\d s", "done in [SECONDS] s");
    settings.add_filter(r"\d+\.\d MB/s", "[RATE] MB/s");
    settings.add_filter(r"\(\d+(\.\d+)? ?[KMG]?i?B\)", "([SIZE])");
    settings
}

fn regex_escape(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_string()
            } else {
                format!("\\{c}")
            }
        })
        .collect()
}

struct Site {
    server: TestServer,
    user: (String, String),
    project: String,
    home: tempfile::TempDir,
}

fn site() -> Site {
    let rt = runtime();
    let server = TestServer::start();
    let (user, project) = rt.block_on(async {
        let user = server.create_user().await;
        let project = server
            .project_with(&user, &seed_story_subjects(&["S1", "S2"], 2, 16))
            .await;
        (user, project)
    });
    Site {
        server,
        user,
        project,
        home: tempfile::tempdir().unwrap(),
    }
}

impl Site {
    fn run(&self, args: &[&str]) -> Output {
        cli(self.home.path())
            .args(args)
            .args(["--server", &self.server.url, "-u", &self.user.0])
            .env("XNAT_PASS", &self.user.1)
            .output()
            .unwrap()
    }

    fn json(&self, args: &[&str]) -> serde_json::Value {
        serde_json::from_str(&stdout(&self.run(args))).unwrap()
    }
}

/// `ls --json` at each level of the hierarchy. Subject and session
/// listings are sorted by label first: their order is the server's.
#[test]
fn ls_json_listings() {
    let site = site();
    let p = site.project.as_str();
    settings(p, site.home.path()).bind(|| {
        let mut subjects = site.json(&["ls", p, "--json"]);
        sort_by_label(&mut subjects);
        insta::assert_json_snapshot!("ls_subjects", subjects, {
            "[].id" => "[ID]",
            "[].insert_date" => "[DATE]"
        });
        let sessions = site.json(&["ls", &format!("{p}/S1"), "--json"]);
        insta::assert_json_snapshot!("ls_sessions", sessions, {
            "[].id" => "[ID]",
            "[].insert_date" => "[DATE]"
        });
        let scans = site.json(&["ls", &format!("{p}/S1/S1_CT1"), "--json"]);
        insta::assert_json_snapshot!("ls_scans", scans);
        let files = site.json(&["ls", &format!("{p}/S1/S1_CT1/2"), "--json"]);
        insta::assert_json_snapshot!("ls_files", files, {
            "[].size" => "[SIZE]"
        });
    });
}

fn sort_by_label(rows: &mut serde_json::Value) {
    if let Some(rows) = rows.as_array_mut() {
        rows.sort_by(|a, b| a["label"].as_str().cmp(&b["label"].as_str()));
    }
}

/// The closing lines of an export with one subject missing: what was done,
/// where the report is, and what was not exported.
#[test]
fn export_closing_lines() {
    let site = site();
    let list = site.home.path().join("list.xlsx");
    write_subject_list_xlsx(
        &list,
        "Subject",
        &[
            ListCell::Text("S1".into()),
            ListCell::Text("S2".into()),
            ListCell::Text("S9".into()),
        ],
    )
    .unwrap();
    let out_dir = site.home.path().join("out");
    let out = export(&site, &list, &out_dir);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    settings(&site.project, site.home.path()).bind(|| {
        insta::assert_snapshot!("export_closing_lines", closing_lines(&stderr, 3));
    });
    // A rerun verifies instead of downloading.
    let out = export(&site, &list, &out_dir);
    let stderr = String::from_utf8(out.stderr).unwrap();
    settings(&site.project, site.home.path()).bind(|| {
        insta::assert_snapshot!("export_rerun_closing_lines", closing_lines(&stderr, 3));
    });
}

fn export(site: &Site, list: &Path, out: &Path) -> Output {
    let mut cmd = cli(site.home.path());
    cmd.args(["export", "-f"])
        .arg(list)
        .arg("-o")
        .arg(out)
        .args(["-p", &site.project, "-t", "Fl_Thorax INSP 3.0 Qr36"])
        .args(["--server", &site.server.url, "-u", &site.user.0])
        .env("XNAT_PASS", &site.user.1);
    cmd.output().unwrap()
}

fn closing_lines(stderr: &str, n: usize) -> String {
    let lines: Vec<&str> = stderr.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// The closing lines of `upload scan` and `upload run` on a small tree.
#[test]
fn upload_closing_lines() {
    use xnatkit_test_support::dicom::{SyntheticInstance, new_uid, write_series};
    let rt = runtime();
    let server = TestServer::start();
    let project = rt.block_on(async {
        let admin = server.admin().await;
        xnatkit_client::sample::ensure_project(&admin, "UPSNAP")
            .await
            .unwrap();
        "UPSNAP".to_owned()
    });
    let home = tempfile::tempdir().unwrap();
    let data = home.path().join("data");
    for subject in 1..=2 {
        let template = SyntheticInstance {
            series_number: Some(1),
            patient_id: Some(format!("{subject:04}")),
            study_date: Some("20240301".into()),
            ..SyntheticInstance::new(&new_uid(), &new_uid())
        };
        let dir = data
            .join(format!("Test^Subject-{subject:04}"))
            .join("20240301")
            .join("Series 1");
        write_series(&dir, &template, 2).unwrap();
    }
    let sheet = home.path().join("files.xlsx");
    let upload = |args: &[&str]| {
        let out = cli(home.path())
            .arg("upload")
            .args(args)
            .arg("--spreadsheet")
            .arg(&sheet)
            .env("XNAT_PASS", &server.admin_password)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "upload {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stderr).unwrap()
    };
    upload(&["init"]);
    let scan = upload(&["scan", "--dir", &data.to_string_lossy()]);
    let run = upload(&[
        "run",
        "--project",
        &project,
        "--server",
        &server.url,
        "-u",
        "admin",
    ]);
    settings(&project, home.path()).bind(|| {
        insta::assert_snapshot!("upload_scan_closing_line", closing_lines(&scan, 1));
        insta::assert_snapshot!("upload_run_closing_line", closing_lines(&run, 1));
    });
}
