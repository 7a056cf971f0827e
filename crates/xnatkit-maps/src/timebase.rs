//! The time base of a fit: which time each image stands for, and where
//! that time comes from. For T2 and ADC there is one answer (echo time,
//! b-value); a T1 saturation-recovery fit S(t) = A·(1 − e^(−t/T1)) has two:
//!
//! - **repetition**: t = TR, the repetition time of each image (what
//!   XNAT-PIC fits against);
//! - **recovery**: t = TR − d with d = echo spacing × (echoes per
//!   excitation − ½), the time from the last refocusing pulse of the echo
//!   train to the next excitation, over which the longitudinal
//!   magnetisation actually recovers. This is the recovery time Bruker's
//!   RAREVTR method itself computes: acqp `ACQ_recov_time[i] =
//!   MultiRepTime[i] − PVM_EchoTime·(PVM_RareFactor·PVM_NEchoImages − ½)`.
//!
//! For a ParaVision scan folder the numbers come from its `method` file
//! (`MultiRepTime`, `PVM_EchoTime`, `PVM_RareFactor`, `PVM_NEchoImages`)
//! and recovery is the default; for a DICOM series, EchoTrainLength
//! (0018,0091) and an echo spacing the caller gives (no standard DICOM
//! attribute holds one), and repetition is the default, so DICOM results
//! are what they always were. docs/maps.md ("Time values") has the why.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use xnatkit_paravision::jcamp::ParamFile;

use crate::Error;
use crate::maps::{MapKind, Options};
use crate::stack::{Stack, TimeAxis};

/// What a T1 saturation-recovery fit takes as t.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TimeBase {
    /// The repetition time of each image.
    Repetition,
    /// The repetition time minus the echo train (see the module doc).
    Recovery,
}

impl TimeBase {
    pub fn name(self) -> &'static str {
        match self {
            TimeBase::Repetition => "repetition",
            TimeBase::Recovery => "recovery",
        }
    }

    /// `repetition` or `recovery` (as the CLI and the engine spell them).
    pub fn parse(text: &str) -> Option<TimeBase> {
        match text.trim().to_ascii_lowercase().as_str() {
            "repetition" => Some(TimeBase::Repetition),
            "recovery" => Some(TimeBase::Recovery),
            _ => None,
        }
    }
}

impl std::fmt::Display for TimeBase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The echo train subtracted from the repetition time.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EchoTrain {
    /// Time between refocusing pulses (between echoes), ms.
    pub echo_spacing_ms: f64,
    /// Echoes per excitation.
    pub echoes: f64,
    /// echo spacing × (echoes − ½): excitation to the last refocusing
    /// pulse, ms.
    pub duration_ms: f64,
    /// Where the spacing and the echo count come from.
    pub source: String,
}

impl EchoTrain {
    fn new(echo_spacing_ms: f64, echoes: f64, source: String) -> EchoTrain {
        EchoTrain {
            echo_spacing_ms,
            echoes,
            duration_ms: echo_spacing_ms * (echoes - 0.5),
            source,
        }
    }
}

/// Which time values a map was fitted against and where they came from
/// (written to `maps.json`, the DICOM DerivationDescription and the
/// command's summary).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Timing {
    /// `echo-time`, `b-value`, or for T1 `repetition` or `recovery`.
    pub time_base: String,
    /// Where the values come from (headers, method parameters, formula).
    pub time_source: String,
    /// Recovery base: the repetition times the recovery times were
    /// derived from, in the order of `times`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repetition_times: Option<Vec<f64>>,
    /// Recovery base: the echo train subtracted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub echo_train: Option<EchoTrain>,
}

impl Timing {
    /// What the headers give along `axis`, before any T1 choice.
    pub fn of_axis(axis: TimeAxis) -> Timing {
        let (base, source) = match axis {
            TimeAxis::EchoTime => (
                "echo-time",
                "EchoTime (0018,0081) / EffectiveEchoTime (0018,9082), ms",
            ),
            TimeAxis::RecoveryTime => {
                ("repetition", "RepetitionTime (0018,0080) of each image, ms")
            }
            TimeAxis::BValue => (
                "b-value",
                "DiffusionBValue (0018,9087) or the vendor's b-value tag, s/mm²",
            ),
        };
        Timing {
            time_base: base.to_owned(),
            time_source: source.to_owned(),
            repetition_times: None,
            echo_train: None,
        }
    }

    /// One line for the DICOM DerivationDescription and the summary.
    pub fn describe(&self) -> String {
        format!("time base {}: {}", self.time_base, self.time_source)
    }
}

/// Where the images of a stack came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A DICOM series folder.
    Dicom,
    /// A ParaVision scan folder (converted to DICOM on the way in).
    ParaVision { scan: PathBuf },
}

