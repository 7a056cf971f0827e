//! Per-frame acquisition values that ParaVision spreads over `visu_pars`,
//! `method` and `acqp`: the repetition time and its fallbacks, the FAIR
//! inversion mode (FG_IRMODE), and diffusion (nominal and effective b, the
//! gradient direction in the DICOM patient frame).

use crate::jcamp::ParamFile;
use crate::series::Reconstruction;
use crate::visu::Visu;

/// RepetitionTime (ms) of a frame: `VisuAcqRepetitionTime`; else acqp
/// `ACQ_repetition_time` when it holds one value per frame (or per element
/// of a frame group); else method `MultiRepTime` (the variable-TR list of
/// RAREVTR and FAIR methods) likewise; else method `PVM_RepetitionTime`;
/// else the first `ACQ_repetition_time`. FAIR_RARE writes no TR into
/// `visu_pars`, and without acqp a variable-TR scan would otherwise get
/// `PVM_RepetitionTime` (RAREVTR sets it to the first `MultiRepTime`) on
/// every frame, which no T1 fit can use.
pub fn repetition_time(recon: &Reconstruction<'_>, frame: usize) -> Option<f64> {
    let visu = recon.visu;
    let acqp_values = recon
        .acqp
        .and_then(|a| a.f64s("ACQ_repetition_time"))
        .unwrap_or_default();
    let method_values = recon
        .method
        .and_then(|m| m.f64s("MultiRepTime"))
        .unwrap_or_default();
    visu.number_for_frame("VisuAcqRepetitionTime", frame)
        .or_else(|| per_frame_value(visu, &acqp_values, frame))
        .or_else(|| per_frame_value(visu, &method_values, frame))
        .or_else(|| recon.method.and_then(|m| m.f64("PVM_RepetitionTime")))
        .or_else(|| acqp_values.first().copied())
        .filter(|t| t.is_finite() && *t > 0.0)
}

/// One of several values for this frame: per frame, or along the one
/// non-slice frame group of that length.
fn per_frame_value(visu: &Visu, values: &[f64], frame: usize) -> Option<f64> {
    if values.len() < 2 {
        return None;
    }
    if values.len() == visu.frame_count {
        return values.get(frame).copied();
    }
    let indices = visu.group_indices(frame);
    let mut matching = visu
        .groups
        .iter()
        .enumerate()
        .filter(|(_, g)| g.len == values.len() && g.id != "FG_SLICE");
    let (position, _) = matching.next()?;
    if matching.next().is_some() {
        return None;
    }
    values.get(indices[position]).copied()
}

/// FAIR inversion of one frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Inversion {
    /// `SELECTIVE`, `NONSELECTIVE`, or the group element comment upper-cased.
    pub mode: String,
    /// 1-based index along FG_IRMODE.
    pub index: usize,
    pub count: usize,
    /// The mode was taken from the position along FG_IRMODE (no comment).
    pub from_order: bool,
}

/// The inversion mode of a frame of a scan with an FG_IRMODE frame group.
/// The element comment (`VisuFGElemComment` tied to the group) decides when
/// present; otherwise ParaVision's FAIR order is assumed: slice-selective
/// first, then non-selective (global).
pub fn inversion(visu: &Visu, frame: usize) -> Option<Inversion> {
    let position = visu.group_position("FG_IRMODE")?;
    let group = &visu.groups[position];
    let index = visu.group_indices(frame)[position];
    let comment = group
        .deps
        .iter()
        .find(|(name, _)| name == "VisuFGElemComment")
        .and_then(|(_, start)| {
            visu.params
                .strs("VisuFGElemComment")?
                .get(start + index)
                .cloned()
        })
        .filter(|c| !c.trim().is_empty());
    let (mode, from_order) = match comment {
        Some(text) => (classify_inversion(&text), false),
        None => (
            match index {
                0 => "SELECTIVE".to_owned(),
                1 => "NONSELECTIVE".to_owned(),
                n => format!("MODE{}", n + 1),
            },
            true,
        ),
    };
    Some(Inversion {
        mode,
        index: index + 1,
        count: group.len,
        from_order,
    })
}

fn classify_inversion(comment: &str) -> String {
    let lower = comment.to_ascii_lowercase();
    if lower.contains("non") || lower.contains("global") {
        "NONSELECTIVE".to_owned()
    } else if lower.contains("sel") {
        "SELECTIVE".to_owned()
    } else {
        comment
            .trim()
            .to_ascii_uppercase()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .take(16)
            .collect()
    }
}

/// Diffusion weighting of one frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Diffusion {
    /// The prescribed b (s/mm²): 0 for A0 images, else the `PVM_DwBvalEach`
    /// value; the effective b when the method file does not say.
    pub nominal_b: f64,
    /// The b the sequence actually applied (imaging gradients included):
    /// trace of `VisuAcqDiffusionBMatrix`, else `PVM_DwEffBval`.
    pub effective_b: Option<f64>,
    /// Unit gradient direction in the DICOM patient frame (LPS); `None` for
    /// A0 images.
    pub direction: Option<[f64; 3]>,
}

/// Position of the diffusion frame group: FG_DIFFUSION (PV6+), FG_DTI, or
/// PV5's FG_MOVIE with the comment `diffusion`.
fn diffusion_group(visu: &Visu) -> Option<usize> {
    visu.groups.iter().position(|g| {
        matches!(g.id.as_str(), "FG_DIFFUSION" | "FG_DTI")
            || (g.id == "FG_MOVIE" && g.comment.to_ascii_lowercase().contains("diffusion"))
    })
}

