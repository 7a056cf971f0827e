//! What `visu_pars` says about a reconstruction: pixel format, frame groups,
//! per-frame scaling, and which row of a frame-dependent parameter belongs to
//! which stored frame.

use crate::jcamp::{ParamFile, Value};

/// A `visu_pars` that cannot describe its `2dseq`.
#[derive(Debug, thiserror::Error)]
pub enum VisuError {
    #[error("missing parameter {0}")]
    Missing(&'static str),
    #[error("parameter {param}: {problem}")]
    Invalid {
        param: &'static str,
        problem: String,
    },
}

fn invalid(param: &'static str, problem: impl Into<String>) -> VisuError {
    VisuError::Invalid {
        param,
        problem: problem.into(),
    }
}

/// `VisuCoreWordType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WordType {
    U8,
    I16,
    I32,
    F32,
}

impl WordType {
    pub fn bytes(self) -> usize {
        match self {
            WordType::U8 => 1,
            WordType::I16 => 2,
            WordType::I32 | WordType::F32 => 4,
        }
    }
}

/// `VisuCoreByteOrder`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteOrder {
    Little,
    Big,
}

/// One entry of `VisuFGOrderDesc` with its dependent parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct FrameGroup {
    pub len: usize,
    /// `FG_SLICE`, `FG_ECHO`, `FG_CYCLE`, ... (an open set).
    pub id: String,
    pub comment: String,
    /// `(parameter name, first row)` from `VisuGroupDepVals`.
    pub deps: Vec<(String, usize)>,
}

/// The parsed essentials of a `visu_pars`, plus the file for everything else.
#[derive(Debug, Clone)]
pub struct Visu {
    pub params: ParamFile,
    pub word_type: WordType,
    pub byte_order: ByteOrder,
    /// `VisuCoreDim`: 2 for slices, 3 for volumes per frame.
    pub dim: usize,
    /// `VisuCoreSize`: x (fastest), y, [z].
    pub size: Vec<usize>,
    /// `VisuCoreExtent` in mm.
    pub extent: Vec<f64>,
    pub frame_count: usize,
    /// Per stored frame: real = slope * stored + offset.
    pub slopes: Vec<f64>,
    pub offsets: Vec<f64>,
    /// `VisuFGOrderDesc`, first group varies fastest.
    pub groups: Vec<FrameGroup>,
}

impl Visu {
    pub fn from_params(params: ParamFile) -> Result<Visu, VisuError> {
        let word_type = match params
            .str("VisuCoreWordType")
            .ok_or(VisuError::Missing("VisuCoreWordType"))?
        {
            "_8BIT_UNSGN_INT" => WordType::U8,
            "_16BIT_SGN_INT" => WordType::I16,
            "_32BIT_SGN_INT" => WordType::I32,
            "_32BIT_FLOAT" => WordType::F32,
            other => {
                return Err(invalid(
                    "VisuCoreWordType",
                    format!("unsupported `{other}`"),
                ));
            }
        };
        let byte_order = match params.str("VisuCoreByteOrder").unwrap_or("littleEndian") {
            "littleEndian" => ByteOrder::Little,
            "bigEndian" => ByteOrder::Big,
            other => {
                return Err(invalid(
                    "VisuCoreByteOrder",
                    format!("unsupported `{other}`"),
                ));
            }
        };
        let size = params
            .f64s("VisuCoreSize")
            .ok_or(VisuError::Missing("VisuCoreSize"))?
            .into_iter()
            .map(|v| to_count(v).ok_or_else(|| invalid("VisuCoreSize", "not a positive integer")))
            .collect::<Result<Vec<_>, _>>()?;
        let dim = params
            .f64("VisuCoreDim")
            .and_then(to_count)
            .unwrap_or(size.len());
        if !(2..=3).contains(&dim) || size.len() < dim || size.contains(&0) {
            return Err(invalid(
                "VisuCoreSize",
                format!("{size:?} does not describe {dim}-D frames"),
            ));
        }
        // DICOM Rows and Columns are 16-bit.
        if size[..2].iter().any(|&s| s > usize::from(u16::MAX)) {
            return Err(invalid(
                "VisuCoreSize",
                format!("{size:?} is larger than DICOM's 65535 rows or columns"),
            ));
        }
        let extent = params
            .f64s("VisuCoreExtent")
            .ok_or(VisuError::Missing("VisuCoreExtent"))?;
        if extent.len() < dim || extent.iter().any(|e| !e.is_finite() || *e <= 0.0) {
            return Err(invalid(
                "VisuCoreExtent",
                format!("{extent:?} is not one positive length per axis"),
            ));
        }
        let groups = frame_groups(&params)?;
        let group_product: usize = groups.iter().map(|g| g.len).product();
        let frame_count = match params.f64("VisuCoreFrameCount") {
            Some(v) => to_count(v).ok_or_else(|| invalid("VisuCoreFrameCount", "not a count"))?,
            None => group_product.max(1),
        };
        if frame_count == 0 {
            return Err(invalid("VisuCoreFrameCount", "is 0"));
        }
        if !groups.is_empty() && frame_count % group_product != 0 {
            return Err(invalid(
                "VisuFGOrderDesc",
                format!(
                    "frame groups hold {group_product} frames but VisuCoreFrameCount is {frame_count}"
                ),
            ));
        }
        let slopes = per_frame(&params, "VisuCoreDataSlope", frame_count, 1.0)?;
        let offsets = per_frame(&params, "VisuCoreDataOffs", frame_count, 0.0)?;
        Ok(Visu {
            params,
            word_type,
            byte_order,
            dim,
            size,
            extent,
            frame_count,
            slopes,
            offsets,
            groups,
        })
    }

