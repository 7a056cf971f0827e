//! Benchmark helper for `bench/dicom-receive.sh`:
//!
//! - `dicom_receive generate DIR COUNT`: writes COUNT synthetic 256×256 MR instances
//!   (one study, four series) into DIR;
//! - `dicom_receive serve PORT SPOOL_DIR`: runs the C-STORE receiver (AE title
//!   `XNATKIT`) with a sink that only keeps the files, until stdin closes or
//!   Ctrl-C; prints the number of instances received.
// A command-line tool for benchmarks and manual runs: printing is its interface.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use xnatkit_dicom::testdata::{SyntheticInstance, new_uid, write_series};
use xnatkit_receiver::{InstanceSink, ReceivedInstance, ScpConfig, run_scp};

struct CountingSink(AtomicUsize);

impl InstanceSink for CountingSink {
    async fn instance_received(&self, _received: ReceivedInstance) -> Result<(), String> {
        self.0.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

fn usage() -> ! {
    eprintln!("usage: dicom_receive generate DIR COUNT | serve PORT SPOOL_DIR");
    std::process::exit(2)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["generate", dir, count] => {
            let count: usize = count.parse()?;
            let study = new_uid();
            let per_series = count.div_ceil(4);
            let mut written = 0;
            for series in 1..=4 {
                let n = per_series.min(count - written);
                let template = SyntheticInstance {
                    series_number: Some(series),
                    rows: 256,
                    cols: 256,
                    ..SyntheticInstance::new(&study, &new_uid())
                };
                written += write_series(&PathBuf::from(dir), &template, n)?.len();
            }
            println!("{written}");
        }
        ["serve", port, spool] => {
            let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}")).await?;
            let sink = Arc::new(CountingSink(AtomicUsize::new(0)));
            let config = ScpConfig::new("XNATKIT", spool);
            let stop = async {
                let stdin_closed = tokio::task::spawn_blocking(|| {
                    let mut sink = Vec::new();
                    let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut sink);
                });
                tokio::select! {
                    _ = stdin_closed => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            };
            run_scp(listener, config, Arc::clone(&sink), stop).await?;
            println!("{}", sink.0.load(Ordering::Relaxed));
        }
        _ => usage(),
    }
    Ok(())
}
