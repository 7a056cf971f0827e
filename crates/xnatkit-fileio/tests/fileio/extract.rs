//! Extraction of archives generated here with the `zip` and `tar` writers
//! (and raw header bytes for the malicious cases the writers refuse).

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use xnatkit_fileio::{
    ArchiveKind, Error, ExtractLimits, extract_any_archive, extract_archive, md5_file, sniff_file,
};
use zip::write::SimpleFileOptions;

/// Every file and directory below `dir`, relative, sorted; dirs end in '/'.
fn tree(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        for entry in fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            let rel = path
                .strip_prefix(base)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            if entry.file_type().unwrap().is_dir() {
                out.push(format!("{rel}/"));
                walk(base, &path, out);
            } else {
                out.push(rel);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

fn sample_files() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("top.txt", b"top level".to_vec()),
        (
            "scan 1/DICOM/file one.dcm",
            (0..5000u32).flat_map(u32::to_le_bytes).collect(),
        ),
        ("scan 1/DICOM/Über ß.dcm", b"unicode name".to_vec()),
        ("./scan 2//deep/er/x.bin", vec![0u8; 70_000]),
        ("empty.txt", Vec::new()),
    ]
}

fn write_zip(path: &Path, files: &[(&str, Vec<u8>)]) {
    let mut zip = zip::ZipWriter::new(File::create(path).unwrap());
    let options = SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .unix_permissions(0o644);
    zip.add_directory("scan 1/", options).unwrap();
    for (name, data) in files {
        zip.start_file(*name, options).unwrap();
        zip.write_all(data).unwrap();
    }
    zip.finish().unwrap();
}

fn tar_bytes(files: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    let mut dir = tar::Header::new_gnu();
    dir.set_entry_type(tar::EntryType::Directory);
    dir.set_size(0);
    dir.set_mode(0o755);
    tar.append_data(&mut dir, "scan 1/", std::io::empty())
        .unwrap();
    for (name, data) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        tar.append_data(&mut header, name.trim_start_matches("./"), &data[..])
            .unwrap();
    }
    tar.into_inner().unwrap()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(data).unwrap();
    gz.finish().unwrap()
}

/// A tar whose single entry has `name` written straight into the header,
/// bypassing the `tar` crate's own checks on `..` and absolute paths.
fn raw_tar_entry(name: &str, entry_type: tar::EntryType, data: &[u8]) -> Vec<u8> {
    let mut header = tar::Header::new_old();
    header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
    header.set_size(data.len() as u64);
    header.set_mode(0o644);
    header.set_entry_type(entry_type);
    header.set_cksum();
    let mut out = header.as_bytes().to_vec();
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
    out.extend_from_slice(&[0u8; 1024]);
    out
}

fn check_sample_extracted(dest: &Path, extracted: &[xnatkit_fileio::ExtractedFile]) {
    let files = sample_files();
    assert_eq!(extracted.len(), files.len());
    for (name, data) in &files {
        let rel = xnatkit_fileio::safe_relative_path(name).unwrap();
        let on_disk = fs::read(dest.join(&rel)).unwrap();
        assert_eq!(&on_disk, data, "{name}");
        let found = extracted.iter().find(|f| f.rel_path == rel).unwrap();
        assert_eq!(found.stored, md5_file(&dest.join(&rel)).unwrap());
        assert_eq!(found.stored.size, data.len() as u64);
    }
    assert_eq!(
        tree(dest),
        [
            "empty.txt",
            "scan 1/",
            "scan 1/DICOM/",
            "scan 1/DICOM/file one.dcm",
            "scan 1/DICOM/Über ß.dcm",
            "scan 2/",
            "scan 2/deep/",
            "scan 2/deep/er/",
            "scan 2/deep/er/x.bin",
            "top.txt",
        ]
    );
}