    /// Pixels in one 2-D plane.
    pub fn plane_pixels(&self) -> usize {
        self.size[0] * self.size[1]
    }

    /// Planes per stored frame (1 for 2-D frames).
    pub fn planes_per_frame(&self) -> usize {
        if self.dim == 3 { self.size[2] } else { 1 }
    }

    pub fn frame_bytes(&self) -> usize {
        self.plane_pixels() * self.planes_per_frame() * self.word_type.bytes()
    }

    /// Expected size of `2dseq` in bytes.
    pub fn expected_bytes(&self) -> u64 {
        self.frame_bytes() as u64 * self.frame_count as u64
    }

    /// Index of the frame within each group, first group fastest.
    pub fn group_indices(&self, frame: usize) -> Vec<usize> {
        let mut rest = frame;
        self.groups
            .iter()
            .map(|g| {
                let index = rest % g.len;
                rest /= g.len;
                index
            })
            .collect()
    }

    /// Position of the group with this id in `groups`.
    pub fn group_position(&self, id: &str) -> Option<usize> {
        self.groups.iter().position(|g| g.id == id)
    }

    /// Which row of a parameter with `rows` rows describes `frame`: the
    /// frame-group dependency if declared, else per frame, else broadcast.
    pub fn row_for(&self, param: &str, frame: usize, rows: usize) -> Option<usize> {
        let indices = self.group_indices(frame);
        for (group, index) in self.groups.iter().zip(indices) {
            if let Some((_, start)) = group.deps.iter().find(|(name, _)| name == param) {
                let row = start + index;
                return (row < rows).then_some(row);
            }
        }
        if rows == self.frame_count {
            Some(frame)
        } else if rows == 1 {
            Some(0)
        } else {
            None
        }
    }

    /// The row of a numeric n-column parameter that belongs to `frame`.
    pub fn numbers_for_frame(&self, param: &str, width: usize, frame: usize) -> Option<Vec<f64>> {
        let values = self.params.f64s(param)?;
        if width == 0 || values.is_empty() || values.len() % width != 0 {
            return None;
        }
        let row = self.row_for(param, frame, values.len() / width)?;
        Some(values[row * width..(row + 1) * width].to_vec())
    }

    /// A scalar per frame (one column).
    pub fn number_for_frame(&self, param: &str, frame: usize) -> Option<f64> {
        self.numbers_for_frame(param, 1, frame)
            .and_then(|v| v.first().copied())
    }
}

fn to_count(v: f64) -> Option<usize> {
    (v.is_finite() && v >= 0.0 && v.fract() == 0.0 && v < 1e12).then_some(v as usize)
}

/// Slope/offset arrays: one value per frame, or one value broadcast.
fn per_frame(
    params: &ParamFile,
    param: &'static str,
    frames: usize,
    default: f64,
) -> Result<Vec<f64>, VisuError> {
    let Some(value) = params.get(param) else {
        return Ok(vec![default; frames]);
    };
    let numbers: Vec<f64> = value
        .elements()
        .iter()
        .map(Value::as_f64)
        .collect::<Option<_>>()
        .ok_or_else(|| invalid(param, "not numbers"))?;
    if numbers.iter().any(|v| !v.is_finite()) {
        return Err(invalid(param, "not finite"));
    }
    match numbers.len() {
        1 => Ok(vec![numbers[0]; frames]),
        n if n == frames => Ok(numbers),
        n => Err(invalid(
            param,
            format!("has {n} values for {frames} frames"),
        )),
    }
}

