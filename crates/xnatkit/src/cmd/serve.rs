//! `xnatkit serve`: run the XNAT-compatible archive server.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use crate::interrupt::{FirstCtrlC, cancel_on_ctrl_c};
use crate::printer::Printer;

/// Run an XNAT-compatible archive server that real XNAT clients can use.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Folder holding the SQLite database (unless --database) and the file archive.
    #[arg(long, default_value = "./xnatkit-data")]
    data: PathBuf,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Database URL, e.g. postgres://user@host/db (default: SQLite in --data).
    #[arg(long)]
    database: Option<String>,
    /// Most database connections this server opens. Several servers on one
    /// PostgreSQL each open this many plus one: keep the sum below the
    /// database's max_connections.
    #[arg(long, default_value_t = xnatkit_server::store::DEFAULT_POOL_SIZE, value_parser = clap::value_parser!(u32).range(2..))]
    db_pool_size: u32,
    /// Site ID: the prefix of accession IDs (XNAT → XNAT_S00001).
    #[arg(long, default_value = "XNAT")]
    site_id: String,
    /// Minutes of inactivity after which a login session (JSESSIONID) expires.
    #[arg(long, default_value_t = 15)]
    session_timeout_mins: u64,
    /// Consecutive failed logins that lock an account.
    #[arg(long, default_value_t = 5)]
    max_failed_logins: u32,
    /// Minutes a locked account stays locked.
    #[arg(long, default_value_t = 15)]
    lockout_mins: u64,
    /// Largest accepted upload, in MiB.
    #[arg(long, default_value_t = 64 * 1024)]
    max_upload_mib: u64,
    /// Also run a DICOM C-STORE receiver on this address (e.g. 127.0.0.1:8104).
    #[arg(long)]
    dicom_listen: Option<SocketAddr>,
    /// AE title of the DICOM receiver; senders may also call a project ID as AE title.
    #[arg(long, default_value = "XNAT", requires = "dicom_listen")]
    dicom_ae_title: String,
    /// Seconds without new instances after which a received study is imported.
    #[arg(long, default_value_t = 60, requires = "dicom_listen")]
    dicom_idle_secs: u64,
    /// Only this peer may send to the DICOM receiver: a calling AE title,
    /// an IP address, or AE@IP (repeat for more). Without it the receiver
    /// trusts its network, as XNAT's does: anyone who reaches the port may
    /// store into any project that routing names.
    #[arg(
        long = "dicom-allow",
        value_name = "AE|IP|AE@IP",
        requires = "dicom_listen"
    )]
    dicom_allow: Vec<xnatkit_server::import::AllowedPeer>,
    /// Store everything the DICOM receiver gets in this project, whatever
    /// the called AE title or the headers say (the receiver then answers
    /// only to --dicom-ae-title).
    #[arg(long, value_name = "PROJECT", requires = "dicom_listen")]
    dicom_project: Option<String>,
    /// Seconds a connection may take to send a request's headers.
    #[arg(long, default_value_t = 30)]
    header_timeout_secs: u64,
    /// Seconds a request body may send nothing before the request is
    /// answered 408 (a slow upload that keeps sending is never cut off).
    #[arg(long, default_value_t = 60)]
    body_idle_timeout_secs: u64,
    /// Seconds the server may take to answer a request that uploads
    /// nothing (listings, changes, the head of a download) before it
    /// answers 503; uploads are bounded by --body-idle-timeout-secs instead.
    #[arg(long, default_value_t = 300)]
    request_timeout_secs: u64,
    /// Serve HTTPS (only; HTTP/2 and HTTP/1.1) with this certificate chain:
    /// PEM, server certificate first, then intermediates. Needs --tls-key.
    /// Without both options the server speaks plain HTTP. Clients trust a
    /// private CA with `--ca-bundle CA.pem`.
    #[arg(long, value_name = "FILE")]
    tls_cert: Option<PathBuf>,
    /// The private key (PEM: PKCS#8, PKCS#1 or SEC1) of --tls-cert.
    #[arg(long, value_name = "FILE")]
    tls_key: Option<PathBuf>,
    /// Serve the OHIF viewer from this folder (an OHIF `dist/`; install one
    /// with scripts/setup-ohif.sh) on its own listener, --ohif-listen, with
    /// this server's DICOMweb and logins (see docs/viewer.md).
    #[arg(long, value_name = "DIR", help_heading = "OHIF viewer")]
    ohif_dir: Option<PathBuf>,
    /// Address of the viewer's listener (default: --listen's address, next port).
    #[arg(
        long,
        value_name = "ADDR",
        requires = "ohif_dir",
        help_heading = "OHIF viewer"
    )]
    ohif_listen: Option<SocketAddr>,
    /// Where pipeline jobs run: `local` (a pool of worker processes on this
    /// machine) or `slurm` (each job is an sbatch job; the nodes must see
    /// --data and this program at the same paths; see docs/slurm.md).
    #[arg(long, value_enum, default_value_t = ExecutorKind::Local)]
    executor: ExecutorKind,
    /// Pipeline jobs run at once: by the local pool (default: half the
    /// cores, at least 1), or submitted to Slurm (default: 32; the rest wait
    /// in the server's queue).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pipeline_workers: Option<u32>,
    /// Seconds without a new file after which a session built file by file
    /// over REST (xnatuploader, xnatutils, curl) counts as archived and the
    /// project's on-archive pipelines run on it.
    #[arg(long, value_name = "SECS", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..))]
    upload_settle_secs: u64,
    /// Slurm partition for the jobs (default: the cluster's default).
    #[arg(long, value_name = "NAME", help_heading = "Slurm executor")]
    slurm_partition: Option<String>,
    /// Slurm account for the jobs.
    #[arg(long, value_name = "NAME", help_heading = "Slurm executor")]
    slurm_account: Option<String>,
    /// Minutes a job may run before Slurm ends it as TIMEOUT.
    #[arg(long, value_name = "MINUTES", help_heading = "Slurm executor")]
    slurm_time_limit_mins: Option<u64>,
    /// The jobcomp/filetxt completion log (JobCompLoc), so jobs Slurm has
    /// forgotten still resolve without slurmdbd.
    #[arg(long, value_name = "FILE", help_heading = "Slurm executor")]
    slurm_completion_log: Option<PathBuf>,
    /// The address people open this site at (e.g. https://xnat.example.org),
    /// for the links in emails; default: the --listen address.
    #[arg(long, value_name = "URL")]
    site_url: Option<String>,
    /// Send the archive email through this mail server: smtp://host:port
    /// (plain; add ?tls=required for STARTTLS) or smtps://host:port. Off
    /// without it.
    #[arg(long, value_name = "URL", help_heading = "Archive email")]
    smtp: Option<String>,
    /// The From: address of the archive email.
    #[arg(
        long,
        value_name = "ADDRESS",
        default_value = "xnatkit@localhost",
        help_heading = "Archive email"
    )]
    smtp_from: String,
    /// Log in to the mail server as this user; the password comes from
    /// $XNATKIT_SMTP_PASSWORD or --smtp-password-file, never from argv.
    #[arg(
        long,
        value_name = "USER",
        requires = "smtp",
        help_heading = "Archive email"
    )]
    smtp_user: Option<String>,
    /// A file whose first line is the mail server password.
    #[arg(
        long,
        value_name = "FILE",
        requires = "smtp_user",
        help_heading = "Archive email"
    )]
    smtp_password_file: Option<PathBuf>,
}