#[test]
fn zip_with_nested_dirs_and_spaces_is_extracted() {
    let work = tempfile::tempdir().unwrap();
    let archive = work.path().join("upload.zip");
    write_zip(&archive, &sample_files());
    assert_eq!(sniff_file(&archive).unwrap(), Some(ArchiveKind::Zip));
    let dest = work.path().join("out");
    let extracted =
        extract_archive(&archive, ArchiveKind::Zip, &dest, &ExtractLimits::default()).unwrap();
    check_sample_extracted(&dest, &extracted);
}

#[test]
fn tar_and_tar_gz_are_extracted() {
    let work = tempfile::tempdir().unwrap();
    let plain = tar_bytes(&sample_files());
    for (name, bytes, kind) in [
        ("upload.tar", plain.clone(), ArchiveKind::Tar),
        ("upload.tgz", gzip(&plain), ArchiveKind::TarGz),
    ] {
        let archive = work.path().join(name);
        fs::write(&archive, bytes).unwrap();
        assert_eq!(sniff_file(&archive).unwrap(), Some(kind));
        let dest = work.path().join(format!("out-{name}"));
        let extracted = extract_any_archive(&archive, &dest, &ExtractLimits::default()).unwrap();
        check_sample_extracted(&dest, &extracted);
    }
}

#[test]
fn long_tar_names_survive() {
    let work = tempfile::tempdir().unwrap();
    let long_name = format!("{}/{}.dcm", "d".repeat(120), "f".repeat(140));
    let archive = work.path().join("long.tar");
    fs::write(
        &archive,
        tar_bytes(&[(long_name.as_str(), b"long".to_vec())]),
    )
    .unwrap();
    let dest = work.path().join("out");
    let extracted =
        extract_archive(&archive, ArchiveKind::Tar, &dest, &ExtractLimits::default()).unwrap();
    assert_eq!(extracted[0].rel_path, PathBuf::from(&long_name));
    assert_eq!(fs::read(dest.join(&long_name)).unwrap(), b"long");
}

/// After a failed extraction the destination looks exactly as before.
fn assert_refused_cleanly(
    archive: &Path,
    kind: ArchiveKind,
    limits: &ExtractLimits,
    check: impl Fn(&Error) -> bool,
) {
    let dest = archive.with_extension("out");
    fs::create_dir_all(dest.join("existing")).unwrap();
    fs::write(dest.join("existing/keep.txt"), b"keep").unwrap();
    let before = tree(&dest);
    let err = extract_archive(archive, kind, &dest, limits).unwrap_err();
    assert!(check(&err), "unexpected error: {err:?}");
    assert_eq!(tree(&dest), before, "leftovers after {err}");
    assert_eq!(fs::read(dest.join("existing/keep.txt")).unwrap(), b"keep");
}

#[test]
fn zip_with_parent_or_absolute_entry_is_refused_without_leftovers() {
    let work = tempfile::tempdir().unwrap();
    for (i, evil) in ["../evil", "ok/../../evil", "/etc/passwd", "C:/x"]
        .iter()
        .enumerate()
    {
        let archive = work.path().join(format!("evil{i}.zip"));
        // Good files before the evil one, so there is something to clean up.
        let mut files = sample_files();
        files.push((evil, b"pwned".to_vec()));
        write_zip(&archive, &files);
        assert_refused_cleanly(
            &archive,
            ArchiveKind::Zip,
            &ExtractLimits::default(),
            |e| matches!(e, Error::UnsafePath { name, .. } if name == evil),
        );
        assert!(!work.path().join("evil").exists());
    }
}

