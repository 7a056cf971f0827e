//! Pass one and planning, without a server: the seed's directory example,
//! workbook round trips, and spreadsheets edited into nonsense.

use std::path::Path;

use xnatkit_upload::files_sheet::{self, FileRow};
use xnatkit_upload::run::prepare;
use xnatkit_upload::workbook::{FILES_SHEET, Workbook};
use xnatkit_upload::{Config, ScanOptions, scan_to_workbook, write_default};

fn scan(dir: &Path, sheet: &Path, unmatched: bool) {
    let options = ScanOptions {
        include_unmatched: unmatched,
        jobs: 2,
    };
    scan_to_workbook(sheet, dir, &options).unwrap();
}

fn rows(sheet: &Path) -> Vec<FileRow> {
    let wb = Workbook::open(sheet).unwrap();
    let config = Config::read(&wb).unwrap();
    files_sheet::read_rows(&wb, &config).unwrap().1
}

#[test]
fn seed_example_gives_xnatuploader_columns_labels_and_scans() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    crate::common::write_seed_tree(&data);
    std::fs::write(data.join("README.txt"), "not an image").unwrap();
    let sheet = tmp.path().join("s.xlsx");
    write_default(&sheet, false).unwrap();
    scan(&data, &sheet, false);

    let wb = Workbook::open(&sheet).unwrap();
    let files = wb.sheet(FILES_SHEET).unwrap();
    let header: Vec<String> = (1..=20)
        .map(|c| xnatkit_upload::workbook::cell_text(files, c, 1))
        .take_while(|h| !h.is_empty())
        .collect();
    assert_eq!(
        header,
        [
            "Pattern",
            "File",
            "Filename",
            "Upload",
            "Status",
            "Subject",
            "Session",
            "Dataset",
            "SessionLabel",
            "DICOM:Manufacturer",
            "DICOM:ManufacturerModelName",
            "DICOM:Modality",
            "DICOM:SeriesNumber",
            "DICOM:StationName",
            "DICOM:StudyDate",
            "DICOM:StudyDescription",
            "SubjectName",
            "ID",
            "Directory",
            "filename"
        ]
    );
    let rows = rows(&sheet);
    assert_eq!(
        rows.len(),
        14,
        "README.txt is not listed without --unmatched"
    );
    let first = &rows[0];
    assert_eq!(first.pattern, "DICOM");
    assert!(first.upload);
    assert_eq!(first.value("Subject"), Some("0001"), "leading zeros kept");
    assert_eq!(first.value("Session"), Some("20200312"));
    assert_eq!(first.value("Dataset"), Some("Chest_CT"));
    assert_eq!(first.value("SessionLabel"), Some("0001_CT1"));
    assert_eq!(first.value("DICOM:SeriesNumber"), Some("2"));
    let labels: Vec<&str> = rows
        .iter()
        .filter_map(|r| r.value("SessionLabel"))
        .collect();
    assert_eq!(labels.iter().filter(|l| **l == "0342_CT1").count(), 4);
    assert_eq!(labels.iter().filter(|l| **l == "0342_CT2").count(), 7);

    let prepared = prepare(&sheet, true).unwrap();
    let plan = &prepared.plan;
    assert!(plan.row_errors.is_empty(), "{:?}", plan.row_errors);
    let sessions: Vec<(&str, &str, &str)> = plan
        .sessions
        .iter()
        .map(|s| (s.subject.as_str(), s.label.as_str(), s.xsi_type.as_str()))
        .collect();
    assert_eq!(
        sessions,
        [
            ("0001", "0001_CT1", "xnat:ctSessionData"),
            ("0342", "0342_CT1", "xnat:ctSessionData"),
            ("0342", "0342_CT2", "xnat:ctSessionData"),
        ]
    );
    let second_visit = &plan.sessions[2];
    let scans: Vec<(&str, &str, usize)> = second_visit
        .scans
        .iter()
        .map(|s| (s.id.as_str(), s.scan_type.as_str(), s.files.len()))
        .collect();
    assert_eq!(scans, [("3", "Head_CT", 3), ("4", "Neck_CT", 4)]);
    assert_eq!(second_visit.scans[0].files[0].name, "scan0000.dcm");
    assert_eq!(plan.file_count(), 14);
}

#[test]
fn unmatched_files_are_listed_with_the_reason_and_not_selected() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    crate::common::write_seed_tree(&data);
    std::fs::write(data.join("README.txt"), "x").unwrap();
    std::fs::write(
        data.join("Doe^John-0001/20200312/Chest CT/notes.dcm"),
        "not dicom",
    )
    .unwrap();
    let sheet = tmp.path().join("s.xlsx");
    write_default(&sheet, false).unwrap();
    scan(&data, &sheet, true);
    let rows = rows(&sheet);
    let readme = rows.iter().find(|r| r.filename == "README.txt").unwrap();
    assert!(!readme.upload);
    assert!(
        readme.status.contains("matches no pattern set"),
        "{}",
        readme.status
    );
    let notes = rows.iter().find(|r| r.filename == "notes.dcm").unwrap();
    assert!(!notes.upload);
    assert!(notes.status.contains("not a DICOM"), "{}", notes.status);
    assert_eq!(rows.iter().filter(|r| r.upload).count(), 14);
}