/// `--executor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ExecutorKind {
    Local,
    Slurm,
}

pub async fn run(args: Args, printer: Printer) -> anyhow::Result<ExitCode> {
    // Checked here rather than with clap's `requires` so the error is one line.
    let tls = match (args.tls_cert.clone(), args.tls_key.clone()) {
        (Some(cert), Some(key)) => Some(xnatkit_server::tls::TlsFiles { cert, key }),
        (None, None) => None,
        (Some(_), None) => anyhow::bail!(
            "--tls-cert needs --tls-key: pass the certificate's private key too (or neither, for plain HTTP)"
        ),
        (None, Some(_)) => anyhow::bail!(
            "--tls-key needs --tls-cert: pass the certificate chain too (or neither, for plain HTTP)"
        ),
    };
    let executor = match args.executor {
        ExecutorKind::Local => xnatkit_server::engine::ExecutorChoice::Local {
            workers: args
                .pipeline_workers
                .map_or_else(xnatkit_engine::LocalPool::default_workers, |n| n as usize),
        },
        ExecutorKind::Slurm => {
            xnatkit_server::engine::ExecutorChoice::Custom(Arc::new(slurm_executor(&args).await?))
        }
    };
    let smtp = smtp_config(&args)?;
    let mut config = xnatkit_server::ServerConfig::new(&args.data);
    config.pipelines.executor = executor;
    config.pipelines.upload_settle = Duration::from_secs(args.upload_settle_secs);
    config.tls = tls;
    config.database_url = args.database;
    config.db_pool_size = args.db_pool_size;
    config.site_id = args.site_id;
    config.session_timeout = Duration::from_secs(args.session_timeout_mins.saturating_mul(60));
    config.max_failed_logins = args.max_failed_logins.max(1);
    config.lockout = Duration::from_secs(args.lockout_mins.saturating_mul(60));
    config.max_upload_bytes = args.max_upload_mib.saturating_mul(1 << 20);
    config.header_read_timeout = Duration::from_secs(args.header_timeout_secs.max(1));
    config.body_idle_timeout = Duration::from_secs(args.body_idle_timeout_secs.max(1));
    config.request_timeout = Duration::from_secs(args.request_timeout_secs.max(1));
    config.dicom_receiver = args.dicom_listen.map(|listen| {
        let mut receiver = xnatkit_server::import::DicomReceiverConfig::new(
            listen,
            args.dicom_ae_title.clone(),
            Duration::from_secs(args.dicom_idle_secs),
        );
        receiver.allowed_peers = args.dicom_allow.clone();
        receiver.project = args.dicom_project.clone();
        receiver
    });
    config.ohif = args.ohif_dir.clone().map(|dir| {
        let listen = args.ohif_listen.unwrap_or_else(|| {
            // Port 0 (any free port) stays 0 for the viewer too.
            let mut next = args.listen;
            if next.port() != 0 {
                next.set_port(next.port().saturating_add(1));
            }
            next
        });
        xnatkit_server::viewer::OhifConfig { dir, listen }
    });
    // Read from the environment, never from argv, so it does not show in `ps`.
    config.admin_password = std::env::var("XNATKIT_ADMIN_PASSWORD")
        .ok()
        .filter(|p| !p.is_empty());

    config.site_url = args.site_url.clone();
    config.smtp = smtp;

    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {}; pick another --listen address",
                args.listen
            )
        })?;
    let ctrl_c = cancel_on_ctrl_c(
        printer,
        FirstCtrlC::Cancel,
        "finishing the requests in flight",
    );
    xnatkit_server::run(listener, config, shutdown_signal(ctrl_c))
        .await
        .context("the archive server failed")?;
    Ok(ExitCode::SUCCESS)
}

