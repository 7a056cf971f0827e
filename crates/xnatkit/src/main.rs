//! `xnatkit`: the command-line front end. Thin by design: argument parsing,
//! progress and printing live here; the work lives in the library crates.
//!
//! Each subcommand has its own module under `cmd/` exposing an `Args` struct
//! (clap) and an `async fn run(args) -> anyhow::Result<ExitCode>`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cmd;

/// Move imaging data in and out of XNAT: an XNAT client, an XNAT-compatible
/// archive server, and converters, in one binary.
#[derive(Debug, Parser)]
#[command(name = "xnatkit", version, about, long_about = None)]
struct Cli {
    /// Log more (repeat for even more). Logs go to stderr; data goes to stdout.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    // Subcommands are listed here, one line each, in the order `--help`
    // shows them; the module under `cmd/` owns the arguments and behaviour.
    /// Try it: export a subject list from an embedded server with sample CT data.
    Demo(cmd::demo::Args),
    /// Log in once; stores an alias token (never the password).
    #[command(after_help = LOGIN_EXAMPLES)]
    Login(cmd::login::Args),
    /// Invalidate and delete the stored token.
    Logout(cmd::login::LogoutArgs),
    /// List projects, subjects, sessions, scans or files.
    Ls(cmd::ls::Args),
    /// Export one scan type per subject of a CSV/XLSX list (parallel, verified, resumable).
    #[command(after_help = EXPORT_EXAMPLES)]
    Export(cmd::export::Args),
    /// Download a session, subject or project in XNAT's folder structure.
    #[command(after_help = DOWNLOAD_EXAMPLES)]
    Download(cmd::download::Args),
    /// Bulk upload through a reviewable spreadsheet (xnatuploader-compatible).
    Upload(cmd::upload::Args),
    /// Import a zip/tar or folder of DICOM via the import service.
    Import(cmd::import::Args),
    /// List, archive, move or delete prearchive sessions.
    Prearchive(cmd::prearchive::Args),
    /// Show a scan's DICOM header (server-side dicomdump).
    Dump(cmd::dump::Args),
    /// Read or set custom variables.
    Fields(cmd::fields::Args),
    /// Convert data into DICOM (ParaVision studies).
    Convert(cmd::convert::Args),
    /// Run an XNAT-compatible archive server.
    #[command(after_help = SERVE_EXAMPLES)]
    Serve(cmd::serve::Args),
}

const LOGIN_EXAMPLES: &str = "\
Examples:
  xnatkit login --server https://xnat.example.org -u alice
  xnatkit login --server https://xnat.example.org -u alice --ca-bundle site-ca.pem
  echo \"$PASS\" | xnatkit login --server https://xnat.example.org -u alice --password-stdin

The token is stored with mode 0600 in the user config folder; later commands
use it when --server names the same server (or it is the only one stored).";

const EXPORT_EXAMPLES: &str = "\
Examples:
  # the first type present wins, per subject
  xnatkit export -f subjects.xlsx -o /mnt/share/ct -p LUNG \\
      -t 'Fl_Thorax INSP 3.0 Qr36' -t 'Fl_Thorax 3.0 Qr36'
  # globs, any case, only each subject's newest session, a custom layout
  xnatkit export -f ids.csv --column B -o out -p LUNG -t 'fl_thorax*' --ignore-case \\
      --latest --layout '{subject}/{session}/{scan_id}-{scan_type}'

Every file is written as NAME.part, checked against the server's MD5, then
renamed. Run the same command again after an interruption: verified files are
skipped, damaged ones fetched again, partial ones resumed. OUT/export-report.csv
and .json list each subject's outcome.

Exit status: 0 every listed subject was exported; 2 some were not (subject not
found, no matching scan type, failed files: named in the summary and report);
1 the export could not run (bad list, login, unknown project, full disk, ...).";

const DOWNLOAD_EXAMPLES: &str = "\
Examples:
  xnatkit download LUNG/S001/S001_CT1 -o ./data     # one session
  xnatkit download LUNG/S001 -o ./data              # every session of a subject
  xnatkit download LUNG -o ./data --jobs 32         # a whole project

Files land in XNAT's layout (SESSION/scans/ID-TYPE/resources/RES/files/...),
MD5-verified; rerunning resumes.";

const SERVE_EXAMPLES: &str = "\
Examples:
  XNATKIT_ADMIN_PASSWORD='choose-one' xnatkit serve --data ./xnatkit-data
  xnatkit serve --data ./xnatkit-data --database postgres://xnat@localhost/xnat \\
      --listen 0.0.0.0:8443 --tls-cert cert.pem --tls-key key.pem --dicom-listen 0.0.0.0:8104

Users and projects are managed through XNAT's API (POST /xapi/users,
PUT /data/projects/P); see docs/server.md.";

fn init_logging(verbose: u8, serving: bool) {
    let default = match verbose {
        // The server's access log is for the operator of `serve`; the demo's
        // in-process server keeps quiet.
        0 if serving => "warn,xnatkit=info,xnatkit_server::access=info",
        // rustls-platform-verifier logs each rejected certificate at error
        // level; the client's own one-line error already says it.
        0 => "warn,xnatkit=info,rustls_platform_verifier=off",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("XNATKIT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal, not in log files.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose, matches!(cli.command, Command::Serve(_)));
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(dispatch(cli.command)) {
        Ok(code) => code,
        Err(err) => {
            // One line a user can act on: the outermost context first, causes after.
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn dispatch(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Convert(args) => cmd::convert::run(args).await,
        Command::Upload(args) => cmd::upload::run(args).await,
        Command::Serve(args) => cmd::serve::run(args).await,
        Command::Demo(args) => cmd::demo::run(args).await,
        Command::Login(args) => cmd::login::run(args).await,
        Command::Logout(args) => cmd::login::logout(args).await,
        Command::Ls(args) => cmd::ls::run(args).await,
        Command::Export(args) => cmd::export::run(args).await,
        Command::Download(args) => cmd::download::run(args).await,
        Command::Import(args) => cmd::import::run(args).await,
        Command::Prearchive(args) => cmd::prearchive::run(args).await,
        Command::Dump(args) => cmd::dump::run(args).await,
        Command::Fields(args) => cmd::fields::run(args).await,
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
