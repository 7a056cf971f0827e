//! `xnatkit ls [PROJECT[/SUBJECT[/SESSION[/SCAN]]]]`: browse the archive.

use std::process::ExitCode;

use xnatkit_client::archive::{seg, session_path};

use super::common::{ServerArgs, human_bytes};
use crate::printer::Printer;

/// List projects, a project's subjects, a subject's sessions, a session's
/// scans, or a scan's files (data on stdout, one row per item).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// What to list: nothing for projects, then PROJECT, PROJECT/SUBJECT,
    /// PROJECT/SUBJECT/SESSION, PROJECT/SUBJECT/SESSION/SCAN (labels or IDs).
    path: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    server: ServerArgs,
}

pub async fn run(args: Args, printer: Printer) -> anyhow::Result<ExitCode> {
    let parts: Vec<String> = args
        .path
        .as_deref()
        .unwrap_or_default()
        .split('/')
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect();
    if parts.len() > 4 {
        anyhow::bail!(
            "{:?}: expected at most PROJECT/SUBJECT/SESSION/SCAN",
            args.path.unwrap_or_default()
        );
    }
    let client = args.server.connect().await?;
    match parts.as_slice() {
        [] => {
            let projects = client.projects().await?;
            if args.json {
                return printer.json(&projects).map(|()| ExitCode::SUCCESS);
            }
            let rows = projects
                .iter()
                .map(|p| vec![p.id.clone(), p.name.clone()])
                .collect::<Vec<_>>();
            printer.table(&["PROJECT", "NAME"], &rows)?;
        }
        [p] => {
            client.project(p).await?;
            let subjects = client.subjects(p).await?;
            if args.json {
                return printer.json(&subjects).map(|()| ExitCode::SUCCESS);
            }
            let rows = subjects
                .iter()
                .map(|s| vec![s.label.clone(), s.id.clone()])
                .collect::<Vec<_>>();
            printer.table(&["SUBJECT", "ID"], &rows)?;
        }
        [p, s] => {
            let sessions = client.sessions(p, s).await?;
            if args.json {
                return printer.json(&sessions).map(|()| ExitCode::SUCCESS);
            }
            let rows = sessions
                .iter()
                .map(|e| {
                    vec![
                        e.label.clone(),
                        e.id.clone(),
                        e.xsi_type.clone(),
                        e.date.clone(),
                    ]
                })
                .collect::<Vec<_>>();
            printer.table(&["SESSION", "ID", "TYPE", "DATE"], &rows)?;
        }
        [p, s, e] => {
            let scans = client.scans(p, s, e).await?;
            if args.json {
                return printer.json(&scans).map(|()| ExitCode::SUCCESS);
            }
            let rows = scans
                .iter()
                .map(|c| {
                    vec![
                        c.id.clone(),
                        c.scan_type.clone(),
                        c.series_description.clone(),
                        c.quality.clone(),
                    ]
                })
                .collect::<Vec<_>>();
            printer.table(&["SCAN", "TYPE", "SERIES DESCRIPTION", "QUALITY"], &rows)?;
        }
        [p, s, e, scan] => {
            let files = client
                .files(&format!("{}/scans/{}", session_path(p, s, e), seg(scan)))
                .await?;
            if args.json {
                return printer.json(&files).map(|()| ExitCode::SUCCESS);
            }
            let rows = files
                .iter()
                .map(|f| {
                    vec![
                        f.resource.clone(),
                        f.size.map(human_bytes).unwrap_or_default(),
                        f.digest.clone().unwrap_or_default(),
                        f.path.clone(),
                    ]
                })
                .collect::<Vec<_>>();
            printer.table(&["RESOURCE", "SIZE", "MD5", "PATH"], &rows)?;
        }
        _ => anyhow::bail!("expected at most PROJECT/SUBJECT/SESSION/SCAN"),
    }
    Ok(ExitCode::SUCCESS)
}
