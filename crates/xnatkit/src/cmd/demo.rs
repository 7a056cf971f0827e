//! `xnatkit demo`: the seed story end to end on this machine, offline. An
//! embedded archive server gets a few CT sessions, a subject list is
//! written as xlsx (numbers typed as numbers, one subject missing, one
//! without the wanted scan type), and `export` runs against it with a
//! fallback type list.

use std::hash::{BuildHasher, Hasher};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::Instant;

use anyhow::Context;
use xnatkit_client::sample::{
    ListCell, ensure_project, seed_story_subjects, upload_sample, write_subject_list_xlsx,
};
use xnatkit_client::{ClientOptions, Credentials, XnatClient};
use xnatkit_export::export::{ExportOptions, REPORT_CSV, SubjectStatus, export};
use xnatkit_export::select::{SessionChoice, TypeSelector};
use xnatkit_export::subject_list::read_subject_list;

use super::common::human_bytes;
use super::export::{FINISHING_FILES, Progress};
use crate::interrupt::{FirstCtrlC, cancel_on_ctrl_c};
use crate::printer::Printer;

/// Run the bulk-export story against an embedded server (offline, about a
/// minute or less): generates CT sessions for a handful of subjects, writes
/// a subject list, exports one scan type per subject with a fallback type,
/// and prints where the files are and the throughput.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Folder for the demo (default: a new folder in the system temp dir).
    /// The export and the subject list stay there; the server's data is
    /// removed at the end unless --keep-server-data.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Slices per thorax scan (each 512x512, 16 bit: 512 KiB).
    #[arg(long, default_value_t = 40)]
    slices: usize,
    /// Keep the embedded server's data folder.
    #[arg(long)]
    keep_server_data: bool,
    /// Keep the embedded server running after the demo (until Ctrl-C), so
    /// its web pages can be looked around in a browser.
    #[arg(long)]
    keep: bool,
}

const PROJECT: &str = "IMALIFE_DEMO";
const SUBJECTS: &[&str] = &["125586", "339193", "370941", "830219", "563995", "136470"];
/// Listed but not on the server.
const MISSING: &str = "731797";
const TYPES: &[&str] = &["Fl_Thorax INSP 3.0 Qr36", "Fl_Thorax 3.0 Qr36"];

/// A random token from the standard library's per-process random hash keys,
/// enough for a password of a throwaway server listening on loopback.
fn random_token() -> String {
    (0..2)
        .map(|i| {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u64(i);
            format!("{:016x}", h.finish())
        })
        .collect()
}

