//! Fills a project on a running server with generated CT sessions, for
//! benchmarks: `sample_project URL USER PROJECT SUBJECTS SLICES [SIDE]` with
//! the password in `XNAT_PASS`. Each subject gets one session with a
//! topogram and one `Fl_Thorax INSP 3.0 Qr36` scan of SLICES SIDE×SIDE
//! slices (SIDE defaults to 512: 512 KiB each; 256 gives 128 KiB slices,
//! the size of typical MR instances). Prints the subject labels, one per
//! line, on stdout.
// A command-line tool for benchmarks and manual runs: printing is its interface.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::process::ExitCode;

use xnatkit_client::sample::{
    SampleScan, SampleSession, SampleSubject, ensure_project, upload_sample,
};
use xnatkit_client::{ClientOptions, Credentials, XnatClient};

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (url, user, project, subjects, slices, side) = match args.as_slice() {
        [url, user, project, subjects, slices] => (url, user, project, subjects, slices, "512"),
        [url, user, project, subjects, slices, side] => {
            (url, user, project, subjects, slices, side.as_str())
        }
        _ => {
            eprintln!(
                "usage: sample_project URL USER PROJECT SUBJECTS SLICES [SIDE] (password in XNAT_PASS)"
            );
            return ExitCode::from(2);
        }
    };
    let (Ok(subjects), Ok(slices), Ok(side)) = (
        subjects.parse::<usize>(),
        slices.parse::<usize>(),
        side.parse::<u16>(),
    ) else {
        eprintln!("SUBJECTS, SLICES and SIDE must be numbers");
        return ExitCode::from(2);
    };
    let password = std::env::var("XNAT_PASS").unwrap_or_default();
    match run(url, user, &password, project, subjects, slices, side).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn run(
    url: &str,
    user: &str,
    password: &str,
    project: &str,
    subjects: usize,
    slices: usize,
    side: u16,
) -> xnatkit_client::Result<()> {
    let credentials = Credentials::Password {
        user: user.to_owned(),
        password: password.to_owned(),
    };
    let client = XnatClient::connect(url, credentials, ClientOptions::default()).await?;
    ensure_project(&client, project).await?;
    let list: Vec<SampleSubject> = (0..subjects)
        .map(|i| {
            let label = format!("{}", 100_000 + i * 7919);
            SampleSubject {
                sessions: vec![SampleSession {
                    label: format!("{label}_CT1"),
                    date: "2024-03-01".into(),
                    scans: vec![
                        SampleScan {
                            id: "1".into(),
                            scan_type: "Topogram 0.6 T20f".into(),
                            slices: 2,
                            side: 128,
                        },
                        SampleScan {
                            id: "2".into(),
                            scan_type: "Fl_Thorax INSP 3.0 Qr36".into(),
                            slices,
                            side,
                        },
                    ],
                }],
                label,
            }
        })
        .collect();
    let work = std::env::temp_dir().join(format!("xnatkit-sample-{}", std::process::id()));
    let bytes = upload_sample(&client, project, &list, &work, 8).await;
    let _ = std::fs::remove_dir_all(&work);
    let bytes = bytes?;
    eprintln!(
        "uploaded {} MB in {} subjects",
        bytes / 1_000_000,
        list.len()
    );
    for s in &list {
        println!("{}", s.label);
    }
    Ok(())
}