/// EchoTrainLength (0018,0091) over the images of a series.
#[derive(Debug, Clone, PartialEq)]
pub enum EchoTrainLength {
    /// Every image gives this value.
    Same(f64),
    /// This image gives none.
    Missing { path: PathBuf },
    /// The images disagree.
    Differs { values: Vec<f64> },
}

impl EchoTrainLength {
    /// Summarises the per-image values.
    pub fn of(values: impl IntoIterator<Item = (Option<f64>, PathBuf)>) -> EchoTrainLength {
        let mut seen: Vec<f64> = Vec::new();
        for (value, path) in values {
            match value.filter(|v| v.is_finite() && *v >= 1.0) {
                None => return EchoTrainLength::Missing { path },
                Some(v) if !seen.contains(&v) => seen.push(v),
                Some(_) => {}
            }
        }
        match seen.as_slice() {
            [one] => EchoTrainLength::Same(*one),
            _ => EchoTrainLength::Differs { values: seen },
        }
    }
}

/// Applies the time base of `kind` and `options` to `stack`: for T1, the
/// method's repetition times for a ParaVision scan, and the recovery
/// times when that base is chosen (or is the default). Other maps keep
/// their times. Records the choice in `stack.timing`.
pub fn resolve(stack: &mut Stack, kind: MapKind, options: &Options) -> Result<(), Error> {
    if kind != MapKind::T1Sr {
        return Ok(());
    }
    let folder = stack.info.folder.clone();
    let refuse = |reason: String| Error::TimeBase {
        path: folder.clone(),
        reason,
    };
    let (base, train) = match stack.origin.clone() {
        Origin::ParaVision { scan } => {
            if options.echo_spacing_ms.is_some() {
                return Err(refuse(
                    "a ParaVision scan folder's echo spacing is read from its method file (PVM_EchoTime); leave the echo spacing out".to_owned(),
                ));
            }
            let method = read_method(&scan)?;
            if let Some(method) = &method {
                repetition_times_from_method(stack, method)?;
            } else {
                stack.timing.time_source = "RepetitionTime (0018,0080) of each image as the ParaVision conversion assigned it (the scan folder has no method file), ms".to_owned();
            }
            let train = method_echo_train(method.as_ref());
            match (options.t1_time_base, train) {
                (Some(TimeBase::Repetition), _) => (TimeBase::Repetition, None),
                (Some(TimeBase::Recovery), Ok(train)) | (None, Ok(train)) => {
                    (TimeBase::Recovery, Some(train))
                }
                (Some(TimeBase::Recovery), Err(missing)) => {
                    return Err(refuse(format!(
                        "the recovery time base needs the echo train from the method file, and {missing}; use the repetition time base (--time-base repetition)"
                    )));
                }
                (None, Err(missing)) => {
                    // The default asks for recovery only where the method
                    // defines it; a method without an echo train (not a
                    // RARE-family method) is fitted against its TRs, and
                    // the record says why.
                    stack.timing.time_source = format!(
                        "{} (the default recovery base was not used: {missing})",
                        stack.timing.time_source
                    );
                    (TimeBase::Repetition, None)
                }
            }
        }
        Origin::Dicom => match options.t1_time_base.unwrap_or(TimeBase::Repetition) {
            TimeBase::Repetition => {
                if options.echo_spacing_ms.is_some() {
                    return Err(refuse(
                        "an echo spacing is only used by the recovery time base; add --time-base recovery or leave the echo spacing out".to_owned(),
                    ));
                }
                (TimeBase::Repetition, None)
            }
            TimeBase::Recovery => {
                let echoes = match &stack.echo_train_length {
                    EchoTrainLength::Same(v) => *v,
                    EchoTrainLength::Missing { path } => {
                        return Err(Error::TimeBase {
                            path: path.clone(),
                            reason: "EchoTrainLength (0018,0091) is missing, and the recovery time base needs it (t = TR − echo spacing × (EchoTrainLength − ½)); use --time-base repetition".to_owned(),
                        });
                    }
                    EchoTrainLength::Differs { values } => {
                        return Err(refuse(format!(
                            "EchoTrainLength (0018,0091) differs between the images ({}), so there is no one echo train to subtract; use --time-base repetition",
                            join(values)
                        )));
                    }
                };
                let Some(spacing) = options.echo_spacing_ms else {
                    return Err(refuse(
                        "no echo spacing: no standard DICOM header holds it, and the recovery time base needs it (t = TR − echo spacing × (EchoTrainLength − ½)); give --echo-spacing MS (the protocol's echo spacing, ParaVision's PVM_EchoTime) or use --time-base repetition".to_owned(),
                    ));
                };
                if !(spacing.is_finite() && spacing > 0.0) {
                    return Err(refuse(format!(
                        "the echo spacing must be a positive number of ms, not {spacing}"
                    )));
                }
                let source = format!(
                    "echo spacing {} ms as given × (EchoTrainLength (0018,0091) {} − ½)",
                    number(spacing),
                    number(echoes)
                );
                (
                    TimeBase::Recovery,
                    Some(EchoTrain::new(spacing, echoes, source)),
                )
            }
        },
    };
    stack.timing.time_base = base.name().to_owned();
    let Some(train) = train else {
        return Ok(());
    };
    let mut recovery = Vec::with_capacity(stack.times.len());
    for &tr in &stack.times {
        let t = tr - train.duration_ms;
        if !(t.is_finite() && t > 0.0) {
            return Err(Error::RecoveryNotPositive {
                path: folder,
                repetition: tr,
                recovery: t,
                train: train.duration_ms,
            });
        }
        recovery.push(t);
    }
    stack.timing.time_source = format!(
        "t = TR − {} ms echo train ({}); TR: {}",
        number(train.duration_ms),
        train.source,
        stack.timing.time_source
    );
    stack.timing.repetition_times = Some(std::mem::replace(&mut stack.times, recovery));
    stack.timing.echo_train = Some(train);
    Ok(())
}