#[test]
fn tar_with_parent_or_absolute_entry_is_refused_without_leftovers() {
    let work = tempfile::tempdir().unwrap();
    for (i, evil) in ["../evil", "/etc/passwd", "a/../../evil"]
        .iter()
        .enumerate()
    {
        let mut bytes = tar_bytes(&sample_files());
        // Replace the end-of-archive blocks by the evil entry.
        bytes.truncate(bytes.len() - 1024);
        bytes.extend(raw_tar_entry(evil, tar::EntryType::Regular, b"pwned"));
        let archive = work.path().join(format!("evil{i}.tar"));
        fs::write(&archive, &bytes).unwrap();
        assert_refused_cleanly(
            &archive,
            ArchiveKind::Tar,
            &ExtractLimits::default(),
            |e| matches!(e, Error::UnsafePath { name, .. } if name == evil),
        );
        let gz_archive = work.path().join(format!("evil{i}.tar.gz"));
        fs::write(&gz_archive, gzip(&bytes)).unwrap();
        assert_refused_cleanly(
            &gz_archive,
            ArchiveKind::TarGz,
            &ExtractLimits::default(),
            |e| matches!(e, Error::UnsafePath { .. }),
        );
    }
}

#[test]
fn links_and_devices_are_skipped() {
    let work = tempfile::tempdir().unwrap();
    // zip symlink pointing outside.
    let zip_path = work.path().join("links.zip");
    let mut zip = zip::ZipWriter::new(File::create(&zip_path).unwrap());
    let options = SimpleFileOptions::default();
    zip.add_symlink("link", "/etc/passwd", options).unwrap();
    zip.start_file("real.txt", options).unwrap();
    zip.write_all(b"real").unwrap();
    zip.finish().unwrap();
    let dest = work.path().join("zip-out");
    let extracted = extract_archive(
        &zip_path,
        ArchiveKind::Zip,
        &dest,
        &ExtractLimits::default(),
    )
    .unwrap();
    assert_eq!(extracted.len(), 1);
    assert_eq!(tree(&dest), ["real.txt"]);

    // tar symlink, hard link, FIFO and char device entries.
    let mut bytes = Vec::new();
    for (name, kind) in [
        ("sym", tar::EntryType::Symlink),
        ("hard", tar::EntryType::Link),
        ("fifo", tar::EntryType::Fifo),
        ("dev", tar::EntryType::Char),
    ] {
        let mut entry = raw_tar_entry(name, kind, b"");
        entry.truncate(entry.len() - 1024);
        bytes.extend(entry);
    }
    bytes.extend(raw_tar_entry("real.txt", tar::EntryType::Regular, b"real"));
    let tar_path = work.path().join("links.tar");
    fs::write(&tar_path, bytes).unwrap();
    let dest = work.path().join("tar-out");
    let extracted = extract_archive(
        &tar_path,
        ArchiveKind::Tar,
        &dest,
        &ExtractLimits::default(),
    )
    .unwrap();
    assert_eq!(extracted.len(), 1);
    assert_eq!(tree(&dest), ["real.txt"]);
}

fn zeros_zip(path: &Path, entry_bytes: usize) {
    let mut zip = zip::ZipWriter::new(File::create(path).unwrap());
    let options = SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .compression_level(Some(9));
    zip.start_file("first.txt", options).unwrap();
    zip.write_all(b"some ordinary file").unwrap();
    zip.start_file("bomb.bin", options).unwrap();
    zip.write_all(&vec![0u8; entry_bytes]).unwrap();
    zip.finish().unwrap();
}

#[test]
fn zip_bomb_is_refused_and_cleaned_up() {
    let work = tempfile::tempdir().unwrap();
    let archive = work.path().join("bomb.zip");
    zeros_zip(&archive, 8 << 20);
    assert!(fs::metadata(&archive).unwrap().len() < 100_000);
    // All zeros deflate slightly better than 1000:1, so the default ratio
    // limit already refuses it.
    assert_refused_cleanly(
        &archive,
        ArchiveKind::Zip,
        &ExtractLimits::default(),
        |e| matches!(e, Error::ArchiveBomb { entry, .. } if entry == "bomb.bin"),
    );
    let tiny_total = ExtractLimits {
        max_total_bytes: 1 << 20,
        max_ratio: u64::MAX,
        ..ExtractLimits::default()
    };
    assert_refused_cleanly(
        &archive,
        ArchiveKind::Zip,
        &tiny_total,
        |e| matches!(e, Error::TooLarge { limit, .. } if *limit == 1 << 20),
    );
    let generous = ExtractLimits {
        max_ratio: 5000,
        ..ExtractLimits::default()
    };
    let dest = work.path().join("generous");
    let extracted = extract_archive(&archive, ArchiveKind::Zip, &dest, &generous).unwrap();
    assert_eq!(extracted[1].stored.size, 8 << 20);
}