pub fn diffusion(recon: &Reconstruction<'_>, frame: usize) -> Option<Diffusion> {
    let visu = recon.visu;
    let method = recon.method;
    let experiment = diffusion_group(visu).map(|g| visu.group_indices(frame)[g]);
    let from_matrix = visu
        .numbers_for_frame("VisuAcqDiffusionBMatrix", 9, frame)
        .map(|b| b[0] + b[4] + b[8]);
    let from_method = experiment
        .zip(method.and_then(|m| m.f64s("PVM_DwEffBval")))
        .and_then(|(e, values)| values.get(e).copied());
    let effective_b = from_matrix.or(from_method).filter(|b| b.is_finite());
    if effective_b.is_none() && experiment.is_none() {
        return None;
    }
    let a0_images = method
        .and_then(|m| m.f64("PVM_DwAoImages"))
        .filter(|n| *n >= 0.0)
        .map(|n| n as usize);
    let nominal_values = method
        .and_then(|m| m.f64s("PVM_DwBvalEach"))
        .filter(|v| !v.is_empty());
    let per_direction = nominal_values.as_ref().map_or(1, Vec::len);
    let is_a0 = matches!((experiment, a0_images), (Some(e), Some(n)) if e < n);
    let nominal_b = if is_a0 {
        0.0
    } else {
        match (&nominal_values, effective_b, experiment) {
            // The prescribed value nearest to what was applied: independent
            // of how ParaVision orders b-values and directions.
            (Some(values), Some(effective), _) => {
                let mut candidates = values.clone();
                if a0_images.is_none() {
                    candidates.push(0.0);
                }
                candidates
                    .into_iter()
                    .min_by(|a, b| (a - effective).abs().total_cmp(&(b - effective).abs()))?
            }
            (Some(values), None, Some(e)) => {
                let dw_index = e.saturating_sub(a0_images.unwrap_or(0));
                values[dw_index % values.len()]
            }
            (None, Some(effective), _) => effective,
            _ => return None,
        }
    };
    let direction = if is_a0 || nominal_b == 0.0 {
        None
    } else {
        gradient_direction(
            recon,
            frame,
            experiment,
            a0_images.unwrap_or(0),
            per_direction,
        )
    };
    Some(Diffusion {
        nominal_b,
        effective_b,
        direction,
    })
}

/// `VisuAcqDiffusionGradOrient` (PV360/PV7, patient frame) when present;
/// else the method's per-experiment `PVM_DwGradVec` or per-direction
/// `PVM_DwDir` (read, phase, slice gradient frame) rotated into the patient
/// frame with the frame's orientation rows.
fn gradient_direction(
    recon: &Reconstruction<'_>,
    frame: usize,
    experiment: Option<usize>,
    a0_images: usize,
    per_direction: usize,
) -> Option<[f64; 3]> {
    let visu = recon.visu;
    if let Some(g) = visu.numbers_for_frame("VisuAcqDiffusionGradOrient", 3, frame) {
        return unit([g[0], g[1], g[2]]);
    }
    let experiment = experiment?;
    let method = recon.method?;
    let logical = rows(method.f64s("PVM_DwGradVec"), experiment)
        .and_then(unit)
        .or_else(|| {
            let direction = experiment.checked_sub(a0_images)? / per_direction.max(1);
            rows(method.f64s("PVM_DwDir"), direction).and_then(unit)
        })?;
    let orientation = visu.numbers_for_frame("VisuCoreOrientation", 9, frame)?;
    let row = |i: usize| {
        [
            orientation[3 * i],
            orientation[3 * i + 1],
            orientation[3 * i + 2],
        ]
    };
    let (read, phase) = if read_along_rows(visu, frame) {
        (row(1), row(0))
    } else {
        (row(0), row(1))
    };
    let slice = row(2);
    unit([0, 1, 2].map(|i| logical[0] * read[i] + logical[1] * phase[i] + logical[2] * slice[i]))
}

/// Row `index` of an n×3 array.
fn rows(values: Option<Vec<f64>>, index: usize) -> Option<[f64; 3]> {
    let values = values?;
    let row = values.get(3 * index..3 * index + 3)?;
    Some([row[0], row[1], row[2]])
}

fn unit(v: [f64; 3]) -> Option<[f64; 3]> {
    let norm = (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).sqrt();
    (norm.is_finite() && norm > 1e-9).then(|| v.map(|c| c / norm))
}

/// Whether the read gradient runs along stored y (down the columns) rather
/// than stored x: `VisuAcqGradEncoding` (PV6+) names the encoding of each
/// `VisuCoreSize` dimension; an in-plane transposed frame swaps them. PV5.1's
/// `VisuAcqImagePhaseEncDir` `row_dir` puts the phase along x.
fn read_along_rows(visu: &Visu, frame: usize) -> bool {
    let transposed = visu.layout(frame).in_plane_transposed;
    if let Some(encoding) = visu.params.strs("VisuAcqGradEncoding") {
        let first = if transposed {
            encoding.get(1)
        } else {
            encoding.first()
        };
        return first.map(String::as_str) == Some("phase_enc");
    }
    phase_enc_dir(&visu.params, visu, frame) == Some("row_dir")
}

fn phase_enc_dir<'a>(params: &'a ParamFile, visu: &Visu, frame: usize) -> Option<&'a str> {
    let value = params.get("VisuAcqImagePhaseEncDir")?;
    let elements = value.elements();
    let row = visu.row_for("VisuAcqImagePhaseEncDir", frame, elements.len())?;
    elements.get(row)?.as_str()
}