/// `--smtp` and friends; the password from a file or the environment.
fn smtp_config(args: &Args) -> anyhow::Result<Option<xnatkit_server::archive_email::SmtpConfig>> {
    let Some(url) = args.smtp.clone() else {
        return Ok(None);
    };
    let password = match (&args.smtp_user, &args.smtp_password_file) {
        (None, _) => None,
        (Some(_), Some(file)) => {
            let text = std::fs::read_to_string(file).with_context(|| {
                format!(
                    "cannot read --smtp-password-file {}; check the path and its permissions",
                    file.display()
                )
            })?;
            Some(text.lines().next().unwrap_or_default().to_owned())
        }
        (Some(user), None) => Some(std::env::var("XNATKIT_SMTP_PASSWORD").map_err(|_| {
            anyhow::anyhow!(
                "--smtp-user {user} needs a password: set XNATKIT_SMTP_PASSWORD or pass --smtp-password-file"
            )
        })?),
    };
    let config = xnatkit_server::archive_email::SmtpConfig {
        url,
        user: args.smtp_user.clone(),
        password,
        from: args.smtp_from.clone(),
    };
    config.check().map_err(anyhow::Error::msg)?;
    Ok(Some(config))
}

/// Completes on the first Ctrl-C (SIGINT) or on SIGTERM.
async fn shutdown_signal(ctrl_c: CancellationToken) {
    let ctrl_c = ctrl_c.cancelled_owned();
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
    tracing::info!("shutting down");
}

/// The Slurm executor, after checking that slurmctld answers: a server that
/// would queue every job into a dead cluster should not start.
async fn slurm_executor(args: &Args) -> anyhow::Result<xnatkit_engine::SlurmExecutor> {
    let mut cluster = xnatkit_slurm::SlurmCluster::new();
    if let Some(partition) = &args.slurm_partition {
        cluster = cluster.with_partition(partition);
    }
    if let Some(account) = &args.slurm_account {
        cluster = cluster.with_account(account);
    }
    if let Some(log) = &args.slurm_completion_log {
        cluster = cluster.with_completion_log(log);
    }
    cluster
        .ping()
        .await
        .context("--executor slurm: Slurm is not usable from this machine")?;
    // The nodes run built-ins with this very program: the path must be one
    // they see (the same install on every node, or a shared file system).
    let program = std::env::current_exe()
        .context("--executor slurm: cannot tell where this xnatkit binary is")?;
    let mut executor = xnatkit_engine::SlurmExecutor::new(
        cluster,
        program,
        args.pipeline_workers.map_or(32, |n| n as usize),
    );
    if let Some(mins) = args.slurm_time_limit_mins {
        executor = executor.with_time_limit(Duration::from_secs(mins.saturating_mul(60)));
    }
    Ok(executor)
}
