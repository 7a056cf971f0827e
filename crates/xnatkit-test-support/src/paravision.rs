//! A synthetic ParaVision 6 RARE-VTR scan folder (`method`, `acqp`,
//! `pdata/1/{visu_pars,2dseq,reco}`) with pixel values the test chooses,
//! for the T1 saturation-recovery tests of the maps crate and the CLI.
//!
//! The parameters are the ones Bruker's RAREVTR method writes: `MultiRepTime`
//! (the repetition times, ms), `PVM_RepetitionTime` (the first of them),
//! `PVM_EchoTime` (the echo spacing, ms), `PVM_RareFactor`,
//! `PVM_NEchoImages`, `EffectiveTE`; acqp `ACQ_repetition_time` (the TR
//! list) and `ACQ_recov_time` (TR − PVM_EchoTime·(PVM_RareFactor·
//! PVM_NEchoImages − ½), what the method defines as the recovery time);
//! visu_pars frames slices fastest, then the TR list (FG_MOVIE, `vtr`),
//! `VisuAcqRepetitionTime` per TR (optional: FAIR_RARE-like data has none).

use crate::jcamp::Jcamp;
use std::path::{Path, PathBuf};

/// What the scan looks like.
#[derive(Debug, Clone)]
pub struct RareVtr {
    pub rows: usize,
    pub cols: usize,
    pub slices: usize,
    /// `MultiRepTime`, ms.
    pub repetition_times: Vec<f64>,
    /// `PVM_EchoTime`: the echo spacing, ms.
    pub echo_spacing: f64,
    pub rare_factor: u32,
    /// `PVM_NEchoImages`.
    pub echo_images: u32,
    /// Write `VisuAcqRepetitionTime` (one per TR, on FG_MOVIE).
    pub visu_repetition_time: bool,
    /// Write acqp `ACQ_repetition_time` and `ACQ_recov_time`.
    pub acqp_times: bool,
    /// Write `VisuAcqEchoTrainLength` (= `PVM_RareFactor`).
    pub visu_echo_train: bool,
}

impl Default for RareVtr {
    fn default() -> Self {
        RareVtr {
            rows: 24,
            cols: 30,
            slices: 2,
            repetition_times: vec![200.0, 400.0, 800.0, 1500.0, 3000.0, 6000.0],
            echo_spacing: 10.0,
            rare_factor: 8,
            echo_images: 1,
            visu_repetition_time: true,
            acqp_times: true,
            visu_echo_train: true,
        }
    }
}

impl RareVtr {
    /// The echo train ParaVision subtracts: PVM_EchoTime ×
    /// (PVM_RareFactor × PVM_NEchoImages − ½), ms.
    pub fn echo_train(&self) -> f64 {
        self.echo_spacing * (f64::from(self.rare_factor * self.echo_images) - 0.5)
    }