pub async fn run(args: Args, printer: Printer) -> anyhow::Result<ExitCode> {
    let dir = match args.dir {
        Some(d) => d,
        None => std::env::temp_dir().join(format!(
            "xnatkit-demo-{}",
            random_token().get(..8).unwrap_or("0")
        )),
    };
    let server_data = dir.join("server-data");
    let export_dir = dir.join("export");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    if export_dir.exists() {
        anyhow::bail!(
            "{} exists already; pass another --dir",
            export_dir.display()
        );
    }

    let password = random_token();
    let mut config = xnatkit_server::ServerConfig::new(&server_data);
    config.admin_password = Some(password.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("cannot open a loopback port for the embedded server")?;
    let address = listener.local_addr().context("no local address")?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(xnatkit_server::run(listener, config, async move {
        let _ = stop_rx.await;
    }));
    let url = format!("http://{address}");
    printer.status(format_args!(
        "demo: embedded XNAT-compatible server at {url} (data in {})",
        server_data.display()
    ));

    let outcome = demo_story(&url, &password, &dir, &export_dir, args.slices, printer).await;

    if !args.keep {
        printer.status(format_args!(
            "demo: the server was at {url}/app/ (run with --keep to look around in a browser)"
        ));
    } else if outcome.is_ok() {
        printer.status(format_args!("demo: web pages at {url}/app/"));
        // A throwaway server on loopback: its generated password is the
        // only way in, so it is shown here (and nowhere else).
        printer.status(format_args!(
            "demo: log in as admin with password {password}; the server keeps running until Ctrl-C"
        ));
        let _ = tokio::signal::ctrl_c().await;
    }
    let _ = stop_tx.send(());
    let _ = server.await;
    if !args.keep_server_data {
        let _ = std::fs::remove_dir_all(&server_data);
    }
    let (exported_as_expected, summary) = outcome?;
    printer.data(summary)?;
    if exported_as_expected {
        Ok(ExitCode::SUCCESS)
    } else {
        anyhow::bail!(
            "the demo export did not end as expected; see {}",
            export_dir.join(REPORT_CSV).display()
        )
    }
}

/// Seeds the server, writes the list, exports; returns whether the export
/// ended as the story expects, and the summary.
async fn demo_story(
    url: &str,
    password: &str,
    dir: &std::path::Path,
    export_dir: &std::path::Path,
    slices: usize,
    printer: Printer,
) -> anyhow::Result<(bool, String)> {
    let credentials = Credentials::Password {
        user: "admin".into(),
        password: password.to_owned(),
    };
    let client = XnatClient::connect(url, credentials, ClientOptions::default())
        .await
        .context("cannot log in to the embedded server")?;

    let started = Instant::now();
    ensure_project(&client, PROJECT).await?;
    let subjects = seed_story_subjects(SUBJECTS, slices.max(1), 512);
    let generated = dir.join("generated-dicom");
    let uploaded = upload_sample(&client, PROJECT, &subjects, &generated, 8).await?;
    let _ = std::fs::remove_dir_all(&generated);
    printer.status(format_args!(
        "demo: project {PROJECT}: {} subjects with CT sessions, {} uploaded in {:.1} s",
        SUBJECTS.len(),
        human_bytes(uploaded),
        started.elapsed().as_secs_f64()
    ));

    let list = dir.join("Patientnummers.xlsx");
    let mut cells: Vec<ListCell> = SUBJECTS
        .iter()
        .map(|s| ListCell::Number(s.parse().unwrap_or(0.0)))
        .collect();
    cells.insert(3, ListCell::Number(MISSING.parse().unwrap_or(0.0)));
    write_subject_list_xlsx(&list, "Patientnummer", &cells)?;
    printer.status(format_args!(
        "demo: subject list {} ({} numbers; {MISSING} is not on the server, {} has no thorax scan)",
        list.display(),
        cells.len(),
        SUBJECTS[SUBJECTS.len() - 1]
    ));
    printer.status(format_args!(
        "demo: xnatkit export -f {} -o {} -p {PROJECT} -t '{}' -t '{}'",
        list.display(),
        export_dir.display(),
        TYPES[0],
        TYPES[1]
    ));

    let listed = read_subject_list(&list, None)?;
    let labels: Vec<String> = listed.iter().map(|s| s.label.clone()).collect();
    let options = ExportOptions {
        project: PROJECT.into(),
        subjects: listed,
        types: TypeSelector::new(
            &TYPES.iter().map(|t| (*t).to_owned()).collect::<Vec<_>>(),
            false,
        )?,
        sessions: SessionChoice::All,
        out: export_dir.to_owned(),
        layout: None,
        resources: vec!["DICOM".into()],
        jobs: 16,
    };
    let progress = Progress::new(labels, printer);
    let cancel = cancel_on_ctrl_c(printer, FirstCtrlC::Cancel, FINISHING_FILES);
    let report = export(&client, &options, &progress, cancel).await;
    progress.finish();
    client.disconnect().await;
    let report = report?;

    let secs = report.elapsed_seconds.max(0.001);
    #[allow(clippy::cast_precision_loss)]
    let mb = progress.bytes.load(Ordering::Relaxed) as f64 / 1e6;
    let status_of = |label: &str| {
        report
            .subjects
            .iter()
            .find(|s| s.subject == label)
            .map(|s| s.status)
    };
    let expected = status_of(MISSING) == Some(SubjectStatus::SubjectNotFound)
        && status_of(SUBJECTS[SUBJECTS.len() - 1]) == Some(SubjectStatus::NoMatchingScanType)
        && SUBJECTS[..SUBJECTS.len() - 1]
            .iter()
            .all(|s| status_of(s) == Some(SubjectStatus::Exported));
    let summary = format!(
        "demo: exported {} files ({}) in {secs:.2} s = {:.1} MB/s with 16 parallel downloads\n\
         demo: files are in {}\n\
         demo: report: {}\n\
         demo: as in real life, {MISSING} was reported as \"subject not found\" and {} as \"no matching scan type\"",
        report.totals.downloaded + report.totals.already_verified + report.totals.repaired,
        human_bytes(report.totals.bytes),
        mb / secs,
        export_dir.display(),
        export_dir.join(REPORT_CSV).display(),
        SUBJECTS[SUBJECTS.len() - 1],
    );
    Ok((expected, summary))
}