#[test]
fn rescan_keeps_other_sheets_and_replaces_files() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    crate::common::write_seed_tree(&data);
    let sheet = tmp.path().join("s.xlsx");
    write_default(&sheet, false).unwrap();
    {
        let mut wb = Workbook::open(&sheet).unwrap();
        let notes = wb.sheet_or_new("Notes").unwrap();
        notes.cell_mut("A1").set_value_string("keep me");
        notes.cell_mut("A1").style_mut().font_mut().set_bold(true);
        wb.save().unwrap();
    }
    scan(&data, &sheet, false);
    std::fs::remove_dir_all(data.join("Doe^John-0001")).unwrap();
    scan(&data, &sheet, false);
    let wb = Workbook::open(&sheet).unwrap();
    let notes = wb.sheet("Notes").unwrap();
    assert_eq!(notes.cell("A1").unwrap().value(), "keep me");
    assert!(notes.cell("A1").unwrap().style().font().unwrap().bold());
    assert_eq!(rows(&sheet).len(), 11);
    let config = wb.sheet("Configuration").unwrap();
    assert_eq!(config.cell("C5").unwrap().value(), "{SubjectName}-{ID}");
}

#[test]
fn nonsense_edits_are_reported_clearly() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    crate::common::write_seed_tree(&data);
    let sheet = tmp.path().join("s.xlsx");
    write_default(&sheet, false).unwrap();
    scan(&data, &sheet, false);

    // An empty subject on one row: that row gets a message, the rest plan.
    let mut wb = Workbook::open(&sheet).unwrap();
    wb.sheet_mut(FILES_SHEET).unwrap().remove_cell((6, 2));
    wb.save().unwrap();
    let prepared = prepare(&sheet, true).unwrap();
    assert_eq!(prepared.plan.row_errors.len(), 1);
    assert!(prepared.plan.row_errors[0].1.contains("Subject is empty"));
    assert_eq!(prepared.plan.file_count(), 13);

    // An Upload cell that is neither Y nor N: that row gets a message.
    let mut wb = Workbook::open(&sheet).unwrap();
    wb.sheet_mut(FILES_SHEET)
        .unwrap()
        .cell_mut((4, 3))
        .set_value_string("maybe");
    wb.save().unwrap();
    let prepared = prepare(&sheet, true).unwrap();
    assert_eq!(prepared.plan.row_errors.len(), 2);
    assert!(prepared.plan.row_errors[1].1.contains("Upload is 'maybe'"));
    assert_eq!(prepared.plan.file_count(), 12);

    // An unknown column: refused at once, naming it.
    let mut wb = Workbook::open(&sheet).unwrap();
    wb.sheet_mut(FILES_SHEET)
        .unwrap()
        .cell_mut((21, 1))
        .set_value_string("Colour");
    wb.save().unwrap();
    let err = prepare(&sheet, true).err().unwrap().to_string();
    assert!(err.contains("unknown column 'Colour'"), "{err}");

    // A pattern that does not parse: refused at once, naming set and pattern.
    let mut wb = Workbook::open(&sheet).unwrap();
    wb.sheet_mut("Configuration")
        .unwrap()
        .cell_mut("E5")
        .set_value_string("{Directory");
    wb.save().unwrap();
    let err = prepare(&sheet, true).err().unwrap().to_string();
    assert!(
        err.contains("pattern set 'DICOM'") && err.contains("{Directory"),
        "{err}"
    );

    // A mapping naming a value nothing captures.
    let mut wb = Workbook::open(&sheet).unwrap();
    let config = wb.sheet_mut("Configuration").unwrap();
    config.cell_mut("E5").set_value_string("{Directory}");
    config.cell_mut("C10").set_value_string("PatientNumber");
    wb.save().unwrap();
    let err = prepare(&sheet, true).err().unwrap().to_string();
    assert!(err.contains("'PatientNumber'"), "{err}");
}

#[cfg(unix)]
#[test]
fn read_only_workbook_is_refused_before_anything_happens() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    crate::common::write_seed_tree(&data);
    let sheet = tmp.path().join("s.xlsx");
    write_default(&sheet, false).unwrap();
    scan(&data, &sheet, false);
    let before = std::fs::read(&sheet).unwrap();
    // Root ignores file permissions, so the Excel owner file is the lock here
    // when running as root; as a normal user the read-only bit is enough.
    let owner = tmp.path().join("~$s.xlsx");
    std::fs::write(&owner, "excel").unwrap();
    std::fs::set_permissions(&sheet, std::fs::Permissions::from_mode(0o444)).unwrap();
    let err = prepare(&sheet, true).err().unwrap().to_string();
    assert!(err.contains("cannot be written"), "{err}");
    let err = scan_to_workbook(
        &sheet,
        &data,
        &ScanOptions {
            include_unmatched: false,
            jobs: 1,
        },
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("s.xlsx"), "{err}");
    assert_eq!(std::fs::read(&sheet).unwrap(), before, "workbook untouched");
    std::fs::remove_file(&owner).unwrap();
    std::fs::set_permissions(&sheet, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert!(prepare(&sheet, true).is_ok());
}
