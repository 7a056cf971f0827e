//! The XNAT-PIC CEST private block: group 0x1061, creator at (1061,0010),
//! elements (1061,1001)–(1061,1015) (Zullino et al. 2022, Table 1).
//!
//! Unlike MRI2DICOM, the creator string is fixed ([`CREATOR`]) rather than the
//! scanner login, offsets follow the frame group whose length equals the
//! number of offsets (not "the slowest axis"), and ppm = Hz / MHz.

use crate::jcamp::{ParamFile, Value};
use crate::visu::Visu;

/// Private group of the CEST block.
pub const GROUP: u16 = 0x1061;
/// Value of (1061,0010). Fixed so that readers resolving private blocks by
/// creator find it on every site (MRI2DICOM writes the scanner login here).
pub const CREATOR: &str = "XNAT-PIC CEST";

/// Saturation-transfer description of one reconstruction.
#[derive(Debug, Clone, PartialEq)]
pub struct Cest {
    /// (1061,1001) acquisition method, e.g. `Bruker:RARE`.
    pub method: String,
    /// (1061,1002)
    pub saturation_type: String,
    /// (1061,1003)
    pub pulse_shape: String,
    /// (1061,1004) µT
    pub b1_saturation: Option<f64>,
    /// (1061,1005) ms
    pub pulse_length: Option<f64>,
    /// (1061,1006)
    pub pulse_number: Option<f64>,
    /// (1061,1007) ms
    pub interpulse_delay: Option<f64>,
    /// (1061,1008) ms
    pub saturation_length: Option<f64>,
    /// (1061,1010) ms
    pub pulse_length2: Option<f64>,
    /// (1061,1011) %
    pub duty_cycle: Option<f64>,
    /// Saturation offsets in Hz, one per measurement.
    pub offsets_hz: Vec<f64>,
    /// Same offsets in ppm of the imaging frequency.
    pub offsets_ppm: Vec<f64>,
    /// How stored frames map onto offsets.
    pub axis: OffsetAxis,
}

/// Which offset a stored frame was saturated at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetAxis {
    /// Index within this frame group (position in `Visu::groups`).
    Group(usize),
    /// No group matches; frames are split into equal consecutive blocks
    /// (MRI2DICOM's assumption, kept only as the fallback).
    Blocks { frames_per_offset: usize },
}

impl Cest {
    /// Offset index of a stored frame.
    pub fn offset_index(&self, visu: &Visu, frame: usize) -> usize {
        match self.axis {
            OffsetAxis::Group(position) => visu.group_indices(frame)[position],
            OffsetAxis::Blocks { frames_per_offset } => frame / frames_per_offset.max(1),
        }
    }

    /// (1061,1012) recovery time for a frame with repetition time `tr` (ms).
    pub fn recovery_time(&self, tr: Option<f64>) -> Option<f64> {
        Some(tr? - self.pulse_length?)
    }

    /// (1061,1009) readout time: what remains of TR after saturation,
    /// shared by the frames acquired per offset (XNAT-PIC's definition).
    pub fn readout_time(&self, tr: Option<f64>, visu: &Visu) -> Option<f64> {
        let per_offset = (visu.frame_count / self.offsets_hz.len().max(1)).max(1) as f64;
        let value =
            (tr? - self.pulse_length? - self.pulse_length2.unwrap_or(0.0) * (per_offset - 1.0))
                / per_offset;
        value.is_finite().then_some(value)
    }
}

fn on(file: &ParamFile, name: &str) -> bool {
    file.str(name).is_some_and(|v| v.eq_ignore_ascii_case("on"))
}

fn first_field(file: &ParamFile, name: &str) -> Option<f64> {
    let value = file.get(name)?;
    let fields = value
        .fields()
        .or_else(|| value.elements().first().and_then(Value::fields))?;
    fields.first()?.as_f64()
}

fn text(file: &ParamFile, name: &str) -> String {
    file.str(name).unwrap_or_default().to_owned()
}

