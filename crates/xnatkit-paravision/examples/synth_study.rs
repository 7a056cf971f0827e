//! Write a synthetic ParaVision 360 study of about SIZE_MB megabytes of
//! `2dseq` for benchmarking: `synth_study DIR [SIZE_MB]`.
//! Uses the same writer as the integration tests.
// A command-line tool for benchmarks and manual runs: printing is its interface.
#![allow(clippy::print_stdout, clippy::print_stderr)]
#![allow(clippy::unwrap_used, clippy::expect_used)] // a throwaway generator

#[path = "../tests/paravision/common.rs"]
#[allow(dead_code)] // the example uses a few of the test writers
mod common;

use common::{Pv, Synth, Word};

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = std::path::PathBuf::from(args.next().expect("usage: synth_study DIR [SIZE_MB]"));
    let size_mb: usize = args
        .next()
        .map_or(500, |s| s.parse().expect("SIZE_MB is a number"));
    let study = dir.join("20240725_090212_BENCH_1_1");
    common::write_subject(&study, Pv::V360);
    // 256 x 256 x 16-bit = 128 KiB per frame; 40 slices x 10 repetitions per scan.
    let scan = Synth {
        version: Pv::V360,
        word: Word::I16,
        big_endian: false,
        size: [256, 256],
        depth: (1, 0.0),
        extent: [30.0, 30.0],
        groups: vec![(40, "FG_SLICE"), (10, "FG_REPETITION")],
        orientation: [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
        first_position: [-15.0, -15.0, -20.0],
        slice_step: 1.0,
        echo_times: vec![10.0],
        protocol: "BENCH_T2_RARE".into(),
        has_reco: true,
        cest: None,
        per_slice: None,
        repetition_time: Some(5000.0),
        extra_visu: Vec::new(),
        extra_method: Vec::new(),
        extra_acqp: Vec::new(),
        has_fid: true,
    };
    let scan_bytes = 256 * 256 * 2 * 400;
    let scans = (size_mb * 1_000_000).div_ceil(scan_bytes).max(1);
    for expno in 1..=scans {
        // Every fourth scan is float, to include requantisation in the figure.
        let synth = if expno % 4 == 0 {
            Synth {
                word: Word::F32,
                groups: vec![(40, "FG_SLICE"), (5, "FG_REPETITION")],
                ..scan.clone()
            }
        } else {
            scan.clone()
        };
        synth.write(&study, expno as u32, 1);
    }
    println!("{}", study.display());
}
