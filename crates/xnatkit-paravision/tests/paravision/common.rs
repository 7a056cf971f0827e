//! Synthetic ParaVision studies written by test code, and an independent
//! reader of our DICOM output, shared by the integration tests.

use std::path::{Path, PathBuf};

pub use xnatkit_test_support::jcamp::Jcamp;

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Word {
    I16,
    I32,
    F32,
}

impl Word {
    fn name(self) -> &'static str {
        match self {
            Word::I16 => "_16BIT_SGN_INT",
            Word::I32 => "_32BIT_SGN_INT",
            Word::F32 => "_32BIT_FLOAT",
        }
    }
}

/// What a synthetic reconstruction looks like; the test's own model of it.
#[derive(Clone, Debug)]
pub struct Synth {
    pub version: Pv,
    pub word: Word,
    pub big_endian: bool,
    pub size: [usize; 2],
    pub extent: [f64; 2],
    /// Planes per frame and their extent: (1, _) for 2-D frames.
    pub depth: (usize, f64),
    /// Frame groups, first fastest: (len, id, dependent params).
    pub groups: Vec<(usize, &'static str)>,
    /// Orientation per slice (row-major 3×3), position per slice.
    pub orientation: [f64; 9],
    pub first_position: [f64; 3],
    pub slice_step: f64,
    pub echo_times: Vec<f64>,
    pub protocol: String,
    pub has_reco: bool,
    pub cest: Option<CestSetup>,
    /// Per-slice (orientation, position) overriding `orientation`,
    /// `first_position` and `slice_step` (slice packages in several orientations).
    pub per_slice: Option<Vec<([f64; 9], [f64; 3])>>,
    /// `VisuAcqRepetitionTime`; `None` leaves it out (as FAIR_RARE does).
    pub repetition_time: Option<f64>,
    /// Extra raw records: (name, value text after `=`).
    pub extra_visu: Vec<(&'static str, String)>,
    pub extra_method: Vec<(&'static str, String)>,
    pub extra_acqp: Vec<(&'static str, String)>,
    /// Write a `fid` beside `acqp` (raw data present).
    pub has_fid: bool,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Pv {
    V6,
    V360,
}

#[derive(Clone, Debug)]
pub struct CestSetup {
    /// Offsets as written in the parameter file (Hz for PV6, ppm for PV360).
    pub offsets: Vec<f64>,
}

pub const FREQUENCY_MHZ: f64 = 400.3;

impl Synth {
    pub fn frame_count(&self) -> usize {
        self.groups.iter().map(|g| g.0).product()
    }

    pub fn group_indices(&self, frame: usize) -> Vec<usize> {
        let mut rest = frame;
        self.groups
            .iter()
            .map(|(len, _)| {
                let i = rest % len;
                rest /= len;
                i
            })
            .collect()
    }

    pub fn index_of(&self, id: &str, frame: usize) -> usize {
        self.groups
            .iter()
            .position(|g| g.1 == id)
            .map_or(0, |p| self.group_indices(frame)[p])
    }

    pub fn slices(&self) -> usize {
        self.groups
            .iter()
            .find(|g| g.1 == "FG_SLICE")
            .map_or(1, |g| g.0)
    }

    /// Slope that differs per frame, to catch "slope of frame 0 only" bugs.
    pub fn slope(&self, frame: usize) -> f64 {
        // PV360 files run-length encode repeats: give blocks of four frames one
        // slope so `@4*(v)` runs appear mid-array.
        let frame = if self.version == Pv::V360 {
            frame / 4
        } else {
            frame
        };
        match self.word {
            Word::I16 => 0.5 + 0.25 * frame as f64,
            Word::I32 => 1e-3 * (1.0 + frame as f64),
            Word::F32 => 1.0 + 0.1 * frame as f64,
        }
    }

    pub fn offset(&self, frame: usize) -> f64 {
        frame as f64 * 3.0 - 7.0
    }

    /// Stored value of pixel (x, y) of plane z in a frame, as f64 (exact for the word type).
    pub fn stored(&self, frame: usize, z: usize, x: usize, y: usize) -> f64 {
        let base = (1000 * frame + 100 * z + 10 * y + x) as f64;
        match self.word {
            Word::I16 => base - 500.0,
            Word::I32 => base * 40_503.0 - 1.0e8,
            Word::F32 => f64::from((base as f32) * 0.731 - 90.5),
        }
    }

    /// (z, y, x) in storage order within one frame.
    fn plane_pixels(&self) -> Vec<(usize, usize, usize)> {
        let mut out = Vec::new();
        for z in 0..self.depth.0 {
            for y in 0..self.size[1] {
                for x in 0..self.size[0] {
                    out.push((z, y, x));
                }
            }
        }
        out
    }

    pub fn orientation_of(&self, slice: usize) -> [f64; 9] {
        match &self.per_slice {
            Some(slices) => slices[slice].0,
            None => self.orientation,
        }
    }

    pub fn position(&self, slice: usize) -> [f64; 3] {
        if let Some(slices) = &self.per_slice {
            return slices[slice].1;
        }
        let n = &self.orientation[6..9];
        let s = self.slice_step * slice as f64;
        [
            self.first_position[0] + s * n[0],
            self.first_position[1] + s * n[1],
            self.first_position[2] + s * n[2],
        ]
    }

    fn twodseq(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for frame in 0..self.frame_count() {
            for (z, y, x) in self.plane_pixels() {
                {
                    let v = self.stored(frame, z, x, y);
                    let bytes: Vec<u8> = match (self.word, self.big_endian) {
                        (Word::I16, false) => (v as i16).to_le_bytes().to_vec(),
                        (Word::I16, true) => (v as i16).to_be_bytes().to_vec(),
                        (Word::I32, false) => (v as i32).to_le_bytes().to_vec(),
                        (Word::I32, true) => (v as i32).to_be_bytes().to_vec(),
                        (Word::F32, false) => (v as f32).to_le_bytes().to_vec(),
                        (Word::F32, true) => (v as f32).to_be_bytes().to_vec(),
                    };
                    out.extend(bytes);
                }
            }
        }
        out
    }

    /// Write `<study>/<expno>/{acqp,method}` and `pdata/<procno>/{visu_pars,2dseq,reco,id}`.
    pub fn write(&self, study: &Path, expno: u32, procno: u32) -> PathBuf {
        let scan = study.join(expno.to_string());
        let recon = scan.join("pdata").join(procno.to_string());
        std::fs::create_dir_all(&recon).unwrap();
        let (title, creator_version, visu_version) = match self.version {
            Pv::V6 => ("Parameter List, ParaVision 6.0.1", "6.0.1", "3"),
            Pv::V360 => ("Parameter List, ParaVision 360 V3.6", "360.3.6", "8"),
        };
        let frames = self.frame_count();
        let slices = self.slices();
        let visu_uid = format!("2.16.756.5.5.100.1.{expno}.{procno}");
        let dim = if self.depth.0 > 1 { 3 } else { 2 };
        let size = [
            self.size[0] as f64,
            self.size[1] as f64,
            self.depth.0 as f64,
        ];
        let extent = [self.extent[0], self.extent[1], self.depth.1];
        let mut v = Jcamp::new(title)
            .raw("VisuVersion", visu_version)
            .string("VisuUid", &visu_uid)
            .string("VisuCreator", "ParaVision")
            .string("VisuCreatorVersion", creator_version)
            .raw("VisuCoreFrameCount", &frames.to_string())
            .comment("VisuVersion VisuUid VisuCreator")
            .raw("VisuCoreDim", &dim.to_string())
            .numbers("VisuCoreSize", &[dim], &size[..dim])
            .array("VisuCoreDimDesc", &[dim], &vec!["spatial".into(); dim])
            .numbers("VisuCoreExtent", &[dim], &extent[..dim])
            .numbers("VisuCoreFrameThickness", &[1], &[0.8])
            .strings("VisuCoreUnits", &["mm", "mm"]);
        let orientations: Vec<f64> = (0..slices).flat_map(|s| self.orientation_of(s)).collect();
        let positions: Vec<f64> = (0..slices).flat_map(|s| self.position(s)).collect();
        v = v
            .numbers("VisuCoreOrientation", &[slices, 9], &orientations)
            .numbers("VisuCorePosition", &[slices, 3], &positions);
        let slopes: Vec<f64> = (0..frames).map(|f| self.slope(f)).collect();
        let offsets: Vec<f64> = (0..frames).map(|f| self.offset(f)).collect();
        v = if self.version == Pv::V360 {
            v.numbers_rle("VisuCoreDataSlope", &slopes)
                .numbers_rle("VisuCoreDataOffs", &offsets)
        } else {
            v.numbers("VisuCoreDataSlope", &[frames], &slopes).numbers(
                "VisuCoreDataOffs",
                &[frames],
                &offsets,
            )
        };
        v = v
            .raw("VisuCoreFrameType", "( 1 )\nMAGNITUDE_IMAGE")
            .raw("VisuCoreWordType", self.word.name())
            .raw(
                "VisuCoreByteOrder",
                if self.big_endian {
                    "bigEndian"
                } else {
                    "littleEndian"
                },
            )
            .raw("VisuFGOrderDescDim", &self.groups.len().to_string());
        // Dependent parameters: slice geometry on FG_SLICE, echo times on FG_ECHO.
        let mut deps: Vec<String> = Vec::new();
        let mut descs: Vec<String> = Vec::new();
        for (len, id) in &self.groups {
            let start = deps.len();
            match *id {
                "FG_SLICE" => {
                    deps.push("(<VisuCoreOrientation>, 0)".into());
                    deps.push("(<VisuCorePosition>, 0)".into());
                }
                "FG_ECHO" => deps.push("(<VisuAcqEchoTime>, 0)".into()),
                _ => {}
            }
            descs.push(format!(
                "({len}, <{id}>, <>, {start}, {})",
                deps.len() - start
            ));
        }
        v = v
            .array("VisuFGOrderDesc", &[descs.len()], &descs)
            .array("VisuGroupDepVals", &[deps.len()], &deps)
            .raw("VisuSubjectType", "Quadruped")
            .raw("VisuSubjectPosition", "Head_Prone")
            .string("VisuSubjectName", "Mouse^One")
            .string("VisuSubjectId", "M001")
            .raw("VisuSubjectSex", "FEMALE")
            .string("VisuStudyUid", "2.16.756.5.5.100.1.77")
            .string("VisuStudyId", "CEST_pH_study")
            .string("VisuAcquisitionProtocol", &self.protocol)
            .string("VisuAcqSequenceName", "Bruker:RARE")
            .raw("VisuAcqEchoSequenceType", "SpinEcho")
            .raw("VisuAcqImagingFrequency", &FREQUENCY_MHZ.to_string())
            .numbers(
                "VisuAcqEchoTime",
                &[self.echo_times.len()],
                &self.echo_times,
            )
            .raw("VisuAcqFlipAngle", "90")
            .raw("VisuAcqScanTime", "120000")
            .strings("VisuAcqGradEncoding", &["read_enc", "phase_enc"]);
        v = match self.version {
            Pv::V6 => v.string("VisuStudyDate", "2015-03-04T10:17:36,000+0100"),
            Pv::V360 => v
                .raw("VisuStudyDate", "(1721890932, 259, 120)")
                .raw("VisuMagneticFieldStrength", "9.4039"),
        };
        if let Some(tr) = self.repetition_time {
            v = v.numbers("VisuAcqRepetitionTime", &[1], &[tr]);
        }
        for (name, value) in &self.extra_visu {
            v = v.raw(name, value);
        }
        // A string wrapped mid-token, as ParaVision sometimes does.
        v = v.raw("VisuAcqImagedNucleus", "( 8 )\n<1\nH>");
        v.finish(&recon, "visu_pars");
        std::fs::write(recon.join("2dseq"), self.twodseq()).unwrap();
        if self.has_reco {
            Jcamp::new(title)
                .raw("RECO_wordtype", self.word.name())
                .finish(&recon, "reco");
        }
        Jcamp::new(title)
            .string("DATASET_KEY", &visu_uid)
            .finish(&recon, "id");
        self.write_scan_files(&scan, title, slices);
        recon
    }

    fn write_scan_files(&self, scan: &Path, title: &str, slices: usize) {
        let mut method = Jcamp::new(title)
            .raw(
                "Method",
                if self.version == Pv::V360 {
                    "<Bruker:RARE>"
                } else {
                    "<User:cestRARE>"
                },
            )
            .raw("PVM_NSPacks", "1")
            .numbers("PVM_SPackArrNSlices", &[1], &[slices as f64])
            .array("PVM_SPackArrSliceOrient", &[1], &["axial".into()])
            .numbers("PVM_SPackArrSliceDistance", &[1], &[self.slice_step])
            .numbers("PVM_SPackArrSliceGap", &[1], &[0.0]);
        let mut acqp = Jcamp::new(title)
            .string("ACQ_protocol_name", &self.protocol)
            .raw("NSLICES", &slices.to_string())
            .raw("BF1", &FREQUENCY_MHZ.to_string());
        if let Some(cest) = &self.cest {
            match self.version {
                Pv::V360 => {
                    method = method
                        .raw("PVM_SatTransOnOff", "On")
                        .raw("PVM_SatTransType", "MTC")
                        .raw("PVM_SatTransPulseEnum", "<gauss>")
                        .raw("PVM_SatTransPulseAmpl_uT", "3")
                        .raw(
                            "PVM_SatTransPulse",
                            "(100, 27.4, 1080, Yes, 3, 3, 0.41, 0.2, conventional, 100, 1, <$SatTransPulseShape>)",
                        )
                        .raw("PVM_SatTransNPulses", "30")
                        .raw("PVM_SatTransInterPulseDelay", "10")
                        .raw("PVM_SatTransFreqUnit", "unit_ppm")
                        .numbers("PVM_SatTransFreqValues", &[cest.offsets.len()], &cest.offsets)
                        .raw("PVM_NSatFreq", &cest.offsets.len().to_string());
                }
                Pv::V6 => {
                    method = method
                        .raw("PVM_MagTransOnOff", "On")
                        .raw("PVM_MagTransPulseEnum", "<gauss.exc>")
                        .raw("PVM_MagTransPower", "2.5")
                        .raw(
                            "PVM_MagTransPulse",
                            "(3000, 0.9, 1080, Yes, 3, 3, 0.41, 0.2, conventional, 100, 1, <gauss.exc>)",
                        )
                        .raw("PVM_MagTransPulsNumb", "1")
                        .raw("PVM_MagTransInterDelay", "0");
                    acqp = acqp.numbers("ACQ_O2_list", &[cest.offsets.len()], &cest.offsets);
                }
            }
        }
        for (name, value) in &self.extra_method {
            method = method.raw(name, value);
        }
        for (name, value) in &self.extra_acqp {
            acqp = acqp.raw(name, value);
        }
        method.finish(scan, "method");
        acqp.finish(scan, "acqp");
        if self.has_fid {
            std::fs::write(scan.join("fid"), [0u8; 64]).unwrap();
        }
    }
}

/// A small PV6 16-bit scan: 8×6 axial, two slices 1 mm apart; tests change
/// the fields that give it the property they check.
pub fn small_scan(protocol: &str) -> Synth {
    Synth {
        version: Pv::V6,
        word: Word::I16,
        big_endian: false,
        size: [8, 6],
        extent: [16.0, 9.0],
        depth: (1, 0.0),
        groups: vec![(2, "FG_SLICE")],
        orientation: [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
        first_position: [-7.0, -3.75, -0.5],
        slice_step: 1.0,
        echo_times: vec![10.0],
        protocol: protocol.to_owned(),
        has_reco: true,
        cest: None,
        per_slice: None,
        repetition_time: Some(5000.0),
        extra_visu: Vec::new(),
        extra_method: Vec::new(),
        extra_acqp: Vec::new(),
        has_fid: true,
    }
}

/// A PV6/PV360 `subject` file.
pub fn write_subject(study: &Path, version: Pv) {
    let title = match version {
        Pv::V6 => "Parameter List, ParaVision 6.0.1",
        Pv::V360 => "Parameter List, ParaVision 360 V3.6",
    };
    let mut s = Jcamp::new(title)
        .string("SUBJECT_id", "M001")
        .string("SUBJECT_name_string", "Mouse^One")
        .string("SUBJECT_study_name", "CEST pH");
    s = match version {
        Pv::V6 => s
            .raw("SUBJECT_sex", "FEMALE")
            .raw("SUBJECT_weight", "0.025"),
        Pv::V360 => s
            .raw("SUBJECT_gender", "FEMALE")
            .raw("SUBJECT_study_weight", "0.025")
            .raw("SUBJECT_study_date", "(1721890932, 259, 120)"),
    };
    s.finish(study, "subject");
}

/// The synthetic PV6 study: MSME-like 16-bit (oblique, non-square, echo
/// innermost), a CEST scan with 32-bit integer data (offsets on FG_CYCLE), and a
/// derived float map without `reco`.
pub fn pv6_study(root: &Path) -> (PathBuf, Vec<(u32, u32, Synth)>) {
    let study = root.join("20150304_101736_M001_1_1");
    write_subject(&study, Pv::V6);
    let c = std::f64::consts::FRAC_1_SQRT_2;
    let msme = Synth {
        version: Pv::V6,
        word: Word::I16,
        big_endian: false,
        size: [8, 6],
        depth: (1, 0.0),
        extent: [16.0, 9.0],
        groups: vec![(3, "FG_ECHO"), (2, "FG_SLICE")],
        orientation: [c, c, 0.0, -c, c, 0.0, 0.0, 0.0, 1.0],
        first_position: [-5.0, 2.5, -1.0],
        slice_step: 1.25,
        echo_times: vec![10.0, 20.0, 30.0],
        protocol: "T2_MSME".into(),
        has_reco: true,
        cest: None,
        per_slice: None,
        repetition_time: Some(5000.0),
        extra_visu: Vec::new(),
        extra_method: Vec::new(),
        extra_acqp: Vec::new(),
        has_fid: false,
    };
    let cest = Synth {
        word: Word::I32,
        size: [6, 4],
        extent: [12.0, 8.0],
        groups: vec![(2, "FG_SLICE"), (5, "FG_CYCLE")],
        orientation: [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
        echo_times: vec![7.5],
        protocol: "CEST_RARE".into(),
        cest: Some(CestSetup {
            offsets: vec![-1200.0, -600.0, 0.0, 600.0, 1200.0],
        }),
        ..msme.clone()
    };
    let map = Synth {
        word: Word::F32,
        groups: vec![(2, "FG_SLICE")],
        echo_times: vec![10.0],
        protocol: "T2_MSME".into(),
        has_reco: false,
        ..msme.clone()
    };
    let scans = vec![(1, 1, msme), (2, 1, cest), (1, 2, map)];
    for (expno, procno, synth) in &scans {
        synth.write(&study, *expno, *procno);
    }
    (study, scans)
}

/// The synthetic PV360 study: a CEST scan with big-endian 16-bit data, RLE
/// slopes, offsets in ppm on an inner FG_CYCLE; and a float scan.
pub fn pv360_study(root: &Path) -> (PathBuf, Vec<(u32, u32, Synth)>) {
    let study = root.join("20240725_090212_M001_1_1");
    write_subject(&study, Pv::V360);
    let cest = Synth {
        version: Pv::V360,
        word: Word::I16,
        big_endian: true,
        size: [5, 7],
        depth: (1, 0.0),
        extent: [20.0, 21.0],
        groups: vec![(4, "FG_CYCLE"), (3, "FG_SLICE")],
        orientation: [1.0, 0.0, 0.0, 0.0, 0.0, -1.0, 0.0, 1.0, 0.0],
        first_position: [-10.0, -1.0, 10.5],
        slice_step: 1.0,
        echo_times: vec![5.0],
        protocol: "CEST_RARE_pH".into(),
        has_reco: true,
        cest: Some(CestSetup {
            offsets: vec![-3.0, 0.0, 1.5, 3.0],
        }),
        per_slice: None,
        repetition_time: Some(5000.0),
        extra_visu: Vec::new(),
        extra_method: Vec::new(),
        extra_acqp: Vec::new(),
        has_fid: false,
    };
    let float = Synth {
        word: Word::F32,
        big_endian: false,
        groups: vec![(2, "FG_SLICE"), (2, "FG_REPETITION")],
        protocol: "FLASH_float".into(),
        cest: None,
        ..cest.clone()
    };
    // A 3-D acquisition: two volumes of 4 planes, wide-range 32-bit integers.
    let volume = Synth {
        word: Word::I32,
        size: [6, 5],
        depth: (4, 6.0),
        groups: vec![(2, "FG_REPETITION")],
        protocol: "FLASH_3D".into(),
        cest: None,
        ..cest.clone()
    };
    let scans = vec![(3, 1, cest), (4, 1, float), (5, 1, volume)];
    for (expno, procno, synth) in &scans {
        synth.write(&study, *expno, *procno);
    }
    (study, scans)
}

/// One image read back from our output.
pub struct Image {
    pub obj: dicom_object::DefaultDicomObject,
}

impl Image {
    pub fn open(path: &Path) -> Image {
        Image {
            obj: dicom_object::open_file(path).unwrap(),
        }
    }

    pub fn text(&self, tag: dicom_core::Tag) -> String {
        self.obj
            .element_opt(tag)
            .unwrap()
            .map(|e| e.to_str().unwrap().trim().to_owned())
            .unwrap_or_default()
    }

    pub fn numbers(&self, tag: dicom_core::Tag) -> Vec<f64> {
        let text = self.text(tag);
        if text.is_empty() {
            return Vec::new();
        }
        text.split('\\')
            .map(|v| v.trim().parse().unwrap())
            .collect()
    }

    pub fn number(&self, tag: dicom_core::Tag) -> f64 {
        self.numbers(tag)[0]
    }

    /// stored × RescaleSlope + RescaleIntercept for every pixel.
    pub fn real_values(&self) -> Vec<f64> {
        use dicom_dictionary_std::tags;
        let slope = self.number(tags::RESCALE_SLOPE);
        let intercept = self.number(tags::RESCALE_INTERCEPT);
        let signed = self.text(tags::PIXEL_REPRESENTATION) == "1";
        let bytes = self
            .obj
            .element(tags::PIXEL_DATA)
            .unwrap()
            .to_bytes()
            .unwrap();
        bytes
            .chunks_exact(2)
            .map(|c| {
                let word = u16::from_le_bytes([c[0], c[1]]);
                let stored = if signed {
                    f64::from(word as i16)
                } else {
                    f64::from(word)
                };
                stored * slope + intercept
            })
            .collect()
    }
}

/// The files of one output series, in instance order.
pub fn series_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
}

/// Every file below `dir` (to check nothing partial was left).
pub fn all_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                out.extend(all_files(&path));
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}