/// Read the saturation-transfer parameters when saturation is on: PV360
/// `PVM_SatTrans*`, PV5/6 `PVM_MagTrans*` with offsets from `ACQ_O2_list`.
/// `None` when the scan is not a saturation-transfer scan or has no offsets.
pub fn detect(method: &ParamFile, acqp: Option<&ParamFile>, visu: &Visu) -> Option<Cest> {
    let frequency_mhz = visu
        .params
        .f64("VisuAcqImagingFrequency")
        .or_else(|| acqp.and_then(|a| a.f64("BF1")))
        .filter(|f| *f > 0.0);
    let method_name = text(method, "Method");
    let is_train = method_name.to_ascii_lowercase().contains("train");
    let mut cest = if on(method, "PVM_SatTransOnOff") {
        let values = method.f64s("PVM_SatTransFreqValues").unwrap_or_default();
        let in_hz = method
            .str("PVM_SatTransFreqUnit")
            .is_some_and(|u| u.eq_ignore_ascii_case("unit_hz"));
        let offsets_hz: Vec<f64> = if in_hz {
            values
        } else {
            values
                .iter()
                .map(|ppm| ppm * frequency_mhz.unwrap_or(f64::NAN))
                .collect()
        };
        let pulse_length = first_field(method, "PVM_SatTransPulse");
        let pulse_number = method.f64("PVM_SatTransNPulses");
        let delay = method.f64("PVM_SatTransInterPulseDelay");
        Cest {
            method: method_name.clone(),
            saturation_type: text(method, "PVM_SatTransType"),
            pulse_shape: text(method, "PVM_SatTransPulseEnum"),
            b1_saturation: method.f64("PVM_SatTransPulseAmpl_uT"),
            pulse_length,
            pulse_number,
            interpulse_delay: delay,
            saturation_length: if is_train {
                method.f64("PVM_SatTransModuleTime")
            } else {
                product(pulse_length, pulse_number)
            },
            pulse_length2: method.f64("PVM_SatTransPulseLength2"),
            duty_cycle: duty_cycle(is_train, pulse_length, delay),
            offsets_hz,
            offsets_ppm: Vec::new(),
            axis: OffsetAxis::Blocks {
                frames_per_offset: 1,
            },
        }
    } else if on(method, "PVM_MagTransOnOff") {
        let offsets_hz = acqp?.f64s("ACQ_O2_list")?;
        let pulse_length = first_field(method, "PVM_MagTransPulse")
            .or_else(|| first_field(method, "PVM_MagTransPulse1"));
        let pulse_number = method.f64("PVM_MagTransPulsNumb");
        let delay = method.f64("PVM_MagTransInterDelay");
        let shape = method
            .str("PVM_MagTransPulseEnum")
            .or_else(|| method.str("PVM_MagTransPulse1Enum"))
            .unwrap_or_default()
            .to_owned();
        Cest {
            method: method_name.clone(),
            saturation_type: "CEST".to_owned(),
            pulse_shape: shape,
            b1_saturation: method.f64("PVM_MagTransPower"),
            pulse_length,
            pulse_number,
            interpulse_delay: delay,
            saturation_length: if is_train {
                method.f64("PVM_MagTransModuleTime")
            } else {
                product(pulse_length, pulse_number)
            },
            pulse_length2: None,
            duty_cycle: duty_cycle(is_train, pulse_length, delay),
            offsets_hz,
            offsets_ppm: Vec::new(),
            axis: OffsetAxis::Blocks {
                frames_per_offset: 1,
            },
        }
    } else {
        return None;
    };
    if cest.offsets_hz.is_empty() {
        return None;
    }
    cest.offsets_ppm = cest
        .offsets_hz
        .iter()
        .map(|hz| hz / frequency_mhz.unwrap_or(f64::NAN))
        .collect();
    cest.axis = offset_axis(visu, cest.offsets_hz.len())?;
    Some(cest)
}

fn product(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    Some(a? * b?)
}

fn duty_cycle(is_train: bool, pulse: Option<f64>, delay: Option<f64>) -> Option<f64> {
    if !is_train {
        return Some(100.0);
    }
    let (p, d) = (pulse?, delay?);
    (p + d > 0.0).then(|| p / (p + d) * 100.0)
}

/// The frame group whose length equals the number of offsets; among several,
/// the outermost one that is not the slice or echo axis.
fn offset_axis(visu: &Visu, offsets: usize) -> Option<OffsetAxis> {
    let candidates: Vec<usize> = visu
        .groups
        .iter()
        .enumerate()
        .filter(|(_, g)| g.len == offsets)
        .map(|(i, _)| i)
        .collect();
    let preferred = candidates
        .iter()
        .rev()
        .find(|&&i| !matches!(visu.groups[i].id.as_str(), "FG_SLICE" | "FG_ECHO"))
        .or(candidates.last());
    if let Some(&position) = preferred {
        return Some(OffsetAxis::Group(position));
    }
    visu.frame_count
        .is_multiple_of(offsets)
        .then_some(OffsetAxis::Blocks {
            frames_per_offset: visu.frame_count / offsets,
        })
}
