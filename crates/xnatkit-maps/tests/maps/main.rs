//! xnatkit-maps' integration tests, one binary: synthetic phantoms with
//! known T2/T1/ADC and Rician noise written as DICOM series (accuracy,
//! geometry, multi-frame, bad input), RTSTRUCT rasterisation, and
//! cross-checks against independent Python implementations (numpy, dipy,
//! rt-utils) on real data (`maps_reference.py`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod accuracy;
mod bad_input;
mod crosscheck;
mod geometry;
mod rois;
mod support;
mod time_base;