#[test]
fn tar_gz_bomb_is_refused_and_cleaned_up() {
    let work = tempfile::tempdir().unwrap();
    let archive = work.path().join("bomb.tar.gz");
    let files = [
        ("a.txt", b"ordinary".to_vec()),
        ("zeros.bin", vec![0u8; 4 << 20]),
    ];
    fs::write(&archive, gzip(&tar_bytes(&files))).unwrap();
    let low_ratio = ExtractLimits {
        max_ratio: 20,
        ..ExtractLimits::default()
    };
    assert_refused_cleanly(
        &archive,
        ArchiveKind::TarGz,
        &low_ratio,
        |e| matches!(e, Error::ArchiveBomb { entry, .. } if entry == "zeros.bin"),
    );
    let tiny_total = ExtractLimits {
        max_total_bytes: 1000,
        ..ExtractLimits::default()
    };
    assert_refused_cleanly(&archive, ArchiveKind::TarGz, &tiny_total, |e| {
        matches!(e, Error::TooLarge { .. })
    });
}

#[test]
fn entry_count_limit_is_enforced() {
    let work = tempfile::tempdir().unwrap();
    let archive = work.path().join("many.zip");
    write_zip(&archive, &sample_files());
    let few = ExtractLimits {
        max_entries: 3,
        ..ExtractLimits::default()
    };
    assert_refused_cleanly(
        &archive,
        ArchiveKind::Zip,
        &few,
        |e| matches!(e, Error::TooLarge { what, limit: 3, .. } if what.contains("entries")),
    );
    let tar_archive = work.path().join("many.tar");
    fs::write(&tar_archive, tar_bytes(&sample_files())).unwrap();
    assert_refused_cleanly(&tar_archive, ArchiveKind::Tar, &few, |e| {
        matches!(e, Error::TooLarge { limit: 3, .. })
    });
}

#[test]
fn duplicate_names_keep_the_last_content() {
    let work = tempfile::tempdir().unwrap();
    let archive = work.path().join("dup.tar");
    let files = [
        ("a/x.txt", b"first".to_vec()),
        ("./a//x.txt", b"second".to_vec()),
    ];
    fs::write(&archive, tar_bytes(&files)).unwrap();
    let dest = work.path().join("out");
    let extracted =
        extract_archive(&archive, ArchiveKind::Tar, &dest, &ExtractLimits::default()).unwrap();
    assert_eq!(extracted.len(), 1);
    assert_eq!(fs::read(dest.join("a/x.txt")).unwrap(), b"second");
    assert_eq!(tree(&dest), ["a/", "a/x.txt"]);
}

#[test]
fn corrupt_or_foreign_files_give_clear_errors() {
    let work = tempfile::tempdir().unwrap();
    let not_archive = work.path().join("notes.txt");
    fs::write(&not_archive, b"just text").unwrap();
    let err =
        extract_any_archive(&not_archive, work.path(), &ExtractLimits::default()).unwrap_err();
    assert!(matches!(err, Error::NotAnArchive { .. }));
    assert!(err.to_string().contains("notes.txt"), "{err}");

    // A zip cut in half: the central directory is gone.
    let archive = work.path().join("cut.zip");
    write_zip(&archive, &sample_files());
    let bytes = fs::read(&archive).unwrap();
    fs::write(&archive, &bytes[..bytes.len() / 2]).unwrap();
    let dest = work.path().join("cut-out");
    let err =
        extract_archive(&archive, ArchiveKind::Zip, &dest, &ExtractLimits::default()).unwrap_err();
    assert!(matches!(err, Error::Zip { .. }), "{err:?}");
    assert!(err.to_string().contains("cut.zip"), "{err}");
    assert!(!dest.exists(), "{:?}", tree(&dest));

    // A tar.gz with a broken gzip tail, after some complete entries.
    let gz = gzip(&tar_bytes(&sample_files()));
    let broken = work.path().join("broken.tar.gz");
    fs::write(&broken, &gz[..gz.len() - 40]).unwrap();
    // Missing ancestors of the destination are created and removed again.
    let dest = work.path().join("new/deeper/broken-out");
    let err = extract_archive(
        &broken,
        ArchiveKind::TarGz,
        &dest,
        &ExtractLimits::default(),
    )
    .unwrap_err();
    assert!(matches!(err, Error::Tar { .. }), "{err:?}");
    assert!(!work.path().join("new").exists(), "{:?}", tree(work.path()));
}

