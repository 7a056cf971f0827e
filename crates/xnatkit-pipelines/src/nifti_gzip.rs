//! Compressing dcm2niix's NIfTI images ourselves.
//!
//! dcm2niix's `-z y` hands the work to `pigz` when it is installed and
//! otherwise to its built-in miniz, whose table-driven CRC-32 and deflate
//! took more than half of every conversion's CPU time in a profile of the
//! engine (`bench/pipelines.sh`: `mz_crc32` alone was a third of all
//! samples). So the built-in command asks dcm2niix for plain `.nii` and
//! gzips it here with flate2 on zlib-rs (SIMD CRC-32, a faster deflate) at
//! dcm2niix's own default level, 6: the same `.nii.gz` content, in a
//! fraction of the time, without depending on pigz being installed.

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::write::GzEncoder;

use crate::Error;

/// dcm2niix's default gzip level (`-1..-9`, default 6).
const LEVEL: u32 = 6;

/// Replaces every `*.nii` directly in `dir` by `*.nii.gz`; returns the new
/// files. Each image is written to `NAME.nii.gz.part` and renamed only
/// when complete, and the plain image is removed after that, so an
/// interruption never leaves a truncated `.nii.gz` that looks finished.
pub fn gzip_nifti_images(dir: &Path) -> Result<Vec<PathBuf>, Error> {
    let mut images = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let path = entry.path();
        let is_file = entry
            .file_type()
            .map_err(|e| Error::io(&path, e))?
            .is_file();
        if is_file && path.extension().is_some_and(|e| e == "nii") {
            images.push(path);
        }
    }
    images.sort();
    images.iter().map(|image| gzip_one(image)).collect()
}

fn gzip_one(image: &Path) -> Result<PathBuf, Error> {
    let mut name = image.as_os_str().to_owned();
    name.push(".gz");
    let target = PathBuf::from(name);
    let mut part_name = target.as_os_str().to_owned();
    part_name.push(".part");
    let part = PathBuf::from(part_name);
    let written = (|| -> std::io::Result<()> {
        let mut reader = BufReader::with_capacity(1 << 20, File::open(image)?);
        let file = File::create(&part)?;
        let mut encoder = GzEncoder::new(
            BufWriter::with_capacity(1 << 20, file),
            Compression::new(LEVEL),
        );
        std::io::copy(&mut reader, &mut encoder)?;
        encoder.finish()?.flush()
    })();
    if let Err(err) = written {
        // The part file is scratch; its removal failing changes nothing
        // for the caller, who reports the write error.
        let _ = std::fs::remove_file(&part);
        return Err(Error::io(&part, err));
    }
    std::fs::rename(&part, &target).map_err(|e| Error::io(&target, e))?;
    std::fs::remove_file(image).map_err(|e| Error::io(image, e))?;
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::read::GzDecoder;
    use std::io::Read;

    #[test]
    fn images_become_gzip_with_the_same_bytes_and_sidecars_stay() {
        let dir = tempfile::tempdir().unwrap();
        let image: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(dir.path().join("2_T1.nii"), &image).unwrap();
        std::fs::write(dir.path().join("2_T1.json"), b"{}").unwrap();
        std::fs::write(dir.path().join("2_T1.bval"), b"0 1000\n").unwrap();

        let made = gzip_nifti_images(dir.path()).unwrap();

        assert_eq!(made, vec![dir.path().join("2_T1.nii.gz")]);
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["2_T1.bval", "2_T1.json", "2_T1.nii.gz"]);
        let mut back = Vec::new();
        GzDecoder::new(File::open(&made[0]).unwrap())
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, image);
    }

    #[test]
    fn a_failed_write_leaves_the_plain_image_and_no_gzip() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.nii"), b"not much").unwrap();
        // A folder where the part file must go makes the create fail.
        std::fs::create_dir(dir.path().join("a.nii.gz.part")).unwrap();

        let err = gzip_nifti_images(dir.path()).unwrap_err();

        assert!(err.to_string().contains("a.nii.gz.part"), "{err}");
        assert!(dir.path().join("a.nii").exists());
        assert!(!dir.path().join("a.nii.gz").exists());
    }
}
