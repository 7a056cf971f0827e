//! `xnatkit import`: a zip/tar archive or a folder of DICOM files into the
//! XNAT import service, to the archive or the prearchive.

use std::path::PathBuf;
use std::process::ExitCode;

use xnatkit_client::ClientError;
use xnatkit_client::services::{ImportDestination, ImportOptions};

use super::common::ServerArgs;
use crate::printer::Printer;

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Dest {
    Archive,
    Prearchive,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Overwrite {
    None,
    Append,
    Delete,
}

/// Import DICOM data (a .zip/.tar/.tar.gz, or a folder zipped on the fly)
/// through the server's import service. Prints the URI of the new session.
/// An import is never retried automatically once sent (it could be stored
/// twice); rerun with --overwrite append if it was cut off.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Archive file or folder to import.
    source: PathBuf,
    /// Project ID.
    #[arg(short = 'p', long)]
    project: String,
    /// Subject label (default: from the DICOM headers).
    #[arg(long)]
    subject: Option<String>,
    /// Session label (default: from the DICOM headers).
    #[arg(long)]
    session: Option<String>,
    /// Where the session goes.
    #[arg(long, value_enum, default_value = "archive")]
    dest: Dest,
    /// What to do when the session exists already.
    #[arg(long, value_enum)]
    overwrite: Option<Overwrite>,
    #[command(flatten)]
    server: ServerArgs,
}

pub async fn run(args: Args, printer: Printer) -> anyhow::Result<ExitCode> {
    if !args.source.exists() {
        anyhow::bail!("{}: no such file or folder", args.source.display());
    }
    let client = args.server.connect().await?;
    let options = ImportOptions {
        destination: match args.dest {
            Dest::Archive => ImportDestination::Archive,
            Dest::Prearchive => ImportDestination::Prearchive,
        },
        project: args.project,
        subject: args.subject,
        session: args.session,
        overwrite: args.overwrite.map(|o| {
            match o {
                Overwrite::None => "none",
                Overwrite::Append => "append",
                Overwrite::Delete => "delete",
            }
            .to_owned()
        }),
    };
    let destination = match options.destination {
        ImportDestination::Archive => "archive",
        ImportDestination::Prearchive => "prearchive",
    };
    let uri = match client.import(&args.source, &options).await {
        Ok(uri) => uri,
        // The request reached the server and the answer was lost or was a
        // server error: the data may be stored. The client never sends it
        // again by itself; say how to find out before the user does.
        Err(
            err @ (ClientError::Transport { .. }
            | ClientError::Http {
                status: 429 | 500..,
                ..
            }),
        ) => {
            client.disconnect().await;
            return Err(anyhow::Error::new(err).context(format!(
                "the import into the {destination} of project {} may or may not have been stored \
                 and was not repeated; check `xnatkit {}` before running it again",
                options.project,
                match options.destination {
                    ImportDestination::Archive => format!("ls {}", options.project),
                    ImportDestination::Prearchive =>
                        format!("prearchive ls -p {}", options.project),
                }
            )));
        }
        Err(err) => return Err(err.into()),
    };
    client.disconnect().await;
    printer.data(uri)?;
    Ok(ExitCode::SUCCESS)
}
