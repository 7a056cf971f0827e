//! `xnatkit fields get|set`: custom variables of projects, subjects and
//! sessions.

use std::process::ExitCode;

use xnatkit_client::archive::seg;

use super::common::ServerArgs;
use crate::printer::Printer;

/// Read or write custom variables (XNAT "fields").
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
    #[command(flatten)]
    server: ServerArgs,
}

#[derive(Debug, clap::Subcommand)]
enum Action {
    /// Print the variables of PROJECT, PROJECT/SUBJECT or PROJECT/SUBJECT/SESSION.
    Get {
        target: String,
        /// Only this variable (prints its bare value).
        name: Option<String>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Set NAME=VALUE pairs (XNAT stores names in lower case).
    Set {
        target: String,
        #[arg(required = true, value_name = "NAME=VALUE")]
        values: Vec<String>,
    },
}

fn object_path(target: &str) -> anyhow::Result<String> {
    let parts: Vec<&str> = target.split('/').filter(|p| !p.is_empty()).collect();
    Ok(match parts.as_slice() {
        [p] => format!("/data/projects/{}", seg(p)),
        [p, s] => format!("/data/projects/{}/subjects/{}", seg(p), seg(s)),
        [p, s, e] => format!(
            "/data/projects/{}/subjects/{}/experiments/{}",
            seg(p),
            seg(s),
            seg(e)
        ),
        _ => anyhow::bail!(
            "{target:?}: expected PROJECT, PROJECT/SUBJECT or PROJECT/SUBJECT/SESSION"
        ),
    })
}

pub async fn run(args: Args, printer: Printer) -> anyhow::Result<ExitCode> {
    match args.action {
        Action::Get { target, name, json } => {
            let path = object_path(&target)?;
            let client = args.server.connect().await?;
            let fields = client.fields(&path, &format!("{target:?}")).await?;
            client.disconnect().await;
            if let Some(name) = name {
                let value = fields
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(&name))
                    .map(|(_, v)| v.clone());
                let Some(value) = value else {
                    anyhow::bail!("{target}: no variable {name:?}");
                };
                printer.data(value)?;
            } else if json {
                printer.json(&fields)?;
            } else {
                let rows: Vec<Vec<String>> = fields.into_iter().map(|(k, v)| vec![k, v]).collect();
                printer.table(&["NAME", "VALUE"], &rows)?;
            }
        }
        Action::Set { target, values } => {
            let path = object_path(&target)?;
            let mut pairs = Vec::new();
            for v in &values {
                let Some((name, value)) = v.split_once('=') else {
                    anyhow::bail!("{v:?}: expected NAME=VALUE");
                };
                if name.trim().is_empty() {
                    anyhow::bail!("{v:?}: the variable name is empty");
                }
                pairs.push((name.trim().to_owned(), value.to_owned()));
            }
            let client = args.server.connect().await?;
            client
                .set_fields(&path, &format!("{target:?}"), &pairs)
                .await?;
            client.disconnect().await;
            printer.status(format!("set {} variable(s) on {target}", pairs.len()));
        }
    }
    Ok(ExitCode::SUCCESS)
}
