//! `xnatkit prearchive ls|archive|move|delete`.

use std::process::ExitCode;

use super::common::ServerArgs;
use crate::printer::Printer;

/// Manage sessions waiting in the prearchive.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
    #[command(flatten)]
    server: ServerArgs,
}

#[derive(Debug, clap::Subcommand)]
enum Action {
    /// List prearchive sessions (SESSION column = PROJECT/TIMESTAMP/NAME).
    Ls {
        /// Only this project.
        #[arg(short = 'p', long)]
        project: Option<String>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Move a session into the archive; prints its archive URI.
    Archive {
        /// PROJECT/TIMESTAMP/NAME as listed by `prearchive ls`.
        session: String,
        /// Archive into another project.
        #[arg(long)]
        project: Option<String>,
        /// Subject label to use.
        #[arg(long)]
        subject: Option<String>,
        /// Session label to use.
        #[arg(long = "label")]
        label: Option<String>,
        /// none, append or delete, when the session exists in the archive.
        #[arg(long)]
        overwrite: Option<String>,
    },
    /// Move a session to another project's prearchive.
    Move {
        /// PROJECT/TIMESTAMP/NAME as listed by `prearchive ls`.
        session: String,
        /// Target project.
        #[arg(long)]
        to: String,
    },
    /// Delete a session from the prearchive.
    Delete {
        /// PROJECT/TIMESTAMP/NAME as listed by `prearchive ls`.
        session: String,
    },
}

pub async fn run(args: Args, printer: Printer) -> anyhow::Result<ExitCode> {
    let client = args.server.connect().await?;
    match args.action {
        Action::Ls { project, json } => {
            let sessions = client.prearchive_sessions(project.as_deref()).await?;
            if json {
                printer.json(&sessions)?;
            } else {
                let rows: Vec<Vec<String>> = sessions
                    .iter()
                    .map(|s| {
                        vec![
                            s.handle(),
                            s.subject.clone(),
                            s.status.clone(),
                            s.scan_date.clone(),
                            s.uploaded.clone(),
                        ]
                    })
                    .collect();
                printer.table(
                    &["SESSION", "SUBJECT", "STATUS", "SCAN DATE", "UPLOADED"],
                    &rows,
                )?;
            }
        }
        Action::Archive {
            session,
            project,
            subject,
            label,
            overwrite,
        } => {
            let uri = client
                .prearchive_archive(
                    &session,
                    project.as_deref(),
                    subject.as_deref(),
                    label.as_deref(),
                    overwrite.as_deref(),
                )
                .await?;
            printer.data(uri)?;
        }
        Action::Move { session, to } => {
            client.prearchive_move(&session, &to).await?;
            printer.status(format!("moved {session} to project {to}"));
        }
        Action::Delete { session } => {
            client.prearchive_delete(&session).await?;
            printer.status(format!("deleted {session}"));
        }
    }
    client.disconnect().await;
    Ok(ExitCode::SUCCESS)
}
