//! `xnatkit dump`: the DICOM header of a session or scan, via the server's
//! dicomdump service.

use std::process::ExitCode;

use xnatkit_client::archive::seg;

use super::common::ServerArgs;
use crate::printer::Printer;

/// Show the DICOM header of the first file of a scan (or session).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// PROJECT/SUBJECT/SESSION[/SCAN] (labels or IDs), or a server `src`
    /// path starting with /archive/ or /prearchive/.
    target: String,
    /// Only these attributes (keyword like Modality, or GGGGEEEE); repeatable.
    #[arg(long = "field", value_name = "TAG")]
    fields: Vec<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    server: ServerArgs,
}

fn src_of(target: &str) -> anyhow::Result<String> {
    if target.starts_with("/archive/") || target.starts_with("/prearchive/") {
        return Ok(target.to_owned());
    }
    let parts: Vec<&str> = target.split('/').filter(|p| !p.is_empty()).collect();
    match parts.as_slice() {
        [p, s, e] => Ok(format!(
            "/archive/projects/{}/subjects/{}/experiments/{}",
            seg(p),
            seg(s),
            seg(e)
        )),
        [p, s, e, scan] => Ok(format!(
            "/archive/projects/{}/subjects/{}/experiments/{}/scans/{}",
            seg(p),
            seg(s),
            seg(e),
            seg(scan)
        )),
        _ => anyhow::bail!("{target:?}: expected PROJECT/SUBJECT/SESSION[/SCAN]"),
    }
}

pub async fn run(args: Args, printer: Printer) -> anyhow::Result<ExitCode> {
    let src = src_of(&args.target)?;
    let client = args.server.connect().await?;
    let entries = client.dicom_dump(&src, &args.fields).await?;
    client.disconnect().await;
    if args.json {
        printer.json(&entries)?;
    } else {
        let rows: Vec<Vec<String>> = entries
            .iter()
            .map(|e| {
                vec![
                    e.tag.clone(),
                    e.vr.clone(),
                    e.description.clone(),
                    e.value.clone(),
                ]
            })
            .collect();
        printer.table(&["TAG", "VR", "NAME", "VALUE"], &rows)?;
    }
    Ok(ExitCode::SUCCESS)
}