/// The scan's `method` file, if it has one.
fn read_method(scan: &Path) -> Result<Option<ParamFile>, Error> {
    let path = scan.join("method");
    if !path.is_file() {
        return Ok(None);
    }
    ParamFile::read(&path)
        .map(Some)
        .map_err(|e| Error::ParaVision {
            path,
            reason: e.to_string(),
        })
}

/// Takes the repetition times from the method's `MultiRepTime` list: each
/// time point of the converted series (VisuAcqRepetitionTime, or whatever
/// the conversion fell back to) must be one of them, and takes the
/// method's value.
fn repetition_times_from_method(stack: &mut Stack, method: &ParamFile) -> Result<(), Error> {
    let Some(list) = method
        .f64s("MultiRepTime")
        .filter(|l| l.len() >= 2 && l.iter().all(|v| v.is_finite()))
    else {
        stack.timing.time_source = "RepetitionTime (0018,0080) of each image from the ParaVision conversion (VisuAcqRepetitionTime, else acqp ACQ_repetition_time, else method PVM_RepetitionTime; the method has no MultiRepTime list), ms".to_owned();
        return Ok(());
    };
    for t in stack.times.iter_mut() {
        let tolerance = 1e-3 * t.abs().max(1.0);
        let Some(&m) = list
            .iter()
            .filter(|m| (**m - *t).abs() <= tolerance)
            .min_by(|a, b| (**a - *t).abs().total_cmp(&(**b - *t).abs()))
        else {
            return Err(Error::TimeBase {
                path: stack.info.folder.clone(),
                reason: format!(
                    "the images at repetition time {} ms are not at any of the method's MultiRepTime values ({}); visu_pars and method disagree",
                    number(*t),
                    join(&list)
                ),
            });
        };
        *t = m;
    }
    stack.timing.time_source =
        "method MultiRepTime, one value per image as the ParaVision conversion assigned them, ms"
            .to_owned();
    Ok(())
}

/// The echo train a RARE-family method defines, or what is missing.
fn method_echo_train(method: Option<&ParamFile>) -> Result<EchoTrain, String> {
    let method = method.ok_or_else(|| "the scan folder has no method file".to_owned())?;
    let spacing = method
        .f64("PVM_EchoTime")
        .filter(|v| v.is_finite() && *v > 0.0)
        .ok_or_else(|| "the method has no PVM_EchoTime (the echo spacing)".to_owned())?;
    let rare = method
        .f64("PVM_RareFactor")
        .filter(|v| v.is_finite() && *v >= 1.0)
        .ok_or_else(|| {
            "the method has no PVM_RareFactor (it is not a RARE-family method)".to_owned()
        })?;
    let images = method
        .f64("PVM_NEchoImages")
        .filter(|v| v.is_finite() && *v >= 1.0)
        .unwrap_or(1.0);
    let source = format!(
        "method PVM_EchoTime {} ms × (PVM_RareFactor {} × PVM_NEchoImages {} − ½), as RAREVTR's own ACQ_recov_time",
        number(spacing),
        number(rare),
        number(images)
    );
    Ok(EchoTrain::new(spacing, rare * images, source))
}

fn number(v: f64) -> String {
    format!("{v}")
}

fn join(values: &[f64]) -> String {
    values
        .iter()
        .map(|v| number(*v))
        .collect::<Vec<_>>()
        .join(", ")
}