    /// Writes the scan as `<study>/<expno>` and returns that folder.
    /// `pixel(tr, slice, row, col)` is the real value of a pixel (≥ 0);
    /// each frame is stored as 16-bit integers with its own slope.
    pub fn write(
        &self,
        study: &Path,
        expno: u32,
        pixel: impl Fn(usize, usize, usize, usize) -> f64,
    ) -> PathBuf {
        let scan = study.join(expno.to_string());
        let recon = scan.join("pdata/1");
        std::fs::create_dir_all(&recon).unwrap();
        let title = "Parameter List, ParaVision 6.0.1";
        let (rows, cols, slices) = (self.rows, self.cols, self.slices);
        let trs = &self.repetition_times;
        let frames = slices * trs.len();

        // 2dseq: frames slices fastest; per frame a slope from its maximum.
        let mut twodseq = Vec::with_capacity(frames * rows * cols * 2);
        let mut slopes = Vec::with_capacity(frames);
        for (k, _) in trs.iter().enumerate() {
            for s in 0..slices {
                let values: Vec<f64> = (0..rows)
                    .flat_map(|r| (0..cols).map(move |c| (r, c)))
                    .map(|(r, c)| pixel(k, s, r, c).max(0.0))
                    .collect();
                let max = values.iter().cloned().fold(0.0, f64::max);
                let slope = if max > 0.0 { max / 32000.0 } else { 1.0 };
                slopes.push(slope);
                for v in values {
                    twodseq.extend(((v / slope).round() as i16).to_le_bytes());
                }
            }
        }
        std::fs::write(recon.join("2dseq"), twodseq).unwrap();

        let orientation: Vec<f64> = (0..slices)
            .flat_map(|_| [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0])
            .collect();
        let positions: Vec<f64> = (0..slices)
            .flat_map(|s| [-15.0, -12.0, -1.0 + 1.5 * s as f64])
            .collect();
        let mut deps = vec![
            "(<VisuCoreOrientation>, 0)".to_owned(),
            "(<VisuCorePosition>, 0)".to_owned(),
        ];
        let mut movie = format!("({}, <FG_MOVIE>, <vtr>, 2, 0)", trs.len());
        if self.visu_repetition_time {
            deps.push("(<VisuAcqRepetitionTime>, 0)".to_owned());
            movie = format!("({}, <FG_MOVIE>, <vtr>, 2, 1)", trs.len());
        }
        let descs = vec![format!("({slices}, <FG_SLICE>, <>, 0, 2)"), movie];
        let mut v = Jcamp::new(title)
            .raw("VisuVersion", "3")
            .string("VisuUid", &format!("2.16.756.5.5.100.9.{expno}.1"))
            .string("VisuCreator", "ParaVision")
            .string("VisuCreatorVersion", "6.0.1")
            .raw("VisuCoreFrameCount", &frames.to_string())
            .raw("VisuCoreDim", "2")
            .numbers("VisuCoreSize", &[2], &[cols as f64, rows as f64])
            .array(
                "VisuCoreDimDesc",
                &[2],
                &["spatial".into(), "spatial".into()],
            )
            .numbers("VisuCoreExtent", &[2], &[cols as f64, rows as f64])
            .numbers("VisuCoreFrameThickness", &[1], &[1.0])
            .strings("VisuCoreUnits", &["mm", "mm"])
            .numbers("VisuCoreOrientation", &[slices, 9], &orientation)
            .numbers("VisuCorePosition", &[slices, 3], &positions)
            .numbers("VisuCoreDataSlope", &[frames], &slopes)
            .numbers("VisuCoreDataOffs", &[frames], &vec![0.0; frames])
            .raw("VisuCoreFrameType", "( 1 )\nMAGNITUDE_IMAGE")
            .raw("VisuCoreWordType", "_16BIT_SGN_INT")
            .raw("VisuCoreByteOrder", "littleEndian")
            .raw("VisuFGOrderDescDim", "2")
            .array("VisuFGOrderDesc", &[2], &descs)
            .array("VisuGroupDepVals", &[deps.len()], &deps)
            .raw("VisuSubjectType", "Quadruped")
            .raw("VisuSubjectPosition", "Head_Prone")
            .string("VisuSubjectName", "Mouse^VTR")
            .string("VisuSubjectId", "M-VTR")
            .raw("VisuSubjectSex", "FEMALE")
            .string("VisuStudyUid", "2.16.756.5.5.100.9.77")
            .string("VisuStudyId", "T1_study")
            .string("VisuStudyDate", "2015-03-04T10:17:36,000+0100")
            .string("VisuAcquisitionProtocol", "T1map_RAREVTR")
            .string("VisuAcqSequenceName", "Bruker:RAREVTR")
            .raw("VisuAcqEchoSequenceType", "SpinEcho")
            .raw("VisuAcqImagingFrequency", "400.3")
            .numbers("VisuAcqEchoTime", &[1], &[self.effective_te()])
            .raw("VisuAcqFlipAngle", "90")
            .raw("VisuAcqScanTime", "600000")
            .strings("VisuAcqGradEncoding", &["read_enc", "phase_enc"])
            .string("VisuAcqImagedNucleus", "1H");
        if self.visu_repetition_time {
            v = v.numbers("VisuAcqRepetitionTime", &[trs.len()], trs);
        }
        if self.visu_echo_train {
            v = v.raw("VisuAcqEchoTrainLength", &self.rare_factor.to_string());
        }
        v.finish(&recon, "visu_pars");
        Jcamp::new(title)
            .raw("RECO_wordtype", "_16BIT_SGN_INT")
            .finish(&recon, "reco");

        Jcamp::new(title)
            .raw("Method", "<Bruker:RAREVTR>")
            .raw("PVM_EchoTime", &self.echo_spacing.to_string())
            .numbers("EffectiveTE", &[1], &[self.effective_te()])
            .raw("PVM_RareFactor", &self.rare_factor.to_string())
            .raw("PVM_NEchoImages", &self.echo_images.to_string())
            .raw("PVM_RepetitionTime", &trs[0].to_string())
            .numbers("MultiRepTime", &[trs.len()], trs)
            .raw("T1Exp", &trs.len().to_string())
            .raw("PVM_NSPacks", "1")
            .numbers("PVM_SPackArrNSlices", &[1], &[slices as f64])
            .array("PVM_SPackArrSliceOrient", &[1], &["axial".into()])
            .numbers("PVM_SPackArrSliceDistance", &[1], &[1.5])
            .numbers("PVM_SPackArrSliceGap", &[1], &[0.5])
            .finish(&scan, "method");
        let mut acqp = Jcamp::new(title)
            .string("ACQ_protocol_name", "T1map_RAREVTR")
            .raw("NSLICES", &slices.to_string())
            .raw("BF1", "400.3")
            .raw("ACQ_rare_factor", &self.rare_factor.to_string());
        if self.acqp_times {
            let recovery: Vec<f64> = trs.iter().map(|t| t - self.echo_train()).collect();
            acqp = acqp
                .numbers("ACQ_repetition_time", &[trs.len()], trs)
                .numbers("ACQ_recov_time", &[trs.len()], &recovery);
        }
        acqp.finish(&scan, "acqp");
        // Raw data present: the scan was acquired.
        std::fs::write(scan.join("fid"), [0u8; 64]).unwrap();
        scan
    }

    /// The effective echo time of a centric RARE train (its first echo).
    fn effective_te(&self) -> f64 {
        self.echo_spacing
    }
}