fn frame_groups(params: &ParamFile) -> Result<Vec<FrameGroup>, VisuError> {
    let Some(order) = params.get("VisuFGOrderDesc") else {
        return Ok(Vec::new());
    };
    let deps: Vec<(String, usize)> = match params.get("VisuGroupDepVals") {
        Some(v) => v
            .elements()
            .iter()
            .map(|dep| {
                let fields = dep.fields()?;
                let name = fields.first()?.as_str()?.to_owned();
                let start = to_count(fields.get(1)?.as_f64()?)?;
                Some((name, start))
            })
            .collect::<Option<_>>()
            .ok_or_else(|| invalid("VisuGroupDepVals", "entries are not (<name>, row)"))?,
        None => Vec::new(),
    };
    order
        .elements()
        .iter()
        .map(|desc| {
            let fields = desc
                .fields()
                .ok_or_else(|| invalid("VisuFGOrderDesc", "entry is not a struct"))?;
            let number = |i: usize| fields.get(i).and_then(Value::as_f64).and_then(to_count);
            let len = number(0)
                .filter(|&n| n > 0)
                .ok_or_else(|| invalid("VisuFGOrderDesc", "group length is not a positive count"))?;
            let id = fields
                .get(1)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let comment = fields
                .get(2)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let start = number(3).unwrap_or(0);
            let count = number(4).unwrap_or(0);
            let group_deps = deps
                .get(start..start.saturating_add(count))
                .ok_or_else(|| {
                    invalid(
                        "VisuFGOrderDesc",
                        format!("{id} refers to VisuGroupDepVals[{start}..+{count}] which does not exist"),
                    )
                })?
                .to_vec();
            Ok(FrameGroup {
                len,
                id,
                comment,
                deps: group_deps,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jcamp::parse;

    const MSME: &str = "##$VisuCoreWordType=_16BIT_SGN_INT\n##$VisuCoreByteOrder=littleEndian\n\
        ##$VisuCoreDim=2\n##$VisuCoreSize=( 2 )\n4 3\n##$VisuCoreExtent=( 2 )\n8 6\n\
        ##$VisuCoreFrameCount=6\n##$VisuCoreDataSlope=( 6 )\n1 2 3 4 5 6\n\
        ##$VisuFGOrderDesc=( 2 )\n(3, <FG_ECHO>, <>, 0, 1) (2, <FG_SLICE>, <>, 1, 1)\n\
        ##$VisuGroupDepVals=( 2 )\n(<VisuAcqEchoTime>, 0) (<VisuCorePosition>, 0)\n\
        ##$VisuAcqEchoTime=( 3 )\n10 20 30\n##$VisuCorePosition=( 2, 3 )\n0 0 0 0 0 5\n";

    #[test]
    fn first_group_varies_fastest() {
        let visu = Visu::from_params(parse(MSME).unwrap()).unwrap();
        assert_eq!(visu.group_indices(4), vec![1, 1]);
        assert_eq!(visu.number_for_frame("VisuAcqEchoTime", 5), Some(30.0));
        assert_eq!(
            visu.numbers_for_frame("VisuCorePosition", 3, 3),
            Some(vec![0.0, 0.0, 5.0])
        );
        assert_eq!(visu.slopes[5], 6.0);
        assert_eq!(visu.expected_bytes(), 4 * 3 * 2 * 6);
    }

    #[test]
    fn missing_and_inconsistent_parameters_are_named() {
        let text = MSME.replace("##$VisuCoreWordType=_16BIT_SGN_INT\n", "");
        let err = Visu::from_params(parse(&text).unwrap()).unwrap_err();
        assert!(err.to_string().contains("VisuCoreWordType"));
        let text = MSME.replace("##$VisuCoreFrameCount=6", "##$VisuCoreFrameCount=7");
        let err = Visu::from_params(parse(&text).unwrap()).unwrap_err();
        assert!(err.to_string().contains("VisuFGOrderDesc"), "{err}");
    }
}