#[test]
fn python_zipfile_agrees_when_available() {
    // Optional extra oracle: Python's zipfile writes the archive. The
    // required checks above do not depend on it.
    let work = tempfile::tempdir().unwrap();
    let archive = work.path().join("py.zip");
    let script = "import sys, zipfile\n\
                  with zipfile.ZipFile(sys.argv[1], 'w', zipfile.ZIP_DEFLATED) as z:\n\
                  \x20   z.writestr('dir/a b.txt', 'hello')\n\
                  \x20   z.writestr('dir/', '')\n\
                  \x20   z.writestr('c.bin', bytes(range(256)) * 100)\n";
    let status = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(&archive)
        .status();
    match status {
        Ok(status) => assert!(status.success()),
        Err(e) => {
            eprintln!("note: python3 not runnable ({e}); zipfile cross-check skipped");
            return;
        }
    }
    let dest = work.path().join("out");
    let extracted = extract_any_archive(&archive, &dest, &ExtractLimits::default()).unwrap();
    assert_eq!(extracted.len(), 2);
    assert_eq!(fs::read(dest.join("dir/a b.txt")).unwrap(), b"hello");
    assert_eq!(fs::read(dest.join("c.bin")).unwrap().len(), 25_600);
}

#[test]
fn corrupted_zip_entry_fails_with_its_name_and_leaves_nothing() {
    let work = tempfile::tempdir().unwrap();
    let archive = work.path().join("crc.zip");
    let mut zip = zip::ZipWriter::new(File::create(&archive).unwrap());
    let stored = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    zip.start_file("good.txt", stored).unwrap();
    zip.write_all(b"fine").unwrap();
    zip.start_file("dir/damaged.bin", stored).unwrap();
    zip.write_all(b"MARKER-0123456789-MARKER").unwrap();
    zip.finish().unwrap();
    let mut bytes = fs::read(&archive).unwrap();
    let at = bytes.windows(6).position(|w| w == b"MARKER").unwrap();
    bytes[at + 8] ^= 0xff;
    fs::write(&archive, bytes).unwrap();
    assert_refused_cleanly(
        &archive,
        ArchiveKind::Zip,
        &ExtractLimits::default(),
        |e| matches!(e, Error::Zip { entry: Some(name), .. } if name == "dir/damaged.bin"),
    );
}

#[test]
fn existing_files_are_replaced_and_others_kept() {
    let work = tempfile::tempdir().unwrap();
    let archive = work.path().join("update.zip");
    write_zip(&archive, &[("a.txt", b"new".to_vec())]);
    let dest = work.path().join("out");
    fs::create_dir_all(&dest).unwrap();
    fs::write(dest.join("a.txt"), b"old").unwrap();
    fs::write(dest.join("other.txt"), b"other").unwrap();
    extract_archive(&archive, ArchiveKind::Zip, &dest, &ExtractLimits::default()).unwrap();
    assert_eq!(fs::read(dest.join("a.txt")).unwrap(), b"new");
    assert_eq!(fs::read(dest.join("other.txt")).unwrap(), b"other");
    // The "scan 1/" directory entry of write_zip is not created: only
    // directories that hold extracted files appear.
    assert_eq!(tree(&dest), ["a.txt", "other.txt"]);
}
