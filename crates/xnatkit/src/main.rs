//! `xnatkit`: the command-line front end. Thin by design: argument parsing,
//! progress and printing live here; the work lives in the library crates.
//!
//! Each subcommand has its own module under `cmd/` exposing an `Args` struct
//! (clap) and an `async fn run(args, printer) -> anyhow::Result<ExitCode>`.
//! All output goes through [`printer::Printer`]; Ctrl-C is handled in
//! [`interrupt`] only.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use printer::Printer;

mod cmd;
mod interrupt;
mod logging;
mod printer;

/// Move imaging data in and out of XNAT: an XNAT client, an XNAT-compatible
/// archive server, and converters, in one binary.
#[derive(Debug, Parser)]
#[command(name = "xnatkit", version, about, long_about = None)]
struct Cli {
    /// Log more (repeat for even more). Logs go to stderr; data goes to stdout.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,

    /// Print only data (stdout), warnings and errors: no status lines, no
    /// progress bars, fewer logs. Progress bars are hidden anyway when
    /// stderr is not a terminal.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,

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
    /// Run processing pipelines (dcm2niix NIfTI, image QA) over a project.
    Pipeline(cmd::pipeline::Args),
    /// Parametric maps (T2, T1 saturation recovery, ADC) and ROI statistics on local folders.
    Maps(cmd::maps::Args),
    /// Run an XNAT-compatible archive server.
    #[command(after_help = SERVE_EXAMPLES)]
    Serve(Box<cmd::serve::Args>),
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    let printer = Printer::new(cli.quiet);
    logging::init(
        cli.verbose,
        cli.quiet,
        matches!(cli.command, Command::Serve(_)),
        printer,
    );
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            printer.error(&anyhow::Error::new(err).context("cannot start the async runtime"));
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(dispatch(cli.command, printer)) {
        Ok(code) => code,
        Err(err) => {
            // One line a user can act on: the outermost context first, causes after.
            printer.error(&err);
            ExitCode::FAILURE
        }
    }
}

async fn dispatch(command: Command, printer: Printer) -> anyhow::Result<ExitCode> {
    match command {
        Command::Convert(args) => cmd::convert::run(args, printer).await,
        Command::Upload(args) => cmd::upload::run(args, printer).await,
        Command::Serve(args) => cmd::serve::run(*args, printer).await,
        Command::Demo(args) => cmd::demo::run(args, printer).await,
        Command::Login(args) => cmd::login::run(args, printer).await,
        Command::Logout(args) => cmd::login::logout(args, printer).await,
        Command::Ls(args) => cmd::ls::run(args, printer).await,
        Command::Export(args) => cmd::export::run(args, printer).await,
        Command::Download(args) => cmd::download::run(args, printer).await,
        Command::Import(args) => cmd::import::run(args, printer).await,
        Command::Prearchive(args) => cmd::prearchive::run(args, printer).await,
        Command::Dump(args) => cmd::dump::run(args, printer).await,
        Command::Fields(args) => cmd::fields::run(args, printer).await,
        Command::Pipeline(args) => cmd::pipeline::run(args, printer).await,
        Command::Maps(args) => cmd::maps::run(args, printer).await,
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        super::Cli::command().debug_assert();
    }

    #[test]
    fn every_client_command_takes_the_same_server_options() {
        let commands: &[&[&str]] = &[
            &["login"],
            &["ls"],
            &["export", "-f", "l.csv", "-o", "out", "-p", "P", "-t", "T"],
            &["download", "P"],
            &["upload", "run"],
            &["import", "x.zip", "-p", "P"],
            &["prearchive", "ls"],
            &["dump", "P/S/E"],
            &["fields", "get", "P"],
            &["convert", "paravision", "study"],
        ];
        let options = [
            "--server",
            "https://xnat.example.org",
            "-u",
            "alice",
            "--password-stdin",
            "--ca-bundle",
            "ca.pem",
            "--connect-timeout",
            "5",
            "--read-timeout",
            "60",
            "--quiet",
        ];
        for command in commands {
            let argv = ["xnatkit"].iter().chain(*command).chain(&options);
            if let Err(err) = <super::Cli as clap::Parser>::try_parse_from(argv) {
                panic!("{command:?}: {err}");
            }
        }
        // logout needs no user: the stored token says who.
        let argv = [
            "xnatkit",
            "logout",
            "--server",
            "https://x",
            "--ca-bundle",
            "ca.pem",
        ];
        assert!(<super::Cli as clap::Parser>::try_parse_from(argv).is_ok());
    }
}
